/*
 * test_tokenize.c - keys, counters and chunking of the tokenizer.
 *
 * Each case counts an input into tables and compares a dump of the result
 * ("[key]=count" lines sorted by key bytes) with the exact expected text.
 * The property tests cut random inputs into chunks the way a reader does
 * (tok_cut with random read sizes, full when the buffer is full) and check
 * that tables and counters equal a single-chunk run.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally.h"
#include "table.h"
#include "tokenize.h"
#include "testutil.h"

/* ---- Harness --------------------------------------------------------- */

typedef struct entry {
	char    *key;
	size_t   len;
	uint64_t count;
} entry;

typedef struct dump {
	entry *e;
	size_t n, cap;
} dump;

static int collect(void *ctx, const table_entry *te)
{
	dump *d = ctx;
	/* Whichever way a key was hashed (eight at a time or one by one),
	 * its hash is XXH3's. */
	ck_assert_uint_eq(te->hash, XXH3_64bits(te->key, te->len));
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->e = realloc(d->e, d->cap * sizeof *d->e);
		ck_assert_ptr_nonnull(d->e);
	}
	entry *e = &d->e[d->n++];
	e->key = malloc(te->len + 1);
	ck_assert_ptr_nonnull(e->key);
	memcpy(e->key, te->key, te->len);
	e->len = te->len;
	e->count = te->count;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, m);
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* The sorted, summed entries of several tables as text. */
static char *dump_tables(table **t, int nt)
{
	dump d = { 0 };
	for (int i = 0; i < nt; i++)
		for (unsigned p = 0; p < table_partitions(t[i]); p++)
			table_each(t[i], p, collect, &d);
	if (d.n)
		qsort(d.e, d.n, sizeof *d.e, cmp_entry);
	size_t cap = 64, len = 0;
	for (size_t i = 0; i < d.n; i++)
		cap += d.e[i].len + 32;
	char *out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	out[0] = 0;
	for (size_t i = 0; i < d.n;) {
		size_t j = i;
		uint64_t sum = 0;
		while (j < d.n && cmp_entry(&d.e[i], &d.e[j]) == 0)
			sum += d.e[j++].count;
		out[len++] = '[';
		memcpy(out + len, d.e[i].key, d.e[i].len);
		len += d.e[i].len;
		len += (size_t)sprintf(out + len, "]=%llu\n", (unsigned long long)sum);
		i = j;
	}
	out[len] = 0;
	for (size_t i = 0; i < d.n; i++)
		free(d.e[i].key);
	free(d.e);
	return out;
}

typedef struct result {
	char    *dump;
	uint64_t tokens, bytes, ill, cut, skipped;
	int      fields_failed;
	uint64_t lines, bad_line;   /* count files: lines, the first malformed one */
	const char *why;
	int      overflow;          /* ... whose counts add up past 2^64 - 1 */
	char     err[256];
} result;

static void result_free(result *r)
{
	free(r->dump);
	r->dump = NULL;
}

static void add_counters(result *r, const tok_worker *w)
{
	const tok_counters *c = tok_worker_counters(w);
	r->tokens += atomic_load(&c->tokens);
	r->bytes += atomic_load(&c->bytes);
	r->ill += atomic_load(&c->illformed_bytes);
	r->cut += atomic_load(&c->cut_keys);
	r->skipped += atomic_load(&c->skipped_records);
}

static unsigned long long rng_state = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

/* Cut as a reader of a stream does: it learns of the end of the input only
 * when a read gives nothing, so a last buffer that is full is cut as one
 * that is not the last, and an empty chunk ends a record cut there to go
 * on (a file's reader knows its size, and its last buffer is the last). */
static int stream_eof;

/*
 * Count in[0..len) with cfg.  cap == 0: one chunk.  Otherwise cut like a
 * reader whose buffer holds cap bytes, reading 1..maxread bytes at a time.
 */
static void run_cfg(const tally_config *cfg, const char *in, size_t len, size_t cap,
	unsigned maxread, result *r)
{
	memset(r, 0, sizeof *r);
	int usage = 0;
	tok_shared *s = tok_shared_create(cfg, r->err, sizeof r->err, &usage);
	ck_assert_msg(s != NULL, "create: %s", r->err);
	table_config tc = { 0 };
	table *t[2] = { table_create(&tc), table_create(&tc) };
	ck_assert(t[0] && t[1]);
	tok_worker *w = tok_worker_create(s, t[0]);
	tok_worker *st = tok_worker_create(s, t[1]);
	ck_assert(w && st);
	tok_fields *f = NULL;
	size_t start = 0, blen = 0;
	tok_cont cont_in = 0;
	int first = 1;
	/* The prefix the chunk being cut starts with, and the next one's. */
	size_t pcap = tok_prefix_cap(s);
	char *pin = malloc(pcap + 1), *pout = malloc(pcap + 1);
	size_t pin_len = 0;
	ck_assert(pin && pout);
	while (start < len || first || (stream_eof && (cont_in || pin_len))) {
		size_t cut;
		tok_cont cont = 0;
		input_prefix pre = { pin, pin_len, pout, 0, 0 };
		if (cap == 0 || len == 0) {
			cut = len;
		} else if (start == len) {
			cut = 0;   /* the stream's empty last chunk */
		} else {
			for (;;) {
				size_t room = cap - blen, left = len - start - blen;
				size_t want = 1 + rnd(maxread);
				size_t add = want < room ? want : room;
				blen += add < left ? add : left;
				int full = blen == cap;
				int eof = start + blen == len && !(stream_eof && full);
				pre.out_cap = full ? pcap : 0;
				cut = tok_cut(s, f, in + start, blen, eof, full, cont_in, &cont, &pre);
				if (cut)
					break;
				ck_assert_msg(!eof && !full, "tok_cut returned 0 at eof or full");
				ck_assert_uint_eq(cont, 0);
				ck_assert_uint_eq(pre.out_len, 0);
			}
			ck_assert_uint_le(cut, blen);
			ck_assert_uint_le(pre.out_len, pre.out_cap);
		}
		/* The header is the first record that is not an empty line
		 * (CSV), in this chunk or a later one, as the engine reads it. */
		size_t skip = 0, used = 0;
		if (!f && cfg->mode == TALLY_MODE_FIELDS
				&& (skip = tok_header_skip(s, in + start, cut)) < cut) {
			f = tok_fields_for_input(s, in + start + skip, cut - skip, &used,
				r->err, sizeof r->err);
			if (!f) {
				r->fields_failed = 1;
				break;
			}
			skip += used;
		}
		first = 0;
		tok_chunk c = { in + start + skip, cut - skip, cont_in, f, cont, pin_len ? pin : NULL,
			pin_len, 0 };
		tok_edge *e = NULL;
		ck_assert_int_eq(tok_run(w, &c, &e), 0);
		if (cfg->ngram > 1) {
			ck_assert_ptr_nonnull(e);
			ck_assert_int_eq(tok_stitch(st, e), 0);
			tok_edge_free(e);
		} else if (cfg->mode == TALLY_MODE_COUNTS) {
			/* Lines numbered in input order, as the engine does. */
			ck_assert_ptr_nonnull(e);
			tok_lines l;
			tok_edge_lines(e, &l);
			if (l.bad_line && !r->bad_line) {
				r->bad_line = r->lines + l.bad_line;
				r->why = l.why;
			}
			r->lines += l.lines;
			r->overflow |= l.overflow;
			tok_edge_free(e);
		} else {
			ck_assert_ptr_null(e);
		}
		start += cut;
		blen -= cut < blen ? cut : blen;
		cont_in = cont;
		char *swap = pin;
		pin = pout;
		pout = swap;
		pin_len = pre.out_len;
		if (len == 0)
			break;
	}
	free(pin);
	free(pout);
	if (f)
		tok_fields_release(s, f);
	if (!r->fields_failed)
		r->dump = dump_tables(t, 2);
	add_counters(r, w);
	add_counters(r, st);
	tok_worker_destroy(w);
	tok_worker_destroy(st);
	table_destroy(t[0]);
	table_destroy(t[1]);
	tok_shared_destroy(s);
}

