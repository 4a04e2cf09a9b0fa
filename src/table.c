/*
 * table.c - partitioned open-addressing counting table with CLOCK eviction
 * into spill runs (see table.h).
 *
 * Layout: 1 << part_bits partitions chosen by the hash's top bits; each is a
 * power-of-two array of 32-byte slots probed linearly from the hash's low
 * bits, kept at most half full.  A slot is empty when its count is 0 (every
 * counted key has a count of at least 1).  Key bytes live in the table's
 * pool; a slot holds the full 64-bit hash, so a probe touches key bytes only
 * when the hashes are equal.
 *
 * Eviction: every hit raises a slot's clock (up to 3); when the slots and
 * keys outgrow the budget, a clock hand sweeps the slots, taking those at 0
 * and lowering the others, until half the budget is free.  The victims go to
 * one run sorted by (hash, key), the pool is compacted in place and each
 * partition rebuilt, so the cost per evicted key stays small and the keys
 * that keep being hit stay resident.
 */
#include "table.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "keysort.h"
#include "mem.h"
#include "pool.h"
#include "radix.h"
#include "spill.h"

#define CLOCK_MAX   TABLE_CLOCK_MAX
#define CLOCK_DEAD  0xffffffffu
#define PART_MIN    16u
/* Evict when slots and keys pass EVICT_AT percent of the budget, down to
 * EVICT_TO percent: the rest is headroom for the eviction's temporaries. */
#define EVICT_AT    80u
#define EVICT_TO    40u

struct table {
	table_hot        hot;        /* first: the inline table_add reads it */
	unsigned         part_bits;
	pool            *pool;
	uint64_t         budget;
	spill           *spill;
	size_t           scratch_key; /* an eviction's temporaries per key held */
	_Atomic size_t   slot_bytes; /* partitions may be merged concurrently */
	_Atomic uint64_t size;
	uint64_t         misses, evictions;
	uint64_t         hits_mark, misses_mark;  /* hits and misses at the last eviction */
	int              failed;     /* errno of a failed eviction: sticky */
	unsigned         hand_part;  /* where the clock hand stopped */
	size_t           hand_slot;
	size_t           keep_cap;   /* near-unique keys: partitions stay this size (clear_all) */
};

static size_t part_bytes(size_t cap)
{
	return cap * sizeof(table_entry);
}

static int part_alloc(table *t, table_part *pt, size_t cap)
{
	pt->slots = mem_alloc_zeroed(MEM_TABLE, part_bytes(cap));
	if (!pt->slots)
		return -1;
	pt->mask = cap - 1;
	pt->count = 0;
	atomic_fetch_add_explicit(&t->slot_bytes, part_bytes(cap), memory_order_relaxed);
	return 0;
}

static void part_free(table *t, table_part *pt)
{
	if (!pt->slots)
		return;
	mem_free_zeroed(MEM_TABLE, pt->slots, part_bytes(pt->mask + 1));
	atomic_fetch_sub_explicit(&t->slot_bytes, part_bytes(pt->mask + 1), memory_order_relaxed);
	pt->slots = NULL;
	pt->mask = 0;
	pt->count = 0;
}

table *table_create(const table_config *cfg)
{
	table *t = mem_calloc(MEM_TABLE, 1, sizeof *t);
	if (!t)
		return NULL;
	t->part_bits = cfg->part_bits ? cfg->part_bits : 1;
	t->hot.shift = 64 - t->part_bits;
	t->budget = cfg->budget;
	t->spill = cfg->spill;
	/* In key order an eviction sorts the victims of a range of partitions
	 * at once (write_by_key): count that against the budget as the keys
	 * come, so that the peak stays within it. */
	unsigned nr = t->spill ? spill_key_ranges(t->spill) : 0;
	if (nr)
		t->scratch_key = (sizeof(keysort_item) + nr - 1) / nr;
	size_t nparts = (size_t)1 << t->part_bits;
	/* Blocks small enough that a tight budget still holds several. */
	size_t block = 256 * 1024;
	if (t->budget && t->budget / 64 < block)
		block = (size_t)(t->budget / 64);
	t->pool = pool_create(block);
	t->hot.parts = mem_calloc(MEM_TABLE, nparts, sizeof *t->hot.parts);
	if (!t->pool || !t->hot.parts) {
		table_destroy(t);
		return NULL;
	}
	for (size_t p = 0; p < nparts; p++)
		if (part_alloc(t, &t->hot.parts[p], PART_MIN)) {
			table_destroy(t);
			return NULL;
		}
	return t;
}

