/* SPDX-License-Identifier: MIT */
/*
 * test_file_errors: what a file mapping does when the file's I/O fails,
 * in both deliveries.
 *
 *   read error   (the test-only injection of src/filemap.h: reads of one
 *                page fail with EIO) an access to that page gets SIGBUS,
 *                and so does every later one at that address; its
 *                neighbours, read in the same readahead window, read
 *                right; once the file reads again, MADV_DONTNEED and an
 *                access read the page
 *   ENOSPC       (a real one: a file system too small for the file, a
 *                tmpfs mounted here) fl_msync(MS_SYNC) fails with ENOSPC
 *                and the pages stay dirty; an error of a write-back that
 *                no fl_msync saw (fl_munmap's) is reported once, by the
 *                next fl_msync of the file; a file whose last mapping was
 *                unmapped while its write-back failed stays cached, also
 *                through an unmap while the flusher's next try of it is in
 *                flight (and fails); once there is room, every store
 *                reaches the file: nothing is lost; a space with an
 *                orphan is not carried into a child of fork()
 *
 * The ENOSPC part needs root (mount); without it the test skips, saying so.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "util.h"

#include "filemap.h"   /* filemap_inject_read_error(), test-only */
#include "writeback.h" /* fl_test_writeback_delay_us, test-only */

static size_t ps;
static unsigned char pat(size_t page, int gen)
{
	return (unsigned char)(page * 3 + (size_t)gen * 101 + 7);
}

static struct fl_space *space_limit(int delivery, size_t limit)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = limit;
	return t_space_create_cfg(&cfg);
}

static struct fl_space *space(int delivery)
{
	return space_limit(delivery, 0);
}

