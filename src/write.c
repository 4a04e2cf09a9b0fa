/*
 * write.c - the sorted results written by several threads at once (see
 * write.h).
 *
 * A stretch is cut by one thread at a time, outside the lock: at most
 * WR_ITEMS items of each source, up to the first item that any source has
 * past that many (a binary search in each finds it), and fewer while their
 * keys hold more than WR_KEY_BYTES (summing their lengths is most of the
 * cutting, and brings the items into the cache of the thread that goes on
 * to format them).  It is formatted without the lock, into the text of
 * its slot.  The slots form a ring: a stretch is cut only into a slot that
 * the writer has emptied, so that WR_SLOTS texts per thread are held at
 * most.  The writer takes the texts in the order they were cut, and while
 * the next one is not ready it formats a stretch too.
 *
 * Writing 8.2M log lines (--lines, 1 GB, two threads) took 0.44 s on one
 * thread, a third of it merging the two sorted orders and the rest
 * formatting; 0.22-0.27 s so.  To a file, 0.63 s and 0.32 s (the writes
 * go on while the other thread formats); to a .zst file, 4.7 s and 2.4 s
 * (with zstd's threads, output.c).
 */
#include "write.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "iheap.h"
#include "mem.h"
#include "output.h"

#define WR_ITEMS      4096              /* items of a source in a stretch, at most */
#define WR_KEY_BYTES  (512u * 1024u)    /* key bytes in a stretch, unless one is more */
#define WR_SLOTS      2                 /* stretches per thread cut and not yet written */
#define WR_PREFETCH   8                 /* keys fetched ahead of the one formatted */

enum { SLOT_FREE, SLOT_CUT, SLOT_READY };

typedef struct wr_slot {
	size_t  *lo, *hi;      /* per source: the stretch's items [lo, hi) */
	uint64_t limit;        /* items of it to write at most (--top) */
	uint64_t seq;          /* its place in the output */
	int      state;
	out_text text;
} wr_slot;

/* What every thread reads and none writes. */
typedef struct wr_params {
	const write_src *src;
	unsigned         nsrc;
	int              bycount, none;
	tally_format     fmt;
	int              opens;        /* the first item opens the output */
} wr_params;

typedef struct wr_ctx {
	wr_params        p;
	/* The lock on a line of its own, away from what the threads read. */
	_Alignas(64) pthread_mutex_t mu;
	pthread_cond_t   cv;
	/* The thread cutting (cutting set) only. */
	size_t          *at;           /* per source: its first item not cut */
	unsigned         none_at;      /* --sort=none: the source being cut */
	uint64_t         left;         /* items still to cut (UINT64_MAX: all) */
	/* Under mu. */
	int              cutting, cut_done, stop, nomem;
	uint64_t         ncut, nwritten;
	wr_slot         *slots;
	unsigned         nslots;
} wr_ctx;

static inline int item_before(const wr_params *p, const keysort_item *a, const keysort_item *b)
{
	if (p->bycount && a->count != b->count)
		return a->count > b->count;
	return keysort_bytes_cmp(a->key, a->len, b->key, b->len) < 0;
}

/* The first of items[lo, hi) that does not come before p. */
static size_t first_not_before(const wr_params *pr, const keysort_item *items, size_t lo,
	size_t hi, const keysort_item *p)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (item_before(pr, &items[mid], p))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Is everything cut?  (Also moves --sort=none on past its empty sources.) */
static int all_cut(wr_ctx *c)
{
	if (c->left == 0)
		return 1;
	const wr_params *p = &c->p;
	if (p->none) {
		while (c->none_at < p->nsrc && c->at[c->none_at] == p->src[c->none_at].n)
			c->none_at++;
		return c->none_at == p->nsrc;
	}
	for (unsigned j = 0; j < p->nsrc; j++)
		if (c->at[j] < p->src[j].n)
			return 0;
	return 1;
}

/* Cut the next stretch into s (by the thread cutting; something is left
 * to cut).  Returns 1 when nothing is left after it. */
