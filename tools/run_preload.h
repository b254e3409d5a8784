/* SPDX-License-Identifier: MIT */
/*
 * What the two halves of libfaultline-run.so share: run_preload.c (the
 * space, the interposed mm calls, threads, fork, signals, load and exit)
 * and run_heap.c (jemalloc, its memory from the space).  Everything here is
 * hidden (-fvisibility=hidden) but what EXPORT marks.
 */
#ifndef FL_RUN_PRELOAD_H
#define FL_RUN_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mman_compat.h"

#define EXPORT __attribute__((visibility("default")))
#define RUN_PAGE 4096UL

struct fl_space;

/* The space, created at load; NULL before, or when faultline is not serving. */
extern struct fl_space *sp;
/* The hooks are in place: from here the program's allocations are served. */
extern bool ready;
/* > 0: this thread is inside faultline (or is one of its threads). */
extern __thread int raw_depth __attribute__((tls_model("initial-exec")));

/* faultline's hidden internals, linked in from the library. */
bool space_has_addr(struct fl_space *s, unsigned long addr);
bool space_range_has_file(struct fl_space *s, unsigned long start, unsigned long end);
unsigned long space_run_end(struct fl_space *s, unsigned long start, unsigned long end,
			    bool *served);

static inline bool raw(void)
{
	return raw_depth > 0 || !ready;
}

static inline void enter(void)
{
	raw_depth++;
}

static inline void leave(void)
{
	raw_depth--;
}

/* A line on stderr, in one write. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The kernel's calls (run_preload.c), as the renamed library calls them. */
void *fl_raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int fl_raw_munmap(void *addr, size_t len);
int fl_raw_madvise(void *addr, size_t len, int advice);

/*
 * The heap (run_heap.c).  heap_init(): make faultline's own arena and the
 * program's hooked ones, at load, inside faultline (raw); false if jemalloc
 * could not.  heap_bind_thread(): the calling thread of the program takes
 * one of the hooked arenas.  heap_raw_alloc()/heap_raw_free(): memory of
 * faultline's own arena, whatever the thread.  Around fork():
 * heap_fork_prepare() keeps new hook calls out of the space and waits for
 * those in flight, heap_fork_child() resets that state in the child (only
 * the forking thread is there), heap_fork_done() lets the hooks in again.
 */
bool heap_init(void);
void heap_bind_thread(void);
void *heap_raw_alloc(size_t n);
void heap_raw_free(void *p);
void heap_fork_prepare(void);
void heap_fork_child(void);
void heap_fork_done(void);

#endif
