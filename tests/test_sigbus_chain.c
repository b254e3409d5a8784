/* SPDX-License-Identifier: MIT */
/*
 * test_sigbus_chain: a sigbus-delivery space shares SIGBUS with the
 * application.  Every SIGBUS that is not a fault in one of its regions must
 * reach the handler that was installed before the space was created, with
 * its siginfo intact, and faults in the regions must still be served:
 *   - raise(SIGBUS), pthread_kill(SIGBUS), sigqueue(SIGBUS): SI_TKILL or
 *     SI_QUEUE, si_pid and si_value preserved;
 *   - a real bus error (a page of a shared file mapping past EOF), in the
 *     main thread and in another thread: BUS_ADRERR at that address;
 *   - kills sent to threads that are busy faulting in a region: each kill
 *     arrives once, and the faults are served;
 *   - after fl_space_destroy(), the application's handler still gets SIGBUS.
 * In child processes, the other previous dispositions: SIG_DFL (the child
 * dies of SIGBUS, on raise and on a real bus error), SIG_IGN (raise is
 * ignored) and a handler without SA_SIGINFO.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#include "util.h"

static size_t ps;

/* What the application's handler saw. */
static atomic_long app_count;
static _Atomic int app_code, app_pid, app_value; /* lock-free: fine in a handler */
static _Atomic(void *) app_addr;
/* Set while a real bus error is expected; volatile, so that its stores stay around the access. */
static _Thread_local sigjmp_buf *volatile app_jb;
static _Thread_local volatile long tl_count; /* the same, in this thread */

static void app_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig != SIGBUS)
		return;
	app_code = si->si_code;
	app_addr = si->si_addr;
	app_pid = si->si_pid;
	app_value = si->si_value.sival_int;
	atomic_fetch_add(&app_count, 1);
	tl_count++;
	if (app_jb)
		siglongjmp(*app_jb, 1);
	if (si->si_code == BUS_ADRERR || si->si_code == BUS_ADRALN || si->si_code == BUS_OBJERR) {
		/* A fault nobody expected: returning would only repeat it. */
		static const char msg[] =
			"app_handler: unexpected bus error (a region fault passed "
			"to the application?)\n";

		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(T_EXIT_FAIL);
		_exit(T_EXIT_FAIL);
	}
}

static void install_app_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = app_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
}

/* Wait until the application's handler has run `want` times in all. */
static void wait_count(long want, const char *what)
{
	for (int i = 0; i < 10000 && atomic_load(&app_count) < want; i++)
		usleep(1000);
	CHECK(atomic_load(&app_count) == want,
	      "%s: the application's handler ran %ld times, expected %ld", what,
	      atomic_load(&app_count), want);
}

/* A shared mapping of a file cut to one page: its second page is a bus error. */
struct past_eof {
	int fd;
	char *map;
};

static void past_eof_setup(struct past_eof *pe)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[4096];

	snprintf(path, sizeof(path), "%s/fl_test_sigbus.XXXXXX", dir);
	pe->fd = mkstemp(path);
	CHECK(pe->fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
	unlink(path);
	CHECK(ftruncate(pe->fd, 2 * ps) == 0, "ftruncate: %s", strerror(errno));
	pe->map = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, pe->fd, 0);
	CHECK(pe->map != MAP_FAILED, "mmap file: %s", strerror(errno));
	CHECK(ftruncate(pe->fd, ps) == 0, "ftruncate: %s", strerror(errno));
}

static void past_eof_teardown(struct past_eof *pe)
{
	munmap(pe->map, 2 * ps);
	close(pe->fd);
}

/* Touch the page past EOF; return true if the application's handler caught the bus error. */
static bool real_bus_error(struct past_eof *pe, long *count_before)
{
	sigjmp_buf jb;
	volatile char *p = pe->map + ps + 123;

	*count_before = atomic_load(&app_count);
	if (sigsetjmp(jb, 1) == 0) {
		app_jb = &jb;
		(void)*p;
		app_jb = NULL;
		return false;
	}
	app_jb = NULL;
	return true;
}

