#!/usr/bin/env python3
"""counter.py - the Python peer of tally's benchmarks (collections.Counter).

    python3 counter.py            words of stdin: ASCII whitespace split,
                                  ASCII lowercase (tally --split=space --case=ascii)
    python3 counter.py --csv N    values of column N (1-based) of an RFC 4180
                                  CSV on stdin, via the csv module (tally --csv -f N)

Prints KEY<TAB>COUNT lines, count descending, with tally's tsv escapes
(backslash, tab, newline, carriage return), so outputs compare directly.
"""
import collections
import csv
import io
import sys

ESCAPES = {ord("\\"): "\\\\", ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"}


def count_words(stream):
    counts = collections.Counter()
    for line in stream:
        counts.update(line.lower().split())
    return counts


def count_csv(stream, field):
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    counts = collections.Counter()
    i = field - 1
    for row in csv.reader(text):
        if len(row) > i:
            counts[row[i]] += 1
    return counts


def main(argv):
    out = sys.stdout.buffer
    if len(argv) == 3 and argv[1] == "--csv":
        counts = count_csv(sys.stdin.buffer, int(argv[2]))
        for key, n in counts.most_common():
            out.write(key.translate(ESCAPES).encode("utf-8", "surrogateescape"))
            out.write(b"\t%d\n" % n)
    elif len(argv) == 1:
        counts = count_words(sys.stdin.buffer)
        for key, n in counts.most_common():
            if b"\\" in key:
                key = key.replace(b"\\", b"\\\\")
            out.write(b"%s\t%d\n" % (key, n))
    else:
        sys.stderr.write("usage: counter.py [--csv FIELD] < input\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
