// SPDX-License-Identifier: MIT
/*
 * Swap readahead (each run of consecutive slots read as one vectored I/O) and
 * the swap-cache fault-around (a fault on a read-ahead page also maps the
 * read-ahead pages after it whose reads finished), under both deliveries and
 * several policies:
 *   1. a region paged out with MADV_PAGEOUT and read back in address order
 *      comes back intact, and the counters prove the two features: every page
 *      is read exactly once (no memory pressure), few of them by a fault of
 *      their own, in few I/Os, and far fewer faults than pages;
 *   2. a read error injected on one slot inside a readahead batch (the batch
 *      fails, its pages are read again one by one): exactly that page gets
 *      SIGBUS, again on every access, until MADV_DONTNEED; every other page
 *      of the batch and around it reads back intact; read_errors and
 *      pages_poisoned count one each.  Batches started by the fault stream
 *      and by MADV_WILLNEED (bad slot first, in the middle, last), where the
 *      I/O count shows the one vectored read and the re-reads;
 *   3. the space destroyed (or the region unmapped) while readahead batches
 *      are in flight, failing ones included: no crash, no frame or slot left
 *      behind (ASan checks the heap at exit).
 * The counts are exact where nothing races (no pressure: nothing is reclaimed),
 * and loose bounds elsewhere (fault counts: a reader that catches up with a
 * completion being delivered faults more); no check depends on timing but
 * the last: with a 20 ms device delay, some destroy must find I/O in flight.
 */
#include "pgtable.h"
#include "space.h"
#include "swap.h"
#include "swapdev.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "util.h"

#define PG 4096UL
#define NPAGES 1024 /* 16 page-table chunks of 64 pages */
#define CHUNK 64
#define RA_MAX 256	/* fault_around_max: the largest readahead window */
#define DELAY_US 20000u /* part 3: emulated device latency, to keep I/O in flight */

static uint64_t salt;

static sigjmp_buf jb;
static volatile sig_atomic_t expecting; /* inside read_faults() */
static void *volatile bus_addr;
static char *region; /* the region being checked, for the message below */

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	bus_addr = si->si_addr;
	if (expecting)
		siglongjmp(jb, 1);
	/* A page that should read back fine is poisoned. */
	fprintf(stderr,
		"unexpected SIGBUS (code %d) at %p: page %ld of the region, seed %" PRIu64 "\n",
		si->si_code, si->si_addr, region ? ((char *)si->si_addr - region) / (long)PG : -1L,
		*t_seed_ptr());
	_exit(T_EXIT_FAIL);
}

/* Whether reading at a gets SIGBUS (and, if so, for that page). */
static int read_faults(volatile const char *a)
{
	bus_addr = NULL;
	if (sigsetjmp(jb, 1)) {
		expecting = 0;
		CHECK((uintptr_t)bus_addr / PG == (uintptr_t)a / PG,
		      "SIGBUS at %p for an access at %p", bus_addr, (const void *)a);
		return 1;
	}
	expecting = 1;
	(void)*a;
	expecting = 0;
	return 0;
}

static uint64_t word(size_t page, size_t i)
{
	uint64_t x = salt ^ (page << 20) ^ i;

	return t_splitmix64(&x) | 1; /* never an all-zero page */
}

static void fill(char *p, size_t page)
{
	for (size_t i = 0; i < PG / 8; i++)
		((uint64_t *)(p + page * PG))[i] = word(page, i);
}

static void verify(const char *p, size_t page, const char *what)
{
	const uint64_t *w = (const uint64_t *)(p + page * PG);

	for (size_t i = 0; i < PG / 8; i++)
		CHECK(w[i] == word(page, i), "%s: page %zu word %zu: %#llx, expected %#llx", what,
		      page, i, (unsigned long long)w[i], (unsigned long long)word(page, i));
}

static uint64_t pte_at(struct fl_space *sp, const char *a)
{
	struct pt_chunk *c = pt_chunk_lookup(sp, (unsigned long)a);

	return c ? atomic_load(&c->pte[pt_index((unsigned long)a)]) : 0;
}

static uint32_t slot_of(struct fl_space *sp, const char *a)
{
	uint64_t pte = pte_at(sp, a);

	CHECK(pte_type(pte) == PTE_SWAP, "page at %p is not swapped out: %#llx", (const void *)a,
	      (unsigned long long)pte);
	return pte_value(pte);
}

