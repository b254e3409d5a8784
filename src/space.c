// SPDX-License-Identifier: MIT
/*
 * The address space: creation, destruction, the process-wide list of spaces
 * that the SIGBUS handler searches, the handles the API is given, and the
 * claims that keep two spaces off one range.
 *
 * Locks (the tree is in doc/locking.md):
 *   spaces_lock  changes of the list of spaces, `spaces`: an array copied on
 *                write and published with RCU (C11 release/acquire, which
 *                ThreadSanitizer sees), as the VMA index is.  Held with
 *                nothing else.
 *   claim_lock   every space's claim (the range its write section is
 *                mapping, not yet in its index) and stale ranges; held
 *                across the kernel mmap (and MADV_DONTFORK) that makes a
 *                claim true, so that the check of the other spaces and the
 *                mapping are one step, and fork() is kept out of it.  A
 *                leaf: taken under mmap_lock, a VMA lock, reclaim_lock or a
 *                ptl; under it only RCU read sections, system calls, and
 *                another space's mmap_lock by trylock.
 *
 * Claims.  No two spaces list one range: a MAP_FIXED over a range that
 * another space maps, or is mapping, fails with EEXIST
 * (space_claim_locked()).  A range the kernel hands out is free, so another
 * space's VMA there is stale: its region was unmapped behind faultline's
 * back.  Stale ranges (struct stale_ranges) are left alone by everything
 * that touches the kernel, and dropped by the space's next write section.
 *
 * Handles.  A handle is live while it is on `spaces` and its space is not
 * closing.  Every API call looks it up there by value (space_get()) before
 * reading through it, so a destroyed handle gives EINVAL instead of a read of
 * freed memory, and holds a use count (users) until it returns.  A fault in
 * sigbus delivery holds a count of its own (fault_refs) from the lookup of its
 * space to its end, sleeps on I/O included.  fl_space_destroy():
 *   1. closing is set: new calls fail; a grace period; the calls in flight
 *      finish (users reaches 0);
 *   2. everything is unmapped, so that no fault can begin in a region (an
 *      access there is now the kernel's SIGSEGV, as after munmap);
 *   3. off the list; a grace period; the faults in flight finish
 *      (fault_refs reaches 0);
 *   4. threads stopped, memory freed.
 * What cannot be detected: a handle whose memory a new space has reused (it
 * names that space now).
 */
#include "space.h"

#include <sys/mman.h>
#include <sys/wait.h>

#include "cont.h"
#include "fault.h"
#include "filemap.h"
#include "options.h"
#include "pgtable.h"
#include "reclaim.h"
#include "swap.h"
#include "tier.h"
#include "uffd.h"
#include "vma.h"
#include "touchlog.h"
#include "workingset.h"

/* The live spaces: replaced whole under spaces_lock, read under RCU. */
struct space_list {
	struct rcu_head rcu;
	size_t nr;
	struct fl_space *sp[];
};

static pthread_mutex_t spaces_lock = PTHREAD_MUTEX_INITIALIZER;
static struct space_list *_Atomic spaces; /* NULL: none */
static uint64_t next_space_id;		  /* spaces_lock */

/* Context: rcu_read_lock held.  Pairs with the RELEASE in spaces_publish(). */
static struct space_list *spaces_get(void)
{
	return atomic_load_explicit(&spaces, memory_order_acquire);
}

static void space_list_free_cb(struct rcu_head *head)
{
	fl_rcu_callback_enter(head);
	free(container_of(head, struct space_list, rcu));
	fl_rcu_callback_exit();
}

/*
 * The list with add added and del taken out (either NULL).
 * Context: spaces_lock held.  Return: 0 or -ENOMEM (nothing changed).
 */
static int spaces_publish(struct fl_space *add, struct fl_space *del)
{
	struct space_list *old = atomic_load_explicit(&spaces, memory_order_relaxed);
	size_t nr = old ? old->nr : 0;
	struct space_list *l = malloc(sizeof(*l) + (nr + 1) * sizeof(l->sp[0]));

	if (!l)
		return -ENOMEM;
	l->nr = 0;
	for (size_t i = 0; i < nr; i++)
		if (old->sp[i] != del)
			l->sp[l->nr++] = old->sp[i];
	if (add)
		l->sp[l->nr++] = add;
	atomic_store_explicit(&spaces, l, memory_order_release);
	if (old)
		fl_call_rcu(&old->rcu, space_list_free_cb);
	return 0;
}

