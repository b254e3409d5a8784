/* SPDX-License-Identifier: MIT */
/*
 * The address space (space.c): struct fl_space, the kernel's mm_struct, and
 * the process-wide list of spaces that the SIGBUS handler searches.  Each
 * lock below says what it protects; how they nest is the tree at the top of
 * doc/locking.md.
 */
#ifndef FL_SPACE_H
#define FL_SPACE_H

#include "lib.h"
#include "mmap_lock.h"
#include "prefetch.h"
#include "reclaim.h"
#include "stats.h"
#include "swapdev.h"
#include "worker.h"

/* The handle's magic while the space lives, and once it is freed (space.c). */
#define FL_SPACE_MAGIC 0x21656361707366ULL /* "fspace!" */
#define FL_SPACE_DEAD 0x64616564ULL	   /* "dead" */

/*
 * Ranges of a space's index that are no longer its kernel mappings: unmapped,
 * or mapped by someone else, behind faultline's back (the libc munmap of a
 * region).  Nothing faultline does touches the kernel there any more; the next
 * write section of the space (mm_drop_stale()) takes them out of the index
 * and the page table.  Immutable once published; replaced under claim_lock
 * (space.c), read under RCU, freed after a grace period.  From mmap(), not
 * malloc: the SIGBUS handler may add one.
 */
struct stale_ranges {
	struct rcu_head rcu;
	size_t nr;
	size_t bytes; /* the mapping's size */
	struct {
		unsigned long start, end;
	} r[];
};

struct fl_space {
	/* FL_SPACE_MAGIC; FL_SPACE_DEAD just before it is freed.  A handle is
	 * only read through after it was found on the list of spaces
	 * (space_get()), so the magic checks for memory corruption, not the
	 * handle.  Immutable while the space is on the list. */
	uint64_t magic;
	struct fl_config cfg; /* immutable after create */
	int uffd;	      /* immutable after create */
	uint64_t uffd_features;

	struct mmap_lock mmap_lock;
	/* RCU pointer; replaced under mmap_lock held for write. */
	struct vma_index *_Atomic index;
	struct vma_index *empty_index; /* preallocated for destroy */

	/* Page table: the hash is lock-free; entries under their chunk's ptl.
	 * The directory finds a chunk by address (pgtable.c): its slots are
	 * set by pt_chunk_get() and cleared by pt_free_unused(), its
	 * leaves created under chunk_alloc_lock and kept until destroy. */
	struct cds_lfht *pt;
	struct pt_leaf *_Atomic *pt_dir;
	pthread_mutex_t chunk_alloc_lock;	/* leaf; never taken under a ptl */
	struct pt_chunk *chunk_free;		/* chunk_alloc_lock */
	void **chunk_slabs;			/* chunk_alloc_lock */
	size_t nr_chunk_slabs, cap_chunk_slabs; /* chunk_alloc_lock */
	_Atomic long nr_chunks;
	_Atomic unsigned long pt_buckets; /* the table's size, set by the resizer */
	struct fl_worker resizer;	  /* grows the table (worker.c) */

	_Atomic long resident_pages; /* changed under the ptl of the entries */
	_Atomic long mapped_bytes;   /* changed under mmap_lock held for write */

	/* A read-only, never-written area as the source of zero-filled
	 * UFFDIO_COPY: fault_around_max pages long. */
	void *zero_src;

	/* Swap: set up at create when there is a memory limit, then immutable. */
	bool swap_inited; /* swap_init() ran: swap_destroy() has work */
	bool swap_on;
	long limit_pages, wmark_high, wmark_low;
	struct swap_dev dev;
	bool dev_open;
	struct tier *tier;    /* the compressed tier (tier.h); NULL: none.  Immutable */
	struct frame *frames; /* nr_frames of them */
	size_t nr_frames;
	void *frame_bufs;
	int mem_fd; /* /proc/self/mem: eviction reads pages through it (read_app_pages()) */

	pthread_mutex_t frame_lock; /* leaf: the frame free list */
	struct frame *frame_free;   /* frame_lock */
	_Atomic long frames_used;
	_Atomic uint64_t evictions; /* pages evicted so far: the refault clock */
	_Atomic bool io_error_logged;
	_Atomic bool tier_error_logged; /* a tier page that did not decompress, said once */

	/* Prefetch beyond sequential (prefetch.h): the trend detector over the
	 * space's major faults that continue no sequential stream (its own
	 * lock, a leaf), and the window's feedback (atomics). */
	struct pf_vma pf;
	struct pf_feedback pf_fb;

