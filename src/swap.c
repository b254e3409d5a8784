// SPDX-License-Identifier: MIT
/*
 * Swap: frames (the swap cache and writeback buffers), I/O completion,
 * readahead.  The rules of frames and slots are in swap.h; the faults that
 * wait for a frame are in cont.c.
 *
 * Locks: the ptl of a page's chunk binds the page to its frame (PTE_FRAME)
 * or slot; f->lock (inside the ptl) guards a frame's state; frame_lock and
 * batch_lock (leaves) the free frames and the pool of I/O batches.
 */
#include "swap.h"

#include <fcntl.h>
#include <sys/mman.h>

#include "cont.h"
#include "fault.h"
#include "store.h"
#include "reclaim.h"
#include "space.h"
#include "stats.h"
#include "tier.h"
#include "vma.h"

/* Pages of the budget in use: present pages, frames holding a page, and
 * the compressed tier's pool. */
long mem_used(struct fl_space *sp)
{
	return atomic_load(&sp->resident_pages) + atomic_load(&sp->frames_used) +
	       atomic_load(&sp->file_pages) + tier_pages(sp);
}

struct frame *frame_alloc(struct fl_space *sp)
{
	struct frame *f;

	pthread_mutex_lock(&sp->frame_lock);
	f = sp->frame_free;
	if (f)
		sp->frame_free = f->next_free;
	pthread_mutex_unlock(&sp->frame_lock);
	if (!f)
		return NULL;
	f->flags = 0;
	f->slot = SWAP_NO_SLOT;
	f->owns_slot = false;
	f->addr = 0;
	f->chunk = NULL;
	f->waiters = NULL;
	f->pins = 0;
	atomic_fetch_add(&sp->frames_used, 1);
	return f;
}

/* Context: the frame backs nothing, has no I/O and no pins. */
void frame_free(struct fl_space *sp, struct frame *f)
{
	if (f->owns_slot && f->slot != SWAP_NO_SLOT)
		swap_slot_free(&sp->dev, f->slot);
	f->owns_slot = false;
	f->slot = SWAP_NO_SLOT;
	atomic_fetch_sub(&sp->frames_used, 1);
	pthread_mutex_lock(&sp->frame_lock);
	f->next_free = sp->frame_free;
	sp->frame_free = f;
	pthread_mutex_unlock(&sp->frame_lock);
}

/* Context: f->lock held.  Return: whether the caller must free it (after
 * unlocking). */
static bool frame_unused_locked(struct frame *f)
{
	return (f->flags & FRAME_DETACHED) && !(f->flags & (FRAME_LOCKED | FRAME_WRITEBACK)) &&
	       !f->pins && !f->waiters;
}

/* Drop a pin taken by a parked or installing fault. */
void frame_unpin(struct fl_space *sp, struct frame *f)
{
	bool free_it;

	pthread_mutex_lock(&f->lock);
	FL_BUG_ON(f->pins <= 0);
	f->pins--;
	free_it = frame_unused_locked(f);
	pthread_mutex_unlock(&f->lock);
	if (free_it)
		frame_free(sp, f);
}

/*
 * Unbind the frame from its page (the page was zapped, or installed).
 * Context: the ptl of its chunk held; the PTE no longer names it.
 */
void frame_detach(struct fl_space *sp, struct frame *f)
{
	bool free_it;

	pthread_mutex_lock(&f->lock);
	f->flags |= FRAME_DETACHED;
	f->addr = 0;
	f->chunk = NULL;
	free_it = frame_unused_locked(f);
	pthread_mutex_unlock(&f->lock);
	if (free_it)
		frame_free(sp, f);
}

/*
 * Add the page at addr, swapped out in the slot of its entry pte, to the
 * swap cache: __read_swap_cache_async(), for the fault and for readahead
 * alike.  The page gets a frame, locked for its read (FRAME_LOCKED), its
 * entry names the frame, and the read is prepared in f->io but not started:
 * the caller starts it (swap_submit(), a readahead batch, or
 * swap_read_sync()).  A fault that meets the frame meanwhile waits for it.
 * Context: the ptl of c held; pte is addr's entry, PTE_SWAP.
 * Return: the frame, or NULL if every frame is busy (nothing changed).
 */
static struct frame *swap_cache_add_flags(struct fl_space *sp, struct pt_chunk *c,
					  unsigned long addr, uint64_t pte, uint32_t flags);

