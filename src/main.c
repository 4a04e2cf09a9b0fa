/*
 * main.c - the command line: options -> tally_config -> engine -> writer.
 *
 * A thin client of include/tally.h.  It parses the options into one
 * tally_config, feeds every input to the engine, writes the results through a
 * tally_writer and prints the statistics.  It is the only part of tally that
 * prints usage, owns the exit status and calls exit():
 *
 *   0  success
 *   1  a runtime failure (an input failed, a write error, a fatal error)
 *   2  a usage error
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "tally.h"

#include <utf8proc.h>

#define EXIT_USAGE 2

/* Long-only options: values above any char (CHAR_MAX) so they never meet a
 * short one. */
enum {
	OPT_NGRAM = 0x100,
	OPT_CSV,
	OPT_HEADER,
	OPT_SPLIT,
	OPT_CASE,
	OPT_MIN_LENGTH,
	OPT_MAX_LENGTH,
	OPT_STOPWORDS,
	OPT_MIN_COUNT,
	OPT_MAX_KEY_BYTES,
	OPT_SORT,
	OPT_FORMAT,
	OPT_FILES0_FROM,
	OPT_IO,
	OPT_CHUNK_SIZE,
	OPT_SHARD,
	OPT_STATS_JSON,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
	OPT_REPORT,
	OPT_HELP,
	OPT_VERSION
};

static const char short_options[] = ":wlf:d:n:o:j:m:T:s";

