// SPDX-License-Identifier: MIT
/*
 * The mm calls: fl_mmap, fl_munmap, fl_mprotect, fl_madvise, fl_maps.
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
#include "internal.h"

#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* x86-64 with 4-level page tables; hints above it are the kernel's business. */
#define TASK_SIZE ((1UL << 47) - PAGE_SIZE)

#define FL_MAP_SUPPORTED                                                                 \
	(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | \
	 MAP_POPULATE | MAP_STACK)
#define PROT_ALL (PROT_READ | PROT_WRITE | PROT_EXEC)

struct seg {
	unsigned long start, end;
	int prot;
	unsigned long flags;
};

struct layout {
	size_t lo, hi;	 /* index window replaced */
	struct vma **nv; /* the window's new VMAs */
	size_t n;
	bool *reused; /* per old VMA of the window: kept as is */
	bool *fresh;  /* per new VMA: allocated by this plan */
	long mapped_delta;
};

static void layout_free(struct layout *l)
{
	free(l->nv);
	free(l->reused);
	free(l->fresh);
	memset(l, 0, sizeof(*l));
}

static void layout_abort(struct fl_space *sp, struct layout *l);

/*
 * Plan the window around [start, end): inside it the new layout is segs
 * (sorted, inside [start, end), gaps meaning unmapped); outside it, the old
 * VMAs stay.  Allocates the new VMAs (write-locked) and write-locks the old
 * ones that go.
 * Context: mmap_lock held for write.  Return: 0 or -ENOMEM (nothing changed
 * but write locks, which end with the section).
 */
static int layout_prepare(struct fl_space *sp, unsigned long start, unsigned long end,
			  const struct seg *segs, size_t nsegs, struct layout *l)
{
	struct vma_index *idx = vma_index_get(sp);
	int seq = READ_ONCE(sp->mmap_lock.mm_lock_seq);
	struct seg *want;
	size_t nwant = 0, i, j, m;

	mmap_assert_write_locked(sp);
	memset(l, 0, sizeof(*l));
	/* Old VMAs that overlap or touch [start, end). */
	l->lo = vma_index_first(idx, start ? start - 1 : 0);
	for (l->hi = l->lo; l->hi < idx->nr && idx->v[l->hi]->vm_start <= end; l->hi++)
		;
	want = calloc(2 * (l->hi - l->lo) + nsegs + 1, sizeof(*want));
	l->reused = calloc(l->hi - l->lo + 1, sizeof(bool));
	l->fresh = calloc(2 * (l->hi - l->lo) + nsegs + 1, sizeof(bool));
	if (!want || !l->reused || !l->fresh)
		goto nomem;

	/* The new layout of the window, in address order: old parts left of
	 * start, the segments, old parts right of end. */
	for (i = l->lo; i < l->hi; i++)
		if (idx->v[i]->vm_start < start)
			want[nwant++] =
				(struct seg){idx->v[i]->vm_start, MIN(idx->v[i]->vm_end, start),
					     idx->v[i]->prot, idx->v[i]->flags};
	for (j = 0; j < nsegs; j++)
		want[nwant++] = segs[j];
	for (i = l->lo; i < l->hi; i++)
		if (idx->v[i]->vm_end > end)
			want[nwant++] =
				(struct seg){MAX(idx->v[i]->vm_start, end), idx->v[i]->vm_end,
					     idx->v[i]->prot, idx->v[i]->flags};
	/* Drop empties; merge neighbours with equal attributes. */
	for (i = 0, m = 0; i < nwant; i++) {
		if (want[i].start >= want[i].end)
			continue;
		if (m && want[m - 1].end == want[i].start && want[m - 1].prot == want[i].prot &&
		    want[m - 1].flags == want[i].flags)
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
			if (v->vm_start == want[i].start && v->vm_end == want[i].end &&
			    v->prot == want[i].prot && v->flags == want[i].flags) {
				keep = v;
				l->reused[j - l->lo] = true;
			}
		}
		if (!keep) {
			keep = vma_alloc(sp, want[i].start, want[i].end, want[i].prot,
					 want[i].flags);
			if (!keep)
				goto nomem;
			/* Born write-locked for the rest of the section. */
			WRITE_ONCE(keep->vm_lock_seq, seq);
			l->fresh[l->n] = true;
			l->mapped_delta += (long)(want[i].end - want[i].start);
		}
		l->nv[l->n++] = keep;
	}
	free(want);
	for (j = l->lo; j < l->hi; j++) {
		if (l->reused[j - l->lo])
			continue;
		l->mapped_delta -= (long)(idx->v[j]->vm_end - idx->v[j]->vm_start);
		vma_start_write(idx->v[j]);
	}
	return 0;