struct frame *swap_cache_add(struct fl_space *sp, struct pt_chunk *c, unsigned long addr,
			     uint64_t pte)
{
	return swap_cache_add_flags(sp, c, addr, pte, 0);
}

static struct frame *swap_cache_add_flags(struct fl_space *sp, struct pt_chunk *c,
					  unsigned long addr, uint64_t pte, uint32_t flags)
{
	struct frame *f = frame_alloc(sp);

	FL_DEBUG_BUG_ON(pte_type(pte) != PTE_SWAP);
	if (!f)
		return NULL;
	f->slot = pte_value(pte);
	f->owns_slot = true;
	f->addr = addr;
	f->chunk = c;
	f->flags = FRAME_LOCKED | FRAME_FROM_READ | flags;
	/* Refault distance: evictions since this page left.  Fewer than the
	 * budget holds means it was evicted too early (FRAME_HOT). */
	if (((uint32_t)atomic_load(&sp->evictions) - pte_stamp(pte)) % (1u << 24) <
	    (uint32_t)sp->limit_pages)
		f->flags |= FRAME_HOT;
	f->io = (struct swap_io){.slot = f->slot, .buf = f->buf, .done = swap_read_done};
	WRITE_ONCE(c->pte[pt_index(addr)], mk_pte(PTE_FRAME, 0, frame_index(sp, f)));
	return f;
}

/*
 * Forget the entry at addr, for munmap and MADV_DONTNEED: free its slot, and
 * detach its frame (I/O in flight finishes on its own; parked faults retry
 * and find the new state).
 * Context: the ptl of c held.  Return: nothing; resident counts adjusted by
 * the caller for PRESENT entries.
 */
void pte_release(struct fl_space *sp, struct pt_chunk *c, unsigned long addr)
{
	uint64_t pte = READ_ONCE(c->pte[pt_index(addr)]);

	switch (pte_type(pte)) {
	case PTE_PRESENT:
		if (pte & PTE_WP)
			swap_slot_free(&sp->dev, pte_value(pte));
		break;
	case PTE_SWAP:
		swap_slot_free(&sp->dev, pte_value(pte));
		break;
	case PTE_FRAME: {
		struct frame *f = frame_of(sp, pte);
		pthread_mutex_lock(&f->lock);
		/* The slot, if any, stays with the frame and goes with it. */
		f->owns_slot = f->slot != SWAP_NO_SLOT;
		pthread_mutex_unlock(&f->lock);
		frame_detach(sp, f);
		break;
	}
	}
	WRITE_ONCE(c->pte[pt_index(addr)], PTE_NONE);
}

/* ---- sealing (store.h) -------------------------------------------------- */

/*
 * Seal f's page for its write, just before the write is submitted: the
 * checksum and tag go to the slot's metadata, and f->io.buf to the bytes
 * to write (the page itself, or its ciphertext in f->bounce).  The page is
 * read, never changed: a fault may install it meanwhile.
 * Context: f is under writeback (FRAME_WRITEBACK: not freed, not rebound,
 * its slot and buf stable), its write not yet submitted; no lock held.
 */
void swap_seal_write(struct fl_space *sp, struct frame *f)
{
	unsigned long addr;
	uint32_t slot;

	/* addr goes to 0 if a fault takes the page meanwhile: then the slot
	 * goes with the frame and is never read, whatever its tag says. */
	pthread_mutex_lock(&f->lock);
	FL_DEBUG_BUG_ON(!(f->flags & FRAME_WRITEBACK) || f->slot == SWAP_NO_SLOT);
	addr = f->addr;
	slot = f->slot;
	pthread_mutex_unlock(&f->lock);
	f->io.buf = (void *)store_seal(&sp->dev.store, slot, addr, f->buf, f->bounce);
}

/*
 * Offer f's page to the compressed tier instead of the store (tier.h).  If
 * it takes it, the write is complete: added to posts, for the completion
 * thread to run swap_write_done() as for a write to the store once the
 * caller flushes them (swapdev_post_flush()); the slot's store bytes stay
 * unused until the tier writes the page back, sealed for the address noted
 * here.  Return: whether the tier took it (else the caller seals and writes
 * it).  Context: as swap_seal_write().
 */
