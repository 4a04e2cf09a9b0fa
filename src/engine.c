/*
 * engine.c - the counting run: inputs are cut into chunks on the caller's
 * thread (the reader), counted by worker threads into their own tables, and
 * merged at the end.
 *
 *   reader (caller's thread)             workers (-j N)
 *   input_next -> chunk -> queue  ---->  tok_run into own table
 *   completions <- release, edges <----  done
 *   tok_stitch (n-grams across chunks, in input order)
 *
 * At the end: without spill, each partition is gathered from all the tables
 * at once, equal keys added up, a range of partitions per thread; with
 * spill, every table is written out as a run and the runs are merged by
 * key.  Either way the pairs then go through order.c (sort, top,
 * min-count) in hash order, so the output is the same for any thread
 * count, chunk size, I/O method or memory budget.
 *
 * Count files in key order, with --sort=key, skip all that: each is read
 * through once when it is added, set aside, and merged with the results
 * as they are read (sorted.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>
#include <zstd.h>

#include "tally.h"
#include "input.h"
#include "resources.h"
#include "mem.h"
#include "ahead.h"
#include "iheap.h"
#include "keysort.h"
#include "order.h"
#include "output.h"
#include "sketch.h"
#include "sorted.h"
#include "spill.h"
#include "stats.h"
#include "table.h"
#include "tokenize.h"
#include "write.h"

#define DEFAULT_MAX_KEY   (1u << 20)
#ifndef MIN_TABLE_BUDGET
#define MIN_TABLE_BUDGET  (32u * 1024)
#endif
/* Small inputs are packed, many to a job (pack_take): those of at most a
 * PACK_FRACTION of the chunk size, up to a chunk's bytes or PACK_PIECES
 * inputs a job. */
#define PACK_FRACTION 4u
#define PACK_PIECES   4096u
/* n-gram edges that may wait to be stitched, per worker: some 16 MB of
 * input each at the default chunk size, half a second of counting bigrams
 * for the other workers while one is in an eviction. */
#define PENDING_PER_WORKER 16u

/* One input being read; freed once its last chunk is released and, where
 * chunks are seen in input order, its last edge is. */
typedef struct eng_input {
	uint64_t      id;           /* inputs in order; n-gram edges compare ids */
	input_source *src;
	char         *name;
	tok_fields   *fields;
	unsigned      inflight;
	unsigned      unstitched;   /* edges not yet seen in input order */
	int           beyond;       /* --shard with n-grams: reading past the part's end */
	uint64_t      lines;        /* count files: lines of the chunks seen in order */
	int           done_reading;
	int           failed;       /* reported already */
} eng_input;

/* A small input in a pack: its bytes, and its columns (fields mode; its
 * own when it has a header, released with the pack). */
typedef struct eng_piece {
	const char  *data;
	size_t       len;
	tok_fields  *fields;
} eng_piece;

/* A chunk of one input; or a pack: small inputs read whole, one after the
 * other, into one buffer (buf), each counted as an input of one chunk.
 * A whole input has no n-gram across its edges: a pack is not stitched. */
typedef struct eng_job {
	input_chunk  chunk;
	tok_chunk    tc;
	eng_input   *in;
	uint64_t     seq;
	tok_edge    *edge;
	int          fault;        /* SIGBUS: the mapped file shrank */
	eng_piece   *pieces;       /* a pack: npieces of them, room for cap */
	unsigned     npieces, cap;
	char        *buf;
	size_t       used;         /* bytes of buf taken */
	struct eng_job *next;      /* completion list */
} eng_job;

typedef struct eng_worker {
	pthread_t      thread;
	table         *table;
	tok_worker    *tok;
	struct tally_engine *e;
	int            started;
} eng_worker;

/* Most orders sorted in parallel at the end. */
#define ENG_MAX_ORDERS 16

struct tally_engine {
	tally_config  cfg;
	tok_shared   *tok;
	const tok_fields *cut_fields;  /* the selection of the input being read (reader) */
	spill        *spill;
	unsigned      nworkers;
	eng_worker   *workers;
	table        *stitch_table;
	tok_worker   *stitcher;
	input_opts    iopts;
	eng_job      *pack;         /* small inputs read so far, not yet queued */
	size_t        pack_max;     /* the largest input packed; 0: none is */
	size_t        pack_bytes;   /* a pack is queued once it holds this many */
	size_t        pack_size;    /* bytes of a pack's buffer */
	sketch_sum   *seen;         /* the sampler's: the union of the tables' sketches */
	input_buffers *buffers;     /* chunk buffers kept from one input to the next */

	pthread_mutex_t mu;
	pthread_cond_t  cv_work, cv_done;
	eng_job       **queue;          /* ring of max_inflight */
	unsigned        qhead, qlen, qcap;
	eng_job        *completed;      /* list, newest first */
	unsigned        inflight;
	int             stop;
	int             fatal_errno;    /* set by a worker */

	/* Chunks' edges seen in input order: n-grams are stitched across
	 * chunks, count files' lines numbered.  A ring of pcap edges, longer
	 * than the queue, so that while one worker spends a while in a
	 * table's eviction the others go on past its chunk (their edges wait
	 * here; an edge is a few words) */
	int             in_order;       /* n-grams or count files */
	int             dropping;       /* tally_destroy: edges are dropped, not stitched */
	unsigned        pcap;
	tok_edge      **pending;        /* by seq % pcap */
	eng_input     **pending_in;     /* the input of each pending edge */
	uint64_t        counts_total;   /* count files: the counts added, < 2^64 */
	uint64_t        inputs_named;   /* tally_add_path and _memory calls (--shard) */
	unsigned char  *pending_set;
	uint64_t        next_seq, stitch_seq;
	uint64_t        next_input, stitch_input;

	_Atomic uint64_t bytes_stored;  /* input bytes consumed (compressed for .zst),
	                                 * as they are read (iopts.live) */
	_Atomic uint64_t bytes_expected;
	_Atomic uint64_t bytes_header;  /* decoded bytes read as a header, not by workers */
	_Atomic uint64_t tokens_aside;  /* the counts of the count files set aside */
	_Atomic int      phase;         /* tally_phase, for the sampler */
	_Atomic uint64_t distinct_merged; /* keys out of the merge with files set aside */
	int              progress_ended; /* on_progress had its final call */
	uint64_t        files, files_compressed, files_failed;
	int             failed;
	int             finishing, finished, ended;  /* tally_finish called, done; tally_end_output called */
	double          t_start, t_count_end, t_merge, t_sort, t_write, t_end;
	uint64_t        distinct, hapax;
	uint64_t        hits, misses, evictions;

	/* Output order: one order per thread over a range of partitions (of
	 * the tables, or of the runs after a spill), sorted in parallel
	 * and merged as the items are read (heap of order indexes by their
	 * head items). */
	order          *ords[ENG_MAX_ORDERS];
	unsigned        nord;
	/* Or, after a spill with --sort=key, the merges of the ranges read
	 * ahead straight into the output (ahead.h); in memory, the orders
	 * read ahead when their keys are scattered (start_reader).  Where
	 * aheads[k] is set, it is read, not ords[k]. */
	ahead          *aheads[ENG_MAX_ORDERS];
	spill_ranges   *ranges;
	int             streamed, stream_done;
	/* After a spill with --sort=count (keys_seen_once_last), the runs are
	 * in key order too: the orders take the keys seen more than once, and
	 * the keys seen once, which come last in key order, are read from a
	 * second merge of the ranges once the orders are through. */
	int             hapax_last;
	tally_item      heads[ENG_MAX_ORDERS];
	uint64_t        hprefix[ENG_MAX_ORDERS];  /* first 8 key bytes of each head */
	unsigned        heap[ENG_MAX_ORDERS], nheap;
	int             refill;         /* order whose head went out: advance it next */
	int             reading;        /* the orders' items are being given out (next_item) */
	unsigned        ord_at;         /* --sort=none: order being read */
	_Atomic uint64_t emitted;       /* items given out by tally_next (the sampler reads it) */
	stats_sampler  *sampler;
	/* tally merge --sort=key: count files already in key order are set
	 * aside as they are added, and merged with the results as the output
	 * reads them (sorted.h); sorted_on once the merge has begun. */
	sorted_set     *sorted;
	int             sorted_on, sorted_end;
	char            errmsg[TALLY_ERR_MAX];
};

__attribute__((format(printf, 2, 3)))
static void set_err(tally_engine *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->errmsg, sizeof e->errmsg, fmt, ap);
	va_end(ap);
}

/* A call out of order: an error, not counts lost without a word. */
static int misuse(tally_engine *e, const char *what)
{
	set_err(e, "%s", what);
	return -2;
}

__attribute__((format(printf, 2, 3)))
static void report(tally_engine *e, const char *fmt, ...)
{
	char msg[TALLY_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (e->cfg.on_error)
		e->cfg.on_error(e->cfg.ctx, msg);
}

void tally_config_init(tally_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
}

static char versions[128];

static void versions_fill(void)
{
	snprintf(versions, sizeof versions, "zstd %s, xxHash %u.%u.%u, utf8proc %s",
		ZSTD_versionString(), XXH_versionNumber() / 10000,
		XXH_versionNumber() / 100 % 100, XXH_versionNumber() % 100,
		utf8proc_version());
}

const char *tally_library_versions(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, versions_fill);
	return versions;
}

/* ---- Workers ---------------------------------------------------------- */

typedef struct run_arg {
	tok_worker *tok;
	eng_job    *job;
	int         returned;  /* tok_run came back (not cut short by SIGBUS) */
	int         err;
} run_arg;

