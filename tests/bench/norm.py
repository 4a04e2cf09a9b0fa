#!/usr/bin/env python3
"""norm.py - normalise a counting tool's output for comparison with tally's.

    python3 norm.py FORMAT [--drop-empty] < output > KEY<TAB>COUNT lines

FORMAT is
  tsv     KEY<TAB>COUNT with tally's escapes (tally, counter.py)
  rawtsv  KEY<TAB>COUNT with the key as is (mawk); the count follows the last tab
  uniqc   uniq -c lines: spaces, COUNT, one space, KEY as is (also the awk peers)
Raw keys get tally's escapes.  The result is sorted by bytes, so two tools
agree exactly when their normalised outputs are identical.  --drop-empty
drops an empty key (tr -s leaves one when the input starts with a blank).
"""
import sys


def escape(key):
    if b"\\" in key or b"\t" in key or b"\r" in key:
        key = key.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\r", b"\\r")
    return key


def main(argv):
    if len(argv) < 2 or argv[1] not in ("tsv", "rawtsv", "uniqc"):
        sys.stderr.write("usage: norm.py tsv|rawtsv|uniqc [--drop-empty]\n")
        return 2
    fmt, drop_empty = argv[1], "--drop-empty" in argv[2:]
    rows = []
    for line in sys.stdin.buffer:
        if line.endswith(b"\n"):
            line = line[:-1]
        if fmt == "uniqc":
            count, _, key = line.lstrip(b" ").partition(b" ")
            key = escape(key)
        else:
            key, _, count = line.rpartition(b"\t")
            if fmt == "rawtsv":
                key = escape(key)
        if drop_empty and not key:
            continue
        rows.append(key + b"\t" + count.strip() + b"\n")
    rows.sort()
    sys.stdout.buffer.writelines(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
