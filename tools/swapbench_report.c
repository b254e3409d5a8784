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

#include "kside.h"
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

/* ---- Output ---- */

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
	printf("faultline swapbench %s: %s, kernel %s, %ld CPUs, THP %s\n", FL_VERSION_STRING,
	       ri->host.date, ri->host.kernel, ri->host.cpus, ri->host.thp);
	printf("region %zu MiB (%zu pages) filled page by page under a budget of %zu MiB, then "
	       "random 4 KiB reads%s\n",
	       opt->region >> 20, opt->region / PAGE, opt->budget >> 20,
	       opt->seq ? ", then paged out and read once in address order" : "");
	printf("read window %.1f s after %.1f s of warm-up per thread count; device probe %.1f s; "
	       "threads %s; rounds %u; seed %" PRIu64 "\n",
	       opt->seconds, opt->warmup, opt->probe_seconds ? opt->probe_seconds : opt->seconds,
	       tl, opt->rounds, opt->seed);
	printf("store: %s (%s on %s %u:%u); faultline default store (O_TMPFILE, O_DIRECT, "
	       "io_uring)\n",
	       opt->dir, sb->store.fstype, sb->store.disk_found ? sb->store.disk : "?",
	       major(sb->store.dev), minor(sb->store.dev));
	printf("faultline: handlers=%u fault_around=%u/%u swap_frames=%u watermark=%s policies=",
	       ri->defaults.handlers, ri->defaults.fault_around, ri->defaults.fault_around_max,
	       ri->defaults.swap_frames, ri->defaults.watermark ? "set" : "limit/32");
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
		if (ks_kern.other_swaps[0])
			printf("WARNING: other swap was on: %s\n", ks_kern.other_swaps);
	}
	printf("load average at start %s, at end %s\n", ri->load0, ri->load1);
	print_quiet(ri->elapsed, ri->foreign, ri->steal);
}

static void print_unstable(double lo, double hi, const char *what)
{
	if (lo > 0 && hi > UNSTABLE * lo)
		printf("  UNSTABLE: %s max/min %.2f over the 1-s intervals\n", what, hi / lo);
	else if (lo <= 0 && hi > 0)
		printf("  UNSTABLE: %s fell to 0 in a 1-s interval\n", what);
}

static double delta(uint64_t a, uint64_t b)
{
	return (double)(b - a);
}

