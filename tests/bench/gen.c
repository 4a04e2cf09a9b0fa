/*
 * gen.c - deterministic benchmark corpora for tally.
 *
 *   gen KIND [-s SIZE] [--seed N] [--vocab N] [--zipf S] [--cyrillic] [--fixed]
 *
 * KIND is one of
 *   words    Zipf-distributed pseudo-words (ASCII, or Cyrillic with
 *            --cyrillic), mixed case, punctuation, line and paragraph breaks
 *   lines    log-like lines: mostly distinct (timestamp, ids, paths) with a
 *            Zipf-distributed head of repeated lines
 *   tsv      5 columns: id (high cardinality), word (Zipf), category (low
 *            cardinality), amount, free text
 *   csv      the same records as RFC 4180 CSV: quoted fields, embedded
 *            commas, doubled quotes and some embedded newlines
 *   uniform  uniformly random words from a huge vocabulary (--vocab, default
 *            16M), for high-cardinality and n-gram cases
 *
 * words adds a possessive to 1% of its words, so the possessives of rare
 * words keep appearing as SIZE grows.  With --fixed only the 2,000 most
 * frequent words take one: every word and possessive is then frequent enough
 * to appear in each 256 MB, and every larger SIZE holds the same distinct
 * words (a fixed vocabulary, as the scaling case needs).
 *
 * The output is streamed to stdout and stops at the end of the first line
 * (record) that reaches SIZE bytes, so it is SIZE plus at most one line.  The
 * same KIND, seed and options always give the same bytes, and a smaller SIZE
 * gives a prefix of a larger one.  SIZE takes K, M, G suffixes (powers of
 * 1024).  Everything random comes from xoshiro256** seeded by splitmix64.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ------------------------------------------------- */

typedef struct rng {
	uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, n) by multiply-shift (bias below 2^-32, irrelevant here). */
static inline uint32_t rng_below(rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- Zipf sampling by Walker's alias method --------------------------- */

typedef struct alias_slot {
	uint32_t prob;   /* threshold scaled to 2^32 */
	uint32_t other;
} alias_slot;

typedef struct alias {
	uint32_t n;
	alias_slot *slot; /* one cache line visit per draw */
} alias;

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "gen: out of memory\n");
		exit(1);
	}
	return p;
}

/* Weights 1/(rank+1)^s for ranks 0..n-1 (Vose's construction). */
static void alias_zipf(alias *a, uint32_t n, double s)
{
	double *p = xmalloc(n * sizeof *p), sum = 0;
	uint32_t *small = xmalloc(n * sizeof *small), *large = xmalloc(n * sizeof *large);
	uint32_t ns = 0, nl = 0;

	a->n = n;
	a->slot = xmalloc(n * sizeof *a->slot);
	for (uint32_t i = 0; i < n; i++)
		sum += p[i] = pow((double)i + 1, -s);
	for (uint32_t i = 0; i < n; i++) {
		p[i] = p[i] / sum * n;
		if (p[i] < 1)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns && nl) {
		uint32_t l = small[--ns], g = large[--nl];
		a->slot[l].prob = (uint32_t)(p[l] * 4294967295.0);
		a->slot[l].other = g;
		p[g] = (p[g] + p[l]) - 1;
		if (p[g] < 1)
			small[ns++] = g;
		else
			large[nl++] = g;
	}
	while (nl) {
		uint32_t g = large[--nl];
		a->slot[g].prob = UINT32_MAX;
		a->slot[g].other = g;
	}
	while (ns) {
		uint32_t l = small[--ns];
		a->slot[l].prob = UINT32_MAX;
		a->slot[l].other = l;
	}
	free(p);
	free(small);
	free(large);
}

static inline uint32_t alias_draw(const alias *a, rng *r)
{
	uint64_t x = rng_next(r);
	uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)a->n) >> 32);
	return (uint32_t)x < a->slot[i].prob ? i : a->slot[i].other;
}

/* ---- vocabulary ------------------------------------------------------- */