static void test_read_error(int delivery)
{
	char path[] = "/var/tmp/fl-ferr-XXXXXX";
	int fd = mkstemp(path);
	unsigned char v, buf[4096];
	struct fl_stats st;

	CHECK(fd >= 0, "mkstemp");
	for (size_t i = 0; i < 16; i++) {
		memset(buf, pat(i, 0), ps);
		CHECK(pwrite(fd, buf, ps, (off_t)(i * ps)) == (ssize_t)ps, "pwrite");
	}
	struct fl_space *sp = space(delivery);
	unsigned char *p = fl_mmap(sp, NULL, 16 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	CHECK(filemap_inject_read_error(sp, p + 5 * ps, true) == 0, "inject");
	/* The window around page 4 holds page 5: page 4 still reads right. */
	CHECK(!t_load_sigbus(p + 4 * ps, &v) && v == pat(4, 0), "page 4: %#x", v);
	CHECK(!t_load_sigbus(p + 6 * ps, &v) && v == pat(6, 0), "page 6: %#x", v);
	CHECK(t_load_sigbus(p + 5 * ps, &v), "page 5 read although its read fails");
	CHECK(t_load_sigbus(p + 5 * ps + 100, &v), "page 5's second access");
	CHECK(!t_load_sigbus(p + 7 * ps, &v) && v == pat(7, 0), "page 7: %#x", v);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.file_read_errors >= 1 && st.pages_poisoned >= 1,
	      "read errors %" PRIu64 ", poisoned %" PRIu64, st.file_read_errors, st.pages_poisoned);
	CHECK(filemap_inject_read_error(sp, p + 5 * ps, false) == 0, "clear");
	CHECK(fl_madvise(sp, p + 5 * ps, ps, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	CHECK(!t_load_sigbus(p + 5 * ps, &v) && v == pat(5, 0), "page 5 after the error: %#x", v);
	fl_space_destroy(sp);
	close(fd);
	unlink(path);
}

#define FILE_PAGES 256 /* 1 MiB, on a 256 KiB file system */

static void fill(unsigned char *p, size_t first, size_t last, int gen)
{
	for (size_t i = first; i < last; i++)
		memset(p + i * ps, pat(i, gen), ps);
}

static void test_enospc(int delivery, const char *dir)
{
	char path[256], opt[64];
	unsigned char buf[4096];
	struct fl_stats st;
	int fd;

	snprintf(opt, sizeof(opt), "size=%zu", (size_t)64 * ps);
	CHECK(mount("tmpfs", dir, "tmpfs", 0, opt) == 0, "mount tmpfs: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, FILE_PAGES * ps) == 0, "a sparse file: %s", strerror(errno));

	struct fl_space *sp = space(delivery);
	unsigned char *a =
		fl_mmap(sp, NULL, FILE_PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unsigned char *b = fl_mmap(sp, NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(a != MAP_FAILED && b != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	fill(a, 0, FILE_PAGES, 1);
	errno = 0;
	CHECK(fl_msync(sp, a, FILE_PAGES * ps, MS_SYNC) == -1 && errno == ENOSPC,
	      "MS_SYNC on a full file system: errno %d", errno);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.file_write_errors > 0 && st.file_dirty > 0,
	      "write errors %" PRIu64 ", dirty %" PRIu64, st.file_write_errors, st.file_dirty);
	/* Still full: the next one fails too. */
	errno = 0;
	CHECK(fl_msync(sp, a, FILE_PAGES * ps, MS_SYNC) == -1 && errno == ENOSPC,
	      "MS_SYNC again: errno %d", errno);
	/* fl_munmap writes back, fails, says nothing: the next fl_msync says. */
	fill(a, 100, 120, 2);
	CHECK(fl_munmap(sp, a, FILE_PAGES * ps) == 0, "fl_munmap: %s", strerror(errno));
	snprintf(opt, sizeof(opt), "size=%zu", (size_t)4 * FILE_PAGES * ps);
	CHECK(mount("tmpfs", dir, "tmpfs", MS_REMOUNT, opt) == 0, "remount: %s", strerror(errno));
	errno = 0;
	CHECK(fl_msync(sp, b, 4 * ps, MS_SYNC) == -1 && errno == ENOSPC,
	      "fl_munmap's write-back error was not reported: errno %d", errno);
	CHECK(fl_msync(sp, b, 4 * ps, MS_SYNC) == 0, "an error reported twice: %s",
	      strerror(errno));
	/* The last mapping goes while the rest is dirty and the disk has room
	 * now: everything is written. */
	CHECK(fl_munmap(sp, b, 4 * ps) == 0, "fl_munmap");
	fl_space_destroy(sp);
	for (size_t i = 0; i < FILE_PAGES; i++) {
		CHECK(pread(fd, buf, ps, (off_t)(i * ps)) == (ssize_t)ps, "pread");
		unsigned char want = pat(i, i >= 100 && i < 120 ? 2 : 1);
		CHECK(buf[0] == want && buf[ps - 1] == want, "page %zu in the file: %#x, want %#x",
		      i, buf[0], want);
	}
	close(fd);

	/* An orphan: the only mapping goes while the write-back fails; the
	 * cache keeps the pages, and destroy writes them once there is room. */
	snprintf(opt, sizeof(opt), "size=%zu", (size_t)64 * ps);
	CHECK(umount(dir) == 0 && mount("tmpfs", dir, "tmpfs", 0, opt) == 0, "mount again: %s",
	      strerror(errno));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, FILE_PAGES * ps) == 0, "a sparse file");
	/* A budget: its dirty pages over the background ratio, the flusher
	 * tries the orphan again every second. */
	sp = space_limit(delivery, 8 * FILE_PAGES * ps);
	a = fl_mmap(sp, NULL, FILE_PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(a != MAP_FAILED, "fl_mmap");
	fill(a, 0, FILE_PAGES, 3);
	CHECK(fl_munmap(sp, a, FILE_PAGES * ps) == 0, "fl_munmap");
	CHECK(fl_stats(sp, &st) == 0 && st.files == 1 && st.file_dirty > 0,
	      "the orphan: files %" PRIu64 ", dirty %" PRIu64, st.files, st.file_dirty);
	/* A second orphan, of eight dirty pages (one run), on the full file
	 * system.  An unmap elsewhere (which releases the orphans that are
	 * clean) while the flusher has all of them under write-back, its write
	 * held back, then failing: the orphan stays, dirty again. */
	char path2[256];
	snprintf(path2, sizeof(path2), "%s/g", dir);
	int fd2 = open(path2, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd2 >= 0 && ftruncate(fd2, 16 * ps) == 0, "a sparse file");
	a = fl_mmap(sp, NULL, 16 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	CHECK(a != MAP_FAILED, "fl_mmap");
	fill(a, 0, 8, 4);
	CHECK(fl_munmap(sp, a, 16 * ps) == 0, "fl_munmap");
	CHECK(fl_stats(sp, &st) == 0 && st.files == 2, "two orphans: files %" PRIu64, st.files);
	atomic_store(&fl_test_writeback_delay_us, 300000);
	for (int t = 0; !t_stats(sp).file_writeback; t++) {
		CHECK(t < 10000, "the flusher did not try the orphan again in 10 s");
		usleep(1000);
	}
	void *q = fl_mmap(sp, NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(q != MAP_FAILED && fl_munmap(sp, q, ps) == 0, "an anonymous map and unmap");
	for (int t = 0; t_stats(sp).file_writeback; t++) {
		CHECK(t < 10000, "the flusher's write did not end in 10 s");
		usleep(1000);
	}
	st = t_stats(sp);
	CHECK(st.files == 2 && st.file_dirty > 0,
	      "an orphan released while its write-back failed: files %" PRIu64 ", dirty %" PRIu64,
	      st.files, st.file_dirty);
	snprintf(opt, sizeof(opt), "size=%zu", (size_t)4 * FILE_PAGES * ps);
	CHECK(mount("tmpfs", dir, "tmpfs", MS_REMOUNT, opt) == 0, "remount");
	fl_space_destroy(sp);
	for (size_t i = 0; i < FILE_PAGES; i++) {
		CHECK(pread(fd, buf, ps, (off_t)(i * ps)) == (ssize_t)ps, "pread");
		CHECK(buf[0] == pat(i, 3), "orphan page %zu in the file: %#x", i, buf[0]);
	}
	for (size_t i = 0; i < 8; i++) {
		CHECK(pread(fd2, buf, ps, (off_t)(i * ps)) == (ssize_t)ps, "pread");
		CHECK(buf[0] == pat(i, 4) && buf[ps - 1] == pat(i, 4),
		      "page %zu of the orphan released while its write-back failed: %#x", i,
		      buf[0]);
	}
	close(fd);
	close(fd2);
	CHECK(umount(dir) == 0, "umount: %s", strerror(errno));
}

/*
 * A space made with cfg.fork that holds an orphan (a file unmapped while its
 * write-back failed) is not carried into a child of fork(): the child's
 * flusher would find the file's cache not there (it died of SIGSEGV).
 */
static void test_orphan_fork(const char *dir)
{
	char path[256], opt[64];
	struct fl_config cfg;
	int fd, status;
	pid_t pid;

	snprintf(opt, sizeof(opt), "size=%zu", (size_t)16 * ps);
	CHECK(mount("tmpfs", dir, "tmpfs", 0, opt) == 0, "mount tmpfs: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 64 * ps) == 0, "a sparse file: %s", strerror(errno));
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.fork = 1;
	struct fl_space *sp = t_space_create_cfg(&cfg);
	unsigned char *a = fl_mmap(sp, NULL, 64 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(a != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	fill(a, 0, 64, 5);
	CHECK(fl_munmap(sp, a, 64 * ps) == 0, "fl_munmap");
	CHECK(t_stats(sp).files == 1, "no orphan");
#if T_UNDER_TSAN
	/* ThreadSanitizer cannot follow a child of a threaded fork that
	 * starts threads (faultline's child handler restarts liburcu's). */
	printf("an orphan's space and fork: not run under ThreadSanitizer\n");
	fl_space_destroy(sp);
	close(fd);
	CHECK(umount(dir) == 0, "umount: %s", strerror(errno));
	return;
#endif
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		usleep(1500000); /* the flusher's round: every second */
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
	      "the child of a space with an orphan: status %#x", status);
	fl_space_destroy(sp);
	close(fd);
	CHECK(umount(dir) == 0, "umount: %s", strerror(errno));
	printf("an orphan's space not carried into a child: ok\n");
}

int main(int argc, char **argv)
{
	char dir[] = "/var/tmp/fl-enospc-XXXXXX";
	bool root = geteuid() == 0;

	t_seed_init(argc, argv, "test_file_errors");
	ps = t_page_size();
	/* Before any space: a sigbus space forwards what is not its own here. */
	t_sigbus_install();
	for (int d = 0; d < 2; d++)
		test_read_error(d ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD);
	if (!root)
		t_skip("the ENOSPC part needs root (it mounts a small tmpfs)");
	CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	for (int d = 0; d < 2; d++)
		test_enospc(d ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD, dir);
	test_orphan_fork(dir);
	rmdir(dir);
	printf("test_file_errors: ok\n");
	return T_EXIT_PASS;
}
