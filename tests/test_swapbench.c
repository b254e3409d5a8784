// SPDX-License-Identifier: MIT
/*
 * swapbench's quick modes, end to end (the binary of the same build), so
 * that the benchmark's subjects and phases cannot rot:
 *   - faultline with the compressed tier (lz4, zstd), both deliveries, heap
 *     data, the strided and interleaved reads; with trend prefetch on and
 *     off, random data: each runs, every word it reads checked, and the
 *     per-miss table has a row for each subject and phase;
 *   - as root, with the cgroup v1 memory controller, zswap and zram: the
 *     kernel's swap file, zswap in front of it (with a compressor of the
 *     crypto API's that the kernel has) and a zram device, each in the
 *     cgroup, on heap data; afterwards, and after a SIGINT while zram
 *     and while zswap are on, no swap of ours is on, zswap's parameters and
 *     vm.page-cluster (0 in zswap's runs) are as they were and no zram
 *     device of ours is left.  Without any of
 *     these the faultline part runs and the test skips, naming what is
 *     missing.  Under TSan the kernel's part is left out (its shadow memory
 *     counts against the cgroup: the OOM killer ends the run).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util.h"

static char bench[PATH_MAX];
static char out[1 << 20];

/*
 * Run swapbench with args, its output into buf.  If wait_for, send sig once
 * the machine shows it (wait_for() true), then collect.  Return: its exit
 * status, or 128 + the signal that killed it.
 */
