/* SPDX-License-Identifier: MIT */
/*
 * test_fork: faultline's mappings are MADV_DONTFORK, in a space made
 * without cfg.fork (FAULTLINE_FORK; with it, the child gets the space:
 * tests/test_fork_copy.c).
 *
 * Without UFFD_FEATURE_EVENT_FORK a child's copy of a region would lose its
 * userfaultfd registration and read zeros where pages were never served (or
 * were swapped out).  faultline documents that the child gets no mapping
 * there at all instead.  So, in a child:
 *   - /proc/self/maps shows nothing in any region (also the pieces made by
 *     fl_mprotect splits, a MAP_FIXED replacement, a region mapped after a
 *     DONTNEED, and a region being faulted by another thread during fork);
 *   - mincore() and msync() on every region fail with ENOMEM;
 *   - a load or a store in a region, on a page the parent touched or not,
 *     gets SIGSEGV (SEGV_MAPERR) at that address: never zeros, never data.
 * In the parent, after each fork: all data is intact and new pages fault
 * in as usual.  Both delivery modes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <faultline.h>

#include "util.h"

#define MAX_REGIONS 8
#define MAX_PAGES 64

struct region {
	const char *name;
	char *addr;
	size_t npages;
	/* Per page: 0 means never written (reads zero), else the fill's generation. */
	uint32_t gen[MAX_PAGES];
};

static size_t ps;
static struct region regs[MAX_REGIONS];
static int nregs;
static uint64_t seed;

/* The worker faults in its own region while the main thread forks. */
static struct region *wreg;
static struct fl_space *wsp;
static atomic_bool wstop;
static atomic_long wrounds;

/* Child side: no malloc, no stdio, nothing that may hold a lock across fork. */
static char child_maps[1 << 20];
static sigjmp_buf child_jb;
static volatile sig_atomic_t child_sig, child_code;
static void *volatile child_addr;

static uint64_t fill_word(const struct region *r, size_t page, uint32_t gen, size_t i)
{
	uint64_t x = seed ^ ((uint64_t)(uintptr_t)r->addr << 1) ^ ((uint64_t)page << 40) ^
		     ((uint64_t)gen << 20) ^ i;

	return t_splitmix64(&x);
}

static void fill_page(struct region *r, size_t page, uint32_t gen)
{
	uint64_t *p = (uint64_t *)(r->addr + page * ps);

	for (size_t i = 0; i < ps / 8; i++)
		p[i] = fill_word(r, page, gen, i);
	r->gen[page] = gen;
}

static void verify_page(const struct region *r, size_t page, const char *when)
{
	const uint64_t *p = (const uint64_t *)(r->addr + page * ps);

	for (size_t i = 0; i < ps / 8; i++) {
		uint64_t want = r->gen[page] ? fill_word(r, page, r->gen[page], i) : 0;

		CHECK(p[i] == want,
		      "%s: region %s page %zu (%p) word %zu: %#" PRIx64 ", expected %#" PRIx64
		      " (generation %u)",
		      when, r->name, page, (void *)(r->addr + page * ps), i, p[i], want,
		      r->gen[page]);
	}
}

static void verify_all(const char *when)
{
	for (int i = 0; i < nregs; i++)
		for (size_t p = 0; p < regs[i].npages; p++)
			verify_page(&regs[i], p, when);
}

static struct region *add_region(const char *name, char *addr, size_t npages)
{
	struct region *r = &regs[nregs++];

	CHECK(addr != MAP_FAILED, "fl_mmap for %s: %s", name, strerror(errno));
	CHECK(npages <= MAX_PAGES, "region too big");
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->addr = addr;
	r->npages = npages;
	return r;
}

static void *worker(void *arg)
{
	struct region *r = wreg;
	uint32_t gen = 1;

	(void)arg;
	while (!atomic_load(&wstop)) {
		for (size_t p = 0; p < r->npages; p++)
			fill_page(r, p, gen);
		for (size_t p = 0; p < r->npages; p++)
			verify_page(r, p, "worker, after filling");
		/* Zap it all so that the next round faults every page again. */
		CHECK(fl_madvise(wsp, r->addr, r->npages * ps, MADV_DONTNEED) == 0,
		      "worker: fl_madvise: %s", strerror(errno));
		memset(r->gen, 0, sizeof(r->gen));
		for (size_t p = 0; p < r->npages; p++)
			verify_page(r, p, "worker, after MADV_DONTNEED");
		gen++;
		atomic_fetch_add(&wrounds, 1);
	}
	return NULL;
}

/* ------------------------------------------------------------ the child */

