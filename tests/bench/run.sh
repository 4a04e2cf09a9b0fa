#!/bin/sh
# run.sh - tally's benchmarks against peers (make bench).
#
#   sh tests/bench/run.sh [build/tally]
#
# Knobs (environment):
#   BENCH_SCALE    full (default) or quick (small inputs, a smoke run)
#   BENCH_RUNS     repetitions per command; the median wall time is reported
#                  (default 3, quick 1)
#   BENCH_ONLY     comma-separated cases by number or name (e.g. 2,memory)
#   BENCH_DIR      work directory; generated corpora are cached there
#                  (default /tmp/tally-bench).  Where the kernel reclaims
#                  page cache within seconds of its last use (proactive
#                  reclaim, as with DAMON), put it on a tmpfs such as
#                  /dev/shm (about 10 GB for a full run), so that the inputs
#                  stay in memory: each case notes how much of them was
#                  resident at its end, and the machine line names the
#                  filesystem.
#   BENCH_RESULTS  the Markdown file to update (default tests/bench/RESULTS.md
#                  for full runs, $BENCH_DIR/RESULTS-quick.md for quick ones)
#   BENCH_KJV      the King James Bible text (default /work/shared/corpora/kjvbible.txt)
#
# Needs hyperfine, mawk, python3, zstd, GNU time (/usr/bin/time) and a C
# compiler; it installs nothing and names what is missing.  Paths must not
# contain blanks.
#
# Method: each case warms the page cache (cat FILE >/dev/null), runs every
# command BENCH_RUNS times under hyperfine -N, each run wrapped in
# /usr/bin/time -f %M, and reports the median wall time and the largest peak
# RSS.  For a pipeline, GNU time reports the largest single process of it (the
# shell's children's maximum), not the sum of the pipeline's processes.
# Wall times include the launch of /usr/bin/time and sh (measured and written
# in the machine description), the same for every command.

set -u

TALLY_ARG=${1:-build/tally}
HERE=$(cd "$(dirname "$0")" && pwd)
case $TALLY_ARG in
/*) TALLY=$TALLY_ARG ;;
*) TALLY=$(pwd)/$TALLY_ARG ;;
esac
SCALE=${BENCH_SCALE:-full}
DIR=${BENCH_DIR:-/tmp/tally-bench}
ONLY=${BENCH_ONLY:-}
KJV=${BENCH_KJV:-/work/shared/corpora/kjvbible.txt}

case $SCALE in
full)
	RUNS=${BENCH_RUNS:-3}
	RESULTS=${BENCH_RESULTS:-$HERE/RESULTS.md}
	KJV_SMALL=10 KJV_BIG=496         # 43 MB and 2.1 GB
	S_LINES=1G S_CYR=512M S_W05=512M S_W1=1G S_W2=2G
	S_UNI=128M S_TSV=1G S_CSV=256M S_NGRAM=128M
	S_CHECK=8M   # size of the inputs on which outputs are compared with peers'
	N_SMALL=100000   # files of case 9
	CURVE='32M 64M 128M 256M 1G unbounded'
	;;
quick)
	RUNS=${BENCH_RUNS:-1}
	RESULTS=${BENCH_RESULTS:-$DIR/RESULTS-quick.md}
	KJV_SMALL=1 KJV_BIG=8
	S_LINES=16M S_CYR=16M S_W05=8M S_W1=16M S_W2=32M
	S_UNI=8M S_TSV=16M S_CSV=8M S_NGRAM=8M
	S_CHECK=4M
	N_SMALL=2000
	CURVE='32M 256M unbounded'
	;;
*)
	echo "run.sh: BENCH_SCALE must be full or quick, not '$SCALE'" >&2
	exit 2
	;;
esac

# ---- tools ---------------------------------------------------------------

missing=
need() {
	command -v "$1" >/dev/null 2>&1 || missing="$missing
  $1 (Debian package $2)"
}
need hyperfine hyperfine
need mawk mawk
need python3 python3
need zstd zstd
need cc gcc
need sha256sum coreutils
need lscpu util-linux
if ! /usr/bin/time -f %M true >/dev/null 2>&1; then
	missing="$missing
  /usr/bin/time (GNU time, Debian package time)"
fi
if [ -n "$missing" ]; then
	echo "run.sh: missing tools:$missing" >&2
	echo "run.sh: install them (e.g. apt-get install hyperfine mawk python3 zstd time) and retry" >&2
	exit 1
fi
if ! [ -x "$TALLY" ]; then
	echo "run.sh: $TALLY: not an executable (run make first)" >&2
	exit 1
fi

mkdir -p "$DIR/cmd" "$DIR/results" || exit 1
GEN=$DIR/gen
if ! [ -x "$GEN" ] || [ "$HERE/gen.c" -nt "$GEN" ]; then
	cc -std=c11 -O2 -o "$GEN" "$HERE/gen.c" -lm || exit 1
fi

TAB=$(printf '\t')
log() {
	printf '%s\n' "$*" >&2
}

# ---- machine description --------------------------------------------------

launch_overhead() {
	printf 'exec true\n' >"$DIR/cmd/true.sh"
	hyperfine -N --style none --runs 20 --export-json "$DIR/cmd/true.json" \
		"/usr/bin/time -f %M -o $DIR/cmd/true.rss sh $DIR/cmd/true.sh" >/dev/null 2>&1 &&
		python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' \
			"$DIR/cmd/true.json"
}

{
	printf -- '- Machine: %s, %s CPUs, %s GiB RAM, %s\n' \
		"$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" \
		"$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)" "$(uname -sr)"
	printf -- '- Last run: %s, BENCH_SCALE=%s, BENCH_RUNS=%s, BENCH_DIR on %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$SCALE" "$RUNS" \
		"$(stat -f -c %T "$DIR" 2>/dev/null || echo 'an unknown filesystem')"
	printf -- '- tally: %s\n' "$("$TALLY" --version 2>/dev/null | head -1)"
	printf -- '- Peers: %s; %s; %s; %s; %s; %s\n' \
		"$(sort --version | head -1)" "$(mawk -W version 2>&1 | head -1)" \
		"$(python3 --version 2>&1)" "$(zstd --version | sed 's/^\*\** *//; s/ *\**$//; s/, by .*//')" \
		"$(hyperfine --version)" "$(cc --version | head -1)"
	printf -- '- Method: page cache warm; each command run BENCH_RUNS times by `hyperfine -N`, each run under `/usr/bin/time -f %%M`; median wall time; CPU s = user + system time of the command and its children, mean over the runs (less disturbed than wall time when other work shares the machine); MB/s = input bytes / 10^6 / median; "time / tally" = median / median of the reference tally row of the same input (above 1: slower than tally); peak RSS = the largest over the runs, and for a pipeline the largest single process in it (GNU time reports the maximum over the children, not their sum). Every time includes the launch of `/usr/bin/time` and `sh` (%s ms median here). The machine may be shared with other work: each case gives the load average when it started.\n' \
		"$(launch_overhead)"
} >"$DIR/machine.md"

