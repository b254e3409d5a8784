// SPDX-License-Identifier: MIT
/*
 * The swap device (see swapdev.h).
 *
 * The default store is an unlinked temporary file (O_TMPFILE, mode 0600) in
 * $TMPDIR, grown on demand and gone with the process; a path names a store
 * made by `faultline mkstore` (or by swap_create): a file, fixed in size or
 * growing on demand, or a block device; store_claim() (storefmt.c) decides
 * whether it may be used at all.  Slots are allocated next-fit from a
 * cursor, so that a batch of evictions is written out sequentially.
 */
#include "swapdev.h"

#include "rstore.h"
#include "storefmt.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

FL_TLS bool in_completion;

static const struct swap_backend file_backend;

#define SWAP_GROW_MIN (64UL << 20) /* bytes added to a file at least */
#define FAIL_SLOTS (1UL << 22)	   /* error injection covers 16 GiB of slots */
#define SWAP_MAX_SLOTS (1UL << 30) /* 4 TiB of store */
#define MAP_BYTES (SWAP_MAX_SLOTS / 8)
/* Freed slots queued before the discard worker is kicked; it also runs every
 * DISCARD_PERIOD_MS for what is left. */
#define DISCARD_BATCH 64
#define DISCARD_PERIOD_MS 50
#define DISCARD_RUNS 64 /* runs per round of the worker */
#define ZERO_IOV 64	/* slots zeroed per vectored write */

off_t swapdev_slot_off(const struct swap_dev *d, uint32_t slot)
{
	return (off_t)d->data_off + (off_t)slot * (off_t)SWAP_SLOT_SIZE;
}

/*
 * Completions not yet due (slow-device emulation), sorted by due time.  The
 * reaper's alone: no lock.  All delays are equal, so completions mostly
 * arrive in due order and an insertion from the tail stops at once; one that
 * arrives out of order (an I/O submitted earlier but finished later) still
 * goes to its place, so that none is delivered before it is due nor held
 * back behind a later one.
 */
struct delay_list {
	struct swap_io *head, *tail;
};

static void delay_insert(struct delay_list *l, struct swap_io *io)
{
	struct swap_io *p = l->tail;

	while (p && p->t_submit > io->t_submit)
		p = p->delayed_prev;
	io->delayed_prev = p;
	io->delayed_next = p ? p->delayed_next : l->head;
	if (io->delayed_next)
		io->delayed_next->delayed_prev = io;
	else
		l->tail = io;
	if (p)
		p->delayed_next = io;
	else
		l->head = io;
}

static struct swap_io *delay_pop(struct delay_list *l)
{
	struct swap_io *io = l->head;

	l->head = io->delayed_next;
	if (l->head)
		l->head->delayed_prev = NULL;
	else
		l->tail = NULL;
	io->delayed_next = io->delayed_prev = NULL;
	return io;
}

/* The I/O leaves the in-flight count as its callback runs. */
static void deliver(struct swap_dev *d, struct swap_io *io, int res)
{
	if (!res && !io->from_tier)
		atomic_fetch_add_explicit(io->write ? &d->pages_written : &d->pages_read,
					  io->nr > 1 ? io->nr : 1, memory_order_relaxed);
	if (!io->from_tier && !io->injected)
		fl_hist_record(io->write ? &d->write_ns : &d->read_ns, fl_now_ns() - io->t_submit);
	atomic_fetch_sub(&d->inflight, 1);
	io->done(io, res);
}

