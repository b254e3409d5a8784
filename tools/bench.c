/* SPDX-License-Identifier: MIT */
/*
 * bench: the demand-zero fault path of faultline, against anchors measured in
 * the same run.  A benchmark, not a test: it asserts nothing about speed, it
 * reports ratios.  See BENCHMARKS.md.
 *
 * Figures (each one for 1 and 2 application threads):
 *
 *   kernel.scatter.{write,read}       plain anonymous memory, pages touched in
 *                                     a stride permutation: the kernel's own
 *                                     first-touch fault
 *   uffd-thread.scatter.{write,read}  the bare userfaultfd (bare.c): one
 *                                     handler thread, blocking read(), one
 *                                     UFFDIO_COPY / UFFDIO_ZEROPAGE per fault
 *   uffd-sigbus.scatter.{write,read}  the same with UFFD_FEATURE_SIGBUS, the
 *                                     faulting thread resolving its own fault
 *   fl-thread.scatter.{write,read}    faultline, fault-around off, against
 *   fl-sigbus.scatter.{write,read}    the bare anchor of the same delivery
 *                                     (goal <= 1.25) and against the kernel
 *   kernel.seq.{write,read}           sequential first touch of a large region
 *   fl-thread.seq.{write,read}        the same in faultline with its default
 *   fl-sigbus.seq.{write,read}        fault-around (goal: throughput >= 0.8 of
 *                                     the kernel's)
 *
 * Every figure is the median of --rounds rounds; within a round all figures
 * run one after another (every other round in reverse order), so that noise
 * on a shared machine hits the anchors and the subjects alike.  Each run gets
 * a fresh mapping (and a fresh faultline space) that is torn down before the
 * next one.
 */
#define _GNU_SOURCE
#define TOOL "bench"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "faultline.h"

#include "bare.h"
#include "toolbox.h"

#define MAX_ROUNDS 101
#define MAX_THREADS 2
#define MAX_CPUS 64
#define MAX_FIGURES 64
/* max/min over the rounds above which a figure is flagged in the table. */
#define UNSTABLE 1.5

enum impl {
	IMPL_KERNEL,
	IMPL_UFFD_THREAD,
	IMPL_UFFD_SIGBUS,
	IMPL_FL_THREAD,
	IMPL_FL_SIGBUS,
};

static const char *impl_name(enum impl impl)
{
	switch (impl) {
	case IMPL_KERNEL:
		return "kernel";
	case IMPL_UFFD_THREAD:
		return "uffd-thread";
	case IMPL_UFFD_SIGBUS:
		return "uffd-sigbus";
	case IMPL_FL_THREAD:
		return "fl-thread";
	case IMPL_FL_SIGBUS:
		return "fl-sigbus";
	}
	return "?";
}

enum pattern {
	PAT_SCATTER, /* fault-around off, stride permutation: cost per fault */
	PAT_SEQ,     /* defaults, address order: pages per second */
};

enum touch {
	TOUCH_WRITE,
	TOUCH_READ,
};

struct figure {
	char name[64];
	enum impl impl;
	enum pattern pat;
	enum touch touch;
	unsigned int threads;
	int anchor;  /* index of the figure this one is divided by, or -1 */
	int anchor2; /* faultline scatter only: the kernel anchor, or -1 */
	double goal; /* 0: none; scatter: ratio <= goal; seq: ratio >= goal */
	double samples[MAX_ROUNDS];
	unsigned int nsamples;
	bool failed;
	char error[160];
	char note[160]; /* faultline's own counters, last round */
	unsigned int warnings;
	/* Computed at the end. */
	double median, min, max, ratio, ratio2;
};

