// SPDX-License-Identifier: MIT
/*
 * fork(): a child gets the spaces made with cfg.fork (FAULTLINE_FORK), as
 * they were at the fork, served by its own copy of each.
 *
 * The mechanism: a child-side re-registration over a store copied at the
 * fork.  userfaultfd's UFFD_FEATURE_EVENT_FORK was the other way: it hands
 * the child's faults to the parent's handlers, so the parent would serve
 * another process's memory for as long as the child lives, and the child's
 * own mm calls (its heap growing) would still need a space of its own.
 *
 * The parent, in fork()'s prepare handler (space.c: fork_prepare(), for each
 * such space, fork_space_prepare()):
 *   1. the handler threads are let finish the round of messages they are in
 *      and kept from the next (handler_gate), the workers likewise
 *      (worker_pause(): kswapd, the resizer, the flusher, the discard
 *      worker), so that none holds a lock or is half way through a change;
 *   2. mmap_lock is taken for write, and every VMA write-locked
 *      (vma_start_write()): no mm call is in flight, no fault runs under a
 *      lock of the space; a fault parked under hold ends as its read
 *      completes, on the reaper;
 *   3. the I/O in flight completes, with its callbacks, and so do the reads
 *      faults own (sync_completing, from do_swap_page()'s decision), checked
 *      again holding the reaper (swapdev_fork_quiesce()), and the frames
 *      checked (frames_busy()): no frame is under I/O, so
 *      every PTE_FRAME entry is a page in the swap cache, in memory;
 *   4. the store is copied, slot for slot, to a new temporary file
 *      (swapdev_fork_prepare(): copy_file_range, a reflink where the file
 *      system has them).
 * The regions are not MADV_DONTFORK (unless the program advised so:
 * madvise_fork() below), so the kernel gives the child every resident
 * page, copy on write.  The child (its only thread, in fork()'s
 * child handler, fork_space_child()) makes the space its own: fresh locks
 * (their holders are gone: the parent's threads are not in the child), a
 * new userfaultfd with every VMA registered as the parent's was (the
 * kernel drops the registration in a child without EVENT_FORK) after the
 * kernel's pages where the entry is not PRESENT are dropped (code that ran
 * in the child before its handler may have touched them: the zero page
 * where the page is swapped out), the pages the parent had write-protected
 * (PRESENT|WP: clean, with a swap copy) made dirty, their slots freed in
 * the copy (the kernel dropped the protection, and the child may have
 * written them already), the store's copy
 * in place of the store, a new io_uring ring, and new threads and eventfds.
 * Entries then mean in the child what they meant in the parent: PRESENT
 * pages are the kernel's copies, SWAP entries are read from the copy
 * (checked against the metadata the child inherited), FRAME entries are
 * the frames the child inherited.  Its budget is its own (cfg.mem_limit).
 *
 * What the child drops: faults of the parent's threads that were parked or
 * queued for a retry (their threads are not in the child; the pins they
 * held go with them: child_fresh_locks() sets pins to 0, so the frame is
 * the child's to reclaim), and the parent's counts of calls and
 * faults in flight.
 *
 * Not carried (the child gets the space's regions unmapped, its handle is
 * dead, and says so once): a space with file mappings, the compressed
 * tier, or a working-set record or replay; and any space whose copy failed
 * (its store could not be copied, or the child could not set it up).  An
 * access to one of its regions in the child is then SIGSEGV, never data
 * that is not the parent's.
 */
#include "space.h"

#include <ctype.h>
#include <locale.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "fileio.h"
#include "filemap.h"
#include "mmap.h"
#include "pgtable.h"
#include "swap.h"
#include "tier.h"
#include "uffd.h"
#include "vma.h"
#include "workingset.h"

/* Why the space cannot be carried into a child, or 0.  Context: mmap_lock
 * held for write. */