void *swapdev_reaper_main(void *arg)
{
	struct swap_dev *d = arg;
	struct delay_list delayed = {NULL, NULL};
	bool stop = false;

	in_completion = true; /* never block here: see mem_reserve() */
	if (d->delay_ns)
		prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* wake when due, not 50 us on */
	for (;;) {
		struct io_uring_cqe *cqe;
		int ret;

		if (delayed.head) {
			uint64_t now = fl_now_ns();
			uint64_t due = delayed.head->t_submit + d->delay_ns;
			if (due <= now) {
				struct swap_io *io = delay_pop(&delayed);
				pthread_mutex_lock(&d->reap_lock);
				deliver(d, io, io->delayed_res);
				pthread_mutex_unlock(&d->reap_lock);
				continue;
			}
			/* Relative: the kernel's clock is CLOCK_MONOTONIC too,
			 * and the check above is redone on waking anyway. */
			struct __kernel_timespec ts = {
				.tv_sec = (long long)((due - now) / 1000000000),
				.tv_nsec = (long long)((due - now) % 1000000000)};
			ret = io_uring_wait_cqe_timeout(&d->ring, &cqe, &ts);
			if (ret == -ETIME || ret == -EINTR)
				continue;
		} else if (stop) {
			break;
		} else {
			ret = io_uring_wait_cqe(&d->ring, &cqe);
			if (ret == -EINTR)
				continue;
		}
		FL_BUG_ON(ret < 0);
		pthread_mutex_lock(&d->reap_lock);
		struct swap_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&d->ring, cqe);
		if (!io) {
			/* The stop sentinel from swapdev_close(), sent once nothing
			 * is in flight; whatever is still delayed goes first. */
			stop = true;
			pthread_mutex_unlock(&d->reap_lock);
			continue;
		}
		tsan_acquire(io); /* pairs with the release in swap_submit(), swapdev_post() */
		if (io->posted)
			res = io->posted_res;
		else if (res >= 0 && res != (int)(SWAP_SLOT_SIZE * (io->nr > 1 ? io->nr : 1)))
			res = -EIO; /* a short transfer is an error for a slot */
		res = res < 0 ? res : 0;
		if (d->delay_ns && !io->no_delay && fl_now_ns() < io->t_submit + d->delay_ns) {
			io->delayed_res = res;
			delay_insert(&delayed, io);
		} else {
			deliver(d, io, res);
		}
		pthread_mutex_unlock(&d->reap_lock);
	}
	return NULL;
}

/*
 * Grow a file store to at least want_slots.  The slot map, the discard queue
 * and the store's metadata (store.h) are reserved for the most slots up
 * front (address space only, backed as it is used), so growing allocates
 * nothing: it also runs inside the SIGBUS handler (direct reclaim in sigbus
 * delivery).  The file is never shrunk: where fallocate() is not supported,
 * ftruncate() only ever extends it.  Context: d->lock held.
 */
static int grow_locked(struct swap_dev *d, unsigned long want_slots)
{
	unsigned long n = MAX(want_slots, d->nr_slots + SWAP_GROW_MIN / SWAP_SLOT_SIZE);
	off_t end;
	struct stat st;

	if (!d->grows)
		return -ENOSPC;
	n = MAX(n, d->nr_slots * 5 / 4);
	n = MIN(n, SWAP_MAX_SLOTS);
	if (d->store.inited) /* no slot beyond the table of their checksums */
		n = MIN(n, d->store.max_slots);
	if (n <= d->nr_slots)
		return -ENOSPC;
	end = swapdev_slot_off(d, (uint32_t)MIN(n, SWAP_NO_SLOT));
	/* A backend without a file (its slots are keys) just has more. */
	if (d->fd >= 0 && fallocate(d->fd, 0, swapdev_slot_off(d, (uint32_t)d->nr_slots),
				    end - swapdev_slot_off(d, (uint32_t)d->nr_slots))) {
		if (errno != EOPNOTSUPP)
			return -errno; /* ENOSPC, EFBIG, EIO: full for now */
		if (fstat(d->fd, &st))
			return -errno;
		if (st.st_size < end && ftruncate(d->fd, end))
			return -errno;
	}
	d->nr_slots = n;
	return 0;
}

/*
 * Overwrite n slots from slot with zeros, in runs of up to ZERO_IOV slots
 * per vectored write.  Context: the discard worker; no lock; the slots are
 * nobody's.  Return: 0 or a negative errno.
 */
static int zero_slots(struct swap_dev *d, unsigned long slot, unsigned long n)
{
	struct iovec iov[ZERO_IOV];

	for (unsigned int i = 0; i < ZERO_IOV; i++)
		iov[i] = (struct iovec){d->zero_page, SWAP_SLOT_SIZE};
	while (n) {
		unsigned int k = (unsigned int)MIN(n, (unsigned long)ZERO_IOV);
		ssize_t w = pwritev(d->fd, iov, (int)k, swapdev_slot_off(d, (uint32_t)slot));
		if (w < 0)
			return -errno;
		if (w != (ssize_t)(k * SWAP_SLOT_SIZE))
			return -EIO;
		slot += k;
		n -= k;
	}
	return 0;
}

