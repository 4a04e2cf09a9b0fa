/*
 * sorted.h - count files already in key order, merged as the output is
 * read (tally merge --sort=key).
 *
 * A count file named by path is read once as it is added (sorted_take):
 * when every line is well formed and its keys ascend strictly, it is set
 * aside rather than counted.  At the end the files set aside are read
 * again, all at once, and merged with the engine's own results (the
 * inputs it counted, given in key order): equal keys summed, in memory
 * that does not grow with the files (a reader each).
 * A file that changed between the two readings fails the run: its
 * identity (input_id), lines, bytes, sum of counts and key order are
 * checked again (not its bytes: a digest of them cost the merge of two
 * files of 462 MB 14% more time, for a rewrite in place that keeps size,
 * time to the nanosecond, lines, sum and order).
 *
 * Files are read with read(2), whatever --io says (the merge reads a line
 * of every file in turn: no mapped window of them can fault under it).
 * Not thread-safe: the engine's reader takes the files, then one thread
 * reads the merge (the engine's: ahead.h, ahead of the output).
 */
#ifndef TALLY_SORTED_H
#define TALLY_SORTED_H

#include <stdatomic.h>
#include <stdint.h>

#include "input.h"
#include "tally.h"
#include "tokenize.h"

typedef struct sorted_set sorted_set;

/* Set aside at most max_files files, while their readers' estimated
 * memory stays within max_bytes (at least one file either way).  io: the
 * engine's options (chunk size, cut); the rest is set here.  NULL when out
 * of memory. */
sorted_set *sorted_create(const tok_shared *tok, const input_opts *io, unsigned max_files,
	uint64_t max_bytes);
void sorted_destroy(sorted_set *s);

/* What sorted_take did with a source. */
enum {
	SORTED_COUNT = 0,   /* count src: not in key order, not well formed,
	                     * empty, not a regular file, or no room */
	SORTED_KEPT,        /* set aside: close src */
	SORTED_FATAL        /* out of memory */
};

/* What a file taken holds, for the engine's statistics. */
typedef struct sorted_info {
	uint64_t sum;        /* its counts added */
	int      overflow;   /* they add up past 2^64 - 1 */
} sorted_info;

/* Read the file src was opened on (by input_open, from path; nothing read
 * from it yet) to see whether it can be set aside: src itself is left
 * unread, for the count.  While reading, the stored bytes consumed are
 * added to *bytes (progress), and taken off again unless the file is
 * kept.  *info: its counts. */
int sorted_take(sorted_set *s, input_source *src, const char *path, _Atomic uint64_t *bytes,
	sorted_info *info);

/* Files set aside, and the decoded bytes they hold (their counts are
 * sorted_take's to tell). */
unsigned sorted_files(const sorted_set *s);
uint64_t sorted_decoded(const sorted_set *s);

/* The engine's own results, in key order, strictly ascending: 1 with *it
 * filled (valid until the next call), 0 at the end, -1 on failure (the
 * engine holds the message). */
typedef int (*sorted_inner_fn)(void *ctx, tally_item *it);

/* Open every file set aside again and start the merge with inner (NULL:
 * none).  Returns 0, or -1 with sorted_errmsg set. */
int sorted_start(sorted_set *s, sorted_inner_fn inner, void *ctx);

/* The next item in key order: 1 with *it filled (valid until the next
 * call), 0 at the end, -1 on failure: sorted_errmsg says why ("" when the
 * inner results failed). */
int sorted_next(sorted_set *s, tally_item *it);

const char *sorted_errmsg(const sorted_set *s);

#endif