static tally_config base_cfg(void)
{
	tally_config cfg;
	memset(&cfg, 0, sizeof cfg);  /* the defaults are all zero */
	return cfg;
}

/* Count with cfg in one chunk; return the dump (caller frees). */
static char *count1(const tally_config *cfg, const char *in, size_t len, result *r)
{
	run_cfg(cfg, in, len, 0, 1, r);
	char *d = r->dump;
	r->dump = NULL;
	return d;
}

#define EXPECT(cfg, input, expected) do { \
		result r_; \
		char *d_ = count1((cfg), (input), sizeof(input) - 1, &r_); \
		ck_assert_str_eq(d_, (expected)); \
		free(d_); \
	} while (0)

static tally_config words_cfg(void)
{
	return base_cfg();
}

/* ---- Unicode words ----------------------------------------------------- */

START_TEST(test_apostrophes)
{
	tally_config cfg = words_cfg();
	EXPECT(&cfg, "don't o'clock 'quoted' trailing' rock'n'roll a''b l\xe2\x80\x99homme \xe2\x80\x99x",
		"[a]=1\n[b]=1\n[don't]=1\n[l\xe2\x80\x99homme]=1\n[o'clock]=1\n[quoted]=1\n"
		"[rock'n'roll]=1\n[trailing]=1\n[x]=1\n");
	/* An apostrophe at the very end, and one before a non-word code point. */
	EXPECT(&cfg, "it'", "[it]=1\n");
	EXPECT(&cfg, "it'\xe3\x80\x81s", "[it]=1\n[s]=1\n");
}
END_TEST

START_TEST(test_marks_cjk_numbers)
{
	tally_config cfg = words_cfg();
	/* e + COMBINING ACUTE ACCENT stays one word, not normalized. */
	EXPECT(&cfg, "e\xcc\x81te", "[e\xcc\x81te]=1\n");
	/* CJK: one run of letters; IDEOGRAPHIC COMMA (Po) separates. */
	EXPECT(&cfg, "\xe6\xbc\xa2\xe5\xad\x97\xe3\x81\x8b\xe3\x81\xaa \xe6\xbc\xa2\xe3\x80\x81\xe5\xad\x97",
		"[\xe5\xad\x97]=1\n[\xe6\xbc\xa2]=1\n[\xe6\xbc\xa2\xe5\xad\x97\xe3\x81\x8b\xe3\x81\xaa]=1\n");
	/* Nd, No (VULGAR FRACTION ONE HALF), Nl (ROMAN NUMERAL TWELVE, lowercased). */
	EXPECT(&cfg, "3.14 1,000 \xc2\xbd \xe2\x85\xab",
		"[000]=1\n[1]=1\n[14]=1\n[3]=1\n[\xc2\xbd]=1\n[\xe2\x85\xbb]=1\n");
	/* Pc: underscore joins; hyphen and other punctuation separate. */
	EXPECT(&cfg, "snake_case foo-bar __init__ a\xe2\x80\xbf" "b",
		"[__init__]=1\n[a\xe2\x80\xbf" "b]=1\n[bar]=1\n[foo]=1\n[snake_case]=1\n");
}
END_TEST

START_TEST(test_illformed)
{
	tally_config cfg = words_cfg();
	result r;
	/* overlong 2-byte, overlong 3-byte, surrogate, > U+10FFFF, F5 lead,
	 * truncated, stray continuation, FF. */
	const char in[] = "a\xc0\xaf" "b c\xe0\x80\xaf" "d e\xed\xa0\x80" "f g\xf4\x90\x80\x80" "h "
		"i\xf5\x80\x80\x80" "j k\xe2\x82" "l m\x80" "n \xff o\xe2\x82";
	char *d = count1(&cfg, in, sizeof in - 1, &r);
	ck_assert_str_eq(d, "[a]=1\n[b]=1\n[c]=1\n[d]=1\n[e]=1\n[f]=1\n[g]=1\n[h]=1\n[i]=1\n"
		"[j]=1\n[k]=1\n[l]=1\n[m]=1\n[n]=1\n[o]=1\n");
	ck_assert_uint_eq(r.ill, 2 + 3 + 3 + 4 + 4 + 2 + 1 + 1 + 2);
	ck_assert_uint_eq(r.tokens, 15);
	ck_assert_uint_eq(r.bytes, sizeof in - 1);
	free(d);
	/* Well-formed 4-byte letters are words (U+10400 DESERET, lowercased). */
	d = count1(&cfg, "\xf0\x90\x90\x80", 4, &r);
	ck_assert_str_eq(d, "[\xf0\x90\x90\xa8]=1\n");
	ck_assert_uint_eq(r.ill, 0);
	free(d);
}
END_TEST

START_TEST(test_nul_crlf)
{
	tally_config cfg = words_cfg();
	EXPECT(&cfg, "a\0b\r\nHello\r\nWORLD\r\n", "[a]=1\n[b]=1\n[hello]=1\n[world]=1\n");
	cfg.split = TALLY_SPLIT_SPACE;
	EXPECT(&cfg, "a\0b\r\nx\vy\fz", "[a\0b]=1\n[x]=1\n[y]=1\n[z]=1\n");
	cfg = base_cfg();
	cfg.mode = TALLY_MODE_LINES;
	EXPECT(&cfg, "a\0b\r\nb\n", "[a\0b\r]=1\n[b]=1\n");
}
END_TEST

START_TEST(test_case_modes)
{
	tally_config cfg = words_cfg();
	/* Simple lowercase: U+0130 -> 'i', SIGMA -> small sigma (no final form). */
	EXPECT(&cfg, "\xc4\xb0stanbul \xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91\xce\xa3 \xc3\x89" "COLE",
		"[istanbul]=1\n[\xc3\xa9" "cole]=1\n[\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1\xcf\x83]=1\n");
	cfg.casemode = TALLY_CASE_ASCII;
	EXPECT(&cfg, "\xc3\x89" "COLE \xc3\x89" "cole", "[\xc3\x89" "cole]=2\n");
	cfg.casemode = TALLY_CASE_KEEP;
	EXPECT(&cfg, "Word word WORD", "[WORD]=1\n[Word]=1\n[word]=1\n");
	/* Space split with lower: valid UTF-8 mapped, ill-formed bytes kept. */
	cfg = words_cfg();
	cfg.split = TALLY_SPLIT_SPACE;
	EXPECT(&cfg, "\xc3\x89T\xc3\x89\xff \xc3\xa9t\xc3\xa9\xff Don't!", "[don't!]=1\n[\xc3\xa9t\xc3\xa9\xff]=2\n");
	/* Lines keep case by default; --case=lower maps them. */
	cfg = base_cfg();
	cfg.mode = TALLY_MODE_LINES;
	EXPECT(&cfg, "A b\na B\n", "[A b]=1\n[a B]=1\n");
	cfg.casemode = TALLY_CASE_LOWER;
	EXPECT(&cfg, "A b\na B\n", "[a b]=2\n");
}
END_TEST

