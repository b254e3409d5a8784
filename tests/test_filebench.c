// SPDX-License-Identifier: MIT
/*
 * The file benchmark's tool, end to end (build/filebench of the same
 * build), so that it cannot rot; its figures are not checked, only that it
 * measures:
 *   - a quick run of two rounds (one in a sanitizer build) passes: every
 *     figure (random reads at 1 and 2 threads, the sequential pass, random
 *     writes + msync, the restore with and without replay) has a row and a BENCH line with ok=1 for
 *     every subject, the writes were read back from the disk, the working
 *     set was recorded, and nothing is left behind;
 *   - as root with the cgroup v1 memory controller: the kernel's subject
 *     too, and Ctrl-C (SIGINT) in the middle of the kernel's run leaves no
 *     cgroup and no recorded working set.  Without either, the rest runs
 *     and the test skips, naming which is missing.
 * The caches are dropped per file (--drop file), not machine-wide: other
 * benchmarks may be measuring meanwhile.  Under ThreadSanitizer the quick
 * run leaves the kernel's subject out: the shadow memory of its mapping
 * counts against the cgroup's 16 MiB, whose OOM killer ends it (the release
 * and ASan builds run it).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util.h"

static char tool[PATH_MAX];
static char out[1 << 20];

/* Run the tool with args, its output (both streams) into out; sig: sent once pid's cgroup has a
 * task. */
static int run_tool(const char *const *args, pid_t *pid_out, int sig)
{
	int fds[2];
	pid_t pid;

	CHECK(pipe(fds) == 0, "pipe");
	pid = t_fork();
	if (pid == 0) {
		const char *argv[40] = {tool};
		unsigned int i;

		for (i = 0; args[i] && i < 38; i++)
			argv[1 + i] = args[i];
		argv[1 + i] = NULL;
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execv(tool, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	if (pid_out)
		*pid_out = pid;
	if (sig) {
		char path[PATH_MAX], procs[256];
		int tries;

		snprintf(path, sizeof(path),
			 "/sys/fs/cgroup/memory/faultline-filebench-%d/cgroup.procs", (int)pid);
		for (tries = 0; tries < 1200; tries++) {
			FILE *fp = fopen(path, "re");
			bool busy = fp && fgets(procs, sizeof(procs), fp);

			if (fp)
				fclose(fp);
			if (busy)
				break;
			usleep(50000);
		}
		CHECK(tries < 1200, "the kernel's run never joined its cgroup");
		usleep(300000);
		kill(pid, sig);
	}
	return t_collect(fds[0], pid, out, sizeof(out));
}

/* Nothing of run pid is left: no cgroup, no working-set file. */
static void check_clean(pid_t pid, const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/fs/cgroup/memory/faultline-filebench-%d", (int)pid);
	CHECK(access(path, F_OK), "%s left behind", path);
	snprintf(path, sizeof(path), "%s/faultline-filebench-ws-%d", dir, (int)pid);
	CHECK(access(path, F_OK), "%s left behind", path);
}

int main(int argc, char **argv)
{
	(void)t_seed_init(argc, argv, "test_filebench");
	const char *tmp = getenv("TMPDIR");
	const char *dir = tmp && *tmp ? tmp : "/tmp";
	bool kernel =
		geteuid() == 0 && !access("/sys/fs/cgroup/memory/memory.limit_in_bytes", W_OK);
	static const char *const figs[] = {"rand.t1", "rand.t2", "seq", "write", "restore"};
	char self[PATH_MAX], pat[128];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct stat st;
	pid_t pid;
	int rc;

	CHECK(n > 0, "readlink /proc/self/exe");
	self[n] = 0;
	snprintf(tool, sizeof(tool), "%s/../filebench", dirname(self));
	if (stat(tool, &st)) {
		printf("SKIP: no filebench binary at %s\n", tool);
		return T_EXIT_SKIP;
	}

	/* A quick run of two rounds: every figure, every subject.  One round
	 * in a sanitizer build: the second runs the same code again. */
	{
		bool ksub = kernel && !T_UNDER_TSAN;
		const char *args[] = {
			"--quick",   "--drop", "file",	   "--rounds", T_SANITIZED ? "1" : "2",
			"--seconds", "0.2",    "--warmup", "0.1",      ksub ? NULL : "--no-kernel",
			NULL};

		rc = run_tool(args, &pid, 0);
		printf("%s\n", out);
		CHECK(rc == 0, "quick run: exit %d", rc);
		for (unsigned int i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
			const char *subj[] = {"kernel", "fl-thread", "fl-sigbus"};

			for (unsigned int s = ksub ? 0 : 1; s < 3; s++) {
				snprintf(pat, sizeof(pat), "BENCH filebench %s %s ok=1 ", figs[i],
					 subj[s]);
				CHECK(strstr(out, pat), "no '%s'", pat);
			}
		}
		CHECK(strstr(out, "BENCH filebench restore fl-thread-replay ok=1 ") &&
			      strstr(out, "BENCH filebench restore fl-sigbus-replay ok=1 "),
		      "no restore with replay");
		CHECK(strstr(out, "GOAL seq fl-sigbus: "), "no goal lines");
		CHECK(!strstr(out, " 0 recorded;"), "no working set recorded");
		CHECK(!strstr(out, "FAILED") && !strstr(out, "MISMATCH") &&
			      !strstr(out, "NOT DURABLE"),
		      "a run failed");
		check_clean(pid, dir);
	}
	if (!kernel) {
		printf("SKIP: everything passed but the kernel's subject and the Ctrl-C cleanup "
		       "check, which need %s\n",
		       geteuid() ? "root: not root"
				 : "the cgroup v1 memory controller: no writable "
				   "/sys/fs/cgroup/memory/memory.limit_in_bytes");
		return T_EXIT_SKIP;
	}
	/* Ctrl-C in the kernel's run (after the working set was recorded): nothing left. */
	{
		const char *args[] = {"--quick",   "--drop", "file", "--only", "restore,rand",
				      "--threads", "1",	     "-s",   "30",     NULL};

		rc = run_tool(args, &pid, SIGINT);
		printf("%s\n", out);
		CHECK(rc == 128 + SIGINT, "interrupted run: exit %d", rc);
		CHECK(strstr(out, "cleaning up"), "no cleanup message");
		check_clean(pid, dir);
	}
	return T_EXIT_PASS;
}
