/*
 * table.c - partitioned open-addressing counting table with CLOCK eviction
 * into spill runs (see table.h).
 *
 * Layout: 1 << part_bits partitions chosen by the hash's top bits; each is a
 * power-of-two array of 32-byte slots probed linearly from the hash's low
 * bits, doubled when more than three quarters full (PART_FULL).  A slot is
 * empty when its count is 0 (every counted key has a count of at least 1).
 * Key bytes live in the table's pool; a slot holds the full 64-bit hash, so
 * a probe touches key bytes only when the hashes are equal.
 *
 * Eviction: every hit raises a slot's clock (up to 3); when the slots and
 * keys outgrow the budget, a clock hand sweeps the slots, taking those at 0
 * and lowering the others, until half the budget is free.  The victims go to
 * one run sorted by (hash, key), the pool is compacted in place and each
 * partition rebuilt, so the cost per evicted key stays small and the keys
 * that keep being hit stay resident.
 *
 * Keys that do not recur (fewer hits than an eighth of the new keys since
 * the last eviction, such as the bigrams of a large vocabulary) are all
 * evicted, and the table then appends new keys to a list per group
 * (range, or partition in hash order) instead of placing them in slots:
 * sorting a list, adding up the equal keys that are next to each other and
 * writing it as a run is cheaper than probing, rebuilding and sweeping
 * slots that would all be evicted anyway, and a listed key costs one
 * 32-byte item where a slotted one costs more than a slot.  When a flushed
 * list shows that keys recur, the table goes back to its slots.
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
#include "sketch.h"
#include "spill.h"

#define CLOCK_MAX   TABLE_CLOCK_MAX
#define CLOCK_DEAD  0xffffffffu
#define PART_MIN    16u
/* A partition of cap slots holding count keys is doubled past three
 * quarters.  Doubled at half, the slots of 21.5M distinct bigrams took
 * 2.15 GB (100 bytes a key, most partitions just doubled to a third full)
 * where they take 1.08 GB, and counting them 3.6-3.9 s where it takes
 * 2.7 s, fresh pages being most of the cost; the longer probes cost kjv's
 * words 0.2% more instructions.  A partition rebuilt after an eviction is
 * sized at most half full, so that it has room before it doubles. */
#define PART_FULL(count, cap) ((count) * 4 > (cap) * 3)
/* Evict when slots and keys pass EVICT_AT percent of the budget, down to
 * EVICT_TO percent: the rest is headroom for the eviction's temporaries. */
#define EVICT_AT    80u
#define EVICT_TO    40u

/* A group's keys in append mode, in the order they came. */
typedef struct append_list {
	keysort_item *v;
	size_t        n, cap;
} append_list;

struct table {
	table_hot        hot;        /* first: the inline table_add reads it */
	unsigned         part_bits;
	pool            *pool;
	uint64_t         budget;
	spill           *spill;
	size_t           scratch_key; /* an eviction's temporaries per key held */
	_Atomic size_t   slot_bytes; /* partitions are released concurrently */
	_Atomic uint64_t size;
	_Atomic uint64_t misses;     /* a key's first insert, and again after its eviction */
	uint64_t         evictions;
	sketch          *seen;       /* every key inserted, evicted or not */
	uint64_t         hits_mark, misses_mark;  /* hits and misses at the last eviction */
	int              failed;     /* errno of a failed eviction: sticky */
	unsigned         hand_part;  /* where the clock hand stopped */
	size_t           hand_slot;
	/* Append mode (keys that do not recur): the slots stay empty, and new
	 * keys go to the list of their group (table_add_new). */
	int              append;
	unsigned         nranges;    /* the spill's key ranges; 0: hash order */
	unsigned         ngroups;    /* key ranges, or else partitions */
	append_list     *lists;
	uint16_t        *group_of;   /* partition -> group */
	size_t           list_bytes; /* the lists' capacity, in bytes */
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
	table *t = mem_calloc_lines(MEM_TABLE, sizeof *t);
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
	t->nranges = nr;
	if (nr)
		t->scratch_key = (sizeof(keysort_item) + nr - 1) / nr;
	size_t nparts = (size_t)1 << t->part_bits;
	/* Blocks small enough that a tight budget still holds several. */
	size_t block = 256 * 1024;
	if (t->budget && t->budget / 64 < block)
		block = (size_t)(t->budget / 64);
	t->pool = pool_create(block);
	t->hot.parts = mem_calloc(MEM_TABLE, nparts, sizeof *t->hot.parts);
	if (cfg->sketch)
		t->seen = mem_calloc(MEM_TABLE, 1, sizeof *t->seen);
	if (!t->pool || !t->hot.parts || (cfg->sketch && !t->seen)) {
		table_destroy(t);
		return NULL;
	}
	for (size_t p = 0; p < nparts; p++)
		if (part_alloc(t, &t->hot.parts[p], PART_MIN)) {
			table_destroy(t);
			return NULL;
		}
	if (t->budget && t->spill) {
		t->ngroups = nr ? nr : (unsigned)nparts;
		t->lists = mem_calloc(MEM_TABLE, t->ngroups, sizeof *t->lists);
		t->group_of = mem_alloc(MEM_TABLE, nparts * sizeof *t->group_of);
		if (!t->lists || !t->group_of) {
			table_destroy(t);
			return NULL;
		}
		for (unsigned g = 0; g < t->ngroups; g++)
			for (unsigned p = spill_range_start((unsigned)nparts, t->ngroups, g);
			     p < spill_range_start((unsigned)nparts, t->ngroups, g + 1); p++)
				t->group_of[p] = (uint16_t)g;
	}
	return t;
}

