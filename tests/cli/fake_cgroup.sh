#!/bin/sh
# Build a fake cgroup tree for TALLY_CGROUP_ROOT that matches this process's
# /proc/self/cgroup, with a memory limit where asked.
#
#   sh fake_cgroup.sh ROOT v2|v1 LEAF [PARENT]
#
# v2 uses the line "0::/path" and writes ROOT/path/memory.max; v1 uses the
# line "N:...memory...:/path" and writes ROOT/memory/path/memory.limit_in_bytes.
# LEAF goes in the process's own directory; PARENT, when given, in the
# directory above it (the process's cgroup must then not be the root).
# LEAF or PARENT may be "max" (v2's "no limit") or "none" (v1's "no limit",
# a huge number).  Exits 3 when this process has no such cgroup line.

set -u
[ $# -ge 3 ] || { echo "usage: sh fake_cgroup.sh ROOT v2|v1 LEAF [PARENT]" >&2; exit 2; }
root=$1 kind=$2 leaf=$3 parent=${4:-}

case $kind in
v2) path=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup | head -n 1)
    base=$root file=memory.max
    have=$(grep -c '^0::' /proc/self/cgroup) ;;
v1) path=$(sed -n 's/^[0-9]*:[^:]*memory[^:]*:\(.*\)$/\1/p' /proc/self/cgroup | head -n 1)
    base=$root/memory file=memory.limit_in_bytes
    have=$(grep -c '^[0-9]*:[^:]*memory[^:]*:' /proc/self/cgroup) ;;
*)  echo "fake_cgroup.sh: unknown kind '$kind'" >&2; exit 2 ;;
esac
[ "$have" -gt 0 ] || exit 3

value() {
	case $1 in
	none) echo 9223372036854771712 ;;
	*)    echo "$1" ;;
	esac
}

path=${path%/}
mkdir -p "$base$path" || exit 1
value "$leaf" > "$base$path/$file" || exit 1
if [ -n "$parent" ]; then
	[ -n "$path" ] || { echo "fake_cgroup.sh: the cgroup is the root" >&2; exit 3; }
	value "$parent" > "$base${path%/*}/$file" || exit 1
fi
exit 0