static int run_chunk(void *p)
{
	run_arg *a = p;
	eng_job *job = a->job;
	int rc = 0;
	if (job->pieces) {
		for (unsigned i = 0; i < job->npieces && rc == 0; i++) {
			const eng_piece *pc = &job->pieces[i];
			tok_chunk tc = { .data = pc->data, .len = pc->len, .fields = pc->fields };
			tok_edge *edge = NULL;
			rc = tok_run(a->tok, &tc, &edge);
			tok_edge_free(edge);
		}
	} else {
		rc = tok_run(a->tok, &job->tc, &job->edge);
	}
	a->err = errno;
	a->returned = 1;
	return rc;
}

static void *worker_main(void *p)
{
	eng_worker *w = p;
	tally_engine *e = w->e;
	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->qlen && !e->stop)
			pthread_cond_wait(&e->cv_work, &e->mu);
		if (!e->qlen || e->fatal_errno)
			break;
		eng_job *job = e->queue[e->qhead];
		e->qhead = (e->qhead + 1) % e->qcap;
		e->qlen--;
		pthread_mutex_unlock(&e->mu);

		run_arg a = { w->tok, job, 0, 0 };
		int rc = job->chunk.mapped ? input_guard(run_chunk, &a) : run_chunk(&a);

		pthread_mutex_lock(&e->mu);
		if (rc && !a.returned) {
			job->fault = 1;
		} else if (rc && !e->fatal_errno) {
			e->fatal_errno = a.err ? a.err : EIO;
			e->stop = 1;
			pthread_cond_broadcast(&e->cv_work);
		}
		job->next = e->completed;
		e->completed = job;
		pthread_cond_signal(&e->cv_done);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* ---- Progress sampling ------------------------------------------------ */

/* The distinct keys counted so far.  A key can be in several threads'
 * tables, or evicted from them: the union of the tables' sketches counts
 * it once.  Its estimate is kept between the largest table (those keys
 * are distinct) and the keys the tables took in (a key counts there once
 * in every table it reached, and again after an eviction), which are
 * equal, and so exact, with one table that evicted nothing.  The keys of
 * count files set aside come in as they are merged. */
static uint64_t distinct_seen(tally_engine *e)
{
	uint64_t least = 0, most = 0;
	memset(e->seen, 0, sizeof *e->seen);
	for (unsigned i = 0; i <= e->nworkers; i++) {
		const table *t = i < e->nworkers ? e->workers[i].table : e->stitch_table;
		if (!t)
			continue;
		uint64_t held = table_size(t);
		least = held > least ? held : least;
		most += table_seen_most(t);
		sketch_union(e->seen, table_seen(t));   /* sketched: on_progress */
	}
	double est = sketch_estimate(e->seen) + 0.5;
	uint64_t n = est < (double)least ? least : est > (double)most ? most : (uint64_t)est;
	/* Count files set aside (tally merge --sort=key) are in no table:
	 * their keys are counted as their merge gives them out. */
	uint64_t merged = atomic_load_explicit(&e->distinct_merged, memory_order_relaxed);
	return merged > n ? merged : n;
}

static void read_sample(void *ctx, stats_sample *s)
{
	tally_engine *e = ctx;
	s->bytes_done = atomic_load_explicit(&e->bytes_stored, memory_order_relaxed);
	s->bytes_total = atomic_load_explicit(&e->bytes_expected, memory_order_relaxed);
	uint64_t tokens = 0;
	for (unsigned i = 0; i < e->nworkers; i++)
		tokens += atomic_load_explicit(&tok_worker_counters(e->workers[i].tok)->tokens,
			memory_order_relaxed);
	if (e->stitcher)
		tokens += atomic_load_explicit(&tok_worker_counters(e->stitcher)->tokens,
			memory_order_relaxed);
	s->tokens = tokens + atomic_load_explicit(&e->tokens_aside, memory_order_relaxed);
	/* The keys are drawn on the progress line alone (the report gives the
	 * final count).  Workers publish their tokens a chunk at a time, their
	 * keys as they go: never more keys than tokens on the line. */
	s->distinct = e->seen ? distinct_seen(e) : 0;
	if (s->distinct > s->tokens)
		s->distinct = s->tokens;
	s->phase = (tally_phase)atomic_load_explicit(&e->phase, memory_order_relaxed);
	s->written = atomic_load_explicit(&e->emitted, memory_order_relaxed);
}

/* The progress line's last call (final = 1), once, after the sampler
 * stopped: when the output ends, or when the engine goes before that. */
static void progress_end(tally_engine *e)
{
	if (!e->sampler || !e->cfg.on_progress || e->progress_ended)
		return;
	e->progress_ended = 1;
	tally_progress p;
	stats_sampler_last(e->sampler, &p);
	e->cfg.on_progress(e->cfg.ctx, &p, 1);
}

/* ---- Creation --------------------------------------------------------- */

/* --sort=count puts the keys seen once last, in key order, when it gives
 * them all (no --top, no --min-count above 1): after a spill they can then
 * come from runs in key order, as for --sort=key (hapax_last). */
static int keys_seen_once_last(const tally_config *c)
{
	return c->sort == TALLY_SORT_COUNT && !c->top && c->min_count <= 1;
}

/* The reader's cut: tok_cut with the selection of the input being read. */
static size_t eng_cut(const void *ctx, const char *buf, size_t len, int eof, int full,
	uint32_t cont_in, uint32_t *cont, input_prefix *pre)
{
	const tally_engine *e = ctx;
	return tok_cut(e->tok, e->cut_fields, buf, len, eof, full, cont_in, cont, pre);
}

