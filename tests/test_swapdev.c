// SPDX-License-Identifier: MIT
/*
 * The swap device on its own: slots are allocated next-fit (consecutive),
 * freed and reused; the file grows on demand; writes then reads of many
 * slots in flight at once return exactly what was written; an injected error
 * fails exactly the slot it names; posts gathered go as a set or at their
 * flush; the store bypasses the page cache.
 */
#include "swapdev.h"

#include <sys/mman.h>

#include "util.h"

#define N 18000 /* more than the first 64 MiB (16384 slots): the file must grow */

struct io {
	struct swap_io io;
	_Atomic int res; /* 1 pending, 0 done ok, <0 error */
};

static void done(struct swap_io *io, int res)
{
	atomic_store(&((struct io *)io)->res, res);
}

static void wait_all(struct io *ios, size_t n)
{
	for (size_t i = 0; i < n; i++)
		while (atomic_load(&ios[i].res) == 1)
			usleep(10);
}

/* Whether ios[0..n) are all done within 5 s. */
static bool wait_until(struct io *ios, size_t n)
{
	for (int ms = 0; ms < 5000; ms++) {
		size_t i = 0;
		while (i < n && atomic_load(&ios[i].res) != 1)
			i++;
		if (i == n)
			return true;
		usleep(1000);
	}
	return false;
}

