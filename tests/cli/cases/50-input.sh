# Inputs: files, stdin, failures, empty and binary input, --files0-from, zstd.

expect_out <<'EOF'
a	3
b	1
EOF
check files-several 0 'printf "a b\n" > 1; printf "a" > 2; printf "A\n" > 3; $T 1 2 3'

expect_out <<'EOF'
a	3
b	1
EOF
check files-and-options-mixed 0 'printf "a b\n" > 1; printf "a a\n" > 2; $T 1 -j 2 2 --sort=count'

expect_out <<'EOF'
a	2
EOF
check files-dashdash 0 'printf "a\n" > -s; printf "a\n" > merge; $T -- -s merge'

# A file of sysfs says it holds 4096 bytes and holds fewer: it is read to
# where its reads end, as wc and cat read it, not taken for one that shrank.
# (Where there is no such file, the case has nothing to read.)
expect_out <<'EOF'
same
same
same
EOF
check files-size-overstated 0 'f=/sys/devices/system/cpu/online; for io in auto read mmap; do if [ -r $f ] && [ "$(stat -c %s $f)" -gt "$(wc -c < $f)" ]; then cat $f | $T -l > a; $T -l --io=$io $f > b; [ -s a ] && cmp -s a b && echo same; else echo same; fi; done'

expect_out <<'EOF'
a	2
b	1
EOF
expect_err <<'EOF'
tally: nofile: No such file or directory
tally: dir: Is a directory
EOF
check files-failing 1 'printf "a b\n" > 1; printf "a\n" > 2; mkdir dir; $T 1 nofile dir 2'

# A name is written into a message as it is, but for what a terminal would
# act on or that would break the line: control characters, C1 controls and
# bytes of no UTF-8 character are escaped (as ls -b and coreutils keep them
# from the terminal); other UTF-8 is kept.
expect_err <<'EOF'
tally: no\nsuch: No such file or directory
tally: \x1b[31mred: No such file or directory
tally: c1\xc2\x9bx: No such file or directory
tally: bad\xffbyte: No such file or directory
tally: tab	ünï cödé: No such file or directory
EOF
check files-names-escaped 1 'printf "no\nsuch\0\033[31mred\0c1\302\233x\0bad\377byte\0tab\tünï cödé\0" > names; $T --files0-from names'

# A long path (four names of 200 bytes, PATH_MAX allows 4096) is named in
# full, and the reason follows it: a missing input, -o in a missing
# directory, -T in one.
expect_out <<'EOF'
input whole
-o whole
-T whole
EOF
check long-path-messages 0 'd=$(printf "%0200d" 0); mkdir -p $d/$d/$d/$d; p=$d/$d/$d/$d; printf "a\n" > in; $T $p/missing 2> e1; grep -qx "tally: $p/missing: No such file or directory" e1 && echo input whole; $T -o $p/no/out in 2> e2; grep -qx "tally: $p/no/out: No such file or directory" e2 && echo -o whole; $T -T $p/no in > /dev/null 2> e3; grep -q "^tally: $p/no: .*: No such file or directory\$" e3 && echo -T whole'

expect_out <<'EOF'
a	1
EOF
expect_err <<'EOF'
tally: unreadable: Permission denied
EOF
check files-unreadable 1 'printf "a\n" > 1; printf "b\n" > unreadable; chmod 0 unreadable; if [ "$(id -u)" = 0 ]; then echo "tally: unreadable: Permission denied" >&2; $T 1; exit 1; fi; $T 1 unreadable'

check empty-file 0 ': > empty; $T empty; $T -l empty; $T -f 1 empty'

expect_out <<'EOF'
ab	2
cd	1
ab@cd@ab	1
EOF
check binary-input 0 'printf "ab\000cd\000ab" > bin; $T bin; $T --split=space bin | tr "\000" @'

expect_out <<'EOF'
illformed 2
EOF
requires python3
check binary-illformed-stats 0 'printf "ab\377cd\300\n" | $T --stats-json s.json > /dev/null; python3 -c "import json; print(\"illformed\", json.load(open(\"s.json\"))[\"illformed_bytes\"])"'

# --files0-from: names separated by NUL, from a file or stdin.
expect_out <<'EOF'
a	3
b	1
EOF
check files0-from 0 'printf "a b\n" > "with space"; printf "a\na\n" > x; printf "with space\000x\000" > list; $T --files0-from list'

expect_out <<'EOF'
a	3
b	1
EOF
check files0-from-stdin 0 'printf "a b\n" > "with space"; printf "a\na\n" > x; printf "with space\000x" | $T --files0-from=-'

expect_out <<'EOF'
a	2
EOF
expect_err <<'EOF'
tally: -:2: invalid zero-length file name
tally: missing: No such file or directory
EOF
check files0-from-bad-names 1 'printf "a\n" > x; printf "x\000\000missing\000x\000" | $T --files0-from -'

expect_out <<'EOF'
a	1
EOF
expect_err <<'EOF'
tally: list:3: invalid zero-length file name
EOF
check files0-from-empty-name-where 1 'printf "a\n" > x; printf "x\000missing-not\000\000" > list; touch missing-not; $T --files0-from list'

expect_err <<'EOF'
tally: when reading file names from standard input, no file name of '-' allowed
EOF
check files0-from-dash 1 'printf -- "-\000" | $T --files0-from -'

check files0-from-empty-list 0 ': > list; echo ignored | $T --files0-from list'

# Small files are read whole, many to a piece of work (a pack): each still
# counts as an input of its own, as it does mapped (--io=mmap) or read in
# chunks too small to pack (--chunk-size 3): no word, line, n-gram or CSV
# record runs from one file into the next, each file's header names its
# own columns, and files that fail or are too large to pack mix with them.
expect_out <<'EOF2'
x	3000
words same
bigrams 6000 same
lines same
fields same
csv same
files 3001 failed 2
EOF2
expect_err <<'EOF2'
tally: missing: No such file or directory
tally: dir: Is a directory
EOF2
check files-small-packed 1 'mkdir dir; awk "BEGIN { for (i = 0; i < 3000; i++) { f = sprintf(\"f%04d\", i); printf \"w%d x y%d%s\", i % 50, i % 7, (i % 3 ? \"\n\" : \"\") > f; close(f); c = sprintf(\"c%04d\", i); if (i % 2) printf \"k,v\n%d,%d\n\", i % 5, i % 9 > c; else printf \"v,k\n%d,%d%s\", i % 9, i % 5, (i % 4 ? \"\n\" : \"\") > c; close(c) } for (i = 0; i < 40000; i++) print \"big \" i % 11 > \"f1500big\" }"; ls f* | tr "\n" "\000" > L1; ls c* | tr "\n" "\000" > L2; printf "missing\000dir\000" >> L1;
for m in "" "--ngram 2" "-l" "-f 1 -d y"; do $T $m --files0-from L1 > a 2> /dev/null; $T $m --io=mmap --files0-from L1 > b 2> /dev/null; $T $m --chunk-size 3 --files0-from L1 > c 2> err; case "$m" in "") grep "^x	" a; echo words;; -l) echo lines;; -f*) echo fields;; *) printf "bigrams "; awk -F "\t" "\$1 !~ /big/ { s += \$2 } END { printf \"%d \", s }" a;; esac | tr "\n" " " | sed "s/ \$//"; cmp -s a b && cmp -s a c && [ -s a ] && echo " same"; done | sed "s/^x	3000 words/x	3000\nwords/";
$T --csv --header -f k --files0-from L2 > a; $T --csv --header -f k --io=mmap --files0-from L2 > b; $T --csv --header -f k --chunk-size 3 --files0-from L2 > c; cmp -s a b && cmp -s a c && [ "$(cut -f 2 a | paste -sd+ | bc)" = 3000 ] && echo csv same;
$T --stats-json s.json --files0-from L1 > /dev/null 2>&1; grep -o "\"files\":[0-9]*,\"files_compressed\":0,\"files_failed\":[0-9]*" s.json | tr -dc "0-9," | awk -F, "{ print \"files\", \$1, \"failed\", \$3 }"; cat err >&2; exit 1'

