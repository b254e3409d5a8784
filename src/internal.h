/* SPDX-License-Identifier: MIT */
/*
 * faultline internals: the structures every source file shares.
 *
 * Lock ordering (outermost first; a lock may nest only inside those above it
 * on its own branch).  doc/locking.md has the full rules.
 *
 *   spaces_lock                     (global: the list of spaces, space.c)
 *   mmap_lock                       (per space: fair rwsem, mmap_lock.c)
 *     vma->vm_lock                  (per VMA: taken for write only with
 *                                    mmap_lock held for write; for read by
 *                                    faults with a trylock, never sleeping)
 *       chunk->ptl                  (per page-table chunk: the split PTL;
 *                                    several only in address order, or
 *                                    by trylock: reclaim's zap batch)
 *       sp->chunk_alloc_lock        (page-table chunk allocator; taken with
 *                                    a VMA lock or mmap_lock, never under a
 *                                    ptl)
 *   rcu_read_lock                   (urcu-bp: may be held around any of the
 *                                    above.  Only the SIGBUS slow path
 *                                    sleeps in it (on mmap_lock for read),
 *                                    so nobody may wait for a grace period
 *                                    with mmap_lock held for write)
 *
 * A fault holds exactly one of: its VMA's read lock, or mmap_lock for read.
 * At I/O completion (the completion thread, or a handler thread completing
 * its own read, which under hold still holds its fault's VMA read lock)
 * mmap_lock is only ever trylocked, for another fault's retry: it never
 * waits, so it cannot wait against the order above.
 *
 * No code path holds a faultline lock while it touches region memory, so a
 * thread that faults (sigbus delivery) never holds one of ours.
 */
#ifndef FL_INTERNAL_H
#define FL_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <urcu-bp.h>
#include <urcu/rculfhash.h>
#include <urcu/rculist.h>

#include "faultline.h"
#include "hist.h"
#include "rwsem.h"

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

void fl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define fl_dbg(sp, ...)                      \
	do {                                 \
		if ((sp)->cfg.verbose)       \
			fl_log(__VA_ARGS__); \
	} while (0)

uint64_t fl_now_ns(void);

/* ---- options (options.c) ---------------------------------------------- */

void fl_options_defaults(struct fl_config *cfg);
void fl_options_from_env(struct fl_config *cfg);
int fl_options_validate(const struct fl_config *cfg);
void fl_options_print(const struct fl_config *cfg, FILE *out);

/* ---- statistics (stats.c) --------------------------------------------- */

enum fl_stat_item {
#define FL_STAT_ENUM_(name, kind, desc) FL_STAT_##name,
	FL_STATS_FIELDS(FL_STAT_ENUM_)
#undef FL_STAT_ENUM_
		FL_STAT_NR
};

#define FL_STAT_STRIPES 8

/*
 * Counters are striped by CPU so that two threads on two CPUs rarely share a
 * cache line; readers sum the stripes.  Only the counter kinds live here: the
 * gauges and percentiles are computed by fl_stats().
 */
struct fl_stat_stripe {
	_Atomic uint64_t v[FL_STAT_NR];
	struct fl_hist fault_ns;
} __attribute__((aligned(64)));

