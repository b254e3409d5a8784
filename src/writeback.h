/* SPDX-License-Identifier: MIT */
/*
 * Write-back of the page cache (writeback.c): dirty pages written to their
 * files (fl_msync(), the flusher, munmap, destroy, kswapd), the write-back
 * error sequence that fl_msync() reports, dirty throttling, and the
 * eviction of cache pages by reclaim.
 */
#ifndef FL_WRITEBACK_H
#define FL_WRITEBACK_H

#include "lib.h"

struct fl_space;
struct fl_file;

int writeback_range(struct fl_space *sp, struct fl_file *f, unsigned long first,
		    unsigned long last);
int file_release(struct fl_space *sp, struct fl_file *f);
int filemap_msync(struct fl_space *sp, struct fl_file *f, unsigned long first, unsigned long last,
		  int flags);
void balance_dirty_pages(struct fl_space *sp);
long shrink_file_pages(struct fl_space *sp, long want, bool direct);
int flusher_start(struct fl_space *sp);

/* Tests: how long the next writer keeps its first run under write-back
 * before its write starts (writeback_runs(), which clears it); 0 in use. */
extern _Atomic unsigned int fl_test_writeback_delay_us;

#endif /* FL_WRITEBACK_H */
