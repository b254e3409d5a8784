// SPDX-License-Identifier: MIT
/*
 * Handler threads pinned one to each CPU (FAULTLINE_HANDLER_PIN, thread
 * delivery): after a round that started no store I/O, a handler sleeps
 * pinned to its CPU in SCHED_BATCH, in the epoll set a fault message wakes
 * every handler of; after one that did, unpinned in SCHED_OTHER, in the set
 * that wakes one.
 *
 *   - FAULTLINE_HANDLER_PIN=64 (this machine has at most that many CPUs):
 *     at least one handler a CPU; after one thread touched its pages
 *     (demand-zero faults, one a page) a handler is pinned to one CPU, and
 *     every page reads back zero then what was written;
 *   - the option 0, or below the number of CPUs: no handler is pinned, and
 *     the handlers are as many as asked;
 *   - the process confined to one CPU before the space is made: the handlers
 *     are pinned to that CPU;
 *   - one thread, then more threads than CPUs, then one again, each on its
 *     own pages: every page right (no fault is lost or served twice while
 *     the handlers change sets and affinity);
 *   - more threads than CPUs faulting without a pause, demand-zero faults
 *     (no store I/O): every handler stays pinned, in SCHED_BATCH;
 *   - threads faulting pages in from the store: every handler unpins (a
 *     pinned one wakes on each fault message and re-decides), in
 *     SCHED_OTHER, within 10 s; then one thread's demand-zero faults pin
 *     one again within 10 s;
 *   - pinned handlers read fault messages one at a time (handler_msgs_one)
 *     in a space with no store (demand-zero faults) and in a space with the
 *     compressed tier, while threads swap through it, every page right;
 *     never in a space with the disk store alone.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define PG 4096UL
#define PAGES 2048

struct census {
	unsigned int handlers; /* threads named fl-handler/N */
	unsigned int pinned;   /* of them, allowed on one CPU only */
	unsigned int batch;    /* of them, in SCHED_BATCH */
	int cpu;	       /* the CPU of the last pinned one */
};

/* The handler threads of this process, and their CPU sets. */
static struct census handler_census(void)
{
	struct census c = {0, 0, 0, -1};
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	CHECK(d, "/proc/self/task: %s", strerror(errno));
	while ((e = readdir(d))) {
		char path[64], comm[32] = "";
		cpu_set_t set;
		FILE *f;
		int tid = atoi(e->d_name);

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
		f = fopen(path, "r");
		if (!f)
			continue; /* the thread ended meanwhile */
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
		if (strncmp(comm, "fl-handler/", 11))
			continue;
		c.handlers++;
		int policy = sched_getscheduler(tid);
		if (policy < 0)
			continue; /* the thread ended meanwhile */
		c.batch += policy == SCHED_BATCH;
		CHECK(sched_getaffinity(tid, sizeof(set), &set) == 0, "sched_getaffinity %d: %s",
		      tid, strerror(errno));
		if (CPU_COUNT(&set) == 1) {
			c.pinned++;
			for (int i = 0; i < CPU_SETSIZE; i++)
				if (CPU_ISSET(i, &set))
					c.cpu = i;
		}
	}
	closedir(d);
	return c;
}

static struct fl_config config(unsigned int pin)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = FL_DELIVERY_THREAD;
	cfg.fault_around = 1; /* one fault a page */
	cfg.fault_around_max = 1;
	cfg.handlers = 1;
	cfg.handler_pin = pin;
	cfg.mem_limit = 0;
	return cfg;
}