static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- fork ------------------------------------------------------------ */

/*
 * A child of fork() of a process that had spaces, none made with cfg.fork:
 * the parent's spaces are not in it (none of their threads, none of their
 * regions), and neither are liburcu's call_rcu threads, which every space
 * needs (a destroy there would wait for them for ever).  Set once, in the
 * child.  With a space made with cfg.fork, the call_rcu threads are paused
 * for the fork and made again in the child (liburcu's call_rcu_before_fork
 * and after_fork_child), which may then create spaces.
 */
static bool forked_child;

/*
 * One fork at a time: held from the start of fork_prepare() (the atfork
 * prepare handler) to the end of fork_parent(), and made fresh in the
 * child; also by fl_fork() for its check, and by fl_space_create() across
 * the reservation of room in fork_spaces and the publication of the space.
 * The top of the lock tree (doc/locking.md): taken holding nothing.  Two
 * threads forking at once would otherwise both collect and quiesce the
 * spaces, each waiting for what the other holds.
 */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
/* This thread holds fork_lock: the program's atfork handlers that glibc
 * runs between faultline's prepare and parent handlers run on it, and may
 * create a space (not carried: made during the fork). */
static FL_TLS bool fork_lock_mine;

static void fork_lock_take(void)
{
	pthread_mutex_lock(&fork_lock);
	fork_lock_mine = true;
}

/*
 * The spaces made with cfg.fork, each held by a use (users) from
 * fork_prepare() to fork_parent() or fork_child(); their number.  Written
 * only by the forking thread, under fork_lock.  The array has room for
 * every space on the list (fork_reserve(), as a space is created): a fork
 * never allocates, which it could not fail cleanly (a plain fork() goes on
 * whatever its handler finds, and a child must know every space it has to
 * make its own or give up).  The child keeps it for its own forks.
 */
static struct fl_space **fork_spaces;
static size_t fork_spaces_cap, nr_fork_spaces;
/* This thread is in fl_fork()'s call of fork(). */
static FL_TLS bool fl_forking;
/*
 * This fork is fl_fork()'s (fork_lock): a space the child cannot have,
 * found as the prepare handler quiesces it, fails the call rather than
 * giving the child the space's regions unmapped.  The parent's handler
 * hands the error to fl_fork() (fork_strict_err, the forking thread's);
 * the child's exits at once.
 */
static bool fork_strict;
static FL_TLS int fork_strict_err;

/* Room in fork_spaces for every space on the list and one more.
 * Context: fork_lock and spaces_lock held.  Return: 0 or -ENOMEM. */
static int fork_reserve(void)
{
	struct space_list *l = atomic_load_explicit(&spaces, memory_order_relaxed);
	size_t want = (l ? l->nr : 0) + 1;
	struct fl_space **a;

	if (want <= fork_spaces_cap)
		return 0;
	want = MAX(want, 2 * fork_spaces_cap);
	a = realloc(fork_spaces, want * sizeof(*a));
	if (!a)
		return -ENOMEM;
	fork_spaces = a;
	fork_spaces_cap = want;
	return 0;
}

/*
 * fork() takes, in its atfork prepare handler (fl_fork()'s too: an atfork
 * prepare handler registered after faultline's, which glibc runs before
 * it, may still fault in a region of such a space):
 *   - each space made with cfg.fork, quiesced by fork_space_prepare()
 *     (fork.c: its threads paused, mmap_lock and every VMA lock held for
 *     write, no I/O in flight, the store copied for the child);
 *   - liburcu's call_rcu threads paused, if there was such a space;
 *   - urcu-bp's locks (its registry of readers and grace-period lock);
 *   - claim_lock, so that no region of a space without cfg.fork is copied
 *     into the child between the kernel's mmap of it and its MADV_DONTFORK:
 *     every such window is inside claim_lock (fl_mmap()).  A raw clone(2)
 *     runs no atfork handler, and may still copy a region in its window: a
 *     new mapping holding no data, PROT_NONE unless the call was MAP_FIXED;
 *   - the process-wide leaf locks a child may need (sigbus_fork_lock(),
 *     options_fork_lock()), so that none is inherited held.
 * The spaces come first: their quiescing waits for their threads and for
 * calls in flight, which may wait for a grace period.  Then urcu-bp (it
 * blocks every signal, and takes its grace period lock): a thread may wait
 * for claim_lock inside a read-side section, never for a grace period while
 * holding claim_lock.
 * In the child (fork_child()), the spaces made with cfg.fork are the
 * child's (fork_space_child()), or given up (fork_space_abandon()); the
 * others are off the list and closing (their handles give EINVAL).
 * Context: fork_lock held.
 */
