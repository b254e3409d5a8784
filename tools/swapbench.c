/* SPDX-License-Identifier: MIT */
/*
 * swapbench: faultline's swap against the kernel's own swap and against the
 * disk, in the same run.  A benchmark, not a test: it asserts nothing about
 * speed, it reports ratios.  See BENCHMARKS.md, section "Swap".
 *
 * The workload: a region (default 1 GiB) is filled page by page, in address
 * order, by one thread under a memory budget (default 256 MiB), so that the
 * fill rate measures eviction; then T application threads (default 1, 2, 4,
 * 8) read one 8-byte word of a random page each, for a fixed time, and check
 * it against the pattern the fill wrote (a mismatch stops everything); then
 * the whole region is paged out (MADV_PAGEOUT) and one thread reads every
 * word of it once, in address order, checking each: sequential swap-in, with
 * readahead.
 *
 * Subjects:
 *
 *   device           random 4 KiB O_DIRECT reads through io_uring of a
 *                    pre-written file in the same file system, at queue
 *                    depth T: the disk's limit, the anchor of misses/s
 *   uffd-DELIVERY    the bare userfaultfd swap-in, no faultline: random
 *                    reads in which every access is a miss, each served by
 *                    a pread of a random block of the device's file and a
 *                    UFFDIO_COPY (T handler threads, or the faulting thread's
 *                    SIGBUS handler): what any userfaultfd design can do for
 *                    a miss here, the anchor of faultline's misses/s per
 *                    delivery ("x bare"); only the read windows
 *   kernel           the same program on plain anonymous memory, in a forked
 *                    child inside a cgroup v1 memory cgroup limited to the
 *                    budget, with a swap file in the same file system that
 *                    the benchmark enables for the run and removes after:
 *                    the anchor of the fill rate, of read throughput and of
 *                    the sequential read
 *   fl-DELIVERY-POLICY
 *                    faultline with mem_limit = the budget and its default
 *                    store (O_TMPFILE in $TMPDIR, O_DIRECT, io_uring), for
 *                    each delivery and each --policy
 *
 * Every figure is a ratio to an anchor measured in the same run; within a
 * round the subjects run one after another (every other round in reverse
 * order), each with a fresh region that is freed before the next.
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/userfaultfd.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#include "bare.h"
#include "hist.h"
#include "kside.h"
#include "toolbox.h"

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_TLIST 8    /* entries of --threads */
#define MAX_THREADS 64 /* application threads in one window */
#define MAX_DELIVERIES 2
#define MAX_ROUNDS 9
#define MAX_SUBJECTS (2 + MAX_DELIVERIES * (1 + FL_POLICY_NR))
#define MAX_PHASES (2 + MAX_TLIST) /* the fill, one read window per T, the sequential read */
#define MAX_IVL 1200		   /* 1-s intervals in one window */
#define IVL_NS 1000000000ull
/* max/min over the 1-s intervals above which a figure is flagged. */
#define UNSTABLE 1.5

/* ---- Configuration (see usage()) ---- */

static struct {
	size_t region;
	size_t budget;
	double seconds;
	double warmup;
	double probe_seconds; /* 0: --seconds */
	unsigned int threads[MAX_TLIST];
	unsigned int nthreads;
	int policies[FL_POLICY_NR];
	unsigned int npolicies;
	int deliveries[MAX_DELIVERIES];
	unsigned int ndeliveries;
	unsigned int rounds;
	uint64_t seed;
	char dir[PATH_MAX];
	size_t swapfile;
	int swappiness; /* -1: leave the cgroup's as it comes */
	bool do_kernel, do_device, do_faultline, do_bare;
	bool preheat;
	bool seq; /* the sequential read phase */
	unsigned int timeout;
	bool json;
	bool verbose;
} opt = {
	.region = 1UL << 30,
	.budget = 256UL << 20,
	.seconds = 10,
	.warmup = 1,
	.threads = {1, 2, 4, 8},
	.nthreads = 4,
	.policies = {FL_POLICY_DROP},
	.npolicies = 1,
	.deliveries = {FL_DELIVERY_THREAD, FL_DELIVERY_SIGBUS},
	.ndeliveries = 2,
	.rounds = 1,
	.seed = 1,
	.swappiness = -1,
	.do_kernel = true,
	.do_device = true,
	.do_faultline = true,
	.do_bare = true,
	.preheat = true,
	.seq = true,
	.timeout = 300,
};

/* ---- Latencies: the library's histogram (hist.h) ---- */

/*
 * Record v (ns) in a histogram with one writer: the library's buckets,
 * without the atomics of fl_hist_record(), which would cost every read of
 * the workload a few locked instructions.
 */
static inline void hist_add(struct fl_hist_snap *h, uint64_t v)
{
	h->bucket[fl_hist_bucket_of(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

/*
 * The q-quantile in ns, as the tables print it: the middle of its bucket
 * (within 3 %, where fl_hist_percentile() gives the bucket's upper end), at
 * most the max; NAN when empty.
 */
static double hist_quantile(const struct fl_hist_snap *h, double q)
{
	unsigned int b;
	double mid;

	if (!h->count)
		return NAN;
	b = fl_hist_bucket_of(fl_hist_percentile(h, q));
	mid = ((double)fl_hist_bucket_low(b) + (double)fl_hist_bucket_high(b) + 1) / 2;
	return mid > (double)h->max ? (double)h->max : mid;
}

/* ---- What one measured window records ---- */

/* The kernel's counters: /proc/vmstat and the memory cgroup's own. */
struct kcount {
	uint64_t pswpin, pswpout, pgmajfault, swap_ra, swap_ra_hit, refault_anon;
	uint64_t vma_lock[4]; /* success, abort, retry, miss */
	bool has_vma_lock;
	uint64_t cg_pgmajfault, cg_pgfault, cg_swap, cg_rss, cg_usage, cg_failcnt;
};

/* The store's disk, from /proc/diskstats. */
struct dstat {
	bool ok;
	uint64_t rd_ios, rd_sect, wr_ios, wr_sect;
};

struct cpus {
	struct cpu_times t;
	double others; /* user-space processes other than this benchmark */
};

/* The bare anchor's counters (see bare.h). */
struct bcount {
	uint64_t copies, exist, drops;
};

struct window {
	bool done;
	double secs;
	uint64_t ops;	       /* pages filled, reads done, or I/Os completed */
	uint64_t misses;       /* faults_major, the cgroup's pgmajfault, or I/Os */
	struct fl_hist_snap h; /* per operation, ns */
	unsigned int nivl;
	float ivl_ops[MAX_IVL];	 /* ops/s in each 1-s interval */
	float ivl_miss[MAX_IVL]; /* misses/s in each (read windows) */
	struct fl_stats fl0, fl1;
	struct kcount k0, k1;
	struct dstat d0, d1;
	struct cpus c0, c1;
	struct bcount b0, b1;
};

enum kind {
	K_DEVICE,
	K_BARE,
	K_KERNEL,
	K_FL,
};

struct summ {
	bool ok;
	unsigned int n;		    /* rounds measured */
	double rate, miss;	    /* ops/s and misses/s, median of rounds */
	double p50, p99, p999, max; /* us, median of rounds */
	double imin, imax;	    /* ops/s over the 1-s intervals */
	double mmin, mmax;	    /* misses/s over the 1-s intervals */
	double writes;		    /* fill: store writes per second */
};

struct subject {
	char name[40];
	enum kind kind;
	int delivery, policy;
	bool failed;
	char error[200];
	struct window *w;	   /* [MAX_PHASES][rounds] */
	struct summ s[MAX_PHASES]; /* per phase */
};

static struct subject subjects[MAX_SUBJECTS];
static unsigned int nsubjects;

static struct window *W(const struct subject *sub, unsigned int phase, unsigned int round)
{
	return &sub->w[phase * opt.rounds + round];
}

/* Phases: 0 the fill, 1..nthreads the read windows, then the sequential read. */
static unsigned int seq_phase(void)
{
	return 1 + opt.nthreads;
}

static unsigned int nphases(void)
{
	return 1 + opt.nthreads + (opt.seq ? 1 : 0);
}

/* The store's file system and disk. */
static struct {
	dev_t dev;
	char fstype[16];
	char disk[32];
	bool disk_found;
} store;

static void read_kcount(struct kcount *k)
{
	static const char *const vl[] = {"vma_lock_success", "vma_lock_abort", "vma_lock_retry",
					 "vma_lock_miss"};
	char buf[16384], path[PATH_MAX + 32];
	unsigned int i;

	memset(k, 0, sizeof(*k));
	if (!ks_read_file("/proc/vmstat", buf, sizeof(buf))) {
		k->pswpin = ks_kv_get(buf, "pswpin", 0, NULL);
		k->pswpout = ks_kv_get(buf, "pswpout", 0, NULL);
		k->pgmajfault = ks_kv_get(buf, "pgmajfault", 0, NULL);
		k->swap_ra = ks_kv_get(buf, "swap_ra", 0, NULL);
		k->swap_ra_hit = ks_kv_get(buf, "swap_ra_hit", 0, NULL);
		k->refault_anon = ks_kv_get(buf, "workingset_refault_anon", 0, NULL);
		for (i = 0; i < 4; i++)
			k->vma_lock[i] = ks_kv_get(buf, vl[i], 0, &k->has_vma_lock);
	}
	if (!ks_kern.cg_path[0])
		return;
	fmt(path, sizeof(path), "%s/memory.stat", ks_kern.cg_path);
	if (!ks_read_file(path, buf, sizeof(buf))) {
		k->cg_pgmajfault = ks_kv_get(buf, "pgmajfault", 0, NULL);
		k->cg_pgfault = ks_kv_get(buf, "pgfault", 0, NULL);
		k->cg_swap = ks_kv_get(buf, "swap", 0, NULL);
		k->cg_rss = ks_kv_get(buf, "rss", 0, NULL);
	}
	fmt(path, sizeof(path), "%s/memory.usage_in_bytes", ks_kern.cg_path);
	k->cg_usage = (uint64_t)ks_read_long(path, 0);
	fmt(path, sizeof(path), "%s/memory.failcnt", ks_kern.cg_path);
	k->cg_failcnt = (uint64_t)ks_read_long(path, 0);
}

static uint64_t kernel_majflt(void)
{
	char buf[16384], path[PATH_MAX + 32];

	fmt(path, sizeof(path), "%s/memory.stat", ks_kern.cg_path);
	if (ks_read_file(path, buf, sizeof(buf)))
		return 0;
	return ks_kv_get(buf, "pgmajfault", 0, NULL);
}

static void read_disk(struct dstat *d)
{
	char buf[16384], name[64], *p;
	unsigned int maj, mnr;
	unsigned long long v[7];

	memset(d, 0, sizeof(*d));
	if (ks_read_file("/proc/diskstats", buf, sizeof(buf)))
		return;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (sscanf(p, " %u %u %63s %llu %llu %llu %llu %llu %llu %llu", &maj, &mnr, name,
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 10)
			continue;
		if (maj != major(store.dev) || mnr != minor(store.dev))
			continue;
		d->ok = true;
		d->rd_ios = v[0];
		d->rd_sect = v[2];
		d->wr_ios = v[4];
		d->wr_sect = v[6];
		if (!store.disk_found) {
			fmt(store.disk, sizeof(store.disk), "%s", name);
			store.disk_found = true;
		}
		return;
	}
}

/*
 * CPU seconds used so far by every user-space process but this benchmark
 * (the main process and the kernel child): utime + stime + cutime + cstime
 * from /proc/PID/stat, kernel threads left out.  A process that exits hands
 * its time to its parent's cutime, so a short-lived compiler still counts.
 * Kernel threads are left out because much of their work here is ours: I/O
 * completion, ext4's unwritten-extent conversion, swap writeback.
 */
static pid_t main_pid;	      /* this benchmark's main process */
static volatile pid_t kchild; /* the kernel child, while it runs (main process) */

static double others_cpu(void)
{
	double hz = (double)sysconf(_SC_CLK_TCK), sum = 0;
	pid_t self = getpid();
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64], buf[1024], *p;
		unsigned long long ut, st;
		long long cut, cst;
		unsigned long flags;
		pid_t pid;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)atoi(de->d_name);
		if (pid == self || pid == main_pid || (kchild > 0 && pid == kchild))
			continue;
		fmt(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (ks_read_file(path, buf, sizeof(buf)))
			continue;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1,
				 " %*c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %llu %llu %lld %lld",
				 &flags, &ut, &st, &cut, &cst) != 5)
			continue;
		if (flags & 0x00200000) /* PF_KTHREAD */
			continue;
		sum += (double)(ut + st) / hz + (double)(cut + cst) / hz;
	}
	closedir(d);
	return sum;
}

