/*
 * fuzz_keysort.c - libFuzzer target for the sort of (count, key) items.
 *
 * Built with the sort's thresholds lowered (run.sh), so that a few
 * hundred items reach every path.  The first 12 bytes choose the order,
 * the number of items (none to 20000), how many places keys start from,
 * and four counts; the rest is a pool of bytes that keys are cut from (at
 * most 40 bytes long past 2000 items).  A generator seeded from the input
 * picks each key's start and length and its count among the four, so the
 * fuzzer shapes how much keys share (a pool of one repeated byte gives
 * keys alike in long beginnings, equal counts give one word that most
 * items share).  The sort must keep the items (an order-free digest of
 * them is the same after it), leave equal keys with equal prefixes, and
 * put every item after the one before it in keysort_before's order once
 * keysort_prefixes has set every prefix back.  Sanitizers catch memory
 * errors on the way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keysort.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An order-free digest of the items: they are the same multiset before
 * and after the sort. */
static uint64_t digest(const keysort_item *v, size_t n)
{
	uint64_t sum = 0, x = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = 0xcbf29ce484222325ull ^ v[i].count;
		for (uint32_t j = 0; j < v[i].len; j++)
			h = (h ^ (unsigned char)v[i].key[j]) * 0x100000001b3ull;
		h = (h ^ v[i].len) * 0x9e3779b97f4a7c15ull;
		sum += h;
		x ^= h ^ (h >> 29);
	}
	return sum ^ (x << 1);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Sizes around the sort's thresholds, which run.sh sets lower than a
	 * build's: insertion sort below 65 items, sampling from 128, two
	 * bytes a pass from 512. */
	static const size_t sizes[16] = { 0, 1, 2, 17, 64, 65, 100, 127, 128, 300, 511, 512, 1000,
		2000, 5000, 20000 };
	if (size < 13)
		return 0;
	int bycount = data[0] & 1;
	size_t n = sizes[(data[0] >> 1) & 15];
	size_t maxlen = n > 2000 ? 40 : SIZE_MAX;
	unsigned starts = 1 + data[2];          /* places keys start from */
	uint64_t counts[4];
	for (int i = 0; i < 4; i++) {
		/* Small counts mostly, with a high byte set now and then. */
		uint64_t c = data[3 + 2 * i] | (uint64_t)data[4 + 2 * i] << 8;
		counts[i] = data[4 + 2 * i] & 0x80 ? c << (data[3 + 2 * i] & 47) : c & 0xff;
	}
	const char *pool = (const char *)data + 12;
	size_t plen = size - 12;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ull;
	if (!seed)
		seed = 1;

	keysort_item *v = malloc((n ? n : 1) * sizeof *v);
	if (!v)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t at = (size_t)(next_rand(&seed) % starts) % plen;
		size_t len = (size_t)(next_rand(&seed) % (plen - at + 1));
		if (len > maxlen)
			len = maxlen - len % 8;
		/* Skewed counts: the first one three times in four. */
		uint64_t r = next_rand(&seed);
		uint64_t count = r % 4 ? counts[0] : counts[(r >> 8) % 4];
		v[i] = (keysort_item){ count, keysort_prefix(pool + at, len), pool + at, (uint32_t)len };
	}
	uint64_t before = digest(v, n);
	if (bycount)
		keysort_by_count(v, n);
	else
		keysort_by_key(v, n);
	if (digest(v, n) != before) {
		fprintf(stderr, "the sort lost or repeated items (%zu, bycount %d)\n", n, bycount);
		abort();
	}
	for (size_t i = 1; i < n; i++)
		if (v[i].len == v[i - 1].len && !memcmp(v[i].key, v[i - 1].key, v[i].len) &&
		    v[i].prefix != v[i - 1].prefix) {
			fprintf(stderr, "items %zu and %zu: equal keys, prefixes differ\n", i - 1, i);
			abort();
		}
	keysort_prefixes(v, n);
	for (size_t i = 0; i < n; i++) {
		if (v[i].prefix != keysort_prefix(v[i].key, v[i].len)) {
			fprintf(stderr, "item %zu: prefix not set back\n", i);
			abort();
		}
		if (i && keysort_before(&v[i], &v[i - 1], bycount)) {
			fprintf(stderr, "item %zu of %zu out of order (bycount %d)\n", i, n, bycount);
			abort();
		}
	}
	free(v);
	return 0;
}
