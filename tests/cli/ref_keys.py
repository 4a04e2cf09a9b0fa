"""Independent references for tally's field and n-gram modes, written from
the specification only; they print tally's default output (tsv, count
descending, then key ascending by bytes).

  python3 ref_keys.py csvgen ROWS SEED   write a CSV file with a header to
                                         stdout: quoted fields, delimiters,
                                         doubled quotes, newlines, CR LF and
                                         LF line ends, empty lines, short rows
  python3 ref_keys.py csvcount FILE HEADER LIST
                                         count the columns LIST (1-based
                                         numbers, ranges, or with HEADER=1
                                         names; taken in column order, each
                                         once) with Python's csv module; the
                                         number of records lacking a column
                                         goes to stderr as "skipped N"
  python3 ref_keys.py ngram N FILE...    n-grams of --split=space
                                         --case=ascii words, never across files
"""
import csv
import io
import random
import sys
from collections import Counter


def escape(key):
    """tally's tsv escapes: backslash, TAB, newline, carriage return."""
    return (key.replace(b"\\", b"\\\\").replace(b"\t", b"\\t")
            .replace(b"\n", b"\\n").replace(b"\r", b"\\r"))


def emit(counts):
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    out = sys.stdout.buffer
    for k, v in items:
        out.write(escape(k) + b"\t" + str(v).encode() + b"\n")


VALUES = ["alpha", "beta", "gamma", "a,b", "x, y, z", 'say "hi"', '"', '""',
          "two\nlines", "crlf\r\ninside", "cr\ronly", "", " spaced ",
          "back\\slash", "tab\there", "caf\u00e9", "\u65e5\u672c", "end,",
          ",start", "q\"uote", "1", "2", "3"]


def csvgen(rows, seed):
    rnd = random.Random(seed)
    buf = io.StringIO(newline="")
    minimal = csv.writer(buf)                              # CR LF, quote as needed
    quoted = csv.writer(buf, quoting=csv.QUOTE_ALL)        # every field quoted
    unix = csv.writer(buf, lineterminator="\n")            # LF line ends
    minimal.writerow(["id", "kind", "text", "tag"])
    for i in range(rows):
        w = rnd.choice((minimal, minimal, quoted, unix))
        r = rnd.random()
        if r < 0.03:
            w.writerow([])                                 # an empty line: no record
            continue
        # Few distinct values, so that counts are above 1.
        row = [str(i % 7), rnd.choice(VALUES[:6]), rnd.choice(VALUES),
               rnd.choice(VALUES)]
        if r < 0.08:
            row = row[:rnd.randint(1, 3)]                  # lacks some columns
        elif r < 0.12:
            row.append(rnd.choice(VALUES))                 # one column more
        if w is unix and any("\r" in v for v in row):
            w = minimal                                    # a bare CR ends a line
        w.writerow(row)
    sys.stdout.buffer.write(buf.getvalue().encode("utf-8"))


def columns(spec, header):
    cols = []
    for part in spec.split(","):
        if header is not None and part in header:
            cols.append(header.index(part))
        elif "-" in part:
            a, b = part.split("-")
            cols.extend(range(int(a) - 1, int(b)))
        else:
            cols.append(int(part) - 1)
    return sorted(set(cols))        # as cut: in column order, each once


def csvcount(path, has_header, spec):
    with open(path, newline="", encoding="utf-8") as f:
        records = [r for r in csv.reader(f) if r]          # empty line: no record
    header = None
    if has_header:
        header, records = records[0], records[1:]
    cols = columns(spec, header)
    counts = Counter()
    skipped = 0
    for r in records:
        if max(cols) >= len(r):
            skipped += 1
            continue
        counts[",".join(r[c] for c in cols).encode("utf-8")] += 1
    emit(counts)
    sys.stderr.write("skipped %d\n" % skipped)


def ngram(n, paths):
    counts = Counter()
    for p in paths:
        with open(p, "rb") as f:
            words = f.read().lower().split()     # ASCII whitespace; A-Z only
        for i in range(len(words) - n + 1):
            counts[b" ".join(words[i:i + n])] += 1
    emit(counts)


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "csvgen":
        csvgen(int(a[1]), int(a[2]))
    elif len(a) == 4 and a[0] == "csvcount":
        csvcount(a[1], a[2] == "1", a[3])
    elif len(a) >= 3 and a[0] == "ngram":
        ngram(int(a[1]), a[2:])
    else:
        sys.exit(__doc__)
