/*
 * test_stats.c - resident memory, human figures, the progress line, the
 * statistics as text and JSON, the sampler thread and its timeline, and the
 * SVG report.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "testutil.h"

#define MiB (1024ull * 1024)

static void sleep_seconds(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Number of times needle occurs in hay. */
static int occurrences(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Everything f (a memstream) received, NUL-terminated; caller frees. */
typedef struct capture {
	FILE  *f;
	char  *buf;
	size_t len;
} capture;

static void capture_open(capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	ck_assert_ptr_nonnull(c->f);
}

static char *capture_close(capture *c)
{
	fclose(c->f);
	return c->buf;
}

static int have_tool(const char *name)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* ---- Resident memory and the clock ----------------------------------- */

START_TEST(test_rss_plausible)
{
	uint64_t now = stats_rss_now(), peak = stats_rss_peak();
	ck_assert_uint_gt(now, 0);
	ck_assert_uint_ge(peak, now);
	/* A process this small runs in well under a gigabyte. */
	ck_assert_uint_lt(now, 1024 * MiB);
}
END_TEST

START_TEST(test_rss_peak_grows)
{
	uint64_t before = stats_rss_peak();
	size_t size = 64 * MiB;
	volatile unsigned char *block = malloc(size);
	ck_assert_ptr_nonnull((void *)block);
	for (size_t i = 0; i < size; i += 4096)
		block[i] = (unsigned char)(i >> 12 | 1);
	uint64_t now = stats_rss_now(), after = stats_rss_peak();
	ck_assert_uint_ge(now, 60 * MiB);
	ck_assert_uint_ge(after, before + 60 * MiB);
	ck_assert_uint_ge(after, now);
	free((void *)block);
}
END_TEST

START_TEST(test_clock_monotonic)
{
	double a = stats_now();
	sleep_seconds(0.01);
	double b = stats_now();
	ck_assert(a > 0);
	ck_assert(b > a);
}
END_TEST

/* ---- Human figures ---------------------------------------------------- */

START_TEST(test_format_bytes)
{
	char b[STATS_FIGURE_LEN];
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 0), "0 B");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 512), "512 B");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 1023), "1023 B");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 1024), "1.0 KiB");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 1536), "1.5 KiB");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 43325060), "41.3 MiB");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 212 * MiB), "212 MiB");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 1024 * MiB - 1), "1.0 GiB");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, 2040109465), "1.9 GiB");
	ck_assert_str_eq(stats_format_bytes(b, sizeof b, UINT64_MAX), "16.0 EiB");
}
END_TEST

START_TEST(test_format_count)
{
	char b[STATS_FIGURE_LEN];
	ck_assert_str_eq(stats_format_count(b, sizeof b, 0), "0");
	ck_assert_str_eq(stats_format_count(b, sizeof b, 999), "999");
	ck_assert_str_eq(stats_format_count(b, sizeof b, 1000), "1.0K");
	ck_assert_str_eq(stats_format_count(b, sizeof b, 1200000), "1.2M");
	ck_assert_str_eq(stats_format_count(b, sizeof b, 310000000), "310M");
	ck_assert_str_eq(stats_format_count(b, sizeof b, 999999), "1.0M");
	ck_assert_str_eq(stats_format_count(b, sizeof b, 7123456789ull), "7.1G");
}
END_TEST

START_TEST(test_rates)
{
	tally_stats st;
	memset(&st, 0, sizeof st);
	ck_assert(stats_mb_per_s(&st) == 0);
	ck_assert(stats_tokens_per_s(&st) == 0);
	st.bytes_decoded = 300000000;
	st.tokens = 5000000;
	st.t_total = 3;
	/* No counting time: the whole run is the denominator. */
	ck_assert_double_eq_tol(stats_mb_per_s(&st), 100.0, 1e-9);
	st.t_count = 2;
	ck_assert_double_eq_tol(stats_mb_per_s(&st), 150.0, 1e-9);
	ck_assert_double_eq_tol(stats_tokens_per_s(&st), 2500000.0, 1e-6);
}
END_TEST

/* ---- Progress line ----------------------------------------------------- */

/* The characters a terminal shows: without the leading \r and the erase. */
static size_t visible_width(const char *s)
{
	size_t n = strlen(s);
	if (n >= 1 && s[0] == '\r')
		n--;
	if (n >= 3 && strcmp(s + strlen(s) - 3, "\x1b[K") == 0)
		n -= 3;
	return n;
}

static char *render_width(const tally_progress *p, unsigned columns)
{
	capture c;
	capture_open(&c);
	tally_progress_render(c.f, p, columns);
	return capture_close(&c);
}

static char *render(const tally_progress *p)
{
	return render_width(p, 0);
}

START_TEST(test_progress_known_total)
{
	tally_progress p = {
		.elapsed = 5, .bytes_done = 2040109465, .bytes_total = 4294967296ull,
		.tokens = 310000000, .distinct = 1200000, .rss = 212 * MiB, .mbps = 412,
	};
	char *s = render(&p);
	ck_assert_str_eq(s, "\r 47% 1.9 GiB/4.0 GiB  412 MB/s  ETA 0:05  tokens 310M  keys 1.2M  RSS 212 MiB\x1b[K");
	ck_assert_ptr_null(strchr(s, '\n'));
	ck_assert_uint_le(visible_width(s), 100);
	free(s);

	/* Not yet moving: no ETA to promise. */
	p.mbps = 0;
	s = render(&p);
	ck_assert_ptr_nonnull(strstr(s, "ETA --:--"));
	free(s);

	/* Done, and over an hour to go. */
	p.bytes_done = p.bytes_total;
	s = render(&p);
	ck_assert_ptr_nonnull(strstr(s, "\r100% "));
	ck_assert_ptr_nonnull(strstr(s, "ETA 0:00"));
	free(s);
	p.bytes_done = 1000000;
	p.mbps = 0.5;
	s = render(&p);
	ck_assert_ptr_nonnull(strstr(s, "\r  0% "));
	ck_assert_ptr_nonnull(strstr(s, "ETA 2:23:08"));
	free(s);
}
END_TEST

