/*
 * order.c - the final (key, count) pairs in output order (see order.h).
 *
 * Items are held in one array; their keys are copied into a block arena.
 * Both are counted under MEM_SPILL, the component of merge and sort buffers
 * (mem.h).  Items are keysort.h's: they carry the first 8 key bytes, and
 * keysort sorts them.
 *
 * --top N (with count or key order) keeps memory O(N): when 2N items are
 * held they are sorted and cut to the best N, and the N-th best becomes a
 * threshold that later items must beat to be copied in at all.  --sort=none
 * with --top N takes the first N items added.
 *
 * When the array and the arena reach the budget, the items are sorted and
 * written as one run (through the spill: same files, cleanup and errors;
 * records in output order, the hash field unused; with --top N only the
 * first N, since nothing after them can reach the output), and the array
 * starts again.  order_finish merges the runs and what is left in memory
 * (k-way, in several passes when there are more runs than the spill's
 * fan-in); for --sort=none the runs are read back one after the other.
 * The output is the same whatever the budget.
 */
#include "order.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keysort.h"
#include "mem.h"

typedef keysort_item order_item;

typedef struct arena_block {
	struct arena_block *next;
	size_t              size, used;
	char                data[];
} arena_block;

/* A merge source: a run being read, or the sorted items in memory. */
typedef struct order_src {
	spill_reader *r;          /* NULL: the items in memory */
	size_t        at;         /* next item in memory */
	order_item    cur;
} order_src;

typedef struct order_merge {
	order_src  *src;
	size_t      nsrc;
	order_src **heap;
	size_t      nheap;
	order_src  *pending;      /* handed out, advanced on the next call */
} order_merge;

struct order {
	order_config  cfg;
	int           bycount;    /* sort by count first */
	order_item   *items;
	size_t        n, cap;
	arena_block  *blocks;
	size_t        arena_bytes;   /* allocated */
	size_t        key_bytes;     /* used by the items held */
	size_t        block_size;
	uint64_t      accepted;   /* --sort=none --top: items taken so far */
	/* --top: items must come before this one to be kept. */
	int           have_thr;
	order_item    thr;
	char         *thr_key;
	size_t        thr_cap;
	/* Runs written, in order. */
	spill_file  **runs;
	size_t        nruns, caprun;
	/* Reading. */
	int           finished, failed;
	uint64_t      emitted;
	size_t        at;         /* in-memory cursor */
	order_merge  *merge;
	size_t        run_at;     /* --sort=none: run being read */
	spill_reader *run;
};

/* ---- Sorting --------------------------------------------------------- */

static void sort_items(order *o)
{
	if (o->cfg.sort == TALLY_SORT_COUNT)
		keysort_by_count(o->items, o->n);
	else if (o->cfg.sort == TALLY_SORT_KEY)
		keysort_by_key(o->items, o->n);
}

/* ---- Memory ---------------------------------------------------------- */

static size_t held_bytes(const order *o)
{
	return o->cap * sizeof(order_item) + o->arena_bytes;
}

static void arena_free(order *o)
{
	arena_block *b = o->blocks;
	while (b) {
		arena_block *next = b->next;
		mem_free(MEM_SPILL, b, sizeof *b + b->size);
		b = next;
	}
	o->blocks = NULL;
	o->arena_bytes = 0;
}

/* Room for len key bytes: a pointer, or NULL when out of memory. */
static char *arena_take(order *o, size_t len)
{
	arena_block *b = o->blocks;
	if (b && b->size - b->used >= len) {
		char *p = b->data + b->used;
		b->used += len;
		return p;
	}
	size_t size = len > o->block_size / 4 ? len : o->block_size, total;
	if (mem_add(sizeof *b, size, &total))
		return NULL;
	arena_block *nb = mem_alloc(MEM_SPILL, total);
	if (!nb)
		return NULL;
	nb->size = size;
	nb->used = len;
	o->arena_bytes += total;
	if (b && size != o->block_size) {
		/* A big key's own block goes behind the current one. */
		nb->next = b->next;
		b->next = nb;
	} else {
		nb->next = b;
		o->blocks = nb;
	}
	return nb->data;
}

/* Bytes a new key would allocate now (0 when it fits the current block). */
static size_t arena_need(const order *o, size_t len)
{
	const arena_block *b = o->blocks;
	if (b && b->size - b->used >= len)
		return 0;
	return sizeof *b + (len > o->block_size / 4 ? len : o->block_size);
}

