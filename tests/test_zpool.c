// SPDX-License-Identifier: MIT
/*
 * The pool for compressed pages: threads allocate objects of random sizes
 * (1 byte to a page: one in ten a whole page, kept in the page class
 * with its owner out of line), fill each with a pattern of its own handle, check
 * every pattern before freeing, and free in random order; no object may
 * overlap another, the counts must come back to zero, and the pool must
 * give back all but at most one slab per class.  Bad sizes get no object.
 *
 * Compaction: a pool fragmented by freeing most objects at random is
 * compacted; every object left keeps its bytes (its owner's reference
 * re-pointed only once its bytes are at the new place), each class ends
 * with no more slabs than its objects need,
 * and an object its owner refuses to re-point (not yet published) stays
 * where it is.
 *
 * Slabs given back here and there do not cost the process a mapping each,
 * and a pool whose reservation is used up refuses objects and keeps those
 * it gave.  The reservation is inaccessible (charged to no one) until the
 * pool reaches it.  An emptied pool keeps at most a sixteenth of itself in
 * empty slabs.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "util.h"

#include "zpool.h"

#define THREADS 4
/* The pool's memory allowed: more than any part of the test takes. */
#define POOL_MAX (256ul << 20)
#define LIVE 2000
#define ROUNDS 40000

static struct zpool pool;
static uint64_t seed;
/* Every part runs twice: with the smallest slabs, then the largest. */
static uint32_t slab_size;

static int pool_init(size_t max_bytes)
{
	return zp_init_slabs(&pool, max_bytes, slab_size);
}

static void fill(uint8_t *m, size_t len, uint32_t h)
{
	for (size_t i = 0; i < len; i++)
		m[i] = (uint8_t)(h * 31 + i * 7);
}

static bool check(const uint8_t *m, size_t len, uint32_t h)
{
	for (size_t i = 0; i < len; i++)
		if (m[i] != (uint8_t)(h * 31 + i * 7))
			return false;
	return true;
}

static void *worker(void *arg)
{
	uint32_t h[LIVE] = {0};
	size_t len[LIVE];
	struct t_rng r;

	t_rng_init(&r, seed + (uintptr_t)arg);
	for (int k = 0; k < ROUNDS; k++) {
		int i = (int)t_below(&r, LIVE);
		if (h[i]) {
			CHECK(check(zp_map(&pool, h[i]), len[i], h[i]),
			      "object %#x of %zu bytes was overwritten", h[i], len[i]);
			zp_free(&pool, h[i]);
			h[i] = ZP_NONE;
			continue;
		}
		len[i] = t_chance(&r, 10)   ? PAGE_SIZE
			 : t_chance(&r, 10) ? ZP_MAX_LEN
					    : 1 + (size_t)t_below(&r, PAGE_SIZE);
		h[i] = zp_alloc(&pool, len[i], (uint32_t)i);
		CHECK(h[i] != ZP_NONE, "no object of %zu bytes", len[i]);
		fill(zp_map(&pool, h[i]), len[i], h[i]);
	}
	for (int i = 0; i < LIVE; i++)
		if (h[i]) {
			CHECK(check(zp_map(&pool, h[i]), len[i], h[i]), "object %#x overwritten",
			      h[i]);
			zp_free(&pool, h[i]);
		}
	return NULL;
}

#define CN 20000

/* The compaction test's objects, by owner: handle, length, and whether the
 * owner refuses to be re-pointed (an object not yet published). */
static struct cobj {
	uint32_t h;
	uint32_t len;
	bool refuse;
	unsigned int moves;
} cobj[CN];

static bool cmove(void *arg, uint32_t owner, uint32_t handle, uint32_t new_handle)
{
	CHECK(owner < CN, "object %#x names owner %u", handle, owner);
	if (cobj[owner].h != handle || cobj[owner].refuse)
		return false;
	if (new_handle == ZP_NONE)
		return true; /* only the question */
	CHECK(new_handle != handle, "moved to %#x", new_handle);
	/* A reader without the owner's lock may read it as soon as the
	 * reference points to it: the bytes are there first. */
	CHECK(check(zp_map(&pool, new_handle), cobj[owner].len, owner * 0x9e37u),
	      "object %#x re-pointed to %#x before its bytes were copied", handle, new_handle);
	cobj[owner].h = new_handle;
	cobj[owner].moves++;
	return true;
}

