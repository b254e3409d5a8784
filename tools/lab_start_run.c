// SPDX-License-Identifier: MIT
/*
 * The lab's start scenario, its run and its report (lab_start.c: the
 * scenario, and the plan this replays).
 */
#define _GNU_SOURCE
#define TOOL "lab"
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kside.h"
#include "lab_start.h"
#include "toolbox.h"

/* ---- the run: the forked child ----------------------------------------- */

/* How far a thread got, waited for with a futex. */
struct progress {
	_Atomic uint32_t n;
	_Atomic uint32_t waiters;
	char pad[56];
};

struct replay {
	struct fl_space *sp; /* NULL: the kernel */
	struct result *res;
	uint64_t delta[MAX_CLUSTERS];
	uint64_t salt;
	struct progress main_done;   /* mm calls done */
	struct progress *touch_done; /* per thread: touches done */
	struct fl_hist acc, flt, wr;
	bool own_count;
	_Atomic uint64_t verified;
	_Atomic bool go;
	bool inject_mismatch; /* test-only: FL_LAB_INJECT=mismatch */
	_Atomic bool injected;
};

static struct replay R;

__attribute__((noreturn, format(printf, 1, 2))) static void start_fail(const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(R.res->error, sizeof(R.res->error), f, ap);
	va_end(ap);
	_exit(2);
}

