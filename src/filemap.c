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
 * Waiting for a page: a fault that finds its page locked (read by another
 * fault, written back, evicted) sleeps on it holding the fault's lock, as
 * hold does: the file fault path does not park yet (README, "Not done").
 *
 * Locks: the page lock nests inside the fault's VMA lock or mmap_lock, and
 * outside the ptl of the address (private mappings); several page locks are
 * taken only in index order, or by trylock (readahead's neighbours).
 * files_lock is a leaf: the list only.
 */
#include "filemap.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fault.h"
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

/* The cache of one file covers at most this many pages: a larger file is
 * refused (EFBIG), and a file that grows past it ends there. */
#define FILE_MAX_PAGES (1UL << 28) /* 1 TiB */
/* The view and the state words are reserved for at least this many pages,
 * and four times the file's size at its first mapping: room to grow. */
#define FILE_MIN_RESERVE (1UL << 18) /* 1 GiB of file */
/* The largest readahead window, in pages (the device's read_ahead_kb is
 * 128 KiB by default; the kernel's mmap readahead reads ra_pages). */
#define FILE_RA_PAGES 32

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
	uint32_t v = atomic_fetch_and_explicit(&f->state[idx], ~(PG_LOCKED | PG_WAITERS),
					       memory_order_release);

	FL_DEBUG_BUG_ON(!(v & PG_LOCKED));
	if (v & PG_WAITERS)
		futex_wake(&f->state[idx], INT_MAX);
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

uint32_t folio_state(struct fl_file *f, unsigned long idx)
{
	return atomic_load_explicit(&f->state[idx], memory_order_relaxed);
}

/* ---- reading ---------------------------------------------------------- */

/*
 * Read pages [idx, idx + n) of the file into the cache, as one read into
 * the view (zero copy: with O_DIRECT the kernel's direct I/O fills the
 * memfd's pages).  Past the end of the file the pages are zeros.  A file
 * system that refuses O_DIRECT for this read makes the file buffered from
 * then on (and the kernel's own copy is dropped after each read).
 * Context: the page lock of each page.  Return: 0 or a negative errno.
 * Async-signal-safe.
 */
int filemap_read_pages(struct fl_file *f, unsigned long idx, unsigned long n)
{
	size_t len = n * PAGE_SIZE, done = 0;
	off_t off = (off_t)(idx * PAGE_SIZE);
	char *dst = f->view + idx * PAGE_SIZE;
	long fail = atomic_load_explicit(&f->fail_read_idx, memory_order_relaxed);

	if (unlikely(fail >= 0) && (unsigned long)fail >= idx && (unsigned long)fail < idx + n)
		return -EIO; /* injected (a test) */

	while (done < len) {
		int dfd = file_dfd(f);
		int fd = dfd >= 0 ? dfd : atomic_load(&f->fd);
		ssize_t r = pread(fd, dst + done, len - done, off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EINVAL && dfd >= 0) {
			/* This file system takes O_DIRECT opens but not this
			 * read: buffered from now on. */
			atomic_store(&f->direct_refused, true);
			continue;
		}
		if (r < 0)
			return -errno;
		if (r == 0)
			break; /* the end of the file */
		done += (size_t)r;
		if (dfd >= 0 && done % 512)
			break; /* a short direct read ends at EOF */
	}
	if (done < len)
		memset(dst + done, 0, len - done);
	if (file_dfd(f) < 0)
		posix_fadvise(atomic_load(&f->fd), off, (off_t)len, POSIX_FADV_DONTNEED);
	return 0;
}

/* ---- installs --------------------------------------------------------- */

/* A cache page is now UPTODATE.  Context: its page lock. */
static void folio_mark_uptodate(struct fl_space *sp, struct fl_file *f, unsigned long idx)
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
 * Read the pages around idx that readahead asks for and that are neither
 * cached nor locked (trylock: the caller holds idx's lock), as one run that
 * contains idx.  The page w->mark, if read, is marked PG_READAHEAD.
 * Context: idx's page lock; the fault's lock.  Return: 0 or the read's
 * negative errno (idx is not up to date then).
 */
static int read_window(struct fl_space *sp, struct fl_file *f, unsigned long idx,
		       const struct ra_window *w)
{
	unsigned long nr = atomic_load(&f->nr_pages);
	unsigned long s = idx, e = idx + 1, ws = w->start, we = w->start + w->nr;
	bool window_ok;
	int ret;

	if (ws > idx)
		ws = idx;
	if (we <= idx)
		we = idx + 1;
	we = MIN(we, nr);
	/* Up from idx, then down: a run of pages not cached, each locked. */
	while (e < we && !(folio_state(f, e) & PG_UPTODATE) && folio_trylock(f, e)) {
		if (folio_state(f, e) & PG_UPTODATE) {
			folio_unlock(f, e);
			break;
		}
		e++;
	}
	while (s > ws && !(folio_state(f, s - 1) & PG_UPTODATE) && folio_trylock(f, s - 1)) {
		if (folio_state(f, s - 1) & PG_UPTODATE) {
			folio_unlock(f, s - 1);
			break;
		}
		s--;
	}
	mem_reserve(sp, e - s - 1);
	ret = filemap_read_pages(f, s, e - s);
	window_ok = !ret;
	if (ret && e - s > 1) /* the faulting page alone: a bad neighbour is not its error */
		ret = filemap_read_pages(f, idx, 1);
	for (unsigned long i = s; i < e; i++) {
		if (i == idx)
			continue;
		if (window_ok) {
			folio_mark_uptodate(sp, f, i);
			folio_clear(f, i, PG_REF); /* not touched yet */
			if (i == w->mark)
				folio_set(f, i, PG_READAHEAD);
		}
		folio_unlock(f, i);
	}
	if (!ret) {
		folio_mark_uptodate(sp, f, idx);
		count_event_n(sp, file_reads, window_ok ? e - s : 1);
		if (window_ok)
			count_event_n(sp, fault_around_pages, e - s - 1);
	}
	return ret;
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
 * Read pages [start, end) of f into the cache without a fault waiting for
 * them: the asynchronous readahead window, and MADV_WILLNEED.  Pages cached
 * or locked are passed by; each run of the others is one read.  The page
 * mark (ULONG_MAX: none) gets PG_READAHEAD.
 * Context: a reference on f (a VMA of it locked, or mmap_lock); no page lock.
 */
void filemap_readahead(struct fl_space *sp, struct fl_file *f, unsigned long start,
		       unsigned long end, unsigned long mark)
{
	end = MIN(end, atomic_load(&f->nr_pages));
	for (unsigned long i = start; i < end;) {
		unsigned long s = i;

		while (i < end && i - s < 256 && !(folio_state(f, i) & PG_UPTODATE) &&
		       folio_trylock(f, i)) {
			if (folio_state(f, i) & PG_UPTODATE) {
				folio_unlock(f, i);
				break;
			}
			i++;
		}
		if (i > s) {
			mem_reserve(sp, i - s);
			int ret = filemap_read_pages(f, s, i - s);
			for (unsigned long k = s; k < i; k++) {
				if (!ret) {
					folio_mark_uptodate(sp, f, k);
					folio_clear(f, k, PG_REF);
					if (k == mark)
						folio_set(f, k, PG_READAHEAD);
				}
				folio_unlock(f, k);
			}
			if (!ret)
				count_event_n(sp, file_reads, i - s);
		} else {
			i++;
		}
	}
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
	count_event(sp, file_read_errors);
	count_event(sp, pages_poisoned);
	if (!atomic_exchange(&sp->io_error_logged, true) || sp->cfg.verbose)
		fl_log("read of page %lu of a mapped file failed: %s; the access at %#lx gets "
		       "SIGBUS (further errors: see file_read_errors)",
		       idx, strerror(-err), vmf->address);
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
 * another fault reads or which is written back or evicted (read false: the
 * caller could not lock it), or for its own read of it (read true: the
 * caller holds the page lock and the page is not up to date; w is the
 * readahead window).  The kernel's lock_folio_maybe_drop_mmap() and
 * maybe_unlock_mmap_for_io() in filemap_fault(), with the policy of file
 * faults (ARCHITECTURE.md section 2), as frame_lock_or_retry() is for swap:
 *
 *   under mmap_lock, first try   drop it, wait or read, retry under it
 *   under mmap_lock, a retry     keep it through the wait or the read
 *   bail (VMA lock)              release it (and the page), retry under
 *                                mmap_lock at once
 *   drop                         release it, wait or read, retry under
 *                                mmap_lock
 *   drop-vma                     release it, wait or read, take it again
 *                                (lock_vma_under_rcu()) and go on; if it
 *                                cannot be had, retry under mmap_lock
 *   hold                         keep it through the wait or the read
 *   v2                           as drop-vma, but a page already up to
 *                                date (only its lock is contended) is
 *                                waited for keeping the VMA lock
 *   v2-anon                      drop (file VMAs are not anonymous)
 *
 * The wait is a sleep in this thread (file faults do not park as
 * continuations yet), in both deliveries.  A read that fails with the lock
 * kept poisons the address (filemap_poison()); with the lock dropped, the
 * retry reads again, keeping its lock, as the kernel's second try does.
 * Context: the fault's lock; the page lock if read.  Return: FILE_LOCKED,
 * FILE_AGAIN, VM_FAULT_RETRY (the VMA lock is released), VM_FAULT_RETRY_MMAP
 * (mmap_lock is released) or VM_FAULT_HWPOISON (the page lock is released).
 */
static int file_lock_or_retry(struct vm_fault *vmf, struct fl_file *f, unsigned long idx, bool read,
			      const struct ra_window *w)
{
	struct fl_space *sp = vmf->sp;
	bool vma_locked = vmf->flags & FAULT_FLAG_VMA_LOCK;
	int policy = vma_policy(sp, vmf->vma), ret = 0;
	/* v2: the page's I/O is done, only its lock is contended (an install,
	 * a write-back, an eviction): wait for it without a retry. */
	bool v2_wait = vma_locked && policy == FL_POLICY_V2 && !read &&
		       (folio_state(f, idx) & PG_UPTODATE);

	if (!vma_locked ? (vmf->flags & FAULT_FLAG_TRIED) : policy == FL_POLICY_HOLD || v2_wait) {
		/* Keep the lock through it. */
		if (!read) {
			if (!folio_trylock(f, idx)) {
				if (vma_locked && (folio_state(f, idx) & PG_UPTODATE))
					count_event(sp, lock_waits_kept);
				folio_lock(f, idx);
			}
			return FILE_LOCKED;
		}
		ret = read_window(sp, f, idx, w);
		if (ret)
			return filemap_poison(vmf, f, idx, ret);
		count_event(sp, file_faults_major);
		return FILE_LOCKED;
	}
	if (vma_locked && policy == FL_POLICY_BAIL) {
		if (read)
			folio_unlock(f, idx);
		vma_end_read(vmf->vma);
		return VM_FAULT_RETRY;
	}
	/* drop, drop-vma, and mmap_lock's first try: release_fault_lock(). */
	if (vma_locked)
		vma_end_read(vmf->vma);
	else
		mmap_read_unlock(sp);
	if (read) {
		if (!read_window(sp, f, idx, w))
			count_event(sp, file_faults_major);
		folio_unlock(f, idx);
	} else {
		folio_lock(f, idx);
		folio_unlock(f, idx);
	}
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
 * A fault on a page of a file mapping that the table does not track (NONE):
 * filemap_fault().  The asynchronous readahead it starts is left in vmf for
 * fault_done(), which reads it once the fault's lock is released.
 * Context: the fault's lock held, no ptl.  Return: as handle_mm_fault();
 * VM_FAULT_RETRY or VM_FAULT_RETRY_MMAP: the lock is released.
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
		if (!folio_trylock(f, idx)) {
			/* At I/O completion nothing may wait: the access faults
			 * again. */
			if (in_completion)
				return VM_FAULT_NOPAGE;
			ret = file_lock_or_retry(vmf, f, idx, false, NULL);
			if (ret == FILE_AGAIN)
				continue;
			if (ret != FILE_LOCKED)
				return ret;
		}
		if (folio_state(f, idx) & PG_UPTODATE)
			break;
		if (in_completion) {
			folio_unlock(f, idx);
			return VM_FAULT_NOPAGE;
		}
		/* do_sync_mmap_readahead(): the window around the miss. */
		pthread_mutex_lock(&f->ra_lock);
		ra_sync_mmap(&f->ra, idx, atomic_load(&f->nr_pages), advice, &w);
		pthread_mutex_unlock(&f->ra_lock);
		major = true;
		ret = file_lock_or_retry(vmf, f, idx, true, &w);
		if (ret == FILE_LOCKED)
			break;
		if (ret != FILE_AGAIN)
			return ret;
	}
	st = folio_state(f, idx);
	folio_set(f, idx, PG_REF);
	if (!major && !(vmf->flags & (FAULT_FLAG_CONT | FAULT_FLAG_TRIED)))
		count_event(sp, file_faults_minor);
	if (!major && (st & PG_READAHEAD)) {
		/* do_async_mmap_readahead(): the next window, read once this
		 * page is mapped and the fault's lock released. */
		folio_clear(f, idx, PG_READAHEAD);
		pthread_mutex_lock(&f->ra_lock);
		async = ra_async_mmap(&f->ra, idx, atomic_load(&f->nr_pages), advice, &w);
		pthread_mutex_unlock(&f->ra_lock);
	} else if (!major) {
		pthread_mutex_lock(&f->ra_lock);
		ra_hit(&f->ra);
		pthread_mutex_unlock(&f->ra_lock);
	}
	ret = filemap_install(vmf, f, idx);
	if (!ret) {
		ws_record_fault(sp, f, idx);
		filemap_map_pages(vmf, f, idx);
	}
	folio_unlock(f, idx);
	if (async && !in_completion) {
		file_get(f);
		vmf->ra_file = f;
		vmf->ra_start = w.start;
		vmf->ra_end = w.start + w.nr;
		vmf->ra_mark = w.mark;
	}
	return ret;
}

/* The asynchronous readahead a fault left (fault_done()).  Context: no lock. */
void filemap_fault_done(struct vm_fault *vmf)
{
	struct fl_file *f = vmf->ra_file;

	vmf->ra_file = NULL;
	filemap_readahead(vmf->sp, f, vmf->ra_start, vmf->ra_end, vmf->ra_mark);
	file_put(f);
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
	balance_dirty_pages(sp);
	while (!folio_trylock(f, idx)) {
		if (in_completion)
			return VM_FAULT_NOPAGE;
		ret = file_lock_or_retry(vmf, f, idx, false, NULL);
		if (ret == FILE_LOCKED)
			break;
		if (ret != FILE_AGAIN)
			return ret;
		if (!vma_maps(vmf->vma, f, idx, vmf->address, vmf->flags))
			return VM_FAULT_NOPAGE;
	}
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
 * UFFDIO_CONTINUE says EEXIST), or a copy the kernel no longer has (dropped
 * behind faultline's back): then the cache page shows through, as after the
 * kernel's MADV_DONTNEED, and the entry is forgotten (faults_repaired).
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
	folio_lock(f, idx);
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
		fl_log("space %p: a private copy of a file page at %#lx is gone from the kernel "
		       "(dropped behind faultline's back?): the file's page shows there again, "
		       "counted in faults_repaired (logged once)",
		       (void *)sp, a);
	return ret;
}

/*
 * The fault of a file VMA on an entry of the table: NONE (the cache), or
 * PRESENT (a private copy).  SWAP and FRAME entries (private copies in the
 * swap) go through do_swap_page() as anonymous memory does.
 * Context: the fault's lock held.
 */
int do_file_fault(struct vm_fault *vmf)
{
	bool wp = vmf->flags & FAULT_FLAG_WP;
	bool shared = vmf->vma->flags & VM_SHARED;

	if (pte_type(vmf->orig_pte) == PTE_PRESENT) {
		FL_DEBUG_BUG_ON(shared);
		return wp ? 1 : file_present_missing(vmf); /* 1: the caller's do_wp_page() */
	}
	if (wp)
		return shared ? filemap_page_mkwrite(vmf) : do_cow_wp(vmf);
	return filemap_fault(vmf);
}

/* ---- the cache's lifetime ----------------------------------------------- */

void file_get(struct fl_file *f)
{
	atomic_fetch_add(&f->refs, 1);
}

static void file_free(struct fl_file *f)
{
	if (f->view)
		munmap(f->view, f->max_pages * PAGE_SIZE);
	if (f->state)
		munmap((void *)f->state, f->max_pages * sizeof(*f->state));
	if (f->memfd >= 0)
		close(f->memfd);
	int fds[4] = {atomic_load(&f->fd), atomic_load(&f->dfd), f->old_fd, f->old_dfd};
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&f->ra_lock);
	pthread_mutex_destroy(&f->msync_lock);
	free(f);
}

/*
 * Drop a reference; the last one frees the cache.  The space's list holds
 * one until the file is unmapped (filemap_unmapped()), which writes it back
 * first: the last put has nothing to write.  Context: any but the SIGBUS
 * handler (an RCU callback, for a VMA's).
 */
void file_put(struct fl_file *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1)
		file_free(f);
}

/* Open the file of the caller's fd again, as faultline's own: buffered and,
 * where the file system takes it, O_DIRECT.  Return: 0 or a negative errno. */
static int reopen(int fd, bool writable, int *bfd, int *dfd)
{
	char path[64];
	int mode = writable ? O_RDWR : O_RDONLY;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	*bfd = open(path, mode | O_CLOEXEC);
	if (*bfd < 0) {
		/* /proc not mounted, or the file's permissions changed since
		 * the caller opened it: share the caller's open file (pread
		 * and pwrite do not move its offset), without O_DIRECT. */
		*bfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		*dfd = -1;
		return *bfd < 0 ? -errno : 0;
	}
	*dfd = open(path, mode | O_CLOEXEC | O_DIRECT);
	return 0;
}

/* Make the cache as long as the file is now (it may have grown).
 * Context: mmap_lock held for write. */
static int filemap_resize(struct fl_file *f, long long size)
{
	unsigned long pages = (unsigned long)((size + (long long)PAGE_SIZE - 1) >> PAGE_SHIFT);

	if (pages > f->max_pages)
		return -EFBIG;
	if (size <= atomic_load(&f->size))
		return 0;
	if (ftruncate(f->memfd, size))
		return -errno;
	atomic_store(&f->size, size);
	atomic_store(&f->nr_pages, pages);
	return 0;
}

/*
 * The page cache of the file open at fd, made if the space has none, and a
 * reference to it for the caller.  writable: the mapping may write to the
 * file (a shared mapping of a descriptor open for writing), so faultline's
 * own descriptors must be read-write.
 * Context: mmap_lock held for write.  Return: 0 or a negative errno
 * (-ENODEV: not a regular file; -EFBIG: larger than FILE_MAX_PAGES).
 */
int filemap_get(struct fl_space *sp, int fd, bool writable, struct fl_file **out)
{
	struct fl_file *f;
	struct stat st;
	int ret, bfd, dfd;

	mmap_assert_write_locked(sp);
	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	pthread_mutex_lock(&sp->files_lock);
	for (f = sp->files; f; f = f->next)
		if (f->dev == st.st_dev && f->ino == st.st_ino)
			break;
	if (f) {
		file_get(f);
		f->orphan = false;
	}
	pthread_mutex_unlock(&sp->files_lock);
	if (f) {
		ret = filemap_resize(f, st.st_size);
		if (!ret && writable && !atomic_load(&f->writable)) {
			/* The first writable shared mapping: read-write
			 * descriptors.  The read-only ones stay open until the
			 * file is freed (a fault may be using one). */
			ret = reopen(fd, true, &bfd, &dfd);
			if (!ret) {
				f->old_fd = atomic_exchange(&f->fd, bfd);
				f->old_dfd = atomic_exchange(&f->dfd, dfd);
				atomic_store(&f->writable, true);
			}
		}
		if (ret) {
			file_put(f);
			return ret;
		}
		*out = f;
		return 0;
	}

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->sp = sp;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->memfd = -1;
	f->old_fd = f->old_dfd = -1;
	atomic_init(&f->fd, -1);
	atomic_init(&f->dfd, -1);
	atomic_init(&f->refs, 2); /* the list's and the caller's */
	atomic_init(&f->fail_read_idx, -1);
	pthread_mutex_init(&f->ra_lock, NULL);
	pthread_mutex_init(&f->msync_lock, NULL);
	file_ra_state_init(&f->ra, FILE_RA_PAGES);
	unsigned long pages = (unsigned long)((st.st_size + (off_t)PAGE_SIZE - 1) >> PAGE_SHIFT);
	if (pages > FILE_MAX_PAGES) {
		ret = -EFBIG;
		goto fail;
	}
	f->max_pages = MIN(MAX(4 * pages, FILE_MIN_RESERVE), FILE_MAX_PAGES);
	ret = reopen(fd, writable, &bfd, &dfd);
	if (ret)
		goto fail;
	atomic_store(&f->fd, bfd);
	atomic_store(&f->dfd, dfd);
	atomic_store(&f->writable, writable);
	f->memfd = memfd_create("faultline-cache", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, st.st_size)) {
		ret = -errno;
		goto fail;
	}
	atomic_store(&f->size, st.st_size);
	atomic_store(&f->nr_pages, pages);
	f->view = mmap(NULL, f->max_pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, f->memfd, 0);
	f->state = mmap(NULL, f->max_pages * sizeof(*f->state), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (f->view == MAP_FAILED || f->state == MAP_FAILED) {
		ret = -ENOMEM;
		if (f->view == MAP_FAILED)
			f->view = NULL;
		if (f->state == MAP_FAILED)
			f->state = NULL;
		goto fail;
	}
	/* Not in a child of fork(): it has no space to serve them. */
	madvise(f->view, f->max_pages * PAGE_SIZE, MADV_DONTFORK);
	madvise((void *)f->state, f->max_pages * sizeof(*f->state), MADV_DONTFORK);
	pthread_mutex_lock(&sp->files_lock);
	f->next = sp->files;
	sp->files = f;
	pthread_mutex_unlock(&sp->files_lock);
	atomic_fetch_add(&sp->nr_files, 1);
	ws_file_mapped(sp);
	if (file_dfd(f) < 0 && !atomic_exchange(&sp->buffered_logged, true))
		fl_dbg(sp, "a mapped file's file system refuses O_DIRECT: buffered reads, "
			   "with the kernel's copy dropped after each");
	*out = f;
	return 0;
fail:
	file_free(f);
	return ret;
}

/* Whether a page of f is dirty (a racy look: for the orphans). */
static bool file_has_dirty(struct fl_file *f)
{
	unsigned long nr = atomic_load(&f->nr_pages);

	for (unsigned long i = 0; i < nr; i++)
		if (folio_state(f, i) & PG_DIRTY)
			return true;
	return false;
}

/* Whether a VMA of the space's index maps f.  Context: mmap_lock held. */
static bool file_mapped(struct fl_space *sp, struct fl_file *f)
{
	struct vma_index *idx = vma_index_get(sp);

	for (size_t i = 0; i < idx->nr; i++)
		if (idx->v[i]->file == f)
			return true;
	return false;
}

/*
 * After a write section that unmapped file mappings: a file no VMA maps any
 * more is written back and leaves the list (its cache goes with the last
 * reference).  Context: mmap_lock held for write.
 */
static void release_clean_orphans(struct fl_space *sp);

void filemap_unmapped(struct fl_space *sp)
{
	struct fl_file **pp, *f;
	bool clean;

	mmap_assert_write_locked(sp);
	for (;;) {
		pthread_mutex_lock(&sp->files_lock);
		for (pp = &sp->files; (f = *pp); pp = &f->next)
			if (!f->orphan && !file_mapped(sp, f))
				break;
		if (f)
			file_get(f);
		pthread_mutex_unlock(&sp->files_lock);
		if (!f)
			break;
		/* A write-back that fails keeps the file, dirty, as an orphan
		 * (nothing is lost at munmap): the flusher tries again, and the
		 * next unmap releases it once it is clean. */
		clean = !file_release(sp, f);
		pthread_mutex_lock(&sp->files_lock);
		for (pp = &sp->files; *pp && *pp != f; pp = &(*pp)->next)
			;
		if (clean && *pp) {
			*pp = f->next;
			atomic_fetch_sub(&sp->nr_files, 1);
		} else {
			f->orphan = true;
			clean = false;
		}
		pthread_mutex_unlock(&sp->files_lock);
		if (clean)
			file_put(f); /* the list's */
		file_put(f);
	}
	release_clean_orphans(sp);
}

/* Release the orphans that are clean now (the flusher wrote them back).
 * Context: mmap_lock held for write. */
static void release_clean_orphans(struct fl_space *sp)
{
	struct fl_file **pp, *f;

	for (;;) {
		pthread_mutex_lock(&sp->files_lock);
		for (pp = &sp->files; (f = *pp); pp = &f->next)
			if (f->orphan && !file_mapped(sp, f) && !file_has_dirty(f))
				break;
		if (f) {
			*pp = f->next;
			atomic_fetch_sub(&sp->nr_files, 1);
		}
		pthread_mutex_unlock(&sp->files_lock);
		if (!f)
			return;
		file_put(f);
	}
}

/*
 * Test-only error injection: reads of the file page that addr maps fail
 * with EIO while on.  Return: 0, or -EINVAL if addr is in no file mapping.
 */
int filemap_inject_read_error(struct fl_space *sp, const void *addr, bool on)
{
	struct vma *vma;
	int ret = -EINVAL;

	mmap_read_lock(sp);
	vma = vma_lookup(sp, (unsigned long)addr);
	if (vma && vma->file) {
		atomic_store(&vma->file->fail_read_idx,
			     on ? (long)vma_pgoff_of(vma, (unsigned long)addr) : -1);
		ret = 0;
	}
	mmap_read_unlock(sp);
	return ret;
}

/* Context: space creation.  Return: 0 or a negative errno. */
int filemap_init(struct fl_space *sp)
{
	pthread_mutex_init(&sp->files_lock, NULL);
	sp->files_inited = true;
	return flusher_start(sp);
}

/*
 * Context: space teardown: every VMA is gone, no fault runs.  Every file is
 * written back and let go.
 */
void filemap_destroy(struct fl_space *sp)
{
	struct fl_file *f;

	if (!sp->files_inited)
		return;
	worker_stop(&sp->flusher);
	for (;;) {
		pthread_mutex_lock(&sp->files_lock);
		f = sp->files;
		if (f)
			sp->files = f->next;
		pthread_mutex_unlock(&sp->files_lock);
		if (!f)
			break;
		atomic_fetch_sub(&sp->nr_files, 1);
		if (file_release(sp, f))
			fl_log("space %p: dirty pages of a mapped file could not be written back "
			       "at "
			       "destroy: their stores are lost (file_write_errors)",
			       (void *)sp);
		file_put(f);
	}
	pthread_mutex_destroy(&sp->files_lock);
	sp->files_inited = false;
}

/* MADV_COLD: the cached pages [first, last) lose their reference bits, so
 * that the clock takes them first.  Context: a reference on f. */
void filemap_deactivate(struct fl_file *f, unsigned long first, unsigned long last)
{
	last = MIN(last, atomic_load(&f->nr_pages));
	for (unsigned long i = first; i < last; i++)
		folio_clear(f, i, PG_REF);
}
