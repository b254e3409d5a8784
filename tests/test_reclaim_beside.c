// SPDX-License-Identifier: MIT
/*
 * A direct reclaim does not wait for another evictor: with reclaim_lock
 * held the whole time (by this test, as a preempted kswapd holds it),
 * faults over the budget still evict, each through a spare batch of its own
 * (reclaim.c: zap_spare_get()), and every page reads back right.  Only with
 * every spare in use does a fault wait for the lock, and it goes on when the
 * lock is let go.
 *
 * In both deliveries: a region of 4096 pages under a budget of 256 is
 * filled (every word encodes its page and version), then, with the lock
 * held, four threads each read and check a random share of the pages and
 * write each one's next version (dirty victims, written to the store by
 * evictors beside the holder); they must finish within 60 s, and
 * reclaim_beside must have counted.  Then, the lock still held and every
 * spare marked in use, one more thread reads: it must not get far (it waits
 * in reclaim_waiters) until the lock is let go.  Last, the whole region is
 * checked at its versions.
 */
#define _GNU_SOURCE
#include "space.h"

#include <pthread.h>
#include <sys/mman.h>

#include "util.h"

#define PG 4096UL
#define NPAGES 4096
#define LIMIT_PAGES 256
#define NTHREADS 4
#define PER_THREAD 1024

struct reader {
	char *p;
	uint64_t seed;
	unsigned int id;
	size_t pages[PER_THREAD];
	_Atomic unsigned int done; /* pages read, checked and rewritten */
	unsigned char *version;	   /* the region's, one byte a page */
};

static uint64_t word(uint64_t seed, size_t page, unsigned int version, size_t w)
{
	uint64_t x = seed ^ ((uint64_t)page << 24) ^ ((uint64_t)version << 16) ^ w;

	return t_splitmix64(&x);
}

static void fill(char *p, uint64_t seed, size_t page, unsigned int version)
{
	uint64_t *q = (uint64_t *)(p + page * PG);

	for (size_t w = 0; w < PG / 8; w++)
		q[w] = word(seed, page, version, w);
}

static void check_page(const char *p, uint64_t seed, size_t page, unsigned int version,
		       const char *when)
{
	const uint64_t *q = (const uint64_t *)(p + page * PG);

	for (size_t w = 0; w < PG / 8; w++)
		CHECK(q[w] == word(seed, page, version, w),
		      "%s: page %zu word %zu is %#" PRIx64 ", want %#" PRIx64 " (version %u)", when,
		      page, w, q[w], word(seed, page, version, w), version);
}

/* Read, check and rewrite (next version) each page of the reader's share. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;

	for (unsigned int i = 0; i < PER_THREAD; i++) {
		size_t pg = r->pages[i];
		unsigned int v = r->version[pg];

		check_page(r->p, r->seed, pg, v, "beside the lock's holder");
		fill(r->p, r->seed, pg, v + 1);
		r->version[pg] = (unsigned char)(v + 1);
		atomic_store(&r->done, i + 1);
	}
	return NULL;
}

/* Wait for r (up to timeout_s).  Return: whether it finished. */
static bool wait_done(struct reader *r, unsigned int want, double timeout_s)
{
	uint64_t t0 = fl_now_ns();

	while (atomic_load(&r->done) < want)
		if (fl_now_ns() - t0 > (uint64_t)(timeout_s * 1e9))
			return false;
		else
			usleep(1000);
	return true;
}

