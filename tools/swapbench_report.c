// SPDX-License-Identifier: MIT
/*
 * swapbench's report (see swapbench.h): the goals, the text tables
 * with the counters behind each figure, the greppable BENCH lines, the
 * GOALS lines and the JSON document.
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kside.h"
#include "options.h"
#include "swapbench.h"

/* ---- Goals (the issue's) ---- */

static double fill_goal(const struct subject *sub)
{
	return sub->kind == K_FL ? 0.8 : 0;
}

/* Read throughput against the kernel: 1 thread only. */
static double reads_goal(const struct subject *sub, unsigned int t)
{
	if (sub->kind != K_FL || t != 1)
		return 0;
	return sub->delivery == FL_DELIVERY_SIGBUS ? 0.9 : 0.7;
}

/* Sequential reads of a swapped region, with readahead, against the kernel's. */
static double seq_goal(const struct subject *sub)
{
	return sub->kind == K_FL ? 1.5 : 0;
}

/* Misses served against the device at the same queue depth: 2 to 8 threads. */
static double misses_goal(const struct subject *sub, unsigned int t)
{
	return sub->kind == K_FL && t >= 2 && t <= 8 ? 0.9 : 0;
}

static double ratio(double a, double b)
{
	if (isnan(a) || isnan(b) || b <= 0)
		return NAN;
	return a / b;
}

/* The bare anchor of a faultline subject's delivery, or NULL (none, or not faultline). */
static const struct subject *bare_of(const struct swapbench *sb, const struct subject *sub)
{
	unsigned int i;

	for (i = 0; sub->kind == K_FL && i < sb->nsubjects; i++)
		if (sb->subjects[i].kind == K_BARE && sb->subjects[i].delivery == sub->delivery)
			return &sb->subjects[i];
	return NULL;
}

/*
 * A faultline read window's misses/s against the bare anchor's of the same
 * delivery and thread count: NAN without one.  If name, the anchor's window's
 * name goes there ("n/a" without one).
 */
static double bare_ratio(const struct swapbench *sb, const struct subject *sub, unsigned int ph,
			 char *name, size_t len)
{
	const struct subject *b = bare_of(sb, sub);
	bool ok = b && b->s[ph].ok;

	if (name) {
		if (ok)
			sb_phase_name(sb, b, ph, name, len);
		else
			fmt(name, len, "n/a");
	}
	return ratio(sub->s[ph].miss, ok ? b->s[ph].miss : NAN);
}

/* A ratio for the table, or n/a: rotating static buffers. */
static const char *rf(double r, int width)
{
	static char buf[8][24];
	static unsigned int k;
	char *b = buf[k++ % 8];

	if (isnan(r) || isinf(r))
		fmt(b, sizeof(buf[0]), "%*s", width, "n/a");
	else
		fmt(b, sizeof(buf[0]), "%*.3f", width, r);
	return b;
}

static const char *verdict(double r, double goal, const char *yes, const char *no)
{
	if (isnan(r))
		return "n/a";
	return r >= goal ? yes : no;
}

/* ---- The header ---- */

void sb_read_load(char *buf, size_t len)
{
	char line[128], *p;

	if (ks_read_file("/proc/loadavg", line, sizeof(line))) {
		fmt(buf, len, "?");
		return;
	}
	/* The three averages only. */
	p = line;
	for (int i = 0; i < 3 && p; i++)
		p = strchr(p + 1, ' ');
	if (p)
		*p = 0;
	fmt(buf, len, "%s", line);
}

void sb_gather_info(struct run_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	read_host(&ri->host);
	sb_read_load(ri->load0, sizeof(ri->load0));
	fl_config_init(&ri->defaults);
}

static void list_uint(char *buf, size_t len, const unsigned int *v, unsigned int n)
{
	size_t off = 0;
	unsigned int i;

	buf[0] = 0;
	for (i = 0; i < n && off < len; i++)
		off += (size_t)fmt(buf + off, len - off, "%s%u", i ? "," : "", v[i]);
}

