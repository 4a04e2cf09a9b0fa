/*
 * tokenize.c - from bytes to keys (see tokenize.h for the contract).
 *
 * Layout: UTF-8 decoding and case tables; the key builder (case mapping and
 * the max_key_bytes cut); filters and the stopword set; the field list; the
 * four scanners (unicode words, space words, lines, TSV and CSV fields);
 * n-gram windows, edges and stitching; tok_cut.
 *
 * Forced splits.  A chunk that cannot end at a record boundary (one key
 * longer than a buffer) ends where the reader must cut it; the first chunk
 * counts the key it holds (longer than max_key_bytes, so cut: the same key a
 * single pass counts) and the next chunk starts in a state (tok_cont) that
 * makes its worker skip the rest of that key.  States:
 *   words, lines, TSV fields:  CONT_SKIP   skip the rest of the word/line
 *   CSV fields:                CONT_SKIP | CSV state bits at the split
 * Fields also have a second kind, for a record whose key is not decided
 * at the split (a long column, selected or not, before a needed one):
 * CONT_COLS with the column number and the CSV state, and CONT_KEYED when a
 * selected column has begun, the key so far then carried as raw bytes
 * (tok_chunk.prefix, the bytes the worker would have appended; a selected
 * column at the split has begun, its delimiter in the prefix).  The first
 * chunk counts that record as skipped (it knows from cont_out); the
 * next one parses the rest from that column on, from the key so far, counts
 * the record as usual and takes the skip back (skipped_records - 1, so one
 * worker's counter may wrap below zero; the sum over workers is exact).
 */
#include "tokenize.h"
#include "mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>   /* AVX-512, for the functions that ask for it (WIDE_HASH) */
#endif
#endif

#define TOK_DEFAULT_MAX_KEY ((size_t)1 << 20)
/* Bytes past max_key in a worker's key buffer: the builder's 4 and room for
 * whole 16-byte vector stores. */
#define KEY_SLACK 48

/* tok_cont values. */
#define CONT_SKIP       1u
#define CONT_CSV_SHIFT  1u    /* CSV: parser state << 1 */
#define CONT_COLS       8u    /* fields: the record goes on at column cont >> 6 */
#define CONT_KEYED      16u   /* ... with its key so far in the chunk's prefix */
#define CONT_COL_SHIFT  6u
#define CONT_COL_MAX    ((size_t)1 << 25)

/* CSV parser states. */
enum { CSV_START = 0, CSV_UNQ, CSV_QUOTED, CSV_QSEEN };

/* BMP table flags. */
#define UF_WORD  1u
#define UF_SLOW  2u   /* lowercase mapping leaves the BMP: ask utf8proc */

/* ASCII class bits (unicode words). */
#define AC_WORD  1u
#define AC_APOS  2u

/* ---- Field selection ------------------------------------------------- */

struct tok_fields {
	uint8_t *sel;        /* sel[c] for 1 <= c <= nbits: column c selected */
	size_t   nbits;      /* min(maxcol, FIELDS_BITMAP) */
	size_t  *iv;         /* niv ranges lo, hi (SIZE_MAX: open), for columns > nbits */
	size_t   niv;
	size_t   maxcol;     /* highest explicitly selected column */
	size_t   open_from;  /* "K-": every column >= K selected; 0 = none */
	size_t   need;       /* a record needs at least this many columns */
	int      shared;     /* owned by tok_shared */
};

/* Columns up to this are looked up in a bitmap; the rest in the ranges. */
#define FIELDS_BITMAP 4096

/* One item of the parsed LIST: a range of numbers or a name. */
typedef struct field_item {
	size_t lo, hi;       /* hi == SIZE_MAX: open range */
	char  *name;         /* non-NULL: a column name (header only) */
} field_item;

/* ---- Stopword set ---------------------------------------------------- */

typedef struct stop_entry {
	uint64_t hash;
	size_t   off, len;
} stop_entry;

typedef struct stop_set {
	stop_entry *slots;   /* len == SIZE_MAX marks an empty slot */
	size_t      mask;
	char       *bytes;
	size_t      nbytes, capbytes;
	size_t      count;
} stop_set;

struct tok_shared {
	tally_mode  mode;
	unsigned    ngram;        /* words per key (>= 1) */
	tally_split split;
	tally_case  casemode;     /* resolved: LOWER, ASCII or KEEP */
	size_t      max_key;
	size_t      min_len, max_len;
	int         csv, header;
	uint8_t     delim;

	field_item *items;
	size_t      nitems, items_cap;
	int         has_names;
	tok_fields  numeric;      /* the selection without names */

	stop_set    stop;
	int         has_stop;

	uint8_t     lowtab[256];  /* per-byte ASCII mapping of the case mode */
	uint8_t     acls[128];    /* unicode words: AC_* per ASCII byte */
	uint8_t     space[256];   /* ASCII whitespace */
	const uint8_t  *uflags;   /* uni_flags */
	const uint16_t *ulower;   /* uni_lower16 */
};

/* Unicode properties of the BMP, from utf8proc, built once per process
 * (192 KiB, read-only after uni_once). */
static uint8_t  uni_flags[65536];     /* UF_* */
static uint16_t uni_lower16[65536];   /* simple lowercase */
static pthread_once_t uni_once = PTHREAD_ONCE_INIT;

static void uni_build(void)
{
	for (uint32_t cp = 0; cp < 65536; cp++) {
		utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
		uint8_t fl = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_PC ? UF_WORD : 0;
		uint32_t l = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
		if (l > 0xFFFF) {
			fl |= UF_SLOW;
			l = cp;
		}
		uni_flags[cp] = fl;
		uni_lower16[cp] = (uint16_t)l;
	}
}

/* ---- UTF-8 ----------------------------------------------------------- */

/* Decode one well-formed UTF-8 sequence at p (p < end).  Returns its length
 * and the code point, or 0 when the bytes at p are ill-formed (overlong,
 * surrogate, > U+10FFFF, truncated, stray continuation). */
