// SPDX-License-Identifier: MIT
/*
 * swapbench's per-miss table (see swapbench.h): for every subject and every
 * read phase, the misses served per second with their spread over the
 * rounds, the CPU time per miss (the subject's own, and the machine's), the
 * compression ratio of the compressed swap, the tail latency and the
 * slowest access, and where the misses were served from.  The figures that
 * compare the compressed tier with the kernel's zswap and zram, and trend
 * prefetch with the kernel's swap readahead (BENCHMARKS.md, "Compressed
 * swap" and "Trend prefetch").
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kside.h"
#include "swapbench.h"

/* Bytes of pages held per byte of memory holding them, at the window's end; 0: none. */
double sb_comp_ratio(const struct subject *sub, const struct window *w)
{
	if (sub->kind == K_FL)
		return w->fl1.zswap_pages ? (double)w->fl1.zswap_ratio_pct / 100 : 0;
	if (sub->kind != K_KERNEL)
		return 0;
	if (sub->kv.variant == KV_ZSWAP && w->k1.zswap_pool)
		return (double)w->k1.zswapped / (double)w->k1.zswap_pool;
	if (sub->kv.variant == KV_ZRAM && w->k1.zram_used)
		return (double)w->k1.zram_orig / (double)w->k1.zram_used;
	return 0;
}

static const char *num(char *buf, size_t len, double v, const char *f)
{
	if (isnan(v) || isinf(v) || v <= 0)
		fmt(buf, len, "-");
	else
		fmt(buf, len, f, v);
	return buf;
}

/* Where the last round's misses were served from. */
static void served(const struct subject *sub, const struct window *w, char *buf, size_t len)
{
	buf[0] = 0;
	if (!w->done)
		return;
	if (sub->kind == K_FL) {
		const struct fl_stats *a = &w->fl0, *b = &w->fl1;

		fmt(buf, len, "tier %" PRIu64 " store %" PRIu64 " pf %" PRIu64 "/%" PRIu64,
		    b->zswap_hits - a->zswap_hits, b->store_reads - a->store_reads,
		    b->prefetch_used - a->prefetch_used, b->prefetch_wasted - a->prefetch_wasted);
	} else if (sub->kind == K_KERNEL) {
		const struct kcount *a = &w->k0, *b = &w->k1;

		fmt(buf, len, "zswpin %" PRIu64 " pswpin %" PRIu64 " ra %" PRIu64 "/%" PRIu64,
		    b->zswpin - a->zswpin, b->vm.pswpin - a->vm.pswpin,
		    b->vm.swap_ra_hit - a->vm.swap_ra_hit, b->vm.swap_ra - a->vm.swap_ra);
	} else if (sub->kind == K_BARE) {
		fmt(buf, len, "copies %" PRIu64 " drops %" PRIu64, w->b1.copies - w->b0.copies,
		    w->b1.drops - w->b0.drops);
	}
}

/*
 * Where each subject's own CPU time goes in the random reads: per miss, by
 * the role of the thread that spent it, and the context switches.
 */
