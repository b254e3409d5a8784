// SPDX-License-Identifier: MIT
/*
 * faultline lab, end to end (the binary of the same build):
 *   - a quick run of two scenarios under two policies passes, its tables
 *     carry the rows, and --json is one JSON object with every run;
 *   - a page changed behind the verifier's back (FL_LAB_INJECT=mismatch)
 *     fails the run and the lab, saying DATA MISMATCH;
 *   - a measured window that lasted longer than asked (the child's timer
 *     woke late, FL_LAB_INJECT=latewake, as when the machine stalls) is
 *     named under the table, with its length: its rates are over it;
 *   - counters that contradict the policy (FL_LAB_INJECT=contradiction)
 *     fail loudly, saying POLICY CONTRADICTION, under each policy (two of
 *     them in a sanitizer build: CONTRA_N);
 *   - start, the checked-in trace of a program's start, replays under
 *     every policy with every page touched checked, and fails on an
 *     injected mismatch and on an injected contradiction of each policy;
 *   - as root with the cgroup v1 memory controller: Ctrl-C (SIGINT) in the
 *     middle of the kernel's run leaves no swap file enabled or on disk and
 *     no cgroup.  Without either, the rest runs and the test skips, naming
 *     which is missing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util.h"

/* As tools/lab.h: the fork scenario's children are not checked under TSan. */
#if defined(__SANITIZE_THREAD__)
#define LAB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LAB_TSAN 1
#endif
#endif

/*
 * The policies of the runs that check the lab's contradiction checks, with
 * their number.  In a sanitizer build, two of them each: the checks are
 * the lab's counters against each policy's definition, plain comparisons,
 * and the runs of every policy that check the data still run there.
 */
#define ALL_POLICIES "mmap,bail,drop,drop-vma,hold,v2,v2-anon"
#if T_SANITIZED
#define CONTRA_START "hold,v2"
#define CONTRA_PARALLEL "drop,drop-vma"
#define CONTRA_N 2
#else
#define CONTRA_START ALL_POLICIES
#define CONTRA_PARALLEL ALL_POLICIES
#define CONTRA_N 7
#endif

static char lab[PATH_MAX];