static inline size_t utf8_dec(const uint8_t *p, const uint8_t *end, uint32_t *cp)
{
	uint32_t c = p[0];
	size_t avail = (size_t)(end - p);
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		if (avail < 2 || (p[1] & 0xC0) != 0x80)
			return 0;
		*cp = ((c & 0x1F) << 6) | (p[1] & 0x3Fu);
		return 2;
	}
	if (c < 0xF0) {
		if (avail < 3)
			return 0;
		uint32_t b1 = p[1];
		if ((b1 & 0xC0) != 0x80 || (c == 0xE0 && b1 < 0xA0) || (c == 0xED && b1 > 0x9F)
				|| (p[2] & 0xC0) != 0x80)
			return 0;
		*cp = ((c & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (p[2] & 0x3Fu);
		return 3;
	}
	if (c < 0xF5) {
		if (avail < 4)
			return 0;
		uint32_t b1 = p[1];
		if ((b1 & 0xC0) != 0x80 || (c == 0xF0 && b1 < 0x90) || (c == 0xF4 && b1 > 0x8F)
				|| (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
			return 0;
		*cp = ((c & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
		return 4;
	}
	return 0;
}

static inline size_t utf8_enc(uint32_t cp, uint8_t *o)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xC0 | (cp >> 6));
		o[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xE0 | (cp >> 12));
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | (cp >> 18));
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

/* The longest prefix of b[0..len) of at most max bytes that does not end
 * inside a well-formed sequence (ill-formed bytes are units of their own). */
static size_t utf8_cut(const uint8_t *b, size_t len, size_t max)
{
	if (len <= max)
		return len;
	for (size_t i = 1; i <= 3 && i <= max; i++) {
		uint8_t c = b[max - i];
		if ((c & 0xC0) == 0x80)
			continue;
		uint32_t cp;
		size_t n = utf8_dec(b + max - i, b + len, &cp);
		return n > i ? max - i : max;
	}
	return max;
}

/* Code points in b[0..len), an ill-formed byte counting as one. */
static size_t utf8_count(const uint8_t *b, size_t len)
{
	size_t n = 0, i = 0;
	while (i < len) {
		if (b[i] < 0x80) {
			i++;
		} else {
			uint32_t cp;
			size_t k = utf8_dec(b + i, b + len, &cp);
			i += k ? k : 1;
		}
		n++;
	}
	return n;
}

/* A split point at or before len that does not fall inside a sequence that
 * could still be completed by the bytes that follow. */
static size_t utf8_tail(const uint8_t *b, size_t len)
{
	for (size_t i = 1; i <= 3 && i <= len; i++) {
		uint8_t c = b[len - i];
		if ((c & 0xC0) == 0x80)
			continue;
		size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		if (c >= 0xC2 && c < 0xF5 && i < need && len - i > 0)
			return len - i;
		break;
	}
	return len;
}

static inline int uni_is_word(const tok_shared *s, uint32_t cp)
{
	if (cp < 0x10000)
		return s->uflags[cp] & UF_WORD;
	utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
	return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_PC;
}

static inline uint32_t uni_lower(const tok_shared *s, uint32_t cp)
{
	if (cp < 0x10000 && !(s->uflags[cp] & UF_SLOW))
		return s->ulower[cp];
	return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

/* ---- Key builder ----------------------------------------------------- */

/* A key under construction: bytes mapped by the case mode, at most max
 * bytes kept.  KEEP and ASCII keep max + 4 bytes and cut at the end (so the
 * cut can see the sequence that crosses max); LOWER maps whole code points
 * and stops at the first that does not fit. */
typedef struct keybuf {
	uint8_t *b;
	size_t   len;     /* bytes in b */
	size_t   total;   /* KEEP/ASCII: bytes offered */
	int      cut;     /* LOWER: a code point did not fit */
} keybuf;

static inline void kb_reset(keybuf *k)
{
	k->len = 0;
	k->total = 0;
	k->cut = 0;
}

static void kb_append(const tok_shared *s, keybuf *k, const uint8_t *p, size_t n)
{
	if (s->casemode != TALLY_CASE_LOWER) {
		size_t room = s->max_key + 4 - k->len;
		size_t m = n < room ? n : room;
		if (s->casemode == TALLY_CASE_KEEP) {
			memcpy(k->b + k->len, p, m);
		} else {
			for (size_t i = 0; i < m; i++)
				k->b[k->len + i] = s->lowtab[p[i]];
		}
		k->len += m;
		k->total += n;
		return;
	}
	const uint8_t *end = p + n;
	while (p < end && !k->cut) {
		uint8_t c = *p;
		if (c < 0x80) {
			if (k->len >= s->max_key) {
				k->cut = 1;
				break;
			}
			k->b[k->len++] = s->lowtab[c];
			p++;
			continue;
		}
		uint32_t cp;
		size_t m, tl;
		if (c >= 0xC2 && c < 0xE0 && p + 1 < end && (p[1] & 0xC0) == 0x80) {
			cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
			m = 2;
		} else {
			m = utf8_dec(p, end, &cp);
		}
		/* Key buffers have at least 4 bytes of slack past max_key. */
		if (m) {
			tl = utf8_enc(uni_lower(s, cp), k->b + k->len);
		} else {
			k->b[k->len] = c;
			tl = m = 1;
		}
		if (k->len + tl > s->max_key) {
			k->cut = 1;
			break;
		}
		k->len += tl;
		p += m;
	}
}

/* Finish: returns 1 when the key was cut. */
static int kb_finish(const tok_shared *s, keybuf *k)
{
	if (s->casemode == TALLY_CASE_LOWER)
		return k->cut;
	if (k->total > s->max_key) {
		k->len = utf8_cut(k->b, k->len, s->max_key);
		return 1;
	}
	return 0;
}

/* ---- Stopwords ------------------------------------------------------- */

static void stop_free(stop_set *st)
{
	if (st->slots)
		mem_free(MEM_OTHER, st->slots, (st->mask + 1) * sizeof *st->slots);
	mem_free(MEM_OTHER, st->bytes, st->capbytes);
	memset(st, 0, sizeof *st);
}

static int stop_contains(const stop_set *st, const uint8_t *key, size_t len, uint64_t h)
{
	for (size_t i = h & st->mask;; i = (i + 1) & st->mask) {
		const stop_entry *e = &st->slots[i];
		if (e->len == SIZE_MAX)
			return 0;
		if (e->hash == h && e->len == len && memcmp(st->bytes + e->off, key, len) == 0)
			return 1;
	}
}

/* Insert (no duplicates).  Returns 0 or -1 (out of memory). */
static int stop_insert(stop_set *st, const uint8_t *key, size_t len)
{
	uint64_t h = table_hash(key, len);
	if (st->slots && stop_contains(st, key, len, h))
		return 0;
	if (!st->slots || (st->count + 1) * 2 > st->mask + 1) {
		size_t ncap = st->slots ? (st->mask + 1) * 2 : 64, bytes;
		if (mem_mul(ncap, sizeof(stop_entry), &bytes))
			return -1;
		stop_entry *ns = mem_alloc(MEM_OTHER, bytes);
		if (!ns)
			return -1;
		for (size_t i = 0; i < ncap; i++)
			ns[i].len = SIZE_MAX;
		for (size_t i = 0; st->slots && i <= st->mask; i++) {
			stop_entry e = st->slots[i];
			if (e.len == SIZE_MAX)
				continue;
			size_t j = e.hash & (ncap - 1);
			while (ns[j].len != SIZE_MAX)
				j = (j + 1) & (ncap - 1);
			ns[j] = e;
		}
		if (st->slots)
			mem_free(MEM_OTHER, st->slots, (st->mask + 1) * sizeof *st->slots);
		st->slots = ns;
		st->mask = ncap - 1;
	}
	size_t need;
	if (mem_add(st->nbytes, len, &need))
		return -1;
	if (need > st->capbytes) {
		size_t ncap = st->capbytes ? st->capbytes : 256;
		while (ncap < need)
			if (mem_mul(ncap, 2, &ncap))
				return -1;
		char *nb = mem_realloc(MEM_OTHER, st->bytes, st->capbytes, ncap);
		if (!nb)
			return -1;
		st->bytes = nb;
		st->capbytes = ncap;
	}
	memcpy(st->bytes + st->nbytes, key, len);
	size_t i = h & st->mask;
	while (st->slots[i].len != SIZE_MAX)
		i = (i + 1) & st->mask;
	st->slots[i] = (stop_entry){ h, st->nbytes, len };
	st->nbytes += len;
	st->count++;
	return 0;
}

static int stop_load(tok_shared *s, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	keybuf k = { 0 };
	k.b = mem_alloc(MEM_OTHER, s->max_key + 8);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = k.b ? 0 : -1;
	if (rc)
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)n;
		if (len && line[len - 1] == '\n')
			len--;
		if (len && line[len - 1] == '\r')
			len--;
		if (len == 0)
			continue;
		kb_reset(&k);
		kb_append(s, &k, (const uint8_t *)line, len);
		kb_finish(s, &k);
		if (stop_insert(&s->stop, k.b, k.len)) {
			snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
			rc = -1;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
		rc = -1;
	}
	free(line);
	fclose(f);
	mem_free(MEM_OTHER, k.b, s->max_key + 8);
	s->has_stop = s->stop.count > 0;   /* an empty list drops nothing */
	return rc;
}

/* ---- Field list ------------------------------------------------------ */

static int parse_num(const char *p, size_t n, size_t *out)
{
	if (n == 0)
		return -1;
	size_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (mem_mul(v, 10, &v) || mem_add(v, (size_t)(p[i] - '0'), &v))
			return -1;
	}
	if (v == 0 || v > ((size_t)1 << 40))
		return -1;
	*out = v;
	return 0;
}

static int all_digits_dash(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
			return 0;
	return 1;
}

/* Parse LIST into s->items.  Returns 0, -1 (usage error in err) or -2 (out
 * of memory). */
static int fields_parse(tok_shared *s, const char *list, char *err, size_t errlen)
{
	size_t n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	s->items = mem_calloc(MEM_OTHER, n, sizeof *s->items);
	if (!s->items) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -2;
	}
	s->items_cap = n;
	const char *p = list;
	for (size_t i = 0; i < n; i++) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		field_item *it = &s->items[s->nitems++];
		const char *dash = memchr(p, '-', len);
		if (len == 0) {
			goto bad;
		} else if (all_digits_dash(p, len) && !dash) {
			if (parse_num(p, len, &it->lo))
				goto bad;
			it->hi = it->lo;
		} else if (all_digits_dash(p, len)) {
			/* "-N" is "1-N", as cut reads it; "-" alone is nothing. */
			size_t a = (size_t)(dash - p);
			if (len == 1 || (a > 0 && parse_num(p, a, &it->lo)))
				goto bad;
			if (a == 0)
				it->lo = 1;
			if (a + 1 == len)
				it->hi = SIZE_MAX;
			else if (parse_num(dash + 1, len - a - 1, &it->hi) || it->hi < it->lo)
				goto bad;
		} else {
			if (!s->header)
				goto bad;
			it->name = mem_alloc(MEM_OTHER, len + 1);
			if (!it->name) {
				snprintf(err, errlen, "%s", strerror(ENOMEM));
				return -2;
			}
			memcpy(it->name, p, len);
			it->name[len] = 0;
			s->has_names = 1;
		}
		p = e ? e + 1 : p + len;
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid field list '%s'", list);
	return -1;
}

static void fields_free(tok_fields *f);

/* Build a selection from s->items, names resolved by cols (may be NULL when
 * there are no names).  Returns 0 or -1 (out of memory). */
static int fields_build(const tok_shared *s, tok_fields *f, const size_t *cols)
{
	memset(f, 0, sizeof *f);
	for (size_t i = 0; i < s->nitems; i++) {
		const field_item *it = &s->items[i];
		size_t lo = it->name ? cols[i] : it->lo;
		size_t hi = it->name ? cols[i] : it->hi;
		if (hi == SIZE_MAX) {
			if (!f->open_from || lo < f->open_from)
				f->open_from = lo;
			hi = lo;
		}
		if (hi > f->maxcol)
			f->maxcol = hi;
		if (hi > f->need)
			f->need = hi;
	}
	/* The columns selected are the union of the list's ranges: the record
	 * must reach the end of each closed range, or, with an open one, the
	 * start of the union's open end (3-,4- is 3-; 3-,5 is 3-; 3-5,4- and
	 * 1,2-3,4- are 3- and 1-, as cut reads them). */
	if (f->open_from) {
		size_t start = f->open_from;
		for (int moved = 1; moved;) {
			moved = 0;
			for (size_t i = 0; i < s->nitems; i++) {
				const field_item *it = &s->items[i];
				size_t lo = it->name ? cols[i] : it->lo;
				size_t hi = it->name ? cols[i] : it->hi;
				if (hi != SIZE_MAX && lo < start && hi + 1 >= start) {
					start = lo;
					moved = 1;
				}
			}
		}
		f->need = start;
	}
	f->nbits = f->maxcol < FIELDS_BITMAP ? f->maxcol : FIELDS_BITMAP;
	f->niv = s->nitems;
	f->sel = mem_calloc(MEM_OTHER, f->nbits + 1, 1);
	f->iv = mem_calloc(MEM_OTHER, 2 * f->niv, sizeof(size_t));
	if (!f->sel || !f->iv) {
		fields_free(f);
		return -1;
	}
	for (size_t i = 0; i < s->nitems; i++) {
		const field_item *it = &s->items[i];
		size_t lo = it->name ? cols[i] : it->lo;
		size_t hi = it->name ? cols[i] : it->hi;
		f->iv[2 * i] = lo;
		f->iv[2 * i + 1] = hi;
		for (size_t c = lo; c <= hi && c <= f->nbits; c++)
			f->sel[c] = 1;
	}
	return 0;
}

static void fields_free(tok_fields *f)
{
	if (f->sel)
		mem_free(MEM_OTHER, f->sel, f->nbits + 1);
	if (f->iv)
		mem_free(MEM_OTHER, f->iv, 2 * f->niv * sizeof(size_t));
	f->sel = NULL;
	f->iv = NULL;
}

static inline int fields_selected(const tok_fields *f, size_t col)
{
	if (col <= f->nbits)
		return f->sel[col];
	for (size_t i = 0; i < f->niv; i++)
		if (f->iv[2 * i] <= col && col <= f->iv[2 * i + 1])
			return 1;
	return 0;
}

/* ---- Shared settings ------------------------------------------------- */

static int build_tables(tok_shared *s)
{
	for (int c = 0; c < 256; c++) {
		uint8_t l = (uint8_t)c;
		if (s->casemode != TALLY_CASE_KEEP && c >= 'A' && c <= 'Z')
			l = (uint8_t)(c + 32);
		s->lowtab[c] = l;
		s->space[c] = c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
	}
	/* Only Unicode words and Unicode lowercase read the properties: the
	 * other modes start without building them (half the start-up time). */
	if (!(s->mode == TALLY_MODE_WORDS && s->split == TALLY_SPLIT_UNICODE) &&
			s->casemode != TALLY_CASE_LOWER)
		return 0;
	if (pthread_once(&uni_once, uni_build))
		return -1;
	s->uflags = uni_flags;
	s->ulower = uni_lower16;
	for (int c = 0; c < 128; c++)
		s->acls[c] = (uint8_t)((s->uflags[c] & UF_WORD ? AC_WORD : 0) | (c == '\'' ? AC_APOS : 0));
	return 0;
}

tok_shared *tok_shared_create(const tally_config *cfg, char *err, size_t errlen, int *usage)
{
	int dummy;
	if (!usage)
		usage = &dummy;
	*usage = 0;
	tok_shared *s = mem_calloc(MEM_OTHER, 1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return NULL;
	}
	s->mode = cfg->mode;
	s->ngram = cfg->ngram > 1 ? cfg->ngram : 1;
	s->split = cfg->split;
	s->casemode = cfg->casemode;
	if (s->casemode == TALLY_CASE_DEFAULT)
		s->casemode = s->mode == TALLY_MODE_WORDS ? TALLY_CASE_LOWER : TALLY_CASE_KEEP;
	s->max_key = cfg->max_key_bytes ? cfg->max_key_bytes : TOK_DEFAULT_MAX_KEY;
	s->min_len = cfg->min_length;
	s->max_len = cfg->max_length;
	s->csv = cfg->csv;
	s->header = cfg->header;
	s->delim = (uint8_t)(cfg->delimiter ? cfg->delimiter : cfg->csv ? ',' : '\t');
	s->numeric.shared = 1;

	if ((unsigned)s->mode > TALLY_MODE_COUNTS) {
		*usage = 1;
		snprintf(err, errlen, "invalid mode");
		goto fail;
	}
	if (s->ngram > 1 && s->mode != TALLY_MODE_WORDS) {
		*usage = 1;
		snprintf(err, errlen, "--ngram counts words only");
		goto fail;
	}
	if (s->ngram > TALLY_NGRAM_MAX || s->max_key > ((size_t)1 << 40)) {
		*usage = 1;
		snprintf(err, errlen, s->ngram > TALLY_NGRAM_MAX ? "n-gram size too large" : "max key size too large");
		goto fail;
	}
	if (s->mode == TALLY_MODE_COUNTS && (cfg->min_length || cfg->max_length ||
			cfg->stopwords_path || cfg->csv || cfg->header || cfg->fields ||
			s->casemode != TALLY_CASE_KEEP)) {
		*usage = 1;
		snprintf(err, errlen, "count files take their keys as they are: no key rule applies");
		goto fail;
	}
	if (s->min_len && s->max_len && s->min_len > s->max_len) {
		*usage = 1;
		snprintf(err, errlen, "--min-length is greater than --max-length");
		goto fail;
	}
	if (s->mode == TALLY_MODE_FIELDS) {
		if (s->csv && (s->delim == '"' || s->delim == '\n' || s->delim == '\r')) {
			*usage = 1;
			snprintf(err, errlen, "invalid value for --delimiter with --csv: %s",
				s->delim == '"' ? "'\"' quotes fields" : "a line end ends records");
			goto fail;
		}
		if (!cfg->fields || !*cfg->fields) {
			*usage = 1;
			snprintf(err, errlen, "invalid field list '%s'", cfg->fields ? cfg->fields : "");
			goto fail;
		}
		int rc = fields_parse(s, cfg->fields, err, errlen);
		if (rc) {
			*usage = rc == -1;
			goto fail;
		}
		if (!s->has_names && fields_build(s, &s->numeric, NULL)) {
			snprintf(err, errlen, "%s", strerror(ENOMEM));
			goto fail;
		}
		if (s->has_names)
			s->numeric.need = SIZE_MAX;  /* unusable until names are resolved */
		s->numeric.shared = 1;
	}
	if (build_tables(s)) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		goto fail;
	}
	if (cfg->stopwords_path && stop_load(s, cfg->stopwords_path, err, errlen))
		goto fail;
	return s;
fail:
	tok_shared_destroy(s);
	return NULL;
}

void tok_shared_destroy(tok_shared *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nitems; i++)
		if (s->items[i].name)
			mem_free(MEM_OTHER, s->items[i].name, strlen(s->items[i].name) + 1);
	if (s->items)
		mem_free(MEM_OTHER, s->items, s->items_cap * sizeof *s->items);
	fields_free(&s->numeric);
	stop_free(&s->stop);
	mem_free(MEM_OTHER, s, sizeof *s);
}

/* Count files: the longest line, without its newline: a key of max_key
 * bytes all escaped (max_key is at most 2^40: no overflow), a TAB and a
 * count of 20 digits. */
static size_t counts_line_max(const tok_shared *s)
{
	return 2 * s->max_key + 21;
}

size_t tok_min_capacity(const tok_shared *s)
{
	/* Count files: the longest line and its newline, and some slack. */
	if (s->mode == TALLY_MODE_COUNTS)
		return counts_line_max(s) + 32;
	/* A lowercase mapping can shrink a code point from 3 bytes to 1. */
	size_t k = s->casemode == TALLY_CASE_LOWER ? 3 : 1, n;
	if (mem_mul(s->max_key + 2, k, &n) || mem_add(n, 16, &n))
		return SIZE_MAX;
	/* Fields: the key's columns may follow a delimiter each; CSV may double
	 * every byte with "" escapes. */
	if (s->mode == TALLY_MODE_FIELDS && mem_mul(n, s->csv ? 4 : 2, &n))
		return SIZE_MAX;
	return n;
}

size_t tok_key_capacity(const tok_shared *s)
{
	return s->max_key + KEY_SLACK;
}

/* ---- Workers ---------------------------------------------------------- */

/* A growable byte buffer for n-gram words. */
typedef struct wbuf {
	uint8_t *p;
	size_t   len, cap;
	int      cut;          /* in the n-gram window: the word was cut */
} wbuf;

struct tok_edge {
	uint64_t count;        /* words in the chunk (saturating) */
	size_t   nfirst, nlast;
	size_t  *lens;         /* nfirst + nlast */
	uint8_t *cuts;         /* nfirst + nlast: the word was cut (max_key_bytes) */
	uint8_t *data;         /* first words, then last words */
	size_t   bytes;        /* allocation size */
	/* Count files: the chunk's lines, the sum of their counts, and the
	 * first malformed line (1-based in the chunk; 0: none) with what is
	 * wrong with it. */
	uint64_t lines, sum, bad_line;
	int      overflow;     /* sum is past 2^64 - 1 */
	const char *why;
	int      beyond;       /* words past the end of a part (tok_chunk.beyond) */
};

/* Keys on their way into the table (count_key): copied, hashed and their
 * home slots prefetched as they come, then counted PEND_KEYS at a time, so
 * that the slot loads of high-cardinality input (lines, fields, n-grams,
 * long words), which mostly miss every cache, overlap instead of waiting
 * one after the other.  tok_run and tok_stitch count what is left before
 * they return.  A key longer than the arena is counted at once. */
#define PEND_KEYS  32
#define PEND_BYTES 8192
typedef struct pending {
	uint8_t  *buf;          /* PEND_BYTES */
	size_t    used;
	unsigned  n;
	uint32_t  off[PEND_KEYS], len[PEND_KEYS];
	uint64_t  h[PEND_KEYS], cnt[PEND_KEYS];
} pending;

struct tok_worker {
	const tok_shared *s;
	table   *t;
	tok_counters ctr;
	keybuf   kb;
	pending  pend;
	uint64_t tokens, cut, skipped, ill;
	int      failed;
	/* Count files: lines in this chunk, the first malformed one, and
	 * whether the chunk's counts add up to 2^64 or more. */
	uint64_t lines, bad_line;
	int      overflow;
	const char *why;
	int      plain;        /* no filters and no n-grams: keys go straight in */
	int      wide;         /* hash short keys eight at a time (tok_wide_hash) */

