/*
 * table.h - counting tables: open addressing over XXH3 hashes, keys interned
 * once in the table's key pool (pool.h), partitioned by the hash's top bits.
 *
 * One table belongs to one thread (a worker, or the n-gram stitcher): there
 * is no lock on the hot path.  At the end the engine merges the tables
 * partition by partition, in parallel (two-level aggregation).  When a
 * budget is set and reached, the least recently used keys are evicted with
 * their partial counts into a run file (spill.h), so counts stay exact.
 */
#ifndef TALLY_TABLE_H
#define TALLY_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

struct spill;

typedef struct table table;

typedef struct table_config {
	unsigned part_bits;      /* 1 << part_bits partitions, chosen by the top hash bits */
	uint64_t budget;         /* bytes of slots and keys before eviction; 0 = unbounded */
	struct spill *spill;     /* where evicted keys go; NULL = never evict */
} table_config;

/* The hash every module uses for keys. */
static inline uint64_t table_hash(const void *key, size_t len)
{
	return XXH3_64bits(key, len);
}

/* Create an empty table.  Returns NULL when out of memory. */
table *table_create(const table_config *cfg);
void   table_destroy(table *t);

/* Add n to key's count (hash = table_hash(key, len)).  The key bytes are
 * copied into the pool when new.  Returns 0, or -1 on a fatal error (out of
 * memory, or a spill that failed: errno set).  Not thread-safe per table. */
int table_add(table *t, const char *key, size_t len, uint64_t hash, uint64_t n);

/* Distinct keys held now (approximate when read from another thread). */
uint64_t table_size(const table *t);

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

/* Merge partition p of src into dst (same part_bits), then empty that
 * partition of src.  Keys of src stay owned by src's pool: dst must not
 * outlive src.  Returns 0 or -1 (out of memory).  Different partitions may be
 * merged concurrently by different threads. */
int table_merge_partition(table *dst, table *src, unsigned p);

/* Number of partitions. */
unsigned table_partitions(const table *t);

/* Call fn on each entry of partition p (any order); stops when fn returns
 * non-zero and returns that value. */
int table_each(const table *t, unsigned p, int (*fn)(void *ctx, const table_entry *e), void *ctx);

/* Evict every key into the spill as one run (used when the engine finishes
 * after any spill, so that all keys then come from the merge).  Returns 0/-1. */
int table_spill_all(table *t);

#endif
