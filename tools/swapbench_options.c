// SPDX-License-Identifier: MIT
/*
 * swapbench's command line (see swapbench.h and usage()).
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kside.h"
#include "swapbench.h"

/* The defaults; usage() says them. */
const struct sb_opts sb_defaults = {
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
	.zswap_page_cluster = 0,
	.zswaps = {-1},
	.nzswaps = 1,
	.prefetches = {-1},
	.nprefetches = 1,
	.kernels = {{.variant = KV_SWAP}},
	.nkernels = 1,
	.do_kernel = true,
	.do_device = true,
	.do_faultline = true,
	.do_bare = true,
	.preheat = true,
	.seq = true,
	.timeout = 300,
};

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
		"      --store URL        faultline's store (as FAULTLINE_SWAP: a named store, or\n"
		"                         redis-cluster://HOST:PORT,...; default: a temporary "
		"file\n"
		"                         in --dir); FAULTLINE_ZSWAP etc. apply from the "
		"environment\n"
		"      --swapfile SIZE    the kernel's swap file (default 2G, or region + 1G)\n"
		"      --swappiness N     the cgroup's memory.swappiness (default: inherited;\n"
		"                         60 if vm.swappiness is 0); vm.swappiness is not changed\n"
		"      --data MODE        what the fill writes: pattern (default), heap (lz4\n"
		"                         about 2.3x, zstd 3.6x), random (incompressible)\n"
		"      --kernel LIST      the kernel's swap: swap (the swap file, default),\n"
		"                         zswap-ALG (zswap in front of it), zram-ALG (a zram\n"
		"                         device instead); ALG: lz4, zstd, lzo, ...\n"
		"      --zswap-page-cluster N  vm.page-cluster in zswap's runs (default 0: no\n"
		"                         swap readahead, as zram has none; put back after)\n"
		"      --zswap LIST       faultline's compressed tier per subject: off,lz4,zstd,\n"
		"                         lzo (LZO1X-1, the kernel's lzo); lz4-keep, zstd-keep,\n"
		"                         lzo-keep: incompressible pages kept in\n"
		"                         it as they are (FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE)\n"
		"                         (default: FAULTLINE_ZSWAP from the environment)\n"
		"      --pool SIZE        the compressed pool: faultline's FAULTLINE_ZSWAP_MAX,\n"
		"                         zram's mem_limit, zswap's nearest max_pool_percent;\n"
		"                         the kernel's cgroup then gets the budget less it\n"
		"                         (default with a tier or zswap/zram: 1%% of the RAM)\n"
		"      --prefetch LIST    faultline's trend prefetch per subject: on,off\n"
		"                         (default: FAULTLINE_PREFETCH from the environment)\n"
		"      --stride N         a strided read: every N-th page, N passes\n"
		"      --streams LIST     an interleaved read: one stream per stride listed\n"
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
		MAX_THREADS, sb_defaults.timeout);
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

static int word_threads(const char *s)
{
	return (int)parse_num(s, "thread count", 1, MAX_THREADS);
}

static void set_threads(struct sb_opts *opt, const char *arg)
{
	int list[MAX_TLIST];

	opt->nthreads = parse_list(arg, "thread counts", list, MAX_TLIST, word_threads, true);
	for (unsigned int i = 0; i < opt->nthreads; i++)
		opt->threads[i] = (unsigned int)list[i];
}

enum {
	OPT_PROBE_SECONDS = 256,
	OPT_ROUNDS,
	OPT_SEED,
	OPT_DIR,
	OPT_SWAPFILE,
	OPT_SWAPPINESS,
	OPT_ZSWAP_PAGE_CLUSTER,
	OPT_NO_KERNEL,
	OPT_NO_DEVICE,
	OPT_NO_FAULTLINE,
	OPT_NO_BARE,
	OPT_NO_PREHEAT,
	OPT_NO_SEQ,
	OPT_STORE,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_DATA,
	OPT_KERNEL,
	OPT_ZSWAP,
	OPT_POOL,
	OPT_PREFETCH,
	OPT_STRIDE,
	OPT_STREAMS,
};

