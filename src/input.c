/*
 * input.c - sources of bytes (see input.h).
 *
 * Four kinds of source hand out the same thing, chunks that end at record
 * boundaries:
 *
 *   memory  chunks point into the caller's buffer;
 *   mmap    a large regular file, mapped one window per chunk; the window is
 *           unmapped when the chunk is released, so resident pages stay
 *           bounded by the chunks in flight, whatever the file size;
 *   read    small regular files, pipes, terminals and devices: read() into a
 *           ring of at most max_inflight + 1 buffers, the partial record after
 *           each cut copied to the start of the next buffer;
 *   zstd    a zstd stream (files and pipes alike), decompressed into the same
 *           ring of buffers: straight into them when a frame's window fits
 *           in a chunk, else through zstd's own window (see zstd_fill).
 *
 * Memory and mmap windows start exactly at the previous cut, so they carry
 * nothing; read buffers carry the tail of the previous buffer.  In every case
 * a window that holds no record boundary grows (up to cap bytes, the larger
 * of chunk_size and min_capacity) before the cut is asked to split by force.
 * A cut that splits by force may leave bytes for the next chunk (the key so
 * far of a long record, input_prefix): the source keeps them in a buffer of
 * prefix_cap bytes, which goes with that chunk's slot until it is released.
 *
 * A mapped file that shrinks makes the kernel raise SIGBUS on the pages past
 * the new end.  input_guard turns that into an error return: a process-wide
 * handler jumps back to the innermost guard of the faulting thread, and
 * passes the signal on (default action: the process dies) when the thread is
 * not inside a guard.
 */
#include "input.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The buffer-less decoder (ZSTD_decompressBegin and Continue, ZSTD_insertBlock,
 * ZSTD_getFrameHeader) is in zstd's experimental section; libzstd exports it. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

/* The most one read() asks for (Linux transfers at most about 2 GiB). */
#define INPUT_READ_MAX ((size_t)1 << 30)

/* How long bytes from a pipe wait for the rest of their chunk before they
 * are counted as they are (stalled). */
#define INPUT_STALL_MS 250

/*
 * The --io=auto threshold (INPUT_MMAP_THRESHOLD in input.h, 1 MiB) comes from
 * this measurement on the project's machine (2 cores, Linux 6.18, warm page
 * cache): one thread opens the file, takes 1 MiB chunks (max_inflight 4,
 * min_capacity 1 MiB + 4 KiB), sums every byte of each chunk and releases it;
 * microseconds per file, median of three runs of best-of-nine, and the same
 * loop over a memory source (the consumer's own cost) for reference:
 *
 *   file                          mmap      read    memory
 *   4 KiB                         38.8      16.8       2.2
 *   256 KiB                      252.6     126.5      88.1
 *   1 MiB                        826.7     846.5     344.7
 *   4 MiB                       4532      4069      1494
 *   16 MiB                     20204     18262     14004
 *   kjvbible.txt x10 (43 MB)   49291     52512     30733
 *
 * Mapping costs a fixed ~25 us per file (mmap, faults, munmap) that read()
 * does not pay, so read() is twice as fast up to a few hundred KiB; from
 * 1 MiB on the two are within the run-to-run noise (+-20%), with mmap ahead
 * on the largest file, where it saves the copy.
 */

/*
 * Chunks of a zstd stream default to 4 MiB rather than 1 MiB
 * (INPUT_ZSTD_CHUNK, input.h).  Measured on the project's machine with
 * `gen words -s 1G` compressed by `zstd -3` (2 MiB window), tally with its
 * defaults (2 workers and the decoding thread), hyperfine, mean of 8 runs:
 *
 *   chunk                 1 MiB   2 MiB   4 MiB   8 MiB   zstd -dc alone
 *   seconds               2.20    2.07    1.89    1.74    1.35
 *
 * and in a second series of 10 runs 1.96 s (4 MiB), 1.94 (8 MiB), 1.90
 * (16 MiB) against 1.29 for zstd -dc.  perf puts the difference in the copy
 * out of zstd's window into the chunk buffers: 11.7% of the samples with
 * 1 MiB chunks, 5.0% with 4 MiB, the decoding itself unchanged.  It is the
 * bytes in flight that count, not the number of chunks: a queue of 24
 * chunks of 1 MiB did as well (1.91-2.09 s) as the usual 6 of 4 MiB
 * (1.92-2.02 s).
 * Plain files and pipes showed no difference between 1 and 4 MiB (mmap
 * 1.03-1.09 s and 1.03-1.05 s, read 1.02-1.17 s and 1.04-1.11 s), so they
 * keep the smaller buffers.  The cost: peak RSS on that input goes from 51
 * to 70 MB.
 */

/*
 * The largest zstd window accepted: 2^30 = 1 GiB.  The decoder's default
 * limit (2^27) refuses frames made with `zstd --long=28..30`; anything above
 * 2^30 would let one input take more memory than a counting run should spend
 * on decompression, so such a frame is refused with a clear message.
 */
#define INPUT_ZSTD_WINDOWLOG_MAX 30
#define INPUT_ZSTD_WINDOW_TEXT   "1 GiB"

/* Compressed bytes are read this many at a time. */
#define INPUT_ZSTD_INBUF ((size_t)1 << 20)

/* How the frame being read is decoded (input_source.zframe). */
enum { ZF_START, ZF_DIRECT, ZF_STREAM };
#define ZWALK_DONE UINT64_MAX
#define ZBLOCK_HEADER 3   /* bytes of a block header (RFC 8878) */


typedef enum src_kind {
	SRC_MEMORY,
	SRC_MMAP,
	SRC_READ,
	SRC_ZSTD
} src_kind;

/* One chunk's storage: a read buffer (kept for reuse) or a mapped window. */
typedef struct input_slot {
	char   *buf;      /* read and zstd: bufsize bytes, allocated on first use */
	void   *map;      /* mmap: the window, NULL when none */
	size_t  maplen;
	char   *pre;      /* the prefix of the chunk handed out, prefix_cap bytes, or NULL */
	int     busy;     /* handed out and not yet released */
} input_slot;

struct input_source {
	input_buffers *buffers;       /* input_opts.buffers */
	char        *name;
	size_t       name_size;
	src_kind     kind;
	int          fd;
	int          own_fd;          /* close fd in input_close (not stdin) */

	size_t       chunk;           /* bytes per chunk */
	size_t       cap;             /* the most a chunk may hold */
	size_t       bufsize;         /* bytes of a read or zstd buffer: cap, and one
	                               * zstd block more for zstd */
	input_cut_fn cut;
	const void  *cut_ctx;

	uint32_t     cont;            /* state the next chunk starts in */
	size_t       pre_cap;         /* bytes of a prefix buffer; 0 = no prefixes */
	char        *pre_next;        /* the prefix the next chunk starts with */
	size_t       pre_next_len;
	char        *pre_out;         /* where the cut writes the one after it */
	int          started;         /* a chunk has been handed out */
	int          done;            /* end of input reached */
	int          failed;          /* an error was reported; it stays */
	char         reason[160];     /* the reason of that error */

