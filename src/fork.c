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
 * The regions are not MADV_DONTFORK, so the kernel gives the child every
 * resident page, copy on write.  The child (its only thread, in fork()'s
 * child handler, fork_space_child()) makes the space its own: fresh locks
 * (their holders are gone: the parent's threads are not in the child), a
 * new userfaultfd with every VMA registered as the parent's was (the
 * kernel drops the registration in a child without EVENT_FORK), the pages
 * the parent had write-protected (PRESENT|WP: clean, with a swap copy)
 * write-protected again (the kernel drops that bit too), the store's copy
 * in place of the store, a new io_uring ring, and new threads and eventfds.
 * Entries then mean in the child what they meant in the parent: PRESENT
 * pages are the kernel's copies, SWAP entries are read from the copy
 * (checked against the metadata the child inherited), FRAME entries are
 * the frames the child inherited.  Its budget is its own (cfg.mem_limit).
 *
 * What the child drops: faults of the parent's threads that were parked or
 * queued for a retry (their threads are not in the child; a frame they
 * pinned stays pinned, resident), and the parent's counts of calls and
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

#include <sys/eventfd.h>
#include <sys/mman.h>

#include "pgtable.h"
#include "swap.h"
#include "uffd.h"
#include "vma.h"

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
	return 0;
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
 * The parent's part before fork(): steps 1 to 4 at the top.  sp->fork_err
 * says why the child will not get the space (0: it will).
 * Context: fork_prepare() (space.c), holding a use of sp (made with
 * cfg.fork) and no lock.
 */
void fork_space_prepare(struct fl_space *sp)
{
	struct vma_index *idx;
	int err;

	sp->fork_store_fd = -1;
	sp->fork_err = 0;
	uffd_handlers_pause(sp);
	workers_pause(sp);
	mmap_write_lock(sp);
	sp->fork_held = true;
	err = fork_unsupported(sp);
	if (err) {
		sp->fork_err = err;
		return;
	}
	idx = vma_index_get(sp);
	for (size_t i = 0; i < idx->nr; i++)
		vma_start_write(idx->v[i]);
	/* Faults that own their page's read submit or complete it; so do the
	 * reaper's callbacks, which may start readahead: until both are 0,
	 * checked again holding the reaper (swapdev_fork_quiesce()). */
	while (atomic_load(&sp->sync_completing))
		usleep(50);
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

struct rewp {
	int err;
	unsigned long start, end; /* a run of pages to write-protect */
};

static void rewp_flush(struct fl_space *sp, struct rewp *w)
{
	if (w->end > w->start && !w->err)
		w->err = uffd_writeprotect(sp, w->start, w->end - w->start, true);
	w->start = w->end = 0;
}

/* A chunk: fresh ptl; its PRESENT|WP pages write-protected again. */
static void child_chunk(struct fl_space *sp, struct pt_chunk *c, void *arg)
{
	struct rewp *w = arg;

	FRESH(c->ptl);
	for (unsigned int i = 0; i < PT_CHUNK_PAGES; i++) {
		uint64_t pte = atomic_load_explicit(&c->pte[i], memory_order_relaxed);
		unsigned long a = c->base + i * PAGE_SIZE;

		if (pte_type(pte) != PTE_PRESENT || !(pte & PTE_WP))
			continue;
		if (w->end != a)
			rewp_flush(sp, w);
		if (!w->end)
			w->start = a;
		w->end = a + PAGE_SIZE;
	}
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
		FRESH(f->lock);
		/* Waiters and pins were the parent's faults. */
		f->waiters = NULL;
		f->pins = 0;
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
	struct rewp w = {0};
	int ret;

	if (sp->fork_err)
		return sp->fork_err;
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
	for (size_t i = 0; i < idx->nr; i++) {
		struct vma *v = idx->v[i];
		ret = uffd_register(sp, v->vm_start, v->vm_end - v->vm_start, false);
		if (ret)
			return ret;
	}
	pt_walk_all(sp, child_chunk, &w);
	rewp_flush(sp, &w);
	if (w.err)
		return w.err;
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
 * The child cannot have sp (made with cfg.fork): its regions are unmapped
 * (an access is SIGSEGV, never data that is not the parent's; a file's
 * were not inherited), and the caller takes it off the list.  Nothing else of it is touched: its
 * threads, locks and descriptors were the parent's. Context: fork_child() (space.c); mmap_lock was
 * held for write at the fork, so the index is the layout the kernel copied.
 */
void fork_space_abandon(struct fl_space *sp, int err)
{
	struct vma_index *idx = vma_index_get(sp);

	for (size_t i = 0; i < idx->nr; i++)
		munmap((void *)idx->v[i]->vm_start, idx->v[i]->vm_end - idx->v[i]->vm_start);
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