bool swap_tier_write(struct fl_space *sp, struct frame *f, struct swap_posts *posts)
{
	unsigned long addr;
	uint32_t slot;

	if (!sp->tier)
		return false;
	pthread_mutex_lock(&f->lock);
	FL_DEBUG_BUG_ON(!(f->flags & FRAME_WRITEBACK) || f->slot == SWAP_NO_SLOT);
	addr = f->addr;
	slot = f->slot;
	pthread_mutex_unlock(&f->lock);
	/* Noted first: once stored, the page may be picked for writeback,
	 * which seals it for this address.  A refused page is sealed over it. */
	store_note(&sp->dev.store, slot, addr);
	if (!tier_store(sp, slot, f->buf))
		return false;
	f->io.from_tier = true;
	f->io.no_delay = true;
	swapdev_post_add(&sp->dev, posts, &f->io, 0);
	return true;
}

/*
 * Ask the compressed tier for the page of f's read.  Return: true if it
 * answered (a hit, or a page that does not decompress: -EBADMSG in *res),
 * false if the read must go to the store.
 */
static bool tier_read(struct fl_space *sp, struct frame *f, int *res)
{
	int ret = tier_load(sp, f->io.slot, f->buf);

	if (ret == -ENOENT)
		return false;
	f->io.from_tier = true;
	f->io.no_delay = true;
	*res = ret;
	return true;
}

/*
 * Start the read of f's page from the store: a fault's frame, prepared by
 * swap_cache_add(), that the compressed tier does not hold (swap_read_tier()
 * asked it).  swap_read_done() runs on the completion thread.
 * Context: as swap_submit(); may hold the page's ptl.
 */
void swap_read_start(struct fl_space *sp, struct frame *f)
{
	int res = swap_submit(&sp->dev, &f->io);

	if (res) /* completed through the ring all the same, with the error */
		swapdev_post(&sp->dev, &f->io, res);
}

/*
 * Read f's page from the store in the calling thread (swap_read_sync()), as
 * swap_read_start() but synchronous.  The caller completes it
 * (swap_read_done()).  Context: no lock held (sigbus: in the SIGBUS
 * handler).  Return: 0 or a negative errno.
 */
int swap_read_page(struct fl_space *sp, struct frame *f)
{
	return swap_read_sync(&sp->dev, &f->io);
}

/*
 * Check a page just read into f against what was sealed for its slot and
 * address, decrypting it in place.  Return: 0, or -EBADMSG: the page must
 * not be used.  Context: f is locked for its read (FRAME_LOCKED): its
 * buffer is this completion's alone.
 */
static int swap_unseal_read(struct fl_space *sp, struct frame *f, uint32_t slot,
			    unsigned long *addr)
{
	bool detached;

	pthread_mutex_lock(&f->lock);
	FL_DEBUG_BUG_ON(!(f->flags & FRAME_LOCKED));
	*addr = f->addr;
	detached = f->flags & FRAME_DETACHED;
	pthread_mutex_unlock(&f->lock);
	if (detached)
		return 0; /* its page went away: nobody will install it */
	return store_unseal(&sp->dev.store, slot, *addr, f->buf) ? -EBADMSG : 0;
}

/* ---- I/O completions (reaper thread) ---------------------------------- */

/* The first store error of a space is logged; the rest are counted. */
static void log_io_error(struct fl_space *sp, const char *op, uint32_t slot, int res,
			 const char *outcome)
{
	if (!atomic_exchange(&sp->io_error_logged, true) || sp->cfg.verbose)
		fl_log("swap %s of slot %u of %s failed: %s; %s (further errors: see "
		       "read_errors/write_errors)",
		       op, slot, sp->dev.path ? sp->dev.path : "the temporary store",
		       strerror(-res), outcome);
}

/* A page that failed its check: once per space, with what the slot was
 * sealed for (another address means faultline lost track of its slots; the
 * same one, that the store did not return what was written there). */
static void log_bad_page(struct fl_space *sp, uint32_t slot, unsigned long addr)
{
	unsigned long sealed = store_slot_addr(&sp->dev.store, slot);

	if (!atomic_exchange(&sp->dev.store.mismatch_logged, true) || sp->cfg.verbose)
		fl_log("swap read of slot %u of %s failed its check (%s): the page at %#lx is "
		       "poisoned (further mismatches: see checksum_errors)",
		       slot, sp->dev.path ? sp->dev.path : "the temporary store",
		       sealed == addr ? "the store returned other bytes than were written there"
				      : "the slot was sealed for another page",
		       addr);
}