	/* N-grams. */
	int      beyond;       /* this chunk's words only end n-grams (tok_chunk.beyond) */
	size_t   nreal;        /* stitcher: carry words before a part's end */
	unsigned n;
	wbuf    *ring;         /* n slots */
	size_t   head;         /* slot of the oldest word in the window */
	size_t   inwin;        /* words in the window (<= n) */
	uint64_t count;        /* words in this chunk */
	wbuf     firsts;       /* first n-1 words, packed */
	size_t  *first_lens;
	size_t   nfirst;
	wbuf     gram;         /* joined n-gram key (max_key + 8) */
	wbuf     carry;        /* stitcher: last n-1 words of the input so far */
	const uint8_t **wp;    /* 2n scratch word pointers and lengths */
	size_t  *wl;
	const uint8_t **wp2;
	size_t  *wl2;
	size_t  *carry_lens;
	size_t   ncarry;
	/* Which words were cut, for the n-grams they go into: 6n flags, in
	 * turn those of firsts, of carry, and 2n each beside wl and wl2. */
	uint8_t *cuts;
	uint8_t *first_cuts, *carry_cuts, *wc, *wc2;
};

static void wbuf_free(wbuf *b)
{
	mem_free(MEM_OTHER, b->p, b->cap);
	b->p = NULL;
	b->len = b->cap = 0;
}

static int wbuf_reserve(wbuf *b, size_t need)
{
	if (need <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		if (mem_mul(ncap, 2, &ncap))
			return -1;
	uint8_t *np = mem_realloc(MEM_OTHER, b->p, b->cap, ncap);
	if (!np)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

tok_worker *tok_worker_create(const tok_shared *s, table *t)
{
	tok_worker *w = mem_calloc_lines(MEM_OTHER, sizeof *w);
	if (!w)
		return NULL;
	w->s = s;
	w->t = t;
	w->n = s->ngram;
	w->plain = w->n == 1 && !s->has_stop && !s->min_len && !s->max_len;
	w->wide = tok_wide_hash();
	w->kb.b = mem_alloc(MEM_OTHER, tok_key_capacity(s));
	w->pend.buf = mem_alloc(MEM_OTHER, PEND_BYTES);
	if (!w->kb.b || !w->pend.buf)
		goto fail;
	if (w->n > 1) {
		w->ring = mem_calloc(MEM_OTHER, w->n, sizeof *w->ring);
		w->first_lens = mem_calloc(MEM_OTHER, w->n, sizeof(size_t));
		w->carry_lens = mem_calloc(MEM_OTHER, w->n, sizeof(size_t));
		w->wp = mem_calloc(MEM_OTHER, 2 * (size_t)w->n, sizeof *w->wp);
		w->wl = mem_calloc(MEM_OTHER, 2 * (size_t)w->n, sizeof *w->wl);
		w->wp2 = mem_calloc(MEM_OTHER, 2 * (size_t)w->n, sizeof *w->wp2);
		w->wl2 = mem_calloc(MEM_OTHER, 2 * (size_t)w->n, sizeof *w->wl2);
		w->cuts = mem_calloc(MEM_OTHER, 6, w->n);
		if (!w->ring || !w->first_lens || !w->carry_lens || !w->wp || !w->wl || !w->wp2
				|| !w->wl2 || !w->cuts || wbuf_reserve(&w->gram, s->max_key + 8))
			goto fail;
		w->first_cuts = w->cuts;
		w->carry_cuts = w->cuts + w->n;
		w->wc = w->cuts + 2 * (size_t)w->n;
		w->wc2 = w->cuts + 4 * (size_t)w->n;
	}
	return w;
fail:
	tok_worker_destroy(w);
	return NULL;
}

void tok_worker_destroy(tok_worker *w)
{
	if (!w)
		return;
	mem_free(MEM_OTHER, w->kb.b, tok_key_capacity(w->s));
	mem_free(MEM_OTHER, w->pend.buf, PEND_BYTES);
	if (w->ring) {
		for (unsigned i = 0; i < w->n; i++)
			wbuf_free(&w->ring[i]);
		mem_free(MEM_OTHER, w->ring, w->n * sizeof *w->ring);
	}
	if (w->first_lens)
		mem_free(MEM_OTHER, w->first_lens, w->n * sizeof(size_t));
	if (w->carry_lens)
		mem_free(MEM_OTHER, w->carry_lens, w->n * sizeof(size_t));
	if (w->wp)
		mem_free(MEM_OTHER, w->wp, 2 * (size_t)w->n * sizeof *w->wp);
	if (w->wl)
		mem_free(MEM_OTHER, w->wl, 2 * (size_t)w->n * sizeof *w->wl);
	if (w->wp2)
		mem_free(MEM_OTHER, w->wp2, 2 * (size_t)w->n * sizeof *w->wp2);
	if (w->wl2)
		mem_free(MEM_OTHER, w->wl2, 2 * (size_t)w->n * sizeof *w->wl2);
	if (w->cuts)
		mem_free(MEM_OTHER, w->cuts, 6 * (size_t)w->n);
	wbuf_free(&w->firsts);
	wbuf_free(&w->gram);
	wbuf_free(&w->carry);
	mem_free(MEM_OTHER, w, sizeof *w);
}

const tok_counters *tok_worker_counters(const tok_worker *w)
{
	return &w->ctr;
}

/* Count the pending keys (a fatal table error sets w->failed). */
static void pend_flush(tok_worker *w)
{
	pending *q = &w->pend;
	unsigned n = q->n;
	q->n = 0;
	q->used = 0;
	/* The slots are on their way: fetch the keys they point to. */
	for (unsigned i = 0; i < n; i++)
		table_prefetch_key(w->t, q->h[i]);
	for (unsigned i = 0; i < n && !w->failed; i++)
		if (table_add(w->t, (const char *)q->buf + q->off[i], q->len[i], q->h[i], q->cnt[i]) != 0)
			w->failed = 1;
}

/* Add n to a key's count through the pending batch. */
static inline void pend_key(tok_worker *w, const uint8_t *key, size_t len, uint64_t h, uint64_t n)
{
	pending *q = &w->pend;
	if (len > PEND_BYTES - q->used) {
		pend_flush(w);
		if (len > PEND_BYTES) {
			if (!w->failed && table_add(w->t, (const char *)key, len, h, n) != 0)
				w->failed = 1;
			return;
		}
	}
	memcpy(q->buf + q->used, key, len);
	q->off[q->n] = (uint32_t)q->used;
	q->len[q->n] = (uint32_t)len;
	q->h[q->n] = h;
	q->cnt[q->n] = n;
	q->used += len;
	table_prefetch(w->t, h);
	if (++q->n == PEND_KEYS)
		pend_flush(w);
}

/* Count one final key. */
static inline void count_key(tok_worker *w, const uint8_t *key, size_t len, uint64_t h, int cut)
{
	w->tokens++;
	w->cut += (uint64_t)cut;
	pend_key(w, key, len, h, 1);
}

/* Join words[0..n) with spaces, cut at max_key, and count: as a cut key
 * when it is cut, or when one of its words was (cuts[i]), as a word cut
 * back to a code point boundary can leave an n-gram within the limit. */
static void count_gram(tok_worker *w, const uint8_t *const *words, const size_t *lens,
	const uint8_t *cuts)
{
	const tok_shared *s = w->s;
	size_t room = s->max_key + 4, len = 0, total = 0;
	uint8_t *g = w->gram.p;
	for (unsigned i = 0; i < w->n; i++) {
		size_t parts[2] = { i ? 1 : 0, lens[i] };
		const uint8_t *src[2] = { (const uint8_t *)" ", words[i] };
		for (int j = 0; j < 2; j++) {
			size_t m = parts[j] < room - len ? parts[j] : room - len;
			memcpy(g + len, src[j], m);
			len += m;
			total += parts[j];
		}
	}
	int cut = 0;
	for (unsigned i = 0; i < w->n; i++)
		cut |= cuts[i];
	if (total > s->max_key) {
		len = utf8_cut(g, len, s->max_key);
		cut = 1;
	}
	count_key(w, g, len, table_hash(g, len), cut);
}

/* A word for the n-gram window. */
static void push_word(tok_worker *w, const uint8_t *key, size_t len, int cut)
{
	unsigned n = w->n;
	/* Out of memory already (the chunk fails): a word's slot in the
	 * window may have no buffer, and nothing more is counted anyway. */
	if (w->failed)
		return;
	if (w->count < n - 1) {
		if (wbuf_reserve(&w->firsts, w->firsts.len + len)) {
			w->failed = 1;
			return;
		}
		memcpy(w->firsts.p + w->firsts.len, key, len);
		w->firsts.len += len;
		w->first_cuts[w->nfirst] = (uint8_t)cut;
		w->first_lens[w->nfirst++] = len;
	}
	w->count++;
	size_t slot;
	if (w->inwin == n) {
		slot = w->head;
		w->head = (w->head + 1) % n;
	} else {
		slot = (w->head + w->inwin) % n;
		w->inwin++;
	}
	wbuf *b = &w->ring[slot];
	if (wbuf_reserve(b, len ? len : 1)) {
		w->failed = 1;
		return;
	}
	memcpy(b->p, key, len);
	b->len = len;
	b->cut = cut;
	if (w->inwin == n && !w->beyond) {
		const uint8_t **words = w->wp;
		size_t *lens = w->wl;
		for (unsigned i = 0; i < n; i++) {
			const wbuf *x = &w->ring[(w->head + i) % n];
			words[i] = x->p;
			lens[i] = x->len;
			w->wc[i] = (uint8_t)x->cut;
		}
		count_gram(w, words, lens, w->wc);
	}
}

/* Filters, then count (or feed the n-gram window). */
static void emit_slow(tok_worker *w, const uint8_t *key, size_t len, int cut)
{
	const tok_shared *s = w->s;
	if (s->min_len | s->max_len) {
		size_t cps = len;
		for (size_t i = 0; i < len; i++)
			if (key[i] >= 0x80) {
				cps = utf8_count(key, len);
				break;
			}
		if (cps < s->min_len || (s->max_len && cps > s->max_len))
			return;
	}
	uint64_t h = 0;
	if (s->has_stop) {
		h = table_hash(key, len);
		if (stop_contains(&s->stop, key, len, h))
			return;
	}
	if (w->n > 1) {
		/* A cut word is not a key: the n-grams it goes into are
		 * counted as cut. */
		push_word(w, key, len, cut);
		return;
	}
	if (!s->has_stop)
		h = table_hash(key, len);
	count_key(w, key, len, h, cut);
}

/* The hot path: no filters, no n-grams. */
static inline void emit(tok_worker *w, const uint8_t *key, size_t len, int cut)
{
	if (w->plain)
		count_key(w, key, len, table_hash(key, len), cut);
	else
		emit_slow(w, key, len, cut);
}

#if defined(__SSE2__)
/* ---- Short keys, the hot path ------------------------------------------
 *
 * With no filters and no n-grams (w->plain), a key of 1 to 16 bytes is
 * counted a vector at a time: masked to its length, hashed, and compared
 * with the pool's copy in one instruction.  Both word tokenizers send their
 * short words here.  The mask for length n is the 16 bytes at
 * len_mask + 16 - n. */
static const uint8_t len_mask[32] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static inline __m128i mask_len(__m128i b, size_t len)
{
	return _mm_and_si128(b, _mm_loadu_si128((const __m128i *)(const void *)(len_mask + 16 - len)));
}

/* Keys are counted in batches, one loop per step, so that each loop is
 * short and the loads of a step overlap instead of waiting one after the
 * other (the table outgrows the caches long before the vocabulary outgrows
 * memory): each key is hashed and its home slot prefetched when it is
 * added; when the batch is counted, the keys of more than TABLE_HASH_EXACT
 * bytes that the slots point to are prefetched first (the shorter ones are
 * settled by hash and length).  Keys are counted by length class, in the
 * order given within each (the order of the counts does not change them).
 * A batch is counted when it has BATCH keys; the space tokenizer adds up to
 * 32 at once (one 64-byte block), hence the room past BATCH.
 *
 * The partition array and the shift are fixed for the table's life; the
 * home slots stay valid until a key is inserted (which may grow a
 * partition or evict), after which the rest of the batch finds its slots
 * again. */
#define BATCH 64
#define BATCH_ROOM (BATCH + 32)
/* The hot loops read the input this far ahead (bytes): the hardware's
 * prefetcher stops at page boundaries, and a word batch is too much work
 * per block for it to keep ahead.  kjv x10, --split=space --case=ascii -j1
 * (Intel Xeon, AVX-512): 78 ms to 72 ms; 1024: 78 ms; 4096: 72 ms. */
#ifndef PREFETCH_INPUT
#define PREFETCH_INPUT 2048
#endif
_Static_assert(TABLE_HASH_CLASS(TABLE_HASH_EXACT) == 1 && TABLE_HASH_CLASS(TABLE_HASH_EXACT + 1) == 2,
	"the keys counted without their bytes are length classes 0 and 1");
_Static_assert(BATCH_ROOM % 8 == 0, "batch_hash_wide reads the batch eight keys at a time");
typedef struct short_batch {
	table_part  *parts;
	unsigned     shift;
	unsigned     n;
	__m128i      v[BATCH_ROOM];   /* the keys, zero past their length */
	uint32_t     len[BATCH_ROOM];
	uint64_t     h[BATCH_ROOM];
	table_entry *slot[BATCH_ROOM];
	/* The keys by length class (TABLE_HASH_CLASS): cls[c][0..ncls[c]). */
	uint8_t      cls[3][BATCH_ROOM];
	unsigned     ncls[3];
} short_batch;

static inline void batch_init(short_batch *bt, const tok_worker *w)
{
	const table_hot *h = (const table_hot *)w->t;
	bt->parts = h->parts;
	bt->shift = h->shift;
	bt->n = 0;
	bt->ncls[0] = bt->ncls[1] = bt->ncls[2] = 0;
}

static inline table_entry *batch_home(const short_batch *bt, uint64_t hash)
{
	return table_home(&bt->parts[hash >> bt->shift], hash);
}

/* Does the occupied slot e hold the key b (len bytes, zero past them)?
 * Keys of up to TABLE_HASH_EXACT bytes are told apart by hash and length
 * (table.h); exact: a constant, nonzero when len is known to be one of
 * them.  Longer pool keys of up to 16 bytes can be read 16 bytes at a time
 * (pool.h): one masked compare, no branch on the length. */
static inline __attribute__((always_inline))
int short_key_at(const table_entry *e, __m128i b, uint32_t len, uint64_t hash, int exact)
{
	if (e->hash != hash || e->len != len)
		return 0;
	if (exact || len <= TABLE_HASH_EXACT)
		return 1;
	__m128i k = mask_len(_mm_loadu_si128((const __m128i *)(const void *)e->key), len);
	return _mm_movemask_epi8(_mm_cmpeq_epi8(k, b)) == 0xffff;
}

/* A key that is not in its home slot: probe on from there, and insert it
 * when it is new (table_promote moves the frequent ones home).  Returns 1
 * when the key was new (the table may have changed), 0 when found, -1 on a
 * fatal table error (w->failed set). */
static __attribute__((noinline))
int batch_probe(tok_worker *w, const short_batch *bt, __m128i b, uint32_t len, uint64_t hash)
{
	table_part *pt = &bt->parts[hash >> bt->shift];
	table_entry *home = table_home(pt, hash);
	for (size_t i = hash & pt->mask;; i = (i + 1) & pt->mask) {
		table_entry *e = &pt->slots[i];
		if (!e->count) {
			uint8_t key[16];
			_mm_storeu_si128((__m128i *)(void *)key, b);
			if (table_add_new(w->t, pt, e, (const char *)key, len, hash, 1)) {
				w->failed = 1;
				return -1;
			}
			return 1;
		}
		if (short_key_at(e, b, len, hash, 0)) {
			e->count++;
			e->clock = TABLE_CLOCK_MAX;
			if (e != home)
				table_promote(home, e);
			return 0;
		}
	}
}

/* Hash key i of the batch and prefetch its home slot. */
static inline __attribute__((always_inline))
void batch_hash(short_batch *bt, unsigned i)
{
	uint8_t key[16];
	_mm_storeu_si128((__m128i *)(void *)key, bt->v[i]);
	bt->h[i] = table_hash_short(key, bt->len[i]);
	bt->slot[i] = batch_home(bt, bt->h[i]);
	__builtin_prefetch(bt->slot[i]);
}

/* Hash the keys idx[0..n) of the batch, all of length class cls
 * (TABLE_HASH_CLASS), and prefetch their home slots. */
static inline __attribute__((always_inline))
void batch_hash_class(short_batch *bt, const uint8_t *idx, unsigned n, unsigned cls)
{
	for (unsigned j = 0; j < n; j++) {
		const unsigned i = idx[j];
		bt->h[i] = table_hash_class(&bt->v[i], bt->len[i], cls);
		bt->slot[i] = batch_home(bt, bt->h[i]);
		__builtin_prefetch(bt->slot[i]);
	}
}

/* Count key i of the batch (exact: a constant, nonzero for a key of up to
 * TABLE_HASH_EXACT bytes).  *added counts the new keys: once there is one,
 * the slots found when hashing may be stale.  Returns 0, or -1 on a fatal
 * table error (w->failed set). */
static inline __attribute__((always_inline))
int batch_count(tok_worker *w, const short_batch *bt, unsigned i, int exact, unsigned *added)
{
	const uint64_t hash = bt->h[i];
	const uint32_t len = bt->len[i];
	table_entry *e = *added ? batch_home(bt, hash) : bt->slot[i];
	/* Most keys are found in their home slot (an empty slot has length 0,
	 * which no short key has). */
	if (short_key_at(e, bt->v[i], len, hash, exact)) {
		e->count++;
		e->clock = TABLE_CLOCK_MAX;
		return 0;
	}
	int r = batch_probe(w, bt, bt->v[i], len, hash);
	if (r < 0)
		return -1;
	*added += (unsigned)r;
	return 0;
}

/* Count the batch and empty it, a length class at a time: the keys of up
 * to 8 bytes, compared by hash and length alone, then the longer ones,
 * whose pool bytes are fetched first.  Returns 0, or -1 on a fatal table
 * error (w->failed set). */
static inline __attribute__((always_inline))
int batch_flush(tok_worker *w, short_batch *bt)
{
	const unsigned n = bt->n;
	const uint8_t *const lng = bt->cls[2];
	const unsigned nlong = bt->ncls[2];
	unsigned added = 0;   /* new keys: the rest are pool hits */
	bt->n = 0;
	/* The slots are on their way: fetch the keys they point to. */
	for (unsigned j = 0; j < nlong; j++)
		__builtin_prefetch(bt->slot[lng[j]]->key);
	for (unsigned c = 0; c < 2; c++)
		for (unsigned j = 0; j < bt->ncls[c]; j++)
			if (batch_count(w, bt, bt->cls[c][j], 1, &added))
				return -1;
	for (unsigned j = 0; j < nlong; j++)
		if (batch_count(w, bt, lng[j], 0, &added))
			return -1;
	bt->ncls[0] = bt->ncls[1] = bt->ncls[2] = 0;
	((table_hot *)w->t)->hits += n - added;
	return 0;
}

/* List key k of a batch (len bytes, keys 0 to k - 1 listed already) under
 * its length class (TABLE_HASH_CLASS: 1-3, 4-8, 9-16) in cls, whose list
 * lengths are n: it is written at the end of all three lists and only its
 * own list grows, so there is no branch on the length. */
static inline __attribute__((always_inline))
void class_list(uint8_t (*cls)[BATCH_ROOM], unsigned *n, unsigned k, size_t len)
{
	cls[0][n[0]] = cls[1][n[1]] = cls[2][n[2]] = (uint8_t)k;
	n[0] += len <= 3;
	n[2] += len > TABLE_HASH_EXACT;
	n[1] = k + 1 - n[0] - n[2];
}

/* The same for a batch hashed eight keys at a time, where only the keys
 * of more than TABLE_HASH_EXACT bytes are hashed apart: the shorter ones
 * all go to list 0, list 1 stays empty. */
static inline __attribute__((always_inline))
void exact_list(uint8_t (*cls)[BATCH_ROOM], unsigned *n, unsigned k, size_t len)
{
	cls[0][n[0]] = cls[2][n[2]] = (uint8_t)k;
	n[2] += len > TABLE_HASH_EXACT;
	n[0] = k + 1 - n[2];
}

/* Add a key of 1 to 16 bytes, zero past len; counts the batch when full. */
static inline __attribute__((always_inline))
int batch_add(tok_worker *w, short_batch *bt, __m128i b, size_t len)
{
	unsigned i = bt->n++;
	bt->v[i] = b;
	bt->len[i] = (uint32_t)len;
	class_list(bt->cls, bt->ncls, i, len);
	batch_hash(bt, i);
	return bt->n >= BATCH ? batch_flush(w, bt) : 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* ---- Short keys hashed eight at a time -------------------------------
 *
 * On a CPU with AVX-512 (F and DQ: 64-bit lanes, rotates and multiplies),
 * the keys of up to 8 bytes (nearly every word) are hashed eight at a
 * time, with the arithmetic of XXH3_len_1to3_64b and XXH3_len_4to8_64b
 * (seed 0) done lane by lane: the same hashes.  test_tokenize checks every
 * counted key's hash against XXH3_64bits, both ways; the CLI tests compare
 * --sort=none (hash order) both ways.  tok_wide_hash() says whether the
 * CPU has it; TALLY_NO_AVX512 in the environment turns it off.
 * On kjv x100, --split=space --case=ascii -j1: 0.94 s to 0.84 s; the
 * default tokenizer: 0.87 s to 0.76 s. */
#define WIDE_HASH 1

/* XXH3 of 8 keys of class cls (0 or 1): x holds each key's bytes, little
 * endian, zero past its length; l its length. */
__attribute__((target("avx512f,avx512dq")))
static inline __m512i hash8(__m512i x, __m512i l, unsigned cls)
{
	const uint8_t *sec = XXH3_kSecret;
	const __m512i byte = _mm512_set1_epi64(0xff);
	__m512i h;
	if (cls == 0) {
		/* combined = c1 << 16 | c2 << 24 | c3 | len << 8, then XXH64's
		 * avalanche. */
		__m512i c2 = _mm512_and_si512(_mm512_srlv_epi64(x,
			_mm512_slli_epi64(_mm512_srli_epi64(l, 1), 3)), byte);
		__m512i c3 = _mm512_and_si512(_mm512_srlv_epi64(x,
			_mm512_slli_epi64(_mm512_sub_epi64(l, _mm512_set1_epi64(1)), 3)), byte);
		__m512i c = _mm512_or_si512(_mm512_slli_epi64(_mm512_and_si512(x, byte), 16),
			_mm512_or_si512(_mm512_slli_epi64(c2, 24), _mm512_or_si512(c3, _mm512_slli_epi64(l, 8))));
		h = _mm512_xor_si512(c, _mm512_set1_epi64((long long)(uint64_t)(XXH_readLE32(sec) ^
			XXH_readLE32(sec + 4))));
		h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 33));
		h = _mm512_mullo_epi64(h, _mm512_set1_epi64((long long)XXH_PRIME64_2));
		h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 29));
		h = _mm512_mullo_epi64(h, _mm512_set1_epi64((long long)XXH_PRIME64_3));
		return _mm512_xor_si512(h, _mm512_srli_epi64(h, 32));
	}
	/* The first 4 bytes above the last 4, then rrmxmx. */
	const __m512i mx = _mm512_set1_epi64((long long)0x9FB21C651E98DF25ULL);
	__m512i last = _mm512_and_si512(_mm512_srlv_epi64(x,
		_mm512_slli_epi64(_mm512_sub_epi64(l, _mm512_set1_epi64(4)), 3)),
		_mm512_set1_epi64(0xffffffff));
	h = _mm512_xor_si512(_mm512_or_si512(_mm512_slli_epi64(x, 32), last),
		_mm512_set1_epi64((long long)(XXH_readLE64(sec + 8) ^ XXH_readLE64(sec + 16))));
	h = _mm512_ternarylogic_epi64(h, _mm512_rol_epi64(h, 49), _mm512_rol_epi64(h, 24), 0x96);
	h = _mm512_mullo_epi64(h, mx);
	h = _mm512_xor_si512(h, _mm512_add_epi64(_mm512_srli_epi64(h, 35), l));
	h = _mm512_mullo_epi64(h, mx);
	return _mm512_xor_si512(h, _mm512_srli_epi64(h, 28));
}