static int cut(wr_ctx *c, wr_slot *s)
{
	const wr_params *pr = &c->p;
	uint64_t total = 0;
	for (unsigned j = 0; j < pr->nsrc; j++)
		s->lo[j] = s->hi[j] = c->at[j];
	if (pr->none) {
		const write_src *r = &pr->src[c->none_at];
		size_t i = c->at[c->none_at], end = i, bytes = 0;
		while (end < r->n && end - i < WR_ITEMS &&
		       (end == i || bytes + r->items[end].len <= WR_KEY_BYTES))
			bytes += r->items[end++].len;
		s->hi[c->none_at] = end;
		total = end - i;
	} else {
		for (size_t g = WR_ITEMS;; g /= 2) {
			/* The stretch ends before the first item past g of any
			 * source: each source gives at most g, and the one that
			 * item comes from exactly g. */
			const keysort_item *p = NULL;
			for (unsigned j = 0; j < pr->nsrc; j++)
				if (c->at[j] + g < pr->src[j].n) {
					const keysort_item *q = &pr->src[j].items[c->at[j] + g];
					if (!p || item_before(pr, q, p))
						p = q;
				}
			uint64_t bytes = 0;
			total = 0;
			for (unsigned j = 0; j < pr->nsrc; j++) {
				const write_src *r = &pr->src[j];
				size_t end = c->at[j] + g < r->n ? c->at[j] + g : r->n;
				s->hi[j] = p ? first_not_before(pr, r->items, c->at[j], end, p) : end;
				total += s->hi[j] - c->at[j];
				for (size_t i = c->at[j]; i < s->hi[j]; i++)
					bytes += r->items[i].len;
			}
			if (bytes <= WR_KEY_BYTES || g == 1)
				break;
		}
	}
	s->limit = total < c->left ? total : c->left;
	if (c->left != UINT64_MAX)
		c->left -= s->limit;
	for (unsigned j = 0; j < pr->nsrc; j++)
		c->at[j] = s->hi[j];
	return all_cut(c);
}

/* A stretch to format, cut into the next slot, or NULL when there is none
 * to cut now.  Called with mu held, which it lets go while it cuts. */
static wr_slot *claim(wr_ctx *c)
{
	if (c->cut_done || c->stop || c->cutting)
		return NULL;
	wr_slot *s = &c->slots[c->ncut % c->nslots];
	if (s->state != SLOT_FREE)
		return NULL;
	c->cutting = 1;
	pthread_mutex_unlock(&c->mu);
	int done = cut(c, s);
	pthread_mutex_lock(&c->mu);
	c->cutting = 0;
	s->seq = c->ncut++;
	s->state = SLOT_CUT;
	c->cut_done = done;
	pthread_cond_broadcast(&c->cv);
	return s;
}

/* The heads of the sources merged: their next items. */
typedef struct wr_heads {
	const wr_params *p;
	const size_t    *at;
} wr_heads;

static int head_before(const void *ctx, unsigned a, unsigned b)
{
	const wr_heads *h = ctx;
	return item_before(h->p, &h->p->src[a].items[h->at[a]], &h->p->src[b].items[h->at[b]]);
}

/* Format item i of source j (its stretch ending at end) into t; first: it
 * opens the output. */
static inline int put(const wr_params *p, out_text *t, unsigned j, size_t i, size_t end, int first)
{
	const write_src *r = &p->src[j];
	if (i + WR_PREFETCH < end)
		__builtin_prefetch(r->items[i + WR_PREFETCH].key);
	tally_item it = { r->items[i].key, r->items[i].len, r->items[i].count };
	return output_text_put(t, p->fmt, &it, first);
}

/* Format the stretch in s (no lock held).  0, or -1 out of memory.  All it
 * works on is its own: on a line that another thread writes, the item's
 * place and the text's length, written for every item, cost the threads
 * more than they shared out (writing 8.2M lines took 0.6-0.8 s against
 * 0.46 s on one thread). */
static int format(const wr_params *pp, wr_slot *s)
{
	wr_params p = *pp;
	size_t at[WRITE_MAX_SOURCES], end[WRITE_MAX_SOURCES];
	unsigned heap[WRITE_MAX_SOURCES], n = 0;
	out_text t = s->text;
	uint64_t left = s->limit;
	int first = p.opens && s->seq == 0, rc = 0;

	output_text_clear(&t);
	for (unsigned j = 0; j < p.nsrc; j++) {
		at[j] = s->lo[j];
		end[j] = s->hi[j];
		if (at[j] < end[j])
			heap[n++] = j;
	}
	if (p.none || n == 1) {
		/* One source after another. */
		for (unsigned k = 0; k < n && !rc; k++) {
			unsigned j = heap[k];
			for (size_t i = at[j]; i < end[j] && left && !rc; i++, left--, first = 0)
				rc = put(&p, &t, j, i, end[j], first);
		}
	} else {
		wr_heads h = { &p, at };
		for (unsigned i = n / 2; i-- > 0;)
			iheap_down(heap, n, i, head_before, &h);
		for (; n && left && !rc; left--, first = 0) {
			unsigned j = heap[0];
			rc = put(&p, &t, j, at[j]++, end[j], first);
			if (at[j] == end[j])
				heap[0] = heap[--n];
			iheap_down(heap, n, 0, head_before, &h);
		}
	}
	s->text = t;
	return rc;
}

