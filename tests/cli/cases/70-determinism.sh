# The output is the same byte for byte whatever the threads, the I/O method,
# the chunk size and the memory budget, and so are the messages on standard
# error (the count of cut keys, say).  Each case prints the differences
# (none expected).

have python3 && python3 "$HERE/ref_words.py" gen 60000 11 > "$WORK/gen.txt"
GEN=$WORK/gen.txt
GENESIS=$DATA/kjv-genesis.txt
export GEN GENESIS

# same_output FILE ARGS...: the reference run, then every variant.
cat > "$WORK/same.sh" <<'EOF'
f=$1; shift
"$T" "$@" -j 1 "$f" > ref 2> referr || echo "reference run failed"
[ -s ref ] || echo "empty reference"
for v in "-j 2" "-j 3" "-j 4" "-j 5" "-j 6" "-j 7" "-j 8" \
	"--io=mmap" "--io=read" "--io=read -j 4" "--io=mmap -j 8" \
	"--chunk-size 1 -j 3" "--chunk-size 2 -j 2" "--chunk-size 7 -j 4" \
	"--chunk-size 100 -j 8" "--chunk-size 4K -j 3" "--chunk-size 64K -j 2" \
	"--io=read --chunk-size 3 -j 5" "--io=mmap --chunk-size 5000 -j 2"; do
	"$T" "$@" $v "$f" > got 2> goterr || echo "failed: $v"
	cmp -s ref got || echo "differs: $v"
	cmp -s referr goterr || echo "stderr differs: $v"
done
"$T" "$@" -j 4 < "$f" > got 2> goterr || echo "failed: stdin"
cmp -s ref got || echo "differs: stdin"
sed "s|^tally: -:|tally: $f:|" goterr | cmp -s referr - || echo "stderr differs: stdin"
# Short keys hashed one by one rather than eight at a time (AVX-512).
TALLY_NO_AVX512=1 "$T" "$@" -j 2 "$f" > got 2> goterr || echo "failed: TALLY_NO_AVX512"
cmp -s ref got || echo "differs: TALLY_NO_AVX512"
cmp -s referr goterr || echo "stderr differs: TALLY_NO_AVX512"
EOF
SAME=$WORK/same.sh
export SAME

check determinism-words-genesis 0 'sh "$SAME" "$GENESIS"'
requires python3
check determinism-words-generated 0 'sh "$SAME" "$GEN"'
requires python3
check determinism-space 0 'sh "$SAME" "$GEN" --split=space --case=keep'
check determinism-lines 0 'sh "$SAME" "$GENESIS" -l --sort=key'
check determinism-ngram2 0 'sh "$SAME" "$GENESIS" --ngram 2'
requires python3
check determinism-ngram3 0 'sh "$SAME" "$GEN" --ngram 3 --sort=key'
# Keys cut across chunks: n-grams joined by the stitcher are counted in the
# message too.
expect_out <<'EOF'
message
EOF
check determinism-ngram-cut 0 'sh "$SAME" "$GENESIS" --ngram 2 --max-key-bytes 9 && grep -q "^tally: [0-9]* keys longer than 9 bytes were cut to that length$" referr && echo message'

check determinism-sort-none 0 'sh "$SAME" "$GENESIS" --sort=none'
check determinism-fields 0 'tr " " "\t" < "$GENESIS" > tsv; sh "$SAME" tsv -f 2,4'
requires python3
check determinism-top-mincount 0 'sh "$SAME" "$GEN" --top 17 --min-count 3'

# A compressed output of several of zstd's jobs (it compresses on as many
# threads as count) is the same file whatever the threads.
requires zstd
expect_out <<'EOF'
800000
EOF
check determinism-zst-output 0 'seq 1 800000 > n; for j in 1 2 4; do $T -l -j $j --sort=key -o o$j.tsv.zst n || echo "failed: -j $j"; done; cmp o1.tsv.zst o2.tsv.zst && cmp o1.tsv.zst o4.tsv.zst && zstd -q -dc o4.tsv.zst | cut -f 1 | sort -n | cmp - n && wc -l < n'

# A small budget spills to disk and merges; the result is the same.
cat > "$WORK/budget.sh" <<'EOF'
f=$1; shift
"$T" "$@" "$f" > ref || echo "reference run failed"
for v in "-m 64K -j 1" "-m 160K -j 4" "-m 96K -j 2 --chunk-size 1K" "-m 128K -j 3 --io=read"; do
	"$T" "$@" $v --stats-json s.json "$f" > got || echo "failed: $v"
	cmp -s ref got || echo "differs: $v"
	python3 -c "import json,sys; sys.exit(0 if json.load(open('s.json'))['runs_spilled'] == 0 else 1)" && echo "no spill: $v"
done
ls -A "$TMPDIR"
EOF
BUDGET=$WORK/budget.sh
export BUDGET

requires python3
check budget-words-genesis 0 'sh "$BUDGET" "$GENESIS"'
requires python3
check budget-lines-genesis 0 'sh "$BUDGET" "$GENESIS" -l --sort=key'
requires python3
check budget-ngram-generated 0 'sh "$BUDGET" "$GEN" --ngram 2 --sort=none'
