/* SPDX-License-Identifier: MIT */
/*
 * test_diff: the five mm calls, differentially against the kernel.
 *
 * Two arenas of NPAGES pages at fixed, far-apart addresses: N holds native
 * memory, F holds faultline memory (one space).  The same random operations
 * go to both at the same page offsets, and tests/diff_engine.h compares
 * them: after every operation the return value and errno, the per-page
 * protection as the kernel shows it, fl_maps() and fl_stats(); every
 * CHECK_EVERY operations and at the end of a run, every readable byte (a
 * random "read" operation compares one page at once).  What faultline
 * documents as different must be refused with EINVAL and change nothing.
 *
 * Runs alternate the delivery mode (thread, sigbus), every other pair runs
 * without fault-around, and every other four with a budget (swap).  The master seed (argv[1] or
 * FL_SEED) derives one seed per run; FL_RUN=i repeats run i alone, FL_OPS=n sets the operations per
 * run, FL_TRACE=1 prints each operation before it runs. 30 runs of 600 (15 under TSan); FL_SOAK=1
 * does 200 runs of 3000.  A failure prints the operation, both results and the last few operations;
 * a crash or a hang (no progress for WATCHDOG_S seconds) prints the operation in progress.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#include "diff_engine.h"
#include "util.h"

#define NPAGES 512
#define CHECK_EVERY 50
#define BUDGET_PAGES 96
#define WATCHDOG_S 30 /* per operation and its checks, even under a sanitizer */

static struct diff_arena A = {.name = "", .npages = NPAGES};
static bool trace; /* FL_TRACE=1: print every operation before it runs */

static uint64_t rng_below(void *rng, uint64_t n)
{
	return t_below(rng, n);
}

