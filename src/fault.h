/* SPDX-License-Identifier: MIT */
/*
 * The fault path (fault.c): do_user_addr_fault() and handle_mm_fault().
 *
 * A fault carries its state down the path in one struct vm_fault, as the
 * kernel's does.  It holds exactly one of two locks: its VMA's read lock
 * (FAULT_FLAG_VMA_LOCK) or mmap_lock for read; under it, the ptls it needs.
 * Waiting for a frame's read is decided in one place, frame_lock_or_retry();
 * a fault that waits becomes a continuation (cont.h).
 */
#ifndef FL_FAULT_H
#define FL_FAULT_H

#include "lib.h"

#define FAULT_FLAG_WRITE 0x01
#define FAULT_FLAG_VMA_LOCK 0x02 /* under vmf->vma's read lock, not mmap_lock */
#define FAULT_FLAG_TRIED 0x04	 /* a retry */
#define FAULT_FLAG_SIGBUS 0x08	 /* resolved in the faulting thread */
#define FAULT_FLAG_WP 0x10	 /* a write-protect fault message */
#define FAULT_FLAG_CONT 0x20	 /* the rest of a parked fault: already counted */
/* Thread delivery: a handler thread with no other message pending may read
 * its fault's page itself (sync_read_get), if another handler is free. */
#define FAULT_FLAG_MAY_SYNC 0x40
/* A retry at I/O completion: take mmap_lock only if it is free. */
#define FAULT_FLAG_NOWAIT 0x80
/* In a file VMA: its vma_lock_* outcome counts in file_vma_lock_* too. */
#define FAULT_FLAG_FILE 0x100
/* Thread delivery: a fault message, read when sp->evictions was
 * vmf->msg_epoch (fault_msg_stale()). */
#define FAULT_FLAG_MSG 0x200

/*
 * Results.  RETRY and PARKED: the fault's lock is no longer the caller's
 * (released for the retry; kept or released by a continuation, which
 * finishes the fault, or has finished it if this thread slept).
 */
#define VM_FAULT_RETRY 0x01    /* the fault lock has been released: retry */
#define VM_FAULT_PARKED 0x02   /* a continuation owns the rest of the fault */
#define VM_FAULT_SIGSEGV 0x04  /* no VMA or protection mismatch */
#define VM_FAULT_NOPAGE 0x08   /* nothing installed (let the access retry) */
#define VM_FAULT_HWPOISON 0x10 /* the page is poisoned */
#define VM_FAULT_LOCKBUSY 0x20 /* FAULT_FLAG_NOWAIT: mmap_lock busy, nothing done */
#define VM_FAULT_SIGBUS 0x40   /* past the end of a mapped file */
/* Under mmap_lock: released for a wait (a file fault's first try), and the
 * fault goes on with a retry under it (fault_retry_mmap()). */
#define VM_FAULT_RETRY_MMAP 0x80
/* Not a result: do_file_fault() and do_present_missing() telling
 * handle_mm_fault() that the kernel has the present page, so the fault goes
 * on to do_wp_page().  A bit of its own: any result of theirs, a released
 * lock's VM_FAULT_RETRY above all, must not read as it. */
#define VM_FAULT_GO_WP 0x100

struct fl_space;
struct vma;
struct pt_chunk;
struct frame;

struct vm_fault {
	struct fl_space *sp;
	/* With FAULT_FLAG_VMA_LOCK read-locked; else found under mmap_lock. */
	struct vma *vma;
	unsigned long address;	/* the faulting page */
	unsigned int flags;	/* FAULT_FLAG_* */
	struct pt_chunk *chunk; /* the page's chunk; NULL if it has none yet */
	uint64_t orig_pte;	/* the entry handle_mm_fault() dispatched on */
	uint64_t t0;		/* when the fault began: fault_ns */
	uint32_t msg_epoch;	/* FAULT_FLAG_MSG: evictions at the message's read */
};

bool access_error(struct vma *vma, unsigned int flags);
int fl_handle_fault(struct fl_space *sp, unsigned long addr, unsigned int flags);
int fl_handle_fault_msg(struct fl_space *sp, unsigned long addr, unsigned int flags,
			uint32_t epoch);
int handle_mm_fault(struct vm_fault *vmf);
int handle_fault_vma_locked(struct vm_fault *vmf);
int fault_retry_mmap(struct vm_fault *vmf);
void fault_done(struct vm_fault *vmf, int ret);
int install_from_frame(struct fl_space *sp, struct pt_chunk *c, unsigned long page,
		       struct frame *f);

#endif /* FL_FAULT_H */