/*
 * Discard freed slots: their bytes are gone from the store.  BLKDISCARD on
 * a device that takes it; otherwise, and on a file, they are overwritten
 * with zeros.  Not a hole punched in a file: FALLOC_FL_PUNCH_HOLE takes the
 * file's inode lock and waits for every direct I/O in flight, and the next
 * write into the hole allocates under that lock again, so with many slots
 * freed the swap-ins stall behind it (on ext4 it halved the throughput of
 * a load that rewrites swapped pages; BENCHMARKS.md).  A direct write over
 * allocated blocks takes that lock shared.
 * Context: the discard worker; no lock; the slots are nobody's.
 * Return: 0 or a negative errno.
 */
static int file_discard(struct swap_dev *d, unsigned long slot, unsigned long n)
{
	uint64_t range[2] = {(uint64_t)swapdev_slot_off(d, (uint32_t)slot), n * SWAP_SLOT_SIZE};

	if (d->is_blockdev && d->can_discard && !ioctl(d->fd, BLKDISCARD, range))
		return 0;
	return zero_slots(d, slot, n);
}

/*
 * Discard the whole data area (a named store, at open and at destroy): on a
 * file FALLOC_FL_ZERO_RANGE, which keeps its blocks (so later writes do not
 * allocate), else a hole; BLKDISCARD on a device.  Once, with nothing in
 * flight: the inode lock costs nothing here.
 * Context: open or close; no I/O in flight.  Return: 0 or a negative errno.
 */
static int clear_store(struct swap_dev *d)
{
	off_t off = swapdev_slot_off(d, 0), len = (off_t)(d->nr_slots * SWAP_SLOT_SIZE);
	uint64_t range[2] = {(uint64_t)off, (uint64_t)len};

	if (!len)
		return 0;
	if (d->is_blockdev)
		return ioctl(d->fd, BLKDISCARD, range) ? -errno : 0;
	if (!fallocate(d->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len))
		return 0;
	return fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) ? -errno : 0;
}

static void discard_failed(struct swap_dev *d, int err)
{
	if (!atomic_exchange(&d->discard_failed_logged, true))
		fl_log("warning: the swap store %s cannot discard what it holds (%s): what an "
		       "earlier user left there stays until overwritten, and so do the pages "
		       "in use when this process ends; FAULTLINE_SWAP_ENCRYPT=1 keeps them "
		       "unreadable",
		       d->path ? d->path : "(temporary file)", strerror(-err));
}

static bool test_bit(const uint64_t *map, unsigned long i)
{
	return map[i / 64] & (1ULL << (i % 64));
}

/*
 * Slots became free: the store is not full any more.  Context: d->lock.
 */
static void slots_freed_locked(struct swap_dev *d, unsigned long n)
{
	if (n && atomic_load_explicit(&d->full, memory_order_relaxed))
		atomic_store_explicit(&d->full, false, memory_order_relaxed);
}

/*
 * One round of the discard worker: take runs of queued slots, discard them
 * with no lock held, then make them free.  The slots stay set in map
 * throughout, so none is handed out before its discard is done.
 * Context: the discard worker (fl-discard).
 */
static void discard_round(void *arg)
{
	struct swap_dev *d = arg;
	struct {
		unsigned long start, n;
	} run[DISCARD_RUNS];

	for (;;) {
		unsigned int nr = 0;
		unsigned long total = 0;

		pthread_mutex_lock(&d->lock);
		unsigned long w = d->discard_lo;
		for (; w < d->discard_hi && nr < DISCARD_RUNS; w++) {
			uint64_t bits = d->discard_map[w];
			unsigned int s, len;
			if (!bits)
				continue;
			for_each_bit_run(bits, s, len)
			{
				unsigned long start = w * 64 + s;
				if (nr && run[nr - 1].start + run[nr - 1].n == start) {
					run[nr - 1].n += len; /* across a word */
				} else if (nr < DISCARD_RUNS) {
					run[nr].start = start;
					run[nr++].n = len;
				} else {
					break;
				}
				d->discard_map[w] &=
					~(len == 64 ? ~0ULL : ((1ULL << len) - 1) << s);
			}
			if (d->discard_map[w])
				break; /* out of runs: the rest next time */
		}
		d->discard_lo = w;
		if (d->discard_lo >= d->discard_hi)
			d->discard_lo = d->discard_hi = 0;
		pthread_mutex_unlock(&d->lock);
		if (!nr)
			return;
		for (unsigned int i = 0; i < nr; i++) {
			int ret = d->be->discard(d, run[i].start, run[i].n);
			if (ret && !atomic_exchange(&d->discard_failed_logged, true))
				fl_log("warning: discarding freed slots of the swap store %s "
				       "failed (%s): their old pages stay there until "
				       "overwritten (in a Redis Cluster: until the space ends)",
				       d->path ? d->path : "(temporary file)", strerror(-ret));
			total += run[i].n;
		}
		pthread_mutex_lock(&d->lock);
		for (unsigned int i = 0; i < nr; i++)
			for (unsigned long k = run[i].start; k < run[i].start + run[i].n; k++) {
				/* Still ours: set in map, off the queue. */
				FL_DEBUG_BUG_ON(!test_bit(d->map, k) ||
						test_bit(d->discard_map, k));
				d->map[k / 64] &= ~(1ULL << (k % 64));
			}
		d->discarding -= total;
		slots_freed_locked(d, total);
		pthread_mutex_unlock(&d->lock);
		atomic_fetch_add(&d->discarded, total);
	}
}

