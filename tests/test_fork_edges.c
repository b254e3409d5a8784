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

static struct fl_space *fork_space(int delivery, size_t budget_pages)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.fork = 1;
	cfg.mem_limit = budget_pages * ps;
	return t_space_create_cfg(&cfg);
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

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_fork_edges");
	ps = t_page_size();
	t_require_io_uring();
#if T_UNDER_TSAN
	CHECK(pthread_atfork(NULL, NULL, tsan_child_exits) == 0, "pthread_atfork");
#endif
	twofork(FL_DELIVERY_THREAD);
	twofork(FL_DELIVERY_SIGBUS);
	printf("test_fork_edges: ok\n");
	return 0;
}