static int fork_unsupported(struct fl_space *sp)
{
	struct vma_index *idx = vma_index_get(sp);

	mmap_assert_write_locked(sp);
	if (!sp->cfg.fork)
		return -EPERM;
	if (sp->tier || sp->ws)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < idx->nr; i++)
		if (idx->v[i]->file)
			return -EOPNOTSUPP;
	/* Nor an unmapped file still cached (an orphan, its write-back
	 * failed): the child's flusher would find its cache not there. */
	if (atomic_load(&sp->nr_files))
		return -EOPNOTSUPP;
	return 0;
}

/*
 * fl_fork(), before it calls fork(): whether the space can be carried into
 * a child, as far as can be seen before it is quiesced.  Context: a use of
 * sp held, no lock.  Return: 0 or a negative errno (fork_unsupported()).
 */
int fork_space_check(struct fl_space *sp)
{
	int err;

	mmap_write_lock(sp);
	err = fork_unsupported(sp);
	mmap_write_unlock(sp);
	return err;
}

static void workers_pause(struct fl_space *sp)
{
	worker_pause(&sp->resizer);
	worker_pause(&sp->kswapd);
	worker_pause(&sp->flusher);
	if (sp->dev_open)
		worker_pause(&sp->dev.discarder);
}

static void workers_resume(struct fl_space *sp)
{
	if (sp->dev_open)
		worker_resume(&sp->dev.discarder);
	worker_resume(&sp->flusher);
	worker_resume(&sp->kswapd);
	worker_resume(&sp->resizer);
}

/*
 * Nothing in flight and nothing to complete: so no frame may be under a read
 * or a write (a child would inherit it locked, and wait for ever for a
 * completion that is the parent's).  A frame that is says the counting
 * above is wrong: a bug in a debug build; otherwise the child does not get
 * the space (-EBUSY), rather than hang in it.  Context: quiesced, holding
 * the reaper (swapdev_fork_quiesce()).
 */
static int frames_busy(struct fl_space *sp)
{
	for (size_t i = 0; sp->frames && i < sp->nr_frames; i++) {
		struct frame *f = &sp->frames[i];
		bool busy;

		pthread_mutex_lock(&f->lock);
		busy = f->flags & (FRAME_LOCKED | FRAME_WRITEBACK);
		pthread_mutex_unlock(&f->lock);
		FL_DEBUG_BUG_ON(busy);
		if (busy) {
			fl_log("fork: a frame of space %p is still under I/O with none in flight: "
			       "the child does not get the space's regions",
			       (void *)sp);
			return -EBUSY;
		}
	}
	return 0;
}

/*
 * glibc's fork writes the lock of every FILE in the child before any
 * atfork child handler runs (fresetlockfiles()): a FILE allocated in a
 * region (faultline run's heap) whose page is not resident in the child
 * is read there through an unregistered range, as the kernel's zero page,
 * and the child dies on a NULL lock.  So the parent faults those pages in
 * before it quiesces the space, and checks, quiesced, that they still are
 * (an eviction may fall between): fork_space_prepare() starts over if
 * not.  The pages: each FILE's first and last byte and its lock's; and
 * the locale's that every new thread reads (below).
 */
extern FILE *_IO_list_all;
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

#define FORK_FILE_ADDRS 384 /* 128 FILEs; the rest are not checked */

struct file_pages {
	unsigned int n;
	unsigned long a[FORK_FILE_ADDRS];
};

