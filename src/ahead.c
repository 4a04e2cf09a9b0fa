/*
 * ahead.c - reading a merge of runs ahead of its reader (see ahead.h).
 *
 * A ring of AHEAD_BATCHES batches: the thread fills batch `filled` while
 * fewer than all are waiting, the reader reads batch `taken` and gives it
 * back when done.  A batch holds records as (count: 8 bytes, length: 4
 * bytes, key bytes), native order; one longer than a batch grows it.
 * Batches are counted under MEM_SPILL.
 */
#include "ahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define AHEAD_BATCHES 4
#define AHEAD_BATCH   (256u * 1024)
#define AHEAD_HEAD    12u     /* count and length before the key */

typedef struct ahead_batch {
	unsigned char *buf;
	size_t         cap, len;
} ahead_batch;

struct ahead {
	void           *src;
	ahead_next_fn   next;
	ahead_close_fn  close;
	uint64_t        min_count, max_count;
	pthread_t       thread;
	int             threaded;
	pthread_mutex_t mu;
	pthread_cond_t  cv;         /* a batch filled or given back, or stop */
	ahead_batch     b[AHEAD_BATCHES];
	uint64_t        filled, taken;
	int             done, err, stop;
	/* Each side's fields written for every record have a cache line of
	 * their own (the struct is allocated on lines of its own), so that
	 * neither side's writes take the line the other is reading: the
	 * reader spent 14% of its time waiting on fields that the thread had
	 * just written beside them. */
	/* The thread's: a record read that did not fit the last batch. */
	_Alignas(MEM_LINE) spill_rec rec;
	int             have_rec;
	uint64_t        distinct, hapax;
	/* The reader's: the batch being read, if any, and where. */
	_Alignas(MEM_LINE) int holding;
	size_t          pos;
};

/* Fill batch bt from the merge.  Returns 1 at the end of the merge (err
 * set on failure), else 0. */
static int fill(ahead *a, ahead_batch *bt, int *err)
{
	/* The length is kept here and stored once at the end: bt lies beside
	 * the batch the reader is reading. */
	size_t len = 0;
	int end = 0;
	for (;;) {
		if (!a->have_rec) {
			int rc = a->next(a->src, &a->rec);
			if (rc <= 0) {
				*err = rc < 0 ? (errno ? errno : EIO) : 0;
				end = 1;
				break;
			}
			a->distinct++;
			a->hapax += a->rec.count == 1;
			if (a->rec.count < a->min_count || (a->max_count && a->rec.count > a->max_count))
				continue;
			a->have_rec = 1;
		}
		size_t need = AHEAD_HEAD + a->rec.len;
		if (bt->cap - len < need) {
			if (len)
				break;   /* the record opens the next batch */
			unsigned char *p = mem_realloc(MEM_SPILL, bt->buf, bt->cap, need);
			if (!p) {
				*err = ENOMEM;
				end = 1;
				break;
			}
			bt->buf = p;
			bt->cap = need;
		}
		unsigned char *p = bt->buf + len;
		uint32_t klen = a->rec.len;
		memcpy(p, &a->rec.count, 8);
		memcpy(p + 8, &klen, 4);
		memcpy(p + AHEAD_HEAD, a->rec.key, klen);
		len += need;
		a->have_rec = 0;
	}
	bt->len = len;
	return end;
}

/* Fill the next free batch and hand it over.  Returns 1 when the merge is
 * done (or the reader stopped it), else 0. */
static int fill_next(ahead *a)
{
	pthread_mutex_lock(&a->mu);
	while (!a->stop && a->filled - a->taken == AHEAD_BATCHES)
		pthread_cond_wait(&a->cv, &a->mu);
	int stop = a->stop;
	ahead_batch *bt = &a->b[a->filled % AHEAD_BATCHES];
	pthread_mutex_unlock(&a->mu);
	if (stop)
		return 1;
	int err = 0, end = fill(a, bt, &err);
	pthread_mutex_lock(&a->mu);
	a->filled++;
	if (end) {
		a->done = 1;
		a->err = err;
	}
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return end;
}

static void *ahead_main(void *p)
{
	ahead *a = p;
	while (!fill_next(a))
		;
	return NULL;
}

static int merge_next(void *m, spill_rec *rec)
{
	return spill_merge_next(m, rec);
}

static void merge_close(void *m)
{
	spill_merge_close(m);
}

ahead *ahead_start(spill_merge *m, uint64_t min_count, uint64_t max_count)
{
	return ahead_source(merge_next, merge_close, m, min_count, max_count);
}

ahead *ahead_source(ahead_next_fn next, ahead_close_fn close, void *src,
	uint64_t min_count, uint64_t max_count)
{
	ahead *a = mem_calloc_lines(MEM_SPILL, sizeof *a);
	if (!a) {
		if (close)
			close(src);
		return NULL;
	}
	a->src = src;
	a->next = next;
	a->close = close;
	a->min_count = min_count;
	a->max_count = max_count;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	for (unsigned i = 0; i < AHEAD_BATCHES; i++) {
		a->b[i].buf = mem_alloc(MEM_SPILL, AHEAD_BATCH);
		if (!a->b[i].buf) {
			ahead_free(a);
			return NULL;
		}
		a->b[i].cap = AHEAD_BATCH;
	}
	a->threaded = pthread_create(&a->thread, NULL, ahead_main, a) == 0;
	return a;
}

int ahead_next(ahead *a, tally_item *it)
{
	for (;;) {
		if (a->holding) {
			ahead_batch *bt = &a->b[a->taken % AHEAD_BATCHES];
			if (a->pos < bt->len) {
				const unsigned char *p = bt->buf + a->pos;
				uint32_t len;
				memcpy(&it->count, p, 8);
				memcpy(&len, p + 8, 4);
				it->len = len;
				it->key = (const char *)p + AHEAD_HEAD;
				a->pos += AHEAD_HEAD + len;
				return 1;
			}
			pthread_mutex_lock(&a->mu);
			a->taken++;
			a->holding = 0;
			pthread_cond_broadcast(&a->cv);
			pthread_mutex_unlock(&a->mu);
		}
		/* Without a thread, fill the batch here. */
		if (!a->threaded && !a->done)
			fill_next(a);
		pthread_mutex_lock(&a->mu);
		while (a->filled == a->taken && !a->done)
			pthread_cond_wait(&a->cv, &a->mu);
		int more = a->filled != a->taken, err = a->err;
		pthread_mutex_unlock(&a->mu);
		if (!more) {
			errno = err;
			return err ? -1 : 0;
		}
		a->holding = 1;
		a->pos = 0;
	}
}

void ahead_counts(const ahead *a, uint64_t *distinct, uint64_t *hapax)
{
	*distinct = a->distinct;
	*hapax = a->hapax;
}

void ahead_free(ahead *a)
{
	if (!a)
		return;
	if (a->threaded) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	if (a->close)
		a->close(a->src);
	for (unsigned i = 0; i < AHEAD_BATCHES; i++)
		mem_free(MEM_SPILL, a->b[i].buf, a->b[i].cap);
	mem_free(MEM_SPILL, a, sizeof *a);
}
