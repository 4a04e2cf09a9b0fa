# tally merge: count files (tally's tsv output) summed, in any order, any
# compression, with the output options of a count.

GENESIS=$DATA/kjv-genesis.txt
export GENESIS

# Parts counted apart, in every order, one compressed, and merged: the same
# as one count of the whole, whatever the threads, chunks, I/O or budget.
cat > "$WORK/parts.sh" <<'SH'
split -n l/3 "$GENESIS" part.
"$T" --sort=count part.aa > a.tsv
"$T" --sort=key part.ab > b.tsv
"$T" --sort=none -o c.tsv.zst part.ac
"$T" "$@" "$GENESIS" > whole
SH
PARTS=$WORK/parts.sh
export PARTS
check merge-parts 0 '. "$PARTS";
for v in "" "-j 1" "-j 3" "--chunk-size 1 -j 2" "--chunk-size 7 -j 3" "--chunk-size 4K" \
	"--io=read" "--io=mmap -j 2" "-m 64K" "-m 128K -j 3" "-m 64K -j 1"; do
	"$T" merge $v a.tsv b.tsv c.tsv.zst > got || echo "failed: $v"
	cmp -s whole got || echo "differs: $v"
done
cat a.tsv b.tsv | "$T" merge - c.tsv.zst | cmp -s whole - || echo "differs: stdin"
printf "a.tsv\000b.tsv\000c.tsv.zst\000" > list
"$T" merge --files0-from list | cmp -s whole - || echo "differs: --files0-from"'

# The same with the output options: the order, the format, --top and
# --min-count apply to the merged counts.
check merge-output-options 0 'split -n l/2 "$GENESIS" part.
"$T" -o a.tsv part.aa; "$T" -o b.tsv part.ab
for v in "--sort=key" "--sort=none" "--format=json" "--format=csv" "--format=ndjson" \
	"--format=uniq" "-n 10" "--top 0" "--min-count 3" "--min-count 40 --sort=key -m 64K"; do
	"$T" $v "$GENESIS" > whole
	"$T" merge $v a.tsv b.tsv > got || echo "failed: $v"
	cmp -s whole got || echo "differs: $v"
done'

# Lines with every escaped byte, an empty key, bytes that are not UTF-8:
# keys come back as they were counted.
check merge-escapes 0 'printf "a\\tb\nback\\\\slash\ncr\r\n\n\377\376\n\na\\tb\n" > in
"$T" --lines in > whole; "$T" --lines -o c.zst in
"$T" merge whole c.zst > got
"$T" --lines in in | cmp -s got - || echo differs
"$T" --lines --format=json in > j1
"$T" merge --format=json whole | cmp -s j1 - || echo "json differs"'

expect_out <<'EOF'
the	7
foo\tbar	3
new	1
x	1
EOF
check merge-sums 0 'printf "the\t3\nfoo\\\\tbar\t2\nx\t1\n" > 1; printf "the\t4\nnew\t1\nfoo\\\\tbar\t1" > 2; "$T" merge 1 2'

# Statistics: the tokens are the counts summed.
expect_out <<'EOF'
tokens 12 distinct 4 hapax 2 files 2
EOF
requires python3
check merge-stats 0 'printf "the\t3\nfoo\t2\nx\t1\n" > 1; printf "the\t4\nnew\t1\nfoo\t1\n" > 2
"$T" merge --stats-json s.json 1 2 > /dev/null
python3 -c "import json; s = json.load(open(\"s.json\")); print(\"tokens\", s[\"tokens\"], \"distinct\", s[\"distinct\"], \"hapax\", s[\"hapax\"], \"files\", s[\"files\"])"'

check merge-empty 0 ': > e; "$T" merge e; "$T" merge < e'

# A malformed line names the file and the line, whatever the chunks and the
# threads; the input fails (exit 1), the others are counted, and -o is left
# as it was.
expect_err <<'EOF'
tally: bad.tsv:500: no TAB between key and count
EOF
check merge-malformed-line-number 1 '"$T" --sort=key "$GENESIS" > good.tsv
awk "NR == 500 { print \"bad line\"; next } 1" good.tsv > bad.tsv
for v in "-j 1" "-j 2" "--chunk-size 1 -j 3" "--chunk-size 7 -j 2" "--chunk-size 100 -j 3" "--io=read --chunk-size 3K"; do
	"$T" merge $v bad.tsv > /dev/null 2> err; [ $? = 1 ] || echo "status: $v"
	grep -v "^tally: bad.tsv:500: no TAB between key and count\$" err
