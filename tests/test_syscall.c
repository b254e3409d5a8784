/* SPDX-License-Identifier: MIT */
/*
 * test_syscall: region memory used as a system-call buffer.
 *
 * Thread delivery: the kernel's own accesses fault like the application's
 * and are served by the handler threads, so read(2), pread(2) and readv(2)
 * into untouched pages deliver every byte, and write(2) and pwrite(2) from
 * untouched pages write zeros.
 *
 * Sigbus delivery: the documented limitation.  A system call that touches
 * an untouched page fails with EFAULT (reading into it and writing from
 * it), or comes back short at the first untouched page; the page is still
 * served by a normal access afterwards, and then works as a buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <faultline.h>

#include "util.h"

static size_t ps;
static const int RW = PROT_READ | PROT_WRITE;
static const int ANON = MAP_PRIVATE | MAP_ANONYMOUS;

static void rand_fill(struct t_rng *r, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)t_rand(r);
}

static void check_zero(const unsigned char *p, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		CHECK(p[i] == 0, "%s: byte %zu at %p is %#x, expected 0", what, i, (void *)(p + i),
		      p[i]);
}

static void check_bytes(const unsigned char *got, const unsigned char *want, size_t n,
			const char *what)
{
	for (size_t i = 0; i < n; i++)
		CHECK(got[i] == want[i], "%s: byte %zu at %p is %#x, expected %#x", what, i,
		      (void *)(got + i), got[i], want[i]);
}

/* A temp file holding data, unlinked at once. */
static int temp_file(const unsigned char *data, size_t n)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/fl_test_syscall.XXXXXX", dir);
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
	unlink(path);
	if (n)
		CHECK(pwrite(fd, data, n, 0) == (ssize_t)n, "pwrite temp: %s", strerror(errno));
	return fd;
}

static char *map(struct fl_space *sp, size_t npages)
{
	char *p = fl_mmap(sp, NULL, npages * ps, RW, ANON);

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	return p;
}

/* What each test reads and writes: len random bytes (data), the same in a
 * temporary file (fd), a buffer as large (out) and a pipe. */
struct fixture {
	unsigned char *data, *out;
	int pfd[2], fd;
};

static struct fixture fixture_get(struct t_rng *rng, size_t len)
{
	struct fixture fx = {.data = malloc(len), .out = malloc(len)};

	CHECK(fx.data && fx.out, "malloc");
	rand_fill(rng, fx.data, len);
	fx.fd = temp_file(fx.data, len);
	CHECK(pipe(fx.pfd) == 0, "pipe: %s", strerror(errno));
	return fx;
}

static void fixture_put(struct fixture *fx)
{
	close(fx->pfd[0]);
	close(fx->pfd[1]);
	close(fx->fd);
	free(fx->data);
	free(fx->out);
}

