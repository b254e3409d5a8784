// SPDX-License-Identifier: MIT
/*
 * The compressed tier on its own, with LZ4 and zstd: pages of text-like
 * data come back byte for byte and compress at least 1.5 times; a
 * same-filled page keeps only its word; random data is refused as
 * incompressible; past its size the tier refuses stores and gives its
 * coldest entries to write back, decompressed, until it is under the accept
 * threshold; a slot invalidated while written back stays a tombstone until
 * that write is done; and threads storing, loading and invalidating their
 * own slots at once never see a wrong page.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "util.h"

#include "zswap.h"

#define SLOTS 65536

/* Text-like: words from a small vocabulary, and a seed-dependent number. */
static void text_page(char *p, uint64_t seed)
{
	static const char *const words[] = {"page ", "fault ",	"swap ", "lock ",  "the ", "of ",
					    "vma ",  "kernel ", "read ", "write ", "\n"};
	struct t_rng r;
	size_t n = 0;

	t_rng_init(&r, seed);
	while (n < PAGE_SIZE) {
		const char *w = words[t_below(&r, 11)];
		for (size_t i = 0; w[i] && n < PAGE_SIZE; i++)
			p[n++] = w[i];
		if (t_chance(&r, 10) && n + 8 < PAGE_SIZE)
			n += (size_t)snprintf(p + n, 9, "%u", (unsigned int)t_below(&r, 100000));
	}
}

static void random_page(char *p, uint64_t seed)
{
	struct t_rng r;

	t_rng_init(&r, seed);
	for (size_t i = 0; i < PAGE_SIZE; i += 8) {
		uint64_t x = t_rand(&r);
		memcpy(p + i, &x, 8);
	}
}

static void basics(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE], back[PAGE_SIZE];

	CHECK(z && !zswap_init(z, algo, SLOTS, 64UL << 20), "zswap_init %s", name);
	for (uint32_t s = 0; s < 1000; s++) {
		text_page(page, seed + s);
		CHECK(zswap_store(z, s, page) == 0, "%s: store %u", name, s);
	}
	double ratio = 1000.0 * PAGE_SIZE / (double)z->stored_bytes;
	for (uint32_t s = 0; s < 1000; s++) {
		text_page(page, seed + s);
		CHECK(zswap_load(z, s, back) == 0 && !memcmp(page, back, PAGE_SIZE),
		      "%s: slot %u came back wrong", name, s);
	}
	CHECK(ratio >= 1.5, "%s: text compressed only %.2fx", name, ratio);
	memset(page, 0xab, PAGE_SIZE);
	CHECK(zswap_store(z, 2000, page) == 0, "same-filled");
	CHECK(zswap_load(z, 2000, back) == 0 && !memcmp(page, back, PAGE_SIZE), "same-filled back");
	random_page(page, seed);
	CHECK(zswap_store(z, 2001, page) == -E2BIG, "random data kept");
	CHECK(zswap_load(z, 2001, back) == -ENOENT, "a refused page loads");
	CHECK(zswap_load(z, 3000, back) == -ENOENT, "a slot never stored loads");
	CHECK(!zswap_invalidate(z, 5), "invalidate");
	CHECK(zswap_load(z, 5, back) == -ENOENT, "an invalidated slot loads");
	printf("%s: 1000 text pages at %.2fx (%.2fx of pool memory), same-filled kept as a word, "
	       "random refused\n",
	       name, ratio, 999.0 * PAGE_SIZE / (double)zswap_pool_bytes(z));
	zswap_destroy(z);
	free(z);
}

