/*
 * spill.c - run files, their k-way merge, and removal of temporary files
 * (see spill.h).
 *
 * Run file format.  One file per run, holding zstd frames (level 1,
 * content checksum on, window 16 KiB: records sorted by hash have little to
 * match at a distance, and a small window keeps a reader near 320 KiB, zstd
 * included, which a merge of 256 runs pays 256 times): one, or with
 * partitions one per partition (per range in key order), each indexed.
 * Their content, end to end, is in hash order and in key order:
 *
 *     record*  terminator
 *     (range  keyed*)*  terminator
 *     record     = varint(len + 1)  hash (8 bytes, little endian)
 *                  varint(count)  key (len bytes)
 *     range      = varint(1)  varint(range index)     (opens each frame)
 *     keyed      = varint(len - shared + 2)  varint(shared)  varint(count)
 *                  key bytes from shared on (len - shared bytes)
 *     terminator = varint(0)  varint(number of records)
 *
 * In key order records keep no hash (eight incompressible bytes each): the
 * range orders them, and a record read back gets the first hash of its
 * range's first partition, which puts it in the same range again.  They
 * are front coded: shared is the length of the prefix a key has in common
 * with the key before it in the frame (0 for a frame's first).  Sorted
 * keys share much of their beginnings; left to zstd, those short matches
 * cost it twice the time of the coded records (level 1 on a range of
 * sorted bigrams: 145 against 72 ms, 11.2 against 10.4 MB).
 *
 * Varints are LEB128 (7 bits per byte, low first, at most 10 bytes).  A
 * reader accepts a file only when the frame is complete, its checksum holds,
 * the terminator is there with the right record count and nothing follows
 * it: a truncated or corrupt run is an error, never short data.
 *
 * Temporary files.  Every directory and file is registered in a process-wide
 * list before it can be left behind (the name is created with signals
 * blocked in the creating thread).  The list is singly linked for readers
 * (the signal handler walks it with atomic loads only and calls nothing but
 * unlink, rmdir, getpid, sched_yield, sigaction and raise) and changed
 * under a mutex.  A
 * node taken off the list is freed only when no handler is walking it.
 * A cleanup first stops new names and waits for those being made by other
 * threads to be listed, so that a worker starting a run at that moment
 * leaves nothing behind.  Nodes remember the pid that made them, so a
 * forked child never removes its parent's files.
 */
#define ZSTD_STATIC_LINKING_ONLY   /* ZSTD_create[CD]Ctx_advanced: count zstd's memory */
#include "spill.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "keysort.h"
#include "mem.h"
#include "tally.h"

#define SPILL_BLOCK       (128u * 1024)   /* plain bytes compressed at a time */
#define SPILL_READ        (16u * 1024)    /* compressed bytes read at a time */
#define SPILL_WINDOW_LOG  14
#define SPILL_PLAIN       (32u * 1024)    /* a reader's plain bytes (grows for long keys) */
#define SPILL_READER_COST (320u * 1024)   /* a reader, zstd included (measured) */
#define SPILL_LEVEL       1
#define SPILL_REC_MAX     28              /* varint + hash + varint */
#define SPILL_FANIN_MAX   256u
#define SPILL_FD_MARGIN   32u

/* ---- Registry of temporary names ------------------------------------ */

typedef struct reg_node {
	_Atomic(struct reg_node *) next;  /* read by the signal handler */
	struct reg_node *prev;            /* under reg_lock only */
	size_t size;                      /* bytes allocated for the node */
	pid_t  pid;
	int    is_dir;
	char   path[];
} reg_node;

static _Atomic(reg_node *) reg_head;
static atomic_int reg_walkers;        /* cleanups walking the list now */
static atomic_int reg_naming;         /* threads creating and listing a name */
static atomic_int reg_dying;          /* a cleanup began: no new names */
static atomic_int reg_signaled;       /* ... because of a signal */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* The signals that end a run and remove its files: those a user, a shell or
 * a batch system sends to stop a job (SIGXCPU: a CPU time limit). */
static const int reg_signals[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU
};
#define REG_NSIGNALS (sizeof reg_signals / sizeof reg_signals[0])

const int *spill_signals(size_t *n)
{
	*n = REG_NSIGNALS;
	return reg_signals;
}


void spill_cleanup_all(void)
{
	/* Other threads may be creating a name right now: stop new ones, and
	 * let those under way be listed first (they run with the signals
	 * blocked, so none of them is this thread).  Bounded, in case a fork
	 * copied a counter that no thread will bring down. */
	atomic_store(&reg_dying, 1);
	for (long spins = 0; atomic_load(&reg_naming) != 0 && spins < 1000000; spins++)
		sched_yield();
	atomic_fetch_add(&reg_walkers, 1);
	pid_t me = getpid();
	/* Files first, then the directories they were in. */
	for (int dirs = 0; dirs <= 1; dirs++)
		for (reg_node *n = atomic_load(&reg_head); n; n = atomic_load(&n->next))
			if (n->pid == me && n->is_dir == dirs) {
				if (dirs)
					rmdir(n->path);
				else
					unlink(n->path);
			}
	atomic_fetch_sub(&reg_walkers, 1);
}

static void (*_Atomic reg_also)(void);   /* the output's temporary files */

void spill_also_on_signal(void (*fn)(void))
{
	atomic_store(&reg_also, fn);
}

/* Remove every temporary file of the process (run files, and the -o file
 * of an open writer), then let the process die: from a signal handler. */
void spill_signal_cleanup(void)
{
	atomic_store(&reg_signaled, 1);
	spill_cleanup_all();
	void (*also)(void) = atomic_load(&reg_also);
	if (also)
		also();
}

static void reg_on_signal(int sig)
{
	spill_signal_cleanup();
	/* Put the default action back and deliver the signal again: it is
	 * blocked while this handler runs, so it arrives on return and the
	 * process dies of it. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void reg_at_exit(void)
{
	spill_cleanup_all();
}

/* Install the handler where a signal has its default action, the one that
 * would end the process and leave the files behind.  A signal ignored on
 * purpose (nohup) stays ignored, and one the program handles itself stays
 * its own: the process may live on after it, so no file may go (such a
 * handler calls tally_signal_cleanup when it means to end the process).
 * Called by each spill_create. */
static void reg_install(void)
{
	static int at_exit_set;
	struct sigaction sa, cur;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = reg_on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < REG_NSIGNALS; i++)
		sigaddset(&sa.sa_mask, reg_signals[i]);
	sigset_t old;
	spill_block_signals(&old);
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < REG_NSIGNALS; i++)
		if (sigaction(reg_signals[i], NULL, &cur) == 0 &&
		    !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL)
			sigaction(reg_signals[i], &sa, NULL);
	if (!at_exit_set)
		at_exit_set = atexit(reg_at_exit) == 0;
	pthread_mutex_unlock(&reg_lock);
	spill_unblock_signals(&old);
}

