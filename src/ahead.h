/*
 * ahead.h - reading records in output order ahead of their reader, in a
 * thread of their own.  After a spill with --sort=key, the merge of each
 * range of partitions already gives its keys in output order (spill.h, key
 * order): its records go straight to the output, with no sort and no second
 * spill, and a thread per range keeps the merging off the writer's thread.
 * With --sort=count the same goes for the keys seen once, read from a
 * second merge after the others (max_count 1).  In memory, a thread per
 * sorted order whose keys lie scattered over the key pools reads its items
 * ahead of the writer (ahead_source).
 *
 * The thread packs records into a few batches (a bounded queue); the reader
 * takes them in order.  Where no thread can be had, the reader fills the
 * batches itself.
 */
#ifndef TALLY_AHEAD_H
#define TALLY_AHEAD_H

#include <stdint.h>

#include "spill.h"
#include "tally.h"

typedef struct ahead ahead;

/* Start reading m (taken over: closed by ahead_free) ahead.  Records with a
 * count under min_count, or over max_count when that is not 0, are read but
 * not passed on.  Returns NULL when out of memory (m is then closed). */
ahead *ahead_start(spill_merge *m, uint64_t min_count, uint64_t max_count);

/* The same over any source of records in output order: next(src, rec)
 * gives 1 and the next record (its key valid until the next call), 0 at
 * the end, or -1 on failure (errno); close(src), when not NULL, is called
 * by ahead_free, or at once when this returns NULL (out of memory).  next
 * is called from the thread only, so the source must not be read
 * otherwise meanwhile. */
typedef int  (*ahead_next_fn)(void *src, spill_rec *rec);
typedef void (*ahead_close_fn)(void *src);
ahead *ahead_source(ahead_next_fn next, ahead_close_fn close, void *src,
	uint64_t min_count, uint64_t max_count);

/* The next record: 1 with *it filled (the key valid until the next call),
 * 0 at the end, -1 when the merge failed (errno; spill_errmsg says why). */
int ahead_next(ahead *a, tally_item *it);

/* Records the merge gave and how many had a count of 1, min_count or not:
 * complete once ahead_next has returned 0. */
void ahead_counts(const ahead *a, uint64_t *distinct, uint64_t *hapax);

/* Stop the thread (at any point) and free a, m included. */
void ahead_free(ahead *a);

#endif