	pthread_mutex_t batch_lock;  /* leaf: the pool of I/O batches */
	struct io_batch *batches;    /* IO_BATCHES of them */
	struct io_batch *batch_free; /* batch_lock */
	unsigned int batches_out;    /* batch_lock: taken, not yet back */
	pthread_cond_t batches_back; /* batch_lock: batches_out reached 0 */

	/* Retries for the handler threads (thread delivery, cont.c). */
	pthread_mutex_t retry_lock;		/* leaf */
	struct waiter *retry_head, *retry_tail; /* retry_lock */
	int retry_fd;				/* eventfd: retries queued */

	/* Reclaim (reclaim.c). */
	pthread_mutex_t reclaim_lock; /* kswapd's, MADV_PAGEOUT's, or a direct reclaim's */
	_Atomic int reclaim_waiters;  /* direct reclaimers waiting for it */
	/* zap[0], under reclaim_lock: evictions awaiting their zap.  Direct
	 * reclaims that found reclaim_lock taken evict beside its holder,
	 * each with a spare batch of its own: zap[1 + i] is its claimer's
	 * while zap_spare_busy[i] (reclaim.c: zap_spare_get()). */
	struct zap_batch *zap;
	_Atomic bool zap_spare_busy[RECLAIM_ZAP_SPARES];
	pthread_mutex_t clock_lock; /* leaf: the chunk ring and the hand */
	struct cds_list_head lru;   /* clock_lock */
	struct cds_list_head *hand; /* clock_lock */
	struct fl_worker kswapd;    /* the background reclaimer */

	/* The page caches of mapped files (filemap.c). */
	pthread_mutex_t files_lock; /* leaf: the list of files */
	struct fl_file *files;	    /* files_lock */
	_Atomic long nr_files;
	_Atomic long file_pages;	 /* pages UPTODATE in any cache: memory used */
	_Atomic long file_dirty;	 /* of those, dirty */
	_Atomic long file_writeback;	 /* of those, being written back */
	_Atomic unsigned long file_hand; /* the reclaim clock's file (racy hint) */
	struct fl_worker flusher;	 /* writes dirty file pages back */
	_Atomic uint32_t flush_gen;	 /* futex word: bumped after each flusher round */
	bool files_inited;
	struct file_ring *fring; /* the files' I/O ring (fileio.c) */
	struct ws_state *ws;	 /* working-set record and replay (workingset.c) */
	struct touch_log *touch; /* every fault, for faultline run --record (touchlog.c) */
	_Atomic bool buffered_logged;

	/* The handler threads (handler.c), each with its epoll set: kept here
	 * so that a child of fork() closes the sets it inherited. */
	struct fl_handler {
		struct fl_space *sp;
		pthread_t thread;
		int ep;	    /* epoll set: the userfaultfd EPOLLEXCLUSIVE */
		int ep_all; /* pinned: the userfaultfd without it; else -1 */
		int cpu;    /* FAULTLINE_HANDLER_PIN: its CPU; -1: any */
	} * handlers;
	/* Held for read by a handler thread while it handles what one
	 * epoll_wait() gave it; for write by fork (fork.c), so that every
	 * handler is between two such rounds, holding nothing. */
	pthread_rwlock_t handler_gate;
	/* Polling for the next fault message before sleeping (handler.c,
	 * FAULTLINE_HANDLER_SPIN): at most one handler polls at a time, and
	 * only while fewer threads fault than there are CPUs (or than the
	 * size of fault_tids, which counts at most that many).  fault_tids:
	 * the threads whose faults were served lately, and when, also read
	 * by a pinned handler reading one message at a time (it stops when
	 * one thread alone faults); relaxed atomics, no lock (a lost update
	 * only misjudges one poll, or one more read). */
	_Atomic bool handler_polling;
	unsigned int online_cpus;
	/* FAULTLINE_HANDLER_PIN: the CPUs the process may use, read when the
	 * handlers start; a pinned handler goes back to them (handler.c). */
	cpu_set_t handler_cpuset;
	struct {
		_Atomic int32_t tid;
		_Atomic uint64_t ns;
	} fault_tids[8];
	int stop_fd; /* eventfd: handler threads stop */
	unsigned int nr_handlers;
	/* Handler threads sleeping in a synchronous swap read: at most
	 * cfg.handlers - 1, so that one is always reading fault messages. */
	_Atomic int sync_readers;
	/* Faults that own their page's read (own_read): from do_swap_page()'s
	 * decision, under the page's ptl and the fault's lock, until the read
	 * is submitted (swap_read_start()) or done and completed in the
	 * faulting thread (fault_sleep()): own_read_end().  fork waits for
	 * none (fork_space_prepare(), swapdev_fork_prepare()). */
	_Atomic int sync_completing;
	_Atomic bool dying;

