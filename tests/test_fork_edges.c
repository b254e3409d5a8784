/* SPDX-License-Identifier: MIT */
/*
 * test_fork_edges: the corners of giving a space made with cfg.fork to a
 * child of fork() (src/fork.c), one case each:
 *   - twofork: two threads fork at once, many times, fl_fork() and fork()
 *     in turn; every child reads the region (before the fork lock, both
 *     forks collected and quiesced the spaces together and hung).
 * Under ThreadSanitizer the children exit at once (as test_fork_copy: TSan
 * cannot follow a child of a threaded fork that starts threads): the
 * parent's side only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <faultline.h>

#include "util.h"

#if T_UNDER_TSAN
static void tsan_child_exits(void)
{
	_exit(0);
}
#endif

static size_t ps;

static struct fl_space *fork_space_policy(int delivery, int policy, size_t budget_pages)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	if (policy >= 0)
		cfg.policy = policy;
	cfg.fork = 1;
	cfg.mem_limit = budget_pages * ps;
	return t_space_create_cfg(&cfg);
}

static struct fl_space *fork_space(int delivery, size_t budget_pages)
{
	return fork_space_policy(delivery, -1, budget_pages);
}

/* ---- twofork ---------------------------------------------------------- */

#define TWOFORK_PAGES 256
#define TWOFORK_FORKS 25

static unsigned char *tf_region;

static void *tf_forker(void *arg)
{
	for (int i = 0; i < TWOFORK_FORKS; i++) {
		pid_t pid = (i & 1) ? fork() : fl_fork();
		int st;

		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			for (size_t p = 0; p < TWOFORK_PAGES; p++)
				if (tf_region[p * ps] != (unsigned char)(p + 1))
					_exit(3);
			_exit(0);
		}
		st = t_wait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "twofork: child status %#x", st);
	}
	return arg;
}

static void twofork(int delivery)
{
	struct fl_space *sp = fork_space(delivery, 64);
	pthread_t t[2];

	tf_region = fl_mmap(sp, NULL, TWOFORK_PAGES * ps, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(tf_region != MAP_FAILED, "fl_mmap");
	for (size_t p = 0; p < TWOFORK_PAGES; p++)
		memset(tf_region + p * ps, (int)(p + 1), ps);
	fflush(stdout);
	fflush(stderr);
	/* A hang is a failure, not a timeout of the whole run. */
	alarm(120);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, tf_forker, NULL) == 0, "pthread_create");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	alarm(0);
	for (size_t p = 0; p < TWOFORK_PAGES; p++)
		CHECK(tf_region[p * ps] == (unsigned char)(p + 1), "twofork: parent page %zu", p);
	fl_space_destroy(sp);
	printf("twofork (%s): ok\n", t_delivery_name(delivery));
}

/* ---- inflight --------------------------------------------------------- */

#define IF_PAGES 1024
#define IF_READERS 3
/* Forks per case (FL_SOAK=1: IF_FORKS_SOAK). */
#define IF_FORKS 15
#define IF_FORKS_SOAK 60

/* The library's test hook (cont.c): widens the window between a fault
 * letting go of its locks and reading its own page. */
extern _Atomic unsigned int fl_test_own_read_delay_us;

static unsigned char *if_region;
static atomic_bool if_stop;

static void *if_reader(void *arg)
{
	size_t p = (size_t)(uintptr_t)arg * (IF_PAGES / IF_READERS);
	volatile unsigned long sum = 0;

	while (!atomic_load(&if_stop)) {
		sum += if_region[(p % IF_PAGES) * ps];
		p++;
	}
	(void)sum;
	return NULL;
}

