/*
 * fzbytes.h - a growing byte buffer for the fuzz targets' results.
 */
#ifndef TALLY_FZBYTES_H
#define TALLY_FZBYTES_H

#include <stdlib.h>
#include <string.h>

typedef struct fz_bytes {
	char  *p;
	size_t n, cap;
} fz_bytes;

/* Append n bytes at p (aborts when memory runs out). */
static inline void fz_append(fz_bytes *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->n + n > b->cap) {
		while (b->n + n > b->cap)
			b->cap = b->cap ? 2 * b->cap : 4096;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

#endif
