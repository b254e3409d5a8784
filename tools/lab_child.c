// SPDX-License-Identifier: MIT
/*
 * The lab's child (see lab.h): one run of one scenario under one subject, in
 * a process of its own.  It maps the scenario's areas, fills them page by
 * page (so that most of them are swapped out), runs the faulting threads and
 * the scenario's writer for a warm-up and then the measured window, checks
 * every page once more, and leaves its figures in the shared struct result.
 *
 * Verification: every page holds salt ^ (page << 9 | word) ^ (version << 40)
 * in each word.  Each access checks the whole page it touched; a write
 * (read-modify-write, by the page's only writer) checks the old version and
 * writes the next; after the threads stop, every page of the working set is
 * read back and checked against its last version.  A mismatch fails the run,
 * and the lab.
 *
 * Fault latency: each access times its first load or store of the page, and
 * is a fault if the thread took one meanwhile: faultline's per-thread count
 * in sigbus delivery (fl_thread_faults()), the kernel's otherwise
 * (getrusage(RUSAGE_THREAD): the kernel's own faults, and in thread delivery
 * the retried access after a handler served it).
 */
#define _GNU_SOURCE
#define TOOL "lab"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kside.h"
#include "lab.h"
#include "toolbox.h"

#define MAX_AREAS (FORK_VMAS + FORK_VMAS / 64 + 8)

enum area_kind {
	A_SHARED,  /* filled once, only read */
	A_OWNED,   /* read and written: page i belongs to thread i % T */
	A_STACK,   /* one thread's own: read and written by it only */
	A_GUARD,   /* PROT_NONE, never touched */
	A_TOGGLED, /* only read; the writer toggles its protection */
};

struct area {
	const char *name;
	size_t len;	/* the VMA */
	int prot;	/* after the fill */
	int flags;	/* extra mmap flags */
	size_t win_off; /* the pages accessed: [win_off, win_off + win_len) */
	size_t win_len;
	enum area_kind kind;
	unsigned int owner; /* A_STACK */
	char *base;
	uint64_t gp0;	       /* global index of the window's first page */
	uint64_t cum;	       /* pages of the windows of the areas before this one */
	_Atomic uint32_t *ver; /* per window page: its version (written by its owner) */
};

/* The child's state, passed to everything it runs. */
struct child {
	const struct lab_opts *opt;
	struct fl_space *sp; /* NULL: the kernel */
	struct result *res;
	enum scen sc;
	unsigned int threads;
	size_t region, budget;
	uint64_t salt;
	struct area areas[MAX_AREAS];
	unsigned int nareas;
	uint64_t total_pages; /* of the windows */
	atomic_bool stop, measuring, injected;
	bool lose_a_write; /* test-only: FL_LAB_INJECT=lostwrite */
	struct fl_hist acc, flt, wr;
	bool own_count; /* faults counted by fl_thread_faults() (sigbus delivery) */
	_Atomic uint64_t writer_ops, verified;
	/* mprotect-one-page */
	char *toggle_page;
	char stack_names[MAX_THREADS][24]; /* process: the areas' names */
};

/* nohuge: the kernel's areas get 4 KiB pages, as faultline's; the writers'
 * small scratch buffers need no extra call inside their timing. */