/* Run the lab with args (and FL_LAB_INJECT=inject), its output into buf. */
static int run_lab(const char *inject, const char *const *args, char *buf, size_t len,
		   pid_t *pid_out, int sig_when_swapping)
{
	int fds[2];
	pid_t pid;

	CHECK(pipe(fds) == 0, "pipe");
	pid = t_fork();
	if (pid == 0) {
		const char *argv[32] = {lab, "lab"};
		unsigned int i;

		for (i = 0; args[i] && i < 29; i++)
			argv[2 + i] = args[i];
		argv[2 + i] = NULL;
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		if (inject)
			setenv("FL_LAB_INJECT", inject, 1);
		else
			unsetenv("FL_LAB_INJECT");
		execv(lab, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	if (pid_out)
		*pid_out = pid;
	if (sig_when_swapping) {
		/* Wait until the kernel's run has its swap file on, then interrupt. */
		char path[64], swaps[4096];
		int tries;

		snprintf(path, sizeof(path), "faultline-lab-swap-%d", (int)pid);
		for (tries = 0; tries < 600; tries++) {
			int fd = open("/proc/swaps", O_RDONLY);
			ssize_t m = fd >= 0 ? read(fd, swaps, sizeof(swaps) - 1) : -1;

			if (fd >= 0)
				close(fd);
			swaps[m > 0 ? m : 0] = 0;
			if (strstr(swaps, path))
				break;
			usleep(50000);
		}
		CHECK(tries < 600, "the kernel's run never enabled its swap file");
		usleep(300000);
		kill(pid, sig_when_swapping);
	}
	return t_collect(fds[0], pid, buf, len);
}

static char out[1 << 20];

/* The first number after "key": in a JSON text (0 if absent or null). */
static double json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtod(p + strlen(pat), NULL) : 0;
}

int main(int argc, char **argv)
{
	(void)t_seed_init(argc, argv, "test_lab");
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct stat st;
	int rc;

	CHECK(n > 0, "readlink /proc/self/exe");
	self[n] = 0;
	snprintf(lab, sizeof(lab), "%s/../faultline", dirname(self));
	if (stat(lab, &st)) {
		printf("SKIP: no faultline binary at %s\n", lab);
		return T_EXIT_SKIP;
	}

	/* A quick run: passes, with a row per policy. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow",
				      "0",	 "-p",		"drop,hold",  "--rounds",
				      "2",	 "parallel",	"process",    NULL};

		rc = run_lab(NULL, args, out, sizeof(out), NULL, 0);
		printf("%s\n", out);
		CHECK(rc == 0, "quick run: exit %d", rc);
		CHECK(strstr(out, "== parallel") && strstr(out, "== process"), "scenario tables");
		CHECK(strstr(out, "\nhold ") && strstr(out, "\ndrop "), "policy rows");
		CHECK(strstr(out, "\nover 2 rounds") && strstr(out, "machine: round 1: disk ") &&
			      strstr(out, "; round 2: disk "),
		      "the rounds' summary and the machine's state");
		CHECK(strstr(out, "space lock, reads") && strstr(out, "space lock, writes"),
		      "the space-lock wait tables");
		CHECK(strstr(out, "\n8 runs in ") && strstr(out, " 0 failed"), "summary line");
	}
	/* Rounds in JSON: each run says its round and the machine's state, and
	 * each space-lock histogram sums to its acquisitions. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow",
				      "0",	 "-p",		"drop",	      "--rounds",
				      "3",	 "-j",		"elsewhere",  NULL};
		int seen[4] = {0};
		char *p;

		rc = run_lab(NULL, args, out, sizeof(out), NULL, 0);
		CHECK(rc == 0, "rounds run: exit %d\n%s", rc, out);
		p = strstr(out, "{\"tool\":\"faultline lab\"");
		CHECK(p && strstr(p, "\"rounds\":3,"), "no JSON object with 3 rounds:\n%s", out);
		for (char *q = p; (q = strstr(q, "\"scenario\":")); q++) {
			int r = (int)json_num(q, "round");
			uint64_t sum[2] = {0, 0};
			const char *key[2] = {"\"mmap_read_wait_hist\":[",
					      "\"mmap_write_wait_hist\":["};

			CHECK(r >= 1 && r <= 3, "round %d", r);
			seen[r]++;
			CHECK(json_num(q, "disk_iops") > 0, "no disk probe: %s", q);
			for (int w = 0; w < 2; w++) {
				char *h = strstr(q, key[w]), *e;

				CHECK(h, "no %s", key[w]);
				h += strlen(key[w]);
				for (int b = 0; b < 7; b++, h = e + 1)
					sum[w] += strtoull(h, &e, 10);
			}
			CHECK(sum[0] == (uint64_t)json_num(q, "mmap_read_locks") &&
				      sum[1] == (uint64_t)json_num(q, "mmap_write_locks"),
			      "histograms sum to %llu/%llu: %s", (unsigned long long)sum[0],
			      (unsigned long long)sum[1], q);
		}
		CHECK(seen[1] == 1 && seen[2] == 1 && seen[3] == 1, "rounds %d %d %d", seen[1],
		      seen[2], seen[3]);
	}
	/* A window that overran (its timer woke late): said under the table,
	 * round by round, with its length. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow",	  "0", "-p",
				      "drop",	 "--rounds",	"2",	      "parallel", NULL};

		rc = run_lab("latewake", args, out, sizeof(out), NULL, 0);
		CHECK(rc == 0, "late-window run: exit %d\n%s", rc, out);
		CHECK(strstr(out, "(drop, round 1: the measured window lasted ") &&
			      strstr(out, "(drop, round 2: the measured window lasted ") &&
			      strstr(out,
				     ", not 0.50: the timer thread, which only sleeps, woke 0."),
		      "no note of the late windows:\n%s", out);
	}
	/* JSON: one object, every run in it. */
	{
		/* 2 s measured: under a sanitizer on a loaded machine the quick
		 * run's 0.5 s has been seen to pass without one access. */
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow",
				      "0",	 "-p",		"mmap",	      "-s",
				      "2",	 "-j",		"parallel",   NULL};
		char *p;
		int runs = 0;

		rc = run_lab(NULL, args, out, sizeof(out), NULL, 0);
		CHECK(rc == 0, "json run: exit %d\n%s", rc, out);
		p = strstr(out, "{\"tool\":\"faultline lab\"");
		CHECK(p, "no JSON object:\n%s", out);
		for (char *q = p; (q = strstr(q, "\"scenario\":")); q++)
			runs++;
		CHECK(runs == 1, "%d runs in the JSON", runs);
		CHECK(strstr(p, "\"policy\":\"mmap\"") && strstr(p, "\"vma_lock_success\":0,"),
		      "mmap's run: %s", p);
		CHECK(strstr(p, "\"ok\":true"), "ok");
		/* It did something: faults timed, pages checked during and after. */
		CHECK(json_num(p, "faults") > 0 && json_num(p, "major_faults") > 0 &&
			      json_num(p, "swap_ins") > 0,
		      "no faults or swap-ins: %s", p);
		CHECK(json_num(p, "verified_accesses") > 0 &&
			      json_num(p, "pages_checked_at_end") > 0,
		      "nothing verified: %s", p);
	}
	/* exit: the teardown with faults in flight, timed, every reader cut
	 * short by it and none lost. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow", "0",
				      "-p",	 "drop,hold",	"-j",	      "exit",	NULL};
		int runs = 0;
		char *p;

		rc = run_lab(NULL, args, out, sizeof(out), NULL, 0);
		CHECK(rc == 0, "exit run: exit %d\n%s", rc, out);
		p = strstr(out, "{\"tool\":\"faultline lab\"");
		CHECK(p, "no JSON object:\n%s", out);
		for (char *q = p; (q = strstr(q, "\"scenario\":\"exit\"")); q++) {
			runs++;
			CHECK(json_num(q, "exit_ns") > 0 && json_num(q, "exit_gone_ns") > 0 &&
				      json_num(q, "exit_gone_ns") <= json_num(q, "exit_ns"),
			      "teardown not timed: %s", q);
			/* The rates are of the measured window, not of the
			 * teardown after it. */
			CHECK(json_num(q, "secs") > 0 && json_num(q, "secs") < 10 &&
				      json_num(q, "accesses_per_s") > 0,
			      "window not timed: %s", q);
			CHECK(json_num(q, "exit_cut") == json_num(q, "threads"),
			      "not every reader was cut short by the teardown: %s", q);
			CHECK(strstr(q, "\"ok\":true"), "exit run failed: %s", q);
		}
		CHECK(runs == 2, "%d exit runs", runs);
	}
	/* start: the checked-in trace replayed under every policy, every touch
	 * and every page still mapped at the end checked, the RFC's table
	 * summing to its acquisitions. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow", "0",
				      "-p",	 ALL_POLICIES,	"-j",	      "start",	NULL};
		int runs = 0;
		char *p;

		rc = run_lab(NULL, args, out, sizeof(out), NULL, 0);
		CHECK(rc == 0, "start run: exit %d\n%s", rc, out);
		p = strstr(out, "{\"tool\":\"faultline lab\"");
		CHECK(p, "no JSON object:\n%s", out);
		for (char *q = p; (q = strstr(q, "\"scenario\":\"start\"")); q++) {
			uint64_t sum = 0;
			char *h = strstr(q, "\"mmap_read_wait_hist\":["), *e;

			runs++;
			CHECK(strstr(q, "\"ok\":true"), "start run failed: %s", q);
			CHECK(json_num(q, "accesses") > 1000 && json_num(q, "faults") > 0 &&
				      json_num(q, "writer_ops") > 10,
			      "no touches, faults or mm calls: %s", q);
			/* Every touch checked its page; the pages still mapped once more. */
			CHECK(json_num(q, "verified_accesses") >= json_num(q, "accesses") &&
				      json_num(q, "pages_checked_at_end") > 1000,
			      "not every page checked: %s", q);
			CHECK(h, "no histogram: %s", q);
			h += strlen("\"mmap_read_wait_hist\":[");
			for (int b = 0; b < 7; b++, h = e + 1)
				sum += strtoull(h, &e, 10);
			CHECK(sum == (uint64_t)json_num(q, "mmap_read_locks"), "histogram: %s", q);
		}
		CHECK(runs == 7, "%d start runs", runs);
	}
	/* start: a page changed behind the replay's back fails it. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow", "0",
				      "-p",	 "v2",		"start",      NULL};

		rc = run_lab("mismatch", args, out, sizeof(out), NULL, 0);
		CHECK(rc == 1, "start mismatch: exit %d\n%s", rc, out);
		CHECK(strstr(out, "DATA MISMATCH"), "start: mismatch not caught:\n%s", out);
	}
	/* start: counters against each policy's definition fail loudly. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow", "0",
				      "-p",	 CONTRA_START,	"start",      NULL};
		int caught = 0;

		rc = run_lab("contradiction", args, out, sizeof(out), NULL, 0);
		CHECK(rc == 1, "start contradiction: exit %d\n%s", rc, out);
		for (char *q = out; (q = strstr(q, "POLICY CONTRADICTION: ")); q++)
			caught++;
		CHECK(caught == CONTRA_N, "start: %d of %d policies caught:\n%s", caught, CONTRA_N,
		      out);
	}
	/* A corrupted page fails the run. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow", "0",
				      "-p",	 "drop-vma",	"parallel",   NULL};

		rc = run_lab("mismatch", args, out, sizeof(out), NULL, 0);
		printf("%s\n", out);
		CHECK(rc == 1, "mismatch: exit %d", rc);
		CHECK(strstr(out, "DATA MISMATCH"), "no DATA MISMATCH in the output");
	}
	/* A lost store (the page keeps its old version) fails the run. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow", "0",
				      "-p",	 "drop",	"process",    NULL};

		rc = run_lab("lostwrite", args, out, sizeof(out), NULL, 0);
		CHECK(rc == 1, "lost write: exit %d\n%s", rc, out);
		CHECK(strstr(out, "DATA MISMATCH"), "lost write not caught:\n%s", out);
	}
	/* fork and exit under every policy: they pass, the children of fork
	 * checked what they saw (not under TSan: lab.h), and a wrong word in a
	 * child's view fails the run. */
	{
		const char *args[] = {"--quick", "--no-kernel", "--no-plots", "--slow",	    "0",
				      "-s",	 "0.5",		"-p",	      ALL_POLICIES, "-j",
				      "fork",	 "exit",	NULL};
		char *p;

		rc = run_lab(NULL, args, out, sizeof(out), NULL, 0);
		CHECK(rc == 0, "fork and exit: exit %d\n%s", rc, out);
		p = strstr(out, "{\"tool\":\"faultline lab\"");
		CHECK(p, "no JSON object:\n%s", out);
#ifndef LAB_TSAN
		const char *fork_args[] = {"--quick", "--no-kernel", "--no-plots", "--slow",
					   "0",	      "-s",	     "0.5",	   "-p",
					   "hold",    "fork",	     NULL};

		for (char *q = p; (q = strstr(q, "\"scenario\":\"fork\"")); q++)
			CHECK(json_num(q, "fork_checked") > 0 && json_num(q, "vmas") >= 1024,
			      "a fork run checked nothing: %.400s", q);
		rc = run_lab("forkmismatch", fork_args, out, sizeof(out), NULL, 0);
		CHECK(rc == 1 && strstr(out, "DATA MISMATCH"),
		      "a wrong word in fork's child not caught: exit %d\n%s", rc, out);
#endif
	}
	/* Counters against each policy's definition fail loudly. */
	{
		const char *args[] = {
			"--quick",	 "--no-kernel", "--no-plots", "--slow",	  "0", "-p",
			CONTRA_PARALLEL, "-s",		"0.2",	      "parallel", NULL};
		int caught = 0;

		rc = run_lab("contradiction", args, out, sizeof(out), NULL, 0);
		CHECK(rc == 1, "contradiction: exit %d\n%s", rc, out);
		for (char *q = out; (q = strstr(q, "POLICY CONTRADICTION: ")); q++)
			caught++;
		CHECK(caught == CONTRA_N, "%d of %d policies caught:\n%s", caught, CONTRA_N, out);
	}
	/* Ctrl-C in the kernel's run: nothing left behind. */
	if (geteuid() == 0 && !access("/sys/fs/cgroup/memory/memory.limit_in_bytes", W_OK)) {
		const char *args[] = {"--quick", "--no-plots", "--slow", "0",	     "-p",
				      "drop",	 "-s",	       "5",	 "parallel", NULL};
		char path[PATH_MAX], swaps[4096];
		pid_t pid;
		int fd;

		rc = run_lab(NULL, args, out, sizeof(out), &pid, SIGINT);
		printf("%s\n", out);
		CHECK(rc == 128 + SIGINT, "interrupted lab: exit %d", rc);
		CHECK(strstr(out, "cleaning up"), "no cleanup message");
		fd = open("/proc/swaps", O_RDONLY);
		n = fd >= 0 ? read(fd, swaps, sizeof(swaps) - 1) : -1;
		if (fd >= 0)
			close(fd);
		swaps[n > 0 ? n : 0] = 0;
		snprintf(path, sizeof(path), "faultline-lab-swap-%d", (int)pid);
		CHECK(!strstr(swaps, path), "swap still on:\n%s", swaps);
		snprintf(path, sizeof(path), "%s/faultline-lab-swap-%d",
			 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
			 (int)pid);
		CHECK(access(path, F_OK), "%s left on disk", path);
		snprintf(path, sizeof(path), "/sys/fs/cgroup/memory/faultline-lab-%d", (int)pid);
		CHECK(access(path, F_OK), "%s left behind", path);
	} else {
		printf("SKIP: everything passed but the Ctrl-C cleanup check, which needs %s\n",
		       geteuid() ? "root: not root"
				 : "the cgroup v1 memory controller: no writable "
				   "/sys/fs/cgroup/memory/memory.limit_in_bytes");
		return T_EXIT_SKIP;
	}
	return T_EXIT_PASS;
}
