# faultline build.  Plain make, in the manner of liburing.
#
#   make                  library, tools and tests (release, assertions on)
#   make SAN=asan         same, AddressSanitizer + UBSan, in build-asan/
#   make SAN=tsan         same, ThreadSanitizer, in build-tsan/
#   make fuzz             the fuzzers (clang, libFuzzer + ASan + UBSan, in
#                         build-fuzz/), FUZZ_SECONDS (300) each, one at a time
#   make lab              the README's main command: the lab (LAB_ARGS=...)
#   make demo             build, run the demo
#   make test             the README's test command: all tests, all builds
#   make check            the tests of one build (SAN=... selects it)
#   make check-lockdoc    doc/locking.md names only what src/ has
#   make soak             longer stress runs (not part of make test)
#   make bench            the benchmark (not a test); see BENCHMARKS.md
#   make swapbench        the swap benchmark against the kernel's swap (root)
#   make filebench        the file benchmark against the kernel's mmap (root)
#   make install PREFIX=/usr/local
#   make format / format-check

CC ?= gcc
PREFIX ?= /usr/local
SAN ?=

ifeq ($(SAN),)
B := build
SANFLAGS :=
else ifeq ($(SAN),asan)
B := build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SAN),tsan)
B := build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else ifeq ($(SAN),fuzz)
# The library and the fuzz targets (clang only): ASan+UBSan, and libFuzzer's
# coverage instrumentation everywhere, so that the fuzzer sees into the
# library; the targets add -fsanitize=fuzzer (its main) when they link.
B := build-fuzz
SANFLAGS := -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
else
$(error SAN must be empty, asan, tsan or fuzz)
endif

# FL_DEBUG turns on the lock assertions (doc/locking.md).  Release builds
# keep it on by default; pass DEBUG=0 for a build without them (the
# benchmark uses one).
DEBUG ?= 1
OPT ?= -O2
# -MMD -MP: each object and program gets a dependency file of the headers it
# includes (next to it, .d), read back below: nothing rebuilds for a header
# it does not include.
CFLAGS_BASE := -std=gnu11 -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-pthread -fPIC -fvisibility=hidden -MMD -MP -Iinclude -Isrc $(SANFLAGS)
ifeq ($(DEBUG),1)
CFLAGS_BASE += -DFL_DEBUG=1
endif
CFLAGS_ALL := $(CFLAGS_BASE) $(CFLAGS)
LIBS := -luring -lurcu-cds -lurcu-bp -lurcu-common -lhiredis -llz4 -llzo2 -lzstd -lxxhash -lsodium \
	-lblkid -lpthread -lm
LDFLAGS_ALL := $(SANFLAGS) -pthread $(LDFLAGS)

