/*
 * spill.h - run files and their merge, for counting in a fixed memory budget.
 *
 * A spill owns a private directory (mkdtemp under the tmpdir) holding run
 * files: sequences of (hash, key, count) records sorted by (hash, key bytes),
 * zstd-compressed.  Tables evict into runs when they reach their budget; at
 * the end the runs are merged (multi-pass when there are more runs than file
 * descriptors allow) into one stream in (hash, key) order with the counts of
 * equal keys summed.  Temporary files are removed by spill_destroy, at exit,
 * and on SIGINT, SIGTERM and SIGHUP (the process then dies of that signal).
 *
 * Thread safety: spill_run_* on different writers may run concurrently
 * (several tables evict at once); creating and merging are single-threaded.
 */
#ifndef TALLY_SPILL_H
#define TALLY_SPILL_H

#include <stddef.h>
#include <stdint.h>

typedef struct spill spill;

typedef struct spill_rec {
	uint64_t    hash;
	uint64_t    count;
	const char *key;     /* valid until the next call on the same object */
	uint32_t    len;
} spill_rec;

/* Create the private directory under tmpdir (NULL: $TMPDIR, else /tmp) and
 * install the signal cleanup.  Nothing is created on disk until the first
 * run is written.  Returns NULL with "DIR: reason" in err. */
spill *spill_create(const char *tmpdir, char *err, size_t errlen);

/* Remove all run files and the directory. */
void spill_destroy(spill *s);

/* Write one run.  Records must come in (hash, key) order with no repeated
 * key.  Returns NULL / -1 on failure with errno set (ENOSPC for a full disk);
 * spill_errmsg then reads "TMPDIR: No space left on device" style text. */
typedef struct spill_writer spill_writer;
spill_writer *spill_run_begin(spill *s);
int spill_run_put(spill_writer *w, const spill_rec *r);
int spill_run_end(spill_writer *w);     /* closes; the run joins the spill */
void spill_run_abort(spill_writer *w);  /* discard a run after a failure */

/* Runs written so far, bytes written (compressed), merge passes made. */
uint64_t spill_runs(const spill *s);
uint64_t spill_bytes(const spill *s);
uint64_t spill_passes(const spill *s);
const char *spill_errmsg(const spill *s);

/* Merge every run into one stream, (hash, key) order, equal keys summed.
 * Returns NULL/-1 on failure (errno, spill_errmsg).  spill_merge_next returns
 * 1 with *r filled, 0 at the end, -1 on error (corrupt or unreadable run). */
typedef struct spill_merge spill_merge;
spill_merge *spill_merge_open(spill *s);
int spill_merge_next(spill_merge *m, spill_rec *r);
void spill_merge_close(spill_merge *m);

#endif
