/* SPDX-License-Identifier: MIT */
/*
 * test_sparse: page-state metadata follows what is touched, not what is
 * mapped; and several spaces live side by side.
 *
 * 1. A 64 GiB MAP_NORESERVE region with 1,000 pages written at random
 *    offsets: fl_stats().pgtable_bytes stays under 1 MiB, every written page
 *    reads back, untouched pages (random ones and the neighbours of written
 *    ones) read zero, and faultline served the faults.
 * 2. Three spaces at once (thread, sigbus, sigbus): each serves its own
 *    faults; one space's fl_munmap, fl_mprotect, fl_madvise and
 *    MAP_FIXED_NOREPLACE leave another's regions alone; fl_maps lists only
 *    the space's own; destroying one leaves the others working.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <faultline.h>

#include "util.h"

#define GiB (1ULL << 30)

static size_t ps;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t page_word(uint64_t seed, uint64_t page, size_t i)
{
	uint64_t x = seed ^ (page << 16) ^ i;

	return t_splitmix64(&x);
}

static bool is_touched(const uint64_t *sorted, size_t n, uint64_t page)
{
	return bsearch(&page, sorted, n, sizeof(uint64_t), cmp_u64) != NULL;
}

static void sparse(struct t_rng *rng, uint64_t seed, int delivery)
{
	const uint64_t len = 64 * GiB, npages = len / ps;
	const size_t ntouch = 1000, nzero = 1000;
	struct fl_space *sp = t_space_create(delivery);
	struct fl_config cfg;
	uint64_t *pages = malloc(ntouch * sizeof(*pages));
	uint64_t isolated = 0;
	struct fl_stats st;
	char *r;

	CHECK(pages, "malloc");
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	r = fl_mmap(sp, NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(r != MAP_FAILED, "fl_mmap of 64 GiB, MAP_NORESERVE: %s", strerror(errno));
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.mapped_bytes == len, "mapped_bytes %" PRIu64 ", expected %" PRIu64,
	      st.mapped_bytes, len);
	printf("%s: 64 GiB mapped, pgtable_bytes %" PRIu64 " before any fault\n",
	       t_delivery_name(delivery), st.pgtable_bytes);

	/* 1,000 distinct pages. */
	for (size_t i = 0; i < ntouch; i++) {
		uint64_t p;
		bool dup;

		do {
			p = t_below(rng, npages);
			dup = false;
			for (size_t j = 0; j < i; j++)
				dup |= pages[j] == p;
		} while (dup);
		pages[i] = p;
	}
	/* Write whole pages, in random order. */
	for (size_t i = 0; i < ntouch; i++) {
		uint64_t *w = (uint64_t *)(r + pages[i] * ps);

		for (size_t k = 0; k < ps / 8; k++)
			w[k] = page_word(seed, pages[i], k);
	}
	qsort(pages, ntouch, sizeof(*pages), cmp_u64);

	/* Pages far enough from any other can only have come in by a fault of their own. */
	for (size_t i = 0; i < ntouch; i++) {
		uint64_t gap = 2 * (uint64_t)(cfg.fault_around_max > cfg.fault_around
						      ? cfg.fault_around_max
						      : cfg.fault_around) +
			       1;
		bool before = i == 0 || pages[i] - pages[i - 1] > gap;
		bool after = i == ntouch - 1 || pages[i + 1] - pages[i] > gap;

		isolated += before && after;
	}

	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	printf("%s: 1000 pages written: pgtable_bytes %" PRIu64 " (%.1f KiB), faults %" PRIu64
	       " (%" PRIu64 " isolated pages), resident %" PRIu64 "\n",
	       t_delivery_name(delivery), st.pgtable_bytes, st.pgtable_bytes / 1024.0, st.faults,
	       isolated, st.resident_pages);
	CHECK(st.pgtable_bytes > 0, "pgtable_bytes is 0 with 1000 pages present");
	CHECK(st.pgtable_bytes < (1 << 20),
	      "pgtable_bytes %" PRIu64 " for 1000 pages touched in 64 GiB", st.pgtable_bytes);
	CHECK(st.faults >= isolated, "faults %" PRIu64 " < %" PRIu64 " pages that needed their own",
	      st.faults, isolated);

	/* Every written page reads back. */
	for (size_t i = 0; i < ntouch; i++) {
		const uint64_t *w = (const uint64_t *)(r + pages[i] * ps);

		for (size_t k = 0; k < ps / 8; k++)
			CHECK(w[k] == page_word(seed, pages[i], k),
			      "page %" PRIu64 " word %zu: %#" PRIx64 ", expected %#" PRIx64,
			      pages[i], k, w[k], page_word(seed, pages[i], k));
	}

	/* Untouched pages read zero: random ones, and the neighbours of written ones. */
	for (size_t i = 0; i < nzero + 2 * ntouch; i++) {
		uint64_t p;
		const uint64_t *w;

		if (i < nzero)
			p = t_below(rng, npages);
		else if (i % 2)
			p = pages[(i - nzero) / 2] + 1;
		else
			p = pages[(i - nzero) / 2] - 1;
		if (p >= npages || is_touched(pages, ntouch, p))
			continue;
		w = (const uint64_t *)(r + p * ps);
		for (size_t k = 0; k < ps / 8; k++)
			CHECK(w[k] == 0, "untouched page %" PRIu64 " word %zu: %#" PRIx64, p, k,
			      w[k]);
	}

	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	printf("%s: after reading up to %zu more pages: pgtable_bytes %" PRIu64 " (%.1f KiB)\n",
	       t_delivery_name(delivery), nzero + 2 * ntouch, st.pgtable_bytes,
	       st.pgtable_bytes / 1024.0);
	/* About twice the pages present, scattered as much: the same budget per page. */
	CHECK(st.pgtable_bytes < (2 << 20),
	      "pgtable_bytes %" PRIu64 " after reading untouched pages", st.pgtable_bytes);

	CHECK(fl_munmap(sp, r, len) == 0, "fl_munmap: %s", strerror(errno));
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.mapped_bytes == 0, "mapped_bytes %" PRIu64 " after fl_munmap", st.mapped_bytes);
	printf("%s: after fl_munmap: pgtable_bytes %" PRIu64 "\n", t_delivery_name(delivery),
	       st.pgtable_bytes);
	free(pages);
	fl_space_destroy(sp);
}