static void print_header(const struct swapbench *sb, const struct run_info *ri)
{
	const struct sb_opts *opt = &sb->opt;
	char tl[64];
	unsigned int i;

	list_uint(tl, sizeof(tl), opt->threads, opt->nthreads);
	print_host("swapbench", &ri->host);
	printf("region %zu MiB (%zu pages) filled page by page under a budget of %zu MiB, then "
	       "random 4 KiB reads%s\n",
	       opt->region >> 20, opt->region / PAGE, opt->budget >> 20,
	       opt->seq ? ", then paged out and read once in address order" : "");
	printf("read window %.1f s after %.1f s of warm-up per thread count; device probe %.1f s; "
	       "threads %s; rounds %u; seed %" PRIu64 "\n",
	       opt->seconds, opt->warmup, opt->probe_seconds ? opt->probe_seconds : opt->seconds,
	       tl, opt->rounds, opt->seed);
	printf("data: %s; compressed pool %zu MiB (faultline's FAULTLINE_ZSWAP_MAX, zram's "
	       "mem_limit; zswap's nearest max_pool_percent)\n",
	       opt->data == DATA_HEAP	  ? "heap (sb_word(): objects of one size class per page, "
					    "zero, integer, pointer, text and random fields)"
	       : opt->data == DATA_RANDOM ? "random (a hash per word)"
					  : "pattern (salt ^ (page << 9 | word))",
	       opt->pool >> 20);
	if (opt->stride || opt->nstreams) {
		list_uint(tl, sizeof(tl), opt->streams, opt->nstreams);
		printf("strided read: stride %u; interleaved read: strides %s\n", opt->stride,
		       opt->nstreams ? tl : "-");
		list_uint(tl, sizeof(tl), opt->threads, opt->nthreads);
	}
	printf("store: %s (%s on %s %u:%u); faultline's store: %s\n", opt->dir, sb->store.fstype,
	       sb->store.disk_found ? sb->store.disk : "?", major(sb->store.dev),
	       minor(sb->store.dev),
	       opt->store[0] ? opt->store : "the default (O_TMPFILE, O_DIRECT, io_uring)");
	printf("faultline: handlers=%u fault_around=%u/%u swap_frames=%u watermark=%s zswap=%s "
	       "policies=",
	       ri->defaults.handlers, ri->defaults.fault_around, ri->defaults.fault_around_max,
	       ri->defaults.swap_frames, ri->defaults.watermark ? "set" : "limit/32",
	       zswap_algo_name((int)ri->defaults.zswap) ?: "?");
	for (i = 0; i < opt->npolicies; i++)
		printf("%s%s", i ? "," : "", fl_policy_name(opt->policies[i]));
	printf("\n");
	if (opt->do_bare)
		printf("bare anchor (uffd-DELIVERY.tT, \"x bare\"): no faultline, a fresh "
		       "region on its own userfaultfd (MISSING), every access a miss (each "
		       "thread's slice of %lu pages in a random order, then MADV_DONTNEED), "
		       "served by a pread of a random 4 KiB block of the device's file "
		       "(O_DIRECT) and a UFFDIO_COPY: thread = T handler threads in read() on "
		       "the one userfaultfd, sigbus = UFFD_FEATURE_SIGBUS, the faulting "
		       "thread's own handler\n",
		       BARE_SLICE);
	else
		printf("bare anchor: not measured (--no-bare)\n");
	if (opt->do_kernel) {
		if (ks_kern.prepared)
			printf("kernel: swap file %s (%zu MiB, on only for the kernel runs), "
			       "cgroup v1 memory limit %zu MiB (memsw %s), vm.swappiness %ld "
			       "(cgroup %ld), vm.page-cluster %ld, zswap %s\n",
			       ks_kern.swap_path, opt->swapfile >> 20, opt->budget >> 20,
			       ks_kern.memsw ? "unlimited" : "absent", ks_kern.vm_swappiness,
			       ks_kern.cg_swappiness, ks_kern.page_cluster, ks_kern.zswap);
		else
			printf("kernel: not measured: %s\n", ks_kern.error);
		for (i = 0; i < sb->nsubjects; i++) {
			const struct subject *sub = &sb->subjects[i];

			if (sub->kind != K_KERNEL || sub->kv.variant == KV_SWAP)
				continue;
			if (sub->kv.variant == KV_ZSWAP)
				printf("%s: zswap enabled in front of the swap file only for its "
				       "runs, compressor %s, max_pool_percent %u (%.0f MiB of "
				       "RAM), the shrinker on, accept_threshold as found, "
				       "vm.page-cluster %d; cgroup limit %zu MiB (the budget less "
				       "the pool, which cgroup v1 does not charge)\n",
				       sub->name, sub->kv.alg, sb_zswap_percent(opt),
				       (double)sysconf(_SC_PHYS_PAGES) * PAGE / 1048576.0 *
					       sb_zswap_percent(opt) / 100,
				       opt->zswap_page_cluster, (opt->budget - opt->pool) >> 20);
			else
				printf("%s: a zram device of its own (hot_add) as the only swap "
				       "for "
				       "its runs, comp_algorithm %s, disksize %zu MiB, mem_limit "
				       "%zu MiB (the pool); cgroup limit %zu MiB (the budget less "
				       "the pool: zram's memory is charged to no cgroup)\n",
				       sub->name, sub->kv.alg, (opt->region >> 20) + 16,
				       opt->pool >> 20, (opt->budget - opt->pool) >> 20);
		}
		if (ks_kern.other_swaps[0])
			printf("WARNING: other swap was on: %s\n", ks_kern.other_swaps);
	}
	printf("load average at start %s, at end %s\n", ri->load0, ri->load1);
	print_quiet(ri->elapsed, ri->foreign, ri->steal);
}

/* ---- The counters behind a figure ---- */

static void print_unstable(double lo, double hi, const char *what)
{
	if (lo > 0 && hi > UNSTABLE * lo)
		printf("  UNSTABLE: %s max/min %.2f over the 1-s intervals\n", what, hi / lo);
	else if (lo <= 0 && hi > 0)
		printf("  UNSTABLE: %s fell to 0 in a 1-s interval\n", what);
}

/* A counter's change over a window: a and b point to its start and end. */
#define DELTA(field) ((double)(b->field - a->field))

/*
 * What the subject itself should have put on the disk in the window: reads
 * are single pages (readahead aside), writes may merge, so writes are
 * compared in bytes.
 */