/* Begin making a name: the cleanup signals are blocked in this thread and a
 * cleanup waits for the name to be listed.  Returns -1 (errno ECANCELED)
 * when a cleanup has begun: the process is going away, nothing new on disk.
 * After a signal, the thread first waits a while for the signal to end the
 * process: failing at once would print an error for a run that was
 * interrupted (tally: TMPDIR: Operation canceled), and it returns only if
 * a handler of the program's called tally_signal_cleanup and went on. */
static int reg_enter(sigset_t *old)
{
	spill_block_signals(old);
	atomic_fetch_add(&reg_naming, 1);
	if (atomic_load(&reg_dying)) {
		atomic_fetch_sub(&reg_naming, 1);
		spill_unblock_signals(old);
		for (int i = 0; i < 200 && atomic_load(&reg_signaled); i++) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		errno = ECANCELED;
		return -1;
	}
	return 0;
}

static void reg_leave(const sigset_t *old)
{
	atomic_fetch_sub(&reg_naming, 1);
	spill_unblock_signals(old);
}

/* Block the cleanup signals in this thread while a name is made and
 * registered, so that no handler runs between the two. */
void spill_block_signals(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < REG_NSIGNALS; i++)
		sigaddset(&set, reg_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void spill_unblock_signals(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* A node for path + suffix (suffix holds the mkstemp X's), not yet listed. */
static reg_node *reg_new(const char *dir, const char *name, int is_dir)
{
	size_t dl = strlen(dir), nl = strlen(name), size;
	if (mem_add(sizeof(reg_node), dl, &size) || mem_add(size, nl + 2, &size)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	reg_node *n = mem_alloc(MEM_SPILL, size);
	if (!n)
		return NULL;
	atomic_init(&n->next, NULL);
	n->prev = NULL;
	n->size = size;
	n->pid = getpid();
	n->is_dir = is_dir;
	memcpy(n->path, dir, dl);
	n->path[dl] = '/';
	memcpy(n->path + dl + 1, name, nl + 1);
	return n;
}

/* List n (its name is complete).  Call with the signals blocked. */
static void reg_publish(reg_node *n)
{
	pthread_mutex_lock(&reg_lock);
	reg_node *head = atomic_load(&reg_head);
	n->prev = NULL;
	atomic_store(&n->next, head);
	if (head)
		head->prev = n;
	atomic_store(&reg_head, n);
	pthread_mutex_unlock(&reg_lock);
}

/* Take n off the list (if listed) and free it once no cleanup walks it. */
static void reg_drop(reg_node *n, int listed)
{
	if (!n)
		return;
	if (listed) {
		sigset_t old;
		spill_block_signals(&old);
		pthread_mutex_lock(&reg_lock);
		reg_node *next = atomic_load(&n->next);
		if (n->prev)
			atomic_store(&n->prev->next, next);
		else
			atomic_store(&reg_head, next);
		if (next)
			next->prev = n->prev;
		pthread_mutex_unlock(&reg_lock);
		spill_unblock_signals(&old);
		/* A cleanup that started before the node left the list may still
		 * hold it; one that starts now cannot reach it. */
		while (atomic_load(&reg_walkers) != 0)
			sched_yield();
	}
	mem_free(MEM_SPILL, n, n->size);
}

/* ---- Counting allocator for zstd ------------------------------------ */

static void *zmem_alloc(void *opaque, size_t size)
{
	(void)opaque;
	size_t total;
	if (mem_add(size, 16, &total))
		return NULL;
	unsigned char *p = mem_alloc(MEM_SPILL, total);
	if (!p)
		return NULL;
	memcpy(p, &total, sizeof total);
	return p + 16;
}

static void zmem_free(void *opaque, void *address)
{
	(void)opaque;
	if (!address)
		return;
	unsigned char *p = (unsigned char *)address - 16;
	size_t total;
	memcpy(&total, p, sizeof total);
	mem_free(MEM_SPILL, p, total);
}

static const ZSTD_customMem zmem = { zmem_alloc, zmem_free, NULL };

/* ---- The spill -------------------------------------------------------- */

typedef struct spill_mark {
	uint64_t off;     /* byte offset of the frame in the file */
	uint32_t part;    /* the partition its records belong to */
} spill_mark;

struct spill_file {
	spill      *s;
	reg_node   *node;
	spill_file *prev, *next;  /* the spill's live files, under s->lock */
	uint64_t    records;
	uint32_t    max_len;      /* its longest key: a reader's buffers grow to it */
	/* With partitions: where each partition's frame starts, ascending. */
	spill_mark *ix;
	size_t      nix, capix;
};

struct spill {
	char           *tmpdir;
	size_t          tmpdir_size;
	reg_node       *dir;             /* NULL until the first run */
	pthread_mutex_t lock;
	spill_file     *files;           /* every live file */
	spill_file    **runs;            /* runs waiting for the merge */
	size_t          nruns, caprun;
	uint64_t        nwritten, bytes, passes;
	unsigned        fanin;
	uint64_t        merge_mem;       /* bytes for the readers of the merges at once; 0: no bound */
	unsigned        part_bits;       /* runs cut into frames by the hash's top bits */
	unsigned        key_ranges;      /* key order within that many ranges; 0: hash order */
	char            errmsg[TALLY_ERR_MAX];
};

/* Record "NAME: reason" (or the reason alone, name NULL) as the spill's
 * message and errno = err. */
static void spill_fail(spill *s, const char *name, const char *reason, int err)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->errmsg, sizeof s->errmsg, "%s%s%s", name ? name : "", name ? ": " : "", reason);
	pthread_mutex_unlock(&s->lock);
	errno = err;
}

static void spill_fail_errno(spill *s, const char *name, int err)
{
	/* Out of memory is the memory's, not the directory's: said as the
	 * engine says it. */
	if (err == ENOMEM)
		spill_fail(s, NULL, "out of memory", err);
	else
		spill_fail(s, name, strerror(err), err);
}

static unsigned default_fanin(void)
{
	unsigned n = SPILL_FANIN_MAX;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t avail = rl.rlim_cur > SPILL_FD_MARGIN + 2 ? rl.rlim_cur - SPILL_FD_MARGIN : 2;
		if (avail < n)
			n = (unsigned)avail;
	}
	const char *e = getenv("TALLY_SPILL_FANIN");
	if (e && *e) {
		char *end;
		unsigned long v = strtoul(e, &end, 10);
		if (*end == '\0' && v >= 2 && v < n)
			n = (unsigned)v;
	}
	return n;
}

spill *spill_create(const char *tmpdir, char *err, size_t errlen)
{
	if (!tmpdir || !*tmpdir) {
		tmpdir = getenv("TMPDIR");
		if (!tmpdir || !*tmpdir)
			tmpdir = "/tmp";
	}
	struct stat st;
	int e = 0;
	if (stat(tmpdir, &st) != 0)
		e = errno;
	else if (!S_ISDIR(st.st_mode))
		e = ENOTDIR;
	else if (faccessat(AT_FDCWD, tmpdir, W_OK | X_OK, AT_EACCESS) != 0)
		e = errno;   /* files could not be made in it: found out now */
	if (e) {
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot use as temporary directory: %s", tmpdir,
				strerror(e));
		errno = e;
		return NULL;
	}
	spill *s = mem_calloc(MEM_SPILL, 1, sizeof *s);
	size_t len = strlen(tmpdir) + 1;
	char *dup = s ? mem_alloc(MEM_SPILL, len) : NULL;
	if (!dup) {
		mem_free(MEM_SPILL, s, sizeof *s);
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", tmpdir, strerror(ENOMEM));
		errno = ENOMEM;
		return NULL;
	}
	memcpy(dup, tmpdir, len);
	s->tmpdir = dup;
	s->tmpdir_size = len;
	pthread_mutex_init(&s->lock, NULL);
	s->fanin = default_fanin();
	reg_install();
	return s;
}