static void *x_mmap(struct child *c, size_t len, int prot, int flags, bool nohuge)
{
	void *p;

	if (c->sp)
		return fl_mmap(c->sp, NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p != MAP_FAILED && nohuge)
		madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static int x_munmap(struct child *c, void *p, size_t len)
{
	return c->sp ? fl_munmap(c->sp, p, len) : munmap(p, len);
}

static int x_mprotect(struct child *c, void *p, size_t len, int prot)
{
	return c->sp ? fl_mprotect(c->sp, p, len, prot) : mprotect(p, len, prot);
}

static inline uint64_t pattern(const struct child *c, uint64_t gp, unsigned int w, uint32_t v)
{
	return c->salt ^ (gp << 9 | w) ^ ((uint64_t)v << 40);
}

__attribute__((noreturn)) static void child_fail(struct child *c, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(c->res->error, sizeof(c->res->error), f, ap);
	va_end(ap);
	_exit(2);
}

__attribute__((noreturn)) static void mismatch(struct child *c, const struct area *a, uint64_t i,
					       unsigned int w, uint64_t got, uint32_t v)
{
	uint64_t x = got ^ c->salt;

	c->res->mismatch = 1;
	fmt(c->res->error, sizeof(c->res->error),
	    "DATA MISMATCH in %s page %" PRIu64 " (address %p) word %u: expected %#" PRIx64
	    " (version %u), read %#" PRIx64 " (%s page %" PRIu64 " word %" PRIu64
	    " version %" PRIu64 ")",
	    a->name, i, (void *)(a->base + a->win_off + i * PAGE), w, pattern(c, a->gp0 + i, w, v),
	    v, got, got ? "looks like" : "zero: never written or lost",
	    (x & ((UINT64_C(1) << 40) - 1)) >> 9, x & 0x1ff, x >> 40);
	_exit(4);
}

static void verify_page(struct child *c, const struct area *a, uint64_t i,
			const volatile uint64_t *p, uint32_t v)
{
	uint64_t gp = a->gp0 + i;

	for (unsigned int w = 0; w < WORDS; w++) {
		uint64_t got = p[w];

		if (got != pattern(c, gp, w, v))
			mismatch(c, a, i, w, got, v);
	}
}

static void write_page(const struct child *c, const struct area *a, uint64_t i,
		       volatile uint64_t *p, uint32_t v, unsigned int from)
{
	uint64_t gp = a->gp0 + i;

	for (unsigned int w = from; w < WORDS; w++)
		p[w] = pattern(c, gp, w, v);
}

static void add_area(struct child *c, const char *name, size_t len, int prot, int flags,
		     size_t win_off, size_t win_len, enum area_kind kind, unsigned int owner)
{
	struct area *a = &c->areas[c->nareas++];

	a->name = name;
	a->len = len;
	a->prot = prot;
	a->flags = flags;
	a->win_off = win_off;
	a->win_len = kind == A_GUARD ? 0 : win_len;
	a->kind = kind;
	a->owner = owner;
}

/* The scenario's areas, sized for region bytes of windows (the working set). */
static void build_areas(struct child *c)
{
	const int R = PROT_READ, RW = PROT_READ | PROT_WRITE;
	size_t region = c->region, s = region / (224 * MiB) ? region / (224 * MiB) : 1;
	unsigned int t;

	switch (c->sc) {
	case SC_PARALLEL:
	case SC_ELSEWHERE:
	case SC_THUNDERING:
	case SC_EXIT:
		add_area(c, "region", region, RW, MAP_NORESERVE, 0, region, A_SHARED, 0);
		break;
	case SC_FORK: {
		/* Many small VMAs of mixed kinds, as a large process has: they
		 * do not merge, their protections alternate. */
		size_t len = (region / FORK_VMAS) & ~(PAGE - 1);

		if (len < PAGE)
			len = PAGE;
		for (t = 0; t < FORK_VMAS; t++) {
			if (t % 64 == 63)
				add_area(c, "guard", PAGE, PROT_NONE, 0, 0, 0, A_GUARD, 0);
			add_area(c, t % 2 ? "data" : "rodata", len, t % 2 ? RW : R, 0, 0, len,
				 t % 2 ? A_OWNED : A_SHARED, 0);
		}
		break;
	}
	case SC_MPROTECT: {
		size_t vma = 64 * GiB > 4 * region ? 64 * GiB : 4 * region;
		size_t off = (vma / 2 - region / 2) & ~(PAGE - 1);

		add_area(c, "huge-vma", vma, RW, MAP_NORESERVE, off, region, A_SHARED, 0);
		break;
	}
	case SC_PROCESS:
		/* Program-like: sizes scale with --region (224 MiB of windows at 1x). */
		if (region < 224 * MiB)
			s = 0; /* smaller: divide below */
#define SZ(x) (s ? (x)*s : ((x) * (region / MiB) / 224 + PAGE - 1) & ~(PAGE - 1))
		add_area(c, "text:app", SZ(4 * MiB), R, 0, 0, SZ(4 * MiB), A_SHARED, 0);
		add_area(c, "text:libc", SZ(2 * MiB), R, 0, 0, SZ(2 * MiB), A_SHARED, 0);
		add_area(c, "text:libstdc++", SZ(2 * MiB), R, 0, 0, SZ(2 * MiB), A_SHARED, 0);
		add_area(c, "text:libm", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_SHARED, 0);
		add_area(c, "text:ld.so", SZ(256 << 10), R, 0, 0, SZ(256 << 10), A_SHARED, 0);
		add_area(c, "rodata:app", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_SHARED, 0);
		add_area(c, "rodata:libc", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_SHARED, 0);
		add_area(c, "data:app", SZ(512 << 10), RW, 0, 0, SZ(512 << 10), A_OWNED, 0);
		add_area(c, "data:libc", SZ(512 << 10), RW, 0, 0, SZ(512 << 10), A_OWNED, 0);
		add_area(c, "bss", SZ(1 * MiB), RW, 0, 0, SZ(1 * MiB), A_OWNED, 0);
		add_area(c, "heap", SZ(64 * MiB), RW, 0, 0, SZ(64 * MiB), A_OWNED, 0);
		add_area(c, "arena:1", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "arena:2", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "arena:3", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "arena:4", SZ(16 * MiB), RW, MAP_NORESERVE, 0, SZ(16 * MiB), A_OWNED,
			 0);
		add_area(c, "jit", SZ(1 * MiB), R, 0, 0, SZ(1 * MiB), A_TOGGLED, 0);
		add_area(c, "buffer:1", SZ(16 * MiB), RW, 0, 0, SZ(16 * MiB), A_OWNED, 0);
		add_area(c, "buffer:2", SZ(16 * MiB), RW, 0, 0, SZ(16 * MiB), A_OWNED, 0);
		add_area(c, "buffer:3", SZ(16 * MiB), RW, 0, 0, SZ(16 * MiB), A_OWNED, 0);
		add_area(c, "file-cache", SZ(32 * MiB), R, MAP_NORESERVE, 0, SZ(32 * MiB), A_SHARED,
			 0);
#undef SZ
		/* A stack per thread (8 MiB, the top 256 KiB used), each with a guard page. */
		for (t = 0; t < c->threads && c->nareas + 2 <= MAX_AREAS; t++) {
			fmt(c->stack_names[t], sizeof(c->stack_names[t]), "stack:%u", t);
			if (t < 4)
				add_area(c, "guard", PAGE, PROT_NONE, 0, 0, 0, A_GUARD, 0);
			add_area(c, c->stack_names[t], 8 * MiB, RW, MAP_NORESERVE | MAP_STACK,
				 8 * MiB - 256 * 1024, 256 * 1024, A_STACK, t);
		}
		break;
	default:
		break;
	}
}

static void map_and_fill(struct child *c)
{
	uint64_t gp = 0, t0 = now_ns();
	size_t lag = c->budget / PAGE / 2;
	unsigned int k;
	size_t i, n;

	for (k = 0; k < c->nareas; k++) {
		struct area *a = &c->areas[k];
		int prot = a->kind == A_GUARD ? PROT_NONE : PROT_READ | PROT_WRITE;

		a->base = x_mmap(c, a->len, prot, a->flags, true);
		if (a->base == MAP_FAILED)
			child_fail(c, "mmap %s (%zu bytes): %s", a->name, a->len, strerror(errno));
		n = a->win_len / PAGE;
		a->gp0 = gp;
		a->cum = c->total_pages;
		gp += n;
		c->total_pages += n;
		a->ver = calloc(n ? n : 1, sizeof(*a->ver));
		if (!a->ver)
			child_fail(c, "out of memory");
	}
	if (!c->total_pages)
		child_fail(c, "no pages to access");
	atomic_store(&c->res->phase, PH_FILL);
	for (k = 0; k < c->nareas; k++) {
		struct area *a = &c->areas[k];

		n = a->win_len / PAGE;
		for (i = 0; i < n; i++) {
			write_page(c, a, i, (volatile uint64_t *)(a->base + a->win_off + i * PAGE),
				   0, 0);
			/*
			 * The kernel: page out what was written half a budget
			 * ago, 2 MiB at a time.  Without it a cgroup v1 filled
			 * this fast sometimes OOM-kills instead of swapping (its
			 * reclaim gives up while the swap writes are in flight).
			 * The fill is not measured; the state it leaves is the
			 * same: the last pages written are the resident ones.
			 */
			if (!c->sp && (i + 1) % 512 == 0 && i + 1 >= lag + 512)
				madvise(a->base + a->win_off + (i + 1 - lag - 512) * PAGE,
					512 * PAGE, MADV_PAGEOUT);
		}
		if (a->prot != PROT_READ + PROT_WRITE && a->kind != A_GUARD &&
		    x_mprotect(c, a->base, a->len, a->prot))
			child_fail(c, "mprotect %s: %s", a->name, strerror(errno));
		c->res->fill_pages += n;
	}
	c->res->fill_secs = (double)(now_ns() - t0) / 1e9;
}

/* A page of the windows, uniformly: its area and index. */
static struct area *pick(struct child *c, uint64_t r, uint64_t *idx)
{
	uint64_t g = below(r, c->total_pages);
	unsigned int lo = 0, hi = c->nareas - 1;

	while (lo < hi) { /* the last area whose cum <= g */
		unsigned int mid = (lo + hi + 1) / 2;

		if (c->areas[mid].cum <= g)
			lo = mid;
		else
			hi = mid - 1;
	}
	while (!c->areas[lo].win_len) /* guards have no pages, and cum equal to the next */
		lo++;
	*idx = g - c->areas[lo].cum;
	return &c->areas[lo];
}

struct worker {
	struct child *c;
	pthread_t tid;
	unsigned int id;
	uint64_t rng;
	struct area *stack; /* process: its own stack */
	sigjmp_buf out;	    /* exit: where an access the teardown cut short goes */
};

/*
 * exit: an access the teardown cut short gets SIGSEGV (the region is gone);
 * the thread leaves through its worker's jump buffer.  Any other SIGSEGV is
 * a crash, as without the handler.
 */
static __thread struct worker *cur_worker;
static atomic_bool exiting;
static _Atomic uint64_t exit_last; /* when the last reader was cut short */

static void exit_segv(int sig)
{
	struct worker *w = cur_worker;

	if (w && atomic_load(&exiting))
		siglongjmp(w->out, 1);
	signal(sig, SIG_DFL); /* returns, faults again, dies as it would have */
}

/*
 * The faults this thread has taken so far: faultline's own count when the
 * thread serves its faults itself (sigbus delivery), the kernel's otherwise
 * (the kernel's own faults, and in thread delivery each fault a handler
 * served, counted when the access is retried).
 */
static uint64_t my_faults(const struct child *c)
{
	struct rusage ru;

	if (c->own_count)
		return fl_thread_faults();
	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

/* A timed access, classified: a fault if the thread took one meanwhile. */
static inline void record(struct child *c, uint64_t f0, uint64_t t0, uint64_t t1, bool on)
{
	if (!on)
		return;
	fl_hist_record(&c->acc, t1 - t0);
	if (my_faults(c) != f0)
		fl_hist_record(&c->flt, t1 - t0);
}

/* One access: read (and check) a page, or read-modify-write it. */
static void access_one(struct worker *w)
{
	struct child *c = w->c;
	uint64_t r = splitmix64(&w->rng), i, t0, t1, f0 = 0;
	struct area *a;
	volatile uint64_t *p;
	uint32_t v;
	bool on, wr = false;
	uint64_t x;

	if (c->sc == SC_PROCESS && w->stack && (r & 15) == 0) {
		a = w->stack; /* 1 in 16: the thread's own stack */
		i = below(splitmix64(&w->rng), a->win_len / PAGE);
		wr = true;
	} else {
		a = pick(c, r, &i);
		if (a->kind == A_STACK && a->owner != w->id) {
			a = NULL;
		} else if (a->kind == A_OWNED) {
			/* Its own page next to the one drawn. */
			i = i - i % c->threads + w->id;
			if (i >= a->win_len / PAGE)
				a = NULL;
			else
				wr = (splitmix64(&w->rng) % 10) < 3; /* 30 % writes */
		} else if (a->kind == A_STACK) {
			wr = true;
		}
		if (!a) { /* not ours to touch: a shared page instead */
			a = &c->areas[0];
			i = below(splitmix64(&w->rng), a->win_len / PAGE);
		}
	}
	p = (volatile uint64_t *)(a->base + a->win_off + i * PAGE);
	v = atomic_load_explicit(&a->ver[i], memory_order_relaxed);

	/* The version is 24 bits of the pattern: stop writing a page before it wraps. */
	if (v >= (1u << 24) - 1)
		wr = false;
	on = atomic_load_explicit(&c->measuring, memory_order_relaxed);
	if (on)
		f0 = my_faults(c);
	t0 = now_ns();
	x = p[0];
	t1 = now_ns();
	record(c, f0, t0, t1, on);
	if (x != pattern(c, a->gp0 + i, 0, v))
		mismatch(c, a, i, 0, x, v);
	verify_page(c, a, i, p, v);
	if (wr) {
		v++;
		on = atomic_load_explicit(&c->measuring, memory_order_relaxed);
		if (on)
			f0 = my_faults(c);
		t0 = now_ns();
		p[0] = pattern(c, a->gp0 + i, 0, v);
		t1 = now_ns();
		record(c, f0, t0, t1, on);
		if (w->id == 0 && c->lose_a_write && !atomic_exchange(&c->injected, true))
			p[0] = pattern(c, a->gp0 + i, 0, v - 1); /* test-only: a store lost */
		else
			write_page(c, a, i, p, v, 1);
		atomic_store_explicit(&a->ver[i], v, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&c->verified, 1, memory_order_relaxed);
}

static void *reader_main(void *arg)
{
	struct worker *w = arg;
	struct child *c = w->c;

	if (c->sc == SC_EXIT) {
		cur_worker = w;
		if (sigsetjmp(w->out, 1)) {
			uint64_t t = now_ns(), seen = atomic_load(&exit_last);

			/* The last reader cut short: the region is gone. */
			while (t > seen && !atomic_compare_exchange_weak(&exit_last, &seen, t))
				;
			__atomic_fetch_add(&c->res->exit_cut, 1, __ATOMIC_RELAXED);
			return NULL;
		}
	}
	/* exit: until the teardown cuts the thread short, however late it runs. */
	while (c->sc == SC_EXIT || !atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		access_one(w);
		atomic_fetch_add_explicit(&c->res->progress, 1, memory_order_relaxed);
	}
	return NULL;
}

static void timed(struct child *c, uint64_t t0)
{
	if (atomic_load_explicit(&c->measuring, memory_order_relaxed)) {
		fl_hist_record(&c->wr, now_ns() - t0);
		atomic_fetch_add_explicit(&c->writer_ops, 1, memory_order_relaxed);
	}
}

static void writer_elsewhere(struct child *c)
{
	uint64_t t0;
	void *p;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		t0 = now_ns();
		p = x_mmap(c, 64 << 10, PROT_READ | PROT_WRITE, 0, false);
		timed(c, t0);
		if (p == MAP_FAILED)
			child_fail(c, "writer: mmap: %s", strerror(errno));
		t0 = now_ns();
		if (x_munmap(c, p, 64 << 10))
			child_fail(c, "writer: munmap: %s", strerror(errno));
		timed(c, t0);
		if (c->opt->writer_pause_us)
			sleep_ns(c->opt->writer_pause_us * 1000ull);
	}
}

static void writer_mprotect(struct child *c)
{
	uint64_t next = now_ns(), t0;
	bool ro = false;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		next += 1000000; /* every millisecond */
		ro = !ro;
		t0 = now_ns();
		if (x_mprotect(c, c->toggle_page, PAGE, ro ? PROT_READ : PROT_READ | PROT_WRITE))
			child_fail(c, "writer: mprotect: %s", strerror(errno));
		timed(c, t0);
		sleep_until(next);
		if (now_ns() > next + 100000000)
			next = now_ns(); /* a long stall: do not burst to catch up */
	}
	if (ro)
		x_mprotect(c, c->toggle_page, PAGE, PROT_READ | PROT_WRITE);
}

static void writer_process(struct child *c)
{
	uint64_t rng = c->salt ^ 0x77, next = now_ns(), t0, r;
	struct area *jit = NULL;
	bool jit_rw = false;
	unsigned int k, j;
	char *p;

	for (k = 0; k < c->nareas; k++)
		if (c->areas[k].kind == A_TOGGLED)
			jit = &c->areas[k];
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		next += 1000000;
		r = splitmix64(&rng) % 4;
		if (r == 0 && jit) {
			/* The JIT flips its code between writable and read-only. */
			jit_rw = !jit_rw;
			t0 = now_ns();
			if (x_mprotect(c, jit->base, jit->len,
				       jit_rw ? PROT_READ | PROT_WRITE : PROT_READ))
				child_fail(c, "writer: mprotect: %s", strerror(errno));
			timed(c, t0);
		} else {
			/* A scratch buffer: mapped, half of the time used, unmapped. */
			size_t len = r == 1 ? 1 * MiB : 256 << 10;

			t0 = now_ns();
			p = x_mmap(c, len, PROT_READ | PROT_WRITE, 0, false);
			timed(c, t0);
			if (p == MAP_FAILED)
				child_fail(c, "writer: mmap: %s", strerror(errno));
			if (r == 1)
				for (j = 0; j < 16; j++) {
					volatile uint64_t *q =
						(volatile uint64_t *)(p + (size_t)j * 16 * PAGE);

					if (*q)
						child_fail(c, "writer: a fresh page is not zero");
					*q = j + 1;
					if (*q != j + 1)
						child_fail(c, "writer: a store was lost");
				}
			t0 = now_ns();
			if (x_munmap(c, p, len))
				child_fail(c, "writer: munmap: %s", strerror(errno));
			timed(c, t0);
		}
		sleep_until(next);
		if (now_ns() > next + 100000000)
			next = now_ns();
	}
	if (jit && jit_rw)
		x_mprotect(c, jit->base, jit->len, PROT_READ);
}

