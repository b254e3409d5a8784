// SPDX-License-Identifier: MIT
/*
 * swapbench: faultline's swap against the kernel's own swap and against the
 * disk, in the same run.  A benchmark, not a test: it asserts nothing about
 * speed, it reports ratios.  See BENCHMARKS.md, section "Swap".
 *
 * The workload: a region (default 1 GiB) is filled page by page, in address
 * order, by one thread under a memory budget (default 256 MiB), so that the
 * fill rate measures eviction; then T application threads (default 1, 2, 4,
 * 8) read one 8-byte word of a random page each, for a fixed time, and check
 * it against the pattern the fill wrote (a mismatch stops everything); then
 * the whole region is paged out (MADV_PAGEOUT) and one thread reads every
 * word of it once, in address order, checking each: sequential swap-in, with
 * readahead.
 *
 * Subjects:
 *
 *   device           random 4 KiB O_DIRECT reads through io_uring of a
 *                    pre-written file in the same file system, at queue
 *                    depth T: the disk's limit, the anchor of misses/s
 *   uffd-DELIVERY    the bare userfaultfd swap-in, no faultline: random
 *                    reads in which every access is a miss, each served by
 *                    a pread of a random block of the device's file and a
 *                    UFFDIO_COPY (T handler threads, or the faulting thread's
 *                    SIGBUS handler): what any userfaultfd design can do for
 *                    a miss here, the anchor of faultline's misses/s per
 *                    delivery ("x bare"); only the read windows
 *   kernel           the same program on plain anonymous memory, in a forked
 *                    child inside a cgroup v1 memory cgroup limited to the
 *                    budget, with a swap file in the same file system that
 *                    the benchmark enables for the run and removes after:
 *                    the anchor of the fill rate, of read throughput and of
 *                    the sequential read
 *   fl-DELIVERY-POLICY
 *                    faultline with mem_limit = the budget and its default
 *                    store (O_TMPFILE in $TMPDIR, O_DIRECT, io_uring), for
 *                    each delivery and each --policy
 *
 * Every figure is a ratio to an anchor measured in the same run; within a
 * round the subjects run one after another (every other round in reverse
 * order), each with a fresh region that is freed before the next.
 *
 * This file: the subjects, the rounds, the medians over them, and main().
 * swapbench.h says where the rest is.
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kside.h"
#include "swapbench.h"

/* ---- Subjects, rounds, summaries ---- */

static struct subject *add_subject(struct swapbench *sb, const char *name, enum kind kind,
				   int delivery, int policy)
{
	struct subject *sub;

	if (sb->nsubjects == MAX_SUBJECTS) {
		fprintf(stderr, "swapbench: more than %d subjects\n", MAX_SUBJECTS);
		exit(2);
	}
	sub = &sb->subjects[sb->nsubjects++];
	fmt(sub->name, sizeof(sub->name), "%s", name);
	sub->kind = kind;
	sub->delivery = delivery;
	sub->policy = policy;
	sub->zswap = sub->prefetch = -1;
	sub->rounds = sb->opt.rounds;
	sub->w = calloc(MAX_PHASES * sub->rounds, sizeof(struct window));
	if (!sub->w) {
		fprintf(stderr, "swapbench: out of memory\n");
		exit(2);
	}
	return sub;
}

/* The compressor of --zswap value z; "-keep" follows when z keeps
 * incompressible pages (SB_ZSWAP_KEEP). */
static const char *zswap_name(int z)
{
	static const char *const names[] = {"notier", "lz4", "zstd", "lzo"};
	int alg = z & ~SB_ZSWAP_KEEP;

	return alg < 0 || alg > FL_ZSWAP_LZO ? "notier" : names[alg];
}