done
echo old > out; "$T" merge -o out good.tsv bad.tsv; st=$?
[ "$(cat out)" = old ] || echo "out replaced"; exit $st'

expect_out <<'EOF'
y	1
EOF
expect_err <<'EOF'
tally: 1:1: empty line
tally: 2:2: no TAB between key and count
tally: 3:1: no count after the TAB
tally: 4:1: the count is not a decimal number
tally: 5:1: the count is not a decimal number
tally: 6:1: the count is not a decimal number
tally: 7:1: the count is 0
tally: 8:1: the count is too large (more than 18446744073709551615)
tally: 9:1: a backslash in the key is not one of \\, \t, \n, \r
tally: 10:1: a backslash in the key is not one of \\, \t, \n, \r
tally: 11:1: the key is longer than --max-key-bytes
tally: missing: No such file or directory
EOF
check merge-malformed 1 'printf "\n" > 1; printf "x\t1\nx 1\n" > 2; printf "x\t\n" > 3; printf "x\t-1\n" > 4
printf "x\t1\r\n" > 5; printf "x\t1 \n" > 6; printf "x\t0\n" > 7; printf "x\t18446744073709551616\n" > 8
printf "a\\\\x\t1\n" > 9; printf "a\\\\\t1\n" > 10; printf "abcde\t1\n" > 11; printf "y\t1\n" > 12
"$T" merge -j 1 --max-key-bytes 4 1 2 3 4 5 6 7 8 9 10 11 missing 12 > out; st=$?
grep -v "^x	" out; exit $st'

# Keys as long as --max-key-bytes allows; a longer one is an error.  A line
# longer than any count line with such keys is told as such, whether it is
# longer than a whole buffer (split, from a pipe or mapped) or not.
expect_out <<'EOF'
3 2002
EOF
expect_err <<'EOF'
tally: long:2: the key is longer than --max-key-bytes
tally: -:2: the line is too long for a key of at most --max-key-bytes
tally: huge:2: the line is too long for a key of at most --max-key-bytes
tally: huge:2: the line is too long for a key of at most --max-key-bytes
EOF
requires python3
check merge-long-keys 1 'python3 -c "import sys; sys.stdout.write(\"b\t1\n\" + \"a\" * 2000 + \"\t3\n\")" > long
"$T" merge --max-key-bytes 2000 long | awk "length(\$0) > 100 { print \$2, length(\$0) }"
"$T" merge --max-key-bytes 1999 long > /dev/null
python3 -c "import sys; sys.stdout.write(\"b\t1\n\" + \"a\" * 300000 + \"\t3\n\")" > huge
"$T" merge --max-key-bytes 100K --chunk-size 1 < huge > /dev/null
"$T" merge --max-key-bytes 100K --chunk-size 1 --io=mmap huge > /dev/null
"$T" merge --max-key-bytes 100K huge > /dev/null'

# Counts that add up past 2^64 - 1, in one input or across them, whatever
# thread has them: the run fails, with nothing on stdout.
expect_err <<'EOF'
tally: the counts add up to more than 18446744073709551615
tally: the counts add up to more than 18446744073709551615
tally: the counts add up to more than 18446744073709551615
tally: the counts add up to more than 18446744073709551615
tally: the counts add up to more than 18446744073709551615
EOF
check merge-overflow 1 'printf "k\t18446744073709551615\nk\t1\nk\t2\n" > 1; printf "k\t18446744073709551615\n" > 2; printf "j\t1\n" > 3
"$T" merge -j 1 1; "$T" merge -j 2 2 3; "$T" merge --format=csv 2 3; "$T" merge --format=json 2 3; "$T" merge --chunk-size 1 -j 3 3 2; st=$?
"$T" merge 2 > /dev/null || echo "2^64 - 1 alone failed"; exit $st'

