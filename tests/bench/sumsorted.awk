# sumsorted.awk - sum the counts of KEY<TAB>COUNT lines that come in key
# order (sort -m over count files in key order): tally merge's peer.
BEGIN { FS = "\t" }
NR > 1 && $1 != key { print key "\t" n; n = 0 }
{ key = $1; n += $2 }
END { if (NR) print key "\t" n }
