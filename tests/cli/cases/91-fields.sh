# Data modes against independent references: CSV fields against Python's csv
# module, TSV fields against cut, n-grams against a Python reference, and
# --files0-from on a tree of files.

REFK=$HERE/ref_keys.py
export REFK

# --- CSV against Python's csv module ---

have python3 && python3 "$REFK" csvgen 1500 7 > "$WORK/gen.csv"
GENCSV=$WORK/gen.csv
export GENCSV

# csv_case NAME LIST: every thread count and chunk size gives the reference,
# and skipped_records is the reference's count of records lacking a column.
cat > "$WORK/csv.sh" <<'EOF'
list=$1
python3 "$REFK" csvcount "$GENCSV" 1 "$list" > ref 2> skipped || echo "reference failed"
[ -s ref ] || echo "empty reference"
want=$(sed -n 's/^skipped //p' skipped)
for j in 1 2 3 4; do
	for c in 1 7 100 4K; do
		"$T" --csv --header -f "$list" -j $j --chunk-size $c --stats-json s.json "$GENCSV" > got || echo "failed: -j $j --chunk-size $c"
		cmp -s ref got || echo "differs: -j $j --chunk-size $c"
		grep -q "\"skipped_records\":$want," s.json || echo "skipped_records: want $want, $(grep -o '"skipped_records":[0-9]*' s.json)"
	done
done
"$T" --csv --header -f "$list" < "$GENCSV" | cmp -s ref - || echo "differs: stdin"
EOF
CSVSH=$WORK/csv.sh
export CSVSH

requires python3
check csv-ref-name 0 'sh "$CSVSH" text'
requires python3
check csv-ref-name-kind 0 'sh "$CSVSH" kind'
requires python3
check csv-ref-columns 0 'sh "$CSVSH" 2,3'
requires python3
check csv-ref-range 0 'sh "$CSVSH" 3-4'
requires python3
check csv-ref-names-several 0 'sh "$CSVSH" tag,kind'

# Without --header the header is a record like the others.
requires python3
check csv-ref-no-header 0 'python3 "$REFK" csvcount "$GENCSV" 0 2 > ref 2>/dev/null; $T --csv -f 2 "$GENCSV" > got; cmp ref got'

# The last record without a line end.
requires python3
check csv-ref-no-final-newline 0 'python3 -c "import sys; sys.stdout.buffer.write(open(sys.argv[1], \"rb\").read().rstrip(b\"\\r\\n\"))" "$GENCSV" > in; python3 "$REFK" csvcount in 1 tag > ref 2>/dev/null; for c in 1 7 4K; do $T --csv --header -f tag --chunk-size $c -j2 in | cmp -s ref - || echo "differs: $c"; done'

# --- Malformed CSV ---

# An unterminated quote at the end of the input: the field runs to the end
# of the input, line ends included, as Python's csv module reads it; not an
# error.
expect_out <<'EOF'
a	1
x,y\nz,w\n	1
EOF
check csv-unterminated-quote 0 'printf "a,b\n\"x,y\nz,w\n" | $T --csv -f 1'

expect_out <<'EOF'
tail	1
x\n	1
EOF
check csv-unterminated-quote-no-newline 0 'printf "tail\n\"x\n" > in; $T --csv -f 1 --sort=key in; printf "\"x" | $T --csv -f 1 > /dev/null'

# A quote inside an unquoted field is an ordinary character; text after a
# closing quote is appended to the field (Python's csv module does both).
expect_out <<'EOF'
a"b	1
abcd	1
x "y" z	1
EOF
check csv-stray-quote 0 'printf "a\"b,c\nx \"y\" z,q\n\"ab\"cd,e\n" | $T --csv -f 1 --sort=key'

expect_out <<'EOF'
same
EOF
requires python3
check csv-malformed-like-python 0 'printf "a\"b,c\nx \"y\" z,q\n\"ab\"cd,e\n\"\"x,1\n\"un,2\nterminated\n" > in; python3 "$REFK" csvcount in 0 1 > ref 2>/dev/null; for c in 1 3 4K; do $T --csv -f 1 --chunk-size $c in | cmp -s ref - || echo "differs: $c"; done; echo same'

