# Observability: the statistics agree with independent measurement, the
# progress line shows on a terminal only, and the report is a well-formed
# picture with the series it promises.

# 64 MB of text (Genesis 320 times; 16 MB for the slower sanitizer builds)
# and 400 000 distinct numbers.
if [ "${TALLY_CLI_QUICK:-0}" = 1 ]; then copies=80; else copies=320; fi
i=0
while [ $i -lt $copies ]; do
	cat "$DATA/kjv-genesis.txt"
	i=$((i + 1))
done > "$WORK/big.txt"
seq 1 400000 > "$WORK/seq400k"
BIG=$WORK/big.txt
SEQ400K=$WORK/seq400k
export BIG SEQ400K

# obs.sh is sourced by the cases: jget FIELD FILE prints a number from a
# --stats-json file; same NAME GOT WANT says "NAME ok" or shows both.
cat > "$WORK/obs.sh" <<'EOF'
jget() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$2"; }
same() { if [ "$2" = "$3" ]; then echo "$1 ok"; else echo "$1 $2, expected $3"; fi; }
# agree STATS OUTPUT [DISTINCT]: tokens, distinct and hapax against the
# output (tsv, every key): the sum of counts, the lines, the 1s.
agree() {
	same tokens "$(jget tokens "$1")" "$(awk -F '\t' '{ s += $NF } END { print s + 0 }' "$2")"
	same distinct "$(jget distinct "$1")" "${3:-$(wc -l < "$2" | tr -d ' ')}"
	same hapax "$(jget hapax "$1")" "$(awk -F '\t' '$NF == 1 { n++ } END { print n + 0 }' "$2")"
}
EOF
OBS=$WORK/obs.sh
export OBS

# --- Statistics against measurement ---

expect_out <<'EOF'
bytes_read ok
bytes_decoded ok
files ok
tokens ok
distinct ok
hapax ok
EOF
check stats-agree-words 0 '. "$OBS"; printf "one two two\nthree\n" > small; $T --stats-json s.json "$DATA/kjv-genesis.txt" small "$SEQ400K" > out; same bytes_read "$(jget bytes_read s.json)" "$(cat "$DATA/kjv-genesis.txt" small "$SEQ400K" | wc -c)"; same bytes_decoded "$(jget bytes_decoded s.json)" "$(jget bytes_read s.json)"; same files "$(jget files s.json)" 3; agree s.json out'

# A zstd input: bytes_read is its compressed size, bytes_decoded what it holds.
expect_out <<'EOF'
bytes_read ok
bytes_decoded ok
files_compressed ok
tokens ok
distinct ok
hapax ok
EOF
check stats-agree-zstd 0 '. "$OBS"; zstd -q -19 < "$DATA/kjv-genesis.txt" > g.zst; printf "x y\n" > plain; $T -l --stats-json s.json g.zst plain > out; same bytes_read "$(jget bytes_read s.json)" "$(cat g.zst plain | wc -c)"; same bytes_decoded "$(jget bytes_decoded s.json)" "$(cat "$DATA/kjv-genesis.txt" plain | wc -c)"; same files_compressed "$(jget files_compressed s.json)" 1; agree s.json out'

# Bigrams and fields, and when spilling.
expect_out <<'EOF'
tokens ok
distinct ok
hapax ok
tokens ok
distinct ok
hapax ok
tokens ok
distinct ok
hapax ok
EOF
check stats-agree-modes 0 '. "$OBS"; $T --ngram 2 --stats-json s.json "$DATA/kjv-genesis.txt" > out; agree s.json out; tr " " "\t" < "$DATA/kjv-genesis.txt" > tsv; $T -f 3 --stats-json s.json tsv > out; agree s.json out; $T -j2 -m 64K --stats-json s.json "$DATA/kjv-genesis.txt" "$SEQ400K" > out; agree s.json out; [ "$(jget runs_spilled s.json)" -gt 0 ] || echo "no spill"'

# distinct is before --min-count and --top; tokens counts every key.
expect_out <<'EOF'
tokens ok
distinct ok
hapax ok
tokens ok
distinct ok
hapax ok
EOF
check stats-before-filters 0 '. "$OBS"; $T "$DATA/kjv-genesis.txt" > all; $T --min-count 5 --stats-json s1.json "$DATA/kjv-genesis.txt" > /dev/null; $T --top 3 --stats-json s2.json "$DATA/kjv-genesis.txt" > /dev/null; agree s1.json all; agree s2.json all'

