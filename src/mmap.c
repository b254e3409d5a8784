// SPDX-License-Identifier: MIT
/*
 * The mm calls: fl_mmap, fl_munmap, fl_maps here; fl_mprotect in
 * mprotect.c, fl_madvise and fl_msync in madvise.c, fl_mremap in mremap.c.
 *
 * Each runs as one write section of mmap_lock (fl_madvise: a read section,
 * as in the kernel).  A layout change is planned over a window of the index
 * (the VMAs it touches and the neighbours it may merge with), then:
 *
 *   1. layout_prepare(): new VMA objects for the new layout, write-locked for
 *      the section; vma_start_write() on every VMA that goes away, which
 *      waits for the faults in flight on it (and on no other VMA);
 *   2. the caller changes the kernel's mappings (mmap/munmap/mprotect);
 *   3. layout_commit(): publish the new index, detach and free the old VMAs.
 *
 * So a fault either finished before step 2, or finds the new layout: an
 * install only happens under the lock of a live VMA that covers it.
 *
 * Merging: adjacent VMAs with equal protection and flags always merge.  The
 * kernel additionally keeps apart anonymous VMAs with different anon_vmas, so
 * /proc/pid/maps may list more VMAs than fl_maps() for the same history; the
 * protection of every page is the same.
 */
#include "lib.h" /* first: _GNU_SOURCE for every system header */

#include <sys/mman.h>

#include <fcntl.h>
#include <sys/sysmacros.h>

#include "fileio.h"
#include "filemap.h"
#include "mmap.h"
#include "mmap_lock.h"
#include "pgtable.h"
#include "reclaim.h"
#include "space.h"
#include "swap.h"
#include "uffd.h"
#include "vma.h"
#include "writeback.h"

#define FL_MAP_SUPPORTED                                                                 \
	(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | \
	 MAP_POPULATE | MAP_STACK)
/* Whether b continues a: the same attributes, and the next pages of the
 * same file (the kernel's can_vma_merge_after()). */
static bool seg_mergeable(const struct seg *a, const struct seg *b)
{
	return a->end == b->start && a->prot == b->prot && a->flags == b->flags &&
	       a->file == b->file &&
	       (!a->file || a->pgoff + ((a->end - a->start) >> PAGE_SHIFT) == b->pgoff);
}

/* The part [start, end) of v, as a segment (an anonymous one has no
 * offset: its parts keep matching the VMAs they come from). */
struct seg seg_of(const struct vma *v, unsigned long start, unsigned long end)
{
	unsigned long pgoff = v->file ? v->pgoff + ((start - v->vm_start) >> PAGE_SHIFT) : 0;

	return (struct seg){start, end, v->prot, v->flags, v->file, pgoff};
}

static void layout_free(struct layout *l)
{
	free(l->nv);
	free(l->fresh);
	free(l->gone);
	memset(l, 0, sizeof(*l));
}

/* Drop a plan (its kernel change failed): free what was never published. */
void layout_abort(struct fl_space *sp, struct layout *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->fresh && l->fresh[i])
			vma_free_rcu(l->nv[i]);
	free(l->idx);
	layout_free(l);
}

/*
 * Plan the window around [start, end): inside it the new layout is segs
 * (sorted, inside [start, end), gaps meaning unmapped); outside it, the old
 * VMAs stay.  With replace, no old VMA that overlaps [start, end) is kept
 * even if a new one has its exact shape: the kernel mapping under it is being
 * replaced, so its faults must be waited for.  Allocates everything commit
 * needs (so commit cannot fail), makes the new VMAs write-locked, and
 * write-locks the old ones that go, waiting for their faults in flight.
 * Context: mmap_lock held for write.  Return: 0 or -ENOMEM (nothing changed
 * but write locks, which end with the section).
 */
