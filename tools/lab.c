// SPDX-License-Identifier: MIT
/*
 * faultline lab: the scenarios of the mailing-list thread in ../shared/seed
 * under each of the five fault-wait policies, with the real kernel's swap
 * side by side in the same run.  See README.md, "What the lab shows".
 *
 * Every subject (the kernel, or faultline with one policy) runs in a forked
 * child: the kernel's in a cgroup v1 memory cgroup limited to the budget with
 * a swap file the lab enables for the run, faultline's in a space with
 * mem_limit = the budget and its default store (O_DIRECT, io_uring).  The
 * child maps the scenario's areas, fills them page by page (so that most of
 * them are swapped out), runs its threads for a warm-up and then a measured
 * window, and leaves its figures in shared memory.  Emulated slow-device rows
 * run faultline with the store wrapper that delays every I/O
 * (FAULTLINE_SWAP_DELAY); the kernel has no such rows (this machine has no
 * device-mapper delay target).
 *
 * Verification: every page holds salt ^ (page << 9 | word) ^ (version << 40)
 * in each word.  Each access checks the whole page it touched; a write
 * (read-modify-write, by the page's only writer) checks the old version and
 * writes the next; after the threads stop, every page of the working set is
 * read back and checked against its last version.  A mismatch fails the run,
 * and the lab.
 *
 * Fault latency: each access times its first load or store of the page, and
 * is a fault if the thread took one meanwhile: faultline's per-thread count
 * in sigbus delivery (fl_thread_faults()), the kernel's otherwise
 * (getrusage(RUSAGE_THREAD): the kernel's own faults, and in thread delivery
 * the retried access after a handler served it).
 */
#define _GNU_SOURCE
#define TOOL "lab"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#include "hist.h"
#include "kside.h"
#include "toolbox.h"

int lab_main(int argc, char **argv);

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_THREADS 256
#define MAX_AREAS 64
#define MAX_SUBJECTS 16
#define MAX_RUNS 256
#define MiB (1UL << 20)
#define GiB (1UL << 30)

/* ---- Scenarios ---- */

enum scen { SC_PARALLEL, SC_ELSEWHERE, SC_MPROTECT, SC_THUNDERING, SC_PROCESS, NR_SCEN };

static const struct scen_def {
	const char *name;
	const char *what;
	size_t region; /* bytes of pages accessed (the working set) */
	size_t budget;
	unsigned int threads;
	const char *writer; /* what the writer thread does, NULL: none */
} scen_defs[NR_SCEN] = {
	[SC_PARALLEL] = {"parallel", "T threads read random pages of a swapped region", 256 * MiB,
			 64 * MiB, 4, NULL},
	[SC_ELSEWHERE] =
		{"elsewhere",
		 "the same, and one thread mapping and unmapping 64 KiB elsewhere in a loop "
		 "(touching nothing)",
		 256 * MiB, 64 * MiB, 4, "mmap+munmap 64 KiB"},
	[SC_MPROTECT] = {"mprotect-one-page",
			 "one 64 GiB MAP_NORESERVE VMA, T threads swapping pages in, one thread "
			 "toggling the protection of the page in the middle every millisecond",
			 256 * MiB, 64 * MiB, 4, "mprotect 1 page"},
	[SC_THUNDERING] = {"thundering",
			   "many threads and a very tight budget: pages reclaimed between their "
			   "read and the retry that would use them",
			   64 * MiB, 8 * MiB, 32, NULL},
	[SC_PROCESS] =
		{"process",
		 "28 VMAs of program-like sizes and kinds (text, data, heap, arenas, stacks, "
		 "guards, buffers), mixed reads, writes and first touches; every ms an "
		 "mmap/munmap or an mprotect",
		 224 * MiB, 64 * MiB, 4, "mmap/munmap/mprotect"},
};

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
};

static const struct lab_opts lab_defaults = {
	.seconds = 3,
	.warmup = 0.5,
	.seed = 1,
	.policies = {FL_POLICY_MMAP, FL_POLICY_BAIL, FL_POLICY_DROP, FL_POLICY_DROP_VMA,
		     FL_POLICY_HOLD},
	.npolicies = 5,
	.delivery = FL_DELIVERY_SIGBUS,
	.slow_us = 1000,
	.kernel = true,
	.plots = true,
	.out = "lab-results",
	.writer_pause_us = 0,
	.timeout = 600,
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
	struct result *shared; /* the running child's result: shared memory */
	bool tty;	       /* stderr is a terminal: a progress line */
};

/* ---- Small helpers ---- */

static const char *size_str(size_t b, char *buf, size_t len)
{
	if (b >= GiB && !(b % GiB))
		fmt(buf, len, "%zu GiB", b / GiB);
	else if (b >= MiB && !(b % MiB))
		fmt(buf, len, "%zu MiB", b / MiB);
	else
		fmt(buf, len, "%zu KiB", b >> 10);
	return buf;
}

/*
 * Test-only faults for tests/test_lab.c (FL_LAB_INJECT=mismatch or
 * contradiction): the lab must then fail.
 */
static bool inject(const char *what)
{
	const char *e = getenv("FL_LAB_INJECT");

	return e && !strcmp(e, what);
}

/* ======================================================================
 * The child: areas, threads, the window
 * ====================================================================== */

enum area_kind {
	A_SHARED,  /* filled once, only read */
	A_OWNED,   /* read and written: page i belongs to thread i % T */
	A_STACK,   /* one thread's own: read and written by it only */
	A_GUARD,   /* PROT_NONE, never touched */
	A_TOGGLED, /* only read; the writer toggles its protection */
};

struct area {
	const char *name;
	size_t len;	/* the VMA */
	int prot;	/* after the fill */
	int flags;	/* extra mmap flags */
	size_t win_off; /* the pages accessed: [win_off, win_off + win_len) */
	size_t win_len;
	enum area_kind kind;
	unsigned int owner; /* A_STACK */
	char *base;
	uint64_t gp0;	       /* global index of the window's first page */
	uint64_t cum;	       /* pages of the windows of the areas before this one */
	_Atomic uint32_t *ver; /* per window page: its version (written by its owner) */
};

/* The child's state, passed to everything it runs. */
struct child {
	const struct lab_opts *opt;
	struct fl_space *sp; /* NULL: the kernel */
	struct result *res;
	enum scen sc;
	unsigned int threads;
	size_t region, budget;
	uint64_t salt;
	struct area areas[MAX_AREAS];
	unsigned int nareas;
	uint64_t total_pages; /* of the windows */
	atomic_bool stop, measuring, injected;
	bool lose_a_write; /* test-only: FL_LAB_INJECT=lostwrite */
	struct fl_hist acc, flt, wr;
	bool own_count; /* faults counted by fl_thread_faults() (sigbus delivery) */
	_Atomic uint64_t writer_ops, verified;
	/* mprotect-one-page */
	char *toggle_page;
	char stack_names[MAX_THREADS][24]; /* process: the areas' names */
};

/* nohuge: the kernel's areas get 4 KiB pages, as faultline's; the writers'
 * small scratch buffers need no extra call inside their timing. */
static void *x_mmap(struct child *c, size_t len, int prot, int flags, bool nohuge)
{
	void *p;

	if (c->sp)
		return fl_mmap(c->sp, NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags);
	p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p != MAP_FAILED && nohuge)
		madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static int x_munmap(struct child *c, void *p, size_t len)
{
	return c->sp ? fl_munmap(c->sp, p, len) : munmap(p, len);
}

static int x_mprotect(struct child *c, void *p, size_t len, int prot)
{
	return c->sp ? fl_mprotect(c->sp, p, len, prot) : mprotect(p, len, prot);
}

static inline uint64_t pattern(const struct child *c, uint64_t gp, unsigned int w, uint32_t v)
{
	return c->salt ^ (gp << 9 | w) ^ ((uint64_t)v << 40);
}

__attribute__((noreturn)) static void child_fail(struct child *c, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(c->res->error, sizeof(c->res->error), f, ap);
	va_end(ap);
	_exit(2);
}

__attribute__((noreturn)) static void mismatch(struct child *c, const struct area *a, uint64_t i,
					       unsigned int w, uint64_t got, uint32_t v)
{
	uint64_t x = got ^ c->salt;

	c->res->mismatch = 1;
	fmt(c->res->error, sizeof(c->res->error),
	    "DATA MISMATCH in %s page %" PRIu64 " (address %p) word %u: expected %#" PRIx64
	    " (version %u), read %#" PRIx64 " (%s page %" PRIu64 " word %" PRIu64
	    " version %" PRIu64 ")",
	    a->name, i, (void *)(a->base + a->win_off + i * PAGE), w, pattern(c, a->gp0 + i, w, v),
	    v, got, got ? "looks like" : "zero: never written or lost",
	    (x & ((UINT64_C(1) << 40) - 1)) >> 9, x & 0x1ff, x >> 40);
	_exit(4);
}

static void verify_page(struct child *c, const struct area *a, uint64_t i,
			const volatile uint64_t *p, uint32_t v)
{
	uint64_t gp = a->gp0 + i;

	for (unsigned int w = 0; w < WORDS; w++) {
		uint64_t got = p[w];

		if (got != pattern(c, gp, w, v))
			mismatch(c, a, i, w, got, v);
	}
}