static void inflight(int delivery, int policy, unsigned int delay_us)
{
	struct fl_space *sp = fork_space_policy(delivery, policy, IF_PAGES / 8);
	pthread_t t[IF_READERS];
	int forks = t_soak() ? IF_FORKS_SOAK : IF_FORKS;

	atomic_store(&fl_test_own_read_delay_us, delay_us);

	if_region = fl_mmap(sp, NULL, IF_PAGES * ps, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(if_region != MAP_FAILED, "fl_mmap");
	for (size_t p = 0; p < IF_PAGES; p++)
		memset(if_region + p * ps, (int)(p * 7 + 1), ps);
	atomic_store(&if_stop, false);
	for (int i = 0; i < IF_READERS; i++)
		CHECK(pthread_create(&t[i], NULL, if_reader, (void *)(uintptr_t)i) == 0,
		      "pthread_create");
	for (int i = 0; i < forks; i++) {
		pid_t pid;
		int st;

		usleep(2000);
		pid = t_fork();
		if (pid == 0)
			atomic_store(&fl_test_own_read_delay_us, 0);
		if (pid == 0) {
			alarm(30); /* a hang is a signal, not a timeout of the run */
			for (size_t p = 0; p < IF_PAGES; p++)
				if (if_region[p * ps] != (unsigned char)(p * 7 + 1))
					_exit(3);
			_exit(0);
		}
		st = t_wait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "inflight (%s): fork %d: child status %#x", t_delivery_name(delivery), i, st);
	}
	atomic_store(&if_stop, true);
	for (int i = 0; i < IF_READERS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&fl_test_own_read_delay_us, 0);
	fl_space_destroy(sp);
	printf("inflight (%s, policy %s, own reads delayed %u us): ok\n", t_delivery_name(delivery),
	       policy < 0 ? "default" : fl_policy_name(policy), delay_us);
}

/* ---- early ------------------------------------------------------------ */

#define EARLY_PAGES 256
#define EARLY_CLEAN 32	  /* pages 0..31: read back after the page-out: clean */
#define EARLY_SWAPPED 100 /* a page swapped out at the fork */

static unsigned char *early_region;
static atomic_bool early_on;
static volatile unsigned char early_seen;

/* Registered before faultline's child handler: runs before it. */
static void early_child(void)
{
	if (!atomic_load(&early_on))
		return;
	early_seen = early_region[EARLY_SWAPPED * ps];
	early_region[1] = 0x77; /* page 0: PRESENT|WP, clean, in the parent */
}

static void early(int delivery)
{
	struct fl_space *sp = fork_space(delivery, 64);
	volatile unsigned long sum = 0;
	pid_t pid;
	int st;

	early_region = fl_mmap(sp, NULL, EARLY_PAGES * ps, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(early_region != MAP_FAILED, "fl_mmap");
	for (size_t p = 0; p < EARLY_PAGES; p++)
		memset(early_region + p * ps, (int)(p + 1), ps);
	CHECK(fl_madvise(sp, early_region, EARLY_PAGES * ps, MADV_PAGEOUT) == 0, "pageout");
	for (size_t p = 0; p < EARLY_CLEAN; p++)
		sum += early_region[p * ps];
	(void)sum;
	fflush(stdout);
	fflush(stderr);
	atomic_store(&early_on, true);
	pid = fl_fork();
	CHECK(pid >= 0, "fl_fork: %s", strerror(errno));
	if (pid == 0) {
		int bad = 0;

		alarm(30);
		/* The child's own writes to the clean pages, then evicted. */
		for (size_t p = 2; p < EARLY_CLEAN; p++)
			memset(early_region + p * ps, 0xc0, ps);
		if (fl_madvise(sp, early_region, EARLY_CLEAN * ps, MADV_PAGEOUT))
			_exit(10);
		if (early_region[1] != 0x77 || early_region[0] != 1)
			bad |= 1; /* the early write was lost */
		if (early_region[ps] != 2)
			bad |= 2;
		for (size_t p = 2; p < EARLY_CLEAN; p++)
			if (early_region[p * ps] != 0xc0 || early_region[p * ps + ps - 1] != 0xc0)
				bad |= 4; /* the child's write was lost */
		for (size_t p = EARLY_CLEAN; p < EARLY_PAGES; p++)
			if (early_region[p * ps] != (unsigned char)(p + 1))
				bad |= 8; /* the zero page, or not the parent's data */
		_exit(bad ? 20 + bad : 0);
	}
	atomic_store(&early_on, false);
	st = t_wait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "early (%s): child status %#x",
	      t_delivery_name(delivery), st);
	for (size_t p = 0; p < EARLY_PAGES; p++)
		CHECK(early_region[p * ps] == (unsigned char)(p + 1), "early: parent page %zu", p);
	fl_space_destroy(sp);
	printf("early (%s): ok\n", t_delivery_name(delivery));
}

/* ---- stale ------------------------------------------------------------ */