/* Hash keys 0 to n - 1 of the batch, eight at a time: every lane is hashed
 * as class 0 and as class 1 and keeps the one of its length; the keys of
 * class 2 are hashed again after, one by one.  No gather: the keys' low 8
 * bytes and their lengths are read in order. */
__attribute__((target("avx512f,avx512dq"), noinline))
static void batch_hash_wide(short_batch *bt, unsigned n)
{
	const __m512i low = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i three = _mm512_set1_epi64(3);
	for (unsigned i = 0; i < n; i += 8) {
		/* v and len have room for 8 past any key (BATCH_ROOM): the
		 * lanes past n are hashed and not used. */
		__m512i a = _mm512_loadu_si512((const void *)&bt->v[i]);
		__m512i b = _mm512_loadu_si512((const void *)&bt->v[i + 4]);
		__m512i x = _mm512_permutex2var_epi64(a, low, b);
		__m512i l = _mm512_cvtepu32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)&bt->len[i]));
		__mmask8 small = _mm512_cmple_epu64_mask(l, three);
		__m512i h = _mm512_mask_blend_epi64(small, hash8(x, l, 1), hash8(x, l, 0));
		_mm512_storeu_si512((void *)&bt->h[i], h);
	}
}
#endif
#else
typedef struct short_batch short_batch;
#endif

int tok_wide_hash(void)
{
#ifdef WIDE_HASH
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
		!getenv("TALLY_NO_AVX512");
#else
	return 0;
#endif
}

/* ---- Unicode words --------------------------------------------------- */

/* Is the code point at p (p < end) a word character? */
static inline int uni_word_at(const tok_shared *s, const uint8_t *p, const uint8_t *end)
{
	if (*p < 0x80)
		return s->acls[*p] & AC_WORD;
	uint32_t cp;
	size_t n = utf8_dec(p, end, &cp);
	return n && uni_is_word(s, cp);
}

/* Length of an apostrophe at p, 0 when there is none. */
static inline size_t uni_apos(const uint8_t *p, const uint8_t *end)
{
	if (*p == '\'')
		return 1;
	if (*p == 0xE2 && end - p >= 3 && p[1] == 0x80 && p[2] == 0x99)
		return 3;
	return 0;
}

/* Skip the rest of a word whose previous code point was a word character. */
static const uint8_t *uni_skip(const tok_shared *s, const uint8_t *p, const uint8_t *end)
{
	while (p < end) {
		size_t a = uni_apos(p, end);
		if (a) {
			if (p + a < end && uni_word_at(s, p + a, end)) {
				p += a;
				continue;
			}
			break;
		}
		if (*p < 0x80) {
			if (!(s->acls[*p] & AC_WORD))
				break;
			p++;
			continue;
		}
		uint32_t cp;
		size_t n = utf8_dec(p, end, &cp);
		if (!n || !uni_is_word(s, cp))
			break;
		p += n;
	}
	return p;
}

#if defined(__SSE2__)
/* The ASCII word characters of b, [A-Za-z0-9_] (the ASCII members of the
 * Unicode word classes), as 0xff bytes; *alpha: the letters. */
static inline __m128i ascii_word_vec(__m128i b, __m128i *alphap)
{
	const __m128i bias = _mm_set1_epi8((char)0x80);
	__m128i l = _mm_or_si128(b, _mm_set1_epi8(0x20));
	__m128i alpha = _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8(l, _mm_set1_epi8('a')), bias),
		_mm_set1_epi8((char)(0x80 + 26)));
	__m128i digit = _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8(b, _mm_set1_epi8('0')), bias),
		_mm_set1_epi8((char)(0x80 + 10)));
	__m128i under = _mm_cmpeq_epi8(b, _mm_set1_epi8('_'));
	*alphap = alpha;
	return _mm_or_si128(_mm_or_si128(alpha, digit), under);
}

/* Copy 16 bytes to dst (A-Z mapped to a-z when fold) and return how many
 * leading bytes are ASCII word characters: [A-Za-z0-9_]. */
static inline unsigned ascii_word16(const uint8_t *src, uint8_t *dst, int fold)
{
	__m128i b = _mm_loadu_si128((const __m128i *)(const void *)src), alpha;
	__m128i word = ascii_word_vec(b, &alpha);
	/* Upper case letters: alpha and bit 0x20 clear. */
	__m128i up = _mm_andnot_si128(_mm_cmpeq_epi8(_mm_and_si128(b, _mm_set1_epi8(0x20)),
		_mm_set1_epi8(0x20)), alpha);
	__m128i out = fold ? _mm_or_si128(b, _mm_and_si128(up, _mm_set1_epi8(0x20))) : b;
	_mm_storeu_si128((__m128i *)(void *)dst, out);
	unsigned m = (unsigned)_mm_movemask_epi8(word) ^ 0xFFFFu;
	return m ? (unsigned)__builtin_ctz(m) : 16u;
}
#else
static inline unsigned ascii_word16(const uint8_t *src, uint8_t *dst, int fold)
{
	unsigned i;
	for (i = 0; i < 16; i++) {
		uint8_t c = src[i];
		int alpha = (uint8_t)((c | 0x20) - 'a') < 26;
		if (!(alpha || (uint8_t)(c - '0') < 10 || c == '_'))
			break;
		dst[i] = (uint8_t)(fold && alpha ? c | 0x20 : c);
	}
	return i;
}
#endif