/* Store I/Os submitted so far (reads and writes, async and sync). */
static uint64_t ios(struct fl_space *sp)
{
	return atomic_load(&sp->dev.inflight_samples);
}

static void stats(struct fl_space *sp, struct fl_stats *st)
{
	CHECK(fl_stats(sp, st) == 0, "fl_stats");
}

#define D(a, b, f) ((unsigned long long)((b).f - (a).f))

/* The configuration of every space here: the defaults, whatever the
 * environment says. */
static void config(struct fl_config *cfg, int delivery, int policy, unsigned int delay_us)
{
	CHECK(fl_config_init(cfg) == 0, "fl_config_init");
	cfg->delivery = delivery;
	cfg->policy = policy;
	/* Four times the region: it is read back with nothing reclaimed. */
	cfg->mem_limit = 4 * NPAGES * PG;
	cfg->swap_frames = NPAGES;
	cfg->fault_around = 16;
	cfg->fault_around_max = RA_MAX;
	cfg->watermark = 0;
	cfg->swap_delay_us = delay_us;
}

static struct fl_space *space(int delivery, int policy)
{
	struct fl_config cfg;

	config(&cfg, delivery, policy, 0);
	return t_space_create_cfg(&cfg);
}

static char *map_filled(struct fl_space *sp, size_t n)
{
	char *p = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			  0);

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < n; i++)
		fill(p, i);
	region = p;
	return p;
}

/* Page out the n pages at p and wait until the writes are done. */
static void evict(struct fl_space *sp, char *p, size_t n)
{
	struct fl_stats st;
	size_t left = n;

	for (int pass = 0; pass < 200 && left; pass++) {
		CHECK(fl_madvise(sp, p, n * PG, MADV_PAGEOUT) == 0, "pageout: %s", strerror(errno));
		for (int i = 0; i < 5000; i++) {
			stats(sp, &st);
			if (!st.frames_used)
				break;
			usleep(1000);
		}
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += pte_type(pte_at(sp, p + i * PG)) != PTE_SWAP;
	}
	CHECK(!left, "%zu of %zu pages not swapped out after repeated MADV_PAGEOUT", left, n);
}

/* The pages [a, b) have consecutive slots: a readahead reads them as one run. */
static void check_consecutive(struct fl_space *sp, char *p, size_t a, size_t b)
{
	uint32_t s0 = slot_of(sp, p + a * PG);

	for (size_t i = a + 1; i < b; i++)
		CHECK(slot_of(sp, p + i * PG) == s0 + (i - a),
		      "pages %zu..%zu: slot of page %zu is %u, not %u (eviction did not give "
		      "consecutive slots)",
		      a, b, i, slot_of(sp, p + i * PG), (unsigned)(s0 + (i - a)));
}

/*
 * The counters since a, once the completions of `reads` store reads have been
 * counted: a read's completion counts it just after it makes the page
 * available, so a fast reader can be done before the count is.
 */
static void settle(struct fl_space *sp, const struct fl_stats *a, uint64_t reads,
		   struct fl_stats *b)
{
	for (int i = 0;; i++) {
		stats(sp, b);
		if (D(*a, *b, swap_ins) + D(*a, *b, read_errors) >= reads)
			return;
		CHECK(i < 10000, "%llu reads counted after 10 s, want %llu: %llu in, %llu failed",
		      D(*a, *b, swap_ins) + D(*a, *b, read_errors), (unsigned long long)reads,
		      D(*a, *b, swap_ins), D(*a, *b, read_errors));
		usleep(1000);
	}
}

/* After munmap every frame and slot must come back (no I/O is left). */
static void check_nothing_left(struct fl_space *sp, const char *what)
{
	struct fl_stats st;

	for (int i = 0; i < 10000; i++) {
		stats(sp, &st);
		if (!st.frames_used && !st.store_bytes && !atomic_load(&sp->dev.inflight))
			return;
		usleep(1000);
	}
	CHECK(0, "%s: %llu frames and %llu store bytes left after munmap, %ld I/Os in flight", what,
	      (unsigned long long)st.frames_used, (unsigned long long)st.store_bytes,
	      (long)atomic_load(&sp->dev.inflight));
}

/* ---- 1. sequential swap-in ------------------------------------------- */