#ifdef LAB_TSAN
static void tsan_child_exits(void)
{
	_exit(0);
}
#endif

/*
 * fork's child: a sample of pages checked against what the parent had at
 * the fork.  The versions are the parent's as of the fork (its memory is
 * the child's copy); a page its owner was writing at that moment may hold
 * the next version in some words, so either is accepted, word by word.
 * Context: the child of fork(), one thread.
 */
__attribute__((noreturn)) static void fork_child(struct child *c, uint64_t rng)
{
	bool inject = lab_inject("forkmismatch");

#ifdef LAB_TSAN
	_exit(0);
#endif
	for (unsigned int n = 0; n < FORK_CHECK_PAGES; n++) {
		uint64_t i;
		struct area *a = pick(c, splitmix64(&rng), &i);
		volatile uint64_t *p = (volatile uint64_t *)(a->base + a->win_off + i * PAGE);
		uint32_t v = atomic_load_explicit(&a->ver[i], memory_order_relaxed);

		if (inject && a->prot & PROT_WRITE) {
			/* Test-only: the child's view wrong in one word, which
			 * its check must catch (its own copy: the parent's page
			 * stays as it is). */
			p[3] ^= 1ull << 62;
			inject = false;
		}

		for (unsigned int w = 0; w < WORDS; w++) {
			uint64_t got = p[w];

			if (got != pattern(c, a->gp0 + i, w, v) &&
			    got != pattern(c, a->gp0 + i, w, v + 1))
				mismatch(c, a, i, w, got, v); /* exits 4 */
		}
	}
	atomic_fetch_add(&c->res->fork_checked, FORK_CHECK_PAGES);
	_exit(0);
}

