/* SPDX-License-Identifier: MIT */
/*
 * The touch log (touchlog.c): every fault of the space, as (page address,
 * read or write, thread, time), appended to an mmap'd array from the fault
 * path, for `faultline run --record` (tools/run_record.c), which keeps the
 * first read and the first write of each page.  Off unless started: the
 * fault path then pays one predictable branch.
 */
#ifndef FL_TOUCHLOG_H
#define FL_TOUCHLOG_H

#include "lib.h"

struct fl_space;

struct touch_ent {
	uint64_t page; /* page address; bit 0 set: a write */
	uint64_t t_ns; /* fl_now_ns() when the fault began; 0: not written yet */
	int32_t tid;   /* the faulting thread */
	uint32_t pad;
};

struct touch_log {
	struct touch_ent *ent; /* cap of them, mmap'd */
	size_t cap;
	_Atomic size_t n; /* entries claimed (may exceed cap: dropped) */
	_Atomic bool on;
};

/* The faulting thread of the fault a handler thread is serving (thread
 * delivery: the message's ptid); 0 outside. */
extern __thread pid_t touch_fault_tid;

int touch_log_start(struct fl_space *sp, size_t cap);
void touch_log_stop(struct fl_space *sp);
size_t touch_log_entries(struct fl_space *sp, const struct touch_ent **out, size_t *dropped);
void touch_log_fault(struct fl_space *sp, unsigned long addr, unsigned int flags);
void touch_log_destroy(struct fl_space *sp);

#endif /* FL_TOUCHLOG_H */
