/*
 * output.c - output formats and the writer.
 *
 * The bytes of each format (KEY is the key after the format's escaping,
 * COUNT the count in decimal, no padding unless said):
 *
 *   tsv     KEY \t COUNT \n
 *           backslash, TAB, LF and CR in a key become \\ \t \n \r; every
 *           other byte (NUL and ill-formed UTF-8 included) is written as is.
 *   csv     a header line "key,count", then KEY , COUNT per key, every line
 *           ended by CRLF (RFC 4180, and what Python's csv module writes by
 *           default).  Quoting follows Python's QUOTE_MINIMAL: a key is put
 *           in double quotes, with its quotes doubled, exactly when it holds
 *           a comma, a double quote, CR or LF.  Leading or trailing spaces
 *           and the empty key are not quoted (the empty key is ",COUNT").
 *   json    one array: "[" LF, the objects separated by "," LF, then LF "]"
 *           LF; no results is "[]" LF.  An object is
 *           {"key":"KEY","count":COUNT} with no spaces.
 *   ndjson  one object per line: {"key":"KEY","count":COUNT} LF.
 *           JSON strings escape per RFC 8259: \" \\ \n \r \t \b \f, the
 *           other control characters as \u00xx (lowercase hex); DEL and
 *           valid UTF-8 pass through; every byte of an ill-formed UTF-8
 *           sequence (overlong forms, surrogates, code points above
 *           U+10FFFF, stray or missing continuation bytes) becomes U+FFFD.
 *   uniq    COUNT right-aligned in 7 columns (wider when it needs more), a
 *           space, the raw key bytes, LF: printf("%7" PRIu64 " %s\n") as
 *           uniq -c prints, except that a NUL in the key is written too.
 *
 * Writing goes through one 256 KiB buffer (counted under MEM_IO) and, for a
 * name ending in ".zst", a zstd stream (level 3, with checksum).  Errors
 * are sticky: after the first failed write every put returns -1 with the
 * same errno, and close reports "NAME: reason", where NAME is the path
 * given to tally_writer_open or "standard output".
 */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mem.h"
#include "spill.h"

#define OUT_BUFSIZE   (256u * 1024u)
#define OUT_ZLEVEL    3
#define OUT_ZJOB      (2u << 20)
#define OUT_TEXT_FIRST (64u * 1024u)
#define OUT_STDOUT    "standard output"

/* Largest output of one escaped input step (a \u00xx escape). */
#define ESC_MAXSTEP   6

struct tally_writer {
	out_sink       sink;        /* first: the sink's room finds the writer */
	tally_format   fmt;
	int            fd;
	int            owns_fd;     /* close fd at the end (not stdout) */
	const char    *name;        /* for messages: the path or OUT_STDOUT */
	char          *target;      /* renamed over at commit; NULL when direct */
	char          *tmp;         /* temporary file; NULL when writing directly */
	size_t         block_size;  /* bytes of this struct and its strings */
	uint64_t       items;
	int            err_no;      /* first write error; 0 while all is well */
	const char    *why;         /* reason overriding strerror(err_no), or NULL */
	ZSTD_CCtx     *zc;
	unsigned char *zbuf;
	size_t         zcap;
	size_t         zaccounted;  /* zstd's own workspace, counted under MEM_IO */
};

/* The temporary files to remove from a signal handler: one per writer open
 * at once through a temporary file (the results, and the report written
 * while they are open). */
#define OUT_TMP_SLOTS 4
static _Atomic(char *) active_tmp[OUT_TMP_SLOTS];

/* ---- Formats -------------------------------------------------------- */

static const char *const format_names[] = {
	[TALLY_FORMAT_TSV] = "tsv",
	[TALLY_FORMAT_CSV] = "csv",
	[TALLY_FORMAT_JSON] = "json",
	[TALLY_FORMAT_NDJSON] = "ndjson",
	[TALLY_FORMAT_UNIQ] = "uniq",
};

int output_parse_format(const char *name, tally_format *fmt)
{
	for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
		if (strcmp(name, format_names[i]) == 0) {
			*fmt = (tally_format)i;
			return 0;
		}
	}
	return -1;
}

const char *output_format_name(tally_format fmt)
{
	if ((unsigned)fmt < sizeof format_names / sizeof format_names[0])
		return format_names[fmt];
	return "?";
}

/* ---- Escaping ------------------------------------------------------- */

/* How the bytes of a key body are written (the quotes around it are the
 * caller's). */
typedef enum esc_mode {
	ESC_RAW = 0,  /* as is: uniq, unquoted csv */
	ESC_TSV,      /* \\ \t \n \r */
	ESC_CSVQ,     /* inside csv quotes: "" for " */
	ESC_JSON      /* RFC 8259 string body, ill-formed UTF-8 as U+FFFD */
} esc_mode;

#define R8(x)  x, x, x, x, x, x, x, x
#define R16(x) R8(x), R8(x)

