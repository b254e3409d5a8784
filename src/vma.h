/* SPDX-License-Identifier: MIT */
/*
 * VMAs, the per-VMA lock and the RCU-safe VMA index (vma.c).
 *
 * A VMA is immutable once published in the index, apart from its lock state
 * and its fault-around and readahead hints: a change of range or protection
 * publishes new VMA objects and detaches the old ones (all under mmap_lock
 * held for write, after vma_start_write() on each old one).  So a thread
 * that holds the VMA's read lock, or mmap_lock, or that found it under
 * rcu_read_lock, may read vm_start/vm_end/prot/flags plainly.
 */
#ifndef FL_VMA_H
#define FL_VMA_H

#include "lib.h"
#include "rwsem.h"

#define VM_NORESERVE 0x1UL
#define VM_STACK 0x2UL
#define VM_SHARED 0x4UL	     /* a MAP_SHARED mapping of a file */
#define VM_MAYWRITE 0x8UL    /* a shared mapping may be made writable (the file's mode) */
#define VM_DONTFORK 0x10UL   /* MADV_DONTFORK: not in a child of fork() (fork.c) */
#define VM_WIPEONFORK 0x20UL /* MADV_WIPEONFORK: zero-filled in a child of fork() */

/* Sequential first-touch streams remembered per VMA (threads filling their
 * own parts of one VMA), as readahead keeps per-stream state. */
#define FA_STREAMS 4

struct vma {
	unsigned long vm_start; /* immutable */
	unsigned long vm_end;	/* immutable, exclusive */
	int prot;		/* immutable: PROT_* */
	unsigned long flags;	/* immutable: VM_* */
	struct fl_space *sp;	/* immutable */
	/* A file mapping: its page cache (a reference held until the VMA is
	 * freed) and the page of the file at vm_start.  NULL: anonymous. */
	struct fl_file *file; /* immutable */
	unsigned long pgoff;  /* immutable */

	/*
	 * vm_lock: held for read by a fault that runs under this VMA (perhaps
	 * parked on I/O, released by its completion); taken for write (and at
	 * once released) by vma_start_write() to wait for them.  A waiting
	 * writer makes read trylocks fail, as down_read_trylock fails on an
	 * rwsem with waiters (rwsem.h).  Nests inside mmap_lock.
	 */
	struct rwsem vm_lock;
	/*
	 * vm_lock_seq == mm_lock_seq: write-locked in the current write
	 * section.  Written with mmap_lock held for write; read unlocked by
	 * vma_start_read() (RELEASE/ACQUIRE pairs noted there).
	 */
	_Atomic unsigned int vm_lock_seq;
	/* Set once, with the VMA write-locked, when it leaves the index. */
	_Atomic bool detached;

	/* Fault-around hints: written by faults under the VMA's read lock or
	 * mmap_lock, racy by design, relaxed atomics. */
	_Atomic unsigned long fa_next[FA_STREAMS];
	_Atomic unsigned int fa_window[FA_STREAMS];
	_Atomic unsigned int fa_victim;
	/* Swap readahead: where the last major fault's stream goes on, and
	 * its window in pages (racy hints, relaxed atomics). */
	_Atomic unsigned long ra_next;
	_Atomic unsigned int ra_window;

	struct rcu_head rcu;
};

/*
 * The index: a sorted array of VMA pointers, replaced whole (copy on write)
 * under mmap_lock held for write and published with a release store;
 * readers look up with a binary search under rcu_read_lock or mmap_lock.
 * Freed after a grace period.  Lookup is O(log n); a change is O(n), which is
 * fine at the VMA counts a process has (the kernel's limit is 65530).
 */
struct vma_index {
	size_t nr;
	struct rcu_head rcu;
	struct vma *v[];
};

struct vma *vma_alloc(struct fl_space *sp, unsigned long start, unsigned long end, int prot,
		      unsigned long flags, struct fl_file *file, unsigned long pgoff);
void vma_free_rcu(struct vma *vma);

bool vma_start_read(struct vma *vma);
void vma_end_read(struct vma *vma);
void vma_handoff(struct vma *vma);
void vma_adopt(struct vma *vma);
void vma_start_write(struct vma *vma);
void vma_end_write_all(struct fl_space *sp);
bool vma_is_write_locked(struct vma *vma);
#define vma_assert_write_locked(vma) FL_DEBUG_BUG_ON(!vma_is_write_locked(vma))
bool vma_is_read_locked_by_me(struct vma *vma);
#define vma_assert_read_locked(vma) FL_DEBUG_BUG_ON(!vma_is_read_locked_by_me(vma))

struct vma *lock_vma_under_rcu(struct fl_space *sp, unsigned long addr);
struct vma *vma_trylock_at(struct fl_space *sp, unsigned long addr);
struct vma *vma_lookup(struct fl_space *sp, unsigned long addr);

struct vma_index *vma_index_new(size_t nr);
struct vma_index *vma_index_get(struct fl_space *sp);
size_t vma_index_first(struct vma_index *idx, unsigned long addr);
struct vma_index *vma_index_build(struct vma_index *old, size_t lo, size_t hi, struct vma **nv,
				  size_t n);
void vma_index_publish(struct fl_space *sp, struct vma_index *idx);

#endif /* FL_VMA_H */