/* read_cpu_times(), and the other processes' CPU time (others_cpu()). */
static void read_cpus(struct cpus *c, bool children)
{
	read_cpu_times(&c->t, children);
	c->others = others_cpu();
}

/* Other processes' CPU seconds between two snapshots. */
static double foreign_of(const struct cpus *a, const struct cpus *b)
{
	double f = b->others - a->others;

	return f < 0 ? 0 : f;
}

/* ---- The workload: fill, then random verified reads ---- */

/*
 * Word w of page p holds salt ^ (p << 9 | w): every word of the region is
 * different and none is zero (bit 63 of salt is set), so a page read from the
 * wrong slot, a zero page or a stale copy is caught, and what was read says
 * where it came from.
 */
static uint64_t salt_of(uint64_t seed)
{
	uint64_t x = seed ^ 0x5357415042454e43ull; /* "SWAPBENC" */

	return (splitmix64(&x) | (1ull << 63)) & ~0x1ffull;
}

static inline uint64_t expected(uint64_t salt, size_t page, unsigned int word)
{
	return salt ^ ((uint64_t)page << 9 | word);
}

/* Measuring in a forked child (the kernel subject): results go here. */
struct kshared {
	int mismatch;
	volatile int phase; /* the phase the child is in: which one it died in */
	char error[200];
	struct window w[MAX_PHASES];
};

static struct kshared *in_child; /* set in the kernel child only */

static void mismatch(const char *what, const volatile uint64_t *addr, uint64_t salt, size_t page,
		     unsigned int word, uint64_t got, size_t npages)
{
	uint64_t want = expected(salt, page, word), again = *addr, x = got ^ salt;
	char buf[768];
	int n;

	n = fmt(buf, sizeof(buf),
		"\nswapbench: DATA MISMATCH in %s, seed %" PRIu64 ": page %zu word %u "
		"(address %p): expected %#" PRIx64 ", read %#" PRIx64 ", read again %#" PRIx64 "\n",
		what, opt.seed, page, word, (const void *)addr, want, got, again);
	if (got == 0)
		n += fmt(buf + n, sizeof(buf) - (size_t)n,
			 "swapbench: the word reads as zero: a page never written, or lost\n");
	else if ((x >> 9) < npages)
		n += fmt(buf + n, sizeof(buf) - (size_t)n,
			 "swapbench: the value belongs to page %" PRIu64 " word %" PRIu64 "\n",
			 x >> 9, x & 0x1ff);
	ks_say(buf);
	ks_say("swapbench: ABORTING: faultline (or the kernel) returned wrong data\n");
	if (in_child) {
		in_child->mismatch = 1;
		fmt(in_child->error, sizeof(in_child->error), "data mismatch: see stderr");
		_exit(4);
	}
	fflush(stdout);
	ks_cleanup();
	_exit(4);
}

/*
 * The bare anchor (see "The bare anchor" below): a region of BARE_PAGES
 * pages, each application thread reading its own slices of BARE_SLICE pages.
 * One bare run at a time; set up before its threads start (the SIGBUS
 * handler reads it).
 */
#define BARE_PAGES (1UL << 20) /* 4 GiB of address space, MAP_NORESERVE */
#define BARE_SLICE 4096UL      /* pages; a power of two */
_Static_assert(BARE_PAGES / BARE_SLICE >= MAX_THREADS, "a bare slice per thread");

static struct {
	struct bare b;
	uint64_t key;		/* bare_block()'s, from the seed */
	_Atomic uint64_t drops; /* slices dropped (MADV_DONTNEED) */
} bare;

/* Where a window's counters come from. */
struct sampler {
	enum kind kind;
	struct fl_space *sp;
};

static uint64_t sampler_misses(struct sampler *s)
{
	struct fl_stats st;

	if (s->kind == K_KERNEL)
		return kernel_majflt();
	if (s->kind == K_BARE) {
		uint64_t copies;

		bare_counts(&bare.b, &copies, NULL);
		return copies;
	}
	if (fl_stats(s->sp, &st))
		return 0;
	return st.faults_major;
}

static void sampler_snap(struct sampler *s, struct window *w, bool end)
{
	if (s->kind == K_FL) {
		fl_stats(s->sp, end ? &w->fl1 : &w->fl0);
	} else if (s->kind == K_KERNEL) {
		read_kcount(end ? &w->k1 : &w->k0);
	} else if (s->kind == K_BARE) {
		struct bcount *b = end ? &w->b1 : &w->b0;

		bare_counts(&bare.b, &b->copies, &b->exist);
		b->drops = atomic_load(&bare.drops);
	}
	read_disk(end ? &w->d1 : &w->d0);
	read_cpus(end ? &w->c1 : &w->c0, false);
}

/* One thread writes every page in address order; pages per second. */
static void run_fill(struct sampler *s, uint64_t *base, size_t npages, uint64_t salt,
		     struct window *w)
{
	uint64_t t0, ta, tb, next, last_t;
	size_t p, last_p = 0;
	unsigned int i;

	memset(w, 0, sizeof(*w));
	sampler_snap(s, w, false);
	t0 = last_t = now_ns();
	next = t0 + IVL_NS;
	tb = t0;
	for (p = 0; p < npages; p++) {
		uint64_t *pg = base + p * WORDS, x = salt ^ ((uint64_t)p << 9);

		ta = now_ns();
		for (i = 0; i < WORDS; i++)
			pg[i] = x ^ i;
		tb = now_ns();
		hist_add(&w->h, tb - ta);
		if (tb >= next && w->nivl < MAX_IVL) {
			w->ivl_ops[w->nivl++] =
				(float)((double)(p + 1 - last_p) * 1e9 / (double)(tb - last_t));
			last_p = p + 1;
			last_t = tb;
			next = tb + IVL_NS;
		}
	}
	w->secs = (double)(tb - t0) / 1e9;
	w->ops = npages;
	sampler_snap(s, w, true);
	w->done = true;
}

/*
 * The sequential read: the whole region paged out first (MADV_PAGEOUT, the
 * kernel's or fl_madvise's, untimed), then one thread reads every word of
 * every page in address order and checks it; pages per second.
 */
static void run_seq(struct sampler *s, const uint64_t *base, size_t npages, uint64_t salt,
		    const char *what, struct window *w)
{
	uint64_t t0, ta, tb, next, last_t, m, last_m;
	size_t p, last_p = 0;
	unsigned int i;

	memset(w, 0, sizeof(*w));
	sampler_snap(s, w, false);
	last_m = sampler_misses(s);
	w->misses = last_m;
	t0 = last_t = now_ns();
	next = t0 + IVL_NS;
	tb = t0;
	for (p = 0; p < npages; p++) {
		const uint64_t *pg = base + p * WORDS;
		uint64_t x = salt ^ ((uint64_t)p << 9), bad = 0;

		ta = now_ns();
		for (i = 0; i < WORDS; i++)
			bad |= pg[i] ^ (x ^ i);
		tb = now_ns();
		if (__builtin_expect(bad != 0, 0)) {
			for (i = 0; i + 1 < WORDS && pg[i] == (x ^ i); i++)
				;
			mismatch(what, pg + i, salt, p, i, pg[i], npages);
		}
		hist_add(&w->h, tb - ta);
		if (tb >= next && w->nivl < MAX_IVL) {
			m = sampler_misses(s);
			w->ivl_ops[w->nivl] =
				(float)((double)(p + 1 - last_p) * 1e9 / (double)(tb - last_t));
			w->ivl_miss[w->nivl] =
				(float)((double)(m - last_m) * 1e9 / (double)(tb - last_t));
			w->nivl++;
			last_p = p + 1;
			last_m = m;
			last_t = tb;
			next = tb + IVL_NS;
		}
	}
	w->secs = (double)(tb - t0) / 1e9;
	w->ops = npages;
	w->misses = sampler_misses(s) - w->misses;
	sampler_snap(s, w, true);
	w->done = true;
}

struct read_ctl {
	_Atomic int phase; /* 0: warm-up, 1: measured, 2: stop */
	const uint64_t *base;
	size_t npages;
	unsigned int nthreads;
	uint64_t salt;
	pthread_barrier_t barrier;
	const char *what;
};

struct reader {
	pthread_t tid;
	struct read_ctl *ctl;
	unsigned int index; /* of ctl->nthreads */
	uint64_t rng;
	_Atomic uint64_t ops;
	struct fl_hist_snap h;
} __attribute__((aligned(64)));

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct read_ctl *ctl = rd->ctl;
	const uint64_t *base = ctl->base;
	uint64_t salt = ctl->salt, ops = 0;
	size_t npages = ctl->npages;

	pthread_barrier_wait(&ctl->barrier);
	for (;;) {
		int ph = atomic_load_explicit(&ctl->phase, memory_order_relaxed);
		uint64_t r = splitmix64(&rd->rng), t0, t1, v;
		size_t page = (size_t)below(r, npages);
		unsigned int word = (unsigned int)(r & (WORDS - 1));
		const volatile uint64_t *addr = base + page * WORDS + word;

		if (ph == 2)
			break;
		t0 = now_ns();
		v = *addr;
		t1 = now_ns();
		if (__builtin_expect(v != expected(salt, page, word), 0))
			mismatch(ctl->what, addr, salt, page, word, v, npages);
		if (ph == 1)
			hist_add(&rd->h, t1 - t0);
		atomic_store_explicit(&rd->ops, ++ops, memory_order_relaxed);
	}
	return NULL;
}

static uint64_t readers_ops(struct reader *rd, unsigned int n)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		sum += atomic_load_explicit(&rd[i].ops, memory_order_relaxed);
	return sum;
}

/* Seeds depend on the seed, T and the thread: every subject reads the same pages. */
static uint64_t reader_seed(unsigned int nthreads, unsigned int i, unsigned int round)
{
	uint64_t x = opt.seed * 0x100000001b3ull + nthreads * 1000003ull + i * 101ull + round;

	return splitmix64(&x);
}

static void *bare_reader_main(void *arg);

/*
 * T threads read random words for --warmup seconds, then for --seconds
 * measured; the window's reads, misses, latencies and 1-s intervals.  The
 * bare anchor's threads (s->kind K_BARE) read its region in its own order
 * (bare_reader_main()), the others any page of base (reader_main()).
 * Return: 0 or a negative errno.
 */
static int run_reads(struct sampler *s, const uint64_t *base, size_t npages, uint64_t salt,
		     unsigned int nthreads, unsigned int round, const char *what, struct window *w)
{
	struct read_ctl ctl;
	struct reader *rd;
	uint64_t t0, t1, tend, tprev, ops0, ops1, opsp, m0, m1, mp;
	unsigned int i;
	int err;

	memset(w, 0, sizeof(*w));
	if (posix_memalign((void **)&rd, 64, nthreads * sizeof(*rd)))
		return -ENOMEM;
	memset(rd, 0, nthreads * sizeof(*rd));
	memset(&ctl, 0, sizeof(ctl));
	atomic_init(&ctl.phase, 0);
	ctl.base = base;
	ctl.npages = npages;
	ctl.nthreads = nthreads;
	ctl.salt = salt;
	ctl.what = what;
	pthread_barrier_init(&ctl.barrier, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		rd[i].ctl = &ctl;
		rd[i].index = i;
		rd[i].rng = reader_seed(nthreads, i, round);
		err = pthread_create(&rd[i].tid, NULL,
				     s->kind == K_BARE ? bare_reader_main : reader_main, &rd[i]);
		if (err) {
			fprintf(stderr, "swapbench: pthread_create: %s\n", strerror(err));
			exit(2);
		}
	}
	pthread_barrier_wait(&ctl.barrier);
	sleep_until(now_ns() + (uint64_t)(opt.warmup * 1e9));

	sampler_snap(s, w, false);
	m0 = mp = sampler_misses(s);
	ops0 = opsp = readers_ops(rd, nthreads);
	t0 = tprev = now_ns();
	atomic_store(&ctl.phase, 1);
	tend = t0 + (uint64_t)(opt.seconds * 1e9);
	for (;;) {
		uint64_t t = tprev + IVL_NS, o, m;

		sleep_until(t < tend ? t : tend);
		t = now_ns();
		o = readers_ops(rd, nthreads);
		m = sampler_misses(s);
		if (w->nivl < MAX_IVL && (t >= tend ? t - tprev > IVL_NS / 2 : true)) {
			w->ivl_ops[w->nivl] =
				(float)((double)(o - opsp) * 1e9 / (double)(t - tprev));
			w->ivl_miss[w->nivl] =
				(float)((double)(m - mp) * 1e9 / (double)(t - tprev));
			w->nivl++;
		}
		opsp = o;
		mp = m;
		tprev = t;
		if (t >= tend)
			break;
	}
	t1 = tprev;
	ops1 = opsp;
	m1 = mp;
	atomic_store(&ctl.phase, 2);
	for (i = 0; i < nthreads; i++) {
		pthread_join(rd[i].tid, NULL);
		fl_hist_snap_merge(&w->h, &rd[i].h);
	}
	sampler_snap(s, w, true);
	pthread_barrier_destroy(&ctl.barrier);
	free(rd);
	w->secs = (double)(t1 - t0) / 1e9;
	w->ops = ops1 - ops0;
	w->misses = m1 - m0;
	w->done = true;
	return 0;
}

