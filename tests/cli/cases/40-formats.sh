# Output formats and their escapes.  The input's lines are keys holding a
# control byte, quote and comma, backslash, TAB, CR, UTF-8 and an ill-formed
# byte; cat -v shows the bytes that are not text.

printf '\001\n"q",r\na\\b\nc\td\ne\r\n\303\274\n\377x\n' > "$WORK/fmt.txt"
FMT=$WORK/fmt.txt
export FMT

expect_out <<'EOF'
^A	1
"q",r	1
a\\b	1
c\td	1
e\r	1
M-CM-<	1
M-^?x	1
EOF
check format-tsv 0 '$T -l --sort=key --format=tsv "$FMT" | cat -v'

expect_out <<'EOF'
key,count^M
^A,1^M
"""q"",r",1^M
a\b,1^M
c	d,1^M
"e^M",1^M
M-CM-<,1^M
M-^?x,1^M
EOF
check format-csv 0 '$T -l --sort=key --format=csv "$FMT" | cat -v'

expect_out <<'EOF'
[
{"key":"\u0001","count":1},
{"key":"\"q\",r","count":1},
{"key":"a\\b","count":1},
{"key":"c\td","count":1},
{"key":"e\r","count":1},
{"key":"ü","count":1},
{"key":"�x","count":1}
]
EOF
check format-json 0 '$T -l --sort=key --format=json "$FMT"'

expect_out <<'EOF'
{"key":"\u0001","count":1}
{"key":"\"q\",r","count":1}
{"key":"a\\b","count":1}
{"key":"c\td","count":1}
{"key":"e\r","count":1}
{"key":"ü","count":1}
{"key":"�x","count":1}
EOF
check format-ndjson 0 '$T -l --sort=key --format=ndjson "$FMT"'

expect_out <<'EOF'
      1 ^A
      1 "q",r
      1 a\b
      1 c	d
      1 e^M
      1 M-CM-<
      1 M-^?x
EOF
check format-uniq 0 '$T -l --sort=key --format=uniq "$FMT" | cat -v'

# The JSON output parses, and says what the TSV says.
expect_out <<'EOF'
ok
EOF
requires python3
check format-json-parses 0 '$T --format=json "$DATA/kjv-genesis.txt" > j && $T "$DATA/kjv-genesis.txt" > t && python3 -c "
import json, sys
a = json.load(open(\"j\"))
b = [l.rstrip(\"\n\").split(\"\t\") for l in open(\"t\")]
sys.exit(0 if [(o[\"key\"], str(o[\"count\"])) for o in a] == [tuple(x) for x in b] else 1)" && echo ok'

# uniq looks like uniq -c.
expect_out <<'EOF'
same
EOF
check format-uniq-like-uniq 0 'printf "b\na\nb\nc\nb\na\n" > in; $T -l --format=uniq in > 1; sort in | uniq -c | sort -k1,1nr -k2 > 2; cmp -s 1 2 && echo same'

# No results.
expect_out <<'EOF'
[]
key,count
EOF
check format-empty 0 ': | $T --format=json; : | $T --format=csv | tr -d "\r"; : | $T --format=ndjson; : | $T --format=uniq'

# A newline inside a key (from a quoted CSV field), in every format.
expect_out <<'EOF'
x\ny	1
"x
y",1
{"key":"x\ny","count":1}
      1 x
y
EOF
check format-newline-key 0 'printf "\"x\ny\"\n" > in; $T --csv -f 1 in; $T --csv -f 1 --format=csv in | tail -n +2 | tr -d "\r"; $T --csv -f 1 --format=ndjson in; $T --csv -f 1 --format=uniq in'
