/*
 * test_table.c - the counting table and the key pool: growth, collisions,
 * millions of keys, parallel partition merge, compaction, and eviction into
 * runs that merge back to exact counts.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keysort.h"
#include "mem.h"
#include "pool.h"
#include "sketch.h"
#include "spill.h"
#include "table.h"
#include "testutil.h"

static table *new_table(unsigned bits, uint64_t budget, spill *sp)
{
	table_config c = { .part_bits = bits, .budget = budget, .spill = sp, .sketch = 1 };
	table *t = table_create(&c);
	ck_assert_ptr_nonnull(t);
	return t;
}

static int add(table *t, const char *k)
{
	return table_add(t, k, strlen(k), table_hash(k, strlen(k)), 1);
}

typedef struct found {
	const char *key;
	uint64_t    count;
	int         seen;
	uint64_t    total, entries;
} found;

static int find_fn(void *ctx, const table_entry *e)
{
	found *f = ctx;
	f->total += e->count;
	f->entries++;
	if (f->key && e->len == strlen(f->key) && memcmp(e->key, f->key, e->len) == 0) {
		f->count = e->count;
		f->seen++;
	}
	return 0;
}

static found lookup(table *t, const char *key)
{
	found f = { .key = key };
	for (unsigned p = 0; p < table_partitions(t); p++)
		table_each(t, p, find_fn, &f);
	return f;
}

/* table_hash is XXH3_64bits, whatever path it takes, and so is
 * table_hash_class for short keys. */
START_TEST(hash_is_xxh3)
{
	char buf[64];
	for (size_t len = 0; len <= sizeof buf; len++) {
		for (int trial = 0; trial < 50; trial++) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (char)(rand() & 0xff);
			ck_assert_uint_eq(table_hash(buf, len), XXH3_64bits(buf, len));
			if (len >= 1 && len <= 16)
				ck_assert_uint_eq(table_hash_class(buf, len, TABLE_HASH_CLASS(len)),
					XXH3_64bits(buf, len));
		}
	}
}
END_TEST

/* ---- Keys from their hashes (TABLE_HASH_EXACT) ---- */

static uint64_t unxorshift(uint64_t y, unsigned s)
{
	uint64_t x = y;
	for (unsigned i = 0; i < 64 / s + 1; i++)
		x = y ^ (x >> s);
	return x;
}

static uint64_t inverse_odd(uint64_t c)
{
	uint64_t v = c;   /* right to 3 bits; each step doubles them */
	for (int i = 0; i < 5; i++)
		v *= 2 - c * v;
	return v;
}

static uint64_t rotl(uint64_t x, unsigned r)
{
	return r ? x << r | x >> (64 - r) : x;
}

/* x ^ rotl(x, 49) ^ rotl(x, 24) is p(R) = 1 + R^49 + R^24, R the rotation
 * by one bit, R^64 = 1.  Over GF(2) squaring is linear, so p^8 = 1 + 1 +
 * R^8 = R^8 and p^64 = 1: the inverse is p^63 = p p^2 p^4 R^56. */
static uint64_t un_rotmix(uint64_t y)
{
	static const unsigned a[3] = { 49, 34, 4 }, b[3] = { 24, 48, 32 };
	for (int k = 0; k < 3; k++)
		y ^= rotl(y, a[k]) ^ rotl(y, b[k]);
	return rotl(y, 56);
}

/* The key of len bytes (0 to 8) whose hash is h, undoing XXH3's short
 * paths; returns its length, or -1 when h is no such key's hash. */
