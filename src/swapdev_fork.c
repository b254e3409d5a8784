// SPDX-License-Identifier: MIT
/*
 * The swap device across fork() (fork.c drives it): quiesce the I/O in
 * flight, copy the slots in use into a new unlinked file for the child,
 * and give the parent and the child each its own reaper again.
 */
#include "swapdev.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The copy's bounce buffer where copy_file_range() cannot copy (a device, or
 * a file system that refuses it): aligned for O_DIRECT. */
#define FORK_COPY_CHUNK (1UL << 20)

static int copy_range(struct swap_dev *d, int to, unsigned long slot, unsigned long n, void **buf)
{
	off_t in = swapdev_slot_off(d, (uint32_t)slot), out = (off_t)slot * (off_t)SWAP_SLOT_SIZE;
	size_t left = n * SWAP_SLOT_SIZE;

	while (left && !*buf) {
		ssize_t r = copy_file_range(d->fd, &in, to, &out, left, 0);
		if (r > 0) {
			left -= (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || errno == EINVAL || errno == EXDEV || errno == EOPNOTSUPP ||
		    errno == ENOSYS) {
			/* Not by the kernel here: by hand from now on. */
			*buf = mmap(NULL, FORK_COPY_CHUNK, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (*buf == MAP_FAILED) {
				*buf = NULL;
				return -ENOMEM;
			}
			break;
		}
		return -errno;
	}
	while (left) {
		size_t len = MIN(left, FORK_COPY_CHUNK);
		ssize_t r = pread(d->fd, *buf, len, in);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (size_t)r % SWAP_SLOT_SIZE)
			return r < 0 ? -errno : -EIO;
		ssize_t w = pwrite(to, *buf, (size_t)r, out);
		if (w < 0 && errno == EINTR)
			continue;
		if (w != r)
			return w < 0 ? -errno : -EIO;
		in += r;
		out += r;
		left -= (size_t)r;
	}
	return 0;
}

/*
 * fork(): wait until nothing is in flight, no fault owns a read it has not
 * submitted or completed (*own_reads: the space's sync_completing) and no
 * completion is being delivered, and keep the reaper from delivering until
 * the parent or the child lets go (reap_lock, held on return).  A callback
 * may submit again (readahead, a batch's retries) after deliver() took its
 * I/O off inflight, and a fault's own read counts from before it let go of
 * its lock: so both counts are checked again once reap_lock is held (every
 * delivery is under it), and the wait starts over if either is not 0.
 * Context: fork_space_prepare(); nothing else submits I/O any more (the
 * handler threads and workers paused, every VMA of the space write-locked).
 */
void swapdev_fork_quiesce(struct swap_dev *d, _Atomic int *own_reads)
{
	for (;;) {
		while (atomic_load(&d->inflight) > 0 || atomic_load(own_reads) > 0)
			usleep(50);
		pthread_mutex_lock(&d->reap_lock);
		if (!atomic_load(&d->inflight) && !atomic_load(own_reads))
			return;
		pthread_mutex_unlock(&d->reap_lock);
	}
}

/*
 * fork(), after swapdev_fork_quiesce(): copy the store for the child: a new unlinked temporary
 * file with every slot in use (or waiting for its discard) at the same
 * place, so that the child's swap entries, and the store's metadata of each
 * slot (its checksum and tag, inherited in memory), are right for it.  The
 * parent goes on with its own store, whose slots it may then free and
 * reuse: the child never reads them.
 * Context: fork_space_prepare(), reap_lock held (swapdev_fork_quiesce()).
 * Return: 0 and *copy_fd, or a negative errno (nothing copied; the reaper
 * is still held).
 */
int swapdev_fork_prepare(struct swap_dev *d, int *copy_fd)
{
	void *buf = NULL;
	unsigned long slot = 0, nr;
	int fd, ret = 0;

	*copy_fd = -1;
	if (!swapdev_is_file(d))
		return -EOPNOTSUPP; /* refused at create (options.c) */
	fd = swapdev_open_tmpfile();
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&d->lock);
	nr = d->nr_slots;
	if (ftruncate(fd, (off_t)(nr * SWAP_SLOT_SIZE)))
		ret = -errno;
	while (!ret && slot < nr) {
		unsigned long run;

		if (!(d->map[slot / 64] & (1ULL << (slot % 64)))) {
			slot++;
			continue;
		}
		for (run = 1;
		     slot + run < nr && (d->map[(slot + run) / 64] >> ((slot + run) % 64)) & 1;
		     run++)
			;
		ret = copy_range(d, fd, slot, run, &buf);
		slot += run;
	}
	pthread_mutex_unlock(&d->lock);
	if (buf)
		munmap(buf, FORK_COPY_CHUNK);
	if (ret) {
		close(fd);
		return ret;
	}
	*copy_fd = fd;
	return 0;
}

/* The parent after fork(): the reaper delivers again; the copy is the
 * child's. */
void swapdev_fork_parent(struct swap_dev *d, int copy_fd)
{
	if (copy_fd >= 0)
		close(copy_fd);
	pthread_mutex_unlock(&d->reap_lock);
}

/*
 * The child after fork(): its store is the copy (a temporary file, whatever
 * the parent's was: a named store is the parent's alone); the ring, the
 * reaper and the discard worker are new (the ring's memory is shared with
 * the parent's, and neither thread is in the child); the locks fresh.
 * Return: 0 or a negative errno (the device is unusable: the caller gives
 * the space up).
 */
int swapdev_fork_child(struct swap_dev *d, int copy_fd)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	int ret;

	memcpy(&d->lock, &fresh, sizeof(fresh));
	memcpy(&d->sq_lock, &fresh, sizeof(fresh));
	memcpy(&d->reap_lock, &fresh, sizeof(fresh));
	if (d->reaper_started)
		io_uring_queue_exit(&d->ring); /* unmaps the child's view, closes its fd */
	d->reaper_started = false;
	if (copy_fd < 0)
		return -EBADF;
	close(d->fd); /* the parent's store, and its flock, stay the parent's */
	d->fd = copy_fd;
	d->named = false;
	d->is_blockdev = false;
	d->can_discard = false;
	d->grows = true;
	d->data_off = 0;
	free(d->path);
	d->path = NULL;
	atomic_store(&d->inflight, 0);
	ret = store_fork_child(&d->store);
	if (!ret) /* the copy grows: as far as the table of slots does */
		ret = store_grow_table(&d->store, swapdev_max_slots(d));
	if (ret)
		return ret;
	ret = worker_fork_child(&d->discarder);
	if (ret)
		return ret;
	struct io_uring_params params = {.flags = IORING_SETUP_CQSIZE, .cq_entries = d->cq_entries};
	ret = io_uring_queue_init_params(d->depth, &d->ring, &params);
	if (ret)
		return ret;
	ret = -pthread_create(&d->reaper, NULL, swapdev_reaper_main, d);
	if (ret) {
		io_uring_queue_exit(&d->ring);
		return ret;
	}
	pthread_setname_np(d->reaper, "fl-reaper");
	d->reaper_started = true;
	return 0;
}
