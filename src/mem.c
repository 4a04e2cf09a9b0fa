/*
 * mem.c - counting allocation layer (see mem.h).
 */
#include "mem.h"
#include "resources.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* One counter pair per cache line so workers do not share lines. */
typedef struct mem_counter {
	_Atomic int64_t cur;
	_Atomic int64_t peak;
	char pad[64 - 2 * sizeof(int64_t)];
} mem_counter;

static mem_counter counters[MEM_NCOMPONENTS];
static mem_counter total;
static _Atomic uint64_t fail_countdown;
static _Atomic int fail_env_read;

static void raise_peak(mem_counter *m, int64_t now)
{
	int64_t p = atomic_load_explicit(&m->peak, memory_order_relaxed);
	while (now > p && !atomic_compare_exchange_weak_explicit(&m->peak, &p, now,
			memory_order_relaxed, memory_order_relaxed))
		;
}

void mem_account(mem_component c, int64_t delta)
{
	int64_t now = atomic_fetch_add_explicit(&counters[c].cur, delta, memory_order_relaxed) + delta;
	int64_t all = atomic_fetch_add_explicit(&total.cur, delta, memory_order_relaxed) + delta;
	if (delta > 0) {
		raise_peak(&counters[c], now);
		raise_peak(&total, all);
	}
}

/* Large blocks (table arrays, arena blocks, buffers) are mapped on their
 * own, so that freeing them gives the memory back to the kernel at once.
 * Without a fixed threshold glibc raises it as blocks are freed and keeps
 * them in per-thread arenas, where the next phase cannot reuse them: the
 * resident size would then exceed what the components hold. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
	/* Under a limit of address space or data, the arenas glibc gives
	 * threads (each reserving 64 MiB) took what the default budget
	 * leaves: 2 threads failed under ulimit -v 200000, 32 under 2 GiB.
	 * Threads then share the main one: what they allocate while counting
	 * is mostly large blocks, mapped on their own, with no arena. */
	if (resources_rlimit(RLIMIT_AS) != UINT64_MAX || resources_rlimit(RLIMIT_DATA) != UINT64_MAX)
		mallopt(M_ARENA_MAX, 1);
#endif
}

/* A failed allocation, errno set as malloc's own failure sets it (fault
 * injection and size overflows included). */
static void *no_memory(void)
{
	errno = ENOMEM;
	return NULL;
}

