# Bounded memory: the default budget (cgroup limit, rlimits), the smallest
# budget, a full disk while spilling, signals while spilling, exact results
# under any budget, and hot keys staying resident.

# --- The default budget: half the smallest of RAM, cgroup limit, rlimits ---

# The tests below build a fake cgroup tree that matches /proc/self/cgroup and
# point TALLY_CGROUP_ROOT at it; tally prints its budget in the statistics.
CGROUP=$HERE/fake_cgroup.sh
RAM_HALF=$(( $(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo) * 512 ))
export CGROUP RAM_HALF
cg_v2=$(grep -c '^0::' /proc/self/cgroup 2>/dev/null)
cg_v1=$(grep -c '^[0-9]*:[^:]*memory[^:]*:' /proc/self/cgroup 2>/dev/null)
# A cgroup below the root, for "a limit above us applies too".
cg_deep=""
for k in v2 v1; do
	case $k in
	v2) p=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup 2>/dev/null | head -n 1) ;;
	v1) p=$(sed -n 's/^[0-9]*:[^:]*memory[^:]*:\(.*\)$/\1/p' /proc/self/cgroup 2>/dev/null | head -n 1) ;;
	esac
	case $p in
	/?*) cg_deep=${cg_deep:-$k} ;;
	esac
done
# The rlimits must not lower the budget for the "no limit" case.
[ "$(ulimit -v)" = unlimited ] && [ "$(ulimit -d)" = unlimited ] && rl_free=1 || rl_free=0

if [ "${cg_v2:-0}" -gt 0 ]; then
	expect_out <<'EOF'
"budget":33554432
EOF
	check cgroup-v2-limit 0 'sh "$CGROUP" root v2 67108864; echo a | TALLY_CGROUP_ROOT=$PWD/root $T --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json'

	expect_out <<'EOF'
"budget":25165824
EOF
	check cgroup-v2-limit-odd 0 'sh "$CGROUP" root v2 50331648; echo a | TALLY_CGROUP_ROOT=$PWD/root $T -j1 --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json'
else
	skip_case cgroup-v2-limit "no cgroup v2 line in /proc/self/cgroup"
	skip_case cgroup-v2-limit-odd "no cgroup v2 line in /proc/self/cgroup"
fi

if [ "${cg_v1:-0}" -gt 0 ]; then
	expect_out <<'EOF'
"budget":33554432
EOF
	check cgroup-v1-limit 0 'sh "$CGROUP" root v1 67108864; echo a | TALLY_CGROUP_ROOT=$PWD/root $T --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json'
else
	skip_case cgroup-v1-limit "no cgroup v1 memory line in /proc/self/cgroup"
fi

if [ -n "$cg_deep" ]; then
	CG_DEEP=$cg_deep
	export CG_DEEP
	# The process's own group says "no limit", the one above it 64 MiB.
	expect_out <<'EOF'
"budget":33554432
EOF
	check cgroup-parent-limit 0 'if [ $CG_DEEP = v2 ]; then own=max; else own=none; fi; sh "$CGROUP" root $CG_DEEP $own 67108864; echo a | TALLY_CGROUP_ROOT=$PWD/root $T --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json'

	# Both limited: the smaller wins, wherever it is.
	expect_out <<'EOF'
"budget":16777216
"budget":16777216
EOF
	check cgroup-smallest-on-path 0 'sh "$CGROUP" a $CG_DEEP 33554432 67108864; sh "$CGROUP" b $CG_DEEP 67108864 33554432; for r in a b; do echo a | TALLY_CGROUP_ROOT=$PWD/$r $T --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json; done'
else
	skip_case cgroup-parent-limit "this process's cgroup is the root"
	skip_case cgroup-smallest-on-path "this process's cgroup is the root"
fi

if [ $rl_free = 1 ] && [ "${cg_v2:-0}" -gt 0 ]; then
	# "max" is no limit: the budget is half the RAM.
	printf '"budget":%s\n' "$RAM_HALF" | expect_out
	check cgroup-v2-max 0 'sh "$CGROUP" root v2 max; echo a | TALLY_CGROUP_ROOT=$PWD/root $T --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json'
else
	skip_case cgroup-v2-max "rlimits set or no cgroup v2 line"
fi