	struct fl_stat_stripe *stats; /* FL_STAT_STRIPES of them */
	/* The order of creation, from 1; set before the space is on the list
	 * of spaces (0: it never was), then immutable. */
	uint64_t id;

	/*
	 * The handle's users (space.c): API calls in flight (users, taken by
	 * space_get() until closing is set) and faults in flight in sigbus
	 * delivery (fault_refs, taken under RCU from the list, by
	 * fault_space_get()).  fl_space_destroy() polls each down to 0.
	 */
	_Atomic uint32_t users;
	_Atomic uint32_t fault_refs;
	_Atomic bool closing; /* set once, by fl_space_destroy() */

	/* claim_lock: [claim_start, claim_end) is being mapped by this
	 * space's write section and is not yet in its index (0, 0: none). */
	unsigned long claim_start, claim_end;
	/* Written under claim_lock (release), read under RCU (acquire). */
	struct stale_ranges *_Atomic stale;
	_Atomic bool stale_logged;
	_Atomic bool repair_logged;

	/* Thread delivery: the last fault answered with SIGSEGV, per faulting
	 * thread (segv_verdict(), handler.c): relaxed atomics, racy by design. */
#define SEGV_SLOTS 64
	_Atomic pid_t segv_tid[SEGV_SLOTS];
	_Atomic unsigned long segv_addr[SEGV_SLOTS];
	_Atomic unsigned int segv_seq[SEGV_SLOTS]; /* mm_lock_seq at the answer */
	_Atomic bool segv_logged;

	/* fork() (fork.c): the store's copy for the child, made by
	 * fork_space_prepare() (-1: none); fork_err: why the child cannot be
	 * given this space (0: it can). */
	int fork_store_fd;
	int fork_err;
	bool fork_held;	       /* fork_space_prepare() holds the space's locks */
	bool fork_reaper_held; /* and the reaper's (swapdev_fork_prepare()) */
};

/* fork() (fork.c), for a space made with cfg.fork. */
int fork_space_check(struct fl_space *sp);
void fork_space_prepare(struct fl_space *sp);
void fork_space_parent(struct fl_space *sp);
int fork_space_child(struct fl_space *sp);
void fork_space_child_late(struct fl_space *sp);
void fork_space_abandon(struct fl_space *sp, int err);
void fork_space_release(struct fl_space *sp);

/* Handles: a live space, held by an API call until space_put(). */
bool space_get(struct fl_space *sp);
void space_put(struct fl_space *sp);

bool space_has_addr_rcu(struct fl_space *sp, uint64_t addr);
bool space_has_addr(struct fl_space *sp, unsigned long addr);
bool space_range_has_file(struct fl_space *sp, unsigned long start, unsigned long end);
unsigned long space_run_end(struct fl_space *sp, unsigned long start, unsigned long end,
			    bool *served);

/* Sigbus delivery: the space whose VMA covers addr, held for the fault
 * until fault_space_put(). */
struct fl_space *fault_space_get(unsigned long addr);
void fault_space_put(struct fl_space *sp);
int fl_handle_foreign_sigbus_slow(unsigned long addr, unsigned int flags);

/* Claims: no two spaces map one range (space.c, under claim_lock). */
void claim_lock_acquire(void);
void claim_lock_release(void);
int space_claim_locked(struct fl_space *sp, unsigned long start, unsigned long end, bool fixed);
void space_claim_done(struct fl_space *sp);

/* Stale ranges (struct stale_ranges). */
void space_mark_stale(struct fl_space *sp, unsigned long start, unsigned long end);
bool space_stale_overlaps(struct fl_space *sp, unsigned long start, unsigned long end);
struct stale_ranges *space_take_stale(struct fl_space *sp);
void stale_ranges_free(struct stale_ranges *st);

/* The write sections a space's lifetime needs (mmap.c). */
void mm_drop_stale(struct fl_space *sp);
void mm_unmap_all(struct fl_space *sp);

#endif /* FL_SPACE_H */