/* Returns 1 when this allocation must fail (fault injection). */
static int inject_failure(void)
{
	if (!atomic_load_explicit(&fail_env_read, memory_order_relaxed)) {
		atomic_store(&fail_env_read, 1);
		tune_malloc();
		const char *s = getenv("TALLY_FAIL_ALLOC");
		if (s && *s)
			atomic_store(&fail_countdown, strtoull(s, NULL, 10));
	}
	uint64_t n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	if (n == 0)
		return 0;
	/* Only the caller that takes the counter from 1 to 0 fails. */
	while (n > 0 && !atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
		;
	return n == 1;
}

void *mem_alloc(mem_component c, size_t size)
{
	if (inject_failure())
		return no_memory();
	void *p = malloc(size ? size : 1);
	if (p)
		mem_account(c, (int64_t)size);
	return p;
}

void *mem_calloc(mem_component c, size_t n, size_t size)
{
	size_t bytes;
	if (mem_mul(n, size, &bytes) || inject_failure())
		return no_memory();
	void *p = calloc(bytes ? bytes : 1, 1);
	if (p)
		mem_account(c, (int64_t)bytes);
	return p;
}

void *mem_calloc_lines(mem_component c, size_t size)
{
	size_t bytes;
	if (mem_add(size ? size : 1, MEM_LINE - 1, &bytes) || inject_failure())
		return no_memory();
	bytes &= ~(size_t)(MEM_LINE - 1);
	void *p = aligned_alloc(MEM_LINE, bytes);
	if (!p)
		return NULL;
	memset(p, 0, bytes);
	mem_account(c, (int64_t)size);
	return p;
}

void *mem_realloc(mem_component c, void *p, size_t old_size, size_t new_size)
{
	if (inject_failure())
		return no_memory();
	void *q = realloc(p, new_size ? new_size : 1);
	if (q)
		mem_account(c, (int64_t)new_size - (int64_t)old_size);
	return q;
}

void *mem_grow_full(mem_component c, void *arr, size_t *cap, size_t elem, size_t first)
{
	size_t ncap = *cap ? *cap * 2 : first, bytes;
	if (ncap < *cap || mem_mul(ncap, elem, &bytes))
		return NULL;
	void *q = mem_realloc(c, arr, *cap * elem, bytes);
	if (q)
		*cap = ncap;
	return q;
}

int mem_reserve(mem_component c, char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap * 2 > need ? *cap * 2 : need < 64 ? 64 : need;
	char *b = mem_realloc(c, *buf, *cap, ncap);
	if (!b) {
		errno = ENOMEM;
		return -1;
	}
	*buf = b;
	*cap = ncap;
	return 0;
}

void *mem_alloc_zeroed(mem_component c, size_t size)
{
	if (size < MEM_HUGE_MIN) {
		/* Written here rather than left to calloc: a fresh mapping that
		 * is read first gets the shared zero page, and the write that
		 * follows faults again and flushes the TLB of every thread. */
		void *p = mem_alloc(c, size);
		if (p)
			memset(p, 0, size);
		return p;
	}
	if (inject_failure())
		return no_memory();
	/* Map one huge page more than needed and trim to a 2 MiB boundary. */
	size_t align = MEM_HUGE_MIN, len = size + align;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	char *p = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
	if (p > m)
		munmap(m, (size_t)(p - m));
	size_t tail = len - (size_t)(p - m) - size;
	if (tail)
		munmap(p + size, tail);
#ifdef MADV_HUGEPAGE
	madvise(p, size, MADV_HUGEPAGE);
#endif
	memset(p, 0, size);
	mem_account(c, (int64_t)size);
	return p;
}

void mem_free_zeroed(mem_component c, void *p, size_t size)
{
	if (!p)
		return;
	if (size < MEM_HUGE_MIN) {
		mem_free(c, p, size);
		return;
	}
	munmap(p, size);
	mem_account(c, -(int64_t)size);
}

void mem_free(mem_component c, void *p, size_t size)
{
	if (!p)
		return;
	free(p);
	mem_account(c, -(int64_t)size);
}

/* Engines alive.  The first of a new series starts the peaks again from
 * what is held now, so that a program's later engines report their own. */
static _Atomic unsigned engines;

static void restart_peak(mem_counter *m)
{
	atomic_store_explicit(&m->peak, atomic_load_explicit(&m->cur, memory_order_relaxed),
		memory_order_relaxed);
}

void mem_engine_begin(void)
{
	if (atomic_fetch_add(&engines, 1) != 0)
		return;
	for (int c = 0; c < MEM_NCOMPONENTS; c++)
		restart_peak(&counters[c]);
	restart_peak(&total);
}

void mem_engine_end(void)
{
	atomic_fetch_sub(&engines, 1);
}

uint64_t mem_current(mem_component c)
{
	int64_t v = atomic_load_explicit(&counters[c].cur, memory_order_relaxed);
	return v > 0 ? (uint64_t)v : 0;
}

uint64_t mem_peak(mem_component c)
{
	return (uint64_t)atomic_load_explicit(&counters[c].peak, memory_order_relaxed);
}

uint64_t mem_current_total(void)
{
	int64_t v = atomic_load_explicit(&total.cur, memory_order_relaxed);
	return v > 0 ? (uint64_t)v : 0;
}

uint64_t mem_peak_total(void)
{
	return (uint64_t)atomic_load_explicit(&total.peak, memory_order_relaxed);
}

uint64_t mem_fail_after(uint64_t n)
{
	atomic_store(&fail_env_read, 1);
	return atomic_exchange(&fail_countdown, n);
}