static struct {
	unsigned int rounds;
	unsigned int warmup;
	size_t pages;	/* scatter: pages per run, split among the threads */
	size_t seq_mib; /* seq: region size per run */
	unsigned int threads[MAX_THREADS];
	unsigned int nthreads_list;
	bool touch_write, touch_read;
	bool do_scatter, do_seq;
	bool json;
	bool verbose;
	bool preheat;
	int cpu_app[MAX_CPUS];
	unsigned int ncpu_app;
	int cpu_handler;
	unsigned int timeout;
} opt = {
	.rounds = 7,
	.warmup = 1,
	.pages = 16384,
	.seq_mib = 256,
	.threads = {1, 2},
	.nthreads_list = 2,
	.touch_write = true,
	.touch_read = true,
	.do_scatter = true,
	.do_seq = true,
	.cpu_handler = -1,
	.timeout = 120,
	.preheat = true,
};

static struct figure figures[MAX_FIGURES];
static unsigned int nfigures;
static size_t page_size;

/* One page of zeros, the UFFDIO_COPY source of the bare anchors. */
static char *zero_page;

static int pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* ---- Watchdog: a fault that is never served must not hang the bench. ---- */

static const char *volatile current_run = "";

static void watchdog_fire(int sig)
{
	static const char msg[] = "bench: run timed out (fault never served?): ";
	const char *name = current_run;

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, name, strlen(name)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(3);
	_exit(3);
}

/* ---- The access pattern ---- */

static size_t gcd(size_t a, size_t b)
{
	while (b) {
		size_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * A stride coprime with n, far from 1 and from n - 1: page k * stride mod n is
 * a permutation in which no two consecutive touches are neighbours.
 */
static size_t scatter_stride(size_t n)
{
	size_t s, tries;

	if (n < 5)
		return 1 % n;
	s = (size_t)((double)n * 0.6180339887) | 1;
	for (tries = 0; tries < n; tries++, s++) {
		if (s > n - 2)
			s = 2;
		if (gcd(s, n) == 1)
			return s;
	}
	return 1;
}

struct worker {
	pthread_t tid;
	char *base;
	size_t npages;
	size_t stride;
	enum touch touch;
	int cpu;
	struct bare *bare; /* the bare anchor's region, or NULL */
	pthread_barrier_t *barrier;
	uint64_t t0, t1;
	unsigned long sink;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t k, idx = 0;
	unsigned long sink = 0;

	pin_self(w->cpu);
	if (w->bare && bare_thread_enter(w->bare)) {
		fprintf(stderr, "bench: more faulting threads than the bare anchor serves\n");
		exit(2);
	}
	pthread_barrier_wait(w->barrier);
	w->t0 = now_ns();
	if (w->touch == TOUCH_WRITE) {
		for (k = 0; k < w->npages; k++) {
			*(volatile char *)(w->base + idx * page_size) = 1;
			idx += w->stride;
			if (idx >= w->npages)
				idx -= w->npages;
		}
	} else {
		for (k = 0; k < w->npages; k++) {
			sink += *(volatile char *)(w->base + idx * page_size);
			idx += w->stride;
			if (idx >= w->npages)
				idx -= w->npages;
		}
	}
	w->t1 = now_ns();
	w->sink = sink;
	bare_thread_exit();
	return NULL;
}

/*
 * Touch [base, base + npages pages) with nthreads threads, each on its own
 * half, and return the time from the first thread's start to the last one's
 * end.  bare: the bare anchor's region, or NULL.
 */
static int touch_region(char *base, size_t npages, unsigned int nthreads, enum pattern pat,
			enum touch touch, struct bare *bare, uint64_t *elapsed)
{
	struct worker w[MAX_THREADS];
	pthread_barrier_t barrier;
	size_t per = npages / nthreads;
	uint64_t t0 = UINT64_MAX, t1 = 0;
	unsigned long sink = 0;
	unsigned int i;
	int err;

	pthread_barrier_init(&barrier, NULL, nthreads);
	for (i = 0; i < nthreads; i++) {
		w[i] = (struct worker){
			.base = base + i * per * page_size,
			.npages = i == nthreads - 1 ? npages - i * per : per,
			.touch = touch,
			.cpu = opt.ncpu_app ? opt.cpu_app[i % opt.ncpu_app] : -1,
			.bare = bare,
			.barrier = &barrier,
		};
		w[i].stride = pat == PAT_SEQ ? 1 % w[i].npages : scatter_stride(w[i].npages);
		err = pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
		if (err) {
			fprintf(stderr, "bench: pthread_create: %s\n", strerror(err));
			exit(2);
		}
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].t0 < t0)
			t0 = w[i].t0;
		if (w[i].t1 > t1)
			t1 = w[i].t1;
		sink += w[i].sink;
	}
	pthread_barrier_destroy(&barrier);
	*elapsed = t1 - t0;
	/* A read of never-written memory must see zeros. */
	return sink ? -EIO : 0;
}