/* ---- The device: random 4 KiB direct reads through io_uring ---- */

static struct {
	int fd;
	size_t pages;
	bool ready;
} probe = {.fd = -1};

/*
 * A file of --region bytes, written (not just allocated), O_DIRECT, for the
 * device probe and the bare anchor.  Its block b holds what page b of the
 * region holds (expected(salt, b, word)): the bare anchor checks what it reads.
 * Return: 0 or a negative errno with err set (then no file is left open).
 */
static int probe_prepare(char *err, size_t errlen)
{
	size_t chunk = 1UL << 20, off;
	uint64_t *buf, salt = salt_of(opt.seed);
	unsigned int i;
	int ret = 0;

	if (probe.ready)
		return 0;
	probe.fd = open(opt.dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (probe.fd < 0) {
		fmt(err, errlen, "O_TMPFILE|O_DIRECT in %s: %s", opt.dir, strerror(errno));
		return -errno;
	}
	if (posix_memalign((void **)&buf, PAGE, chunk)) {
		fmt(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	for (off = 0; off < opt.region; off += chunk) {
		size_t n = opt.region - off < chunk ? opt.region - off : chunk;

		for (i = 0; i < n / 8; i++)
			buf[i] = expected(salt, (off / 8 + i) / WORDS, i % WORDS);
		if (pwrite(probe.fd, buf, n, (off_t)off) != (ssize_t)n) {
			fmt(err, errlen, "writing the probe file: %s",
			    strerror(errno ? errno : EIO));
			free(buf);
			ret = -EIO;
			goto fail;
		}
	}
	free(buf);
	if (fsync(probe.fd)) {
		ret = -errno;
		fmt(err, errlen, "fsync of the probe file: %s", strerror(errno));
		goto fail;
	}
	probe.pages = opt.region / PAGE;
	probe.ready = true;
	return 0;

fail:
	close(probe.fd);
	probe.fd = -1;
	return ret;
}

struct pio {
	uint64_t t;
	char *buf;
};

static int run_probe(unsigned int qd, unsigned int round, struct window *w, char *err,
		     size_t errlen)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct pio *io;
	char *bufs;
	uint64_t rng = reader_seed(qd, 0xd0, round), t0 = 0, tprev = 0, tend = 0, opsp = 0, twarm;
	unsigned int i, inflight = 0;
	int phase = 0, ret;

	memset(w, 0, sizeof(*w));
	ret = io_uring_queue_init(qd < 8 ? 8 : qd, &ring, 0);
	if (ret) {
		fmt(err, errlen, "io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	io = calloc(qd, sizeof(*io));
	if (!io || posix_memalign((void **)&bufs, PAGE, qd * PAGE)) {
		free(io);
		io_uring_queue_exit(&ring);
		return -ENOMEM;
	}
	for (i = 0; i < qd; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		io[i].buf = bufs + i * PAGE;
		io[i].t = now_ns();
		io_uring_prep_read(sqe, probe.fd, io[i].buf, PAGE,
				   below(splitmix64(&rng), probe.pages) * PAGE);
		io_uring_sqe_set_data(sqe, &io[i]);
		inflight++;
	}
	io_uring_submit(&ring);
	twarm = now_ns() + (uint64_t)(opt.warmup * 1e9);
	sampler_snap(&(struct sampler){.kind = K_DEVICE}, w, false);
	while (inflight) {
		uint64_t t;

		ret = io_uring_wait_cqe(&ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			fmt(err, errlen, "io_uring_wait_cqe: %s", strerror(-ret));
			break;
		}
		do {
			struct pio *p = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			t = now_ns();
			if (res != (int)PAGE) {
				fmt(err, errlen, "probe read: %s",
				    res < 0 ? strerror(-res) : "short read");
				ret = res < 0 ? res : -EIO;
				phase = 2;
			}
			if (phase == 1) {
				hist_add(&w->h, t - p->t);
				w->ops++;
			}
			if (phase < 2) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

				p->t = now_ns();
				io_uring_prep_read(sqe, probe.fd, p->buf, PAGE,
						   below(splitmix64(&rng), probe.pages) * PAGE);
				io_uring_sqe_set_data(sqe, p);
				inflight++;
			}
		} while (io_uring_peek_cqe(&ring, &cqe) == 0);
		io_uring_submit(&ring);
		t = now_ns();
		if (phase == 0 && t >= twarm) {
			phase = 1;
			t0 = tprev = t;
			tend = t0 +
			       (uint64_t)((opt.probe_seconds ? opt.probe_seconds : opt.seconds) *
					  1e9);
			w->ops = opsp = 0;
			sampler_snap(&(struct sampler){.kind = K_DEVICE}, w, false);
		} else if (phase == 1 && (t >= tprev + IVL_NS || t >= tend)) {
			if (w->nivl < MAX_IVL && (t < tend || t - tprev > IVL_NS / 2)) {
				w->ivl_ops[w->nivl] = (float)((double)(w->ops - opsp) * 1e9 /
							      (double)(t - tprev));
				w->ivl_miss[w->nivl] = w->ivl_ops[w->nivl];
				w->nivl++;
			}
			opsp = w->ops;
			tprev = t;
			if (t >= tend) {
				w->secs = (double)(t - t0) / 1e9;
				phase = 2;
			}
		}
	}
	sampler_snap(&(struct sampler){.kind = K_DEVICE}, w, true);
	free(bufs);
	free(io);
	io_uring_queue_exit(&ring);
	if (ret < 0)
		return ret;
	w->misses = w->ops;
	w->done = true;
	return 0;
}

static void run_device(struct subject *sub, unsigned int round)
{
	unsigned int i;
	int err;

	err = probe_prepare(sub->error, sizeof(sub->error));
	if (err) {
		sub->failed = true;
		return;
	}
	for (i = 0; i < opt.nthreads; i++) {
		char name[64];

		fmt(name, sizeof(name), "device.qd%u", opt.threads[i]);
		ks_watchdog(opt.timeout, name);
		err = run_probe(opt.threads[i], round, W(sub, 1 + i, round), sub->error,
				sizeof(sub->error));
		alarm(0);
		if (err) {
			sub->failed = true;
			return;
		}
		if (opt.verbose)
			fprintf(stderr, "  %-24s %10.0f IOPS\n", name,
				(double)W(sub, 1 + i, round)->ops / W(sub, 1 + i, round)->secs);
	}
}

static void phase_name(const struct subject *sub, unsigned int ph, char *buf, size_t len);

/* ---- The bare anchor: userfaultfd, no faultline ---- */

/*
 * The bare userfaultfd swap-in, the best any design on userfaultfd can do for
 * a random-read miss here: a fresh anonymous region (BARE_PAGES, registered
 * UFFDIO_REGISTER_MODE_MISSING on its own userfaultfd) in which every access
 * is a miss.  Application thread i of T reads one word of every page of a
 * slice of BARE_SLICE pages once, in a random order, then drops the slice
 * (one MADV_DONTNEED per BARE_SLICE misses) and goes on to the next of its
 * own slices.  Page p of the region holds block bare_block(p) of the probe
 * file, random over the whole file, so the disk sees what the device probe
 * makes it see.  A miss is served by a pread of that block into an aligned
 * buffer and a UFFDIO_COPY: in thread delivery by one of T handler threads,
 * all blocked in read() on the one userfaultfd; in sigbus delivery
 * (UFFD_FEATURE_SIGBUS) by the faulting thread's own SIGBUS handler.
 */

/* The probe file's block that page p of the bare region holds. */
static inline uint64_t bare_block(size_t p)
{
	uint64_t x = bare.key ^ p;

	return below(splitmix64(&x), probe.pages);
}

/*
 * The contents of page addr of the bare region: its block of the probe
 * file, read into buf (PAGE bytes, PAGE-aligned for O_DIRECT).
 * Async-signal-safe.
 */
static const void *bare_contents(struct bare *b, uintptr_t addr, bool write, char *buf)
{
	uint64_t block = bare_block((addr - b->start) / PAGE);
	ssize_t n;

	do
		n = pread(probe.fd, buf, PAGE, (off_t)(block * PAGE));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)PAGE)
		bare_fatal(b, "pread of the probe file", n < 0 ? errno : EIO, addr);
	return buf;
}

/*
 * A reader of the bare anchor (see above): like reader_main(), but every
 * access a miss, checked against the probe file's block.
 */
static void *bare_reader_main(void *arg)
{
	struct reader *rd = arg;
	struct read_ctl *ctl = rd->ctl;
	size_t per = BARE_PAGES / BARE_SLICE / ctl->nthreads, pass;
	uint64_t salt = ctl->salt, ops = 0;

	if (bare_thread_enter(&bare.b))
		bare_fatal(&bare.b, "bare_thread_enter", ENOSPC, 0);
	pthread_barrier_wait(&ctl->barrier);
	for (pass = 0;; pass++) {
		size_t slice = (rd->index * per + pass % per) * BARE_SLICE, k;
		/* An odd multiplier mod a power of two: each page once. */
		uint64_t mul = splitmix64(&rd->rng) | 1, add = splitmix64(&rd->rng);

		for (k = 0; k < BARE_SLICE; k++) {
			int ph = atomic_load_explicit(&ctl->phase, memory_order_relaxed);
			size_t page = slice + (size_t)((k * mul + add) & (BARE_SLICE - 1));
			unsigned int word = (unsigned int)(splitmix64(&rd->rng) & (WORDS - 1));
			const volatile uint64_t *addr = ctl->base + page * WORDS + word;
			uint64_t t0, t1, v, block;

			if (ph == 2)
				goto out;
			t0 = now_ns();
			v = *addr;
			t1 = now_ns();
			block = bare_block(page);
			if (__builtin_expect(v != expected(salt, block, word), 0)) {
				char msg[160];

				fmt(msg, sizeof(msg),
				    "\nswapbench: %s: page %zu of the bare region, which holds "
				    "block %" PRIu64 " of the probe file: the page below\n",
				    ctl->what, page, block);
				ks_say(msg);
				mismatch(ctl->what, addr, salt, block, word, v, probe.pages);
			}
			if (ph == 1)
				hist_add(&rd->h, t1 - t0);
			atomic_store_explicit(&rd->ops, ++ops, memory_order_relaxed);
		}
		if (madvise((void *)(ctl->base + slice * WORDS), BARE_SLICE * PAGE, MADV_DONTNEED))
			bare_fatal(&bare.b, "madvise(MADV_DONTNEED) of a slice", errno, 0);
		atomic_fetch_add_explicit(&bare.drops, 1, memory_order_relaxed);
	}
out:
	bare_thread_exit();
	return NULL;
}

/*
 * A fresh bare region and what serves its misses: nthreads handler threads,
 * or (sigbus) the SIGBUS handler.  The probe file must be ready.
 * Return: 0, or a negative errno with err set and nothing left behind.
 */
static int run_bare_setup(bool sigbus, unsigned int nthreads, char *err, size_t errlen)
{
	const struct bare_config cfg = {
		.tool = TOOL,
		.len = BARE_PAGES * PAGE,
		.sigbus = sigbus,
		.threads = nthreads,
		.cpu = -1,
		.contents = bare_contents,
		.cleanup = ks_cleanup,
	};
	uint64_t x = opt.seed ^ 0x4241524555464644ull; /* "BAREUFFD" */

	bare.key = splitmix64(&x);
	atomic_store(&bare.drops, 0);
	return bare_setup(&bare.b, &cfg, err, errlen);
}

/* The bare anchor of sub->delivery: a window per thread count, each on a fresh region. */
static void run_bare(struct subject *sub, unsigned int round)
{
	struct sampler s = {.kind = K_BARE};
	uint64_t salt = salt_of(opt.seed);
	char what[64];
	unsigned int i;
	int err;

	if (probe_prepare(sub->error, sizeof(sub->error))) {
		sub->failed = true;
		return;
	}
	for (i = 0; i < opt.nthreads; i++) {
		unsigned int t = opt.threads[i];

		phase_name(sub, 1 + i, what, sizeof(what));
		/* What its slices may hold at once (see "Preheat"). */
		if (opt.preheat)
			preheat(t * BARE_SLICE * PAGE);
		ks_watchdog(opt.timeout + (unsigned int)(opt.warmup + opt.seconds), what);
		err = run_bare_setup(sub->delivery == FL_DELIVERY_SIGBUS, t, sub->error,
				     sizeof(sub->error));
		if (!err) {
			err = run_reads(&s, (uint64_t *)bare.b.base, BARE_PAGES, salt, t, round,
					what, W(sub, 1 + i, round));
			if (err)
				fmt(sub->error, sizeof(sub->error), "%s: %s", what, strerror(-err));
			bare_teardown(&bare.b);
		}
		alarm(0);
		if (err) {
			sub->failed = true;
			return;
		}
	}
}

/* ---- The kernel: a swap file, a memory cgroup, a child ---- */

/* The swap file in the stores' file system, the cgroup with the budget. */
static int kernel_prepare(void)
{
	return ks_kernel_prepare(opt.dir, opt.swapfile, opt.budget, opt.swappiness);
}

static void kernel_child(struct kshared *sh, unsigned int round)
{
	char what[64];
	struct sampler s = {.kind = K_KERNEL};
	size_t npages = opt.region / PAGE;
	uint64_t salt = salt_of(opt.seed);
	uint64_t *base;
	unsigned int i;
	int err;

	in_child = sh;
	err = ks_join_cgroup();
	if (err) {
		fmt(sh->error, sizeof(sh->error), "joining %s: %s", ks_kern.cg_path,
		    strerror(-err));
		_exit(2);
	}
	base = mmap(NULL, opt.region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		fmt(sh->error, sizeof(sh->error), "mmap: %s", strerror(errno));
		_exit(2);
	}
	/* 4 KiB pages whatever the THP policy: the unit faultline serves. */
	madvise(base, opt.region, MADV_NOHUGEPAGE);
	run_fill(&s, base, npages, salt, &sh->w[0]);
	for (i = 0; i < opt.nthreads; i++) {
		sh->phase = 1 + (int)i;
		fmt(what, sizeof(what), "kernel.read.t%u", opt.threads[i]);
		err = run_reads(&s, base, npages, salt, opt.threads[i], round, what, &sh->w[1 + i]);
		if (err) {
			fmt(sh->error, sizeof(sh->error), "%s: %s", what, strerror(-err));
			_exit(2);
		}
	}
	if (opt.seq) {
		sh->phase = (int)seq_phase();
		if (madvise(base, opt.region, MADV_PAGEOUT)) {
			fmt(sh->error, sizeof(sh->error), "madvise(MADV_PAGEOUT): %s",
			    strerror(errno));
			_exit(2);
		}
		run_seq(&s, base, npages, salt, "kernel.seq", &sh->w[seq_phase()]);
	}
	munmap(base, opt.region);
	_exit(0);
}

static void run_kernel(struct subject *sub, unsigned int round)
{
	struct kshared *sh;
	pid_t pid;
	int status = 0;
	unsigned int i;
	uint64_t ooms;
	int err;

	if (kernel_prepare()) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "%s", ks_kern.error);
		return;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "mmap: %s", strerror(errno));
		return;
	}
	memset(sh, 0, sizeof(*sh));
	err = ks_swapon();
	if (err) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "swapon: %s", strerror(-err));
		munmap(sh, sizeof(*sh));
		return;
	}
	if (opt.preheat)
		preheat(opt.budget);
	ooms = ks_oom_kills();
	/* ks_fork(): no signal between fork() and recording the child for ks_cleanup(). */
	pid = ks_fork();
	if (pid == 0)
		kernel_child(sh, round);
	if (pid < 0) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "fork: %s", strerror(errno));
	} else {
		kchild = pid;
		ks_wait(pid, &status, opt.timeout * nphases(),
			"kernel (the child: fill, reads, sequential read)");
		kchild = 0;
	}
	ks_swapoff();
	if (pid < 0)
		goto out;
	if (sh->mismatch) {
		fflush(stdout);
		ks_cleanup();
		_exit(4);
	}
	if (WIFSIGNALED(status)) {
		char ph[64];

		phase_name(sub, (unsigned int)sh->phase, ph, sizeof(ph));
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "the child was killed by %s in %s%s",
		    strsignal(WTERMSIG(status)), ph,
		    ks_oom_kills() > ooms ? " (the cgroup's OOM killer: is the budget too "
					    "small for the program itself?)"
					  : "");
	} else if (WEXITSTATUS(status)) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "the child failed (status %d): %s",
		    WEXITSTATUS(status), sh->error[0] ? sh->error : "?");
	} else {
		for (i = 0; i < nphases(); i++)
			*W(sub, i, round) = sh->w[i];
	}