/* Remove f's file and forget it.  Safe with s->lock not held. */
static void file_remove(spill_file *f)
{
	if (!f)
		return;
	spill *s = f->s;
	unlink(f->node->path);
	reg_drop(f->node, 1);
	pthread_mutex_lock(&s->lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		s->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&s->lock);
	mem_free(MEM_SPILL, f->ix, f->capix * sizeof *f->ix);
	mem_free(MEM_SPILL, f, sizeof *f);
}

/* Record that partition part starts at offset off.  Returns 0 or -1. */
static int index_add(spill_file *f, uint32_t part, uint64_t off)
{
	spill_mark *v = mem_grow(MEM_SPILL, f->ix, &f->capix, f->nix, sizeof *v, 16);
	if (!v)
		return -1;
	f->ix = v;
	f->ix[f->nix++] = (spill_mark){ off, part };
	return 0;
}

void spill_file_remove(spill_file *f)
{
	file_remove(f);
}

void spill_destroy(spill *s)
{
	if (!s)
		return;
	while (s->files)
		file_remove(s->files);
	mem_free(MEM_SPILL, s->runs, s->caprun * sizeof *s->runs);
	if (s->dir) {
		rmdir(s->dir->path);
		reg_drop(s->dir, 1);
	}
	pthread_mutex_destroy(&s->lock);
	mem_free(MEM_SPILL, s->tmpdir, s->tmpdir_size);
	mem_free(MEM_SPILL, s, sizeof *s);
}

/* Make the private directory on first use.  Call with s->lock held. */
static int spill_make_dir(spill *s)
{
	if (s->dir)
		return 0;
	reg_node *n = reg_new(s->tmpdir, "tally.XXXXXX", 1);
	if (!n)
		return -1;
	sigset_t old;
	if (reg_enter(&old)) {
		reg_drop(n, 0);
		errno = ECANCELED;
		return -1;
	}
	if (!mkdtemp(n->path)) {
		int e = errno;
		reg_leave(&old);
		reg_drop(n, 0);
		errno = e;
		return -1;
	}
	reg_publish(n);
	reg_leave(&old);
	s->dir = n;
	return 0;
}

/* Create a new run file in the private directory: the file, open for
 * writing, and its record.  Returns NULL with errno and the message set. */
static spill_file *file_create(spill *s, int *fd)
{
	pthread_mutex_lock(&s->lock);
	int rc = spill_make_dir(s);
	int e = errno;
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		spill_fail_errno(s, s->tmpdir, e);
		return NULL;
	}
	spill_file *f = mem_calloc(MEM_SPILL, 1, sizeof *f);
	reg_node *n = f ? reg_new(s->dir->path, "run.XXXXXX", 0) : NULL;
	if (!n) {
		mem_free(MEM_SPILL, f, sizeof *f);
		spill_fail_errno(s, s->tmpdir, ENOMEM);
		return NULL;
	}
	sigset_t old;
	*fd = -1;
	if (reg_enter(&old) == 0) {
		*fd = mkostemp(n->path, O_CLOEXEC);
		if (*fd < 0) {
			e = errno;
			reg_leave(&old);
		}
	} else {
		e = ECANCELED;
	}
	if (*fd < 0) {
		reg_drop(n, 0);
		mem_free(MEM_SPILL, f, sizeof *f);
		spill_fail_errno(s, s->tmpdir, e);
		return NULL;
	}
	reg_publish(n);
	reg_leave(&old);
	f->s = s;
	f->node = n;
	pthread_mutex_lock(&s->lock);
	f->next = s->files;
	if (s->files)
		s->files->prev = f;
	s->files = f;
	pthread_mutex_unlock(&s->lock);
	return f;
}

uint64_t spill_runs(const spill *s)
{
	spill *m = (spill *)s;
	pthread_mutex_lock(&m->lock);
	uint64_t v = m->nwritten;
	pthread_mutex_unlock(&m->lock);
	return v;
}

uint64_t spill_bytes(const spill *s)
{
	spill *m = (spill *)s;
	pthread_mutex_lock(&m->lock);
	uint64_t v = m->bytes;
	pthread_mutex_unlock(&m->lock);
	return v;
}

uint64_t spill_passes(const spill *s)
{
	return s->passes;
}

const char *spill_errmsg(const spill *s)
{
	return s->errmsg;
}

unsigned spill_fanin(const spill *s)
{
	return s->fanin;
}

void spill_set_fanin(spill *s, unsigned n)
{
	s->fanin = n < 2 ? 2 : n;
}

void spill_set_memory(spill *s, uint64_t bytes)
{
	s->merge_mem = bytes;
	uint64_t n = bytes / SPILL_READER_COST;
	if (n < s->fanin)
		s->fanin = n < 2 ? 2 : (unsigned)n;
}

