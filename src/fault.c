// SPDX-License-Identifier: MIT
/*
 * The fault path: do_user_addr_fault() and handle_mm_fault() for anonymous
 * demand-zero memory, with the kernel's VMA-lock-first protocol.
 *
 *   lock_vma_under_rcu()          success: handle under the VMA read lock;
 *                                 VM_FAULT_RETRY/COMPLETED mean the lock is
 *                                 already released (6.6 semantics), a RETRY
 *                                 counts vma_lock_retry and runs again under
 *                                 mmap_lock
 *   otherwise (vma_lock_abort)    mmap_read_lock(), vma_lookup(), handle
 *
 * First touch maps a window of pages, not one (fault-around): a read fault
 * maps its aligned window of cfg.fault_around pages to the zero page (costs
 * no memory); a write fault fills only its own page, unless faults in the VMA
 * are sequential, in which case the window doubles on each fault up to
 * cfg.fault_around_max.  This is where user space beats the kernel: one
 * userfaultfd round trip installs many pages.
 */
#include "internal.h"

#include <linux/futex.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd_compat.h"

/* Pages the window covers, at most 4096 (PT_CHUNK_PAGES chunks of 64). */
#define MAX_WINDOW_CHUNKS (4096 / PT_CHUNK_PAGES + 1)

