/*
 * spill.h - run files and their merge, for counting in a fixed memory budget.
 *
 * A spill owns a private directory (mkdtemp under the tmpdir) holding run
 * files: sequences of (hash, key, count) records sorted by (hash, key bytes),
 * or in key order (see spill_set_key_order), zstd-compressed.  Tables evict
 * into runs when they reach their budget; at the end the runs are merged
 * (multi-pass when there are more runs than file descriptors allow) into one
 * stream in the same order with the counts of equal keys summed.  Temporary
 * files are removed by spill_destroy, at exit, and on SIGINT, SIGTERM and
 * SIGHUP (the process then dies of that signal).
 *
 * Thread safety: spill_run_* on different writers may run concurrently
 * (several tables evict at once); creating and merging are single-threaded.
 */
#ifndef TALLY_SPILL_H
#define TALLY_SPILL_H

#include <stddef.h>
#include <signal.h>
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

/* The signals on which every spill's files are removed before the process
 * dies of the signal (*n of them). */
const int *spill_signals(size_t *n);

/* Write one run.  Records must come in (hash, key) order (or in key order,
 * spill_set_key_order) with no repeated key.  Returns NULL / -1 on failure
 * with errno set (ENOSPC for a full disk); spill_errmsg then reads
 * "TMPDIR: No space left on device" style text, and the partial file is
 * already removed.  spill_run_end frees the writer whatever it returns;
 * after a failed spill_run_put, call spill_run_abort.
 * Each writer is independent: different writers may be used concurrently. */
typedef struct spill_writer spill_writer;
spill_writer *spill_run_begin(spill *s);
int spill_run_put(spill_writer *w, const spill_rec *r);
int spill_run_end(spill_writer *w);     /* closes; the run joins the spill */
void spill_run_abort(spill_writer *w);  /* discard a run after a failure */

/* Run files written so far (evictions, sorted runs of order.c and the runs
 * of intermediate merge passes), their compressed bytes, and merge passes
 * made (each level of a multi-pass merge, plus the final merge).
 * spill_errmsg: the last failure's "NAME: reason" ("" when none). */
uint64_t spill_runs(const spill *s);
uint64_t spill_bytes(const spill *s);
uint64_t spill_passes(const spill *s);
const char *spill_errmsg(const spill *s);

/* Merge every run into one stream, in the runs' order, equal keys summed.
 * Returns NULL/-1 on failure (errno, spill_errmsg).  spill_merge_next returns
 * 1 with *r filled, 0 at the end, -1 on error (corrupt or unreadable run). */
typedef struct spill_merge spill_merge;
spill_merge *spill_merge_open(spill *s);
int spill_merge_next(spill_merge *m, spill_rec *r);
void spill_merge_close(spill_merge *m);

/* Opening a merge takes every run written so far: runs are removed as soon
 * as they are consumed, and the rest at spill_merge_close.  Runs written
 * later form the next merge. */

/* ---- Merging ranges of partitions in parallel ---------------------------
 * After spill_set_partitions(s, bits) (before the first run), each run is
 * written as one zstd frame per value of the records' top bits of hash (a
 * table partition), with an index of where each frame starts, so a merge can
 * read a range of partitions alone.  spill_ranges_open takes every run
 * written so far (merging in passes first, if need be, so that nmerges
 * merges open at once stay within the fan-in); spill_ranges_merge opens a
 * merge of the partitions [p0, p1) of them: the merges of different ranges
 * may run in different threads at once, and read in (hash, key) order like
 * spill_merge_next.  spill_ranges_close removes the files, after every merge
 * of the ranges is closed.  Returns NULL on failure (errno, spill_errmsg). */
typedef struct spill_ranges spill_ranges;
void spill_set_partitions(spill *s, unsigned bits);

/* Key order: after spill_set_key_order(s, nranges) (after
 * spill_set_partitions, before the first run), the partitions form nranges
 * ranges (spill_range_start), and each run holds its records in (range, key
 * bytes) order, one frame per range, instead of (hash, key) order.  Merges
 * read in that order too, so that a merge of one range gives its keys in
 * output order for --sort=key.  spill_ranges_merge must then be given whole
 * ranges.  Runs in key order keep the range of each record, not its hash:
 * records read back carry the first hash of their range instead (writers
 * may pass that too).  spill_key_ranges: nranges, or 0 in hash order. */