/* Format s, claimed: called with mu held, which it lets go meanwhile. */
static void format_claimed(wr_ctx *c, wr_slot *s)
{
	pthread_mutex_unlock(&c->mu);
	int bad = format(&c->p, s);
	pthread_mutex_lock(&c->mu);
	if (bad) {
		c->nomem = 1;
		c->stop = 1;
	} else {
		s->state = SLOT_READY;
	}
	pthread_cond_broadcast(&c->cv);
}

static void *helper_main(void *p)
{
	wr_ctx *c = p;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		wr_slot *s = claim(c);
		if (s)
			format_claimed(c, s);
		else if (c->cut_done)
			break;
		else
			pthread_cond_wait(&c->cv, &c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Write the texts in their order, formatting while the next is not ready.
 * 0, or -1 when a write failed (errno). */
static int writer_main(wr_ctx *c, tally_writer *w, _Atomic uint64_t *emitted)
{
	int rc = 0, err = 0;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		wr_slot *s = &c->slots[c->nwritten % c->nslots];
		if (s->state == SLOT_READY) {
			pthread_mutex_unlock(&c->mu);
			if (output_put_text(w, &s->text)) {
				err = errno;
				rc = -1;
			} else if (emitted) {
				atomic_fetch_add_explicit(emitted, s->text.items, memory_order_relaxed);
			}
			pthread_mutex_lock(&c->mu);
			if (rc)
				break;
			s->state = SLOT_FREE;
			c->nwritten++;
			pthread_cond_broadcast(&c->cv);
			continue;
		}
		if (c->cut_done && c->nwritten == c->ncut)
			break;
		wr_slot *t = claim(c);
		if (t)
			format_claimed(c, t);
		else
			pthread_cond_wait(&c->cv, &c->mu);
	}
	c->stop = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	errno = err;
	return rc;
}

int write_sorted(const write_src *src, unsigned nsrc, tally_sort sort, uint64_t top,
	unsigned threads, tally_writer *w, _Atomic uint64_t *emitted)
{
	if (threads < 1)
		threads = 1;
	if (nsrc > WRITE_MAX_SOURCES)
		return -2;
	/* A thread for every WR_ITEMS items at most: a small output is not
	 * worth a thread's start (0.3 ms). */
	uint64_t items = 0;
	for (unsigned j = 0; j < nsrc; j++)
		items += src[j].n;
	if (top && top < items)
		items = top;
	if (threads > items / WR_ITEMS)
		threads = items / WR_ITEMS > 1 ? (unsigned)(items / WR_ITEMS) : 1;
	wr_ctx c = {
		.p = {
			.src = src, .nsrc = nsrc,
			.bycount = sort == TALLY_SORT_COUNT, .none = sort == TALLY_SORT_NONE,
			.fmt = output_writer_format(w), .opens = output_writer_items(w) == 0,
		},
		.left = top ? top : UINT64_MAX,
		.nslots = WR_SLOTS * threads,
	};
	/* Per slot: lo and hi for every source. */
	size_t per = 2 * nsrc * sizeof(size_t);
	size_t bytes = nsrc * sizeof(size_t) + c.nslots * (sizeof(wr_slot) + per);
	char *block = mem_calloc(MEM_OTHER, 1, bytes);
	if (!block)
		return -2;
	c.slots = (wr_slot *)block;
	c.at = (size_t *)(block + c.nslots * sizeof(wr_slot));
	char *p = (char *)(c.at + nsrc);
	for (unsigned i = 0; i < c.nslots; i++, p += per) {
		wr_slot *s = &c.slots[i];
		s->lo = (size_t *)p;
		s->hi = s->lo + nsrc;
		output_text_init(&s->text);
	}
	c.cut_done = all_cut(&c);
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);

	/* Threads that cannot be had leave more of the work to the others. */
	pthread_t th[64];
	unsigned nth = 0;
	for (unsigned i = 1; i < threads && nth < sizeof th / sizeof th[0]; i++)
		if (pthread_create(&th[nth], NULL, helper_main, &c) == 0)
			nth++;
	int rc = writer_main(&c, w, emitted);
	int err = errno;
	for (unsigned i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (rc == 0 && c.nomem)
		rc = -2;

	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
	for (unsigned i = 0; i < c.nslots; i++)
		output_text_free(&c.slots[i].text);
	mem_free(MEM_OTHER, block, bytes);
	errno = err;
	return rc;
}
