/*
 * test_spill.c - run files and their merge: exact sums, key order within
 * equal hashes, multi-pass merges, concurrent writers, corrupt and
 * truncated runs, a full disk, and removal of temporary files on
 * destroy, at exit and on SIGINT, SIGTERM and SIGHUP.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "ahead.h"
#include "keysort.h"
#include "mem.h"
#include "spill.h"
#include "tally.h"
#include "testutil.h"

/* ---- Helpers ---------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A weak hash, masked so that many keys share one (tests the key order). */
static uint64_t weak_hash(const char *k, size_t len, uint64_t mask)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h & mask;
}

typedef struct tkey {
	char    *key;
	uint32_t len;
	uint64_t hash;
	uint64_t total;
} tkey;

static int tkey_cmp(const void *a, const void *b)
{
	const tkey *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

/* n distinct keys: the empty key, prefixes of each other, binary bytes, one
 * long key, random lengths.  Sorted by (hash, key). */
static tkey *make_keys(size_t n, uint64_t mask)
{
	tkey *v = calloc(n, sizeof *v);
	ck_assert_ptr_nonnull(v);
	static const char *fixed[] = { "", "a", "ab", "abc", "b", "a\0", "\xff", "\xff\xff", "\t\n" };
	static const size_t fixed_len[] = { 0, 1, 2, 3, 1, 2, 1, 2, 2 };
	size_t i = 0;
	for (; i < 9 && i < n; i++) {
		v[i].key = malloc(fixed_len[i] + 1);
		memcpy(v[i].key, fixed[i], fixed_len[i]);
		v[i].len = (uint32_t)fixed_len[i];
	}
	if (i < n) {   /* one key longer than the writer's and reader's buffers */
		v[i].len = 300000;
		v[i].key = malloc(v[i].len);
		for (uint32_t j = 0; j < v[i].len; j++)
			v[i].key[j] = (char)(rng() & 0xff);
		i++;
	}
	for (; i < n; i++) {
		v[i].len = (uint32_t)(4 + rng() % 20);
		v[i].key = malloc(v[i].len);
		for (uint32_t j = 0; j < 4; j++)
			v[i].key[j] = (char)(i >> (8 * j));   /* distinct */
		for (uint32_t j = 4; j < v[i].len; j++)
			v[i].key[j] = (char)(rng() & 0xff);
	}
	for (i = 0; i < n; i++)
		v[i].hash = weak_hash(v[i].key, v[i].len, mask);
	qsort(v, n, sizeof *v, tkey_cmp);
	return v;
}

static void free_keys(tkey *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
}

/* Write one run with about a third of the keys, adding to their totals. */
static void write_run(spill *s, tkey *v, size_t n)
{
	spill_writer *w = spill_run_begin(s);
	ck_assert_msg(w != NULL, "run_begin: %s", spill_errmsg(s));
	for (size_t i = 0; i < n; i++) {
		if (rng() % 3)
			continue;
		uint64_t c = 1 + rng() % 1000;
		if (i == 0)
			c = UINT64_C(1) << 40;   /* large counts survive the varints */
		v[i].total += c;
		spill_rec r = { v[i].hash, c, v[i].key, v[i].len };
		if (spill_run_put(w, &r))
			ck_abort_msg("run_put: %s", spill_errmsg(s));
	}
	ck_assert_msg(spill_run_end(w) == 0, "run_end: %s", spill_errmsg(s));
}

/* Merge and compare with the expected totals, in order. */
static void check_merge(spill *s, const tkey *v, size_t n)
{
	spill_merge *m = spill_merge_open(s);
	ck_assert_msg(m != NULL, "merge_open: %s", spill_errmsg(s));
	spill_rec r;
	size_t i = 0;
	int rc;
	while ((rc = spill_merge_next(m, &r)) == 1) {
		while (i < n && v[i].total == 0)
			i++;
		/* Assertions in the loop only on failure: each one costs a write. */
		if (i >= n || r.hash != v[i].hash || r.len != v[i].len ||
		    memcmp(r.key, v[i].key, r.len) != 0 || r.count != v[i].total)
			ck_abort_msg("merged record %zu differs from the expected one", i);
		i++;
	}
	ck_assert_int_eq(rc, 0);
	while (i < n && v[i].total == 0)
		i++;
	ck_assert_uint_eq(i, n);
	spill_merge_close(m);
}

static char tmp_base[64];

static void make_base(void)
{
	strcpy(tmp_base, "/tmp/test_spill.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp_base));
}

static void remove_base(void)
{
	ck_assert_int_eq(test_count_entries(tmp_base), 0);
	rmdir(tmp_base);
}

/* The first file of the private directory (a run), in path. */
static void first_run_path(spill *s, char *path, size_t cap)
{
	DIR *d = opendir(spill_dir(s));
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			break;
	ck_assert_ptr_nonnull(e);
	snprintf(path, cap, "%s/%s", spill_dir(s), e->d_name);
	closedir(d);
}

/* ---- Tests ------------------------------------------------------------ */

START_TEST(test_roundtrip_sums)
{
	rng_state = 0x9e3779b97f4a7c15ull;
	make_base();
	char err[256];
	spill *s = spill_create(tmp_base, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(spill_dir(s));   /* nothing on disk yet */
	ck_assert_int_eq(test_count_entries(tmp_base), 0);
	size_t n = 5000;
	tkey *v = make_keys(n, 0x3f);       /* 64 hashes: many ties */
	for (int r = 0; r < 7; r++)
		write_run(s, v, n);
	ck_assert_uint_eq(spill_runs(s), 7);
	ck_assert_uint_gt(spill_bytes(s), 0);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 7);
	check_merge(s, v, n);
	ck_assert_uint_eq(spill_passes(s), 1);
	/* Consumed runs are gone; the directory stays until destroy. */
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 0);
	spill_destroy(s);
	remove_base();
	free_keys(v, n);
	ck_assert_uint_eq(mem_current(MEM_SPILL), 0);
}
END_TEST

START_TEST(test_equal_hash_key_order)
{
	/* All keys share one hash: the key bytes alone order them, a prefix
	 * before its extensions. */
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	const char *keys[] = { "", "\x00", "\x00\x00", "a", "a\x00", "ab", "b", "\x80", "\xff" };
	const uint32_t lens[] = { 0, 1, 2, 1, 2, 2, 1, 1, 1 };
	/* Two runs holding alternating halves, and "a" in both. */
	for (int run = 0; run < 2; run++) {
		spill_writer *w = spill_run_begin(s);
		ck_assert_ptr_nonnull(w);
		for (int i = 0; i < 9; i++)
			if (i % 2 == run || i == 3) {
				spill_rec r = { 7, (uint64_t)(i + 1), keys[i], lens[i] };
				ck_assert_int_eq(spill_run_put(w, &r), 0);
			}
		ck_assert_int_eq(spill_run_end(w), 0);
	}
	spill_merge *m = spill_merge_open(s);
	ck_assert_ptr_nonnull(m);
	spill_rec r;
	for (int i = 0; i < 9; i++) {
		ck_assert_int_eq(spill_merge_next(m, &r), 1);
		ck_assert_uint_eq(r.hash, 7);
		ck_assert_uint_eq(r.len, lens[i]);
		ck_assert(memcmp(r.key, keys[i], lens[i]) == 0);
		ck_assert_uint_eq(r.count, i == 3 ? 8u : (uint64_t)(i + 1));
	}
	ck_assert_int_eq(spill_merge_next(m, &r), 0);
	ck_assert_int_eq(spill_merge_next(m, &r), 0);
	spill_merge_close(m);
	spill_destroy(s);
	remove_base();
}
END_TEST

START_TEST(test_empty_merge)
{
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	spill_merge *m = spill_merge_open(s);
	ck_assert_ptr_nonnull(m);
	spill_rec r;
	ck_assert_int_eq(spill_merge_next(m, &r), 0);
	spill_merge_close(m);
	ck_assert_uint_eq(spill_passes(s), 0);
	ck_assert_ptr_null(spill_dir(s));
	/* An empty run is a run. */
	spill_writer *w = spill_run_begin(s);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spill_run_end(w), 0);
	m = spill_merge_open(s);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(spill_merge_next(m, &r), 0);
	spill_merge_close(m);
	spill_destroy(s);
	remove_base();
}
END_TEST