void spill_set_key_order(spill *s, unsigned nranges);
unsigned spill_key_ranges(const spill *s);

/* The first partition of range i of nranges over nparts partitions: range i
 * covers [start(i), start(i + 1)). */
static inline unsigned spill_range_start(unsigned nparts, unsigned nranges, unsigned i)
{
	return (unsigned)((uint64_t)nparts * i / nranges);
}
spill_ranges *spill_ranges_open(spill *s, unsigned nmerges);
spill_merge *spill_ranges_merge(spill_ranges *g, unsigned p0, unsigned p1);
void spill_ranges_close(spill_ranges *g);

/* ---- Fan-in ------------------------------------------------------------ */

/* Most runs read at once.  The default comes from RLIMIT_NOFILE less a
 * margin, at most 256, or from the environment variable TALLY_SPILL_FANIN
 * (2 or more) when that is smaller; spill_set_fanin overrides it (n >= 2;
 * tests force multi-pass merges with 2 or 3). */
unsigned spill_fanin(const spill *s);
void spill_set_fanin(spill *s, unsigned n);

/* Lower the fan-in, if need be, so that the readers of one merge take about
 * bytes of memory at most (a reader costs about 320 KiB, zstd included;
 * the fan-in stays 2 or more). */
void spill_set_memory(spill *s, uint64_t bytes);

/* What each of ways merges reading at the same time may take (ways 0 is
 * 1): *fan runs at once (2 at the least) and *mem bytes of readers (0: no
 * bound), its share of the fan-in and of spill_set_memory's bytes. */
void spill_share(const spill *s, unsigned ways, unsigned *fan, uint64_t *mem);

/* The private directory, or NULL while no run has been written. */
const char *spill_dir(const spill *s);

/* ---- Runs kept apart, for other modules' external sorts (order.c) -------
 * Same files, format, error messages and cleanup as the runs above, but the
 * records may come in any order (the hash field is the caller's to use) and
 * the finished run is handed back instead of joining the merge. */
typedef struct spill_file spill_file;

/* How many of the n runs from files[0] one merge reads at once: at most
 * fan, and while their readers take mem bytes at most (0: no bound), a
 * reader costing about 320 KiB and twice the run's longest key; at least
 * 2 when n allows. */
size_t spill_group(spill_file *const *files, size_t n, unsigned fan, uint64_t mem);

/* Close w like spill_run_end and return the run, or NULL on failure (errno,
 * spill_errmsg; the file is removed).  w is freed either way. */
spill_file *spill_run_end_file(spill_writer *w);

/* Read f's records in the order written: 1 with *r filled (key valid until
 * the next call), 0 at the end, -1 on a corrupt, truncated or unreadable
 * file (errno, spill_errmsg).  Opening takes f over: its file is removed
 * when the reader is closed.  spill_reader_open returns NULL on failure and
 * f then stays the caller's. */
typedef struct spill_reader spill_reader;
spill_reader *spill_reader_open(spill_file *f);
int spill_reader_next(spill_reader *r, spill_rec *rec);
void spill_reader_close(spill_reader *r);

/* Remove a file that will not be read. */
void spill_file_remove(spill_file *f);

/* ---- Cleanup ----------------------------------------------------------- */

/* Remove every temporary file and directory of every spill of this process.
 * Async-signal-safe.  From then on no spill of the process can make a file:
 * meant for the end of the process (the atexit hook spill_create installs).
 * spill_destroy must come after every writer, reader, merge and order using
 * the spill is closed; it removes the files left. */
void spill_cleanup_all(void);

/* The same, and the temporary file of every open output writer, for a
 * signal that ends the process: run files being made then wait a while for
 * the end rather than fail.  spill_create installs a handler that calls it,
 * then dies of the signal, for each of spill_signals that has its default
 * action; a signal the program ignores or handles is left alone
 * (tally_signal_cleanup is this function, for such a handler). */
void spill_signal_cleanup(void);

/* fn also runs in spill_signal_cleanup (async-signal-safe): the output
 * writer's, for its temporary files. */
void spill_also_on_signal(void (*fn)(void));

/* Block spill_signals in this thread (the mask before in *old), so that no
 * cleanup runs between making a temporary file and listing it; unblock
 * puts *old back. */
void spill_block_signals(sigset_t *old);
void spill_unblock_signals(const sigset_t *old);

#endif
