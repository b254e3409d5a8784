// SPDX-License-Identifier: MIT
/*
 * Prefetch beyond sequential (prefetch.c's trend detection in swap
 * readahead), on a region paged out whole, under both deliveries:
 *
 *   - a strided reader (every third page) is found out after a few faults
 *     and then mostly served from pages read ahead: far fewer major faults
 *     than pages, and prefetch_used counts them;
 *   - two interleaved strided streams (one thread alternating between
 *     them, as two threads scanning columns would), of one stride or of
 *     strides 3 and 5, likewise;
 *   - a random reader finds no trend: almost nothing is read ahead;
 *   - bursts of a few strided faults that then go elsewhere, under memory
 *     pressure: what was read ahead is reclaimed unused, prefetch_wasted
 *     counts it, and the window shrinks below its maximum.
 * Every word read is checked.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "util.h"

#define PG 4096UL
#define NPAGES 8192

static struct fl_space *sp;
static uint64_t *p;

static uint64_t word(size_t page)
{
	uint64_t x = page * 0x9E3779B97F4A7C15ULL;

	return t_splitmix64(&x);
}

static void touch(size_t page)
{
	uint64_t v = p[page * PG / 8 + page % (PG / 8)];

	CHECK(v == word(page), "page %zu: %#llx, expected %#llx", page, (unsigned long long)v,
	      (unsigned long long)word(page));
}

static void setup(int delivery, size_t budget)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = budget;
	sp = t_space_create_cfg(&cfg);
	p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < NPAGES; i++)
		for (size_t w = 0; w < PG / 8; w++)
			p[i * PG / 8 + w] = w == i % (PG / 8) ? word(i) : i;
	CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout: %s", strerror(errno));
}

static void stats(struct fl_stats *st)
{
	CHECK(fl_stats(sp, st) == 0, "fl_stats");
}

#define D(a, b, f) ((unsigned long long)((b).f - (a).f))

static void strided(int delivery)
{
	struct fl_stats a, b;
	size_t n = 0;

	setup(delivery, 256UL << 20);
	stats(&a);
	for (size_t i = 0; i < NPAGES; i += 3, n++)
		touch(i);
	stats(&b);
	printf("%s, stride 3: %zu pages read, %llu major faults, prefetch used %llu wasted %llu\n",
	       t_delivery_name(delivery), n, D(a, b, faults_major), D(a, b, prefetch_used),
	       D(a, b, prefetch_wasted));
	CHECK(D(a, b, faults_major) <= n / 4, "%llu major faults for %zu strided pages",
	      D(a, b, faults_major), n);
	CHECK(D(a, b, prefetch_used) >= n / 2, "only %llu prefetched pages used",
	      D(a, b, prefetch_used));
	fl_space_destroy(sp);
}

/* Two streams, interleaved: from two places, stride 5 both, or strides 3
 * and 5 (which split the vote: each is found on its own lattice). */
static void interleaved(int delivery, size_t s1)
{
	struct fl_stats a, b;
	size_t n = 0;

	setup(delivery, 256UL << 20);
	stats(&a);
	for (size_t k = 0; k < 500; k++, n += 2) {
		touch(1 + s1 * k);
		touch(4000 + 5 * k);
	}
	stats(&b);
	printf("%s, two interleaved streams, strides %zu and 5: %zu pages read, %llu major faults, "
	       "prefetch used %llu\n",
	       t_delivery_name(delivery), s1, n, D(a, b, faults_major), D(a, b, prefetch_used));
	CHECK(D(a, b, faults_major) <= n / 3, "%llu major faults for %zu pages of two streams",
	      D(a, b, faults_major), n);
	fl_space_destroy(sp);
}

static void random_reads(int delivery)
{
	struct t_rng rng;
	struct fl_stats a, b;
	size_t n = 2000;

	t_rng_init(&rng, *t_seed_ptr());
	setup(delivery, 256UL << 20);
	stats(&a);
	for (size_t k = 0; k < n; k++)
		touch(t_below(&rng, NPAGES));
	stats(&b);
	unsigned long long ahead = D(a, b, swap_ins) - D(a, b, faults_major);
	printf("%s, random: %zu reads, %llu major faults, %llu pages read ahead\n",
	       t_delivery_name(delivery), n, D(a, b, faults_major), ahead);
	CHECK(ahead <= n / 20, "%llu pages read ahead for %zu random reads", ahead, n);
	fl_space_destroy(sp);
}

static void bursts(void)
{
	struct t_rng rng;
	struct fl_stats a, b;

	t_rng_init(&rng, *t_seed_ptr() ^ 1);
	setup(FL_DELIVERY_THREAD, 1UL << 20);
	stats(&a);
	for (int k = 0; k < 400; k++) {
		size_t s = t_below(&rng, NPAGES - 64);
		/* The trend is found at the fourth fault, which reads four
		 * pages ahead, and the burst goes elsewhere. */
		for (size_t j = 0; j < 4; j++)
			touch(s + 2 * j);
	}
	stats(&b);
	printf("bursts under pressure: %llu major faults, prefetch used %llu wasted %llu, window "
	       "%llu (of 256)\n",
	       D(a, b, faults_major), D(a, b, prefetch_used), D(a, b, prefetch_wasted),
	       (unsigned long long)b.prefetch_window);
	CHECK(D(a, b, prefetch_wasted) > 0, "nothing read ahead was wasted");
	CHECK(b.prefetch_window < 256, "the window did not shrink: %llu",
	      (unsigned long long)b.prefetch_window);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_swap_prefetch");
	for (int d = 0; d < 2; d++) {
		strided(d);
		interleaved(d, 5);
		interleaved(d, 3);
		random_reads(d);
	}
	bursts();
	return T_EXIT_PASS;
}