/* Bytes that end a run of plain bytes, per mode.  In JSON, 1 is an ASCII
 * byte to escape and 2 starts a multi-byte sequence to validate. */
static const unsigned char esc_tsv[256] = {
	['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\\'] = 1,
};
static const unsigned char esc_csvq[256] = {
	['"'] = 1,
};
static const unsigned char csv_quote_needed[256] = {
	[','] = 1, ['"'] = 1, ['\r'] = 1, ['\n'] = 1,
};
static const unsigned char esc_json[256] = {
	R16(1), R16(1),                                /* 0x00-0x1f */
	0, 0, 1, 0, 0, 0, 0, 0, R8(0),                 /* 0x20-0x2f: '"' */
	R16(0), R16(0),                                /* 0x30-0x4f */
	R8(0), 0, 0, 0, 0, 1, 0, 0, 0,                 /* 0x50-0x5f: '\\' */
	R16(0), R16(0),                                /* 0x60-0x7f */
	R16(2), R16(2), R16(2), R16(2),                /* 0x80-0xbf */
	R16(2), R16(2), R16(2), R16(2),                /* 0xc0-0xff */
};

static const char hex_digits[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 sequence at s (n bytes available, s[0]
 * >= 0x80), or 0 when it is ill-formed (Unicode table 3-7). */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < need; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	return need;
}

/* Write the escape for the special byte(s) at src (n > 0 available) into
 * dst (room bytes).  Returns the input bytes consumed, with *out the bytes
 * written, or 0 when the escape does not fit. */
static size_t esc_special(esc_mode m, const unsigned char *src, size_t n,
	unsigned char *dst, size_t room, size_t *out)
{
	unsigned char c = src[0];
	const char *e = NULL;

	if (m == ESC_CSVQ) {
		if (room < 2)
			return 0;
		dst[0] = dst[1] = '"';
		*out = 2;
		return 1;
	}
	if (m == ESC_JSON && c >= 0x80) {
		size_t k = utf8_valid_len(src, n);
		if (k == 0) {
			if (room < 3)
				return 0;
			dst[0] = 0xef, dst[1] = 0xbf, dst[2] = 0xbd;
			*out = 3;
			return 1;
		}
		if (room < k)
			return 0;
		memcpy(dst, src, k);
		*out = k;
		return k;
	}
	switch (c) {
	case '\\': e = "\\\\"; break;
	case '\t': e = "\\t"; break;
	case '\n': e = "\\n"; break;
	case '\r': e = "\\r"; break;
	case '"':  e = "\\\""; break;
	case '\b': e = "\\b"; break;
	case '\f': e = "\\f"; break;
	default:   break;
	}
	if (e) {
		if (room < 2)
			return 0;
		dst[0] = (unsigned char)e[0];
		dst[1] = (unsigned char)e[1];
		*out = 2;
		return 1;
	}
	/* Only JSON control characters are left. */
	if (room < 6)
		return 0;
	memcpy(dst, "\\u00", 4);
	dst[4] = (unsigned char)hex_digits[c >> 4];
	dst[5] = (unsigned char)hex_digits[c & 15];
	*out = 6;
	return 1;
}

/* Might the 8 bytes at p hold a byte that mode m escapes?  Never no when
 * one does (a yes may be wrong: the bytes are then looked at one by one).
 * Bytes below n have their top bit set in (x - n * ONES) & ~x & HIGHS, as
 * do zero bytes in (x - ONES) & ~x & HIGHS, which finds a byte c as a zero
 * of x ^ (c * ONES). */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline int word_special(esc_mode m, const unsigned char *p)
{
	uint64_t x, bs, q;
	memcpy(&x, p, 8);
	bs = x ^ (ONES * '\\');
	bs = (bs - ONES) & ~bs;
	if (m == ESC_TSV)   /* tab, newline, carriage return (all below 0x0e), backslash */
		return (((x - ONES * 0x0e) & ~x) | bs) & HIGHS ? 1 : 0;
	q = x ^ (ONES * '"');
	q = (q - ONES) & ~q;
	/* JSON: controls, quote, backslash, and any byte of 0x80 or more */
	return ((x - ONES * 0x20) | x | bs | q) & HIGHS ? 1 : 0;
}

#if defined(__SSE2__)
/* Which of the 16 bytes at p mode m (TSV or JSON) stops at, as a bit mask:
 * for JSON also every byte of 0x80 or more, as word_special does (a signed
 * compare puts them below 0x20). */
static inline unsigned special16(esc_mode m, const unsigned char *p)
{
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i s = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
	if (m == ESC_TSV)
		s = _mm_or_si128(s, _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\t')),
			_mm_cmpeq_epi8(x, _mm_set1_epi8('\n'))), _mm_cmpeq_epi8(x, _mm_set1_epi8('\r'))));
	else
		s = _mm_or_si128(s, _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
			_mm_cmpeq_epi8(x, _mm_set1_epi8('"'))));
	return (unsigned)_mm_movemask_epi8(s);
}
#endif