static int word_zswap(const char *s)
{
	return !strcmp(s, "off")	 ? FL_ZSWAP_OFF
	       : !strcmp(s, "lz4")	 ? FL_ZSWAP_LZ4
	       : !strcmp(s, "zstd")	 ? FL_ZSWAP_ZSTD
	       : !strcmp(s, "lzo")	 ? FL_ZSWAP_LZO
	       : !strcmp(s, "lz4-keep")	 ? FL_ZSWAP_LZ4 | SB_ZSWAP_KEEP
	       : !strcmp(s, "zstd-keep") ? FL_ZSWAP_ZSTD | SB_ZSWAP_KEEP
	       : !strcmp(s, "lzo-keep")	 ? FL_ZSWAP_LZO | SB_ZSWAP_KEEP
					 : -1;
}

static int word_onoff(const char *s)
{
	return !strcmp(s, "on") ? 1 : !strcmp(s, "off") ? 0 : -1;
}

static int word_data(const char *s)
{
	return !strcmp(s, "pattern")  ? DATA_PATTERN
	       : !strcmp(s, "heap")   ? DATA_HEAP
	       : !strcmp(s, "random") ? DATA_RANDOM
				      : -1;
}

static int word_stride(const char *s)
{
	return (int)parse_num(s, "stride", 1, 1024);
}

static void set_kernels(struct sb_opts *opt, const char *arg)
{
	char buf[256], *tok, *save = NULL;

	opt->nkernels = 0;
	fmt(buf, sizeof(buf), "%s", arg);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct kernel_variant kv = {.variant = KV_SWAP};

		if (!strncmp(tok, "zswap-", 6) && tok[6]) {
			kv.variant = KV_ZSWAP;
			fmt(kv.alg, sizeof(kv.alg), "%s", tok + 6);
		} else if (!strncmp(tok, "zram-", 5) && tok[5]) {
			kv.variant = KV_ZRAM;
			fmt(kv.alg, sizeof(kv.alg), "%s", tok + 5);
		} else if (strcmp(tok, "swap")) {
			fprintf(stderr,
				"swapbench: bad kernel variant '%s' (swap, zswap-ALG, "
				"zram-ALG)\n",
				tok);
			exit(2);
		}
		if (opt->nkernels == MAX_KERNELS) {
			fprintf(stderr, "swapbench: too many kernel variants\n");
			exit(2);
		}
		opt->kernels[opt->nkernels++] = kv;
	}
	if (!opt->nkernels) {
		fprintf(stderr, "swapbench: empty kernel variants\n");
		exit(2);
	}
}

static void set_streams(struct sb_opts *opt, const char *arg)
{
	int list[MAX_STREAMS];

	opt->nstreams = parse_list(arg, "streams", list, MAX_STREAMS, word_stride, false);
	for (unsigned int i = 0; i < opt->nstreams; i++)
		opt->streams[i] = (unsigned int)list[i];
}