/* fork: every FORK_EVERY_MS a fork, timed; its child checks its view of
 * memory (fork_child()) while the parent's threads go on faulting. */
static void writer_fork(struct child *c)
{
	uint64_t rng = c->salt ^ 0xf0f0, next = now_ns(), t0;
	int st;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		pid_t pid;

		next += FORK_EVERY_MS * 1000000ull;
		t0 = now_ns();
		pid = c->sp ? fl_fork() : fork();
		if (pid == 0)
			fork_child(c, splitmix64(&rng));
		timed(c, t0);
		if (pid < 0)
			child_fail(c, "writer: fork: %s", strerror(errno));
		if (waitpid(pid, &st, 0) != pid)
			child_fail(c, "writer: waitpid: %s", strerror(errno));
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			if (c->res->mismatch) /* the child said what it saw */
				_exit(4);
			child_fail(c, "fork's child %s %d", WIFEXITED(st) ? "exited" : "died of",
				   WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		}
		sleep_until(next);
		if (now_ns() > next + 100000000)
			next = now_ns();
	}
}

static void *writer_main(void *arg)
{
	struct child *c = arg;

	switch (c->sc) {
	case SC_ELSEWHERE:
		writer_elsewhere(c);
		break;
	case SC_MPROTECT:
		writer_mprotect(c);
		break;
	case SC_PROCESS:
		writer_process(c);
		break;
	case SC_FORK:
		writer_fork(c);
		break;
	default:
		break;
	}
	return NULL;
}