/* fan-in f, n runs: the number of passes a level-by-level merge makes. */
static uint64_t expected_passes(size_t n, size_t f)
{
	uint64_t p = 1;
	while (n > f) {
		n = (n + f - 1) / f;
		p++;
	}
	return p;
}

START_TEST(test_multipass)
{
	static const unsigned fanins[] = { 2, 3 };
	for (int k = 0; k < 2; k++) {
		rng_state = 12345 + (uint64_t)k;
		make_base();
		spill *s = spill_create(tmp_base, NULL, 0);
		ck_assert_ptr_nonnull(s);
		spill_set_fanin(s, fanins[k]);
		ck_assert_uint_eq(spill_fanin(s), fanins[k]);
		size_t n = 800, runs = 19;
		tkey *v = make_keys(n, 0xff);
		for (size_t r = 0; r < runs; r++)
			write_run(s, v, n);
		check_merge(s, v, n);
		ck_assert_uint_eq(spill_passes(s), expected_passes(runs, fanins[k]));
		ck_assert_uint_gt(spill_runs(s), runs);   /* intermediate runs */
		ck_assert_int_eq(test_count_entries(spill_dir(s)), 0);
		spill_destroy(s);
		remove_base();
		free_keys(v, n);
	}
}
END_TEST

/* A spill in a fresh base directory with 16 partitions and the fan-in. */
static spill *partitioned_spill(unsigned fanin)
{
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	spill_set_partitions(s, 4);
	spill_set_fanin(s, fanin);
	return s;
}