static int key_of_hash(uint64_t h, size_t len, uint8_t *key)
{
	const uint8_t *sec = XXH3_kSecret;
	if (len == 0)
		return h == XXH3_64bits("", 0) ? 0 : -1;
	if (len <= 3) {
		const uint64_t p2 = 0xC2B2AE3D27D4EB4FULL, p3 = 0x165667B19E3779F9ULL;
		uint64_t x = unxorshift(h, 32) * inverse_odd(p3);
		x = unxorshift(x, 29) * inverse_odd(p2);
		x = unxorshift(x, 33) ^ (XXH_readLE32(sec) ^ XXH_readLE32(sec + 4));
		if (x >> 32 || ((x >> 8) & 0xff) != len)
			return -1;
		key[0] = (uint8_t)(x >> 16);
		key[len >> 1] = (uint8_t)(x >> 24);
		key[len - 1] = (uint8_t)x;
		return (int)len;
	}
	const uint64_t mx = 0x9FB21C651E98DF25ULL;
	uint64_t x = unxorshift(h, 28) * inverse_odd(mx);
	x ^= (x >> 35) + len;
	x = un_rotmix(x * inverse_odd(mx));
	x ^= XXH_readLE64(sec + 8) ^ XXH_readLE64(sec + 16);
	uint32_t first = (uint32_t)(x >> 32), last = (uint32_t)x;
	memcpy(key + len - 4, &last, 4);   /* little-endian, as XXH_readLE32 */
	memcpy(key, &first, 4);
	return (int)len;
}

/* Every key of up to TABLE_HASH_EXACT bytes comes back from its hash and
 * length: no two such keys of one length share a hash.  All keys of 1 and
 * 2 bytes, one in 7 of 3 bytes, and random ones up to 8 bytes. */
START_TEST(short_keys_from_hashes)
{
	ck_assert_uint_eq(TABLE_HASH_EXACT, 8);
	uint8_t key[8], back[8];
	srand(7);
	for (size_t len = 0; len <= TABLE_HASH_EXACT; len++) {
		uint32_t n = len == 1 ? 256 : len == 2 ? 65536 : len == 3 ? (1u << 24) / 7 : 200000;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t v = len == 3 ? i * 7 : i;
			for (size_t j = 0; j < len; j++)
				key[j] = len <= 3 ? (uint8_t)(v >> (8 * j)) : (uint8_t)rand();
			memset(back, 0xee, sizeof back);
			/* Asserted only when wrong: a passing ck_assert costs a
			 * write to Check's log, millions of them minutes under TSan. */
			if (key_of_hash(table_hash(key, len), len, back) != (int)len ||
			    memcmp(back, key, len) != 0)
				ck_abort_msg("key %u of %zu bytes does not come back", i, len);
			if (len == 0)
				break;
		}
	}
	/* A hash that is not of a 2-byte key says so. */
	ck_assert_int_eq(key_of_hash(table_hash("abc", 3), 2, back), -1);
}
END_TEST

START_TEST(counts_and_growth)
{
	table *t = new_table(4, 0, NULL);
	char k[32];
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 100000; i++) {
			snprintf(k, sizeof k, "key%d", i);
			if (add(t, k) != 0)
				ck_abort_msg("add failed");
		}
	ck_assert_uint_eq(table_size(t), 100000);
	found f = lookup(t, "key77777");
	ck_assert_int_eq(f.seen, 1);
	ck_assert_uint_eq(f.count, 3);
	ck_assert_uint_eq(f.total, 300000);
	ck_assert_uint_eq(f.entries, 100000);
	uint64_t h, m, ev;
	table_counters(t, &h, &m, &ev);
	ck_assert_uint_eq(h, 200000);
	ck_assert_uint_eq(m, 100000);
	ck_assert_uint_eq(ev, 0);
	table_destroy(t);
	ck_assert_uint_eq(mem_current(MEM_TABLE), 0);
	ck_assert_uint_eq(mem_current(MEM_POOL), 0);
}
END_TEST

/* The state a thread writes for every key (a table, its pool) sits on
 * cache lines of its own: mem_calloc_lines gives zeroed blocks that start
 * on a line, counted at the size asked for. */
START_TEST(lines_of_their_own)
{
	uint64_t base = mem_current(MEM_OTHER);
	static const size_t sizes[] = { 1, 8, 63, 64, 65, 200, 4096 };
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		size_t n = sizes[i], lines = (n + MEM_LINE - 1) / MEM_LINE * MEM_LINE;
		unsigned char *p = mem_calloc_lines(MEM_OTHER, n);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % MEM_LINE, 0);
		ck_assert_uint_eq(mem_current(MEM_OTHER) - base, n);
		/* Zeroed to the end of its last line, which it owns. */
		for (size_t j = 0; j < lines; j++)
			ck_assert_uint_eq(p[j], 0);
		memset(p, 0xa5, lines);
		mem_free(MEM_OTHER, p, n);
		ck_assert_uint_eq(mem_current(MEM_OTHER), base);
	}
	table *t = new_table(4, 0, NULL);
	ck_assert_uint_eq((uintptr_t)t % MEM_LINE, 0);
	table_destroy(t);
	/* An injected failure is taken like any other allocation's. */
	mem_fail_after(1);
	ck_assert_ptr_null(mem_calloc_lines(MEM_OTHER, 10));
	ck_assert_uint_eq(mem_current(MEM_OTHER), base);
}
END_TEST

