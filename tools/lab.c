// SPDX-License-Identifier: MIT
/*
 * faultline lab: the scenarios of the mailing-list thread in ../shared/seed
 * under each of the seven fault-wait policies, with the real kernel's swap
 * side by side in the same run.  See README.md, "What the lab shows".
 *
 * Every subject (the kernel, or faultline with one policy) runs in a forked
 * child: the kernel's in a cgroup v1 memory cgroup limited to the budget with
 * a swap file the lab enables for the run, faultline's in a space with
 * mem_limit = the budget and its default store (O_DIRECT, io_uring).  The
 * child maps the scenario's areas, fills them page by page (so that most of
 * them are swapped out), runs its threads for a warm-up and then a measured
 * window, and leaves its figures in shared memory.  Emulated slow-device rows
 * run faultline with the store wrapper that delays every I/O
 * (FAULTLINE_SWAP_DELAY); the kernel has no such rows (this machine has no
 * device-mapper delay target).
 *
 * This file runs the lab: the scenarios, the subjects, a forked child per
 * run (lab_child.c) watched for progress, a timeout and the kernel's OOM
 * kills, and the command line.  lab.h says where the rest is.
 */
#define _GNU_SOURCE
#define TOOL "lab"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kside.h"
#include "lab.h"
#include "toolbox.h"

/* ---- Scenarios ---- */

const struct scen_def scen_defs[NR_SCEN] = {
	[SC_PARALLEL] = {"parallel", "T threads read random pages of a swapped region", 256 * MiB,
			 64 * MiB, 4, NULL},
	[SC_ELSEWHERE] =
		{"elsewhere",
		 "the same, and one thread mapping and unmapping 64 KiB elsewhere in a loop "
		 "(touching nothing)",
		 256 * MiB, 64 * MiB, 4, "mmap+munmap 64 KiB"},
	[SC_MPROTECT] = {"mprotect-one-page",
			 "one 64 GiB MAP_NORESERVE VMA, T threads swapping pages in, one thread "
			 "toggling the protection of the page in the middle every millisecond",
			 256 * MiB, 64 * MiB, 4, "mprotect 1 page"},
	[SC_THUNDERING] = {"thundering",
			   "many threads and a very tight budget: pages reclaimed between their "
			   "read and the retry that would use them",
			   64 * MiB, 8 * MiB, 32, NULL},
	[SC_PROCESS] =
		{"process",
		 "28 VMAs of program-like sizes and kinds (text, data, heap, arenas, stacks, "
		 "guards, buffers), mixed reads, writes and first touches; every ms an "
		 "mmap/munmap or an mprotect",
		 224 * MiB, 64 * MiB, 4, "mmap/munmap/mprotect"},
	[SC_EXIT] = {"exit",
		     "as parallel; then the region is torn down with the threads' faults in "
		     "flight (faultline: fl_space_destroy; the kernel: munmap), as when a process "
		     "is killed: how long until its memory is freed",
		     256 * MiB, 64 * MiB, 4, NULL},
	[SC_FORK] = {"fork",
		     "1024 VMAs (read-only and read-write, guard pages), T threads faulting on "
		     "them through a slow store, and a fork every 100 ms (the kernel's dup_mmap "
		     "write-locks every VMA; faultline's fl_fork too): the fork's latency, the "
		     "faults' around it, and the child's view of memory checked",
		     64 * MiB, 16 * MiB, 4, "fork every 100 ms"},
	[SC_START] = {"start",
		      "a real program's start, recorded (faultline run --record; default: "
		      "python3 importing modules, tools/traces/) and replayed with a cold page "
		      "cache: one thread makes its mm calls, T threads its first touches",
		      0, 0, 4, "the program's mm calls"},
};