static void own_io(const struct subject *sub, const struct window *w, double *rd, double *wr_mib)
{
	*rd = (double)w->ops;
	*wr_mib = 0;
	if (sub->kind == K_FL) {
		*rd = (double)(w->fl1.swap_ins - w->fl0.swap_ins);
		*wr_mib = (double)(w->fl1.swap_outs - w->fl0.swap_outs) / 256;
	} else if (sub->kind == K_KERNEL) {
		*rd = (double)(w->k1.vm.pswpin - w->k0.vm.pswpin);
		*wr_mib = (double)(w->k1.vm.pswpout - w->k0.vm.pswpout) / 256;
	} else if (sub->kind == K_BARE) {
		*rd = (double)(w->b1.copies - w->b0.copies);
	}
}

/* The disk over the window; what is not the subject's is someone else's (or a journal's). */
static void print_disk(const struct swapbench *sb, const struct subject *sub,
		       const struct window *w)
{
	const struct dstat *a = &w->d0, *b = &w->d1;
	double rd = DELTA(rd_ios), wr_mib = DELTA(wr_sect) / 2048, our_rd, our_wr_mib;

	if (!a->ok || !b->ok)
		return;
	own_io(sub, w, &our_rd, &our_wr_mib);
	printf("  disk %s: reads=%.0f (%.0f MiB) writes=%.0f (%.0f MiB); not ours: "
	       "~%.0f reads, ~%.0f MiB written; other processes' CPU %.0f%% of one\n",
	       sb->store.disk, rd, DELTA(rd_sect) / 2048, DELTA(wr_ios), wr_mib,
	       fmax(0, rd - our_rd), fmax(0, wr_mib - our_wr_mib),
	       100 * sb_foreign_of(&w->c0, &w->c1) / w->secs);
}