START_TEST(test_max_key)
{
	tally_config cfg = words_cfg();
	result r;
	cfg.max_key_bytes = 5;
	/* e-acute is 2 bytes: 5 bytes would split the third one. */
	char *d = count1(&cfg, "\xc3\xa9\xc3\xa9\xc3\xa9 abcdefgh abcde", 22, &r);
	ck_assert_str_eq(d, "[abcde]=2\n[\xc3\xa9\xc3\xa9]=1\n");
	ck_assert_uint_eq(r.cut, 2);
	ck_assert_uint_eq(r.tokens, 3);
	free(d);
	/* The rest of a cut word is not a new key, even after an apostrophe. */
	d = count1(&cfg, "abcde'fgh x", 11, &r);
	ck_assert_str_eq(d, "[abcde]=1\n[x]=1\n");
	ck_assert_uint_eq(r.cut, 1);
	free(d);
	for (int m = 0; m < 3; m++) {
		cfg = base_cfg();
		cfg.max_key_bytes = 5;
		if (m == 0) {
			cfg.split = TALLY_SPLIT_SPACE;
			cfg.casemode = TALLY_CASE_KEEP;
		} else if (m == 1) {
			cfg.split = TALLY_SPLIT_SPACE;
			cfg.casemode = TALLY_CASE_ASCII;
		} else {
			cfg.mode = TALLY_MODE_LINES;
		}
		d = count1(&cfg, "\xc3\xa9\xc3\xa9\xc3\xa9\nabc\xff\xff\xff\n", 14, &r);
		ck_assert_str_eq(d, "[abc\xff\xff]=1\n[\xc3\xa9\xc3\xa9]=1\n");
		ck_assert_uint_eq(r.cut, 2);
		free(d);
	}
}
END_TEST

START_TEST(test_long_word_chunks)
{
	/* A word as long as the input, cut by the reader and by max_key. */
	tally_config cfg = words_cfg();
	cfg.max_key_bytes = 8;
	char in[300];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (char)('a' + i % 26);
	result one, many;
	run_cfg(&cfg, in, sizeof in, 0, 1, &one);
	ck_assert_str_eq(one.dump, "[abcdefgh]=1\n");
	ck_assert_uint_eq(one.cut, 1);
	for (size_t cap = 27 + 16; cap < 80; cap += 7) {
		run_cfg(&cfg, in, sizeof in, cap, 50, &many);
		ck_assert_str_eq(many.dump, one.dump);
		ck_assert_uint_eq(many.cut, 1);
		ck_assert_uint_eq(many.tokens, 1);
		ck_assert_uint_eq(many.bytes, sizeof in);
		result_free(&many);
	}
	result_free(&one);
}
END_TEST

/* in read through buffers of every size from `from` below `to` by step: the
 * same keys and counters as one pass (one). */
static void check_caps(const tally_config *cfg, const char *in, size_t n, const result *one,
	size_t from, size_t to, size_t step, unsigned maxread)
{
	for (size_t cap = from; cap < to; cap += step)
		for (stream_eof = 0; stream_eof < 2; stream_eof++) {
			result many;
			run_cfg(cfg, in, n, cap, maxread, &many);
			ck_assert_str_eq(many.dump, one->dump);
			ck_assert_uint_eq(many.skipped, one->skipped);
			ck_assert_uint_eq(many.cut, one->cut);
			ck_assert_uint_eq(many.tokens, one->tokens);
			result_free(&many);
		}
	stream_eof = 0;
}

/* Records longer than a buffer, in fields mode: decided in the first buffer,
 * or carried over by column number past a long unselected column. */
START_TEST(test_long_records)
{
	char in[400];
	size_t n = 0;
	n += (size_t)sprintf(in + n, "a\t");
	memset(in + n, 'b', 150);
	n += 150;
	n += (size_t)sprintf(in + n, "\tc\td\nx\ty\tz\n\"q\t");
	memset(in + n, '"', 100);     /* "" escapes: 50 quotes of data */
	n += 100;
	n += (size_t)sprintf(in + n, "\n\"\t3\n");
	static const char *const lists[] = { "3", "1", "2", "1-", "2,3" };
	static const char *const want[] = {
		"[c]=1\n[z]=1\n",
		"[a]=1\n[q\t\"\"\"\"]=1\n[x]=1\n",
		"[3]=1\n[bbbbbb]=1\n[y]=1\n",
		"[a\tbbbb]=1\n[q\t\"\"\"\"]=1\n[x\ty\tz]=1\n",
		"[bbbbbb]=1\n[y\tz]=1\n",
	};
	static const uint64_t skipped[] = { 1, 0, 0, 0, 1 };
	for (int csv = 0; csv < 2; csv++) {
		for (size_t k = 0; k < sizeof lists / sizeof *lists; k++) {
			tally_config cfg = base_cfg();
			cfg.mode = TALLY_MODE_FIELDS;
			cfg.max_key_bytes = 6;
			cfg.fields = lists[k];
			cfg.csv = csv;
			cfg.delimiter = '\t';
			result one;
			run_cfg(&cfg, in, n, 0, 1, &one);
			if (!csv) {
				/* Without CSV the quotes are data: only the first lines. */
				ck_assert(one.dump != NULL);
			} else {
				ck_assert_str_eq(one.dump, want[k]);
				ck_assert_uint_eq(one.skipped, skipped[k]);
			}
			check_caps(&cfg, in, n, &one, 48, 120, 5, 30);
			result_free(&one);
		}
	}
}
END_TEST

/* CSV records longer than a buffer whose columns hold runs of '\r' (data,
 * but for one right before the record's '\n'): a buffer of them is split
 * after one, so the record goes on to its selected columns. */
START_TEST(test_long_records_cr)
{
	char in[600];
	size_t n = 0;
	n += (size_t)sprintf(in + n, "a,");
	memset(in + n, '\r', 150);
	n += 150;
	n += (size_t)sprintf(in + n, ",c\r\nx,y\rz,w\n");
	memset(in + n, '\r', 120);
	n += 120;
	n += (size_t)sprintf(in + n, "q,r,s\n\"u\r\",");
	memset(in + n, '\r', 130);
	n += 130;
	n += (size_t)sprintf(in + n, "\r\"\r,v\r\r\n");
	static const char *const lists[] = { "1,3", "3", "2", "1-" };
	static const char *const want[] = {
		"[\r\r\r\r\r\r]=1\n[a,c]=1\n[u\r,v\r]=1\n[x,w]=1\n",
		"[c]=1\n[s]=1\n[v\r]=1\n[w]=1\n",
		"[\r\r\r\r\r\r]=2\n[r]=1\n[y\rz]=1\n",
		"[\r\r\r\r\r\r]=1\n[a,\r\r\r\r]=1\n[u\r,\r\r\r]=1\n[x,y\rz,]=1\n",
	};
	for (size_t k = 0; k < sizeof lists / sizeof *lists; k++) {
		tally_config cfg = base_cfg();
		cfg.mode = TALLY_MODE_FIELDS;
		cfg.max_key_bytes = 6;
		cfg.fields = lists[k];
		cfg.csv = 1;
		result one;
		run_cfg(&cfg, in, n, 0, 1, &one);
		ck_assert_str_eq(one.dump, want[k]);
		ck_assert_uint_eq(one.skipped, 0);
		check_caps(&cfg, in, n, &one, 96, 200, 7, 40);
		result_free(&one);
	}
}
END_TEST