const char *spill_dir(const spill *s)
{
	return s->dir ? s->dir->path : NULL;
}

/* ---- Record order ----------------------------------------------------- */

static uint32_t rec_part(const spill *s, uint64_t hash)
{
	return (uint32_t)(hash >> (64 - s->part_bits));
}

/* The range of partition p: the largest i with spill_range_start(i) <= p. */
static uint32_t part_range(const spill *s, uint32_t p)
{
	return (uint32_t)(((uint64_t)(p + 1) * s->key_ranges - 1) >> s->part_bits);
}

/* The frame a record goes to: its partition, or in key order the first
 * partition of its range. */
static uint32_t rec_frame(const spill *s, uint64_t hash)
{
	uint32_t p = rec_part(s, hash);
	if (!s->key_ranges)
		return p;
	return spill_range_start(1u << s->part_bits, s->key_ranges, part_range(s, p));
}

/* ---- Writing a run ---------------------------------------------------- */

struct spill_writer {
	spill         *s;
	spill_file    *f;
	int            fd;
	int            failed;      /* errno of the failure, 0 while fine */
	ZSTD_CCtx     *cctx;
	unsigned char *in;          /* SPILL_BLOCK plain bytes */
	size_t         inlen;
	unsigned char *out;
	size_t         outcap;
	uint64_t       records, bytes;
	int            have_part;   /* with partitions: the current frame's */
	uint32_t       part;
	char          *prev;        /* key order: the frame's last key */
	size_t         prevlen, prevcap;
};

static size_t put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void writer_free(spill_writer *w)
{
	mem_free(MEM_SPILL, w->prev, w->prevcap);
	ZSTD_freeCCtx(w->cctx);
	mem_free(MEM_SPILL, w->in, SPILL_BLOCK);
	mem_free(MEM_SPILL, w->out, w->outcap);
	mem_free(MEM_SPILL, w, sizeof *w);
}

/* Fail the writer: message, file removed, errno = err.  Returns -1. */
static int writer_fail(spill_writer *w, const char *reason, int err)
{
	if (!w->failed) {
		if (reason)
			spill_fail(w->s, w->s->tmpdir, reason, err);
		else
			spill_fail_errno(w->s, w->s->tmpdir, err);
		w->failed = err;
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
		file_remove(w->f);
		w->f = NULL;
	}
	errno = w->failed;
	return -1;
}

static int write_all(spill_writer *w, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return writer_fail(w, NULL, errno);
		}
		if (k == 0)
			return writer_fail(w, NULL, EIO);
		p += k;
		n -= (size_t)k;
		w->bytes += (uint64_t)k;
	}
	return 0;
}

/* Compress the plain buffer (and with ZSTD_e_end, close the frame). */
static int writer_flush(spill_writer *w, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { w->in, w->inlen, 0 };
	for (;;) {
		ZSTD_outBuffer out = { w->out, w->outcap, 0 };
		size_t r = ZSTD_compressStream2(w->cctx, &out, &in, mode);
		if (ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
			return writer_fail(w, NULL, ENOMEM);
		if (ZSTD_isError(r))
			return writer_fail(w, ZSTD_getErrorName(r), EIO);
		if (out.pos && write_all(w, w->out, out.pos))
			return -1;
		if (mode == ZSTD_e_end ? r == 0 : in.pos == in.size)
			break;
	}
	w->inlen = 0;
	return 0;
}

spill_writer *spill_run_begin(spill *s)
{
	spill_writer *w = mem_calloc_lines(MEM_SPILL, sizeof *w);
	if (!w) {
		spill_fail_errno(s, s->tmpdir, ENOMEM);
		return NULL;
	}
	w->s = s;
	w->fd = -1;
	w->outcap = ZSTD_CStreamOutSize();
	w->in = mem_alloc(MEM_SPILL, SPILL_BLOCK);
	w->out = mem_alloc(MEM_SPILL, w->outcap);
	w->cctx = ZSTD_createCCtx_advanced(zmem);
	if (!w->in || !w->out || !w->cctx) {
		writer_free(w);
		spill_fail_errno(s, s->tmpdir, ENOMEM);
		return NULL;
	}
	size_t r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, SPILL_LEVEL);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_windowLog, SPILL_WINDOW_LOG);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
	if (ZSTD_isError(r)) {
		spill_fail(s, s->tmpdir, ZSTD_getErrorName(r), EINVAL);
		writer_free(w);
		errno = EINVAL;
		return NULL;
	}
	w->f = file_create(s, &w->fd);
	if (!w->f) {
		int e = errno;
		writer_free(w);
		errno = e;
		return NULL;
	}
	return w;
}

/* The length of the prefix that a (alen bytes) and b (blen) share. */
static size_t shared_prefix(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen, i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return i + (size_t)__builtin_ctzll(x ^ y) / 8;
#else
			return i + (size_t)__builtin_clzll(x ^ y) / 8;
#endif
	}
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

int spill_run_put(spill_writer *w, const spill_rec *r)
{
	if (w->failed) {
		errno = w->failed;
		return -1;
	}
	if (r->len > w->f->max_len)
		w->f->max_len = r->len;
	if (SPILL_BLOCK - w->inlen < SPILL_REC_MAX && writer_flush(w, ZSTD_e_continue))
		return -1;
	unsigned keyed = w->s->key_ranges;
	if (w->s->part_bits) {
		/* One frame per partition (or range), so that a merge can
		 * start at any. */
		uint32_t part = rec_frame(w->s, r->hash);
		if (!w->have_part || part != w->part) {
			if (w->have_part && writer_flush(w, ZSTD_e_end))
				return -1;
			if (index_add(w->f, part, w->bytes))
				return writer_fail(w, NULL, ENOMEM);
			w->part = part;
			w->have_part = 1;
			/* In key order a frame opens with its range, and its
			 * first key shares nothing. */
			if (keyed) {
				w->in[w->inlen++] = 1;
				w->inlen += put_varint(w->in + w->inlen, part_range(w->s, part));
				w->prevlen = 0;
			}
		}
	}
	unsigned char *p = w->in + w->inlen;
	const char *key = r->key;
	size_t len = r->len;
	if (keyed) {
		size_t shared = shared_prefix(w->prev, w->prevlen, key, len);
		/* + 1: allocated from the first key on, empty or not */
		if (mem_reserve(MEM_SPILL, &w->prev, &w->prevcap, len + 1))
			return writer_fail(w, NULL, ENOMEM);
		memcpy(w->prev + shared, key + shared, len - shared);
		w->prevlen = len;
		p += put_varint(p, (uint64_t)(len - shared) + 2);
		p += put_varint(p, shared);
		key += shared;
		len -= shared;
	} else {
		p += put_varint(p, (uint64_t)len + 1);
		put_le64(p, r->hash);
		p += 8;
	}
	p += put_varint(p, r->count);
	w->inlen = (size_t)(p - w->in);
	while (len > 0) {
		size_t room = SPILL_BLOCK - w->inlen;
		if (room == 0) {
			if (writer_flush(w, ZSTD_e_continue))
				return -1;
			room = SPILL_BLOCK;
		}
		size_t k = len < room ? len : room;
		memcpy(w->in + w->inlen, key, k);
		w->inlen += k;
		key += k;
		len -= k;
	}
	w->records++;
	return 0;
}

