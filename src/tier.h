/* SPDX-License-Identifier: MIT */
/*
 * The compressed tier of a space (tier.c): zswap.c's compressed pages in
 * front of the store, wired into the swap path where the kernel wires its
 * zswap, in the page I/O of the swap layer (mm/page_io.c: swap_writepage()
 * tries zswap_store() before the block layer, swap_read_folio() tries
 * zswap_load() before it), not as a backend under it.  So it sits in front
 * of any backend (swapdev.h): a store of a page that compresses keeps it in
 * memory and needs no I/O, and a fault on such a page decompresses it
 * without I/O, also in the SIGBUS handler.
 *
 *   write  reclaim's submit_writes() offers each dirty page of an eviction
 *          (tier_store()); a page taken is complete at once: its write is
 *          posted to the completion thread, which runs the same
 *          swap_write_done() as for a store write.  Same-filled pages keep
 *          their word, a page that does not compress into the pool's
 *          largest object is refused, and so is any page while the pool is
 *          over 95 % of its size:
 *          refused pages are sealed and written to the store, as without
 *          the tier.
 *   read   every read of a slot asks the tier first (tier_load()): a
 *          fault's in swap_read_tier(), under the ptl, completing its frame
 *          there; readahead's and prefetch's in submit_reads(), posted to
 *          the completion thread.  A hit is the page, decompressed; a miss
 *          goes to the store.  A page that does not decompress is lost
 *          (poisoned, as after a failed read); writeback skips it (ZS_BAD).
 *   free   a slot freed frees its compressed copy (swap_dev.slot_freeing).
 *
 * Slots: a page in the tier keeps the store slot it was given at eviction,
 * as the kernel's zswap keeps its swap entry; the slot's bytes on the store
 * are unused until the page is written back there.
 *
 * Writeback: a worker (fl-zswap) keeps the pool under WB_LOW_PCT percent of
 * its size by writing the coldest pages to the store, decompressed and then
 * sealed like any other page: the store then holds plain pages, so that a
 * read from it needs nothing of this tier, and the integrity layer and the
 * encryption (store.h) work on whole pages as for every page that leaves
 * memory.  Compressed writeback would save store bytes, but the store's
 * slots are 4 KiB either way, and a read would then need the tier's
 * compressor for pages it no longer holds.  A slot freed while its page is
 * being written back stays allocated until that write is over (zswap.h's
 * tombstone), so that two writes of one slot are never in flight.
 *
 * Memory: the pool's bytes count against the space's budget (mem_used()),
 * up to cfg.zswap_max.
 *
 * Locks: the tier's are zswap's (z.lock, a leaf under a ptl or
 * frame->lock, with zpool's class locks inside it) and wb_lock, a leaf: the
 * writeback buffers.  Nothing here waits for I/O.
 */
#ifndef FL_TIER_H
#define FL_TIER_H

#include "lib.h"

#include "hist.h"
#include "swapdev.h"
#include "worker.h"
#include "zswap.h"

#define TIER_WB_BUFS 32 /* writebacks in flight at most */

struct tier;

/* One writeback: a page decompressed for its write to the store. */
struct tier_wb {
	struct swap_io io; /* first: the completion finds it */
	struct tier *t;
	uint32_t slot;
	uint64_t token;		   /* which store of the slot (zswap_writeback_pick()) */
	void *page;		   /* the plain page */
	void *bounce;		   /* its ciphertext, with encryption */
	struct tier_wb *next_free; /* wb_lock */
};

struct tier {
	struct fl_space *sp;
	struct zswap z;
	size_t max_bytes; /* the pool's size: cfg.zswap_max */
	struct fl_worker wb_worker;
	void *wb_mem;
	struct tier_wb wb[TIER_WB_BUFS];
	pthread_mutex_t wb_lock;    /* a leaf: wb_free, wb_out */
	struct tier_wb *wb_free;    /* wb_lock */
	unsigned int wb_out;	    /* wb_lock: writebacks in flight */
	_Atomic uint64_t wb_errors; /* writebacks the store refused */
	struct fl_hist load_ns;	    /* decompression time of a hit */
};

int tier_init(struct fl_space *sp);
void tier_stop(struct fl_space *sp);
void tier_destroy(struct fl_space *sp);
bool tier_store(struct fl_space *sp, uint32_t slot, const void *page);
int tier_load(struct fl_space *sp, uint32_t slot, void *page);
long tier_pages(struct fl_space *sp);

#endif /* FL_TIER_H */