expect_err <<'EOF'
tally: cannot open 'nolist' for reading: No such file or directory
EOF
check files0-from-missing 1 '$T --files0-from nolist'

expect_out <<'EOF'
3
EOF
check files0-from-find 0 'mkdir d; printf "a\n" > d/1; printf "a\n" > "d/two words"; printf "a\n" > d/3; find d -type f -print0 | $T --files0-from=- | cut -f2'

# zstd: detected by magic number, whatever the name; frames concatenated.
expect_out <<'EOF'
a	2
b	1
a	4
b	2
a	2
b	1
EOF
check zstd-input 0 'printf "a b a\n" | zstd -q > x.zst; cp x.zst plain; cat x.zst x.zst > two; $T plain; $T two; $T < x.zst'

expect_out <<'EOF'
a	2
b	1
EOF
check zstd-mixed 0 'printf "a\n" | zstd -q > x.zst; printf "a b\n" > y; $T x.zst y'

expect_out <<'EOF'
tally: t:
EOF
check zstd-truncated 1 'seq 1 100000 | zstd -q > x.zst; head -c 20000 x.zst > t; $T t > /dev/null 2> err; st=$?; cut -d" " -f1,2 err; exit $st'

# A truncated stream longer than the buffers in flight: what came before
# the end may be counted, but the status says the counts are short and -o
# is left as it was.
expect_out <<'EOF'
1 old
EOF
check zstd-truncated-keeps-output 1 'seq 1 3000000 | zstd -q | head -c -100 > t; echo old > out; $T -l --chunk-size 64K -o out t 2> err; st=$?; echo $st $(cat out); grep -c "t: truncated zstd stream" err > /dev/null; exit $st'

expect_out <<'EOF'
tally: c:
EOF
check zstd-corrupt 1 'seq 1 100000 | zstd -q > x.zst; { head -c 1000 x.zst; head -c 5000 /dev/zero; tail -c +6001 x.zst; } > c; $T c > /dev/null 2> err; st=$?; cut -d" " -f1,2 err; exit $st'

# --io and --chunk-size on a small file.
expect_out <<'EOF'
a	2
b	1
a	2
b	1
a	2
b	1
EOF
check io-methods 0 'printf "a b a\n" > in; $T --io=mmap in; $T --io=read in; $T --io=auto --chunk-size 1 in'