nomem:
	free(want);
	layout_abort(sp, l);
	return -ENOMEM;
}

/* Drop a plan whose kernel change failed: free the VMAs never published. */
static void layout_abort(struct fl_space *sp, struct layout *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->fresh[i])
			vma_free_rcu(l->nv[i]);
	layout_free(l);
}

/*
 * Publish the plan.  Context: mmap_lock held for write, the kernel's
 * mappings already changed.
 */
static int layout_commit(struct fl_space *sp, struct layout *l)
{
	struct vma_index *idx = vma_index_get(sp);
	struct vma **gone = malloc((l->hi - l->lo + 1) * sizeof(*gone));
	size_t ngone = 0;
	int ret;

	if (!gone)
		return -ENOMEM;
	for (size_t j = l->lo; j < l->hi; j++)
		if (!l->reused[j - l->lo])
			gone[ngone++] = idx->v[j];
	ret = vma_index_replace(sp, l->lo, l->hi, l->nv, l->n);
	if (ret) {
		free(gone);
		return ret;
	}
	for (size_t i = 0; i < ngone; i++) {
		vma_assert_write_locked(gone[i]);
		atomic_store_explicit(&gone[i]->detached, true, memory_order_release);
		vma_free_rcu(gone[i]);
	}
	atomic_fetch_add(&sp->mapped_bytes, l->mapped_delta);
	free(gone);
	layout_free(l);
	return 0;
}

/* Retry a layout step that ran out of memory: metadata is small, so a
 * transient failure is worth a few tries before giving up with ENOMEM. */
static int layout_prepare_retry(struct fl_space *sp, unsigned long start, unsigned long end,
				const struct seg *segs, size_t nsegs, struct layout *l)
{
	for (int tries = 0;; tries++) {
		int ret = layout_prepare(sp, start, end, segs, nsegs, l);
		if (!ret || tries == 3)
			return ret;
		usleep(1000);
	}
}

/* The space's own parts of [start, end), for syscalls that must not touch
 * foreign mappings.  Context: mmap_lock held. */
#define for_each_vma_part(sp, idx, i, start, end, ps, pe)                                          \
	for (i = vma_index_first(idx, start); i < (idx)->nr && (idx)->v[i]->vm_start < (end); i++) \
		if ((ps = MAX((idx)->v[i]->vm_start, start)),                                      \
		    (pe = MIN((idx)->v[i]->vm_end, end)), 1)

static unsigned long vm_flags_of(int flags)
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
					      &err)
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

