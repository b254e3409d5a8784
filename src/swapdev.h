/* SPDX-License-Identifier: MIT */
/*
 * The swap device: 4 KiB slots in a file or a block device, read and written
 * with O_DIRECT through io_uring, so that the page cache holds none of it.
 * This is the backend: it moves slots of bytes.  What is in them is checked
 * by the store's integrity layer (store.h), which swap.c calls around every
 * write and read; a named store's format and the checks before it is used
 * are in storefmt.h.
 *
 * Slots start at data_off: after the header of a named store, at 0 in the
 * default temporary file.
 *
 * Locks:
 *   swap_dev.lock      the slot map, the discard queue, the cursor, the
 *                      size, full (a leaf)
 *   swap_dev.sq_lock   the submission side of the ring (a leaf)
 * Completions are reaped by one thread per device, which calls each I/O's
 * done() callback; a callback must not sleep on anything that waits for I/O.
 *
 * Freed slots are discarded (BLKDISCARD on a device that takes it, else
 * overwritten with zeros), so that what a page held does not outlive its
 * slot: swap_slot_free() queues the slot, and the discard worker discards
 * the queue in runs, off the fault path, then makes the slots free.  A slot
 * is not handed out again before its discard is done, so a discard can never
 * destroy a newer write.  Opening a named store discards what an earlier
 * user left (a crash); closing it discards all of it.
 *
 * Slow-device emulation (delay_ns, FAULTLINE_SWAP_DELAY): every I/O still goes
 * to the store, but its completion is delivered no earlier than t_submit +
 * delay_ns.  The reaper keeps the completions not yet due on a list of its
 * own (no lock: only it touches the list) and waits with a timeout until the
 * earliest is due; swap_read_sync() sleeps until then in the calling thread.
 * An I/O counts as in flight until its done() runs (or swap_read_sync()
 * returns), the delay included.
 */
#ifndef FL_SWAPDEV_H
#define FL_SWAPDEV_H

#include "lib.h"

#include <liburing.h>
#include <sys/uio.h>

#include "hist.h"
#include "store.h"
#include "worker.h"

#define SWAP_SLOT_SIZE 4096UL
#define SWAP_NO_SLOT UINT32_MAX

struct swap_io;
struct swap_dev;
typedef void (*swap_done_fn)(struct swap_io *io, int res);

/* One read or write of one slot; owned by the caller until done() runs. */
struct swap_io {
	uint32_t slot;
	bool write;
	bool injected; /* set by swap_submit(): fails by injection */
	/* Completed by swapdev_post(), not by the backend's I/O: its result
	 * is posted_res; no_delay: not subject to the emulated delay (a page
	 * served from memory). */
	bool posted, no_delay;
	/* Set by the swap layer (swap.c): the page came from the compressed
	 * tier, not from the store, so it was never sealed. */
	bool from_tier;
	int posted_res;
	void *buf; /* SWAP_SLOT_SIZE bytes, 4 KiB aligned */
	/* Or, with nr > 1: nr slots from slot, one buffer each (vectored). */
	const struct iovec *iov;
	unsigned int nr;
	swap_done_fn done;
	uint64_t t_submit; /* fl_now_ns() (CLOCK_MONOTONIC) when submitted */
	/* Set by the caller: a backend with a timeout ends io by then (one
	 * try at least), however long its own timeout; 0: its own. */
	uint64_t t_end_by;
	/* The reaper's, while the completion waits out the device's delay. */
	int delayed_res;
	struct swap_io *delayed_prev, *delayed_next;
	/* The backend's while it holds io: its queue, its deadline, and for a
	 * read_sync() served by a thread of the backend, the result and the
	 * word the reader sleeps on. */
	struct swap_io *be_next;
	uint64_t be_deadline;
	uint64_t be_done; /* rstore: which of its nr pages are answered */
	bool be_again;	  /* rstore: tried in a round before */
	bool sync;
	int sync_res;
	_Atomic uint32_t sync_done;
};

/*
 * A store backend: what moves slots of bytes to where they are kept.  The
 * device (swapdev.c) owns everything else and shares it among backends:
 * the slot map and its allocator, the discard queue and its worker, the
 * completion ring and its reaper thread (every done() runs there, with
 * in_completion set), error injection, the emulated delay and the counts.
 * So a new backend is one file that fills in this table:
 *
 *   submit     start io: a read or a write of io->nr (or 1) consecutive
 *              slots from io->slot, into or from io->buf (io->iov).  Never
 *              sleeps on the I/O.  When it is over, the backend posts the
 *              result, 0 or a negative errno: an io_uring
 *              completion on d->ring carries io as its user data (the file
 *              backend), or swapdev_complete().  A backend that times
 *              I/O out ends io by io->t_end_by if that is set and sooner
 *              (after one try).  Return: 0, or a negative errno: then
 *              done() will not run.
 *   read_sync  read one slot in the calling thread, which sleeps until it
 *              is in: the faulting thread in sigbus delivery (so: async-
 *              signal-safe, no malloc), or a handler thread.  Return: 0 or
 *              a negative errno.
 *   discard    make n slots from slot forget their bytes (freed slots).
 *              Context: the discard worker, no lock held.  Return: 0 or a
 *              negative errno (logged once; the slots are freed anyway).
 *   close      let go of the backend's resources; with clear, first make
 *              every slot forget its bytes (the space ends).  Context:
 *              nothing in flight, the reaper stopped.
 *
 * What a backend does not do: check or seal pages.  The integrity layer
 * (store.h) runs above it, in swap.c, on every page written to or read
 * from any backend, whatever its medium.
 */