static const struct option long_options[] = {
	{ "words",         no_argument,       NULL, 'w' },
	{ "ngram",         required_argument, NULL, OPT_NGRAM },
	{ "lines",         no_argument,       NULL, 'l' },
	{ "field",         required_argument, NULL, 'f' },
	{ "delimiter",     required_argument, NULL, 'd' },
	{ "csv",           no_argument,       NULL, OPT_CSV },
	{ "header",        no_argument,       NULL, OPT_HEADER },
	{ "split",         required_argument, NULL, OPT_SPLIT },
	{ "case",          required_argument, NULL, OPT_CASE },
	{ "min-length",    required_argument, NULL, OPT_MIN_LENGTH },
	{ "max-length",    required_argument, NULL, OPT_MAX_LENGTH },
	{ "stopwords",     required_argument, NULL, OPT_STOPWORDS },
	{ "min-count",     required_argument, NULL, OPT_MIN_COUNT },
	{ "max-key-bytes", required_argument, NULL, OPT_MAX_KEY_BYTES },
	{ "sort",          required_argument, NULL, OPT_SORT },
	{ "top",           required_argument, NULL, 'n' },
	{ "format",        required_argument, NULL, OPT_FORMAT },
	{ "output",        required_argument, NULL, 'o' },
	{ "files0-from",   required_argument, NULL, OPT_FILES0_FROM },
	{ "threads",       required_argument, NULL, 'j' },
	{ "memory",        required_argument, NULL, 'm' },
	{ "tmpdir",        required_argument, NULL, 'T' },
	{ "io",            required_argument, NULL, OPT_IO },
	{ "chunk-size",    required_argument, NULL, OPT_CHUNK_SIZE },
	{ "shard",         required_argument, NULL, OPT_SHARD },
	{ "stats",         no_argument,       NULL, 's' },
	{ "stats-json",    required_argument, NULL, OPT_STATS_JSON },
	{ "progress",      no_argument,       NULL, OPT_PROGRESS },
	{ "no-progress",   no_argument,       NULL, OPT_NO_PROGRESS },
	{ "report",        required_argument, NULL, OPT_REPORT },
	{ "help",          no_argument,       NULL, OPT_HELP },
	{ "version",       no_argument,       NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

/* Everything the command line decides beyond the engine's configuration. */
typedef struct cli_options {
	tally_config cfg;
	tally_format format;
	const char  *output;        /* -o FILE; NULL = stdout */
	const char  *files0_from;   /* --files0-from F; NULL = none */
	const char  *stats_json;    /* --stats-json FILE; NULL = none */
	int          stats;         /* -s */
	int          progress;      /* 1 on, 0 off, -1 when stderr is a terminal */
	int          top_zero;      /* --top 0: count, write no item */
	int          mode_opt;      /* the mode option seen (its getopt value), 0 = none */
	const char  *key_opt;       /* the first option seen that makes keys, or NULL */
} cli_options;

/* Shared by the error and progress callbacks: stderr carries both, the
 * progress line from the sampler thread, so they take turns. */
typedef struct cli_state {
	pthread_mutex_t lock;
	int             hold;   /* under lock: draw no line (the output goes to the terminal) */
} cli_state;

/* A progress line is on the screen: set under cli_state's lock, and read
 * by a fatal signal's handler too, which erases it.  The sampler thread
 * sets progress_busy while it draws and draws nothing once progress_dying
 * is set, which the handler sets before it waits for a line being drawn to
 * be out and erases it: else a line written just after the erase would be
 * the last thing on the terminal. */
static atomic_int progress_drawn, progress_busy, progress_dying;

/* ---- Usage ----------------------------------------------------------- */

static void usage(int status)
{
	if (status != EXIT_SUCCESS) {
		fputs("Try 'tally --help'.\n", stderr);
		exit(status);
	}
	fputs(
"Usage: tally [OPTION]... [FILE]...\n"
"  or:  tally merge [OPTION]... [FILE]...\n"
"Count how often each word, line, field value or word n-gram occurs in FILEs\n"
"(none, or -: standard input; zstd-compressed input is detected).\n"
"tally merge sums count files: tally's tsv output (KEY, TAB, COUNT; in any\n"
"order, zstd-compressed or not).  It takes the options of output, input\n"
"(except --shard), resources and statistics, and --min-count and\n"
"--max-key-bytes.  With --sort=key, count files already in key order (as\n"
"tally --sort=key writes them) are merged as they are read, in no table.\n"
"\n"
"What a key is (one mode at a time):\n"
"  -w, --words            words (the default)\n"
"      --ngram N          N consecutive words joined by one space\n"
"  -l, --lines            whole lines\n"
"  -f, --field LIST       values of columns LIST (1-based: 3 / 2,5 / 1-3;\n"
"                           names with --header)\n"
"  -d, --delimiter C      field delimiter, one byte (default TAB; '\\t' accepted)\n"
"      --csv              parse RFC 4180 CSV (default delimiter ',')\n"
"      --header           the first record names the columns; not counted\n"
"      --split=WHICH      words: unicode (default): letters, marks, numbers,\n"
"                           '_', and ' inside a word (don't); space: runs of\n"
"                           non-whitespace bytes, as wc -w\n"
"      --case=HOW         lower, ascii or keep (default: lower for words and\n"
"                           n-grams, keep for lines and fields)\n"
"\n"
"Filters (on words before n-grams are formed, and on the keys of other modes):\n"
"      --min-length N     drop keys shorter than N code points\n"
"      --max-length N     drop keys longer than N code points\n"
"      --stopwords FILE   drop the words listed in FILE, one per line\n"
"      --min-count N      print only keys counted at least N times\n"
"      --max-key-bytes SIZE  cut longer keys at SIZE bytes (default 1M)\n"
"\n"
"Output:\n"
"      --sort=ORDER       count (default: most frequent first), key, or none\n"
"  -n, --top N            print only the first N keys of that order\n"
"      --format=FMT       tsv (default), csv, json, ndjson or uniq\n"
"  -o, --output FILE      write to FILE, replaced only when the run succeeds;\n"
"                           a name ending in .zst is zstd-compressed\n"
"\n"
"Input:\n"
"      --files0-from F    read NUL-separated input names from F (-: stdin)\n"
"      --io=METHOD        auto (default), mmap or read\n"
"      --chunk-size SIZE  bytes per unit of work (default 1M, 4M for zstd)\n"
"      --shard K/N        count only part K of N: files split by byte range,\n"
"                           each record in the part where it begins; stdin,\n"
"                           compressed and CSV inputs whole, in one part each\n"
"\n"
"Resources:\n"
"  -j, --threads N        worker threads (default: the CPUs available)\n"
"  -m, --memory SIZE      budget for tables and keys (default: half of the\n"
"                           RAM, or of a smaller cgroup or ulimit limit);\n"
"                           beyond it, spill to disk\n"
"  -T, --tmpdir DIR       where spilled runs go (default $TMPDIR, else /tmp)\n"
"\n"
"Statistics and progress:\n"
"  -s, --stats            print statistics of the run to stderr\n"
"      --stats-json FILE  write the statistics as JSON to FILE (-: stdout)\n"
"      --progress         show a progress line on stderr\n"
"      --no-progress      never show it (default: shown when stderr is a\n"
"                           terminal and the run lasts more than a moment)\n"
"      --report FILE.svg  draw throughput and memory over time\n"
"\n"
"      --help             display this help and exit\n"
"      --version          output version information and exit\n"
"\n"
"SIZE takes K, M, G, T suffixes (powers of 1024), optionally with iB or B.\n"
"Exit status: 0 success, 1 a runtime failure (such as an unreadable input or a\n"
"write error), 2 a usage error.  See tally(1).\n",
		stdout);
}

/* Write "tally: MSG" and a newline on stderr, as one line whatever the
 * names and values it quotes hold: a control character, a C1 control and a
 * byte of no UTF-8 character are shown as escapes (\n, \r, \x1b), never
 * sent to the terminal, as ls -b and coreutils' quoting keep them from it. */
static void put_message(const char *msg)
{
	const uint8_t *p = (const uint8_t *)msg;
	size_t n = strlen(msg);
	/* At most 4 bytes out for each in, "tally: " and the newline: written
	 * at once (stderr has no buffer), so that a line is not cut up among
	 * other writers'. */
	char small[1024], *line = n < (sizeof small - 9) / 4 ? small : malloc(4 * n + 9);
	if (!line) {
		fprintf(stderr, "tally: %s\n", strerror(ENOMEM));
		return;
	}
	size_t o = 7;
	memcpy(line, "tally: ", 7);
	for (size_t i = 0; i < n; ) {
		utf8proc_int32_t cp = p[i];
		utf8proc_ssize_t k = 1;
		if (p[i] >= 0x80) {
			k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
			if (k < 1) {
				k = 1;
				cp = -1;
			}
		}
		if (cp == '\n' || cp == '\r') {
			line[o++] = '\\';
			line[o++] = cp == '\n' ? 'n' : 'r';
		} else if ((cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp < 0xa0)) {
			for (utf8proc_ssize_t j = 0; j < k; j++) {
				snprintf(line + o, 5, "\\x%02x", p[i + (size_t)j]);
				o += 4;
			}
		} else {
			memcpy(line + o, p + i, (size_t)k);
			o += (size_t)k;
		}
		i += (size_t)k;
	}
	line[o++] = '\n';
	fwrite(line, 1, o, stderr);
	if (line != small)
		free(line);
}

/* put_message of a formatted message. */
static void vmessage(const char *fmt, va_list ap)
{
	char small[512], *msg = small;
	va_list again;

	va_copy(again, ap);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	if (n >= (int)sizeof small && (msg = malloc((size_t)n + 1)) != NULL)
		vsnprintf(msg, (size_t)n + 1, fmt, again);
	va_end(again);
	put_message(msg ? msg : small);
	if (msg != small)
		free(msg);
}

__attribute__((format(printf, 1, 2)))
static void message(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
}

/* One line naming the problem, the hint, exit 2. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	usage(EXIT_USAGE);
	exit(EXIT_USAGE); /* not reached */
}

/* ---- Option values --------------------------------------------------- */

/* A decimal number made of digits only (no sign, no blanks), in [0, max]. */
static uint64_t parse_number(const char *opt, const char *s, uint64_t max)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p == '\0')
		usage_error("invalid number for %s: '%s'", opt, s);
	for (; *p; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			usage_error("invalid number for %s: '%s'", opt, s);
		v = v * 10 + d;
	}
	if (v > max)
		usage_error("invalid number for %s: '%s'", opt, s);
	return v;
}

