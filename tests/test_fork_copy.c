/* SPDX-License-Identifier: MIT */
/*
 * test_fork_copy: a space made with cfg.fork (FAULTLINE_FORK) is given to a
 * child of fork() as it was at the fork.
 *
 * The parent runs writer threads over a region eight times its budget, so
 * that most pages are swapped out (some in the swap cache, some resident,
 * some write-protected and clean), and forks (fl_fork() and the plain
 * fork(), in turn) while a reader thread faults in pages of a second
 * region (written once) and a scratch writer writes pages of a third: faults, swap-ins and
 * evictions are in flight as the fork quiesces the space.  The writers of
 * the checked region pause just before each fork, so that what the child
 * must see is known exactly (the kernel's copy of a page another thread is
 * writing during fork(2) is not defined to be either version).  The child,
 * on its one thread:
 *   - reads every page and finds it as it was at the fork: the version the
 *     parent had written; every page of the scratch region is a whole
 *     version of that page (perhaps torn between two consecutive ones);
 *   - writes every page with its own pattern, under its own budget (so it
 *     swaps to its own copy of the store), with two threads of its own,
 *     and reads them all back;
 *   - creates a space of its own, and destroys both.
 * The parent meanwhile goes on writing, then checks that every page holds
 * what it last wrote (the child's writes and swap-outs are not seen), and
 * that its swap-outs went on.  A vfork-based posix_spawn works in between.
 * Both deliveries.  Under ThreadSanitizer the children exit at once (see
 * tsan_child_exits()): the parent's side only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
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

extern char **environ;

#if T_UNDER_TSAN
/*
 * ThreadSanitizer cannot follow a child of a threaded fork that starts
 * threads: it stops it ("starting new threads after multi-threaded fork is
 * not supported"), and told to go on, it fails at the first new thread
 * whose id a parent's thread had ("dup thread with used id").  faultline's
 * child handler starts the space's threads, so under TSan every child exits
 * at once, from an atfork child handler registered before faultline's
 * (child handlers run in the order they were registered): TSan checks the
 * parent's side of each fork, the release and ASan builds the child's.
 */
static void tsan_child_exits(void)
{
	_exit(0);
}
#endif

#define WRITERS 3
#define FORKS 4

static size_t ps;
static size_t npages, budget_pages;
static unsigned char *region;
static struct fl_space *sp;
/* Kept outside the space: the version last written to each page, published
 * after the page is written; and the page each writer is writing (-1:
 * none), set before it starts. */
static _Atomic uint32_t *ver;
static _Atomic long inprog[WRITERS];
static atomic_bool stop, pause_req;
static atomic_int paused;
static atomic_long writes;
/* The scratch region, written through the fork; the cold one, written once
 * and read through the fork. */
#define SCRATCH_PAGES 64
#define COLD_PAGES 256
static unsigned char *scratch, *cold;
static _Atomic uint32_t scratch_ver[SCRATCH_PAGES];

static uint64_t word_of(size_t page, uint32_t v, size_t i)
{
	return ((uint64_t)page << 40) ^ ((uint64_t)v << 8) ^ i ^ 0x5a5a000000000000ull;
}

/* Words of a page are written and read as relaxed atomics: the scratch
 * region is read (by the child, and the kernel's copy) while it is
 * written, by design. */
static void fill_at(unsigned char *base, size_t page, uint32_t v)
{
	_Atomic uint64_t *w = (_Atomic uint64_t *)(base + page * ps);

	for (size_t i = 0; i < ps / 8; i++)
		atomic_store_explicit(&w[i], v ? word_of(page, v, i) : 0, memory_order_relaxed);
}

static void fill(size_t page, uint32_t v)
{
	fill_at(region, page, v);
}

/* Each word is of version a or b (a page a writer was in the middle of). */
static bool holds_either_at(const unsigned char *base, size_t page, uint32_t a, uint32_t b)
{
	_Atomic uint64_t *w = (_Atomic uint64_t *)(base + page * ps);

	for (size_t i = 0; i < ps / 8; i++) {
		uint64_t x = atomic_load_explicit(&w[i], memory_order_relaxed);
		if (x != (a ? word_of(page, a, i) : 0) && x != word_of(page, b, i))
			return false;
	}
	return true;
}

/* Whether the page holds version v throughout (0: zeros). */
static bool holds(size_t page, uint32_t v)
{
	return holds_either_at(region, page, v, v);
}

static bool holds_either(size_t page, uint32_t a, uint32_t b)
{
	return holds_either_at(region, page, a, b);
}

/* The scratch writer: through every fork. */
static void *scratch_writer(void *arg)
{
	struct t_rng r;

	t_rng_init(&r, *t_seed_ptr() + 1000);
	while (!atomic_load(&stop)) {
		size_t p = t_below(&r, SCRATCH_PAGES);
		uint32_t v = atomic_load(&scratch_ver[p]) + 1;

		fill_at(scratch, p, v);
		atomic_store(&scratch_ver[p], v);
	}
	return NULL;
}

