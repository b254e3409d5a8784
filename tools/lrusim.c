// SPDX-License-Identifier: MIT
/*
 * lrusim: how close faultline's victim choice comes to exact LRU, on a
 * recorded page-access trace.  Not a test; the figures are in BENCHMARKS.md.
 *
 * faultline reclaims by CLOCK (second chance) over fault-time references:
 * user space cannot read the page table's accessed bits, so a page's
 * reference bit is set only when a fault installs it, and cleared when the
 * hand passes (src/reclaim.c).  This tool replays one trace through:
 *
 *   lru          exact LRU (the reference: hit rate 1.00x)
 *   fl-clock     faultline's rule: reference bit set on a miss only
 *   clock        classic CLOCK, reference bit set on every access (what the
 *                kernel's hardware accessed bits give it)
 *   fifo         first in, first out (the floor)
 *
 * The trace is generated (seeded) and written with --record FILE, or read
 * with --trace FILE: 32-bit page numbers, native endian.  The default
 * workload mixes a skewed hot set (Zipf-like, s = 1) with periodic sequential
 * scans of cold pages, the pattern that separates LRU approximations.
 *
 *   lrusim [--pages N] [--capacity C] [--accesses A] [--seed S]
 *          [--scan-every K] [--scan-len L] [--record FILE | --trace FILE]
 */
#define _GNU_SOURCE
#define TOOL "lrusim"
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolbox.h"

static uint64_t rng_state;

static double unif(void)
{
	return (double)(splitmix64(&rng_state) >> 11) / 9007199254740992.0;
}

/*
 * A Zipf-like (s = 1) rank in [0, n): the harmonic CDF H(k)/H(n) inverted
 * with H(k) ~ ln k + 0.5772 (the first rank gets a little less than its
 * exact share).
 */
static uint32_t zipf(uint32_t n, double hn)
{
	double k = exp(unif() * hn - 0.5772156649);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (uint32_t)k - 1;
}

struct sim {
	const char *name;
	uint32_t npages, cap, used;
	uint8_t *resident, *ref;
	uint32_t *ring; /* clock/fifo ring of resident pages */
	uint32_t hand;
	/* exact LRU: an intrusive list over page numbers */
	uint32_t *prev, *next, head, tail;
	uint64_t hits, misses;
	int kind;	      /* 0 lru, 1 fl-clock, 2 clock, 3 fifo, 4 fl-refault */
	uint64_t *evicted_at; /* fl-refault: the eviction count when it left */
	uint64_t evictions;
};

#define NIL UINT32_MAX

static void sim_init(struct sim *s, const char *name, int kind, uint32_t npages, uint32_t cap)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->kind = kind;
	s->npages = npages;
	s->cap = cap;
	s->resident = calloc(npages, 1);
	s->ref = calloc(npages, 1);
	s->ring = calloc(cap, sizeof(uint32_t));
	s->prev = malloc(npages * sizeof(uint32_t));
	s->next = malloc(npages * sizeof(uint32_t));
	s->head = s->tail = NIL;
	s->evicted_at = calloc(npages, sizeof(uint64_t));
	if (!s->evicted_at || !s->resident || !s->ref || !s->ring || !s->prev || !s->next) {
		perror("lrusim");
		exit(1);
	}
}

static void lru_unlink(struct sim *s, uint32_t p)
{
	if (s->prev[p] != NIL)
		s->next[s->prev[p]] = s->next[p];
	else
		s->head = s->next[p];
	if (s->next[p] != NIL)
		s->prev[s->next[p]] = s->prev[p];
	else
		s->tail = s->prev[p];
}

static void lru_push_front(struct sim *s, uint32_t p)
{
	s->prev[p] = NIL;
	s->next[p] = s->head;
	if (s->head != NIL)
		s->prev[s->head] = p;
	s->head = p;
	if (s->tail == NIL)
		s->tail = p;
}

static void access_page(struct sim *s, uint32_t p)
{
	if (s->resident[p]) {
		s->hits++;
		if (s->kind == 0) {
			lru_unlink(s, p);
			lru_push_front(s, p);
		} else if (s->kind == 2) {
			s->ref[p] = 1; /* hardware accessed bit */
		}
		return;
	}
	s->misses++;
	if (s->kind == 0) {
		if (s->used == s->cap) {
			uint32_t v = s->tail;
			lru_unlink(s, v);
			s->resident[v] = 0;
			s->used--;
		}
		lru_push_front(s, p);
		s->resident[p] = 1;
		s->used++;
		return;
	}
	/* ring-based: clock variants and fifo */
	if (s->used < s->cap) {
		s->ring[s->used++] = p;
	} else {
		for (;;) {
			uint32_t v = s->ring[s->hand];
			if (s->kind != 3 && s->ref[v]) {
				s->ref[v]--; /* second chance (or more) */
				s->hand = (s->hand + 1) % s->cap;
				continue;
			}
			s->resident[v] = 0;
			s->evicted_at[v] = ++s->evictions;
			s->ring[s->hand] = p;
			s->hand = (s->hand + 1) % s->cap;
			break;
		}
	}
	s->resident[p] = 1;
	/* fl-clock and clock: the fault that installs it references it. */
	s->ref[p] = s->kind != 3;
	/*
	 * fl-refault: a page that comes back within fewer evictions than the
	 * capacity was evicted too early (the kernel's workingset refault
	 * distance): it gets more passes of the hand.
	 */
	if (s->kind == 4 && s->evicted_at[p] && s->evictions - s->evicted_at[p] < s->cap)
		s->ref[p] = 3;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: lrusim [--pages N] [--capacity C] [--accesses A] [--seed S]\n"
		"              [--scan-every K] [--scan-len L] [--record FILE | --trace FILE]\n");
}