/* Different keys under one hash must stay apart; the empty key counts.
 * The keys are longer than TABLE_HASH_EXACT: shorter ones cannot share a
 * hash (short_keys_from_hashes), and the table compares them by hash and
 * length alone. */
START_TEST(collisions_and_empty_key)
{
	table *t = new_table(2, 0, NULL);
	const uint64_t h = 0x123456789abcdef0ull;
	for (int i = 0; i < 1000; i++) {
		char k[32];
		int n = snprintf(k, sizeof k, "collided-%d", i);
		ck_assert_int_gt(n, TABLE_HASH_EXACT);
		ck_assert_int_eq(table_add(t, k, (size_t)n, h, (uint64_t)i + 1), 0);
	}
	ck_assert_int_eq(table_add(t, "collided-5", 10, h, 10), 0);
	ck_assert_int_eq(table_add(t, "", 0, table_hash("", 0), 1), 0);
	ck_assert_int_eq(table_add(t, "", 0, table_hash("", 0), 1), 0);
	/* A key that is a prefix of another, same hash. */
	ck_assert_int_eq(table_add(t, "collided-1", 9, h, 1), 0);
	ck_assert_uint_eq(table_size(t), 1002);
	ck_assert_uint_eq(lookup(t, "collided-5").count, 16);
	ck_assert_uint_eq(lookup(t, "").count, 2);
	ck_assert_uint_eq(lookup(t, "collided-").count, 1);
	ck_assert_uint_eq(lookup(t, "collided-999").count, 1000);
	table_destroy(t);
}
END_TEST

START_TEST(millions_of_keys)
{
	table *t = new_table(8, 0, NULL);
	char k[32];
	for (uint32_t i = 0; i < 3000000; i++) {
		int n = snprintf(k, sizeof k, "%08x", i * 2654435761u);
		if (table_add(t, k, (size_t)n, table_hash(k, (size_t)n), 1) != 0)
			ck_abort_msg("table_add failed at key %u", i);
	}
	ck_assert_uint_eq(table_size(t), 3000000);
	found f = lookup(t, NULL);
	ck_assert_uint_eq(f.entries, 3000000);
	ck_assert_uint_eq(f.total, 3000000);
	table_destroy(t);
}
END_TEST

/* Entries by key bytes (length first). */
static int cmp_entry_key(const void *a, const void *b)
{
	const table_entry *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->key, y->key, x->len);
}

START_TEST(gather_partitions)
{
	/* Three tables: w0..w9999 in all three, w10000..w24999 in two. */
	table *t[3] = { new_table(4, 0, NULL), new_table(4, 0, NULL), new_table(4, 0, NULL) };
	char k[32];
	for (int i = 0; i < 60000; i++) {
		snprintf(k, sizeof k, "w%d", i % 25000);
		if (add(t[i % 3], k) != 0)
			ck_abort_msg("add failed");
	}
	ck_assert_int_eq(add(t[1], "only-in-one"), 0);
	table_gather g = { 0 };
	uint64_t entries = 0, total = 0, w7 = 0, one = 0;
	for (unsigned p = 0; p < table_partitions(t[0]); p++) {
		ck_assert_int_eq(table_gather_partition(t, 3, p, &g), 0);
		for (size_t i = 0; i < g.n; i++) {
			entries++;
			total += g.v[i].count;
			if (g.v[i].len == 2 && !memcmp(g.v[i].key, "w7", 2))
				w7 = g.v[i].count;
			if (g.v[i].len == 11 && !memcmp(g.v[i].key, "only-in-one", 11))
				one = g.v[i].count;
		}
		/* Each key once in its partition: no two equal once sorted. */
		qsort(g.v, g.n, sizeof g.v[0], cmp_entry_key);
		for (size_t i = 1; i < g.n; i++)
			if (cmp_entry_key(&g.v[i - 1], &g.v[i]) == 0)
				ck_abort_msg("a key twice in partition %u", p);
	}
	ck_assert_uint_eq(entries, 25001);
	ck_assert_uint_eq(total, 60001);
	ck_assert_uint_eq(w7, 3);
	ck_assert_uint_eq(one, 1);
	/* One table alone: its own entries; the tables are left as they were. */
	entries = total = 0;
	for (unsigned p = 0; p < table_partitions(t[0]); p++) {
		ck_assert_int_eq(table_gather_partition(t + 1, 1, p, &g), 0);
		entries += g.n;
		for (size_t i = 0; i < g.n; i++)
			total += g.v[i].count;
	}
	ck_assert_uint_eq(entries, 20001);
	ck_assert_uint_eq(total, 20001);
	ck_assert_uint_eq(lookup(t[0], NULL).total, 20000);
	table_gather_free(&g);
	for (int i = 0; i < 3; i++)
		table_destroy(t[i]);
}
END_TEST