static const struct lab_opts lab_defaults = {
	.seconds = 3,
	.warmup = 0.5,
	.seed = 1,
	.policies = {FL_POLICY_MMAP, FL_POLICY_BAIL, FL_POLICY_DROP, FL_POLICY_DROP_VMA,
		     FL_POLICY_HOLD, FL_POLICY_V2, FL_POLICY_V2_ANON},
	.npolicies = 7,
	.delivery = FL_DELIVERY_SIGBUS,
	.slow_us = 1000,
	.kernel = true,
	.plots = true,
	.out = "lab-results",
	.writer_pause_us = 0,
	.timeout = 600,
	.rounds = 1,
};

/*
 * Test-only faults for tests/test_lab.c (FL_LAB_INJECT=mismatch or
 * contradiction): the lab must then fail; latewake: the window's timer
 * wakes late, which the tables must say.
 */
bool lab_inject(const char *what)
{
	const char *e = getenv("FL_LAB_INJECT");

	return e && !strcmp(e, what);
}

/* ======================================================================
 * Subjects and runs
 * ====================================================================== */

static size_t scen_region(const struct lab_opts *opt, enum scen sc)
{
	if (sc == SC_START) /* the trace's: the pages it touches */
		return lab_start_footprint();
	if (opt->region)
		return opt->region;
	if (opt->quick && sc == SC_THUNDERING)
		return scen_defs[sc].region / 2; /* 4x its (quick) budget: still tight */
	return opt->quick ? scen_defs[sc].region / 8 : scen_defs[sc].region;
}

static size_t scen_budget(const struct lab_opts *opt, enum scen sc)
{
	if (opt->budget)
		return opt->budget;
	if (sc == SC_START) /* half the pages the start touches */
		return (lab_start_footprint() / 2) & ~(PAGE - 1);
	if (!opt->quick)
		return scen_defs[sc].budget;
	/* The kernel's child needs a few MiB of its own (page tables, stacks). */
	return scen_defs[sc].budget / 8 > 8 * MiB ? scen_defs[sc].budget / 8 : 8 * MiB;
}

static unsigned int scen_threads(const struct lab_opts *opt, enum scen sc)
{
	if (opt->threads)
		return opt->threads;
	if (opt->quick && scen_defs[sc].threads > 8)
		return 8;
	return scen_defs[sc].threads;
}

static void build_subjects(struct lab *lab)
{
	const struct lab_opts *opt = &lab->opt;
	unsigned int i;

	if (opt->kernel) {
		struct subject *s = &lab->subjects[lab->nsubjects++];

		fmt(s->name, sizeof(s->name), "kernel");
		s->kernel = true;
	}
	for (i = 0; i < opt->npolicies; i++) {
		struct subject *s = &lab->subjects[lab->nsubjects++];

		s->policy = opt->policies[i];
		fmt(s->name, sizeof(s->name), "%s", fl_policy_name(s->policy));
	}
	if (opt->slow_us)
		for (i = 0; i < opt->npolicies; i++) {
			struct subject *s = &lab->subjects[lab->nsubjects++];

			s->policy = opt->policies[i];
			s->delay_us = opt->slow_us;
			if (opt->slow_us % 1000)
				fmt(s->name, sizeof(s->name), "%s @%uus*",
				    fl_policy_name(s->policy), opt->slow_us);
			else
				fmt(s->name, sizeof(s->name), "%s @%ums*",
				    fl_policy_name(s->policy), opt->slow_us / 1000);
		}
}

static const char *phase_name(int p)
{
	static const char *const ph[] = {"starting", "filling", "warming up", "measuring", "done"};

	return ph[p < 0 || p > 4 ? 0 : p];
}

static void progress(const struct lab *lab, const struct run *rn, unsigned int idx,
		     unsigned int total, double el)
{
	char line[200];

	fmt(line, sizeof(line), "[%u/%u] %s | %-12s %-10s %5.1f s  %8.0f accesses", idx, total,
	    scen_defs[rn->sc].name, rn->sub->name, phase_name(atomic_load(&lab->shared->phase)), el,
	    (double)atomic_load(&lab->shared->progress));
	if (lab->tty)
		fprintf(stderr, "\r%-100s", line);
}