static void run_sequential(int delivery, int policy, struct t_rng *rng)
{
	struct fl_space *sp = space(delivery, policy);
	char *p = map_filled(sp, NPAGES);
	struct fl_stats a, b;

	evict(sp, p, NPAGES);
	stats(sp, &a);
	uint64_t io0 = ios(sp);
	for (size_t i = 0; i < NPAGES; i++)
		verify(p, i, "sequential read-back");
	uint64_t nio = ios(sp) - io0;
	settle(sp, &a, NPAGES, &b);

	printf("%-6s %-8s sequential: %llu pages, faults %llu (major %llu, minor %llu), "
	       "fault-around %llu, swap-ins %llu in %llu I/Os, parked %llu\n",
	       t_delivery_name(delivery), fl_policy_name(policy), (unsigned long long)NPAGES,
	       D(a, b, faults), D(a, b, faults_major), D(a, b, faults_minor),
	       D(a, b, fault_around_pages), D(a, b, swap_ins), (unsigned long long)nio,
	       D(a, b, parked));
	/* No pressure: every page read once, none wasted, none failed. */
	CHECK(D(a, b, swap_ins) == NPAGES && D(a, b, reads_wasted) == 0,
	      "swap-ins %llu for %d pages, %llu wasted", D(a, b, swap_ins), NPAGES,
	      D(a, b, reads_wasted));
	CHECK(D(a, b, read_errors) == 0 && D(a, b, pages_poisoned) == 0, "errors");
	CHECK(D(a, b, reclaim_direct) == 0 && D(a, b, reclaim_background) == 0,
	      "reclaim under no pressure");
	/*
	 * Readahead: the windows double (1, 2, 4, .. RA_MAX), so a dozen
	 * faults read from the store themselves; the rest was read ahead.
	 * Without readahead, every page is a major fault.
	 */
	CHECK(D(a, b, faults_major) <= NPAGES / 16, "%llu major faults for %d pages: no readahead?",
	      D(a, b, faults_major), NPAGES);
	/*
	 * The vectored batches: a run is cut at each chunk (64 pages), so
	 * about NPAGES / 64 reads plus the small first windows and the
	 * faults' own.  One read per page without them.
	 */
	CHECK(nio <= NPAGES / 8, "%llu store I/Os for %d pages: readahead not vectored?",
	      (unsigned long long)nio, NPAGES);
	/*
	 * Swap-cache fault-around: a fault on a read-ahead page maps the ready
	 * ones after it, up to the end of its chunk.  Without it every page
	 * faults (a major or a minor fault).  About 30 faults in all; up to
	 * 160 seen on an overloaded machine, when the reader keeps catching
	 * up with batches whose completions are being delivered (it then
	 * parks, and maps only what is up to date): a loose bound here, the
	 * exact count below.
	 */
	CHECK(D(a, b, faults) <= NPAGES / 2 && D(a, b, fault_around_pages) >= NPAGES / 2,
	      "%llu faults (%llu minor), %llu pages mapped by fault-around, for %d pages: no "
	      "swap-cache fault-around?",
	      D(a, b, faults), D(a, b, faults_minor), D(a, b, fault_around_pages), NPAGES);

	/*
	 * Exactly: one chunk paged out again (clean: dropped, each page keeps
	 * its slot), read ahead by MADV_WILLNEED as one batch and complete;
	 * then reading it in order is one minor fault, which maps the other
	 * 63 pages.
	 */
	size_t c0 = (5 + t_below(rng, 10)) * CHUNK;
	evict(sp, p + c0 * PG, CHUNK);
	check_consecutive(sp, p, c0, c0 + CHUNK);
	stats(sp, &a);
	io0 = ios(sp);
	CHECK(fl_madvise(sp, p + c0 * PG, CHUNK * PG, MADV_WILLNEED) == 0, "willneed: %s",
	      strerror(errno));
	settle(sp, &a, CHUNK, &b);
	CHECK(ios(sp) - io0 == 1 && D(a, b, swap_ins) == CHUNK,
	      "MADV_WILLNEED of a chunk: %llu I/Os for %llu swap-ins, want 1 for %d",
	      (unsigned long long)(ios(sp) - io0), D(a, b, swap_ins), CHUNK);
	for (size_t i = c0; i < c0 + CHUNK; i++)
		verify(p, i, "after MADV_WILLNEED");
	stats(sp, &b);
	CHECK(D(a, b, faults) == 1 && D(a, b, faults_minor) == 1 && D(a, b, faults_major) == 0 &&
		      D(a, b, fault_around_pages) == CHUNK - 1,
	      "reading a chunk read ahead: %llu faults (%llu minor, %llu major), %llu pages "
	      "mapped by fault-around; want 1 minor fault and %d",
	      D(a, b, faults), D(a, b, faults_minor), D(a, b, faults_major),
	      D(a, b, fault_around_pages), CHUNK - 1);

	CHECK(fl_munmap(sp, p, NPAGES * PG) == 0, "munmap");
	check_nothing_left(sp, "sequential");
	fl_space_destroy(sp);
}