/* ---- Anchor d: the kernel's own first touch ---- */

static int map_plain(size_t len, char **out)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	/* 4 KiB faults whatever the THP policy: the unit faultline serves. */
	madvise(p, len, MADV_NOHUGEPAGE);
	*out = p;
	return 0;
}

static int run_kernel(struct figure *f, size_t npages, uint64_t *elapsed)
{
	char *p = NULL;
	int err = map_plain(npages * page_size, &p);

	if (err)
		return err;
	err = touch_region(p, npages, f->threads, f->pat, f->touch, NULL, elapsed);
	munmap(p, npages * page_size);
	return err;
}

/* ---- Anchors a and b: bare userfaultfd, as small as it can be ---- */

/*
 * A write gets a private page of zeros, a read the zero page, as the
 * kernel's first touch does.
 */
static const void *zero_contents(struct bare *b, uintptr_t addr, bool write, char *buf)
{
	return write ? zero_page : NULL;
}

static int run_bare(struct figure *f, size_t npages, uint64_t *elapsed)
{
	bool sigbus = f->impl == IMPL_UFFD_SIGBUS;
	const struct bare_config cfg = {
		.tool = TOOL,
		.len = npages * page_size,
		.sigbus = sigbus,
		/* One handler thread, or each application thread its own. */
		.threads = sigbus ? f->threads : 1,
		.cpu = opt.cpu_handler,
		.contents = zero_contents,
	};
	struct bare b;
	int err;

	err = bare_setup(&b, &cfg, NULL, 0);
	if (err)
		return err;
	err = touch_region(b.base, npages, f->threads, f->pat, f->touch, &b, elapsed);
	bare_teardown(&b);
	return err;
}

/* ---- Subject c and e: faultline ---- */

static int fl_config_for(const struct figure *f, struct fl_config *cfg)
{
	int err = fl_config_init(cfg);

	if (err)
		return err;
	cfg->delivery = f->impl == IMPL_FL_SIGBUS ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
	if (f->pat == PAT_SCATTER) {
		/* Like for like with the bare anchor: one page per fault, and
		 * (unless FAULTLINE_HANDLERS says otherwise) one handler
		 * thread, as the anchor has. */
		cfg->fault_around = 1;
		cfg->fault_around_max = 1;
		if (!getenv("FAULTLINE_HANDLERS"))
			cfg->handlers = 1;
	}
	return 0;
}

/*
 * Create the space with the calling thread's affinity narrowed to
 * --cpu-handler, so that the threads it starts inherit it (best effort:
 * faultline has no affinity option of its own).
 */
static int fl_create_pinned(const struct fl_config *cfg, struct fl_space **sp)
{
	cpu_set_t saved;
	int err;

	if (opt.cpu_handler < 0)
		return fl_space_create(cfg, sp);
	pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
	pin_self(opt.cpu_handler);
	err = fl_space_create(cfg, sp);
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	return err;
}