/* After the merges of the ranges, which read v up to i: every key with a
 * count was read, the files stay until the ranges are closed, and passes
 * came first when the fan-in forced them.  Then clean up. */
static void ranges_end(spill *s, spill_ranges *g, tkey *v, size_t n, size_t i, int passes,
	size_t runs)
{
	while (i < n && v[i].total == 0)
		i++;
	ck_assert_uint_eq(i, n);
	ck_assert_int_gt(test_count_entries(spill_dir(s)), 0);
	spill_ranges_close(g);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 0);
	if (passes)
		ck_assert_uint_gt(spill_runs(s), runs);
	spill_destroy(s);
	remove_base();
	free_keys(v, n);
}

/* Runs cut by partition: the full merge reads across the frames, and
 * merges of ranges of partitions, concatenated, give the same stream, for
 * any number of ranges and with passes first when the fan-in is small. */
START_TEST(test_ranges)
{
	static const unsigned fanins[] = { 2, 256 };
	for (int k = 0; k < 2; k++)
		for (unsigned nm = 1; nm <= 3; nm++) {
			rng_state = 777 + (uint64_t)(k * 10 + (int)nm);
			spill *s = partitioned_spill(fanins[k]);
			size_t n = 600, runs = 7;
			tkey *v = make_keys(n, UINT64_MAX);
			for (size_t r = 0; r < runs; r++)
				write_run(s, v, n);
			if (nm == 1 && k == 0) {
				/* The whole merge over indexed runs. */
				check_merge(s, v, n);
				for (size_t i = 0; i < n; i++)
					v[i].total = 0;
				for (size_t r = 0; r < runs; r++)
					write_run(s, v, n);
			}
			spill_ranges *g = spill_ranges_open(s, nm);
			ck_assert_msg(g != NULL, "ranges_open: %s", spill_errmsg(s));
			size_t i = 0;
			for (unsigned j = 0; j < nm; j++) {
				unsigned p0 = 16 * j / nm, p1 = 16 * (j + 1) / nm;
				spill_merge *m = spill_ranges_merge(g, p0, p1);
				ck_assert_msg(m != NULL, "ranges_merge: %s", spill_errmsg(s));
				spill_rec r;
				int rc;
				while ((rc = spill_merge_next(m, &r)) == 1) {
					while (i < n && v[i].total == 0)
						i++;
					if (i >= n || r.hash != v[i].hash || r.len != v[i].len ||
					    memcmp(r.key, v[i].key, r.len) != 0 || r.count != v[i].total ||
					    r.hash >> 60 < p0 || r.hash >> 60 >= p1)
						ck_abort_msg("range %u: record %zu differs", j, i);
					i++;
				}
				ck_assert_int_eq(rc, 0);
				spill_merge_close(m);
			}
			ranges_end(s, g, v, n, i, fanins[k] == 2 && nm > 1, runs);
		}
}
END_TEST

/* Key order (spill_set_key_order): with nm ranges over 16 partitions, runs
 * hold each range in key order; merges of the ranges give each range in
 * key order with the counts summed, also after passes (fan-in 2), and read
 * ahead (ahead.h) they give the same records, --min-count applied. */
static unsigned key_nm;

static unsigned tkey_range(const tkey *k)
{
	unsigned part = (unsigned)(k->hash >> 60);
	return (unsigned)(((part + 1) * key_nm - 1) / 16);
}

static int tkey_range_cmp(const void *a, const void *b)
{
	const tkey *x = a, *y = b;
	unsigned rx = tkey_range(x), ry = tkey_range(y);
	if (rx != ry)
		return rx < ry ? -1 : 1;
	return keysort_bytes_cmp(x->key, x->len, y->key, y->len);
}

