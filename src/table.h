/*
 * table.h - counting tables: open addressing over XXH3 hashes, keys interned
 * once in the table's key pool (pool.h), partitioned by the hash's top bits.
 *
 * One table belongs to one thread (a worker, or the n-gram stitcher): there
 * is no lock on the hot path.  At the end the engine gathers the tables
 * partition by partition, in parallel (two-level aggregation).  When a
 * budget is set and reached, the least recently used keys are evicted with
 * their partial counts into a run file (spill.h), so counts stay exact;
 * while keys do not recur, new keys are listed instead and each full list
 * becomes a run (append mode, table.c), with the slots left empty.
 */
#ifndef TALLY_TABLE_H
#define TALLY_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

struct spill;

typedef struct table table;

typedef struct table_config {
	unsigned part_bits;      /* 1 << part_bits partitions, chosen by the top hash bits */
	uint64_t budget;         /* bytes of slots and keys before eviction; 0 = unbounded */
	struct spill *spill;     /* where evicted keys go; NULL = never evict */
	int      sketch;         /* sketch the keys taken in (table_seen) */
} table_config;

/* The hash every module uses for keys: XXH3 (64 bits, seed 0).  Most keys
 * are short words; XXH3_64bits is too large to be inlined, so its own code
 * for 0 to 16 bytes is called directly (the same function XXH3_64bits
 * takes for these lengths; test_table checks that the values agree).
 * table_hash_short: len <= 16 only, always inlined (the tokenizers' hot
 * path). */
static inline __attribute__((always_inline))
uint64_t table_hash_short(const void *key, size_t len)
{
	return XXH3_len_0to16_64b((const xxh_u8 *)key, len, XXH3_kSecret, 0);
}

/* XXH3 of a key of 1 to 16 bytes whose length class is known: cls 0 for 1
 * to 3 bytes, 1 for 4 to 8, 2 for 9 to 16 (TABLE_HASH_CLASS).  With cls a
 * constant this is one of XXH3's three short paths with no branch: a batch
 * of keys of mixed lengths, hashed class by class, does not pay a
 * mispredicted branch for every other key as table_hash_short does. */
#define TABLE_HASH_CLASS(len) (((len) > 3) + ((len) > 8))
static inline __attribute__((always_inline))
uint64_t table_hash_class(const void *key, size_t len, unsigned cls)
{
	const xxh_u8 *k = (const xxh_u8 *)key;
	if (cls == 0)
		return XXH3_len_1to3_64b(k, len, XXH3_kSecret, 0);
	if (cls == 1)
		return XXH3_len_4to8_64b(k, len, XXH3_kSecret, 0);
	return XXH3_len_9to16_64b(k, len, XXH3_kSecret, 0);
}

/* Keys of up to TABLE_HASH_EXACT bytes that have the same length and the
 * same hash are the same key, so they are compared by hash and length
 * alone.  For each length up to 8, XXH3 maps the keys one to one onto
 * their hashes:
 *   - 0 bytes: one key;
 *   - 1 to 3 bytes: the bytes (first, middle, last) and the length are
 *     packed into 32 bits, then XORed with a constant and avalanched; every
 *     step can be undone;
 *   - 4 to 8 bytes: the first and the last 4 bytes, which between them
 *     hold every byte, are packed into 64 bits, XORed with a constant and
 *     mixed by rrmxmx, whose steps (x ^ rotl 49 ^ rotl 24, a multiply by an
 *     odd number, x ^ ((x >> 35) + len), x ^ (x >> 28)) can all be undone.
 * Longer keys are not: their bytes are compared.  test_table recovers keys
 * from their hashes, so a change to these paths of XXH3 fails the tests. */
#define TABLE_HASH_EXACT 8

static inline uint64_t table_hash(const void *key, size_t len)
{
	if (len <= 16)
		return table_hash_short(key, len);
	return XXH3_64bits(key, len);
}

/* Create an empty table.  Returns NULL when out of memory. */
table *table_create(const table_config *cfg);
void   table_destroy(table *t);


/* Distinct keys held now (approximate when read from another thread). */
uint64_t table_size(const table *t);

/* The keys the table has taken in, evicted ones too: a sketch of their
 * hashes (sketch.h; NULL unless table_config.sketch), and a bound on their
 * number (the key of n distinct keys that was evicted and came back counts
 * twice).  Any thread may read them while the table's own adds. */
const struct sketch *table_seen(const table *t);
uint64_t table_seen_most(const table *t);

/* Pool statistics: hits (key found), misses (new key), evictions. */
void table_counters(const table *t, uint64_t *hits, uint64_t *misses, uint64_t *evictions);

/* Entries as the merge and the output see them. */
typedef struct table_entry {
	const char *key;
	uint64_t    hash;
	uint64_t    count;
	uint32_t    len;
	uint32_t    clock;   /* recency for CLOCK eviction */
} table_entry;

/* The parts of a table that the inline hot path reads.  The rest of the
 * table is private to table.c; these fields are here only so that a hit, the
 * common case, costs no function call. */
typedef struct table_part {
	table_entry *slots;
	size_t       mask;     /* capacity - 1 */
	size_t       count;
} table_part;

typedef struct table_hot {
	table_part *parts;
	unsigned    shift;     /* 64 - part_bits */
	uint64_t    hits;
} table_hot;

#define TABLE_CLOCK_MAX 3u

/* Out of line: a key not in the table (insert, grow, maybe evict). */
int table_add_new(table *t, table_part *pt, table_entry *slot, const char *key, size_t len,
	uint64_t hash, uint64_t n);

