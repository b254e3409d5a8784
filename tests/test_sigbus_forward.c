// SPDX-License-Identifier: MIT
/*
 * test_sigbus_forward: a SIGBUS that is not for a region reaches the handler
 * installed before the sigbus space exactly as the kernel would have
 * delivered it: with that handler's sa_mask blocked, SIGBUS itself blocked
 * unless SA_NODEFER, the action reset to the default by its delivery with
 * SA_RESETHAND (the next SIGBUS kills), the interrupted code's mask back
 * afterwards.  The kernel is the oracle: every case runs in a child without
 * faultline, then in a child with a sigbus space (and faults served in its
 * region around the signals), and the two must see the same.  For a raised
 * SIGBUS and for a real bus error (a page of a file mapping past its end).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <faultline.h>

#include "util.h"

#define PG 4096UL

/* What the application's handler saw, in the child. */
struct seen {
	int runs;	   /* times the handler ran */
	int usr1_blocked;  /* SIGUSR1 blocked inside (first run) */
	int bus_blocked;   /* SIGBUS blocked inside (first run) */
	int usr2_blocked;  /* SIGUSR2 (blocked by the interrupted code) inside */
	int nested_inside; /* runs seen inside the first run after raising again */
	int usr1_after;	   /* SIGUSR1 blocked after the handler returned */
	int bus_after;	   /* SIGBUS blocked after the handler returned */
};

static volatile struct seen seen;
static volatile int nest, real_fault;
static sigjmp_buf jb;

static void app_handler(int sig)
{
	sigset_t m;
	int run = ++seen.runs;

	if (run == 1) {
		pthread_sigmask(SIG_BLOCK, NULL, &m);
		seen.usr1_blocked = sigismember(&m, SIGUSR1);
		seen.bus_blocked = sigismember(&m, SIGBUS);
		seen.usr2_blocked = sigismember(&m, SIGUSR2);
		if (nest) {
			/* With SA_NODEFER this runs the handler again at once;
			 * without, it waits until this one returns. */
			raise(SIGBUS);
			seen.nested_inside = seen.runs;
		}
	}
	if (real_fault)
		siglongjmp(jb, 1);
}

static void app_sigaction(int sig, siginfo_t *si, void *uc)
{
	app_handler(sig);
}

struct kase {
	int flags; /* SA_NODEFER, SA_RESETHAND, SA_SIGINFO */
	bool mask_usr1;
	bool nest;
	bool real; /* a real bus error instead of raise() */
};

