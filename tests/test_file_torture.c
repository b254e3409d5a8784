/* SPDX-License-Identifier: MIT */
/*
 * test_file_torture: integrity of a shared file mapping 8x the budget,
 * under every policy and both deliveries.  Not a benchmark.
 *
 * One shared mapping of a file of FILE_PAGES pages, budget BUDGET_PAGES.
 * Writer threads own disjoint pages (page % WRITERS): each step checks a
 * page holds its last version, word for word, and writes the next one
 * over the whole page.  Meanwhile one thread splits and merges the VMA with
 * fl_mprotect (between two writable protections, so writers never fault on
 * it), one calls fl_msync(MS_SYNC) on random ranges, and one owns the last
 * REMAP_PAGES pages, which it writes, unmaps (written back), maps again at
 * the same place and checks.  At the end every page is checked in memory,
 * fl_msync'ed, the space destroyed, and every page checked in the file.
 * Any mismatch (stale, torn or foreign data, a lost write) fails.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include "util.h"

#define FILE_PAGES 2048
#define BUDGET_PAGES 256
#define WRITERS 3
#define REMAP_PAGES 64
#define WORK_PAGES (FILE_PAGES - REMAP_PAGES)

static size_t ps;
static struct fl_space *sp;
static unsigned char *base;
static int fd;
static uint32_t version[FILE_PAGES]; /* the page's owner's alone */
static _Atomic bool stop;
static double seconds;

static uint64_t word(size_t page, uint32_t v, size_t i)
{
	return ((uint64_t)page << 44) ^ ((uint64_t)v << 12) ^ i ^ 0x5bd1e995ULL;
}

static void fill(uint64_t *w, size_t page, uint32_t v)
{
	for (size_t i = 0; i < ps / 8; i++)
		w[i] = word(page, v, i);
}

static void check(const uint64_t *w, size_t page, uint32_t v, const char *where)
{
	for (size_t i = 0; i < ps / 8; i++)
		CHECK(w[i] == word(page, v, i),
		      "%s: page %zu word %zu holds %#" PRIx64 ", version %u wants %#" PRIx64, where,
		      page, i, w[i], v, word(page, v, i));
}

static void *writer(void *arg)
{
	unsigned int t = (unsigned int)(uintptr_t)arg;
	struct t_rng r;

	t_rng_init(&r, *t_seed_ptr() + t);
	while (!atomic_load(&stop)) {
		size_t page = t + WRITERS * t_below(&r, WORK_PAGES / WRITERS);
		uint64_t *w = (uint64_t *)(base + page * ps);

		check(w, page, version[page], "writer");
		fill(w, page, ++version[page]);
	}
	return NULL;
}

static void *splitter(void *arg)
{
	struct t_rng r;

	t_rng_init(&r, *t_seed_ptr() + 100);
	while (!atomic_load(&stop)) {
		size_t page = t_below(&r, WORK_PAGES - 8), n = 1 + t_below(&r, 8);
		int prot = t_chance(&r, 50) ? PROT_READ | PROT_WRITE | PROT_EXEC
					    : PROT_READ | PROT_WRITE;

		CHECK(fl_mprotect(sp, base + page * ps, n * ps, prot) == 0, "fl_mprotect: %s",
		      strerror(errno));
	}
	return arg;
}

static void *syncer(void *arg)
{
	struct t_rng r;

	t_rng_init(&r, *t_seed_ptr() + 200);
	while (!atomic_load(&stop)) {
		size_t page = t_below(&r, WORK_PAGES - 64), n = 1 + t_below(&r, 64);

		CHECK(fl_msync(sp, base + page * ps, n * ps, MS_SYNC) == 0, "fl_msync: %s",
		      strerror(errno));
	}
	return arg;
}