/* ---- Runs ----------------------------------------------------------- */

static int runs_append(order *o, spill_file *f)
{
	spill_file **v = mem_grow(MEM_SPILL, o->runs, &o->caprun, o->nruns, sizeof *v, 16);
	if (!v) {
		spill_file_remove(f);
		errno = ENOMEM;
		return -1;
	}
	o->runs = v;
	o->runs[o->nruns++] = f;
	return 0;
}

static int item_put(spill_writer *w, const order_item *it)
{
	spill_rec r = { 0, it->count, it->key, it->len };
	return spill_run_put(w, &r);
}

/* The most items a run or the output needs. */
static size_t keep_limit(const order *o, size_t n)
{
	return o->cfg.top && o->cfg.top < n ? (size_t)o->cfg.top : n;
}

/* Make *thr (owned copy) the better of itself and it (just sorted: its
 * prefix is set again here). */
static int threshold_offer(order *o, const order_item *sorted)
{
	order_item it = *sorted;
	it.prefix = keysort_prefix(it.key, it.len);
	if (o->have_thr && !keysort_before(&it, &o->thr, o->bycount))
		return 0;
	if (mem_reserve(MEM_SPILL, &o->thr_key, &o->thr_cap, it.len))
		return -1;
	if (it.len)
		memcpy(o->thr_key, it.key, it.len);
	o->thr = it;
	o->thr.key = o->thr_key ? o->thr_key : "";
	o->have_thr = 1;
	return 0;
}

/* Sort what is held and write it as a run; start again empty. */
static int flush_run(order *o)
{
	sort_items(o);
	size_t keep = keep_limit(o, o->n);
	if (o->cfg.sort != TALLY_SORT_NONE && o->cfg.top && keep == o->cfg.top &&
	    threshold_offer(o, &o->items[keep - 1]))
		return -1;
	spill_writer *w = spill_run_begin(o->cfg.spill);
	if (!w)
		return -1;
	for (size_t i = 0; i < keep; i++) {
		/* Sorted items point all over the arena: fetch ahead. */
		if (i + PREFETCH_AHEAD < keep)
			__builtin_prefetch(o->items[i + PREFETCH_AHEAD].key);
		if (item_put(w, &o->items[i])) {
			int e = errno;
			spill_run_abort(w);
			errno = e;
			return -1;
		}
	}
	spill_file *f = spill_run_end_file(w);
	if (!f || runs_append(o, f))
		return -1;
	o->n = 0;
	o->key_bytes = 0;
	arena_free(o);
	return 0;
}

/* --top: cut the held items to the best N, keys moved to a fresh arena. */
static int select_top(order *o)
{
	sort_items(o);
	size_t keep = (size_t)o->cfg.top;
	if (threshold_offer(o, &o->items[keep - 1]))
		return -1;
	arena_block *old = o->blocks;
	o->blocks = NULL;
	o->arena_bytes = 0;
	for (size_t i = 0; i < keep; i++) {
		order_item *it = &o->items[i];
		if (it->len == 0)
			continue;
		char *p = arena_take(o, it->len);
		if (!p) {
			arena_free(o);
			o->blocks = old;   /* keep a consistent state */
			for (arena_block *b = old; b; b = b->next)
				o->arena_bytes += sizeof *b + b->size;
			errno = ENOMEM;
			return -1;
		}
		memcpy(p, it->key, it->len);
		it->key = p;
	}
	/* Sorted again as more items come. */
	keysort_prefixes(o->items, keep);
	while (old) {
		arena_block *next = old->next;
		mem_free(MEM_SPILL, old, sizeof *old + old->size);
		old = next;
	}
	o->n = keep;
	o->key_bytes = 0;
	for (size_t i = 0; i < keep; i++)
		o->key_bytes += o->items[i].len;
	return 0;
}

/* ---- Adding ---------------------------------------------------------- */

order *order_create(const order_config *cfg)
{
	order *o = mem_calloc_lines(MEM_SPILL, sizeof *o);
	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	o->cfg = *cfg;
	if (o->cfg.sort != TALLY_SORT_COUNT && o->cfg.sort != TALLY_SORT_KEY)
		o->cfg.sort = TALLY_SORT_NONE;
	o->bycount = o->cfg.sort == TALLY_SORT_COUNT;
	o->block_size = 256 * 1024;
	if (o->cfg.budget && o->cfg.spill) {
		uint64_t b = o->cfg.budget / 16;
		o->block_size = b < 4096 ? 4096 : b > (1u << 20) ? (1u << 20) : (size_t)b;
	}
	return o;
}