if [ $rl_free = 1 ]; then
	# No cgroup files at all: half the RAM.
	printf '"budget":%s\n' "$RAM_HALF" | expect_out
	check cgroup-none 0 'mkdir root; echo a | TALLY_CGROUP_ROOT=$PWD/root $T --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json'
else
	skip_case cgroup-none "ulimit -v or -d is set"
fi

# RLIMIT_AS and RLIMIT_DATA of 2 GiB: a budget of 1 GiB (the cgroup tree is
# empty, so that the machine's own limit does not interfere; two threads, so
# that the address space suffices on a machine with many CPUs).  A sanitizer
# build reserves terabytes of address space and cannot start under such a
# limit: probe first (in a command substitution with its errors discarded,
# so that the shell's report of the killed probe is not printed).
rl_ok=$( (ulimit -v 2097152 && "$T" --version > /dev/null 2>&1 && echo 1) 2> /dev/null )
[ "$rl_ok" = 1 ] || rl_ok=0
if [ "$rl_ok" = 1 ]; then
expect_out <<'EOF'
"budget":1073741824
"budget":1073741824
EOF
check rlimit-as-data 0 'mkdir root; (ulimit -s 8192 && ulimit -v 2097152 && echo a | TALLY_CGROUP_ROOT=$PWD/root $T -j2 --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json); (ulimit -s 8192 && ulimit -d 2097152 && echo a | TALLY_CGROUP_ROOT=$PWD/root $T -j2 --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json)'

# Under a limit of a few hundred MB, the threads' stacks and their malloc
# arenas took more than the half the default budget left them: two threads
# ran out of memory under ulimit -v 200000 on 5M distinct lines, eight under
# 150000.  Now they share one arena, and where they take more than a quarter
# of the limit the budget is two thirds of what they leave; below what the
# threads need, the run stops at once with a usage error.
expect_out <<'EOF'
0 5000000
0 5000000
2
EOF
expect_err <<'EOF'
tally: the default memory budget, 0 bytes (half the memory limit), is too small: at least 32 KiB needed for 1 thread
Try 'tally --help'.
EOF
check rlimit-threads-room 0 'mkdir root; seq 1 5000000 > in; for spec in "200000 -j2" "150000 -j8"; do set -- $spec; (ulimit -s 8192 && ulimit -v $1 && TALLY_CGROUP_ROOT=$PWD/root $T $2 -l in > out; echo "$? $(wc -l < out)"); done; (ulimit -s 8192 && ulimit -v 30000 && TALLY_CGROUP_ROOT=$PWD/root $T -j1 -l in > out; echo $?)'
else
	skip_case rlimit-as-data "this build cannot run under ulimit -v (sanitizer)"
	skip_case rlimit-threads-room "this build cannot run under ulimit -v (sanitizer)"
fi

# The smallest of all: RLIMIT_AS below the cgroup limit, then above it.
if [ "$rl_ok" = 0 ]; then
	skip_case rlimit-and-cgroup "this build cannot run under ulimit -v (sanitizer)"
elif [ "${cg_v2:-0}" -gt 0 ] || [ "${cg_v1:-0}" -gt 0 ]; then
	[ "${cg_v2:-0}" -gt 0 ] && CG_ANY=v2 || CG_ANY=v1
	export CG_ANY
	expect_out <<'EOF'
"budget":1073741824
"budget":536870912
EOF
	check rlimit-and-cgroup 0 'sh "$CGROUP" a $CG_ANY 4294967296; sh "$CGROUP" b $CG_ANY 1073741824; for r in a b; do (ulimit -s 8192 && ulimit -v 2097152 && echo a | TALLY_CGROUP_ROOT=$PWD/$r $T -j2 --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json); done'
else
	skip_case rlimit-and-cgroup "no memory cgroup line in /proc/self/cgroup"
fi

# -m overrides the default.
expect_out <<'EOF'
"budget":3145728
EOF
check memory-option-budget 0 'echo a | $T -m 3M --stats-json s.json > /dev/null; grep -o "\"budget\":[0-9]*" s.json'

# --- The smallest budget ---

