// SPDX-License-Identifier: MIT
/*
 * The fault path: do_user_addr_fault() and handle_mm_fault(), with the
 * kernel's VMA-lock-first protocol.
 *
 *   fl_handle_fault()               lock_vma_under_rcu(); on failure (counted
 *                                   vma_lock_abort there) straight to mmap_lock
 *     handle_fault_vma_locked()     handle_mm_fault() under the VMA read lock,
 *                                   and vma_lock_success or vma_lock_retry
 *     fault_retry_mmap()            mmap_read_lock(), vma_lookup(),
 *                                   handle_mm_fault(): the fallback, and every
 *                                   retry
 *   handle_mm_fault()               dispatch on the page's entry:
 *     do_file_fault()               a file VMA's NONE or PRESENT entry: the
 *                                   page cache (filemap.c)
 *     do_anonymous_page()           NONE: demand-zero, with fault-around
 *     do_wp_page()                  PRESENT, a write to a clean page
 *     do_swap_page()                SWAP or FRAME: swap-in through the cache
 *       frame_lock_or_retry()       the frame's read is in flight: the policy
 *
 * VM_FAULT_RETRY and VM_FAULT_PARKED mean the fault's lock is no longer the
 * caller's (6.6 semantics for RETRY): released, or kept by a continuation.
 *
 * A swap fault, top to bottom.  do_swap_page() takes the page's ptl; a SWAP
 * entry gets a frame in the swap cache (swap_cache_add(), locked while its
 * read is in flight) and the read starts, or is left for this thread to do
 * itself; a FRAME entry is a page some fault or readahead already added.  An
 * up-to-date frame is installed (install_from_frame()) and the fault is
 * done.  A frame still being read goes to frame_lock_or_retry(), the one
 * place where the policy decides what the fault does with its lock while it
 * waits: bail gives the VMA lock up and retries at once; the others wait,
 * keeping the VMA lock (hold) or not, either asleep in this thread
 * (fault_sleep(): sigbus delivery, or a handler thread reading its own
 * fault's page) or parked as a continuation that the read's completion runs
 * (fault_park(): thread delivery; cont.c).  What is left of the fault then
 * runs handle_mm_fault() again: under the VMA lock (hold, drop-vma, through
 * handle_fault_vma_locked()) or under mmap_lock (fault_retry_mmap()).
 *
 * First touch maps a window of pages, not one (fault-around): a read fault
 * maps its aligned window of cfg.fault_around pages to the zero page (costs
 * no memory); a write fault fills only its own page, unless faults in the VMA
 * are sequential, in which case the window doubles on each fault up to
 * cfg.fault_around_max.  This is where user space beats the kernel: one
 * userfaultfd round trip installs many pages.
 */
#include "fault.h"

#include <sys/mman.h>

#include "cont.h"
#include "filemap.h"
#include "mmap_lock.h"
#include "pgtable.h"
#include "reclaim.h"
#include "space.h"
#include "stats.h"
#include "swap.h"
#include "touchlog.h"
#include "uffd.h"
#include "vma.h"

/* Chunks a first-touch window can span: fault_around_max is at most 4096
 * pages, and the window need not be chunk-aligned. */
#define MAX_WINDOW_CHUNKS (4096 / PT_CHUNK_PAGES + 1)