static void test_thread(struct t_rng *rng)
{
	struct fl_space *sp = t_space_create(FL_DELIVERY_THREAD);
	size_t big = 64 * ps;
	struct fixture fx = fixture_get(rng, big);
	struct fl_stats st;
	struct iovec iov[3];
	char *r;
	ssize_t n;

	/* read(2) from a pipe into the middle of an untouched page. */
	r = map(sp, 16);
	CHECK(write(fx.pfd[1], fx.data, 200) == 200, "write pipe: %s", strerror(errno));
	n = read(fx.pfd[0], r + 100, 200);
	CHECK(n == 200, "read(pipe) into an untouched page: %zd (%s)", n, strerror(errno));
	check_bytes((unsigned char *)r + 100, fx.data, 200, "pipe read into an untouched page");
	check_zero((unsigned char *)r, 100, "before the bytes read");
	check_zero((unsigned char *)r + 300, ps - 300, "after the bytes read");

	/* pread(2) across three untouched pages, at an odd offset. */
	n = pread(fx.fd, r + 4 * ps + 1000, 2 * ps + 5, 7);
	CHECK(n == (ssize_t)(2 * ps + 5), "pread across untouched pages: %zd (%s)", n,
	      strerror(errno));
	check_bytes((unsigned char *)r + 4 * ps + 1000, fx.data + 7, 2 * ps + 5, "pread");
	check_zero((unsigned char *)r + 4 * ps, 1000, "before the pread");
	check_zero((unsigned char *)r + 6 * ps + 1005, ps - 1005, "after the pread");

	/* readv(2) scattering into two untouched pages. */
	iov[0] = (struct iovec){r + 9 * ps, 300};
	iov[1] = (struct iovec){r + 11 * ps + 17, ps - 17};
	CHECK(lseek(fx.fd, 5 * ps, SEEK_SET) == (off_t)(5 * ps), "lseek");
	n = readv(fx.fd, iov, 2);
	CHECK(n == (ssize_t)(300 + ps - 17), "readv: %zd (%s)", n, strerror(errno));
	check_bytes((unsigned char *)r + 9 * ps, fx.data + 5 * ps, 300, "readv, first");
	check_bytes((unsigned char *)r + 11 * ps + 17, fx.data + 5 * ps + 300, ps - 17,
		    "readv, second");

	/* write(2) from an untouched page writes zeros. */
	memset(fx.out, 0xff, ps);
	n = write(fx.pfd[1], r + 13 * ps, ps);
	CHECK(n == (ssize_t)ps, "write(pipe) from an untouched page: %zd (%s)", n, strerror(errno));
	CHECK(read(fx.pfd[0], fx.out, ps) == (ssize_t)ps, "read back: %s", strerror(errno));
	check_zero(fx.out, ps, "write from an untouched page");

	/* pwrite(2) from an untouched page, then read the file back. */
	n = pwrite(fx.fd, r + 14 * ps + 8, 3000, 3 * ps);
	CHECK(n == 3000, "pwrite from an untouched page: %zd (%s)", n, strerror(errno));
	memset(fx.out, 0xff, ps);
	CHECK(pread(fx.fd, fx.out, 3000, 3 * ps) == 3000, "pread back");
	check_zero(fx.out, 3000, "pwrite from an untouched page");
	memset(fx.data + 3 * ps, 0, 3000);

	/* A page zapped by MADV_DONTNEED faults again inside the system call. */
	memset(r + 15 * ps, 0xab, ps);
	CHECK(fl_madvise(sp, r + 15 * ps, ps, MADV_DONTNEED) == 0, "fl_madvise: %s",
	      strerror(errno));
	n = pread(fx.fd, r + 15 * ps, ps / 2, 0);
	CHECK(n == (ssize_t)(ps / 2), "pread into a zapped page: %zd (%s)", n, strerror(errno));
	check_bytes((unsigned char *)r + 15 * ps, fx.data, ps / 2, "pread into a zapped page");
	check_zero((unsigned char *)r + 15 * ps + ps / 2, ps / 2, "the zapped page's rest");

	/* One big read that faults 64 pages inside one system call. */
	r = map(sp, 64);
	n = pread(fx.fd, r, big, 0);
	CHECK(n == (ssize_t)big, "pread of %zu bytes into untouched pages: %zd (%s)", big, n,
	      strerror(errno));
	check_bytes((unsigned char *)r, fx.data, big, "big pread");

	/* Kernel semantics are kept: reading into a read-only page is EFAULT. */
	r = map(sp, 2);
	CHECK(fl_mprotect(sp, r, ps, PROT_READ) == 0, "fl_mprotect: %s", strerror(errno));
	errno = 0;
	n = pread(fx.fd, r, 100, 0);
	CHECK(n == -1 && errno == EFAULT, "pread into a read-only page: %zd (%s), expected EFAULT",
	      n, strerror(errno));
	check_zero((unsigned char *)r, ps, "the read-only page");
	n = pread(fx.fd, r + ps, 100, 0);
	CHECK(n == 100, "pread into the writable page next to it: %zd (%s)", n, strerror(errno));
	check_bytes((unsigned char *)r + ps, fx.data, 100, "pread next to a read-only page");

	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.faults > 0, "no faults counted");
	printf("thread: ok (%" PRIu64 " faults served)\n", st.faults);
	fixture_put(&fx);
	fl_space_destroy(sp);
}