out:
	munmap(sh, sizeof(*sh));
}

/* ---- faultline ---- */

static void run_faultline(struct subject *sub, unsigned int round)
{
	struct fl_config cfg;
	struct fl_space *sp;
	struct sampler s = {.kind = K_FL};
	size_t npages = opt.region / PAGE;
	uint64_t salt = salt_of(opt.seed);
	char what[80];
	uint64_t *base;
	unsigned int i;
	int err;

	fl_config_init(&cfg);
	cfg.mem_limit = opt.budget;
	cfg.swap_path = NULL; /* the default store: O_TMPFILE in $TMPDIR, O_DIRECT */
	cfg.delivery = sub->delivery;
	cfg.policy = sub->policy;
	if (opt.preheat)
		preheat(opt.budget);
	fmt(what, sizeof(what), "%s (fl_space_create)", sub->name);
	ks_watchdog(opt.timeout, what);
	err = fl_space_create(&cfg, &sp);
	alarm(0);
	if (err) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "fl_space_create: %s", strerror(-err));
		return;
	}
	s.sp = sp;
	base = fl_mmap(sp, NULL, opt.region, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	if (base == MAP_FAILED) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "fl_mmap: %s", strerror(errno));
		fl_space_destroy(sp);
		return;
	}
	fmt(what, sizeof(what), "%s.fill", sub->name);
	ks_watchdog(opt.timeout, what);
	run_fill(&s, base, npages, salt, W(sub, 0, round));
	alarm(0);
	for (i = 0; i < opt.nthreads; i++) {
		fmt(what, sizeof(what), "%s.read.t%u", sub->name, opt.threads[i]);
		ks_watchdog(opt.timeout + (unsigned int)(opt.warmup + opt.seconds), what);
		err = run_reads(&s, base, npages, salt, opt.threads[i], round, what,
				W(sub, 1 + i, round));
		alarm(0);
		if (err) {
			sub->failed = true;
			fmt(sub->error, sizeof(sub->error), "%s: %s", what, strerror(-err));
			break;
		}
	}
	if (opt.seq && !sub->failed) {
		fmt(what, sizeof(what), "%s.seq", sub->name);
		ks_watchdog(opt.timeout, what);
		if (fl_madvise(sp, base, opt.region, MADV_PAGEOUT)) {
			sub->failed = true;
			fmt(sub->error, sizeof(sub->error), "fl_madvise(MADV_PAGEOUT): %s",
			    strerror(errno));
		} else {
			run_seq(&s, base, npages, salt, what, W(sub, seq_phase(), round));
		}
		alarm(0);
	}
	fmt(what, sizeof(what), "%s (fl_space_destroy)", sub->name);
	ks_watchdog(opt.timeout, what);
	fl_space_destroy(sp);
	alarm(0);
}

/* ---- Subjects, rounds, summaries ---- */

static void add_subject(const char *name, enum kind kind, int delivery, int policy)
{
	struct subject *sub = &subjects[nsubjects++];

	fmt(sub->name, sizeof(sub->name), "%s", name);
	sub->kind = kind;
	sub->delivery = delivery;
	sub->policy = policy;
	sub->w = calloc(MAX_PHASES * opt.rounds, sizeof(struct window));
	if (!sub->w) {
		fprintf(stderr, "swapbench: out of memory\n");
		exit(2);
	}
}

static void build_subjects(void)
{
	unsigned int d, p;
	char name[40];

	if (opt.do_device)
		add_subject("device", K_DEVICE, 0, 0);
	if (opt.do_bare)
		for (d = 0; d < opt.ndeliveries; d++) {
			fmt(name, sizeof(name), "uffd-%s", fl_delivery_name(opt.deliveries[d]));
			add_subject(name, K_BARE, opt.deliveries[d], 0);
		}
	if (opt.do_kernel)
		add_subject("kernel", K_KERNEL, 0, 0);
	if (opt.do_faultline)
		for (d = 0; d < opt.ndeliveries; d++)
			for (p = 0; p < opt.npolicies; p++) {
				fmt(name, sizeof(name), "fl-%s-%s",
				    fl_delivery_name(opt.deliveries[d]),
				    fl_policy_name(opt.policies[p]));
				add_subject(name, K_FL, opt.deliveries[d], opt.policies[p]);
			}
}

static int subject_index(enum kind kind)
{
	unsigned int i;

	for (i = 0; i < nsubjects; i++)
		if (subjects[i].kind == kind)
			return (int)i;
	return -1;
}

static void phase_name(const struct subject *sub, unsigned int ph, char *buf, size_t len)
{
	if (ph == 0)
		fmt(buf, len, "%s.fill", sub->name);
	else if (ph == seq_phase())
		fmt(buf, len, "%s.seq", sub->name);
	else if (sub->kind == K_DEVICE)
		fmt(buf, len, "device.qd%u", opt.threads[ph - 1]);
	else if (sub->kind == K_BARE)
		fmt(buf, len, "%s.t%u", sub->name, opt.threads[ph - 1]);
	else
		fmt(buf, len, "%s.read.t%u", sub->name, opt.threads[ph - 1]);
}

static void progress(struct subject *sub, unsigned int round)
{
	unsigned int ph;
	char name[64];

	if (sub->failed) {
		fprintf(stderr, "swapbench: %s FAILED: %s\n", sub->name, sub->error);
		return;
	}
	for (ph = 0; ph < nphases(); ph++) {
		struct window *w = W(sub, ph, round);

		if (!w->done)
			continue;
		phase_name(sub, ph, name, sizeof(name));
		if (ph == 0)
			fprintf(stderr, "  %-28s %10.0f pages/s\n", name, (double)w->ops / w->secs);
		else if (ph == seq_phase())
			fprintf(stderr, "  %-28s %10.0f pages/s %10.0f misses/s  p50 %.1f us\n",
				name, (double)w->ops / w->secs, (double)w->misses / w->secs,
				hist_quantile(&w->h, 0.5) / 1e3);
		else
			fprintf(stderr, "  %-28s %10.0f ops/s %10.0f misses/s  p50 %.1f us\n", name,
				(double)w->ops / w->secs, (double)w->misses / w->secs,
				hist_quantile(&w->h, 0.5) / 1e3);
	}
}

static void run_subject(struct subject *sub, unsigned int round)
{
	if (sub->failed)
		return;
	fprintf(stderr, "swapbench: round %u/%u: %s\n", round + 1, opt.rounds, sub->name);
	switch (sub->kind) {
	case K_DEVICE:
		run_device(sub, round);
		break;
	case K_BARE:
		run_bare(sub, round);
		break;
	case K_KERNEL:
		run_kernel(sub, round);
		break;
	case K_FL:
		run_faultline(sub, round);
		break;
	}
	progress(sub, round);
}

