// SPDX-License-Identifier: MIT
/*
 * The slow-device emulation (FAULTLINE_SWAP_DELAY, cfg.swap_delay_us): every
 * store I/O still reaches the store, and completes no earlier than the delay
 * after its submission.
 *
 * - the option: plain microseconds, "us" and "ms" suffixes, bounded; a
 *   caller's struct older than the field leaves it to the environment;
 * - the device alone (2 ms): a write, a read, the synchronous read and the
 *   injected errors each complete no earlier than the delay after submission,
 *   with the right data; 64 I/Os submitted at once all count as in flight
 *   until delivered, complete within delay + 1 s, and overlap (under half of
 *   64 x delay); closing the device with delayed completions pending delivers
 *   them, on time, and returns; a read that finishes before a vectored write
 *   submitted ahead of it is still held to its own due time;
 * - a space (thread and sigbus delivery, a random policy) with a budget:
 *   pages evicted to the store come back with their contents, every swap-in
 *   fault (timed from the application) takes at least the delay, and so does
 *   the slowest fault faultline itself measured; then the space is destroyed
 *   with delayed writes in flight;
 * - retries on the completion thread (thread delivery; mmap, bail, drop: the
 *   policies that retry under mmap_lock after a read): readers fault
 *   on swapped-out pages (1 ms reads) while another thread keeps changing the
 *   protection of a second VMA (mmap_lock held for write, again and again):
 *   the completion thread runs a retry itself when mmap_lock is free and
 *   leaves it to a handler thread when it is taken; both happen
 *   (retries_completion, retries_queued), every page comes back right.
 */
#define _GNU_SOURCE
#include "space.h"
#include "swapdev.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "util.h"

#define DELAY_US 2000u
#define DELAY_NS ((uint64_t)DELAY_US * 1000)
#define NBURST 64
#define PG 4096UL

struct io {
	struct swap_io io;
	_Atomic int res; /* 1 pending, 0 done ok, <0 error */
	_Atomic uint64_t t_done;
};

static void done(struct swap_io *sio, int res)
{
	struct io *io = (struct io *)sio;

	atomic_store(&io->t_done, fl_now_ns());
	atomic_store(&io->res, res);
}

static void wait_io(struct io *io)
{
	uint64_t t0 = fl_now_ns();

	while (atomic_load(&io->res) == 1) {
		CHECK(fl_now_ns() - t0 < 10 * 1000000000ull, "an I/O never completed");
		usleep(20);
	}
}

static void fill(void *buf, uint64_t seed, uint64_t tag)
{
	for (unsigned int w = 0; w < PG / 8; w++)
		((uint64_t *)buf)[w] = seed ^ (tag << 20) ^ w;
}

static bool filled(const void *buf, uint64_t seed, uint64_t tag)
{
	for (unsigned int w = 0; w < PG / 8; w++)
		if (((const uint64_t *)buf)[w] != (seed ^ (tag << 20) ^ w))
			return false;
	return true;
}

/* Submit one I/O, wait for it; check it took at least the delay. */
static int one_io(struct swap_dev *d, struct io *io, uint32_t slot, bool write, void *buf)
{
	*io = (struct io){.io = {.slot = slot, .write = write, .buf = buf, .done = done}, .res = 1};
	uint64_t t0 = fl_now_ns();
	CHECK(swap_submit(d, &io->io) == 0, "submit");
	wait_io(io);
	uint64_t took = atomic_load(&io->t_done) - t0;
	printf("  %s slot %u: %d after %.3f ms\n", write ? "write" : "read", slot,
	       atomic_load(&io->res), (double)took / 1e6);
	CHECK(io->io.t_submit >= t0, "t_submit not set by swap_submit");
	CHECK(atomic_load(&io->t_done) >= io->io.t_submit + DELAY_NS,
	      "%s completed %.3f ms after submission, before the %u us delay",
	      write ? "write" : "read", (double)(atomic_load(&io->t_done) - io->io.t_submit) / 1e6,
	      DELAY_US);
	CHECK(took < DELAY_NS + 1000000000ull, "took %.3f ms", (double)took / 1e6);
	return atomic_load(&io->res);
}