static void child_say(const char *a, const char *b, uintptr_t x)
{
	char num[20];
	int n = 0;

	for (int s = 60; s >= 0; s -= 4)
		num[n++] = "0123456789abcdef"[(x >> s) & 15];
	if (write(2, "child: ", 7) < 0 || write(2, a, strlen(a)) < 0 ||
	    write(2, b, strlen(b)) < 0 || write(2, " 0x", 3) < 0 || write(2, num, n) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(3);
}

static void __attribute__((noreturn)) child_fail(const char *a, const char *b, uintptr_t x)
{
	child_say(a, b, x);
	_exit(1);
}

static void child_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	child_sig = sig;
	child_code = si->si_code;
	child_addr = si->si_addr;
	siglongjmp(child_jb, 1);
}

static uintptr_t parse_hex(const char **s)
{
	uintptr_t v = 0;

	for (;; (*s)++) {
		char c = **s;

		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else
			return v;
	}
}

/*
 * The child's checks use raw system calls: a sanitizer's interceptors may
 * map memory of their own in the child, and the kernel may well put it where
 * a region was (that range is free in the child).  The checks that prove no
 * region was inherited run first, before anything in the child can map.
 */
static long raw_mincore(void *addr, size_t len, unsigned char *vec)
{
	return syscall(SYS_mincore, addr, len, vec);
}

/* Return the start of a mapping that overlaps [s, e), or 0. */
static uintptr_t child_mapped(uintptr_t s, uintptr_t e)
{
	long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY);
	size_t n = 0;
	const char *p;

	if (fd < 0)
		child_fail("open /proc/self/maps", "", errno);
	for (;;) {
		long r = syscall(SYS_read, fd, child_maps + n, sizeof(child_maps) - 1 - n);

		if (r < 0)
			child_fail("read /proc/self/maps", "", errno);
		if (r == 0)
			break;
		n += r;
	}
	syscall(SYS_close, fd);
	child_maps[n] = 0;
	for (p = child_maps; *p;) {
		uintptr_t a = parse_hex(&p), b;

		p++; /* '-' */
		b = parse_hex(&p);
		if (a < e && b > s)
			return a;
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
	}
	return 0;
}

/* Access one byte; return 0 if it did not fault, else the signal. */
static int child_probe(volatile char *addr, bool store)
{
	child_sig = 0;
	if (sigsetjmp(child_jb, 1) == 0) {
		if (store)
			*addr = 0x5a;
		else
			(void)*addr;
		return 0;
	}
	return child_sig;
}

static void __attribute__((noreturn)) child_main(void)
{
	struct sigaction sa;
	unsigned char vec[MAX_PAGES];
	uintptr_t m;

	/* A region still registered and no handler in the child: do not hang. */
	alarm(20);

	for (int i = 0; i < nregs; i++) {
		struct region *r = &regs[i];
		uintptr_t s = (uintptr_t)r->addr, e = s + r->npages * ps;

		if (raw_mincore(r->addr, r->npages * ps, vec) != -1 || errno != ENOMEM)
			child_fail(r->name, ": mincore did not fail with ENOMEM, errno", errno);
		for (size_t p = 0; p < r->npages; p++)
			if (raw_mincore(r->addr + p * ps, ps, vec) != -1 || errno != ENOMEM)
				child_fail(r->name, ": mincore of one page did not fail, page", p);
		if (syscall(SYS_msync, r->addr, r->npages * ps, MS_ASYNC) != -1 || errno != ENOMEM)
			child_fail(r->name, ": msync did not fail with ENOMEM, errno", errno);
		m = child_mapped(s, e);
		if (m)
			child_fail(r->name, ": still mapped in the child, a mapping starts at", m);
	}

	/* Nothing was inherited.  Now every access must fault. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = child_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	for (int i = 0; i < nregs; i++) {
		struct region *r = &regs[i];

		for (size_t p = 0; p < r->npages; p++) {
			volatile char *a = r->addr + p * ps + (p * 37) % ps;
			bool store = p % 3 == 2;
			int sig = child_probe(a, store);

			if (!sig && raw_mincore(r->addr + p * ps, ps, vec) == 0)
				continue; /* mapped by the child itself since the checks above */
			if (!sig)
				child_fail(r->name,
					   store ? ": a store did not fault, at"
						 : ": a load did not fault, at",
					   (uintptr_t)a);
			if (sig != SIGSEGV)
				child_fail(r->name,
					   ": the access got a signal other than SIGSEGV:", sig);
			if (child_addr != (void *)a || child_code != SEGV_MAPERR)
				child_fail(r->name,
					   ": SIGSEGV with the wrong si_addr or si_code, at",
					   (uintptr_t)child_addr);
		}
	}
	_exit(0);
}

/* ------------------------------------------------------------ the parent */

static bool parent_mapped(const struct region *r)
{
	unsigned char vec[MAX_PAGES];

	return mincore(r->addr, r->npages * ps, vec) == 0;
}