static void files_touch(struct file_pages *fp)
{
	fp->n = 0;
	_IO_list_lock();
	for (FILE *f = _IO_list_all; f; f = f->_chain) {
		const volatile char *p = (const volatile char *)f;

		(void)p[0];
		(void)p[sizeof(*f) - 1];
		if (f->_lock)
			(void)*(const volatile char *)f->_lock;
		if (fp->n + 3 <= FORK_FILE_ADDRS - 8) { /* 8: the locale's, below */
			fp->a[fp->n++] = (unsigned long)f;
			fp->a[fp->n++] = (unsigned long)f + sizeof(*f) - 1;
			if (f->_lock)
				fp->a[fp->n++] = (unsigned long)f->_lock;
		}
	}
	_IO_list_unlock();
	/* What a thread reads as it starts (__ctype_init()): the current
	 * locale's LC_CTYPE data, which a program's setlocale() allocated
	 * (faultline run: in the heap); the child starts threads of its own
	 * (fork_space_child()), and one that faults there with no handler
	 * thread yet to serve it waits for ever. */
	locale_t loc = duplocale(LC_GLOBAL_LOCALE); /* its data: the global locale's */
	/* The LC_CTYPE data's first values; the class table (uint16_t from
	 * -128 to 255) and the case tables (int32_t, the same range). */
	const struct {
		const char *p;
		long lo, hi;
	} ctype[4] = {
		{loc ? (const char *)loc->__locales[LC_CTYPE] : NULL, 0, 0x60},
		{(const char *)*__ctype_b_loc(), -256, 510},
		{(const char *)*__ctype_tolower_loc(), -512, 1020},
		{(const char *)*__ctype_toupper_loc(), -512, 1020},
	};

	for (unsigned int i = 0; i < 4; i++) {
		const volatile char *p = ctype[i].p;

		if (!p || fp->n + 2 > FORK_FILE_ADDRS)
			continue;
		(void)p[ctype[i].lo];
		(void)p[ctype[i].hi];
		fp->a[fp->n++] = (unsigned long)(p + ctype[i].lo);
		fp->a[fp->n++] = (unsigned long)(p + ctype[i].hi);
	}
	if (loc)
		freelocale(loc);
}

/* Every page of fp in a VMA of sp PRESENT.  Context: quiesced (mmap_lock
 * and every VMA lock held for write); the pages are not touched. */
static bool files_resident(struct fl_space *sp, const struct file_pages *fp)
{
	for (unsigned int i = 0; i < fp->n; i++) {
		unsigned long a = fp->a[i] & ~(PAGE_SIZE - 1);
		struct pt_chunk *c;

		if (!vma_lookup(sp, a))
			continue;
		c = pt_chunk_lookup(sp, a);
		if (!c || pte_type(atomic_load_explicit(&c->pte[pt_index(a)],
							memory_order_relaxed)) != PTE_PRESENT)
			return false;
	}
	return true;
}

/*
 * The parent's part before fork(): steps 1 to 4 at the top.  sp->fork_err
 * says why the child will not get the space (0: it will).
 * Context: fork_prepare() (space.c), holding a use of sp (made with
 * cfg.fork) and no lock.
 */
void fork_space_prepare(struct fl_space *sp)
{
	struct file_pages *files = malloc(sizeof(*files));
	struct vma_index *idx;
	int err;

	sp->fork_store_fd = -1;
	sp->fork_err = 0;
	for (int tries = 0;; tries++) {
		if (files)
			files_touch(files);
		uffd_handlers_pause(sp);
		workers_pause(sp);
		mmap_write_lock(sp);
		sp->fork_held = true;
		/* Ranges unmapped behind faultline's back (perhaps someone
		 * else's mapping now) are not the space's: found and dropped
		 * here, so that the child neither registers them nor unmaps
		 * them (fork_space_abandon()). */
		find_stale(sp, 0, ~0UL);
		drop_stale(sp);
		err = fork_unsupported(sp);
		if (err) {
			free(files);
			sp->fork_err = err;
			return;
		}
		idx = vma_index_get(sp);
		for (size_t i = 0; i < idx->nr; i++)
			vma_start_write(idx->v[i]);
		/* Faults that own their page's read submit or complete it; so
		 * do the reaper's callbacks, which may start readahead: until
		 * both are 0, checked again holding the reaper
		 * (swapdev_fork_quiesce()). */
		while (atomic_load(&sp->sync_completing))
			usleep(50);
		fileio_fork_quiesce(sp);
		if (!files || files_resident(sp, files))
			break;
		if (tries == 16) {
			fl_log("fork: a FILE of space %p kept being evicted before the fork: the "
			       "child may die resetting its lock",
			       (void *)sp);
			break;
		}
		sp->fork_held = false;
		mmap_write_unlock(sp);
		workers_resume(sp);
		uffd_handlers_resume(sp);
	}
	free(files);
	if (sp->dev_open) {
		swapdev_fork_quiesce(&sp->dev, &sp->sync_completing);
		sp->fork_reaper_held = true;
		err = frames_busy(sp);
		if (!err) {
			err = swapdev_fork_prepare(&sp->dev, &sp->fork_store_fd);
			if (err)
				fl_log("fork: the swap store could not be copied for the child "
				       "(%s): the child does not get the space's regions",
				       fl_strerror(-err));
		}
		sp->fork_err = err;
	}
}

