/*
 * tally.h - the counting engine's public API.
 *
 * The engine turns bytes into counted keys: a caller fills a tally_config,
 * creates an engine, feeds it inputs (paths or memory), finishes it, and then
 * reads the counted keys back in the configured order, optionally through a
 * tally_writer that formats them.  The command line (src/main.c) is one such
 * caller; the unit tests are others.
 *
 * Threads: an engine is used from one thread at a time (the caller's); it runs
 * its own worker threads internally.  Callbacks are always invoked from the
 * caller's thread, except progress callbacks, which come from the engine's
 * sampler thread (see tally_config.on_progress).
 *
 * Order of calls: tally_create, then tally_add_path / tally_add_memory (any
 * number), tally_finish, tally_next until it returns 0 (or fewer: the caller
 * may stop early) or tally_write to a writer (which formats on the engine's
 * threads), tally_end_output, tally_get_stats, tally_destroy.  A call out of
 * this order returns -2 with a message in tally_errmsg().
 *
 * Errors: functions return 0 on success and a negative value on failure; the
 * message (without the "tally: " prefix) is in tally_errmsg().  Per-input
 * failures (missing file, corrupt zstd stream, a file that shrinks while
 * mapped) are not fatal: they are reported through on_error, the engine goes
 * on, and tally_failed() says whether any happened (exit status 1).  Messages
 * about the configuration name the command line's options (--memory, ...).
 *
 * Process-wide effects, for a program that embeds the engine:
 *  - Signals: the first engine installs a handler for each of
 *    tally_cleanup_signals() whose action is the default (which ends the
 *    process): it removes every temporary file of the process, then the
 *    process dies of the signal as it would have.  A signal the program
 *    ignores or handles itself is left alone; a handler that means to end
 *    the process calls tally_signal_cleanup().  An atexit hook removes the
 *    run files left.  Reading a mapped file installs a SIGBUS handler (a
 *    file that shrinks while mapped) that passes any other SIGBUS on to the
 *    handler there before, or to the default action.  None is removed.
 *  - SIGPIPE: the writer reports a closed pipe as EPIPE only if the program
 *    ignores SIGPIPE; otherwise the signal ends the process.
 *  - glibc's malloc: on the first allocation, M_MMAP_THRESHOLD is set to
 *    256 KiB and M_TRIM_THRESHOLD to 1 MiB, so that large blocks go back to
 *    the kernel when freed and the budget holds.
 *  - Memory accounting is the process's: the peak_* statistics and the
 *    memory each engine sees held when it sizes its output order count
 *    every engine alive; peaks start again when an engine is created while
 *    no other exists.  peak_rss is the process's.
 *  - Environment: TALLY_FAIL_ALLOC (fail the Nth allocation) and
 *    TALLY_SPILL_FANIN (runs per merge) are for tests; TALLY_NO_AVX512
 *    turns off the AVX-512 tokenizer; TALLY_CGROUP_ROOT see
 *    tally_default_memory.
 */
#ifndef TALLY_H
#define TALLY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TALLY_VERSION "0.1.0"

typedef enum tally_mode {
	TALLY_MODE_WORDS = 0,  /* words; ngram > 1 makes word n-grams */
	TALLY_MODE_LINES,      /* whole lines without the '\n' */
	TALLY_MODE_FIELDS,     /* values of selected columns */
	TALLY_MODE_COUNTS      /* count files (tally merge): KEY<TAB>COUNT lines as the
	                        * tsv format writes them, their counts summed; a
	                        * malformed line fails its input ("NAME:LINE: why"
	                        * through on_error); keys are taken as they are,
	                        * so no key rule or filter but max_key_bytes applies */
} tally_mode;

typedef enum tally_split {
	TALLY_SPLIT_UNICODE = 0, /* runs of L*, M*, Nd, Nl, No, Pc; inner apostrophes */
	TALLY_SPLIT_SPACE        /* runs of bytes other than ASCII whitespace */
} tally_split;

typedef enum tally_case {
	TALLY_CASE_DEFAULT = 0,  /* lower for words and n-grams, keep otherwise */
	TALLY_CASE_LOWER,        /* Unicode simple lowercase mapping */
	TALLY_CASE_ASCII,        /* A-Z only */
	TALLY_CASE_KEEP
} tally_case;

typedef enum tally_sort {
	TALLY_SORT_COUNT = 0,    /* count descending, then key ascending by bytes */
	TALLY_SORT_KEY,          /* key ascending by bytes */
	TALLY_SORT_NONE          /* unspecified but deterministic (hash order) */
} tally_sort;

typedef enum tally_io {
	TALLY_IO_AUTO = 0,
	TALLY_IO_MMAP,
	TALLY_IO_READ
} tally_io;

