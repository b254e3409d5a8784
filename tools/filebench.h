/* SPDX-License-Identifier: MIT */
/*
 * filebench (see filebench.c): what its files share.
 *
 *   filebench.c       the run: options, the files, the subjects, rounds,
 *                     drop caches, the children, medians, the report, main()
 *   filebench_run.c   what a child does: map the file (the kernel's mmap in
 *                     the memory cgroup, or faultline's fl_mmap under the
 *                     budget) and run one workload on it, into a result in
 *                     memory shared with the parent
 *
 * Define TOOL ("filebench") and _GNU_SOURCE before including it.
 */
#ifndef FL_TOOLS_FILEBENCH_H
#define FL_TOOLS_FILEBENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <faultline.h>

#include "hist.h"
#include "kside.h"
#include "toolbox.h"

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
/* The word of each page that the random writes store to; reads check the others. */
#define TAG_WORD (WORDS - 1)
#define MAX_TLIST 8
#define MAX_THREADS 64
#define MAX_ROUNDS 16
#define MAX_DELIVERIES 2
#define MAX_SUBJECTS (1 + 2 * MAX_DELIVERIES * FL_POLICY_NR)
#define MAX_FIGS (MAX_TLIST + 3)

/* The workloads, one per figure (random reads: one figure per thread count). */
enum fb_phase { PH_RAND, PH_SEQ, PH_WRITE, PH_RESTORE };
/* How caches are dropped before each run. */
enum fb_drop { DROP_ALL, DROP_FILE, DROP_NONE };

struct fb_opts {
	size_t file_size, budget, ws_size;
	size_t write_pages;
	double seconds, warmup;
	unsigned int threads[MAX_TLIST], nthreads;
	int deliveries[MAX_DELIVERIES];
	unsigned int ndeliveries;
	int policies[FL_POLICY_NR]; /* npolicies 0: faultline's default */
	unsigned int npolicies;
	unsigned int rounds;
	uint64_t seed;
	char dir[PATH_MAX];
	enum fb_drop drop;
	bool do_kernel, do_faultline, do_rand, do_seq, do_write, do_restore;
	bool quick, verbose;
	unsigned int timeout;
	char perf_ctl[PATH_MAX]; /* perf record --control fifo: enabled around each run */
};

enum fb_kind { S_KERNEL, S_FL };

struct fb_subject {
	char name[48];
	enum fb_kind kind;
	int delivery;
	int policy;  /* -1: faultline's default */
	bool replay; /* the restore: FAULTLINE_WS_REPLAY */
};

/* /proc/diskstats of the files' disk. */
struct fb_disk {
	uint64_t rd, rd_sect, wr, wr_sect;
};

/* One run's result, written by the child into memory shared with the parent. */
struct fb_result {
	int done;		      /* the child got to the end */
	char error[320];	      /* why not */
	double secs;		      /* the window, or the pass, or the restore */
	uint64_t ops;		      /* accesses (random), pages (sequential, written, restored) */
	double cpu;		      /* the child's user + system CPU seconds within it */
	uint64_t majflt;	      /* the child's major faults within it (getrusage) */
	double store_secs, sync_secs; /* the random writes: stores, then msync */
	uint64_t p50_ns, p99_ns;      /* per access (random, sequential) */
	long maxrss_kb;		      /* the child's peak resident set */
	struct fb_disk disk;	      /* the disk's counters within it (all of the disk's I/O) */
	bool has_fl;
	struct fl_stats fl; /* faultline's: counters within it, gauges at its end */
};

struct fb_fig {
	char name[24];
	enum fb_phase ph;
	unsigned int threads;
	unsigned int nsubjects;
	struct fb_subject subjects[MAX_SUBJECTS];
	struct fb_result *res; /* [subject * rounds + round] */
};

struct filebench {
	struct fb_opts opt;
	struct fb_fig figs[MAX_FIGS];
	unsigned int nfigs;
	int data_fd, snap_fd; /* the files, unlinked: they go with us */
	size_t npages;
	char ws_path[PATH_MAX]; /* the recorded working set */
	uint64_t ws_recorded;
	uint32_t *wpages;   /* the pages the random writes store to */
	uint32_t *ws_order; /* the working set, in the order it is touched */
	size_t ws_pages;
	unsigned int dev_major, dev_minor;
	char dev_name[32];
	struct fb_result *shared; /* one result, shared with the child */
	int perf_fd;		  /* --perf-ctl, open; -1: none */
	bool drop_fell_back;
};

/* The words of the files: page p, word w; seed 0 is the data, 1 the snapshot. */
static inline uint64_t fb_word(uint64_t seed, uint64_t file, size_t page, size_t word)
{
	uint64_t x = seed * 0x100000001b3ull + (file << 62) + (uint64_t)page * WORDS + word;

	return splitmix64(&x);
}

/* What the random writes of run tag store to TAG_WORD of page. */
static inline uint64_t fb_tag(uint64_t tag, size_t page)
{
	uint64_t x = (tag << 32) ^ page ^ 0x7a6b5c4d3e2f1a0bull;

	return splitmix64(&x);
}

/* filebench_run.c: in the child, run fig's workload for sub; result in *r. */
void fb_child(struct filebench *fb, const struct fb_fig *fig, const struct fb_subject *sub,
	      uint64_t tag, const char *ws_record, struct fb_result *r);
int fb_read_disk(const struct filebench *fb, struct fb_disk *d);

#endif