/* The parent's part after fork(): everything goes on.  Context: as
 * fork_space_prepare(), which ran. */
void fork_space_parent(struct fl_space *sp)
{
	if (!sp->fork_held)
		return;
	sp->fork_held = false;
	if (sp->fork_reaper_held)
		swapdev_fork_parent(&sp->dev, sp->fork_store_fd);
	sp->fork_reaper_held = false;
	sp->fork_store_fd = -1;
	mmap_write_unlock(sp);
	workers_resume(sp);
	uffd_handlers_resume(sp);
}

/* ---- the child ------------------------------------------------------- */

static const pthread_mutex_t fresh_mutex = PTHREAD_MUTEX_INITIALIZER;
#define FRESH(m) memcpy(&(m), &fresh_mutex, sizeof(fresh_mutex))

/*
 * A chunk: a fresh ptl; its PRESENT|WP pages (clean, with a swap copy) made
 * PRESENT, dirty, and their slots in the child's copy of the store freed.
 * The kernel dropped their write protection in the child, and the child may
 * have written them before its handler ran (glibc's own child handlers,
 * earlier atfork handlers): such a write would not be seen, and an eviction
 * would keep the old copy.  So the child counts them dirty: one write more
 * per such page when it evicts it.
 */
static void child_chunk(struct fl_space *sp, struct pt_chunk *c, void *arg)
{
	(void)arg;
	FRESH(c->ptl);
	for (unsigned int i = 0; i < PT_CHUNK_PAGES; i++) {
		uint64_t pte = atomic_load_explicit(&c->pte[i], memory_order_relaxed);

		if (pte_type(pte) != PTE_PRESENT || !(pte & PTE_WP))
			continue;
		atomic_store_explicit(&c->pte[i], mk_pte(PTE_PRESENT, PTE_REF, 0),
				      memory_order_relaxed);
		if (sp->dev_open)
			swap_slot_free(&sp->dev, pte_value(pte));
	}
}

/* A run of pages whose kernel pages the child drops. */
struct zap_run {
	unsigned long start, end;
	int err;
};

static void zap_run_flush(struct zap_run *z)
{
	if (z->end > z->start && !z->err &&
	    madvise((void *)z->start, z->end - z->start, MADV_DONTNEED))
		z->err = -errno;
	z->start = z->end = 0;
}

static void zap_run_add(struct zap_run *z, unsigned long start, unsigned long end)
{
	if (z->end != start)
		zap_run_flush(z);
	if (!z->end)
		z->start = start;
	z->end = end;
}

/*
 * Every page of v that is not PRESENT (swapped out, in a frame, never
 * touched): the kernel's page there dropped.  The child's range is not
 * registered until fork_space_child() registers it, and code that runs in
 * the child before it (glibc's fork internals, such as the reset of every
 * FILE's lock, and earlier atfork child handlers) may touch it: the kernel
 * then maps its zero page (or a new zeroed page) where the page is
 * swapped out.  Dropped, the page faults through the new registration and
 * is read from the store's copy.  A write made there before is lost (the
 * page is as it was at the fork).  Context: fork_space_child(), before the
 * registration.  Return: 0 or a negative errno.
 */