/* The options (parse_options()): name, key, argument, what it does. */
#define LRUSIM_OPTIONS(X)                                                               \
	X("pages", 'n', required_argument, npages = (uint32_t)strtoul(optarg, NULL, 0)) \
	X("capacity", 'c', required_argument, cap = (uint32_t)strtoul(optarg, NULL, 0)) \
	X("accesses", 'a', required_argument, naccess = strtoull(optarg, NULL, 0))      \
	X("seed", 's', required_argument, seed = strtoull(optarg, NULL, 0))             \
	X("scan-every", 'k', required_argument, scan_every = strtoull(optarg, NULL, 0)) \
	X("scan-len", 'l', required_argument, scan_len = strtoull(optarg, NULL, 0))     \
	X("record", 'r', required_argument, record = optarg)                            \
	X("trace", 't', required_argument, trace = optarg)

int main(int argc, char **argv)
{
	uint32_t npages = 262144, cap = 65536; /* 1 GiB region, 256 MiB budget */
	uint64_t naccess = 20000000, seed = 1, scan_every = 2000000, scan_len = 32768;
	const char *record = NULL, *trace = NULL;
	uint32_t *tr;

	parse_options(LRUSIM_OPTIONS, argc, argv, usage);
	if (!npages || !cap || cap > npages) {
		fprintf(stderr, "lrusim: need 0 < capacity <= pages\n");
		return 2;
	}
	if (trace) {
		FILE *f = fopen(trace, "rb");
		if (!f) {
			perror(trace);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		naccess = (uint64_t)ftell(f) / sizeof(uint32_t);
		rewind(f);
		tr = malloc(naccess * sizeof(uint32_t));
		if (!tr || fread(tr, sizeof(uint32_t), naccess, f) != naccess) {
			fprintf(stderr, "lrusim: cannot read %s\n", trace);
			return 1;
		}
		fclose(f);
		for (uint64_t i = 0; i < naccess; i++)
			if (tr[i] >= npages) {
				fprintf(stderr, "lrusim: page %u in the trace >= --pages\n", tr[i]);
				return 1;
			}
	} else {
		double hn = log((double)npages) + 0.5772156649;
		/* The hot set's ranks are scattered over the region. */
		uint32_t mult = 2654435761u;
		rng_state = seed;
		tr = malloc(naccess * sizeof(uint32_t));
		if (!tr) {
			perror("lrusim");
			return 1;
		}
		uint64_t scan_pos = 0;
		for (uint64_t i = 0; i < naccess; i++) {
			if (scan_every && i % scan_every < scan_len) {
				/* A sequential scan of cold pages. */
				tr[i] = (uint32_t)((npages / 2 + scan_pos++) % npages);
				continue;
			}
			tr[i] = (uint32_t)(((uint64_t)zipf(npages, hn) * mult) % npages);
		}
		if (record) {
			FILE *f = fopen(record, "wb");
			if (!f || fwrite(tr, sizeof(uint32_t), naccess, f) != naccess ||
			    fclose(f)) {
				perror(record);
				return 1;
			}
		}
	}

	struct sim sims[5];
	sim_init(&sims[0], "lru", 0, npages, cap);
	sim_init(&sims[1], "fl-clock", 1, npages, cap);
	sim_init(&sims[2], "clock", 2, npages, cap);
	sim_init(&sims[3], "fifo", 3, npages, cap);
	sim_init(&sims[4], "fl-refault", 4, npages, cap);
	for (int k = 0; k < 5; k++)
		for (uint64_t i = 0; i < naccess; i++)
			access_page(&sims[k], tr[i]);

	double lru = (double)sims[0].hits / (double)naccess;
	printf("lrusim: %llu accesses over %u pages, capacity %u (%s)\n",
	       (unsigned long long)naccess, npages, cap, trace ? trace : "generated");
	printf("%-9s %10s %10s %12s\n", "policy", "hit rate", "vs LRU", "misses");
	for (int k = 0; k < 5; k++) {
		double h = (double)sims[k].hits / (double)naccess;
		printf("%-9s %10.4f %9.3fx %12llu\n", sims[k].name, h, lru > 0 ? h / lru : 0,
		       (unsigned long long)sims[k].misses);
		printf("BENCH name=lrusim.%s value=%.4f unit=hit_rate ratio=%.3f "
		       "anchor=lrusim.lru\n",
		       sims[k].name, h, lru > 0 ? h / lru : 0);
	}
	return 0;
}