/*
 * Let go of the store: the discard worker stopped; with discard_all, every
 * slot discarded (a named store: what the space wrote does not outlive it);
 * the file closed, which drops its lock.  Context: the reaper has stopped.
 */
static void release(struct swap_dev *d, bool discard_all)
{
	worker_stop(&d->discarder);
	if (d->be)
		d->be->close(d, discard_all);
	d->be = NULL;
	if (d->map && d->map != MAP_FAILED)
		munmap(d->map, MAP_BYTES);
	d->map = NULL;
	if (d->zero_page && d->zero_page != MAP_FAILED)
		munmap(d->zero_page, SWAP_SLOT_SIZE);
	d->zero_page = NULL;
	if (d->discard_map && d->discard_map != MAP_FAILED)
		munmap(d->discard_map, MAP_BYTES);
	d->discard_map = NULL;
	free(d->path);
	d->path = NULL;
}

int swapdev_open(struct swap_dev *d, const char *path, unsigned int depth)
{
	return swapdev_open_flags(d, path, 0, depth, 0, 0);
}

int swapdev_open_delay(struct swap_dev *d, const char *path, unsigned int depth, uint64_t delay_ns,
		       unsigned int max_inflight)
{
	return swapdev_open_flags(d, path, 0, depth, delay_ns, max_inflight);
}

/* The unlinked temporary file in $TMPDIR.  Return: an fd, or -errno. */
int swapdev_open_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EINVAL) {
		/* A file system without O_DIRECT (tmpfs): the store is in
		 * memory anyway; say so. */
		fl_log("warning: %s does not take O_DIRECT; the swap file goes through the page "
		       "cache",
		       dir);
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	}
	return fd < 0 ? -errno : fd;
}

/* A named store: checked and locked by store_claim(). */
static int open_named(struct swap_dev *d, const char *path, unsigned int flags)
{
	struct store_claim c;
	int ret;

	ret = store_claim(path, flags & SWAPDEV_CREATE, &c);
	if (ret)
		return ret;
	d->fd = c.fd;
	d->named = true;
	d->is_blockdev = c.blockdev;
	d->data_off = c.hdr.data_offset;
	d->grows = !c.blockdev && (c.hdr.flags & STORE_GROWS);
	/* A growing file may be longer than its header says: its slots are all
	 * ours.  A fixed store is what its header says. */
	uint64_t bytes = d->grows ? MAX(c.bytes, c.hdr.size) : c.hdr.size;
	d->nr_slots = MIN((bytes - d->data_off) / SWAP_SLOT_SIZE, SWAP_MAX_SLOTS);
	/* What an earlier user left (a crash) is nobody's now: discard it
	 * before anything else; on a device, that also says whether freed
	 * slots can be discarded rather than zeroed. */
	ret = clear_store(d);
	d->can_discard = !ret;
	if (ret)
		discard_failed(d, ret);
	return 0;
}

int swapdev_open_flags(struct swap_dev *d, const char *path, unsigned int flags, unsigned int depth,
		       uint64_t delay_ns, unsigned int max_inflight)
{
	return swapdev_open_remote(d, path, flags, depth, delay_ns, max_inflight, 0, 0);
}

