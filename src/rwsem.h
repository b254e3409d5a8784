/* SPDX-License-Identifier: MIT */
/*
 * The per-VMA lock's semaphore: the subset of the kernel's rw_semaphore that
 * the per-VMA lock uses, on a futex.
 *
 *   - readers only ever trylock (vma_start_read never sleeps), and a read
 *     trylock fails while a writer holds the lock *or waits for it*, as
 *     down_read_trylock fails on an rwsem with waiters;
 *   - a read lock may be released by another thread than the one that took
 *     it (up_read_non_owner): a fault parked on I/O under the `hold` policy
 *     keeps its VMA read lock, and the I/O completion releases it;
 *   - writers are serialized by the caller (mmap_lock held for write), so
 *     there is at most one writer, which sleeps until the readers leave.
 *
 * pthread_rwlock offers neither the non-owner release nor, portably, the
 * trylock-fails-on-waiting-writer rule, hence this.  Its happens-before
 * edges are stated to ThreadSanitizer explicitly.
 */
#ifndef FL_RWSEM_H
#define FL_RWSEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rwsem {
	_Atomic uint32_t state;
};

#define RWSEM_WRITER 0x80000000u  /* held for write */
#define RWSEM_WAITING 0x40000000u /* the writer waits: read trylocks fail */
#define RWSEM_READERS 0x3fffffffu

static inline void rwsem_init(struct rwsem *s)
{
	atomic_init(&s->state, 0);
}

bool rwsem_read_trylock(struct rwsem *s);
void rwsem_read_unlock(struct rwsem *s); /* any thread may call it */
void rwsem_write_lock(struct rwsem *s);	 /* caller serializes writers */
bool rwsem_write_trylock(struct rwsem *s);
void rwsem_write_unlock(struct rwsem *s);
static inline bool rwsem_is_locked(struct rwsem *s)
{
	return atomic_load_explicit(&s->state, memory_order_relaxed) &
	       (RWSEM_WRITER | RWSEM_READERS);
}

#endif
