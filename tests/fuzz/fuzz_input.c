/*
 * fuzz_input.c - libFuzzer target for the input layer's zstd decoding.
 *
 * The first byte chooses a chunk size (from 64 bytes to 1 MiB, so frames are
 * decoded both straight into the chunks and through zstd's own window) and
 * how many chunks the caller holds; the rest is a file, zstd or not.  It is
 * read through input_open and checked against a reference: the file itself
 * when it is not zstd, else zstd's streaming decoder frame by frame
 * (skippable frames skipped, windows up to 1 GiB, no compressed block of
 * size 0, declared sizes held to).
 * When the reference decodes the stream, tally must give the same bytes;
 * when it refuses it, tally must report an error.  Every chunk must end at a newline unless it
 * is the last or was split by force, and stay intact until released.
 * Sanitizers catch memory errors on the way.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zstd.h>

#include "input.h"
#include "../unit/linecut.h"
#include "fzbytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One frame, src[0..n) exactly, through zstd's streaming decoder. */
static int fz_frame(ZSTD_DCtx *d, const uint8_t *src, size_t n, fz_bytes *out,
	uint64_t *decoded)
{
	ZSTD_inBuffer in = { src, n, 0 };
	char buf[1 << 16];
	size_t ret = 1;
	*decoded = 0;
	ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
	while (ret != 0) {
		ZSTD_outBuffer o = { buf, sizeof buf, 0 };
		size_t before = in.pos;
		ret = ZSTD_decompressStream(d, &o, &in);
		if (ZSTD_isError(ret))
			return -1;
		fz_append(out, buf, o.pos);
		*decoded += o.pos;
		if (ret != 0 && in.pos == before && o.pos == 0)
			return -1;   /* truncated */
	}
	return in.pos == n ? 0 : -1;
}

/* Whether a whole frame (n bytes, its header hsize) has a compressed block
 * of size 0, which the format does not allow (RFC 8878) but zstd's
 * block-by-block decoding takes for an empty block. */
static int fz_empty_block(const uint8_t *f, size_t n, size_t hsize)
{
	for (size_t at = hsize; at + 3 <= n; ) {
		uint32_t v = (uint32_t)f[at] | (uint32_t)f[at + 1] << 8 | (uint32_t)f[at + 2] << 16;
		uint32_t type = (v >> 1) & 3, size = v >> 3;
		if (type == 2 && size == 0)
			return 1;
		if (v & 1)
			break;
		at += 3 + (type == 1 ? 1 : size);
	}
	return 0;
}

/* The reference: frame by frame, skippable frames skipped, windows up to
 * 1 GiB, no empty compressed block, and each frame exactly as long as its
 * header says when it says.  0 when the whole stream decodes. */
static int fz_reference(const uint8_t *src, size_t n, fz_bytes *out)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 30);
	int rc = 0;
	for (size_t pos = 0; pos < n && rc == 0; ) {
		ZSTD_frameHeader fh;
		size_t r = ZSTD_getFrameHeader(&fh, src + pos, n - pos);
		size_t fsize = ZSTD_findFrameCompressedSize(src + pos, n - pos);
		uint64_t decoded;
		if (ZSTD_isError(r) || r > 0 || ZSTD_isError(fsize))
			rc = -1;
		else if (fh.frameType != ZSTD_skippableFrame &&
				(fh.windowSize > (1ull << 30) ||
				fz_empty_block(src + pos, fsize, fh.headerSize) ||
				fz_frame(d, src + pos, fsize, out, &decoded) < 0 ||
				(fh.frameContentSize != ZSTD_CONTENTSIZE_UNKNOWN &&
				decoded != fh.frameContentSize)))
			rc = -1;
		pos += fsize;
	}
	ZSTD_freeDCtx(d);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[] = { 64, 1000, 4096, 1 << 14, 1 << 16, 1 << 20 };
	if (size < 1)
		return 0;
	size_t chunk = chunks[data[0] % 6];
	unsigned inflight = 1 + (data[0] >> 4) % 4;
	data++;
	size_t n = size - 1;

	int fd = memfd_create("fuzz", 0);
	if (fd < 0 || write(fd, data, n) != (ssize_t)n)
		abort();
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	input_opts o = { .io = TALLY_IO_AUTO, .chunk_size = chunk, .min_capacity = 0,
		.max_inflight = inflight, .cut = test_line_cut, .cut_ctx = NULL };
	char err[512];
	input_source *s = input_open(path, &o, err, sizeof err);
	if (!s)
		abort();

	fz_bytes got = { 0 }, want = { 0 };
	input_chunk held[4];
	size_t at[4];
	unsigned nheld = 0;
	int rc, prev_open = 0;
	for (;;) {
		if (nheld == inflight) {
			if (memcmp(held[0].data, got.p + at[0], held[0].len) != 0)
				abort();   /* a chunk changed before it was released */
			input_release(s, held[0].handle);
			memmove(held, held + 1, (nheld - 1) * sizeof held[0]);
			memmove(at, at + 1, (nheld - 1) * sizeof at[0]);
			nheld--;
		}
		input_chunk c;
		rc = input_next(s, &c, err, sizeof err);
		if (rc <= 0)
			break;
		if (c.len > chunk || (prev_open && c.cont != 1) || (!prev_open && c.cont != 0))
			abort();
		if (c.len == 0) {
			/* Only the end of a stream whose last buffer was split by
			 * force: it carries the split's state, and nothing follows. */
			if (!prev_open)
				abort();
			input_release(s, c.handle);
			rc = input_next(s, &c, err, sizeof err);
			if (rc != 0)
				abort();
			break;
		}
		prev_open = c.data[c.len - 1] != '\n';
		held[nheld] = c;
		at[nheld++] = got.n;
		fz_append(&got, c.data, c.len);
	}
	for (unsigned i = 0; i < nheld; i++) {
		if (memcmp(held[i].data, got.p + at[i], held[i].len) != 0)
			abort();
		input_release(s, held[i].handle);
	}
	int compressed = input_is_compressed(s);
	input_close(s);
	close(fd);

	if (!compressed) {
		if (rc != 0 || got.n != n || (n && memcmp(got.p, data, n) != 0))
			abort();
	} else {
		int ref = fz_reference(data, n, &want);
		if (ref == 0 && (rc != 0 || got.n != want.n || (got.n &&
				memcmp(got.p, want.p, got.n) != 0)))
			abort();   /* zstd decodes it: so must tally, to the same bytes */
		if (ref != 0 && rc == 0)
			abort();   /* zstd refuses it: tally must not count it */
	}
	free(got.p);
	free(want.p);
	return 0;
}