static void write_page(const struct child *c, const struct area *a, uint64_t i,
		       volatile uint64_t *p, uint32_t v, unsigned int from)
{
	uint64_t gp = a->gp0 + i;

	for (unsigned int w = from; w < WORDS; w++)
		p[w] = pattern(c, gp, w, v);
}

static void add_area(struct child *c, const char *name, size_t len, int prot, int flags,
		     size_t win_off, size_t win_len, enum area_kind kind, unsigned int owner)
{
	struct area *a = &c->areas[c->nareas++];

	a->name = name;
	a->len = len;
	a->prot = prot;
	a->flags = flags;
	a->win_off = win_off;
	a->win_len = kind == A_GUARD ? 0 : win_len;
	a->kind = kind;
	a->owner = owner;
}

/* The scenario's areas, sized for region bytes of windows (the working set). */
static void build_areas(struct child *c)
{
	const int R = PROT_READ, RW = PROT_READ | PROT_WRITE;
	size_t region = c->region, s = region / (224 * MiB) ? region / (224 * MiB) : 1;
	unsigned int t;

	switch (c->sc) {
	case SC_PARALLEL:
	case SC_ELSEWHERE:
	case SC_THUNDERING:
		add_area(c, "region", region, RW, MAP_NORESERVE, 0, region, A_SHARED, 0);
		break;
	case SC_MPROTECT: {
		size_t vma = 64 * GiB > 4 * region ? 64 * GiB : 4 * region;
		size_t off = (vma / 2 - region / 2) & ~(PAGE - 1);

		add_area(c, "huge-vma", vma, RW, MAP_NORESERVE, off, region, A_SHARED, 0);
		break;
	}
	case SC_PROCESS:
		/* Program-like: sizes scale with --region (224 MiB of windows at 1x). */
		if (region < 224 * MiB)
			s = 0; /* smaller: divide below */
#define SZ(x) (s ? (x)*s : ((x) * (region / MiB) / 224 + PAGE - 1) & ~(PAGE - 1))
		add_area(c, "text:app", SZ(4 * MiB), R, 0, 0, SZ(4 * MiB), A_SHARED, 0);
		add_area(c, "text:libc", SZ(2 * MiB), R, 0, 0, SZ(2 * MiB), A_SHARED, 0);
		add_area(c, "text:libstdc++", SZ(2 * MiB), R, 0, 0, SZ(2 * MiB), A_SHARED, 0);
		add_area(c, "text:libm", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_SHARED, 0);
		add_area(c, "text:ld.so", SZ(256 << 10), R, 0, 0, SZ(256 << 10), A_SHARED, 0);
		add_area(c, "rodata:app", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_SHARED, 0);
		add_area(c, "rodata:libc", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_SHARED, 0);
		add_area(c, "data:app", SZ(512 << 10), RW, 0, 0, SZ(512 << 10), A_OWNED, 0);
		add_area(c, "data:libc", SZ(512 << 10), RW, 0, 0, SZ(512 << 10), A_OWNED, 0);
		add_area(c, "bss", SZ(1 * MiB), RW, 0, 0, SZ(1 * MiB), A_OWNED, 0);
		add_area(c, "heap", SZ(64 * MiB), RW, 0, 0, SZ(64 * MiB), A_OWNED, 0);
		add_area(c, "arena:1", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "arena:2", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "arena:3", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "arena:4", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "jit", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_TOGGLED, 0);
		add_area(c, "buffer:1", SZ(16 * MiB), RW, 0, 0, SZ(16 * MiB), A_OWNED, 0);
		add_area(c, "buffer:2", SZ(16 * MiB), RW, 0, 0, SZ(16 * MiB), A_OWNED, 0);
		add_area(c, "buffer:3", SZ(16 * MiB), RW, 0, 0, SZ(16 * MiB), A_OWNED, 0);
		add_area(c, "file-cache", SZ(32 * MiB), R, MAP_NORESERVE, 0, SZ(32 * MiB), A_SHARED,
			 0);
#undef SZ
		/* A stack per thread (8 MiB, the top 256 KiB used), each with a guard page. */
		for (t = 0; t < c->threads && c->nareas + 2 <= MAX_AREAS; t++) {
			fmt(c->stack_names[t], sizeof(c->stack_names[t]), "stack:%u", t);
			if (t < 4)
				add_area(c, "guard", PAGE, PROT_NONE, 0, 0, 0, A_GUARD, 0);
			add_area(c, c->stack_names[t], 8 * MiB, RW, MAP_NORESERVE | MAP_STACK,
				 8 * MiB - 256 * 1024, 256 * 1024, A_STACK, t);
		}
		break;
	default:
		break;
	}
}

static void map_and_fill(struct child *c)
{
	uint64_t gp = 0, t0 = now_ns();
	size_t lag = c->budget / PAGE / 2;
	unsigned int k;
	size_t i, n;

	for (k = 0; k < c->nareas; k++) {
		struct area *a = &c->areas[k];
		int prot = a->kind == A_GUARD ? PROT_NONE : PROT_READ | PROT_WRITE;

		a->base = x_mmap(c, a->len, prot, a->flags, true);
		if (a->base == MAP_FAILED)
			child_fail(c, "mmap %s (%zu bytes): %s", a->name, a->len, strerror(errno));
		n = a->win_len / PAGE;
		a->gp0 = gp;
		a->cum = c->total_pages;
		gp += n;
		c->total_pages += n;
		a->ver = calloc(n ? n : 1, sizeof(*a->ver));
		if (!a->ver)
			child_fail(c, "out of memory");
	}
	if (!c->total_pages)
		child_fail(c, "no pages to access");
	atomic_store(&c->res->phase, PH_FILL);
	for (k = 0; k < c->nareas; k++) {
		struct area *a = &c->areas[k];

		n = a->win_len / PAGE;
		for (i = 0; i < n; i++) {
			write_page(c, a, i, (volatile uint64_t *)(a->base + a->win_off + i * PAGE),
				   0, 0);
			/*
			 * The kernel: page out what was written half a budget
			 * ago, 2 MiB at a time.  Without it a cgroup v1 filled
			 * this fast sometimes OOM-kills instead of swapping (its
			 * reclaim gives up while the swap writes are in flight).
			 * The fill is not measured; the state it leaves is the
			 * same: the last pages written are the resident ones.
			 */
			if (!c->sp && (i + 1) % 512 == 0 && i + 1 >= lag + 512)
				madvise(a->base + a->win_off + (i + 1 - lag - 512) * PAGE,
					512 * PAGE, MADV_PAGEOUT);
		}
		if (a->prot != PROT_READ + PROT_WRITE && a->kind != A_GUARD &&
		    x_mprotect(c, a->base, a->len, a->prot))
			child_fail(c, "mprotect %s: %s", a->name, strerror(errno));
		c->res->fill_pages += n;
	}
	c->res->fill_secs = (double)(now_ns() - t0) / 1e9;
}

/* A page of the windows, uniformly: its area and index. */
static struct area *pick(struct child *c, uint64_t r, uint64_t *idx)
{
	uint64_t g = below(r, c->total_pages);
	unsigned int lo = 0, hi = c->nareas - 1;

	while (lo < hi) { /* the last area whose cum <= g */
		unsigned int mid = (lo + hi + 1) / 2;

		if (c->areas[mid].cum <= g)
			lo = mid;
		else
			hi = mid - 1;
	}
	while (!c->areas[lo].win_len) /* guards have no pages, and cum equal to the next */
		lo++;
	*idx = g - c->areas[lo].cum;
	return &c->areas[lo];
}

struct worker {
	struct child *c;
	pthread_t tid;
	unsigned int id;
	uint64_t rng;
	struct area *stack; /* process: its own stack */
};

/*
 * The faults this thread has taken so far: faultline's own count when the
 * thread serves its faults itself (sigbus delivery), the kernel's otherwise
 * (the kernel's own faults, and in thread delivery each fault a handler
 * served, counted when the access is retried).
 */
