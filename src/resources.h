/*
 * resources.h - defaults for the resources a run may use.  tally_default_memory
 * and tally_parse_size are public (tally.h); the rest is internal.
 */
#ifndef TALLY_RESOURCES_H
#define TALLY_RESOURCES_H

/* The CPUs this process may run on (sched_getaffinity), at least 1. */
unsigned resources_default_threads(void);

#endif