static void test_options(void)
{
	static const struct {
		const char *s;
		unsigned int want;
	} cases[] = {
		{"2000", 2000},
		{"2ms", 2000},
		{"1500us", 1500},
		{" 7MS ", 7000},
		{"10000000", 10000000},
		{"0", 0},
		{"10001ms", 0},
		{"2m", 0},
		{"abc", 0},
		{"-5", 0},
		{"3s", 0},
		{"12us3", 0},
	};
	struct fl_config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		setenv("FAULTLINE_SWAP_DELAY", cases[i].s, 1);
		fl_config_init(&cfg);
		CHECK(cfg.swap_delay_us == cases[i].want,
		      "FAULTLINE_SWAP_DELAY=\"%s\" gave %u, not %u", cases[i].s, cfg.swap_delay_us,
		      cases[i].want);
	}
	unsetenv("FAULTLINE_SWAP_DELAY");
	fl_config_init(&cfg);
	CHECK(cfg.swap_delay_us == 0, "default %u", cfg.swap_delay_us);

	/* Out of range in the struct: refused. */
	struct fl_space *sp = NULL;
	cfg.swap_delay_us = 10000001;
	CHECK(fl_space_create(&cfg, &sp) == -EINVAL, "a delay above 10 s accepted");

	/* A caller built before the field: whatever lies beyond its size is
	 * not read (the environment's value, here none, holds). */
	fl_config_init(&cfg);
	cfg.size = offsetof(struct fl_config, swap_delay_us);
	cfg.swap_delay_us = 10000001;
	int ret = fl_space_create(&cfg, &sp);
	if (ret)
		t_skip_if_refused(ret, &cfg);
	CHECK(ret == 0, "fl_space_create with an older struct: %s", strerror(-ret));
	fl_space_destroy(sp);
	printf("options: ok\n");
}