# peak_rss against GNU time's maximum resident set size, on 64 MB of text
# and 400 000 distinct keys: within 10% or 2 MiB.
if [ -x /usr/bin/time ] && /usr/bin/time -f %M true > /dev/null 2>&1; then
	expect_out <<'EOF'
peak_rss ok
peak_rss ok
EOF
	check stats-peak-rss 0 '. "$OBS"; for j in 1 2; do /usr/bin/time -o t.txt -f %M $T -j$j --stats-json s.json "$BIG" "$SEQ400K" > /dev/null; got=$(jget peak_rss s.json); want=$(($(tail -n 1 t.txt) * 1024)); d=$((got > want ? got - want : want - got)); tol=$((want / 10 > 2097152 ? want / 10 : 2097152)); if [ $d -le $tol ]; then echo peak_rss ok; else echo "peak_rss $got, time says $want"; fi; done'
else
	skip_case stats-peak-rss "GNU time (/usr/bin/time) is not installed"
fi

# --- Progress ---

# On a terminal (script(1) gives one), --progress redraws one line with CR:
# bytes and MB/s; the line is erased at the end; stdout holds only the
# results.  The first input is a FIFO that stays empty for 0.6 s (slow.sh):
# the run then lasts several sampling intervals (1/6 s) however fast the
# machine (and the total is not known: no percentage).
cat > "$WORK/slow.sh" <<'EOF'
mkfifo slow && { sleep 0.6 > slow & }
EOF
SLOW=$WORK/slow.sh
export SLOW
expect_out <<'EOF'
progress
erased
clean stdout
same results
EOF
requires script
check progress-terminal 0 '$T -j1 "$BIG" > ref; . "$SLOW"; script -q -e -c "$T -j1 --chunk-size 1K --progress slow \"$BIG\" > out" log < /dev/null > /dev/null || echo "script failed"; tr "\r" "\n" < log | grep -q "^ [0-9.]* [KMG]*i*B  .* MB/s" && echo progress; tr "\r" "\n" < log | grep -v "^Script " | grep -v "^\$" | tail -n 1 | grep -q "[0-9] [KMG]*i*B" || echo erased; if LC_ALL=C grep -q "$(printf "[\r\033]")" out; then echo "CR or ESC in stdout"; else echo clean stdout; fi; cmp -s ref out && echo same results'

# The line fits the terminal: on one of 40 columns (or COLUMNS=40 where
# stderr is a file, else 80), no line takes more than 39, fields being left
# out; a line of 80 wrapped, and each redraw left one behind.  fits.sh LOG
# COLUMNS says whether progress was drawn and whether every line fits.
cat > "$WORK/fits.sh" <<'EOF'
tr '\r' '\n' < "$1" | sed "s/$(printf '\033')\\[K//g" | grep -v '^Script ' > "$1.lines"
grep -q 'MB/s' "$1.lines" && echo progress
awk -v w="$2" 'length($0) >= w { print "too wide: " $0; bad = 1; exit } END { if (!bad) print "fits" }' "$1.lines"
EOF
FITS=$WORK/fits.sh
export FITS
expect_out <<'EOF'
progress
fits
progress
fits
progress
fits
EOF
requires script
check progress-fits-width 0 '. "$SLOW"; script -q -e -c "stty cols 40; $T -j1 --chunk-size 1K --progress slow \"$BIG\" > /dev/null" log < /dev/null > /dev/null || echo "script failed"; sh "$FITS" log 40; rm slow; . "$SLOW"; COLUMNS=40 $T -j1 --chunk-size 1K --progress slow "$BIG" > /dev/null 2> err; sh "$FITS" err 40; rm slow; . "$SLOW"; env -u COLUMNS $T -j1 --chunk-size 1K --progress slow "$BIG" > /dev/null 2> err80; sh "$FITS" err80 80'