static void fork_and_check(const char *when)
{
	int status;
	pid_t pid;

	for (int i = 0; i < nregs; i++)
		CHECK(parent_mapped(&regs[i]), "%s: region %s not mapped in the parent before fork",
		      when, regs[i].name);
	pid = t_fork();
	if (pid == 0)
		child_main();
	status = t_wait(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "%s: the child %s %d (a region was inherited, or SIGALRM: it hung)", when,
	      WIFEXITED(status) ? "exited with" : "was killed by signal",
	      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void run(int delivery, struct t_rng *rng, int forks)
{
	struct fl_space *sp = t_space_create(delivery);
	struct region *a, *b, *c, *w;
	const int rw = PROT_READ | PROT_WRITE, anon = MAP_PRIVATE | MAP_ANONYMOUS;
	struct fl_stats st0, st1;
	pthread_t th;
	char when[64];
	uint32_t gen = 1;

	nregs = 0;
	a = add_region("A", fl_mmap(sp, NULL, 48 * ps, rw, anon, -1, 0), 48);
	b = add_region("B", fl_mmap(sp, NULL, 16 * ps, rw, anon | MAP_POPULATE, -1, 0), 16);

	/* Touch half of A at random, all of B. */
	for (size_t p = 0; p < a->npages; p++)
		if (t_chance(rng, 50))
			fill_page(a, p, gen);
	for (size_t p = 0; p < b->npages; p++)
		fill_page(b, p, gen);

	/* Pieces: a split by fl_mprotect, a MAP_FIXED replacement, a DONTNEED hole. */
	CHECK(fl_mprotect(sp, a->addr + 8 * ps, 4 * ps, PROT_READ) == 0, "fl_mprotect: %s",
	      strerror(errno));
	CHECK(fl_mmap(sp, a->addr + 20 * ps, 6 * ps, rw, anon | MAP_FIXED, -1, 0) ==
		      a->addr + 20 * ps,
	      "fl_mmap MAP_FIXED: %s", strerror(errno));
	for (int p = 20; p < 26; p++)
		a->gen[p] = 0;
	CHECK(fl_madvise(sp, a->addr + 30 * ps, 5 * ps, MADV_DONTNEED) == 0, "fl_madvise: %s",
	      strerror(errno));
	for (int p = 30; p < 35; p++)
		a->gen[p] = 0;
	verify_all("before the first fork");

	c = add_region("C (mapped after the pieces)", fl_mmap(sp, NULL, 8 * ps, rw, anon, -1, 0),
		       8);
	fill_page(c, 3, gen);

	w = add_region("W (faulted during fork)", fl_mmap(sp, NULL, 32 * ps, rw, anon, -1, 0), 32);
	wreg = w;
	wsp = sp;
	atomic_store(&wstop, false);
	atomic_store(&wrounds, 0);
	CHECK(pthread_create(&th, NULL, worker, NULL) == 0, "pthread_create");

	CHECK(fl_stats(sp, &st0) == 0, "fl_stats");
	for (int f = 0; f < forks; f++) {
		size_t p;

		snprintf(when, sizeof(when), "%s, fork %d", t_delivery_name(delivery), f);
		fork_and_check(when);
		/* The parent: its data is intact and new faults are served. */
		for (int i = 0; i < nregs; i++)
			if (&regs[i] != w)
				for (p = 0; p < regs[i].npages; p++)
					verify_page(&regs[i], p, when);
		gen++;
		p = t_below(rng, a->npages);
		if (p < 8 || p >= 12) /* not the read-only piece */
			fill_page(a, p, gen);
		fill_page(c, t_below(rng, c->npages), gen);
		CHECK(fl_madvise(sp, b->addr + (f % 16) * ps, ps, MADV_DONTNEED) == 0,
		      "fl_madvise: %s", strerror(errno));
		b->gen[f % 16] = 0;
		verify_page(b, f % 16, when);
		fill_page(b, f % 16, gen);
	}
	/* Let the worker finish a round after the last fork, then stop it. */
	for (long r0 = atomic_load(&wrounds); atomic_load(&wrounds) < r0 + 2;)
		usleep(1000);
	atomic_store(&wstop, true);
	CHECK(pthread_join(th, NULL) == 0, "pthread_join");
	CHECK(atomic_load(&wrounds) >= 2, "the worker made no progress");
	verify_all("after the forks");
	CHECK(fl_stats(sp, &st1) == 0, "fl_stats");
	CHECK(st1.faults > st0.faults,
	      "no faults served after the forks (%" PRIu64 " -> %" PRIu64 ")", st0.faults,
	      st1.faults);
	printf("%s: %d forks, worker rounds %ld, faults %" PRIu64 "\n", t_delivery_name(delivery),
	       forks, atomic_load(&wrounds), st1.faults);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	struct t_rng rng;
	int forks;

	seed = t_seed_init(argc, argv, "test_fork");
	t_rng_init(&rng, seed);
	ps = t_page_size();
	forks = t_soak() ? 200 : 12;
	run(FL_DELIVERY_THREAD, &rng, forks);
	run(FL_DELIVERY_SIGBUS, &rng, forks);
	printf("test_fork: ok\n");
	return T_EXIT_PASS;
}