static void fork_collect(void)
{
	struct space_list *l;
	size_t n = 0;

	rcu_read_lock();
	l = spaces_get();
	for (size_t i = 0; l && i < l->nr; i++) {
		struct fl_space *s = l->sp[i];
		if (!s->cfg.fork || atomic_load(&s->closing))
			continue;
		/* Every space on the list was reserved for before it was
		 * published, under fork_lock. */
		FL_BUG_ON(n == fork_spaces_cap);
		atomic_fetch_add(&s->users, 1);
		fork_spaces[n++] = s;
	}
	fl_rcu_read_unlock();
	nr_fork_spaces = n;
}

/* The uses fork_collect() took given back, and fork_lock let go. */
static void fork_release(void)
{
	for (size_t i = 0; i < nr_fork_spaces; i++)
		space_put(fork_spaces[i]);
	nr_fork_spaces = 0;
	fork_lock_mine = false;
	pthread_mutex_unlock(&fork_lock);
}

static void fork_prepare(void)
{
	fork_lock_take();
	fork_collect();
	fork_strict = fl_forking;
	for (size_t i = 0; i < nr_fork_spaces; i++)
		fork_space_prepare(fork_spaces[i]);
	if (nr_fork_spaces)
		urcu_bp_call_rcu_before_fork();
	/* urcu-bp's first, then claim_lock: see above. */
	urcu_bp_before_fork();
	pthread_mutex_lock(&claim_lock);
	sigbus_fork_lock();
	options_fork_lock();
}

/* The first space the child cannot have, as fork_err (0: none). */
static int fork_first_err(void)
{
	for (size_t i = 0; i < nr_fork_spaces; i++)
		if (fork_spaces[i]->fork_err)
			return fork_spaces[i]->fork_err;
	return 0;
}

static void fork_parent(void)
{
	options_fork_unlock(false);
	sigbus_fork_unlock(false);
	pthread_mutex_unlock(&claim_lock);
	urcu_bp_after_fork_parent();
	if (nr_fork_spaces)
		urcu_bp_call_rcu_after_fork_parent();
	fork_strict_err = fork_strict ? fork_first_err() : 0;
	fork_strict = false;
	for (size_t i = 0; i < nr_fork_spaces; i++)
		fork_space_parent(fork_spaces[i]);
	fork_release();
}

static void fork_child(void)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	struct space_list *l = atomic_load(&spaces);
	struct space_list *keep;
	size_t n = 0;

	/* fl_fork() fails in the parent (fork_strict_err): nothing of the
	 * program runs here. */
	if (fork_strict && fork_first_err())
		_exit(127);
	fork_strict = false;
	/* The only thread of the child holds it, under another id. */
	memcpy(&claim_lock, &fresh, sizeof(fresh));
	memcpy(&spaces_lock, &fresh, sizeof(fresh));
	memcpy(&fork_lock, &fresh, sizeof(fresh));
	fork_lock_mine = false;
	options_fork_unlock(true);
	sigbus_fork_unlock(true);
	cont_fork_child(); /* the file pages' wait queues */
	fl_gettid_reset();
	keep = malloc(sizeof(*keep) + nr_fork_spaces * sizeof(keep->sp[0]));
	for (size_t i = 0; i < nr_fork_spaces; i++) {
		struct fl_space *s = fork_spaces[i];
		int err = keep ? fork_space_child(s) : -ENOMEM;
		/* The parent's calls in flight are not in the child; this
		 * thread's use of s is the one left. */
		atomic_store(&s->users, 1);
		if (err) {
			fork_space_abandon(s, err);
			/* Refused before the fork: nothing of it started here.
			 * (A later failure leaves what fork_space_child()
			 * started, and its descriptors, alone.) */
			if (err == s->fork_err)
				fork_space_release(s);
			atomic_store(&s->closing, true);
		} else {
			keep->sp[n++] = s;
		}
		space_put(s);
	}
	for (size_t i = 0; l && i < l->nr; i++) {
		bool kept = false;
		for (size_t j = 0; j < n; j++)
			kept |= keep->sp[j] == l->sp[i];
		if (!kept && !atomic_load(&l->sp[i]->closing)) {
			/* Not given to the child (no cfg.fork). */
			fork_space_release(l->sp[i]);
			atomic_store(&l->sp[i]->closing, true);
		}
	}
	if (keep)
		keep->nr = n;
	/* The old list is the child's garbage. */
	atomic_store(&spaces, n ? keep : NULL);
	if (!n)
		free(keep);
	urcu_bp_after_fork_child();
	if (nr_fork_spaces)
		urcu_bp_call_rcu_after_fork_child();
	else
		forked_child = true;
	for (size_t i = 0; i < n; i++)
		fork_space_child_late(keep->sp[i]);
	nr_fork_spaces = 0;
}