#define STALE_PAGES 256

static void stale(int delivery, bool abandoned)
{
	struct fl_space *sp = fork_space(delivery, 64);
	unsigned char *r, *o;
	pid_t pid;
	int st;

	r = fl_mmap(sp, NULL, STALE_PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	CHECK(r != MAP_FAILED, "fl_mmap");
	memset(r, 0xab, STALE_PAGES * ps);
	CHECK(fl_madvise(sp, r, STALE_PAGES * ps, MADV_PAGEOUT) == 0, "pageout");
	if (abandoned) {
		/* A file mapping: the space is not given to a child. */
		char path[] = "/tmp/fl-test-fork-edges-XXXXXX";
		int fd = mkstemp(path);
		void *m;

		CHECK(fd >= 0 && ftruncate(fd, (off_t)ps) == 0, "mkstemp");
		unlink(path);
		m = fl_mmap(sp, NULL, ps, PROT_READ, MAP_SHARED, fd, 0);
		CHECK(m != MAP_FAILED, "fl_mmap file");
		close(fd);
	}
	/* Behind faultline's back. */
	CHECK(munmap(r, STALE_PAGES * ps) == 0, "munmap");
	o = mmap(r, STALE_PAGES * ps, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(o == r, "mmap");
	o[3 * ps] = 0x5a;
	pid = t_fork();
	if (pid == 0) {
		alarm(30);
		if (o[7 * ps] != 0 || o[3 * ps] != 0x5a)
			_exit(3); /* the region's data, not the mapping's */
		o[9 * ps] = 1;
		_exit(o[9 * ps] == 1 ? 0 : 4);
	}
	st = t_wait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stale (%s%s): child status %#x",
	      t_delivery_name(delivery), abandoned ? ", abandoned" : "", st);
	CHECK(o[7 * ps] == 0 && o[3 * ps] == 0x5a, "stale: parent");
	fl_space_destroy(sp);
	munmap(o, STALE_PAGES * ps);
	printf("stale (%s%s): ok\n", t_delivery_name(delivery), abandoned ? ", abandoned" : "");
}

/* ---- advice ----------------------------------------------------------- */

static void advice(void)
{
	struct fl_space *sp = fork_space(FL_DELIVERY_THREAD, 64);
	unsigned char *r = fl_mmap(sp, NULL, 16 * ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(r != MAP_FAILED, "fl_mmap");
	errno = 0;
	CHECK(fl_madvise(sp, r, 16 * ps, MADV_WIPEONFORK) == -1 && errno == EINVAL,
	      "MADV_WIPEONFORK: %s", strerror(errno));
	errno = 0;
	CHECK(fl_madvise(sp, r, 16 * ps, MADV_DONTFORK) == -1 && errno == EINVAL,
	      "MADV_DONTFORK: %s", strerror(errno));
	fl_space_destroy(sp);
	printf("advice: ok\n");
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_fork_edges");
	ps = t_page_size();
	t_require_io_uring();
#if T_UNDER_TSAN
	CHECK(pthread_atfork(NULL, NULL, tsan_child_exits) == 0, "pthread_atfork");
#endif
	/* Before the first space: before faultline's handlers. */
	CHECK(pthread_atfork(NULL, NULL, early_child) == 0, "pthread_atfork");
	advice();
	early(FL_DELIVERY_THREAD);
	early(FL_DELIVERY_SIGBUS);
	for (int abandoned = 0; abandoned < 2; abandoned++) {
		stale(FL_DELIVERY_THREAD, abandoned);
		stale(FL_DELIVERY_SIGBUS, abandoned);
	}
	twofork(FL_DELIVERY_THREAD);
	twofork(FL_DELIVERY_SIGBUS);
	/* Policies that let go of the VMA lock while the fault waits: the
	 * fork's write locks do not wait for it. */
	for (int policy = FL_POLICY_BAIL; policy <= FL_POLICY_DROP_VMA; policy++) {
		inflight(FL_DELIVERY_SIGBUS, policy, 0);
		inflight(FL_DELIVERY_THREAD, policy, 0);
		inflight(FL_DELIVERY_SIGBUS, policy, 5000);
		inflight(FL_DELIVERY_THREAD, policy, 5000);
	}
	printf("test_fork_edges: ok\n");
	return 0;
}