static void fatal_signal(int sig, siginfo_t *si, void *uc)
{
	char msg[128];
	int n;

	(void)uc;
	if (sig == SIGALRM)
		n = snprintf(msg, sizeof(msg), "\nHANG: no progress for %d s during: ", WATCHDOG_S);
	else
		n = snprintf(msg, sizeof(msg), "\nFATAL: signal %d at address %p during: ", sig,
			     si->si_addr);
	if (write(2, msg, n) < 0 || write(2, diff_op_desc, strlen(diff_op_desc)) < 0 ||
	    write(2, "\n", 1) < 0 || write(2, diff_context, strlen(diff_context)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(T_EXIT_FAIL);
	_exit(T_EXIT_FAIL);
}

/* ------------------------------------------------------------------ runs */

/* File runs: the file is FILE_PAGES pages, the budget FILE_BUDGET_PAGES (the
 * page cache and the private copies must fit in it: they are evicted). */
#define FILE_PAGES 192
#define FILE_BUDGET_PAGES 64

static void run(int idx, uint64_t seed, int delivery, bool no_fault_around, long nops, bool file,
		int policy, size_t budget)
{
	struct fl_config cfg;
	struct t_rng rng;
	struct diff_src src = {.below = rng_below, .ctx = &rng};
	struct op op;
	char prefix[32];

	snprintf(diff_context, sizeof(diff_context),
		 "master seed %" PRIu64 ", run %d (seed %" PRIu64 ", delivery %s%s%s, budget %zu)",
		 *t_seed_ptr(), idx, seed, t_delivery_name(delivery), file ? ", file, policy " : "",
		 file ? fl_policy_name(policy) : "", budget);
	snprintf(diff_repeat, sizeof(diff_repeat), "FL_RUN=%d test_diff %" PRIu64, idx,
		 *t_seed_ptr());
	snprintf(prefix, sizeof(prefix), "run %d ", idx);
	diff_history_reset();
	diff_op_idx = -1;
	snprintf(diff_op_desc, sizeof(diff_op_desc), "run %d: creating the space", idx);
	t_rng_init(&rng, seed);
	alarm(WATCHDOG_S);
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	if (no_fault_around) {
		cfg.fault_around = 1;
		cfg.fault_around_max = 1;
	}
	if (budget)
		cfg.mem_limit = budget;
	if (file) {
		cfg.mem_limit = FILE_BUDGET_PAGES * diff_page_size();
		cfg.policy = policy;
		diff_files_create(&A, FILE_PAGES, seed);
	}
	diff_start(&A, t_space_create_cfg(&cfg));

	for (diff_op_idx = 0; diff_op_idx < nops; diff_op_idx++) {
		diff_gen_op(&A, &src, &op);
		diff_describe(&A, &op, prefix);
		alarm(WATCHDOG_S);
		if (trace) {
			fprintf(stderr, "%s\n", diff_op_desc);
			fflush(stderr);
		}
		diff_exec(&A, &rng, &op);
		diff_set_phase(" [then checking the layout]");
		diff_check_state(&A);
		if (diff_op_idx % CHECK_EVERY == CHECK_EVERY - 1)
			diff_check_contents(&A);
	}
	snprintf(diff_op_desc, sizeof(diff_op_desc), "run %d: final check", idx);
	alarm(WATCHDOG_S);
	diff_check_state(&A);
	diff_check_contents(&A);
	diff_print_tally(&A);

	snprintf(diff_op_desc, sizeof(diff_op_desc), "run %d: fl_space_destroy", idx);
	alarm(WATCHDOG_S);
	diff_end(&A);
	if (file) {
		/* Destroy wrote every dirty page back: the files are equal. */
		snprintf(diff_op_desc, sizeof(diff_op_desc), "run %d: the files after destroy",
			 idx);
		diff_files_compare(&A, 0, FILE_PAGES);
		diff_files_remove(&A);
	}
	alarm(0);
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_diff");
	/* Under TSan 15: each file policy once still (runs 2, 5, .., 14). */
	int runs = t_soak() ? 200 : T_UNDER_TSAN ? 15 : 30;
	long nops = t_soak() ? 3000 : 600;
	const char *only = getenv("FL_RUN");
	struct sigaction sa;
	struct timespec t0, t1;
	char *bases[2];
	long total = 0;

	diff_init();
	if (getenv("FL_OPS"))
		nops = atol(getenv("FL_OPS"));

	/* Before any space: a sigbus space chains signals it does not own to this. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fatal_signal;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	trace = getenv("FL_TRACE") && atoi(getenv("FL_TRACE"));

	diff_reserve(bases, 2, NPAGES * diff_page_size());
	A.base_n = bases[0];
	A.base_f = bases[1];
	printf("arenas: N %p, F %p, %d pages each; %d runs x %ld ops\n", (void *)A.base_n,
	       (void *)A.base_f, NPAGES, only ? 1 : runs, nops);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < runs; i++) {
		uint64_t x = seed + (uint64_t)i;
		uint64_t rs = t_splitmix64(&x);
		int delivery = i % 2 ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
		/* Runs 2, 3, 6, 7, ... without fault-around: only the faulting page comes in. */
		bool nfa = i & 2;
		/* One run in three maps files too, under a budget smaller than the
		 * file, each policy in turn.  Other runs 4-7, 12-15, ...: a budget
		 * of BUDGET_PAGES, so that the operations (mremap's moves too)
		 * meet swapped-out pages. */
		bool file = i % 3 == 2;
		int policy = (i / 3) % FL_POLICY_NR;
		size_t budget = !file && (i & 4) ? BUDGET_PAGES * diff_page_size() : 0;

		if (only && atoi(only) != i)
			continue;
		printf("run %d: seed %" PRIu64 ", delivery %s%s%s%s%s\n", i, rs,
		       t_delivery_name(delivery), nfa ? ", no fault-around" : "",
		       file ? ", files, policy " : "", file ? fl_policy_name(policy) : "",
		       budget ? ", a budget" : "");
		run(i, rs, delivery, nfa, nops, file, policy, budget);
		total += nops;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("test_diff: %ld operations compared, %.1f s\n", total,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return T_EXIT_PASS;
}
