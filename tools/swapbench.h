/* SPDX-License-Identifier: MIT */
/*
 * swapbench (see swapbench.c): what its files share.
 *
 *   swapbench.c           the run: subjects, rounds, medians, main()
 *   swapbench_options.c   the command line
 *   swapbench_workload.c  the workload (fill, random verified reads, the
 *                         sequential read) and what a window records
 *   swapbench_device.c    the store's device: its disk, the probe file, the
 *                         io_uring probe (the "device" subject)
 *   swapbench_subjects.c  the other subjects: the bare userfaultfd anchor,
 *                         the kernel (in a child), faultline
 *   swapbench_report.c    goals, the text tables, the BENCH lines, JSON
 *
 * Define TOOL ("swapbench") and _GNU_SOURCE before including it.
 */
#ifndef FL_TOOLS_SWAPBENCH_H
#define FL_TOOLS_SWAPBENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
#define MAX_KERNELS 4 /* entries of --kernel */
#define MAX_STREAMS 4 /* entries of --streams */
#define MAX_SUBJECTS 48
/* The fill, one read window per T, the sequential, strided and interleaved reads. */
#define MAX_PHASES (4 + MAX_TLIST)
#define MAX_IVL 1200 /* 1-s intervals in one window */
#define IVL_NS 1000000000ull
/* max/min over the 1-s intervals above which a figure is flagged. */
#define UNSTABLE 1.5

/*
 * The bare anchor: a region of BARE_PAGES pages, each application thread
 * reading its own slices of BARE_SLICE pages (swapbench_subjects.c).
 */
#define BARE_PAGES (1UL << 20) /* 4 GiB of address space, MAP_NORESERVE */
#define BARE_SLICE 4096UL      /* pages; a power of two */
_Static_assert(BARE_PAGES / BARE_SLICE >= MAX_THREADS, "a bare slice per thread");
_Static_assert(MAX_THREADS <= BARE_MAX_THREADS, "a bare context per thread");

/* ---- Configuration (see usage()) ---- */

/* What the fill writes (--data; sb_word()). */
enum sb_data {
	DATA_PATTERN, /* salt ^ (page << 9 | word): every word different */
	DATA_HEAP,    /* objects of a size class per page: lz4 about 2.3x, zstd 3.6x */
	DATA_RANDOM,  /* a hash per word: incompressible */
};

/* In --zswap's values: FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE on (lz4-keep). */
#define SB_ZSWAP_KEEP 0x100

/* The kernel's swap (--kernel): to the swap file, through zswap, to zram. */
enum kvariant {
	KV_SWAP,
	KV_ZSWAP,
	KV_ZRAM,
};

struct kernel_variant {
	int variant; /* enum kvariant */
	char alg[16];
};

struct sb_opts {
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
	char store[512]; /* --store: faultline's store (FAULTLINE_SWAP); "": the default */
	size_t swapfile;
	int swappiness;		/* -1: leave the cgroup's as it comes */
	int zswap_page_cluster; /* vm.page-cluster in zswap's runs; -1: as found */
	bool do_kernel, do_device, do_faultline, do_bare;
	int data;      /* enum sb_data */
	int zswaps[4]; /* faultline's tier per subject: -1 as the environment says;
			* | SB_ZSWAP_KEEP: incompressible pages kept as they are */
	unsigned int nzswaps;
	int prefetches[2]; /* faultline's FAULTLINE_PREFETCH per subject: -1 as it says */
	unsigned int nprefetches;
	size_t pool; /* the compressed pool: zswap_max, zram mem_limit, zswap's % */
	struct kernel_variant kernels[MAX_KERNELS];
	unsigned int nkernels;
	unsigned int stride;		   /* the strided read's stride; 0: none */
	unsigned int streams[MAX_STREAMS]; /* the interleaved read's strides */
	unsigned int nstreams;
	bool preheat;
	bool seq; /* the sequential read phase */
	unsigned int timeout;
	bool json;
	bool verbose;
};

/*
 * Phases: 0 the fill, 1..nthreads the read windows, then those of the
 * sequential, strided and interleaved reads that are asked for, in that
 * order.
 */
enum phase_kind {
	PH_FILL,
	PH_READS,
	PH_SEQ,
	PH_STRIDE,
	PH_INTER,
};