/* Finish the file: terminator, frame end, close.  Returns 0 or -1. */
static int writer_close(spill_writer *w)
{
	if (w->failed) {
		errno = w->failed;
		return -1;
	}
	if (SPILL_BLOCK - w->inlen < 11 && writer_flush(w, ZSTD_e_continue))
		return -1;
	w->in[w->inlen++] = 0;
	w->inlen += put_varint(w->in + w->inlen, w->records);
	if (writer_flush(w, ZSTD_e_end))
		return -1;
	int fd = w->fd;
	w->fd = -1;
	if (close(fd) != 0 && errno != EINTR)
		return writer_fail(w, NULL, errno);
	w->f->records = w->records;
	spill *s = w->s;
	pthread_mutex_lock(&s->lock);
	s->nwritten++;
	s->bytes += w->bytes;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int spill_run_end(spill_writer *w)
{
	if (writer_close(w)) {
		int e = errno;
		writer_fail(w, NULL, e);
		writer_free(w);
		errno = e;
		return -1;
	}
	spill *s = w->s;
	spill_file *f = w->f;
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	spill_file **v = mem_grow(MEM_SPILL, s->runs, &s->caprun, s->nruns, sizeof *v, 16);
	if (v) {
		s->runs = v;
		s->runs[s->nruns++] = f;
	} else {
		rc = -1;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		w->failed = 0;
		writer_fail(w, NULL, ENOMEM);
	}
	writer_free(w);
	if (rc)
		errno = ENOMEM;
	return rc;
}

spill_file *spill_run_end_file(spill_writer *w)
{
	if (writer_close(w)) {
		int e = errno;
		writer_fail(w, NULL, e);
		writer_free(w);
		errno = e;
		return NULL;
	}
	spill_file *f = w->f;
	writer_free(w);
	return f;
}

void spill_run_abort(spill_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	file_remove(w->f);
	writer_free(w);
}

/* ---- Reading a run ---------------------------------------------------- */

struct spill_reader {
	spill         *s;
	spill_file    *f;
	int            fd;
	int            in_eof;
	int            frame_done;
	ZSTD_DCtx     *dctx;
	unsigned char *in;
	size_t         inpos, inlen;
	unsigned char *buf;          /* plain bytes, grown for long keys */
	size_t         cap, pos, end;
	uint64_t       records;
	int            owns;         /* the file goes when the reader closes */
	int            ranged;       /* reads partitions up to hi_part only */
	int            empty;        /* ranged, and no partition of the range */
	uint32_t       hi_part;
	/* The current record (for the merge). */
	uint64_t       hash, count, major;
	uint64_t       prefix;       /* first 8 key bytes (keysort.h) */
	int            in_range;     /* key order: a range was read */
	const char    *key;
	uint32_t       len;
	char          *kbuf;         /* key order: the key, front coding undone */
	size_t         kcap;
};

static int reader_corrupt(spill_reader *r, const char *why)
{
	spill_fail(r->s, r->f->node->path, why, EIO);
	return -1;
}

/* Read up to n (<= SPILL_READ) compressed bytes.  Returns 0 or -1 (read
 * error). */
static int reader_read(spill_reader *r, size_t n)
{
	ssize_t k;
	do
		k = read(r->fd, r->in, n);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		spill_fail_errno(r->s, r->f->node->path, errno);
		return -1;
	}
	r->inpos = 0;
	r->inlen = (size_t)k;
	r->in_eof = k == 0;
	return 0;
}

/* Make at least need plain bytes available from pos, or all that is left.
 * Returns 0 or -1 (read error, corrupt or truncated data). */
static int reader_fill(spill_reader *r, size_t need)
{
	if (r->end - r->pos >= need)
		return 0;
	if (r->pos) {
		memmove(r->buf, r->buf + r->pos, r->end - r->pos);
		r->end -= r->pos;
		r->pos = 0;
	}
	while (r->end < need) {
		if (r->frame_done) {
			/* A run holds a frame per partition: go on to the next
			 * one, if there is more. */
			if (r->inpos == r->inlen && !r->in_eof && reader_read(r, SPILL_READ))
				return -1;
			if (r->inpos == r->inlen)
				break;
			r->frame_done = 0;
		}
		/* Grow for a long key as its bytes arrive, so that a corrupt
		 * length costs no more memory than the data there is. */
		if (r->end == r->cap) {
			size_t cap = r->cap * 2 < need ? r->cap * 2 : need;
			unsigned char *b = mem_realloc(MEM_SPILL, r->buf, r->cap, cap);
			if (!b) {
				spill_fail_errno(r->s, r->s->tmpdir, ENOMEM);
				return -1;
			}
			r->buf = b;
			r->cap = cap;
		}
		if (r->inpos == r->inlen && !r->in_eof && reader_read(r, SPILL_READ))
			return -1;
		if (r->inpos == r->inlen && r->in_eof)
			return reader_corrupt(r, "truncated run file");
		ZSTD_inBuffer ib = { r->in, r->inlen, r->inpos };
		ZSTD_outBuffer ob = { r->buf, r->cap, r->end };
		size_t ret = ZSTD_decompressStream(r->dctx, &ob, &ib);
		if (ZSTD_isError(ret) && ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation) {
			/* Out of memory: not a run spoilt on the disk. */
			spill_fail_errno(r->s, r->s->tmpdir, ENOMEM);
			return -1;
		}
		if (ZSTD_isError(ret))
			return reader_corrupt(r, "corrupt run file");
		r->inpos = ib.pos;
		r->end = ob.pos;
		if (ret == 0)
			r->frame_done = 1;
	}
	return 0;
}

