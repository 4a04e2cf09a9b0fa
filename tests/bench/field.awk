# field.awk - count the values of column f (-v f=N) of tab-separated lines.
# Prints COUNT KEY lines as uniq -c does (unsorted; the benchmark sorts them).
BEGIN {
	FS = "\t"
}
{
	counts[$f]++
}
END {
	for (k in counts)
		print counts[k] " " k
}
