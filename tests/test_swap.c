// SPDX-License-Identifier: MIT
/*
 * Swap, single-threaded and exact: under every policy and both deliveries,
 * a region four times the budget is written page by page and read back;
 * every byte must come back, resident memory must stay near the budget, and
 * the counters must show the work (swap-outs, swap-ins, clean drops on a
 * second pass, MADV_PAGEOUT / MADV_WILLNEED / MADV_DONTNEED behaving).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "util.h"

#define PG 4096UL
#define BUDGET_PAGES 512
#define NPAGES (4 * BUDGET_PAGES)

static uint64_t word(size_t page, unsigned int ver, size_t i)
{
	uint64_t x = (page << 24) ^ ((uint64_t)ver << 48) ^ i;

	return t_splitmix64(&x);
}

static void fill(char *p, size_t page, unsigned int ver)
{
	uint64_t *w = (uint64_t *)(p + page * PG);

	for (size_t i = 0; i < PG / 8; i++)
		w[i] = word(page, ver, i);
}

static void verify(const char *p, size_t page, unsigned int ver, const char *what)
{
	const uint64_t *w = (const uint64_t *)(p + page * PG);

	for (size_t i = 0; i < PG / 8; i++)
		CHECK(w[i] == (ver ? word(page, ver, i) : 0),
		      "%s: page %zu word %zu: %#llx, expected version %u", what, page, i,
		      (unsigned long long)w[i], ver);
}

static struct fl_space *_Atomic cur;

/* FL_WATCH=1: print the counters every second (for a hang). */
static void *watch(void *arg)
{
	for (;;) {
		sleep(1);
		struct fl_space *sp = atomic_load(&cur);
		struct fl_stats st;
		if (!sp || fl_stats(sp, &st))
			continue;
		fprintf(stderr,
			"watch: faults %llu spurious %llu bad %llu major %llu minor %llu wp %llu "
			"out %llu resident %llu frames %llu parked %llu eagain %llu\n",
			(unsigned long long)st.faults, (unsigned long long)st.faults_spurious,
			(unsigned long long)st.faults_bad, (unsigned long long)st.faults_major,
			(unsigned long long)st.faults_minor, (unsigned long long)st.faults_wp,
			(unsigned long long)st.swap_outs, (unsigned long long)st.resident_pages,
			(unsigned long long)st.frames_used, (unsigned long long)st.parked,
			(unsigned long long)st.uffd_eagain);
	}
	return NULL;
}