int main(int argc, char **argv)
{
	static struct swap_dev d;
	static uint32_t slots[N + 20000];
	struct t_rng rng;
	uint64_t seed = t_seed_init(argc, argv, "test_swapdev");
	struct io *ios = calloc(N, sizeof(*ios));
	char *bufs;
	int ret;

	t_require_io_uring();
	t_rng_init(&rng, seed);
	ret = swapdev_open(&d, NULL, 256);
	CHECK(ret == 0, "swapdev_open: %s", strerror(-ret));
	CHECK(posix_memalign((void **)&bufs, 4096, (size_t)N * 4096) == 0, "memalign");

	/* Next-fit: a fresh device hands out 0, 1, 2, ... */
	CHECK(swap_slots_alloc(&d, N, slots) == N, "alloc");
	for (unsigned int i = 0; i < N; i++)
		CHECK(slots[i] == i, "slot %u is %u: not sequential", i, slots[i]);
	CHECK(d.nr_slots >= N && N > 16384, "the file did not grow");

	/* Write all at once, then read all back into cleared buffers. */
	for (unsigned int i = 0; i < N; i++) {
		for (unsigned int w = 0; w < 512; w++)
			((uint64_t *)(bufs + (size_t)i * 4096))[w] = seed ^ ((uint64_t)i << 20) ^ w;
		ios[i] = (struct io){.io = {.slot = slots[i],
					    .write = true,
					    .buf = bufs + (size_t)i * 4096,
					    .done = done},
				     .res = 1};
		CHECK(swap_submit(&d, &ios[i].io) == 0, "submit write");
	}
	wait_all(ios, N);
	for (unsigned int i = 0; i < N; i++)
		CHECK(atomic_load(&ios[i].res) == 0, "write %u: %d", i, atomic_load(&ios[i].res));
	memset(bufs, 0, (size_t)N * 4096);
	/* An injected read error on one slot, a write error on another. */
	unsigned int bad = (unsigned int)t_below(&rng, N);
	CHECK(swapdev_inject_error(&d, slots[bad], false, true) == 0, "inject");
	for (unsigned int i = 0; i < N; i++) {
		ios[i].io.write = false;
		atomic_store(&ios[i].res, 1);
		CHECK(swap_submit(&d, &ios[i].io) == 0, "submit read");
	}
	wait_all(ios, N);
	for (unsigned int i = 0; i < N; i++) {
		if (i == bad) {
			CHECK(atomic_load(&ios[i].res) == -EIO, "injected read error not seen");
			continue;
		}
		CHECK(atomic_load(&ios[i].res) == 0, "read %u: %d", i, atomic_load(&ios[i].res));
		for (unsigned int w = 0; w < 512; w++)
			CHECK(((uint64_t *)(bufs + (size_t)i * 4096))[w] ==
				      (seed ^ ((uint64_t)i << 20) ^ w),
			      "slot %u word %u read back wrong", i, w);
	}
	CHECK(swapdev_inject_error(&d, slots[bad], false, false) == 0, "clear");
	CHECK(swapdev_inject_error(&d, slots[7], true, true) == 0, "inject write");
	atomic_store(&ios[7].res, 1);
	ios[7].io.write = true;
	CHECK(swap_submit(&d, &ios[7].io) == 0, "submit");
	wait_all(ios + 7, 1);
	CHECK(atomic_load(&ios[7].res) == -EIO, "injected write error not seen");
	CHECK(atomic_load(&d.inflight_max) > 1, "never more than one I/O in flight");

	/*
	 * Posts gathered (swapdev_post_add()): a full set goes at once, the
	 * rest only at swapdev_post_flush(), each io done once with its own
	 * result.  Nothing of the rest is on the ring before the flush, so
	 * none of it can be done before.
	 */
	enum { NPOST = 2 * SWAP_POSTS_MAX + 22 };
	struct swap_posts posts = {0};
	for (unsigned int i = 0; i < NPOST; i++) {
		atomic_store(&ios[i].res, 1);
		swapdev_post_add(&d, &posts, &ios[i].io, i % 3 ? 0 : -EBADMSG);
	}
	CHECK(posts.n == NPOST - 2 * SWAP_POSTS_MAX, "%u posts gathered, not %d", posts.n,
	      NPOST - 2 * SWAP_POSTS_MAX);
	CHECK(wait_until(ios, 2 * SWAP_POSTS_MAX), "a full set of posts did not go at once");
	usleep(20000);
	for (unsigned int i = 2 * SWAP_POSTS_MAX; i < NPOST; i++)
		CHECK(atomic_load(&ios[i].res) == 1, "post %u done before its flush", i);
	swapdev_post_flush(&d, &posts);
	CHECK(posts.n == 0, "posts left after the flush");
	CHECK(wait_until(ios, NPOST), "posts not done after the flush");
	for (unsigned int i = 0; i < NPOST; i++)
		CHECK(atomic_load(&ios[i].res) == (i % 3 ? 0 : -EBADMSG), "post %u: %d", i,
		      atomic_load(&ios[i].res));
	for (int ms = 0; atomic_load(&d.inflight) && ms < 5000; ms++)
		usleep(1000);
	CHECK(atomic_load(&d.inflight) == 0, "%ld I/Os still in flight after the posts",
	      (long)atomic_load(&d.inflight));
	swapdev_post_flush(&d, &posts); /* an empty flush is nothing */

	/* Freed slots are reused. */
	swap_slot_free(&d, 100);
	swap_slot_free(&d, 101);
	unsigned long used = d.used;
	uint32_t again[2];
	CHECK(swap_slots_alloc(&d, 2, again) == 2, "realloc");
	CHECK(d.used == used + 2, "used count");
	CHECK((again[0] == 100 || again[0] == 101 || again[0] >= N), "slot reuse");

	/* O_DIRECT: nothing of the file in the page cache. */
	off_t size = (off_t)d.nr_slots * 4096;
	void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, d.fd, 0);
	CHECK(m != MAP_FAILED, "mmap of the swap file: %s", strerror(errno));
	unsigned char *vec = malloc((size_t)(size / 4096));
	CHECK(mincore(m, (size_t)size, vec) == 0, "mincore: %s", strerror(errno));
	size_t cached = 0;
	for (off_t i = 0; i < size / 4096; i++)
		cached += vec[i] & 1;
	printf("page-cache pages of the swap file: %zu of %lld (written %d)\n", cached,
	       (long long)(size / 4096), N);
	CHECK(cached == 0, "the swap file is in the page cache: not direct I/O");
	munmap(m, (size_t)size);
	swapdev_close(&d);
	free(vec);
	free(ios);
	free(bufs);
	return T_EXIT_PASS;
}
