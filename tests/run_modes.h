/* SPDX-License-Identifier: MIT */
/*
 * The modes of test_run (test_run.c) that the test runs under `faultline
 * run`, one program each (`test_run --MODE [ARG]`): each calls what it
 * checks as an unmodified program would and exits 0, or with a code that
 * says what went wrong (the test names the codes).  run_mode(): the mode
 * argv names, or -1 if it names none.
 */
#ifndef FL_TESTS_RUN_MODES_H
#define FL_TESTS_RUN_MODES_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * test_run --madvise-threads N, run under `faultline run` by the test: N
 * threads whose first call that faultline looks at is madvise() of kernel
 * memory (a shared anonymous page).  Each registers with liburcu in its
 * lookup, and the registry grows by mmap and mremap as threads come: these
 * went back into faultline, and the thread waited for the registry lock it
 * held, for ever.  --fixed-threads N: the same with a MAP_FIXED mmap() of
 * kernel memory over kernel memory (its lookup of served memory there).
 */
static pthread_barrier_t mt_barrier;
static char *mt_page;

static bool mt_fixed; /* --fixed-threads: the first call is a MAP_FIXED mmap() */

static void *mt_thread(void *arg)
{
	if (mt_fixed) {
		char *p = mt_page + 4096 * (size_t)(uintptr_t)arg;

		if (mmap(p, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0) != p)
			_exit(3);
	} else if (madvise(mt_page, 4096, MADV_NORMAL)) {
		_exit(3);
	}
	pthread_barrier_wait(&mt_barrier);
	return NULL;
}

static int madvise_threads(int n)
{
	pthread_t t[64];

	mt_page = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mt_page == MAP_FAILED || n > 64)
		return 2;
	pthread_barrier_init(&mt_barrier, NULL, (unsigned int)n + 1);
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, mt_thread, (void *)(uintptr_t)i))
			return 4;
	pthread_barrier_wait(&mt_barrier);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	printf("%d threads\n", n);
	return 0;
}

/*
 * test_run --fixed-refused, under `faultline run`: MAP_FIXED mmap()s that
 * the kernel refuses before it changes anything (a descriptor not open, one
 * open for writing only, a file whose file system has no mmap: ENODEV)
 * over memory faultline serves: the memory there stays, with its data (it
 * was unmapped first); and one the kernel makes over a page of it: that
 * page is the file's, the pages beside it as they were.
 */
static int fixed_refused(void)
{
	size_t len = 1 << 20;
	char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int wr = open("/dev/null", O_WRONLY), nommap = open("/proc/self/status", O_RDONLY),
	    text = open("/proc/self/exe", O_RDONLY);

	if (a == MAP_FAILED || wr < 0 || text < 0)
		return 2;
	memset(a, 'o', len);
	errno = 0;
	if (mmap(a, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, -1, 0) != MAP_FAILED || errno != EBADF)
		return 3;
	errno = 0;
	if (mmap(a, len, PROT_READ, MAP_SHARED | MAP_FIXED, wr, 0) != MAP_FAILED || errno != EACCES)
		return 4;
	/* Refused by the file's own mmap (procfs has none): only the kernel
	 * can tell. */
	errno = 0;
	if (nommap < 0 ||
	    mmap(a, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, nommap, 0) != MAP_FAILED ||
	    errno != ENODEV)
		return 6;
	/* One the kernel makes: there, with the file's data. */
	if (mmap(a + len / 2, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, text, 0) != a + len / 2 ||
	    memcmp(a + len / 2, "\177ELF", 4))
		return 7;
	if (a[len / 2 - 4096] != 'o' || a[len / 2 + 4096] != 'o')
		return 5;
	for (size_t i = 0; i < len; i += 4096)
		if (i != len / 2 && a[i] != 'o')
			return 5;
	printf("kept\n");
	return 0;
}

/*
 * test_run --madv-free-file FILE, under `faultline run`: MADV_FREE on a
 * private mapping of a file (served by faultline) is EINVAL, as the
 * kernel's, and the private copy stays (it was dropped).
 */