/* Give back the lists' memory (append mode over, or the table closing). */
static void lists_free(table *t)
{
	for (unsigned g = 0; g < t->ngroups; g++) {
		append_list *l = &t->lists[g];
		if (l->cap)
			mem_free(MEM_TABLE, l->v, l->cap * sizeof *l->v);
		*l = (append_list){ 0 };
	}
	t->list_bytes = 0;
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
	if (t->lists) {
		lists_free(t);
		mem_free(MEM_TABLE, t->lists, t->ngroups * sizeof *t->lists);
	}
	if (t->group_of)
		mem_free(MEM_TABLE, t->group_of, ((size_t)1 << t->part_bits) * sizeof *t->group_of);
	if (t->seen)
		mem_free(MEM_TABLE, t->seen, sizeof *t->seen);
	pool_destroy(t->pool);
	mem_free(MEM_TABLE, t, sizeof *t);
}

unsigned table_partitions(const table *t)
{
	return 1u << t->part_bits;
}

/* Only the table's thread changes misses: the others read it. */
static uint64_t misses_of(const table *t)
{
	return atomic_load_explicit(&t->misses, memory_order_relaxed);
}

uint64_t table_seen_most(const table *t)
{
	return misses_of(t);
}

const sketch *table_seen(const table *t)
{
	return t->seen;
}

uint64_t table_size(const table *t)
{
	return atomic_load_explicit(&t->size, memory_order_relaxed);
}