static void test_sigbus(struct t_rng *rng)
{
	struct fl_config cfg;
	struct fl_space *sp;
	struct fixture fx = fixture_get(rng, 4 * ps);
	char *r;
	ssize_t n;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = FL_DELIVERY_SIGBUS;
	/* Pages next to a touched one must stay untouched. */
	cfg.fault_around = 1;
	cfg.fault_around_max = 1;
	sp = t_space_create_cfg(&cfg);
	r = map(sp, 8);

	/* Reading into an untouched page: EFAULT, nothing else happens. */
	errno = 0;
	n = pread(fx.fd, r + 10, 100, 0);
	CHECK(n == -1 && errno == EFAULT, "pread into an untouched page: %zd (%s), expected EFAULT",
	      n, strerror(errno));
	CHECK(write(fx.pfd[1], fx.data, 50) == 50, "write pipe");
	errno = 0;
	n = read(fx.pfd[0], r + ps, 50);
	CHECK(n == -1 && errno == EFAULT, "read(pipe) into an untouched page: %zd (%s)", n,
	      strerror(errno));

	/* The page is still served by a normal access, and then is a good buffer. */
	check_zero((unsigned char *)r, ps, "the page after EFAULT");
	n = pread(fx.fd, r + 10, 100, 0);
	CHECK(n == 100, "pread into the page once touched: %zd (%s)", n, strerror(errno));
	check_bytes((unsigned char *)r + 10, fx.data, 100, "pread once touched");
	r[ps] = 1;
	n = read(fx.pfd[0], r + ps, 50); /* the pipe kept its bytes */
	CHECK(n == 50, "read(pipe) into the page once touched: %zd (%s)", n, strerror(errno));
	check_bytes((unsigned char *)r + ps, fx.data, 50, "pipe read once touched");

	/* Writing from an untouched page: EFAULT too; then zeros once touched. */
	errno = 0;
	n = write(fx.pfd[1], r + 2 * ps, 64);
	CHECK(n == -1 && errno == EFAULT, "write(pipe) from an untouched page: %zd (%s)", n,
	      strerror(errno));
	errno = 0;
	n = pwrite(fx.fd, r + 3 * ps, 64, 0);
	CHECK(n == -1 && errno == EFAULT, "pwrite from an untouched page: %zd (%s)", n,
	      strerror(errno));
	CHECK(pread(fx.fd, fx.out, 64, 0) == 64, "pread back");
	check_bytes(fx.out, fx.data, 64, "the file after a failed pwrite");
	CHECK(r[2 * ps] == 0, "untouched page read");
	n = write(fx.pfd[1], r + 2 * ps, 64);
	CHECK(n == 64, "write(pipe) from the page once touched: %zd (%s)", n, strerror(errno));
	memset(fx.out, 0xff, 64);
	CHECK(read(fx.pfd[0], fx.out, 64) == 64, "read back");
	check_zero(fx.out, 64, "write from a touched zero page");

	/* A buffer that starts in a present page and runs into an untouched one: short. */
	r[4 * ps] = 7;
	n = pread(fx.fd, r + 5 * ps - 100, 200, 0);
	CHECK(n > 0 && n <= 100, "pread running into an untouched page: %zd (%s), expected 1..100",
	      n, strerror(errno));
	check_bytes((unsigned char *)r + 5 * ps - 100, fx.data, n, "short pread");
	check_zero((unsigned char *)r + 5 * ps, ps, "the page after the short read");
	n = pread(fx.fd, r + 5 * ps - 100, 200, 0);
	CHECK(n == 200, "the same pread once both pages are touched: %zd (%s)", n, strerror(errno));
	check_bytes((unsigned char *)r + 5 * ps - 100, fx.data, 200, "pread over two pages");

	/* MADV_DONTNEED makes a page untouched again: EFAULT again. */
	CHECK(fl_madvise(sp, r, ps, MADV_DONTNEED) == 0, "fl_madvise: %s", strerror(errno));
	errno = 0;
	n = pread(fx.fd, r, 100, 0);
	CHECK(n == -1 && errno == EFAULT, "pread into a zapped page: %zd (%s), expected EFAULT", n,
	      strerror(errno));
	check_zero((unsigned char *)r, ps, "the zapped page");

	printf("sigbus: ok\n");
	fixture_put(&fx);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	struct t_rng rng;

	t_rng_init(&rng, t_seed_init(argc, argv, "test_syscall"));
	ps = t_page_size();
	test_thread(&rng);
	test_sigbus(&rng);
	printf("test_syscall: ok\n");
	return T_EXIT_PASS;
}