static void run_one(struct lab *lab, enum scen sc, const struct subject *sub, unsigned int idx,
		    unsigned int total, unsigned int attempt)
{
	const struct lab_opts *opt = &lab->opt;
	struct run *rn = &lab->runs[lab->nruns++];
	uint64_t t0 = now_ns(), ooms = 0;
	unsigned int limit;
	siginfo_t si;
	int status = 0;
	pid_t pid;

	rn->sc = sc;
	rn->sub = sub;
	rn->region = scen_region(opt, sc);
	rn->budget = scen_budget(opt, sc);
	rn->threads = scen_threads(opt, sc);
	memset(lab->shared, 0, sizeof(*lab->shared));
	if (sub->kernel) {
		int err = ks_set_budget(rn->budget);

		if (!err)
			err = ks_swapon();
		if (err) {
			rn->failed = true;
			fmt(rn->why, sizeof(rn->why), "kernel side: %s", strerror(-err));
			return;
		}
		ooms = ks_oom_kills();
	}
	preheat(rn->budget);
	if (sc == SC_START)
		lab_start_before_run(); /* a cold start: the page cache dropped */
	if (!lab->tty && !opt->json)
		fprintf(stderr, "[%u/%u] %s | %s\n", idx, total, scen_defs[sc].name, sub->name);
	pid = ks_fork();
	if (pid == 0)
		lab_child_main(opt, rn, lab->shared);
	if (pid < 0) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "fork: %s", strerror(errno));
		goto out;
	}
	/* Poll: progress, and our own timeout; reap with ks_wait(). */
	limit = opt->timeout + (unsigned int)(opt->seconds + opt->warmup);
	for (;;) {
		double el = (double)(now_ns() - t0) / 1e9;

		memset(&si, 0, sizeof(si));
		if (!waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == pid)
			break;
		progress(lab, rn, idx, total, el);
		if (el > limit) {
			kill(pid, SIGKILL);
			rn->failed = true;
			fmt(rn->why, sizeof(rn->why), "timed out after %u s (a hang?)", limit);
			break;
		}
		sleep_ns(200000000);
	}
	ks_wait(pid, &status, 0, NULL);
	if (lab->tty)
		fprintf(stderr, "\r%-100s\r", "");
	rn->r = *lab->shared;
	if (lab->shared->mismatch) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "%s", lab->shared->error);
	} else if (rn->failed) {
	} else if (WIFSIGNALED(status) && sub->kernel && ks_oom_kills() > ooms && attempt < 2) {
		/*
		 * The kernel's cgroup v1 sometimes OOM-kills this load instead
		 * of reclaiming (all of it active anon, much of it swap cache):
		 * say so, and run it again.
		 */
		ks_swapoff();
		fprintf(stderr, "lab: %s | kernel: OOM-killed while %s; running it again\n",
			scen_defs[sc].name, phase_name(atomic_load(&lab->shared->phase)));
		memset(rn, 0, sizeof(*rn));
		lab->nruns--;
		run_one(lab, sc, sub, idx, total, attempt + 1);
		if (lab->runs[lab->nruns - 1].oom_retries < attempt + 1)
			lab->runs[lab->nruns - 1].oom_retries = attempt + 1;
		return;
	} else if (WIFSIGNALED(status)) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "the child was killed by %s while %s%s",
		    strsignal(WTERMSIG(status)), phase_name(atomic_load(&lab->shared->phase)),
		    sub->kernel && ks_oom_kills() > ooms
			    ? " (the cgroup's OOM killer: the budget is too small for the program)"
			    : "");
	} else if (WEXITSTATUS(status)) {
		rn->failed = true;
		fmt(rn->why, sizeof(rn->why), "failed (status %d): %s", WEXITSTATUS(status),
		    lab->shared->error[0] ? lab->shared->error : "?");
	} else if (lab_inject("contradiction") && !sub->kernel &&
		   (lab_contradict(&rn->r.d, sub->policy), !lab_check_policy(rn))) {
		rn->failed = rn->contradiction = true; /* test-only: the checker must catch it */
	} else if (!lab_check_policy(rn)) {
		rn->failed = rn->contradiction = true;
	}
