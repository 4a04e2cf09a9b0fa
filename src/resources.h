/*
 * resources.h - defaults for the resources a run may use.  tally_default_memory
 * and tally_parse_size are public (tally.h); the rest is internal.
 */
#ifndef TALLY_RESOURCES_H
#define TALLY_RESOURCES_H

#include <stdint.h>
#include <sys/resource.h>

/* The soft limit on resource (RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK...),
 * UINT64_MAX when there is none or it cannot be read.  Inline: mem.c asks
 * it too, without the rest of this module. */
static inline uint64_t resources_rlimit(int resource)
{
	struct rlimit rl;
	if (getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return (uint64_t)rl.rlim_cur;
}

/* The CPUs this process may run on (sched_getaffinity), at least 1. */
unsigned resources_default_threads(void);

/* The budget of a run of threads workers when none is given:
 * tally_default_memory, but under RLIMIT_AS or RLIMIT_DATA at most two
 * thirds of what is left of the limit once the threads' stacks and buffers
 * are taken out (less than half the limit only when the threads take more
 * than a quarter of it).  0 when nothing is left. */
uint64_t resources_default_budget(unsigned threads);

#endif
