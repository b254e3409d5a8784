/* SPDX-License-Identifier: MIT */
/*
 * The lab (faultline lab, see lab.c): what its files share.
 *
 *   lab.c         the scenarios and the running: subjects, a forked child
 *                 per run, options, lab_main()
 *   lab_child.c   that child: the scenario's areas and threads, verified
 *                 accesses, the measured window
 *   lab_report.c  the runs judged (counters against the policy) and
 *                 reported: tables, legend, JSON
 *   lab_plot.c    the runs drawn: gnuplot data and scripts
 *   lab_machine.c the machine's state with every round: a disk probe
 *   lab_start.c   the start scenario: a recorded program's start replayed
 */
#ifndef FL_TOOLS_LAB_H
#define FL_TOOLS_LAB_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <faultline.h>

#include "hist.h"

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_THREADS 256
#define MAX_SUBJECTS 16
#define MAX_RUNS 1024
#define MAX_ROUNDS 15
#define MiB (1UL << 20)
#define GiB (1UL << 30)

/* ---- Scenarios ---- */

enum scen {
	SC_PARALLEL,
	SC_ELSEWHERE,
	SC_MPROTECT,
	SC_THUNDERING,
	SC_PROCESS,
	SC_EXIT,
	SC_FORK,
	SC_START,
	NR_SCEN
};

/* fork: the VMAs (alternately read-only and read-write, a guard page every
 * 64) and how often the writer forks. */
#define FORK_VMAS 1024
#define FORK_EVERY_MS 100
#define FORK_CHECK_PAGES 256

/* Built with ThreadSanitizer, which cannot follow the child of a fork of a
 * threaded process that starts threads (faultline's child does): there the
 * fork scenario's children leave at once, unchecked. */
#if defined(__SANITIZE_THREAD__)
#define LAB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LAB_TSAN 1
#endif
#endif

struct scen_def {
	const char *name;
	const char *what;
	size_t region; /* bytes of pages accessed (the working set) */
	size_t budget;
	unsigned int threads;
	const char *writer; /* what the writer thread does, NULL: none */
};

extern const struct scen_def scen_defs[NR_SCEN];

/* ---- Options ---- */

struct lab_opts {
	unsigned int scen_mask;
	size_t region, budget; /* 0: the scenario's default */
	unsigned int threads;
	double seconds, warmup;
	uint64_t seed;
	int policies[FL_POLICY_NR];
	unsigned int npolicies;
	int delivery;
	unsigned int slow_us; /* emulated rows: 0 = none */
	bool kernel, json, plots, verbose, quick;
	char out[PATH_MAX];
	char dir[PATH_MAX];
	unsigned int writer_pause_us; /* elsewhere: between mmap/munmap pairs */
	unsigned int timeout;
	unsigned int rounds;  /* each scenario's subjects, this many times */
	char trace[PATH_MAX]; /* start: the recorded start replayed */
};

/* ---- Subjects and results ---- */

struct subject {
	char name[40];
	bool kernel;
	int policy;
	unsigned int delay_us; /* emulated store latency */
};

enum phase { PH_START, PH_FILL, PH_WARM, PH_MEASURE, PH_DONE };

/* Written by the child (shared memory), read by the parent after it exits. */
struct result {
	_Atomic int phase;
	_Atomic uint64_t progress; /* accesses so far */
	int mismatch;
	char error[512];
	double secs, fill_secs;
	uint64_t fill_pages;
	uint64_t accesses, faults, majors, writer_ops, verified;
	uint64_t all_faults; /* every fault of the process in the window (its counters) */
	struct fl_hist_snap acc, flt, wr; /* all timed accesses, the faults among them */
	uint64_t ws_bytes, swept;	  /* the working set; pages checked at the end */
	uint64_t exit_ns;		  /* exit: the teardown with faults in flight */
	uint64_t exit_gone_ns;		  /* exit: until the last reader found the region gone */
	unsigned int exit_cut;		  /* exit: accesses the teardown cut short (SIGSEGV) */
	_Atomic uint64_t fork_checked;	  /* fork: pages the children verified */
	unsigned int vmas;		  /* the VMAs the scenario mapped */
	struct fl_stats d;		  /* faultline: counters over the window */
	/* The kernel: over the window. */
	uint64_t k_pswpin, k_pswpout, k_minflt, k_majflt, k_vma[4];
	bool k_has_vma;
};

struct run {
	enum scen sc;
	const struct subject *sub;
	size_t region, budget;
	unsigned int threads;
	bool failed, contradiction;
	unsigned int oom_retries; /* the kernel: runs OOM-killed before this one */
	unsigned int round;	  /* 0-based; a round runs every subject once */
	double foreign_cpu;	  /* CPU-s other processes used during the run */
	double steal;		  /* CPU-s the hypervisor stole during it */
	char why[600];
	struct result r;
};

/*
 * The lab: its options, its subjects and the runs so far.  One, made by
 * lab_main(); the child of a run sees its own copy.
 */
struct lab {
	struct lab_opts opt;
	struct subject subjects[MAX_SUBJECTS];
	unsigned int nsubjects;
	struct run runs[MAX_RUNS];
	unsigned int nruns;
	/* Random 4 KiB reads per second at queue depth 8 on the stores' file
	 * system before each scenario's round (lab_machine.c); < 0: none. */
	double disk_iops[NR_SCEN][MAX_ROUNDS];
	struct result *shared; /* the running child's result: shared memory */
	bool tty;	       /* stderr is a terminal: a progress line */
};

/* The counters over a window: b - a, gauges as b; lifetime percentiles
 * cleared (lab_child.c). */
void lab_stats_delta(struct fl_stats *d, const struct fl_stats *a, const struct fl_stats *b);

/* Per second of the run's measured window. */
static inline double lab_rate(const struct run *rn, uint64_t v)
{
	return rn->r.secs > 0 ? (double)v / rn->r.secs : 0;
}

/* lab.c */
int lab_main(int argc, char **argv);
bool lab_inject(const char *what);

/* lab_child.c: the child of a run; writes res, then exits. */
__attribute__((noreturn)) void lab_child_main(const struct lab_opts *opt, const struct run *run,
					      struct result *res);

/* lab_report.c */
bool lab_check_policy(struct run *rn);
void lab_contradict(struct fl_stats *d, int policy);
void lab_print_scenario(const struct lab *lab, enum scen sc);
void lab_print_legend(const struct lab *lab);
void lab_print_json(const struct lab *lab, FILE *f);

/*
 * The run of (sc, sub) to report when there are several rounds: the one
 * whose accesses per second are the median of the subject's rounds.
 */
const struct run *lab_median_run(const struct lab *lab, const struct run *rn);

/* lab_machine.c */
double lab_probe_disk(const char *dir, size_t bytes, double secs, char *err, size_t errlen);
void lab_probe_close(void);

/* lab_start.c: the start scenario (a trace of faultline run --record) */
int lab_start_load(const struct lab_opts *opt, char *err, size_t errlen);
size_t lab_start_footprint(void);
void lab_start_before_run(void);
__attribute__((noreturn)) void lab_start_child(const struct lab_opts *opt, const struct run *run,
					       struct result *res);
void lab_start_print(const struct lab *lab);

/* lab_plot.c */
void lab_make_plots(const struct lab *lab);

#endif
