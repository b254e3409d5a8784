// SPDX-License-Identifier: MIT
/*
 * fl_mprotect(), mm/mprotect.c's: one write section of mmap_lock that
 * splits and merges the VMAs of the range as mmap.c's header describes
 * (layout_prepare_retry(), the kernel's mprotect, layout_commit()).
 */
#include "lib.h" /* first: _GNU_SOURCE for every system header */

#include <sys/mman.h>

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

static int do_mprotect(struct fl_space *sp, void *addr, size_t len, int prot)
{
	unsigned long start = (unsigned long)addr, end, ps, pe, done;
	int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
	struct vma_index *idx;
	struct seg *segs = NULL;
	size_t i, n = 0;
	struct layout l;
	bool aborted = false;
	int ret, err = 0;

	/* In the kernel's order of checks (do_mprotect_pkey). */
	prot &= ~grows;
	if (grows == (PROT_GROWSDOWN | PROT_GROWSUP) || !PAGE_ALIGNED(start)) {
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
	if (prot & ~(PROT_ALL | 0x8 /* PROT_SEM */)) {
		errno = EINVAL;
		return -1;
	}

	mmap_write_lock(sp);
	/* A part that is not the space's mapping any more is a hole now. */
	find_stale(sp, start, end);
	drop_stale(sp);
	idx = vma_index_get(sp);
	i = vma_index_first(idx, start);
	if (i >= idx->nr || idx->v[i]->vm_start >= end ||
	    (!(grows & PROT_GROWSDOWN) && idx->v[i]->vm_start > start)) {
		mmap_write_unlock(sp);
		errno = ENOMEM;
		return -1;
	}
	if (grows) {
		/* No VMA of ours grows (no MAP_GROWSDOWN): the kernel's EINVAL. */
		mmap_write_unlock(sp);
		errno = EINVAL;
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
		struct vma *v = idx->v[i];

		if (v->vm_start > done)
			break;
		/* A shared mapping of a file opened read-only never becomes
		 * writable: EACCES, the VMAs before it changed (the kernel's
		 * VM_MAYWRITE check in mprotect_fixup's loop). */
		if ((prot & PROT_WRITE) && (v->flags & VM_SHARED) && !(v->flags & VM_MAYWRITE)) {
			err = EACCES;
			break;
		}
		segs[n] = seg_of(v, MAX(v->vm_start, start), MIN(v->vm_end, end));
		segs[n++].prot = prot & PROT_ALL;
		done = MIN(v->vm_end, end);
	}
	if (done < end && !err)
		err = ENOMEM;
	ret = layout_prepare_retry(sp, start, done, segs, n, false, &l);
	if (ret) {
		free(segs);
		mmap_write_unlock(sp);
		errno = -ret;
		return -1;
	}
	for_each_vma_part (sp, idx, i, start, done, ps, pe) {
		if (idx->v[i]->prot == (prot & PROT_ALL) || !mprotect((void *)ps, pe - ps, prot))
			continue;
		/*
		 * The kernel could not split a mapping (its map count limit):
		 * the parts before ps have the new protection, this one and
		 * those after keep the old.  Record that, fail as it does.
		 */
		err = errno;
		layout_abort(sp, &l);
		size_t k = 0;
		while (k < n && segs[k].end <= ps)
			k++;
		if (ps > start)
			layout_force(sp, start, ps, segs, k, false);
		done = start; /* nothing more to commit */
		aborted = true;
		break;
	}
	if (done > start)
		layout_commit(sp, &l);
	else if (!aborted)
		layout_abort(sp, &l); /* EACCES at the first VMA: nothing changes */
	free(segs);
	mmap_write_unlock(sp);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

FL_EXPORT int fl_mprotect(struct fl_space *sp, void *addr, size_t len, int prot)
{
	int ret;

	if (!space_get(sp)) {
		errno = EINVAL;
		return -1;
	}
	ret = do_mprotect(sp, addr, len, prot);
	space_put(sp);
	return ret;
}