static void atfork_init(void)
{
	FL_BUG_ON(pthread_atfork(fork_prepare, fork_parent, fork_child));
}

/*
 * fork(), failing with errno where a space made with cfg.fork could not be
 * given to the child (it has what a child does not get, fork.c, or its
 * store could not be copied) rather than giving the child no such space.
 * What can be seen before the fork is checked here (fork_space_check()),
 * and fork_lock let go again: the program's own prepare handlers, which
 * run first, may create a space.  The spaces are collected again, quiesced
 * and their stores copied by faultline's prepare handler; a failure found
 * there (the copy, or a file mapped in between) ends the child at once,
 * before any of the program's code, and it is reaped here.
 */
FL_EXPORT pid_t fl_fork(void)
{
	pid_t pid;
	int err = 0;

	fork_lock_take();
	fork_collect();
	for (size_t i = 0; i < nr_fork_spaces && !err; i++)
		err = fork_space_check(fork_spaces[i]);
	fork_release();
	if (err) {
		errno = -err;
		return -1;
	}
	fork_strict_err = 0;
	fl_forking = true;
	pid = fork();
	fl_forking = false;
	if (pid > 0 && fork_strict_err) {
		err = fork_strict_err;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = -err;
		return -1;
	}
	return pid;
}

/* ---- handles --------------------------------------------------------- */

/*
 * Take a use of sp for an API call: only if sp is on the list (compared by
 * value, never read through before) and not closing.
 * Context: no faultline lock needed.  Return: true with a use held.
 */
bool space_get(struct fl_space *sp)
{
	struct space_list *l;
	struct fl_space *s;
	bool ok = false;
	size_t i;

	if (!sp)
		return false;
	rcu_read_lock();
	l = spaces_get();
	for (i = 0; l && i < l->nr; i++) {
		s = l->sp[i];
		if (s != sp)
			continue;
		FL_BUG_ON(s->magic != FL_SPACE_MAGIC); /* memory corruption */
		/* Inside the read section: destroy's grace period after it
		 * sets closing orders this increment before its wait. */
		if (!atomic_load(&s->closing)) {
			atomic_fetch_add(&s->users, 1);
			ok = true;
		}
		break;
	}
	fl_rcu_read_unlock();
	return ok;
}

/*
 * Drop a use.  Nothing of sp is touched after the decrement (destroy may
 * free it at once), so destroy polls for the count instead of being woken.
 * Pairs with the ACQUIRE in ref_wait_zero().  Async-signal-safe.
 */
static void ref_put(_Atomic uint32_t *ref)
{
	atomic_fetch_sub_explicit(ref, 1, memory_order_release);
}

void space_put(struct fl_space *sp)
{
	ref_put(&sp->users);
}

/*
 * Wait for a count to reach 0, polling: what it waits for is a call or a
 * fault (perhaps one waiting for a store read) in another thread.
 * Context: closing set, and a grace period after it, so that no new use of
 * this kind can start.
 */
static void ref_wait_zero(_Atomic uint32_t *ref)
{
	unsigned int us = 20;

	while (atomic_load_explicit(ref, memory_order_acquire)) {
		usleep(us);
		us = MIN(us * 2, 1000u);
	}
}

/* Context: rcu_read_lock held.  Whether addr is in a VMA of sp that is not
 * stale. */
bool space_has_addr_rcu(struct fl_space *sp, uint64_t addr)
{
	struct vma_index *idx = vma_index_get(sp);
	size_t i = vma_index_first(idx, addr);

	return i < idx->nr && idx->v[i]->vm_start <= addr &&
	       !space_stale_overlaps(sp, addr, addr + 1);
}

/* Context: rcu_read_lock held.  Whether sp was created after the space with
 * id after (0: any). */
static bool space_created_after_rcu(struct fl_space *sp, uint64_t after)
{
	return sp->id > after;
}