void table_counters(const table *t, uint64_t *hits, uint64_t *misses, uint64_t *evictions)
{
	*hits = t->hot.hits;
	*misses = misses_of(t);
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
static int append_flush(table *t, int closing);

/* Have keys recurred since the last eviction?  Not when there were fewer
 * hits than an eighth of the new keys (near-unique keys such as the
 * bigrams of a large vocabulary): keeping any of them then buys nothing. */
static int recurring(const table *t)
{
	return t->hot.hits - t->hits_mark >= (misses_of(t) - t->misses_mark) / 8;
}

/* Bytes held against the budget: slots, keys, lists, and in key order the
 * eviction's sort scratch for each slotted key. */
static uint64_t held_bytes(const table *t)
{
	uint64_t b = atomic_load_explicit(&t->slot_bytes, memory_order_relaxed) +
		pool_bytes(t->pool) + t->list_bytes;
	return t->append ? b : b + table_size(t) * t->scratch_key;
}

static int over_budget(const table *t, uint64_t more)
{
	return held_bytes(t) + more > t->budget / 100 * EVICT_AT;
}

/* Make room in list l for one more key: grow it by half, or, when that
 * would pass the budget, flush all lists (which may end append mode).
 * Returns 0 or -1 (errno set). */
static int list_room(table *t, append_list *l)
{
	if (l->n < l->cap)
		return 0;
	size_t cap = l->cap ? l->cap + l->cap / 2 : 64;
	size_t more = (cap - l->cap) * sizeof *l->v;
	if (l->cap && over_budget(t, more)) {
		if (append_flush(t, 0))
			return -1;
		if (!t->append || l->n < l->cap)
			return 0;
	}
	keysort_item *v = mem_realloc(MEM_TABLE, l->v, l->cap * sizeof *l->v, cap * sizeof *l->v);
	if (!v) {
		errno = ENOMEM;
		return -1;
	}
	l->v = v;
	l->cap = cap;
	t->list_bytes += more;
	return 0;
}

int table_add_new(table *t, table_part *pt, table_entry *e, const char *key, size_t len,
	uint64_t hash, uint64_t n)
{
	if (t->failed) {
		errno = t->failed;
		return -1;
	}
	/* In append mode the slots stay empty, e with them (a flush does not
	 * touch them): when making room ends append mode, e takes the key. */
	append_list *l = NULL;
	if (t->append) {
		l = &t->lists[t->group_of[hash >> t->hot.shift]];
		if (list_room(t, l))
			return -1;
	}
	/* The key is copied before the slot is written, so a fault while reading
	 * it (a mapped input that shrank) leaves the table consistent. */
	const char *k = pool_intern(t->pool, key, len);
	if (!k) {
		errno = ENOMEM;
		return -1;
	}
	atomic_store_explicit(&t->misses, misses_of(t) + 1, memory_order_relaxed);
	atomic_store_explicit(&t->size, table_size(t) + 1, memory_order_relaxed);
	if (t->seen)
		sketch_add(t->seen, hash);
	if (t->append) {
		/* In hash order the item's prefix is the hash (the order of the
		 * run); in key order, the key's prefix. */
		uint64_t prefix = t->nranges ? keysort_prefix(k, len) : hash;
		l->v[l->n++] = (keysort_item){ n, prefix, k, (uint32_t)len };
		return over_budget(t, 0) ? append_flush(t, 0) : 0;
	}
	e->key = k;
	e->len = (uint32_t)len;
	e->hash = hash;
	e->clock = 0;
	e->count = n;
	pt->count++;
	if (PART_FULL(pt->count, pt->mask + 1) && part_rebuild(t, pt, (pt->mask + 1) * 2)) {
		errno = ENOMEM;
		return -1;
	}
	if (t->budget && t->spill && over_budget(t, 0))
		return evict(t);
	return 0;
}

static uint64_t entry_hash(const void *v)
{
	return ((const table_entry *)v)->hash;
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

void table_sort_entries(table_entry *v, size_t n)
{
	radix_sort64_ties(v, n, sizeof *v, entry_hash, table_entry_cmp, MEM_SPILL);
}

static uint64_t item_prefix(const void *v)
{
	return ((const keysort_item *)v)->prefix;
}

/* (hash, key bytes) order of items whose prefix is their hash. */
static int item_hash_cmp(const void *a, const void *b)
{
	const keysort_item *x = a, *y = b;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return keysort_bytes_cmp(x->key, x->len, y->key, y->len);
}

/* Sort items whose prefix is their hash by (hash, key). */
static void sort_by_hash(keysort_item *v, size_t n)
{
	radix_sort64_ties(v, n, sizeof *v, item_prefix, item_hash_cmp, MEM_TABLE);
}

/* Append sorted items to a run, adding up the equal keys next to each
 * other (a list in append mode may hold a key more than once).  In key
 * order each record carries range_hash; in hash order the item's prefix is
 * its hash.  Adds the records written to *written.  Returns 0 or -1. */
static int write_items(spill_writer *w, const keysort_item *v, size_t n, int key_order,
	uint64_t range_hash, uint64_t *written)
{
	size_t out = 0;
	for (size_t i = 0; i < n;) {
		/* The keys lie all over the pool: fetch ahead. */
		if (i + PREFETCH_FAR < n)
			__builtin_prefetch(v[i + PREFETCH_FAR].key);
		uint64_t count = v[i].count;
		size_t j = i + 1;
		/* In key order the prefixes are as the sort left them: equal
		 * for equal keys all the same (keysort.h). */
		while (j < n && v[j].prefix == v[i].prefix && v[j].len == v[i].len &&
				memcmp(v[j].key, v[i].key, v[i].len) == 0)
			count += v[j++].count;
		spill_rec r = { key_order ? range_hash : v[i].prefix, count, v[i].key, v[i].len };
		if (spill_run_put(w, &r))
			return -1;
		out++;
		i = j;
	}
	*written += out;
	return 0;
}

/* Shrink every partition to PART_MIN, empty (every key was evicted). */
static int clear_all(table *t)
{
	size_t nparts = table_partitions(t);
	for (size_t p = 0; p < nparts; p++) {
		table_part *pt = &t->hot.parts[p];
		if (pt->mask + 1 == PART_MIN) {
			memset(pt->slots, 0, part_bytes(PART_MIN));
			pt->count = 0;
		} else if (part_rebuild(t, pt, PART_MIN)) {
			return -1;
		}
	}
	atomic_store_explicit(&t->size, 0, memory_order_relaxed);
	return 0;
}

/* Drop dead entries: compact the pool around the survivors, then rebuild
 * each partition at a size that fits what is left. */
static int sweep_dead(table *t)
{
	size_t nparts = table_partitions(t), live = 0;
	for (size_t p = 0; p < nparts; p++)
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++) {
			table_entry *e = &t->hot.parts[p].slots[i];
			live += e->count && e->clock != CLOCK_DEAD;
		}
	if (live == 0) {
		pool_compact(t->pool, NULL, 0);
		return clear_all(t);
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
 * partition at a time (it holds one partition's).  Returns 0 or -1. */
static int write_by_hash(table *t, spill_writer *w, unsigned p0, unsigned p1, keysort_item *it)
{
	uint64_t written = 0;
	for (unsigned p = p0; p < p1; p++) {
		size_t k = 0;
		for (size_t i = 0; i <= t->hot.parts[p].mask; i++) {
			table_entry *e = &t->hot.parts[p].slots[i];
			if (e->count && e->clock == CLOCK_DEAD)
				it[k++] = (keysort_item){ e->count, e->hash, e->key, e->len };
		}
		sort_by_hash(it, k);
		if (write_items(w, it, k, 0, 0, &written))
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
	uint64_t written = 0;
	return write_items(w, it, k, 1, (uint64_t)p0 << t->hot.shift, &written);
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
	unsigned nparts = table_partitions(t), nr = t->nranges;
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
	keysort_item *v = mem_alloc(MEM_TABLE, most * sizeof *v);
	if (!v)
		return -1;
	spill_writer *w = spill_run_begin(t->spill);
	if (!w) {
		mem_free(MEM_TABLE, v, most * sizeof *v);
		return -1;
	}
	int rc = 0;
	for (unsigned g = 0; g < ngroups && !rc; g++) {
		unsigned p0 = spill_range_start(nparts, ngroups, g);
		unsigned p1 = spill_range_start(nparts, ngroups, g + 1);
		rc = nr ? write_by_key(t, w, p0, p1, v) : write_by_hash(t, w, p0, p1, v);
	}
	mem_free(MEM_TABLE, v, most * sizeof *v);
	if (rc) {
		spill_run_abort(w);
		return -1;
	}
	return spill_run_end(w);
}

/* Write the lists as one run, each group's sorted (by key in key order,
 * else by hash and key) with its equal keys added up, and empty them.  The
 * repeats found count as hits: when they are an eighth or more of the
 * distinct keys (recurring), append mode ends, as it does when closing
 * (the final spill, which is not an eviction).  A run that cannot be
 * written leaves the lists whole and fails the table from then on.
 * Returns 0 or -1 (errno set). */
static int append_flush(table *t, int closing)
{
	uint64_t held = table_size(t), written = 0;
	if (held) {
		unsigned nparts = table_partitions(t);
		spill_writer *w = spill_run_begin(t->spill);
		int rc = w ? 0 : -1;
		for (unsigned g = 0; g < t->ngroups && !rc; g++) {
			append_list *l = &t->lists[g];
			if (t->nranges) {
				keysort_by_key(l->v, l->n);
				uint64_t range_hash = (uint64_t)spill_range_start(nparts, t->ngroups, g) <<
					t->hot.shift;
				rc = write_items(w, l->v, l->n, 1, range_hash, &written);
			} else {
				sort_by_hash(l->v, l->n);
				rc = write_items(w, l->v, l->n, 0, 0, &written);
			}
		}
		if (w && rc)
			spill_run_abort(w);
		else if (w)
			rc = spill_run_end(w);
		if (rc) {
			t->failed = errno ? errno : EIO;
			errno = t->failed;
			return -1;
		}
	}
	t->hot.hits += held - written;
	atomic_store_explicit(&t->misses, misses_of(t) - (held - written), memory_order_relaxed);
	if (!closing)
		t->evictions += written;
	for (unsigned g = 0; g < t->ngroups; g++)
		t->lists[g].n = 0;
	pool_compact(t->pool, NULL, 0);
	atomic_store_explicit(&t->size, 0, memory_order_relaxed);
	if (closing || recurring(t)) {
		lists_free(t);
		t->append = 0;
	}
	t->hits_mark = t->hot.hits;
	t->misses_mark = misses_of(t);
	return 0;
}

static int evict_failed(table *t);

/* Write the nv victims marked and drop them.  Returns 0 or -1 (errno). */
static int evict_marked(table *t, size_t nv)
{
	if (spill_dead(t, nv))
		return evict_failed(t);
	t->evictions += nv;
	if (sweep_dead(t)) {
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
 * eviction (recurring), all are evicted (no pool compaction, no survivors
 * to move) and the table goes on in append mode.  Returns 0 or -1 (errno
 * set). */
static int evict(table *t)
{
	int all = !recurring(t);
	t->hits_mark = t->hot.hits;
	t->misses_mark = misses_of(t);
	if (all) {
		if (evict_marked(t, mark_all(t)))
			return -1;
		t->append = 1;
		return 0;
	}
	uint64_t used = atomic_load_explicit(&t->slot_bytes, memory_order_relaxed) + pool_bytes(t->pool);
	uint64_t goal = t->budget / 100 * EVICT_TO;
	uint64_t need = used > goal ? used - goal : 0;
	size_t nparts = table_partitions(t), total = 0, nv = 0;
	for (size_t p = 0; p < nparts; p++)
		total += t->hot.parts[p].count;
	uint64_t freed = 0;
	/* A key costs its bytes and, in a partition rebuilt at half load,
	 * two slots. */
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
	return evict_marked(t, nv);
}

int table_spill_all(table *t)
{
	if (t->append)
		return append_flush(t, 1);
	uint64_t evictions = t->evictions;
	int rc = evict_marked(t, mark_all(t));
	t->evictions = evictions;   /* the final spill is not an eviction */
	return rc;
}

int table_gather_partition(table *const *t, unsigned nt, unsigned p, table_gather *g)
{
	size_t most = 0;
	for (unsigned i = 0; i < nt; i++)
		most += t[i]->hot.parts[p].count;
	g->n = 0;
	if (most >= UINT32_MAX) {   /* the index holds positions in 32 bits */
		errno = ENOMEM;
		return -1;
	}
	if (most > g->cap) {
		table_entry *v = mem_realloc(MEM_TABLE, g->v, g->cap * sizeof *v, most * sizeof *v);
		if (!v)
			return -1;
		g->v = v;
		g->cap = most;
	}
	if (nt == 1) {
		const table_part *pt = &t[0]->hot.parts[p];
		for (size_t i = 0; i <= pt->mask; i++)
			if (pt->slots[i].count)
				g->v[g->n++] = pt->slots[i];
		return 0;
	}
	/* At most half full; 4-byte slots keep it in the cache where the
	 * tables' partitions would not be. */
	size_t ns = PART_MIN;
	while (ns < 2 * most)
		ns *= 2;
	if (ns > g->nindex) {
		mem_free(MEM_TABLE, g->index, g->nindex * sizeof *g->index);
		g->nindex = 0;
		g->index = mem_alloc(MEM_TABLE, ns * sizeof *g->index);
		if (!g->index)
			return -1;
		g->nindex = ns;
	}
	memset(g->index, 0, ns * sizeof *g->index);
	size_t mask = ns - 1;
	for (unsigned k = 0; k < nt; k++) {
		const table_part *pt = &t[k]->hot.parts[p];
		for (size_t i = 0; i <= pt->mask; i++) {
			const table_entry *e = &pt->slots[i];
			if (!e->count)
				continue;
			for (size_t j = e->hash & mask;; j = (j + 1) & mask) {
				uint32_t x = g->index[j];
				if (!x) {
					g->v[g->n++] = *e;
					g->index[j] = (uint32_t)g->n;
					break;
				}
				table_entry *d = &g->v[x - 1];
				if (table_entry_is(d, e->key, e->len, e->hash)) {
					d->count += e->count;
					break;
				}
			}
		}
	}
	return 0;
}

int table_release_partition(table *t, unsigned p)
{
	table_part *pt = &t->hot.parts[p];
	part_free(t, pt);
	return part_alloc(t, pt, PART_MIN);
}

void table_gather_free(table_gather *g)
{
	mem_free(MEM_TABLE, g->v, g->cap * sizeof *g->v);
	mem_free(MEM_TABLE, g->index, g->nindex * sizeof *g->index);
	*g = (table_gather){ 0 };
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