static void check_real_bus_error(struct past_eof *pe, const char *where)
{
	long before;

	CHECK(real_bus_error(pe, &before), "%s: touching a file page past EOF did not fault",
	      where);
	CHECK(atomic_load(&app_count) == before + 1, "%s: the application's handler ran %ld times",
	      where, atomic_load(&app_count) - before);
	CHECK(app_code == BUS_ADRERR, "%s: si_code %d, expected BUS_ADRERR", where, (int)app_code);
	CHECK(app_addr == pe->map + ps + 123, "%s: si_addr %p, expected %p", where, app_addr,
	      (void *)(pe->map + ps + 123));
}

static void *bus_error_thread(void *arg)
{
	check_real_bus_error(arg, "a real bus error in another thread");
	return NULL;
}

/* ------------------------------------------------- threads under fire */

struct toucher {
	pthread_t th;
	char *base;
	size_t npages;
	uint64_t salt;
	atomic_bool *stop;
	atomic_bool *raising; /* phase 1: raise(SIGBUS) between faults */
	atomic_long rounds;
	long raised;
	struct fl_space *sp;
};

/* raise() is delivered before it returns, exactly once: nothing else sends to us now. */
static void raise_between_faults(struct toucher *t, size_t p)
{
	long before = tl_count;

	raise(SIGBUS);
	CHECK(tl_count == before + 1,
	      "toucher: raise(SIGBUS) after faulting page %zu reached the application %ld times", p,
	      tl_count - before);
	t->raised++;
}

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;

	while (!atomic_load(t->stop)) {
		uint64_t salt = t->salt + (uint64_t)atomic_load(&t->rounds);
		bool raising = atomic_load(t->raising);

		for (size_t p = 0; p < t->npages; p++) {
			*(uint64_t *)(t->base + p * ps + (p * 64) % ps) = salt ^ p;
			if (raising && p % 4 == 0)
				raise_between_faults(t, p);
		}
		for (size_t p = 0; p < t->npages; p++) {
			uint64_t v = *(uint64_t *)(t->base + p * ps + (p * 64) % ps);

			CHECK(v == (salt ^ p),
			      "toucher: page %zu holds %#" PRIx64 ", expected %#" PRIx64, p, v,
			      salt ^ p);
			CHECK(*(uint64_t *)(t->base + p * ps + ((p * 64) + 2048) % ps) == 0,
			      "toucher: page %zu not zero where never written", p);
		}
		CHECK(fl_madvise(t->sp, t->base, t->npages * ps, MADV_DONTNEED) == 0,
		      "toucher: fl_madvise: %s", strerror(errno));
		atomic_fetch_add(&t->rounds, 1);
	}
	return NULL;
}

/*
 * Phase 1, exact: each toucher raises SIGBUS itself between its faults, and
 * each raise reaches the application once.  Phase 2: the main thread kills
 * the touchers while they fault.  A kill that finds the thread's own fault
 * SIGBUS still pending is merged into it by the kernel (a standard signal is
 * pending at most once; the same happens without faultline), so a kill that
 * does not arrive is sent again: each must get through in the end, and the
 * handler may never run more often than kills were sent.
 */
