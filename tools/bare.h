/* SPDX-License-Identifier: MIT */
/*
 * bare: the bare userfaultfd anchor of bench and swapbench, with no faultline
 * in it: what any design on userfaultfd pays for a miss on this machine.
 *
 * A fresh private anonymous region, registered for missing pages on its own
 * userfaultfd.  Every miss is served by one UFFDIO_COPY of the contents the
 * tool supplies (or one UFFDIO_ZEROPAGE), either by handler threads blocked
 * in read() on the userfaultfd (thread delivery), or by the faulting thread
 * itself in its SIGBUS handler (UFFD_FEATURE_SIGBUS).  The tool's contents()
 * is the rest of what it measures: bench's is a page of zeros (the demand-zero
 * round trip), swapbench's a pread of the device's file (the bare swap-in).
 *
 * One region in sigbus delivery at a time: the signal handler finds it in a
 * global.  Setup and teardown from one thread; in sigbus delivery each thread
 * that touches the region calls bare_thread_enter() first.
 */
#ifndef FL_TOOLS_BARE_H
#define FL_TOOLS_BARE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BARE_MAX_THREADS 64

struct bare;

/*
 * The contents of the missing page at addr (page-aligned, in the region);
 * write: the access was a store (x86-64 tells; elsewhere a SIGBUS says true).
 * buf: a page-aligned scratch page of the thread that serves the miss.
 * Return: the page to copy in (buf or any other), or NULL for the zero page.
 * Called in the SIGBUS handler in sigbus delivery: async-signal-safe, and a
 * failure ends in bare_fatal().
 */
typedef const void *bare_contents_fn(struct bare *b, uintptr_t addr, bool write, char *buf);

struct bare_config {
	const char *tool; /* the messages' first word: "bench" */
	size_t len;	  /* of the region (MAP_NORESERVE), a multiple of the page */
	bool sigbus;	  /* UFFD_FEATURE_SIGBUS, else handler threads */
	/*
	 * The threads that serve misses: in thread delivery that many handler
	 * threads; in sigbus delivery the most faulting threads that may call
	 * bare_thread_enter().  At most BARE_MAX_THREADS.
	 */
	unsigned int threads;
	int cpu; /* pin the handler threads to this CPU; -1: no */
	bare_contents_fn *contents;
	void *priv;	       /* the tool's, for contents() */
	void (*cleanup)(void); /* what bare_fatal() runs before it exits, or NULL */
};

/*
 * What serves misses: a handler thread, or (sigbus) a faulting thread.  Its
 * counters have one writer each, so that counting costs the anchor no shared
 * cache line; bare_counts() sums them.
 */
struct bare_ctx {
	struct bare *b;
	char *buf;
	_Atomic uint64_t copies; /* pages installed: the misses served */
	_Atomic uint64_t exist;	 /* the page was there already (EEXIST) */
} __attribute__((aligned(64)));

struct bare {
	struct bare_config cfg;
	size_t page;
	int uffd;
	char *base; /* the region */
	uintptr_t start, end;
	struct bare_ctx ctx[BARE_MAX_THREADS];
	atomic_uint nctx; /* sigbus: contexts taken by bare_thread_enter() */
	pthread_t handlers[BARE_MAX_THREADS];
	unsigned int nhandlers;
	char *bufs; /* the contexts' scratch pages */
	bool has_sa;
	struct sigaction old_sa; /* SIGBUS's action before setup */
};

/*
 * A fresh region and what serves its misses.  err (errlen bytes, may be
 * NULL) says what failed.  Return: 0, or a negative errno with nothing left
 * behind.
 */
int bare_setup(struct bare *b, const struct bare_config *cfg, char *err, size_t errlen);
/* Undo bare_setup(); no thread touches the region any more. */
void bare_teardown(struct bare *b);

/*
 * Sigbus delivery: the calling thread takes a serving context, before its
 * first touch of the region.  Nothing to do in thread delivery.
 * Return: 0, or -ENOSPC beyond cfg.threads.
 */
int bare_thread_enter(struct bare *b);
void bare_thread_exit(void);

/* The misses served and the EEXIST so far (relaxed: a moment's view). */
void bare_counts(struct bare *b, uint64_t *copies, uint64_t *exist);

/*
 * A failure no miss can be served around: said on stderr (with the page of
 * addr, if not 0), cfg.cleanup run, the program ended with status 2.  The
 * first caller does it, later ones wait for the end.  Async-signal-safe.
 */
__attribute__((noreturn)) void bare_fatal(struct bare *b, const char *what, int err,
					  uintptr_t addr);

#endif