static uint64_t my_faults(const struct child *c)
{
	struct rusage ru;

	if (c->own_count)
		return fl_thread_faults();
	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

/* A timed access, classified: a fault if the thread took one meanwhile. */
static inline void record(struct child *c, uint64_t f0, uint64_t t0, uint64_t t1, bool on)
{
	if (!on)
		return;
	fl_hist_record(&c->acc, t1 - t0);
	if (my_faults(c) != f0)
		fl_hist_record(&c->flt, t1 - t0);
}

/* One access: read (and check) a page, or read-modify-write it. */
static void access_one(struct worker *w)
{
	struct child *c = w->c;
	uint64_t r = splitmix64(&w->rng), i, t0, t1, f0 = 0;
	struct area *a;
	volatile uint64_t *p;
	uint32_t v;
	bool on, wr = false;
	uint64_t x;

	if (c->sc == SC_PROCESS && w->stack && (r & 15) == 0) {
		a = w->stack; /* 1 in 16: the thread's own stack */
		i = below(splitmix64(&w->rng), a->win_len / PAGE);
		wr = true;
	} else {
		a = pick(c, r, &i);
		if (a->kind == A_STACK && a->owner != w->id) {
			a = NULL;
		} else if (a->kind == A_OWNED) {
			/* Its own page next to the one drawn. */
			i = i - i % c->threads + w->id;
			if (i >= a->win_len / PAGE)
				a = NULL;
			else
				wr = (splitmix64(&w->rng) % 10) < 3; /* 30 % writes */
		} else if (a->kind == A_STACK) {
			wr = true;
		}
		if (!a) { /* not ours to touch: a shared page instead */
			a = &c->areas[0];
			i = below(splitmix64(&w->rng), a->win_len / PAGE);
		}
	}
	p = (volatile uint64_t *)(a->base + a->win_off + i * PAGE);
	v = atomic_load_explicit(&a->ver[i], memory_order_relaxed);

	/* The version is 24 bits of the pattern: stop writing a page before it wraps. */
	if (v >= (1u << 24) - 1)
		wr = false;
	on = atomic_load_explicit(&c->measuring, memory_order_relaxed);
	if (on)
		f0 = my_faults(c);
	t0 = now_ns();
	x = p[0];
	t1 = now_ns();
	record(c, f0, t0, t1, on);
	if (x != pattern(c, a->gp0 + i, 0, v))
		mismatch(c, a, i, 0, x, v);
	verify_page(c, a, i, p, v);
	if (wr) {
		v++;
		on = atomic_load_explicit(&c->measuring, memory_order_relaxed);
		if (on)
			f0 = my_faults(c);
		t0 = now_ns();
		p[0] = pattern(c, a->gp0 + i, 0, v);
		t1 = now_ns();
		record(c, f0, t0, t1, on);
		if (w->id == 0 && c->lose_a_write && !atomic_exchange(&c->injected, true))
			p[0] = pattern(c, a->gp0 + i, 0, v - 1); /* test-only: a store lost */
		else
			write_page(c, a, i, p, v, 1);
		atomic_store_explicit(&a->ver[i], v, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&c->verified, 1, memory_order_relaxed);
}

static void *reader_main(void *arg)
{
	struct worker *w = arg;
	struct child *c = w->c;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		access_one(w);
		atomic_fetch_add_explicit(&c->res->progress, 1, memory_order_relaxed);
	}
	return NULL;
}

static void timed(struct child *c, uint64_t t0)
{
	if (atomic_load_explicit(&c->measuring, memory_order_relaxed)) {
		fl_hist_record(&c->wr, now_ns() - t0);
		atomic_fetch_add_explicit(&c->writer_ops, 1, memory_order_relaxed);
	}
}

static void writer_elsewhere(struct child *c)
{
	uint64_t t0;
	void *p;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		t0 = now_ns();
		p = x_mmap(c, 64 << 10, PROT_READ | PROT_WRITE, 0, false);
		timed(c, t0);
		if (p == MAP_FAILED)
			child_fail(c, "writer: mmap: %s", strerror(errno));
		t0 = now_ns();
		if (x_munmap(c, p, 64 << 10))
			child_fail(c, "writer: munmap: %s", strerror(errno));
		timed(c, t0);
		if (c->opt->writer_pause_us)
			sleep_ns(c->opt->writer_pause_us * 1000ull);
	}
}

static void writer_mprotect(struct child *c)
{
	uint64_t next = now_ns(), t0;
	bool ro = false;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		next += 1000000; /* every millisecond */
		ro = !ro;
		t0 = now_ns();
		if (x_mprotect(c, c->toggle_page, PAGE, ro ? PROT_READ : PROT_READ | PROT_WRITE))
			child_fail(c, "writer: mprotect: %s", strerror(errno));
		timed(c, t0);
		sleep_until(next);
		if (now_ns() > next + 100000000)
			next = now_ns(); /* a long stall: do not burst to catch up */
	}
	if (ro)
		x_mprotect(c, c->toggle_page, PAGE, PROT_READ | PROT_WRITE);
}

static void writer_process(struct child *c)
{
	uint64_t rng = c->salt ^ 0x77, next = now_ns(), t0, r;
	struct area *jit = NULL;
	bool jit_rw = false;
	unsigned int k, j;
	char *p;

	for (k = 0; k < c->nareas; k++)
		if (c->areas[k].kind == A_TOGGLED)
			jit = &c->areas[k];
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		next += 1000000;
		r = splitmix64(&rng) % 4;
		if (r == 0 && jit) {
			/* The JIT flips its code between writable and read-only. */
			jit_rw = !jit_rw;
			t0 = now_ns();
			if (x_mprotect(c, jit->base, jit->len,
				       jit_rw ? PROT_READ | PROT_WRITE : PROT_READ))
				child_fail(c, "writer: mprotect: %s", strerror(errno));
			timed(c, t0);
		} else {
			/* A scratch buffer: mapped, half of the time used, unmapped. */
			size_t len = r == 1 ? 1 * MiB : 256 << 10;

			t0 = now_ns();
			p = x_mmap(c, len, PROT_READ | PROT_WRITE, 0, false);
			timed(c, t0);
			if (p == MAP_FAILED)
				child_fail(c, "writer: mmap: %s", strerror(errno));
			if (r == 1)
				for (j = 0; j < 16; j++) {
					volatile uint64_t *q =
						(volatile uint64_t *)(p + (size_t)j * 16 * PAGE);

					if (*q)
						child_fail(c, "writer: a fresh page is not zero");
					*q = j + 1;
					if (*q != j + 1)
						child_fail(c, "writer: a store was lost");
				}
			t0 = now_ns();
			if (x_munmap(c, p, len))
				child_fail(c, "writer: munmap: %s", strerror(errno));
			timed(c, t0);
		}
		sleep_until(next);
		if (now_ns() > next + 100000000)
			next = now_ns();
	}
	if (jit && jit_rw)
		x_mprotect(c, jit->base, jit->len, PROT_READ);
}

static void *writer_main(void *arg)
{
	struct child *c = arg;

	switch (c->sc) {
	case SC_ELSEWHERE:
		writer_elsewhere(c);
		break;
	case SC_MPROTECT:
		writer_mprotect(c);
		break;
	case SC_PROCESS:
		writer_process(c);
		break;
	default:
		break;
	}
	return NULL;
}

static void read_vmstat(uint64_t *in, uint64_t *out, uint64_t vl[4], bool *has)
{
	static const char *const names[] = {"vma_lock_success", "vma_lock_abort", "vma_lock_retry",
					    "vma_lock_miss"};
	static char buf[16384];

	*in = *out = 0;
	if (ks_read_file("/proc/vmstat", buf, sizeof(buf)))
		return;
	*in = ks_kv_get(buf, "pswpin", 0, NULL);
	*out = ks_kv_get(buf, "pswpout", 0, NULL);
	for (unsigned int i = 0; i < 4; i++)
		vl[i] = ks_kv_get(buf, names[i], 0, has);
}

/*
 * After the threads: every page of every window read back and checked
 * against its last version, so that no write and no page goes unchecked
 * however rarely the threads drew it.  Untimed.
 */
static void sweep(struct child *c)
{
	for (unsigned int k = 0; k < c->nareas; k++) {
		struct area *a = &c->areas[k];

		for (size_t i = 0; i < a->win_len / PAGE; i++)
			verify_page(c, a, i, (volatile uint64_t *)(a->base + a->win_off + i * PAGE),
				    atomic_load_explicit(&a->ver[i], memory_order_relaxed));
		c->res->swept += a->win_len / PAGE;
	}
}

static void stats_delta(struct fl_stats *d, const struct fl_stats *a, const struct fl_stats *b)
{
#define DELTA_(name, kind, desc) d->name = (kind) == FL_GAUGE ? b->name : b->name - a->name;
	FL_STATS_FIELDS(DELTA_)
#undef DELTA_
	/* Lifetime percentiles and gauges are not the window's: not reported. */
	d->fault_ns_p50 = d->fault_ns_p90 = d->fault_ns_p99 = d->fault_ns_p999 = 0;
	d->fault_ns_max = d->fault_ns_mean = 0;
}

/*
 * The forked child of a run: res is the shared memory its parent reads when
 * it has exited.
 */