typedef enum tally_format {
	TALLY_FORMAT_TSV = 0,
	TALLY_FORMAT_CSV,
	TALLY_FORMAT_JSON,
	TALLY_FORMAT_NDJSON,
	TALLY_FORMAT_UNIQ
} tally_format;

/* What a run is doing when it is sampled. */
typedef enum tally_phase {
	TALLY_PHASE_COUNTING = 0,    /* reading and counting the inputs */
	TALLY_PHASE_MERGING,         /* the inputs are read: merging the threads' tables or the runs */
	TALLY_PHASE_SORTING,         /* putting the keys in output order */
	TALLY_PHASE_WRITING          /* tally_finish returned: the caller writes the output */
} tally_phase;

/* A live sample, handed to on_progress a few times a second. */
typedef struct tally_progress {
	double   elapsed;         /* seconds since tally_create */
	uint64_t bytes_done;      /* input bytes consumed (compressed bytes for .zst) */
	uint64_t bytes_total;     /* tally_expect_bytes; 0 when unknown */
	uint64_t tokens;          /* keys counted so far */
	uint64_t distinct;        /* distinct keys so far: exact with one thread and no
	                           * spill, else estimated (standard error 0.8%); the
	                           * keys of count files set aside only as they are
	                           * merged, in the writing phase */
	uint64_t rss;             /* resident set size now, bytes */
	double   mbps;            /* MB/s (10^6 bytes of bytes_done) over the last seconds */
	tally_phase phase;        /* past counting, the line names it in place of MB/s */
	uint64_t written;         /* items given out so far (tally_next, tally_write) */
} tally_progress;

/* The largest chunk_size (1 GiB), the largest max_key_bytes (4 GiB -
 * 8 KiB: a key's length and its slack fit in 32 bits), and the largest
 * ngram (each worker keeps the last n - 1 words). */
#define TALLY_CHUNK_MAX ((size_t)1 << 30)
#define TALLY_MAX_KEY_LIMIT (((uint64_t)1 << 32) - 8192)
#define TALLY_NGRAM_MAX 4096u

/* Room for any message the library writes into an err buffer (errlen): a
 * path as long as the system allows (PATH_MAX) and the reason.  In a
 * smaller buffer a message is cut short. */
#define TALLY_ERR_MAX 4352

typedef struct tally_config {
	/* What a key is (SPEC section 2). */
	tally_mode  mode;
	unsigned    ngram;           /* words per key in words mode; 0 or 1 = words */
	tally_split split;
	tally_case  casemode;
	const char *fields;          /* fields mode: LIST ("3", "2,5", "1-3", names with header) */
	char        delimiter;       /* 0 = default (TAB, or ',' with csv) */
	int         csv;             /* RFC 4180 records */
	int         header;          /* first record of each input names the columns */

	/* Filters. */
	size_t      min_length;      /* code points; 0 = no minimum */
	size_t      max_length;      /* code points; 0 = no maximum */
	const char *stopwords_path;  /* NULL = none */
	uint64_t    min_count;       /* applied to the final totals; 0 or 1 = none */
	size_t      max_key_bytes;   /* 0 = default 1 MiB; at most TALLY_MAX_KEY_LIMIT */

	/* Resources (SPEC section 5). */
	unsigned    threads;         /* 0 = the CPUs this process may use */
	uint64_t    memory;          /* budget for tables and keys; 0 = default */
	const char *tmpdir;          /* NULL = $TMPDIR, else /tmp */
	tally_io    io;
	size_t      chunk_size;      /* bytes per work unit; 0 = by kind of input; tests use tiny
	                              * ones; at most TALLY_CHUNK_MAX */
	/* Count only part shard_k of shard_n (1 <= k <= n; n 0 or 1 = all),
	 * in the manner of split -n l/K/N: a splittable input (a regular file or memory,
	 * not compressed, not CSV) by byte range, each record in the part
	 * where it begins; any other input whole, in the part its position
	 * among the inputs gives: inputs 1, N + 1... in part 1. */
	unsigned    shard_k, shard_n;

	/* Order of the results. */
	tally_sort  sort;
	uint64_t    top;             /* 0 = all */

	/* Callbacks; ctx is passed back.  on_error gets one line per failed
	 * input or notice (no "tally: " prefix, no newline). */
	void       *ctx;
	void      (*on_error)(void *ctx, const char *msg);
	/* Called from the sampler thread about 6 times a second when set,
	 * through the count and while the caller takes the output (phase
	 * TALLY_PHASE_WRITING), and once with final=1 from the caller's
	 * thread by tally_end_output (or tally_destroy, without it). */
	void      (*on_progress)(void *ctx, const tally_progress *p, int final);
	const char *report_path;     /* --report FILE.svg; NULL = none */
} tally_config;