tally_engine *tally_create(const tally_config *cfg, char *err, size_t errlen, int *usage)
{
	int dummy;
	if (!usage)
		usage = &dummy;
	*usage = 0;
	tally_engine *e = mem_calloc(MEM_OTHER, 1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	mem_engine_begin();
	e->t_start = stats_now();
	e->cfg = *cfg;
	if (!e->cfg.max_key_bytes)
		e->cfg.max_key_bytes = DEFAULT_MAX_KEY;
	if ((unsigned)e->cfg.split > TALLY_SPLIT_SPACE || (unsigned)e->cfg.casemode > TALLY_CASE_KEEP
			|| (unsigned)e->cfg.sort > TALLY_SORT_NONE || (unsigned)e->cfg.io > TALLY_IO_READ) {
		snprintf(err, errlen, "invalid configuration: split %d, case %d, sort %d, io %d",
			(int)e->cfg.split, (int)e->cfg.casemode, (int)e->cfg.sort, (int)e->cfg.io);
		*usage = 1;
		goto fail;
	}
	if (e->cfg.max_key_bytes > TALLY_MAX_KEY_LIMIT) {
		snprintf(err, errlen, "--max-key-bytes is too large (at most 4 GiB - 8 KiB)");
		*usage = 1;
		goto fail;
	}
	if (e->cfg.ngram > TALLY_NGRAM_MAX) {
		snprintf(err, errlen, "--ngram is too large (at most %u)", TALLY_NGRAM_MAX);
		*usage = 1;
		goto fail;
	}
	if (e->cfg.chunk_size > TALLY_CHUNK_MAX) {
		/* Each thread holds about two chunks: beyond this, a slip of the
		 * unit, not a choice. */
		snprintf(err, errlen, "--chunk-size is too large (at most 1 GiB)");
		*usage = 1;
		goto fail;
	}
	if (e->cfg.shard_n && (e->cfg.shard_k < 1 || e->cfg.shard_k > e->cfg.shard_n)) {
		snprintf(err, errlen, "invalid part %u of %u", e->cfg.shard_k, e->cfg.shard_n);
		*usage = 1;
		goto fail;
	}
	e->nworkers = e->cfg.threads ? e->cfg.threads : resources_default_threads();
	if (e->nworkers > 1024)
		e->nworkers = 1024;
	int ngram = e->cfg.mode == TALLY_MODE_WORDS && e->cfg.ngram > 1;
	unsigned ntables = e->nworkers + (ngram ? 1 : 0);
	int by_default = !e->cfg.memory;
	if (by_default)
		e->cfg.memory = resources_default_budget(e->nworkers);
	uint64_t min_budget = (uint64_t)MIN_TABLE_BUDGET * ntables;
	if (e->cfg.memory < min_budget) {
		snprintf(err, errlen, by_default
			? "the default memory budget, %llu byte%s (half the memory limit), is too small: at least %llu KiB needed for %u thread%s%s"
			: "a --memory of %llu byte%s is too small: at least %llu KiB needed for %u thread%s%s",
			(unsigned long long)e->cfg.memory, e->cfg.memory == 1 ? "" : "s",
			(unsigned long long)(min_budget / 1024),
			e->nworkers, e->nworkers == 1 ? "" : "s", ngram ? " and n-grams" : "");
		*usage = 1;
		goto fail;
	}

	e->tok = tok_shared_create(&e->cfg, err, errlen, usage);
	if (!e->tok)
		goto fail;
	e->spill = spill_create(e->cfg.tmpdir, err, errlen);
	if (!e->spill)
		goto fail;
	/* The final merge reads many runs at once: keep their buffers within a
	 * quarter of the budget, but never under 8 MiB (a merge of some 25 runs
	 * per pass), or tiny budgets would merge two runs at a time. */
	uint64_t merge_mem = e->cfg.memory / 4;
	spill_set_memory(e->spill, merge_mem > (8u << 20) ? merge_mem : (8u << 20));

	/* The n-gram stitcher only counts the n-grams that cross chunk edges: it
	 * gets a thirty-second of the budget (at least the minimum), the
	 * workers share the rest. */
	uint64_t stitch_budget = 0;
	if (ngram) {
		stitch_budget = e->cfg.memory / 32;
		if (stitch_budget < MIN_TABLE_BUDGET)
			stitch_budget = MIN_TABLE_BUDGET;
	}
	/* The sketches of the keys seen serve the progress line alone. */
	table_config tc = { .part_bits = 4,
		.budget = (e->cfg.memory - stitch_budget) / e->nworkers, .spill = e->spill,
		.sketch = e->cfg.on_progress != NULL };
	/* Partitions of 8 MiB or more once a table fills its share (up to 256
	 * of them, at least 16): large enough for huge pages (mem.c), which
	 * spare the random slot accesses a page walk each. */
	while (tc.part_bits < 8 && tc.budget >> (tc.part_bits + 1) >= (8u << 20))
		tc.part_bits++;
	/* Runs are cut by partition, so that the final merge runs in parallel
	 * over ranges of partitions, one range per order (each thread sorts
	 * the keys of a range).  For --sort=key the runs hold each range in
	 * key order: the merge of a range then gives its keys in output order;
	 * so it does for --sort=count the keys seen once, which come last. */
	spill_set_partitions(e->spill, tc.part_bits);
	e->nord = e->nworkers < ENG_MAX_ORDERS ? e->nworkers : ENG_MAX_ORDERS;
	if (e->nord > 1u << tc.part_bits)
		e->nord = 1u << tc.part_bits;
	if (e->cfg.sort == TALLY_SORT_KEY || keys_seen_once_last(&e->cfg))
		spill_set_key_order(e->spill, e->nord);
	e->workers = mem_calloc(MEM_OTHER, e->nworkers, sizeof *e->workers);
	if (!e->workers)
		goto oom;
	for (unsigned i = 0; i < e->nworkers; i++) {
		eng_worker *w = &e->workers[i];
		w->e = e;
		w->table = table_create(&tc);
		w->tok = w->table ? tok_worker_create(e->tok, w->table) : NULL;
		if (!w->tok)
			goto oom;
	}
	if (ngram) {
		tc.budget = stitch_budget;
		e->stitch_table = table_create(&tc);
		e->stitcher = e->stitch_table ? tok_worker_create(e->tok, e->stitch_table) : NULL;
		if (!e->stitcher)
			goto oom;
	}

	e->qcap = 2 * e->nworkers + 2;
	e->queue = mem_calloc(MEM_OTHER, e->qcap, sizeof *e->queue);
	e->pcap = PENDING_PER_WORKER * e->nworkers + 2;
	e->pending = mem_calloc(MEM_OTHER, e->pcap, sizeof *e->pending);
	e->pending_in = mem_calloc(MEM_OTHER, e->pcap, sizeof *e->pending_in);
	e->next_input = 1;
	e->in_order = ngram || e->cfg.mode == TALLY_MODE_COUNTS;
	e->pending_set = mem_calloc(MEM_OTHER, e->pcap, 1);
	if (!e->queue || !e->pending || !e->pending_in || !e->pending_set)
		goto oom;
	/* Chunk buffers kept between inputs: as many as the queue holds. */
	e->buffers = input_buffers_create(e->qcap);
	if (!e->buffers)
		goto oom;
	if (e->cfg.mode != TALLY_MODE_COUNTS) {
		size_t chunk = e->cfg.chunk_size ? e->cfg.chunk_size : INPUT_DEFAULT_CHUNK;
		e->pack_max = chunk / PACK_FRACTION;
		e->pack_bytes = chunk;
	}
	e->iopts = (input_opts){
		.buffers = e->buffers,
		.io = e->cfg.io,
		.chunk_size = e->cfg.chunk_size,
		.min_capacity = tok_min_capacity(e->tok),
		.max_inflight = e->qcap,
		.prefix_cap = tok_prefix_cap(e->tok),
		.cut = eng_cut,
		.cut_ctx = e,
		.live = &e->bytes_stored,
	};
	e->pack_size = input_buffer_size(&e->iopts);
	/* Count files in key order need no table for --sort=key: as many as
	 * the fan-in leaves room for beside the runs' merge, with readers in
	 * the memory of the runs' merge (above). */
	if (e->cfg.mode == TALLY_MODE_COUNTS && e->cfg.sort == TALLY_SORT_KEY && e->cfg.shard_n <= 1) {
		unsigned fan = spill_fanin(e->spill);
		e->sorted = sorted_create(e->tok, &e->iopts, fan > 3 ? fan - 2 : 1,
			merge_mem > (8u << 20) ? merge_mem : (8u << 20));
		if (!e->sorted)
			goto oom;
	}

	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv_work, NULL);
	pthread_cond_init(&e->cv_done, NULL);
	for (unsigned i = 0; i < e->nworkers; i++) {
		if (pthread_create(&e->workers[i].thread, NULL, worker_main, &e->workers[i])) {
			snprintf(err, errlen, "cannot start threads: %s", strerror(errno));
			goto fail;
		}
		e->workers[i].started = 1;
	}
	if (e->cfg.on_progress && !(e->seen = mem_alloc(MEM_OTHER, sizeof *e->seen)))
		goto oom;
	if (e->cfg.on_progress || e->cfg.report_path) {
		e->sampler = stats_sampler_start(1.0 / 6, read_sample, e, e->cfg.report_path != NULL,
			e->cfg.on_progress, e->cfg.ctx);
		if (!e->sampler) {
			snprintf(err, errlen, "cannot start the progress thread");
			goto fail;
		}
	}
	return e;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	tally_destroy(e);
	return NULL;
}

/* ---- Feeding inputs ---------------------------------------------------- */

static void eng_input_free(tally_engine *e, eng_input *in)
{
	if (in->fields && e->cfg.header)
		tok_fields_release(e->tok, in->fields);
	input_close(in->src);
	mem_free(MEM_OTHER, in->name, strlen(in->name) + 1);
	mem_free(MEM_OTHER, in, sizeof *in);
}

/* Free an input nothing refers to any more. */
static void eng_input_done(tally_engine *e, eng_input *in)
{
	if (in->done_reading && in->inflight == 0 && in->unstitched == 0)
		eng_input_free(e, in);
}

/* Mark an input failed and report it once. */
static void eng_input_fail(tally_engine *e, eng_input *in, const char *msg)
{
	if (in->failed)
		return;
	in->failed = 1;
	e->failed = 1;
	e->files_failed++;
	report(e, "%s", msg);
}

/* A count file's chunk, in input order: number its lines, report the first
 * malformed one as FILE:LINE, and keep the sum of all counts under 2^64.
 * No count is then past 2^64 - 1, however it is added up: a count in a
 * worker's table is no more than the chunks that worker counted added, so
 * one that wrapped there means a sum past it, which fails the run here,
 * before any table is merged or written.  Returns 0 or -1 (fatal, message
 * set). */
static int number_lines(tally_engine *e, eng_input *in, const tok_edge *edge)
{
	tok_lines l;
	tok_edge_lines(edge, &l);
	if (l.bad_line && !in->failed) {
		char msg[TALLY_ERR_MAX];
		snprintf(msg, sizeof msg, "%s:%llu: %s", in->name,
			(unsigned long long)(in->lines + l.bad_line), l.why);
		eng_input_fail(e, in, msg);
	}
	in->lines += l.lines;
	if (l.overflow || __builtin_add_overflow(e->counts_total, l.sum, &e->counts_total)) {
		set_err(e, "the counts add up to more than %llu", (unsigned long long)UINT64_MAX);
		return -1;
	}
	return 0;
}

/* Take the edges that are next in input order: stitch the n-grams across
 * chunks, or number a count file's lines.  Caller holds no lock. */
static int stitch_ready(tally_engine *e)
{
	while (e->stitch_seq < e->next_seq && e->pending_set[e->stitch_seq % e->pcap]) {
		unsigned k = e->stitch_seq % e->pcap;
		eng_input *in = e->pending_in[k];
		int rc = 0;
		if (e->stitcher) {
			if (in->id != e->stitch_input) {
				tok_stitch_reset(e->stitcher);
				e->stitch_input = in->id;
			}
			if (e->pending[k] && tok_stitch(e->stitcher, e->pending[k])) {
				set_err(e, "%s", errno == ENOSPC || errno == EIO
					? spill_errmsg(e->spill) : "out of memory");
				rc = -1;
			}
		} else if (e->pending[k]) {
			rc = number_lines(e, in, e->pending[k]);
		}
		tok_edge_free(e->pending[k]);
		e->pending[k] = NULL;
		e->pending_in[k] = NULL;
		e->pending_set[k] = 0;
		e->stitch_seq++;
		in->unstitched--;
		eng_input_done(e, in);
		if (rc)
			return -1;
	}
	return 0;
}

static void pack_free(tally_engine *e, eng_job *job);

/* Take back completed jobs.  wait: block until at least one completes.
 * Returns 0, or -1 on a fatal error (message set). */
static int reap(tally_engine *e, int wait)
{
	pthread_mutex_lock(&e->mu);
	while (wait && !e->completed && !e->fatal_errno)
		pthread_cond_wait(&e->cv_done, &e->mu);
	eng_job *list = e->completed;
	e->completed = NULL;
	int fatal = e->fatal_errno;
	pthread_mutex_unlock(&e->mu);

	while (list) {
		eng_job *job = list;
		list = job->next;
		if (job->pieces) {
			e->inflight--;
			pack_free(e, job);
			continue;
		}
		eng_input *in = job->in;
		input_release(in->src, job->chunk.handle);
		in->inflight--;
		e->inflight--;
		if (job->fault) {
			char msg[TALLY_ERR_MAX];
			snprintf(msg, sizeof msg, "%s: file shrank while being read", in->name);
			eng_input_fail(e, in, msg);
		}
		if (e->in_order && !e->dropping) {
			unsigned k = job->seq % e->pcap;
			e->pending[k] = job->edge;
			e->pending_in[k] = in;
			e->pending_set[k] = 1;
		} else {
			tok_edge_free(job->edge);
			in->unstitched -= e->in_order;
		}
		mem_free(MEM_OTHER, job, sizeof *job);
		eng_input_done(e, in);
	}
	if (fatal) {
		if (!e->errmsg[0])
			set_err(e, "%s", fatal == ENOMEM ? "out of memory" : spill_errmsg(e->spill));
		return -1;
	}
	return e->in_order && !e->dropping ? stitch_ready(e) : 0;
}

