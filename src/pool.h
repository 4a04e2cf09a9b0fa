/*
 * pool.h - the key intern pool: each distinct key's bytes stored once, in
 * arena blocks, so that a table slot only holds a pointer.
 *
 * Keys are bump-allocated into blocks; a key larger than a quarter of a block
 * gets an allocation of its own.  Nothing is freed key by key: when a table
 * evicts keys, pool_compact slides the surviving keys down inside the blocks
 * (in address order, so no extra copy of the pool is needed) and returns the
 * emptied blocks, so evicted bytes really go back.  Not thread-safe: a pool
 * belongs to one table.
 */
#ifndef TALLY_POOL_H
#define TALLY_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct pool pool;

/* block_size: bytes per arena block (rounded to at least 4 KiB). */
pool *pool_create(size_t block_size);
void  pool_destroy(pool *p);

/* Readable bytes from the start of any stored key of 1 to POOL_READ bytes
 * (the blocks have that much slack at their end), so that short keys can be
 * compared a vector at a time. */
#define POOL_READ 16

/* Copy len bytes of key into the pool.  Returns the stored copy (stable until
 * the next pool_compact), or NULL when out of memory.  The copy is written
 * before the pool's bookkeeping changes, so a fault while reading key leaves
 * the pool consistent (mapped input that shrank). */
const char *pool_intern(pool *p, const char *key, size_t len);

/* Bytes the pool holds (blocks and large keys, allocated size). */
size_t pool_bytes(const pool *p);

/* A surviving key for pool_compact: where its pointer is kept, its length. */
typedef struct pool_ref {
	const char **key;
	size_t       len;
} pool_ref;

/* Keep only the keys that live[i] names (n of them, any order; each must
 * come from this pool), moving them and updating *live[i].key to the new
 * address; free everything else.  live is reordered.  Returns 0, or -1 when
 * the bookkeeping for large keys cannot be allocated (nothing changed). */
int pool_compact(pool *p, pool_ref *live, size_t n);

#endif
