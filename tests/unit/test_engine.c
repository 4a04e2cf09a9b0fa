/*
 * test_engine.c - the public API's contract as an embedding program sees
 * it: calls out of order are errors, not counts lost in silence; a bad
 * configuration is refused; tally_end_output completes the statistics of a
 * run whose output was not read to the end; a count file set aside in key
 * order must not change until tally_next has read it.
 */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tally.h"
#include "mem.h"
#include "testutil.h"

static tally_engine *engine(tally_config *cfg)
{
	char err[256];
	int usage = -1;
	tally_engine *e = tally_create(cfg, err, sizeof err, &usage);
	ck_assert_msg(e != NULL, "tally_create: %s", err);
	ck_assert_int_eq(usage, 0);
	return e;
}

static void errmsg_is(tally_engine *e, const char *want)
{
	ck_assert_str_eq(tally_errmsg(e), want);
}

START_TEST(test_calls_out_of_order)
{
	static const char text[] = "x y x\n";
	tally_config cfg;
	tally_config_init(&cfg);
	cfg.threads = 2;
	tally_engine *e = engine(&cfg);
	tally_item it;

	ck_assert_int_eq(tally_next(e, &it), -2);
	errmsg_is(e, "tally_next called before tally_finish");
	ck_assert_int_eq(tally_end_output(e, 0, 1), -2);
	errmsg_is(e, "tally_end_output called before tally_finish");

	ck_assert_int_eq(tally_add_memory(e, text, sizeof text - 1, "t"), 0);
	ck_assert_int_eq(tally_finish(e), 0);
	ck_assert_int_eq(tally_finish(e), -2);
	errmsg_is(e, "tally_finish called twice");
	ck_assert_int_eq(tally_add_memory(e, text, sizeof text - 1, "t"), -2);
	errmsg_is(e, "tally_add_memory called after tally_finish");
	ck_assert_int_eq(tally_add_path(e, "/dev/null"), -2);
	errmsg_is(e, "tally_add_path called after tally_finish");

	/* The results are still those of the one input. */
	ck_assert_int_eq(tally_next(e, &it), 1);
	ck_assert_uint_eq(it.len, 1);
	ck_assert(memcmp(it.key, "x", 1) == 0);
	ck_assert_uint_eq(it.count, 2);
	ck_assert_int_eq(tally_next(e, &it), 1);
	ck_assert_uint_eq(it.count, 1);
	ck_assert_int_eq(tally_next(e, &it), 0);
	ck_assert_int_eq(tally_end_output(e, 0.5, 1), 0);
	ck_assert_int_eq(tally_end_output(e, 0.5, 1), -2);
	errmsg_is(e, "tally_end_output called twice");
	ck_assert_int_eq(tally_next(e, &it), -2);
	errmsg_is(e, "tally_next called after tally_end_output");

	tally_stats st;
	tally_get_stats(e, &st);
	ck_assert_uint_eq(st.tokens, 3);
	ck_assert_uint_eq(st.distinct, 2);
	ck_assert(st.t_write == 0.5);
	/* t_total is frozen by tally_end_output. */
	tally_stats again;
	tally_get_stats(e, &again);
	ck_assert(st.t_total == again.t_total);
	tally_destroy(e);
}
END_TEST

START_TEST(test_bad_enums_refused)
{
	for (int field = 0; field < 4; field++) {
		tally_config cfg;
		tally_config_init(&cfg);
		switch (field) {
		case 0: cfg.split = (tally_split)99; break;
		case 1: cfg.casemode = (tally_case)99; break;
		case 2: cfg.sort = (tally_sort)99; break;
		default: cfg.io = (tally_io)99; break;
		}
		char err[256] = "";
		int usage = 0;
		ck_assert_ptr_null(tally_create(&cfg, err, sizeof err, &usage));
		ck_assert_int_eq(usage, 1);
		ck_assert_msg(strstr(err, "invalid configuration") != NULL, "%s", err);
	}
}
END_TEST

