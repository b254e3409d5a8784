// SPDX-License-Identifier: MIT
/*
 * The space lock, mmap_lock: what it protects.
 *
 *   - the VMA index (sp->index): replaced only with mmap_lock held for
 *     write; read under rcu_read_lock (lock_vma_under_rcu) or mmap_lock;
 *   - the set of kernel mappings the space owns: every mmap/munmap/mprotect
 *     syscall on a space's range runs with it held for write;
 *   - mm_lock_seq (with the rule in mmap_lock.h).
 *
 * It is fair: a waiting writer blocks new readers.  Every acquisition is
 * counted, and the time spent waiting (when the trylock fails) is summed, for
 * read and write apart, and counted in a histogram of waits in the buckets
 * of the mmap_lock statistics of Barry Song's RFC (April 2026: under 1 us,
 * 1-10 us, 10-100 us, 100 us-1 ms, 1-10 ms, 10-100 ms, over 100 ms), an
 * acquisition that did not wait in the first: each histogram sums to its
 * acquisitions.
 *
 * In FL_DEBUG builds each thread remembers which spaces it holds for read, so
 * that mmap_assert_locked() can check.
 */
#include "mmap_lock.h"

#include "space.h"
#include "stats.h"
#include "vma.h"

#ifdef FL_DEBUG
#define IS_DEBUG_TRACKED 1
#define HELD_MAX 8
static FL_TLS struct {
	struct fl_space *sp;
	int n;
} held[HELD_MAX];

static void held_add(struct fl_space *sp, int d)
{
	for (int i = 0; i < HELD_MAX; i++) {
		if (held[i].sp == sp) {
			held[i].n += d;
			FL_BUG_ON(held[i].n < 0);
			if (!held[i].n)
				held[i].sp = NULL;
			return;
		}
	}
	FL_BUG_ON(d < 0);
	for (int i = 0; i < HELD_MAX; i++) {
		if (!held[i].sp) {
			held[i].sp = sp;
			held[i].n = d;
			return;
		}
	}
	FL_BUG_ON(1); /* more spaces read-locked at once than we track */
}

bool mmap_lock_is_read_locked(struct fl_space *sp)
{
	for (int i = 0; i < HELD_MAX; i++)
		if (held[i].sp == sp)
			return true;
	return false;
}
#else
#define IS_DEBUG_TRACKED 0
static inline void held_add(struct fl_space *sp, int d)
{
}

bool mmap_lock_is_read_locked(struct fl_space *sp)
{
	return true; /* not tracked without FL_DEBUG */
}
#endif

bool mmap_lock_is_write_locked(struct fl_space *sp)
{
	return READ_ONCE(sp->mmap_lock.write_owner) == fl_gettid();
}

void mmap_lock_init(struct mmap_lock *l)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&l->rw, &a);
	pthread_rwlockattr_destroy(&a);
	atomic_init(&l->mm_lock_seq, 0);
	atomic_init(&l->write_owner, 0);
}

/*
 * In the child of fork(), whose one thread held the lock for write in the
 * parent (fork_space_prepare()): glibc's rwlock names its writer by thread
 * id, which the child's thread no longer has.  A fresh lock, taken for
 * write by the child's thread; mm_lock_seq goes on (the VMAs stay
 * write-locked until mmap_write_unlock()).
 */
void mmap_lock_fork_child(struct fl_space *sp)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&sp->mmap_lock.rw, &a);
	pthread_rwlockattr_destroy(&a);
	FL_BUG_ON(pthread_rwlock_wrlock(&sp->mmap_lock.rw));
	WRITE_ONCE(sp->mmap_lock.write_owner, fl_gettid());
}

void mmap_lock_destroy(struct mmap_lock *l)
{
	pthread_rwlock_destroy(&l->rw);
}

/*
 * Count an acquisition that waited ns (0: none) in its bucket of the
 * histogram that starts at first (mmap_read_wait_1us or mmap_write_wait_1us;
 * the seven buckets are consecutive in FL_STATS_FIELDS).
 */
static void count_wait(struct fl_space *sp, enum fl_stat_item first, uint64_t ns)
{
	unsigned int b = 0;

	for (uint64_t limit = 1000; b < 6 && ns >= limit; limit *= 10)
		b++;
	atomic_fetch_add_explicit(&stat_stripe(sp)->v[first + b], 1, memory_order_relaxed);
}
_Static_assert(FL_STAT_mmap_read_wait_long - FL_STAT_mmap_read_wait_1us == 6, "read buckets");
_Static_assert(FL_STAT_mmap_write_wait_long - FL_STAT_mmap_write_wait_1us == 6, "write buckets");

/*
 * Context: any; must not hold mmap_lock of sp already (it is not recursive:
 * a recursive read could deadlock behind a waiting writer, as in the kernel).
 */
void mmap_read_lock(struct fl_space *sp)
{
	uint64_t waited = 0;

	FL_DEBUG_BUG_ON(mmap_lock_is_write_locked(sp));
	if (pthread_rwlock_tryrdlock(&sp->mmap_lock.rw)) {
		uint64_t t0 = fl_now_ns();
		FL_BUG_ON(pthread_rwlock_rdlock(&sp->mmap_lock.rw));
		waited = fl_now_ns() - t0;
		count_event_n(sp, mmap_read_wait_ns, waited);
	}
	count_event(sp, mmap_read_locks);
	count_wait(sp, FL_STAT_mmap_read_wait_1us, waited);
	held_add(sp, 1);
}

bool mmap_read_trylock(struct fl_space *sp)
{
	if (pthread_rwlock_tryrdlock(&sp->mmap_lock.rw))
		return false;
	count_event(sp, mmap_read_locks);
	count_wait(sp, FL_STAT_mmap_read_wait_1us, 0);
	held_add(sp, 1);
	return true;
}

void mmap_read_unlock(struct fl_space *sp)
{
	held_add(sp, -1);
	pthread_rwlock_unlock(&sp->mmap_lock.rw);
}

void mmap_write_lock(struct fl_space *sp)
{
	uint64_t waited = 0;

	FL_DEBUG_BUG_ON(mmap_lock_is_write_locked(sp));
	FL_DEBUG_BUG_ON(mmap_lock_is_read_locked(sp) && IS_DEBUG_TRACKED);
	if (pthread_rwlock_trywrlock(&sp->mmap_lock.rw)) {
		uint64_t t0 = fl_now_ns();
		FL_BUG_ON(pthread_rwlock_wrlock(&sp->mmap_lock.rw));
		waited = fl_now_ns() - t0;
		count_event_n(sp, mmap_write_wait_ns, waited);
	}
	count_event(sp, mmap_write_locks);
	count_wait(sp, FL_STAT_mmap_write_wait_1us, waited);
	WRITE_ONCE(sp->mmap_lock.write_owner, fl_gettid());
}

/* Ends the write section: every VMA write lock taken in it ends too. */
void mmap_write_unlock(struct fl_space *sp)
{
	mmap_assert_write_locked(sp);
	vma_end_write_all(sp);
	WRITE_ONCE(sp->mmap_lock.write_owner, 0);
	pthread_rwlock_unlock(&sp->mmap_lock.rw);
}