/* Must the held items go to a run before need more bytes are allocated? */
static int over_budget(const order *o, size_t need)
{
	return o->cfg.budget && o->cfg.spill && o->n > 0 &&
	       held_bytes(o) + need > o->cfg.budget;
}

/* Would one more item of len key bytes take the items and their keys past
 * the budget?  (Checked on every add, so that a budget smaller than the
 * first allocations still bounds what is held.) */
static int over_budget_used(const order *o, size_t len)
{
	return o->cfg.budget && o->cfg.spill && o->n > 0 &&
	       (o->n + 1) * sizeof(order_item) + o->key_bytes + len > o->cfg.budget;
}

int order_add(order *o, const char *key, size_t len, uint64_t count)
{
	if (o->finished || o->failed) {
		errno = EINVAL;
		return -1;
	}
	if (count < o->cfg.min_count)
		return 0;
	if (len > UINT32_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	/* The prefix serves the sort; unsorted, the key is not read here. */
	order_item it = { count, o->cfg.sort == TALLY_SORT_NONE ? 0 : keysort_prefix(key, len), key,
		(uint32_t)len };
	if (o->cfg.top) {
		if (o->cfg.sort == TALLY_SORT_NONE) {
			if (o->accepted >= o->cfg.top)
				return 0;
			o->accepted++;
		} else if (o->have_thr && !keysort_before(&it, &o->thr, o->bycount)) {
			return 0;
		}
	}
	if (over_budget_used(o, len)) {
		if (flush_run(o))
			goto fail;
		if (o->cfg.top && o->cfg.sort != TALLY_SORT_NONE && o->have_thr &&
		    !keysort_before(&it, &o->thr, o->bycount))
			return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64, bytes;
		if (mem_mul(cap, sizeof(order_item), &bytes)) {
			errno = ENOMEM;
			return -1;
		}
		if (over_budget(o, bytes - o->cap * sizeof(order_item))) {
			if (flush_run(o))
				goto fail;
		} else {
			order_item *v = mem_realloc(MEM_SPILL, o->items, o->cap * sizeof *v, bytes);
			if (!v) {
				errno = ENOMEM;
				goto fail;
			}
			o->items = v;
			o->cap = cap;
		}
		/* The threshold may have moved. */
		if (o->cfg.top && o->cfg.sort != TALLY_SORT_NONE && o->have_thr &&
		    !keysort_before(&it, &o->thr, o->bycount))
			return 0;
	}
	if (len && o->cfg.borrow_keys) {
		it.key = key;
	} else if (len) {
		size_t need = arena_need(o, len);
		if (need && over_budget(o, need)) {
			if (flush_run(o))
				goto fail;
			if (o->cfg.top && o->cfg.sort != TALLY_SORT_NONE && o->have_thr &&
			    !keysort_before(&it, &o->thr, o->bycount))
				return 0;
		}
		char *p = arena_take(o, len);
		if (!p) {
			errno = ENOMEM;
			goto fail;
		}
		memcpy(p, key, len);
		it.key = p;
		o->key_bytes += len;
	} else {
		it.key = "";
	}
	o->items[o->n++] = it;
	if (o->cfg.top && o->cfg.sort != TALLY_SORT_NONE && o->n >= 2 * o->cfg.top &&
	    o->n >= 64 && select_top(o))
		goto fail;
	return 0;
fail:
	o->failed = 1;
	return -1;
}

/* ---- Merging -------------------------------------------------------- */

static int src_advance(order *o, order_src *s)
{
	if (!s->r) {
		if (s->at >= o->n)
			return 0;
		s->cur = o->items[s->at++];
		return 1;
	}
	spill_rec r;
	int rc = spill_reader_next(s->r, &r);
	if (rc == 1) {
		s->cur.count = r.count;
		s->cur.key = r.key;
		s->cur.len = r.len;
		s->cur.prefix = keysort_prefix(r.key, r.len);
	}
	return rc;
}

static void mheap_push(order_merge *m, order_src *s, int bycount)
{
	size_t i = m->nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!keysort_before(&s->cur, &m->heap[up]->cur, bycount))
			break;
		m->heap[i] = m->heap[up];
		i = up;
	}
	m->heap[i] = s;
}