static void print_counters(const struct swapbench *sb, const struct subject *sub, unsigned int ph)
{
	const struct sb_opts *opt = &sb->opt;
	unsigned int r = opt->rounds - 1; /* the last round's */
	const struct window *w = W(sub, ph, r);
	double fo = sb_foreign_of(&w->c0, &w->c1);

	if (!w->done)
		return;
	if (ph == sb_seq_phase(opt) && sub->kind == K_FL)
		printf("  faultline, at the start (after MADV_PAGEOUT): resident_pages=%" PRIu64
		       " frames_used=%" PRIu64 "\n",
		       w->fl0.resident_pages, w->fl0.frames_used);
	else if (ph == sb_seq_phase(opt) && sub->kind == K_KERNEL)
		printf("  kernel, at the start (after MADV_PAGEOUT): cgroup usage_MiB=%.1f "
		       "rss_MiB=%.1f swap_MiB=%.0f\n",
		       (double)w->k0.cg_usage / 1048576.0, (double)w->k0.cg_rss / 1048576.0,
		       (double)w->k0.cg_swap / 1048576.0);
	if (sub->kind == K_FL) {
		const struct fl_stats *a = &w->fl0, *b = &w->fl1;

		printf("  faultline: faults_major=%.0f faults_minor=%.0f swap_ins=%.0f "
		       "swap_outs=%.0f reads_wasted=%.0f clean_drops=%.0f zero_drops=%.0f "
		       "reclaim_direct=%.0f reclaim_background=%.0f parked=%.0f",
		       delta(a->faults_major, b->faults_major),
		       delta(a->faults_minor, b->faults_minor), delta(a->swap_ins, b->swap_ins),
		       delta(a->swap_outs, b->swap_outs), delta(a->reads_wasted, b->reads_wasted),
		       delta(a->clean_drops, b->clean_drops), delta(a->zero_drops, b->zero_drops),
		       delta(a->reclaim_direct, b->reclaim_direct),
		       delta(a->reclaim_background, b->reclaim_background),
		       delta(a->parked, b->parked));
		if (b->parked > a->parked)
			printf(" parked_mean_us=%.1f", delta(a->parked_ns, b->parked_ns) /
							       delta(a->parked, b->parked) / 1e3);
		printf(" faults=%.0f faults_wp=%.0f fault_around=%.0f mmap_read_locks=%.0f "
		       "vma_lock_success/abort/retry/miss=%.0f/%.0f/%.0f/%.0f read_errors=%.0f "
		       "write_errors=%.0f\n",
		       delta(a->faults, b->faults), delta(a->faults_wp, b->faults_wp),
		       delta(a->fault_around_pages, b->fault_around_pages),
		       delta(a->mmap_read_locks, b->mmap_read_locks),
		       delta(a->vma_lock_success, b->vma_lock_success),
		       delta(a->vma_lock_abort, b->vma_lock_abort),
		       delta(a->vma_lock_retry, b->vma_lock_retry),
		       delta(a->vma_lock_miss, b->vma_lock_miss),
		       delta(a->read_errors, b->read_errors),
		       delta(a->write_errors, b->write_errors));
		printf("  faultline, at the end: resident_pages=%" PRIu64 " frames_used=%" PRIu64
		       " store_MiB=%.0f io_inflight_max=%" PRIu64 " io_inflight_mean=%" PRIu64
		       " (both since the space was created) fault_ns p50/p99/p99.9=%.1f/%.1f/%.1f "
		       "us (since created)\n",
		       b->resident_pages, b->frames_used, (double)b->store_bytes / 1048576.0,
		       b->io_inflight_max, b->io_inflight_mean, (double)b->fault_ns_p50 / 1e3,
		       (double)b->fault_ns_p99 / 1e3, (double)b->fault_ns_p999 / 1e3);
	} else if (sub->kind == K_KERNEL) {
		const struct kcount *a = &w->k0, *b = &w->k1;

		printf("  kernel: pgmajfault=%.0f (cgroup; vmstat %.0f) pswpin=%.0f pswpout=%.0f "
		       "swap_ra=%.0f swap_ra_hit=%.0f workingset_refault_anon=%.0f pgfault=%.0f "
		       "(cgroup) failcnt=%.0f",
		       delta(a->cg_pgmajfault, b->cg_pgmajfault),
		       delta(a->pgmajfault, b->pgmajfault), delta(a->pswpin, b->pswpin),
		       delta(a->pswpout, b->pswpout), delta(a->swap_ra, b->swap_ra),
		       delta(a->swap_ra_hit, b->swap_ra_hit),
		       delta(a->refault_anon, b->refault_anon), delta(a->cg_pgfault, b->cg_pgfault),
		       delta(a->cg_failcnt, b->cg_failcnt));
		if (b->has_vma_lock)
			printf(" vma_lock_success/abort/retry/miss=%.0f/%.0f/%.0f/%.0f",
			       delta(a->vma_lock[0], b->vma_lock[0]),
			       delta(a->vma_lock[1], b->vma_lock[1]),
			       delta(a->vma_lock[2], b->vma_lock[2]),
			       delta(a->vma_lock[3], b->vma_lock[3]));
		else
			printf(" vma_lock_*=n/a (not in /proc/vmstat: CONFIG_PER_VMA_LOCK_STATS)");
		printf("\n  kernel, at the end: cgroup usage_MiB=%.0f rss_MiB=%.0f swap_MiB=%.0f\n",
		       (double)b->cg_usage / 1048576.0, (double)b->cg_rss / 1048576.0,
		       (double)b->cg_swap / 1048576.0);
	} else if (sub->kind == K_BARE) {
		printf("  uffd: copies=%.0f (the misses; reads=%" PRIu64 ") eexist=%.0f "
		       "slice_drops=%.0f (MADV_DONTNEED of %lu pages each)\n",
		       delta(w->b0.copies, w->b1.copies), w->ops, delta(w->b0.exist, w->b1.exist),
		       delta(w->b0.drops, w->b1.drops), BARE_SLICE);
	}
	if (w->d0.ok && w->d1.ok) {
		double rd = delta(w->d0.rd_ios, w->d1.rd_ios);
		double wr_mib = delta(w->d0.wr_sect, w->d1.wr_sect) / 2048;
		double our_rd, our_wr_mib;

		/*
		 * What this subject itself should have put on the disk: reads are
		 * single pages (readahead aside), writes may merge, so writes are
		 * compared in bytes.  The rest is someone else's (or a journal's).
		 */
		if (sub->kind == K_FL) {
			our_rd = delta(w->fl0.swap_ins, w->fl1.swap_ins);
			our_wr_mib = delta(w->fl0.swap_outs, w->fl1.swap_outs) / 256;
		} else if (sub->kind == K_KERNEL) {
			our_rd = delta(w->k0.pswpin, w->k1.pswpin);
			our_wr_mib = delta(w->k0.pswpout, w->k1.pswpout) / 256;
		} else if (sub->kind == K_BARE) {
			our_rd = delta(w->b0.copies, w->b1.copies);
			our_wr_mib = 0;
		} else {
			our_rd = (double)w->ops;
			our_wr_mib = 0;
		}
		printf("  disk %s: reads=%.0f (%.0f MiB) writes=%.0f (%.0f MiB); not ours: "
		       "~%.0f reads, ~%.0f MiB written; other processes' CPU %.0f%% of one\n",
		       sb->store.disk, rd, delta(w->d0.rd_sect, w->d1.rd_sect) / 2048,
		       delta(w->d0.wr_ios, w->d1.wr_ios), wr_mib, fmax(0, rd - our_rd),
		       fmax(0, wr_mib - our_wr_mib), 100 * fo / w->secs);
	}
}

