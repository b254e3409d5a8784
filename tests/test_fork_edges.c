/* SPDX-License-Identifier: MIT */
/*
 * test_fork_edges: the corners of giving a space made with cfg.fork to a
 * child of fork() (src/fork.c), one case each:
 *   - twofork: two threads fork at once, many times, fl_fork() and fork()
 *     in turn; every child reads the region (before the fork lock, both
 *     forks collected and quiesced the spaces together and hung).
 *   - advice: MADV_DONTFORK, MADV_WIPEONFORK and their undoing per range:
 *     the child has no mapping in the first (SIGSEGV, not in its space) and
 *     zeros in the second, swapped-out pages included; the parent keeps
 *     its data; MADV_WIPEONFORK on a file is EINVAL.
 *   - fds: the child has as many descriptors open as the parent (it used
 *     to keep the epoll set of each of the parent's handler threads).
 *   - warnlock: a thread warns of a bad option over and over while another
 *     forks: each child reads the options too (the warnings' lock used to
 *     be inherited held, and the child waited for ever).
 *   - prepare: the program's own atfork prepare handler, registered after
 *     the space was created (glibc runs it before faultline's), reads and
 *     writes swapped-out pages of the space; fl_fork() and fork() both
 *     complete, and the child has the handler's write (fl_fork() used to
 *     quiesce the space before fork() ran the handler, whose faults then
 *     waited for ever); the handler may create a space (and so may one
 *     registered before the first space, which glibc runs after
 *     faultline's, holding the fork's lock), and a file mapped
 *     by it after fl_fork() checked the space fails fl_fork() with no
 *     child left.
 *   - rcu file put: a file unmapped just before fork(), whose cache's last
 *     reference an RCU callback puts in the child: the child lets go of
 *     it without touching the parent's memory (it died of SIGSEGV).
 *   - store released: a child that does not get a space (no cfg.fork)
 *     and lives on lets go of its named store: the parent opens it again
 *     after destroying its space (the child held the store's lock); and of
 *     every other descriptor of that space (it kept its workers' and
 *     handlers' eventfds and /proc/self/mem).
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
/* Forks per thread (FL_SOAK=1: TWOFORK_FORKS_SOAK); a fork of a quiesced
 * space costs tens to hundreds of milliseconds on a loaded machine. */
#define TWOFORK_FORKS 10
#define TWOFORK_FORKS_SOAK 25

static unsigned char *tf_region;

static void *tf_forker(void *arg)
{
	int forks = t_soak() ? TWOFORK_FORKS_SOAK : TWOFORK_FORKS;

	for (int i = 0; i < forks; i++) {
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
	alarm(200);
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

/* ---- fds ------------------------------------------------------------ */

#include <dirent.h>

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void fds(int delivery)
{
	struct fl_space *sp = fork_space(delivery, 64);
	unsigned char *r = fl_mmap(sp, NULL, 128 * ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int before, st;
	pid_t pid;

	CHECK(r != MAP_FAILED, "fl_mmap");
	memset(r, 0x3c, 128 * ps);
	CHECK(fl_madvise(sp, r, 128 * ps, MADV_PAGEOUT) == 0, "pageout");
	before = count_fds();
	CHECK(before > 0, "/proc/self/fd");
	fflush(stdout);
	fflush(stderr);
	pid = fl_fork();
	CHECK(pid >= 0, "fl_fork: %s", strerror(errno));
	if (pid == 0) {
		int n;

		alarm(30);
		if (r[77 * ps] != 0x3c)
			_exit(3);
		n = count_fds();
		if (n != before) {
			fprintf(stderr, "fds: %d open in the child, %d in the parent\n", n, before);
			_exit(4);
		}
		_exit(0);
	}
	st = t_wait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fds (%s): child status %#x",
	      t_delivery_name(delivery), st);
	fl_space_destroy(sp);
	printf("fds (%s): ok\n", t_delivery_name(delivery));
}

/* ---- warnlock -------------------------------------------------------- */

#define WL_FORKS 300

static atomic_bool wl_stop;

static void *wl_warner(void *arg)
{
	struct fl_config cfg;

	while (!atomic_load(&wl_stop))
		CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	return arg;
}

static void warnlock(void)
{
	struct fl_config c;
	struct fl_space *sp;
	pthread_t t;

	/* A space (faultline's atfork handlers), not given to children: the
	 * forks are quick. */
	CHECK(fl_config_init(&c) == 0, "fl_config_init");
	sp = t_space_create_cfg(&c);

	/* Not a value of the option: warned of, the default kept. */
	CHECK(setenv("FAULTLINE_VERBOSE", "maybe", 1) == 0, "setenv");
	atomic_store(&wl_stop, false);
	CHECK(pthread_create(&t, NULL, wl_warner, NULL) == 0, "pthread_create");
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < WL_FORKS; i++) {
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			struct fl_config cfg;

			alarm(10);
			_exit(fl_config_init(&cfg) == 0 ? 0 : 3);
		}
		st = t_wait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "warnlock: fork %d: child status %#x",
		      i, st);
	}
	atomic_store(&wl_stop, true);
	pthread_join(t, NULL);
	unsetenv("FAULTLINE_VERBOSE");
	fl_space_destroy(sp);
	printf("warnlock: ok\n");
}

