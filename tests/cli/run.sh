#!/bin/sh
# Golden command-line tests: run tally, compare exact stdout, stderr and exit
# status.  Usage: sh tests/cli/run.sh path/to/tally
#
# A case is written as
#
#   expect_out <<'EOF'        (optional: expected stdout; default empty)
#   ...
#   EOF
#   expect_err <<'EOF'        (optional: expected stderr; default empty)
#   ...
#   EOF
#   check NAME STATUS 'shell command using $T'
#
# "requires TOOL" before a check skips it when TOOL is not installed (python3
# and groff are not among the packages the README installs).
#
# The command runs with sh in a fresh empty directory; $T is tally, $DATA the
# repository's data/ directory, $HERE this directory.  Each failure prints one
# line and the diff; the last line is "N passed, N failed".
#
# TALLY_CLI_QUICK=1 skips the largest inputs (for sanitizer builds).

set -u

if [ $# -ne 1 ]; then
	echo "usage: sh tests/cli/run.sh path/to/tally" >&2
	exit 2
fi

case $1 in
/*) T=$1 ;;
*)  T=$(pwd)/$1 ;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DATA=$ROOT/data
export T HERE DATA
# Output must not depend on the user's locale; progress must not appear.
LC_ALL=C
export LC_ALL
unset TALLY_FAIL_ALLOC TALLY_CGROUP_ROOT TALLY_SPILL_FANIN TALLY_NO_AVX512 2>/dev/null || :

if [ ! -x "$T" ]; then
	echo "run.sh: $T is not an executable" >&2
	exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tally-cli.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM HUP
# Test a copy, so that a rebuild during the run does not pull the rug.
cp "$T" "$WORK/tally" || exit 2
T=$WORK/tally
TMPDIR=$WORK/tmp
export TMPDIR
mkdir "$TMPDIR"

passed=0
failed=0
skipped=0
required=""
ncase=0
: > "$WORK/exp.out"
: > "$WORK/exp.err"

expect_out() { cat > "$WORK/exp.out"; }
requires() { required="$required $1"; }
# skip_case NAME REASON: count a case that cannot run on this machine.
skip_case() {
	skipped=$((skipped + 1))
	echo "SKIP $1: $2"
	: > "$WORK/exp.out"
	: > "$WORK/exp.err"
}
have() { command -v "$1" > /dev/null 2>&1; }
expect_err() { cat > "$WORK/exp.err"; }

# check NAME STATUS COMMAND
check() {
	name=$1 want=$2 cmd=$3
	for tool in $required; do
		if ! have "$tool"; then
			skipped=$((skipped + 1))
			echo "SKIP $name: $tool is not installed"
			required=""
			: > "$WORK/exp.out"
			: > "$WORK/exp.err"
			return 0
		fi
	done
	required=""
	ncase=$((ncase + 1))
	dir=$WORK/case$ncase
	mkdir "$dir"
	(cd "$dir" && sh -c "$cmd") > "$WORK/got.out" 2> "$WORK/got.err"
	got=$?
	ok=1
	msg=""
	if [ "$got" != "$want" ]; then
		ok=0
		msg="exit status $got, expected $want"
	fi
	if ! cmp -s "$WORK/exp.out" "$WORK/got.out"; then
		ok=0
		msg="${msg:+$msg; }stdout differs"
	fi
	if ! cmp -s "$WORK/exp.err" "$WORK/got.err"; then
		ok=0
		msg="${msg:+$msg; }stderr differs"
	fi
	if [ $ok = 1 ]; then
		passed=$((passed + 1))
		rm -rf "$dir"
	else
		failed=$((failed + 1))
		echo "FAIL $name: $msg"
		diff -u "$WORK/exp.out" "$WORK/got.out" | sed -n '3,40p' | sed 's/^/  out /'
		diff -u "$WORK/exp.err" "$WORK/got.err" | sed -n '3,40p' | sed 's/^/  err /'
	fi
	: > "$WORK/exp.out"
	: > "$WORK/exp.err"
}

for f in "$HERE"/cases/*.sh; do
	. "$f"
done

[ "$skipped" -eq 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
