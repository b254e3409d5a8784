// SPDX-License-Identifier: MIT
/*
 * swapbench's workload and what a window of it records (see swapbench.h):
 * one thread filling the region page by page, T threads reading one verified
 * word of a random page each, one thread reading the paged-out region in
 * address order; the latencies, the 1-s intervals and the counters of the
 * subject, the disk and the machine around each window.
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kside.h"
#include "swapbench.h"

/* ---- What a window records: latencies, the subject's and the machine's counters ---- */

/*
 * The q-quantile in ns, as the tables print it: the middle of its bucket
 * (within 3 %, where fl_hist_percentile() gives the bucket's upper end), at
 * most the max; NAN when empty.
 */
double sb_hist_quantile(const struct fl_hist_snap *h, double q)
{
	unsigned int b;
	double mid;

	if (!h->count)
		return NAN;
	b = fl_hist_bucket_of(fl_hist_percentile(h, q));
	mid = ((double)fl_hist_bucket_low(b) + (double)fl_hist_bucket_high(b) + 1) / 2;
	return mid > (double)h->max ? (double)h->max : mid;
}

static void read_kcompressed(struct kcount *k);

static void read_kcount(struct kcount *k)
{
	char buf[16384], path[PATH_MAX + 32];

	memset(k, 0, sizeof(*k));
	ks_read_vmstat(&k->vm);
	if (!ks_kern.cg_path[0])
		return;
	fmt(path, sizeof(path), "%s/memory.stat", ks_kern.cg_path);
	if (!ks_read_file(path, buf, sizeof(buf))) {
		k->cg_pgmajfault = ks_kv_get(buf, "pgmajfault", 0, NULL);
		k->cg_pgfault = ks_kv_get(buf, "pgfault", 0, NULL);
		k->cg_swap = ks_kv_get(buf, "swap", 0, NULL);
		k->cg_rss = ks_kv_get(buf, "rss", 0, NULL);
	}
	fmt(path, sizeof(path), "%s/memory.usage_in_bytes", ks_kern.cg_path);
	k->cg_usage = (uint64_t)ks_read_long(path, 0);
	fmt(path, sizeof(path), "%s/memory.failcnt", ks_kern.cg_path);
	k->cg_failcnt = (uint64_t)ks_read_long(path, 0);
	read_kcompressed(k);
}

/* "Name:   N kB" of /proc/meminfo, in bytes. */
static uint64_t meminfo_bytes(const char *buf, const char *name)
{
	const char *p = strstr(buf, name);

	return p ? strtoull(p + strlen(name), NULL, 10) * 1024 : 0;
}

/* The kernel's compressed swap: zswap's pool and counters, our zram device's. */
static void read_kcompressed(struct kcount *k)
{
	char buf[16384], path[96];
	unsigned long long orig, compr, used;

	if (!ks_read_file("/proc/meminfo", buf, sizeof(buf))) {
		k->zswap_pool = meminfo_bytes(buf, "\nZswap:");
		k->zswapped = meminfo_bytes(buf, "\nZswapped:");
	}
	if (!ks_read_file("/proc/vmstat", buf, sizeof(buf))) {
		k->zswpin = ks_kv_get(buf, "zswpin", 0, NULL);
		k->zswpout = ks_kv_get(buf, "zswpout", 0, NULL);
		k->zswpwb = ks_kv_get(buf, "zswpwb", 0, NULL);
	}
	if (!ks_zram_sys()[0])
		return;
	fmt(path, sizeof(path), "%s/mm_stat", ks_zram_sys());
	if (!ks_read_file(path, buf, sizeof(buf)) &&
	    sscanf(buf, "%llu %llu %llu", &orig, &compr, &used) == 3) {
		k->zram_orig = orig;
		k->zram_compr = compr;
		k->zram_used = used;
	}
}

static uint64_t kernel_majflt(void)
{
	char buf[16384], path[PATH_MAX + 32];

	fmt(path, sizeof(path), "%s/memory.stat", ks_kern.cg_path);
	if (ks_read_file(path, buf, sizeof(buf)))
		return 0;
	return ks_kv_get(buf, "pgmajfault", 0, NULL);
}

/*
 * CPU seconds used so far by every user-space process but this benchmark
 * (the main process and the kernel child): utime + stime + cutime + cstime
 * from /proc/PID/stat, kernel threads left out.  A process that exits hands
 * its time to its parent's cutime, so a short-lived compiler still counts.
 * Kernel threads are left out because much of their work here is ours: I/O
 * completion, ext4's unwritten-extent conversion, swap writeback.
 */
