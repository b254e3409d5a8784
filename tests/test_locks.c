// SPDX-License-Identifier: MIT
/*
 * Unit tests of the lock protocol, against the engine's internals:
 *   - vma_start_read() fails while the VMA is write-locked, and succeeds
 *     again once the write section ends;
 *   - vma_start_write() waits for a reader in flight on its VMA, and not for
 *     readers of another VMA;
 *   - a waiting writer blocks new space-lock readers (fairness);
 *   - the vma_lock_* and space-lock counters count exactly what they claim.
 */
#include "mmap_lock.h"
#include "rwsem.h"
#include "space.h"
#include "vma.h"

#include <sys/mman.h>

#include "util.h"

static struct fl_space *sp;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static uint64_t stat_of(size_t off)
{
	struct fl_stats st;

	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	return *(uint64_t *)((char *)&st + off);
}
#define STAT(name) stat_of(offsetof(struct fl_stats, name))

/* ---- 1: vma_start_read against a write lock ------------------------- */

static void test_read_fails_while_write_locked(char *a)
{
	struct vma *vma;

	mmap_write_lock(sp);
	vma = vma_lookup(sp, (unsigned long)a);
	CHECK(vma, "vma_lookup");
	CHECK(vma_start_read(vma), "read lock of an unlocked VMA");
	vma_end_read(vma);
	vma_start_write(vma);
	vma_assert_write_locked(vma);
	CHECK(!vma_start_read(vma), "vma_start_read succeeded on a write-locked VMA");
	uint64_t abort0 = STAT(vma_lock_abort);
	CHECK(lock_vma_under_rcu(sp, (unsigned long)a) == NULL, "lock_vma_under_rcu");
	CHECK(STAT(vma_lock_abort) == abort0 + 1, "vma_lock_abort not counted once");
	mmap_write_unlock(sp);

	/* The section ended: the write lock ended with it. */
	vma = lock_vma_under_rcu(sp, (unsigned long)a);
	CHECK(vma, "lock_vma_under_rcu after the write section");
	vma_end_read(vma);
	printf("ok: vma_start_read fails while write-locked\n");
}

/* ---- 2: a writer waits only for readers of its VMA ------------------ */

struct reader_arg {
	unsigned long addr;
	_Atomic int state; /* 1 holding, 2 asked to release, 3 released */
};

static void *reader_main(void *p)
{
	struct reader_arg *r = p;
	struct vma *vma = lock_vma_under_rcu(sp, r->addr);

	CHECK(vma, "reader could not lock its VMA");
	atomic_store(&r->state, 1);
	while (atomic_load(&r->state) != 2)
		sleep_ms(1);
	vma_end_read(vma);
	atomic_store(&r->state, 3);
	return NULL;
}

struct writer_arg {
	unsigned long addr;
	_Atomic int done;
};

static void *writer_main(void *p)
{
	struct writer_arg *w = p;

	mmap_write_lock(sp);
	vma_start_write(vma_lookup(sp, w->addr));
	atomic_store(&w->done, 1);
	mmap_write_unlock(sp);
	return NULL;
}

static void test_writer_waits_for_its_readers(char *a, char *b)
{
	struct reader_arg r = {.addr = (unsigned long)a};
	struct writer_arg wb = {.addr = (unsigned long)b}, wa = {.addr = (unsigned long)a};
	pthread_t rt, wt;

	pthread_create(&rt, NULL, reader_main, &r);
	while (atomic_load(&r.state) != 1)
		sleep_ms(1);

	/* Another VMA: no wait for A's reader. */
	pthread_create(&wt, NULL, writer_main, &wb);
	for (int i = 0; i < 5000 && !atomic_load(&wb.done); i++)
		sleep_ms(1);
	CHECK(atomic_load(&wb.done), "writer of B waited for a reader of A");
	pthread_join(wt, NULL);

	/* The same VMA: the writer waits until the reader leaves. */
	pthread_create(&wt, NULL, writer_main, &wa);
	sleep_ms(200);
	CHECK(!atomic_load(&wa.done), "vma_start_write did not wait for the reader");
	atomic_store(&r.state, 2);
	pthread_join(rt, NULL);
	pthread_join(wt, NULL);
	CHECK(atomic_load(&wa.done), "writer did not finish");
	CHECK(STAT(vma_write_wait_ns) >= 100000000ull, "the writer's wait was not accounted");
	printf("ok: vma_start_write waits for its VMA's readers only\n");
}

/* ---- 2b: the semaphore under vm_lock -------------------------------- */

static struct rwsem sem;
static _Atomic int wrote;

static void *sem_writer(void *p)
{
	rwsem_write_lock(&sem);
	atomic_store(&wrote, 1);
	rwsem_write_unlock(&sem);
	return NULL;
}

static void *sem_release_elsewhere(void *p)
{
	rwsem_read_unlock(&sem); /* up_read_non_owner */
	return NULL;
}

