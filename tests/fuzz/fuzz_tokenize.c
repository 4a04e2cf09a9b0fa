/*
 * fuzz_tokenize.c - libFuzzer target for the tokenizer.
 *
 * The first bytes choose a configuration (mode, split, case, n-gram size,
 * CSV, field list, a small max_key_bytes) and a reader buffer size; the rest
 * is the input.  The input is counted once as a single chunk and once cut
 * the way a reader cuts it (tok_cut, reads of varying sizes, a forced split
 * whenever the buffer is full; as a file's reader, which knows where the
 * input ends, or as a stream's, which learns it from a read that gives
 * nothing after a full last buffer, and then gives an empty last chunk);
 * tables and counters must be identical.  Count files (tally merge): the
 * first malformed line must be found at the same line number, and without
 * one the tables must be identical.
 * Sanitizers catch memory errors on the way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "table.h"
#include "tokenize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_entry {
	const char *key;
	uint32_t    len;
	uint64_t    count;
} fz_entry;

typedef struct fz_list {
	fz_entry *e;
	size_t    n, cap;
} fz_list;

static int fz_collect(void *ctx, const table_entry *te)
{
	fz_list *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->e = realloc(l->e, l->cap * sizeof *l->e);
		if (!l->e)
			abort();
	}
	l->e[l->n++] = (fz_entry){ te->key, te->len, te->count };
	return 0;
}

static int fz_cmp(const void *a, const void *b)
{
	const fz_entry *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, m);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Entries of both tables, sorted, equal keys summed in place. */
static void fz_gather(table *const *t, fz_list *l)
{
	for (int i = 0; i < 2; i++)
		for (unsigned p = 0; p < table_partitions(t[i]); p++)
			table_each(t[i], p, fz_collect, l);
	if (l->n)
		qsort(l->e, l->n, sizeof *l->e, fz_cmp);
	size_t o = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (o && fz_cmp(&l->e[o - 1], &l->e[i]) == 0)
			l->e[o - 1].count += l->e[i].count;
		else
			l->e[o++] = l->e[i];
	}
	l->n = o;
}

typedef struct fz_run {
	table     *t[2];
	uint64_t   c[5];
	fz_list    list;
	int        fields_failed;
	uint64_t   lines, bad_line;   /* count files */
} fz_run;