/* No room for another chunk: the queue is full or, with n-grams, the edges
 * waiting to be stitched in order would overrun their ring. */
static int busy(const tally_engine *e)
{
	if (e->inflight >= e->qcap)
		return 1;
	return e->in_order && e->next_seq - e->stitch_seq >= e->pcap;
}

/* Wait until there is room for another chunk.  0, or -2 (fatal, message
 * set). */
static int wait_room(tally_engine *e)
{
	while (busy(e))
		if (reap(e, 1))
			return -2;
	return 0;
}

/* Hand a job to the workers; the caller has made room (wait_room). */
static void enqueue(tally_engine *e, eng_job *job)
{
	e->inflight++;
	pthread_mutex_lock(&e->mu);
	e->queue[(e->qhead + e->qlen) % e->qcap] = job;
	e->qlen++;
	pthread_cond_signal(&e->cv_work);
	pthread_mutex_unlock(&e->mu);
}

static int submit(tally_engine *e, eng_input *in, const input_chunk *c)
{
	eng_job *job = mem_calloc(MEM_OTHER, 1, sizeof *job);
	if (!job) {
		set_err(e, "out of memory");
		return -1;
	}
	job->chunk = *c;
	job->tc = (tok_chunk){ c->data, c->len, c->cont, in->fields, c->cont_out, c->prefix,
		c->prefix_len, in->beyond };
	job->in = in;
	job->seq = e->next_seq++;
	in->inflight++;
	in->unstitched += e->in_order;
	enqueue(e, job);
	return 0;
}

/* Wait until every chunk of in is counted and its edge taken in order.
 * Returns 0 or -2 (fatal). */
static int drain_input(tally_engine *e, eng_input *in)
{
	while (in->inflight || in->unstitched)
		if (reap(e, 1))
			return -2;
	return 0;
}

/* --shard with n-grams: the n-grams that begin in a part end past it.
 * Once the part's chunks are stitched, hand out the chunks after its end,
 * one at a time, until their words have ended every n-gram of the part
 * (or the input ends).  Returns 0, -1 (the input failed) or -2. */
static int read_beyond(tally_engine *e, eng_input *in)
{
	if (input_extend(in->src)) {
		set_err(e, "%s: %s", in->name, strerror(errno));
		return -2;
	}
	in->beyond = 1;
	for (;;) {
		if (drain_input(e, in))
			return -2;
		if (in->failed)
			return -1;
		if (tok_stitch_waiting(e->stitcher) == 0)
			return 0;
		input_chunk c;
		char err[TALLY_ERR_MAX];
		int r = input_next(in->src, &c, err, sizeof err);
		if (r == 0)
			return 0;
		if (r < 0) {
			eng_input_fail(e, in, err);
			return -1;
		}
		if (submit(e, in, &c)) {
			input_release(in->src, c.handle);
			return -2;
		}
	}
}

/* Fields mode: the columns of an input, named by the header at buf's start
 * when there is one.  cut: no record ends in buf, so a header goes on past
 * it, its end and the names after it out of reach.  NULL with "NAME:
 * reason" in err; *used: the header's bytes. */
static tok_fields *header_fields(tally_engine *e, const char *name, const char *buf, size_t len,
	int cut, size_t *used, char *err, size_t errlen)
{
	char ferr[300];
	tok_fields *f = NULL;
	if (e->cfg.header && cut)
		snprintf(err, errlen, "%s: header longer than %zu bytes (raise --max-key-bytes)",
			name, len);
	else if (!(f = tok_fields_for_input(e->tok, buf, len, used, ferr, sizeof ferr)))
		snprintf(err, errlen, "%s: %s", name, ferr);
	return f;
}

/* Fields mode: the columns of an input, from the header at the start of
 * its chunk c (past empty lines, which are no record), whose bytes c then
 * leaves out.  *f stays NULL while c holds empty lines only: the header
 * comes in a later chunk.  Returns 0, or -1 with "NAME: reason" in err. */
static int chunk_header(tally_engine *e, const char *name, input_chunk *c, tok_fields **f,
	char *err, size_t errlen)
{
	size_t blank = tok_header_skip(e->tok, c->data, c->len);
	c->data += blank;
	c->len -= blank;
	atomic_fetch_add_explicit(&e->bytes_header, blank, memory_order_relaxed);
	if (c->len == 0)
		return 0;
	size_t used = 0;
	*f = header_fields(e, name, c->data, c->len, c->cont_out != 0, &used, err, errlen);
	if (!*f)
		used = c->len;
	atomic_fetch_add_explicit(&e->bytes_header, used, memory_order_relaxed);
	c->data += used;
	c->len -= used;
	return *f ? 0 : -1;
}

/* Read one opened source to its end, handing chunks to the workers.
 * Returns 0, -1 (this input failed, reported) or -2 (fatal, errmsg set). */
static int feed(tally_engine *e, input_source *src, const char *name, tok_fields *fields,
	int tail)
{
	eng_input *in = mem_calloc(MEM_OTHER, 1, sizeof *in);
	size_t nlen = strlen(name) + 1;
	char *copy = mem_alloc(MEM_OTHER, nlen);
	if (!in || !copy) {
		mem_free(MEM_OTHER, in, sizeof *in);
		mem_free(MEM_OTHER, copy, nlen);
		input_close(src);
		set_err(e, "out of memory");
		return -2;
	}
	memcpy(copy, name, nlen);
	in->id = e->next_input++;
	in->src = src;
	in->name = copy;
	in->fields = fields;
	e->cut_fields = fields;
	e->files++;
	e->files_compressed += input_is_compressed(src) != 0;
	int rc = 0;
	for (;;) {
		if (reap(e, 0)) {
			rc = -2;
			break;
		}
		rc = wait_room(e);
		if (rc || in->failed)
			break;
		input_chunk c;
		char err[TALLY_ERR_MAX];
		int r = input_next(src, &c, err, sizeof err);
		if (r == 0)
			break;
		if (r < 0) {
			eng_input_fail(e, in, err);
			break;
		}
		if (!in->fields && e->cfg.mode == TALLY_MODE_FIELDS) {
			if (chunk_header(e, name, &c, &in->fields, err, sizeof err)) {
				input_release(src, c.handle);
				eng_input_fail(e, in, err);
				break;
			}
			e->cut_fields = in->fields;
			if (c.len == 0) {
				input_release(src, c.handle);
				continue;
			}
		}
		if (submit(e, in, &c)) {
			input_release(src, c.handle);
			rc = -2;
			break;
		}
	}
	/* A count file's lines are numbered before the next input is read, so
	 * that a malformed line is reported in input order and fails this
	 * input, as a read error would. */
	if (e->cfg.mode == TALLY_MODE_COUNTS && rc == 0)
		rc = drain_input(e, in);
	if (tail && rc == 0 && !in->failed)
		rc = read_beyond(e, in);
	/* A fault found later in a chunk still in flight is reported then. */
	if (in->failed && rc == 0)
		rc = -1;
	in->done_reading = 1;
	e->cut_fields = NULL;   /* the next input's header is not read yet */
	eng_input_done(e, in);   /* when nothing in flight refers to it */
	return rc;
}

/* An input that failed before it was fed. */
static void fail_unfed(tally_engine *e, const char *msg)
{
	e->failed = 1;
	e->files_failed++;
	report(e, "%s", msg);
}

/* ---- Small inputs, packed --------------------------------------------- */

/*
 * A job per input costs two thread wake-ups (the worker's, then the
 * reader's), far more than counting a file of a few KB: 100,000 files of
 * 170 bytes took 2.0 s with one thread and 1.6 s with two, where wc -w
 * reads them in 0.4 s; packed, 0.33 s with either.  So inputs
 * of at most pack_max bytes are read whole, one after the other, into the
 * buffer of a pack, which is queued as one job once it holds a chunk's
 * bytes or PACK_PIECES inputs, or before another input is fed, or at the
 * end.  Each is still counted on its own, as an input of one chunk would
 * be; they are closed as soon as they are read.  Not for count files (each
 * is numbered in input order), --shard, or mapped or compressed inputs.
 */
static void pack_free(tally_engine *e, eng_job *job)
{
	for (unsigned i = 0; e->cfg.header && i < job->npieces; i++)
		tok_fields_release(e->tok, job->pieces[i].fields);
	input_buffer_put(e->buffers, job->buf, e->pack_size);
	mem_free(MEM_OTHER, job->pieces, job->cap * sizeof *job->pieces);
	mem_free(MEM_OTHER, job, sizeof *job);
}

/* Queue the pack being filled, if it holds anything to count (else its
 * buffer is taken again from the start).  0 or -2 (fatal). */
static int pack_flush(tally_engine *e)
{
	eng_job *job = e->pack;
	if (!job)
		return 0;
	if (job->npieces == 0) {
		job->used = 0;
		return 0;
	}
	if (wait_room(e))
		return -2;
	e->pack = NULL;
	enqueue(e, job);
	return 0;
}