static int layout_prepare(struct fl_space *sp, unsigned long start, unsigned long end,
			  const struct seg *segs, size_t nsegs, bool replace, struct layout *l)
{
	struct vma_index *idx = vma_index_get(sp);
	unsigned int seq = READ_ONCE(sp->mmap_lock.mm_lock_seq);
	struct seg *want;
	bool *kept = NULL;
	size_t nwant = 0, i, j, m;

	mmap_assert_write_locked(sp);
	memset(l, 0, sizeof(*l));
	/* Old VMAs that overlap or touch [start, end). */
	l->lo = vma_index_first(idx, start ? start - 1 : 0);
	for (l->hi = l->lo; l->hi < idx->nr && idx->v[l->hi]->vm_start <= end; l->hi++)
		;
	want = calloc(2 * (l->hi - l->lo) + nsegs + 1, sizeof(*want));
	kept = calloc(l->hi - l->lo + 1, sizeof(bool));
	l->fresh = calloc(2 * (l->hi - l->lo) + nsegs + 1, sizeof(bool));
	l->gone = calloc(l->hi - l->lo + 1, sizeof(*l->gone));
	if (!want || !kept || !l->fresh || !l->gone)
		goto nomem;

	/* The new layout of the window, in address order: old parts left of
	 * start, the segments, old parts right of end. */
	for (i = l->lo; i < l->hi; i++)
		if (idx->v[i]->vm_start < start)
			want[nwant++] = seg_of(idx->v[i], idx->v[i]->vm_start,
					       MIN(idx->v[i]->vm_end, start));
	for (j = 0; j < nsegs; j++)
		want[nwant++] = segs[j];
	for (i = l->lo; i < l->hi; i++)
		if (idx->v[i]->vm_end > end)
			want[nwant++] =
				seg_of(idx->v[i], MAX(idx->v[i]->vm_start, end), idx->v[i]->vm_end);
	/* Drop empties; merge neighbours with equal attributes. */
	for (i = 0, m = 0; i < nwant; i++) {
		if (want[i].start >= want[i].end)
			continue;
		if (m && seg_mergeable(&want[m - 1], &want[i]))
			want[m - 1].end = want[i].end;
		else
			want[m++] = want[i];
	}
	nwant = m;

	l->nv = calloc(nwant + 1, sizeof(*l->nv));
	if (!l->nv)
		goto nomem;
	for (i = 0; i < nwant; i++) {
		struct vma *keep = NULL;
		for (j = l->lo; j < l->hi && !keep; j++) {
			struct vma *v = idx->v[j];
			if (replace && v->vm_start < end && v->vm_end > start)
				continue;
			if (v->vm_start == want[i].start && v->vm_end == want[i].end &&
			    v->prot == want[i].prot && v->flags == want[i].flags &&
			    v->file == want[i].file && v->pgoff == want[i].pgoff) {
				keep = v;
				kept[j - l->lo] = true;
			}
		}
		if (!keep) {
			keep = vma_alloc(sp, want[i].start, want[i].end, want[i].prot,
					 want[i].flags, want[i].file, want[i].pgoff);
			if (!keep)
				goto nomem;
			/* Born write-locked for the rest of the section. */
			WRITE_ONCE(keep->vm_lock_seq, seq);
			l->fresh[l->n] = true;
			l->mapped_delta += (long)(want[i].end - want[i].start);
		}
		l->nv[l->n++] = keep;
	}
	l->idx = vma_index_build(idx, l->lo, l->hi, l->nv, l->n);
	if (!l->idx)
		goto nomem;
	for (j = l->lo; j < l->hi; j++) {
		if (kept[j - l->lo])
			continue;
		l->mapped_delta -= (long)(idx->v[j]->vm_end - idx->v[j]->vm_start);
		l->gone[l->ngone++] = idx->v[j];
		vma_start_write(idx->v[j]);
	}
	free(want);
	free(kept);
	return 0;

nomem:
	free(want);
	free(kept);
	layout_abort(sp, l);
	return -ENOMEM;
}

/*
 * Publish the plan.  Context: mmap_lock held for write, the kernel's
 * mappings already changed.  Cannot fail.
 */
void layout_commit(struct fl_space *sp, struct layout *l)
{
	vma_index_publish(sp, l->idx);
	for (size_t i = 0; i < l->ngone; i++) {
		vma_assert_write_locked(l->gone[i]);
		atomic_store_explicit(&l->gone[i]->detached, true, memory_order_release);
		vma_free_rcu(l->gone[i]);
	}
	atomic_fetch_add(&sp->mapped_bytes, l->mapped_delta);
	layout_free(l);
}

/*
 * layout_prepare(), retried: the metadata is small, so running out of memory
 * for it is transient more often than not.
 */
