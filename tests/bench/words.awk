# words.awk - the countwords awk peer: split on blanks, lowercase, count.
# Prints COUNT KEY lines as uniq -c does (unsorted; the benchmark sorts them).
{
	$0 = tolower($0)
	for (i = 1; i <= NF; i++)
		counts[$i]++
}
END {
	for (w in counts)
		print counts[w] " " w
}
