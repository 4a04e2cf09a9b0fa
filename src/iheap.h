/*
 * iheap.h - a binary min-heap of small indexes: the sources of a merge in
 * output order (engine.c's sorted orders, sorted.c's files), each heap
 * entry naming a source whose head item before() compares.
 */
#ifndef TALLY_IHEAP_H
#define TALLY_IHEAP_H

/* 1 when the head of source a comes before that of source b. */
typedef int (*iheap_before_fn)(const void *ctx, unsigned a, unsigned b);

/* Move h[i] down to its place among the n entries. */
static inline void iheap_down(unsigned *h, unsigned n, unsigned i, iheap_before_fn before,
	const void *ctx)
{
	unsigned x = h[i];
	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && before(ctx, h[c + 1], h[c]))
			c++;
		if (!before(ctx, h[c], x))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

/* Move h[i] up to its place (after it was appended at i). */
static inline void iheap_up(unsigned *h, unsigned i, iheap_before_fn before, const void *ctx)
{
	unsigned x = h[i];
	while (i > 0) {
		unsigned up = (i - 1) / 2;
		if (!before(ctx, x, h[up]))
			break;
		h[i] = h[up];
		i = up;
	}
	h[i] = x;
}

#endif
