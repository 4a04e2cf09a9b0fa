#!/bin/sh
# Build the tokenizer fuzz target with libFuzzer and sanitizers, and run it.
#
#   sh tests/fuzz/run.sh [SECONDS]     (default 60; run from the repository root)
#
# The corpus is kept in build/fuzz/corpus-tokenize, seeded from data/.
set -eu
secs=${1:-60}
out=build/fuzz
mkdir -p "$out/corpus-tokenize"
pkgs="libzstd libutf8proc libxxhash"
clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -pthread -Iinclude -Isrc $(pkg-config --cflags $pkgs) \
	tests/fuzz/fuzz_tokenize.c src/tokenize.c src/table.c src/pool.c src/spill.c src/mem.c \
	$(pkg-config --libs libzstd libutf8proc) -lm -o "$out/fuzz_tokenize"
# Seeds: a few configurations over pieces of the sample text and of CSV.
if [ -z "$(ls -A "$out/corpus-tokenize")" ]; then
	i=0
	for cfg in '\000\000\000\000' '\003\000\000\005' '\031\000\000\007' '\001\000\000\000' \
		'\002\001\000\003' '\002\003\000\001' '\002\104\011\002' '\062\100\003\004'; do
		printf "$cfg" > "$out/corpus-tokenize/seed$i"
		head -c 300 data/kjv-genesis.txt >> "$out/corpus-tokenize/seed$i"
		printf 'a,"b\n""c",d\r\n\nx;y\t\303\251\342\200\231z\377\n' >> "$out/corpus-tokenize/seed$i"
		i=$((i + 1))
	done
fi
"$out/fuzz_tokenize" -max_total_time="$secs" -max_len=2048 -print_final_stats=1 \
	-artifact_prefix="$out/" \
	"$out/corpus-tokenize"
