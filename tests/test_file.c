/* SPDX-License-Identifier: MIT */
/*
 * test_file: file mappings, one property at a time, in both deliveries,
 * with and without a budget smaller than the file.
 *
 *   shared       loads see the file; stores reach it after fl_msync(MS_SYNC),
 *                and a second shared mapping of the same file sees them at once
 *   private      stores stay private (the file and a shared mapping do not
 *                see them); MADV_DONTNEED shows the file's page again
 *   offset       a mapping at a file offset maps those pages
 *   eof          an access past the end of the file gets SIGBUS; the last,
 *                partial page reads zeros past the end, and a store there
 *                does not grow the file
 *   munmap       unmapping a shared mapping writes its dirty pages back;
 *                so does destroying the space
 *   msync        errno rules: EINVAL for bad flags and an unaligned address,
 *                ENOMEM for a hole, EACCES for PROT_WRITE on a shared
 *                mapping of a read-only descriptor (mmap and mprotect)
 *   inflight     fl_msync(MS_SYNC) while another writer has the range's
 *                pages under write-back (its write held back): it returns
 *                only once they are in the file, as filemap_write_and_wait
 *                does; so does fl_munmap() of the range
 *   budget       a shared mapping four times the budget, every page written
 *                and read back, then the file checked
 *   cache freed  a file mapped, read and unmapped four times: once its cache
 *                is freed, its pages are no longer counted in the budget
 *   many files   with 70 files mapped, the flusher writes back a store to
 *                the first one mapped as well as to the last
 *   readahead    a sequential reader of an uncached file takes a major
 *                fault for a small part of its pages (the windows grow, the
 *                marked page starts the next one); MADV_RANDOM reads one
 *                page per fault; after MADV_WILLNEED no access waits for a
 *                read
 *   random       a random reader without MADV_RANDOM: after MMAP_LOTSAMISS
 *                misses with no hit, a miss reads its page alone, under every
 *                policy (a retry after the fault's own read is no hit)
 *   policy       a file fault that reads its page does with its VMA lock
 *                what the policy of files says: the file_vma_lock_*
 *                counters show it (drop and bail retry under the space
 *                lock, hold and drop-vma do not, mmap takes no VMA lock),
 *                apart from anonymous faults, and anon=...,file=... gives
 *                files their own
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "util.h"

#define PAGES 64

static size_t ps;
/* The byte at offset off of the test file's initial contents. */
static unsigned char pat(size_t off)
{
	return (unsigned char)(off * 7 + (off >> 12) * 13 + 1);
}

/* A temporary file of len bytes of pat(); returns an fd opened with mode. */
static int make_file(char *path, size_t len, int mode)
{
	unsigned char *buf = malloc(len ? len : 1);
	int fd;

	snprintf(path, 64, "/var/tmp/fl-test-file-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(i);
	CHECK(pwrite(fd, buf, len, 0) == (ssize_t)len, "pwrite");
	free(buf);
	if (mode != O_RDWR) {
		close(fd);
		fd = open(path, mode);
		CHECK(fd >= 0, "open: %s", strerror(errno));
	}
	return fd;
}

static unsigned char file_byte(int fd, off_t off)
{
	unsigned char c = 0;

	CHECK(pread(fd, &c, 1, off) == 1, "pread at %lld", (long long)off);
	return c;
}

static struct fl_space *space(int delivery, size_t limit)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = limit;
	return t_space_create_cfg(&cfg);
}

