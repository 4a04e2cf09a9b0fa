# tally - build, test, benchmark, install.
#
#   make                build/tally
#   make run            count the sample in data/
#   make check          unit tests (Check), the library's API and command-line tests
#   make asan | tsan    the same under AddressSanitizer+UBSan / ThreadSanitizer
#   make bench          benchmarks against peers (tests/bench)
#   make fuzz           libFuzzer targets, FUZZ_SECONDS each (needs clang)
#   make install PREFIX=/usr/local

PREFIX  ?= /usr/local
BUILD   ?= build
CC      ?= cc
LD      ?= ld
OBJCOPY ?= objcopy
PKGS     = libxxhash libzstd libutf8proc
SAN     ?=
FUZZ_SECONDS ?= 60

# Each library and the Debian package that provides it.
DEB_libxxhash   = libxxhash-dev
DEB_libzstd     = libzstd-dev
DEB_libutf8proc = libutf8proc-dev
DEB_check       = check

PKG_CONFIG ?= pkg-config
HAVE_PKG_CONFIG := $(shell command -v $(PKG_CONFIG) 2>/dev/null)
ifeq ($(HAVE_PKG_CONFIG),)
$(error pkg-config not found: install the Debian package pkg-config (apt-get install pkg-config))
endif
define require
$(if $(shell $(PKG_CONFIG) --exists $(1) && echo yes),,$(error $(1) not found by pkg-config: install the Debian package $(DEB_$(1)) (apt-get install $(DEB_$(1)))))
endef
$(foreach p,$(PKGS),$(call require,$(p)))

WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wvla
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS  = -std=c11 $(WARN) $(CFLAGS) $(SAN) -pthread -D_GNU_SOURCE -Iinclude -Isrc \
              $(shell $(PKG_CONFIG) --cflags $(PKGS))
# xxHash is used inline (XXH_INLINE_ALL), so it is not linked.
LIBS     = $(shell $(PKG_CONFIG) --libs libzstd libutf8proc) -pthread -lm
LDFLAGS ?=

LIB_SRC  = $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ  = $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRC = $(wildcard tests/unit/helpers/*.c)

.PHONY: all run check unit api cli asan tsan ubsan bench install uninstall clean fuzz

all: $(BUILD)/tally

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) include/tally.h | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

# The library a program links: one object whose only global symbols are
# the API's (tally_*), so that the engine's internal names (table_create,
# stats_now...) cannot clash with the program's.  The unit tests, which
# test the internals, link the objects as they are.
$(BUILD)/libtally.a: $(LIB_OBJ)
	rm -f $@ $(BUILD)/obj/tally-lib.o
	$(LD) -r -o $(BUILD)/obj/tally-lib.o $^
	$(OBJCOPY) -w --keep-global-symbol='tally_*' $(BUILD)/obj/tally-lib.o
	ar rcs $@ $(BUILD)/obj/tally-lib.o

$(BUILD)/libtally-internal.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# The command line uses the public API only.
$(BUILD)/tally: $(BUILD)/obj/main.o $(BUILD)/libtally.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS   = $(shell $(PKG_CONFIG) --libs check)

$(BUILD)/tests/%: tests/unit/%.c $(HELPER_SRC) $(BUILD)/libtally-internal.a $(wildcard tests/unit/*.h) | $(BUILD)/tests
	$(call require,check)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(HELPER_SRC) \
		$(BUILD)/libtally-internal.a $(CHECK_LIBS) $(LIBS)

run: $(BUILD)/tally
	$(BUILD)/tally --top 20 --stats data/kjv-genesis.txt

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

cli: $(BUILD)/tally
	@sh tests/cli/run.sh $(BUILD)/tally

# The library exports the API's names only, and its header serves C++
# (checked where a C++ compiler is installed: g++ is not among the packages
# README installs; CI's build-essential has it).
api: $(BUILD)/libtally.a | $(BUILD)/tests
	@nm -g --defined-only $(BUILD)/libtally.a | awk 'NF == 3 && $$3 !~ /^tally_/ { print "libtally.a exports " $$3; bad = 1 } END { exit bad }'
	@if command -v $(CXX) > /dev/null 2>&1; then \
		echo "$(CXX) tests/unit/cxx_api.cpp"; \
		$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic $(SAN) -pthread -Iinclude $(LDFLAGS) \
			-o $(BUILD)/tests/cxx_api tests/unit/cxx_api.cpp $(BUILD)/libtally.a $(LIBS) \
			&& $(BUILD)/tests/cxx_api; \
	else \
		echo "SKIP C++ use of the header: no $(CXX)"; \
	fi

check: unit api cli

# Sanitizer builds live in their own directories and run the same suite.
asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check
ubsan:
	$(MAKE) BUILD=build-ubsan OPT=-O1 SAN="-fsanitize=undefined -fno-sanitize-recover=all" check
# ThreadSanitizer: the threaded unit tests and the command-line tests.
tsan:
	$(MAKE) BUILD=build-tsan OPT=-O1 SAN="-fsanitize=thread" TSAN_OPTIONS="halt_on_error=1" check

bench: $(BUILD)/tally
	sh tests/bench/run.sh $(BUILD)/tally

fuzz:
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

install: $(BUILD)/tally
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/tally $(DESTDIR)$(PREFIX)/bin/tally
	install -m 644 man/tally.1 $(DESTDIR)$(PREFIX)/share/man/man1/tally.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/tally $(DESTDIR)$(PREFIX)/share/man/man1/tally.1

clean:
	rm -rf build build-asan build-ubsan build-tsan