/* ---- prepare ------------------------------------------------------- */

#define PREP_PAGES 256
#define PREP_READ 200
#define PREP_WRITE 201

static unsigned char *prep_region;
static atomic_bool prep_on;
static volatile unsigned char prep_seen;
static struct fl_space *prep_map_sp; /* the handler maps a file there */
static atomic_bool prep_create;	     /* the handler creates a space */
static int prep_map_fd = -1;

/* Registered before the first space: glibc runs it after faultline's
 * prepare handler, which holds the fork's lock; a space made there (not
 * carried: made during the fork) must not wait for it. */
static atomic_bool late_create;
static struct fl_space *late_made[4];
static int nr_late_made;

static void late_prep_handler(void)
{
	struct fl_config c;

	if (!atomic_load(&late_create))
		return;
	CHECK(fl_config_init(&c) == 0, "fl_config_init");
	CHECK(nr_late_made < 4 && fl_space_create(&c, &late_made[nr_late_made]) == 0,
	      "fl_space_create in a late prepare handler");
	nr_late_made++;
}

/* Registered after the space: glibc runs it before faultline's prepare
 * handler. */
static void prep_handler(void)
{
	if (!atomic_load(&prep_on))
		return;
	prep_seen = prep_region[PREP_READ * ps];
	prep_region[PREP_WRITE * ps + 5] = 0x5c;
	if (prep_map_sp)
		CHECK(fl_mmap(prep_map_sp, NULL, ps, PROT_READ, MAP_SHARED, prep_map_fd, 0) !=
			      MAP_FAILED,
		      "fl_mmap file");
	if (atomic_load(&prep_create)) {
		/* A space made and let go in the handler, fl_fork()'s too. */
		struct fl_space *s = fork_space(FL_DELIVERY_THREAD, 64);

		fl_space_destroy(s);
	}
}

