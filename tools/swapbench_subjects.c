// SPDX-License-Identifier: MIT
/*
 * swapbench's subjects other than the device (see swapbench.h): the bare
 * userfaultfd swap-in (tools/bare.c serving a region of its own), the kernel
 * (its swap in a memory cgroup, in a forked child) and faultline (one space
 * per delivery and policy).  Each runs the phases of the workload and leaves
 * a window per phase and round.
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kside.h"
#include "swapbench.h"

/* ---- The bare anchor: userfaultfd, no faultline ---- */

/*
 * The bare userfaultfd swap-in, the best any design on userfaultfd can do for
 * a random-read miss here: a fresh anonymous region (BARE_PAGES, registered
 * UFFDIO_REGISTER_MODE_MISSING on its own userfaultfd) in which every access
 * is a miss.  Application thread i of T reads one word of every page of a
 * slice of BARE_SLICE pages once, in a random order, then drops the slice
 * (one MADV_DONTNEED per BARE_SLICE misses) and goes on to the next of its
 * own slices.  Page p of the region holds block bare_block(p) of the probe
 * file, random over the whole file, so the disk sees what the device probe
 * makes it see.  A miss is served by a pread of that block into an aligned
 * buffer and a UFFDIO_COPY: in thread delivery by one of T handler threads,
 * all blocked in read() on the one userfaultfd; in sigbus delivery
 * (UFFD_FEATURE_SIGBUS) by the faulting thread's own SIGBUS handler.
 */

/* The probe file's block that page p of the bare region holds. */
static inline uint64_t bare_block(const struct swapbench *sb, size_t p)
{
	uint64_t x = sb->bare.key ^ p;

	return below(splitmix64(&x), sb->probe.pages);
}

/*
 * The contents of page addr of the bare region: its block of the probe
 * file, read into buf (PAGE bytes, PAGE-aligned for O_DIRECT).
 * Async-signal-safe.
 */
static const void *bare_contents(struct bare *b, uintptr_t addr, bool write, char *buf)
{
	const struct swapbench *sb = b->cfg.priv;
	uint64_t block = bare_block(sb, (addr - b->start) / PAGE);
	ssize_t n;

	do
		n = pread(sb->probe.fd, buf, PAGE, (off_t)(block * PAGE));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)PAGE)
		bare_fatal(b, "pread of the probe file", n < 0 ? errno : EIO, addr);
	return buf;
}

/*
 * A reader of the bare anchor (see above): like reader_main(), but every
 * access a miss, checked against the probe file's block.
 */
void *sb_bare_reader_main(void *arg)
{
	struct reader *rd = arg;
	struct read_ctl *ctl = rd->ctl;
	struct swapbench *sb = ctl->sb;
	size_t per = BARE_PAGES / BARE_SLICE / ctl->nthreads, pass;
	uint64_t salt = ctl->salt, ops = 0;

	if (bare_thread_enter(&sb->bare.b))
		bare_fatal(&sb->bare.b, "bare_thread_enter", ENOSPC, 0);
	pthread_barrier_wait(&ctl->barrier);
	for (pass = 0;; pass++) {
		size_t slice = (rd->index * per + pass % per) * BARE_SLICE, k;
		/* An odd multiplier mod a power of two: each page once. */
		uint64_t mul = splitmix64(&rd->rng) | 1, add = splitmix64(&rd->rng);

		for (k = 0; k < BARE_SLICE; k++) {
			int ph = atomic_load_explicit(&ctl->phase, memory_order_relaxed);
			size_t page = slice + (size_t)((k * mul + add) & (BARE_SLICE - 1));
			unsigned int word = (unsigned int)(splitmix64(&rd->rng) & (WORDS - 1));
			const volatile uint64_t *addr = ctl->base + page * WORDS + word;
			uint64_t t0, t1, v, block;

			if (ph == 2)
				goto out;
			t0 = now_ns();
			v = *addr;
			t1 = now_ns();
			block = bare_block(sb, page);
			if (__builtin_expect(v != sb_expected(salt, block, word), 0)) {
				char msg[160];

				fmt(msg, sizeof(msg),
				    "\nswapbench: %s: page %zu of the bare region, which holds "
				    "block %" PRIu64 " of the probe file: the page below\n",
				    ctl->what, page, block);
				ks_say(msg);
				sb_mismatch(sb, ctl->what, addr, salt, block, word, v,
					    sb->probe.pages);
			}
			if (ph == 1)
				hist_add(&rd->h, t1 - t0);
			atomic_store_explicit(&rd->ops, ++ops, memory_order_relaxed);
		}
		if (madvise((void *)(ctl->base + slice * WORDS), BARE_SLICE * PAGE, MADV_DONTNEED))
			bare_fatal(&sb->bare.b, "madvise(MADV_DONTNEED) of a slice", errno, 0);
		atomic_fetch_add_explicit(&sb->bare.drops, 1, memory_order_relaxed);
	}
out:
	bare_thread_exit();
	return NULL;
}

