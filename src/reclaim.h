/* SPDX-License-Identifier: MIT */
/*
 * Reclaim (reclaim.c): keeps a space's memory (present pages plus frames
 * holding a page) under its budget.  The clock over page-table chunks,
 * batched eviction, kswapd (the background reclaimer), direct reclaim and
 * MADV_PAGEOUT.
 */
#ifndef FL_RECLAIM_H
#define FL_RECLAIM_H

#include "lib.h"

struct fl_space;
struct pt_chunk;

/* The chunks whose victims one zap takes (reclaim.c, struct zap_batch): the
 * evictor holds each one's VMA read lock until then. */
#define RECLAIM_ZAP_CHUNKS 16

/* Spare zap batches: how many direct reclaims may evict beside the holder
 * of reclaim_lock at once (reclaim.c, zap_spare_get()). */
#define RECLAIM_ZAP_SPARES 4

int reclaim_init(struct fl_space *sp);
void reclaim_destroy(struct fl_space *sp);
void reclaim_chunk_added(struct fl_space *sp, struct pt_chunk *c);
void reclaim_chunk_removed(struct fl_space *sp, struct pt_chunk *c);
void mem_reserve(struct fl_space *sp, unsigned long n);
long reclaim_pages(struct fl_space *sp, long want, bool direct);
int evict_range(struct fl_space *sp, unsigned long start, unsigned long end);

#endif /* FL_RECLAIM_H */