static void print_counters(const struct swapbench *sb, const struct subject *sub, unsigned int ph)
{
	const struct sb_opts *opt = &sb->opt;
	const struct window *w = W_last(sub, ph); /* the last round's that finished */

	if (!w->done)
		return;
	bool passes = sb_phase_kind(opt, ph) >= PH_SEQ;

	if (passes && sub->kind == K_FL)
		printf("  faultline, at the start (after MADV_PAGEOUT): resident_pages=%" PRIu64
		       " frames_used=%" PRIu64 "\n",
		       w->fl0.resident_pages, w->fl0.frames_used);
	else if (passes && sub->kind == K_KERNEL)
		printf("  kernel, at the start (after MADV_PAGEOUT): cgroup usage_MiB=%.1f "
		       "rss_MiB=%.1f swap_MiB=%.0f\n",
		       (double)w->k0.cg_usage / 1048576.0, (double)w->k0.cg_rss / 1048576.0,
		       (double)w->k0.cg_swap / 1048576.0);
	if (sub->kind == K_FL) {
		const struct fl_stats *a = &w->fl0, *b = &w->fl1;

		printf("  faultline: faults_major=%.0f faults_minor=%.0f swap_ins=%.0f "
		       "swap_outs=%.0f reads_wasted=%.0f clean_drops=%.0f zero_drops=%.0f "
		       "reclaim_direct=%.0f (beside %.0f) reclaim_background=%.0f parked=%.0f",
		       DELTA(faults_major), DELTA(faults_minor), DELTA(swap_ins), DELTA(swap_outs),
		       DELTA(reads_wasted), DELTA(clean_drops), DELTA(zero_drops),
		       DELTA(reclaim_direct), DELTA(reclaim_beside), DELTA(reclaim_background),
		       DELTA(parked));
		if (b->parked > a->parked)
			printf(" parked_mean_us=%.1f", DELTA(parked_ns) / DELTA(parked) / 1e3);
		printf(" faults=%.0f faults_wp=%.0f fault_around=%.0f mmap_read_locks=%.0f "
		       "vma_lock_success/abort/retry/miss=%.0f/%.0f/%.0f/%.0f read_errors=%.0f "
		       "write_errors=%.0f\n",
		       DELTA(faults), DELTA(faults_wp), DELTA(fault_around_pages),
		       DELTA(mmap_read_locks), DELTA(vma_lock_success), DELTA(vma_lock_abort),
		       DELTA(vma_lock_retry), DELTA(vma_lock_miss), DELTA(read_errors),
		       DELTA(write_errors));
		printf("  faultline, at the end: resident_pages=%" PRIu64 " frames_used=%" PRIu64
		       " store_MiB=%.0f io_inflight_max=%" PRIu64 " io_inflight_mean=%" PRIu64
		       " (both since the space was created) fault_ns "
		       "p50/p99/p99.9/max=%.1f/%.1f/%.1f/"
		       "%.1f us store_read_ns p50/p99/max=%.1f/%.1f/%.1f us store_write_ns "
		       "max=%.1f "
		       "us (since created)\n",
		       b->resident_pages, b->frames_used, (double)b->store_bytes / 1048576.0,
		       b->io_inflight_max, b->io_inflight_mean, (double)b->fault_ns_p50 / 1e3,
		       (double)b->fault_ns_p99 / 1e3, (double)b->fault_ns_p999 / 1e3,
		       (double)b->fault_ns_max / 1e3, (double)b->store_read_ns_p50 / 1e3,
		       (double)b->store_read_ns_p99 / 1e3, (double)b->store_read_ns_max / 1e3,
		       (double)b->store_write_ns_max / 1e3);
		printf("  faultline: prefetch_used=%.0f prefetch_wasted=%.0f "
		       "prefetch_window=%" PRIu64 " faults_polled=%.0f handler_wakeups_empty=%.0f",
		       DELTA(prefetch_used), DELTA(prefetch_wasted), b->prefetch_window,
		       DELTA(faults_polled), DELTA(handler_wakeups_empty));
		if (b->zswap_pages || b->zswap_stores > a->zswap_stores)
			printf(" zswap_stores=%.0f zswap_hits=%.0f store_reads=%.0f "
			       "zswap_incompressible=%.0f zswap_full=%.0f zswap_writebacks=%.0f "
			       "zswap_compacted=%.0f; "
			       "at the end zswap_pages=%" PRIu64 " zswap_stored_MiB=%.1f "
			       "zswap_pool_MiB=%.1f zswap_ratio=%.2f zswap_load_ns "
			       "p50/p99/max=%" PRIu64 "/%" PRIu64 "/%" PRIu64,
			       DELTA(zswap_stores), DELTA(zswap_hits), DELTA(store_reads),
			       DELTA(zswap_incompressible), DELTA(zswap_full),
			       DELTA(zswap_writebacks), DELTA(zswap_compacted), b->zswap_pages,
			       (double)b->zswap_stored_bytes / 1048576.0,
			       (double)b->zswap_pool_bytes / 1048576.0,
			       (double)b->zswap_ratio_pct / 100, b->zswap_load_ns_p50,
			       b->zswap_load_ns_p99, b->zswap_load_ns_max);
		printf("\n");
	} else if (sub->kind == K_KERNEL) {
		const struct kcount *a = &w->k0, *b = &w->k1;

		printf("  kernel: pgmajfault=%.0f (cgroup; vmstat %.0f) pswpin=%.0f pswpout=%.0f "
		       "swap_ra=%.0f swap_ra_hit=%.0f workingset_refault_anon=%.0f pgfault=%.0f "
		       "(cgroup) failcnt=%.0f",
		       DELTA(cg_pgmajfault), DELTA(vm.pgmajfault), DELTA(vm.pswpin),
		       DELTA(vm.pswpout), DELTA(vm.swap_ra), DELTA(vm.swap_ra_hit),
		       DELTA(vm.refault_anon), DELTA(cg_pgfault), DELTA(cg_failcnt));
		if (b->vm.has_vma_lock)
			printf(" vma_lock_success/abort/retry/miss=%.0f/%.0f/%.0f/%.0f",
			       DELTA(vm.vma_lock[0]), DELTA(vm.vma_lock[1]), DELTA(vm.vma_lock[2]),
			       DELTA(vm.vma_lock[3]));
		else
			printf(" vma_lock_*=n/a (not in /proc/vmstat: CONFIG_PER_VMA_LOCK_STATS)");
		printf("\n  kernel, at the end: cgroup usage_MiB=%.0f rss_MiB=%.0f swap_MiB=%.0f\n",
		       (double)b->cg_usage / 1048576.0, (double)b->cg_rss / 1048576.0,
		       (double)b->cg_swap / 1048576.0);
		if (sub->kv.variant == KV_ZSWAP)
			printf("  zswap (the machine's): zswpout=%.0f zswpin=%.0f zswpwb=%.0f; at "
			       "the end pool_MiB=%.1f stored_MiB=%.1f\n",
			       DELTA(zswpout), DELTA(zswpin), DELTA(zswpwb),
			       (double)b->zswap_pool / 1048576.0, (double)b->zswapped / 1048576.0);
		else if (sub->kv.variant == KV_ZRAM)
			printf("  zram, at the end: orig_MiB=%.1f compr_MiB=%.1f "
			       "mem_used_MiB=%.1f\n",
			       (double)b->zram_orig / 1048576.0, (double)b->zram_compr / 1048576.0,
			       (double)b->zram_used / 1048576.0);
	} else if (sub->kind == K_BARE) {
		const struct bcount *a = &w->b0, *b = &w->b1;

		printf("  uffd: copies=%.0f (the misses; reads=%" PRIu64 ") eexist=%.0f "
		       "slice_drops=%.0f (MADV_DONTNEED of %lu pages each)\n",
		       DELTA(copies), w->ops, DELTA(exist), DELTA(drops), BARE_SLICE);
	}
	print_disk(sb, sub, w);
}

/* ---- Figures ---- */

/*
 * One figure of the report: a subject in one phase, with its ratios to the
 * anchors measured in this run, worked out in one place for the table, the
 * GOALS and BENCH lines and the JSON.
 */