static void test_device(uint64_t seed)
{
	static struct swap_dev d;
	static struct io ios[NBURST];
	uint32_t slots[NBURST];
	char *bufs;
	int ret;

	t_require_io_uring();
	CHECK(posix_memalign((void **)&bufs, PG, NBURST * PG) == 0, "memalign");
	ret = swapdev_open_delay(&d, NULL, 256, DELAY_NS, 0);
	CHECK(ret == 0, "swapdev_open_delay: %s", strerror(-ret));
	CHECK(swap_slots_alloc(&d, NBURST, slots) == NBURST, "alloc");

	/* One write, one read back, one synchronous read. */
	printf("device, %u us:\n", DELAY_US);
	fill(bufs, seed, 1);
	CHECK(one_io(&d, &ios[0], slots[0], true, bufs) == 0, "write failed");
	memset(bufs, 0, PG);
	CHECK(one_io(&d, &ios[0], slots[0], false, bufs) == 0, "read failed");
	CHECK(filled(bufs, seed, 1), "read back wrong data");
	memset(bufs, 0, PG);
	struct swap_io sio = {.slot = slots[0], .buf = bufs};
	uint64_t t0 = fl_now_ns();
	ret = swap_read_sync(&d, &sio);
	uint64_t took = fl_now_ns() - t0;
	printf("  sync read: %d after %.3f ms\n", ret, (double)took / 1e6);
	CHECK(ret == 0, "sync read: %d", ret);
	CHECK(filled(bufs, seed, 1), "sync read: wrong data");
	CHECK(took >= DELAY_NS && fl_now_ns() >= sio.t_submit + DELAY_NS,
	      "sync read returned after %.3f ms", (double)took / 1e6);

	/* Injected errors take the delay too. */
	CHECK(swapdev_inject_error(&d, slots[1], false, true) == 0, "inject");
	CHECK(one_io(&d, &ios[1], slots[1], false, bufs + PG) == -EIO, "injected error not seen");
	sio = (struct swap_io){.slot = slots[1], .buf = bufs + PG};
	t0 = fl_now_ns();
	ret = swap_read_sync(&d, &sio);
	took = fl_now_ns() - t0;
	CHECK(ret == -EIO, "injected sync read error not seen: %d", ret);
	CHECK(took >= DELAY_NS, "injected sync error returned after %.3f ms", (double)took / 1e6);
	CHECK(swapdev_inject_error(&d, slots[1], false, false) == 0, "clear");

	/* A burst: the delays overlap. */
	for (int write = 1; write >= 0; write--) {
		uint64_t first = 0, last = 0;
		long inflight = 0;
		bool before_due = false;

		for (unsigned int i = 0; i < NBURST; i++) {
			if (write)
				fill(bufs + i * PG, seed, 100 + i);
			else
				memset(bufs + i * PG, 0, PG);
			ios[i] = (struct io){.io = {.slot = slots[i],
						    .write = write,
						    .buf = bufs + i * PG,
						    .done = done},
					     .res = 1};
		}
		t0 = fl_now_ns();
		for (unsigned int i = 0; i < NBURST; i++)
			CHECK(swap_submit(&d, &ios[i].io) == 0, "submit");
		/* Half the delay on (the device is done by then), nothing is
		 * delivered yet: all still count as in flight. */
		usleep(DELAY_US / 2);
		inflight = atomic_load(&d.inflight);
		before_due = fl_now_ns() < ios[0].io.t_submit + DELAY_NS;
		for (unsigned int i = 0; i < NBURST; i++)
			wait_io(&ios[i]);
		uint64_t wall = fl_now_ns() - t0;
		for (unsigned int i = 0; i < NBURST; i++) {
			uint64_t t = atomic_load(&ios[i].t_done);
			CHECK(atomic_load(&ios[i].res) == 0, "burst I/O %u: %d", i,
			      atomic_load(&ios[i].res));
			CHECK(t >= ios[i].io.t_submit + DELAY_NS,
			      "burst I/O %u completed %.3f ms after submission", i,
			      (double)(t - ios[i].io.t_submit) / 1e6);
			first = first && first < t ? first : t;
			last = MAX(last, t);
			if (!write)
				CHECK(filled(bufs + i * PG, seed, 100 + i),
				      "burst read %u: wrong data", i);
		}
		printf("  %d %ss at once: all done after %.3f ms (first %.3f ms; serialized "
		       "would be %.0f ms); in flight at half the delay: %ld%s\n",
		       NBURST, write ? "write" : "read", (double)wall / 1e6,
		       (double)(first - t0) / 1e6, (double)NBURST * DELAY_US / 1e3, inflight,
		       before_due ? "" : " (not checked: the delay had passed)");
		if (before_due)
			CHECK(inflight == NBURST, "%ld in flight before any was due, not %d",
			      inflight, NBURST);
		CHECK(last - t0 < DELAY_NS + 1000000000ull, "burst took %.3f ms",
		      (double)(last - t0) / 1e6);
		CHECK(wall < NBURST * DELAY_NS / 2, "burst took %.3f ms: the delays serialize",
		      (double)wall / 1e6);
	}
	CHECK(atomic_load(&d.inflight) == 0, "inflight %ld after the bursts",
	      atomic_load(&d.inflight));

	/*
	 * Out of order: a vectored write of 63 slots, then a read of one slot
	 * that usually finishes first, though submitted later.  Each is
	 * delivered when it is due, not before.
	 */
	static struct iovec iov[NBURST - 1];
	static struct io vw, rd;
	char *rbuf;
	CHECK(posix_memalign((void **)&rbuf, PG, PG) == 0, "memalign");
	for (unsigned int i = 1; i < NBURST; i++) {
		CHECK(slots[i] == slots[0] + i, "slots not consecutive");
		fill(bufs + i * PG, seed, 200 + i);
		iov[i - 1] = (struct iovec){.iov_base = bufs + i * PG, .iov_len = PG};
	}
	vw = (struct io){
		.io = {.slot = slots[1], .write = true, .iov = iov, .nr = NBURST - 1, .done = done},
		.res = 1};
	rd = (struct io){.io = {.slot = slots[0], .buf = rbuf, .done = done}, .res = 1};
	CHECK(swap_submit(&d, &vw.io) == 0, "submit");
	CHECK(swap_submit(&d, &rd.io) == 0, "submit");
	wait_io(&vw);
	wait_io(&rd);
	CHECK(atomic_load(&vw.res) == 0 && atomic_load(&rd.res) == 0, "vectored write %d, read %d",
	      atomic_load(&vw.res), atomic_load(&rd.res));
	CHECK(atomic_load(&vw.t_done) >= vw.io.t_submit + DELAY_NS &&
		      atomic_load(&rd.t_done) >= rd.io.t_submit + DELAY_NS,
	      "delivered early: write %.3f ms, read %.3f ms",
	      (double)(atomic_load(&vw.t_done) - vw.io.t_submit) / 1e6,
	      (double)(atomic_load(&rd.t_done) - rd.io.t_submit) / 1e6);
	CHECK(filled(rbuf, seed, 100), "read beside the vectored write: wrong data");
	printf("  vectored write of %d slots and a read: done after %.3f and %.3f ms\n", NBURST - 1,
	       (double)(atomic_load(&vw.t_done) - vw.io.t_submit) / 1e6,
	       (double)(atomic_load(&rd.t_done) - rd.io.t_submit) / 1e6);
	free(rbuf);

	/* Close with delayed completions pending: delivered, on time. */
	for (unsigned int i = 0; i < NBURST; i++) {
		ios[i] = (struct io){.io = {.slot = slots[i], .buf = bufs + i * PG, .done = done},
				     .res = 1};
		CHECK(swap_submit(&d, &ios[i].io) == 0, "submit");
	}
	t0 = fl_now_ns();
	swapdev_close(&d);
	took = fl_now_ns() - t0;
	printf("  close with %d reads pending: %.3f ms\n", NBURST, (double)took / 1e6);
	CHECK(took < DELAY_NS + 1000000000ull, "close took %.3f ms", (double)took / 1e6);
	for (unsigned int i = 0; i < NBURST; i++) {
		CHECK(atomic_load(&ios[i].res) == 0, "I/O %u pending at close: %d", i,
		      atomic_load(&ios[i].res));
		CHECK(atomic_load(&ios[i].t_done) >= ios[i].io.t_submit + DELAY_NS,
		      "I/O %u delivered early at close", i);
		CHECK(filled(bufs + i * PG, seed, i ? 200 + i : 100),
		      "read %u at close: wrong data", i);
	}
	free(bufs);
}

