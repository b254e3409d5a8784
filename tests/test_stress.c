// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
/*
 * Concurrency with verification (not a benchmark): worker threads fault and
 * write versioned per-page patterns into one large VMA and check every byte
 * of a page before each new write, while other threads
 *   - fl_mprotect a few pages in the middle of the same VMA (split, merge),
 *   - fl_munmap + fl_mmap(MAP_FIXED) a zone of the same VMA, checking that a
 *     remapped zone reads all zero (no stale install),
 *   - touch that zone concurrently (faults racing the unmap; SIGSEGV
 *     tolerated),
 *   - fl_mmap/fl_mprotect/fl_munmap small regions elsewhere,
 *   - MADV_DONTNEED their own pages,
 *   - and, in the swap runs (a budget of 1/8 of the region, under each of
 *     the five policies), MADV_PAGEOUT random ranges.
 * At the end: every page verified again, and the kernel's residency
 * (mincore) must equal faultline's page table (resident_pages).
 * Time-bounded: FL_STRESS_SECONDS per run without swap, half that per swap
 * run (default 1.5; 60 with FL_SOAK=1).  Seeded: the seed is printed.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "pgtable.h"
#include "space.h"

#include "util.h"

#define PG 4096UL
#define WORDS (PG / 8)
#define NWORKERS 4
#define NPAGES 2048
#define PROT_ZONE 1000 /* pages [1000, 1008): mprotect churn */
#define PROT_ZONE_N 8
#define REMAP_ZONE (NPAGES - 128)
#define REMAP_ZONE_N 128

static struct fl_space *sp;
static char *region;
static _Atomic bool stop;
static uint64_t seed;
static _Atomic uint64_t n_verified, n_remaps, n_mprotects, n_elsewhere, n_dontneed, n_segv;

static uint64_t word_of(unsigned long page, uint32_t ver, unsigned int i)
{
	uint64_t x = ((uint64_t)page << 32) ^ ver ^ ((uint64_t)i << 20) ^ 0x5bd1e995ULL;

	return t_splitmix64(&x);
}

static bool in_zone(unsigned long page)
{
	return (page >= PROT_ZONE && page < PROT_ZONE + PROT_ZONE_N) || page >= REMAP_ZONE;
}

static void verify_page(unsigned long page, uint32_t ver)
{
	const uint64_t *w = (const uint64_t *)(region + page * PG);

	for (unsigned int i = 0; i < WORDS; i++) {
		uint64_t want = ver ? word_of(page, ver, i) : 0;
		CHECK(w[i] == want,
		      "page %lu word %u: %#llx, expected %#llx (version %u): stale, torn or lost",
		      page, i, (unsigned long long)w[i], (unsigned long long)want, ver);
	}
}

static void write_page(unsigned long page, uint32_t ver)
{
	uint64_t *w = (uint64_t *)(region + page * PG);

	for (unsigned int i = 0; i < WORDS; i++)
		w[i] = word_of(page, ver, i);
}

static uint32_t *versions; /* per page; each page has one owner */

static void *worker(void *arg)
{
	unsigned long id = (unsigned long)arg;
	struct t_rng rng;

	t_rng_init(&rng, seed + id);
	while (!atomic_load(&stop)) {
		unsigned long page = t_below(&rng, NPAGES / NWORKERS) * NWORKERS + id;
		if (in_zone(page))
			continue;
		verify_page(page, versions[page]);
		atomic_fetch_add(&n_verified, 1);
		if (t_chance(&rng, 3)) {
			CHECK(fl_madvise(sp, region + page * PG, PG, MADV_DONTNEED) == 0,
			      "madvise: %s", strerror(errno));
			versions[page] = 0;
			atomic_fetch_add(&n_dontneed, 1);
			continue;
		}
		write_page(page, ++versions[page]);
	}
	return NULL;
}

static void *mprotect_churn(void *arg)
{
	while (!atomic_load(&stop)) {
		CHECK(fl_mprotect(sp, region + PROT_ZONE * PG, PROT_ZONE_N * PG, PROT_READ) == 0,
		      "mprotect: %s", strerror(errno));
		CHECK(fl_mprotect(sp, region + PROT_ZONE * PG, PROT_ZONE_N * PG,
				  PROT_READ | PROT_WRITE) == 0,
		      "mprotect: %s", strerror(errno));
		atomic_fetch_add(&n_mprotects, 2);
	}
	return NULL;
}

