// SPDX-License-Identifier: MIT
/*
 * VMAs, the per-VMA lock, and the RCU-safe VMA index; the lookups of
 * `faultline run`'s interposed calls (which memory is faultline's).
 *
 * The per-VMA lock follows the scheme first merged in Linux 6.4 ("Per-VMA
 * locks" v4):
 *
 *   vma_start_read()    fails if vm_lock_seq == mm_lock_seq (write-locked in
 *                       the current write section), else read-trylocks
 *                       vm_lock and checks the sequence again.  Never sleeps.
 *   vma_start_write()   with mmap_lock held for write: takes vm_lock for
 *                       write (waiting for the faults in flight on this VMA,
 *                       and only those), sets vm_lock_seq = mm_lock_seq, and
 *                       releases vm_lock at once.
 *   vma_end_write_all() mm_lock_seq++ as the write section ends: every VMA
 *                       write lock of the section ends together.
 *
 * lock_vma_under_rcu() is the lock-free lookup of the fault path, with the
 * kernel's vma_lock_abort and vma_lock_miss accounting.
 */
#include "vma.h"

#include <sys/mman.h>

#include "filemap.h"
#include "mmap_lock.h"
#include "reclaim.h"
#include "space.h"
#include "stats.h"

/*
 * A new VMA, not yet published.  file: the page cache it maps (a reference
 * is taken here and dropped when the VMA is freed), or NULL.
 */
struct vma *vma_alloc(struct fl_space *sp, unsigned long start, unsigned long end, int prot,
		      unsigned long flags, struct fl_file *file, unsigned long pgoff)
{
	struct vma *vma = calloc(1, sizeof(*vma));
	if (!vma)
		return NULL;
	vma->vm_start = start;
	vma->vm_end = end;
	vma->prot = prot;
	vma->flags = flags;
	vma->sp = sp;
	vma->file = file;
	vma->pgoff = pgoff;
	if (file)
		file_get(file);
	rwsem_init(&vma->vm_lock);
	atomic_init(&vma->vm_lock_seq, UINT_MAX);
	atomic_init(&vma->detached, false);
	for (int i = 0; i < FA_STREAMS; i++) {
		atomic_init(&vma->fa_next[i], 0);
		atomic_init(&vma->fa_window[i], 0);
	}
	atomic_init(&vma->fa_victim, 0);
	atomic_init(&vma->ra_next, 0);
	atomic_init(&vma->ra_window, 0);
	return vma;
}

static void vma_free_cb(struct rcu_head *head)
{
	struct vma *vma = container_of(head, struct vma, rcu);

	fl_rcu_callback_enter(head);
	FL_BUG_ON(rwsem_is_locked(&vma->vm_lock));
	if (vma->file)
		file_put(vma->file);
	free(vma);
	fl_rcu_callback_exit();
}

/*
 * Free a VMA after a grace period.
 * Context: the VMA is detached (or was never published), and no thread holds
 * its vm_lock: a detached VMA was write-locked, which waited for them.
 */
void vma_free_rcu(struct vma *vma)
{
	fl_call_rcu(&vma->rcu, vma_free_cb);
}

#ifdef FL_DEBUG
/* pthread rwlocks do not record readers: each thread keeps its own list. */
/* A fault's own, and direct reclaim's zap batch (reclaim.c). */
#define VMA_HELD_MAX (RECLAIM_ZAP_CHUNKS + 4)
static FL_TLS struct vma *vma_held[VMA_HELD_MAX];

static void vma_held_set(struct vma *from, struct vma *to)
{
	for (int i = 0; i < VMA_HELD_MAX; i++) {
		if (vma_held[i] == from) {
			vma_held[i] = to;
			return;
		}
	}
	FL_BUG_ON(1);
}

bool vma_is_read_locked_by_me(struct vma *vma)
{
	for (int i = 0; i < VMA_HELD_MAX; i++)
		if (vma_held[i] == vma)
			return true;
	return false;
}
#else
static inline void vma_held_set(struct vma *from, struct vma *to)
{
}

