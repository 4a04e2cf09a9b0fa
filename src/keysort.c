/*
 * keysort.c - sorting (count, key) items (see keysort.h): an in-place MSD
 * radix sort on (count, prefix) or the prefix, finished by an introsort on
 * full keys where those tie (8.2M distinct log lines in count order: 1.1 s
 * on one thread, against 1.7 s a byte a pass with no shared word taken
 * aside; 10M random items: 0.75 s for key order, against 3.0-3.4 s for
 * qsort).
 */
#include "keysort.h"

#include "mem.h"

static inline void item_swap(keysort_item *a, keysort_item *b)
{
	keysort_item t = *a;
	*a = *b;
	*b = t;
}

static inline void insertion_sort(keysort_item *v, size_t n, int bycount)
{
	for (size_t i = 1; i < n; i++) {
		keysort_item x = v[i];
		size_t j = i;
		while (j > 0 && keysort_before(&x, &v[j - 1], bycount)) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

static inline void sift_down(keysort_item *v, size_t i, size_t n, int bycount)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && keysort_before(&v[c], &v[c + 1], bycount))
			c++;
		if (!keysort_before(&v[i], &v[c], bycount))
			return;
		item_swap(&v[i], &v[c]);
		i = c;
	}
}

static inline void heap_sort(keysort_item *v, size_t n, int bycount)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n, bycount);
	for (size_t i = n; i-- > 1;) {
		item_swap(&v[0], &v[i]);
		sift_down(v, 0, i, bycount);
	}
}

/* Introsort: quicksort (median of three, explicit stack, smaller side
 * first), heapsort past a depth limit, insertion sort for short ranges. */
static inline __attribute__((always_inline))
void intro_sort(keysort_item *v, size_t n, int bycount)
{
	struct { size_t lo, hi; unsigned depth; } stack[64];
	size_t sp = 0;
	unsigned depth = 0;
	for (size_t m = n; m > 1; m >>= 1)
		depth += 2;
	size_t lo = 0, hi = n;
	for (;;) {
		while (hi - lo > 16) {
			if (depth == 0) {
				heap_sort(v + lo, hi - lo, bycount);
				break;
			}
			depth--;
			size_t mid = lo + (hi - lo) / 2;
			keysort_item *a = &v[lo], *b = &v[mid], *c = &v[hi - 1];
			if (keysort_before(b, a, bycount))
				item_swap(a, b);
			if (keysort_before(c, b, bycount)) {
				item_swap(b, c);
				if (keysort_before(b, a, bycount))
					item_swap(a, b);
			}
			keysort_item pivot = *b;
			size_t i = lo, j = hi - 1;
			for (;;) {
				while (keysort_before(&v[i], &pivot, bycount))
					i++;
				while (keysort_before(&pivot, &v[j], bycount))
					j--;
				if (i >= j)
					break;
				item_swap(&v[i], &v[j]);
				i++;
				j--;
			}
			/* [lo, j] and [j + 1, hi): push the larger, go on with the smaller. */
			size_t split = j + 1;
			if (split - lo < hi - split) {
				stack[sp].lo = split;
				stack[sp].hi = hi;
				stack[sp++].depth = depth;
				hi = split;
			} else {
				stack[sp].lo = lo;
				stack[sp].hi = split;
				stack[sp++].depth = depth;
				lo = split;
			}
		}
		if (hi - lo <= 16)
			insertion_sort(v + lo, hi - lo, bycount);
		if (sp == 0)
			return;
		sp--;
		lo = stack[sp].lo;
		hi = stack[sp].hi;
		depth = stack[sp].depth;
	}
}

/* The 64-bit word of the radix key that holds byte d (0 = most
 * significant): ~count then the prefix for count order, the prefix alone
 * for key order. */
static inline uint64_t radix_word(const keysort_item *it, unsigned d, int bycount)
{
	return bycount && d < 8 ? ~it->count : it->prefix;
}

/* How many leading bytes words agree on, from the OR and the AND of them
 * all (8: every byte). */
static inline unsigned agreed_bytes(uint64_t or, uint64_t and)
{
	return or == and ? 8 : (unsigned)__builtin_clzll(or ^ and) / 8;
}

/* Reload the prefixes of a range whose keys agree on their first kofs
 * bytes with the next 8 bytes of each key.  Returns how many of the new
 * prefixes' first bytes are the same in all (8: all of them). */