struct fig {
	const struct subject *sub;
	const struct summ *s;
	unsigned int ph;
	bool reads;	       /* a read window (else the fill or the sequential read) */
	unsigned int t;	       /* a read window's threads, else 1 */
	char name[64];	       /* the phase's: "fl-thread-drop.read.t2" */
	char kname[64];	       /* the kernel's in this phase; "" without a kernel */
	char dname[64];	       /* the device's (read windows); "" without a device */
	char bname[64];	       /* the bare anchor's (faultline read windows), or "n/a" */
	const struct summ *ks; /* the kernel's figures in this phase, if it has them */
	double r_kernel;       /* ops/s (pages/s, reads/s) over the kernel's */
	double goal;	       /* for r_kernel; 0: none */
	double r_device;       /* read windows: misses/s over the device's IOPS */
	double goal_device;    /* for r_device; 0: none */
	double r_bare;	       /* faultline read windows: misses/s over the bare anchor's */
};

static const struct subject *anchor(const struct swapbench *sb, enum kind kind)
{
	int i = sb_subject_index(sb, kind);

	return i >= 0 ? &sb->subjects[i] : NULL;
}

static void fig_of(const struct swapbench *sb, const struct subject *sub, unsigned int ph,
		   struct fig *f)
{
	const struct sb_opts *opt = &sb->opt;
	const struct subject *ker = anchor(sb, K_KERNEL), *dev = anchor(sb, K_DEVICE);

	memset(f, 0, sizeof(*f));
	f->sub = sub;
	f->s = &sub->s[ph];
	f->ph = ph;
	f->reads = sb_phase_kind(opt, ph) == PH_READS;
	f->t = f->reads ? opt->threads[ph - 1] : 1;
	sb_phase_name(sb, sub, ph, f->name, sizeof(f->name));
	if (ker) {
		sb_phase_name(sb, ker, ph, f->kname, sizeof(f->kname));
		if (ker->s[ph].ok)
			f->ks = &ker->s[ph];
	}
	f->r_kernel = ratio(f->s->rate, f->ks ? f->ks->rate : NAN);
	if (!f->reads) {
		f->goal = sb_phase_kind(opt, ph) == PH_SEQ ? seq_goal(sub)
			  : ph				   ? 0
							   : fill_goal(sub);
		return;
	}
	f->goal = reads_goal(sub, f->t);
	if (dev)
		sb_phase_name(sb, dev, ph, f->dname, sizeof(f->dname));
	f->r_device = ratio(f->s->miss, dev && dev->s[ph].ok ? dev->s[ph].rate : NAN);
	f->goal_device = misses_goal(sub, f->t);
	f->r_bare = bare_ratio(sb, sub, ph, f->bname, sizeof(f->bname));
}

/* A goal for the table: ">= 0.80 met", or "" without one. */
static const char *goal_text(char *buf, size_t len, double r, double goal)
{
	buf[0] = 0;
	if (goal > 0)
		fmt(buf, len, ">= %.2f %s", goal, verdict(r, goal, "met", "NOT MET"));
	return buf;
}

/* ---- The table ---- */

/* FILL or SEQUENTIAL READ: pages per second against the kernel's. */
static void print_pages(const struct swapbench *sb, unsigned int ph)
{
	bool fill = ph == 0;
	unsigned int i;

	enum phase_kind kind = sb_phase_kind(&sb->opt, ph);

	if (fill)
		printf("\nFILL: one thread writes every page in address order (under the budget "
		       "this measures eviction)\n");
	else if (kind == PH_SEQ)
		printf("\nSEQUENTIAL READ: the whole region paged out (MADV_PAGEOUT), then one "
		       "thread reads every word of every page in address order\n");
	else if (kind == PH_STRIDE)
		printf("\nSTRIDED READ: one thread reads every word of every %u-th page, from "
		       "page 0, then 1, ... up to %u passes, the region paged out before each\n",
		       sb->opt.stride, sb->opt.stride);
	else
		printf("\nINTERLEAVED READ: the region paged out, cut into %u parts, each read "
		       "by a stream of its own stride, one thread taking the streams in a "
		       "random order\n",
		       sb->opt.nstreams);
	printf("%-26s %10s  %19s %8s  %-16s ", "figure", "pages/s", "1-s min .. max", "x kernel",
	       "goal");
	if (fill)
		printf("%10s %9s %9s %10s\n", "p50 us", "p99 us", "p99.9 us", "writes/s");
	else
		printf("%10s %9s %9s %9s\n", "misses/s", "p50 us", "p99 us", "p99.9 us");
	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];
		const struct summ *s = &sub->s[ph];
		char goal[48];
		struct fig f;

		if (sub->kind == K_DEVICE || !s->ok)
			continue;
		fig_of(sb, sub, ph, &f);
		printf("%-26s %10.0f  %8.0f .. %-8.0f %s  %-16s ", f.name, s->rate, s->imin,
		       s->imax, rf(f.r_kernel, 8),
		       goal_text(goal, sizeof(goal), f.r_kernel, f.goal));
		if (fill)
			printf("%10.1f %9.1f %9.1f %10.0f\n", s->p50, s->p99, s->p999, s->writes);
		else
			printf("%10.0f %9.1f %9.1f %9.1f\n", s->miss, s->p50, s->p99, s->p999);
		print_unstable(s->imin, s->imax, "pages/s");
		print_counters(sb, sub, ph);
	}
}