static void test_shared(int delivery, size_t limit)
{
	char path[64];
	int fd = make_file(path, PAGES * ps, O_RDWR);
	struct fl_space *sp = space(delivery, limit);
	unsigned char *a = fl_mmap(sp, NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unsigned char *b = fl_mmap(sp, NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct fl_stats st;

	CHECK(a != MAP_FAILED && b != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < PAGES * ps; i += 511)
		CHECK(a[i] == pat(i), "a[%zu] = %u, the file has %u", i, a[i], pat(i));
	for (size_t p = 0; p < PAGES; p += 3)
		a[p * ps + 5] = (unsigned char)(0xA0 + p);
	for (size_t p = 0; p < PAGES; p += 3)
		CHECK(b[p * ps + 5] == (unsigned char)(0xA0 + p), "b does not see a's store");
	CHECK(fl_msync(sp, a, PAGES * ps, MS_SYNC) == 0, "fl_msync: %s", strerror(errno));
	for (size_t p = 0; p < PAGES; p++)
		CHECK(file_byte(fd, (off_t)(p * ps + 5)) ==
			      (p % 3 ? pat(p * ps + 5) : (unsigned char)(0xA0 + p)),
		      "the file after MS_SYNC, page %zu", p);
	/* A store after the write-back is caught again (the page was
	 * write-protected by it). */
	a[7] = 0x5A;
	CHECK(fl_msync(sp, a, ps, MS_SYNC) == 0, "fl_msync");
	CHECK(file_byte(fd, 7) == 0x5A, "a second store after a write-back is lost");
	/* MADV_DONTNEED of a shared mapping: the page reads back the same. */
	CHECK(fl_madvise(sp, b, 4 * ps, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
	CHECK(b[7] == 0x5A && b[3 * ps + 5] == 0xA3, "a shared page after MADV_DONTNEED");
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.files == 1, "files %" PRIu64, st.files);
	CHECK(st.file_faults_major + st.file_faults_minor > 0, "no file faults counted");
	CHECK(fl_munmap(sp, a, PAGES * ps) == 0, "fl_munmap");
	/* b stays, and the dirty pages it maps are destroy's to write. */
	b[9 * ps] = 0x77;
	fl_space_destroy(sp);
	CHECK(file_byte(fd, (off_t)(9 * ps)) == 0x77, "destroy did not write the page back");
	close(fd);
	unlink(path);
}

static void test_private(int delivery, size_t limit)
{
	char path[64];
	int fd = make_file(path, PAGES * ps, O_RDONLY);
	struct fl_space *sp = space(delivery, limit);
	unsigned char *pv =
		fl_mmap(sp, NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	unsigned char *ro = fl_mmap(sp, NULL, PAGES * ps, PROT_READ, MAP_SHARED, fd, 0);

	CHECK(pv != MAP_FAILED && ro != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	/* Read first (the cache page is mapped), then written (copied). */
	CHECK(pv[ps + 1] == pat(ps + 1), "private read");
	pv[ps + 1] = 0x11;
	/* Written without a read first. */
	pv[2 * ps + 2] = 0x22;
	CHECK(pv[ps + 1] == 0x11 && pv[2 * ps + 2] == 0x22, "private stores lost");
	CHECK(ro[ps + 1] == pat(ps + 1) && ro[2 * ps + 2] == pat(2 * ps + 2),
	      "a shared mapping sees a private store");
	CHECK(file_byte(fd, (off_t)ps + 1) == pat(ps + 1), "the file sees a private store");
	/* The copies go, and the file's pages show again. */
	CHECK(fl_madvise(sp, pv, PAGES * ps, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
	CHECK(pv[ps + 1] == pat(ps + 1) && pv[2 * ps + 2] == pat(2 * ps + 2),
	      "private page after MADV_DONTNEED: %#x", pv[ps + 1]);
	/* A shared mapping of a read-only descriptor never becomes writable. */
	errno = 0;
	CHECK(fl_mprotect(sp, ro, ps, PROT_READ | PROT_WRITE) == -1 && errno == EACCES,
	      "mprotect of a read-only shared mapping: errno %d", errno);
	errno = 0;
	CHECK(fl_mmap(sp, NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED &&
		      errno == EACCES,
	      "a writable shared mapping of a read-only descriptor: errno %d", errno);
	fl_space_destroy(sp);
	CHECK(file_byte(fd, (off_t)ps + 1) == pat(ps + 1), "the file changed");
	close(fd);
	unlink(path);
}

static void test_offset_eof(int delivery)
{
	char path[64];
	size_t len = 5 * ps + 100; /* the last page is partial */
	int fd = make_file(path, len, O_RDWR);
	struct fl_space *sp = space(delivery, 0);
	unsigned char *p =
		fl_mmap(sp, NULL, 8 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(2 * ps));
	struct stat sb;

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	CHECK(p[0] == pat(2 * ps) && p[ps + 3] == pat(3 * ps + 3), "the offset is not honoured");
	/* The last page: the file's bytes, then zeros. */
	CHECK(p[3 * ps + 99] == pat(5 * ps + 99) && p[3 * ps + 100] == 0,
	      "the partial last page: %#x %#x", p[3 * ps + 99], p[3 * ps + 100]);
	p[3 * ps + 200] = 0x33; /* past the end, inside the page */
	p[3 * ps + 50] = 0x44;
	CHECK(fl_msync(sp, p, 8 * ps, MS_SYNC) == 0, "fl_msync: %s", strerror(errno));
	CHECK(fstat(fd, &sb) == 0 && sb.st_size == (off_t)len, "the file grew to %lld",
	      (long long)sb.st_size);
	CHECK(file_byte(fd, (off_t)(5 * ps + 50)) == 0x44, "the last page's store");
	/* Past the end: SIGBUS, whichever delivery. */
	unsigned char v;
	CHECK(t_load_sigbus(p + 4 * ps, &v), "no SIGBUS past the end of the file");
	fl_space_destroy(sp);
	close(fd);
	unlink(path);
}

static void test_msync_errors(int delivery)
{
	char path[64];
	int fd = make_file(path, 4 * ps, O_RDWR);
	struct fl_space *sp = space(delivery, 0);
	unsigned char *p = fl_mmap(sp, NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	CHECK(p != MAP_FAILED, "fl_mmap");
	errno = 0;
	CHECK(fl_msync(sp, p, ps, MS_SYNC | MS_ASYNC) == -1 && errno == EINVAL, "both flags");
	CHECK(fl_msync(sp, p, ps, 0x100) == -1 && errno == EINVAL, "a bad flag");
	CHECK(fl_msync(sp, p + 1, ps, MS_SYNC) == -1 && errno == EINVAL, "unaligned");
	CHECK(fl_msync(sp, p, 0, MS_SYNC) == 0, "an empty range");
	CHECK(fl_munmap(sp, p + ps, ps) == 0, "munmap");
	errno = 0;
	CHECK(fl_msync(sp, p, 4 * ps, MS_SYNC) == -1 && errno == ENOMEM, "a hole: %d", errno);
	errno = 0;
	CHECK(fl_msync(sp, p, 4 * ps, MS_ASYNC) == -1 && errno == ENOMEM, "a hole, MS_ASYNC");
	CHECK(fl_msync(sp, p, ps, MS_INVALIDATE) == 0, "MS_INVALIDATE");
	errno = 0;
	CHECK(fl_mmap(sp, NULL, ps, PROT_READ, MAP_SHARED, -1, 0) == MAP_FAILED && errno == EBADF,
	      "a bad descriptor: %d", errno);
	errno = 0;
	CHECK(fl_mmap(sp, NULL, ps, PROT_READ, MAP_SHARED, fd, 1) == MAP_FAILED && errno == EINVAL,
	      "an unaligned offset: %d", errno);
	fl_space_destroy(sp);
	close(fd);
	unlink(path);
}

static void test_msync_inflight(int delivery)
{
	const size_t n = 8;
	char path[64];
	int fd = make_file(path, PAGES * ps, O_RDWR);
	struct fl_space *sp = space(delivery, 0);
	unsigned char *a = fl_mmap(sp, NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct t_held_writeback w = {.sp = sp, .p = a, .len = n * ps};

	CHECK(a != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t p = 0; p < n; p++)
		a[p * ps + 3] = (unsigned char)(0xC0 + p);
	t_held_writeback_start(&w, 400);
	CHECK(fl_msync(sp, a, n * ps, MS_SYNC) == 0, "fl_msync: %s", strerror(errno));
	for (size_t p = 0; p < n; p++)
		CHECK(file_byte(fd, (off_t)(p * ps + 3)) == (unsigned char)(0xC0 + p),
		      "page %zu: MS_SYNC returned before another writer's write-back of it", p);
	CHECK(t_held_writeback_join(&w) == 0, "the other fl_msync");

	/* fl_munmap writes the range back, and waits for the same. */
	for (size_t p = 0; p < n; p++)
		a[p * ps + 4] = (unsigned char)(0xD0 + p);
	t_held_writeback_start(&w, 400);
	CHECK(fl_munmap(sp, a, PAGES * ps) == 0, "fl_munmap: %s", strerror(errno));
	for (size_t p = 0; p < n; p++)
		CHECK(file_byte(fd, (off_t)(p * ps + 4)) == (unsigned char)(0xD0 + p),
		      "page %zu: fl_munmap returned before another writer's write-back of it", p);
	CHECK(t_held_writeback_join(&w) == 0, "the other fl_msync");
	fl_space_destroy(sp);
	close(fd);
	unlink(path);
}

/* Every page of a shared mapping four times the budget, written and read. */
static void test_budget(int delivery)
{
	size_t pages = 1024; /* 4 MiB; budget 1 MiB */
	char path[64];
	int fd = make_file(path, pages * ps, O_RDWR);
	struct fl_space *sp = space(delivery, 256 * ps);
	unsigned char *p = fl_mmap(sp, NULL, pages * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct fl_stats st;

	CHECK(p != MAP_FAILED, "fl_mmap");
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < pages; i++) {
			CHECK(p[i * ps + 1] ==
				      (round ? (unsigned char)(i ^ 0x5A) : pat(i * ps + 1)),
			      "round %d page %zu: %#x", round, i, p[i * ps + 1]);
			p[i * ps + 1] = (unsigned char)(i ^ 0x5A);
		}
	}
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.file_evictions > 0, "nothing was evicted");
	CHECK(st.file_pages <= 256 + 64, "file_pages %" PRIu64 " over the budget", st.file_pages);
	CHECK(fl_msync(sp, p, pages * ps, MS_SYNC) == 0, "fl_msync: %s", strerror(errno));
	for (size_t i = 0; i < pages; i++)
		CHECK(file_byte(fd, (off_t)(i * ps + 1)) == (unsigned char)(i ^ 0x5A),
		      "the file's page %zu", i);
	fl_space_destroy(sp);
	close(fd);
	unlink(path);
}

static void test_readahead(int delivery)
{
	size_t pages = 1024;
	char path[64];
	int fd = make_file(path, pages * ps, O_RDONLY);
	struct fl_stats st;
	unsigned int sum = 0;

	for (int mode = 0; mode < 3; mode++) {
		struct fl_space *s = space(delivery, 0);
		unsigned char *p = fl_mmap(s, NULL, pages * ps, PROT_READ, MAP_SHARED, fd, 0);

		CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
		if (mode == 1)
			CHECK(fl_madvise(s, p, pages * ps, MADV_RANDOM) == 0, "MADV_RANDOM");
		if (mode == 2)
			CHECK(fl_madvise(s, p, pages * ps, MADV_WILLNEED) == 0, "MADV_WILLNEED");
		for (size_t i = 0; i < pages; i++) {
			CHECK(p[i * ps + 9] == pat(i * ps + 9), "page %zu", i);
			sum += p[i * ps];
		}
		CHECK(fl_stats(s, &st) == 0, "fl_stats");
		printf("  %s: %" PRIu64 " major, %" PRIu64 " minor file faults for %zu pages\n",
		       (const char *[]){"sequential", "MADV_RANDOM", "MADV_WILLNEED"}[mode],
		       st.file_faults_major, st.file_faults_minor, pages);
		CHECK(st.file_reads == pages, "%" PRIu64 " pages read, want %zu", st.file_reads,
		      pages);
		if (mode == 0)
			CHECK(st.file_faults_major <= pages / 16,
			      "sequential: %" PRIu64 " major faults", st.file_faults_major);
		if (mode == 1)
			CHECK(st.file_faults_major == pages, "random: %" PRIu64 " major faults",
			      st.file_faults_major);
		if (mode == 2)
			CHECK(st.file_faults_major == 0, "after WILLNEED: %" PRIu64 " major faults",
			      st.file_faults_major);
		fl_space_destroy(s);
	}
	(void)sum;
	close(fd);
	unlink(path);
}

/*
 * A random reader of a large file, with no advice: read-around (32 pages
 * around a miss) until the misses outnumber the hits by MMAP_LOTSAMISS,
 * then one page per miss.  About 20 % of the file is read around in that
 * first phase, so a fifth of the later accesses hit; the rest read one
 * page each.  A policy whose retry after its own read counted as a hit
 * would never get there, and read 32 pages per miss to the end.
 */
static void test_random_miss(int delivery, int policy)
{
	const size_t pages = 16384, reads = 2000;
	struct t_rng r;
	char path[64];
	int fd = make_file(path, pages * ps, O_RDONLY);
	struct fl_config cfg;
	struct fl_space *s;
	struct fl_stats st;
	unsigned char *p;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = policy;
	s = t_space_create_cfg(&cfg);
	p = fl_mmap(s, NULL, pages * ps, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	t_rng_init(&r, *t_seed_ptr() + (uint64_t)policy);
	for (size_t i = 0; i < reads; i++) {
		size_t pg = t_below(&r, pages);

		CHECK(p[pg * ps + 5] == pat(pg * ps + 5), "page %zu", pg);
	}
	CHECK(fl_stats(s, &st) == 0, "fl_stats");
	printf("  random, %s: %" PRIu64 " pages read for %zu reads (%" PRIu64 " major)\n",
	       fl_policy_name(policy), st.file_reads, reads, st.file_faults_major);
	CHECK(st.file_reads <= 4 * reads,
	      "%s: %" PRIu64 " pages read for %zu random reads: read-around never stopped",
	      fl_policy_name(policy), st.file_reads, reads);
	fl_space_destroy(s);
	close(fd);
	unlink(path);
}

/*
 * Major file faults under one policy for files, one page read per fault,
 * told apart from anonymous faults under their own policy by the
 * file_vma_lock_* counters.
 */
static void test_policy(int delivery, int anon_policy, int file_policy)
{
	char path[64];
	int fd = make_file(path, 64 * ps, O_RDONLY);
	struct fl_config cfg;
	struct fl_space *s;
	struct fl_stats st;
	unsigned char *p, *anon;
	unsigned int sum = 0;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = anon_policy;
	cfg.file_policy = file_policy;
	s = t_space_create_cfg(&cfg);
	/* Anonymous faults first: counted in vma_lock_*, not file_vma_lock_*. */
	anon = fl_mmap(s, NULL, 16 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	CHECK(anon != MAP_FAILED, "fl_mmap anonymous: %s", strerror(errno));
	for (size_t i = 0; i < 16; i += 2)
		anon[i * ps] = 1;
	p = fl_mmap(s, NULL, 64 * ps, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	CHECK(fl_madvise(s, p, 64 * ps, MADV_RANDOM) == 0, "MADV_RANDOM"); /* no readahead */
	for (size_t i = 0; i < 64; i += 2)
		sum += p[i * ps + 3];
	/* The faulting thread runs on once its page is installed, which can
	 * be before the handler counts how the fault ended: wait for the
	 * counts of all 32 (at most 2 s). */
	for (int tries = 0;; tries++) {
		CHECK(fl_stats(s, &st) == 0, "fl_stats");
		if (st.file_vma_lock_success + st.file_vma_lock_abort + st.file_vma_lock_retry >=
			    32 ||
		    file_policy == FL_POLICY_MMAP || tries == 400)
			break;
		usleep(5000);
	}
	CHECK(st.file_faults_major == 32, "%" PRIu64 " major faults, want 32 (sum %u)",
	      st.file_faults_major, sum);
	CHECK(st.file_vma_lock_success <= st.vma_lock_success &&
		      st.file_vma_lock_abort <= st.vma_lock_abort &&
		      st.file_vma_lock_retry <= st.vma_lock_retry,
	      "file_vma_lock_* is not a part of vma_lock_*");
	/* Demand-zero faults never wait: under a VMA lock, they end there. */
	if (anon_policy != FL_POLICY_MMAP)
		CHECK(st.vma_lock_success > st.file_vma_lock_success,
		      "anonymous faults (%s) not counted apart: %" PRIu64 " successes, %" PRIu64
		      " of them file",
		      fl_policy_name(anon_policy), st.vma_lock_success, st.file_vma_lock_success);
	switch (file_policy) {
	case FL_POLICY_MMAP:
		CHECK(st.file_vma_lock_success == 0 && st.file_vma_lock_retry == 0,
		      "mmap: %" PRIu64 " file faults under a VMA lock", st.file_vma_lock_success);
		break;
	/* A fault whose VMA lock could not be taken at all (file_vma_lock_abort:
	 * it went to the space lock first) says nothing of the policy. */
	case FL_POLICY_BAIL:
	case FL_POLICY_DROP:
	case FL_POLICY_V2_ANON: /* drop, on a file VMA */
		CHECK(st.file_vma_lock_retry + st.file_vma_lock_abort >= 32 &&
			      st.file_vma_lock_retry > 0,
		      "%s: %" PRIu64 " retries (%" PRIu64 " aborts) for 32 reads",
		      fl_policy_name(file_policy), st.file_vma_lock_retry, st.file_vma_lock_abort);
		break;
	default: /* hold, drop-vma, v2: the fault goes on under its VMA lock */
		CHECK(st.file_vma_lock_retry == 0 &&
			      st.file_vma_lock_success + st.file_vma_lock_abort >= 32 &&
			      st.file_vma_lock_success > 0,
		      "%s: %" PRIu64 " retries, %" PRIu64 " under a VMA lock, %" PRIu64 " aborts",
		      fl_policy_name(file_policy), st.file_vma_lock_retry, st.file_vma_lock_success,
		      st.file_vma_lock_abort);
		break;
	}
	fl_space_destroy(s);
	close(fd);
	unlink(path);
}

/*
 * Waits for the lock of a page that is up to date, under a policy: readers
 * fault the pages of a shared mapping again and again (MADV_DONTNEED drops
 * their mappings; the pages stay in the cache, up to date), while a writer
 * dirties them with the bytes they hold and fl_msync(MS_SYNC) writes them
 * back, holding their locks.  Every byte read must be the file's; a policy
 * that releases its VMA lock for every wait (bail, drop, drop-vma, and
 * v2-anon on a file) must never count a wait with it kept.
 */
struct lw {
	struct fl_space *s;
	unsigned char *p;
	atomic_bool stop;
	atomic_ulong bad;
	int id;
};

static void *lw_reader(void *arg)
{
	struct lw *w = arg;
	unsigned int x = 7u + (unsigned int)w->id;

	while (!atomic_load(&w->stop)) {
		size_t pg = (x = x * 1103515245u + 12345u) >> 8 & (PAGES - 1);
		size_t off = pg * ps + ((x >> 20) & (ps - 1));

		/* Relaxed atomics: the writer stores the byte a page holds, a
		 * race of equal values, which TSan would report. */
		if (__atomic_load_n(&w->p[off], __ATOMIC_RELAXED) != pat(off))
			atomic_fetch_add(&w->bad, 1);
		if (!(x & 7))
			fl_madvise(w->s, w->p + pg * ps, ps, MADV_DONTNEED);
	}
	return NULL;
}

static void *lw_writer(void *arg)
{
	struct lw *w = arg;
	unsigned int x = 99;

	while (!atomic_load(&w->stop)) {
		size_t pg = (x = x * 1103515245u + 12345u) >> 8 & (PAGES - 1);

		/* dirties it, same byte */
		__atomic_store_n(&w->p[pg * ps + 1], pat(pg * ps + 1), __ATOMIC_RELAXED);
		if (!(x & 3) && fl_msync(w->s, w->p, PAGES * ps, MS_SYNC))
			atomic_fetch_add(&w->bad, 1);
	}
	return NULL;
}

static void test_lock_waits(int delivery, int policy)
{
	char path[64];
	int fd = make_file(path, PAGES * ps, O_RDWR);
	struct fl_config cfg;
	struct lw w[4];
	pthread_t t[4];
	struct fl_stats st;
	unsigned char *p;
	unsigned long bad = 0;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = policy;
	struct fl_space *s = t_space_create_cfg(&cfg);
	p = fl_mmap(s, NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (int i = 0; i < 4; i++) {
		w[i] = (struct lw){.s = s, .p = p, .id = i};
		CHECK(!pthread_create(&t[i], NULL, i ? lw_reader : lw_writer, &w[i]),
		      "pthread_create");
	}
	usleep(400 * 1000);
	for (int i = 0; i < 4; i++)
		atomic_store(&w[i].stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += atomic_load(&w[i].bad);
	}
	CHECK(fl_stats(s, &st) == 0, "fl_stats");
	CHECK(!bad, "%s: %lu bytes read wrong or msync failures", fl_policy_name(policy), bad);
	if (policy != FL_POLICY_HOLD && policy != FL_POLICY_V2 && policy != FL_POLICY_MMAP)
		CHECK(!st.lock_waits_kept,
		      "%s kept its VMA lock through %" PRIu64 " waits for a page lock",
		      fl_policy_name(policy), st.lock_waits_kept);
	printf("  %s: %" PRIu64 " faults, %" PRIu64 " waits for an up-to-date page's lock with "
	       "the VMA lock kept, %" PRIu64 " retries\n",
	       fl_policy_name(policy), st.faults, st.lock_waits_kept, st.vma_lock_retry);
	fl_space_destroy(s);
	close(fd);
	unlink(path);
}

/*
 * Files mapped and unmapped again and again: each one's cached pages leave
 * the budget's count once its cache is freed (the last reference, after the
 * VMA's RCU grace period), so that the budget does not shrink for good.
 */
static void test_cache_freed(int delivery)
{
	char path[64];
	int fd = make_file(path, PAGES * ps, O_RDWR);
	struct fl_space *sp = space(delivery, 256 * ps);
	struct fl_stats st;

	for (int round = 0; round < 4; round++) {
		volatile unsigned char *p =
			fl_mmap(sp, NULL, PAGES * ps, PROT_READ, MAP_SHARED, fd, 0);
		unsigned int sum = 0;

		CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
		for (size_t i = 0; i < PAGES; i++)
			sum += p[i * ps];
		CHECK(sum, "nothing read");
		CHECK(fl_munmap(sp, (void *)p, PAGES * ps) == 0, "fl_munmap");
	}
	for (int t = 0;; t++) {
		st = t_stats(sp);
		if (!st.files && !st.file_pages)
			break;
		CHECK(t < 5000, "no file mapped for 5 s: files %" PRIu64 ", file_pages %" PRIu64,
		      st.files, st.file_pages);
		usleep(1000);
	}
	fl_space_destroy(sp);
	close(fd);
	unlink(path);
}

/*
 * More files than the flusher and the file clock take in one gathering
 * (64): a store to the first file mapped (the list's tail) is written back
 * by the flusher too, with the dirty pages over the background ratio (each
 * round writes every file then).
 */
static void test_many_files(int delivery)
{
	enum { NF = 70 };
	char paths[NF][64];
	int fds[NF];
	unsigned char *m[NF];
	struct fl_space *sp = space(delivery, 256 * ps); /* background ratio: 25 pages */

	for (int i = 0; i < NF; i++) {
		fds[i] = make_file(paths[i], ps, O_RDWR);
		m[i] = fl_mmap(sp, NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		CHECK(m[i] != MAP_FAILED, "fl_mmap of file %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < NF; i++)
		m[i][10] = 0x5a;
	for (int t = 0; file_byte(fds[0], 10) != 0x5a || file_byte(fds[NF - 1], 10) != 0x5a; t++) {
		CHECK(t < 10000,
		      "%d files: a store to the first one mapped not in the file after "
		      "10 s (the flusher writes every file each second)",
		      NF);
		usleep(1000);
	}
	fl_space_destroy(sp);
	for (int i = 0; i < NF; i++) {
		close(fds[i]);
		unlink(paths[i]);
	}
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_file");
	ps = t_page_size();
	t_sigbus_install(); /* before any space */
	for (int d = 0; d < 2; d++) {
		int delivery = d ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;

		printf("delivery %s\n", t_delivery_name(delivery));
		test_shared(delivery, 0);
		test_shared(delivery, 64 * ps);
		test_private(delivery, 0);
		test_private(delivery, 64 * ps);
		test_offset_eof(delivery);
		test_msync_errors(delivery);
		test_msync_inflight(delivery);
		test_budget(delivery);
		test_cache_freed(delivery);
		test_many_files(delivery);
		test_readahead(delivery);
		for (int pol = 0; pol < FL_POLICY_NR; pol++)
			test_random_miss(delivery, pol);
		for (int pol = 0; pol < FL_POLICY_NR; pol++)
			test_policy(delivery, FL_POLICY_DROP, pol);
		/* Anonymous memory holds, files drop: files still retry. */
		test_policy(delivery, FL_POLICY_HOLD, FL_POLICY_DROP);
		test_policy(delivery, FL_POLICY_MMAP, FL_POLICY_HOLD);
		for (int pol = 0; pol < FL_POLICY_NR; pol++)
			test_lock_waits(delivery, pol);
	}
	printf("test_file: ok\n");
	return T_EXIT_PASS;
}