START_TEST(test_cut_basics)
{
	tally_config cfg = words_cfg();
	char err[200];
	int usage;
	tok_shared *s = tok_shared_create(&cfg, err, sizeof err, &usage);
	ck_assert_ptr_nonnull(s);
	tok_cont cont = 7;
	input_prefix pre = { 0 };
	/* A word split across two reads: cut before it. */
	ck_assert_uint_eq(tok_cut(s, NULL, "hello wor", 9, 0, 0, 0, &cont, &pre), 6);
	ck_assert_uint_eq(cont, 0);
	/* An apostrophe may join: no boundary after it. */
	ck_assert_uint_eq(tok_cut(s, NULL, "don'", 4, 0, 0, 0, &cont, &pre), 0);
	ck_assert_uint_eq(tok_cut(s, NULL, "don't", 5, 1, 0, 0, &cont, &pre), 5);
	/* No ASCII separator, but an IDEOGRAPHIC COMMA: found when full. */
	ck_assert_uint_eq(tok_cut(s, NULL, "ab\xe3\x80\x81" "cd", 7, 0, 1, 0, &cont, &pre), 5);
	ck_assert_uint_eq(cont, 0);
	/* Forced: after the last complete word character. */
	ck_assert_uint_eq(tok_cut(s, NULL, "abc\xc3", 4, 0, 1, 0, &cont, &pre), 3);
	ck_assert_uint_ne(cont, 0);
	tok_shared_destroy(s);

	cfg.mode = TALLY_MODE_LINES;
	s = tok_shared_create(&cfg, err, sizeof err, &usage);
	ck_assert_uint_eq(tok_cut(s, NULL, "a\nb\nc", 5, 0, 0, 0, &cont, &pre), 4);
	ck_assert_uint_eq(tok_cut(s, NULL, "abc", 3, 0, 0, 0, &cont, &pre), 0);
	ck_assert_uint_eq(tok_cut(s, NULL, "abc", 3, 1, 0, 0, &cont, &pre), 3);
	tok_shared_destroy(s);

	cfg.mode = TALLY_MODE_FIELDS;
	cfg.csv = 1;
	cfg.fields = "1";
	s = tok_shared_create(&cfg, err, sizeof err, &usage);
	/* The second newline is inside quotes. */
	ck_assert_uint_eq(tok_cut(s, NULL, "a\n\"b\nc", 6, 0, 0, 0, &cont, &pre), 2);
	ck_assert_uint_eq(tok_cut(s, NULL, "\"b\nc", 4, 0, 0, 0, &cont, &pre), 0);
	/* A quote inside an unquoted field is literal: the newline ends it. */
	ck_assert_uint_eq(tok_cut(s, NULL, "x\"y\nz", 5, 0, 0, 0, &cont, &pre), 4);
	tok_shared_destroy(s);

	/* A record longer than the buffer whose key has begun: the key so far
	 * goes on to the next chunk, and from there to the one after. */
	cfg.csv = 0;
	cfg.fields = "1,3";
	cfg.max_key_bytes = 64;
	s = tok_shared_create(&cfg, err, sizeof err, &usage);
	char k1[128], k2[128];
	ck_assert_uint_ge(tok_prefix_cap(s), 65);
	input_prefix p1 = { NULL, 0, k1, 0, sizeof k1 };
	ck_assert_uint_eq(tok_cut(s, NULL, "k\txxxxxxxx", 10, 0, 1, 0, &cont, &p1), 10);
	ck_assert_uint_eq(p1.out_len, 1);
	ck_assert_int_eq(k1[0], 'k');
	tok_cont c2;
	input_prefix p2 = { k1, 1, k2, 0, sizeof k2 };
	ck_assert_uint_eq(tok_cut(s, NULL, "xx\tvv", 5, 0, 1, cont, &c2, &p2), 5);
	ck_assert_uint_eq(p2.out_len, 4);
	ck_assert(memcmp(k2, "k\tvv", 4) == 0);
	/* Not inside a UTF-8 sequence of a selected column. */
	ck_assert_uint_eq(tok_cut(s, NULL, "xx\tv\xc3\xa9", 6, 0, 1, cont, &c2, &p2), 6);
	ck_assert_uint_eq(tok_cut(s, NULL, "xx\tv\xc3", 5, 0, 1, cont, &c2, &p2), 4);
	ck_assert_uint_eq(tok_cut(s, NULL, "xx\tv\xc3\xa9w", 7, 0, 1, cont, &c2, &p2), 7);
	ck_assert_uint_eq(p2.out_len, 6);
	/* A long key: no more of it is carried than is needed to cut it. */
	input_prefix p3 = { NULL, 0, k1, 0, sizeof k1 };
	char lng[120] = "k\t";
	memset(lng + 2, 'y', sizeof lng - 2);
	cfg.fields = "1,2";
	tok_shared *s2 = tok_shared_create(&cfg, err, sizeof err, &usage);
	ck_assert_uint_eq(tok_cut(s2, NULL, lng, sizeof lng, 0, 1, 0, &c2, &p3), sizeof lng);
	ck_assert_uint_eq(p3.out_len, tok_prefix_cap(s2));
	ck_assert_uint_lt(p3.out_len, sizeof lng);
	tok_shared_destroy(s2);
	/* Decided (column 3 has ended): counted in this chunk. */
	ck_assert_uint_eq(tok_cut(s, NULL, "xx\tv\tyy", 7, 0, 1, cont, &c2, &p2), 5);
	ck_assert_uint_eq(p2.out_len, 0);
	tok_shared_destroy(s);
}
END_TEST

/* ---- Lines ------------------------------------------------------------- */

START_TEST(test_lines)
{
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_LINES;
	result r;
	char *d = count1(&cfg, "", 0, &r);
	ck_assert_str_eq(d, "");
	ck_assert_uint_eq(r.tokens, 0);
	free(d);
	EXPECT(&cfg, "\n", "[]=1\n");
	EXPECT(&cfg, "a\n\nb", "[]=1\n[a]=1\n[b]=1\n");
	EXPECT(&cfg, "a\nb\na\n", "[a]=2\n[b]=1\n");
	EXPECT(&cfg, "x y  z\r\n", "[x y  z\r]=1\n");
}
END_TEST

/* ---- Count files -------------------------------------------------------- */

/* Count one count file; check its first malformed line and the reason. */
static void expect_counts(const char *in, const char *want, uint64_t bad, const char *why)
{
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_COUNTS;
	cfg.max_key_bytes = 8;
	result r;
	char *d = count1(&cfg, in, strlen(in), &r);
	ck_assert_str_eq(d, want);
	ck_assert_uint_eq(r.bad_line, bad);
	if (why)
		ck_assert_str_eq(r.why, why);
	free(d);
}

START_TEST(test_counts)
{
	expect_counts("", "", 0, NULL);
	expect_counts("a\t3\nb\\tc\t2\na\t1", "[a]=4\n[b\tc]=2\n", 0, NULL);
	expect_counts("\t7\n\\\\\\n\\r\t1\n", "[]=7\n[\\\n\r]=1\n", 0, NULL);
	expect_counts("x\t007\n\377\t1\n", "[x]=7\n[\377]=1\n", 0, NULL);
	/* Up to max_key_bytes (8), escapes undone. */
	expect_counts("12345678\t1\n1234567\\n\t1\n", "[1234567\n]=1\n[12345678]=1\n", 0, NULL);
	expect_counts("a\t1\n123456789\t1\nb\t1\n", "[a]=1\n", 2,
		"the key is longer than --max-key-bytes");
	expect_counts("12345678\\t\t1\n", "", 1, "the key is longer than --max-key-bytes");
	expect_counts("a\t1\n\nb\t1\n", "[a]=1\n", 2, "empty line");
	expect_counts("a 1\n", "", 1, "no TAB between key and count");
	expect_counts("a\t\n", "", 1, "no count after the TAB");
	expect_counts("a\t1\t2\n", "", 1, "the count is not a decimal number");
	expect_counts("a\t+1\n", "", 1, "the count is not a decimal number");
	expect_counts("a\t1\r\n", "", 1, "the count is not a decimal number");
	expect_counts("a\t0\n", "", 1, "the count is 0");
	expect_counts("a\t18446744073709551615\n", "[a]=18446744073709551615\n", 0, NULL);
	expect_counts("a\t18446744073709551616\n", "", 1,
		"the count is too large (more than 18446744073709551615)");
	/* Past 2^64 - 1 in all: told apart from a malformed line (the
	 * engine fails the run, whatever the chunks and the threads). */
	result r;
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_COUNTS;
	free(count1(&cfg, "a\t18446744073709551615\n", 23, &r));
	ck_assert_int_eq(r.overflow, 0);
	free(count1(&cfg, "a\t18446744073709551615\nb\t1\n", 27, &r));
	ck_assert_int_eq(r.overflow, 1);
	ck_assert_uint_eq(r.bad_line, 0);
	expect_counts("a\\x\t1\n", "", 1, "a backslash in the key is not one of \\\\, \\t, \\n, \\r");
	expect_counts("a\\\t1\n", "", 1, "a backslash in the key is not one of \\\\, \\t, \\n, \\r");
}
END_TEST

