# -o, write errors, closed pipes, statistics, progress, report.

expect_out <<'EOF'
a	2
b	1
--
a	2
b	1
EOF
check output-file 0 'printf "a b a\n" > in; $T -o out in; cat out; echo --; $T --output=out in; cat out'

# -o is replaced only when the run succeeded; no temporary file is left.
expect_out <<'EOF'
old
in
out
EOF
expect_err <<'EOF'
tally: missing: No such file or directory
EOF
check output-atomic 1 'printf "a\n" > in; echo old > out; $T -o out in missing; st=$?; cat out; ls -A; exit $st'

# A file that may not be written is not replaced, by -o or --report, as
# a shell's > and sort -o refuse it; nothing is counted.  Nor is a -T
# directory that files may not be made in used.  (Root may write
# anything: the runs take the user nobody.)
cat > "$WORK/asuser.sh" <<'EOF'
d=$(mktemp -d /tmp/tally-perm.XXXXXX) || exit 9
chmod 777 "$d"
cp "$T" "$d/tally" && chmod 755 "$d/tally" || exit 9
cd "$d" || exit 9
TMPDIR=$d
export TMPDIR
echo old > f
chmod 444 f
as() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }
printf "a\n" | as ./tally -o f; echo "-o: $?"
printf "a\n" | as ./tally --report f; echo "--report: $?"
# Nor is a temporary directory that files may not be made in.
mkdir ro; chmod 555 ro
printf "a\n" | as ./tally -T ro; echo "-T: $?"
rmdir ro
cat f; rm tally; ls -A
# Replaced by root, a file keeps its owner and group.
if [ "$(id -u)" = 0 ]; then
	echo x > g; chown 65534:65534 g; printf "a\n" | "$T" -o g; stat -c %u:%g g
else
	echo 65534:65534
fi
cd / && rm -rf "$d"
EOF
ASUSER=$WORK/asuser.sh
export ASUSER
expect_out <<'EOF'
-o: 1
--report: 1
-T: 1
old
f
65534:65534
EOF
expect_err <<'EOF'
tally: f: Permission denied
tally: f: Permission denied
tally: ro: cannot use as temporary directory: Permission denied
EOF
requires setpriv
check output-unwritable-refused 0 'sh "$ASUSER"'

expect_out <<'EOF'
in
EOF
expect_err <<'EOF'
tally: missing: No such file or directory
EOF
check output-not-created-on-failure 1 'printf "a\n" > in; $T -o out in missing; st=$?; ls -A; exit $st'

expect_out <<'EOF'
a	2
b	1
EOF
check output-zst 0 'printf "a b a\n" > in; $T -o out.zst in; zstd -q -dc out.zst'

expect_out <<'EOF'
[
{"key":"a","count":2}
]
EOF
check output-zst-json 0 'printf "a a\n" > in; $T --format=json -o x.json.zst in; zstd -q -dc x.json.zst'

expect_err <<'EOF'
tally: nodir/out: No such file or directory
EOF
check output-bad-dir 1 'printf "a\n" | $T -o nodir/out'

expect_err <<'EOF'
tally: standard output: No space left on device
EOF
check output-devfull 1 'printf "a b\n" | $T > /dev/full'

expect_err <<'EOF'
tally: standard output: No space left on device
EOF
check output-devfull-large 1 '$T -l "$DATA/kjv-genesis.txt" > /dev/full'

# A closed pipe ends tally quietly, exit status 0.
expect_out <<'EOF'
1	1
status 0
EOF
check output-closed-pipe 0 'seq 1 300000 > in; { $T --sort=key in 2> err; echo $? > st; } | head -n 1; echo "status $(cat st)"; cat err'

expect_out <<'EOF'
status 0
EOF
check output-closed-pipe-stats 0 'seq 1 300000 > in; { $T -s in 2> err; echo $? > st; } | head -c 0; echo "status $(cat st)"; head -n 1 err | grep -v "^tally: statistics" || :'

# Statistics: -s to stderr after the output; --stats-json with every field.
expect_out <<'EOF'
a	2
tally: statistics
EOF
check stats-text 0 'printf "a a\n" | $T -s 2> err; head -n 1 err'

expect_out <<'EOF'
bytes_read 4
bytes_decoded 4
files 1
files_compressed 0
files_failed 0
tokens 2
distinct 1
hapax 0
illformed_bytes 0
cut_keys 0
skipped_records 0
t_count
t_merge
t_sort
t_write
t_total
mb_per_s
tokens_per_s
threads 2
budget 1048576
peak_rss
peak_table
peak_pool
peak_io
peak_spill
pool_hits
pool_misses
evictions 0
runs_spilled 0
bytes_spilled 0
merge_passes 0
EOF
requires python3
check stats-json 0 'printf "a a\n" > in; $T -j2 -m 1M --stats-json s.json in > /dev/null && python3 "$HERE/json_fields.py" s.json'