static void prepare(int delivery)
{
	static bool registered;
	struct fl_space *sp = fork_space(delivery, 64);

	prep_region = fl_mmap(sp, NULL, PREP_PAGES * ps, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(prep_region != MAP_FAILED, "fl_mmap");
	if (!registered)
		CHECK(pthread_atfork(prep_handler, NULL, NULL) == 0, "pthread_atfork");
	registered = true;
	for (size_t p = 0; p < PREP_PAGES; p++)
		memset(prep_region + p * ps, (int)(p + 1), ps);
	/* A hang is a failure, not a timeout of the whole run. */
	alarm(60);
	for (int i = 0; i < 4; i++) {
		pid_t pid;
		int st;

		CHECK(fl_madvise(sp, prep_region, PREP_PAGES * ps, MADV_PAGEOUT) == 0, "pageout");
		prep_region[PREP_WRITE * ps + 5] = (unsigned char)(PREP_WRITE + 1);
		CHECK(fl_madvise(sp, prep_region + PREP_WRITE * ps, ps, MADV_PAGEOUT) == 0,
		      "pageout");
		fflush(stdout);
		fflush(stderr);
		atomic_store(&prep_on, true);
		atomic_store(&prep_create, i >= 2);
		atomic_store(&late_create, i >= 2);
		pid = (i & 1) ? fork() : fl_fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			alarm(30);
			if (prep_region[PREP_WRITE * ps + 5] != 0x5c)
				_exit(3); /* the handler's write, before the fork */
			prep_region[PREP_WRITE * ps + 5] = (unsigned char)(PREP_WRITE + 1);
			for (size_t p = 0; p < PREP_PAGES; p++)
				if (prep_region[p * ps] != (unsigned char)(p + 1) ||
				    prep_region[p * ps + ps - 1] != (unsigned char)(p + 1))
					_exit(4);
			_exit(0);
		}
		atomic_store(&prep_on, false);
		atomic_store(&prep_create, false);
		atomic_store(&late_create, false);
		CHECK(prep_seen == (unsigned char)(PREP_READ + 1), "prepare: the handler read %#x",
		      prep_seen);
		st = t_wait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "prepare (%s, %s): child status %#x",
		      t_delivery_name(delivery), (i & 1) ? "fork" : "fl_fork", st);
		CHECK(prep_region[PREP_WRITE * ps + 5] == 0x5c, "prepare: parent's page");
		prep_region[PREP_WRITE * ps + 5] = (unsigned char)(PREP_WRITE + 1);
		for (size_t p = 0; p < PREP_PAGES; p++)
			CHECK(prep_region[p * ps] == (unsigned char)(p + 1) &&
				      prep_region[p * ps + ps - 1] == (unsigned char)(p + 1),
			      "prepare: parent page %zu", p);
	}
	/* A file mapped after fl_fork() checked the space, before it was
	 * quiesced: the call fails as it would have before, and no child is
	 * left. */
	{
		char path[] = "/tmp/fl-test-fork-edges-XXXXXX";
		pid_t pid;

		prep_map_fd = mkstemp(path);
		CHECK(prep_map_fd >= 0 && ftruncate(prep_map_fd, (off_t)ps) == 0, "mkstemp");
		unlink(path);
		prep_map_sp = sp;
		atomic_store(&prep_on, true);
		errno = 0;
		pid = fl_fork();
		if (pid == 0)
			_exit(5);
		atomic_store(&prep_on, false);
		prep_map_sp = NULL;
		close(prep_map_fd);
		CHECK(pid == -1 && errno == EOPNOTSUPP, "prepare: fl_fork with a late file: %d, %s",
		      (int)pid, strerror(errno));
		CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD,
		      "prepare: a child is left");
		for (size_t p = 0; p < PREP_PAGES; p++)
			CHECK(prep_region[p * ps] == (unsigned char)(p + 1) || p == PREP_WRITE,
			      "prepare: parent page %zu", p);
	}
	alarm(0);
	for (int i = 0; i < nr_late_made; i++)
		fl_space_destroy(late_made[i]);
	nr_late_made = 0;
	fl_space_destroy(sp);
	printf("prepare (%s): ok\n", t_delivery_name(delivery));
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

/* ---- advice ---------------------------------------------------------- */

#include <setjmp.h>
#include <signal.h>

#define ADV_PAGES 256
#define ADV_KEPT (ADV_PAGES - 4) /* the last 4: unmapped */
#define ADV_DONTFORK_LO 16	 /* [16, 40): MADV_DONTFORK (then DOFORK on 40..47) */
#define ADV_DONTFORK_HI 40
#define ADV_WIPE_LO 64 /* [64, 150): MADV_WIPEONFORK (then KEEPONFORK on 150..159) */
#define ADV_WIPE_HI 150

static sigjmp_buf adv_jmp;

static void adv_segv(int sig)
{
	(void)sig;
	siglongjmp(adv_jmp, 1);
}