__attribute__((noreturn)) static void child_main(const struct lab_opts *opt, const struct run *run,
						 struct result *res)
{
	enum scen sc = run->sc;
	struct child *c;
	struct worker *w;
	pthread_t wtid;
	struct fl_stats s0, s1;
	struct rusage ru0, ru1;
	uint64_t in0, out0, in1, out1, vl0[4] = {0}, vl1[4] = {0}, t0, t1;
	bool has = false;
	unsigned int i, k;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c) {
		fmt(res->error, sizeof(res->error), "out of memory");
		_exit(2);
	}
	c->opt = opt;
	c->res = res;
	c->sc = sc;
	c->threads = run->threads;
	c->region = run->region;
	c->budget = run->budget;
	c->salt = (opt->seed * 0x2545f4914f6cdd1dull) | 1ull << 63;
	if (run->sub->kernel) {
		err = ks_join_cgroup();
		if (err)
			child_fail(c, "joining the cgroup: %s", strerror(-err));
	} else {
		struct fl_config cfg;

		fl_config_init(&cfg);
		cfg.mem_limit = run->budget;
		cfg.policy = run->sub->policy;
		cfg.delivery = opt->delivery;
		cfg.swap_delay_us = run->sub->delay_us;
		err = fl_space_create(&cfg, &c->sp);
		if (err)
			child_fail(c, "fl_space_create: %s", strerror(-err));
	}
	c->own_count = c->sp && opt->delivery == FL_DELIVERY_SIGBUS;
	c->lose_a_write = inject("lostwrite");
	w = calloc(c->threads, sizeof(*w));
	if (!w)
		child_fail(c, "out of memory");
	build_areas(c);
	map_and_fill(c);
	if (inject("mismatch")) {
		/* Test-only (tests/test_lab.c): a word changed behind the
		 * verifier's back, in every 64th page, must fail the run. */
		struct area *a = &c->areas[0];

		for (size_t pg = 0; pg < a->win_len / PAGE; pg += 64)
			((volatile uint64_t *)(a->base + a->win_off + pg * PAGE))[5] ^= 1;
	}
	if (sc == SC_MPROTECT)
		c->toggle_page = c->areas[0].base + c->areas[0].len / 2;

	atomic_store(&res->phase, PH_WARM);
	for (i = 0; i < c->threads; i++) {
		w[i].id = i;
		w[i].c = c;
		w[i].rng = c->salt ^ (opt->seed << 20) ^ (i * 0x9e3779b97f4a7c15ull);
		for (k = 0; k < c->nareas; k++)
			if (c->areas[k].kind == A_STACK && c->areas[k].owner == i)
				w[i].stack = &c->areas[k];
		if (pthread_create(&w[i].tid, NULL, reader_main, &w[i]))
			child_fail(c, "pthread_create failed");
	}
	if (scen_defs[sc].writer && pthread_create(&wtid, NULL, writer_main, c))
		child_fail(c, "pthread_create failed");
	sleep_ns((uint64_t)(opt->warmup * 1e9));

	if (c->sp)
		fl_stats(c->sp, &s0);
	else
		read_vmstat(&in0, &out0, vl0, &has);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	atomic_store(&c->measuring, true);
	atomic_store(&res->phase, PH_MEASURE);
	sleep_ns((uint64_t)(opt->seconds * 1e9));
	atomic_store(&c->measuring, false);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (c->sp)
		fl_stats(c->sp, &s1);
	else
		read_vmstat(&in1, &out1, vl1, &has);

	atomic_store(&c->stop, true);
	for (i = 0; i < c->threads; i++)
		pthread_join(w[i].tid, NULL);
	if (scen_defs[sc].writer)
		pthread_join(wtid, NULL);

	res->secs = (double)(t1 - t0) / 1e9;
	fl_hist_snap_add(&res->acc, &c->acc);
	fl_hist_snap_add(&res->flt, &c->flt);
	fl_hist_snap_add(&res->wr, &c->wr);
	res->accesses = res->acc.count;
	res->faults = res->flt.count;
	res->ws_bytes = c->total_pages * PAGE;
	sweep(c);
	res->writer_ops = atomic_load(&c->writer_ops);
	res->verified = atomic_load(&c->verified);
	if (c->sp) {
		stats_delta(&res->d, &s0, &s1);
		res->all_faults = res->d.faults;
		res->majors = res->d.faults_major;
	} else {
		res->k_minflt = (uint64_t)(ru1.ru_minflt - ru0.ru_minflt);
		res->k_majflt = (uint64_t)(ru1.ru_majflt - ru0.ru_majflt);
		res->all_faults = res->k_minflt + res->k_majflt;
		res->majors = res->k_majflt;
		res->k_pswpin = in1 - in0;
		res->k_pswpout = out1 - out0;
		res->k_has_vma = has;
		for (i = 0; i < 4; i++)
			res->k_vma[i] = vl1[i] - vl0[i];
	}
	if (c->sp)
		fl_space_destroy(c->sp);
	atomic_store(&res->phase, PH_DONE);
	_exit(0);
}

/* ======================================================================
 * The parent: subjects, runs, checks
 * ====================================================================== */

static size_t scen_region(const struct lab_opts *opt, enum scen sc)
{
	if (opt->region)
		return opt->region;
	if (opt->quick && sc == SC_THUNDERING)
		return scen_defs[sc].region / 2; /* 4x its (quick) budget: still tight */
	return opt->quick ? scen_defs[sc].region / 8 : scen_defs[sc].region;
}

static size_t scen_budget(const struct lab_opts *opt, enum scen sc)
{
	if (opt->budget)
		return opt->budget;
	if (!opt->quick)
		return scen_defs[sc].budget;
	/* The kernel's child needs a few MiB of its own (page tables, stacks). */
	return scen_defs[sc].budget / 8 > 8 * MiB ? scen_defs[sc].budget / 8 : 8 * MiB;
}

static unsigned int scen_threads(const struct lab_opts *opt, enum scen sc)
{
	if (opt->threads)
		return opt->threads;
	if (opt->quick && scen_defs[sc].threads > 8)
		return 8;
	return scen_defs[sc].threads;
}

static void build_subjects(struct lab *lab)
{
	const struct lab_opts *opt = &lab->opt;
	unsigned int i;

	if (opt->kernel) {
		struct subject *s = &lab->subjects[lab->nsubjects++];

		fmt(s->name, sizeof(s->name), "kernel");
		s->kernel = true;
	}
	for (i = 0; i < opt->npolicies; i++) {
		struct subject *s = &lab->subjects[lab->nsubjects++];

		s->policy = opt->policies[i];
		fmt(s->name, sizeof(s->name), "%s", fl_policy_name(s->policy));
	}
	if (opt->slow_us)
		for (i = 0; i < opt->npolicies; i++) {
			struct subject *s = &lab->subjects[lab->nsubjects++];

			s->policy = opt->policies[i];
			s->delay_us = opt->slow_us;
			if (opt->slow_us % 1000)
				fmt(s->name, sizeof(s->name), "%s @%uus*",
				    fl_policy_name(s->policy), opt->slow_us);
			else
				fmt(s->name, sizeof(s->name), "%s @%ums*",
				    fl_policy_name(s->policy), opt->slow_us / 1000);
		}
}

/* Counters that contradict the policy's definition (ARCHITECTURE.md section 2). */
static bool check_policy(struct run *rn)
{
	const struct fl_stats *d = &rn->r.d;
	const char *name = fl_policy_name(rn->sub->policy);
	bool judged = d->parked >= 100; /* enough waits to judge a ratio */

	if (rn->sub->kernel)
		return true;
	switch (rn->sub->policy) {
	case FL_POLICY_MMAP: /* no VMA locks at all, waits or not */
		if (d->vma_lock_success || d->vma_lock_abort || d->vma_lock_retry ||
		    d->vma_lock_miss) {
			fmt(rn->why, sizeof(rn->why),
			    "mmap used VMA locks: vma_lock_success %" PRIu64 ", abort %" PRIu64
			    ", retry %" PRIu64 ", miss %" PRIu64,
			    d->vma_lock_success, d->vma_lock_abort, d->vma_lock_retry,
			    d->vma_lock_miss);
			return false;
		}
		break;
	case FL_POLICY_HOLD:
		if (d->vma_lock_retry) {
			fmt(rn->why, sizeof(rn->why), "hold retried %" PRIu64 " faults",
			    d->vma_lock_retry);
			return false;
		}
		/* It holds: an mprotect of the faults' VMA waits for them. */
		if (judged && rn->sc == SC_MPROTECT && !d->vma_write_wait_ns) {
			fmt(rn->why, sizeof(rn->why),
			    "hold: %" PRIu64 " faults waited for I/O and the mprotect writer "
			    "never waited for the VMA lock",
			    d->parked);
			return false;
		}
		break;
	case FL_POLICY_BAIL:
	case FL_POLICY_DROP:
		if (judged && d->vma_lock_retry < d->parked / 2) {
			fmt(rn->why, sizeof(rn->why),
			    "%s: %" PRIu64 " retries under the space lock for %" PRIu64
			    " parked faults",
			    name, d->vma_lock_retry, d->parked);
			return false;
		}
		break;
	case FL_POLICY_DROP_VMA:
		if (judged && d->vma_lock_retry * 2 > d->parked) {
			fmt(rn->why, sizeof(rn->why),
			    "drop-vma: %" PRIu64 " retries under the space lock for %" PRIu64
			    " parked faults (it retries under the VMA lock)",
			    d->vma_lock_retry, d->parked);
			return false;
		}
		break;
	default:
		break;
	}
	return true;
}

/* Test-only (FL_LAB_INJECT=contradiction): counters each policy forbids. */
static void contradict(struct fl_stats *d, int policy)
{
	if (d->parked < 100)
		d->parked = 100;
	switch (policy) {
	case FL_POLICY_MMAP:
		d->vma_lock_success++;
		break;
	case FL_POLICY_BAIL:
	case FL_POLICY_DROP:
		d->vma_lock_retry = 0;
		break;
	default: /* drop-vma, hold */
		d->vma_lock_retry = d->parked;
		break;
	}
}

static const char *phase_name(int p)
{
	static const char *const ph[] = {"starting", "filling", "warming up", "measuring", "done"};

	return ph[p < 0 || p > 4 ? 0 : p];
}

static void progress(const struct lab *lab, const struct run *rn, unsigned int idx,
		     unsigned int total, double el)
{
	char line[200];

	fmt(line, sizeof(line), "[%u/%u] %s | %-12s %-10s %5.1f s  %8.0f accesses", idx, total,
	    scen_defs[rn->sc].name, rn->sub->name, phase_name(atomic_load(&lab->shared->phase)), el,
	    (double)atomic_load(&lab->shared->progress));
	if (lab->tty)
		fprintf(stderr, "\r%-100s", line);
}