/* Letter frequencies (per mille, roughly English and Russian text). */
static const unsigned latin_freq[26] = {
	82, 15, 28, 43, 127, 22, 20, 61, 70, 2, 8, 40, 24,
	67, 75, 19, 1, 60, 63, 91, 28, 10, 24, 2, 20, 1
};
/* а б в г д е ж з и й к л м н о п р с т у ф х ц ч ш щ ъ ы ь э ю я */
static const unsigned cyr_freq[32] = {
	80, 16, 45, 17, 30, 85, 9, 16, 73, 12, 35, 44, 32, 67, 110, 28,
	47, 55, 63, 26, 3, 10, 5, 14, 7, 4, 1, 19, 17, 3, 6, 20
};

typedef struct vocab_word {
	uint64_t off;       /* 3 forms in a row: lower, Capitalized, UPPER */
	uint32_t len;       /* bytes of each form */
} vocab_word;

typedef struct vocab {
	uint32_t n;
	char *arena;
	vocab_word *w;
} vocab;

typedef struct letters {
	int cyrillic;
	unsigned n;
	uint8_t pick[1024]; /* letter index by uniform draw of 10 bits */
} letters;

static void letters_init(letters *l, int cyrillic)
{
	const unsigned *f = cyrillic ? cyr_freq : latin_freq;
	unsigned n = cyrillic ? 32 : 26, total = 0, k = 0;

	l->cyrillic = cyrillic;
	l->n = n;
	for (unsigned i = 0; i < n; i++)
		total += f[i];
	for (unsigned i = 0; i < n; i++) {
		unsigned upto = 0, acc = 0;
		for (unsigned j = 0; j <= i; j++)
			acc += f[j];
		upto = (unsigned)((uint64_t)acc * 1024 / total);
		while (k < upto)
			l->pick[k++] = (uint8_t)i;
	}
	while (k < 1024)
		l->pick[k++] = (uint8_t)(n - 1);
}

/* Encode letter index i (lower or upper case) at p; returns bytes written. */
static size_t letter_put(const letters *l, unsigned i, int upper, char *p)
{
	if (!l->cyrillic) {
		p[0] = (char)((upper ? 'A' : 'a') + i);
		return 1;
	}
	unsigned cp = (upper ? 0x410u : 0x430u) + i;
	p[0] = (char)(0xC0 | (cp >> 6));
	p[1] = (char)(0x80 | (cp & 0x3F));
	return 2;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h | 1; /* 0 marks an empty slot */
}

/*
 * n distinct pseudo-words; frequent ranks get short words.  About 3% are
 * proper nouns, always capitalized.  Distinctness is checked by a set of
 * 64-bit hashes: a (never observed) false collision only rejects a word.
 */
static void vocab_build(vocab *v, uint32_t n, int cyrillic, rng *r)
{
	letters L;
	size_t cap = 1;
	uint64_t *set;
	uint8_t idx[32];
	size_t at = 0;

	letters_init(&L, cyrillic);
	while (cap < (size_t)n * 2)
		cap <<= 1;
	set = calloc(cap, sizeof *set);
	if (!set) {
		fprintf(stderr, "gen: out of memory\n");
		exit(1);
	}
	v->n = n;
	v->w = xmalloc((size_t)n * sizeof *v->w);
	v->arena = xmalloc((size_t)n * 3 * 32 * (cyrillic ? 2 : 1));
	for (uint32_t w = 0; w < n; w++) {
		unsigned base = 2 + (unsigned)(log2((double)w + 2) / 3);
		unsigned len = base + rng_below(r, 5), tries = 0;
		int proper = rng_below(r, 100) < 3 && w > 20;
		uint64_t h;
		for (;;) {
			for (unsigned i = 0; i < len; i++)
				idx[i] = L.pick[rng_below(r, 1024)];
			h = fnv1a(idx, len);
			size_t s = h & (cap - 1);
			while (set[s] && set[s] != h)
				s = (s + 1) & (cap - 1);
			if (!set[s]) {
				set[s] = h;
				break;
			}
			if (++tries % 8 == 0 && len < 30)
				len++;
		}
		v->w[w].off = at;
		for (int form = 0; form < 3; form++) {
			char *p = v->arena + at;
			size_t b = 0;
			for (unsigned i = 0; i < len; i++) {
				int up = form == 2 || (i == 0 && (form == 1 || proper));
				b += letter_put(&L, idx[i], up, p + b);
			}
			v->w[w].len = (uint32_t)b;
			at += b;
		}
	}
	free(set);
}

