// SPDX-License-Identifier: MIT
/*
 * Parked faults: continuations, and the handler threads' retry queue.
 *
 * The kernel's fault sleeps on a locked folio; faultline's handler threads
 * must not sleep on I/O that is not their own fault's (ARCHITECTURE.md
 * section 3), so a fault that waits for a frame's read becomes a waiter on
 * that frame, and the read's completion runs the rest of the fault: the
 * continuation.  What the fault keeps while it waits, and so how it goes on,
 * is its cont_action, chosen by the policy in frame_lock_or_retry()
 * (fault.c).  Two kinds of waiter:
 *
 *   parked (fault_park(), thread delivery): on the heap.  The handler thread
 *       goes on to its next message; the completion (swap_read_done() ->
 *       waiter_wake()) runs cont_run().
 *   asleep (fault_sleep()): on the stack of a thread that sleeps until the
 *       read completes, then runs cont_run() itself: the faulting thread in
 *       sigbus delivery, or a handler thread that reads its own fault's page
 *       (sync_read_get()).
 *
 * A continuation never sleeps on I/O (a fault that must wait again parks
 * again), and at I/O completion (in_completion) it never waits for a lock:
 * the VMA lock and mmap_lock are only tried, and a retry that finds
 * mmap_lock taken is queued to the handler threads (retry_enqueue()), which
 * may wait.
 *
 * Who owns a parked waiter, at each moment exactly one of:
 *   - the frame's waiter list, from waiter_add() until the read completes;
 *   - the thread running cont_run() on it, which frees it at the end;
 *   - the retry queue, from retry_enqueue() until a handler thread takes it
 *     and runs cont_run() (which then owns and frees it).
 * Nothing reads a waiter after handing it on.
 *
 * Locks: f->lock guards the frame's waiter list (taken inside the ptl);
 * retry_lock (a leaf) the queue.  A CONT_INSTALL waiter holds its VMA's
 * read lock from the park to its end; every other waiter holds no lock.
 */
#include "cont.h"

#include <sys/eventfd.h>

#include "fileio.h"
#include "filemap.h"
#include "mmap_lock.h"
#include "pgtable.h"
#include "space.h"
#include "stats.h"
#include "swap.h"
#include "vma.h"

FL_TLS unsigned long sync_reads_taken;

/*
 * A handler thread's synchronous read: allowed while fewer than
 * cfg.handlers - 1 handlers sleep in one, so that one handler is always free
 * to read fault messages.  Return: whether the caller may read synchronously
 * (then fault_sleep() gives the place back once the read is done).
 */
bool sync_read_get(struct fl_space *sp)
{
	int n = atomic_load_explicit(&sp->sync_readers, memory_order_relaxed);

	while (n < (int)sp->cfg.handlers - 1)
		if (atomic_compare_exchange_weak(&sp->sync_readers, &n, n + 1)) {
			sync_reads_taken++;
			return true;
		}
	return false;
}