out:
	if (sub->kernel)
		ks_swapoff();
	if (rn->failed)
		fprintf(stderr, "lab: %s | %s: %s%s\n", scen_defs[sc].name, sub->name,
			rn->contradiction ? "POLICY CONTRADICTION: " : "", rn->why);
}

/* ======================================================================
 * Command line
 * ====================================================================== */

static void usage(FILE *out)
{
	fprintf(out, "usage: faultline lab [SCENARIO...] [OPTIONS]\n"
		     "\n"
		     "Runs each scenario under every policy and the real kernel side by side\n"
		     "(root: a swap file and a memory cgroup, removed afterwards).  Scenarios\n"
		     "(default: all):\n");
	for (unsigned int s = 0; s < NR_SCEN; s++)
		fprintf(out, "  %-18s %s\n", scen_defs[s].name, scen_defs[s].what);
	fprintf(out,
		"\noptions (sizes take K, M, G):\n"
		"  -r, --region SIZE     working set (default per scenario)\n"
		"  -b, --budget SIZE     memory budget (default per scenario)\n"
		"  -t, --threads N       faulting threads (default per scenario)\n"
		"  -s, --seconds S       measured window per run (default 3)\n"
		"  -w, --warmup S        unmeasured time before it (default 0.5)\n"
		"      --seed N          seed of the access pattern and contents (default 1)\n"
		"  -p, --policies LIST   comma-separated subset of mmap,bail,drop,drop-vma,hold,\n"
		"                        v2,v2-anon\n"
		"  -d, --delivery D      sigbus (default: the faulting thread waits, as in the\n"
		"                        kernel) or thread (handler threads park the faults)\n"
		"      --slow US         emulated slow store rows: US microseconds added to each\n"
		"                        I/O (default 1000; 0: none)\n"
		"      --no-kernel       no kernel rows (no root needed)\n"
		"      --writer-pause US elsewhere: pause between mmap/munmap pairs (default 0:\n"
		"                        a tight loop, as in the benchmark of d065bd810b6d)\n"
		"  -o, --out DIR         plots and their data (default lab-results)\n"
		"      --no-plots        no gnuplot\n"
		"  -j, --json            JSON on stdout instead of the tables\n"
		"      --quick           small sizes, for a smoke test\n"
		"      --dir DIR         where the kernel's swap file goes (default $TMPDIR or\n"
		"                        /tmp, the file system of faultline's store)\n"
		"      --timeout S       per run (default 600)\n"
		"      --rounds N        run every subject N times per scenario, in alternating\n"
		"                        order (default 1): tables show each subject's median\n"
		"                        round, and a summary its spread over the rounds\n"
		"      --trace FILE      start: the recorded start to replay (faultline run\n"
		"                        --record; default tools/traces/python3-start.trace)\n"
		"  -v, --verbose         commands' output\n"
		"\nExit status: 0; 1 if a run failed (data mismatch, policy contradiction,\n"
		"error); 2 for bad usage.\n");
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024;
		end++;
		break;
	case 'm':
	case 'M':
		v *= 1024 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		v *= 1024.0 * 1024 * 1024;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' || *end == 'B')
		end += strspn(end, "iB");
	if (*end || v < PAGE || v > 1e15) {
		fprintf(stderr, "lab: bad size '%s'\n", s);
		exit(2);
	}
	return (size_t)v & ~(PAGE - 1);
}

static void set_delivery(struct lab_opts *opt, const char *arg)
{
	opt->delivery = fl_delivery_by_name(arg);
	if (opt->delivery < 0) {
		fprintf(stderr, "lab: delivery is thread or sigbus\n");
		exit(2);
	}
}

static void set_quick(struct lab_opts *opt)
{
	opt->quick = true;
	opt->seconds = 0.5;
	opt->warmup = 0.2;
}

