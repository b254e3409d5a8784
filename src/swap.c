// SPDX-License-Identifier: MIT
/*
 * Swap: frames (the swap cache and writeback buffers), I/O completion, and
 * the faults that wait for it.
 *
 * Locks (see internal.h for the tree):
 *   chunk->ptl      binds a page to its frame (PTE_FRAME) or slot
 *   f->lock         a frame's flags, waiters, pins and slot ownership; nests
 *                   inside a ptl, never the other way round
 *   frame_lock      the free list (leaf)
 *   retry_lock      the handler threads' retry queue (leaf)
 *
 * Frame lifetime: a frame is freed once it backs no page (never bound, or
 * DETACHED), has no I/O in flight and no pins (parked or installing faults).
 * Slot ownership: a slot belongs to exactly one of a PTE (SWAP, or PRESENT|WP)
 * or a frame (f->owns_slot); whoever frees its owner frees the slot.
 */
#include "internal.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

long mem_used(struct fl_space *sp)
{
	return atomic_load(&sp->resident_pages) + atomic_load(&sp->frames_used);
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

/* ---- waiting -------------------------------------------------------- */

static void futex_wake_one(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void retry_enqueue(struct fl_space *sp, struct waiter *w)
{
	uint64_t one = 1;

	w->qnext = NULL;
	pthread_mutex_lock(&sp->retry_lock);
	if (sp->retry_tail)
		sp->retry_tail->qnext = w;
	else
		sp->retry_head = w;
	sp->retry_tail = w;
	pthread_mutex_unlock(&sp->retry_lock);
	if (write(sp->retry_fd, &one, sizeof(one)) < 0)
		FL_BUG_ON(errno != EAGAIN);
}

/*
 * The rest of w's fault as a retry under mmap_lock.  At I/O completion
 * (spare: the continuation's own heap waiter, not yet freed) it never waits
 * for mmap_lock: it runs if a trylock gets the lock, as a faulting thread's
 * retry would find it free; if not, spare is queued to the handler threads,
 * which may wait (no allocation, so this cannot fail).  Otherwise (spare
 * NULL: a handler thread, or the faulting thread in sigbus delivery) it
 * takes the lock.
 * Context: no faultline lock held, except possibly the VMA read lock of
 * another fault (a handler thread completing its own read under hold): so
 * only the trylock at completion.  On return *spare is NULL if it was queued.
 * Return: as fault_retry_mmap(); VM_FAULT_PARKED if queued.
 */
static int retry_under_mmap(struct waiter *w, struct waiter **spare)
{
	struct fl_space *sp = w->sp;
	unsigned int flags = w->flags | FAULT_FLAG_TRIED;
	struct waiter *n;
	int ret;

	if (!*spare)
		return fault_retry_mmap(sp, w->addr, flags, w->t0);
	ret = fault_retry_mmap(sp, w->addr, flags | FAULT_FLAG_NOWAIT, w->t0);
	if (!(ret & VM_FAULT_LOCKBUSY)) {
		count_event(sp, retries_completion);
		return ret;
	}
	n = *spare;
	*spare = NULL;
	*n = *w;
	n->action = CONT_RETRY_MMAP;
	n->pinned = false;	 /* the caller keeps (and drops) the pin */
	n->t_park = fl_now_ns(); /* waiting for a handler: parked still */
	retry_enqueue(sp, n);
	count_event(sp, retries_queued);
	return VM_FAULT_PARKED;
}

/*
 * Finish w's fault under vma's read lock (handed over under hold, taken
 * again under drop-vma); NULL means that lock could not be had.  A retry
 * then runs under mmap_lock (retry_under_mmap(): at completion, only if the
 * lock is free, else queued to the handler threads).
 * Context: as cont_run(); vma read-locked if not NULL.
 * Return: handle_mm_fault()'s result, VM_FAULT_PARKED if someone else now
 * owns the fault (parked again, or queued).
 */
static int finish_under_vma(struct waiter *w, struct vma *vma, struct waiter **spare)
{
	struct fl_space *sp = w->sp;
	int ret;

	if (vma) {
		ret = handle_mm_fault(sp, vma, w->addr, w->flags | FAULT_FLAG_VMA_LOCK, w->t0);
		if (ret & VM_FAULT_PARKED)
			return ret;
		if (!(ret & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)))
			vma_end_read(vma);
		if (!(ret & VM_FAULT_RETRY)) {
			count_vm_vma_lock_event(sp, vma_lock_success);
			return ret;
		}
	}
	count_vm_vma_lock_event(sp, vma_lock_retry);
	return retry_under_mmap(w, spare);
}

/*
 * Run a continuation: the rest of a fault that waited for its frame.
 * Context: no faultline lock held, except the VMA read lock a CONT_INSTALL
 * continuation was handed.  Never sleeps on I/O: a fault that must wait
 * again parks again.  At I/O completion (the completion thread, or a
 * handler thread completing its own synchronous read) it never waits for a
 * lock: the VMA lock and mmap_lock are only tried, and a retry that finds
 * mmap_lock taken is queued to the handler threads.  Also runs on a handler
 * thread (queued retries) and on the faulting thread (sigbus delivery).
 */
void cont_run(struct waiter *wp)
{
	/* Work on a copy; the original is kept for a queued retry, else freed. */
	struct waiter copy = *wp, *w = &copy;
	struct fl_space *sp = w->sp;
	struct frame *f = w->frame;
	struct waiter *spare = !wp->on_stack && in_completion ? wp : NULL;
	int ret;

	if (!wp->on_stack && !spare)
		free(wp);
	w->flags |= FAULT_FLAG_CONT; /* its major or minor fault is counted */
	if (w->t_park) {
		count_event_n(sp, parked_ns, fl_now_ns() - w->t_park);
		w->t_park = 0;
	}
	/*
	 * hold and drop-vma go on with the same fault, the frame still
	 * pinned (the kernel: the folio reference kept), so reclaim cannot
	 * take the page from the swap cache before the fault maps it.  A
	 * retry under mmap_lock (mmap, bail, drop) is a new fault: as the
	 * kernel's do_swap_page() drops its folio reference before returning
	 * VM_FAULT_RETRY, the pin goes first, and reclaim may take the page
	 * in between (then the retry reads it again: a wasted read).
	 */
	if (w->pinned && w->action == CONT_RETRY_MMAP) {
		frame_unpin(sp, f);
		w->pinned = false;
	}
	switch (w->action) {
	case CONT_INSTALL:
		/* hold: the fault kept its VMA lock; finish it under that. */
		if (!w->on_stack)
			vma_adopt(w->vma);
		ret = finish_under_vma(w, w->vma, &spare);
		break;
	case CONT_RETRY_VMA:
		/* drop-vma: if the page is up to date, take the VMA lock again
		 * and finish without a retry. */
		ret = finish_under_vma(w, lock_vma_under_rcu(sp, w->addr), &spare);
		break;
	case CONT_RETRY_MMAP:
	default:
		ret = retry_under_mmap(w, &spare);
		break;
	}
	free(spare); /* unless it was queued */
	if (!(ret & VM_FAULT_PARKED))
		fault_done(sp, w->addr, w->flags, ret, w->t0);
	if (w->pinned)
		frame_unpin(sp, f);
}

/* The handler threads' part: run the queued retries.  Context: none held. */
void run_retry_queue(struct fl_space *sp)
{
	for (;;) {
		pthread_mutex_lock(&sp->retry_lock);
		struct waiter *w = sp->retry_head;
		if (w) {
			sp->retry_head = w->qnext;
			if (!sp->retry_head)
				sp->retry_tail = NULL;
		}
		pthread_mutex_unlock(&sp->retry_lock);
		if (!w)
			return;
		cont_run(w);
	}
}

/* Hand a waiter whose frame is ready to whoever must run it. */
static void waiter_ready(struct waiter *w)
{
	if (w->on_stack) {
		/* Read self_done first: once done is set, w may be gone. */
		bool wake = !w->self_done;
		atomic_store_explicit(&w->done, 1, memory_order_release);
		if (wake)
			futex_wake_one(&w->done);
		return;
	}
	if (w->action == CONT_RETRY_MMAP && !in_completion)
		retry_enqueue(w->sp, w);
	else
		cont_run(w); /* never sleeps: takes only trylocks and ptls */
}

/* ---- I/O completions (reaper thread) ---------------------------------- */

/* The first store error of a space is logged; the rest are counted. */
static void log_io_error(struct fl_space *sp, const char *op, uint32_t slot, int res,
			 const char *outcome)
{
	if (!atomic_exchange(&sp->io_error_logged, true) || sp->cfg.verbose)
		fl_log("swap %s of slot %u failed: %s; %s (further errors: see "
		       "read_errors/write_errors)",
		       op, slot, strerror(-res), outcome);
}

void swap_read_done(struct swap_io *io, int res)
{
	struct frame *f = (struct frame *)io;
	struct fl_space *sp = f->sp;
	struct waiter *w, *next;
	bool free_it;
	uint32_t slot = io->slot; /* the frame may be reused once unlocked */

	pthread_mutex_lock(&f->lock);
	f->flags &= ~FRAME_LOCKED;
	f->flags |= res ? FRAME_ERROR : FRAME_UPTODATE;
	w = f->waiters;
	f->waiters = NULL;
	free_it = frame_unused_locked(f);
	pthread_mutex_unlock(&f->lock);
	if (res) {
		count_event(sp, read_errors);
		log_io_error(sp, "read", slot, res, "the page is poisoned");
	} else {
		count_event(sp, swap_ins);
	}
	for (; w; w = next) {
		next = w->next;
		waiter_ready(w);
	}
	if (free_it)
		frame_free(sp, f);
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
		if (vma && idle && !install_from_frame(sp, vma, c, addr, f)) {
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
struct write_batch *batch_get(struct fl_space *sp)
{
	struct write_batch *b;

	pthread_mutex_lock(&sp->batch_lock);
	b = sp->batch_free;
	if (b) {
		sp->batch_free = b->next_free;
		sp->batches_out++;
	}
	pthread_mutex_unlock(&sp->batch_lock);
	return b;
}

void batch_put(struct fl_space *sp, struct write_batch *b)
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
 * its own, so that a bad slot poisons its own page only.
 * Context: the completion thread.
 */
static void read_batch_done(struct swap_io *io, int res)
{
	struct write_batch *b = (struct write_batch *)io;
	struct fl_space *sp = b->sp;

	for (unsigned int k = 0; k < b->n; k++) {
		struct swap_io *fio = &b->f[k]->io;

		if (!res)
			swap_read_done(fio, 0);
		else if (swap_submit(&sp->dev, fio))
			swap_read_done(fio, -EIO);
	}
	batch_put(sp, b); /* last: swap_destroy() waits for it */
}

/* Start the reads of frames fr[0..n), consecutive slots: one I/O if a batch is free. */
static void submit_reads(struct fl_space *sp, struct frame **fr, unsigned int n)
{
	struct write_batch *b = n > 1 ? batch_get(sp) : NULL;

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
 * Start reading the swapped pages of [start, end) into the swap cache, as far
 * as frames allow; their faults will need no I/O.  For MADV_WILLNEED and the
 * readahead of sequential major faults.  Each run of consecutive slots (up to
 * a chunk's worth) is read as one vectored I/O.
 * Context: mmap_lock held for read, or the range's VMA read-locked; no ptl.
 * Return: where it stopped (end, or the first page it could not start).
 */
unsigned long swap_readahead(struct fl_space *sp, unsigned long start, unsigned long end)
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
		struct frame *f = pte_type(pte) == PTE_SWAP ? frame_alloc(sp) : NULL;
		if (f) {
			f->slot = pte_value(pte);
			f->owns_slot = true;
			f->addr = a;
			f->chunk = c;
			f->flags = FRAME_LOCKED | FRAME_FROM_READ;
			f->io = (struct swap_io){
				.slot = f->slot, .buf = f->buf, .done = swap_read_done};
			WRITE_ONCE(c->pte[pt_index(a)], mk_pte(PTE_FRAME, 0, frame_index(sp, f)));
		}
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

/* MADV_COLD: the pages of [start, end) lose their reference bits. */
void swap_deactivate(struct fl_space *sp, unsigned long start, unsigned long end)
{
	for (unsigned long a = start; a < end; a += PAGE_SIZE) {
		struct pt_chunk *c = pt_chunk_lookup(sp, a);
		if (!c) {
			a = (a & PT_CHUNK_MASK) + PT_CHUNK_SIZE - PAGE_SIZE;
			continue;
		}
		atomic_fetch_and(&c->pte[pt_index(a)], ~PTE_REF);
	}
}

/* ---- setup ------------------------------------------------------------ */

int swap_init(struct fl_space *sp)
{
	size_t n = sp->cfg.swap_frames;
	int ret;

	pthread_mutex_init(&sp->frame_lock, NULL);
	pthread_mutex_init(&sp->retry_lock, NULL);
	sp->retry_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sp->mem_fd = -1;
	if (sp->retry_fd < 0)
		return -errno;
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
	sp->frame_bufs = mmap(NULL, n * PAGE_SIZE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!sp->frames || sp->frame_bufs == MAP_FAILED) {
		sp->frame_bufs = NULL;
		return -ENOMEM;
	}
	sp->nr_frames = n;
	for (size_t i = n; i-- > 0;) {
		struct frame *f = &sp->frames[i];
		pthread_mutex_init(&f->lock, NULL);
		f->sp = sp;
		f->buf = (char *)sp->frame_bufs + i * PAGE_SIZE;
		f->slot = SWAP_NO_SLOT;
		f->next_free = sp->frame_free;
		sp->frame_free = f;
	}
	pthread_mutex_init(&sp->batch_lock, NULL);
	pthread_cond_init(&sp->batches_back, NULL);
	sp->batches = calloc(WRITE_BATCHES, sizeof(*sp->batches));
	if (!sp->batches)
		return -ENOMEM;
	for (int i = 0; i < WRITE_BATCHES; i++) {
		sp->batches[i].sp = sp;
		sp->batches[i].next_free = sp->batch_free;
		sp->batch_free = &sp->batches[i];
	}
	sp->mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (sp->mem_fd < 0)
		return -errno;
	/* In flight at most: one I/O per frame, one per batch. */
	ret = swapdev_open_delay(&sp->dev, sp->cfg.swap_path, 256,
				 (uint64_t)sp->cfg.swap_delay_us * 1000,
				 (unsigned int)(sp->nr_frames + WRITE_BATCHES));
	if (ret) {
		fl_log("cannot open the swap store %s: %s",
		       sp->cfg.swap_path ? sp->cfg.swap_path : "(temporary file)", strerror(-ret));
		return ret;
	}
	sp->dev_open = true;
	sp->swap_on = true;
	return 0;
}

/* Context: every VMA is gone (all frames detached) and no fault runs. */
void swap_destroy(struct fl_space *sp)
{
	if (sp->dev_open && sp->batches) {
		/* A failed readahead batch submits again from its completion:
		 * every batch back in the pool, and nothing more will be. */
		pthread_mutex_lock(&sp->batch_lock);
		while (sp->batches_out)
			pthread_cond_wait(&sp->batches_back, &sp->batch_lock);
		pthread_mutex_unlock(&sp->batch_lock);
	}
	if (sp->dev_open)
		swapdev_close(&sp->dev); /* waits for the I/O in flight */
	sp->dev_open = false;
	if (sp->frames)
		for (size_t i = 0; i < sp->nr_frames; i++)
			pthread_mutex_destroy(&sp->frames[i].lock);
	free(sp->frames);
	sp->frames = NULL;
	if (sp->batches) {
		pthread_cond_destroy(&sp->batches_back);
		pthread_mutex_destroy(&sp->batch_lock);
	}
	free(sp->batches);
	sp->batches = NULL;
	if (sp->frame_bufs)
		munmap(sp->frame_bufs, sp->nr_frames * PAGE_SIZE);
	if (sp->mem_fd >= 0)
		close(sp->mem_fd);
	if (sp->retry_fd >= 0)
		close(sp->retry_fd);
	sp->retry_fd = -1;
	pthread_mutex_destroy(&sp->frame_lock);
	pthread_mutex_destroy(&sp->retry_lock);
}
