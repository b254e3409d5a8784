// SPDX-License-Identifier: MIT
/*
 * fl_madvise() (mm/madvise.c's: a read section of mmap_lock, a write
 * section for the advice that changes VMAs: MADV_DONTFORK and the like, in
 * fork.c) and fl_msync() (mm/msync.c's: the write-back and fdatasync() run
 * with mmap_lock released, a reference on the file held).
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

/*
 * fl_madvise() on the part [s, e) of a file VMA.  MADV_DONTNEED forgets the
 * private copies (and their swap slots) and zaps the range: a shared
 * mapping's pages read back from the cache, a private one's show the file's
 * pages again.  MADV_RANDOM, MADV_SEQUENTIAL and MADV_NORMAL set the file's
 * readahead (per file, where the kernel keeps it per VMA); MADV_WILLNEED
 * reads the range into the cache; MADV_COLD and MADV_PAGEOUT act on the
 * private copies as on anonymous memory, and MADV_COLD makes the cached
 * pages the clock's next victims.
 * Context: mmap_lock held for read.
 */
static void madvise_file(struct fl_space *sp, struct vma *v, unsigned long s, unsigned long e,
			 int advice)
{
	struct fl_file *f = v->file;

	switch (advice) {
	case MADV_DONTNEED:
		pt_zap_range(sp, s, e, false);
		madvise((void *)s, e - s, MADV_DONTNEED);
		break;
	case MADV_RANDOM:
		atomic_store(&f->advice, RA_RANDOM);
		break;
	case MADV_SEQUENTIAL:
		atomic_store(&f->advice, RA_SEQUENTIAL);
		break;
	case MADV_NORMAL:
		atomic_store(&f->advice, RA_NORMAL);
		break;
	case MADV_WILLNEED:
		filemap_readahead(sp, f, vma_pgoff_of(v, s), vma_pgoff_of(v, e), ULONG_MAX, true);
		swap_readahead(sp, s, e);
		break;
	case MADV_COLD:
		filemap_deactivate(f, vma_pgoff_of(v, s), vma_pgoff_of(v, e));
		swap_deactivate(sp, s, e);
		break;
	case MADV_PAGEOUT:
		evict_range(sp, s, e);
		break;
	}
}