/* The words of p..end that start before limit, a code point at a time:
 * the path for any text.  Short keys go through the batch bt (emptied by
 * the caller).  Returns where it stopped: at or past limit, after a
 * character that is not part of a word; NULL on a fatal error. */
static const uint8_t *uni_words(tok_worker *w, short_batch *bt, const uint8_t *p,
	const uint8_t *limit, const uint8_t *end)
{
	const tok_shared *s = w->s;
	const uint8_t *acls = s->acls, *low = s->lowtab;
	const int lower = s->casemode == TALLY_CASE_LOWER;
	const size_t max = s->max_key;
	uint8_t *key = w->kb.b;
	uint64_t ill = 0, tokens = 0;
#if !defined(__SSE2__)
	(void)bt;
#endif

	while (p < limit) {
		uint32_t c = *p, cp;
		size_t n;
		if (c < 0x80) {
			if (!(acls[c] & AC_WORD)) {
				p++;
				continue;
			}
		} else {
			n = utf8_dec(p, end, &cp);
			if (!n) {
				ill++;
				p++;
				continue;
			}
			if (!uni_is_word(s, cp)) {
				p += n;
				continue;
			}
		}
		/* A word starts at p. */
		size_t k = 0;
		int cut = 0;
		while (p < end) {
			/* Sixteen bytes at a time while the word is ASCII. */
			while (end - p >= 16) {
				unsigned run = ascii_word16(p, key + k, lower || s->casemode == TALLY_CASE_ASCII);
				if (k + run > max) {
					p += max - k;
					k = max;
					cut = 1;
					break;
				}
				k += run;
				p += run;
				if (run < 16)
					break;
			}
			if (cut || p == end)
				break;
			c = *p;
			if (c < 0x80) {
				if (acls[c] & AC_WORD) {
					if (k >= max) {
						cut = 1;
						break;
					}
					key[k++] = low[c];
					p++;
					continue;
				}
				if (c == '\'' && p + 1 < end && uni_word_at(s, p + 1, end)) {
					if (k >= max) {
						cut = 1;
						break;
					}
					key[k++] = '\'';
					p++;
					continue;
				}
				break;
			}
			if (c >= 0xC2 && c < 0xE0 && p + 1 < end && (p[1] & 0xC0) == 0x80) {
				/* Two-byte sequences (Cyrillic, Greek, Latin-1...). */
				cp = ((c & 0x1F) << 6) | (p[1] & 0x3Fu);
				n = 2;
				if (!(s->uflags[cp] & UF_WORD))
					break;
			} else {
				n = utf8_dec(p, end, &cp);
				if (!n)
					break;
				if (cp == 0x2019) {
					if (!(p + 3 < end && uni_word_at(s, p + 3, end)))
						break;
				} else if (!uni_is_word(s, cp)) {
					break;
				}
			}
			/* The key buffer has slack: encode first, check after. */
			size_t tl = utf8_enc(lower ? uni_lower(s, cp) : cp, key + k);
			if (k + tl > max) {
				cut = 1;
				break;
			}
			k += tl;
			p += n;
		}
		if (cut)
			p = uni_skip(s, p, end);
#if defined(__SSE2__)
		/* The key buffer has more than 16 bytes: a short key can be read
		 * a vector at a time. */
		if (w->plain && !cut && k - 1 < 16) {
			tokens++;
			if (batch_add(w, bt, mask_len(_mm_loadu_si128((const __m128i *)(const void *)key), k), k)) {
				p = NULL;
				break;
			}
			continue;
		}
		if (batch_flush(w, bt)) {
			p = NULL;
			break;
		}
#endif
		emit(w, key, k, cut);
	}
	w->tokens += tokens;
	w->ill += ill;
	return p;
}

/* ---- Space words ----------------------------------------------------- */

#if defined(__SSE2__)
/* Bit i set when p[i] is ASCII whitespace, for 64 bytes. */
static inline uint64_t space_mask64(const uint8_t *p)
{
	const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
	const __m128i bias = _mm_set1_epi8((char)0x80), lim = _mm_set1_epi8((char)(0x80 + 5));
	uint64_t m = 0;
	for (int i = 0; i < 4; i++) {
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
		/* '\t'..'\r' are 5 consecutive bytes: an unsigned range test. */
		__m128i t = _mm_xor_si128(_mm_sub_epi8(b, tab), bias);
		__m128i r = _mm_or_si128(_mm_cmpeq_epi8(b, sp), _mm_cmplt_epi8(t, lim));
		m |= (uint64_t)(uint16_t)_mm_movemask_epi8(r) << (16 * i);
	}
	return m;
}

/* A-Z mapped to a-z in 16 bytes. */
static inline __m128i lower_vec(__m128i b)
{
	const __m128i a = _mm_set1_epi8('A'), bias = _mm_set1_epi8((char)0x80);
	const __m128i lim = _mm_set1_epi8((char)(0x80 + 26)), bit = _mm_set1_epi8(0x20);
	__m128i up = _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8(b, a), bias), lim);
	return _mm_or_si128(b, _mm_and_si128(up, bit));
}

/* Copy 16 bytes, mapping A-Z to a-z; returns a mask of bytes >= 0x80. */
static inline unsigned ascii_lower16(const uint8_t *src, uint8_t *dst)
{
	__m128i b = _mm_loadu_si128((const __m128i *)(const void *)src);
	_mm_storeu_si128((__m128i *)(void *)dst, lower_vec(b));
	return (unsigned)_mm_movemask_epi8(b);
}
#else
static inline uint64_t space_mask64(const uint8_t *p)
{
	uint64_t m = 0;
	for (int i = 0; i < 64; i++)
		m |= (uint64_t)(p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')) << i;
	return m;
}

static inline unsigned ascii_lower16(const uint8_t *src, uint8_t *dst)
{
	unsigned hi = 0;
	for (int i = 0; i < 16; i++) {
		uint8_t c = src[i];
		dst[i] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		hi |= (unsigned)(c >> 7) << i;
	}
	return hi;
}
#endif

/* The whitespace mask of the next min(n, 64) bytes at p; bits past the end
 * count as whitespace, so a word ends there. */
static inline uint64_t space_block(const tok_shared *s, const uint8_t *p, size_t n)
{
	if (n >= 64)
		return space_mask64(p);
	uint64_t m = ~(uint64_t)0;
	for (size_t i = 0; i < n; i++)
		if (!s->space[p[i]])
			m &= ~((uint64_t)1 << i);
	return m;
}

/* One space-separated word st[0..len); end is the chunk's end (vector
 * copies may read up to it). */
static inline void space_word(tok_worker *w, const uint8_t *st, size_t len, const uint8_t *end)
{
	const tok_shared *s = w->s;
	const size_t max = s->max_key;
	uint8_t *key = w->kb.b;
	switch (s->casemode) {
	case TALLY_CASE_KEEP:
		if (len > max)
			emit(w, st, utf8_cut(st, len, max), 1);
		else
			emit(w, st, len, 0);
		return;
	case TALLY_CASE_LOWER:
	case TALLY_CASE_ASCII:
		if (len <= 32 && len <= max && (size_t)(end - st) >= 32) {
			unsigned hi = ascii_lower16(st, key);
			if (len > 16)
				hi |= ascii_lower16(st + 16, key + 16) << 16;
			hi &= (unsigned)((1ull << len) - 1);
			if (!hi || s->casemode == TALLY_CASE_ASCII) {
				emit(w, key, len, 0);
				return;
			}
		}
		if (s->casemode == TALLY_CASE_ASCII) {
			const uint8_t *low = s->lowtab;
			size_t m = len < max + 4 ? len : max + 4;
			for (size_t i = 0; i < m; i++)
				key[i] = low[st[i]];
			if (len > max)
				emit(w, key, utf8_cut(key, m, max), 1);
			else
				emit(w, key, len, 0);
			return;
		}
		break;
	default:
		break;
	}
	keybuf *kb = &w->kb;
	kb_reset(kb);
	kb_append(s, kb, st, len);
	int cut = kb_finish(s, kb);
	emit(w, kb->b, kb->len, cut);
}

/* The words that end in the 64 bytes at p, whose whitespace mask is m
 * (bits past the input's end set), one by one: a word carried in from the
 * blocks before first.  The scan state goes from block to block: *prev,
 * whether the byte before the block is whitespace; *inword and *start, a
 * word begun and not yet ended.
 *
 *	block_scan b = block_begin(p, m, &prev, &inword, &start);
 *	while (block_next(&b, &st, &len))
 *		... the word st, len bytes ...
 */
typedef struct block_scan {
	const uint8_t  *p;
	uint64_t        starts, ends;
	const uint8_t  *carry;    /* the word carried in, if any */
	int            *inword;
	const uint8_t **start;
} block_scan;

static inline __attribute__((always_inline))
block_scan block_begin(const uint8_t *p, uint64_t m, uint64_t *prev, int *inword,
	const uint8_t **start)
{
	uint64_t before = (m << 1) | *prev;   /* bit i: byte i - 1 is a space */
	*prev = m >> 63;
	return (block_scan){ p, ~m & before, m & ~before, *inword ? *start : NULL, inword, start };
}

/* The next word that ends in the block: 1 with *st and *len set, or 0 when
 * none is left (a word begun and not ended is then in the scan state). */
static inline __attribute__((always_inline))
int block_next(block_scan *b, const uint8_t **st, size_t *len)
{
	/* Starts and ends alternate; a word carried in ends at the first end. */
	if (!b->ends) {
		if (b->starts) {
			*b->start = b->p + __builtin_ctzll(b->starts);
			*b->inword = 1;
		}
		return 0;
	}
	const uint8_t *e = b->p + __builtin_ctzll(b->ends);
	b->ends &= b->ends - 1;
	if (b->carry) {
		*b->inword = 0;
		*st = b->carry;
		b->carry = NULL;
	} else {
		*st = b->p + __builtin_ctzll(b->starts);
		b->starts &= b->starts - 1;
	}
	*len = (size_t)(e - *st);
	return 1;
}

#if defined(__SSE2__)
/* Case-map a key of up to 16 bytes held in a vector (casemode: a
 * constant).  Returns 0, or -1 when casemode is Unicode lowercase and the
 * key is not ASCII (space_word() maps it). */
static inline __attribute__((always_inline))
int fold16(__m128i *b, tally_case casemode)
{
	if (casemode == TALLY_CASE_KEEP)
		return 0;
	if (casemode == TALLY_CASE_LOWER && _mm_movemask_epi8(*b))
		return -1;
	*b = lower_vec(*b);
	return 0;
}

/* The words of a batch as they are gathered (see key_add). */
typedef struct gather {
	unsigned       k;           /* keys in the batch */
	unsigned       nc[3];       /* its class lists' lengths */
	unsigned       rest;        /* the other words, in word[] and wlen[] */
	int            wide;        /* batch_hash_wide hashes the batch */
	const uint8_t *word[BATCH_ROOM];
	size_t         wlen[BATCH_ROOM];
} gather;

/* Empty the gather (the batch is counted). */
static inline void gather_reset(gather *g)
{
	g->k = g->rest = 0;
	g->nc[0] = g->nc[1] = g->nc[2] = 0;
}

static inline void gather_init(gather *g, const tok_worker *w)
{
	gather_reset(g);
	g->wide = w->wide;   /* 0 where there is no batch_hash_wide */
}

/* Gather the word st (len bytes) into the batch bt (casemode: a constant).
 * A word of up to 16 bytes is masked and case-mapped into the batch,
 * listed by length class without a branch (class_list, or exact_list when
 * the batch is hashed eight keys at a time); the others are kept in
 * g->word[] for space_word().  The input has 16 readable bytes at st. */
static inline __attribute__((always_inline))
void key_add(short_batch *bt, gather *g, const uint8_t *st, size_t len, tally_case casemode)
{
	if (len <= 16) {
		__m128i b = mask_len(_mm_loadu_si128((const __m128i *)(const void *)st), len);
		if (!fold16(&b, casemode)) {
			unsigned k = g->k++;
			bt->v[k] = b;
			bt->len[k] = (uint32_t)len;
			if (g->wide)
				exact_list(bt->cls, g->nc, k, len);
			else
				class_list(bt->cls, g->nc, k, len);
			return;
		}
	}
	g->word[g->rest] = st;
	g->wlen[g->rest++] = len;
}

/* Count the words gathered in g: the batch's keys hashed a class at a
 * time, so that no branch on the length is mispredicted for every other
 * word (or eight at a time, all classes but the longest together, with
 * AVX-512: batch_hash_wide), and counted.  The other words then take
 * space_word(), once the batch holds no slot.  Returns 0, or -1 on a fatal
 * error. */
static inline __attribute__((always_inline))
int count_gathered(tok_worker *w, short_batch *bt, gather *g, const uint8_t *end)
{
	const unsigned k = g->k;
#ifdef WIDE_HASH
	if (g->wide) {
		const uint8_t *const idx2 = bt->cls[2];
		batch_hash_wide(bt, k);
		for (unsigned j = 0; j < g->nc[2]; j++)
			bt->h[idx2[j]] = table_hash_class(&bt->v[idx2[j]], bt->len[idx2[j]], 2);
		for (unsigned i = 0; i < k; i++) {
			bt->slot[i] = batch_home(bt, bt->h[i]);
			__builtin_prefetch(bt->slot[i]);
		}
	} else
#endif
	{
		/* One call per class: the class is a constant in each. */
		batch_hash_class(bt, bt->cls[0], g->nc[0], 0);
		batch_hash_class(bt, bt->cls[1], g->nc[1], 1);
		batch_hash_class(bt, bt->cls[2], g->nc[2], 2);
	}
	bt->n = k;
	memcpy(bt->ncls, g->nc, sizeof g->nc);
	w->tokens += k;
	if (batch_flush(w, bt))
		return -1;
	for (unsigned i = 0; i < g->rest; i++) {
		space_word(w, g->word[i], g->wlen[i], end);
		if (w->failed)
			return -1;
	}
	gather_reset(g);
	return 0;
}

/* The hot path of space_words (w->plain; casemode a constant): the blocks
 * of p..end with 80 bytes left, so that every word that starts in one has
 * 16 readable bytes.  The words are gathered into a batch as the blocks
 * are scanned (key_add), then counted (count_gathered).  The scan state
 * (prev, inword, start: see space_words) is carried in and out.  Returns
 * where it stopped, at a block boundary, or NULL on a fatal error. */
static inline __attribute__((always_inline))
const uint8_t *space_fast(tok_worker *w, const uint8_t *p, const uint8_t *end, tally_case casemode,
	uint64_t *prevp, int *inwordp, const uint8_t **startp)
{
	short_batch bt;
	gather g;
	uint64_t prev = *prevp;
	int inword = *inwordp;
	const uint8_t *start = *startp;
	batch_init(&bt, w);
	gather_init(&g, w);
	while (end - p >= 80) {
		/* Gather: a 64-byte block ends at most 32 words. */
		do {
			__builtin_prefetch(p + PREFETCH_INPUT);
			block_scan b = block_begin(p, space_mask64(p), &prev, &inword, &start);
			const uint8_t *st;
			size_t len;
			while (block_next(&b, &st, &len))
				key_add(&bt, &g, st, len, casemode);
			p += 64;
		} while (g.k + g.rest < BATCH && end - p >= 80);
		if (count_gathered(w, &bt, &g, end))
			return NULL;
	}
	*prevp = prev;
	*inwordp = inword;
	*startp = start;
	return p;
}
#endif

/* Words are the runs between whitespace: find the changes between space
 * and non-space 64 bytes at a time and take the words between them.  fast
 * and casemode (constants): take the hot path for short words (w->plain),
 * with that case mode, as far as it goes. */
static inline __attribute__((always_inline))
void space_words(tok_worker *w, const uint8_t *p, const uint8_t *end, int fast, tally_case casemode)
{
	const uint8_t *start = p;   /* of the word in progress, when inword */
	uint64_t prev = 1;          /* the byte before p counts as whitespace */
	int inword = 0;
#if defined(__SSE2__)
	if (fast && !(p = space_fast(w, p, end, casemode, &prev, &inword, &start)))
		return;
#else
	(void)fast;
	(void)casemode;
#endif
	while (p < end) {
		size_t n = (size_t)(end - p);
		block_scan b = block_begin(p, space_block(w->s, p, n), &prev, &inword, &start);
		const uint8_t *st;
		size_t len;
		while (block_next(&b, &st, &len)) {
			space_word(w, st, len, end);
			if (w->failed)
				return;
		}
		p += n >= 64 ? 64 : n;
	}
	if (inword)
		space_word(w, start, (size_t)(end - start), end);
}

static void run_space(tok_worker *w, const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__)
	if (w->plain && w->s->max_key >= 16) {
		switch (w->s->casemode) {
		case TALLY_CASE_KEEP:
			space_words(w, p, end, 1, TALLY_CASE_KEEP);
			return;
		case TALLY_CASE_ASCII:
			space_words(w, p, end, 1, TALLY_CASE_ASCII);
			return;
		default:
			space_words(w, p, end, 1, TALLY_CASE_LOWER);
			return;
		}
	}
#endif
	space_words(w, p, end, 0, w->s->casemode);
}