# The version, from the public header; the soname carries the major.
VERSION := $(shell sed -n 's/^\#define FL_VERSION_STRING "\(.*\)"/\1/p' include/faultline.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME := libfaultline.so.$(SOMAJOR)

LIB_SRCS := $(sort $(wildcard src/*.c))
LIB_OBJS := $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRCS))
# Sources in tests/ that are not test programs: linked into those that use them.
TEST_HELPERS := tests/diff_engine.c tests/diff_gen.c
TEST_SRCS := $(filter-out $(TEST_HELPERS),$(sort $(wildcard tests/*.c)))
# test_run runs the plain build's faultline run and preload (a preload cannot
# carry a sanitizer's runtime): no code of a sanitizer build runs in it but
# its own driver, so it is built, and run, in the plain build only.
ifneq ($(SAN),)
TEST_SRCS := $(filter-out tests/test_run.c,$(TEST_SRCS))
endif
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRCS))
# The shared library as an installed one is laid out: the file, the soname
# link the loader looks for, and the link the linker looks for.
SHLIB := $(B)/libfaultline.so.$(VERSION)
SHLIB_LINKS := $(B)/$(SONAME) $(B)/libfaultline.so

# Built in the plain build only (see faultline run's preload below).
ifeq ($(SAN),)
RUN_PRELOAD := $(B)/libfaultline-run.so
endif

all: $(B)/libfaultline.a $(SHLIB) $(SHLIB_LINKS) $(B)/faultline $(B)/bench $(B)/swapbench \
	$(B)/filebench $(B)/lrusim $(B)/uffdipc $(RUN_PRELOAD) $(TESTS)

$(B)/obj/%.o: src/%.c | $(B)/obj
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(B)/obj $(B)/tests:
	mkdir -p $@

$(B)/libfaultline.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(SHLIB): $(LIB_OBJS) src/faultline.map
	$(CC) -shared -Wl,--version-script=src/faultline.map -Wl,-soname,$(SONAME) \
		$(LDFLAGS_ALL) -o $@ $(LIB_OBJS) $(LIBS)

$(SHLIB_LINKS): $(SHLIB)
	ln -sf $(notdir $(SHLIB)) $@

# The tools: an object per source file, each with its own dependency file
# (one compiler call for several sources keeps only the last one's).
FAULTLINE_OBJS := $(patsubst %,$(B)/tools/%.o,faultline lab lab_child lab_report lab_plot lab_machine lab_start lab_start_run kside \
	mkstore storebench run)
BENCH_OBJS := $(patsubst %,$(B)/tools/%.o,bench bare)
SWAPBENCH_OBJS := $(patsubst %,$(B)/tools/%.o,swapbench swapbench_options swapbench_workload \
	swapbench_device swapbench_subjects swapbench_report swapbench_tiers bare kside)
FILEBENCH_OBJS := $(patsubst %,$(B)/tools/%.o,filebench filebench_run kside)

$(B)/tools:
	mkdir -p $@

$(B)/tools/%.o: tools/%.c | $(B)/tools
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

# faultline run's preload (tools/run_preload.c; RUN_PRELOAD, set above
# "all", which expands it where it is read): the library linked in with
# its own system calls for memory and signals renamed to raw ones
# (fl_raw_*), so that the preload's interposers never see them; jemalloc is
# the heap.  Built in the plain build only: a sanitizer's runtime must come
# first in a process, which a preload into any program cannot be (the
# acceptance test uses the plain build's from every build).
RUN_RAW_SYMS := mmap munmap mprotect madvise mremap sigaction fork

$(B)/run/libfaultline-raw.a: $(B)/libfaultline.a
	mkdir -p $(B)/run
	objcopy $(foreach s,$(RUN_RAW_SYMS),--redefine-sym $(s)=fl_raw_$(s)) $< $@

RUN_PRELOAD_SRCS := tools/run_preload.c tools/run_heap.c tools/run_record.c

$(B)/libfaultline-run.so: $(RUN_PRELOAD_SRCS) tools/run_preload.h tools/run_record.h tools/pageset.h src/mman_compat.h \
		tools/run_preload.map $(B)/run/libfaultline-raw.a
	$(CC) $(CFLAGS_ALL) -shared -Wl,--version-script=tools/run_preload.map -o $@ \
		$(RUN_PRELOAD_SRCS) $(B)/run/libfaultline-raw.a $(LDFLAGS_ALL) -ljemalloc -ldl $(LIBS)

$(B)/faultline: $(FAULTLINE_OBJS) $(B)/libfaultline.a
	$(CC) -o $@ $(FAULTLINE_OBJS) $(B)/libfaultline.a $(LDFLAGS_ALL) $(LIBS)

$(B)/bench: $(BENCH_OBJS) $(B)/libfaultline.a
	$(CC) -o $@ $(BENCH_OBJS) $(B)/libfaultline.a $(LDFLAGS_ALL) $(LIBS)

$(B)/swapbench: $(SWAPBENCH_OBJS) $(B)/libfaultline.a
	$(CC) -o $@ $(SWAPBENCH_OBJS) $(B)/libfaultline.a $(LDFLAGS_ALL) $(LIBS)

$(B)/filebench: $(FILEBENCH_OBJS) $(B)/libfaultline.a
	$(CC) -o $@ $(FILEBENCH_OBJS) $(B)/libfaultline.a $(LDFLAGS_ALL) $(LIBS)

$(B)/lrusim: tools/lrusim.c | $(B)/obj
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL) -lm

# The bare userfaultfd path served from a thread and from another process
# (BENCHMARKS.md, "Where the handler lives"); no library.
$(B)/uffdipc: tools/uffdipc.c | $(B)/obj
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL)

-include $(wildcard $(B)/tools/*.d)

$(B)/tests/%: tests/%.c $(B)/libfaultline.a | $(B)/tests
	$(CC) $(CFLAGS_ALL) -o $@ $< $(B)/libfaultline.a $(LDFLAGS_ALL) $(LIBS)

# The differential oracle and its generator, shared by test_diff and the mm
# fuzzer.  Objects are not executable: tests/run.sh passes them by.
DIFF_OBJS := $(B)/tests/diff_engine.o $(B)/tests/diff_gen.o

$(B)/tests/diff_%.o: tests/diff_%.c | $(B)/tests
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(B)/tests/test_diff: tests/test_diff.c $(DIFF_OBJS) $(B)/libfaultline.a | $(B)/tests
	$(CC) $(CFLAGS_ALL) -o $@ $< $(DIFF_OBJS) $(B)/libfaultline.a $(LDFLAGS_ALL) $(LIBS)

# The fuzz targets (SAN=fuzz): each links the library statically, so that a
# target can call the library's hidden functions too.
FUZZ_TARGETS := fuzz_mm fuzz_options

$(B)/fuzz:
	mkdir -p $@

$(B)/fuzz/%: fuzz/%.c $(B)/libfaultline.a | $(B)/fuzz
	$(CC) $(CFLAGS_ALL) -Itests -o $@ $< $(B)/libfaultline.a $(LDFLAGS_ALL) -fsanitize=fuzzer \
		$(LIBS)

$(B)/fuzz/fuzz_mm: fuzz/fuzz_mm.c $(DIFF_OBJS) $(B)/libfaultline.a | $(B)/fuzz
	$(CC) $(CFLAGS_ALL) -Itests -o $@ $< $(DIFF_OBJS) $(B)/libfaultline.a $(LDFLAGS_ALL) \
		-fsanitize=fuzzer $(LIBS)

-include $(wildcard $(B)/obj/*.d $(B)/tests/*.d $(B)/fuzz/*.d $(B)/*.d)

check: all
	tests/run.sh $(B)

# Every name doc/locking.md gives is in src/; and the check catches a
# renamed lock (its self-test).
check-lockdoc:
	scripts/check-lockdoc.sh
	scripts/check-lockdoc.sh --self-test

deps:
	@bash scripts/deps.sh

demo: deps
	$(MAKE) $(B)/faultline
	$(B)/faultline demo $(DEMO_ARGS)

# The README's main command: the lab, every scenario, policy and the kernel.
lab: deps
	$(MAKE) $(B)/faultline
	$(B)/faultline lab $(LAB_ARGS)

# The builds of the test command use every core: CI runs plain "make test".
# A -j given to make (its jobserver) is used as it is.
TEST_JOBS = $(if $(findstring -j,$(MAKEFLAGS))$(findstring jobserver,$(MAKEFLAGS)),,-j$(shell nproc))

# The README's test command: the locking document against the code; the
# tests in release (with assertions), ASan+UBSan and TSan builds; then the
# library as a user links it; then each fuzzer for a short time.  A test
# that skips fails it (tests/run.sh; FL_ALLOW_SKIP=1 allows skips).
test: deps check-lockdoc
	$(MAKE) $(TEST_JOBS) all
	$(MAKE) $(TEST_JOBS) SAN=asan CC=$(CC) all
	$(MAKE) $(TEST_JOBS) SAN=tsan CC=clang all
	$(MAKE) $(TEST_JOBS) fuzz-build
	tests/run.sh build build-asan build-tsan
	scripts/check-packaging.sh build
	$(MAKE) fuzz-smoke

# The fuzzers: build-fuzz/ (SAN=fuzz), run one after the other from their
# seed corpus (fuzz/corpus/) for FUZZ_SECONDS each; the test command runs
# each for FUZZ_SMOKE_SECONDS.  fuzz/run.sh says where findings go.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20

fuzz-build:
	$(MAKE) SAN=fuzz CC=clang $(addprefix build-fuzz/fuzz/,$(FUZZ_TARGETS))

fuzz: deps fuzz-build
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	fuzz/run.sh --smoke $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

soak: all
	FL_SOAK=1 tests/run.sh --timeout 1800 $(B)

bench:
	$(MAKE) B=build-bench DEBUG=0 build-bench/bench build-bench/faultline
	build-bench/bench $(BENCH_ARGS)

# The swap benchmark: root, several minutes; enables a swap file and a memory
# cgroup for the kernel's side and removes both afterwards.
swapbench:
	$(MAKE) B=build-bench DEBUG=0 build-bench/swapbench
	build-bench/swapbench $(SWAPBENCH_ARGS)

# The file benchmark: root, several minutes; drops the caches before every
# run and makes a memory cgroup for the kernel's side, removed afterwards.
# Take the lock: flock /tmp/faultline-bench.lock make filebench.
filebench:
	$(MAKE) B=build-bench DEBUG=0 build-bench/filebench
	build-bench/filebench $(FILEBENCH_ARGS)


install: $(B)/libfaultline.a $(SHLIB) $(B)/faultline $(B)/libfaultline-run.so
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/faultline.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/libfaultline.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(PREFIX)/lib/libfaultline.so
	install -m 755 $(B)/faultline $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/lib/faultline
	install -m 755 $(B)/libfaultline-run.so $(DESTDIR)$(PREFIX)/lib/faultline/
	install -d $(DESTDIR)$(PREFIX)/share/faultline
	install -m 644 tools/traces/python3-start.trace $(DESTDIR)$(PREFIX)/share/faultline/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' faultline.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/faultline.pc

format:
	clang-format -i include/*.h src/*.c src/*.h tools/*.c tools/*.h tests/*.c tests/*.h fuzz/*.c

format-check: deps
	clang-format --dry-run --Werror include/*.h src/*.c src/*.h tools/*.c tools/*.h tests/*.c \
		tests/*.h fuzz/*.c

clean:
	rm -rf build build-asan build-tsan build-bench build-fuzz

.PHONY: all deps demo lab check check-lockdoc test swapbench filebench soak bench install format format-check \
	clean fuzz fuzz-build fuzz-smoke