void table_destroy(table *t)
{
	if (!t)
		return;
	if (t->hot.parts) {
		for (size_t p = 0; p < ((size_t)1 << t->part_bits); p++)
			part_free(t, &t->hot.parts[p]);
		mem_free(MEM_TABLE, t->hot.parts, ((size_t)1 << t->part_bits) * sizeof *t->hot.parts);
	}
	pool_destroy(t->pool);
	mem_free(MEM_TABLE, t, sizeof *t);
}

unsigned table_partitions(const table *t)
{
	return 1u << t->part_bits;
}

uint64_t table_size(const table *t)
{
	return atomic_load_explicit(&t->size, memory_order_relaxed);
}

void table_counters(const table *t, uint64_t *hits, uint64_t *misses, uint64_t *evictions)
{
	*hits = t->hot.hits;
	*misses = t->misses;
	*evictions = t->evictions;
}

/* Place e (not present) into a partition with room. */
static void part_place(table_part *pt, const table_entry *e)
{
	size_t i = e->hash & pt->mask;
	while (pt->slots[i].count)
		i = (i + 1) & pt->mask;
	pt->slots[i] = *e;
	pt->count++;
}

/* Rebuild pt into cap slots, dropping dead entries.  Returns 0 or -1. */
static int part_rebuild(table *t, table_part *pt, size_t cap)
{
	table_part old = *pt;
	if (part_alloc(t, pt, cap)) {
		*pt = old;
		return -1;
	}
	for (size_t i = 0; i <= old.mask; i++) {
		table_entry *e = &old.slots[i];
		if (e->count && e->clock != CLOCK_DEAD)
			part_place(pt, e);
	}
	part_free(t, &old);
	return 0;
}

static int evict(table *t);

/* Have keys recurred since the last eviction?  Not when there were fewer
 * hits than an eighth of the new keys (near-unique keys such as the
 * bigrams of a large vocabulary): keeping any of them then buys nothing. */
static int recurring(const table *t)
{
	return t->hot.hits - t->hits_mark >= (t->misses - t->misses_mark) / 8;
}

int table_add_new(table *t, table_part *pt, table_entry *e, const char *key, size_t len,
	uint64_t hash, uint64_t n)
{
	if (t->failed) {
		errno = t->failed;
		return -1;
	}
	/* The key is copied before the slot is written, so a fault while reading
	 * it (a mapped input that shrank) leaves the table consistent. */
	const char *k = pool_intern(t->pool, key, len);
	if (!k) {
		errno = ENOMEM;
		return -1;
	}
	e->key = k;
	e->len = (uint32_t)len;
	e->hash = hash;
	e->clock = 0;
	e->count = n;
	pt->count++;
	t->misses++;
	atomic_store_explicit(&t->size, table_size(t) + 1, memory_order_relaxed);
	if (pt->count * 2 > pt->mask + 1) {
		/* While keys hardly recur, a full partition is the signal to
		 * evict them all: the table keeps its size from cycle to cycle
		 * instead of growing anew (clear_all). */
		if (t->keep_cap && pt->mask + 1 >= t->keep_cap) {
			if (!recurring(t))
				return evict(t);
			t->keep_cap = 0;
		}
		if (part_rebuild(t, pt, (pt->mask + 1) * 2)) {
			errno = ENOMEM;
			return -1;
		}
	}
	if (t->budget && t->spill && atomic_load_explicit(&t->slot_bytes, memory_order_relaxed) +
			pool_bytes(t->pool) + table_size(t) * t->scratch_key > t->budget / 100 * EVICT_AT)
		return evict(t);
	return 0;
}