START_TEST(test_key_order)
{
	static const unsigned fanins[] = { 2, 256 };
	for (int k = 0; k < 2; k++)
		for (unsigned nm = 1; nm <= 3; nm++) {
			rng_state = 919 + (uint64_t)(k * 10 + (int)nm);
			spill *s = partitioned_spill(fanins[k]);
			spill_set_key_order(s, nm);
			ck_assert_uint_eq(spill_key_ranges(s), nm);
			size_t n = 600, runs = 7;
			tkey *v = make_keys(n, UINT64_MAX);
			key_nm = nm;
			qsort(v, n, sizeof *v, tkey_range_cmp);
			for (size_t r = 0; r < runs; r++)
				write_run(s, v, n);
			spill_ranges *g = spill_ranges_open(s, nm);
			ck_assert_msg(g != NULL, "ranges_open: %s", spill_errmsg(s));
			size_t i = 0;
			for (unsigned j = 0; j < nm; j++) {
				unsigned p0 = spill_range_start(16, nm, j), p1 = spill_range_start(16, nm, j + 1);
				/* The merge itself, then the same read ahead. */
				spill_merge *m = spill_ranges_merge(g, p0, p1);
				ck_assert_msg(m != NULL, "ranges_merge: %s", spill_errmsg(s));
				size_t i0 = i;
				spill_rec r;
				int rc;
				while ((rc = spill_merge_next(m, &r)) == 1) {
					while (i < n && v[i].total == 0)
						i++;
					if (i >= n || r.len != v[i].len || memcmp(r.key, v[i].key, r.len) != 0 ||
					    r.count != v[i].total || tkey_range(&v[i]) != j ||
					    r.hash >> 60 < p0 || r.hash >> 60 >= p1)
						ck_abort_msg("range %u of %u: record %zu differs", j, nm, i);
					i++;
				}
				ck_assert_int_eq(rc, 0);
				spill_merge_close(m);
				ahead *a = ahead_start(spill_ranges_merge(g, p0, p1), 500, 0);
				ck_assert_ptr_nonnull(a);
				tally_item it;
				uint64_t distinct = 0, hapax = 0;
				size_t at = i0;
				while ((rc = ahead_next(a, &it)) == 1) {
					while (at < i && v[at].total < 500)
						at++;
					if (at >= i || it.len != v[at].len || it.count != v[at].total ||
					    memcmp(it.key, v[at].key, it.len) != 0)
						ck_abort_msg("range %u of %u: read ahead, record %zu differs", j, nm, at);
					at++;
				}
				ck_assert_int_eq(rc, 0);
				while (at < i && v[at].total < 500)
					at++;
				ck_assert_uint_eq(at, i);
				ahead_counts(a, &distinct, &hapax);
				size_t want = 0, want1 = 0;
				for (size_t x = i0; x < i; x++) {
					want += v[x].total > 0;
					want1 += v[x].total == 1;
				}
				ck_assert_uint_eq(distinct, want);
				ck_assert_uint_eq(hapax, want1);
				ahead_free(a);
			}
			ranges_end(s, g, v, n, i, fanins[k] == 2 && nm > 1, runs);
		}
}
END_TEST

static void truncate_half(const char *path);

/* A spill in key order over one range, with n sorted test keys (*v)
 * written as each of runs runs. */
static spill *one_range_runs(size_t n, size_t runs, tkey **v)
{
	spill *s = partitioned_spill(256);
	spill_set_key_order(s, 1);
	*v = make_keys(n, UINT64_MAX);
	key_nm = 1;
	qsort(*v, n, sizeof **v, tkey_range_cmp);
	for (size_t r = 0; r < runs; r++)
		write_run(s, *v, n);
	return s;
}

/* Read ahead: stopped early, the thread ends and the files go; over a
 * damaged run, the records before the damage come out and then -1. */
