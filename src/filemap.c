// SPDX-License-Identifier: MIT
/*
 * The page cache of mapped files: filemap_fault(), the kernel's
 * do_read_fault()/do_shared_fault()/do_cow_fault() on userfaultfd,
 * page_mkwrite, and the cache's lifetime.  Write-back, msync and reclaim of
 * cache pages are in writeback.c.  filemap.h says how the cache is laid out
 * and what each page's state word means.
 *
 * A fault in a file VMA whose entry in the page-state table is NONE (for a
 * MAP_SHARED mapping always: the table tracks only private copies):
 *
 *   filemap_fault()        the page lock (folio_lock()); a page not in the
 *                          cache is read, with the synchronous readahead
 *                          window around it (do_sync_mmap_readahead()), a
 *                          page that is is a minor fault (and the marked
 *                          page of a window starts the next one:
 *                          do_async_mmap_readahead()); then mapped:
 *     shared, read         UFFDIO_CONTINUE, write-protected while the page
 *                          is clean, so that the first store traps
 *     shared, write        the page is dirty; UFFDIO_CONTINUE writable
 *     private, read        UFFDIO_CONTINUE write-protected: the first store
 *                          traps, and the kernel copies on write
 *     private, write       UFFDIO_COPY of the cache page: the private copy,
 *                          anonymous memory from then on (PRESENT entry)
 *   filemap_page_mkwrite() the first store to a clean shared page: dirty,
 *                          write protection lifted
 *   do_cow_wp()            the first store to a private page mapped from the
 *                          cache: protection lifted, the kernel copies it on
 *                          the store's retry; the copy is a PRESENT entry
 *
 * Reading: in thread delivery a fault's read goes through io_uring
 * (fileio.c): the read takes the page locks of its window, and the fault
 * then waits for its page's lock as for any page locked by another (read,
 * written back, evicted).  How it waits is file_lock_or_retry(), the
 * policy, as frame_lock_or_retry() is for swap: parked as a continuation
 * (cont.c) in thread delivery, so that no handler thread waits; asleep in
 * the faulting thread in sigbus delivery, which also reads its own window
 * itself, as its swap-in does.  The cache's lifetime is in filecache.c.
 *
 * Locks: the page lock nests inside the fault's VMA lock or mmap_lock, and
 * outside the ptl of the address (private mappings); several page locks are
 * taken only in index order, or by trylock (readahead's neighbours).  A
 * fault parks or sleeps holding no page lock.
 */
#include "filemap.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cont.h"
#include "fault.h"
#include "fileio.h"
#include "mmap_lock.h"
#include "pgtable.h"
#include "reclaim.h"
#include "space.h"
#include "stats.h"
#include "swap.h"
#include "uffd.h"
#include "vma.h"
#include "workingset.h"
#include "writeback.h"

unsigned long vma_pgoff_of(const struct vma *vma, unsigned long address)
{
	return vma->pgoff + ((address - vma->vm_start) >> PAGE_SHIFT);
}

/* ---- the page lock ---------------------------------------------------- */

/* Context: any; sleeps until the lock is free.  Async-signal-safe. */
void folio_lock(struct fl_file *f, unsigned long idx)
{
	_Atomic uint32_t *w = &f->state[idx];
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	for (;;) {
		if (!(v & PG_LOCKED)) {
			if (atomic_compare_exchange_weak_explicit(w, &v, v | PG_LOCKED,
								  memory_order_acquire,
								  memory_order_relaxed))
				return;
			continue;
		}
		if (!(v & PG_WAITERS) &&
		    !atomic_compare_exchange_weak_explicit(
			    w, &v, v | PG_WAITERS, memory_order_relaxed, memory_order_relaxed))
			continue;
		futex_wait(w, v | PG_WAITERS);
		v = atomic_load_explicit(w, memory_order_relaxed);
	}
}