/* A size through the engine's parser, at least min_value, fitting size_t. */
static uint64_t parse_size(const char *opt, const char *s, uint64_t min_value)
{
	uint64_t v;

	if (tally_parse_size(s, &v) != 0 || v < min_value || v > SIZE_MAX)
		usage_error("invalid size for %s: '%s'", opt, s);
	return v;
}

/* The index of s in names (NULL-terminated), or a usage error. */
static int parse_enum(const char *opt, const char *s, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	usage_error("invalid value for %s: '%s'", opt, s);
}

/* --shard K/N: 1 <= K <= N. */
static void parse_shard(const char *s, unsigned *k, unsigned *n)
{
	const char *slash = strchr(s, '/');
	char kbuf[32];
	size_t klen = slash ? (size_t)(slash - s) : 0;

	if (!slash || klen == 0 || klen >= sizeof kbuf || strspn(s, "0123456789") != klen
			|| !slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1))
		usage_error("invalid value for --shard: '%s' (K/N expected, as 2/8)", s);
	memcpy(kbuf, s, klen);
	kbuf[klen] = '\0';
	*k = (unsigned)parse_number("--shard", kbuf, UINT32_MAX);
	*n = (unsigned)parse_number("--shard", slash + 1, UINT32_MAX);
	if (*k < 1 || *k > *n)
		usage_error("invalid value for --shard: '%s' (1 <= K <= N)", s);
}

static char parse_delimiter(const char *s)
{
	if (strcmp(s, "\\t") == 0)
		return '\t';
	if (s[0] == '\n')
		usage_error("invalid value for --delimiter: a newline ends records");
	if (s[0] == '\0' || s[1] != '\0')
		usage_error("invalid value for --delimiter: '%s' (one byte expected)", s);
	return s[0];
}

static const char *mode_name(int opt)
{
	switch (opt) {
	case 'w':       return "--words";
	case OPT_NGRAM: return "--ngram";
	case 'l':       return "--lines";
	default:        return "--field";
	}
}

/* Mode options are exclusive; the same one twice is fine (the last wins). */
static void set_mode(cli_options *o, int opt)
{
	if (o->mode_opt && o->mode_opt != opt)
		usage_error("%s and %s cannot be used together",
			mode_name(o->mode_opt), mode_name(opt));
	o->mode_opt = opt;
}

/* Remember the first option about what a key is: tally merge takes none. */
static void key_option(cli_options *o, const char *name)
{
	if (!o->key_opt)
		o->key_opt = name;
}

/* Name the option getopt found fault with (argv[optind - 1] is where it
 * stood, unless getopt went past the end looking for an argument). */
static const char *faulty_arg(int argc, char **argv)
{
	int i = optind - 1;

	if (i >= argc)
		i = argc - 1;
	return i > 0 ? argv[i] : "";
}

/* Is the long-option spelling arg ("--xyz" or "--xyz=v") a prefix of
 * more than one option name? */
static int ambiguous(const char *arg)
{
	const char *name = arg + 2;
	size_t len = strcspn(name, "=");
	int matches = 0;

	for (const struct option *lo = long_options; lo->name; lo++) {
		if (strncmp(lo->name, name, len) == 0) {
			if (strlen(lo->name) == len)
				return 0;  /* an exact match is never ambiguous */
			matches++;
		}
	}
	return matches > 1;
}

static void bad_option(int argc, char **argv, int c)
{
	const char *arg = faulty_arg(argc, argv);
	int is_long = strncmp(arg, "--", 2) == 0;

	if (c == ':') {
		if (is_long)
			usage_error("option '%.*s' requires an argument",
				(int)strcspn(arg, "="), arg);
		usage_error("option requires an argument -- '%c'", optopt);
	}
	if (is_long) {
		if (optopt != 0)
			usage_error("option '%.*s' doesn't allow an argument",
				(int)strcspn(arg, "="), arg);
		if (ambiguous(arg))
			usage_error("option '%.*s' is ambiguous",
				(int)strcspn(arg, "="), arg);
		usage_error("unrecognized option '%s'", arg);
	}
	usage_error("invalid option -- '%c'", optopt);
}