static void print_by_thread(const struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;
	unsigned int i, ph, k;

	printf("BY THREAD: the random reads' own CPU us per miss (as in PER MISS) by "
	       "thread, from each thread's run time (/proc/self/task/T/schedstat): app = the "
	       "program's threads (the faulting ones; all of the kernel's child), handler = "
	       "fl-handler/N (the bare anchor's: bare-handler), reaper = fl-reaper (I/O "
	       "completions), kswapd = fl-kswapd (background reclaim), rest = other threads and "
	       "those that ended; switches = the process's context switches per miss "
	       "(getrusage: voluntary, involuntary); medians of the rounds\n");
	printf("%-34s %8s %8s %8s %8s %8s %8s %8s %8s\n", "figure", "own us", "app", "handler",
	       "reaper", "kswapd", "rest", "cs vol", "cs invol");
	for (ph = 1; ph < sb_nphases(opt); ph++) {
		if (sb_phase_kind(opt, ph) != PH_READS)
			continue;
		for (i = 0; i < sb->nsubjects; i++) {
			const struct subject *sub = &sb->subjects[i];
			const struct summ *s = &sub->s[ph];
			char name[64], b[NROLES + 3][24];

			if (!s->ok || sub->kind == K_DEVICE)
				continue;
			sb_phase_name(sb, sub, ph, name, sizeof(name));
			printf("%-34s %8s", name, num(b[0], 24, s->cpu_self, "%.1f"));
			for (k = 0; k < NROLES; k++)
				printf(" %8s", isnan(s->role_us[k]) ? "n/a"
					       : s->role_us[k] < 0.05
						       ? "0"
						       : num(b[k + 1], 24, s->role_us[k], "%.1f"));
			printf(" %8s %8s\n",
			       isnan(s->vcs) ? "n/a" : num(b[NROLES + 1], 24, s->vcs, "%.2f"),
			       isnan(s->ivcs) ? "n/a" : num(b[NROLES + 2], 24, s->ivcs, "%.2f"));
		}
	}
	printf("\n");
}

void sb_print_tiers(const struct swapbench *sb)
{
	const struct sb_opts *opt = &sb->opt;
	int ki = sb_subject_index(sb, K_KERNEL);
	const struct subject *ker = ki >= 0 ? &sb->subjects[ki] : NULL;
	unsigned int i, ph;

	printf("PER MISS: ops/s = reads/s (random reads) or pages/s (the passes), misses/s "
	       "(median of %u round%s; misses/s of the lowest .. highest round), x %s (ops/s); "
	       "CPU us per miss (random reads) or per page (the passes): own = the subject's "
	       "process (getrusage, user + sys; the kernel's child, or faultline's whole "
	       "process), machine = all CPUs busy (/proc/stat); comp = pages held per byte of "
	       "the compressed pool at the window's end; latency of every access, slowest over "
	       "all rounds; served = the last round's: faultline tier hits, store reads, "
	       "prefetched pages used/wasted; kernel zswpin, pswpin, swap_ra_hit/swap_ra; the bare "
	       "anchor (uffd-*; like faultline, swapbench's own process, its slice drops "
	       "included) UFFDIO_COPYs, slices dropped\n",
	       opt->rounds, opt->rounds > 1 ? "s" : "", ker ? ker->name : "kernel (none)");
	printf("%-34s %9s %9s %19s %7s %8s %8s %5s %8s %9s %9s  %s\n", "figure", "ops/s",
	       "misses/s", "rounds min .. max", "x kern", "own us", "mach us", "comp", "p99 us",
	       "p99.9 us", "slowest", "served");
	for (ph = 1; ph < sb_nphases(opt); ph++) {
		for (i = 0; i < sb->nsubjects; i++) {
			const struct subject *sub = &sb->subjects[i];
			const struct summ *s = &sub->s[ph];
			char name[64], b[6][24], where[160];
			double xk;

			if (!s->ok || sub->kind == K_DEVICE)
				continue;
			sb_phase_name(sb, sub, ph, name, sizeof(name));
			/* Random reads: against the kernel's reads/s (hits count); the
			 * passes: pages/s. */
			xk = ker && ker->s[ph].ok ? s->rate / ker->s[ph].rate : NAN;
			served(sub, W_last(sub, ph), where, sizeof(where));
			printf("%-34s %9.0f %9.0f %8.0f .. %-8.0f %7s %8s %8s %5s %8.1f %9.1f "
			       "%7.1fms  %s\n",
			       name, s->rate, s->miss, s->rmin, s->rmax, num(b[0], 24, xk, "%.3f"),
			       num(b[1], 24, s->cpu_self, "%.1f"),
			       num(b[2], 24, s->cpu_busy, "%.1f"), num(b[3], 24, s->comp, "%.2f"),
			       s->p99, s->p999, s->slowest / 1e3, where);
		}
	}
	printf("\n");
	print_by_thread(sb);
}
