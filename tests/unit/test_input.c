/*
 * test_input.c - the input layer: mmap windows, read() buffers, pipes, zstd
 * streams and memory buffers all hand out chunks that put the input back
 * together exactly and end at record boundaries; errors are reported, not
 * crashed on.
 */
#include <check.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY   /* ZSTD_BLOCKSIZE_MAX, ZSTD_estimateDCtxSize */
#include <zstd.h>
#include <zstd_errors.h>

#include "input.h"
#include "linecut.h"
#include "mem.h"
#include "testutil.h"

/* ---- Fixture: a private directory for the test files ------------------ */

static char tmpdir[64];

static void dir_setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/tally-input-XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
	chmod(tmpdir, 0755);   /* the unprivileged user of one test must enter it */
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void dir_teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmp_path(const char *name)
{
	static char buf[4][256];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
	return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
	size_t cap = 1 << 16, n = 0;
	char *p = malloc(cap);
	size_t r;
	while ((r = fread(p + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			p = realloc(p, cap *= 2);
	}
	fclose(f);
	*len = n;
	return p;
}

/* text (len bytes) repeated to exactly total bytes, in a new buffer. */
static char *repeated(const char *text, size_t len, size_t total)
{
	char *p = malloc(total);
	ck_assert_ptr_nonnull(p);
	for (size_t n = 0, k; n < total; n += k) {
		k = len < total - n ? len : total - n;
		memcpy(p + n, text, k);
	}
	return p;
}

/* ---- Options: records are lines (linecut.h) ---------------------------- */

static input_opts opts(tally_io io, size_t chunk, size_t min_cap, unsigned inflight)
{
	input_opts o = { .io = io, .chunk_size = chunk, .min_capacity = min_cap,
		.max_inflight = inflight, .cut = test_line_cut, .cut_ctx = NULL };
	return o;
}

/* Text with short, empty and long lines, and a last line without '\n'. */
static char *make_text(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);
	unsigned seed = 7;
	for (int line = 0; line < 60; line++) {
		seed = seed * 1103515245u + 12345u;
		size_t l = (seed >> 16) % 23;
		if (line % 17 == 5)
			l = 150;   /* longer than the small buffers */
		if (line % 11 == 3)
			l = 0;
		for (size_t i = 0; i < l; i++)
			p[n++] = (char)('a' + (i + (size_t)line) % 26);
		p[n++] = '\n';
	}
	memcpy(p + n, "tail without newline", 20);
	n += 20;
	ck_assert_uint_lt(n, cap);
	*len = n;
	return p;
}

/* ---- Draining a source and checking every chunk ----------------------- */

typedef struct drained {
	char    *data;
	size_t   len;
	unsigned chunks;
	unsigned forced;
	unsigned prefixed;        /* chunks handed a prefix */
	unsigned empty_last;      /* an empty last chunk after a forced split */
	int      rc;              /* last input_next: 0 end, -1 error */
	char     err[512];
	uint64_t io_max;          /* the most MEM_IO seen while draining */
} drained;

/*
 * Read s to the end holding up to inflight chunks at once (released oldest
 * first), and check that every chunk is non-empty, at most cap bytes, ends at
 * a newline unless it was split by force (then it fills cap bytes and the
 * next chunk starts with cont 1) or is the last, and is still intact when
 * released; but for an empty last chunk that starts with cont 1, from a
 * stream whose last buffer was split by force.
 */
/* A chunk's prefix (test_line_cut's) is the tail of the chunk before it,
 * which ends at data[at]; it stays so until the chunk is released. */
static void assert_prefix(const input_chunk *c, const char *data, size_t at)
{
	if (!c->prefix_len)
		return;
	ck_assert_uint_le(c->prefix_len, at);
	ck_assert(memcmp(c->prefix, data + at - c->prefix_len, c->prefix_len) == 0);
}

static drained drain(input_source *s, unsigned inflight, size_t cap, int mapped)
{
	drained d;
	memset(&d, 0, sizeof d);
	size_t dcap = 1 << 12;
	d.data = malloc(dcap);
	input_chunk held[8];
	size_t held_at[8];
	unsigned nheld = 0;
	int prev_open = 0;
	size_t prev_len = 0;

	ck_assert_uint_le(inflight, 8);
	for (;;) {
		if (nheld == inflight && nheld > 0) {
			ck_assert(memcmp(held[0].data, d.data + held_at[0], held[0].len) == 0);
			assert_prefix(&held[0], d.data, held_at[0]);
			input_release(s, held[0].handle);
			memmove(held, held + 1, (nheld - 1) * sizeof held[0]);
			memmove(held_at, held_at + 1, (nheld - 1) * sizeof held_at[0]);
			nheld--;
		}
		input_chunk c;
		d.rc = input_next(s, &c, d.err, sizeof d.err);
		if (mem_current(MEM_IO) > d.io_max)
			d.io_max = mem_current(MEM_IO);
		if (d.rc <= 0)
			break;
		if (c.len == 0) {
			/* Only the end of a stream whose last buffer was full
			 * and split by force: the chunk carries the state the
			 * split left, and nothing follows. */
			ck_assert_uint_ne(c.cont, 0);
			ck_assert_msg(prev_open && prev_len == cap, "chunk %u: empty", d.chunks);
			ck_assert_int_eq(mapped, 0);
			input_release(s, c.handle);
			d.rc = input_next(s, &c, d.err, sizeof d.err);
			ck_assert_int_eq(d.rc, 0);
			d.empty_last++;
			break;
		}
		ck_assert_uint_le(c.len, cap);
		ck_assert_int_eq(c.first, d.chunks == 0);
		ck_assert_int_eq(c.mapped, mapped);
		/* A chunk that does not end at a newline is the last, or was split
		 * by force when full, and then the next one starts with cont 1. */
		if (c.cont == 1) {
			ck_assert_msg(prev_open && prev_len == cap, "chunk %u: bad split", d.chunks);
			d.forced++;
		} else {
			ck_assert_uint_eq(c.cont, 0);
			ck_assert_msg(!prev_open, "chunk %u ended inside a record", d.chunks - 1);
		}
		if (c.prefix_len) {
			ck_assert_uint_eq(c.cont, 1);
			d.prefixed++;
		}
		assert_prefix(&c, d.data, d.len);
		prev_open = c.data[c.len - 1] != '\n';
		prev_len = c.len;
		while (d.len + c.len > dcap)
			d.data = realloc(d.data, dcap *= 2);
		memcpy(d.data + d.len, c.data, c.len);
		held[nheld] = c;
		held_at[nheld++] = d.len;
		d.len += c.len;
		d.chunks++;
	}
	for (unsigned i = 0; i < nheld; i++) {
		ck_assert(memcmp(held[i].data, d.data + held_at[i], held[i].len) == 0);
		assert_prefix(&held[i], d.data, held_at[i]);
		input_release(s, held[i].handle);
	}
	return d;
}

static void assert_same(const drained *d, const char *want, size_t len)
{
	ck_assert_int_eq(d->rc, 0);
	ck_assert_uint_eq(d->len, len);
	ck_assert(memcmp(d->data, want, len) == 0);
}

static size_t cap_of(const input_opts *o)
{
	return o->min_capacity > o->chunk_size ? o->min_capacity : o->chunk_size;
}

/* Open path, drain it, close it, and check it reproduced want. */
static drained run_path(const char *path, input_opts o, int mapped, const char *want, size_t len)
{
	char err[512];
	input_source *s = input_open(path, &o, err, sizeof err);
	ck_assert_msg(s != NULL, "open: %s", err);
	drained d = drain(s, o.max_inflight, cap_of(&o), mapped);
	ck_assert_msg(d.rc == 0, "%s", d.err);
	ck_assert_uint_eq(input_bytes_read(s), input_size(s));
	input_close(s);
	assert_same(&d, want, len);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	return d;
}

/* ---- Plain files, memory ---------------------------------------------- */

START_TEST(test_tiny_chunks_all_kinds)
{
	size_t len;
	char *text = make_text(&len);
	const char *path = tmp_path("text");
	write_file(path, text, len);
	static const size_t mincaps[] = { 0, 16, 200 };

	for (size_t chunk = 1; chunk <= 64; chunk++) {
		for (unsigned inflight = 1; inflight <= 4; inflight++) {
			size_t mc = mincaps[(chunk + inflight) % 3];
			input_opts o = opts(TALLY_IO_MMAP, chunk, mc, inflight);
			drained d = run_path(path, o, 1, text, len);
			free(d.data);

			o.io = TALLY_IO_READ;
			d = run_path(path, o, 0, text, len);
			free(d.data);

			input_source *m = input_open_memory(text, len, "mem", &o);
			ck_assert_ptr_nonnull(m);
			ck_assert_uint_eq(input_size(m), len);
			d = drain(m, inflight, cap_of(&o), 0);
			ck_assert_uint_eq(input_bytes_read(m), len);
			input_close(m);
			assert_same(&d, text, len);
			free(d.data);
		}
	}
	free(text);
}
END_TEST

static char *zstd_sample(const char *text, size_t len, size_t *zlen);

/* Parts of a file (--shard): a range hands out exactly its bytes, then
 * input_extend the rest of the file; mapped, read, and from memory. */
static void range_case(input_source *s, const char *text, size_t len, size_t lo, size_t hi,
	const input_opts *o, int mapped)
{
	ck_assert_int_eq(input_splittable(s), 1);
	char head[8];
	ck_assert_int_eq(input_pread(s, head, sizeof head, 0), len < 8 ? (ssize_t)len : 8);
	ck_assert(memcmp(head, text, len < 8 ? len : 8) == 0);
	ck_assert_int_eq(input_range(s, lo, hi), 0);
	ck_assert_uint_eq(input_size(s), hi - lo);
	drained d = drain(s, o->max_inflight, cap_of(o), mapped);
	ck_assert_msg(d.rc == 0, "%s", d.err);
	ck_assert_uint_eq(d.len, hi - lo);
	ck_assert(memcmp(d.data, text + lo, hi - lo) == 0);
	ck_assert_uint_eq(input_bytes_read(s), hi - lo);
	free(d.data);
	/* Past the range: the rest of the file, cut as ever. */
	ck_assert_int_eq(input_extend(s), 0);
	size_t at = hi;
	input_chunk c;
	char err[256];
	int r;
	while ((r = input_next(s, &c, err, sizeof err)) == 1) {
		ck_assert_uint_le(at + c.len, len);
		ck_assert(memcmp(c.data, text + at, c.len) == 0);
		at += c.len;
		input_release(s, c.handle);
	}
	ck_assert_msg(r == 0, "%s", err);
	ck_assert_uint_eq(at, len);
	ck_assert_uint_eq(input_bytes_read(s), len - lo);
}

START_TEST(test_ranges)
{
	size_t len;
	char *text = make_text(&len);
	const char *path = tmp_path("text");
	write_file(path, text, len);
	/* Line starts, the ends included: the boundaries a part may have. */
	size_t starts[80], n = 0;
	starts[n++] = 0;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n')
			starts[n++] = i + 1;
	starts[n++] = len;
	unsigned seed = 11;
	for (int round = 0; round < 60; round++) {
		seed = seed * 1103515245u + 12345u;
		size_t a = starts[(seed >> 8) % n], b = starts[(seed >> 20) % n];
		size_t lo = a < b ? a : b, hi = a < b ? b : a;
		input_opts o = opts(round % 3 == 0 ? TALLY_IO_MMAP : TALLY_IO_READ,
			1 + (seed >> 4) % 40, 200, 1 + round % 3);
		char err[256];
		input_source *s = input_open(path, &o, err, sizeof err);
		ck_assert_msg(s != NULL, "%s", err);
		range_case(s, text, len, lo, hi, &o, round % 3 == 0);
		input_close(s);
		s = input_open_memory(text, len, "mem", &o);
		range_case(s, text, len, lo, hi, &o, 0);
		input_close(s);
	}
	ck_assert_uint_eq(mem_current(MEM_IO), 0);

	/* Not splittable: compressed, or once a chunk is out; bad ranges. */
	input_opts o = opts(TALLY_IO_AUTO, 64, 200, 2);
	size_t zlen;
	char *z = zstd_sample(text, len, &zlen);
	const char *zpath = tmp_path("text.zst");
	write_file(zpath, z, zlen);
	char err[256];
	input_source *s = input_open(zpath, &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(input_splittable(s), 0);
	ck_assert_int_eq(input_range(s, 0, 1), -1);
	input_close(s);
	s = input_open(path, &o, err, sizeof err);
	ck_assert_int_eq(input_range(s, 5, 4), -1);
	ck_assert_int_eq(input_range(s, 0, len + 1), -1);
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	input_release(s, c.handle);
	ck_assert_int_eq(input_range(s, 0, 1), -1);
	ck_assert_int_eq(input_extend(s), -1);   /* not at its end */
	input_close(s);
	free(z);
	free(text);
}
END_TEST

START_TEST(test_real_text_large_chunks)
{
	size_t len;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	ck_assert_uint_gt(len, 100000);
	static const tally_io ios[] = { TALLY_IO_MMAP, TALLY_IO_READ };
	for (int i = 0; i < 2; i++) {
		for (unsigned inflight = 1; inflight <= 4; inflight += 3) {
			input_opts o = opts(ios[i], 4096 * inflight + 17, 1024, inflight);
			drained d = run_path("data/kjv-genesis.txt", o, ios[i] == TALLY_IO_MMAP, text, len);
			ck_assert_uint_eq(d.forced, 0);
			/* Bounded: the windows or buffers in flight, never the file. */
			size_t bound = (inflight + 1) * (cap_of(&o) + 8192) + 4096;
			ck_assert_uint_le(d.io_max, bound);
			free(d.data);
		}
	}
	free(text);
}
END_TEST

START_TEST(test_forced_split_propagates_cont)
{
	/* One 100-byte line: with 16-byte buffers it must be split by force,
	 * and the chunk after each split starts inside the line (cont 1). */
	char text[200];
	size_t n = 0;
	memcpy(text, "ab\n", 3);
	n = 3;
	memset(text + n, 'x', 100);
	n += 100;
	memcpy(text + n, "\ncd\n", 4);
	n += 4;
	const char *path = tmp_path("long");
	write_file(path, text, n);

	static const tally_io ios[] = { TALLY_IO_MMAP, TALLY_IO_READ };
	for (int i = 0; i < 2; i++) {
		input_opts o = opts(ios[i], 8, 16, 2);
		drained d = run_path(path, o, ios[i] == TALLY_IO_MMAP, text, n);
		/* 100 x's after the carry: at least 6 full 16-byte pieces. */
		ck_assert_uint_ge(d.forced, 6);
		free(d.data);
	}
	input_opts o = opts(TALLY_IO_AUTO, 8, 16, 1);
	input_source *m = input_open_memory(text, n, "mem", &o);
	drained d = drain(m, 1, 16, 0);
	input_close(m);
	assert_same(&d, text, n);
	/* Memory windows start at the cut: "ab\n", then 6 x 16 x's, then the rest. */
	ck_assert_uint_eq(d.forced, 6);
	free(d.data);
}
END_TEST

/* A forced split's prefix goes with the next chunk, in its slot, for every
 * kind of source, while other chunks are in flight; the buffers go back at
 * the end.  Sources opened without a prefix_cap give none. */
START_TEST(test_prefix_handoff)
{
	char text[300];
	size_t n = 0;
	for (int k = 0; k < 3; k++) {
		memcpy(text + n, "ab\n", 3);
		n += 3;
		for (int i = 0; i < 70; i++)
			text[n++] = (char)('a' + (i * 7 + k) % 26);
		text[n++] = '\n';
	}
	const char *path = tmp_path("prefix");
	write_file(path, text, n);
	size_t zlen;
	char *z = zstd_sample(text, n, &zlen);
	const char *zpath = tmp_path("prefix.zst");
	write_file(zpath, z, zlen);
	for (int kind = 0; kind < 5; kind++) {
		for (unsigned inflight = 1; inflight <= 3; inflight++) {
			input_opts o = opts(kind == 1 || kind == 3 ? TALLY_IO_READ : TALLY_IO_MMAP, 8, 16,
				inflight);
			o.prefix_cap = kind == 4 ? 0 : 5;
			char err[256];
			input_source *s = kind == 2 ? input_open_memory(text, n, "mem", &o) :
				input_open(kind == 3 ? zpath : path, &o, err, sizeof err);
			ck_assert_ptr_nonnull(s);
			drained d = drain(s, inflight, 16, kind == 0 || kind == 4);
			input_close(s);
			assert_same(&d, text, n);
			ck_assert_uint_ge(d.forced, 9);
			ck_assert_uint_eq(d.prefixed, kind == 4 ? 0 : d.forced);
			ck_assert_uint_eq(mem_current(MEM_IO), 0);
			free(d.data);
		}
	}
	free(z);
}
END_TEST

START_TEST(test_exact_chunks_memory)
{
	/* The windows and their cuts, exactly. */
	const char *text = "one\ntwo\nthree\nfour";
	input_opts o = opts(TALLY_IO_AUTO, 6, 0, 1);
	input_source *m = input_open_memory(text, strlen(text), "mem", &o);
	input_chunk c;
	char err[128];
	static const char *want[] = { "one\n", "two\n", "three\n", "four" };
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(input_next(m, &c, err, sizeof err), 1);
		ck_assert_uint_eq(c.len, strlen(want[i]));
		ck_assert(memcmp(c.data, want[i], c.len) == 0);
		ck_assert_int_eq(c.first, i == 0);
		ck_assert_int_eq(c.cont, 0);
		input_release(m, c.handle);
	}
	ck_assert_int_eq(input_next(m, &c, err, sizeof err), 0);
	ck_assert_int_eq(input_next(m, &c, err, sizeof err), 0);
	input_close(m);
}
END_TEST

/* A cut that checks its own arguments and counts how it was called. */
typedef struct cut_log {
	size_t   cap;
	unsigned calls, eofs, fulls, bad;
	int      last_eof;
} cut_log;

static size_t logging_cut(const void *ctx, const char *buf, size_t len, int eof, int full,
	uint32_t cont_in, uint32_t *cont, input_prefix *pre)
{
	cut_log *l = (cut_log *)(uintptr_t)ctx;
	l->calls++;
	l->eofs += (unsigned)eof;
	l->fulls += (unsigned)full;
	if (len == 0 || len > l->cap || (eof && full) || (full && len != l->cap) || l->last_eof)
		l->bad++;
	l->last_eof = eof;
	return test_line_cut(NULL, buf, len, eof, full, cont_in, cont, pre);
}

START_TEST(test_cut_arguments)
{
	/* The last window is cut with eof=1 (once, last); full=1 only when the
	 * window holds cap bytes; never an empty window. */
	const char *text = "one\ntwo\nthree\n0123456789012345678901234567890123\nfour";
	size_t len = strlen(text);
	const char *path = tmp_path("args");
	write_file(path, text, len);
	for (int kind = 0; kind < 3; kind++) {
		cut_log l = { .cap = 16 };
		input_opts o = opts(kind == 1 ? TALLY_IO_READ : TALLY_IO_MMAP, 6, 16, 2);
		o.cut = logging_cut;
		o.cut_ctx = &l;
		char err[256];
		input_source *s = kind == 2 ? input_open_memory(text, len, "mem", &o) :
			input_open(path, &o, err, sizeof err);
		drained d = drain(s, 2, 16, kind == 0);
		input_close(s);
		assert_same(&d, text, len);
		ck_assert_uint_eq(l.bad, 0);
		ck_assert_uint_eq(l.eofs, 1);
		ck_assert_int_eq(l.last_eof, 1);
		ck_assert_uint_ge(l.fulls, 2);   /* the 34-byte line, split twice */
		ck_assert_uint_eq(d.forced, 2);
		free(d.data);
	}
}
END_TEST

START_TEST(test_empty_inputs)
{
	const char *path = tmp_path("empty");
	write_file(path, "", 0);
	static const tally_io ios[] = { TALLY_IO_AUTO, TALLY_IO_MMAP, TALLY_IO_READ };
	char err[256];
	input_chunk c;
	for (int i = 0; i < 3; i++) {
		input_opts o = opts(ios[i], 64, 0, 2);
		input_source *s = input_open(path, &o, err, sizeof err);
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_eq(input_size(s), 0);
		ck_assert_int_eq(input_is_compressed(s), 0);
		ck_assert_int_eq(input_next(s, &c, err, sizeof err), 0);
		input_close(s);
	}
	input_opts o = opts(TALLY_IO_AUTO, 64, 0, 2);
	input_source *s = input_open("/dev/null", &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 0);
	input_close(s);
	s = input_open_memory("", 0, "mem", &o);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 0);
	input_close(s);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
}
END_TEST