/* Count (and log) the outcome of a read of slot: res, from the compressed
 * tier or the store, and bad if the page read failed its check (sealed for
 * addr).  Context: any. */
static void read_account(struct fl_space *sp, uint32_t slot, int res, bool from_tier, bool bad,
			 unsigned long addr)
{
	if (bad) {
		count_event(sp, checksum_errors);
		log_bad_page(sp, slot, addr);
	} else if (res && from_tier) {
		/* Counted by the tier (zswap_errors): not the store's error. */
		if (!atomic_exchange(&sp->tier_error_logged, true) || sp->cfg.verbose)
			fl_log("the compressed tier's copy of slot %u does not decompress: the "
			       "page is poisoned (further errors: see zswap_errors)",
			       slot);
	} else if (res) {
		count_event(sp, read_errors);
		log_io_error(sp, "read", slot, res, "the page is poisoned");
	} else {
		count_event(sp, swap_ins);
	}
}

void swap_read_done(struct swap_io *io, int res)
{
	struct frame *f = (struct frame *)io;
	struct fl_space *sp = f->sp;
	struct waiter *w, *next;
	bool free_it, bad = false;
	uint32_t slot = io->slot; /* the frame may be reused once unlocked */
	bool from_tier = io->from_tier;
	unsigned long addr = 0;

	/* A page from the compressed tier never left memory: not sealed. */
	if (!res && !from_tier && swap_unseal_read(sp, f, slot, &addr)) {
		res = -EBADMSG;
		bad = true;
	}
	pthread_mutex_lock(&f->lock);
	f->flags &= ~FRAME_LOCKED;
	f->flags |= res ? FRAME_ERROR : FRAME_UPTODATE;
	w = f->waiters;
	f->waiters = NULL;
	free_it = frame_unused_locked(f);
	pthread_mutex_unlock(&f->lock);
	read_account(sp, slot, res, from_tier, bad, addr);
	for (; w; w = next) {
		next = w->next;
		waiter_wake(w);
	}
	if (free_it)
		frame_free(sp, f);
}

/*
 * A fault's read from the compressed tier, done at once: f's page
 * decompressed in the calling thread and the frame completed, as the
 * kernel's do_swap_page() does on a zswap hit.  Nothing is waited for, so
 * the fault keeps its locks and goes on to install the page: no policy
 * applies (they are about waiting for I/O), no waiter, no retry.
 * Return: whether the tier answered: a hit (FRAME_UPTODATE), or a page that
 * does not decompress (FRAME_ERROR: poisoned, as for a failed read), f then
 * pinned for the caller, which lets go of the ptl for readahead (up to date
 * and unlocked, reclaim could take it back meanwhile; the kernel's fault
 * holds its folio there) and drops the pin; false: the tier does not hold
 * it, the read goes to the store as before.
 * Context: the ptl of f's chunk held since swap_cache_add() made f (so no
 * fault waits on it yet), as swap_read_start().
 */
bool swap_read_tier(struct fl_space *sp, struct frame *f)
{
	int res;

	if (!tier_read(sp, f, &res))
		return false;
	pthread_mutex_lock(&f->lock);
	FL_DEBUG_BUG_ON(f->waiters || !(f->flags & FRAME_LOCKED));
	f->flags &= ~FRAME_LOCKED;
	f->flags |= res ? FRAME_ERROR : FRAME_UPTODATE;
	f->pins++;
	pthread_mutex_unlock(&f->lock);
	read_account(sp, f->io.slot, res, true, false, 0);
	return true;
}