static int child_zap_absent(struct fl_space *sp, struct vma *v)
{
	struct zap_run z = {0};

	for (unsigned long a = v->vm_start; a < v->vm_end;) {
		unsigned long cend =
			MIN((a & PT_CHUNK_MASK) + PT_CHUNK_PAGES * PAGE_SIZE, v->vm_end);
		struct pt_chunk *c = pt_chunk_lookup(sp, a);

		if (!c) {
			zap_run_add(&z, a, cend);
			a = cend;
			continue;
		}
		for (; a < cend; a += PAGE_SIZE) {
			uint64_t pte =
				atomic_load_explicit(&c->pte[pt_index(a)], memory_order_relaxed);
			if (pte_type(pte) != PTE_PRESENT)
				zap_run_add(&z, a, a + PAGE_SIZE);
		}
	}
	zap_run_flush(&z);
	return z.err;
}

/* The locks of sp whose holders may have been the parent's threads. */
static void child_fresh_locks(struct fl_space *sp)
{
	static const pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
	pthread_rwlockattr_t a;

	FRESH(sp->chunk_alloc_lock);
	FRESH(sp->frame_lock);
	FRESH(sp->batch_lock);
	memcpy(&sp->batches_back, &fresh_cond, sizeof(fresh_cond));
	FRESH(sp->retry_lock);
	FRESH(sp->reclaim_lock);
	FRESH(sp->clock_lock);
	FRESH(sp->files_lock);
	FRESH(sp->pf.lock);
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&sp->handler_gate, &a);
	pthread_rwlockattr_destroy(&a);
	for (size_t i = 0; sp->frames && i < sp->nr_frames; i++) {
		struct frame *f = &sp->frames[i];
		bool held = f->pins || f->waiters;

		FRESH(f->lock);
		/* Waiters and pins were the parent's faults.  A frame whose
		 * page went away, kept for them alone, is free in the child
		 * (nothing is under I/O: frames_busy()); one on the free list
		 * has neither. */
		f->waiters = NULL;
		f->pins = 0;
		if (held && (f->flags & FRAME_DETACHED))
			frame_free(sp, f);
	}
}

/*
 * The child's part: the space made the child's (the top of this file).
 * Context: fork_child() (space.c): the child's only thread, in fork();
 * fork_space_prepare() ran in the parent.  Return: 0, or a negative errno
 * (the caller gives the space up: fork_space_abandon()).
 */
