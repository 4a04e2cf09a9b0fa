/*
 * input.h - sources of bytes: mmap windows for large regular files, read()
 * into chunked buffers for small files, pipes, stdin and devices, and zstd
 * streams (detected by magic number) decompressed on the fly.
 *
 * A source hands out chunks that end at record boundaries (through a cut
 * callback, normally tok_cut), carrying the partial record at the end of one
 * read into the next chunk.  Chunks stay valid until released; the caller
 * bounds how many are in flight (at most max_inflight unreleased chunks when
 * calling input_next), so memory for input stays bounded whatever the size
 * of the file.  A source is used from one thread (the reader); chunks may be
 * read by any thread until released, and released from the reader's thread.
 */
#ifndef TALLY_INPUT_H
#define TALLY_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tally.h"

/* What a cut hands on besides cont: the key so far of a record split by
 * force (fields mode), as bytes for the next chunk's worker.  in: what the
 * buffer being cut starts with (in_len 0: nothing); out: where the cut
 * writes what the next chunk starts with (at most out_cap bytes), setting
 * out_len (0: nothing). */
typedef struct input_prefix {
	const char *in;
	size_t      in_len;
	char       *out;
	size_t      out_len, out_cap;
} input_prefix;

/* The cut callback: see tok_cut in tokenize.h for the contract.  pre is
 * never NULL; its out buffer is there when full is set and the source was
 * opened with a prefix_cap. */
typedef size_t (*input_cut_fn)(const void *ctx, const char *buf, size_t len, int eof,
	int full, uint32_t cont_in, uint32_t *cont, input_prefix *pre);

/* Chunk buffers that closed sources gave back, kept for the sources opened
 * next, at most keep of them.  A buffer of a chunk is 1 MiB or more, mapped
 * on its own (mem.c); unmapping it in a threaded process makes every CPU
 * flush its TLB: with many small files, each read into a fresh buffer, that
 * took most of the time (20,000 files of 10 KB: 1.95 s, 1.4 s with the
 * buffers kept; one file of their 200 MB: 0.87 s).  New buffers are made
 * only when none is kept, so that those kept and those in use are never
 * more than were once in use at the same time.  Thread-safe; the buffers
 * kept count under MEM_IO until input_buffers_trim (when the inputs are
 * read) or input_buffers_destroy (after the sources that use it). */
typedef struct input_buffers input_buffers;
input_buffers *input_buffers_create(unsigned keep);
void input_buffers_trim(input_buffers *b);
void input_buffers_destroy(input_buffers *b);

/* A buffer of size bytes from b (one kept, else a new one; NULL when out of
 * memory), and back to it (kept, or freed when b keeps enough).  b may be
 * NULL: each buffer is then allocated and freed. */
void *input_buffer_get(input_buffers *b, size_t size);
void  input_buffer_put(input_buffers *b, void *p, size_t size);

typedef struct input_opts {
	input_buffers *buffers;     /* where chunk buffers come from and go; NULL:
	                             * each source allocates and frees its own */
	tally_io     io;            /* auto, mmap or read */
	size_t       chunk_size;    /* bytes per chunk; 0 = the default of the source's kind */
	size_t       min_capacity;  /* a chunk buffer holds at least this (max key + slack) */
	unsigned     max_inflight;  /* chunks the caller may hold unreleased */
	size_t       prefix_cap;    /* the most a cut's prefix holds; 0 = the cut makes none */
	input_cut_fn cut;
	const void  *cut_ctx;
	_Atomic uint64_t *live;     /* if set, also counts the stored bytes as
	                             * they are read, before a chunk is whole
	                             * (the progress line of a slow pipe);
	                             * bytes read twice are counted once */
} input_opts;

/*
 * --io=auto maps regular files of at least this many bytes and read()s the
 * smaller ones: below it read() is faster (the fixed cost of mapping
 * dominates), above it the two are even (figures in input.c).
 */
#define INPUT_MMAP_THRESHOLD ((uint64_t)1 << 20)

/*
 * Bytes per chunk when chunk_size is 0: 1 MiB, and 4 MiB for zstd streams,
 * whose decoder runs faster handing out larger chunks (figures in input.c).
 */
#define INPUT_DEFAULT_CHUNK ((size_t)1 << 20)
#define INPUT_ZSTD_CHUNK    ((size_t)4 << 20)

typedef struct input_source input_source;

typedef struct input_chunk {
	const char *data;
	size_t      len;
	uint32_t    cont;       /* state data[0] starts in (0 = record boundary) */
	uint32_t    cont_out;   /* state the next chunk starts in */
	const char *prefix;     /* the cut's bytes for this chunk (input_prefix), or NULL */
	size_t      prefix_len;
	int         first;      /* first chunk of this input */
	int         mapped;     /* data points into a file mapping (guard with input_guard) */
	void       *handle;     /* for input_release */
} input_chunk;

