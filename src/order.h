/*
 * order.h - putting the final (key, count) pairs in output order: --sort=count
 * (count descending, then key ascending by bytes), --sort=key (key ascending
 * by bytes) or --sort=none (the order given), with --top N kept in a bounded
 * heap and --min-count applied.  When the pairs outgrow the memory budget,
 * sorted runs go to the spill directory and are merged back (external sort).
 *
 * Single-threaded.  Keys are copied in; items returned stay valid until the
 * next order_next call.
 */
#ifndef TALLY_ORDER_H
#define TALLY_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "tally.h"
#include "keysort.h"
#include "spill.h"

typedef struct order order;

typedef struct order_config {
	tally_sort sort;
	uint64_t   top;         /* 0 = all */
	uint64_t   min_count;   /* items with a smaller count are dropped; 0/1 = none */
	uint64_t   budget;      /* bytes of keys and items before spilling sorted runs */
	spill     *spill;       /* where sorted runs go (may be NULL: never spill) */
	int        borrow_keys; /* keys outlive the order: keep pointers, copy nothing */
	unsigned   ways;        /* orders merging and read at once (0 = 1): each merges
	                         * its runs within that share of the spill's fan-in and
	                         * merge memory */
} order_config;

order *order_create(const order_config *cfg);
/* Add one pair (key copied, unless borrow_keys).  Returns 0 or -1 (out of memory or disk; errno). */
int order_add(order *o, const char *key, size_t len, uint64_t count);
/* Done adding: sort (and merge runs).  Returns 0 or -1. */
int order_finish(order *o);
/* 1 with *it filled, 0 at the end, -1 on error. */
int order_next(order *o, tally_item *it);
/* After order_finish: are the items still to be read all in memory (their
 * keys then stay put until order_destroy), with their keys scattered, not
 * laid out mostly in the order they will be read (as the lines of a log,
 * stored as they came and sorted by their timestamps, are)?  Reading such
 * items costs a cache miss a key, and a thread reading them ahead pays. */
int order_keys_scattered(const order *o);
/* After order_finish, when the items are all in memory (no run was
 * written): the sorted items from the first, whatever order_next has
 * given out, and with *n their number (within --top).  NULL otherwise. */
const keysort_item *order_items(const order *o, size_t *n);
void order_destroy(order *o);

#endif
