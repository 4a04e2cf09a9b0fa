/*
 * linecut.h - the cut the input tests use: records are lines.  Shared by
 * test_input.c and the input fuzz target (tests/fuzz/fuzz_input.c).
 */
#ifndef TALLY_TEST_LINECUT_H
#define TALLY_TEST_LINECUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "input.h"

/* The input_cut_fn contract (input.h): the longest prefix that ends with a
 * '\n'; all of it at eof; all of it when full and there is none, the next
 * chunk then starting inside a line (cont 1) with the last bytes of this
 * one as its prefix (as many as pre->out holds, up to 8). */
static inline size_t test_line_cut(const void *ctx, const char *buf, size_t len, int eof,
	int full, uint32_t cont_in, uint32_t *cont, input_prefix *pre)
{
	(void)ctx;
	(void)cont_in;
	*cont = 0;
	if (eof)
		return len;
	for (size_t i = len; i > 0; i--)
		if (buf[i - 1] == '\n')
			return i;
	if (full) {
		*cont = 1;
		size_t n = pre->out_cap < 8 ? pre->out_cap : 8;
		n = n < len ? n : len;
		if (n)
			memcpy(pre->out, buf + len - n, n);
		pre->out_len = n;
		return len;
	}
	return 0;
}

#endif
