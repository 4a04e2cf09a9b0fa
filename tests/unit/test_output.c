/*
 * test_output.c - the output formats and the writer: exact bytes of every
 * format, escaping, stdout, atomic replacement with -o, zstd output, the
 * sorted results written by several threads (write.h), and write errors
 * (ENOSPC, EPIPE, EFBIG).
 */
#include <check.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "tally.h"
#include "output.h"
#include "mem.h"
#include "write.h"
#include "testutil.h"

/* ---- Helpers -------------------------------------------------------- */

typedef struct bytes {
	char  *p;
	size_t n;
} bytes;

static bytes read_all_fd(int fd)
{
	bytes b = { NULL, 0 };
	size_t cap = 0;
	for (;;) {
		if (cap - b.n < 65536) {
			cap = cap ? cap * 2 : 65536;
			b.p = realloc(b.p, cap);
			ck_assert_ptr_nonnull(b.p);
		}
		ssize_t k = read(fd, b.p + b.n, cap - b.n);
		ck_assert_int_ge(k, 0);
		if (k == 0)
			break;
		b.n += (size_t)k;
	}
	return b;
}

static bytes read_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	bytes b = read_all_fd(fd);
	close(fd);
	return b;
}

static void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(s, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void assert_bytes(bytes got, const char *want, size_t wantlen)
{
	ck_assert_msg(got.n == wantlen && memcmp(got.p, want, wantlen) == 0,
		"output differs: got %zu bytes, want %zu", got.n, wantlen);
}

/* A private directory for one test. */
static char testdir[64];

static void make_testdir(void)
{
	strcpy(testdir, "/tmp/tally-output-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(testdir));
}

static void remove_testdir(void)
{
	DIR *d = opendir(testdir);
	if (!d)
		return;
	struct dirent *de;
	char p[512];
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", testdir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(testdir);
}

static void put(tally_writer *w, const char *key, size_t len, uint64_t count)
{
	tally_item it = { key, len, count };
	ck_assert_int_eq(tally_writer_put(w, &it), 0);
}

/* The items the exact-format tests write. */
static const tally_item sample[] = {
	{ "the", 3, 42 },
	{ "a\tb", 3, 7 },
	{ "line\nbreak\r", 11, 1 },
	{ "back\\slash", 10, 0 },
	{ "say \"hi\", ok", 12, 5 },
	{ " lead", 5, 9 },
	{ "nul\0byte", 8, 3 },
	{ "", 0, 2 },
	{ "caf\xc3\xa9\xe2\x82\xac", 8, 1000000 },
	{ "bad\xff\xc3", 5, UINT64_MAX },
	{ "\x01\x1f\x7f\b\f", 5, 10 },
};
#define NSAMPLE (sizeof sample / sizeof sample[0])

/* Write the sample (or nothing) to a file in fmt and return the bytes. */
static bytes write_sample(tally_format fmt, size_t n, const char *name)
{
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/%s", testdir, name);
	tally_writer *w = tally_writer_open(path, fmt, err, sizeof err);
	ck_assert_msg(w != NULL, "open: %s", err);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(tally_writer_put(w, &sample[i]), 0);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	return read_file(path);
}

#define WANT(s) s, sizeof(s) - 1

/* xorshift64: the same keys on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ---- Escaping ------------------------------------------------------- */

static void check_escape(tally_format fmt, const char *key, size_t len, const char *want, size_t wantlen)
{
	char buf[512];
	size_t n = tally_escape_key(fmt, key, len, buf, sizeof buf);
	ck_assert_uint_eq(n, wantlen);
	ck_assert_msg(memcmp(buf, want, wantlen) == 0, "escape of format %d differs", (int)fmt);
	ck_assert_int_eq(buf[n], '\0');
}

START_TEST(escape_tsv)
{
	check_escape(TALLY_FORMAT_TSV, WANT("plain"), WANT("plain"));
	check_escape(TALLY_FORMAT_TSV, WANT("a\tb\nc\rd\\e"), WANT("a\\tb\\nc\\rd\\\\e"));
	check_escape(TALLY_FORMAT_TSV, WANT("\\\\"), WANT("\\\\\\\\"));
	check_escape(TALLY_FORMAT_TSV, WANT("x\0y\xff\"q,"), WANT("x\0y\xff\"q,"));
	check_escape(TALLY_FORMAT_TSV, "", 0, "", 0);
}
END_TEST

START_TEST(escape_csv)
{
	check_escape(TALLY_FORMAT_CSV, WANT("plain"), WANT("plain"));
	check_escape(TALLY_FORMAT_CSV, WANT(" spaced "), WANT(" spaced "));
	check_escape(TALLY_FORMAT_CSV, WANT("a,b"), WANT("\"a,b\""));
	check_escape(TALLY_FORMAT_CSV, WANT("say \"hi\""), WANT("\"say \"\"hi\"\"\""));
	check_escape(TALLY_FORMAT_CSV, WANT("\""), WANT("\"\"\"\""));
	check_escape(TALLY_FORMAT_CSV, WANT("cr\r"), WANT("\"cr\r\""));
	check_escape(TALLY_FORMAT_CSV, WANT("lf\n"), WANT("\"lf\n\""));
	check_escape(TALLY_FORMAT_CSV, WANT("tab\there\\"), WANT("tab\there\\"));
	check_escape(TALLY_FORMAT_CSV, WANT("n\0ul"), WANT("n\0ul"));
	check_escape(TALLY_FORMAT_CSV, "", 0, "", 0);
}
END_TEST

START_TEST(escape_json)
{
	tally_format f = TALLY_FORMAT_JSON;
	check_escape(f, WANT("plain"), WANT("\"plain\""));
	check_escape(f, "", 0, WANT("\"\""));
	check_escape(f, WANT("q\"b\\s/"), WANT("\"q\\\"b\\\\s/\""));
	check_escape(f, WANT("\n\r\t\b\f"), WANT("\"\\n\\r\\t\\b\\f\""));
	check_escape(f, WANT("\0\x01\x1f\x7f"), WANT("\"\\u0000\\u0001\\u001f\x7f\""));
	/* Valid UTF-8 of 2, 3 and 4 bytes, and the extremes. */
	check_escape(f, WANT("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
		WANT("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""));
	check_escape(f, WANT("\xc2\x80\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf"),
		WANT("\"\xc2\x80\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\""));
	/* Ill-formed: one U+FFFD per byte. */
	check_escape(f, WANT("a\xff" "b"), WANT("\"a\xef\xbf\xbd" "b\""));
	check_escape(f, WANT("\x80"), WANT("\"\xef\xbf\xbd\""));
	check_escape(f, WANT("\xc0\x80"), WANT("\"\xef\xbf\xbd\xef\xbf\xbd\""));          /* overlong */
	check_escape(f, WANT("\xe0\x80\x80"), WANT("\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""));
	check_escape(f, WANT("\xed\xa0\x80"), WANT("\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""));  /* surrogate */
	check_escape(f, WANT("\xf4\x90\x80\x80"),                                          /* > U+10FFFF */
		WANT("\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""));
	check_escape(f, WANT("\xe2\x82" "A"), WANT("\"\xef\xbf\xbd\xef\xbf\xbd" "A\""));  /* cut short */
	check_escape(f, WANT("x\xe2\x82"), WANT("\"x\xef\xbf\xbd\xef\xbf\xbd\""));         /* cut at the end */
	check_escape(f, WANT("\xc3"), WANT("\"\xef\xbf\xbd\""));
	/* ndjson escapes the same way. */
	check_escape(TALLY_FORMAT_NDJSON, WANT("a\"\xff"), WANT("\"a\\\"\xef\xbf\xbd\""));
}
END_TEST

/* Keys of up to 60 bytes built from units that escape alone (plain bytes,
 * the bytes TSV and JSON escape, whole UTF-8 sequences, bytes that are
 * never UTF-8): escaped whole, a key gives the escapes of its units one
 * after the other, wherever they fall in the 8-byte words that the escape
 * scans at a time. */
START_TEST(escape_by_words)
{
	static const char *units[] = { "a", "Z", " ", "~", "\t", "\n", "\r", "\\", "\"", "\x01",
		"\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xfe", "\x80",
		"\x9f", "," };
	static const tally_format fmts[] = { TALLY_FORMAT_TSV, TALLY_FORMAT_JSON };
	uint64_t x = 12345;
	char key[80], want[1024], got[1024], one[32];
	for (int trial = 0; trial < 20000; trial++) {
		tally_format f = fmts[trial % 2];
		int json = f == TALLY_FORMAT_JSON;
		size_t klen = 0, wlen = 0, target = trial % 61;
		if (json)
			want[wlen++] = '"';
		/* Mostly plain units, so that whole words come out clean. */
		while (klen < target) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			const char *u = units[x % 16 < 12 ? x % 4 : x % (sizeof units / sizeof *units)];
			size_t ulen = strlen(u);
			if (klen + ulen > sizeof key)
				break;
			memcpy(key + klen, u, ulen);
			klen += ulen;
			size_t n = tally_escape_key(f, u, ulen, one, sizeof one);
			ck_assert_uint_lt(n, sizeof one);
			memcpy(want + wlen, one + json, n - 2 * (size_t)json);
			wlen += n - 2 * (size_t)json;
		}
		if (json)
			want[wlen++] = '"';
		size_t n = tally_escape_key(f, key, klen, got, sizeof got);
		ck_assert_msg(n == wlen && memcmp(got, want, n) == 0, "trial %d: key of %zu bytes",
			trial, klen);
	}
}
END_TEST

START_TEST(escape_uniq)
{
	check_escape(TALLY_FORMAT_UNIQ, WANT("a\tb\n\\\"\0\xff"), WANT("a\tb\n\\\"\0\xff"));
}
END_TEST

START_TEST(escape_truncates_like_snprintf)
{
	char buf[8];
	memset(buf, 'X', sizeof buf);
	/* Full escape: "a\"\\u0001b" is 12 bytes. */
	size_t n = tally_escape_key(TALLY_FORMAT_JSON, "a\"\x01" "b", 4, buf, sizeof buf);
	ck_assert_uint_eq(n, 12);
	ck_assert_mem_eq(buf, "\"a\\\"\\u0\0", 8);

	memset(buf, 'X', sizeof buf);
	n = tally_escape_key(TALLY_FORMAT_TSV, "\t\t\t\t", 4, buf, 4);
	ck_assert_uint_eq(n, 8);
	ck_assert_mem_eq(buf, "\\t\\\0X", 5);

	memset(buf, 'X', sizeof buf);
	n = tally_escape_key(TALLY_FORMAT_CSV, "a,b", 3, buf, 1);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(buf[0], '\0');
	ck_assert_int_eq(buf[1], 'X');

	ck_assert_uint_eq(tally_escape_key(TALLY_FORMAT_UNIQ, "abc", 3, NULL, 0), 3);
}
END_TEST

START_TEST(escape_long_key)
{
	/* Longer than the internal scratch buffer, every byte escaped. */
	size_t len = 100000;
	char *key = malloc(len);
	char *buf = malloc(len * 6 + 3);
	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(buf);
	memset(key, 0x01, len);
	size_t n = tally_escape_key(TALLY_FORMAT_JSON, key, len, buf, len * 6 + 3);
	ck_assert_uint_eq(n, len * 6 + 2);
	ck_assert_int_eq(buf[0], '"');
	ck_assert_int_eq(buf[n - 1], '"');
	for (size_t i = 0; i < len; i++)
		ck_assert_mem_eq(buf + 1 + 6 * i, "\\u0001", 6);
	free(key);
	free(buf);
}
END_TEST

static void check_unescape(const char *in, size_t len, const char *want, size_t wantlen)
{
	char buf[64];
	memcpy(buf, in, len);
	size_t n = output_tsv_unescape(buf, len);
	ck_assert_uint_eq(n, wantlen);
	if (wantlen != (size_t)-1)
		ck_assert_mem_eq(buf, want, wantlen);
}

START_TEST(tsv_unescape)
{
	check_unescape("", 0, "", 0);
	check_unescape(WANT("plain"), WANT("plain"));
	check_unescape(WANT("a\\tb\\nc\\rd\\\\e"), WANT("a\tb\nc\rd\\e"));
	check_unescape(WANT("\\\\\\t"), WANT("\\\t"));
	check_unescape(WANT("x\0y\xff"), WANT("x\0y\xff"));
	check_unescape(WANT("bad\\"), NULL, (size_t)-1);
	check_unescape(WANT("\\x"), NULL, (size_t)-1);
	check_unescape(WANT("a\\0"), NULL, (size_t)-1);

	/* The inverse of the tsv escape, on keys of every byte. */
	char key[16], esc[64];
	for (int i = 0; i < 20000; i++) {
		size_t len = rng_next() % sizeof key;
		for (size_t j = 0; j < len; j++)
			key[j] = rng_next() % 4 == 0 ? "\\\t\n\r"[rng_next() % 4] : (char)rng_next();
		size_t n = tally_escape_key(TALLY_FORMAT_TSV, key, len, esc, sizeof esc);
		ck_assert_ptr_null(memchr(esc, '\t', n));
		ck_assert_ptr_null(memchr(esc, '\n', n));
		ck_assert_uint_eq(output_tsv_unescape(esc, n), len);
		ck_assert_mem_eq(esc, key, len);
	}
}
END_TEST

START_TEST(format_names)
{
	static const char *names[] = { "tsv", "csv", "json", "ndjson", "uniq" };
	for (int i = 0; i < 5; i++) {
		tally_format f;
		ck_assert_int_eq(output_parse_format(names[i], &f), 0);
		ck_assert_int_eq(f, i);
		ck_assert_str_eq(output_format_name(f), names[i]);
	}
	tally_format f = TALLY_FORMAT_TSV;
	ck_assert_int_eq(output_parse_format("TSV", &f), -1);
	ck_assert_int_eq(output_parse_format("", &f), -1);
	ck_assert_str_eq(output_format_name((tally_format)99), "?");
}
END_TEST

/* ---- Exact formats -------------------------------------------------- */

START_TEST(format_tsv)
{
	make_testdir();
	bytes b = write_sample(TALLY_FORMAT_TSV, NSAMPLE, "out.tsv");
	assert_bytes(b, WANT(
		"the\t42\n"
		"a\\tb\t7\n"
		"line\\nbreak\\r\t1\n"
		"back\\\\slash\t0\n"
		"say \"hi\", ok\t5\n"
		" lead\t9\n"
		"nul\0byte\t3\n"
		"\t2\n"
		"caf\xc3\xa9\xe2\x82\xac\t1000000\n"
		"bad\xff\xc3\t18446744073709551615\n"
		"\x01\x1f\x7f\b\f\t10\n"));
	free(b.p);
	remove_testdir();
}
END_TEST

START_TEST(format_csv)
{
	make_testdir();
	bytes b = write_sample(TALLY_FORMAT_CSV, NSAMPLE, "out.csv");
	assert_bytes(b, WANT(
		"key,count\r\n"
		"the,42\r\n"
		"a\tb,7\r\n"
		"\"line\nbreak\r\",1\r\n"
		"back\\slash,0\r\n"
		"\"say \"\"hi\"\", ok\",5\r\n"
		" lead,9\r\n"
		"nul\0byte,3\r\n"
		",2\r\n"
		"caf\xc3\xa9\xe2\x82\xac,1000000\r\n"
		"bad\xff\xc3,18446744073709551615\r\n"
		"\x01\x1f\x7f\b\f,10\r\n"));
	free(b.p);
	remove_testdir();
}
END_TEST

START_TEST(format_json)
{
	make_testdir();
	bytes b = write_sample(TALLY_FORMAT_JSON, NSAMPLE, "out.json");
	assert_bytes(b, WANT(
		"[\n"
		"{\"key\":\"the\",\"count\":42},\n"
		"{\"key\":\"a\\tb\",\"count\":7},\n"
		"{\"key\":\"line\\nbreak\\r\",\"count\":1},\n"
		"{\"key\":\"back\\\\slash\",\"count\":0},\n"
		"{\"key\":\"say \\\"hi\\\", ok\",\"count\":5},\n"
		"{\"key\":\" lead\",\"count\":9},\n"
		"{\"key\":\"nul\\u0000byte\",\"count\":3},\n"
		"{\"key\":\"\",\"count\":2},\n"
		"{\"key\":\"caf\xc3\xa9\xe2\x82\xac\",\"count\":1000000},\n"
		"{\"key\":\"bad\xef\xbf\xbd\xef\xbf\xbd\",\"count\":18446744073709551615},\n"
		"{\"key\":\"\\u0001\\u001f\x7f\\b\\f\",\"count\":10}\n"
		"]\n"));
	free(b.p);
	remove_testdir();
}
END_TEST

START_TEST(format_ndjson)
{
	make_testdir();
	bytes b = write_sample(TALLY_FORMAT_NDJSON, NSAMPLE, "out.ndjson");
	assert_bytes(b, WANT(
		"{\"key\":\"the\",\"count\":42}\n"
		"{\"key\":\"a\\tb\",\"count\":7}\n"
		"{\"key\":\"line\\nbreak\\r\",\"count\":1}\n"
		"{\"key\":\"back\\\\slash\",\"count\":0}\n"
		"{\"key\":\"say \\\"hi\\\", ok\",\"count\":5}\n"
		"{\"key\":\" lead\",\"count\":9}\n"
		"{\"key\":\"nul\\u0000byte\",\"count\":3}\n"
		"{\"key\":\"\",\"count\":2}\n"
		"{\"key\":\"caf\xc3\xa9\xe2\x82\xac\",\"count\":1000000}\n"
		"{\"key\":\"bad\xef\xbf\xbd\xef\xbf\xbd\",\"count\":18446744073709551615}\n"
		"{\"key\":\"\\u0001\\u001f\x7f\\b\\f\",\"count\":10}\n"));
	free(b.p);
	remove_testdir();
}
END_TEST

START_TEST(format_uniq)
{
	make_testdir();
	bytes b = write_sample(TALLY_FORMAT_UNIQ, NSAMPLE, "out.txt");
	assert_bytes(b, WANT(
		"     42 the\n"
		"      7 a\tb\n"
		"      1 line\nbreak\r\n"
		"      0 back\\slash\n"
		"      5 say \"hi\", ok\n"
		"      9  lead\n"
		"      3 nul\0byte\n"
		"      2 \n"
		"1000000 caf\xc3\xa9\xe2\x82\xac\n"
		"18446744073709551615 bad\xff\xc3\n"
		"     10 \x01\x1f\x7f\b\f\n"));
	free(b.p);
	remove_testdir();
}
END_TEST

START_TEST(uniq_matches_printf)
{
	/* Every width up to 20 digits, against printf itself. */
	make_testdir();
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/u", testdir);
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_UNIQ, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	char *expect = malloc(64 * 64);
	size_t elen = 0;
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {    /* 0, 9, 99, ... 19 nines */
		put(w, "k", 1, v);
		elen += (size_t)snprintf(expect + elen, 64, "%7" PRIu64 " %s\n", v, "k");
		v = v * 10 + 9;
	}
	put(w, "k", 1, UINT64_MAX);
	elen += (size_t)snprintf(expect + elen, 64, "%7" PRIu64 " k\n", UINT64_MAX);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	bytes b = read_file(path);
	assert_bytes(b, expect, elen);
	free(b.p);
	free(expect);
	remove_testdir();
}
END_TEST

START_TEST(empty_results)
{
	make_testdir();
	bytes b;
	b = write_sample(TALLY_FORMAT_TSV, 0, "e.tsv");
	assert_bytes(b, "", 0);
	free(b.p);
	b = write_sample(TALLY_FORMAT_CSV, 0, "e.csv");
	assert_bytes(b, WANT("key,count\r\n"));
	free(b.p);
	b = write_sample(TALLY_FORMAT_JSON, 0, "e.json");
	assert_bytes(b, WANT("[]\n"));
	free(b.p);
	b = write_sample(TALLY_FORMAT_NDJSON, 0, "e.ndjson");
	assert_bytes(b, "", 0);
	free(b.p);
	b = write_sample(TALLY_FORMAT_UNIQ, 0, "e.txt");
	assert_bytes(b, "", 0);
	free(b.p);
	ck_assert_int_eq(test_count_entries(testdir), 5);
	remove_testdir();
}
END_TEST

START_TEST(one_json_item)
{
	make_testdir();
	bytes b = write_sample(TALLY_FORMAT_JSON, 1, "one.json");
	assert_bytes(b, WANT("[\n{\"key\":\"the\",\"count\":42}\n]\n"));
	free(b.p);
	remove_testdir();
}
END_TEST

/* ---- Many items: buffer boundaries ---------------------------------- */

/* The line the format gives one item, built from tally_escape_key. */
static size_t reference_line(tally_format fmt, const tally_item *it, int first, char *out, size_t cap)
{
	char num[32];
	size_t n = 0;
	snprintf(num, sizeof num, "%" PRIu64, it->count);
	if (fmt == TALLY_FORMAT_UNIQ)
		n += (size_t)snprintf(out, cap, "%7s ", num);
	if (fmt == TALLY_FORMAT_JSON)
		n += (size_t)snprintf(out + n, cap - n, "%s", first ? "[\n" : ",\n");
	if (fmt == TALLY_FORMAT_JSON || fmt == TALLY_FORMAT_NDJSON)
		n += (size_t)snprintf(out + n, cap - n, "{\"key\":");
	n += tally_escape_key(fmt, it->key, it->len, out + n, cap - n);
	switch (fmt) {
	case TALLY_FORMAT_TSV:    n += (size_t)snprintf(out + n, cap - n, "\t%s\n", num); break;
	case TALLY_FORMAT_CSV:    n += (size_t)snprintf(out + n, cap - n, ",%s\r\n", num); break;
	case TALLY_FORMAT_JSON:   n += (size_t)snprintf(out + n, cap - n, ",\"count\":%s}", num); break;
	case TALLY_FORMAT_NDJSON: n += (size_t)snprintf(out + n, cap - n, ",\"count\":%s}\n", num); break;
	case TALLY_FORMAT_UNIQ:   out[n++] = '\n'; break;
	}
	return n;
}

START_TEST(many_items_every_format)
{
	/* Random keys from an alphabet of special bytes and UTF-8 pieces, so
	 * that escapes and sequences fall across the 256 KiB buffer boundary. */
	static const char *pieces[] = {
		"a", "b", "\t", "\n", "\r", "\\", "\"", ",", " ", "\0", "\x01",
		"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xe2\x82", "\x80",
	};
	const size_t npieces = sizeof pieces / sizeof pieces[0];
	const size_t nitems = 60000;
	tally_item *items = malloc(nitems * sizeof *items);
	char *keys = malloc(nitems * 40);
	ck_assert_ptr_nonnull(items);
	ck_assert_ptr_nonnull(keys);
	for (size_t i = 0; i < nitems; i++) {
		char *k = keys + i * 40;
		size_t len = 0, parts = rng_next() % 9;
		for (size_t j = 0; j < parts; j++) {
			size_t p = rng_next() % npieces;
			size_t plen = p == 9 ? 1 : strlen(pieces[p]);
			memcpy(k + len, pieces[p], plen);
			len += plen;
		}
		items[i].key = k;
		items[i].len = len;
		items[i].count = rng_next() >> (rng_next() % 64);
	}

	make_testdir();
	for (int f = 0; f <= TALLY_FORMAT_UNIQ; f++) {
		char path[128], err[256];
		snprintf(path, sizeof path, "%s/many.%d", testdir, f);
		tally_writer *w = tally_writer_open(path, (tally_format)f, err, sizeof err);
		ck_assert_ptr_nonnull(w);
		size_t cap = 64 + nitems * (40 * 6 + 64), n = 0;
		char *expect = malloc(cap);
		ck_assert_ptr_nonnull(expect);
		if (f == TALLY_FORMAT_CSV)
			n += (size_t)snprintf(expect, cap, "key,count\r\n");
		for (size_t i = 0; i < nitems; i++) {
			ck_assert_int_eq(tally_writer_put(w, &items[i]), 0);
			n += reference_line((tally_format)f, &items[i], i == 0, expect + n, cap - n);
		}
		if (f == TALLY_FORMAT_JSON)
			n += (size_t)snprintf(expect + n, cap - n, "\n]\n");
		ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
		bytes b = read_file(path);
		ck_assert_uint_gt(b.n, 256 * 1024);
		assert_bytes(b, expect, n);
		free(b.p);
		free(expect);
	}
	remove_testdir();
	free(items);
	free(keys);
}
END_TEST

START_TEST(huge_key_streams)
{
	/* A key whose escape is far larger than the output buffer. */
	make_testdir();
	size_t len = 1u << 20;
	char *key = malloc(len);
	ck_assert_ptr_nonnull(key);
	for (size_t i = 0; i < len; i++)
		key[i] = (char)(i % 3 == 0 ? '\n' : i % 3 == 1 ? '\x02' : '\xe9');
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/huge.json", testdir);
	uint64_t io_before = mem_current(MEM_IO);
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_NDJSON, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(mem_current(MEM_IO) - io_before, 256 * 1024);
	put(w, key, len, 77);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	ck_assert_uint_eq(mem_current(MEM_IO), io_before);

	size_t elen = tally_escape_key(TALLY_FORMAT_NDJSON, key, len, NULL, 0);
	ck_assert_uint_eq(elen, 2 + (len / 3 + 1) * 2 + (len / 3) * 6 + (len / 3) * 3);
	char *expect = malloc(elen + 64);
	ck_assert_ptr_nonnull(expect);
	size_t n = (size_t)sprintf(expect, "{\"key\":");
	n += tally_escape_key(TALLY_FORMAT_NDJSON, key, len, expect + n, elen + 1);
	n += (size_t)sprintf(expect + n, ",\"count\":77}\n");
	bytes b = read_file(path);
	assert_bytes(b, expect, n);
	free(b.p);
	free(expect);
	free(key);
	remove_testdir();
}
END_TEST

/* ---- Standard output ------------------------------------------------ */

/* Run the sample through a writer on stdout redirected to a file. */
static bytes sample_via_stdout(tally_format fmt, const char *name)
{
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/stdout", testdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	tally_writer *w = tally_writer_open(name, fmt, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	for (size_t i = 0; i < NSAMPLE; i++)
		ck_assert_int_eq(tally_writer_put(w, &sample[i]), 0);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	/* fd 1 stays open for the caller. */
	ck_assert_int_ge(fcntl(STDOUT_FILENO, F_GETFD), 0);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return read_file(path);
}

START_TEST(stdout_same_bytes)
{
	make_testdir();
	for (int f = 0; f <= TALLY_FORMAT_UNIQ; f++) {
		char name[32];
		snprintf(name, sizeof name, "file.%d", f);
		bytes want = write_sample((tally_format)f, NSAMPLE, name);
		bytes a = sample_via_stdout((tally_format)f, NULL);
		assert_bytes(a, want.p, want.n);
		bytes b = sample_via_stdout((tally_format)f, "-");
		assert_bytes(b, want.p, want.n);
		free(a.p);
		free(b.p);
		free(want.p);
	}
	remove_testdir();
}
END_TEST

START_TEST(stdout_discard_flushes_without_close)
{
	/* commit=0 on stdout: what was put is written, the JSON is left open. */
	make_testdir();
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/stdout", testdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	tally_writer *w = tally_writer_open(NULL, TALLY_FORMAT_JSON, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "x", 1, 1);
	ck_assert_int_eq(tally_writer_close(w, 0, err, sizeof err), 0);
	bytes b = read_file(path);
	assert_bytes(b, WANT("[\n{\"key\":\"x\",\"count\":1}"));
	free(b.p);
	remove_testdir();
}
END_TEST

/* ---- -o FILE: atomic replacement ------------------------------------ */

START_TEST(replace_commit_and_discard)
{
	make_testdir();
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/out.tsv", testdir);
	write_file(path, "old\t1\n");

	/* Discarded: the target is untouched and no temporary file is left. */
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(test_count_entries(testdir), 2);     /* the target and the temporary */
	put(w, "new", 3, 2);
	bytes b = read_file(path);
	assert_bytes(b, WANT("old\t1\n"));        /* nothing shows while writing */
	free(b.p);
	ck_assert_int_eq(tally_writer_close(w, 0, err, sizeof err), 0);
	b = read_file(path);
	assert_bytes(b, WANT("old\t1\n"));
	free(b.p);
	ck_assert_int_eq(test_count_entries(testdir), 1);

	/* Committed: replaced. */
	w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "new", 3, 2);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	b = read_file(path);
	assert_bytes(b, WANT("new\t2\n"));
	free(b.p);
	ck_assert_int_eq(test_count_entries(testdir), 1);

	/* A new file with discard leaves nothing at all. */
	snprintf(path, sizeof path, "%s/fresh.tsv", testdir);
	w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "x", 1, 1);
	ck_assert_int_eq(tally_writer_close(w, 0, err, sizeof err), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(test_count_entries(testdir), 1);
	remove_testdir();
}
END_TEST

START_TEST(relative_path)
{
	make_testdir();
	char err[256];
	ck_assert_int_eq(chdir(testdir), 0);
	tally_writer *w = tally_writer_open("rel.tsv", TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "k", 1, 1);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	bytes b = read_file("rel.tsv");
	assert_bytes(b, WANT("k\t1\n"));
	free(b.p);
	ck_assert_int_eq(test_count_entries(testdir), 1);
	ck_assert_int_eq(chdir("/"), 0);
	remove_testdir();
}
END_TEST

static mode_t mode_of(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

START_TEST(permissions)
{
	make_testdir();
	char path[128], err[256];
	tally_writer *w;

	/* A new file: 0666 minus the umask. */
	umask(027);
	snprintf(path, sizeof path, "%s/new", testdir);
	w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	ck_assert_uint_eq(mode_of(path), 0640);

	umask(0);
	snprintf(path, sizeof path, "%s/new2", testdir);
	w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	ck_assert_uint_eq(mode_of(path), 0666);

	/* A replaced file keeps its mode. */
	umask(022);
	snprintf(path, sizeof path, "%s/old", testdir);
	write_file(path, "x");
	ck_assert_int_eq(chmod(path, 0604), 0);
	w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	ck_assert_uint_eq(mode_of(path), 0604);
	remove_testdir();
}
END_TEST

START_TEST(symlink_target_replaced_through_link)
{
	make_testdir();
	char real[128], link[128], err[256];
	snprintf(real, sizeof real, "%s/real.tsv", testdir);
	snprintf(link, sizeof link, "%s/link.tsv", testdir);
	write_file(real, "old\n");
	ck_assert_int_eq(symlink("real.tsv", link), 0);
	tally_writer *w = tally_writer_open(link, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "k", 1, 5);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	struct stat st;
	ck_assert_int_eq(lstat(link, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	bytes b = read_file(real);
	assert_bytes(b, WANT("k\t5\n"));
	free(b.p);
	ck_assert_int_eq(test_count_entries(testdir), 2);
	remove_testdir();
}
END_TEST

START_TEST(open_errors)
{
	make_testdir();
	char path[128], err[256];

	snprintf(path, sizeof path, "%s/missing/out.tsv", testdir);
	errno = 0;
	ck_assert_ptr_null(tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err));
	ck_assert_int_eq(errno, ENOENT);
	char want[256];
	snprintf(want, sizeof want, "%s: No such file or directory", path);
	ck_assert_str_eq(err, want);

	ck_assert_ptr_null(tally_writer_open("", TALLY_FORMAT_TSV, err, sizeof err));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(err, ": No such file or directory");

	ck_assert_ptr_null(tally_writer_open(testdir, TALLY_FORMAT_TSV, err, sizeof err));
	ck_assert_int_eq(errno, EISDIR);
	snprintf(want, sizeof want, "%s: Is a directory", testdir);
	ck_assert_str_eq(err, want);

	/* A directory that cannot be written (root may write anywhere). */
	if (geteuid() != 0) {
		char ro[96];
		snprintf(ro, sizeof ro, "%s/ro", testdir);
		ck_assert_int_eq(mkdir(ro, 0555), 0);
		snprintf(path, sizeof path, "%s/out.tsv", ro);
		ck_assert_ptr_null(tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err));
		ck_assert_int_eq(errno, EACCES);
		snprintf(want, sizeof want, "%s: Permission denied", path);
		ck_assert_str_eq(err, want);
		rmdir(ro);
	}
	ck_assert_int_eq(test_count_entries(testdir), 0);
	remove_testdir();
}
END_TEST

START_TEST(open_fails_without_memory)
{
	make_testdir();
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/out.tsv", testdir);
	for (uint64_t n = 1; n <= 2; n++) {
		mem_fail_after(n);
		ck_assert_ptr_null(tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err));
		ck_assert_int_eq(errno, ENOMEM);
		char want[256];
		snprintf(want, sizeof want, "%s: Cannot allocate memory", path);
		ck_assert_str_eq(err, want);
	}
	mem_fail_after(0);
	ck_assert_int_eq(test_count_entries(testdir), 0);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	ck_assert_uint_eq(mem_current(MEM_OTHER), 0);
	remove_testdir();
}
END_TEST

/* Lower the file size limit (SIGXFSZ ignored, so writes fail with EFBIG).
 * Check reports through a file of its own, so no ck_assert may run while
 * the limit is low: the tests record results and assert after raising it. */
static struct rlimit saved_fsize;

static void limit_file_size(rlim_t limit)
{
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	struct rlimit rl = { limit, saved_fsize.rlim_max };
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void unlimit_file_size(void)
{
	setrlimit(RLIMIT_FSIZE, &saved_fsize);
}

START_TEST(write_failure_keeps_target)
{
	make_testdir();
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/out.tsv", testdir);
	write_file(path, "old\t1\n");
	char key[1000];
	memset(key, 'k', sizeof key);
	tally_item it = { key, sizeof key, 1 };
	tally_item small = { "x", 1, 1 };
	int put_rc = 0, put_errno = 0, again_rc, again_errno, close_rc, close_errno, puts = 0;

	limit_file_size(100000);
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	if (w) {
		while (puts < 1000 && put_rc == 0) {
			put_rc = tally_writer_put(w, &it);
			put_errno = errno;
			puts++;
		}
		errno = 0;
		again_rc = tally_writer_put(w, &small);    /* sticky */
		again_errno = errno;
		errno = 0;
		close_rc = tally_writer_close(w, 1, err, sizeof err);
		close_errno = errno;
	}
	unlimit_file_size();

	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(put_rc, -1);
	ck_assert_int_eq(put_errno, EFBIG);
	ck_assert_int_gt(puts, 90);
	ck_assert_int_eq(again_rc, -1);
	ck_assert_int_eq(again_errno, EFBIG);
	ck_assert_int_eq(close_rc, -1);
	ck_assert_int_eq(close_errno, EFBIG);
	char want[256];
	snprintf(want, sizeof want, "%s: File too large", path);
	ck_assert_str_eq(err, want);
	bytes b = read_file(path);
	assert_bytes(b, WANT("old\t1\n"));
	free(b.p);
	ck_assert_int_eq(test_count_entries(testdir), 1);
	remove_testdir();
}
END_TEST

START_TEST(failure_at_close_keeps_target)
{
	/* Small enough to stay buffered: the write fails only at close. */
	make_testdir();
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/out.zst", testdir);
	write_file(path, "old");
	int put_rc = -1, close_rc = 0, close_errno = 0;

	limit_file_size(0);
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_CSV, err, sizeof err);
	if (w) {
		tally_item it = { "k", 1, 1 };
		put_rc = tally_writer_put(w, &it);
		close_rc = tally_writer_close(w, 1, err, sizeof err);
		close_errno = errno;
	}
	unlimit_file_size();

	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(put_rc, 0);
	ck_assert_int_eq(close_rc, -1);
	ck_assert_int_eq(close_errno, EFBIG);
	bytes b = read_file(path);
	assert_bytes(b, WANT("old"));
	free(b.p);
	ck_assert_int_eq(test_count_entries(testdir), 1);
	remove_testdir();
}
END_TEST

START_TEST(signal_cleanup_removes_temporary)
{
	make_testdir();
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/out.tsv", testdir);
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(test_count_entries(testdir), 1);
	output_signal_cleanup();
	ck_assert_int_eq(test_count_entries(testdir), 0);
	/* The rename then fails, and the target never appears. */
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(test_count_entries(testdir), 0);
	/* Nothing registered any more. */
	output_signal_cleanup();
	remove_testdir();
}
END_TEST

/* ---- zstd ----------------------------------------------------------- */

static bytes zstd_decompress_all(bytes z)
{
	unsigned long long size = ZSTD_getFrameContentSize(z.p, z.n);
	ck_assert(size != ZSTD_CONTENTSIZE_ERROR);
	/* The frame header descriptor follows the 4-byte magic number; bit 2
	 * is the content checksum flag (RFC 8878, 3.1.1.1.1). */
	ck_assert_uint_ge(z.n, 5);
	ck_assert_mem_eq(z.p, "\x28\xb5\x2f\xfd", 4);
	ck_assert_int_eq((unsigned char)z.p[4] & 4, 4);
	size_t cap = 64u << 20;
	bytes out = { malloc(cap), 0 };
	ck_assert_ptr_nonnull(out.p);
	size_t r = ZSTD_decompress(out.p, cap, z.p, z.n);
	ck_assert_msg(!ZSTD_isError(r), "zstd: %s", ZSTD_getErrorName(r));
	out.n = r;
	return out;
}

START_TEST(zstd_output)
{
	make_testdir();
	for (int f = 0; f <= TALLY_FORMAT_UNIQ; f++) {
		bytes plain = write_sample((tally_format)f, NSAMPLE, "plain");
		bytes z = write_sample((tally_format)f, NSAMPLE, "out.zst");
		bytes d = zstd_decompress_all(z);
		assert_bytes(d, plain.p, plain.n);
		free(plain.p);
		free(z.p);
		free(d.p);
	}
	/* An empty result still makes a valid frame. */
	bytes z = write_sample(TALLY_FORMAT_TSV, 0, "empty.zst");
	bytes d = zstd_decompress_all(z);
	ck_assert_uint_eq(d.n, 0);
	free(z.p);
	free(d.p);
	remove_testdir();
}
END_TEST

/* Items enough for several of zstd's jobs (3 MiB), compressed on threads
 * threads (-1: as the writer opens); *expect gets the plain text. */
static bytes write_big_zst(int threads, char *expect, size_t cap, size_t *n)
{
	char path[128], err[256], key[32];
	snprintf(path, sizeof path, "%s/big%d.tsv.zst", testdir, threads);
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	if (threads >= 0)
		output_writer_threads(w, (unsigned)threads);
	*n = 0;
	for (uint64_t i = 0; i < 400000; i++) {
		int k = snprintf(key, sizeof key, "w%" PRIu64 "\\x", i * 7919);
		put(w, key, (size_t)k, i);
		*n += (size_t)snprintf(expect + *n, cap - *n, "w%" PRIu64 "\\\\x\t%" PRIu64 "\n",
			i * 7919, i);
	}
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	return read_file(path);
}

START_TEST(zstd_large_output)
{
	/* Several buffers' worth, so the stream is fed more than once; and the
	 * same bytes whatever the number of threads compressing. */
	make_testdir();
	size_t cap = 16u << 20, n;
	char *expect = malloc(cap);
	ck_assert_ptr_nonnull(expect);
	bytes first = { NULL, 0 };
	static const int threads[] = { -1, 0, 1, 2, 5 };
	for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
		bytes z = write_big_zst(threads[t], expect, cap, &n);
		ck_assert_uint_gt(n, 3u << 20);
		ck_assert_uint_lt(z.n, n / 2);
		bytes d = zstd_decompress_all(z);
		assert_bytes(d, expect, n);
		free(d.p);
		if (!first.p)
			first = z;
		else {
			assert_bytes(z, first.p, first.n);
			free(z.p);
		}
	}
	free(first.p);
	free(expect);
	remove_testdir();
}
END_TEST

/* ---- Written by several threads (write.h) -------------------------- */

static int ws_bycount;

static int ws_cmp(const void *pa, const void *pb)
{
	const keysort_item *a = pa, *b = pb;
	if (ws_bycount && a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return keysort_bytes_cmp(a->key, a->len, b->key, b->len);
}

/* Write the items as write_sorted would, one by one: the sources merged in
 * the order sort gives (one after another for none), top of them at most. */
static bytes write_one_by_one(keysort_item **src, const size_t *n, unsigned nsrc, tally_sort sort,
	uint64_t top, tally_format fmt)
{
	size_t total = 0;
	for (unsigned j = 0; j < nsrc; j++)
		total += n[j];
	keysort_item *all = malloc((total + 1) * sizeof *all);
	ck_assert_ptr_nonnull(all);
	size_t k = 0;
	for (unsigned j = 0; j < nsrc; j++)
		for (size_t i = 0; i < n[j]; i++)
			all[k++] = src[j][i];
	if (sort != TALLY_SORT_NONE) {
		ws_bycount = sort == TALLY_SORT_COUNT;
		qsort(all, total, sizeof *all, ws_cmp);
	}
	char path[128], err[256];
	snprintf(path, sizeof path, "%s/one.out", testdir);
	tally_writer *w = tally_writer_open(path, fmt, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	for (size_t i = 0; i < total && (!top || i < top); i++)
		put(w, all[i].key, all[i].len, all[i].count);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	free(all);
	return read_file(path);
}

START_TEST(written_by_threads)
{
	/* Keys of 1 to 40 bytes with a tab or a quote here and there, a few of
	 * 100 to 700 KiB (stretches of fewer items, down to one), counts of 1
	 * to 4 (ties broken by the key), spread over the sources unevenly. */
	enum { NKEYS = 30000, NBIG = 6 };
	make_testdir();
	char *keys = malloc((size_t)NKEYS * 48);
	char *big = malloc((size_t)NBIG * (700u << 10));
	ck_assert(keys && big);
	keysort_item *items = malloc(NKEYS * sizeof *items);
	ck_assert_ptr_nonnull(items);
	for (size_t i = 0; i < NKEYS; i++) {
		char *k = keys + i * 48;
		size_t len = (size_t)snprintf(k, 48, "%07zu", i);
		size_t extra = rng_next() % 33;
		for (size_t b = 0; b < extra; b++)
			k[len++] = "abc\t\"xyz"[rng_next() % 8];
		items[i] = (keysort_item){ .count = 1 + rng_next() % 4, .key = k, .len = (uint32_t)len };
	}
	for (size_t b = 0; b < NBIG; b++) {
		size_t len = (100u << 10) + (size_t)(rng_next() % (600u << 10));
		char *k = big + b * (700u << 10);
		memset(k, 'a' + (int)b, len);
		items[rng_next() % NKEYS] = (keysort_item){ .count = 1 + b % 3, .key = k, .len = (uint32_t)len };
	}
	/* And the empty key, at the head of a stretch in every order, where a
	 * text has no buffer yet. */
	items[NKEYS / 2] = (keysort_item){ .count = 1000, .key = keys, .len = 0 };
	/* Keys must not repeat across sources: the big ones replaced distinct
	 * numbered keys and are themselves distinct. */
	static const tally_sort sorts[] = { TALLY_SORT_COUNT, TALLY_SORT_KEY, TALLY_SORT_NONE };
	static const uint64_t tops[] = { 0, 1, 4097, 29999, 100000 };
	static const unsigned nsrcs[] = { 1, 2, 5 };
	static const unsigned threads[] = { 1, 2, 4 };
	keysort_item *src[5];
	size_t n[5];
	for (size_t si = 0; si < 3; si++)
	for (size_t ni = 0; ni < 3; ni++) {
		unsigned nsrc = nsrcs[ni];
		/* Source j takes the keys of weight j + 1: uneven shares. */
		for (unsigned j = 0; j < nsrc; j++) {
			src[j] = malloc(NKEYS * sizeof *items);
			ck_assert_ptr_nonnull(src[j]);
			n[j] = 0;
		}
		for (size_t i = 0; i < NKEYS; i++) {
			unsigned j = (unsigned)(rng_next() % (nsrc * (nsrc + 1) / 2)), acc = 0, to = 0;
			while (acc + to + 1 <= j) {
				acc += to + 1;
				to++;
			}
			src[to][n[to]++] = items[i];
		}
		if (sorts[si] != TALLY_SORT_NONE) {
			ws_bycount = sorts[si] == TALLY_SORT_COUNT;
			for (unsigned j = 0; j < nsrc; j++)
				qsort(src[j], n[j], sizeof *items, ws_cmp);
		}
		write_src ws[5];
		for (unsigned j = 0; j < nsrc; j++)
			ws[j] = (write_src){ src[j], n[j] };
		for (size_t ti = 0; ti < 5; ti++) {
			tally_format fmt = ti % 2 ? TALLY_FORMAT_JSON : TALLY_FORMAT_TSV;
			bytes want = write_one_by_one(src, n, nsrc, sorts[si], tops[ti], fmt);
			for (size_t hi = 0; hi < 3; hi++) {
				char path[128], err[256];
				snprintf(path, sizeof path, "%s/threads.out", testdir);
				tally_writer *w = tally_writer_open(path, fmt, err, sizeof err);
				ck_assert_ptr_nonnull(w);
				_Atomic uint64_t emitted = 0;
				ck_assert_int_eq(write_sorted(ws, nsrc, sorts[si], tops[ti], threads[hi], w,
					&emitted), 0);
				uint64_t total = 0;
				for (unsigned j = 0; j < nsrc; j++)
					total += n[j];
				ck_assert_uint_eq(atomic_load(&emitted),
					tops[ti] && tops[ti] < total ? tops[ti] : total);
				ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
				bytes got = read_file(path);
				ck_assert_msg(got.n == want.n && memcmp(got.p, want.p, want.n) == 0,
					"sort %zu, %u sources, top %" PRIu64 ", %u threads: output differs",
					si, nsrc, tops[ti], threads[hi]);
				free(got.p);
			}
			free(want.p);
		}
		for (unsigned j = 0; j < nsrc; j++)
			free(src[j]);
	}
	free(items);
	free(big);
	free(keys);
	remove_testdir();
}
END_TEST

/* A write that fails stops the threads and says why; so does a text that
 * cannot grow. */
START_TEST(written_by_threads_fails)
{
	enum { NKEYS = 100000 };
	char *keys = malloc((size_t)NKEYS * 8);
	keysort_item *a = malloc(NKEYS * sizeof *a);
	ck_assert(keys && a);
	for (size_t i = 0; i < NKEYS; i++) {
		snprintf(keys + i * 8, 8, "%07zu", i);
		a[i] = (keysort_item){ .count = 1, .key = keys + i * 8, .len = 7 };
	}
	write_src ws[2] = { { a, NKEYS / 2 }, { a + NKEYS / 2, NKEYS - NKEYS / 2 } };
	char err[256];
	tally_writer *w = tally_writer_open("/dev/full", TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	errno = 0;
	ck_assert_int_eq(write_sorted(ws, 2, TALLY_SORT_KEY, 0, 3, w, NULL), -1);
	ck_assert_int_eq(errno, ENOSPC);
	tally_writer_close(w, 0, err, sizeof err);

	/* Out of memory for a text, at each of the first allocations. */
	int failed = 0;
	for (uint64_t at = 1; at < 12; at++) {
		w = tally_writer_open("/dev/null", TALLY_FORMAT_TSV, err, sizeof err);
		ck_assert_ptr_nonnull(w);
		uint64_t before = mem_current(MEM_IO) + mem_current(MEM_OTHER);
		mem_fail_after(at);
		int rc = write_sorted(ws, 2, TALLY_SORT_KEY, 0, 2, w, NULL);
		mem_fail_after(0);
		ck_assert_msg(rc == -2 || rc == 0, "allocation %" PRIu64 ": %d", at, rc);
		failed += rc == -2;
		ck_assert_uint_eq(mem_current(MEM_IO) + mem_current(MEM_OTHER), before);
		tally_writer_close(w, 0, err, sizeof err);
	}
	ck_assert_int_gt(failed, 0);
	free(a);
	free(keys);
}
END_TEST

/* ---- Write errors on devices and pipes ------------------------------ */

START_TEST(dev_full_enospc)
{
	char err[256];
	tally_writer *w = tally_writer_open("/dev/full", TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_msg(w != NULL, "%s", err);
	put(w, "k", 1, 1);     /* buffered */
	errno = 0;
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_str_eq(err, "/dev/full: No space left on device");

	/* Enough to overflow the buffer: put itself fails, then keeps failing. */
	w = tally_writer_open("/dev/full", TALLY_FORMAT_JSON, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	char key[4096];
	memset(key, 'x', sizeof key);
	int rc = 0, i;
	for (i = 0; i < 1000 && rc == 0; i++) {
		tally_item it = { key, sizeof key, 1 };
		rc = tally_writer_put(w, &it);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_lt(i, 100);
	tally_item it = { "y", 1, 1 };
	ck_assert_int_eq(tally_writer_put(w, &it), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), -1);
	ck_assert_int_eq(errno, ENOSPC);

	/* The writer keeps its own copy of the name. */
	char name[] = "/dev/full";
	w = tally_writer_open(name, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "k", 1, 1);
	memcpy(name, "XXXXXXXX", 8);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), -1);
	ck_assert_str_eq(err, "/dev/full: No space left on device");

	/* The device is still there: it was written, not replaced. */
	struct stat st;
	ck_assert_int_eq(stat("/dev/full", &st), 0);
	ck_assert(S_ISCHR(st.st_mode));
}
END_TEST

START_TEST(stdout_dev_full)
{
	char err[256];
	int fd = open("/dev/full", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	tally_writer *w = tally_writer_open(NULL, TALLY_FORMAT_UNIQ, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "k", 1, 1);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_str_eq(err, "standard output: No space left on device");
}
END_TEST

START_TEST(dev_null_direct)
{
	char err[256];
	tally_writer *w = tally_writer_open("/dev/null", TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "k", 1, 1);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), 0);
	struct stat st;
	ck_assert_int_eq(stat("/dev/null", &st), 0);
	ck_assert(S_ISCHR(st.st_mode));
}
END_TEST

START_TEST(stdout_epipe)
{
	char err[256];
	int p[2];
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe(p), 0);
	close(p[0]);
	ck_assert_int_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	close(p[1]);
	tally_writer *w = tally_writer_open("-", TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	put(w, "k", 1, 1);
	errno = 0;
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_str_eq(err, "standard output: Broken pipe");
}
END_TEST

START_TEST(stdout_epipe_mid_stream)
{
	/* The reader takes some output, then goes away. */
	char err[256];
	int p[2];
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe(p), 0);
	/* Room for a whole output buffer, so the first flush does not block. */
	ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), 512 * 1024);
	ck_assert_int_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	close(p[1]);
	tally_writer *w = tally_writer_open(NULL, TALLY_FORMAT_TSV, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	char key[100];
	memset(key, 'a', sizeof key);
	/* A little more than one buffer, so one flush reaches the pipe; read
	 * some of it, then close the read end. */
	for (int i = 0; i < 3000; i++)
		put(w, key, sizeof key, 1);
	char sink[1000];
	ck_assert_int_gt(read(p[0], sink, sizeof sink), 0);
	close(p[0]);
	int rc = 0;
	for (int i = 0; i < 100000 && rc == 0; i++) {
		tally_item it = { key, sizeof key, 1 };
		rc = tally_writer_put(w, &it);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(tally_writer_close(w, 1, err, sizeof err), -1);
	ck_assert_int_eq(errno, EPIPE);
}
END_TEST

START_TEST(close_null_and_err_null)
{
	ck_assert_int_eq(tally_writer_close(NULL, 1, NULL, 0), 0);
	tally_writer *w = tally_writer_open("/dev/full", TALLY_FORMAT_TSV, NULL, 0);
	ck_assert_ptr_nonnull(w);
	put(w, "k", 1, 1);
	ck_assert_int_eq(tally_writer_close(w, 1, NULL, 0), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
}
END_TEST

/* ---- Suite ---------------------------------------------------------- */

static Suite *output_suite(void)
{
	Suite *s = suite_create("output");
	TCase *tc;

	tc = tcase_create("escape");
	tcase_add_test(tc, escape_tsv);
	tcase_add_test(tc, escape_csv);
	tcase_add_test(tc, escape_json);
	tcase_add_test(tc, escape_by_words);
	tcase_add_test(tc, escape_uniq);
	tcase_add_test(tc, escape_truncates_like_snprintf);
	tcase_add_test(tc, escape_long_key);
	tcase_add_test(tc, tsv_unescape);
	tcase_add_test(tc, format_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("formats");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, format_tsv);
	tcase_add_test(tc, format_csv);
	tcase_add_test(tc, format_json);
	tcase_add_test(tc, format_ndjson);
	tcase_add_test(tc, format_uniq);
	tcase_add_test(tc, uniq_matches_printf);
	tcase_add_test(tc, empty_results);
	tcase_add_test(tc, one_json_item);
	tcase_add_test(tc, many_items_every_format);
	tcase_add_test(tc, huge_key_streams);
	suite_add_tcase(s, tc);

	tc = tcase_create("stdout");
	tcase_add_test(tc, stdout_same_bytes);
	tcase_add_test(tc, stdout_discard_flushes_without_close);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, replace_commit_and_discard);
	tcase_add_test(tc, relative_path);
	tcase_add_test(tc, permissions);
	tcase_add_test(tc, symlink_target_replaced_through_link);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, open_fails_without_memory);
	tcase_add_test(tc, write_failure_keeps_target);
	tcase_add_test(tc, failure_at_close_keeps_target);
	tcase_add_test(tc, signal_cleanup_removes_temporary);
	tcase_add_test(tc, zstd_output);
	tcase_add_test(tc, zstd_large_output);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, written_by_threads);
	tcase_add_test(tc, written_by_threads_fails);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, dev_full_enospc);
	tcase_add_test(tc, stdout_dev_full);
	tcase_add_test(tc, dev_null_direct);
	tcase_add_test(tc, stdout_epipe);
	tcase_add_test(tc, stdout_epipe_mid_stream);
	tcase_add_test(tc, close_null_and_err_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(output_suite());
}