static void version(void)
{
	printf("tally %s\n%s\n", TALLY_VERSION, tally_library_versions());
}

/* Would outputs named a and b (either may be NULL) write over each other?
 * A device, a FIFO or the file a standard stream is open on takes both in
 * turn; a regular file would keep only the one renamed over it last. */
static int same_target(const char *a, const char *b)
{
	struct stat sa, sb;
	if (!a || !b)
		return 0;
	int fa = stat(a, &sa) == 0;
	if (fa && (!S_ISREG(sa.st_mode) || tally_std_stream(a) >= 0))
		return 0;
	if (strcmp(a, b) == 0)
		return 1;
	int fb = stat(b, &sb) == 0;
	if (fa || fb)
		return fa && fb && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	/* Neither exists yet: the same name in the same directory. */
	const char *ba = strrchr(a, '/'), *bb = strrchr(b, '/');
	if (strcmp(ba ? ba + 1 : a, bb ? bb + 1 : b) != 0)
		return 0;
	char *da = strndup(a, ba ? (size_t)(ba - a) + 1 : 0);
	char *db = strndup(b, bb ? (size_t)(bb - b) + 1 : 0);
	int same = da && db && stat(*da ? da : ".", &sa) == 0 && stat(*db ? db : ".", &sb) == 0 &&
		sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	free(da);
	free(db);
	return same;
}

/* Options into o; returns the index of the first operand (getopt moved the
 * operands behind the options). */