# Too small: a usage error naming the minimum, which grows with the threads.
small_case() {
	printf 'tally: %s\nTry '\''tally --help'\''.\n' "$3" | expect_err
	check "$1" 2 "printf 'a b\n' | \$T $2"
}
small_case memory-too-small-j1    '-j1 -m 31K'             "a --memory of 31744 bytes is too small: at least 32 KiB needed for 1 thread"
small_case memory-too-small-j1-b  '-j1 -m 32767'           "a --memory of 32767 bytes is too small: at least 32 KiB needed for 1 thread"
small_case memory-too-small-byte  '-j1 -m 1'               "a --memory of 1 byte is too small: at least 32 KiB needed for 1 thread"
small_case memory-too-small-j2    '-j 2 --memory=48K'      "a --memory of 49152 bytes is too small: at least 64 KiB needed for 2 threads"
small_case memory-too-small-j4    '-l -j4 -m 64K'          "a --memory of 65536 bytes is too small: at least 128 KiB needed for 4 threads"
small_case memory-too-small-ngram '--ngram 2 -j2 -m 64K'   "a --memory of 65536 bytes is too small: at least 96 KiB needed for 2 threads and n-grams"

# The same limit met by default (a 32 KiB cgroup limit, so a 16 KiB budget)
# names where the budget came from rather than an option never given.
if [ "$cg_v1" -gt 0 ] || [ "$cg_v2" -gt 0 ]; then
	[ "$cg_v1" -gt 0 ] && cg_kind=v1 || cg_kind=v2
	export cg_kind
	printf 'tally: %s\nTry '\''tally --help'\''.\n' \
		"the default memory budget, 16384 bytes (half the memory limit), is too small: at least 64 KiB needed for 2 threads" | expect_err
	check memory-too-small-default 2 'sh "$CGROUP" cg $cg_kind 32768 || exit 99; printf "a b\n" | TALLY_CGROUP_ROOT=cg $T -j2'
else
	skip_case memory-too-small-default "no cgroup line in /proc/self/cgroup"
fi

# Exactly the minimum named works (and spills on real text).
expect_out <<'EOF'
ok 1
ok 2
ok 3
EOF
check memory-minimum-works 0 'for j in 1 2 3; do m=$($T -j$j -m 1K </dev/null 2>&1 | sed -n "s/.*at least \([0-9]*\) KiB needed.*/\1/p"); [ -n "$m" ] || echo "no minimum for -j$j"; $T -j$j -m ${m}K --stats-json s.json "$DATA/kjv-genesis.txt" > got || echo "failed -j$j"; $T "$DATA/kjv-genesis.txt" | cmp -s - got && grep -q "\"runs_spilled\":[1-9]" s.json && echo ok $j; done'

# --- A full disk while spilling ---

mkdir "$WORK/mnt-probe"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64k tmpfs "$WORK/mnt-probe" 2>/dev/null; then
	umount "$WORK/mnt-probe"
	rmdir "$WORK/mnt-probe"
	# (timeout only guards the suite against a hang: status 124.)
	expect_out <<'EOF'
status 1
status 1
in
EOF
	expect_err <<'EOF'
tally: full: No space left on device
tally: full: No space left on device
EOF
	check spill-disk-full 0 'seq 1 40000 > in; mkdir full; mount -t tmpfs -o size=64k tmpfs full || exit 99; timeout 60 $T -m 96K -j1 -T full in > /dev/null; echo status $?; ls -A full; timeout 60 $T -m 96K -j1 -T full -o out in; echo status $?; ls -A full; umount full; rmdir full; ls -A'
else
	rmdir "$WORK/mnt-probe"
	skip_case spill-disk-full "cannot mount a tmpfs here (needs root)"
fi

# --- Signals while spilling ---

seq 1 3000000 > "$WORK/seq3m"
SEQ3M=$WORK/seq3m
export SEQ3M
# signal_case NAME SIGNAL STATUS: a spilling run in the background gets
# SIGNAL once its temporary directory holds a run file; it dies of it, and
# leaves neither temporary directory nor temporary output behind.  (env
# restores the default action: a shell starts background jobs with SIGINT
# and SIGQUIT ignored; ulimit -c 0: no core file from SIGQUIT or SIGXCPU.)
signal_case() {
	printf 'status %s\ntmp\n' "$3" | expect_out
	check "$1" 0 'ulimit -c 0; mkdir tmp; env --default-signal=INT,TERM,HUP,QUIT "$T" -l -m 128K -j2 -T tmp -o out.tsv "$SEQ3M" & pid=$!; i=0; while [ -z "$(ls -A tmp/tally.* 2>/dev/null)" ]; do i=$((i + 1)); if [ $i -gt 6000 ]; then echo "no run file after 60 s"; break; fi; sleep 0.01; done; kill -s '"$2"' $pid; wait $pid 2>/dev/null; echo status $?; ls -A tmp; ls -A'
}
if env --default-signal=INT true 2>/dev/null; then
	signal_case signal-term TERM 143
	signal_case signal-int INT 130
	signal_case signal-hup HUP 129
	signal_case signal-quit QUIT 131
	signal_case signal-xcpu XCPU 152
	signal_case signal-usr1 USR1 138