static double median(double *v, unsigned int n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void summarise(void)
{
	unsigned int i, ph, r, k;

	for (i = 0; i < nsubjects; i++) {
		struct subject *sub = &subjects[i];

		for (ph = 0; ph < nphases(); ph++) {
			struct summ *s = &sub->s[ph];
			double rate[MAX_ROUNDS], miss[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS],
				p999[MAX_ROUNDS], mx[MAX_ROUNDS], wr[MAX_ROUNDS];
			unsigned int n = 0;

			memset(s, 0, sizeof(*s));
			s->imin = s->mmin = INFINITY;
			s->imax = s->mmax = 0;
			for (r = 0; r < opt.rounds; r++) {
				struct window *w = W(sub, ph, r);
				uint64_t writes;

				if (!w->done || w->secs <= 0)
					continue;
				rate[n] = (double)w->ops / w->secs;
				miss[n] = (double)w->misses / w->secs;
				p50[n] = hist_quantile(&w->h, 0.5) / 1e3;
				p99[n] = hist_quantile(&w->h, 0.99) / 1e3;
				p999[n] = hist_quantile(&w->h, 0.999) / 1e3;
				mx[n] = (double)w->h.max / 1e3;
				writes = sub->kind == K_FL ? w->fl1.swap_outs - w->fl0.swap_outs
							   : w->k1.pswpout - w->k0.pswpout;
				wr[n] = (double)writes / w->secs;
				for (k = 0; k < w->nivl; k++) {
					s->imin = fmin(s->imin, w->ivl_ops[k]);
					s->imax = fmax(s->imax, w->ivl_ops[k]);
					if (ph) {
						s->mmin = fmin(s->mmin, w->ivl_miss[k]);
						s->mmax = fmax(s->mmax, w->ivl_miss[k]);
					}
				}
				n++;
			}
			s->n = n;
			s->ok = n > 0;
			s->rate = median(rate, n);
			s->miss = median(miss, n);
			s->p50 = median(p50, n);
			s->p99 = median(p99, n);
			s->p999 = median(p999, n);
			s->max = median(mx, n);
			s->writes = median(wr, n);
			if (isinf(s->imin))
				s->imin = s->imax = s->rate;
			if (isinf(s->mmin))
				s->mmin = s->mmax = s->miss;
		}
	}
}

/* ---- Goals (the issue's) ---- */

static double fill_goal(const struct subject *sub)
{
	return sub->kind == K_FL ? 0.8 : 0;
}

/* Read throughput against the kernel: 1 thread only. */
static double reads_goal(const struct subject *sub, unsigned int t)
{
	if (sub->kind != K_FL || t != 1)
		return 0;
	return sub->delivery == FL_DELIVERY_SIGBUS ? 0.9 : 0.7;
}

/* Sequential reads of a swapped region, with readahead, against the kernel's. */
static double seq_goal(const struct subject *sub)
{
	return sub->kind == K_FL ? 1.5 : 0;
}

/* Misses served against the device at the same queue depth: 2 to 8 threads. */
static double misses_goal(const struct subject *sub, unsigned int t)
{
	return sub->kind == K_FL && t >= 2 && t <= 8 ? 0.9 : 0;
}

static double ratio(double a, double b)
{
	if (isnan(a) || isnan(b) || b <= 0)
		return NAN;
	return a / b;
}

/* The bare anchor of a faultline subject's delivery, or NULL (none, or not faultline). */
static const struct subject *bare_of(const struct subject *sub)
{
	unsigned int i;

	for (i = 0; sub->kind == K_FL && i < nsubjects; i++)
		if (subjects[i].kind == K_BARE && subjects[i].delivery == sub->delivery)
			return &subjects[i];
	return NULL;
}

/*
 * A faultline read window's misses/s against the bare anchor's of the same
 * delivery and thread count: NAN without one.  If name, the anchor's window's
 * name goes there ("n/a" without one).
 */
static double bare_ratio(const struct subject *sub, unsigned int ph, char *name, size_t len)
{
	const struct subject *b = bare_of(sub);
	bool ok = b && b->s[ph].ok;

	if (name) {
		if (ok)
			phase_name(b, ph, name, len);
		else
			fmt(name, len, "n/a");
	}
	return ratio(sub->s[ph].miss, ok ? b->s[ph].miss : NAN);
}

/* A ratio for the table, or n/a: rotating static buffers. */
static const char *rf(double r, int width)
{
	static char buf[8][24];
	static unsigned int k;
	char *b = buf[k++ % 8];

	if (isnan(r) || isinf(r))
		fmt(b, sizeof(buf[0]), "%*s", width, "n/a");
	else
		fmt(b, sizeof(buf[0]), "%*.3f", width, r);
	return b;
}

static const char *verdict(double r, double goal, const char *yes, const char *no)
{
	if (isnan(r))
		return "n/a";
	return r >= goal ? yes : no;
}

/* ---- Output ---- */

struct run_info {
	struct host_info host;
	char load0[64], load1[64];
	struct fl_config defaults;
	double elapsed, foreign, steal;
	struct dstat d0, d1;
};

static void read_load(char *buf, size_t len)
{
	char line[128], *p;

	if (ks_read_file("/proc/loadavg", line, sizeof(line))) {
		fmt(buf, len, "?");
		return;
	}
	/* The three averages only. */
	p = line;
	for (int i = 0; i < 3 && p; i++)
		p = strchr(p + 1, ' ');
	if (p)
		*p = 0;
	fmt(buf, len, "%s", line);
}

static void gather_info(struct run_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	read_host(&ri->host);
	read_load(ri->load0, sizeof(ri->load0));
	fl_config_init(&ri->defaults);
}

static void list_uint(char *buf, size_t len, const unsigned int *v, unsigned int n)
{
	size_t off = 0;
	unsigned int i;

	buf[0] = 0;
	for (i = 0; i < n && off < len; i++)
		off += (size_t)fmt(buf + off, len - off, "%s%u", i ? "," : "", v[i]);
}

static void print_header(const struct run_info *ri)
{
	char tl[64];
	unsigned int i;

	list_uint(tl, sizeof(tl), opt.threads, opt.nthreads);
	printf("faultline swapbench %s: %s, kernel %s, %ld CPUs, THP %s\n", FL_VERSION_STRING,
	       ri->host.date, ri->host.kernel, ri->host.cpus, ri->host.thp);
	printf("region %zu MiB (%zu pages) filled page by page under a budget of %zu MiB, then "
	       "random 4 KiB reads%s\n",
	       opt.region >> 20, opt.region / PAGE, opt.budget >> 20,
	       opt.seq ? ", then paged out and read once in address order" : "");
	printf("read window %.1f s after %.1f s of warm-up per thread count; device probe %.1f s; "
	       "threads %s; rounds %u; seed %" PRIu64 "\n",
	       opt.seconds, opt.warmup, opt.probe_seconds ? opt.probe_seconds : opt.seconds, tl,
	       opt.rounds, opt.seed);
	printf("store: %s (%s on %s %u:%u); faultline default store (O_TMPFILE, O_DIRECT, "
	       "io_uring)\n",
	       opt.dir, store.fstype, store.disk_found ? store.disk : "?", major(store.dev),
	       minor(store.dev));
	printf("faultline: handlers=%u fault_around=%u/%u swap_frames=%u watermark=%s policies=",
	       ri->defaults.handlers, ri->defaults.fault_around, ri->defaults.fault_around_max,
	       ri->defaults.swap_frames, ri->defaults.watermark ? "set" : "limit/32");
	for (i = 0; i < opt.npolicies; i++)
		printf("%s%s", i ? "," : "", fl_policy_name(opt.policies[i]));
	printf("\n");
	if (opt.do_bare)
		printf("bare anchor (uffd-DELIVERY.tT, \"x bare\"): no faultline, a fresh "
		       "region on its own userfaultfd (MISSING), every access a miss (each "
		       "thread's slice of %lu pages in a random order, then MADV_DONTNEED), "
		       "served by a pread of a random 4 KiB block of the device's file "
		       "(O_DIRECT) and a UFFDIO_COPY: thread = T handler threads in read() on "
		       "the one userfaultfd, sigbus = UFFD_FEATURE_SIGBUS, the faulting "
		       "thread's own handler\n",
		       BARE_SLICE);
	else
		printf("bare anchor: not measured (--no-bare)\n");
	if (opt.do_kernel) {
		if (ks_kern.prepared)
			printf("kernel: swap file %s (%zu MiB, on only for the kernel runs), "
			       "cgroup v1 memory limit %zu MiB (memsw %s), vm.swappiness %ld "
			       "(cgroup %ld), vm.page-cluster %ld, zswap %s\n",
			       ks_kern.swap_path, opt.swapfile >> 20, opt.budget >> 20,
			       ks_kern.memsw ? "unlimited" : "absent", ks_kern.vm_swappiness,
			       ks_kern.cg_swappiness, ks_kern.page_cluster, ks_kern.zswap);
		else
			printf("kernel: not measured: %s\n", ks_kern.error);
		if (ks_kern.other_swaps[0])
			printf("WARNING: other swap was on: %s\n", ks_kern.other_swaps);
	}
	printf("load average at start %s, at end %s\n", ri->load0, ri->load1);
	print_quiet(ri->elapsed, ri->foreign, ri->steal);
}

static void print_unstable(double lo, double hi, const char *what)
{
	if (lo > 0 && hi > UNSTABLE * lo)
		printf("  UNSTABLE: %s max/min %.2f over the 1-s intervals\n", what, hi / lo);
	else if (lo <= 0 && hi > 0)
		printf("  UNSTABLE: %s fell to 0 in a 1-s interval\n", what);
}

static double delta(uint64_t a, uint64_t b)
{
	return (double)(b - a);
}

static void print_counters(const struct subject *sub, unsigned int ph)
{
	unsigned int r = opt.rounds - 1; /* the last round's */
	const struct window *w = W(sub, ph, r);
	double fo = foreign_of(&w->c0, &w->c1);

	if (!w->done)
		return;
	if (ph == seq_phase() && sub->kind == K_FL)
		printf("  faultline, at the start (after MADV_PAGEOUT): resident_pages=%" PRIu64
		       " frames_used=%" PRIu64 "\n",
		       w->fl0.resident_pages, w->fl0.frames_used);
	else if (ph == seq_phase() && sub->kind == K_KERNEL)
		printf("  kernel, at the start (after MADV_PAGEOUT): cgroup usage_MiB=%.1f "
		       "rss_MiB=%.1f swap_MiB=%.0f\n",
		       (double)w->k0.cg_usage / 1048576.0, (double)w->k0.cg_rss / 1048576.0,
		       (double)w->k0.cg_swap / 1048576.0);
	if (sub->kind == K_FL) {
		const struct fl_stats *a = &w->fl0, *b = &w->fl1;

		printf("  faultline: faults_major=%.0f faults_minor=%.0f swap_ins=%.0f "
		       "swap_outs=%.0f reads_wasted=%.0f clean_drops=%.0f zero_drops=%.0f "
		       "reclaim_direct=%.0f reclaim_background=%.0f parked=%.0f",
		       delta(a->faults_major, b->faults_major),
		       delta(a->faults_minor, b->faults_minor), delta(a->swap_ins, b->swap_ins),
		       delta(a->swap_outs, b->swap_outs), delta(a->reads_wasted, b->reads_wasted),
		       delta(a->clean_drops, b->clean_drops), delta(a->zero_drops, b->zero_drops),
		       delta(a->reclaim_direct, b->reclaim_direct),
		       delta(a->reclaim_background, b->reclaim_background),
		       delta(a->parked, b->parked));
		if (b->parked > a->parked)
			printf(" parked_mean_us=%.1f", delta(a->parked_ns, b->parked_ns) /
							       delta(a->parked, b->parked) / 1e3);
		printf(" faults=%.0f faults_wp=%.0f fault_around=%.0f mmap_read_locks=%.0f "
		       "vma_lock_success/abort/retry/miss=%.0f/%.0f/%.0f/%.0f read_errors=%.0f "
		       "write_errors=%.0f\n",
		       delta(a->faults, b->faults), delta(a->faults_wp, b->faults_wp),
		       delta(a->fault_around_pages, b->fault_around_pages),
		       delta(a->mmap_read_locks, b->mmap_read_locks),
		       delta(a->vma_lock_success, b->vma_lock_success),
		       delta(a->vma_lock_abort, b->vma_lock_abort),
		       delta(a->vma_lock_retry, b->vma_lock_retry),
		       delta(a->vma_lock_miss, b->vma_lock_miss),
		       delta(a->read_errors, b->read_errors),
		       delta(a->write_errors, b->write_errors));
		printf("  faultline, at the end: resident_pages=%" PRIu64 " frames_used=%" PRIu64
		       " store_MiB=%.0f io_inflight_max=%" PRIu64 " io_inflight_mean=%" PRIu64
		       " (both since the space was created) fault_ns p50/p99/p99.9=%.1f/%.1f/%.1f "
		       "us (since created)\n",
		       b->resident_pages, b->frames_used, (double)b->store_bytes / 1048576.0,
		       b->io_inflight_max, b->io_inflight_mean, (double)b->fault_ns_p50 / 1e3,
		       (double)b->fault_ns_p99 / 1e3, (double)b->fault_ns_p999 / 1e3);
	} else if (sub->kind == K_KERNEL) {
		const struct kcount *a = &w->k0, *b = &w->k1;

		printf("  kernel: pgmajfault=%.0f (cgroup; vmstat %.0f) pswpin=%.0f pswpout=%.0f "
		       "swap_ra=%.0f swap_ra_hit=%.0f workingset_refault_anon=%.0f pgfault=%.0f "
		       "(cgroup) failcnt=%.0f",
		       delta(a->cg_pgmajfault, b->cg_pgmajfault),
		       delta(a->pgmajfault, b->pgmajfault), delta(a->pswpin, b->pswpin),
		       delta(a->pswpout, b->pswpout), delta(a->swap_ra, b->swap_ra),
		       delta(a->swap_ra_hit, b->swap_ra_hit),
		       delta(a->refault_anon, b->refault_anon), delta(a->cg_pgfault, b->cg_pgfault),
		       delta(a->cg_failcnt, b->cg_failcnt));
		if (b->has_vma_lock)
			printf(" vma_lock_success/abort/retry/miss=%.0f/%.0f/%.0f/%.0f",
			       delta(a->vma_lock[0], b->vma_lock[0]),
			       delta(a->vma_lock[1], b->vma_lock[1]),
			       delta(a->vma_lock[2], b->vma_lock[2]),
			       delta(a->vma_lock[3], b->vma_lock[3]));
		else
			printf(" vma_lock_*=n/a (not in /proc/vmstat: CONFIG_PER_VMA_LOCK_STATS)");
		printf("\n  kernel, at the end: cgroup usage_MiB=%.0f rss_MiB=%.0f swap_MiB=%.0f\n",
		       (double)b->cg_usage / 1048576.0, (double)b->cg_rss / 1048576.0,
		       (double)b->cg_swap / 1048576.0);
	} else if (sub->kind == K_BARE) {
		printf("  uffd: copies=%.0f (the misses; reads=%" PRIu64 ") eexist=%.0f "
		       "slice_drops=%.0f (MADV_DONTNEED of %lu pages each)\n",
		       delta(w->b0.copies, w->b1.copies), w->ops, delta(w->b0.exist, w->b1.exist),
		       delta(w->b0.drops, w->b1.drops), BARE_SLICE);
	}
	if (w->d0.ok && w->d1.ok) {
		double rd = delta(w->d0.rd_ios, w->d1.rd_ios);
		double wr_mib = delta(w->d0.wr_sect, w->d1.wr_sect) / 2048;
		double our_rd, our_wr_mib;

		/*
		 * What this subject itself should have put on the disk: reads are
		 * single pages (readahead aside), writes may merge, so writes are
		 * compared in bytes.  The rest is someone else's (or a journal's).
		 */
		if (sub->kind == K_FL) {
			our_rd = delta(w->fl0.swap_ins, w->fl1.swap_ins);
			our_wr_mib = delta(w->fl0.swap_outs, w->fl1.swap_outs) / 256;
		} else if (sub->kind == K_KERNEL) {
			our_rd = delta(w->k0.pswpin, w->k1.pswpin);
			our_wr_mib = delta(w->k0.pswpout, w->k1.pswpout) / 256;
		} else if (sub->kind == K_BARE) {
			our_rd = delta(w->b0.copies, w->b1.copies);
			our_wr_mib = 0;
		} else {
			our_rd = (double)w->ops;
			our_wr_mib = 0;
		}
		printf("  disk %s: reads=%.0f (%.0f MiB) writes=%.0f (%.0f MiB); not ours: "
		       "~%.0f reads, ~%.0f MiB written; other processes' CPU %.0f%% of one\n",
		       store.disk, rd, delta(w->d0.rd_sect, w->d1.rd_sect) / 2048,
		       delta(w->d0.wr_ios, w->d1.wr_ios), wr_mib, fmax(0, rd - our_rd),
		       fmax(0, wr_mib - our_wr_mib), 100 * fo / w->secs);
	}
}

static void print_table(const struct run_info *ri)
{
	int kd = subject_index(K_DEVICE), kk = subject_index(K_KERNEL);
	const struct subject *dev = kd >= 0 ? &subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &subjects[kk] : NULL;
	unsigned int i, ph;
	char name[64], goal[48];

	print_header(ri);
	for (i = 0; i < nsubjects; i++)
		if (subjects[i].failed)
			printf("FAILED: %s: %s\n", subjects[i].name, subjects[i].error);

	printf("\nFILL: one thread writes every page in address order (under the budget this "
	       "measures eviction)\n");
	printf("%-26s %10s  %19s %8s  %-16s %10s %9s %9s %10s\n", "figure", "pages/s",
	       "1-s min .. max", "x kernel", "goal", "p50 us", "p99 us", "p99.9 us", "writes/s");
	for (i = 0; i < nsubjects; i++) {
		const struct subject *sub = &subjects[i];
		const struct summ *s = &sub->s[0];
		double r;

		if (sub->kind == K_DEVICE || !s->ok)
			continue;
		r = ratio(s->rate, ker ? ker->s[0].rate : NAN);
		goal[0] = 0;
		if (fill_goal(sub) > 0)
			fmt(goal, sizeof(goal), ">= %.2f %s", fill_goal(sub),
			    verdict(r, fill_goal(sub), "met", "NOT MET"));
		phase_name(sub, 0, name, sizeof(name));
		printf("%-26s %10.0f  %8.0f .. %-8.0f %s  %-16s %10.1f %9.1f %9.1f %10.0f\n", name,
		       s->rate, s->imin, s->imax, rf(r, 8), goal, s->p50, s->p99, s->p999,
		       s->writes);
		print_unstable(s->imin, s->imax, "pages/s");
		print_counters(sub, 0);
	}

	for (ph = 1; ph < 1 + opt.nthreads; ph++) {
		unsigned int t = opt.threads[ph - 1];
		const struct summ *ks = ker ? &ker->s[ph] : NULL, *ds = dev ? &dev->s[ph] : NULL;

		printf("\nREADS, %u thread%s (device: queue depth %u): one verified 8-byte word of "
		       "a random page each\n",
		       t, t > 1 ? "s" : "", t);
		printf("%-26s %10s %8s  %-16s %10s  %19s %8s  %-16s %8s %9s %9s %9s\n", "figure",
		       "reads/s", "x kernel", "goal", "misses/s", "1-s min .. max", "x device",
		       "goal", "x bare", "p50 us", "p99 us", "p99.9 us");
		for (i = 0; i < nsubjects; i++) {
			const struct subject *sub = &subjects[i];
			const struct summ *s = &sub->s[ph];
			double rr, rm;
			char goal2[48];

			if (!s->ok)
				continue;
			phase_name(sub, ph, name, sizeof(name));
			rm = ratio(s->miss, ds && ds->ok ? ds->rate : NAN);
			goal2[0] = 0;
			if (misses_goal(sub, t) > 0)
				fmt(goal2, sizeof(goal2), ">= %.2f %s", misses_goal(sub, t),
				    verdict(rm, misses_goal(sub, t), "met", "NOT MET"));
			if (sub->kind == K_DEVICE) {
				printf("%-26s %10s %8s  %-16s %10.0f  %8.0f .. %-8.0f %8.3f  %-16s "
				       "%8s %9.1f %9.1f %9.1f\n",
				       name, "-", "", "", s->rate, s->imin, s->imax, 1.0, "", "",
				       s->p50, s->p99, s->p999);
				print_unstable(s->imin, s->imax, "IOPS");
			} else {
				/* The bare anchor: no x kernel (every access of it misses). */
				rr = ratio(s->rate, ks && ks->ok ? ks->rate : NAN);
				goal[0] = 0;
				if (reads_goal(sub, t) > 0)
					fmt(goal, sizeof(goal), ">= %.2f %s", reads_goal(sub, t),
					    verdict(rr, reads_goal(sub, t), "met", "NOT MET"));
				printf("%-26s %10.0f %8s  %-16s %10.0f  %8.0f .. %-8.0f %s  "
				       "%-16s %8s %9.1f %9.1f %9.1f\n",
				       name, s->rate, sub->kind == K_BARE ? "" : rf(rr, 8), goal,
				       s->miss, s->mmin, s->mmax, rf(rm, 8), goal2,
				       sub->kind == K_FL ? rf(bare_ratio(sub, ph, NULL, 0), 8) : "",
				       s->p50, s->p99, s->p999);
				print_unstable(s->imin, s->imax, "reads/s");
				print_unstable(s->mmin, s->mmax, "misses/s");
			}
			print_counters(sub, ph);
		}
	}
	if (opt.seq) {
		ph = seq_phase();
		printf("\nSEQUENTIAL READ: the whole region paged out (MADV_PAGEOUT), then one "
		       "thread reads every word of every page in address order\n");
		printf("%-26s %10s  %19s %8s  %-16s %10s %9s %9s %9s\n", "figure", "pages/s",
		       "1-s min .. max", "x kernel", "goal", "misses/s", "p50 us", "p99 us",
		       "p99.9 us");
		for (i = 0; i < nsubjects; i++) {
			const struct subject *sub = &subjects[i];
			const struct summ *s = &sub->s[ph];
			double r;

			if (sub->kind == K_DEVICE || !s->ok)
				continue;
			r = ratio(s->rate, ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
			goal[0] = 0;
			if (seq_goal(sub) > 0)
				fmt(goal, sizeof(goal), ">= %.2f %s", seq_goal(sub),
				    verdict(r, seq_goal(sub), "met", "NOT MET"));
			phase_name(sub, ph, name, sizeof(name));
			printf("%-26s %10.0f  %8.0f .. %-8.0f %s  %-16s %10.0f %9.1f %9.1f %9.1f\n",
			       name, s->rate, s->imin, s->imax, rf(r, 8), goal, s->miss, s->p50,
			       s->p99, s->p999);
			print_unstable(s->imin, s->imax, "pages/s");
			print_counters(sub, ph);
		}
	}
	printf("\n");
}

static void print_bench_lines(void)
{
	int kd = subject_index(K_DEVICE), kk = subject_index(K_KERNEL);
	const struct subject *dev = kd >= 0 ? &subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &subjects[kk] : NULL;
	unsigned int i, ph;
	char name[64], kname[64], dname[64], bname[64];

	for (i = 0; i < nsubjects; i++) {
		const struct subject *sub = &subjects[i];

		if (sub->failed) {
			printf("BENCH name=%s status=failed error=\"%s\"\n", sub->name, sub->error);
			continue;
		}
		for (ph = 0; ph < nphases(); ph++) {
			const struct summ *s = &sub->s[ph];
			unsigned int t = ph && ph < seq_phase() ? opt.threads[ph - 1] : 1;
			const struct summ *ks = ker ? &ker->s[ph] : NULL;
			const struct summ *ds = dev ? &dev->s[ph] : NULL;
			double r, g;

			if (!s->ok)
				continue;
			phase_name(sub, ph, name, sizeof(name));
			if (ker)
				phase_name(ker, ph, kname, sizeof(kname));
			if (dev && ph)
				phase_name(dev, ph, dname, sizeof(dname));
			if (ph == seq_phase()) {
				r = ratio(s->rate, ks && ks->ok ? ks->rate : NAN);
				g = seq_goal(sub);
				printf("BENCH name=%s value=%.0f unit=pages/s ratio=%s anchor=%s",
				       name, s->rate, rf(r, 0), ker ? kname : "n/a");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f misses_per_s=%.0f",
				       s->p50, s->p99, s->p999, s->miss);
			} else if (ph == 0) {
				r = ratio(s->rate, ks ? ks->rate : NAN);
				g = fill_goal(sub);
				printf("BENCH name=%s value=%.0f unit=pages/s ratio=%s anchor=%s",
				       name, s->rate, rf(r, 0), ker ? kname : "n/a");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f writes_per_s=%.0f",
				       s->p50, s->p99, s->p999, s->writes);
			} else if (sub->kind == K_DEVICE) {
				printf("BENCH name=%s.iops value=%.0f unit=iops ratio=1.000 "
				       "anchor=%s.iops p50_us=%.1f p99_us=%.1f p999_us=%.1f",
				       name, s->rate, name, s->p50, s->p99, s->p999);
			} else {
				/* The bare anchor's reads have no anchor: all of them miss. */
				bool kr = ker && sub->kind != K_BARE;

				r = kr ? ratio(s->rate, ks && ks->ok ? ks->rate : NAN) : NAN;
				g = reads_goal(sub, t);
				printf("BENCH name=%s.reads value=%.0f unit=reads/s ratio=%s "
				       "anchor=%s%s",
				       name, s->rate, rf(r, 0), kr ? kname : "n/a",
				       kr ? ".reads" : "");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f", s->p50, s->p99,
				       s->p999);
				if (ks && ks->ok && sub->kind == K_FL)
					printf(" p50_ratio=%s p99_ratio=%s p999_ratio=%s",
					       rf(ratio(s->p50, ks->p50), 0),
					       rf(ratio(s->p99, ks->p99), 0),
					       rf(ratio(s->p999, ks->p999), 0));
				printf(" rounds=%u min=%.0f max=%.0f spread=%.2f\n", s->n, s->imin,
				       s->imax, s->imin > 0 ? s->imax / s->imin : NAN);
				r = ratio(s->miss, ds && ds->ok ? ds->rate : NAN);
				g = misses_goal(sub, t);
				printf("BENCH name=%s.misses value=%.0f unit=misses/s ratio=%s "
				       "anchor=%s",
				       name, s->miss, rf(r, 0), dev ? dname : "n/a");
				if (dev)
					printf(".iops");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				if (sub->kind == K_FL && ks && ks->ok)
					printf(" ratio_kernel=%s anchor_kernel=%s.misses",
					       rf(ratio(s->miss, ks->miss), 0), kname);
				if (sub->kind == K_FL) {
					r = bare_ratio(sub, ph, bname, sizeof(bname));
					printf(" ratio_bare=%s anchor_bare=%s%s", rf(r, 0), bname,
					       isnan(r) ? "" : ".misses");
				}
				printf(" rounds=%u min=%.0f max=%.0f spread=%.2f\n", s->n, s->mmin,
				       s->mmax, s->mmin > 0 ? s->mmax / s->mmin : NAN);
				continue;
			}
			printf(" rounds=%u min=%.0f max=%.0f spread=%.2f\n", s->n, s->imin, s->imax,
			       s->imin > 0 ? s->imax / s->imin : NAN);
		}
	}
}

