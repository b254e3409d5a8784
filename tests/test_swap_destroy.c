// SPDX-License-Identifier: MIT
/*
 * Destroying a space with store I/O in flight neither leaks nor crashes:
 * right after MADV_PAGEOUT (writes in flight) and right after MADV_WILLNEED
 * (reads in flight), many times, in both deliveries.  Run under ASan this
 * also checks for leaks (frames, waiters, slots are freed with the space).
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "util.h"

#define PG 4096UL
#define NPAGES 1024

int main(int argc, char **argv)
{
	struct t_rng rng;
	uint64_t seed = t_seed_init(argc, argv, "test_swap_destroy");
	int rounds = t_soak() ? 200 : 20;

	t_rng_init(&rng, seed);
	for (int r = 0; r < rounds; r++) {
		struct fl_config cfg;
		struct fl_space *sp;
		fl_config_init(&cfg);
		cfg.delivery = r % 2 ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
		cfg.policy = (int)t_below(&rng, 5);
		cfg.mem_limit = 256 * PG;
		sp = t_space_create_cfg(&cfg);
		char *p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS);
		CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
		for (size_t i = 0; i < NPAGES; i++)
			p[i * PG + (i % 64)] = (char)(i + r);
		if (r % 4 < 2) {
			/* Writes in flight. */
			CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout");
		} else {
			/* Reads in flight. */
			CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout");
			usleep(2000);
			CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_WILLNEED) == 0, "willneed");
		}
		fl_space_destroy(sp);
	}
	printf("%d spaces destroyed with I/O in flight\n", rounds);
	return T_EXIT_PASS;
}