/*
 * The oldest space that match(sp, key) picks, held for a fault until
 * fault_space_put(): destroy waits for it, so the fault may sleep on I/O
 * with the space held and no RCU section open.  The list is in creation
 * order (spaces_publish() appends, under spaces_lock, which also hands out
 * the ids): the first space picked is the oldest.
 * Context: no faultline lock held.  Return: the space, or NULL.
 */
static struct fl_space *fault_space_find(bool (*match)(struct fl_space *sp, uint64_t key),
					 uint64_t key)
{
	struct fl_space *found = NULL;
	struct space_list *l;

	rcu_read_lock();
	l = spaces_get();
	for (size_t i = 0; l && i < l->nr && !found; i++)
		if (match(l->sp[i], key))
			found = l->sp[i];
	if (found)
		atomic_fetch_add(&found->fault_refs, 1);
	fl_rcu_read_unlock();
	return found;
}

/*
 * The space with a VMA at addr, held for a fault (sigbus delivery).
 * Lock-free: the answer may be stale by the time the fault path locks the
 * VMA, which then looks again.
 * Context: the SIGBUS handler, no faultline lock held.  Return: the space,
 * or NULL.
 */
struct fl_space *fault_space_get(unsigned long addr)
{
	return fault_space_find(space_has_addr_rcu, addr);
}

/* The space created right after the one with id after (0: the first), held
 * for a fault.  Context: no faultline lock held.  Return: it, or NULL. */
static struct fl_space *fault_space_get_next(uint64_t after)
{
	return fault_space_find(space_created_after_rcu, after);
}

void fault_space_put(struct fl_space *sp)
{
	ref_put(&sp->fault_refs);
}

/*
 * A SIGBUS at an address no space's index has: perhaps a write section is
 * changing that very range.  Wait for each space's writer (mmap_read_lock)
 * and look again; serve the fault if a space has it now.  Each space is held
 * (fault_refs) while its lock is waited for; the walk goes by creation order,
 * looked up afresh each time, so that no RCU section spans a sleep.
 * Context: SIGBUS handler, no faultline lock held.  Return: 0 if served.
 */
int fl_handle_foreign_sigbus_slow(unsigned long addr, unsigned int flags)
{
	struct fl_space *sp;
	uint64_t after = 0;

	while ((sp = fault_space_get_next(after))) {
		bool hit;

		mmap_read_lock(sp);
		hit = vma_lookup(sp, addr) != NULL && !space_stale_overlaps(sp, addr, addr + 1);
		mmap_read_unlock(sp);
		if (hit) {
			fl_handle_fault(sp, addr, flags);
			fault_space_put(sp);
			return 0;
		}
		after = sp->id; /* before the put: sp may go after it */
		fault_space_put(sp);
	}
	return -ENOENT;
}

/* ---- claims ---------------------------------------------------------- */

void claim_lock_acquire(void)
{
	pthread_mutex_lock(&claim_lock);
}

void claim_lock_release(void)
{
	pthread_mutex_unlock(&claim_lock);
}

static void stale_add_locked(struct fl_space *sp, unsigned long start, unsigned long end);

/*
 * Check [start, end) against every other space, and claim it for sp.
 *
 * fixed: sp is about to map [start, end) with MAP_FIXED, which would replace
 * whatever is there.  Another space's claim there, or a VMA of another space
 * that is still a registered mapping, is refused: -EEXIST, as the kernel's
 * MAP_FIXED_NOREPLACE refuses a range in use (replacing it would leave both
 * spaces listing the range, and one of them serving faults in the other's
 * region).  A VMA of another space there that no userfaultfd has registered
 * any more (its region was unmapped behind faultline's back) is stale: it is
 * marked so in that space, and does not count.
 * !fixed: the kernel has just given [start, end) to sp (it picks only free
 * ranges), so any other space's VMA there is stale.
 *
 * Context: claim_lock held (across the kernel mmap that makes the claim
 * true); sp's mmap_lock held for write.  Return: 0 with the claim made, or
 * -EEXIST (nothing changed).
 */