/* In the child: whether an access to p is SIGSEGV. */
static bool adv_faults(volatile unsigned char *p)
{
	struct sigaction sa = {.sa_handler = adv_segv}, old;
	bool faulted = true;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	if (!sigsetjmp(adv_jmp, 1)) {
		(void)*p;
		faulted = false;
	}
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

/* The child's checks: 0, or what was wrong. */
static int adv_child(struct fl_space *sp, unsigned char *r, bool advised)
{
	for (size_t p = 0; p < ADV_KEPT; p++) {
		bool gone = advised && p >= ADV_DONTFORK_LO && p < ADV_DONTFORK_HI;
		bool wiped = advised && p >= ADV_WIPE_LO && p < ADV_WIPE_HI;
		unsigned char want = wiped ? 0 : (unsigned char)(p + 1);

		if (gone) {
			if (p % 8)
				continue;
			errno = 0;
			if (fl_madvise(sp, r + p * ps, ps, MADV_COLD) != -1 || errno != ENOMEM)
				return 4; /* still in the child's space */
			/* No mapping: SIGSEGV.  The child's own mappings
			 * (its threads', a sanitizer's) may have taken the
			 * hole since, as in the kernel: never with the
			 * parent's data. */
			if (!adv_faults(r + p * ps) && r[p * ps] == (unsigned char)(p + 1) &&
			    r[p * ps + ps - 1] == (unsigned char)(p + 1))
				return 3; /* a MADV_DONTFORK page in the child */
			continue;
		}
		if (r[p * ps] != want || r[p * ps + ps - 1] != want)
			return 5;
	}
	if (!advised)
		return 0;
	/* The wiped range is the child's own memory, swapped as any. */
	memset(r + ADV_WIPE_LO * ps, 0x6d, (ADV_WIPE_HI - ADV_WIPE_LO) * ps);
	if (fl_madvise(sp, r, ADV_DONTFORK_LO * ps, MADV_PAGEOUT) ||
	    fl_madvise(sp, r + ADV_WIPE_LO * ps, (ADV_WIPE_HI - ADV_WIPE_LO) * ps, MADV_PAGEOUT))
		return 6;
	for (size_t p = ADV_WIPE_LO; p < ADV_WIPE_HI; p++)
		if (r[p * ps] != 0x6d || r[p * ps + ps - 1] != 0x6d)
			return 7;
	return 0;
}

static void advice(int delivery)
{
	struct fl_space *sp = fork_space(delivery, 64);
	unsigned char *r = fl_mmap(sp, NULL, ADV_PAGES * ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(r != MAP_FAILED, "fl_mmap");
	for (size_t p = 0; p < ADV_PAGES; p++)
		memset(r + p * ps, (int)(p + 1), ps);
	CHECK(fl_madvise(sp, r + ADV_DONTFORK_LO * ps, 32 * ps, MADV_DONTFORK) == 0,
	      "MADV_DONTFORK: %s", strerror(errno));
	CHECK(fl_madvise(sp, r + ADV_DONTFORK_HI * ps, 8 * ps, MADV_DOFORK) == 0, "MADV_DOFORK");
	CHECK(fl_madvise(sp, r + ADV_WIPE_LO * ps, 96 * ps, MADV_WIPEONFORK) == 0,
	      "MADV_WIPEONFORK: %s", strerror(errno));
	CHECK(fl_madvise(sp, r + ADV_WIPE_HI * ps, 10 * ps, MADV_KEEPONFORK) == 0,
	      "MADV_KEEPONFORK");
	/* A write after the advice, over a split. */
	r[(ADV_WIPE_LO - 1) * ps + 9] = (unsigned char)ADV_WIPE_LO;
	r[ADV_WIPE_LO * ps + 9] = (unsigned char)(ADV_WIPE_LO + 1);
	/* A hole: the VMAs around it advised, then ENOMEM, as the kernel. */
	CHECK(fl_munmap(sp, r + (ADV_PAGES - 2) * ps, ps) == 0, "fl_munmap");
	errno = 0;
	CHECK(fl_madvise(sp, r + ADV_KEPT * ps, 4 * ps, MADV_DOFORK) == -1 && errno == ENOMEM,
	      "MADV_DOFORK over a hole: %s", strerror(errno));
	CHECK(fl_munmap(sp, r + ADV_KEPT * ps, 4 * ps) == 0, "fl_munmap");
	for (int i = 0; i < 3; i++) {
		bool advised = i < 2;
		pid_t pid;
		int st;

		if (!advised) {
			/* Undone: the child gets the region whole. */
			CHECK(fl_madvise(sp, r, ADV_KEPT * ps, MADV_DOFORK) == 0, "DOFORK");
			CHECK(fl_madvise(sp, r, ADV_KEPT * ps, MADV_KEEPONFORK) == 0, "KEEPONFORK");
		}
		/* Swapped out at the fork: the wiped range's too. */
		CHECK(fl_madvise(sp, r, ADV_KEPT * ps, MADV_PAGEOUT) == 0, "pageout");
		for (size_t p = 0; p < ADV_KEPT; p += 3)
			CHECK(r[p * ps] == (unsigned char)(p + 1), "advice: parent page %zu", p);
		fflush(stdout);
		fflush(stderr);
		pid = i == 1 ? fork() : fl_fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			alarm(30);
			_exit(adv_child(sp, r, advised));
		}
		st = t_wait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "advice (%s, %d): child status %#x",
		      t_delivery_name(delivery), i, st);
		for (size_t p = 0; p < ADV_KEPT; p++)
			CHECK(r[p * ps] == (unsigned char)(p + 1) &&
				      r[p * ps + ps - 1] == (unsigned char)(p + 1),
			      "advice: parent page %zu", p);
	}
	fl_space_destroy(sp);
	printf("advice (%s): ok\n", t_delivery_name(delivery));
}

