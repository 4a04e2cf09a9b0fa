/*
 * sorted.c - count files already in key order, merged as the output is
 * read (see sorted.h).
 *
 * tally --sort=key writes its count files in key order, and tally merge
 * --sort=key of such files needs no table: a merge of the files, a line
 * of each at a time, gives the keys in output order with their counts
 * summed.  What it costs is a first reading of each file, to be sure of
 * its order before any output depends on it: a scan with no hashing, no
 * table and no key kept but the last.  Files that are not in order (a
 * count file sorted by count shows it at its second or third line) are
 * counted as any other, their first reading cut short there.
 *
 * Both readings check each line of a file against the one before, which
 * stays where it was read (see line_next): a key is copied only when the
 * place it lies in is about to be reused.
 *
 * The merge is a heap of readers, one per file and one for the engine's
 * own results, by key.  An item given out stays valid until the next
 * call: the readers that gave it are advanced only then.  A file whose
 * keys no longer ascend changed since its first reading.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "iheap.h"
#include "keysort.h"
#include "mem.h"
#include "sorted.h"

/* The most bytes per chunk of the readers, the first reading's and the
 * merge's alike, so that the first reading tells what a reader of the
 * merge will hold (its buffer, at least a line of the longest key, and
 * for zstd its decoder and window). */
#define SORTED_CHUNK ((size_t)256 << 10)

typedef struct sorted_file {
	char     *path;
	input_id  id;
	uint64_t  lines, decoded, sum;
} sorted_file;

/* One source of the merge: a file read again, or the engine's results. */
typedef struct sorted_src {
	sorted_file   *f;          /* NULL: the engine's results */
	input_source  *in;
	input_chunk    c;
	int            held;       /* c is handed out and not released */
	const char    *p, *end;    /* the lines of c not read yet */
	uint8_t       *kbuf;       /* a key whose escapes were undone */
	uint64_t       lines, decoded, sum;
	tally_item     head;
	uint64_t       prefix;     /* the head's first 8 key bytes */
} sorted_src;

struct sorted_set {
	const tok_shared *tok;
	input_opts    io;
	unsigned      max_files;
	uint64_t      max_bytes, bytes;   /* readers' estimated memory */
	sorted_file  *files;
	unsigned      nfiles;
	uint64_t      decoded;
	size_t        kcap;               /* bytes of a key buffer */

	/* The merge. */
	sorted_inner_fn inner;
	void         *inner_ctx;
	sorted_src   *srcs;
	unsigned      nsrcs;
	unsigned     *heap, nheap;
	unsigned     *advance, nadvance;  /* sources whose heads went out last */
	char         *scratch;            /* a key kept aside (line_next) */
	char          errmsg[TALLY_ERR_MAX];
};

sorted_set *sorted_create(const tok_shared *tok, const input_opts *io, unsigned max_files,
	uint64_t max_bytes)
{
	sorted_set *s = mem_calloc(MEM_OTHER, 1, sizeof *s);
	if (!s)
		return NULL;
	s->tok = tok;
	s->kcap = tok_key_capacity(tok);
	/* Read, not mapped (sorted.h); one chunk held at a time. */
	s->io = *io;
	/* A reader's own buffers: its cost is measured by the memory it takes
	 * (sorted_take), and the merge opens all of them at once. */
	s->io.buffers = NULL;
	s->io.live = NULL;        /* its bytes are counted in sorted_take */
	s->io.io = TALLY_IO_READ;
	s->io.max_inflight = 1;
	s->io.prefix_cap = 0;
	if (!io->chunk_size || io->chunk_size > SORTED_CHUNK)
		s->io.chunk_size = SORTED_CHUNK;
	s->max_files = max_files ? max_files : 1;
	s->max_bytes = max_bytes;
	return s;
}

static void src_close(sorted_src *r)
{
	if (r->in) {
		if (r->held)
			input_release(r->in, r->c.handle);
		input_close(r->in);
	}
	r->in = NULL;
	r->held = 0;
}