/* ---- Fields ------------------------------------------------------------ */

START_TEST(test_tsv)
{
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_FIELDS;
	cfg.fields = "2";
	result r;
	const char in[] = "a\tb\tc\n1\t2\n\nx\n\tz\t\n";
	char *d = count1(&cfg, in, sizeof in - 1, &r);
	ck_assert_str_eq(d, "[2]=1\n[b]=1\n[z]=1\n");
	ck_assert_uint_eq(r.skipped, 2);
	free(d);
	/* Record order, not LIST order; a column listed twice counts once. */
	cfg.fields = "3,1,1";
	d = count1(&cfg, in, sizeof in - 1, &r);
	ck_assert_str_eq(d, "[\t]=1\n[a\tc]=1\n");
	ck_assert_uint_eq(r.skipped, 3);
	free(d);
	cfg.fields = "2-";
	d = count1(&cfg, in, sizeof in - 1, &r);
	ck_assert_str_eq(d, "[2]=1\n[b\tc]=1\n[z\t]=1\n");
	free(d);
	cfg.fields = "1-2";
	cfg.delimiter = ',';
	EXPECT(&cfg, "a,b,c\r\nd,e\r\n", "[a,b]=1\n[d,e\r]=1\n");
	/* A record that lacks a selected column is not counted, however long
	 * its key already is (TSV and CSV, whole and split by force). */
	cfg.max_key_bytes = 5;
	for (int csv = 0; csv < 2; csv++) {
		cfg.csv = csv;
		char lack[300];
		size_t n = 0;
		memset(lack, 'a', 120);
		n += 120;
		n += (size_t)sprintf(lack + n, "\nxy\nab,");
		memset(lack + n, 'c', 120);
		n += 120;
		lack[n++] = '\n';
		char err[200];
		int usage;
		tok_shared *s = tok_shared_create(&cfg, err, sizeof err, &usage);
		ck_assert_ptr_nonnull(s);
		size_t minc = tok_min_capacity(s);
		tok_shared_destroy(s);
		for (size_t cap = 0; cap < minc + 30; cap = cap ? cap + 1 : minc) {
			run_cfg(&cfg, lack, n, cap, 5, &r);
			ck_assert_str_eq(r.dump, "[ab,cc]=1\n");
			ck_assert_uint_eq(r.skipped, 2);
			ck_assert_uint_eq(r.cut, 1);
			result_free(&r);
		}
		/* A selected column of stray continuation bytes longer than a
		 * buffer: the record is carried past it to its second column. */
		char odd[400];
		memset(odd, 0x80, 300);
		memcpy(odd + 300, ",z\n", 3);
		for (size_t cap = 0; cap < minc + 30; cap = cap ? cap + 7 : minc) {
			run_cfg(&cfg, odd, 303, cap, 9, &r);
			ck_assert_str_eq(r.dump, "[\x80\x80\x80\x80\x80]=1\n");
			ck_assert_uint_eq(r.skipped, 0);
			result_free(&r);
		}
	}
}
END_TEST

START_TEST(test_csv)
{
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_FIELDS;
	cfg.csv = 1;
	result r;
	const char in[] = "a,\"b,c\",d\n\"x\"\"y\",,z\r\n\n\"multi\nline\",2\n\r\n";
	cfg.fields = "2";
	EXPECT(&cfg, in, "[]=1\n[2]=1\n[b,c]=1\n");
	cfg.fields = "1";
	EXPECT(&cfg, in, "[a]=1\n[multi\nline]=1\n[x\"y]=1\n");
	cfg.fields = "3";
	char *d = count1(&cfg, in, sizeof in - 1, &r);
	ck_assert_str_eq(d, "[d]=1\n[z]=1\n");
	ck_assert_uint_eq(r.skipped, 1);
	ck_assert_uint_eq(r.tokens, 2);
	free(d);
	cfg.fields = "1,3";
	EXPECT(&cfg, in, "[a,d]=1\n[x\"y,z]=1\n");
	/* Malformed: a quote inside an unquoted field is literal, text after a
	 * closing quote is appended, an unterminated quote runs to the end. */
	cfg.fields = "1";
	EXPECT(&cfg, "ab\"c,d\n\"ab\"c,d\n\"\",x\n\"open,x\ny", "[]=1\n[ab\"c]=1\n[abc]=1\n[open,x\ny]=1\n");
	/* A lone '\r' is data; one at the very end ends the record. */
	EXPECT(&cfg, "a\rb,c\nd\r", "[a\rb]=1\n[d]=1\n");
	cfg.delimiter = ';';
	EXPECT(&cfg, "a;b,c\n", "[a]=1\n");
	cfg.fields = "2";
	EXPECT(&cfg, "a;b,c\n", "[b,c]=1\n");
}
END_TEST

START_TEST(test_header)
{
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_FIELDS;
	cfg.csv = 1;
	cfg.header = 1;
	cfg.fields = "level";
	const char in[] = "name,level\nx,INFO\ny,WARN\nz,INFO\n";
	EXPECT(&cfg, in, "[INFO]=2\n[WARN]=1\n");
	cfg.fields = "1";
	EXPECT(&cfg, in, "[x]=1\n[y]=1\n[z]=1\n");
	cfg.fields = "level,name";
	EXPECT(&cfg, in, "[x,INFO]=1\n[y,WARN]=1\n[z,INFO]=1\n");
	/* Quoted names; a TSV header with CRLF. */
	cfg.fields = "a b";
	EXPECT(&cfg, "\"a b\",c\n1,2\n", "[1]=1\n");
	cfg.csv = 0;
	cfg.fields = "c";
	EXPECT(&cfg, "a b\tc\r\n1\t2\r\n", "[2\r]=1\n");

	/* Leading empty lines, CRLF, "" in a name, more than a few columns. */
	cfg.csv = 1;
	cfg.fields = "c10,a\"b";
	EXPECT(&cfg, "\r\n\nid,\"a\"\"b\",c3,c4,c5,c6,c7,c8,c9,c10\r\n1,2,3,4,5,6,7,8,9,10\r\n",
		"[2,10]=1\n");

	result r;
	cfg.csv = 1;
	cfg.fields = "nope";
	run_cfg(&cfg, in, sizeof in - 1, 0, 1, &r);
	ck_assert(r.fields_failed);
	ck_assert_str_eq(r.err, "no column named 'nope'");
	/* Chunked: the header is resolved from the first chunk, or from the
	 * first after chunks of empty lines (CSV: they are no record). */
	cfg.fields = "level";
	for (size_t cap = 16; cap < 40; cap++) {
		run_cfg(&cfg, in, sizeof in - 1, cap, 7, &r);
		ck_assert_str_eq(r.dump, "[INFO]=2\n[WARN]=1\n");
		result_free(&r);
	}
	const char blank[] = "\n\r\n\n\n\r\n\nname,level\r\n\nx,INFO\n";
	for (size_t cap = 16; cap < 40; cap++) {
		run_cfg(&cfg, blank, sizeof blank - 1, cap, 1 + cap % 3, &r);
		ck_assert_msg(!r.fields_failed, "cap %zu: %s", cap, r.err);
		ck_assert_str_eq(r.dump, "[INFO]=1\n");
		result_free(&r);
	}
	/* Only empty lines: no header, nothing counted, as an empty input. */
	for (size_t cap = 0; cap < 40; cap += 13) {
		run_cfg(&cfg, blank, 8, cap, 2, &r);
		ck_assert(!r.fields_failed);
		ck_assert_str_eq(r.dump, "");
		result_free(&r);
	}
}
END_TEST