/* n distinct keys, the numbers 0 to n - 1 after prefix and before end (a
 * key and its end 8 bytes at most). */
static char *numbered(int n, const char *prefix, const char *end, size_t *len)
{
	char *text = malloc((size_t)n * 8 + 1);
	ck_assert_ptr_nonnull(text);
	*len = 0;
	for (int i = 0; i < n; i++)
		*len += (size_t)snprintf(text + *len, 9, "%s%d%s", prefix, i, end);
	return text;
}

/* In key order after a spill the merge of the runs feeds the output: a
 * caller that stops after one item still gets every key counted. */
START_TEST(test_end_output_completes_stream)
{
	enum { N = 60000 };
	size_t len;
	char *text = numbered(N, "", "\n", &len);
	for (int complete = 0; complete <= 1; complete++) {
		tally_config cfg;
		tally_config_init(&cfg);
		cfg.mode = TALLY_MODE_LINES;
		cfg.sort = TALLY_SORT_KEY;
		cfg.threads = 1;
		cfg.memory = 64 * 1024;
		tally_engine *e = engine(&cfg);
		ck_assert_int_eq(tally_add_memory(e, text, len, "n"), 0);
		ck_assert_int_eq(tally_finish(e), 0);
		tally_item it;
		ck_assert_int_eq(tally_next(e, &it), 1);
		ck_assert_int_eq(tally_end_output(e, 0, complete), 0);
		tally_stats st;
		tally_get_stats(e, &st);
		ck_assert_uint_gt(st.runs_spilled, 0);
		ck_assert_uint_eq(st.distinct, complete ? N : 0);
		ck_assert_uint_eq(st.hapax, complete ? N : 0);
		tally_destroy(e);
	}
	free(text);
}
END_TEST

/* A later engine of the program reports its own peaks, not the first's. */
START_TEST(test_peaks_per_engine)
{
	enum { N = 200000 };
	size_t len;
	char *text = numbered(N, "w", " ", &len);
	uint64_t peak_pool[2];
	for (int run = 0; run < 2; run++) {
		tally_config cfg;
		tally_config_init(&cfg);
		cfg.threads = 1;
		tally_engine *e = engine(&cfg);
		if (run == 0)
			ck_assert_int_eq(tally_add_memory(e, text, len, "big"), 0);
		else
			ck_assert_int_eq(tally_add_memory(e, "a b a", 5, "small"), 0);
		ck_assert_int_eq(tally_finish(e), 0);
		tally_stats st;
		tally_get_stats(e, &st);
		peak_pool[run] = st.peak_pool;
		tally_destroy(e);
	}
	ck_assert_msg(peak_pool[1] < peak_pool[0] / 4, "peak pool %llu after %llu",
		(unsigned long long)peak_pool[1], (unsigned long long)peak_pool[0]);
	free(text);
}
END_TEST

