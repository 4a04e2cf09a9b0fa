# Words: the tokenizers, case, filters, n-grams, order, top, min-count.
# (In printf formats: \047 is an apostrophe, \342\200\231 is U+2019.)

expect_out <<'EOF'
the	3
and	1
cat	1
end	1
hat	1
EOF
check words-default 0 'printf "The cat and the hat. THE END\n" | $T'

expect_out <<'EOF'
the	3
and	1
cat	1
end	1
hat	1
EOF
check words-stdin-dash 0 'printf "The cat and the hat. THE END" | $T -w -'

expect_out <<'EOF'
THE	1
The	1
the	1
EOF
check case-keep 0 'printf "The the THE\n" | $T --case=keep'

# Unicode simple lowercase mapping, then ASCII-only mapping.
expect_out <<'EOF'
école	2
straße	1
straße	1
École	1
école	1
EOF
check case-lower-ascii 0 'printf "\303\211cole \303\251cole STRA\303\237E\n" > in; $T in; $T --case=ascii in'

# Unicode tokenizer: letters, marks, numbers, connector punctuation, inner
# apostrophes (both kinds); everything else separates.
expect_out <<'EOF'
14	1
3	1
a	1
b	1
don't	1
foo_bar	1
it’s	1
o'clock	1
quoted	1
x	1
x2	1
½	1
EOF
check split-unicode 0 'printf "don\047t o\047clock it\342\200\231s foo_bar x2 \302\275 \047quoted\047 a--b x\047 \047\047 3.14\n" | $T --sort=key'

# Combining marks stay in the word; no normalization (NFC and NFD differ).
printf 'cafe\314\201\t1\ncaf\303\251\t1\n' | expect_out
check split-unicode-marks 0 'printf "cafe\314\201 caf\303\251\n" | $T --sort=key'

# Ill-formed UTF-8 separates words.
expect_out <<'EOF'
ab	2
cd	1
EOF
check split-unicode-illformed 0 'printf "ab\377cd\300\257ab\n" | $T'

# --split=space: runs of non-whitespace bytes, as wc -w; bytes kept as they are.
expect_out <<'EOF'
a.b	2
don't!	1
x	1
ÿ	1
EOF
check split-space 0 'printf "a.b\ta.b\r\n\v\fdon\047t!  x \303\277\n" | $T --split=space --case=keep'

# Unicode lowercase outside the Unicode tokenizer (the properties are then
# built only for it): --split=space and --lines.
expect_out <<'EOF'
äbc	2
привет	2
äbc	2
EOF
check lower-without-unicode-split 0 'printf "\303\204BC \303\244bc \320\237\320\240\320\230\320\222\320\225\320\242 \320\277\321\200\320\270\320\262\320\265\321\202\n" | $T --split=space; printf "\303\204BC\n\303\244bc\n" | $T --lines --case=lower'

# Filters.
expect_out <<'EOF'
ccc	2
bb	1
EOF
check min-max-length 0 'printf "a bb ccc dddd ccc\n" | $T --min-length 2 --max-length 3'

expect_out <<'EOF'
éé	1
EOF
check length-code-points 0 'printf "\303\251\303\251 abc\n" | $T --max-length 2'

expect_out <<'EOF'
cat	2
mat	1
sat	1
EOF
check stopwords 0 'printf "The\nON\n\na\n" > stop; printf "The cat sat on the mat. A cat.\n" | $T --stopwords stop'

# A list with no word in it (empty, blank or CRLF lines) drops nothing, in
# every mode.
expect_out <<'EOF'
a	2
b	1
a	1
EOF
check stopwords-empty 0 'printf "a b a\n" > in; $T --stopwords /dev/null in; printf "\r\n\n" > stop; printf "a,y\n" | $T --csv -f 1 --stopwords stop'

expect_err <<'EOF'
tally: nostop: No such file or directory
EOF
check stopwords-missing 1 'printf "x\n" | $T --stopwords nostop'

expect_out <<'EOF'
a	3
b	2
EOF
check min-count 0 'printf "a b c a b a d\n" | $T --min-count 2'

# Order and top.
expect_out <<'EOF'
a	3
b	2
c	2
a	3
b	2
c	2
d	1
e	1
EOF
check sort-count 0 'printf "e d c b a a a b c\n" > in; $T --top 3 in; $T --sort=count in'

