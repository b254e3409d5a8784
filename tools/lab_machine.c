// SPDX-License-Identifier: MIT
/*
 * The lab's record of the machine's state: how fast the disk was, how busy
 * the other processes were and how much the hypervisor stole, with every
 * scenario's round and every run, so that a figure from one day can be told
 * from a figure of a different machine on another (lab.h).
 *
 * The disk probe: random 4 KiB O_DIRECT reads at queue depth 8 through
 * io_uring, of an unlinked file (O_TMPFILE) in the directory of the stores,
 * written once per lab; the same device and file system that faultline's
 * store and the kernel's swap file use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kside.h"
#include "lab.h"

#define PROBE_FILE (256 * MiB)
#define PROBE_QD 8

static int probe_fd = -1;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The probe's file: written whole, so that reads hit allocated blocks. */
static int probe_open(const char *dir)
{
	size_t chunk = 4 * MiB;
	void *buf;
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (posix_memalign(&buf, PAGE, chunk)) {
		close(fd);
		return -ENOMEM;
	}
	memset(buf, 0x5a, chunk);
	for (size_t off = 0; off < PROBE_FILE; off += chunk) {
		if (pwrite(fd, buf, chunk, (off_t)off) != (ssize_t)chunk) {
			int err = errno ? -errno : -EIO;

			free(buf);
			close(fd);
			return err;
		}
	}
	free(buf);
	return fd;
}

static void prep_read(struct io_uring *ring, void *buf, uint64_t *rng)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	uint64_t x = *rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	io_uring_prep_read(sqe, probe_fd, buf, PAGE, (x % (PROBE_FILE / PAGE)) * PAGE);
	io_uring_sqe_set_data(sqe, buf);
}

/*
 * Reads per second for secs seconds at queue depth 8, or a negative errno
 * (the reason is in err).  Context: the lab's main thread.
 */
double lab_probe_disk(const char *dir, double secs, char *err, size_t errlen)
{
	struct io_uring ring;
	uint64_t rng = 0x9e3779b97f4a7c15ull, done = 0, t0, until;
	void *bufs;
	int ret;

	if (probe_fd < 0) {
		probe_fd = probe_open(dir);
		if (probe_fd < 0) {
			fmt(err, errlen, "the disk probe's file in %s: %s", dir,
			    strerror(-probe_fd));
			return probe_fd;
		}
	}
	ret = io_uring_queue_init(PROBE_QD, &ring, 0);
	if (ret < 0) {
		fmt(err, errlen, "io_uring: %s", strerror(-ret));
		return ret;
	}
	if (posix_memalign(&bufs, PAGE, PROBE_QD * PAGE)) {
		io_uring_queue_exit(&ring);
		fmt(err, errlen, "no memory");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < PROBE_QD; i++)
		prep_read(&ring, (char *)bufs + i * PAGE, &rng);
	t0 = mono_ns();
	until = t0 + (uint64_t)(secs * 1e9);
	io_uring_submit(&ring);
	for (unsigned int inflight = PROBE_QD; inflight;) {
		struct io_uring_cqe *cqe;
		void *buf;

		ret = io_uring_wait_cqe(&ring, &cqe);
		if (ret < 0)
			break;
		buf = io_uring_cqe_get_data(cqe);
		if (cqe->res != (int)PAGE) {
			ret = cqe->res < 0 ? cqe->res : -EIO;
			io_uring_cqe_seen(&ring, cqe);
			break;
		}
		io_uring_cqe_seen(&ring, cqe);
		done++;
		inflight--;
		if (mono_ns() < until) {
			prep_read(&ring, buf, &rng);
			io_uring_submit(&ring);
			inflight++;
		}
	}
	t0 = mono_ns() - t0;
	/* Exiting the ring waits for what is still in flight after an error. */
	io_uring_queue_exit(&ring);
	free(bufs);
	if (ret < 0) {
		fmt(err, errlen, "the disk probe's reads: %s", strerror(-ret));
		return ret;
	}
	return (double)done / ((double)t0 / 1e9);
}

void lab_probe_close(void)
{
	if (probe_fd >= 0)
		close(probe_fd);
	probe_fd = -1;
}
