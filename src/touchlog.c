// SPDX-License-Identifier: MIT
/*
 * The touch log (touchlog.h).  A fault claims an entry with one atomic add,
 * fills it, and publishes it by storing its time last (release); a reader
 * after touch_log_stop() skips entries whose time is still 0 (a fault that
 * claimed one while the log was being stopped).  No lock: it runs in the
 * SIGBUS handler too.  Hidden: faultline run's recorder is its only user.
 */
#include "touchlog.h"

#include <sys/mman.h>

#include "fault.h"
#include "space.h"

__thread pid_t touch_fault_tid;

/* Context: before the faults it should see; not concurrently with itself. */
int touch_log_start(struct fl_space *sp, size_t cap)
{
	struct touch_log *tl;

	if (sp->touch)
		return -EBUSY;
	tl = calloc(1, sizeof(*tl));
	if (!tl)
		return -ENOMEM;
	tl->ent = mmap(NULL, cap * sizeof(*tl->ent), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (tl->ent == MAP_FAILED) {
		free(tl);
		return -ENOMEM;
	}
	tl->cap = cap;
	atomic_store(&tl->on, true);
	__atomic_store_n(&sp->touch, tl, __ATOMIC_RELEASE);
	return 0;
}

void touch_log_stop(struct fl_space *sp)
{
	struct touch_log *tl = __atomic_load_n(&sp->touch, __ATOMIC_ACQUIRE);

	if (tl)
		atomic_store(&tl->on, false);
}

/*
 * The entries so far (the log stopped or not): *out, and how many did not
 * fit.  Entries whose t_ns is 0 are unfinished: skip them.
 */
size_t touch_log_entries(struct fl_space *sp, const struct touch_ent **out, size_t *dropped)
{
	struct touch_log *tl = __atomic_load_n(&sp->touch, __ATOMIC_ACQUIRE);
	size_t n;

	*out = NULL;
	*dropped = 0;
	if (!tl)
		return 0;
	n = atomic_load(&tl->n);
	if (n > tl->cap) {
		*dropped = n - tl->cap;
		n = tl->cap;
	}
	*out = tl->ent;
	return n;
}

/* Context: the fault path, any thread, the SIGBUS handler too. */
void touch_log_fault(struct fl_space *sp, unsigned long addr, unsigned int flags)
{
	struct touch_log *tl = __atomic_load_n(&sp->touch, __ATOMIC_ACQUIRE);
	struct touch_ent *e;
	size_t i;

	if (!atomic_load_explicit(&tl->on, memory_order_relaxed))
		return;
	i = atomic_fetch_add_explicit(&tl->n, 1, memory_order_relaxed);
	if (i >= tl->cap)
		return;
	e = &tl->ent[i];
	e->page = (addr & PAGE_MASK) | ((flags & FAULT_FLAG_WRITE) ? 1 : 0);
	e->tid = (flags & FAULT_FLAG_SIGBUS) || !touch_fault_tid ? fl_gettid() : touch_fault_tid;
	__atomic_store_n(&e->t_ns, fl_now_ns(), __ATOMIC_RELEASE);
}

/* Context: space teardown. */
void touch_log_destroy(struct fl_space *sp)
{
	struct touch_log *tl = sp->touch;

	if (!tl)
		return;
	munmap(tl->ent, tl->cap * sizeof(*tl->ent));
	free(tl);
	sp->touch = NULL;
}