/* The bytes mode m escapes, or NULL (ESC_RAW). */
static inline const unsigned char *esc_table(esc_mode m)
{
	return m == ESC_TSV ? esc_tsv : m == ESC_CSVQ ? esc_csvq : m == ESC_JSON ? esc_json : NULL;
}

/* How many of the n bytes at src mode m (table tab) copies as they are. */
static inline size_t plain_run(esc_mode m, const unsigned char *tab, const unsigned char *src,
	size_t n)
{
	size_t j = 0;
#if defined(__SSE2__)
	if (m != ESC_CSVQ && n >= 16) {
		/* 16 bytes at a time (writing 8.2M log lines: 0.43 s with the
		 * word loop below, 0.34 s with this); the last 16 as the block
		 * that ends at n, read again in part. */
		for (;;) {
			size_t at = j + 16 <= n ? j : n - 16;
			unsigned mask = special16(m, src + at);
			if (mask)
				return at + (size_t)__builtin_ctz(mask);
			if (at + 16 == n)
				return n;
			j += 16;
		}
	}
#endif
	if (m != ESC_CSVQ && n >= 8) {
		/* A word at a time while no byte of it may need an escape; the
		 * last bytes as the word that ends at n, read again in part. */
		while (j + 8 <= n && !word_special(m, src + j))
			j += 8;
		if (j + 8 > n && (j == n || !word_special(m, src + n - 8)))
			return n;
	}
	while (j < n && !tab[src[j]])
		j++;
	return j;
}

/* Escape src[0..len) into dst (cap bytes), stopping where the output is
 * full; an escape is never cut.  Returns the input bytes consumed, with
 * *outlen the bytes written.  With cap >= ESC_MAXSTEP, at least one input
 * byte is consumed when len > 0. */
static size_t esc_body(esc_mode m, const unsigned char *src, size_t len,
	unsigned char *dst, size_t cap, size_t *outlen)
{
	const unsigned char *tab = esc_table(m);
	size_t i = 0, o = 0;

	if (!tab) {
		size_t n = len < cap ? len : cap;
		if (n)
			memcpy(dst, src, n);
		*outlen = n;
		return n;
	}

	while (i < len) {
		size_t room = cap - o;
		size_t lim = i + (len - i < room ? len - i : room);
		size_t j = i + plain_run(m, tab, src + i, lim - i);
		if (j > i) {
			memcpy(dst + o, src + i, j - i);
			o += j - i;
			i = j;
		}
		if (i == len || o == cap)
			break;
		if (j == lim)     /* out of room before the next special byte */
			break;
		size_t w, used = esc_special(m, src + i, len - i, dst + o, cap - o, &w);
		if (used == 0)
			break;
		i += used;
		o += w;
	}
	*outlen = o;
	return i;
}

/* A sink for tally_escape_key: keeps what fits, counts everything. */
typedef struct esc_sink {
	char  *buf;
	size_t cap;    /* bytes that may hold output (the NUL excluded) */
	size_t total;
} esc_sink;

static void sink_put(esc_sink *s, const void *p, size_t n)
{
	if (s->total < s->cap) {
		size_t k = s->cap - s->total < n ? s->cap - s->total : n;
		memcpy(s->buf + s->total, p, k);
	}
	s->total += n;
}

static int csv_needs_quotes(const unsigned char *key, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (csv_quote_needed[key[i]])
			return 1;
	return 0;
}

/* The body mode of a key in a format, and whether it goes in quotes. */
static esc_mode key_mode(tally_format fmt, const unsigned char *key, size_t len, int *quoted)
{
	*quoted = 0;
	switch (fmt) {
	case TALLY_FORMAT_TSV:
		return ESC_TSV;
	case TALLY_FORMAT_CSV:
		if (csv_needs_quotes(key, len)) {
			*quoted = 1;
			return ESC_CSVQ;
		}
		return ESC_RAW;
	case TALLY_FORMAT_JSON:
	case TALLY_FORMAT_NDJSON:
		*quoted = 1;
		return ESC_JSON;
	default:
		return ESC_RAW;
	}
}

/*
 * The key as it appears in a line of fmt's output: escaped for tsv, quoted
 * when needed for csv, a complete JSON string (quotes included) for json and
 * ndjson, raw for uniq.  Like snprintf: writes at most cap - 1 bytes of it
 * and a NUL when cap > 0, and returns the full length.  Thread-safe.
 */
size_t tally_escape_key(tally_format fmt, const char *key, size_t len, char *buf, size_t cap)
{
	const unsigned char *src = (const unsigned char *)key;
	esc_sink s = { buf, cap ? cap - 1 : 0, 0 };
	unsigned char tmp[256];
	int quoted;
	esc_mode m = key_mode(fmt, src, len, &quoted);

	if (quoted)
		sink_put(&s, "\"", 1);
	while (len > 0) {
		size_t w, used = esc_body(m, src, len, tmp, sizeof tmp, &w);
		sink_put(&s, tmp, w);
		src += used;
		len -= used;
	}
	if (quoted)
		sink_put(&s, "\"", 1);
	if (cap)
		buf[s.total < s.cap ? s.total : s.cap] = '\0';
	return s.total;
}