START_TEST(sort_entries_ties)
{
	/* table_sort_entries gives table_entry_cmp's order, the keys of equal
	 * hashes (made here: XXH3 gives none in a test's keys) by their bytes,
	 * at sizes on both sides of the radix sort's threshold. */
	static char keys[3000][8];
	table_entry v[3000], want[3000];
	uint64_t seed = 7;
	for (size_t n = 0; n <= 3000; n += n < 300 ? 1 : 700) {
		for (size_t i = 0; i < n; i++) {
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			size_t len = 1 + (seed >> 61);
			for (size_t j = 0; j < len; j++)
				keys[i][j] = (char)('a' + (seed >> (8 + 5 * j)) % 3);
			/* A few hashes, shared by many keys, some of them high. */
			uint64_t h = (seed >> 40) % 13;
			v[i] = (table_entry){ .key = keys[i], .len = (uint32_t)len, .count = i + 1,
				.hash = h & 1 ? h : UINT64_MAX - h * 977 };
		}
		memcpy(want, v, n * sizeof *v);
		qsort(want, n, sizeof *want, table_entry_cmp);
		table_sort_entries(v, n);
		for (size_t i = 0; i < n; i++) {
			ck_assert_uint_eq(v[i].hash, want[i].hash);
			ck_assert_uint_eq(v[i].len, want[i].len);
			ck_assert(!memcmp(v[i].key, want[i].key, v[i].len));
		}
	}
}
END_TEST

START_TEST(pool_compacts_in_place)
{
	pool *p = pool_create(4096);
	enum { N = 5000 };
	const char *keys[N];
	size_t lens[N];
	char buf[3000];
	for (int i = 0; i < N; i++) {
		/* Mostly short keys, some large enough to get their own block. */
		size_t len = (size_t)(i % 97 == 0 ? 1500 + i % 700 : i % 40);
		for (size_t j = 0; j < len; j++)
			buf[j] = (char)('a' + (i + (int)j) % 26);
		keys[i] = pool_intern(p, buf, len);
		ck_assert_ptr_nonnull(keys[i]);
		lens[i] = len;
	}
	size_t before = pool_bytes(p);
	/* Keep every third key. */
	pool_ref refs[N];
	size_t n = 0;
	for (int i = 0; i < N; i += 3)
		refs[n++] = (pool_ref){ &keys[i], lens[i] };
	ck_assert_int_eq(pool_compact(p, refs, n), 0);
	ck_assert_uint_lt(pool_bytes(p), before / 2 + 8192);
	for (int i = 0; i < N; i += 3) {
		size_t len = lens[i];
		for (size_t j = 0; j < len; j++)
			ck_assert_int_eq(keys[i][j], (char)('a' + (i + (int)j) % 26));
	}
	/* The pool keeps working after compaction. */
	ck_assert_ptr_nonnull(pool_intern(p, "after", 5));
	ck_assert_int_eq(pool_compact(p, refs, 0), 0);
	pool_destroy(p);
	ck_assert_uint_eq(mem_current(MEM_POOL), 0);
}
END_TEST

