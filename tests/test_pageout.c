// SPDX-License-Identifier: MIT
/*
 * MADV_PAGEOUT pages out what it is asked to, in one call, as the kernel's
 * does: with few I/O frames (every one of them soon under writeback) one
 * call on a region of dirty pages, well under the budget, leaves none of
 * them resident; the data comes back.  Also with the compressed tier in
 * front of the store, where pages it takes free their frames at once.  And
 * a page paged out right after the access that faulted it in goes too, as
 * MADV_COLD takes its reference bit.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "pgtable.h"
#include "space.h"
#include "util.h"

#define PG 4096UL
#define NPAGES 4096 /* 16 MiB */

/* A space of delivery with a 64-MiB budget (no reclaim but the calls'),
 * frames I/O frames (0: the default) and compressed tier zswap. */
static struct fl_space *space(int delivery, unsigned int frames, int zswap)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = 64UL << 20;
	if (frames)
		cfg.swap_frames = frames;
	cfg.zswap = zswap;
	return t_space_create_cfg(&cfg);
}

/* The page-table entry of address a (0: no chunk there). */
static uint64_t entry_of(struct fl_space *sp, unsigned long a)
{
	struct pt_chunk *c = pt_chunk_lookup(sp, a);

	return c ? atomic_load(&c->pte[pt_index(a)]) : 0;
}

static void run(int delivery, int zswap)
{
	struct fl_space *sp = space(delivery, 32, zswap);
	struct fl_stats st;
	uint64_t *p;

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

/*
 * Touch a page, make it cold, check its reference bit went, page the
 * region out and find nothing resident; 2,000 times.  In thread delivery
 * the handler's install wakes the faulting thread before the handler writes
 * the page's entry: MADV_PAGEOUT used to miss such a page (it stayed
 * resident about once in 20 runs of test_tier_redis under ASan) and
 * MADV_COLD to clear a bit the handler then set.  And the kernel may send
 * one access twice: a handler that came to the second message after the
 * page went read it back in (about once in 20 runs of this test, before
 * fault_msg_stale()).
 */
static void right_after_fault(int delivery)
{
	const int n = 2000;
	struct fl_space *sp = space(delivery, 0, FL_ZSWAP_OFF);
	struct fl_stats st;
	uint64_t *p;

	p = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		uint64_t *w = p + i * (PG / 8);

		*w = i + 1;
		CHECK(fl_madvise(sp, w, PG, MADV_COLD) == 0, "MADV_COLD: %s", strerror(errno));
		uint64_t pte = entry_of(sp, (unsigned long)w);
		CHECK(pte_type(pte) == PTE_PRESENT && !(pte & PTE_REF),
		      "%s: page %d just written, then MADV_COLD: entry %#llx",
		      t_delivery_name(delivery), i, (unsigned long long)pte);
		/* The whole region: fault-around maps the page's neighbours. */
		CHECK(fl_madvise(sp, p, n * PG, MADV_PAGEOUT) == 0, "MADV_PAGEOUT: %s",
		      strerror(errno));
		st = t_stats(sp);
		for (int j = 0; st.resident_pages && j < n; j++) {
			uint64_t e = entry_of(sp, (unsigned long)(p + j * (PG / 8)));
			if (pte_type(e) == PTE_PRESENT)
				fprintf(stderr, "page %d resident: entry %#llx\n", j,
					(unsigned long long)e);
		}
		CHECK(st.resident_pages == 0,
		      "%s: page %d just written, then paged out: %llu pages resident "
		      "(%llu stale fault messages)",
		      t_delivery_name(delivery), i, (unsigned long long)st.resident_pages,
		      (unsigned long long)st.faults_stale);
	}
	for (int i = 0; i < n; i++)
		CHECK(p[i * (PG / 8)] == (uint64_t)i + 1, "page %d: %#llx", i,
		      (unsigned long long)p[i * (PG / 8)]);
	st = t_stats(sp);
	printf("%s: %d pages each paged out right after the fault that made it: none left "
	       "(%llu stale fault messages not served)\n",
	       t_delivery_name(delivery), n, (unsigned long long)st.faults_stale);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_pageout");
	for (int d = 0; d < 2; d++) {
		run(d, FL_ZSWAP_OFF);
		run(d, FL_ZSWAP_LZ4);
		right_after_fault(d);
	}
	return T_EXIT_PASS;
}