int swapdev_open_remote(struct swap_dev *d, const char *path, unsigned int flags,
			unsigned int depth, uint64_t delay_ns, unsigned int max_inflight,
			int remote_replicas, uint64_t remote_timeout_ns)
{
	int ret;

	memset(d, 0, sizeof(*d));
	d->be = &file_backend;
	d->fd = -1;
	d->delay_ns = delay_ns;
	d->discard_freed = true;
	d->discarder.fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->sq_lock, NULL);
	pthread_mutex_init(&d->reap_lock, NULL);
	d->map = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	d->discard_map = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	/* The source of zero writes: a page of its own (not the kernel's zero
	 * page, which direct I/O may refuse to pin). */
	d->zero_page = mmap(NULL, SWAP_SLOT_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (d->map == MAP_FAILED || d->discard_map == MAP_FAILED || d->zero_page == MAP_FAILED) {
		ret = -ENOMEM;
		goto fail;
	}
	if (rstore_is_url(path)) {
		d->path = strdup(path);
		if (!d->path) {
			ret = -ENOMEM;
			goto fail;
		}
		ret = rstore_open(d, path, remote_replicas, remote_timeout_ns);
		if (ret)
			goto fail;
		d->grows = true;
		d->nr_slots = 0;
	} else if (path && *path) {
		d->path = strdup(path);
		if (!d->path) {
			ret = -ENOMEM;
			goto fail;
		}
		ret = open_named(d, path, flags);
		if (ret)
			goto fail;
	} else {
		d->fd = swapdev_open_tmpfile();
		if (d->fd < 0) {
			ret = d->fd;
			goto fail;
		}
		d->grows = true;
		d->nr_slots = 0;
	}
	if (d->grows && d->nr_slots < SWAP_GROW_MIN / SWAP_SLOT_SIZE) {
		ret = grow_locked(d, SWAP_GROW_MIN / SWAP_SLOT_SIZE);
		if (ret)
			goto fail;
	}
	ret = worker_start(&d->discarder, "fl-discard", discard_round, d, DISCARD_PERIOD_MS);
	if (ret)
		goto fail;
	/*
	 * Completions: room for every I/O that can be in flight (the caller's
	 * max_inflight, plus the stop sentinel), so that a submit never meets
	 * a full completion queue; up to io_uring's limit of 65536, beyond
	 * which (a huge swap_frames) the kernel keeps the overflow
	 * (IORING_FEAT_NODROP) and a submit waits for the reaper to drain it.
	 */
	unsigned int cq = MAX(8192u, 2 * MAX(depth, max_inflight ? max_inflight + 1 : 4096u));
	struct io_uring_params params = {.flags = IORING_SETUP_CQSIZE,
					 .cq_entries = MIN(cq, 65536u)};
	d->depth = depth;
	d->cq_entries = params.cq_entries;
	ret = io_uring_queue_init_params(depth, &d->ring, &params);
	if (ret)
		goto fail;
	if (delay_ns && !(d->ring.features & IORING_FEAT_EXT_ARG)) {
		/* Without it, a wait with a timeout queues a timeout request
		 * on the submission ring, which the submitters own. */
		fl_log("the swap delay needs io_uring waits with a timeout (Linux 5.11)");
		io_uring_queue_exit(&d->ring);
		ret = -EOPNOTSUPP;
		goto fail;
	}
	ret = -pthread_create(&d->reaper, NULL, swapdev_reaper_main, d);
	if (ret) {
		io_uring_queue_exit(&d->ring);
		goto fail;
	}
	pthread_setname_np(d->reaper, "fl-reaper");
	d->reaper_started = true;
	return 0;
fail:
	release(d, false);
	return ret;
}

/*
 * Context: no I/O may be submitted any more; the I/O in flight completes
 * (and its callbacks run) before this returns.  With a delay, that includes
 * the delay: a completion is never delivered early, so this waits up to
 * delay_ns after the last submission.
 */
void swapdev_close(struct swap_dev *d)
{
	if (d->reaper_started) {
		while (atomic_load(&d->inflight) > 0)
			usleep(100);
		pthread_mutex_lock(&d->sq_lock);
		struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
		while (!sqe) {
			io_uring_submit(&d->ring);
			sqe = io_uring_get_sqe(&d->ring);
		}
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		io_uring_submit(&d->ring);
		pthread_mutex_unlock(&d->sq_lock);
		pthread_join(d->reaper, NULL);
		io_uring_queue_exit(&d->ring);
		d->reaper_started = false;
	}
	release(d, true);
	free(atomic_load(&d->fail_read));
	free(atomic_load(&d->fail_write));
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->sq_lock);
	pthread_mutex_destroy(&d->reap_lock);
}

