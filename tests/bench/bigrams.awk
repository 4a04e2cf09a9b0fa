# bigrams.awk - word bigrams (pairs of consecutive blank-separated words,
# lowercased, across line ends as tally's --ngram 2 forms them).
# With -v keys=1 prints each bigram (the keys for sort | uniq -c);
# otherwise counts them and prints COUNT KEY lines as uniq -c does.
{
	$0 = tolower($0)
	for (i = 1; i <= NF; i++) {
		if (have) {
			if (keys)
				print prev " " $i
			else
				counts[prev " " $i]++
		}
		prev = $i
		have = 1
	}
}
END {
	if (!keys)
		for (k in counts)
			print counts[k] " " k
}