static void compact_all(struct zpool *p, struct zp_compact_result *res)
{
	for (unsigned int c = 0; c < ZP_CLASSES; c++)
		while (zp_compact_step(p, c, cmove, NULL, res))
			;
}

static void check_all(const char *when)
{
	for (uint32_t i = 0; i < CN; i++)
		if (cobj[i].h)
			CHECK(check(zp_map(&pool, cobj[i].h), cobj[i].len, i * 0x9e37u),
			      "%s: object %u (%u bytes, at %#x, moved %u times) is wrong", when, i,
			      cobj[i].len, cobj[i].h, cobj[i].moves);
}

/* Slabs a compacted pool may keep: in each class used, those its live
 * objects fill, and one partial slab (kept even when empty). */
static uint64_t slabs_allowed(void)
{
	uint64_t n[ZP_CLASSES] = {0}, slabs = 0;

	for (uint32_t i = 0; i < CN; i++)
		if (cobj[i].len)
			n[zp_class_of(cobj[i].len)] += cobj[i].h != ZP_NONE;
	for (unsigned int c = 0; c < ZP_CLASSES; c++) {
		uint64_t per = 0;
		bool used = false;
		for (uint32_t i = 0; i < CN && !used; i++)
			if (zp_class_of(cobj[i].len) == c) {
				used = true;
				per = pool.slab_size / zp_class_size(cobj[i].len);
			}
		slabs += used ? n[c] / per + 1 : 0;
	}
	return slabs;
}

static void compaction(void)
{
	struct zp_compact_result res = {0, 0};
	struct t_rng r;
	uint64_t before, live = 0, refused = 0;

	t_rng_init(&r, seed ^ 0xc0);
	memset(cobj, 0, sizeof(cobj)); /* the part runs once for each slab size */
	CHECK(pool_init(POOL_MAX) == 0, "zp_init");
	for (uint32_t i = 0; i < CN; i++) {
		/* One in eight a whole page (the page class). */
		cobj[i].len = t_below(&r, 8) ? 1 + (uint32_t)t_below(&r, 3072) : PAGE_SIZE;
		cobj[i].h = zp_alloc(&pool, cobj[i].len, i);
		CHECK(cobj[i].h != ZP_NONE, "no object of %u bytes", cobj[i].len);
		fill(zp_map(&pool, cobj[i].h), cobj[i].len, i * 0x9e37u);
	}
	/* Free three in four, at random: every slab keeps a few. */
	for (uint32_t i = 0; i < CN; i++) {
		if (t_below(&r, 4)) {
			zp_free(&pool, cobj[i].h);
			cobj[i].h = ZP_NONE;
		} else {
			live++;
		}
	}
	before = atomic_load(&pool.bytes_slabs);
	CHECK(zp_reclaimable_bytes(&pool) > before / 2, "fragmented, yet %llu bytes reclaimable",
	      (unsigned long long)zp_reclaimable_bytes(&pool));
	compact_all(&pool, &res);
	CHECK(zp_reclaimable_bytes(&pool) == 0, "compacted, yet %llu bytes reclaimable",
	      (unsigned long long)zp_reclaimable_bytes(&pool));
	check_all("after compaction");
	printf("compaction: %llu objects live, %llu -> %llu bytes of slabs (%llu allowed); "
	       "%u moved, %u slabs freed\n",
	       (unsigned long long)live, (unsigned long long)before,
	       (unsigned long long)atomic_load(&pool.bytes_slabs),
	       (unsigned long long)slabs_allowed() * pool.slab_size, res.moved, res.slabs_freed);
	CHECK(res.moved > 0 && res.slabs_freed > 0, "compaction did nothing");
	CHECK(atomic_load(&pool.objects) == live, "%llu objects counted, %llu live",
	      (unsigned long long)atomic_load(&pool.objects), (unsigned long long)live);
	CHECK(atomic_load(&pool.bytes_slabs) <= slabs_allowed() * pool.slab_size,
	      "%llu bytes of slabs, %llu allowed",
	      (unsigned long long)atomic_load(&pool.bytes_slabs),
	      (unsigned long long)slabs_allowed() * pool.slab_size);
	CHECK(before - atomic_load(&pool.bytes_slabs) == (uint64_t)res.slabs_freed * pool.slab_size,
	      "freed slabs do not add up");

	/* Again, with one object in ten not its owner's yet: those stay. */
	for (uint32_t i = 0; i < CN; i++) {
		if (!cobj[i].h)
			continue;
		if (t_below(&r, 2)) {
			zp_free(&pool, cobj[i].h);
			cobj[i].h = ZP_NONE;
		} else if (t_chance(&r, 10)) {
			cobj[i].refuse = true;
			cobj[i].moves = 0;
			refused++;
		}
	}
	res = (struct zp_compact_result){0, 0};
	compact_all(&pool, &res);
	check_all("after the second compaction");
	for (uint32_t i = 0; i < CN; i++)
		CHECK(!cobj[i].refuse || !cobj[i].moves, "object %u moved against its owner", i);
	printf("second compaction, %llu objects refusing: %u moved, %u slabs freed\n",
	       (unsigned long long)refused, res.moved, res.slabs_freed);
	CHECK(res.moved > 0 && res.slabs_freed > 0, "the second compaction did nothing");
	for (uint32_t i = 0; i < CN; i++)
		if (cobj[i].h)
			zp_free(&pool, cobj[i].h);
	CHECK(atomic_load(&pool.objects) == 0 && atomic_load(&pool.bytes_objects) == 0,
	      "objects left");
	zp_destroy(&pool);
}