# ---- corpora --------------------------------------------------------------

# corpus FILE KIND SIZE [gen options]: generate FILE once (cached in BENCH_DIR).
corpus() {
	_f=$1
	shift
	[ -s "$_f" ] && return 0
	log "generating $_f"
	"$GEN" "$1" -s "$2" ${3+"$3"} ${4+"$4"} >"$_f.tmp" && mv "$_f.tmp" "$_f"
}

# kjv FILE N: the King James Bible N times.
kjv() {
	[ -s "$1" ] && return 0
	log "building $1"
	_i=0
	: >"$1.tmp"
	while [ $_i -lt "$2" ]; do
		cat "$KJV" >>"$1.tmp" || return 1
		_i=$((_i + 1))
	done
	mv "$1.tmp" "$1"
}

warm() {
	cat "$@" >/dev/null
	WARMED="$WARMED $*"
}

# The share of each warmed input held in memory now (fincore), if known.
resident_note() {
	command -v fincore >/dev/null 2>&1 && [ -n "$WARMED" ] || return 0
	_res=
	for _f in $WARMED; do
		_p=$(fincore --bytes --noheadings --output RES,SIZE "$_f" 2>/dev/null |
			awk '$2 > 0 { printf "%.0f%%", 100 * $1 / $2 }')
		[ -n "$_p" ] && _res="$_res, $(basename "$_f") $_p"
	done
	[ -n "$_res" ] && note "Inputs resident in memory at the end of the case (fincore): ${_res#, }."
}

bytes() {
	wc -c <"$1" | tr -d ' '
}

# ---- recording ------------------------------------------------------------

want() {
	[ -z "$ONLY" ] && return 0
	case ",$ONLY," in
	*",$1,"* | *",$2,"* | *",$1-$2,"*) return 0 ;;
	esac
	return 1
}

begin_case() {
	CASE=$1
	CASEFILE=$DIR/results/$CASE.tsv
	NCMD=0
	CASE_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
	WARMED=
	printf 'meta\tcase\t%s\t%s\n' "$1" "$2" >"$CASEFILE"
	log ""
	log "== $2"
}

note() {
	printf 'meta\tnote\t%s\n' "$*" >>"$CASEFILE"
}

ref() {
	printf 'meta\tref\t%s\t%s\n' "$1" "$2" >>"$CASEFILE"
}