static void test_rwsem(void)
{
	pthread_t w, r;

	rwsem_init(&sem);
	CHECK(rwsem_read_trylock(&sem), "read trylock of a free rwsem");
	pthread_create(&w, NULL, sem_writer, NULL);
	for (int i = 0; i < 1000 && !(atomic_load(&sem.state) & RWSEM_WAITING); i++)
		sleep_ms(1);
	CHECK(atomic_load(&sem.state) & RWSEM_WAITING, "the writer does not wait");
	CHECK(!rwsem_read_trylock(&sem), "read trylock succeeded past a waiting writer");
	sleep_ms(50);
	CHECK(!atomic_load(&wrote), "the writer got in while a reader held it");
	/* Another thread releases the read lock this one took. */
	pthread_create(&r, NULL, sem_release_elsewhere, NULL);
	pthread_join(r, NULL);
	pthread_join(w, NULL);
	CHECK(atomic_load(&wrote), "the writer never got in");
	CHECK(atomic_load(&sem.state) == 0, "state %#x after all left", atomic_load(&sem.state));
	printf("ok: rwsem: non-owner release, trylock fails on a waiting writer\n");
}

/* ---- 3: fairness ---------------------------------------------------- */

static _Atomic int order[3], norder;

static void *fair_writer(void *p)
{
	mmap_write_lock(sp);
	order[atomic_fetch_add(&norder, 1)] = 'W';
	mmap_write_unlock(sp);
	return NULL;
}

static void *fair_reader(void *p)
{
	mmap_read_lock(sp);
	order[atomic_fetch_add(&norder, 1)] = 'R';
	mmap_read_unlock(sp);
	return NULL;
}

static void test_waiting_writer_blocks_readers(void)
{
	pthread_t w, r;
	uint64_t wait0 = STAT(mmap_read_wait_ns);
	uint64_t slow0 =
		STAT(mmap_read_wait_10ms) + STAT(mmap_read_wait_100ms) + STAT(mmap_read_wait_long);

	mmap_read_lock(sp); /* reader 1 holds it */
	pthread_create(&w, NULL, fair_writer, NULL);
	/* Wait until the writer is queued. */
	for (int i = 0; i < 100; i++) {
		sleep_ms(5);
		if (mmap_read_trylock(sp)) {
			mmap_read_unlock(sp);
			continue;
		}
		break;
	}
	CHECK(!mmap_read_trylock(sp), "a new reader got in past a waiting writer");
	pthread_create(&r, NULL, fair_reader, NULL);
	sleep_ms(100);
	CHECK(atomic_load(&norder) == 0, "someone got the lock while reader 1 held it");
	mmap_read_unlock(sp);
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	CHECK(order[0] == 'W' && order[1] == 'R', "order %c%c: the reader overtook the writer",
	      order[0], order[1]);
	CHECK(STAT(mmap_read_wait_ns) > wait0 + 50000000ull,
	      "the blocked reader's wait was not accounted");
	/* It waited about 100 ms (at least 50): bucket 10-100 ms or the next;
	 * no other read waited over 1 ms meanwhile. */
	uint64_t slow = STAT(mmap_read_wait_10ms) + STAT(mmap_read_wait_100ms) +
			STAT(mmap_read_wait_long) - slow0;
	CHECK(slow == 1, "read waits over 1 ms: %llu, the blocked reader's one expected",
	      (unsigned long long)slow);
	printf("ok: a waiting writer blocks new readers\n");
}

/* ---- 4: the counters ------------------------------------------------ */

struct toucher {
	volatile char *p;
	_Atomic int done;
};

static void *touch_main(void *arg)
{
	struct toucher *t = arg;

	(void)t->p[0];
	atomic_store(&t->done, 1);
	return NULL;
}