static int run_faultline(struct figure *f, size_t npages, uint64_t *elapsed)
{
	struct fl_config cfg;
	struct fl_space *sp;
	struct fl_stats st;
	char *p;
	int err;

	err = fl_config_for(f, &cfg);
	if (err)
		return err;
	err = fl_create_pinned(&cfg, &sp);
	if (err)
		return err;
	p = fl_mmap(sp, NULL, npages * page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS);
	if (p == MAP_FAILED || !p) {
		err = -errno;
		fl_space_destroy(sp);
		return err ? err : -ENOMEM;
	}
	err = touch_region(p, npages, f->threads, f->pat, f->touch, NULL, elapsed);
	if (!err && !fl_stats(sp, &st)) {
		snprintf(f->note, sizeof(f->note),
			 "faults=%" PRIu64 " around=%" PRIu64 " zero_mapped=%" PRIu64
			 " zero_filled=%" PRIu64 " spurious=%" PRIu64 " eagain=%" PRIu64,
			 st.faults, st.fault_around_pages, st.pages_zero_mapped,
			 st.pages_zero_filled, st.faults_spurious, st.uffd_eagain);
		/*
		 * With fault-around off, every page must be one fault: fewer
		 * would mean the figure measures batching, not the fault path.
		 * The counters may trail the last wake-up by a fault or two.
		 */
		if (f->pat == PAT_SCATTER &&
		    (st.fault_around_pages || st.faults + 2 * f->threads < npages ||
		     st.faults > npages + 2 * f->threads))
			f->warnings++;
	}
	fl_space_destroy(sp);
	return err;
}

/* ---- Figures ---- */

static int add_figure(enum impl impl, enum pattern pat, enum touch touch, unsigned int threads)
{
	struct figure *f = &figures[nfigures];

	if (nfigures == MAX_FIGURES) {
		fprintf(stderr, "bench: too many figures\n");
		exit(2);
	}
	f->impl = impl;
	f->pat = pat;
	f->touch = touch;
	f->threads = threads;
	f->anchor = -1;
	f->anchor2 = -1;
	snprintf(f->name, sizeof(f->name), "%s.%s.%s.t%u", impl_name(impl),
		 pat == PAT_SEQ ? "seq" : "scatter", touch == TOUCH_WRITE ? "write" : "read",
		 threads);
	return (int)nfigures++;
}

static void build_figures(void)
{
	unsigned int ti, k;
	int kern, ut, us, i;

	for (ti = 0; ti < opt.nthreads_list; ti++) {
		unsigned int t = opt.threads[ti];

		for (k = 0; k < 2; k++) {
			enum touch touch = k ? TOUCH_READ : TOUCH_WRITE;

			if ((touch == TOUCH_WRITE && !opt.touch_write) ||
			    (touch == TOUCH_READ && !opt.touch_read))
				continue;
			if (opt.do_scatter) {
				kern = add_figure(IMPL_KERNEL, PAT_SCATTER, touch, t);
				ut = add_figure(IMPL_UFFD_THREAD, PAT_SCATTER, touch, t);
				figures[ut].anchor = kern;
				us = add_figure(IMPL_UFFD_SIGBUS, PAT_SCATTER, touch, t);
				figures[us].anchor = kern;
				i = add_figure(IMPL_FL_THREAD, PAT_SCATTER, touch, t);
				figures[i].anchor = ut;
				figures[i].anchor2 = kern;
				figures[i].goal = 1.25;
				i = add_figure(IMPL_FL_SIGBUS, PAT_SCATTER, touch, t);
				figures[i].anchor = us;
				figures[i].anchor2 = kern;
				figures[i].goal = 1.25;
			}
			if (opt.do_seq) {
				kern = add_figure(IMPL_KERNEL, PAT_SEQ, touch, t);
				i = add_figure(IMPL_FL_THREAD, PAT_SEQ, touch, t);
				figures[i].anchor = kern;
				figures[i].goal = 0.8;
				i = add_figure(IMPL_FL_SIGBUS, PAT_SEQ, touch, t);
				figures[i].anchor = kern;
				figures[i].goal = 0.8;
			}
		}
	}
}