static void run_one(struct lab *lab, enum scen sc, const struct subject *sub, unsigned int idx,
		    unsigned int total, unsigned int attempt)
{
	const struct lab_opts *opt = &lab->opt;
	struct run *rn = &lab->runs[lab->nruns++];
	uint64_t t0 = now_ns(), ooms = 0;
	unsigned int limit;
	siginfo_t si;
	int status = 0;
	pid_t pid;

	rn->sc = sc;
	rn->sub = sub;
	rn->region = scen_region(opt, sc);
	rn->budget = scen_budget(opt, sc);
	rn->threads = scen_threads(opt, sc);
	memset(lab->shared, 0, sizeof(*lab->shared));
	if (sub->kernel) {
		int err = ks_set_budget(rn->budget);

		if (!err)
			err = ks_swapon();
		if (err) {
			rn->failed = true;
			fmt(rn->why, sizeof(rn->why), "kernel side: %s", strerror(-err));
			return;
		}
		ooms = ks_oom_kills();
	}
	preheat(rn->budget);
	if (!lab->tty && !opt->json)
		fprintf(stderr, "[%u/%u] %s | %s\n", idx, total, scen_defs[sc].name, sub->name);
	pid = ks_fork();
	if (pid == 0)
		child_main(opt, rn, lab->shared);
	if (pid < 0) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "fork: %s", strerror(errno));
		goto out;
	}
	/* Poll: progress, and our own timeout; reap with ks_wait(). */
	limit = opt->timeout + (unsigned int)(opt->seconds + opt->warmup);
	for (;;) {
		double el = (double)(now_ns() - t0) / 1e9;

		memset(&si, 0, sizeof(si));
		if (!waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == pid)
			break;
		progress(lab, rn, idx, total, el);
		if (el > limit) {
			kill(pid, SIGKILL);
			rn->failed = true;
			fmt(rn->why, sizeof(rn->why), "timed out after %u s (a hang?)", limit);
			break;
		}
		sleep_ns(200000000);
	}
	ks_wait(pid, &status, 0, NULL);
	if (lab->tty)
		fprintf(stderr, "\r%-100s\r", "");
	rn->r = *lab->shared;
	if (lab->shared->mismatch) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "%s", lab->shared->error);
	} else if (rn->failed) {
	} else if (WIFSIGNALED(status) && sub->kernel && ks_oom_kills() > ooms && attempt < 2) {
		/*
		 * The kernel's cgroup v1 sometimes OOM-kills this load instead
		 * of reclaiming (all of it active anon, much of it swap cache):
		 * say so, and run it again.
		 */
		ks_swapoff();
		fprintf(stderr, "lab: %s | kernel: OOM-killed while %s; running it again\n",
			scen_defs[sc].name, phase_name(atomic_load(&lab->shared->phase)));
		memset(rn, 0, sizeof(*rn));
		lab->nruns--;
		run_one(lab, sc, sub, idx, total, attempt + 1);
		if (lab->runs[lab->nruns - 1].oom_retries < attempt + 1)
			lab->runs[lab->nruns - 1].oom_retries = attempt + 1;
		return;
	} else if (WIFSIGNALED(status)) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "the child was killed by %s while %s%s",
		    strsignal(WTERMSIG(status)), phase_name(atomic_load(&lab->shared->phase)),
		    sub->kernel && ks_oom_kills() > ooms
			    ? " (the cgroup's OOM killer: the budget is too small for the program)"
			    : "");
	} else if (WEXITSTATUS(status)) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "failed (status %d): %s", WEXITSTATUS(status),
		    lab->shared->error[0] ? lab->shared->error : "?");
	} else if (inject("contradiction") && !sub->kernel &&
		   (contradict(&rn->r.d, sub->policy), !check_policy(rn))) {
		rn->failed = rn->contradiction = true; /* test-only: the checker must catch it */
	} else if (!check_policy(rn)) {
		rn->failed = rn->contradiction = true;
	}
out:
	if (sub->kernel)
		ks_swapoff();
	if (rn->failed)
		fprintf(stderr, "lab: %s | %s: %s%s\n", scen_defs[sc].name, sub->name,
			rn->contradiction ? "POLICY CONTRADICTION: " : "", rn->why);
}

/* ======================================================================
 * Reporting
 * ====================================================================== */

/* Fault latency: the slowest `faults` of the timed accesses. */
static uint64_t fault_q(const struct result *r, double q)
{
	if (q >= 1)
		return r->flt.max;
	return fl_hist_percentile(&r->flt, q);
}

static const char *ns_str(uint64_t ns, char *buf, size_t len)
{
	if (!ns)
		fmt(buf, len, "-");
	else if (ns < 10000)
		fmt(buf, len, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000)
		fmt(buf, len, "%.0fus", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		fmt(buf, len, "%.1fms", (double)ns / 1e6);
	else
		fmt(buf, len, "%.0fs", (double)ns / 1e9);
	return buf;
}

static const char *num_str(double v, char *buf, size_t len)
{
	if (v >= 1e7)
		fmt(buf, len, "%.0fM", v / 1e6);
	else if (v >= 1e4)
		fmt(buf, len, "%.0fk", v / 1e3);
	else
		fmt(buf, len, "%.0f", v);
	return buf;
}

static const struct run *kernel_run(const struct lab *lab, enum scen sc)
{
	for (unsigned int i = 0; i < lab->nruns; i++)
		if (lab->runs[i].sc == sc && lab->runs[i].sub->kernel && !lab->runs[i].failed)
			return &lab->runs[i];
	return NULL;
}

static double rate(const struct run *rn, uint64_t v)
{
	return rn->r.secs > 0 ? (double)v / rn->r.secs : 0;
}

static void print_scenario(const struct lab *lab, enum scen sc)
{
	const struct lab_opts *opt = &lab->opt;
	const struct run *k = kernel_run(lab, sc);
	char b[12][24], reg[16], bud[16];
	unsigned int i;

	printf("\n== %s: %s\n", scen_defs[sc].name, scen_defs[sc].what);
	for (i = 0; i < lab->nruns; i++)
		if (lab->runs[i].sc == sc)
			break;
	if (i == lab->nruns)
		return;
	printf("   working set %s, budget %s, %u threads%s%s, %.1f s measured after %.1f s\n",
	       size_str(lab->runs[i].r.ws_bytes ? lab->runs[i].r.ws_bytes : lab->runs[i].region,
			reg, sizeof(reg)),
	       size_str(lab->runs[i].budget, bud, sizeof(bud)), lab->runs[i].threads,
	       scen_defs[sc].writer ? " + writer: " : "",
	       scen_defs[sc].writer ? scen_defs[sc].writer : "", opt->seconds, opt->warmup);
	printf("\n%-13s %7s %6s %8s %7s %7s %7s %7s | %7s %7s %7s %6s\n", "subject", "acc/s",
	       "x kern", "faults/s", "p50", "p99", "p99.9", "max", "wr p50", "wr p99", "wr max",
	       "wr op/s");
	for (i = 0; i < lab->nruns; i++) {
		const struct run *rn = &lab->runs[i];
		const struct result *r = &rn->r;

		if (rn->sc != sc)
			continue;
		if (rn->failed && !rn->contradiction) {
			printf("%-13s FAILED: %s\n", rn->sub->name, rn->why);
			continue;
		}
		/* The ratio: accesses served per second, like for like (the
		 * same device: not for the emulated rows). */
		if (k && k != rn && !rn->sub->delay_us && rate(k, k->r.accesses) > 0)
			fmt(b[1], sizeof(b[1]), "%.2f",
			    rate(rn, r->accesses) / rate(k, k->r.accesses));
		else
			fmt(b[1], sizeof(b[1]), "%s", k == rn ? "1" : "-");
		printf("%-13s %7s %6s %8s %7s %7s %7s %7s | %7s %7s %7s %6s%s\n", rn->sub->name,
		       num_str(rate(rn, r->accesses), b[0], sizeof(b[0])), b[1],
		       num_str(rate(rn, r->faults), b[2], sizeof(b[2])),
		       ns_str(fault_q(r, 0.5), b[3], sizeof(b[3])),
		       ns_str(fault_q(r, 0.99), b[4], sizeof(b[4])),
		       ns_str(fault_q(r, 0.999), b[5], sizeof(b[5])),
		       ns_str(fault_q(r, 1), b[6], sizeof(b[6])),
		       ns_str(fl_hist_percentile(&r->wr, 0.5), b[7], sizeof(b[7])),
		       ns_str(fl_hist_percentile(&r->wr, 0.99), b[8], sizeof(b[8])),
		       ns_str(r->wr.max, b[9], sizeof(b[9])),
		       num_str(rate(rn, r->writer_ops), b[10], sizeof(b[10])),
		       rn->contradiction ? "  POLICY CONTRADICTION" : "");
	}
	if (k && k->oom_retries)
		printf("   (the kernel's run was OOM-killed by its cgroup %u time%s and run "
		       "again)\n",
		       k->oom_retries, k->oom_retries > 1 ? "s" : "");
	printf("\n%-13s %9s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %7s\n", "subject", "mmap rd/s",
	       "rd wait", "wr/s", "wr wait", "vma ok", "abort", "retry", "miss", "swapin/s",
	       "wasted", "parked");
	for (i = 0; i < lab->nruns; i++) {
		const struct run *rn = &lab->runs[i];
		const struct result *r = &rn->r;
		const struct fl_stats *d = &r->d;

		if (rn->sc != sc || (rn->failed && !rn->contradiction))
			continue;
		if (rn->sub->kernel) {
			char v[4][12];

			for (unsigned int j = 0; j < 4; j++)
				if (r->k_has_vma)
					num_str((double)r->k_vma[j], v[j], sizeof(v[j]));
				else
					fmt(v[j], sizeof(v[j]), "n/a(1)");
			printf("%-13s %9s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %7s\n",
			       rn->sub->name, "n/a(2)", "n/a(2)", "n/a(2)", "n/a(2)", v[0], v[1],
			       v[2], v[3], num_str(rate(rn, r->k_pswpin), b[0], sizeof(b[0])),
			       "n/a(3)", "n/a(3)");
			continue;
		}
		printf("%-13s %9s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %7s\n", rn->sub->name,
		       num_str(rate(rn, d->mmap_read_locks), b[0], sizeof(b[0])),
		       ns_str(d->mmap_read_wait_ns, b[1], sizeof(b[1])),
		       num_str(rate(rn, d->mmap_write_locks), b[2], sizeof(b[2])),
		       ns_str(d->mmap_write_wait_ns, b[3], sizeof(b[3])),
		       num_str((double)d->vma_lock_success, b[4], sizeof(b[4])),
		       num_str((double)d->vma_lock_abort, b[5], sizeof(b[5])),
		       num_str((double)d->vma_lock_retry, b[6], sizeof(b[6])),
		       num_str((double)d->vma_lock_miss, b[7], sizeof(b[7])),
		       num_str(rate(rn, d->swap_ins), b[8], sizeof(b[8])),
		       num_str((double)d->reads_wasted, b[9], sizeof(b[9])),
		       num_str((double)d->parked, b[10], sizeof(b[10])));
	}
}

static void print_legend(const struct lab *lab)
{
	const struct lab_opts *opt = &lab->opt;
	printf("\nacc/s: page accesses of the faulting threads per second (each a load or a "
	       "store, hit or\nfault); x kern: that over the kernel's on the same disk. faults/s: "
	       "the accesses that\nfaulted. p50..max: their latency, seen by the faulting thread "
	       "(an access is a fault if\nthe thread took one meanwhile). wr: the writer's calls "
	       "(mmap, munmap, mprotect).\nmmap rd/s, rd wait: space-lock read acquisitions and "
	       "the total time readers (mostly\nfaults) waited for it in the window; wr/s, wr "
	       "wait: the same for writers. vma ok/abort/\nretry/miss: the vma_lock_* counters. "
	       "swapin/s: pages read from the store. wasted: pages\nread and reclaimed before a "
	       "fault used them. parked: faults that waited for I/O.\n"
	       "(1) the kernel counts vma_lock_* only with CONFIG_PER_VMA_LOCK_STATS, off in "
	       "this kernel.\n(2) the kernel has no counter of mmap_lock acquisitions or wait "
	       "time (only tracepoints).\n(3) the kernel counts no wasted reads or waits on "
	       "swap I/O; its swap-ins are pswpin\n    (/proc/vmstat: the whole machine's, "
	       "only the lab's cgroup swapping meanwhile).\n");
	if (opt->slow_us)
		printf("*: emulated slow store: faultline's store with %u us added to every I/O "
		       "(FAULTLINE_SWAP_DELAY);\n   no kernel row: this kernel has no "
		       "device-mapper delay target.\n",
		       opt->slow_us);
}

static void json_hist(FILE *f, const char *key, const struct result *r, bool faults)
{
	if (faults)
		fprintf(f,
			"\"%s\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
			",\"max\":%" PRIu64 "}",
			key, fault_q(r, 0.5), fault_q(r, 0.99), fault_q(r, 0.999), fault_q(r, 1));
	else
		fprintf(f, "\"%s\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "}",
			key, fl_hist_percentile(&r->wr, 0.5), fl_hist_percentile(&r->wr, 0.99),
			r->wr.max);
}