static void test_counters(char *a, char *b)
{
	struct fl_stats s0, s1;
	pthread_t th;

	/* Plain faults: each one a vma_lock_success, nothing else. */
	fl_stats(sp, &s0);
	for (int i = 0; i < 8; i++)
		a[(64 + i * 32) * 4096] = 1; /* distinct fault-around windows */
	/* The handler counts a fault after the install woke the thread. */
	for (int i = 0; i < 2000; i++) {
		fl_stats(sp, &s1);
		if (s1.vma_lock_success - s0.vma_lock_success >= 8)
			break;
		sleep_ms(1);
	}
	sleep_ms(20);
	fl_stats(sp, &s1);
	CHECK(s1.faults - s0.faults == 8, "faults %llu",
	      (unsigned long long)(s1.faults - s0.faults));
	CHECK(s1.faults_write - s0.faults_write == 8, "write faults");
	CHECK(s1.vma_lock_success - s0.vma_lock_success == 8, "vma_lock_success");
	CHECK(s1.vma_lock_abort == s0.vma_lock_abort, "vma_lock_abort");
	CHECK(s1.vma_lock_retry == s0.vma_lock_retry, "vma_lock_retry");
	CHECK(s1.mmap_read_locks == s0.mmap_read_locks, "a VMA-locked fault took the space lock");

	/* A fault on a write-locked VMA aborts and waits on the space lock. */
	struct toucher t = {.p = b + 200 * 4096};
	fl_stats(sp, &s0);
	mmap_write_lock(sp);
	vma_start_write(vma_lookup(sp, (unsigned long)b));
	pthread_create(&th, NULL, touch_main, &t);
	for (int i = 0; i < 5000 && STAT(vma_lock_abort) == s0.vma_lock_abort; i++)
		sleep_ms(1);
	sleep_ms(50);
	CHECK(!atomic_load(&t.done), "the fault finished during the write section");
	mmap_write_unlock(sp);
	pthread_join(th, NULL);
	sleep_ms(50); /* the handler finishes its accounting after the wake */
	fl_stats(sp, &s1);
	CHECK(s1.faults - s0.faults == 1, "faults");
	CHECK(s1.vma_lock_abort - s0.vma_lock_abort == 1, "vma_lock_abort %llu",
	      (unsigned long long)(s1.vma_lock_abort - s0.vma_lock_abort));
	CHECK(s1.vma_lock_success == s0.vma_lock_success, "vma_lock_success");
	CHECK(s1.mmap_read_locks - s0.mmap_read_locks == 1, "mmap_read_locks");
	CHECK(s1.mmap_read_wait_ns > s0.mmap_read_wait_ns, "mmap_read_wait_ns");
	CHECK(s1.mmap_write_locks - s0.mmap_write_locks == 1, "mmap_write_locks");

	/* The mm calls: mprotect/mmap/munmap write, madvise reads. */
	fl_stats(sp, &s0);
	CHECK(fl_mprotect(sp, a, 4096, PROT_READ) == 0, "mprotect");
	CHECK(fl_madvise(sp, a, 4096, MADV_DONTNEED) == 0, "madvise");
	fl_stats(sp, &s1);
	CHECK(s1.mmap_write_locks - s0.mmap_write_locks == 1, "mprotect write lock");
	CHECK(s1.mmap_read_locks - s0.mmap_read_locks == 1, "madvise read lock");
	CHECK(s1.faults == s0.faults, "faults");
	printf("ok: counters\n");
}

/* ---- 5: the histogram of space-lock waits ----------------------------- */

/*
 * Every acquisition is in exactly one bucket of its histogram (one that did
 * not wait, in the first), so each histogram sums to its acquisitions, and
 * the total wait lies within what the buckets allow.
 */
static void test_wait_histogram(void)
{
	static const uint64_t lower_ns[7] = {0, 1000, 10000, 100000, 1000000, 10000000, 100000000};
	struct fl_stats s;
	const uint64_t *rd, *wr;
	uint64_t nrd = 0, nwr = 0, min_rd = 0, min_wr = 0;

	CHECK(fl_stats(sp, &s) == 0, "fl_stats");
	rd = &s.mmap_read_wait_1us;
	wr = &s.mmap_write_wait_1us;
	CHECK(&s.mmap_read_wait_long == rd + 6 && &s.mmap_write_wait_long == wr + 6,
	      "the buckets are not consecutive fields");
	for (int i = 0; i < 7; i++) {
		nrd += rd[i];
		nwr += wr[i];
		min_rd += rd[i] * lower_ns[i];
		min_wr += wr[i] * lower_ns[i];
	}
	CHECK(nrd == s.mmap_read_locks, "read buckets sum to %llu, acquisitions %llu",
	      (unsigned long long)nrd, (unsigned long long)s.mmap_read_locks);
	CHECK(nwr == s.mmap_write_locks, "write buckets sum to %llu, acquisitions %llu",
	      (unsigned long long)nwr, (unsigned long long)s.mmap_write_locks);
	CHECK(s.mmap_read_wait_ns >= min_rd && s.mmap_write_wait_ns >= min_wr,
	      "total waits %llu/%llu ns below the buckets' lower bounds %llu/%llu",
	      (unsigned long long)s.mmap_read_wait_ns, (unsigned long long)s.mmap_write_wait_ns,
	      (unsigned long long)min_rd, (unsigned long long)min_wr);
	CHECK(nrd > 0 && nwr > 0, "no acquisitions counted");
	printf("ok: the histograms of space-lock waits (%llu reads, %llu writes)\n",
	       (unsigned long long)nrd, (unsigned long long)nwr);
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_locks");
	sp = t_space_create(FL_DELIVERY_THREAD);
	/* Two VMAs with a gap, so they do not merge. */
	char *a =
		fl_mmap(sp, NULL, 3072 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	CHECK(a != MAP_FAILED, "mmap a");
	CHECK(fl_munmap(sp, a + 1024 * 4096, 1024 * 4096) == 0, "munmap the middle");
	char *b = a + 2048 * 4096;

	test_read_fails_while_write_locked(a);
	test_writer_waits_for_its_readers(a, b);
	test_rwsem();
	test_waiting_writer_blocks_readers();
	test_counters(a, b);
	test_wait_histogram();
	fl_space_destroy(sp);
	return T_EXIT_PASS;
}
