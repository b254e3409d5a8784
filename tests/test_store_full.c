// SPDX-License-Identifier: MIT
/*
 * A full store.  A fixed store of FULL_SLOTS slots, a budget of LIMIT pages,
 * and a region of FULL_SLOTS + 1024 pages of data written once: the store
 * fills up and about 1024 dirty pages must stay resident, over the budget.
 *   - nothing is lost: every page reads back right;
 *   - it is said once (the log) and counted (store_full);
 *   - reclaim backs off: idle, the process burns (almost) no CPU, and a
 *     swap-in takes about what it takes with room in the store, not the
 *     tens of milliseconds of a reclaimer spinning over pages it cannot
 *     write;
 *   - once slots are freed (MADV_DONTNEED of half the region), reclaim
 *     comes back and the space returns under its budget, its data intact.
 * Both deliveries.
 */
#include "test_store.h"

#include <sys/resource.h>

/* The store: 16 MiB, or $FL_TEST_STORE_MB. */
static unsigned long store_mb = 16;
#define FULL_SLOTS ((store_mb << 20) / PG - 1) /* the header takes one */
#define EXTRA 1024
#define NPAGES (FULL_SLOTS + EXTRA)
#define LIMIT 256

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void run(int delivery, const char *path, struct t_rng *rng)
{
	const char *name = t_delivery_name(delivery);
	struct fl_config cfg;
	struct fl_stats st;
	struct fl_space *sp;
	uint64_t lat[400];
	size_t nlat = 0;

	ts_config(&cfg, delivery, path, LIMIT);
	ts_stderr_capture();
	sp = t_space_create_cfg(&cfg);
	char *p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap");
	for (size_t i = 0; i < NPAGES; i++)
		ts_fill(p, i, 1);
	/*
	 * Until reclaim has filled the store and its writes are done, and (in
	 * thread delivery) the handler that installed the last window has
	 * counted it: the ioctl wakes this thread before the handler returns.
	 */
	for (int t = 0; t < 1000; t++) {
		fl_stats(sp, &st);
		if (st.store_full && !st.frames_used && st.resident_pages >= EXTRA - 16)
			break;
		usleep(10000);
	}
	printf("%s: full store: resident %llu pages (budget %d), store_full %llu, store %llu "
	       "KiB\n",
	       name, (unsigned long long)st.resident_pages, LIMIT,
	       (unsigned long long)st.store_full, (unsigned long long)st.store_bytes >> 10);
	CHECK(st.store_full >= 1, "the store filled up and store_full is 0");
	CHECK(st.resident_pages + st.frames_used >= EXTRA - 16,
	      "%llu pages resident: the store holds only %lu of %lu",
	      (unsigned long long)st.resident_pages, FULL_SLOTS, NPAGES);

	/* Idle over the budget: reclaim must not spin. */
	double c0 = cpu_seconds();
	sleep(1);
	double idle = cpu_seconds() - c0;
	printf("%s: CPU used in 1 s idle with the store full: %.3f s\n", name, idle);
	CHECK(idle < 0.02, "%.3f s of CPU in 1 s of idle: reclaim spins on a full store", idle);

	/* Swap-ins with the store full. */
	for (size_t k = 0; k < 4000 && nlat < ARRAY_SIZE(lat); k++) {
		size_t i = (size_t)t_below(rng, NPAGES);
		if (ts_slot(sp, p + i * PG) < 0)
			continue;
		uint64_t t0 = fl_now_ns();
		volatile uint64_t v = *(volatile uint64_t *)(p + i * PG);
		lat[nlat++] = fl_now_ns() - t0;
		CHECK(v == ts_word(i, 0, 1), "page %zu read back wrong", i);
	}
	CHECK(nlat >= 100, "only %zu swapped pages found", nlat);
	qsort(lat, nlat, sizeof(lat[0]), cmp_u64);
	printf("%s: swap-in with the store full: p50 %.0f us, p99 %.0f us over %zu reads\n", name,
	       lat[nlat / 2] / 1e3, lat[nlat * 99 / 100] / 1e3, nlat);
	CHECK(lat[nlat / 2] < 2000000, "swap-in p50 %.1f ms with the store full: reclaim spins",
	      lat[nlat / 2] / 1e6);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(ts_intact(p, i, 1), "%s: page %zu lost with the store full", name, i);

	/* Room again: half the region dropped; reclaim comes back. */
	CHECK(fl_madvise(sp, p, NPAGES / 2 * PG, MADV_DONTNEED) == 0, "dontneed");
	for (int t = 0; t < 1000; t++) {
		fl_stats(sp, &st);
		if (st.resident_pages + st.frames_used <= LIMIT)
			break;
		/* Faults are what wakes reclaim: touch a kept page. */
		(void)*(volatile char *)(p + (NPAGES / 2 + (size_t)t_below(rng, NPAGES / 2)) * PG);
		usleep(10000);
	}
	CHECK(st.resident_pages + st.frames_used <= LIMIT,
	      "%s: still %llu pages resident against a budget of %d after slots were freed", name,
	      (unsigned long long)(st.resident_pages + st.frames_used), LIMIT);
	for (size_t i = NPAGES / 2; i < NPAGES; i++)
		CHECK(ts_intact(p, i, 1), "%s: page %zu after the store had room again", name, i);
	fl_space_destroy(sp);
	char *log = ts_stderr_text();
	CHECK(ts_count(log, "is full") == 1 && strstr(log, path),
	      "the full store was said %d times (want once, naming %s)", ts_count(log, "is full"),
	      path);
	free(log);
}

int main(int argc, char **argv)
{
	struct t_rng rng;
	char err[1024];

	ts_seed = t_seed_init(argc, argv, "test_store_full");
	t_rng_init(&rng, ts_seed);
	ts_find_faultline(argv[0]);
	ts_scratch();
	char *path = ts_path("full.store"), size[32];
	if (getenv("FL_TEST_STORE_MB"))
		store_mb = strtoul(getenv("FL_TEST_STORE_MB"), NULL, 10);
	snprintf(size, sizeof(size), "%luM", store_mb);
	CHECK(ts_mkstore(path, size, false, err, sizeof(err)) == 0, "mkstore: %s", err);
	run(FL_DELIVERY_THREAD, path, &rng);
	run(FL_DELIVERY_SIGBUS, path, &rng);
	return T_EXIT_PASS;
}