/*
 * After the threads: every page of every window read back and checked
 * against its last version, so that no write and no page goes unchecked
 * however rarely the threads drew it.  Untimed.
 */
static void sweep(struct child *c)
{
	for (unsigned int k = 0; k < c->nareas; k++) {
		struct area *a = &c->areas[k];

		for (size_t i = 0; i < a->win_len / PAGE; i++)
			verify_page(c, a, i, (volatile uint64_t *)(a->base + a->win_off + i * PAGE),
				    atomic_load_explicit(&a->ver[i], memory_order_relaxed));
		c->res->swept += a->win_len / PAGE;
	}
}

void lab_stats_delta(struct fl_stats *d, const struct fl_stats *a, const struct fl_stats *b)
{
#define DELTA_(name, kind, desc) d->name = (kind) == FL_GAUGE ? b->name : b->name - a->name;
	FL_STATS_FIELDS(DELTA_)
#undef DELTA_
	/* Lifetime percentiles and gauges are not the window's: not reported. */
	d->fault_ns_p50 = d->fault_ns_p90 = d->fault_ns_p99 = d->fault_ns_p999 = 0;
	d->fault_ns_max = d->fault_ns_mean = 0;
}

/*
 * The forked child of a run: res is the shared memory its parent reads when
 * it has exited.
 */