void sorted_destroy(sorted_set *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->nsrcs; i++) {
		src_close(&s->srcs[i]);
		mem_free(MEM_OTHER, s->srcs[i].kbuf, s->kcap);
	}
	mem_free(MEM_OTHER, s->srcs, s->nsrcs * sizeof *s->srcs);
	mem_free(MEM_OTHER, s->heap, s->nsrcs * sizeof *s->heap);
	mem_free(MEM_OTHER, s->advance, s->nsrcs * sizeof *s->advance);
	mem_free(MEM_OTHER, s->scratch, s->kcap);
	for (unsigned i = 0; i < s->nfiles; i++)
		mem_free(MEM_OTHER, s->files[i].path, strlen(s->files[i].path) + 1);
	mem_free(MEM_OTHER, s->files, s->max_files * sizeof *s->files);
	mem_free(MEM_OTHER, s, sizeof *s);
}

unsigned sorted_files(const sorted_set *s)
{
	return s ? s->nfiles : 0;
}

uint64_t sorted_decoded(const sorted_set *s)
{
	return s ? s->decoded : 0;
}

const char *sorted_errmsg(const sorted_set *s)
{
	return s->errmsg;
}

/* ---- Lines in order --------------------------------------------------- */

/* The line at *p (up to end) into *cur, *p moved past it: 1, or 0 when it
 * is malformed or its key does not come after prev's (prev->key NULL: no
 * line before).  The line's key is unescaped into kbuf, if need be: a key
 * before it that lies there is copied to scratch first. */
static int line_next(const sorted_set *s, uint8_t *kbuf, char *scratch, const char **p,
	const char *end, const tally_item *prev, tally_item *cur)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *le = nl ? nl : end;
	tally_item before = *prev;
	if (before.key == (const char *)kbuf) {
		memcpy(scratch, kbuf, before.len);
		before.key = scratch;
	}
	tok_count_rec r;
	if (tok_count_line(s->tok, (const uint8_t *)*p, (const uint8_t *)le, kbuf, &r) ||
			(before.key && keysort_bytes_cmp(before.key, before.len,
				(const char *)r.key, r.len) >= 0))
		return 0;
	*cur = (tally_item){ (const char *)r.key, r.len, r.count };
	*p = nl ? nl + 1 : end;
	return 1;
}

/* The chunk c goes: a key that lies in it is copied to scratch. */
static void keep_key(tally_item *key, const input_chunk *c, char *scratch)
{
	if (key->key >= c->data && key->key < c->data + c->len) {
		memcpy(scratch, key->key, key->len);
		key->key = scratch;
	}
}

/* ---- The first reading --------------------------------------------------- */

/* The lines of one chunk, each after the one before (*prev): 1, else 0. */
static int scan_chunk(const sorted_set *s, uint8_t *kbuf, char *scratch, const input_chunk *c,
	tally_item *prev, uint64_t *lines, sorted_info *info)
{
	const char *p = c->data, *end = c->data + c->len;
	while (p < end) {
		if (!line_next(s, kbuf, scratch, &p, end, prev, prev))
			return 0;
		info->overflow |= __builtin_add_overflow(info->sum, prev->count, &info->sum);
		(*lines)++;
	}
	keep_key(prev, c, scratch);
	return 1;
}