int table_entry_cmp(const void *a, const void *b)
{
	const table_entry *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

static uint64_t entry_hash(const void *e)
{
	return ((const table_entry *)e)->hash;
}

/* Sort entries by (hash, key): radix on the hash (radix.h), then the rare
 * runs of equal hashes by key.  Falls back on qsort when the scratch array
 * cannot be had. */
static void sort_entries(table_entry *v, size_t n)
{
	radix_sort64_or_qsort(v, n, sizeof *v, entry_hash, table_entry_cmp, MEM_TABLE);
	for (size_t i = 1; i < n; i++)
		if (v[i].hash == v[i - 1].hash) {
			size_t j = i - 1;
			while (j > 0 && v[j - 1].hash == v[i].hash)
				j--;
			size_t k = i;
			while (k + 1 < n && v[k + 1].hash == v[i].hash)
				k++;
			qsort(v + j, k - j + 1, sizeof *v, table_entry_cmp);
			i = k;
		}
}

/* Append entries (sorted here) to a run.  Returns 0 or -1. */
static int write_entries(spill_writer *w, table_entry *v, size_t n)
{
	sort_entries(v, n);
	for (size_t i = 0; i < n; i++) {
		/* Sorted by hash, the keys lie all over the pool: fetch ahead. */
		if (i + PREFETCH_AHEAD < n)
			__builtin_prefetch(v[i + PREFETCH_AHEAD].key);
		spill_rec r = { v[i].hash, v[i].count, v[i].key, v[i].len };
		if (spill_run_put(w, &r))
			return -1;
	}
	return 0;
}

/* Every key was evicted: empty the partitions for the keys to come.  They
 * would grow back to about the size they had (the same budget fills them
 * again), so all keep the smallest partition's size (keep_cap): the larger
 * ones are rebuilt at that size, the others cleared in place, and until
 * keys recur, a partition that fills up evicts instead of growing (see
 * table_add_new).  Rebuilding them all at PART_MIN made each cycle of
 * near-unique keys map, fault in and zero its table anew.  The final spill
 * (closing) does shrink them to PART_MIN: the merge that follows counts on
 * the tables' memory. */
static int clear_all(table *t, int closing)
{
	size_t nparts = table_partitions(t), keep = closing ? PART_MIN : SIZE_MAX;
	for (size_t p = 0; p < nparts; p++)
		if (t->hot.parts[p].mask + 1 < keep)
			keep = t->hot.parts[p].mask + 1;
	for (size_t p = 0; p < nparts; p++) {
		table_part *pt = &t->hot.parts[p];
		if (pt->mask + 1 == keep) {
			memset(pt->slots, 0, part_bytes(keep));
			pt->count = 0;
		} else if (part_rebuild(t, pt, keep)) {
			return -1;
		}
	}
	t->keep_cap = closing ? 0 : keep;
	atomic_store_explicit(&t->size, 0, memory_order_relaxed);
	return 0;
}

/* Drop dead entries: compact the pool around the survivors, then rebuild
 * each partition at a size that fits what is left (closing: the final
 * spill, see clear_all). */
static int sweep_dead(table *t, int closing)
{
	size_t nparts = table_partitions(t), live = 0;
	for (size_t p = 0; p < nparts; p++)
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++) {
			table_entry *e = &t->hot.parts[p].slots[i];
			live += e->count && e->clock != CLOCK_DEAD;
		}
	if (live == 0) {
		pool_compact(t->pool, NULL, 0);
		return clear_all(t, closing);
	}
	pool_ref *refs = mem_alloc(MEM_TABLE, live * sizeof *refs);
	if (!refs)
		return -1;
	size_t r = 0;
	for (size_t p = 0; p < nparts; p++)
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++) {
			table_entry *e = &t->hot.parts[p].slots[i];
			if (e->count && e->clock != CLOCK_DEAD)
				refs[r++] = (pool_ref){ &e->key, e->len };
		}
	pool_compact(t->pool, refs, live);
	mem_free(MEM_TABLE, refs, live * sizeof *refs);
	for (size_t p = 0; p < nparts; p++) {
		table_part *pt = &t->hot.parts[p];
		size_t keep = 0;
		for (size_t i = 0; i <= pt->mask; i++)
			keep += pt->slots[i].count && pt->slots[i].clock != CLOCK_DEAD;
		size_t cap = PART_MIN;
		while (cap < keep * 2 + 1)
			cap *= 2;
		if (part_rebuild(t, pt, cap))
			return -1;
	}
	atomic_store_explicit(&t->size, live, memory_order_relaxed);
	return 0;
}

/* Append the victims of partitions [p0, p1) to a run in hash order, a
 * partition at a time (v holds one partition's).  Returns 0 or -1. */
