/* SPDX-License-Identifier: MIT */
/*
 * The write-section steps of the mm calls (mmap.c), shared with mprotect.c,
 * madvise.c and mremap.c:
 * a layout change is planned (layout_prepare_retry()), the kernel's
 * mappings are changed, and the plan is published (layout_commit()); the
 * header of mmap.c tells the shape.  Every function here expects mmap_lock
 * held for write.
 */
#ifndef FL_MMAP_H
#define FL_MMAP_H

#include "lib.h"

/* x86-64 with 4-level page tables; hints above it are the kernel's business. */
#define TASK_SIZE ((1UL << 47) - PAGE_SIZE)
#define PROT_ALL (PROT_READ | PROT_WRITE | PROT_EXEC)

/* The space's own parts of [start, end), for syscalls that must not touch
 * foreign mappings.  Context: mmap_lock held. */
#define for_each_vma_part(sp, idx, i, start, end, ps, pe)                                          \
	for (i = vma_index_first(idx, start); i < (idx)->nr && (idx)->v[i]->vm_start < (end); i++) \
		if ((ps = MAX((idx)->v[i]->vm_start, start)),                                      \
		    (pe = MIN((idx)->v[i]->vm_end, end)), 1)

struct fl_file;
struct fl_space;
struct vma;
struct vma_index;

struct seg {
	unsigned long start, end;
	int prot;
	unsigned long flags;
	struct fl_file *file; /* a file mapping, with the page at start */
	unsigned long pgoff;
};

struct layout {
	size_t lo, hi;	 /* index window replaced */
	struct vma **nv; /* the window's new VMAs */
	size_t n;
	bool *fresh;	   /* per new VMA: allocated by this plan */
	struct vma **gone; /* old VMAs that leave the index */
	size_t ngone;
	struct vma_index *idx; /* the new index, published by commit */
	long mapped_delta;
};

int layout_prepare_retry(struct fl_space *sp, unsigned long start, unsigned long end,
			 const struct seg *segs, size_t nsegs, bool replace, struct layout *l);
void layout_commit(struct fl_space *sp, struct layout *l);
void layout_abort(struct fl_space *sp, struct layout *l);
void layout_force(struct fl_space *sp, unsigned long start, unsigned long end,
		  const struct seg *segs, size_t nsegs, bool replace);
unsigned long vm_flags_of(int flags);
void adopt_kernel_pages(struct fl_space *sp, unsigned long start, unsigned long end);
void find_stale(struct fl_space *sp, unsigned long start, unsigned long end);
void mark_stale_cb(unsigned long start, unsigned long end, void *arg);
void drop_stale(struct fl_space *sp);
void *mmap_dontfork(void *addr, size_t len, int prot, int kflags, int fd, unsigned long off,
		    int fork_advice, int *dontfork_err);
int region_fork_advice(struct fl_space *sp, bool file, unsigned long vm_flags);
struct seg seg_of(const struct vma *v, unsigned long start, unsigned long end);
int madvise_fork(struct fl_space *sp, unsigned long start, unsigned long end, int advice);
void writeback_replaced(struct fl_space *sp, unsigned long start, unsigned long end);
int munmap_locked(struct fl_space *sp, unsigned long start, unsigned long end);

#endif /* FL_MMAP_H */