/* Run statistics, read off the components' own accounting. */
typedef struct tally_stats {
	uint64_t bytes_read;         /* bytes of input as stored (compressed for .zst) */
	uint64_t bytes_decoded;      /* bytes tokenized (after decompression) */
	uint64_t files;
	uint64_t files_compressed;
	uint64_t files_failed;
	uint64_t tokens;             /* keys counted */
	uint64_t distinct;           /* distinct keys in the result (before --min-count) */
	uint64_t hapax;              /* keys seen exactly once */
	uint64_t illformed_bytes;    /* bytes of ill-formed UTF-8 seen by the unicode tokenizer */
	uint64_t cut_keys;           /* keys cut at max_key_bytes */
	uint64_t skipped_records;    /* records missing a selected column */
	double   t_count, t_merge, t_sort, t_write, t_total; /* seconds */
	unsigned threads;
	uint64_t budget;             /* bytes */
	uint64_t peak_rss;           /* bytes */
	uint64_t peak_table, peak_pool, peak_io, peak_spill; /* bytes, per component */
	uint64_t pool_hits, pool_misses, evictions;
	uint64_t runs_spilled, bytes_spilled, merge_passes;
} tally_stats;

typedef struct tally_item {
	const char *key;             /* not NUL-terminated; valid until the next call
	                              * to tally_next or tally_end_output */
	size_t      len;
	uint64_t    count;
} tally_item;

typedef struct tally_engine tally_engine;
typedef struct tally_writer tally_writer;   /* the output (below) */

/* Fill cfg with the defaults (all zero, threads and memory detected later). */
void tally_config_init(tally_config *cfg);

/* Create an engine.  Returns NULL on a bad configuration or resource failure,
 * with a message in err (errlen bytes; TALLY_ERR_MAX holds any message).  A
 * bad configuration is a usage error: *usage is set to 1 then (may be
 * NULL).  The engine owns no caller memory except cfg's strings, which must
 * outlive it. */
tally_engine *tally_create(const tally_config *cfg, char *err, size_t errlen, int *usage);

/* Count one input: a path, or "-" for standard input.  Returns 0, or -1 when
 * the input failed (reported through on_error; the engine goes on), or -2 on
 * a fatal error (out of memory, spill failure: see tally_errmsg).
 * With TALLY_MODE_COUNTS and TALLY_SORT_KEY, a regular file whose keys are
 * already in key order is read through here and set aside, then read again
 * while tally_next gives the results: it must not change until then (if
 * it does, tally_next fails with "NAME: changed since it was first read"). */
int tally_add_path(tally_engine *e, const char *path);

/* Declare the stored size of all the inputs to come, so that progress can
 * show a percentage and an ETA; only when it is known before the run (all
 * regular files): without it, progress shows bytes and rate only, as a
 * total that grew as inputs were opened would move the percentage back. */
void tally_expect_bytes(tally_engine *e, uint64_t bytes);

/* Count len bytes at buf as one input named name (for tests and embedding).
 * The bytes are read as they are (not decompressed: zstd is detected in
 * files only), by the worker threads after this returns: buf must stay
 * valid and unchanged until tally_finish returns.  Returns 0, or -2 on a
 * fatal error (as tally_add_path). */
int tally_add_memory(tally_engine *e, const void *buf, size_t len, const char *name);

/* Finish counting: merge, apply --min-count, order.  Returns 0 or -2 (fatal). */
int tally_finish(tally_engine *e);

/* Next result in order (after tally_finish).  Returns 1 with *it filled,
 * 0 at the end, -2 on a fatal error. */
int tally_next(tally_engine *e, tally_item *it);

/* Write the results to w, as tally_next and tally_writer_put item by item
 * would, the same bytes; when they are all in memory, stretches of them
 * are formatted on the engine's threads at once, and a .zst output is
 * compressed on as many of zstd's (the same bytes whatever their number).
 * After tally_finish, in place of tally_next.  Returns 0; -1 when a write
 * failed (errno set: EPIPE when the reader went away); -2 on a fatal error. */
int tally_write(tally_engine *e, tally_writer *w);

/* Statistics so far (complete after the last tally_next). */
void tally_get_stats(tally_engine *e, tally_stats *st);

/* The caller is done with the results: it read them to the end, or it
 * stopped early (the reader of its output went away).  seconds is the time
 * it spent writing them (t_write).  Stops the timeline, freezes t_total and
 * draws the report (cfg.report_path), which is drawn nowhere else.  After a
 * streamed merge (TALLY_SORT_KEY after a spill, no top) not read to the
 * end, the rest is read, its items dropped, so that distinct and hapax are
 * complete, when complete is 1 or a report is asked for.  Call once, after
 * tally_finish.  Returns 0, or -2 on a fatal error (tally_errmsg). */
