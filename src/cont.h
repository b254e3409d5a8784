/* SPDX-License-Identifier: MIT */
/*
 * Parked faults (cont.c): the continuation of a fault that waits for a
 * frame's read, and the handler threads' retry queue.  The kernel's
 * sleeping fault, expressed so that a handler thread never sleeps on I/O
 * that is not its own fault's.
 */
#ifndef FL_CONT_H
#define FL_CONT_H

#include "lib.h"

#include "fault.h"

struct frame;
struct fl_file;

/* What a fault keeps while it waits, and so how it goes on (the policy:
 * frame_lock_or_retry() in fault.c chooses). */
enum cont_action {
	CONT_INSTALL,	 /* hold: it keeps its VMA read lock; finish under it */
	CONT_RETRY_VMA,	 /* drop-vma: take the VMA lock again, else mmap_lock */
	CONT_RETRY_MMAP, /* mmap, bail, drop: retry under mmap_lock */
};

struct waiter {
	/* The fault to finish; vmf.vma is kept only with CONT_INSTALL (its
	 * read lock is the waiter's). */
	struct vm_fault vmf;
	struct frame *frame;  /* what it waits for: a frame's read, or */
	struct fl_file *file; /* page idx of a file unlocked (a reference) */
	unsigned long idx;
	enum cont_action action;
	uint64_t t_park;       /* parked (or queued) since; 0: accounted */
	struct waiter *next;   /* f->lock: the frame's waiters; or its page's wait queue */
	struct waiter *qnext;  /* retry_lock: the retry queue */
	_Atomic uint32_t done; /* on_stack: futex word, set at the read's completion */
	bool on_stack;	       /* a sleeping thread's: sigbus, or a handler's own read */
	bool self_done;	       /* on_stack: that thread completes the read itself */
	bool pinned;	       /* holds a pin on frame */
};

int cont_init(struct fl_space *sp);
void cont_destroy(struct fl_space *sp);
void own_read_end(struct fl_space *sp);
void cont_run_list(struct waiter *w);
extern _Atomic unsigned int fl_test_own_read_delay_us;
int fault_park(struct vm_fault *vmf, struct frame *f, enum cont_action action, bool own_read);
int fault_sleep(struct vm_fault *vmf, struct frame *f, enum cont_action action, bool own_read);
bool sync_read_get(struct fl_space *sp);
void sync_read_put(struct fl_space *sp);
/* How many synchronous reads this thread was allowed (sync_read_get()). */
extern FL_TLS unsigned long sync_reads_taken;
void waiter_wake(struct waiter *w);
void run_retry_queue(struct fl_space *sp);

/* fault_park_page(): the page was unlocked before the fault could park on
 * it: nothing done, the fault's lock still held; try the page again. */
#define PARK_UNLOCKED (-1)
int fault_park_page(struct vm_fault *vmf, struct fl_file *f, unsigned long idx,
		    enum cont_action action);
void page_wake(struct fl_file *f, unsigned long idx);
void cont_fork_child(void);
void cont_collect_begin(void);
void cont_collect_run(void);

#endif /* FL_CONT_H */