	uint64_t     size;            /* stored size for input_size, 0 = unknown */
	_Atomic uint64_t bytes_read;  /* stored bytes consumed */
	_Atomic uint64_t *live;       /* input_opts.live */
	uint64_t     live_mark;       /* the most bytes_read has been */

	/* Parts of a file (input_range): a regular file of known size opened
	 * by name, or memory, may be read by byte range. */
	int          splittable;
	int          regular;         /* a regular file opened by name (input_identity) */
	input_id     id;
	uint64_t     file_size;       /* the whole file's (or memory's) size */
	uint64_t     range_lo;        /* where the range begins */
	uint64_t     limit;           /* mmap: the offset the range ends at, else UINT64_MAX */
	uint64_t     read_left;       /* read: bytes the range has left, else UINT64_MAX */

	/* memory and mmap: the next chunk starts at pos; end is the last size
	 * seen (for mmap, file offsets) */
	const char  *mem;
	uint64_t     first_pos;
	uint64_t     pos;
	uint64_t     end;
	size_t       page;

	input_slot  *slots;
	unsigned     nslots;

	/* read and zstd */
	const char  *carry;           /* tail of the previous buffer, not yet handed out */
	size_t       carry_len;
	unsigned char peek[4];        /* first bytes of a pipe, read to look for a magic number */
	int          slow;            /* may keep us waiting: a pipe, socket or terminal */
	size_t       peek_len;
	size_t       peek_pos;
	int          src_eof;         /* no more bytes will come from fill */

	/* zstd */
	ZSTD_DCtx   *dctx;
	size_t       dctx_counted;    /* ZSTD_sizeof_DCtx last accounted */
	char        *zbuf;            /* compressed bytes, zin.pos to zin.size unread */
	size_t       zcap;
	ZSTD_inBuffer zin;
	int          zeof;            /* the compressed input is exhausted */
	int          zframe;          /* ZF_*: how the current frame is decoded */
	uint64_t     zcontent;        /* the frame's declared size, or
	                               * ZSTD_CONTENTSIZE_UNKNOWN */
	uint64_t     zdecoded;        /* and the bytes decoded from it so far */
	uint64_t     zabs;            /* stream offset of zbuf[0] */
	uint64_t     zwalk;           /* stream offset of the frame's next block
	                               * header to check, ZWALK_DONE after its last */
	input_slot  *hist;            /* the buffer handed out last: the window of a
	                               * direct frame, so not reused for the next one */
};

/* ---- Errors ----------------------------------------------------------- */

static void put_err(char *err, size_t errlen, const char *name, const char *reason)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", name, reason);
}

static void put_errno(char *err, size_t errlen, const char *name, int e)
{
	char tmp[128];
	put_err(err, errlen, name, strerror_r(e, tmp, sizeof tmp));
}

/* n more stored bytes consumed; the live counter learns of those past any
 * read before (a file read again from its start counts once). */
static void consumed(input_source *s, uint64_t n)
{
	uint64_t now = atomic_fetch_add_explicit(&s->bytes_read, n, memory_order_relaxed) + n;
	if (s->live && now > s->live_mark) {
		atomic_fetch_add_explicit(s->live, now - s->live_mark, memory_order_relaxed);
		s->live_mark = now;
	}
}

/* Remember the reason the source failed, report it, leave errno = e. */
static int fail(input_source *s, int e, const char *reason, char *err, size_t errlen)
{
	if (!reason) {
		char tmp[128];
		snprintf(s->reason, sizeof s->reason, "%s", strerror_r(e, tmp, sizeof tmp));
	} else {
		snprintf(s->reason, sizeof s->reason, "%s", reason);
	}
	s->failed = e ? e : EIO;
	put_err(err, errlen, s->name, s->reason);
	errno = s->failed;
	return -1;
}

/* ---- SIGBUS guard ----------------------------------------------------- */