# measure GROUP LABEL BYTES COMMAND: time COMMAND (a shell command line).
measure() {
	_g=$1 _l=$2 _b=$3
	shift 3
	NCMD=$((NCMD + 1))
	_s=$DIR/cmd/$CASE.$NCMD.sh
	_r=$DIR/cmd/$CASE.$NCMD.rss
	_j=$DIR/cmd/$CASE.$NCMD.json
	printf '%s\n' "$*" >"$_s"
	: >"$_r"
	if hyperfine -N --style none --runs "$RUNS" --export-json "$_j" \
		"/usr/bin/time -f %M -a -o $_r sh $_s" >/dev/null 2>"$_s.err"; then
		_t=$(python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.6f\t%.6f\t%.6f\t%.6f" % (r["median"], r["min"], r["max"], r["user"] + r["system"]))' "$_j")
		_m=$(grep -E '^[0-9]+$' "$_r" | sort -n | tail -1)
		printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$_g" "$_l" "$_b" "$(echo "$_t" | cut -f1-3)" \
			"${_m:-0}" "$RUNS" "$*" "$(echo "$_t" | cut -f4)" >>"$CASEFILE"
		log "$(printf '%-10s %-28s %9.3f s  %8s KiB' "$_g" "$_l" "$(echo "$_t" | cut -f1)" "${_m:-?}")"
	else
		printf 'fail\t%s\t%s\t%s\t%s\n' "$_g" "$_l" "$_b" "$*" >>"$CASEFILE"
		log "$(printf '%-10s %-28s FAILED (%s)' "$_g" "$_l" "$(tail -1 "$_s.err")")"
	fi
}

# check LABEL FORMAT_A COMMAND_A FORMAT_B COMMAND_B [--drop-empty]:
# compare two tools' normalised outputs (norm.py) in full.
check() {
	_a=$DIR/cmd/check.a _bb=$DIR/cmd/check.b
	if ! sh -c "$3" >"$_a.raw" 2>"$_a.err"; then
		printf 'check\t%s\tFAILED\t(`%s` failed: %s)\n' "$1" "$3" "$(head -1 "$_a.err")" >>"$CASEFILE"
		log "check $1: FAILED"
		return
	fi
	if ! sh -c "$5" >"$_bb.raw" 2>"$_bb.err"; then
		printf 'check\t%s\tFAILED\t(`%s` failed: %s)\n' "$1" "$5" "$(head -1 "$_bb.err")" >>"$CASEFILE"
		log "check $1: FAILED"
		return
	fi
	python3 "$HERE/norm.py" "$2" ${6+"$6"} <"$_a.raw" >"$_a"
	python3 "$HERE/norm.py" "$4" ${6+"$6"} <"$_bb.raw" >"$_bb"
	if cmp -s "$_a" "$_bb"; then
		printf 'check\t%s\tagree\t(%s keys, `%s` vs `%s`)\n' "$1" "$(wc -l <"$_a" | tr -d ' ')" "$3" "$5" >>"$CASEFILE"
		log "check $1: agree"
	else
		printf 'check\t%s\tDIFFER\t(%s vs %s keys; first difference: %s)\n' "$1" \
			"$(wc -l <"$_a" | tr -d ' ')" "$(wc -l <"$_bb" | tr -d ' ')" \
			"$(diff "$_a" "$_bb" | grep '^[<>]' | head -2 | tr '\t\n' '  ')" >>"$CASEFILE"
		log "check $1: DIFFER"
	fi
	rm -f "$_a" "$_bb" "$_a.raw" "$_bb.raw"
}

# target DESCRIPTION VALUE_EXPR CONDITION UNIT (see report.py)
target() {
	printf 'target\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$CASEFILE"
}

end_case() {
	resident_note
	BENCH_ENV_LINE="measured $(date -u '+%Y-%m-%d %H:%M UTC'), BENCH_SCALE=$SCALE, BENCH_RUNS=$RUNS, load average at start $CASE_LOAD" \
		BENCH_TALLY=$TALLY BENCH_DIRPATH=$DIR BENCH_HERE=$HERE python3 "$HERE/report.py" "$CASEFILE" "$RESULTS" "$DIR/machine.md" ||
		log "run.sh: could not write $RESULTS"
}

T=$TALLY
WARMED=
AWKDIR=$HERE

# ---- 1. countwords --------------------------------------------------------

if want 1 countwords; then
	begin_case 1-countwords "1. countwords rules (split on ASCII whitespace, ASCII lowercase)"
	if [ -r "$KJV" ]; then
		K1=$DIR/kjv-x$KJV_SMALL.txt K2=$DIR/kjv-x$KJV_BIG.txt
		G1=kjv-x$KJV_SMALL G2=kjv-x$KJV_BIG
		kjv "$K1" "$KJV_SMALL" && kjv "$K2" "$KJV_BIG"
		B1=$(bytes "$K1") B2=$(bytes "$K2")
		note "Inputs: kjvbible.txt concatenated $KJV_SMALL times ($G1, $B1 bytes) and $KJV_BIG times ($G2, $B2 bytes)."
		note "mawk, Python and the sort pipeline run on $G1 only (on $G2 they would take minutes per run); wc -w and tally run on both."
		note "The peers sort their output by count as tally does (mawk through sort -rn, Python by most_common); wc -w only counts."
		TW="$T --split=space --case=ascii"
		ref "$G1" "tally -j1"
		ref "$G2" "tally -j1"
		warm "$K1"
		measure "$G1" "tally -j1" "$B1" "exec $TW -j1 $K1"
		measure "$G1" "tally -j2" "$B1" "exec $TW -j2 $K1"
		measure "$G1" "wc -w" "$B1" "export LC_ALL=C.UTF-8; exec wc -w $K1"
		measure "$G1" "tr | sort | uniq -c" "$B1" "export LC_ALL=C; tr -s ' \t\n\v\f\r' '\n' <$K1 | tr A-Z a-z | sort -S 50% --parallel=2 | uniq -c | sort -rn"
		measure "$G1" "mawk" "$B1" "mawk -f $AWKDIR/words.awk $K1 | LC_ALL=C sort -rn"
		measure "$G1" "python3 counter.py" "$B1" "exec python3 $AWKDIR/counter.py <$K1"
		warm "$K2"
		measure "$G2" "tally -j1" "$B2" "exec $TW -j1 $K2"
		measure "$G2" "tally -j2" "$B2" "exec $TW -j2 $K2"
		measure "$G2" "wc -w" "$B2" "export LC_ALL=C.UTF-8; exec wc -w $K2"
		# wc -w gives the total only: compare it with the sum of tally's counts.
		_sum=$($TW $K1 | awk -F"$TAB" '{ s += $NF } END { printf "%d", s }')
		_wc=$(LC_ALL=C.UTF-8 wc -w <"$K1" | tr -d ' ')
		if [ "$_sum" = "$_wc" ]; then
			printf 'check\twc -w\tagree\t(%s words on %s: wc -w total = sum of tally counts)\n' "$_wc" "$G1" >>"$CASEFILE"
		else
			printf 'check\twc -w\tDIFFER\t(%s: wc -w %s, sum of tally counts %s)\n' "$G1" "$_wc" "$_sum" >>"$CASEFILE"
		fi
		check "tr | sort | uniq -c (kjvbible.txt)" tsv "$TW $KJV" \
			uniqc "LC_ALL=C tr -s ' \t\n\v\f\r' '\n' <$KJV | LC_ALL=C tr A-Z a-z | LC_ALL=C sort | uniq -c" --drop-empty
		check "mawk (kjvbible.txt)" tsv "$TW $KJV" uniqc "mawk -f $AWKDIR/words.awk $KJV"
		check "python3 counter.py (kjvbible.txt)" tsv "$TW $KJV" tsv "python3 $AWKDIR/counter.py <$KJV"
		target "$G1: tally -j1 time / wc -w time <= 0.45" "t['$G1/tally -j1'] / t['$G1/wc -w']" "v <= 0.45" "x"
		target "$G1: tally -j2 time / wc -w time <= 0.30" "t['$G1/tally -j2'] / t['$G1/wc -w']" "v <= 0.30" "x"
		target "$G2: tally -j1 time / wc -w time <= 0.45" "t['$G2/tally -j1'] / t['$G2/wc -w']" "v <= 0.45" "x"
		target "$G2: tally -j2 time / wc -w time <= 0.30" "t['$G2/tally -j2'] / t['$G2/wc -w']" "v <= 0.30" "x"
		target "$G2: tally peak RSS (-j1 and -j2) < 100 MB" "max(m['$G2/tally -j1'], m['$G2/tally -j2']) / 1e6" "v < 100" " MB"
	else
		note "$KJV is missing: case not run."
		log "$KJV is missing: case 1 skipped"
	fi
	end_case
fi

# ---- 2. lines -------------------------------------------------------------

if want 2 lines; then
	begin_case 2-lines "2. --lines on log-like lines"
	F=$DIR/lines-$S_LINES.txt C=$DIR/lines-$S_CHECK.txt
	corpus "$F" lines "$S_LINES" && corpus "$C" lines "$S_CHECK"
	B=$(bytes "$F") G=lines-$S_LINES
	warm "$F"
	note "Input: \`gen lines -s $S_LINES\` ($B bytes, $(wc -l <"$F" | tr -d ' ') lines, $($T --lines --sort=none "$F" | wc -l | tr -d ' ') distinct)."
	note "sort | uniq -c leaves its output in key order; tally sorts it by count (the target's row), in key order with --sort=key, and not at all with --sort=none."
	ref "$G" "tally --lines"
	measure "$G" "tally --lines" "$B" "exec $T --lines $F"
	measure "$G" "tally --lines -j1" "$B" "exec $T --lines -j1 $F"
	measure "$G" "tally --lines --sort=key" "$B" "exec $T --lines --sort=key $F"
	measure "$G" "tally --lines --sort=none" "$B" "exec $T --lines --sort=none $F"
	measure "$G" "sort | uniq -c" "$B" "export LC_ALL=C; sort -S 50% --parallel=2 $F | uniq -c"
	check "sort | uniq -c (gen lines -s $S_CHECK)" tsv "$T --lines $C" uniqc "LC_ALL=C sort $C | uniq -c"
	target "sort | uniq -c time / tally --lines time >= 10" "t['$G/sort | uniq -c'] / t['$G/tally --lines']" "v >= 10" "x"
	end_case
fi

# ---- 3. Cyrillic ----------------------------------------------------------

if want 3 cyrillic; then
	begin_case 3-cyrillic "3. Unicode tokenizer on Cyrillic text"
	F=$DIR/words-cyr-$S_CYR.txt
	corpus "$F" words "$S_CYR" --cyrillic
	B=$(bytes "$F") G=cyr-$S_CYR
	warm "$F"
	note "Input: \`gen words --cyrillic -s $S_CYR\` ($B bytes; letters are 2-byte UTF-8, punctuation ASCII, dashes 3-byte)."
	ref "$G" "tally --split=space"
	measure "$G" "tally --split=space" "$B" "exec $T --split=space $F"
	measure "$G" "tally (unicode)" "$B" "exec $T $F"
	measure "$G" "tally --split=space -j1" "$B" "exec $T --split=space -j1 $F"
	measure "$G" "tally (unicode) -j1" "$B" "exec $T -j1 $F"
	target "unicode throughput / space throughput >= 0.5 (default threads)" "mbs['$G/tally (unicode)'] / mbs['$G/tally --split=space']" "v >= 0.5" ""
	target "unicode throughput / space throughput >= 0.5 (-j1)" "mbs['$G/tally (unicode) -j1'] / mbs['$G/tally --split=space -j1']" "v >= 0.5" ""
	end_case
fi

# ---- 4. scaling -----------------------------------------------------------

if want 4 scaling; then
	begin_case 4-scaling "4. Scaling with input size and threads"
	F05=$DIR/words-fixed-$S_W05.txt F1=$DIR/words-fixed-$S_W1.txt F2=$DIR/words-fixed-$S_W2.txt
	corpus "$F05" words "$S_W05" --fixed && corpus "$F1" words "$S_W1" --fixed &&
		corpus "$F2" words "$S_W2" --fixed
	G05=words-fixed-$S_W05 G1=words-fixed-$S_W1 G2=words-fixed-$S_W2
	note "Inputs: \`gen words --fixed -s SIZE\` (100k-word Zipf vocabulary, s = 1.05; possessives of the 2,000 most frequent words only). Every size holds the same 102,200 distinct keys, and even 256 MB shared by two threads fills the tables to the same size: the fixed vocabulary of the RSS target. tally with its defaults (unicode tokenizer, lowercase)."
	for _pair in "$G05:$F05" "$G1:$F1" "$G2:$F2"; do
		_n=${_pair%%:*} _f=${_pair#*:}
		ref "$_n" "tally -j1"
		warm "$_f"
		measure "$_n" "tally -j1" "$(bytes "$_f")" "exec $T -j1 $_f"
		measure "$_n" "tally -j2" "$(bytes "$_f")" "exec $T -j2 $_f"
	done
	target "time $G2 / time $G05, -j1 (input x4) <= 4.4" "t['$G2/tally -j1'] / t['$G05/tally -j1']" "v <= 4.4" "x"
	target "time $G2 / time $G05, -j2 (input x4) <= 4.4" "t['$G2/tally -j2'] / t['$G05/tally -j2']" "v <= 4.4" "x"
	target "peak RSS growth $G05 -> $G2, -j1 < 10%" "(m['$G2/tally -j1'] / m['$G05/tally -j1'] - 1) * 100" "v < 10" "%"
	target "peak RSS growth $G05 -> $G2, -j2 < 10%" "(m['$G2/tally -j2'] / m['$G05/tally -j2'] - 1) * 100" "v < 10" "%"
	target "$G1: -j1 time / -j2 time >= 1.8" "t['$G1/tally -j1'] / t['$G1/tally -j2']" "v >= 1.8" "x"
	end_case
fi

# ---- 5. zstd input --------------------------------------------------------

if want 5 zstd; then
	begin_case 5-zstd "5. zstd-compressed input"
	F=$DIR/words-$S_W1.txt Z=$DIR/words-$S_W1.txt.zst C=$DIR/words-$S_CHECK.txt
	corpus "$F" words "$S_W1" && corpus "$C" words "$S_CHECK"
	if ! [ -s "$Z" ]; then
		log "compressing $F"
		zstd -q -3 -T0 -c "$F" >"$Z.tmp" && mv "$Z.tmp" "$Z"
	fi
	[ -s "$C.zst" ] || zstd -q -3 -c "$C" >"$C.zst"
	B=$(bytes "$F") G=words-$S_W1.zst
	warm "$Z" "$F"
	note "Input: \`gen words -s $S_W1\` ($B bytes) compressed by \`zstd -3\` to $(bytes "$Z") bytes; MB/s counts uncompressed bytes."
	ref "$G" "tally FILE.zst"
	measure "$G" "tally FILE.zst" "$B" "exec $T $Z"
	measure "$G" "zstd -dc FILE.zst | tally" "$B" "zstd -dc $Z | $T"
	measure "$G" "zstd -dc FILE.zst >/dev/null" "$B" "exec zstd -dc $Z >/dev/null"
	measure "$G" "tally FILE (uncompressed)" "$B" "exec $T $F"
	check "tally FILE.zst vs tally FILE (gen words -s $S_CHECK)" tsv "$T $C.zst" tsv "$T $C"
	target "tally FILE.zst time / (zstd -dc | tally) time < 1" "t['$G/tally FILE.zst'] / t['$G/zstd -dc FILE.zst | tally']" "v < 1" "x"
	target "tally FILE.zst time / zstd -dc time <= 1.6" "t['$G/tally FILE.zst'] / t['$G/zstd -dc FILE.zst >/dev/null']" "v <= 1.6" "x"
	end_case
fi

# ---- 6. memory budget -----------------------------------------------------

if want 6 memory; then
	begin_case 6-memory "6. Memory budget: bigrams of high-cardinality text"
	F=$DIR/uniform-$S_UNI.txt C=$DIR/uniform-$S_CHECK.txt K=$DIR/uniform-$S_UNI.bigrams
	corpus "$F" uniform "$S_UNI" && corpus "$C" uniform "$S_CHECK"
	B=$(bytes "$F") G=uniform-$S_UNI
	warm "$F"
	TB="$T --ngram 2"
	note "Input: \`gen uniform -s $S_UNI\` ($B bytes, $(wc -w <"$F" | tr -d ' ') words drawn from a 16M-word vocabulary)."
	note "tally runs with its defaults (unicode tokenizer, lowercase), the same split as mawk's on this input, \`--sort=key\` output written to a file in BENCH_DIR (timed; the file of the last run is hashed afterwards)."
	note "One more tally row keeps the default order (by count) at -m 256M, its output written to a file as well."
	note "Peers: the bigram keys are written by mawk in a separate timed pass (\`mawk keys > FILE\`), then \`sort | uniq -c\` is timed on that file alone (target row); \`mawk keys | sort | uniq -c\` is the whole job as one pipeline."
	ref "$G" "tally -m 256M"
	_same=yes _ref=
	for _mem in unbounded $CURVE; do
		[ "$_mem" = unbounded ] && [ -n "$_ref" ] && continue
		if [ "$_mem" = unbounded ]; then _opt=; else _opt="-m $_mem"; fi
		_o=$DIR/cmd/bigrams.out
		rm -f "$_o"
		measure "$G" "tally -m $_mem" "$B" "exec $TB $_opt --sort=key $F >$_o"
		[ -s "$_o" ] || continue
		_sha=$(sha256sum <"$_o" | cut -c1-64)
		if [ -z "$_ref" ]; then
			_ref=$_sha
			note "The unbounded run counts $(wc -l <"$_o" | tr -d ' ') distinct bigrams."
		elif [ "$_sha" = "$_ref" ]; then
			printf 'check\t-m %s vs unbounded\tidentical\t(sha256 %s)\n' "$_mem" "$_sha" >>"$CASEFILE"
		else
			_same=no
			printf 'check\t-m %s vs unbounded\tDIFFER\t(sha256 %s, unbounded %s)\n' "$_mem" "$_sha" "$_ref" >>"$CASEFILE"
		fi
		rm -f "$_o"
	done
	[ -n "$_ref" ] || _same=no
	# The default order, by count, at the budget of the target: the keys
	# seen more than once are sorted, those seen once follow in key order.
	measure "$G" "tally -m 256M, by count" "$B" "exec $TB -m 256M $F >$DIR/cmd/bigrams.out"
	rm -f "$DIR/cmd/bigrams.out"
	measure "$G" "mawk keys > FILE" "$B" "mawk -v keys=1 -f $AWKDIR/bigrams.awk $F >$K"
	measure "$G" "sort -S 256M keys | uniq -c" "$B" "export LC_ALL=C; sort -S 256M --parallel=2 $K | uniq -c"
	measure "$G" "mawk keys | sort -S 256M | uniq -c" "$B" "export LC_ALL=C; mawk -v keys=1 -f $AWKDIR/bigrams.awk $F | sort -S 256M --parallel=2 | uniq -c"
	rm -f "$K"
	check "mawk keys | sort | uniq -c (gen uniform -s $S_CHECK)" tsv "$TB $C" \
		uniqc "mawk -v keys=1 -f $AWKDIR/bigrams.awk $C | LC_ALL=C sort | uniq -c"
	target "peak RSS at -m 256M <= 320 MiB" "m['$G/tally -m 256M'] / 1048576" "v <= 320" " MiB"
	target "--sort=key output identical at every -m to the unbounded run" "'$_same'" "v == 'yes'" ""
	target "(sort -S 256M keys | uniq -c) time / tally -m 256M time >= 2" "t['$G/sort -S 256M keys | uniq -c'] / t['$G/tally -m 256M']" "v >= 2" "x"
	end_case
fi

# ---- 7. fields and n-grams ------------------------------------------------

if want 7 fields; then
	begin_case 7-fields "7. Fields (TSV, CSV) and word bigrams"
	FT=$DIR/tsv-$S_TSV.txt FC=$DIR/csv-$S_CSV.txt FW=$DIR/words-$S_NGRAM.txt
	CT=$DIR/tsv-$S_CHECK.txt CC=$DIR/csv-$S_CHECK.txt CW=$DIR/words-$S_CHECK.txt
	corpus "$FT" tsv "$S_TSV" && corpus "$FC" csv "$S_CSV" && corpus "$FW" words "$S_NGRAM"
	corpus "$CT" tsv "$S_CHECK" && corpus "$CC" csv "$S_CHECK" && corpus "$CW" words "$S_CHECK"
	GT=tsv-$S_TSV GC=csv-$S_CSV GW=words-$S_NGRAM
	note "Inputs: \`gen tsv\`, \`gen csv\` (the same records as RFC 4180 CSV: quoted fields, commas, doubled quotes, newlines), \`gen words\`. Column 2 is a Zipf-distributed word."
	note "Peers sort their output by count as tally does (sort -rn after mawk; Python most_common); \`cut | sort | uniq -c\` leaves key order."
	note "Bigrams: tally --ngram 2 --split=space --case=ascii, the same split as mawk's."
	warm "$FT"
	ref "$GT" "tally -f 2"
	measure "$GT" "tally -f 2" "$(bytes "$FT")" "exec $T -f 2 $FT"
	measure "$GT" "cut -f2 | sort | uniq -c" "$(bytes "$FT")" "cut -f2 $FT | LC_ALL=C sort | uniq -c"
	measure "$GT" "mawk" "$(bytes "$FT")" "mawk -v f=2 -f $AWKDIR/field.awk $FT | LC_ALL=C sort -rn"
	warm "$FC"
	ref "$GC" "tally --csv -f 2"
	measure "$GC" "tally --csv -f 2" "$(bytes "$FC")" "exec $T --csv -f 2 $FC"
	measure "$GC" "python3 counter.py --csv 2" "$(bytes "$FC")" "exec python3 $AWKDIR/counter.py --csv 2 <$FC"
	warm "$FW"
	TN="$T --ngram 2 --split=space --case=ascii"
	ref "$GW" "tally --ngram 2"
	measure "$GW" "tally --ngram 2" "$(bytes "$FW")" "exec $TN $FW"
	measure "$GW" "mawk bigrams" "$(bytes "$FW")" "mawk -f $AWKDIR/bigrams.awk $FW | LC_ALL=C sort -rn"
	check "cut -f2 | sort | uniq -c (gen tsv -s $S_CHECK)" tsv "$T -f 2 $CT" uniqc "cut -f2 $CT | LC_ALL=C sort | uniq -c"
	check "mawk field (gen tsv -s $S_CHECK)" tsv "$T -f 2 $CT" uniqc "mawk -v f=2 -f $AWKDIR/field.awk $CT"
	check "python3 csv (gen csv -s $S_CHECK)" tsv "$T --csv -f 2 $CC" tsv "python3 $AWKDIR/counter.py --csv 2 <$CC"
	check "mawk bigrams (gen words -s $S_CHECK)" tsv "$TN $CW" uniqc "mawk -f $AWKDIR/bigrams.awk $CW"
	note "Targets: \"fastest by a wide margin\" is read here as each peer taking at least 2x tally's time."
	target "$GT: cut | sort | uniq -c time / tally time >= 2" "t['$GT/cut -f2 | sort | uniq -c'] / t['$GT/tally -f 2']" "v >= 2" "x"
	target "$GT: mawk time / tally time >= 2" "t['$GT/mawk'] / t['$GT/tally -f 2']" "v >= 2" "x"
	target "$GC: python3 csv time / tally time >= 2" "t['$GC/python3 counter.py --csv 2'] / t['$GC/tally --csv -f 2']" "v >= 2" "x"
	target "$GW: mawk bigrams time / tally time >= 2" "t['$GW/mawk bigrams'] / t['$GW/tally --ngram 2']" "v >= 2" "x"
	end_case
fi

# ---- 8. parts and merge --------------------------------------------------

if want 8 merge; then
	begin_case 8-merge "8. Parts and merge (--shard, tally merge)"
	F=$DIR/lines-$S_LINES.txt C=$DIR/lines-$S_CHECK.txt
	corpus "$F" lines "$S_LINES" && corpus "$C" lines "$S_CHECK"
	B=$(bytes "$F") G=lines-$S_LINES GM=merge-2-parts
	P=$DIR/parts
	mkdir -p "$P"
	# The count files the merges below read: two parts, in key order, as
	# sort -m needs them.
	for k in 1 2; do
		$T --lines --shard $k/2 --sort=key "$F" >"$P/k$k.tsv"
		$T --lines --shard $k/2 --sort=key "$C" >"$P/c$k.tsv"
	done
	PB=$(($(bytes "$P/k1.tsv") + $(bytes "$P/k2.tsv")))
	note "Input: \`gen lines -s $S_LINES\` ($B bytes), the input of case 2; its two parts' count files in key order: $PB bytes."
	note "Parts: \`tally --shard K/2 -j1 --sort=none -o PART.tsv.zst\`, both at once, then \`tally merge --sort=key\` of the two (counted in tables); or the parts in key order (\`--sort=key\`), which the merge reads as it writes; against one run with both threads. The merges: of the two parts in key order, by tally merge (read as it writes, and by count: counted in tables) and by sort -m and an awk sum (sumsorted.awk), in key order both."
	warm "$F"
	ref "$G" "tally --lines --sort=key"
	measure "$G" "tally --lines --sort=key" "$B" "exec $T --lines --sort=key $F"
	measure "$G" "2 parts at once + merge" "$B" "$T --lines -j1 --shard 1/2 --sort=none -o $P/a1.tsv.zst $F & $T --lines -j1 --shard 2/2 --sort=none -o $P/a2.tsv.zst $F & wait; exec $T merge --sort=key $P/a1.tsv.zst $P/a2.tsv.zst"
	measure "$G" "2 parts in key order + merge" "$B" "$T --lines -j1 --shard 1/2 --sort=key -o $P/b1.tsv.zst $F & $T --lines -j1 --shard 2/2 --sort=key -o $P/b2.tsv.zst $F & wait; exec $T merge --sort=key $P/b1.tsv.zst $P/b2.tsv.zst"
	warm "$P/k1.tsv" "$P/k2.tsv"
	ref "$GM" "tally merge --sort=key"
	measure "$GM" "tally merge --sort=key" "$PB" "exec $T merge --sort=key $P/k1.tsv $P/k2.tsv"
	measure "$GM" "tally merge (by count)" "$PB" "exec $T merge $P/k1.tsv $P/k2.tsv"
	measure "$GM" "sort -m | mawk" "$PB" "export LC_ALL=C; sort -m -t \"\$(printf '\\t')\" -k1,1 $P/k1.tsv $P/k2.tsv | mawk -f $AWKDIR/sumsorted.awk"
	check "tally --lines (gen lines -s $S_CHECK, whole)" tsv "$T --lines --sort=key $C" tsv "$T merge --sort=key $P/c1.tsv $P/c2.tsv"
	check "sort -m | mawk (gen lines -s $S_CHECK, 2 parts)" tsv "$T merge --sort=key $P/c1.tsv $P/c2.tsv" tsv "LC_ALL=C sort -m -t \"\$(printf '\\t')\" -k1,1 $P/c1.tsv $P/c2.tsv | mawk -f $AWKDIR/sumsorted.awk"
	end_case
	rm -rf "$P"
fi

# ---- 9. many small files ---------------------------------------------------

if want 9 small; then
	begin_case 9-small "9. Many small files"
	F=$DIR/words-$S_W1.txt SD=$DIR/small-$N_SMALL L=$DIR/small-$N_SMALL.list
	corpus "$F" words "$S_W1"
	if ! [ -s "$L" ]; then
		log "splitting $F into $N_SMALL files"
		rm -rf "$SD" && mkdir -p "$SD" &&
			awk -v dir="$SD" -v n="$N_SMALL" 'BEGIN { srand(1) }
				!f || size >= want {
					if (f) close(f)
					if (k == n) exit
					f = sprintf("%s/%06d.txt", dir, k++)
					size = 0
					want = 500 + int(rand() * 7500)
				}
				{ print > f; size += length($0) + 1 }' "$F" &&
			find "$SD" -type f -print0 | sort -z >"$L.tmp" && mv "$L.tmp" "$L"
	fi
	B=$(xargs -0 cat <"$L" | wc -c | tr -d ' ') G=small-$N_SMALL
	warm "$L"
	xargs -0 cat <"$L" >/dev/null
	note "Input: $N_SMALL files of 0.5 to 8 KB ($B bytes in all), the lines of \`gen words -s $S_W1\` in turn, named in a list for \`--files0-from\`; every file ends with a newline, so their concatenation holds the same words. tally with its defaults."
	note "No target: the cost of a file, opened, read and closed, is what this case shows, against \`wc -w\` reading the same files and tally reading them all concatenated through a pipe."
	ref "$G" "tally --files0-from"
	measure "$G" "tally --files0-from" "$B" "exec $T --files0-from $L"
	measure "$G" "tally -j1 --files0-from" "$B" "exec $T -j1 --files0-from $L"
	measure "$G" "wc -w --files0-from" "$B" "export LC_ALL=C.UTF-8; exec wc -w --files0-from=$L"
	measure "$G" "xargs cat | tally" "$B" "xargs -0 cat <$L | $T"
	check "xargs cat | tally ($N_SMALL files)" tsv "$T --files0-from $L" tsv "xargs -0 cat <$L | $T"
	end_case
fi

log ""
log "results: $RESULTS"
