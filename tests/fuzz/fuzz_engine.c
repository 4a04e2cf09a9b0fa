/*
 * fuzz_engine.c - libFuzzer target for the whole engine, through tally.h.
 *
 * The first five bytes choose a configuration (mode, case, split, header,
 * field list and delimiter, filters, order, --top, --min-count,
 * --max-key-bytes) and how the second run differs from the first; the rest
 * is the input, counted once or twice (as two inputs).  The first run is
 * the plain one: one thread, default chunks, the default memory budget, the
 * bytes handed over in memory.  The second runs 1 to 3 threads on chunks of
 * 1 to 256 bytes, through a file (read(2) or mmap, so that count files in
 * key order take the merge that streams them) or from memory, with a budget
 * of a few KiB per table, so that keys are evicted, spilled and merged back.
 * The SPEC promises the same output, byte for byte, whatever the threads,
 * chunks, I/O and budget: the items, the statistics of what was counted
 * and the messages of failed inputs must be identical.  When an input
 * fails, only the messages are compared (its counts may be short by as
 * many records as the chunks in flight held).  When the fourth byte of the
 * configuration asks for it, the input is also counted in 2 to 4 parts
 * (--shard) the second run's way, and the parts must sum to the whole.
 * When the fifth byte's top bit is set, the second run writes its results
 * through tally_write (the sorted orders cut into stretches, write.c), and
 * the bytes must be those of the first run's items written as TSV.
 *
 * Built with MIN_TABLE_BUDGET lowered to 1 KiB (tests/fuzz/run.sh), so
 * that inputs of a few KiB spill.  Sanitizers catch memory errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "keysort.h"
#include "tally.h"
#include "fzbytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_out {
	fz_bytes items;          /* per item: its length and count (8 bytes each), its key */
	fz_bytes tsv;            /* or the results as tally_write wrote them */
	char     msgs[2048];     /* on_error's lines, then a fatal error */
	size_t   mlen;
	tally_stats st;
	int      failed;
} fz_out;

static void fz_msg(fz_out *o, const char *m)
{
	int w = snprintf(o->msgs + o->mlen, sizeof o->msgs - o->mlen, "%s\n", m);
	if (w > 0)
		o->mlen += (size_t)w < sizeof o->msgs - o->mlen ? (size_t)w : sizeof o->msgs - o->mlen - 1;
}

static void fz_on_error(void *ctx, const char *msg)
{
	fz_msg(ctx, msg);
}

/* A zstd frame or a skippable one: a file holding it is decompressed, the
 * same bytes in memory are not. */
static int fz_zstd_magic(const uint8_t *p, size_t n)
{
	if (n < 4)
		return 0;
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return v == 0xFD2FB528u || (v & 0xFFFFFFF0u) == 0x184D2A50u;
}

/* Write e's results through tally_write, as TSV, into o->tsv.  Returns
 * the fatal error of tally_write (1) or 0. */
