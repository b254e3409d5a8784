/* SPDX-License-Identifier: MIT */
/*
 * faultline run --record (run_record.c): a trace of the program's start for
 * the lab's start scenario.  The preload (run_preload.c) calls rec_mm()
 * after each mm call it serves or passes to the kernel.
 */
#ifndef FL_TOOLS_RUN_RECORD_H
#define FL_TOOLS_RUN_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fl_space;

enum rec_op { REC_MMAP, REC_MUNMAP, REC_MPROTECT, REC_MADVISE, REC_MREMAP };
enum rec_src { REC_SERVED, REC_KERNEL, REC_LOADER };

extern bool rec_on; /* recording: rec_mm() wants the calls */

void rec_init(struct fl_space *sp);
void rec_loader_scan(void);
void rec_mm(enum rec_op op, enum rec_src src, const void *addr, size_t len, int prot, int flags,
	    int fd, off_t off, const void *addr2, size_t len2);
void rec_finish(void);

/*
 * Where this process writes an output file (--stats, --record) named path
 * (run_preload.c): path itself in the program `faultline run` started (its
 * pid is FAULTLINE_RUN_PID, kept through exec) or where that is not set,
 * else path.PID, as `strace -ff -o` does: every program the program runs,
 * and every child it forks, writes its own.
 */
void run_out_path(char *buf, size_t n, const char *path);

#endif
