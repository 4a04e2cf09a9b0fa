# Lines, TSV fields, CSV.

expect_out <<'EOF'
a b	2
	1
c	1
EOF
check lines 0 'printf "a b\n\nc\na b\n" | $T -l'

# A CR before the LF stays part of the line; a last line without LF counts.
expect_out <<'EOF'
x	2
x\r	1
EOF
check lines-crlf 0 'printf "x\r\nx\nx" | $T --lines'

expect_out <<'EOF'
      2 x
      1 xR
EOF
check lines-crlf-uniq 0 'printf "x\r\nx\nx" | $T --lines --format=uniq | tr "\r" R'

# Lines keep case unless told; tabs escaped in tsv.
expect_out <<'EOF'
A\tB	1
a\tb	1
a\tb	2
EOF
check lines-case 0 'printf "A\tB\na\tb\n" > in; $T -l --sort=key in; $T -l --case=lower in'

expect_out <<'EOF'
EOF
check lines-empty-input 0 ': | $T -l'

# TSV fields: every line is a record; an empty line is one empty field.
expect_out <<'EOF'
b	2
	1
d	1
EOF
check field-2-empty-line 0 'printf "a\tb\nc\tb\nx\t\n\td\n" | $T -f 2'

expect_out <<'EOF'
INFO	2
WARN	1
EOF
check field-missing-column 0 'printf "1\tINFO\n2\tWARN\n3\n4\tINFO\n" | $T -f 2'

expect_out <<'EOF'
a\tz	1
b\ty	1
b\tz	1
EOF
check field-several 0 'printf "a\tq\tz\nb\tq\ty\nb\tq\tz\n" | $T -f 1,3'

expect_out <<'EOF'
a\tb	2
a\tc	1
EOF
check field-range 0 'printf "a\tb\tz\na\tc\ty\na\tb\tx\n" | $T -f 1-2'

# Open ranges: the union of the list, as cut takes it (3-,4- and 3-,5 are
# 3-, and so are 3-5,4- and 3,4-); a record must reach the first column of
# the union's open end.
expect_out <<'EOF'
c	1
a	1
a	1
a\tc	1
3	1
3	1
c	1
c,d,e	1
c	1
c,d,e	1
skipped 1
c	1
skipped 0
EOF
check field-open-ranges 0 'printf "a\tb\tc\n" | $T -f 3-5,4-; printf "a\n" | $T -f 1-2,3-; printf "a\n" | $T -f 1,2-; printf "a\tb\tc\n" | $T -f 1,3-; printf "1,2,3\n" | $T --csv -f 3-,4-; printf "1,2,3\n" | $T --csv -f 3-,5; printf "a,b,c,d,e\na,b,c\na,b\n" > in; $T --csv -f 3- --sort=key in; $T --csv -f 5,3-,4 --sort=key --stats-json s.json in; python3 -c "import json; print(\"skipped\", json.load(open(\"s.json\"))[\"skipped_records\"])"; printf "a,b,c\n" | $T --csv -f 3-5,4- --stats-json s.json; python3 -c "import json; print(\"skipped\", json.load(open(\"s.json\"))[\"skipped_records\"])"'

expect_out <<'EOF'
x:y	2
x:z	1
EOF
check field-delimiter 0 'printf "x:y:1\nx:z:2\nx:y:3\n" | $T -f 1,2 -d :'

expect_out <<'EOF'
2	2
1	1
EOF
check field-delimiter-tab-spelling 0 'printf "a\t1\nb\t2\nc\t2\n" | $T -f 2 -d "\\t"'

# --header: names the columns, not counted.
expect_out <<'EOF'
INFO	2
WARN	1
EOF
check field-header-name 0 'printf "time\tLevel\n1\tINFO\n2\tWARN\n3\tINFO\n" | $T --header -f Level'

expect_out <<'EOF'
INFO	2
WARN	1
EOF
check field-header-number 0 'printf "time\tLevel\n1\tINFO\n2\tWARN\n3\tINFO\n" | $T --header -f 2'

# CSV: quoting, doubled quotes, embedded newlines and delimiters; empty lines are no record.
expect_out <<'EOF'
"a,b"	2
x\ny	1
EOF
check csv-quoted 0 'printf "k,v\n\"\"\"a,b\"\"\",1\n\n\"x\ny\",2\n\"\"\"a,b\"\"\",3\n" | $T --csv --header -f k'

expect_out <<'EOF'
ERROR	2
INFO	1
EOF
check csv-header-name 0 'printf "id,Level,msg\r\n1,ERROR,\"disk, full\"\r\n2,INFO,ok\r\n3,ERROR,\"x\"\"y\"\r\n" | $T --csv --header -f Level'

# A UTF-8 byte order mark before the header (spreadsheets write one) is no
# part of the first name, quoted or not, in CSV and TSV alike.
expect_out <<'EOF'
x	1
x	1
x	1
EOF
check header-byte-order-mark 0 'printf "\357\273\277Level,b\r\nx,y\r\n" | $T --csv --header -f Level; printf "\357\273\277\"Level\",b\nx,y\n" | $T --csv --header -f Level; printf "\357\273\277Level\tb\nx\ty\n" | $T --header -f Level'

expect_out <<'EOF'
1;a	1
2;b	1
EOF
check csv-delimiter 0 'printf "1;a;x\n2;b;y\n" | $T --csv -d ";" -f 1-2 --sort=key'

expect_out <<'EOF'
a	1
b	1
EOF
check csv-no-header-counts-first 0 'printf "a\nb\n" | $T --csv -f 1 --sort=key'

expect_err <<'EOF'
tally: -: no column named 'Nope'
EOF
check field-header-missing-name 1 'printf "a\tb\n1\t2\n" | $T --header -f Nope'
