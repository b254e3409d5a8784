// SPDX-License-Identifier: MIT
/*
 * MADV_PAGEOUT pages out what it is asked to, in one call, as the kernel's
 * does: with few I/O frames (every one of them soon under writeback) one
 * call on a region of dirty pages, well under the budget, leaves none of
 * them resident; the data comes back.  Also with the compressed tier in
 * front of the store, where pages it takes free their frames at once.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "util.h"

#define PG 4096UL
#define NPAGES 4096 /* 16 MiB */

static void run(int delivery, int zswap)
{
	struct fl_config cfg;
	struct fl_space *sp;
	struct fl_stats st;
	uint64_t *p;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = 64UL << 20; /* no reclaim but this call's */
	cfg.swap_frames = 32;
	cfg.zswap = zswap;
	sp = t_space_create_cfg(&cfg);
	p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	/* Compressible, not same-filled: the tier takes every page. */
	for (size_t i = 0; i < NPAGES * PG / 8; i++)
		p[i] = i / 8 + 1;
	CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "MADV_PAGEOUT: %s",
	      strerror(errno));
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	printf("%s, zswap %s: one MADV_PAGEOUT of %d dirty pages with 32 frames: %llu left "
	       "resident, swap-outs %llu, zswap stores %llu\n",
	       t_delivery_name(delivery), zswap ? "lz4" : "off", NPAGES,
	       (unsigned long long)st.resident_pages, (unsigned long long)st.swap_outs,
	       (unsigned long long)(st.zswap_stores + st.zswap_same_filled));
	CHECK(st.resident_pages == 0, "%llu of %d pages still resident after one MADV_PAGEOUT",
	      (unsigned long long)st.resident_pages, NPAGES);
	if (zswap)
		CHECK(st.zswap_stores == NPAGES, "the tier took %llu of %d pages",
		      (unsigned long long)st.zswap_stores, NPAGES);
	for (size_t i = 0; i < NPAGES * PG / 8; i++)
		CHECK(p[i] == i / 8 + 1, "word %zu: %#llx", i, (unsigned long long)p[i]);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_pageout");
	for (int d = 0; d < 2; d++) {
		run(d, FL_ZSWAP_OFF);
		run(d, FL_ZSWAP_LZ4);
	}
	return T_EXIT_PASS;
}