/*
 * Alternately replace the zone in place (MAP_FIXED over the old mapping) and
 * unmap it, then map it again with MAP_FIXED_NOREPLACE: a plain MAP_FIXED
 * after munmap would clobber whatever another thread's allocation took of the
 * hole meanwhile, as it would with the kernel's mmap.
 */
static _Atomic bool zone_lost;

static void *remap_churn(void *arg)
{
	char *zone = region + REMAP_ZONE * PG;
	uint32_t gen = 0;

	while (!atomic_load(&stop)) {
		void *p;
		if (gen % 2) {
			p = fl_mmap(sp, zone, REMAP_ZONE_N * PG, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			CHECK(p == zone, "mmap fixed: %s", strerror(errno));
		} else {
			CHECK(fl_munmap(sp, zone, REMAP_ZONE_N * PG) == 0, "munmap: %s",
			      strerror(errno));
			for (int tries = 0;; tries++) {
				p = fl_mmap(sp, zone, REMAP_ZONE_N * PG, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
					    0);
				if (p == zone)
					break;
				CHECK(errno == EEXIST, "mmap noreplace: %s", strerror(errno));
				if (tries == 1000) {
					/* Something else holds the hole for good. */
					atomic_store(&zone_lost, true);
					return NULL;
				}
				usleep(100);
			}
		}
		gen++;
		for (unsigned long pg = REMAP_ZONE; pg < NPAGES; pg++) {
			verify_page(pg, 0); /* new mapping: zeros, whatever raced */
			if (pg % 3 == 0)
				write_page(pg, gen);
		}
		for (unsigned long pg = REMAP_ZONE; pg < NPAGES; pg += 3)
			verify_page(pg, gen);
		atomic_fetch_add(&n_remaps, 1);
	}
	return NULL;
}

static __thread sigjmp_buf segv_jmp;
static __thread volatile int segv_armed;

static void segv_handler(int sig)
{
	if (segv_armed)
		siglongjmp(segv_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void *toucher(void *arg)
{
	struct t_rng rng;
	volatile char sink;

	t_rng_init(&rng, seed ^ 0xabc);
	while (!atomic_load(&stop) && !atomic_load(&zone_lost)) {
		/* Only pages remap_churn does not write (pg % 3 != 0): a race with
		 * its stores would be the test's own. */
		unsigned long pg = REMAP_ZONE + t_below(&rng, REMAP_ZONE_N);
		if (pg % 3 == 0)
			pg++;
		volatile char *target = region + pg * PG + t_below(&rng, PG);
		segv_armed = 1;
		if (sigsetjmp(segv_jmp, 1) == 0)
			sink = *target;
		else
			atomic_fetch_add(&n_segv, 1);
		segv_armed = 0;
	}
	(void)sink;
	return NULL;
}

/* Swap runs: evict random ranges now, racing with everything else. */
static void *pageout(void *arg)
{
	struct t_rng rng;

	t_rng_init(&rng, seed ^ 0x777);
	while (!atomic_load(&stop)) {
		unsigned long pg = t_below(&rng, NPAGES - 64);
		int ret = fl_madvise(sp, region + pg * PG, (1 + t_below(&rng, 64)) * PG,
				     MADV_PAGEOUT);
		/* The remap zone may be unmapped for a moment: ENOMEM. */
		CHECK(ret == 0 || errno == ENOMEM, "pageout: %s", strerror(errno));
		usleep(200);
	}
	return NULL;
}

static void *elsewhere(void *arg)
{
	struct t_rng rng;

	t_rng_init(&rng, seed ^ 0x123);
	while (!atomic_load(&stop)) {
		size_t n = 1 + t_below(&rng, 16);
		char *p = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
		for (size_t i = 0; i < n; i++) {
			CHECK(p[i * PG + 17] == 0, "fresh page not zero");
			p[i * PG + 17] = (char)(i + 1);
		}
		CHECK(fl_mprotect(sp, p, PG, PROT_READ) == 0, "mprotect: %s", strerror(errno));
		for (size_t i = 0; i < n; i++)
			CHECK(p[i * PG + 17] == (char)(i + 1), "lost write elsewhere");
		CHECK(fl_munmap(sp, p, n * PG) == 0, "munmap: %s", strerror(errno));
		atomic_fetch_add(&n_elsewhere, 1);
	}
	return NULL;
}

/*
 * The kernel has a page exactly where faultline's table says present.  In
 * thread delivery the install ioctl wakes the faulting thread before the
 * handler has updated the table (under the ptl), so the check may run before
 * a handler is done: the caller retries it after a pause.
 */
static bool residency_ok(bool report);

static void check_residency(void)
{
	for (int i = 0; i < 50; i++) {
		if (residency_ok(false))
			return;
		usleep(20000);
	}
	residency_ok(true);
}

static bool residency_ok(bool report)
{
	char line[256];
	size_t kernel = 0;
	FILE *f = tmpfile();
	struct fl_stats st;

	CHECK(f && fl_maps(sp, f) == 0, "fl_maps");
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		CHECK(sscanf(line, "%lx-%lx", &s, &e) == 2, "fl_maps line: %s", line);
		size_t n = (e - s) / PG;
		unsigned char *vec = malloc(n);
		CHECK(vec && mincore((void *)s, e - s, vec) == 0, "mincore: %s", strerror(errno));
		for (size_t i = 0; i < n; i++) {
			kernel += vec[i] & 1;
			unsigned long a = s + i * PG;
			struct pt_chunk *c = pt_chunk_lookup(sp, a);
			uint64_t pte = c ? atomic_load(&c->pte[pt_index(a)]) : 0;
			bool table = pte_type(pte) == PTE_PRESENT;
			long pg = ((long)a - (long)region) / (long)PG;
			if ((vec[i] & 1) != table && !report) {
				free(vec);
				fclose(f);
				return false;
			}
			CHECK((vec[i] & 1) == table,
			      "page %#lx (region page %ld%s): kernel %s, table entry %#llx", a, pg,
			      pg >= REMAP_ZONE && pg < NPAGES ? ", remap zone" : "",
			      vec[i] & 1 ? "present" : "absent", (unsigned long long)pte);
		}
		free(vec);
	}
	fclose(f);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	if (st.resident_pages != kernel && !report)
		return false;
	CHECK(st.resident_pages == kernel, "page table says %llu pages present, the kernel has %zu",
	      (unsigned long long)st.resident_pages, kernel);
	return true;
}

static void run(int delivery, int policy, size_t budget_pages, double seconds)
{
	static const char *policies[] = {"mmap", "bail", "drop", "drop-vma", "hold"};
	struct fl_config cfg;
	pthread_t th[NWORKERS + 5];
	struct sigaction sa = {.sa_handler = segv_handler, .sa_flags = SA_NODEFER};
	struct fl_stats st;
	int n = 0;

	sigaction(SIGSEGV, &sa, NULL);
	fl_config_init(&cfg);
	cfg.delivery = delivery;
	cfg.policy = policy;
	cfg.mem_limit = budget_pages * PG;
	sp = t_space_create_cfg(&cfg);
	/*
	 * Far below everything else (and inside the application range of the
	 * sanitizers' memory layouts), so that the kernel's top-down search for
	 * other threads' allocations does not land in the remap zone's hole.
	 */
	region = MAP_FAILED;
	for (unsigned long base = 0x2000000000UL; region == MAP_FAILED; base += 1UL << 32) {
		region = fl_mmap(sp, (void *)base, NPAGES * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		CHECK(region != MAP_FAILED || errno == EEXIST, "mmap: %s", strerror(errno));
	}
	versions = calloc(NPAGES, sizeof(*versions));
	atomic_store(&stop, false);
	atomic_store(&zone_lost, false);
	n_verified = n_remaps = n_mprotects = n_elsewhere = n_dontneed = n_segv = 0;

	for (unsigned long i = 0; i < NWORKERS; i++)
		pthread_create(&th[n++], NULL, worker, (void *)i);
	pthread_create(&th[n++], NULL, mprotect_churn, NULL);
	pthread_create(&th[n++], NULL, remap_churn, NULL);
	pthread_create(&th[n++], NULL, toucher, NULL);
	pthread_create(&th[n++], NULL, elsewhere, NULL);
	if (budget_pages)
		pthread_create(&th[n++], NULL, pageout, NULL);
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, true);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);

	if (atomic_load(&zone_lost))
		printf("note: the remap zone was taken by another allocation; remaps stopped\n");
	for (unsigned long pg = 0; pg < NPAGES; pg++)
		if (!in_zone(pg))
			verify_page(pg, versions[pg]);
	check_residency();
	/* A fault's outcome is counted by its handler after the install that
	 * let the faulting thread go on (handle_fault_vma_locked()), so a
	 * handler may still be counting after the threads are joined: give
	 * the counters a moment to settle before they are checked. */
	for (int tries = 0; tries < 200; tries++) {
		fl_stats(sp, &st);
		if ((budget_pages && policy == FL_POLICY_MMAP) ||
		    st.vma_lock_success + st.vma_lock_abort + st.vma_lock_retry >=
			    st.faults - st.faults_bad)
			break;
		usleep(10000);
	}
	printf("%s %s budget %zu: %llu pages verified, %llu remaps, %llu mprotects, %llu "
	       "elsewhere, "
	       "%llu dontneed, %llu segv; faults %llu (vma_lock success %llu abort %llu "
	       "miss %llu), mmap_lock read %llu write %llu; direct reclaim %llu pages, %llu beside "
	       "another evictor\n",
	       t_delivery_name(delivery), budget_pages ? policies[policy] : "-", budget_pages,
	       (unsigned long long)n_verified, (unsigned long long)n_remaps,
	       (unsigned long long)n_mprotects, (unsigned long long)n_elsewhere,
	       (unsigned long long)n_dontneed, (unsigned long long)n_segv,
	       (unsigned long long)st.faults, (unsigned long long)st.vma_lock_success,
	       (unsigned long long)st.vma_lock_abort, (unsigned long long)st.vma_lock_miss,
	       (unsigned long long)st.mmap_read_locks, (unsigned long long)st.mmap_write_locks,
	       (unsigned long long)st.reclaim_direct, (unsigned long long)st.reclaim_beside);
	CHECK(n_verified > 100 && n_remaps > 0 && n_mprotects > 0 && n_elsewhere > 0,
	      "some thread made no progress");
	if (budget_pages && policy == FL_POLICY_MMAP)
		CHECK(st.vma_lock_success == 0 && st.vma_lock_abort == 0 &&
			      st.mmap_read_locks >= st.faults - st.faults_bad,
		      "mmap policy: %llu faults under a VMA lock",
		      (unsigned long long)st.vma_lock_success);
	else
		CHECK(st.vma_lock_success + st.vma_lock_abort + st.vma_lock_retry >=
			      st.faults - st.faults_bad,
		      "fault accounting does not add up: %llu faults, %llu bad, success %llu "
		      "abort %llu retry %llu",
		      (unsigned long long)st.faults, (unsigned long long)st.faults_bad,
		      (unsigned long long)st.vma_lock_success,
		      (unsigned long long)st.vma_lock_abort, (unsigned long long)st.vma_lock_retry);
	if (budget_pages && policy == FL_POLICY_HOLD)
		CHECK(st.vma_lock_retry == 0, "hold retried %llu times",
		      (unsigned long long)st.vma_lock_retry);
	if (budget_pages)
		CHECK(st.swap_outs > 0 && st.swap_ins > 0, "the swap run did not swap");
	free(versions);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	const char *s = getenv("FL_STRESS_SECONDS");
	double seconds = s ? atof(s) : (t_soak() ? 60 : 1.5);

	seed = t_seed_init(argc, argv, "test_stress");
	/* Without swap, then with a budget of 1/8 of the region under every
	 * policy, alternating deliveries (both for drop, the default). */
	run(FL_DELIVERY_THREAD, FL_POLICY_DROP, 0, seconds);
	run(FL_DELIVERY_SIGBUS, FL_POLICY_DROP, 0, seconds);
	for (int pol = 0; pol < 5; pol++)
		run(pol % 2 ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD, pol, NPAGES / 8,
		    seconds / 2);
	run(FL_DELIVERY_SIGBUS, FL_POLICY_DROP, NPAGES / 8, seconds / 2);
	return T_EXIT_PASS;
}