/* Scatter: microseconds per fault.  Seq: pages per second. */
static void run_figure(struct figure *f, bool record)
{
	size_t npages = f->pat == PAT_SEQ ? (opt.seq_mib << 20) / page_size : opt.pages;
	uint64_t elapsed = 0;
	double v;
	int err;

	if (f->failed)
		return;
	/* A read maps the zero page and allocates nothing worth warming. */
	if (opt.preheat && f->touch == TOUCH_WRITE)
		preheat(npages * page_size);
	current_run = f->name;
	alarm(opt.timeout);
	switch (f->impl) {
	case IMPL_KERNEL:
		err = run_kernel(f, npages, &elapsed);
		break;
	case IMPL_UFFD_THREAD:
	case IMPL_UFFD_SIGBUS:
		err = run_bare(f, npages, &elapsed);
		break;
	default:
		err = run_faultline(f, npages, &elapsed);
		break;
	}
	alarm(0);
	if (err) {
		f->failed = true;
		snprintf(f->error, sizeof(f->error), "%s", strerror(-err));
		fprintf(stderr, "bench: %s failed: %s\n", f->name, f->error);
		return;
	}
	if (!elapsed)
		elapsed = 1;
	if (f->pat == PAT_SEQ)
		v = (double)npages * 1e9 / (double)elapsed;
	else
		v = (double)elapsed / 1e3 / (double)npages;
	if (opt.verbose)
		fprintf(stderr, "  %-28s %12.3f %s%s%s\n", f->name, f->pat == PAT_SEQ ? v / 1e3 : v,
			f->pat == PAT_SEQ ? "kpages/s" : "us/fault", f->note[0] ? "  " : "",
			f->note);
	if (record)
		f->samples[f->nsamples++] = v;
}

static void summarise(void)
{
	unsigned int i;

	for (i = 0; i < nfigures; i++) {
		struct figure *f = &figures[i];
		double s[MAX_ROUNDS];
		unsigned int n = f->nsamples;

		f->ratio = f->ratio2 = NAN;
		if (f->failed || !n) {
			f->median = f->min = f->max = NAN;
			continue;
		}
		memcpy(s, f->samples, n * sizeof(s[0]));
		f->median = median(s, n);
		f->min = s[0];
		f->max = s[n - 1];
	}
	for (i = 0; i < nfigures; i++) {
		struct figure *f = &figures[i];

		f->ratio = f->anchor < 0 ? 1.0 : f->median / figures[f->anchor].median;
		if (f->anchor2 >= 0)
			f->ratio2 = f->median / figures[f->anchor2].median;
	}
}

static const char *unit_of(const struct figure *f)
{
	return f->pat == PAT_SEQ ? "pages/s" : "us/fault";
}

static const char *goal_verdict(const struct figure *f, const char *yes, const char *no)
{
	if (isnan(f->ratio))
		return "n/a";
	if (f->pat == PAT_SEQ)
		return f->ratio >= f->goal ? yes : no;
	return f->ratio <= f->goal ? yes : no;
}

static const char *anchor_name(const struct figure *f)
{
	return f->anchor < 0 ? f->name : figures[f->anchor].name;
}

/* ---- Output ---- */

struct run_info {
	struct host_info host;
	struct fl_config defaults;
	uint64_t features;
	int features_err;
	double elapsed; /* seconds, the whole measurement */
	double foreign; /* CPU seconds spent by everything but us meanwhile */
	double steal;	/* CPU seconds the hypervisor took meanwhile */
};

static void gather_info(struct run_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	read_host(&ri->host);
	fl_config_init(&ri->defaults);
	ri->features_err = fl_uffd_features(&ri->features);
}

