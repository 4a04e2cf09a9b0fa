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

/* Remove the temporary files of the writers open now, if any.
 * Async-signal-safe: meant for a SIGINT/SIGTERM/SIGHUP handler that cleans
 * up before the process dies.  Up to four writers at once that write
 * through a temporary file are covered (the command line opens two: the
 * results and the report). */
void output_signal_cleanup(void);

#endif
