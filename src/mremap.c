// SPDX-License-Identifier: MIT
/*
 * mremap: fl_mremap(), with the kernel's semantics (mm/mremap.c of 6.18):
 * shrink in place; grow in place when the range after the VMA is free;
 * otherwise, with MREMAP_MAYMOVE, move; MREMAP_FIXED moves to a given
 * address, replacing what is there; MREMAP_DONTUNMAP moves the pages and
 * leaves the old range mapped and empty.  A fixed move of the same length
 * may span several VMAs and the holes between them (6.17's remap_move()).
 * The return values and errno are the kernel's, checked in the same order.
 *
 * A move is one write section of mmap_lock, as move_vma() is:
 *
 *   1. the source VMA is write-locked (vma_start_write(): its faults in
 *      flight finish), and the store I/O in flight on its pages completes
 *      (settle_io()): from here nothing changes an entry of the range but
 *      this call;
 *   2. the destination is mapped in the kernel and registered, as fl_mmap()
 *      maps (PROT_NONE until registered), and planned as a VMA born
 *      write-locked;
 *   3. every entry moves from the old address to the new one under the two
 *      chunks' ptls (move_pages(), the kernel's move_ptes() taking the old
 *      and the new page-table lock): a resident page by UFFDIO_MOVE, its
 *      page itself changing place with no copy (copied only where the
 *      kernel refuses to move it: a read-only or PROT_NONE VMA, a page
 *      shared with a child of fork()); a swapped-out page by its entry,
 *      the slot re-addressed in the store's metadata (store_slot_move()),
 *      no I/O; a page in the swap cache by rebinding its frame; a poisoned
 *      page by its marker;
 *   4. the old range is unmapped (MREMAP_DONTUNMAP: emptied) and the layout
 *      published.
 *
 * A fault on either range meanwhile finds its VMA write-locked, falls back
 * to mmap_lock and waits for the section; it then finds the new layout.  A
 * fault parked on a frame of the old range (drop, drop-vma, mmap: they hold
 * no lock while they wait) retries at the old address, which is unmapped,
 * as the kernel's retry would be.
 */
#include "lib.h" /* first: _GNU_SOURCE for every system header */

#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "filemap.h"
#include "mmap.h"
#include "mmap_lock.h"
#include "pgtable.h"
#include "space.h"
#include "stats.h"
#include "store.h"
#include "swap.h"
#include "uffd.h"
#include "vma.h"

/* The kernel's enum mremap_type. */
enum remap_type { REMAP_NO_RESIZE, REMAP_SHRINK, REMAP_EXPAND };

/* One mremap, as the kernel's struct vma_remap_struct: the arguments, then
 * what the checks derive. */
struct remap {
	unsigned long addr, old_len, new_len, new_addr;
	unsigned long flags;
	enum remap_type type;
	int mem_fd; /* /proc/self/mem, opened when a page must be copied */
};

static bool implies_new_addr(const struct remap *r)
{
	return r->flags & (MREMAP_FIXED | MREMAP_DONTUNMAP);
}

/* check_mremap_params(): what is refused before any VMA is looked at. */
static int check_params(const struct remap *r)
{
	if (r->flags & ~(unsigned long)(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP))
		return -EINVAL;
	if (!PAGE_ALIGNED(r->addr))
		return -EINVAL;
	if (!r->new_len || r->new_len > TASK_SIZE)
		return -EINVAL;
	if (!implies_new_addr(r))
		return 0;
	if (r->new_addr > TASK_SIZE - r->new_len || !PAGE_ALIGNED(r->new_addr))
		return -EINVAL;
	if (!(r->flags & MREMAP_MAYMOVE))
		return -EINVAL;
	if ((r->flags & MREMAP_DONTUNMAP) && r->old_len != r->new_len)
		return -EINVAL;
	/* The ranges overlap. */
	if (r->new_addr < r->addr + r->old_len && r->addr < r->new_addr + r->new_len)
		return -EINVAL;
	return 0;
}

/*
 * check_prep_vma(): the checks against the VMA at r->addr.  A range that
 * needs a new mapping (a growth, or a new address) must lie inside that one
 * VMA; a shrink may span anything.  Context: mmap_lock held for write.
 */
