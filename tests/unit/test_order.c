/*
 * test_order.c - output order: count, key and none, with --top and
 * --min-count, against a reference sorted here; and the same output when a
 * tiny budget forces sorted runs, many of them, and multi-pass merges.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "keysort.h"
#include "mem.h"
#include "order.h"
#include "spill.h"
#include "testutil.h"

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

typedef struct pair {
	char    *key;
	size_t   len;
	uint64_t count;
} pair;

static int key_cmp(const pair *a, const pair *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->key, b->key, n);
	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static int ref_by_count(const void *x, const void *y)
{
	const pair *a = x, *b = y;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return key_cmp(a, b);
}

static int ref_by_key(const void *x, const void *y)
{
	return key_cmp(x, y);
}

/* n distinct keys: short ones, binary bytes, long shared prefixes (so the
 * 8-byte prefix ties), counts with many ties. */
static pair *make_pairs(size_t n)
{
	pair *v = calloc(n, sizeof *v);
	ck_assert_ptr_nonnull(v);
	static const char *fixed[] = { "", "a", "a\0", "ab", "b", "\xff", "\x00" };
	static const size_t fixed_len[] = { 0, 1, 2, 2, 1, 1, 1 };
	static const char *shared[] = { "", "prefix-of-", "\x00\x00\x00\x00\x00\x00\x00\x00\x00" };
	static const size_t shared_len[] = { 0, 10, 9 };
	for (size_t i = 0; i < n; i++) {
		char buf[64];
		size_t len = 0;
		if (i < 7) {
			memcpy(buf, fixed[i], fixed_len[i]);
			len = fixed_len[i];
		} else {
			size_t s = rng() % 3;
			memcpy(buf, shared[s], shared_len[s]);
			len = shared_len[s];
			size_t r = rng() % 7;
			for (size_t j = 0; j < r; j++)
				buf[len++] = (char)(rng() % 4 ? 'a' + rng() % 3 : rng());
			/* A unique tail keeps the keys distinct. */
			buf[len++] = (char)0xfe;
			buf[len++] = (char)(i >> 16);
			buf[len++] = (char)(i >> 8);
			buf[len++] = (char)i;
		}
		v[i].key = malloc(len ? len : 1);
		memcpy(v[i].key, buf, len);
		v[i].len = len;
		v[i].count = rng() % 16 ? 1 + rng() % 6 : 1 + rng() % 100000;
	}
	return v;
}

static void free_pairs(pair *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
}