enum {
	O_SEED = 256,
	O_SLOW,
	O_NOKERNEL,
	O_NOPLOTS,
	O_QUICK,
	O_DIR,
	O_TIMEOUT,
	O_PAUSE,
	O_ROUNDS,
	O_TRACE
};

/* The options (parse_options()): name, key, argument, what it does. */
#define LAB_OPTIONS(X)                                                                            \
	X("region", 'r', required_argument, opt->region = parse_size(optarg))                     \
	X("budget", 'b', required_argument, opt->budget = parse_size(optarg))                     \
	X("threads", 't', required_argument,                                                      \
	  opt->threads = (unsigned int)parse_real(optarg, "threads", 1, MAX_THREADS))             \
	X("seconds", 's', required_argument,                                                      \
	  opt->seconds = parse_real(optarg, "seconds", 0.1, 3600))                                \
	X("warmup", 'w', required_argument, opt->warmup = parse_real(optarg, "warm-up", 0, 3600)) \
	X("seed", O_SEED, required_argument,                                                      \
	  opt->seed = (uint64_t)parse_real(optarg, "seed", 0, 1e18))                              \
	X("policies", 'p', required_argument,                                                     \
	  opt->npolicies = parse_list(optarg, "policies", opt->policies, FL_POLICY_NR,            \
				      fl_policy_by_name, false))                                  \
	X("delivery", 'd', required_argument, set_delivery(opt, optarg))                          \
	X("slow", O_SLOW, required_argument,                                                      \
	  opt->slow_us = (unsigned int)parse_real(optarg, "delay (us)", 0, 1e7))                  \
	X("no-kernel", O_NOKERNEL, no_argument, opt->kernel = false)                              \
	X("out", 'o', required_argument, fmt(opt->out, sizeof(opt->out), "%s", optarg))           \
	X("no-plots", O_NOPLOTS, no_argument, opt->plots = false)                                 \
	X("json", 'j', no_argument, opt->json = true)                                             \
	X("quick", O_QUICK, no_argument, set_quick(opt))                                          \
	X("dir", O_DIR, required_argument, fmt(opt->dir, sizeof(opt->dir), "%s", optarg))         \
	X("timeout", O_TIMEOUT, required_argument,                                                \
	  opt->timeout = (unsigned int)parse_real(optarg, "timeout", 1, 86400))                   \
	X("writer-pause", O_PAUSE, required_argument,                                             \
	  opt->writer_pause_us = (unsigned int)parse_real(optarg, "pause", 0, 1e7))               \
	X("rounds", O_ROUNDS, required_argument,                                                  \
	  opt->rounds = (unsigned int)parse_real(optarg, "rounds", 1, MAX_ROUNDS))                \
	X("trace", O_TRACE, required_argument, fmt(opt->trace, sizeof(opt->trace), "%s", optarg)) \
	X("verbose", 'v', no_argument, opt->verbose = true)

static void parse_args(struct lab_opts *opt, int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");

	fmt(opt->dir, sizeof(opt->dir), "%s", tmp && *tmp ? tmp : "/tmp");
	optind = 1;
	parse_options(LAB_OPTIONS, argc, argv, usage);
	for (; optind < argc; optind++) {
		unsigned int s;

		if (!strcmp(argv[optind], "all")) {
			opt->scen_mask = (1u << NR_SCEN) - 1;
			continue;
		}
		for (s = 0; s < NR_SCEN; s++)
			if (!strcmp(argv[optind], scen_defs[s].name))
				break;
		if (s == NR_SCEN) {
			fprintf(stderr, "lab: unknown scenario '%s'\n", argv[optind]);
			usage(stderr);
			exit(2);
		}
		opt->scen_mask |= 1u << s;
	}
	if (!opt->scen_mask)
		opt->scen_mask = (1u << NR_SCEN) - 1;
}

/*
 * The start scenario's trace: --trace, or the one checked in, beside the
 * program (the build tree: ../tools/traces) or installed
 * (../share/faultline).  Then read and planned, once for every run.
 */
/* Whether every file the trace at path maps (a line's last word, when it
 * is a path) is on this machine. */
