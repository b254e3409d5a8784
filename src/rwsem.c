// SPDX-License-Identifier: MIT
/* The per-VMA lock's semaphore (see rwsem.h). */
#include "rwsem.h"

#include "lib.h"

bool rwsem_read_trylock(struct rwsem *s)
{
	uint32_t v = atomic_load_explicit(&s->state, memory_order_relaxed);

	do {
		if (v & (RWSEM_WRITER | RWSEM_WAITING))
			return false;
		FL_BUG_ON((v & RWSEM_READERS) == RWSEM_READERS);
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &v, v + 1, memory_order_acquire,
							memory_order_relaxed));
	tsan_acquire(s); /* pairs with the release in rwsem_write_unlock() */
	return true;
}

/* Context: the lock is held for read, by this thread or handed to it. */
void rwsem_read_unlock(struct rwsem *s)
{
	tsan_release(s); /* pairs with the acquire in rwsem_write_lock() */
	uint32_t v = atomic_fetch_sub_explicit(&s->state, 1, memory_order_release) - 1;

	FL_BUG_ON((v & RWSEM_READERS) == RWSEM_READERS); /* underflow */
	if (!(v & RWSEM_READERS) && (v & RWSEM_WAITING))
		futex_wake(&s->state, INT_MAX);
}

bool rwsem_write_trylock(struct rwsem *s)
{
	uint32_t v = 0;

	if (!atomic_compare_exchange_strong_explicit(&s->state, &v, RWSEM_WRITER,
						     memory_order_acquire, memory_order_relaxed))
		return false;
	tsan_acquire(s);
	return true;
}

/*
 * Context: the caller is the only writer (mmap_lock held for write).  Sleeps
 * until the readers in flight have left; new readers fail meanwhile.
 */
void rwsem_write_lock(struct rwsem *s)
{
	uint32_t v = atomic_fetch_or_explicit(&s->state, RWSEM_WAITING, memory_order_relaxed) |
		     RWSEM_WAITING;

	for (;;) {
		FL_BUG_ON(v & RWSEM_WRITER);
		if (!(v & RWSEM_READERS)) {
			if (atomic_compare_exchange_weak_explicit(&s->state, &v, RWSEM_WRITER,
								  memory_order_acquire,
								  memory_order_relaxed))
				break;
			continue;
		}
		futex_wait(&s->state, v);
		v = atomic_load_explicit(&s->state, memory_order_relaxed);
	}
	tsan_acquire(s);
}

void rwsem_write_unlock(struct rwsem *s)
{
	tsan_release(s);
	atomic_store_explicit(&s->state, 0, memory_order_release);
}