static char *region(struct fl_space *sp, size_t pages)
{
	char *p = fl_mmap(sp, NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	return p;
}

/* One thread touches a region of its own; the handlers counted after. */
static struct census one_thread(unsigned int pin, uint64_t tag)
{
	struct fl_config cfg = config(pin);
	struct fl_space *sp = t_space_create_cfg(&cfg);
	struct t_toucher t = {region(sp, PAGES), PAGES, tag};
	struct census c;

	t_touch_new(&t);
	c = handler_census();
	fl_space_destroy(sp);
	return c;
}

/* n threads at once, each on its own pages. */
static void threads(struct fl_space *sp, unsigned int n, uint64_t tag)
{
	struct t_toucher t[16];
	pthread_t th[16];
	char *p = region(sp, n * PAGES);

	for (unsigned int i = 0; i < n; i++) {
		t[i] = (struct t_toucher){p + (size_t)i * PAGES * PG, PAGES, tag + i};
		CHECK(!pthread_create(&th[i], NULL, t_touch_new, &t[i]), "pthread_create");
	}
	for (unsigned int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static _Atomic bool churn_stop;

struct churner {
	struct fl_space *sp;
	char *base;
	uint64_t rounds;
};

/* Fault on every page of a slice, drop it, again, until churn_stop:
 * demand-zero faults without a pause, and no store I/O. */
static void *churn(void *arg)
{
	struct churner *c = arg;

	while (!atomic_load(&churn_stop)) {
		for (size_t i = 0; i < 256; i++) {
			uint64_t *w = (uint64_t *)(c->base + i * PG);
			CHECK(w[0] == 0, "page %zu not zero after MADV_DONTNEED", i);
			w[0] = c->rounds + 1;
		}
		CHECK(fl_madvise(c->sp, c->base, 256 * PG, MADV_DONTNEED) == 0, "fl_madvise: %s",
		      strerror(errno));
		c->rounds++;
	}
	return NULL;
}

#define SWAP_PAGES 1024 /* each swapper's pages: the budget is SWAP_LIMIT */
#define SWAP_LIMIT 512

/* Write every page of a region larger than the budget, over and over,
 * until churn_stop: each pass evicts and reads back (store I/O). */
static void *swapper(void *arg)
{
	struct churner *c = arg;

	while (!atomic_load(&churn_stop)) {
		for (size_t i = 0; i < SWAP_PAGES; i++) {
			uint64_t *w = (uint64_t *)(c->base + i * PG);
			CHECK(w[0] == c->rounds, "page %zu: %" PRIu64 " after %" PRIu64 " passes",
			      i, w[0], c->rounds);
			w[0] = c->rounds + 1;
		}
		c->rounds++;
	}
	return NULL;
}

/*
 * n threads run fn over slices of per pages while the handlers are
 * counted every 10 ms until done(census) holds, or for at most ms_max.
 * Return: the milliseconds that took, or -1 if it never held.
 */
static long census_while(struct fl_space *sp, unsigned int n, void *(*fn)(void *), size_t per,
			 bool (*done)(struct census), long ms_max)
{
	struct churner c[16];
	pthread_t th[16];
	char *p = region(sp, (size_t)n * per);
	struct timespec t0, t;
	long ms = -1, now;

	atomic_store(&churn_stop, false);
	for (unsigned int i = 0; i < n; i++) {
		c[i] = (struct churner){sp, p + (size_t)i * per * PG, 0};
		CHECK(!pthread_create(&th[i], NULL, fn, &c[i]), "pthread_create");
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		now = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (done(handler_census())) {
			ms = now;
			break;
		}
	} while (now < ms_max);
	atomic_store(&churn_stop, true);
	for (unsigned int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	CHECK(fl_munmap(sp, p, (size_t)n * per * PG) == 0, "fl_munmap: %s", strerror(errno));
	return ms;
}

static bool none_pinned(struct census c)
{
	return !c.pinned && !c.batch;
}

static bool some_pinned(struct census c)
{
	return c.pinned > 0;
}

/* Never: census_while() runs for its ms_max. */
static bool never(struct census c)
{
	(void)c;
	return false;
}

/* Not all pinned in SCHED_BATCH: one of them unpinned. */
static bool not_all_pinned(struct census c)
{
	return c.pinned != c.handlers || c.batch != c.handlers;
}

int main(int argc, char **argv)
{
	cpu_set_t all, one;
	unsigned int cpus;
	struct census c;
	int first = -1;

	t_seed_init(argc, argv, "test_handler_pin");
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0, "sched_getaffinity: %s",
	      strerror(errno));
	cpus = (unsigned int)CPU_COUNT(&all);
	if (cpus > 64)
		t_skip("more than 64 CPUs: FAULTLINE_HANDLER_PIN pins on at most 64");

	c = one_thread(64, 0x1000);
	printf("pin 64, %u CPUs, one thread: %u handlers, %u pinned\n", cpus, c.handlers, c.pinned);
	CHECK(c.handlers >= cpus, "%u handlers for %u CPUs", c.handlers, cpus);
	CHECK(c.pinned >= 1, "one faulting thread: no handler pinned");
	CHECK(CPU_ISSET(c.cpu, &all), "a handler pinned to CPU %d, outside the set", c.cpu);

	c = one_thread(0, 0x2000);
	printf("pin 0: %u handlers, %u pinned\n", c.handlers, c.pinned);
	CHECK(c.handlers == 1, "pin 0: %u handlers, 1 asked", c.handlers);
	if (cpus > 1) /* with one CPU, every thread is allowed just one */
		CHECK(c.pinned == 0, "pin 0: %u handlers pinned", c.pinned);
	if (cpus > 1) {
		c = one_thread(cpus - 1, 0x3000);
		printf("pin %u: %u handlers, %u pinned\n", cpus - 1, c.handlers, c.pinned);
		CHECK(c.handlers == 1 && c.pinned == 0,
		      "%u CPUs, pin %u: %u handlers, %u pinned; none should be", cpus, cpus - 1,
		      c.handlers, c.pinned);
	}

	/* Confined to one CPU: the handlers made now are pinned to it. */
	for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
		if (CPU_ISSET(i, &all))
			first = i;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0, "sched_setaffinity: %s",
	      strerror(errno));
	c = one_thread(2, 0x4000);
	printf("confined to CPU %d: %u handlers, %u pinned to CPU %d\n", first, c.handlers,
	       c.pinned, c.cpu);
	CHECK(c.handlers == 1 && c.pinned == 1 && c.cpu == first,
	      "confined to CPU %d: %u handlers, %u pinned (to %d)", first, c.handlers, c.pinned,
	      c.cpu);
	CHECK(sched_setaffinity(0, sizeof(all), &all) == 0, "sched_setaffinity: %s",
	      strerror(errno));

	/* One thread, more threads than CPUs, one again, in one space. */
	{
		struct fl_config cfg = config(64);
		struct fl_space *sp = t_space_create_cfg(&cfg);
		unsigned int n = cpus + 2 > 16 ? 16 : cpus + 2;

		for (int round = 0; round < 3; round++) {
			threads(sp, 1, 0x5000 + (uint64_t)round * 0x100);
			threads(sp, n, 0x6000 + (uint64_t)round * 0x100);
		}
		threads(sp, 1, 0x7000);
		printf("1, %u, 1 threads, three times: every page right\n", n);
		if (cpus > 1) {
			c = handler_census();
			printf("after them: %u of %u handlers pinned, %u in SCHED_BATCH\n",
			       c.pinned, c.handlers, c.batch);
			CHECK(c.pinned == c.handlers && c.batch == c.handlers,
			      "no store I/O: %u of %u handlers pinned, %u in SCHED_BATCH", c.pinned,
			      c.handlers, c.batch);
			/* Demand-zero faults without a pause: they stay so. */
			long ms = census_while(sp, n, churn, 256, not_all_pinned, 300);
			CHECK(ms < 0,
			      "%u threads' demand-zero faults: a handler unpinned after %ld ms", n,
			      ms);
		} else {
			printf("one CPU: every thread is allowed just one, unpinning not seen\n");
		}
		uint64_t alone = t_stats(sp).handler_msgs_one;
		printf("no store: %" PRIu64 " messages read one at a time\n", alone);
		CHECK(alone > 0, "no store: no message read alone");
		fl_space_destroy(sp);
	}

	/* Store I/O unpins them; demand-zero faults pin them again. */
	if (cpus > 1) {
		struct fl_config cfg = config(64);
		cfg.mem_limit = SWAP_LIMIT * PG;
		struct fl_space *sp = t_space_create_cfg(&cfg);
		unsigned int n = cpus + 2 > 16 ? 16 : cpus + 2;

		long ms = census_while(sp, 1, churn, 256, some_pinned, 10000);
		CHECK(ms >= 0, "one thread's demand-zero faults: no handler pinned: nothing to "
			       "unpin");
		ms = census_while(sp, n, swapper, SWAP_PAGES, none_pinned, 10000);
		struct fl_stats st = t_stats(sp);
		printf("%u threads swapping (%" PRIu64 " store writes, %" PRIu64 " reads): none "
		       "pinned %ld ms after they began (-1: not within 10 s)\n",
		       n, st.store_writes, st.store_reads, ms);
		/* Any store I/O unpins: the first pass's evictions (writes)
		 * may do it before a page is read back, or a write completes
		 * (io_inflight_max counts from submission; the space did no
		 * store I/O before the swappers). */
		CHECK(st.io_inflight_max > 0, "no store I/O: the swappers did not swap");
		CHECK(ms >= 0, "%u threads swapping on %u CPUs: a handler still pinned after 10 s",
		      n, cpus);
		ms = census_while(sp, 1, churn, 256, some_pinned, 10000);
		printf("then one thread's demand-zero faults: one pinned after %ld ms\n", ms);
		CHECK(ms >= 0, "no store I/O any more: no handler pinned again within 10 s");
		CHECK(t_stats(sp).handler_msgs_one == 0,
		      "the disk store alone: %" PRIu64 " messages read one at a time",
		      t_stats(sp).handler_msgs_one);
		fl_space_destroy(sp);
	}
	/* The compressed tier: swapping through it is no store I/O as a rule,
	 * the handlers stay pinned and read one message at a time. */
	{
		struct fl_config cfg = config(64);
		cfg.mem_limit = SWAP_LIMIT * PG;
		cfg.zswap = FL_ZSWAP_LZ4;
		struct fl_space *sp = t_space_create_cfg(&cfg);
		unsigned int n = cpus + 2 > 16 ? 16 : cpus + 2;

		census_while(sp, n, swapper, SWAP_PAGES, never, 500);
		struct fl_stats st = t_stats(sp);
		printf("compressed tier, %u threads swapping for 0.5 s: %" PRIu64
		       " tier hits, %" PRIu64 " messages read one at a time, every page right\n",
		       n, st.zswap_hits, st.handler_msgs_one);
		CHECK(st.zswap_hits > 0, "the swappers did not swap through the tier");
		CHECK(st.handler_msgs_one > 0, "the tier's pinned handlers read no message alone");
		fl_space_destroy(sp);
	}
	printf("test_handler_pin: PASS\n");
	return T_EXIT_PASS;
}