static _Thread_local sigjmp_buf *volatile guard_jump;
static struct sigaction guard_previous;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void guard_handler(int sig, siginfo_t *info, void *uctx)
{
	sigjmp_buf *jb = guard_jump;
	if (jb)
		siglongjmp(*jb, 1);
	/* Not ours: hand the signal to whoever had it before, or let it kill
	 * the process as it would have without us. */
	if (guard_previous.sa_flags & SA_SIGINFO) {
		guard_previous.sa_sigaction(sig, info, uctx);
		return;
	}
	if (guard_previous.sa_handler != SIG_DFL && guard_previous.sa_handler != SIG_IGN) {
		guard_previous.sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void guard_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = guard_handler;
	/* SA_NODEFER: leaving the handler by siglongjmp then needs no saved
	 * signal mask, so sigsetjmp costs no system call. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &guard_previous);
}

int input_guard(int (*fn)(void *arg), void *arg)
{
	sigjmp_buf jb;
	sigjmp_buf *volatile outer;

	pthread_once(&guard_once, guard_install);
	outer = guard_jump;
	if (sigsetjmp(jb, 0)) {
		/* SA_NODEFER should have left SIGBUS unblocked, but a layer that
		 * wraps handlers (ThreadSanitizer) may not pass the flag on: a
		 * still-blocked SIGBUS would kill at the next fault. */
		sigset_t bus;
		sigemptyset(&bus);
		sigaddset(&bus, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
		guard_jump = outer;
		return -1;
	}
	guard_jump = &jb;
	atomic_signal_fence(memory_order_seq_cst);
	int r = fn(arg);
	atomic_signal_fence(memory_order_seq_cst);
	guard_jump = outer;
	return r;
}

/* ---- Creating and destroying ----------------------------------------- */

/* The most a chunk may hold: chunk bytes, or the caller's minimum. */
static size_t chunk_cap(const input_opts *o, size_t chunk)
{
	return o->min_capacity > chunk ? o->min_capacity : chunk;
}

/* Bytes per chunk: the caller's, else dflt; and the most a chunk may hold. */
static void set_chunk(input_source *s, const input_opts *o, size_t dflt)
{
	s->chunk = o->chunk_size ? o->chunk_size : dflt;
	s->cap = chunk_cap(o, s->chunk);
	s->bufsize = s->cap;
}

size_t input_buffer_size(const input_opts *o)
{
	return chunk_cap(o, o->chunk_size ? o->chunk_size : INPUT_DEFAULT_CHUNK);
}

static input_source *source_new(const char *name, const input_opts *o)
{
	input_source *s = mem_calloc(MEM_OTHER, 1, sizeof *s);
	if (!s)
		return NULL;
	s->fd = -1;
	s->name_size = strlen(name) + 1;
	s->name = mem_alloc(MEM_OTHER, s->name_size);
	/* One buffer more than the caller may hold, and for zstd one more again:
	 * the last one handed out, which the decoder still reads (hist). */
	s->nslots = (o->max_inflight ? o->max_inflight : 1) + 2;
	s->slots = mem_calloc(MEM_OTHER, s->nslots, sizeof *s->slots);
	if (!s->name || !s->slots) {
		if (s->name)
			mem_free(MEM_OTHER, s->name, s->name_size);
		if (s->slots)
			mem_free(MEM_OTHER, s->slots, s->nslots * sizeof *s->slots);
		mem_free(MEM_OTHER, s, sizeof *s);
		return NULL;
	}
	memcpy(s->name, name, s->name_size);
	s->buffers = o->buffers;
	set_chunk(s, o, INPUT_DEFAULT_CHUNK);
	s->cut = o->cut;
	s->cut_ctx = o->cut_ctx;
	s->pre_cap = o->prefix_cap;
	s->limit = UINT64_MAX;
	s->read_left = UINT64_MAX;
	atomic_init(&s->bytes_read, 0);
	s->live = o->live;
	return s;
}

/* ---- Buffers kept between sources ------------------------------------ */

/* zstd decoders are kept too, reset for the next stream, but no more than
 * these (one per source open at once is plenty), nor any that holds more
 * than INPUT_DCTX_KEEP_MAX (a stream decoded through its own window
 * buffers, up to the 1 GiB window allowed).  Creating one costs more than
 * decoding a small file: 5,000 files of 3 KB compressed took 0.32 s with a
 * decoder and an input buffer each (ZSTD_createDCtx a fifth of it, the
 * unmapping more), 0.19 s with them kept. */
#define INPUT_DCTX_KEEP     2u
#define INPUT_DCTX_KEEP_MAX ((size_t)16 << 20)

struct input_buffers {
	pthread_mutex_t mu;
	unsigned        keep, n;
	struct kept { void *p; size_t size; } *v;
	unsigned        ndctx;
	struct kept_dctx { ZSTD_DCtx *d; size_t counted; } dctx[INPUT_DCTX_KEEP];
};

input_buffers *input_buffers_create(unsigned keep)
{
	input_buffers *b = mem_calloc(MEM_OTHER, 1, sizeof *b);
	if (!b)
		return NULL;
	b->v = mem_calloc(MEM_OTHER, keep, sizeof *b->v);
	if (!b->v) {
		mem_free(MEM_OTHER, b, sizeof *b);
		return NULL;
	}
	b->keep = keep;
	pthread_mutex_init(&b->mu, NULL);
	return b;
}

void input_buffers_trim(input_buffers *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	for (unsigned i = 0; i < b->n; i++)
		mem_free(MEM_IO, b->v[i].p, b->v[i].size);
	b->n = 0;
	for (unsigned i = 0; i < b->ndctx; i++) {
		mem_account(MEM_IO, -(int64_t)b->dctx[i].counted);
		ZSTD_freeDCtx(b->dctx[i].d);
	}
	b->ndctx = 0;
	pthread_mutex_unlock(&b->mu);
}

void input_buffers_destroy(input_buffers *b)
{
	if (!b)
		return;
	input_buffers_trim(b);
	pthread_mutex_destroy(&b->mu);
	mem_free(MEM_OTHER, b->v, b->keep * sizeof *b->v);
	mem_free(MEM_OTHER, b, sizeof *b);
}

void *input_buffer_get(input_buffers *b, size_t size)
{
	if (b) {
		pthread_mutex_lock(&b->mu);
		for (unsigned i = b->n; i-- > 0;)
			if (b->v[i].size == size) {
				void *p = b->v[i].p;
				b->v[i] = b->v[--b->n];
				pthread_mutex_unlock(&b->mu);
				return p;
			}
		pthread_mutex_unlock(&b->mu);
	}
	return mem_alloc(MEM_IO, size);
}

void input_buffer_put(input_buffers *b, void *p, size_t size)
{
	if (b) {
		pthread_mutex_lock(&b->mu);
		if (b->n < b->keep) {
			b->v[b->n++] = (struct kept){ p, size };
			p = NULL;
		}
		pthread_mutex_unlock(&b->mu);
	}
	if (p)
		mem_free(MEM_IO, p, size);
}

/* A decoder for a new stream: one kept (reset), else a new one, accounted
 * under MEM_IO (*counted).  NULL when out of memory. */
static ZSTD_DCtx *dctx_get(input_buffers *b, size_t *counted)
{
	ZSTD_DCtx *d = NULL;
	if (b) {
		pthread_mutex_lock(&b->mu);
		if (b->ndctx) {
			b->ndctx--;
			d = b->dctx[b->ndctx].d;
			*counted = b->dctx[b->ndctx].counted;
		}
		pthread_mutex_unlock(&b->mu);
	}
	if (d) {
		ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	} else {
		if (!(d = ZSTD_createDCtx()))
			return NULL;
		*counted = ZSTD_sizeof_DCtx(d);
		mem_account(MEM_IO, (int64_t)*counted);
	}
	if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, INPUT_ZSTD_WINDOWLOG_MAX))) {
		mem_account(MEM_IO, -(int64_t)*counted);
		ZSTD_freeDCtx(d);
		return NULL;
	}
	return d;
}

static void dctx_put(input_buffers *b, ZSTD_DCtx *d, size_t counted)
{
	if (b && counted <= INPUT_DCTX_KEEP_MAX) {
		pthread_mutex_lock(&b->mu);
		if (b->ndctx < INPUT_DCTX_KEEP) {
			b->dctx[b->ndctx++] = (struct kept_dctx){ d, counted };
			d = NULL;
		}
		pthread_mutex_unlock(&b->mu);
	}
	if (d) {
		mem_account(MEM_IO, -(int64_t)counted);
		ZSTD_freeDCtx(d);
	}
}

static void slot_unmap(input_slot *sl)
{
	if (sl->map) {
		munmap(sl->map, sl->maplen);
		mem_account(MEM_IO, -(int64_t)sl->maplen);
		sl->map = NULL;
		sl->maplen = 0;
	}
}

static void free_prefix(input_source *s, char *p)
{
	if (p)
		mem_free(MEM_IO, p, s->pre_cap);
}

void input_close(input_source *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->nslots; i++) {
		slot_unmap(&s->slots[i]);
		if (s->slots[i].buf)
			input_buffer_put(s->buffers, s->slots[i].buf, s->bufsize);
		free_prefix(s, s->slots[i].pre);
	}
	free_prefix(s, s->pre_next);
	free_prefix(s, s->pre_out);
	mem_free(MEM_OTHER, s->slots, s->nslots * sizeof *s->slots);
	if (s->dctx)
		dctx_put(s->buffers, s->dctx, s->dctx_counted);
	if (s->zbuf)
		input_buffer_put(s->buffers, s->zbuf, s->zcap);
	if (s->own_fd && s->fd >= 0)
		close(s->fd);
	mem_free(MEM_OTHER, s->name, s->name_size);
	mem_free(MEM_OTHER, s, sizeof *s);
}