/* The reader: faults pages of the cold region in, through every fork. */
static void *reader(void *arg)
{
	struct t_rng r;
	unsigned long sum = 0;

	t_rng_init(&r, *t_seed_ptr() + 2000);
	while (!atomic_load(&stop))
		sum += atomic_load_explicit(
			(_Atomic uint64_t *)(cold + t_below(&r, COLD_PAGES) * ps),
			memory_order_relaxed);
	return (void *)sum;
}

static void *writer(void *arg)
{
	long id = (long)arg;
	struct t_rng r;
	size_t lo = npages * (size_t)id / WRITERS, hi = npages * (size_t)(id + 1) / WRITERS;

	t_rng_init(&r, *t_seed_ptr() + (uint64_t)id);
	while (!atomic_load(&stop)) {
		if (atomic_load(&pause_req)) {
			atomic_fetch_add(&paused, 1);
			while (atomic_load(&pause_req) && !atomic_load(&stop))
				usleep(100);
			atomic_fetch_sub(&paused, 1);
			continue;
		}
		size_t p = lo + t_below(&r, hi - lo);
		uint32_t v = atomic_load(&ver[p]) + 1;

		atomic_store(&inprog[id], (long)p);
		fill(p, v);
		atomic_store(&ver[p], v);
		atomic_store(&inprog[id], -1);
		atomic_fetch_add(&writes, 1);
	}
	return NULL;
}

/* ---- the child -------------------------------------------------------- */

static uint32_t child_v(size_t page)
{
	return 0x40000000u | (uint32_t)page;
}

struct span {
	size_t lo, hi;
};

static void *child_writer(void *arg)
{
	struct span *s = arg;

	for (size_t p = s->lo; p < s->hi; p++)
		fill(p, child_v(p));
	return NULL;
}

static int child(int delivery)
{
	struct fl_stats st0 = t_stats(sp), st;
	size_t torn = 0;
	pthread_t t[2];
	struct span s[2] = {{0, npages / 2}, {npages / 2, npages}};
	struct fl_space *own;
	struct fl_config cfg;

	/* What the parent had published at the fork, page by page. */
	for (size_t p = 0; p < npages; p++) {
		uint32_t v = atomic_load(&ver[p]);
		bool busy = false;

		for (int w = 0; w < WRITERS; w++)
			busy |= atomic_load(&inprog[w]) == (long)p;
		if (busy) {
			torn++;
			CHECK(holds_either(p, v, v + 1),
			      "child: page %zu (being written at the fork) is neither version %u "
			      "nor %u",
			      p, v, v + 1);
			continue;
		}
		CHECK(holds(p, v), "child: page %zu is not version %u, as at the fork", p, v);
	}
	for (size_t p = 0; p < COLD_PAGES; p++)
		CHECK(holds_either_at(cold, p, 1, 1), "child: cold page %zu is not version 1", p);
	for (size_t p = 0; p < SCRATCH_PAGES; p++) {
		uint64_t w0 = atomic_load_explicit((_Atomic uint64_t *)(scratch + p * ps),
						   memory_order_relaxed);
		uint32_t u = (uint32_t)((w0 ^ word_of(p, 0, 0)) >> 8);
		CHECK(holds_either_at(scratch, p, u ? u - 1 : 0, u) ||
			      holds_either_at(scratch, p, u, u + 1),
		      "child: scratch page %zu is no whole version of itself", p);
	}
	st = t_stats(sp);
	CHECK(st.swap_ins > st0.swap_ins, "child: nothing was read from the store's copy");
	/* Its own writes, under its own budget, by threads of its own. */
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, child_writer, &s[i]) == 0, "pthread_create");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (size_t p = 0; p < npages; p++)
		CHECK(holds(p, child_v(p)), "child: page %zu lost the child's own write", p);
	st = t_stats(sp);
	CHECK(st.swap_outs > st0.swap_outs, "child: its writes never swapped out");
	/* A space of its own: liburcu's threads are the child's too. */
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	CHECK(fl_space_create(&cfg, &own) == 0, "child: fl_space_create");
	unsigned char *q = fl_mmap(own, NULL, 16 * ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(q != MAP_FAILED, "child: fl_mmap in a new space");
	memset(q, 7, 16 * ps);
	CHECK(q[5 * ps] == 7, "child: new space");
	fl_space_destroy(own);
	fl_space_destroy(sp);
	printf("  %s child: %zu pages checked, %zu being written at the fork\n",
	       t_delivery_name(delivery), npages, torn);
	return 0;
}

/* ---- the parent ------------------------------------------------------- */

