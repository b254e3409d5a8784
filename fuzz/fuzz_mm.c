// SPDX-License-Identifier: MIT
/*
 * fuzz_mm: libFuzzer drives test_diff's operations (tests/diff_engine.h):
 * fl_mmap/fl_munmap/fl_mprotect/fl_madvise calls, good and bad, and reads
 * and writes of pages, on one or two spaces, with the kernel as the oracle.
 * Every operation runs on native memory too and the engine compares the
 * two: return value and errno, per-page protection as /proc/self/maps shows
 * it, fl_maps(), fl_stats(), every readable byte.  A space may have a
 * budget, so the same operations also swap.
 *
 * The input:
 *   byte 0     space A: bit 0 sigbus delivery, bit 1 no fault-around,
 *              bits 2-3 the budget (none, 64 or 100 pages, none), bits 4-6
 *              the policy (modulo 5), bit 7 a second space B
 *   byte 1     space B, the same (only with bit 7 of byte 0)
 *   then, per operation (at most MAX_OPS, until the input ends): with two
 *   spaces a byte whose bit 0 picks B; the choices the generator makes,
 *   where test_diff draws from its PRNG (diff_gen_op()): a choice among n
 *   reads one byte, two if n > 256, modulo n; then for a write 4 bytes
 *   that seed the bytes written.  Past the end every byte reads as zero.
 *
 * Like test_diff, nothing here reaches memory outside the arenas (the
 * generator keeps every range that could change something inside them).
 *
 * After each input every space is destroyed and every arena empty, the
 * process has the file descriptors it had before, and no faultline thread
 * (named fl-*) is left: libFuzzer runs many inputs in one process.
 * FL_TRACE=1 prints each operation as it runs, and each space's counters.
 * On a machine that refuses this process userfaultfd or io_uring (the
 * causes tests/util.h names) the target skips as a test does: exit 77
 * before any input, saying why.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <faultline.h>

#include "diff_engine.h"
#include "util.h"

#define NPAGES 128
#define MAX_OPS 256
#define CONTENTS_EVERY 16

struct reader {
	const uint8_t *p;
	size_t n;
};

static uint8_t next_byte(struct reader *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

/* The generator's choice among n, from the input. */
static uint64_t input_below(void *ctx, uint64_t n)
{
	uint64_t v = 0;

	for (uint64_t span = 1; span < n && span; span <<= 8)
		v = v << 8 | next_byte(ctx);
	return v % n;
}

static struct diff_arena arenas[2] = {{.name = "A ", .npages = NPAGES},
				      {.name = "B ", .npages = NPAGES}};