/* Wait until no frame is in use: every write has completed. */
static void wait_frames_idle(struct fl_space *sp)
{
	uint64_t t0 = fl_now_ns();

	while (t_stats(sp).frames_used) {
		CHECK(fl_now_ns() - t0 < 10 * 1000000000ull, "frames never went idle");
		usleep(200);
	}
}

#define LIMIT_PAGES 128
#define NPAGES 192

static void test_space(int delivery, struct t_rng *rng, uint64_t seed)
{
	struct fl_config cfg;
	struct fl_space *sp;

	if (delivery == FL_DELIVERY_SIGBUS)
		setenv("FAULTLINE_SWAP_DELAY", "2ms", 1); /* through the environment */
	fl_config_init(&cfg);
	unsetenv("FAULTLINE_SWAP_DELAY");
	if (delivery == FL_DELIVERY_THREAD)
		cfg.swap_delay_us = DELAY_US; /* through the struct */
	CHECK(cfg.swap_delay_us == DELAY_US, "swap_delay_us %u", cfg.swap_delay_us);
	cfg.delivery = delivery;
	cfg.policy = (int)t_below(rng, 5);
	cfg.mem_limit = LIMIT_PAGES * PG;
	cfg.prefetch = 0; /* every other page is a trend: no prefetch along it */
	sp = t_space_create_cfg(&cfg);
	char *p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < NPAGES; i++)
		fill(p + i * PG, seed, i);

	/* Everything out to the store (as far as frames allow per round). */
	struct fl_stats st = t_stats(sp);
	for (int round = 0; st.resident_pages; round++) {
		CHECK(round < 100, "%" PRIu64 " pages stay resident", st.resident_pages);
		CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout");
		wait_frames_idle(sp);
		st = t_stats(sp);
	}
	struct fl_stats before = st;

	/* Back in, never two neighbours in a row (no readahead stream; trend
	 * prefetch is off): every access is a major fault that reads its page. */
	uint64_t sum = 0, min = UINT64_MAX, max = 0;
	for (size_t k = 0; k < NPAGES; k++) {
		size_t i = k < NPAGES / 2 ? 2 * k : 2 * (k - NPAGES / 2) + 1;
		uint64_t t0 = fl_now_ns();
		(void)*(volatile char *)(p + i * PG);
		uint64_t t = fl_now_ns() - t0;
		CHECK(filled(p + i * PG, seed, i), "page %zu came back wrong", i);
		sum += t;
		min = MIN(min, t);
		max = MAX(max, t);
	}
	st = t_stats(sp);
	uint64_t major = st.faults_major - before.faults_major;
	uint64_t ins = st.swap_ins - before.swap_ins;
	printf("%s, policy %s: %d swap-in faults: mean %.3f ms, min %.3f, max %.3f; "
	       "%" PRIu64 " major, %" PRIu64 " swap-ins; faultline's own max %.3f ms\n",
	       t_delivery_name(delivery), fl_policy_name(cfg.policy), NPAGES,
	       (double)sum / NPAGES / 1e6, (double)min / 1e6, (double)max / 1e6, major, ins,
	       (double)st.fault_ns_max / 1e6);
	/* At least one read per page.  Not exactly one: under thread delivery a
	 * page just read in is now and then reclaimed before the faulting
	 * thread runs again, and read a second time (also without a delay). */
	CHECK(major >= NPAGES && ins >= NPAGES,
	      "%" PRIu64 " major faults, %" PRIu64 " swap-ins for %d pages swapped out", major, ins,
	      NPAGES);
	CHECK(sum / NPAGES >= DELAY_NS, "mean swap-in fault %.3f ms, below the delay",
	      (double)sum / NPAGES / 1e6);
	CHECK(min >= DELAY_NS, "a swap-in fault took %.3f ms, below the delay", (double)min / 1e6);
	CHECK(st.fault_ns_max >= DELAY_NS, "faultline's slowest fault %.3f ms, below the delay",
	      (double)st.fault_ns_max / 1e6);
	CHECK(st.read_errors == 0 && st.write_errors == 0, "store errors");
	/* The store's own latencies: every read and write waited the delay. */
	CHECK(st.store_read_ns_p50 >= DELAY_NS && st.store_write_ns_p50 >= DELAY_NS,
	      "store read median %.3f ms, write median %.3f ms: below the delay",
	      (double)st.store_read_ns_p50 / 1e6, (double)st.store_write_ns_p50 / 1e6);
	CHECK(st.store_write_ns_p50 <= st.store_write_ns_p99 &&
		      st.store_write_ns_p99 <= st.store_write_ns_max,
	      "store write percentiles out of order");

	/* Destroy with delayed writes in flight. */
	for (size_t i = 0; i < NPAGES; i++)
		p[i * PG] ^= 1;
	CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout");
	uint64_t t0 = fl_now_ns();
	fl_space_destroy(sp);
	printf("  destroyed with writes in flight in %.3f ms\n", (double)(fl_now_ns() - t0) / 1e6);
}