/* MADV_WIPEONFORK on a file mapping: EINVAL, as the kernel's. */
static void advice_file(void)
{
	struct fl_space *sp = fork_space(FL_DELIVERY_THREAD, 64);
	char path[] = "/tmp/fl-test-fork-edges-XXXXXX";
	int fd = mkstemp(path);
	unsigned char *f;

	CHECK(fd >= 0 && ftruncate(fd, (off_t)(4 * ps)) == 0, "mkstemp");
	unlink(path);
	f = fl_mmap(sp, NULL, 4 * ps, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(f != MAP_FAILED, "fl_mmap file");
	close(fd);
	errno = 0;
	CHECK(fl_madvise(sp, f, 4 * ps, MADV_WIPEONFORK) == -1 && errno == EINVAL,
	      "MADV_WIPEONFORK on a file: %s", strerror(errno));
	CHECK(fl_madvise(sp, f, 4 * ps, MADV_DONTFORK) == 0, "MADV_DONTFORK on a file");
	CHECK(fl_madvise(sp, f, 4 * ps, MADV_DOFORK) == 0, "MADV_DOFORK on a file");
	fl_space_destroy(sp);
	printf("advice (file): ok\n");
}

/*
 * A file mapped, read and unmapped just before fork(): the last reference
 * to its cache is the VMA's, put by an RCU callback that liburcu hands to
 * the child's call_rcu thread.  The child must let go of the parent's
 * cache without touching it (its view and state are not in the child:
 * the child died of SIGSEGV there).  Rounds of it, the children living on
 * a while for the callback to run.
 */
static void rcu_file_put(int delivery)
{
	struct fl_space *sp = fork_space(delivery, 64);
	char path[] = "/tmp/fl-test-fork-edges-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0 && ftruncate(fd, (off_t)(4 * ps)) == 0, "mkstemp");
	unlink(path);
	for (int round = 0; round < 5; round++) {
		volatile unsigned char *f = fl_mmap(sp, NULL, 4 * ps, PROT_READ, MAP_SHARED, fd, 0);
		pid_t pid;
		int st;

		CHECK(f != MAP_FAILED, "fl_mmap file");
		(void)f[0];
		CHECK(fl_munmap(sp, (void *)f, 4 * ps) == 0, "fl_munmap");
		pid = t_fork();
		if (!pid) {
			usleep(100000);
			_exit(0);
		}
		st = t_wait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "%s, round %d: the child of a fork just after a file's unmap: status %#x",
		      t_delivery_name(delivery), round, st);
	}
	close(fd);
	fl_space_destroy(sp);
	printf("%s, a file's cache put in the child: ok\n", t_delivery_name(delivery));
}