/* Parse a varint from p (avail bytes).  Returns its length or 0. */
static size_t get_varint(const unsigned char *p, size_t avail, uint64_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < avail && i < 10; i++) {
		uint64_t b = p[i] & 0x7f;
		if (i == 9 && b > 1)
			return 0;
		x |= b << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

/* The run ended: check that it ended exactly here.  Returns 0 or -1. */
static int reader_check_end(spill_reader *r)
{
	if (reader_fill(r, r->end - r->pos + 1))
		return -1;
	if (r->end != r->pos || !r->frame_done)
		return reader_corrupt(r, "corrupt run file (data after the end)");
	if (r->inpos == r->inlen && reader_read(r, 1))
		return -1;
	if (r->inpos != r->inlen)
		return reader_corrupt(r, "corrupt run file (data after the frame)");
	return 0;
}

/* Read the next record into r's current one.  1, 0 at the end, -1. */
static int reader_next(spill_reader *r)
{
	if (r->empty)
		return 0;
	spill *s = r->s;
	unsigned keyed = s->key_ranges;
	const unsigned char *p;
	size_t avail, n;
	uint64_t lenp1, count;
	for (;;) {
		if (reader_fill(r, SPILL_REC_MAX))
			return -1;
		p = r->buf + r->pos;
		avail = r->end - r->pos;
		n = get_varint(p, avail, &lenp1);
		if (n == 0)
			return reader_corrupt(r, avail ? "corrupt run file" : "truncated run file");
		if (!keyed || lenp1 != 1)
			break;
		/* Key order: a frame opens with its range, whose first
		 * partition stands for the records' hash from here on. */
		uint64_t range;
		size_t m = get_varint(p + n, avail - n, &range);
		if (m == 0 || range >= keyed)
			return reader_corrupt(r, "corrupt run file");
		uint32_t first = spill_range_start(1u << s->part_bits, keyed, (unsigned)range);
		if (r->ranged && first >= r->hi_part)
			return 0;
		r->pos += n + m;
		r->major = range;
		r->hash = (uint64_t)first << (64 - s->part_bits);
		r->in_range = 1;
		r->len = 0;   /* the frame's first key shares nothing */
	}
	if (lenp1 == 0 && r->ranged)
		return 0;   /* the terminator: the counts cover the whole run */
	if (lenp1 == 0) {
		uint64_t nrec;
		size_t m = get_varint(p + n, avail - n, &nrec);
		if (m == 0 || nrec != r->records || nrec != r->f->records)
			return reader_corrupt(r, "corrupt run file (record count)");
		r->pos += n + m;
		return reader_check_end(r) ? -1 : 0;
	}
	/* The bytes before the count: the hash, or in key order the length
	 * of the prefix shared with the frame's previous key. */
	size_t hbytes = 8;
	uint64_t shared = 0;
	if (keyed) {
		hbytes = r->in_range ? get_varint(p + n, avail - n, &shared) : 0;
		if (hbytes == 0 || shared > r->len || lenp1 - 2 > UINT32_MAX - shared)
			return reader_corrupt(r, "corrupt run file");
	} else {
		if (lenp1 - 1 > UINT32_MAX || avail - n < hbytes + 1)
			return reader_corrupt(r, "corrupt run file");
		uint64_t hash = get_le64(p + n);
		if (r->ranged && rec_part(s, hash) >= r->hi_part)
			return 0;
		r->hash = hash;
		r->major = hash;
	}
	size_t m = get_varint(p + n + hbytes, avail - n - hbytes, &count);
	if (m == 0)
		return reader_corrupt(r, "corrupt run file");
	r->pos += n + hbytes + m;
	size_t len = (size_t)(lenp1 - 1 - (keyed ? 1 : 0));
	if (reader_fill(r, len))
		return -1;
	if (r->end - r->pos < len)
		return reader_corrupt(r, "truncated run file");
	r->count = count;
	if (keyed) {
		/* Undo the front coding: the suffix after the shared prefix of
		 * the key before, which kbuf still holds. */
		size_t full = (size_t)shared + len;
		if (mem_reserve(MEM_SPILL, &r->kbuf, &r->kcap, full + 1)) {
			spill_fail_errno(s, s->tmpdir, ENOMEM);
			return -1;
		}
		memcpy(r->kbuf + shared, r->buf + r->pos, len);
		r->key = r->kbuf;
		r->len = (uint32_t)full;
	} else {
		r->key = (const char *)r->buf + r->pos;
		r->len = (uint32_t)len;
	}
	r->prefix = keysort_prefix(r->key, r->len);
	r->pos += len;
	r->records++;
	return 1;
}

spill_reader *spill_reader_open(spill_file *f)
{
	spill *s = f->s;
	spill_reader *r = mem_calloc_lines(MEM_SPILL, sizeof *r);
	if (!r) {
		spill_fail_errno(s, s->tmpdir, ENOMEM);
		return NULL;
	}
	r->s = s;
	r->fd = -1;
	r->cap = SPILL_PLAIN;
	r->in = mem_alloc(MEM_SPILL, SPILL_READ);
	r->buf = mem_alloc(MEM_SPILL, r->cap);
	r->dctx = ZSTD_createDCtx_advanced(zmem);
	if (!r->in || !r->buf || !r->dctx ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, SPILL_WINDOW_LOG))) {
		spill_reader_close(r);     /* r->f is not set: the file stays the caller's */
		spill_fail_errno(s, s->tmpdir, ENOMEM);
		return NULL;
	}
	r->fd = open(f->node->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		int e = errno;
		spill_fail_errno(s, f->node->path, e);
		spill_reader_close(r);
		errno = e;
		return NULL;
	}
	r->f = f;
	r->owns = 1;
	return r;
}

/* A reader of the partitions [p0, p1) of f (written with partitions),
 * which leaves the file in place.  Returns NULL on failure. */
static spill_reader *reader_open_range(spill_file *f, uint32_t p0, uint32_t p1)
{
	spill_reader *r = spill_reader_open(f);
	if (!r)
		return NULL;
	r->owns = 0;
	r->ranged = 1;
	r->hi_part = p1;
	size_t i = 0;
	while (i < f->nix && f->ix[i].part < p0)
		i++;
	if (i == f->nix || f->ix[i].part >= p1) {
		r->empty = 1;
		return r;
	}
	if (lseek(r->fd, (off_t)f->ix[i].off, SEEK_SET) < 0) {
		int e = errno;
		spill_fail_errno(f->s, f->node->path, e);
		spill_reader_close(r);
		errno = e;
		return NULL;
	}
	return r;
}