/* --------------------------------------------------------- many spaces */

#define NSP 3
#define RPAGES 32

struct ctx {
	struct fl_space *sp;
	char *reg;
	uint64_t salt;
	uint32_t gen[RPAGES]; /* 0: zero */
	bool alive;
};

static uint64_t ctx_word(const struct ctx *c, size_t page, uint32_t gen, size_t k)
{
	uint64_t x = c->salt ^ ((uint64_t)page << 32) ^ ((uint64_t)gen << 48) ^ k;

	return t_splitmix64(&x);
}

static void ctx_fill(struct ctx *c, size_t page, uint32_t gen)
{
	uint64_t *w = (uint64_t *)(c->reg + page * ps);

	for (size_t k = 0; k < ps / 8; k += 61)
		w[k] = ctx_word(c, page, gen, k);
	c->gen[page] = gen;
}

static void ctx_verify(const struct ctx *c, int idx, const char *when)
{
	for (size_t p = 0; p < RPAGES; p++) {
		const uint64_t *w = (const uint64_t *)(c->reg + p * ps);

		for (size_t k = 0; k < ps / 8; k += 61) {
			uint64_t want = c->gen[p] ? ctx_word(c, p, c->gen[p], k) : 0;

			CHECK(w[k] == want,
			      "%s: space %d page %zu word %zu: %#" PRIx64 ", expected %#" PRIx64,
			      when, idx, p, k, w[k], want);
		}
	}
}

static int maps_lines(struct fl_space *sp, char **text)
{
	size_t size = 0;
	FILE *f = open_memstream(text, &size);
	int n = 0;

	CHECK(f, "open_memstream");
	CHECK(fl_maps(sp, f) == 0, "fl_maps");
	fclose(f);
	for (const char *s = *text; *s; s++)
		n += *s == '\n';
	return n;
}