/* ---- 2. a bad slot inside a readahead batch -------------------------- */

/* Read the region in order: the pages in bad[] get SIGBUS, the rest intact. */
static void read_all_expecting(struct fl_space *sp, char *p, const size_t *bad, int nbad,
			       struct t_rng *rng)
{
	for (size_t i = 0; i < NPAGES; i++) {
		int k;

		for (k = 0; k < nbad && bad[k] != i; k++)
			;
		if (k == nbad) {
			verify(p, i, "around a bad slot");
			continue;
		}
		/* Anywhere in the page; and again: it stays poisoned. */
		CHECK(read_faults(p + i * PG + t_below(rng, PG)),
		      "page %zu, whose slot fails to read, did not get SIGBUS", i);
		CHECK(read_faults(p + i * PG + t_below(rng, PG)), "page %zu got SIGBUS only once",
		      i);
	}
}

/* MADV_DONTNEED lifts the poison: zeros, then new data sticks. */
static void check_unpoison(struct fl_space *sp, char *p, size_t page)
{
	CHECK(fl_madvise(sp, p + page * PG, PG, MADV_DONTNEED) == 0, "dontneed");
	CHECK(!read_faults(p + page * PG) && p[page * PG] == 0 && p[page * PG + PG - 1] == 0,
	      "page %zu still poisoned (or not zero) after MADV_DONTNEED", page);
	fill(p, page);
	verify(p, page, "refilled after poison");
}

/*
 * From a to b, every page of the region was read once, nbad of them from a
 * bad slot: each of those poisoned its page and only it, every other page
 * was swapped in, nothing read ahead was wasted, and the errors did not
 * stop the stream's readahead.  (The pages of a failed batch are read one
 * by one, each its own completion: a fast reader may fault on each of
 * them, so the total is not bounded.)
 */
static void check_read_through(const struct fl_stats *a, const struct fl_stats *b,
			       unsigned int nbad)
{
	CHECK(D(*a, *b, read_errors) == nbad && D(*a, *b, pages_poisoned) == nbad,
	      "read errors %llu, poisoned %llu: want %u and %u", D(*a, *b, read_errors),
	      D(*a, *b, pages_poisoned), nbad, nbad);
	CHECK(D(*a, *b, swap_ins) == NPAGES - nbad && D(*a, *b, reads_wasted) == 0,
	      "swap-ins %llu (want %u), wasted %llu", D(*a, *b, swap_ins), NPAGES - nbad,
	      D(*a, *b, reads_wasted));
	CHECK(D(*a, *b, faults_major) <= NPAGES / 16, "%llu major faults for %d pages",
	      D(*a, *b, faults_major), NPAGES);
}

/*
 * The batch of the fault stream.  The stream's major faults are at pages 0,
 * 1, 4, 9, 18, 35, 68, 133 and 262 (each reads its page and then a window
 * twice the last); the one at 262 reads 263..518, cut into runs at chunk
 * edges: 263..319 is one batch, and the bad page is inside it.
 */