static void fz_count(const tok_shared *s, const tally_config *cfg, const uint8_t *in, size_t len,
	size_t cap, uint32_t seed, int stream, fz_run *r)
{
	table_config tc = { .part_bits = 1 };
	memset(r, 0, sizeof *r);
	r->t[0] = table_create(&tc);
	r->t[1] = table_create(&tc);
	if (!r->t[0] || !r->t[1])
		abort();
	tok_worker *w = tok_worker_create(s, r->t[0]), *st = tok_worker_create(s, r->t[1]);
	if (!w || !st)
		abort();
	const char *buf = (const char *)in;
	size_t start = 0, blen = 0;
	tok_cont cont_in = 0;
	tok_fields *f = NULL;
	int first = 1;
	char err[128];
	/* The prefix the chunk being cut starts with, and the next one's. */
	size_t pcap = tok_prefix_cap(s);
	char *pin = malloc(pcap + 1), *pout = malloc(pcap + 1);
	size_t pin_len = 0;
	if (!pin || !pout)
		abort();
	while (start < len || first || (stream && (cont_in || pin_len))) {
		size_t cut = len;
		tok_cont cont = 0;
		input_prefix pre = { pin, pin_len, pout, 0, 0 };
		if (cap && len && start == len) {
			cut = 0;   /* the stream's empty last chunk */
		} else if (cap && len) {
			for (;;) {
				seed = seed * 1103515245u + 12345u;
				size_t want = 1 + (seed >> 16) % (cap + 1);
				size_t room = cap - blen, left = len - start - blen;
				size_t add = want < room ? want : room;
				blen += add < left ? add : left;
				int full = blen == cap;
				int eof = start + blen == len && !(stream && full);
				pre.out_cap = full ? pcap : 0;
				cut = tok_cut(s, f, buf + start, blen, eof, full, cont_in, &cont, &pre);
				if (cut)
					break;
				if (eof || full || cont || pre.out_len)
					abort();  /* the contract: a boundary or a forced split */
			}
			if (cut > blen || pre.out_len > pre.out_cap)
				abort();
		}
		/* The header: the first record that is not an empty line (CSV),
		 * in this chunk or a later one, as the engine reads it. */
		size_t skip = 0, used = 0;
		if (!f && cfg->mode == TALLY_MODE_FIELDS
				&& (skip = tok_header_skip(s, buf + start, cut)) < cut) {
			f = tok_fields_for_input(s, buf + start + skip, cut - skip, &used,
				err, sizeof err);
			if (!f) {
				r->fields_failed = 1;
				break;
			}
			skip += used;
		}
		first = 0;
		tok_chunk c = { buf + start + skip, cut - skip, cont_in, f, cont,
			pin_len ? pin : NULL, pin_len, 0 };
		tok_edge *e = NULL;
		if (tok_run(w, &c, &e) != 0)
			abort();
		if (cfg->mode == TALLY_MODE_COUNTS) {
			/* Lines numbered in input order, as the engine does. */
			tok_lines l;
			if (!e)
				abort();
			tok_edge_lines(e, &l);
			if (l.bad_line && !r->bad_line)
				r->bad_line = r->lines + l.bad_line;
			r->lines += l.lines;
		} else if (e && tok_stitch(st, e) != 0) {
			abort();
		}
		tok_edge_free(e);
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
	for (int i = 0; i < 2; i++) {
		const tok_counters *k = tok_worker_counters(i ? st : w);
		r->c[0] += atomic_load(&k->tokens);
		r->c[1] += atomic_load(&k->bytes);
		r->c[2] += atomic_load(&k->illformed_bytes);
		r->c[3] += atomic_load(&k->cut_keys);
		r->c[4] += atomic_load(&k->skipped_records);
	}
	fz_gather(r->t, &r->list);
	tok_worker_destroy(w);
	tok_worker_destroy(st);
}

static void fz_free(fz_run *r)
{
	free(r->list.e);
	table_destroy(r->t[0]);
	table_destroy(r->t[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const lists[] = { "1", "2", "1-2", "1,3", "2-", "1-", "a", "b,a" };
	if (size < 4)
		return 0;
	tally_config cfg;
	memset(&cfg, 0, sizeof cfg);
	uint8_t a = data[0], b = data[1], c = data[2];
	cfg.mode = (tally_mode)(a % 3);
	cfg.split = (tally_split)(a / 3 % 2);
	cfg.casemode = (tally_case)(a / 6 % 4);
	cfg.ngram = cfg.mode == TALLY_MODE_WORDS ? (unsigned)(a / 24 % 4) : 0;
	cfg.csv = b & 1;
	cfg.header = (b >> 1) & 1;
	cfg.fields = lists[(b >> 2) % 8];
	cfg.delimiter = (b >> 5) & 1 ? ';' : 0;
	cfg.max_key_bytes = (b >> 6) & 1 ? 5 + c % 16 : 0;
	cfg.min_length = (b >> 7) & 1 ? 2 : 0;
	if (a >= 192) {
		/* Count files take no key rule. */
		cfg.mode = TALLY_MODE_COUNTS;
		cfg.ngram = 0;
		cfg.casemode = TALLY_CASE_DEFAULT;
		cfg.csv = cfg.header = 0;
		cfg.fields = NULL;
		cfg.min_length = 0;
	}
	char err[256];
	int usage;
	tok_shared *s = tok_shared_create(&cfg, err, sizeof err, &usage);
	if (!s)
		return 0;
	const uint8_t *in = data + 4;
	size_t len = size - 4;
	size_t cap = tok_min_capacity(s) + data[3] % 32;
	fz_run one, many;
	fz_count(s, &cfg, in, len, 0, 0, 0, &one);
	fz_count(s, &cfg, in, len, cap, data[3], (data[3] >> 5) & 1, &many);
	/* Fields mode is exact for any record, but for a header that does not
	 * fit in the buffer it begins in: here, one whose end (the first '\n'
	 * outside quotes past the empty lines before it, with CSV, where a
	 * quoted name may hold one) is past cap bytes into the input. */
	int exact = 1;
	if (cfg.mode == TALLY_MODE_FIELDS && cfg.header) {
		/* 0 at a field's start, 1 unquoted, 2 quoted, 3 a quote seen
		 * inside quotes (RFC 4180 as the tokenizer reads it). */
		size_t hend = len;
		int st = 0;
		uint8_t d = cfg.delimiter ? (uint8_t)cfg.delimiter : ',';
		for (size_t i = tok_header_skip(s, (const char *)in, len); i < len && hend == len; i++) {
			uint8_t ch = in[i];
			if (!cfg.csv || st == 0 || st == 1 || st == 3) {
				if (ch == '\n')
					hend = i + 1;
				else if (cfg.csv && ch == '"' && st != 1)
					st = 2;
				else
					st = cfg.csv && ch == d ? 0 : 1;
			} else if (ch == '"') {
				st = 3;
			}
		}
		if (hend == len || hend > cap)
			exact = 0;
	}
	if (one.bad_line != many.bad_line)
		abort();
	if (one.bad_line)
		exact = 0;   /* the chunks after a malformed line's are counted */
	if (exact && one.fields_failed != many.fields_failed)
		abort();
	if (exact && !one.fields_failed) {
		if (one.list.n != many.list.n || memcmp(one.c, many.c, sizeof one.c) != 0)
			abort();
		for (size_t i = 0; i < one.list.n; i++)
			if (fz_cmp(&one.list.e[i], &many.list.e[i]) || one.list.e[i].count != many.list.e[i].count)
				abort();
	}
	fz_free(&one);
	fz_free(&many);
	tok_shared_destroy(s);
	return 0;
}