/* ---- Unicode words, ASCII blocks --------------------------------------
 *
 * In a block of 64 bytes that are all ASCII, the Unicode words are the runs
 * of [A-Za-z0-9_], joined across an apostrophe that has word characters
 * on both sides, exactly as uni_words() reads them: such blocks are read
 * like the space tokenizer's, with the word mask in place of the
 * whitespace mask, and their words gathered and counted by key_add() and
 * count_gathered() (an ASCII word is cased the same by --case=lower and
 * --case=ascii, and space_word() cases and cuts the long ones as
 * uni_words() would).  A block with a byte of 0x80 or more goes back to
 * uni_words(), from the start of any word in progress. */

#if defined(__SSE2__)
/* Bit i set when p[i] is an ASCII word character; *hi: the bytes >= 0x80;
 * *apos: the apostrophes.  64 bytes. */
static inline uint64_t word_mask64(const uint8_t *p, uint64_t *hi, uint64_t *apos)
{
	uint64_t m = 0, h = 0, a = 0;
	for (int i = 0; i < 4; i++) {
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i)), alpha;
		__m128i word = ascii_word_vec(b, &alpha);
		m |= (uint64_t)(uint16_t)_mm_movemask_epi8(word) << (16 * i);
		h |= (uint64_t)(uint16_t)_mm_movemask_epi8(b) << (16 * i);
		a |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(b, _mm_set1_epi8('\''))) << (16 * i);
	}
	*hi = h;
	*apos = a;
	return m;
}

/* The ASCII blocks of p..end from p on (casemode: KEEP or ASCII, a
 * constant), while 80 bytes are left (see space_fast), counted through the
 * empty batch bt.  Returns where uni_words() must take over, and in *limit
 * the end of the block it must read (end after the last block); NULL on a
 * fatal error. */
static inline __attribute__((always_inline))
const uint8_t *uni_fast(tok_worker *w, short_batch *bt, const uint8_t *p, const uint8_t *end,
	tally_case casemode, const uint8_t **limit)
{
	const tok_shared *s = w->s;
	gather g;
	const uint8_t *start = p;
	uint64_t prev = 1;    /* block_begin: the byte before p is no word's */
	uint64_t wprev = 0;   /* the byte before p is a word character */
	int inword = 0;
	*limit = end;
	gather_init(&g, w);
	while (end - p >= 80 && *limit == end) {
		do {
			__builtin_prefetch(p + PREFETCH_INPUT);
			uint64_t hi, apos, wm = word_mask64(p, &hi, &apos), plain = wm;
			if (hi) {
				*limit = p + 64;
				break;
			}
			if (apos) {
				/* The byte after the block decides an apostrophe at
				 * its end (80 bytes are left: it is there). */
				uint64_t next = (uint64_t)uni_word_at(s, p + 64, end);
				wm |= apos & ((plain << 1) | wprev) & ((plain >> 1) | (next << 63));
			}
			wprev = plain >> 63;
			block_scan b = block_begin(p, ~wm, &prev, &inword, &start);
			const uint8_t *st;
			size_t len;
			while (block_next(&b, &st, &len))
				key_add(bt, &g, st, len, casemode);
			p += 64;
		} while (g.k + g.rest < BATCH && end - p >= 80);
		if (count_gathered(w, bt, &g, end))
			return NULL;
	}
	return inword ? start : p;
}
#endif

/* Unicode words (the default tokenizer): ASCII blocks through uni_fast()
 * where the keys go straight in (w->plain), the rest through uni_words(). */
static void run_unicode(tok_worker *w, const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__)
	short_batch bt;
	batch_init(&bt, w);
	if (w->plain && w->s->max_key >= 16) {
		const tally_case casemode = w->s->casemode;
		unsigned misses = 0;   /* tries in a row that found no ASCII block */
		while (p && p < end) {
			const uint8_t *limit, *from = p;
			p = casemode == TALLY_CASE_KEEP ? uni_fast(w, &bt, p, end, TALLY_CASE_KEEP, &limit) :
				uni_fast(w, &bt, p, end, TALLY_CASE_ASCII, &limit);
			/* In text that is not ASCII, try the blocks less and less
			 * often (up to every 4 KiB): each try costs a batch. */
			misses = p == from ? misses + 1 : 0;
			size_t more = ((size_t)64 << (misses < 6 ? misses : 6)) - 64;
			if (limit != end)
				limit = (size_t)(end - limit) > more ? limit + more : end;
			if (p) {
				p = uni_words(w, &bt, p, limit, end);
				if (p && batch_flush(w, &bt))
					p = NULL;
			}
		}
		return;
	}
	if (uni_words(w, &bt, p, end, end))
		batch_flush(w, &bt);
#else
	uni_words(w, NULL, p, end, end);
#endif
}

/* ---- Lines ----------------------------------------------------------- */

static void run_lines(tok_worker *w, const uint8_t *p, const uint8_t *end)
{
	const tok_shared *s = w->s;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *le = nl ? nl : end;
		size_t len = (size_t)(le - p);
		if (s->casemode == TALLY_CASE_KEEP) {
			if (len > s->max_key)
				emit(w, p, utf8_cut(p, len, s->max_key), 1);
			else
				emit(w, p, len, 0);
		} else {
			kb_reset(&w->kb);
			kb_append(s, &w->kb, p, len);
			int cut = kb_finish(s, &w->kb);
			emit(w, w->kb.b, w->kb.len, cut);
		}
		p = nl ? nl + 1 : end;
	}
}

/* ---- Count files (tally merge) ----------------------------------------- */

#define COUNTS_LONG_LINE "the line is too long for a key of at most --max-key-bytes"

/* One line of a count file, KEY<TAB>COUNT, as the tsv format writes it:
 * the key is everything before the first TAB, with \\, \t, \n and \r
 * undone; the count is a decimal number of 1 or more. */
const char *tok_count_line(const tok_shared *s, const uint8_t *p, const uint8_t *le,
	uint8_t *kbuf, tok_count_rec *r)
{
	/* Told first, as when the line is longer than a buffer and split
	 * (run_counts), so that the reason does not depend on the buffers'
	 * size. */
	if ((size_t)(le - p) > counts_line_max(s))
		return COUNTS_LONG_LINE;
	const uint8_t *tab = memchr(p, '\t', (size_t)(le - p));
	if (!tab)
		return p == le ? "empty line" : "no TAB between key and count";
	const uint8_t *d = tab + 1;
	if (d == le)
		return "no count after the TAB";
	uint64_t n = 0;
	for (; d < le; d++) {
		unsigned v = (unsigned)*d - '0';
		if (v > 9)
			return "the count is not a decimal number";
		if (n > (UINT64_MAX - v) / 10)
			return "the count is too large (more than 18446744073709551615)";
		n = n * 10 + v;
	}
	if (n == 0)
		return "the count is 0";

	const uint8_t *key = p;
	size_t len = (size_t)(tab - p);
	const uint8_t *bs = memchr(p, '\\', len);
	if (bs) {
		/* Undo the escapes into kbuf. */
		uint8_t *o = kbuf;
		size_t k = (size_t)(bs - p);
		if (k > s->max_key)
			return "the key is longer than --max-key-bytes";
		memcpy(o, p, k);
		for (const uint8_t *q = bs; q < tab; q++) {
			uint8_t c = *q;
			if (c == '\\') {
				c = ++q < tab ? *q : 0;
				c = c == '\\' ? '\\' : c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : 0;
				if (!c)
					return "a backslash in the key is not one of \\\\, \\t, \\n, \\r";
			}
			if (k == s->max_key)
				return "the key is longer than --max-key-bytes";
			o[k++] = c;
		}
		key = o;
		len = k;
	}
	if (len > s->max_key)
		return "the key is longer than --max-key-bytes";
	*r = (tok_count_rec){ key, len, n };
	return NULL;
}

/* A line of a count file counted, or what is wrong with it. */
static const char *count_line(tok_worker *w, const uint8_t *p, const uint8_t *le)
{
	tok_count_rec r;
	const char *why = tok_count_line(w->s, p, le, w->kb.b, &r);
	if (why)
		return why;
	w->overflow |= __builtin_add_overflow(w->tokens, r.count, &w->tokens);
	pend_key(w, r.key, r.len, table_hash(r.key, r.len), r.count);
	return NULL;
}

/* The lines of a chunk, up to the first malformed one.  split: the chunk
 * ends inside a line longer than a buffer, which cannot be a line of a
 * count file: its key is longer than --max-key-bytes (tok_min_capacity). */
static void run_counts(tok_worker *w, const uint8_t *p, const uint8_t *end, int split)
{
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *le = nl ? nl : end;
		w->lines++;
		const char *why = !nl && split ? COUNTS_LONG_LINE : count_line(w, p, le);
		if (why) {
			w->bad_line = w->lines;
			w->why = why;
			return;
		}
		p = nl ? nl + 1 : end;
	}
}

/* ---- Fields ----------------------------------------------------------- */

/* A record is done: count its key, or skip it when it lacks a selected
 * column (however long its key already is). */
static void field_record(tok_worker *w, const tok_fields *f, size_t ncols)
{
	if (ncols < f->need) {
		w->skipped++;
		return;
	}
	int cut = kb_finish(w->s, &w->kb);
	emit(w, w->kb.b, w->kb.len, cut);
}

/* Add a selected column's value (or part of it) to the key. */
static inline void field_add(tok_worker *w, int first_part, int *nsel, const uint8_t *p, size_t n)
{
	if (first_part && (*nsel)++)
		kb_append(w->s, &w->kb, &w->s->delim, 1);
	kb_append(w->s, &w->kb, p, n);
}

/* The record going on at a chunk's start (tok_chunk.cont with CONT_COLS):
 * its key so far, and whether a selected column has begun (*nsel). */
static void field_resume(tok_worker *w, const tok_chunk *c, int *nsel)
{
	if (c->cont & CONT_KEYED) {
		if (c->prefix_len)
			kb_append(w->s, &w->kb, (const uint8_t *)c->prefix, c->prefix_len);
		*nsel = 1;
	}
}

/* TSV records; the first one goes on at column col0 (1 at a record start),
 * from the key so far that c carries.  A last record that the next chunk
 * goes on with (c->cont_out) is left to it, counted as skipped. */
static void run_tsv(tok_worker *w, const tok_fields *f, const tok_chunk *c, const uint8_t *p,
	const uint8_t *end, size_t col0)
{
	const uint8_t d = w->s->delim;
	int resume = (c->cont & CONT_COLS) != 0;
	/* A record resumed ends even in an empty chunk (the input's end). */
	while (p < end || resume) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *le = nl ? nl : end;
		size_t col = col0 - 1;
		int nsel = 0, part = 1;
		kb_reset(&w->kb);
		if (resume) {
			/* Going on inside column col0, begun if it is selected. */
			field_resume(w, c, &nsel);
			part = 0;
			resume = 0;
		}
		col0 = 1;
		const uint8_t *q = p;
		for (;;) {
			const uint8_t *e = memchr(q, d, (size_t)(le - q));
			const uint8_t *fe = e ? e : le;
			col++;
			if (fields_selected(f, col))
				field_add(w, part, &nsel, q, (size_t)(fe - q));
			part = 1;
			if (!e || (col >= f->maxcol && !f->open_from && col >= f->need))
				break;
			q = e + 1;
		}
		if (!nl && (c->cont_out & CONT_COLS)) {
			w->skipped++;
			break;
		}
		field_record(w, f, col);
		p = nl ? nl + 1 : end;
	}
}

