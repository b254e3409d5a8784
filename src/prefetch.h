/* SPDX-License-Identifier: MIT */
/*
 * Prefetch beyond sequential (prefetch.c): the streams of a VMA's major
 * faults, sequential, strided or interleaved, and how far to read ahead on
 * each.
 *
 * A stream is a run of faults a stride apart.  A fault where a stream was
 * expected to go on continues it, and its window doubles, as the kernel's
 * readahead grows its window.  Any other fault goes into a short history,
 * where a majority vote (Boyer-Moore) over the differences between
 * faults finds a trend, as Leap does ("Effectively Prefetching Remote
 * Memory with Leap", ATC 2020): over the last 4, 8, 16 and 32 faults, and
 * between each fault and the one 1, 2, 3 or 4 before it, so that up to four
 * interleaved streams (threads reading their own parts of one region) each
 * show their stride.  Streams of different strides split that vote; the
 * newest fault's own stream is then looked for among the others (four
 * faults on one lattice).  A trend starts a stream at the fault.  No trend, no
 * prefetch: purely random faults cost a vote over a few dozen numbers.
 *
 * The window is capped by how useful prefetching has been: pages read
 * ahead and then used, against pages reclaimed unused (pf_feedback()); the
 * cap halves when most go unused and doubles back when most are used.
 *
 * Locks: a struct pf_vma is guarded by its own lock (a leaf), taken by the
 * faults of its VMA; pf_feedback() touches only atomics.
 */
#ifndef FL_PREFETCH_H
#define FL_PREFETCH_H

#include "lib.h"

#define PF_HISTORY 32
#define PF_STREAMS 4
#define PF_MAX_LAG 4
#define PF_MAX_STRIDE 1024 /* pages: a trend further apart is no trend */

struct pf_stream {
	long next;	     /* the page where its next fault is expected */
	long stride;	     /* pages between its faults; 0: an empty slot */
	unsigned int window; /* pages read ahead at its last fault */
	uint64_t used;	     /* pf_vma.clock when it last went on */
};

struct pf_vma {
	pthread_mutex_t lock;  /* a leaf: the fields below */
	long hist[PF_HISTORY]; /* the last faults no stream explained */
	unsigned int nhist, head;
	struct pf_stream s[PF_STREAMS];
	uint64_t clock;
};

/* Pages read ahead and used, and read ahead and reclaimed unused, since
 * the cap was last set; the cap itself.  Per space. */
struct pf_feedback {
	_Atomic uint64_t used, wasted;
	_Atomic unsigned int cap; /* the most pages one prefetch reads */
	unsigned int max;	  /* cfg.fault_around_max */
};

/* What to read ahead after a fault: count pages from start, stride apart. */
struct pf_plan {
	long start, stride;
	unsigned int count;
};

void pf_vma_init(struct pf_vma *p);
void pf_vma_destroy(struct pf_vma *p);
void pf_feedback_init(struct pf_feedback *fb, unsigned int max);
bool pf_on_fault(struct pf_vma *p, struct pf_feedback *fb, long page, struct pf_plan *plan);
void pf_feedback(struct pf_feedback *fb, unsigned int used, unsigned int wasted);
bool pf_trend(const long *hist, unsigned int n, long *stride);

#endif /* FL_PREFETCH_H */