/*
 * A fresh bare region and what serves its misses: nthreads handler threads,
 * or (sigbus) the SIGBUS handler.  The probe file must be ready.
 * Return: 0, or a negative errno with err set and nothing left behind.
 */
static int run_bare_setup(struct swapbench *sb, bool sigbus, unsigned int nthreads, char *err,
			  size_t errlen)
{
	const struct sb_opts *opt = &sb->opt;
	const struct bare_config cfg = {
		.tool = TOOL,
		.len = BARE_PAGES * PAGE,
		.sigbus = sigbus,
		.threads = nthreads,
		.cpu = -1,
		.contents = bare_contents,
		.priv = sb,
		.cleanup = ks_cleanup,
	};
	uint64_t x = opt->seed ^ 0x4241524555464644ull; /* "BAREUFFD" */

	sb->bare.key = splitmix64(&x);
	atomic_store(&sb->bare.drops, 0);
	return bare_setup(&sb->bare.b, &cfg, err, errlen);
}

/* The bare anchor of sub->delivery: a window per thread count, each on a fresh region. */
void sb_run_bare(struct swapbench *sb, struct subject *sub, unsigned int round)
{
	const struct sb_opts *opt = &sb->opt;
	struct sampler s = {.sb = sb, .kind = K_BARE};
	uint64_t salt = sb_salt_of(opt->seed);
	char what[64];
	unsigned int i;
	int err;

	if (sb_probe_prepare(sb, sub->error, sizeof(sub->error))) {
		sub->failed = true;
		return;
	}
	for (i = 0; i < opt->nthreads; i++) {
		unsigned int t = opt->threads[i];

		sb_phase_name(sb, sub, 1 + i, what, sizeof(what));
		/* What its slices may hold at once (see "Preheat"). */
		if (opt->preheat)
			preheat(t * BARE_SLICE * PAGE);
		ks_watchdog(opt->timeout + (unsigned int)(opt->warmup + opt->seconds), what);
		err = run_bare_setup(sb, sub->delivery == FL_DELIVERY_SIGBUS, t, sub->error,
				     sizeof(sub->error));
		if (!err) {
			err = sb_run_reads(&s, (uint64_t *)sb->bare.b.base, BARE_PAGES, salt, t,
					   round, what, W(sub, 1 + i, round));
			if (err)
				fmt(sub->error, sizeof(sub->error), "%s: %s", what, strerror(-err));
			bare_teardown(&sb->bare.b);
		}
		alarm(0);
		if (err) {
			sub->failed = true;
			return;
		}
	}
}

/* ---- The kernel: a swap file, a memory cgroup, a child ---- */

/* The swap file in the stores' file system, the cgroup with the budget. */
int sb_kernel_prepare(struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;

	return ks_kernel_prepare(opt->dir, opt->swapfile, opt->budget, opt->swappiness);
}

/* zswap's max_pool_percent nearest to --pool (at least 1): a percentage of the RAM. */
unsigned int sb_zswap_percent(const struct sb_opts *opt)
{
	double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)PAGE;
	double pct = ram > 0 ? (double)opt->pool * 100 / ram : 1;

	return pct < 1.5 ? 1 : (unsigned int)(pct + 0.5);
}

/*
 * The kernel's compressed swap for a variant, on (zswap in front of the
 * swap file, or a zram device instead of it), with the cgroup's limit such
 * that memory and pool together are the budget, as faultline's pool counts
 * against its own: the budget less the pool, which a cgroup v1 memory group
 * is not charged with (zswap's: measured, the group's usage stays its rss
 * while the pool grows; zram's memory is charged to no cgroup).  Return:
 * 0, or -1 with the error in sub.
 */