struct swap_backend {
	const char *name;
	int (*submit)(struct swap_dev *d, struct swap_io *io);
	int (*read_sync)(struct swap_dev *d, struct swap_io *io);
	int (*discard)(struct swap_dev *d, unsigned long slot, unsigned long n);
	void (*close)(struct swap_dev *d, bool clear);
	/* A discard gives the backend's memory back (a remote key deleted):
	 * freed slots are discarded also when they hold ciphertext. */
	bool discard_frees;
};

struct swap_dev {
	const struct swap_backend *be; /* immutable after open */
	void *be_priv;		       /* the backend's */
	int fd;
	bool is_blockdev;
	bool grows;	  /* a file we may extend */
	bool named;	  /* FAULTLINE_SWAP: a store with a header, flock()ed */
	bool can_discard; /* a device: BLKDISCARD works (else freed slots are zeroed) */
	/* Freed slots go through the discard worker; false (swap.c, with
	 * encryption: they hold ciphertext, unless the backend's discard_frees)
	 * frees them at once.  Set before any slot is freed, then immutable. */
	bool discard_freed;
	uint64_t data_off; /* bytes before slot 0: the header */
	char *path;	   /* for messages; NULL: the temporary file */
	uint64_t delay_ns; /* emulated latency: set at open, then immutable */
	pthread_mutex_t lock;
	uint64_t *map;		/* lock: one bit per slot, 1 = in use or discarding */
	unsigned long nr_slots; /* lock */
	unsigned long cursor;	/* lock: next-fit, so write-out is sequential */
	unsigned long used;	/* lock: slots that belong to an owner */
	_Atomic unsigned long used_hint;
	/* The discard queue: freed slots still set in map.  discard_lo/hi:
	 * the words of discard_map that may have bits.  discarding: queued or
	 * being discarded (neither used nor free). */
	uint64_t *discard_map;		      /* lock */
	unsigned long discarding;	      /* lock */
	unsigned long discard_lo, discard_hi; /* lock */
	struct fl_worker discarder;
	void *zero_page;	    /* immutable: what freed slots are overwritten with */
	_Atomic uint64_t discarded; /* slots discarded so far */
	/*
	 * The last allocation found no free slot, and none was freed since:
	 * written under lock, read racily by reclaim to back off (reclaim.c).
	 * full_count: how many times it became so; full_logged: said once.
	 */
	_Atomic bool full;
	_Atomic uint64_t full_count;
	bool full_logged; /* lock */
	_Atomic bool discard_failed_logged;
	/* Pages the backend read and wrote (completed without error), and how
	 * long its reads and writes took, submission to completion (a write to
	 * a Redis Cluster with replicas: until WAIT said they have it). */
	_Atomic uint64_t pages_read, pages_written;
	struct fl_hist read_ns, write_ns;

	/*
	 * Called by swap_slot_free() before a slot goes: true means the slot
	 * is still busy (the compressed tier is writing it back) and must not
	 * be freed now; whoever makes it idle frees it with
	 * swap_slot_free_now().  Set before any slot is freed, then
	 * immutable; NULL: none.  Context: as swap_slot_free().
	 */
	bool (*slot_freeing)(void *arg, uint32_t slot);
	void *slot_freeing_arg;

	/* The integrity layer over this device's slots: set up and torn down
	 * by swap.c (swap_init(), swap_destroy()), not by the device. */
	struct store store;

	struct io_uring ring;
	pthread_mutex_t sq_lock;
	/* Held by the reaper while it delivers a completion: fork
	 * (swapdev_fork_quiesce()) takes it once nothing is in flight, and
	 * checks again under it, so that no callback is half run. */
	pthread_mutex_t reap_lock;
	unsigned int depth;
	unsigned int cq_entries; /* the completion queue's size: set at open */
	pthread_t reaper;
	bool reaper_started;
	_Atomic long inflight;
	_Atomic long inflight_max;
	_Atomic uint64_t inflight_sum, inflight_samples;

	/*
	 * Test-only error injection (the wrapper around the real store): an
	 * I/O on a slot whose bit is set here completes with -EIO without
	 * reaching the device.  Set through swapdev_inject_error().
	 */
	_Atomic(uint64_t *) fail_read, fail_write;
	unsigned long fail_words;
};