/* The expected output: filtered, ordered, cut. */
static pair *reference(const pair *in, size_t n, tally_sort sort, uint64_t top,
	uint64_t min_count, size_t *nout)
{
	pair *v = malloc((n ? n : 1) * sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (in[i].count >= min_count)
			v[k++] = in[i];
	if (sort == TALLY_SORT_COUNT)
		qsort(v, k, sizeof *v, ref_by_count);
	else if (sort == TALLY_SORT_KEY)
		qsort(v, k, sizeof *v, ref_by_key);
	if (top && top < k)
		k = (size_t)top;
	*nout = k;
	return v;
}

/* 1: the order borrows the keys instead of copying them. */
static int borrow_mode;

/* Run one configuration and compare with the reference.  Returns the
 * number of runs the spill wrote. */
static uint64_t check_config(const pair *in, size_t n, tally_sort sort, uint64_t top,
	uint64_t min_count, uint64_t budget, unsigned fanin)
{
	char base[] = "/tmp/test_order.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(base));
	spill *sp = NULL;
	if (budget) {
		sp = spill_create(base, NULL, 0);
		ck_assert_ptr_nonnull(sp);
		if (fanin)
			spill_set_fanin(sp, fanin);
	}
	order_config cfg = { sort, top, min_count, budget, sp, borrow_mode, 1 };
	order *o = order_create(&cfg);
	ck_assert_ptr_nonnull(o);
	/* Assertions in the loops only on failure: each one costs a write. */
	for (size_t i = 0; i < n; i++)
		if (order_add(o, in[i].key, in[i].len, in[i].count) != 0)
			ck_abort_msg("order_add: %s", sp ? spill_errmsg(sp) : strerror(errno));
	ck_assert_msg(order_finish(o) == 0, "order_finish: %s", sp ? spill_errmsg(sp) : "");
	/* Items read from runs are not for reading ahead: their keys move. */
	if (sp && spill_runs(sp))
		ck_assert_int_eq(order_keys_scattered(o), 0);
	size_t nref;
	pair *ref = reference(in, n, sort, top, min_count, &nref);
	tally_item it;
	size_t k = 0;
	int rc;
	while ((rc = order_next(o, &it)) == 1) {
		if (k >= nref)
			ck_abort_msg("more items than expected (sort %d top %llu min %llu budget %llu)",
			(int)sort, (unsigned long long)top, (unsigned long long)min_count,
			(unsigned long long)budget);
		if (!(it.len == ref[k].len && memcmp(it.key, ref[k].key, it.len) == 0 &&
		      it.count == ref[k].count))
			ck_abort_msg("item %zu differs (sort %d top %llu min %llu budget %llu fanin %u)", k, (int)sort,
			(unsigned long long)top, (unsigned long long)min_count,
			(unsigned long long)budget, fanin);
		k++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(order_next(o, &it), 0);
	ck_assert_uint_eq(k, nref);
	uint64_t runs = sp ? spill_runs(sp) : 0;
	order_destroy(o);
	if (sp) {
		if (spill_dir(sp))
			ck_assert_int_eq(test_count_entries(spill_dir(sp)), 0);
		spill_destroy(sp);
	}
	ck_assert_int_eq(test_count_entries(base), 0);
	rmdir(base);
	free(ref);
	ck_assert_uint_eq(mem_current(MEM_SPILL), 0);
	return runs;
}

START_TEST(test_small_exact)
{
	/* Equal counts go by key bytes, a key before the keys it prefixes. */
	order_config cfg = { TALLY_SORT_COUNT, 0, 0, 0, NULL, 0, 1 };
	order *o = order_create(&cfg);
	ck_assert_int_eq(order_add(o, "b", 1, 2), 0);
	ck_assert_int_eq(order_add(o, "ab", 2, 2), 0);
	ck_assert_int_eq(order_add(o, "a\0", 2, 2), 0);
	ck_assert_int_eq(order_add(o, "a", 1, 2), 0);
	ck_assert_int_eq(order_add(o, "", 0, 2), 0);
	ck_assert_int_eq(order_add(o, "zz", 2, 9), 0);
	ck_assert_int_eq(order_add(o, "\xff", 1, 2), 0);
	ck_assert_int_eq(order_finish(o), 0);
	static const char *want[] = { "zz", "", "a", "a\0", "ab", "b", "\xff" };
	static const size_t want_len[] = { 2, 0, 1, 2, 2, 1, 1 };
	tally_item it;
	for (int i = 0; i < 7; i++) {
		ck_assert_int_eq(order_next(o, &it), 1);
		ck_assert_uint_eq(it.len, want_len[i]);
		ck_assert(memcmp(it.key, want[i], it.len) == 0);
		ck_assert_uint_eq(it.count, i == 0 ? 9u : 2u);
	}
	ck_assert_int_eq(order_next(o, &it), 0);
	order_destroy(o);

	/* Key order ignores counts; none keeps the order given; min-count. */
	order_config kc = { TALLY_SORT_KEY, 0, 3, 0, NULL, 0, 1 };
	o = order_create(&kc);
	ck_assert_int_eq(order_add(o, "b", 1, 5), 0);
	ck_assert_int_eq(order_add(o, "a", 1, 3), 0);
	ck_assert_int_eq(order_add(o, "c", 1, 2), 0);   /* dropped: 2 < 3 */
	ck_assert_int_eq(order_finish(o), 0);
	ck_assert_int_eq(order_next(o, &it), 1);
	ck_assert(it.len == 1 && it.key[0] == 'a' && it.count == 3);
	ck_assert_int_eq(order_next(o, &it), 1);
	ck_assert(it.len == 1 && it.key[0] == 'b' && it.count == 5);
	ck_assert_int_eq(order_next(o, &it), 0);
	order_destroy(o);

	order_config nc = { TALLY_SORT_NONE, 2, 0, 0, NULL, 0, 1 };
	o = order_create(&nc);
	ck_assert_int_eq(order_add(o, "z", 1, 1), 0);
	ck_assert_int_eq(order_add(o, "y", 1, 7), 0);
	ck_assert_int_eq(order_add(o, "x", 1, 9), 0);
	ck_assert_int_eq(order_finish(o), 0);
	ck_assert_int_eq(order_next(o, &it), 1);
	ck_assert(it.key[0] == 'z' && it.count == 1);
	ck_assert_int_eq(order_next(o, &it), 1);
	ck_assert(it.key[0] == 'y' && it.count == 7);
	ck_assert_int_eq(order_next(o, &it), 0);
	order_destroy(o);
	ck_assert_uint_eq(mem_current(MEM_SPILL), 0);
}
END_TEST

/* order_keys_scattered: keys stored in the order they will be read (as the
 * lines of a log) against keys stored in the reverse order or all over
 * memory, and too few items to tell. */
START_TEST(test_keys_scattered)
{
	enum { N = 5000, W = 10 };
	char *buf = malloc((size_t)N * W * 64);
	ck_assert_ptr_nonnull(buf);
	for (int layout = 0; layout < 3; layout++) {
		/* Key i says i; it is stored at slot i, N - 1 - i, or i * 37 % N
		 * (37 is prime to N: every slot once) of slots of W * 64 bytes,
		 * so that neighbouring slots are within a page. */
		order_config cfg = { TALLY_SORT_KEY, 0, 0, 0, NULL, 1, 1 };
		order *o = order_create(&cfg);
		/* Added in an order of their own (61 is prime to N too): the
		 * sort puts them back. */
		for (int j = 0; j < N; j++) {
			int i = (int)((size_t)j * 61 % N);
			size_t slot = layout == 0 ? (size_t)i : layout == 1 ? (size_t)(N - 1 - i) :
				(size_t)i * 37 % N;
			char *k = buf + slot * W * 64;
			snprintf(k, W + 1, "k%08d", i);
			ck_assert_int_eq(order_add(o, k, W - 1, 1), 0);
		}
		ck_assert_int_eq(order_finish(o), 0);
		ck_assert_int_eq(order_keys_scattered(o), layout != 0);
		/* Near the end too few are left to tell: read directly. */
		tally_item it;
		for (int i = 0; i < N - 100; i++)
			ck_assert_int_eq(order_next(o, &it), 1);
		ck_assert_int_eq(order_keys_scattered(o), 0);
		order_destroy(o);
	}
	free(buf);
}
END_TEST

START_TEST(test_empty)
{
	static const tally_sort sorts[] = { TALLY_SORT_COUNT, TALLY_SORT_KEY, TALLY_SORT_NONE };
	for (int s = 0; s < 3; s++) {
		order_config cfg = { sorts[s], 5, 0, 0, NULL, 0, 1 };
		order *o = order_create(&cfg);
		tally_item it;
		ck_assert_int_eq(order_finish(o), 0);
		ck_assert_int_eq(order_next(o, &it), 0);
		order_destroy(o);
	}
}
END_TEST

START_TEST(test_in_memory_against_reference)
{
	rng_state = 0x1234567;
	size_t n = 20000;
	pair *v = make_pairs(n);
	static const tally_sort sorts[] = { TALLY_SORT_COUNT, TALLY_SORT_KEY, TALLY_SORT_NONE };
	static const uint64_t tops[] = { 0, 1, 7, 100, 5000, 30000 };
	for (int s = 0; s < 3; s++)
		for (int t = 0; t < 6; t++)
			for (uint64_t mc = 0; mc <= 4; mc += 4)
				check_config(v, n, sorts[s], tops[t], mc, 0, 0);
	free_pairs(v, n);
}
END_TEST

/* Keys that agree on long beginnings (log lines, paths) and tie on their
 * counts: the radix sort must look past its first 8 bytes, in steps, and
 * the order must be the same whether it copies or borrows the keys. */
START_TEST(test_long_shared_beginnings)
{
	rng_state = 0x5eed;
	size_t n = 5000;
	pair *v = calloc(n, sizeof *v);
	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < n; i++) {
		char buf[96];
		int len = snprintf(buf, sizeof buf, "2026-03-01T00:00:00.%06lluZ INFO [w-%llu] GET /api/%llu",
			(unsigned long long)(rng() % 50), (unsigned long long)(rng() % 3),
			(unsigned long long)i);
		if (i % 7 == 0)
			len = 20 + (int)(rng() % 12);   /* some keys end inside the shared part */
		v[i].key = malloc((size_t)len + 1);
		ck_assert_ptr_nonnull(v[i].key);
		memcpy(v[i].key, buf, (size_t)len);
		v[i].len = (size_t)len;
		v[i].count = 1 + rng() % 3;
	}
	/* Truncation may repeat keys: keep the first of each. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		for (; j < m; j++)
			if (v[j].len == v[i].len && memcmp(v[j].key, v[i].key, v[i].len) == 0)
				break;
		if (j < m)
			free(v[i].key);
		else
			v[m++] = v[i];
	}
	static const tally_sort sorts[] = { TALLY_SORT_COUNT, TALLY_SORT_KEY };
	for (borrow_mode = 0; borrow_mode <= 1; borrow_mode++)
		for (int s = 0; s < 2; s++) {
			check_config(v, m, sorts[s], 0, 0, 0, 0);
			check_config(v, m, sorts[s], 10, 0, 0, 0);
			/* Cut at 2N items, more than the radix sort's least: the
			 * threshold and the kept items come from reloaded prefixes. */
			check_config(v, m, sorts[s], 100, 0, 0, 0);
			check_config(v, m, sorts[s], 1000, 0, 0, 0);
			check_config(v, m, sorts[s], 0, 0, 16384, 0);
		}
	borrow_mode = 0;
	free_pairs(v, m);
}
END_TEST

