/*
 * sketch.h - how many distinct keys the counting tables have seen, for the
 * progress line: a HyperLogLog sketch of the keys' XXH3 hashes, one per
 * table.  The threads' tables hold the same key as often as it reached more
 * than one of them, and forget the keys they evict: the union of their
 * sketches counts each key once, evicted or not.
 *
 * 2^14 registers: the estimate is within about 1% (its standard error is
 * 0.8%).  The exact figure comes from the merge (tally_stats.distinct).
 *
 * One thread adds (the table's); any thread may read, at any time: the
 * registers only grow, byte by byte.
 */
#ifndef TALLY_SKETCH_H
#define TALLY_SKETCH_H

#include <stdatomic.h>
#include <stdint.h>

#define SKETCH_BITS 14
#define SKETCH_REGS (1u << SKETCH_BITS)

typedef struct sketch {
	_Atomic unsigned char reg[SKETCH_REGS];
} sketch;

/* Register: the hash's top SKETCH_BITS bits; value: the position of the
 * first 1 in the bits after them (1 to 64 - SKETCH_BITS + 1). */
static inline void sketch_add(sketch *s, uint64_t hash)
{
	unsigned i = (unsigned)(hash >> (64 - SKETCH_BITS));
	uint64_t rest = hash << SKETCH_BITS | (uint64_t)1 << (SKETCH_BITS - 1);
	unsigned char rank = (unsigned char)(__builtin_clzll(rest) + 1);
	if (rank > atomic_load_explicit(&s->reg[i], memory_order_relaxed))
		atomic_store_explicit(&s->reg[i], rank, memory_order_relaxed);
}

/* The union of sketches, as plain registers: zero them, then fold in each
 * sketch with sketch_union. */
typedef struct sketch_sum {
	unsigned char reg[SKETCH_REGS];
} sketch_sum;

void   sketch_union(sketch_sum *sum, const sketch *s);
/* Distinct hashes in the union (Ertl's estimator: no bias to correct from
 * the smallest counts to the largest). */
double sketch_estimate(const sketch_sum *sum);

#endif
