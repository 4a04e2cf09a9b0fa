#!/bin/sh
# Build the fuzz targets with libFuzzer and sanitizers, and run them.
#
#   sh tests/fuzz/run.sh [SECONDS [TARGET]]   (run from the repository root)
#
# SECONDS per target (default 60); TARGET is tokenize or input (default:
# both, one after the other).  Corpora are kept in build/fuzz/corpus-TARGET,
# seeded from data/.
set -eu
secs=${1:-60}
targets=${2:-tokenize input}
out=build/fuzz
pkgs="libzstd libutf8proc libxxhash"
cc_fuzz() {
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -pthread -Iinclude -Isrc $(pkg-config --cflags $pkgs) \
		"$@" $(pkg-config --libs libzstd libutf8proc) -lm
}

for t in $targets; do
	corpus=$out/corpus-$t
	mkdir -p "$corpus"
	case $t in
	tokenize)
		cc_fuzz tests/fuzz/fuzz_tokenize.c src/tokenize.c src/table.c src/keysort.c src/pool.c \
			src/spill.c src/mem.c -o "$out/fuzz_tokenize"
		# Seeds: a few configurations over pieces of the sample text and of CSV.
		if [ -z "$(ls -A "$corpus")" ]; then
			i=0
			for cfg in '\000\000\000\000' '\003\000\000\005' '\031\000\000\007' \
				'\001\000\000\000' '\002\001\000\003' '\002\003\000\001' \
				'\002\104\011\002' '\062\100\003\004'; do
				printf "$cfg" > "$corpus/seed$i"
				head -c 300 data/kjv-genesis.txt >> "$corpus/seed$i"
				printf 'a,"b\n""c",d\r\n\nx;y\t\303\251\342\200\231z\377\n' >> "$corpus/seed$i"
				i=$((i + 1))
			done
		fi
		max_len=2048
		;;
	input)
		cc_fuzz tests/fuzz/fuzz_input.c src/input.c src/mem.c -o "$out/fuzz_input"
		# Seeds: pieces of the sample text compressed with and without a
		# checksum, two frames with a skippable one between, each behind a
		# byte that picks the chunk size.
		if [ -z "$(ls -A "$corpus")" ]; then
			i=0
			for lead in '\000' '\023' '\064' '\105'; do
				for size in 700 5000; do
					printf "$lead" > "$corpus/seed$i"
					head -c $size data/kjv-genesis.txt | zstd -q -3 --no-check >> "$corpus/seed$i"
					i=$((i + 1))
					printf "$lead" > "$corpus/seed$i"
					head -c $size data/kjv-genesis.txt | zstd -q -19 --check >> "$corpus/seed$i"
					printf '\120\052\115\030\003\000\000\000abc' >> "$corpus/seed$i"
					tail -c $size data/kjv-genesis.txt | zstd -q -1 >> "$corpus/seed$i"
					i=$((i + 1))
				done
			done
		fi
		max_len=16384
		;;
	*)
		echo "run.sh: unknown target $t (tokenize or input)" >&2
		exit 2
		;;
	esac
	"$out/fuzz_$t" -max_total_time="$secs" -max_len=$max_len -print_final_stats=1 \
		-artifact_prefix="$out/" "$corpus"
done