static void run_stream_error(int delivery, int policy, struct t_rng *rng)
{
	struct fl_space *sp = space(delivery, policy);
	char *p = map_filled(sp, NPAGES);
	size_t victim = 264 + t_below(rng, 318 - 264); /* 264..317 */
	struct fl_stats a, b;

	evict(sp, p, NPAGES);
	check_consecutive(sp, p, 263, 320);
	uint32_t slot = slot_of(sp, p + victim * PG);
	CHECK(swapdev_inject_error(&sp->dev, slot, false, true) == 0, "inject");
	stats(sp, &a);
	for (size_t i = 0; i < victim; i++)
		verify(p, i, "before the bad slot");
	/*
	 * Reached by the reader: the bad page and the next were read ahead
	 * together (both in the swap cache, consecutive slots, one chunk):
	 * one batch, which failed and was read again page by page.
	 */
	CHECK(pte_type(pte_at(sp, p + victim * PG)) != PTE_PRESENT,
	      "page %zu, whose read failed, was mapped (by fault-around?): entry %#llx", victim,
	      (unsigned long long)pte_at(sp, p + victim * PG));
	CHECK(pte_type(pte_at(sp, p + victim * PG)) == PTE_FRAME &&
		      pte_type(pte_at(sp, p + (victim + 1) * PG)) == PTE_FRAME,
	      "pages %zu and %zu were not read ahead (entries %#llx %#llx)", victim, victim + 1,
	      (unsigned long long)pte_at(sp, p + victim * PG),
	      (unsigned long long)pte_at(sp, p + (victim + 1) * PG));
	for (size_t i = 0; i < victim; i++) /* still there, untouched by the error */
		verify(p, i, "before the bad slot, again");
	read_all_expecting(sp, p, &victim, 1, rng);
	settle(sp, &a, NPAGES, &b);
	printf("%-6s %-8s stream, bad slot at page %zu: faults %llu (major %llu), fault-around "
	       "%llu, swap-ins %llu, read errors %llu, poisoned %llu\n",
	       t_delivery_name(delivery), fl_policy_name(policy), victim, D(a, b, faults),
	       D(a, b, faults_major), D(a, b, fault_around_pages), D(a, b, swap_ins),
	       D(a, b, read_errors), D(a, b, pages_poisoned));
	check_read_through(&a, &b, 1);
	CHECK(swapdev_inject_error(&sp->dev, slot, false, false) == 0, "clear");
	/* Poisoned until dropped, even with the slot readable again. */
	CHECK(read_faults(p + victim * PG), "the poison went away by itself");
	check_unpoison(sp, p, victim);
	for (size_t i = 0; i < NPAGES; i++)
		verify(p, i, "at the end");
	CHECK(fl_munmap(sp, p, NPAGES * PG) == 0, "munmap");
	check_nothing_left(sp, "stream error");
	fl_space_destroy(sp);
}

/*
 * MADV_WILLNEED batches, one in each of three chunks, the bad slot first,
 * inside and last.  Nothing faults until they are all done, so the I/O count
 * is exact: one vectored read per batch, then one read per page of it.
 */