/* Open path ("-" = stdin).  Returns NULL with "NAME: reason" in err (a
 * directory, a missing or unreadable file) and errno set (ENOMEM when out of
 * memory).  Detects zstd by magic number, also on pipes.  Standard input is
 * named as coreutils wc names it: "-" when path is "-", "standard input"
 * when path is NULL (no file operands); it is never closed.  Regular files
 * are mapped (o->io mmap, or auto and at least INPUT_MMAP_THRESHOLD bytes) or
 * read; files that report size 0 (/proc) and files that cannot be mapped are
 * read. */
input_source *input_open(const char *path, const input_opts *o, char *err, size_t errlen);

/* Wrap a memory buffer (not copied; must outlive the source).  Chunks point
 * into it and are cut as a file's would be.  Returns NULL when out of memory. */
input_source *input_open_memory(const void *buf, size_t len, const char *name, const input_opts *o);

/* Next chunk.  Returns 1 with *c filled, 0 at the end of the input, or -1 on
 * an error with "NAME: reason" in err (read error, file shrank under the
 * mapping, truncated or corrupt zstd stream) and errno set (ENOMEM when out of
 * memory).  After an error, every later call returns -1 with the same
 * message.  A chunk is never empty and holds at most max(chunk size,
 * min_capacity) bytes. */
int input_next(input_source *s, input_chunk *c, char *err, size_t errlen);

/* Give a chunk back (its buffer is reused, its window unmapped).  handle may
 * be NULL (memory sources have none). */
void input_release(input_source *s, void *handle);

/* Close; all chunks must have been released.  Frees every buffer and window
 * (MEM_IO returns to what it was before input_open).  s may be NULL. */
void input_close(input_source *s);

/* The bytes of a read source's chunk buffer under o (input_buffer_get). */
size_t input_buffer_size(const input_opts *o);

/* Small inputs, read whole into the caller's buffer (the engine packs many
 * into one, to be counted as one piece of work).  input_whole_size: the
 * bytes to read of a regular file opened by name that is read, not mapped
 * (io and size), not compressed, not split and not begun; else 0.
 * input_whole reads it into buf (cap bytes): 1 with *c filled as input_next
 * fills the only chunk of an input (data in buf, handle NULL), the source
 * then at its end; 0 when it is not such a file or holds more than cap
 * bytes now (nothing consumed: read it with input_next); -1 on an error, as
 * input_next. */
uint64_t input_whole_size(const input_source *s);
int      input_whole(input_source *s, char *buf, size_t cap, input_chunk *c,
	char *err, size_t errlen);

/* Parts of a file (--shard).  A regular file of known size opened by name,
 * and not compressed, or a memory source, is splittable: before its first
 * chunk, input_range makes it hand out only the bytes [lo, hi) (both record
 * boundaries: the cut takes hi as the end of the input), and input_size
 * then says hi - lo.  Once input_next has said the range is done,
 * input_extend goes on past hi to the end of the file (an n-gram's last
 * words).  input_pread reads bytes anywhere in the file, without moving
 * the source (to find where a part begins, or its header).  Return 0, or
 * -1 with errno set (input_pread: the bytes read, or -1). */
int      input_splittable(const input_source *s);
int      input_range(input_source *s, uint64_t lo, uint64_t hi);
int      input_extend(input_source *s);
ssize_t  input_pread(input_source *s, void *buf, size_t n, uint64_t at);

/* A regular file opened by name, of known size (not standard input, not a
 * /proc file), compressed or not, can be opened again: 1 with *id filled,
 * which changes when the file does, else 0. */
typedef struct input_id {
	uint64_t dev, ino, size;
	int64_t  mtime_sec;
	long     mtime_nsec;
} input_id;
int      input_identity(const input_source *s, input_id *id);

int      input_is_compressed(const input_source *s);
/* Stored size: st_size for regular files (compressed size for zstd), the
 * length for memory, 0 when unknown (pipes, devices). */
uint64_t input_size(const input_source *s);
/* Stored bytes consumed so far; safe to call from any thread (progress). */
uint64_t input_bytes_read(const input_source *s);
const char *input_name(const input_source *s);

/* Run fn(arg) so that a SIGBUS raised by touching a mapped input (the file
 * shrank) makes input_guard return -1 instead of killing the process.
 * Returns fn's result otherwise.  Thread-safe; fn must not hold locks or
 * leave shared state half-updated at points where it reads mapped bytes.
 * Guards nest.  The SIGBUS handler is installed at the first call; a SIGBUS
 * outside any guard goes to the handler installed before it, or kills the
 * process as it would have. */
int input_guard(int (*fn)(void *arg), void *arg);

#endif