struct fl_stat_stripe *stat_stripe(struct fl_space *sp);
#define count_event(sp, item) count_event_n(sp, item, 1)
#define count_event_n(sp, item, n)                                                    \
	atomic_fetch_add_explicit(&stat_stripe(sp)->v[FL_STAT_##item], (uint64_t)(n), \
				  memory_order_relaxed)
/* The kernel's name for the four vma_lock_* counters. */
#define count_vm_vma_lock_event(sp, item) count_event(sp, item)

/* ---- the space lock (mmap_lock.c) ------------------------------------- */

/*
 * mmap_lock: a fair reader-writer lock.  Once a writer waits, new readers wait
 * behind it, as with the kernel's rw_semaphore; this fairness is what turns a
 * writer stuck behind a fault into a stall of every fault (the seed).
 * pthread_rwlock with PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP gives it.
 *
 * mm_lock_seq: the write-section sequence of the 6.4 per-VMA lock scheme.
 * Written only with mmap_lock held for write (incremented when the write
 * section ends: vma_end_write_all()); read unlocked by vma_start_read().
 */
struct mmap_lock {
	pthread_rwlock_t rw;
	_Atomic unsigned int mm_lock_seq; /* wraps: unsigned */
	_Atomic pid_t write_owner;	  /* tid of the writer, 0 if none (debug) */
};

void mmap_lock_init(struct mmap_lock *l);
void mmap_lock_destroy(struct mmap_lock *l);
void mmap_read_lock(struct fl_space *sp);
bool mmap_read_trylock(struct fl_space *sp);
void mmap_read_unlock(struct fl_space *sp);
void mmap_write_lock(struct fl_space *sp);
void mmap_write_unlock(struct fl_space *sp);
bool mmap_lock_is_write_locked(struct fl_space *sp);
bool mmap_lock_is_read_locked(struct fl_space *sp);
#define mmap_assert_locked(sp) \
	FL_DEBUG_BUG_ON(!mmap_lock_is_read_locked(sp) && !mmap_lock_is_write_locked(sp))
#define mmap_assert_write_locked(sp) FL_DEBUG_BUG_ON(!mmap_lock_is_write_locked(sp))
pid_t fl_gettid(void);

/* ---- VMAs, their locks, the index (vma.c) ----------------------------- */

#define VM_NORESERVE 0x1UL
#define VM_STACK 0x2UL

/*
 * A VMA is immutable once published in the index, apart from its lock state
 * and its fault-around hints: a change of range or protection publishes new
 * VMA objects and detaches the old ones (all under mmap_lock for write, after
 * vma_start_write() on each old one).  So a reader that holds the VMA's read
 * lock, or mmap_lock, may read vm_start/vm_end/prot/flags plainly.
 */
struct vma {
	unsigned long vm_start; /* immutable */
	unsigned long vm_end;	/* immutable, exclusive */
	int prot;		/* immutable: PROT_* */
	unsigned long flags;	/* immutable: VM_* */
	struct fl_space *sp;

	/*
	 * vm_lock: held for read by a fault that runs under this VMA (perhaps
	 * parked on I/O, released by its completion); taken for write (and at
	 * once released) by vma_start_write() to wait for them.  A waiting
	 * writer makes read trylocks fail, as down_read_trylock fails on an
	 * rwsem with waiters (rwsem.h).
	 */
	struct rwsem vm_lock;
	/*
	 * vm_lock_seq == mm_lock_seq: write-locked in the current write
	 * section.  Written with mmap_lock held for write; read unlocked by
	 * vma_start_read() (RELEASE/ACQUIRE pairs noted there).
	 */
	_Atomic unsigned int vm_lock_seq;
	/* Set once, with the VMA write-locked, when it leaves the index. */
	_Atomic bool detached;

	/* Fault-around hints: racy by design, relaxed atomics. */
	/* Up to FA_STREAMS sequential first-touch streams (threads filling
	 * their own parts of one VMA), as readahead keeps per-stream state. */
#define FA_STREAMS 4
	_Atomic unsigned long fa_next[FA_STREAMS];
	_Atomic unsigned int fa_window[FA_STREAMS];
	_Atomic unsigned int fa_victim;
	/* Swap readahead: where the last major fault's stream goes on, and
	 * its window in pages (racy hints, relaxed atomics). */
	_Atomic unsigned long ra_next;
	_Atomic unsigned int ra_window;

	struct rcu_head rcu;
};

/*
 * The index: a sorted array of VMA pointers, replaced whole (copy on write)
 * under mmap_lock for write and published with rcu_assign_pointer; readers
 * look up with a binary search under rcu_read_lock.  Freed after a grace
 * period.  Lookup is O(log n); a change is O(n), which is fine at the VMA
 * counts a process has (the kernel's limit is 65530).
 */
struct vma_index {
	size_t nr;
	struct rcu_head rcu;
	struct vma *v[];
};

struct vma *vma_alloc(struct fl_space *sp, unsigned long start, unsigned long end, int prot,
		      unsigned long flags);
void vma_free_rcu(struct vma *vma);
bool vma_start_read(struct vma *vma);
void vma_end_read(struct vma *vma);
void vma_handoff(struct vma *vma);
void vma_adopt(struct vma *vma);
void vma_start_write(struct vma *vma);
void vma_end_write_all(struct fl_space *sp);
bool vma_is_write_locked(struct vma *vma);
#define vma_assert_write_locked(vma) FL_DEBUG_BUG_ON(!vma_is_write_locked(vma))
bool vma_is_read_locked_by_me(struct vma *vma);
#define vma_assert_read_locked(vma) FL_DEBUG_BUG_ON(!vma_is_read_locked_by_me(vma))
struct vma *lock_vma_under_rcu(struct fl_space *sp, unsigned long addr);
struct vma *vma_lookup(struct fl_space *sp, unsigned long addr);
struct vma_index *vma_index_get(struct fl_space *sp);
size_t vma_index_first(struct vma_index *idx, unsigned long addr);
struct vma_index *vma_index_build(struct vma_index *old, size_t lo, size_t hi, struct vma **nv,
				  size_t n);
void vma_index_publish(struct fl_space *sp, struct vma_index *idx);
struct vma_index *vma_index_new(size_t nr);

/* ---- page-state table (pgtable.c) ------------------------------------- */

/*
 * The page table: per page, a 32-bit entry.  Kept in chunks of 64 pages
 * (256 KiB of address space) in an RCU lock-free hash table keyed by address,
 * so that metadata grows with the pages touched, not the size mapped.
 *
 * Each chunk has its own lock (the split PTL): every change of an entry, and
 * the userfaultfd ioctl that makes the kernel agree with it, happens under
 * it.  Invariant: the kernel has a page at an address only if its entry says
 * present.
 */
#define PT_CHUNK_PAGES 64
#define PT_CHUNK_SIZE (PT_CHUNK_PAGES * PAGE_SIZE)
#define PT_CHUNK_MASK (~(PT_CHUNK_SIZE - 1))

/*
 * An entry: bits 0-1 its type, bits 2-7 flags, bits 32-63 a value (a swap
 * slot, or a frame index).
 *
 *   NONE                 never touched, or dropped: the next touch is a
 *                        demand-zero fault (with POISON: a poison marker is
 *                        installed, every access gets SIGBUS until zapped)
 *   PRESENT              the kernel has the page.  ZEROPAGE: mapped as the
 *                        zero page (it may have been copied on write behind
 *                        our back: never trusted to be zero).  WP: installed
 *                        write-protected from a valid swap copy, value = that
 *                        slot: clean.  REF: touched since the clock passed.
 *   SWAP                 only in the store, value = slot
 *   FRAME                in a frame, value = frame index: being read, in the
 *                        swap cache, or being written back
 */
enum pte_type { PTE_NONE = 0, PTE_PRESENT = 1, PTE_SWAP = 2, PTE_FRAME = 3 };
#define PTE_TYPE_MASK 0x3ull
#define PTE_ZEROPAGE 0x4ull
#define PTE_WP 0x8ull
#define PTE_REF 0x10ull
#define PTE_POISON 0x20ull
/* PRESENT: extra passes of the clock hand, given to a page that refaulted
 * within fewer evictions than the budget (evicted too early). */
#define PTE_HOT_SHIFT 6
#define PTE_HOT_MASK 0xc0ull
/* SWAP: the space's eviction count when the page left, mod 2^24. */
#define PTE_STAMP_SHIFT 8
#define PTE_STAMP_MASK 0xffffff00ull
#define pte_stamp(p) ((uint32_t)(((p)&PTE_STAMP_MASK) >> PTE_STAMP_SHIFT))
#define mk_stamp(n) (((uint64_t)(n) << PTE_STAMP_SHIFT) & PTE_STAMP_MASK)
#define pte_type(p) ((unsigned int)((p)&PTE_TYPE_MASK))
#define pte_value(p) ((uint32_t)((p) >> 32))
#define mk_pte(type, flags, value) (((uint64_t)(value) << 32) | (flags) | (type))

struct pt_chunk {
	struct cds_lfht_node node;
	unsigned long base; /* immutable: chunk-aligned address */
	pthread_mutex_t ptl;
	unsigned int nr_present;	      /* ptl */
	_Atomic uint64_t pte[PT_CHUNK_PAGES]; /* written under ptl; read under it
					       * or racily as a hint */
	struct cds_list_head lru;	      /* clock_lock: the reclaim clock's ring */
	struct rcu_head rcu;
	struct pt_chunk *free_next; /* chunk_alloc_lock */
};

int pt_init(struct fl_space *sp);
void pt_destroy(struct fl_space *sp);
struct pt_chunk *pt_chunk_lookup(struct fl_space *sp, unsigned long addr);
struct pt_chunk *pt_chunk_get(struct fl_space *sp, unsigned long addr);
static inline unsigned int pt_index(unsigned long addr)
{
	return (addr >> PAGE_SHIFT) & (PT_CHUNK_PAGES - 1);
}
void pt_lock(struct pt_chunk *c);
bool pt_trylock(struct pt_chunk *c);
void pt_unlock(struct pt_chunk *c);
void pt_zap_range(struct fl_space *sp, unsigned long start, unsigned long end, bool madvise);
void pt_free_unused(struct fl_space *sp, unsigned long start, unsigned long end);

/* ---- userfaultfd (uffd.c) ----------------------------------------------- */

int uffd_open(struct fl_space *sp);
int uffd_register(struct fl_space *sp, unsigned long start, unsigned long len);
int uffd_wake(struct fl_space *sp, unsigned long start, unsigned long len);
unsigned long uffd_zeropage(struct fl_space *sp, unsigned long start, unsigned long len, int *err);
unsigned long uffd_copy(struct fl_space *sp, unsigned long dst, const void *src, unsigned long len,
			int *err);
int uffd_writeprotect(struct fl_space *sp, unsigned long start, unsigned long len, bool wp);
int uffd_poison(struct fl_space *sp, unsigned long start, unsigned long len);
int uffd_start_handlers(struct fl_space *sp);
void uffd_stop_handlers(struct fl_space *sp);
int sigbus_install(void);

/* ---- frames, swap-in, waiting (swap.c) -------------------------------- */

#include "swapdev.h"

/*
 * A frame: a page-sized buffer for a page under I/O or in the swap cache.
 * A frame belongs to at most one page.  Its binding to the page (addr,
 * chunk, slot, stamp, and the PTE_FRAME entry naming it) changes under the
 * ptl of that page's chunk; its flags, waiters, pins and owns_slot under
 * f->lock, which nests inside the ptl; the free-list link under frame_lock.
 */
#define FRAME_LOCKED 0x01    /* a read is in flight */
#define FRAME_UPTODATE 0x02  /* buf holds the page */
#define FRAME_WRITEBACK 0x04 /* a write is in flight */
#define FRAME_ERROR 0x08     /* the read failed */
#define FRAME_FROM_READ 0x10 /* filled by a read (wasted-read accounting) */
#define FRAME_USED 0x20	     /* a fault installed it */
#define FRAME_DETACHED 0x40  /* its page went away while I/O was in flight */
#define FRAME_WERROR 0x80    /* the write failed: kept until a fault takes it */
#define FRAME_HOT 0x100	     /* read for a refault: install it hot */

struct waiter;

struct frame {
	struct swap_io io; /* first: the completion callback finds the frame */
	struct fl_space *sp;
	pthread_mutex_t lock;	/* nests inside the ptl */
	bool owns_slot;		/* f->lock: the slot is freed with the frame */
	uint32_t flags;		/* ptl */
	uint32_t slot;		/* ptl */
	unsigned long addr;	/* ptl: the page it backs */
	struct pt_chunk *chunk; /* ptl */
	struct waiter *waiters; /* ptl: parked faults */
	int pins;		/* ptl: parked or installing faults */
	uint32_t stamp;		/* ptl: eviction stamp, for the SWAP entry it becomes */
	void *buf;
	struct frame *next_free; /* frame_lock */
};

/*
 * A fault that waits for a frame.  Thread delivery: a continuation, run at
 * the read's completion (installs under a held VMA lock; retries under
 * mmap_lock if a trylock gets it), or queued to the handler threads (a retry
 * that found mmap_lock taken).  Sigbus delivery: on the faulting thread's
 * stack, which sleeps on `done`.
 */
enum cont_action {
	CONT_INSTALL,	 /* hold: the VMA read lock is still held: install */
	CONT_RETRY_MMAP, /* retry under mmap_lock (drop, bail, mmap) */
	CONT_RETRY_VMA,	 /* drop-vma: take the VMA lock again, else mmap */
};

struct waiter {
	struct waiter *next; /* ptl of the frame's chunk */
	struct frame *frame;
	struct fl_space *sp;
	unsigned long addr;
	unsigned int flags; /* FAULT_FLAG_* */
	enum cont_action action;
	struct vma *vma; /* CONT_INSTALL: read-locked, handed over */
	uint64_t t0, t_park;
	_Atomic uint32_t done; /* on_stack: futex word */
	bool on_stack;	       /* sigbus delivery, or a handler's own synchronous read */
	bool self_done;	       /* on_stack: its own thread completes the read (no wake) */
	bool pinned;	       /* holds a pin on frame, dropped when it has run */
	struct waiter *qnext;  /* retry_lock */
};

int swap_init(struct fl_space *sp);
void swap_destroy(struct fl_space *sp);
struct frame *frame_alloc(struct fl_space *sp);
void frame_free(struct fl_space *sp, struct frame *f);
#define frame_of(sp, pte) (&(sp)->frames[pte_value(pte)])
#define frame_index(sp, f) ((uint32_t)((f) - (sp)->frames))
void frame_unpin(struct fl_space *sp, struct frame *f);
void frame_detach(struct fl_space *sp, struct frame *f);
void swap_read_done(struct swap_io *io, int res);
void swap_write_done(struct swap_io *io, int res);
void pte_release(struct fl_space *sp, struct pt_chunk *c, unsigned long addr);
void run_retry_queue(struct fl_space *sp);
unsigned long swap_readahead(struct fl_space *sp, unsigned long start, unsigned long end);
void swap_deactivate(struct fl_space *sp, unsigned long start, unsigned long end);
void cont_run(struct waiter *w);
long mem_used(struct fl_space *sp);

/*
 * A write of consecutive slots from several frames, as one vectored I/O:
 * eviction allots a batch consecutive slots.  From a per-space pool (no
 * malloc: eviction also runs in the SIGBUS handler).
 */
struct write_batch {
	struct swap_io io; /* first: the completion finds the batch */
	struct fl_space *sp;
	unsigned int n;
	struct frame *f[PT_CHUNK_PAGES];
	struct iovec iov[PT_CHUNK_PAGES];
	struct write_batch *next_free; /* batch_lock */
};
#define WRITE_BATCHES 64

struct write_batch *batch_get(struct fl_space *sp);
void batch_put(struct fl_space *sp, struct write_batch *b);

/* ---- reclaim (reclaim.c) ------------------------------------------------ */

int reclaim_init(struct fl_space *sp);
void reclaim_destroy(struct fl_space *sp);
void reclaim_chunk_added(struct fl_space *sp, struct pt_chunk *c);
void reclaim_chunk_removed(struct fl_space *sp, struct pt_chunk *c);
/* Set on the I/O completion thread: it must never block (no direct reclaim). */
extern FL_TLS bool in_completion;
/* Make room for n pages before installing them.  Context: no ptl held. */
void mem_reserve(struct fl_space *sp, unsigned long n);
long reclaim_pages(struct fl_space *sp, long want, bool direct);
struct vma *vma_trylock_at(struct fl_space *sp, unsigned long addr);
int evict_range(struct fl_space *sp, unsigned long start, unsigned long end);

/* ---- the fault path (fault.c) ------------------------------------------ */

#define FAULT_FLAG_WRITE 0x01
#define FAULT_FLAG_VMA_LOCK 0x02
#define FAULT_FLAG_TRIED 0x04
#define FAULT_FLAG_SIGBUS 0x08 /* resolved in the faulting thread */
#define FAULT_FLAG_WP 0x10     /* a write-protect fault message */
#define FAULT_FLAG_CONT 0x20   /* the rest of a parked fault: already counted */
/* Thread delivery: a handler thread with no other message pending may read
 * its fault's page itself (swap_read_sync), if another handler is free. */
#define FAULT_FLAG_MAY_SYNC 0x40
/* A retry on the completion thread: take mmap_lock only if it is free. */
#define FAULT_FLAG_NOWAIT 0x80

#define VM_FAULT_RETRY 0x01	/* the fault lock has been released */
#define VM_FAULT_COMPLETED 0x02 /* the fault lock has been released */
#define VM_FAULT_SIGSEGV 0x04	/* no VMA or protection mismatch */
#define VM_FAULT_NOPAGE 0x08	/* nothing installed (let the access retry) */
#define VM_FAULT_PARKED 0x10	/* a continuation owns the fault now */
#define VM_FAULT_HWPOISON 0x20	/* the page is poisoned */
#define VM_FAULT_LOCKBUSY 0x40	/* FAULT_FLAG_NOWAIT: mmap_lock busy, nothing done */

int fl_handle_fault(struct fl_space *sp, unsigned long addr, unsigned int flags);
int handle_mm_fault(struct fl_space *sp, struct vma *vma, unsigned long addr, unsigned int flags,
		    uint64_t t0);
int fault_retry_mmap(struct fl_space *sp, unsigned long addr, unsigned int flags, uint64_t t0);
void fault_done(struct fl_space *sp, unsigned long addr, unsigned int flags, int ret, uint64_t t0);
int install_from_frame(struct fl_space *sp, struct vma *vma, struct pt_chunk *c, unsigned long page,
		       struct frame *f);

/* ---- background workers (worker.c) ------------------------------------- */

struct fl_worker {
	pthread_t thread;
	int fd; /* eventfd: a kick */
	bool started;
	_Atomic bool stop, kicked;
	void (*fn)(void *arg); /* one round of work per wake-up */
	void *arg;
	int timeout_ms; /* also a round this often; -1: only when kicked */
};

int worker_start(struct fl_worker *w, const char *name, void (*fn)(void *), void *arg,
		 int timeout_ms);
void worker_kick(struct fl_worker *w);
void worker_stop(struct fl_worker *w);

/* ---- the space (space.c) ----------------------------------------------- */

struct fl_space {
	struct fl_config cfg; /* immutable after create */
	int uffd;	      /* immutable after create */
	uint64_t uffd_features;

	struct mmap_lock mmap_lock;
	/* RCU pointer; replaced under mmap_lock for write. */
	struct vma_index *_Atomic index;
	struct vma_index *empty_index; /* preallocated for destroy */

	/* Page table: the hash is lock-free; entries under chunk ptl. */
	struct cds_lfht *pt;
	pthread_mutex_t chunk_alloc_lock; /* nests inside chunk ptl */
	struct pt_chunk *chunk_free;	  /* chunk_alloc_lock */
	void **chunk_slabs;		  /* chunk_alloc_lock */
	size_t nr_chunk_slabs, cap_chunk_slabs;
	_Atomic long nr_chunks;
	_Atomic unsigned long pt_buckets; /* the table's size, set by the resizer */
	struct fl_worker resizer;	  /* grows the table (worker.c) */

	_Atomic long resident_pages;
	_Atomic long mapped_bytes;

	/* A read-only, never-written area as the source of zero-filled
	 * UFFDIO_COPY: fault_around_max pages long. */
	void *zero_src;

	/* Swap (NULL/0 without a memory limit). */
	bool swap_on;
	long limit_pages, wmark_high, wmark_low;
	struct swap_dev dev;
	bool dev_open;
	struct frame *frames; /* nr_frames of them */
	size_t nr_frames;
	void *frame_bufs;
	pthread_mutex_t frame_lock; /* the free list; a leaf lock */
	struct frame *frame_free;   /* frame_lock */
	_Atomic long frames_used;
	_Atomic uint64_t evictions; /* pages evicted so far: the refault clock */
	int mem_fd;		    /* /proc/self/mem: reads pages we may not load */
	_Atomic bool io_error_logged;
	struct write_batch *batches;	/* WRITE_BATCHES of them */
	struct write_batch *batch_free; /* batch_lock */
	unsigned int batches_out;	/* batch_lock: taken, not yet back */
	pthread_cond_t batches_back;	/* batch_lock: batches_out reached 0 */
	pthread_mutex_t batch_lock;	/* leaf */
	/* Retries for the handler threads (thread delivery). */
	pthread_mutex_t retry_lock; /* leaf */
	struct waiter *retry_head, *retry_tail;
	int retry_fd; /* eventfd */
	/* The clock (reclaim.c). */
	pthread_mutex_t clock_lock; /* the chunk ring and the hand */
	struct cds_list_head lru;
	struct cds_list_head *hand;
	pthread_mutex_t reclaim_lock; /* one evictor at a time */
	struct zap_batch *zap;	      /* reclaim_lock: evictions awaiting their zap */
	struct fl_worker kswapd;      /* the background reclaimer */

	pthread_t *handlers;
	int stop_fd; /* eventfd: handler threads stop */
	unsigned int nr_handlers;
	/* Handler threads sleeping in a synchronous swap read: at most
	 * cfg.handlers - 1, so that one is always reading fault messages. */
	_Atomic int sync_readers;
	_Atomic bool dying;

	struct fl_stat_stripe *stats; /* FL_STAT_STRIPES of them */
	struct cds_list_head list;    /* spaces_lock; RCU for readers */
};

/* Sigbus delivery: find the space whose VMA covers addr. */
struct fl_space *fl_space_of_addr_rcu(unsigned long addr);
int fl_handle_foreign_sigbus_slow(unsigned long addr, unsigned int flags);

#endif /* FL_INTERNAL_H */