FL_EXPORT void *fl_mmap(struct fl_space *sp, void *addr, size_t len, int prot, int flags)
{
	unsigned long start = (unsigned long)addr, end, alen;
	int kflags, ret;
	struct layout l;
	void *p;

	if (!sp || (flags & ~FL_MAP_SUPPORTED) ||
	    (flags & (MAP_PRIVATE | MAP_ANONYMOUS)) != (MAP_PRIVATE | MAP_ANONYMOUS)) {
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
	/* The kernel must not populate before the range is registered. */
	kflags = MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_NORESERVE | MAP_STACK));
	if (flags & MAP_FIXED_NOREPLACE)
		kflags |= MAP_FIXED_NOREPLACE;
	else if (flags & MAP_FIXED)
		kflags |= MAP_FIXED;

	mmap_write_lock(sp);
	if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE)) {
		struct seg s = {start, start + alen, prot & PROT_ALL, vm_flags_of(flags)};
		/* Write-lock what the new mapping replaces before the kernel
		 * replaces it. */
		ret = layout_prepare_retry(sp, start, start + alen, &s, 1, &l);
		if (ret) {
			mmap_write_unlock(sp);
			errno = -ret;
			return MAP_FAILED;
		}
		p = mmap(addr, alen, PROT_NONE, kflags, -1, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			layout_abort(sp, &l);
			mmap_write_unlock(sp);
			errno = e;
			return MAP_FAILED;
		}
	} else {
		p = mmap(addr, alen, PROT_NONE, kflags, -1, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			mmap_write_unlock(sp);
			errno = e;
			return MAP_FAILED;
		}
		start = (unsigned long)p;
		struct seg s = {start, start + alen, prot & PROT_ALL, vm_flags_of(flags)};
		ret = layout_prepare_retry(sp, start, start + alen, &s, 1, &l);
		if (ret) {
			munmap(p, alen);
			mmap_write_unlock(sp);
			errno = -ret;
			return MAP_FAILED;
		}
	}
	end = start + alen;
	/*
	 * The mapping was made PROT_NONE: until it is registered, an access by
	 * another thread would be served by the kernel behind our back (a page
	 * the table does not know).  Registered, it gets its protection.
	 */
	ret = uffd_register(sp, start, alen);
	if (!ret && madvise(p, alen, MADV_DONTFORK))
		ret = -errno;
	if (!ret && (prot & PROT_ALL) && mprotect(p, alen, prot & PROT_ALL))
		ret = -errno;
	if (ret) {
		fl_log("registering %#lx-%#lx failed: %s", start, end, strerror(-ret));
		/*
		 * The kernel mapping is in place but unusable: unmap it and
		 * record the range as unmapped.
		 */
		layout_abort(sp, &l);
		munmap(p, alen);
		if (!layout_prepare_retry(sp, start, end, NULL, 0, &l)) {
			pt_zap_range(sp, start, end, false);
			layout_commit(sp, &l);
			pt_free_unused(sp, start, end);
		}
		mmap_write_unlock(sp);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	/* Pages of what was there before are gone with the old mapping. */
	pt_zap_range(sp, start, end, false);
	if (layout_commit(sp, &l)) {
		/* Out of memory for the index: undo the mapping. */
		layout_abort(sp, &l);
		munmap(p, alen);
		mmap_write_unlock(sp);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (flags & MAP_POPULATE)
		populate(sp, start, end, prot);
	mmap_write_unlock(sp);
	return p;
}

FL_EXPORT int fl_munmap(struct fl_space *sp, void *addr, size_t len)
{
	unsigned long start = (unsigned long)addr, end, ps, pe;
	struct vma_index *idx;
	struct layout l;
	size_t i;
	int ret;

	if (!sp || !PAGE_ALIGNED(start) || !len) {
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
	ret = layout_prepare_retry(sp, start, end, NULL, 0, &l);
	if (ret) {
		mmap_write_unlock(sp);
		errno = -ret;
		return -1;
	}
	/* Only the space's own parts: a foreign mapping stays untouched. */
	idx = vma_index_get(sp);
	for_each_vma_part (sp, idx, i, start, end, ps, pe) {
		FL_BUG_ON(munmap((void *)ps, pe - ps));
		pt_zap_range(sp, ps, pe, false);
	}
	ret = layout_commit(sp, &l);
	FL_BUG_ON(ret); /* the index only shrinks here... */
	pt_free_unused(sp, start, end);
	mmap_write_unlock(sp);
	return 0;
}

FL_EXPORT int fl_mprotect(struct fl_space *sp, void *addr, size_t len, int prot)
{
	unsigned long start = (unsigned long)addr, end, ps, pe, done;
	struct vma_index *idx;
	struct seg *segs = NULL;
	size_t i, n = 0;
	struct layout l;
	int ret, err = 0;

	if (!sp || !PAGE_ALIGNED(start)) {
		errno = EINVAL;
		return -1;
	}
	if (!len)
		return 0;
	len = PAGE_ALIGN(len);
	end = start + len;
	if (end <= start) {
		errno = ENOMEM;
		return -1;
	}
	if (prot & ~(PROT_ALL | PROT_GROWSDOWN | PROT_GROWSUP | 0x8 /* PROT_SEM */)) {
		errno = EINVAL;
		return -1;
	}
	if (prot & (PROT_GROWSDOWN | PROT_GROWSUP)) {
		/* No VMA of ours grows: the kernel refuses these for them. */
		errno = EINVAL;
		return -1;
	}

	mmap_write_lock(sp);
	idx = vma_index_get(sp);
	i = vma_index_first(idx, start);
	if (i >= idx->nr || idx->v[i]->vm_start > start) {
		mmap_write_unlock(sp);
		errno = ENOMEM;
		return -1;
	}
	/* As the kernel: change VMAs up to the first hole, then ENOMEM. */
	segs = calloc(idx->nr - i + 1, sizeof(*segs));
	if (!segs) {
		mmap_write_unlock(sp);
		errno = ENOMEM;
		return -1;
	}
	done = start;
	for (; i < idx->nr && idx->v[i]->vm_start < end; i++) {
		if (idx->v[i]->vm_start > done) {
			err = ENOMEM;
			break;
		}
		segs[n++] =
			(struct seg){MAX(idx->v[i]->vm_start, start), MIN(idx->v[i]->vm_end, end),
				     prot & PROT_ALL, idx->v[i]->flags};
		done = MIN(idx->v[i]->vm_end, end);
	}
	if (done < end)
		err = ENOMEM;
	ret = layout_prepare_retry(sp, start, done, segs, n, &l);
	free(segs);
	if (ret) {
		mmap_write_unlock(sp);
		errno = -ret;
		return -1;
	}
	for_each_vma_part (sp, idx, i, start, done, ps, pe) {
		if (idx->v[i]->prot != (prot & PROT_ALL) && mprotect((void *)ps, pe - ps, prot)) {
			/* Cannot happen for a range we own; do not go on. */
			FL_BUG_ON(1);
		}
	}
	ret = layout_commit(sp, &l);
	mmap_write_unlock(sp);
	if (ret) {
		/*
		 * The kernel's protections changed but the index could not be
		 * rebuilt: the old VMAs stay, with their old protection, and
		 * faults against the new one are refused by the kernel itself.
		 */
		errno = ENOMEM;
		return -1;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static bool madvise_valid(int advice)
{
	switch (advice) {
	case MADV_NORMAL:
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:
	case MADV_DONTNEED:
	case MADV_FREE:
	case MADV_REMOVE:
	case MADV_DONTFORK:
	case MADV_DOFORK:
	case MADV_MERGEABLE:
	case MADV_UNMERGEABLE:
	case MADV_HUGEPAGE:
	case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP:
	case MADV_DODUMP:
	case MADV_WIPEONFORK:
	case MADV_KEEPONFORK:
	case 20: /* MADV_COLD */
	case 21: /* MADV_PAGEOUT */
	case 22: /* MADV_POPULATE_READ */
	case 23: /* MADV_POPULATE_WRITE */
	case 24: /* MADV_DONTNEED_LOCKED */
	case 25: /* MADV_COLLAPSE */
		return true;
	}
	return false;
}

FL_EXPORT int fl_madvise(struct fl_space *sp, void *addr, size_t len, int advice)
{
	unsigned long start = (unsigned long)addr, end, alen;
	struct vma_index *idx;
	int unmapped = 0;
	size_t i;

	if (!sp || !madvise_valid(advice)) {
		errno = EINVAL;
		return -1;
	}
	/* Valid for the kernel but not served by faultline (yet). */
	if (advice != MADV_DONTNEED && advice != MADV_NORMAL) {
		errno = EINVAL;
		return -1;
	}
	if (!PAGE_ALIGNED(start)) {
		errno = EINVAL;
		return -1;
	}
	alen = PAGE_ALIGN(len);
	if (len && !alen) {
		errno = EINVAL;
		return -1;
	}
	end = start + alen;
	if (end < start) {
		errno = EINVAL;
		return -1;
	}
	if (end == start)
		return 0;

	mmap_read_lock(sp);
	idx = vma_index_get(sp);
	i = vma_index_first(idx, start);
	if (i >= idx->nr) {
		mmap_read_unlock(sp);
		errno = ENOMEM;
		return -1;
	}
	for (; i < idx->nr && idx->v[i]->vm_start < end; i++) {
		struct vma *v = idx->v[i];
		if (v->vm_start > start)
			unmapped = ENOMEM;
		if (advice == MADV_DONTNEED)
			pt_zap_range(sp, MAX(start, v->vm_start), MIN(end, v->vm_end), true);
		start = v->vm_end;
	}
	if (start < end)
		unmapped = ENOMEM;
	mmap_read_unlock(sp);
	if (unmapped) {
		errno = unmapped;
		return -1;
	}
	return 0;
}

FL_EXPORT int fl_maps(struct fl_space *sp, FILE *out)
{
	struct vma_index *idx;

	if (!sp || !out)
		return -EINVAL;
	mmap_read_lock(sp);
	idx = vma_index_get(sp);
	for (size_t i = 0; i < idx->nr; i++) {
		struct vma *v = idx->v[i];
		fprintf(out, "%08lx-%08lx %c%c%cp 00000000 00:00 0 %s\n", v->vm_start, v->vm_end,
			v->prot & PROT_READ ? 'r' : '-', v->prot & PROT_WRITE ? 'w' : '-',
			v->prot & PROT_EXEC ? 'x' : '-', "[faultline]");
	}
	mmap_read_unlock(sp);
	return ferror(out) ? -EIO : 0;
}