usage_case merge-lines    'merge --lines a'       "merge: --lines does not apply: count files are summed as they are"
usage_case merge-field    'merge -f 2 a'          "merge: --field does not apply: count files are summed as they are"
usage_case merge-ngram    'merge --ngram 2 a'     "merge: --ngram does not apply: count files are summed as they are"
usage_case merge-case     'merge --case=lower a'  "merge: --case does not apply: count files are summed as they are"
usage_case merge-stop     'merge --stopwords s a' "merge: --stopwords does not apply: count files are summed as they are"
usage_case merge-minlen   'merge --min-length 2'  "merge: --min-length does not apply: count files are summed as they are"
usage_case merge-csv      'merge --csv'           "merge: --csv does not apply: count files are summed as they are"
usage_case merge-split    'merge -s --split=space' "merge: --split does not apply: count files are summed as they are"
usage_case merge-unknown  'merge --foo'           "unrecognized option '--foo'"

expect_out <<'EOF'
  or:  tally merge [OPTION]... [FILE]...
EOF
check merge-help 0 '$T merge --help | sed -n 2p'

# Only the first argument names the command: a file named merge elsewhere
# is counted.
expect_out <<'EOF'
merge	1
EOF
check merge-file-named-merge 0 'printf "merge\n" > merge; $T -l merge'

# --sort=key of count files already in key order (as tally --sort=key
# writes them): they are merged as they are read, with no table; files out
# of order, stdin and the files past the fan-in are counted as before.  The
# same output either way, whatever the threads, chunks, I/O, budget and
# output options; keys with escapes are ordered as they were counted.
check merge-sorted-same 0 'split -n l/3 "$GENESIS" part.
printf "a\\tb\na\\\\b\na\nab\n\n\377\n" >> part.ab
for p in aa ab ac; do "$T" --sort=key part.$p > $p.tsv; done
"$T" --sort=key -o ac.tsv.zst part.ac; "$T" part.ab > ab-count.tsv
"$T" --sort=key part.aa part.ab part.ac part.ab > whole
for v in "" "-j 1" "-j 3" "--chunk-size 1 -j 2" "--chunk-size 7 -j 3" "--io=mmap" "--io=read" \
	"-m 64K -j 1" "-m 96K -j 2"; do
	"$T" merge --sort=key $v aa.tsv ab.tsv ac.tsv ab.tsv > got || echo "failed: $v"
	cmp -s whole got || echo "differs: $v"
	"$T" merge --sort=key $v aa.tsv ab-count.tsv ac.tsv.zst ab.tsv > got || echo "failed: mixed $v"
	cmp -s whole got || echo "differs: mixed $v"
	TALLY_SPILL_FANIN=4 "$T" merge --sort=key $v aa.tsv ab.tsv ac.tsv ab-count.tsv > got || echo "failed: fan-in $v"
	cmp -s whole got || echo "differs: fan-in $v"
done
cat ab.tsv | "$T" merge --sort=key aa.tsv - ac.tsv ab.tsv | cmp -s whole - || echo "differs: stdin"
for v in "--min-count 3" "-n 10" "--format=json" "--format=uniq" "--min-count 2 -n 5 --format=csv"; do
	"$T" --sort=key $v part.aa part.ab part.ac part.ab > w
	"$T" merge --sort=key $v aa.tsv ab.tsv ac.tsv.zst ab-count.tsv > got || echo "failed: $v"
	cmp -s w got || echo "differs: $v"
done'

# Files that look in order and are not, late: the last two keys swapped, a
# key twice, a malformed line at the end.  Counted, not merged as read.
expect_err <<'EOF'
tally: bad:3: no TAB between key and count
EOF
check merge-sorted-late-disorder 1 '"$T" --sort=key "$GENESIS" > k.tsv
n=$(wc -l < k.tsv); { head -n $((n - 2)) k.tsv; tail -n 1 k.tsv; tail -n 2 k.tsv | head -n 1; } > swapped
{ cat k.tsv; tail -n 1 k.tsv; } > twice
"$T" --sort=key "$GENESIS" "$GENESIS" > want
"$T" merge --sort=key k.tsv swapped | cmp -s want - || echo "differs: swapped"
"$T" merge --sort=key --chunk-size 5 swapped k.tsv | cmp -s want - || echo "differs: swapped, chunks"
cat twice | "$T" merge --sort=key - k.tsv > want2
"$T" merge --sort=key twice k.tsv | cmp -s want2 - || echo "differs: twice"
printf "a\t1\nb\t2\nc 3\n" > bad; "$T" merge --sort=key k.tsv bad > /dev/null'