/* POOL_READ bytes can be read from any short key, also the last key of a
 * block and the empty key (under AddressSanitizer an overrun fails). */
START_TEST(short_keys_readable)
{
	pool *p = pool_create(4096);
	unsigned sum = 0;
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(i % (POOL_READ + 1));
		char key[POOL_READ] = { 0 }, copy[POOL_READ];
		memset(key, 'a' + i % 26, len);
		const char *k = pool_intern(p, key, len);
		ck_assert_ptr_nonnull(k);
		memcpy(copy, k, POOL_READ);
		ck_assert_int_eq(memcmp(copy, key, len), 0);
		sum += (unsigned char)copy[POOL_READ - 1];
	}
	ck_assert_uint_ge(sum, 0);
	pool_destroy(p);
}
END_TEST

typedef struct collected {
	table_entry *v;
	size_t       n, cap;
} collected;

static int collect_fn(void *ctx, const table_entry *e)
{
	collected *c = ctx;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 1024;
		c->v = realloc(c->v, c->cap * sizeof *c->v);
		ck_assert_ptr_nonnull(c->v);
	}
	c->v[c->n++] = *e;
	return 0;
}

/* The next key id of a test stream (xorshift): uniform over [0, range), or
 * with zipf nine in ten among the first 50. */
static uint64_t next_id(uint64_t *x, int zipf, uint64_t range)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return zipf ? (*x % 1000 < 900 ? *x % 50 : *x % range) : *x % range;
}

static int entry_key_cmp(const void *a, const void *b)
{
	const table_entry *x = a, *y = b;
	return keysort_bytes_cmp(x->key, x->len, y->key, y->len);
}

/* The runs of sp, merged, hold exactly the counts of ref (16 partitions):
 * in hash order (nr 0) one merge in (hash, key) order; in key order (nr
 * ranges) the merge of each range in key order, each key in its range.
 * Returns the keys read. */
static uint64_t check_runs(spill *sp, const table *ref, unsigned nr)
{
	uint64_t keys = 0, total = 0;
	spill_ranges *g = nr ? spill_ranges_open(sp, nr) : NULL;
	ck_assert(!nr || g);
	for (unsigned j = 0; j < (nr ? nr : 1); j++) {
		unsigned p0 = nr ? spill_range_start(16, nr, j) : 0;
		unsigned p1 = nr ? spill_range_start(16, nr, j + 1) : 16;
		collected c = { 0 };
		for (unsigned p = p0; p < p1; p++)
			table_each(ref, p, collect_fn, &c);
		qsort(c.v, c.n, sizeof *c.v, nr ? entry_key_cmp : table_entry_cmp);
		spill_merge *mg = nr ? spill_ranges_merge(g, p0, p1) : spill_merge_open(sp);
		ck_assert_ptr_nonnull(mg);
		spill_rec r;
		size_t i = 0;
		while (spill_merge_next(mg, &r) == 1) {
			ck_assert_uint_lt(i, c.n);
			const table_entry *want = &c.v[i++];
			if (!nr)
				ck_assert_uint_eq(r.hash, want->hash);
			ck_assert_uint_eq(r.len, want->len);
			ck_assert_int_eq(memcmp(r.key, want->key, r.len), 0);
			ck_assert_uint_eq(r.count, want->count);
			ck_assert_uint_ge(r.hash >> 60, p0);
			ck_assert_uint_lt(r.hash >> 60, p1);
			total += r.count;
		}
		ck_assert_uint_eq(i, c.n);
		keys += i;
		spill_merge_close(mg);
		free(c.v);
	}
	if (g)
		spill_ranges_close(g);
	ck_assert_uint_eq(keys, table_size(ref));
	return total;
}

static spill *new_spill(unsigned nr)
{
	char err[256];
	spill *sp = spill_create(NULL, err, sizeof err);
	ck_assert_msg(sp != NULL, "%s", err);
	spill_set_partitions(sp, 4);
	if (nr)
		spill_set_key_order(sp, nr);
	return sp;
}

/* Spill what t holds and check all its runs against ref, which counted
 * total keys; then free the tables and the spill. */