static int check_prep(struct remap *r, const struct vma *vma)
{
	unsigned long need;

	if (!vma)
		return -EFAULT;
	r->type = r->old_len < r->new_len   ? REMAP_EXPAND
		  : r->old_len > r->new_len ? REMAP_SHRINK
					    : REMAP_NO_RESIZE;
	if (!implies_new_addr(r))
		r->new_addr = r->addr;
	if (r->type != REMAP_EXPAND && !implies_new_addr(r))
		return 0;
	/* A private mapping cannot be "duplicated" with an old length of 0; a
	 * shared one can: a second mapping of the same file pages. */
	if (!r->old_len && !(vma->flags & VM_SHARED))
		return -EINVAL;
	if (vma->file &&
	    vma_pgoff_of(vma, r->addr) + (r->new_len >> PAGE_SHIFT) < vma_pgoff_of(vma, r->addr))
		return -EINVAL;
	need = r->type == REMAP_SHRINK ? r->new_len : r->old_len;
	if (need > vma->vm_end - r->addr)
		return -EFAULT;
	return 0;
}

/* ---- moving the entries -------------------------------------------- */

/*
 * Wait until no frame of [start, end) has a read or a write in flight: a
 * completion binds a frame to its address, and must not run while the entry
 * moves.  The I/O needs none of the caller's locks (a retry it runs finds
 * mmap_lock taken and goes to a handler thread), and no new I/O starts
 * there: faults and the evictor need the VMA, which is write-locked.
 * Context: mmap_lock held for write, the range's VMAs write-locked; no ptl.
 */
static void settle_io(struct fl_space *sp, unsigned long start, unsigned long end)
{
	if (!sp->swap_on)
		return;
	for (unsigned long b = start & PT_CHUNK_MASK; b < end; b += PT_CHUNK_SIZE) {
		struct pt_chunk *c = pt_chunk_lookup(sp, b);
		unsigned int us = 20;
		bool busy;

		if (!c)
			continue;
		do {
			busy = false;
			pt_lock(c);
			for (unsigned long a = MAX(b, start);
			     a < MIN(end, b + PT_CHUNK_SIZE) && !busy; a += PAGE_SIZE) {
				uint64_t pte = READ_ONCE(c->pte[pt_index(a)]);
				struct frame *f;

				if (pte_type(pte) != PTE_FRAME)
					continue;
				f = frame_of(sp, pte);
				pthread_mutex_lock(&f->lock);
				busy = f->flags & (FRAME_LOCKED | FRAME_WRITEBACK);
				pthread_mutex_unlock(&f->lock);
			}
			pt_unlock(c);
			if (busy) {
				usleep(us);
				us = MIN(us * 2, 1000u);
			}
		} while (busy);
	}
}

/*
 * Copy the page at src to dst (registered, empty), as a page that
 * UFFDIO_MOVE would not move.  What the kernel does not have at src (a page
 * dropped behind faultline's back) is not read, which would fault into
 * faultline: its copy is zeros, what the drop left.
 * Context: both chunks' ptls held.  Return: 0 or an errno.
 */
static int copy_page(struct fl_space *sp, struct remap *r, unsigned long dst, unsigned long src,
		     bool wp)
{
	static const unsigned char zeros[PAGE_SIZE];
	unsigned char buf[PAGE_SIZE], in_core = 0;
	const void *from = zeros;
	int err = 0;

	if (!mincore((void *)src, PAGE_SIZE, &in_core) && (in_core & 1)) {
		if (r->mem_fd < 0)
			r->mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
		/* /proc/self/mem reads a PROT_NONE page too (FOLL_FORCE). */
		if (r->mem_fd < 0)
			return errno;
		if (pread(r->mem_fd, buf, PAGE_SIZE, (off_t)src) != PAGE_SIZE)
			return errno ? errno : EIO;
		from = buf;
	}
	if (uffd_copy(sp, dst, from, PAGE_SIZE, wp, &err) == PAGE_SIZE)
		return 0;
	return err;
}

