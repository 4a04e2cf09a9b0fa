/*
 * linecut.h - the cut the input tests use: records are lines.  Shared by
 * test_input.c and the input fuzz target (tests/fuzz/fuzz_input.c).
 */
#ifndef TALLY_TEST_LINECUT_H
#define TALLY_TEST_LINECUT_H

#include <stddef.h>
#include <stdint.h>

/* The input_cut_fn contract (input.h): the longest prefix that ends with a
 * '\n'; all of it at eof; all of it when full and there is none, the next
 * chunk then starting inside a line (cont 1). */
static inline size_t test_line_cut(const void *ctx, const char *buf, size_t len, int eof,
	int full, uint32_t cont_in, uint32_t *cont)
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
		return len;
	}
	return 0;
}

#endif
