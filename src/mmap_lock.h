/* SPDX-License-Identifier: MIT */
/*
 * The space lock, mmap_lock (mmap_lock.c): a fair reader-writer lock.  Once
 * a writer waits, new readers wait behind it, as with the kernel's
 * rw_semaphore; this fairness is what turns a writer stuck behind a fault
 * into a stall of every fault (the seed).  Its place in the lock tree and
 * what it protects: doc/locking.md.
 */
#ifndef FL_MMAP_LOCK_H
#define FL_MMAP_LOCK_H

#include "lib.h"

/*
 * mm_lock_seq: the write-section sequence of the 6.4 per-VMA lock scheme.
 * Written only with mmap_lock held for write (incremented when the write
 * section ends: vma_end_write_all()); read unlocked by vma_start_read().
 */
struct mmap_lock {
	pthread_rwlock_t rw;		  /* PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP */
	_Atomic unsigned int mm_lock_seq; /* wraps: unsigned */
	_Atomic pid_t write_owner;	  /* tid of the writer, 0 if none */
};

struct fl_space;

void mmap_lock_init(struct mmap_lock *l);
void mmap_lock_destroy(struct mmap_lock *l);
void mmap_lock_fork_child(struct fl_space *sp);
void mmap_read_lock(struct fl_space *sp);
bool mmap_read_trylock(struct fl_space *sp);
void mmap_read_unlock(struct fl_space *sp);
void mmap_write_lock(struct fl_space *sp);
void mmap_write_unlock(struct fl_space *sp);
bool mmap_lock_is_write_locked(struct fl_space *sp);
bool mmap_lock_is_read_locked(struct fl_space *sp);
#define mmap_assert_locked(sp) \
	FL_DEBUG_BUG_ON(!mmap_lock_is_read_locked(sp) && !mmap_lock_is_write_locked(sp))
#define mmap_assert_write_locked(sp) FL_DEBUG_BUG_ON(!mmap_lock_is_write_locked(sp))
/* This thread holds no mmap_lock of sp: before I/O that would stall every
 * fault behind a writer queued for it (debug builds track readers). */
#ifdef FL_DEBUG
#define mmap_assert_unlocked(sp) \
	FL_BUG_ON(mmap_lock_is_read_locked(sp) || mmap_lock_is_write_locked(sp))
#else
#define mmap_assert_unlocked(sp) ((void)(sp))
#endif

#endif /* FL_MMAP_LOCK_H */