static int fz_write(tally_engine *e, fz_out *o)
{
	char tmp[32], werr[256];
	snprintf(tmp, sizeof tmp, "%s/fz-out-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	int fd = mkstemp(tmp);
	if (fd < 0)
		abort();
	close(fd);
	tally_writer *w = tally_writer_open(tmp, TALLY_FORMAT_TSV, werr, sizeof werr);
	if (!w)
		abort();
	int r = tally_write(e, w);
	if (r == -1) {
		fprintf(stderr, "tally_write: a write failed\n");
		abort();
	}
	if (tally_writer_close(w, r == 0, werr, sizeof werr) != 0)
		abort();
	FILE *f = fopen(tmp, "rb");
	char buf[4096];
	size_t n;
	while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
		fz_append(&o->tsv, buf, n);
	if (f)
		fclose(f);
	unlink(tmp);
	return r == -2;
}

/* The items as TSV, as a writer writes them. */
static void fz_items_tsv(const fz_bytes *items, fz_bytes *tsv)
{
	for (size_t at = 0; at < items->n; ) {
		uint64_t h[2];
		memcpy(h, items->p + at, sizeof h);
		const char *key = items->p + at + sizeof h;
		size_t need = tally_escape_key(TALLY_FORMAT_TSV, key, h[0], NULL, 0);
		char *k = malloc(need + 1);
		if (!k)
			abort();
		tally_escape_key(TALLY_FORMAT_TSV, key, h[0], k, need + 1);
		char num[32];
		int m = snprintf(num, sizeof num, "\t%llu\n", (unsigned long long)h[1]);
		fz_append(tsv, k, need);
		fz_append(tsv, num, (size_t)m);
		free(k);
		at += sizeof h + h[0];
	}
}

/* Count the input (twice: as two inputs) under cfg: from memory, or
 * through path; the results read item by item, or written through
 * tally_write (write).  Returns -1 when cfg is refused as a usage error. */
static int fz_run(const tally_config *cfg, const uint8_t *in, size_t len, int twice,
	const char *path, int write, fz_out *o)
{
	tally_config c = *cfg;
	char err[256];
	int usage = 0;
	memset(o, 0, sizeof *o);
	c.ctx = o;
	c.on_error = fz_on_error;
	tally_engine *e = tally_create(&c, err, sizeof err, &usage);
	if (!e) {
		if (usage)
			return -1;
		fprintf(stderr, "tally_create: %s\n", err);
		abort();
	}
	int fatal = 0;
	for (int i = 0; i <= twice && !fatal; i++) {
		int r = path ? tally_add_path(e, path) : tally_add_memory(e, in, len, path ? path : "in");
		fatal = r == -2;
	}
	if (!fatal)
		fatal = tally_finish(e) != 0;
	tally_item it;
	int r = 0;
	if (write && !fatal)
		fatal = fz_write(e, o);
	while (!write && !fatal && (r = tally_next(e, &it)) == 1) {
		uint64_t h[2] = { it.len, it.count };
		fz_append(&o->items, h, sizeof h);
		fz_append(&o->items, it.key, it.len);
	}
	if (!fatal)
		fatal = r != 0;
	if (!fatal)
		fatal = tally_end_output(e, 0, 1) != 0;
	if (fatal)
		fz_msg(o, tally_errmsg(e));
	tally_get_stats(e, &o->st);
	o->failed = tally_failed(e) || fatal;
	tally_destroy(e);
	return 0;
}

typedef struct fz_key {
	const char *key;
	uint64_t    len, count;
} fz_key;

static int fz_key_cmp(const void *a, const void *b)
{
	const fz_key *x = a, *y = b;
	return keysort_bytes_cmp(x->key, x->len, y->key, y->len);
}

static int fz_same(const fz_bytes *a, const fz_bytes *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/* The items of the parts, summed by key, in key order, as a run in key
 * order writes them into *sum. */
static void fz_sum_parts(const fz_out *parts, unsigned n, fz_bytes *sum)
{
	fz_key *k = NULL;
	size_t nk = 0, cap = 0;
	for (unsigned i = 0; i < n; i++) {
		for (size_t at = 0; at < parts[i].items.n;) {
			uint64_t h[2];
			memcpy(h, parts[i].items.p + at, sizeof h);
			if (nk == cap) {
				cap = cap ? 2 * cap : 64;
				k = realloc(k, cap * sizeof *k);
				if (!k)
					abort();
			}
			k[nk++] = (fz_key){ parts[i].items.p + at + sizeof h, h[0], h[1] };
			at += sizeof h + h[0];
		}
	}
	if (nk)
		qsort(k, nk, sizeof *k, fz_key_cmp);
	memset(sum, 0, sizeof *sum);
	for (size_t i = 0; i < nk;) {
		uint64_t h[2] = { k[i].len, 0 };
		size_t j = i;
		for (; j < nk && fz_key_cmp(&k[i], &k[j]) == 0; j++)
			h[1] += k[j].count;
		fz_append(sum, h, sizeof h);
		fz_append(sum, k[i].key, k[i].len);
		i = j;
	}
	free(k);
}

/* --shard: the N parts of the input, counted apart under cfg (its source,
 * threads, chunks and budget), sum to what the whole input counts, key by
 * key, and their tokens to its tokens. */
static void fz_check_parts(const tally_config *whole_cfg, const tally_config *cfg,
	const uint8_t *in, size_t len, int twice, const char *path, unsigned n)
{
	tally_config c = *whole_cfg;
	c.sort = TALLY_SORT_KEY;
	c.top = 0;
	c.min_count = 0;
	fz_out whole, parts[4];
	fz_bytes sum;
	if (fz_run(&c, in, len, twice, NULL, 0, &whole) != 0)
		abort();
	c = *cfg;
	c.sort = TALLY_SORT_KEY;
	c.top = 0;
	c.min_count = 0;
	c.shard_n = n;
	uint64_t tokens = 0;
	int failed = whole.failed;
	for (unsigned k = 1; k <= n; k++) {
		c.shard_k = k;
		if (fz_run(&c, in, len, twice, path, 0, &parts[k - 1]) != 0)
			abort();
		tokens += parts[k - 1].st.tokens;
		failed |= parts[k - 1].failed;
	}
	if (!failed) {
		fz_sum_parts(parts, n, &sum);
		if (!fz_same(&sum, &whole.items) ||
		    tokens != whole.st.tokens) {
			fprintf(stderr, "%u parts: %zu bytes of items against %zu, %llu tokens against %llu\n",
				n, sum.n, whole.items.n, (unsigned long long)tokens,
				(unsigned long long)whole.st.tokens);
			abort();
		}
		free(sum.p);
	}
	for (unsigned k = 0; k < n; k++)
		free(parts[k].items.p);
	free(whole.items.p);
}

static const char *const fz_lists[8] = { "1", "2", "1,3", "2-3", "-2", "3-", "2,1", "1-1,2" };
static const char fz_delims[4] = { '\t', ',', ' ', ';' };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	uint8_t b0 = data[0], b1 = data[1], b2 = data[2], b3 = data[3], b4 = data[4];
	const uint8_t *in = data + 5;
	size_t len = size - 5;

	tally_config cfg;
	tally_config_init(&cfg);
	switch (b0 % 7) {
	case 0: cfg.mode = TALLY_MODE_WORDS; break;
	case 1: cfg.mode = TALLY_MODE_WORDS; cfg.ngram = 2; break;
	case 2: cfg.mode = TALLY_MODE_WORDS; cfg.ngram = 3; break;
	case 3: cfg.mode = TALLY_MODE_LINES; break;
	case 4: cfg.mode = TALLY_MODE_FIELDS; break;
	case 5: cfg.mode = TALLY_MODE_FIELDS; cfg.csv = 1; break;
	default: cfg.mode = TALLY_MODE_COUNTS; break;
	}
	cfg.casemode = (tally_case)((b0 >> 3) & 3);
	cfg.split = (b0 >> 5) & 1 ? TALLY_SPLIT_SPACE : TALLY_SPLIT_UNICODE;
	if (cfg.mode == TALLY_MODE_FIELDS) {
		cfg.header = (b0 >> 6) & 1;
		cfg.fields = fz_lists[b4 & 7];
		if (!cfg.csv)
			cfg.delimiter = fz_delims[(b4 >> 3) & 3];
	}
	int twice = b0 >> 7;
	cfg.sort = (tally_sort)(b1 % 3);
	static const uint64_t tops[4] = { 0, 1, 3, 10 };
	static const uint64_t mins[4] = { 0, 0, 2, 3 };
	static const size_t maxkey[4] = { 0, 4, 16, 64 };
	cfg.top = tops[(b1 >> 2) & 3];
	cfg.min_count = mins[(b1 >> 4) & 3];
	cfg.max_key_bytes = maxkey[(b1 >> 6) & 3];
	if ((b4 >> 5) & 1)
		cfg.min_length = 2;
	if ((b4 >> 6) & 1)
		cfg.max_length = 5;
	if (cfg.mode == TALLY_MODE_COUNTS) {
		/* No key rule applies to count files. */
		cfg.casemode = TALLY_CASE_DEFAULT;
		cfg.min_length = cfg.max_length = 0;
	}

	fz_out a, b;
	tally_config plain;
	cfg.threads = 1;
	plain = cfg;
	/* Some options are refused in some modes (no key rule for count
	 * files, --split for words only...): nothing to compare. */
	if (fz_run(&cfg, in, len, twice, NULL, 0, &a) != 0)
		return 0;

	/* The second run: threads, chunks, budget, and where the bytes come from. */
	cfg.threads = 1 + b3 % 3;
	cfg.chunk_size = 1 + (size_t)b2;
	static const uint64_t per_table[4] = { 0, 2048, 4096, 32768 };
	unsigned ntables = cfg.threads + (cfg.mode == TALLY_MODE_WORDS && cfg.ngram > 1);
	cfg.memory = per_table[(b3 >> 2) & 3] * ntables;
	/* Runs of a few bytes by the hundred: on tmpfs, file creation is
	 * cheap. */
	if (access("/dev/shm", W_OK) == 0)
		cfg.tmpdir = "/dev/shm";
	int use_file = (b3 >> 4) & 3;
	char path[64] = "";
	int fd = -1;
	if (use_file && !fz_zstd_magic(in, len)) {
		cfg.io = use_file == 1 ? TALLY_IO_AUTO : use_file == 2 ? TALLY_IO_MMAP : TALLY_IO_READ;
		fd = memfd_create("in", 0);
		if (fd < 0 || (len && write(fd, in, len) != (ssize_t)len))
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	int write = b4 >> 7;
	if (fz_run(&cfg, in, len, twice, fd >= 0 ? path : NULL, write, &b) != 0) {
		fprintf(stderr, "the second run's configuration is refused\n");
		abort();
	}
	if ((b3 >> 6) && cfg.mode != TALLY_MODE_COUNTS)
		fz_check_parts(&plain, &cfg, in, len, twice, fd >= 0 ? path : NULL, 1 + (b3 >> 6));
	if (fd >= 0)
		close(fd);

	/* How long a header may be depends on the chunk size (tally(1)): an
	 * input that fails so in either run is not compared.  Names differ
	 * between the two runs: the messages are compared from the first ':'
	 * on. */
	if (strstr(a.msgs, "header longer than") || strstr(b.msgs, "header longer than")) {
		/* nothing to compare */
	} else if (a.failed != b.failed) {
		fprintf(stderr, "failed: %d against %d\n%s---\n%s", a.failed, b.failed, a.msgs, b.msgs);
		abort();
	} else if (!a.failed) {
		if (write) {
			fz_items_tsv(&a.items, &a.tsv);
			if (!fz_same(&a.tsv, &b.tsv)) {
				fprintf(stderr, "tally_write's output differs (%zu bytes against %zu)\n",
					a.tsv.n, b.tsv.n);
				abort();
			}
		} else if (!fz_same(&a.items, &b.items)) {
			fprintf(stderr, "items differ (%zu bytes against %zu)\n", a.items.n, b.items.n);
			abort();
		}
		const tally_stats *x = &a.st, *y = &b.st;
		if (x->bytes_decoded != y->bytes_decoded || x->tokens != y->tokens ||
		    x->distinct != y->distinct || x->hapax != y->hapax ||
		    x->illformed_bytes != y->illformed_bytes || x->cut_keys != y->cut_keys ||
		    x->skipped_records != y->skipped_records) {
			fprintf(stderr, "statistics differ: tokens %llu/%llu distinct %llu/%llu hapax %llu/%llu "
				"ill-formed %llu/%llu cut %llu/%llu skipped %llu/%llu decoded %llu/%llu\n",
				(unsigned long long)x->tokens, (unsigned long long)y->tokens,
				(unsigned long long)x->distinct, (unsigned long long)y->distinct,
				(unsigned long long)x->hapax, (unsigned long long)y->hapax,
				(unsigned long long)x->illformed_bytes, (unsigned long long)y->illformed_bytes,
				(unsigned long long)x->cut_keys, (unsigned long long)y->cut_keys,
				(unsigned long long)x->skipped_records, (unsigned long long)y->skipped_records,
				(unsigned long long)x->bytes_decoded, (unsigned long long)y->bytes_decoded);
			abort();
		}
	} else {
		/* Each message without its input's name. */
		char *p = a.msgs, *q = b.msgs;
		while (*p && *q) {
			char *pe = strchr(p, '\n'), *qe = strchr(q, '\n');
			char *pc = memchr(p, ':', (size_t)(pe - p)), *qc = memchr(q, ':', (size_t)(qe - q));
			const char *ps = pc ? pc : p, *qs = qc ? qc : q;
			if (pe - ps != qe - qs || memcmp(ps, qs, (size_t)(pe - ps)) != 0) {
				fprintf(stderr, "messages differ:\n%s---\n%s", a.msgs, b.msgs);
				abort();
			}
			p = pe + 1;
			q = qe + 1;
		}
		if (*p || *q) {
			fprintf(stderr, "messages differ:\n%s---\n%s", a.msgs, b.msgs);
			abort();
		}
	}
	free(a.items.p);
	free(b.items.p);
	free(a.tsv.p);
	free(b.tsv.p);
	return 0;
}
