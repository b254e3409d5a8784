// SPDX-License-Identifier: MIT
/*
 * filebench: what a child does (see filebench.h).  It maps the file, the
 * kernel's way (mmap(2); the parent has put the child in the memory cgroup)
 * or faultline's (fl_mmap() in a space with mem_limit = the budget), runs
 * one workload on it, and leaves what it measured in the shared result:
 *
 *   random reads   T threads each read one 8-byte word of a uniformly
 *                  random page (any word but TAG_WORD) and check it, for
 *                  --warmup seconds untimed, then --seconds timed
 *   sequential     one thread reads one word of every page in address
 *                  order, checking each
 *   random writes  one thread stores to TAG_WORD of each of the parent's
 *                  list of distinct random pages of a MAP_SHARED mapping,
 *                  then msync(MS_SYNC)s the whole mapping (fl_msync() for
 *                  faultline); the parent reads the pages back from the
 *                  disk afterwards
 *   restore        a fresh program: (faultline: a space, with or without
 *                  FAULTLINE_WS_REPLAY) open, mmap MAP_PRIVATE, then touch
 *                  one word of each page of the working set in its order,
 *                  checking each; the time from before the space (or the
 *                  open) to the last touch
 *
 * Each child is a fresh process (and a fresh space), after the parent has
 * dropped the caches.  The child exits 0 with r->done set, 4 after a word
 * that does not match, 1 on any other failure, with r->error saying what.
 */
#define _GNU_SOURCE
#define TOOL "filebench"
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "filebench.h"

__attribute__((format(printf, 3, 4), noreturn)) static void fail(struct fb_result *r, int code,
								 const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(r->error, sizeof(r->error), f, ap);
	va_end(ap);
	_exit(code);
}

int fb_read_disk(const struct filebench *fb, struct fb_disk *d)
{
	char line[512];
	FILE *fp = fopen("/proc/diskstats", "re");
	unsigned int ma, mi;
	unsigned long long rd, rdm, rds, rdt, wr, wrm, wrs;
	char name[64];
	int found = -1;

	memset(d, 0, sizeof(*d));
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "%u %u %63s %llu %llu %llu %llu %llu %llu %llu", &ma, &mi, name,
			   &rd, &rdm, &rds, &rdt, &wr, &wrm, &wrs) == 10 &&
		    ma == fb->dev_major && mi == fb->dev_minor) {
			*d = (struct fb_disk){rd, rds, wr, wrs};
			found = 0;
			break;
		}
	fclose(fp);
	return found;
}

/* The file to work on, mapped one way or the other. */
struct target {
	const struct fb_subject *sub;
	struct fl_space *sp; /* faultline's, else NULL */
	int fd;
	volatile uint64_t *base;
	size_t len;
};

/* What the window's ends saw. */
struct snap {
	uint64_t t;
	double cpu;
	uint64_t majflt;
	long maxrss;
	struct fb_disk disk;
	struct fl_stats fl;
};

static void take(const struct filebench *fb, const struct target *t, struct snap *s)
{
	struct rusage ru;

	memset(s, 0, sizeof(*s));
	if (!getrusage(RUSAGE_SELF, &ru)) {
		s->cpu = rusage_secs(&ru);
		s->majflt = (uint64_t)ru.ru_majflt;
		s->maxrss = ru.ru_maxrss;
	}
	fb_read_disk(fb, &s->disk);
	if (t->sp)
		fl_stats(t->sp, &s->fl);
	s->t = now_ns();
}

static void finish(const struct snap *a, const struct snap *b, const struct target *t,
		   struct fb_result *r)
{
	r->secs = (double)(b->t - a->t) / 1e9;
	r->cpu = b->cpu - a->cpu;
	r->majflt = b->majflt - a->majflt;
	r->maxrss_kb = b->maxrss;
	r->disk = (struct fb_disk){b->disk.rd - a->disk.rd, b->disk.rd_sect - a->disk.rd_sect,
				   b->disk.wr - a->disk.wr, b->disk.wr_sect - a->disk.wr_sect};
	if (t->sp) {
		r->has_fl = true;
#define FB_DELTA_(name, kind, desc) \
	r->fl.name = (kind) == FL_COUNTER ? b->fl.name - a->fl.name : b->fl.name;
		FL_STATS_FIELDS(FB_DELTA_)
#undef FB_DELTA_
	}
}

static void make_space(const struct filebench *fb, struct target *t, const char *record,
		       const char *replay, struct fb_result *r)
{
	const struct fb_subject *sub = t->sub;
	struct fl_config cfg;
	int ret;

	if (fl_config_init(&cfg))
		fail(r, 1, "fl_config_init failed");
	cfg.mem_limit = fb->opt.budget;
	cfg.delivery = sub->delivery;
	if (sub->policy >= 0) {
		cfg.policy = sub->policy;
		cfg.file_policy = -1;
	}
	cfg.ws_record = record;
	cfg.ws_replay = replay;
	ret = fl_space_create(&cfg, &t->sp);
	if (ret)
		fail(r, 1, "fl_space_create: %s", strerror(-ret));
}

