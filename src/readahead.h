/* SPDX-License-Identifier: MIT */
/*
 * File readahead for mapped files (readahead.c): the decisions of the
 * kernel's do_sync_mmap_readahead() and do_async_mmap_readahead()
 * (mm/filemap.c) and of page_cache_sync_ra()/page_cache_async_ra()
 * (mm/readahead.c), on a file_ra_state of the same shape, without the I/O:
 * the caller reads what the window says and marks its readahead page.
 *
 *   a miss, MADV_RANDOM        the faulting page only
 *   a miss, MADV_SEQUENTIAL    a window of 2 x ra_pages from the fault
 *   a miss, sequential         the page after the last window's end: a
 *                              window twice the last (4x while small), as
 *                              page_cache_sync_ra() ramps up
 *   a miss, otherwise          read-around: ra_pages centred on the fault,
 *                              unless the mapping has missed more than
 *                              MMAP_LOTSAMISS times with no hit in between
 *   a hit on the marked page   the next window after the current one
 *                              (async: the fault does not wait for it)
 *
 * Every window marks one page, async_size pages before its end: a fault
 * that finds that page cached starts the next window, so that a
 * sequential reader finds its pages read before it gets there.
 *
 * Locks: none here; the caller serialises a file's state (its ra_lock).
 */
#ifndef FL_READAHEAD_H
#define FL_READAHEAD_H

#include "lib.h"

#define MMAP_LOTSAMISS 100

enum ra_advice { RA_NORMAL, RA_SEQUENTIAL, RA_RANDOM };

struct file_ra_state {
	unsigned long start; /* the current window: [start, start + size) */
	unsigned int size;
	unsigned int async_size;  /* its marker: start + size - async_size */
	unsigned int ra_pages;	  /* the largest window: the device's read_ahead_kb */
	unsigned int mmap_miss;	  /* misses since the last hit */
	unsigned long prev_index; /* the last page read by a miss; ULONG_MAX: none */
};

/* What to read: [start, start + nr), and the page to mark (ULONG_MAX: none). */
struct ra_window {
	unsigned long start;
	unsigned int nr;
	unsigned long mark;
};

void file_ra_state_init(struct file_ra_state *ra, unsigned int ra_pages);
void ra_sync_mmap(struct file_ra_state *ra, unsigned long index, unsigned long nr_pages,
		  enum ra_advice advice, struct ra_window *w);
bool ra_async_mmap(struct file_ra_state *ra, unsigned long index, unsigned long nr_pages,
		   enum ra_advice advice, struct ra_window *w);
void ra_hit(struct file_ra_state *ra);

#endif /* FL_READAHEAD_H */