/*
 * A space without cfg.fork on a named store, and a child of fork() that
 * lives on without exec (a helper process): the child lets go of the
 * store, so that once the parent destroys the space the store opens again
 * (the child held its lock: EBUSY until it died).
 */
static void store_released(void)
{
	char dir[] = "/var/tmp/fl-fork-store-XXXXXX", store[64], c;
	struct fl_config cfg;
	struct fl_space *sp = NULL;
	int pfd[2], ret;
	pid_t pid;

	CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	snprintf(store, sizeof(store), "%s/s", dir);
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.mem_limit = 64 * ps;
	cfg.swap_path = store;
	cfg.swap_create = 1;
	sp = t_space_create_cfg(&cfg);
	CHECK(pipe(pfd) == 0, "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		/* After the atfork handlers: the child has done its part. */
		if (write(pfd[1], "r", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) < 0)
		c = 0;
	close(pfd[0]);
	fl_space_destroy(sp);
	cfg.swap_create = 0;
	sp = NULL;
	ret = fl_space_create(&cfg, &sp);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(ret == 0, "the store opened again while a child of the fork lives: %s",
	      strerror(-ret));
	fl_space_destroy(sp);
	unlink(store);
	rmdir(dir);

	/* A space with no budget has no store: the child's descriptors are
	 * its own (it closed fd 0, the store's that was not). */
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	sp = t_space_create_cfg(&cfg);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (!pid)
		_exit(fcntl(0, F_GETFD) < 0 ? 3 : 0);
	ret = t_wait(pid);
	CHECK(WIFEXITED(ret) && !WEXITSTATUS(ret), "a child of a space with no store: status %#x",
	      ret);
	fl_space_destroy(sp);
	printf("a store let go of by a child that does not get its space: ok\n");
}

/*
 * A space without cfg.fork, with a budget (a store, its ring, kswapd, the
 * flusher, /proc/self/mem): a child that does not get it has none of its
 * descriptors open, only what was open before the space was made (it kept
 * the eventfds of its workers and handlers, and /proc/self/mem).
 */
static void released_fds(int delivery)
{
	struct fl_space *sp;
	unsigned char *r;
	int base = -1, st;
	pid_t pid;

	for (int round = 0; round < 2; round++) {
		struct fl_config cfg;

		CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
		cfg.mem_limit = 64 * ps;
		cfg.delivery = delivery;
		if (round)
			base = count_fds(); /* the first round opened what lasts */
		sp = t_space_create_cfg(&cfg);
		r = fl_mmap(sp, NULL, 128 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
		CHECK(r != MAP_FAILED, "fl_mmap");
		memset(r, 0x5a, 128 * ps);
		CHECK(fl_madvise(sp, r, 128 * ps, MADV_PAGEOUT) == 0, "pageout");
		if (!round)
			fl_space_destroy(sp);
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		int n = count_fds();

		if (n != base) {
			fprintf(stderr, "released fds: %d open in the child, %d before the space\n",
				n, base);
			_exit(3);
		}
		_exit(0);
	}
	st = t_wait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "a child that does not get the space (%s): status %#x", t_delivery_name(delivery),
	      st);
	fl_space_destroy(sp);
	printf("released fds (%s): ok\n", t_delivery_name(delivery));
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
	CHECK(pthread_atfork(late_prep_handler, NULL, early_child) == 0, "pthread_atfork");
	advice(FL_DELIVERY_THREAD);
	advice(FL_DELIVERY_SIGBUS);
	advice_file();
	rcu_file_put(FL_DELIVERY_THREAD);
	rcu_file_put(FL_DELIVERY_SIGBUS);
	store_released();
	fds(FL_DELIVERY_THREAD);
	fds(FL_DELIVERY_SIGBUS);
	released_fds(FL_DELIVERY_THREAD);
	released_fds(FL_DELIVERY_SIGBUS);
	warnlock();
	prepare(FL_DELIVERY_THREAD);
	prepare(FL_DELIVERY_SIGBUS);
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