#define RC_READERS 4
#define RC_PAGES 256

struct rc_ctl {
	char *p;     /* RC_PAGES pages, swapped out */
	char *other; /* the VMA whose protection flips */
	struct fl_space *sp;
	uint64_t seed;
	_Atomic bool stop;
	_Atomic unsigned long flips;
};

struct rc_reader {
	struct rc_ctl *ctl;
	unsigned int index;
};

/* Reader i reads pages i, i + RC_READERS, ... (each a swap-in), checking each. */
static void *rc_reader_main(void *arg)
{
	struct rc_reader *r = arg;
	struct rc_ctl *ctl = r->ctl;

	for (size_t i = r->index; i < RC_PAGES; i += RC_READERS)
		CHECK(filled(ctl->p + i * PG, ctl->seed, i), "page %zu came back wrong", i);
	return NULL;
}

/* Flip the other VMA's protection until told to stop: mmap_lock for write. */
static void *rc_writer_main(void *arg)
{
	struct rc_ctl *ctl = arg;
	struct fl_space *sp = ctl->sp;

	while (!atomic_load(&ctl->stop)) {
		int prot = atomic_load(&ctl->flips) % 2 ? PROT_READ | PROT_WRITE : PROT_READ;
		CHECK(fl_mprotect(sp, ctl->other, 16 * PG, prot) == 0, "fl_mprotect: %s",
		      strerror(errno));
		atomic_fetch_add(&ctl->flips, 1);
	}
	return NULL;
}