/* The mappings of this process: lines of /proc/self/maps. */
static unsigned int maps_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned int n = 0;
	int c;

	CHECK(f, "/proc/self/maps: %s", strerror(errno));
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/*
 * Slabs given back one here, one there must not cost the process a
 * mapping each: its count of mappings is limited (vm.max_map_count), the
 * application's own mmap() fails past it, and the pool may hold a million
 * slabs.  Fill SLABS slabs of one class, give back every other one, and
 * count the mappings before and after.
 */
static void slabs_and_mappings(void)
{
	enum { SLABS = 2000 };
	static uint32_t h[SLABS * (ZP_SLAB_MAX / 1024)];
	unsigned int before, after, n = 0, per = slab_size / 1024;

	CHECK(pool_init(POOL_MAX) == 0, "zp_init");
	before = maps_count();
	for (unsigned int i = 0; i < SLABS * per; i++) {
		h[i] = zp_alloc(&pool, 1024 - ZP_HDR, i + 1);
		CHECK(h[i] != ZP_NONE, "zp_alloc %u", i);
		fill(zp_map(&pool, h[i]), 1024 - ZP_HDR, h[i]);
	}
	for (unsigned int i = 0; i < SLABS * per; i++)
		if (((h[i] >> ZP_OBJ_BITS) - 1) % 2) {
			zp_free(&pool, h[i]);
			h[i] = ZP_NONE;
		}
	after = maps_count();
	for (unsigned int i = 0; i < SLABS * per; i++)
		if (h[i] != ZP_NONE) {
			CHECK(check(zp_map(&pool, h[i]), 1024 - ZP_HDR, h[i]), "object %#x changed",
			      h[i]);
			zp_free(&pool, h[i]);
			n++;
		}
	printf("%u slabs, every other one given back (%u objects kept): %u mappings before, "
	       "%u after\n",
	       SLABS, n, before, after);
	CHECK(n >= SLABS / 2 * per - per, "only %u objects kept", n);
	CHECK(after <= before + 8, "%u mappings for the pool's slabs: one a slab", after - before);
	zp_destroy(&pool);

	/* A pool whose reservation is used up gives no object, and keeps
	 * those it gave. */
	CHECK(pool_init(64 << 10) == 0, "zp_init");
	unsigned int got = 0;
	while (got < SLABS * per && (h[got] = zp_alloc(&pool, PAGE_SIZE, got + 1)) != ZP_NONE) {
		fill(zp_map(&pool, h[got]), PAGE_SIZE, h[got]);
		got++;
	}
	printf("a pool for 64 KiB: %u whole pages, then none\n", got);
	CHECK(got == pool.max_slabs * (slab_size / PAGE_SIZE), "%u pages from %u slabs", got,
	      pool.max_slabs);
	for (unsigned int i = 0; i < got; i++) {
		CHECK(check(zp_map(&pool, h[i]), PAGE_SIZE, h[i]), "page %#x changed", h[i]);
		zp_free(&pool, h[i]);
	}
	CHECK(zp_alloc(&pool, 100, 1) != ZP_NONE, "no object after the pool was emptied");
	zp_destroy(&pool);
}

