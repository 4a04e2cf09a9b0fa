/*
 * pool.c - key intern pool (see pool.h).
 */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "radix.h"

typedef struct pool_block {
	size_t cap;
	size_t used;
	char   data[];
} pool_block;

typedef struct pool_large {
	char  *key;
	size_t len;
} pool_large;

struct pool {
	size_t       block_size;   /* data bytes per block */
	size_t       large_min;    /* keys at least this long get their own allocation */
	pool_block **blocks;       /* the last one is the one being filled */
	size_t       nblocks, blocks_cap;
	pool_large  *large;
	size_t       nlarge, large_cap;
	size_t       bytes;
};

static const char empty_key[POOL_READ] = "";  /* readable as any short key */

pool *pool_create(size_t block_size)
{
	pool *p = mem_calloc_lines(MEM_POOL, sizeof *p);
	if (!p)
		return NULL;
	p->block_size = block_size < 4096 ? 4096 : block_size;
	p->large_min = p->block_size / 4;
	p->bytes = sizeof *p;
	return p;
}

static void free_block(pool_block *b)
{
	mem_free(MEM_POOL, b, sizeof *b + b->cap + POOL_READ);
}

void pool_destroy(pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nblocks; i++)
		free_block(p->blocks[i]);
	for (size_t i = 0; i < p->nlarge; i++)
		mem_free(MEM_POOL, p->large[i].key, p->large[i].len);
	mem_free(MEM_POOL, p->blocks, p->blocks_cap * sizeof *p->blocks);
	mem_free(MEM_POOL, p->large, p->large_cap * sizeof *p->large);
	mem_free(MEM_POOL, p, sizeof *p);
}

size_t pool_bytes(const pool *p)
{
	return p->bytes;
}

/* mem_grow, the bytes added counted in the pool's size. */
static void *pool_grow(pool *p, void *arr, size_t *cap, size_t n, size_t elem)
{
	size_t old = *cap;
	void *q = mem_grow(MEM_POOL, arr, cap, n, elem, 16);
	if (q)
		p->bytes += (*cap - old) * elem;
	return q;
}

static const char *intern_large(pool *p, const char *key, size_t len)
{
	pool_large *v = pool_grow(p, p->large, &p->large_cap, p->nlarge, sizeof *v);
	if (!v)
		return NULL;
	p->large = v;
	char *k = mem_alloc(MEM_POOL, len);
	if (!k)
		return NULL;
	memcpy(k, key, len);
	p->large[p->nlarge++] = (pool_large){ k, len };
	p->bytes += len;
	return k;
}

const char *pool_intern(pool *p, const char *key, size_t len)
{
	if (len == 0)
		return empty_key;
	if (len >= p->large_min)
		return intern_large(p, key, len);
	pool_block *b = p->nblocks ? p->blocks[p->nblocks - 1] : NULL;
	if (!b || b->cap - b->used < len) {
		pool_block **v = pool_grow(p, p->blocks, &p->blocks_cap, p->nblocks, sizeof *v);
		if (!v)
			return NULL;
		p->blocks = v;
		b = mem_alloc(MEM_POOL, sizeof *b + p->block_size + POOL_READ);
		if (!b)
			return NULL;
		b->cap = p->block_size;
		b->used = 0;
		p->blocks[p->nblocks++] = b;
		p->bytes += sizeof *b + p->block_size + POOL_READ;
	}
	char *k = b->data + b->used;
	memcpy(k, key, len);
	b->used += len;
	return k;
}

static int cmp_ref(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*((const pool_ref *)a)->key;
	uintptr_t y = (uintptr_t)*((const pool_ref *)b)->key;
	return (x > y) - (x < y);
}

static uint64_t ref_address(const void *r)
{
	return (uint64_t)(uintptr_t)*((const pool_ref *)r)->key;
}

static int cmp_block(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(pool_block *const *)a;
	uintptr_t y = (uintptr_t)*(pool_block *const *)b;
	return (x > y) - (x < y);
}

static int cmp_large(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const pool_large *)a)->key;
	uintptr_t y = (uintptr_t)((const pool_large *)b)->key;
	return (x > y) - (x < y);
}

int pool_compact(pool *p, pool_ref *live, size_t n)
{
	/* Survivors and blocks both in address order: sliding each survivor
	 * down to the write cursor never overwrites a survivor not yet moved. */
	if (n > 1)
		radix_sort64_or_qsort(live, n, sizeof *live, ref_address, cmp_ref, MEM_POOL);
	if (p->nblocks > 1)
		qsort(p->blocks, p->nblocks, sizeof *p->blocks, cmp_block);
	if (p->nlarge > 1)
		qsort(p->large, p->nlarge, sizeof *p->large, cmp_large);

	size_t bi = 0, off = 0, keep_large = 0, li = 0;
	for (size_t i = 0; i < n; i++) {
		const char *src = *live[i].key;
		size_t len = live[i].len;
		if (len == 0)
			continue;
		if (len >= p->large_min) {
			/* Large keys stay where they are; those not named are freed. */
			while (li < p->nlarge && p->large[li].key != src) {
				mem_free(MEM_POOL, p->large[li].key, p->large[li].len);
				p->bytes -= p->large[li].len;
				li++;
			}
			if (li < p->nlarge)
				p->large[keep_large++] = p->large[li++];
			continue;
		}
		while (p->blocks[bi]->cap - off < len) {
			p->blocks[bi]->used = off;
			bi++;
			off = 0;
		}
		char *dst = p->blocks[bi]->data + off;
		if (dst != src)
			memmove(dst, src, len);
		*live[i].key = dst;
		off += len;
	}
	for (; li < p->nlarge; li++) {
		mem_free(MEM_POOL, p->large[li].key, p->large[li].len);
		p->bytes -= p->large[li].len;
	}
	p->nlarge = keep_large;

	/* Blocks past the cursor are empty now. */
	size_t keep = p->nblocks ? bi + 1 : 0;
	if (keep && off == 0 && bi == 0 && n == 0)
		keep = 0;
	if (keep)
		p->blocks[bi]->used = off;
	for (size_t i = keep; i < p->nblocks; i++) {
		p->bytes -= sizeof *p->blocks[i] + p->blocks[i]->cap + POOL_READ;
		free_block(p->blocks[i]);
	}
	p->nblocks = keep;
	return 0;
}