# Merged as they are read, sorted count files need no table whatever their
# size: under the smallest budget, nothing is spilled and the tables stay
# empty, where counting the same files spills; the statistics are those of
# the count.  (A compressed file's reader takes some 6 MiB, its decoder and
# buffers, and with keys of up to 1 MiB its buffer 2 MiB: at -m 64K the
# readers' 8 MiB take both files with shorter keys.)
expect_out <<'EOF'
sorted 0 0
sorted 0 0
counted spilled

EOF
requires python3
check merge-sorted-no-table 0 'awk "BEGIN { for (i = 0; i < 60000; i++) printf \"line %07d\\n\", i * 7 % 60000 }" > in
"$T" --lines --sort=key in > k1.tsv; "$T" --lines --sort=key -o k2.tsv.zst in in; "$T" --lines --sort=key -o k2.tsv in in
"$T" --lines --sort=key in in in > want
: > empty; "$T" merge --sort=key -j 1 -m 64K --stats-json e.json empty
for v in "k1.tsv k2.tsv" "--max-key-bytes 4K k1.tsv k2.tsv.zst"; do
	"$T" merge --sort=key -j 1 -m 64K --stats-json s.json $v > got; cmp -s want got || echo "differs: $v"
	python3 -c "import json; s = json.load(open(\"s.json\")); e = json.load(open(\"e.json\")); print(\"sorted\", s[\"runs_spilled\"], s[\"peak_table\"] - e[\"peak_table\"])"
done
"$T" merge -j 1 -m 64K --stats-json c.json k1.tsv k2.tsv.zst > /dev/null
grep -q "\"runs_spilled\":[1-9]" c.json && echo counted spilled
"$T" merge --sort=key -j 1 -m 64K --max-key-bytes 4K --stats-json s.json k1.tsv k2.tsv.zst > /dev/null
python3 -c "import json; s = json.load(open(\"s.json\")); c = json.load(open(\"c.json\")); print(*[(k, s[k]) for k in (\"files\", \"files_compressed\", \"bytes_read\", \"bytes_decoded\", \"tokens\", \"distinct\", \"hapax\") if s[k] != c[k]])"'

# The statistics of a merge with files set aside are those of the same
# merge with them counted (through stdin, never set aside), the counted
# inputs spilled or not.
requires python3
check merge-sorted-stats 0 '"$T" --sort=key "$GENESIS" > g.tsv; "$T" "$GENESIS" > gc.tsv
for v in "-m 64K -j 1" "-m 96K -j 2" "-j 2"; do
	"$T" merge --sort=key $v --stats-json a.json g.tsv gc.tsv g.tsv > o1
	cat g.tsv | "$T" merge --sort=key $v --stats-json b.json - gc.tsv g.tsv > o2
	cmp -s o1 o2 || echo "differs: $v"
	python3 -c "import json, sys; a = json.load(open(\"a.json\")); b = json.load(open(\"b.json\")); d = [(k, a[k], b[k]) for k in (\"tokens\", \"distinct\", \"hapax\", \"files\", \"bytes_read\", \"bytes_decoded\") if a[k] != b[k]]; d and print(sys.argv[1], d)" "$v"
done'