START_TEST(test_bad_configs)
{
	static const char *const bad[] = { "0", "3-1", "", "a", "1,,2", "-", "--2", "x-y", "1-2-3", ",", "2,0" };
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_FIELDS;
	char err[200], want[64];
	int usage;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		cfg.fields = bad[i];
		usage = 0;
		ck_assert_ptr_null(tok_shared_create(&cfg, err, sizeof err, &usage));
		ck_assert_int_eq(usage, 1);
		snprintf(want, sizeof want, "invalid field list '%s'", bad[i]);
		ck_assert_str_eq(err, want);
	}
	cfg.fields = NULL;
	ck_assert_ptr_null(tok_shared_create(&cfg, err, sizeof err, &usage));
	ck_assert_int_eq(usage, 1);
	cfg = base_cfg();
	cfg.mode = TALLY_MODE_LINES;
	cfg.ngram = 2;
	ck_assert_ptr_null(tok_shared_create(&cfg, err, sizeof err, &usage));
	ck_assert_int_eq(usage, 1);
	cfg = base_cfg();
	cfg.stopwords_path = "/nonexistent/stop.txt";
	usage = 1;
	ck_assert_ptr_null(tok_shared_create(&cfg, err, sizeof err, &usage));
	ck_assert_int_eq(usage, 0);
	ck_assert_str_eq(err, "/nonexistent/stop.txt: No such file or directory");
	/* Valid lists. */
	cfg = base_cfg();
	cfg.mode = TALLY_MODE_FIELDS;
	static const char *const good[] = { "1", "2,5", "1-3", "3-", "1,1", "10-12,2", "2-1000000000" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		cfg.fields = good[i];
		tok_shared *s = tok_shared_create(&cfg, err, sizeof err, &usage);
		ck_assert_msg(s != NULL, "%s: %s", good[i], err);
		tok_shared_destroy(s);
	}
}
END_TEST

/* ---- Filters ------------------------------------------------------------ */

static char *write_temp(const char *text)
{
	char *path = strdup("/tmp/tally-test-stop-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	return path;
}

START_TEST(test_filters)
{
	tally_config cfg = words_cfg();
	cfg.min_length = 2;
	cfg.max_length = 3;
	EXPECT(&cfg, "a ab abc abcd \xc3\xa9\xc3\xa9 \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
		"[ab]=1\n[abc]=1\n[\xc3\xa9\xc3\xa9]=1\n");
	/* Ill-formed bytes count one each (space split keeps them). */
	cfg.split = TALLY_SPLIT_SPACE;
	EXPECT(&cfg, "\xff\xff \xff \xff\xff\xff\xff", "[\xff\xff]=1\n");

	char *path = write_temp("The\r\nAND\n\n\xc3\x89T\xc3\x89\n");
	cfg = words_cfg();
	cfg.stopwords_path = path;
	EXPECT(&cfg, "the cat and THE dog \xc3\xa9t\xc3\xa9 summer", "[cat]=1\n[dog]=1\n[summer]=1\n");
	/* Case keep: the list is not mapped either. */
	cfg.casemode = TALLY_CASE_KEEP;
	EXPECT(&cfg, "The the AND and", "[and]=1\n[the]=1\n");
	/* A longer list (the set grows): w0..w199 stop, w200.. do not. */
	char *big = malloc(200 * 8);
	size_t bl = 0;
	for (int i = 0; i < 200; i++)
		bl += (size_t)sprintf(big + bl, "W%d\n", i);
	char *path2 = write_temp(big);
	free(big);
	cfg = words_cfg();
	cfg.stopwords_path = path2;
	EXPECT(&cfg, "w0 w57 w199 w200 w1000 w00", "[w00]=1\n[w1000]=1\n[w200]=1\n");
	unlink(path2);
	free(path2);
	/* Lines: every key is filtered. */
	cfg = base_cfg();
	cfg.mode = TALLY_MODE_LINES;
	cfg.stopwords_path = path;
	EXPECT(&cfg, "The\nthe\nAND x\n", "[AND x]=1\n[the]=1\n");
	unlink(path);
	free(path);
}
END_TEST

/* ---- N-grams ------------------------------------------------------------ */

START_TEST(test_ngrams)
{
	tally_config cfg = words_cfg();
	cfg.ngram = 2;
	EXPECT(&cfg, "a b c a b", "[a b]=2\n[b c]=1\n[c a]=1\n");
	cfg.ngram = 3;
	EXPECT(&cfg, "A b", "");
	EXPECT(&cfg, "a b c d", "[a b c]=1\n[b c d]=1\n");
	/* Filters apply before n-grams are formed. */
	char *path = write_temp("the\n");
	cfg.ngram = 2;
	cfg.stopwords_path = path;
	cfg.min_length = 2;
	EXPECT(&cfg, "the cat x the dog ran", "[cat dog]=1\n[dog ran]=1\n");
	unlink(path);
	free(path);
	/* The n-gram key is cut like any key. */
	cfg = words_cfg();
	cfg.ngram = 2;
	cfg.max_key_bytes = 6;
	result r;
	char *d = count1(&cfg, "abcdefgh xy ab cd", 17, &r);
	ck_assert_str_eq(d, "[ab cd]=1\n[abcdef]=1\n[xy ab]=1\n");
	ck_assert_uint_eq(r.cut, 1);  /* the n-gram: the word is not a key */
	free(d);
}
END_TEST

/* Chunks given by hand: n-grams across chunks with fewer than N-1 words. */
START_TEST(test_ngram_stitch)
{
	tally_config cfg = words_cfg();
	cfg.ngram = 3;
	char err[200];
	int usage;
	tok_shared *s = tok_shared_create(&cfg, err, sizeof err, &usage);
	table_config tc = { 0 };
	table *t[2] = { table_create(&tc), table_create(&tc) };
	tok_worker *w = tok_worker_create(s, t[0]), *st = tok_worker_create(s, t[1]);
	static const char *const parts[] = { "a b ", "c ", "", "d ", "e f g ", "h" };
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
			tok_chunk c = { parts[i], strlen(parts[i]), 0, NULL, 0, NULL, 0, 0 };
			tok_edge *e;
			ck_assert_int_eq(tok_run(w, &c, &e), 0);
			ck_assert_int_eq(tok_stitch(st, e), 0);
			tok_edge_free(e);
		}
		tok_stitch_reset(st);  /* the second round is another input */
	}
	char *d = dump_tables(t, 2);
	ck_assert_str_eq(d, "[a b c]=2\n[b c d]=2\n[c d e]=2\n[d e f]=2\n[e f g]=2\n[f g h]=2\n");
	free(d);
	/* A part that ends after "c": the chunks past it end its n-grams and
	 * count nothing else, through a chunk with no word and one with one;
	 * the stitcher then waits for no word more. */
	table *u[2] = { table_create(&tc), table_create(&tc) };
	tok_worker *w2 = tok_worker_create(s, u[0]), *st2 = tok_worker_create(s, u[1]);
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
		tok_chunk c = { parts[i], strlen(parts[i]), 0, NULL, 0, NULL, 0, i >= 2 };
		tok_edge *e;
		ck_assert_int_eq(tok_run(w2, &c, &e), 0);
		ck_assert_int_eq(tok_stitch(st2, e), 0);
		tok_edge_free(e);
		ck_assert_uint_eq(tok_stitch_waiting(st2), i < 2 ? 2 : i < 4 ? 2 - (i - 2) : 0);
	}
	d = dump_tables(u, 2);
	ck_assert_str_eq(d, "[a b c]=1\n[b c d]=1\n[c d e]=1\n");
	free(d);
	ck_assert_uint_eq(atomic_load(&tok_worker_counters(w2)->bytes), 6);
	tok_worker_destroy(w2);
	tok_worker_destroy(st2);
	table_destroy(u[0]);
	table_destroy(u[1]);
	tok_worker_destroy(w);
	tok_worker_destroy(st);
	table_destroy(t[0]);
	table_destroy(t[1]);
	tok_shared_destroy(s);
}
END_TEST