/* A read window: reads against the kernel's, misses against the device and the bare anchor. */
static void print_reads(const struct swapbench *sb, unsigned int ph)
{
	unsigned int i, t = sb->opt.threads[ph - 1];

	printf("\nREADS, %u thread%s (device: queue depth %u): one verified 8-byte word of "
	       "a random page each\n",
	       t, t > 1 ? "s" : "", t);
	printf("%-26s %10s %8s  %-16s %10s  %19s %8s  %-16s %8s %9s %9s %9s\n", "figure", "reads/s",
	       "x kernel", "goal", "misses/s", "1-s min .. max", "x device", "goal", "x bare",
	       "p50 us", "p99 us", "p99.9 us");
	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];
		const struct summ *s = &sub->s[ph];
		char goal[48], goal2[48];
		struct fig f;

		if (!s->ok)
			continue;
		fig_of(sb, sub, ph, &f);
		if (sub->kind == K_DEVICE) {
			printf("%-26s %10s %8s  %-16s %10.0f  %8.0f .. %-8.0f %8.3f  %-16s "
			       "%8s %9.1f %9.1f %9.1f\n",
			       f.name, "-", "", "", s->rate, s->imin, s->imax, 1.0, "", "", s->p50,
			       s->p99, s->p999);
			print_unstable(s->imin, s->imax, "IOPS");
		} else {
			/* The bare anchor: no x kernel (every access of it misses). */
			printf("%-26s %10.0f %8s  %-16s %10.0f  %8.0f .. %-8.0f %s  %-16s %8s "
			       "%9.1f "
			       "%9.1f %9.1f\n",
			       f.name, s->rate, sub->kind == K_BARE ? "" : rf(f.r_kernel, 8),
			       goal_text(goal, sizeof(goal), f.r_kernel, f.goal), s->miss, s->mmin,
			       s->mmax, rf(f.r_device, 8),
			       goal_text(goal2, sizeof(goal2), f.r_device, f.goal_device),
			       sub->kind == K_FL ? rf(f.r_bare, 8) : "", s->p50, s->p99, s->p999);
			print_unstable(s->imin, s->imax, "reads/s");
			print_unstable(s->mmin, s->mmax, "misses/s");
		}
		print_counters(sb, sub, ph);
	}
}

void sb_print_table(const struct swapbench *sb, const struct run_info *ri)
{
	unsigned int i, ph;

	print_header(sb, ri);
	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];

		if (sub->failed)
			printf("FAILED: %s: %s\n", sub->name, sub->error);
		else if (sub->oom_rounds)
			printf("OOM: %s: its child was killed by its cgroup's OOM killer in %u of "
			       "%u "
			       "rounds (the last time in %s): its figures are the medians of the "
			       "windows finished (is the budget too small for the program, or did "
			       "other processes fill the compressed swap?)\n",
			       sub->name, sub->oom_rounds, sb->opt.rounds, sub->oom_where);
	}
	print_pages(sb, 0);
	for (ph = 1; ph < 1 + sb->opt.nthreads; ph++)
		print_reads(sb, ph);
	for (ph = sb_seq_phase(&sb->opt); ph < sb_nphases(&sb->opt); ph++)
		print_pages(sb, ph);
	printf("\n");
}

/* ---- The GOALS lines ---- */

static void print_goal(const char *who, const char *what, double goal, const char *anchor_name,
		       double r)
{
	printf("  %-18s %s>= %.2fx %s%s %s\n", who, what, goal, anchor_name, rf(r, 6),
	       verdict(r, goal, "met", "NOT MET"));
}

/* The goals, one line each, after the table. */
void sb_print_goals(const struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;
	char what[48], dev[32];
	unsigned int i, ph;
	struct fig f;

	printf("GOALS (ratio to the anchor measured in this run)\n");
	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];

		if (sub->kind != K_FL)
			continue;
		if (sub->failed) {
			printf("  %-18s FAILED: %s\n", sub->name, sub->error);
			continue;
		}
		fig_of(sb, sub, 0, &f);
		print_goal(sub->name, "fill rate                 ", f.goal,
			   "kernel:      ", f.r_kernel);
		for (ph = 1; ph < 1 + opt->nthreads; ph++) {
			fig_of(sb, sub, ph, &f);
			fmt(what, sizeof(what), "read throughput, t%-2u     ", f.t);
			if (f.goal > 0)
				print_goal(sub->name, what, f.goal, "kernel:      ", f.r_kernel);
			fmt(what, sizeof(what), "misses/s, t%-2u            ", f.t);
			fmt(dev, sizeof(dev), "device qd%-2u: ", f.t);
			if (f.goal_device > 0)
				print_goal(sub->name, what, f.goal_device, dev, f.r_device);
		}
		fig_of(sb, sub, sb_seq_phase(opt), &f);
		if (opt->seq && f.goal > 0)
			print_goal(sub->name, "sequential read           ", f.goal,
				   "kernel:      ", f.r_kernel);
	}
	printf("\n");
}

/* ---- The BENCH lines ---- */

static void bench_goal(double r, double goal)
{
	if (goal > 0)
		printf(" goal=>=%.2f goal_met=%s", goal, verdict(r, goal, "yes", "no"));
}