void swap_write_done(struct swap_io *io, int res)
{
	struct frame *f = (struct frame *)io;
	struct fl_space *sp = f->sp;
	uint32_t slot = io->slot;
	struct vma *vma = NULL;
	struct pt_chunk *c;
	unsigned long addr;
	bool free_it = false;

	if (res) {
		count_event(sp, write_errors);
		log_io_error(sp, "write", slot, res, "the page stays in memory");
	} else {
		count_event(sp, swap_outs);
	}
	rcu_read_lock();
	pthread_mutex_lock(&f->lock);
	if (f->flags & FRAME_DETACHED) {
		/* Its page went away: nothing to record. */
		f->flags &= ~FRAME_WRITEBACK;
		free_it = frame_unused_locked(f);
		pthread_mutex_unlock(&f->lock);
		fl_rcu_read_unlock();
		if (free_it)
			frame_free(sp, f);
		return;
	}
	c = f->chunk;
	addr = f->addr;
	pthread_mutex_unlock(&f->lock);
	/*
	 * FRAME_WRITEBACK stays set until the ptl is held: meanwhile the frame
	 * may be detached (zapped, or installed by a fault, which then treats
	 * it as dirty), but not dropped from the swap cache, freed or bound to
	 * another page.  The chunk outlives this read-side section.
	 *
	 * A failed write: the page goes back where it was, resident (over the
	 * budget, visibly) with nothing lost.  That needs its VMA's lock: a
	 * trylock, as everything here; if it fails the page waits in the frame
	 * (still safe) for its next fault.
	 */
	if (res)
		vma = vma_trylock_at(sp, addr);
	pt_lock(c);
	uint64_t pte = READ_ONCE(c->pte[pt_index(addr)]);
	pthread_mutex_lock(&f->lock);
	f->flags &= ~FRAME_WRITEBACK;
	if ((f->flags & FRAME_DETACHED) || pte_type(pte) != PTE_FRAME || frame_of(sp, pte) != f) {
		free_it = frame_unused_locked(f);
	} else if (res) {
		f->flags |= FRAME_WERROR;
		f->owns_slot = true; /* freed with the frame */
		bool idle = !f->pins && !f->waiters;
		pthread_mutex_unlock(&f->lock);
		if (vma && idle && !install_from_frame(sp, c, addr, f)) {
			pt_unlock(c);
			vma_end_read(vma);
			fl_rcu_read_unlock();
			return; /* the install detached and freed the frame */
		}
		pthread_mutex_lock(&f->lock);
	} else if (!f->pins && !f->waiters) {
		/* Written: the page lives in its slot now. */
		WRITE_ONCE(c->pte[pt_index(addr)], mk_pte(PTE_SWAP, mk_stamp(f->stamp), f->slot));
		f->owns_slot = false;
		f->flags |= FRAME_DETACHED;
		f->addr = 0;
		f->chunk = NULL;
		free_it = frame_unused_locked(f);
	} else {
		/* A fault is taking it: it stays in the swap cache with a valid
		 * copy. */
		f->owns_slot = true;
	}
	pthread_mutex_unlock(&f->lock);
	pt_unlock(c);
	if (vma)
		vma_end_read(vma);
	fl_rcu_read_unlock();
	if (free_it)
		frame_free(sp, f);
}

/*
 * The pool of batches (vectored I/O of consecutive slots: eviction's writes,
 * readahead's reads).  batch_get() takes one, or returns NULL if none is
 * free (the caller then does its I/O a page at a time); batch_put() gives it
 * back once its completion has run, as the last thing the completion does
 * with it.  Context: any; batch_lock (a leaf) is taken inside.
 */
struct io_batch *batch_get(struct fl_space *sp)
{
	struct io_batch *b;

	pthread_mutex_lock(&sp->batch_lock);
	b = sp->batch_free;
	if (b) {
		sp->batch_free = b->next_free;
		sp->batches_out++;
	}
	pthread_mutex_unlock(&sp->batch_lock);
	return b;
}

void batch_put(struct fl_space *sp, struct io_batch *b)
{
	pthread_mutex_lock(&sp->batch_lock);
	FL_BUG_ON(!sp->batches_out); /* given back twice */
	b->next_free = sp->batch_free;
	sp->batch_free = b;
	if (!--sp->batches_out)
		pthread_cond_broadcast(&sp->batches_back);
	pthread_mutex_unlock(&sp->batch_lock);
}

/*
 * A readahead read of consecutive slots, as one vectored I/O into several
 * frames (the write batches' pool).  If it fails, each page is read again on
 * its own, so that a bad slot poisons its own page only.  A batch that timed
 * out had the store's whole timeout for each of its pages: each is tried
 * once more, not given a timeout of its own again (a fault on a page of a
 * stalled node would wait two).  Context: the completion thread.
 */