static unsigned reload_prefixes(keysort_item *v, size_t n, size_t kofs)
{
	uint64_t or = 0, and = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		/* The keys lie all over the arena: fetch ahead. */
		if (i + PREFETCH_AHEAD < n)
			__builtin_prefetch(v[i + PREFETCH_AHEAD].key + kofs);
		size_t len = v[i].len;
		uint64_t p = len > kofs ? keysort_prefix(v[i].key + kofs, len - kofs) : 0;
		v[i].prefix = p;
		or |= p;
		and &= p;
	}
	return agreed_bytes(or, and);
}

/* The first byte from d on where the items' words differ (they agree
 * before d), or the start of the next word when they are all the same.
 * One pass with no counts. */
static unsigned next_varying(const keysort_item *v, size_t n, unsigned d, int bycount)
{
	uint64_t or = 0, and = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		uint64_t w = radix_word(&v[i], d, bycount);
		or |= w;
		and &= w;
	}
	return (d & ~7u) + agreed_bytes(or, and);
}

/* A word that may be shared by most of a range: one that two of three
 * items spread over it have.  0 when none is. */
static int common_word(const keysort_item *v, size_t n, unsigned d, int bycount, uint64_t *w)
{
	uint64_t a = radix_word(&v[n / 4], d, bycount), b = radix_word(&v[n / 2], d, bycount),
		 c = radix_word(&v[n - n / 4 - 1], d, bycount);
	*w = a == b || a == c ? a : b;
	return a == b || a == c || b == c;
}

static inline unsigned word_class(uint64_t x, uint64_t w)
{
	return x < w ? 0u : x == w ? 1u : 2u;
}

/* Put the items whose word is below w first, then those equal to it, then
 * those above (lt and eq items of each), writing only the items that move:
 * most are equal, and already in place. */
static void partition3(keysort_item *v, size_t n, unsigned d, int bycount, uint64_t w,
	size_t lt, size_t eq)
{
	size_t next[3] = { 0, lt, lt + eq }, end[3] = { lt, lt + eq, n };
#define CLASS(it) word_class(radix_word((it), d, bycount), w)
	for (unsigned b = 0; b < 3; b++) {
		while (next[b] < end[b]) {
			keysort_item x = v[next[b]];
			unsigned xb = CLASS(&x);
			if (xb == b) {
				next[b]++;
				continue;
			}
			while (xb != b) {
				/* The first item of class xb's place that is not of
				 * class xb: there is one, since x is out of it. */
				while (CLASS(&v[next[xb]]) == xb)
					next[xb]++;
				keysort_item y = v[next[xb]];
				v[next[xb]++] = x;
				x = y;
				xb = CLASS(&x);
			}
			v[next[b]++] = x;
		}
	}
#undef CLASS
}

/* The least range that samples for a shared word, and the least sorted
 * two bytes a pass (the fuzz target sets them lower, to reach every path
 * with few items). */
#ifndef KEYSORT_SAMPLE_MIN
#define KEYSORT_SAMPLE_MIN ((size_t)4096)
#endif
#ifndef KEYSORT_WIDE_MIN
#define KEYSORT_WIDE_MIN ((size_t)1 << 18)
#endif

/* In-place MSD radix sort (American flag sort) on the radix key, byte d
 * on; the items agree on every byte before d.  Bytes where a range's items
 * all agree are skipped at once (keys such as log lines share long
 * beginnings, counts are mostly small).  A large range whose sampled items
 * suggest a shared word also counts the items that share it: when seven in
 * eight do (the count of 1 of most lines of a log, the date that begins
 * them), those go to the middle in one pass and on to the next word, the
 * others to either side, rather than down the word's bytes a level at a
 * time, each level a pass over them all that splits off a few.  When a
 * range still ties after the prefix, the prefix is reloaded from the next
 * 8 key bytes and the sort goes on; short ranges finish with the
 * comparison sort.  The prefixes are left as the deepest range reloaded
 * them. */
static void radix_sort_count(keysort_item *v, size_t n, unsigned d, size_t kofs);
static void radix_sort_key(keysort_item *v, size_t n, unsigned d, size_t kofs);