START_TEST(test_ahead_stop_and_damage)
{
	for (int damage = 0; damage < 2; damage++) {
		rng_state = 5151;
		size_t n = 40000;
		tkey *v;
		spill *s = one_range_runs(n, 2, &v);
		if (damage) {
			char path[512];
			first_run_path(s, path, sizeof path);
			truncate_half(path);
		}
		spill_ranges *g = spill_ranges_open(s, 1);
		ck_assert_ptr_nonnull(g);
		ahead *a = ahead_start(spill_ranges_merge(g, 0, 16), 0, 0);
		ck_assert_ptr_nonnull(a);
		tally_item it;
		int rc;
		size_t got = 0;
		if (damage) {
			while ((rc = ahead_next(a, &it)) == 1)
				got++;
			ck_assert_int_eq(rc, -1);
			ck_assert_uint_gt(got, 0);
			ck_assert_msg(strstr(spill_errmsg(s), "run file") != NULL, "message: %s",
				spill_errmsg(s));
		} else {
			for (int x = 0; x < 10; x++)
				ck_assert_int_eq(ahead_next(a, &it), 1);
		}
		ahead_free(a);
		spill_ranges_close(g);
		ck_assert_int_eq(test_count_entries(spill_dir(s)), 0);
		spill_destroy(s);
		remove_base();
		free_keys(v, n);
	}
}
END_TEST

/* Runs in key order are front coded: a record whose shared prefix is
 * longer than the key before it (here the frame's first, which has none)
 * is corrupt, even in a frame whose checksum holds. */
START_TEST(test_front_coding_checked)
{
	rng_state = 6161;
	size_t n = 300;
	tkey *v;
	spill *s = one_range_runs(n, 1, &v);
	char path[512];
	first_run_path(s, path, sizeof path);
	/* Decode the run, claim a shared byte for its first key, encode it
	 * again with a good checksum. */
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	static unsigned char z[1 << 20], plain[1 << 20];
	size_t zn = fread(z, 1, sizeof z, f);
	fclose(f);
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer in = { z, zn, 0 };
	ZSTD_outBuffer out = { plain, sizeof plain, 0 };
	while (in.pos < in.size)
		ck_assert(!ZSTD_isError(ZSTD_decompressStream(d, &out, &in)));
	ZSTD_freeDCtx(d);
	/* range marker (1, 0), then varint(len - shared + 2), varint(shared) */
	ck_assert_uint_eq(plain[0], 1);
	ck_assert_uint_eq(plain[1], 0);
	ck_assert_uint_lt(plain[2], 0x80);
	ck_assert_uint_eq(plain[3], 0);
	plain[3] = 1;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 14);   /* as the readers allow */
	size_t zm = ZSTD_compress2(c, z, sizeof z, plain, out.pos);
	ck_assert(!ZSTD_isError(zm));
	ZSTD_freeCCtx(c);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(z, 1, zm, f), zm);
	fclose(f);
	spill_ranges *g = spill_ranges_open(s, 1);
	ck_assert_ptr_nonnull(g);
	spill_merge *m = spill_ranges_merge(g, 0, 16);
	spill_rec r;
	ck_assert(m == NULL || spill_merge_next(m, &r) == -1);
	ck_assert_msg(strstr(spill_errmsg(s), "corrupt run file") != NULL, "message: %s",
		spill_errmsg(s));
	spill_merge_close(m);
	spill_ranges_close(g);
	spill_destroy(s);
	remove_base();
	free_keys(v, n);
}
END_TEST

START_TEST(test_fanin_env)
{
	setenv("TALLY_SPILL_FANIN", "3", 1);
	spill *s = spill_create("/tmp", NULL, 0);
	unsetenv("TALLY_SPILL_FANIN");
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(spill_fanin(s), 3);
	spill_destroy(s);
	s = spill_create("/tmp", NULL, 0);
	ck_assert_uint_ge(spill_fanin(s), 2);
	ck_assert_uint_le(spill_fanin(s), 256);
	spill_destroy(s);
}
END_TEST

/* Threads writing runs at once. */
typedef struct wjob {
	spill   *s;
	tkey    *v;          /* this thread's keys (shared hashes, own counts) */
	size_t   n;
	uint64_t seed;
	int      failed;
} wjob;

static void *writer_thread(void *arg)
{
	wjob *j = arg;
	uint64_t st = j->seed;
	for (int run = 0; run < 5; run++) {
		spill_writer *w = spill_run_begin(j->s);
		if (!w) {
			j->failed = 1;
			return NULL;
		}
		for (size_t i = 0; i < j->n; i++) {
			st ^= st << 13;
			st ^= st >> 7;
			st ^= st << 17;
			if (st % 2)
				continue;
			uint64_t c = 1 + st % 50;
			j->v[i].total += c;
			spill_rec r = { j->v[i].hash, c, j->v[i].key, j->v[i].len };
			if (spill_run_put(w, &r)) {
				spill_run_abort(w);
				j->failed = 1;
				return NULL;
			}
		}
		if (spill_run_end(w)) {
			j->failed = 1;
			return NULL;
		}
	}
	return NULL;
}

