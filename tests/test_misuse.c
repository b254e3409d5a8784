// SPDX-License-Identifier: MIT
/*
 * test_misuse: misuse of the API gets an error, not a crash, a livelock or
 * silence.  Each case checks the error returned, that the process lives,
 * that nothing spins (a bounded count of faults, not a timing) and that the
 * data of everyone else is intact.  Both deliveries; with swap where it
 * matters.
 *   - two spaces, one range: MAP_FIXED over a range another space owns is
 *     refused with EEXIST (exactly, in part, inside), and threads of two
 *     spaces mapping the same slots at once never both get one;
 *   - a page the table says present that the kernel dropped behind
 *     faultline's back (the libc madvise): the next access is served (zeros,
 *     counted in faults_repaired) instead of faulting for ever, read and
 *     write, with and without swap; and MADV_PAGEOUT of it before any
 *     access (anonymous, and a private copy of a file page, which the
 *     kernel also drops when faultline punches the file's page out of its
 *     cache before the copy is made): the page stays, nothing waits on it;
 *     and a private copy of a file page dropped so, accessed while the
 *     file's page is locked (a write-back of a shared mapping holds it):
 *     under every policy the access waits, then sees the file's page;
 *   - the libc munmap of a region, left unmapped or mapped again by someone
 *     else: eviction, fl_madvise, fl_mprotect, fl_munmap and destroy go on
 *     without an abort, touch nothing of the new owner's, and the region is
 *     dropped (stale_drops);
 *   - handles: every call on a destroyed or made-up handle fails with EINVAL
 *     (-EINVAL), destroy twice does nothing, and destroy while other threads
 *     fault in the region and call the API neither crashes nor hangs;
 *   - fl_maps() to a FILE whose buffer is in a region of the same space,
 *     with a writer queued for the space lock: no deadlock;
 *   - the libc mprotect of a region to more than faultline's VMA allows: a
 *     store that the kernel lets fault in gets SIGSEGV, not a fault for ever.
 * FL_TEST_CASE=refused,race,repair,repair-pageout,repair-locked,munmap,munmap-reused,munmap-protnone,
 * handles,destroy,maps,mprotect (any of them) runs only those.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <faultline.h>

#include "util.h"

#define PG 4096UL
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static uint64_t seed;

static struct fl_space *space(int delivery, size_t budget_pages)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.mem_limit = budget_pages * PG;
	return t_space_create_cfg(&cfg);
}

static uint64_t word(uint64_t tag, size_t page, size_t i)
{
	uint64_t x = seed ^ (tag << 40) ^ (page << 16) ^ i;

	return t_splitmix64(&x);
}

static void fill(char *p, size_t pages, uint64_t tag)
{
	for (size_t pg = 0; pg < pages; pg++)
		for (size_t i = 0; i < PG / 8; i += 61)
			((uint64_t *)(p + pg * PG))[i] = word(tag, pg, i);
}

/* Return: the first page of [first, first + pages) of the area at p that
 * does not hold its words, or first + pages. */
static size_t check_at(const char *p, size_t first, size_t pages, uint64_t tag)
{
	for (size_t pg = first; pg < first + pages; pg++)
		for (size_t i = 0; i < PG / 8; i += 61)
			if (((const uint64_t *)(p + pg * PG))[i] != word(tag, pg, i))
				return pg;
	return first + pages;
}

static size_t check(const char *p, size_t pages, uint64_t tag)
{
	return check_at(p, 0, pages, tag);
}

/*
 * A free stretch of address space for MAP_FIXED at known places, far below
 * where mmap(NULL, ...) places things (top down from the stacks), so that
 * nothing else (thread stacks, malloc, faultline's own slabs) lands in a
 * hole the test leaves there.  First from 256 GiB (inside ThreadSanitizer's
 * low application range; AddressSanitizer's shadow gap refuses it), then
 * from 16 TiB.
 */
static char *free_arena(size_t len)
{
	static unsigned long next[] = {0x4000000000UL, 0x100000000000UL};
	static const unsigned long end[] = {0x7000000000UL, 0x400000000000UL};

	for (int r = 0; r < 2; r++) {
		for (; next[r] < end[r]; next[r] += 1UL << 30) {
			char *a = mmap((void *)next[r], len, PROT_NONE,
				       ANON | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
			if (a == MAP_FAILED)
				continue;
			CHECK(a == (char *)next[r], "MAP_FIXED_NOREPLACE gave %p", (void *)a);
			CHECK(munmap(a, len) == 0, "munmap: %s", strerror(errno));
			next[r] += 1UL << 30;
			return a;
		}
	}
	CHECK(0, "no free arena");
	return NULL;
}

/* Whether fl_maps() lists a VMA that overlaps [p, p + len). */
static bool maps_has(struct fl_space *sp, const void *p, size_t len)
{
	char *buf = NULL, *line;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	bool hit = false;

	CHECK(f && fl_maps(sp, f) == 0, "fl_maps");
	fclose(f);
	for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < (unsigned long)p + len &&
		    (unsigned long)p < e)
			hit = true;
	}
	free(buf);
	return hit;
}