static void bench_spread(unsigned int rounds, double lo, double hi)
{
	printf(" rounds=%u min=%.0f max=%.0f spread=%.2f\n", rounds, lo, hi,
	       lo > 0 ? hi / lo : NAN);
}

static void bench_latency(const struct summ *s)
{
	printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f", s->p50, s->p99, s->p999);
}

/* A read window: a line for the reads, a line for the misses. */
static void bench_reads(const struct fig *f)
{
	const struct summ *s = f->s, *ks = f->ks;
	bool fl = f->sub->kind == K_FL;
	/* The bare anchor's reads have no anchor: all of them miss. */
	bool kr = f->kname[0] && f->sub->kind != K_BARE;
	double r = kr ? f->r_kernel : NAN;

	printf("BENCH name=%s.reads value=%.0f unit=reads/s ratio=%s anchor=%s%s", f->name, s->rate,
	       rf(r, 0), kr ? f->kname : "n/a", kr ? ".reads" : "");
	bench_goal(r, f->goal);
	bench_latency(s);
	if (ks && fl)
		printf(" p50_ratio=%s p99_ratio=%s p999_ratio=%s", rf(ratio(s->p50, ks->p50), 0),
		       rf(ratio(s->p99, ks->p99), 0), rf(ratio(s->p999, ks->p999), 0));
	bench_spread(s->n, s->imin, s->imax);
	printf("BENCH name=%s.misses value=%.0f unit=misses/s ratio=%s anchor=%s%s", f->name,
	       s->miss, rf(f->r_device, 0), f->dname[0] ? f->dname : "n/a",
	       f->dname[0] ? ".iops" : "");
	bench_goal(f->r_device, f->goal_device);
	if (ks && fl)
		printf(" ratio_kernel=%s anchor_kernel=%s.misses", rf(ratio(s->miss, ks->miss), 0),
		       f->kname);
	if (fl)
		printf(" ratio_bare=%s anchor_bare=%s%s", rf(f->r_bare, 0), f->bname,
		       isnan(f->r_bare) ? "" : ".misses");
	bench_spread(s->n, s->mmin, s->mmax);
}

void sb_print_bench_lines(const struct swapbench *sb)
{
	unsigned int i, ph;
	struct fig f;

	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];

		if (sub->failed) {
			printf("BENCH name=%s status=failed error=\"%s\"\n", sub->name, sub->error);
			continue;
		}
		for (ph = 0; ph < sb_nphases(&sb->opt); ph++) {
			const struct summ *s = &sub->s[ph];

			if (!s->ok)
				continue;
			fig_of(sb, sub, ph, &f);
			if (f.reads && sub->kind != K_DEVICE) {
				bench_reads(&f);
				continue;
			}
			if (f.reads) {
				printf("BENCH name=%s.iops value=%.0f unit=iops ratio=1.000 "
				       "anchor=%s.iops",
				       f.name, s->rate, f.name);
				bench_latency(s);
			} else {
				printf("BENCH name=%s value=%.0f unit=pages/s ratio=%s anchor=%s",
				       f.name, s->rate, rf(f.r_kernel, 0),
				       f.kname[0] ? f.kname : "n/a");
				bench_goal(f.r_kernel, f.goal);
				bench_latency(s);
				if (ph == 0)
					printf(" writes_per_s=%.0f", s->writes);
				else
					printf(" misses_per_s=%.0f", s->miss);
			}
			bench_spread(s->n, s->imin, s->imax);
		}
	}
}

/* ---- JSON ---- */

static void json_goal(const char *key, double r, double goal)
{
	if (goal > 0)
		printf("\"%s\": \">=%.2f\", \"%s_met\": %s, ", key, goal, key,
		       isnan(r) ? "null" : verdict(r, goal, "true", "false"));
}

/* A figure's ratios to the anchors (and its rates). */
static void json_ratios(const struct fig *f)
{
	const struct summ *s = f->s;
	enum kind kind = f->sub->kind;

	if (!f->reads) {
		json_num("pages_per_s", s->rate, ", ");
		json_num("ratio_kernel", f->r_kernel, ", ");
		json_goal("goal", f->r_kernel, f->goal);
		if (f->ph == 0)
			json_num("writes_per_s", s->writes, ", ");
		else
			json_num("misses_per_s", s->miss, ", ");
		return;
	}
	json_num("ops_per_s", s->rate, ", ");
	json_num("misses_per_s", s->miss, ", ");
	if (kind == K_BARE)
		json_num("misses_ratio_device", f->r_device, ", ");
	if (kind == K_KERNEL || kind == K_FL) {
		json_num("ratio_kernel", f->r_kernel, ", ");
		json_goal("reads_goal", f->r_kernel, f->goal);
		json_num("misses_ratio_device", f->r_device, ", ");
		json_goal("misses_goal", f->r_device, f->goal_device);
	}
	if (kind == K_FL) {
		json_num("misses_ratio_bare", f->r_bare, ", ");
		if (isnan(f->r_bare))
			printf("\"anchor_bare\": null, ");
		else
			printf("\"anchor_bare\": \"%s\", ", f->bname);
	}
}