/* A descriptor of our own (a struct file of our own: the kernel's readahead state is in it). */
static void open_file(struct target *t, int file_fd, int flags, struct fb_result *r)
{
	char path[64];

	fmt(path, sizeof(path), "/proc/self/fd/%d", file_fd);
	t->fd = open(path, flags | O_CLOEXEC);
	if (t->fd < 0)
		fail(r, 1, "open %s: %s", path, strerror(errno));
}

static void map_file(struct target *t, size_t len, int prot, int flags, struct fb_result *r)
{
	void *p = t->sp ? fl_mmap(t->sp, NULL, len, prot, flags, t->fd, 0)
			: mmap(NULL, len, prot, flags, t->fd, 0);

	if (p == MAP_FAILED)
		fail(r, 1, "%s: %s", t->sp ? "fl_mmap" : "mmap", strerror(errno));
	t->base = p;
	t->len = len;
}

static void unmap_file(struct target *t)
{
	if (t->sp) {
		fl_munmap(t->sp, (void *)t->base, t->len);
		fl_space_destroy(t->sp);
		t->sp = NULL;
	} else {
		munmap((void *)t->base, t->len);
	}
	close(t->fd);
}

__attribute__((noreturn)) static void mismatch(struct fb_result *r, const char *what,
					       const volatile uint64_t *addr, size_t page,
					       size_t word, uint64_t want, uint64_t got)
{
	fail(r, 4,
	     "DATA MISMATCH in %s: page %zu word %zu at %p: expected %#" PRIx64 ", read %#" PRIx64
	     " (read again: %#" PRIx64 ")",
	     what, page, word, (const void *)addr, want, got, *addr);
}

/* ---- Random reads ---- */

struct reader {
	pthread_t tid;
	const struct filebench *fb;
	volatile const uint64_t *base;
	uint64_t rng;
	_Atomic uint64_t ops;
	_Atomic int *phase; /* 0 warm-up, 1 the window, 2 stop */
	pthread_barrier_t *barrier;
	struct fb_result *r;
	struct fl_hist h;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	size_t np = rd->fb->npages;
	uint64_t seed = rd->fb->opt.seed, ops = 0;

	pthread_barrier_wait(rd->barrier);
	for (;;) {
		int ph = atomic_load_explicit(rd->phase, memory_order_relaxed);
		size_t page = below(splitmix64(&rd->rng), np);
		size_t word = below(splitmix64(&rd->rng), TAG_WORD);
		const volatile uint64_t *addr = rd->base + page * WORDS + word;
		uint64_t t0, t1, v;

		if (ph == 2)
			break;
		t0 = now_ns();
		v = *addr;
		t1 = now_ns();
		if (__builtin_expect(v != fb_word(seed, 0, page, word), 0))
			mismatch(rd->r, "random reads", addr, page, word,
				 fb_word(seed, 0, page, word), v);
		if (ph == 1)
			fl_hist_record(&rd->h, t1 - t0);
		atomic_store_explicit(&rd->ops, ++ops, memory_order_relaxed);
	}
	return NULL;
}

static uint64_t readers_ops(struct reader *rd, unsigned int n)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < n; i++)
		sum += atomic_load_explicit(&rd[i].ops, memory_order_relaxed);
	return sum;
}

static void run_rand(const struct filebench *fb, struct target *t, unsigned int nthreads,
		     uint64_t tag, struct fb_result *r)
{
	struct reader *rd = calloc(nthreads, sizeof(*rd));
	pthread_barrier_t barrier;
	_Atomic int phase = 0;
	struct fl_hist_snap *hs = calloc(1, sizeof(*hs));
	struct snap a, b;
	uint64_t ops0;

	if (!rd || !hs)
		fail(r, 1, "out of memory");
	pthread_barrier_init(&barrier, NULL, nthreads + 1);
	for (unsigned int i = 0; i < nthreads; i++) {
		rd[i].fb = fb;
		rd[i].base = t->base;
		rd[i].rng = fb->opt.seed * 1000003 + tag * 64 + i;
		rd[i].phase = &phase;
		rd[i].barrier = &barrier;
		rd[i].r = r;
		if (pthread_create(&rd[i].tid, NULL, reader_main, &rd[i]))
			fail(r, 1, "pthread_create failed");
	}
	pthread_barrier_wait(&barrier);
	sleep_ns((uint64_t)(fb->opt.warmup * 1e9));
	take(fb, t, &a);
	ops0 = readers_ops(rd, nthreads);
	atomic_store(&phase, 1);
	sleep_ns((uint64_t)(fb->opt.seconds * 1e9));
	atomic_store(&phase, 2);
	take(fb, t, &b);
	r->ops = readers_ops(rd, nthreads) - ops0;
	for (unsigned int i = 0; i < nthreads; i++) {
		pthread_join(rd[i].tid, NULL);
		fl_hist_snap_add(hs, &rd[i].h);
	}
	finish(&a, &b, t, r);
	r->p50_ns = fl_hist_percentile(hs, 0.5);
	r->p99_ns = fl_hist_percentile(hs, 0.99);
	pthread_barrier_destroy(&barrier);
	free(hs);
	free(rd);
}