/* The issue's goals, one line each, after the table. */
static void print_goals(void)
{
	int kd = subject_index(K_DEVICE), kk = subject_index(K_KERNEL);
	const struct subject *dev = kd >= 0 ? &subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &subjects[kk] : NULL;
	unsigned int i, ph;

	printf("GOALS (ratio to the anchor measured in this run)\n");
	for (i = 0; i < nsubjects; i++) {
		const struct subject *sub = &subjects[i];
		double r, g;

		if (sub->kind != K_FL)
			continue;
		if (sub->failed) {
			printf("  %-18s FAILED: %s\n", sub->name, sub->error);
			continue;
		}
		g = fill_goal(sub);
		r = ratio(sub->s[0].rate, ker && ker->s[0].ok ? ker->s[0].rate : NAN);
		printf("  %-18s fill rate                 >= %.2fx kernel:      %s %s\n", sub->name,
		       g, rf(r, 6), verdict(r, g, "met", "NOT MET"));
		for (ph = 1; ph < 1 + opt.nthreads; ph++) {
			unsigned int t = opt.threads[ph - 1];

			g = reads_goal(sub, t);
			if (g > 0) {
				r = ratio(sub->s[ph].rate,
					  ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
				printf("  %-18s read throughput, t%-2u     >= %.2fx kernel:      "
				       "%s "
				       "%s\n",
				       sub->name, t, g, rf(r, 6), verdict(r, g, "met", "NOT MET"));
			}
			g = misses_goal(sub, t);
			if (g > 0) {
				r = ratio(sub->s[ph].miss,
					  dev && dev->s[ph].ok ? dev->s[ph].rate : NAN);
				printf("  %-18s misses/s, t%-2u            >= %.2fx device qd%-2u: "
				       "%s "
				       "%s\n",
				       sub->name, t, g, t, rf(r, 6),
				       verdict(r, g, "met", "NOT MET"));
			}
		}
		g = seq_goal(sub);
		if (opt.seq && g > 0) {
			ph = seq_phase();
			r = ratio(sub->s[ph].rate, ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
			printf("  %-18s sequential read           >= %.2fx kernel:      %s %s\n",
			       sub->name, g, rf(r, 6), verdict(r, g, "met", "NOT MET"));
		}
	}
	printf("\n");
}

static const char *jverdict(double r, double goal, const char *yes, const char *no)
{
	return isnan(r) ? "null" : verdict(r, goal, yes, no);
}

static void print_json(const struct run_info *ri)
{
	int kd = subject_index(K_DEVICE), kk = subject_index(K_KERNEL);
	const struct subject *dev = kd >= 0 ? &subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &subjects[kk] : NULL;
	unsigned int i, ph, k;
	bool first = true;
	char name[64];

	printf("{\n  \"bench\": \"faultline-swap\", \"version\": \"%s\", \"date\": \"%s\",\n",
	       FL_VERSION_STRING, ri->host.date);
	printf("  \"kernel\": \"%s\", \"cpus\": %ld, \"thp\": \"%s\",\n", ri->host.kernel,
	       ri->host.cpus, ri->host.thp);
	printf("  \"region_bytes\": %zu, \"budget_bytes\": %zu, \"seconds\": %g, "
	       "\"warmup_s\": %g, \"rounds\": %u, \"seed\": %" PRIu64 ", \"sequential\": %s,\n",
	       opt.region, opt.budget, opt.seconds, opt.warmup, opt.rounds, opt.seed,
	       opt.seq ? "true" : "false");
	printf("  \"bare_anchor\": %s, \"bare_slice_pages\": %lu,\n",
	       opt.do_bare ? "true" : "false", BARE_SLICE);
	printf("  \"dir\": \"%s\", \"fstype\": \"%s\", \"disk\": \"%s\",\n", opt.dir, store.fstype,
	       store.disk);
	printf("  \"vm_swappiness\": %ld, \"cgroup_swappiness\": %ld, \"page_cluster\": %ld,\n",
	       ks_kern.vm_swappiness, ks_kern.cg_swappiness, ks_kern.page_cluster);
	printf("  \"load_start\": \"%s\", \"load_end\": \"%s\", ", ri->load0, ri->load1);
	printf("\"elapsed_s\": %.3f, \"foreign_cpu_s\": %.3f, \"steal_cpu_s\": %.3f,\n",
	       ri->elapsed, ri->foreign, ri->steal);
	printf("  \"figures\": [\n");
	for (i = 0; i < nsubjects; i++) {
		const struct subject *sub = &subjects[i];

		if (sub->failed) {
			printf("%s    {\"name\": \"%s\", \"status\": \"failed\", \"error\": "
			       "\"%s\"}",
			       first ? "" : ",\n", sub->name, sub->error);
			first = false;
			continue;
		}
		for (ph = 0; ph < nphases(); ph++) {
			const struct summ *s = &sub->s[ph];
			const struct window *w = W(sub, ph, opt.rounds - 1);
			unsigned int t = ph && ph < seq_phase() ? opt.threads[ph - 1] : 1;

			if (!s->ok)
				continue;
			phase_name(sub, ph, name, sizeof(name));
			printf("%s    {\"name\": \"%s\", \"threads\": %u, ", first ? "" : ",\n",
			       name, t);
			first = false;
			if (ph == 0) {
				double r = ratio(s->rate, ker ? ker->s[0].rate : NAN);

				json_num("pages_per_s", s->rate, ", ");
				json_num("ratio_kernel", r, ", ");
				if (fill_goal(sub) > 0)
					printf("\"goal\": \">=%.2f\", \"goal_met\": %s, ",
					       fill_goal(sub),
					       jverdict(r, fill_goal(sub), "true", "false"));
				json_num("writes_per_s", s->writes, ", ");
			} else if (ph == seq_phase()) {
				double r = ratio(s->rate,
						 ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);

				json_num("pages_per_s", s->rate, ", ");
				json_num("ratio_kernel", r, ", ");
				if (seq_goal(sub) > 0)
					printf("\"goal\": \">=%.2f\", \"goal_met\": %s, ",
					       seq_goal(sub),
					       jverdict(r, seq_goal(sub), "true", "false"));
				json_num("misses_per_s", s->miss, ", ");
			} else {
				double rr = ratio(s->rate,
						  ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
				double rm = ratio(s->miss,
						  dev && dev->s[ph].ok ? dev->s[ph].rate : NAN);

				json_num("ops_per_s", s->rate, ", ");
				json_num("misses_per_s", s->miss, ", ");
				if (sub->kind == K_BARE)
					json_num("misses_ratio_device", rm, ", ");
				if (sub->kind == K_KERNEL || sub->kind == K_FL) {
					json_num("ratio_kernel", rr, ", ");
					if (reads_goal(sub, t) > 0)
						printf("\"reads_goal\": \">=%.2f\", "
						       "\"reads_goal_met\": "
						       "%s, ",
						       reads_goal(sub, t),
						       jverdict(rr, reads_goal(sub, t), "true",
								"false"));
					json_num("misses_ratio_device", rm, ", ");
					if (misses_goal(sub, t) > 0)
						printf("\"misses_goal\": \">=%.2f\", "
						       "\"misses_goal_met\": %s, ",
						       misses_goal(sub, t),
						       jverdict(rm, misses_goal(sub, t), "true",
								"false"));
				}
				if (sub->kind == K_FL) {
					char bname[64];
					double rb = bare_ratio(sub, ph, bname, sizeof(bname));

					json_num("misses_ratio_bare", rb, ", ");
					if (isnan(rb))
						printf("\"anchor_bare\": null, ");
					else
						printf("\"anchor_bare\": \"%s\", ", bname);
				}
			}
			json_num("p50_us", s->p50, ", ");
			json_num("p99_us", s->p99, ", ");
			json_num("p999_us", s->p999, ", ");
			json_num("max_us", s->max, ", ");
			printf("\"rounds\": %u, \"intervals_last_round\": [", s->n);
			for (k = 0; k < w->nivl; k++)
				printf("%.0f%s", w->ivl_ops[k], k + 1 < w->nivl ? ", " : "");
			printf("]");
			if (sub->kind == K_FL && w->done) {
				printf(", \"faultline_end\": ");
				fflush(stdout);
				fl_stats_print_snapshot(&w->fl1, stdout, FL_STATS_JSON);
				printf("      , \"faultline_start\": ");
				fflush(stdout);
				fl_stats_print_snapshot(&w->fl0, stdout, FL_STATS_JSON);
			} else if (sub->kind == K_BARE && w->done) {
				printf(", \"uffd\": {\"copies\": %.0f, \"eexist\": %.0f, "
				       "\"slice_drops\": %.0f}",
				       delta(w->b0.copies, w->b1.copies),
				       delta(w->b0.exist, w->b1.exist),
				       delta(w->b0.drops, w->b1.drops));
			} else if (sub->kind == K_KERNEL && w->done) {
				printf(", \"kernel\": {\"pgmajfault_cgroup\": %.0f, "
				       "\"pgmajfault\": "
				       "%.0f, \"pswpin\": %.0f, \"pswpout\": %.0f, \"swap_ra\": "
				       "%.0f, "
				       "\"swap_ra_hit\": %.0f}",
				       delta(w->k0.cg_pgmajfault, w->k1.cg_pgmajfault),
				       delta(w->k0.pgmajfault, w->k1.pgmajfault),
				       delta(w->k0.pswpin, w->k1.pswpin),
				       delta(w->k0.pswpout, w->k1.pswpout),
				       delta(w->k0.swap_ra, w->k1.swap_ra),
				       delta(w->k0.swap_ra_hit, w->k1.swap_ra_hit));
			}
			printf("}");
		}
	}
	printf("\n  ]\n}\n");
}

/* ---- Options ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: swapbench [options]\n"
		"\n"
		"faultline's swap against the kernel's swap (a memory cgroup and a swap file,\n"
		"set up and removed by this program: needs root), the disk (io_uring\n"
		"random reads) and the bare userfaultfd swap-in (no faultline: every access\n"
		"a miss, served by a pread of the disk's file and a UFFDIO_COPY, by handler\n"
		"threads or in the SIGBUS handler: uffd-thread, uffd-sigbus), as ratios\n"
		"measured in the same run.  Not a test.  See BENCHMARKS.md, section Swap.\n"
		"\n"
		"  -r, --region SIZE      region filled and read (default 1G; K/M/G)\n"
		"  -b, --budget SIZE      memory budget: faultline's mem_limit, the cgroup's\n"
		"                         memory.limit_in_bytes (default 256M)\n"
		"  -s, --seconds S        measured read window per thread count (default 10)\n"
		"  -w, --warmup S         unmeasured reads before each window (default 1)\n"
		"      --probe-seconds S  device probe window (default: --seconds)\n"
		"  -t, --threads LIST     application threads = device queue depths\n"
		"                         (default 1,2,4,8; at most %d each)\n"
		"  -p, --policy LIST      faultline policies: mmap,bail,drop,drop-vma,hold\n"
		"                         (default drop)\n"
		"  -d, --delivery LIST    faultline deliveries: thread,sigbus (default both)\n"
		"      --rounds N         repeat everything; figures are medians (default 1)\n"
		"      --seed N           access pattern and data (default 1)\n"
		"      --dir DIR          file system of the stores (default $TMPDIR or /tmp;\n"
		"                         sets TMPDIR for faultline's store)\n"
		"      --swapfile SIZE    the kernel's swap file (default 2G, or region + 1G)\n"
		"      --swappiness N     the cgroup's memory.swappiness (default: inherited;\n"
		"                         60 if vm.swappiness is 0); vm.swappiness is not changed\n"
		"      --no-kernel, --no-device, --no-faultline   skip a subject\n"
		"      --no-bare          skip the bare userfaultfd anchor (faultline's x bare\n"
		"                         then says n/a); it runs the deliveries of --delivery\n"
		"      --no-preheat       do not populate and free the budget before a fill\n"
		"      --no-seq           skip the sequential read (MADV_PAGEOUT of the region,\n"
		"                         then one pass in address order)\n"
		"      --timeout S        give up after S seconds in one phase (default %u)\n"
		"      --json             one JSON document instead of the table\n"
		"  -v, --verbose          more on stderr (and mkswap's output)\n"
		"  -h, --help             this text\n"
		"\n"
		"Quick run: swapbench --region 256M --budget 64M --seconds 3\n",
		MAX_THREADS, opt.timeout);
}

static double parse_secs(const char *s, const char *what, double lo)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo) || v > 86400) {
		fprintf(stderr, "swapbench: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static size_t parse_size(const char *s, const char *what)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s) {
		switch (*end) {
		case 'k':
		case 'K':
			shift = 10;
			end++;
			break;
		case 'm':
		case 'M':
			shift = 20;
			end++;
			break;
		case 'g':
		case 'G':
			shift = 30;
			end++;
			break;
		}
		if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
			end += 2;
		else if (*end == 'B' || *end == 'b')
			end++;
	}
	if (errno || end == s || *end || v == 0 || v > (1ull << 40) >> shift ||
	    ((v << shift) % PAGE)) {
		fprintf(stderr, "swapbench: bad %s '%s' (a multiple of 4 KiB; K/M/G)\n", what, s);
		exit(2);
	}
	return (size_t)(v << shift);
}

/* Comma-separated words: calls f on each. */
static unsigned int parse_words(const char *s, const char *what, int *out, unsigned int max,
				int (*f)(const char *))
{
	char buf[256], *tok, *save = NULL;
	unsigned int n = 0, i;
	int v;

	fmt(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		v = f(tok);
		if (v < 0) {
			fprintf(stderr, "swapbench: bad %s '%s'\n", what, tok);
			exit(2);
		}
		for (i = 0; i < n && out[i] != v; i++)
			;
		if (i < n)
			continue; /* a repeat */
		if (n == max) {
			fprintf(stderr, "swapbench: too many %s\n", what);
			exit(2);
		}
		out[n++] = v;
	}
	if (!n) {
		fprintf(stderr, "swapbench: empty %s\n", what);
		exit(2);
	}
	return n;
}

static int word_threads(const char *s)
{
	return (int)parse_num(s, "thread count", 1, MAX_THREADS);
}

enum {
	OPT_PROBE_SECONDS = 256,
	OPT_ROUNDS,
	OPT_SEED,
	OPT_DIR,
	OPT_SWAPFILE,
	OPT_SWAPPINESS,
	OPT_NO_KERNEL,
	OPT_NO_DEVICE,
	OPT_NO_FAULTLINE,
	OPT_NO_BARE,
	OPT_NO_PREHEAT,
	OPT_NO_SEQ,
	OPT_TIMEOUT,
	OPT_JSON,
};

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"region", required_argument, NULL, 'r'},
		{"budget", required_argument, NULL, 'b'},
		{"seconds", required_argument, NULL, 's'},
		{"warmup", required_argument, NULL, 'w'},
		{"probe-seconds", required_argument, NULL, OPT_PROBE_SECONDS},
		{"threads", required_argument, NULL, 't'},
		{"policy", required_argument, NULL, 'p'},
		{"delivery", required_argument, NULL, 'd'},
		{"rounds", required_argument, NULL, OPT_ROUNDS},
		{"seed", required_argument, NULL, OPT_SEED},
		{"dir", required_argument, NULL, OPT_DIR},
		{"swapfile", required_argument, NULL, OPT_SWAPFILE},
		{"swappiness", required_argument, NULL, OPT_SWAPPINESS},
		{"no-kernel", no_argument, NULL, OPT_NO_KERNEL},
		{"no-device", no_argument, NULL, OPT_NO_DEVICE},
		{"no-faultline", no_argument, NULL, OPT_NO_FAULTLINE},
		{"no-bare", no_argument, NULL, OPT_NO_BARE},
		{"no-preheat", no_argument, NULL, OPT_NO_PREHEAT},
		{"no-seq", no_argument, NULL, OPT_NO_SEQ},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"json", no_argument, NULL, OPT_JSON},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, list[MAX_TLIST];
	unsigned int i;
	const char *tmp;

	while ((c = next_option(argc, argv, "r:b:s:w:t:p:d:vh", longopts, usage)) != -1) {
		switch (c) {
		case 'r':
			opt.region = parse_size(optarg, "region");
			break;
		case 'b':
			opt.budget = parse_size(optarg, "budget");
			break;
		case 's':
			opt.seconds = parse_secs(optarg, "seconds", 0.1);
			break;
		case 'w':
			opt.warmup = parse_secs(optarg, "warm-up seconds", 0);
			break;
		case OPT_PROBE_SECONDS:
			opt.probe_seconds = parse_secs(optarg, "probe seconds", 0.1);
			break;
		case 't':
			opt.nthreads =
				parse_words(optarg, "thread counts", list, MAX_TLIST, word_threads);
			for (i = 0; i < opt.nthreads; i++)
				opt.threads[i] = (unsigned int)list[i];
			break;
		case 'p':
			opt.npolicies = parse_words(optarg, "policies", opt.policies, FL_POLICY_NR,
						    fl_policy_by_name);
			break;
		case 'd':
			opt.ndeliveries = parse_words(optarg, "deliveries", opt.deliveries,
						      MAX_DELIVERIES, fl_delivery_by_name);
			break;
		case OPT_ROUNDS:
			opt.rounds = (unsigned int)parse_num(optarg, "rounds", 1, MAX_ROUNDS);
			break;
		case OPT_SEED:
			opt.seed = parse_num(optarg, "seed", 0, ULONG_MAX);
			break;
		case OPT_DIR:
			fmt(opt.dir, sizeof(opt.dir), "%s", optarg);
			break;
		case OPT_SWAPFILE:
			opt.swapfile = parse_size(optarg, "swap file size");
			break;
		case OPT_SWAPPINESS:
			opt.swappiness = (int)parse_num(optarg, "swappiness", 1, 200);
			break;
		case OPT_NO_KERNEL:
			opt.do_kernel = false;
			break;
		case OPT_NO_DEVICE:
			opt.do_device = false;
			break;
		case OPT_NO_FAULTLINE:
			opt.do_faultline = false;
			break;
		case OPT_NO_BARE:
			opt.do_bare = false;
			break;
		case OPT_NO_PREHEAT:
			opt.preheat = false;
			break;
		case OPT_NO_SEQ:
			opt.seq = false;
			break;
		case OPT_TIMEOUT:
			opt.timeout = (unsigned int)parse_num(optarg, "timeout", 1, 86400);
			break;
		case OPT_JSON:
			opt.json = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		}
	}
	no_operands(argc, argv);
	if (opt.budget < 64 * PAGE || opt.budget >= opt.region) {
		fprintf(stderr, "swapbench: the budget must be at least 256 KiB and smaller than "
				"the region\n");
		exit(2);
	}
	if (!opt.dir[0]) {
		tmp = getenv("TMPDIR");
		fmt(opt.dir, sizeof(opt.dir), "%s", tmp && *tmp ? tmp : "/tmp");
	}
	/* faultline's default store goes to $TMPDIR: the same file system. */
	setenv("TMPDIR", opt.dir, 1);
	if (!opt.swapfile)
		opt.swapfile = opt.region + (1UL << 30) > (2UL << 30) ? opt.region + (1UL << 30)
								      : 2UL << 30;
	if (opt.swapfile < opt.region + (64UL << 20)) {
		fprintf(stderr, "swapbench: the swap file must be larger than the region\n");
		exit(2);
	}
}