/* ------------------------------------------------ two spaces, one range */

static void two_spaces_refused(int delivery, size_t budget)
{
	struct fl_space *a = space(delivery, budget), *b = space(delivery, budget);
	char *arena = free_arena(256 * PG), *rb = arena + 64 * PG, *p;
	const struct {
		long off, pages;
		int flags;
		const char *what;
	} tries[] = {
		{0, 64, MAP_FIXED, "MAP_FIXED exactly over it"},
		{32, 64, MAP_FIXED, "MAP_FIXED over its second half"},
		{-16, 32, MAP_FIXED, "MAP_FIXED over its first pages"},
		{8, 8, MAP_FIXED | MAP_POPULATE, "MAP_FIXED inside it"},
		{-64, 192, MAP_FIXED, "MAP_FIXED around it"},
		{0, 64, MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE over it"},
	};

	CHECK(fl_mmap(b, rb, 64 * PG, RW, ANON | MAP_FIXED, -1, 0) == rb, "fl_mmap(b): %s",
	      strerror(errno));
	fill(rb, 64, 2);
	for (size_t t = 0; t < ARRAY_SIZE(tries); t++) {
		errno = 0;
		p = fl_mmap(a, rb + tries[t].off * (long)PG, (size_t)tries[t].pages * PG, RW,
			    ANON | tries[t].flags, -1, 0);
		CHECK(p == MAP_FAILED && errno == EEXIST,
		      "%s: another space's range was %s (errno %d), expected EEXIST", tries[t].what,
		      p == MAP_FAILED ? "refused" : "mapped", errno);
		CHECK(check(rb, 64, 2) == 64, "%s: the owner's page %zu changed", tries[t].what,
		      check(rb, 64, 2));
		CHECK(!maps_has(a, rb, 64 * PG), "%s: the refused space lists the range",
		      tries[t].what);
	}
	/* Next to it is free: fine. */
	p = fl_mmap(a, rb + 64 * PG, 16 * PG, RW, ANON | MAP_FIXED, -1, 0);
	CHECK(p == rb + 64 * PG, "fl_mmap next to another space's region: %s", strerror(errno));
	fill(p, 16, 1);
	/* Destroying the other space leaves the owner's region alone. */
	fl_space_destroy(a);
	CHECK(check(rb, 64, 2) == 64, "destroying the other space changed page %zu",
	      check(rb, 64, 2));
	CHECK(maps_has(b, rb, 64 * PG), "the owner lost its region");
	/* Its unmapped range is free again, for the owner too. */
	CHECK(fl_mmap(b, rb + 64 * PG, 16 * PG, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0) ==
		      rb + 64 * PG,
	      "the range of a destroyed space: %s", strerror(errno));
	fl_space_destroy(b);
	printf("  %s%s: MAP_FIXED over another space's range refused with EEXIST, %zu ways\n",
	       t_delivery_name(delivery), budget ? " + swap" : "", ARRAY_SIZE(tries));
}

enum { RACE_THREADS = 3, RACE_SLOTS = 24, SLOT_PAGES = 4 };

struct racer {
	pthread_t th;
	struct fl_space *sp;
	char *arena;
	int space_id, k;
	uint64_t seed;
	long mapped, refused;
};

/* Thread k of each space contends for the slots s with s % RACE_THREADS == k:
 * exactly one thread of the other space wants each of them. */
static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct t_rng rng;
	int rounds = t_soak() ? 3000 : 300;

	t_rng_init(&rng, r->seed);
	for (int round = 0; round < rounds; round++) {
		size_t slot =
			(size_t)r->k + RACE_THREADS * t_below(&rng, RACE_SLOTS / RACE_THREADS);
		char *p = r->arena + slot * SLOT_PAGES * PG;
		uint64_t tag = ((uint64_t)r->space_id << 20) ^ (uint64_t)round ^ (slot << 10);
		char *q = fl_mmap(r->sp, p, SLOT_PAGES * PG, RW, ANON | MAP_FIXED, -1, 0);

		if (q == MAP_FAILED) {
			CHECK(errno == EEXIST, "space %d: fl_mmap(MAP_FIXED) slot %zu: %s",
			      r->space_id, slot, strerror(errno));
			r->refused++;
			continue;
		}
		CHECK(q == p, "fl_mmap returned %p for %p", (void *)q, (void *)p);
		fill(p, SLOT_PAGES, tag);
		if (t_chance(&rng, 50))
			sched_yield();
		CHECK(check(p, SLOT_PAGES, tag) == SLOT_PAGES,
		      "space %d, slot %zu: page %zu changed while mapped (the other space "
		      "mapped over it)",
		      r->space_id, slot, check(p, SLOT_PAGES, tag));
		CHECK(fl_munmap(r->sp, p, SLOT_PAGES * PG) == 0, "fl_munmap: %s", strerror(errno));
		r->mapped++;
	}
	return NULL;
}

