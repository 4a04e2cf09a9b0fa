# Long keys, large inputs, and two independent references on a few MB of text.

# A 100 MB word: cut at --max-key-bytes (1 MiB), counted once, reported once.
expect_out <<'EOF'
1048577 1
tally: 1 key longer than 1048576 bytes was cut to that length
0
EOF
check long-word 0 'head -c 104857600 /dev/zero | tr "\000" a | $T > out 2> err; st=$?; echo $(cut -f1 out | wc -c) $(cut -f2 out); cat err; [ -z "$(ls -A "$TMPDIR")" ]; echo $?; exit $st'

expect_out <<'EOF'
1000 2
EOF
expect_err <<'EOF'
tally: 2 keys longer than 1000 bytes were cut to that length
EOF
check long-word-max-key-bytes 0 'printf "%03000d %01500d\n" 0 0 | tr 0 a | $T --max-key-bytes 1000 | { read k c; echo $(printf %s "$k" | wc -c) $c; }'

# A 1 GiB line through a pipe: cut, counted, memory bounded.
if [ "${TALLY_CLI_QUICK:-0}" = 1 ]; then GIB=67108864; else GIB=1073741824; fi
export GIB
expect_out <<'EOF'
b	2
1048576 1
cut_keys 1
rss ok
tally: 1 key longer than 1048576 bytes was cut to that length
EOF
requires python3
check long-line 0 '{ head -c $GIB /dev/zero | tr "\000" a; printf "\nb\nb\n"; } | $T -l --stats-json s.json > out 2> err; st=$?; head -n 1 out; tail -n 1 out | { IFS="	" read k c; echo ${#k} $c; }; python3 -c "
import json; d = json.load(open(\"s.json\")); print(\"cut_keys\", d[\"cut_keys\"]); print(\"rss\", \"ok\" if d[\"peak_rss\"] < 512 << 20 else d[\"peak_rss\"])"; cat err; exit $st'

# About 4 MB of real text: --split=space --case=keep against tr | sort | uniq -c.
cat "$DATA/kjv-genesis.txt" "$DATA/kjv-genesis.txt" "$DATA/kjv-genesis.txt" "$DATA/kjv-genesis.txt" \
	"$DATA/kjv-genesis.txt" > "$WORK/k5.txt"
cat "$WORK/k5.txt" "$WORK/k5.txt" "$WORK/k5.txt" "$WORK/k5.txt" > "$WORK/k20.txt"
rm -f "$WORK/k5.txt"
K20=$WORK/k20.txt
export K20

check reference-space-uniq 0 'tr -s " \t\n\r\v\f" "\n" < "$K20" | grep -v "^\$" | sort | uniq -c | awk "{ print \$2 \"\\t\" \$1 }" | sort -t "	" -k2,2nr -k1,1 > ref; $T --split=space --case=keep "$K20" > got; cmp ref got'

requires python3
check reference-unicode-kjv 0 'python3 "$HERE/ref_words.py" count "$K20" > ref; $T "$K20" > got; cmp ref got'

requires python3
check reference-unicode-generated 0 'python3 "$HERE/ref_words.py" gen 300000 5 > in; python3 "$HERE/ref_words.py" count in > ref; $T in > got; cmp ref got'

requires python3
check reference-unicode-uniq 0 'python3 "$HERE/ref_words.py" count "$DATA/kjv-genesis.txt" | awk -F "\t" "{ printf \"%7d %s\\n\", \$2, \$1 }" > ref; $T --format=uniq "$DATA/kjv-genesis.txt" > got; cmp ref got'

# Keys longer than the tokenizer's batch arena (8 KiB) go into the table at
# once, between keys that wait in the batch; keys that no longer fit in it
# make it count first.
expect_out <<'EOF'
3000 3
9000 2
1 2
3000 2
EOF
check long-keys-between-short 0 'a=$(printf "%09000d" 0 | tr 0 a); c=$(printf "%03000d" 0 | tr 0 c); d=$(printf "%03000d" 0 | tr 0 d); printf "%s\n" b "$a" b "$c" "$d" "$c" "$d" "$c" "$a" | $T -l | awk -F "	" "{ print length(\$1), \$2 }"'
