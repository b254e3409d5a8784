// SPDX-License-Identifier: MIT
/*
 * The prefetcher's decisions, on recorded access patterns and with no
 * userfaultfd: a simulated reader faults on every page that is not yet in,
 * and whatever a plan reads ahead is in.  Sequential, strided (forward and
 * backward) and interleaved streams (2-4 readers taking turns) must be found
 * and cost a small fraction of one fault per page; purely random access
 * must never make a plan (nothing read that is not asked for); and the cap
 * on the window follows how many prefetched pages are used.
 */
#define _GNU_SOURCE
#include <stdbool.h>

#include "util.h"

#include "prefetch.h"

#define NPAGES (1L << 16)

struct sim {
	struct pf_vma p;
	struct pf_feedback fb;
	unsigned char in[NPAGES];
	long majors, plans, prefetched;
};

static void sim_init(struct sim *s)
{
	memset(s->in, 0, sizeof(s->in));
	pf_vma_init(&s->p);
	pf_feedback_init(&s->fb, 256);
	s->majors = s->plans = s->prefetched = 0;
}

static void touch(struct sim *s, long page)
{
	struct pf_plan plan;

	CHECK(page >= 0 && page < NPAGES, "page %ld", page);
	if (s->in[page])
		return;
	s->majors++;
	s->in[page] = 1;
	if (!pf_on_fault(&s->p, &s->fb, page, &plan))
		return;
	s->plans++;
	CHECK(plan.count >= 1 && plan.count <= 256, "plan of %u pages", plan.count);
	for (unsigned int j = 0; j < plan.count; j++) {
		long a = plan.start + (long)j * plan.stride;
		if (a >= 0 && a < NPAGES && !s->in[a]) {
			s->in[a] = 1;
			s->prefetched++;
		}
	}
}

/* T readers taking turns, each n pages from its base, stride apart. */
static void streams(const char *what, unsigned int t, long stride, long n, double max_per_page)
{
	struct sim *s = calloc(1, sizeof(*s));
	long base[4];

	CHECK(s, "calloc");
	sim_init(s);
	for (unsigned int i = 0; i < t; i++)
		base[i] = stride > 0 ? (long)i * (NPAGES / 4) : (long)(i + 1) * (NPAGES / 4) - 1;
	for (long k = 0; k < n; k++)
		for (unsigned int i = 0; i < t; i++)
			touch(s, base[i] + k * stride);
	double per_page = (double)s->majors / (double)(n * t);
	printf("%-34s %6ld pages: %5ld faults (%.3f a page), %ld plans, %ld read ahead\n", what,
	       n * t, s->majors, per_page, s->plans, s->prefetched);
	CHECK(per_page <= max_per_page, "%s: %.3f faults a page, want at most %.3f", what, per_page,
	      max_per_page);
	pf_vma_destroy(&s->p);
	free(s);
}

/*
 * Streams of different strides taking turns: nstreams readers, reader i
 * n pages from its base, step[i] apart; in turn, or (irregular) each
 * turn to a random reader, as threads are scheduled.
 */
static void mixed(const char *what, unsigned int nstreams, const long *step, long n, bool irregular,
		  struct t_rng *r, double max_per_page)
{
	struct sim *s = calloc(1, sizeof(*s));
	long k[4] = {0, 0, 0, 0}, total = 0;

	CHECK(s, "calloc");
	sim_init(s);
	while (total < n * (long)nstreams) {
		unsigned int i = irregular ? (unsigned int)t_below(r, nstreams)
					   : (unsigned int)(total % nstreams);
		long base = step[i] > 0 ? (long)i * (NPAGES / 4) : (long)(i + 1) * (NPAGES / 4) - 1;
		if (k[i] >= n)
			continue;
		touch(s, base + k[i]++ * step[i]);
		total++;
	}
	double per_page = (double)s->majors / (double)total;
	printf("%-34s %6ld pages: %5ld faults (%.3f a page), %ld plans, %ld read ahead\n", what,
	       total, s->majors, per_page, s->plans, s->prefetched);
	CHECK(per_page <= max_per_page, "%s: %.3f faults a page, want at most %.3f", what, per_page,
	      max_per_page);
	pf_vma_destroy(&s->p);
	free(s);
}