# Percent and time left only when the total is known before the run: every
# input a regular file.  pct.sh LOG says "progress" when lines were drawn,
# then "no percent", or "percent" and what is wrong with the percentages.
cat > "$WORK/pct.sh" <<'EOF'
tr '\r' '\n' < "$1" | grep 'MB/s' > "$1.pct"
[ -s "$1.pct" ] && echo progress
awk '/^ *[0-9]+% / { n++; p = $1 + 0; if (p < last) back = 1; if (p > 100) over = 1; last = p }
END { if (!n) print "no percent"; else { print "percent"; if (back) print "percent went back"; if (over) print "percent over 100" } }' "$1.pct"
EOF
PCT=$WORK/pct.sh
export PCT

# A text and a sparse gigabyte, read in small chunks so that the run lasts
# whatever the machine (timeout ends it).
expect_out <<'EOF'
progress
percent
EOF
check progress-percent-known 0 'truncate -s 1G sparse; timeout 2 $T -j1 --chunk-size 1K --progress "$DATA/kjv-genesis.txt" sparse > /dev/null 2> err; sh "$PCT" err'

# Otherwise bytes and rate only: a file then standard input (whose bytes
# went past the total: "100%, ETA 0:00"), --files0-from (the total grew as
# the files were opened: 81% and then 34%), --shard (the size of a part is
# known once its edges are read).  fifo.sh NAME SECONDS [FILE]: a FIFO that
# gives FILE, or nothing, once open for SECONDS.
cat > "$WORK/fifo.sh" <<'EOF'
mkfifo "$1" && { { sleep "$2"; [ -z "${3:-}" ] || cat "$3"; } > "$1" & }
EOF
FIFO=$WORK/fifo.sh
export FIFO
expect_out <<'EOF'
progress
no percent
progress
no percent
progress
no percent
EOF
check progress-percent-unknown 0 'sh "$FIFO" f1 1 "$DATA/kjv-genesis.txt"; $T -j1 --progress "$BIG" - < f1 > /dev/null 2> e1; sh "$PCT" e1; sh "$FIFO" f2 1; printf "%s\0f2\0" "$BIG" | $T -j1 --progress --files0-from=- > /dev/null 2> e2; sh "$PCT" e2; sh "$FIFO" f3 1; $T -j1 --progress --shard 2/2 "$BIG" f3 > /dev/null 2> e3; sh "$PCT" e3'

# A pipe that trickles (tail -f): what came in is counted while tally waits
# for more, and the line shows its tokens and keys, not only its bytes.
expect_out <<'EOF'
6 B while waiting
counted while waiting
a 1
b 1
c 1
d 1
EOF
check progress-trickle 0 '{ printf "a b c\n"; sleep 2; printf "d\n"; } | $T -j1 --progress > out 2> err; tr "\r" "\n" < err > lines; grep -q "^ *6 B  " lines && echo 6 B while waiting; grep -q "  tokens 3  keys 3  " lines && echo counted while waiting; tr "\t" " " < out'

# A signal that ends the run erases the line too (SIGTERM from timeout, or
# SIGINT): the last thing on the terminal is no progress line.
expect_out <<'EOF'
progress
erased
progress
erased
EOF
requires script
check progress-erased-on-signal 0 'truncate -s 1G sparse; for sig in TERM INT; do script -q -e -c "timeout -s $sig 2 $T -j1 --chunk-size 1K --progress sparse > /dev/null" log < /dev/null > /dev/null; tr "\r" "\n" < log | grep -q "MB/s" && echo progress; tr "\r" "\n" < log | grep -v "^Script " | grep -v "^\$" | tail -n 1 | grep -q "[0-9] [KMG]*i*B" || echo erased; done'

# A --stats-json file the run made is removed when a signal ends the run
# before the statistics are in it (it was left empty); one that was there
# stays as it was.  In the background, once the file is open, with the
# input a FIFO that gives nothing yet.  (env restores SIGINT, which a
# shell's background jobs ignore.)
if env --default-signal=INT true 2>/dev/null; then
	expect_out <<'EOF'