static int do_madvise(struct fl_space *sp, void *addr, size_t len, int advice)
{
	unsigned long start = (unsigned long)addr, end, alen;
	struct vma_index *idx;
	int unmapped = 0;
	size_t i;

	if (!madvise_valid(advice)) {
		errno = EINVAL;
		return -1;
	}
	/* Valid for the kernel but not served by faultline (yet). */
	if (advice != MADV_DONTNEED && advice != MADV_DONTFORK && advice != MADV_DOFORK &&
	    advice != MADV_WIPEONFORK && advice != MADV_KEEPONFORK && advice != MADV_NORMAL &&
	    advice != MADV_WILLNEED && advice != MADV_COLD && advice != MADV_PAGEOUT &&
	    advice != MADV_RANDOM && advice != MADV_SEQUENTIAL) {
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
	if (advice == MADV_DONTFORK || advice == MADV_DOFORK || advice == MADV_WIPEONFORK ||
	    advice == MADV_KEEPONFORK) {
		int ret = madvise_fork(sp, start, end, advice);

		if (ret) {
			errno = -ret;
			return -1;
		}
		return 0;
	}

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
		unsigned long s = MAX(start, v->vm_start), e = MIN(end, v->vm_end);
		start = v->vm_end;
		/* Not the space's mapping any more: a hole, left alone. */
		if (space_stale_overlaps(sp, s, e)) {
			unmapped = ENOMEM;
			continue;
		}
		if (v->file) {
			madvise_file(sp, v, s, e, advice);
			continue;
		}
		if (advice == MADV_DONTNEED) {
			if (pt_zap_range(sp, s, e, true)) {
				/* Some of it was lost: all of it, in one note. */
				uffd_for_each_unregistered(sp, v->vm_start, v->vm_end,
							   mark_stale_cb, sp);
				unmapped = ENOMEM;
			}
		} else if (advice == MADV_PAGEOUT) {
			evict_range(sp, s, e);
		} else if (advice == MADV_WILLNEED) {
			swap_readahead(sp, s, e);
		} else if (advice == MADV_COLD) {
			swap_deactivate(sp, s, e);
		}
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

FL_EXPORT int fl_madvise(struct fl_space *sp, void *addr, size_t len, int advice)
{
	int ret;

	if (!space_get(sp)) {
		errno = EINVAL;
		return -1;
	}
	ret = do_madvise(sp, addr, len, advice);
	space_put(sp);
	return ret;
}

/*
 * msync(2), in mm/msync.c's order of checks and walk: a hole makes MS_ASYNC
 * fail at once and anything else go on and fail with ENOMEM at the end; a
 * write-back error of MS_SYNC ends the call.  Each part of a shared file
 * mapping is written back (MS_ASYNC too: the kernel's MS_ASYNC has nothing
 * to do because its page cache is what read(2) sees, faultline's is not),
 * and with MS_SYNC the file synced; MS_INVALIDATE drops the part's clean
 * cached pages.  No VMA of faultline is locked (no MAP_LOCKED): no EBUSY.
 */
static int do_msync(struct fl_space *sp, void *addr, size_t len, int flags)
{
	unsigned long start = (unsigned long)addr, end;
	int error = EINVAL, unmapped = 0;
	struct vma_index *idx;
	size_t i;

	if (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC))
		goto out;
	if (!PAGE_ALIGNED(start))
		goto out;
	if ((flags & MS_ASYNC) && (flags & MS_SYNC))
		goto out;
	error = ENOMEM;
	len = PAGE_ALIGN(len);
	end = start + len;
	if (end < start)
		goto out;
	error = 0;
	if (end == start)
		goto out;
	mmap_read_lock(sp);
	idx = vma_index_get(sp);
	i = vma_index_first(idx, start);
	for (;; i++) {
		struct fl_file *f;
		struct vma *v;
		unsigned long s;
		int r;

		error = ENOMEM;
		if (i >= idx->nr)
			break;
		v = idx->v[i];
		if (start < v->vm_start) {
			if (flags == MS_ASYNC)
				break;
			start = v->vm_start;
			if (start >= end)
				break;
			unmapped = ENOMEM;
		}
		s = start;
		start = v->vm_end;
		error = 0;
		if (!v->file || !(v->flags & VM_SHARED) || !flags) {
			if (start >= end)
				break;
			continue;
		}
		/* The write-back and the fdatasync() run without mmap_lock,
		 * as mm/msync.c's vfs_fsync_range() does: held through the
		 * I/O, it would stall every fault behind the first mm call
		 * that queues for it.  The reference keeps the cache. */
		f = v->file;
		file_get(f);
		s = vma_pgoff_of(v, s);
		unsigned long e = vma_pgoff_of(v, MIN(end, v->vm_end));
		mmap_read_unlock(sp);
		r = filemap_msync(sp, f, s, e, flags);
		file_put(f);
		if (r && (flags & MS_SYNC)) {
			error = -r;
			unmapped = 0;
			goto out;
		}
		if (start >= end)
			goto out;
		/* The VMAs may have changed meanwhile: look up again. */
		mmap_read_lock(sp);
		idx = vma_index_get(sp);
		i = vma_index_first(idx, start) - 1; /* the loop's i++: unsigned, may wrap to 0 */
	}
	mmap_read_unlock(sp);
out:
	if (error || unmapped) {
		errno = error ? error : unmapped;
		return -1;
	}
	return 0;
}

FL_EXPORT int fl_msync(struct fl_space *sp, void *addr, size_t len, int flags)
{
	int ret;

	if (!space_get(sp)) {
		errno = EINVAL;
		return -1;
	}
	ret = do_msync(sp, addr, len, flags);
	space_put(sp);
	return ret;
}