static void print_json(const struct lab *lab, FILE *f)
{
	const struct lab_opts *opt = &lab->opt;
	struct utsname u;
	unsigned int i;

	uname(&u);
	fprintf(f,
		"{\"tool\":\"faultline lab\",\"kernel\":\"%s\",\"seed\":%" PRIu64
		",\"seconds\":%g,\"warmup\":%g,\"delivery\":\"%s\",\"runs\":[",
		u.release, opt->seed, opt->seconds, opt->warmup, fl_delivery_name(opt->delivery));
	for (i = 0; i < lab->nruns; i++) {
		const struct run *rn = &lab->runs[i];
		const struct result *r = &rn->r;
		const struct fl_stats *d = &r->d;
		bool k = rn->sub->kernel;

		fprintf(f,
			"%s\n{\"scenario\":\"%s\",\"subject\":\"%s\",\"kernel\":%s,"
			"\"policy\":%s%s%s,\"emulated_delay_us\":%u,\"region\":%zu,\"budget\":%zu,"
			"\"threads\":%u,\"oom_retries\":%u,\"ok\":%s,\"policy_contradiction\":%s,"
			"\"error\":\"",
			i ? "," : "", scen_defs[rn->sc].name, rn->sub->name, k ? "true" : "false",
			k ? "" : "\"", k ? "null" : fl_policy_name(rn->sub->policy), k ? "" : "\"",
			rn->sub->delay_us, rn->region, rn->budget, rn->threads, rn->oom_retries,
			rn->failed ? "false" : "true", rn->contradiction ? "true" : "false");
		for (const char *c = rn->why; *c; c++)
			if (*c == '"' || *c == '\\')
				fprintf(f, "\\%c", *c);
			else if ((unsigned char)*c >= 32 && (unsigned char)*c < 127)
				fputc(*c, f);
		fprintf(f,
			"\",\"secs\":%.3f,\"fill_secs\":%.3f,\"working_set\":%" PRIu64
			",\"accesses\":%" PRIu64 ",\"accesses_per_s\":%.0f,\"faults\":%" PRIu64
			",\"faults_per_s\":%.0f,\"all_faults\":%" PRIu64
			",\"major_faults\":%" PRIu64 ",\"verified_accesses\":%" PRIu64
			",\"pages_checked_at_end\":%" PRIu64 ",",
			r->secs, r->fill_secs, r->ws_bytes, r->accesses, rate(rn, r->accesses),
			r->faults, rate(rn, r->faults), r->all_faults, r->majors, r->verified,
			r->swept);
		json_hist(f, "fault_ns", r, true);
		fprintf(f, ",\"writer_ops\":%" PRIu64 ",", r->writer_ops);
		json_hist(f, "writer_ns", r, false);
		if (k) {
			fprintf(f, ",\"mmap_read_locks\":null,\"mmap_read_wait_ns\":null,"
				   "\"mmap_write_locks\":null,\"mmap_write_wait_ns\":null");
			if (r->k_has_vma)
				fprintf(f,
					",\"vma_lock_success\":%" PRIu64
					",\"vma_lock_abort\":%" PRIu64
					",\"vma_lock_retry\":%" PRIu64
					",\"vma_lock_miss\":%" PRIu64,
					r->k_vma[0], r->k_vma[1], r->k_vma[2], r->k_vma[3]);
			else
				fprintf(f, ",\"vma_lock_success\":null,\"vma_lock_abort\":null,"
					   "\"vma_lock_retry\":null,\"vma_lock_miss\":null");
			fprintf(f,
				",\"swap_ins\":%" PRIu64 ",\"swap_outs\":%" PRIu64
				",\"reads_wasted\":null,\"parked\":null}",
				r->k_pswpin, r->k_pswpout);
		} else {
			fprintf(f,
				",\"mmap_read_locks\":%" PRIu64 ",\"mmap_read_wait_ns\":%" PRIu64
				",\"mmap_write_locks\":%" PRIu64 ",\"mmap_write_wait_ns\":%" PRIu64
				",\"vma_lock_success\":%" PRIu64 ",\"vma_lock_abort\":%" PRIu64
				",\"vma_lock_retry\":%" PRIu64 ",\"vma_lock_miss\":%" PRIu64
				",\"swap_ins\":%" PRIu64 ",\"swap_outs\":%" PRIu64
				",\"reads_wasted\":%" PRIu64 ",\"parked\":%" PRIu64
				",\"parked_ns\":%" PRIu64 "}",
				d->mmap_read_locks, d->mmap_read_wait_ns, d->mmap_write_locks,
				d->mmap_write_wait_ns, d->vma_lock_success, d->vma_lock_abort,
				d->vma_lock_retry, d->vma_lock_miss, d->swap_ins, d->swap_outs,
				d->reads_wasted, d->parked, d->parked_ns);
		}
	}
	fprintf(f, "\n]}\n");
}

/* ---- Plots (gnuplot) ---- */

/* A plot colour per policy, the kernel black. */
static const char *colour(const struct subject *sub)
{
	static const char *const c[] = {"#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00"};

	return sub->kernel ? "#000000" : c[sub->policy % 5];
}

/* The subject's name as a file name: "drop @1ms*" -> "drop-1ms". */
static const char *file_name(const struct subject *sub)
{
	static char buf[48];
	unsigned int j = 0;

	for (const char *c = sub->name; *c && j + 1 < sizeof(buf); c++)
		if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')
			buf[j++] = *c;
		else if (*c == ' ')
			buf[j++] = '-';
	buf[j] = 0;
	return buf;
}

