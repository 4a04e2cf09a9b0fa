/*
 * output.h - the writer's helpers for the command line.  The writer itself
 * (tally_writer_*) and tally_escape_key are declared in tally.h; output.c
 * documents the exact bytes of every format.
 */
#ifndef TALLY_OUTPUT_H
#define TALLY_OUTPUT_H

#include "tally.h"

/* Map a --format= name ("tsv", "csv", "json", "ndjson", "uniq") to its
 * value.  Returns 0 and *fmt, or -1 for an unknown name.  Thread-safe. */
int output_parse_format(const char *name, tally_format *fmt);

/* The name of a format ("tsv", ...), or "?" for an invalid value. */
const char *output_format_name(tally_format fmt);

/* Undo the tsv escaping of a key in place: \\ \t \n \r become the bytes
 * they stand for (the inverse of what tally_escape_key gives for
 * TALLY_FORMAT_TSV, for reading count files back).  Returns the new length,
 * or (size_t)-1 when a backslash is followed by anything else or ends the
 * key (s is then unspecified).  Thread-safe. */
size_t output_tsv_unescape(char *s, size_t len);

/* Append n bytes as they are (a file written whole through a writer, such
 * as the report).  0, or -1 with errno once a write has failed. */
int output_put_bytes(tally_writer *w, const void *p, size_t n);

/* Where formatted items go: a writer's buffer, sent on as it fills, or a
 * text in memory that grows. */
typedef struct out_sink out_sink;
struct out_sink {
	unsigned char *buf;
	size_t         pos, cap;
	/* Make room for n more bytes (n <= 256 KiB): 0, or -1 (errno). */
	int          (*room)(out_sink *s, size_t n);
};

/* Items formatted into memory, on any thread, for a writer to send on in
 * their turn: a stretch of the output formatted while another is written.
 * Its buffer is counted under MEM_IO. */
typedef struct out_text {
	out_sink sink;
	uint64_t items;
} out_text;

void output_text_init(out_text *t);
/* Append one item as the writer's format fmt has it; first: the item opens
 * the output (json's "[").  0, or -1 out of memory. */
int  output_text_put(out_text *t, tally_format fmt, const tally_item *it, int first);
/* Empty the text, keeping its buffer; free it. */
void output_text_clear(out_text *t);
void output_text_free(out_text *t);
/* Send a text on through w, its items counted as w's: as its items one
 * by one through tally_writer_put would.  0, or -1 with errno. */
int  output_put_text(tally_writer *w, const out_text *t);
/* Compress a .zst output on n threads (0: one) besides the caller's; the
 * bytes written are the same for every n.  Before the first item is sent
 * on (the writer's buffer is not). */
void output_writer_threads(tally_writer *w, unsigned n);
/* The writer's format; the items written so far. */
tally_format output_writer_format(const tally_writer *w);
uint64_t     output_writer_items(const tally_writer *w);

/* Remove the temporary files of the writers open now, if any.
 * Async-signal-safe: meant for a SIGINT/SIGTERM/SIGHUP handler that cleans
 * up before the process dies.  Up to four writers at once that write
 * through a temporary file are covered (the command line opens two: the
 * results and the report). */
void output_signal_cleanup(void);

#endif
