/*
 * tokenize.h - from bytes to keys: words (unicode or space), lines, fields
 * and CSV records, n-grams; case mapping and filters.  Keys go straight into
 * a counting table (table.h).
 *
 * Work arrives in chunks that begin and end at record boundaries, found by
 * tok_cut in the reader's thread, so a word, line or record is never split
 * between two workers.  The only exception is a record longer than a whole
 * buffer: the reader then splits it where it must and marks the next chunk
 * with the state it starts in (tok_chunk.cont).  Either the first chunk
 * counts the key (cut, or decided by the columns it holds) and the next
 * skips the rest of the record, or (fields) the record goes on in the next
 * chunk, which starts from the column, the parser's state and the key so far
 * (tok_chunk.prefix) that the reader carried over.
 *
 * N-grams: each worker counts the n-grams that lie inside its chunk and
 * reports the first and last N-1 words (tok_edge); the engine passes the
 * edges, in input order, to tok_stitch, which counts the n-grams that cross
 * chunk boundaries.  An n-gram never spans two inputs (tok_stitch_reset).
 */
#ifndef TALLY_TOKENIZE_H
#define TALLY_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#include "tally.h"
#include "input.h"
#include "table.h"

/* Immutable settings shared by all workers: parsed field list, stopwords,
 * case tables.  Built once from the config; thread-safe to read. */
typedef struct tok_shared tok_shared;

/* Build from cfg.  Returns NULL with a message in err; *usage = 1 when the
 * problem is the configuration (bad field list, ngram 0...), 0 when it is a
 * runtime failure (stopwords file unreadable: the message then reads
 * "FILE: reason"). */
tok_shared *tok_shared_create(const tally_config *cfg, char *err, size_t errlen, int *usage);
void tok_shared_destroy(tok_shared *s);

/* ---- Cutting the input into chunks (reader thread) ------------------- */

/* The state of a record split by force (a key longer than a buffer): 0 means
 * the chunk begins at a record boundary; other values are the tokenizer's. */
typedef uint32_t tok_cont;

typedef struct tok_fields tok_fields;

/* Return the length of the longest prefix of buf[0..len) that ends at a
 * record boundary, so that the rest can be carried into the next chunk.
 * eof: no more bytes follow; return len.  full: no more bytes fit in this
 * chunk; when there is no boundary, return a forced split point (> 0, at a
 * UTF-8 boundary) and set *cont to the state the next chunk starts in.
 * Otherwise return 0 when there is no boundary (read more), and *cont = 0.
 * cont_in is the state buf starts in (the previous chunk's *cont).
 * Fields mode: f is the input's selection (NULL: the numeric one; with
 * named columns, not known yet while the header is cut); a split inside a
 * record whose key has begun and is not decided writes the key so far to
 * pre->out (pre->out_cap bytes, at least tok_prefix_cap), starting from
 * pre->in (the prefix buf starts with).
 * Thread-safe (pure function of its arguments and s). */
size_t tok_cut(const tok_shared *s, const tok_fields *f, const char *buf, size_t len, int eof,
	int full, tok_cont cont_in, tok_cont *cont, input_prefix *pre);

/* Parts of a file (--shard): the index of the first byte of buf after
 * which a record may begin, as tok_cut cuts (a newline; for words, ASCII
 * whitespace or, with the unicode split, an ASCII byte that is neither a
 * word character nor an apostrophe), or len when there is none.  Not for
 * CSV, whose records need the quotes before them.  Thread-safe. */
size_t tok_boundary(const tok_shared *s, const char *buf, size_t len);

/* The most bytes a prefix from tok_cut holds (0: this mode makes none). */
size_t tok_prefix_cap(const tok_shared *s);

/* The smallest buffer for which a forced split keeps counts exact: the key
 * left in the first chunk must already exceed max_key_bytes after case
 * mapping (which can shrink a code point from 3 bytes to 1).  The reader's
 * min_capacity should be at least this.  Thread-safe. */
size_t tok_min_capacity(const tok_shared *s);

/* ---- Header (fields mode with --header) ------------------------------ */

/* Column selection for one input.
 *
 * Fields mode rules (SPEC section 2, and the choices made here):
 * - LIST items are numbers, ranges "2-4" ("-4" is "1-4"), open ranges
 *   "3-" (every column from 3 on), as cut reads them, or with header
 *   column names; 0, "3-1", "-", empty items or names without header are
 *   usage errors.
 * - The key is the selected columns in the order they appear in the record
 *   (as cut prints them; a column listed twice is taken once), joined by the
 *   delimiter.  Record order lets a key be built in one pass in bounded
 *   memory, whatever the length of the record.
 * - A record with fewer columns than the highest listed one (the start of an
 *   open range included) is not counted, however long its key already is:
 *   skipped_records.
 * - Without csv: every line is a record, split at each delimiter byte; a
 *   '\r' before the '\n' stays in the last field, as cut sees it.
 * - With csv (RFC 4180, read as Python's csv module reads it): see run_csv
 *   in tokenize.c; malformed input has a defined reading: a quote inside an
 *   unquoted field is literal, text after a closing quote is appended, an
 *   unterminated quote runs to the end of the input and the record counts.
 * - A record longer than a whole reader buffer is split by force and still
 *   counted exactly: the first chunk counts it when it is decided inside
 *   the buffer (its needed columns have ended); otherwise the next chunk
 *   goes on with it from the column, the parser's state and the key so far
 *   (no more than is needed to cut it), carried over.  A header longer
 *   than the buffer it begins in fails its input (the engine).
 * - Header names are matched byte for byte (for TSV without a trailing
 *   '\r'); the first column with the name wins. */