static size_t ps;
static int trace = -1;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Threads of this process named fl-* (faultline's: handlers, reaper, workers). */
static int count_fl_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	CHECK(d, "opendir /proc/self/task: %s", strerror(errno));
	while ((e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue; /* the thread just ended */
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "fl-", 3))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static void crash(void)
{
	abort(); /* libFuzzer saves the input */
}

static void init_once(void)
{
	char *bases[4];

	if (trace >= 0)
		return;
	trace = getenv("FL_TRACE") && atoi(getenv("FL_TRACE"));
	diff_init();
	ps = diff_page_size();
	diff_on_fail = crash;
	diff_reserve(bases, 4, NPAGES * ps);
	for (int i = 0; i < 2; i++) {
		arenas[i].base_n = bases[2 * i];
		arenas[i].base_f = bases[2 * i + 1];
	}
}

static struct fl_space *make_space(uint8_t c)
{
	static const size_t budget[] = {0, 64, 100, 0};
	struct fl_config cfg;
	struct fl_space *sp = NULL;
	int ret;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = c & 1 ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
	if (c & 2) {
		cfg.fault_around = 1;
		cfg.fault_around_max = 1;
	}
	cfg.mem_limit = budget[(c >> 2) & 3] * ps;
	cfg.policy = (c >> 4 & 7) % FL_POLICY_NR;
	ret = fl_space_create(&cfg, &sp);
	CHECK(ret == 0 && sp, "fl_space_create (delivery %s, budget %zu, policy %s): %s",
	      t_delivery_name(cfg.delivery), cfg.mem_limit, fl_policy_name(cfg.policy),
	      strerror(-ret));
	return sp;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct fl_config cfg;
	struct fl_space *sp = NULL;
	int ret;

	(void)argc;
	(void)argv;
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.mem_limit = 64 * t_page_size();
	ret = fl_space_create(&cfg, &sp);
	if (ret)
		t_skip_if_refused(ret, &cfg);
	else
		fl_space_destroy(sp);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader rd = {data, size};
	struct diff_src src = {.below = input_below, .ctx = &rd};
	uint8_t conf[2];
	int nspaces, fds = count_fds();

	init_once();
	conf[0] = next_byte(&rd);
	nspaces = conf[0] & 0x80 ? 2 : 1;
	conf[1] = nspaces == 2 ? next_byte(&rd) : 0;
	snprintf(diff_context, sizeof(diff_context),
		 "fuzz_mm input of %zu bytes, %d space(s), config %#x %#x", size, nspaces, conf[0],
		 conf[1]);
	snprintf(diff_repeat, sizeof(diff_repeat),
		 "FL_TRACE=1 build-fuzz/fuzz/fuzz_mm <the saved input>");
	diff_history_reset();
	diff_op_idx = -1;
	for (int i = 0; i < nspaces; i++)
		diff_start(&arenas[i], make_space(conf[i]));

	for (diff_op_idx = 0; diff_op_idx < MAX_OPS && rd.n; diff_op_idx++) {
		struct diff_arena *a = &arenas[nspaces == 2 ? next_byte(&rd) & 1 : 0];
		struct t_rng rng;
		uint64_t seed = 0;
		struct op op;

		diff_gen_op(a, &src, &op);
		if (op.kind == OP_WRITE)
			for (int i = 0; i < 4; i++)
				seed = seed << 8 | next_byte(&rd);
		t_rng_init(&rng, seed);
		diff_describe(a, &op, "");
		if (trace) {
			fprintf(stderr, "%s\n", diff_op_desc);
			fflush(stderr);
		}
		diff_exec(a, &rng, &op);
		diff_set_phase(" [then checking the layout]");
		for (int i = 0; i < nspaces; i++)
			diff_check_state(&arenas[i]);
		if (diff_op_idx % CONTENTS_EVERY == CONTENTS_EVERY - 1)
			for (int i = 0; i < nspaces; i++)
				diff_check_contents(&arenas[i]);
	}
	snprintf(diff_op_desc, sizeof(diff_op_desc), "final check");
	for (int i = 0; i < nspaces; i++) {
		diff_check_state(&arenas[i]);
		diff_check_contents(&arenas[i]);
	}
	for (int i = 0; trace && i < nspaces; i++) {
		struct fl_stats st;

		CHECK(fl_stats(arenas[i].sp, &st) == 0, "fl_stats");
		fprintf(stderr,
			"%sfaults %" PRIu64 ", major %" PRIu64 ", swap-ins %" PRIu64
			", swap-outs %" PRIu64 "\n",
			arenas[i].name, st.faults, st.faults_major, st.swap_ins, st.swap_outs);
	}
	snprintf(diff_op_desc, sizeof(diff_op_desc), "fl_space_destroy");
	for (int i = 0; i < nspaces; i++) {
		diff_end(&arenas[i]);
		memset(arenas[i].tally, 0, sizeof(arenas[i].tally));
	}
	if (count_fds() != fds)
		diff_fail("%d file descriptors open after the input, %d before", count_fds(), fds);
	if (count_fl_threads())
		diff_fail("%d faultline threads left after every space was destroyed",
			  count_fl_threads());
	return 0;
}
