/*
 * radix.h - least-significant-digit radix sort of fixed-size records by a
 * 64-bit key, for the eviction path: the table sorts its victims by hash,
 * the pool its surviving keys by address.  A comparison sort through a
 * callback costs several times more on the hundreds of thousands of records
 * an eviction handles.
 */
#ifndef TALLY_RADIX_H
#define TALLY_RADIX_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* Sort n records of size elem in v by key(record), ascending and stable,
 * 11 bits a pass over the bits where the keys differ.  tmp must hold n
 * records.  Inline so that key is inlined too.  Thread-safe (the counts live
 * on the caller's stack). */
static inline __attribute__((always_inline))
void radix_sort64(void *v, void *tmp, size_t n, size_t elem, uint64_t (*key)(const void *))
{
	enum { BITS = 11, RADIX = 1 << BITS };
	size_t count[RADIX];
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = key((const char *)v + i * elem);
		lo = k < lo ? k : lo;
		hi = k > hi ? k : hi;
	}
	uint64_t span = n ? hi - lo : 0;
	char *src = v, *dst = tmp;
	for (unsigned shift = 0; shift == 0 || (shift < 64 && (span >> shift)); shift += BITS) {
		memset(count, 0, sizeof count);
		for (size_t i = 0; i < n; i++)
			count[((key(src + i * elem) - lo) >> shift) & (RADIX - 1)]++;
		size_t pos = 0;
		for (size_t d = 0; d < RADIX; d++) {
			size_t c = count[d];
			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++) {
			const char *r = src + i * elem;
			memcpy(dst + count[((key(r) - lo) >> shift) & (RADIX - 1)]++ * elem, r, elem);
		}
		char *t = src;
		src = dst;
		dst = t;
	}
	if (src != (char *)v)
		memcpy(v, src, n * elem);
}

/* Sort as radix_sort64 with a scratch array counted under c, or with qsort
 * and cmp (which must give the same order) for short arrays or when the
 * scratch cannot be had. */
static inline __attribute__((always_inline))
void radix_sort64_or_qsort(void *v, size_t n, size_t elem, uint64_t (*key)(const void *),
	int (*cmp)(const void *, const void *), mem_component c)
{
	void *tmp = n >= 256 ? mem_alloc(c, n * elem) : NULL;
	if (!tmp) {
		qsort(v, n, elem, cmp);
		return;
	}
	radix_sort64(v, tmp, n, elem, key);
	mem_free(c, tmp, n * elem);
}

/* Sort as radix_sort64_or_qsort by key(record), then the rare runs of
 * records with equal keys by cmp, which orders by key(record) first: a
 * total order (a hash, then the bytes it was taken of) at the cost of a
 * radix sort. */
static inline __attribute__((always_inline))
void radix_sort64_ties(void *v, size_t n, size_t elem, uint64_t (*key)(const void *),
	int (*cmp)(const void *, const void *), mem_component c)
{
	if (n < 2)
		return;
	radix_sort64_or_qsort(v, n, elem, key, cmp, c);
	char *b = v;
	for (size_t i = 1; i < n; i++) {
		uint64_t k = key(b + i * elem);
		if (k != key(b + (i - 1) * elem))
			continue;
		size_t last = i;
		while (last + 1 < n && key(b + (last + 1) * elem) == k)
			last++;
		qsort(b + (i - 1) * elem, last - i + 2, elem, cmp);
		i = last;
	}
}

#endif