static void run_willneed_error(int delivery, int policy, struct t_rng *rng)
{
	struct fl_space *sp = space(delivery, policy);
	char *p = map_filled(sp, NPAGES);
	static const size_t chunks[3] = {3, 7, 12};
	size_t start[3], len[3], victim[3], total = 0;
	uint32_t slot[3];
	struct fl_stats a, b, c;

	evict(sp, p, NPAGES);
	for (int k = 0; k < 3; k++) {
		start[k] = chunks[k] * CHUNK + t_below(rng, 8);
		len[k] = 16 + t_below(rng, 33); /* 16..48: inside the chunk */
		if (k == 0)
			victim[k] = start[k];
		else if (k == 1)
			victim[k] = start[k] + 1 + t_below(rng, len[k] - 2);
		else
			victim[k] = start[k] + len[k] - 1;
		total += len[k];
		check_consecutive(sp, p, start[k], start[k] + len[k]);
		slot[k] = slot_of(sp, p + victim[k] * PG);
		CHECK(swapdev_inject_error(&sp->dev, slot[k], false, true) == 0, "inject");
	}
	stats(sp, &a);
	uint64_t io0 = ios(sp);
	for (int k = 0; k < 3; k++)
		CHECK(fl_madvise(sp, p + start[k] * PG, len[k] * PG, MADV_WILLNEED) == 0,
		      "willneed: %s", strerror(errno));
	settle(sp, &a, total, &b); /* nothing faults meanwhile */
	uint64_t nio = ios(sp) - io0;
	printf("%-6s %-8s willneed, bad slots at pages %zu %zu %zu of %zu+%zu %zu+%zu %zu+%zu: "
	       "%llu I/Os, swap-ins %llu, read errors %llu\n",
	       t_delivery_name(delivery), fl_policy_name(policy), victim[0], victim[1], victim[2],
	       start[0], len[0], start[1], len[1], start[2], len[2], (unsigned long long)nio,
	       D(a, b, swap_ins), D(a, b, read_errors));
	fflush(stdout);
	CHECK(D(a, b, read_errors) == 3 && D(a, b, swap_ins) == total - 3,
	      "read errors %llu (want 3), swap-ins %llu (want %zu)", D(a, b, read_errors),
	      D(a, b, swap_ins), total - 3);
	/* One vectored read per batch (failed), then each of its pages alone. */
	CHECK(nio == total + 3, "%llu I/Os for 3 batches of %zu pages: want %zu",
	      (unsigned long long)nio, total, total + 3);
	/* In the swap cache: the bad pages failed, all the others up to date. */
	for (int k = 0; k < 3; k++)
		for (size_t i = start[k]; i < start[k] + len[k]; i++) {
			uint64_t pte = pte_at(sp, p + i * PG);
			CHECK(pte_type(pte) == PTE_FRAME, "page %zu not in the swap cache: %#llx",
			      i, (unsigned long long)pte);
			struct frame *f = frame_of(sp, pte);
			pthread_mutex_lock(&f->lock);
			unsigned int fl = f->flags;
			pthread_mutex_unlock(&f->lock);
			unsigned int want = i == victim[k] ? FRAME_ERROR : FRAME_UPTODATE;
			CHECK((fl & (FRAME_LOCKED | FRAME_ERROR | FRAME_UPTODATE)) == want,
			      "page %zu: frame flags %#x, want %#x", i, fl, want);
		}
	CHECK(D(a, b, pages_poisoned) == 0, "poisoned before any access");
	read_all_expecting(sp, p, victim, 3, rng);
	settle(sp, &a, NPAGES, &c);
	printf("%-6s %-8s willneed, then read in order: faults %llu (major %llu), fault-around "
	       "%llu, poisoned %llu\n",
	       t_delivery_name(delivery), fl_policy_name(policy), D(b, c, faults),
	       D(b, c, faults_major), D(b, c, fault_around_pages), D(b, c, pages_poisoned));
	check_read_through(&a, &c, 3);
	for (int k = 0; k < 3; k++) {
		CHECK(swapdev_inject_error(&sp->dev, slot[k], false, false) == 0, "clear");
		check_unpoison(sp, p, victim[k]);
	}
	for (size_t i = 0; i < NPAGES; i++)
		verify(p, i, "at the end");
	CHECK(fl_munmap(sp, p, NPAGES * PG) == 0, "munmap");
	check_nothing_left(sp, "willneed error");
	fl_space_destroy(sp);
}

/* ---- 3. destroy with readahead in flight ----------------------------- */

enum { BY_WILLNEED, BY_STREAM, BY_MUNMAP, NMODES };
static const char *mode_names[] = {"willneed", "stream", "willneed+munmap"};

/*
 * Why the destroy with a device delay cannot run here, or NULL.  The delay
 * needs io_uring waits with a timeout (IORING_FEAT_EXT_ARG, Linux 5.11);
 * without them fl_space_create() says -EOPNOTSUPP, which is also what a
 * missing userfaultfd feature gives (ENOTSUP is the same number): only the
 * ring's own feature bits tell the two apart.
 */
static const char *delay_skipped;

static bool io_uring_lacks_ext_arg(void)
{
	struct io_uring_params params = {0};
	struct io_uring ring;

	if (io_uring_queue_init_params(1, &ring, &params))
		return false;
	io_uring_queue_exit(&ring);
	return !(params.features & IORING_FEAT_EXT_ARG);
}

/*
 * Readahead batches in flight (some with a bad slot: their pages are read
 * again from the completion), then the space goes.  With an emulated device
 * delay the batches are certainly in flight at that moment.
 */