static void identify_store(void)
{
	struct statfs sfs;
	struct stat st;
	struct dstat d;

	if (stat(opt.dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "swapbench: %s is not a directory\n", opt.dir);
		exit(2);
	}
	store.dev = st.st_dev;
	fmt(store.fstype, sizeof(store.fstype), "fs");
	if (!statfs(opt.dir, &sfs)) {
		switch ((unsigned long)sfs.f_type) {
		case 0xEF53:
			fmt(store.fstype, sizeof(store.fstype), "ext4");
			break;
		case 0x58465342:
			fmt(store.fstype, sizeof(store.fstype), "xfs");
			break;
		case 0x9123683E:
			fmt(store.fstype, sizeof(store.fstype), "btrfs");
			break;
		case 0x01021994:
			fmt(store.fstype, sizeof(store.fstype), "tmpfs");
			break;
		default:
			fmt(store.fstype, sizeof(store.fstype), "fs %#lx",
			    (unsigned long)sfs.f_type);
		}
	}
	read_disk(&d);
}

int main(int argc, char **argv)
{
	struct run_info ri;
	struct cpus c0, c1;
	unsigned int r, i, failed = 0;
	uint64_t t0;

	parse_args(argc, argv);
	if ((size_t)sysconf(_SC_PAGESIZE) != PAGE) {
		fprintf(stderr, "swapbench: needs 4 KiB pages\n");
		return 2;
	}
	main_pid = getpid();
	ks_init("swapbench", opt.verbose);
	identify_store();
	gather_info(&ri);
	build_subjects();
	if (!nsubjects) {
		fprintf(stderr, "swapbench: nothing to measure\n");
		return 2;
	}
	/* Prepared before the clock starts: the swap file, the cgroup, the probe file. */
	if (opt.do_kernel && kernel_prepare())
		fprintf(stderr, "swapbench: kernel side unavailable: %s\n", ks_kern.error);
	for (i = 0; i < nsubjects; i++) {
		struct subject *sub = &subjects[i];

		if ((sub->kind == K_DEVICE || sub->kind == K_BARE) &&
		    probe_prepare(sub->error, sizeof(sub->error)))
			sub->failed = true;
	}

	read_cpus(&c0, true);
	read_disk(&ri.d0);
	t0 = now_ns();
	for (r = 0; r < opt.rounds; r++)
		for (i = 0; i < nsubjects; i++)
			run_subject(&subjects[r % 2 ? nsubjects - 1 - i : i], r);
	ri.elapsed = (double)(now_ns() - t0) / 1e9;
	read_cpus(&c1, true);
	read_disk(&ri.d1);
	ri.foreign = foreign_of(&c0, &c1);
	ri.steal = c1.t.steal - c0.t.steal;
	read_load(ri.load1, sizeof(ri.load1));
	fprintf(stderr, "swapbench: %.1f s\n", ri.elapsed);

	ks_cleanup(); /* before printing: the machine is back as it was */
	summarise();
	if (opt.json) {
		print_json(&ri);
	} else {
		print_table(&ri);
		print_goals();
		print_bench_lines();
	}
	for (i = 0; i < nsubjects; i++)
		failed += subjects[i].failed;
	return failed ? 1 : 0;
}
