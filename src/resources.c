/*
 * resources.c - the resources a run may use: the default memory budget (RAM,
 * cgroup limit, rlimits), the default thread count, and size arguments.
 */
#include "resources.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tally.h"

/* Read a small file into buf (NUL-terminated).  Returns 0 or -1. */
static int read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return 0;
}

/* A limit file holds a number or "max"; returns 0 for none. */
static uint64_t read_limit(const char *path)
{
	char buf[64];
	if (read_small(path, buf, sizeof buf))
		return 0;
	if (!isdigit((unsigned char)buf[0]))
		return 0;
	return strtoull(buf, NULL, 10);
}

/* The smallest memory limit of this process's cgroup (v2 memory.max or v1
 * memory.limit_in_bytes), walking up to the root; 0 for none. */
static uint64_t cgroup_limit(const char *root)
{
	char cg[4096], path[8192], *save = NULL;
	if (read_small("/proc/self/cgroup", cg, sizeof cg))
		return 0;
	uint64_t best = 0;
	for (char *line = strtok_r(cg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* "0::/path" (v2) or "N:memory:/path" or "N:cpu,memory:/path" (v1). */
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrl = c1 + 1, *rel = c2 + 1, *file, *sub;
		if (*ctrl == '\0') {
			file = "memory.max";
			sub = "";
		} else if (strstr(ctrl, "memory")) {
			file = "memory.limit_in_bytes";
			sub = "/memory";
		} else {
			continue;
		}
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", rel);
		/* A limit anywhere above us applies too: walk up to the root. */
		for (;;) {
			snprintf(path, sizeof path, "%s%s%s/%s", root, sub, dir, file);
			uint64_t v = read_limit(path);
			/* v1 reports "no limit" as a huge number. */
			if (v && v < (UINT64_C(1) << 60) && (!best || v < best))
				best = v;
			char *slash = strrchr(dir, '/');
			if (!slash)
				break;
			*slash = '\0';
		}
	}
	return best;
}

uint64_t tally_default_memory(const char *cgroup_root)
{
	if (!cgroup_root)
		cgroup_root = getenv("TALLY_CGROUP_ROOT");
	if (!cgroup_root || !*cgroup_root)
		cgroup_root = "/sys/fs/cgroup";
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	uint64_t m = (pages > 0 && psize > 0) ? (uint64_t)pages * (uint64_t)psize : UINT64_C(1) << 32;
	uint64_t cg = cgroup_limit(cgroup_root);
	if (cg && cg < m)
		m = cg;
	uint64_t as = resources_rlimit(RLIMIT_AS), data = resources_rlimit(RLIMIT_DATA);
	if (as < m)
		m = as;
	if (data < m)
		m = data;
	return m / 2;
}

/* Address space a thread takes beyond the budget: its stack, and buffers
 * (two I/O chunks, a key and an n-gram of up to 1 MiB each by default);
 * and what the process takes whatever the workers (the program, the
 * libraries; the sampler's or the zstd decoder's stack is counted as one
 * thread more).  Measured (VmPeak, -m 4M, 8 MiB stacks): 23 MiB with one
 * worker, 104 MiB with 8, 329 MiB with 32. */
#define THREAD_BUFFERS (UINT64_C(4) << 20)
#define PROCESS_FIXED  (UINT64_C(12) << 20)

uint64_t resources_default_budget(unsigned threads)
{
	uint64_t m = tally_default_memory(NULL);
	uint64_t stack = resources_rlimit(RLIMIT_STACK);
	if (stack == UINT64_MAX || stack == 0)
		stack = UINT64_C(8) << 20;
	uint64_t taken = PROCESS_FIXED + ((uint64_t)threads + 1) * (stack + THREAD_BUFFERS);
	/* Stacks count under RLIMIT_DATA too (private writable mappings). */
	static const int limits[] = { RLIMIT_AS, RLIMIT_DATA };
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
		uint64_t lim = resources_rlimit(limits[i]);
		if (lim == UINT64_MAX)
			continue;
		/* Half the limit, as tally_default_memory says, while the
		 * threads take less than a quarter of it; beyond, two thirds of
		 * what they leave (the same at a quarter), the rest for the
		 * merge's and the sort's buffers. */
		uint64_t left = lim > taken ? (lim - taken) / 3 * 2 : 0;
		if (left < m)
			m = left;
	}
	return m;
}

unsigned resources_default_threads(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n > 0)
			return (unsigned)n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

int tally_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && end[0] == 'i' && end[1] == 'B')
		end += 2;
	else if (end[0] == 'B')
		end++;
	if (*end != '\0')
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}