static void run(int delivery, uint64_t seed)
{
	static struct reader rd[NTHREADS + 1];
	static unsigned char version[NPAGES];
	pthread_t th[NTHREADS + 1];
	struct t_rng rng;
	struct fl_config cfg;
	struct fl_space *sp;
	struct fl_stats st0, st1;
	size_t perm[NPAGES];

	t_rng_init(&rng, seed ^ (uint64_t)delivery);
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = LIMIT_PAGES * PG;
	sp = t_space_create_cfg(&cfg);
	char *p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	memset(version, 0, sizeof(version));
	for (size_t pg = 0; pg < NPAGES; pg++)
		fill(p, seed, pg, 0);

	/* Each page in one share of the four readers of step 1: a random
	 * permutation, dealt out; step 2's reader, which runs after them,
	 * takes the first one's share again. */
	for (size_t i = 0; i < NPAGES; i++)
		perm[i] = i;
	for (size_t i = NPAGES - 1; i > 0; i--) {
		size_t j = t_below(&rng, i + 1), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (unsigned int t = 0; t <= NTHREADS; t++) {
		rd[t] = (struct reader){.p = p, .seed = seed, .id = t, .version = version};
		for (unsigned int i = 0; i < PER_THREAD; i++)
			rd[t].pages[i] = perm[(t * PER_THREAD + i) % NPAGES];
	}

	/* 1. The lock held throughout: faults evict beside it. */
	pthread_mutex_lock(&sp->reclaim_lock);
	st0 = t_stats(sp);
	for (unsigned int t = 0; t < NTHREADS; t++)
		CHECK(!pthread_create(&th[t], NULL, reader_main, &rd[t]), "pthread_create");
	for (unsigned int t = 0; t < NTHREADS; t++)
		CHECK(wait_done(&rd[t], PER_THREAD, 60),
		      "%s: reader %u did %u of %u pages in 60 s with reclaim_lock held: faults "
		      "waited for the lock",
		      t_delivery_name(delivery), t, atomic_load(&rd[t].done), PER_THREAD);
	for (unsigned int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	st1 = t_stats(sp);
	printf("%-6s lock held: %d pages read and rewritten, direct reclaim %" PRIu64
	       " pages, %" PRIu64 " of them beside the holder; resident %" PRIu64 " of %d\n",
	       t_delivery_name(delivery), NTHREADS * PER_THREAD,
	       st1.reclaim_direct - st0.reclaim_direct, st1.reclaim_beside - st0.reclaim_beside,
	       st1.resident_pages, LIMIT_PAGES);
	CHECK(st1.reclaim_beside > st0.reclaim_beside, "no page was evicted beside the holder");

	/* 2. Every spare in use too: a fault over the budget waits. */
	for (unsigned int i = 0; i < RECLAIM_ZAP_SPARES; i++)
		CHECK(!atomic_exchange(&sp->zap_spare_busy[i], true), "spare %u still in use", i);
	CHECK(!pthread_create(&th[NTHREADS], NULL, reader_main, &rd[NTHREADS]), "pthread_create");
	unsigned int got = 0;
	for (int k = 0; k < 5000 && !atomic_load(&sp->reclaim_waiters); k++)
		usleep(1000);
	usleep(100000);
	got = atomic_load(&rd[NTHREADS].done);
	CHECK(atomic_load(&sp->reclaim_waiters) >= 1 && got < PER_THREAD,
	      "%s: with every spare in use no fault waited for reclaim_lock (%u pages read)",
	      t_delivery_name(delivery), got);
	pthread_mutex_unlock(&sp->reclaim_lock);
	CHECK(wait_done(&rd[NTHREADS], PER_THREAD, 60), "the waiting reader did not go on");
	pthread_join(th[NTHREADS], NULL);
	for (unsigned int i = 0; i < RECLAIM_ZAP_SPARES; i++)
		atomic_store(&sp->zap_spare_busy[i], false);
	printf("%-6s every spare in use: a fault waited for the lock (%u pages read before it), "
	       "and went on when it was let go\n",
	       t_delivery_name(delivery), got);

	/* 3. Everything at its version. */
	for (size_t pg = 0; pg < NPAGES; pg++)
		check_page(p, seed, pg, version[pg], "at the end");
	CHECK(fl_munmap(sp, p, NPAGES * PG) == 0, "fl_munmap");
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_reclaim_beside");

	run(FL_DELIVERY_SIGBUS, seed);
	run(FL_DELIVERY_THREAD, seed);
	printf("test_reclaim_beside: PASS\n");
	return T_EXIT_PASS;
}