static inline __attribute__((always_inline))
void radix_sort(keysort_item *v, size_t n, unsigned d, int bycount, size_t kofs)
{
	void (*recurse)(keysort_item *, size_t, unsigned, size_t) =
		bycount ? radix_sort_count : radix_sort_key;
	unsigned maxd = bycount ? 16 : 8;
	/* Counts for two bytes a pass, taken once a range needs them and
	 * kept till this call returns. */
	const size_t wide_bytes = 2 * ((size_t)1 << 16) * sizeof(size_t);
	size_t *wide = NULL;
	for (;;) {
		while (n > 64 && d < maxd) {
			/* Two bytes a pass for ranges far larger than the cache,
			 * where both lie in one word: half the passes over them.
			 * The counts take 1 MiB then (counted under MEM_SPILL,
			 * beside the 8 MiB or more of the items), and the cache
			 * holds them next to the few places each pass reads and
			 * writes.  One byte a pass when that cannot be had. */
			size_t small[2][256], *count = small[0], *next = small[1];
			unsigned bits = 8;
			if (n >= KEYSORT_WIDE_MIN && (d & 7) < 7 &&
			    (wide || (wide = mem_alloc(MEM_SPILL, wide_bytes)))) {
				bits = 16;
				count = wide;
				next = wide + ((size_t)1 << 16);
			}
			size_t nb = (size_t)1 << bits, mask = nb - 1;
			unsigned base = d & ~7u, shift = 64 - 8 * (d & 7) - bits, f = d;
			uint64_t cw = 0;
			int common = n >= KEYSORT_SAMPLE_MIN && common_word(v, n, d, bycount, &cw);
			size_t lt = 0, eq = 0;
			memset(count, 0, nb * sizeof *count);
			if (common) {
				uint64_t or = 0, and = UINT64_MAX;
				for (size_t i = 0; i < n; i++) {
					uint64_t w = radix_word(&v[i], d, bycount);
					count[(w >> shift) & mask]++;
					or |= w;
					and &= w;
					lt += w < cw;
					eq += w == cw;
				}
				/* base + 8 when the word is the same everywhere. */
				f = base + agreed_bytes(or, and);
			} else {
				for (size_t i = 0; i < n; i++)
					count[(radix_word(&v[i], d, bycount) >> shift) & mask]++;
				/* All alike at d: on to the next byte where they
				 * differ, in one pass (rare enough that this loop
				 * does not keep the OR and AND: they cost random
				 * keys 3% of their sort). */
				if (count[(radix_word(&v[0], d, bycount) >> shift) & mask] == n)
					f = next_varying(v, n, d, bycount);
			}
			if (common && f < base + 8 && eq >= n - n / 8) {
				partition3(v, n, d, bycount, cw, lt, eq);
				if (lt > 1)
					recurse(v, lt, f, kofs);
				if (n - lt - eq > 1)
					recurse(v + lt + eq, n - lt - eq, f, kofs);
				v += lt;
				n = eq;
				d = base + 8;
				continue;
			}
			if (f > d) {
				/* The counts above were all one digit. */
				d = f;
				continue;
			}
			size_t end = 0;
			for (size_t b = 0; b < nb; b++) {
				next[b] = end;
				end += count[b];
			}
			end = 0;
			for (size_t b = 0; b < nb; b++) {
				end += count[b];
				while (next[b] < end) {
					keysort_item x = v[next[b]];
					size_t xb = (radix_word(&x, d, bycount) >> shift) & mask;
					while (xb != b) {
						keysort_item y = v[next[xb]];
						v[next[xb]++] = x;
						x = y;
						xb = (radix_word(&x, d, bycount) >> shift) & mask;
					}
					v[next[b]++] = x;
				}
			}
			/* Each next[b] is now the end of digit b's items. */
			for (size_t b = 0; b < nb; b++)
				if (count[b] > 1)
					recurse(v + next[b] - count[b], count[b], d + bits / 8, kofs);
			mem_free(MEM_SPILL, wide, wide_bytes);
			return;
		}
		/* Tied on count and 8 key bytes: look at the next 8, if any key
		 * has them (keys here agree on everything before). */
		if (n <= 64)
			break;
		size_t maxlen = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].len > maxlen)
				maxlen = v[i].len;
		if (maxlen <= kofs + 8)
			break;
		kofs += 8;
		/* On at the first byte where the new prefixes differ (log
		 * lines often agree on more than 8 bytes). */
		d = (bycount ? 8 : 0) + reload_prefixes(v, n, kofs);
	}
	mem_free(MEM_SPILL, wide, wide_bytes);
	if (n > 1)
		intro_sort(v, n, bycount);
}

static void radix_sort_count(keysort_item *v, size_t n, unsigned d, size_t kofs)
{
	radix_sort(v, n, d, 1, kofs);
}

static void radix_sort_key(keysort_item *v, size_t n, unsigned d, size_t kofs)
{
	radix_sort(v, n, d, 0, kofs);
}

void keysort_by_count(keysort_item *v, size_t n)
{
	radix_sort_count(v, n, n > 64 ? next_varying(v, n, 0, 1) : 0, 0);
}

void keysort_prefixes(keysort_item *v, size_t n)
{
	reload_prefixes(v, n, 0);
}

void keysort_by_key(keysort_item *v, size_t n)
{
	radix_sort_key(v, n, n > 64 ? next_varying(v, n, 0, 0) : 0, 0);
}
