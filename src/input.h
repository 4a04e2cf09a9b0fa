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

#include "tally.h"

/* The cut callback: see tok_cut in tokenize.h for the contract. */
typedef size_t (*input_cut_fn)(const void *ctx, const char *buf, size_t len, int eof,
	int full, uint32_t cont_in, uint32_t *cont);

typedef struct input_opts {
	tally_io     io;            /* auto, mmap or read */
	size_t       chunk_size;    /* bytes per chunk (>= 1) */
	size_t       min_capacity;  /* a chunk buffer holds at least this (max key + slack) */
	unsigned     max_inflight;  /* chunks the caller may hold unreleased */
	input_cut_fn cut;
	const void  *cut_ctx;
} input_opts;

typedef struct input_source input_source;

typedef struct input_chunk {
	const char *data;
	size_t      len;
	uint32_t    cont;       /* state data[0] starts in (0 = record boundary) */
	int         first;      /* first chunk of this input */
	int         mapped;     /* data points into a file mapping (guard with input_guard) */
	void       *handle;     /* for input_release */
} input_chunk;

/* Open path ("-" = stdin).  Returns NULL with "NAME: reason" in err (a
 * directory, a missing or unreadable file).  Detects zstd by magic number. */
input_source *input_open(const char *path, const input_opts *o, char *err, size_t errlen);

/* Wrap a memory buffer (not copied; must outlive the source). */
input_source *input_open_memory(const void *buf, size_t len, const char *name, const input_opts *o);

/* Next chunk.  Returns 1 with *c filled, 0 at the end of the input, or -1 on
 * an error with "NAME: reason" in err (read error, file shrank under the
 * mapping, truncated or corrupt zstd stream). */
int input_next(input_source *s, input_chunk *c, char *err, size_t errlen);

/* Give a chunk back (its buffer is reused, its window unmapped). */
void input_release(input_source *s, void *handle);

/* Close; all chunks must have been released. */
void input_close(input_source *s);

int      input_is_compressed(const input_source *s);
uint64_t input_size(const input_source *s);       /* stored size; 0 when unknown */
uint64_t input_bytes_read(const input_source *s); /* stored bytes consumed so far */
const char *input_name(const input_source *s);

/* Run fn(arg) so that a SIGBUS raised by touching a mapped input (the file
 * shrank) makes input_guard return -1 instead of killing the process.
 * Returns fn's result otherwise.  Thread-safe; fn must not hold locks or
 * leave shared state half-updated at points where it reads mapped bytes. */
int input_guard(int (*fn)(void *arg), void *arg);

#endif