int tally_end_output(tally_engine *e, double seconds, int complete);

int tally_failed(const tally_engine *e);       /* any input failed */
const char *tally_errmsg(const tally_engine *e);
void tally_destroy(tally_engine *e);           /* removes temporary files */

/* Default budget, in bytes: half the smallest of physical RAM, the cgroup
 * limit and RLIMIT_AS/RLIMIT_DATA.  cgroup_root overrides "/sys/fs/cgroup" (tests);
 * NULL uses the environment variable TALLY_CGROUP_ROOT or the default. */
uint64_t tally_default_memory(const char *cgroup_root);

/* Parse a size in bytes with K, M, G, T suffixes (either case; powers of
 * 1024), optionally followed by "iB" or "B" (upper case: "b" is no byte).
 * Returns 0 and *out, or -1 on a malformed or overflowing value. */
int tally_parse_size(const char *s, uint64_t *out);

/* Versions of the libraries tally runs with: "zstd 1.5.4, xxHash 0.8.1, ...".
 * A static string, filled once (safe from any thread). */
const char *tally_library_versions(void);

/* ---- Output ---------------------------------------------------------- */

/* Open a writer.  path NULL or "-" writes to stdout; otherwise output goes to
 * a temporary file beside path that tally_writer_close renames over it.  A
 * path ending in ".zst" is zstd-compressed.  Returns NULL with err filled.
 * Standard output is written with write(2) on descriptor 1, not through
 * stdio: fflush(stdout) first what the program printed there before.  A
 * writer is used from one thread at a time. */
tally_writer *tally_writer_open(const char *path, tally_format fmt, char *err, size_t errlen);

/* Write one item.  Returns 0, or -1 on a write error (errno set; EPIPE when
 * the reader went away). */
int tally_writer_put(tally_writer *w, const tally_item *it);

/* 1 when the output is written where it stands, as it goes: standard
 * output, or a path naming a standard stream, a device or a FIFO; 0 when
 * it goes to a temporary file that a committed close renames over path. */
int tally_writer_in_place(const tally_writer *w);

/* The descriptor the output is written to (STDOUT_FILENO for standard
 * output and the names that lead to it), until tally_writer_close: for
 * asking whether it is a terminal. */
int tally_writer_fd(const tally_writer *w);

/* Finish.  commit=1: flush, close, rename into place; commit=0: discard the
 * temporary file and leave an existing target alone.  Returns 0 or -1 with
 * err filled (errno kept, EPIPE included). */
int tally_writer_close(tally_writer *w, int commit, char *err, size_t errlen);

/* Remove every temporary file of the process: the engines' run files and
 * the temporary files of open writers (of the first 4 open at once).  Only
 * async-signal-safe calls: meant for the program's own handler of one of
 * tally_cleanup_signals() when it is about to end the process, as no engine
 * can spill after it. */
void tally_signal_cleanup(void);

/* 1 or 2 when path names the file standard output or standard error is
 * open on for writing (as /dev/stdout does, stdout redirected to a file),
 * else -1: an output of that name is written to that stream, not replaced.
 * -2 when that stream is open for reading only (the command line puts a
 * closed stream there): no output can be written under that name. */
int tally_std_stream(const char *path);

/* The signals on which the engine removes its temporary files and then
 * dies of the signal, where their action is the default (SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT and other signals that stop a job): *n of them, for the
 * caller to handle the same set. */
const int *tally_cleanup_signals(size_t *n);

/* Escape one key for a format into buf (cap bytes); returns the length the
 * full escape needs (like snprintf).  Exposed for tests. */
size_t tally_escape_key(tally_format fmt, const char *key, size_t len, char *buf, size_t cap);

/* ---- Statistics output ---------------------------------------------- */

/* Human-readable statistics, several lines, to f. */
void tally_stats_print(FILE *f, const tally_stats *st);
/* One JSON object and a newline to f.  Returns 0 or -1 on a write error. */
int tally_stats_write_json(FILE *f, const tally_stats *st);
/* Render a progress line (no newline, erase-to-end included) for a terminal
 * columns wide: it takes at most columns - 1 of them (0: no limit), the
 * fields that do not fit left out whole, the least telling first (RSS,
 * keys, tokens, the time left, the rate, the bytes). */
void tally_progress_render(FILE *f, const tally_progress *p, unsigned columns);
/* Erase a progress line drawn by tally_progress_render. */
void tally_progress_erase(FILE *f);

#ifdef __cplusplus
}
#endif

#endif /* TALLY_H */