START_TEST(test_progress_unknown_total)
{
	tally_progress p = {
		.elapsed = 5, .bytes_done = 43325060, .bytes_total = 0,
		.tokens = 999, .distinct = 12, .rss = 3 * MiB, .mbps = 8.26,
	};
	char *s = render(&p);
	ck_assert_str_eq(s, "\r 41.3 MiB  8.3 MB/s  tokens 999  keys 12  RSS 3.0 MiB\x1b[K");
	ck_assert_ptr_null(strchr(s, '%'));
	ck_assert_ptr_null(strstr(s, "ETA"));
	ck_assert_ptr_null(strchr(s, '\n'));
	free(s);
}
END_TEST

START_TEST(test_progress_widest)
{
	tally_progress p = {
		.elapsed = 1e6, .bytes_done = UINT64_MAX / 3, .bytes_total = UINT64_MAX,
		.tokens = UINT64_MAX, .distinct = UINT64_MAX, .rss = UINT64_MAX, .mbps = 1e-9,
	};
	char *s = render(&p);
	ck_assert_ptr_null(strchr(s, '\n'));
	ck_assert_uint_le(visible_width(s), 100);
	free(s);
}
END_TEST

/* On a terminal narrower than the line, fields are left out whole, the
 * least telling first, and the last column stays empty: 81 columns of
 * line on an 80-column terminal wrapped, and each redraw left a line. */