static void print_table(const struct run_info *ri)
{
	unsigned int i;

	print_host("bench", &ri->host);
	printf("rounds %u (median; %u warm-up), scatter %zu pages (%zu MiB) per run, "
	       "seq %zu MiB per run\n",
	       opt.rounds, opt.warmup, opt.pages, opt.pages * page_size >> 20, opt.seq_mib);
	printf("faultline defaults: handlers=%u fault_around=%u fault_around_max=%u "
	       "(scatter runs: fault-around 1/1 and, like the anchor, 1 handler unless "
	       "FAULTLINE_HANDLERS is set)\n",
	       ri->defaults.handlers, ri->defaults.fault_around, ri->defaults.fault_around_max);
	if (ri->features_err)
		printf("userfaultfd features: unknown (%s)\n", strerror(-ri->features_err));
	else
		printf("userfaultfd features: %#" PRIx64 "\n", ri->features);
	print_quiet(ri->elapsed, ri->foreign, ri->steal);
	printf("\n%-29s %10s %-8s  %21s %8s  %-29s %s\n", "figure", "median", "unit", "min .. max",
	       "ratio", "anchor", "goal");
	for (i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i];
		double scale = f->pat == PAT_SEQ ? 1e-3 : 1;
		char goal[64] = "";

		if (i && figures[i - 1].pat != f->pat)
			printf("\n");
		if (f->failed) {
			printf("%-29s FAILED: %s\n", f->name, f->error);
			continue;
		}
		if (f->goal > 0)
			snprintf(goal, sizeof(goal), "%s %.2f: %s",
				 f->pat == PAT_SEQ ? ">=" : "<=", f->goal,
				 goal_verdict(f, "met", "NOT MET"));
		printf("%-29s %10.3f %-8s  %9.3f .. %-9.3f %7.3fx  %-29s %s", f->name,
		       f->median * scale, f->pat == PAT_SEQ ? "kpages/s" : "us/fault",
		       f->min * scale, f->max * scale, f->ratio,
		       f->anchor < 0 ? "(itself)" : figures[f->anchor].name, goal);
		if (f->anchor2 >= 0)
			printf("; %.2fx %s", f->ratio2, figures[f->anchor2].name);
		printf("\n");
		if (f->max > UNSTABLE * f->min)
			printf("  UNSTABLE: max/min %.2f over the rounds; see BENCHMARKS.md\n",
			       f->max / f->min);
		if (f->warnings)
			printf("  WARNING: %u run(s) did not fault once per page (%s)\n",
			       f->warnings, f->note);
		else if (f->note[0] && (f->pat == PAT_SEQ || opt.verbose))
			printf("  faultline counters, last run: %s\n", f->note);
	}
	printf("\n");
	for (i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i];

		if (f->failed) {
			printf("BENCH name=%s status=failed error=\"%s\"\n", f->name, f->error);
			continue;
		}
		printf("BENCH name=%s value=%.*f unit=%s ratio=%.3f anchor=%s", f->name,
		       f->pat == PAT_SEQ ? 0 : 3, f->median, unit_of(f), f->ratio, anchor_name(f));
		if (f->anchor2 >= 0)
			printf(" ratio_kernel=%.3f anchor_kernel=%s", f->ratio2,
			       figures[f->anchor2].name);
		if (f->goal > 0)
			printf(" goal=%s%.2f goal_met=%s", f->pat == PAT_SEQ ? ">=" : "<=", f->goal,
			       goal_verdict(f, "yes", "no"));
		printf(" rounds=%u min=%.*f max=%.*f spread=%.2f\n", f->nsamples,
		       f->pat == PAT_SEQ ? 0 : 3, f->min, f->pat == PAT_SEQ ? 0 : 3, f->max,
		       f->max / f->min);
	}
}

static void print_json(const struct run_info *ri)
{
	unsigned int i, j;

	json_host("faultline", &ri->host);
	printf("  \"elapsed_s\": %.3f, \"foreign_cpu_s\": %.3f, \"steal_cpu_s\": %.3f,\n",
	       ri->elapsed, ri->foreign, ri->steal);
	printf("  \"rounds\": %u, \"warmup\": %u, \"scatter_pages\": %zu, \"seq_mib\": %zu,\n",
	       opt.rounds, opt.warmup, opt.pages, opt.seq_mib);
	printf("  \"defaults\": {\"handlers\": %u, \"fault_around\": %u, "
	       "\"fault_around_max\": %u},\n",
	       ri->defaults.handlers, ri->defaults.fault_around, ri->defaults.fault_around_max);
	printf("  \"figures\": [\n");
	for (i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i];

		printf("    {\"name\": \"%s\", \"threads\": %u, \"touch\": \"%s\", "
		       "\"unit\": \"%s\", ",
		       f->name, f->threads, f->touch == TOUCH_WRITE ? "write" : "read", unit_of(f));
		if (f->failed) {
			printf("\"status\": \"failed\", \"error\": \"%s\"}%s\n", f->error,
			       i + 1 < nfigures ? "," : "");
			continue;
		}
		json_num("value", f->median, ", ");
		json_num("min", f->min, ", ");
		json_num("max", f->max, ", ");
		json_num("ratio", f->ratio, ", ");
		printf("\"anchor\": \"%s\", ", anchor_name(f));
		if (f->anchor2 >= 0) {
			json_num("ratio_kernel", f->ratio2, ", ");
			printf("\"anchor_kernel\": \"%s\", ", figures[f->anchor2].name);
		}
		if (f->goal > 0)
			printf("\"goal\": \"%s%.2f\", \"goal_met\": %s, ",
			       f->pat == PAT_SEQ ? ">=" : "<=", f->goal,
			       isnan(f->ratio) ? "null" : goal_verdict(f, "true", "false"));
		printf("\"warnings\": %u, \"note\": \"%s\", \"samples\": [", f->warnings, f->note);
		for (j = 0; j < f->nsamples; j++)
			printf("%.6g%s", f->samples[j], j + 1 < f->nsamples ? ", " : "");
		printf("]}%s\n", i + 1 < nfigures ? "," : "");
	}
	printf("  ]\n}\n");
}