static int parse_options(int argc, char **argv, cli_options *o, int merge)
{
	static const char *const split_names[] = { "unicode", "space", NULL };
	static const char *const case_names[] = { "lower", "ascii", "keep", NULL };
	static const tally_case case_values[] = { TALLY_CASE_LOWER, TALLY_CASE_ASCII, TALLY_CASE_KEEP };
	static const char *const sort_names[] = { "count", "key", "none", NULL };
	static const tally_sort sort_values[] = { TALLY_SORT_COUNT, TALLY_SORT_KEY, TALLY_SORT_NONE };
	static const char *const format_names[] = { "tsv", "csv", "json", "ndjson", "uniq", NULL };
	static const tally_format format_values[] = { TALLY_FORMAT_TSV, TALLY_FORMAT_CSV,
		TALLY_FORMAT_JSON, TALLY_FORMAT_NDJSON, TALLY_FORMAT_UNIQ };
	static const char *const io_names[] = { "auto", "mmap", "read", NULL };
	static const tally_io io_values[] = { TALLY_IO_AUTO, TALLY_IO_MMAP, TALLY_IO_READ };
	tally_config *cfg = &o->cfg;
	int delimiter_set = 0;
	int split_set = 0;
	int c;

	memset(o, 0, sizeof *o);
	tally_config_init(cfg);
	o->format = TALLY_FORMAT_TSV;
	o->progress = -1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
		switch (c) {
		case 'w':
			set_mode(o, c);
			key_option(o, "--words");
			cfg->mode = TALLY_MODE_WORDS;
			cfg->ngram = 1;
			break;
		case OPT_NGRAM:
			set_mode(o, c);
			key_option(o, "--ngram");
			cfg->mode = TALLY_MODE_WORDS;
			cfg->ngram = (unsigned)parse_number("--ngram", optarg, (unsigned)-1);
			if (cfg->ngram == 0)
				usage_error("invalid number for --ngram: '%s'", optarg);
			break;
		case 'l':
			set_mode(o, c);
			key_option(o, "--lines");
			cfg->mode = TALLY_MODE_LINES;
			break;
		case 'f':
			set_mode(o, c);
			key_option(o, "--field");
			cfg->mode = TALLY_MODE_FIELDS;
			if (optarg[0] == '\0')
				usage_error("invalid value for --field: ''");
			if (cfg->fields)
				usage_error("only one --field list may be given (as in -f %s,%s)",
					cfg->fields, optarg);
			cfg->fields = optarg;
			break;
		case 'd':
			key_option(o, "--delimiter");
			cfg->delimiter = parse_delimiter(optarg);
			delimiter_set = 1;
			break;
		case OPT_CSV:
			key_option(o, "--csv");
			cfg->csv = 1;
			break;
		case OPT_HEADER:
			key_option(o, "--header");
			cfg->header = 1;
			break;
		case OPT_SPLIT:
			key_option(o, "--split");
			split_set = 1;
			cfg->split = parse_enum("--split", optarg, split_names) == 0
				? TALLY_SPLIT_UNICODE : TALLY_SPLIT_SPACE;
			break;
		case OPT_CASE:
			key_option(o, "--case");
			cfg->casemode = case_values[parse_enum("--case", optarg, case_names)];
			break;
		case OPT_MIN_LENGTH:
			key_option(o, "--min-length");
			cfg->min_length = (size_t)parse_number("--min-length", optarg, SIZE_MAX);
			break;
		case OPT_MAX_LENGTH:
			key_option(o, "--max-length");
			cfg->max_length = (size_t)parse_number("--max-length", optarg, SIZE_MAX);
			if (cfg->max_length == 0)
				usage_error("invalid number for --max-length: '%s'", optarg);
			break;
		case OPT_STOPWORDS:
			key_option(o, "--stopwords");
			cfg->stopwords_path = optarg;
			break;
		case OPT_MIN_COUNT:
			cfg->min_count = parse_number("--min-count", optarg, UINT64_MAX);
			break;
		case OPT_MAX_KEY_BYTES:
			cfg->max_key_bytes = (size_t)parse_size("--max-key-bytes", optarg, 1);
			break;
		case OPT_SORT:
			cfg->sort = sort_values[parse_enum("--sort", optarg, sort_names)];
			break;
		case 'n':
			cfg->top = parse_number("--top", optarg, UINT64_MAX);
			o->top_zero = cfg->top == 0;
			break;
		case OPT_FORMAT:
			o->format = format_values[parse_enum("--format", optarg, format_names)];
			break;
		case 'o':
			if (optarg[0] == '\0')
				usage_error("invalid value for --output: ''");
			o->output = optarg;
			break;
		case OPT_FILES0_FROM:
			o->files0_from = optarg;
			break;
		case 'j':
			cfg->threads = (unsigned)parse_number("--threads", optarg, 1024);
			break;
		case 'm':
			cfg->memory = parse_size("--memory", optarg, 1);
			break;
		case 'T':
			if (optarg[0] == '\0')
				usage_error("invalid value for --tmpdir: ''");
			cfg->tmpdir = optarg;
			break;
		case OPT_IO:
			cfg->io = io_values[parse_enum("--io", optarg, io_names)];
			break;
		case OPT_CHUNK_SIZE:
			cfg->chunk_size = (size_t)parse_size("--chunk-size", optarg, 1);
			break;
		case OPT_SHARD:
			parse_shard(optarg, &cfg->shard_k, &cfg->shard_n);
			break;
		case 's':
			o->stats = 1;
			break;
		case OPT_STATS_JSON:
			if (optarg[0] == '\0')
				usage_error("invalid value for --stats-json: ''");
			o->stats_json = optarg;
			break;
		case OPT_PROGRESS:
			o->progress = 1;
			break;
		case OPT_NO_PROGRESS:
			o->progress = 0;
			break;
		case OPT_REPORT:
			/* Not standard output: the picture, drawn when the count
			 * ends, would land before the results. */
			if (strcmp(optarg, "-") == 0 || optarg[0] == '\0')
				usage_error("invalid value for --report: '%s' (a file name, such as "
					"/dev/stdout, is needed)", optarg);
			cfg->report_path = optarg;
			break;
		case OPT_HELP:
			usage(EXIT_SUCCESS);
			return -1;
		case OPT_VERSION:
			version();
			return -1;
		default:
			bad_option(argc, argv, c);
		}
	}

	if (merge) {
		if (o->key_opt)
			usage_error("merge: %s does not apply: count files are summed as they are",
				o->key_opt);
		if (cfg->shard_n)
			usage_error("merge: --shard does not apply: count files are summed whole");
		cfg->mode = TALLY_MODE_COUNTS;
	} else if (cfg->mode != TALLY_MODE_FIELDS) {
		if (cfg->csv)
			usage_error("--csv applies to --field only");
		if (cfg->header)
			usage_error("--header applies to --field only");
		if (delimiter_set)
			usage_error("--delimiter applies to --field only");
	}
	if (!merge && split_set && cfg->mode != TALLY_MODE_WORDS)
		usage_error("--split applies to --words and --ngram only");
	if (cfg->max_length && cfg->min_length > cfg->max_length)
		usage_error("--min-length is greater than --max-length");
	if (o->files0_from && optind < argc)
		usage_error("extra operand '%s': file operands cannot be combined with --files0-from",
			argv[optind]);
	const char *out = o->output && strcmp(o->output, "-") != 0 ? o->output : NULL;
	const char *sj = o->stats_json && strcmp(o->stats_json, "-") != 0 ? o->stats_json : NULL;
	if (same_target(out, sj))
		usage_error("--output and --stats-json name the same file: '%s'", sj);
	if (same_target(out, cfg->report_path))
		usage_error("--output and --report name the same file: '%s'", cfg->report_path);
	if (same_target(sj, cfg->report_path))
		usage_error("--stats-json and --report name the same file: '%s'", cfg->report_path);
	return optind;
}

/* ---- Callbacks ------------------------------------------------------- */

/* Erase the progress line if it is drawn (under cli_state's lock); the
 * next sample draws it again. */
static void progress_clear(void)
{
	if (atomic_load(&progress_drawn)) {
		tally_progress_erase(stderr);
		atomic_store(&progress_drawn, 0);
	}
}

/* Print "tally: MESSAGE" on stderr, the progress line erased first. */
__attribute__((format(printf, 2, 3)))
static void say(cli_state *st, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&st->lock);
	progress_clear();
	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&st->lock);
}

static void on_error(void *ctx, const char *msg)
{
	say(ctx, "%s", msg);
}

/* The output is about to go to the terminal the progress line is on: the
 * line is erased and drawn no more, lest the two run into each other. */
static void hold_progress(cli_state *st)
{
	pthread_mutex_lock(&st->lock);
	progress_clear();
	st->hold = 1;
	pthread_mutex_unlock(&st->lock);
}

/* Short runs show nothing: the line appears once the run lasted this long. */
#define PROGRESS_DELAY 0.5

/* The width of the terminal standard error is on, asked at each redraw (a
 * few times a second), so that a resized window is followed; else
 * $COLUMNS, else 80. */