START_TEST(test_progress_fits_width)
{
	tally_progress p = {
		.elapsed = 5, .bytes_done = 29360128, .bytes_total = 97307853,
		.tokens = 2600000, .distinct = 1000000, .rss = 47500000, .mbps = 58.7,
	};
	static const struct { unsigned columns; const char *line; } known[] = {
		{ 0,   " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01  tokens 2.6M  keys 1.0M  RSS 45.3 MiB" },
		{ 82,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01  tokens 2.6M  keys 1.0M  RSS 45.3 MiB" },
		{ 81,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01  tokens 2.6M  keys 1.0M" },
		{ 68,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01  tokens 2.6M  keys 1.0M" },
		{ 67,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01  tokens 2.6M" },
		{ 57,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01  tokens 2.6M" },
		{ 56,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01" },
		{ 44,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s  ETA 0:01" },
		{ 43,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s" },
		{ 34,  " 30% 28.0 MiB/92.8 MiB  58.7 MB/s" },
		{ 33,  " 30% 28.0 MiB/92.8 MiB" },
		{ 23,  " 30% 28.0 MiB/92.8 MiB" },
		{ 22,  " 30%" },
		{ 5,   " 30%" },
		{ 4,   "" },
		{ 1,   "" },
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		char *s = render_width(&p, known[i].columns);
		char want[128];
		snprintf(want, sizeof want, "\r%s\x1b[K", known[i].line);
		ck_assert_msg(strcmp(s, want) == 0, "%u columns: \"%s\"", known[i].columns, s + 1);
		if (known[i].columns > 0)
			ck_assert_uint_lt(visible_width(s), known[i].columns);
		free(s);
	}

	/* The total unknown, and past counting. */
	p.bytes_total = 0;
	char *s = render_width(&p, 40);
	ck_assert_str_eq(s, "\r 28.0 MiB  58.7 MB/s  tokens 2.6M\x1b[K");
	free(s);
	s = render_width(&p, 10);
	ck_assert_str_eq(s, "\r 28.0 MiB\x1b[K");
	free(s);
	s = render_width(&p, 9);
	ck_assert_str_eq(s, "\r\x1b[K");
	free(s);
	p.phase = TALLY_PHASE_MERGING;
	s = render_width(&p, 80);
	ck_assert_str_eq(s, "\r 28.0 MiB  merging  tokens 2.6M  keys 1.0M  RSS 45.3 MiB\x1b[K");
	free(s);

	/* The widest figures in every width: never more than it allows. */
	p = (tally_progress){
		.elapsed = 1e6, .bytes_done = UINT64_MAX / 3, .bytes_total = UINT64_MAX,
		.tokens = UINT64_MAX, .distinct = UINT64_MAX, .rss = UINT64_MAX, .mbps = 1e300,
	};
	for (unsigned w = 1; w < 200; w++) {
		s = render_width(&p, w);
		ck_assert_uint_lt(visible_width(s), w);
		ck_assert_ptr_null(strchr(s + 1, '\r'));
		free(s);
	}
}
END_TEST

/* Past counting, the line names the phase where the rate and time left
 * were (writing, with the keys written), and keeps the rest. */
START_TEST(test_progress_phases)
{
	tally_progress p = {
		.elapsed = 9, .bytes_done = 4294967296ull, .bytes_total = 4294967296ull,
		.tokens = 310000000, .distinct = 0, .rss = 212 * MiB, .mbps = 3.5,
		.phase = TALLY_PHASE_MERGING,
	};
	char *s = render(&p);
	/* Keys counted and none in the tables: count files set aside (tally
	 * merge --sort=key), whose keys are known only as they are merged. */
	ck_assert_str_eq(s, "\r100% 4.0 GiB/4.0 GiB  merging  tokens 310M  RSS 212 MiB\x1b[K");
	free(s);

	p.phase = TALLY_PHASE_SORTING;
	p.bytes_total = 0;
	p.distinct = 1200000;
	s = render(&p);
	ck_assert_str_eq(s, "\r 4.0 GiB  sorting  tokens 310M  keys 1.2M  RSS 212 MiB\x1b[K");
	free(s);

	/* Writing, the keys given out so far follow. */
	p.phase = TALLY_PHASE_WRITING;
	p.written = 345678;
	s = render(&p);
	ck_assert_str_eq(s, "\r 4.0 GiB  writing  written 346K  tokens 310M  keys 1.2M  RSS 212 MiB\x1b[K");
	free(s);

	/* Counting, the rate comes back. */
	p.phase = TALLY_PHASE_COUNTING;
	s = render(&p);
	ck_assert_ptr_nonnull(strstr(s, "  3.5 MB/s  "));
	ck_assert_ptr_null(strstr(s, "sorting"));
	free(s);

	p = (tally_progress){
		.elapsed = 1e6, .bytes_done = UINT64_MAX, .bytes_total = UINT64_MAX,
		.tokens = UINT64_MAX, .distinct = UINT64_MAX, .rss = UINT64_MAX,
		.phase = TALLY_PHASE_MERGING,
	};
	s = render(&p);
	ck_assert_uint_le(visible_width(s), 100);
	free(s);
}
END_TEST

/* The engine's phase reaches the progress records: the last one, handed
 * over with final=1 when the output ends (tally_end_output, or
 * tally_destroy without it), was taken while it was written, with the keys
 * given out. */
typedef struct phase_log {
	int finals;
	tally_phase last_phase, final_phase;
	uint64_t final_written;
	int backwards;              /* a phase before one already seen */
} phase_log;

static void log_phase(void *ctx, const tally_progress *p, int final)
{
	phase_log *l = ctx;
	if (p->phase < l->last_phase)
		l->backwards = 1;
	l->last_phase = p->phase;
	if (final) {
		l->finals++;
		l->final_phase = p->phase;
		l->final_written = p->written;
	}
}

START_TEST(test_engine_phases)
{
	static const char text[] = "one two two three three three\n";
	phase_log log;
	tally_config cfg;
	char err[256];
	memset(&log, 0, sizeof log);
	memset(&cfg, 0, sizeof cfg);
	cfg.threads = 2;
	cfg.ctx = &log;
	cfg.on_progress = log_phase;
	for (int end = 0; end <= 1; end++) {
		memset(&log, 0, sizeof log);
		tally_engine *e = tally_create(&cfg, err, sizeof err, NULL);
		ck_assert_ptr_nonnull(e);
		for (int i = 0; i < 1000; i++)
			ck_assert_int_eq(tally_add_memory(e, text, sizeof text - 1, "text"), 0);
		ck_assert_int_eq(tally_finish(e), 0);
		ck_assert_int_eq(log.finals, 0);
		tally_item it;
		ck_assert_int_eq(tally_next(e, &it), 1);
		ck_assert_uint_eq(it.count, 3000);
		ck_assert_int_eq(tally_next(e, &it), 1);
		if (end) {
			ck_assert_int_eq(tally_end_output(e, 0, 1), 0);
			ck_assert_int_eq(log.finals, 1);
		}
		tally_destroy(e);
		ck_assert_int_eq(log.finals, 1);
		ck_assert_int_eq(log.final_phase, TALLY_PHASE_WRITING);
		ck_assert_uint_eq(log.final_written, 2);
		ck_assert_int_eq(log.backwards, 0);
	}
}
END_TEST

/* The progress line's distinct keys count each key once: not once per
 * thread whose table holds it, nor only the keys a table still holds after
 * evicting some.  With one table that evicted nothing the figure is exact;
 * otherwise it is the sketch's estimate, within 2% here (its standard error
 * is 0.8%, and the run is the same every time). */
typedef struct distinct_log {
	uint64_t final_distinct, most_distinct;
} distinct_log;

static void log_distinct(void *ctx, const tally_progress *p, int final)
{
	distinct_log *l = ctx;
	if (p->distinct > l->most_distinct)
		l->most_distinct = p->distinct;
	if (final)
		l->final_distinct = p->distinct;
}

static distinct_log count_distinct(unsigned threads, uint64_t memory, uint64_t *distinct,
	uint64_t *evictions)
{
	/* 30000 words, each three times, a third of the text apart: in the
	 * chunks of both threads. */
	enum { WORDS = 30000 };
	size_t cap = 3 * WORDS * 8 + 1, len = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < WORDS; i++)
			len += (size_t)snprintf(text + len, cap - len, "w%05d%c", i,
				i % 10 == 9 ? '\n' : ' ');
	distinct_log log;
	tally_config cfg;
	char err[256];
	memset(&log, 0, sizeof log);
	tally_config_init(&cfg);
	cfg.threads = threads;
	cfg.memory = memory;
	cfg.chunk_size = 4096;
	cfg.ctx = &log;
	cfg.on_progress = log_distinct;
	tally_engine *e = tally_create(&cfg, err, sizeof err, NULL);
	ck_assert_msg(e != NULL, "%s", err);
	ck_assert_int_eq(tally_add_memory(e, text, len, "text"), 0);
	ck_assert_int_eq(tally_finish(e), 0);
	tally_item it;
	while (tally_next(e, &it) == 1)
		;
	ck_assert_int_eq(tally_end_output(e, 0, 1), 0);
	tally_stats st;
	tally_get_stats(e, &st);
	*distinct = st.distinct;
	*evictions = st.evictions;
	tally_destroy(e);
	free(text);
	return log;
}

START_TEST(test_engine_progress_distinct)
{
	uint64_t distinct, evictions;
	distinct_log l = count_distinct(1, 0, &distinct, &evictions);
	ck_assert_uint_eq(distinct, 30000);
	ck_assert_uint_eq(evictions, 0);
	ck_assert_uint_eq(l.final_distinct, 30000);
	ck_assert_uint_le(l.most_distinct, 30000);

	static const struct { unsigned threads; uint64_t memory; } runs[] = {
		{ 2, 0 }, { 3, 0 }, { 1, 256 * 1024 }, { 2, 256 * 1024 },
	};
	for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
		l = count_distinct(runs[r].threads, runs[r].memory, &distinct, &evictions);
		ck_assert_uint_eq(distinct, 30000);
		if (runs[r].memory)
			ck_assert_uint_gt(evictions, 0);
		ck_assert_msg(l.final_distinct >= 29400 && l.final_distinct <= 30600,
			"%u threads, memory %llu: %llu distinct keys shown", runs[r].threads,
			(unsigned long long)runs[r].memory, (unsigned long long)l.final_distinct);
		ck_assert_uint_le(l.most_distinct, 30600);
	}
}
END_TEST

/* The total is what tally_expect_bytes declared, and nothing else: the
 * sizes of the inputs opened so far made one that grew as they were
 * opened, and a percentage that went back. */
typedef struct total_log {
	int      samples;
	uint64_t total_min, total_max, done_final;
} total_log;

static void log_total(void *ctx, const tally_progress *p, int final)
{
	total_log *l = ctx;
	if (l->samples == 0 || p->bytes_total < l->total_min)
		l->total_min = p->bytes_total;
	if (p->bytes_total > l->total_max)
		l->total_max = p->bytes_total;
	l->samples++;
	if (final)
		l->done_final = p->bytes_done;
}

static total_log count_with_total(int declare, uint64_t declared)
{
	static const char text[] = "one two two three three three\n";
	total_log log;
	tally_config cfg;
	char err[256];
	memset(&log, 0, sizeof log);
	tally_config_init(&cfg);
	cfg.threads = 2;
	cfg.ctx = &log;
	cfg.on_progress = log_total;
	tally_engine *e = tally_create(&cfg, err, sizeof err, NULL);
	ck_assert_ptr_nonnull(e);
	if (declare)
		tally_expect_bytes(e, declared);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(tally_add_memory(e, text, sizeof text - 1, "text"), 0);
	ck_assert_int_eq(tally_finish(e), 0);
	tally_destroy(e);
	return log;
}

START_TEST(test_engine_total_declared_only)
{
	total_log l = count_with_total(0, 0);
	ck_assert_int_ge(l.samples, 1);
	ck_assert_uint_eq(l.total_max, 0);
	ck_assert_uint_eq(l.done_final, 3000);

	l = count_with_total(1, 3000);
	ck_assert_uint_eq(l.total_min, 3000);
	ck_assert_uint_eq(l.total_max, 3000);
	ck_assert_uint_eq(l.done_final, 3000);
}
END_TEST

/* More bytes read than the total (files that grew): no percentage that
 * stays at 100, no time left, but the bytes and the rate. */
START_TEST(test_progress_past_total)
{
	tally_progress p = {
		.elapsed = 5, .bytes_done = 2 * MiB + 1, .bytes_total = 2 * MiB,
		.tokens = 999, .distinct = 12, .rss = 3 * MiB, .mbps = 8.26,
	};
	char *s = render(&p);
	ck_assert_str_eq(s, "\r 2.0 MiB  8.3 MB/s  tokens 999  keys 12  RSS 3.0 MiB\x1b[K");
	free(s);
	p.bytes_done = 2 * MiB;
	s = render(&p);
	ck_assert_str_eq(s, "\r100% 2.0 MiB/2.0 MiB  8.3 MB/s  ETA 0:00  tokens 999  keys 12  RSS 3.0 MiB\x1b[K");
	free(s);
}
END_TEST

START_TEST(test_progress_erase)
{
	capture c;
	capture_open(&c);
	tally_progress_erase(c.f);
	char *s = capture_close(&c);
	ck_assert_str_eq(s, "\r\x1b[K");
	free(s);
}
END_TEST

/* ---- Statistics as text and JSON --------------------------------------- */

static tally_stats sample_stats(void)
{
	tally_stats st = {
		.bytes_read = 43325060, .bytes_decoded = 43325060, .files = 1,
		.tokens = 8000000, .distinct = 30000, .hapax = 12000, .illformed_bytes = 3,
		.cut_keys = 1, .skipped_records = 2,
		.t_count = 1.5, .t_merge = 0.25, .t_sort = 0.125, .t_write = 0.0625, .t_total = 2,
		.threads = 2, .budget = 1024 * MiB, .peak_rss = 212 * MiB,
		.peak_table = 64 * MiB, .peak_pool = 100 * MiB, .peak_io = 8 * MiB,
		.peak_spill = 0, .pool_hits = 7900000, .pool_misses = 100000,
		.evictions = 5, .runs_spilled = 4, .bytes_spilled = 10 * MiB, .merge_passes = 1,
	};
	return st;
}

START_TEST(test_stats_print)
{
	tally_stats st = sample_stats();
	capture c;
	capture_open(&c);
	tally_stats_print(c.f, &st);
	char *s = capture_close(&c);

	ck_assert_msg(strncmp(s, "tally: statistics\n", 18) == 0, "%s", s);
	ck_assert_ptr_nonnull(strstr(s, "\n  files:               1 read (0 compressed), 0 failed\n"));
	ck_assert_ptr_nonnull(strstr(s, "\n  bytes read:          43325060 (41.3 MiB)\n"));
	ck_assert_ptr_nonnull(strstr(s, "\n  tokens:              8000000 (8.0M)\n"));
	ck_assert_ptr_nonnull(strstr(s, "\n  time counting:       1.500 s\n"));
	ck_assert_ptr_nonnull(strstr(s, "\n  throughput:          28.9 MB/s counting, 21.7 MB/s overall (bytes decoded)\n"));
	ck_assert_ptr_nonnull(strstr(s, "\n  peak RSS:            222298112 (212 MiB)\n"));
	ck_assert_ptr_nonnull(strstr(s, "\n  merge passes:        1\n"));

	/* Every line after the header is "  name: value", values aligned. */
	const char *line = strchr(s, '\n') + 1;
	int lines = 0;
	while (*line) {
		const char *end = strchr(line, '\n');
		ck_assert_ptr_nonnull(end);
		ck_assert(line[0] == ' ' && line[1] == ' ' && line[2] != ' ');
		const char *colon = memchr(line, ':', (size_t)(end - line));
		ck_assert_ptr_nonnull(colon);
		ck_assert_int_le(colon - line, 22);
		ck_assert(line[23] != ' ' && line[22] == ' ');
		lines++;
		line = end + 1;
	}
	ck_assert_int_eq(lines, 29);
	free(s);
}
END_TEST

/* tokens/s and its scaled form in brackets are one rounded figure: 32.8
 * is "33 (33)", not "33 (32)". */
START_TEST(test_stats_print_rates_agree)
{
	static const struct { uint64_t tokens; double t; const char *line; } cases[] = {
		{ 197, 6, "\n  tokens/s:            33 counting (33), 33 overall\n" },
		{ 3, 1.6, "\n  tokens/s:            2 counting (2), 2 overall\n" },
		{ 1999999, 2, "\n  tokens/s:            1000000 counting (1.0M), 1000000 overall\n" },
		{ 0, 0, "\n  tokens/s:            0 counting (0), 0 overall\n" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tally_stats st = sample_stats();
		st.tokens = cases[i].tokens;
		st.t_count = st.t_total = cases[i].t;
		capture c;
		capture_open(&c);
		tally_stats_print(c.f, &st);
		char *s = capture_close(&c);
		ck_assert_msg(strstr(s, cases[i].line) != NULL, "case %zu:\n%s", i, s);
		free(s);
	}
}
END_TEST

static const char *const json_keys[] = {
	"bytes_read", "bytes_decoded", "files", "files_compressed", "files_failed",
	"tokens", "distinct", "hapax", "illformed_bytes", "cut_keys", "skipped_records",
	"t_count", "t_merge", "t_sort", "t_write", "t_total", "mb_per_s", "tokens_per_s",
	"threads", "budget", "peak_rss", "peak_table", "peak_pool", "peak_io", "peak_spill",
	"pool_hits", "pool_misses", "evictions", "runs_spilled", "bytes_spilled", "merge_passes",
};
#define NKEYS (sizeof json_keys / sizeof json_keys[0])

START_TEST(test_stats_json_keys)
{
	tally_stats st = sample_stats();
	capture c;
	capture_open(&c);
	ck_assert_int_eq(tally_stats_write_json(c.f, &st), 0);
	char *s = capture_close(&c);

	ck_assert(s[0] == '{');
	ck_assert_str_eq(s + strlen(s) - 2, "}\n");
	ck_assert_int_eq(occurrences(s, "\n"), 1);
	ck_assert_int_eq(occurrences(s, "\":"), (int)NKEYS);
	for (size_t i = 0; i < NKEYS; i++) {
		char k[64];
		snprintf(k, sizeof k, "\"%s\":", json_keys[i]);
		ck_assert_msg(occurrences(s, k) == 1, "key %s in %s", json_keys[i], s);
	}
	ck_assert_ptr_nonnull(strstr(s, "{\"bytes_read\":43325060,"));
	ck_assert_ptr_nonnull(strstr(s, ",\"t_count\":1.500000,"));
	ck_assert_ptr_nonnull(strstr(s, ",\"t_write\":0.062500,"));
	ck_assert_ptr_nonnull(strstr(s, ",\"mb_per_s\":28.883,"));
	ck_assert_ptr_nonnull(strstr(s, ",\"tokens_per_s\":5333333.333,"));
	ck_assert_ptr_nonnull(strstr(s, ",\"budget\":1073741824,"));
	ck_assert_ptr_nonnull(strstr(s, ",\"merge_passes\":1}"));
	free(s);
}
END_TEST

START_TEST(test_stats_json_parses)
{
	if (!have_tool("python3")) {
		fprintf(stderr, "test_stats: python3 not found, JSON parse check skipped\n");
		return;
	}
	char path[] = "/tmp/test_stats_json_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	tally_stats st = sample_stats();
	st.t_merge = NAN;   /* JSON has no NaN: written as 0 */
	ck_assert_int_eq(tally_stats_write_json(f, &st), 0);
	fclose(f);

	char cmd[2048], list[768] = "";
	for (size_t i = 0; i < NKEYS; i++) {
		strcat(list, i ? ",'" : "'");
		strcat(list, json_keys[i]);
		strcat(list, "'");
	}
	snprintf(cmd, sizeof cmd,
		"python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); k=[%s]; "
		"assert list(d)==k, list(d); assert all(isinstance(d[x],(int,float)) for x in k); "
		"assert isinstance(d['tokens'],int) and isinstance(d['t_count'],float); "
		"assert d['t_merge']==0\" %s", list, path);
	int rc = system(cmd);
	unlink(path);
	ck_assert_int_eq(rc, 0);
}
END_TEST

START_TEST(test_stats_json_write_error)
{
	FILE *f = fopen("/dev/full", "w");
	if (!f) {
		fprintf(stderr, "test_stats: /dev/full missing, write error check skipped\n");
		return;
	}
	tally_stats st = sample_stats();
	ck_assert_int_eq(tally_stats_write_json(f, &st), -1);
	fclose(f);
}
END_TEST

/* ---- Sampler ------------------------------------------------------------ */

typedef struct feed {
	_Atomic uint64_t bytes, tokens;
	_Atomic int reads;
	_Atomic int progress_calls;
	_Atomic int bad_progress;     /* a final=1 call, or a progress/read mismatch */
	double start;
	int by_clock;                 /* bytes grow at 10 MB/s of real time */
	int number_reads;             /* tokens = how many reads so far */
} feed;

static void feed_read(void *ctx, stats_sample *s)
{
	feed *fd = ctx;
	atomic_fetch_add(&fd->reads, 1);
	if (fd->by_clock) {
		s->bytes_done = (uint64_t)((stats_now() - fd->start) * 1e7);
	} else {
		s->bytes_done = atomic_load(&fd->bytes);
	}
	s->bytes_total = 1000000000;
	s->tokens = fd->number_reads ? (uint64_t)atomic_load(&fd->reads) : atomic_load(&fd->tokens);
	s->distinct = 42;
}

static void feed_progress(void *ctx, const tally_progress *p, int final)
{
	feed *fd = ctx;
	if (final || p->distinct != 42 || p->bytes_total != 1000000000 || p->rss == 0)
		atomic_store(&fd->bad_progress, 1);
	atomic_fetch_add(&fd->progress_calls, 1);
}

static void check_increasing(const stats_sample *tl, size_t n)
{
	for (size_t i = 1; i < n; i++)
		ck_assert_msg(tl[i].t > tl[i - 1].t, "sample %zu at %f after %f", i, tl[i].t, tl[i - 1].t);
}

START_TEST(test_sampler_samples)
{
	feed fd;
	memset(&fd, 0, sizeof fd);
	void *table = mem_alloc(MEM_TABLE, MiB);
	ck_assert_ptr_nonnull(table);

	double t0 = stats_now();
	stats_sampler *s = stats_sampler_start(0.02, feed_read, &fd, 1, feed_progress, &fd);
	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < 15; i++) {
		atomic_fetch_add(&fd.bytes, 1000);
		atomic_fetch_add(&fd.tokens, 10);
		sleep_seconds(0.02);
	}
	stats_sampler_stop(s);
	double elapsed = stats_now() - t0;
	stats_sampler_stop(s);   /* twice is harmless */

	size_t n;
	const stats_sample *tl = stats_sampler_timeline(s, &n);
	ck_assert_ptr_nonnull(tl);
	/* Every tick is kept (far from the limit) and passed to progress;
	 * the last sample, taken at stop, is kept but not passed. */
	ck_assert_uint_eq(n, (size_t)atomic_load(&fd.progress_calls) + 1);
	ck_assert_int_eq(atomic_load(&fd.bad_progress), 0);
	ck_assert_uint_ge(n, 3);
	ck_assert_uint_le(n, (size_t)(elapsed / 0.02) + 2);
	check_increasing(tl, n);
	ck_assert(tl[n - 1].t <= elapsed);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_gt(tl[i].rss, 0);
		ck_assert_uint_ge(tl[i].mem[MEM_TABLE], MiB);
		ck_assert_uint_eq(tl[i].distinct, 42);
		ck_assert(tl[i].mbps >= 0);
	}
	ck_assert_uint_eq(tl[n - 1].bytes_done, 15000);
	ck_assert_uint_eq(tl[n - 1].tokens, 150);

	tally_progress last;
	stats_sampler_last(s, &last);
	ck_assert_uint_eq(last.bytes_done, 15000);
	ck_assert_uint_eq(last.tokens, 150);
	ck_assert_uint_eq(last.rss, tl[n - 1].rss);
	ck_assert(last.elapsed == tl[n - 1].t);
	stats_sampler_free(s);
	mem_free(MEM_TABLE, table, MiB);
}
END_TEST

/* Stopping does not wait for the interval: were it to, this test would
 * outlive Check's timeout and fail. */
START_TEST(test_sampler_stops_at_once)
{
	feed fd;
	memset(&fd, 0, sizeof fd);
	stats_sampler *s = stats_sampler_start(1000, feed_read, &fd, 1, feed_progress, &fd);
	ck_assert_ptr_nonnull(s);
	sleep_seconds(0.01);
	stats_sampler_stop(s);
	size_t n;
	stats_sampler_timeline(s, &n);
	ck_assert_uint_eq(n, 1);   /* the last sample only */
	ck_assert_int_eq(atomic_load(&fd.progress_calls), 0);
	stats_sampler_free(s);
}
END_TEST

START_TEST(test_sampler_no_keep)
{
	feed fd;
	memset(&fd, 0, sizeof fd);
	stats_sampler *s = stats_sampler_start(0.01, feed_read, &fd, 0, NULL, NULL);
	ck_assert_ptr_nonnull(s);
	sleep_seconds(0.1);
	stats_sampler_free(s);   /* stops too */

	s = stats_sampler_start(0.01, feed_read, &fd, 0, feed_progress, &fd);
	ck_assert_ptr_nonnull(s);
	while (atomic_load(&fd.progress_calls) < 3)
		sleep_seconds(0.01);
	stats_sampler_stop(s);
	size_t n;
	stats_sampler_timeline(s, &n);
	ck_assert_uint_eq(n, 0);
	tally_progress last;
	stats_sampler_last(s, &last);
	ck_assert_uint_eq(last.distinct, 42);
	stats_sampler_free(s);
	ck_assert_ptr_null(stats_sampler_start(0.01, NULL, NULL, 0, NULL, NULL));
}
END_TEST

START_TEST(test_sampler_thinning)
{
	feed fd;
	memset(&fd, 0, sizeof fd);
	fd.number_reads = 1;
	stats_sampler *s = stats_sampler_start(1e-4, feed_read, &fd, 1, feed_progress, &fd);
	ck_assert_ptr_nonnull(s);
	/* Run until the timeline has filled and been halved at least once
	 * (bounded by the test's timeout, not by a clock assertion). */
	while (atomic_load(&fd.progress_calls) < STATS_TIMELINE_MAX + 500)
		sleep_seconds(0.01);
	stats_sampler_stop(s);

	size_t n;
	const stats_sample *tl = stats_sampler_timeline(s, &n);
	int calls = atomic_load(&fd.progress_calls);
	ck_assert_int_gt(calls, STATS_TIMELINE_MAX);
	ck_assert_uint_le(n, STATS_TIMELINE_MAX + 1);
	ck_assert_uint_ge(n, STATS_TIMELINE_MAX / 2);
	ck_assert_uint_lt(n, (size_t)calls);
	check_increasing(tl, n);
	/* Read 1 seeds the throughput window, read k+1 makes tick k.  Kept are
	 * the ticks that are multiples of a power of two (the stride), evenly,
	 * from the first such tick on, and then the last sample, taken at stop. */
	uint64_t stride = tl[0].tokens - 1;
	ck_assert_uint_ge(stride, 2);
	ck_assert_uint_eq(stride & (stride - 1), 0);
	for (size_t i = 0; i + 2 < n; i++)
		ck_assert_uint_eq(tl[i + 1].tokens - tl[i].tokens, stride);
	ck_assert_uint_gt(tl[n - 1].tokens, tl[n - 2].tokens);
	ck_assert_uint_eq(tl[n - 1].tokens, (uint64_t)atomic_load(&fd.reads));
	stats_sampler_free(s);
}
END_TEST

START_TEST(test_sampler_throughput)
{
	feed fd;
	memset(&fd, 0, sizeof fd);
	fd.by_clock = 1;
	fd.start = stats_now();
	stats_sampler *s = stats_sampler_start(0.05, feed_read, &fd, 1, NULL, NULL);
	ck_assert_ptr_nonnull(s);
	sleep_seconds(0.8);
	stats_sampler_stop(s);
	size_t n;
	const stats_sample *tl = stats_sampler_timeline(s, &n);
	ck_assert_uint_ge(n, 2);
	/* 10 MB/s by construction; the window is most of a second long, so
	 * scheduling noise between the clock and the read stays small. */
	ck_assert_msg(tl[n - 1].mbps > 7.5 && tl[n - 1].mbps < 12.5, "mbps %f", tl[n - 1].mbps);
	stats_sampler_free(s);
}
END_TEST

/* ---- Report -------------------------------------------------------------- */

static const char *const series_ids[] = {
	"series-throughput", "series-rss", "series-tables", "series-pool",
	"series-io", "series-spill", "budget-line", "phases-throughput", "phases-memory",
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* A run that fills the budget, spills, and slows down to merge. */
static stats_sample *synthetic_timeline(size_t n)
{
	stats_sample *tl = calloc(n ? n : 1, sizeof *tl);
	ck_assert_ptr_nonnull(tl);
	uint64_t done = 0;
	for (size_t i = 0; i < n; i++) {
		stats_sample *s = &tl[i];
		s->t = 0.25 * (double)(i + 1);
		int counting = i < n * 4 / 5;
		s->mbps = counting ? 300.0 + (double)(i % 7) * 10 : 15.0;
		done += (uint64_t)(s->mbps * 0.25e6);
		s->bytes_done = done;
		s->bytes_total = 8000000000ull;
		uint64_t pool = (uint64_t)i * 3 * MiB;
		if (pool > 600 * MiB)
			pool = 600 * MiB;
		s->mem[MEM_TABLE] = (16 * MiB) << (i * 4 / (n ? n : 1));
		s->mem[MEM_POOL] = pool;
		s->mem[MEM_IO] = counting ? 24 * MiB : 0;
		s->mem[MEM_SPILL] = pool == 600 * MiB ? 16 * MiB : 0;
		s->rss = s->mem[MEM_TABLE] + s->mem[MEM_POOL] + s->mem[MEM_IO] + s->mem[MEM_SPILL] + 20 * MiB;
		s->tokens = done / 6;
		s->distinct = pool / 24;
		/* The last fifth: merging, then sorting. */
		s->phase = counting ? TALLY_PHASE_COUNTING
			: i < n * 9 / 10 ? TALLY_PHASE_MERGING : TALLY_PHASE_SORTING;
	}
	return tl;
}

/* Writes a report into a fresh directory and checks it; returns the text
 * (caller frees).  The directory holds nothing else afterwards. */
static char *report_roundtrip(const stats_sample *tl, size_t n, const tally_stats *st)
{
	char dir[] = "/tmp/test_stats_report_XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/run <1> & \"report\".svg", dir);
	ck_assert_msg(stats_write_report(path, tl, n, st, err, sizeof err) == 0, "%s", err);

	/* Only the report: the temporary file was renamed into place. */
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int entries = 0;
	for (struct dirent *e; (e = readdir(d)); )
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	closedir(d);
	ck_assert_int_eq(entries, 1);

	if (have_tool("xmllint")) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
		ck_assert_msg(system(cmd) == 0, "xmllint rejects the report (n=%zu)", n);
	} else {
		fprintf(stderr, "test_stats: xmllint not found, well-formedness check skipped\n");
	}

	char *svg = slurp(path);
	unlink(path);
	rmdir(dir);

	ck_assert_msg(strncmp(svg, "<?xml", 5) == 0, "no XML declaration");
	ck_assert_ptr_nonnull(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	ck_assert_ptr_nonnull(strstr(svg, " viewBox=\"0 0 "));
	ck_assert_ptr_nonnull(strstr(svg, "tally run report"));
	ck_assert_str_eq(svg + strlen(svg) - 7, "</svg>\n");
	ck_assert_ptr_null(strstr(svg, "<script"));
	ck_assert_ptr_null(strstr(svg, "href"));
	ck_assert_ptr_null(strstr(svg, "url("));
	for (size_t i = 0; i < sizeof series_ids / sizeof series_ids[0]; i++) {
		char id[64];
		snprintf(id, sizeof id, "id=\"%s\"", series_ids[i]);
		ck_assert_msg(occurrences(svg, id) == 1, "%s (n=%zu)", series_ids[i], n);
	}
	return svg;
}

START_TEST(test_report_full)
{
	tally_stats st = sample_stats();
	size_t n = 400;
	stats_sample *tl = synthetic_timeline(n);
	char *svg = report_roundtrip(tl, n, &st);
	/* Data drawn as paths, the budget labelled, the caption filled. */
	ck_assert_ptr_nonnull(strstr(svg, "<polyline"));
	ck_assert_ptr_nonnull(strstr(svg, "budget 1.0 GiB</text>"));
	ck_assert_ptr_nonnull(strstr(svg, "stroke-dasharray"));
	ck_assert_ptr_nonnull(strstr(svg, ">41.3 MiB</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">28.9 MB/s</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">elapsed (s)</text>"));
	/* The phases past counting: a band each in both panels, and named in
	 * the legend; counting has neither. */
	ck_assert_ptr_nonnull(strstr(svg, "class=\"legend\">merging</text>"));
	ck_assert_ptr_nonnull(strstr(svg, "class=\"legend\">sorting</text>"));
	ck_assert_ptr_null(strstr(svg, "class=\"legend\">counting</text>"));
	ck_assert_ptr_null(strstr(svg, "class=\"legend\">writing</text>"));
	const char *band = strstr(svg, "<g id=\"phases-throughput\">\n<rect ");
	ck_assert_ptr_nonnull(band);
	ck_assert_int_eq(occurrences(strstr(svg, "<g id=\"phases-memory\">"), "fill-opacity=\"0.06\"/>"), 1);
	ck_assert_int_eq(occurrences(svg, "fill-opacity=\"0.12\"/>"), 2);
	free(svg);

	/* All counting: no band, no phase in the legend. */
	for (size_t i = 0; i < n; i++)
		tl[i].phase = TALLY_PHASE_COUNTING;
	svg = report_roundtrip(tl, n, &st);
	ck_assert_ptr_nonnull(strstr(svg, "<g id=\"phases-throughput\">\n</g>"));
	ck_assert_ptr_nonnull(strstr(svg, "<g id=\"phases-memory\">\n</g>"));
	ck_assert_ptr_null(strstr(svg, "class=\"legend\">merging</text>"));
	free(svg);

	/* A budget far above what was used stays in the picture, said to be
	 * off the scale. */
	st.budget = 64 * 1024 * MiB;
	svg = report_roundtrip(tl, n, &st);
	ck_assert_ptr_nonnull(strstr(svg, "budget 64.0 GiB (above the scale)"));
	free(svg);
	free(tl);
}
END_TEST

START_TEST(test_report_empty_and_single)
{
	tally_stats st = sample_stats();
	char *svg = report_roundtrip(NULL, 0, &st);
	ck_assert_ptr_nonnull(strstr(svg, "no samples"));
	free(svg);

	stats_sample *tl = synthetic_timeline(1);
	svg = report_roundtrip(tl, 1, &st);
	ck_assert_ptr_nonnull(strstr(svg, "<circle"));
	ck_assert_ptr_null(strstr(svg, "no samples"));
	free(svg);
	free(tl);

	/* No statistics and no budget at all. */
	svg = report_roundtrip(NULL, 0, NULL);
	ck_assert_ptr_nonnull(strstr(svg, "<g id=\"budget-line\"/>"));
	free(svg);
}
END_TEST

START_TEST(test_report_long_run)
{
	/* A timeline at its limit, hours long: the axis turns to hours. */
	tally_stats st = sample_stats();
	size_t n = STATS_TIMELINE_MAX + 1;
	stats_sample *tl = synthetic_timeline(n);
	for (size_t i = 0; i < n; i++)
		tl[i].t = 40.0 * (double)(i + 1);
	char *svg = report_roundtrip(tl, n, &st);
	ck_assert_ptr_nonnull(strstr(svg, ">elapsed (h)</text>"));
	free(svg);
	free(tl);
}
END_TEST

START_TEST(test_report_error)
{
	char err[256];
	tally_stats st = sample_stats();
	int rc = stats_write_report("/nonexistent-dir/r.svg", NULL, 0, &st, err, sizeof err);
	ck_assert_int_eq(rc, -1);
	ck_assert_str_eq(err, "/nonexistent-dir/r.svg: No such file or directory");
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");

	TCase *tc = tcase_create("rss");
	tcase_add_test(tc, test_rss_plausible);
	tcase_add_test(tc, test_rss_peak_grows);
	tcase_add_test(tc, test_clock_monotonic);
	suite_add_tcase(s, tc);

	tc = tcase_create("figures");
	tcase_add_test(tc, test_format_bytes);
	tcase_add_test(tc, test_format_count);
	tcase_add_test(tc, test_rates);
	suite_add_tcase(s, tc);

	tc = tcase_create("progress");
	tcase_add_test(tc, test_progress_known_total);
	tcase_add_test(tc, test_progress_unknown_total);
	tcase_add_test(tc, test_progress_widest);
	tcase_add_test(tc, test_progress_fits_width);
	tcase_add_test(tc, test_progress_phases);
	tcase_add_test(tc, test_engine_phases);
	tcase_add_test(tc, test_engine_progress_distinct);
	tcase_add_test(tc, test_engine_total_declared_only);
	tcase_add_test(tc, test_progress_past_total);
	tcase_add_test(tc, test_progress_erase);
	suite_add_tcase(s, tc);

	tc = tcase_create("print");
	tcase_add_test(tc, test_stats_print);
	tcase_add_test(tc, test_stats_print_rates_agree);
	tcase_add_test(tc, test_stats_json_keys);
	tcase_add_test(tc, test_stats_json_parses);
	tcase_add_test(tc, test_stats_json_write_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("sampler");
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, test_sampler_samples);
	tcase_add_test(tc, test_sampler_stops_at_once);
	tcase_add_test(tc, test_sampler_no_keep);
	tcase_add_test(tc, test_sampler_thinning);
	tcase_add_test(tc, test_sampler_throughput);
	suite_add_tcase(s, tc);

	tc = tcase_create("report");
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, test_report_full);
	tcase_add_test(tc, test_report_empty_and_single);
	tcase_add_test(tc, test_report_long_run);
	tcase_add_test(tc, test_report_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(stats_suite());
}
