# Random words for the memory tests: awk -v seed=S -v n=N [-v hot=P] -f gen_words.awk
#
# Writes N words separated by spaces and newlines.  With probability P
# (default 0.3) a word is one of ten frequent words; otherwise it is a random
# string of 1 to 7 letters from a ten-letter alphabet, so that a few thousand
# words hold a couple of thousand distinct ones.  The same seed gives the same
# words with the same awk.
BEGIN {
	if (hot == "")
		hot = 0.3
	srand(seed)
	split("the and of to in that lord god said unto", common, " ")
	for (i = 0; i < n; i++) {
		if (rand() < hot) {
			w = common[int(rand() * 10) + 1]
		} else {
			len = int(rand() * 7) + 1
			w = ""
			for (k = 0; k < len; k++)
				w = w substr("abcdefghij", int(rand() * 10) + 1, 1)
		}
		printf "%s%s", w, (rand() < 0.1 ? "\n" : " ")
	}
	printf "\n"
}