static void read_batch_done(struct swap_io *io, int res)
{
	struct io_batch *b = (struct io_batch *)io;
	struct fl_space *sp = b->sp;
	uint64_t end_by = res == -ETIMEDOUT ? fl_now_ns() : 0;

	for (unsigned int k = 0; k < b->n; k++) {
		struct swap_io *fio = &b->f[k]->io;

		fio->t_end_by = end_by;
		if (!res)
			swap_read_done(fio, 0);
		else if (swap_submit(&sp->dev, fio))
			swap_read_done(fio, -EIO);
	}
	batch_put(sp, b); /* last: swap_destroy() waits for it */
}

/* Start the reads of frames fr[0..n), consecutive slots, from the store:
 * one I/O if a batch is free. */
static void submit_store_reads(struct fl_space *sp, struct frame **fr, unsigned int n)
{
	struct io_batch *b = n > 1 ? batch_get(sp) : NULL;

	if (!b) {
		for (unsigned int k = 0; k < n; k++)
			if (swap_submit(&sp->dev, &fr[k]->io))
				swap_read_done(&fr[k]->io, -EIO);
		return;
	}
	b->n = n;
	for (unsigned int k = 0; k < n; k++) {
		b->f[k] = fr[k];
		b->iov[k] = (struct iovec){fr[k]->buf, PAGE_SIZE};
	}
	b->io = (struct swap_io){
		.slot = fr[0]->slot, .iov = b->iov, .nr = n, .done = read_batch_done};
	int ret = swap_submit(&sp->dev, &b->io);
	if (ret)
		read_batch_done(&b->io, ret);
}

/*
 * Start the reads of frames fr[0..n), consecutive slots: the pages the
 * compressed tier has come from it, each run of the others from the store.
 */
static void submit_reads(struct fl_space *sp, struct frame **fr, unsigned int n)
{
	struct swap_posts posts = {0};
	unsigned int from = 0;
	int res;

	if (!sp->tier) {
		submit_store_reads(sp, fr, n);
		return;
	}
	for (unsigned int k = 0; k < n; k++) {
		if (!tier_read(sp, fr[k], &res))
			continue;
		if (k > from)
			submit_store_reads(sp, fr + from, k - from);
		from = k + 1;
		swapdev_post_add(&sp->dev, &posts, &fr[k]->io, res);
	}
	swapdev_post_flush(&sp->dev, &posts);
	if (n > from)
		submit_store_reads(sp, fr + from, n - from);
}

/*
 * Start reading the swapped pages of [start, end) into the swap cache, as far
 * as frames allow; their faults will need no I/O.  For MADV_WILLNEED and the
 * readahead of sequential major faults.  Each run of consecutive slots (up to
 * a chunk's worth) is read as one vectored I/O.
 * Context: mmap_lock held for read, or the range's VMA read-locked; no ptl.
 * Return: where it stopped (end, or the first page it could not start).
 */
static unsigned long readahead_flags(struct fl_space *sp, unsigned long start, unsigned long end,
				     uint32_t flags);

unsigned long swap_readahead(struct fl_space *sp, unsigned long start, unsigned long end)
{
	return readahead_flags(sp, start, end, 0);
}

/* The same, for a fault's prefetch: its frames are FRAME_PREFETCH, and
 * count as used or wasted (swap_prefetch_used(), swap_prefetch_wasted()). */
unsigned long swap_prefetch(struct fl_space *sp, unsigned long start, unsigned long end)
{
	return readahead_flags(sp, start, end, FRAME_PREFETCH);
}

/*
 * A prefetched page was used by a fault, or reclaimed unused: counted, and
 * told to the prefetch window's feedback.  Context: f->lock held, f a
 * FRAME_PREFETCH frame not used before.
 */
void swap_prefetch_used(struct fl_space *sp, struct frame *f)
{
	count_event(sp, prefetch_used);
	pf_feedback(&sp->pf_fb, 1, 0);
}

void swap_prefetch_wasted(struct fl_space *sp, struct frame *f)
{
	count_event(sp, prefetch_wasted);
	pf_feedback(&sp->pf_fb, 0, 1);
}