__attribute__((noreturn)) void lab_child_main(const struct lab_opts *opt, const struct run *run,
					      struct result *res)
{
	enum scen sc = run->sc;
	struct child *c;
	struct worker *w;
	pthread_t wtid;
	struct fl_stats s0, s1;
	struct rusage ru0, ru1;
	struct ks_vmstat vm0, vm1;
	uint64_t t0, t1, td = 0; /* td: the teardown's start (exit) */
	unsigned int i, k;
	bool destroyed = false;
	int err;

	if (sc == SC_START)
		lab_start_child(opt, run, res); /* lab_start.c */
	c = calloc(1, sizeof(*c));
	if (!c) {
		fmt(res->error, sizeof(res->error), "out of memory");
		_exit(2);
	}
	c->opt = opt;
	c->res = res;
	c->sc = sc;
	c->threads = run->threads;
	c->region = run->region;
	c->budget = run->budget;
	c->salt = (opt->seed * 0x2545f4914f6cdd1dull) | 1ull << 63;
	if (run->sub->kernel) {
		err = ks_join_cgroup();
		if (err)
			child_fail(c, "joining the cgroup: %s", strerror(-err));
	} else {
		struct fl_config cfg;

		fl_config_init(&cfg);
		cfg.mem_limit = run->budget;
		cfg.policy = run->sub->policy;
		cfg.delivery = opt->delivery;
		cfg.swap_delay_us = run->sub->delay_us;
		cfg.fork = sc == SC_FORK; /* fl_fork() gives the child a copy */
#ifdef LAB_TSAN
		/* Before faultline's atfork handlers (registered at the first
		 * space): the fork's child leaves before faultline's child
		 * handler starts threads, which TSan cannot follow (lab.h). */
		if (sc == SC_FORK)
			pthread_atfork(NULL, NULL, tsan_child_exits);
#endif
		err = fl_space_create(&cfg, &c->sp);
		if (err)
			child_fail(c, "fl_space_create: %s", strerror(-err));
	}
	c->own_count = c->sp && opt->delivery == FL_DELIVERY_SIGBUS;
	c->lose_a_write = lab_inject("lostwrite");
	w = calloc(c->threads, sizeof(*w));
	if (!w)
		child_fail(c, "out of memory");
	build_areas(c);
	map_and_fill(c);
	res->vmas = c->nareas;
	if (lab_inject("mismatch")) {
		/* Test-only (tests/test_lab.c): a word changed behind the
		 * verifier's back, in every 64th page, must fail the run. */
		struct area *a = &c->areas[0];

		for (size_t pg = 0; pg < a->win_len / PAGE; pg += 64)
			((volatile uint64_t *)(a->base + a->win_off + pg * PAGE))[5] ^= 1;
	}
	if (sc == SC_MPROTECT)
		c->toggle_page = c->areas[0].base + c->areas[0].len / 2;

