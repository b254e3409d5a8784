/* SPDX-License-Identifier: MIT */
/*
 * Statistics counters.  FL_STATS_FIELDS (faultline.h) is the one list: it
 * generates the public struct, this enum and both printers (stats.c).
 *
 * Counters are striped by CPU so that two threads on two CPUs rarely share a
 * cache line; readers sum the stripes.  Only the counter kinds live here: the
 * gauges and percentiles are computed by fl_stats().  Relaxed atomics, no
 * lock: a reader may see a fault's counters a moment late.
 */
#ifndef FL_STATS_H
#define FL_STATS_H

#include "lib.h"

#include "hist.h"

enum fl_stat_item {
#define FL_STAT_ENUM_(name, kind, desc) FL_STAT_##name,
	FL_STATS_FIELDS(FL_STAT_ENUM_)
#undef FL_STAT_ENUM_
		FL_STAT_NR
};

#define FL_STAT_STRIPES 8

struct fl_stat_stripe {
	_Atomic uint64_t v[FL_STAT_NR];
	struct fl_hist fault_ns;
} __attribute__((aligned(64)));

struct fl_space;

/* The stripe of the calling thread's CPU. */
struct fl_stat_stripe *stat_stripe(struct fl_space *sp);
#define count_event(sp, item) count_event_n(sp, item, 1)
#define count_event_n(sp, item, n)                                                    \
	atomic_fetch_add_explicit(&stat_stripe(sp)->v[FL_STAT_##item], (uint64_t)(n), \
				  memory_order_relaxed)
/* The kernel's name for the four vma_lock_* counters. */
#define count_vm_vma_lock_event(sp, item) count_event(sp, item)

#endif /* FL_STATS_H */