int spill_reader_next(spill_reader *r, spill_rec *rec)
{
	int rc = reader_next(r);
	if (rc == 1) {
		rec->hash = r->hash;
		rec->count = r->count;
		rec->key = r->key;
		rec->len = r->len;
	}
	if (rc < 0)
		errno = EIO;
	return rc;
}

void spill_reader_close(spill_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->owns)
		file_remove(r->f);
	ZSTD_freeDCtx(r->dctx);
	mem_free(MEM_SPILL, r->in, SPILL_READ);
	mem_free(MEM_SPILL, r->buf, r->cap);
	mem_free(MEM_SPILL, r->kbuf, r->kcap);
	mem_free(MEM_SPILL, r, sizeof *r);
}

/* ---- The merge -------------------------------------------------------- */

struct spill_merge {
	spill         *s;
	spill_reader **heap;        /* sources with a current record, min first */
	size_t         nheap;
	spill_reader **pending;     /* sources whose record was handed out */
	size_t         npending;
	int            root_out;    /* the root's record was handed out */
	spill_reader **all;         /* every source still open */
	size_t         nall;
	size_t         nsrc;        /* sources at the start: sizes the arrays */
	int            failed;
};

/* (hash or range, key bytes) order, a shorter key before a longer one it
 * prefixes. */
static int rec_less(const spill_reader *a, const spill_reader *b)
{
	if (a->major != b->major)
		return a->major < b->major;
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix;
	return keysort_bytes_cmp(a->key, a->len, b->key, b->len) < 0;
}

static int rec_equal(const spill_reader *a, const spill_reader *b)
{
	return a->prefix == b->prefix && a->len == b->len && a->hash == b->hash &&
		memcmp(a->key, b->key, a->len) == 0;
}

static void heap_push(spill_merge *m, spill_reader *r)
{
	size_t i = m->nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!rec_less(r, m->heap[up]))
			break;
		m->heap[i] = m->heap[up];
		i = up;
	}
	m->heap[i] = r;
}

/* Move heap[i] down to its place. */
static void heap_down(spill_merge *m, size_t i)
{
	spill_reader *x = m->heap[i];
	size_t n = m->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && rec_less(m->heap[c + 1], m->heap[c]))
			c++;
		if (!rec_less(m->heap[c], x))
			break;
		m->heap[i] = m->heap[c];
		i = c;
	}
	m->heap[i] = x;
}

/* Take heap[i] out; every other entry comes after it (i is the root or a
 * child of a root that ties with it). */
static spill_reader *heap_take(spill_merge *m, size_t i)
{
	spill_reader *x = m->heap[i];
	m->heap[i] = m->heap[--m->nheap];
	if (i < m->nheap)
		heap_down(m, i);
	return x;
}

/* Drop a source that reached its end: its file goes at once. */
static void merge_drop(spill_merge *m, spill_reader *r)
{
	for (size_t i = 0; i < m->nall; i++)
		if (m->all[i] == r) {
			m->all[i] = m->all[--m->nall];
			break;
		}
	spill_reader_close(r);
}

/* Advance source r; push it back or drop it.  Returns 0 or -1. */
static int merge_advance(spill_merge *m, spill_reader *r)
{
	int rc = reader_next(r);
	if (rc < 0)
		return -1;
	if (rc == 0)
		merge_drop(m, r);
	else
		heap_push(m, r);
	return 0;
}

/* Open a merge of files[0..n).  Whole files are taken over: removed as
 * they are consumed, or at close, or on failure.  ranged: only the
 * partitions [p0, p1), and the files stay the caller's.  Returns NULL on
 * failure. */
static spill_merge *merge_open(spill *s, spill_file **files, size_t n, int ranged,
	uint32_t p0, uint32_t p1)
{
	spill_merge *m = mem_calloc_lines(MEM_SPILL, sizeof *m);
	size_t bytes;
	spill_reader **v = NULL;
	if (m && !mem_mul(n ? n : 1, 3 * sizeof *v, &bytes))
		v = mem_alloc(MEM_SPILL, bytes);
	if (!v) {
		mem_free(MEM_SPILL, m, sizeof *m);
		for (size_t i = 0; i < n && !ranged; i++)
			file_remove(files[i]);
		spill_fail_errno(s, s->tmpdir, ENOMEM);
		return NULL;
	}
	m->s = s;
	m->nsrc = n;
	m->heap = v;
	m->pending = v + (n ? n : 1);
	m->all = v + 2 * (n ? n : 1);
	size_t i;
	for (i = 0; i < n; i++) {
		spill_reader *r = ranged ? reader_open_range(files[i], p0, p1)
			: spill_reader_open(files[i]);
		if (!r)
			break;
		m->all[m->nall++] = r;
	}
	if (i < n) {
		int e = errno;
		for (size_t j = i; j < n && !ranged; j++)
			file_remove(files[j]);
		for (size_t j = 0; j < m->nall; j++)
			spill_reader_close(m->all[j]);
		mem_free(MEM_SPILL, v, bytes);
		mem_free(MEM_SPILL, m, sizeof *m);
		errno = e;
		return NULL;
	}
	/* Each source is pending until it has been read once. */
	for (i = 0; i < n; i++)
		m->pending[m->npending++] = m->all[i];
	return m;
}

void spill_merge_close(spill_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nall; i++)
		spill_reader_close(m->all[i]);
	mem_free(MEM_SPILL, m->heap, (m->nsrc ? m->nsrc : 1) * 3 * sizeof *m->heap);
	mem_free(MEM_SPILL, m, sizeof *m);
}