/* Whether vma forbids the access.  Context: vma locked, or mmap_lock. */
bool access_error(struct vma *vma, unsigned int flags)
{
	if (flags & FAULT_FLAG_WRITE)
		return !(vma->prot & PROT_WRITE);
	return !(vma->prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
}

/* ---- demand-zero faults --------------------------------------------- */

/* A first-touch window: [start, end) clamped to the VMA, its size in pages
 * before the clamp, and the VMA's stream slot it updates. */
struct fa_window {
	unsigned long start, end;
	unsigned int pages, stream;
};

/*
 * The first-touch window of vmf.  A fault that continues one of the VMA's
 * streams (it is where that stream's last window ended) doubles the window;
 * any other starts at the base and takes over the stream slot that was used
 * least recently.
 */
static void window_of(const struct vm_fault *vmf, struct fa_window *win)
{
	struct fl_space *sp = vmf->sp;
	struct vma *vma = vmf->vma;
	unsigned long page = vmf->address, s, e;
	unsigned int base = (vmf->flags & FAULT_FLAG_WRITE) ? 1 : sp->cfg.fault_around;
	unsigned int w = base, i;

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
	win->start = MAX(s, vma->vm_start);
	win->end = MIN(e, vma->vm_end);
	win->pages = w;
	win->stream = i;
}

/* The entry of a in a window whose chunks, from ws's on, are chunks[]. */
static _Atomic uint64_t *pte_of(struct pt_chunk **chunks, unsigned long ws, unsigned long a)
{
	return &chunks[pt_chunk_nr(a) - pt_chunk_nr(ws)]->pte[pt_index(a)];
}

static void set_present(struct fl_space *sp, struct pt_chunk **chunks, unsigned long ws,
			unsigned long s, unsigned long e, uint64_t pte)
{
	for (unsigned long a = s; a < e; a += PAGE_SIZE) {
		struct pt_chunk *c = chunks[pt_chunk_nr(a) - pt_chunk_nr(ws)];
		FL_DEBUG_BUG_ON(pte_type(READ_ONCE(c->pte[pt_index(a)])) != PTE_NONE);
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
	return write ? uffd_copy(sp, s, sp->zero_src, e - s, false, err)
		     : uffd_zeropage(sp, s, e - s, err);
}

/*
 * Demand-zero fault on an anonymous page: do_anonymous_page() plus
 * fault-around.
 * Context: the fault's lock held (VMA read lock or mmap_lock); returns with
 * it still held.
 * Return: 0 if the page is now present (installed here), VM_FAULT_NOPAGE if
 * this call did not install it (already present, or the kernel refused for
 * now: the access will simply fault again).
 */
static int do_anonymous_page(struct vm_fault *vmf)
{
	struct pt_chunk *chunks[MAX_WINDOW_CHUNKS];
	struct fl_space *sp = vmf->sp;
	struct vma *vma = vmf->vma;
	unsigned long page = vmf->address, ws, we, rs, re, a;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct fa_window win;
	unsigned int nchunks, i;
	int ret = VM_FAULT_NOPAGE;

	window_of(vmf, &win);
	ws = win.start;
	we = win.end;
	mem_reserve(sp, (we - ws) >> PAGE_SHIFT);
	nchunks = (unsigned int)(pt_chunk_nr(we - 1) - pt_chunk_nr(ws) + 1);
	FL_BUG_ON(nchunks > MAX_WINDOW_CHUNKS);
	for (i = 0; i < nchunks; i++) {
		unsigned long base = (ws & PT_CHUNK_MASK) + (unsigned long)i * PT_CHUNK_SIZE;
		/* The dispatch's lookup, when it found the chunk, is not redone. */
		chunks[i] = vmf->chunk && vmf->chunk->base == base ? vmf->chunk
								   : pt_chunk_get(sp, base);
		if (!chunks[i]) {
			/* Out of memory for metadata: no install; the access will
			 * fault again. */
			return VM_FAULT_NOPAGE;
		}
	}
	/* In address order: the only order in which several are taken. */
	for (i = 0; i < nchunks; i++)
		pt_lock(chunks[i]);

	if (READ_ONCE(*pte_of(chunks, ws, page)) != vmf->orig_pte) {
		/* Changed since the dispatch: let the access fault again. */
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
	WRITE_ONCE(vma->fa_next[win.stream], hinted);
	WRITE_ONCE(vma->fa_window[win.stream], win.pages);
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
			WRITE_ONCE(vma->fa_next[win.stream], a);
	}
out:
	for (i = nchunks; i-- > 0;)
		pt_unlock(chunks[i]);
	return ret;
}

/* ---- the faulting page's entry ------------------------------------- */

/* The entry of the faulting page (the kernel's vmf->pte).  Context:
 * vmf->chunk set. */
static _Atomic uint64_t *fault_pte(const struct vm_fault *vmf)
{
	return &vmf->chunk->pte[pt_index(vmf->address)];
}

/*
 * pte_offset_map_lock() for the fault: the ptl of vmf->chunk taken, and the
 * entry of the faulting page read under it; pt_unlock(vmf->chunk) ends it.
 * Context: the fault's lock held, vmf->chunk set.  Return: the entry.
 */
static uint64_t fault_pte_lock(struct vm_fault *vmf)
{
	pt_lock(vmf->chunk);
	return READ_ONCE(*fault_pte(vmf));
}

/* ---- swap-in -------------------------------------------------------- */

/*
 * Install the page held by frame f at page: a swap-cache hit.
 * Context: the ptl of c held, and a lock that keeps page's VMA (a fault's
 * VMA or mmap lock, or a VMA read lock taken for the purpose); f is up to
 * date.  Return: 0, or VM_FAULT_NOPAGE if the kernel refused for now.
 */
int install_from_frame(struct fl_space *sp, struct pt_chunk *c, unsigned long page, struct frame *f)
{
	uint64_t hot;
	bool clean;
	int err;

	pthread_mutex_lock(&f->lock);
	/* A valid copy in the store: install write-protected, and the first
	 * store will tell us the page is dirty again. */
	clean = f->slot != SWAP_NO_SLOT && !(f->flags & (FRAME_WRITEBACK | FRAME_WERROR));
	pthread_mutex_unlock(&f->lock);
	if (uffd_copy(sp, page, f->buf, PAGE_SIZE, clean, &err) != PAGE_SIZE) {
		if (err == EAGAIN)
			count_event(sp, uffd_eagain);
		else
			fl_dbg(sp, "swap-in install at %#lx: errno %d", page, err);
		return VM_FAULT_NOPAGE;
	}
	pthread_mutex_lock(&f->lock);
	if ((f->flags & (FRAME_PREFETCH | FRAME_USED)) == FRAME_PREFETCH)
		swap_prefetch_used(sp, f);
	if (f->flags & FRAME_FROM_READ)
		f->flags |= FRAME_USED;
	hot = f->flags & FRAME_HOT ? 2ULL << PTE_HOT_SHIFT : 0;
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
 * Context: the ptl of vmf->chunk held, the fault's lock held.
 */
static void install_readahead_after(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	struct pt_chunk *c = vmf->chunk;
	unsigned long page = vmf->address;
	unsigned long end = MIN(vmf->vma->vm_end, c->base + PT_CHUNK_SIZE), a;

	for (a = page + PAGE_SIZE; a < end; a += PAGE_SIZE) {
		uint64_t pte = READ_ONCE(c->pte[pt_index(a)]);
		struct frame *f;
		bool ready;

		if (pte_type(pte) != PTE_FRAME)
			break;
		f = frame_of(sp, pte);
		pthread_mutex_lock(&f->lock);
		ready = (f->flags & ~(FRAME_HOT | FRAME_PREFETCH)) ==
				(FRAME_FROM_READ | FRAME_UPTODATE) &&
			!f->pins && !f->waiters;
		pthread_mutex_unlock(&f->lock);
		if (!ready || install_from_frame(sp, c, a, f))
			break;
	}
	count_event_n(sp, fault_around_pages, (a - page - PAGE_SIZE) >> PAGE_SHIFT);
}

/*
 * Prefetch beyond sequential: a major fault that continues no sequential
 * stream of its VMA goes to the space's trend detector (prefetch.c: Leap's
 * majority vote over the recent faults, strides and interleaved streams),
 * and if a stream goes on or starts there, the pages it predicts are read
 * into the swap cache, each page of a strided stream on its own.  Purely
 * random faults find no trend and read nothing ahead.
 * Context: the fault's lock held (the VMA stays); no ptl.
 */
static void trend_prefetch(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	struct vma *vma = vmf->vma;
	struct pf_plan plan;
	long first = (long)(vma->vm_start >> PAGE_SHIFT), last = (long)(vma->vm_end >> PAGE_SHIFT);

	if (!sp->cfg.prefetch ||
	    !pf_on_fault(&sp->pf, &sp->pf_fb, (long)(vmf->address >> PAGE_SHIFT), &plan))
		return;
	if (plan.stride == 1) {
		long end = MIN(plan.start + (long)plan.count, last);
		if (plan.start >= first && plan.start < end)
			swap_prefetch(sp, (unsigned long)plan.start << PAGE_SHIFT,
				      (unsigned long)end << PAGE_SHIFT);
		return;
	}
	for (unsigned int k = 0; k < plan.count; k++) {
		long p = plan.start + (long)k * plan.stride;
		if (p < first || p >= last)
			break;
		swap_prefetch(sp, (unsigned long)p << PAGE_SHIFT,
			      (unsigned long)(p + 1) << PAGE_SHIFT);
	}
}

/*
 * Swap readahead: a major fault where the VMA's last one left off continues
 * a stream, and the window of pages read ahead doubles (up to
 * fault_around_max, and the prefetch window's cap: it shrinks while read-ahead
 * pages go unused); any other major fault resets it and goes to the trend
 * detector.  The pages beyond the faulting one are read into the swap cache
 * without waiting.
 * Context: the fault's lock held; no ptl.
 */
static void swap_readahead_stream(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	struct vma *vma = vmf->vma;
	unsigned int w = READ_ONCE(vma->ra_window);
	unsigned int cap = MAX(atomic_load_explicit(&sp->pf_fb.cap, memory_order_relaxed), 1u);
	unsigned long s = vmf->address + PAGE_SIZE, e;

	if (vmf->address != READ_ONCE(vma->ra_next) || !w) {
		/* Not (yet) a stream: remember where it would go on. */
		WRITE_ONCE(vma->ra_next, s);
		WRITE_ONCE(vma->ra_window, 1);
		trend_prefetch(vmf);
		return;
	}
	w = MIN(MIN(w * 2, sp->cfg.fault_around_max), cap);
	e = MIN(vma->vm_end, s + (unsigned long)w * PAGE_SIZE);
	WRITE_ONCE(vma->ra_window, w);
	/* The stream's next major fault comes after what is read ahead. */
	WRITE_ONCE(vma->ra_next, e);
	if (s < e)
		swap_prefetch(sp, s, e);
}

/*
 * folio_lock_or_retry() for a frame whose read is in flight: what the fault
 * does with its lock while it waits.  This is the policy (ARCHITECTURE.md
 * section 2), and the one place that applies it:
 *
 *   under mmap_lock (mmap; any retry)  drop mmap_lock, wait, retry under it
 *   bail, under a VMA lock             release it and retry under mmap_lock
 *                                      at once (that retry waits, as above)
 *   drop                               drop the VMA lock, wait, retry under
 *                                      mmap_lock
 *   drop-vma                           drop the VMA lock, wait, take it again
 *   hold                               keep the VMA read lock through the
 *                                      wait and finish under it
 *   v2                                 as drop-vma: a locked frame is a read
 *                                      in flight, never an up-to-date page
 *                                      whose lock alone is contended (the
 *                                      file path has those: filemap.c)
 *   v2-anon                            v2 on an anonymous VMA, drop on the
 *                                      private copies of a file VMA
 *
 * How the fault waits: asleep in this thread (fault_sleep()) in sigbus
 * delivery, or when a handler thread reads its own fault's page while
 * another handler is free to read fault messages (sync_read_get());
 * otherwise parked (fault_park()), and the handler goes on.
 * own_read: the frame's read is this fault's to start (not yet submitted).
 * Context: the ptl of vmf->chunk, f->lock and the fault's lock held; the ptl
 * and f->lock are released here, the fault's lock as the policy says.
 * Return: VM_FAULT_RETRY (bail), or fault_park()'s or fault_sleep()'s.
 */
static int frame_lock_or_retry(struct vm_fault *vmf, struct frame *f, bool own_read)
{
	struct fl_space *sp = vmf->sp;
	enum cont_action action = CONT_RETRY_MMAP;

	if (vmf->flags & FAULT_FLAG_VMA_LOCK) {
		switch (vma_policy(sp, vmf->vma)) {
		case FL_POLICY_BAIL:
			pthread_mutex_unlock(&f->lock);
			pt_unlock(vmf->chunk);
			vma_end_read(vmf->vma);
			if (own_read) { /* the read is ours to start: start it, do not wait */
				swap_read_start(sp, f);
				own_read_end(sp);
			}
			return VM_FAULT_RETRY;
		case FL_POLICY_HOLD:
			action = CONT_INSTALL;
			break;
		case FL_POLICY_DROP_VMA:
		case FL_POLICY_V2: /* a frame locked is a read in flight: I/O */
			action = CONT_RETRY_VMA;
			break;
		default: /* drop; mmap takes no VMA lock */
			action = CONT_RETRY_MMAP;
			break;
		}
	}
	if ((vmf->flags & FAULT_FLAG_SIGBUS) || (own_read && sync_read_get(sp)))
		return fault_sleep(vmf, f, action, own_read);
	return fault_park(vmf, f, action, own_read);
}

/* The kernel's bad swap read: this page, and only it, gets SIGBUS on every
 * access until it is unmapped or dropped.  Context: the ptl of vmf->chunk
 * and f->lock held; both released here. */
static int swap_poison(struct vm_fault *vmf, struct frame *f)
{
	f->owns_slot = true; /* the bad slot is given up with the frame */
	pthread_mutex_unlock(&f->lock);
	WRITE_ONCE(*fault_pte(vmf), PTE_NONE | PTE_POISON);
	frame_detach(vmf->sp, f);
	/* Counted before the marker wakes the faulting thread (thread
	 * delivery), which may read the statistics at once. */
	count_event(vmf->sp, pages_poisoned);
	/* If the marker cannot be installed now, the next fault on the entry
	 * tries again (handle_mm_fault). */
	uffd_poison(vmf->sp, vmf->address, PAGE_SIZE);
	pt_unlock(vmf->chunk);
	return VM_FAULT_HWPOISON;
}

/*
 * Thread delivery: whether the fault message vmf serves is stale, its page
 * evicted after the message was read (handler.c, msg_epoch()).  A page is
 * evicted only once present, and the install that made it present woke
 * every thread waiting for it: whoever sent the message no longer waits
 * (the kernel sent that access twice).  Serving it would read the page
 * back in for nobody.  pte: the page's entry, its ptl held; a frame's stamp
 * is the eviction's while it is written back.  A frame dropped from the
 * swap cache takes a new stamp too, and a write-protect message's page was
 * present all along: such a message, read before the drop or the eviction,
 * goes round once more (VM_FAULT_NOPAGE wakes its thread, which faults
 * again).  An entry left empty (a zero page dropped) has no stamp: a stale
 * message there maps a zero page, and no more.
 */
static bool fault_msg_stale(struct vm_fault *vmf, uint64_t pte)
{
	uint32_t stamp;

	if (!(vmf->flags & FAULT_FLAG_MSG) || (vmf->flags & FAULT_FLAG_CONT))
		return false;
	if (pte_type(pte) == PTE_SWAP) {
		stamp = pte_stamp(pte);
	} else {
		struct frame *f = frame_of(vmf->sp, pte);
		bool wb;

		pthread_mutex_lock(&f->lock);
		wb = f->flags & FRAME_WRITEBACK;
		stamp = f->stamp;
		pthread_mutex_unlock(&f->lock);
		if (!wb)
			return false;
	}
	/* Evicted at or after the read (stamps wrap at 2^24). */
	return pte_stamp(mk_stamp(stamp - vmf->msg_epoch)) < pte_stamp(PTE_STAMP_MASK) / 2;
}

/*
 * A fault on a page that is swapped out or in a frame: do_swap_page().
 * Context: the fault's lock held (VMA read lock or mmap_lock); not the
 * caller's any more when the return has VM_FAULT_RETRY or VM_FAULT_PARKED.
 */
static int do_swap_page(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	struct pt_chunk *c = vmf->chunk;
	unsigned long page = vmf->address;
	bool own_read = false, tier_hit = false, ra_hit;
	struct frame *f;
	uint64_t pte;
	int ret;

	mem_reserve(sp, 1);
	pte = fault_pte_lock(vmf);
	if ((pte_type(pte) == PTE_SWAP || pte_type(pte) == PTE_FRAME) &&
	    unlikely(fault_msg_stale(vmf, pte))) {
		pt_unlock(c);
		count_event(sp, faults_stale);
		return VM_FAULT_NOPAGE; /* woken: if it does wait, it faults again */
	}
	if (pte_type(pte) == PTE_SWAP) {
		f = swap_cache_add(sp, c, page, pte);
		if (!f) {
			/* Every frame is busy: let it fault again shortly. */
			pt_unlock(c);
			if (!in_completion)
				reclaim_pages(sp, 16, true);
			return VM_FAULT_NOPAGE;
		}
		count_event(sp, faults_major); /* every read a fault issues */
		/* A page in the compressed tier is decompressed here and now,
		 * with nothing to wait for.  From the store, the faulting
		 * thread (sigbus delivery) reads its page itself once it has
		 * let go of its locks, and a handler thread may too (MAY_SYNC):
		 * frame_lock_or_retry(); otherwise io_uring now. */
		if (swap_read_tier(sp, f)) {
			tier_hit = true; /* f pinned until below */
		} else {
			own_read = vmf->flags & (FAULT_FLAG_SIGBUS | FAULT_FLAG_MAY_SYNC);
			if (!own_read)
				swap_read_start(sp, f);
			else /* until started or completed (own_read_end()): fork waits */
				atomic_fetch_add(&sp->sync_completing, 1);
		}
		/* Readahead, when this major fault goes on a stream: its reads
		 * go out before this fault waits for its own. */
		pte = READ_ONCE(*fault_pte(vmf));
		pt_unlock(c);
		swap_readahead_stream(vmf);
		if (fault_pte_lock(vmf) != pte) {
			pt_unlock(c);
			if (own_read) { /* zapped meanwhile: still complete the frame */
				swap_read_start(sp, f);
				own_read_end(sp);
			}
			if (tier_hit)
				frame_unpin(sp, f);
			return VM_FAULT_NOPAGE; /* changed meanwhile: fault again */
		}
	} else if (pte_type(pte) == PTE_FRAME) {
		f = frame_of(sp, pte);
		if (!(vmf->flags & (FAULT_FLAG_CONT | FAULT_FLAG_TRIED)))
			count_event(sp, faults_minor); /* once per fault, not per retry */
	} else {
		pt_unlock(c);
		return VM_FAULT_NOPAGE; /* changed under us: fault again */
	}
	pthread_mutex_lock(&f->lock);
	if (tier_hit)
		f->pins--; /* the PTE still names it: it cannot be freed here */
	/* Only this fault completes the read it owns. */
	FL_BUG_ON(own_read && !(f->flags & FRAME_LOCKED));
	if (f->flags & FRAME_LOCKED)
		return frame_lock_or_retry(vmf, f, own_read);
	if (f->flags & FRAME_ERROR)
		return swap_poison(vmf, f);
	ra_hit = (f->flags & (FRAME_FROM_READ | FRAME_USED)) == FRAME_FROM_READ;
	pthread_mutex_unlock(&f->lock);
	/* The pages after a readahead hit first: the install of this one
	 * wakes the faulting thread, which goes on to them. */
	if (ra_hit)
		install_readahead_after(vmf);
	ret = install_from_frame(sp, c, page, f);
	pt_unlock(c);
	return ret;
}

/*
 * The first store to a clean page (installed write-protected): it is dirty
 * now, and its swap copy goes.  Context: the fault's lock held.
 */
static int do_wp_page(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	uint64_t pte = fault_pte_lock(vmf);
	int ret = VM_FAULT_NOPAGE;

	if (pte_type(pte) == PTE_PRESENT && (pte & PTE_WP)) {
		if (!uffd_writeprotect(sp, vmf->address, PAGE_SIZE, false)) {
			WRITE_ONCE(*fault_pte(vmf), mk_pte(PTE_PRESENT, PTE_REF, 0));
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
		if (!uffd_writeprotect(sp, vmf->address, PAGE_SIZE, false))
			ret = 0;
	}
	pt_unlock(vmf->chunk);
	return ret;
}

/*
 * A fault that is not a write-protect fault, on an entry that says present:
 * either a race (another fault installed the page after this one was
 * raised) or a page the kernel no longer has, dropped behind faultline's
 * back (the libc madvise or munmap of a region).  Told apart by trying the
 * install: EEXIST is the kernel's "I have it"; an install that works has
 * repaired the page with zeros (what the kernel's drop left there), counted
 * in faults_repaired and logged once.  So an access never faults on such an
 * entry for ever.
 * Context: the fault's lock held.  Return: 0 (repaired), VM_FAULT_NOPAGE
 * (changed meanwhile, or refused for now: the access faults again), or
 * VM_FAULT_GO_WP: the kernel has the page, go on as for a present one.
 */
static int do_present_missing(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	unsigned long page = vmf->address;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	uint64_t pte = fault_pte_lock(vmf);
	int err, ret = VM_FAULT_NOPAGE;

	if (pte_type(pte) != PTE_PRESENT) {
		count_event(sp, faults_spurious);
	} else if (install_zero(sp, page, page + PAGE_SIZE, write, &err) == PAGE_SIZE) {
		/* A clean page's swap copy is not its contents any more. */
		if (pte & PTE_WP)
			swap_slot_free(&sp->dev, pte_value(pte));
		WRITE_ONCE(*fault_pte(vmf), PTE_PRESENT | PTE_REF | (write ? 0 : PTE_ZEROPAGE));
		count_event(sp, faults_repaired);
		if (!atomic_exchange(&sp->repair_logged, true))
			fl_log("space %p: a fault at %#lx found a page in the table that the "
			       "kernel "
			       "no longer has (dropped behind faultline's back: the libc madvise, "
			       "munmap or mmap of a region?): zeros installed, counted in "
			       "faults_repaired (logged once)",
			       (void *)sp, page);
		ret = 0;
	} else if (err == EEXIST) {
		ret = VM_FAULT_GO_WP;
	} else if (err == EAGAIN) {
		count_event(sp, uffd_eagain);
	} else {
		fl_dbg(sp, "repair at %#lx: errno %d", page, err);
	}
	pt_unlock(vmf->chunk);
	return ret;
}

/*
 * handle_mm_fault(): dispatch on the page's entry.
 * Context: with FAULT_FLAG_VMA_LOCK vmf->vma read-locked, else mmap_lock
 * held for read.  VM_FAULT_RETRY and VM_FAULT_PARKED mean the lock is no
 * longer this call's (released, or kept by a continuation).
 */
int handle_mm_fault(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	uint64_t pte = PTE_NONE;

	if (vmf->flags & FAULT_FLAG_VMA_LOCK)
		vma_assert_read_locked(vmf->vma);
	else
		mmap_assert_locked(sp);
	vmf->chunk = pt_chunk_lookup(sp, vmf->address);
	if (vmf->chunk)
		pte = READ_ONCE(*fault_pte(vmf));
	vmf->orig_pte = pte;
	switch (pte_type(pte)) {
	case PTE_NONE:
		if (pte & PTE_POISON) {
			/* Make sure the marker is there (a failed poison is
			 * retried; EEXIST means it is). */
			if (fault_pte_lock(vmf) == (PTE_NONE | PTE_POISON))
				uffd_poison(sp, vmf->address, PAGE_SIZE);
			pt_unlock(vmf->chunk);
			return VM_FAULT_HWPOISON;
		}
		if (vmf->vma->file)
			return do_file_fault(vmf);
		return do_anonymous_page(vmf);
	case PTE_PRESENT:
		if (vmf->vma->file) {
			/* A private copy of a file page. */
			int ret = do_file_fault(vmf);
			if (ret != VM_FAULT_GO_WP)
				return ret;
			return do_wp_page(vmf);
		}
		if (!(vmf->flags & FAULT_FLAG_WP)) {
			int ret = do_present_missing(vmf);
			if (ret != VM_FAULT_GO_WP)
				return ret;
		}
		if ((vmf->flags & FAULT_FLAG_WRITE) && ((pte & PTE_WP) || sp->swap_on))
			return do_wp_page(vmf);
		count_event(sp, faults_spurious);
		return VM_FAULT_NOPAGE;
	default:
		/* SWAP or FRAME entries live in a chunk: vmf->chunk is set. */
		return do_swap_page(vmf);
	}
}

/*
 * The fault under vmf->vma's read lock: handle_mm_fault(), the lock released
 * unless that already happened (VM_FAULT_RETRY) or a continuation keeps it
 * (VM_FAULT_PARKED), and the outcome counted.  This is the one place that
 * counts vma_lock_success (finished under the VMA lock) and vma_lock_retry
 * (goes on under mmap_lock).  A NULL vmf->vma is a VMA lock that could not
 * be taken again (drop-vma's continuation): a retry.  A fault parked keeping
 * its lock (hold) or to take it again (drop-vma) has no outcome yet: its
 * continuation comes back here.
 * Context: vmf->vma read-locked, or NULL.
 * Return: handle_mm_fault()'s result, or VM_FAULT_RETRY; on VM_FAULT_RETRY
 * the caller goes on under mmap_lock.
 */
int handle_fault_vma_locked(struct vm_fault *vmf)
{
	int ret = VM_FAULT_RETRY;

	if (vmf->vma) {
		vmf->flags |= FAULT_FLAG_VMA_LOCK;
		if (vmf->vma->file)
			vmf->flags |= FAULT_FLAG_FILE;
		ret = handle_mm_fault(vmf);
		if (!(ret & (VM_FAULT_RETRY | VM_FAULT_PARKED)))
			vma_end_read(vmf->vma);
	}
	/* A NULL vma (drop-vma's lock not had again) keeps the kind of the
	 * VMA it had (FAULT_FLAG_FILE, carried by the continuation). */
	if (ret & VM_FAULT_RETRY) {
		count_vm_vma_lock_event(vmf->sp, vma_lock_retry);
		if (vmf->flags & FAULT_FLAG_FILE)
			count_vm_vma_lock_event(vmf->sp, file_vma_lock_retry);
	} else if (!(ret & VM_FAULT_PARKED)) {
		count_vm_vma_lock_event(vmf->sp, vma_lock_success);
		if (vmf->flags & FAULT_FLAG_FILE)
			count_vm_vma_lock_event(vmf->sp, file_vma_lock_success);
	}
	return ret;
}

/*
 * The fault under mmap_lock: the fallback, and every retry.  With
 * FAULT_FLAG_NOWAIT (at I/O completion, which must not wait for mmap_lock)
 * the lock is only tried, and a busy lock ends the attempt with nothing done.
 * Context: no faultline lock held.  Return: handle_mm_fault()'s result
 * (never VM_FAULT_RETRY: only a fault under a VMA lock retries), or
 * VM_FAULT_SIGSEGV, or VM_FAULT_LOCKBUSY.
 */
int fault_retry_mmap(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	int ret;

again:
	if (!(vmf->flags & FAULT_FLAG_NOWAIT))
		mmap_read_lock(sp);
	else if (!mmap_read_trylock(sp))
		return VM_FAULT_LOCKBUSY;
	vmf->flags &= ~(FAULT_FLAG_VMA_LOCK | FAULT_FLAG_NOWAIT);
	vmf->vma = vma_lookup(sp, vmf->address);
	if (!vmf->vma || access_error(vmf->vma, vmf->flags)) {
		mmap_read_unlock(sp);
		count_event(sp, faults_bad);
		return VM_FAULT_SIGSEGV;
	}
	ret = handle_mm_fault(vmf);
	FL_BUG_ON(ret & VM_FAULT_RETRY);
	if (ret & VM_FAULT_RETRY_MMAP) {
		/* A file fault dropped mmap_lock for its wait: its retry. */
		vmf->flags |= FAULT_FLAG_TRIED;
		goto again;
	}
	if (!(ret & VM_FAULT_PARKED))
		mmap_read_unlock(sp);
	return ret;
}

/*
 * The end of a fault: wake the faulting thread if nothing woke it, and
 * account.  Context: no lock held.
 */
void fault_done(struct vm_fault *vmf, int ret)
{
	if ((ret & (VM_FAULT_SIGSEGV | VM_FAULT_NOPAGE | VM_FAULT_HWPOISON | VM_FAULT_SIGBUS)) &&
	    !(vmf->flags & FAULT_FLAG_SIGBUS))
		uffd_wake(vmf->sp, vmf->address, PAGE_SIZE);
	fl_hist_record(&stat_stripe(vmf->sp)->fault_ns, fl_now_ns() - vmf->t0);
}

/*
 * Serve one page fault at addr: do_user_addr_fault().
 * Context: no faultline lock held.  In thread delivery the faulting thread
 * is woken when the fault ends without having installed its page (so that
 * it retries the access and the kernel decides).
 * Return: 0 if the page was installed or present, VM_FAULT_SIGSEGV if the
 * address is outside the space's VMAs or against their protection,
 * VM_FAULT_NOPAGE if nothing could be installed now, VM_FAULT_HWPOISON if
 * the page is poisoned, VM_FAULT_SIGBUS past the end of a mapped file,
 * VM_FAULT_PARKED if a continuation finishes (or has
 * finished) the fault.
 */
int fl_handle_fault(struct fl_space *sp, unsigned long addr, unsigned int flags)
{
	return fl_handle_fault_msg(sp, addr, flags & ~FAULT_FLAG_MSG, 0);
}

/*
 * The same for a fault message that a handler read when sp->evictions was
 * epoch (FAULT_FLAG_MSG in flags): see fault_msg_stale().
 */
int fl_handle_fault_msg(struct fl_space *sp, unsigned long addr, unsigned int flags, uint32_t epoch)
{
	struct vm_fault vmf = {.sp = sp,
			       .address = addr & PAGE_MASK,
			       .flags = flags,
			       .t0 = fl_now_ns(),
			       .msg_epoch = epoch};
	int ret;

	count_event(sp, faults);
	if (unlikely(__atomic_load_n(&sp->touch, __ATOMIC_RELAXED)))
		touch_log_fault(sp, addr, flags);
	if (flags & FAULT_FLAG_WRITE)
		count_event(sp, faults_write);
	else
		count_event(sp, faults_read);

	/* mmap: before 6.4, no VMA locks at all (for the kind of VMA it is
	 * the policy of: FAULTLINE_POLICY=anon=...,file=...). */
	if (sp->cfg.policy != FL_POLICY_MMAP || file_policy(sp) != FL_POLICY_MMAP) {
		vmf.vma = lock_vma_under_rcu(sp, addr);
		if (vmf.vma && unlikely(access_error(vmf.vma, flags) ||
					(vmf.vma->file ? file_policy(sp) : sp->cfg.policy) ==
						FL_POLICY_MMAP)) {
			vma_end_read(vmf.vma); /* uncounted, as the kernel */
			vmf.vma = NULL;
		}
		if (vmf.vma) {
			ret = handle_fault_vma_locked(&vmf);
			if (ret & VM_FAULT_PARKED)
				return VM_FAULT_PARKED;
			if (!(ret & VM_FAULT_RETRY))
				goto done;
			vmf.flags |= FAULT_FLAG_TRIED;
		}
	}
	ret = fault_retry_mmap(&vmf);
	if (ret & VM_FAULT_PARKED)
		return VM_FAULT_PARKED;
done:
	fault_done(&vmf, ret);
	return ret & (VM_FAULT_SIGSEGV | VM_FAULT_NOPAGE | VM_FAULT_HWPOISON | VM_FAULT_SIGBUS);
}