bool vma_is_read_locked_by_me(struct vma *vma)
{
	return true;
}
#endif

/*
 * Context: rcu_read_lock held (the VMA came from the index) or the VMA is
 * otherwise known not to be freed.  Never sleeps.
 * Return: true with vm_lock held for read.
 */
bool vma_start_read(struct vma *vma)
{
	struct fl_space *sp = vma->sp;

	/* Unlocked check first: a race can only give a false "locked". */
	if (READ_ONCE(vma->vm_lock_seq) == load_acquire(sp->mmap_lock.mm_lock_seq))
		return false;
	if (unlikely(!rwsem_read_trylock(&vma->vm_lock)))
		return false;
	/*
	 * vm_lock_seq is written under vm_lock held for write, so this read is
	 * ordered after it.  A write section that ended has incremented
	 * mm_lock_seq (RELEASE in vma_end_write_all()), which invalidates the
	 * lock it set: a false "unlocked" is impossible.
	 */
	if (unlikely(READ_ONCE(vma->vm_lock_seq) == load_acquire(sp->mmap_lock.mm_lock_seq))) {
		rwsem_read_unlock(&vma->vm_lock);
		return false;
	}
	vma_held_set(NULL, vma);
	return true;
}

/*
 * Hand this thread's read lock of vma to another thread (a fault parked
 * under the hold policy: its completion releases it), and take one handed
 * over.  Debug bookkeeping only: the lock itself does not record owners.
 */
void vma_handoff(struct vma *vma)
{
	vma_held_set(vma, NULL);
}

void vma_adopt(struct vma *vma)
{
	vma_held_set(NULL, vma);
}

/* Context: vm_lock held for read, taken by vma_start_read() or adopted. */
void vma_end_read(struct vma *vma)
{
	vma_held_set(vma, NULL);
	rwsem_read_unlock(&vma->vm_lock);
}

bool vma_is_write_locked(struct vma *vma)
{
	return mmap_lock_is_write_locked(vma->sp) &&
	       READ_ONCE(vma->vm_lock_seq) == READ_ONCE(vma->sp->mmap_lock.mm_lock_seq);
}

/*
 * Write-lock a VMA until the end of the current write section.
 * Context: mmap_lock held for write.  Sleeps until the faults in flight on
 * this VMA have released their read locks.
 */
void vma_start_write(struct vma *vma)
{
	struct fl_space *sp = vma->sp;
	unsigned int seq;

	mmap_assert_write_locked(sp);
	seq = READ_ONCE(sp->mmap_lock.mm_lock_seq);
	if (READ_ONCE(vma->vm_lock_seq) == seq)
		return;
	if (!rwsem_write_trylock(&vma->vm_lock)) {
		uint64_t t0 = fl_now_ns();
		rwsem_write_lock(&vma->vm_lock);
		count_event_n(sp, vma_write_wait_ns, fl_now_ns() - t0);
	}
	WRITE_ONCE(vma->vm_lock_seq, seq);
	rwsem_write_unlock(&vma->vm_lock);
}

/*
 * Context: mmap_lock held for write, about to be released.
 * Pairs with the ACQUIRE loads of mm_lock_seq in vma_start_read().
 */
void vma_end_write_all(struct fl_space *sp)
{
	mmap_assert_write_locked(sp);
	store_release(sp->mmap_lock.mm_lock_seq, READ_ONCE(sp->mmap_lock.mm_lock_seq) + 1);
}

/* ---- the index ------------------------------------------------------- */

struct vma_index *vma_index_new(size_t nr)
{
	struct vma_index *idx = malloc(sizeof(*idx) + nr * sizeof(idx->v[0]));

	if (idx)
		idx->nr = nr;
	return idx;
}

/*
 * Context: rcu_read_lock or mmap_lock held.
 * Pairs with the RELEASE store in vma_index_publish().
 */