# A file set aside that changes before it is read again fails the run, -o
# left as it was: rewritten in place with its size and time kept (its keys
# no longer in order; or a count changed, the keys in order), grown, or
# rewritten with -n 1, whose output is whole before the change is read.
# The FIFO named after it holds tally between the two readings.
expect_out <<'EOF'
status 1
old
status 1
old
status 1
old
status 1
old
EOF
expect_err <<'EOF'
tally: a.tsv: changed since it was first read
tally: a.tsv: changed since it was first read
tally: a.tsv: changed since it was first read
tally: a.tsv: changed since it was first read
EOF
check merge-sorted-changed 0 '"$T" --sort=key "$GENESIS" > k.tsv
n=$(wc -l < k.tsv); { head -n $((n - 2)) k.tsv; tail -n 1 k.tsv; tail -n 2 k.tsv | head -n 1; } > swapped
{ head -n $((n - 1)) k.tsv; tail -n 1 k.tsv | tr 0-8 1-9; } > counts
cmp -s k.tsv counts && echo "counts unchanged"
for how in swapped grown counts top; do
	rm -f list blocker; mkfifo list blocker
	cp k.tsv a.tsv; touch -r a.tsv ref; echo old > out
	opt=; [ $how = top ] && opt="-n 1"
	"$T" merge --sort=key $opt -o out --files0-from list & pid=$!
	timeout 60 sh -c "printf \"a.tsv\\000blocker\\000\" > list" &
	timeout 60 sh -c "exec 4> blocker; case $how in grown) printf \"zz\\t1\\n\" >> a.tsv ;; counts) cat counts > a.tsv; touch -r ref a.tsv ;; *) cat swapped > a.tsv; touch -r ref a.tsv ;; esac; printf \"zzz\\t1\\n\" >&4"
	wait $pid; echo "status $?"; cat out
done'

# --top and --min-count apply to the sums of the files set aside and of the
# inputs counted, and the statistics count every key, whatever --top.
expect_out <<'EOF'
c	2
"distinct":5,"hapax":5
EOF
check merge-sorted-top-min-count 0 'printf "c\t1\n" > aside.tsv; printf "c\t1\nb\t1\na\t1\n" > counted.tsv
"$T" merge --sort=key --min-count 2 -n 1 aside.tsv counted.tsv
printf "a\t1\nb\t1\nc\t1\n" > a.tsv; printf "z\t1\ny\t1\n" > b.tsv
"$T" merge --sort=key -n 1 --stats-json s.json a.tsv b.tsv > /dev/null
grep -o "\"distinct\":[0-9]*,\"hapax\":[0-9]*" s.json'

# The readers of the files set aside stay within a quarter of the budget
# (8 MiB at the least), whatever --chunk-size: twelve files under -m 64M
# with chunks of 8 MiB hold less than 20 MiB of input buffers at once.
expect_out <<'EOF'
ok
EOF
check merge-sorted-memory 0 'i=0; while [ $i -lt 12 ]; do
	awk -v k=$i "BEGIN { for (j = k; j < 240000; j += 12) printf \"key%09d\\t1\\n\", j }" > c$i.tsv; i=$((i + 1))
done
awk "BEGIN { for (j = 0; j < 240000; j++) printf \"key%09d\\t1\\n\", j }" > want
"$T" merge --sort=key -m 64M --chunk-size 8M --stats-json s.json c*.tsv | cmp -s want - || echo differs
io=$(sed "s/.*\"peak_io\":\([0-9]*\).*/\1/" s.json); [ "$io" -lt 20971520 ] && echo ok || echo "peak_io $io"'

# Out of memory at each allocation in turn, of a merge of files in key
# order with another counted: exit 1 and -o left as it was, never a crash,
# until the allocations all succeed and the output is whole.
expect_out <<'EOF'
whole
EOF
check merge-sorted-out-of-memory 0 'printf "a\t1\nb\t2\nc\\\\td\t3\n" > a.tsv; printf "z\t1\nbb\t2\n" > b.tsv
printf "a\t1\nbb\t2\nz\t3\n" > c.tsv; "$T" merge --sort=key a.tsv b.tsv c.tsv > want
k=1; while [ $k -lt 5000 ]; do
	echo old > out; TALLY_FAIL_ALLOC=$k "$T" merge --sort=key -j 2 -o out a.tsv b.tsv c.tsv 2> err; st=$?
	if [ $st = 0 ]; then cmp -s out want && echo whole || echo "differs at $k"; break; fi
	[ $st = 1 ] || echo "status $st at $k"
	[ "$(cat out)" = old ] || echo "out replaced at $k"
	k=$((k + 1))
done'