/* One CSV step's class. */
static inline int csv_special(uint8_t c, uint8_t d)
{
	return c == '"' || c == d || c == '\n' || c == '\r';
}

/*
 * CSV records (RFC 4180, read the way Python's csv module reads them):
 * - a field starting with '"' is quoted: delimiters and newlines inside are
 *   data, '""' is one '"', the closing '"' ends the quoting;
 * - a '"' inside an unquoted field is a literal character;
 * - characters after a closing quote (other than a delimiter or the record's
 *   end) are appended literally: "ab"c is abc;
 * - a record ends at '\n' outside quotes; a '\r' right before it, or at the
 *   very end of the input, is dropped; any other '\r' is data;
 * - an empty line is no record; a quote left open runs to the end of the
 *   input and the record is still counted.
 * st is the state the chunk starts in (CSV_START at a record boundary) and
 * skip says whether the first record is the rest of a forcibly split one;
 * col0 is the column the first record goes on at (1 at a record start),
 * from the key so far that ch carries.  A last record that the next chunk
 * goes on with (ch->cont_out) is left to it, counted as skipped.
 */
static void run_csv(tok_worker *w, const tok_fields *f, const tok_chunk *ch, const uint8_t *p,
	const uint8_t *end, int st, int skip, size_t col0)
{
	const uint8_t d = w->s->delim;
	int resume = (ch->cont & CONT_COLS) != 0;
	while (p < end || resume) {
		size_t col = col0;
		int nsel = 0, content = st != CSV_START || skip || resume, first = 1;
		col0 = 1;
		int sel = !skip && fields_selected(f, col);
		kb_reset(&w->kb);
		if (resume) {
			/* Going on inside column col, begun if it is selected. */
			field_resume(w, ch, &nsel);
			first = !sel;
			resume = 0;
		}
		for (;;) {
			if (p == end) {
				if (ch->cont_out & CONT_COLS) {
					w->skipped++;
					return;
				}
				goto record_end;
			}
			uint8_t c = *p;
			switch (st) {
			case CSV_START:
				if (c == '"') {
					st = CSV_QUOTED;
					content = 1;
					if (sel && first) {
						field_add(w, 1, &nsel, p, 0);
						first = 0;
					}
					p++;
					continue;
				}
				st = CSV_UNQ;
				/* fall through */
			case CSV_UNQ:
			case CSV_QSEEN:
				if (c == d) {
					if (sel && first)
						field_add(w, 1, &nsel, p, 0);
					content = 1;
					col++;
					sel = !skip && fields_selected(f, col);
					first = 1;
					st = CSV_START;
					p++;
					continue;
				}
				if (c == '\n') {
					p++;
					goto record_end;
				}
				/* A '\r' that ends the chunk is data when the
				 * record goes on in the next one. */
				if (c == '\r' && (p + 1 == end ? !(ch->cont_out & CONT_COLS) : p[1] == '\n')) {
					p += p + 1 == end ? 1 : 2;
					goto record_end;
				}
				if (st == CSV_QSEEN && c == '"') {
					/* "" inside quotes: one quote, back inside. */
					if (sel) {
						field_add(w, first, &nsel, p, 1);
						first = 0;
					}
					st = CSV_QUOTED;
					p++;
					continue;
				}
				st = CSV_UNQ;
				content = 1;
				{
					const uint8_t *q = p + 1;
					while (q < end && !csv_special(*q, d))
						q++;
					if (sel) {
						field_add(w, first, &nsel, p, (size_t)(q - p));
						first = 0;
					}
					p = q;
				}
				continue;
			case CSV_QUOTED: {
				const uint8_t *q = memchr(p, '"', (size_t)(end - p));
				const uint8_t *e = q ? q : end;
				if (sel && (e > p || first)) {
					field_add(w, first, &nsel, p, (size_t)(e - p));
					first = 0;
				}
				p = q ? q + 1 : end;
				if (q)
					st = CSV_QSEEN;
				continue;
			}
			}
		}
record_end:
		st = CSV_START;
		if (skip) {
			skip = 0;
			continue;
		}
		if (!content)
			continue;    /* an empty line */
		if (sel && first)
			field_add(w, 1, &nsel, p, 0);
		field_record(w, f, col);
	}
}

/* ---- Counting a chunk -------------------------------------------------- */

static tok_edge *edge_make(tok_worker *w)
{
	unsigned n = w->n;
	size_t nlast = w->inwin < n - 1 ? w->inwin : n - 1;
	size_t lastbytes = 0;
	for (size_t i = w->inwin - nlast; i < w->inwin; i++)
		lastbytes += w->ring[(w->head + i) % n].len;
	size_t nl = w->nfirst + nlast, bytes, data, tmp;
	if (mem_mul(nl, sizeof(size_t) + 1, &tmp) || mem_add(sizeof(tok_edge), tmp, &bytes)
			|| mem_add(w->firsts.len, lastbytes, &data) || mem_add(bytes, data, &bytes))
		return NULL;
	tok_edge *e = mem_alloc(MEM_OTHER, bytes);
	if (!e)
		return NULL;
	e->bytes = bytes;
	e->beyond = w->beyond;
	e->count = w->count;
	e->nfirst = w->nfirst;
	e->nlast = nlast;
	e->lens = (size_t *)(e + 1);
	e->cuts = (uint8_t *)(e->lens + nl);
	e->data = e->cuts + nl;
	memcpy(e->lens, w->first_lens, w->nfirst * sizeof(size_t));
	memcpy(e->cuts, w->first_cuts, w->nfirst);
	if (w->firsts.len)
		memcpy(e->data, w->firsts.p, w->firsts.len);
	uint8_t *o = e->data + w->firsts.len;
	for (size_t i = 0; i < nlast; i++) {
		const wbuf *b = &w->ring[(w->head + w->inwin - nlast + i) % n];
		e->lens[w->nfirst + i] = b->len;
		e->cuts[w->nfirst + i] = (uint8_t)b->cut;
		if (b->len)
			memcpy(o, b->p, b->len);
		o += b->len;
	}
	return e;
}

static tok_edge *edge_counts(tok_worker *w)
{
	tok_edge *e = mem_calloc(MEM_OTHER, 1, sizeof *e);
	if (!e)
		return NULL;
	e->bytes = sizeof *e;
	e->lines = w->lines;
	e->sum = w->tokens;
	e->overflow = w->overflow;
	e->bad_line = w->bad_line;
	e->why = w->why;
	return e;
}

void tok_edge_lines(const tok_edge *e, tok_lines *out)
{
	*out = (tok_lines){ e->lines, e->sum, e->overflow, e->bad_line, e->why };
}

void tok_edge_free(tok_edge *e)
{
	if (e)
		mem_free(MEM_OTHER, e, e->bytes);
}