status 143
f
in
status 130
old
EOF
	check stats-json-not-left-on-signal 0 'printf "a\n" > in; for sig in TERM INT; do rm -f f; mkfifo f; sleep 10 > f & w=$!; [ $sig = TERM ] || echo old > s.json; env --default-signal=INT "$T" --stats-json s.json in f > /dev/null & pid=$!; i=0; until ls -l /proc/$pid/fd 2>/dev/null | grep -q "s\.json"; do i=$((i + 1)); if [ $i -gt 3000 ]; then echo "not open after 30 s"; break; fi; sleep 0.01; done; kill -s $sig $pid; wait $pid 2>/dev/null; echo status $?; kill $w; wait $w 2>/dev/null; if [ $sig = TERM ]; then ls; else cat s.json; fi; done'
else
	skip_case stats-json-not-left-on-signal "env --default-signal is missing"
fi

# --no-progress on a terminal: not a byte on stderr.
expect_out <<'EOF'
no progress
same results
EOF
requires script
check progress-off-terminal 0 '$T -j1 "$BIG" > ref; script -q -e -c "$T -j1 --chunk-size 1K --no-progress \"$BIG\" > out" log < /dev/null > /dev/null || echo "script failed"; if grep -q "MB/s" log || [ -n "$(tr -cd "\r" < log)" ]; then echo progress shown; else echo no progress; fi; cmp -s ref out && echo same results'

# Standard error is a file, not a terminal: no progress unless asked.
expect_out <<'EOF'
same results
EOF
check progress-not-terminal 0 '$T -j1 "$BIG" > ref; $T -j1 --chunk-size 1K "$BIG" > out; cmp -s ref out && echo same results'

# Asked for, it is shown on a file as well.
expect_out <<'EOF'
progress
EOF
check progress-forced-file 0 '. "$SLOW"; $T -j1 --chunk-size 1K --progress slow "$BIG" > /dev/null 2> err; tr "\r" "\n" < err | grep -q "MB/s" && echo progress'

# While the output is written (here to a pipe whose reader comes a second
# late, so that tally waits in the middle of it), the line goes on: the
# phase and the keys written so far.
expect_out <<'EOF'
writing
same results
EOF
check progress-writing 0 '$T -j1 "$SEQ400K" > ref; mkfifo o; { sleep 1; cat; } < o > out & $T -j1 --progress "$SEQ400K" > o 2> err; wait; tr "\r" "\n" < err | grep -q "^100% .*  writing  written [0-9.]*[KM]*  tokens 400K  " && echo writing; cmp -s ref out && echo same results'

# The distinct keys on the line count each key once: 400K numbers read
# twice by two threads, each thread's table holding most of them (a sum of
# the tables showed about 800K), and with -m 1M the tables spill and keep
# few (the sum fell to a few thousand, then to 0 while merging).  The
# figure is estimated: within 1% (396K to 404K).  In tally merge of count
# files set aside, the keys come as they are merged (written, keys).
expect_out <<'EOF'
-j2 one count a key
-j2 -m 1M one count a key
merge: keys as they are merged
EOF
check progress-distinct 0 'for m in "" "-m 1M"; do mkfifo o; { sleep 1; cat; } < o > /dev/null & $T -j2 $m --chunk-size 64K --progress "$SEQ400K" "$SEQ400K" > o 2> err; wait; rm o; if tr "\r" "\n" < err | grep "  writing  " | grep -q -v -E "  keys (39[6-9]|40[0-4])K"; then tr "\r" "\n" < err | grep writing | head -3; elif tr "\r" "\n" < err | grep -q "  writing  "; then echo "-j2${m:+ $m} one count a key"; else echo "no line"; fi; done
$T --sort=key "$SEQ400K" > c1; $T --sort=key "$SEQ400K" "$SEQ400K" > c2; mkfifo o; { sleep 1; cat; } < o > /dev/null & $T merge --progress --sort=key c1 c2 > o 2> err; wait; tr "\r" "\n" < err | grep "  writing  " | grep -q -E "written ([0-9.]+K)  tokens 1.2M  keys \1" && echo "merge: keys as they are merged"'