static void build_subjects(struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;
	unsigned int d, p, k, z, f;
	char name[40];

	if (opt->do_device)
		add_subject(sb, "device", K_DEVICE, 0, 0);
	if (opt->do_bare)
		for (d = 0; d < opt->ndeliveries; d++) {
			fmt(name, sizeof(name), "uffd-%s", fl_delivery_name(opt->deliveries[d]));
			add_subject(sb, name, K_BARE, opt->deliveries[d], 0);
		}
	/* The kernel's variants: "kernel" (the swap file), "kernel-zswap-lz4", ... */
	for (k = 0; opt->do_kernel && k < opt->nkernels; k++) {
		const struct kernel_variant *kv = &opt->kernels[k];

		if (kv->variant == KV_SWAP)
			fmt(name, sizeof(name), "kernel");
		else
			fmt(name, sizeof(name), "kernel-%s-%s",
			    kv->variant == KV_ZSWAP ? "zswap" : "zram", kv->alg);
		add_subject(sb, name, K_KERNEL, 0, 0)->kv = *kv;
	}
	/* faultline's: fl-DELIVERY-POLICY, then -lz4/-zstd/-lzo/-notier and -pf/-nopf
	 * when --zswap or --prefetch asks for them. */
	for (d = 0; opt->do_faultline && d < opt->ndeliveries; d++)
		for (p = 0; p < opt->npolicies; p++)
			for (z = 0; z < opt->nzswaps; z++)
				for (f = 0; f < opt->nprefetches; f++) {
					int zs = opt->zswaps[z], pf = opt->prefetches[f];
					struct subject *sub;
					size_t n = (size_t)fmt(name, sizeof(name), "fl-%s-%s",
							       fl_delivery_name(opt->deliveries[d]),
							       fl_policy_name(opt->policies[p]));

					if (zs >= 0)
						n += (size_t)fmt(name + n, sizeof(name) - n,
								 "-%s%s", zswap_name(zs),
								 zs & SB_ZSWAP_KEEP ? "-keep" : "");
					if (pf >= 0 && n < sizeof(name))
						fmt(name + n, sizeof(name) - n, "-%s",
						    pf ? "pf" : "nopf");
					sub = add_subject(sb, name, K_FL, opt->deliveries[d],
							  opt->policies[p]);
					sub->zswap = zs;
					sub->prefetch = pf;
				}
}

int sb_subject_index(const struct swapbench *sb, enum kind kind)
{
	unsigned int i;

	for (i = 0; i < sb->nsubjects; i++)
		if (sb->subjects[i].kind == kind)
			return (int)i;
	return -1;
}

void sb_phase_name(const struct swapbench *sb, const struct subject *sub, unsigned int ph,
		   char *buf, size_t len)
{
	const struct sb_opts *opt = &sb->opt;

	enum phase_kind kind = sb_phase_kind(opt, ph);

	if (kind == PH_FILL)
		fmt(buf, len, "%s.fill", sub->name);
	else if (kind == PH_SEQ)
		fmt(buf, len, "%s.seq", sub->name);
	else if (kind == PH_STRIDE)
		fmt(buf, len, "%s.stride", sub->name);
	else if (kind == PH_INTER)
		fmt(buf, len, "%s.inter", sub->name);
	else if (sub->kind == K_DEVICE)
		fmt(buf, len, "device.qd%u", opt->threads[ph - 1]);
	else if (sub->kind == K_BARE)
		fmt(buf, len, "%s.t%u", sub->name, opt->threads[ph - 1]);
	else
		fmt(buf, len, "%s.read.t%u", sub->name, opt->threads[ph - 1]);
}

static void progress(struct swapbench *sb, struct subject *sub, unsigned int round)
{
	const struct sb_opts *opt = &sb->opt;
	unsigned int ph;
	char name[64];

	if (sub->failed) {
		fprintf(stderr, "swapbench: %s FAILED: %s\n", sub->name, sub->error);
		return;
	}
	if (sub->oom_rounds && !W(sub, sb_nphases(opt) - 1, round)->done)
		fprintf(stderr, "swapbench: %s: OOM-killed by its cgroup in %s (this round)\n",
			sub->name, sub->oom_where);
	for (ph = 0; ph < sb_nphases(opt); ph++) {
		struct window *w = W(sub, ph, round);

		if (!w->done)
			continue;
		sb_phase_name(sb, sub, ph, name, sizeof(name));
		if (ph == 0)
			fprintf(stderr, "  %-28s %10.0f pages/s\n", name, (double)w->ops / w->secs);
		else if (sb_phase_kind(opt, ph) != PH_READS)
			fprintf(stderr, "  %-28s %10.0f pages/s %10.0f misses/s  p50 %.1f us\n",
				name, (double)w->ops / w->secs, (double)w->misses / w->secs,
				sb_hist_quantile(&w->h, 0.5) / 1e3);
		else
			fprintf(stderr, "  %-28s %10.0f ops/s %10.0f misses/s  p50 %.1f us\n", name,
				(double)w->ops / w->secs, (double)w->misses / w->secs,
				sb_hist_quantile(&w->h, 0.5) / 1e3);
	}
}