int tok_run(tok_worker *w, const tok_chunk *c, tok_edge **edge)
{
	const tok_shared *s = w->s;
	const uint8_t *p = (const uint8_t *)c->data, *end = p + c->len;
	if (edge)
		*edge = NULL;
	w->tokens = w->cut = w->skipped = w->ill = 0;
	w->failed = 0;
	w->head = w->inwin = w->nfirst = 0;
	w->count = 0;
	w->firsts.len = 0;
	w->lines = w->bad_line = 0;
	w->overflow = 0;
	w->why = NULL;
	w->beyond = c->beyond && w->n > 1;

	const tok_fields *f = c->fields ? c->fields : s->has_names ? NULL : &s->numeric;
	size_t col0 = 1;
	if (s->mode == TALLY_MODE_FIELDS && (c->cont & CONT_COLS)) {
		col0 = c->cont >> CONT_COL_SHIFT;
		w->skipped--;  /* the previous chunk counted this record as skipped */
	}
	if (s->mode == TALLY_MODE_FIELDS && s->csv) {
		int st = (int)(c->cont >> CONT_CSV_SHIFT) & 3;
		if (f)
			run_csv(w, f, c, p, end, st, (c->cont & CONT_SKIP) != 0, col0);
	} else {
		if (c->cont & CONT_SKIP) {
			/* The rest of a key the previous chunk counted. */
			if (s->mode == TALLY_MODE_WORDS && s->split == TALLY_SPLIT_UNICODE) {
				p = uni_skip(s, p, end);
			} else if (s->mode == TALLY_MODE_WORDS) {
				while (p < end && !s->space[*p])
					p++;
			} else {
				const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
				p = nl ? nl + 1 : end;
			}
		}
		if (s->mode == TALLY_MODE_WORDS) {
			if (s->split == TALLY_SPLIT_UNICODE)
				run_unicode(w, p, end);
			else
				run_space(w, p, end);
		} else if (s->mode == TALLY_MODE_LINES) {
			run_lines(w, p, end);
		} else if (s->mode == TALLY_MODE_COUNTS) {
			run_counts(w, p, end, c->cont_out != 0);
		} else if (f) {
			run_tsv(w, f, c, p, end, col0);
		}
	}

	pend_flush(w);
	if (s->mode == TALLY_MODE_COUNTS && edge && !w->failed) {
		*edge = edge_counts(w);
		if (!*edge) {
			w->failed = 1;
			errno = ENOMEM;
		}
	} else if (w->n > 1 && edge && !w->failed) {
		*edge = edge_make(w);
		if (!*edge) {
			w->failed = 1;
			errno = ENOMEM;
		}
	}
	if (w->beyond)   /* the next part's: it counts them */
		w->cut = w->ill = 0;
	atomic_fetch_add_explicit(&w->ctr.tokens, w->tokens, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->ctr.bytes, w->beyond ? 0 : c->len, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->ctr.illformed_bytes, w->ill, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->ctr.cut_keys, w->cut, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->ctr.skipped_records, w->skipped, memory_order_relaxed);
	if (w->failed) {
		if (!errno)
			errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* ---- Stitching n-grams ------------------------------------------------- */

int tok_stitch(tok_worker *w, const tok_edge *e)
{
	unsigned n = w->n;
	if (n <= 1 || !e)
		return 0;
	w->tokens = w->cut = 0;
	w->failed = 0;
	size_t ns = w->ncarry + e->nfirst;
	const uint8_t **words = w->wp;
	size_t *lens = w->wl;
	const uint8_t *q = w->carry.p;
	uint8_t *cuts = w->wc;
	for (size_t i = 0; i < w->ncarry; i++) {
		words[i] = q;
		lens[i] = w->carry_lens[i];
		cuts[i] = w->carry_cuts[i];
		q += lens[i];
	}
	q = e->data;
	for (size_t i = 0; i < e->nfirst; i++) {
		words[w->ncarry + i] = q;
		lens[w->ncarry + i] = e->lens[i];
		cuts[w->ncarry + i] = e->cuts[i];
		q += e->lens[i];
	}
	/* Past a part's end, only the n-grams of the part's words are its. */
	size_t nreal = e->beyond ? w->nreal : w->ncarry;
	for (size_t i = 0; i < nreal && i + n <= ns; i++)
		count_gram(w, words + i, lens + i, cuts + i);
	pend_flush(w);

	/* The new carry: the last n-1 words of carry followed by e's last words. */
	const uint8_t **lw = w->wp2;
	size_t *ll = w->wl2, nl = 0;
	uint8_t *lc = w->wc2;
	for (size_t i = 0; i < w->ncarry; i++) {
		lw[nl] = words[i];
		lc[nl] = cuts[i];
		ll[nl++] = lens[i];
	}
	q = e->data;
	for (size_t i = 0; i < e->nfirst; i++)
		q += e->lens[i];
	for (size_t i = 0; i < e->nlast; i++) {
		lw[nl] = q;
		lc[nl] = e->cuts[e->nfirst + i];
		ll[nl++] = e->lens[e->nfirst + i];
		q += e->lens[e->nfirst + i];
	}
	size_t from = nl > n - 1 ? nl - (n - 1) : 0, bytes = 0;
	for (size_t i = from; i < nl; i++)
		bytes += ll[i];
	wbuf nb = { 0 };
	if (wbuf_reserve(&nb, bytes ? bytes : 1)) {
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = from; i < nl; i++) {
		memcpy(nb.p + nb.len, lw[i], ll[i]);
		nb.len += ll[i];
		w->carry_lens[i - from] = ll[i];
		w->carry_cuts[i - from] = lc[i];
	}
	w->ncarry = nl - from;
	w->nreal = e->beyond ? (nreal > from ? nreal - from : 0) : w->ncarry;
	wbuf_free(&w->carry);
	w->carry = nb;

	atomic_fetch_add_explicit(&w->ctr.tokens, w->tokens, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->ctr.cut_keys, w->cut, memory_order_relaxed);
	if (w->failed) {
		if (!errno)
			errno = ENOMEM;
		return -1;
	}
	return 0;
}

size_t tok_stitch_waiting(const tok_worker *w)
{
	return w->nreal;
}

void tok_stitch_reset(tok_worker *w)
{
	w->nreal = 0;
	w->ncarry = 0;
	w->carry.len = 0;
}

/* ---- Header ------------------------------------------------------------ */

size_t tok_header_skip(const tok_shared *s, const char *buf, size_t len)
{
	if (s->mode != TALLY_MODE_FIELDS || !s->header || !s->csv)
		return 0;
	size_t i = 0;
	while (i < len) {
		if (buf[i] == '\n')
			i++;
		else if (buf[i] == '\r' && (i + 1 == len || buf[i + 1] == '\n'))
			i += i + 1 == len ? 1 : 2;
		else
			break;
	}
	return i;
}

/* Parse the first record's column names into a selection. */
tok_fields *tok_fields_for_input(const tok_shared *s, const char *buf, size_t len,
	size_t *consumed, char *err, size_t errlen)
{
	*consumed = 0;
	if (s->mode != TALLY_MODE_FIELDS)
		return NULL;
	if (!s->header || (len == 0 && !s->has_names))
		return (tok_fields *)&s->numeric;

	/* Find the header's end and its column values. */
	const uint8_t *p = (const uint8_t *)buf, *end = p + len;
	size_t cap = 8, ncol = 0;
	size_t *off = mem_alloc(MEM_OTHER, cap * 2 * sizeof(size_t));  /* pairs: start in names, len */
	wbuf names = { 0 };
	size_t *cols = NULL;
	tok_fields *f = NULL;
	if (!off || wbuf_reserve(&names, len + 1))
		goto oom;
	/* A UTF-8 byte order mark before the header, as spreadsheets write
	 * it, is no part of the first column's name. */
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	int st = CSV_START, done = 0;
	size_t cur = 0;
	while (!done) {
		int endfield = 0;
		if (p == end) {
			endfield = done = 1;
		} else if (!s->csv) {
			if (*p == '\n')
				endfield = done = 1;
			else if (*p == s->delim)
				endfield = 1;
			else
				names.p[names.len++] = *p;
			p++;
		} else {
			uint8_t c = *p;
			if (st == CSV_QUOTED) {
				if (c == '"')
					st = CSV_QSEEN;
				else
					names.p[names.len++] = c;
				p++;
			} else if (c == '"' && st == CSV_START) {
				st = CSV_QUOTED;
				p++;
			} else if (c == '"' && st == CSV_QSEEN) {
				names.p[names.len++] = c;
				st = CSV_QUOTED;
				p++;
			} else if (c == s->delim) {
				endfield = 1;
				st = CSV_START;
				p++;
			} else if (c == '\n') {
				endfield = done = 1;
				p++;
			} else if (c == '\r' && (p + 1 == end || p[1] == '\n')) {
				endfield = done = 1;
				p += p + 1 == end ? 1 : 2;
			} else {
				names.p[names.len++] = c;
				st = CSV_UNQ;
				p++;
			}
		}
		if (endfield) {
			if (ncol == cap) {
				void *no = mem_realloc(MEM_OTHER, off, cap * 2 * sizeof(size_t), cap * 4 * sizeof(size_t));
				if (!no)
					goto oom;
				off = no;
				cap *= 2;
			}
			off[2 * ncol] = cur;
			off[2 * ncol + 1] = names.len - cur;
			ncol++;
			cur = names.len;
		}
	}
	*consumed = (size_t)(p - (const uint8_t *)buf);
	/* A TSV header written with CRLF: match the last name without '\r'. */
	if (!s->csv && ncol && off[2 * ncol - 1] && names.p[names.len - 1] == '\r')
		off[2 * ncol - 1]--;

	cols = mem_calloc(MEM_OTHER, s->nitems ? s->nitems : 1, sizeof(size_t));
	if (!cols)
		goto oom;
	for (size_t i = 0; i < s->nitems; i++) {
		const char *nm = s->items[i].name;
		if (!nm)
			continue;
		size_t nlen = strlen(nm);
		for (size_t j = 0; j < ncol && !cols[i]; j++)
			if (off[2 * j + 1] == nlen && memcmp(names.p + off[2 * j], nm, nlen) == 0)
				cols[i] = j + 1;
		if (!cols[i]) {
			snprintf(err, errlen, "no column named '%s'", nm);
			goto out;
		}
	}
	if (!s->has_names) {
		f = (tok_fields *)&s->numeric;
		goto out;
	}
	f = mem_calloc(MEM_OTHER, 1, sizeof *f);
	if (!f || fields_build(s, f, cols)) {
		if (f)
			mem_free(MEM_OTHER, f, sizeof *f);
		f = NULL;
		goto oom;
	}
	goto out;
oom:
	snprintf(err, errlen, "%s", strerror(ENOMEM));
out:
	if (!f)
		*consumed = 0;
	if (off)
		mem_free(MEM_OTHER, off, cap * 2 * sizeof(size_t));
	if (cols)
		mem_free(MEM_OTHER, cols, (s->nitems ? s->nitems : 1) * sizeof(size_t));
	wbuf_free(&names);
	return f;
}

void tok_fields_release(const tok_shared *s, tok_fields *f)
{
	(void)s;
	if (!f || f->shared)
		return;
	fields_free(f);
	mem_free(MEM_OTHER, f, sizeof *f);
}

/* ---- Cutting ----------------------------------------------------------- */

/* Unicode words with no ASCII separator in buf: scan for any boundary (a
 * non-word code point or ill-formed byte), else split after the last word
 * character. */
static size_t cut_unicode_scan(const tok_shared *s, const uint8_t *b, size_t len, tok_cont cont_in,
	int full, tok_cont *cont)
{
	/* Bytes past lim may belong to a sequence that the next read completes. */
	size_t lim = utf8_tail(b, len);
	const uint8_t *p = b, *end = b + lim;
	size_t best = 0, last_word_end = 0;
	int inword = cont_in != 0;
	while (p < end) {
		size_t a = uni_apos(p, end);
		if (inword && a && p + a == end)
			break;  /* joins or not depending on what follows */
		if (inword && a && uni_word_at(s, p + a, end)) {
			p += a;
			continue;
		}
		uint32_t cp;
		size_t n = *p < 0x80 ? 1 : utf8_dec(p, end, &cp);
		int word = n && uni_word_at(s, p, end);
		p += n ? n : 1;
		if (word) {
			inword = 1;
			last_word_end = (size_t)(p - b);
		} else {
			inword = 0;
			best = (size_t)(p - b);
		}
	}
	if (best) {
		/* Ending at a non-word code point, the next chunk starts fresh. */
		return best;
	}
	if (!full)
		return 0;
	*cont = CONT_SKIP;
	return last_word_end ? last_word_end : utf8_tail(b, len);
}

/* Content bytes of a record's key after which the key is surely cut: the
 * key builder keeps max_key + 4 bytes, and lowercasing can shrink a code
 * point from 3 bytes to 1. */
static size_t fields_cut_point(const tok_shared *s)
{
	return s->casemode == TALLY_CASE_LOWER ? 3 * (s->max_key + 2) : s->max_key + 8;
}

size_t tok_prefix_cap(const tok_shared *s)
{
	return s->mode == TALLY_MODE_FIELDS ? fields_cut_point(s) + 1 : 0;
}

/* Fields, forced split of a record that starts at b[0] (or goes on there,
 * cont_in with CONT_COLS, its key so far in pre->in with CONT_KEYED): the
 * first point where the record is decided (every needed column has ended),
 * so that the first chunk counts what a single pass counts and the next
 * skips the rest.  Failing that, the last point whose column, state and key
 * so far can be carried (CONT_COLS, the key to pre->out: no more than the
 * first limit + 1 bytes, past which the key is surely cut).  Returns 0 when
 * there is neither. */
static size_t fields_decide(const tok_shared *s, const tok_fields *f, const uint8_t *b,
	size_t len, tok_cont cont_in, input_prefix *pre, tok_cont *cont)
{
	if (cont_in & CONT_SKIP)
		return 0;
	const size_t limit = fields_cut_point(s);
	const uint8_t d = s->delim;
	size_t col = cont_in ? cont_in >> CONT_COL_SHIFT : 1;
	int st = cont_in ? (int)(cont_in >> CONT_CSV_SHIFT) & 3 : CSV_START;
	int sel = fields_selected(f, col);
	/* keyed: a selected column has begun.  The key so far is what the
	 * worker appends: each selected column's data, after a delimiter when
	 * one came before; its first limit + 1 bytes are kept, when pre->out
	 * has room for them. */
	int keyed = sel || (cont_in & CONT_KEYED);
	uint8_t *key = (uint8_t *)pre->out;
	const size_t keep = limit + 1;
	int room = pre->out_cap >= keep;
	size_t content = cont_in & CONT_KEYED ? pre->in_len : 0;
	if (content > keep)
		return 0;
	if (room && content)
		memcpy(key, pre->in, content);
#define KEY_PUT(ch) do { \
		if (content < keep) { \
			if (room) \
				key[content] = (ch); \
			content++; \
		} \
	} while (0)
	const size_t tail = utf8_tail(b, len);
	size_t good = 0, good_len = 0;   /* last point that can be carried */
	tok_cont good_cont = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = b[i];
		int data = 0, enddelim = 0;
		if (!s->csv) {
			if (c == d)
				enddelim = 1;
			else
				data = 1;
		} else if (st == CSV_QUOTED) {
			if (c == '"')
				st = CSV_QSEEN;
			else
				data = 1;
		} else if (st == CSV_START && c == '"') {
			st = CSV_QUOTED;
		} else if (st == CSV_QSEEN && c == '"') {
			st = CSV_QUOTED;
			data = 1;
		} else if (c == d) {
			enddelim = 1;
			st = CSV_START;
		} else if (c == '\r' && (i + 1 == len || b[i + 1] == '\n')) {
			/* the record's end, or data: not known yet */
		} else {
			st = CSV_UNQ;
			data = 1;
		}
		if (enddelim) {
			if (!f->open_from && col >= f->maxcol && col >= f->need) {
				*cont = CONT_SKIP | ((tok_cont)CSV_START << CONT_CSV_SHIFT);
				return i + 1;
			}
			col++;
			sel = fields_selected(f, col);
			if (sel) {
				if (keyed)
					KEY_PUT(d);
				keyed = 1;
			}
		}
		if (data && sel)
			KEY_PUT(c);
		/* Not after a quote inside quotes (it may open ""), nor after a
		 * last '\r' outside quotes (it may end the record with '\n';
		 * one with a byte after it is data, and the worker takes it so
		 * at its chunk's end when the record goes on), nor inside a
		 * UTF-8 sequence of a selected column while the key is still
		 * carried whole (case mapping takes it whole). */
		size_t at = i + 1;
		int mid = sel && content < keep && (at < len ? (b[at] & 0xC0) == 0x80 : tail < len);
		if (col < CONT_COL_MAX && st != CSV_QSEEN && !mid && (!keyed || room)
				&& !(s->csv && c == '\r' && st != CSV_QUOTED && at == len)) {
			good = at;
			good_len = keyed ? content : 0;
			good_cont = CONT_COLS | (keyed ? CONT_KEYED : 0)
				| ((tok_cont)st << CONT_CSV_SHIFT) | ((tok_cont)col << CONT_COL_SHIFT);
		}
	}
#undef KEY_PUT
	if (good) {
		*cont = good_cont;
		pre->out_len = good_len;
	}
	return good;
}

/* fields_decide with the input's selection.  Named columns are not known
 * while the first buffer is cut, and need not be: a forced split there
 * means that the header does not end in it, and the input fails. */
static size_t fields_split(const tok_shared *s, const tok_fields *f, const uint8_t *b,
	size_t len, tok_cont cont_in, input_prefix *pre, tok_cont *cont)
{
	if (!f && s->has_names)
		return 0;
	return fields_decide(s, f ? f : &s->numeric, b, len, cont_in, pre, cont);
}

/* CSV: scan from the chunk's start for the last record end outside quotes;
 * when forced, a split point whose state can be carried. */
static size_t cut_csv(const tok_shared *s, const tok_fields *f, const uint8_t *b, size_t len,
	int eof, int full, tok_cont cont_in, tok_cont *cont, input_prefix *pre)
{
	if (eof)
		return len;
	int st = cont_in ? (int)(cont_in >> CONT_CSV_SHIFT) & 3 : CSV_START;
	size_t best = 0;
	/* States at the last three positions, to step back from a bad split. */
	int hist[4] = { st, st, st, st };
	const uint8_t d = s->delim;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = b[i];
		switch (st) {
		case CSV_QUOTED:
			if (c == '"')
				st = CSV_QSEEN;
			break;
		case CSV_START:
			if (c == '"') {
				st = CSV_QUOTED;
				break;
			}
			/* fall through */
		default:
			if (st == CSV_QSEEN && c == '"')
				st = CSV_QUOTED;
			else if (c == d)
				st = CSV_START;
			else if (c == '\n') {
				st = CSV_START;
				best = i + 1;
			} else if (c == '\r' && (i + 1 == len || b[i + 1] == '\n')) {
				/* decided by the '\n' (or by the bytes that follow) */
			} else
				st = CSV_UNQ;
			break;
		}
		hist[3] = hist[2];
		hist[2] = hist[1];
		hist[1] = hist[0];
		hist[0] = st;
	}
	if (best)
		return best;
	if (!full)
		return 0;
	size_t q = fields_split(s, f, b, len, cont_in, pre, cont);
	if (q)
		return q;
	/* Forced: not right after a quote inside quotes (it may open "") nor
	 * after a '\r' outside quotes (it may end the record with '\n'). */
	size_t p = len;
	for (int k = 0; k < 3 && p > 1; k++) {
		int sp = hist[k];
		int bad = sp == CSV_QSEEN || (sp != CSV_QUOTED && b[p - 1] == '\r');
		if (!bad)
			break;
		p--;
	}
	st = hist[len - p];
	if (st == CSV_QSEEN)
		st = CSV_QUOTED;
	*cont = CONT_SKIP | ((tok_cont)st << CONT_CSV_SHIFT);
	return p;
}

/* Words: no word goes on past byte c, so a record may begin after it:
 * ASCII whitespace, and with the unicode split any ASCII byte that is
 * neither a word character nor an apostrophe.  tok_cut cuts chunks there,
 * tok_boundary parts of a file. */
static inline int word_break(const tok_shared *s, uint8_t c)
{
	return s->split == TALLY_SPLIT_UNICODE ? c < 0x80 && !(s->acls[c] & (AC_WORD | AC_APOS))
		: s->space[c];
}

size_t tok_boundary(const tok_shared *s, const char *buf, size_t len)
{
	const uint8_t *b = (const uint8_t *)buf;
	if (s->mode != TALLY_MODE_WORDS) {
		const uint8_t *nl = memchr(b, '\n', len);
		return nl ? (size_t)(nl - b) : len;
	}
	for (size_t i = 0; i < len; i++)
		if (word_break(s, b[i]))
			return i;
	return len;
}

size_t tok_cut(const tok_shared *s, const tok_fields *f, const char *buf, size_t len, int eof,
	int full, tok_cont cont_in, tok_cont *cont, input_prefix *pre)
{
	const uint8_t *b = (const uint8_t *)buf;
	*cont = 0;
	pre->out_len = 0;
	if (len == 0)
		return 0;
	if (s->mode == TALLY_MODE_FIELDS && s->csv)
		return cut_csv(s, f, b, len, eof, full, cont_in, cont, pre);
	if (eof)
		return len;
	if (s->mode == TALLY_MODE_WORDS) {
		for (size_t i = len; i-- > 0;)
			if (word_break(s, b[i]))
				return i + 1;
		if (s->split == TALLY_SPLIT_UNICODE)
			return full ? cut_unicode_scan(s, b, len, cont_in, full, cont) : 0;
	} else {
		const uint8_t *nl = memrchr(b, '\n', len);
		if (nl)
			return (size_t)(nl - b) + 1;
	}
	if (!full)
		return 0;
	if (s->mode == TALLY_MODE_FIELDS) {
		size_t q = fields_split(s, f, b, len, cont_in, pre, cont);
		if (q)
			return q;
	}
	*cont = CONT_SKIP;
	return utf8_tail(b, len);
}