/*
 * Set in a thread while it runs I/O completions: the reaper, or a handler
 * thread completing its own synchronous read.  Such a thread must never
 * block on a lock that a fault may hold across I/O, nor reclaim directly:
 * it only tries locks (mem_reserve(), cont.c).
 */
extern FL_TLS bool in_completion;

/*
 * Open a store: path NULL or empty for an unlinked temporary file in
 * $TMPDIR; else a named store (storefmt.h: store_claim(), which checks it
 * and logs any refusal), created if nothing is there and flags has
 * SWAPDEV_CREATE.
 */
#define SWAPDEV_CREATE 0x1u
int swapdev_open(struct swap_dev *d, const char *path, unsigned int depth);
/*
 * The same, emulating a slower device: no I/O completes before delay_ns
 * (0: none); max_inflight: the most I/Os the caller can have in flight at
 * once (0: 4096), which sizes the completion queue.
 */
int swapdev_open_delay(struct swap_dev *d, const char *path, unsigned int depth, uint64_t delay_ns,
		       unsigned int max_inflight);
int swapdev_open_flags(struct swap_dev *d, const char *path, unsigned int flags, unsigned int depth,
		       uint64_t delay_ns, unsigned int max_inflight);
/* The same; a path "redis-cluster://HOST:PORT[,...]" is a Redis Cluster
 * (rstore.h), each write waited for on remote_replicas replicas, each
 * command given up after remote_timeout_ns. */
int swapdev_open_remote(struct swap_dev *d, const char *path, unsigned int flags,
			unsigned int depth, uint64_t delay_ns, unsigned int max_inflight,
			int remote_replicas, uint64_t remote_timeout_ns);
void swapdev_close(struct swap_dev *d);
/* The most slots this device can ever have (its metadata is sized so). */
unsigned long swapdev_max_slots(const struct swap_dev *d);
/* Allocate up to n slots, consecutive where possible.  Return: how many;
 * fewer than n: the store is full (swap_store_full() until one is freed). */
unsigned int swap_slots_alloc(struct swap_dev *d, unsigned int n, uint32_t *slots);
/* Give a slot back: it is discarded, then free again (unless slot_freeing
 * says it is busy: then later, by swap_slot_free_now()). */
void swap_slot_free(struct swap_dev *d, uint32_t slot);
void swap_slot_free_now(struct swap_dev *d, uint32_t slot);
/*
 * Complete io with res through the completion ring: its done() runs on the
 * reaper thread, as for an I/O on the ring.  swapdev_complete(): a backend
 * finishing an io that swap_submit() gave it; swapdev_post(): an io that
 * never went to a backend (a page the swap layer served from memory, or
 * kept there), which counts as in flight until its done() runs.
 * Context: any thread, no faultline lock needed; never sleeps on I/O.
 */
void swapdev_complete(struct swap_dev *d, struct swap_io *io, int res);
void swapdev_post(struct swap_dev *d, struct swap_io *io, int res);

/*
 * swapdev_post() for several ios with one submission (a system call and one
 * hold of sq_lock, where one each would be paid per io): swapdev_post_add()
 * counts io in flight and gathers it in p (a full p is flushed);
 * swapdev_post_flush() posts what p holds.  An io added is in flight, and
 * its done() runs only after the flush: flush before anything waits for
 * it.  p starts as {0}.  Context: as swapdev_post(); p is the caller's.
 */
#define SWAP_POSTS_MAX 64
struct swap_posts {
	unsigned int n;
	struct swap_io *io[SWAP_POSTS_MAX];
};
void swapdev_post_add(struct swap_dev *d, struct swap_posts *p, struct swap_io *io, int res);
void swapdev_post_flush(struct swap_dev *d, struct swap_posts *p);

/* No free slot at the last allocation, and none freed since: reclaim backs
 * off writing.  Context: any; racy by design. */
static inline bool swap_store_full(struct swap_dev *d)
{
	return atomic_load_explicit(&d->full, memory_order_relaxed);
}
int swap_submit(struct swap_dev *d, struct swap_io *io);
int swap_read_sync(struct swap_dev *d, struct swap_io *io);
int swapdev_inject_error(struct swap_dev *d, uint32_t slot, bool write, bool on);

/* fork() (fork.c): the store's copy for the child, and the device's
 * threads, ring and locks made again there. */
/* swapdev.c's, for swapdev_fork.c. */
off_t swapdev_slot_off(const struct swap_dev *d, uint32_t slot);
void *swapdev_reaper_main(void *arg);
int swapdev_open_tmpfile(void);
bool swapdev_is_file(const struct swap_dev *d);

void swapdev_fork_quiesce(struct swap_dev *d, _Atomic int *own_reads);
int swapdev_fork_prepare(struct swap_dev *d, int *copy_fd);
void swapdev_fork_parent(struct swap_dev *d, int copy_fd);
int swapdev_fork_child(struct swap_dev *d, int copy_fd);

#endif