unsigned long swapdev_max_slots(const struct swap_dev *d)
{
	return d->grows ? SWAP_MAX_SLOTS : d->nr_slots;
}

/* The store is full: said once per store, counted each time it becomes so.
 * Context: d->lock. */
static void store_full_locked(struct swap_dev *d)
{
	bool first;

	if (atomic_load_explicit(&d->full, memory_order_relaxed))
		return;
	atomic_store_explicit(&d->full, true, memory_order_relaxed);
	atomic_fetch_add(&d->full_count, 1);
	first = !d->full_logged;
	d->full_logged = true;
	if (first)
		fl_log("the swap store %s is full (%lu slots of 4 KiB%s): dirty pages stay "
		       "resident, over the memory budget, until slots are freed (counted in "
		       "store_full)",
		       d->path ? d->path : "(temporary file)", d->nr_slots,
		       d->grows ? "; it cannot grow" : "");
}

/*
 * Context: any; takes d->lock.  Slots come next-fit from the cursor, so
 * consecutive calls get consecutive slots while the store has room.
 */
unsigned int swap_slots_alloc(struct swap_dev *d, unsigned int n, uint32_t *slots)
{
	unsigned int got = 0;
	bool kick = false;

	pthread_mutex_lock(&d->lock);
	while (got < n) {
		if (d->used + d->discarding >= d->nr_slots) {
			/* Slots being discarded come back soon: let the worker
			 * go now rather than grow for them. */
			kick = d->discarding > 0;
			if (grow_locked(d, d->nr_slots + n - got))
				break;
		}
		unsigned long i = d->cursor;
		for (unsigned long scanned = 0; scanned < d->nr_slots; scanned++) {
			if (i >= d->nr_slots)
				i = 0;
			if (!(i % 64) && d->map[i / 64] == UINT64_MAX) {
				i += 64;
				scanned += 63;
				continue;
			}
			if (!test_bit(d->map, i))
				break;
			i++;
		}
		if (i >= d->nr_slots || test_bit(d->map, i) || i >= SWAP_NO_SLOT)
			break;
		d->map[i / 64] |= 1ULL << (i % 64);
		d->used++;
		d->cursor = i + 1;
		slots[got++] = (uint32_t)i;
	}
	if (got < n)
		store_full_locked(d);
	atomic_store(&d->used_hint, d->used);
	pthread_mutex_unlock(&d->lock);
	if (kick)
		worker_kick(&d->discarder);
	return got;
}

/*
 * Context: any, also the SIGBUS handler; takes d->lock.  The slot goes to
 * the discard queue: the worker discards it, then frees it (unless
 * discard_freed is off: then it is free at once).
 */
void swap_slot_free(struct swap_dev *d, uint32_t slot)
{
	if (d->slot_freeing && d->slot_freeing(d->slot_freeing_arg, slot))
		return; /* busy: freed by swap_slot_free_now() when it is idle */
	swap_slot_free_now(d, slot);
}