int sorted_take(sorted_set *s, input_source *src, const char *path, _Atomic uint64_t *bytes,
	sorted_info *info)
{
	input_id id, id2;
	if (!input_identity(src, &id) || s->nfiles >= s->max_files ||
			(s->nfiles && s->bytes >= s->max_bytes))
		return SORTED_COUNT;
	/* Read with the merge's options, src left unread for the count.  What
	 * the reader holds at most is what it will hold in the merge, with a
	 * key buffer: MEM_IO moves on this thread only meanwhile, the
	 * engine's chunks being released here too (another engine running in
	 * the process would blur the figure). */
	uint64_t io0 = mem_current(MEM_IO), cost = 0;
	char err[TALLY_ERR_MAX];
	input_source *in = input_open(path, &s->io, err, sizeof err);
	if (!in)
		return errno == ENOMEM ? SORTED_FATAL : SORTED_COUNT;
	if (!input_identity(in, &id2) || memcmp(&id, &id2, sizeof id) != 0) {
		input_close(in);
		return SORTED_COUNT;
	}

	size_t plen = strlen(path) + 1;
	uint8_t *kbuf = mem_alloc(MEM_OTHER, s->kcap);
	char *copy = mem_alloc(MEM_OTHER, plen);
	if (!s->files)
		s->files = mem_calloc(MEM_OTHER, s->max_files, sizeof *s->files);
	if (!s->scratch)
		s->scratch = mem_alloc(MEM_OTHER, s->kcap);
	int rc = !kbuf || !copy || !s->files || !s->scratch ? SORTED_FATAL : SORTED_KEPT;
	*info = (sorted_info){ 0, 0 };
	tally_item prev = { NULL, 0, 0 };
	uint64_t lines = 0, decoded = 0, seen = 0;
	while (rc == SORTED_KEPT) {
		input_chunk c;
		int r = input_next(in, &c, err, sizeof err);
		uint64_t io = mem_current(MEM_IO);
		if (io > io0 && io - io0 > cost)
			cost = io - io0;
		uint64_t now = input_bytes_read(in);
		atomic_fetch_add_explicit(bytes, now - seen, memory_order_relaxed);
		seen = now;
		if (r <= 0) {
			/* A read error is the count's to report. */
			rc = r == 0 ? SORTED_KEPT : errno == ENOMEM ? SORTED_FATAL : SORTED_COUNT;
			break;
		}
		decoded += c.len;
		if (!scan_chunk(s, kbuf, s->scratch, &c, &prev, &lines, info))
			rc = SORTED_COUNT;
		input_release(in, c.handle);
	}
	input_close(in);
	mem_free(MEM_OTHER, kbuf, s->kcap);
	/* An empty file is counted: it holds nothing to merge; so is one
	 * whose reader would take the merge past its memory. */
	cost += s->kcap;
	if (rc == SORTED_KEPT && (lines == 0 || (s->nfiles && s->bytes + cost > s->max_bytes)))
		rc = SORTED_COUNT;
	if (rc != SORTED_KEPT) {
		atomic_fetch_sub_explicit(bytes, seen, memory_order_relaxed);
		mem_free(MEM_OTHER, copy, plen);
		return rc;
	}
	memcpy(copy, path, plen);
	s->files[s->nfiles++] = (sorted_file){ copy, id, lines, decoded, info->sum };
	s->bytes += cost;
	s->decoded += decoded;
	return SORTED_KEPT;
}

/* ---- The merge ------------------------------------------------------------ */

__attribute__((format(printf, 2, 3)))
static void merge_err(sorted_set *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
	va_end(ap);
}

static void changed(sorted_set *s, const sorted_src *r)
{
	merge_err(s, "%s: changed since it was first read", r->f->path);
}

/* Read r's next line into its head: 1, 0 at the end, -1 on failure. */
static int src_read(sorted_set *s, sorted_src *r)
{
	if (!r->f) {
		int rc = s->inner(s->inner_ctx, &r->head);
		if (rc == 1)
			r->prefix = keysort_prefix(r->head.key, r->head.len);
		return rc;
	}
	for (;;) {
		if (r->p < r->end) {
			/* The head before is the item given out last, done with. */
			if (!line_next(s, r->kbuf, s->scratch, &r->p, r->end, &r->head, &r->head)) {
				changed(s, r);
				return -1;
			}
			r->lines++;
			r->sum += r->head.count;   /* wraps as the first reading's did */
			r->prefix = keysort_prefix(r->head.key, r->head.len);
			return 1;
		}
		if (r->held) {
			keep_key(&r->head, &r->c, s->scratch);
			input_release(r->in, r->c.handle);
		}
		r->held = 0;
		char err[TALLY_ERR_MAX];
		int rc = input_next(r->in, &r->c, err, sizeof err);
		if (rc < 0) {
			merge_err(s, "%s", err);
			return -1;
		}
		if (rc == 0) {
			if (r->lines != r->f->lines || r->decoded != r->f->decoded ||
					r->sum != r->f->sum) {
				changed(s, r);
				return -1;
			}
			src_close(r);
			return 0;
		}
		r->held = 1;
		r->decoded += r->c.len;
		r->p = r->c.data;
		r->end = r->c.data + r->c.len;
	}
}

