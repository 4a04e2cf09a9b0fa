/*
 * write.h - the sorted results written out by several threads at once.
 *
 * The orders' items (order.h), all in memory, are cut into stretches of
 * the merged output order; each thread formats a stretch into a text of
 * its own (output.h), and the calling thread writes the texts in their
 * order.  The bytes are those that tally_writer_put gives item by item.
 */
#ifndef TALLY_WRITE_H
#define TALLY_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "keysort.h"
#include "tally.h"

/* The most sources write_sorted takes. */
#define WRITE_MAX_SOURCES 64

/* One sorted order's items. */
typedef struct write_src {
	const keysort_item *items;
	size_t              n;
} write_src;

/*
 * Write the items of src[0..nsrc) to w: merged in the order sort gives
 * (count or key: each src sorted so, and no key in two; none: one src
 * after another), at most top of them (0: all), formatted on threads
 * threads, the caller's one of them.  *emitted grows by the items written,
 * as they are.  Returns 0; -1 when a write failed (errno set, EPIPE
 * included); -2 out of memory (or more than WRITE_MAX_SOURCES sources).
 */
int write_sorted(const write_src *src, unsigned nsrc, tally_sort sort, uint64_t top,
	unsigned threads, tally_writer *w, _Atomic uint64_t *emitted);

#endif
