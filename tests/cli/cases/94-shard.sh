# --shard K/N: the parts of the input counted apart and merged give what
# one run gives, whatever the mode, the I/O, the chunks and the threads; and
# the recipes of README.md, run as they are written.

GENESIS=$DATA/kjv-genesis.txt
README=$HERE/../../README.md
export GENESIS README

# parts.sh N ARGS...: count the N parts of $F apart (in several ways) and
# merge them; print where the merge differs from one run.
cat > "$WORK/parts.sh" <<'SH'
n=$1; shift
"$T" "$@" "$F" > whole || echo "whole failed"
for v in "" "--io=read" "--io=mmap --chunk-size 7" "--chunk-size 1 -j 3"; do
	rm -f p.*
	k=1
	while [ $k -le $n ]; do
		"$T" --shard $k/$n --sort=none $v "$@" "$F" > p.$k || echo "part $k/$n failed: $v"
		k=$((k + 1))
	done
	"$T" merge p.* | cmp -s - whole || echo "differs: $n parts $v $*"
done
SH
SHARDS=$WORK/parts.sh
export SHARDS

check shard-words 0 'F=$GENESIS; export F; for n in 2 3 7; do sh "$SHARDS" $n; done
sh "$SHARDS" 3 --split=space; sh "$SHARDS" 4 --min-length 5'
check shard-lines 0 'F=$GENESIS; export F; sh "$SHARDS" 2 -l; sh "$SHARDS" 5 -l'
# The n-grams that begin in a part end past it: words are read there until
# they end, also through stopwords, and in chunks of a byte.
check shard-ngrams 0 'F=$GENESIS; export F; printf "the\nand\nof\nhe\nunto\n" > stop
sh "$SHARDS" 3 --ngram 2; sh "$SHARDS" 4 --ngram 5 --stopwords stop; sh "$SHARDS" 2 --ngram 3 --max-length 3'
# Fields: by line; with a header, every part takes the names from the
# file's first line; CSV (quotes may hold newlines) goes whole to a part.
check shard-fields 0 'printf "name\tval\n" > h.tsv; awk "{ print NR % 7 \"\t\" \$2 }" "$GENESIS" >> h.tsv
F=h.tsv; export F; sh "$SHARDS" 3 -f 2; sh "$SHARDS" 4 --header -f val; sh "$SHARDS" 2 --header -f name,val
awk -F "\t" "{ print \$1 \",\\\"\" \$2 \"\\\"\" }" h.tsv > h.csv; F=h.csv; sh "$SHARDS" 3 --csv --header -f val'

# Inputs that cannot be cut by range go whole to the part of their place
# among the inputs: here the compressed one (2nd) to part 2, standard input
# (3rd) to part 3, read by no other part; the files are cut in all three.
expect_out <<'EOF'
1 files: 2 read (0 compressed), 0 failed
2 files: 3 read (1 compressed), 0 failed
3 files: 3 read (0 compressed), 0 failed
EOF
check shard-whole-inputs 0 'zstd -q "$GENESIS" -o g.zst; head -n 100 "$GENESIS" > small
"$T" "$GENESIS" g.zst - small < small > whole
for k in 1 2 3; do "$T" --shard $k/3 -s "$GENESIS" g.zst - small < small > p.$k 2> s.$k; echo $k $(grep files: s.$k); done
"$T" merge p.1 p.2 p.3 | cmp -s - whole || echo differs'

# More parts than records: the empty ones count nothing.
expect_out <<'EOF'
a	1
b	1
EOF
check shard-tiny 0 'printf "a\nb\n" > f; for k in 1 2 3 4 5 6 7 8; do "$T" --shard $k/8 -l f; done; : > e; "$T" --shard 2/2 e'

usage_case shard-zero      '--shard 0/2'   "invalid value for --shard: '0/2' (1 <= K <= N)"
usage_case shard-over      '--shard 3/2'   "invalid value for --shard: '3/2' (1 <= K <= N)"
usage_case shard-no-slash  '--shard 2'     "invalid value for --shard: '2' (K/N expected, as 2/8)"
usage_case shard-no-n      '--shard 1/'    "invalid value for --shard: '1/' (K/N expected, as 2/8)"
usage_case shard-no-k      '--shard /2'    "invalid value for --shard: '/2' (K/N expected, as 2/8)"
usage_case shard-sign      '--shard 1/+2'  "invalid value for --shard: '1/+2' (K/N expected, as 2/8)"
usage_case shard-big       '--shard 1/4294967296' "invalid number for --shard: '4294967296'"
usage_case shard-merge     'merge --shard 1/2' "merge: --shard does not apply: count files are summed whole"

