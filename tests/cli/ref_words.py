"""An independent reference for tally's default word count (--split=unicode,
--case=lower), written from the specification only.

  python3 ref_words.py count FILE   print KEY<TAB>COUNT, count descending,
                                    then key ascending by bytes
  python3 ref_words.py gen N SEED   write N random words of mixed scripts,
                                    punctuation, apostrophes and ill-formed
                                    UTF-8 to stdout (bytes)
"""
import random
import sys
import unicodedata
from collections import Counter

WORD_CATEGORIES = ("L", "M")
WORD_EXACT = ("Nd", "Nl", "No", "Pc")
APOSTROPHES = ("\u0027", "\u2019")


def is_word_char(c):
    cat = unicodedata.category(c)
    return cat[0] in WORD_CATEGORIES or cat in WORD_EXACT


def simple_lower(c):
    # str.lower() is the full mapping; the simple one is its first code
    # point for the only unconditional multi-code-point case (U+0130).
    low = c.lower()
    return low[0] if low else c


def words(text):
    """Split text (ill-formed bytes decoded as lone surrogates, which are
    not word characters) into words by the rule of SPEC section 2."""
    n = len(text)
    cur = []
    for i, c in enumerate(text):
        if is_word_char(c):
            cur.append(c)
        elif (c in APOSTROPHES and cur and i + 1 < n
              and is_word_char(text[i + 1])):
            cur.append(c)
        elif cur:
            yield "".join(cur)
            cur = []
    if cur:
        yield "".join(cur)


def count(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="surrogateescape")
    counts = Counter("".join(simple_lower(c) for c in w) for w in words(text))
    items = sorted(((k.encode("utf-8"), v) for k, v in counts.items()),
                   key=lambda kv: (-kv[1], kv[0]))
    out = sys.stdout.buffer
    for k, v in items:
        out.write(k + b"\t" + str(v).encode() + b"\n")


PIECES = ["the", "The", "THE", "and", "Lord", "don't", "o\u2019clock",
          "caf\u00e9", "cafe\u0301", "Stra\u00dfe", "STRASSE", "\u03a3\u03bf\u03c6\u03af\u03b1",
          "\u03c3\u03bf\u03c6\u03af\u03b1\u03c2", "\u0414\u043e\u043c", "\u0434\u043e\u043c",
          "\u65e5\u672c", "\u0663\u0664", "\u00bd", "\u216b", "x_y", "a\u203fb",
          "42", "3.14", "'quoted'", "it''s", "end'", "\u00c9COLE", "\u0130stanbul"]
SEPARATORS = [" ", " ", " ", "\n", "\t", ", ", ". ", "\u2014", "-", "\r\n", "  ", "!", "\u00a0"]
BAD = [b"\xff", b"\xc3", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80"]


def gen(n, seed):
    rnd = random.Random(seed)
    out = bytearray()
    for _ in range(n):
        out += rnd.choice(PIECES).encode("utf-8")
        if rnd.random() < 0.02:
            out += rnd.choice(BAD)
        out += rnd.choice(SEPARATORS).encode("utf-8")
    sys.stdout.buffer.write(bytes(out))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "count":
        count(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "gen":
        gen(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(__doc__)