static void many_spaces(struct t_rng *rng)
{
	static const int modes[NSP] = {FL_DELIVERY_THREAD, FL_DELIVERY_SIGBUS, FL_DELIVERY_SIGBUS};
	struct ctx c[NSP];
	struct fl_stats st[NSP];
	char *text;
	uint32_t gen = 1;

	for (int i = 0; i < NSP; i++) {
		c[i].sp = t_space_create(modes[i]);
		c[i].reg = fl_mmap(c[i].sp, NULL, RPAGES * ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(c[i].reg != MAP_FAILED, "fl_mmap in space %d: %s", i, strerror(errno));
		c[i].salt = t_rand(rng);
		memset(c[i].gen, 0, sizeof(c[i].gen));
		c[i].alive = true;
	}

	/* Interleaved faults in all of them. */
	for (int round = 0; round < 4; round++, gen++)
		for (size_t p = 0; p < RPAGES; p++)
			for (int i = 0; i < NSP; i++)
				if (t_chance(rng, 50))
					ctx_fill(&c[i], p, gen);
	for (int i = 0; i < NSP; i++) {
		ctx_verify(&c[i], i, "interleaved faults");
		CHECK(fl_stats(c[i].sp, &st[i]) == 0, "fl_stats");
		CHECK(st[i].faults > 0, "space %d served no faults", i);
		CHECK(st[i].mapped_bytes == RPAGES * ps, "space %d: mapped_bytes %" PRIu64, i,
		      st[i].mapped_bytes);
		CHECK(maps_lines(c[i].sp, &text) == 1,
		      "space %d: fl_maps lists other spaces' VMAs:\n%s", i, text);
		free(text);
	}

	/* Space 0 acting on space 1's region: it is not space 0's, so it is unmapped to it. */
	CHECK(fl_munmap(c[0].sp, c[1].reg, RPAGES * ps) == 0,
	      "fl_munmap of another space's region: %s", strerror(errno));
	errno = 0;
	CHECK(fl_mprotect(c[0].sp, c[1].reg, RPAGES * ps, PROT_NONE) == -1 && errno == ENOMEM,
	      "fl_mprotect of another space's region: errno %d (%s), expected ENOMEM", errno,
	      strerror(errno));
	errno = 0;
	CHECK(fl_madvise(c[0].sp, c[1].reg, RPAGES * ps, MADV_DONTNEED) == -1 && errno == ENOMEM,
	      "fl_madvise of another space's region: errno %d (%s), expected ENOMEM", errno,
	      strerror(errno));
	errno = 0;
	CHECK(fl_mmap(c[0].sp, c[1].reg, ps, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED &&
		      errno == EEXIST,
	      "MAP_FIXED_NOREPLACE over another space's region: errno %d (%s), expected EEXIST",
	      errno, strerror(errno));
	ctx_verify(&c[1], 1, "after space 0 acted on space 1's region");
	ctx_fill(&c[1], 0, gen);
	ctx_fill(&c[1], RPAGES - 1, gen);
	ctx_verify(&c[1], 1, "space 1 writing after space 0 acted on its region");

	/* Space 2 unmaps half of its own region: the others do not notice. */
	CHECK(fl_munmap(c[2].sp, c[2].reg + RPAGES / 2 * ps, RPAGES / 2 * ps) == 0, "fl_munmap: %s",
	      strerror(errno));
	for (int i = 0; i < 2; i++)
		ctx_verify(&c[i], i, "after space 2 unmapped half its region");
	for (size_t p = 0; p < RPAGES / 2; p++)
		ctx_fill(&c[2], p, gen + 1);
	for (size_t p = 0; p < RPAGES / 2; p++) {
		const uint64_t *w = (const uint64_t *)(c[2].reg + p * ps);

		CHECK(w[0] == ctx_word(&c[2], p, gen + 1, 0), "space 2 page %zu after its munmap",
		      p);
	}
	CHECK(fl_stats(c[2].sp, &st[2]) == 0, "fl_stats");
	CHECK(st[2].mapped_bytes == RPAGES / 2 * ps, "space 2: mapped_bytes %" PRIu64,
	      st[2].mapped_bytes);
	CHECK(fl_stats(c[1].sp, &st[1]) == 0, "fl_stats");
	CHECK(st[1].mapped_bytes == RPAGES * ps, "space 1: mapped_bytes %" PRIu64,
	      st[1].mapped_bytes);

	/* Space 0's MADV_DONTNEED zeros its own pages only. */
	CHECK(fl_madvise(c[0].sp, c[0].reg, RPAGES * ps, MADV_DONTNEED) == 0, "fl_madvise: %s",
	      strerror(errno));
	memset(c[0].gen, 0, sizeof(c[0].gen));
	for (int i = 0; i < 2; i++)
		ctx_verify(&c[i], i, "after space 0's MADV_DONTNEED");

	/* Destroy space 1 (sigbus): space 2, also sigbus, and space 0 keep faulting. */
	fl_space_destroy(c[1].sp);
	c[1].alive = false;
	gen += 2;
	for (size_t p = 0; p < RPAGES; p++)
		ctx_fill(&c[0], p, gen);
	for (size_t p = 0; p < RPAGES / 2; p++) {
		CHECK(fl_madvise(c[2].sp, c[2].reg + p * ps, ps, MADV_DONTNEED) == 0,
		      "fl_madvise: %s", strerror(errno));
		c[2].gen[p] = 0;
		if (p % 2)
			ctx_fill(&c[2], p, gen);
	}
	ctx_verify(&c[0], 0, "after destroying space 1");
	for (size_t p = 0; p < RPAGES / 2; p++) {
		const uint64_t *w = (const uint64_t *)(c[2].reg + p * ps);
		uint64_t want = c[2].gen[p] ? ctx_word(&c[2], p, gen, 0) : 0;

		CHECK(w[0] == want,
		      "space 2 page %zu after destroying space 1: %#" PRIx64 ", expected %#" PRIx64,
		      p, w[0], want);
	}
	/* A fresh region in the remaining sigbus space. */
	{
		volatile char *n = fl_mmap(c[2].sp, NULL, 4 * ps, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(n != MAP_FAILED, "fl_mmap: %s", strerror(errno));
		n[ps] = 9;
		CHECK(n[ps] == 9 && n[0] == 0 && n[3 * ps] == 0, "new region in space 2");
	}
	fl_space_destroy(c[0].sp);
	fl_space_destroy(c[2].sp);
	printf("many spaces: ok\n");
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_sparse");
	struct t_rng rng;

	t_rng_init(&rng, seed);
	ps = t_page_size();
	sparse(&rng, seed, FL_DELIVERY_THREAD);
	sparse(&rng, seed ^ 1, FL_DELIVERY_SIGBUS);
	many_spaces(&rng);
	printf("test_sparse: ok\n");
	return T_EXIT_PASS;
}