static int is_zstd_magic(const unsigned char *p, size_t n)
{
	if (n < 4)
		return 0;
	uint32_t m = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
	return m == ZSTD_MAGICNUMBER ||
		(m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START;
}

/* Read up to n bytes, retrying short reads: at offset at (pread), or at the
 * current position when at < 0 (a non-seekable fd).  The first bytes of an
 * input, kept to look for a magic number. */
static ssize_t read_full(int fd, void *buf, size_t n, off_t at)
{
	size_t got = 0;
	while (got < n) {
		char *p = (char *)buf + got;
		ssize_t r = at < 0 ? read(fd, p, n - got) : pread(fd, p, n - got, at + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int zstd_setup(input_source *s, const input_opts *o)
{
	set_chunk(s, o, INPUT_ZSTD_CHUNK);
	s->bufsize = s->cap + ZSTD_BLOCKSIZE_MAX;
	s->dctx = dctx_get(s->buffers, &s->dctx_counted);
	if (!s->dctx)
		return -1;
	s->zcap = INPUT_ZSTD_INBUF;
	s->zbuf = input_buffer_get(s->buffers, s->zcap);
	if (!s->zbuf)
		return -1;
	s->zin.src = s->zbuf;
	s->zin.size = 0;
	s->zin.pos = 0;
	return 0;
}

/*
 * Naming standard input.  coreutils wc calls it "standard input" when no file
 * operand was given and "-" when "-" was given explicitly; input_open does the
 * same: path NULL is "standard input", path "-" is "-".
 */
input_source *input_open(const char *path, const input_opts *o, char *err, size_t errlen)
{
	const char *name = path ? path : "standard input";
	int is_stdin = !path || strcmp(path, "-") == 0;
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	input_source *s;
	int e;

	if (fd < 0) {
		e = errno;
		put_errno(err, errlen, name, e);
		errno = e;
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		goto fail_fd;
	}
	if (S_ISDIR(st.st_mode)) {
		e = EISDIR;   /* open() succeeds on a directory; read() would not */
		goto fail_fd;
	}

	s = source_new(name, o);
	if (!s) {
		e = ENOMEM;
		goto fail_fd;
	}
	s->fd = fd;
	s->own_fd = !is_stdin;
	s->slow = !S_ISREG(st.st_mode);

	off_t at = -1;
	if (S_ISREG(st.st_mode))   /* stdin may be a file opened mid-way */
		at = is_stdin ? lseek(fd, 0, SEEK_CUR) : 0;
	if (at >= 0) {
		uint64_t remaining = (uint64_t)st.st_size > (uint64_t)at ?
			(uint64_t)st.st_size - (uint64_t)at : 0;
		ssize_t n = read_full(fd, s->peek, sizeof s->peek, at);
		if (n < 0) {
			e = errno;
			goto fail_src;
		}
		s->size = remaining;
		s->file_size = remaining;
		/* /proc reports size 0: such a file is read, never split. */
		s->splittable = !is_stdin && S_ISREG(st.st_mode) && remaining > 0;
		s->regular = s->splittable;
		s->id = (input_id){ (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
			(int64_t)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec };
		if (is_zstd_magic(s->peek, (size_t)n)) {
			s->splittable = 0;
			s->kind = SRC_ZSTD;
		} else if (st.st_size > 0 && remaining > 0 && (o->io == TALLY_IO_MMAP ||
				(o->io == TALLY_IO_AUTO && remaining >= INPUT_MMAP_THRESHOLD))) {
			/* Files that report size 0 (/proc) can only be read. */
			s->kind = SRC_MMAP;
			s->pos = s->first_pos = (uint64_t)at;
			s->end = (uint64_t)st.st_size;
			long pg = sysconf(_SC_PAGESIZE);
			s->page = pg > 0 ? (size_t)pg : 4096;
		} else {
			s->kind = SRC_READ;
		}
		/* A file read in one chunk has no use for more read-ahead. */
		if (s->kind == SRC_ZSTD || (s->kind == SRC_READ && remaining > s->chunk))
			posix_fadvise(fd, at, 0, POSIX_FADV_SEQUENTIAL);
	} else {
		ssize_t n = read_full(fd, s->peek, sizeof s->peek, -1);
		if (n < 0) {
			e = errno;
			goto fail_src;
		}
		s->peek_len = (size_t)n;
		consumed(s, (uint64_t)n);
		s->kind = is_zstd_magic(s->peek, s->peek_len) ? SRC_ZSTD : SRC_READ;
	}
	if (s->kind == SRC_ZSTD && zstd_setup(s, o) < 0) {
		e = ENOMEM;
		goto fail_src;
	}
	return s;

fail_src:
	input_close(s);  /* closes fd when owned */
	put_errno(err, errlen, name, e);
	errno = e;
	return NULL;
fail_fd:
	if (!is_stdin)
		close(fd);
	put_errno(err, errlen, name, e);
	errno = e;
	return NULL;
}

input_source *input_open_memory(const void *buf, size_t len, const char *name, const input_opts *o)
{
	input_source *s = source_new(name ? name : "(memory)", o);
	if (!s)
		return NULL;
	s->kind = SRC_MEMORY;
	s->mem = buf;
	s->pos = 0;
	s->end = len;
	s->size = len;
	s->file_size = len;
	s->splittable = 1;
	return s;
}

/* ---- Cutting ---------------------------------------------------------- */

typedef struct cut_call {
	input_source *s;
	const char *buf;
	size_t      len;
	int         eof;
	int         full;
	uint32_t    cont;
	size_t      k;
	size_t      pre_len;   /* the prefix the cut left for the next chunk */
} cut_call;

static int cut_run(void *arg)
{
	cut_call *c = arg;
	input_source *s = c->s;
	input_prefix pre = { s->pre_next, s->pre_next_len, s->pre_out, 0, 0 };
	if (c->full && s->pre_out)
		pre.out_cap = s->pre_cap;
	c->cont = 0;
	c->k = s->cut(s->cut_ctx, c->buf, c->len, c->eof, c->full, s->cont, &c->cont, &pre);
	c->pre_len = pre.out_len <= pre.out_cap ? pre.out_len : 0;
	return 0;
}

/* Before a cut that may split by force: a buffer for the prefix it may
 * leave.  0, or -1 when out of memory. */
static int want_prefix(input_source *s, int full)
{
	if (!full || !s->pre_cap || s->pre_out)
		return 0;
	s->pre_out = mem_alloc(MEM_IO, s->pre_cap);
	return s->pre_out ? 0 : -1;
}

static input_slot *free_slot(input_source *s);

/* Hand out buf[0..k) as the next chunk, cut with state cont and leaving a
 * prefix of pre_len bytes in pre_out.  The chunk takes the prefix it starts
 * with into its slot (a memory source's chunk takes a slot only then).
 * Returns 0, or -1 when no slot is free for it. */
static int emit(input_source *s, input_chunk *c, const char *buf, size_t k, uint32_t cont,
	size_t pre_len, input_slot *sl, int mapped)
{
	c->prefix = NULL;
	c->prefix_len = 0;
	if (s->pre_next_len) {
		if (!sl && !(sl = free_slot(s)))
			return -1;
		char *t = sl->pre;
		sl->pre = s->pre_next;
		s->pre_next = t;
		c->prefix = sl->pre;
		c->prefix_len = s->pre_next_len;
	}
	s->pre_next_len = pre_len;
	if (pre_len) {
		char *t = s->pre_next;
		s->pre_next = s->pre_out;
		s->pre_out = t;
	}
	c->data = buf;
	c->len = k;
	c->cont = s->cont;
	c->cont_out = cont;
	c->first = !s->started;
	c->mapped = mapped;
	c->handle = sl;
	if (sl)
		sl->busy = 1;
	s->cont = cont;
	s->started = 1;
	return 0;
}

static input_slot *free_slot(input_source *s)
{
	input_slot *any = NULL;
	for (unsigned i = 0; i < s->nslots; i++) {
		input_slot *sl = &s->slots[i];
		if (sl->busy || sl == s->hist)
			continue;
		if (sl->buf || s->kind == SRC_MMAP)
			return sl;   /* reuse a buffer before allocating another */
		if (!any)
			any = sl;
	}
	return any;
}

/* The next window size after w found no boundary: double, up to limit. */
static size_t grow(size_t w, size_t limit)
{
	size_t twice;
	if (mem_add(w, w, &twice) || twice > limit)
		return limit;
	return twice;
}

/* ---- Memory and mmap windows ------------------------------------------ */

static int next_buffered(input_source *s, input_chunk *c, char *err, size_t errlen);

static int file_changed(input_source *s, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(s->fd, &st) < 0)
		return fail(s, errno, NULL, err, errlen);
	if ((uint64_t)st.st_size < s->end)
		return fail(s, EIO, "file shrank while being read", err, errlen);
	/* A file that grows is read to its new end, or to its range's. */
	s->end = (uint64_t)st.st_size < s->limit ? (uint64_t)st.st_size : s->limit;
	return 0;
}

/* Map the window [at, at + w) into sl.  Returns 0 with *p set, -1 on an
 * error, or 1 when the file cannot be mapped at all (the source then reads). */
static int map_window(input_source *s, input_slot *sl, uint64_t at, size_t w,
	const char **p, char *err, size_t errlen)
{
	uint64_t start = at - at % s->page;
	size_t lead = (size_t)(at - start), len;
	if (mem_add(w, lead, &len))
		return fail(s, EOVERFLOW, NULL, err, errlen);
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, s->fd, (off_t)start);
	if (m == MAP_FAILED) {
		if (!s->started && s->pos == s->first_pos && (errno == ENODEV || errno == EACCES ||
				errno == EINVAL)) {
			/* A file system that cannot map this file: read it instead
			 * (the fd still stands at first_pos). */
			s->kind = SRC_READ;
			if (s->limit != UINT64_MAX)
				s->read_left = s->limit - s->pos;   /* a range's */
			return 1;
		}
		return fail(s, errno, NULL, err, errlen);
	}
	madvise(m, len, MADV_SEQUENTIAL);
	madvise(m, len, MADV_WILLNEED);
	sl->map = m;
	sl->maplen = len;
	mem_account(MEM_IO, (int64_t)len);
	*p = (const char *)m + lead;
	return 0;
}

static int next_window(input_source *s, input_chunk *c, char *err, size_t errlen)
{
	int mapped = s->kind == SRC_MMAP;
	input_slot *sl = NULL;

	if (mapped) {
		if (file_changed(s, err, errlen) < 0)
			return -1;
		sl = free_slot(s);
		if (!sl)
			return fail(s, EINVAL, "too many chunks in flight", err, errlen);
	}
	if (s->pos >= s->end) {
		s->done = 1;
		return 0;
	}
	uint64_t remaining = s->end - s->pos;
	size_t limit = remaining < s->cap ? (size_t)remaining : s->cap;
	size_t w = s->chunk < limit ? s->chunk : limit;
	cut_call cc = { .s = s };

	for (;;) {
		const char *p = NULL;
		if (mapped) {
			int r = map_window(s, sl, s->pos, w, &p, err, errlen);
			if (r < 0)
				return -1;
			if (r > 0)
				return next_buffered(s, c, err, errlen);
		} else {
			p = s->mem + s->pos;
		}
		cc.buf = p;
		cc.len = w;
		cc.eof = w == remaining;
		cc.full = !cc.eof && w == limit;
		if (want_prefix(s, cc.full) < 0) {
			if (mapped)
				slot_unmap(sl);
			return fail(s, ENOMEM, NULL, err, errlen);
		}
		if (mapped) {
			if (input_guard(cut_run, &cc) < 0) {
				slot_unmap(sl);
				if (file_changed(s, err, errlen) < 0)
					return -1;
				return fail(s, EIO, NULL, err, errlen);
			}
		} else {
			cut_run(&cc);
		}
		if (cc.k > w || ((cc.eof || cc.full) && cc.k == 0))
			cc.k = w;   /* the cut broke its contract: take the window whole */
		if (cc.k > 0) {
			if (emit(s, c, p, cc.k, cc.cont, cc.pre_len, sl, mapped) < 0)
				return fail(s, EINVAL, "too many chunks in flight", err, errlen);
			s->pos += cc.k;
			consumed(s, cc.k);
			return 1;
		}
		/* No boundary: widen the window. */
		w = grow(w, limit);
		if (mapped) {
			slot_unmap(sl);
			if (file_changed(s, err, errlen) < 0)
				return -1;
		}
	}
}

/* ---- read() and zstd into buffers ------------------------------------- */

/* Stored bytes: the peeked ones first, then read(). *got = 0 at the end. */
static int raw_read(input_source *s, char *dst, size_t want, size_t *got)
{
	if (s->peek_pos < s->peek_len) {
		size_t n = s->peek_len - s->peek_pos;
		if (n > want)
			n = want;
		memcpy(dst, s->peek + s->peek_pos, n);
		s->peek_pos += n;
		*got = n;
		return 0;
	}
	if (want > INPUT_READ_MAX)
		want = INPUT_READ_MAX;
	if (want > s->read_left)
		want = (size_t)s->read_left;
	if (want == 0) {
		*got = 0;   /* the end of the range */
		return 0;
	}
	for (;;) {
		ssize_t r = read(s->fd, dst, want);
		if (r >= 0) {
			*got = (size_t)r;
			if (s->read_left != UINT64_MAX)
				s->read_left -= (uint64_t)r;
			consumed(s, (uint64_t)r);
			return 0;
		}
		if (errno != EINTR)
			return -1;
	}
}

static void zstd_account(input_source *s)
{
	size_t now = ZSTD_sizeof_DCtx(s->dctx);
	if (now != s->dctx_counted) {
		mem_account(MEM_IO, (int64_t)now - (int64_t)s->dctx_counted);
		s->dctx_counted = now;
	}
}

/* Fail with zstd's error code. */
static int zstd_fail_code(input_source *s, ZSTD_ErrorCode code, char *err, size_t errlen)
{
	char why[160];
	switch (code) {
	case ZSTD_error_frameParameter_windowTooLarge:
		return fail(s, EFBIG, "zstd frame needs a window larger than "
			INPUT_ZSTD_WINDOW_TEXT, err, errlen);
	case ZSTD_error_memory_allocation:
		return fail(s, ENOMEM, NULL, err, errlen);
	default:
		snprintf(why, sizeof why, "corrupt zstd stream (%s)", ZSTD_getErrorString(code));
		return fail(s, EILSEQ, why, err, errlen);
	}
}

/* Fail with what a zstd function returned. */
static int zstd_fail(input_source *s, size_t ret, char *err, size_t errlen)
{
	return zstd_fail_code(s, ZSTD_getErrorCode(ret), err, errlen);
}

/* At least n compressed bytes at zin.pos (at most zcap), fewer only at the
 * end of the input; *avail gets what there is. */
static int zstd_need(input_source *s, size_t n, size_t *avail, char *err, size_t errlen)
{
	size_t have = s->zin.size - s->zin.pos;
	if (n > s->zcap)
		n = s->zcap;   /* a block header's size beyond any block: zstd refuses it */
	if (have < n && !s->zeof) {
		memmove(s->zbuf, s->zbuf + s->zin.pos, have);
		s->zabs += s->zin.pos;
		s->zin.pos = 0;
		s->zin.size = have;
		while (s->zin.size < n && !s->zeof) {
			size_t got;
			if (raw_read(s, s->zbuf + s->zin.size, s->zcap - s->zin.size, &got) < 0)
				return fail(s, errno, NULL, err, errlen);
			s->zin.size += got;
			s->zeof = got == 0;
		}
		have = s->zin.size;
	}
	*avail = have;
	return 0;
}

static int zstd_truncated(input_source *s, char *err, size_t errlen)
{
	return fail(s, EILSEQ, "truncated zstd stream", err, errlen);
}

/* At a frame boundary: skip skippable frames, read the next frame's header
 * and choose how to decode it.  *end = 1 at the clean end of the input. */
static int zstd_frame(input_source *s, int *end, char *err, size_t errlen)
{
	for (;;) {
		size_t avail;
		if (zstd_need(s, ZSTD_FRAMEHEADERSIZE_MAX, &avail, err, errlen) < 0)
			return -1;
		if (avail == 0) {
			*end = 1;
			return 0;
		}
		ZSTD_frameHeader fh;
		size_t r = ZSTD_getFrameHeader(&fh, s->zbuf + s->zin.pos, avail);
		if (ZSTD_isError(r))
			return zstd_fail(s, r, err, errlen);
		if (r > 0)   /* the header is longer than what is left */
			return zstd_truncated(s, err, errlen);
		if (fh.frameType == ZSTD_skippableFrame) {
			/* (headerSize is not set for these by every zstd.) */
			uint64_t skip = ZSTD_SKIPPABLEHEADERSIZE + fh.frameContentSize;
			while (skip > 0) {
				if (zstd_need(s, 1, &avail, err, errlen) < 0)
					return -1;
				if (avail == 0)
					return zstd_truncated(s, err, errlen);
				size_t k = avail < skip ? avail : (size_t)skip;
				s->zin.pos += k;
				skip -= k;
			}
			continue;
		}
		if (fh.windowSize > (1ull << INPUT_ZSTD_WINDOWLOG_MAX))
			return zstd_fail_code(s, ZSTD_error_frameParameter_windowTooLarge, err, errlen);
		s->zcontent = fh.frameContentSize;
		s->zdecoded = 0;
		s->zwalk = s->zabs + s->zin.pos + fh.headerSize;
		/* A frame that declares 0 bytes has nothing to copy, and zstd's
		 * block-by-block decoding refuses its blocks but an empty raw one
		 * (it takes 0 for the largest block), where zstd's one-call
		 * decoding, which the streaming decoder uses for such a frame,
		 * takes an RLE block of 0 bytes too. */
		if (fh.windowSize <= s->chunk && fh.frameContentSize != 0) {
			ZSTD_decompressBegin(s->dctx);
			s->zframe = ZF_DIRECT;
		} else {
			ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only);
			s->zframe = ZF_STREAM;
		}
		return 0;
	}
}

/*
 * Check the frame's block headers that have arrived, before the decoder
 * takes them.  zstd's block-by-block decoding (both ways here) takes a
 * compressed block of size 0 for an empty block, which the format does not
 * allow and its one-call decoding refuses.  Block headers are walked in the
 * compressed bytes: each gives the size of its block, up to the last.
 */
static int zstd_walk(input_source *s, char *err, size_t errlen)
{
	uint64_t end = s->zabs + s->zin.size;
	while (s->zwalk != ZWALK_DONE && s->zwalk + ZBLOCK_HEADER <= end) {
		const unsigned char *h = (const unsigned char *)s->zbuf + (s->zwalk - s->zabs);
		uint32_t v = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16;
		uint32_t type = (v >> 1) & 3, size = v >> 3;
		if (type == 2 && size == 0)   /* compressed, empty */
			return zstd_fail_code(s, ZSTD_error_corruption_detected, err, errlen);
		s->zwalk = v & 1 ? ZWALK_DONE :
			s->zwalk + ZBLOCK_HEADER + (type == 1 ? 1 : size);
	}
	return 0;
}

/* A frame is over.  zstd checks its declared size after a last block that
 * holds data, but not after an empty one (unless it decodes the frame in
 * one call): check it here. */
static int zstd_frame_end(input_source *s, char *err, size_t errlen)
{
	if (s->zcontent != ZSTD_CONTENTSIZE_UNKNOWN && s->zdecoded != s->zcontent)
		return zstd_fail_code(s, ZSTD_error_corruption_detected, err, errlen);
	s->zframe = ZF_START;
	return 0;
}

/* The next step of a direct frame (a header, a block or the checksum),
 * decoded at dst, which has room for a whole block. */
static int zstd_direct_step(input_source *s, char *dst, size_t room, size_t *got,
	char *err, size_t errlen)
{
	size_t n = ZSTD_nextSrcSizeToDecompress(s->dctx), avail;
	*got = 0;
	if (n == 0)
		return zstd_frame_end(s, err, errlen);
	if (zstd_need(s, n, &avail, err, errlen) < 0 || zstd_walk(s, err, errlen) < 0)
		return -1;
	if (avail < n)
		return zstd_truncated(s, err, errlen);
	size_t r = ZSTD_decompressContinue(s->dctx, dst, room, s->zbuf + s->zin.pos, n);
	if (ZSTD_isError(r))
		return zstd_fail(s, r, err, errlen);
	s->zin.pos += n;
	s->zdecoded += r;
	*got = r;
	return 0;
}

/* A direct frame goes on in a new buffer: its window is the whole of the
 * last one (hist: the chunk handed out and the carry after it), which ends
 * with the bytes just before the new buffer's own (its start is a copy of
 * the carry).  zstd takes the first block decoded elsewhere as the start
 * of new output, and what it was told last as the window before it. */
static void zstd_new_buffer(input_source *s)
{
	if (s->hist && s->zframe == ZF_DIRECT)
		ZSTD_insertBlock(s->dctx, s->hist->buf,
			(size_t)(s->carry - s->hist->buf) + s->carry_len);
}

/* A step of a streamed frame: up to want bytes at dst.  The decoder is
 * given the input up to the first block header not yet checked. */
static int zstd_stream_step(input_source *s, char *dst, size_t want, size_t *got,
	char *err, size_t errlen)
{
	ZSTD_outBuffer out = { dst, want, 0 };
	size_t avail, need = 1;
	uint64_t at = s->zabs + s->zin.pos;
	if (s->zwalk != ZWALK_DONE && s->zwalk >= at)
		need = (size_t)(s->zwalk - at) + ZBLOCK_HEADER;
	if (zstd_need(s, need, &avail, err, errlen) < 0 || zstd_walk(s, err, errlen) < 0)
		return -1;
	ZSTD_inBuffer in = s->zin;
	if (s->zwalk != ZWALK_DONE && s->zwalk - s->zabs < in.size)
		in.size = (size_t)(s->zwalk - s->zabs);
	size_t before = in.pos;
	size_t ret = ZSTD_decompressStream(s->dctx, &out, &in);
	zstd_account(s);
	if (ZSTD_isError(ret))
		return zstd_fail(s, ret, err, errlen);
	s->zin.pos = in.pos;
	*got = out.pos;
	s->zdecoded += out.pos;
	if (ret == 0)
		return zstd_frame_end(s, err, errlen);   /* decoded and flushed */
	if (s->zeof && out.pos == 0 && in.pos == before)
		return zstd_truncated(s, err, errlen);   /* no input will finish it */
	return 0;
}

/*
 * Decompress at least want bytes into dst (room bytes, room - want at least
 * ZSTD_BLOCKSIZE_MAX), fewer only at the end of the stream.  *got = 0 only
 * at the clean end.  A stream that stops inside a frame is an error.
 *
 * Frames are read one by one.  zstd's streaming decoder keeps a window of
 * its own and copies out of it; a frame whose window is no larger than a
 * chunk is instead decoded block by block (zstd's buffer-less API) straight
 * into the chunk buffers, which saves that copy.  The window is then the
 * buffer handed out last: it ends with the bytes just before the new
 * buffer's (the carry at the new buffer's start is a copy of its tail), it
 * holds at least a chunk (a buffer is handed out once filled to the chunk
 * size), and it is not reused while the next buffer is decoded (hist, kept
 * out of free_slot; the source has a buffer more for it).  Blocks are
 * decoded whole, so a buffer has one block of room past cap, and a chunk
 * is still cut at cap at most.  On `gen words -s 1G` compressed by
 * `zstd -3` (2 MiB window), 12 runs alternating with the streaming
 * decoder: tally FILE.zst 1.855 s against 1.945 (median), CPU 3.54 s
 * against 3.70; perf: the copy was 5.3% of the samples.  Windows larger
 * than a chunk (`zstd -17` and above, `--long`) keep the streaming decoder.
 */
static int zstd_fill(input_source *s, char *dst, size_t want, size_t room, size_t *got,
	char *err, size_t errlen)
{
	size_t done = 0, n = 0;
	while (done < want) {
		if (s->zframe == ZF_START) {
			int end = 0;
			if (zstd_frame(s, &end, err, errlen) < 0)
				return -1;
			if (end)
				break;
			continue;
		}
		if (s->zframe == ZF_DIRECT) {
			if (zstd_direct_step(s, dst + done, room - done, &n, err, errlen) < 0)
				return -1;
		} else if (zstd_stream_step(s, dst + done, want - done, &n, err, errlen) < 0) {
			return -1;
		}
		done += n;
	}
	*got = done;
	return 0;
}

static int fill(input_source *s, char *dst, size_t want, size_t room, size_t *got,
	char *err, size_t errlen)
{
	if (s->kind == SRC_ZSTD)
		return zstd_fill(s, dst, want, room, got, err, errlen);
	if (raw_read(s, dst, want, got) < 0)
		return fail(s, errno, NULL, err, errlen);
	/* A regular file that ends before the size it had when opened was
	 * cut short under us: an error, as for a mapped one, not short counts.
	 * One whose size has not come down ends where its reads end: a file
	 * of sysfs says 4096 bytes and holds what it holds, as wc sees it. */
	if (*got == 0 && input_bytes_read(s) < s->size) {
		struct stat st;
		if (fstat(s->fd, &st) < 0)
			return fail(s, errno, NULL, err, errlen);
		if ((uint64_t)st.st_size < s->id.size)
			return fail(s, EIO, "file shrank while being read", err, errlen);
		s->size = input_bytes_read(s);
	}
	return 0;
}

/* Whether a slow source kept the bytes in hand waiting INPUT_STALL_MS since
 * began, or keeps them that long before more come: then they are counted
 * as they are, so that a stream that trickles in (tail -f) shows its keys
 * on the progress line before a chunk is full. */
static int stalled(const input_source *s, const struct timespec *began)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(now.tv_sec - began->tv_sec) * 1000
		+ (now.tv_nsec - began->tv_nsec) / 1000000;
	if (ms >= INPUT_STALL_MS)
		return 1;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	return poll(&p, 1, (int)(INPUT_STALL_MS - ms)) == 0;   /* on error: read */
}

static int next_buffered(input_source *s, input_chunk *c, char *err, size_t errlen)
{
	input_slot *sl = free_slot(s);
	if (!sl)
		return fail(s, EINVAL, "too many chunks in flight", err, errlen);
	if (!sl->buf) {
		sl->buf = input_buffer_get(s->buffers, s->bufsize);
		if (!sl->buf)
			return fail(s, ENOMEM, NULL, err, errlen);
	}
	char *buf = sl->buf;
	size_t len = 0;
	if (s->kind == SRC_ZSTD)
		zstd_new_buffer(s);
	if (s->carry_len) {
		/* The carry may sit in this very buffer (its chunk was released). */
		memmove(buf, s->carry, s->carry_len);
		len = s->carry_len;
		s->carry_len = 0;
	}
	/* A zstd block may take the buffer past cap, and leave a carry of cap
	 * bytes or more: such a buffer is cut at cap at once. */
	size_t target = len >= s->cap ? len :
		len + (s->chunk < s->cap - len ? s->chunk : s->cap - len);
	cut_call cc = { .s = s, .buf = buf };
	/* A slow pipe's new bytes are cut when they have waited long enough. */
	int slow = s->slow && s->kind == SRC_READ;
	size_t tried = len;   /* the bytes in hand when last cut */
	struct timespec began = { 0, 0 };
	if (slow)
		clock_gettime(CLOCK_MONOTONIC, &began);

	for (;;) {
		while (!s->src_eof && len < target) {
			if (slow && len > tried && stalled(s, &began))
				break;
			size_t got;
			if (fill(s, buf + len, target - len, s->bufsize - len, &got, err, errlen) < 0)
				return -1;
			if (got == 0)
				s->src_eof = 1;
			len += got;
		}
		if (s->src_eof && len == 0) {
			if (s->cont || s->pre_next_len) {
				/* The last buffer was full, its last record cut
				 * to go on in the next chunk (a record's columns
				 * after a long one): an empty last chunk ends it,
				 * as the end of a mapped file does. */
				emit(s, c, buf, 0, 0, 0, sl, 0);
				return 1;
			}
			s->done = 1;
			return 0;
		}
		cc.len = len < s->cap ? len : s->cap;
		cc.eof = s->src_eof && cc.len == len;
		cc.full = !cc.eof && cc.len == s->cap;
		if (want_prefix(s, cc.full) < 0)
			return fail(s, ENOMEM, NULL, err, errlen);
		cut_run(&cc);
		if (cc.k > cc.len || ((cc.eof || cc.full) && cc.k == 0))
			cc.k = cc.len;
		if (cc.k > 0)
			break;
		tried = len;
		if (slow)
			clock_gettime(CLOCK_MONOTONIC, &began);
		target = len + (len < s->cap - len ? (len > s->chunk ? len : s->chunk) : s->cap - len);
		if (target > s->cap)
			target = s->cap;
	}
	s->carry = buf + cc.k;
	s->carry_len = len - cc.k;
	emit(s, c, buf, cc.k, cc.cont, cc.pre_len, sl, 0);   /* sl given: cannot fail */
	if (s->kind == SRC_ZSTD)
		s->hist = sl;
	return 1;
}

/* ---- Small inputs read whole ------------------------------------------ */

uint64_t input_whole_size(const input_source *s)
{
	if (s->kind != SRC_READ || !s->regular || s->started || s->failed
			|| s->read_left != UINT64_MAX)
		return 0;
	return s->size;
}

int input_whole(input_source *s, char *buf, size_t cap, input_chunk *c, char *err, size_t errlen)
{
	uint64_t size = input_whole_size(s);
	if (size == 0 || size > cap)
		return 0;
	size_t len = 0;
	for (;;) {
		size_t got;
		char probe;
		int over = len == cap;   /* full: is there more? */
		if (fill(s, over ? &probe : buf + len, over ? 1 : cap - len, 0, &got, err,
				errlen) < 0)
			return -1;
		if (got == 0)
			break;
		if (over) {
			/* It grew past cap since it was opened: back to its start,
			 * for input_next (a file opened by name starts at 0). */
			if (lseek(s->fd, 0, SEEK_SET) < 0)
				return fail(s, errno, NULL, err, errlen);
			atomic_store_explicit(&s->bytes_read, 0, memory_order_relaxed);
			return 0;
		}
		len += got;
	}
	s->src_eof = 1;
	s->done = 1;
	emit(s, c, buf, len, 0, 0, NULL, 0);
	return 1;
}

/* ---- Parts of a file -------------------------------------------------- */

int input_identity(const input_source *s, input_id *id)
{
	if (!s->regular)
		return 0;
	*id = s->id;
	return 1;
}

int input_splittable(const input_source *s)
{
	return s->splittable;
}

ssize_t input_pread(input_source *s, void *buf, size_t n, uint64_t at)
{
	if (s->kind == SRC_MEMORY) {
		if (at >= s->file_size)
			return 0;
		size_t k = s->file_size - at < n ? (size_t)(s->file_size - at) : n;
		memcpy(buf, s->mem + at, k);
		return (ssize_t)k;
	}
	return read_full(s->fd, buf, n, (off_t)at);
}

int input_range(input_source *s, uint64_t lo, uint64_t hi)
{
	if (!s->splittable || s->started || lo > hi || hi > s->file_size) {
		errno = EINVAL;
		return -1;
	}
	if (s->kind != SRC_MEMORY && lseek(s->fd, (off_t)lo, SEEK_SET) < 0)
		return -1;
	if (s->kind == SRC_MEMORY || s->kind == SRC_MMAP) {
		s->pos = s->first_pos = lo;
		s->end = hi;
		if (s->kind == SRC_MMAP)
			s->limit = hi;
	} else {
		s->read_left = hi - lo;
	}
	s->size = hi - lo;
	s->range_lo = lo;
	return 0;
}

int input_extend(input_source *s)
{
	if (!s->done || s->failed || !s->splittable) {
		errno = EINVAL;
		return -1;
	}
	s->done = 0;
	s->limit = UINT64_MAX;
	s->read_left = UINT64_MAX;
	if (s->kind == SRC_MEMORY)
		s->end = s->file_size;
	s->src_eof = 0;
	/* The file from the range on: what a read() source must still find
	 * before it may end, or the file shrank. */
	s->size = s->file_size - s->range_lo;
	return 0;
}

/* ---- The interface ---------------------------------------------------- */

int input_next(input_source *s, input_chunk *c, char *err, size_t errlen)
{
	if (s->failed) {
		put_err(err, errlen, s->name, s->reason);
		errno = s->failed;
		return -1;
	}
	if (s->done)
		return 0;
	switch (s->kind) {
	case SRC_MEMORY:
	case SRC_MMAP:
		return next_window(s, c, err, errlen);
	case SRC_READ:
	case SRC_ZSTD:
	default:
		return next_buffered(s, c, err, errlen);
	}
}

void input_release(input_source *s, void *handle)
{
	input_slot *sl = handle;
	(void)s;
	if (!sl)
		return;
	slot_unmap(sl);
	sl->busy = 0;
}

int input_is_compressed(const input_source *s)
{
	return s->kind == SRC_ZSTD;
}

uint64_t input_size(const input_source *s)
{
	return s->size;
}

uint64_t input_bytes_read(const input_source *s)
{
	return atomic_load_explicit(&s->bytes_read, memory_order_relaxed);
}

const char *input_name(const input_source *s)
{
	return s->name;
}