size_t output_tsv_unescape(char *s, size_t len)
{
	if (len == 0)
		return 0;

	char *end = s + len, *o;
	char *p = memchr(s, '\\', len);

	if (!p)
		return len;
	for (o = p; p < end; ) {
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		if (p + 1 == end)
			return (size_t)-1;
		switch (p[1]) {
		case '\\': *o++ = '\\'; break;
		case 't':  *o++ = '\t'; break;
		case 'n':  *o++ = '\n'; break;
		case 'r':  *o++ = '\r'; break;
		default:   return (size_t)-1;
		}
		p += 2;
	}
	return (size_t)(o - s);
}

/* ---- Numbers -------------------------------------------------------- */

static const char digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Decimal digits of v into dst (room for 20).  Returns the length. */
static size_t fmt_u64(char *dst, uint64_t v)
{
	char tmp[20];
	char *p = tmp + sizeof tmp;

	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		p -= 2;
		memcpy(p, digit_pairs + d, 2);
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digit_pairs + v * 2, 2);
	} else {
		*--p = (char)('0' + v);
	}
	size_t n = (size_t)(tmp + sizeof tmp - p);
	memcpy(dst, p, n);
	return n;
}

/* ---- Low-level writing ---------------------------------------------- */

/* write(2) all of p, retrying after EINTR and short writes.  0 or -1/errno. */
static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t k = write(fd, s, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0) {
			errno = EIO;
			return -1;
		}
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

static int fail(tally_writer *w, int e, const char *why)
{
	if (!w->err_no) {
		w->err_no = e;
		w->why = why;
	}
	errno = w->err_no;
	return -1;
}

static void account_zstd(tally_writer *w)
{
	size_t now = ZSTD_sizeof_CCtx(w->zc);
	mem_account(MEM_IO, (int64_t)now - (int64_t)w->zaccounted);
	w->zaccounted = now;
}

/* Compress on n threads of zstd's besides the writing one (at least 1).
 * zstd's multithreaded streaming gives the same bytes for any number of
 * threads from 1 up, not those of its single-threaded mode: the output is
 * the same whatever -j (an output that fits the first buffer, compressed in
 * one call, is the same in both modes).  Its jobs are cut to OUT_ZJOB bytes
 * (8 MiB by default at this level: 39 MB resident with one thread and
 * 50 MB with two, against 13 MB and 17 MB so, and output 0.2% larger).  A
 * libzstd built without threads keeps compressing in the caller's. */
static void zstd_workers(tally_writer *w, unsigned n)
{
	if (!ZSTD_isError(ZSTD_CCtx_setParameter(w->zc, ZSTD_c_nbWorkers, (int)(n ? n : 1))))
		ZSTD_CCtx_setParameter(w->zc, ZSTD_c_jobSize, OUT_ZJOB);
}

/* Compress the buffer (and end the frame when end is set), writing out
 * what zstd produces. */
static int zstd_drain(tally_writer *w, int end)
{
	ZSTD_inBuffer in = { w->sink.buf, w->sink.pos, 0 };
	ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;

	for (;;) {
		ZSTD_outBuffer out = { w->zbuf, w->zcap, 0 };
		size_t r = ZSTD_compressStream2(w->zc, &out, &in, mode);
		if (ZSTD_isError(r))
			return fail(w, EIO, ZSTD_getErrorName(r));
		if (out.pos && write_all(w->fd, w->zbuf, out.pos))
			return fail(w, errno, NULL);
		if (end ? r == 0 : in.pos == in.size)
			break;
	}
	account_zstd(w);
	return 0;
}

/* Send the buffer on.  0, or -1 with errno (sticky). */
static int flush_buf(tally_writer *w)
{
	if (w->err_no)
		return fail(w, w->err_no, NULL);
	if (w->zc) {
		if (zstd_drain(w, 0))
			return -1;
	} else if (w->sink.pos && write_all(w->fd, w->sink.buf, w->sink.pos)) {
		return fail(w, errno, NULL);
	}
	w->sink.pos = 0;
	return 0;
}

/* The writer's sink is full: send it on. */
static int writer_room(out_sink *s, size_t n)
{
	(void)n;
	return flush_buf((tally_writer *)s);
}

/* Append n <= OUT_BUFSIZE bytes. */
static inline int emit(out_sink *s, const void *p, size_t n)
{
	if (s->cap - s->pos < n && s->room(s, n))
		return -1;
	memcpy(s->buf + s->pos, p, n);
	s->pos += n;
	return 0;
}

int output_put_bytes(tally_writer *w, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		size_t k = n < OUT_BUFSIZE ? n : OUT_BUFSIZE;
		if (emit(&w->sink, s, k))
			return -1;
		s += k;
		n -= k;
	}
	return 0;
}