/* The options (parse_options()): name, key, argument, what it does. */
#define SWAPBENCH_OPTIONS(X)                                                                       \
	X("region", 'r', required_argument, opt->region = parse_size(optarg, "region"))            \
	X("budget", 'b', required_argument, opt->budget = parse_size(optarg, "budget"))            \
	X("seconds", 's', required_argument,                                                       \
	  opt->seconds = parse_real(optarg, "seconds", 0.1, 86400))                                \
	X("warmup", 'w', required_argument,                                                        \
	  opt->warmup = parse_real(optarg, "warm-up seconds", 0, 86400))                           \
	X("probe-seconds", OPT_PROBE_SECONDS, required_argument,                                   \
	  opt->probe_seconds = parse_real(optarg, "probe seconds", 0.1, 86400))                    \
	X("threads", 't', required_argument, set_threads(opt, optarg))                             \
	X("policy", 'p', required_argument,                                                        \
	  opt->npolicies = parse_list(optarg, "policies", opt->policies, FL_POLICY_NR,             \
				      fl_policy_by_name, true))                                    \
	X("delivery", 'd', required_argument,                                                      \
	  opt->ndeliveries = parse_list(optarg, "deliveries", opt->deliveries, MAX_DELIVERIES,     \
					fl_delivery_by_name, true))                                \
	X("rounds", OPT_ROUNDS, required_argument,                                                 \
	  opt->rounds = (unsigned int)parse_num(optarg, "rounds", 1, MAX_ROUNDS))                  \
	X("seed", OPT_SEED, required_argument,                                                     \
	  opt->seed = parse_num(optarg, "seed", 0, ULONG_MAX))                                     \
	X("dir", OPT_DIR, required_argument, fmt(opt->dir, sizeof(opt->dir), "%s", optarg))        \
	X("store", OPT_STORE, required_argument,                                                   \
	  fmt(opt->store, sizeof(opt->store), "%s", optarg))                                       \
	X("swapfile", OPT_SWAPFILE, required_argument,                                             \
	  opt->swapfile = parse_size(optarg, "swap file size"))                                    \
	X("swappiness", OPT_SWAPPINESS, required_argument,                                         \
	  opt->swappiness = (int)parse_num(optarg, "swappiness", 1, 200))                          \
	X("zswap-page-cluster", OPT_ZSWAP_PAGE_CLUSTER, required_argument,                         \
	  opt->zswap_page_cluster = (int)parse_num(optarg, "zswap page-cluster", 0, 31))           \
	X("no-kernel", OPT_NO_KERNEL, no_argument, opt->do_kernel = false)                         \
	X("no-device", OPT_NO_DEVICE, no_argument, opt->do_device = false)                         \
	X("no-faultline", OPT_NO_FAULTLINE, no_argument, opt->do_faultline = false)                \
	X("no-bare", OPT_NO_BARE, no_argument, opt->do_bare = false)                               \
	X("no-preheat", OPT_NO_PREHEAT, no_argument, opt->preheat = false)                         \
	X("no-seq", OPT_NO_SEQ, no_argument, opt->seq = false)                                     \
	X("timeout", OPT_TIMEOUT, required_argument,                                               \
	  opt->timeout = (unsigned int)parse_num(optarg, "timeout", 1, 86400))                     \
	X("json", OPT_JSON, no_argument, opt->json = true)                                         \
	X("data", OPT_DATA, required_argument,                                                     \
	  parse_list(optarg, "data mode", &opt->data, 1, word_data, true))                         \
	X("kernel", OPT_KERNEL, required_argument, set_kernels(opt, optarg))                       \
	X("zswap", OPT_ZSWAP, required_argument,                                                   \
	  opt->nzswaps = parse_list(optarg, "tiers", opt->zswaps, 4, word_zswap, true))            \
	X("pool", OPT_POOL, required_argument, opt->pool = parse_size(optarg, "pool"))             \
	X("prefetch", OPT_PREFETCH, required_argument,                                             \
	  opt->nprefetches = parse_list(optarg, "prefetch", opt->prefetches, 2, word_onoff, true)) \
	X("stride", OPT_STRIDE, required_argument,                                                 \
	  opt->stride = (unsigned int)word_stride(optarg))                                         \
	X("streams", OPT_STREAMS, required_argument, set_streams(opt, optarg))                     \
	X("verbose", 'v', no_argument, opt->verbose = true)

void sb_parse_args(struct sb_opts *opt, int argc, char **argv)
{
	const char *tmp;

	parse_options(SWAPBENCH_OPTIONS, argc, argv, usage);
	no_operands(argc, argv);
	if (opt->budget < 64 * PAGE || opt->budget >= opt->region) {
		fprintf(stderr, "swapbench: the budget must be at least 256 KiB and smaller than "
				"the region\n");
		exit(2);
	}
	if (!opt->dir[0]) {
		tmp = getenv("TMPDIR");
		fmt(opt->dir, sizeof(opt->dir), "%s", tmp && *tmp ? tmp : "/tmp");
	}
	{
		bool compressed = false;
		unsigned int i;

		for (i = 0; i < opt->nkernels; i++)
			compressed |= opt->do_kernel && opt->kernels[i].variant != KV_SWAP;
		for (i = 0; i < opt->nzswaps; i++)
			compressed |= opt->zswaps[i] > FL_ZSWAP_OFF;
		if (!opt->pool && compressed)
			opt->pool = ((size_t)sysconf(_SC_PHYS_PAGES) / 100) * PAGE;
		if (opt->pool && opt->pool + 64 * PAGE > opt->budget) {
			fprintf(stderr,
				"swapbench: the pool (%zu MiB) must leave at least 256 KiB "
				"of the budget\n",
				opt->pool >> 20);
			exit(2);
		}
		if (opt->region / PAGE > UINT32_MAX) {
			fprintf(stderr, "swapbench: the region is too large\n");
			exit(2);
		}
	}
	/* faultline's default store goes to $TMPDIR: the same file system. */
	setenv("TMPDIR", opt->dir, 1);
	if (!opt->swapfile)
		opt->swapfile = opt->region + (1UL << 30) > (2UL << 30) ? opt->region + (1UL << 30)
									: 2UL << 30;
	if (opt->swapfile < opt->region + (64UL << 20)) {
		fprintf(stderr, "swapbench: the swap file must be larger than the region\n");
		exit(2);
	}
}