static void run(int delivery, int policy)
{
	static const char *names[] = {"mmap", "bail", "drop", "drop-vma", "hold"};
	struct fl_config cfg;
	struct fl_stats st;
	struct fl_space *sp;

	fl_config_init(&cfg);
	cfg.delivery = delivery;
	cfg.policy = policy;
	cfg.mem_limit = BUDGET_PAGES * PG;
	sp = t_space_create_cfg(&cfg);
	atomic_store(&cur, sp);
	char *p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));

	for (size_t i = 0; i < NPAGES; i++)
		fill(p, i, 1);
	for (size_t i = 0; i < NPAGES; i++)
		verify(p, i, 1, "first read-back");
	/* Second pass reading in reverse: clean pages are dropped, not written. */
	for (size_t i = NPAGES; i-- > 0;)
		verify(p, i, 1, "second read-back");
	/* Rewrite half, read all. */
	for (size_t i = 0; i < NPAGES; i += 2)
		fill(p, i, 2);
	for (size_t i = 0; i < NPAGES; i++)
		verify(p, i, i % 2 ? 1 : 2, "after rewrite");

	/* MADV_PAGEOUT then MADV_WILLNEED: still the same data. */
	CHECK(fl_madvise(sp, p, 64 * PG, MADV_PAGEOUT) == 0, "pageout: %s", strerror(errno));
	CHECK(fl_madvise(sp, p, 64 * PG, MADV_WILLNEED) == 0, "willneed: %s", strerror(errno));
	for (size_t i = 0; i < 64; i++)
		verify(p, i, i % 2 ? 1 : 2, "after pageout+willneed");
	/* MADV_DONTNEED on swapped pages: zeros, and their slots freed. */
	CHECK(fl_madvise(sp, p + 64 * PG, 64 * PG, MADV_PAGEOUT) == 0, "pageout");
	CHECK(fl_madvise(sp, p + 64 * PG, 64 * PG, MADV_DONTNEED) == 0, "dontneed");
	for (size_t i = 64; i < 128; i++)
		verify(p, i, 0, "after dontneed");

	CHECK(fl_stats(sp, &st) == 0, "stats");
	printf("%-6s %-8s: faults %llu (major %llu, minor %llu, wp %llu), swap out %llu in %llu, "
	       "clean drops %llu, zero drops %llu, resident %llu/%d, frames %llu, store %llu KiB, "
	       "vma_lock success %llu retry %llu abort %llu, mmap_lock read %llu, parked %llu\n",
	       t_delivery_name(delivery), names[policy], (unsigned long long)st.faults,
	       (unsigned long long)st.faults_major, (unsigned long long)st.faults_minor,
	       (unsigned long long)st.faults_wp, (unsigned long long)st.swap_outs,
	       (unsigned long long)st.swap_ins, (unsigned long long)st.clean_drops,
	       (unsigned long long)st.zero_drops, (unsigned long long)st.resident_pages,
	       BUDGET_PAGES, (unsigned long long)st.frames_used,
	       (unsigned long long)st.store_bytes >> 10, (unsigned long long)st.vma_lock_success,
	       (unsigned long long)st.vma_lock_retry, (unsigned long long)st.vma_lock_abort,
	       (unsigned long long)st.mmap_read_locks, (unsigned long long)st.parked);
	CHECK(st.swap_outs >= NPAGES - BUDGET_PAGES, "too few swap-outs");
	CHECK(st.swap_ins > 0 && st.faults_major > 0, "nothing was swapped in");
	CHECK(st.clean_drops > 0, "no clean page was dropped without a write");
	CHECK(st.resident_pages + st.frames_used <= BUDGET_PAGES + 64,
	      "resident %llu + frames %llu over the budget", (unsigned long long)st.resident_pages,
	      (unsigned long long)st.frames_used);
	/* The counters say what the policy is. */
	if (policy == FL_POLICY_MMAP)
		CHECK(st.vma_lock_success == 0 && st.vma_lock_abort == 0, "mmap used VMA locks");
	if (policy == FL_POLICY_HOLD)
		CHECK(st.vma_lock_retry == 0, "hold retried %llu times",
		      (unsigned long long)st.vma_lock_retry);
	if (policy == FL_POLICY_DROP || policy == FL_POLICY_BAIL)
		CHECK(st.vma_lock_retry >= st.parked / 2 && st.vma_lock_retry > 0,
		      "%s: %llu retries for %llu parked faults", names[policy],
		      (unsigned long long)st.vma_lock_retry, (unsigned long long)st.parked);
	CHECK(fl_munmap(sp, p, NPAGES * PG) == 0, "munmap");
	/* A page whose write is still in flight (the MADV_PAGEOUT above)
	 * frees its slot when the write completes: within a second. */
	for (int i = 0; i < 100; i++) {
		fl_stats(sp, &st);
		if (!st.store_bytes)
			break;
		usleep(10000);
	}
	CHECK(st.store_bytes == 0, "slots leaked after munmap: %llu bytes",
	      (unsigned long long)st.store_bytes);
	atomic_store(&cur, NULL);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	const char *only = getenv("FL_ONLY"); /* "DELIVERY,POLICY" */

	t_seed_init(argc, argv, "test_swap");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("FL_WATCH")) {
		pthread_t t;
		pthread_create(&t, NULL, watch, NULL);
	}
	for (int d = 0; d < 2; d++)
		for (int pol = 0; pol < 5; pol++)
			if (!only || (only[0] - '0' == d && only[2] - '0' == pol))
				run(d, pol);
	return T_EXIT_PASS;
}
