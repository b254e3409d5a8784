/* SPDX-License-Identifier: MIT */
/*
 * Swap (swap.c): frames, the swap cache, I/O completion, readahead.
 *
 * A frame is a page-sized buffer for a page under I/O or in the swap cache:
 * a page whose entry is PTE_FRAME.  A frame backs at most one page.
 *
 *   - Unbound (allocated, not yet named by an entry), a frame is its
 *     allocator's alone: no lock.
 *   - The binding (the PTE_FRAME entry, addr, chunk) is made under the
 *     page's ptl and undone (frame_detach) under that ptl and f->lock;
 *     addr, chunk, stamp and slot may be read under either.
 *   - flags, waiters, pins, owns_slot: f->lock, which nests inside the ptl.
 *   - slot: written under the ptl and f->lock.
 *
 * Lifetime: a frame is freed once it backs no page (never bound, or
 * DETACHED), has no I/O in flight and no pins or waiters, by whoever makes
 * the last of those true.  Slots: a slot belongs to exactly one of a PTE
 * (SWAP, or PRESENT|WP) or a frame (owns_slot); whoever frees its owner
 * frees the slot.
 */
#ifndef FL_SWAP_H
#define FL_SWAP_H

#include "lib.h"
#include "pgtable.h"
#include "swapdev.h"

#define FRAME_LOCKED 0x01    /* a read is in flight */
#define FRAME_UPTODATE 0x02  /* buf holds the page */
#define FRAME_WRITEBACK 0x04 /* a write is in flight */
#define FRAME_ERROR 0x08     /* the read failed */
#define FRAME_FROM_READ 0x10 /* filled by a read (wasted-read accounting) */
#define FRAME_USED 0x20	     /* a fault installed it */
#define FRAME_DETACHED 0x40  /* its page went away while I/O was in flight */
#define FRAME_WERROR 0x80    /* the write failed: kept until a fault takes it */
/* Read back within its refault distance: the page left fewer evictions ago
 * than the budget holds pages, so it was evicted too early (the kernel's
 * workingset_refault()).  Whoever reads it, fault or readahead, the fault
 * that installs it gives it extra passes of the clock (PTE_HOT). */
#define FRAME_HOT 0x100
/* Read ahead by a fault's prefetch (a stream or a trend), not asked for by
 * a fault or MADV_WILLNEED: used or wasted, it tells the prefetch window
 * (prefetch.h's feedback). */
#define FRAME_PREFETCH 0x200

struct waiter;

struct frame {
	struct swap_io io; /* first: the completion callback finds the frame */
	struct fl_space *sp;
	pthread_mutex_t lock;	/* nests inside the ptl */
	bool owns_slot;		/* f->lock: the slot is freed with the frame */
	uint32_t flags;		/* f->lock */
	uint32_t slot;		/* ptl and f->lock */
	unsigned long addr;	/* binding: the page it backs */
	struct pt_chunk *chunk; /* binding: that page's chunk */
	struct waiter *waiters; /* f->lock: faults parked or sleeping on it */
	int pins;		/* f->lock: parked or installing faults */
	uint32_t stamp;		/* set before binding: the eviction stamp */
	void *buf;
	/* Encryption: the ciphertext of buf goes here for its write, so that
	 * buf stays the page while the write is in flight (a fault may
	 * install it then).  NULL without encryption. */
	void *bounce;
	struct frame *next_free; /* frame_lock */
};

#define frame_of(sp, pte) (&(sp)->frames[pte_value(pte)])
#define frame_index(sp, f) ((uint32_t)((f) - (sp)->frames))

struct fl_space;

int swap_init(struct fl_space *sp);
void swap_destroy(struct fl_space *sp);
long mem_used(struct fl_space *sp);
struct frame *frame_alloc(struct fl_space *sp);
void frame_free(struct fl_space *sp, struct frame *f);
void frame_unpin(struct fl_space *sp, struct frame *f);
void frame_detach(struct fl_space *sp, struct frame *f);
struct frame *swap_cache_add(struct fl_space *sp, struct pt_chunk *c, unsigned long addr,
			     uint64_t pte);
void pte_release(struct fl_space *sp, struct pt_chunk *c, unsigned long addr);
void swap_read_done(struct swap_io *io, int res);
void swap_write_done(struct swap_io *io, int res);
void swap_seal_write(struct fl_space *sp, struct frame *f);
bool swap_tier_write(struct fl_space *sp, struct frame *f, struct swap_posts *posts);
void swap_read_start(struct fl_space *sp, struct frame *f);
bool swap_read_tier(struct fl_space *sp, struct frame *f);
int swap_read_page(struct fl_space *sp, struct frame *f);
unsigned long swap_readahead(struct fl_space *sp, unsigned long start, unsigned long end);
unsigned long swap_prefetch(struct fl_space *sp, unsigned long start, unsigned long end);
void swap_prefetch_used(struct fl_space *sp, struct frame *f);
void swap_prefetch_wasted(struct fl_space *sp, struct frame *f);
void swap_deactivate(struct fl_space *sp, unsigned long start, unsigned long end);

/*
 * A vectored I/O of consecutive slots from several frames: eviction's
 * writes (eviction allots a batch consecutive slots) and readahead's reads.
 * From a per-space pool (no malloc: eviction also runs in the SIGBUS
 * handler).
 */
struct io_batch {
	struct swap_io io; /* first: the completion finds the batch */
	struct fl_space *sp;
	unsigned int n;
	struct frame *f[PT_CHUNK_PAGES];
	struct iovec iov[PT_CHUNK_PAGES];
	struct io_batch *next_free; /* batch_lock */
};
#define IO_BATCHES 64

struct io_batch *batch_get(struct fl_space *sp);
void batch_put(struct fl_space *sp, struct io_batch *b);

#endif /* FL_SWAP_H */