void sb_print_table(const struct swapbench *sb, const struct run_info *ri)
{
	const struct sb_opts *opt = &sb->opt;
	int kd = sb_subject_index(sb, K_DEVICE), kk = sb_subject_index(sb, K_KERNEL);
	const struct subject *dev = kd >= 0 ? &sb->subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &sb->subjects[kk] : NULL;
	unsigned int i, ph;
	char name[64], goal[48];

	print_header(sb, ri);
	for (i = 0; i < sb->nsubjects; i++)
		if (sb->subjects[i].failed)
			printf("FAILED: %s: %s\n", sb->subjects[i].name, sb->subjects[i].error);

	printf("\nFILL: one thread writes every page in address order (under the budget this "
	       "measures eviction)\n");
	printf("%-26s %10s  %19s %8s  %-16s %10s %9s %9s %10s\n", "figure", "pages/s",
	       "1-s min .. max", "x kernel", "goal", "p50 us", "p99 us", "p99.9 us", "writes/s");
	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];
		const struct summ *s = &sub->s[0];
		double r;

		if (sub->kind == K_DEVICE || !s->ok)
			continue;
		r = ratio(s->rate, ker ? ker->s[0].rate : NAN);
		goal[0] = 0;
		if (fill_goal(sub) > 0)
			fmt(goal, sizeof(goal), ">= %.2f %s", fill_goal(sub),
			    verdict(r, fill_goal(sub), "met", "NOT MET"));
		sb_phase_name(sb, sub, 0, name, sizeof(name));
		printf("%-26s %10.0f  %8.0f .. %-8.0f %s  %-16s %10.1f %9.1f %9.1f %10.0f\n", name,
		       s->rate, s->imin, s->imax, rf(r, 8), goal, s->p50, s->p99, s->p999,
		       s->writes);
		print_unstable(s->imin, s->imax, "pages/s");
		print_counters(sb, sub, 0);
	}

	for (ph = 1; ph < 1 + opt->nthreads; ph++) {
		unsigned int t = opt->threads[ph - 1];
		const struct summ *ks = ker ? &ker->s[ph] : NULL, *ds = dev ? &dev->s[ph] : NULL;

		printf("\nREADS, %u thread%s (device: queue depth %u): one verified 8-byte word of "
		       "a random page each\n",
		       t, t > 1 ? "s" : "", t);
		printf("%-26s %10s %8s  %-16s %10s  %19s %8s  %-16s %8s %9s %9s %9s\n", "figure",
		       "reads/s", "x kernel", "goal", "misses/s", "1-s min .. max", "x device",
		       "goal", "x bare", "p50 us", "p99 us", "p99.9 us");
		for (i = 0; i < sb->nsubjects; i++) {
			const struct subject *sub = &sb->subjects[i];
			const struct summ *s = &sub->s[ph];
			double rr, rm;
			char goal2[48];

			if (!s->ok)
				continue;
			sb_phase_name(sb, sub, ph, name, sizeof(name));
			rm = ratio(s->miss, ds && ds->ok ? ds->rate : NAN);
			goal2[0] = 0;
			if (misses_goal(sub, t) > 0)
				fmt(goal2, sizeof(goal2), ">= %.2f %s", misses_goal(sub, t),
				    verdict(rm, misses_goal(sub, t), "met", "NOT MET"));
			if (sub->kind == K_DEVICE) {
				printf("%-26s %10s %8s  %-16s %10.0f  %8.0f .. %-8.0f %8.3f  %-16s "
				       "%8s %9.1f %9.1f %9.1f\n",
				       name, "-", "", "", s->rate, s->imin, s->imax, 1.0, "", "",
				       s->p50, s->p99, s->p999);
				print_unstable(s->imin, s->imax, "IOPS");
			} else {
				/* The bare anchor: no x kernel (every access of it misses). */
				rr = ratio(s->rate, ks && ks->ok ? ks->rate : NAN);
				goal[0] = 0;
				if (reads_goal(sub, t) > 0)
					fmt(goal, sizeof(goal), ">= %.2f %s", reads_goal(sub, t),
					    verdict(rr, reads_goal(sub, t), "met", "NOT MET"));
				printf("%-26s %10.0f %8s  %-16s %10.0f  %8.0f .. %-8.0f %s  "
				       "%-16s %8s %9.1f %9.1f %9.1f\n",
				       name, s->rate, sub->kind == K_BARE ? "" : rf(rr, 8), goal,
				       s->miss, s->mmin, s->mmax, rf(rm, 8), goal2,
				       sub->kind == K_FL ? rf(bare_ratio(sb, sub, ph, NULL, 0), 8)
							 : "",
				       s->p50, s->p99, s->p999);
				print_unstable(s->imin, s->imax, "reads/s");
				print_unstable(s->mmin, s->mmax, "misses/s");
			}
			print_counters(sb, sub, ph);
		}
	}
	if (opt->seq) {
		ph = sb_seq_phase(opt);
		printf("\nSEQUENTIAL READ: the whole region paged out (MADV_PAGEOUT), then one "
		       "thread reads every word of every page in address order\n");
		printf("%-26s %10s  %19s %8s  %-16s %10s %9s %9s %9s\n", "figure", "pages/s",
		       "1-s min .. max", "x kernel", "goal", "misses/s", "p50 us", "p99 us",
		       "p99.9 us");
		for (i = 0; i < sb->nsubjects; i++) {
			const struct subject *sub = &sb->subjects[i];
			const struct summ *s = &sub->s[ph];
			double r;

			if (sub->kind == K_DEVICE || !s->ok)
				continue;
			r = ratio(s->rate, ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
			goal[0] = 0;
			if (seq_goal(sub) > 0)
				fmt(goal, sizeof(goal), ">= %.2f %s", seq_goal(sub),
				    verdict(r, seq_goal(sub), "met", "NOT MET"));
			sb_phase_name(sb, sub, ph, name, sizeof(name));
			printf("%-26s %10.0f  %8.0f .. %-8.0f %s  %-16s %10.0f %9.1f %9.1f %9.1f\n",
			       name, s->rate, s->imin, s->imax, rf(r, 8), goal, s->miss, s->p50,
			       s->p99, s->p999);
			print_unstable(s->imin, s->imax, "pages/s");
			print_counters(sb, sub, ph);
		}
	}
	printf("\n");
}

