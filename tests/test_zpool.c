// SPDX-License-Identifier: MIT
/*
 * The pool for compressed pages: threads allocate objects of random sizes
 * (1 byte to a page), fill each with a pattern of its own handle, check
 * every pattern before freeing, and free in random order; no object may
 * overlap another, the counts must come back to zero, and the pool must
 * give back all but at most one slab per class.  Bad sizes get no object.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "util.h"

#include "zpool.h"

#define THREADS 4
#define LIVE 2000
#define ROUNDS 40000

static struct zpool pool;
static uint64_t seed;

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
		len[i] = t_chance(&r, 10) ? 4096 : 1 + (size_t)t_below(&r, 4096);
		h[i] = zp_alloc(&pool, len[i]);
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

int main(int argc, char **argv)
{
	pthread_t t[THREADS];

	seed = t_seed_init(argc, argv, "test_zpool");
	CHECK(zp_init(&pool) == 0, "zp_init");
	CHECK(zp_alloc(&pool, 0) == ZP_NONE, "0 bytes");
	CHECK(zp_alloc(&pool, 4097) == ZP_NONE, "4097 bytes");
	CHECK(zp_class_size(1) == 64 && zp_class_size(64) == 64 && zp_class_size(65) == 128 &&
		      zp_class_size(4096) == 4096,
	      "class sizes");
	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK(!pthread_create(&t[i], NULL, worker, (void *)i), "pthread_create");
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("after %d threads x %d rounds: %llu objects, %llu bytes of slabs\n", THREADS, ROUNDS,
	       (unsigned long long)atomic_load(&pool.objects),
	       (unsigned long long)atomic_load(&pool.bytes_slabs));
	CHECK(atomic_load(&pool.objects) == 0, "objects left");
	CHECK(atomic_load(&pool.bytes_slabs) <= (uint64_t)ZP_CLASSES * ZP_SLAB_SIZE,
	      "%llu bytes of slabs kept: more than one slab a class",
	      (unsigned long long)atomic_load(&pool.bytes_slabs));
	zp_destroy(&pool);
	printf("test_zpool: PASS\n");
	return T_EXIT_PASS;
}