static bool trace_fits(const char *path)
{
	char line[PATH_MAX + 256];
	bool ok = true;
	FILE *in = fopen(path, "re");

	if (!in)
		return false;
	while (ok && fgets(line, sizeof(line), in)) {
		char *w;

		line[strcspn(line, "\n")] = 0;
		w = strrchr(line, ' ');
		if (line[0] != '#' && w && w[1] == '/' && access(w + 1, R_OK))
			ok = false;
	}
	fclose(in);
	return ok;
}

/*
 * The checked-in trace names the files of the machine it was recorded on
 * (Debian's python3 and its libraries, by version): on a machine where one
 * is missing, the same start is recorded here instead, with faultline run
 * --record, into dir.  Return: 0 with path set, or -1.
 */
static int record_default(char *path, size_t len, const char *dir)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pid_t pid;
	int st;

	if (n <= 0)
		return -1;
	exe[n] = 0;
	fmt(path, len, "%s/python3-start-%d.trace", dir, (int)getpid());
	fprintf(stderr,
		"lab: start: the checked-in trace maps files this machine does not have: "
		"recording the same start here (%s)\n",
		path);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(exe, exe, "run", "--files", "--record", path, "--", "python3", "-c",
		      "import json, sqlite3, decimal, ssl, asyncio, email.parser, "
		      "xml.etree.ElementTree, unittest, http.client, logging, argparse",
		      (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return 0;
}

static int load_trace(struct lab_opts *opt)
{
	static const char *const rel[] = {"../tools/traces/python3-start.trace",
					  "../share/faultline/python3-start.trace"};
	char exe[PATH_MAX], err[PATH_MAX + 256];
	ssize_t n;

	if (!opt->trace[0]) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		if (strrchr(exe, '/'))
			*strrchr(exe, '/') = 0;
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			fmt(opt->trace, sizeof(opt->trace), "%s/%s", exe, rel[i]);
			if (!access(opt->trace, R_OK))
				break;
		}
		if (!trace_fits(opt->trace) && record_default(opt->trace, sizeof(opt->trace),
							      opt->dir[0] ? opt->dir : "/tmp")) {
			fprintf(stderr, "lab: start: recording python3's start failed\n");
			return -1;
		}
	}
	if (lab_start_load(opt, err, sizeof(err))) {
		fprintf(stderr, "lab: start: %s\n", err);
		return -1;
	}
	return 0;
}