static void *remapper(void *arg)
{
	struct t_rng r;
	size_t first = WORK_PAGES;

	t_rng_init(&r, *t_seed_ptr() + 300);
	while (!atomic_load(&stop)) {
		size_t page = first + t_below(&r, REMAP_PAGES - 8), n = 1 + t_below(&r, 8);
		unsigned char *at = base + page * ps;

		for (size_t p = page; p < page + n; p++) {
			check((uint64_t *)(base + p * ps), p, version[p], "remapper");
			fill((uint64_t *)(base + p * ps), p, ++version[p]);
		}
		CHECK(fl_munmap(sp, at, n * ps) == 0, "fl_munmap: %s", strerror(errno));
		CHECK(fl_mmap(sp, at, n * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			      (off_t)(page * ps)) == at,
		      "fl_mmap again: %s", strerror(errno));
		for (size_t p = page; p < page + n; p++)
			check((uint64_t *)(base + p * ps), p, version[p], "after the remap");
	}
	return arg;
}

static void run(int delivery, int policy)
{
	struct fl_config cfg;
	pthread_t th[WRITERS + 3];
	uint64_t *buf = malloc(ps);
	struct fl_stats st;
	double t0;

	CHECK(buf, "malloc");
	for (size_t p = 0; p < FILE_PAGES; p++) {
		fill(buf, p, 0);
		version[p] = 0;
		CHECK(pwrite(fd, buf, ps, (off_t)(p * ps)) == (ssize_t)ps, "pwrite");
	}
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = policy;
	cfg.mem_limit = BUDGET_PAGES * ps;
	sp = t_space_create_cfg(&cfg);
	base = fl_mmap(sp, NULL, FILE_PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(base != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	atomic_store(&stop, false);
	for (uintptr_t t = 0; t < WRITERS; t++)
		CHECK(!pthread_create(&th[t], NULL, writer, (void *)t), "pthread_create");
	CHECK(!pthread_create(&th[WRITERS], NULL, splitter, NULL), "pthread_create");
	CHECK(!pthread_create(&th[WRITERS + 1], NULL, syncer, NULL), "pthread_create");
	CHECK(!pthread_create(&th[WRITERS + 2], NULL, remapper, NULL), "pthread_create");
	t0 = t_now_s();
	while (t_now_s() - t0 < seconds)
		usleep(10000);
	atomic_store(&stop, true);
	for (int t = 0; t < WRITERS + 3; t++)
		pthread_join(th[t], NULL);
	for (size_t p = 0; p < FILE_PAGES; p++)
		check((uint64_t *)(base + p * ps), p, version[p], "at the end, in memory");
	CHECK(fl_msync(sp, base, FILE_PAGES * ps, MS_SYNC) == 0, "fl_msync: %s", strerror(errno));
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.file_evictions > 0 && st.file_writebacks > 0, "no eviction or write-back");
	printf("  %s, %s: %" PRIu64 " file faults (%" PRIu64 " major), %" PRIu64
	       " evicted, %" PRIu64 " written back\n",
	       t_delivery_name(delivery), fl_policy_name(policy),
	       st.file_faults_major + st.file_faults_minor + st.file_faults_wp,
	       st.file_faults_major, st.file_evictions, st.file_writebacks);
	fl_space_destroy(sp);
	for (size_t p = 0; p < FILE_PAGES; p++) {
		CHECK(pread(fd, buf, ps, (off_t)(p * ps)) == (ssize_t)ps, "pread");
		check(buf, p, version[p], "at the end, in the file");
	}
	free(buf);
}

int main(int argc, char **argv)
{
	char path[] = "/var/tmp/fl-torture-XXXXXX";

	t_seed_init(argc, argv, "test_file_torture");
	ps = t_page_size();
	seconds = t_soak() ? 30 : 1.5;
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	unlink(path);
	for (int policy = 0; policy < FL_POLICY_NR; policy++)
		for (int d = 0; d < 2; d++)
			run(d ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD, policy);
	close(fd);
	printf("test_file_torture: ok\n");
	return T_EXIT_PASS;
}
