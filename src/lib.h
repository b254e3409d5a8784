/* SPDX-License-Identifier: MIT */
/*
 * The library's base: what every source file uses and no subsystem owns.
 * Compiler helpers, atomics named for their memory order, RCU with the
 * edges ThreadSanitizer cannot see, assertions, logging, the clock, page
 * constants, futexes and runs of bits.  No locks are declared here; the
 * lock tree is at the top of doc/locking.md.
 */
#ifndef FL_LIB_H
#define FL_LIB_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <urcu-bp.h>
#include <urcu/rculfhash.h>
#include <urcu/rculist.h>

#include "faultline.h"
#include "mman_compat.h"

#define FL_EXPORT __attribute__((visibility("default")))
/* Static TLS: its first use allocates nothing, even in a dlopen'ed library
 * and inside the SIGBUS handler. */
#define FL_TLS __thread __attribute__((tls_model("initial-exec")))

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & PAGE_MASK)
#define PAGE_ALIGNED(x) (((unsigned long)(x) & (PAGE_SIZE - 1)) == 0)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/*
 * Atomics, named for their memory order as mimalloc does.  Plain C11 atomics
 * underneath, so ThreadSanitizer sees every ordering.
 */
#define READ_ONCE(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define WRITE_ONCE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define load_acquire(x) atomic_load_explicit(&(x), memory_order_acquire)
#define store_release(x, v) atomic_store_explicit(&(x), (v), memory_order_release)

/*
 * ThreadSanitizer does not see liburcu's grace periods or rculfhash's
 * publication (the library is not instrumented), so in TSan builds we state
 * the happens-before edges they provide: every rcu read-side section ends
 * with a release on one token, every RCU callback begins with an acquire of
 * it (a grace period orders all those sections before the callback), and
 * objects handed to call_rcu() or published in the hash table carry a
 * release/acquire pair of their own.  No-ops in other builds.
 */
#if defined(__SANITIZE_THREAD__)
#define FL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FL_TSAN 1
#endif
#endif
/* A function whose plain accesses TSan does not see (its atomics it
 * does): a seqcount reader's, whose racy reads a recheck throws away. */
#ifdef FL_TSAN
#define FL_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define FL_NO_TSAN
#endif
#ifdef FL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char fl_rcu_tsan_token;
#define tsan_acquire(p) __tsan_acquire((void *)(p))
#define tsan_release(p) __tsan_release((void *)(p))
#else
#define tsan_acquire(p) ((void)0)
#define tsan_release(p) ((void)0)
#endif

static inline void fl_rcu_read_unlock(void)
{
#ifdef FL_TSAN
	tsan_release(&fl_rcu_tsan_token);
#endif
	rcu_read_unlock();
}

/* call_rcu() with the TSan edges; the callback starts with
 * fl_rcu_callback_enter(head). */
static inline void fl_call_rcu(struct rcu_head *head, void (*fn)(struct rcu_head *))
{
	tsan_release(head);
	call_rcu(head, fn);
}

static inline void fl_rcu_callback_enter(struct rcu_head *head)
{
#ifdef FL_TSAN
	tsan_acquire(&fl_rcu_tsan_token);
#endif
	tsan_acquire(head);
}

/* The last thing an RCU callback does; pairs with fl_rcu_barrier(). */
static inline void fl_rcu_callback_exit(void)
{
#ifdef FL_TSAN
	tsan_release(&fl_rcu_tsan_token);
#endif
}

/* rcu_barrier(): every queued callback has run, and TSan knows it. */
static inline void fl_rcu_barrier(void)
{
	rcu_barrier();
#ifdef FL_TSAN
	tsan_acquire(&fl_rcu_tsan_token);
#endif
}

/* After synchronize_rcu(): the caller may now free what readers saw. */
static inline void fl_synchronize_rcu(void)
{
	synchronize_rcu();
#ifdef FL_TSAN
	tsan_acquire(&fl_rcu_tsan_token);
#endif
}

/* Assertions: FL_BUG_ON always, lockdep-style checks only with FL_DEBUG. */
void fl_bug(const char *file, int line, const char *cond) __attribute__((noreturn));
#define FL_BUG_ON(cond)                                    \
	do {                                               \
		if (unlikely(cond))                        \
			fl_bug(__FILE__, __LINE__, #cond); \
	} while (0)
#ifdef FL_DEBUG
#define FL_DEBUG_BUG_ON(cond) FL_BUG_ON(cond)
#else
#define FL_DEBUG_BUG_ON(cond) ((void)0)
#endif

/*
 * Log a line to stderr with write(2).  Async-signal-safe (it runs in the
 * SIGBUS handler): formatted by faultline's own printf (lib.c), which knows
 * the flags, widths, lengths and conversions of printf except positional
 * arguments and wide characters; %m is fl_strerror(errno).
 */
void fl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* snprintf() by the same formatter, async-signal-safe.  Return: the length
 * of the whole output (buf holds at most size - 1 of it, NUL-terminated). */
size_t fl_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * strerror() is not async-signal-safe (it translates the message through the
 * locale, and formats an unknown number into a static buffer), and fl_log()
 * and its arguments run in the SIGBUS handler.  So in faultline's sources
 * strerror() is fl_strerror(): glibc's untranslated table
 * (strerrordesc_np), "Unknown error" for a number it does not have.
 */
char *fl_strerror(int err);
#define strerror(err) fl_strerror(err)
#define fl_dbg(sp, ...)                      \
	do {                                 \
		if ((sp)->cfg.verbose)       \
			fl_log(__VA_ARGS__); \
	} while (0)

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t fl_now_ns(void);
/* The calling thread's id, cached. */
pid_t fl_gettid(void);
void fl_gettid_reset(void);
void fl_mutex_after_fork(pthread_mutex_t *m, bool child);

/* Futexes on a 32-bit atomic word, private to the process. */
static inline void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static inline void futex_wake(_Atomic uint32_t *addr, int nr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, nr, NULL, NULL, 0);
}

/*
 * Runs of set bits in a 64-bit mask (page i of a chunk is bit i):
 *
 *	for_each_bit_run(mask, s, n)
 *		... bits s .. s + n - 1 are set, and s + n is clear or 64 ...
 */
static inline bool bit_run_next(uint64_t *mask, unsigned int *s, unsigned int *n)
{
	uint64_t rest;

	if (!*mask)
		return false;
	*s = (unsigned int)__builtin_ctzll(*mask);
	rest = ~(*mask >> *s);
	*n = rest ? (unsigned int)__builtin_ctzll(rest) : 64 - *s;
	*mask &= *s + *n >= 64 ? 0 : ~0ULL << (*s + *n);
	return true;
}
#define for_each_bit_run(mask, s, n) \
	for (uint64_t __runs = (mask); bit_run_next(&__runs, &(s), &(n));)

#endif /* FL_LIB_H */