static void wait_for(struct progress *p, uint32_t target)
{
	for (unsigned int i = 0;; i++) {
		uint32_t v = atomic_load(&p->n);

		if (v >= target)
			return;
		if (i < 64) {
			__builtin_ia32_pause();
			continue;
		}
		atomic_fetch_add(&p->waiters, 1);
		v = atomic_load(&p->n);
		if (v < target)
			syscall(SYS_futex, &p->n, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
		atomic_fetch_sub(&p->waiters, 1);
	}
}

static void advance(struct progress *p)
{
	atomic_fetch_add(&p->n, 1);
	if (atomic_load(&p->waiters))
		syscall(SYS_futex, &p->n, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* The replay's address of a recorded one. */
static uint64_t tr(uint64_t a)
{
	for (unsigned int i = 0; i < P.ncl; i++)
		if (a >= P.cl[i].start && a < P.cl[i].end)
			return a + R.delta[i];
	start_fail("address %#" PRIx64 " outside the trace's clusters", a);
}

static inline uint64_t pat(uint32_t tag, unsigned int w)
{
	return R.salt ^ ((uint64_t)tag << 12 | w);
}

__attribute__((noreturn)) static void start_mismatch(uint64_t a, const char *what, unsigned int w,
						     uint64_t got, uint64_t want)
{
	R.res->mismatch = 1;
	fmt(R.res->error, sizeof(R.res->error),
	    "DATA MISMATCH at recorded page %#" PRIx64 " (replayed at %#" PRIx64
	    "), %s: word %u is %#" PRIx64 ", expected %#" PRIx64,
	    a, tr(a), what, w, got, want);
	_exit(4);
}

/* Check the page at p (recorded a) from word `from` on. */
static void check_page(uint64_t a, const volatile uint64_t *p, uint8_t expect, uint32_t tag,
		       unsigned int from)
{
	uint64_t buf[WORDS];

	switch (expect) {
	case X_ZERO:
		for (unsigned int w = from; w < WORDS; w++)
			if (p[w])
				start_mismatch(a, "anonymous, never written (zeros)", w, p[w], 0);
		break;
	case X_PATTERN:
		for (unsigned int w = from; w < WORDS; w++)
			if (p[w] != pat(tag, w))
				start_mismatch(a, "written by the replay", w, p[w], pat(tag, w));
		break;
	case X_FILE:
		for (unsigned int w = 0; w < WORDS; w++)
			buf[w] = p[w];
		if (!from && buf[0] != P.fp[tag].w0)
			start_mismatch(a, "the file's bytes", 0, buf[0], P.fp[tag].w0);
		if (page_hash(buf) != P.fp[tag].h)
			start_mismatch(a, "the file's bytes (hash of words 1-511)", 1, buf[1], 0);
		break;
	}
	atomic_fetch_add_explicit(&R.verified, 1, memory_order_relaxed);
}

static uint64_t my_faults(void)
{
	struct rusage ru;

	if (R.own_count)
		return fl_thread_faults();
	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

struct toucher {
	pthread_t tid;
	unsigned int k;
};

static void *toucher_main(void *arg)
{
	const struct toucher *me = arg;
	unsigned int k = me->k;
	struct progress *done = &R.touch_done[k];

	while (!atomic_load(&R.go))
		__builtin_ia32_pause();
	for (uint32_t i = 0; i < P.norder[k]; i++) {
		const struct touch *t = &P.t[P.order[k][i]];
		volatile uint64_t *p;
		uint64_t f0, t0, t1;

		wait_for(&R.main_done, t->dep);
		p = (volatile uint64_t *)tr(t->addr);
		f0 = my_faults();
		t0 = now_ns();
		if (t->write)
			p[0] = pat((uint32_t)(t - P.t) + 1, 0); /* the first write */
		else
			(void)p[0]; /* the first read */
		t1 = now_ns();
		fl_hist_record(&R.acc, t1 - t0);
		if (my_faults() != f0)
			fl_hist_record(&R.flt, t1 - t0);
		check_page(t->addr, p, t->expect, t->tag, t->write ? 1 : 0);
		if (t->write)
			for (unsigned int w = 1; w < WORDS; w++)
				p[w] = pat((uint32_t)(t - P.t) + 1, w);
		if (t->write && R.inject_mismatch && !atomic_exchange(&R.injected, true))
			p[5] ^= 1; /* test-only: a word changed behind the checks' back */
		atomic_fetch_add_explicit(&R.res->progress, 1, memory_order_relaxed);
		advance(done);
	}
	return NULL;
}

/* Reserve [a, a + len) again after it was unmapped: nothing else may land there. */
static void reserve(uint64_t a, uint64_t len)
{
	void *q = mmap((void *)a, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

	if (q == MAP_FAILED)
		start_fail("the replay's reservation at %#" PRIx64 " (+%#" PRIx64
			   ") was taken while it was unmapped (%s): run again",
			   a, len, strerror(errno));
}

static bool faultline_serves(const struct mm_ev *e)
{
	return R.sp && e->src != SRC_KERNEL;
}

static void do_mm(const struct mm_ev *e)
{
	uint64_t a = tr(e->addr), len = (e->len + PAGE - 1) & ~(PAGE - 1);
	int fd = e->file >= 0 ? P.files[e->file].fd : -1, ret = 0;
	void *p;

	switch (e->op) {
	case OP_MMAP: {
		int flags = MAP_PRIVATE | MAP_FIXED | (e->flags & MAP_NORESERVE) |
			    (fd < 0 ? MAP_ANONYMOUS : 0);

		if (faultline_serves(e)) {
			p = fl_mmap(R.sp, (void *)a, len, e->prot, flags, fd, (off_t)e->off);
		} else {
			p = mmap((void *)a, len, e->prot, flags, fd, (off_t)e->off);
			if (p != MAP_FAILED && fd < 0)
				madvise(p, len, MADV_NOHUGEPAGE); /* 4 KiB pages, as faultline's */
		}
		if (p == MAP_FAILED)
			start_fail("replaying mmap of %s at %#" PRIx64 " (+%#" PRIx64 "): %s",
				   fd >= 0 ? P.files[e->file].path : "anonymous memory", a, len,
				   strerror(errno));
		return;
	}
	case OP_MUNMAP:
		ret = faultline_serves(e) ? fl_munmap(R.sp, (void *)a, len)
					  : munmap((void *)a, len);
		if (!ret)
			reserve(a, len);
		break;
	case OP_MPROTECT:
		ret = faultline_serves(e) ? fl_mprotect(R.sp, (void *)a, len, e->prot)
					  : mprotect((void *)a, len, e->prot);
		break;
	case OP_MADVISE: {
		int adv =
			e->flags == MADV_FREE || e->flags == MADV_REMOVE ? MADV_DONTNEED : e->flags;

		if (adv == MADV_HUGEPAGE)
			return; /* 4 KiB pages in both */
		if (!faultline_serves(e)) {
			ret = madvise((void *)a, len, adv);
		} else if (adv == MADV_DONTNEED || adv == MADV_WILLNEED || adv == MADV_COLD ||
			   adv == MADV_PAGEOUT || adv == MADV_RANDOM || adv == MADV_SEQUENTIAL ||
			   adv == MADV_NORMAL) {
			ret = fl_madvise(R.sp, (void *)a, len, adv);
		} else {
			return; /* a hint faultline run answers without a call */
		}
		break;
	}
	case OP_MREMAP: {
		uint64_t na = tr(e->addr2), nlen = (e->len2 + PAGE - 1) & ~(PAGE - 1);
		int flags = MREMAP_MAYMOVE | MREMAP_FIXED | (e->flags & MREMAP_DONTUNMAP);

		/* The target is a reservation: the kernel's, released first. */
		if (na != a) {
			munmap((void *)na, nlen);
		} else {
			flags = 0; /* in place */
			if (nlen > len)
				munmap((void *)(a + len), nlen - len);
		}
		p = faultline_serves(e) ? fl_mremap(R.sp, (void *)a, len, nlen, flags, (void *)na)
					: mremap((void *)a, len, nlen, flags, (void *)na);
		if (p == MAP_FAILED)
			start_fail("replaying mremap %#" PRIx64 " -> %#" PRIx64 ": %s", a, na,
				   strerror(errno));
		if (na != a && !(flags & MREMAP_DONTUNMAP))
			reserve(a, len);
		else if (na == a && nlen < len)
			reserve(a + nlen, len - nlen);
		return;
	}
	}
	if (ret)
		start_fail("replaying %s at %#" PRIx64 " (+%#" PRIx64 "): %s",
			   e->op == OP_MUNMAP	  ? "munmap"
			   : e->op == OP_MPROTECT ? "mprotect"
						  : "madvise",
			   a, len, strerror(errno));
}

__attribute__((noreturn)) void lab_start_child(const struct lab_opts *opt, const struct run *run,
					       struct result *res)
{
	struct toucher *th;
	struct fl_stats s0, s1;
	struct rusage ru0, ru1;
	struct ks_vmstat vm0, vm1;
	uint64_t t0, t1, calls = 0;
	int err;

	R.res = res;
	R.salt = (opt->seed * 0x2545f4914f6cdd1dull) | 1ull << 63;
	if (run->sub->kernel) {
		err = ks_join_cgroup();
		if (err)
			start_fail("joining the cgroup: %s", strerror(-err));
	} else {
		struct fl_config cfg;

		fl_config_init(&cfg);
		cfg.mem_limit = run->budget;
		cfg.policy = run->sub->policy;
		cfg.delivery = opt->delivery;
		cfg.swap_delay_us = run->sub->delay_us;
		err = fl_space_create(&cfg, &R.sp);
		if (err)
			start_fail("fl_space_create: %s", strerror(-err));
	}
	R.own_count = R.sp && opt->delivery == FL_DELIVERY_SIGBUS;
	R.inject_mismatch = lab_inject("mismatch");
	/*
	 * The clusters far below where the kernel places new mappings (top
	 * down from mmap_base, near the top of the address space): a range the
	 * replay unmaps is reserved again at once (reserve()), but in between
	 * the kernel would give a hole near mmap_base to whoever maps next (a
	 * thread of faultline, the TSan runtime), and the replay could not go
	 * on.  0x7e9000000000 is application memory under ASan and TSan too.
	 */
	uint64_t hint = 0x7e9000000000ULL;
	for (unsigned int i = 0; i < P.ncl; i++) {
		uint64_t len = P.cl[i].end - P.cl[i].start;
		int fl = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
		void *q = mmap((void *)hint, len, PROT_NONE, fl | MAP_FIXED_NOREPLACE, -1, 0);

		if (q == MAP_FAILED)
			q = mmap(NULL, len, PROT_NONE, fl, -1, 0);
		hint += (len + (1ULL << 30) - 1) / (1ULL << 30) * (1ULL << 30) + (1ULL << 30);

		if (q == MAP_FAILED)
			start_fail("reserving %" PRIu64 " MiB of address space: %s", len >> 20,
				   strerror(errno));
		R.delta[i] = (uint64_t)q - P.cl[i].start;
	}
	R.touch_done = calloc(P.threads, sizeof(*R.touch_done));
	th = calloc(P.threads, sizeof(*th));
	if (!R.touch_done || !th)
		start_fail("out of memory");
	for (unsigned int k = 0; k < P.threads; k++) {
		th[k].k = k;
		if (pthread_create(&th[k].tid, NULL, toucher_main, &th[k]))
			start_fail("pthread_create failed");
	}
	atomic_store(&res->phase, PH_MEASURE);
	if (R.sp)
		fl_stats(R.sp, &s0);
	else
		ks_read_vmstat(&vm0);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	atomic_store(&R.go, true);
	for (size_t i = 0; i < P.nev; i++) {
		const struct mm_ev *e = &P.ev[i];
		uint64_t c0;

		for (unsigned int k = 0; k < P.threads; k++)
			wait_for(&R.touch_done[k], e->need[k]);
		for (uint32_t v = e->v0; v < e->v0 + e->nv; v++)
			check_page(P.vp[v].addr, (const volatile uint64_t *)tr(P.vp[v].addr),
				   P.vp[v].expect, P.vp[v].tag, 0);
		c0 = now_ns();
		do_mm(e);
		fl_hist_record(&R.wr, now_ns() - c0);
		calls++;
		advance(&R.main_done);
	}
	for (unsigned int k = 0; k < P.threads; k++)
		pthread_join(th[k].tid, NULL);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (R.sp)
		fl_stats(R.sp, &s1);
	else
		ks_read_vmstat(&vm1);
	/* Untimed: every touched page still mapped, once more. */
	for (size_t v = P.final0; v < P.nvp; v++)
		check_page(P.vp[v].addr, (const volatile uint64_t *)tr(P.vp[v].addr),
			   P.vp[v].expect, P.vp[v].tag, 0);
	res->swept = P.nvp - P.final0;
	res->secs = (double)(t1 - t0) / 1e9;
	fl_hist_snap_add(&res->acc, &R.acc);
	fl_hist_snap_add(&res->flt, &R.flt);
	fl_hist_snap_add(&res->wr, &R.wr);
	res->accesses = res->acc.count;
	res->faults = res->flt.count;
	res->writer_ops = calls;
	res->verified = atomic_load(&R.verified);
	res->ws_bytes = P.footprint;
	if (R.sp) {
		lab_stats_delta(&res->d, &s0, &s1);
		res->all_faults = res->d.faults;
		res->majors = res->d.faults_major + res->d.file_faults_major;
		fl_space_destroy(R.sp);
	} else {
		res->k_minflt = (uint64_t)(ru1.ru_minflt - ru0.ru_minflt);
		res->k_majflt = (uint64_t)(ru1.ru_majflt - ru0.ru_majflt);
		res->all_faults = res->k_minflt + res->k_majflt;
		res->majors = res->k_majflt;
		res->k_pswpin = vm1.pswpin - vm0.pswpin;
		res->k_pswpout = vm1.pswpout - vm0.pswpout;
	}
	atomic_store(&res->phase, PH_DONE);
	_exit(0);
}

/* ---- the report ------------------------------------------------------- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static const char *secs_str(double s, char *b, size_t len)
{
	if (s < 1)
		fmt(b, len, "%.0f ms", s * 1e3);
	else
		fmt(b, len, "%.2f s", s);
	return b;
}

/*
 * Printed above the scenario's tables: the trace, and per subject the time
 * the start took (median and spread over the rounds) and what it did.
 */
void lab_start_print(const struct lab *lab)
{
	char b[8][32];

	printf("   trace %s: %s\n", P.path, P.command[0] ? P.command : "(no command recorded)");
	printf("   %zu mm calls, %zu first touches (%u of the loader's pages: resident at the "
	       "end of the recording), %u files, %u recorded thread%s\n",
	       P.nev, P.nt, P.resident_touches, P.nfiles, P.rec_threads,
	       P.rec_threads == 1 ? "" : "s");
	printf("   page cache: %s\n",
	       !P.cache_tried	 ? "not dropped"
	       : P.cache_dropped ? "dropped before every run (cold start)"
				 : "NOT dropped (not root?): later runs find the files cached");
	if (!P.cache_dropped && P.cache_tried)
		printf("   (drop_caches: %s)\n", P.cache_error);
	printf("\n%-13s %9s %19s | %7s %7s %7s %7s %7s | %7s %7s %7s\n", "start", "time",
	       "(min .. max)", "touches", "faults", "major", "swapin", "fileio", "mm p50", "mm p99",
	       "mm max");
	for (unsigned int j = 0; j < lab->nsubjects; j++) {
		const struct subject *sub = &lab->subjects[j];
		double t[MAX_ROUNDS];
		unsigned int n = 0, failed = 0;
		const struct run *m = NULL;

		for (unsigned int i = 0; i < lab->nruns; i++) {
			const struct run *rn = &lab->runs[i];

			if (rn->sc != SC_START || rn->sub != sub)
				continue;
			if (rn->failed && !rn->contradiction) {
				failed++;
				continue;
			}
			t[n++] = rn->r.secs;
			m = lab_median_run(lab, rn);
		}
		if (!n) {
			if (failed)
				printf("%-13s all %u rounds failed\n", sub->name, failed);
			continue;
		}
		qsort(t, n, sizeof(t[0]), cmp_dbl);
		fmt(b[0], sizeof(b[0]), "%s", secs_str(m->r.secs, b[7], sizeof(b[7])));
		fmt(b[1], sizeof(b[1]), "(%s .. ", secs_str(t[0], b[7], sizeof(b[7])));
		fmt(b[2], sizeof(b[2]), "%s%s)", b[1], secs_str(t[n - 1], b[7], sizeof(b[7])));
		printf("%-13s %9s %19s | %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7s %7s | %6.1fus "
		       "%6.0fus %6.0fus%s\n",
		       sub->name, b[0], n > 1 ? b[2] : "", m->r.accesses, m->r.all_faults,
		       m->r.majors,
		       (fmt(b[3], sizeof(b[3]), "%" PRIu64,
			    sub->kernel ? m->r.k_pswpin : m->r.d.swap_ins),
			b[3]),
		       sub->kernel ? "n/a"
				   : (fmt(b[4], sizeof(b[4]), "%" PRIu64, m->r.d.file_reads), b[4]),
		       (double)fl_hist_percentile(&m->r.wr, 0.5) / 1e3,
		       (double)fl_hist_percentile(&m->r.wr, 0.99) / 1e3, (double)m->r.wr.max / 1e3,
		       failed ? "  (some rounds failed)" : "");
	}
	printf("time: from the first mm call to the last touch, median of the rounds (the run "
	       "shown below); faults: all of\nthe process's (the kernel: minor + major, its "
	       "fault-around maps up to 16 file pages a fault); major: read\nfrom the store or "
	       "the file; swapin: pages read from the store (the kernel: pswpin); fileio: pages\n"
	       "read from files. The kernel's mmap_lock has no counters to read without tracing "
	       "(the\nlock:contention_begin/end tracepoints, or CONFIG_LOCK_STAT): its time "
	       "only.\n");
}