static void report(int fd)
{
	struct seen s;

	memcpy(&s, (const void *)&seen, sizeof(s));
	if (write(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
		_exit(20);
}

static void bus_error(char *past_eof)
{
	real_fault = 1;
	if (sigsetjmp(jb, 1) == 0)
		(void)*(volatile char *)past_eof;
	real_fault = 0;
}

/* The child: install the handler, maybe a sigbus space, deliver SIGBUS
 * twice (reporting after the first), and exit 0 if it survives. */
static void __attribute__((noreturn)) child(const struct kase *k, bool with_faultline, int fd)
{
	struct sigaction sa;
	struct fl_space *sp = NULL;
	char *region = NULL, *map = NULL;
	sigset_t m;

	alarm(20);
	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = k->flags;
	if (k->flags & SA_SIGINFO)
		sa.sa_sigaction = app_sigaction;
	else
		sa.sa_handler = app_handler;
	sigemptyset(&sa.sa_mask);
	if (k->mask_usr1)
		sigaddset(&sa.sa_mask, SIGUSR1);
	if (sigaction(SIGBUS, &sa, NULL))
		_exit(21);
	nest = k->nest;
	/* The interrupted code blocks SIGUSR2: it must stay blocked inside. */
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	if (k->real) {
		char path[] = "/tmp/fl_test_fwd.XXXXXX";
		int f = mkstemp(path);
		if (f < 0 || unlink(path) || ftruncate(f, 2 * PG))
			_exit(22);
		map = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
		if (map == MAP_FAILED || ftruncate(f, PG))
			_exit(23);
	}
	if (with_faultline) {
		struct fl_config cfg;
		fl_config_init(&cfg);
		cfg.delivery = FL_DELIVERY_SIGBUS;
		int ret = fl_space_create(&cfg, &sp);
		if (ret == -ENOSYS || ret == -EPERM)
			_exit(T_EXIT_SKIP); /* no userfaultfd here */
		if (ret)
			_exit(24);
		region = fl_mmap(sp, NULL, 16 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS);
		if (region == MAP_FAILED)
			_exit(25);
		region[0] = 1;
	}
	if (k->real)
		bus_error(map + PG + 8);
	else
		raise(SIGBUS);
	pthread_sigmask(SIG_BLOCK, NULL, &m);
	seen.usr1_after = sigismember(&m, SIGUSR1);
	seen.bus_after = sigismember(&m, SIGBUS);
	report(fd);
	if (region) {
		region[5 * PG] = 5; /* faultline still serves its region */
		if (region[5 * PG] != 5 || region[0] != 1)
			_exit(26);
	}
	/* Again: with SA_RESETHAND this is the default action now. */
	if (k->real)
		bus_error(map + PG + 8);
	else
		raise(SIGBUS);
	_exit(0);
}

struct outcome {
	struct seen s;
	bool reported;
	int status;
};

static struct outcome run(const struct kase *k, bool with_faultline)
{
	struct outcome o = {0};
	int fds[2];
	pid_t pid;

	CHECK(pipe(fds) == 0, "pipe");
	pid = t_fork();
	if (pid == 0) {
		close(fds[0]);
		child(k, with_faultline, fds[1]);
	}
	close(fds[1]);
	o.reported = read(fds[0], &o.s, sizeof(o.s)) == (ssize_t)sizeof(o.s);
	close(fds[0]);
	o.status = t_wait(pid);
	return o;
}

static void describe(char *buf, size_t n, const struct kase *k)
{
	snprintf(buf, n, "%s%s%s%s%s%s", k->real ? "bus error" : "raise",
		 k->flags & SA_SIGINFO ? ", SA_SIGINFO" : "",
		 k->flags & SA_NODEFER ? ", SA_NODEFER" : "",
		 k->flags & SA_RESETHAND ? ", SA_RESETHAND" : "",
		 k->mask_usr1 ? ", sa_mask SIGUSR1" : "", k->nest ? ", raised again inside" : "");
}

static const char *status_str(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exit %d", WEXITSTATUS(status));
	else
		snprintf(buf, n, "signal %d", WTERMSIG(status));
	return buf;
}

int main(int argc, char **argv)
{
	static const int flag_sets[] = {
		0,
		SA_NODEFER,
		SA_RESETHAND,
		SA_NODEFER | SA_RESETHAND,
		SA_SIGINFO,
		SA_SIGINFO | SA_NODEFER | SA_RESETHAND,
	};
	int cases = 0;

	t_seed_init(argc, argv, "test_sigbus_forward");
	/* No space in this process: faultline's SIGBUS handler, once
	 * installed, would stay installed in every child. */
	for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
		for (int bits = 0; bits < 8; bits++) {
			struct kase k = {.flags = flag_sets[f],
					 .mask_usr1 = bits & 1,
					 .nest = bits & 2,
					 .real = bits & 4};
			struct outcome want, got;
			char what[160], s1[32], s2[32];

			if (k.real && k.nest)
				continue; /* a fault cannot be raised again from inside */
			describe(what, sizeof(what), &k);
			want = run(&k, false);
			got = run(&k, true);
			if (!got.reported && WIFEXITED(got.status) &&
			    WEXITSTATUS(got.status) == T_EXIT_SKIP) {
				printf("SKIP: userfaultfd unavailable\n");
				return T_EXIT_SKIP;
			}
			CHECK(want.reported == got.reported,
			      "%s: the child %s before the second SIGBUS without faultline (%s), "
			      "%s with it (%s)",
			      what, want.reported ? "lived" : "died",
			      status_str(want.status, s1, sizeof(s1)),
			      got.reported ? "lived" : "died",
			      status_str(got.status, s2, sizeof(s2)));
			/* ThreadSanitizer delivers signals itself, later and with
			 * masks of its own: there only what runs and what kills
			 * is compared. */
			if (T_UNDER_TSAN) {
				want.s.usr1_blocked = got.s.usr1_blocked = 0;
				want.s.bus_blocked = got.s.bus_blocked = 0;
				want.s.nested_inside = got.s.nested_inside = 0;
			}
			CHECK(!want.reported || memcmp(&want.s, &got.s, sizeof(want.s)) == 0,
			      "%s: the handler saw runs %d/%d, SIGUSR1 blocked %d/%d, SIGBUS "
			      "blocked "
			      "%d/%d, SIGUSR2 blocked %d/%d, runs after the nested raise %d/%d, "
			      "mask after: SIGUSR1 %d/%d SIGBUS %d/%d (kernel/faultline)",
			      what, want.s.runs, got.s.runs, want.s.usr1_blocked,
			      got.s.usr1_blocked, want.s.bus_blocked, got.s.bus_blocked,
			      want.s.usr2_blocked, got.s.usr2_blocked, want.s.nested_inside,
			      got.s.nested_inside, want.s.usr1_after, got.s.usr1_after,
			      want.s.bus_after, got.s.bus_after);
			CHECK(want.status == got.status,
			      "%s: the second SIGBUS: %s without faultline, %s with it", what,
			      status_str(want.status, s1, sizeof(s1)),
			      status_str(got.status, s2, sizeof(s2)));
			printf("  %s: as the kernel (%s)\n", what,
			       status_str(got.status, s1, sizeof(s1)));
			cases++;
		}
	}
	if (T_UNDER_TSAN)
		printf("  (under ThreadSanitizer, what the handler sees of masks and of a nested "
		       "SIGBUS is not compared)\n");
	printf("test_sigbus_forward: %d cases as the kernel delivers them: ok\n", cases);
	return T_EXIT_PASS;
}