static void full(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE], back[PAGE_SIZE];
	uint32_t stored = 0, s;
	uint64_t token;
	long w;

	CHECK(z && !zswap_init(z, algo, SLOTS, 256 << 10), "zswap_init");
	for (s = 0; s < 4000; s++) {
		text_page(page, seed + s);
		int ret = zswap_store(z, s, page);
		if (ret == -ENOSPC)
			break;
		CHECK(!ret, "store %u: %d", s, ret);
		stored++;
	}
	CHECK(s < 4000 && zswap_needs_writeback(z), "%s: 256 KiB never filled", name);
	/* Load slot 0: it becomes hot; the coldest is then slot 1. */
	CHECK(zswap_load(z, 0, back) == 0, "load 0");
	w = zswap_writeback_pick(z, back, &token);
	CHECK(w == 1, "%s: the coldest is slot %ld, want 1", name, w);
	text_page(page, seed + 1);
	CHECK(!memcmp(page, back, PAGE_SIZE), "written back decompressed");
	CHECK(zswap_load(z, 1, back) == 0, "loads still find a page being written back");
	CHECK(!zswap_writeback_done(z, 1, token, true), "done");
	CHECK(zswap_load(z, 1, back) == -ENOENT, "written back: gone from the tier");
	/* Invalidated while written back: a tombstone until done. */
	w = zswap_writeback_pick(z, back, &token);
	CHECK(w == 2, "next coldest %ld", w);
	CHECK(zswap_invalidate(z, 2), "invalidate during writeback says busy");
	CHECK(zswap_load(z, 2, back) == -ENOENT, "a tombstone loads");
	CHECK(zswap_writeback_done(z, 2, token, true), "done says the slot may go now");
	unsigned int picked = 0;
	while (zswap_needs_writeback(z) && (w = zswap_writeback_pick(z, back, &token)) >= 0) {
		zswap_writeback_done(z, (uint32_t)w, token, true);
		picked++;
	}
	CHECK(!zswap_needs_writeback(z), "%s: still over the threshold after writeback", name);
	printf("%s: full at %u pages in 256 KiB; %u written back, coldest first, to get under "
	       "%d%%\n",
	       name, stored, picked + 2, ZS_ACCEPT_PCT);
	zswap_destroy(z);
	free(z);
}

struct worker {
	struct zswap *z;
	uint32_t base;
	uint64_t seed;
};

static void *worker(void *arg)
{
	struct worker *wk = arg;
	char page[PAGE_SIZE], back[PAGE_SIZE];
	uint64_t gen[256] = {0};
	struct t_rng r;

	t_rng_init(&r, wk->seed);
	for (int k = 0; k < 20000; k++) {
		uint32_t i = (uint32_t)t_below(&r, 256), s = wk->base + i;
		int what = (int)t_below(&r, 10);
		if (what < 4) {
			gen[i] = t_rand(&r) | 1;
			text_page(page, gen[i]);
			if (zswap_store(wk->z, s, page))
				gen[i] = 0;
		} else if (what < 9) {
			int ret = zswap_load(wk->z, s, back);
			if (!gen[i]) {
				CHECK(ret == -ENOENT, "slot %u: a page that is not there", s);
				continue;
			}
			if (ret == -EBUSY)
				continue;
			text_page(page, gen[i]);
			CHECK(!ret && !memcmp(page, back, PAGE_SIZE), "slot %u: wrong page (%d)", s,
			      ret);
		} else {
			CHECK(!zswap_invalidate(wk->z, s), "no writeback runs");
			gen[i] = 0;
		}
	}
	return NULL;
}

static void threads(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	struct worker wk[4];
	pthread_t t[4];

	CHECK(z && !zswap_init(z, algo, SLOTS, 64UL << 20), "zswap_init");
	for (int i = 0; i < 4; i++) {
		wk[i] = (struct worker){z, (uint32_t)i * 1000, seed + (uint64_t)i};
		CHECK(!pthread_create(&t[i], NULL, worker, &wk[i]), "pthread_create");
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("%s: 4 threads x 20000 stores, loads and invalidations: every page right\n", name);
	zswap_destroy(z);
	free(z);
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_zswap");

	basics(ZS_LZ4, "lz4", seed);
	basics(ZS_ZSTD, "zstd", seed);
	full(ZS_LZ4, "lz4", seed);
	full(ZS_ZSTD, "zstd", seed);
	threads(ZS_LZ4, "lz4", seed);
	threads(ZS_ZSTD, "zstd", seed);
	printf("test_zswap: PASS\n");
	return T_EXIT_PASS;
}