int layout_prepare_retry(struct fl_space *sp, unsigned long start, unsigned long end,
			 const struct seg *segs, size_t nsegs, bool replace, struct layout *l)
{
	for (int tries = 0;; tries++) {
		int ret = layout_prepare(sp, start, end, segs, nsegs, replace, l);
		if (!ret || tries == 20)
			return ret;
		usleep(1000);
	}
}

/*
 * Record that the kernel has already changed [start, end) to segs: the
 * layout must follow, whatever it costs.  Context: mmap_lock held for write.
 */
void layout_force(struct fl_space *sp, unsigned long start, unsigned long end,
		  const struct seg *segs, size_t nsegs, bool replace)
{
	struct layout l;

	/* Without memory for a few pointers the space cannot stay true to the
	 * kernel: stop, as the kernel's OOM path would. */
	FL_BUG_ON(layout_prepare_retry(sp, start, end, segs, nsegs, replace, &l));
	layout_commit(sp, &l);
}

unsigned long vm_flags_of(int flags)
{
	unsigned long f = 0;

	if (flags & MAP_NORESERVE)
		f |= VM_NORESERVE;
	if (flags & MAP_STACK)
		f |= VM_STACK;
	return f;
}

/*
 * Populate [start, end) as MAP_POPULATE does: private zero-filled pages if
 * writable, the zero page if only readable.
 * Context: mmap_lock held for write; the new VMA is write-locked, so no fault
 * runs in the range.
 */
static void populate(struct fl_space *sp, unsigned long start, unsigned long end, int prot)
{
	bool write = prot & PROT_WRITE;

	if (!(prot & (PROT_READ | PROT_WRITE)))
		return;
	for (unsigned long b = start; b < end;) {
		unsigned long ce = MIN(end, (b & PT_CHUNK_MASK) + PT_CHUNK_SIZE);
		struct pt_chunk *c = pt_chunk_get(sp, b);
		if (!c)
			return;
		pt_lock(c);
		for (unsigned long a = b; a < ce;) {
			unsigned long s = a, n;
			while (a < ce && !(READ_ONCE(c->pte[pt_index(a)]) & PTE_TYPE_MASK))
				a += PAGE_SIZE;
			if (a == s) {
				a += PAGE_SIZE;
				continue;
			}
			int err;
			n = write ? uffd_copy(sp, s, sp->zero_src,
					      MIN(a - s, (unsigned long)sp->cfg.fault_around_max
								 << PAGE_SHIFT),
					      false, &err)
				  : uffd_zeropage(sp, s, a - s, &err);
			for (unsigned long p = s; p < s + n; p += PAGE_SIZE) {
				WRITE_ONCE(c->pte[pt_index(p)],
					   PTE_PRESENT | (write ? 0 : PTE_ZEROPAGE));
				c->nr_present++;
			}
			atomic_fetch_add(&sp->resident_pages, (long)(n >> PAGE_SHIFT));
			if (!n)
				break;
			a = s + n;
		}
		pt_unlock(c);
		b = ce;
	}
}

/*
 * Mark present the pages of [start, end) that the kernel already has: those
 * a racing access got served in the instant between the kernel's mmap and
 * our registration.  Context: mmap_lock held for write; the range's new VMA
 * is write-locked, so no fault runs there.
 */
void adopt_kernel_pages(struct fl_space *sp, unsigned long start, unsigned long end)
{
	enum { STEP = 1 << 16 }; /* pages per mincore call */
	unsigned char *vec = malloc(STEP);

	for (unsigned long b = start; vec && b < end;) {
		unsigned long e = MIN(end, b + (unsigned long)STEP * PAGE_SIZE);
		if (mincore((void *)b, e - b, vec))
			break;
		for (unsigned long a = b; a < e; a += PAGE_SIZE) {
			if (!(vec[(a - b) >> PAGE_SHIFT] & 1))
				continue;
			struct pt_chunk *c = pt_chunk_get(sp, a);
			FL_BUG_ON(!c);
			pt_lock(c);
			if ((READ_ONCE(c->pte[pt_index(a)]) & PTE_TYPE_MASK) == PTE_NONE) {
				WRITE_ONCE(c->pte[pt_index(a)], PTE_PRESENT);
				c->nr_present++;
				atomic_fetch_add(&sp->resident_pages, 1);
			}
			pt_unlock(c);
		}
		b = e;
	}
	free(vec);
}