static unsigned long readahead_flags(struct fl_space *sp, unsigned long start, unsigned long end,
				     uint32_t flags)
{
	struct frame *run[PT_CHUNK_PAGES];
	unsigned int n = 0;
	unsigned long stop = end;

	if (!sp->swap_on)
		return end;
	for (unsigned long a = start; a < end; a += PAGE_SIZE) {
		struct pt_chunk *c = pt_chunk_lookup(sp, a);
		if (!c) {
			a = (a & PT_CHUNK_MASK) + PT_CHUNK_SIZE - PAGE_SIZE;
			continue;
		}
		if (pte_type(READ_ONCE(c->pte[pt_index(a)])) != PTE_SWAP)
			continue;
		mem_reserve(sp, 1);
		pt_lock(c);
		uint64_t pte = READ_ONCE(c->pte[pt_index(a)]);
		struct frame *f = pte_type(pte) == PTE_SWAP
					  ? swap_cache_add_flags(sp, c, a, pte, flags)
					  : NULL;
		pt_unlock(c);
		if (f) {
			/* The frame is locked in the table: a fault on it waits
			 * for the read, which goes out with its run. */
			if (n && (n == PT_CHUNK_PAGES || f->slot != run[n - 1]->slot + 1)) {
				submit_reads(sp, run, n);
				n = 0;
			}
			run[n++] = f;
		} else if (pte_type(pte) == PTE_SWAP) {
			stop = a; /* out of frames */
			break;
		}
	}
	if (n)
		submit_reads(sp, run, n);
	return stop;
}

/*
 * MADV_COLD: the pages of [start, end) lose their reference bits, under
 * each chunk's ptl: a page whose install (thread delivery) has woken the
 * thread that touched it but not yet written its entry is waited for, not
 * given its bit back after.  Context: mmap_lock held for read.
 */
void swap_deactivate(struct fl_space *sp, unsigned long start, unsigned long end)
{
	for (unsigned long b = start & PT_CHUNK_MASK; b < end; b += PT_CHUNK_SIZE) {
		struct pt_chunk *c = pt_chunk_lookup(sp, b);
		if (!c)
			continue;
		pt_lock(c);
		for (unsigned long a = MAX(b, start); a < MIN(b + PT_CHUNK_SIZE, end);
		     a += PAGE_SIZE)
			atomic_fetch_and(&c->pte[pt_index(a)], ~PTE_REF);
		pt_unlock(c);
	}
}

/* ---- setup ------------------------------------------------------------ */

/* The frames' pages: one each, and with encryption a bounce page each. */
static size_t frame_bufs_bytes(const struct fl_space *sp)
{
	return sp->nr_frames * PAGE_SIZE * (sp->cfg.swap_encrypt ? 2 : 1);
}