/* ---- The sequential pass ---- */

static void run_seq(const struct filebench *fb, struct target *t, struct fb_result *r)
{
	static struct fl_hist h;
	struct fl_hist_snap *hs = calloc(1, sizeof(*hs));
	uint64_t seed = fb->opt.seed;
	struct snap a, b;

	if (!hs)
		fail(r, 1, "out of memory");
	take(fb, t, &a);
	for (size_t page = 0; page < fb->npages; page++) {
		size_t word = page % TAG_WORD;
		const volatile uint64_t *addr = t->base + page * WORDS + word;
		uint64_t t0 = now_ns(), v = *addr, t1 = now_ns();

		if (__builtin_expect(v != fb_word(seed, 0, page, word), 0))
			mismatch(r, "the sequential pass", addr, page, word,
				 fb_word(seed, 0, page, word), v);
		fl_hist_record(&h, t1 - t0);
	}
	take(fb, t, &b);
	finish(&a, &b, t, r);
	r->ops = fb->npages;
	fl_hist_snap_add(hs, &h);
	r->p50_ns = fl_hist_percentile(hs, 0.5);
	r->p99_ns = fl_hist_percentile(hs, 0.99);
	free(hs);
}

/* ---- Random writes, then msync(MS_SYNC) ---- */

static void run_write(const struct filebench *fb, struct target *t, uint64_t tag,
		      struct fb_result *r)
{
	struct snap a, b;
	uint64_t mid;
	int ret;

	take(fb, t, &a);
	for (size_t i = 0; i < fb->opt.write_pages; i++) {
		size_t page = fb->wpages[i];

		t->base[page * WORDS + TAG_WORD] = fb_tag(tag, page);
	}
	mid = now_ns();
	ret = t->sp ? fl_msync(t->sp, (void *)t->base, t->len, MS_SYNC)
		    : msync((void *)t->base, t->len, MS_SYNC);
	if (ret)
		fail(r, 1, "%s(MS_SYNC): %s", t->sp ? "fl_msync" : "msync", strerror(errno));
	take(fb, t, &b);
	finish(&a, &b, t, r);
	r->ops = fb->opt.write_pages;
	r->store_secs = (double)(mid - a.t) / 1e9;
	r->sync_secs = (double)(b.t - mid) / 1e9;
}

/* ---- Snapshot restore ---- */

static void run_restore(const struct filebench *fb, struct target *t, const char *record,
			struct fb_result *r)
{
	const struct fb_subject *sub = t->sub;
	uint64_t seed = fb->opt.seed;
	struct snap a, b;

	take(fb, t, &a); /* no space yet: faultline's counters start at 0 */
	if (sub->kind == S_FL)
		make_space(fb, t, record, sub->replay ? fb->ws_path : NULL, r);
	open_file(t, fb->snap_fd, O_RDONLY, r);
	map_file(t, fb->npages * PAGE, PROT_READ, MAP_PRIVATE, r);
	for (size_t i = 0; i < fb->ws_pages; i++) {
		size_t page = fb->ws_order[i], word = page % TAG_WORD;
		const volatile uint64_t *addr = t->base + page * WORDS + word;
		uint64_t v = *addr;

		if (__builtin_expect(v != fb_word(seed, 1, page, word), 0))
			mismatch(r, "the restore", addr, page, word, fb_word(seed, 1, page, word),
				 v);
	}
	take(fb, t, &b);
	finish(&a, &b, t, r);
	r->ops = fb->ws_pages;
}

void fb_child(struct filebench *fb, const struct fb_fig *fig, const struct fb_subject *sub,
	      uint64_t tag, const char *ws_record, struct fb_result *r)
{
	struct target t = {.sub = sub, .fd = -1};

	if (fig->ph == PH_RESTORE) {
		run_restore(fb, &t, ws_record, r);
	} else {
		if (sub->kind == S_FL)
			make_space(fb, &t, NULL, NULL, r);
		if (fig->ph == PH_WRITE) {
			open_file(&t, fb->data_fd, O_RDWR, r);
			map_file(&t, fb->npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, r);
			run_write(fb, &t, tag, r);
		} else {
			open_file(&t, fb->data_fd, O_RDONLY, r);
			map_file(&t, fb->npages * PAGE, PROT_READ, MAP_SHARED, r);
			if (fig->ph == PH_RAND)
				run_rand(fb, &t, fig->threads, tag, r);
			else
				run_seq(fb, &t, r);
		}
	}
	unmap_file(&t);
	r->done = 1;
}