static void run_subject(struct swapbench *sb, struct subject *sub, unsigned int round)
{
	static void (*const run[])(struct swapbench *, struct subject *, unsigned int) = {
		[K_DEVICE] = sb_run_device,
		[K_BARE] = sb_run_bare,
		[K_KERNEL] = sb_run_kernel,
		[K_FL] = sb_run_faultline,
	};

	if (sub->failed)
		return;
	fprintf(stderr, "swapbench: round %u/%u: %s\n", round + 1, sb->opt.rounds, sub->name);
	run[sub->kind](sb, sub, round);
	progress(sb, sub, round);
}

/*
 * Round r's CPU by thread role and context switches per miss (or page) into
 * column r of rl (roles, then voluntary and involuntary switches).
 * Return: 1, or 0 if the window has none (they were not read).
 */
static unsigned int split_round(const struct window *w, double per,
				double rl[NROLES + 2][MAX_ROUNDS], unsigned int r)
{
	double ru[NROLES], v, iv;
	unsigned int k;

	sb_task_split(w, per, ru, &v, &iv);
	if (isnan(v))
		return 0;
	for (k = 0; k < NROLES; k++)
		rl[k][r] = ru[k];
	rl[NROLES][r] = v;
	rl[NROLES + 1][r] = iv;
	return 1;
}

static void summarise(struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;
	unsigned int i, ph, r, k;

	for (i = 0; i < sb->nsubjects; i++) {
		struct subject *sub = &sb->subjects[i];

		for (ph = 0; ph < sb_nphases(opt); ph++) {
			struct summ *s = &sub->s[ph];
			double rate[MAX_ROUNDS], miss[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS],
				p999[MAX_ROUNDS], mx[MAX_ROUNDS], wr[MAX_ROUNDS], cs[MAX_ROUNDS],
				cb[MAX_ROUNDS], cr[MAX_ROUNDS], rl[NROLES + 2][MAX_ROUNDS];
			unsigned int n = 0, nr = 0;

			memset(s, 0, sizeof(*s));
			s->imin = s->mmin = s->rmin = INFINITY;
			s->imax = s->mmax = s->rmax = 0;
			for (r = 0; r < opt->rounds; r++) {
				struct window *w = W(sub, ph, r);
				uint64_t writes, per;

				if (!w->done || w->secs <= 0)
					continue;
				rate[n] = (double)w->ops / w->secs;
				miss[n] = (double)w->misses / w->secs;
				p50[n] = sb_hist_quantile(&w->h, 0.5) / 1e3;
				p99[n] = sb_hist_quantile(&w->h, 0.99) / 1e3;
				p999[n] = sb_hist_quantile(&w->h, 0.999) / 1e3;
				mx[n] = (double)w->h.max / 1e3;
				writes = sub->kind == K_FL ? w->fl1.swap_outs - w->fl0.swap_outs
							   : w->k1.vm.pswpout - w->k0.vm.pswpout;
				wr[n] = (double)writes / w->secs;
				/* us of CPU per miss in the random reads, per page
				 * in the fill and the passes */
				per = sb_phase_kind(opt, ph) == PH_READS ? w->misses : w->ops;
				cs[n] = (w->c1.t.self - w->c0.t.self) * 1e6 / (double)per;
				cb[n] = (w->c1.t.busy - w->c0.t.busy) * 1e6 / (double)per;
				cr[n] = sb_comp_ratio(sub, w);
				nr += split_round(w, (double)per, rl, nr);
				s->rmin = fmin(s->rmin, ph ? miss[n] : rate[n]);
				s->rmax = fmax(s->rmax, ph ? miss[n] : rate[n]);
				s->slowest = fmax(s->slowest, mx[n]);
				for (k = 0; k < w->nivl; k++) {
					s->imin = fmin(s->imin, w->ivl_ops[k]);
					s->imax = fmax(s->imax, w->ivl_ops[k]);
					if (ph) {
						s->mmin = fmin(s->mmin, w->ivl_miss[k]);
						s->mmax = fmax(s->mmax, w->ivl_miss[k]);
					}
				}
				n++;
			}
			s->n = n;
			s->ok = n > 0;
			s->rate = median(rate, n);
			s->miss = median(miss, n);
			s->p50 = median(p50, n);
			s->p99 = median(p99, n);
			s->p999 = median(p999, n);
			s->max = median(mx, n);
			s->writes = median(wr, n);
			s->cpu_self = median(cs, n);
			s->cpu_busy = median(cb, n);
			s->comp = median(cr, n);
			for (k = 0; k < NROLES; k++)
				s->role_us[k] = median(rl[k], nr);
			s->vcs = median(rl[NROLES], nr);
			s->ivcs = median(rl[NROLES + 1], nr);
			if (isinf(s->rmin))
				s->rmin = s->rmax = 0;
			if (isinf(s->imin))
				s->imin = s->imax = s->rate;
			if (isinf(s->mmin))
				s->mmin = s->mmax = s->miss;
		}
	}
}