# The recipes of README.md, as written there, with tally found on PATH.
cat > "$WORK/recipe.sh" <<'SH'
# recipe NAME: the shell block after <!-- recipe:NAME --> in README.md.
recipe() {
	awk -v m="<!-- recipe:$1 -->" '$0 == m { f = 1; next }
		f && /^```/ { if (b) exit; b = 1; next } f && b { print }' "$README"
}
mkdir bin
ln -s "$T" bin/tally
PATH=$PWD/bin:$PATH
HOME=$PWD
mkdir .parallel && touch .parallel/will-cite
i=0
while [ $i -lt 12 ]; do cat "$GENESIS"; i=$((i + 1)); done | awk "{ print NR, \$0 }" > corpus.txt
SH
RECIPE=$WORK/recipe.sh
export RECIPE

expect_out <<'EOF'
16
EOF
requires parallel
check recipe-parallel 0 '. "$RECIPE"; recipe parallel > r.sh; [ -s r.sh ] || echo "no recipe"
sh -e r.sh 2> err || { echo "recipe failed"; cat err; }
tally corpus.txt > whole; cmp -s counts.tsv whole || echo "differs"
ls counts | wc -l | tr -d " "'

# One run per file, each whole (the man page's example too).
expect_out <<'EOF'
5
EOF
requires parallel
check recipe-parallel-files 0 '. "$RECIPE"; recipe parallel-files > r.sh; [ -s r.sh ] || echo "no recipe"
mkdir corpus; split -n l/5 --additional-suffix=.txt corpus.txt corpus/p
sh -e r.sh > got 2> err || { echo "recipe failed"; cat err; }
tally --top 20 corpus.txt > whole; [ -s got ] && cmp -s got whole || echo "differs"
ls corpus/*.counts.zst | wc -l | tr -d " "'

# Across hosts: the same, with this machine (":") for the hosts.
expect_out <<'EOF'
32
EOF
requires parallel
check recipe-parallel-hosts 0 '. "$RECIPE"; recipe parallel-hosts | sed "s|--sshlogin [^ ]*|--sshlogin :|" > r.sh
grep -q -- "--sshlogin :" r.sh || echo "no recipe"
mkdir counts; sh -e r.sh 2> err || { echo "recipe failed"; cat err; }
tally merge counts/part-*.tsv.zst | cmp -s - "$(tally corpus.txt > whole; echo whole)" || echo "differs"
ls counts | wc -l | tr -d " "'

# Slurm: sbatch here runs an array job's tasks in turn, with the variables
# Slurm sets, and a --wrap job's command.  The inputs: several files, one of
# them compressed (whole in one part) though named .txt.
cat > "$WORK/sbatch" <<'SH'
#!/bin/sh
script= wrap=
while [ $# -gt 0 ]; do
	case $1 in
	--parsable|--dependency=*) ;;
	--wrap) wrap=$2; shift ;;
	*) script=$1 ;;
	esac
	shift
done
if [ -n "$wrap" ]; then
	exec sh -c "$wrap"
fi
range=$(sed -n 's/^#SBATCH --array=//p' "$script")
cpus=$(sed -n 's/^#SBATCH --cpus-per-task=//p' "$script")
lo=${range%-*} hi=${range#*-} i=${range%-*}
while [ "$i" -le "$hi" ]; do
	SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$((hi - lo + 1)) SLURM_CPUS_PER_TASK=$cpus \
		sh -e "$script" || exit 1
	i=$((i + 1))
done
echo 4242
SH
SBATCH=$WORK/sbatch
export SBATCH
check recipe-slurm 0 '. "$RECIPE"; cp "$SBATCH" bin/sbatch; chmod +x bin/sbatch
mkdir corpus; mv corpus.txt corpus/a.txt; head -n 500 "$GENESIS" > corpus/b.txt
zstd -q "$GENESIS" -o corpus/c.txt; printf "last words\n" > corpus/d.txt
recipe slurm-count > count.sbatch; recipe slurm-submit > submit.sh
grep -q "^#SBATCH --array=" count.sbatch || echo "no recipe"
sh -e submit.sh 2> err || { echo "recipe failed"; cat err; }
tally --top 1000 corpus/*.txt | cmp -s top.tsv - || echo "differs"'
