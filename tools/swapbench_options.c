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

void sb_parse_args(struct sb_opts *opt, int argc, char **argv)
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
			opt->region = parse_size(optarg, "region");
			break;
		case 'b':
			opt->budget = parse_size(optarg, "budget");
			break;
		case 's':
			opt->seconds = parse_real(optarg, "seconds", 0.1, 86400);
			break;
		case 'w':
			opt->warmup = parse_real(optarg, "warm-up seconds", 0, 86400);
			break;
		case OPT_PROBE_SECONDS:
			opt->probe_seconds = parse_real(optarg, "probe seconds", 0.1, 86400);
			break;
		case 't':
			opt->nthreads = parse_list(optarg, "thread counts", list, MAX_TLIST,
						   word_threads, true);
			for (i = 0; i < opt->nthreads; i++)
				opt->threads[i] = (unsigned int)list[i];
			break;
		case 'p':
			opt->npolicies = parse_list(optarg, "policies", opt->policies, FL_POLICY_NR,
						    fl_policy_by_name, true);
			break;
		case 'd':
			opt->ndeliveries = parse_list(optarg, "deliveries", opt->deliveries,
						      MAX_DELIVERIES, fl_delivery_by_name, true);
			break;
		case OPT_ROUNDS:
			opt->rounds = (unsigned int)parse_num(optarg, "rounds", 1, MAX_ROUNDS);
			break;
		case OPT_SEED:
			opt->seed = parse_num(optarg, "seed", 0, ULONG_MAX);
			break;
		case OPT_DIR:
			fmt(opt->dir, sizeof(opt->dir), "%s", optarg);
			break;
		case OPT_SWAPFILE:
			opt->swapfile = parse_size(optarg, "swap file size");
			break;
		case OPT_SWAPPINESS:
			opt->swappiness = (int)parse_num(optarg, "swappiness", 1, 200);
			break;
		case OPT_NO_KERNEL:
			opt->do_kernel = false;
			break;
		case OPT_NO_DEVICE:
			opt->do_device = false;
			break;
		case OPT_NO_FAULTLINE:
			opt->do_faultline = false;
			break;
		case OPT_NO_BARE:
			opt->do_bare = false;
			break;
		case OPT_NO_PREHEAT:
			opt->preheat = false;
			break;
		case OPT_NO_SEQ:
			opt->seq = false;
			break;
		case OPT_TIMEOUT:
			opt->timeout = (unsigned int)parse_num(optarg, "timeout", 1, 86400);
			break;
		case OPT_JSON:
			opt->json = true;
			break;
		case 'v':
			opt->verbose = true;
			break;
		}
	}
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