static int kernel_variant_on(struct swapbench *sb, struct subject *sub)
{
	const struct sb_opts *opt = &sb->opt;
	size_t limit = sub->kv.variant == KV_SWAP ? opt->budget : opt->budget - opt->pool;
	int err = ks_set_budget(limit);

	if (err) {
		fmt(sub->error, sizeof(sub->error), "the cgroup's limit %zu: %s", limit,
		    strerror(-err));
		return -1;
	}
	if (sub->kv.variant == KV_ZRAM) {
		/* As large as the region: the swap never full; its memory capped at the pool. */
		if (ks_zram_on(sub->kv.alg, opt->region + (16UL << 20), opt->pool)) {
			fmt(sub->error, sizeof(sub->error), "%s", ks_kern.error);
			return -1;
		}
		return 0;
	}
	if (sub->kv.variant == KV_ZSWAP &&
	    ks_zswap_on(sub->kv.alg, sb_zswap_percent(opt), opt->zswap_page_cluster)) {
		fmt(sub->error, sizeof(sub->error), "%s", ks_kern.error);
		return -1;
	}
	err = ks_swapon();
	if (err) {
		fmt(sub->error, sizeof(sub->error), "swapon: %s", strerror(-err));
		ks_zswap_off();
		return -1;
	}
	return 0;
}

static void kernel_variant_off(void)
{
	ks_swapoff();
	ks_zram_off();
	ks_zswap_off();
}

static void kernel_child(struct swapbench *sb, struct subject *sub, struct kshared *sh,
			 unsigned int round)
{
	const struct sb_opts *opt = &sb->opt;
	char what[64];
	struct sampler s = {.sb = sb, .kind = K_KERNEL};
	size_t npages = opt->region / PAGE;
	uint64_t salt = sb_salt_of(opt->seed);
	uint64_t *base;
	unsigned int i;
	int err;

	sb->in_child = sh;
	err = ks_join_cgroup();
	if (err) {
		fmt(sh->error, sizeof(sh->error), "joining %s: %s", ks_kern.cg_path,
		    strerror(-err));
		_exit(2);
	}
	base = mmap(NULL, opt->region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		fmt(sh->error, sizeof(sh->error), "mmap: %s", strerror(errno));
		_exit(2);
	}
	/* 4 KiB pages whatever the THP policy: the unit faultline serves. */
	madvise(base, opt->region, MADV_NOHUGEPAGE);
	sb_run_fill(&s, base, npages, salt, &sh->w[0]);
	for (i = 0; i < opt->nthreads; i++) {
		sh->phase = 1 + (int)i;
		fmt(what, sizeof(what), "%s.read.t%u", sub->name, opt->threads[i]);
		err = sb_run_reads(&s, base, npages, salt, opt->threads[i], round, what,
				   &sh->w[1 + i]);
		if (err) {
			fmt(sh->error, sizeof(sh->error), "%s: %s", what, strerror(-err));
			_exit(2);
		}
	}
	{
		struct window *wins[MAX_PHASES];

		for (i = 0; i < MAX_PHASES; i++)
			wins[i] = &sh->w[i];
		if (sb_run_passes(&s, base, sub->name, wins, &sh->phase, sh->error,
				  sizeof(sh->error)))
			_exit(2);
	}
	munmap(base, opt->region);
	_exit(0);
}

void sb_run_kernel(struct swapbench *sb, struct subject *sub, unsigned int round)
{
	const struct sb_opts *opt = &sb->opt;
	struct kshared *sh;
	pid_t pid;
	int status = 0;
	unsigned int i;
	uint64_t ooms;

	if (sb_kernel_prepare(sb)) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "%s", ks_kern.error);
		return;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "mmap: %s", strerror(errno));
		return;
	}
	memset(sh, 0, sizeof(*sh));
	if (kernel_variant_on(sb, sub)) {
		sub->failed = true;
		munmap(sh, sizeof(*sh));
		return;
	}
	if (opt->preheat)
		preheat(opt->budget);
	ooms = ks_oom_kills();
	/* ks_fork(): no signal between fork() and recording the child for ks_cleanup(). */
	pid = ks_fork();
	if (pid == 0)
		kernel_child(sb, sub, sh, round);
	if (pid < 0) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "fork: %s", strerror(errno));
	} else {
		sb->kchild = pid;
		ks_wait(pid, &status, opt->timeout * sb_nphases(opt),
			"kernel (the child: fill, reads, sequential read)");
		sb->kchild = 0;
	}
	kernel_variant_off();
	if (pid < 0)
		goto out;
	if (sh->mismatch) {
		fflush(stdout);
		ks_cleanup();
		_exit(4);
	}
	if (WIFSIGNALED(status) && ks_oom_kills() > ooms) {
		/* The cgroup's OOM killer, which the system's DAMON can bring on
		 * by filling the compressed swap with other processes' pages:
		 * this round's finished windows count, and the next round runs. */
		sb_phase_name(sb, sub, (unsigned int)sh->phase, sub->oom_where,
			      sizeof(sub->oom_where));
		sub->oom_rounds++;
		for (i = 0; i < sb_nphases(opt); i++)
			if (sh->w[i].done)
				*W(sub, i, round) = sh->w[i];
	} else if (WIFSIGNALED(status)) {
		char ph[64];

		sb_phase_name(sb, sub, (unsigned int)sh->phase, ph, sizeof(ph));
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "the child was killed by %s in %s",
		    strsignal(WTERMSIG(status)), ph);
	} else if (WEXITSTATUS(status)) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "the child failed (status %d): %s",
		    WEXITSTATUS(status), sh->error[0] ? sh->error : "?");
	} else {
		for (i = 0; i < sb_nphases(opt); i++)
			*W(sub, i, round) = sh->w[i];
	}