static double others_cpu(struct swapbench *sb)
{
	double hz = (double)sysconf(_SC_CLK_TCK), sum = 0;
	pid_t self = getpid();
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64], buf[1024], *p;
		unsigned long long ut, st;
		long long cut, cst;
		unsigned long flags;
		pid_t pid;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)atoi(de->d_name);
		if (pid == self || pid == sb->main_pid || (sb->kchild > 0 && pid == sb->kchild))
			continue;
		fmt(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (ks_read_file(path, buf, sizeof(buf)))
			continue;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1,
				 " %*c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %llu %llu %lld %lld",
				 &flags, &ut, &st, &cut, &cst) != 5)
			continue;
		if (flags & 0x00200000) /* PF_KTHREAD */
			continue;
		sum += (double)(ut + st) / hz + (double)(cut + cst) / hz;
	}
	closedir(d);
	return sum;
}

/* read_cpu_times(), and the other processes' CPU time (others_cpu()). */
void sb_read_cpus(struct swapbench *sb, struct cpus *c, bool children)
{
	read_cpu_times(&c->t, children);
	c->others = others_cpu(sb);
}

/* Other processes' CPU seconds between two snapshots. */
double sb_foreign_of(const struct cpus *a, const struct cpus *b)
{
	double f = b->others - a->others;

	return f < 0 ? 0 : f;
}

/* ---- The workload: fill, then random verified reads ---- */

/*
 * Word w of page p holds salt ^ (p << 9 | w): every word of the region is
 * different and none is zero (bit 63 of salt is set), so a page read from the
 * wrong slot, a zero page or a stale copy is caught, and what was read says
 * where it came from.
 */
uint64_t sb_salt_of(uint64_t seed)
{
	uint64_t x = seed ^ 0x5357415042454e43ull; /* "SWAPBENC" */

	return (splitmix64(&x) | (1ull << 63)) & ~0x1ffull;
}

void sb_mismatch(struct swapbench *sb, const char *what, const volatile uint64_t *addr,
		 uint64_t salt, size_t page, unsigned int word, uint64_t got, size_t npages)
{
	const struct sb_opts *opt = &sb->opt;
	uint64_t want = sb_word(opt->data, salt, page, word), again = *addr, x = got ^ salt;
	char buf[768];
	int n;

	n = fmt(buf, sizeof(buf),
		"\nswapbench: DATA MISMATCH in %s, seed %" PRIu64 ": page %zu word %u "
		"(address %p): expected %#" PRIx64 ", read %#" PRIx64 ", read again %#" PRIx64 "\n",
		what, opt->seed, page, word, (const void *)addr, want, got, again);
	if (got == 0)
		n += fmt(buf + n, sizeof(buf) - (size_t)n,
			 "swapbench: the word reads as zero: a page never written, or lost\n");
	else if ((opt->data == DATA_PATTERN || !word) && (x >> 9) < npages)
		n += fmt(buf + n, sizeof(buf) - (size_t)n,
			 "swapbench: the value belongs to page %" PRIu64 " word %" PRIu64 "\n",
			 x >> 9, x & 0x1ff);
	ks_say(buf);
	ks_say("swapbench: ABORTING: faultline (or the kernel) returned wrong data\n");
	if (sb->in_child) {
		sb->in_child->mismatch = 1;
		fmt(sb->in_child->error, sizeof(sb->in_child->error), "data mismatch: see stderr");
		_exit(4);
	}
	fflush(stdout);
	ks_cleanup();
	_exit(4);
}

static uint64_t sampler_misses(struct sampler *s)
{
	struct fl_stats st;

	if (s->kind == K_KERNEL)
		return kernel_majflt();
	if (s->kind == K_BARE) {
		uint64_t copies;

		bare_counts(&s->sb->bare.b, &copies, NULL);
		return copies;
	}
	if (fl_stats(s->sp, &st))
		return 0;
	return st.faults_major;
}

/* A thread's role by its name (enum role). */
static unsigned char role_of(const char *comm)
{
	if (!strncmp(comm, "fl-handler", 10) || !strncmp(comm, "bare-handler", 12))
		return R_HANDLER;
	if (!strcmp(comm, "fl-reaper"))
		return R_REAPER;
	if (!strcmp(comm, "fl-kswapd"))
		return R_KSWAPD;
	if (!strncmp(comm, "fl-", 3))
		return R_REST;
	return R_APP;
}