static unsigned stderr_columns(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *env = getenv("COLUMNS");
	if (env && *env >= '1' && *env <= '9') {
		char *end;
		unsigned long n = strtoul(env, &end, 10);
		if (*end == '\0' && n <= 65535)
			return (unsigned)n;
	}
	return 80;
}

static void on_progress(void *ctx, const tally_progress *p, int final)
{
	cli_state *st = ctx;

	pthread_mutex_lock(&st->lock);
	if (final) {
		progress_clear();
	} else if (p->elapsed >= PROGRESS_DELAY && !st->hold) {
		atomic_store(&progress_busy, 1);
		if (!atomic_load(&progress_dying)) {
			/* Set first: a signal while the line is written erases it. */
			atomic_store(&progress_drawn, 1);
			tally_progress_render(stderr, p, stderr_columns());
			fflush(stderr);
		}
		atomic_store(&progress_busy, 0);
	}
	pthread_mutex_unlock(&st->lock);
}

/* ---- Running --------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Tell the engine the size of all the inputs up front, so that the progress
 * line shows a percentage and a time left, when it is known: every input is
 * a regular file (or one that fails to open, and gives no bytes).  With
 * standard input or a pipe among them, the total would fall short of the
 * bytes read, and no total is declared: the line shows bytes and rate. */
static void declare_sizes(tally_engine *e, char **names, int n)
{
	uint64_t total = 0;
	for (int i = 0; i < n; i++) {
		struct stat sb;
		if (strcmp(names[i], "-") == 0)
			return;
		if (stat(names[i], &sb) != 0 || S_ISDIR(sb.st_mode))
			continue;
		if (!S_ISREG(sb.st_mode))
			return;
		total += (uint64_t)sb.st_size;
	}
	tally_expect_bytes(e, total);
}

/* Count one input.  Returns 0, 1 when it failed (reported), or -2 fatal. */
static int add_input(tally_engine *e, const char *path)
{
	int rc = tally_add_path(e, path);

	if (rc == -2)
		return -2;
	return rc < 0 ? 1 : 0;
}

/* Count the inputs named in F, NUL-separated, as wc --files0-from does.
 * Returns 0, 1 when some input failed or a name was invalid, -2 fatal. */
static int add_files0_from(tally_engine *e, cli_state *st, const char *from)
{
	int from_stdin = strcmp(from, "-") == 0;
	FILE *f = from_stdin ? stdin : fopen(from, "r");
	char *name = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;

	if (!f) {
		char msg[TALLY_ERR_MAX];
		snprintf(msg, sizeof msg, "cannot open '%s' for reading: %s", from, strerror(errno));
		on_error(st, msg);
		return 1;
	}
	errno = 0;
	for (unsigned long long nth = 1; (n = getdelim(&name, &cap, '\0', f)) != -1; nth++) {
		int rc;

		if (n > 0 && name[n - 1] == '\0')
			n--;
		if (n == 0) {
			/* Where, as wc says it: the list and the name's place. */
			char msg[TALLY_ERR_MAX];
			snprintf(msg, sizeof msg, "%s:%llu: invalid zero-length file name", from, nth);
			on_error(st, msg);
			status = 1;
			continue;
		}
		if (from_stdin && strcmp(name, "-") == 0) {
			on_error(st, "when reading file names from standard input, no file name of '-' allowed");
			status = 1;
			continue;
		}
		rc = add_input(e, name);
		if (rc == -2) {
			status = -2;
			break;
		}
		if (rc)
			status = 1;
		errno = 0;
	}
	if (status != -2 && ferror(f)) {
		char msg[TALLY_ERR_MAX];
		snprintf(msg, sizeof msg, "%s: read error: %s",
			from_stdin ? "standard input" : from, strerror(errno ? errno : EIO));
		on_error(st, msg);
		status = 1;
	}
	free(name);
	if (!from_stdin)
		fclose(f);
	return status;
}

/* Check stdout at exit, as gnulib's close_stdout: a failed flush is a write
 * error; a closed pipe is not ours to report. */
static int close_stdout(int reported)
{
	int failed = ferror(stdout);
	int saved;

	errno = 0;
	if (fclose(stdout) != 0)
		failed = 1;
	saved = errno;
	if (!failed || reported || saved == EPIPE)
		return 0;
	if (saved)
		fprintf(stderr, "tally: write error: %s\n", strerror(saved));
	else
		fputs("tally: write error\n", stderr);
	return 1;
}

/* Standard descriptors that are closed get a file, opened so that using
 * them fails as it would have (EBADF: stdin write-only, stdout and stderr
 * read-only): then no file this run opens (the -o temporary file, an
 * input, a run) can land on them and be written to, or closed, as one.
 * stdout and stderr get an empty file of their own (memfd), not /dev/null:
 * -o /dev/stdout, which leads to it, is then refused (tally_writer_open),
 * where it would have opened /dev/null and lost the output. */
static void reserve_std_fds(void)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		int nfd = -1;
		if (fd != STDIN_FILENO) {
			int m = memfd_create("tally-closed-stream", MFD_CLOEXEC);
			if (m >= 0) {
				char path[64];
				snprintf(path, sizeof path, "/proc/self/fd/%d", m);
				nfd = open(path, O_RDONLY);
				close(m);
			}
		}
		if (nfd < 0)
			nfd = open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY);
		if (nfd >= 0 && nfd != fd) {
			dup2(nfd, fd);
			close(nfd);
		}
	}
}