static void spill_and_check(table *t, table *ref, spill *sp, unsigned nr, uint64_t total)
{
	ck_assert_int_eq(table_spill_all(t), 0);
	ck_assert_uint_eq(check_runs(sp, ref, nr), total);
	table_destroy(t);
	table_destroy(ref);
	spill_destroy(sp);
}

/* A table under a tight budget evicts into runs; resident keys plus runs,
 * merged, give exactly the unbounded counts, and memory stays bounded. */
static void evict_and_compare(int zipf, uint64_t *evictions)
{
	spill *sp = new_spill(0);
	const uint64_t budget = 256 * 1024;
	table *t = new_table(4, budget, sp), *ref = new_table(4, 0, NULL);
	uint64_t x = 88172645463325252ull;
	char k[32];
	for (int i = 0; i < 300000; i++) {
		uint64_t id = next_id(&x, zipf, 200000);
		int n = snprintf(k, sizeof k, "k%llu", (unsigned long long)id);
		uint64_t h = table_hash(k, (size_t)n);
		ck_assert_int_eq(table_add(t, k, (size_t)n, h, 1), 0);
		ck_assert_int_eq(table_add(ref, k, (size_t)n, h, 1), 0);
	}
	uint64_t h, m;
	table_counters(t, &h, &m, evictions);
	ck_assert_uint_gt(*evictions, 0);
	spill_and_check(t, ref, sp, 0, 300000);
}

START_TEST(eviction_is_exact)
{
	uint64_t ev;
	evict_and_compare(0, &ev);
}
END_TEST

/* In the spill's key order (--sort=key), evictions write each range of
 * partitions sorted by key bytes: the merge of each range gives its keys in
 * key order, each in its range, with the unbounded counts. */
START_TEST(eviction_in_key_order)
{
	for (unsigned nr = 1; nr <= 3; nr++)
		for (int zipf = 0; zipf < 2; zipf++) {
			spill *sp = new_spill(nr);
			table *t = new_table(4, 256 * 1024, sp), *ref = new_table(4, 0, NULL);
			uint64_t x = 88172645463325252ull + nr;
			char k[32];
			for (int i = 0; i < 200000; i++) {
				uint64_t id = next_id(&x, zipf, 100000);
				int n = snprintf(k, sizeof k, "%llx", (unsigned long long)(id * 2654435761u));
				uint64_t h = table_hash(k, (size_t)n);
				ck_assert_int_eq(table_add(t, k, (size_t)n, h, 1), 0);
				ck_assert_int_eq(table_add(ref, k, (size_t)n, h, 1), 0);
			}
			uint64_t hits, misses, ev;
			table_counters(t, &hits, &misses, &ev);
			ck_assert_uint_gt(ev, 0);
			spill_and_check(t, ref, sp, nr, 200000);
		}
}
END_TEST

/* Each table sketches the keys it took in; the union of the sketches
 * estimates the distinct keys within 2% (standard error 0.8%) from one key
 * to hundreds of thousands, whichever tables hold them and whatever they evicted, and
 * table_seen_most bounds the count from above. */
static double seen_estimate(table *const *t, unsigned nt, uint64_t *most)
{
	sketch_sum sum;
	memset(&sum, 0, sizeof sum);
	*most = 0;
	for (unsigned i = 0; i < nt; i++) {
		sketch_union(&sum, table_seen(t[i]));
		*most += table_seen_most(t[i]);
	}
	return sketch_estimate(&sum);
}

START_TEST(seen_keys_sketched)
{
	static const uint64_t sizes[] = { 0, 1, 2, 10, 100, 1000, 20000, 60000, 300000 };
	for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
		uint64_t n = sizes[z], most;
		/* Two tables share a third of the keys; the second evicts when n
		 * is large. */
		spill *sp = new_spill(0);
		table *t[2] = { new_table(4, 0, NULL), new_table(4, 256 * 1024, sp) };
		char k[32];
		for (uint64_t i = 0; i < n; i++) {
			int len = snprintf(k, sizeof k, "k%llu", (unsigned long long)i);
			uint64_t h = table_hash(k, (size_t)len);
			if (i % 3 != 2)
				ck_assert_int_eq(table_add(t[0], k, (size_t)len, h, 1), 0);
			if (i % 3 != 0)
				ck_assert_int_eq(table_add(t[1], k, (size_t)len, h, 1), 0);
		}
		double est = seen_estimate(t, 2, &most);
		ck_assert_msg(est >= 0.98 * (double)n && est <= 1.02 * (double)n + 0.5,
			"%llu keys estimated as %.1f", (unsigned long long)n, est);
		ck_assert_uint_ge(most, n);
		if (n == 300000) {
			uint64_t hits, misses, ev;
			table_counters(t[1], &hits, &misses, &ev);
			ck_assert_uint_gt(ev, 0);
		}
		table_destroy(t[0]);
		table_destroy(t[1]);
		spill_destroy(sp);
	}
}
END_TEST

