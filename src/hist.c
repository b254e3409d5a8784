// SPDX-License-Identifier: MIT
/*
 * Latency histogram (see hist.h).
 *
 * Bucket layout: values below FL_HIST_SUB are exact (bucket = value).  Above,
 * a value with its highest bit at position p (p >= FL_HIST_SUB_BITS) goes to
 * group p - FL_HIST_SUB_BITS + 1, sub-bucket given by the FL_HIST_SUB_BITS bits
 * below the highest one.
 */
#include "hist.h"

unsigned int fl_hist_bucket_of(uint64_t v)
{
	if (v < FL_HIST_SUB)
		return (unsigned int)v;
	unsigned int p = 63 - (unsigned int)__builtin_clzll(v);
	unsigned int group = p - FL_HIST_SUB_BITS + 1;
	unsigned int sub = (unsigned int)(v >> (p - FL_HIST_SUB_BITS)) & (FL_HIST_SUB - 1);
	unsigned int b = group * FL_HIST_SUB + sub;

	return b < FL_HIST_BUCKETS ? b : FL_HIST_BUCKETS - 1;
}

uint64_t fl_hist_bucket_low(unsigned int b)
{
	unsigned int group = b / FL_HIST_SUB, sub = b % FL_HIST_SUB;

	if (group == 0)
		return sub;
	unsigned int p = group + FL_HIST_SUB_BITS - 1;
	return (1ULL << p) | ((uint64_t)sub << (p - FL_HIST_SUB_BITS));
}

uint64_t fl_hist_bucket_high(unsigned int b)
{
	unsigned int group = b / FL_HIST_SUB;

	if (group == 0)
		return b;
	unsigned int p = group + FL_HIST_SUB_BITS - 1;
	return fl_hist_bucket_low(b) + (1ULL << (p - FL_HIST_SUB_BITS)) - 1;
}

void fl_hist_record(struct fl_hist *h, uint64_t v)
{
	atomic_fetch_add_explicit(&h->bucket[fl_hist_bucket_of(v)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
	uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);
	while (v > m && !atomic_compare_exchange_weak_explicit(&h->max, &m, v, memory_order_relaxed,
							       memory_order_relaxed))
		;
}

void fl_hist_snap_add(struct fl_hist_snap *dst, const struct fl_hist *src)
{
	for (unsigned int i = 0; i < FL_HIST_BUCKETS; i++)
		dst->bucket[i] += atomic_load_explicit(&src->bucket[i], memory_order_relaxed);
	dst->count += atomic_load_explicit(&src->count, memory_order_relaxed);
	dst->sum += atomic_load_explicit(&src->sum, memory_order_relaxed);
	uint64_t m = atomic_load_explicit(&src->max, memory_order_relaxed);
	if (m > dst->max)
		dst->max = m;
}

void fl_hist_snap_merge(struct fl_hist_snap *dst, const struct fl_hist_snap *src)
{
	for (unsigned int i = 0; i < FL_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t fl_hist_percentile(const struct fl_hist_snap *s, double q)
{
	uint64_t total = 0, seen = 0;

	/* The bucket counts are read one by one while others record, so sum
	 * them rather than trusting s->count. */
	for (unsigned int i = 0; i < FL_HIST_BUCKETS; i++)
		total += s->bucket[i];
	if (!total)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned int i = 0; i < FL_HIST_BUCKETS; i++) {
		seen += s->bucket[i];
		if (seen >= rank) {
			uint64_t hi = fl_hist_bucket_high(i);
			return hi < s->max ? hi : s->max;
		}
	}
	return s->max;
}