/* ---- ranges lost behind faultline's back ------------------------------ */

/* uffd_for_each_unregistered()'s callback: mark [start, end) of space arg
 * stale. */
void mark_stale_cb(unsigned long start, unsigned long end, void *arg)
{
	space_mark_stale(arg, start, end);
}

/*
 * Probe the space's own parts of [start, end): what no userfaultfd has
 * registered any more (the libc munmap of a region, and perhaps a new
 * mapping of someone else's there) is marked stale, for drop_stale().
 * Context: mmap_lock held for write.
 */
void find_stale(struct fl_space *sp, unsigned long start, unsigned long end)
{
	struct vma_index *idx = vma_index_get(sp);
	unsigned long ps, pe;
	size_t i;

	mmap_assert_write_locked(sp);
	/* A file mapping is not probed (the probe, UFFDIO_CONTINUE, would map
	 * its cache pages): a file region lost behind faultline's back is not
	 * detected. */
	for_each_vma_part (sp, idx, i, start, end, ps, pe)
		if (!idx->v[i]->file)
			uffd_for_each_unregistered(sp, ps, pe, mark_stale_cb, sp);
}

/*
 * Write back the dirty pages that the shared file mappings of [start, end)
 * map, before that range is unmapped or replaced: faultline writes a file
 * back when it is unmapped, where the kernel would leave the pages dirty in
 * its page cache, which other readers of the file share.
 * Context: mmap_lock held for write.
 */
void writeback_replaced(struct fl_space *sp, unsigned long start, unsigned long end)
{
	struct vma_index *idx = vma_index_get(sp);
	unsigned long ps, pe;
	size_t i;

	mmap_assert_write_locked(sp);
	for_each_vma_part (sp, idx, i, start, end, ps, pe) {
		struct vma *v = idx->v[i];

		if (v->file && (v->flags & VM_SHARED))
			writeback_range(sp, v->file, vma_pgoff_of(v, ps), vma_pgoff_of(v, pe));
	}
}

/*
 * Take the space's stale ranges out of its index and page table, touching
 * nothing of the kernel there: the addresses may be someone else's now.
 * What they held is gone (their swap slots are freed); counted in
 * stale_drops.  Context: mmap_lock held for write.
 */
void drop_stale(struct fl_space *sp)
{
	struct stale_ranges *st = space_take_stale(sp);
	struct layout l;

	if (!st)
		return;
	for (size_t i = 0; i < st->nr; i++) {
		unsigned long s = st->r[i].start, e = st->r[i].end;

		if (layout_prepare_retry(sp, s, e, NULL, 0, true, &l)) {
			/* No memory for the plan now: kept for the next section. */
			space_mark_stale(sp, s, e);
			continue;
		}
		pt_zap_range(sp, s, e, false);
		layout_commit(sp, &l);
		pt_free_unused(sp, s, e);
		count_event(sp, stale_drops);
	}
	stale_ranges_free(st);
}

/* A write section that only drops the stale ranges (the background
 * reclaimer's, when a read-side path found some).  Context: no lock held. */
void mm_drop_stale(struct fl_space *sp)
{
	mmap_write_lock(sp);
	drop_stale(sp);
	mmap_write_unlock(sp);
}

struct unmap_walk {
	unsigned long next; /* the start of what is not unmapped yet */
};

static void unmap_before_cb(unsigned long start, unsigned long end, void *arg)
{
	struct unmap_walk *w = arg;

	if (start > w->next)
		munmap((void *)w->next, start - w->next);
	w->next = end;
}

/*
 * munmap() of [start, end) where it is still a registered mapping: a part
 * that is not (its region unmapped behind faultline's back, the address
 * perhaps reused) is left as it is.  Context: mmap_lock held for write.
 * Return: 0 or the errno of a munmap that failed.
 */
static int munmap_registered(struct fl_space *sp, unsigned long start, unsigned long end)
{
	struct unmap_walk w = {.next = start};

	uffd_for_each_unregistered(sp, start, end, unmap_before_cb, &w);
	if (w.next < end && munmap((void *)w.next, end - w.next))
		return errno;
	return 0;
}

/*
 * Destroy's write section: every VMA write-locked (its faults in flight
 * waited for), unmapped where it is still the space's mapping, and
 * forgotten; the empty index published.  Context: no call on the space in
 * flight (fl_space_destroy()); faults may still come, and find nothing.
 */
