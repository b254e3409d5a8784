// SPDX-License-Identifier: MIT
/*
 * The lab's runs judged and reported (see lab.h): the counters of each run
 * against its policy's definition (ARCHITECTURE.md section 2), the table of
 * each scenario, the legend, and the JSON document.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "kside.h"
#include "lab.h"

/* ---- Judging: the counters against the policy ---- */

/*
 * v2-anon: the retries beyond what its file faults may take (drop on file
 * VMAs: each file fault may retry once); the start scenario has files.
 */
static uint64_t anon_retries(const struct fl_stats *d)
{
	/* The retries of faults on anonymous VMAs: file VMAs' are counted
	 * apart (file_vma_lock_retry, a part of vma_lock_retry). */
	return d->vma_lock_retry > d->file_vma_lock_retry
		       ? d->vma_lock_retry - d->file_vma_lock_retry
		       : 0;
}

/* Counters that contradict the policy's definition (ARCHITECTURE.md section 2). */
bool lab_check_policy(struct run *rn)
{
	const struct fl_stats *d = &rn->r.d;
	const char *name = fl_policy_name(rn->sub->policy);
	bool judged = d->parked >= 100; /* enough waits to judge a ratio */

	if (rn->sub->kernel)
		return true;
	/* A policy that releases its VMA lock for every wait never waits for
	 * a page's lock keeping it (v2 and hold may). */
	if (d->lock_waits_kept && rn->sub->policy != FL_POLICY_HOLD &&
	    rn->sub->policy != FL_POLICY_V2 && rn->sub->policy != FL_POLICY_V2_ANON) {
		fmt(rn->why, sizeof(rn->why),
		    "%s kept its VMA lock through %" PRIu64 " waits for a page's lock", name,
		    d->lock_waits_kept);
		return false;
	}
	switch (rn->sub->policy) {
	case FL_POLICY_MMAP: /* no VMA locks at all, waits or not */
		if (d->vma_lock_success || d->vma_lock_abort || d->vma_lock_retry ||
		    d->vma_lock_miss) {
			fmt(rn->why, sizeof(rn->why),
			    "mmap used VMA locks: vma_lock_success %" PRIu64 ", abort %" PRIu64
			    ", retry %" PRIu64 ", miss %" PRIu64,
			    d->vma_lock_success, d->vma_lock_abort, d->vma_lock_retry,
			    d->vma_lock_miss);
			return false;
		}
		break;
	case FL_POLICY_HOLD:
		if (d->vma_lock_retry) {
			fmt(rn->why, sizeof(rn->why), "hold retried %" PRIu64 " faults",
			    d->vma_lock_retry);
			return false;
		}
		/* It holds: an mprotect of the faults' VMA waits for them. */
		if (judged && rn->sc == SC_MPROTECT && !d->vma_write_wait_ns) {
			fmt(rn->why, sizeof(rn->why),
			    "hold: %" PRIu64 " faults waited for I/O and the mprotect writer "
			    "never waited for the VMA lock",
			    d->parked);
			return false;
		}
		break;
	case FL_POLICY_BAIL:
	case FL_POLICY_DROP:
		if (judged && d->vma_lock_retry < d->parked / 2) {
			fmt(rn->why, sizeof(rn->why),
			    "%s: %" PRIu64 " retries under the space lock for %" PRIu64
			    " parked faults",
			    name, d->vma_lock_retry, d->parked);
			return false;
		}
		break;
	case FL_POLICY_DROP_VMA:
	case FL_POLICY_V2:	/* after I/O, as drop-vma */
	case FL_POLICY_V2_ANON: /* v2 on anonymous VMAs; drop on files (start) */
		if (judged &&
		    (rn->sub->policy == FL_POLICY_V2_ANON ? anon_retries(d) * 2 > d->parked
							  : d->vma_lock_retry * 2 > d->parked)) {
			fmt(rn->why, sizeof(rn->why),
			    "%s: %" PRIu64 " retries under the space lock for %" PRIu64
			    " parked faults (it retries under the VMA lock; %" PRIu64
			    " of the retries on file VMAs)",
			    name, d->vma_lock_retry, d->parked, d->file_vma_lock_retry);
			return false;
		}
		break;
	default:
		break;
	}
	return true;
}