/*
 * Move the resident pages [s, e) (entries PRESENT) to d: UFFDIO_MOVE where
 * the kernel takes it, one call for the run and, where it stops, page by
 * page; a page it refuses is copied.  Clean pages (PTE_WP: installed
 * write-protected from a valid swap copy) are write-protected again at d,
 * as UFFDIO_MOVE makes a page writable.
 * Context: the ptls of the chunks of [s, e) and of d held.
 * Return: 0, or the errno of a page that could be neither moved nor copied.
 */
static int move_present_run(struct fl_space *sp, struct remap *r, struct pt_chunk *cs,
			    unsigned long s, unsigned long e, unsigned long d, bool writable)
{
	unsigned long done = 0, len = e - s;
	int err = 0;

	if (writable)
		done = uffd_move(sp, d, s, len, &err);
	count_event_n(sp, remap_moved, done >> PAGE_SHIFT);
	for (unsigned long off = done; off < len; off += PAGE_SIZE) {
		uint64_t pte = READ_ONCE(cs->pte[pt_index(s + off)]);

		if (writable && uffd_move(sp, d + off, s + off, PAGE_SIZE, &err) == PAGE_SIZE) {
			count_event(sp, remap_moved);
			continue;
		}
		err = copy_page(sp, r, d + off, s + off, pte & PTE_WP);
		if (err)
			return err;
		count_event(sp, remap_copied);
	}
	/* UFFDIO_MOVE drops the write protection: the clean pages get it back. */
	for (unsigned long a = s; a < e;) {
		unsigned long b = a;

		while (b < e && (READ_ONCE(cs->pte[pt_index(b)]) & PTE_WP))
			b += PAGE_SIZE;
		if (b > a)
			uffd_writeprotect(sp, d + (a - s), b - a, true);
		a = b == a ? a + PAGE_SIZE : b;
	}
	return 0;
}

/*
 * Move the entries of [s, e), all in chunk cs, to d, all in chunk cd: the
 * kernel's move_ptes().  Context: cs's and cd's ptls held, the source VMA
 * write-locked and its I/O settled.  Return: 0 or an errno (a page neither
 * moved nor copied: the mapping is out of memory).
 */
static int move_segment(struct fl_space *sp, struct remap *r, struct pt_chunk *cs,
			struct pt_chunk *cd, unsigned long s, unsigned long e, unsigned long d,
			bool writable)
{
	for (unsigned long a = s; a < e;) {
		uint64_t pte = READ_ONCE(cs->pte[pt_index(a)]);
		unsigned long da = d + (a - s), b;
		struct frame *f;
		int err;

		switch (pte_type(pte)) {
		case PTE_NONE:
			if (pte & PTE_POISON) {
				/* If the marker cannot be set now, a fault on the
				 * entry sets it (handle_mm_fault()). */
				WRITE_ONCE(cd->pte[pt_index(da)], pte);
				uffd_poison(sp, da, PAGE_SIZE);
			}
			break;
		case PTE_SWAP:
			WRITE_ONCE(cd->pte[pt_index(da)], pte);
			store_slot_move(&sp->dev.store, pte_value(pte), da);
			break;
		case PTE_FRAME:
			f = frame_of(sp, pte);
			pthread_mutex_lock(&f->lock);
			FL_DEBUG_BUG_ON(f->flags & (FRAME_LOCKED | FRAME_WRITEBACK));
			f->addr = da;
			f->chunk = cd;
			if (f->slot != SWAP_NO_SLOT)
				store_slot_move(&sp->dev.store, f->slot, da);
			pthread_mutex_unlock(&f->lock);
			WRITE_ONCE(cd->pte[pt_index(da)], pte);
			break;
		case PTE_PRESENT:
			for (b = a + PAGE_SIZE;
			     b < e && pte_type(READ_ONCE(cs->pte[pt_index(b)])) == PTE_PRESENT;
			     b += PAGE_SIZE)
				;
			err = move_present_run(sp, r, cs, a, b, da, writable);
			if (err)
				return err;
			for (; a < b; a += PAGE_SIZE, da += PAGE_SIZE) {
				uint64_t p = READ_ONCE(cs->pte[pt_index(a)]);

				if (p & PTE_WP)
					store_slot_move(&sp->dev.store, pte_value(p), da);
				WRITE_ONCE(cd->pte[pt_index(da)], p);
				WRITE_ONCE(cs->pte[pt_index(a)], PTE_NONE);
				cs->nr_present--;
				cd->nr_present++;
			}
			continue;
		}
		WRITE_ONCE(cs->pte[pt_index(a)], PTE_NONE);
		a += PAGE_SIZE;
	}
	return 0;
}

