#!/bin/sh
# Build the fuzz targets with libFuzzer and sanitizers, and run them.
#
#   sh tests/fuzz/run.sh [SECONDS [TARGET]]   (run from the repository root)
#
# SECONDS per target (default 60); TARGET is tokenize, input, keysort or
# engine (default: all four, one after the other).  Corpora are kept in build/fuzz/corpus-TARGET,
# seeded from data/.
set -eu
secs=${1:-60}
targets=${2:-tokenize input keysort engine}
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
		cc_fuzz tests/fuzz/fuzz_tokenize.c src/tokenize.c src/table.c src/sketch.c src/keysort.c src/pool.c \
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
			# Count files (tally merge): escapes, a long key, a bad line.
			printf '\300\000\000\003a\t3\nb\\tc\\\\\t12\n\t1\nxyzxyzxyzxyz\t2\nbad\n' > "$corpus/seed$i"
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
	keysort)
		cc_fuzz -DKEYSORT_SAMPLE_MIN=128 -DKEYSORT_WIDE_MIN=512 \
			tests/fuzz/fuzz_keysort.c src/keysort.c src/mem.c -o "$out/fuzz_keysort"
		# Seeds: both orders at a few sizes, over the sample text and over
		# log-like bytes whose keys share long beginnings.
		if [ -z "$(ls -A "$corpus")" ]; then
			i=0
			for cfg in '\000\000\377\001\000\001\000\002\000\003\000' \
				'\021\000\020\001\000\001\000\001\000\007\000' \
				'\026\000\100\001\000\002\000\350\203\005\000' \
				'\031\000\003\001\000\001\000\001\000\001\000' \
				'\035\000\010\001\000\004\000\001\377\002\000'; do
				printf "$cfg\000" > "$corpus/seed$i"
				head -c 600 data/kjv-genesis.txt >> "$corpus/seed$i"
				i=$((i + 1))
				printf "$cfg\000" > "$corpus/seed$i"
				for _ in 1 2 3 4 5 6; do
					printf '2026-03-01T00:00:00.0%s Z INFO [w-%s] GET /a/%s\n' $i $_ $_
				done >> "$corpus/seed$i"
				i=$((i + 1))
			done
		fi
		max_len=4096
		;;
	engine)
		# Tables of 1 KiB at the least, so that a few KiB of input spill.
		cc_fuzz -DMIN_TABLE_BUDGET=1024 tests/fuzz/fuzz_engine.c \
			$(ls src/*.c | grep -v '^src/main\.c$') $(pkg-config --libs libxxhash) \
			-o "$out/fuzz_engine"
		# Seeds: each mode over a piece of the sample text, CSV with a
		# header, count files in key order and not.
		if [ -z "$(ls -A "$corpus")" ]; then
			i=0
			# (A fifth byte of 128 and more: written through tally_write.)
			for cfg in '\000\000\000\004\000' '\001\001\007\025\000' '\002\002\000\052\000' \
				'\003\004\017\061\000' '\104\000\003\005\011' '\105\001\040\026\002' \
				'\000\000\000\006\200' '\003\001\017\002\200' '\002\002\000\001\200'; do
				printf "$cfg" > "$corpus/seed$i"
				head -c 1500 data/kjv-genesis.txt | tr ' ' '\t' >> "$corpus/seed$i"
				printf 'a,"b\n""c",d\r\n\nx;y\t\303\251\342\200\231z\377\n' >> "$corpus/seed$i"
				i=$((i + 1))
			done
			for cfg in '\006\001\005\065\000' '\206\001\011\046\000' '\006\000\000\071\000'; do
				printf "$cfg" > "$corpus/seed$i"
				printf 'a\t3\nb\\tc\t2\nbe\t1\nc\t7\nd\\\\\t2\n' >> "$corpus/seed$i"
				i=$((i + 1))
			done
			printf '\006\001\005\065\000b\t1\na\t2\n' > "$corpus/seed$i"
		fi
		max_len=4096
		;;
	*)
		echo "run.sh: unknown target $t (tokenize, input, keysort or engine)" >&2
		exit 2
		;;
	esac
	# A finding is written under $out; its bytes are printed too, in hex on
	# one line at the end, so that a log's tail (CI's) is enough to replay it:
	#   python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' HEX > f
	#   build/fuzz/fuzz_TARGET f
	rm -f "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*
	st=0
	"$out/fuzz_$t" -max_total_time="$secs" -max_len=$max_len -print_final_stats=1 \
		-artifact_prefix="$out/" "$corpus" || st=$?
	if [ $st -ne 0 ]; then
		for f in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*; do
			[ -f "$f" ] || continue
			echo "run.sh: $t found $f ($(wc -c < "$f") bytes):"
			od -An -v -tx1 "$f" | tr -d ' \n'
			echo
		done
		exit $st
	fi
done