/* Complementary CDF of a latency distribution: fraction slower than x (us). */
static void write_ccdf(FILE *f, const struct fl_hist_snap *h, uint64_t top)
{
	uint64_t total = 0, skip, seen = 0;
	unsigned int b;

	for (b = 0; b < FL_HIST_BUCKETS; b++)
		total += h->bucket[b];
	if (top > total)
		top = total;
	if (!top)
		return;
	skip = total - top; /* the fastest accesses were not faults */
	for (b = 0; b < FL_HIST_BUCKETS; b++) {
		uint64_t in = h->bucket[b], drop;

		if (!in)
			continue;
		drop = skip < in ? skip : in;
		skip -= drop;
		in -= drop;
		if (!in)
			continue;
		if (!seen) /* where it starts: all of them slower */
			fprintf(f, "%.3f 1\n", (double)fl_hist_bucket_low(b) / 1e3);
		seen += in;
		if (seen < top)
			fprintf(f, "%.3f %.9g\n", (double)fl_hist_bucket_high(b) / 1e3,
				(double)(top - seen) / (double)top);
	}
}

static int write_plot_files(const struct lab *lab, const char *term, const char *ext)
{
	const struct lab_opts *opt = &lab->opt;
	char path[PATH_MAX + 64];
	unsigned int s, i, n;
	FILE *g;

	fmt(path, sizeof(path), "%s/plots-%s.gp", opt->out, ext);
	g = fopen(path, "w");
	if (!g)
		return -errno;
	fprintf(g, "# faultline lab: %s plots (gnuplot %s)\nset terminal %s\n", ext, path, term);
	fprintf(g, "set termoption noenhanced\nset logscale xy\nset grid\n"
		   "set key outside right top\nset ylabel 'fraction slower'\nset format y '%%g'\n"
		   "set yrange [*:1.2]\n");
	for (s = 0; s < NR_SCEN; s++) {
		if (!(opt->scen_mask & (1u << s)))
			continue;
		for (int which = 0; which < 2; which++) {
			if (which && !scen_defs[s].writer)
				continue;
			fprintf(g, "set output '%s/%s-%s.%s'\n", opt->out, scen_defs[s].name,
				which ? "writer" : "faults", ext);
			fprintf(g,
				"set title '%s: %s latency (CCDF)'\nset xlabel '%s latency (us)'\n",
				scen_defs[s].name,
				which ? "writer (mmap/munmap/mprotect)" : "fault",
				which ? "call" : "fault");
			fprintf(g, "plot ");
			for (i = 0, n = 0; i < lab->nruns; i++) {
				if (lab->runs[i].sc != s || lab->runs[i].failed)
					continue;
				fprintf(g,
					"%s'%s/%s-%s-%s.dat' with steps lw 2 lc rgb '%s' dt %d "
					"title '%s'",
					n++ ? ", \\\n     " : "", opt->out, scen_defs[s].name,
					which ? "writer" : "faults", file_name(lab->runs[i].sub),
					colour(lab->runs[i].sub),
					lab->runs[i].sub->delay_us ? 2 : 1, lab->runs[i].sub->name);
			}
			if (!n)
				fprintf(g, "0 notitle");
			fprintf(g, "\n");
		}
	}
	/* Throughput: faults/s per scenario and subject. */
	fprintf(g,
		"set output '%s/throughput.%s'\nunset logscale x\nset logscale y\n"
		"set autoscale y\nset datafile missing 'NaN'\n"
		"set title 'fault throughput (faults/s, log scale)'\nset xlabel ''\n"
		"set ylabel 'faults/s'\nset style data histogram\n"
		"set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
		"set xtics rotate by -20\nset key outside right top\n",
		opt->out, ext);
	/* One colour per policy (the kernel black); emulated rows hatched. */
	for (i = 0; i < lab->nsubjects; i++)
		fprintf(g, "%s'%s/throughput.dat' using %u%s title columnheader(%u) lc rgb '%s' %s",
			i ? ", \\\n     " : "plot ", opt->out, i + 2, i ? "" : ":xtic(1)", i + 2,
			colour(&lab->subjects[i]),
			lab->subjects[i].delay_us ? "fs pattern 4 border -1"
						  : "fs solid 0.8 border -1");
	fprintf(g, "\n");
	fclose(g);
	return 0;
}

static void make_plots(const struct lab *lab)
{
	const struct lab_opts *opt = &lab->opt;
	char path[PATH_MAX + 64], gp[PATH_MAX + 64];
	const char *argv[3] = {"gnuplot", gp, NULL};
	unsigned int i, s, j;
	FILE *f;

	if (mkdir(opt->out, 0755) && errno != EEXIST) {
		fprintf(stderr, "lab: plots: mkdir %s: %s\n", opt->out, strerror(errno));
		return;
	}
	for (i = 0; i < lab->nruns; i++) {
		if (lab->runs[i].failed)
			continue;
		for (int which = 0; which < 2; which++) {
			fmt(path, sizeof(path), "%s/%s-%s-%s.dat", opt->out,
			    scen_defs[lab->runs[i].sc].name, which ? "writer" : "faults",
			    file_name(lab->runs[i].sub));
			f = fopen(path, "w");
			if (!f)
				continue;
			fprintf(f, "# %s, %s: latency (us), fraction slower\n",
				scen_defs[lab->runs[i].sc].name, lab->runs[i].sub->name);
			if (which)
				write_ccdf(f, &lab->runs[i].r.wr, lab->runs[i].r.wr.count);
			else
				write_ccdf(f, &lab->runs[i].r.flt, lab->runs[i].r.flt.count);
			fclose(f);
		}
	}
	fmt(path, sizeof(path), "%s/throughput.dat", opt->out);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "scenario");
		for (j = 0; j < lab->nsubjects; j++)
			fprintf(f, " \"%s\"", lab->subjects[j].name);
		fprintf(f, "\n");
		for (s = 0; s < NR_SCEN; s++) {
			if (!(opt->scen_mask & (1u << s)))
				continue;
			fprintf(f, "%s", scen_defs[s].name);
			for (j = 0; j < lab->nsubjects; j++) {
				double v = NAN;

				for (i = 0; i < lab->nruns; i++)
					if (lab->runs[i].sc == s &&
					    lab->runs[i].sub == &lab->subjects[j] &&
					    !lab->runs[i].failed)
						v = rate(&lab->runs[i], lab->runs[i].r.faults);
				if (isnan(v))
					fprintf(f, " NaN");
				else
					fprintf(f, " %.0f", v);
			}
			fprintf(f, "\n");
		}
		fclose(f);
	}
	if (write_plot_files(lab, "pngcairo size 1000,600", "png") ||
	    write_plot_files(lab, "svg size 1000,600 dynamic", "svg")) {
		fprintf(stderr, "lab: plots: cannot write to %s\n", opt->out);
		return;
	}
	for (i = 0; i < 2; i++) {
		fmt(gp, sizeof(gp), "%s/plots-%s.gp", opt->out, i ? "svg" : "png");
		if (ks_run_cmd(argv)) {
			fprintf(stderr,
				"lab: plots: gnuplot failed or is missing (apt-get install "
				"gnuplot-nox); the data and %s are in %s/\n",
				gp, opt->out);
			return;
		}
	}
	if (!opt->json)
		printf("\nplots: %s/*.png and *.svg (gnuplot scripts and data beside them)\n",
		       opt->out);
}

/* ======================================================================
 * Command line
 * ====================================================================== */

static void usage(FILE *out)
{
	fprintf(out, "usage: faultline lab [SCENARIO...] [OPTIONS]\n"
		     "\n"
		     "Runs each scenario under every policy and the real kernel side by side\n"
		     "(root: a swap file and a memory cgroup, removed afterwards).  Scenarios\n"
		     "(default: all):\n");
	for (unsigned int s = 0; s < NR_SCEN; s++)
		fprintf(out, "  %-18s %s\n", scen_defs[s].name, scen_defs[s].what);
	fprintf(out,
		"\noptions (sizes take K, M, G):\n"
		"  -r, --region SIZE     working set (default per scenario)\n"
		"  -b, --budget SIZE     memory budget (default per scenario)\n"
		"  -t, --threads N       faulting threads (default per scenario)\n"
		"  -s, --seconds S       measured window per run (default 3)\n"
		"  -w, --warmup S        unmeasured time before it (default 0.5)\n"
		"      --seed N          seed of the access pattern and contents (default 1)\n"
		"  -p, --policies LIST   comma-separated subset of mmap,bail,drop,drop-vma,hold\n"
		"  -d, --delivery D      sigbus (default: the faulting thread waits, as in the\n"
		"                        kernel) or thread (handler threads park the faults)\n"
		"      --slow US         emulated slow store rows: US microseconds added to each\n"
		"                        I/O (default 1000; 0: none)\n"
		"      --no-kernel       no kernel rows (no root needed)\n"
		"      --writer-pause US elsewhere: pause between mmap/munmap pairs (default 0:\n"
		"                        a tight loop, as in the benchmark of d065bd810b6d)\n"
		"  -o, --out DIR         plots and their data (default lab-results)\n"
		"      --no-plots        no gnuplot\n"
		"  -j, --json            JSON on stdout instead of the tables\n"
		"      --quick           small sizes, for a smoke test\n"
		"      --dir DIR         where the kernel's swap file goes (default $TMPDIR or\n"
		"                        /tmp, the file system of faultline's store)\n"
		"      --timeout S       per run (default 600)\n"
		"  -v, --verbose         commands' output\n"
		"\nExit status: 0; 1 if a run failed (data mismatch, policy contradiction,\n"
		"error); 2 for bad usage.\n");
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024;
		end++;
		break;
	case 'm':
	case 'M':
		v *= 1024 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		v *= 1024.0 * 1024 * 1024;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' || *end == 'B')
		end += strspn(end, "iB");
	if (*end || v < PAGE || v > 1e15) {
		fprintf(stderr, "lab: bad size '%s'\n", s);
		exit(2);
	}
	return (size_t)v & ~(PAGE - 1);
}