/* The process's threads now (struct tasks); t->ok false if /proc says nothing.
 * The random reads take it while their readers live (they end before the
 * window's last snapshot). */
static void read_tasks(struct tasks *t)
{
	char path[96], buf[64];
	struct dirent *de;
	struct rusage ru;
	DIR *d;

	memset(t, 0, sizeof(*t));
	if (!getrusage(RUSAGE_SELF, &ru)) {
		t->vcs = (uint64_t)ru.ru_nvcsw;
		t->ivcs = (uint64_t)ru.ru_nivcsw;
	}
	d = opendir("/proc/self/task");
	if (!d)
		return;
	while ((de = readdir(d)) && t->n < MAX_TASKS) {
		unsigned long long run;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		fmt(path, sizeof(path), "/proc/self/task/%s/schedstat", de->d_name);
		if (ks_read_file(path, buf, sizeof(buf)) || sscanf(buf, "%llu", &run) != 1)
			continue;
		fmt(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		if (ks_read_file(path, buf, sizeof(buf)))
			continue;
		len = strlen(buf);
		if (len && buf[len - 1] == '\n')
			buf[len - 1] = 0;
		t->t[t->n].tid = (pid_t)atoi(de->d_name);
		t->t[t->n].role = role_of(buf);
		t->t[t->n].run_ns = run;
		t->n++;
	}
	closedir(d);
	t->ok = t->n > 0;
}

/*
 * Over window w, per miss (per: misses, or pages): the us of CPU of each
 * role's threads alive at both ends (R_REST takes the rest of the
 * process's own time: threads that ended, or were not read), and the
 * process's context switches.  NaN where the window has no figures.
 */
void sb_task_split(const struct window *w, double per, double *role_us, double *vcs, double *ivcs)
{
	double own = (w->c1.t.self - w->c0.t.self) * 1e6, sum = 0;
	bool ok = w->t0.ok && w->t1.ok && per > 0;
	unsigned int i, j, r;

	for (r = 0; r < NROLES; r++)
		role_us[r] = ok ? 0 : NAN;
	*vcs = *ivcs = NAN;
	if (!ok)
		return;
	for (i = 0; i < w->t1.n; i++)
		for (j = 0; j < w->t0.n; j++)
			if (w->t0.t[j].tid == w->t1.t[i].tid) {
				double us = (double)(w->t1.t[i].run_ns - w->t0.t[j].run_ns) / 1e3;

				role_us[w->t1.t[i].role] += us / per;
				sum += us;
				break;
			}
	if (own > sum)
		role_us[R_REST] += (own - sum) / per;
	*vcs = (double)(w->t1.vcs - w->t0.vcs) / per;
	*ivcs = (double)(w->t1.ivcs - w->t0.ivcs) / per;
}

void sb_sampler_snap(struct sampler *s, struct window *w, bool end)
{
	struct swapbench *sb = s->sb;

	if (s->kind == K_FL) {
		fl_stats(s->sp, end ? &w->fl1 : &w->fl0);
	} else if (s->kind == K_KERNEL) {
		read_kcount(end ? &w->k1 : &w->k0);
	} else if (s->kind == K_BARE) {
		struct bcount *b = end ? &w->b1 : &w->b0;

		bare_counts(&sb->bare.b, &b->copies, &b->exist);
		b->drops = atomic_load(&sb->bare.drops);
	}
	sb_read_disk(sb, end ? &w->d1 : &w->d0);
	sb_read_cpus(sb, end ? &w->c1 : &w->c0, false);
}

/* One thread writes every page in address order; pages per second. */
void sb_run_fill(struct sampler *s, uint64_t *base, size_t npages, uint64_t salt, struct window *w)
{
	int data = s->sb->opt.data;
	uint64_t t0, ta, tb, next, last_t;
	size_t p, last_p = 0;
	unsigned int i;

	memset(w, 0, sizeof(*w));
	sb_sampler_snap(s, w, false);
	t0 = last_t = now_ns();
	next = t0 + IVL_NS;
	tb = t0;
	for (p = 0; p < npages; p++) {
		uint64_t *pg = base + p * WORDS, x = salt ^ ((uint64_t)p << 9);

		ta = now_ns();
		if (data == DATA_PATTERN)
			for (i = 0; i < WORDS; i++)
				pg[i] = x ^ i;
		else
			for (i = 0; i < WORDS; i++)
				pg[i] = sb_word(data, salt, p, i);
		tb = now_ns();
		hist_add(&w->h, tb - ta);
		if (tb >= next && w->nivl < MAX_IVL) {
			w->ivl_ops[w->nivl++] =
				(float)((double)(p + 1 - last_p) * 1e9 / (double)(tb - last_t));
			last_p = p + 1;
			last_t = tb;
			next = tb + IVL_NS;
		}
	}
	w->secs = (double)(tb - t0) / 1e9;
	w->ops = npages;
	sb_sampler_snap(s, w, true);
	w->done = true;
}

/* The whole region paged out: the kernel's MADV_PAGEOUT, or faultline's.  Return: 0 or -errno. */
int sb_pageout(struct sampler *s, uint64_t *base, size_t len)
{
	if (s->kind == K_FL)
		return fl_madvise(s->sp, base, len, MADV_PAGEOUT) ? -errno : 0;
	return madvise(base, len, MADV_PAGEOUT) ? -errno : 0;
}

/*
 * One thread reads every word of the pages order[0..norder) (NULL: every
 * page in address order) and checks each; pages per second.  The caller
 * pages the region out first; with pass > 0 it is paged out again before
 * each page below pass but the first (the strided read's passes start
 * there), untimed: the clock stops while it runs.  The sequential, strided
 * and interleaved reads.  Return: 0 or -errno (the
 * page-out).
 */
int sb_run_order(struct sampler *s, uint64_t *base, size_t npages, uint64_t salt, const char *what,
		 struct window *w, const uint32_t *order, size_t norder, size_t pass)
{
	int data = s->sb->opt.data;
	uint64_t t0, ta, tb, next, last_t, m, last_m, paused = 0;
	size_t k, p, last_k = 0;
	unsigned int i;

	memset(w, 0, sizeof(*w));
	if (!order)
		norder = npages;
	sb_sampler_snap(s, w, false);
	last_m = sampler_misses(s);
	w->misses = last_m;
	t0 = last_t = now_ns();
	next = t0 + IVL_NS;
	tb = t0;
	for (k = 0; k < norder; k++) {
		const uint64_t *pg;
		uint64_t x, bad = 0;

		if (pass && k && order && order[k] < pass) {
			uint64_t tp = now_ns();
			int err = sb_pageout(s, base, npages * PAGE);

			if (err)
				return err;
			tp = now_ns() - tp;
			paused += tp;
			next += tp;
			last_t += tp;
		}
		p = order ? order[k] : k;
		pg = base + p * WORDS;
		x = salt ^ ((uint64_t)p << 9);
		ta = now_ns();
		if (data == DATA_PATTERN) {
			for (i = 0; i < WORDS; i++)
				bad |= pg[i] ^ (x ^ i);
		} else {
			for (i = 0; i < WORDS; i++)
				bad |= pg[i] ^ sb_word(data, salt, p, i);
		}
		tb = now_ns();
		if (__builtin_expect(bad != 0, 0)) {
			for (i = 0; i + 1 < WORDS && pg[i] == sb_word(data, salt, p, i); i++)
				;
			sb_mismatch(s->sb, what, pg + i, salt, p, i, pg[i], npages);
		}
		hist_add(&w->h, tb - ta);
		if (tb >= next && w->nivl < MAX_IVL) {
			m = sampler_misses(s);
			w->ivl_ops[w->nivl] =
				(float)((double)(k + 1 - last_k) * 1e9 / (double)(tb - last_t));
			w->ivl_miss[w->nivl] =
				(float)((double)(m - last_m) * 1e9 / (double)(tb - last_t));
			w->nivl++;
			last_k = k + 1;
			last_m = m;
			last_t = tb;
			next = tb + IVL_NS;
		}
	}
	w->secs = (double)(tb - t0 - paused) / 1e9;
	w->ops = norder;
	w->misses = sampler_misses(s) - w->misses;
	sb_sampler_snap(s, w, true);
	w->done = true;
	return 0;
}

/*
 * The pages of the strided read: every stride-th page from page 0, then
 * from page 1, and so on, stride passes that read each page once (the
 * region paged out before each: sb_run_order()'s pass = stride).
 * The interleaved read: the region cut into one part per stream, stream i
 * reading its part streams[i] pages apart from its start (one pass), the
 * streams taking turns in a random order (the seed's), as threads are
 * scheduled.  Return: the order (malloc'd) and its length in *n, or NULL.
 */
uint32_t *sb_order_stride(size_t npages, unsigned int stride, size_t *n)
{
	uint32_t *o = malloc(npages * sizeof(*o));
	size_t k = 0;

	if (!o)
		return NULL;
	for (size_t from = 0; from < stride; from++)
		for (size_t p = from; p < npages && k < npages; p += stride)
			o[k++] = (uint32_t)p;
	*n = k;
	return o;
}

uint32_t *sb_order_streams(size_t npages, const unsigned int *streams, unsigned int nstreams,
			   uint64_t seed, size_t *n)
{
	size_t part = npages / nstreams, next[MAX_STREAMS], left = 0, k = 0;
	uint32_t *o = malloc(npages * sizeof(*o));
	uint64_t rng = seed ^ 0x494e544552ull;
	unsigned int i;

	if (!o)
		return NULL;
	for (i = 0; i < nstreams; i++) {
		next[i] = i * part;
		left += (part + streams[i] - 1) / streams[i];
	}
	while (k < left) {
		i = (unsigned int)below(splitmix64(&rng), nstreams);
		if (next[i] >= (i + 1) * part)
			continue;
		o[k++] = (uint32_t)next[i];
		next[i] += streams[i];
	}
	*n = k;
	return o;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct read_ctl *ctl = rd->ctl;
	const uint64_t *base = ctl->base;
	uint64_t salt = ctl->salt, ops = 0;
	size_t npages = ctl->npages;
	int data = ctl->sb->opt.data;

	pthread_barrier_wait(&ctl->barrier);
	for (;;) {
		int ph = atomic_load_explicit(&ctl->phase, memory_order_relaxed);
		uint64_t r = splitmix64(&rd->rng), t0, t1, v;
		size_t page = (size_t)below(r, npages);
		unsigned int word = (unsigned int)(r & (WORDS - 1));
		const volatile uint64_t *addr = base + page * WORDS + word;

		if (ph == 2)
			break;
		t0 = now_ns();
		v = *addr;
		t1 = now_ns();
		if (__builtin_expect(v != sb_word(data, salt, page, word), 0))
			sb_mismatch(ctl->sb, ctl->what, addr, salt, page, word, v, npages);
		/* The page's tag: other data modes have zero words. */
		if (data != DATA_PATTERN && base[page * WORDS] != sb_expected(salt, page, 0))
			sb_mismatch(ctl->sb, ctl->what, base + page * WORDS, salt, page, 0,
				    base[page * WORDS], npages);
		if (ph == 1)
			hist_add(&rd->h, t1 - t0);
		atomic_store_explicit(&rd->ops, ++ops, memory_order_relaxed);
	}
	return NULL;
}

static uint64_t readers_ops(struct reader *rd, unsigned int n)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		sum += atomic_load_explicit(&rd[i].ops, memory_order_relaxed);
	return sum;
}