int fork_space_child(struct fl_space *sp)
{
	struct vma_index *idx = vma_index_get(sp);
	int ret;

	if (sp->fork_err)
		return sp->fork_err;
	/* No file is carried (fork_unsupported()): what the counts say of
	 * the parent's caches is not the child's (a file's last put may
	 * come here from an RCU callback, and leaves them alone). */
	atomic_store(&sp->file_pages, 0);
	atomic_store(&sp->file_dirty, 0);
	atomic_store(&sp->file_writeback, 0);
	mmap_lock_fork_child(sp);
	sp->fork_held = false;
	sp->fork_reaper_held = false;
	child_fresh_locks(sp);
	atomic_store(&sp->fault_refs, 0);
	atomic_store(&sp->sync_readers, 0);
	atomic_store(&sp->sync_completing, 0);
	sp->retry_head = sp->retry_tail = NULL;
	/* The store's copy, a new ring and reaper: before anything can fault. */
	if (sp->dev_open) {
		ret = swapdev_fork_child(&sp->dev, sp->fork_store_fd);
		sp->fork_store_fd = -1;
		if (ret)
			return ret;
	}
	/* The files' ring, the same way (nothing of a file is in flight). */
	ret = fileio_fork_child(sp);
	if (ret)
		return ret;
	if (sp->mem_fd >= 0) {
		/* /proc/self/mem as opened names the parent's memory. */
		close(sp->mem_fd);
		sp->mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
		if (sp->mem_fd < 0)
			return -errno;
	}
	/* A new userfaultfd: the kernel gave the child's VMAs none. */
	close(sp->uffd);
	sp->uffd = -1;
	ret = uffd_open(sp);
	if (ret)
		return ret;
	/* Fresh ptls, the clean pages dirty (child_chunk()), the pages of a
	 * MADV_WIPEONFORK VMA forgotten (the kernel gave the child an empty
	 * mapping there: zero-filled pages), and the kernel's pages where the
	 * entry is not PRESENT dropped: then the registration.  A
	 * MADV_DONTFORK VMA has no mapping here: it leaves the space in
	 * fork_space_child_late(). */
	pt_walk_all(sp, child_chunk, NULL);
	for (size_t i = 0; i < idx->nr; i++) {
		struct vma *v = idx->v[i];

		if (v->flags & VM_DONTFORK)
			continue;
		if (v->flags & VM_WIPEONFORK)
			pt_zap_range(sp, v->vm_start, v->vm_end, false);
		ret = child_zap_absent(sp, v);
		if (!ret)
			ret = uffd_register(sp, v->vm_start, v->vm_end - v->vm_start, false);
		if (ret)
			return ret;
	}
	if (sp->retry_fd >= 0)
		close(sp->retry_fd);
	sp->retry_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sp->retry_fd < 0)
		return -errno;
	ret = worker_fork_child(&sp->resizer);
	if (!ret)
		ret = worker_fork_child(&sp->kswapd);
	if (!ret)
		ret = worker_fork_child(&sp->flusher);
	if (!ret)
		ret = uffd_handlers_fork_child(sp);
	if (ret)
		return ret;
	mmap_write_unlock(sp);
	/* Whatever the parent's faults left for kswapd. */
	worker_kick(&sp->kswapd);
	return 0;
}

/*
 * The child's part once liburcu's call_rcu threads are back (a change of
 * the index frees the old one after a grace period): the MADV_DONTFORK
 * VMAs, which the kernel did not copy, taken out of the space, their pages
 * and slots in the store's copy freed.  Their ranges were never registered
 * here (fork_space_child()), so nothing faults there meanwhile: an access
 * is the kernel's SIGSEGV.  Out of memory for the change, a VMA is left
 * for the next write section to find unregistered and drop (find_stale()).
 * Context: fork_child() (space.c), after fork_space_child() succeeded.
 */
void fork_space_child_late(struct fl_space *sp)
{
	mmap_write_lock(sp);
	for (;;) {
		struct vma_index *idx = vma_index_get(sp);
		unsigned long s = 0, e = 0;
		struct layout l;

		for (size_t i = 0; i < idx->nr && !e; i++)
			if (idx->v[i]->flags & VM_DONTFORK) {
				s = idx->v[i]->vm_start;
				e = idx->v[i]->vm_end;
			}
		if (!e || layout_prepare_retry(sp, s, e, NULL, 0, true, &l))
			break;
		pt_zap_range(sp, s, e, false);
		layout_commit(sp, &l);
		pt_free_unused(sp, s, e);
	}
	mmap_write_unlock(sp);
}

/* ---- MADV_DONTFORK and MADV_WIPEONFORK -------------------------------- */

/* The VMA flags that advice makes of flags. */
static unsigned long fork_advice_flags(unsigned long flags, int advice)
{
	switch (advice) {
	case MADV_DONTFORK:
		return flags | VM_DONTFORK;
	case MADV_DOFORK:
		return flags & ~VM_DONTFORK;
	case MADV_WIPEONFORK:
		return flags | VM_WIPEONFORK;
	default: /* MADV_KEEPONFORK */
		return flags & ~VM_WIPEONFORK;
	}
}