/* Room for one more piece in the pack being filled (a new one when there
 * is none).  0, or -1 when out of memory. */
static int pack_room(tally_engine *e)
{
	eng_job *job = e->pack;
	if (!job) {
		job = mem_calloc(MEM_OTHER, 1, sizeof *job);
		if (!job || !(job->buf = input_buffer_get(e->buffers, e->pack_size))) {
			mem_free(MEM_OTHER, job, sizeof *job);
			return -1;
		}
		e->pack = job;
	}
	if (job->npieces < job->cap)
		return 0;
	unsigned cap = job->cap ? 2 * job->cap : 64;
	eng_piece *p = mem_realloc(MEM_OTHER, job->pieces, job->cap * sizeof *p, cap * sizeof *p);
	if (!p)
		return -1;
	job->pieces = p;
	job->cap = cap;
	return 0;
}

/* Count src in a pack when it is small enough.  Returns 1 when it is not,
 * or when there is no memory for a pack (nothing read: feed it, which fails
 * it alone if memory is that short), else as feed: 0, -1 (it failed,
 * reported) or -2 (src closed). */
static int pack_take(tally_engine *e, input_source *src, const char *name)
{
	uint64_t size = input_whole_size(src);
	if (size == 0 || size > e->pack_max)
		return 1;
	if (e->pack && e->pack->used + size > e->pack_bytes && pack_flush(e)) {
		input_close(src);
		return -2;
	}
	if (pack_room(e))
		return 1;
	eng_job *job = e->pack;
	input_chunk c;
	char err[TALLY_ERR_MAX];
	int r = input_whole(src, job->buf + job->used, e->pack_size - job->used, &c, err,
		sizeof err);
	if (r == 0)
		return 1;   /* it grew */
	e->files++;
	input_close(src);
	if (r < 0) {
		fail_unfed(e, err);
		return -1;
	}
	job->used += c.len;
	tok_fields *f = NULL;
	if (e->cfg.mode == TALLY_MODE_FIELDS && chunk_header(e, name, &c, &f, err, sizeof err)) {
		fail_unfed(e, err);
		return -1;
	}
	if (c.len) {
		job->pieces[job->npieces++] = (eng_piece){ c.data, c.len, f };
	} else if (f && e->cfg.header) {
		tok_fields_release(e->tok, f);
	}
	if (job->used >= e->pack_bytes || job->npieces == PACK_PIECES)
		return pack_flush(e);
	return 0;
}

/* ---- Parts of the input (--shard) -------------------------------------- */

/* Is the input named last, when it cannot be cut, this part's? */
static int whole_here(const tally_engine *e)
{
	return (e->inputs_named - 1) % e->cfg.shard_n + 1 == e->cfg.shard_k;
}

/* Where part k of n (1-based; n + 1: the end) of size bytes begins. */
static uint64_t part_start(uint64_t size, unsigned k, unsigned n)
{
	return (uint64_t)((unsigned __int128)size * (k - 1) / n);
}

/* The first record boundary at or after byte at: part boundaries move
 * there, so each record is counted in the part where it begins. */
static int find_boundary(tally_engine *e, input_source *src, uint64_t at, uint64_t size,
	uint64_t *b)
{
	char buf[1 << 16];
	*b = at >= size ? size : at;
	if (at == 0 || at >= size)
		return 0;
	/* A record begins at at when the byte before it ends one. */
	for (uint64_t off = at - 1; off < size;) {
		ssize_t n = input_pread(src, buf, sizeof buf, off);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		size_t i = tok_boundary(e->tok, buf, (size_t)n);
		if (i < (size_t)n) {
			*b = off + i + 1;
			return 0;
		}
		off += (uint64_t)n;
	}
	*b = size;
	return 0;
}

/* A later part of a file with a header: the columns it names, from the
 * file's first line.  NULL when the input failed (reported). */
static tok_fields *part_header(tally_engine *e, input_source *src, const char *name)
{
	size_t cap = e->iopts.min_capacity;
	char *buf = mem_alloc(MEM_IO, cap);
	char err[TALLY_ERR_MAX];
	tok_fields *f = NULL;
	if (!buf) {
		snprintf(err, sizeof err, "%s: %s", name, strerror(ENOMEM));
	} else {
		ssize_t n = input_pread(src, buf, cap, 0);
		size_t used = 0;
		if (n < 0)
			snprintf(err, sizeof err, "%s: %s", name, strerror(errno));
		else
			f = header_fields(e, name, buf, (size_t)n,
				(size_t)n == cap && !memchr(buf, '\n', cap), &used, err, sizeof err);
		mem_free(MEM_IO, buf, cap);
	}
	if (!f)
		fail_unfed(e, err);
	return f;
}

/* Count src, or the part of it that is this run's.  Returns as feed. */
static int feed_part(tally_engine *e, input_source *src, const char *name)
{
	unsigned k = e->cfg.shard_k, n = e->cfg.shard_n;
	if (n <= 1) {
		int rc = pack_take(e, src, name);
		if (rc != 1)
			return rc;
	}
	/* Inputs are queued in the order they are named. */
	if (pack_flush(e)) {
		input_close(src);
		return -2;
	}
	if (n <= 1)
		return feed(e, src, name, NULL, 0);
	if (!input_splittable(src) || e->cfg.csv) {
		/* Whole, in the part of its position among the inputs. */
		if (!whole_here(e)) {
			input_close(src);
			return 0;
		}
		return feed(e, src, name, NULL, 0);
	}
	uint64_t size = input_size(src), lo, hi;
	if (find_boundary(e, src, part_start(size, k, n), size, &lo)
			|| find_boundary(e, src, part_start(size, k + 1, n), size, &hi)
			|| input_range(src, lo, hi)) {
		char err[TALLY_ERR_MAX];
		snprintf(err, sizeof err, "%s: %s", name, strerror(errno));
		input_close(src);
		fail_unfed(e, err);
		return -1;
	}
	tok_fields *f = NULL;
	if (e->cfg.mode == TALLY_MODE_FIELDS && e->cfg.header && lo > 0
			&& !(f = part_header(e, src, name))) {
		input_close(src);
		return -1;
	}
	/* A part with words reads on past its end for its last n-grams. */
	return feed(e, src, name, f, e->stitcher && lo < hi && hi < size);
}

int tally_add_path(tally_engine *e, const char *path)
{
	char err[TALLY_ERR_MAX];
	if (e->finishing)
		return misuse(e, "tally_add_path called after tally_finish");
	e->inputs_named++;
	/* Standard input is never split: a part it is not given to leaves
	 * it unread. */
	if (e->cfg.shard_n > 1 && strcmp(path, "-") == 0 && !whole_here(e))
		return 0;
	input_source *src = input_open(path, &e->iopts, err, sizeof err);
	if (!src) {
		fail_unfed(e, err);
		return -1;
	}
	if (e->sorted && strcmp(path, "-") != 0) {
		sorted_info info;
		int rc = sorted_take(e->sorted, src, path, &e->bytes_stored, &info);
		if (rc == SORTED_FATAL) {
			input_close(src);
			set_err(e, "out of memory");
			return -2;
		}
		if (rc == SORTED_KEPT) {
			atomic_fetch_add_explicit(&e->tokens_aside, info.sum, memory_order_relaxed);
			e->files++;
			e->files_compressed += input_is_compressed(src) != 0;
			input_close(src);
			if (info.overflow || __builtin_add_overflow(e->counts_total, info.sum,
					&e->counts_total)) {
				set_err(e, "the counts add up to more than %llu",
					(unsigned long long)UINT64_MAX);
				return -2;
			}
			return 0;
		}
	}
	return feed_part(e, src, path);
}

int tally_add_memory(tally_engine *e, const void *buf, size_t len, const char *name)
{
	if (e->finishing)
		return misuse(e, "tally_add_memory called after tally_finish");
	e->inputs_named++;
	input_source *src = input_open_memory(buf, len, name, &e->iopts);
	if (!src) {
		set_err(e, "out of memory");
		return -2;
	}
	return feed_part(e, src, name);
}

void tally_expect_bytes(tally_engine *e, uint64_t bytes)
{
	atomic_fetch_add_explicit(&e->bytes_expected, bytes, memory_order_relaxed);
}

/* ---- Finishing -------------------------------------------------------- */

/* Run fn(ctx + i * stride) for i < n, on n - 1 new threads and this one
 * (on this one alone where a thread cannot be had); stride 0: all on ctx. */
static void run_parallel(unsigned n, void *(*fn)(void *), void *ctx, size_t stride)
{
	pthread_t th[ENG_MAX_ORDERS];
	unsigned ok[ENG_MAX_ORDERS] = { 0 };
	if (n > ENG_MAX_ORDERS)
		n = ENG_MAX_ORDERS;
	for (unsigned i = 1; i < n; i++)
		ok[i] = pthread_create(&th[i], NULL, fn, (char *)ctx + i * stride) == 0;
	fn(ctx);
	for (unsigned i = 1; i < n; i++) {
		if (ok[i])
			pthread_join(th[i], NULL);
		else
			fn((char *)ctx + i * stride);
	}
}

typedef struct spill_ctx {
	table          **tables;
	unsigned         ntables;
	_Atomic unsigned next;
	_Atomic int      failed;     /* the first errno */
} spill_ctx;

/* Write out what each table still holds as runs, a table at a time per
 * thread (each may sort a list or a table's worth of keys). */
static void *spill_main(void *p)
{
	spill_ctx *m = p;
	for (;;) {
		unsigned i = atomic_fetch_add(&m->next, 1);
		if (i >= m->ntables)
			break;
		if (table_spill_all(m->tables[i])) {
			int none = 0;
			atomic_compare_exchange_strong(&m->failed, &none, errno ? errno : EIO);
		}
	}
	return NULL;
}

