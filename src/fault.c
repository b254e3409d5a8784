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

#include <sys/mman.h>

/* Pages the window covers, at most 4096 (PT_CHUNK_PAGES chunks of 64). */
#define MAX_WINDOW_CHUNKS (4096 / PT_CHUNK_PAGES + 1)

static bool access_error(struct vma *vma, unsigned int flags)
{
	if (flags & FAULT_FLAG_WRITE)
		return !(vma->prot & PROT_WRITE);
	return !(vma->prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
}

static void window_of(struct fl_space *sp, struct vma *vma, unsigned long page, bool write,
		      unsigned long *ws, unsigned long *we, unsigned int *wpages)
{
	unsigned int base = write ? 1 : sp->cfg.fault_around;
	unsigned int w = base;
	unsigned long s, e;

	if (page == READ_ONCE(vma->fa_next)) {
		/* Sequential: grow from the previous window. */
		unsigned int prev = READ_ONCE(vma->fa_window);
		w = MIN(MAX(prev * 2, base), sp->cfg.fault_around_max);
		s = page;
	} else {
		s = page - ((page >> PAGE_SHIFT) % w) * PAGE_SIZE;
	}
	e = s + (unsigned long)w * PAGE_SIZE;
	if (e < s) /* top of the address space */
		e = PAGE_MASK;
	*ws = MAX(s, vma->vm_start);
	*we = MIN(e, vma->vm_end);
	*wpages = w;
}

static _Atomic uint32_t *pte_of(struct pt_chunk **chunks, unsigned long ws, unsigned long a)
{
	struct pt_chunk *c = chunks[(a >> 18) - (ws >> 18)];

	return &c->pte[pt_index(a)];
}

static void set_present(struct fl_space *sp, struct pt_chunk **chunks, unsigned long ws,
			unsigned long s, unsigned long e, uint32_t pte)
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
static int do_anonymous_page(struct fl_space *sp, struct vma *vma, unsigned long addr,
			     unsigned int flags)
{
	struct pt_chunk *chunks[MAX_WINDOW_CHUNKS];
	unsigned long page = addr & PAGE_MASK, ws, we, rs, re, a;
	bool write = flags & FAULT_FLAG_WRITE;
	unsigned int wpages, nchunks, i;
	int ret = VM_FAULT_NOPAGE;

	window_of(sp, vma, page, write, &ws, &we, &wpages);
	nchunks = (unsigned int)(((we - 1) >> 18) - (ws >> 18) + 1);
	FL_BUG_ON(nchunks > MAX_WINDOW_CHUNKS);
	for (i = 0; i < nchunks; i++) {
		chunks[i] =
			pt_chunk_get(sp, (ws & PT_CHUNK_MASK) + (unsigned long)i * PT_CHUNK_SIZE);
		if (!chunks[i]) {
			/* Out of memory for metadata: no install; the access will
			 * fault again. */
			return VM_FAULT_NOPAGE;
		}
	}
	/* In address order: the only order in which several are taken. */
	for (i = 0; i < nchunks; i++)
		pt_lock(chunks[i]);

	if ((READ_ONCE(*pte_of(chunks, ws, page)) & PTE_TYPE_MASK) != PTE_NONE) {
		count_event(sp, faults_spurious);
		goto out;
	}
	/* The run of absent pages around the faulting one, inside the window. */
	for (rs = page; rs > ws && (READ_ONCE(*pte_of(chunks, ws, rs - PAGE_SIZE)) &
				    PTE_TYPE_MASK) == PTE_NONE;
	     rs -= PAGE_SIZE)
		;
	for (re = page + PAGE_SIZE;
	     re < we && (READ_ONCE(*pte_of(chunks, ws, re)) & PTE_TYPE_MASK) == PTE_NONE;
	     re += PAGE_SIZE)
		;

	for (a = rs; a < re;) {
		int err;
		unsigned long done = install_zero(sp, a, re, write, &err);

		if (done)
			set_present(sp, chunks, ws, a, a + done,
				    PTE_PRESENT | (write ? 0 : PTE_ZEROPAGE));
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
		WRITE_ONCE(vma->fa_next, a);
		WRITE_ONCE(vma->fa_window, wpages);
	}
out:
	for (i = nchunks; i-- > 0;)
		pt_unlock(chunks[i]);
	return ret;
}

/*
 * Context: as do_anonymous_page(); with FAULT_FLAG_VMA_LOCK the VMA lock is
 * released here when the return has VM_FAULT_RETRY or VM_FAULT_COMPLETED
 * (never, for demand-zero faults: they do not wait).
 */
static int handle_mm_fault(struct fl_space *sp, struct vma *vma, unsigned long addr,
			   unsigned int flags)
{
	if (flags & FAULT_FLAG_VMA_LOCK)
		vma_assert_read_locked(vma);
	else
		mmap_assert_locked(sp);
	return do_anonymous_page(sp, vma, addr, flags);
}

/*
 * Serve one page fault at addr: do_user_addr_fault().
 * Context: no faultline lock held.  In thread delivery the faulting thread
 * is woken here if this call did not install its page (so that it retries
 * the access and the kernel decides: the page appeared, the range is gone,
 * or it faults again).
 * Return: 0 if the page was installed or present, VM_FAULT_SIGSEGV if the
 * address is outside the space's VMAs or against their protection,
 * VM_FAULT_NOPAGE if nothing could be installed now.
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

	vma = lock_vma_under_rcu(sp, addr);
	if (!vma)
		goto lock_mmap;
	if (unlikely(access_error(vma, flags))) {
		vma_end_read(vma);
		goto lock_mmap;
	}
	ret = handle_mm_fault(sp, vma, addr, flags | FAULT_FLAG_VMA_LOCK);
	if (!(ret & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)))
		vma_end_read(vma);
	if (!(ret & VM_FAULT_RETRY)) {
		count_vm_vma_lock_event(sp, vma_lock_success);
		goto done;
	}
	count_vm_vma_lock_event(sp, vma_lock_retry);

lock_mmap:
	mmap_read_lock(sp);
	vma = vma_lookup(sp, addr);
	if (!vma || access_error(vma, flags)) {
		mmap_read_unlock(sp);
		count_event(sp, faults_bad);
		ret = VM_FAULT_SIGSEGV;
		goto done;
	}
	ret = handle_mm_fault(sp, vma, addr, flags);
	if (ret & VM_FAULT_RETRY) {
		flags |= FAULT_FLAG_TRIED;
		goto lock_mmap;
	}
	if (!(ret & VM_FAULT_COMPLETED))
		mmap_read_unlock(sp);
done:
	if (ret && !(flags & FAULT_FLAG_SIGBUS))
		uffd_wake(sp, addr & PAGE_MASK, PAGE_SIZE);
	fl_hist_record(&stat_stripe(sp)->fault_ns, fl_now_ns() - t0);
	return ret & (VM_FAULT_SIGSEGV | VM_FAULT_NOPAGE);
}