static int run_destroy(int delivery, int policy, int mode, unsigned int delay_us, struct t_rng *rng)
{
	struct fl_config cfg;
	struct fl_space *sp;
	size_t bad[4];
	int nbad = 1 + (int)t_below(rng, 4);
	/* The stream's reader stops just after the major fault at page 18 or
	 * 35, which read ahead the next 16 or 32 pages. */
	size_t upto = t_chance(rng, 50) ? 19 : 36;

	config(&cfg, delivery, policy, delay_us);
	int ret = fl_space_create(&cfg, &sp);
	if (ret == -EOPNOTSUPP && delay_us && io_uring_lacks_ext_arg()) {
		delay_skipped = "this kernel's io_uring has no IORING_FEAT_EXT_ARG (Linux 5.11), "
				"which the device delay needs: destroy with a delay not run";
		printf("%s\n", delay_skipped);
		return -1;
	}
	if (ret)
		t_skip_if_refused(ret, &cfg);
	CHECK(ret == 0, "fl_space_create: %s", strerror(-ret));
	char *p = map_filled(sp, NPAGES);
	evict(sp, p, NPAGES);
	for (int k = 0; k < nbad; k++) {
		/* The first in the stream's last window: that batch fails, and
		 * its pages are read again as the space goes. */
		bad[k] = k == 0 && mode == BY_STREAM ? upto + t_below(rng, 16)
						     : t_below(rng, NPAGES);
		uint32_t slot = slot_of(sp, p + bad[k] * PG);
		CHECK(swapdev_inject_error(&sp->dev, slot, false, true) == 0, "inject");
	}
	if (mode == BY_STREAM) {
		for (size_t i = 0; i < upto; i++) {
			int k;
			for (k = 0; k < nbad && bad[k] != i; k++)
				;
			if (k == nbad)
				verify(p, i, "before destroy");
			else
				CHECK(read_faults(p + i * PG), "bad page %zu did not fault", i);
		}
	} else {
		CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_WILLNEED) == 0, "willneed: %s",
		      strerror(errno));
	}
	long inflight = atomic_load(&sp->dev.inflight);
	if (mode == BY_MUNMAP) {
		/* The frames of unmapped pages go when their reads end. */
		CHECK(fl_munmap(sp, p, NPAGES * PG) == 0, "munmap");
		check_nothing_left(sp, "munmap with readahead in flight");
	}
	printf("%-6s %-8s destroy after %s readahead, device delay %u us: %ld I/Os in flight\n",
	       t_delivery_name(delivery), fl_policy_name(policy), mode_names[mode], delay_us,
	       inflight);
	fl_space_destroy(sp);
	return inflight > 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_sigaction = on_bus, .sa_flags = SA_SIGINFO | SA_NODEFER};
	static const int seq_policies[] = {FL_POLICY_MMAP, FL_POLICY_BAIL, FL_POLICY_DROP,
					   FL_POLICY_DROP_VMA, FL_POLICY_HOLD};
	static const int err_policies[] = {FL_POLICY_DROP, FL_POLICY_HOLD};
	uint64_t seed = t_seed_init(argc, argv, "test_swap_readahead");
	struct t_rng rng;
	int destroyed = 0, in_flight = 0, delayed = 0, delayed_in_flight = 0;

	t_rng_init(&rng, seed);
	salt = t_rand(&rng);
	/* Before any sigbus space: faultline keeps it and forwards to it. */
	sigaction(SIGBUS, &sa, NULL);
	for (int d = 0; d < 2; d++) {
		int delivery = d ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;

		for (size_t i = 0; i < sizeof(seq_policies) / sizeof(seq_policies[0]); i++)
			run_sequential(delivery, seq_policies[i], &rng);
		for (size_t i = 0; i < sizeof(err_policies) / sizeof(err_policies[0]); i++) {
			run_stream_error(delivery, err_policies[i], &rng);
			run_willneed_error(delivery, err_policies[i], &rng);
		}
		for (int mode = 0; mode < NMODES; mode++)
			for (int delay = 0; delay < 2; delay++) {
				int policy = (int)t_below(&rng, 5);
				int f = run_destroy(delivery, policy, mode, delay ? DELAY_US : 0,
						    &rng);
				if (f < 0)
					continue;
				destroyed++;
				in_flight += f;
				if (delay) {
					delayed++;
					delayed_in_flight += f;
				}
			}
	}
	printf("%d spaces destroyed after readahead, %d of them with I/O in flight\n", destroyed,
	       in_flight);
	/* Each I/O takes DELAY_US there: the last batches cannot have finished
	 * by the time MADV_WILLNEED returns (unless this thread lost the CPU
	 * for that long, every time). */
	CHECK(!delayed || delayed_in_flight > 0,
	      "no readahead in flight at destroy in %d runs with a %u us device delay", delayed,
	      DELAY_US);
	if (delay_skipped) {
		printf("SKIP: everything passed but a part not run: %s\n", delay_skipped);
		return T_EXIT_SKIP;
	}
	return T_EXIT_PASS;
}