struct vma_index *vma_index_get(struct fl_space *sp)
{
	return atomic_load_explicit(&sp->index, memory_order_acquire);
}

/* The position of the first VMA that ends above addr (nr if none). */
size_t vma_index_first(struct vma_index *idx, unsigned long addr)
{
	size_t lo = 0, hi = idx->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (idx->v[mid]->vm_end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void vma_index_free_cb(struct rcu_head *head)
{
	fl_rcu_callback_enter(head);
	free(container_of(head, struct vma_index, rcu));
	fl_rcu_callback_exit();
}

/*
 * A new index: old with positions [lo, hi) replaced by the n VMAs in nv
 * (sorted, not overlapping each other or the rest).
 * Context: mmap_lock held for write (old cannot change until it is
 * published).  Return: the new index, not yet visible, or NULL.
 */
struct vma_index *vma_index_build(struct vma_index *old, size_t lo, size_t hi, struct vma **nv,
				  size_t n)
{
	struct vma_index *idx;

	FL_BUG_ON(lo > hi || hi > old->nr);
	idx = vma_index_new(old->nr - (hi - lo) + n);
	if (!idx)
		return NULL;
	memcpy(idx->v, old->v, lo * sizeof(old->v[0]));
	memcpy(idx->v + lo, nv, n * sizeof(nv[0]));
	memcpy(idx->v + lo + n, old->v + hi, (old->nr - hi) * sizeof(old->v[0]));
#ifdef FL_DEBUG
	for (size_t i = 0; i + 1 < idx->nr; i++)
		FL_BUG_ON(idx->v[i]->vm_end > idx->v[i + 1]->vm_start);
	for (size_t i = 0; i < n; i++)
		FL_BUG_ON(nv[i]->vm_start >= nv[i]->vm_end);
#endif
	return idx;
}

/*
 * Make idx the space's index; the old one is freed after a grace period.
 * Context: mmap_lock held for write.  The caller has write-locked, and will
 * detach, the VMAs that idx no longer has.
 */
void vma_index_publish(struct fl_space *sp, struct vma_index *idx)
{
	struct vma_index *old = vma_index_get(sp);

	mmap_assert_write_locked(sp);
	atomic_store_explicit(&sp->index, idx, memory_order_release);
	fl_call_rcu(&old->rcu, vma_index_free_cb);
}

/*
 * The VMA that contains addr, or NULL.
 * Context: mmap_lock held (read or write): the result stays valid until it
 * is released.
 */
struct vma *vma_lookup(struct fl_space *sp, unsigned long addr)
{
	struct vma_index *idx;
	struct vma *vma = NULL;
	size_t i;

	mmap_assert_locked(sp);
	rcu_read_lock();
	idx = vma_index_get(sp);
	i = vma_index_first(idx, addr);
	if (i < idx->nr && idx->v[i]->vm_start <= addr)
		vma = idx->v[i];
	fl_rcu_read_unlock();
	return vma;
}

/*
 * The lookup of lock_vma_under_rcu(): the VMA of addr read-locked by
 * trylock, without the space lock.  A VMA replaced after it was found
 * (detached) is looked up again; each such retry counts vma_lock_miss and
 * a failure vma_lock_abort when count is set (a fault), nothing otherwise.
 * Context: no faultline lock needed; takes and releases rcu_read_lock.
 * Return: the VMA with vm_lock held for read, or NULL.
 */
static struct vma *__lock_vma_under_rcu(struct fl_space *sp, unsigned long addr, bool count)
{
	struct vma_index *idx;
	struct vma *vma;
	bool file = false; /* the VMA that could not be locked maps a file */
	size_t i;

	rcu_read_lock();
retry:
	idx = vma_index_get(sp);
	i = vma_index_first(idx, addr);
	if (i >= idx->nr || idx->v[i]->vm_start > addr)
		goto inval; /* a gap: the walk finds no VMA */
	vma = idx->v[i];
	file = vma->file;
	if (!vma_start_read(vma))
		goto inval;
	/* The range is immutable here, but keep the kernel's check. */
	if (unlikely(addr < vma->vm_start || addr >= vma->vm_end)) {
		vma_end_read(vma);
		goto inval;
	}
	/* Isolated after we found it: the area was replaced, look again. */
	if (unlikely(atomic_load_explicit(&vma->detached, memory_order_acquire))) {
		vma_end_read(vma);
		if (count)
			count_vm_vma_lock_event(sp, vma_lock_miss);
		goto retry;
	}
	fl_rcu_read_unlock();
	return vma;
inval:
	fl_rcu_read_unlock();
	if (count)
		count_vm_vma_lock_event(sp, vma_lock_abort);
	if (count && file)
		count_vm_vma_lock_event(sp, file_vma_lock_abort);
	return NULL;
}

/*
 * The fault path's lookup: the VMA of addr, read-locked, with the kernel's
 * vma_lock_abort and vma_lock_miss accounting.  NULL: the caller falls back
 * to mmap_lock.
 */
struct vma *lock_vma_under_rcu(struct fl_space *sp, unsigned long addr)
{
	return __lock_vma_under_rcu(sp, addr, true);
}

/* The same for what is not a fault (reclaim, write completion): uncounted. */
struct vma *vma_trylock_at(struct fl_space *sp, unsigned long addr)
{
	return __lock_vma_under_rcu(sp, addr, false);
}

/* ---- lookups for `faultline run`'s interposed calls ------------------ */

/*
 * Whether addr is in a VMA of sp that is not stale: for `faultline run`'s
 * interposed calls, which send an address to faultline or to the kernel.
 * A snapshot: a concurrent layout change may make it stale at once.
 * Context: any but the SIGBUS handler's own space lookups; no lock needed.
 */
bool space_has_addr(struct fl_space *sp, unsigned long addr)
{
	bool hit;

	rcu_read_lock();
	hit = space_has_addr_rcu(sp, addr);
	fl_rcu_read_unlock();
	return hit;
}

/*
 * The end of the run of [start, end) that starts at start and is either all
 * sp's (*served: in its VMAs, not stale) or all not: for `faultline run`'s
 * calls over ranges that mix memory it serves with the kernel's.  A
 * snapshot, as space_has_addr().  Context: as space_has_addr().
 */
unsigned long space_run_end(struct fl_space *sp, unsigned long start, unsigned long end,
			    bool *served)
{
	struct vma_index *idx;
	unsigned long e;
	size_t i;

	rcu_read_lock();
	idx = vma_index_get(sp);
	i = vma_index_first(idx, start);
	if (i < idx->nr && idx->v[i]->vm_start <= start) {
		*served = true;
		e = MIN(end, idx->v[i]->vm_end);
	} else {
		*served = false;
		e = i < idx->nr ? MIN(end, idx->v[i]->vm_start) : end;
	}
	if (space_stale_overlaps(sp, start, e)) {
		/* Page by page where it is stale. */
		*served = space_has_addr_rcu(sp, start);
		e = MIN(end, (start & ~(PAGE_SIZE - 1)) + PAGE_SIZE);
	}
	fl_rcu_read_unlock();
	return e;
}

/*
 * Whether a VMA of sp in [start, end) maps a file: for `faultline run`'s
 * MADV_FREE, which the kernel refuses on file mappings (EINVAL).  A
 * snapshot, as space_has_addr().  Context: as space_has_addr().
 */
bool space_range_has_file(struct fl_space *sp, unsigned long start, unsigned long end)
{
	struct vma_index *idx;
	bool hit = false;

	rcu_read_lock();
	idx = vma_index_get(sp);
	for (size_t i = vma_index_first(idx, start); i < idx->nr && idx->v[i]->vm_start < end; i++)
		hit |= idx->v[i]->file != NULL;
	fl_rcu_read_unlock();
	return hit;
}
