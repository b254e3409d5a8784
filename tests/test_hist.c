// SPDX-License-Identifier: MIT
/*
 * The latency histogram: percentiles against a sorted reference (within the
 * histogram's resolution, 1/16 of the value), and merging histograms of
 * several threads gives the same answers as one histogram of all values.
 */
#include "util.h"

#include <pthread.h>

#include "hist.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define N 100000
#define THREADS 4

static struct fl_hist per[THREADS], all;
static uint64_t vals[N];

static void *recorder(void *arg)
{
	size_t t = (size_t)arg;

	for (size_t i = t; i < N; i += THREADS)
		fl_hist_record(&per[t], vals[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	struct t_rng rng;
	uint64_t seed = t_seed_init(argc, argv, "test_hist");
	pthread_t th[THREADS];
	static struct fl_hist_snap merged, single, part;
	static const double qs[] = {0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1};

	t_rng_init(&rng, seed);
	/* Exact small values, then a heavy tail over nine decades. */
	for (size_t i = 0; i < N; i++) {
		if (i % 10 == 0)
			vals[i] = t_below(&rng, 16);
		else
			vals[i] = 1 + (uint64_t)(t_below(&rng, 1000) *
						 (double)(1ULL << t_below(&rng, 30)) / 7);
	}
	for (size_t t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, recorder, (void *)t);
	for (size_t i = 0; i < N; i++)
		fl_hist_record(&all, vals[i]);
	for (size_t t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);

	fl_hist_snap_add(&single, &all);
	for (size_t t = 0; t < THREADS; t++) {
		memset(&part, 0, sizeof(part));
		fl_hist_snap_add(&part, &per[t]);
		fl_hist_snap_merge(&merged, &part);
	}
	qsort(vals, N, sizeof(vals[0]), cmp_u64);
	CHECK(single.count == N && merged.count == N, "counts %llu %llu",
	      (unsigned long long)single.count, (unsigned long long)merged.count);
	CHECK(single.max == vals[N - 1] && merged.max == vals[N - 1], "max");
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t rank = (size_t)(qs[i] * N + 0.999999);
		uint64_t ref = vals[rank ? rank - 1 : 0];
		uint64_t got = fl_hist_percentile(&single, qs[i]);
		uint64_t got_m = fl_hist_percentile(&merged, qs[i]);
		/* Reported as the top of the reference's bucket: never below the
		 * true value, at most one bucket width (1/16) above it. */
		CHECK(got >= ref && got <= ref + ref / 16 + 1, "q=%g: %llu vs reference %llu",
		      qs[i], (unsigned long long)got, (unsigned long long)ref);
		CHECK(got == got_m, "q=%g: merged %llu, single %llu", qs[i],
		      (unsigned long long)got_m, (unsigned long long)got);
		printf("q=%-6g reference %12llu  histogram %12llu\n", qs[i],
		       (unsigned long long)ref, (unsigned long long)got);
	}
	/* Every bucket's bounds contain the values it is given. */
	for (size_t i = 0; i < N; i += 97) {
		unsigned int b = fl_hist_bucket_of(vals[i]);
		CHECK(fl_hist_bucket_low(b) <= vals[i] && vals[i] <= fl_hist_bucket_high(b),
		      "bucket %u [%llu, %llu] for %llu", b,
		      (unsigned long long)fl_hist_bucket_low(b),
		      (unsigned long long)fl_hist_bucket_high(b), (unsigned long long)vals[i]);
	}
	struct fl_hist_snap empty = {0};
	CHECK(fl_hist_percentile(&empty, 0.5) == 0, "empty histogram");
	return T_EXIT_PASS;
}
