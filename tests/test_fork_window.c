// SPDX-License-Identifier: MIT
/*
 * test_fork_window: a fork() while another thread is in the middle of
 * fl_mmap() gives the child no copy of that region.  A region is marked
 * MADV_DONTFORK; a fork between the kernel's mmap of it and that mark would
 * give the child a plain copy (memory faultline does not serve: zeros where
 * the parent's pages are not present).  One thread maps and unmaps regions
 * in a free stretch of address space without pause (MAP_FIXED, and
 * MAP_FIXED_NOREPLACE, which takes the path of an ordinary mapping), while
 * the main thread forks; each child reads its /proc/self/maps and fails if
 * anything is mapped in that stretch.  And in a child of a process that
 * uses faultline, the parent's handles are dead (EINVAL) and a new space
 * fails with ENOTSUP, instead of working on copies of the parent's spaces
 * or hanging.  Both deliveries.  (A raw clone(2) runs no atfork handler:
 * README, "fork()".)  All of this is for spaces without cfg.fork; a space
 * with it is given to the child (tests/test_fork_copy.c).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <faultline.h>

#include "util.h"

#define PG 4096UL
#define SLOTS 8
#define SLOT_PAGES 16

static char *arena;
static size_t arena_len = SLOTS * SLOT_PAGES * PG;
static atomic_int stop;
static atomic_long cycles;

/* A free stretch far below where mmap(NULL, ...) places things: from 256
 * GiB (ThreadSanitizer's low application range), else from 16 TiB (above
 * AddressSanitizer's shadow). */
static char *free_arena(size_t len)
{
	static const unsigned long from[] = {0x4000000000UL, 0x100000000000UL};
	static const unsigned long to[] = {0x7000000000UL, 0x400000000000UL};

	for (int r = 0; r < 2; r++) {
		for (unsigned long a = from[r]; a < to[r]; a += 1UL << 30) {
			char *p = mmap((void *)a, len, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
					       MAP_FIXED_NOREPLACE,
				       -1, 0);
			if (p == MAP_FAILED)
				continue;
			CHECK(p == (char *)a && munmap(p, len) == 0, "reserve %p", (void *)p);
			return p;
		}
	}
	CHECK(0, "no free arena");
	return NULL;
}

static void *mapper_main(void *arg)
{
	struct fl_space *sp = arg;

	for (long i = 0; !atomic_load(&stop); i++) {
		char *want = arena + (size_t)(i % SLOTS) * SLOT_PAGES * PG;
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | (i % 2 ? MAP_FIXED : MAP_FIXED_NOREPLACE);
		char *p = fl_mmap(sp, want, SLOT_PAGES * PG, PROT_READ | PROT_WRITE, flags, -1, 0);

		CHECK(p == want, "fl_mmap: %s", strerror(errno));
		p[0] = (char)i;
		CHECK(fl_munmap(sp, p, SLOT_PAGES * PG) == 0, "fl_munmap: %s", strerror(errno));
		atomic_fetch_add(&cycles, 1);
	}
	return NULL;
}

/* The child: is anything mapped in the arena?  No malloc, no stdio: the
 * parent has threads.  Exit 0 no, 1 yes, 2 could not tell. */
static void __attribute__((noreturn)) child(void)
{
	static char buf[1 << 20];
	size_t n = 0;
	ssize_t r;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		_exit(2);
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = 0;
	for (char *line = buf; *line;) {
		unsigned long s = 0, e = 0;
		char *q = line;
		while (*q && *q != '-')
			s = s * 16 + (unsigned long)(*q <= '9' ? *q - '0' : (*q | 0x20) - 'a' + 10),
			q++;
		if (*q == '-')
			q++;
		while (*q && *q != ' ')
			e = e * 16 + (unsigned long)(*q <= '9' ? *q - '0' : (*q | 0x20) - 'a' + 10),
			q++;
		if (s < (unsigned long)arena + arena_len && (unsigned long)arena < e)
			_exit(1);
		while (*q && *q != '\n')
			q++;
		line = *q ? q + 1 : q;
	}
	_exit(0);
}