/* The subject's own counters over the last round's window. */
static void json_counters(const struct subject *sub, const struct window *w)
{
	if (!w->done)
		return;
	if (sub->kind == K_FL) {
		printf(", \"faultline_end\": ");
		fflush(stdout);
		fl_stats_print_snapshot(&w->fl1, stdout, FL_STATS_JSON);
		printf("      , \"faultline_start\": ");
		fflush(stdout);
		fl_stats_print_snapshot(&w->fl0, stdout, FL_STATS_JSON);
	} else if (sub->kind == K_BARE) {
		const struct bcount *a = &w->b0, *b = &w->b1;

		printf(", \"uffd\": {\"copies\": %.0f, \"eexist\": %.0f, \"slice_drops\": %.0f}",
		       DELTA(copies), DELTA(exist), DELTA(drops));
	} else if (sub->kind == K_KERNEL) {
		const struct kcount *a = &w->k0, *b = &w->k1;

		printf(", \"kernel\": {\"pgmajfault_cgroup\": %.0f, \"pgmajfault\": %.0f, "
		       "\"pswpin\": %.0f, \"pswpout\": %.0f, \"swap_ra\": %.0f, "
		       "\"swap_ra_hit\": %.0f}",
		       DELTA(cg_pgmajfault), DELTA(vm.pgmajfault), DELTA(vm.pswpin),
		       DELTA(vm.pswpout), DELTA(vm.swap_ra), DELTA(vm.swap_ra_hit));
	}
}

/* CPU us per miss (per page in the fill and the passes): own and machine,
 * and in the random reads by thread and in context switches ("BY THREAD"). */
static void json_cpu(const struct summ *s, bool reads)
{
	static const char *const role[NROLES] = {"app", "handler", "reaper", "kswapd", "rest"};
	unsigned int k;

	json_num("cpu_us_own", s->cpu_self, ", ");
	json_num("cpu_us_machine", s->cpu_busy, ", ");
	if (!reads)
		return;
	printf("\"cpu_us_by_thread\": {");
	for (k = 0; k < NROLES; k++)
		json_num(role[k], s->role_us[k], k + 1 < NROLES ? ", " : "");
	printf("}, \"context_switches\": {");
	json_num("voluntary", s->vcs, ", ");
	json_num("involuntary", s->ivcs, "");
	printf("}, ");
}

void sb_print_json(const struct swapbench *sb, const struct run_info *ri)
{
	const struct sb_opts *opt = &sb->opt;
	unsigned int i, ph, k;
	bool first = true;
	struct fig f;

	json_host("faultline-swap", &ri->host);
	printf("  \"region_bytes\": %zu, \"budget_bytes\": %zu, \"seconds\": %g, "
	       "\"warmup_s\": %g, \"rounds\": %u, \"seed\": %" PRIu64 ", \"sequential\": %s,\n",
	       opt->region, opt->budget, opt->seconds, opt->warmup, opt->rounds, opt->seed,
	       opt->seq ? "true" : "false");
	printf("  \"bare_anchor\": %s, \"bare_slice_pages\": %lu,\n",
	       opt->do_bare ? "true" : "false", BARE_SLICE);
	printf("  \"dir\": \"%s\", \"fstype\": \"%s\", \"disk\": \"%s\",\n", opt->dir,
	       sb->store.fstype, sb->store.disk);
	printf("  \"vm_swappiness\": %ld, \"cgroup_swappiness\": %ld, \"page_cluster\": %ld,\n",
	       ks_kern.vm_swappiness, ks_kern.cg_swappiness, ks_kern.page_cluster);
	printf("  \"load_start\": \"%s\", \"load_end\": \"%s\", ", ri->load0, ri->load1);
	printf("\"elapsed_s\": %.3f, \"foreign_cpu_s\": %.3f, \"steal_cpu_s\": %.3f,\n",
	       ri->elapsed, ri->foreign, ri->steal);
	printf("  \"figures\": [\n");
	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];

		if (sub->failed) {
			printf("%s    {\"name\": \"%s\", \"status\": \"failed\", \"error\": "
			       "\"%s\"}",
			       first ? "" : ",\n", sub->name, sub->error);
			first = false;
			continue;
		}
		for (ph = 0; ph < sb_nphases(opt); ph++) {
			const struct summ *s = &sub->s[ph];
			const struct window *w = W_last(sub, ph);

			if (!s->ok)
				continue;
			fig_of(sb, sub, ph, &f);
			printf("%s    {\"name\": \"%s\", \"threads\": %u, ", first ? "" : ",\n",
			       f.name, f.t);
			first = false;
			json_ratios(&f);
			json_num("p50_us", s->p50, ", ");
			json_num("p99_us", s->p99, ", ");
			json_num("p999_us", s->p999, ", ");
			json_num("max_us", s->max, ", ");
			json_cpu(s, sb_phase_kind(opt, ph) == PH_READS);
			printf("\"rounds\": %u, \"oom_rounds\": %u, \"intervals_last_round\": [",
			       s->n, sub->oom_rounds);
			for (k = 0; k < w->nivl; k++)
				printf("%.0f%s", w->ivl_ops[k], k + 1 < w->nivl ? ", " : "");
			printf("]");
			json_counters(sub, w);
			printf("}");
		}
	}
	printf("\n  ]\n}\n");
}