void sb_print_bench_lines(const struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;
	int kd = sb_subject_index(sb, K_DEVICE), kk = sb_subject_index(sb, K_KERNEL);
	const struct subject *dev = kd >= 0 ? &sb->subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &sb->subjects[kk] : NULL;
	unsigned int i, ph;
	char name[64], kname[64], dname[64], bname[64];

	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];

		if (sub->failed) {
			printf("BENCH name=%s status=failed error=\"%s\"\n", sub->name, sub->error);
			continue;
		}
		for (ph = 0; ph < sb_nphases(opt); ph++) {
			const struct summ *s = &sub->s[ph];
			unsigned int t = ph && ph < sb_seq_phase(opt) ? opt->threads[ph - 1] : 1;
			const struct summ *ks = ker ? &ker->s[ph] : NULL;
			const struct summ *ds = dev ? &dev->s[ph] : NULL;
			double r, g;

			if (!s->ok)
				continue;
			sb_phase_name(sb, sub, ph, name, sizeof(name));
			if (ker)
				sb_phase_name(sb, ker, ph, kname, sizeof(kname));
			if (dev && ph)
				sb_phase_name(sb, dev, ph, dname, sizeof(dname));
			if (ph == sb_seq_phase(opt)) {
				r = ratio(s->rate, ks && ks->ok ? ks->rate : NAN);
				g = seq_goal(sub);
				printf("BENCH name=%s value=%.0f unit=pages/s ratio=%s anchor=%s",
				       name, s->rate, rf(r, 0), ker ? kname : "n/a");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f misses_per_s=%.0f",
				       s->p50, s->p99, s->p999, s->miss);
			} else if (ph == 0) {
				r = ratio(s->rate, ks ? ks->rate : NAN);
				g = fill_goal(sub);
				printf("BENCH name=%s value=%.0f unit=pages/s ratio=%s anchor=%s",
				       name, s->rate, rf(r, 0), ker ? kname : "n/a");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f writes_per_s=%.0f",
				       s->p50, s->p99, s->p999, s->writes);
			} else if (sub->kind == K_DEVICE) {
				printf("BENCH name=%s.iops value=%.0f unit=iops ratio=1.000 "
				       "anchor=%s.iops p50_us=%.1f p99_us=%.1f p999_us=%.1f",
				       name, s->rate, name, s->p50, s->p99, s->p999);
			} else {
				/* The bare anchor's reads have no anchor: all of them miss. */
				bool kr = ker && sub->kind != K_BARE;

				r = kr ? ratio(s->rate, ks && ks->ok ? ks->rate : NAN) : NAN;
				g = reads_goal(sub, t);
				printf("BENCH name=%s.reads value=%.0f unit=reads/s ratio=%s "
				       "anchor=%s%s",
				       name, s->rate, rf(r, 0), kr ? kname : "n/a",
				       kr ? ".reads" : "");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f", s->p50, s->p99,
				       s->p999);
				if (ks && ks->ok && sub->kind == K_FL)
					printf(" p50_ratio=%s p99_ratio=%s p999_ratio=%s",
					       rf(ratio(s->p50, ks->p50), 0),
					       rf(ratio(s->p99, ks->p99), 0),
					       rf(ratio(s->p999, ks->p999), 0));
				printf(" rounds=%u min=%.0f max=%.0f spread=%.2f\n", s->n, s->imin,
				       s->imax, s->imin > 0 ? s->imax / s->imin : NAN);
				r = ratio(s->miss, ds && ds->ok ? ds->rate : NAN);
				g = misses_goal(sub, t);
				printf("BENCH name=%s.misses value=%.0f unit=misses/s ratio=%s "
				       "anchor=%s",
				       name, s->miss, rf(r, 0), dev ? dname : "n/a");
				if (dev)
					printf(".iops");
				if (g > 0)
					printf(" goal=>=%.2f goal_met=%s", g,
					       verdict(r, g, "yes", "no"));
				if (sub->kind == K_FL && ks && ks->ok)
					printf(" ratio_kernel=%s anchor_kernel=%s.misses",
					       rf(ratio(s->miss, ks->miss), 0), kname);
				if (sub->kind == K_FL) {
					r = bare_ratio(sb, sub, ph, bname, sizeof(bname));
					printf(" ratio_bare=%s anchor_bare=%s%s", rf(r, 0), bname,
					       isnan(r) ? "" : ".misses");
				}
				printf(" rounds=%u min=%.0f max=%.0f spread=%.2f\n", s->n, s->mmin,
				       s->mmax, s->mmin > 0 ? s->mmax / s->mmin : NAN);
				continue;
			}
			printf(" rounds=%u min=%.0f max=%.0f spread=%.2f\n", s->n, s->imin, s->imax,
			       s->imin > 0 ? s->imax / s->imin : NAN);
		}
	}
}

