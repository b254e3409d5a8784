// SPDX-License-Identifier: MIT
/*
 * Destroying a space with store I/O in flight neither leaks nor crashes, and
 * every page read back before it is right.  Each round fills a region four
 * times the budget (every word of a page encodes its round, page and
 * version), pages it all out, reads a random sample of pages back through
 * the store and checks each whole, then destroys the space in one of three
 * ways, each in both deliveries and under a random policy:
 *
 *   - writes on the real store: every page is checked as it is rewritten,
 *     then MADV_PAGEOUT and the destroy at once.  Whether a write was still
 *     in flight is printed, not required: the device may be quick;
 *   - writes in flight, proven: with a 10 ms emulated store latency
 *     (cfg.swap_delay_us), the sample rewritten and paged out; the device
 *     counts I/O in flight and no write has completed;
 *   - reads in flight, proven: with the same latency, every write done
 *     first, then MADV_WILLNEED; the device counts I/O in flight, and the
 *     frames taken for the reads outnumber the reads completed.
 *
 * "Proven" means: the check runs after the I/O was submitted and the destroy
 * is called before the first of those I/Os can complete (its submission plus
 * the latency: the device delivers no completion earlier).  A round whose
 * thread lost the CPU past that point still destroys its space, and runs
 * again with a new one.  Run under ASan this also checks for leaks (frames,
 * waiters, slots are freed with the space).
 */
#define _GNU_SOURCE
#include "space.h"

#include <sys/mman.h>

#include "util.h"

#define PG 4096UL
#define NPAGES 1024
#define LIMIT_PAGES 256
#define SAMPLE 8
#define DELAY_US 10000u
#define DELAY_NS ((uint64_t)DELAY_US * 1000)
#define TRIES 5 /* runs of a round that missed its window, at most */

enum kind { WRITES_REAL, WRITES_DELAYED, READS_DELAYED, NKINDS };

static const char *const kind_names[] = {"writes, real store", "writes in flight (10 ms)",
					 "reads in flight (10 ms)"};

static uint64_t word(uint64_t seed, int round, size_t page, unsigned int version, size_t w)
{
	uint64_t x = seed ^ ((uint64_t)round << 48) ^ ((uint64_t)page << 24) ^
		     ((uint64_t)version << 16) ^ w;

	return t_splitmix64(&x);
}

static void fill(char *p, uint64_t seed, int round, size_t page, unsigned int version)
{
	uint64_t *q = (uint64_t *)(p + page * PG);

	for (size_t w = 0; w < PG / 8; w++)
		q[w] = word(seed, round, page, version, w);
}

static void check_page(const char *p, uint64_t seed, int round, size_t page, unsigned int version,
		       const char *when)
{
	const uint64_t *q = (const uint64_t *)(p + page * PG);

	for (size_t w = 0; w < PG / 8; w++)
		CHECK(q[w] == word(seed, round, page, version, w),
		      "round %d, %s: page %zu word %zu is %#" PRIx64 ", want %#" PRIx64
		      " (version %u)",
		      round, when, page, w, q[w], word(seed, round, page, version, w), version);
}

/* No I/O in flight and no frame in use: every write and read has ended. */
static void wait_idle(struct fl_space *sp)
{
	uint64_t t0 = fl_now_ns();

	while (atomic_load(&sp->dev.inflight) || t_stats(sp).frames_used) {
		CHECK(fl_now_ns() - t0 < 10 * 1000000000ull, "store I/O never went idle");
		usleep(200);
	}
}

/* Everything out to the store, as far as frames allow per call. */
static void page_out_all(struct fl_space *sp, char *p)
{
	for (int k = 0; t_stats(sp).resident_pages; k++) {
		CHECK(k < 100, "%" PRIu64 " pages stay resident", t_stats(sp).resident_pages);
		CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout: %s",
		      strerror(errno));
		wait_idle(sp);
	}
}

/* SAMPLE distinct pages, in random order. */
static void pick_sample(struct t_rng *rng, size_t *sample)
{
	for (int i = 0; i < SAMPLE; i++) {
		bool dup;

		do {
			sample[i] = t_below(rng, NPAGES);
			dup = false;
			for (int j = 0; j < i; j++)
				dup |= sample[j] == sample[i];
		} while (dup);
	}
}

/*
 * The I/O just submitted (at t0 or later) is still in flight when the
 * caller goes on to destroy: at least one I/O counted by the device, and no
 * completion can have been delivered yet.  Return: false if this thread lost
 * the CPU past t0 + the latency (nothing is proven), else true after the
 * checks.
 */
static bool in_flight_now(struct fl_space *sp, uint64_t t0, const struct fl_stats *before,
			  enum kind kind, int round)
{
	long inflight = atomic_load(&sp->dev.inflight);
	struct fl_stats st = t_stats(sp);
	uint64_t now = fl_now_ns();