static int merge_step(spill_merge *m, spill_rec *r)
{
	if (m->failed) {
		errno = EIO;
		return -1;
	}
	/* The root's record went out last time: the root reads on in place
	 * and sinks to its place, one walk down instead of a pop and a push. */
	if (m->root_out) {
		m->root_out = 0;
		spill_reader *root = m->heap[0];
		int rc = reader_next(root);
		if (rc < 0) {
			m->failed = 1;
			errno = EIO;
			return -1;
		}
		if (rc)
			heap_down(m, 0);
		else
			merge_drop(m, heap_take(m, 0));
	}
	for (size_t i = 0; i < m->npending; i++)
		if (merge_advance(m, m->pending[i])) {
			m->failed = 1;
			errno = EIO;
			return -1;
		}
	m->npending = 0;
	if (m->nheap == 0)
		return 0;
	spill_reader *top = m->heap[0];
	uint64_t sum = top->count;
	m->root_out = 1;
	/* The same key in other runs: the least of the rest, so a child of
	 * the root. */
	for (;;) {
		size_t c = 1;
		if (c >= m->nheap)
			break;
		if (c + 1 < m->nheap && rec_less(m->heap[c + 1], m->heap[c]))
			c++;
		if (!rec_equal(m->heap[c], top))
			break;
		spill_reader *x = heap_take(m, c);
		if (__builtin_add_overflow(sum, x->count, &sum)) {
			spill_fail(m->s, m->s->tmpdir, "count overflow in merge", EOVERFLOW);
			m->failed = 1;
			return -1;
		}
		m->pending[m->npending++] = x;
	}
	r->hash = top->hash;
	r->count = sum;
	r->key = top->key;
	r->len = top->len;
	return 1;
}

/* Merge files[0..n) into one new run (a pass step).  Returns it or NULL. */
static spill_file *merge_into_run(spill *s, spill_file **files, size_t n)
{
	spill_merge *m = merge_open(s, files, n, 0, 0, 0);
	if (!m)
		return NULL;
	spill_writer *w = spill_run_begin(s);
	if (!w) {
		spill_merge_close(m);
		return NULL;
	}
	spill_rec r;
	int rc;
	while ((rc = merge_step(m, &r)) == 1)
		if (spill_run_put(w, &r))
			break;
	if (rc != 0) {
		int e = errno;
		spill_run_abort(w);
		spill_merge_close(m);
		errno = e;
		return NULL;
	}
	spill_merge_close(m);
	return spill_run_end_file(w);
}

/* Take every run written so far; *n of them in *files (*cap allocated). */
static spill_file **take_runs(spill *s, size_t *n, size_t *cap)
{
	pthread_mutex_lock(&s->lock);
	spill_file **files = s->runs;
	*n = s->nruns;
	*cap = s->caprun;
	s->runs = NULL;
	s->nruns = s->caprun = 0;
	pthread_mutex_unlock(&s->lock);
	return files;
}

/* A reader of f: its zstd context and buffers, which grow to hold its
 * longest key (twice in key order, the key before kept to undo the front
 * coding). */
static uint64_t reader_cost(const spill_file *f)
{
	return SPILL_READER_COST + 2 * (uint64_t)f->max_len;
}

size_t spill_group(spill_file *const *files, size_t n, unsigned fan, uint64_t mem)
{
	size_t g = 0;
	uint64_t cost = 0;
	while (g < n && g < fan) {
		uint64_t c = reader_cost(files[g]);
		if (g >= 2 && mem && cost + c > mem)
			break;
		cost += c;
		g++;
	}
	return g;
}

void spill_share(const spill *s, unsigned ways, unsigned *fan, uint64_t *mem)
{
	ways = ways ? ways : 1;
	*fan = s->fanin / ways < 2 ? 2 : s->fanin / ways;
	*mem = s->merge_mem / ways;
}

/* Passes over groups of runs (fan at most, their readers within mem) until
 * the runs left fit one merge.  Returns 0, or -1 with every file removed
 * and files freed. */
static int merge_passes(spill *s, spill_file **files, size_t *np, size_t cap, unsigned fan,
	uint64_t mem)
{
	size_t n = *np;
	while (spill_group(files, n, fan, mem) < n) {
		size_t out = 0;
		for (size_t i = 0, g; i < n; i += g) {
			g = spill_group(files + i, n - i, fan, mem);
			spill_file *f = g == 1 ? files[i] : merge_into_run(s, files + i, g);
			if (!f) {
				int e = errno;
				for (size_t j = i + g; j < n; j++)
					file_remove(files[j]);
				for (size_t j = 0; j < out; j++)
					file_remove(files[j]);
				mem_free(MEM_SPILL, files, cap * sizeof *files);
				errno = e;
				return -1;
			}
			files[out++] = f;
		}
		n = out;
		s->passes++;
	}
	if (n)
		s->passes++;
	*np = n;
	return 0;
}

spill_merge *spill_merge_open(spill *s)
{
	size_t n, cap;
	spill_file **files = take_runs(s, &n, &cap);
	if (merge_passes(s, files, &n, cap, s->fanin, s->merge_mem))
		return NULL;
	spill_merge *m = merge_open(s, files, n, 0, 0, 0);
	mem_free(MEM_SPILL, files, cap * sizeof *files);
	return m;
}

/* ---- Merging ranges of partitions in parallel ------------------------ */

struct spill_ranges {
	spill       *s;
	spill_file **files;
	size_t       n, cap;
};

void spill_set_partitions(spill *s, unsigned bits)
{
	s->part_bits = bits <= 24 ? bits : 24;
}

void spill_set_key_order(spill *s, unsigned nranges)
{
	unsigned nparts = 1u << s->part_bits;
	s->key_ranges = !s->part_bits ? 0 : nranges < nparts ? nranges : nparts;
}

unsigned spill_key_ranges(const spill *s)
{
	return s->key_ranges;
}

spill_ranges *spill_ranges_open(spill *s, unsigned nmerges)
{
	if (!s->part_bits) {
		errno = EINVAL;
		return NULL;
	}
	spill_ranges *g = mem_calloc(MEM_SPILL, 1, sizeof *g);
	if (!g) {
		spill_fail_errno(s, s->tmpdir, ENOMEM);
		return NULL;
	}
	size_t n, cap;
	spill_file **files = take_runs(s, &n, &cap);
	/* The merges read at once: together within the fan-in and the memory. */
	unsigned fan;
	uint64_t mem;
	spill_share(s, nmerges, &fan, &mem);
	if (merge_passes(s, files, &n, cap, fan, mem)) {
		mem_free(MEM_SPILL, g, sizeof *g);
		return NULL;
	}
	g->s = s;
	g->files = files;
	g->n = n;
	g->cap = cap;
	return g;
}

spill_merge *spill_ranges_merge(spill_ranges *g, unsigned p0, unsigned p1)
{
	return merge_open(g->s, g->files, g->n, 1, p0, p1);
}

void spill_ranges_close(spill_ranges *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		file_remove(g->files[i]);
	mem_free(MEM_SPILL, g->files, g->cap * sizeof *g->files);
	mem_free(MEM_SPILL, g, sizeof *g);
}

int spill_merge_next(spill_merge *m, spill_rec *r)
{
	return merge_step(m, r);
}