else
	skip_case signal-term "env --default-signal is missing"
	skip_case signal-int "env --default-signal is missing"
	skip_case signal-hup "env --default-signal is missing"
	skip_case signal-quit "env --default-signal is missing"
	skip_case signal-xcpu "env --default-signal is missing"
	skip_case signal-usr1 "env --default-signal is missing"
fi

# --- Exact under any budget ---

# exact.sh FILE MODE...: for each budget (from the smallest tally accepts
# for the thread count up to a few MiB) and each order, the output equals
# the run without a budget; the small budgets must have spilled.
cat > "$WORK/exact.sh" <<'EOF'
f=$1; shift
for order in "--sort=count" "--sort=key" "--sort=none" "--top 10"; do
	"$T" "$@" $order "$f" > ref || echo "reference failed: $order"
	[ -s ref ] || echo "empty reference: $order"
	for jm in "1 min" "2 min" "3 min" "1 128K" "2 192K" "2 1M" "1 3M"; do
		j=${jm% *} m=${jm#* }
		if [ $m = min ]; then
			m=$("$T" "$@" -j$j -m 1K </dev/null 2>&1 | sed -n "s/.*at least \([0-9]*\) KiB needed.*/\1/p")K
		fi
		"$T" "$@" $order -j$j -m $m --stats-json s.json "$f" > got || echo "failed: -j$j -m $m $order"
		cmp -s ref got || echo "differs: -j$j -m $m $order"
		case $m in
		1M|3M) ;;
		*) grep -q '"runs_spilled":[1-9]' s.json || echo "no spill: -j$j -m $m $order" ;;
		esac
	done
done
ls -A "$TMPDIR"
EOF
EXACT=$WORK/exact.sh
export EXACT

check exact-budget-words 0 'sh "$EXACT" "$DATA/kjv-genesis.txt"'
check exact-budget-lines 0 'sh "$EXACT" "$DATA/kjv-genesis.txt" -l'
check exact-budget-bigrams 0 'sh "$EXACT" "$DATA/kjv-genesis.txt" --ngram 2'
check exact-budget-space-keep 0 'sh "$EXACT" "$DATA/kjv-genesis.txt" --split=space --case=keep'

# --sort=key after a spill: the runs hold their keys in key order, and the
# merge of each range goes straight to the output, read ahead by a thread.
# The statistics and the report still count every key (--min-count drops
# keys from the output only), and a reader that stops early leaves no
# temporary files.
expect_out <<'EOF'
same output
spilled
same counts
report: same
no files
same top
EOF
check streamed-key-order 0 'f=$DATA/kjv-genesis.txt; $T --sort=key --min-count 2 --stats-json a.json "$f" > ref; $T --sort=key --min-count 2 -j3 -m 256K --stats-json b.json --report r.svg "$f" > got; cmp -s ref got && echo same output; grep -q "\"runs_spilled\":[1-9]" b.json && echo spilled; c=$(grep -o "\"distinct\":[0-9]*,\"hapax\":[0-9]*" a.json); [ -n "$c" ] && [ "$c" = "$(grep -o "\"distinct\":[0-9]*,\"hapax\":[0-9]*" b.json)" ] && echo same counts; d=$(sed -n "/>distinct keys</{n;s/.*>\([0-9][0-9]*\)<.*/\1/p;}" r.svg); [ "\"distinct\":$d" = "${c%%,*}" ] && echo report: same; mkdir t; TMPDIR=$PWD/t $T --sort=key -j2 -m 256K "$f" | head -n 1 > /dev/null; ls -A t; echo no files; $T --sort=key --top 7 "$f" > ref; $T --sort=key --top 7 -j2 -m 256K "$f" > got; cmp -s ref got && echo same top'