/* Append form (0 lower, 1 Capitalized, 2 UPPER) of word w. */
#define OUT_WORD(o, v, word, form) \
	out_mem((o), (v)->arena + (v)->w[(word)].off + (size_t)(form) * (v)->w[(word)].len, \
		(v)->w[(word)].len)

/* ---- output buffer ----------------------------------------------------- */

#define OUT_SIZE (1u << 20)
#define OUT_SLACK (1u << 16) /* more than any one line or record */

typedef struct out {
	char buf[OUT_SIZE + OUT_SLACK];
	size_t n;
	uint64_t total;
	uint64_t limit;
} out;

static void out_flush(out *o)
{
	if (o->n && fwrite(o->buf, 1, o->n, stdout) != o->n) {
		if (errno != EPIPE)
			perror("gen: stdout");
		exit(1);
	}
	o->total += o->n;
	o->n = 0;
}

/* Called at each line or record end: flushes, and says whether to stop. */
static inline int out_line_end(out *o)
{
	if (o->n >= OUT_SIZE)
		out_flush(o);
	return o->total + o->n >= o->limit;
}

static inline void out_mem(out *o, const void *p, size_t n)
{
	memcpy(o->buf + o->n, p, n);
	o->n += n;
}

static inline void out_ch(out *o, char c)
{
	o->buf[o->n++] = c;
}

static inline void out_str(out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static void out_uint(out *o, uint64_t x, int width)
{
	char tmp[24];
	int k = 0;
	do {
		tmp[k++] = (char)('0' + x % 10);
		x /= 10;
	} while (x);
	while (k < width)
		tmp[k++] = '0';
	while (k)
		out_ch(o, tmp[--k]);
}

static void out_hex(out *o, uint64_t x, int digits)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = digits - 1; i >= 0; i--)
		out_ch(o, hex[(x >> (4 * i)) & 15]);
}

/* ---- kinds ---------------------------------------------------------------- */

typedef struct opts {
	uint64_t size;
	uint64_t seed;
	uint32_t vocab;
	double zipf;
	int cyrillic;
	uint32_t possessives; /* ranks that may take a possessive */
} opts;

static void gen_words(const opts *op, out *o, rng *r)
{
	vocab v;
	alias a;
	int sentence_start = 1;

	vocab_build(&v, op->vocab, op->cyrillic, r);
	alias_zipf(&a, v.n, op->zipf);
	for (;;) {
		unsigned nw = 6 + rng_below(r, 11);
		for (unsigned i = 0; i < nw; i++) {
			uint64_t d = rng_next(r);
			unsigned roll = (unsigned)(d & 1023);     /* punctuation */
			unsigned roll2 = (unsigned)((d >> 10) & 1023); /* decorations */
			uint32_t w = alias_draw(&a, r);
			int form = sentence_start ? 1 : 0;
			if (roll2 < 2)
				form = 2;
			if (roll2 >= 2 && roll2 < 7)
				out_ch(o, '(');
			else if (roll2 >= 7 && roll2 < 12)
				out_ch(o, '"');
			if (roll2 >= 12 && roll2 < 17) {
				/* a number, as in verse references or prices */
				out_uint(o, (d >> 20) % 200, 0);
				if (roll2 & 1) {
					out_ch(o, ':');
					out_uint(o, (d >> 28) % 60 + 1, 0);
				}
			} else {
				OUT_WORD(o, &v, w, form);
				if (roll2 >= 17 && roll2 < 27 && w < op->possessives)
					out_str(o, op->cyrillic ? "'\xd1\x81" : "'s");
			}
			if (roll2 >= 2 && roll2 < 7)
				out_ch(o, ')');
			else if (roll2 >= 7 && roll2 < 12)
				out_ch(o, '"');
			sentence_start = 0;
			if (roll < 62) {
				out_ch(o, ',');
			} else if (roll < 112) {
				out_ch(o, '.');
				sentence_start = 1;
			} else if (roll < 124) {
				out_ch(o, ';');
			} else if (roll < 130) {
				out_ch(o, ':');
			} else if (roll < 136) {
				out_ch(o, '?');
				sentence_start = 1;
			} else if (roll < 140) {
				out_ch(o, '!');
				sentence_start = 1;
			} else if (roll < 143) {
				out_str(o, op->cyrillic ? " \xe2\x80\x94" : " --");
			}
			if (i + 1 < nw)
				out_ch(o, ' ');
		}
		out_ch(o, '\n');
		if (rng_below(r, 100) < 4) {
			out_ch(o, '\n'); /* paragraph */
			sentence_start = 1;
		}
		if (out_line_end(o))
			break;
	}
}