/* Head a before head b, by key. */
static int src_before(const void *ctx, unsigned a, unsigned b)
{
	const sorted_set *s = ctx;
	const sorted_src *x = &s->srcs[a], *y = &s->srcs[b];
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix;
	return keysort_bytes_cmp(x->head.key, x->head.len, y->head.key, y->head.len) < 0;
}

/* Read source k's next head and put it in the heap, unless it ended. */
static int src_push(sorted_set *s, unsigned k)
{
	int rc = src_read(s, &s->srcs[k]);
	if (rc == 1) {
		s->heap[s->nheap++] = k;
		iheap_up(s->heap, s->nheap - 1, src_before, s);
	}
	return rc < 0 ? -1 : 0;
}

static void heap_pop(sorted_set *s)
{
	s->heap[0] = s->heap[--s->nheap];
	if (s->nheap)
		iheap_down(s->heap, s->nheap, 0, src_before, s);
}

int sorted_start(sorted_set *s, sorted_inner_fn inner, void *ctx)
{
	s->inner = inner;
	s->inner_ctx = ctx;
	unsigned n = s->nfiles + (inner != NULL);
	s->srcs = mem_calloc(MEM_OTHER, n, sizeof *s->srcs);
	s->heap = mem_calloc(MEM_OTHER, n, sizeof *s->heap);
	s->advance = mem_calloc(MEM_OTHER, n, sizeof *s->advance);
	if (!s->srcs || !s->heap || !s->advance) {
		mem_free(MEM_OTHER, s->srcs, n * sizeof *s->srcs);
		mem_free(MEM_OTHER, s->heap, n * sizeof *s->heap);
		mem_free(MEM_OTHER, s->advance, n * sizeof *s->advance);
		s->srcs = NULL;
		s->heap = s->advance = NULL;
		merge_err(s, "out of memory");
		return -1;
	}
	s->nsrcs = n;
	for (unsigned i = 0; i < s->nfiles; i++) {
		sorted_src *r = &s->srcs[i];
		r->f = &s->files[i];
		char err[TALLY_ERR_MAX];
		r->kbuf = mem_alloc(MEM_OTHER, s->kcap);
		r->in = r->kbuf ? input_open(r->f->path, &s->io, err, sizeof err) : NULL;
		if (!r->in) {
			merge_err(s, "%s", r->kbuf ? err : "out of memory");
			return -1;
		}
		input_id id;
		if (!input_identity(r->in, &id) || memcmp(&id, &r->f->id, sizeof id) != 0) {
			changed(s, r);
			return -1;
		}
	}
	for (unsigned k = 0; k < n; k++)
		s->advance[s->nadvance++] = k;
	return 0;
}

int sorted_next(sorted_set *s, tally_item *it)
{
	/* The sources of the item given out last move on now. */
	while (s->nadvance)
		if (src_push(s, s->advance[--s->nadvance]))
			return -1;
	if (!s->nheap)
		return 0;
	unsigned k = s->heap[0];
	const sorted_src *top = &s->srcs[k];
	*it = top->head;
	heap_pop(s);
	s->advance[s->nadvance++] = k;
	while (s->nheap && s->srcs[s->heap[0]].prefix == top->prefix &&
			keysort_bytes_cmp(s->srcs[s->heap[0]].head.key, s->srcs[s->heap[0]].head.len,
				it->key, it->len) == 0) {
		unsigned j = s->heap[0];
		if (__builtin_add_overflow(it->count, s->srcs[j].head.count, &it->count)) {
			/* The engine checked the sum of all counts as they came. */
			it->count = UINT64_MAX;
		}
		heap_pop(s);
		s->advance[s->nadvance++] = j;
	}
	return 1;
}