static void run(int delivery, int forks)
{
	struct fl_space *sp = t_space_create(delivery);
	pthread_t th;
	int seen = 0;

	atomic_store(&stop, 0);
	atomic_store(&cycles, 0);
	CHECK(pthread_create(&th, NULL, mapper_main, sp) == 0, "pthread_create");
	while (atomic_load(&cycles) < 10)
		usleep(100);
	for (int i = 0; i < forks; i++) {
		long c0 = atomic_load(&cycles);
		pid_t pid = t_fork();
		int status;

		if (pid == 0)
			child();
		status = t_wait(pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 2, "child %d: %s %d", i,
		      WIFEXITED(status) ? "exit" : "signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		seen += WEXITSTATUS(status) == 1;
		/* The mapper goes on between forks, so that forks land at
		 * every point of its cycle. */
		while (atomic_load(&cycles) < c0 + 1 + i % 3)
			sched_yield();
	}
	atomic_store(&stop, 1);
	CHECK(pthread_join(th, NULL) == 0, "pthread_join");
	fl_space_destroy(sp);
	CHECK(seen == 0,
	      "%s: %d of %d children had a mapping where the parent was mapping a region "
	      "(forked inside fl_mmap's window before MADV_DONTFORK)",
	      t_delivery_name(delivery), seen, forks);
	printf("  %s: %d forks during %ld fl_mmap/fl_munmap cycles: no child had a copy\n",
	       t_delivery_name(delivery), forks, atomic_load(&cycles));
}

/*
 * A child of a process that uses faultline: the parent's handle is dead
 * there (its threads and regions are not in the child): EINVAL; and a new
 * space fails with -ENOTSUP (liburcu's helper threads are not in the child
 * either: a destroy there would wait for them for ever).  In a child, with
 * a watchdog.
 */
static void child_uses_faultline(int delivery)
{
	struct fl_space *parent = t_space_create(delivery);
	char *pr = fl_mmap(parent, NULL, 4 * PG, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;

	CHECK(pr != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	pr[0] = 1;
	/* Parent-side RCU work in flight at the fork. */
	CHECK(fl_munmap(parent, pr + PG, PG) == 0, "fl_munmap");
	pid = t_fork();
	if (pid == 0) {
		struct fl_stats st;
		struct fl_space *sp = NULL;

		alarm(30);
		errno = 0;
		if (fl_mmap(parent, NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) !=
			    MAP_FAILED ||
		    errno != EINVAL)
			_exit(3);
		if (fl_munmap(parent, pr, PG) != -1 || errno != EINVAL)
			_exit(4);
		if (fl_stats(parent, &st) != -EINVAL)
			_exit(5);
		fl_space_destroy(parent); /* logged, nothing done */
		if (fl_space_create(NULL, &sp) != -ENOTSUP || sp)
			_exit(6);
		_exit(0);
	}
	status = t_wait(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "%s: the child %s %d (3-5: the parent's handle worked there; 6: a new space "
	      "did not fail with ENOTSUP; SIGALRM: it hung)",
	      t_delivery_name(delivery), WIFEXITED(status) ? "exited with" : "died of signal",
	      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	CHECK(pr[0] == 1, "the parent's region after the fork");
	fl_space_destroy(parent);
	printf("  %s: in a child, the parent's handle gives EINVAL and a new space ENOTSUP\n",
	       t_delivery_name(delivery));
}

int main(int argc, char **argv)
{
	int forks = t_soak() ? 3000 : 300;

	t_seed_init(argc, argv, "test_fork_window");
	arena = free_arena(arena_len);
	run(FL_DELIVERY_THREAD, forks);
	run(FL_DELIVERY_SIGBUS, forks);
	child_uses_faultline(FL_DELIVERY_THREAD);
	child_uses_faultline(FL_DELIVERY_SIGBUS);
	printf("test_fork_window: ok\n");
	return T_EXIT_PASS;
}