# --sort=count after a spill: the runs are in key order as for --sort=key;
# the orders take the keys seen more than once, and the keys seen once come
# last from a second merge of the runs.  The same output, with --min-count
# (no second merge) and without, at one thread and at three, and when the
# runs are merged in passes (a fan-in of 3); the same counts in the
# statistics; no temporary files left by a reader that stops in the orders
# or in the keys seen once.
expect_out <<'EOF'
same output -j1
same output -j3
same output in merge passes
spilled
same counts
same output --min-count 2
no files
EOF
check hapax-last 0 'f=$DATA/kjv-genesis.txt; $T --stats-json a.json "$f" > ref; for j in 1 3; do $T -j$j -m 256K --stats-json b.json "$f" > got; cmp -s ref got && echo same output -j$j; done; TALLY_SPILL_FANIN=3 $T -j2 -m 256K --stats-json c.json "$f" > got; cmp -s ref got && grep -q "\"merge_passes\":[2-9]" c.json && echo same output in merge passes; grep -q "\"runs_spilled\":[1-9]" b.json && echo spilled; c=$(grep -o "\"distinct\":[0-9]*,\"hapax\":[0-9]*" a.json); [ -n "$c" ] && [ "$c" = "$(grep -o "\"distinct\":[0-9]*,\"hapax\":[0-9]*" b.json)" ] && echo same counts; $T --min-count 2 "$f" > ref; $T --min-count 2 -j2 -m 256K "$f" > got; cmp -s ref got && echo same output --min-count 2; mkdir t; n=$(awk -F "\t" "\$2 > 1" ref | wc -l); for k in 1 $((n + 10)); do TMPDIR=$PWD/t $T -j2 -m 256K "$f" | head -n $k > /dev/null; done; ls -A t; echo no files'

# A property over 20 seeds: a few thousand random words, a random budget and
# thread count and order; odd seeds take a budget within 64 KiB of the
# smallest (they must spill), even ones anything up to 4 MiB.
cat > "$WORK/prop.sh" <<'EOF'
for seed in $(seq 1 20); do
	awk -v seed=$seed -v n=$((3000 + seed * 150)) -f "$HERE/gen_words.awk" > in
	set -- $(awk -v seed=$seed 'BEGIN { srand(seed * 7919); j = int(rand() * 4) + 1;
		split("count key none", o, " "); print j, int(rand() * 65536), int(rand() * 4194304), o[int(rand() * 3) + 1] }')
	j=$1 extra=$2 big=$3 order=$4
	min=$("$T" -j$j -m 1K </dev/null 2>&1 | sed -n "s/.*at least \([0-9]*\) KiB needed.*/\1/p")
	if [ $((seed % 2)) = 1 ]; then m=$((min * 1024 + extra)); else m=$((min * 1024 + big)); fi
	"$T" --sort=$order in > ref || echo "seed $seed: reference failed"
	"$T" --sort=$order -j$j -m $m --stats-json s.json in > got || echo "seed $seed: failed -j$j -m $m"
	cmp -s ref got || echo "seed $seed: differs -j$j -m $m --sort=$order"
	if [ $((seed % 2)) = 1 ] && ! grep -q '"runs_spilled":[1-9]' s.json; then
		echo "seed $seed: no spill -j$j -m $m"
	fi
done
ls -A "$TMPDIR"
EOF
PROP=$WORK/prop.sh
export PROP
check exact-budget-property 0 'sh "$PROP"'

# --- Hot keys stay resident ---

# The same number of keys and of distinct keys, the same budget: when ten
# keys take most of the input, the least recently used keys that are
# evicted are the rare ones, so far fewer evictions than with a uniform
# input.  Both results stay exact.
expect_out <<'EOF'
20000 20000
fewer evictions
EOF
check hot-keys-resident 0 'for s in uniform zipf; do awk -v seed=5 -v distinct=20000 -v tokens=200000 -v shape=$s -f "$HERE/gen_skewed.awk" > $s; $T -l -j1 -m 64K --stats-json $s.json $s > $s.out; $T -l $s | cmp -s - $s.out || echo "$s differs"; done; echo $(wc -l < uniform.out) $(wc -l < zipf.out); u=$(sed -n "s/.*\"evictions\":\([0-9]*\).*/\1/p" uniform.json); z=$(sed -n "s/.*\"evictions\":\([0-9]*\).*/\1/p" zipf.json); if [ "$u" -gt 0 ] && [ $((z * 2)) -lt "$u" ]; then echo fewer evictions; else echo "evictions: uniform $u zipf $z"; fi'

