// SPDX-License-Identifier: MIT
/*
 * faultline: the command-line program.
 *
 *   faultline info      kernel, userfaultfd features, configuration in force
 *   faultline demo      a small real workload, then the statistics
 *   faultline mkstore   format a file or block device as a swap store
 *   faultline storebench  the store's checksum and encryption, per page
 */
#define _GNU_SOURCE
#define TOOL "faultline"
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#include "toolbox.h"

#define PG 4096UL

int lab_main(int argc, char **argv);
int mkstore_main(int argc, char **argv);
int storebench_main(int argc, char **argv);
int run_main(int argc, char **argv);
/* src/options.c (static library only): the option table, printed. */
void fl_options_print(const struct fl_config *cfg, FILE *out);

static void usage(FILE *out)
{
	fprintf(out,
		"usage: faultline COMMAND [OPTIONS]\n"
		"\n"
		"commands:\n"
		"  info                 kernel, userfaultfd features, configuration in force\n"
		"  demo                 threads faulting and writing verified patterns into\n"
		"                       faultline memory while other threads mprotect, munmap\n"
		"                       and mmap; then the statistics\n"
		"  lab [SCENARIO...]    the seed's scenarios under all five policies and the\n"
		"                       real kernel side by side ('faultline lab --help')\n"
		"  mkstore [--force] PATH [SIZE]\n"
		"                       format a file or block device as a swap store for\n"
		"                       FAULTLINE_SWAP ('faultline mkstore --help')\n"
		"  storebench           what the store's checksum and encryption cost per\n"
		"                       page (a benchmark; 'faultline storebench --help')\n"
		"  run [OPTIONS] -- PROGRAM [ARGS...]\n"
		"                       run an unmodified program with its heap and anonymous\n"
		"                       mappings served by faultline ('faultline run --help')\n"
		"\n"
		"demo options:\n"
		"  -t, --threads N      faulting threads (default 2)\n"
		"  -s, --seconds S      duration (default 5)\n"
		"  -m, --megabytes M    region size (default 256)\n"
		"  -d, --delivery D     thread or sigbus (default: FAULTLINE_DELIVERY or thread)\n"
		"  -j, --json           statistics as JSON\n"
		"  -h, --help           this text\n"
		"\n"
		"Options of the engine come from FAULTLINE_* environment variables; see\n"
		"'faultline info' and the README.\n");
}

static const struct {
	uint64_t bit;
	const char *name;
} features[] = {
	{1ULL << 0, "PAGEFAULT_FLAG_WP"},
	{1ULL << 1, "EVENT_FORK"},
	{1ULL << 2, "EVENT_REMAP"},
	{1ULL << 3, "EVENT_REMOVE"},
	{1ULL << 4, "MISSING_HUGETLBFS"},
	{1ULL << 5, "MISSING_SHMEM"},
	{1ULL << 6, "EVENT_UNMAP"},
	{1ULL << 7, "SIGBUS"},
	{1ULL << 8, "THREAD_ID"},
	{1ULL << 9, "MINOR_HUGETLBFS"},
	{1ULL << 10, "MINOR_SHMEM"},
	{1ULL << 11, "EXACT_ADDRESS"},
	{1ULL << 12, "WP_HUGETLBFS_SHMEM"},
	{1ULL << 13, "WP_UNPOPULATED"},
	{1ULL << 14, "POISON"},
	{1ULL << 15, "WP_ASYNC"},
	{1ULL << 16, "MOVE"},
};

static int cmd_info(void)
{
	struct utsname u;
	struct fl_config cfg;
	uint64_t f = 0;
	int ret;

	uname(&u);
	printf("faultline %s\n", FL_VERSION_STRING);
	printf("kernel:   %s %s %s\n", u.sysname, u.release, u.machine);
	ret = fl_uffd_features(&f);
	if (ret) {
		printf("userfaultfd: unavailable (%s)\n", strerror(-ret));
	} else {
		printf("userfaultfd features (%#llx):", (unsigned long long)f);
		for (size_t i = 0; i < ARRAY_SIZE(features); i++)
			if (f & features[i].bit)
				printf(" %s", features[i].name);
		printf("\n");
	}
	fl_config_init(&cfg);
	printf("configuration in force (defaults, then FAULTLINE_* environment):\n");
	fl_options_print(&cfg, stdout);
	return ret ? 1 : 0;
}

/* ---- demo ------------------------------------------------------------ */

static struct fl_space *sp;
static char *region;
static size_t npages;
static unsigned int nthreads;
static _Atomic bool stop, failed;
static _Atomic uint64_t touches, mprotects, remaps;