	if (sc == SC_EXIT) {
		struct sigaction sa = {.sa_handler = exit_segv};

		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
	}
	atomic_store(&res->phase, PH_WARM);
	for (i = 0; i < c->threads; i++) {
		w[i].id = i;
		w[i].c = c;
		w[i].rng = c->salt ^ (opt->seed << 20) ^ (i * 0x9e3779b97f4a7c15ull);
		for (k = 0; k < c->nareas; k++)
			if (c->areas[k].kind == A_STACK && c->areas[k].owner == i)
				w[i].stack = &c->areas[k];
		if (pthread_create(&w[i].tid, NULL, reader_main, &w[i]))
			child_fail(c, "pthread_create failed");
	}
	if (scen_defs[sc].writer && pthread_create(&wtid, NULL, writer_main, c))
		child_fail(c, "pthread_create failed");
	sleep_ns((uint64_t)(opt->warmup * 1e9));

	if (c->sp)
		fl_stats(c->sp, &s0);
	else
		ks_read_vmstat(&vm0);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	atomic_store(&c->measuring, true);
	atomic_store(&res->phase, PH_MEASURE);
	sleep_ns((uint64_t)(opt->seconds * 1e9));
	if (lab_inject("latewake"))
		sleep_ns(300000000); /* test-only: woken late, as when the machine stalls */
	atomic_store(&c->measuring, false);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (c->sp)
		fl_stats(c->sp, &s1);
	else
		ks_read_vmstat(&vm1);