static inline unsigned int sb_seq_phase(const struct sb_opts *opt)
{
	return 1 + opt->nthreads;
}

static inline unsigned int sb_stride_phase(const struct sb_opts *opt)
{
	return sb_seq_phase(opt) + (opt->seq ? 1 : 0);
}

static inline unsigned int sb_inter_phase(const struct sb_opts *opt)
{
	return sb_stride_phase(opt) + (opt->stride ? 1 : 0);
}

static inline unsigned int sb_nphases(const struct sb_opts *opt)
{
	return sb_inter_phase(opt) + (opt->nstreams ? 1 : 0);
}

static inline enum phase_kind sb_phase_kind(const struct sb_opts *opt, unsigned int ph)
{
	if (ph == 0)
		return PH_FILL;
	if (ph <= opt->nthreads)
		return PH_READS;
	if (opt->seq && ph == sb_seq_phase(opt))
		return PH_SEQ;
	if (opt->stride && ph == sb_stride_phase(opt))
		return PH_STRIDE;
	return PH_INTER;
}

/* ---- What one measured window records ---- */

/* The kernel's counters: /proc/vmstat and the memory cgroup's own. */
struct kcount {
	struct ks_vmstat vm;
	uint64_t cg_pgmajfault, cg_pgfault, cg_swap, cg_rss, cg_usage, cg_failcnt;
	/* The compressed swap: zswap's (/proc/meminfo, /proc/vmstat: the
	 * machine's), zram's (mm_stat of our device), bytes. */
	uint64_t zswap_pool, zswapped, zswpin, zswpout, zswpwb;
	uint64_t zram_orig, zram_compr, zram_used;
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

/*
 * What a subject's threads do, by their names: the program's own (app:
 * the faulting threads), the fault handlers (fl-handler/N, the bare
 * anchor's bare-handler), faultline's completion thread (fl-reaper) and
 * background reclaim (fl-kswapd); rest: its other threads, and those that
 * ended between two snapshots.
 */
enum role {
	R_APP,
	R_HANDLER,
	R_REAPER,
	R_KSWAPD,
	R_REST,
	NROLES,
};

#define MAX_TASKS 96

/* The subject's process at a snapshot: its threads' CPU time
 * (/proc/self/task/T/schedstat, ns) and its context switches (getrusage:
 * all its threads', ended ones included). */
struct tasks {
	unsigned int n;
	bool ok;
	struct {
		pid_t tid;
		unsigned char role;
		uint64_t run_ns;
	} t[MAX_TASKS];
	uint64_t vcs, ivcs; /* voluntary, involuntary */
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
	struct tasks t0, t1;
};

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
 * The data: word w of page p holds salt ^ (p << 9 | w) (sb_salt_of()), so
 * that every word of the region is different and none is zero.
 */
static inline uint64_t sb_expected(uint64_t salt, size_t page, unsigned int word)
{
	return salt ^ ((uint64_t)page << 9 | word);
}

static inline uint64_t sb_mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 32);
}

/*
 * Word w of page p in each --data mode.  Word 0 is always the page's tag,
 * salt ^ (p << 9), different on every page: a reader checks it besides the
 * word it reads, so that a page read from the wrong place is caught even
 * where the word itself is zero.
 *
 * heap: a page of a slab of one size class, as a heap's pages are: objects
 * of S = 2..8 words (the page's hash), each a header word (the same in all
 * objects of the page: a type) and S - 1 fields whose kinds the page's
 * hash fixes per field: zero (6 in 16), a small integer (2 in 16), a
 * pointer into a 512-KiB arena (4 in 16: its upper five bytes shared),
 * text (lowercase-like bytes, 2 in 16), a random word (2 in 16); values
 * from a hash of the word.  LZ4 compresses such pages about 2.3x and zstd
 * (level 1) about 3.6x (measured over 4000 pages).
 */