/* Seeds depend on the seed, T and the thread: every subject reads the same pages. */
uint64_t sb_reader_seed(uint64_t seed, unsigned int nthreads, unsigned int i, unsigned int round)
{
	uint64_t x = seed * 0x100000001b3ull + nthreads * 1000003ull + i * 101ull + round;

	return splitmix64(&x);
}

/*
 * T threads read random words for --warmup seconds, then for --seconds
 * measured; the window's reads, misses, latencies and 1-s intervals.  The
 * bare anchor's threads (s->kind K_BARE) read its region in its own order
 * (sb_bare_reader_main()), the others any page of base (reader_main()).
 * Return: 0 or a negative errno.
 */
int sb_run_reads(struct sampler *s, const uint64_t *base, size_t npages, uint64_t salt,
		 unsigned int nthreads, unsigned int round, const char *what, struct window *w)
{
	const struct sb_opts *opt = &s->sb->opt;
	struct read_ctl ctl;
	struct reader *rd;
	uint64_t t0, t1, tend, tprev, ops0, ops1, opsp, m0, m1, mp;
	unsigned int i;
	int err;

	memset(w, 0, sizeof(*w));
	if (posix_memalign((void **)&rd, 64, nthreads * sizeof(*rd)))
		return -ENOMEM;
	memset(rd, 0, nthreads * sizeof(*rd));
	memset(&ctl, 0, sizeof(ctl));
	atomic_init(&ctl.phase, 0);
	ctl.sb = s->sb;
	ctl.base = base;
	ctl.npages = npages;
	ctl.nthreads = nthreads;
	ctl.salt = salt;
	ctl.what = what;
	pthread_barrier_init(&ctl.barrier, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		rd[i].ctl = &ctl;
		rd[i].index = i;
		rd[i].rng = sb_reader_seed(opt->seed, nthreads, i, round);
		err = pthread_create(&rd[i].tid, NULL,
				     s->kind == K_BARE ? sb_bare_reader_main : reader_main, &rd[i]);
		if (err) {
			fprintf(stderr, "swapbench: pthread_create: %s\n", strerror(err));
			exit(2);
		}
	}
	pthread_barrier_wait(&ctl.barrier);
	sleep_until(now_ns() + (uint64_t)(opt->warmup * 1e9));

	sb_sampler_snap(s, w, false);
	read_tasks(&w->t0);
	m0 = mp = sampler_misses(s);
	ops0 = opsp = readers_ops(rd, nthreads);
	t0 = tprev = now_ns();
	atomic_store(&ctl.phase, 1);
	tend = t0 + (uint64_t)(opt->seconds * 1e9);
	for (;;) {
		uint64_t t = tprev + IVL_NS, o, m;

		sleep_until(t < tend ? t : tend);
		t = now_ns();
		o = readers_ops(rd, nthreads);
		m = sampler_misses(s);
		if (w->nivl < MAX_IVL && (t >= tend ? t - tprev > IVL_NS / 2 : true)) {
			w->ivl_ops[w->nivl] =
				(float)((double)(o - opsp) * 1e9 / (double)(t - tprev));
			w->ivl_miss[w->nivl] =
				(float)((double)(m - mp) * 1e9 / (double)(t - tprev));
			w->nivl++;
		}
		opsp = o;
		mp = m;
		tprev = t;
		if (t >= tend)
			break;
	}
	t1 = tprev;
	ops1 = opsp;
	m1 = mp;
	read_tasks(&w->t1);
	atomic_store(&ctl.phase, 2);
	for (i = 0; i < nthreads; i++) {
		pthread_join(rd[i].tid, NULL);
		fl_hist_snap_merge(&w->h, &rd[i].h);
	}
	sb_sampler_snap(s, w, true);
	pthread_barrier_destroy(&ctl.barrier);
	free(rd);
	w->secs = (double)(t1 - t0) / 1e9;
	w->ops = ops1 - ops0;
	w->misses = m1 - m0;
	w->done = true;
	return 0;
}