static int madv_free_file(const char *path)
{
	char buf[4096], *m;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	memset(buf, 'f', sizeof(buf));
	if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		return 2;
	m = mmap(NULL, sizeof(buf), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return 2;
	m[0] = 'p';
	errno = 0;
	if (madvise(m, sizeof(buf), MADV_FREE) != -1 || errno != EINVAL)
		return 3;
	if (m[0] != 'p')
		return 4;
	printf("kept\n");
	return 0;
}

static sigjmp_buf mixed_jmp;

static void mixed_segv(int sig)
{
	(void)sig;
	siglongjmp(mixed_jmp, 1);
}

/* Whether a store to p faults (SIGSEGV). */
static bool store_faults(volatile char *p)
{
	struct sigaction sa = {.sa_handler = mixed_segv}, old;
	bool faulted = false;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(mixed_jmp, 1))
		faulted = true;
	else
		*p = 1;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

/*
 * test_run --mixed, under `faultline run`: mprotect() and madvise() over a
 * range of which one page is faultline's (private anonymous) and the other
 * the kernel's (MAP_STACK, which faultline leaves to it), in both orders:
 * both pages change, as natively (faultline's first: ENOMEM and the
 * kernel's page unchanged; the kernel's first: faultline's page changed
 * behind its back).
 */
static int mixed(void)
{
	const size_t P = 4096;
	const int served = MAP_PRIVATE | MAP_ANONYMOUS, kernel = served | MAP_STACK;
	char *b = mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, served, -1, 0);

	if (b == MAP_FAILED ||
	    mmap(b + P, P, PROT_READ | PROT_WRITE, kernel | MAP_FIXED, -1, 0) != b + P)
		return 2;
	memset(b, 'x', 2 * P);
	if (madvise(b, 2 * P, MADV_DONTNEED) || b[0] || b[P])
		return 3;
	if (mprotect(b, 2 * P, PROT_READ) || !store_faults(b) || !store_faults(b + P))
		return 4;
	b = mmap(NULL, 2 * P, PROT_NONE, kernel, -1, 0);
	if (b == MAP_FAILED || mmap(b + P, P, PROT_NONE, served | MAP_FIXED, -1, 0) != b + P)
		return 2;
	if (mprotect(b, 2 * P, PROT_READ | PROT_WRITE) || store_faults(b) || store_faults(b + P))
		return 5;
	memset(b, 'y', 2 * P);
	if (madvise(b, 2 * P, MADV_DONTNEED) || b[0] || b[P])
		return 6;
	printf("both\n");
	return 0;
}

/*
 * test_run --remap-onto, under `faultline run`: a kernel mapping (MAP_STACK,
 * which faultline leaves to the kernel) moved with mremap(MREMAP_FIXED)
 * onto memory faultline serves: a move refused for a reason that can be
 * told beforehand leaves that memory as it was (it was unmapped first);
 * one the kernel makes is there with its
 * data, and mprotect() of it works (faultline's VMA stayed there, and
 * mprotect failed).
 */
static int remap_onto(void)
{
	const size_t P = 4096;
	char *s = mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *k = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1,
		       0);

	if (s == MAP_FAILED || k == MAP_FAILED)
		return 2;
	memset(s, 's', 2 * P);
	memset(k, 'k', P);
	/* Refused (MREMAP_DONTUNMAP with a new length, told beforehand):
	 * the served memory stays. */
	errno = 0;
	if (mremap(k, P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, s) !=
		    MAP_FAILED ||
	    errno != EINVAL)
		return 5;
	if (s[0] != 's' || s[P] != 's' || k[0] != 'k')
		return 6;
	if (mremap(k, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, s) != s || s[0] != 'k' || s[P] != 's')
		return 3;
	if (mprotect(s, P, PROT_READ) || mprotect(s, 2 * P, PROT_READ | PROT_WRITE))
		return 4;
	printf("moved\n");
	return 0;
}

/* Whether the file at fd holds c at [off, off + 4096), by read(2). */
static bool file_holds(int fd, off_t off, char c)
{
	char buf[4096];

	if (pread(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf))
		return false;
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != c)
			return false;
	return true;
}

/*
 * test_run --msync-mixed FILE, under `faultline run`: msync(MS_SYNC) over a
 * range of kernel memory (MAP_STACK) and a shared mapping of FILE (served
 * by faultline), in both orders: the stores through the mapping are in the
 * file (read(2) sees them) when it returns 0.  With the kernel's page first
 * the whole range went to the kernel, and the file kept its old data.
 */
static int msync_mixed(const char *path)
{
	const size_t P = 4096;
	char buf[4096];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	char *m;

	memset(buf, 'o', sizeof(buf));
	if (fd < 0 || pwrite(fd, buf, P, 0) != (ssize_t)P || pwrite(fd, buf, P, P) != (ssize_t)P)
		return 2;
	/* The kernel's page first, then the file's second page. */
	m = mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED ||
	    mmap(m, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_FIXED,
		 -1, 0) != m)
		return 2;
	memset(m, 'k', 2 * P);
	if (msync(m, 2 * P, MS_SYNC))
		return 3;
	if (!file_holds(fd, P, 'k') || !file_holds(fd, 0, 'o'))
		return 4;
	/* The file's first page, then the kernel's. */
	m = mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED ||
	    mmap(m + P, P, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_FIXED, -1, 0) != m + P)
		return 2;
	memset(m, 's', 2 * P);
	if (msync(m, 2 * P, MS_SYNC))
		return 5;
	if (!file_holds(fd, 0, 's') || !file_holds(fd, P, 'k'))
		return 6;
	/* A hole after them: ENOMEM, and what is before it written. */
	if (munmap(m + P, P))
		return 2;
	m[0] = 'h';
	errno = 0;
	if (msync(m, 2 * P, MS_SYNC) != -1 || errno != ENOMEM)
		return 7;
	if (pread(fd, buf, 1, 0) != 1 || buf[0] != 'h')
		return 8;
	printf("written\n");
	return 0;
}