int space_claim_locked(struct fl_space *sp, unsigned long start, unsigned long end, bool fixed)
{
	struct space_list *l;
	struct fl_space *o;
	size_t k;
	bool locked;
	int ret = 0;

	mmap_assert_write_locked(sp);
	rcu_read_lock();
	l = spaces_get();
	for (k = 0; l && k < l->nr; k++) {
		struct vma_index *idx;
		size_t i;

		o = l->sp[k];
		if (o == sp)
			continue;
		if (fixed && o->claim_start < end && start < o->claim_end) {
			ret = -EEXIST;
			break;
		}
		/*
		 * With MAP_FIXED, o's VMAs there are judged only while o's
		 * index agrees with the kernel: under its mmap_lock, tried
		 * (never waited for: against the lock order).  A space in a
		 * write section (between its kernel munmap and its index, say)
		 * is taken at its word: EEXIST.
		 */
		locked = fixed && mmap_read_trylock(o);
		idx = vma_index_get(o);
		for (i = vma_index_first(idx, start); i < idx->nr && idx->v[i]->vm_start < end;
		     i++) {
			unsigned long s = MAX(start, idx->v[i]->vm_start);
			unsigned long e = MIN(end, idx->v[i]->vm_end);

			/* A file mapping is never probed (the probe would map
			 * its cache pages): it counts as registered. */
			if (fixed && (!locked || idx->v[i]->file ||
				      uffd_unregistered_bytes(sp, s, e) != e - s)) {
				ret = -EEXIST;
				break;
			}
			stale_add_locked(o, s, e);
		}
		if (locked)
			mmap_read_unlock(o);
		if (ret)
			break;
	}
	fl_rcu_read_unlock();
	if (!ret) {
		sp->claim_start = start;
		sp->claim_end = end;
	}
	return ret;
}

/* The write section's mapping is in sp's index now, or failed: the claim
 * ends.  Context: sp's mmap_lock held for write; claim_lock not held. */
void space_claim_done(struct fl_space *sp)
{
	claim_lock_acquire();
	sp->claim_start = sp->claim_end = 0;
	claim_lock_release();
}

/* ---- stale ranges ---------------------------------------------------- */

static struct stale_ranges *stale_alloc(size_t nr)
{
	size_t bytes = PAGE_ALIGN(sizeof(struct stale_ranges) +
				  nr * sizeof(((struct stale_ranges *)0)->r[0]));
	struct stale_ranges *st =
		mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (st == MAP_FAILED)
		return NULL;
	st->nr = 0;
	st->bytes = bytes;
	return st;
}

static void stale_free_cb(struct rcu_head *head)
{
	struct stale_ranges *st = container_of(head, struct stale_ranges, rcu);

	fl_rcu_callback_enter(head);
	munmap(st, st->bytes);
	fl_rcu_callback_exit();
}

/* Free a list that readers may still see.  Context: any. */
void stale_ranges_free(struct stale_ranges *st)
{
	if (st)
		fl_call_rcu(&st->rcu, stale_free_cb);
}

/*
 * Add [start, end) to sp's stale ranges, merged with those it touches.
 * Context: claim_lock held; the SIGBUS handler too (no malloc).
 */
static void stale_add_locked(struct fl_space *sp, unsigned long start, unsigned long end)
{
	struct stale_ranges *old = atomic_load_explicit(&sp->stale, memory_order_relaxed);
	struct stale_ranges *st = stale_alloc((old ? old->nr : 0) + 1);
	size_t i;

	if (!st) {
		/* No memory for the note: the next probe finds the range
		 * again, and nothing is touched there before it. */
		return;
	}
	for (i = 0; old && i < old->nr; i++) {
		if (old->r[i].end < start || old->r[i].start > end) {
			st->r[st->nr++] = old->r[i];
			continue;
		}
		start = MIN(start, old->r[i].start);
		end = MAX(end, old->r[i].end);
	}
	st->r[st->nr].start = start;
	st->r[st->nr].end = end;
	st->nr++;
	atomic_store_explicit(&sp->stale, st, memory_order_release);
	stale_ranges_free(old);
	if (!atomic_exchange(&sp->stale_logged, true))
		fl_log("space %p: %#lx-%#lx is no longer the region faultline mapped there "
		       "(unmapped or replaced behind its back, e.g. by the libc munmap): "
		       "dropped from the space, nothing there is touched (logged once)",
		       (void *)sp, start, end);
}

/*
 * Note that [start, end) of sp's index is not sp's kernel mapping any more:
 * faultline leaves it alone from now on, and the next write section (or the
 * background reclaimer, kicked here) takes it out of the index.
 * Context: any (the SIGBUS handler too); claim_lock not held.
 */
void space_mark_stale(struct fl_space *sp, unsigned long start, unsigned long end)
{
	claim_lock_acquire();
	stale_add_locked(sp, start, end);
	claim_lock_release();
	if (sp->swap_on)
		worker_kick(&sp->kswapd);
}