void sync_read_put(struct fl_space *sp)
{
	atomic_fetch_sub(&sp->sync_readers, 1);
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

static void waiter_init(struct waiter *w, const struct vm_fault *vmf, struct frame *f,
			enum cont_action action, bool on_stack)
{
	memset(w, 0, sizeof(*w));
	w->vmf = *vmf;
	/* The continuation is not the last message of a handler's batch, and
	 * takes its VMA lock afresh unless it keeps this one. */
	w->vmf.flags &= ~(FAULT_FLAG_VMA_LOCK | FAULT_FLAG_MAY_SYNC);
	w->vmf.vma = action == CONT_INSTALL ? vmf->vma : NULL;
	w->frame = f;
	w->action = action;
	w->on_stack = on_stack;
}

/*
 * A fault is parked (its waiter handed on): count it, and let go of its
 * lock as the action says, release_fault_lock() unless hold keeps it.
 * Return: VM_FAULT_PARKED, with VM_FAULT_RETRY when the fault gave its VMA
 * lock up to go on under mmap_lock (drop).
 */
static int parked_release(struct vm_fault *vmf, enum cont_action action)
{
	bool vma_locked = vmf->flags & FAULT_FLAG_VMA_LOCK;

	count_event(vmf->sp, parked);
	if (!vma_locked)
		mmap_read_unlock(vmf->sp);
	else if (action != CONT_INSTALL)
		vma_end_read(vmf->vma);
	return VM_FAULT_PARKED | (vma_locked && action == CONT_RETRY_MMAP ? VM_FAULT_RETRY : 0);
}

/*
 * Put w among f's waiters, with a pin on f, and let go of the fault's lock
 * as w->action says: release_fault_lock(), unless hold keeps it.
 * Context: the ptl of vmf->chunk and f->lock held, both released here; the
 * fault's lock held.
 * Return: VM_FAULT_PARKED, with VM_FAULT_RETRY when the fault gave its VMA
 * lock up to go on under mmap_lock (drop).
 */
static int waiter_add(struct waiter *w, struct vm_fault *vmf, struct frame *f)
{
	enum cont_action action = w->action;

	w->t_park = fl_now_ns();
	w->pinned = true;
	f->pins++;
	w->next = f->waiters;
	f->waiters = w;
	if (action == CONT_INSTALL && !w->on_stack)
		vma_handoff(vmf->vma); /* its continuation will release it */
	/* A parked waiter is the frame's from here: nothing of it is read. */
	pthread_mutex_unlock(&f->lock);
	pt_unlock(vmf->chunk);
	return parked_release(vmf, action);
}

/* Tests only (test_fork_edges): a fault that reads its own page waits this
 * long after it let go of its locks, before the read, so that a fork falls
 * in that window.  0: no wait. */
_Atomic unsigned int fl_test_own_read_delay_us;

/* A fault's own read (sync_completing, counted by do_swap_page()) is
 * submitted, or done and completed.  Context: any; no lock needed. */
void own_read_end(struct fl_space *sp)
{
	atomic_fetch_sub(&sp->sync_completing, 1);
}

/*
 * Park the fault on f, whose read is in flight: a waiter on the heap that
 * the read's completion runs.  own_read: the read is this fault's to start,
 * which it does once parked.
 * Context and return: as waiter_add(); VM_FAULT_NOPAGE (the fault's lock
 * still held, the access will fault again) if no memory for the waiter.
 */
int fault_park(struct vm_fault *vmf, struct frame *f, enum cont_action action, bool own_read)
{
	struct fl_space *sp = vmf->sp;
	struct waiter *w = malloc(sizeof(*w));
	int ret;

	if (!w) {
		pthread_mutex_unlock(&f->lock);
		pt_unlock(vmf->chunk);
		if (own_read) { /* the frame's read must still happen */
			swap_read_start(sp, f);
			own_read_end(sp);
		}
		return VM_FAULT_NOPAGE;
	}
	waiter_init(w, vmf, f, action, false);
	ret = waiter_add(w, vmf, f);
	if (own_read) {
		swap_read_start(sp, f);
		own_read_end(sp);
	}
	return ret;
}

static void cont_run(struct waiter *w);

/*
 * Sleep in this thread until f's read completes, then finish the fault
 * here.  With own_read this thread does the read itself (swap_read_page())
 * and runs its completion as the reaper would: a handler thread with
 * in_completion set (it may still hold its VMA lock under hold, so nothing
 * it runs for the other waiters may block), and gives its place among the
 * synchronous readers back (sync_read_get()).
 * Context: as waiter_add().  Return: as waiter_add(); the fault is finished.
 */
int fault_sleep(struct vm_fault *vmf, struct frame *f, enum cont_action action, bool own_read)
{
	struct fl_space *sp = vmf->sp;
	bool sigbus = vmf->flags & FAULT_FLAG_SIGBUS;
	struct waiter w;
	int ret;

	waiter_init(&w, vmf, f, action, true);
	w.self_done = own_read; /* this thread completes the read: no wake */
	ret = waiter_add(&w, vmf, f);
	if (own_read) {
		/* Counted in sync_completing since do_swap_page() owned it. */
		unsigned int delay =
			atomic_load_explicit(&fl_test_own_read_delay_us, memory_order_relaxed);
		if (delay)
			usleep(delay);
		int res = swap_read_page(sp, f);
		bool was = in_completion;

		in_completion = !sigbus;
		swap_read_done(&f->io, res);
		in_completion = was;
		own_read_end(sp);
		if (!sigbus)
			sync_read_put(sp);
	}
	while (!atomic_load_explicit(&w.done, memory_order_acquire))
		futex_wait(&w.done, 0);
	cont_run(&w);
	return ret;
}

/* cont_retry_mmap(): the waiter went to the retry queue, which owns it now. */
#define CONT_QUEUED (-1)

/*
 * The rest of w's fault as a retry under mmap_lock.  At I/O completion it
 * never waits for mmap_lock: it runs if a trylock gets the lock, as the
 * faulting thread's own retry would find it free; if not, w is queued to the
 * handler threads, which may wait.  Elsewhere (a handler thread, or a
 * sleeping waiter's own thread) it takes the lock.
 * Context: no faultline lock held but, at completion, perhaps another
 * fault's VMA read lock (a handler thread completing its own read under
 * hold): hence only the trylock there.
 * Return: as fault_retry_mmap(), or CONT_QUEUED.
 */
static int cont_retry_mmap(struct waiter *w)
{
	struct vm_fault *vmf = &w->vmf;
	struct fl_space *sp = vmf->sp;
	int ret;

	vmf->flags = (vmf->flags | FAULT_FLAG_TRIED) & ~FAULT_FLAG_VMA_LOCK;
	if (w->on_stack || !in_completion)
		return fault_retry_mmap(vmf);
	vmf->flags |= FAULT_FLAG_NOWAIT;
	ret = fault_retry_mmap(vmf);
	if (!(ret & VM_FAULT_LOCKBUSY)) {
		count_event(sp, retries_completion);
		return ret;
	}
	vmf->flags &= ~FAULT_FLAG_NOWAIT;
	/* A retry goes without its pin, as in cont_run(). */
	if (w->pinned) {
		frame_unpin(sp, w->frame);
		w->pinned = false;
	}
	w->action = CONT_RETRY_MMAP;
	w->vmf.vma = NULL;
	w->t_park = fl_now_ns(); /* waiting for a handler: parked still */
	count_event(sp, retries_queued);
	retry_enqueue(sp, w);
	return CONT_QUEUED;
}

/*
 * Run a continuation: the rest of w's fault, now that its frame's read is
 * done (or, for a queued retry, on a handler thread).
 * Context: no faultline lock held, except the VMA read lock a CONT_INSTALL
 * waiter holds; see the top of this file for what it may wait for.  Frees a
 * parked waiter unless it queues it.
 */
static void cont_run(struct waiter *w)
{
	struct vm_fault *vmf = &w->vmf;
	struct fl_space *sp = vmf->sp;
	int ret = VM_FAULT_RETRY;

	vmf->flags |= FAULT_FLAG_CONT; /* its major or minor fault is counted */
	if (w->t_park) {
		count_event_n(sp, parked_ns, fl_now_ns() - w->t_park);
		w->t_park = 0;
	}
	/*
	 * hold and drop-vma go on with the same fault, the frame still pinned
	 * (the kernel: the folio reference kept), so reclaim cannot take the
	 * page from the swap cache before the fault maps it.  A retry under
	 * mmap_lock (mmap, bail, drop) is a new fault: as the kernel's
	 * do_swap_page() drops its folio reference before returning
	 * VM_FAULT_RETRY, the pin goes first, and reclaim may take the page in
	 * between (then the retry reads it again: a wasted read).
	 */
	if (w->pinned && w->action == CONT_RETRY_MMAP) {
		frame_unpin(sp, w->frame);
		w->pinned = false;
	}
	switch (w->action) {
	case CONT_INSTALL: /* hold: the fault kept its VMA lock */
		if (!w->on_stack)
			vma_adopt(vmf->vma);
		ret = handle_fault_vma_locked(vmf);
		break;
	case CONT_RETRY_VMA: /* drop-vma: the VMA lock again, if it can be had */
		vmf->vma = lock_vma_under_rcu(sp, vmf->address);
		if (vmf->vma && access_error(vmf->vma, vmf->flags)) {
			/* mprotect()ed meanwhile: the retry decides. */
			vma_end_read(vmf->vma);
			vmf->vma = NULL;
		}
		ret = handle_fault_vma_locked(vmf);
		break;
	case CONT_RETRY_MMAP:
		break;
	}
	if (ret & VM_FAULT_RETRY) {
		ret = cont_retry_mmap(w);
		if (ret == CONT_QUEUED)
			return;
	}
	if (!(ret & VM_FAULT_PARKED))
		fault_done(vmf, ret);
	if (w->pinned)
		frame_unpin(sp, w->frame);
	if (w->file)
		file_put(w->file);
	if (!w->on_stack)
		free(w);
}

/*
 * The read w waited for has completed: wake its thread (a sleeping waiter),
 * or run its continuation (a parked one).  Outside I/O completion (which a
 * parked waiter's read always is in practice), a retry goes to the handler
 * threads rather than block the caller.
 * Context: the read's completion, f->lock not held; w is off the frame's
 * list and the caller's to hand on.
 */
void waiter_wake(struct waiter *w)
{
	if (w->on_stack) {
		/* Read self_done first: once done is set, w may be gone. */
		bool wake = !w->self_done;
		atomic_store_explicit(&w->done, 1, memory_order_release);
		if (wake)
			futex_wake(&w->done, 1);
		return;
	}
	if (w->action == CONT_RETRY_MMAP && !in_completion)
		retry_enqueue(w->vmf.sp, w);
	else
		cont_run(w);
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

/* ---- faults parked on a file's page lock ------------------------------ */

/*
 * The wait queues of file pages, hashed by (file, page) as the kernel's
 * folio_wait_table: a fault parked on a locked page is on its queue, and
 * the page's state has PG_PARKED, so that folio_unlock() looks here.
 * page_wait_table[].lock: a leaf, taken by fault_park_page() (under the
 * fault's lock) and page_wake() (from folio_unlock(), under whatever its
 * caller holds); nothing is taken under it.
 */
#define PAGE_WAIT_TABLE 256

static struct page_wait_queue {
	pthread_mutex_t lock;
	struct waiter *head;
} page_wait_table[PAGE_WAIT_TABLE] = {
	[0 ... PAGE_WAIT_TABLE - 1] = {PTHREAD_MUTEX_INITIALIZER, NULL},
};

/*
 * In a child of fork(): the queues are the parent's faults' (files are not
 * carried), and a lock may have been held by a thread that is not here.
 * Context: the child's one thread, in the atfork handler.
 */
void cont_fork_child(void)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	for (unsigned int i = 0; i < PAGE_WAIT_TABLE; i++) {
		memcpy(&page_wait_table[i].lock, &fresh, sizeof(fresh));
		page_wait_table[i].head = NULL;
	}
}

static struct page_wait_queue *page_waitqueue(const struct fl_file *f, unsigned long idx)
{
	uint64_t h =
		((uint64_t)(uintptr_t)f ^ (idx * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL;

	return &page_wait_table[(h >> 32) % PAGE_WAIT_TABLE];
}

/* Run the continuations of list w (linked by next), in completion context
 * (fileio_handoff()): each may free its waiter. */
void cont_run_list(struct waiter *w)
{
	while (w) {
		struct waiter *next = w->next;

		cont_run(w);
		w = next;
	}
}

/* The completion thread collects the waiters it wakes (cont_collect_begin())
 * and runs them once its I/O is finished; every other unlocker hands them
 * to the handler threads. */
static FL_TLS bool collecting;
static FL_TLS struct waiter *collected;

/*
 * Park the fault until page idx of f is unlocked: a waiter on the heap, on
 * the page's wait queue, holding a reference on f, and the fault's lock let
 * go as action says (as waiter_add()).  The waiter is run by whoever
 * unlocks the page: at once by the completion thread of its read, else by a
 * handler thread (the retry queue).  Thread delivery only.
 * Context: the fault's lock held; no page lock.  Return: VM_FAULT_PARKED
 * (with VM_FAULT_RETRY for drop, as waiter_add()); PARK_UNLOCKED (the page
 * is unlocked: nothing done); VM_FAULT_NOPAGE (no memory: the fault's lock
 * still held, the access faults again).
 */
int fault_park_page(struct vm_fault *vmf, struct fl_file *f, unsigned long idx,
		    enum cont_action action)
{
	struct page_wait_queue *q = page_waitqueue(f, idx);
	struct waiter *w = malloc(sizeof(*w));
	uint32_t v;

	if (!w)
		return VM_FAULT_NOPAGE;
	waiter_init(w, vmf, NULL, action, false);
	w->file = f;
	w->idx = idx;
	file_get(f);
	w->t_park = fl_now_ns();
	if (action == CONT_INSTALL)
		vma_handoff(vmf->vma); /* its continuation will release it */
	pthread_mutex_lock(&q->lock);
	/* PG_PARKED only while the page is locked: an unlock after this sees
	 * it and takes q->lock after this section (no lost wake-up). */
	v = atomic_load_explicit(&f->state[idx], memory_order_relaxed);
	while ((v & PG_LOCKED) &&
	       !atomic_compare_exchange_weak_explicit(&f->state[idx], &v, v | PG_PARKED,
						      memory_order_relaxed, memory_order_relaxed))
		;
	if (!(v & PG_LOCKED)) {
		pthread_mutex_unlock(&q->lock);
		if (action == CONT_INSTALL)
			vma_adopt(vmf->vma);
		file_put(f);
		free(w);
		return PARK_UNLOCKED;
	}
	w->next = q->head;
	q->head = w;
	/* The queue's from here: nothing of w is read. */
	pthread_mutex_unlock(&q->lock);
	return parked_release(vmf, action);
}

/*
 * Page idx of f was unlocked with PG_PARKED set: its parked faults go on,
 * collected by the completion thread, or queued to the handler threads.
 * Context: folio_unlock(); any lock but q's.
 */
void page_wake(struct fl_file *f, unsigned long idx)
{
	struct page_wait_queue *q = page_waitqueue(f, idx);
	struct waiter *w, **pp, *woken = NULL;

	pthread_mutex_lock(&q->lock);
	for (pp = &q->head; (w = *pp);) {
		if (w->file == f && w->idx == idx) {
			*pp = w->next;
			w->next = woken;
			woken = w;
		} else {
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&q->lock);
	while ((w = woken)) {
		woken = w->next;
		if (collecting) {
			w->next = collected;
			collected = w;
		} else if (w->action != CONT_INSTALL || !fileio_handoff(w->vmf.sp, w)) {
			/* A fault that holds its VMA lock goes to the completion
			 * thread (fileio_handoff() says why); the others hold
			 * no lock and may wait for a handler thread. */
			retry_enqueue(w->vmf.sp, w);
		}
	}
}

/* The completion thread, around one I/O's completion: the faults its
 * unlocks wake are collected, then run here (in_completion). */
void cont_collect_begin(void)
{
	collecting = true;
}

void cont_collect_run(void)
{
	struct waiter *w;

	collecting = false;
	while ((w = collected)) {
		collected = w->next;
		cont_run(w);
	}
}

/* Context: space creation.  Return: 0 or a negative errno. */
int cont_init(struct fl_space *sp)
{
	pthread_mutex_init(&sp->retry_lock, NULL);
	sp->retry_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return sp->retry_fd < 0 ? -errno : 0;
}

/* Context: space teardown, the handler threads stopped. */
void cont_destroy(struct fl_space *sp)
{
	FL_BUG_ON(sp->retry_head);
	if (sp->retry_fd >= 0)
		close(sp->retry_fd);
	sp->retry_fd = -1;
	pthread_mutex_destroy(&sp->retry_lock);
}