	if (now >= t0 + DELAY_NS) {
		printf("  %.3f ms since the submission, past the latency: run again\n",
		       (double)(now - t0) / 1e6);
		return false;
	}
	if (kind == READS_DELAYED) {
		uint64_t done =
			st.swap_ins - before->swap_ins + st.read_errors - before->read_errors;

		CHECK(inflight > 0 && st.frames_used > done,
		      "round %d: no read in flight after MADV_WILLNEED: device %ld, frames %" PRIu64
		      ", reads done %" PRIu64,
		      round, inflight, st.frames_used, done);
		printf("  %ld read I/Os in flight (%" PRIu64 " frames taken, %" PRIu64
		       " pages read)",
		       inflight, st.frames_used, done);
	} else {
		CHECK(inflight > 0 && st.frames_used > 0 && st.swap_outs == before->swap_outs &&
			      st.write_errors == before->write_errors,
		      "round %d: no write in flight after MADV_PAGEOUT: device %ld, frames %" PRIu64
		      ", writes done %" PRIu64,
		      round, inflight, st.frames_used, st.swap_outs - before->swap_outs);
		printf("  %ld write I/Os in flight (%" PRIu64 " frames)", inflight, st.frames_used);
	}
	return true;
}

/* Return: whether the round proved what its kind says (always, on the real store). */
static bool run_round(int round, enum kind kind, int delivery, struct t_rng *rng, uint64_t seed)
{
	struct fl_config cfg;
	struct fl_space *sp;
	struct fl_stats st0, st1;
	size_t sample[SAMPLE];
	uint64_t t0 = 0;
	bool proven = true;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = (int)t_below(rng, FL_POLICY_NR);
	cfg.mem_limit = LIMIT_PAGES * PG;
	cfg.swap_delay_us = kind == WRITES_REAL ? 0 : DELAY_US;
	sp = t_space_create_cfg(&cfg);
	char *p =
		fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	printf("round %2d: %-6s %-8s %s:\n", round, t_delivery_name(delivery),
	       fl_policy_name(cfg.policy), kind_names[kind]);

	for (size_t i = 0; i < NPAGES; i++)
		fill(p, seed, round, i, 0);
	page_out_all(sp, p);

	/* Back through the store: each a read of its own (every page was out). */
	pick_sample(rng, sample);
	st0 = t_stats(sp);
	for (int i = 0; i < SAMPLE; i++)
		check_page(p, seed, round, sample[i], 0, "read back from the store");
	st1 = t_stats(sp);
	CHECK(st1.swap_ins - st0.swap_ins >= SAMPLE,
	      "round %d: %" PRIu64 " pages read from the store for %d sampled", round,
	      st1.swap_ins - st0.swap_ins, SAMPLE);

	switch (kind) {
	case WRITES_REAL:
		/* Every page checked on its way back in, then rewritten. */
		for (size_t i = 0; i < NPAGES; i++) {
			check_page(p, seed, round, i, 0, "rewriting the region");
			fill(p, seed, round, i, 1);
		}
		CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout");
		printf("  %ld I/Os in flight at destroy\n", atomic_load(&sp->dev.inflight));
		break;
	case WRITES_DELAYED:
		/* The sample, dirty again: only writes go out. */
		wait_idle(sp);
		for (int i = 0; i < SAMPLE; i++)
			fill(p, seed, round, sample[i], 1);
		st0 = t_stats(sp);
		t0 = fl_now_ns();
		CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout");
		proven = in_flight_now(sp, t0, &st0, kind, round);
		break;
	case READS_DELAYED:
		/* Every write done: only reads go out. */
		page_out_all(sp, p);
		st0 = t_stats(sp);
		t0 = fl_now_ns();
		CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_WILLNEED) == 0, "willneed");
		proven = in_flight_now(sp, t0, &st0, kind, round);
		break;
	default:
		CHECK(0, "kind %d", kind);
	}
	if (kind != WRITES_REAL && proven)
		printf(", destroy %.3f ms after the submission\n",
		       (double)(fl_now_ns() - t0) / 1e6);
	fl_space_destroy(sp);
	return proven;
}

int main(int argc, char **argv)
{
	struct t_rng rng;
	uint64_t seed = t_seed_init(argc, argv, "test_swap_destroy");
	int rounds = t_soak() ? 120 : 12;

	t_rng_init(&rng, seed);
	unsetenv("FAULTLINE_SWAP_DELAY");
	/* Each case in both deliveries, as often. */
	for (int r = 0; r < rounds; r++) {
		enum kind kind = (enum kind)(r / 2 % NKINDS);
		int delivery = r % 2 ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
		int tries = 1;

		while (!run_round(r, kind, delivery, &rng, seed))
			CHECK(++tries <= TRIES,
			      "round %d: destroy never came within the latency of the I/O in %d "
			      "runs",
			      r, TRIES);
	}
	printf("%d spaces destroyed with I/O in flight, every page read back right\n", rounds);
	return T_EXIT_PASS;
}
