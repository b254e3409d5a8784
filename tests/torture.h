/* SPDX-License-Identifier: MIT */
/*
 * The integrity torture of the tier tests (not a benchmark): a region
 * eight times the budget, whose pages are text-like (compress 4x and
 * more), random (incompressible) or same-filled, is filled, then threads
 * verify whole pages and write new versions of their own pages while
 * another pages ranges out; at the end every page is verified again.  A
 * wrong byte anywhere fails the test with the page, word and version.
 * Include after util.h.
 */
#ifndef FL_TEST_TORTURE_H
#define FL_TEST_TORTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define PG 4096UL
#define TT_WORKERS 4

/*
 * Sanitizer builds (T_SANITIZED) run every step several times slower:
 * there the tier tests run their torture under two policies (drop and
 * hold, the two shapes of waiting: retry under mmap_lock, keep the VMA
 * lock), the release build under all five.
 */
static inline bool tt_policy_runs(int policy)
{
	return !T_SANITIZED || t_soak() || policy == FL_POLICY_DROP || policy == FL_POLICY_HOLD;
}

static const char *const tt_policy_names[] = {"mmap", "bail", "drop", "drop-vma", "hold"};

struct torture {
	struct fl_space *sp;
	char *region;
	size_t npages;
	uint32_t *versions; /* per page; a page's only writer is its owner */
	uint64_t seed;
	_Atomic bool stop;
};

/* What kind of page version ver of page is: 0 text-like, 1 random, 2 same-filled. */
static inline unsigned int tt_kind(const struct torture *t, size_t page, uint32_t ver)
{
	uint64_t x = t->seed ^ page << 20 ^ ver;
	unsigned int k = (unsigned int)(t_splitmix64(&x) % 20);

	return k < 12 ? 0 : k < 17 ? 1 : 2;
}

/* The contents of version ver of page (ver 0: zeros, never written). */
static inline void tt_make_page(const struct torture *t, uint64_t *w, size_t page, uint32_t ver)
{
	static const char *const words[] = {"the page fault path ", "swap readahead window ",
					    "per-VMA lock ",	    "mmap_lock for read ",
					    "compressed tier ",	    "of the kernel ",
					    "zswap writeback ",	    "a frame in the swap cache ",
					    "UFFDIO_COPY ",	    ".\n"};
	uint64_t x = t->seed ^ (uint64_t)page << 24 ^ (uint64_t)ver << 48;
	char *c = (char *)w;

	if (!ver) {
		memset(w, 0, PG);
		return;
	}
	switch (tt_kind(t, page, ver)) {
	case 0: {
		size_t n = 0;
		while (n < PG) {
			const char *s = words[t_splitmix64(&x) % 10];
			for (size_t i = 0; s[i] && n < PG; i++)
				c[n++] = s[i];
		}
		/* The page and its version in the first and last words. */
		w[0] = page << 32 | ver;
		w[PG / 8 - 1] = ~w[0];
		break;
	}
	case 1:
		for (size_t i = 0; i < PG / 8; i++)
			w[i] = t_splitmix64(&x);
		break;
	default:
		for (size_t i = 0; i < PG / 8; i++)
			w[i] = (page << 32 | ver) ^ 0x5a5a5a5a00000000ULL;
		break;
	}
}

static inline void tt_verify(const struct torture *t, size_t page, uint32_t ver, const char *what)
{
	uint64_t want[PG / 8];
	const uint64_t *w = (const uint64_t *)(t->region + page * PG);

	tt_make_page(t, want, page, ver);
	for (size_t i = 0; i < PG / 8; i++)
		CHECK(w[i] == want[i],
		      "%s: page %zu (kind %u) word %zu: %#llx, expected %#llx of version %u: "
		      "stale, torn or foreign",
		      what, page, ver ? tt_kind(t, page, ver) : 9, i, (unsigned long long)w[i],
		      (unsigned long long)want[i], ver);
}

static inline void tt_write(struct torture *t, size_t page, uint32_t ver)
{
	t->versions[page] = ver;
	tt_make_page(t, (uint64_t *)(t->region + page * PG), page, ver);
}

struct tt_arg {
	struct torture *t;
	unsigned long id;
};

static inline void *tt_worker(void *arg)
{
	struct tt_arg *a = arg;
	struct torture *t = a->t;
	struct t_rng rng;

	t_rng_init(&rng, t->seed + a->id);
	while (!atomic_load(&t->stop)) {
		size_t page = t_below(&rng, t->npages / TT_WORKERS) * TT_WORKERS + a->id;
		tt_verify(t, page, t->versions[page], "torture");
		if (t_chance(&rng, 50))
			tt_write(t, page, t->versions[page] + 1);
	}
	return NULL;
}

static inline void *tt_pager(void *arg)
{
	struct torture *t = arg;
	struct t_rng rng;

	t_rng_init(&rng, t->seed ^ 0xabcdef);
	while (!atomic_load(&t->stop)) {
		size_t page = t_below(&rng, t->npages - 64);
		CHECK(fl_madvise(t->sp, t->region + page * PG, 64 * PG, MADV_PAGEOUT) == 0,
		      "MADV_PAGEOUT: %s", strerror(errno));
		usleep(2000);
	}
	return NULL;
}

/*
 * Map npages in sp, fill them, verify them, run the workers and the pager
 * for usec (calling mid(arg) from this thread once, after mid_usec, if
 * given), then verify every page.  The region stays mapped (t->region).
 */
static inline void tt_run(struct torture *t, struct fl_space *sp, size_t npages, uint64_t seed,
			  unsigned long usec, void (*mid)(void *), void *arg,
			  unsigned long mid_usec)
{
	pthread_t th[TT_WORKERS + 1];
	struct tt_arg a[TT_WORKERS];

	t->sp = sp;
	t->npages = npages;
	t->seed = seed;
	t->versions = calloc(npages, sizeof(*t->versions));
	CHECK(t->versions, "calloc");
	t->region = fl_mmap(sp, NULL, npages * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(t->region != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < npages; i++)
		tt_write(t, i, 1);
	for (size_t i = 0; i < npages; i++)
		tt_verify(t, i, 1, "after the fill");
	atomic_store(&t->stop, false);
	for (unsigned long i = 0; i < TT_WORKERS; i++) {
		a[i] = (struct tt_arg){t, i};
		CHECK(!pthread_create(&th[i], NULL, tt_worker, &a[i]), "pthread_create");
	}
	CHECK(!pthread_create(&th[TT_WORKERS], NULL, tt_pager, t), "pthread_create");
	if (mid) {
		usleep(mid_usec);
		mid(arg);
		usec = usec > mid_usec ? usec - mid_usec : 0;
	}
	usleep(usec);
	atomic_store(&t->stop, true);
	for (unsigned int i = 0; i <= TT_WORKERS; i++)
		pthread_join(th[i], NULL);
	for (size_t i = npages; i-- > 0;)
		tt_verify(t, i, t->versions[i], "at the end");
}

static inline void tt_unmap(struct torture *t)
{
	CHECK(fl_munmap(t->sp, t->region, t->npages * PG) == 0, "munmap");
	free(t->versions);
	t->versions = NULL;
}

#endif /* FL_TEST_TORTURE_H */
