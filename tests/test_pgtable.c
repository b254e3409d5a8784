// SPDX-License-Identifier: MIT
/*
 * The page table's chunk index (pgtable.c): threads create and look up the
 * chunks of one shared set of addresses at once, through the directory
 * (below 2^47, the whole user address space of a 4-level x86-64 machine)
 * and through the hash (above it: only a 5-level machine maps there, which
 * this test does not need, since the table is metadata and maps nothing).
 * Every thread must get the same chunk for an address, with the right base;
 * distinct chunk addresses must get distinct chunks, as many as there are;
 * an address never asked for has none, in the directory's leaf of a created
 * chunk, in a leaf never created, and above the directory.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "util.h"

#include "pgtable.h"
#include "space.h"

#define THREADS 4
#define ADDRS 4096
#define PASSES 8

static struct fl_space *sp;
static unsigned long addr[ADDRS];
static struct pt_chunk *seen[THREADS][ADDRS];
static pthread_barrier_t start;
static uint64_t seed;

static void *worker(void *arg)
{
	unsigned int me = (unsigned int)(uintptr_t)arg;
	struct t_rng r;

	t_rng_init(&r, seed + me);
	pthread_barrier_wait(&start);
	for (unsigned int pass = 0; pass < PASSES; pass++) {
		for (unsigned int k = 0; k < ADDRS; k++) {
			unsigned int i = (unsigned int)t_below(&r, ADDRS);
			struct pt_chunk *c = t_chance(&r, 50) ? pt_chunk_get(sp, addr[i])
							      : pt_chunk_lookup(sp, addr[i]);

			if (!c)
				continue; /* a lookup before anyone created it */
			CHECK(c->base == (addr[i] & PT_CHUNK_MASK), "address %#lx: chunk of %#lx",
			      addr[i], c->base);
			CHECK(!seen[me][i] || seen[me][i] == c, "address %#lx: two chunks",
			      addr[i]);
			seen[me][i] = c;
		}
	}
	/* Every address once more, created if no pass did. */
	for (unsigned int i = 0; i < ADDRS; i++) {
		struct pt_chunk *c = pt_chunk_get(sp, addr[i]);

		CHECK(c, "address %#lx: no chunk (out of memory?)", addr[i]);
		CHECK(!seen[me][i] || seen[me][i] == c, "address %#lx: two chunks", addr[i]);
		seen[me][i] = c;
	}
	return NULL;
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const unsigned long limit = 1UL << 47;
	pthread_t th[THREADS];
	unsigned long *bases;
	struct t_rng r;
	long distinct = 0;

	seed = t_seed_init(argc, argv, "test_pgtable");
	t_rng_init(&r, seed);
	/* Clusters of nearby chunks (shared leaves) and lone ones, both sides
	 * of the limit, and pairs of addresses in one chunk. */
	for (unsigned int i = 0; i < ADDRS; i++) {
		unsigned long a;

		switch (t_below(&r, 4)) {
		case 0: /* near the bottom: one leaf's worth */
			a = (1UL << 32) + t_below(&r, 4096) * PT_CHUNK_SIZE;
			break;
		case 1: /* anywhere below the limit */
			a = t_below(&r, limit);
			break;
		case 2: /* above it, up to 2^56 */
			a = limit + t_below(&r, (1UL << 56) - limit);
			break;
		default: /* in the chunk of an earlier address */
			a = i ? (addr[t_below(&r, i)] & PT_CHUNK_MASK) + t_below(&r, PT_CHUNK_SIZE)
			      : PT_CHUNK_SIZE;
		}
		addr[i] = a;
	}

	sp = calloc(1, sizeof(*sp));
	CHECK(sp, "calloc");
	CHECK(pt_init(sp) == 0, "pt_init");
	pthread_barrier_init(&start, NULL, THREADS);
	for (unsigned int t = 0; t < THREADS; t++)
		CHECK(!pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t),
		      "pthread_create");
	for (unsigned int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);

	for (unsigned int i = 0; i < ADDRS; i++)
		for (unsigned int t = 1; t < THREADS; t++)
			CHECK(seen[t][i] == seen[0][i], "address %#lx: threads 0 and %u disagree",
			      addr[i], t);
	/* One chunk per distinct base, and no two bases share one. */
	bases = calloc(ADDRS, sizeof(*bases));
	CHECK(bases, "calloc");
	for (unsigned int i = 0; i < ADDRS; i++)
		bases[i] = addr[i] & PT_CHUNK_MASK;
	qsort(bases, ADDRS, sizeof(*bases), cmp_ulong);
	for (unsigned int i = 0; i < ADDRS; i++)
		distinct += !i || bases[i] != bases[i - 1];
	CHECK(atomic_load(&sp->nr_chunks) == distinct, "%ld chunks for %ld distinct addresses",
	      (long)atomic_load(&sp->nr_chunks), distinct);
	for (unsigned int i = 0; i < ADDRS; i++)
		for (unsigned int j = i + 1; j < ADDRS && j < i + 64; j++)
			CHECK((addr[i] & PT_CHUNK_MASK) == (addr[j] & PT_CHUNK_MASK) ||
				      seen[0][i] != seen[0][j],
			      "addresses %#lx and %#lx: one chunk", addr[i], addr[j]);

	/* Never asked for: none, wherever it is. */
	unsigned long none[] = {
		(1UL << 32) + 4096 * PT_CHUNK_SIZE + PT_CHUNK_SIZE, /* a leaf with chunks */
		limit - PT_CHUNK_SIZE,	     /* most likely a leaf never made */
		(1UL << 57) - PT_CHUNK_SIZE, /* above the limit */
	};
	for (unsigned int k = 0; k < sizeof(none) / sizeof(none[0]); k++) {
		bool asked = false;

		for (unsigned int i = 0; i < ADDRS; i++)
			asked |= (addr[i] & PT_CHUNK_MASK) == none[k];
		if (!asked)
			CHECK(!pt_chunk_lookup(sp, none[k]), "address %#lx: a chunk never made",
			      none[k]);
	}
	pt_destroy(sp);
	free(sp);
	free(bases);
	printf("test_pgtable: ok (%ld chunks, %u threads)\n", distinct, THREADS);
	return T_EXIT_PASS;
}
