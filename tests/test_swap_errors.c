// SPDX-License-Identifier: MIT
/*
 * The store fails on command (the test-only error injection of the swap
 * device, a wrapper around the real store):
 *   - a read error poisons exactly the page it concerns: that access gets
 *     SIGBUS (again on every access, until MADV_DONTNEED), every other page
 *     keeps its data, and the statistics say so;
 *   - a write error keeps the page in memory: nothing is lost, the
 *     statistics count it, and the page reads back intact.
 * Also, in thread delivery, read(2) into an evicted page and write(2) from
 * one both work.  Both deliveries.
 */
#include "test_store.h"

#include "swapdev.h"

#define NPAGES 512
#define VER 1

static void run(int delivery)
{
	struct fl_config cfg;
	struct fl_stats st;
	struct fl_space *sp;

	ts_config(&cfg, delivery, NULL, 128);
	sp = t_space_create_cfg(&cfg);
	char *p = ts_map_evicted(sp, NPAGES, VER);

	/* A read error on one page's slot. */
	size_t victim = 300;
	uint64_t pte = ts_pte(sp, p + victim * PG);
	CHECK(pte_type(pte) == PTE_SWAP, "page %zu is not swapped out: %#llx", victim,
	      (unsigned long long)pte);
	CHECK(swapdev_inject_error(&sp->dev, pte_value(pte), false, true) == 0, "inject");
	CHECK(ts_faults(p + victim * PG), "reading the page with a bad swap read did not fault");
	CHECK(ts_faults(p + victim * PG + 100), "the poisoned page faulted only once");
	CHECK(swapdev_inject_error(&sp->dev, pte_value(pte), false, false) == 0, "clear");
	for (size_t i = 0; i < NPAGES; i++)
		if (i != victim)
			CHECK(ts_intact(p, i, VER),
			      "page %zu lost its data after another page's read error", i);
	fl_stats(sp, &st);
	CHECK(st.read_errors == 1 && st.pages_poisoned == 1, "read_errors %llu poisoned %llu",
	      (unsigned long long)st.read_errors, (unsigned long long)st.pages_poisoned);
	/* MADV_DONTNEED clears the poison: the page is a fresh zero page. */
	CHECK(fl_madvise(sp, p + victim * PG, PG, MADV_DONTNEED) == 0, "dontneed");
	CHECK(!ts_faults(p + victim * PG) && p[victim * PG] == 0, "poison survived DONTNEED");
	ts_fill(p, victim, VER);

	/* Write errors: every write fails while injected; pages stay. */
	for (uint32_t s = 0; s < 4096; s++)
		swapdev_inject_error(&sp->dev, s, true, true);
	for (size_t i = 0; i < 64; i++) /* dirty them again */
		((uint64_t *)(p + i * PG))[7] = ts_word(i, 7, VER);
	CHECK(fl_madvise(sp, p, 64 * PG, MADV_PAGEOUT) == 0, "pageout");
	for (int i = 0; i < 200; i++) {
		fl_stats(sp, &st);
		if (st.write_errors)
			break;
		usleep(2000);
	}
	CHECK(st.write_errors > 0, "no write failed");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(ts_intact(p, i, VER), "page %zu lost its data after write errors", i);
	for (uint32_t s = 0; s < 4096; s++)
		swapdev_inject_error(&sp->dev, s, true, false);

	if (delivery == FL_DELIVERY_THREAD) {
		/* System calls on evicted pages. */
		int fds[2];
		char buf[PG];
		ts_evict_all(sp, p, NPAGES);
		CHECK(pipe(fds) == 0, "pipe");
		CHECK(write(fds[1], p + 400 * PG, PG) == (ssize_t)PG,
		      "write(2) from an evicted page");
		CHECK(read(fds[0], buf, PG) == (ssize_t)PG, "read back");
		CHECK(memcmp(buf, p + 400 * PG, PG) == 0, "write(2) sent wrong bytes");
		ts_evict_all(sp, p, NPAGES);
		memset(buf, 0x5a, sizeof(buf));
		CHECK(write(fds[1], buf, PG) == (ssize_t)PG, "write");
		CHECK(read(fds[0], p + 401 * PG, PG) == (ssize_t)PG,
		      "read(2) into an evicted page");
		for (size_t i = 0; i < PG; i++)
			CHECK(p[401 * PG + i] == 0x5a, "read(2) into an evicted page: byte %zu", i);
		close(fds[0]);
		close(fds[1]);
	}
	fl_stats(sp, &st);
	printf("%s: read errors %llu, poisoned %llu, write errors %llu, swap-outs %llu, "
	       "swap-ins %llu\n",
	       t_delivery_name(delivery), (unsigned long long)st.read_errors,
	       (unsigned long long)st.pages_poisoned, (unsigned long long)st.write_errors,
	       (unsigned long long)st.swap_outs, (unsigned long long)st.swap_ins);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	ts_seed = t_seed_init(argc, argv, "test_swap_errors");
	ts_catch_sigbus();
	run(FL_DELIVERY_THREAD);
	run(FL_DELIVERY_SIGBUS);
	return T_EXIT_PASS;
}