static inline uint64_t sb_word(int data, uint64_t salt, size_t page, unsigned int w)
{
	uint64_t ph, h;
	unsigned int size, j, k;

	if (data == DATA_PATTERN || !w)
		return sb_expected(salt, page, w);
	h = sb_mix(salt ^ ((uint64_t)page << 9 | w));
	if (data == DATA_RANDOM)
		return h;
	ph = sb_mix(salt ^ ((uint64_t)page << 9) ^ 0x1ff);
	size = 2 + (unsigned int)(ph % 7);
	j = w % size;
	if (!j)
		return 0x0000000100000000ull | (ph >> 40);
	k = (unsigned int)(ph >> (8 + 4 * j)) & 15;
	if (k < 6)
		return 0;
	if (k < 8)
		return (h >> 20) & 0xff;
	if (k < 12)
		return 0x00007f0000000000ull | (salt & 0xffff000000ull) |
		       (((h >> 16) & 0xffff) << 3);
	if (k < 14)
		return (h & 0x1f1f1f1f1f1f1f1full) | 0x6060606060606060ull;
	return h;
}

/* ---- Subjects ---- */

enum kind {
	K_DEVICE,
	K_BARE,
	K_KERNEL,
	K_FL,
};

/* A subject's figures in one phase, over the rounds. */
struct summ {
	bool ok;
	unsigned int n;		    /* rounds measured */
	double rate, miss;	    /* ops/s and misses/s, median of rounds */
	double p50, p99, p999, max; /* us, median of rounds */
	double imin, imax;	    /* ops/s over the 1-s intervals */
	double mmin, mmax;	    /* misses/s over the 1-s intervals */
	double writes;		    /* fill: store writes per second */
	double rmin, rmax;	    /* misses/s (ops/s for the fill), lowest and highest round */
	double cpu_self, cpu_busy;  /* us of CPU per miss: the subject's own, the machine's */
	double comp;		    /* compression ratio at the window's end; 0: none */
	double slowest;		    /* us: the slowest access of all the rounds */
	double role_us[NROLES];	    /* us of CPU per miss by thread role (enum role) */
	double vcs, ivcs;	    /* context switches per miss: voluntary, involuntary */
};

struct subject {
	char name[40];
	enum kind kind;
	int delivery, policy;
	int zswap, prefetch;	  /* faultline: -1, or the tier's compressor, prefetch on */
	struct kernel_variant kv; /* the kernel: swap file, zswap or zram */
	bool failed;
	char error[200];
	/* The kernel's child killed by its cgroup's OOM killer: in how many
	 * rounds, and where the last time (the subject runs on in the next
	 * round; its figures are those of the windows finished). */
	unsigned int oom_rounds;
	char oom_where[64];
	unsigned int rounds;
	struct window *w;	   /* [MAX_PHASES][rounds] */
	struct summ s[MAX_PHASES]; /* per phase */
};

static inline struct window *W(const struct subject *sub, unsigned int phase, unsigned int round)
{
	return &sub->w[phase * sub->rounds + round];
}

/* The window of the last round that finished phase (the last round's if none did). */
static inline struct window *W_last(const struct subject *sub, unsigned int phase)
{
	for (unsigned int r = sub->rounds; r-- > 0;)
		if (W(sub, phase, r)->done)
			return W(sub, phase, r);
	return W(sub, phase, sub->rounds - 1);
}

/* Measuring in a forked child (the kernel subject): results go here. */
struct kshared {
	int mismatch;
	volatile int phase; /* the phase the child is in: which one it died in */
	char error[200];
	struct window w[MAX_PHASES];
};

/*
 * The benchmark: its options, the store, the probe file, the subjects.  One,
 * in main(), passed to everything; the kernel's child works on its copy.
 */
struct swapbench {
	struct sb_opts opt;
	struct subject subjects[MAX_SUBJECTS];
	unsigned int nsubjects;
	/* The store's file system and disk. */
	struct {
		dev_t dev;
		char fstype[16];
		char disk[32];
		bool disk_found;
	} store;
	/* The probe file: the device probe's and the bare anchor's. */
	struct {
		int fd;
		size_t pages;
		bool ready;
	} probe;
	/* The bare anchor's region, while it runs. */
	struct {
		struct bare b;
		uint64_t key;		/* bare_block()'s, from the seed */
		_Atomic uint64_t drops; /* slices dropped (MADV_DONTNEED) */
	} bare;
	pid_t main_pid;		  /* this benchmark's main process */
	pid_t kchild;		  /* the kernel child, while it runs (main process) */
	struct kshared *in_child; /* the kernel child's results, in that child only */
};