/* Keys that do not recur send the table into append mode: it lists new
 * keys instead of slotting them, and each flush sorts the lists, adds up
 * the repeats (which count as hits) and writes a run.  When keys recur
 * again, it goes back to its slots and keeps the hot keys resident.  In
 * hash order and in key order, the runs give the exact counts. */
START_TEST(append_mode_and_back)
{
	for (unsigned nr = 0; nr <= 2; nr++) {
		spill *sp = new_spill(nr);
		table *t = new_table(4, 256 * 1024, sp), *ref = new_table(4, 0, NULL);
		char k[48];
		uint64_t hits, misses, ev, ev_unique = 0, hits_unique = 0;
		for (int i = 0; i < 240000; i++) {
			/* First near-unique keys, one in 20 a repeat of a recent
			 * one (below the eighth that would end append mode); then
			 * 300 keys over and over. */
			int id = i < 120000 ? (i % 20 ? i : i - 7) : i % 300;
			int n = snprintf(k, sizeof k, "key-%d-%s", id, id % 3 ? "x" : "a longer tail");
			uint64_t h = table_hash(k, (size_t)n);
			ck_assert_int_eq(table_add(t, k, (size_t)n, h, 1), 0);
			ck_assert_int_eq(table_add(ref, k, (size_t)n, h, 1), 0);
			if (i == 119999) {
				table_counters(t, &hits_unique, &misses, &ev_unique);
				ck_assert_uint_gt(ev_unique, 50000);
				ck_assert_uint_gt(hits_unique, 0);   /* repeats added up in a list */
			}
		}
		table_counters(t, &hits, &misses, &ev);
		ck_assert_uint_eq(hits + misses, 240000);
		/* Back in its slots, the table keeps the 300 keys: the second
		 * half evicted little (the flush that ended append mode and
		 * none after it; staying in append mode, 12k) and hit nearly
		 * every time. */
		ck_assert_uint_lt(ev - ev_unique, 3000);
		ck_assert_uint_gt(hits - hits_unique, 120000 * 9 / 10);
		ck_assert_uint_gt(table_size(t), 0);
		spill_and_check(t, ref, sp, nr, 240000);
	}
}
END_TEST

START_TEST(eviction_keeps_hot_keys)
{
	uint64_t uniform, zipf;
	evict_and_compare(0, &uniform);
	evict_and_compare(1, &zipf);
	/* The hot keys of a skewed input stay resident. */
	ck_assert_uint_lt(zipf * 2, uniform);
}
END_TEST

/* Keys that do not recur are evicted all at once (nothing stays resident
 * after an eviction but the key being added, when the flush made room for
 * it); keys that do recur keep their hot part resident. */
START_TEST(eviction_without_reuse_takes_all)
{
	char err[256];
	for (int skewed = 0; skewed < 2; skewed++) {
		spill *sp = spill_create(NULL, err, sizeof err);
		ck_assert_msg(sp != NULL, "%s", err);
		table *t = new_table(4, 256 * 1024, sp);
		char k[32];
		uint64_t before = 0, h, m, ev;
		int evictions = 0, emptied = 0;
		for (int i = 0; i < 100000; i++) {
			int id = skewed && i % 4 ? i % 20 : i;
			int n = snprintf(k, sizeof k, "key%d", id);
			if (table_add(t, k, (size_t)n, table_hash(k, (size_t)n), 1) != 0)
				ck_abort_msg("table_add failed");
			table_counters(t, &h, &m, &ev);
			if (ev != before) {
				evictions++;
				emptied += table_size(t) <= 1;
				before = ev;
			}
		}
		ck_assert_int_gt(evictions, 2);
		if (skewed)
			ck_assert_int_eq(emptied, 0);
		else
			ck_assert_int_eq(emptied, evictions);
		table_destroy(t);
		spill_destroy(sp);
	}
}
END_TEST