static inline int table_key_eq(const char *a, const char *b, size_t len)
{
	/* Most keys are short words: two overlapping loads of 8, 4 or 1 bytes
	 * cover any length up to 16 without reading outside the keys. */
	if (len >= 8) {
		if (len > 16)
			return memcmp(a, b, len) == 0;
		uint64_t a0, b0, a1, b1;
		memcpy(&a0, a, 8);
		memcpy(&b0, b, 8);
		memcpy(&a1, a + len - 8, 8);
		memcpy(&b1, b + len - 8, 8);
		return ((a0 ^ b0) | (a1 ^ b1)) == 0;
	}
	if (len >= 4) {
		uint32_t a0, b0, a1, b1;
		memcpy(&a0, a, 4);
		memcpy(&b0, b, 4);
		memcpy(&a1, a + len - 4, 4);
		memcpy(&b1, b + len - 4, 4);
		return ((a0 ^ b0) | (a1 ^ b1)) == 0;
	}
	if (len)
		return a[0] == b[0] && a[len / 2] == b[len / 2] && a[len - 1] == b[len - 1];
	return 1;
}

/* Does the occupied slot e hold key (len bytes, hash = table_hash(key,
 * len))?  Keys of up to TABLE_HASH_EXACT bytes are settled by hash and
 * length; the longer ones' bytes are compared. */
static inline int table_entry_is(const table_entry *e, const char *key, size_t len, uint64_t hash)
{
	return e->hash == hash && e->len == len &&
		(len <= TABLE_HASH_EXACT || table_key_eq(e->key, key, len));
}

/* The partition of hash, and the slot where its probe starts. */
static inline table_part *table_part_of(const table_hot *h, uint64_t hash)
{
	return &h->parts[hash >> h->shift];
}

static inline table_entry *table_home(const table_part *pt, uint64_t hash)
{
	return &pt->slots[hash & pt->mask];
}

/* Entry e, just counted, was found past its home slot: when it has been
 * counted more often than the key at home, they trade places, so that the
 * frequent keys end up where the first probe looks.  The other key stays
 * reachable: every slot from its own home to e's place is taken.  The
 * short-key path of the tokenizers calls it (on kjv x1 it cut the probes
 * past the home slot from 214k to 62k); table_add does not: on bigrams and
 * lines it added 1.5% instructions and no time that could be measured. */
static inline void table_promote(table_entry *home, table_entry *e)
{
	if (e->count > home->count) {
		table_entry tmp = *home;
		*home = *e;
		*e = tmp;
	}
}

/* Add n to key's count (hash = table_hash(key, len)).  The key bytes are
 * copied into the pool when new.  Returns 0, or -1 on a fatal error (out of
 * memory, or a spill that failed: errno set).  Not thread-safe per table. */
static inline int table_add(table *t, const char *key, size_t len, uint64_t hash, uint64_t n)
{
	table_hot *h = (table_hot *)t;
	table_part *pt = table_part_of(h, hash);
	size_t i = hash & pt->mask;
	for (;;) {
		table_entry *e = &pt->slots[i];
		if (!e->count)
			return table_add_new(t, pt, e, key, len, hash, n);
		if (table_entry_is(e, key, len, hash)) {
			e->count += n;
			e->clock = TABLE_CLOCK_MAX;
			h->hits++;
			return 0;
		}
		i = (i + 1) & pt->mask;
	}
}

/* Prefetch the home slot of hash; table_prefetch_key the key it holds
 * (once the slot has arrived).  For callers that add many keys and can
 * issue these a few keys ahead.  Always inlined: GCC finds a function that
 * only prefetches free of side effects and drops calls to it. */
static inline __attribute__((always_inline))
void table_prefetch(const table *t, uint64_t hash)
{
	__builtin_prefetch(table_home(table_part_of((const table_hot *)t, hash), hash));
}

static inline __attribute__((always_inline))
void table_prefetch_key(const table *t, uint64_t hash)
{
	__builtin_prefetch(table_home(table_part_of((const table_hot *)t, hash), hash)->key);
}

/* qsort comparison of two table_entry: by hash, then key bytes (a key
 * before the longer keys it prefixes): the order of runs and of
 * --sort=none. */
int table_entry_cmp(const void *a, const void *b);

/* Sort n entries in table_entry_cmp's order: a radix sort on the hash,
 * the rare equal hashes by key (a comparison sort of a partition's keys
 * took 13% of a --sort=none run of 8M lines). */
void table_sort_entries(table_entry *v, size_t n);

/* The union of partition p of several tables, equal keys added up into
 * one entry: v[0..n), in no set order.  The index (slots holding an entry's
 * position + 1) is sized to the partition and kept for the next one, so a
 * thread gathering partition after partition allocates once. */
typedef struct table_gather {
	table_entry *v;
	size_t       n, cap;
	uint32_t    *index;
	size_t       nindex;
} table_gather;

/* Gather partition p of t[0..nt) (same part_bits) into g; the tables are
 * left as they were, and their pools must outlive g's entries.  Reads only:
 * several threads may gather different partitions at once.  Returns 0 or
 * -1 (out of memory). */
int  table_gather_partition(table *const *t, unsigned nt, unsigned p, table_gather *g);
void table_gather_free(table_gather *g);

/* Empty partition p, giving back its slots (its keys stay in the pool, for
 * the entries gathered from it).  Threads may release different partitions
 * of a table at once.  Returns 0 or -1 (out of memory). */
int table_release_partition(table *t, unsigned p);

/* Number of partitions. */
unsigned table_partitions(const table *t);

/* Call fn on each entry of partition p (any order); stops when fn returns
 * non-zero and returns that value. */
int table_each(const table *t, unsigned p, int (*fn)(void *ctx, const table_entry *e), void *ctx);

/* Evict every key into the spill as one run (used when the engine finishes
 * after any spill, so that all keys then come from the merge).  Returns 0/-1. */
int table_spill_all(table *t);

#endif