expect_out <<'EOF'
a	3
b	2
c	2
d	1
e	1
a	3
b	2
EOF
check sort-key 0 'printf "e d c b a a a b c\n" > in; $T --sort=key in; $T --sort=key -n2 in'

# --sort=none: some order, the same every time, and the same set.
expect_out <<'EOF'
same
a	3
b	2
c	2
d	1
e	1
EOF
check sort-none 0 'printf "e d c b a a a b c\n" > in; $T --sort=none in > 1; $T --sort=none -j1 in > 2; cmp -s 1 2 && echo same; sort -t "	" -k2,2nr -k1,1 1'

# Bytes order: uppercase before lowercase, ASCII before UTF-8.
expect_out <<'EOF'
B	1
a	1
é	1
EOF
check sort-key-bytes 0 'printf "\303\251 a B\n" | $T --case=keep --sort=key'

expect_out <<'EOF'
EOF
check top-zero 0 'printf "a b\n" | $T --top 0'

expect_out <<'EOF'
a	1
b	1
EOF
check top-larger 0 'printf "b a\n" | $T --top 10'

# N-grams: joined by one space, after the filters; never across inputs.
expect_out <<'EOF'
the cat	2
cat sat	1
cat the	1
EOF
check ngram-2 0 'printf "The cat. The cat sat\n" | $T --ngram 2'

expect_out <<'EOF'
a b c	1
b c d	1
EOF
check ngram-3 0 'printf "a b\nc\n\nd" | $T --ngram 3 --sort=key'

expect_out <<'EOF'
cat sat	1
sat mat	1
EOF
check ngram-after-filters 0 'printf "the\n" > stop; printf "the cat sat the mat\n" | $T --ngram 2 --stopwords stop'

expect_out <<'EOF'
a b	2
EOF
check ngram-not-across-files 0 'printf "a b" > 1; printf "a b" > 2; $T --ngram 2 1 2'

expect_out <<'EOF'
a	2
b	1
EOF
check ngram-1 0 'printf "a b a\n" | $T --ngram 1'

# With --ngram the keys are the n-grams: a long word alone makes no key and
# no cut; one in a bigram makes one cut key.
expect_out <<'EOF'
cut_keys 0
aa	1
cut_keys 1
EOF
expect_err <<'EOF'
tally: 1 key longer than 2 bytes was cut to that length
EOF
check ngram-cut-keys 0 'printf "aaaa" | $T --ngram 2 --max-key-bytes 2 --stats-json s.json; grep -o "\"cut_keys\":[0-9]*" s.json | tr ":\"" " " | tr -s " " | sed "s/^ //"; printf "aaaa bbbb" | $T --ngram 2 --max-key-bytes 2 --stats-json s.json; grep -o "\"cut_keys\":[0-9]*" s.json | tr ":\"" " " | tr -s " " | sed "s/^ //"'

# A word cut back to a code point boundary (7 letters and a 4-byte one at
# 10 bytes: 7 bytes kept) leaves its bigrams within the limit: they are
# cut keys all the same, on one thread and with the n-grams that cross
# chunk edges stitched.
expect_out <<'EOF'
aaaaaaa b	100
x y	100
y aaaaaaa	100
b x	99
cut_keys 200
aaaaaaa b	100
x y	100
y aaaaaaa	100
b x	99
cut_keys 200
EOF
expect_err <<'EOF'
tally: 200 keys longer than 10 bytes were cut to that length
tally: 200 keys longer than 10 bytes were cut to that length
EOF
check ngram-cut-word-within 0 'i=0; while [ $i -lt 100 ]; do printf "x y aaaaaaa\360\235\220\200\360\235\220\200 b\n"; i=$((i + 1)); done > in; for o in -j1 "-j2 --chunk-size 7"; do $T --ngram 2 --max-key-bytes 10 $o --stats-json s.json in; grep -o "\"cut_keys\":[0-9]*" s.json | tr ":\"" " " | tr -s " " | sed "s/^ //"; done'

expect_out <<'EOF'
EOF
check ngram-short-input 0 'printf "a b\n" | $T --ngram 3'