static int run_bench(const char *const *args, char *buf, size_t len, bool (*wait_for)(void),
		     int sig)
{
	int fds[2];
	pid_t pid;

	CHECK(pipe(fds) == 0, "pipe");
	pid = t_fork();
	if (pid == 0) {
		const char *argv[48] = {bench};
		unsigned int i;

		for (i = 0; args[i] && i < 46; i++)
			argv[1 + i] = args[i];
		argv[1 + i] = NULL;
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execv(bench, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	if (wait_for) {
		int tries;

		for (tries = 0; tries < 1200 && !wait_for(); tries++)
			usleep(25000);
		CHECK(tries < 1200, "what the kernel's run switches on never showed (%s)",
		      args[17]);
		usleep(100000);
		kill(pid, sig);
	}
	return t_collect(fds[0], pid, buf, len);
}

static void read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

/* The machine's state that the kernel's runs change, as one string. */
static void machine_state(char *buf, size_t len)
{
	static const char *const files[] = {
		"/sys/module/zswap/parameters/enabled",
		"/sys/module/zswap/parameters/compressor",
		"/sys/module/zswap/parameters/max_pool_percent",
		"/sys/module/zswap/parameters/shrinker_enabled",
		"/proc/sys/vm/page-cluster",
		"/proc/swaps",
	};
	size_t off = 0;
	DIR *d;
	struct dirent *de;

	buf[0] = 0;
	for (unsigned int i = 0; i < sizeof(files) / sizeof(files[0]) && off + 1 < len; i++) {
		read_text(files[i], buf + off, len - off);
		off += strlen(buf + off);
	}
	/* The zram devices there are. */
	if ((d = opendir("/sys/block"))) {
		while ((de = readdir(d)) && off + 32 < len)
			if (!strncmp(de->d_name, "zram", 4))
				off += (size_t)snprintf(buf + off, len - off, "%s ", de->d_name);
		closedir(d);
	}
}

static bool zram_swap_on(void)
{
	char swaps[4096];

	read_text("/proc/swaps", swaps, sizeof(swaps));
	return strstr(swaps, "/dev/zram") != NULL;
}

/* zswap on for a run, with swapbench's vm.page-cluster for it (0). */
static bool zswap_on(void)
{
	char v[16], pc[16];

	read_text("/sys/module/zswap/parameters/enabled", v, sizeof(v));
	read_text("/proc/sys/vm/page-cluster", pc, sizeof(pc));
	return v[0] == 'Y' && atoi(pc) == 0;
}

/* Every subject has a row for every phase in the per-miss table. */
static void check_rows(const char *what, const char *const *subjects, const char *const *phases)
{
	const char *table = strstr(out, "\nPER MISS: ");

	CHECK(table, "%s: no per-miss table:\n%s", what, out);
	for (unsigned int i = 0; subjects[i]; i++)
		for (unsigned int j = 0; phases[j]; j++) {
			char row[128];

			snprintf(row, sizeof(row), "\n%s.%s ", subjects[i], phases[j]);
			CHECK(strstr(table, row), "%s: no row %s in:\n%s", what, row + 1, table);
		}
}

/*
 * The by-thread table splits a subject's CPU by who spent it: in thread
 * delivery the handlers serve the misses, in sigbus delivery the faulting
 * threads themselves do and no handler runs.
 */
static void check_by_thread(const char *what, const char *subject, bool sigbus)
{
	const char *table = strstr(out, "\nBY THREAD: "), *row;
	double own, app, handler, reaper, kswapd, rest, vcs, ivcs;
	char key[128];

	CHECK(table, "%s: no by-thread table:\n%s", what, out);
	snprintf(key, sizeof(key), "\n%s.read.t1 ", subject);
	row = strstr(table, key);
	CHECK(row, "%s: no row %s in:\n%s", what, key + 1, table);
	CHECK(sscanf(row + strlen(key), "%lf %lf %lf %lf %lf %lf %lf %lf", &own, &app, &handler,
		     &reaper, &kswapd, &rest, &vcs, &ivcs) == 8,
	      "%s: row %s not all numbers:\n%s", what, key + 1, table);
	CHECK(sigbus ? app > 0 && handler == 0 : handler > 0,
	      "%s: %s: app %.1f handler %.1f us a miss", what, key + 1, app, handler);
	CHECK(app + handler + reaper + kswapd + rest <= own * 1.05 + 0.2,
	      "%s: %s: the parts exceed the whole", what, key + 1);
	CHECK(vcs > 0, "%s: %s: no context switch", what, key + 1);
}

int main(int argc, char **argv)
{
	(void)t_seed_init(argc, argv, "test_swapbench");
	char self[PATH_MAX], before[8192], after[8192];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *skip = NULL;
	struct stat st;
	int rc;

	CHECK(n > 0, "readlink /proc/self/exe");
	self[n] = 0;
	snprintf(bench, sizeof(bench), "%s/../swapbench", dirname(self));
	CHECK(stat(bench, &st) == 0, "no swapbench binary at %s", bench);

	/* The compressed tier: lz4 and zstd, both deliveries, heap data, the passes. */
	{
		const char *args[] = {
			"--region",	"16M",	     "--budget",    "8M",	 "--pool",
			"2M",		"--seconds", "0.3",	    "--warmup",	 "0.1",
			"--threads",	"1",	     "--no-device", "--no-bare", "--no-kernel",
			"--no-preheat", "--data",    "heap",	    "--zswap",	 "lz4,zstd",
			"--stride",	"3",	     "--streams",   "2,5",	 NULL};
		const char *subjects[] = {"fl-thread-drop-lz4", "fl-thread-drop-zstd",
					  "fl-sigbus-drop-lz4", "fl-sigbus-drop-zstd", NULL};
		const char *phases[] = {"read.t1", "seq", "stride", "inter", NULL};

		rc = run_bench(args, out, sizeof(out), NULL, 0);
		printf("%s\n", out);
		CHECK(rc == 0, "tier run: exit %d", rc);
		check_rows("tier run", subjects, phases);
		check_by_thread("tier run", "fl-thread-drop-lz4", false);
		check_by_thread("tier run", "fl-sigbus-drop-lz4", true);
		CHECK(strstr(out, "zswap_hits="), "no tier counters");
	}
	/* Trend prefetch on and off, random data, the strided read only. */
	{
		const char *args[] = {"--region",    "16M",	     "--budget",    "4M",
				      "--seconds",   "0.3",	     "--warmup",    "0.1",
				      "--threads",   "1,2",	     "--no-device", "--no-bare",
				      "--no-kernel", "--no-preheat", "--no-seq",    "--data",
				      "random",	     "--prefetch",   "on,off",	    "--delivery",
				      "thread",	     "--stride",     "4",	    NULL};
		const char *subjects[] = {"fl-thread-drop-pf", "fl-thread-drop-nopf", NULL};
		const char *phases[] = {"read.t1", "read.t2", "stride", NULL};

		rc = run_bench(args, out, sizeof(out), NULL, 0);
		printf("%s\n", out);
		CHECK(rc == 0, "prefetch run: exit %d", rc);
		check_rows("prefetch run", subjects, phases);
		CHECK(strstr(out, "prefetch_used="), "no prefetch counters");
	}
	/* --json carries the CPU per miss, by thread and in switches. */
	{
		const char *args[] = {"--region",    "16M",	     "--budget",
				      "8M",	     "--seconds",    "0.3",
				      "--warmup",    "0.1",	     "--threads",
				      "1",	     "--no-device",  "--no-bare",
				      "--no-kernel", "--no-preheat", "--no-seq",
				      "--delivery",  "thread",	     "--json",
				      NULL};
		const char *fig = NULL;

		rc = run_bench(args, out, sizeof(out), NULL, 0);
		printf("%s\n", out);
		CHECK(rc == 0, "json run: exit %d", rc);
		fig = strstr(out, "\"name\": \"fl-thread-drop.read.t1\"");
		CHECK(fig, "json run: no read figure");
		CHECK(strstr(fig, "\"cpu_us_own\": ") &&
			      strstr(fig, "\"cpu_us_by_thread\": {\"app\": ") &&
			      strstr(fig, "\"context_switches\": {\"voluntary\": "),
		      "json run: no CPU per miss in the read figure");
		CHECK(!strstr(fig, "\"handler\": null") && !strstr(fig, "\"handler\": 0,"),
		      "json run: the handlers' CPU is missing");
	}

	/* The kernel's subjects run in a cgroup of the budget, where TSan's
	 * shadow memory of the child's region counts too and the OOM killer
	 * ends the run (as test_filebench): they run in the other builds. */
	if (T_UNDER_TSAN) {
		printf("the kernel's subjects: not under TSan (its shadow memory counts "
		       "against their cgroup); the release and ASan builds run them\n");
		printf("test_swapbench: PASS\n");
		return T_EXIT_PASS;
	}
	if (geteuid() != 0)
		skip = "not root (the kernel's swap, zswap, zram and the cgroup)";
	else if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", W_OK))
		skip = "no cgroup v1 memory controller";
	else if (access("/sys/module/zswap/parameters/enabled", W_OK))
		skip = "no zswap";
	else if (access("/sys/class/zram-control/hot_add", R_OK))
		skip = "no zram (zram-control)";
	if (skip) {
		printf("SKIP: the kernel's subjects: %s\n", skip);
		return T_EXIT_SKIP;
	}

	/* A compressor zswap can take: it takes the crypto API's only (lz4 and
	 * zstd may be absent where zram has them); the first /proc/crypto has. */
	static const char *const algs[] = {"lzo-rle", "lzo", "lz4", "zstd", "deflate"};
	static char crypto[1 << 16], zswap_variant[80], kernels[128];
	const char *alg = NULL;

	read_text("/proc/crypto", crypto, sizeof(crypto));
	for (unsigned int i = 0; !alg && i < sizeof(algs) / sizeof(algs[0]); i++) {
		char line[64];

		snprintf(line, sizeof(line), ": %s\n", algs[i]);
		if (strstr(crypto, line))
			alg = algs[i];
	}
	if (!alg) {
		printf("SKIP: the kernel's subjects: no compressor for zswap in /proc/crypto\n");
		return T_EXIT_SKIP;
	}
	snprintf(zswap_variant, sizeof(zswap_variant), "zswap-%s", alg);
	snprintf(kernels, sizeof(kernels), "swap,%s,zram-lz4", zswap_variant);

	/* The kernel: its swap file, zswap, zram; the machine as it was after. */
	{
		const char *args[] = {
			"--region",  "32M",	  "--budget",	 "24M",	      "--pool",
			"8M",	     "--seconds", "0.3",	 "--warmup",  "0.1",
			"--threads", "1",	  "--no-device", "--no-bare", "--no-faultline",
			"--data",    "heap",	  "--kernel",	 kernels,     "--stride",
			"3",	     "--streams", "2,5",	 NULL};
		char zname[96];
		const char *subjects[] = {"kernel", zname, "kernel-zram-lz4", NULL};
		const char *phases[] = {"read.t1", "seq", "stride", "inter", NULL};

		snprintf(zname, sizeof(zname), "kernel-%s", zswap_variant);
		machine_state(before, sizeof(before));
		/* A kernel child that its group's OOM killer killed (the table
		 * says "OOM: NAME:") has no rows for the windows it did not
		 * finish: the kernel's doing, not swapbench's.  Run again,
		 * at most twice. */
		for (int tries = 0;; tries++) {
			rc = run_bench(args, out, sizeof(out), NULL, 0);
			printf("%s\n", out);
			CHECK(rc == 0, "kernel run: exit %d", rc);
			if (tries == 2 || !strstr(out, "\nOOM: "))
				break;
			printf("kernel run: a child was OOM-killed by its group; once more\n");
		}
		check_rows("kernel run", subjects, phases);
		CHECK(strstr(out, "zram, at the end: orig_MiB="), "no zram counters");
		machine_state(after, sizeof(after));
		CHECK(!strcmp(before, after), "the machine changed:\nbefore:\n%s\nafter:\n%s",
		      before, after);
	}
	/* SIGINT while zram is on, then while zswap is: everything undone.  Heap
	 * data and a pool the swapped part fits in with room: zram's device
	 * full (its mem_limit; the system's DAMON pages other processes out to
	 * it too) would OOM-kill the child before the signal. */
	{
		const char *zram[] = {
			"--region",  "64M",	 "--budget",	"60M",	     "--pool",
			"32M",	     "--data",	 "heap",	"--seconds", "5",
			"--threads", "1",	 "--no-device", "--no-bare", "--no-faultline",
			"--no-seq",  "--kernel", "zram-lz4",	NULL};
		const char *zswap[] = {
			"--region",  "64M",	 "--budget",	"60M",	     "--pool",
			"32M",	     "--data",	 "heap",	"--seconds", "5",
			"--threads", "1",	 "--no-device", "--no-bare", "--no-faultline",
			"--no-seq",  "--kernel", zswap_variant, NULL};

		rc = run_bench(zram, out, sizeof(out), zram_swap_on, SIGINT);
		CHECK(rc == 128 + SIGINT, "SIGINT in the zram run: exit %d\n%s", rc, out);
		machine_state(after, sizeof(after));
		CHECK(!strcmp(before, after), "after SIGINT (zram):\nbefore:\n%s\nafter:\n%s",
		      before, after);
		rc = run_bench(zswap, out, sizeof(out), zswap_on, SIGINT);
		CHECK(rc == 128 + SIGINT, "SIGINT in the zswap run: exit %d\n%s", rc, out);
		machine_state(after, sizeof(after));
		CHECK(!strcmp(before, after), "after SIGINT (zswap):\nbefore:\n%s\nafter:\n%s",
		      before, after);
		printf("SIGINT with zram on, then with zswap on: the machine as it was\n");
	}
	printf("test_swapbench: PASS\n");
	return T_EXIT_PASS;
}