static void check_parent(const char *when)
{
	for (size_t p = 0; p < npages; p++)
		CHECK(holds(p, atomic_load(&ver[p])), "parent (%s): page %zu is not version %u",
		      when, p, atomic_load(&ver[p]));
	for (size_t p = 0; p < COLD_PAGES; p++)
		CHECK(holds_either_at(cold, p, 1, 1), "parent (%s): cold page %zu", when, p);
	for (size_t p = 0; p < SCRATCH_PAGES; p++)
		CHECK(holds_either_at(scratch, p, scratch_ver[p], scratch_ver[p]),
		      "parent (%s): scratch page %zu is not version %u", when, p,
		      atomic_load(&scratch_ver[p]));
}

static void spawn_true(void)
{
	char *argv[] = {"true", NULL};
	pid_t pid;

	CHECK(posix_spawnp(&pid, "true", NULL, NULL, argv, environ) == 0, "posix_spawnp");
	int status = t_wait(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "posix_spawn'd true: status %#x",
	      status);
}

static void run(int delivery)
{
	struct fl_config cfg;
	pthread_t t[WRITERS], rd, sw;
	struct fl_stats st0, st;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.fork = 1;
	cfg.mem_limit = budget_pages * ps;
	sp = t_space_create_cfg(&cfg);
	region = fl_mmap(sp, NULL, npages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	CHECK(region != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	scratch = fl_mmap(sp, NULL, SCRATCH_PAGES * ps, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(scratch != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t p = 0; p < SCRATCH_PAGES; p++) {
		fill_at(scratch, p, 1);
		atomic_store(&scratch_ver[p], 1);
	}
	cold = fl_mmap(sp, NULL, COLD_PAGES * ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(cold != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t p = 0; p < COLD_PAGES; p++)
		fill_at(cold, p, 1);
	memset((void *)ver, 0, npages * sizeof(*ver));
	/* Every page written once: most of them swapped out. */
	for (size_t p = 0; p < npages; p++) {
		fill(p, 1);
		atomic_store(&ver[p], 1);
	}
	atomic_store(&stop, false);
	for (long i = 0; i < WRITERS; i++) {
		atomic_store(&inprog[i], -1);
		CHECK(pthread_create(&t[i], NULL, writer, (void *)i) == 0, "pthread_create");
	}
	CHECK(pthread_create(&rd, NULL, reader, NULL) == 0, "pthread_create");
	CHECK(pthread_create(&sw, NULL, scratch_writer, NULL) == 0, "pthread_create");
	/* Writes of evicted pages complete in the background: wait for one. */
	for (int i = 0; i < 5000 && !(st0 = t_stats(sp)).swap_outs; i++)
		usleep(1000);
	CHECK(st0.swap_outs > 0, "nothing swapped out before the fork");
	for (int f = 0; f < FORKS; f++) {
		long w0 = atomic_load(&writes);

		while (atomic_load(&writes) < w0 + (long)npages / 4)
			usleep(1000);
		fflush(stdout);
		fflush(stderr);
		atomic_store(&pause_req, true);
		while (atomic_load(&paused) < WRITERS)
			usleep(100);
		pid_t pid = f % 2 ? fork() : fl_fork();
		CHECK(pid >= 0, "%s: %s", f % 2 ? "fork" : "fl_fork", strerror(errno));
		if (pid == 0)
			_exit(child(delivery));
		atomic_store(&pause_req, false);
		spawn_true();
		int status = t_wait(pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "%s: child %d of fork %d ended with status %#x", t_delivery_name(delivery),
		      (int)pid, f, status);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	pthread_join(rd, NULL);
	pthread_join(sw, NULL);
	check_parent("after the children");
	st = t_stats(sp);
	CHECK(st.swap_outs > st0.swap_outs, "the parent stopped swapping");
	printf("%s: %d forks, %ld writes, swap-outs %llu, swap-ins %llu\n",
	       t_delivery_name(delivery), FORKS, atomic_load(&writes),
	       (unsigned long long)st.swap_outs, (unsigned long long)st.swap_ins);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_fork_copy");
	ps = t_page_size();
	t_require_io_uring();
	/* The sanitizers' shadow memory makes everything slower: fewer pages. */
	npages = T_UNDER_TSAN ? 512 : 1024; /* the budget: 64 pages at least */
	budget_pages = npages / 8;
#if T_UNDER_TSAN
	CHECK(pthread_atfork(NULL, NULL, tsan_child_exits) == 0, "pthread_atfork");
#endif
	ver = mmap(NULL, npages * sizeof(*ver), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	CHECK(ver != MAP_FAILED, "mmap");
	run(FL_DELIVERY_THREAD);
	run(FL_DELIVERY_SIGBUS);
	printf("test_fork_copy: ok\n");
	return 0;
}