/* Keys that do not recur: after the first eviction the table lists new
 * keys (append mode) instead of growing its slots back, so its memory
 * stays below its first peak; the final spill gives that memory back. */
START_TEST(unique_keys_keep_table_size)
{
	char err[256];
	spill *sp = spill_create(NULL, err, sizeof err);
	ck_assert_msg(sp != NULL, "%s", err);
	uint64_t base = mem_current(MEM_TABLE);
	table *t = new_table(4, 1024 * 1024, sp);
	char k[32];
	uint64_t h, m, ev, first = 0, most = 0;
	for (int i = 0; i < 300000; i++) {
		int n = snprintf(k, sizeof k, "unique-key-%d", i);
		if (table_add(t, k, (size_t)n, table_hash(k, (size_t)n), 1) != 0)
			ck_abort_msg("table_add failed");
		uint64_t now = mem_current(MEM_TABLE) - base;
		table_counters(t, &h, &m, &ev);
		if (!ev && now > first)
			first = now;
		if (ev && now > most)
			most = now;
	}
	ck_assert_uint_gt(ev, 200000);
	ck_assert_uint_gt(most, 0);
	ck_assert_uint_lt(most, first);
	ck_assert_int_eq(table_spill_all(t), 0);
	/* 16 partitions of PART_MIN slots, their array, the table and its
	 * sketch. */
	ck_assert_uint_lt(mem_current(MEM_TABLE) - base, 16 * 1024 + sizeof(sketch));
	table_destroy(t);
	spill_destroy(sp);
}
END_TEST

/* A run that cannot be written (here: the tmpdir is gone) fails the
 * add that needed it; the table stays whole, keeps failing new keys without
 * touching memory it does not own, and still counts the keys it holds. */
START_TEST(failed_spill_is_sticky)
{
	char err[256], dir[] = "/tmp/test_table.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	spill *sp = spill_create(dir, err, sizeof err);
	ck_assert_ptr_nonnull(sp);
	ck_assert_int_eq(rmdir(dir), 0);   /* gone before the first run */
	table *t = new_table(4, 64 * 1024, sp);
	char k[32];
	int failures = 0, first = -1;
	for (int i = 0; i < 20000; i++) {
		int n = snprintf(k, sizeof k, "key%d", i);
		if (table_add(t, k, (size_t)n, table_hash(k, (size_t)n), 1)) {
			failures++;
			if (first < 0)
				first = i;
		}
	}
	ck_assert_int_ge(first, 0);
	ck_assert_int_eq(failures, 20000 - first);
	/* A key added before the failure is still there and still counts. */
	ck_assert_int_eq(add(t, "key0"), 0);
	ck_assert_uint_eq(lookup(t, "key0").count, 2);
	uint64_t h, m, ev;
	table_counters(t, &h, &m, &ev);
	ck_assert_uint_eq(ev, 0);
	table_destroy(t);
	spill_destroy(sp);
}
END_TEST

static Suite *table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, hash_is_xxh3);
	tcase_add_test(tc, short_keys_from_hashes);
	tcase_add_test(tc, counts_and_growth);
	tcase_add_test(tc, lines_of_their_own);
	tcase_add_test(tc, collisions_and_empty_key);
	tcase_add_test(tc, millions_of_keys);
	tcase_add_test(tc, gather_partitions);
	tcase_add_test(tc, sort_entries_ties);
	tcase_add_test(tc, pool_compacts_in_place);
	tcase_add_test(tc, short_keys_readable);
	tcase_add_test(tc, eviction_is_exact);
	tcase_add_test(tc, eviction_in_key_order);
	tcase_add_test(tc, append_mode_and_back);
	tcase_add_test(tc, eviction_keeps_hot_keys);
	tcase_add_test(tc, eviction_without_reuse_takes_all);
	tcase_add_test(tc, unique_keys_keep_table_size);
	tcase_add_test(tc, failed_spill_is_sticky);
	tcase_add_test(tc, seen_keys_sketched);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(table_suite());
}