static int run_lab(struct lab *lab, int argc, char **argv)
{
	unsigned int s, i, idx = 0, total, failed = 0;
	const struct lab_opts *opt = &lab->opt;
	uint64_t t0;

	parse_args(&lab->opt, argc, argv);
	if ((size_t)sysconf(_SC_PAGESIZE) != PAGE) {
		fprintf(stderr, "lab: needs 4 KiB pages\n");
		return 2;
	}
	lab->tty = isatty(2) && !opt->verbose;
	if ((opt->scen_mask & (1u << SC_START)) && load_trace(&lab->opt))
		return 2;
	ks_init("lab", opt->verbose);
	lab->shared = mmap(NULL, sizeof(*lab->shared), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lab->shared == MAP_FAILED) {
		perror("lab: mmap");
		return 1;
	}
	if (opt->kernel) {
		size_t most = 0, b;

		for (s = 0; s < NR_SCEN; s++)
			if (opt->scen_mask & (1u << s)) {
				b = scen_region(opt, s) * 2 + 256 * MiB;
				most = b > most ? b : most;
			}
		if (ks_kernel_prepare(opt->dir, most, scen_budget(opt, SC_PARALLEL), -1)) {
			fprintf(stderr, "lab: no kernel rows: %s (--no-kernel to skip them)\n",
				ks_kern.error);
			lab->opt.kernel = false;
		}
	}
	build_subjects(lab);
	for (s = 0, total = 0; s < NR_SCEN; s++)
		if (opt->scen_mask & (1u << s))
			total += lab->nsubjects * opt->rounds;
	if (total > MAX_RUNS) {
		fprintf(stderr, "lab: %u runs: at most %u (fewer rounds, scenarios or policies)\n",
			total, MAX_RUNS);
		return 2;
	}
	if (!opt->json) {
		struct utsname u;

		uname(&u);
		printf("faultline lab: Linux %s, %ld CPUs, delivery %s, seed %" PRIu64
		       ", %u round%s (alternating order; medians)\n",
		       u.release, sysconf(_SC_NPROCESSORS_ONLN), fl_delivery_name(opt->delivery),
		       opt->seed, opt->rounds, opt->rounds > 1 ? "s" : "");
		if (opt->kernel)
			printf("kernel: swap file %s (%zu MiB), cgroup v1 %s, swappiness %ld, "
			       "page-cluster %ld, zswap %s\n",
			       ks_kern.swap_path, ks_kern.swapfile >> 20, ks_kern.cg_path,
			       ks_kern.cg_swappiness, ks_kern.page_cluster, ks_kern.zswap);
		if (ks_kern.other_swaps[0])
			printf("WARNING: other swap was on: %s\n", ks_kern.other_swaps);
		for (char **e = environ; *e; e++)
			if (!strncmp(*e, "FAULTLINE_", 10))
				printf("environment: %s (applies to every faultline row)\n", *e);
		fflush(stdout);
	}
	t0 = now_ns();
	for (s = 0; s < NR_SCEN; s++) {
		if (!(opt->scen_mask & (1u << s)))
			continue;
		for (unsigned int r = 0; r < opt->rounds; r++) {
			char err[200];

			/* The machine's state: the disk, before each round. */
			lab->disk_iops[s][r] =
				lab_probe_disk(opt->dir, opt->quick ? 32 * MiB : 256 * MiB,
					       opt->quick ? 0.2 : 0.5, err, sizeof(err));
			if (lab->disk_iops[s][r] < 0)
				fprintf(stderr, "lab: no disk probe: %s\n", err);
			/* Every other round backwards: no subject always follows
			 * the same one, and a slow moment falls on all alike. */
			for (i = 0; i < lab->nsubjects; i++) {
				unsigned int j = r % 2 ? lab->nsubjects - 1 - i : i;
				struct cpu_times c0, c1;
				struct run *rn;

				read_cpu_times(&c0, true);
				run_one(lab, s, &lab->subjects[j], ++idx, total, 0);
				read_cpu_times(&c1, true);
				rn = &lab->runs[lab->nruns - 1];
				rn->round = r;
				rn->foreign_cpu = (c1.busy - c0.busy) - (c1.self - c0.self);
				if (rn->foreign_cpu < 0)
					rn->foreign_cpu = 0;
				rn->steal = c1.steal - c0.steal;
			}
		}
		if (!opt->json) {
			lab_print_scenario(lab, s);
			fflush(stdout);
		}
	}
	ks_cleanup(); /* the machine is back as it was before anything is printed */
	lab_probe_close();
	if (opt->json)
		lab_print_json(lab, stdout);
	else
		lab_print_legend(lab);
	if (opt->plots)
		lab_make_plots(lab);
	for (i = 0; i < lab->nruns; i++)
		failed += lab->runs[i].failed;
	if (!opt->json)
		printf("\n%u runs in %.0f s, %u failed%s\n", lab->nruns,
		       (double)(now_ns() - t0) / 1e9, failed,
		       failed ? ": see above (data mismatch, policy contradiction or error)" : "");
	return failed ? 1 : 0;
}

int lab_main(int argc, char **argv)
{
	/* Large (every run's histograms): on the heap. */
	struct lab *lab = calloc(1, sizeof(*lab));
	int ret;

	if (!lab) {
		perror("lab");
		return 1;
	}
	lab->opt = lab_defaults;
	lab->shared = MAP_FAILED;
	ret = run_lab(lab, argc, argv);
	if (lab->shared != MAP_FAILED)
		munmap(lab->shared, sizeof(*lab->shared));
	free(lab);
	return ret;
}