/*
 * An emptied pool keeps at most a sixteenth of its size in empty slabs:
 * with one object in every class freed again, a small pool (which could
 * keep no slab for each) keeps four, a large one one a class.
 */
static void emptied(void)
{
	static const struct {
		size_t max;
		uint32_t kept;
	} pools[] = {{1ul << 20, 4}, {POOL_MAX, ZP_CLASSES}};
	uint32_t h[ZP_CLASSES];

	for (unsigned int i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
		CHECK(zp_init_slabs(&pool, pools[i].max, ZP_SLAB_MIN) == 0, "zp_init");
		for (unsigned int round = 0; round < 2; round++) {
			for (unsigned int c = 0; c < ZP_CLASSES; c++) {
				size_t len = c < ZP_HDR_CLASSES ? (c + 1) * ZP_ALIGN - ZP_HDR
								: PAGE_SIZE;

				CHECK(zp_class_of(len) == c, "class %u", c);
				h[c] = zp_alloc(&pool, len, c + 1);
				CHECK(h[c] != ZP_NONE, "no object of class %u", c);
			}
			for (unsigned int c = 0; c < ZP_CLASSES; c++)
				zp_free(&pool, h[c]);
			CHECK(atomic_load(&pool.bytes_slabs) == pools[i].kept * ZP_SLAB_MIN &&
				      atomic_load(&pool.kept_slabs) == pools[i].kept,
			      "a pool of %zu KiB emptied (round %u): %lu KiB of slabs, %u kept",
			      pools[i].max >> 10, round,
			      (unsigned long)(atomic_load(&pool.bytes_slabs) >> 10),
			      atomic_load(&pool.kept_slabs));
		}
		printf("a pool of %zu KiB emptied: %u empty slabs kept\n", pools[i].max >> 10,
		       pools[i].kept);
		zp_destroy(&pool);
	}
}

/*
 * The reservation is inaccessible until the pool reaches it, so that no
 * overcommit policy charges more than the pool has used (strict overcommit
 * ignores MAP_NORESERVE): writable from its start in steps of
 * ZP_GROW_BYTES, the rest PROT_NONE, two mappings at most.
 */
static void commit_follows_use(void)
{
	enum { USED = 100 };
	static uint32_t h[USED * (ZP_SLAB_MAX / 1024)];
	uintptr_t lo, hi;
	size_t rw, none;
	unsigned int n, per = slab_size / 1024;

	CHECK(pool_init(256UL << 20) == 0, "zp_init");
	lo = (uintptr_t)pool.base;
	hi = lo + (size_t)pool.max_slabs * pool.slab_size;
	n = t_maps_of(lo, hi, &rw, &none);
	CHECK(n == 1 && rw == 0 && none == hi - lo,
	      "a new pool: %u mappings, %zu bytes writable, %zu inaccessible of %zu", n, rw, none,
	      (size_t)(hi - lo));
	for (unsigned int i = 0; i < USED * per; i++) {
		h[i] = zp_alloc(&pool, 1024 - ZP_HDR, i + 1);
		CHECK(h[i] != ZP_NONE, "zp_alloc %u", i);
		fill(zp_map(&pool, h[i]), 1024 - ZP_HDR, h[i]);
	}
	n = t_maps_of(lo, hi, &rw, &none);
	printf("a pool of %u reserved slabs, %u used: %u mappings, %zu KiB writable, the rest "
	       "inaccessible\n",
	       pool.max_slabs, pool.nr_slabs, n, rw >> 10);
	CHECK(n == 2 && rw >= (size_t)pool.nr_slabs * pool.slab_size &&
		      rw <= (size_t)pool.nr_slabs * pool.slab_size + ZP_GROW_BYTES &&
		      rw + none == hi - lo,
	      "%u slabs used: %u mappings, %zu bytes writable, %zu inaccessible", pool.nr_slabs, n,
	      rw, none);
	for (unsigned int i = 0; i < USED * per; i++) {
		CHECK(check(zp_map(&pool, h[i]), 1024 - ZP_HDR, h[i]), "object %#x changed", h[i]);
		zp_free(&pool, h[i]);
	}
	zp_destroy(&pool);
}