/*
 * test_run --stats-fork, under `faultline run --stats FILE`: a child of
 * fork() that exits (exit(): the preload's destructor runs) before the
 * program does.  It prints both pids: the program's statistics go to FILE,
 * the child's to FILE.PID (the child wrote FILE, and the program then
 * wrote it over).
 */
static int stats_fork(void)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return 2;
	if (!pid)
		exit(0);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 3;
	printf("%d %d\n", (int)getpid(), (int)pid);
	return 0;
}

/*
 * test_run --coherent FILE, under `faultline run` (FILE on a disk), or
 * under `faultline run --files` (FILE in /dev/shm): FILE's mappings, shared
 * and private, see a pwrite() to a page they have read (the kernel's page
 * cache is theirs), and the file sees a store through the shared one, as
 * another process mapping it would.  Served by faultline, the mappings kept
 * the page they had cached.
 */
static int coherent(const char *path)
{
	const size_t P = 4096;
	char buf[4096];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	volatile char *s, *p;

	memset(buf, 'o', sizeof(buf));
	if (fd < 0 || pwrite(fd, buf, P, 0) != (ssize_t)P)
		return 2;
	s = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p = mmap(NULL, P, PROT_READ, MAP_PRIVATE, fd, 0);
	if (s == MAP_FAILED || p == MAP_FAILED)
		return 2;
	if (s[0] != 'o' || p[1] != 'o')
		return 3;
	memset(buf, 'w', sizeof(buf));
	if (pwrite(fd, buf, P, 0) != (ssize_t)P)
		return 2;
	if (s[0] != 'w' || p[1] != 'w')
		return 4;
	s[2] = 's';
	if (pread(fd, buf, 3, 0) != 3 || buf[2] != 's')
		return 5;
	printf("coherent\n");
	return 0;
}

/*
 * test_run --threads-in-turn N, under `faultline run`: N threads made and
 * joined one after another, each allocating and freeing a few hundred
 * blocks of many sizes.  With a dalloc hook on the hooked arenas jemalloc
 * 5.3 died of a NULL dereference in mallocx() at about the 50th thread
 * (git commit, Python threads did the same).
 */
static void *tt_thread(void *arg)
{
	long k = (long)arg, sum = 0;
	char *v[200];

	for (int i = 0; i < 200; i++) {
		v[i] = malloc(16 + (size_t)((i * k) % 4000));
		if (!v[i])
			return (void *)-1L;
		memset(v[i], 1, 16);
	}
	for (int i = 0; i < 200; i++) {
		sum += v[i][0];
		free(v[i]);
	}
	return (void *)sum;
}

static int threads_in_turn(int n)
{
	long total = 0;

	for (int i = 0; i < n; i++) {
		pthread_t t;
		void *r;

		if (pthread_create(&t, NULL, tt_thread, (void *)(long)i) || pthread_join(t, &r))
			return 2;
		if ((long)r != 200)
			return 3;
		total += (long)r;
	}
	printf("%ld\n", total);
	return 0;
}

static int run_mode(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--remap-onto"))
		return remap_onto();
	if (argc == 2 && !strcmp(argv[1], "--mixed"))
		return mixed();
	if (argc == 3 && !strcmp(argv[1], "--madv-free-file"))
		return madv_free_file(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--madvise-threads"))
		return madvise_threads(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "--fixed-threads")) {
		mt_fixed = true;
		return madvise_threads(atoi(argv[2]));
	}
	if (argc == 2 && !strcmp(argv[1], "--fixed-refused"))
		return fixed_refused();
	if (argc == 3 && !strcmp(argv[1], "--msync-mixed"))
		return msync_mixed(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "--stats-fork"))
		return stats_fork();
	if (argc == 3 && !strcmp(argv[1], "--coherent"))
		return coherent(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--threads-in-turn"))
		return threads_in_turn(atoi(argv[2]));
	return -1;
}

#endif /* FL_TESTS_RUN_MODES_H */