static uint64_t pattern(size_t page, uint32_t ver)
{
	uint64_t x = (page << 20) ^ ver ^ 0x9e3779b97f4a7c15ULL;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

/* Each thread owns the pages p with p % nthreads == id; the last 64 pages
 * and the 8 in the middle are the churn zones. */
static bool churn_zone(size_t p)
{
	return p >= npages - 64 || (p >= npages / 2 && p < npages / 2 + 8);
}

static void *faulter(void *arg)
{
	size_t id = (size_t)arg;
	uint32_t *ver = calloc(npages, sizeof(*ver));
	uint64_t x = id * 7919 + 1;

	while (!atomic_load(&stop) && !atomic_load(&failed)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t p = (x % (npages / nthreads)) * nthreads + id;
		if (churn_zone(p))
			continue;
		uint64_t *w = (uint64_t *)(region + p * PG);
		uint64_t want = ver[p] ? pattern(p, ver[p]) : 0;
		for (size_t i = 0; i < PG / 8; i += 64)
			if (w[i] != want) {
				fprintf(stderr, "MISMATCH at page %zu word %zu\n", p, i);
				atomic_store(&failed, true);
			}
		ver[p]++;
		for (size_t i = 0; i < PG / 8; i += 64)
			w[i] = pattern(p, ver[p]);
		atomic_fetch_add(&touches, 1);
	}
	free(ver);
	return NULL;
}

static void *churner(void *arg)
{
	char *mid = region + (npages / 2) * PG, *tail = region + (npages - 64) * PG;
	struct timespec ms = {0, 1000000};

	while (!atomic_load(&stop) && !atomic_load(&failed)) {
		if (fl_mprotect(sp, mid, 8 * PG, PROT_READ) ||
		    fl_mprotect(sp, mid, 8 * PG, PROT_READ | PROT_WRITE)) {
			perror("fl_mprotect");
			atomic_store(&failed, true);
		}
		atomic_fetch_add(&mprotects, 2);
		if (fl_mmap(sp, tail, 64 * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != tail) {
			perror("fl_mmap");
			atomic_store(&failed, true);
		}
		for (size_t p = 0; p < 64; p++)
			if (tail[p * PG + 11] != 0) {
				fprintf(stderr, "MISMATCH: remapped page not zero\n");
				atomic_store(&failed, true);
			}
		memset(tail, 0x5a, 64 * PG);
		atomic_fetch_add(&remaps, 1);
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static void demo_delivery(struct fl_config *cfg, const char *arg)
{
	cfg->delivery = fl_delivery_by_name(arg);
	if (cfg->delivery < 0) {
		fprintf(stderr, "faultline: --delivery is thread or sigbus\n");
		exit(2);
	}
}

/* demo's options (parse_options()): name, key, argument, what it does. */
#define DEMO_OPTIONS(X)                                                             \
	X("threads", 't', required_argument, nthreads = (unsigned int)atoi(optarg)) \
	X("seconds", 's', required_argument, seconds = (unsigned int)atoi(optarg))  \
	X("megabytes", 'm', required_argument, mb = (unsigned int)atoi(optarg))     \
	X("delivery", 'd', required_argument, demo_delivery(&cfg, optarg))          \
	X("json", 'j', no_argument, json = true)

static int cmd_demo(int argc, char **argv)
{
	struct fl_config cfg;
	unsigned int seconds = 5, mb = 256;
	bool json = false;
	int ret;

	nthreads = 2;
	fl_config_init(&cfg);
	parse_options(DEMO_OPTIONS, argc, argv, usage);
	if (nthreads < 1 || nthreads > 256 || mb < 4) {
		fprintf(stderr, "faultline: need 1..256 threads and at least 4 MiB\n");
		return 2;
	}
	ret = fl_space_create(&cfg, &sp);
	if (ret) {
		fprintf(stderr, "faultline: fl_space_create: %s\n", strerror(-ret));
		return 1;
	}
	npages = (size_t)mb << 8;
	region = fl_mmap(sp, NULL, npages * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED) {
		perror("fl_mmap");
		return 1;
	}
	if (!json)
		printf("demo: %u faulting thread(s), %s delivery, %u MiB, %u s; one thread "
		       "toggles mprotect and remaps a zone every millisecond\n",
		       nthreads, fl_delivery_name(cfg.delivery), mb, seconds);
	pthread_t th[257];
	for (size_t i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, faulter, (void *)i);
	pthread_create(&th[nthreads], NULL, churner, NULL);
	for (unsigned int s = 0; s < seconds && !atomic_load(&failed); s++) {
		sleep(1);
		if (!json) {
			struct fl_stats st;
			fl_stats(sp, &st);
			printf("  %us: %llu touches, %llu faults, %llu mprotects, %llu remaps, "
			       "%llu pages present\n",
			       s + 1, (unsigned long long)atomic_load(&touches),
			       (unsigned long long)st.faults,
			       (unsigned long long)atomic_load(&mprotects),
			       (unsigned long long)atomic_load(&remaps),
			       (unsigned long long)st.resident_pages);
		}
	}
	atomic_store(&stop, true);
	for (size_t i = 0; i <= nthreads; i++)
		pthread_join(th[i], NULL);
	if (!json)
		printf("\nstatistics:\n");
	fl_stats_print(sp, stdout, json ? FL_STATS_JSON : 0);
	fl_space_destroy(sp);
	if (atomic_load(&failed)) {
		fprintf(stderr, "faultline: demo FAILED: data mismatch or call failure\n");
		return 1;
	}
	if (!json)
		printf("\nall touched pages verified\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "info"))
		return cmd_info();
	if (!strcmp(argv[1], "demo"))
		return cmd_demo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "lab"))
		return lab_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mkstore"))
		return mkstore_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "storebench"))
		return storebench_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return run_main(argc - 1, argv + 1);
	fprintf(stderr, "faultline: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