/*
 * The kernel's VMAs of seg made to match its flags, where the space's
 * region is inherited by a child at all (cfg.fork, anonymous: otherwise
 * the kernel's region stays MADV_DONTFORK, region_fork_advice()).
 * Return: 0 or -errno.
 */
static int fork_advice_kernel(struct fl_space *sp, const struct seg *g)
{
	void *a = (void *)g->start;
	size_t len = g->end - g->start;

	if (!sp->cfg.fork || g->file)
		return 0;
	if (madvise(a, len, g->flags & VM_DONTFORK ? MADV_DONTFORK : MADV_DOFORK) ||
	    madvise(a, len, g->flags & VM_WIPEONFORK ? MADV_WIPEONFORK : MADV_KEEPONFORK))
		return -errno;
	return 0;
}

/*
 * fl_madvise() with MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK or
 * MADV_KEEPONFORK on [start, end), as the kernel's madvise: each VMA's part
 * in the range gets the flag set or cleared (VM_DONTFORK, VM_WIPEONFORK),
 * the VMAs split where the range starts and ends and merged where they
 * match, and so do the kernel's VMAs (fork_advice_kernel()).  A hole: the
 * VMAs around it changed, then -ENOMEM; MADV_WIPEONFORK meeting a file
 * mapping (the kernel takes it for private anonymous memory only):
 * -EINVAL, the VMAs before it changed.  A child of fork() then has no
 * mapping in a VM_DONTFORK range (an access is SIGSEGV; it is not in the
 * child's space), and zero-filled memory in a VM_WIPEONFORK one
 * (fork_space_child(), fork_space_child_late()).
 * Context: a use of sp held, no lock.  Return: 0 or a negative errno.
 */
int madvise_fork(struct fl_space *sp, unsigned long start, unsigned long end, int advice)
{
	unsigned long done = start;
	struct vma_index *idx;
	struct seg *segs;
	struct layout l;
	size_t i, k, n = 0;
	int err = 0, ret;

	mmap_write_lock(sp);
	/* A part that is not the space's mapping any more is a hole now. */
	find_stale(sp, start, end);
	drop_stale(sp);
	idx = vma_index_get(sp);
	i = vma_index_first(idx, start);
	segs = calloc(idx->nr - MIN(i, idx->nr) + 1, sizeof(*segs));
	if (!segs) {
		mmap_write_unlock(sp);
		return -ENOMEM;
	}
	for (; i < idx->nr && idx->v[i]->vm_start < end; i++) {
		struct vma *v = idx->v[i];

		if (v->vm_start > done)
			err = -ENOMEM; /* a hole: the kernel goes on */
		if (advice == MADV_WIPEONFORK && v->file) {
			err = -EINVAL;
			break;
		}
		segs[n] = seg_of(v, MAX(v->vm_start, start), MIN(v->vm_end, end));
		segs[n++].flags = fork_advice_flags(v->flags, advice);
		done = MIN(v->vm_end, end);
	}
	if (done < end && !err)
		err = -ENOMEM;
	if (!n)
		goto out;
	ret = layout_prepare_retry(sp, start, done, segs, n, false, &l);
	if (ret) {
		err = ret;
		goto out;
	}
	for (k = 0; k < n; k++) {
		ret = fork_advice_kernel(sp, &segs[k]);
		if (!ret)
			continue;
		/* The kernel could not split a mapping (its map count limit):
		 * the parts before this one changed, as the kernel's. */
		layout_abort(sp, &l);
		if (k)
			layout_force(sp, start, segs[k].start, segs, k, false);
		err = ret;
		goto out;
	}
	layout_commit(sp, &l);
out:
	free(segs);
	mmap_write_unlock(sp);
	return err;
}