/* The sort leaves reloaded prefixes behind, but equal keys always with
 * equal prefixes (a spill adds up equal neighbours by prefix first), and
 * keysort_prefixes sets them all back. */
START_TEST(test_keysort_prefixes_after_sort)
{
	enum { N = 20000 };
	static keysort_item v[N];
	static char keys[N][48];
	for (int bycount = 0; bycount <= 1; bycount++) {
		rng_state = 0x9e3779b9u + (uint64_t)bycount;
		for (size_t i = 0; i < N; i++) {
			/* 300 distinct keys sharing 24 bytes, most keys many times. */
			int len = snprintf(keys[i], sizeof keys[i], "2026-03-01T00:00:00.%04llu-tail",
				(unsigned long long)(rng() % 300));
			v[i] = (keysort_item){ 1 + rng() % 2, keysort_prefix(keys[i], (size_t)len),
				keys[i], (uint32_t)len };
		}
		if (bycount)
			keysort_by_count(v, N);
		else
			keysort_by_key(v, N);
		size_t reloaded = 0;
		for (size_t i = 0; i < N; i++) {
			reloaded += v[i].prefix != keysort_prefix(v[i].key, v[i].len);
			if (i && v[i].len == v[i - 1].len && !memcmp(v[i].key, v[i - 1].key, v[i].len))
				ck_assert_uint_eq(v[i].prefix, v[i - 1].prefix);
		}
		ck_assert_uint_gt(reloaded, 0);   /* the case is exercised */
		keysort_prefixes(v, N);
		for (size_t i = 0; i < N; i++)
			ck_assert_uint_eq(v[i].prefix, keysort_prefix(v[i].key, v[i].len));
	}
}
END_TEST