/* Return: true with the page lock held. */
bool folio_trylock(struct fl_file *f, unsigned long idx)
{
	uint32_t v = atomic_load_explicit(&f->state[idx], memory_order_relaxed);

	while (!(v & PG_LOCKED))
		if (atomic_compare_exchange_weak_explicit(&f->state[idx], &v, v | PG_LOCKED,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	return false;
}

/* Pairs with the ACQUIRE of folio_lock()/folio_trylock(). */
void folio_unlock(struct fl_file *f, unsigned long idx)
{
	uint32_t v = atomic_fetch_and_explicit(
		&f->state[idx], ~(PG_LOCKED | PG_WAITERS | PG_PARKED), memory_order_release);

	FL_DEBUG_BUG_ON(!(v & PG_LOCKED));
	if (v & PG_WAITERS)
		futex_wake(&f->state[idx], INT_MAX);
	if (v & PG_PARKED)
		page_wake(f, idx); /* the parked faults (cont.c) */
}

/* Set or clear bits of a locked page's state.  Context: the page lock. */
void folio_set(struct fl_file *f, unsigned long idx, uint32_t bits)
{
	atomic_fetch_or_explicit(&f->state[idx], bits, memory_order_relaxed);
}

void folio_clear(struct fl_file *f, unsigned long idx, uint32_t bits)
{
	atomic_fetch_and_explicit(&f->state[idx], ~bits, memory_order_relaxed);
}

/*
 * A dirty page goes under write-back: PG_DIRTY cleared and PG_WRITEBACK set
 * in one step, so that a data-integrity wait (writeback_range()) that finds
 * neither bit knows that nothing of the page is in flight.  Context: the
 * page lock (PG_WAITERS may change meanwhile, hence the loop).
 */
void folio_start_writeback(struct fl_file *f, unsigned long idx)
{
	uint32_t v = atomic_load_explicit(&f->state[idx], memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(&f->state[idx], &v,
						      (v & ~PG_DIRTY) | PG_WRITEBACK,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

/*
 * The page's write-back is over: PG_WRITEBACK cleared, and if its write
 * failed (redirty) PG_DIRTY set in the same step, so that a data-integrity
 * pass or the release of an unmapped file never finds it neither dirty nor
 * under write-back with its bytes not in the file.  Context: the page lock.
 */
void folio_end_writeback(struct fl_space *sp, struct fl_file *f, unsigned long idx, bool redirty)
{
	uint32_t v = atomic_load_explicit(&f->state[idx], memory_order_relaxed), n;

	do
		n = (v & ~PG_WRITEBACK) | (redirty ? PG_DIRTY : 0);
	while (!atomic_compare_exchange_weak_explicit(&f->state[idx], &v, n, memory_order_relaxed,
						      memory_order_relaxed));
	if (redirty && !(v & PG_DIRTY))
		atomic_fetch_add(&sp->file_dirty, 1);
}

uint32_t folio_state(struct fl_file *f, unsigned long idx)
{
	return atomic_load_explicit(&f->state[idx], memory_order_relaxed);
}

/* ---- installs --------------------------------------------------------- */

/* A cache page is now UPTODATE.  Context: its page lock. */
void folio_mark_uptodate(struct fl_space *sp, struct fl_file *f, unsigned long idx)
{
	folio_set(f, idx, PG_UPTODATE | PG_REF);
	atomic_fetch_add(&sp->file_pages, 1);
}

/* A cache page is dirty (first store).  Context: its page lock. */
void folio_mark_dirty(struct fl_space *sp, struct fl_file *f, unsigned long idx)
{
	uint32_t v = atomic_fetch_or_explicit(&f->state[idx], PG_DIRTY, memory_order_relaxed);

	if (!(v & PG_DIRTY))
		atomic_fetch_add(&sp->file_dirty, 1);
}

/*
 * UFFDIO_CONTINUE of one cache page at address.  Return: 0, or the errno
 * (EEXIST: the kernel maps something there already).
 */
static int continue_page(struct fl_space *sp, unsigned long address, bool wp)
{
	int err;

	if (uffd_continue(sp, address, PAGE_SIZE, wp, &err) == PAGE_SIZE)
		return 0;
	if (err == EAGAIN)
		count_event(sp, uffd_eagain);
	return err;
}

/*
 * Map the locked, up-to-date page idx at vmf->address as the mapping and the
 * access want (the table at the top of this file).
 * Context: idx's page lock, the fault's lock.  Return: 0 or VM_FAULT_NOPAGE.
 */
static int filemap_install(struct vm_fault *vmf, struct fl_file *f, unsigned long idx)
{
	struct fl_space *sp = vmf->sp;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	bool shared = vmf->vma->flags & VM_SHARED;
	unsigned long a = vmf->address;
	struct pt_chunk *c;
	uint64_t pte;
	int err, ret = VM_FAULT_NOPAGE;

	if (shared) {
		if (write)
			folio_mark_dirty(sp, f, idx);
		err = continue_page(sp, a, !(folio_state(f, idx) & PG_DIRTY));
		return err && err != EEXIST ? VM_FAULT_NOPAGE : 0;
	}
	/* Private: what the table says decides, under the ptl (a private copy
	 * may have appeared, or gone to the store, since the dispatch). */
	c = pt_chunk_get(sp, a);
	if (!c)
		return VM_FAULT_NOPAGE;
	pt_lock(c);
	pte = READ_ONCE(c->pte[pt_index(a)]);
	if (pte != PTE_NONE) {
		count_event(sp, faults_spurious);
	} else if (!write) {
		err = continue_page(sp, a, true);
		ret = err && err != EEXIST ? VM_FAULT_NOPAGE : 0;
	} else if (uffd_copy(sp, a, f->view + idx * PAGE_SIZE, PAGE_SIZE, false, &err) ==
		   PAGE_SIZE) {
		WRITE_ONCE(c->pte[pt_index(a)], PTE_PRESENT | PTE_REF);
		c->nr_present++;
		atomic_fetch_add(&sp->resident_pages, 1);
		count_event(sp, file_faults_cow);
		ret = 0;
	} else if (err == EAGAIN) {
		count_event(sp, uffd_eagain);
	} else if (err == EEXIST) {
		/* The cache page is mapped there: copy on its write fault. */
		ret = 0;
	}
	pt_unlock(c);
	return ret;
}

/*
 * filemap_map_pages(): a read fault also maps the cached pages around it,
 * in its aligned window of cfg.fault_around pages inside the VMA, that are
 * up to date and not locked (trylock) and, in a private mapping, have no
 * private copy; each as its own fault would (write-protected while clean,
 * or private).  One userfaultfd round trip then serves a reader of cached
 * pages for many pages.
 * Context: the page lock of idx and the fault's lock.
 */
void filemap_map_pages(struct vm_fault *vmf, struct fl_file *f, unsigned long idx)
{
	struct fl_space *sp = vmf->sp;
	struct vma *vma = vmf->vma;
	unsigned int w = sp->cfg.fault_around;
	bool shared = vma->flags & VM_SHARED;
	unsigned long s, e, n = 0;

	if (w <= 1 || (vmf->flags & FAULT_FLAG_WRITE))
		return;
	s = vmf->address - ((vmf->address >> PAGE_SHIFT) % w) * PAGE_SIZE;
	e = s + (unsigned long)w * PAGE_SIZE;
	s = MAX(s, vma->vm_start);
	e = MIN(e, vma->vm_end);
	for (unsigned long a = s; a < e; a += PAGE_SIZE) {
		unsigned long i = vma_pgoff_of(vma, a);
		struct pt_chunk *c = NULL;
		bool ok;

		if (a == vmf->address || i >= atomic_load(&f->nr_pages) ||
		    !(folio_state(f, i) & PG_UPTODATE) || !folio_trylock(f, i))
			continue;
		ok = folio_state(f, i) & PG_UPTODATE;
		if (ok && !shared) {
			c = pt_chunk_lookup(sp, a);
			if (c) {
				pt_lock(c);
				ok = READ_ONCE(c->pte[pt_index(a)]) == PTE_NONE;
			}
		}
		if (ok && !continue_page(sp, a, !shared || !(folio_state(f, i) & PG_DIRTY)))
			n++;
		if (c)
			pt_unlock(c);
		folio_unlock(f, i);
	}
	count_event_n(sp, fault_around_pages, n);
}

/*
 * A read error: this address, and only it, gets SIGBUS (a poison marker,
 * until it is unmapped or dropped); the page is not cached, so the next
 * access elsewhere reads it again.  Context: the page lock (released here).
 */
static int filemap_poison(struct vm_fault *vmf, struct fl_file *f, unsigned long idx, int err)
{
	struct fl_space *sp = vmf->sp;

	folio_unlock(f, idx);
	count_event(sp, pages_poisoned);
	if (!err)
		goto poison; /* PG_ERROR: counted and logged at the read's completion */
	count_event(sp, file_read_errors);
	if (!atomic_exchange(&sp->io_error_logged, true) || sp->cfg.verbose)
		fl_log("read of page %lu of a mapped file failed: %s; the access at %#lx gets "
		       "SIGBUS (further errors: see file_read_errors)",
		       idx, strerror(-err), vmf->address);
poison:
	uffd_poison(sp, vmf->address, PAGE_SIZE);
	return VM_FAULT_HWPOISON;
}

/* The policy of faults on file mappings (FAULTLINE_POLICY=...,file=NAME),
 * as configured: v2-anon is not resolved (vma_policy() does that). */
int file_policy(const struct fl_space *sp)
{
	return sp->cfg.file_policy >= 0 ? sp->cfg.file_policy : sp->cfg.policy;
}

/*
 * What a fault on vma does, by the kind of VMA: the policy configured for
 * it, with v2-anon resolved: v2 for an anonymous VMA, drop for a file VMA
 * (also for the private copies of a file VMA, which the kernel's
 * vma_is_anonymous() does not count as anonymous either).
 */
int vma_policy(const struct fl_space *sp, const struct vma *vma)
{
	int p = vma->file ? file_policy(sp) : sp->cfg.policy;

	if (p == FL_POLICY_V2_ANON)
		return vma->file ? FL_POLICY_DROP : FL_POLICY_V2;
	return p;
}

/* Whether vma still maps page idx of f at address, and allows the access. */
static bool vma_maps(const struct vma *vma, const struct fl_file *f, unsigned long idx,
		     unsigned long address, unsigned int flags)
{
	int need = (flags & FAULT_FLAG_WRITE) ? PROT_WRITE : PROT_READ | PROT_WRITE | PROT_EXEC;

	return vma->file == f && vma_pgoff_of(vma, address) == idx && (vma->prot & need);
}

/* file_lock_or_retry(): the fault holds page idx's lock, and goes on. */
#define FILE_LOCKED 0
/* file_lock_or_retry(): the fault holds its lock again, but not the page's:
 * it starts again from the page lock. */
#define FILE_AGAIN (-1)

/*
 * What a file fault does with its lock while it waits: for page idx, which
 * another fault or a read owns, or which is written back or evicted (read
 * false: the caller could not lock it, or own: it just submitted the read
 * of the page itself), or for its own read of it in this thread (read true:
 * the caller holds the page lock, the page is not up to date; w is the
 * readahead window): the faulting thread in sigbus delivery, or a handler
 * thread while another is free (sync_read_get()), as for swap.  The kernel's
 * lock_folio_maybe_drop_mmap() and maybe_unlock_mmap_for_io() in filemap_fault(), with the policy
 * of file faults (ARCHITECTURE.md section 2), as frame_lock_or_retry() is for swap:
 *
 *   under mmap_lock              drop it, wait, retry under it (sigbus
 *                                delivery: on a retry, keep it through the
 *                                wait or the read, as the kernel's second
 *                                try does)
 *   bail (VMA lock)              release it (and the page), retry under
 *                                mmap_lock at once
 *   drop                         release it, wait, retry under mmap_lock
 *   drop-vma                     release it, wait, take it again
 *                                (lock_vma_under_rcu()) and go on; if it
 *                                cannot be had, retry under mmap_lock
 *   hold                         keep it through the wait and go on
 *   v2                           as drop-vma, but a page already up to
 *                                date (only its lock is contended) is
 *                                waited for keeping the VMA lock
 *   v2-anon                      drop (file VMAs are not anonymous)
 *
 * In thread delivery the fault waits parked (fault_park_page(): a
 * continuation that the page's unlock runs), so no handler thread waits;
 * a page unlocked before the fault could park is a wait of no time (for
 * its own read, the lock is still let go as the policy says).  In sigbus
 * delivery the faulting thread sleeps on the page lock.  A read in this
 * thread is filemap_read_window_sync().  Both count parked and parked_ns, as
 * a swap fault does.  A read that fails with the lock kept poisons the
 * address (filemap_poison()); with the lock dropped, the retry reads
 * again, keeping its lock.
 * Context: the fault's lock; the page lock if read.  Return: FILE_LOCKED,
 * FILE_AGAIN, VM_FAULT_RETRY (the VMA lock is released), VM_FAULT_RETRY_MMAP
 * (mmap_lock is released), VM_FAULT_PARKED (a continuation has the rest of
 * the fault), VM_FAULT_NOPAGE or VM_FAULT_HWPOISON (the page lock is
 * released).
 */
static int file_lock_or_retry(struct vm_fault *vmf, struct fl_file *f, unsigned long idx, bool read,
			      bool own, const struct ra_window *w)
{
	struct fl_space *sp = vmf->sp;
	bool vma_locked = vmf->flags & FAULT_FLAG_VMA_LOCK;
	int policy = vma_policy(sp, vmf->vma), ret = 0;
	enum cont_action action = CONT_RETRY_MMAP;
	/* v2: the page's I/O is done, only its lock is contended (an install,
	 * a write-back, an eviction): wait for it without a retry. */
	bool v2_wait = vma_locked && policy == FL_POLICY_V2 && !read &&
		       (folio_state(f, idx) & PG_UPTODATE);
	/* A wait for the lock of an up-to-date page with the VMA lock kept
	 * (hold, v2): lock_waits_kept. */
	bool kept = vma_locked && !read && (policy == FL_POLICY_HOLD || v2_wait) &&
		    (folio_state(f, idx) & PG_UPTODATE);
	uint64_t t0;

	if (vma_locked && policy == FL_POLICY_BAIL) {
		if (read)
			folio_unlock(f, idx);
		vma_end_read(vmf->vma);
		return VM_FAULT_RETRY;
	}
	if (!(vmf->flags & FAULT_FLAG_SIGBUS) && !read) {
		if (vma_locked)
			action = policy == FL_POLICY_HOLD || v2_wait ? CONT_INSTALL
				 : policy == FL_POLICY_DROP_VMA || policy == FL_POLICY_V2
					 ? CONT_RETRY_VMA
					 : CONT_RETRY_MMAP;
		if (kept)
			count_event(sp, lock_waits_kept);
		ret = fault_park_page(vmf, f, idx, action);
		if (ret != PARK_UNLOCKED)
			return ret;
		/* Unlocked already.  Its own read: let go as for a wait. */
		if (own && action == CONT_RETRY_MMAP) {
			if (vma_locked) {
				vma_end_read(vmf->vma);
				return VM_FAULT_RETRY;
			}
			mmap_read_unlock(sp);
			return VM_FAULT_RETRY_MMAP;
		}
		return FILE_AGAIN;
	}
	/* The faulting thread waits, or this thread reads, itself. */
	count_event(sp, parked);
	t0 = fl_now_ns();
	if (!vma_locked ? (vmf->flags & FAULT_FLAG_TRIED) : policy == FL_POLICY_HOLD || v2_wait) {
		/* Keep the lock through it. */
		if (!read) {
			if (kept)
				count_event(sp, lock_waits_kept);
			folio_lock(f, idx);
			count_event_n(sp, parked_ns, fl_now_ns() - t0);
			return FILE_LOCKED;
		}
		ret = filemap_read_window_sync(sp, f, idx, w);
		count_event_n(sp, parked_ns, fl_now_ns() - t0);
		if (ret)
			return filemap_poison(vmf, f, idx, ret);
		count_event(sp, file_faults_major);
		return FILE_LOCKED;
	}
	/* drop, drop-vma, and mmap_lock's first try: release_fault_lock(). */
	if (vma_locked)
		vma_end_read(vmf->vma);
	else
		mmap_read_unlock(sp);
	if (read) {
		if (!filemap_read_window_sync(sp, f, idx, w))
			count_event(sp, file_faults_major);
		folio_unlock(f, idx);
	} else {
		folio_lock(f, idx);
		folio_unlock(f, idx);
	}
	count_event_n(sp, parked_ns, fl_now_ns() - t0);
	if (!vma_locked)
		return VM_FAULT_RETRY_MMAP;
	if (policy == FL_POLICY_DROP_VMA || policy == FL_POLICY_V2) {
		struct vma *vma = lock_vma_under_rcu(sp, vmf->address);

		if (vma && vma_maps(vma, f, idx, vmf->address, vmf->flags)) {
			vmf->vma = vma;
			return FILE_AGAIN;
		}
		if (vma)
			vma_end_read(vma);
	}
	return VM_FAULT_RETRY;
}

/*
 * The page lock of page idx for a fault: taken at once, or waited for as
 * the policy says (file_lock_or_retry()).  Return: FILE_LOCKED (held),
 * or what file_lock_or_retry() gives up with (not FILE_AGAIN: tried again).
 */
static int file_lock_page(struct vm_fault *vmf, struct fl_file *f, unsigned long idx)
{
	int ret;

	while (!folio_trylock(f, idx)) {
		ret = file_lock_or_retry(vmf, f, idx, false, false, NULL);
		if (ret == FILE_LOCKED)
			break;
		if (ret != FILE_AGAIN)
			return ret;
		if (!vma_maps(vmf->vma, f, idx, vmf->address, vmf->flags))
			return VM_FAULT_NOPAGE;
	}
	return FILE_LOCKED;
}

/*
 * A fault on a page of a file mapping that the table does not track (NONE):
 * filemap_fault().  A page not cached is read with its synchronous
 * readahead window: through the ring in thread delivery (the fault then
 * waits for the page's lock, which the read holds), in this thread in
 * sigbus delivery.  The asynchronous readahead a marked page starts is
 * submitted once the page is mapped.
 * Context: the fault's lock held, no ptl.  Return: as handle_mm_fault();
 * VM_FAULT_RETRY, VM_FAULT_RETRY_MMAP or VM_FAULT_PARKED: the lock is no
 * longer the caller's.
 */
static int filemap_fault(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	struct fl_file *f = vmf->vma->file;
	unsigned long idx = vma_pgoff_of(vmf->vma, vmf->address);
	enum ra_advice advice = (enum ra_advice)atomic_load(&f->advice);
	struct ra_window w = {.start = idx, .nr = 1, .mark = ULONG_MAX};
	bool async = false, major = false;
	uint32_t st;
	int ret;

	/* Past the end of the file: SIGBUS, as the kernel's (its own, in
	 * thread delivery: such a fault never reaches faultline there). */
	if (idx >= atomic_load(&f->nr_pages))
		return VM_FAULT_SIGBUS;
	mem_reserve(sp, 1);
	for (;;) {
		ret = file_lock_page(vmf, f, idx);
		if (ret != FILE_LOCKED)
			return ret;
		st = folio_state(f, idx);
		if (st & PG_UPTODATE)
			break;
		if (st & PG_ERROR) {
			/* The last read of the page failed: this access gets
			 * it, and the next one reads again. */
			folio_clear(f, idx, PG_ERROR);
			return filemap_poison(vmf, f, idx, 0);
		}
		/* do_sync_mmap_readahead(): the window around the miss. */
		pthread_mutex_lock(&f->ra_lock);
		ra_sync_mmap(&f->ra, idx, atomic_load(&f->nr_pages), advice, &w);
		pthread_mutex_unlock(&f->ra_lock);
		major = true;
		/* A handler thread reads its own fault's window itself while
		 * another handler is free, as for swap (do_swap_page()). */
		if ((vmf->flags & FAULT_FLAG_MAY_SYNC) && !in_completion && sync_read_get(sp)) {
			ret = file_lock_or_retry(vmf, f, idx, true, true, &w);
			sync_read_put(sp);
			if (ret == FILE_LOCKED)
				break;
			if (ret != FILE_AGAIN)
				return ret;
			continue;
		}
		if (!(vmf->flags & FAULT_FLAG_SIGBUS)) {
			if (!filemap_read_start(sp, f, idx, &w)) {
				count_event(sp, file_faults_major);
				/* Its own read: the policy applies however soon
				 * the read completes, as the kernel drops the
				 * lock before it reads. */
				ret = file_lock_or_retry(vmf, f, idx, false, true, NULL);
				if (ret != FILE_LOCKED && ret != FILE_AGAIN)
					return ret;
				if (ret == FILE_LOCKED)
					folio_unlock(f, idx); /* and look again */
				continue;
			}
			if (in_completion) { /* no I/O free, and nothing may wait */
				folio_unlock(f, idx);
				return VM_FAULT_NOPAGE;
			}
			/* No I/O free: read here. */
			ret = filemap_read_window_sync(sp, f, idx, &w);
			if (ret)
				return filemap_poison(vmf, f, idx, ret);
			count_event(sp, file_faults_major);
			break;
		}
		ret = file_lock_or_retry(vmf, f, idx, true, true, &w);
		if (ret == FILE_LOCKED)
			break;
		if (ret != FILE_AGAIN)
			return ret;
	}
	st = folio_state(f, idx);
	folio_set(f, idx, PG_REF);
	if (!major && !(vmf->flags & (FAULT_FLAG_CONT | FAULT_FLAG_TRIED)))
		count_event(sp, file_faults_minor);
	/* do_async_mmap_readahead() counts a hit and starts the next window
	 * at a marked page, on a fault's first try only, as the kernel's
	 * filemap_fault(): the retry (or the rest of a parked fault) after
	 * its own read finds the page it read, which is no hit, and counted
	 * as one it kept a random reader's mmap_miss from ever reaching
	 * MMAP_LOTSAMISS under the policies that retry, so that they read
	 * whole windows around random misses where the others read one page. */
	bool first_try = !major && !(vmf->flags & (FAULT_FLAG_CONT | FAULT_FLAG_TRIED));

	if (first_try && (st & PG_READAHEAD)) {
		/* The next window, started once this page is mapped. */
		folio_clear(f, idx, PG_READAHEAD);
		pthread_mutex_lock(&f->ra_lock);
		async = ra_async_mmap(&f->ra, idx, atomic_load(&f->nr_pages), advice, &w);
		pthread_mutex_unlock(&f->ra_lock);
	} else if (first_try) {
		pthread_mutex_lock(&f->ra_lock);
		ra_hit(&f->ra);
		pthread_mutex_unlock(&f->ra_lock);
	}
	/* Recorded before the install, which wakes the faulting thread: its
	 * next fault, on another handler, must not be recorded first. */
	ws_record_fault(sp, f, idx);
	ret = filemap_install(vmf, f, idx);
	if (!ret)
		filemap_map_pages(vmf, f, idx);
	folio_unlock(f, idx);
	if (async)
		filemap_readahead(sp, f, w.start, w.start + w.nr, w.mark, false);
	return ret;
}

/*
 * The first store to a clean page of a shared mapping (write-protected):
 * page_mkwrite.  The page is dirty from here; its write protection goes.
 * Context: the fault's lock held.
 */
static int filemap_page_mkwrite(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	struct fl_file *f = vmf->vma->file;
	unsigned long idx = vma_pgoff_of(vmf->vma, vmf->address);
	int ret = VM_FAULT_NOPAGE;

	if (idx >= atomic_load(&f->nr_pages))
		return VM_FAULT_SIGBUS;
	if (!in_completion) /* the completion thread never sleeps */
		balance_dirty_pages(sp);
	ret = file_lock_page(vmf, f, idx);
	if (ret != FILE_LOCKED)
		return ret;
	ret = VM_FAULT_NOPAGE;
	/* Evicted meanwhile: the store faults again, on a missing page. */
	if (folio_state(f, idx) & PG_UPTODATE) {
		folio_mark_dirty(sp, f, idx);
		folio_set(f, idx, PG_REF);
		if (!uffd_writeprotect(sp, vmf->address, PAGE_SIZE, false)) {
			count_event(sp, file_faults_wp);
			ret = 0;
		}
	}
	folio_unlock(f, idx);
	return ret;
}

/*
 * The first store to a page of a private mapping that shows the cache page
 * (mapped write-protected): lift the protection, and the store's retry makes
 * the kernel copy the page; the table tracks the copy from now on, as
 * anonymous memory.  Context: the fault's lock held.
 */
static int do_cow_wp(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	unsigned long a = vmf->address;
	struct pt_chunk *c;
	int ret = VM_FAULT_NOPAGE;

	mem_reserve(sp, 1);
	c = pt_chunk_get(sp, a);
	if (!c)
		return VM_FAULT_NOPAGE;
	pt_lock(c);
	if (READ_ONCE(c->pte[pt_index(a)]) == PTE_NONE &&
	    !uffd_writeprotect(sp, a, PAGE_SIZE, false)) {
		WRITE_ONCE(c->pte[pt_index(a)], PTE_PRESENT | PTE_REF);
		c->nr_present++;
		atomic_fetch_add(&sp->resident_pages, 1);
		count_event(sp, file_faults_cow);
		ret = 0;
	}
	pt_unlock(c);
	return ret;
}

/*
 * A fault that is not a write-protect fault on a private copy the table says
 * is present: a race with the install of that copy (the kernel has it:
 * UFFDIO_CONTINUE says EEXIST), or a copy the kernel does not have: dropped
 * behind faultline's back, or never made (do_cow_wp() lifted the write
 * protection, and the cache page was punched out before the store that
 * would have made the kernel's copy).  Then the cache page shows through,
 * as after the kernel's MADV_DONTNEED, and the entry is forgotten
 * (faults_repaired): no store was lost, the kernel had taken none.
 * Context: the fault's lock held.
 */
static int file_present_missing(struct vm_fault *vmf)
{
	struct fl_space *sp = vmf->sp;
	struct fl_file *f = vmf->vma->file;
	unsigned long idx = vma_pgoff_of(vmf->vma, vmf->address);
	struct pt_chunk *c = vmf->chunk;
	unsigned long a = vmf->address;
	int ret = VM_FAULT_NOPAGE, err;
	bool gone = false;

	if (idx >= atomic_load(&f->nr_pages))
		return VM_FAULT_SIGBUS;
	ret = file_lock_page(vmf, f, idx);
	if (ret != FILE_LOCKED)
		return ret;
	ret = VM_FAULT_NOPAGE;
	pt_lock(c);
	if (pte_type(READ_ONCE(c->pte[pt_index(a)])) == PTE_PRESENT) {
		err = (folio_state(f, idx) & PG_UPTODATE) ? continue_page(sp, a, true) : EFAULT;
		if (err != EEXIST && err != EAGAIN) {
			pte_release(sp, c, a);
			c->nr_present--;
			atomic_fetch_sub(&sp->resident_pages, 1);
			count_event(sp, faults_repaired);
			gone = true;
			ret = err ? VM_FAULT_NOPAGE : 0;
		}
	}
	pt_unlock(c);
	folio_unlock(f, idx);
	if (gone && !atomic_exchange(&sp->repair_logged, true))
		fl_log("space %p: a private copy of a file page at %#lx is not in the kernel "
		       "(dropped behind faultline's back, or its cache page evicted before a "
		       "store made it): the file's page shows there again, counted in "
		       "faults_repaired (logged once)",
		       (void *)sp, a);
	return ret;
}

/*
 * The fault of a file VMA on an entry of the table: NONE (the cache), or
 * PRESENT (a private copy).  SWAP and FRAME entries (private copies in the
 * swap) go through do_swap_page() as anonymous memory does.
 * Context: the fault's lock held.  Return: as handle_mm_fault(), or
 * VM_FAULT_GO_WP: a write-protect fault on a private copy, for the caller's
 * do_wp_page().
 */
int do_file_fault(struct vm_fault *vmf)
{
	bool wp = vmf->flags & FAULT_FLAG_WP;
	bool shared = vmf->vma->flags & VM_SHARED;

	if (pte_type(vmf->orig_pte) == PTE_PRESENT) {
		FL_DEBUG_BUG_ON(shared);
		return wp ? VM_FAULT_GO_WP : file_present_missing(vmf);
	}
	if (wp)
		return shared ? filemap_page_mkwrite(vmf) : do_cow_wp(vmf);
	return filemap_fault(vmf);
}
