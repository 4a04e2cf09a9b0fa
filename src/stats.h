/*
 * stats.h - what a run cost: resident memory from the kernel, a sampler
 * thread that takes a timeline a few times a second (for the progress line
 * and the SVG report), and the report itself.  Statistics printing (human
 * and JSON) and progress rendering are declared in tally.h.
 */
#ifndef TALLY_STATS_H
#define TALLY_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "tally.h"
#include "mem.h"

/* Resident set size now and at most (VmRSS, VmHWM of /proc/self/status;
 * getrusage as a fallback), in bytes.  Thread-safe. */
uint64_t stats_rss_now(void);
uint64_t stats_rss_peak(void);

/* Monotonic seconds (CLOCK_MONOTONIC), for measuring intervals only.
 * Thread-safe. */
double stats_now(void);

/* Human figures for messages, the progress line and the report.  Each
 * writes a NUL-terminated string into buf (cap bytes; STATS_FIGURE_LEN is
 * always enough) and returns buf.  stats_format_bytes: powers of 1024
 * ("512 B", "41.3 MiB", "212 MiB"); stats_format_count: powers of 1000
 * ("999", "1.2M", "310M").  Thread-safe. */
#define STATS_FIGURE_LEN 24
char *stats_format_bytes(char *buf, size_t cap, uint64_t bytes);
char *stats_format_count(char *buf, size_t cap, uint64_t n);

/* Throughput of a run as the statistics report it: MB/s (10^6 bytes) of
 * decoded input and tokens per second over the counting phase (t_count), or
 * over the whole run when t_count is 0.  Returns 0 when no time was spent. */
double stats_mb_per_s(const tally_stats *st);
double stats_tokens_per_s(const tally_stats *st);

/* One point of the timeline. */
typedef struct stats_sample {
	double   t;                         /* seconds since the start */
	uint64_t bytes_done, bytes_total;
	uint64_t tokens, distinct;
	uint64_t rss;
	uint64_t mem[MEM_NCOMPONENTS];     /* bytes per component */
	double   mbps;                      /* over the last seconds */
	tally_phase phase;
	uint64_t written;                   /* items given out so far */
} stats_sample;

/* Fills the counters of a sample (bytes_done, bytes_total, tokens,
 * distinct, phase, written); the sampler adds t, rss, mem and mbps.  Called from the
 * sampler thread: must only read atomics. */
typedef void (*stats_read_fn)(void *ctx, stats_sample *s);

/* "counting", "merging", "sorting" or "writing". */
const char *stats_phase_name(tally_phase phase);

typedef struct stats_sampler stats_sampler;

/* A kept timeline never grows past this many samples (plus the last one
 * taken at stop): when full, every other sample is dropped and from then on
 * only every second sample is kept, so a run of days stays a few hundred
 * kilobytes while the progress line keeps its pace. */
#define STATS_TIMELINE_MAX 4096

/* Start a thread that samples every interval seconds (t counts from this
 * call; a missed wake-up is skipped, not caught up).  keep: keep the timeline
 * (for the report); progress: call it with each sample (from the sampler
 * thread; may be NULL).  mbps is measured over the last 3 seconds or so.
 * The thread blocks all signals.  Returns NULL when memory or the thread
 * cannot be had. */
stats_sampler *stats_sampler_start(double interval, stats_read_fn read, void *read_ctx,
	int keep, void (*progress)(void *ctx, const tally_progress *p, int final),
	void *progress_ctx);

/* Stop and join: the thread takes one last sample (kept in the timeline,
 * not passed to progress) and ends.  Returns at once whatever the interval.
 * Safe to call twice.  The timeline stays readable until stats_sampler_free. */
void stats_sampler_stop(stats_sampler *s);
/* The kept timeline, oldest first, and its length in *n (0 when keep was
 * not set).  Only after stats_sampler_stop; owned by the sampler. */
const stats_sample *stats_sampler_timeline(const stats_sampler *s, size_t *n);
/* The latest sample as a progress record (for the final call); all zero
 * before the first sample.  Thread-safe. */
void stats_sampler_last(const stats_sampler *s, tally_progress *p);
/* Stop if still running, and free everything.  NULL is ignored. */
void stats_sampler_free(stats_sampler *s);

/* Write the SVG report: throughput and memory (RSS, each component, the
 * budget as a line) against seconds, with the final statistics as a caption.
 * Written through a temporary file renamed into place.  Returns 0, or -1
 * with "FILE: reason" in err. */
int stats_write_report(const char *path, const stats_sample *tl, size_t n,
	const tally_stats *st, char *err, size_t errlen);

#endif