/*
 * The read passes after the random reads, each on the region paged out
 * whole: the sequential read (--no-seq), the strided read (--stride) and
 * the interleaved read (--streams), into wins[phase].  name: the subject's,
 * for the figures' names; *cur (if not NULL): the phase running.  Return: 0,
 * or -1 with what failed in err.
 */
int sb_run_passes(struct sampler *s, uint64_t *base, const char *name, struct window **wins,
		  volatile int *cur, char *err, size_t errlen)
{
	const struct sb_opts *opt = &s->sb->opt;
	size_t npages = opt->region / PAGE, n = 0;
	uint64_t salt = sb_salt_of(opt->seed);
	unsigned int ph;
	char what[96];

	for (ph = sb_seq_phase(opt); ph < sb_nphases(opt); ph++) {
		enum phase_kind kind = sb_phase_kind(opt, ph);
		uint32_t *order = NULL;
		int e;

		if (cur)
			*cur = (int)ph;
		fmt(what, sizeof(what), "%s.%s", name,
		    kind == PH_SEQ	? "seq"
		    : kind == PH_STRIDE ? "stride"
					: "inter");
		if (kind == PH_STRIDE)
			order = sb_order_stride(npages, opt->stride, &n);
		else if (kind == PH_INTER)
			order = sb_order_streams(npages, opt->streams, opt->nstreams, opt->seed,
						 &n);
		if (kind != PH_SEQ && !order) {
			fmt(err, errlen, "%s: out of memory", what);
			return -1;
		}
		e = sb_pageout(s, base, opt->region);
		if (!e)
			e = sb_run_order(s, base, npages, salt, what, wins[ph], order, n,
					 kind == PH_STRIDE ? opt->stride : 0);
		free(order);
		if (e) {
			fmt(err, errlen, "%s: MADV_PAGEOUT: %s", what, strerror(-e));
			return -1;
		}
	}
	return 0;
}