# --- Records missing a column ---

expect_out <<'EOF'
b\tz	1
"skipped_records":4
"skipped_records":2
EOF
check field-skipped-records 0 'printf "a\tb\nb\tq\tz\n\nc\n\t\n" > in; $T -f 1,3 --stats-json s.json in; grep -o "\"skipped_records\":[0-9]*" s.json; $T -f 2 --stats-json s.json in > /dev/null; grep -o "\"skipped_records\":[0-9]*" s.json'

expect_out <<'EOF'
y	1
"skipped_records":2
EOF
check csv-skipped-records 0 'printf "h1,h2\n1\n\n2,y\n3\n" | $T --csv --header -f h2 --stats-json s.json; grep -o "\"skipped_records\":[0-9]*" s.json'

# --- TSV fields against cut ---

# Lines of 0 to 5 fields: empty fields, spaces, backslashes, repeats.
awk 'BEGIN { srand(3); split("a b c a\\b x\\ny  ", v, " ")
	for (i = 0; i < 4000; i++) {
		n = int(rand() * 6); line = ""
		for (k = 0; k < n; k++) {
			f = (rand() < 0.15) ? "" : v[int(rand() * 5) + 1] (rand() < 0.3 ? " " int(rand() * 3) : "")
			line = line (k ? "\t" : "") f
		}
		print line
	} }' > "$WORK/gen.tsv"
GENTSV=$WORK/gen.tsv
export GENTSV

# tsv.sh LIST MAXCOL: cut the lines with at least MAXCOL fields, count with
# sort | uniq -c, order by count then key bytes, then escape as tally's tsv
# does (the count goes first meanwhile: the keys hold TABs).
cat > "$WORK/tsv.sh" <<'EOF'
list=$1 max=$2
tab=$(printf '\t')
grep -E "^([^$tab]*$tab){$((max - 1))}" "$GENTSV" | cut -f "$list" | sort | uniq -c |
	sed -E "s/^ *([0-9]+) /\\1$tab/" | sort -t "$tab" -k1,1nr -k2 |
	sed -E 's/\\/\\\\/g; s/\t/\\t/g; s/^([0-9]+)\\t(.*)$/\2\t\1/' > ref
[ -s ref ] || echo "empty reference"
for v in "-j 1" "-j 2 --chunk-size 1" "-j 3 --chunk-size 7" "-j 4 --chunk-size 100"; do
	"$T" -f "$list" $v "$GENTSV" > got || echo "failed: $v"
	cmp -s ref got || echo "differs: $v"
done
EOF
TSVSH=$WORK/tsv.sh
export TSVSH

check tsv-cut-1 0 'sh "$TSVSH" 1 1'
check tsv-cut-3 0 'sh "$TSVSH" 3 3'
check tsv-cut-2-4 0 'sh "$TSVSH" 2,4 4'
check tsv-cut-range 0 'sh "$TSVSH" 1-3 3'
check tsv-cut-5 0 'sh "$TSVSH" 5 5'
check tsv-cut-open-range 0 'sh "$TSVSH" 3- 3'
check tsv-cut-reversed 0 'sh "$TSVSH" 4,2,2 4'
check tsv-cut-no-start 0 'sh "$TSVSH" -3,5 5'
usage_case field-list-dash "-f -"   "invalid field list '-'"

# --- N-grams against a reference ---

requires python3
check ngram-ref-2 0 'python3 "$REFK" ngram 2 "$DATA/kjv-genesis.txt" > ref; for v in "-j 1" "-j 2" "-j 3 --chunk-size 7" "-j 4 --chunk-size 1K"; do $T --ngram 2 --split=space --case=ascii $v "$DATA/kjv-genesis.txt" | cmp -s ref - || echo "differs: $v"; done'
requires python3
check ngram-ref-3 0 'python3 "$REFK" ngram 3 "$DATA/kjv-genesis.txt" > ref; for v in "-j 1" "-j 2" "-j 3 --chunk-size 7" "-j 4 --chunk-size 1K"; do $T --ngram 3 --split=space --case=ascii $v "$DATA/kjv-genesis.txt" | cmp -s ref - || echo "differs: $v"; done'