/* Whether [start, end) meets a stale range of sp.  Context: any. */
bool space_stale_overlaps(struct fl_space *sp, unsigned long start, unsigned long end)
{
	struct stale_ranges *st;
	bool hit = false;

	if (likely(!atomic_load_explicit(&sp->stale, memory_order_relaxed)))
		return false;
	rcu_read_lock();
	st = atomic_load_explicit(&sp->stale, memory_order_acquire);
	for (size_t i = 0; st && i < st->nr && !hit; i++)
		hit = st->r[i].start < end && start < st->r[i].end;
	fl_rcu_read_unlock();
	return hit;
}

/*
 * Take sp's stale ranges to drop them (mm_drop_stale()); free them with
 * stale_ranges_free().  Context: sp's mmap_lock held for write.
 */
struct stale_ranges *space_take_stale(struct fl_space *sp)
{
	struct stale_ranges *st;

	mmap_assert_write_locked(sp);
	if (likely(!atomic_load_explicit(&sp->stale, memory_order_relaxed)))
		return NULL;
	claim_lock_acquire();
	st = atomic_exchange_explicit(&sp->stale, NULL, memory_order_acq_rel);
	claim_lock_release();
	return st;
}

/* ---- create and destroy --------------------------------------------- */

static void space_free(struct fl_space *sp);

static int delivery_init(struct fl_space *sp)
{
	return sp->cfg.delivery == FL_DELIVERY_SIGBUS ? sigbus_install() : uffd_start_handlers(sp);
}

static int (*const space_init_steps[])(struct fl_space *) = {
	pt_init,      cont_init, swap_init, tier_init,	   reclaim_init,
	filemap_init, ws_init,	 uffd_open, delivery_init,
};