/* The --stats-json file this run made, while the statistics are not in
 * it: removed when the run fails, a fatal signal included.  NULL: none. */
static _Atomic(const char *) stats_json_made;

/* --stats-json FILE is opened before the count, so that a name that cannot
 * be written fails at once (and before -o is replaced), and a regular file
 * is emptied only when the statistics are written.  NULL with a message
 * when it fails; stdout for "-", and for a name of the file that standard
 * output (or error) is open on, which is written to after what is there,
 * not emptied. */
static FILE *open_stats_json(const char *path)
{
	int std_fd = strcmp(path, "-") == 0 ? STDOUT_FILENO : tally_std_stream(path);
	if (std_fd >= 0)
		return std_fd == STDOUT_FILENO ? stdout : stderr;
	if (std_fd == -2) {
		message("%s: %s", path, strerror(EBADF));
		return NULL;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd >= 0)
		atomic_store(&stats_json_made, path);
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		message("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return f;
}

/* Can the report be written where --report says?  Asked before the count
 * (a temporary file made beside it and removed), not found out after it.
 * A device or a FIFO is opened only when the report is written. */
static int report_writable(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return 1;
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_TSV, err, errlen);
	if (!w)
		return 0;
	tally_writer_close(w, 0, NULL, 0);
	return 1;
}

static int is_std(const FILE *f)
{
	return f == stdout || f == stderr;
}

/* Close a --stats-json file the statistics were not written to, and
 * remove it if this run made it. */
static void drop_stats_json(FILE *f, const char *path)
{
	if (f && !is_std(f)) {
		fclose(f);
		if (atomic_exchange(&stats_json_made, NULL))
			unlink(path);
	}
}

/* Empty f if it is a regular file (a device or a pipe cannot be). */
static int empty_if_regular(FILE *f)
{
	struct stat sb;
	if (fstat(fileno(f), &sb) != 0)
		return -1;
	return S_ISREG(sb.st_mode) ? ftruncate(fileno(f), 0) : 0;
}

/* Write the statistics to f; 0, 1 after a reported failure, or 2 when the
 * reader of standard output went away (quietly, as for the counts). */
static int write_stats_json(FILE *f, const char *path, const tally_stats *st)
{
	int to_std = is_std(f);
	int rc;

	if (!to_std && empty_if_regular(f) != 0) {
		message("%s: %s", path, strerror(errno));
		fclose(f);
		return 1;
	}
	rc = tally_stats_write_json(f, st);
	if (to_std)
		rc = fflush(f) == 0 && rc == 0 ? 0 : -1;
	else if (fclose(f) != 0)
		rc = -1;
	/* A signal leaves it now; a file this run made and could not fill
	 * (a full disk) goes. */
	int e = errno;
	if (atomic_exchange(&stats_json_made, NULL) && rc != 0)
		unlink(path);
	errno = e;
	if (rc != 0) {
		if (to_std && errno == EPIPE)
			return 2;
		message("%s: %s",
			f == stdout ? "standard output" : f == stderr ? "standard error" : path,
			strerror(errno ? errno : EIO));
		return 1;
	}
	return 0;
}

/* What a fatal signal undoes of the command line's own before the process
 * dies: the progress line is erased (else the shell's prompt follows it),
 * and a --stats-json file this run made without the statistics in it yet
 * is removed.  Async-signal-safe. */
static void cli_signal_cleanup(void)
{
	/* A line being drawn is waited for, a blocked terminal at most 0.2 s. */
	atomic_store(&progress_dying, 1);
	for (int i = 0; i < 200 && atomic_load(&progress_busy); i++)
		poll(NULL, 0, 1);   /* a millisecond (poll, unlike nanosleep, is async-signal-safe) */
	if (atomic_load(&progress_drawn)) {
		ssize_t n = write(STDERR_FILENO, "\r\x1b[K", 4);
		(void)n;
	}
	const char *path = atomic_exchange(&stats_json_made, NULL);
	if (path)
		unlink(path);
}

/* On SIGINT, SIGTERM, SIGHUP and the other signals that stop a job: remove
 * the half-written -o file and the engine's run files, then die of the
 * signal.  Installed before the engine, which then leaves these signals to
 * it. */