/* ---- Random chunking property -------------------------------------------- */

static const char *const pieces[] = {
	"a", "b", "Z", "7", "_", " ", "  ", "\t", "\n", "\r\n", "'", "''", "\xe2\x80\x99",
	"\xc3\xa9", "\xc3\x89", "\xd0\x96", "\xd0\xb6", "\xe6\xbc\xa2", "\xe3\x80\x81",
	"\xf0\x90\x90\x80", "\xcc\x81", "\xff", "\x80", "\xe2\x82", "\xc4\xb0", "\xe2\x84\xaa",
	",", ";", "\"", "\"\"", "-", ".", "\0", "abcdefghij", "don't", "\xd0\x96\xd0\x96\xd0\x96\xd0\x96",
	"\r", "\r\r\r\r\r\r\r\r\r\r\r\r"
};

static size_t random_input(char *buf, size_t cap)
{
	size_t len = 0, target = rnd((unsigned)cap);
	while (len < target) {
		const char *p = pieces[rnd(sizeof pieces / sizeof *pieces)];
		size_t n = p[0] ? strlen(p) : 1;
		if (len + n > cap)
			break;
		memcpy(buf + len, p, n);
		len += n;
	}
	return len;
}

/* big_only: only buffers larger than any input (no forced splits). */
static void check_chunking(const tally_config *cfg, int rounds, int big_only)
{
	char in[600];
	char err[200];
	int usage;
	tok_shared *s = tok_shared_create(cfg, err, sizeof err, &usage);
	ck_assert_msg(s != NULL, "%s", err);
	size_t minc = tok_min_capacity(s);
	tok_shared_destroy(s);
	for (int i = 0; i < rounds; i++) {
		size_t len = random_input(in, sizeof in);
		result one, many;
		run_cfg(cfg, in, len, 0, 1, &one);
		size_t caps[] = { minc, minc + 1 + rnd(8), minc + rnd(64), 1000 };
		for (size_t k = big_only ? 3 : 0; k < sizeof caps / sizeof *caps; k++) {
			unsigned maxread = 1 + rnd(k == 3 ? 1000 : 12);
			stream_eof = (int)rnd(2);
			run_cfg(cfg, in, len, caps[k], maxread, &many);
			stream_eof = 0;
			ck_assert_msg(strcmp(one.dump, many.dump) == 0,
				"round %d cap %zu len %zu:\n--- one\n%s--- chunked\n%s", i, caps[k], len,
				one.dump, many.dump);
			ck_assert_uint_eq(many.tokens, one.tokens);
			ck_assert_uint_eq(many.ill, one.ill);
			ck_assert_uint_eq(many.cut, one.cut);
			ck_assert_uint_eq(many.skipped, one.skipped);
			ck_assert_uint_eq(many.bytes, one.bytes);
			result_free(&many);
		}
		result_free(&one);
	}
}

static const size_t max_keys[] = { 6, 1 << 20 };

START_TEST(test_prop_words)
{
	tally_config cfg = words_cfg();
	cfg.max_key_bytes = max_keys[_i % 2];
	cfg.casemode = (tally_case)(_i / 2 % 4);
	check_chunking(&cfg, 30, 0);
	cfg.split = TALLY_SPLIT_SPACE;
	check_chunking(&cfg, 30, 0);
}
END_TEST

/* Count files cut anywhere, buffers of the least size included: the same
 * counts and lines, and a malformed line found at the same number (a line
 * longer than a buffer is told apart only by its reason). */
START_TEST(test_prop_counts)
{
	static const char *const lines[] = {
		"a\t1\n", "b\\tc\t12\n", "\\\\\t3\n", "\t2\n", "123456\t5\n", "\\n\\r\\n\t1\n",
		"\303\251t\303\251\t40\n", "a\t7",
	};
	static const char *const bad[] = {
		"bad\n", "a\t0\n", "a\\q\t1\n", "1234567\t1\n",
		"12345678901234567890123456789012345678901234567890\t1\n",
	};
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_COUNTS;
	cfg.max_key_bytes = 6;
	char err[200];
	int usage;
	tok_shared *s = tok_shared_create(&cfg, err, sizeof err, &usage);
	ck_assert_msg(s != NULL, "%s", err);
	size_t minc = tok_min_capacity(s);
	tok_shared_destroy(s);
	for (int round = 0; round < 40; round++) {
		char in[700];
		size_t len = 0, n = 1 + rnd(30);
		int with_bad = _i % 2 && round % 2;
		for (size_t i = 0; i < n; i++) {
			const char *l = with_bad && rnd(10) == 0 ? bad[rnd(5)] : lines[rnd(7)];
			memcpy(in + len, l, strlen(l));
			len += strlen(l);
		}
		if (rnd(2))
			len--;   /* no newline at the end */
		result one, many;
		run_cfg(&cfg, in, len, 0, 1, &one);
		size_t caps[] = { minc, minc + 1 + rnd(8), minc + rnd(64), 1000 };
		for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
			stream_eof = (int)rnd(2);
			run_cfg(&cfg, in, len, caps[k], 1 + rnd(k == 3 ? 1000 : 12), &many);
			stream_eof = 0;
			ck_assert_uint_eq(many.bad_line, one.bad_line);
			if (!one.bad_line) {
				ck_assert_str_eq(many.dump, one.dump);
				ck_assert_uint_eq(many.tokens, one.tokens);
				ck_assert_uint_eq(many.lines, one.lines);
			}
			result_free(&many);
		}
		result_free(&one);
	}
}
END_TEST

START_TEST(test_prop_lines)
{
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_LINES;
	cfg.max_key_bytes = max_keys[_i % 2];
	cfg.casemode = (tally_case)(_i / 2 % 4);
	check_chunking(&cfg, 25, 0);
}
END_TEST

/* A record longer than a buffer is decided in its first buffer, or carried
 * over by column number, parser state and key so far, so counts are exact
 * for any buffer of tok_min_capacity, with gaps between the selected
 * columns too ("1,3", "1,4-"). */
START_TEST(test_prop_fields)
{
	static const char *const lists[] = { "1", "1-2", "1,4-", "2", "2-", "1,3", "2,3", "3" };
	tally_config cfg = base_cfg();
	cfg.mode = TALLY_MODE_FIELDS;
	cfg.max_key_bytes = max_keys[_i % 2];
	cfg.fields = lists[_i / 2 % 8];
	cfg.csv = _i / 16 % 2;
	cfg.delimiter = _i / 32 % 2 ? ';' : 0;
	cfg.casemode = _i / 32 % 2 ? TALLY_CASE_LOWER : TALLY_CASE_DEFAULT;
	check_chunking(&cfg, 20, 0);
	cfg.fields = _i % 2 ? "1-" : "3-4";
	check_chunking(&cfg, 10, 0);
}
END_TEST

START_TEST(test_prop_ngrams)
{
	tally_config cfg = words_cfg();
	cfg.ngram = 2 + (unsigned)(_i % 3);
	cfg.max_key_bytes = max_keys[_i / 3 % 2];
	cfg.split = _i / 6 % 2 ? TALLY_SPLIT_SPACE : TALLY_SPLIT_UNICODE;
	cfg.min_length = _i % 2 ? 2 : 0;
	check_chunking(&cfg, 25, 0);
}
END_TEST