/* swap_slot_free() without asking slot_freeing.  Context: as it. */
void swap_slot_free_now(struct swap_dev *d, uint32_t slot)
{
	bool kick;

	pthread_mutex_lock(&d->lock);
	FL_BUG_ON(slot >= d->nr_slots || !test_bit(d->map, slot) || test_bit(d->discard_map, slot));
	d->used--;
	if (!d->discard_freed) {
		d->map[slot / 64] &= ~(1ULL << (slot % 64));
		slots_freed_locked(d, 1);
		atomic_store(&d->used_hint, d->used);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	d->discard_map[slot / 64] |= 1ULL << (slot % 64);
	if (!d->discarding++ || d->discard_lo >= d->discard_hi) {
		d->discard_lo = slot / 64;
		d->discard_hi = slot / 64 + 1;
	} else {
		d->discard_lo = MIN(d->discard_lo, slot / 64);
		d->discard_hi = MAX(d->discard_hi, slot / 64 + 1);
	}
	kick = d->discarding >= DISCARD_BATCH || atomic_load(&d->full);
	atomic_store(&d->used_hint, d->used);
	pthread_mutex_unlock(&d->lock);
	if (kick)
		worker_kick(&d->discarder);
}

/* In-flight accounting of an I/O that starts now. */
static void inflight_add(struct swap_dev *d, struct swap_io *io)
{
	long n, m;

	io->t_submit = fl_now_ns();
	n = atomic_fetch_add(&d->inflight, 1) + 1;
	m = atomic_load(&d->inflight_max);
	while (n > m && !atomic_compare_exchange_weak(&d->inflight_max, &m, n))
		;
	atomic_fetch_add(&d->inflight_sum, (uint64_t)n);
	atomic_fetch_add(&d->inflight_samples, 1);
}

/* Whether error injection fails io: any slot of it (as a failed bio). */
static bool injected(struct swap_dev *d, const struct swap_io *io)
{
	uint64_t *fail = atomic_load(io->write ? &d->fail_write : &d->fail_read);

	for (unsigned int k = 0; fail && k < (io->nr > 1 ? io->nr : 1); k++) {
		uint32_t sl = io->slot + k;
		if (sl < FAIL_SLOTS && (atomic_load_explicit((_Atomic uint64_t *)&fail[sl / 64],
							     memory_order_relaxed) &
					(1ULL << (sl % 64))))
			return true;
	}
	return false;
}

/* A NOP on the ring that carries io to the reaper, not yet submitted.
 * Context: d->sq_lock. */
static void post_prep_locked(struct swap_dev *d, struct swap_io *io)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&d->ring)))
		io_uring_submit(&d->ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, io);
	tsan_release(io); /* everything the reaper reads of io is set */
}

/* Submit what post_prep_locked() prepared.  Context: d->sq_lock. */
static void post_submit_locked(struct swap_dev *d)
{
	/* Once prepared it will complete: a failed enter goes with the next. */
	for (int tries = 0; io_uring_submit(&d->ring) < 0 && tries < 100; tries++)
		sched_yield();
}

/* io completes with res, posted rather than read from the ring. */
static void post_result(struct swap_io *io, int res)
{
	io->posted = true;
	io->posted_res = res;
}

void swapdev_complete(struct swap_dev *d, struct swap_io *io, int res)
{
	post_result(io, res);
	pthread_mutex_lock(&d->sq_lock);
	post_prep_locked(d, io);
	post_submit_locked(d);
	pthread_mutex_unlock(&d->sq_lock);
}

/* What swapdev_post() adds to swapdev_complete(), before the post. */
static void post_start(struct swap_dev *d, struct swap_io *io)
{
	/* In flight until its done() runs (swapdev_close() waits for it),
	 * but not a sample of the store's queue depth. */
	io->t_submit = fl_now_ns();
	atomic_fetch_add(&d->inflight, 1);
}

void swapdev_post(struct swap_dev *d, struct swap_io *io, int res)
{
	post_start(d, io);
	swapdev_complete(d, io, res);
}

void swapdev_post_add(struct swap_dev *d, struct swap_posts *p, struct swap_io *io, int res)
{
	post_start(d, io);
	post_result(io, res);
	p->io[p->n++] = io;
	if (p->n == ARRAY_SIZE(p->io))
		swapdev_post_flush(d, p);
}

void swapdev_post_flush(struct swap_dev *d, struct swap_posts *p)
{
	if (!p->n)
		return;
	pthread_mutex_lock(&d->sq_lock);
	for (unsigned int i = 0; i < p->n; i++)
		post_prep_locked(d, p->io[i]);
	post_submit_locked(d);
	pthread_mutex_unlock(&d->sq_lock);
	p->n = 0;
}

/*
 * Start one I/O (one slot, or io->nr consecutive ones); io->done() runs on
 * the reaper thread when it completes, with 0 or a negative errno.
 * Context: any thread; never sleeps on I/O.  Return: 0 (the callback will
 * run) or a negative errno (it will not).
 */
int swap_submit(struct swap_dev *d, struct swap_io *io)
{
	int ret;

	io->posted = false;
	inflight_add(d, io);
	io->injected = injected(d, io);
	if (io->injected) {
		/* Injected error: complete without touching the store. */
		swapdev_complete(d, io, -EIO);
		return 0;
	}
	ret = d->be->submit(d, io);
	if (ret)
		atomic_fetch_sub(&d->inflight, 1);
	return ret;
}

