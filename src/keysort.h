/*
 * keysort.h - sorting (count, key) items by key bytes, or by count
 * descending and then key: for the output order (order.c) and for runs
 * written in key order (table.c).  Each item carries the first 8 key bytes
 * as a big-endian number, so that most comparisons touch no key memory.
 */
#ifndef TALLY_KEYSORT_H
#define TALLY_KEYSORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct keysort_item {
	uint64_t    count;
	uint64_t    prefix;   /* first 8 key bytes, big endian, zero padded */
	const char *key;
	uint32_t    len;
} keysort_item;

static inline uint64_t keysort_prefix(const char *key, size_t len)
{
	uint64_t p = 0;
	if (len >= 8) {
		memcpy(&p, key, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		return p;
#else
		return __builtin_bswap64(p);
#endif
	}
	for (size_t i = 0; i < len; i++)
		p |= (uint64_t)(unsigned char)key[i] << (56 - 8 * i);
	return p;
}

/* Key bytes, a key before the longer keys it prefixes. */
static inline int keysort_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return (alen > blen) - (alen < blen);
}

/* 1 when a comes first: by count (descending) when bycount, then by key.
 * Equal keys fall back on the count, so the order stays total. */
static inline int keysort_before(const keysort_item *a, const keysort_item *b, int bycount)
{
	if (bycount && a->count != b->count)
		return a->count > b->count;
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix;
	int c = keysort_bytes_cmp(a->key, a->len, b->key, b->len);
	if (c)
		return c < 0;
	return a->count > b->count;
}

/* Sort v[0..n) by key, or by count descending then key.  Prefixes must be
 * set (keysort_prefix).  On return they may hold later key bytes (the sort
 * reloads them where keys share their first 8 bytes), the same for equal
 * keys: keysort_prefixes sets them again for comparisons or another sort. */
void keysort_by_key(keysort_item *v, size_t n);
void keysort_by_count(keysort_item *v, size_t n);
void keysort_prefixes(keysort_item *v, size_t n);

#endif