static void test_retry_contended(int policy, uint64_t seed)
{
	struct fl_config cfg;
	struct fl_space *sp;
	struct rc_ctl ctl = {.seed = seed};
	struct fl_stats st = {0}, before;
	int round;

	fl_config_init(&cfg);
	cfg.delivery = FL_DELIVERY_THREAD;
	cfg.policy = policy;
	cfg.swap_delay_us = 1000;
	cfg.mem_limit = LIMIT_PAGES * PG;
	sp = t_space_create_cfg(&cfg);
	ctl.sp = sp;
	ctl.p = fl_mmap(sp, NULL, RC_PAGES * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ctl.p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	ctl.other = fl_mmap(sp, NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	CHECK(ctl.other != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < RC_PAGES; i++)
		fill(ctl.p + i * PG, seed, i);
	before = t_stats(sp);

	/* Rounds until both kinds of retry were seen (one is almost always
	 * enough): page everything out, read it back under the writer. */
	for (round = 1; round <= 20; round++) {
		pthread_t w, t[RC_READERS];
		struct rc_reader rd[RC_READERS];

		for (int k = 0; k < 100 && t_stats(sp).resident_pages > 16; k++) {
			CHECK(fl_madvise(sp, ctl.p, RC_PAGES * PG, MADV_PAGEOUT) == 0, "pageout");
			wait_frames_idle(sp);
		}
		atomic_store(&ctl.stop, false);
		CHECK(pthread_create(&w, NULL, rc_writer_main, &ctl) == 0, "pthread_create");
		for (unsigned int i = 0; i < RC_READERS; i++) {
			rd[i] = (struct rc_reader){.ctl = &ctl, .index = i};
			CHECK(pthread_create(&t[i], NULL, rc_reader_main, &rd[i]) == 0,
			      "pthread_create");
		}
		for (unsigned int i = 0; i < RC_READERS; i++)
			pthread_join(t[i], NULL);
		atomic_store(&ctl.stop, true);
		pthread_join(w, NULL);
		st = t_stats(sp);
		if (st.retries_queued > before.retries_queued &&
		    st.retries_completion > before.retries_completion)
			break;
	}
	round = MIN(round, 20);
	printf("%s, retries under a busy mmap_lock: %d rounds, %lu protection flips; "
	       "%" PRIu64 " retries at completion, %" PRIu64 " left to handlers, "
	       "%" PRIu64 " swap-ins\n",
	       fl_policy_name(policy), round, atomic_load(&ctl.flips),
	       st.retries_completion - before.retries_completion,
	       st.retries_queued - before.retries_queued, st.swap_ins - before.swap_ins);
	CHECK(st.retries_completion > before.retries_completion,
	      "no retry ran on the completion thread");
	CHECK(st.retries_queued > before.retries_queued,
	      "no retry was left to a handler thread in %d rounds", round);
	CHECK(st.read_errors == 0 && st.write_errors == 0, "store errors");
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	struct t_rng rng;
	uint64_t seed = t_seed_init(argc, argv, "test_swap_delay");

	t_rng_init(&rng, seed);
	unsetenv("FAULTLINE_SWAP_DELAY");
	test_options();
	test_device(seed);
	test_space(FL_DELIVERY_THREAD, &rng, seed);
	test_space(FL_DELIVERY_SIGBUS, &rng, seed);
	test_retry_contended(FL_POLICY_MMAP, seed);
	test_retry_contended(FL_POLICY_BAIL, seed);
	test_retry_contended(FL_POLICY_DROP, seed);
	return T_EXIT_PASS;
}