/* The file backend's submit: a request on the ring, reaped there. */
static int file_submit(struct swap_dev *d, struct swap_io *io)
{
	struct io_uring_sqe *sqe;
	off_t off = swapdev_slot_off(d, io->slot);

	pthread_mutex_lock(&d->sq_lock);
	while (!(sqe = io_uring_get_sqe(&d->ring)))
		io_uring_submit(&d->ring);
	if (io->nr > 1) {
		if (io->write)
			io_uring_prep_writev(sqe, d->fd, io->iov, io->nr, (uint64_t)off);
		else
			io_uring_prep_readv(sqe, d->fd, io->iov, io->nr, (uint64_t)off);
	} else if (io->write) {
		io_uring_prep_write(sqe, d->fd, io->buf, SWAP_SLOT_SIZE, (uint64_t)off);
	} else {
		io_uring_prep_read(sqe, d->fd, io->buf, SWAP_SLOT_SIZE, (uint64_t)off);
	}
	io_uring_sqe_set_data(sqe, io);
	tsan_release(io); /* everything the reaper reads of io is set */
	/*
	 * Once prepared, the request is in the ring and will complete: if the
	 * enter fails for now, it goes with the next one.  So this never
	 * fails, and no caller completes an I/O twice.
	 */
	for (int tries = 0; io_uring_submit(&d->ring) < 0 && tries < 100; tries++)
		sched_yield();
	pthread_mutex_unlock(&d->sq_lock);
	return 0;
}

/* Sleep until fl_now_ns() reaches t (CLOCK_MONOTONIC); async-signal-safe. */
static void sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000),
			      .tv_nsec = (long)(t % 1000000000)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * Read one slot synchronously in the calling thread (sigbus delivery: the
 * faulting thread does its own read, as the kernel's swap-in does, with no
 * hand-off through the completion thread; thread delivery: a handler thread
 * reading its own fault's page while another handler is free).  Error injection applies, and
 * the device's delay: it returns no earlier than delay_ns after it started.
 * Context: no lock held; sleeps on the I/O.  Return: 0 or a negative errno.
 */
int swap_read_sync(struct swap_dev *d, struct swap_io *io)
{
	int ret;

	inflight_add(d, io);
	ret = injected(d, io) ? -EIO : d->be->read_sync(d, io);
	if (!ret)
		atomic_fetch_add_explicit(&d->pages_read, 1, memory_order_relaxed);
	if (d->delay_ns)
		sleep_until(io->t_submit + d->delay_ns);
	fl_hist_record(&d->read_ns, fl_now_ns() - io->t_submit);
	atomic_fetch_sub(&d->inflight, 1);
	return ret;
}

static int file_read_sync(struct swap_dev *d, struct swap_io *io)
{
	ssize_t r = pread(d->fd, io->buf, SWAP_SLOT_SIZE, swapdev_slot_off(d, io->slot));

	return r < 0 ? -errno : r == (ssize_t)SWAP_SLOT_SIZE ? 0 : -EIO;
}

/* The file backend's close: a named store is cleared, then closed (which
 * drops its flock). */
static void file_close(struct swap_dev *d, bool clear)
{
	if (clear && d->fd >= 0 && d->named) {
		int ret = clear_store(d);
		if (ret)
			discard_failed(d, ret);
	}
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

/* A file or a block device: O_DIRECT through io_uring. */
static const struct swap_backend file_backend = {
	.name = "file",
	.submit = file_submit,
	.read_sync = file_read_sync,
	.discard = file_discard,
	.close = file_close,
};

int swapdev_inject_error(struct swap_dev *d, uint32_t slot, bool write, bool on)
{
	_Atomic(uint64_t *) *mapp = write ? &d->fail_write : &d->fail_read;
	uint64_t *map = atomic_load(mapp);

	if (slot >= FAIL_SLOTS)
		return -EINVAL;
	if (!map) {
		uint64_t *n = calloc(FAIL_SLOTS / 64, sizeof(*n));
		if (!n)
			return -ENOMEM;
		if (!atomic_compare_exchange_strong(mapp, &map, n))
			free(n);
		map = atomic_load(mapp);
	}
	if (on)
		atomic_fetch_or((_Atomic uint64_t *)&map[slot / 64], 1ULL << (slot % 64));
	else
		atomic_fetch_and((_Atomic uint64_t *)&map[slot / 64], ~(1ULL << (slot % 64)));
	return 0;
}

/* Whether d is a file or block device (the backend fork can copy). */
bool swapdev_is_file(const struct swap_dev *d)
{
	return d->be == &file_backend;
}