START_TEST(test_concurrent_writers)
{
	rng_state = 777;
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	size_t n = 3000;
	tkey *v = make_keys(n, UINT64_MAX);
	enum { T = 4 };
	wjob jobs[T];
	pthread_t th[T];
	for (int t = 0; t < T; t++) {
		jobs[t].s = s;
		jobs[t].n = n;
		jobs[t].seed = 1000 + (uint64_t)t;
		jobs[t].failed = 0;
		jobs[t].v = calloc(n, sizeof(tkey));
		memcpy(jobs[t].v, v, n * sizeof(tkey));   /* keys shared, totals own */
		ck_assert_int_eq(pthread_create(&th[t], NULL, writer_thread, &jobs[t]), 0);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < T; t++) {
		ck_assert_int_eq(jobs[t].failed, 0);
		for (size_t i = 0; i < n; i++)
			v[i].total += jobs[t].v[i].total;
		free(jobs[t].v);
	}
	ck_assert_uint_eq(spill_runs(s), 5 * T);
	check_merge(s, v, n);
	spill_destroy(s);
	remove_base();
	free_keys(v, n);
}
END_TEST

/* Write two runs, damage the first file with fn, expect the merge to fail. */
static void damaged_run(void (*damage)(const char *path), const char *what)
{
	rng_state = 4242;
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	size_t n = 4000;
	tkey *v = make_keys(n, UINT64_MAX);
	write_run(s, v, n);
	write_run(s, v, n);
	char path[512];
	first_run_path(s, path, sizeof path);
	damage(path);
	spill_merge *m = spill_merge_open(s);
	int rc = -1;
	if (m) {
		spill_rec r;
		while ((rc = spill_merge_next(m, &r)) == 1)
			;
		ck_assert_int_eq(spill_merge_next(m, &r), -1);   /* stays failed */
		spill_merge_close(m);
	}
	ck_assert_msg(rc == -1, "%s run went unnoticed", what);
	ck_assert_msg(strstr(spill_errmsg(s), "run file") != NULL, "message: %s", spill_errmsg(s));
	ck_assert_msg(strncmp(spill_errmsg(s), spill_dir(s), strlen(spill_dir(s))) == 0,
		"message names the file: %s", spill_errmsg(s));
	spill_destroy(s);
	remove_base();
	free_keys(v, n);
}

static void truncate_half(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
}

static void truncate_last_byte(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(truncate(path, st.st_size - 1), 0);
}

static void flip_middle(const char *path)
{
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	struct stat st;
	fstat(fd, &st);
	unsigned char b;
	off_t at = st.st_size / 2;
	ck_assert_int_eq(pread(fd, &b, 1, at), 1);
	b ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

static void append_garbage(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "xyz", 3), 3);
	close(fd);
}

static void empty_file(const char *path)
{
	ck_assert_int_eq(truncate(path, 0), 0);
}

START_TEST(test_corrupt_runs)
{
	damaged_run(truncate_half, "a half-truncated");
	damaged_run(truncate_last_byte, "a one-byte-short");
	damaged_run(flip_middle, "a corrupt");
	damaged_run(append_garbage, "an over-long");
	damaged_run(empty_file, "an empty");
}
END_TEST

START_TEST(test_missing_tmpdir)
{
	char err[256];
	spill *s = spill_create("/nonexistent/dir", err, sizeof err);
	ck_assert_ptr_null(s);
	ck_assert_str_eq(err, "/nonexistent/dir: cannot use as temporary directory: No such file or directory");
	s = spill_create("/etc/passwd", err, sizeof err);
	ck_assert_ptr_null(s);
	ck_assert_str_eq(err, "/etc/passwd: cannot use as temporary directory: Not a directory");
	/* NULL: $TMPDIR */
	make_base();
	setenv("TMPDIR", tmp_base, 1);
	s = spill_create(NULL, err, sizeof err);
	unsetenv("TMPDIR");
	ck_assert_ptr_nonnull(s);
	spill_writer *w = spill_run_begin(s);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spill_run_end(w), 0);
	ck_assert(strncmp(spill_dir(s), tmp_base, strlen(tmp_base)) == 0);
	ck_assert_int_eq(test_count_entries(tmp_base), 1);
	spill_destroy(s);
	remove_base();
}
END_TEST