# Two files: no n-gram across them; the concatenation has the n-grams at the
# seam, and only those more.
expect_out <<'EOF'
files
cat
seam
EOF
requires python3
check ngram-ref-files 0 'head -n 777 "$DATA/kjv-genesis.txt" > a; tail -n +778 "$DATA/kjv-genesis.txt" > b; python3 "$REFK" ngram 3 a b > ref2; cat a b > ab; python3 "$REFK" ngram 3 ab > ref1; $T --ngram 3 --split=space --case=ascii -j2 --chunk-size 5K a b | cmp -s ref2 - && echo files; $T --ngram 3 --split=space --case=ascii -j2 --chunk-size 5K ab | cmp -s ref1 - && echo cat; cmp -s ref1 ref2 || echo seam; n1=$($T --ngram 3 --split=space --case=ascii ab | awk -F "\t" "{ s += \$2 } END { print s }"); n2=$($T --ngram 3 --split=space --case=ascii a b | awk -F "\t" "{ s += \$2 } END { print s }"); [ $((n1 - n2)) = 2 ] || echo "n-grams: $n1 in the concatenation, $n2 in the files"'

# --- --files0-from ---

# A tree of pieces of Genesis, some with awkward names; the names come from
# a file and from find on stdin, and give what cat of the files gives.
cat > "$WORK/tree.sh" <<'EOF'
mkdir -p d/sub
split -l 800 "$DATA/kjv-genesis.txt" d/part.
mv d/part.ab "d/with space"
mv d/part.ac "d/sub/new
line"
mv d/part.ad "d/sub/-dash"
EOF
TREE=$WORK/tree.sh
export TREE

expect_out <<'EOF'
list
find
EOF
check files0-from-tree 0 '. "$TREE"; [ $(find d -type f -print0 | tr -cd "\\000" | wc -c) = 6 ] || echo "not 6 files"; find d -type f -exec cat {} + | $T > ref; find d -type f -print0 > list; $T --files0-from list | cmp -s ref - && echo list; find d -type f -print0 | $T --files0-from=- -j2 --chunk-size 3K | cmp -s ref - && echo find'

expect_err <<'EOF'
tally: d/missing: No such file or directory
tally: d/sub: Is a directory
EOF
expect_out <<'EOF'
same
EOF
check files0-from-failing-entries 1 '. "$TREE"; find d -type f -exec cat {} + | $T > ref; { find d -type f -print0 | head -z -n 3; printf "d/missing\000d/sub\000"; find d -type f -print0 | tail -z -n +4; } > list; $T --files0-from list > got; st=$?; cmp -s ref got && echo same; exit $st'

expect_err <<'EOF'
tally: d/missing: No such file or directory
EOF
expect_out <<'EOF'
same
EOF
check files0-from-stdin-failing 1 '. "$TREE"; find d -type f -exec cat {} + | $T -l --sort=key > ref; { printf "d/missing\000"; find d -type f -print0; } | $T -l --sort=key --files0-from=- > got; st=$?; cmp -s ref got && echo same; exit $st'

# --- Records longer than a reader's buffer ---