/* Where a window's counters come from. */
struct sampler {
	struct swapbench *sb;
	enum kind kind;
	struct fl_space *sp;
};

/* What the report says of the run as a whole. */
struct run_info {
	struct host_info host;
	char load0[64], load1[64];
	struct fl_config defaults;
	double elapsed, foreign, steal;
	struct dstat d0, d1;
};

/*
 * A read window's threads (swapbench_workload.c runs them; the bare anchor's
 * are its own, in swapbench_subjects.c).
 */
struct read_ctl {
	struct swapbench *sb;
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

/* swapbench.c */
void sb_phase_name(const struct swapbench *sb, const struct subject *sub, unsigned int ph,
		   char *buf, size_t len);
int sb_subject_index(const struct swapbench *sb, enum kind kind);

/* swapbench_options.c */
extern const struct sb_opts sb_defaults;
void sb_parse_args(struct sb_opts *opt, int argc, char **argv);

/* swapbench_workload.c */
double sb_hist_quantile(const struct fl_hist_snap *h, double q);
void sb_read_cpus(struct swapbench *sb, struct cpus *c, bool children);
double sb_foreign_of(const struct cpus *a, const struct cpus *b);
uint64_t sb_salt_of(uint64_t seed);
__attribute__((noreturn)) void sb_mismatch(struct swapbench *sb, const char *what,
					   const volatile uint64_t *addr, uint64_t salt,
					   size_t page, unsigned int word, uint64_t got,
					   size_t npages);
void sb_sampler_snap(struct sampler *s, struct window *w, bool end);
void sb_task_split(const struct window *w, double per, double *role_us, double *vcs, double *ivcs);
void sb_run_fill(struct sampler *s, uint64_t *base, size_t npages, uint64_t salt, struct window *w);
int sb_pageout(struct sampler *s, uint64_t *base, size_t len);
int sb_run_order(struct sampler *s, uint64_t *base, size_t npages, uint64_t salt, const char *what,
		 struct window *w, const uint32_t *order, size_t norder, size_t pass);
uint32_t *sb_order_stride(size_t npages, unsigned int stride, size_t *n);
int sb_run_passes(struct sampler *s, uint64_t *base, const char *name, struct window **wins,
		  volatile int *cur, char *err, size_t errlen);
uint32_t *sb_order_streams(size_t npages, const unsigned int *streams, unsigned int nstreams,
			   uint64_t seed, size_t *n);
uint64_t sb_reader_seed(uint64_t seed, unsigned int nthreads, unsigned int i, unsigned int round);
int sb_run_reads(struct sampler *s, const uint64_t *base, size_t npages, uint64_t salt,
		 unsigned int nthreads, unsigned int round, const char *what, struct window *w);

/* swapbench_device.c */
void sb_identify_store(struct swapbench *sb);
void sb_read_disk(struct swapbench *sb, struct dstat *d);
int sb_probe_prepare(struct swapbench *sb, char *err, size_t errlen);
void sb_run_device(struct swapbench *sb, struct subject *sub, unsigned int round);

/* swapbench_subjects.c */
void *sb_bare_reader_main(void *arg);
void sb_run_bare(struct swapbench *sb, struct subject *sub, unsigned int round);
int sb_kernel_prepare(struct swapbench *sb);
unsigned int sb_zswap_percent(const struct sb_opts *opt);
void sb_run_kernel(struct swapbench *sb, struct subject *sub, unsigned int round);
void sb_run_faultline(struct swapbench *sb, struct subject *sub, unsigned int round);

/* swapbench_report.c */
void sb_gather_info(struct run_info *ri);
void sb_read_load(char *buf, size_t len);
void sb_print_table(const struct swapbench *sb, const struct run_info *ri);
void sb_print_goals(const struct swapbench *sb);
void sb_print_bench_lines(const struct swapbench *sb);
void sb_print_json(const struct swapbench *sb, const struct run_info *ri);

/* swapbench_tiers.c */
double sb_comp_ratio(const struct subject *sub, const struct window *w);
void sb_print_tiers(const struct swapbench *sb);

#endif