/* THREADS threads allocate and free at random, each checking its objects. */
static void threads(void)
{
	pthread_t t[THREADS];

	CHECK(pool_init(POOL_MAX) == 0, "zp_init");
	CHECK(zp_alloc(&pool, 0, 0) == ZP_NONE, "0 bytes");
	CHECK(zp_alloc(&pool, PAGE_SIZE + 1, 0) == ZP_NONE, "%lu bytes",
	      (unsigned long)PAGE_SIZE + 1);
	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK(!pthread_create(&t[i], NULL, worker, (void *)i), "pthread_create");
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("after %d threads x %d rounds: %llu objects, %llu bytes of slabs\n", THREADS, ROUNDS,
	       (unsigned long long)atomic_load(&pool.objects),
	       (unsigned long long)atomic_load(&pool.bytes_slabs));
	CHECK(atomic_load(&pool.objects) == 0, "objects left");
	CHECK(atomic_load(&pool.bytes_slabs) <= (uint64_t)ZP_CLASSES * pool.slab_size,
	      "%llu bytes of slabs kept: more than one slab a class",
	      (unsigned long long)atomic_load(&pool.bytes_slabs));
	zp_destroy(&pool);
}

int main(int argc, char **argv)
{
	static const struct {
		size_t max;
		uint32_t slab;
	} sizes[] = {{256 << 10, 16 << 10},
		     {32ul << 20, 32 << 10},
		     {64ul << 20, 64 << 10},
		     {1ul << 30, 64 << 10}};

	seed = t_seed_init(argc, argv, "test_zpool");
	CHECK(zp_class_size(1) == 64 && zp_class_size(64 - ZP_HDR) == 64 &&
		      zp_class_size(65 - ZP_HDR) == 128 && zp_class_size(ZP_MAX_LEN) == 4096 &&
		      zp_class_of(ZP_MAX_LEN) == ZP_HDR_CLASSES - 1 &&
		      zp_class_of(ZP_MAX_LEN + 1) == ZP_PAGE_CLASS &&
		      zp_class_size(PAGE_SIZE) == PAGE_SIZE,
	      "class sizes");
	/* The slab size a pool takes: a 1024th of it, 16 to 64 KiB. */
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK(zp_init(&pool, sizes[i].max) == 0, "zp_init");
		CHECK(pool.slab_size == sizes[i].slab, "a pool of %zu bytes: slabs of %u bytes",
		      sizes[i].max, pool.slab_size);
		zp_destroy(&pool);
	}
	CHECK(zp_init_slabs(&pool, POOL_MAX, ZP_SLAB_MAX * 2) == -EINVAL &&
		      zp_init_slabs(&pool, POOL_MAX, ZP_SLAB_MIN + 1) == -EINVAL,
	      "a slab size out of range");
	emptied();
	for (slab_size = ZP_SLAB_MIN; slab_size <= ZP_SLAB_MAX; slab_size *= 4) {
		printf("slabs of %u KiB:\n", slab_size >> 10);
		threads();
		compaction();
		slabs_and_mappings();
		commit_follows_use();
	}
	printf("test_zpool: PASS\n");
	return T_EXIT_PASS;
}