/* ---- Options ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bench [options]\n"
		"\n"
		"The demand-zero fault path of faultline, as ratios to anchors measured in\n"
		"the same run: the kernel's own first touch, and a bare userfaultfd handler\n"
		"of each delivery.  Not a test.  See BENCHMARKS.md.\n"
		"\n"
		"  -r, --rounds N       rounds; each figure is the median (default %u)\n"
		"  -w, --warmup N       discarded rounds before them (default %u)\n"
		"  -p, --pages N        scatter: pages faulted per run (default %zu)\n"
		"  -s, --seq-mib N      seq: MiB touched per run (default %zu)\n"
		"  -t, --threads LIST   application threads, e.g. 1,2 (default 1,2; at most %d)\n"
		"      --touch LIST     write,read (default both)\n"
		"      --no-scatter     skip the per-fault figures (a-d)\n"
		"      --no-seq         skip the sequential figures (e)\n"
		"      --cpu-app LIST   pin application thread i to CPU LIST[i %% n]\n"
		"      --cpu-handler N  pin the bare anchor's handler thread to CPU N, and\n"
		"                       create faultline spaces from CPU N so their threads\n"
		"                       inherit it (best effort)\n"
		"      --timeout S      give up on a run after S seconds (default %u)\n"
		"      --no-preheat     do not populate and free each run's worth of memory\n"
		"                       before it (see BENCHMARKS.md: free page reporting)\n"
		"      --json           print one JSON document instead of the table\n"
		"  -v, --verbose        every run on stderr, faultline counters in the table\n"
		"  -h, --help           this text\n"
		"\n"
		"faultline reads FAULTLINE_* from the environment for its defaults (the seq\n"
		"figures use them); the scatter figures always set fault_around=1.\n",
		opt.rounds, opt.warmup, opt.pages, opt.seq_mib, MAX_THREADS, opt.timeout);
}

/* The words of the options' lists. */
static int word_threads(const char *s)
{
	return (int)parse_num(s, "thread counts", 1, MAX_THREADS);
}

static int word_cpu(const char *s)
{
	return (int)parse_num(s, "CPUs", 0, CPU_SETSIZE - 1);
}

static int word_touch(const char *s)
{
	if (!strcmp(s, "write"))
		return TOUCH_WRITE;
	return strcmp(s, "read") ? -1 : TOUCH_READ;
}

enum {
	OPT_TOUCH = 256,
	OPT_NO_SCATTER,
	OPT_NO_SEQ,
	OPT_CPU_APP,
	OPT_CPU_HANDLER,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_NO_PREHEAT,
};

static void set_threads(const char *arg)
{
	int list[MAX_THREADS];

	opt.nthreads_list =
		parse_list(arg, "thread counts", list, MAX_THREADS, word_threads, false);
	for (unsigned int i = 0; i < opt.nthreads_list; i++)
		opt.threads[i] = (unsigned int)list[i];
}