/* The chunk of addr, created if need be; memory for it is retried, as a
 * layout's is.  Context: mmap_lock held. */
static struct pt_chunk *chunk_get_retry(struct fl_space *sp, unsigned long addr)
{
	for (int tries = 0;; tries++) {
		struct pt_chunk *c = pt_chunk_get(sp, addr);

		if (c || tries == 20)
			return c;
		usleep(1000);
	}
}

/*
 * Move the entries of [src, src + len) to dst: move_page_tables().  Each
 * step covers one source chunk and one destination chunk, whose ptls are
 * taken in address order (one, if it is the same chunk).
 * Context: mmap_lock held for write; the source VMA write-locked and its
 * I/O settled; the destination mapped, registered and empty.
 * Return: 0 or an errno (out of memory).
 */
static int move_pages(struct fl_space *sp, struct remap *r, unsigned long src, unsigned long dst,
		      unsigned long len, bool writable)
{
	for (unsigned long s = src, next; s < src + len; s = next) {
		unsigned long d = dst + (s - src);
		struct pt_chunk *cs, *cd, *first, *second;
		int err;

		next = MIN(src + len, (s & PT_CHUNK_MASK) + PT_CHUNK_SIZE);
		next = MIN(next, s + ((d & PT_CHUNK_MASK) + PT_CHUNK_SIZE - d));
		cs = pt_chunk_lookup(sp, s);
		if (!cs)
			continue; /* no entry, so no page either */
		cd = chunk_get_retry(sp, d);
		if (!cd)
			return ENOMEM;
		first = cs->base <= cd->base ? cs : cd;
		second = first == cs ? cd : cs;
		pt_lock(first);
		if (second != first)
			pt_lock(second);
		err = move_segment(sp, r, cs, cd, s, next, d, writable);
		if (second != first)
			pt_unlock(second);
		pt_unlock(first);
		if (err)
			return err;
	}
	return 0;
}

/* ---- the mappings ------------------------------------------------------ */

/* The kernel mapping's flags for more of vma: anonymous, or the file's
 * cache (its memfd) shared or private. */
static int kflags_of(const struct vma *vma)
{
	int type = !vma->file		    ? MAP_PRIVATE | MAP_ANONYMOUS
		   : vma->flags & VM_SHARED ? MAP_SHARED
					    : MAP_PRIVATE;

	return type | (vma->flags & VM_NORESERVE ? MAP_NORESERVE : 0) |
	       (vma->flags & VM_STACK ? MAP_STACK : 0);
}

/*
 * Map and register the destination of a move, [*dst, *dst + len), with
 * vma's protection, flags and file (from page pgoff on: the file's pages
 * are not moved, they are in its cache, and fault in at the new address),
 * and plan it as one VMA (not yet published): at *dst
 * replacing what is there (fixed), else where the kernel puts it (*dst a
 * hint, or 0).  As fl_mmap() maps: PROT_NONE until registered, the claim
 * checked and made in the same step as the kernel's mmap, under claim_lock.
 * Context: mmap_lock held for write.  Return: 0 with the claim made and l
 * prepared (the caller commits l, then calls space_claim_done()), or a
 * negative errno with nothing changed.
 */