static order_src *mheap_pop(order_merge *m, int bycount)
{
	order_src *top = m->heap[0];
	order_src *last = m->heap[--m->nheap];
	size_t n = m->nheap, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && keysort_before(&m->heap[c + 1]->cur, &m->heap[c]->cur, bycount))
			c++;
		if (!keysort_before(&m->heap[c]->cur, &last->cur, bycount))
			break;
		m->heap[i] = m->heap[c];
		i = c;
	}
	if (n)
		m->heap[i] = last;
	return top;
}

static void omerge_close(order_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nsrc; i++)
		spill_reader_close(m->src[i].r);
	mem_free(MEM_SPILL, m->src, m->nsrc * sizeof *m->src);
	mem_free(MEM_SPILL, m->heap, m->nsrc * sizeof *m->heap);
	mem_free(MEM_SPILL, m, sizeof *m);
}

/* A merge of runs[0..n) and, when memory is set, the sorted items held
 * (at least one source in all).  The runs are taken over (removed when
 * read, or now on failure). */
static order_merge *omerge_open(order *o, spill_file **runs, size_t n, int memory)
{
	size_t nsrc = n + (memory ? 1 : 0);
	order_merge *m = mem_calloc_lines(MEM_SPILL, sizeof *m);
	if (m) {
		m->src = mem_calloc(MEM_SPILL, nsrc, sizeof *m->src);
		m->heap = mem_calloc(MEM_SPILL, nsrc, sizeof *m->heap);
		m->nsrc = nsrc;
	}
	if (!m || !m->src || !m->heap) {
		if (m) {
			mem_free(MEM_SPILL, m->src, nsrc * sizeof *m->src);
			mem_free(MEM_SPILL, m->heap, nsrc * sizeof *m->heap);
			mem_free(MEM_SPILL, m, sizeof *m);
		}
		for (size_t i = 0; i < n; i++)
			spill_file_remove(runs[i]);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		m->src[i].r = spill_reader_open(runs[i]);
		if (!m->src[i].r) {
			int e = errno;
			for (size_t j = i; j < n; j++)
				spill_file_remove(runs[j]);
			omerge_close(m);
			errno = e;
			return NULL;
		}
	}
	for (size_t i = 0; i < m->nsrc; i++) {
		int rc = src_advance(o, &m->src[i]);
		if (rc < 0) {
			omerge_close(m);
			errno = EIO;
			return NULL;
		}
		if (rc == 1)
			mheap_push(m, &m->src[i], o->bycount);
	}
	return m;
}

/* 1 with *it (valid until the next call), 0 at the end, -1 on error. */
static int omerge_next(order *o, order_merge *m, order_item *it)
{
	if (m->pending) {
		order_src *s = m->pending;
		m->pending = NULL;
		int rc = src_advance(o, s);
		if (rc < 0)
			return -1;
		if (rc == 1)
			mheap_push(m, s, o->bycount);
	}
	if (m->nheap == 0)
		return 0;
	order_src *s = mheap_pop(m, o->bycount);
	*it = s->cur;
	m->pending = s;
	return 1;
}

/* One pass step: merge runs[0..n) into a new run (cut to --top). */
static spill_file *merge_group(order *o, spill_file **runs, size_t n)
{
	order_merge *m = omerge_open(o, runs, n, 0);
	if (!m)
		return NULL;
	spill_writer *w = spill_run_begin(o->cfg.spill);
	if (!w) {
		omerge_close(m);
		return NULL;
	}
	order_item it;
	int rc = 0;
	uint64_t k = 0;
	while ((!o->cfg.top || k < o->cfg.top) && (rc = omerge_next(o, m, &it)) == 1) {
		if (item_put(w, &it)) {
			rc = -1;
			break;
		}
		k++;
	}
	if (o->cfg.top && k == o->cfg.top)
		rc = 0;
	if (rc != 0) {
		int e = errno;
		spill_run_abort(w);
		omerge_close(m);
		errno = e;
		return NULL;
	}
	omerge_close(m);
	return spill_run_end_file(w);
}