int swap_init(struct fl_space *sp)
{
	size_t n = sp->cfg.swap_frames;
	int ret;

	pthread_mutex_init(&sp->frame_lock, NULL);
	pthread_mutex_init(&sp->batch_lock, NULL);
	pf_vma_init(&sp->pf);
	pf_feedback_init(&sp->pf_fb, sp->cfg.fault_around_max);
	pthread_cond_init(&sp->batches_back, NULL);
	sp->swap_inited = true;
	if (!sp->cfg.mem_limit)
		return 0;
	sp->limit_pages = (long)(sp->cfg.mem_limit >> PAGE_SHIFT);
	if (sp->limit_pages < 64)
		return -EINVAL; /* below 256 KiB nothing useful fits */
	sp->wmark_high = sp->cfg.watermark ? (long)(sp->cfg.watermark >> PAGE_SHIFT)
					   : MAX(sp->limit_pages / 32, 16);
	sp->wmark_high = MIN(sp->wmark_high, sp->limit_pages / 2);
	sp->wmark_low = MAX(sp->wmark_high / 2, 1);
	/* Frames are memory too: at most a quarter of the budget. */
	n = MIN(n, (size_t)MAX(sp->limit_pages / 4, 16));
	sp->frames = calloc(n, sizeof(*sp->frames));
	sp->nr_frames = n;
	sp->frame_bufs = mmap(NULL, frame_bufs_bytes(sp), PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!sp->frames || sp->frame_bufs == MAP_FAILED) {
		sp->frame_bufs = NULL;
		return -ENOMEM;
	}
	for (size_t i = n; i-- > 0;) {
		struct frame *f = &sp->frames[i];
		pthread_mutex_init(&f->lock, NULL);
		f->sp = sp;
		f->buf = (char *)sp->frame_bufs + i * PAGE_SIZE;
		if (sp->cfg.swap_encrypt)
			f->bounce = (char *)sp->frame_bufs + (n + i) * PAGE_SIZE;
		f->slot = SWAP_NO_SLOT;
		f->next_free = sp->frame_free;
		sp->frame_free = f;
	}
	sp->batches = calloc(IO_BATCHES, sizeof(*sp->batches));
	if (!sp->batches)
		return -ENOMEM;
	for (int i = 0; i < IO_BATCHES; i++) {
		sp->batches[i].sp = sp;
		sp->batches[i].next_free = sp->batch_free;
		sp->batch_free = &sp->batches[i];
	}
	sp->mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (sp->mem_fd < 0)
		return -errno;
	/* In flight at most: one I/O per frame, one per batch.  A named
	 * store's refusal is logged by store_claim() with its reason. */
	ret = swapdev_open_remote(
		&sp->dev, sp->cfg.swap_path, sp->cfg.swap_create ? SWAPDEV_CREATE : 0, 256,
		(uint64_t)sp->cfg.swap_delay_us * 1000,
		(unsigned int)(sp->nr_frames + IO_BATCHES + TIER_WB_BUFS),
		(int)sp->cfg.remote_replicas, (uint64_t)sp->cfg.remote_timeout_us * 1000);
	if (ret) {
		fl_log("cannot open the swap store %s: %s",
		       sp->cfg.swap_path ? sp->cfg.swap_path : "(temporary file)", strerror(-ret));
		return ret;
	}
	sp->dev_open = true;
	ret = store_init(&sp->dev.store, swapdev_max_slots(&sp->dev), sp->cfg.swap_encrypt);
	if (ret) {
		fl_log("cannot set up the swap store's checksums%s: %s",
		       sp->cfg.swap_encrypt ? " and encryption" : "", strerror(-ret));
		return ret;
	}
	/* A freed slot holds ciphertext under a key that dies with the space:
	 * writing zeros over it would add a write and protect nothing.  But a
	 * remote key holds the cluster's memory until it is deleted. */
	sp->dev.discard_freed = !sp->cfg.swap_encrypt || sp->dev.be->discard_frees;
	fl_dbg(sp, "swap store %s: %lu slots%s, %s, encryption: %s",
	       sp->dev.path ? sp->dev.path : "(temporary file)", sp->dev.nr_slots,
	       sp->dev.grows ? " (grows on demand)" : "",
	       sp->dev.is_blockdev ? "block device" : "file", store_cipher_name(&sp->dev.store));
	sp->swap_on = true;
	return 0;
}

/*
 * Context: every VMA is gone (all frames detached), the handler threads
 * have stopped, and no fault runs.  Idempotent.
 */
void swap_destroy(struct fl_space *sp)
{
	if (!sp->swap_inited)
		return;
	tier_stop(sp); /* no writeback starts now */
	if (sp->dev_open && sp->batches) {
		/* A failed readahead batch submits again from its completion:
		 * every batch back in the pool, and nothing more will be. */
		pthread_mutex_lock(&sp->batch_lock);
		while (sp->batches_out)
			pthread_cond_wait(&sp->batches_back, &sp->batch_lock);
		pthread_mutex_unlock(&sp->batch_lock);
	}
	if (sp->dev_open) {
		swapdev_close(&sp->dev);       /* waits for the I/O in flight */
		store_destroy(&sp->dev.store); /* wipes the key */
	}
	sp->dev_open = false;
	/* Retries that no handler thread took: finish them while the frames
	 * they may pin are still here (their VMAs are gone: they end). */
	run_retry_queue(sp);
	tier_destroy(sp);
	if (sp->frames)
		for (size_t i = 0; i < sp->nr_frames; i++)
			pthread_mutex_destroy(&sp->frames[i].lock);
	free(sp->frames);
	sp->frames = NULL;
	free(sp->batches);
	sp->batches = NULL;
	if (sp->frame_bufs)
		munmap(sp->frame_bufs, frame_bufs_bytes(sp));
	sp->frame_bufs = NULL;
	if (sp->mem_fd >= 0)
		close(sp->mem_fd);
	sp->mem_fd = -1;
	pthread_cond_destroy(&sp->batches_back);
	pf_vma_destroy(&sp->pf);
	pthread_mutex_destroy(&sp->batch_lock);
	pthread_mutex_destroy(&sp->frame_lock);
	sp->swap_inited = false;
}