START_TEST(test_size_zero_proc_file_is_read)
{
	/* /proc files say st_size 0 but have content: they must be read, even
	 * with --io=mmap. */
	input_opts o = opts(TALLY_IO_MMAP, 256, 4096, 1);
	char err[256];
	input_source *s = input_open("/proc/self/status", &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	drained d = drain(s, 1, 4096, 0);
	input_close(s);
	ck_assert_int_eq(d.rc, 0);
	ck_assert_uint_gt(d.len, 10);
	ck_assert(memcmp(d.data, "Name:", 5) == 0);
	free(d.data);
}
END_TEST

START_TEST(test_auto_chooses_by_size)
{
	size_t len;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	char err[256];
	input_opts o = opts(TALLY_IO_AUTO, 65536, 0, 1);

	/* Smaller than the threshold: read; at least the threshold: mapped. */
	const char *small = tmp_path("small");
	write_file(small, text, 1000);
	input_source *s = input_open(small, &o, err, sizeof err);
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	ck_assert_int_eq(c.mapped, 0);
	input_release(s, c.handle);
	input_close(s);

	const char *big = tmp_path("big");
	char *many = repeated(text, len, INPUT_MMAP_THRESHOLD);
	write_file(big, many, INPUT_MMAP_THRESHOLD);
	free(many);
	s = input_open(big, &o, err, sizeof err);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	ck_assert_int_eq(c.mapped, 1);
	input_release(s, c.handle);
	input_close(s);
	free(text);
}
END_TEST

/* ---- Pipes and standard input ----------------------------------------- */

/* A child that writes data into a pipe in small, uneven pieces. */
static pid_t pipe_writer(const char *data, size_t len, int *rfd)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		size_t off = 0, step = 1;
		while (off < len) {
			size_t n = step < len - off ? step : len - off;
			if (write(p[1], data + off, n) != (ssize_t)n)
				_exit(1);
			off += n;
			step = step % 37 + 3;
		}
		_exit(0);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static void wait_ok(pid_t pid)
{
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

START_TEST(test_pipe)
{
	size_t len;
	char *text = make_text(&len);
	for (size_t chunk = 1; chunk <= 64; chunk += 7) {
		for (unsigned inflight = 1; inflight <= 4; inflight++) {
			int fd;
			pid_t pid = pipe_writer(text, len, &fd);
			char path[64];
			snprintf(path, sizeof path, "/dev/fd/%d", fd);
			input_opts o = opts(TALLY_IO_AUTO, chunk, chunk % 2 ? 0 : 32, inflight);
			char err[256];
			input_source *s = input_open(path, &o, err, sizeof err);
			ck_assert_msg(s != NULL, "%s", err);
			ck_assert_uint_eq(input_size(s), 0);
			drained d = drain(s, inflight, cap_of(&o), 0);
			ck_assert_uint_eq(input_bytes_read(s), len);
			input_close(s);
			close(fd);
			wait_ok(pid);
			assert_same(&d, text, len);
			free(d.data);
		}
	}
	free(text);
}
END_TEST

/* A pipe whose last line has no newline and fills the last buffer: split
 * by force there, it is ended by an empty chunk once the pipe says it is
 * at its end (a file of the same bytes ends in its last buffer). */
START_TEST(test_pipe_last_buffer_full)
{
	char text[48];
	memset(text, 'x', sizeof text);
	for (size_t chunk = 8; chunk <= 24; chunk += 8) {
		int fd;
		pid_t pid = pipe_writer(text, sizeof text, &fd);
		char path[64];
		snprintf(path, sizeof path, "/dev/fd/%d", fd);
		input_opts o = opts(TALLY_IO_AUTO, chunk, 0, 2);
		char err[256];
		input_source *s = input_open(path, &o, err, sizeof err);
		ck_assert_msg(s != NULL, "%s", err);
		drained d = drain(s, 2, cap_of(&o), 0);
		input_close(s);
		close(fd);
		wait_ok(pid);
		assert_same(&d, text, sizeof text);
		ck_assert_uint_eq(d.empty_last, 1);
		ck_assert_uint_eq(d.forced, sizeof text / chunk - 1);
		free(d.data);
	}
}
END_TEST

START_TEST(test_stdin_names)
{
	size_t len;
	char *text = make_text(&len);
	int fd;
	pid_t pid = pipe_writer(text, len, &fd);
	ck_assert_int_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	input_opts o = opts(TALLY_IO_AUTO, 100, 0, 2);
	char err[256];
	input_source *s = input_open("-", &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(input_name(s), "-");
	drained d = drain(s, 2, 100, 0);
	input_close(s);
	wait_ok(pid);
	assert_same(&d, text, len);
	free(d.data);
	/* Standard input is not closed by input_close; with no name it is
	 * "standard input", as wc calls it. */
	ck_assert_int_ne(fcntl(STDIN_FILENO, F_GETFD), -1);
	s = input_open(NULL, &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(input_name(s), "standard input");
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 0);
	input_close(s);
	free(text);
}
END_TEST

/* ---- zstd ------------------------------------------------------------- */

/* One frame at level 3; wlog sets the window (log2 bytes), 0 the default;
 * with ldm, zstd looks for long matches as far back as the window. */
static char *zcompress_ldm(const char *src, size_t len, int checksum, int wlog, int ldm,
	size_t *out)
{
	size_t cap = ZSTD_compressBound(len);
	char *dst = malloc(cap);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, checksum);
	if (wlog)
		ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, wlog);
	if (ldm)
		ZSTD_CCtx_setParameter(cc, ZSTD_c_enableLongDistanceMatching, 1);
	size_t n = ZSTD_compress2(cc, dst, cap, src, len);
	ck_assert(!ZSTD_isError(n));
	ZSTD_freeCCtx(cc);
	*out = n;
	return dst;
}

static char *zcompress_window(const char *src, size_t len, int checksum, int wlog,
	size_t *out)
{
	return zcompress_ldm(src, len, checksum, wlog, 0, out);
}

static char *zcompress(const char *src, size_t len, int checksum, size_t *out)
{
	return zcompress_window(src, len, checksum, 0, out);
}

/* Two frames of the two halves, a skippable frame before and between. */
static char *zstd_sample(const char *text, size_t len, size_t *zlen)
{
	static const unsigned char skip[] = {
		0x5A, 0x2A, 0x4D, 0x18, 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'
	};
	size_t a, b, half = len / 2;
	char *fa = zcompress(text, half, 1, &a);
	char *fb = zcompress(text + half, len - half, 0, &b);
	char *z = malloc(a + b + 2 * sizeof skip);
	size_t n = 0;
	memcpy(z + n, skip, sizeof skip);
	n += sizeof skip;
	memcpy(z + n, fa, a);
	n += a;
	memcpy(z + n, skip, sizeof skip);
	n += sizeof skip;
	memcpy(z + n, fb, b);
	n += b;
	free(fa);
	free(fb);
	*zlen = n;
	return z;
}

/* The first chunk of path, opened with chunk_size 0 (the default). */
static size_t default_first_chunk(const char *path, tally_io io, int compressed)
{
	input_opts o = opts(io, 0, 0, 2);
	char err[256];
	input_source *s = input_open(path, &o, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_int_eq(input_is_compressed(s), compressed);
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	size_t len = c.len;
	input_release(s, c.handle);
	input_close(s);
	return len;
}

START_TEST(test_default_chunk_by_kind)
{
	/* 6 MiB of lines: a chunk ends at the last line that fits. */
	size_t len;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	size_t total = 6 * INPUT_DEFAULT_CHUNK;
	char *big = repeated(text, len, total);
	const char *plain = tmp_path("plain.txt");
	write_file(plain, big, total);
	size_t zlen;
	char *z = zcompress(big, total, 0, &zlen);
	const char *packed = tmp_path("plain.txt.zst");
	write_file(packed, z, zlen);

	size_t line = 200;   /* longer than any line of Genesis */
	for (int io = 0; io < 2; io++) {
		size_t got = default_first_chunk(plain, io ? TALLY_IO_MMAP : TALLY_IO_READ, 0);
		ck_assert_uint_le(got, INPUT_DEFAULT_CHUNK);
		ck_assert_uint_gt(got, INPUT_DEFAULT_CHUNK - line);
	}
	size_t got = default_first_chunk(packed, TALLY_IO_AUTO, 1);
	ck_assert_uint_le(got, INPUT_ZSTD_CHUNK);
	ck_assert_uint_gt(got, INPUT_ZSTD_CHUNK - line);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	free(z);
	free(big);
	free(text);
}
END_TEST


/* Lines of text up to about total bytes, and every 600 KiB a line of 150 to
 * 400 KiB (text with spaces for newlines). */
static char *long_lines(const char *text, size_t len, size_t total, size_t *out)
{
	char *p = malloc(total + len + (401 << 10));
	size_t n = 0, next_long = 300 << 10;
	unsigned seed = 11;
	while (n < total) {
		if (n >= next_long) {
			seed = seed * 1103515245u + 12345u;
			size_t l = (150 + (seed >> 16) % 251) << 10;
			for (size_t k = 0; k < l; k++)
				p[n++] = text[k % len] == '\n' ? ' ' : text[k % len];
			p[n++] = '\n';
			next_long = n + (600 << 10);
		} else {
			memcpy(p + n, text, len);
			n += len;
		}
	}
	*out = n;
	return p;
}

/* total bytes of one period repeated: random letters in lines of up to 80,
 * then a line of long_line bytes.  Compressed with long matches, every
 * period after the first is one match a period back. */
static char *periodic(size_t period, size_t long_line, size_t total)
{
	char *p = malloc(total);
	unsigned seed = 5;
	size_t n = 0, short_part = period - long_line;
	while (n < period) {
		seed = seed * 1103515245u + 12345u;
		unsigned r = seed >> 16;
		int nl = n == period - 1 || (n < short_part && r % 61 == 0);
		p[n++] = nl ? '\n' : r % 7 == 0 ? ' ' : (char)('a' + r % 26);
	}
	for (; n < total; n++)
		p[n] = p[n - period];
	return p;
}

/* Drain the zstd file path (holding z[0..zlen)), then the same bytes
 * through a pipe, with o: both compressed, read to the last byte, and
 * giving want. */
static void zstd_file_and_pipe(const char *path, const char *z, size_t zlen, input_opts o,
	const char *want, size_t len)
{
	for (int piped = 0; piped < 2; piped++) {
		int fd = -1;
		pid_t pid = 0;
		char fdpath[64], err[512];
		if (piped) {
			pid = pipe_writer(z, zlen, &fd);
			snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", fd);
		}
		input_source *s = input_open(piped ? fdpath : path, &o, err, sizeof err);
		ck_assert_msg(s != NULL, "%s", err);
		ck_assert_int_eq(input_is_compressed(s), 1);
		ck_assert_uint_eq(input_size(s), piped ? 0 : zlen);
		drained d = drain(s, o.max_inflight, cap_of(&o), 0);
		ck_assert_msg(d.rc == 0, "%s", d.err);
		ck_assert_uint_eq(input_bytes_read(s), zlen);
		input_close(s);
		if (piped) {
			close(fd);
			wait_ok(pid);
		}
		assert_same(&d, want, len);
		free(d.data);
		ck_assert_uint_eq(mem_current(MEM_IO), 0);
	}
}

START_TEST(test_zstd_file_and_pipe)
{
	size_t len, zlen;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	char *z = zstd_sample(text, len, &zlen);
	const char *path = tmp_path("genesis.zst");
	write_file(path, z, zlen);

	static const size_t chunks[] = { 1, 7, 64, 4096, 1 << 20 };
	for (int i = 0; i < 5; i++) {
		unsigned inflight = 1 + (unsigned)i % 4;
		/* --io=mmap cannot map a compressed file: it is decompressed. */
		input_opts o = opts(i % 2 ? TALLY_IO_MMAP : TALLY_IO_AUTO, chunks[i], 256, inflight);
		zstd_file_and_pipe(path, z, zlen, o, text, len);
	}
	free(z);
	free(text);
}
END_TEST

START_TEST(test_zstd_direct_windows)
{
	/* A frame whose window fits in a chunk is decoded straight into the
	 * chunk buffers, each buffer the window of the next.  Chunks of one
	 * window to eight; one chunk held or several (the decoder must not
	 * reuse the buffer it reads back from).
	 *   _i 0, 1: Genesis with long lines, a 128 KiB window, checksum or
	 *   not; lines that carry most of a buffer into the next, or are split
	 *   by force.
	 *   _i 2: a 1 MiB window, every byte after the first period copied from
	 *   960 KiB back, across buffers; a line of 900 KiB leaves a buffer
	 *   with a carry of most of a chunk and little room to decode, so the
	 *   next buffer's window is mostly that carry. */
	size_t len, tlen, zlen;
	char *text = read_whole("data/kjv-genesis.txt", &len), *big, *z;
	static const size_t small[] = { 128 << 10, 200 << 10, 1 << 20 };
	static const size_t large[] = { 1 << 20, 1280 << 10, 2 << 20 };
	const size_t *chunks = small;
	if (_i < 2) {
		big = long_lines(text, len, 3 << 20, &tlen);
		z = zcompress_window(big, tlen, _i, 17, &zlen);
	} else {
		tlen = 6 << 20;
		big = periodic(960 << 10, 900 << 10, tlen);
		z = zcompress_ldm(big, tlen, 1, 20, 1, &zlen);
		ck_assert_uint_lt(zlen, tlen / 4);   /* the matches were found */
		chunks = large;
	}
	const char *path = tmp_path("direct.zst");
	write_file(path, z, zlen);
	for (int i = 0; i < 3; i++) {
		for (unsigned inflight = 1; inflight <= 4; inflight *= 2) {
			input_opts o = opts(TALLY_IO_AUTO, chunks[i], 0, inflight);
			zstd_file_and_pipe(path, z, zlen, o, big, tlen);
		}
	}
	free(z);
	free(big);
	free(text);
}
END_TEST

START_TEST(test_zstd_mixed_windows)
{
	/* Frames with a window larger than the chunk go through zstd's own
	 * buffers; a stream may mix both kinds, one after the other. */
	size_t len, tlen, n[3], zlen = 0;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	char *big = long_lines(text, len, 3 << 20, &tlen);
	size_t third = tlen / 3;
	static const int wlogs[] = { 20, 17, 20 };
	char *f[3];
	for (int k = 0; k < 3; k++) {
		size_t from = (size_t)k * third, to = k == 2 ? tlen : from + third;
		f[k] = zcompress_window(big + from, to - from, k == 1, wlogs[k], &n[k]);
		zlen += n[k];
	}
	char *z = malloc(zlen);
	for (size_t k = 0, at = 0; k < 3; at += n[k], k++) {
		memcpy(z + at, f[k], n[k]);
		free(f[k]);
	}
	const char *path = tmp_path("mixed.zst");
	write_file(path, z, zlen);
	for (unsigned inflight = 1; inflight <= 3; inflight += 2) {
		input_opts o = opts(TALLY_IO_AUTO, 128 << 10, 0, inflight);
		zstd_file_and_pipe(path, z, zlen, o, big, tlen);
	}
	free(z);
	free(big);
	free(text);
}
END_TEST

START_TEST(test_zstd_direct_memory)
{
	/* Decoding a frame straight into the chunks needs no window of zstd's
	 * own: with a 1 MiB window, MEM_IO stays within two chunk buffers (the
	 * one being filled and the one it reads back from, which the caller
	 * released), the compressed input buffer and the decoder's tables.
	 * zstd's streaming decoder would add the 1 MiB window and a block. */
	size_t len, zlen;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	char *big = repeated(text, len, 6 << 20);
	char *z = zcompress_window(big, 6 << 20, 0, 20, &zlen);
	const char *path = tmp_path("window.zst");
	write_file(path, z, zlen);
	input_opts o = opts(TALLY_IO_AUTO, 1 << 20, 0, 1);
	drained d = run_path(path, o, 0, big, 6 << 20);
	size_t buffers = 2 * ((1 << 20) + ZSTD_BLOCKSIZE_MAX) + (1 << 20);
	ck_assert_uint_le(d.io_max, buffers + ZSTD_estimateDCtxSize() + (64 << 10));
	free(d.data);
	free(z);
	free(big);
	free(text);
}
END_TEST

/* Open a zstd file holding data[0..n) and drain it; returns the result. */
static drained zstd_drain(const char *name, const void *data, size_t n, size_t chunk)
{
	const char *path = tmp_path(name);
	write_file(path, data, n);
	input_opts o = opts(TALLY_IO_AUTO, chunk, 0, 2);
	char err[256];
	input_source *s = input_open(path, &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(input_is_compressed(s), 1);
	drained d = drain(s, 2, cap_of(&o), 0);
	if (d.rc < 0) {
		/* The error stays. */
		input_chunk c;
		char again[512];
		ck_assert_int_eq(input_next(s, &c, again, sizeof again), -1);
		ck_assert_str_eq(again, d.err);
	}
	input_close(s);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	return d;
}

START_TEST(test_zstd_truncated)
{
	size_t len, zlen;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	/* _i & 1: a checksum; _i & 2: chunks larger than the window (20000
	 * bytes), so the frame is decoded straight into them. */
	char *z = zcompress(text, 20000, _i & 1, &zlen);
	size_t chunk = _i & 2 ? 1 << 16 : 4096;
	char want[512];
	snprintf(want, sizeof want, "%s: truncated zstd stream", tmp_path("cut.zst"));
	/* Every cut from the bare magic number on must fail, none silently. */
	for (size_t n = 4; n < zlen; n += (n < 40 || n > zlen - 40) ? 1 : 97) {
		drained d = zstd_drain("cut.zst", z, n, chunk);
		ck_assert_int_eq(d.rc, -1);
		ck_assert_str_eq(d.err, want);
		free(d.data);
	}
	drained d = zstd_drain("cut.zst", z, zlen, chunk);
	assert_same(&d, text, 20000);
	free(d.data);
	free(z);
	free(text);
}
END_TEST

START_TEST(test_zstd_corrupt)
{
	char want[512];
	/* A frame whose only block has the reserved block type. */
	static const unsigned char bad_block[] = {
		0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x05, 0x0F, 0x00, 0x00, 'x'
	};
	drained d = zstd_drain("bad.zst", bad_block, sizeof bad_block, 64);
	ck_assert_int_eq(d.rc, -1);
	snprintf(want, sizeof want, "%s: corrupt zstd stream (%s)", tmp_path("bad.zst"),
		ZSTD_getErrorString(ZSTD_error_corruption_detected));
	ck_assert_str_eq(d.err, want);
	free(d.data);

	/* A frame that declares 13 bytes and ends with an empty block, straight
	 * into the chunks (chunk 64) or through zstd's window (chunk 8). */
	static const unsigned char short_frame[] = {
		0x28, 0xB5, 0x2F, 0xFD, 0x30, 0x0D, 0x01, 0x00, 0x00
	};
	snprintf(want, sizeof want, "%s: corrupt zstd stream (%s)", tmp_path("short.zst"),
		ZSTD_getErrorString(ZSTD_error_corruption_detected));
	for (size_t chunk = 8; chunk <= 64; chunk *= 8) {
		d = zstd_drain("short.zst", short_frame, sizeof short_frame, chunk);
		ck_assert_int_eq(d.rc, -1);
		ck_assert_str_eq(d.err, want);
		free(d.data);
	}

	/* A compressed block of size 0, which zstd's block-by-block decoding
	 * would take for an empty one: a frame of 0 bytes (its window fits in
	 * any chunk), and one with a 1 KiB window, through zstd's window with
	 * chunks of 64 bytes and straight into chunks of 4 KiB.  The third
	 * claims a block of 2 MiB, larger than any block may be. */
	static const unsigned char empty_block[][9] = {
		{ 0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x00, 0x05, 0x00, 0x00 },
		{ 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x05, 0x00, 0x00 },
		{ 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0xFC, 0xFF, 0xFF },
	};
	snprintf(want, sizeof want, "%s: corrupt zstd stream (%s)", tmp_path("empty.zst"),
		ZSTD_getErrorString(ZSTD_error_corruption_detected));
	for (int k = 0; k < 6; k++) {
		d = zstd_drain("empty.zst", empty_block[k / 2], 9, k % 2 ? 4096 : 64);
		ck_assert_int_eq(d.rc, -1);
		ck_assert_str_eq(d.err, want);
		free(d.data);
	}

	/* Real data with a flipped byte: the checksum (or the decoder) catches
	 * it, through zstd's buffers or straight into the chunks. */
	size_t len, zlen;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	char *z = zcompress(text, len, 1, &zlen);
	z[zlen / 2] ^= 0x5A;
	for (size_t chunk = 4096; chunk <= 1 << 20; chunk <<= 8) {
		d = zstd_drain("flip.zst", z, zlen, chunk);
		ck_assert_int_eq(d.rc, -1);
		snprintf(want, sizeof want, "%s: corrupt zstd stream (", tmp_path("flip.zst"));
		ck_assert_msg(strncmp(d.err, want, strlen(want)) == 0, "%s", d.err);
		free(d.data);
	}

	/* Garbage after a complete frame is not a frame. */
	char *z2 = malloc(zlen + 8);
	z[zlen / 2] ^= 0x5A;
	memcpy(z2, z, zlen);
	memcpy(z2 + zlen, "garbage!", 8);
	d = zstd_drain("tail.zst", z2, zlen + 8, 1 << 16);
	ck_assert_int_eq(d.rc, -1);
	snprintf(want, sizeof want, "%s: corrupt zstd stream (%s)", tmp_path("tail.zst"),
		ZSTD_getErrorString(ZSTD_error_prefix_unknown));
	ck_assert_str_eq(d.err, want);
	free(d.data);
	free(z2);
	free(z);
	free(text);
}
END_TEST

/* Sources opened with a buffer cache take the decoder and input buffer a
 * closed zstd source gave back, reset: a stream decoded after one that
 * failed half-way, or after one of another kind (decoded into the chunks
 * or through the decoder's own window), comes out whole all the same.
 * MEM_IO holds what is kept until the cache is trimmed. */
START_TEST(test_zstd_decoders_kept)
{
	size_t len, zlen, wlen;
	char *text = read_whole("data/kjv-genesis.txt", &len);
	char *z = zcompress(text, len, 1, &zlen);
	char *zw = zcompress_window(text, len, 1, 17, &wlen);   /* 128 KiB window */
	char *bad = malloc(zlen);
	memcpy(bad, z, zlen);
	bad[zlen / 2] ^= 0x5A;
	write_file(tmp_path("ok.zst"), z, zlen);
	write_file(tmp_path("window.zst"), zw, wlen);
	write_file(tmp_path("bad.zst"), bad, zlen);
	input_buffers *b = input_buffers_create(4);
	ck_assert_ptr_nonnull(b);
	static const char *const order[] = { "bad.zst", "ok.zst", "window.zst", "bad.zst",
		"window.zst", "ok.zst", "ok.zst" };
	for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
		/* 64 KiB chunks: the 128 KiB window is decoded through the
		 * decoder's buffers, the default one straight into the chunks. */
		input_opts o = opts(TALLY_IO_AUTO, 64 << 10, 0, 2);
		o.buffers = b;
		char err[512];
		input_source *s = input_open(tmp_path(order[i]), &o, err, sizeof err);
		ck_assert_msg(s != NULL, "%s", err);
		drained d = drain(s, 2, cap_of(&o), 0);
		if (order[i][0] == 'b') {
			ck_assert_int_eq(d.rc, -1);
			ck_assert_msg(strstr(d.err, "corrupt zstd stream") != NULL, "%s", d.err);
		} else {
			ck_assert_msg(d.rc == 0, "%s: %s", order[i], d.err);
			assert_same(&d, text, len);
		}
		free(d.data);
		input_close(s);
		ck_assert_uint_gt(mem_current(MEM_IO), 0);
	}
	input_buffers_trim(b);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	input_buffers_destroy(b);
	free(bad);
	free(zw);
	free(z);
	free(text);
}
END_TEST

START_TEST(test_zstd_window_limit)
{
	/* A frame header asking for a 2 GiB window (exponent 21), then one raw
	 * block: refused with a clear message, not an allocation attempt. */
	static const unsigned char big_window[] = {
		0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xA8, 0x09, 0x00, 0x00, 'x'
	};
	drained d = zstd_drain("window.zst", big_window, sizeof big_window, 64);
	ck_assert_int_eq(d.rc, -1);
	char want[512];
	snprintf(want, sizeof want, "%s: zstd frame needs a window larger than 1 GiB",
		tmp_path("window.zst"));
	ck_assert_str_eq(d.err, want);
	free(d.data);

	/* The same frame with a 1 GiB window (exponent 20) is accepted. */
	static const unsigned char ok_window[] = {
		0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xA0, 0x09, 0x00, 0x00, 'x'
	};
	d = zstd_drain("window.zst", ok_window, sizeof ok_window, 64);
	assert_same(&d, "x", 1);
	free(d.data);
}
END_TEST

START_TEST(test_zstd_empty_frames)
{
	/* Two frames that declare 0 bytes: one with an empty raw block, one
	 * with an RLE block of 0 bytes, which zstd reads as empty too. */
	static const unsigned char empty[] = {
		0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x00, 0x01, 0x00, 0x00,
		0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x00, 0x03, 0x00, 0x00, 0x1D
	};
	for (size_t chunk = 64; chunk <= 4096; chunk *= 64) {
		drained d = zstd_drain("empty.zst", empty, sizeof empty, chunk);
		ck_assert_msg(d.rc == 0, "%s", d.err);
		ck_assert_uint_eq(d.chunks, 0);
		free(d.data);
	}
}
END_TEST

START_TEST(test_zstd_only_skippable)
{
	static const unsigned char skip[] = { 0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 'h', 'i' };
	drained d = zstd_drain("skip.zst", skip, sizeof skip, 64);
	ck_assert_int_eq(d.rc, 0);
	ck_assert_uint_eq(d.chunks, 0);
	free(d.data);
}
END_TEST

/* ---- Open errors ------------------------------------------------------ */

START_TEST(test_open_errors)
{
	char err[512], want[512];
	input_opts o = opts(TALLY_IO_AUTO, 64, 0, 1);
	const char *missing = tmp_path("no-such-file");
	errno = 0;
	ck_assert_ptr_null(input_open(missing, &o, err, sizeof err));
	ck_assert_int_eq(errno, ENOENT);
	snprintf(want, sizeof want, "%s: No such file or directory", missing);
	ck_assert_str_eq(err, want);

	ck_assert_ptr_null(input_open(tmpdir, &o, err, sizeof err));
	ck_assert_int_eq(errno, EISDIR);
	snprintf(want, sizeof want, "%s: Is a directory", tmpdir);
	ck_assert_str_eq(err, want);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
}
END_TEST

START_TEST(test_open_unreadable)
{
	/* Root reads files whatever their mode, so as root the check runs in a
	 * child that has given up its privileges (skipped when it cannot). */
	const char *path = tmp_path("secret");
	write_file(path, "x\n", 2);
	ck_assert_int_eq(chmod(path, 0), 0);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(77);
		char err[512];
		input_opts o = opts(TALLY_IO_AUTO, 64, 0, 1);
		input_source *s = input_open(path, &o, err, sizeof err);
		int e = errno;
		if (s)
			_exit(1);
		if (write(p[1], err, strlen(err)) < 0)
			_exit(2);
		_exit(e == EACCES ? 0 : 3);
	}
	close(p[1]);
	char got[512] = "";
	ssize_t n = read(p[0], got, sizeof got - 1);
	got[n > 0 ? n : 0] = '\0';
	close(p[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		return;   /* no unprivileged user to become */
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	char want[512];
	snprintf(want, sizeof want, "%s: Permission denied", path);
	ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(test_out_of_memory)
{
	size_t len;
	char *text = make_text(&len);
	const char *path = tmp_path("oom");
	write_file(path, text, len);
	input_opts o = opts(TALLY_IO_READ, 64, 0, 1);
	char err[512], want[512];

	mem_fail_after(1);
	ck_assert_ptr_null(input_open(path, &o, err, sizeof err));
	ck_assert_int_eq(errno, ENOMEM);
	snprintf(want, sizeof want, "%s: Cannot allocate memory", path);
	ck_assert_str_eq(err, want);

	/* The buffer is allocated at the first input_next. */
	input_source *s = input_open(path, &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	mem_fail_after(1);
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_str_eq(err, want);
	mem_fail_after(0);
	input_close(s);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	free(text);
}
END_TEST

/* ---- Files that shrink under a mapping -------------------------------- */

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* A file of n bytes of 63-byte lines. */
static char *lines_file(const char *path, size_t n)
{
	char *text = malloc(n);
	for (size_t i = 0; i < n; i++)
		text[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
	write_file(path, text, n);
	return text;
}

START_TEST(test_shrink_between_windows)
{
	const char *path = tmp_path("shrink");
	char *text = lines_file(path, 16 * page_size());
	input_opts o = opts(TALLY_IO_MMAP, page_size(), 0, 1);
	char err[512], want[512];
	input_source *s = input_open(path, &o, err, sizeof err);
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	ck_assert_int_eq(c.mapped, 1);
	input_release(s, c.handle);
	ck_assert_int_eq(truncate(path, 100), 0);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: file shrank while being read", path);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), -1);
	ck_assert_str_eq(err, want);
	input_close(s);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	free(text);
}
END_TEST

static int touch_chunk(void *arg)
{
	const input_chunk *c = arg;
	volatile unsigned sum = 0;
	for (size_t i = 0; i < c->len; i++)
		sum += (unsigned char)c->data[i];
	return (int)(sum & 1) + 5;   /* 5 or 6: anything but -1 */
}

START_TEST(test_shrink_sigbus_guarded)
{
	const char *path = tmp_path("bus");
	char *text = lines_file(path, 16 * page_size());
	input_opts o = opts(TALLY_IO_MMAP, 4 * page_size(), 0, 1);
	char err[512];
	input_source *s = input_open(path, &o, err, sizeof err);
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	ck_assert_int_eq(c.mapped, 1);
	ck_assert_int_ge(input_guard(touch_chunk, &c), 5);   /* intact: fine */
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(input_guard(touch_chunk, &c), -1);
	ck_assert_int_eq(input_guard(touch_chunk, &c), -1);  /* and again */
	input_release(s, c.handle);
	input_close(s);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	free(text);
}
END_TEST

/* Inner guard catches; the outer one goes on and returns normally. */
static int nested(void *arg)
{
	return input_guard(touch_chunk, arg) == -1 ? 42 : 0;
}

typedef struct thread_job {
	input_chunk *c;
	int result;
} thread_job;

static void *guard_thread(void *arg)
{
	thread_job *j = arg;
	j->result = input_guard(touch_chunk, j->c);
	return NULL;
}

START_TEST(test_sigbus_nested_and_threads)
{
	const char *path = tmp_path("bus2");
	char *text = lines_file(path, 8 * page_size());
	input_opts o = opts(TALLY_IO_MMAP, 8 * page_size(), 0, 1);
	char err[512];
	input_source *s = input_open(path, &o, err, sizeof err);
	input_chunk c;
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(input_guard(nested, &c), 42);

	thread_job jobs[2] = { { &c, 0 }, { &c, 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, guard_thread, &jobs[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(jobs[0].result, -1);
	ck_assert_int_eq(jobs[1].result, -1);
	input_release(s, c.handle);
	input_close(s);
	free(text);
}
END_TEST

START_TEST(test_sigbus_unguarded_still_kills)
{
	const char *path = tmp_path("bus3");
	char *text = lines_file(path, 4 * page_size());
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit nocore = { 0, 0 };
		setrlimit(RLIMIT_CORE, &nocore);
		input_opts o = opts(TALLY_IO_MMAP, 4 * page_size(), 0, 1);
		char err[512];
		input_source *s = input_open(path, &o, err, sizeof err);
		input_chunk c;
		if (!s || input_next(s, &c, err, sizeof err) != 1)
			_exit(101);
		if (input_guard(touch_chunk, &c) < 5)   /* the handler is installed now */
			_exit(102);
		if (truncate(path, 0) < 0)
			_exit(103);
		touch_chunk(&c);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	/* Killed by SIGBUS (a sanitizer's own handler may exit non-zero
	 * instead); 101..103 would mean the setup failed. */
	ck_assert_msg(!WIFEXITED(st) || (WEXITSTATUS(st) != 0 &&
		(WEXITSTATUS(st) < 101 || WEXITSTATUS(st) > 103)),
		"child survived the fault or failed to set up (status %d)", st);
	if (WIFSIGNALED(st))
		ck_assert_int_eq(WTERMSIG(st), SIGBUS);
	free(text);
}
END_TEST

/* A cut that truncates the file under the window, then looks at it. */
typedef struct shrink_ctx {
	const char *path;
} shrink_ctx;

static size_t shrinking_cut(const void *ctx, const char *buf, size_t len, int eof, int full,
	uint32_t cont_in, uint32_t *cont, input_prefix *pre)
{
	const shrink_ctx *sc = ctx;
	if (truncate(sc->path, 0) < 0)
		abort();
	volatile char last = buf[len - 1];
	(void)last;
	return test_line_cut(NULL, buf, len, eof, full, cont_in, cont, pre);
}

/* Read name (8 pages) through io in chunks of chunk bytes with a cut that
 * truncates the file: after `before` chunks, input_next fails with "file
 * shrank while being read", and every buffer goes back. */
static void assert_shrink_fails(const char *name, tally_io io, size_t chunk, unsigned before)
{
	const char *path = tmp_path(name);
	char *text = lines_file(path, 8 * page_size());
	shrink_ctx sc = { path };
	input_opts o = opts(io, chunk, 0, 1);
	o.cut = shrinking_cut;
	o.cut_ctx = &sc;
	char err[512], want[512];
	input_source *s = input_open(path, &o, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	input_chunk c;
	unsigned got = 0;
	int rc;
	while ((rc = input_next(s, &c, err, sizeof err)) == 1) {
		input_release(s, c.handle);
		got++;
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_uint_eq(got, before);
	snprintf(want, sizeof want, "%s: file shrank while being read", path);
	ck_assert_str_eq(err, want);
	input_close(s);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	free(text);
}

START_TEST(test_sigbus_inside_input_next)
{
	assert_shrink_fails("bus4", TALLY_IO_MMAP, 4 * page_size(), 0);
}
END_TEST

/* A file read with read() that ends before the size it had when opened: an
 * error, not short counts. */
START_TEST(test_read_file_that_shrinks)
{
	assert_shrink_fails("shrink-read", TALLY_IO_READ, page_size(), 1);
}
END_TEST

/* ---- Buffers kept between sources -------------------------------------- */

/* Sources opened with a buffer cache take the buffers the closed ones gave
 * back (the first chunk of the next file is read into the same memory), up
 * to keep of them; MEM_IO holds those until the cache goes, and each file
 * still reads back whole. */
START_TEST(test_buffers_kept)
{
	const char *path = tmp_path("small");
	static const char text[] = "one\ntwo\nthree\n";
	write_file(path, text, sizeof text - 1);
	input_buffers *b = input_buffers_create(2);
	ck_assert_ptr_nonnull(b);
	input_opts o = opts(TALLY_IO_READ, 64, 64, 2);
	o.buffers = b;
	char err[256];
	const char *first = NULL;
	for (int round = 0; round < 3; round++) {
		input_source *s = input_open(path, &o, err, sizeof err);
		ck_assert_msg(s != NULL, "%s", err);
		input_chunk c;
		ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
		ck_assert_uint_eq(c.len, sizeof text - 1);
		ck_assert_int_eq(memcmp(c.data, text, c.len), 0);
		if (round == 0)
			first = c.data;
		else
			ck_assert_ptr_eq(c.data, first);
		input_release(s, c.handle);
		ck_assert_int_eq(input_next(s, &c, err, sizeof err), 0);
		input_close(s);
		ck_assert_uint_eq(mem_current(MEM_IO), 64);
	}
	/* Three sources open at once hold three buffers; two are kept. */
	input_source *s3[3];
	for (int i = 0; i < 3; i++) {
		s3[i] = input_open(path, &o, err, sizeof err);
		ck_assert_msg(s3[i] != NULL, "%s", err);
		input_chunk c;
		ck_assert_int_eq(input_next(s3[i], &c, err, sizeof err), 1);
		input_release(s3[i], c.handle);
	}
	ck_assert_uint_eq(mem_current(MEM_IO), 3 * 64);
	for (int i = 0; i < 3; i++)
		input_close(s3[i]);
	ck_assert_uint_eq(mem_current(MEM_IO), 2 * 64);
	input_buffers_trim(b);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
	input_buffers_destroy(b);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);
}
END_TEST

/* ---- Small inputs read whole ------------------------------------------ */

/* A small file read whole lands in the caller's buffer, as the only chunk
 * of its input (first, no state, no handle), and the source is then at its
 * end; sources that are not such a file are left unread. */
START_TEST(test_whole_small_file)
{
	const char *path = tmp_path("whole");
	static const char text[] = "one two\nthree";
	write_file(path, text, sizeof text - 1);
	input_opts o = opts(TALLY_IO_AUTO, 64, 64, 2);
	char err[256], buf[64];
	input_source *s = input_open(path, &o, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_uint_eq(input_whole_size(s), sizeof text - 1);
	/* Too little room: nothing is read. */
	input_chunk c;
	ck_assert_int_eq(input_whole(s, buf, 5, &c, err, sizeof err), 0);
	ck_assert_uint_eq(input_bytes_read(s), 0);
	memset(buf, '#', sizeof buf);
	ck_assert_int_eq(input_whole(s, buf + 3, sizeof buf - 3, &c, err, sizeof err), 1);
	ck_assert_ptr_eq(c.data, buf + 3);
	ck_assert_uint_eq(c.len, sizeof text - 1);
	ck_assert_int_eq(memcmp(c.data, text, c.len), 0);
	ck_assert_int_eq(c.first, 1);
	ck_assert_uint_eq(c.cont, 0);
	ck_assert_uint_eq(c.cont_out, 0);
	ck_assert_ptr_null(c.prefix);
	ck_assert_ptr_null(c.handle);
	ck_assert_uint_eq(input_bytes_read(s), sizeof text - 1);
	ck_assert_uint_eq(input_whole_size(s), 0);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 0);
	input_close(s);
	ck_assert_uint_eq(mem_current(MEM_IO), 0);

	/* Mapped, begun, in memory, empty: not read whole. */
	o.io = TALLY_IO_MMAP;
	s = input_open(path, &o, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_uint_eq(input_whole_size(s), 0);
	ck_assert_int_eq(input_whole(s, buf, sizeof buf, &c, err, sizeof err), 0);
	input_close(s);
	o.io = TALLY_IO_READ;
	o.chunk_size = 4;
	s = input_open(path, &o, err, sizeof err);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	input_release(s, c.handle);
	ck_assert_uint_eq(input_whole_size(s), 0);
	input_close(s);
	s = input_open_memory(text, sizeof text - 1, "mem", &o);
	ck_assert_uint_eq(input_whole_size(s), 0);
	input_close(s);
	write_file(path, "", 0);
	s = input_open(path, &o, err, sizeof err);
	ck_assert_uint_eq(input_whole_size(s), 0);
	input_close(s);
}
END_TEST

/* A file that grew past the room after it was opened is left to input_next,
 * from its start; one that shrank fails as a read one does. */
START_TEST(test_whole_file_changed)
{
	const char *path = tmp_path("changing");
	input_opts o = opts(TALLY_IO_READ, 64, 64, 2);
	char err[256], buf[16];
	input_chunk c;
	write_file(path, "a b c\n", 6);
	input_source *s = input_open(path, &o, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	write_file(path, "a b c\nd e f g h i j\n", 20);
	ck_assert_int_eq(input_whole(s, buf, sizeof buf, &c, err, sizeof err), 0);
	ck_assert_uint_eq(input_bytes_read(s), 0);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 1);
	ck_assert_uint_eq(c.len, 20);
	ck_assert_int_eq(memcmp(c.data, "a b c\nd e f g h i j\n", 20), 0);
	ck_assert_int_eq(c.first, 1);
	input_release(s, c.handle);
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), 0);
	input_close(s);

	/* It grew, and still fits: all of it is read. */
	write_file(path, "a b c\n", 6);
	s = input_open(path, &o, err, sizeof err);
	write_file(path, "a b c\nd\n", 8);
	ck_assert_int_eq(input_whole(s, buf, sizeof buf, &c, err, sizeof err), 1);
	ck_assert_uint_eq(c.len, 8);
	input_close(s);

	write_file(path, "a b c d e\n", 10);
	s = input_open(path, &o, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_int_eq(truncate(path, 4), 0);
	ck_assert_int_eq(input_whole(s, buf, sizeof buf, &c, err, sizeof err), -1);
	ck_assert_str_eq(err + strlen(err) - strlen("file shrank while being read"),
		"file shrank while being read");
	ck_assert_int_eq(input_next(s, &c, err, sizeof err), -1);
	input_close(s);
}
END_TEST

/* ---- Runner ----------------------------------------------------------- */

static Suite *input_suite(void)
{
	Suite *s = suite_create("input");
	TCase *tc = tcase_create("chunks");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_tiny_chunks_all_kinds);
	tcase_add_test(tc, test_buffers_kept);
	tcase_add_test(tc, test_whole_small_file);
	tcase_add_test(tc, test_whole_file_changed);
	tcase_add_test(tc, test_real_text_large_chunks);
	tcase_add_test(tc, test_ranges);
	tcase_add_test(tc, test_forced_split_propagates_cont);
	tcase_add_test(tc, test_prefix_handoff);
	tcase_add_test(tc, test_read_file_that_shrinks);
	tcase_add_test(tc, test_exact_chunks_memory);
	tcase_add_test(tc, test_cut_arguments);
	tcase_add_test(tc, test_empty_inputs);
	tcase_add_test(tc, test_size_zero_proc_file_is_read);
	tcase_add_test(tc, test_auto_chooses_by_size);
	tcase_add_test(tc, test_pipe);
	tcase_add_test(tc, test_pipe_last_buffer_full);
	tcase_add_test(tc, test_stdin_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("zstd");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_zstd_file_and_pipe);
	tcase_add_test(tc, test_zstd_decoders_kept);
	tcase_add_loop_test(tc, test_zstd_direct_windows, 0, 3);
	tcase_add_test(tc, test_zstd_mixed_windows);
	tcase_add_test(tc, test_zstd_direct_memory);
	tcase_add_test(tc, test_default_chunk_by_kind);
	tcase_add_loop_test(tc, test_zstd_truncated, 0, 4);
	tcase_add_test(tc, test_zstd_corrupt);
	tcase_add_test(tc, test_zstd_window_limit);
	tcase_add_test(tc, test_zstd_only_skippable);
	tcase_add_test(tc, test_zstd_empty_frames);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_open_unreadable);
	tcase_add_test(tc, test_out_of_memory);
	tcase_add_test(tc, test_shrink_between_windows);
	tcase_add_test(tc, test_shrink_sigbus_guarded);
	tcase_add_test(tc, test_sigbus_nested_and_threads);
	tcase_add_test(tc, test_sigbus_unguarded_still_kills);
	tcase_add_test(tc, test_sigbus_inside_input_next);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(input_suite());
}
