/* SPDX-License-Identifier: MIT */
/*
 * File I/O of the page cache (fileio.c): reads into the cache and
 * write-back out of it through io_uring, with many I/Os in flight, completed
 * by one completion thread per space (fl-fileio), which runs with
 * in_completion set as the swap device's reaper does.
 *
 * A read owns the page locks of its pages from its submission to its
 * completion: the completion sets PG_UPTODATE (or, for a page whose read
 * failed, PG_ERROR) and unlocks them, which wakes the faults waiting for
 * them (asleep on the page's futex, or parked: cont.c).  A read of several
 * pages that fails is read again a page at a time, so that only a bad page
 * gets PG_ERROR.  A run of pages is contiguous in the cache's view and in the
 * file, so each run is one vectored request of one segment; the runs of a
 * window, and the windows of many faults, are in flight together.
 *
 * Writes are the write-back's (writeback.c): the writer submits its runs,
 * holding their page locks, and waits for all of them (wb_wait()); the
 * completion only records each result.
 *
 * The I/Os come from a fixed pool per space (no malloc: a fault in the
 * SIGBUS handler submits reads too), which also bounds what is in flight,
 * so the completion queue never overflows.
 *
 * Locks: fr->sq_lock (the submission side of the ring) and fr->pool_lock
 * (the free I/Os), both leaves.
 */
#ifndef FL_FILEIO_H
#define FL_FILEIO_H

#include "lib.h"

#include <liburing.h>
#include <sys/uio.h>

struct fl_space;
struct fl_file;
struct wb_batch;

#define FILE_IOS 256	      /* I/Os per space: in flight at most */
#define FILE_IO_MAX_PAGES 256 /* pages per readahead read */

struct file_io {
	struct fl_file *f; /* a reference, dropped when the I/O ends */
	unsigned long idx; /* the first page */
	unsigned long n;   /* pages */
	bool write;
	bool direct; /* submitted on the O_DIRECT descriptor */
	/* A read of several pages that failed, read again a page at a time:
	 * the page being read is idx + split - 1 (0: not split). */
	unsigned long split;
	size_t done;		/* bytes transferred so far */
	unsigned long mark;	/* read: the page to mark PG_READAHEAD (ULONG_MAX: none) */
	unsigned long keep_ref; /* read: the page that keeps PG_REF (ULONG_MAX: none) */
	int res;		/* write: 0 or a negative errno, for the writer */
	struct wb_batch *batch; /* write: the writer waiting for it */
	struct iovec iov;
	struct file_io *next; /* pool_lock: the free list; the writer's list */
};

/* A writer's I/Os in flight: wb_wait() returns when none is. */
struct wb_batch {
	_Atomic uint32_t pending;
};

struct file_ring {
	struct fl_space *sp;
	struct io_uring ring;
	pthread_mutex_t sq_lock;   /* leaf: the submission side */
	pthread_mutex_t pool_lock; /* leaf: free */
	pthread_cond_t freed;	   /* pool_lock: an I/O went back to the pool */
	struct file_io *ios, *free;
	_Atomic long inflight;
	pthread_t reaper;
	bool started;
	/* Parked faults that hold their VMA's read lock, woken outside I/O
	 * completion, for the completion thread to run (fileio_handoff()):
	 * handoff and handoff_posted under handoff_lock (a leaf). */
	pthread_mutex_t handoff_lock;
	struct waiter *handoff;
	bool handoff_posted; /* a NOP is on its way to the completion thread */
};

int fileio_init(struct fl_space *sp);
void fileio_destroy(struct fl_space *sp);
void fileio_fork_quiesce(struct fl_space *sp);
int fileio_fork_child(struct fl_space *sp);
void fileio_fork_release(struct fl_space *sp);
struct file_io *fileio_get(struct fl_space *sp, bool wait);
void fileio_put(struct fl_space *sp, struct file_io *io);
void fileio_read(struct fl_space *sp, struct file_io *io);
void fileio_write(struct fl_space *sp, struct file_io *io, struct wb_batch *b);
void wb_wait(struct wb_batch *b);
struct waiter;
bool fileio_handoff(struct fl_space *sp, struct waiter *w);

struct ra_window;
int filemap_read_pages(struct fl_file *f, unsigned long idx, unsigned long n);
int filemap_read_window_sync(struct fl_space *sp, struct fl_file *f, unsigned long idx,
			     const struct ra_window *w);
int filemap_read_start(struct fl_space *sp, struct fl_file *f, unsigned long idx,
		       const struct ra_window *w);
void filemap_readahead(struct fl_space *sp, struct fl_file *f, unsigned long start,
		       unsigned long end, unsigned long mark, bool wait);

#endif /* FL_FILEIO_H */
