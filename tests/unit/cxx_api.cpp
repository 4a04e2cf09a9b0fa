// cxx_api.cpp - the public header as a C++ program includes it: the API's
// names link unmangled, and a count comes out right.
#include <cstdio>
#include <cstring>

#include "tally.h"

int main()
{
	tally_config cfg;
	tally_config_init(&cfg);
	cfg.threads = 1;
	char err[256];
	tally_engine *e = tally_create(&cfg, err, sizeof err, nullptr);
	if (!e) {
		std::fprintf(stderr, "cxx_api: %s\n", err);
		return 1;
	}
	static const char text[] = "b a b";
	tally_item it;
	int ok = tally_add_memory(e, text, sizeof text - 1, "text") == 0
		&& tally_finish(e) == 0
		&& tally_next(e, &it) == 1 && it.len == 1 && std::memcmp(it.key, "b", 1) == 0
		&& it.count == 2
		&& tally_next(e, &it) == 1 && it.count == 1
		&& tally_next(e, &it) == 0
		&& tally_end_output(e, 0, 1) == 0;
	tally_destroy(e);
	if (!ok) {
		std::fprintf(stderr, "cxx_api: wrong counts\n");
		return 1;
	}
	return 0;
}