static void gen_uniform(const opts *op, out *o, rng *r)
{
	for (;;) {
		unsigned nw = 8 + rng_below(r, 9);
		for (unsigned i = 0; i < nw; i++) {
			/* bijective base 26: distinct indices give distinct words */
			uint64_t x = (uint64_t)rng_below(r, op->vocab) + 1;
			char tmp[16];
			int k = 0;
			while (x) {
				x--;
				tmp[k++] = (char)('a' + x % 26);
				x /= 26;
			}
			while (k)
				out_ch(o, tmp[--k]);
			out_ch(o, i + 1 < nw ? ' ' : '\n');
		}
		if (out_line_end(o))
			break;
	}
}

/* A calendar clock for log timestamps, advanced in microseconds. */
typedef struct clock_ {
	unsigned y, mo, d, h, mi, s;
	uint32_t us;
} clock_;

static void clock_advance(clock_ *c, uint32_t us)
{
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	c->us += us;
	while (c->us >= 1000000) {
		c->us -= 1000000;
		if (++c->s < 60)
			continue;
		c->s = 0;
		if (++c->mi < 60)
			continue;
		c->mi = 0;
		if (++c->h < 24)
			continue;
		c->h = 0;
		unsigned md = mdays[c->mo - 1] + (c->mo == 2 && c->y % 4 == 0);
		if (++c->d <= md)
			continue;
		c->d = 1;
		if (++c->mo <= 12)
			continue;
		c->mo = 1;
		c->y++;
	}
}

static void out_clock(out *o, const clock_ *c)
{
	out_uint(o, c->y, 4);
	out_ch(o, '-');
	out_uint(o, c->mo, 2);
	out_ch(o, '-');
	out_uint(o, c->d, 2);
	out_ch(o, 'T');
	out_uint(o, c->h, 2);
	out_ch(o, ':');
	out_uint(o, c->mi, 2);
	out_ch(o, ':');
	out_uint(o, c->s, 2);
	out_ch(o, '.');
	out_uint(o, c->us, 6);
	out_ch(o, 'Z');
}

static const char *const levels[] = { "INFO ", "INFO ", "INFO ", "INFO ", "INFO ",
	"INFO ", "INFO ", "DEBUG", "DEBUG", "WARN ", "WARN ", "ERROR", "INFO ",
	"INFO ", "DEBUG", "TRACE" };
static const char *const methods[] = { "GET", "GET", "GET", "GET", "GET",
	"POST", "POST", "PUT", "DELETE", "GET", "GET", "PATCH", "GET", "POST",
	"GET", "HEAD" };
static const unsigned statuses[] = { 200, 200, 200, 200, 200, 200, 200, 200,
	200, 201, 204, 301, 304, 400, 404, 500 };