/* Fields mode with a header and csv: the bytes of empty lines at buf's
 * start, which are no record (as data records are not), so the header is
 * the first record that is not empty.  The caller skips them; when they are
 * all of a chunk, the header comes in a later one (and an input of empty
 * lines only has none, like an empty input).  0 in any other mode. */
size_t tok_header_skip(const tok_shared *s, const char *buf, size_t len);

/* Fields mode: the columns to select for an input.  With header, parse the
 * first record of buf (the input's first chunk holding more than empty
 * lines, past them), resolve names, and set *consumed to the bytes of that
 * record (the caller skips them).  Returns
 * NULL with err filled ("no column named 'X'") when a name is missing; the
 * caller reports that input as failed.  Without header, returns the numeric
 * selection shared by all inputs (do not free it separately). */
tok_fields *tok_fields_for_input(const tok_shared *s, const char *buf, size_t len,
	size_t *consumed, char *err, size_t errlen);
void tok_fields_release(const tok_shared *s, tok_fields *f);

/* ---- Counting a chunk (worker threads) ------------------------------- */

typedef struct tok_chunk {
	const char       *data;
	size_t            len;
	tok_cont          cont;    /* state at data[0]: 0 = record boundary */
	const tok_fields *fields;  /* fields mode: this input's selection */
	tok_cont          cont_out;   /* state the next chunk starts in */
	const char       *prefix;     /* the key so far of the record going on at data[0] */
	size_t            prefix_len;
	int               beyond;     /* n-grams: past the end of a part (--shard): the
	                               * words only end the part's last n-grams, in
	                               * tok_stitch; nothing is counted, bytes neither */
} tok_chunk;

/* Words at a chunk's edges, for n-gram stitching. */
typedef struct tok_edge tok_edge;
void tok_edge_free(tok_edge *e);

/* Counters a worker keeps; read by other threads (progress) with relaxed
 * loads, updated once per chunk. */
typedef struct tok_counters {
	_Atomic uint64_t tokens;
	_Atomic uint64_t bytes;
	_Atomic uint64_t illformed_bytes;
	_Atomic uint64_t cut_keys;
	_Atomic uint64_t skipped_records;
} tok_counters;

/* One per thread.  Counts into t (not owned). */
typedef struct tok_worker tok_worker;
tok_worker *tok_worker_create(const tok_shared *s, table *t);
void tok_worker_destroy(tok_worker *w);
const tok_counters *tok_worker_counters(const tok_worker *w);

/* Whether the workers hash short keys eight at a time: the CPU has
 * AVX-512 F and DQ, and TALLY_NO_AVX512 is not set in the environment.
 * The hashes are the same either way. */
int tok_wide_hash(void);

/* Count the keys of one chunk into the worker's table.  In n-gram mode,
 * *edge receives the chunk's edge words (caller frees with tok_edge_free);
 * otherwise *edge is set to NULL.  Returns 0, or -1 on a fatal table error
 * (errno set). */
int tok_run(tok_worker *w, const tok_chunk *c, tok_edge **edge);

/* Count files (TALLY_MODE_COUNTS): tok_run gives every chunk an edge that
 * tells what its lines were.  A worker stops counting its chunk at the
 * first malformed line; the engine, which sees the chunks in input order,
 * turns bad_line into a line number of the input. */
typedef struct tok_lines {
	uint64_t    lines;      /* lines of the chunk */
	uint64_t    sum;        /* the counts it added */
	int         overflow;   /* they add up past 2^64 - 1 (sum is then not theirs) */
	uint64_t    bad_line;   /* the first malformed line, 1-based in the chunk; 0: none */
	const char *why;        /* what is wrong with it (a static string) */
} tok_lines;
void tok_edge_lines(const tok_edge *e, tok_lines *out);

/* One line of a count file, p to le (its newline left out), as the tsv
 * format writes it: the key with its escapes undone, and the count.
 * Returns NULL with *r filled, or what is wrong with the line (a static
 * string, as tok_lines.why gives it).  A key with escapes is written to
 * kbuf (tok_key_capacity bytes) and r->key points there; otherwise into
 * the line.  Thread-safe. */
typedef struct tok_count_rec {
	const uint8_t *key;
	size_t         len;
	uint64_t       count;
} tok_count_rec;
const char *tok_count_line(const tok_shared *s, const uint8_t *p, const uint8_t *le,
	uint8_t *kbuf, tok_count_rec *r);

/* Bytes of a key buffer: max_key_bytes and some slack. */
size_t tok_key_capacity(const tok_shared *s);

/* N-grams that cross chunk boundaries: call with each chunk's edge in input
 * order (the worker w is the stitcher's own, on the engine's thread); call
 * tok_stitch_reset between inputs.  Returns 0 or -1 (fatal table error). */
int tok_stitch(tok_worker *w, const tok_edge *e);
void tok_stitch_reset(tok_worker *w);

/* The stitcher's words before a part's end whose n-grams still wait for
 * words after it: 0 once chunks past the end (tok_chunk.beyond) gave them
 * enough. */
size_t tok_stitch_waiting(const tok_worker *w);

#endif
