# Keys for the eviction test, one per line, in a random order:
#   awk -v seed=S -v distinct=D -v tokens=N -v shape=uniform|zipf -f gen_skewed.awk
#
# Both shapes hold exactly D distinct keys and N keys in all (N >= D).
# uniform: every key about N/D times.  zipf: every key once, then nine in
# ten of the remaining N-D draws go to ten hot keys, the rest anywhere.
BEGIN {
	srand(seed)
	for (i = 0; i < tokens; i++) {
		if (shape == "uniform" || i < distinct)
			k[i] = i % distinct
		else if (rand() < 0.9)
			k[i] = int(rand() * 10)
		else
			k[i] = int(rand() * distinct)
	}
	for (i = tokens - 1; i > 0; i--) {
		j = int(rand() * (i + 1))
		t = k[i]; k[i] = k[j]; k[j] = t
	}
	for (i = 0; i < tokens; i++)
		print "key" k[i]
}