static void gen_lines(const opts *op, out *o, rng *r)
{
	vocab v;
	alias words, paths, head;
	clock_ c = { 2026, 3, 1, 0, 0, 0, 0 };
	enum { NPATH = 5000, NHEAD = 20000 };
	uint32_t pw[NPATH][3];
	uint32_t hw[NHEAD][6];

	vocab_build(&v, op->vocab < 20000 ? op->vocab : 20000, 0, r);
	alias_zipf(&words, v.n, op->zipf);
	alias_zipf(&paths, NPATH, 1.0);
	alias_zipf(&head, NHEAD, 1.1);
	for (int i = 0; i < NPATH; i++)
		for (int j = 0; j < 3; j++)
			pw[i][j] = alias_draw(&words, r);
	for (int i = 0; i < NHEAD; i++)
		for (int j = 0; j < 6; j++)
			hw[i][j] = alias_draw(&words, r);
	for (;;) {
		uint64_t d = rng_next(r);
		clock_advance(&c, 1 + (uint32_t)((d >> 40) % 400));
		if ((d & 1023) < 300) {
			/* the repeated head: messages without timestamps */
			uint32_t t = alias_draw(&head, r);
			out_str(o, levels[t % 16]);
			out_str(o, " [");
			OUT_WORD(o, &v, hw[t][0], 0);
			out_str(o, "] ");
			for (int j = 1; j < 6; j++) {
				OUT_WORD(o, &v, hw[t][j], j == 1);
				out_ch(o, j < 5 ? ' ' : ':');
			}
			out_ch(o, ' ');
			out_uint(o, t % 97, 0);
		} else {
			uint32_t p = alias_draw(&paths, r);
			uint64_t e = rng_next(r);
			out_clock(o, &c);
			out_ch(o, ' ');
			out_str(o, levels[(d >> 10) & 15]);
			out_str(o, " [worker-");
			out_uint(o, (d >> 14) % 32, 2);
			out_str(o, "] ");
			out_str(o, methods[(d >> 20) & 15]);
			out_str(o, " /api/v");
			out_uint(o, 1 + p % 3, 0);
			for (int j = 0; j < 3 - (int)(p % 2); j++) {
				out_ch(o, '/');
				OUT_WORD(o, &v, pw[p][j], 0);
			}
			if (p % 3 == 0) {
				out_ch(o, '/');
				out_uint(o, (e >> 40) % 10000000, 0);
			}
			out_ch(o, ' ');
			out_uint(o, statuses[(d >> 24) & 15], 0);
			out_ch(o, ' ');
			out_uint(o, (e >> 20) % 2000, 0);
			out_ch(o, '.');
			out_uint(o, (e >> 16) % 10, 0);
			out_str(o, "ms req=");
			out_hex(o, rng_next(r), 16);
		}
		out_ch(o, '\n');
		if (out_line_end(o))
			break;
	}
}

static const char *const categories[] = { "books", "books", "books", "books",
	"music", "music", "music", "garden", "garden", "toys", "tools", "food",
	"food", "food", "health", "sports" };