static void kills_while_faulting(struct fl_space *sp, struct t_rng *rng)
{
	enum { NT = 2, PAGES = 64 };
	struct toucher t[NT];
	atomic_bool stop = false, raising = true;
	int kills = t_soak() ? 2000 : 100;
	long sent = 0, lost = 0, count0;
	struct fl_stats s0, s1;

	CHECK(fl_stats(sp, &s0) == 0, "fl_stats");
	for (int i = 0; i < NT; i++) {
		t[i].base = fl_mmap(sp, NULL, PAGES * ps, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS);
		CHECK(t[i].base != MAP_FAILED, "fl_mmap: %s", strerror(errno));
		t[i].npages = PAGES;
		t[i].salt = t_rand(rng);
		t[i].stop = &stop;
		t[i].raising = &raising;
		t[i].raised = 0;
		t[i].sp = sp;
		atomic_store(&t[i].rounds, 0);
		CHECK(pthread_create(&t[i].th, NULL, toucher_main, &t[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < NT; i++)
		while (atomic_load(&t[i].rounds) < (t_soak() ? 200 : 20))
			usleep(1000);
	atomic_store(&raising, false);
	/* Let every toucher finish the round it raises in. */
	for (int i = 0; i < NT; i++)
		for (long r0 = atomic_load(&t[i].rounds); atomic_load(&t[i].rounds) < r0 + 2;)
			usleep(1000);

	count0 = atomic_load(&app_count);
	if (T_UNDER_TSAN) {
		/*
		 * TSan takes every SIGBUS for a synchronous one and runs the
		 * handler at once, even inside its own runtime: a kill that
		 * lands in a TSan atomic deadlocks TSan itself.
		 */
		printf("  kills to faulting threads: skipped under ThreadSanitizer\n");
		kills = 0;
	}
	for (int k = 0; k < kills; k++) {
		long want = atomic_load(&app_count) + 1;
		int tries = 0;

		for (;;) {
			CHECK(pthread_kill(t[k % NT].th, SIGBUS) == 0, "pthread_kill");
			sent++;
			for (int i = 0; i < 200 && atomic_load(&app_count) < want; i++)
				usleep(100);
			if (atomic_load(&app_count) >= want)
				break;
			lost++;
			CHECK(++tries < 200,
			      "pthread_kill to toucher %d: 200 kills in a row lost (its rounds: "
			      "%ld, "
			      "still %ld 1 s later)",
			      k % NT, atomic_load(&t[k % NT].rounds),
			      (usleep(1000000), atomic_load(&t[k % NT].rounds)));
		}
		CHECK(atomic_load(&app_count) <= count0 + sent,
		      "the application's handler ran %ld times for %ld kills",
		      atomic_load(&app_count) - count0, sent);
		CHECK(app_code == SI_TKILL, "pthread_kill: si_code %d, expected SI_TKILL",
		      (int)app_code);
		if (t_chance(rng, 20))
			usleep(t_below(rng, 500));
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NT; i++) {
		CHECK(pthread_join(t[i].th, NULL) == 0, "pthread_join");
		CHECK(atomic_load(&t[i].rounds) > 0, "toucher %d made no progress", i);
		CHECK(fl_munmap(sp, t[i].base, PAGES * ps) == 0, "fl_munmap");
	}
	CHECK(fl_stats(sp, &s1) == 0, "fl_stats");
	CHECK(s1.faults > s0.faults, "no faults served while the kills flew");
	printf("  %ld + %ld raises between faults; %d kills to faulting threads (%ld more sent: "
	       "merged with a fault's SIGBUS); rounds %ld + %ld, faults %" PRIu64 "\n",
	       t[0].raised, t[1].raised, kills, lost, atomic_load(&t[0].rounds),
	       atomic_load(&t[1].rounds), s1.faults - s0.faults);
}

/* --------------------------------------------------------- child cases */

static void plain_handler(int sig)
{
	/* Must be called as a one-argument handler with the signal number. */
	_exit(sig == SIGBUS ? 42 : 43);
}

enum child_case {
	CHILD_DFL_RAISE,
	CHILD_DFL_REAL,
	CHILD_IGN_RAISE,
	CHILD_PLAIN_RAISE,
};

static const char *child_case_name[] = {
	"SIG_DFL, raise",
	"SIG_DFL, real bus error",
	"SIG_IGN, raise",
	"plain handler (no SA_SIGINFO), raise",
};

static void __attribute__((noreturn)) child_main(enum child_case c)
{
	struct past_eof pe;
	struct fl_space *sp;
	struct fl_config cfg;
	volatile char *r;

	alarm(20);
	switch (c) {
	case CHILD_DFL_RAISE:
	case CHILD_DFL_REAL:
		signal(SIGBUS, SIG_DFL);
		break;
	case CHILD_IGN_RAISE:
		signal(SIGBUS, SIG_IGN);
		break;
	case CHILD_PLAIN_RAISE:
		signal(SIGBUS, plain_handler);
		break;
	}
	if (c == CHILD_DFL_REAL)
		past_eof_setup(&pe);
	if (fl_config_init(&cfg))
		_exit(10);
	cfg.delivery = FL_DELIVERY_SIGBUS;
	if (fl_space_create(&cfg, &sp))
		_exit(11);
	r = fl_mmap(sp, NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	if (r == MAP_FAILED)
		_exit(12);
	r[0] = 1; /* faultline's own fault: must be served */
	if (r[0] != 1 || r[ps] != 0)
		_exit(13);
	if (c == CHILD_DFL_REAL)
		(void)*(volatile char *)(pe.map + ps + 5);
	else
		raise(SIGBUS);
	r[2 * ps] = 2;
	if (r[2 * ps] != 2)
		_exit(14);
	_exit(0);
}

static void child_case(enum child_case c, bool want_signal, int want)
{
	const char *name = child_case_name[c];
	pid_t pid = t_fork();
	int status;

	if (pid == 0)
		child_main(c);
	status = t_wait(pid);
	if (want_signal)
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == want,
		      "%s: the child %s %d, expected death by signal %d", name,
		      WIFEXITED(status) ? "exited with" : "died of signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), want);
	else
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == want,
		      "%s: the child %s %d, expected exit %d", name,
		      WIFEXITED(status) ? "exited with" : "died of signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), want);
	printf("  child, %s: ok\n", name);
}

int main(int argc, char **argv)
{
	struct t_rng rng;
	struct fl_space *sp;
	struct past_eof pe;
	struct fl_stats s0, s1;
	volatile char *r;
	union sigval sv;
	pthread_t th;
	long n;

	t_rng_init(&rng, t_seed_init(argc, argv, "test_sigbus_chain"));
	ps = t_page_size();

	/* The child cases first, while this process has no threads. */
	child_case(CHILD_DFL_RAISE, true, SIGBUS);
	child_case(CHILD_DFL_REAL, true, SIGBUS);
	child_case(CHILD_IGN_RAISE, false, 0);
	child_case(CHILD_PLAIN_RAISE, false, 42);

	install_app_handler();
	past_eof_setup(&pe);
	sp = t_space_create(FL_DELIVERY_SIGBUS);
	r = fl_mmap(sp, NULL, 32 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	CHECK(r != MAP_FAILED, "fl_mmap: %s", strerror(errno));

	/* faultline's own faults do not reach the application. */
	CHECK(fl_stats(sp, &s0) == 0, "fl_stats");
	for (int p = 0; p < 32; p += 2)
		r[p * ps + 1] = (char)p;
	for (int p = 0; p < 32; p++)
		CHECK(r[p * ps + 1] == (p % 2 ? 0 : p), "page %d", p);
	CHECK(fl_stats(sp, &s1) == 0, "fl_stats");
	CHECK(s1.faults > s0.faults, "no faults served in the region");
	CHECK(atomic_load(&app_count) == 0, "region faults reached the application's handler (%ld)",
	      atomic_load(&app_count));

	/* raise */
	raise(SIGBUS);
	wait_count(1, "raise(SIGBUS)");
	CHECK(app_code == SI_TKILL && app_pid == getpid(), "raise: si_code %d si_pid %d",
	      (int)app_code, (int)app_pid);

	/* pthread_kill to oneself */
	CHECK(pthread_kill(pthread_self(), SIGBUS) == 0, "pthread_kill");
	wait_count(2, "pthread_kill(self, SIGBUS)");
	CHECK(app_code == SI_TKILL, "pthread_kill: si_code %d", (int)app_code);

	/* sigqueue, with a value */
	sv.sival_int = 4242;
	CHECK(sigqueue(getpid(), SIGBUS, sv) == 0, "sigqueue: %s", strerror(errno));
	wait_count(3, "sigqueue(SIGBUS)");
	CHECK(app_code == SI_QUEUE && app_value == 4242 && app_pid == getpid(),
	      "sigqueue: si_code %d si_value %d si_pid %d", (int)app_code, (int)app_value,
	      (int)app_pid);

	/* real bus errors, in between region faults */
	check_real_bus_error(&pe, "a real bus error");
	r[1 * ps + 7] = 7;
	CHECK(r[1 * ps + 7] == 7, "region fault after a bus error");
	check_real_bus_error(&pe, "a second real bus error");
	CHECK(pthread_create(&th, NULL, bus_error_thread, &pe) == 0, "pthread_create");
	CHECK(pthread_join(th, NULL) == 0, "pthread_join");
	CHECK(r[3 * ps + 7] == 0, "region fault after bus errors");

	kills_while_faulting(sp, &rng);

	n = atomic_load(&app_count);
	CHECK(fl_munmap(sp, (void *)r, 32 * ps) == 0, "fl_munmap");
	fl_space_destroy(sp);

	/* With no space left, SIGBUS is the application's alone. */
	raise(SIGBUS);
	wait_count(n + 1, "raise(SIGBUS) after fl_space_destroy");
	check_real_bus_error(&pe, "a real bus error after fl_space_destroy");
	past_eof_teardown(&pe);

	printf("test_sigbus_chain: ok\n");
	return T_EXIT_PASS;
}