out:
	munmap(sh, sizeof(*sh));
}

/* ---- faultline ---- */

void sb_run_faultline(struct swapbench *sb, struct subject *sub, unsigned int round)
{
	const struct sb_opts *opt = &sb->opt;
	struct fl_config cfg;
	struct fl_space *sp;
	struct sampler s = {.sb = sb, .kind = K_FL};
	size_t npages = opt->region / PAGE;
	uint64_t salt = sb_salt_of(opt->seed);
	char what[80];
	uint64_t *base;
	unsigned int i;
	int err;

	fl_config_init(&cfg);
	cfg.mem_limit = opt->budget;
	/* The default store (O_TMPFILE in $TMPDIR, O_DIRECT), or --store. */
	cfg.swap_path = opt->store[0] ? opt->store : NULL;
	cfg.delivery = sub->delivery;
	cfg.policy = sub->policy;
	if (sub->zswap >= 0) {
		cfg.zswap = sub->zswap & ~SB_ZSWAP_KEEP;
		cfg.zswap_keep_incompressible = !!(sub->zswap & SB_ZSWAP_KEEP);
	}
	if (cfg.zswap != FL_ZSWAP_OFF && opt->pool)
		cfg.zswap_max = opt->pool;
	if (sub->prefetch >= 0)
		cfg.prefetch = sub->prefetch;
	if (opt->preheat)
		preheat(opt->budget);
	fmt(what, sizeof(what), "%s (fl_space_create)", sub->name);
	ks_watchdog(opt->timeout, what);
	err = fl_space_create(&cfg, &sp);
	alarm(0);
	if (err) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "fl_space_create: %s", strerror(-err));
		return;
	}
	s.sp = sp;
	base = fl_mmap(sp, NULL, opt->region, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		sub->failed = true;
		fmt(sub->error, sizeof(sub->error), "fl_mmap: %s", strerror(errno));
		fl_space_destroy(sp);
		return;
	}
	fmt(what, sizeof(what), "%s.fill", sub->name);
	ks_watchdog(opt->timeout, what);
	sb_run_fill(&s, base, npages, salt, W(sub, 0, round));
	alarm(0);
	for (i = 0; i < opt->nthreads; i++) {
		fmt(what, sizeof(what), "%s.read.t%u", sub->name, opt->threads[i]);
		ks_watchdog(opt->timeout + (unsigned int)(opt->warmup + opt->seconds), what);
		err = sb_run_reads(&s, base, npages, salt, opt->threads[i], round, what,
				   W(sub, 1 + i, round));
		alarm(0);
		if (err) {
			sub->failed = true;
			fmt(sub->error, sizeof(sub->error), "%s: %s", what, strerror(-err));
			break;
		}
	}
	if (!sub->failed && sb_nphases(opt) > sb_seq_phase(opt)) {
		struct window *wins[MAX_PHASES];

		for (i = 0; i < sb_nphases(opt); i++)
			wins[i] = W(sub, i, round);
		fmt(what, sizeof(what), "%s (sequential, strided, interleaved reads)", sub->name);
		ks_watchdog(opt->timeout * 3, what);
		if (sb_run_passes(&s, base, sub->name, wins, NULL, sub->error, sizeof(sub->error)))
			sub->failed = true;
		alarm(0);
	}
	fmt(what, sizeof(what), "%s (fl_space_destroy)", sub->name);
	ks_watchdog(opt->timeout, what);
	fl_space_destroy(sp);
	alarm(0);
}
