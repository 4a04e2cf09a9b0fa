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

/* Monotonic seconds. */
double stats_now(void);

/* One point of the timeline. */
typedef struct stats_sample {
	double   t;                         /* seconds since the start */
	uint64_t bytes_done, bytes_total;
	uint64_t tokens, distinct;
	uint64_t rss;
	uint64_t mem[MEM_NCOMPONENTS];     /* bytes per component */
	double   mbps;                      /* over the last seconds */
} stats_sample;

/* Fills the counters of a sample (bytes_done, bytes_total, tokens,
 * distinct); the sampler adds t, rss, mem and mbps.  Called from the sampler
 * thread: must only read atomics. */
typedef void (*stats_read_fn)(void *ctx, stats_sample *s);

typedef struct stats_sampler stats_sampler;

/* Start a thread that samples every interval seconds.  keep: keep the
 * timeline (for the report); progress: call it with each sample (from the
 * sampler thread).  Returns NULL when the thread cannot start. */
stats_sampler *stats_sampler_start(double interval, stats_read_fn read, void *read_ctx,
	int keep, void (*progress)(void *ctx, const tally_progress *p, int final),
	void *progress_ctx);

/* Stop and join.  The timeline stays readable until stats_sampler_free. */
void stats_sampler_stop(stats_sampler *s);
const stats_sample *stats_sampler_timeline(const stats_sampler *s, size_t *n);
/* The latest sample as a progress record (for the final call). */
void stats_sampler_last(const stats_sampler *s, tally_progress *p);
void stats_sampler_free(stats_sampler *s);

/* Write the SVG report: throughput and memory (RSS, each component, the
 * budget as a line) against seconds, with the final statistics as a caption.
 * Written through a temporary file renamed into place.  Returns 0, or -1
 * with "FILE: reason" in err. */
int stats_write_report(const char *path, const stats_sample *tl, size_t n,
	const tally_stats *st, char *err, size_t errlen);

#endif