START_TEST(test_full_disk)
{
	make_base();
	if (mount("tmpfs", tmp_base, "tmpfs", 0, "size=256k") != 0) {
		fprintf(stderr, "test_full_disk: skipped: cannot mount a tmpfs here (%s)\n", strerror(errno));
		remove_base();
		return;
	}
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	/* Incompressible keys, far more than 256 KiB. */
	spill_writer *w = spill_run_begin(s);
	ck_assert_ptr_nonnull(w);
	char key[1000];
	int rc = 0;
	rng_state = 99;
	for (uint64_t i = 0; i < 2000 && rc == 0; i++) {
		for (size_t j = 0; j < sizeof key; j++)
			key[j] = (char)rng();
		spill_rec r = { i, 1, key, sizeof key };
		rc = spill_run_put(w, &r);
	}
	int e;
	if (rc == 0) {
		rc = spill_run_end(w);
		e = errno;
	} else {
		e = errno;
		spill_run_abort(w);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(e, ENOSPC);
	char want[256];
	snprintf(want, sizeof want, "%s: No space left on device", tmp_base);
	ck_assert_str_eq(spill_errmsg(s), want);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 0);   /* the partial file is gone */
	ck_assert_uint_eq(spill_runs(s), 0);
	spill_destroy(s);
	ck_assert_int_eq(test_count_entries(tmp_base), 0);
	umount(tmp_base);
	remove_base();
}
END_TEST

/* Kept in globals so that a leak checker sees them reachable at exit. */
static spill *volatile child_spill_obj;
static spill_writer *volatile child_writer;

/* Child: a spill with two runs (one unfinished), its directory on fd, then
 * wait for a signal (or exit at once). */
static void child_spill(int fd, int do_exit)
{
	/* Check's own SIGTERM handler kills the whole process group: the
	 * child dies of the signal alone. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	spill *s = child_spill_obj = spill_create(tmp_base, NULL, 0);
	if (!s)
		_exit(3);
	for (int r = 0; r < 2; r++) {
		spill_writer *w = child_writer = spill_run_begin(s);
		spill_rec rec = { 1, 1, "key", 3 };
		if (!w || spill_run_put(w, &rec))
			_exit(3);
		if (r == 0 && spill_run_end(w))
			_exit(3);
	}
	char buf[512];
	snprintf(buf, sizeof buf, "%s\n", spill_dir(s));
	if (write(fd, buf, strlen(buf)) < 0)
		_exit(3);
	close(fd);
	if (do_exit)
		exit(0);       /* no spill_destroy: the atexit hook cleans */
	for (;;)
		pause();
}

static void fork_and_check(int sig)
{
	make_base();
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child_spill(p[1], sig == 0);
	}
	close(p[1]);
	char dir[512];
	ssize_t k, got = 0;
	while ((k = read(p[0], dir + got, sizeof dir - 1 - (size_t)got)) > 0)
		got += k;
	close(p[0]);
	ck_assert_int_gt(got, 1);
	dir[got - 1] = '\0';
	if (sig) {
		ck_assert_int_eq(test_count_entries(dir), 2);
		kill(pid, sig);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (sig) {
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sig,
			"child status %d, expected death by signal %d", status, sig);
	} else {
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(test_count_entries(dir), -1);   /* directory gone */
	remove_base();
}

START_TEST(test_signal_cleanup)
{
	fork_and_check(SIGTERM);
	fork_and_check(SIGINT);
	fork_and_check(SIGHUP);
}
END_TEST

START_TEST(test_atexit_cleanup)
{
	fork_and_check(0);
}
END_TEST

static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

/* A signal the program handles is its own: the spill leaves it alone, and
 * its runs and the next ones survive it.  One left at its default action
 * gets the spill's handler.  tally_signal_cleanup is there for a handler
 * that means to end the process. */
START_TEST(test_program_handler_kept)
{
	struct sigaction sa, cur;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	signal(SIGUSR2, SIG_DFL);
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(sigaction(SIGUSR1, NULL, &cur), 0);
	ck_assert(cur.sa_handler == on_usr1);
	ck_assert_int_eq(sigaction(SIGUSR2, NULL, &cur), 0);
	ck_assert(cur.sa_handler != SIG_DFL);
	spill_rec rec = { 1, 1, "key", 3 };
	spill_writer *w = spill_run_begin(s);
	ck_assert_int_eq(spill_run_put(w, &rec), 0);
	ck_assert_int_eq(spill_run_end(w), 0);
	raise(SIGUSR1);
	ck_assert_int_eq(usr1_seen, 1);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 1);
	w = spill_run_begin(s);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spill_run_put(w, &rec), 0);
	ck_assert_int_eq(spill_run_end(w), 0);
	spill_merge *m = spill_merge_open(s);
	spill_rec r;
	ck_assert_int_eq(spill_merge_next(m, &r), 1);
	ck_assert_uint_eq(r.count, 2);
	spill_merge_close(m);
	w = spill_run_begin(s);
	ck_assert_int_eq(spill_run_put(w, &rec), 0);
	ck_assert_int_eq(spill_run_end(w), 0);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 1);
	tally_signal_cleanup();
	ck_assert_int_eq(test_count_entries(tmp_base), 0);
	spill_destroy(s);
	remove_base();
}
END_TEST