static int write_by_hash(table *t, spill_writer *w, unsigned p0, unsigned p1, table_entry *v)
{
	for (unsigned p = p0; p < p1; p++) {
		size_t k = 0;
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++) {
			table_entry *e = &t->hot.parts[p].slots[i];
			if (e->count && e->clock == CLOCK_DEAD)
				v[k++] = *e;
		}
		if (write_entries(w, v, k))
			return -1;
	}
	return 0;
}

/* Append the victims of the range [p0, p1) to a run in key order (the
 * spill's key order, spill.h, which keeps the range instead of each
 * hash): it holds them all.  Returns 0 or -1. */
static int write_by_key(table *t, spill_writer *w, unsigned p0, unsigned p1, keysort_item *it)
{
	size_t k = 0;
	for (unsigned p = p0; p < p1; p++)
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++) {
			table_entry *e = &t->hot.parts[p].slots[i];
			if (!e->count || e->clock != CLOCK_DEAD)
				continue;
			it[k++] = (keysort_item){ e->count, 0, e->key, e->len };
		}
	/* The keys lie all over the pool: fetch ahead. */
	for (size_t i = 0; i < k; i++) {
		if (i + PREFETCH_FAR < k)
			__builtin_prefetch(it[i + PREFETCH_FAR].key);
		it[i].prefix = keysort_prefix(it[i].key, it[i].len);
	}
	keysort_by_key(it, k);
	uint64_t range_hash = (uint64_t)p0 << t->hot.shift;
	for (size_t i = 0; i < k; i++) {
		if (i + PREFETCH_FAR < k)
			__builtin_prefetch(it[i + PREFETCH_FAR].key);
		spill_rec r = { range_hash, it[i].count, it[i].key, it[i].len };
		if (spill_run_put(w, &r))
			return -1;
	}
	return 0;
}

/* Write the dead entries (the victims) as one run.  Partitions are ranges
 * of the hash, in order, so the run is written a partition at a time (in
 * hash order) or a range of partitions at a time (in key order), and the
 * temporaries are the size of one partition's or range's victims.  Returns
 * 0 or -1. */
static int spill_dead(table *t, size_t nv)
{
	if (nv == 0)
		return 0;
	unsigned nparts = table_partitions(t), nr = spill_key_ranges(t->spill);
	unsigned ngroups = nr ? nr : nparts;
	size_t most = 0;
	for (unsigned g = 0; g < ngroups; g++) {
		size_t n = 0;
		for (unsigned p = spill_range_start(nparts, ngroups, g);
		     p < spill_range_start(nparts, ngroups, g + 1); p++)
			n += t->hot.parts[p].count;
		most = n > most ? n : most;
	}
	if (most > nv)
		most = nv;
	size_t elem = nr ? sizeof(keysort_item) : sizeof(table_entry);
	char *v = mem_alloc(MEM_TABLE, most * elem);
	if (!v)
		return -1;
	spill_writer *w = spill_run_begin(t->spill);
	if (!w) {
		mem_free(MEM_TABLE, v, most * elem);
		return -1;
	}
	int rc = 0;
	for (unsigned g = 0; g < ngroups && !rc; g++) {
		unsigned p0 = spill_range_start(nparts, ngroups, g);
		unsigned p1 = spill_range_start(nparts, ngroups, g + 1);
		rc = nr ? write_by_key(t, w, p0, p1, (keysort_item *)v)
			: write_by_hash(t, w, p0, p1, (table_entry *)v);
	}
	mem_free(MEM_TABLE, v, most * elem);
	if (rc) {
		spill_run_abort(w);
		return -1;
	}
	return spill_run_end(w);
}

static int evict_failed(table *t);

/* Write the nv victims marked and drop them (closing: the final spill).
 * Returns 0 or -1 (errno). */