static int map_destination(struct fl_space *sp, unsigned long *dst, unsigned long len,
			   const struct vma *vma, unsigned long pgoff, bool fixed, struct layout *l)
{
	struct seg seg = {*dst, *dst + len, vma->prot, vma->flags, vma->file, pgoff};
	int kflags = kflags_of(vma), dontfork_err = 0, ret = 0, prot = vma->prot;
	int fd = vma->file ? vma->file->memfd : -1;
	unsigned long off = pgoff << PAGE_SHIFT;
	void *p;

	if (fixed) {
		/* What the mapping replaces is written back and write-locked
		 * first: its faults in flight finish before the kernel's
		 * mapping changes. */
		writeback_replaced(sp, seg.start, seg.end);
		ret = layout_prepare_retry(sp, seg.start, seg.end, &seg, 1, true, l);
		if (ret)
			return ret;
		claim_lock_acquire();
		ret = space_claim_locked(sp, seg.start, seg.end, true);
		p = MAP_FAILED;
		if (!ret) {
			p = mmap_dontfork((void *)*dst, len, PROT_NONE, kflags | MAP_FIXED, fd, off,
					  region_fork_advice(sp, vma->file, vma->flags),
					  &dontfork_err);
			if (p == MAP_FAILED)
				ret = -errno;
		}
		if (ret)
			sp->claim_start = sp->claim_end = 0;
		claim_lock_release();
		if (ret) {
			layout_abort(sp, l);
			return ret;
		}
	} else {
		claim_lock_acquire();
		p = mmap_dontfork((void *)*dst, len, PROT_NONE, kflags, fd, off,
				  region_fork_advice(sp, vma->file, vma->flags), &dontfork_err);
		ret = p == MAP_FAILED ? -errno : 0;
		if (!ret)
			space_claim_locked(sp, (unsigned long)p, (unsigned long)p + len, false);
		claim_lock_release();
		if (ret)
			return ret;
		seg.start = (unsigned long)p;
		seg.end = seg.start + len;
		ret = layout_prepare_retry(sp, seg.start, seg.end, &seg, 1, false, l);
		if (ret) {
			munmap(p, len);
			space_claim_done(sp);
			return ret;
		}
	}
	*dst = seg.start;
	ret = dontfork_err ? -dontfork_err : uffd_register(sp, seg.start, len, vma->file != NULL);
	if (!ret && prot && mprotect(p, len, prot))
		ret = -errno;
	if (ret) {
		fl_log("mremap: registering %#lx-%#lx failed: %s", seg.start, seg.end,
		       strerror(-ret));
		layout_abort(sp, l);
		munmap(p, len);
		pt_zap_range(sp, seg.start, seg.end, false);
		if (fixed) /* what was there is gone */
			layout_force(sp, seg.start, seg.end, NULL, 0, true);
		pt_free_unused(sp, seg.start, seg.end);
		space_claim_done(sp);
		return -ENOMEM;
	}
	/* Pages of what was there before went with the old mapping. */
	pt_zap_range(sp, seg.start, seg.end, false);
	return 0;
}

/*
 * move_vma(): [r->addr, r->addr + r->old_len), inside vma, to a new mapping
 * of r->new_len bytes at r->new_addr (MREMAP_FIXED), near it (a hint, with
 * MREMAP_DONTUNMAP alone) or where the kernel puts it.  The steps at the
 * top of this file.  Context: mmap_lock held for write.
 * Return: the new address, or a negative errno.
 */
static long move_vma(struct fl_space *sp, struct remap *r, struct vma *vma)
{
	unsigned long src = r->addr, len = r->old_len, dst = r->new_addr;
	bool dontunmap = r->flags & MREMAP_DONTUNMAP;
	int prot = vma->prot;
	unsigned long pgoff = vma->file ? vma_pgoff_of(vma, src) : 0;
	struct layout l;
	int ret;

	vma_start_write(vma);
	settle_io(sp, src, src + len);
	if (!(r->flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)))
		dst = 0;
	ret = map_destination(sp, &dst, r->new_len, vma, pgoff, r->flags & MREMAP_FIXED, &l);
	if (ret)
		return ret;
	/*
	 * The pages cannot fail to move but for want of memory for a chunk
	 * (retried) or a copy: then the space cannot stay true to the
	 * kernel, and stops, as layout_force() does.
	 */
	/* UFFDIO_MOVE moves anonymous pages only: a file mapping's private
	 * copies are copied. */
	ret = move_pages(sp, r, src, dst, len, (prot & PROT_WRITE) && !vma->file);
	if (ret)
		fl_log("mremap: moving %#lx-%#lx to %#lx failed: %s", src, src + len, dst,
		       strerror(ret));
	FL_BUG_ON(ret);
	layout_commit(sp, &l);
	space_claim_done(sp);
	if (!len) {
		/* A duplicate of a shared mapping (old length 0): the old
		 * range stays as it is. */
	} else if (dontunmap) {
		/* The old range stays, empty: what the moves left there (zero
		 * pages, poison markers) goes. */
		madvise((void *)src, len, MADV_DONTNEED);
	} else {
		munmap((void *)src, len);
		layout_force(sp, src, src + len, NULL, 0, true);
		pt_free_unused(sp, src, src + len);
	}
	return (long)dst;
}