static void on_fatal_signal(int sig)
{
	tally_signal_cleanup();
	cli_signal_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_signal_cleanup(void)
{
	size_t n;
	const int *sigs = tally_cleanup_signals(&n);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < n; i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (size_t i = 0; i < n; i++) {
		struct sigaction old;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;   /* nohup and friends: stay ignored */
		sigaction(sigs[i], &sa, NULL);
	}
}

int main(int argc, char **argv)
{
	cli_options o;
	cli_state st = { .lock = PTHREAD_MUTEX_INITIALIZER };
	tally_engine *e;
	tally_writer *w;
	FILE *stats_file = NULL;
	tally_stats stats;
	char err[TALLY_ERR_MAX];
	int usage_flag = 0;
	int status = 0;         /* 1 once anything failed */
	int write_failed = 0;   /* a write error was reported */
	int quiet_pipe = 0;     /* the reader of our output went away */
	int first;
	double t0;

	reserve_std_fds();
	/* A closed pipe and a file size limit (ulimit -f) are write errors,
	 * reported as such, not deaths that leave temporary files behind. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	install_signal_cleanup();

	/* tally merge: the rest is parsed as tally's own arguments would be. */
	int merge = argc > 1 && strcmp(argv[1], "merge") == 0;
	if (merge) {
		argc--;
		argv++;
	}
	first = parse_options(argc, argv, &o, merge);
	if (first < 0)
		return close_stdout(0) ? EXIT_FAILURE : EXIT_SUCCESS;

	o.cfg.ctx = &st;
	o.cfg.on_error = on_error;
	if (o.progress == 1 || (o.progress == -1 && isatty(STDERR_FILENO)))
		o.cfg.on_progress = on_progress;

	err[0] = '\0';
	e = tally_create(&o.cfg, err, sizeof err, &usage_flag);
	if (!e) {
		if (usage_flag)
			usage_error("%s", err);
		message("%s", err);
		return EXIT_FAILURE;
	}

	/* Open the outputs first, so a bad -o or --stats-json fails before
	 * a long count. */
	if (o.stats_json && !(stats_file = open_stats_json(o.stats_json))) {
		tally_destroy(e);
		return EXIT_FAILURE;
	}
	err[0] = '\0';
	w = tally_writer_open(o.output, o.format, err, sizeof err);
	if (!w || (o.cfg.report_path && !report_writable(o.cfg.report_path, err, sizeof err))) {
		message("%s", err);
		tally_writer_close(w, 0, NULL, 0);
		drop_stats_json(stats_file, o.stats_json);
		tally_destroy(e);
		return EXIT_FAILURE;
	}

	/* Count. */
	if (o.files0_from) {
		int rc = add_files0_from(e, &st, o.files0_from);
		if (rc == -2)
			goto fatal;
		if (rc)
			status = 1;
	} else if (first >= argc) {
		if (add_input(e, "-") == -2)
			goto fatal;
	} else {
		/* A part's size is known only once its file is read at its
		 * edges, and --files0-from names its inputs as it goes: no
		 * total for either. */
		if (o.cfg.shard_n <= 1)
			declare_sizes(e, argv + first, argc - first);
		for (int i = first; i < argc; i++)
			if (add_input(e, argv[i]) == -2)
				goto fatal;
	}
	if (tally_finish(e) != 0)
		goto fatal;
	if (tally_failed(e))
		status = 1;

	/* Write.  The progress line goes on (a merge may still be under
	 * way), unless the output shares its terminal. */
	int out_fd = tally_writer_fd(w);
	if (isatty(out_fd))
		hold_progress(&st);
	t0 = now();
	if (o.top_zero) {
		/* Nothing to write: the results are still read, for the
		 * statistics and for an input that changed. */
		tally_item it;
		int rc;
		while ((rc = tally_next(e, &it)) == 1)
			;
		if (rc < 0)
			goto fatal;
	} else {
		int rc = tally_write(e, w);
		if (rc == -2)
			goto fatal;
		if (rc < 0) {
			if (errno == EPIPE) {
				quiet_pipe = 1;
			} else {
				say(&st, "%s: %s", o.output ? o.output : "standard output",
					strerror(errno));
				write_failed = 1;
				status = 1;
			}
		}
	}
	err[0] = '\0';
	/* A failed input leaves a named target alone (SPEC 7); on stdout (or
	 * another stream, device or FIFO, written as it goes) the output is
	 * finished so that it stays well-formed, and the status says 1. */
	int commit = !quiet_pipe && !write_failed && (status == 0 || tally_writer_in_place(w));
	if (tally_writer_close(w, commit, err, sizeof err) != 0
			&& !quiet_pipe && !write_failed) {
		if (errno == EPIPE) {
			quiet_pipe = 1;
		} else {
			say(&st, "%s", err);
			write_failed = 1;
			status = 1;
		}
	}

	/* The statistics and the report complete, even after a closed pipe,
	 * the closing of the output (its last writes, the rename) timed too. */
	if (tally_end_output(e, now() - t0, o.stats || stats_file) != 0) {
		say(&st, "%s", tally_errmsg(e));
		status = 1;
	}
	if (tally_failed(e))
		status = 1;

	/* Statistics.  Asked for and lost (standard error on a full disk or
	 * closed), they fail the run, as coreutils' close_stdout has it; there
	 * is nowhere to say so. */
	tally_get_stats(e, &stats);
	if (o.stats) {
		tally_stats_print(stderr, &stats);
		if (fflush(stderr) != 0 || ferror(stderr))
			status = 1;
	}
	if (stats_file == stdout && write_failed && out_fd == STDOUT_FILENO) {
		/* Standard output failed under the keys, and that was said. */
	} else if (stats_file) {
		int rc = write_stats_json(stats_file, o.stats_json, &stats);
		if (rc == 2)
			quiet_pipe = 1;
		else if (rc)
			status = 1;
		if (rc == 1 && stats_file == stdout)
			write_failed = 1;   /* said: not again at close_stdout */
	}

	tally_destroy(e);
	if (close_stdout(write_failed || quiet_pipe))
		status = 1;
	return status ? EXIT_FAILURE : EXIT_SUCCESS;

fatal:
	say(&st, "%s", tally_errmsg(e));
	tally_writer_close(w, 0, err, sizeof err);
	drop_stats_json(stats_file, o.stats_json);
	tally_destroy(e);
	return EXIT_FAILURE;
}