static int evict_marked(table *t, size_t nv, int closing)
{
	if (spill_dead(t, nv))
		return evict_failed(t);
	t->evictions += nv;
	if (sweep_dead(t, closing)) {
		t->failed = ENOMEM;   /* the victims are in the run: no going back */
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Mark every key as a victim; returns how many. */
static size_t mark_all(table *t)
{
	size_t nparts = table_partitions(t), nv = 0;
	for (size_t p = 0; p < nparts; p++)
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++) {
			table_entry *e = &t->hot.parts[p].slots[i];
			if (e->count) {
				e->clock = CLOCK_DEAD;
				nv++;
			}
		}
	return nv;
}

/* A run could not be written: keep the victims resident (the table stays
 * whole and consistent) and refuse new keys from now on.  Returns -1 with
 * errno kept. */
static int evict_failed(table *t)
{
	int err = errno ? errno : EIO;
	size_t nparts = table_partitions(t);
	for (size_t p = 0; p < nparts; p++)
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++)
			if (t->hot.parts[p].slots[i].clock == CLOCK_DEAD)
				t->hot.parts[p].slots[i].clock = 0;
	t->failed = err;
	errno = err;
	return -1;
}

/* Evict least recently used keys until the table holds at most EVICT_TO of
 * its budget.  The victims are marked in place, then copied out a
 * partition at a time.  When keys have hardly recurred since the last
 * eviction (recurring), all are evicted: no pool compaction, no survivors
 * to move.  Returns 0 or -1 (errno set). */
static int evict(table *t)
{
	int all = !recurring(t);
	t->hits_mark = t->hot.hits;
	t->misses_mark = t->misses;
	if (all)
		return evict_marked(t, mark_all(t), 0);
	t->keep_cap = 0;
	uint64_t used = atomic_load_explicit(&t->slot_bytes, memory_order_relaxed) + pool_bytes(t->pool);
	uint64_t goal = t->budget / 100 * EVICT_TO;
	uint64_t need = used > goal ? used - goal : 0;
	size_t nparts = table_partitions(t), total = 0, nv = 0;
	for (size_t p = 0; p < nparts; p++)
		total += t->hot.parts[p].count;
	uint64_t freed = 0;
	/* A key costs its bytes and, at half load, two slots. */
	size_t slot_cost = 2 * sizeof(table_entry);
	for (unsigned sweep = 0; sweep <= CLOCK_MAX + 1 && freed < need && nv < total; sweep++) {
		for (size_t step = 0; step < nparts && freed < need; step++) {
			table_part *pt = &t->hot.parts[t->hand_part];
			for (size_t i = t->hand_slot; i <= pt->mask && freed < need; i++) {
				table_entry *e = &pt->slots[i];
				t->hand_slot = i + 1;
				if (!e->count || e->clock == CLOCK_DEAD)
					continue;
				if (e->clock) {
					e->clock--;
					continue;
				}
				e->clock = CLOCK_DEAD;
				nv++;
				freed += e->len + slot_cost;
			}
			if (t->hand_slot > pt->mask) {
				t->hand_part = (t->hand_part + 1) & (nparts - 1);
				t->hand_slot = 0;
			}
		}
	}
	return evict_marked(t, nv, 0);
}

int table_spill_all(table *t)
{
	uint64_t evictions = t->evictions;
	int rc = evict_marked(t, mark_all(t), 1);
	t->evictions = evictions;   /* the final spill is not an eviction */
	return rc;
}

int table_merge_partition(table *dst, table *src, unsigned p)
{
	table_part *sp = &src->hot.parts[p], *dp = &dst->hot.parts[p];
	for (size_t i = 0; i <= sp->mask; i++) {
		table_entry *e = &sp->slots[i];
		if (!e->count)
			continue;
		size_t j = e->hash & dp->mask;
		table_entry *d;
		for (;;) {
			d = &dp->slots[j];
			if (!d->count || (d->hash == e->hash && d->len == e->len &&
					memcmp(d->key, e->key, e->len) == 0))
				break;
			j = (j + 1) & dp->mask;
		}
		if (d->count) {
			d->count += e->count;
			continue;
		}
		*d = *e;
		dp->count++;
		if (dp->count * 2 > dp->mask + 1 && part_rebuild(dst, dp, (dp->mask + 1) * 2))
			return -1;
	}
	part_free(src, sp);
	/* Leave src usable (and its size honest) after the merge. */
	if (part_alloc(src, sp, PART_MIN))
		return -1;
	return 0;
}

int table_each(const table *t, unsigned p, int (*fn)(void *ctx, const table_entry *e), void *ctx)
{
	const table_part *pt = &t->hot.parts[p];
	for (size_t i = 0; i <= pt->mask; i++)
		if (pt->slots[i].count) {
			int rc = fn(ctx, &pt->slots[i]);
			if (rc)
				return rc;
		}
	return 0;
}