/* Append a key body escaped in mode m, making room as the sink fills. */
static int emit_body(out_sink *s, esc_mode m, const unsigned char *src, size_t len)
{
	/* Most keys fit and need no escape: one scan, one copy (of the bytes
	 * before the first escape, for the others). */
	const unsigned char *tab = esc_table(m);
	if (tab && len && len <= s->cap - s->pos) {   /* (a new text has no buffer yet) */
		size_t k = plain_run(m, tab, src, len);
		memcpy(s->buf + s->pos, src, k);
		s->pos += k;
		src += k;
		len -= k;
	}
	while (len > 0) {
		if (s->cap - s->pos < ESC_MAXSTEP && s->room(s, ESC_MAXSTEP))
			return -1;
		size_t out, used = esc_body(m, src, len, s->buf + s->pos, s->cap - s->pos, &out);
		s->pos += out;
		src += used;
		len -= used;
		if (used == 0 && s->room(s, ESC_MAXSTEP))
			return -1;
	}
	return 0;
}

/* ---- The writer ----------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *name, const char *reason)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", name, reason);
}

/* The process umask, read without changing it where the kernel tells
 * (Linux 4.7+); otherwise by setting and restoring it. */
static mode_t current_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (f) {
		char line[256];
		while (fgets(line, sizeof line, f)) {
			if (strncmp(line, "Umask:", 6) == 0) {
				char *end;
				unsigned long v = strtoul(line + 6, &end, 8);
				if (end != line + 6) {
					fclose(f);
					return (mode_t)(v & 0777);
				}
			}
		}
		fclose(f);
	}
	mode_t m = umask(022);
	umask(m);
	return m;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Put w's temporary file in a free signal slot (none free: not covered). */
static void hold_tmp(tally_writer *w)
{
	spill_also_on_signal(output_signal_cleanup);
	for (int i = 0; i < OUT_TMP_SLOTS; i++) {
		char *expected = NULL;
		if (atomic_compare_exchange_strong(&active_tmp[i], &expected, w->tmp))
			return;
	}
}

/* Forget w's temporary file in the signal slots (if it is still there). */
static void release_tmp(tally_writer *w)
{
	for (int i = 0; i < OUT_TMP_SLOTS; i++) {
		char *expected = w->tmp;
		atomic_compare_exchange_strong(&active_tmp[i], &expected, NULL);
	}
}

static void free_writer(tally_writer *w)
{
	if (w->zc) {
		mem_account(MEM_IO, -(int64_t)w->zaccounted);
		ZSTD_freeCCtx(w->zc);
	}
	mem_free(MEM_IO, w->zbuf, w->zcap);
	mem_free(MEM_IO, w->sink.buf, OUT_BUFSIZE);
	mem_free(MEM_OTHER, w, w->block_size);
}

/* The standard stream (1 or 2) open on the file st describes, or -1.  A
 * name such as /dev/stdout that leads to the file standard output is
 * redirected to is that stream: written to where it stands, not replaced.
 * -2 when that stream is open for reading only, as the command line leaves
 * a stream that was closed (on a file of its own): the name then stands for
 * no stream to write to. */
static int std_fd_of(const struct stat *st)
{
	for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
		struct stat s;
		int fl = fcntl(fd, F_GETFL);
		if (fl != -1 && fstat(fd, &s) == 0 &&
		    s.st_dev == st->st_dev && s.st_ino == st->st_ino)
			return (fl & O_ACCMODE) == O_RDONLY ? -2 : fd;
	}
	return -1;
}

int tally_std_stream(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? std_fd_of(&st) : -1;
}

/* The name path leads to through symbolic links, whether that file exists
 * or not (malloc'd; NULL with errno: ELOOP past 40 links, ENOMEM).  A
 * dangling link thus names the file to create, as a shell redirect would. */
static char *follow_links(const char *path)
{
	char *p = strdup(path);

	for (int hops = 0; p; hops++) {
		struct stat lst;
		if (lstat(p, &lst) != 0 || !S_ISLNK(lst.st_mode))
			return p;
		if (hops == 40) {
			free(p);
			errno = ELOOP;
			return NULL;
		}
		size_t cap = lst.st_size > 0 ? (size_t)lst.st_size + 1 : 256;
		char *link;
		ssize_t n;
		for (;;) {
			if (!(link = malloc(cap))) {
				free(p);
				return NULL;
			}
			n = readlink(p, link, cap);
			if (n < 0 || (size_t)n < cap)
				break;
			free(link);
			cap *= 2;
		}
		if (n < 0) {        /* gone meanwhile: the name stands as it is */
			free(link);
			return p;
		}
		link[n] = '\0';
		const char *slash = strrchr(p, '/');
		size_t dirlen = link[0] == '/' || !slash ? 0 : (size_t)(slash - p) + 1;
		char *next = malloc(dirlen + (size_t)n + 1);
		if (next) {
			memcpy(next, p, dirlen);
			memcpy(next + dirlen, link, (size_t)n + 1);
		}
		free(link);
		free(p);
		p = next;
	}
	return NULL;
}