void mm_unmap_all(struct fl_space *sp)
{
	struct vma_index *idx;

	mmap_write_lock(sp);
	drop_stale(sp);
	idx = vma_index_get(sp);
	for (size_t i = 0; i < idx->nr; i++) {
		struct vma *v = idx->v[i];
		vma_start_write(v);
		if (v->file)
			munmap((void *)v->vm_start, v->vm_end - v->vm_start);
		else
			munmap_registered(sp, v->vm_start, v->vm_end);
		if (sp->pt)
			pt_zap_range(sp, v->vm_start, v->vm_end, false);
	}
	/* The old index goes after a grace period: read it inside one. */
	rcu_read_lock();
	vma_index_publish(sp, sp->empty_index);
	sp->empty_index = NULL;
	for (size_t i = 0; i < idx->nr; i++) {
		atomic_store_explicit(&idx->v[i]->detached, true, memory_order_release);
		vma_free_rcu(idx->v[i]);
	}
	fl_rcu_read_unlock();
	mmap_write_unlock(sp);
}

/*
 * The kernel's mmap of a region and its fork advice (region_fork_advice():
 * MADV_DONTFORK, MADV_WIPEONFORK or none), as one step for fork(): the
 * caller holds claim_lock, which fork() takes first (its atfork prepare
 * handler, space.c), so that a child never gets a copy of a region that is
 * not marked yet.
 * Context: claim_lock held.  Return: the mapping or MAP_FAILED (errno set);
 * *dontfork_err: 0, or the errno of an advice that failed (the mapping is
 * made, and the caller undoes it).
 */
void *mmap_dontfork(void *addr, size_t len, int prot, int kflags, int fd, unsigned long off,
		    int fork_advice, int *dontfork_err)
{
	void *p = mmap(addr, len, prot, kflags, fd, (off_t)off);

	*dontfork_err = fork_advice && p != MAP_FAILED && madvise(p, len, fork_advice) ? errno : 0;
	return p;
}

/*
 * The kernel's advice for a region of a VMA with flags vm_flags, as to
 * fork(): MADV_DONTFORK unless the space is given to children of fork()
 * (cfg.fork, fork.c), where anonymous regions are inherited; a file's stay
 * out of the child (fork.c gives up a space that has any); the program's
 * own MADV_DONTFORK or MADV_WIPEONFORK (madvise_fork()); 0 otherwise.
 */
int region_fork_advice(struct fl_space *sp, bool file, unsigned long vm_flags)
{
	if (!sp->cfg.fork || file || (vm_flags & VM_DONTFORK))
		return MADV_DONTFORK;
	return vm_flags & VM_WIPEONFORK ? MADV_WIPEONFORK : 0;
}

/* ---- the mm calls ---------------------------------------------------- */

/* Flags a file mapping takes besides its type. */
#define FL_MAP_FILE_SUPPORTED (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | MAP_STACK)

/*
 * The checks of a file mapping that the kernel makes once it has a range
 * (do_mmap()'s switch on the type): the descriptor's mode against the
 * mapping.  Return: 0 with *vm_flags set, or a negative errno.
 */
static int file_map_checks(int fmode, int prot, int flags, unsigned long *vm_flags)
{
	int acc = fmode & O_ACCMODE;

	/* MAP_SHARED_VALIDATE knows only the legacy flags, and
	 * MAP_FIXED_NOREPLACE is not one of them (LEGACY_MAP_MASK). */
	if ((flags & MAP_TYPE) == MAP_SHARED_VALIDATE && (flags & MAP_FIXED_NOREPLACE))
		return -EOPNOTSUPP;
	if ((flags & MAP_TYPE) != MAP_PRIVATE) {
		if ((prot & PROT_WRITE) && acc == O_RDONLY)
			return -EACCES;
		*vm_flags |= VM_SHARED;
		if (acc != O_RDONLY)
			*vm_flags |= VM_MAYWRITE;
	}
	if (acc == O_WRONLY)
		return -EACCES;
	return 0;
}

/* Whether the kernel maps anything in [start, start + len): an empty
 * MAP_FIXED_NOREPLACE mapping there, undone at once, says. */