/* keysort's orders, for qsort. */
static int item_cmp_count(const void *x, const void *y)
{
	return keysort_before(x, y, 1) ? -1 : keysort_before(y, x, 1) ? 1 : 0;
}

static int item_cmp_key(const void *x, const void *y)
{
	return keysort_before(x, y, 0) ? -1 : keysort_before(y, x, 0) ? 1 : 0;
}

/* Skewed items: most keys counted once, with a few counts spread over all
 * 8 count bytes, or every count the same; keys of which most share their
 * first words (a date), with a minority before and after them and some
 * that end inside them.  The sort takes a shared part aside at once (one
 * pass rather than a level per byte), so it must still place the minority
 * on both sides, at every level.  Both orders are checked against qsort
 * with the same order. */
START_TEST(test_keysort_skewed)
{
	/* Ranges of 2^18 items and more take two bytes a pass: the larger
	 * size sorts such ranges, down two levels. */
	enum { NMAX = 600000 };
	static const size_t sizes[] = { 50000, NMAX };
	keysort_item *v = malloc(NMAX * sizeof *v), *ref = malloc(NMAX * sizeof *ref);
	char (*keys)[48] = malloc(NMAX * sizeof *keys);
	ck_assert(v && ref && keys);
	/* shape 0: short keys, skewed counts; 1: log lines, skewed counts;
	 * 2: log lines, one count; 3: short keys, one count; 4: short keys,
	 * counts of 1 and 1000 (a tenth: enough for the sort to sample the
	 * range of the keys counted 1000 on its own); 5: short keys, counts
	 * of 1 to 5 (they differ in the last count byte only). */
	for (int size = 0; size < 2; size++)
	for (int shape = 0; shape < 6; shape++)
		for (int bycount = 0; bycount <= 1; bycount++) {
			size_t n = sizes[size];
			int logs = shape == 1 || shape == 2;
			rng_state = 0xabcdef + (uint64_t)(2 * shape + bycount);
			for (size_t i = 0; i < n; i++) {
				unsigned r = (unsigned)(rng() % 100);
				int len;
				if (!logs)
					len = snprintf(keys[i], sizeof keys[i], "%c%zu", 'a' + (int)(r % 26), i);
				else if (r < 80)
					len = snprintf(keys[i], sizeof keys[i], "2026-03-01T00:00:%02u.%06u",
						rng() % 4 ? 0u : (unsigned)(rng() % 60),
						(unsigned)(rng() % 1000000));
				else if (r < 90)
					len = snprintf(keys[i], sizeof keys[i], "1999-%u", (unsigned)rng());
				else
					len = snprintf(keys[i], sizeof keys[i], "ZZ %u", (unsigned)rng());
				if (logs && rng() % 20 == 0)
					len = (int)(rng() % 10);   /* ends inside the first word */
				uint64_t count = shape == 2 || shape == 3 ? 7
					: shape == 5 ? 1 + rng() % 5
					: rng() % 10 ? 1
					: shape == 4 ? 1000 : 1 + (rng() >> (rng() % 64));
				v[i] = (keysort_item){ count, keysort_prefix(keys[i], (size_t)len),
					keys[i], (uint32_t)len };
			}
			memcpy(ref, v, n * sizeof *v);
			qsort(ref, n, sizeof *ref, bycount ? item_cmp_count : item_cmp_key);
			if (bycount)
				keysort_by_count(v, n);
			else
				keysort_by_key(v, n);
			for (size_t i = 0; i < n; i++)
				if (v[i].count != ref[i].count ||
				    keysort_bytes_cmp(v[i].key, v[i].len, ref[i].key, ref[i].len))
					ck_abort_msg("item %zu of %zu differs (shape %d bycount %d)", i, n,
						shape, bycount);
		}
	ck_assert_uint_eq(mem_current(MEM_SPILL), 0);
	free(keys);
	free(ref);
	free(v);
}
END_TEST