	if (sc == SC_EXIT) {
		/* The teardown, with every reader still faulting. */
		atomic_store(&exiting, true);
		td = now_ns();
		if (c->sp) {
			fl_space_destroy(c->sp);
			destroyed = true;
		} else {
			for (k = 0; k < c->nareas; k++)
				munmap(c->areas[k].base, c->areas[k].len);
		}
		res->exit_ns = now_ns() - td;
	}
	atomic_store(&c->stop, true);
	for (i = 0; i < c->threads; i++)
		pthread_join(w[i].tid, NULL);
	if (scen_defs[sc].writer)
		pthread_join(wtid, NULL);
	if (sc == SC_EXIT && atomic_load(&exit_last) > td)
		res->exit_gone_ns = atomic_load(&exit_last) - td;

	res->secs = (double)(t1 - t0) / 1e9;
	fl_hist_snap_add(&res->acc, &c->acc);
	fl_hist_snap_add(&res->flt, &c->flt);
	fl_hist_snap_add(&res->wr, &c->wr);
	res->accesses = res->acc.count;
	res->faults = res->flt.count;
	res->ws_bytes = c->total_pages * PAGE;
	if (sc != SC_EXIT) /* exit: nothing left to sweep */
		sweep(c);
	res->writer_ops = atomic_load(&c->writer_ops);
	res->verified = atomic_load(&c->verified);
	if (c->sp) {
		lab_stats_delta(&res->d, &s0, &s1);
		res->all_faults = res->d.faults;
		res->majors = res->d.faults_major;
	} else {
		res->k_minflt = (uint64_t)(ru1.ru_minflt - ru0.ru_minflt);
		res->k_majflt = (uint64_t)(ru1.ru_majflt - ru0.ru_majflt);
		res->all_faults = res->k_minflt + res->k_majflt;
		res->majors = res->k_majflt;
		res->k_pswpin = vm1.pswpin - vm0.pswpin;
		res->k_pswpout = vm1.pswpout - vm0.pswpout;
		res->k_has_vma = vm1.has_vma_lock;
		for (i = 0; i < 4; i++)
			res->k_vma[i] = vm1.vma_lock[i] - vm0.vma_lock[i];
	}
	if (c->sp && !destroyed)
		fl_space_destroy(c->sp);
	atomic_store(&res->phase, PH_DONE);
	_exit(0);
}