/*
 * Where the bytes go:
 *  - NULL or "-": standard output (fd 1, never closed here);
 *  - a name of the file standard output or standard error is open on
 *    (/dev/stdout, say, with stdout redirected to a file): that stream, as
 *    "-" is;
 *  - an existing file that is not a regular file (a device such as
 *    /dev/null or /dev/full, a FIFO): written directly, as a shell redirect
 *    would;
 *  - otherwise a temporary file ".NAME.XXXXXX" (".tally.XXXXXX" when NAME
 *    is too long for that) in the directory of the target, renamed over it
 *    at a committed close.  The target is the file symbolic links lead to,
 *    the links kept, and a dangling link's target is created.  Its
 *    permissions are those of the file it replaces, or 0666 minus the umask
 *    for a new file, and so are its owner and group where the system lets
 *    them be given; a file that may not be written is refused.
 */
tally_writer *tally_writer_open(const char *path, tally_format fmt, char *err, size_t errlen)
{
	int to_stdout = path == NULL || strcmp(path, "-") == 0;
	const char *target = path;
	char *resolved = NULL;
	int direct = to_stdout, replaced = 0;
	int std_fd = -1;        /* writing to this standard stream */
	mode_t perm = 0;
	struct stat st;
	size_t tlen = 0, block;

	if ((unsigned)fmt >= sizeof format_names / sizeof format_names[0]) {
		set_err(err, errlen, to_stdout ? OUT_STDOUT : path, strerror(EINVAL));
		errno = EINVAL;
		return NULL;
	}
	if (!to_stdout && path[0] == '\0') {
		set_err(err, errlen, path, strerror(ENOENT));
		errno = ENOENT;
		return NULL;
	}
	if (!to_stdout) {
		int found = stat(path, &st) == 0;
		if (found && S_ISDIR(st.st_mode)) {
			set_err(err, errlen, path, strerror(EISDIR));
			errno = EISDIR;
			return NULL;
		}
		if (found && (std_fd = std_fd_of(&st)) == -2) {
			set_err(err, errlen, path, strerror(EBADF));
			errno = EBADF;
			return NULL;
		}
		if (found && (std_fd >= 0 || !S_ISREG(st.st_mode))) {
			direct = 1;
		} else {
			struct stat rs;
			/* A file that may not be written is not replaced either,
			 * as a shell's > and sort -o refuse it. */
			if (found && faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0) {
				int e = errno;
				set_err(err, errlen, path, strerror(e));
				errno = e;
				return NULL;
			}
			replaced = found;
			perm = found ? st.st_mode & 0777 : 0666 & ~current_umask();
			if (!(resolved = follow_links(path))) {
				int e = errno;
				set_err(err, errlen, path, strerror(e));
				errno = e;
				return NULL;
			}
			/* A link that names no path (a deleted file under
			 * /proc/PID/fd) cannot be replaced by a rename. */
			if (found && (stat(resolved, &rs) != 0 || rs.st_dev != st.st_dev ||
			              rs.st_ino != st.st_ino)) {
				free(resolved);
				set_err(err, errlen, path, "no name leads to the file it stands for");
				errno = ENOENT;
				return NULL;
			}
			target = resolved;
		}
		tlen = strlen(target);
	}

	/* One block: the struct, the name for messages, and (through a
	 * temporary file) the target path and the temporary path. */
	size_t nlen = to_stdout ? 0 : strlen(path);
	block = sizeof(tally_writer);
	if (mem_add(block, nlen + 1, &block) ||
	    (!direct && (mem_add(block, tlen + 1, &block) || mem_add(block, tlen + 10, &block)))) {
		free(resolved);
		set_err(err, errlen, path, strerror(ENAMETOOLONG));
		errno = ENAMETOOLONG;
		return NULL;
	}
	tally_writer *w = mem_calloc(MEM_OTHER, 1, block);
	if (!w) {
		free(resolved);
		set_err(err, errlen, to_stdout ? OUT_STDOUT : path, strerror(ENOMEM));
		errno = ENOMEM;
		return NULL;
	}
	w->block_size = block;
	w->fmt = fmt;
	w->fd = -1;
	if (to_stdout) {
		w->name = OUT_STDOUT;
	} else {
		char *name = (char *)(w + 1);
		memcpy(name, path, nlen + 1);
		w->name = name;
	}
	if (!direct) {
		w->target = (char *)(w + 1) + nlen + 1;
		memcpy(w->target, target, tlen + 1);
		w->tmp = w->target + tlen + 1;
		const char *slash = strrchr(target, '/');
		size_t dirlen = slash ? (size_t)(slash - target) + 1 : 0;
		memcpy(w->tmp, target, dirlen);
		if (tlen - dirlen + 8 <= NAME_MAX)
			snprintf(w->tmp + dirlen, tlen + 10 - dirlen, ".%s.XXXXXX", target + dirlen);
		else
			memcpy(w->tmp + dirlen, ".tally.XXXXXX", 14);
	}
	free(resolved);

	w->sink.buf = mem_alloc(MEM_IO, OUT_BUFSIZE);
	w->sink.cap = OUT_BUFSIZE;
	w->sink.room = writer_room;
	if (!w->sink.buf) {
		set_err(err, errlen, w->name, strerror(ENOMEM));
		free_writer(w);
		errno = ENOMEM;
		return NULL;
	}
	if (!to_stdout && has_suffix(path, ".zst")) {
		w->zcap = ZSTD_CStreamOutSize();
		w->zbuf = mem_alloc(MEM_IO, w->zcap);
		w->zc = w->zbuf ? ZSTD_createCCtx() : NULL;
		if (!w->zc) {
			set_err(err, errlen, w->name, strerror(ENOMEM));
			free_writer(w);
			errno = ENOMEM;
			return NULL;
		}
		if (ZSTD_isError(ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, OUT_ZLEVEL)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 1))) {
			set_err(err, errlen, w->name, "cannot set up zstd compression");
			free_writer(w);
			errno = EINVAL;
			return NULL;
		}
		zstd_workers(w, 1);
		account_zstd(w);
	}

	if (to_stdout) {
		w->fd = STDOUT_FILENO;
	} else if (std_fd >= 0) {
		w->fd = std_fd;
	} else if (direct) {
		w->fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		w->owns_fd = 1;
	} else {
		/* Listed for the signal handlers before a signal can come. */
		sigset_t old;
		spill_block_signals(&old);
		w->fd = mkostemp(w->tmp, O_CLOEXEC);
		if (w->fd >= 0)
			hold_tmp(w);
		spill_unblock_signals(&old);
		w->owns_fd = 1;
		if (w->fd >= 0) {
			/* The owner and group of the file replaced, where
			 * the system lets them be given (root; or a group
			 * of this user's). */
			if (replaced && fchown(w->fd, st.st_uid, st.st_gid) != 0)
				(void)!fchown(w->fd, (uid_t)-1, st.st_gid);
			if (fchmod(w->fd, perm) != 0) {
				int e = errno;
				release_tmp(w);
				close(w->fd);
				unlink(w->tmp);
				w->fd = -1;
				errno = e;
			}
		}
	}
	if (w->fd < 0) {
		int e = errno;
		set_err(err, errlen, w->name, strerror(e));
		free_writer(w);
		errno = e;
		return NULL;
	}

	/* Only buffered: a run that fails before its first item drops it. */
	if (fmt == TALLY_FORMAT_CSV)
		emit(&w->sink, "key,count\r\n", 11);
	return w;
}

