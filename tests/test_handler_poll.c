// SPDX-License-Identifier: MIT
/*
 * A handler thread polls for the next fault before it sleeps
 * (FAULTLINE_HANDLER_SPIN, thread delivery), only while fewer threads fault
 * than there are CPUs and only after rounds that started no store I/O:
 *
 *   - one thread touching pages of a space without a budget (demand-zero
 *     faults, one a page): with two CPUs or more, polls serve faults
 *     (faults_polled), and every page reads back zero then what was
 *     written; with one CPU, none may (the poller would take the faulting
 *     thread's CPU);
 *   - the same with FAULTLINE_HANDLER_SPIN=0: nothing is polled;
 *   - one thread reading back pages swapped out to the store (every fault a
 *     store read): nothing is polled, as the faulting thread waits for
 *     its read longer than a poll lasts;
 *   - four threads at once, each on its own pages, spin on: every page
 *     right (polling or not, no fault is lost or served twice).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "util.h"

#define PG 4096UL
#define PAGES 4096

static uint64_t seed;

static struct fl_config config(unsigned int spin_us, size_t mem_limit)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = FL_DELIVERY_THREAD;
	cfg.fault_around = 1; /* one fault a page */
	cfg.fault_around_max = 1;
	cfg.handler_spin_us = spin_us;
	cfg.mem_limit = mem_limit;
	return cfg;
}

static uint64_t one_thread(unsigned int spin_us, uint64_t *faults)
{
	struct fl_config cfg = config(spin_us, 0);
	struct fl_space *sp = t_space_create_cfg(&cfg);
	struct t_toucher t;
	struct fl_stats st;

	t.base = fl_mmap(sp, NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	CHECK(t.base != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	t.pages = PAGES;
	t.tag = 0x5eed;
	t_touch_new(&t);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	*faults = st.faults;
	fl_space_destroy(sp);
	return st.faults_polled;
}

/* Every fault a store read: the region paged out, then read back. */
static uint64_t store_reads(uint64_t *major)
{
	struct fl_config cfg = config(50, 64 * PG);
	struct fl_space *sp;
	struct fl_stats before, after;
	static size_t order[1024];
	size_t n = 1024;
	struct t_rng r;
	char *p;

	cfg.prefetch = 0;
	sp = t_space_create_cfg(&cfg);
	t_rng_init(&r, seed);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)t_below(&r, i + 1), x = order[i];
		order[i] = order[j];
		order[j] = x;
	}

	p = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < n; i++)
		((uint64_t *)(p + i * PG))[0] = i + 1;
	CHECK(fl_madvise(sp, p, n * PG, MADV_PAGEOUT) == 0, "MADV_PAGEOUT: %s", strerror(errno));
	CHECK(fl_stats(sp, &before) == 0, "fl_stats");
	/* In a random order, prefetch off: no fault finds its page read ahead. */
	for (size_t k = 0; k < n; k++) {
		size_t i = order[k];
		CHECK(((uint64_t *)(p + i * PG))[0] == i + 1, "page %zu came back wrong", i);
	}
	CHECK(fl_stats(sp, &after) == 0, "fl_stats");
	*major = after.faults_major - before.faults_major;
	fl_space_destroy(sp);
	return after.faults_polled - before.faults_polled;
}

static void threads(void)
{
	struct fl_config cfg = config(50, 0);
	struct fl_space *sp = t_space_create_cfg(&cfg);
	struct t_toucher t[4];
	pthread_t th[4];
	char *p;

	p = fl_mmap(sp, NULL, 4 * PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (int i = 0; i < 4; i++) {
		t[i] = (struct t_toucher){p + (size_t)i * PAGES * PG, PAGES, 0xabc0u + (uint64_t)i};
		CHECK(!pthread_create(&th[i], NULL, t_touch_new, &t[i]), "pthread_create");
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t faults, polled, major;

	seed = t_seed_init(argc, argv, "test_handler_poll");
	polled = one_thread(50, &faults);
	printf("one thread, %ld CPUs, spin 50 us: %llu of %llu faults served by a poll\n", cpus,
	       (unsigned long long)polled, (unsigned long long)faults);
	CHECK(faults >= PAGES, "%llu faults for %d pages", (unsigned long long)faults, PAGES);
	if (cpus >= 2)
		CHECK(polled > 0, "one faulting thread, %ld CPUs: no fault was served by a poll",
		      cpus);
	else
		CHECK(polled == 0, "one CPU: %llu faults polled", (unsigned long long)polled);
	polled = one_thread(0, &faults);
	printf("one thread, spin 0: %llu polled\n", (unsigned long long)polled);
	CHECK(polled == 0, "FAULTLINE_HANDLER_SPIN=0, yet %llu faults polled",
	      (unsigned long long)polled);
	polled = store_reads(&major);
	printf("store reads: %llu major faults, %llu polled\n", (unsigned long long)major,
	       (unsigned long long)polled);
	CHECK(major > 0, "nothing was read back from the store");
	CHECK(polled * 10 < major, "%llu of %llu store-read faults followed a poll",
	      (unsigned long long)polled, (unsigned long long)major);
	threads();
	printf("four threads: every page right\n");
	printf("test_handler_poll: PASS\n");
	return T_EXIT_PASS;
}