/* One thread's share of the output: partitions [p0, p1) of the tables
 * t[0..nt), or of the runs g, into one order.  The threads' shares lie
 * side by side in an array and each is written for every key: each starts
 * a cache line of its own. */
typedef struct collect_ctx {
	_Alignas(MEM_LINE) table *const *t;
	unsigned      nt;
	spill_ranges *g;
	order        *ord;
	tally_sort    sort;
	unsigned      p0, p1;
	table_gather  gather;
	uint64_t      distinct, hapax;
	int           skip_hapax;     /* counted, but not given to the order */
	int           err;            /* errno of a failure, or 0 */
} collect_ctx;

static void *collect_main(void *p)
{
	collect_ctx *c = p;
	table_gather *g = &c->gather;
	for (unsigned part = c->p0; part < c->p1 && !c->err; part++) {
		if (table_gather_partition(c->t, c->nt, part, g)) {
			c->err = ENOMEM;
			break;
		}
		/* The slots are read: their memory can serve the order. */
		for (unsigned i = 0; i < c->nt; i++)
			if (table_release_partition(c->t[i], part))
				c->err = ENOMEM;
		/* Partitions in order, each in hash order: a deterministic
		 * sequence. */
		if (c->sort == TALLY_SORT_NONE)
			table_sort_entries(g->v, g->n);
		for (size_t i = 0; i < g->n; i++) {
			/* order_add reads the key's first bytes to sort by:
			 * fetch ahead. */
			if (c->sort != TALLY_SORT_NONE && i + PREFETCH_AHEAD < g->n)
				__builtin_prefetch(g->v[i + PREFETCH_AHEAD].key);
			c->distinct++;
			c->hapax += g->v[i].count == 1;
			if (order_add(c->ord, g->v[i].key, g->v[i].len, g->v[i].count)) {
				c->err = errno ? errno : ENOMEM;
				break;
			}
		}
	}
	table_gather_free(g);
	return NULL;
}

static void set_spill_err(tally_engine *e, int err)
{
	set_err(e, "%s", err == ENOMEM ? "out of memory" : spill_errmsg(e->spill));
}

/* Run fn on each order's share of the nparts partitions of t (or g), in
 * parallel, and add up what they counted.  Returns 0 or -1. */
static int run_shares(tally_engine *e, table **t, unsigned nt, spill_ranges *g,
	void *(*fn)(void *))
{
	collect_ctx c[ENG_MAX_ORDERS];
	unsigned nparts = table_partitions(t[0]);
	for (unsigned i = 0; i < e->nord; i++)
		c[i] = (collect_ctx){ .t = t, .nt = nt, .g = g, .ord = e->ords[i], .sort = e->cfg.sort,
			.p0 = spill_range_start(nparts, e->nord, i),
			.p1 = spill_range_start(nparts, e->nord, i + 1),
			.skip_hapax = e->hapax_last };
	run_parallel(e->nord, fn, c, sizeof *c);
	for (unsigned i = 0; i < e->nord; i++) {
		e->distinct += c[i].distinct;
		e->hapax += c[i].hapax;
	}
	for (unsigned i = 0; i < e->nord; i++)
		if (c[i].err) {
			set_spill_err(e, c[i].err);
			return -1;
		}
	return 0;
}

/* All keys are in the tables: each order gathers a range of partitions
 * from all of them, in parallel. */
static int finish_in_memory(tally_engine *e, table **tables, unsigned ntables)
{
	return run_shares(e, tables, ntables, NULL, collect_main);
}

/* One thread's share of a merge of the runs: partitions [p0, p1). */
static void *range_main(void *p)
{
	collect_ctx *c = p;
	spill_merge *m = spill_ranges_merge(c->g, c->p0, c->p1);
	if (!m) {
		c->err = errno ? errno : EIO;
		return NULL;
	}
	spill_rec r;
	int rc;
	while ((rc = spill_merge_next(m, &r)) == 1) {
		c->distinct++;
		c->hapax += r.count == 1;
		if (r.count == 1 && c->skip_hapax)
			continue;
		if (order_add(c->ord, r.key, r.len, r.count)) {
			c->err = errno ? errno : ENOMEM;
			break;
		}
	}
	if (rc < 0)
		c->err = EIO;
	spill_merge_close(m);
	return NULL;
}

/* Read the merge of each range of e->ranges ahead, each in a thread, for
 * the output (records over max_count skipped, when it is not 0). */
static int start_aheads(tally_engine *e, uint64_t max_count)
{
	unsigned nparts = table_partitions(e->workers[0].table);
	for (unsigned i = 0; i < e->nord; i++) {
		spill_merge *m = spill_ranges_merge(e->ranges, spill_range_start(nparts, e->nord, i),
			spill_range_start(nparts, e->nord, i + 1));
		if (!m || !(e->aheads[i] = ahead_start(m, e->cfg.min_count, max_count))) {
			set_spill_err(e, m ? ENOMEM : errno);
			return -1;
		}
	}
	return 0;
}

/* Some keys were evicted, and the runs hold each range in key order
 * (--sort=key, no --top): the tables are written out; the merges of the
 * ranges go straight into the output. */
static int finish_streamed(tally_engine *e)
{
	e->ranges = spill_ranges_open(e->spill, e->nord);
	if (!e->ranges) {
		set_spill_err(e, errno);
		return -1;
	}
	return start_aheads(e, 0);
}

/* Some keys were evicted, and the tables are written out: merge the runs
 * by key, each thread a range of partitions into its own order.  Keys seen
 * once are left for a second merge (hapax_last): the runs stay till then. */
static int finish_from_runs(tally_engine *e, table **tables)
{
	spill_ranges *g = spill_ranges_open(e->spill, e->nord);
	if (!g) {
		set_spill_err(e, errno);
		return -1;
	}
	int rc = run_shares(e, tables, 1, g, range_main);
	if (e->hapax_last)
		e->ranges = g;
	else
		spill_ranges_close(g);
	return rc;
}

static void stop_workers(tally_engine *e)
{
	pthread_mutex_lock(&e->mu);
	e->stop = 1;
	pthread_cond_broadcast(&e->cv_work);
	pthread_mutex_unlock(&e->mu);
	for (unsigned i = 0; i < e->nworkers; i++)
		if (e->workers[i].started) {
			pthread_join(e->workers[i].thread, NULL);
			e->workers[i].started = 0;
		}
}

typedef struct order_jobs {
	order          **ords;
	unsigned         n;
	_Atomic unsigned next;
	_Atomic int      err;        /* the first errno */
} order_jobs;

static void *order_finish_main(void *p)
{
	order_jobs *j = p;
	for (unsigned i; (i = atomic_fetch_add(&j->next, 1)) < j->n; )
		if (order_finish(j->ords[i])) {
			int zero = 0;
			atomic_compare_exchange_strong(&j->err, &zero, errno ? errno : ENOMEM);
		}
	return NULL;
}

/* Sort (and merge the runs of) every order, in parallel.  An order merging
 * its runs holds at least 3 files (two runs and the run it writes): so many
 * at once that together they stay within the fan-in.  Returns 0 or -1. */
static int finish_orders(tally_engine *e)
{
	order_jobs jobs = { .ords = e->ords, .n = e->nord };
	unsigned at_once = spill_fanin(e->spill) / 3;
	if (at_once < 1)
		at_once = 1;
	run_parallel(e->nord < at_once ? e->nord : at_once, order_finish_main, &jobs, 0);
	if (atomic_load(&jobs.err)) {
		set_spill_err(e, atomic_load(&jobs.err));
		return -1;
	}
	return 0;
}

/* ---- Reading the orders in output order ------------------------------- */

/* Head a comes before head b in the output order (count or key; the orders
 * hold disjoint keys), by the first 8 key bytes before the rest. */
static int head_before(const void *ctx, unsigned a, unsigned b)
{
	const tally_engine *e = ctx;
	const tally_item *x = &e->heads[a], *y = &e->heads[b];
	if (e->cfg.sort == TALLY_SORT_COUNT && x->count != y->count)
		return x->count > y->count;
	if (e->hprefix[a] != e->hprefix[b])
		return e->hprefix[a] < e->hprefix[b];
	return keysort_bytes_cmp(x->key, x->len, y->key, y->len) < 0;
}

/* Read order k's next item into *it: 1, 0 at its end, -1 on error. */
static int order_read(tally_engine *e, unsigned k, tally_item *it)
{
	int rc = e->aheads[k] ? ahead_next(e->aheads[k], it) : order_next(e->ords[k], it);
	if (rc < 0)
		set_err(e, "%s", spill_errmsg(e->spill));
	return rc;
}

/* Read order k's next item into its head: 1, 0 at its end, -1 on error. */
static int head_read(tally_engine *e, unsigned k)
{
	int rc = order_read(e, k, &e->heads[k]);
	if (rc == 1)
		e->hprefix[k] = keysort_prefix(e->heads[k].key, e->heads[k].len);
	return rc;
}

/* Sorted output from several orders: a heap of their first items. */
static int heads_start(tally_engine *e)
{
	e->refill = -1;
	e->nheap = 0;
	if (e->nord < 2 || e->cfg.sort == TALLY_SORT_NONE)
		return 0;
	for (unsigned k = 0; k < e->nord; k++) {
		int rc = head_read(e, k);
		if (rc < 0)
			return -1;
		if (rc)
			e->heap[e->nheap++] = k;
	}
	for (unsigned i = e->nheap / 2; i-- > 0;)
		iheap_down(e->heap, e->nheap, i, head_before, e);
	return 0;
}