int main(int argc, char **argv)
{
	struct swapbench state = {.opt = sb_defaults, .probe.fd = -1};
	struct swapbench *sb = &state;
	const struct sb_opts *opt = &sb->opt;
	struct run_info ri;
	struct cpus c0, c1;
	unsigned int r, i, failed = 0;
	uint64_t t0;

	sb_parse_args(&sb->opt, argc, argv);
	if ((size_t)sysconf(_SC_PAGESIZE) != PAGE) {
		fprintf(stderr, "swapbench: needs 4 KiB pages\n");
		return 2;
	}
	sb->main_pid = getpid();
	ks_init("swapbench", opt->verbose);
	sb_identify_store(sb);
	sb_gather_info(&ri);
	build_subjects(sb);
	if (!sb->nsubjects) {
		fprintf(stderr, "swapbench: nothing to measure\n");
		return 2;
	}
	/* Prepared before the clock starts: the swap file, the cgroup, the probe file. */
	if (opt->do_kernel && sb_kernel_prepare(sb))
		fprintf(stderr, "swapbench: kernel side unavailable: %s\n", ks_kern.error);
	for (i = 0; i < sb->nsubjects; i++) {
		struct subject *sub = &sb->subjects[i];

		if ((sub->kind == K_DEVICE || sub->kind == K_BARE) &&
		    sb_probe_prepare(sb, sub->error, sizeof(sub->error)))
			sub->failed = true;
	}

	sb_read_cpus(sb, &c0, true);
	sb_read_disk(sb, &ri.d0);
	t0 = now_ns();
	for (r = 0; r < opt->rounds; r++)
		for (i = 0; i < sb->nsubjects; i++)
			run_subject(sb, &sb->subjects[r % 2 ? sb->nsubjects - 1 - i : i], r);
	ri.elapsed = (double)(now_ns() - t0) / 1e9;
	sb_read_cpus(sb, &c1, true);
	sb_read_disk(sb, &ri.d1);
	ri.foreign = sb_foreign_of(&c0, &c1);
	ri.steal = c1.t.steal - c0.t.steal;
	sb_read_load(ri.load1, sizeof(ri.load1));
	fprintf(stderr, "swapbench: %.1f s\n", ri.elapsed);

	ks_cleanup(); /* before printing: the machine is back as it was */
	summarise(sb);
	if (opt->json) {
		sb_print_json(sb, &ri);
	} else {
		sb_print_table(sb, &ri);
		sb_print_goals(sb);
		sb_print_tiers(sb);
		sb_print_bench_lines(sb);
	}
	for (i = 0; i < sb->nsubjects; i++) {
		failed += sb->subjects[i].failed;
		free(sb->subjects[i].w);
	}
	return failed ? 1 : 0;
}