static bool access_error(struct vma *vma, unsigned int flags)
{
	if (flags & FAULT_FLAG_WRITE)
		return !(vma->prot & PROT_WRITE);
	return !(vma->prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
}

/*
 * The first-touch window of a fault at page.  A fault that continues one of
 * the VMA's streams (it is where that stream's last window ended) doubles the
 * window; any other starts at the base and takes over the stream slot that
 * was used least recently.  *stream says which slot to update afterwards.
 */
static void window_of(struct fl_space *sp, struct vma *vma, unsigned long page, bool write,
		      unsigned long *ws, unsigned long *we, unsigned int *wpages,
		      unsigned int *stream)
{
	unsigned int base = write ? 1 : sp->cfg.fault_around;
	unsigned int w = base, i;
	unsigned long s, e;

	for (i = 0; i < FA_STREAMS; i++)
		if (page == READ_ONCE(vma->fa_next[i]))
			break;
	if (i < FA_STREAMS) {
		/* Sequential: grow from the stream's previous window. */
		unsigned int prev = READ_ONCE(vma->fa_window[i]);
		w = MIN(MAX(prev * 2, base), sp->cfg.fault_around_max);
		s = page;
	} else {
		i = atomic_fetch_add_explicit(&vma->fa_victim, 1, memory_order_relaxed) %
		    FA_STREAMS;
		s = page - ((page >> PAGE_SHIFT) % w) * PAGE_SIZE;
	}
	e = s + (unsigned long)w * PAGE_SIZE;
	if (e < s) /* top of the address space */
		e = PAGE_MASK;
	*ws = MAX(s, vma->vm_start);
	*we = MIN(e, vma->vm_end);
	*wpages = w;
	*stream = i;
}

static _Atomic uint64_t *pte_of(struct pt_chunk **chunks, unsigned long ws, unsigned long a)
{
	struct pt_chunk *c = chunks[(a >> 18) - (ws >> 18)];

	return &c->pte[pt_index(a)];
}

static void set_present(struct fl_space *sp, struct pt_chunk **chunks, unsigned long ws,
			unsigned long s, unsigned long e, uint64_t pte)
{
	for (unsigned long a = s; a < e; a += PAGE_SIZE) {
		struct pt_chunk *c = chunks[(a >> 18) - (ws >> 18)];
		FL_DEBUG_BUG_ON((READ_ONCE(c->pte[pt_index(a)]) & PTE_TYPE_MASK) != PTE_NONE);
		WRITE_ONCE(c->pte[pt_index(a)], pte);
		c->nr_present++;
	}
	atomic_fetch_add(&sp->resident_pages, (long)((e - s) >> PAGE_SHIFT));
}

/*
 * Install zero-filled pages over [s, e): private pages for a write, the zero
 * page for a read.  Return: bytes installed from s; *err is 0 or the errno
 * that stopped it.
 * Context: the ptl of every chunk of the range held.
 */
static unsigned long install_zero(struct fl_space *sp, unsigned long s, unsigned long e, bool write,
				  int *err)
{
	return write ? uffd_copy(sp, s, sp->zero_src, e - s, err)
		     : uffd_zeropage(sp, s, e - s, err);
}

/*
 * Demand-zero fault on an anonymous page: do_anonymous_page() plus
 * fault-around.
 * Context: vma read-locked (FAULT_FLAG_VMA_LOCK) or mmap_lock held for read;
 * returns with it still held.
 * Return: 0 if the page is now present (installed here), VM_FAULT_NOPAGE if
 * this call did not install it (already present, or the kernel refused for
 * now: the access will simply fault again).
 */
static int do_anonymous_page(struct fl_space *sp, struct vma *vma, struct pt_chunk *c,
			     unsigned long addr, unsigned int flags)
{
	struct pt_chunk *chunks[MAX_WINDOW_CHUNKS];
	unsigned long page = addr & PAGE_MASK, ws, we, rs, re, a;
	bool write = flags & FAULT_FLAG_WRITE;
	unsigned int wpages, stream, nchunks, i;
	int ret = VM_FAULT_NOPAGE;

	window_of(sp, vma, page, write, &ws, &we, &wpages, &stream);
	mem_reserve(sp, (we - ws) >> PAGE_SHIFT);
	nchunks = (unsigned int)(((we - 1) >> 18) - (ws >> 18) + 1);
	FL_BUG_ON(nchunks > MAX_WINDOW_CHUNKS);
	for (i = 0; i < nchunks; i++) {
		unsigned long base = (ws & PT_CHUNK_MASK) + (unsigned long)i * PT_CHUNK_SIZE;
		/* The caller's lookup, when it found the chunk, is not redone. */
		chunks[i] = c && c->base == base ? c : pt_chunk_get(sp, base);
		if (!chunks[i]) {
			/* Out of memory for metadata: no install; the access will
			 * fault again. */
			return VM_FAULT_NOPAGE;
		}
	}
	/* In address order: the only order in which several are taken. */
	for (i = 0; i < nchunks; i++)
		pt_lock(chunks[i]);

	if (READ_ONCE(*pte_of(chunks, ws, page)) != PTE_NONE) {
		/* Changed since the caller looked: let the access fault again. */
		count_event(sp, faults_spurious);
		goto out;
	}
	/* The run of absent pages around the faulting one, inside the window. */
	for (rs = page; rs > ws && READ_ONCE(*pte_of(chunks, ws, rs - PAGE_SIZE)) == PTE_NONE;
	     rs -= PAGE_SIZE)
		;
	for (re = page + PAGE_SIZE; re < we && READ_ONCE(*pte_of(chunks, ws, re)) == PTE_NONE;
	     re += PAGE_SIZE)
		;

	/*
	 * Where this stream goes on, recorded before the install: the ioctl
	 * wakes the faulting thread, whose next fault may arrive (on another
	 * handler) before this one returns.
	 */
	unsigned long hinted = re;
	WRITE_ONCE(vma->fa_next[stream], hinted);
	WRITE_ONCE(vma->fa_window[stream], wpages);
	for (a = rs; a < re;) {
		int err;
		unsigned long done = install_zero(sp, a, re, write, &err);

		if (done)
			set_present(sp, chunks, ws, a, a + done,
				    PTE_PRESENT | PTE_REF | (write ? 0 : PTE_ZEROPAGE));
		a += done;
		if (!err)
			break;
		if (err == EEXIST) {
			/*
			 * The kernel already has a page where the table has
			 * none: the invariant is broken (something outside
			 * faultline mapped it).  Trust the kernel.
			 */
			fl_dbg(sp, "EEXIST at %#lx: page present behind our back", a);
			set_present(sp, chunks, ws, a, a + PAGE_SIZE, PTE_PRESENT);
			a += PAGE_SIZE;
			continue;
		}
		if (err == ENOENT && re - a > PAGE_SIZE && a <= page) {
			/*
			 * The kernel wants the range inside one of its VMAs, and
			 * it keeps apart some that we merge (anonymous VMAs
			 * with different anon_vmas): shrink to the faulting
			 * page.  If that fails too, the VMA really is gone.
			 */
			rs = a = page;
			re = page + PAGE_SIZE;
			continue;
		}
		if (err == EAGAIN)
			count_event(sp, uffd_eagain);
		else
			fl_dbg(sp, "install at %#lx failed: errno %d", a, err);
		re = a; /* stop: what is installed stays */
		break;
	}
	if (a > page) {
		unsigned long n = (a - rs) >> PAGE_SHIFT;
		ret = 0;
		count_event_n(sp, fault_around_pages, n - 1);
		if (write)
			count_event_n(sp, pages_zero_filled, n);
		else
			count_event_n(sp, pages_zero_mapped, n);
		if (a != hinted) /* it stopped early, or shrank to one page */
			WRITE_ONCE(vma->fa_next[stream], a);
	}
out:
	for (i = nchunks; i-- > 0;)
		pt_unlock(chunks[i]);
	return ret;
}

/* ---- swap-in -------------------------------------------------------- */

/*
 * Install the page held by frame f at page: the swap cache hit.
 * Context: the ptl of c held, the fault's lock (VMA or mmap) held; f is
 * up to date.  Return: 0, or VM_FAULT_NOPAGE if the kernel refused for now.
 */
int install_from_frame(struct fl_space *sp, struct vma *vma, struct pt_chunk *c, unsigned long page,
		       struct frame *f)
{
	struct uffdio_copy cp = {.dst = page, .src = (unsigned long)f->buf, .len = PAGE_SIZE};
	bool clean;

	pthread_mutex_lock(&f->lock);
	/* A valid copy in the store: install write-protected, and the first
	 * store will tell us the page is dirty again. */
	clean = f->slot != SWAP_NO_SLOT && !(f->flags & (FRAME_WRITEBACK | FRAME_WERROR));
	pthread_mutex_unlock(&f->lock);
	if (clean)
		cp.mode = UFFDIO_COPY_MODE_WP;
	if (ioctl(sp->uffd, UFFDIO_COPY, &cp)) {
		if (errno == EAGAIN)
			count_event(sp, uffd_eagain);
		else
			fl_dbg(sp, "swap-in install at %#lx: errno %d", page, errno);
		return VM_FAULT_NOPAGE;
	}
	pthread_mutex_lock(&f->lock);
	if (f->flags & FRAME_FROM_READ)
		f->flags |= FRAME_USED;
	uint64_t hot = f->flags & FRAME_HOT ? 2ULL << PTE_HOT_SHIFT : 0;
	if (clean) {
		WRITE_ONCE(c->pte[pt_index(page)],
			   mk_pte(PTE_PRESENT, PTE_WP | PTE_REF | hot, f->slot));
		f->owns_slot = false; /* the slot goes with the page */
		f->slot = SWAP_NO_SLOT;
	} else {
		/* Dirty: the slot (if any) goes with the frame. */
		WRITE_ONCE(c->pte[pt_index(page)], mk_pte(PTE_PRESENT, PTE_REF | hot, 0));
		f->owns_slot = f->slot != SWAP_NO_SLOT;
	}
	pthread_mutex_unlock(&f->lock);
	c->nr_present++;
	atomic_fetch_add(&sp->resident_pages, 1);
	frame_detach(sp, f);
	return 0;
}

/*
 * Swap-cache fault-around: a fault that found its page read ahead also
 * installs the pages after it, in its chunk and VMA, whose readahead has
 * completed and that no fault is taking, so that a sequential reader does
 * not fault on each of them.  It stops at the first page that is not one.
 * Context: the ptl of c held, the fault's lock held.
 */
static void install_readahead_after(struct fl_space *sp, struct vma *vma, struct pt_chunk *c,
				    unsigned long page)
{
	unsigned long end = MIN(vma->vm_end, c->base + PT_CHUNK_SIZE), a;

	for (a = page + PAGE_SIZE; a < end; a += PAGE_SIZE) {
		uint64_t pte = READ_ONCE(c->pte[pt_index(a)]);
		struct frame *f;
		bool ready;

		if (pte_type(pte) != PTE_FRAME)
			break;
		f = frame_of(sp, pte);
		pthread_mutex_lock(&f->lock);
		ready = (f->flags & ~FRAME_HOT) == (FRAME_FROM_READ | FRAME_UPTODATE) && !f->pins &&
			!f->waiters;
		pthread_mutex_unlock(&f->lock);
		if (!ready || install_from_frame(sp, vma, c, a, f))
			break;
	}
	count_event_n(sp, fault_around_pages, (a - page - PAGE_SIZE) >> PAGE_SHIFT);
}

/*
 * A handler thread's synchronous read: allowed while fewer than
 * cfg.handlers - 1 handlers sleep in one, so that one handler is always free
 * to read fault messages.  Return: whether the caller may read synchronously
 * (then it calls sync_read_put() once the read is done).
 */
static bool sync_read_get(struct fl_space *sp)
{
	int n = atomic_load_explicit(&sp->sync_readers, memory_order_relaxed);

	while (n < (int)sp->cfg.handlers - 1)
		if (atomic_compare_exchange_weak(&sp->sync_readers, &n, n + 1))
			return true;
	return false;
}

static void sync_read_put(struct fl_space *sp)
{
	atomic_fetch_sub(&sp->sync_readers, 1);
}

/*
 * The fault must wait for frame f (a read in flight): what it does with its
 * lock is the policy (ARCHITECTURE.md section 2).  Thread delivery parks a
 * continuation and returns VM_FAULT_PARKED; sigbus delivery sleeps here and
 * finishes the fault itself (also VM_FAULT_PARKED: it is finished).
 * Context: the ptl of c and the fault's lock held on entry; the ptl is
 * released here, and the fault's lock as the policy says.
 */
static int wait_on_frame(struct fl_space *sp, struct vma *vma, struct pt_chunk *c,
			 unsigned long addr, unsigned int flags, struct frame *f, uint64_t t0,
			 bool own_read)
{
	bool sigbus = flags & FAULT_FLAG_SIGBUS;
	struct waiter stack_w, *w;
	int policy = sp->cfg.policy;
	int ret = VM_FAULT_PARKED;
	bool on_stack, sync = false;

	if ((flags & FAULT_FLAG_VMA_LOCK) && policy == FL_POLICY_BAIL) {
		/* bail: do not wait under the VMA lock; retry under mmap. */
		pthread_mutex_unlock(&f->lock);
		pt_unlock(c);
		vma_end_read(vma);
		if (own_read) /* the read is ours to start: start it, do not wait */
			swap_submit(&sp->dev, &f->io);
		return VM_FAULT_RETRY;
	}
	/*
	 * Thread delivery: a handler thread reads its own fault's page itself,
	 * as the faulting thread does in sigbus delivery, when another handler
	 * is left to read fault messages (sync_read_get); the I/O then costs
	 * no hand-off to the completion thread and back.  Otherwise the read
	 * goes to io_uring and the fault parks a continuation.
	 */
	if (own_read && !sigbus)
		sync = sync_read_get(sp);
	on_stack = sigbus || sync;
	w = on_stack ? &stack_w : malloc(sizeof(*w));
	if (!w) {
		pthread_mutex_unlock(&f->lock);
		pt_unlock(c);
		if (own_read) /* the frame's read must still happen */
			swap_submit(&sp->dev, &f->io);
		return VM_FAULT_NOPAGE; /* let it fault again */
	}
	memset(w, 0, sizeof(*w));
	w->frame = f;
	w->sp = sp;
	w->addr = addr;
	w->flags = flags & ~(FAULT_FLAG_VMA_LOCK | FAULT_FLAG_MAY_SYNC);
	w->t0 = t0;
	w->t_park = fl_now_ns();
	w->on_stack = on_stack;
	/* Its own read: this thread runs the completion, and needs no wake. */
	w->self_done = on_stack && own_read;
	if (!(flags & FAULT_FLAG_VMA_LOCK))
		w->action = CONT_RETRY_MMAP; /* under mmap_lock: drop it, wait */
	else if (policy == FL_POLICY_HOLD)
		w->action = CONT_INSTALL;
	else if (policy == FL_POLICY_DROP_VMA)
		w->action = CONT_RETRY_VMA;
	else
		w->action = CONT_RETRY_MMAP;
	w->vma = w->action == CONT_INSTALL ? vma : NULL;
	/* Once on the list, w belongs to the completion (thread delivery
	 * frees it): read nothing of it after the unlock. */
	enum cont_action action = w->action;
	f->pins++;
	w->pinned = true;
	w->next = f->waiters;
	f->waiters = w;
	if (action == CONT_INSTALL && !on_stack)
		vma_handoff(vma); /* the completion will release it */
	pthread_mutex_unlock(&f->lock);
	pt_unlock(c);
	count_event(sp, parked);

	/* release_fault_lock(), unless the policy holds it. */
	if (!(flags & FAULT_FLAG_VMA_LOCK))
		mmap_read_unlock(sp);
	else if (action != CONT_INSTALL)
		vma_end_read(vma);
	if ((flags & FAULT_FLAG_VMA_LOCK) && action == CONT_RETRY_MMAP)
		ret |= VM_FAULT_RETRY; /* drop: counted as a retry now */
	if (own_read && !on_stack) {
		/* No handler to spare: io_uring, and the continuation waits. */
		swap_submit(&sp->dev, &f->io);
		return ret;
	}
	if (on_stack) {
		/* Our own read: the completion wakes us (and any other waiter)
		 * through the same path as an io_uring completion would.  In a
		 * handler thread it runs as on the completion thread (nothing
		 * blocks: this thread may still hold its VMA lock under hold). */
		if (own_read) {
			int res = swap_read_sync(&sp->dev, &f->io);
			bool was = in_completion;
			in_completion = !sigbus;
			swap_read_done(&f->io, res);
			in_completion = was;
		}
		if (sync)
			sync_read_put(sp);
		while (!atomic_load_explicit(&w->done, memory_order_acquire))
			syscall(SYS_futex, &w->done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		if (ret & VM_FAULT_RETRY)
			count_vm_vma_lock_event(sp, vma_lock_retry);
		cont_run(w);
		return VM_FAULT_PARKED | VM_FAULT_COMPLETED;
	}
	return ret;
}

/*
 * Swap readahead: a major fault where the VMA's last one left off continues
 * a stream, and the window of pages read ahead doubles (up to
 * fault_around_max); any other major fault resets it.  The pages beyond the
 * faulting one are read into the swap cache without waiting.
 * Context: the fault's lock held; no ptl.
 */
static void swap_readahead_stream(struct fl_space *sp, struct vma *vma, unsigned long page)
{
	unsigned int w = READ_ONCE(vma->ra_window);
	unsigned long s = page + PAGE_SIZE, e;

	if (page != READ_ONCE(vma->ra_next) || !w) {
		/* Not (yet) a stream: remember where it would go on. */
		WRITE_ONCE(vma->ra_next, s);
		WRITE_ONCE(vma->ra_window, 1);
		return;
	}
	w = MIN(w * 2, sp->cfg.fault_around_max);
	e = MIN(vma->vm_end, s + (unsigned long)w * PAGE_SIZE);
	WRITE_ONCE(vma->ra_window, w);
	/* The stream's next major fault comes after what is read ahead. */
	WRITE_ONCE(vma->ra_next, e);
	if (s < e)
		swap_readahead(sp, s, e);
}

/*
 * A fault on a page that is swapped out or in a frame: do_swap_page().
 * Context: the fault's lock held (VMA read lock or mmap_lock); released here
 * when the return has VM_FAULT_RETRY, VM_FAULT_COMPLETED or VM_FAULT_PARKED.
 */
static int do_swap_page(struct fl_space *sp, struct vma *vma, struct pt_chunk *c,
			unsigned long addr, unsigned int flags, uint64_t t0)
{
	unsigned long page = addr & PAGE_MASK;
	struct frame *f;
	bool ra = false, own_read = false;
	uint64_t pte;
	int ret;

	mem_reserve(sp, 1);
	pt_lock(c);
	pte = READ_ONCE(c->pte[pt_index(page)]);
	if (pte_type(pte) == PTE_SWAP) {
		f = frame_alloc(sp);
		if (!f) {
			/* Every frame is busy: let it fault again shortly. */
			pt_unlock(c);
			if (!in_completion)
				reclaim_pages(sp, 16, true);
			return VM_FAULT_NOPAGE;
		}
		f->slot = pte_value(pte);
		f->owns_slot = true;
		f->addr = page;
		f->chunk = c;
		f->flags = FRAME_LOCKED | FRAME_FROM_READ;
		/* Refault distance: evictions since this page left.  Fewer than
		 * the budget holds means it was evicted too early. */
		if (((uint32_t)atomic_load(&sp->evictions) - pte_stamp(pte)) % (1u << 24) <
		    (uint32_t)sp->limit_pages)
			f->flags |= FRAME_HOT;
		f->io = (struct swap_io){.slot = f->slot, .buf = f->buf, .done = swap_read_done};
		WRITE_ONCE(c->pte[pt_index(page)], mk_pte(PTE_FRAME, 0, frame_index(sp, f)));
		count_event(sp, faults_major); /* every read a fault issues */
		/* Sigbus delivery: this thread reads it itself once it has let
		 * go of its locks (wait_on_frame); a handler thread may too
		 * (MAY_SYNC), or submits it there; otherwise, io_uring now. */
		if (flags & (FAULT_FLAG_SIGBUS | FAULT_FLAG_MAY_SYNC))
			own_read = true;
		else
			swap_submit(&sp->dev, &f->io);
		pte = READ_ONCE(c->pte[pt_index(page)]);
		ra = true;
	} else if (pte_type(pte) == PTE_FRAME && !(flags & (FAULT_FLAG_CONT | FAULT_FLAG_TRIED))) {
		count_event(sp, faults_minor); /* once per fault, not per retry */
	}
	if (pte_type(pte) != PTE_FRAME) {
		pt_unlock(c);
		return VM_FAULT_NOPAGE; /* changed under us: fault again */
	}
	f = frame_of(sp, pte);
	if (ra) {
		/* Readahead after a major fault that goes on a stream: the
		 * reads go out before this fault waits for its own. */
		pt_unlock(c);
		swap_readahead_stream(sp, vma, page);
		pt_lock(c);
		if (READ_ONCE(c->pte[pt_index(page)]) != pte) {
			pt_unlock(c);
			if (own_read) /* zapped meanwhile: still complete the frame */
				swap_submit(&sp->dev, &f->io);
			return VM_FAULT_NOPAGE; /* changed meanwhile: fault again */
		}
	}
	pthread_mutex_lock(&f->lock);
	if (f->flags & FRAME_LOCKED)
		return wait_on_frame(sp, vma, c, addr, flags, f, t0, own_read);
	if (f->flags & FRAME_ERROR) {
		/* The kernel's bad swap read: this page, and only it, gets
		 * SIGBUS on every access until it is unmapped or dropped. */
		f->owns_slot = true; /* the bad slot is given up with the frame */
		pthread_mutex_unlock(&f->lock);
		WRITE_ONCE(c->pte[pt_index(page)], PTE_NONE | PTE_POISON);
		frame_detach(sp, f);
		/* If the marker cannot be installed now, the next fault on the
		 * entry tries again (handle_mm_fault). */
		uffd_poison(sp, page, PAGE_SIZE);
		count_event(sp, pages_poisoned);
		pt_unlock(c);
		return VM_FAULT_HWPOISON;
	}
	bool ra_hit = (f->flags & (FRAME_FROM_READ | FRAME_USED)) == FRAME_FROM_READ;
	pthread_mutex_unlock(&f->lock);
	/* The pages after a readahead hit first: the install of this one
	 * wakes the faulting thread, which goes on to them. */
	if (ra_hit)
		install_readahead_after(sp, vma, c, page);
	ret = install_from_frame(sp, vma, c, page, f);
	pt_unlock(c);
	return ret;
}

/*
 * The first store to a clean page (installed write-protected): it is dirty
 * now, and its swap copy goes.  Context: the fault's lock held.
 */
static int do_wp_page(struct fl_space *sp, struct pt_chunk *c, unsigned long addr)
{
	unsigned long page = addr & PAGE_MASK;
	int ret = VM_FAULT_NOPAGE;

	pt_lock(c);
	uint64_t pte = READ_ONCE(c->pte[pt_index(page)]);
	if (pte_type(pte) == PTE_PRESENT && (pte & PTE_WP)) {
		if (!uffd_writeprotect(sp, page, PAGE_SIZE, false)) {
			WRITE_ONCE(c->pte[pt_index(page)], mk_pte(PTE_PRESENT, PTE_REF, 0));
			swap_slot_free(&sp->dev, pte_value(pte));
			count_event(sp, faults_wp);
			ret = 0;
		}
	} else if (pte_type(pte) == PTE_PRESENT) {
		/*
		 * A write fault on a page the table holds writable: the kernel
		 * still has it write-protected (an eviction that let it go).
		 * Lift it, or the store faults for ever.
		 */
		if (!uffd_writeprotect(sp, page, PAGE_SIZE, false))
			ret = 0;
	}
	pt_unlock(c);
	return ret;
}

/*
 * handle_mm_fault(): dispatch on the page's entry.
 * Context: with FAULT_FLAG_VMA_LOCK the VMA read-locked, else mmap_lock held
 * for read.  VM_FAULT_RETRY, VM_FAULT_COMPLETED and VM_FAULT_PARKED mean the
 * lock is no longer this call's (released, or handed to a continuation).
 */
int handle_mm_fault(struct fl_space *sp, struct vma *vma, unsigned long addr, unsigned int flags,
		    uint64_t t0)
{
	unsigned long page = addr & PAGE_MASK;
	struct pt_chunk *c;
	uint64_t pte = PTE_NONE;

	if (flags & FAULT_FLAG_VMA_LOCK)
		vma_assert_read_locked(vma);
	else
		mmap_assert_locked(sp);
	c = pt_chunk_lookup(sp, page);
	if (c)
		pte = READ_ONCE(c->pte[pt_index(page)]);
	switch (pte_type(pte)) {
	case PTE_NONE:
		if (pte & PTE_POISON) {
			/* Make sure the marker is there (a failed poison is
			 * retried; EEXIST means it is). */
			pt_lock(c);
			if (READ_ONCE(c->pte[pt_index(page)]) == (PTE_NONE | PTE_POISON))
				uffd_poison(sp, page, PAGE_SIZE);
			pt_unlock(c);
			return VM_FAULT_HWPOISON;
		}
		return do_anonymous_page(sp, vma, c, addr, flags);
	case PTE_PRESENT:
		if ((flags & FAULT_FLAG_WRITE) && ((pte & PTE_WP) || sp->swap_on))
			return do_wp_page(sp, c, addr); /* PRESENT: c is set */
		count_event(sp, faults_spurious);
		return VM_FAULT_NOPAGE;
	default:
		/* SWAP or FRAME entries live in a chunk: c is set. */
		return do_swap_page(sp, vma, c, addr, flags, t0);
	}
}

/*
 * The end of a fault: wake the faulting thread if nothing woke it, and
 * account.  Context: no lock held.
 */
void fault_done(struct fl_space *sp, unsigned long addr, unsigned int flags, int ret, uint64_t t0)
{
	if ((ret & (VM_FAULT_SIGSEGV | VM_FAULT_NOPAGE | VM_FAULT_HWPOISON)) &&
	    !(flags & FAULT_FLAG_SIGBUS))
		uffd_wake(sp, addr & PAGE_MASK, PAGE_SIZE);
	fl_hist_record(&stat_stripe(sp)->fault_ns, fl_now_ns() - t0);
}

/*
 * The fault under mmap_lock: the fallback, and every retry.  With
 * FAULT_FLAG_NOWAIT (the completion thread, which must not wait for
 * mmap_lock) the lock is only tried, and a busy lock ends the attempt with
 * nothing done.
 * Context: no faultline lock held.  Return: as fl_handle_fault(), or
 * VM_FAULT_PARKED if a continuation owns the fault now, or VM_FAULT_LOCKBUSY.
 */
int fault_retry_mmap(struct fl_space *sp, unsigned long addr, unsigned int flags, uint64_t t0)
{
	struct vma *vma;
	int ret;

	if (!(flags & FAULT_FLAG_NOWAIT))
		mmap_read_lock(sp);
	else if (!mmap_read_trylock(sp))
		return VM_FAULT_LOCKBUSY;
	vma = vma_lookup(sp, addr);
	if (!vma || access_error(vma, flags)) {
		mmap_read_unlock(sp);
		count_event(sp, faults_bad);
		return VM_FAULT_SIGSEGV;
	}
	ret = handle_mm_fault(sp, vma, addr, flags & ~(FAULT_FLAG_VMA_LOCK | FAULT_FLAG_NOWAIT),
			      t0);
	if (ret & VM_FAULT_PARKED)
		return VM_FAULT_PARKED;
	/* Only a fault under a VMA lock retries (bail's second step is a
	 * park with mmap_lock dropped, above). */
	FL_BUG_ON(ret & VM_FAULT_RETRY);
	if (!(ret & VM_FAULT_COMPLETED))
		mmap_read_unlock(sp);
	return ret;
}

/*
 * Serve one page fault at addr: do_user_addr_fault().
 * Context: no faultline lock held.  In thread delivery the faulting thread
 * is woken when the fault ends without having installed its page (so that
 * it retries the access and the kernel decides).
 * Return: 0 if the page was installed or present, VM_FAULT_SIGSEGV if the
 * address is outside the space's VMAs or against their protection,
 * VM_FAULT_NOPAGE if nothing could be installed now, VM_FAULT_PARKED if the
 * fault waits for I/O and a continuation will finish it.
 */
int fl_handle_fault(struct fl_space *sp, unsigned long addr, unsigned int flags)
{
	uint64_t t0 = fl_now_ns();
	struct vma *vma;
	int ret;

	count_event(sp, faults);
	if (flags & FAULT_FLAG_WRITE)
		count_event(sp, faults_write);
	else
		count_event(sp, faults_read);

	if (sp->cfg.policy == FL_POLICY_MMAP)
		goto lock_mmap; /* before 6.4: no VMA locks at all */
	vma = lock_vma_under_rcu(sp, addr);
	if (!vma)
		goto lock_mmap;
	if (unlikely(access_error(vma, flags))) {
		vma_end_read(vma);
		goto lock_mmap;
	}
	ret = handle_mm_fault(sp, vma, addr, flags | FAULT_FLAG_VMA_LOCK, t0);
	if (!(ret & (VM_FAULT_RETRY | VM_FAULT_COMPLETED | VM_FAULT_PARKED)))
		vma_end_read(vma);
	if (ret & VM_FAULT_PARKED) {
		/* Counted when it finishes; a drop-policy park is a retry. */
		if ((ret & VM_FAULT_RETRY) && !(flags & FAULT_FLAG_SIGBUS))
			count_vm_vma_lock_event(sp, vma_lock_retry);
		return VM_FAULT_PARKED;
	}
	if (!(ret & VM_FAULT_RETRY)) {
		count_vm_vma_lock_event(sp, vma_lock_success);
		goto done;
	}
	count_vm_vma_lock_event(sp, vma_lock_retry);
	flags |= FAULT_FLAG_TRIED;

lock_mmap:
	ret = fault_retry_mmap(sp, addr, flags, t0);
	if (ret & VM_FAULT_PARKED)
		return VM_FAULT_PARKED;
done:
	fault_done(sp, addr, flags, ret, t0);
	return ret & (VM_FAULT_SIGSEGV | VM_FAULT_NOPAGE | VM_FAULT_HWPOISON);
}