static double parse_double(const char *s, double lo, double hi, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "lab: bad %s '%s' (%g to %g)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_policies(struct lab_opts *opt, const char *s)
{
	char buf[128], *tok, *save = NULL;
	int p;

	fmt(buf, sizeof(buf), "%s", s);
	opt->npolicies = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		p = fl_policy_by_name(tok);
		if (p < 0 || opt->npolicies == FL_POLICY_NR) {
			fprintf(stderr, "lab: unknown policy '%s'\n", tok);
			exit(2);
		}
		opt->policies[opt->npolicies++] = p;
	}
}

static void parse_args(struct lab_opts *opt, int argc, char **argv)
{
	enum { O_SEED = 256, O_SLOW, O_NOKERNEL, O_NOPLOTS, O_QUICK, O_DIR, O_TIMEOUT, O_PAUSE };
	static const struct option lo[] = {
		{"region", 1, NULL, 'r'},
		{"budget", 1, NULL, 'b'},
		{"threads", 1, NULL, 't'},
		{"seconds", 1, NULL, 's'},
		{"warmup", 1, NULL, 'w'},
		{"seed", 1, NULL, O_SEED},
		{"policies", 1, NULL, 'p'},
		{"delivery", 1, NULL, 'd'},
		{"slow", 1, NULL, O_SLOW},
		{"no-kernel", 0, NULL, O_NOKERNEL},
		{"out", 1, NULL, 'o'},
		{"no-plots", 0, NULL, O_NOPLOTS},
		{"json", 0, NULL, 'j'},
		{"quick", 0, NULL, O_QUICK},
		{"dir", 1, NULL, O_DIR},
		{"timeout", 1, NULL, O_TIMEOUT},
		{"writer-pause", 1, NULL, O_PAUSE},
		{"verbose", 0, NULL, 'v'},
		{"help", 0, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *tmp = getenv("TMPDIR");
	int c;

	fmt(opt->dir, sizeof(opt->dir), "%s", tmp && *tmp ? tmp : "/tmp");
	optind = 1;
	while ((c = next_option(argc, argv, "r:b:t:s:w:p:d:o:jvh", lo, usage)) != -1) {
		switch (c) {
		case 'r':
			opt->region = parse_size(optarg);
			break;
		case 'b':
			opt->budget = parse_size(optarg);
			break;
		case 't':
			opt->threads =
				(unsigned int)parse_double(optarg, 1, MAX_THREADS, "threads");
			break;
		case 's':
			opt->seconds = parse_double(optarg, 0.1, 3600, "seconds");
			break;
		case 'w':
			opt->warmup = parse_double(optarg, 0, 3600, "warm-up");
			break;
		case O_SEED:
			opt->seed = (uint64_t)parse_double(optarg, 0, 1e18, "seed");
			break;
		case 'p':
			parse_policies(opt, optarg);
			break;
		case 'd':
			opt->delivery = fl_delivery_by_name(optarg);
			if (opt->delivery < 0) {
				fprintf(stderr, "lab: delivery is thread or sigbus\n");
				exit(2);
			}
			break;
		case O_SLOW:
			opt->slow_us = (unsigned int)parse_double(optarg, 0, 1e7, "delay (us)");
			break;
		case O_NOKERNEL:
			opt->kernel = false;
			break;
		case 'o':
			fmt(opt->out, sizeof(opt->out), "%s", optarg);
			break;
		case O_NOPLOTS:
			opt->plots = false;
			break;
		case 'j':
			opt->json = true;
			break;
		case O_QUICK:
			opt->quick = true;
			opt->seconds = 0.5;
			opt->warmup = 0.2;
			break;
		case O_DIR:
			fmt(opt->dir, sizeof(opt->dir), "%s", optarg);
			break;
		case O_TIMEOUT:
			opt->timeout = (unsigned int)parse_double(optarg, 1, 86400, "timeout");
			break;
		case O_PAUSE:
			opt->writer_pause_us = (unsigned int)parse_double(optarg, 0, 1e7, "pause");
			break;
		case 'v':
			opt->verbose = true;
			break;
		}
	}
	for (; optind < argc; optind++) {
		unsigned int s;

		if (!strcmp(argv[optind], "all")) {
			opt->scen_mask = (1u << NR_SCEN) - 1;
			continue;
		}
		for (s = 0; s < NR_SCEN; s++)
			if (!strcmp(argv[optind], scen_defs[s].name))
				break;
		if (s == NR_SCEN) {
			fprintf(stderr, "lab: unknown scenario '%s'\n", argv[optind]);
			usage(stderr);
			exit(2);
		}
		opt->scen_mask |= 1u << s;
	}
	if (!opt->scen_mask)
		opt->scen_mask = (1u << NR_SCEN) - 1;
}

static int run_lab(struct lab *lab, int argc, char **argv)
{
	unsigned int s, i, idx = 0, total, failed = 0;
	const struct lab_opts *opt = &lab->opt;
	uint64_t t0;

	parse_args(&lab->opt, argc, argv);
	if ((size_t)sysconf(_SC_PAGESIZE) != PAGE) {
		fprintf(stderr, "lab: needs 4 KiB pages\n");
		return 2;
	}
	lab->tty = isatty(2) && !opt->verbose;
	ks_init("lab", opt->verbose);
	lab->shared = mmap(NULL, sizeof(*lab->shared), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lab->shared == MAP_FAILED) {
		perror("lab: mmap");
		return 1;
	}
	if (opt->kernel) {
		size_t most = 0, b;

		for (s = 0; s < NR_SCEN; s++)
			if (opt->scen_mask & (1u << s)) {
				b = scen_region(opt, s) * 2 + 256 * MiB;
				most = b > most ? b : most;
			}
		if (ks_kernel_prepare(opt->dir, most, scen_budget(opt, SC_PARALLEL), -1)) {
			fprintf(stderr, "lab: no kernel rows: %s (--no-kernel to skip them)\n",
				ks_kern.error);
			lab->opt.kernel = false;
		}
	}
	build_subjects(lab);
	for (s = 0, total = 0; s < NR_SCEN; s++)
		if (opt->scen_mask & (1u << s))
			total += lab->nsubjects;
	if (!opt->json) {
		struct utsname u;

		uname(&u);
		printf("faultline lab: Linux %s, %ld CPUs, delivery %s, seed %" PRIu64 "\n",
		       u.release, sysconf(_SC_NPROCESSORS_ONLN), fl_delivery_name(opt->delivery),
		       opt->seed);
		if (opt->kernel)
			printf("kernel: swap file %s (%zu MiB), cgroup v1 %s, swappiness %ld, "
			       "page-cluster %ld, zswap %s\n",
			       ks_kern.swap_path, ks_kern.swapfile >> 20, ks_kern.cg_path,
			       ks_kern.cg_swappiness, ks_kern.page_cluster, ks_kern.zswap);
		if (ks_kern.other_swaps[0])
			printf("WARNING: other swap was on: %s\n", ks_kern.other_swaps);
		for (char **e = environ; *e; e++)
			if (!strncmp(*e, "FAULTLINE_", 10))
				printf("environment: %s (applies to every faultline row)\n", *e);
		fflush(stdout);
	}
	t0 = now_ns();
	for (s = 0; s < NR_SCEN; s++) {
		if (!(opt->scen_mask & (1u << s)))
			continue;
		for (i = 0; i < lab->nsubjects; i++)
			run_one(lab, s, &lab->subjects[i], ++idx, total, 0);
		if (!opt->json) {
			print_scenario(lab, s);
			fflush(stdout);
		}
	}
	ks_cleanup(); /* the machine is back as it was before anything is printed */
	if (opt->json)
		print_json(lab, stdout);
	else
		print_legend(lab);
	if (opt->plots)
		make_plots(lab);
	for (i = 0; i < lab->nruns; i++)
		failed += lab->runs[i].failed;
	if (!opt->json)
		printf("\n%u runs in %.0f s, %u failed%s\n", lab->nruns,
		       (double)(now_ns() - t0) / 1e9, failed,
		       failed ? ": see above (data mismatch, policy contradiction or error)" : "");
	return failed ? 1 : 0;
}

int lab_main(int argc, char **argv)
{
	/* Large (every run's histograms): on the heap. */
	struct lab *lab = calloc(1, sizeof(*lab));
	int ret;

	if (!lab) {
		perror("lab");
		return 1;
	}
	lab->opt = lab_defaults;
	lab->shared = MAP_FAILED;
	ret = run_lab(lab, argc, argv);
	if (lab->shared != MAP_FAILED)
		munmap(lab->shared, sizeof(*lab->shared));
	free(lab);
	return ret;
}