START_TEST(test_versions_stable)
{
	const char *a = tally_library_versions();
	const char *b = tally_library_versions();
	ck_assert_ptr_eq(a, b);
	ck_assert(strncmp(a, "zstd ", 5) == 0);
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* tally_add_path reads a count file in key order through and sets it
 * aside; tally_next reads it again.  Unchanged, its keys come merged with
 * the others; rewritten meanwhile in place, its size and time kept (a
 * count changed), tally_next fails at its end and says so. */
START_TEST(test_sorted_file_must_not_change)
{
	char dir[] = "/tmp/tally-engine-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof path, "%s/a.tsv", dir);
	static const char *const after[] = { NULL, "a\t1\nb\t3\nc\t3\n" };
	for (int change = 0; change <= 1; change++) {
		write_file(path, "a\t1\nb\t2\nc\t3\n");
		struct stat st;
		ck_assert_int_eq(stat(path, &st), 0);
		tally_config cfg;
		tally_config_init(&cfg);
		cfg.mode = TALLY_MODE_COUNTS;
		cfg.sort = TALLY_SORT_KEY;
		cfg.threads = 2;
		tally_engine *e = engine(&cfg);
		ck_assert_int_eq(tally_add_path(e, path), 0);
		ck_assert_int_eq(tally_add_memory(e, "b\t5\n", 4, "m"), 0);
		if (after[change]) {
			write_file(path, after[change]);
			const struct timespec times[2] = { st.st_atim, st.st_mtim };
			ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
		}
		ck_assert_int_eq(tally_finish(e), 0);
		tally_item it;
		if (change) {
			/* Found at the file's end: the items before it are given
			 * out, the run is then refused as a whole. */
			int rc;
			while ((rc = tally_next(e, &it)) == 1)
				;
			ck_assert_int_eq(rc, -2);
			char want[128];
			snprintf(want, sizeof want, "%s: changed since it was first read", path);
			errmsg_is(e, want);
		} else {
			static const char keys[] = "abc";
			static const uint64_t counts[] = { 1, 7, 3 };
			for (int i = 0; i < 3; i++) {
				ck_assert_int_eq(tally_next(e, &it), 1);
				ck_assert_uint_eq(it.len, 1);
				ck_assert_int_eq(it.key[0], keys[i]);
				ck_assert_uint_eq(it.count, counts[i]);
			}
			ck_assert_int_eq(tally_next(e, &it), 0);
			ck_assert_int_eq(tally_end_output(e, 0, 1), 0);
			tally_stats s;
			tally_get_stats(e, &s);
			ck_assert_uint_eq(s.tokens, 11);
			ck_assert_uint_eq(s.distinct, 3);
			ck_assert_uint_eq(s.hapax, 1);
			ck_assert_uint_eq(s.files, 2);
		}
		tally_destroy(e);
	}
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Out of memory at each allocation in turn while inputs are added: small
 * files packed, an empty one between them, a larger one cut into n-gram
 * chunks in flight.  tally_add_path fails the run or the input, or goes on
 * without what it could not have (a pack: the file is read on its own);
 * tally_finish then succeeds or fails, and tally_destroy gives back every
 * byte, of inputs whose edges were still to be stitched too. */
START_TEST(test_out_of_memory_while_adding)
{
	char dir[] = "/tmp/tally-engine-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	static const char *const names[] = { "a", "e", "b", "big", "a" };
	char paths[5][64];
	for (int i = 0; i < 5; i++)
		snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
	write_file(paths[0], "a b c\nd e\n");
	write_file(paths[1], "");
	write_file(paths[2], "x y z\n");
	size_t len;
	char *big = numbered(3000, "w", "\n", &len);
	write_file(paths[3], big);
	free(big);
	uint64_t k;
	for (k = 1;; k++) {
		tally_config cfg;
		tally_config_init(&cfg);
		cfg.ngram = 2;
		cfg.threads = 2;
		cfg.chunk_size = 4096;   /* "a" and "b" packed, "big" in 6 chunks */
		tally_engine *e = engine(&cfg);
		mem_fail_after(k);
		int rc = 0;
		for (int i = 0; i < 5 && rc > -2; i++)
			rc = tally_add_path(e, paths[i]);
		uint64_t left = mem_fail_after(0);
		if (rc > -2)
			tally_finish(e);
		tally_destroy(e);
		for (int c = 0; c < MEM_NCOMPONENTS; c++)
			ck_assert_msg(mem_current((mem_component)c) == 0,
				"out of memory at allocation %llu: %lld bytes of component %d left",
				(unsigned long long)k, (long long)mem_current((mem_component)c), c);
		if (left)
			break;   /* adding took fewer than k allocations */
	}
	ck_assert_uint_gt(k, 20);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(unlink(paths[i]), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* The bytes at path, NUL-terminated (*len without it). */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	size_t cap = 1 << 16, n = 0, k;
	char *b = malloc(cap);
	ck_assert_ptr_nonnull(b);
	while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n < 2) {
			b = realloc(b, cap *= 2);
			ck_assert_ptr_nonnull(b);
		}
	}
	fclose(f);
	b[n] = '\0';
	*len = n;
	return b;
}

/* The results of text under cfg, to path: by tally_write (all), or item
 * by item through tally_next, stopping at stop items (0: at the end), then
 * tally_write for the rest. */
static void write_results(tally_config *cfg, const char *text, size_t len, const char *path,
	int whole, uint64_t stop)
{
	char err[256];
	tally_engine *e = engine(cfg);
	ck_assert_int_eq(tally_add_memory(e, text, len, "t"), 0);
	ck_assert_int_eq(tally_finish(e), 0);
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	tally_item it;
	if (!whole) {
		uint64_t n = 0;
		int rc;
		while ((!stop || n < stop) && (rc = tally_next(e, &it)) == 1) {
			ck_assert_int_eq(tally_writer_put(w, &it), 0);
			n++;
		}
	}
	ck_assert_int_eq(tally_write(e, w), 0);
	ck_assert_int_eq(tally_next(e, &it), 0);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	ck_assert_int_eq(tally_end_output(e, 0, 1), 0);
	tally_destroy(e);
}

/* tally_write gives the bytes that tally_next gives item by item, in
 * every order, with --top and --min-count, on several threads; after
 * some items taken by tally_next, it writes the rest. */
START_TEST(test_write_as_next)
{
	enum { N = 40000 };
	char *text = malloc((size_t)N * 24);
	ck_assert_ptr_nonnull(text);
	size_t len = 0;
	for (int i = 0; i < N; i++)
		len += (size_t)sprintf(text + len, "k%d x%d\n", i % 9973, i % 37);
	char dir[] = "/tmp/tally-engine-XXXXXX", a[64], b[64];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(a, sizeof a, "%s/a", dir);
	snprintf(b, sizeof b, "%s/b", dir);
	static const tally_sort sorts[] = { TALLY_SORT_COUNT, TALLY_SORT_KEY, TALLY_SORT_NONE };
	static const uint64_t tops[] = { 0, 5000 };
	for (size_t si = 0; si < 3; si++)
	for (size_t ti = 0; ti < 2; ti++)
	for (unsigned threads = 1; threads <= 3; threads++) {
		tally_config cfg;
		tally_config_init(&cfg);
		cfg.sort = sorts[si];
		cfg.top = tops[ti];
		cfg.min_count = ti ? 2 : 0;
		cfg.threads = threads;
		cfg.chunk_size = 4096;
		write_results(&cfg, text, len, a, 0, 0);
		for (uint64_t stop = 0; stop <= 3000; stop += 3000) {
			write_results(&cfg, text, len, b, stop == 0, stop);
			size_t na, nb;
			char *x = slurp(a, &na), *y = slurp(b, &nb);
			ck_assert_msg(na == nb && memcmp(x, y, na) == 0,
				"sort %zu, top %zu, -j%u, stop %" PRIu64 ": outputs differ", si, ti, threads, stop);
			ck_assert_uint_gt(na, 0);
			free(x);
			free(y);
		}
	}
	unlink(a);
	unlink(b);
	rmdir(dir);
	free(text);
}
END_TEST

static Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_calls_out_of_order);
	tcase_add_test(tc, test_bad_enums_refused);
	tcase_add_test(tc, test_end_output_completes_stream);
	tcase_add_test(tc, test_peaks_per_engine);
	tcase_add_test(tc, test_versions_stable);
	tcase_add_test(tc, test_sorted_file_must_not_change);
	tcase_add_test(tc, test_out_of_memory_while_adding);
	tcase_add_test(tc, test_write_as_next);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(engine_suite());
}