static int next_from_orders(tally_engine *e, tally_item *it)
{
	if (e->nord == 1 || e->cfg.sort == TALLY_SORT_NONE) {
		/* The orders hold consecutive partitions: one after another. */
		for (; e->ord_at < e->nord; e->ord_at++) {
			int rc = order_read(e, e->ord_at, it);
			if (rc)
				return rc;
		}
		return 0;
	}
	/* The item given out last stays valid until now: only then advance
	 * its order. */
	if (e->refill >= 0) {
		int rc = head_read(e, (unsigned)e->refill);
		if (rc < 0)
			return -1;
		if (!rc)
			e->heap[0] = e->heap[--e->nheap];
		iheap_down(e->heap, e->nheap, 0, head_before, e);
		e->refill = -1;
	}
	if (!e->nheap)
		return 0;
	unsigned k = e->heap[0];
	*it = e->heads[k];
	e->refill = (int)k;
	return 1;
}

/* The keys seen once (hapax_last) come after the orders: the orders and
 * their runs go, and the merges of the ranges are read again for them, as
 * for --sort=key (their counts were taken the first time). */
static int start_hapax(tally_engine *e)
{
	for (unsigned i = 0; i < e->nord; i++) {
		order_destroy(e->ords[i]);
		e->ords[i] = NULL;
	}
	e->hapax_last = 0;
	e->streamed = 1;
	e->stream_done = 1;
	e->ord_at = 0;
	if (start_aheads(e, 1))
		return -1;
	return heads_start(e);
}

static void start_reader(tally_engine *e);

static int next_item(tally_engine *e, tally_item *it)
{
	if (!e->reading) {
		e->reading = 1;
		start_reader(e);
	}
	int rc = next_from_orders(e, it);
	if (rc == 0 && e->hapax_last) {
		if (start_hapax(e))
			return -1;
		rc = next_from_orders(e, it);
	}
	return rc;
}

/* The results, for the merge with the files set aside (sorted.h), which
 * counts the keys itself. */
static int results_next(void *ctx, tally_item *it)
{
	return next_item(ctx, it);
}

/* The next item of that merge, keys counted and --min-count applied: 1,
 * 0 at the end, -1 (message set).  (Read ahead by a thread of its own,
 * as the merges of runs are, the merge of two files of 4M keys each took
 * longer: 0.81 s against 0.73 s, the copies into the batches costing more
 * than the writing spared.) */
static int sorted_next_item(tally_engine *e, tally_item *it)
{
	int rc;
	while ((rc = sorted_next(e->sorted, it)) == 1) {
		e->distinct++;
		atomic_store_explicit(&e->distinct_merged, e->distinct, memory_order_relaxed);
		e->hapax += it->count == 1;
		if (it->count >= e->cfg.min_count)
			return 1;
	}
	if (rc < 0 && sorted_errmsg(e->sorted)[0])
		set_err(e, "%s", sorted_errmsg(e->sorted));
	e->sorted_end = rc == 0;
	return rc;
}

static void write_report(tally_engine *e)
{
	if (!e->cfg.report_path || !e->sampler)
		return;
	size_t n;
	const stats_sample *tl = stats_sampler_timeline(e->sampler, &n);
	tally_stats st;
	tally_get_stats(e, &st);
	char err[TALLY_ERR_MAX];
	if (stats_write_report(e->cfg.report_path, tl, n, &st, err, sizeof err)) {
		e->failed = 1;
		report(e, "%s", err);
	}
}

/* The streamed merges are read to the end: count their keys (unless the
 * merge with files set aside counts them). */
static void stream_end(tally_engine *e)
{
	if (!e->streamed || e->stream_done || e->sorted_on)
		return;
	e->stream_done = 1;
	for (unsigned i = 0; i < e->nord; i++) {
		uint64_t d, h;
		ahead_counts(e->aheads[i], &d, &h);
		e->distinct += d;
		e->hapax += h;
	}
}

/* An order as a source of records for ahead_source. */
static int order_source(void *o, spill_rec *r)
{
	tally_item it;
	int rc = order_next(o, &it);
	if (rc == 1)
		*r = (spill_rec){ .count = it.count, .key = it.key, .len = (uint32_t)it.len };
	return rc;
}

/* In memory, the sorted orders' keys lie all over the key pools unless
 * they were stored in about the order they are read (the lines of a log).
 * Loading them is then most of the output's reading: 0.9 s of the 1.5 s
 * that writing 21.5M bigrams took, in key order.  With several orders (so
 * several threads asked for), a thread per such order reads its items
 * ahead of the output, as the merges of the runs are read after a spill:
 * writing those bigrams took 0.7-0.8 s so.  Keys read in order gain
 * nothing from the copy (it cost 8.2M log lines 0.05 s), nor do items read
 * from runs, whose keys would move under the head already read: those
 * orders are read directly, as is an order whose thread could not be had. */
static void start_reader(tally_engine *e)
{
	/* Unsorted, the orders are read one after another, their keys in
	 * hash order: scattered (writing 8.2M log lines took 1.7 s, with a
	 * fetch a few keys ahead 1.1 s). */
	unsigned several = e->cfg.sort == TALLY_SORT_NONE ? e->nord : e->nheap;
	if (several < 2 || e->streamed || e->hapax_last)
		return;
	for (unsigned k = 0; k < e->nord; k++)
		if (order_keys_scattered(e->ords[k]))
			e->aheads[k] = ahead_source(order_source, NULL, e->ords[k], 0, 0);
}

/* Add the tokenizer's counters of every worker and of the stitcher into
 * st's tokens, bytes_decoded, illformed_bytes, cut_keys and
 * skipped_records, and the bytes read as headers into bytes_decoded. */
static void eng_sum_counters(const tally_engine *e, tally_stats *st)
{
	st->bytes_decoded += atomic_load(&e->bytes_header);
	for (unsigned i = 0; i <= e->nworkers; i++) {
		const tok_worker *w = i < e->nworkers ? e->workers[i].tok : e->stitcher;
		if (!w)
			continue;
		const tok_counters *c = tok_worker_counters(w);
		st->tokens += atomic_load(&c->tokens);
		st->bytes_decoded += atomic_load(&c->bytes);
		st->illformed_bytes += atomic_load(&c->illformed_bytes);
		st->cut_keys += atomic_load(&c->cut_keys);
		st->skipped_records += atomic_load(&c->skipped_records);
	}
}

const int *tally_cleanup_signals(size_t *n)
{
	return spill_signals(n);
}

int tally_finish(tally_engine *e)
{
	if (e->finishing)
		return misuse(e, "tally_finish called twice");
	e->finishing = 1;
	if (pack_flush(e))
		return -2;
	if (e->pack) {   /* empty */
		pack_free(e, e->pack);
		e->pack = NULL;
	}
	while (e->inflight)
		if (reap(e, 1))
			return -2;
	if (reap(e, 0))
		return -2;
	stop_workers(e);
	input_buffers_trim(e->buffers);   /* the inputs are read */
	e->t_count_end = stats_now();

	unsigned ntables = e->nworkers + (e->stitch_table ? 1 : 0);
	table *tables[1025];
	for (unsigned i = 0; i < e->nworkers; i++)
		tables[i] = e->workers[i].table;
	if (e->stitch_table)
		tables[e->nworkers] = e->stitch_table;
	/* After a spill, all keys come from the runs: write out the rest (the
	 * merge's time starts here), then read the tables' counters, which
	 * that last spill may still change. */
	double t0 = stats_now();
	atomic_store_explicit(&e->phase, TALLY_PHASE_MERGING, memory_order_relaxed);
	int spilled = spill_runs(e->spill) > 0;
	if (spilled) {
		spill_ctx sc = { .tables = tables, .ntables = ntables };
		run_parallel(e->nworkers, spill_main, &sc, 0);
		if (atomic_load(&sc.failed)) {
			set_spill_err(e, atomic_load(&sc.failed));
			return -2;
		}
	}
	for (unsigned i = 0; i < ntables; i++) {
		uint64_t h, m, ev;
		table_counters(tables[i], &h, &m, &ev);
		e->hits += h;
		e->misses += m;
		e->evictions += ev;
	}

	/* Files set aside are merged with the results as they are read: the
	 * results keep every key (--min-count and --top apply to the sums),
	 * and the runs' merge leaves the files their descriptors. */
	unsigned aside = sorted_files(e->sorted);
	uint64_t min_count = e->cfg.min_count, top = e->cfg.top;
	if (aside) {
		e->cfg.min_count = 0;
		e->cfg.top = 0;
		unsigned fan = spill_fanin(e->spill);
		spill_set_fanin(e->spill, fan > aside + 2 ? fan - aside : 2);
	}
	/* The order's share of the budget: after a spill the tables are written
	 * out and freed, and the merge's readers take at most a quarter; without
	 * one the tables stay while order copies the keys, so it gets what they
	 * leave (and sorts externally past that). */
	int keyed = spilled && spill_key_ranges(e->spill);
	e->streamed = keyed && e->cfg.sort == TALLY_SORT_KEY && !e->cfg.top;
	e->hapax_last = keyed && keys_seen_once_last(&e->cfg);
	uint64_t held = mem_current(MEM_TABLE) + mem_current(MEM_POOL);
	uint64_t share = spilled ? e->cfg.memory / 2
		: e->cfg.memory > held + e->cfg.memory / 8 ? e->cfg.memory - held : e->cfg.memory / 8;
	order_config oc = {
		.sort = e->cfg.sort, .top = e->cfg.top, .min_count = e->cfg.min_count,
		.budget = share / e->nord, .spill = e->spill, .ways = e->nord,
		/* In memory the keys stay in the tables' pools until the end. */
		.borrow_keys = !spilled,
	};
	for (unsigned i = 0; i < e->nord && !e->streamed; i++)
		if (!(e->ords[i] = order_create(&oc))) {
			set_err(e, "out of memory");
			return -2;
		}
	int rc = e->streamed ? finish_streamed(e)
		: spilled ? finish_from_runs(e, tables)
		: finish_in_memory(e, tables, ntables);
	if (rc)
		return -2;
	double t1 = stats_now();
	e->t_merge = t1 - t0;
	atomic_store_explicit(&e->phase, TALLY_PHASE_SORTING, memory_order_relaxed);
	if ((!e->streamed && finish_orders(e)) || heads_start(e))
		return -2;
	if (aside) {
		e->cfg.min_count = min_count;
		e->cfg.top = top;
		if (sorted_start(e->sorted, results_next, e)) {
			set_err(e, "%s", sorted_errmsg(e->sorted));
			return -2;
		}
		/* The keys are counted again as the merge gives them. */
		e->distinct = e->hapax = 0;
		e->sorted_on = 1;
	}
	e->t_sort = stats_now() - t1;
	e->finished = 1;
	/* The sampler goes on while the output is written (streamed, the
	 * merge goes on then too, and files set aside are read again): the
	 * progress line says how many keys are out, the report's timeline
	 * shows the phase.  tally_end_output stops it. */
	atomic_store_explicit(&e->phase, TALLY_PHASE_WRITING, memory_order_relaxed);

	/* Every thread's, the stitcher's n-grams across chunks too. */
	tally_stats sum;
	memset(&sum, 0, sizeof sum);
	eng_sum_counters(e, &sum);
	uint64_t cut = sum.cut_keys;
	if (cut)
		report(e, "%llu key%s longer than %zu bytes %s cut to that length",
			(unsigned long long)cut, cut == 1 ? "" : "s", e->cfg.max_key_bytes,
			cut == 1 ? "was" : "were");
	return 0;
}