/* One record: id, word, category, amount, text.  csv selects the writer. */
static void gen_table(const opts *op, out *o, rng *r, int csv)
{
	vocab v;
	alias a;
	char sep = csv ? ',' : '\t';

	vocab_build(&v, op->vocab, 0, r);
	alias_zipf(&a, v.n, op->zipf);
	for (;;) {
		uint64_t d = rng_next(r);
		unsigned roll = (unsigned)(d & 1023);
		uint32_t w = alias_draw(&a, r);
		uint32_t w2 = alias_draw(&a, r);

		/* 1: id, practically all distinct */
		out_hex(o, rng_next(r), 12);
		out_ch(o, sep);
		/* 2: Zipf word; a few values hold a comma or quotes */
		if (roll < 10) {
			if (csv)
				out_ch(o, '"');
			OUT_WORD(o, &v, w, 1);
			out_str(o, ", ");
			OUT_WORD(o, &v, w2, 0);
			if (csv)
				out_ch(o, '"');
		} else if (roll < 15) {
			if (csv)
				out_str(o, "\"\"\"");
			else
				out_ch(o, '"');
			OUT_WORD(o, &v, w, 0);
			if (csv)
				out_str(o, "\"\"\"");
			else
				out_ch(o, '"');
		} else {
			OUT_WORD(o, &v, w, 0);
		}
		out_ch(o, sep);
		/* 3: low cardinality */
		out_str(o, categories[(d >> 10) & 15]);
		out_ch(o, sep);
		/* 4: amount */
		out_uint(o, (d >> 20) % 100000, 0);
		out_ch(o, sep);
		/* 5: free text; in CSV some of it is quoted with commas, quotes, newlines */
		{
			unsigned nw = 2 + (unsigned)((d >> 40) % 9);
			int quoted = csv && ((d >> 50) & 7) == 0;
			if (quoted)
				out_ch(o, '"');
			for (unsigned i = 0; i < nw; i++) {
				uint32_t t = alias_draw(&a, r);
				unsigned q = (unsigned)((d >> (i * 3)) & 63);
				if (i)
					out_ch(o, ' ');
				if (quoted && q == 1)
					out_str(o, "\"\"");
				OUT_WORD(o, &v, t, 0);
				if (quoted && q == 1)
					out_str(o, "\"\"");
				if (quoted && q == 2)
					out_ch(o, ',');
				if (quoted && q == 3 && i + 1 < nw)
					out_ch(o, '\n');
			}
			if (quoted)
				out_ch(o, '"');
		}
		out_ch(o, '\n');
		if (out_line_end(o))
			break;
	}
}

/* ---- command line ------------------------------------------------------ */

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B')
		end++;
	if (*end || (shift && x > (UINT64_MAX >> shift)))
		return -1;
	*v = (uint64_t)x << shift;
	return 0;
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: gen words|lines|tsv|csv|uniform [-s SIZE] [--seed N] [--vocab N]\n"
		"           [--zipf S] [--cyrillic] [--fixed]\n");
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "vocab", required_argument, NULL, 'v' },
		{ "zipf", required_argument, NULL, 'z' },
		{ "cyrillic", no_argument, NULL, 'c' },
		{ "fixed", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	opts op = { 1u << 20, 1, 0, 1.05, 0, UINT32_MAX };
	const char *kind;
	static out o;
	rng r;
	int c;
	uint64_t x;

	while ((c = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &op.size))
				usage(2);
			break;
		case 'S':
			if (parse_size(optarg, &op.seed))
				usage(2);
			break;
		case 'v':
			if (parse_size(optarg, &x) || x < 1 || x > 1u << 30)
				usage(2);
			op.vocab = (uint32_t)x;
			break;
		case 'z':
			op.zipf = strtod(optarg, NULL);
			if (!(op.zipf > 0.1 && op.zipf < 4))
				usage(2);
			break;
		case 'c':
			op.cyrillic = 1;
			break;
		case 'f':
			op.possessives = 2000;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind + 1 != argc)
		usage(2);
	kind = argv[optind];
	o.limit = op.size;
	/* each kind draws its own stream, except that tsv and csv hold the same records */
	rng_seed(&r, op.seed * 0x100000001b3ULL + (uint64_t)(kind[0] == 'c' ? 't' : kind[0]) * 131
		 + strlen(kind));
	if (!strcmp(kind, "words")) {
		if (!op.vocab)
			op.vocab = 100000;
		gen_words(&op, &o, &r);
	} else if (!strcmp(kind, "uniform")) {
		if (!op.vocab)
			op.vocab = 1u << 24;
		gen_uniform(&op, &o, &r);
	} else if (!strcmp(kind, "lines")) {
		if (!op.vocab)
			op.vocab = 20000;
		gen_lines(&op, &o, &r);
	} else if (!strcmp(kind, "tsv") || !strcmp(kind, "csv")) {
		if (!op.vocab)
			op.vocab = 100000;
		gen_table(&op, &o, &r, kind[0] == 'c');
	} else {
		usage(2);
	}
	out_flush(&o);
	if (fflush(stdout) || ferror(stdout)) {
		perror("gen: stdout");
		return 1;
	}
	return 0;
}