/* Format one item into s; first: it opens the output (json's "[").
 * Returns 0, or -1 when s could not make room (errno). */
static int format_item(out_sink *s, tally_format fmt, const tally_item *it, int first)
{
	const unsigned char *key = (const unsigned char *)it->key;
	char tail[48];
	size_t n = 0;
	int quoted;
	esc_mode m = key_mode(fmt, key, it->len, &quoted);

	switch (fmt) {
	case TALLY_FORMAT_TSV:
		if (emit_body(s, m, key, it->len))
			return -1;
		tail[n++] = '\t';
		n += fmt_u64(tail + n, it->count);
		tail[n++] = '\n';
		break;
	case TALLY_FORMAT_CSV:
		if ((quoted && emit(s, "\"", 1)) || emit_body(s, m, key, it->len) ||
		    (quoted && emit(s, "\"", 1)))
			return -1;
		tail[n++] = ',';
		n += fmt_u64(tail + n, it->count);
		tail[n++] = '\r';
		tail[n++] = '\n';
		break;
	case TALLY_FORMAT_JSON:
	case TALLY_FORMAT_NDJSON:
		if (fmt == TALLY_FORMAT_JSON && emit(s, first ? "[\n" : ",\n", 2))
			return -1;
		if (emit(s, "{\"key\":\"", 8) || emit_body(s, m, key, it->len))
			return -1;
		memcpy(tail, "\",\"count\":", 10);
		n = 10;
		n += fmt_u64(tail + n, it->count);
		tail[n++] = '}';
		if (fmt == TALLY_FORMAT_NDJSON)
			tail[n++] = '\n';
		break;
	case TALLY_FORMAT_UNIQ: {
		char num[20];
		size_t k = fmt_u64(num, it->count);
		for (; k + n < 7; n++)
			tail[n] = ' ';
		memcpy(tail + n, num, k);
		n += k;
		tail[n++] = ' ';
		if (emit(s, tail, n) || emit_body(s, m, key, it->len) || emit(s, "\n", 1))
			return -1;
		n = 0;
		break;
	}
	}
	return n ? emit(s, tail, n) : 0;
}