START_TEST(test_spilled_same_output)
{
	rng_state = 0xabcdef;
	size_t n = 6000;
	pair *v = make_pairs(n);
	static const tally_sort sorts[] = { TALLY_SORT_COUNT, TALLY_SORT_KEY, TALLY_SORT_NONE };
	static const uint64_t tops[] = { 0, 1, 7, 500 };
	for (int s = 0; s < 3; s++)
		for (int t = 0; t < 4; t++) {
			/* A budget of a few KiB: many small runs, and a merge of more
			 * runs than the default fan-in of 256 for the unbounded top. */
			uint64_t runs = check_config(v, n, sorts[s], tops[t], 0, 4096, 0);
			if (tops[t] == 0)
				ck_assert_uint_gt(runs, 20);
			check_config(v, n, sorts[s], tops[t], 3, 4096, 0);
			/* Fan-in 3: several passes. */
			check_config(v, n, sorts[s], tops[t], 0, 8192, 3);
		}
	free_pairs(v, n);
}
END_TEST

START_TEST(test_tiny_budget_many_runs)
{
	/* One item per run. */
	rng_state = 42;
	size_t n = 300;
	pair *v = make_pairs(n);
	uint64_t runs = check_config(v, n, TALLY_SORT_COUNT, 0, 0, 1, 2);
	ck_assert_uint_ge(runs, n - 1);
	check_config(v, n, TALLY_SORT_KEY, 10, 0, 1, 4);
	check_config(v, n, TALLY_SORT_NONE, 0, 0, 1, 2);
	free_pairs(v, n);
}
END_TEST

START_TEST(test_top_memory_bounded)
{
	/* --top 10 over 200000 distinct keys holds O(10) items, not O(keys). */
	order_config cfg = { TALLY_SORT_COUNT, 10, 0, 0, NULL, 0, 1 };
	order *o = order_create(&cfg);
	char key[32];
	uint64_t before = mem_current(MEM_SPILL);
	for (uint64_t i = 0; i < 200000; i++) {
		int len = snprintf(key, sizeof key, "key%llu", (unsigned long long)i);
		if (order_add(o, key, (size_t)len, (i * 7919) % 100003))
			ck_abort_msg("order_add failed");
	}
	ck_assert_uint_lt(mem_current(MEM_SPILL) - before, 512 * 1024);
	ck_assert_int_eq(order_finish(o), 0);
	tally_item it;
	uint64_t last = UINT64_MAX;
	int k = 0;
	while (order_next(o, &it) == 1) {
		ck_assert_uint_le(it.count, last);
		last = it.count;
		k++;
	}
	ck_assert_int_eq(k, 10);
	/* The largest count is 100002, reached by exactly two of the keys. */
	order_destroy(o);
}
END_TEST