int order_finish(order *o)
{
	if (o->failed)
		return -1;
	if (o->finished)
		return 0;
	o->finished = 1;
	sort_items(o);
	if (o->cfg.sort == TALLY_SORT_NONE || o->nruns == 0)
		return 0;
	/* The merge compares the items with the runs' records. */
	keysort_prefixes(o->items, o->n);
	/* Passes until the runs and the items in memory fit one merge.  The
	 * orders merge at the same time and are read at the same time: each
	 * takes its share of the fan-in and of the readers' memory (two runs
	 * a pass, and one run with the items at the end, at the least). */
	unsigned fanin;
	uint64_t mem;
	spill_share(o->cfg.spill, o->cfg.ways, &fanin, &mem);
	while (spill_group(o->runs, o->nruns, fanin - 1, mem) < o->nruns) {
		size_t out = 0;
		for (size_t i = 0, g; i < o->nruns; i += g) {
			g = spill_group(o->runs + i, o->nruns - i, fanin, mem);
			spill_file *f = g == 1 ? o->runs[i] : merge_group(o, o->runs + i, g);
			if (!f) {
				for (size_t j = i + g; j < o->nruns; j++)
					spill_file_remove(o->runs[j]);
				o->nruns = out;   /* destroy removes these */
				o->failed = 1;
				return -1;
			}
			o->runs[out++] = f;
		}
		o->nruns = out;
	}
	o->merge = omerge_open(o, o->runs, o->nruns, 1);
	o->nruns = 0;
	if (!o->merge) {
		o->failed = 1;
		return -1;
	}
	return 0;
}

/* ---- Reading --------------------------------------------------------- */

/* The next item in memory, fetching the key of one a few places on: the
 * keys lie all over the pools (by hash with --sort=none, where a run on 8M
 * distinct lines spent 17% of its time waiting for them). */
static inline int next_item(order *o, order_item *it)
{
	if (o->at >= o->n)
		return 0;
	if (o->at + PREFETCH_AHEAD < o->n)
		__builtin_prefetch(o->items[o->at + PREFETCH_AHEAD].key);
	*it = o->items[o->at++];
	return 1;
}

static int next_none(order *o, order_item *it)
{
	/* Runs first, in the order written, then what is left in memory. */
	while (o->run_at < o->nruns || o->run) {
		if (!o->run) {
			o->run = spill_reader_open(o->runs[o->run_at]);
			if (!o->run)
				return -1;
			o->runs[o->run_at++] = NULL;   /* the reader owns it now */
		}
		spill_rec r;
		int rc = spill_reader_next(o->run, &r);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			it->count = r.count;
			it->key = r.key;
			it->len = r.len;
			return 1;
		}
		spill_reader_close(o->run);
		o->run = NULL;
	}
	return next_item(o, it);
}

int order_next(order *o, tally_item *out)
{
	if (o->failed || !o->finished) {
		errno = o->failed ? EIO : EINVAL;
		return -1;
	}
	if (o->cfg.top && o->emitted >= o->cfg.top)
		return 0;
	order_item it;
	int rc;
	if (o->merge)
		rc = omerge_next(o, o->merge, &it);
	else if (o->cfg.sort == TALLY_SORT_NONE)
		rc = next_none(o, &it);
	else
		rc = next_item(o, &it);
	if (rc < 0) {
		o->failed = 1;
		return -1;
	}
	if (rc == 1) {
		out->key = it.key;
		out->len = it.len;
		out->count = it.count;
		o->emitted++;
	}
	return rc;
}

int order_keys_scattered(const order *o)
{
	/* 64 pairs of neighbours spread over the items: in order when three
	 * in four have the second key within a page after the first. */
	enum { PAIRS = 64, PAGE = 4096 };
	if (o->merge || o->run_at < o->nruns || o->run || o->n - o->at < 2 * PAIRS)
		return 0;
	size_t span = o->n - o->at - 1, near = 0;
	for (size_t j = 0; j < PAIRS; j++) {
		const order_item *a = &o->items[o->at + span * j / PAIRS];
		near += (uintptr_t)a[1].key - (uintptr_t)a[0].key < PAGE;
	}
	return near < PAIRS - PAIRS / 4;
}

const keysort_item *order_items(const order *o, size_t *n)
{
	if (!o->finished || o->failed || o->merge || o->nruns || o->run)
		return NULL;
	*n = o->cfg.top && o->n > o->cfg.top ? o->cfg.top : o->n;
	return o->items;
}

void order_destroy(order *o)
{
	if (!o)
		return;
	omerge_close(o->merge);
	spill_reader_close(o->run);
	for (size_t i = 0; i < o->nruns; i++)
		if (o->runs[i])
			spill_file_remove(o->runs[i]);
	mem_free(MEM_SPILL, o->runs, o->caprun * sizeof *o->runs);
	mem_free(MEM_SPILL, o->items, o->cap * sizeof *o->items);
	mem_free(MEM_SPILL, o->thr_key, o->thr_cap);
	arena_free(o);
	mem_free(MEM_SPILL, o, sizeof *o);
}