/* The goals, one line each, after the table. */
void sb_print_goals(const struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;
	int kd = sb_subject_index(sb, K_DEVICE), kk = sb_subject_index(sb, K_KERNEL);
	const struct subject *dev = kd >= 0 ? &sb->subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &sb->subjects[kk] : NULL;
	unsigned int i, ph;

	printf("GOALS (ratio to the anchor measured in this run)\n");
	for (i = 0; i < sb->nsubjects; i++) {
		const struct subject *sub = &sb->subjects[i];
		double r, g;

		if (sub->kind != K_FL)
			continue;
		if (sub->failed) {
			printf("  %-18s FAILED: %s\n", sub->name, sub->error);
			continue;
		}
		g = fill_goal(sub);
		r = ratio(sub->s[0].rate, ker && ker->s[0].ok ? ker->s[0].rate : NAN);
		printf("  %-18s fill rate                 >= %.2fx kernel:      %s %s\n", sub->name,
		       g, rf(r, 6), verdict(r, g, "met", "NOT MET"));
		for (ph = 1; ph < 1 + opt->nthreads; ph++) {
			unsigned int t = opt->threads[ph - 1];

			g = reads_goal(sub, t);
			if (g > 0) {
				r = ratio(sub->s[ph].rate,
					  ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
				printf("  %-18s read throughput, t%-2u     >= %.2fx kernel:      "
				       "%s "
				       "%s\n",
				       sub->name, t, g, rf(r, 6), verdict(r, g, "met", "NOT MET"));
			}
			g = misses_goal(sub, t);
			if (g > 0) {
				r = ratio(sub->s[ph].miss,
					  dev && dev->s[ph].ok ? dev->s[ph].rate : NAN);
				printf("  %-18s misses/s, t%-2u            >= %.2fx device qd%-2u: "
				       "%s "
				       "%s\n",
				       sub->name, t, g, t, rf(r, 6),
				       verdict(r, g, "met", "NOT MET"));
			}
		}
		g = seq_goal(sub);
		if (opt->seq && g > 0) {
			ph = sb_seq_phase(opt);
			r = ratio(sub->s[ph].rate, ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
			printf("  %-18s sequential read           >= %.2fx kernel:      %s %s\n",
			       sub->name, g, rf(r, 6), verdict(r, g, "met", "NOT MET"));
		}
	}
	printf("\n");
}

static const char *jverdict(double r, double goal, const char *yes, const char *no)
{
	return isnan(r) ? "null" : verdict(r, goal, yes, no);
}

void sb_print_json(const struct swapbench *sb, const struct run_info *ri)
{
	const struct sb_opts *opt = &sb->opt;
	int kd = sb_subject_index(sb, K_DEVICE), kk = sb_subject_index(sb, K_KERNEL);
	const struct subject *dev = kd >= 0 ? &sb->subjects[kd] : NULL;
	const struct subject *ker = kk >= 0 ? &sb->subjects[kk] : NULL;
	unsigned int i, ph, k;
	bool first = true;
	char name[64];

	printf("{\n  \"bench\": \"faultline-swap\", \"version\": \"%s\", \"date\": \"%s\",\n",
	       FL_VERSION_STRING, ri->host.date);
	printf("  \"kernel\": \"%s\", \"cpus\": %ld, \"thp\": \"%s\",\n", ri->host.kernel,
	       ri->host.cpus, ri->host.thp);
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
			const struct window *w = W(sub, ph, opt->rounds - 1);
			unsigned int t = ph && ph < sb_seq_phase(opt) ? opt->threads[ph - 1] : 1;

			if (!s->ok)
				continue;
			sb_phase_name(sb, sub, ph, name, sizeof(name));
			printf("%s    {\"name\": \"%s\", \"threads\": %u, ", first ? "" : ",\n",
			       name, t);
			first = false;
			if (ph == 0) {
				double r = ratio(s->rate, ker ? ker->s[0].rate : NAN);

				json_num("pages_per_s", s->rate, ", ");
				json_num("ratio_kernel", r, ", ");
				if (fill_goal(sub) > 0)
					printf("\"goal\": \">=%.2f\", \"goal_met\": %s, ",
					       fill_goal(sub),
					       jverdict(r, fill_goal(sub), "true", "false"));
				json_num("writes_per_s", s->writes, ", ");
			} else if (ph == sb_seq_phase(opt)) {
				double r = ratio(s->rate,
						 ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);

				json_num("pages_per_s", s->rate, ", ");
				json_num("ratio_kernel", r, ", ");
				if (seq_goal(sub) > 0)
					printf("\"goal\": \">=%.2f\", \"goal_met\": %s, ",
					       seq_goal(sub),
					       jverdict(r, seq_goal(sub), "true", "false"));
				json_num("misses_per_s", s->miss, ", ");
			} else {
				double rr = ratio(s->rate,
						  ker && ker->s[ph].ok ? ker->s[ph].rate : NAN);
				double rm = ratio(s->miss,
						  dev && dev->s[ph].ok ? dev->s[ph].rate : NAN);

				json_num("ops_per_s", s->rate, ", ");
				json_num("misses_per_s", s->miss, ", ");
				if (sub->kind == K_BARE)
					json_num("misses_ratio_device", rm, ", ");
				if (sub->kind == K_KERNEL || sub->kind == K_FL) {
					json_num("ratio_kernel", rr, ", ");
					if (reads_goal(sub, t) > 0)
						printf("\"reads_goal\": \">=%.2f\", "
						       "\"reads_goal_met\": "
						       "%s, ",
						       reads_goal(sub, t),
						       jverdict(rr, reads_goal(sub, t), "true",
								"false"));
					json_num("misses_ratio_device", rm, ", ");
					if (misses_goal(sub, t) > 0)
						printf("\"misses_goal\": \">=%.2f\", "
						       "\"misses_goal_met\": %s, ",
						       misses_goal(sub, t),
						       jverdict(rm, misses_goal(sub, t), "true",
								"false"));
				}
				if (sub->kind == K_FL) {
					char bname[64];
					double rb = bare_ratio(sb, sub, ph, bname, sizeof(bname));

					json_num("misses_ratio_bare", rb, ", ");
					if (isnan(rb))
						printf("\"anchor_bare\": null, ");
					else
						printf("\"anchor_bare\": \"%s\", ", bname);
				}
			}
			json_num("p50_us", s->p50, ", ");
			json_num("p99_us", s->p99, ", ");
			json_num("p999_us", s->p999, ", ");
			json_num("max_us", s->max, ", ");
			printf("\"rounds\": %u, \"intervals_last_round\": [", s->n);
			for (k = 0; k < w->nivl; k++)
				printf("%.0f%s", w->ivl_ops[k], k + 1 < w->nivl ? ", " : "");
			printf("]");
			if (sub->kind == K_FL && w->done) {
				printf(", \"faultline_end\": ");
				fflush(stdout);
				fl_stats_print_snapshot(&w->fl1, stdout, FL_STATS_JSON);
				printf("      , \"faultline_start\": ");
				fflush(stdout);
				fl_stats_print_snapshot(&w->fl0, stdout, FL_STATS_JSON);
			} else if (sub->kind == K_BARE && w->done) {
				printf(", \"uffd\": {\"copies\": %.0f, \"eexist\": %.0f, "
				       "\"slice_drops\": %.0f}",
				       delta(w->b0.copies, w->b1.copies),
				       delta(w->b0.exist, w->b1.exist),
				       delta(w->b0.drops, w->b1.drops));
			} else if (sub->kind == K_KERNEL && w->done) {
				printf(", \"kernel\": {\"pgmajfault_cgroup\": %.0f, "
				       "\"pgmajfault\": "
				       "%.0f, \"pswpin\": %.0f, \"pswpout\": %.0f, \"swap_ra\": "
				       "%.0f, "
				       "\"swap_ra_hit\": %.0f}",
				       delta(w->k0.cg_pgmajfault, w->k1.cg_pgmajfault),
				       delta(w->k0.pgmajfault, w->k1.pgmajfault),
				       delta(w->k0.pswpin, w->k1.pswpin),
				       delta(w->k0.pswpout, w->k1.pswpout),
				       delta(w->k0.swap_ra, w->k1.swap_ra),
				       delta(w->k0.swap_ra_hit, w->k1.swap_ra_hit));
			}
			printf("}");
		}
	}
	printf("\n  ]\n}\n");
}