expect_out <<'EOF'
files 1
files_failed 1
files_compressed 1
EOF
requires python3
check stats-json-files 1 'printf "a\n" | zstd -q > z; $T --stats-json s.json z missing 2>/dev/null > /dev/null; st=$?; python3 -c "import json; d=json.load(open(\"s.json\")); [print(k, d[k]) for k in (\"files\", \"files_failed\", \"files_compressed\")]"; exit $st'

expect_out <<'EOF'
a	1
{"
EOF
check stats-json-stdout 0 'printf "a\n" | $T --stats-json - | head -c 6; echo'

expect_err <<'EOF'
tally: nodir/s.json: No such file or directory
EOF
check stats-json-bad-path 1 'printf "a\n" | $T --stats-json nodir/s.json > /dev/null'

# A --stats-json that cannot be written fails before the count: -o stays as
# it was (SPEC 7), and nothing is counted.
expect_out <<'EOF'
old
EOF
expect_err <<'EOF'
tally: nodir/s.json: No such file or directory
EOF
check stats-json-bad-path-keeps-output 1 'echo old > out.tsv; printf "a\n" > in; $T -o out.tsv --stats-json nodir/s.json in; st=$?; cat out.tsv; exit $st'

# The statistics replace a longer file's content whole.
check stats-json-replaces 0 'head -c 100000 /dev/zero | tr "\000" x > s.json; printf "a\n" | $T --stats-json s.json > /dev/null; python3 -c "import json; json.load(open(\"s.json\"))"'

# A device or a pipe is written to, not emptied (which they cannot be); a
# name of the file standard output is on (/dev/stdout) is standard output:
# the statistics follow the results, which stay.
expect_out <<'EOF'
0
a	1
a	1
{"
a	1
{"
EOF
check stats-json-not-regular 0 'printf "a\n" > in; $T --stats-json /dev/null -o out.tsv in; echo $?; cat out.tsv; $T --stats-json /dev/stdout in | head -c 6; echo; $T --stats-json /dev/stdout in > o.txt; head -c 6 o.txt; echo'

# -o and --report naming the file standard output is redirected to write
# there, after what it holds, as "-o -" would: not a new file renamed over
# it (which would drop the header, or the results).
expect_out <<'EOF'
header
a	2
b	1
--
a	2
b	1
svg 1
EOF
check output-names-stdout 0 'printf "a b a\n" > in; echo header > f; $T -o /dev/stdout in >> f; cat f; echo --; $T --report /dev/stdout in > r.out; grep -E "^[a-z]	[0-9]+\$" r.out; echo svg $(grep -c "^<svg" r.out)'

# A link to standard output that is a deleted file still names that
# stream; the link itself is never replaced.
expect_out <<'EOF'
link kept
EOF
check output-link-to-deleted-stdout 0 'printf "a\n" > in; ln -s /proc/self/fd/1 so; (exec > g; rm g; $T -o so in); [ -L so ] && echo link kept'

# A dangling link is followed: its target is created, the link kept.
expect_out <<'EOF'
link kept
a	1
EOF
check output-dangling-link 0 'printf "a\n" > in; mkdir d; ln -s d/target.tsv dl; $T -o dl in; [ -L dl ] && echo link kept; cat d/target.tsv'

# A name as long as a file name may be: the temporary file is named otherwise.
expect_out <<'EOF'
a	1
EOF
check output-longest-name 0 'printf "a\n" > in; n=$(printf "n%.0s" $(seq 255)); $T -o $n in; cat $n; ls -A | grep -v "^in\$\|^n*\$" || :'

# --stats-json to a pipe that closed: quiet, exit 0, as for the results.
check stats-json-closed-pipe 0 'printf "a\n" > in; $T -n0 --stats-json - in | (exec 0<&-; sleep 0.3)'

# A run that fails before it counts leaves no --stats-json it created; one
# that was there stays as it was.
expect_out <<'EOF'
in
old
in
s.json
EOF
expect_err <<'EOF'
tally: .: Is a directory
tally: .: Is a directory
EOF
check stats-json-not-left-on-failure 1 'printf "a\n" > in; $T --stats-json s.json -o . in; ls; echo old > s.json; $T --stats-json s.json -o . in; st=$?; cat s.json; ls; exit $st'

# Statistics that could not be written: a --stats-json file this run made
# is removed (a full disk, here the limit on file size; the message goes
# through a pipe, which the limit spares), and -s lost on standard error
# fails the run, with nowhere to say so.
fs_ok=$( (ulimit -f 0 && "$T" --version > /dev/null 2>&1 && echo 1) 2> /dev/null )
if [ "$fs_ok" = 1 ]; then
expect_out <<'EOF'
tally: s.json: File too large
status 1
EOF
check stats-json-not-left-unwritten 0 '(ulimit -f 0; printf "a\n" | $T --stats-json s.json 2>&1 > /dev/null; echo "status $?") | cat; ls'
else
	skip_case stats-json-not-left-unwritten "this build cannot start under ulimit -f 0 (ThreadSanitizer writes a file)"
fi
check stats-lost-fails 1 'printf "a\n" | $T -s > /dev/null 2> /dev/full'

# A file size limit (ulimit -f, 512-byte blocks in sh) is a write error like
# any other, for the output and for the runs spilled: reported, exit 1, no
# temporary file left, an existing -o target kept.
expect_out <<'EOF'
1
1
old
in
tmp
EOF
expect_err <<'EOF'
tally: outf: File too large
tally: tmp: File too large
EOF
check file-size-limit 0 'seq 1 200000 > in; mkdir tmp; (ulimit -f 100; $T -l -o outf in; echo $?); echo old > outf; (ulimit -f 2; $T -l -m 64K -T tmp -o outf in; echo $?); cat outf; rm outf; ls -A; ls -A tmp'

# With standard output closed, -o still works, and the -o file is not taken
# for standard output: no error, exit 0.  Without -o, writing fails.
expect_out <<'EOF'
0
a	1
1
EOF
expect_err <<'EOF'
tally: standard output: Bad file descriptor
EOF
check stdout-closed 0 'printf "a\n" > in; $T -o out in >&-; echo $?; cat out; $T in >&- 2> err; echo $? >> st; cat st; cat err >&2'

# With standard output closed, a name that leads to it (/dev/stdout,
# /dev/fd/1) names no stream to write to: an error, for -o and
# --stats-json, not output lost in silence.
expect_out <<'EOF'
1
1
1
EOF
expect_err <<'EOF'
tally: /dev/stdout: Bad file descriptor
tally: /dev/fd/1: Bad file descriptor
tally: /dev/stdout: Bad file descriptor
EOF
check stdout-closed-named 0 'printf "a\n" > in; for o in "-o /dev/stdout" "-o /dev/fd/1" "--stats-json /dev/stdout -o out"; do $T $o in >&- 2>> err; echo $? >> st; done; cat st; cat err >&2; test -e out && echo "out made"; :'

# Output written where it stands (-o -, -o /dev/stdout, a FIFO) is
# finished after a failed input, as standard output is: well-formed JSON,
# the CSV header; exit status 1.  A file named by -o is left alone.
expect_out <<'EOF'
1 [{"key":"a","count":1}]
1 [{"key":"a","count":1}]
1 [{"key":"a","count":1}]
1 [{"key":"a","count":1}]
1 key,count
1 old
EOF
requires python3
check output-in-place-finished 0 'printf "a\n" > in; mkfifo fifo; for o in "" "-o -" "-o /dev/stdout" "-o fifo"; do { $T --format=json $o missing in 2>/dev/null; echo $? > st; } > o.json & [ "$o" = "-o fifo" ] && cat fifo > o.json; wait; echo "$(cat st) $(python3 -c "import json; print(json.dumps(json.load(open(\"o.json\")), separators=(\",\", \":\")))")"; done; $T --format=csv -o - missing > c.txt 2>/dev/null; echo "$? $(tr -d "\\r" < c.txt)"; echo old > f.json; $T --format=json -o f.json missing in 2>/dev/null; echo "$? $(cat f.json)"'

# Standard output failed under the keys: said once, not again for
# --stats-json - on the same stream.
expect_out <<'EOF'
1
EOF
expect_err <<'EOF'
tally: standard output: No space left on device
EOF
check stats-json-stdout-failed-once 0 'printf "a\n" > in; $T --stats-json - in > /dev/full; echo $?'

# Progress: never on a short run, never when not asked and stderr is not a terminal.
check progress-short 0 'printf "a\n" | $T --progress > /dev/null'
check progress-off 0 'printf "a\n" | $T --no-progress > /dev/null'

# Report: an SVG that parses.
expect_out <<'EOF'
svg
EOF
requires python3
check report-svg 0 '$T --report r.svg "$DATA/kjv-genesis.txt" > /dev/null && python3 -c "
import xml.etree.ElementTree as E; print(E.parse(\"r.svg\").getroot().tag.split(\"}\")[-1])"'