/* ---- Unicode words: ASCII blocks against the general path ---------------- */

/* Mostly ASCII: words of 1 to 40 bytes, apostrophes inside, around and
 * doubled, and now and then a character of 0x80 or more, so that whole
 * 64-byte blocks are ASCII and others are not. */
static const char *const ascii_pieces[] = {
	" ", " ", " ", "  ", "\n", "\t", ", ", ". ", "'", "''", "-", "_", "(", ")",
	"\xc3\xa9", "\xe2\x80\x99", "\xd0\x96", "\xff", "\xe3\x80\x81"
};

static size_t ascii_input(char *buf, size_t cap)
{
	size_t len = 0, target = rnd((unsigned)cap);
	while (len + 48 < target) {
		if (rnd(3)) {
			unsigned n = 1 + (rnd(4) ? rnd(9) : rnd(40));
			for (unsigned i = 0; i < n; i++) {
				unsigned c = rnd(40);
				buf[len++] = (char)(c < 26 ? 'a' + c : c < 36 ? 'A' + c - 26 : c < 38 ? '0' + c - 36 : '_');
			}
		} else {
			unsigned k = rnd(sizeof ascii_pieces / sizeof *ascii_pieces);
			if (k >= 14 && rnd(8))
				k = 0;   /* non-ASCII: rarely */
			size_t n = strlen(ascii_pieces[k]);
			memcpy(buf + len, ascii_pieces[k], n);
			len += n;
		}
	}
	return len;
}

/* With no filter, ASCII blocks take the block path (uni_fast); a filter
 * that drops nothing (--min-length 1) sends every word down the general
 * path.  Both must give the same keys, counts and counters. */
/* in[0..len) counted with cfg and with slow give the same keys, counts and
 * counters. */
static void same_both_ways(const tally_config *cfg, const tally_config *slow, const char *in,
	size_t len, int round)
{
	result a, b;
	run_cfg(cfg, in, len, 0, 1, &a);
	run_cfg(slow, in, len, 0, 1, &b);
	ck_assert_msg(strcmp(a.dump, b.dump) == 0, "round %d len %zu:\n--- blocks\n%s--- general\n%s",
		round, len, a.dump, b.dump);
	ck_assert_uint_eq(a.tokens, b.tokens);
	ck_assert_uint_eq(a.ill, b.ill);
	ck_assert_uint_eq(a.cut, b.cut);
	result_free(&a);
	result_free(&b);
}

/* Every short key's hash, whatever its bytes: all keys of 1 and 2 bytes
 * that hold no whitespace, and random ones of 3 to 16 bytes, split on
 * spaces with their case kept, so that they reach the batch as they are.
 * collect() checks each hash against XXH3_64bits; _i 1 hashes one by one
 * (tok_wide_hash), _i 0 eight at a time where the CPU can. */
START_TEST(test_short_key_hashes)
{
	if (_i)
		setenv("TALLY_NO_AVX512", "1", 1);
	size_t cap = 256 * 3 + 65536 * 3 + 20000 * 17 + 256, len = 0;
	char *in = malloc(cap);
	ck_assert_ptr_nonnull(in);
	static const char ws[] = " \t\n\v\f\r";
	for (unsigned a = 0; a < 256; a++) {
		if (a && strchr(ws, (int)a))
			continue;
		in[len++] = (char)a;
		in[len++] = ' ';
		for (unsigned b = 0; b < 256; b++) {
			if (b && strchr(ws, (int)b))
				continue;
			in[len++] = (char)a;
			in[len++] = (char)b;
			in[len++] = ' ';
		}
	}
	for (int k = 0; k < 20000; k++) {
		unsigned n = 3 + rnd(14);
		for (unsigned j = 0; j < n; j++) {
			unsigned c;
			do
				c = rnd(256);
			while (c && strchr(ws, (int)c));
			in[len++] = (char)c;
		}
		in[len++] = ' ';
	}
	ck_assert_uint_le(len, cap);
	tally_config cfg = words_cfg();
	cfg.split = TALLY_SPLIT_SPACE;
	cfg.casemode = TALLY_CASE_KEEP;
	result r;
	run_cfg(&cfg, in, len, 0, 1, &r);
	/* 250 one-byte keys and 250 * 250 two-byte keys (NUL is no space). */
	ck_assert_uint_eq(r.tokens, 250 + 250 * 250 + 20000);
	result_free(&r);
	free(in);
}
END_TEST

START_TEST(test_prop_ascii_blocks)
{
	static const size_t maxes[] = { 16, 17, 23, 1 << 20 };
	static char in[4000];
	tally_config cfg = words_cfg();
	cfg.casemode = (tally_case)(_i % 4);
	cfg.max_key_bytes = maxes[_i / 4 % 4];
	/* The second half hashes short keys one by one (tok_wide_hash). */
	if (_i >= 16)
		setenv("TALLY_NO_AVX512", "1", 1);
	tally_config slow = cfg;
	slow.min_length = 1;
	/* Apostrophes and words across every place of a block boundary. */
	static const char *const joins[] = { "ab'cd", "ab'\xc3\xa9z", "ab' cd", "ab''cd", "ab'\xe3\x80\x81",
		"Ab\xe2\x80\x99\x63\x64" /* Ab'cd */, "abcdefghijklmnopqrstuvw'xyz" };
	for (int round = 0; round < 2 * 150; round++) {
		const char *j = joins[(size_t)round % (sizeof joins / sizeof *joins)];
		size_t len = (size_t)round / 2;
		memset(in, ' ', len);
		len += (size_t)sprintf(in + len, "%s%s", j, round % 2 ? "" : " tail");
		memset(in + len, ' ', 200);
		same_both_ways(&cfg, &slow, in, len + 200, round);
	}
	for (int round = 0; round < 30; round++)
		same_both_ways(&cfg, &slow, in, ascii_input(in, sizeof in), round);
}
END_TEST

static Suite *tokenize_suite(void)
{
	Suite *s = suite_create("tokenize");
	TCase *tc = tcase_create("keys");
	tcase_set_timeout(tc, 20);  /* sanitizer builds are slow */
	tcase_add_test(tc, test_apostrophes);
	tcase_add_test(tc, test_marks_cjk_numbers);
	tcase_add_test(tc, test_illformed);
	tcase_add_test(tc, test_nul_crlf);
	tcase_add_test(tc, test_case_modes);
	tcase_add_test(tc, test_max_key);
	tcase_add_test(tc, test_long_word_chunks);
	tcase_add_test(tc, test_cut_basics);
	tcase_add_test(tc, test_long_records);
	tcase_add_test(tc, test_long_records_cr);
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_counts);
	tcase_add_test(tc, test_tsv);
	tcase_add_test(tc, test_csv);
	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_bad_configs);
	tcase_add_test(tc, test_filters);
	tcase_add_test(tc, test_ngrams);
	tcase_add_test(tc, test_ngram_stitch);
	suite_add_tcase(s, tc);
	TCase *tp = tcase_create("chunking");
	tcase_set_timeout(tp, 30);
	tcase_add_loop_test(tp, test_prop_words, 0, 8);
	tcase_add_loop_test(tp, test_prop_lines, 0, 8);
	tcase_add_loop_test(tp, test_prop_counts, 0, 4);
	tcase_add_loop_test(tp, test_prop_fields, 0, 64);
	tcase_add_loop_test(tp, test_prop_ngrams, 0, 12);
	tcase_add_loop_test(tp, test_prop_ascii_blocks, 0, 32);
	tcase_add_loop_test(tp, test_short_key_hashes, 0, 2);
	suite_add_tcase(s, tp);
	return s;
}

int main(void)
{
	return test_run_suite(tokenize_suite());
}