# A fatal error (the counts of tally merge add up past 2^64) while the
# line is drawn: it is erased before the message, not written over.
expect_out <<'EOF'
status 1
drawn
erased before the message
EOF
expect_err <<'EOF'
EOF
requires python3
check progress-fatal-erased 0 'printf "a\t18446744073709551615\n" > m1; printf "a\t1\n" > m2; mkfifo slow; { sleep 0.8 > slow & }; $T merge -j1 --progress slow m1 m2 > /dev/null 2> err; echo "status $?"; python3 -c "
e = open(\"err\", \"rb\").read()
i = e.find(b\"tally: the counts add up to more than\")
print(\"drawn\" if b\"MB/s\" in e[:i] else \"not drawn\")
print(\"erased before the message\" if i > 0 and e[:i].endswith(b\"\\r\\x1b[K\") else repr(e[max(i - 30, 0):]))"'

# Unless the output goes to the terminal the line is on: it is erased
# before the first key and drawn no more (an input that stays empty for
# 1.2 s makes the line appear while counting; then the terminal's reader,
# script, is held up on its own output, so that the keys take a while to
# be written).
expect_out <<'EOF'
progress
not drawn over the output
EOF
requires script
check progress-writing-terminal 0 'mkfifo slow held; { sleep 1.2 > slow & }; { sleep 2; cat; } < held > /dev/null & script -q -e -c "$T -j1 --progress slow \"$SEQ400K\"" log < /dev/null > held || echo "script failed"; wait; tr "\r" "\n" < log | grep -q "MB/s" && echo progress; if tr "\r" "\n" < log | grep -q "written"; then echo "drawn over the output"; else echo not drawn over the output; fi'

# The same with the keys written to the terminal through -o /dev/tty (a
# name of it that is no standard stream): the line was drawn on, into the
# keys.
expect_out <<'EOF'
progress
not drawn over the output
EOF
requires script
check progress-writing-dev-tty 0 'mkfifo slow held; { sleep 1.2 > slow & }; { sleep 2; cat; } < held > /dev/null & script -q -e -c "$T -j1 --progress -o /dev/tty slow \"$SEQ400K\"" log < /dev/null > held || echo "script failed"; wait; tr "\r" "\n" < log | grep -q "MB/s" && echo progress; if tr "\r" "\n" < log | grep -q "written"; then echo "drawn over the output"; else echo not drawn over the output; fi'

# --- Report ---

# report.sh SVG: well-formed, has every series, and prints how many points
# the throughput line has.
cat > "$WORK/report.sh" <<'EOF'
xmllint --noout "$1" || echo "not well-formed"
for id in series-throughput series-rss series-tables series-pool series-io series-spill budget-line; do
	[ "$(xmllint --xpath "count(//*[@id='$id'])" "$1")" = 1 ] || echo "no element with id $id"
done
n=$(xmllint --xpath "string(//*[@id='series-throughput']//*[local-name()='polyline']/@points)" "$1" | wc -w)
if [ "$n" -gt 1 ]; then echo "throughput: several points"; else echo "throughput: $n points"; fi
EOF
REPORT=$WORK/report.sh
export REPORT

expect_out <<'EOF'
throughput: several points
EOF
requires xmllint
check report-series 0 '. "$SLOW"; $T -j1 --chunk-size 1K --report r.svg slow "$BIG" > /dev/null; sh "$REPORT" r.svg'

# A spilling run: the same series, and the results are unchanged (after
# the FIFO of slow.sh, as the input counts in a fraction of a second).
expect_out <<'EOF'
throughput: several points
same results
EOF
requires xmllint
check report-spilling 0 '$T -l "$SEQ400K" > ref; . "$SLOW"; $T -l -j2 -m 256K --chunk-size 4K --report r.svg slow "$SEQ400K" > out; sh "$REPORT" r.svg; cmp -s ref out && echo same results'

# The same in key order, where the merge runs while the output is written
# and the timeline goes on through it.
expect_out <<'EOF'
throughput: several points
same results
EOF
requires xmllint
check report-spilling-key-order 0 '$T -l --sort=key "$SEQ400K" > ref; . "$SLOW"; $T -l --sort=key -j2 -m 256K --chunk-size 4K --report r.svg slow "$SEQ400K" > out; sh "$REPORT" r.svg; cmp -s ref out && echo same results'

# A run too short for samples still gives a well-formed picture.
expect_out <<'EOF'
ok
EOF
requires xmllint
check report-short-run 0 'printf "a b a\n" | $T --report r.svg > /dev/null; xmllint --noout r.svg && for id in series-throughput series-rss budget-line; do [ "$(xmllint --xpath "count(//*[@id=\"$id\"])" r.svg)" = 1 ] || echo "no $id"; done; echo ok'

# A report that cannot be written is found out before the count: no
# results.
expect_err <<'EOF'
tally: nodir/r.svg: No such file or directory
EOF
check report-bad-path 1 'printf "a\n" | $T --report nodir/r.svg'

# The report is drawn once the results are written: its caption gives the
# time spent writing them and the same total as the statistics.
cat > "$WORK/caption.py" <<'EOF'
import json, re, sys
svg = open(sys.argv[1]).read()
texts = re.findall(r'<text[^>]*>([^<]*)</text>', svg)
st = json.load(open(sys.argv[2]))
def after(label):
    i = len(texts) - 1 - texts[::-1].index(label)
    return texts[i + 1]
for label, field in (("writing", "t_write"), ("total", "t_total")):
    want = "%.3f s" % st[field]
    got = after(label)
    print(label, "agrees" if got == want else "%s, expected %s" % (got, want))
print("writing measured" if st["t_write"] > 0 else "writing 0")
EOF
CAPTION=$WORK/caption.py
export CAPTION
expect_out <<'EOF'
writing agrees
total agrees
writing measured
EOF
requires python3
check report-caption-times 0 '$T -l --report r.svg --stats-json s.json "$SEQ400K" > out; python3 "$CAPTION" r.svg s.json'

# The time spent writing includes the last writes, done when the output is
# closed: here all of it, as the output (about 130 KB) fits the writer's
# buffer but not the pipe's, and the reader waits a second before reading.
expect_out <<'EOF'
writing timed
EOF
check stats-write-time-includes-close 0 '. "$OBS"; seq 1 20000 | $T -l --stats-json s.json | (sleep 1; cat > /dev/null); w=$(jget t_write s.json); t=$(jget t_total s.json); awk -v w="$w" -v t="$t" "BEGIN { if (w >= 0.5 && t >= w) print \"writing timed\"; else print \"t_write \" w \", t_total \" t }"'

# A reader that goes away early (head) still gets the statistics and the
# report whole, also in key order after a spill, where the keys are known
# only once the merge of the runs is read to the end.
expect_out <<'EOF'
1
report written
distinct ok
hapax ok
1
report written
distinct ok
hapax ok
EOF
check closed-pipe-complete-stats 0 '. "$OBS"; for s in key count; do $T -l --sort=$s -j2 -m 256K --stats-json s.json --report r.svg "$SEQ400K" | head -n 1 | wc -l; [ -s r.svg ] && echo report written; rm -f r.svg; same distinct "$(jget distinct s.json)" 400000; same hapax "$(jget hapax s.json)" 400000; done'

# Bytes read as a header are decoded bytes too.
expect_out <<'EOF'
plain ok
zstd ok
EOF
check stats-header-decoded 0 '. "$OBS"; printf "A\tB\n1\t2\n" > h.tsv; zstd -q < h.tsv > h.zst; $T --header -f B --stats-json s.json h.tsv > /dev/null; same plain "$(jget bytes_decoded s.json)" 8; $T --header -f B --stats-json s.json h.zst > /dev/null; same zstd "$(jget bytes_decoded s.json)" 8'

# A report to a FIFO is written into it, as -o writes one (the FIFO stays);
# through a symbolic link, the file it names is replaced and the link stays.
expect_out <<'EOF'
fifo kept
svg read
link kept
svg written
EOF
requires xmllint
check report-fifo-and-link 0 'mkfifo p; timeout 20 cat p > got & printf "a\n" | $T --report p > /dev/null; wait; [ -p p ] && echo fifo kept; xmllint --noout got && echo svg read; echo old > real.svg; ln -s real.svg l.svg; printf "a\n" | $T --report l.svg > /dev/null; [ -L l.svg ] && echo link kept; xmllint --noout real.svg && echo svg written'

# To /dev/stdout, with the results in -o; a reader that stops early ends it
# quietly, as for the results.
expect_out <<'EOF'
<?xml
results a	1
EOF
check report-dev-stdout 0 'printf "a\n" | $T --report /dev/stdout -o res.tsv | head -c 5; echo; printf "results "; cat res.tsv'


rm -f "$BIG" "$SEQ400K"