/* Read the rest of the output's merge, its items dropped: the merge with
 * files set aside, or the streamed merge of the runs.  0, or -1 (message
 * set). */
static int drain_output(tally_engine *e)
{
	tally_item it;
	int rc = 0;
	if (e->sorted_on) {
		while (!e->sorted_end && (rc = sorted_next_item(e, &it)) == 1)
			;
	} else if (e->streamed && !e->stream_done) {
		while ((rc = next_item(e, &it)) == 1)
			;
		if (rc == 0)
			stream_end(e);
	}
	return rc;
}

int tally_next(tally_engine *e, tally_item *it)
{
	if (!e->finished)
		return misuse(e, "tally_next called before tally_finish");
	if (e->ended)
		return misuse(e, "tally_next called after tally_end_output");
	/* Each order keeps its own --top N: the merged stream stops at N.
	 * The merge with files set aside is read to its end first, its items
	 * dropped: a file that changed fails the run before the caller takes
	 * the output for complete, and the statistics count every key. */
	uint64_t emitted = atomic_load_explicit(&e->emitted, memory_order_relaxed);
	if (e->cfg.top && emitted >= e->cfg.top)
		return drain_output(e) < 0 ? -2 : 0;
	int rc = e->sorted_on ? sorted_next_item(e, it) : next_item(e, it);
	if (rc < 0)
		return -2;
	if (rc == 0)
		stream_end(e);
	atomic_store_explicit(&e->emitted, emitted + (uint64_t)rc, memory_order_relaxed);
	return rc;
}

/* The sorted orders, all in memory, as write_sorted's sources: 1, or 0
 * when they cannot be written so (one order, runs or files to merge, or
 * items given out already). */
static int write_sources(tally_engine *e, write_src *src)
{
	_Static_assert(ENG_MAX_ORDERS <= WRITE_MAX_SOURCES, "an order per source");
	if (e->nord < 2 || e->reading || e->sorted_on || e->streamed || e->hapax_last)
		return 0;
	for (unsigned k = 0; k < e->nord; k++)
		if (!(src[k].items = order_items(e->ords[k], &src[k].n)))
			return 0;
	return 1;
}

int tally_write(tally_engine *e, tally_writer *w)
{
	if (!e->finished)
		return misuse(e, "tally_write called before tally_finish");
	if (e->ended)
		return misuse(e, "tally_write called after tally_end_output");
	output_writer_threads(w, e->nworkers);
	write_src src[ENG_MAX_ORDERS];
	if (write_sources(e, src)) {
		/* Nothing is left for tally_next to give. */
		e->reading = 1;
		e->ord_at = e->nord;
		e->nheap = 0;
		e->refill = -1;
		int rc = write_sorted(src, e->nord, e->cfg.sort, e->cfg.top, e->nord, w, &e->emitted);
		if (rc == -2)
			set_err(e, "out of memory");
		return rc;
	}
	for (;;) {
		tally_item it;
		int rc = tally_next(e, &it);
		if (rc <= 0)
			return rc;
		if (tally_writer_put(w, &it))
			return -1;
	}
}

int tally_end_output(tally_engine *e, double seconds, int complete)
{
	if (!e->finished)
		return misuse(e, "tally_end_output called before tally_finish");
	if (e->ended)
		return misuse(e, "tally_end_output called twice");
	e->ended = 1;
	e->t_write += seconds;
	/* A streamed merge is read on, its items dropped, for the keys the
	 * statistics and the report count. */
	if ((complete || e->cfg.report_path) && drain_output(e) < 0)
		return -2;
	stats_sampler_stop(e->sampler);
	progress_end(e);
	e->t_end = stats_now();
	write_report(e);
	return 0;
}

void tally_get_stats(tally_engine *e, tally_stats *st)
{
	memset(st, 0, sizeof *st);
	st->bytes_read = atomic_load(&e->bytes_stored);
	st->files = e->files;
	st->files_compressed = e->files_compressed;
	st->files_failed = e->files_failed;
	eng_sum_counters(e, st);
	st->distinct = e->distinct;
	st->hapax = e->hapax;
	st->tokens += atomic_load(&e->tokens_aside);
	st->bytes_decoded += sorted_decoded(e->sorted);
	double end = e->t_count_end ? e->t_count_end : stats_now();
	st->t_count = end - e->t_start;
	st->t_merge = e->t_merge;
	st->t_sort = e->t_sort;
	st->t_write = e->t_write;
	st->t_total = (e->t_end ? e->t_end : stats_now()) - e->t_start;
	st->threads = e->nworkers;
	st->budget = e->cfg.memory;
	st->peak_rss = stats_rss_peak();
	st->peak_table = mem_peak(MEM_TABLE);
	st->peak_pool = mem_peak(MEM_POOL);
	st->peak_io = mem_peak(MEM_IO);
	st->peak_spill = mem_peak(MEM_SPILL);
	st->pool_hits = e->hits;
	st->pool_misses = e->misses;
	st->evictions = e->evictions;
	st->runs_spilled = spill_runs(e->spill);
	st->bytes_spilled = spill_bytes(e->spill);
	st->merge_passes = spill_passes(e->spill);
}

int tally_failed(const tally_engine *e)
{
	return e->failed;
}

const char *tally_errmsg(const tally_engine *e)
{
	return e->errmsg;
}

void tally_destroy(tally_engine *e)
{
	if (!e)
		return;
	if (e->workers) {
		/* Drop work still queued (after a fatal error) before joining. */
		stop_workers(e);
		/* Jobs still queued (after a fatal error) are given back unread. */
		while (e->qlen) {
			eng_job *job = e->queue[e->qhead];
			e->qhead = (e->qhead + 1) % e->qcap;
			e->qlen--;
			job->next = e->completed;
			e->completed = job;
		}
		e->dropping = 1;   /* nothing more to stitch: drop the edges */
		reap(e, 0);
		if (e->pack)
			pack_free(e, e->pack);
		for (unsigned k = 0; e->pending_set && k < e->pcap; k++)
			if (e->pending_set[k]) {
				eng_input *in = e->pending_in[k];
				in->unstitched--;
				eng_input_done(e, in);
			}
	}
	if (e->sampler) {
		stats_sampler_stop(e->sampler);
		progress_end(e);
		stats_sampler_free(e->sampler);
	}
	for (unsigned i = 0; i < e->nord; i++) {
		ahead_free(e->aheads[i]);   /* it may read the order */
		order_destroy(e->ords[i]);
	}
	spill_ranges_close(e->ranges);
	sorted_destroy(e->sorted);
	for (unsigned k = 0; e->pending && k < e->pcap; k++)
		tok_edge_free(e->pending[k]);
	if (e->workers)
		for (unsigned i = 0; i < e->nworkers; i++) {
			tok_worker_destroy(e->workers[i].tok);
			table_destroy(e->workers[i].table);
		}
	tok_worker_destroy(e->stitcher);
	table_destroy(e->stitch_table);
	mem_free(MEM_OTHER, e->workers, e->nworkers * sizeof *e->workers);
	mem_free(MEM_OTHER, e->queue, e->qcap * sizeof *e->queue);
	mem_free(MEM_OTHER, e->pending, e->pcap * sizeof *e->pending);
	mem_free(MEM_OTHER, e->pending_in, e->pcap * sizeof *e->pending_in);
	mem_free(MEM_OTHER, e->pending_set, e->pcap);
	spill_destroy(e->spill);
	tok_shared_destroy(e->tok);
	if (e->seen)
		mem_free(MEM_OTHER, e->seen, sizeof *e->seen);
	input_buffers_destroy(e->buffers);   /* every input is closed */
	mem_free(MEM_OTHER, e, sizeof *e);
	mem_engine_end();
}
