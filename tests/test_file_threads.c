/* SPDX-License-Identifier: MIT */
/*
 * test_file_threads: many threads reading file mappings bigger than the
 * budget while their reads are in flight through io_uring, and faults that
 * wait for those reads parked as continuations.  Every policy, both
 * deliveries.  Not a benchmark.
 *
 * A file of FILE_PAGES pages, mapped twice (shared and private), budget
 * BUDGET_PAGES.  READERS threads load random words of random pages of both
 * mappings and check each against the file's contents; one thread asks for
 * MADV_WILLNEED on random ranges (asynchronous reads racing the faults),
 * one drops random ranges with MADV_DONTNEED, and reclaim evicts all the
 * while.  In thread delivery there is one handler thread: a fault that
 * waits for a page must park, or the others would wait behind it, and the
 * counters must show parked faults.  At the end nothing may be left
 * locked: every page of the file reads right once more.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "util.h"

#define FILE_PAGES 2048
#define BUDGET_PAGES 256
#define READERS 8

static size_t ps;
static struct fl_space *sp;
static unsigned char *shared_map, *private_map;
static _Atomic bool stop;
static _Atomic uint64_t loads;

static uint64_t word(size_t page, size_t i)
{
	return ((uint64_t)page << 32) ^ (i * 0x9E3779B97F4A7C15ULL) ^ 0xC0FFEEULL;
}

static void check_word(const unsigned char *map, size_t page, size_t i, const char *what)
{
	uint64_t v;

	memcpy(&v, map + page * ps + i * 8, 8);
	CHECK(v == word(page, i), "%s: page %zu word %zu holds %#" PRIx64 ", the file %#" PRIx64,
	      what, page, i, v, word(page, i));
}

static void *reader(void *arg)
{
	struct t_rng r;

	t_rng_init(&r, *t_seed_ptr() + (uintptr_t)arg);
	while (!atomic_load(&stop)) {
		size_t page = t_below(&r, FILE_PAGES), i = t_below(&r, ps / 8);

		/* Runs of neighbours too, so that readahead windows and
		 * fault-around are exercised, not only single misses. */
		for (size_t k = 0; k < 1 + t_below(&r, 8) && page + k < FILE_PAGES; k++) {
			check_word(shared_map, page + k, i, "shared");
			check_word(private_map, page + k, i, "private");
		}
		atomic_fetch_add(&loads, 1);
	}
	return NULL;
}

static void *advisor(void *arg)
{
	int advice = (int)(uintptr_t)arg;
	struct t_rng r;

	t_rng_init(&r, *t_seed_ptr() + 100 + (unsigned)advice);
	while (!atomic_load(&stop)) {
		size_t page = t_below(&r, FILE_PAGES - 64), n = 1 + t_below(&r, 64);
		unsigned char *map = t_below(&r, 2) ? shared_map : private_map;

		CHECK(fl_madvise(sp, map + page * ps, n * ps, advice) == 0, "fl_madvise(%d): %s",
		      advice, strerror(errno));
		usleep(200);
	}
	return NULL;
}

static void run(int fd, int delivery, int policy, double secs)
{
	struct fl_config cfg;
	struct fl_stats st;
	pthread_t th[READERS + 2];

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = BUDGET_PAGES * ps;
	cfg.policy = policy;
	cfg.file_policy = policy;
	cfg.handlers = 1;
	sp = t_space_create_cfg(&cfg);
	shared_map = fl_mmap(sp, NULL, FILE_PAGES * ps, PROT_READ, MAP_SHARED, fd, 0);
	private_map = fl_mmap(sp, NULL, FILE_PAGES * ps, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(shared_map != MAP_FAILED && private_map != MAP_FAILED, "fl_mmap: %s",
	      strerror(errno));
	atomic_store(&stop, false);
	atomic_store(&loads, 0);
	for (uintptr_t t = 0; t < READERS; t++)
		CHECK(pthread_create(&th[t], NULL, reader, (void *)t) == 0, "pthread_create");
	CHECK(pthread_create(&th[READERS], NULL, advisor, (void *)(uintptr_t)MADV_WILLNEED) == 0,
	      "pthread_create");
	CHECK(pthread_create(&th[READERS + 1], NULL, advisor, (void *)(uintptr_t)MADV_DONTNEED) ==
		      0,
	      "pthread_create");
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&stop, true);
	for (int t = 0; t < READERS + 2; t++)
		pthread_join(th[t], NULL);
	/* Nothing is left locked or half read. */
	for (size_t p = 0; p < FILE_PAGES; p++) {
		check_word(shared_map, p, p % (ps / 8), "after, shared");
		check_word(private_map, p, (p * 7) % (ps / 8), "after, private");
	}
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	printf("  %s, %s: %" PRIu64 " loads, %" PRIu64 " major, %" PRIu64
	       " minor file faults, %" PRIu64 " pages read, %" PRIu64 " evicted, %" PRIu64
	       " parked, %" PRIu64 " retries queued\n",
	       t_delivery_name(delivery), fl_policy_name(policy), atomic_load(&loads),
	       st.file_faults_major, st.file_faults_minor, st.file_reads, st.file_evictions,
	       st.parked, st.retries_queued);
	CHECK(st.file_faults_major > 0 && st.file_evictions > 0, "no misses, or no eviction");
	CHECK(st.file_read_errors == 0 && st.pages_poisoned == 0, "read errors");
	if (delivery == FL_DELIVERY_THREAD)
		CHECK(st.parked > 0, "thread delivery: no file fault parked");
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	char path[] = "/var/tmp/fl-fthreads-XXXXXX";
	uint64_t *buf;
	double secs = t_soak() ? 20 : 0.5;
	int fd;

	t_seed_init(argc, argv, "test_file_threads");
	ps = t_page_size();
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	buf = malloc(ps);
	CHECK(buf, "malloc");
	for (size_t p = 0; p < FILE_PAGES; p++) {
		for (size_t i = 0; i < ps / 8; i++)
			buf[i] = word(p, i);
		CHECK(pwrite(fd, buf, ps, (off_t)(p * ps)) == (ssize_t)ps, "pwrite");
	}
	free(buf);
	for (int d = 0; d < 2; d++)
		for (int pol = 0; pol < FL_POLICY_NR; pol++)
			run(fd, d ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD, pol, secs);
	close(fd);
	unlink(path);
	printf("test_file_threads: ok\n");
	return T_EXIT_PASS;
}
