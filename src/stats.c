/*
 * stats.c - what a run cost: resident memory from the kernel, the sampler
 * thread behind the progress line and the report's timeline, the progress
 * line itself, and the final statistics as text and as JSON (see stats.h and
 * tally.h).  The SVG report is in report.c.
 *
 * The sampler never touches the counting path: workers keep their figures in
 * atomics, the read callback loads them, and everything else a sample holds
 * (RSS, per-component memory, throughput) is read here.
 */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- Clock and resident memory ----------------------------------------- */

double stats_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read a whole small /proc file into buf (NUL-terminated).  Returns the
 * length, or -1.  open/read rather than stdio: no allocation, no lock, cheap
 * enough for a few calls a second. */
static ssize_t read_proc(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len + 1 < cap) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* The value of a "Name:   123 kB" line of /proc/self/status, in the file's
 * unit.  Returns 0 and *out, or -1 when the line is missing. */
static int status_field(const char *name, uint64_t *out)
{
	char buf[8192];
	if (read_proc("/proc/self/status", buf, sizeof buf) <= 0)
		return -1;
	size_t nlen = strlen(name);
	for (const char *line = buf; line && *line; ) {
		if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *p = line + nlen + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p < '0' || *p > '9')
				return -1;
			uint64_t v = 0;
			while (*p >= '0' && *p <= '9')
				v = v * 10 + (uint64_t)(*p++ - '0');
			*out = v;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

static uint64_t rusage_peak(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;   /* KiB on Linux */
}

uint64_t stats_rss_now(void)
{
	uint64_t kib;
	if (status_field("VmRSS", &kib) == 0)
		return kib * 1024;
	/* statm: size resident shared ... in pages. */
	char buf[256];
	if (read_proc("/proc/self/statm", buf, sizeof buf) > 0) {
		const char *p = strchr(buf, ' ');
		long page = sysconf(_SC_PAGESIZE);
		if (p && page > 0) {
			uint64_t pages = 0;
			for (p++; *p >= '0' && *p <= '9'; p++)
				pages = pages * 10 + (uint64_t)(*p - '0');
			return pages * (uint64_t)page;
		}
	}
	return rusage_peak();
}

uint64_t stats_rss_peak(void)
{
	uint64_t kib;
	if (status_field("VmHWM", &kib) == 0)
		return kib * 1024;
	return rusage_peak();
}

/* ---- Human figures ------------------------------------------------------ */

/* v in units of step (1024 or 1000) with the largest unit that keeps it
 * under one step: one decimal below 100, none above ("41.3", "212"). */
static char *format_scaled(char *buf, size_t cap, double v, double step,
	const char *const *units, size_t nunits, const char *sep)
{
	size_t u = 0;
	/* Up a unit already when the figure would round to a full step
	 * ("1.0 MiB", not "1024 KiB"). */
	while (u + 1 < nunits && v >= step - 0.5) {
		v /= step;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%.0f%s%s", v, sep, units[0]);
	else if (v < 99.95)
		snprintf(buf, cap, "%.1f%s%s", v, sep, units[u]);
	else
		snprintf(buf, cap, "%.0f%s%s", v, sep, units[u]);
	return buf;
}

char *stats_format_bytes(char *buf, size_t cap, uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	return format_scaled(buf, cap, (double)bytes, 1024.0, units, 7, " ");
}

char *stats_format_count(char *buf, size_t cap, uint64_t n)
{
	static const char *const units[] = { "", "K", "M", "G", "T", "P", "E" };
	return format_scaled(buf, cap, (double)n, 1000.0, units, 7, "");
}

/* Seconds as "M:SS" or "H:MM:SS". */
static char *format_clock(char *buf, size_t cap, double seconds)
{
	if (!(seconds >= 0) || seconds > 359999999.0) {
		snprintf(buf, cap, "--:--");
		return buf;
	}
	uint64_t s = (uint64_t)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, cap, "%" PRIu64 ":%02u:%02u", s / 3600,
			(unsigned)(s / 60 % 60), (unsigned)(s % 60));
	else
		snprintf(buf, cap, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
	return buf;
}

/* MB/s with a precision that suits its size. */
static char *format_rate(char *buf, size_t cap, double mbps)
{
	if (!(mbps >= 0) || isinf(mbps))
		mbps = 0;
	snprintf(buf, cap, mbps < 99.95 ? "%.1f" : "%.0f", mbps);
	return buf;
}

/* ---- Derived figures ---------------------------------------------------- */

static double counting_seconds(const tally_stats *st)
{
	return st->t_count > 0 ? st->t_count : st->t_total;
}

double stats_mb_per_s(const tally_stats *st)
{
	double t = counting_seconds(st);
	return t > 0 ? (double)st->bytes_decoded / 1e6 / t : 0;
}

double stats_tokens_per_s(const tally_stats *st)
{
	double t = counting_seconds(st);
	return t > 0 ? (double)st->tokens / t : 0;
}

/* ---- Progress line ------------------------------------------------------ */

const char *stats_phase_name(tally_phase phase)
{
	switch (phase) {
	case TALLY_PHASE_MERGING: return "merging";
	case TALLY_PHASE_SORTING: return "sorting";
	case TALLY_PHASE_WRITING: return "writing";
	default:                  return "counting";
	}
}

/* A progress line being put together: its fields in order, each kept
 * only while it fits, so that the line ends at the first one that does
 * not (they come most telling first). */
typedef struct progress_line {
	char   buf[192];
	size_t len;       /* bytes in buf */
	size_t room;      /* columns left */
	int    full;      /* a field did not fit: none after it is added */
} progress_line;

static void line_add(progress_line *l, const char *sep, const char *text)
{
	size_t ns = strlen(sep), nt = strlen(text);
	/* 3 bytes kept for the erase to the end of the line. */
	if (l->full || ns + nt > l->room || l->len + ns + nt + 3 >= sizeof l->buf) {
		l->full = 1;
		return;
	}
	memcpy(l->buf + l->len, sep, ns);
	memcpy(l->buf + l->len + ns, text, nt);
	l->len += ns + nt;
	l->room -= ns + nt;
}

void tally_progress_render(FILE *f, const tally_progress *p, unsigned columns)
{
	char done[STATS_FIGURE_LEN], total[STATS_FIGURE_LEN], rate[STATS_FIGURE_LEN];
	char figure[STATS_FIGURE_LEN], field[3 * STATS_FIGURE_LEN];
	progress_line l = { .buf = "\r", .len = 1 };

	/* The last column is left alone: a character there makes some
	 * terminals wrap, and the next redraw would start a line lower. */
	l.room = columns > 0 ? columns - 1 : SIZE_MAX;
	/* More bytes than the total: files grew while they were read, and
	 * the total says nothing (rather than a "100%" that stays). */
	int known = p->bytes_total > 0 && p->bytes_done <= p->bytes_total;
	stats_format_bytes(done, sizeof done, p->bytes_done);
	if (known) {
		unsigned pct = p->bytes_done >= p->bytes_total ? 100
			: (unsigned)((double)p->bytes_done * 100.0 / (double)p->bytes_total);
		if (pct > 99 && p->bytes_done < p->bytes_total)
			pct = 99;   /* 100% means done */
		snprintf(field, sizeof field, "%3u%%", pct);
		line_add(&l, "", field);
		stats_format_bytes(total, sizeof total, p->bytes_total);
		snprintf(field, sizeof field, "%s/%s", done, total);
		line_add(&l, " ", field);
	} else {
		line_add(&l, " ", done);
	}

	/* Once the inputs are read, the rate and the time left say nothing:
	 * the line says what the run is doing instead. */
	if (p->phase != TALLY_PHASE_COUNTING) {
		line_add(&l, "  ", stats_phase_name(p->phase));
		if (p->phase == TALLY_PHASE_WRITING) {
			snprintf(field, sizeof field, "written %s",
				stats_format_count(figure, sizeof figure, p->written));
			line_add(&l, "  ", field);
		}
	} else {
		snprintf(field, sizeof field, "%s MB/s", format_rate(rate, sizeof rate, p->mbps));
		line_add(&l, "  ", field);
		if (known) {
			uint64_t left = p->bytes_done < p->bytes_total
				? p->bytes_total - p->bytes_done : 0;
			if (left == 0)
				snprintf(figure, sizeof figure, "0:00");
			else if (p->mbps > 0)
				format_clock(figure, sizeof figure, (double)left / (p->mbps * 1e6));
			else
				snprintf(figure, sizeof figure, "--:--");
			snprintf(field, sizeof field, "ETA %s", figure);
			line_add(&l, "  ", field);
		}
	}

	snprintf(field, sizeof field, "tokens %s",
		stats_format_count(figure, sizeof figure, p->tokens));
	line_add(&l, "  ", field);
	/* No keys for keys counted: only count files set aside were read. */
	if (p->distinct || !p->tokens) {
		snprintf(field, sizeof field, "keys %s",
			stats_format_count(figure, sizeof figure, p->distinct));
		line_add(&l, "  ", field);
	}
	snprintf(field, sizeof field, "RSS %s", stats_format_bytes(figure, sizeof figure, p->rss));
	line_add(&l, "  ", field);

	memcpy(l.buf + l.len, "\x1b[K", 3);
	fwrite(l.buf, 1, l.len + 3, f);
	fflush(f);
}

void tally_progress_erase(FILE *f)
{
	fputs("\r\x1b[K", f);
	fflush(f);
}

/* ---- Final statistics --------------------------------------------------- */

#define LABEL_WIDTH 20

static void print_bytes(FILE *f, const char *label, uint64_t v)
{
	char h[STATS_FIGURE_LEN];
	fprintf(f, "  %-*s %" PRIu64, LABEL_WIDTH, label, v);
	if (v >= 1024)
		fprintf(f, " (%s)", stats_format_bytes(h, sizeof h, v));
	fputc('\n', f);
}

static void print_count(FILE *f, const char *label, uint64_t v)
{
	char h[STATS_FIGURE_LEN];
	fprintf(f, "  %-*s %" PRIu64, LABEL_WIDTH, label, v);
	if (v >= 10000)
		fprintf(f, " (%s)", stats_format_count(h, sizeof h, v));
	fputc('\n', f);
}

static void print_seconds(FILE *f, const char *label, double t)
{
	char c[STATS_FIGURE_LEN];
	fprintf(f, "  %-*s %.3f s", LABEL_WIDTH, label, t);
	if (t >= 60)
		fprintf(f, " (%s)", format_clock(c, sizeof c, t));
	fputc('\n', f);
}

/* A rate rounded to a whole number once, so that a figure and its scaled
 * form in brackets agree ("33 counting (33)", not a truncated "(32)"). */
static uint64_t whole_rate(double v)
{
	if (!(v >= 0))
		return 0;
	if (v >= 0x1p64)
		return UINT64_MAX;
	return (uint64_t)(v + 0.5);
}

/* The figures follow SPEC section 5's list.  Throughput is given twice:
 * over the counting phase (the engine's speed, also the JSON's mb_per_s)
 * and over the whole run (what the user waited for), both of bytes
 * decoded, as labelled: the progress line's MB/s is of bytes as stored,
 * so for zstd input the two differ. */
void tally_stats_print(FILE *f, const tally_stats *st)
{
	char h[STATS_FIGURE_LEN], r1[STATS_FIGURE_LEN], r2[STATS_FIGURE_LEN];
	double overall = st->t_total > 0 ? (double)st->bytes_decoded / 1e6 / st->t_total : 0;
	double tok_overall = st->t_total > 0 ? (double)st->tokens / st->t_total : 0;

	fputs("tally: statistics\n", f);
	fprintf(f, "  %-*s %" PRIu64 " read (%" PRIu64 " compressed), %" PRIu64 " failed\n",
		LABEL_WIDTH, "files:", st->files, st->files_compressed, st->files_failed);
	print_bytes(f, "bytes read:", st->bytes_read);
	print_bytes(f, "bytes decoded:", st->bytes_decoded);
	print_count(f, "tokens:", st->tokens);
	print_count(f, "distinct keys:", st->distinct);
	print_count(f, "hapax:", st->hapax);
	print_count(f, "ill-formed bytes:", st->illformed_bytes);
	print_count(f, "cut keys:", st->cut_keys);
	print_count(f, "skipped records:", st->skipped_records);
	print_seconds(f, "time counting:", st->t_count);
	print_seconds(f, "time merging:", st->t_merge);
	print_seconds(f, "time sorting:", st->t_sort);
	print_seconds(f, "time writing:", st->t_write);
	print_seconds(f, "time total:", st->t_total);
	fprintf(f, "  %-*s %s MB/s counting, %s MB/s overall (bytes decoded)\n",
		LABEL_WIDTH, "throughput:", format_rate(r1, sizeof r1, stats_mb_per_s(st)),
		format_rate(r2, sizeof r2, overall));
	uint64_t tok_counting = whole_rate(stats_tokens_per_s(st));
	fprintf(f, "  %-*s %" PRIu64 " counting (%s), %" PRIu64 " overall\n", LABEL_WIDTH,
		"tokens/s:", tok_counting, stats_format_count(h, sizeof h, tok_counting),
		whole_rate(tok_overall));
	fprintf(f, "  %-*s %u\n", LABEL_WIDTH, "threads:", st->threads);
	print_bytes(f, "memory budget:", st->budget);
	print_bytes(f, "peak RSS:", st->peak_rss);
	print_bytes(f, "peak tables:", st->peak_table);
	print_bytes(f, "peak key pool:", st->peak_pool);
	print_bytes(f, "peak I/O buffers:", st->peak_io);
	print_bytes(f, "peak sort/spill:", st->peak_spill);
	print_count(f, "pool hits:", st->pool_hits);
	print_count(f, "pool misses:", st->pool_misses);
	print_count(f, "evictions:", st->evictions);
	print_count(f, "runs spilled:", st->runs_spilled);
	print_bytes(f, "bytes spilled:", st->bytes_spilled);
	print_count(f, "merge passes:", st->merge_passes);
	fflush(f);
}

/* A finite value for JSON, which has no NaN or infinity. */
static double json_number(double v)
{
	return isfinite(v) ? v : 0;
}

int tally_stats_write_json(FILE *f, const tally_stats *st)
{
	int r = fprintf(f,
		"{\"bytes_read\":%" PRIu64 ",\"bytes_decoded\":%" PRIu64
		",\"files\":%" PRIu64 ",\"files_compressed\":%" PRIu64
		",\"files_failed\":%" PRIu64 ",\"tokens\":%" PRIu64
		",\"distinct\":%" PRIu64 ",\"hapax\":%" PRIu64
		",\"illformed_bytes\":%" PRIu64 ",\"cut_keys\":%" PRIu64
		",\"skipped_records\":%" PRIu64,
		st->bytes_read, st->bytes_decoded, st->files, st->files_compressed,
		st->files_failed, st->tokens, st->distinct, st->hapax,
		st->illformed_bytes, st->cut_keys, st->skipped_records);
	if (r < 0)
		return -1;
	r = fprintf(f,
		",\"t_count\":%.6f,\"t_merge\":%.6f,\"t_sort\":%.6f,\"t_write\":%.6f"
		",\"t_total\":%.6f,\"mb_per_s\":%.3f,\"tokens_per_s\":%.3f",
		json_number(st->t_count), json_number(st->t_merge), json_number(st->t_sort),
		json_number(st->t_write), json_number(st->t_total),
		json_number(stats_mb_per_s(st)), json_number(stats_tokens_per_s(st)));
	if (r < 0)
		return -1;
	r = fprintf(f,
		",\"threads\":%u,\"budget\":%" PRIu64 ",\"peak_rss\":%" PRIu64
		",\"peak_table\":%" PRIu64 ",\"peak_pool\":%" PRIu64
		",\"peak_io\":%" PRIu64 ",\"peak_spill\":%" PRIu64
		",\"pool_hits\":%" PRIu64 ",\"pool_misses\":%" PRIu64
		",\"evictions\":%" PRIu64 ",\"runs_spilled\":%" PRIu64
		",\"bytes_spilled\":%" PRIu64 ",\"merge_passes\":%" PRIu64 "}\n",
		st->threads, st->budget, st->peak_rss, st->peak_table, st->peak_pool,
		st->peak_io, st->peak_spill, st->pool_hits, st->pool_misses,
		st->evictions, st->runs_spilled, st->bytes_spilled, st->merge_passes);
	if (r < 0 || fflush(f) != 0 || ferror(f))
		return -1;
	return 0;
}

/* ---- Sampler ------------------------------------------------------------ */

/* Throughput window: points at least WINDOW_STEP apart, the oldest within
 * WINDOW_SECONDS of now is the reference. */
#define WINDOW_SECONDS 3.0
#define WINDOW_POINTS  64
#define WINDOW_STEP    (WINDOW_SECONDS / (WINDOW_POINTS / 2))

typedef struct window_point {
	double   t;
	uint64_t bytes;
} window_point;

struct stats_sampler {
	pthread_t       thread;
	pthread_mutex_t lock;
	pthread_cond_t  wake;
	int             stopping;      /* under lock */
	int             joined;        /* caller's thread only */
	double          interval, t0;
	stats_read_fn   read;
	void           *read_ctx;
	int             keep;
	void          (*progress)(void *ctx, const tally_progress *p, int final);
	void           *progress_ctx;

	stats_sample    last;          /* under lock */

	/* The sampler thread's own until joined. */
	stats_sample   *tl;
	size_t          n, cap;
	uint64_t        ticks, stride;
	window_point    win[WINDOW_POINTS];
	size_t          win_first, win_len;
};

static void sample_to_progress(const stats_sample *s, tally_progress *p)
{
	p->elapsed = s->t;
	p->bytes_done = s->bytes_done;
	p->bytes_total = s->bytes_total;
	p->tokens = s->tokens;
	p->distinct = s->distinct;
	p->rss = s->rss;
	p->mbps = s->mbps;
	p->phase = s->phase;
	p->written = s->written;
}

static void window_push(stats_sampler *s, double t, uint64_t bytes)
{
	if (s->win_len > 0) {
		const window_point *newest = &s->win[(s->win_first + s->win_len - 1) % WINDOW_POINTS];
		if (t - newest->t < WINDOW_STEP)
			return;
	}
	if (s->win_len == WINDOW_POINTS) {
		s->win_first = (s->win_first + 1) % WINDOW_POINTS;
		s->win_len--;
	}
	s->win[(s->win_first + s->win_len) % WINDOW_POINTS] = (window_point){ t, bytes };
	s->win_len++;
}

/* MB/s since the oldest point of the last WINDOW_SECONDS (or since the
 * newest point, when all are older, as after a long interval). */
static double window_rate(const stats_sampler *s, double t, uint64_t bytes, double previous)
{
	const window_point *ref = NULL;
	for (size_t i = 0; i < s->win_len; i++) {
		const window_point *w = &s->win[(s->win_first + i) % WINDOW_POINTS];
		if (t - w->t <= WINDOW_SECONDS) {
			ref = w;
			break;
		}
	}
	if (!ref && s->win_len > 0)
		ref = &s->win[(s->win_first + s->win_len - 1) % WINDOW_POINTS];
	if (!ref || t - ref->t <= 0)
		return previous;
	uint64_t d = bytes >= ref->bytes ? bytes - ref->bytes : 0;
	return (double)d / 1e6 / (t - ref->t);
}

static void take_sample(stats_sampler *s, stats_sample *smp, double previous_mbps)
{
	memset(smp, 0, sizeof *smp);
	smp->t = stats_now() - s->t0;
	s->read(s->read_ctx, smp);
	smp->rss = stats_rss_now();
	for (int c = 0; c < MEM_NCOMPONENTS; c++)
		smp->mem[c] = mem_current((mem_component)c);
	smp->mbps = window_rate(s, smp->t, smp->bytes_done, previous_mbps);
	window_push(s, smp->t, smp->bytes_done);
}

/* Drop every other sample (keeping those at odd positions, so the kept ones
 * stay evenly spaced in ticks) and keep every second tick from now on. */
static void timeline_thin(stats_sampler *s)
{
	size_t k = 0;
	for (size_t i = 1; i < s->n; i += 2)
		s->tl[k++] = s->tl[i];
	s->n = k;
	s->stride *= 2;
}

/* Keep a sample: every stride-th tick, or always (the last one). */
static void timeline_record(stats_sampler *s, const stats_sample *smp, int always)
{
	if (!s->keep)
		return;
	if (!always && ++s->ticks % s->stride != 0)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		if (cap > STATS_TIMELINE_MAX + 1)
			cap = STATS_TIMELINE_MAX + 1;
		if (cap <= s->n)
			return;
		stats_sample *tl = mem_realloc(MEM_OTHER, s->tl, s->cap * sizeof *tl, cap * sizeof *tl);
		if (!tl)
			return;   /* the report loses a point, the run goes on */
		s->tl = tl;
		s->cap = cap;
	}
	s->tl[s->n++] = *smp;
	if (!always && s->n >= STATS_TIMELINE_MAX)
		timeline_thin(s);
}

static struct timespec deadline(double t)
{
	struct timespec ts;
	double sec = floor(t);
	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = (long)((t - sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void *sampler_main(void *arg)
{
	stats_sampler *s = arg;
	stats_sample smp;
	tally_progress p;
	double mbps = 0;

	/* The reference point for the first throughput figure. */
	memset(&smp, 0, sizeof smp);
	s->read(s->read_ctx, &smp);
	window_push(s, stats_now() - s->t0, smp.bytes_done);

	double next = s->interval;
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec ts = deadline(s->t0 + next);
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
		if (s->stopping)
			break;
		if (stats_now() - s->t0 < next)
			continue;   /* woken early */
		pthread_mutex_unlock(&s->lock);

		take_sample(s, &smp, mbps);
		mbps = smp.mbps;
		timeline_record(s, &smp, 0);

		pthread_mutex_lock(&s->lock);
		if (s->progress) {
			sample_to_progress(&smp, &p);
			s->progress(s->progress_ctx, &p, 0);
		}
		s->last = smp;
		/* A late wake-up is skipped rather than caught up in a burst. */
		double now = stats_now() - s->t0;
		next += s->interval;
		if (next <= now)
			next = now + s->interval;
	}
	pthread_mutex_unlock(&s->lock);

	take_sample(s, &smp, mbps);
	timeline_record(s, &smp, 1);
	pthread_mutex_lock(&s->lock);
	s->last = smp;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

stats_sampler *stats_sampler_start(double interval, stats_read_fn read, void *read_ctx,
	int keep, void (*progress)(void *ctx, const tally_progress *p, int final),
	void *progress_ctx)
{
	if (!read)
		return NULL;
	stats_sampler *s = mem_calloc(MEM_OTHER, 1, sizeof *s);
	if (!s)
		return NULL;
	s->interval = interval >= 1e-4 ? interval : 1e-4;
	s->read = read;
	s->read_ctx = read_ctx;
	s->keep = keep;
	s->progress = progress;
	s->progress_ctx = progress_ctx;
	s->stride = 1;

	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		goto fail_free;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		goto fail_free;
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		goto fail_cond;

	/* Signals belong to the caller's thread (temporary files are removed by
	 * its handler), so the sampler starts with all of them blocked. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	s->t0 = stats_now();
	rc = pthread_create(&s->thread, NULL, sampler_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		goto fail_mutex;
	return s;

fail_mutex:
	pthread_mutex_destroy(&s->lock);
fail_cond:
	pthread_cond_destroy(&s->wake);
fail_free:
	mem_free(MEM_OTHER, s, sizeof *s);
	return NULL;
}

void stats_sampler_stop(stats_sampler *s)
{
	if (!s || s->joined)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->joined = 1;
}

const stats_sample *stats_sampler_timeline(const stats_sampler *s, size_t *n)
{
	*n = s->n;
	return s->tl;
}

void stats_sampler_last(const stats_sampler *s, tally_progress *p)
{
	/* The lock is the sampler's own, not part of its observable state. */
	stats_sampler *m = (stats_sampler *)s;
	pthread_mutex_lock(&m->lock);
	sample_to_progress(&s->last, p);
	pthread_mutex_unlock(&m->lock);
}

void stats_sampler_free(stats_sampler *s)
{
	if (!s)
		return;
	stats_sampler_stop(s);
	mem_free(MEM_OTHER, s->tl, s->cap * sizeof *s->tl);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	mem_free(MEM_OTHER, s, sizeof *s);
}