# A long column between two selected ones (3 MiB: longer than the default
# buffers, 2 MiB for TSV and 4 MiB for CSV), and a selected column split
# across buffers (small buffers): the key so far goes on to the next chunk.
# TSV by number and by name, CSV with quotes, commas and newlines in the long
# column; every I/O path and thread count gives the expected counts.
cat > "$WORK/longrec.py" <<'EOF'
import sys
big, kind = int(sys.argv[1]), sys.argv[2]
x, y = "x" * big, "y" * (big // 4)
rows = [("k", "v", 3), ("j", "w", 2), ("k", "w", 1)]
out = []
if kind == "tsv":
    out.append("A\tB\tC\n")
    for a, c, n in rows:
        out += ["%s\t%s\t%s-%s\n" % (a, x, c, y)] * n
    sep = "\\t"
else:
    out.append("A,B,C\r\n")
    q = '"' + ('a,"" b\n' * (big // 7)) + '"'
    for a, c, n in rows:
        out += ['%s,%s,"%s-,%s"\r\n' % (a, q, c, y)] * n
    sep = ","
open("in", "w").write("".join(out))
with open("want", "w") as w:
    for a, c, n in rows:
        w.write("%s%s%s-%s%s\t%d\n" % (a, sep, c, "," if kind == "csv" else "", y, n))
EOF
LONGREC=$WORK/longrec.py
export LONGREC
cat > "$WORK/longrec.sh" <<'EOF'
big=$1 kind=$2 opts=$3
python3 "$LONGREC" "$big" "$kind"
if [ "$kind" = tsv ]; then
	names='C,A' csv=''
else
	names='A,C' csv='--csv'
fi
zstd -q -f in -o in.zst
for j in 1 2; do
	for io in mmap read; do
		"$T" $csv --header -f 1,3 -j $j --io=$io $opts in > got || echo "failed: -j $j --io=$io"
		cmp -s want got || echo "differs: -j $j --io=$io"
		"$T" $csv --header -f $names -j $j --io=$io $opts in > got || echo "failed: names -j $j --io=$io"
		cmp -s want got || echo "differs: names -j $j --io=$io"
	done
	"$T" $csv --header -f 1,3 -j $j $opts < in | cmp -s want - || echo "differs: stdin -j $j"
	"$T" $csv --header -f 1,3 -j $j $opts in.zst | cmp -s want - || echo "differs: zstd -j $j"
done
"$T" $csv --header -f 1,3 -s $opts in 2>&1 >/dev/null | grep -q 'skipped records: *0$' || echo "records skipped"
EOF
LONGRECSH=$WORK/longrec.sh
export LONGRECSH

requires python3
requires zstd
check fields-long-records-tsv 0 'sh "$LONGRECSH" 3145728 tsv ""'
requires python3
requires zstd
check fields-long-records-csv 0 'sh "$LONGRECSH" 3145728 csv ""'
requires python3
requires zstd
check fields-long-records-small-buffers 0 'sh "$LONGRECSH" 3000 tsv "--max-key-bytes 1K --chunk-size 1K" && sh "$LONGRECSH" 3000 csv "--max-key-bytes 1K --chunk-size 1K"'

# A header longer than the first buffer cannot be read whole (its end and
# the names after the cut are out of reach): that input fails, the others
# are counted.
expect_out <<'EOF'
z	1
EOF
expect_err <<'EOF'
tally: h.tsv: header longer than 2084 bytes (raise --max-key-bytes)
EOF
requires python3
check fields-header-too-long 1 'python3 -c "import sys; sys.stdout.write(\"A\\t\" + \"B\" * 5000 + \"\\tC\\n\" + \"a\\tb\\tc\\n\" * 3)" > h.tsv; printf "A\tB\tC\nx\ty\tz\n" > ok.tsv; $T --header -f C --max-key-bytes 1K --chunk-size 1K h.tsv ok.tsv'

# A record that lacks a selected column is not counted, however long its key
# already is (SPEC 2): not as a cut key, not with the default limit either.
expect_out <<'EOF'
ab,cc	1
skipped 2 cut 1
EOF
expect_err <<'EOF'
tally: 1 key longer than 5 bytes was cut to that length
tally: 1 key longer than 5 bytes was cut to that length
EOF
check fields-lacking-long-key 0 'printf "abcdefgh\nxy\nab,cccccc\n" > in; $T -f 1,2 -d , --max-key-bytes 5 --stats-json s.json in; $T --csv -f 1,2 --max-key-bytes 5 in | cmp - /dev/stdin <<E || echo "csv differs"
ab,cc	1
E
python3 -c "print(\"x\" * 1100000)" | $T -f 1,2; sed -n "s/.*\"skipped_records\":\([0-9]*\).*\"cut_keys\":\([0-9]*\).*/skipped \1 cut \2/p; s/.*\"cut_keys\":\([0-9]*\).*\"skipped_records\":\([0-9]*\).*/skipped \2 cut \1/p" s.json'

# A CSV column of '\r' bytes (data, but for one right before the record's
# '\n') longer than a buffer: the record goes on past it to its third column.
# 30000 bytes with small buffers, 5 MB with the default ones (4 MiB for CSV).
expect_out <<'EOF'
x,z	1
y,c	1
x,z	1
y,c	1
x,z	1
y,c	1
x,z	1
y,c	1
EOF
check fields-csv-long-cr-column 0 'for n in 30000 5000000; do { printf "x,"; head -c $n /dev/zero | tr "\000" "\r"; printf ",z\r\ny,b,c\n"; } > in$n; done; o="--csv -f 1,3 --max-key-bytes 1K --chunk-size 1K"; $T $o --io=mmap in30000; $T $o --io=read -j 1 in30000; $T $o -j 2 < in30000; $T --csv -f 1,3 in5000000'

# Empty lines before a CSV header are no record, in the first buffer or in
# buffers of their own (tiny chunks); an input of empty lines only has no
# header and counts nothing, as an empty input.
expect_out <<'EOF'
y	1
y	1
y	1
status 0
EOF
check fields-csv-header-after-empty-lines 0 'printf "\n\r\n\nA,B\r\n\nx,y\n" > in; $T --csv --header -f B --chunk-size 1 in; $T --csv --header -f B --chunk-size 1 --io=mmap in; $T --csv --header -f B < in; printf "\n\r\n" | $T --csv --header -f B; echo "status $?"'

# A last record with no final newline that fills the last buffer exactly,
# cut there to go on (its key is longer than --max-key-bytes): a stream's
# reader learns of the end only from the next read, and the record was lost
# (counted as skipped) when read from a pipe or with --io=read.  The buffer
# is 40 bytes at these settings, 2097188 at the defaults for TSV.
expect_out <<'EOF'
00	1
00	1
00	1
00	1
	1
1
EOF
expect_err <<'EOF'
tally: 1 key longer than 2 bytes was cut to that length
tally: 1 key longer than 2 bytes was cut to that length
tally: 1 key longer than 2 bytes was cut to that length
tally: 1 key longer than 2 bytes was cut to that length
tally: 1 key longer than 1048576 bytes was cut to that length
EOF
check fields-last-buffer-full 0 'o="--max-key-bytes 2 --chunk-size 1"; printf "%080d" 0 > r80; $T -f 1 $o < r80; $T -f 1 $o --io=read r80; $T -f 1 $o --io=mmap r80; $T --csv -f 1 $o < r80; printf "%039d;" 0 | $T -f 2 -d ";" $o; head -c 2097188 /dev/zero | tr "\000" x | $T -f 1 | cut -f 2'

# A lone CR in CSV is data, but one at the very end of the input is dropped
# as a newline's would be (man page), at any chunk size and I/O.
expect_out <<'EOF2'
x\ry,z	1
z	1
x\ry,z\r	1
empty
EOF2
check fields-csv-cr-at-end 0 'printf "x\ry,z\r" > a; printf "x\ry,\"z\"\r" > b; printf "x\ry,z\r\r" > c; printf "\r" > d; for c in 1 2 1K; do $T --csv -f 1,2 --chunk-size $c a > a$c; $T --csv -f 2 --chunk-size $c --io=mmap b > b$c; $T --csv -f 1,2 --chunk-size $c < c > c$c; done; cmp -s a1 a2 && cmp -s a1 a1K && cat a1; cmp -s b1 b2 && cmp -s b1 b1K && cat b1; cmp -s c1 c2 && cmp -s c1 c1K && cat c1; $T --csv -f 1 d > o; [ -s o ] || echo empty'