START_TEST(test_full_disk)
{
	char base[] = "/tmp/test_order.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(base));
	if (mount("tmpfs", base, "tmpfs", 0, "size=64k") != 0) {
		fprintf(stderr, "test_full_disk: skipped: cannot mount a tmpfs here (%s)\n", strerror(errno));
		rmdir(base);
		return;
	}
	spill *sp = spill_create(base, NULL, 0);
	order_config cfg = { TALLY_SORT_KEY, 0, 0, 16384, sp, 0, 1 };
	order *o = order_create(&cfg);
	char key[200];
	rng_state = 5;
	int rc = 0;
	for (int i = 0; i < 20000 && rc == 0; i++) {
		for (size_t j = 0; j < sizeof key; j++)
			key[j] = (char)rng();
		rc = order_add(o, key, sizeof key, 1);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(errno, ENOSPC);
	char want[256];
	snprintf(want, sizeof want, "%s: No space left on device", base);
	ck_assert_str_eq(spill_errmsg(sp), want);
	ck_assert_int_eq(order_add(o, "x", 1, 1), -1);   /* stays failed */
	order_destroy(o);
	spill_destroy(sp);
	ck_assert_int_eq(test_count_entries(base), 0);
	umount(base);
	rmdir(base);
}
END_TEST

/* Fail the k-th allocation for every k until a run needs fewer (a few
 * successes in a row): each run either gives the exact output or fails
 * cleanly (-1, no leak, no file left). */
START_TEST(test_out_of_memory)
{
	rng_state = 77;
	size_t n = 400;
	pair *v = make_pairs(n);
	size_t nref;
	pair *ref = reference(v, n, TALLY_SORT_COUNT, 0, 0, &nref);
	int completed = 0;
	for (uint64_t k = 1; completed < 4; k++) {
		char base[] = "/tmp/test_order.XXXXXX";
		ck_assert_ptr_nonnull(mkdtemp(base));
		mem_fail_after(k);
		spill *sp = spill_create(base, NULL, 0);
		order *o = NULL;
		int ok = 0;
		if (sp) {
			spill_set_fanin(sp, 2);
			order_config cfg = { TALLY_SORT_COUNT, 0, 0, 2048, sp, 0, 1 };
			o = order_create(&cfg);
		}
		if (o) {
			size_t i;
			for (i = 0; i < n; i++)
				if (order_add(o, v[i].key, v[i].len, v[i].count))
					break;
			if (i == n && order_finish(o) == 0) {
				tally_item it;
				size_t j = 0;
				int rc;
				while ((rc = order_next(o, &it)) == 1) {
					if (j >= nref || it.len != ref[j].len || it.count != ref[j].count ||
					    memcmp(it.key, ref[j].key, it.len) != 0)
						ck_abort_msg("failure %llu: item %zu differs", (unsigned long long)k, j);
					j++;
				}
				ok = rc == 0 && j == nref;
			}
		}
		/* The countdown still running means no allocation failed. */
		mem_fail_after(0);
		completed = ok ? completed + 1 : 0;
		order_destroy(o);
		spill_destroy(sp);
		ck_assert_msg(test_count_entries(base) == 0, "failure %llu left files", (unsigned long long)k);
		rmdir(base);
		ck_assert_msg(mem_current(MEM_SPILL) == 0, "failure %llu leaked %llu bytes",
			(unsigned long long)k, (unsigned long long)mem_current(MEM_SPILL));
		ck_assert_uint_lt(k, 100000);
	}
	free(ref);
	free_pairs(v, n);
}
END_TEST

static Suite *order_suite(void)
{
	Suite *s = suite_create("order");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_small_exact);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_keys_scattered);
	tcase_add_test(tc, test_in_memory_against_reference);
	tcase_add_test(tc, test_long_shared_beginnings);
	tcase_add_test(tc, test_keysort_prefixes_after_sort);
	tcase_add_test(tc, test_keysort_skewed);
	tcase_add_test(tc, test_spilled_same_output);
	tcase_add_test(tc, test_tiny_budget_many_runs);
	tcase_add_test(tc, test_top_memory_bounded);
	tcase_add_test(tc, test_full_disk);
	tcase_add_test(tc, test_out_of_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(order_suite());
}