static void two_spaces_race(int delivery, struct t_rng *rng)
{
	struct fl_space *sp[2] = {space(delivery, 0), space(delivery, 0)};
	char *arena = free_arena(RACE_SLOTS * SLOT_PAGES * PG);
	struct racer r[2 * RACE_THREADS];
	long mapped = 0, refused = 0;

	for (int i = 0; i < 2 * RACE_THREADS; i++) {
		r[i] = (struct racer){.sp = sp[i % 2],
				      .arena = arena,
				      .space_id = i % 2,
				      .k = i / 2,
				      .seed = t_rand(rng)};
		CHECK(pthread_create(&r[i].th, NULL, racer_main, &r[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < 2 * RACE_THREADS; i++) {
		CHECK(pthread_join(r[i].th, NULL) == 0, "pthread_join");
		mapped += r[i].mapped;
		refused += r[i].refused;
	}
	CHECK(!maps_has(sp[0], arena, RACE_SLOTS * SLOT_PAGES * PG) &&
		      !maps_has(sp[1], arena, RACE_SLOTS * SLOT_PAGES * PG),
	      "a slot is still listed after every thread unmapped its own");
	CHECK(mapped > 0, "no slot was ever mapped");
	fl_space_destroy(sp[0]);
	fl_space_destroy(sp[1]);
	printf("  %s: %d threads of two spaces on %d slots: %ld mapped, %ld refused with EEXIST, "
	       "never both\n",
	       t_delivery_name(delivery), 2 * RACE_THREADS, RACE_SLOTS, mapped, refused);
}

/* ----------------------------------- a present page the kernel dropped */

struct accessor {
	char *p;
	bool write;
	atomic_int done;
	char seen;
};

static void *accessor_main(void *arg)
{
	struct accessor *a = arg;

	if (a->write)
		*(volatile char *)a->p = 0x5a;
	a->seen = *(volatile char *)a->p;
	atomic_store(&a->done, 1);
	return NULL;
}

/*
 * Run one access in another thread, and wait for it while counting the
 * space's faults: an access that faults more than a few hundred times
 * without completing spins (the kernel keeps faulting on a page the table
 * calls present).
 */
static void access_bounded(struct fl_space *sp, struct accessor *a, const char *what)
{
	uint64_t f0 = t_stats(sp).faults, n = 0;
	pthread_t th;

	atomic_store(&a->done, 0);
	CHECK(pthread_create(&th, NULL, accessor_main, a) == 0, "pthread_create");
	for (int i = 0; i < 20000 && !atomic_load(&a->done); i++) {
		n = t_stats(sp).faults - f0;
		CHECK(n < 1000, "%s: %llu faults and the access has not completed: it spins", what,
		      (unsigned long long)n);
		usleep(500);
	}
	CHECK(atomic_load(&a->done), "%s: the access did not complete (%llu faults)", what,
	      (unsigned long long)n);
	CHECK(pthread_join(th, NULL) == 0, "pthread_join");
	n = t_stats(sp).faults - f0;
	CHECK(n <= 4, "%s: %llu faults for one access", what, (unsigned long long)n);
}

static void present_but_dropped(int delivery, size_t budget, bool write)
{
	struct fl_space *sp = space(delivery, budget);
	char *p = fl_mmap(sp, NULL, 64 * PG, RW, ANON, -1, 0);
	struct accessor a = {.p = p + 5 * PG + 100, .write = write};
	char what[96];

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	fill(p, 64, 3);
	/* Behind faultline's back: the kernel drops the page, the table says
	 * present. */
	CHECK(madvise(p + 5 * PG, PG, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
	snprintf(what, sizeof(what), "%s%s, a %s of a page dropped by the libc madvise",
		 t_delivery_name(delivery), budget ? " + swap" : "", write ? "write" : "read");
	access_bounded(sp, &a, what);
	CHECK(a.seen == (write ? 0x5a : 0), "%s: read %#x", what, a.seen);
	/* The repair is counted after its install, which woke the access:
	 * in thread delivery the handler may not have counted it yet. */
	for (int i = 0; i < 2000 && !t_stats(sp).faults_repaired; i++)
		usleep(1000);
	CHECK(t_stats(sp).faults_repaired == 1, "%s: faults_repaired %llu", what,
	      (unsigned long long)t_stats(sp).faults_repaired);
	CHECK(check(p, 5, 3) == 5, "%s: page %zu changed", what, check(p, 5, 3));
	for (size_t pg = 6; pg < 64; pg++)
		CHECK(word(3, pg, 0) == *(uint64_t *)(p + pg * PG), "%s: page %zu changed", what,
		      pg);
	/* The repaired page is an ordinary page again. */
	*(volatile char *)(p + 5 * PG) = 7;
	CHECK(*(volatile char *)(p + 5 * PG) == 7, "%s: the repaired page", what);
	CHECK(fl_munmap(sp, p, 64 * PG) == 0, "fl_munmap");
	fl_space_destroy(sp);
	printf("  %s: served once (faults_repaired 1)\n", what);
}

struct pageout_call {
	struct fl_space *sp;
	char *p;
	size_t len;
	int ret;
	_Atomic int done;
};

static void *pageout_main(void *arg)
{
	struct pageout_call *c = arg;

	c->ret = fl_madvise(c->sp, c->p, c->len, MADV_PAGEOUT);
	atomic_store(&c->done, 1);
	return NULL;
}

/*
 * A dirty page the table says present, dropped by the kernel (the libc
 * madvise), then paged out before any access: eviction reads the page to
 * write it out, and must not wait for a fault on it (whose handler needs
 * the page table lock that eviction holds).  With file, a private copy of a
 * file page.  The page comes back as the access after a drop does (zeros, or
 * the file's page), the others as they were.
 */
static void pageout_dropped(int delivery, bool file)
{
	struct fl_space *sp = space(delivery, 1024);
	char path[] = "/var/tmp/fl-misuse-XXXXXX";
	int fd = -1;
	char *p;

	if (file) {
		char buf[PG];

		fd = mkstemp(path);
		CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
		memset(buf, 0x33, sizeof(buf));
		for (size_t pg = 0; pg < 64; pg++)
			CHECK(pwrite(fd, buf, PG, (off_t)(pg * PG)) == (ssize_t)PG, "pwrite");
		p = fl_mmap(sp, NULL, 64 * PG, RW, MAP_PRIVATE, fd, 0);
	} else {
		p = fl_mmap(sp, NULL, 64 * PG, RW, ANON, -1, 0);
	}
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	fill(p, 64, 4); /* every page dirty (a private copy of a file page) */
	CHECK(madvise(p + 5 * PG, PG, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));

	struct pageout_call c = {.sp = sp, .p = p, .len = 64 * PG, .ret = -1};
	pthread_t th;

	CHECK(pthread_create(&th, NULL, pageout_main, &c) == 0, "pthread_create");
	for (int i = 0; i < 20000 && !atomic_load(&c.done); i++)
		usleep(1000);
	CHECK(atomic_load(&c.done),
	      "%s%s: MADV_PAGEOUT of a dropped page has not returned in "
	      "20 s",
	      t_delivery_name(delivery), file ? ", a private file page" : "");
	CHECK(pthread_join(th, NULL) == 0 && c.ret == 0, "MADV_PAGEOUT: %s", strerror(errno));
	CHECK(*(volatile char *)(p + 5 * PG) == (file ? 0x33 : 0), "the dropped page reads %#x",
	      *(volatile char *)(p + 5 * PG));
	CHECK(check(p, 5, 4) == 5, "page %zu changed", check(p, 5, 4));
	CHECK(check_at(p, 6, 58, 4) == 64, "page %zu changed", check_at(p, 6, 58, 4));
	CHECK(fl_munmap(sp, p, 64 * PG) == 0, "fl_munmap");
	fl_space_destroy(sp);
	if (file) {
		close(fd);
		unlink(path);
	}
	printf("  %s, %s: MADV_PAGEOUT of a page dropped by the libc madvise returns\n",
	       t_delivery_name(delivery), file ? "a private file mapping" : "anonymous");
}

/*
 * A private copy of a file page that the kernel dropped (the libc madvise),
 * accessed while the file's page is locked by the write-back of a shared
 * mapping of the same page (held back by fl_test_writeback_delay_us): the
 * fault finds the copy present in the table and waits for the page lock as
 * the policy says.  Under bail that is a retry with the VMA lock released,
 * which must not read as "the kernel has the page" (it once did: the fault
 * went on unlocked and released the lock twice).  The access then sees the
 * file's page, the shared mapping's store.
 */
static void present_dropped_page_locked(int delivery, int policy)
{
	struct fl_config cfg;
	char path[] = "/var/tmp/fl-misuse-XXXXXX";
	char buf[PG];
	int fd = mkstemp(path);

	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	memset(buf, 0x33, sizeof(buf));
	for (size_t pg = 0; pg < 16; pg++)
		CHECK(pwrite(fd, buf, PG, (off_t)(pg * PG)) == (ssize_t)PG, "pwrite");
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = policy;
	struct fl_space *sp = t_space_create_cfg(&cfg);
	char *sh = fl_mmap(sp, NULL, 16 * PG, RW, MAP_SHARED, fd, 0);
	char *pv = fl_mmap(sp, NULL, 16 * PG, RW, MAP_PRIVATE, fd, 0);
	struct accessor a = {.p = pv + 3 * PG, .write = false};
	struct t_held_writeback w = {.sp = sp, .p = sh + 3 * PG, .len = PG};
	char what[96];

	CHECK(sh != MAP_FAILED && pv != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	snprintf(what, sizeof(what), "%s, %s: a dropped private copy of a locked file page",
		 t_delivery_name(delivery), fl_policy_name(policy));
	/* The file's page into the cache first (a read through the shared
	 * mapping), so that the store below is one minor fault: a store that
	 * misses the cache faults twice (missing, then minor once the read
	 * has the page in). */
	CHECK(sh[3 * PG] == 0x33, "the file's page");
	pv[3 * PG] = 0x44; /* the private copy */
	sh[3 * PG] = 0x55; /* the file's page, dirty */
	t_held_writeback_start(&w, 300);
	/* Dropped only now, with the file's page locked: a fault of the
	 * store above whose continuation still runs (seen: the first of two)
	 * cannot map the file's page in before the access, as it could while
	 * the page was unlocked. */
	CHECK(madvise(pv + 3 * PG, PG, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
	uint64_t parked = t_stats(sp).parked, faults = t_stats(sp).faults;

	access_bounded(sp, &a, what);
	CHECK(a.seen == 0x55, "%s: read %#x, the file's page has 0x55", what, a.seen);
	CHECK(t_stats(sp).faults > faults, "%s: the access did not fault", what);
	CHECK(t_stats(sp).parked > parked, "%s: the access did not wait for the page lock", what);
	CHECK(t_held_writeback_join(&w) == 0, "%s: fl_msync", what);
	CHECK(fl_munmap(sp, sh, 16 * PG) == 0 && fl_munmap(sp, pv, 16 * PG) == 0, "fl_munmap");
	fl_space_destroy(sp);
	close(fd);
	unlink(path);
	printf("  %s: waited, then the file's page\n", what);
}

/* ------------------------------------------- the libc munmap of a region */

enum { R_PAGES = 256, S_PAGES = 256, BUDGET = 128 };

static void evict_all(struct fl_space *sp, char *p, size_t pages)
{
	for (int pass = 0; pass < 100; pass++) {
		CHECK(fl_madvise(sp, p, pages * PG, MADV_PAGEOUT) == 0, "pageout: %s",
		      strerror(errno));
		if (t_stats(sp).resident_pages == 0)
			return;
		usleep(2000);
	}
}

/*
 * Wait until reclaim has brought the space under its budget and stopped:
 * the munmap below must not meet the evictor copying one of the region's
 * pages, the one moment README's "Misuse" says is not covered.
 */
static void reclaim_settle(struct fl_space *sp)
{
	uint64_t last = UINT64_MAX;

	for (int i = 0; i < 500; i++) {
		struct fl_stats st = t_stats(sp);
		uint64_t now = st.swap_outs + st.clean_drops + st.resident_pages;

		if (now == last && st.resident_pages <= BUDGET)
			return;
		last = now;
		usleep(20000);
	}
	CHECK(0, "reclaim never settled under the budget");
}

/*
 * how: 0 the region is left unmapped; 1 someone else maps plain memory
 * there with data of its own; 2 the same, the region made PROT_NONE first
 * (eviction copies such a page through /proc/self/mem).
 */
static void libc_munmap(int delivery, int how)
{
	static const char *const how_name[] = {"left unmapped", "mapped again by someone else",
					       "PROT_NONE, then mapped again by someone else"};
	struct fl_space *sp = space(delivery, BUDGET);
	char *r = fl_mmap(sp, NULL, R_PAGES * PG, RW, ANON, -1, 0);
	char *s = fl_mmap(sp, NULL, S_PAGES * PG, RW, ANON, -1, 0);
	struct fl_stats st;
	char *f;

	CHECK(r != MAP_FAILED && s != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	fill(r, R_PAGES, 4);
	fill(s, S_PAGES, 5);
	/* Half of r back in memory, dirty, and a quarter clean (read back
	 * from the store: installed write-protected, dropped without a write
	 * when evicted). */
	evict_all(sp, r, R_PAGES);
	fill(r, R_PAGES / 2, 4);
	CHECK(check_at(r, R_PAGES / 2, R_PAGES / 4, 4) == R_PAGES * 3 / 4, "r read back");
	if (how == 2)
		CHECK(fl_mprotect(sp, r, R_PAGES * PG, PROT_NONE) == 0, "fl_mprotect: %s",
		      strerror(errno));
	reclaim_settle(sp);

	/* The misuse. */
	CHECK(munmap(r, R_PAGES * PG) == 0, "munmap: %s", strerror(errno));
	f = r;
	if (how) {
		f = mmap(r, R_PAGES * PG, RW, ANON | MAP_FIXED, -1, 0);
		CHECK(f == r, "mmap over the unmapped region: %s", strerror(errno));
		fill(f, R_PAGES, 6);
	}

	/* Reclaim meets r's pages: s is read twice over, against a budget
	 * of half of it. */
	for (int round = 0; round < 2; round++)
		CHECK(check(s, S_PAGES, 5) == S_PAGES, "s lost page %zu", check(s, S_PAGES, 5));
	if (how)
		CHECK(check(f, R_PAGES, 6) == R_PAGES,
		      "reclaim changed the new owner's page %zu (it zapped someone else's "
		      "memory)",
		      check(f, R_PAGES, 6));
	CHECK(fl_madvise(sp, r, R_PAGES * PG, MADV_PAGEOUT) == -1 && errno == ENOMEM,
	      "fl_madvise(MADV_PAGEOUT) of the lost region: errno %d, expected ENOMEM", errno);
	CHECK(fl_madvise(sp, r, R_PAGES * PG, MADV_DONTNEED) == -1 && errno == ENOMEM,
	      "fl_madvise(MADV_DONTNEED) of the lost region: errno %d, expected ENOMEM", errno);
	CHECK(fl_mprotect(sp, r, R_PAGES * PG, PROT_READ) == -1 && errno == ENOMEM,
	      "fl_mprotect of the lost region: errno %d, expected ENOMEM", errno);
	CHECK(!maps_has(sp, r, R_PAGES * PG), "fl_maps still lists the lost region");
	CHECK(fl_munmap(sp, r, R_PAGES * PG) == 0, "fl_munmap of the lost region: %s",
	      strerror(errno));
	st = t_stats(sp);
	CHECK(st.stale_drops >= 1, "stale_drops %llu", (unsigned long long)st.stale_drops);
	CHECK(check(s, S_PAGES, 5) == S_PAGES, "s lost page %zu", check(s, S_PAGES, 5));
	if (how)
		CHECK(check(f, R_PAGES, 6) == R_PAGES,
		      "the new owner's page %zu changed (faultline touched its mapping)",
		      check(f, R_PAGES, 6));
	fl_space_destroy(sp);
	if (how) {
		CHECK(check(f, R_PAGES, 6) == R_PAGES,
		      "destroy changed the new owner's page %zu (or unmapped it)",
		      check(f, R_PAGES, 6));
		CHECK(munmap(f, R_PAGES * PG) == 0, "munmap");
	}
	printf("  %s: the libc munmap of a region, %s: dropped (stale_drops %llu), nothing "
	       "else touched\n",
	       t_delivery_name(delivery), how_name[how], (unsigned long long)st.stale_drops);
}

/* ------------------------------------------------------------- handles */

static void dead_handles(int delivery)
{
	struct fl_space *sp = space(delivery, 0);
	char *p = fl_mmap(sp, NULL, 4 * PG, RW, ANON, -1, 0);
	static char junk[4096] __attribute__((aligned(64)));
	struct fl_space *bad[2] = {sp, (struct fl_space *)junk};
	struct fl_stats st;
	FILE *null = fopen("/dev/null", "w");

	CHECK(p != MAP_FAILED && null, "fl_mmap: %s", strerror(errno));
	p[0] = 1;
	fl_space_destroy(sp);
	memset(junk, 0x5a, sizeof(junk));
	for (int i = 0; i < 2; i++) {
		const char *what = i ? "a made-up handle" : "a destroyed handle";
		errno = 0;
		CHECK(fl_mmap(bad[i], NULL, PG, RW, ANON, -1, 0) == MAP_FAILED && errno == EINVAL,
		      "fl_mmap on %s: errno %d", what, errno);
		errno = 0;
		CHECK(fl_munmap(bad[i], p, PG) == -1 && errno == EINVAL,
		      "fl_munmap on %s: errno %d", what, errno);
		errno = 0;
		CHECK(fl_mprotect(bad[i], p, PG, PROT_READ) == -1 && errno == EINVAL,
		      "fl_mprotect on %s: errno %d", what, errno);
		errno = 0;
		CHECK(fl_madvise(bad[i], p, PG, MADV_DONTNEED) == -1 && errno == EINVAL,
		      "fl_madvise on %s: errno %d", what, errno);
		CHECK(fl_maps(bad[i], null) == -EINVAL, "fl_maps on %s", what);
		CHECK(fl_stats(bad[i], &st) == -EINVAL, "fl_stats on %s", what);
		CHECK(fl_stats_print(bad[i], null, 0) == -EINVAL, "fl_stats_print on %s", what);
		fl_space_destroy(bad[i]); /* logged, nothing done */
		fl_space_destroy(bad[i]);
	}
	fclose(null);
	printf("  %s: calls on a destroyed or made-up handle fail with EINVAL, destroy twice "
	       "does nothing\n",
	       t_delivery_name(delivery));
}

/* A toucher's SIGSEGV after destroy: the region is gone, as after munmap. */
static _Thread_local sigjmp_buf *volatile segv_jb;
static _Thread_local void *volatile segv_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	if (segv_jb) {
		segv_addr = si->si_addr;
		siglongjmp(*segv_jb, 1);
	}
	signal(SIGSEGV, SIG_DFL); /* not ours: die of it */
}

enum { D_PAGES = 512, D_TOUCHERS = 2, D_CALLERS = 2 };

struct toucher {
	pthread_t th;
	char *p;
	int k; /* its pages: those with pg % D_TOUCHERS == k */
	uint64_t seed;
	atomic_long accesses;
	bool segv;
	void *segv_at;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	struct t_rng rng;
	sigjmp_buf jb;

	t_rng_init(&rng, t->seed);
	if (sigsetjmp(jb, 1)) {
		segv_jb = NULL;
		t->segv = true;
		t->segv_at = segv_addr;
		return NULL;
	}
	segv_jb = &jb;
	for (;;) {
		size_t pg = t_below(&rng, D_PAGES / D_TOUCHERS) * D_TOUCHERS + (size_t)t->k;
		volatile uint64_t *w = (volatile uint64_t *)(t->p + pg * PG);
		if (t_chance(&rng, 30))
			*w = pg;
		else
			(void)*w;
		atomic_fetch_add(&t->accesses, 1);
	}
}

struct caller {
	pthread_t th;
	struct fl_space *sp;
	char *p;
	atomic_long calls;
	int last_errno;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	struct fl_stats st;

	for (long i = 0;; i++) {
		int r = fl_madvise(c->sp, c->p + (size_t)(i % 64) * PG, 8 * PG,
				   i % 3 ? MADV_PAGEOUT : MADV_COLD);
		if (r) {
			c->last_errno = errno;
			break;
		}
		if (fl_stats(c->sp, &st) == -EINVAL) {
			c->last_errno = EINVAL;
			break;
		}
		atomic_fetch_add(&c->calls, 1);
	}
	return NULL;
}

static void destroy_while_used(int delivery, struct t_rng *rng)
{
	struct fl_space *sp = space(delivery, D_PAGES / 4);
	char *p = fl_mmap(sp, NULL, D_PAGES * PG, RW, ANON, -1, 0);
	struct toucher t[D_TOUCHERS];
	struct caller c[D_CALLERS];
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction");
	for (int i = 0; i < D_TOUCHERS; i++) {
		t[i] = (struct toucher){.p = p, .k = i, .seed = t_rand(rng)};
		CHECK(pthread_create(&t[i].th, NULL, toucher_main, &t[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < D_CALLERS; i++) {
		c[i] = (struct caller){.sp = sp, .p = p};
		CHECK(pthread_create(&c[i].th, NULL, caller_main, &c[i]) == 0, "pthread_create");
	}
	/* Until every thread is well under way (swap-ins in flight). */
	for (int i = 0; i < D_TOUCHERS; i++)
		while (atomic_load(&t[i].accesses) < 2000 && !t[i].segv)
			usleep(1000);
	for (int i = 0; i < D_CALLERS; i++)
		while (atomic_load(&c[i].calls) < 20 && !c[i].last_errno)
			usleep(1000);
	fl_space_destroy(sp);
	for (int i = 0; i < D_TOUCHERS; i++) {
		CHECK(pthread_join(t[i].th, NULL) == 0, "pthread_join");
		CHECK(t[i].segv, "toucher %d ended without SIGSEGV", i);
		CHECK((char *)t[i].segv_at >= p && (char *)t[i].segv_at < p + D_PAGES * PG,
		      "toucher %d: SIGSEGV at %p, outside the region %p", i, t[i].segv_at,
		      (void *)p);
	}
	for (int i = 0; i < D_CALLERS; i++) {
		CHECK(pthread_join(c[i].th, NULL) == 0, "pthread_join");
		CHECK(c[i].last_errno == EINVAL, "caller %d: the call after destroy failed with %d",
		      i, c[i].last_errno);
	}
	signal(SIGSEGV, SIG_DFL);
	printf("  %s + swap: destroy while %d threads fault in the region and %d call the API: "
	       "they get SIGSEGV in the region and EINVAL (%ld, %ld accesses before)\n",
	       t_delivery_name(delivery), D_TOUCHERS, D_CALLERS, atomic_load(&t[0].accesses),
	       atomic_load(&t[1].accesses));
}

/* ------------------------------------------------ fl_maps into a region */

enum { M_VMAS = 3000, M_BUF_PAGES = 128 };

struct toggler {
	struct fl_space *sp;
	char *p;
	atomic_int stop;
	long n;
};

static void *toggler_main(void *arg)
{
	struct toggler *t = arg;

	while (!atomic_load(&t->stop)) {
		CHECK(fl_mprotect(t->sp, t->p, PG, t->n++ % 2 ? PROT_READ : PROT_NONE) == 0,
		      "fl_mprotect: %s", strerror(errno));
		/* A writer that never pauses starves the readers of the
		 * fair lock (slowly, under the sanitizers): often enough to
		 * be queued during an fl_maps(), no more. */
		usleep(50);
	}
	return NULL;
}

/*
 * fl_maps() to a FILE whose buffer lies in a region of the same space,
 * while another thread's fl_mprotect() keeps queueing for the space lock.
 * Under the mmap policy every fault takes that lock for read: a fault on
 * the buffer while fl_maps() held it would wait behind the queued writer,
 * which waits for fl_maps().  In a child, with a watchdog.
 */
static void __attribute__((noreturn)) maps_child(int delivery)
{
	struct fl_config cfg;
	struct fl_space *sp;
	struct toggler t = {0};
	pthread_t th;
	char *buf;
	FILE *f;

	alarm(60);
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = FL_POLICY_MMAP;
	sp = t_space_create_cfg(&cfg);
	for (int i = 0; i < M_VMAS; i++) /* alternate: no two merge */
		CHECK(fl_mmap(sp, NULL, PG, i % 2 ? PROT_READ : RW, ANON, -1, 0) != MAP_FAILED,
		      "fl_mmap: %s", strerror(errno));
	buf = fl_mmap(sp, NULL, M_BUF_PAGES * PG, RW, ANON, -1, 0);
	t.sp = sp;
	t.p = fl_mmap(sp, NULL, PG, PROT_NONE, ANON, -1, 0);
	CHECK(buf != MAP_FAILED && t.p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	f = fopen("/dev/null", "w");
	CHECK(f && setvbuf(f, buf, _IOFBF, M_BUF_PAGES * PG) == 0, "setvbuf");
	CHECK(pthread_create(&th, NULL, toggler_main, &t) == 0, "pthread_create");
	for (int round = 0; round < 8; round++) {
		CHECK(fl_maps(sp, f) == 0, "fl_maps");
		CHECK(fflush(f) == 0, "fflush");
		/* The buffer's pages fault again next round. */
		CHECK(fl_madvise(sp, buf, M_BUF_PAGES * PG, MADV_DONTNEED) == 0, "dontneed");
	}
	atomic_store(&t.stop, 1);
	CHECK(pthread_join(th, NULL) == 0, "pthread_join");
	fclose(f);
	fl_space_destroy(sp);
	_exit(0);
}

/* Run child(delivery) in a child process.  Return: its wait status. */
static int in_child(void (*child)(int), int delivery)
{
	pid_t pid = t_fork();

	if (pid == 0)
		child(delivery);
	return t_wait(pid);
}

static void maps_into_region(int delivery)
{
	int status = in_child(maps_child, delivery);
	CHECK(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM,
	      "%s: fl_maps() into a region deadlocked behind a writer queued on the lock it "
	      "held (the watchdog fired)",
	      t_delivery_name(delivery));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the child %s %d",
	      t_delivery_name(delivery), WIFEXITED(status) ? "exited with" : "died of signal",
	      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	printf("  %s, mmap policy: fl_maps() of %d VMAs into a FILE buffered in a region, with "
	       "a writer queued: no deadlock\n",
	       t_delivery_name(delivery), M_VMAS);
}

/* ------------------------------------- the libc mprotect of a region */

static void on_segv_exit(int sig)
{
	_exit(42);
}

/*
 * The libc mprotect of a read-only region to read-write (unsupported): the
 * kernel lets a store fault in, faultline's VMA forbids it.  The store gets
 * SIGSEGV (the child exits 42 from its handler) instead of faulting for
 * ever; in a child, with a watchdog.
 */
static void __attribute__((noreturn)) mprotect_child(int delivery)
{
	struct fl_config cfg;
	struct fl_space *sp;
	char *p;

	alarm(30);
	signal(SIGSEGV, on_segv_exit);
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	sp = t_space_create_cfg(&cfg);
	p = fl_mmap(sp, NULL, 64 * PG, PROT_READ, ANON, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	CHECK(mprotect(p, 64 * PG, RW) == 0, "mprotect: %s", strerror(errno));
	p[40 * PG] = 1; /* an untouched page: a fault that faultline refuses */
	_exit(3);
}

static void libc_mprotect(int delivery)
{
	int status = in_child(mprotect_child, delivery);
	CHECK(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM,
	      "%s: a store that the libc mprotect allowed and faultline does not faulted for "
	      "ever (the watchdog fired)",
	      t_delivery_name(delivery));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42,
	      "%s: the child %s %d, expected exit 42 (its SIGSEGV handler)",
	      t_delivery_name(delivery), WIFEXITED(status) ? "exited with" : "died of signal",
	      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	printf("  %s: a store the libc mprotect allowed and faultline's VMA forbids: SIGSEGV\n",
	       t_delivery_name(delivery));
}

/* FL_TEST_CASE=name[,name...] runs only the cases with those names. */
static bool want_case(const char *name)
{
	const char *only = getenv("FL_TEST_CASE");
	size_t n = strlen(name);

	if (!only || !*only)
		return true;
	for (const char *p = only; (p = strstr(p, name)); p += n)
		if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct t_rng rng;
	static const int deliveries[] = {FL_DELIVERY_THREAD, FL_DELIVERY_SIGBUS};

	seed = t_seed_init(argc, argv, "test_misuse");
	t_rng_init(&rng, seed);
	/* In children, first, while this process has had no space: liburcu's
	 * helper threads, which a space needs, are not in a child of fork(). */
	for (size_t d = 0; d < ARRAY_SIZE(deliveries); d++) {
		if (want_case("maps"))
			maps_into_region(deliveries[d]);
		if (want_case("mprotect"))
			libc_mprotect(deliveries[d]);
	}
	for (size_t d = 0; d < ARRAY_SIZE(deliveries); d++) {
		int delivery = deliveries[d];

		if (want_case("refused")) {
			two_spaces_refused(delivery, 0);
			two_spaces_refused(delivery, 64);
		}
		if (want_case("race"))
			two_spaces_race(delivery, &rng);
		for (int w = 0; w < 2 && want_case("repair"); w++) {
			present_but_dropped(delivery, 0, w);
			present_but_dropped(delivery, 1024, w);
		}
		for (int file = 0; file < 2 && want_case("repair-pageout"); file++)
			pageout_dropped(delivery, file);
		for (int pol = 0; pol < FL_POLICY_NR && want_case("repair-locked"); pol++)
			present_dropped_page_locked(delivery, pol);
		for (int how = 0; how < 3; how++)
			if (want_case(how == 0	 ? "munmap"
				      : how == 1 ? "munmap-reused"
						 : "munmap-protnone"))
				libc_munmap(delivery, how);
		if (want_case("handles"))
			dead_handles(delivery);
		if (want_case("destroy"))
			destroy_while_used(delivery, &rng);
	}
	printf("test_misuse: ok\n");
	return T_EXIT_PASS;
}