/*
 * In a child of fork(), a space it does not get: the lock its carried RCU
 * callbacks take is made fresh, and the descriptors that hold the
 * parent's resources go (the parent keeps its own).  The store's, with
 * its lock, and the ring that holds it; the userfaultfd; the cached files'.
 * Nothing uses the space here any more (its handle gives EINVAL); a
 * descriptor closed is set to -1, so that nothing closes it again (a file's
 * last put, from an RCU callback carried into the child, closes only what
 * is left).  Context: the child's one thread, in the atfork handler.
 */
void fork_space_release(struct fl_space *sp)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	struct swap_dev *d = &sp->dev;

	/* The parent's RCU callbacks, carried into the child's call_rcu
	 * thread, free page-table chunks under it: a thread of the parent
	 * may have held it at the fork. */
	memcpy(&sp->chunk_alloc_lock, &fresh, sizeof(fresh));
	if (d->reaper_started) {
		io_uring_queue_exit(&d->ring); /* the child's view, and its fd */
		d->reaper_started = false;
	}
	if (sp->dev_open && d->fd >= 0) { /* without a store, fd is 0: not its */
		close(d->fd);
		d->fd = -1;
	}
	if (sp->uffd >= 0) {
		close(sp->uffd);
		sp->uffd = -1;
	}
	/* The workers' and handlers' eventfds and epoll sets, the files' ring,
	 * and /proc/self/mem (as opened, the parent's memory): -1 when never
	 * opened. */
	worker_fork_release(&sp->resizer);
	worker_fork_release(&sp->kswapd);
	worker_fork_release(&sp->flusher);
	worker_fork_release(&d->discarder);
	if (sp->tier)
		worker_fork_release(&sp->tier->wb_worker);
	if (sp->ws)
		worker_fork_release(&sp->ws->replayer);
	if (sp->stop_fd >= 0)
		close(sp->stop_fd);
	if (sp->retry_fd >= 0)
		close(sp->retry_fd);
	if (sp->mem_fd >= 0)
		close(sp->mem_fd);
	sp->stop_fd = sp->retry_fd = sp->mem_fd = -1;
	uffd_handlers_fork_release(sp);
	fileio_fork_release(sp);
	filemap_fork_release(sp);
}

/*
 * The child cannot have sp (made with cfg.fork): its regions are unmapped
 * (an access is SIGSEGV, never data that is not the parent's; a file's
 * were not inherited), and the caller takes it off the list (and, if the
 * child started nothing of it, lets go of its descriptors:
 * fork_space_release()).  Context: fork_child() (space.c); mmap_lock was
 * held for write at the fork, so the index is the layout the kernel copied.
 */
void fork_space_abandon(struct fl_space *sp, int err)
{
	struct vma_index *idx = vma_index_get(sp);

	for (size_t i = 0; i < idx->nr; i++) {
		unsigned long s = idx->v[i]->vm_start, e = idx->v[i]->vm_end;

		if (!space_stale_overlaps(sp, s, e)) {
			munmap((void *)s, e - s);
			continue;
		}
		/* A stale range left (no memory to drop it) may be someone
		 * else's mapping: only the pages around it are unmapped. */
		for (unsigned long a = s; a < e; a += PAGE_SIZE)
			if (!space_stale_overlaps(sp, a, a + PAGE_SIZE))
				munmap((void *)a, PAGE_SIZE);
	}
	if (sp->claim_end > sp->claim_start)
		munmap((void *)sp->claim_start, sp->claim_end - sp->claim_start);
	if (err == -EOPNOTSUPP)
		fl_log("fork: the child does not get space %p (file mappings, the compressed tier "
		       "and working sets are not carried into a child): its regions are unmapped "
		       "here",
		       (void *)sp);
	else
		fl_log("fork: the child could not be given space %p (%s): its regions are "
		       "unmapped here",
		       (void *)sp, fl_strerror(-err));
}