static bool range_in_use(unsigned long start, unsigned long len)
{
	void *q = mmap((void *)start, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

	if (q == MAP_FAILED)
		return errno == EEXIST;
	munmap(q, len);
	return false;
}

static void *do_mmap(struct fl_space *sp, void *addr, size_t len, int prot, int flags, int fd,
		     off_t offset)
{
	unsigned long start = (unsigned long)addr, end, alen, off = (unsigned long)offset;
	unsigned long pgoff = off >> PAGE_SHIFT;
	bool anon = flags & MAP_ANONYMOUS, fixed_replace;
	int kflags, ret, dontfork_err = 0, fmode = 0, type = flags & MAP_TYPE;
	struct fl_file *file = NULL;
	struct layout l;
	struct seg seg;
	void *p;

	/* In the kernel's order: the offset (the system call itself), the
	 * descriptor, then do_mmap()'s checks. */
	if (off & ~PAGE_MASK) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (!anon) {
		fmode = fcntl(fd, F_GETFL);
		if (fd < 0 || fmode < 0 || (fmode & O_PATH)) {
			errno = EBADF;
			return MAP_FAILED;
		}
	}
	if (anon ? (flags & ~FL_MAP_SUPPORTED) || type != MAP_PRIVATE
		 : (flags & ~(FL_MAP_FILE_SUPPORTED | MAP_TYPE)) ||
			    (type != MAP_SHARED && type != MAP_PRIVATE &&
			     type != MAP_SHARED_VALIDATE)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (!len) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	alen = PAGE_ALIGN(len);
	if (!alen) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (pgoff + (alen >> PAGE_SHIFT) < pgoff) {
		errno = EOVERFLOW;
		return MAP_FAILED;
	}
	if (flags & MAP_FIXED_NOREPLACE)
		flags |= MAP_FIXED;
	if (flags & MAP_FIXED) {
		/* Checked before anything changes, as the kernel does. */
		if (alen > TASK_SIZE || start > TASK_SIZE - alen) {
			errno = ENOMEM;
			return MAP_FAILED;
		}
		if (!PAGE_ALIGNED(start)) {
			errno = EINVAL;
			return MAP_FAILED;
		}
	}
	seg = (struct seg){0, 0, prot & PROT_ALL, vm_flags_of(flags), NULL, 0};
	if (!anon) {
		ret = file_map_checks(fmode, prot, flags, &seg.flags);
		if (!ret && !uffd_files_ok(sp))
			ret = -ENODEV; /* no minor faults on shmem in this kernel */
		if (ret && (flags & MAP_FIXED_NOREPLACE) && range_in_use(start, alen))
			ret = -EEXIST; /* the kernel looks at the range first */
		if (ret) {
			errno = -ret;
			return MAP_FAILED;
		}
	}
	fixed_replace = (flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE);
	/* The kernel must not populate before the range is registered. */
	kflags = (anon ? MAP_PRIVATE | MAP_ANONYMOUS
		       : (seg.flags & VM_SHARED ? MAP_SHARED : MAP_PRIVATE)) |
		 (flags & (MAP_NORESERVE | MAP_STACK));
	if (flags & MAP_FIXED_NOREPLACE)
		kflags |= MAP_FIXED_NOREPLACE;
	else if (flags & MAP_FIXED)
		kflags |= MAP_FIXED;

	mmap_write_lock(sp);
	drop_stale(sp);
	if (!anon) {
		ret = filemap_get(sp, fd, (seg.flags & VM_MAYWRITE) != 0, &file);
		if (ret)
			goto fail_unlock;
		seg.file = file;
		seg.pgoff = pgoff;
	}
	if (fixed_replace) {
		/*
		 * Write-lock what the new mapping replaces, and so wait for its
		 * faults in flight, before the kernel replaces it.  An
		 * anonymous mapping gets its protection at once (an access
		 * racing with the replacement sees the old memory or the new,
		 * as with the kernel's mmap); pages served behind our back
		 * before the registration are adopted below.  A file mapping
		 * is PROT_NONE until registered: the kernel must map none of
		 * the cache's pages without faultline (an unprotected clean
		 * page would be stored to untracked).  The range must not be
		 * another space's (space_claim_locked(): EEXIST), checked in
		 * the same step as the kernel's mapping, under claim_lock.
		 */
		seg.start = start;
		seg.end = start + alen;
		writeback_replaced(sp, seg.start, seg.end);
		ret = layout_prepare_retry(sp, seg.start, seg.end, &seg, 1, true, &l);
		if (ret)
			goto fail_unlock;
		claim_lock_acquire();
		ret = space_claim_locked(sp, seg.start, seg.end, true);
		p = MAP_FAILED;
		if (!ret) {
			p = mmap_dontfork(addr, alen, file ? PROT_NONE : prot, kflags,
					  file ? file->memfd : -1, off,
					  region_fork_advice(sp, file, 0), &dontfork_err);
			if (p == MAP_FAILED)
				ret = -errno;
		}
		if (ret)
			sp->claim_start = sp->claim_end = 0;
		claim_lock_release();
		if (ret) {
			layout_abort(sp, &l);
			goto fail_unlock;
		}
	} else {
		/*
		 * A new range: PROT_NONE until registered, so that an access
		 * cannot be served by the kernel behind our back (before the
		 * call returns, nobody may rely on the range being mapped).
		 * The kernel picks a free range: another space's VMA there is
		 * stale, and the claim says so (space_claim_locked()).
		 */
		claim_lock_acquire();
		p = mmap_dontfork(addr, alen, PROT_NONE, kflags, file ? file->memfd : -1, off,
				  region_fork_advice(sp, file, 0), &dontfork_err);
		ret = p == MAP_FAILED ? -errno : 0;
		if (!ret)
			space_claim_locked(sp, (unsigned long)p, (unsigned long)p + alen, false);
		claim_lock_release();
		if (ret)
			goto fail_unlock;
		if (dontfork_err) {
			munmap(p, alen);
			ret = -ENOMEM;
			goto fail_claim;
		}
		seg.start = (unsigned long)p;
		seg.end = seg.start + alen;
		ret = layout_prepare_retry(sp, seg.start, seg.end, &seg, 1, false, &l);
		if (ret) {
			munmap(p, alen);
			goto fail_claim;
		}
	}
	start = seg.start;
	end = seg.end;
	ret = dontfork_err ? -dontfork_err : uffd_register(sp, start, alen, file != NULL);
	if (!ret && (!fixed_replace || file) && (prot & PROT_ALL) &&
	    mprotect(p, alen, prot & PROT_ALL))
		ret = -errno;
	if (ret) {
		fl_log("registering %#lx-%#lx failed: %s", start, end, strerror(-ret));
		/* The kernel mapping is in place but unusable: unmap it, and
		 * record the range as unmapped. */
		layout_abort(sp, &l);
		munmap(p, alen);
		pt_zap_range(sp, start, end, false);
		layout_force(sp, start, end, NULL, 0, true);
		pt_free_unused(sp, start, end);
		ret = -ENOMEM;
		goto fail_claim;
	}
	/* Pages of what was there before went with the old mapping. */
	pt_zap_range(sp, start, end, false);
	if (fixed_replace && !file)
		adopt_kernel_pages(sp, start, end);
	layout_commit(sp, &l);
	if (flags & MAP_POPULATE)
		populate(sp, start, end, prot);
	space_claim_done(sp);
	if (file)
		file_put(file);
	if (fixed_replace)
		filemap_unmapped(sp);
	mmap_write_unlock(sp);
	return p;

fail_claim:
	space_claim_done(sp);
fail_unlock:
	if (file)
		file_put(file);
	filemap_unmapped(sp);
	mmap_write_unlock(sp);
	errno = -ret;
	return MAP_FAILED;
}

/* The calls below take a use of the handle (space_get()) for their whole
 * run: a handle that is not a live space fails with EINVAL. */
FL_EXPORT void *fl_mmap(struct fl_space *sp, void *addr, size_t len, int prot, int flags, int fd,
			off_t offset)
{
	void *p;

	if (!space_get(sp)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	p = do_mmap(sp, addr, len, prot, flags, fd, offset);
	space_put(sp);
	return p;
}

static int do_munmap(struct fl_space *sp, void *addr, size_t len)
{
	unsigned long start = (unsigned long)addr, end;
	int ret;

	if (!PAGE_ALIGNED(start) || !len) {
		errno = EINVAL;
		return -1;
	}
	len = PAGE_ALIGN(len);
	if (!len || len > TASK_SIZE || start > TASK_SIZE - len) {
		errno = EINVAL;
		return -1;
	}
	end = start + len;

	mmap_write_lock(sp);
	ret = munmap_locked(sp, start, end);
	mmap_write_unlock(sp);
	if (ret) {
		errno = -ret;
		return -1;
	}
	return 0;
}

/*
 * The write section of munmap(): [start, end) unmapped where it is the
 * space's, forgotten where it is stale.  Context: mmap_lock held for
 * write.  Return: 0 or a negative errno (the kernel could not split a
 * mapping: what went before the failure is unmapped, and recorded so).
 */
int munmap_locked(struct fl_space *sp, unsigned long start, unsigned long end)
{
	unsigned long ps, pe;
	struct vma_index *idx;
	struct layout l;
	size_t i;
	int ret;

	mmap_assert_write_locked(sp);
	/* What is no longer the space's mapping is forgotten, not unmapped:
	 * the addresses may be someone else's now. */
	find_stale(sp, start, end);
	drop_stale(sp);
	writeback_replaced(sp, start, end);
	ret = layout_prepare_retry(sp, start, end, NULL, 0, true, &l);
	if (ret)
		return ret;
	/* Only the space's own parts: a foreign mapping stays untouched. */
	idx = vma_index_get(sp);
	for_each_vma_part (sp, idx, i, start, end, ps, pe) {
		if (munmap((void *)ps, pe - ps)) {
			/*
			 * The kernel could not split a mapping (its map count
			 * limit): what went before ps is unmapped, the rest is
			 * not.  Record exactly that, and fail as it does.
			 */
			ret = -errno;
			layout_abort(sp, &l);
			pt_zap_range(sp, start, ps, false);
			if (ps > start)
				layout_force(sp, start, ps, NULL, 0, true);
			pt_free_unused(sp, start, ps);
			filemap_unmapped(sp);
			return ret;
		}
		pt_zap_range(sp, ps, pe, false);
	}
	layout_commit(sp, &l);
	pt_free_unused(sp, start, end);
	filemap_unmapped(sp);
	return 0;
}

FL_EXPORT int fl_munmap(struct fl_space *sp, void *addr, size_t len)
{
	int ret;

	if (!space_get(sp)) {
		errno = EINVAL;
		return -1;
	}
	ret = do_munmap(sp, addr, len);
	space_put(sp);
	return ret;
}
/* One line of fl_maps(): /proc/pid/maps' format. */
#define MAPS_LINE 160

/*
 * The space's VMAs in /proc/pid/maps format.  The lines are formatted
 * under mmap_lock into memory that cannot be a region (a private mmap of
 * the kernel's), and written to out after it is released: out's buffer may
 * lie in a region, and an access there that faults must not wait behind a
 * writer queued on the lock this call holds.
 */
FL_EXPORT int fl_maps(struct fl_space *sp, FILE *out)
{
	struct vma_index *idx;
	size_t len = 0, cap;
	char *buf;
	int ret = 0;

	if (!out || !space_get(sp))
		return -EINVAL;
	mmap_read_lock(sp);
	idx = vma_index_get(sp);
	cap = PAGE_ALIGN((idx->nr + 1) * MAPS_LINE);
	buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		mmap_read_unlock(sp);
		space_put(sp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < idx->nr; i++) {
		struct vma *v = idx->v[i];
		len += (size_t)snprintf(
			buf + len, cap - len, "%08lx-%08lx %c%c%c%c %08lx %02x:%02x %lu %s\n",
			v->vm_start, v->vm_end, v->prot & PROT_READ ? 'r' : '-',
			v->prot & PROT_WRITE ? 'w' : '-', v->prot & PROT_EXEC ? 'x' : '-',
			v->flags & VM_SHARED ? 's' : 'p', v->file ? v->pgoff << PAGE_SHIFT : 0,
			v->file ? major(v->file->dev) : 0, v->file ? minor(v->file->dev) : 0,
			v->file ? (unsigned long)v->file->ino : 0UL, "[faultline]");
	}
	mmap_read_unlock(sp);
	if (len && fwrite(buf, 1, len, out) != len)
		ret = -EIO;
	munmap(buf, cap);
	space_put(sp);
	if (!ret && ferror(out))
		ret = -EIO;
	return ret;
}
