/* SPDX-License-Identifier: MIT */
/*
 * Working sets of mapped files (workingset.c): record the order in which
 * faults first touch the pages of mapped files (FAULTLINE_WS_RECORD), and
 * on a later run read them into the page cache in that order, in the
 * background, while the program runs (FAULTLINE_WS_REPLAY): the snapshot
 * restore of Firecracker, QEMU postcopy or CRIU lazy pages, where most
 * first touches then find their page cached.
 *
 * A page is named by its file's (st_dev, st_ino) and its index: a replay
 * applies to the same file (a copy of the snapshot is another inode).
 */
#ifndef FL_WORKINGSET_H
#define FL_WORKINGSET_H

#include "lib.h"

#include "worker.h"

struct fl_space;
struct fl_file;

struct ws_entry {
	uint64_t dev, ino;
	unsigned long pgoff;
};

struct ws_state {
	/* Record: entries appended by faults (any thread, the SIGBUS handler
	 * too: an mmap'd array and an atomic index, no lock), written to
	 * record_path at destroy. */
	char *record_path;
	struct ws_entry *rec;
	size_t rec_cap;
	_Atomic size_t rec_n;
	/* Replay: the recorded order, and how far the replayer got (its own). */
	struct ws_entry *plan;
	size_t plan_n, next;
	struct fl_worker replayer;
};

int ws_init(struct fl_space *sp);
void ws_destroy(struct fl_space *sp);
void ws_record_fault(struct fl_space *sp, struct fl_file *f, unsigned long idx);
void ws_file_mapped(struct fl_space *sp);

#endif /* FL_WORKINGSET_H */