START_TEST(test_destroy_removes_all)
{
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	spill_rec rec = { 1, 1, "k", 1 };
	for (int i = 0; i < 3; i++) {
		spill_writer *w = spill_run_begin(s);
		ck_assert_int_eq(spill_run_put(w, &rec), 0);
		ck_assert_int_eq(spill_run_end(w), 0);
	}
	spill_writer *w = spill_run_begin(s);
	ck_assert_int_eq(spill_run_put(w, &rec), 0);
	spill_run_abort(w);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 3);
	/* A merge closed early removes the runs it took. */
	spill_merge *m = spill_merge_open(s);
	spill_rec r;
	ck_assert_int_eq(spill_merge_next(m, &r), 1);
	ck_assert_uint_eq(r.count, 3);
	spill_merge_close(m);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 0);
	w = spill_run_begin(s);
	ck_assert_int_eq(spill_run_end(w), 0);
	spill_destroy(s);
	ck_assert_int_eq(test_count_entries(tmp_base), 0);
	remove_base();
}
END_TEST

START_TEST(test_detached_files)
{
	make_base();
	spill *s = spill_create(tmp_base, NULL, 0);
	ck_assert_ptr_nonnull(s);
	/* Any order; read back as written. */
	spill_writer *w = spill_run_begin(s);
	const char *keys[] = { "zeta", "alpha", "", "mid" };
	for (int i = 0; i < 4; i++) {
		spill_rec r = { (uint64_t)(100 - i), (uint64_t)i, keys[i], (uint32_t)strlen(keys[i]) };
		ck_assert_int_eq(spill_run_put(w, &r), 0);
	}
	spill_file *f = spill_run_end_file(w);
	ck_assert_ptr_nonnull(f);
	spill_file *g = spill_run_end_file(spill_run_begin(s));
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 2);
	/* Detached runs do not join the merge. */
	spill_merge *m = spill_merge_open(s);
	spill_rec r;
	ck_assert_int_eq(spill_merge_next(m, &r), 0);
	spill_merge_close(m);
	spill_reader *rd = spill_reader_open(f);
	ck_assert_ptr_nonnull(rd);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(spill_reader_next(rd, &r), 1);
		ck_assert_uint_eq(r.hash, (uint64_t)(100 - i));
		ck_assert_uint_eq(r.count, (uint64_t)i);
		ck_assert_uint_eq(r.len, strlen(keys[i]));
		ck_assert(memcmp(r.key, keys[i], r.len) == 0);
	}
	ck_assert_int_eq(spill_reader_next(rd, &r), 0);
	spill_reader_close(rd);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 1);
	spill_file_remove(g);
	ck_assert_int_eq(test_count_entries(spill_dir(s)), 0);
	spill_destroy(s);
	remove_base();
}
END_TEST

static Suite *spill_suite(void)
{
	Suite *s = suite_create("spill");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_roundtrip_sums);
	tcase_add_test(tc, test_equal_hash_key_order);
	tcase_add_test(tc, test_empty_merge);
	tcase_add_test(tc, test_multipass);
	tcase_add_test(tc, test_ranges);
	tcase_add_test(tc, test_key_order);
	tcase_add_test(tc, test_ahead_stop_and_damage);
	tcase_add_test(tc, test_fanin_env);
	tcase_add_test(tc, test_concurrent_writers);
	tcase_add_test(tc, test_corrupt_runs);
	tcase_add_test(tc, test_front_coding_checked);
	tcase_add_test(tc, test_missing_tmpdir);
	tcase_add_test(tc, test_full_disk);
	tcase_add_test(tc, test_signal_cleanup);
	tcase_add_test(tc, test_atexit_cleanup);
	tcase_add_test(tc, test_program_handler_kept);
	tcase_add_test(tc, test_destroy_removes_all);
	tcase_add_test(tc, test_detached_files);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(spill_suite());
}