/* Test-only (FL_LAB_INJECT=contradiction): counters each policy forbids. */
void lab_contradict(struct fl_stats *d, int policy)
{
	if (d->parked < 100)
		d->parked = 100;
	switch (policy) {
	case FL_POLICY_MMAP:
		d->vma_lock_success++;
		break;
	case FL_POLICY_BAIL:
	case FL_POLICY_DROP:
		d->vma_lock_retry = 0;
		break;
	default: /* drop-vma, hold, v2, v2-anon (beyond its file faults' retries) */
		d->vma_lock_retry = d->parked + d->file_vma_lock_retry;
		break;
	}
}

/* ---- Reporting ---- */

static const char *size_str(size_t b, char *buf, size_t len)
{
	if (b >= GiB && !(b % GiB))
		fmt(buf, len, "%zu GiB", b / GiB);
	else if (b >= MiB && !(b % MiB))
		fmt(buf, len, "%zu MiB", b / MiB);
	else
		fmt(buf, len, "%zu KiB", b >> 10);
	return buf;
}

/* Fault latency: the slowest `faults` of the timed accesses. */
static uint64_t fault_q(const struct result *r, double q)
{
	if (q >= 1)
		return r->flt.max;
	return fl_hist_percentile(&r->flt, q);
}

static const char *ns_str(uint64_t ns, char *buf, size_t len)
{
	if (!ns)
		fmt(buf, len, "-");
	else if (ns < 10000)
		fmt(buf, len, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000)
		fmt(buf, len, "%.0fus", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		fmt(buf, len, "%.1fms", (double)ns / 1e6);
	else
		fmt(buf, len, "%.0fs", (double)ns / 1e9);
	return buf;
}

static const char *num_str(double v, char *buf, size_t len)
{
	if (v >= 1e7)
		fmt(buf, len, "%.0fM", v / 1e6);
	else if (v >= 1e4)
		fmt(buf, len, "%.0fk", v / 1e3);
	else
		fmt(buf, len, "%.0f", v);
	return buf;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

const struct run *lab_median_run(const struct lab *lab, const struct run *rn)
{
	const struct run *same[MAX_ROUNDS];
	double rate[MAX_ROUNDS], mid;
	unsigned int n = 0;

	for (unsigned int i = 0; i < lab->nruns && n < MAX_ROUNDS; i++) {
		const struct run *o = &lab->runs[i];

		if (o->sc == rn->sc && o->sub == rn->sub && !o->failed) {
			same[n] = o;
			rate[n++] = lab_rate(o, o->r.accesses);
		}
	}
	if (!n)
		return rn;
	qsort(rate, n, sizeof(rate[0]), cmp_double);
	mid = rate[(n - 1) / 2]; /* the lower middle: a run that exists */
	for (unsigned int i = 0; i < n; i++)
		if (lab_rate(same[i], same[i]->r.accesses) == mid)
			return same[i];
	return rn;
}

/* Shown in the tables: a failed run (it says why), or a subject's median run. */
static bool shown(const struct lab *lab, const struct run *rn)
{
	return rn->failed || lab_median_run(lab, rn) == rn;
}

/*
 * The runs of sc the tables show, in the subjects' order (with several
 * rounds the runs alternate their order): at most MAX_RUNS.
 */
static unsigned int shown_runs(const struct lab *lab, enum scen sc, const struct run **out)
{
	unsigned int n = 0;

	for (unsigned int j = 0; j < lab->nsubjects; j++)
		for (unsigned int i = 0; i < lab->nruns; i++)
			if (lab->runs[i].sc == sc && lab->runs[i].sub == &lab->subjects[j] &&
			    shown(lab, &lab->runs[i]))
				out[n++] = &lab->runs[i];
	return n;
}

static const struct run *kernel_run(const struct lab *lab, enum scen sc)
{
	for (unsigned int i = 0; i < lab->nruns; i++)
		if (lab->runs[i].sc == sc && lab->runs[i].sub->kernel && !lab->runs[i].failed)
			return lab_median_run(lab, &lab->runs[i]);
	return NULL;
}

/* The kernel's run of sc in round r, if it did not fail. */
static const struct run *kernel_run_of_round(const struct lab *lab, enum scen sc, unsigned int r)
{
	for (unsigned int i = 0; i < lab->nruns; i++)
		if (lab->runs[i].sc == sc && lab->runs[i].sub->kernel && !lab->runs[i].failed &&
		    lab->runs[i].round == r)
			return &lab->runs[i];
	return NULL;
}

/*
 * With several rounds: per subject, the median and spread of its accesses
 * per second and of its ratio to the kernel's in the same round, and
 * whether that ratio is on one side of 1 in every round (a difference
 * beyond the spread) or not.  Then the machine's state per round.
 */
static void print_rounds(const struct lab *lab, enum scen sc)
{
	const struct lab_opts *opt = &lab->opt;
	char b[6][24];

	if (opt->rounds < 2)
		return;
	printf("\nover %u rounds  %9s %19s %6s %13s  %s\n", opt->rounds, "acc/s", "(min .. max)",
	       "x kern", "(min .. max)", "against the kernel");
	for (unsigned int j = 0; j < lab->nsubjects; j++) {
		const struct subject *sub = &lab->subjects[j];
		double acc[MAX_ROUNDS], ratio[MAX_ROUNDS];
		unsigned int n = 0, nr = 0, failed = 0;
		const char *verdict;

		for (unsigned int i = 0; i < lab->nruns; i++) {
			const struct run *rn = &lab->runs[i], *k;

			if (rn->sc != sc || rn->sub != sub)
				continue;
			if (rn->failed) {
				failed++;
				continue;
			}
			acc[n++] = lab_rate(rn, rn->r.accesses);
			k = kernel_run_of_round(lab, sc, rn->round);
			if (k && k != rn && !sub->delay_us && lab_rate(k, k->r.accesses) > 0)
				ratio[nr++] =
					lab_rate(rn, rn->r.accesses) / lab_rate(k, k->r.accesses);
		}
		if (!n) {
			if (failed)
				printf("%-15s all %u rounds failed\n", sub->name, failed);
			continue;
		}
		qsort(acc, n, sizeof(acc[0]), cmp_double);
		qsort(ratio, nr, sizeof(ratio[0]), cmp_double);
		fmt(b[0], sizeof(b[0]), "%s", num_str(acc[(n - 1) / 2], b[5], sizeof(b[5])));
		fmt(b[1], sizeof(b[1]), "(%s .. ", num_str(acc[0], b[5], sizeof(b[5])));
		fmt(b[2], sizeof(b[2]), "%s%s)", b[1], num_str(acc[n - 1], b[5], sizeof(b[5])));
		if (nr) {
			fmt(b[3], sizeof(b[3]), "%.2f", ratio[(nr - 1) / 2]);
			fmt(b[4], sizeof(b[4]), "(%.2f .. %.2f)", ratio[0], ratio[nr - 1]);
		} else {
			fmt(b[3], sizeof(b[3]), "-");
			fmt(b[4], sizeof(b[4]), "%s", "");
		}
		if (sub->kernel)
			verdict = "";
		else if (nr < 2)
			verdict = sub->delay_us ? "(emulated store: no like for like)"
						: "too few rounds with the kernel's to say";
		else if (ratio[0] > 1)
			verdict = "faster in every round: beyond the spread";
		else if (ratio[nr - 1] < 1)
			verdict = "slower in every round: beyond the spread";
		else
			verdict = "within the spread";
		printf("%-15s %9s %19s %6s %13s  %s%s\n", sub->name, b[0], b[2], b[3], b[4],
		       verdict, failed ? " (some rounds failed)" : "");
	}
	printf("machine:");
	for (unsigned int r = 0; r < opt->rounds; r++) {
		double foreign = 0, steal = 0;

		for (unsigned int i = 0; i < lab->nruns; i++)
			if (lab->runs[i].sc == sc && lab->runs[i].round == r) {
				foreign += lab->runs[i].foreign_cpu;
				steal += lab->runs[i].steal;
			}
		if (lab->disk_iops[sc][r] >= 0)
			printf("%s round %u: disk %s reads/s,", r ? ";" : "", r + 1,
			       num_str(lab->disk_iops[sc][r], b[0], sizeof(b[0])));
		else
			printf("%s round %u: disk n/a,", r ? ";" : "", r + 1);
		printf(" others %.1f CPU-s, steal %.1f", foreign, steal);
	}
	printf("\n");
}

/*
 * The space lock as the RFC of April 2026 ("mm: reduce mmap_lock contention
 * and improve page fault performance") tabulates the kernel's mmap_lock on
 * an application start: acquisitions, total and average wait, and the waits
 * by duration.  One table for reads, one for writes; faultline's rows only
 * (the kernel has no such counters: tracepoints only).
 */
static void print_lock_waits(const struct lab *lab, enum scen sc, bool write)
{
	char b[10][24];

	printf("\nspace lock, %-6s %7s %8s %8s | %7s %7s %7s %7s %7s %7s %7s\n",
	       write ? "writes" : "reads", "acq", "wait", "avg", "<1us", "1-10us", "10-100u",
	       ".1-1ms", "1-10ms", "10-100m", ">100ms");
	static const struct run *show[MAX_RUNS];
	unsigned int nshow = shown_runs(lab, sc, show);

	for (unsigned int i = 0; i < nshow; i++) {
		const struct run *rn = show[i];
		const struct fl_stats *d = &rn->r.d;
		const uint64_t *h = write ? &d->mmap_write_wait_1us : &d->mmap_read_wait_1us;
		uint64_t n = write ? d->mmap_write_locks : d->mmap_read_locks;
		uint64_t ns = write ? d->mmap_write_wait_ns : d->mmap_read_wait_ns;

		if (rn->sub->kernel || (rn->failed && !rn->contradiction))
			continue;
		printf("%-18s %7s %8s %8s |", rn->sub->name, num_str((double)n, b[0], sizeof(b[0])),
		       ns_str(ns, b[1], sizeof(b[1])), ns_str(n ? ns / n : 0, b[2], sizeof(b[2])));
		for (int j = 0; j < 7; j++)
			printf(" %7s", num_str((double)h[j], b[3], sizeof(b[3])));
		printf("\n");
	}
}

/*
 * The runs of sc, of every round, whose measured window lasted longer than
 * asked (by LATE_WINDOW_S or more).  The window is timed by the child's main
 * thread, which only sleeps in it and never enters faultline (nor touches a
 * page of the run's areas): if it woke that late, the whole process (or the
 * machine) was held up, whatever the subject.  Such a run's rates are over
 * the longer window, and a fault that spans the stall has its length.
 */
#define LATE_WINDOW_S 0.1
static void print_late_windows(const struct lab *lab, enum scen sc)
{
	const struct lab_opts *opt = &lab->opt;

	if (sc == SC_START) /* its secs is the start's length, not a window */
		return;
	for (unsigned int i = 0; i < lab->nruns; i++) {
		const struct run *rn = &lab->runs[i];

		if (rn->sc != sc || rn->failed || rn->r.secs < opt->seconds + LATE_WINDOW_S)
			continue;
		printf("   (%s", rn->sub->name);
		if (opt->rounds > 1)
			printf(", round %u", rn->round + 1);
		printf(": the measured window lasted %.2f s, not %.2f: the timer thread, "
		       "which only sleeps, woke %.2f s late, so the whole process or the "
		       "machine was held up; its rates are over %.2f s)\n",
		       rn->r.secs, opt->seconds, rn->r.secs - opt->seconds, rn->r.secs);
	}
}

void lab_print_scenario(const struct lab *lab, enum scen sc)
{
	static const struct run *show[MAX_RUNS];
	unsigned int nshow;
	const struct lab_opts *opt = &lab->opt;
	const struct run *k = kernel_run(lab, sc);
	char b[12][24], reg[16], bud[16];
	unsigned int i;

	printf("\n== %s: %s\n", scen_defs[sc].name, scen_defs[sc].what);
	for (i = 0; i < lab->nruns; i++)
		if (lab->runs[i].sc == sc)
			break;
	if (i == lab->nruns)
		return;
	if (sc == SC_START) {
		printf("   footprint %s (the pages the start touches), budget %s, %u threads + "
		       "writer: %s\n",
		       size_str(lab->runs[i].region, reg, sizeof(reg)),
		       size_str(lab->runs[i].budget, bud, sizeof(bud)), lab->runs[i].threads,
		       scen_defs[sc].writer);
		lab_start_print(lab);
	} else
		printf("   working set %s, budget %s, %u threads%s%s, %.1f s measured after %.1f "
		       "s\n",
		       size_str(lab->runs[i].r.ws_bytes ? lab->runs[i].r.ws_bytes
							: lab->runs[i].region,
				reg, sizeof(reg)),
		       size_str(lab->runs[i].budget, bud, sizeof(bud)), lab->runs[i].threads,
		       scen_defs[sc].writer ? " + writer: " : "",
		       scen_defs[sc].writer ? scen_defs[sc].writer : "", opt->seconds, opt->warmup);
	printf("\n%-13s %7s %6s %8s %7s %7s %7s %7s | %7s %7s %7s %6s\n", "subject", "acc/s",
	       "x kern", "faults/s", "p50", "p99", "p99.9", "max", "wr p50", "wr p99", "wr max",
	       "wr op/s");
	nshow = shown_runs(lab, sc, show);
	for (i = 0; i < nshow; i++) {
		const struct run *rn = show[i];
		const struct result *r = &rn->r;

		if (rn->failed && !rn->contradiction) {
			printf("%-13s FAILED: %s\n", rn->sub->name, rn->why);
			continue;
		}
		/* The ratio: accesses served per second, like for like (the
		 * same device: not for the emulated rows). */
		if (k && k != rn && !rn->sub->delay_us && lab_rate(k, k->r.accesses) > 0)
			fmt(b[1], sizeof(b[1]), "%.2f",
			    lab_rate(rn, r->accesses) / lab_rate(k, k->r.accesses));
		else
			fmt(b[1], sizeof(b[1]), "%s", k == rn ? "1" : "-");
		printf("%-13s %7s %6s %8s %7s %7s %7s %7s | %7s %7s %7s %6s%s\n", rn->sub->name,
		       num_str(lab_rate(rn, r->accesses), b[0], sizeof(b[0])), b[1],
		       num_str(lab_rate(rn, r->faults), b[2], sizeof(b[2])),
		       ns_str(fault_q(r, 0.5), b[3], sizeof(b[3])),
		       ns_str(fault_q(r, 0.99), b[4], sizeof(b[4])),
		       ns_str(fault_q(r, 0.999), b[5], sizeof(b[5])),
		       ns_str(fault_q(r, 1), b[6], sizeof(b[6])),
		       ns_str(fl_hist_percentile(&r->wr, 0.5), b[7], sizeof(b[7])),
		       ns_str(fl_hist_percentile(&r->wr, 0.99), b[8], sizeof(b[8])),
		       ns_str(r->wr.max, b[9], sizeof(b[9])),
		       num_str(lab_rate(rn, r->writer_ops), b[10], sizeof(b[10])),
		       rn->contradiction ? "  POLICY CONTRADICTION" : "");
	}
	if (k && k->oom_retries)
		printf("   (the kernel's run was OOM-killed by its cgroup %u time%s and run "
		       "again)\n",
		       k->oom_retries, k->oom_retries > 1 ? "s" : "");
	print_late_windows(lab, sc);
	printf("\n%-13s %9s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %7s\n", "subject", "mmap rd/s",
	       "rd wait", "wr/s", "wr wait", "vma ok", "abort", "retry", "miss", "swapin/s",
	       "wasted", "parked");
	for (i = 0; i < nshow; i++) {
		const struct run *rn = show[i];
		const struct result *r = &rn->r;
		const struct fl_stats *d = &r->d;

		if (rn->failed && !rn->contradiction)
			continue;
		if (rn->sub->kernel) {
			char v[4][12];

			for (unsigned int j = 0; j < 4; j++)
				if (r->k_has_vma)
					num_str((double)r->k_vma[j], v[j], sizeof(v[j]));
				else
					fmt(v[j], sizeof(v[j]), "n/a(1)");
			printf("%-13s %9s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %7s\n",
			       rn->sub->name, "n/a(2)", "n/a(2)", "n/a(2)", "n/a(2)", v[0], v[1],
			       v[2], v[3], num_str(lab_rate(rn, r->k_pswpin), b[0], sizeof(b[0])),
			       "n/a(3)", "n/a(3)");
			continue;
		}
		printf("%-13s %9s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %7s\n", rn->sub->name,
		       num_str(lab_rate(rn, d->mmap_read_locks), b[0], sizeof(b[0])),
		       ns_str(d->mmap_read_wait_ns, b[1], sizeof(b[1])),
		       num_str(lab_rate(rn, d->mmap_write_locks), b[2], sizeof(b[2])),
		       ns_str(d->mmap_write_wait_ns, b[3], sizeof(b[3])),
		       num_str((double)d->vma_lock_success, b[4], sizeof(b[4])),
		       num_str((double)d->vma_lock_abort, b[5], sizeof(b[5])),
		       num_str((double)d->vma_lock_retry, b[6], sizeof(b[6])),
		       num_str((double)d->vma_lock_miss, b[7], sizeof(b[7])),
		       num_str(lab_rate(rn, d->swap_ins), b[8], sizeof(b[8])),
		       num_str((double)d->reads_wasted, b[9], sizeof(b[9])),
		       num_str((double)d->parked, b[10], sizeof(b[10])));
	}
	if (sc == SC_EXIT) {
		printf("\n%-13s %9s %9s %9s  (faultline: fl_space_destroy; the kernel: munmap)\n",
		       "teardown", "gone", "returned", "cut");
		for (i = 0; i < nshow; i++) {
			const struct run *rn = show[i];

			if (rn->failed)
				continue;
			printf("%-13s %9s %9s %9u\n", rn->sub->name,
			       ns_str(rn->r.exit_gone_ns, b[1], sizeof(b[1])),
			       ns_str(rn->r.exit_ns, b[0], sizeof(b[0])), rn->r.exit_cut);
		}
	}
	if (sc == SC_FORK) {
		printf("\n%-13s %6s %9s %9s %9s %9s %11s  (fl_fork; the kernel: fork)\n", "fork",
		       "forks", "p50", "p99", "max", "checked", "VMA wr wait");
		for (i = 0; i < nshow; i++) {
			const struct run *rn = show[i];
			const struct result *r = &rn->r;

			if (rn->failed)
				continue;
			printf("%-13s %6" PRIu64 " %9s %9s %9s %9" PRIu64 " %11s\n", rn->sub->name,
			       r->writer_ops,
			       ns_str(fl_hist_percentile(&r->wr, 0.5), b[0], sizeof(b[0])),
			       ns_str(fl_hist_percentile(&r->wr, 0.99), b[1], sizeof(b[1])),
			       ns_str(r->wr.max, b[2], sizeof(b[2])), (uint64_t)r->fork_checked,
			       rn->sub->kernel
				       ? "-"
				       : ns_str(r->d.vma_write_wait_ns, b[3], sizeof(b[3])));
		}
	}
	print_lock_waits(lab, sc, false);
	print_lock_waits(lab, sc, true);
	print_rounds(lab, sc);
}

void lab_print_legend(const struct lab *lab)
{
	const struct lab_opts *opt = &lab->opt;
	printf("\nacc/s: page accesses of the faulting threads per second (each a load or a "
	       "store, hit or\nfault); x kern: that over the kernel's on the same disk. faults/s: "
	       "the accesses that\nfaulted. p50..max: their latency, seen by the faulting thread "
	       "(an access is a fault if\nthe thread took one meanwhile). wr: the writer's calls "
	       "(mmap, munmap, mprotect).\nmmap rd/s, rd wait: space-lock read acquisitions and "
	       "the total time readers (mostly\nfaults) waited for it in the window; wr/s, wr "
	       "wait: the same for writers. vma ok/abort/\nretry/miss: the vma_lock_* counters. "
	       "swapin/s: pages read from the store. wasted: pages\nread and reclaimed before a "
	       "fault used them. parked: faults that waited for I/O.\n"
	       "(1) the kernel counts vma_lock_* only with CONFIG_PER_VMA_LOCK_STATS, off in "
	       "this kernel.\n(2) the kernel has no counter of mmap_lock acquisitions or wait "
	       "time (only tracepoints).\n(3) the kernel counts no wasted reads or waits on "
	       "swap I/O; its swap-ins are pswpin\n    (/proc/vmstat: the whole machine's, "
	       "only the lab's cgroup swapping meanwhile).\n"
	       "space lock, reads/writes: acquisitions in the window, their total and average "
	       "wait, and how\nmany waited how long, in the buckets of the RFC's mmap_lock "
	       "table (an acquisition that\ndid not wait counts under 1 us): faultline's only, "
	       "see (2).\n"
	       "teardown (exit), with the threads' faults in flight: gone, until the last "
	       "thread found the\nregion gone (SIGSEGV: its memory unmapped); returned: until "
	       "fl_space_destroy (faultline)\nor munmap of the areas (the kernel) returned; cut: "
	       "the accesses it cut short.\n"
	       "fork: forks in the window and their latency in the parent (wr: the same); "
	       "checked: pages\nthe children read and found as the parent had them at the "
	       "fork (all the run's forks,\nwarm-up included); VMA wr wait: the time writers "
	       "(the forks, write-locking every\nVMA) waited for faults holding VMA locks.\n");
	if (opt->slow_us)
		printf("*: emulated slow store: faultline's store with %u us added to every I/O "
		       "(FAULTLINE_SWAP_DELAY);\n   no kernel row: this kernel has no "
		       "device-mapper delay target.\n",
		       opt->slow_us);
}

static void json_hist(FILE *f, const char *key, const struct result *r, bool faults)
{
	if (faults)
		fprintf(f,
			"\"%s\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
			",\"max\":%" PRIu64 "}",
			key, fault_q(r, 0.5), fault_q(r, 0.99), fault_q(r, 0.999), fault_q(r, 1));
	else
		fprintf(f, "\"%s\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "}",
			key, fl_hist_percentile(&r->wr, 0.5), fl_hist_percentile(&r->wr, 0.99),
			r->wr.max);
}

/* The seven buckets of a space-lock wait histogram, as an array. */
static void json_wait_hist(FILE *f, const char *key, const uint64_t *h)
{
	fprintf(f, ",\"%s\":[", key);
	for (int j = 0; j < 7; j++)
		fprintf(f, "%s%" PRIu64, j ? "," : "", h[j]);
	fprintf(f, "]");
}

void lab_print_json(const struct lab *lab, FILE *f)
{
	const struct lab_opts *opt = &lab->opt;
	struct utsname u;
	unsigned int i;

	uname(&u);
	fprintf(f,
		"{\"tool\":\"faultline lab\",\"kernel\":\"%s\",\"seed\":%" PRIu64
		",\"seconds\":%g,\"warmup\":%g,\"delivery\":\"%s\",\"rounds\":%u,\"runs\":[",
		u.release, opt->seed, opt->seconds, opt->warmup, fl_delivery_name(opt->delivery),
		opt->rounds);
	for (i = 0; i < lab->nruns; i++) {
		const struct run *rn = &lab->runs[i];
		const struct result *r = &rn->r;
		const struct fl_stats *d = &r->d;
		bool k = rn->sub->kernel;

		fprintf(f,
			"%s\n{\"scenario\":\"%s\",\"subject\":\"%s\",\"kernel\":%s,"
			"\"policy\":%s%s%s,\"emulated_delay_us\":%u,\"region\":%zu,\"budget\":%zu,"
			"\"threads\":%u,\"oom_retries\":%u,\"ok\":%s,\"policy_contradiction\":%s,"
			"\"error\":\"",
			i ? "," : "", scen_defs[rn->sc].name, rn->sub->name, k ? "true" : "false",
			k ? "" : "\"", k ? "null" : fl_policy_name(rn->sub->policy), k ? "" : "\"",
			rn->sub->delay_us, rn->region, rn->budget, rn->threads, rn->oom_retries,
			rn->failed ? "false" : "true", rn->contradiction ? "true" : "false");
		for (const char *c = rn->why; *c; c++)
			if (*c == '"' || *c == '\\')
				fprintf(f, "\\%c", *c);
			else if ((unsigned char)*c >= 32 && (unsigned char)*c < 127)
				fputc(*c, f);
		fprintf(f,
			"\",\"round\":%u,\"foreign_cpu_s\":%.2f,\"steal_s\":%.2f,\"disk_iops\":%.0f"
			",\"secs\":%.3f,\"fill_secs\":%.3f,\"working_set\":%" PRIu64
			",\"accesses\":%" PRIu64 ",\"accesses_per_s\":%.0f,\"faults\":%" PRIu64
			",\"faults_per_s\":%.0f,\"all_faults\":%" PRIu64
			",\"major_faults\":%" PRIu64 ",\"verified_accesses\":%" PRIu64
			",\"pages_checked_at_end\":%" PRIu64 ",",
			rn->round + 1, rn->foreign_cpu, rn->steal,
			lab->disk_iops[rn->sc][rn->round] > 0 ? lab->disk_iops[rn->sc][rn->round]
							      : 0,
			r->secs, r->fill_secs, r->ws_bytes, r->accesses, lab_rate(rn, r->accesses),
			r->faults, lab_rate(rn, r->faults), r->all_faults, r->majors, r->verified,
			r->swept);
		fprintf(f, "\"exit_ns\":%" PRIu64 ",\"exit_gone_ns\":%" PRIu64 ",\"exit_cut\":%u,",
			r->exit_ns, r->exit_gone_ns, r->exit_cut);
		fprintf(f, "\"vmas\":%u,\"fork_checked\":%" PRIu64 ",", r->vmas,
			(uint64_t)r->fork_checked);
		json_hist(f, "fault_ns", r, true);
		fprintf(f, ",\"writer_ops\":%" PRIu64 ",", r->writer_ops);
		json_hist(f, "writer_ns", r, false);
		if (k) {
			fprintf(f, ",\"mmap_read_locks\":null,\"mmap_read_wait_ns\":null,"
				   "\"mmap_write_locks\":null,\"mmap_write_wait_ns\":null,"
				   "\"mmap_read_wait_hist\":null,\"mmap_write_wait_hist\":null");
			if (r->k_has_vma)
				fprintf(f,
					",\"vma_lock_success\":%" PRIu64
					",\"vma_lock_abort\":%" PRIu64
					",\"vma_lock_retry\":%" PRIu64
					",\"vma_lock_miss\":%" PRIu64,
					r->k_vma[0], r->k_vma[1], r->k_vma[2], r->k_vma[3]);
			else
				fprintf(f, ",\"vma_lock_success\":null,\"vma_lock_abort\":null,"
					   "\"vma_lock_retry\":null,\"vma_lock_miss\":null");
			fprintf(f,
				",\"swap_ins\":%" PRIu64 ",\"swap_outs\":%" PRIu64
				",\"reads_wasted\":null,\"parked\":null}",
				r->k_pswpin, r->k_pswpout);
		} else {
			json_wait_hist(f, "mmap_read_wait_hist", &d->mmap_read_wait_1us);
			json_wait_hist(f, "mmap_write_wait_hist", &d->mmap_write_wait_1us);
			fprintf(f,
				",\"mmap_read_locks\":%" PRIu64 ",\"mmap_read_wait_ns\":%" PRIu64
				",\"mmap_write_locks\":%" PRIu64 ",\"mmap_write_wait_ns\":%" PRIu64
				",\"vma_lock_success\":%" PRIu64 ",\"vma_lock_abort\":%" PRIu64
				",\"vma_lock_retry\":%" PRIu64 ",\"vma_lock_miss\":%" PRIu64
				",\"swap_ins\":%" PRIu64 ",\"swap_outs\":%" PRIu64
				",\"reads_wasted\":%" PRIu64 ",\"parked\":%" PRIu64
				",\"parked_ns\":%" PRIu64 "}",
				d->mmap_read_locks, d->mmap_read_wait_ns, d->mmap_write_locks,
				d->mmap_write_wait_ns, d->vma_lock_success, d->vma_lock_abort,
				d->vma_lock_retry, d->vma_lock_miss, d->swap_ins, d->swap_outs,
				d->reads_wasted, d->parked, d->parked_ns);
		}
	}
	fprintf(f, "\n]}\n");
}