FL_EXPORT int fl_space_create(const struct fl_config *cfg, struct fl_space **out)
{
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	struct fl_space *sp;
	bool mine;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	pthread_once(&atfork_once, atfork_init);
	if (forked_child) {
		fl_log("fl_space_create: this process is a child of fork() of one that used "
		       "faultline, without liburcu's helper threads: not supported");
		return -ENOTSUP;
	}
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->magic = FL_SPACE_MAGIC;
	sp->uffd = -1;
	sp->stop_fd = -1;
	sp->resizer.fd = -1;
	sp->retry_fd = -1;
	sp->mem_fd = -1;
	sp->fork_store_fd = -1;
	sp->kswapd.fd = -1;
	sp->flusher.fd = -1;
	fl_options_defaults(&sp->cfg);
	if (cfg) {
		if (cfg->size < offsetof(struct fl_config, handlers) || cfg->size > 4096) {
			free(sp);
			return -EINVAL;
		}
		/* What the caller's struct has, from it (its fl_config_init()
		 * read the environment); the fields a caller built against an
		 * older header lacks, from defaults and the environment. */
		fl_options_from_env(&sp->cfg, cfg->size);
		memcpy(&sp->cfg, cfg, MIN(cfg->size, sizeof(sp->cfg)));
		sp->cfg.size = sizeof(sp->cfg);
	} else {
		fl_options_from_env(&sp->cfg, 0);
	}
	ret = fl_options_validate(&sp->cfg);
	if (ret) {
		free(sp);
		return ret;
	}
	mmap_lock_init(&sp->mmap_lock);
	sp->stats = aligned_alloc(64, FL_STAT_STRIPES * sizeof(*sp->stats));
	sp->index = vma_index_new(0);
	sp->empty_index = vma_index_new(0); /* for fl_space_destroy(), which cannot fail */
	if (!sp->stats || !sp->index || !sp->empty_index) {
		ret = -ENOMEM;
		goto fail;
	}
	memset(sp->stats, 0, FL_STAT_STRIPES * sizeof(*sp->stats));
	sp->zero_src = mmap(NULL, (size_t)sp->cfg.fault_around_max * PAGE_SIZE, PROT_READ,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sp->zero_src == MAP_FAILED) {
		sp->zero_src = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	/* The subsystems in order; fl_space_destroy() undoes what was done. */
	for (size_t i = 0; i < ARRAY_SIZE(space_init_steps); i++) {
		ret = space_init_steps[i](sp);
		if (ret)
			goto fail;
	}
	/* fork_lock: no fork collects the spaces between the reservation
	 * and the publication (held already inside this thread's fork). */
	mine = fork_lock_mine;
	if (!mine)
		pthread_mutex_lock(&fork_lock);
	pthread_mutex_lock(&spaces_lock);
	sp->id = next_space_id + 1;
	ret = fork_reserve();
	if (!ret)
		ret = spaces_publish(sp, NULL);
	if (!ret)
		next_space_id++;
	else
		sp->id = 0;
	pthread_mutex_unlock(&spaces_lock);
	if (!mine)
		pthread_mutex_unlock(&fork_lock);
	if (ret)
		goto fail;
	fl_dbg(sp, "space %p: delivery %s, %u handler(s)", (void *)sp,
	       fl_delivery_name(sp->cfg.delivery), sp->nr_handlers);
	*out = sp;
	return 0;
fail:
	space_free(sp);
	return ret;
}

/*
 * Destroy a live space: the steps at the top of this file.  A handle that is
 * not a live space (destroyed already, never created, or being destroyed by
 * another thread) is logged and left alone.
 */
FL_EXPORT void fl_space_destroy(struct fl_space *sp)
{
	if (!sp)
		return;
	if (!space_get(sp)) {
		fl_log("fl_space_destroy(%p): not a live space (destroyed already, or being "
		       "destroyed): nothing done",
		       (void *)sp);
		return;
	}
	if (atomic_exchange(&sp->closing, true)) {
		/* Another thread's destroy got here first. */
		space_put(sp);
		fl_log("fl_space_destroy(%p): destroyed by another thread at the same time: "
		       "nothing done here",
		       (void *)sp);
		return;
	}
	space_put(sp);
	/* 1: the calls in flight end; none begins (space_get() sees closing
	 * inside its read section, or is waited for here). */
	fl_synchronize_rcu();
	ref_wait_zero(&sp->users);
	space_free(sp);
}

/*
 * Steps 2 to 4 of destroy; also the undoing of a create that failed half
 * way (not on the list, nothing mapped).  Context: no call on sp in flight
 * and none to come.
 */
static void space_free(struct fl_space *sp)
{
	/* 2: unmapped, so that handler threads that still hold messages
	 * find nothing and wake their threads, and no fault begins in a
	 * region. */
	if (sp->index && sp->stats && sp->empty_index)
		mm_unmap_all(sp);
	/* 3: a fault that found sp on the list holds it (fault_refs) until it
	 * ends; none finds it after the grace period.  The grace period also
	 * frees the old index and the VMAs mm_unmap_all() let go: it is not
	 * waited for with mmap_lock held, since the SIGBUS slow path sleeps on
	 * mmap_lock with sp held. */
	if (sp->id) {
		pthread_mutex_lock(&spaces_lock);
		/* Out of memory for the new list: spin, as the space must go. */
		while (spaces_publish(NULL, sp))
			usleep(1000);
		pthread_mutex_unlock(&spaces_lock);
	}
	fl_synchronize_rcu();
	ref_wait_zero(&sp->fault_refs);
	/* 4: handler threads first: they poll retry_fd, which cont_destroy()
	 * closes; kswapd after them, whose faults may still kick it; then the
	 * store, which waits for the I/O in flight and finishes the retries
	 * its completions queued (with the userfaultfd still open, to wake). */
	uffd_stop_handlers(sp);
	if (sp->lru.next)
		reclaim_destroy(sp);
	/* The working set's replayer stops and its record is written; then
	 * every file's dirty pages go to the file, once nothing else (kswapd,
	 * the flusher) writes any back. */
	ws_destroy(sp);
	touch_log_destroy(sp);
	filemap_destroy(sp);
	swap_destroy(sp);
	if (sp->retry_fd >= 0)
		cont_destroy(sp);
	if (sp->uffd >= 0)
		close(sp->uffd);
	fl_synchronize_rcu();
	fl_rcu_barrier();
	pt_destroy(sp);
	if (sp->zero_src)
		munmap(sp->zero_src, (size_t)sp->cfg.fault_around_max * PAGE_SIZE);
	free(atomic_load(&sp->index));
	free(sp->empty_index);
	free(sp->stats);
	if (atomic_load(&sp->stale)) {
		struct stale_ranges *st = atomic_load(&sp->stale);
		munmap(st, st->bytes); /* after the barrier: nobody sees it */
	}
	mmap_lock_destroy(&sp->mmap_lock);
	sp->magic = FL_SPACE_DEAD; /* for a debugger: nothing reads it now */
	free(sp);
}