/*
 * Append one item.  Not thread-safe (one writer, one thread).  Returns 0,
 * or -1 with errno once a write has failed (and from then on).
 */
int tally_writer_put(tally_writer *w, const tally_item *it)
{
	if (w->err_no)
		return fail(w, w->err_no, NULL);
	if (format_item(&w->sink, w->fmt, it, w->items == 0))
		return -1;
	w->items++;
	return 0;
}

/* ---- Text formatted ahead ------------------------------------------- */

/* A text's sink is full: grow it, to twice its size at least. */
static int text_room(out_sink *s, size_t n)
{
	size_t cap = s->cap ? s->cap : OUT_TEXT_FIRST;
	while (cap - s->pos < n)
		cap *= 2;
	unsigned char *p = mem_realloc(MEM_IO, s->buf, s->cap, cap);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	s->buf = p;
	s->cap = cap;
	return 0;
}

void output_text_init(out_text *t)
{
	*t = (out_text){ .sink = { .room = text_room } };
}

int output_text_put(out_text *t, tally_format fmt, const tally_item *it, int first)
{
	if (format_item(&t->sink, fmt, it, first))
		return -1;
	t->items++;
	return 0;
}

void output_text_clear(out_text *t)
{
	t->sink.pos = 0;
	t->items = 0;
}

void output_text_free(out_text *t)
{
	mem_free(MEM_IO, t->sink.buf, t->sink.cap);
	output_text_init(t);
}

int output_put_text(tally_writer *w, const out_text *t)
{
	const out_sink *s = &t->sink;
	if (w->err_no)
		return fail(w, w->err_no, NULL);
	if (!w->zc && s->pos >= OUT_BUFSIZE) {
		/* Long enough to go out as it is, after what the buffer holds. */
		if (flush_buf(w))
			return -1;
		if (write_all(w->fd, s->buf, s->pos))
			return fail(w, errno, NULL);
	} else if (output_put_bytes(w, s->buf, s->pos)) {
		return -1;
	}
	w->items += t->items;
	return 0;
}

tally_format output_writer_format(const tally_writer *w)
{
	return w->fmt;
}

uint64_t output_writer_items(const tally_writer *w)
{
	return w->items;
}

static int emit_trailer(tally_writer *w)
{
	if (w->fmt == TALLY_FORMAT_JSON)
		return emit(&w->sink, w->items ? "\n]\n" : "[]\n", 3);
	return 0;
}

int tally_writer_in_place(const tally_writer *w)
{
	return w->tmp == NULL;
}

int tally_writer_fd(const tally_writer *w)
{
	return w->fd;
}

void output_writer_threads(tally_writer *w, unsigned n)
{
	if (w->zc)
		zstd_workers(w, n);
}

/*
 * Finish and free the writer (w may be NULL).  commit = 1 writes the end of
 * the format, flushes, and renames the temporary file over the target.
 * commit = 0 removes the temporary file, leaving an existing target as it
 * was; when writing directly (stdout, a device) it sends on what was
 * buffered, without the JSON close, and ignores errors (and sends nothing
 * when no item was put: a run that failed before its output writes
 * nothing, not even a CSV header).  Returns 0, or -1
 * with errno and "NAME: reason" in err (NAME is the path given to open, or
 * "standard output").
 */
int tally_writer_close(tally_writer *w, int commit, char *err, size_t errlen)
{
	int rc = 0, e = 0;

	if (!w)
		return 0;
	if (commit) {
		if (emit_trailer(w) == 0 && flush_buf(w) == 0 && w->zc)
			zstd_drain(w, 1);
		if (!w->err_no && w->owns_fd) {
			int fd = w->fd;
			w->fd = -1;
			/* On Linux the descriptor is gone even when close fails;
			 * EINTR is not a lost write. */
			if (close(fd) != 0 && errno != EINTR)
				fail(w, errno, NULL);
		}
		if (!w->err_no && w->tmp) {
			if (rename(w->tmp, w->target) != 0)
				fail(w, errno, NULL);
			else
				release_tmp(w);
		}
		if (w->err_no) {
			rc = -1;
			e = w->err_no;
			set_err(err, errlen, w->name, w->why ? w->why : strerror(e));
		}
	} else if (!w->tmp && !w->err_no && w->items) {
		if (w->zc)
			zstd_drain(w, 1);
		else if (w->sink.pos)
			write_all(w->fd, w->sink.buf, w->sink.pos);
	}

	if (w->owns_fd && w->fd >= 0)
		close(w->fd);
	if (w->tmp && (rc != 0 || !commit)) {
		release_tmp(w);
		unlink(w->tmp);
	}
	free_writer(w);
	if (rc)
		errno = e;
	return rc;
}

void tally_signal_cleanup(void)
{
	spill_signal_cleanup();
}

void output_signal_cleanup(void)
{
	for (int i = 0; i < OUT_TMP_SLOTS; i++) {
		char *p = atomic_load(&active_tmp[i]);
		if (p)
			unlink(p);
	}
}