/*
 * vma_expandable() and expand_vma_in_place(): grow vma by delta at its end,
 * if the kernel has nothing there.  Context: mmap_lock held for write.
 * Return: 0, or a negative errno (the range is taken, or out of memory:
 * the caller moves instead, or fails).
 */
static int expand_in_place(struct fl_space *sp, struct vma *vma, unsigned long delta)
{
	unsigned long end = vma->vm_end;
	unsigned long pgoff = vma->file ? vma_pgoff_of(vma, end) : 0;
	struct seg seg = {end, end + delta, vma->prot, vma->flags, vma->file, pgoff};
	int dontfork_err = 0, ret;
	struct layout l;
	void *p;

	if (end + delta < end || end + delta > TASK_SIZE)
		return -ENOMEM;
	ret = layout_prepare_retry(sp, seg.start, seg.end, &seg, 1, false, &l);
	if (ret)
		return ret;
	claim_lock_acquire();
	p = mmap_dontfork((void *)end, delta, PROT_NONE, kflags_of(vma) | MAP_FIXED_NOREPLACE,
			  vma->file ? vma->file->memfd : -1, pgoff << PAGE_SHIFT,
			  region_fork_advice(sp, vma->file, vma->flags), &dontfork_err);
	ret = p == MAP_FAILED ? -errno : 0;
	if (!ret && p != (void *)end) { /* a kernel without MAP_FIXED_NOREPLACE */
		munmap(p, delta);
		ret = -EEXIST;
	}
	if (!ret)
		space_claim_locked(sp, seg.start, seg.end, false);
	claim_lock_release();
	if (ret) {
		layout_abort(sp, &l);
		return ret;
	}
	ret = dontfork_err ? -dontfork_err : uffd_register(sp, seg.start, delta, vma->file != NULL);
	if (!ret && vma->prot && mprotect(p, delta, vma->prot))
		ret = -errno;
	if (ret) {
		layout_abort(sp, &l);
		munmap(p, delta);
		space_claim_done(sp);
		return ret;
	}
	pt_zap_range(sp, seg.start, seg.end, false);
	layout_commit(sp, &l);
	space_claim_done(sp);
	return 0;
}

/* mremap_to(): a move to a new address (MREMAP_FIXED or MREMAP_DONTUNMAP). */
static long remap_to(struct fl_space *sp, struct remap *r, struct vma *vma)
{
	int ret;

	if (r->flags & MREMAP_FIXED) {
		/* Another space's range is refused before anything changes,
		 * as fl_mmap() refuses it. */
		claim_lock_acquire();
		ret = space_claim_locked(sp, r->new_addr, r->new_addr + r->new_len, true);
		sp->claim_start = sp->claim_end = 0;
		claim_lock_release();
		if (ret)
			return ret;
	}
	if (r->type == REMAP_SHRINK) {
		ret = munmap_locked(sp, r->addr + r->new_len, r->addr + r->old_len);
		if (ret)
			return ret;
		r->old_len = r->new_len;
		vma = vma_lookup(sp, r->addr);
		if (!vma)
			return -EFAULT;
	}
	return move_vma(sp, r, vma);
}