# A temporary directory that cannot be used fails at once, saying what it is
# for, from -T and from TMPDIR alike.
expect_err <<'EOF'
tally: nodir: cannot use as temporary directory: No such file or directory
tally: in: cannot use as temporary directory: Not a directory
EOF
check tmpdir-unusable 0 'printf "a\n" > in; $T -T nodir in; a=$?; TMPDIR=in $T in; b=$?; [ $a$b = 11 ] || echo "want status 1 and 1, got $a and $b"'

# --- The merge of the runs within the budget ---

# Runs of 1 MB keys: a reader's buffers grow to the longest key of its run,
# so a merge reads fewer such runs at once.  Under a budget of 32 KiB the
# merge's readers and the sort take about 10 MiB (the merge's 8 MiB, the
# sort's 2 MiB per thread), as for short keys; before, 25 readers of 2 MiB
# each took 56 MiB, more than the run without a budget.  The engine's own
# accounting of them (peak_spill) is checked: a sanitizer build's resident
# size says little.
expect_out <<'EOF'
same results
spilled
readers within 12 MiB
EOF
check merge-long-keys-bounded 0 'awk "BEGIN { x = sprintf(\"%1000000s\", \"\"); gsub(/ /, \"x\", x); for (i = 0; i < 30; i++) printf \"%03d%s\\n\", i, x }" > long; $T -l -j1 long > all; $T -l -j1 -m 32K --stats-json small.json long > small; cmp -s all small && echo same results; [ "$(sed -n "s/.*\"runs_spilled\":\([0-9]*\).*/\1/p" small.json)" -gt 1 ] && echo spilled; p=$(sed -n "s/.*\"peak_spill\":\([0-9]*\).*/\1/p" small.json); if [ "$p" -le 12582912 ]; then echo readers within 12 MiB; else echo "peak_spill $p"; fi'

# Threads merge their sorted runs at the same time and are read at the same
# time: together they keep within the fan-in, 32 fewer than the limit on
# open files (before, each took the whole fan-in: Too many open files).
expect_out <<'EOF'
same results
EOF
check merge-threads-within-fanin 0 'awk "BEGIN { srand(1); for (i = 0; i < 1000000; i++) if (rand() < .6) printf \"u%d\\n\", int(rand() * 1e12); else printf \"z%d\\n\", int(rand() * 50000) }" > in; $T -l in > all; (ulimit -n 64; $T -l -j8 -m 256K in > small) && cmp -s all small && echo same results'

# Out of memory at each of the first 120 allocations, while counting with
# spills: exit 1 and a message that says why, never an empty one nor
# "Success" (the fault injection left errno as it was: "tally: " and
# "tally: DIR: Success" at four of these points), and no run files left
# behind.  (Every allocation in turn, up to a whole output, takes a minute.)
check spill-out-of-memory-messages 0 'seq 1 30000 > in; mkdir sp
for j in 1 2; do
	k=1; while [ $k -le 120 ]; do
		TALLY_FAIL_ALLOC=$k "$T" -l -m 64K -j$j -T sp in > out 2> err; st=$?
		[ $st = 1 ] || [ $st = 0 ] || echo "status $st at $k"
		grep -q -E "Success|^tally: *\$" err && echo "-j$j at $k: $(cat err)"
		[ $st = 0 ] || [ -s err ] || echo "-j$j at $k: no message"
		[ -z "$(ls -A sp)" ] || echo "files left at $k"
		k=$((k + 1))
	done
done'

# Further on, out of memory while runs are written and read back is said
# so: not as zstd's "Allocation error" against the directory, nor as a
# "corrupt run file" (at 133 and 584 of these before).
check spill-out-of-memory-not-corrupt 0 'seq 1 30000 > in; mkdir sp
k=121; while [ $k -le 700 ]; do
	TALLY_FAIL_ALLOC=$k "$T" -l -m 64K -j1 -T sp in > out 2> err; st=$?
	[ $st = 0 ] || grep -q -x "tally: out of memory" err || echo "at $k: $(cat err)"
	k=$((k + 1))
done'
