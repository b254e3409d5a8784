/* SPDX-License-Identifier: MIT */
/*
 * A log-linear latency histogram, in the manner of HdrHistogram: 16 buckets
 * per power of two, so a percentile is exact to within 1/16 (6.25 %) of its
 * value.  Recording is wait-free (relaxed atomic adds); histograms of several
 * threads merge by adding buckets.
 */
#ifndef FL_HIST_H
#define FL_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define FL_HIST_SUB_BITS 4
#define FL_HIST_SUB (1u << FL_HIST_SUB_BITS)
#define FL_HIST_POWERS 48 /* values up to 2^48 ns (~3 days) */
#define FL_HIST_BUCKETS (FL_HIST_POWERS * FL_HIST_SUB)

struct fl_hist {
	_Atomic uint64_t bucket[FL_HIST_BUCKETS];
	_Atomic uint64_t count;
	_Atomic uint64_t sum;
	_Atomic uint64_t max;
};

/* A plain (non-atomic) copy for reading and merging. */
struct fl_hist_snap {
	uint64_t bucket[FL_HIST_BUCKETS];
	uint64_t count, sum, max;
};

unsigned int fl_hist_bucket_of(uint64_t v);
uint64_t fl_hist_bucket_low(unsigned int b);
uint64_t fl_hist_bucket_high(unsigned int b);
void fl_hist_record(struct fl_hist *h, uint64_t v);
void fl_hist_snap_add(struct fl_hist_snap *dst, const struct fl_hist *src);
void fl_hist_snap_merge(struct fl_hist_snap *dst, const struct fl_hist_snap *src);
/* q in [0, 1]: the smallest recorded value bound v such that at least
 * q * count values are <= v, reported as the high end of its bucket (never
 * above max).  0 when empty. */
uint64_t fl_hist_percentile(const struct fl_hist_snap *s, double q);

#endif