static void set_touch(const char *arg)
{
	int touch[2];
	unsigned int n = parse_list(arg, "touch", touch, 2, word_touch, true);

	opt.touch_write = opt.touch_read = false;
	for (unsigned int i = 0; i < n; i++) {
		if (touch[i] == TOUCH_WRITE)
			opt.touch_write = true;
		else
			opt.touch_read = true;
	}
}

/* The options (parse_options()): name, key, argument, what it does. */
#define BENCH_OPTIONS(X)                                                                     \
	X("rounds", 'r', required_argument,                                                  \
	  opt.rounds = parse_num(optarg, "rounds", 1, MAX_ROUNDS))                           \
	X("warmup", 'w', required_argument,                                                  \
	  opt.warmup = parse_num(optarg, "warm-up rounds", 0, 100))                          \
	X("pages", 'p', required_argument,                                                   \
	  opt.pages = parse_num(optarg, "pages", 2 * MAX_THREADS, 1ul << 24))                \
	X("seq-mib", 's', required_argument,                                                 \
	  opt.seq_mib = parse_num(optarg, "seq MiB", 1, 1ul << 16))                          \
	X("threads", 't', required_argument, set_threads(optarg))                            \
	X("touch", OPT_TOUCH, required_argument, set_touch(optarg))                          \
	X("no-scatter", OPT_NO_SCATTER, no_argument, opt.do_scatter = false)                 \
	X("no-seq", OPT_NO_SEQ, no_argument, opt.do_seq = false)                             \
	X("cpu-app", OPT_CPU_APP, required_argument,                                         \
	  opt.ncpu_app = parse_list(optarg, "CPUs", opt.cpu_app, MAX_CPUS, word_cpu, false)) \
	X("cpu-handler", OPT_CPU_HANDLER, required_argument,                                 \
	  opt.cpu_handler = (int)parse_num(optarg, "CPU", 0, CPU_SETSIZE - 1))               \
	X("timeout", OPT_TIMEOUT, required_argument,                                         \
	  opt.timeout = parse_num(optarg, "timeout", 1, 86400))                              \
	X("json", OPT_JSON, no_argument, opt.json = true)                                    \
	X("no-preheat", OPT_NO_PREHEAT, no_argument, opt.preheat = false)                    \
	X("verbose", 'v', no_argument, opt.verbose = true)

int main(int argc, char **argv)
{
	struct run_info ri;
	struct cpu_times ct0, ct1;
	unsigned int r, i, failed = 0;
	uint64_t t0;

	parse_options(BENCH_OPTIONS, argc, argv, usage);
	no_operands(argc, argv);
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	zero_page =
		mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (zero_page == MAP_FAILED) {
		perror("bench: mmap");
		return 2;
	}
	memset(zero_page, 0, page_size); /* present before any timed copy */
	signal(SIGALRM, watchdog_fire);
	gather_info(&ri);
	build_figures();

	read_cpu_times(&ct0, false);
	t0 = now_ns();
	for (r = 0; r < opt.warmup + opt.rounds; r++) {
		bool record = r >= opt.warmup;

		if (record)
			fprintf(stderr, "bench: round %u/%u\n", r - opt.warmup + 1, opt.rounds);
		else
			fprintf(stderr, "bench: warm-up %u/%u\n", r + 1, opt.warmup);
		/* Every other round backwards: no figure always follows the same one. */
		for (i = 0; i < nfigures; i++)
			run_figure(&figures[r % 2 ? nfigures - 1 - i : i], record);
	}
	ri.elapsed = (double)(now_ns() - t0) / 1e9;
	read_cpu_times(&ct1, false);
	ri.foreign = (ct1.busy - ct0.busy) - (ct1.self - ct0.self);
	if (ri.foreign < 0)
		ri.foreign = 0;
	ri.steal = ct1.steal - ct0.steal;
	fprintf(stderr, "bench: %.1f s\n", ri.elapsed);

	summarise();
	if (opt.json)
		print_json(&ri);
	else
		print_table(&ri);
	for (i = 0; i < nfigures; i++)
		failed += figures[i].failed;
	return failed ? 1 : 0;
}