/* mremap_at(): no new address asked for. */
static long remap_at(struct fl_space *sp, struct remap *r, struct vma *vma)
{
	int ret;

	switch (r->type) {
	case REMAP_NO_RESIZE:
		return (long)r->addr;
	case REMAP_SHRINK:
		ret = munmap_locked(sp, r->addr + r->new_len, r->addr + r->old_len);
		return ret ? ret : (long)r->addr;
	case REMAP_EXPAND:
		break;
	}
	if (vma->vm_end - r->addr == r->old_len &&
	    !expand_in_place(sp, vma, r->new_len - r->old_len))
		return (long)r->addr;
	if (!(r->flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	return move_vma(sp, r, vma);
}

/*
 * remap_move(): a fixed move of the same length, over every VMA of the
 * range, each to the same offset from the start (so the holes between
 * them stay holes); a hole at the start is EFAULT.  Context: mmap_lock held
 * for write.  Return: the new address of the first, or a negative errno
 * (the VMAs moved before it stay moved, as in the kernel).
 */
static long remap_move(struct fl_space *sp, struct remap *r)
{
	unsigned long start = r->addr, end = r->addr + r->old_len, cur = start;
	unsigned long target = r->new_addr, last_end = 0;
	long res = -EFAULT;
	bool seen = false;

	for (;;) {
		struct vma_index *idx = vma_index_get(sp);
		size_t i = vma_index_first(idx, cur);
		struct remap sub = *r;
		struct vma *vma;
		unsigned long a, offset;
		long ret;

		if (i >= idx->nr || idx->v[i]->vm_start >= end)
			break;
		vma = idx->v[i];
		if (!seen && start < vma->vm_start)
			return -EFAULT;
		/* With MREMAP_DONTUNMAP the VMA just moved is still there. */
		a = MAX(vma->vm_start, cur);
		if (a >= end)
			break;
		offset = seen ? vma->vm_start - last_end : 0;
		last_end = vma->vm_end;
		sub.addr = a;
		sub.old_len = sub.new_len = MIN(end, vma->vm_end) - a;
		sub.new_addr = target + offset;
		ret = check_prep(&sub, vma);
		if (!ret)
			ret = remap_to(sp, &sub, vma);
		r->mem_fd = sub.mem_fd;
		if (ret < 0)
			return ret;
		if (!seen)
			res = ret;
		seen = true;
		target = (unsigned long)ret + sub.new_len;
		cur = a + sub.old_len;
	}
	return res;
}

static long do_mremap(struct fl_space *sp, struct remap *r)
{
	struct vma *vma;
	long ret;

	r->old_len = PAGE_ALIGN(r->old_len);
	r->new_len = PAGE_ALIGN(r->new_len);
	ret = check_params(r);
	if (ret)
		return ret;
	mmap_write_lock(sp);
	/* A part that is not the space's mapping any more is a hole now. */
	if (r->old_len)
		find_stale(sp, r->addr, r->addr + r->old_len);
	drop_stale(sp);
	if ((r->flags & MREMAP_FIXED) && r->old_len == r->new_len) {
		ret = remap_move(sp, r);
	} else {
		vma = vma_lookup(sp, r->addr);
		ret = check_prep(r, vma);
		if (!ret)
			ret = implies_new_addr(r) ? remap_to(sp, r, vma) : remap_at(sp, r, vma);
	}
	filemap_unmapped(sp); /* the caches of files no longer mapped */
	mmap_write_unlock(sp);
	return ret;
}

/*
 * mremap(2) on the space's memory.  new_address is read when flags has
 * MREMAP_FIXED or MREMAP_DONTUNMAP, as the kernel reads it.
 * Return: as mremap(2): the mapping's address, or MAP_FAILED with errno.
 */
FL_EXPORT void *fl_mremap(struct fl_space *sp, void *old_address, size_t old_size, size_t new_size,
			  int flags, ...)
{
	struct remap r = {.addr = (unsigned long)old_address,
			  .old_len = old_size,
			  .new_len = new_size,
			  .flags = (unsigned int)flags,
			  .mem_fd = -1};
	long ret;

	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
		va_list ap;

		va_start(ap, flags);
		r.new_addr = (unsigned long)va_arg(ap, void *);
		va_end(ap);
	}
	if (!space_get(sp)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	ret = do_mremap(sp, &r);
	space_put(sp);
	if (r.mem_fd >= 0)
		close(r.mem_fd);
	if (ret < 0) {
		errno = (int)-ret;
		return MAP_FAILED;
	}
	return (void *)ret;
}