static void test_trend(void)
{
	long h[PF_HISTORY], d;

	for (int i = 0; i < 8; i++)
		h[i] = 100 + 3 * i;
	CHECK(pf_trend(h, 8, &d) && d == 3, "stride 3: %ld", d);
	for (int i = 0; i < 8; i++)
		h[i] = 5000 - 2 * i;
	CHECK(pf_trend(h, 8, &d) && d == -2, "stride -2: %ld", d);
	for (int i = 0; i < 8; i++) /* two readers, stride 1, taking turns */
		h[i] = (i % 2 ? 20000 : 100) + i / 2;
	CHECK(pf_trend(h, 8, &d) && d == 1, "two interleaved: %ld", d);
	for (int i = 0; i < 16; i++) /* three readers, stride 5 */
		h[i] = (i % 3) * 9000 + 5 * (i / 3);
	CHECK(pf_trend(h, 16, &d) && d == 5, "three interleaved: %ld", d);
	for (int i = 0; i < 8; i++) /* strides 3 and 5 in turn: the vote is split */
		h[i] = i % 2 ? 30000 + 5 * (i / 2) : 100 + 3 * (i / 2);
	CHECK(pf_trend(h, 8, &d) && d == 5, "strides 3 and 5, newest on 5: %ld", d);
	CHECK(pf_trend(h, 7, &d) && d == 3, "strides 3 and 5, newest on 3: %ld", d);
	{
		/* Three streams, strides 2, -7 and 11, taking irregular turns. */
		static const int turn[] = {0, 0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 2, 0, 1, 1, 2};
		static const long base[] = {500, 40000, 9000}, step[] = {2, -7, 11};
		int k[3] = {0, 0, 0};
		for (int i = 0; i < 16; i++)
			h[i] = base[turn[i]] + step[turn[i]] * k[turn[i]]++;
		CHECK(pf_trend(h, 16, &d) && d == 11, "irregular turns, newest on 11: %ld", d);
		CHECK(pf_trend(h, 15, &d) && d == -7, "irregular turns, newest on -7: %ld", d);
	}
	for (int i = 0; i < 8; i++)
		h[i] = 42;
	CHECK(!pf_trend(h, 8, &d), "the same page again is no trend");
	for (int i = 0; i < 8; i++)
		h[i] = 10 + 5000 * i;
	CHECK(!pf_trend(h, 8, &d), "a stride over PF_MAX_STRIDE is no trend");
	h[0] = 1, h[1] = 2, h[2] = 3;
	CHECK(!pf_trend(h, 3, &d), "three faults are too few");
	/* A full history of far-apart faults ending in four on stride 7: the
	 * three differences that make the trend are the only near ones. */
	for (int i = 0; i < PF_HISTORY; i++)
		h[i] = 100000L * (i % 2 ? i : PF_HISTORY - i);
	for (int i = 0; i < 4; i++)
		h[PF_HISTORY - 4 + i] = 7000000 + 7 * i;
	CHECK(pf_trend(h, PF_HISTORY, &d) && d == 7, "a trend in the last four of noise: %ld", d);
	h[PF_HISTORY - 1] = 9000000; /* two near differences: no trend */
	CHECK(!pf_trend(h, PF_HISTORY, &d), "two agreeing differences are no trend");
	printf("trends: strides 3 and -2, 2 and 3 interleaved streams, interleaved streams of "
	       "different strides found; none in noise\n");
}

static void test_random(struct t_rng *r)
{
	struct sim *s = calloc(1, sizeof(*s));
	long trends = 0;

	CHECK(s, "calloc");
	sim_init(s);
	for (long k = 0; k < NPAGES / 2; k++)
		touch(s, (long)t_below(r, NPAGES));
	/* Random histories: a trend found by chance. */
	for (int k = 0; k < 10000; k++) {
		long h[PF_HISTORY], d;
		for (int i = 0; i < PF_HISTORY; i++)
			h[i] = (long)t_below(r, NPAGES);
		trends += pf_trend(h, PF_HISTORY, &d);
	}
	printf("random: %ld faults, %ld plans, %ld pages read ahead; chance trends %ld in 10000\n",
	       s->majors, s->plans, s->prefetched, trends);
	/* A page that follows the previous fault by one is sequential by rule:
	 * random access meets that about once in NPAGES. */
	CHECK(s->prefetched <= 16 * 8, "random access read %ld pages ahead", s->prefetched);
	CHECK(trends == 0, "%ld random histories showed a trend", trends);
	pf_vma_destroy(&s->p);
	free(s);
}

static void test_feedback(void)
{
	struct pf_feedback fb;

	pf_feedback_init(&fb, 256);
	for (int i = 0; i < 4; i++)
		pf_feedback(&fb, 10, 300);
	CHECK(atomic_load(&fb.cap) < 256, "cap %u after mostly waste", atomic_load(&fb.cap));
	unsigned int low = atomic_load(&fb.cap);
	for (int i = 0; i < 40; i++)
		pf_feedback(&fb, 300, 1);
	CHECK(atomic_load(&fb.cap) == 256, "cap %u after mostly use (was %u)", atomic_load(&fb.cap),
	      low);
	printf("feedback: the cap went down to %u on waste and back up to 256 on use\n", low);
}

int main(int argc, char **argv)
{
	struct t_rng r;

	t_rng_init(&r, t_seed_init(argc, argv, "test_prefetch"));
	test_trend();
	streams("sequential", 1, 1, 8192, 0.01);
	streams("strided, 7 pages apart", 1, 7, 4096, 0.05);
	streams("strided backwards, 3 apart", 1, -3, 4096, 0.05);
	streams("2 sequential readers in turn", 2, 1, 4096, 0.05);
	streams("4 readers in turn, 5 apart", 4, 5, 2048, 0.10);
	{
		static const long two[] = {3, 5}, three[] = {2, -7, 11};
		mixed("strides 3 and 5 in turn", 2, two, 2048, false, &r, 0.10);
		mixed("strides 2, -7, 11, irregular turns", 3, three, 1024, true, &r, 0.10);
	}
	test_random(&r);
	test_feedback();
	printf("test_prefetch: PASS\n");
	return T_EXIT_PASS;
}
