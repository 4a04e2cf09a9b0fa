/*
 * mem.h - the one allocation layer, which counts.
 *
 * Every byte of tables, key storage, I/O buffers and sort and spill buffers is
 * allocated here under the component that owns it, so the memory budget and
 * the statistics read real figures.  Counters are process-wide relaxed
 * atomics (allocations are rare and large on the hot path: table arrays and
 * arena blocks, never single keys).  All functions are thread-safe.
 */
#ifndef TALLY_MEM_H
#define TALLY_MEM_H

#include <stddef.h>
#include <stdint.h>

typedef enum mem_component {
	MEM_TABLE = 0,  /* hash table slot arrays */
	MEM_POOL,       /* key bytes (the intern pool's arenas) */
	MEM_IO,         /* input buffers and mapped windows in flight */
	MEM_SPILL,      /* run writers, readers, merge and sort buffers */
	MEM_OTHER,      /* everything else worth counting */
	MEM_NCOMPONENTS
} mem_component;

/* malloc/calloc/realloc/free that count bytes against c.  They return NULL
 * on failure (or on an injected failure, see mem_fail_after).  mem_free and
 * mem_realloc must be given the size the block was allocated with. */
void *mem_alloc(mem_component c, size_t size);
void *mem_calloc(mem_component c, size_t n, size_t size);
void *mem_realloc(mem_component c, void *p, size_t old_size, size_t new_size);
void  mem_free(mem_component c, void *p, size_t size);

/* mem_calloc(c, 1, size) on cache lines of its own: the block starts on a
 * line and no other allocation shares its last line.  For the state that a
 * thread writes for every key or record (tables, pools, tokenizer workers,
 * run readers and writers, merges): two such blocks of different threads
 * on one line would make each thread's writes evict the line the other is
 * reading.  Freed with mem_free. */
#define MEM_LINE 64
void *mem_calloc_lines(mem_component c, size_t size);

/* Room for one more item in the array arr holding n of *cap items of elem
 * bytes: arr itself while n < *cap, else the array grown to twice *cap (to
 * first when empty), with *cap updated.  NULL when out of memory (arr and
 * *cap unchanged).  Inline, as some callers add an item per key;
 * mem_grow_full is the out-of-line growth. */
void *mem_grow_full(mem_component c, void *arr, size_t *cap, size_t elem, size_t first);

/* Make the byte buffer *buf (*cap bytes) hold at least need bytes: grown to
 * twice its size or to need, whichever is more, and to 64 at least.  For a
 * copy of one key at a time.  Returns 0, or -1 when out of memory (*buf and
 * *cap unchanged, errno ENOMEM). */
int mem_reserve(mem_component c, char **buf, size_t *cap, size_t need);

static inline void *mem_grow(mem_component c, void *arr, size_t *cap, size_t n, size_t elem,
	size_t first)
{
	return n < *cap ? arr : mem_grow_full(c, arr, cap, elem, first);
}

/* Zero-filled memory for large arrays that are written at random (table
 * slots): from MEM_HUGE_MIN bytes up it is mapped on its own, aligned for
 * transparent huge pages and advised to use them (fewer page faults and TLB
 * misses), and already written (no zero-page faults later).  Free with
 * mem_free_zeroed and the same size. */
#define MEM_HUGE_MIN ((size_t)2 << 20)
void *mem_alloc_zeroed(mem_component c, size_t size);
void  mem_free_zeroed(mem_component c, void *p, size_t size);

/* Records ahead whose keys a loop over sorted records prefetches: the keys
 * of sorted records lie all over memory (pools, arenas). */
#define PREFETCH_AHEAD 8

/* The same for a loop that does little more than load each key. */
#define PREFETCH_FAR 32

/* Count bytes that are not allocated here (mapped input windows). */
void mem_account(mem_component c, int64_t delta);

/* An engine begins or ends: the peaks start again from what is held when
 * one begins while no other is alive. */
void mem_engine_begin(void);
void mem_engine_end(void);

/* Bytes held now and at most, per component and in all. */
uint64_t mem_current(mem_component c);
uint64_t mem_peak(mem_component c);
uint64_t mem_current_total(void);
uint64_t mem_peak_total(void);

/* Overflow-checked arithmetic: 0 and the result in *out, or -1 on overflow. */
static inline int mem_mul(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int mem_add(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

/* Testing: make the n-th counted allocation from now fail (n >= 1), or
 * never (n = 0).  Also read from the environment variable TALLY_FAIL_ALLOC
 * at the first allocation, so command-line tests can take the paths.
 * Returns the allocations that were still to come before the one set
 * before failed: 0 when it has failed (or none was set). */
uint64_t mem_fail_after(uint64_t n);

#endif
