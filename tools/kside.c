// SPDX-License-Identifier: MIT
/*
 * kside: the kernel side by side, and cleaning up after it.  See kside.h.
 */
#define _GNU_SOURCE
#include "kside.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct ks_kernel ks_kern = {.vm_swappiness = -1, .cg_swappiness = -1, .page_cluster = -1};

/*
 * Everything the kernel side changes on the machine, undone by ks_cleanup().
 * Each step clears its flag when done, so running it twice is harmless.
 */
static struct {
	const char *tool;
	bool verbose;
	pid_t main_pid;
	volatile pid_t child;
	volatile sig_atomic_t swap_created, swap_on, cg_created;
	char unlink_path[KS_MAX_UNLINK][PATH_MAX];
	volatile sig_atomic_t nunlink;
	volatile sig_atomic_t zswap_set, zram_made, zram_on;
} cl = {.tool = "faultline"};

/* zswap's parameters as found, put back by zswap_restore(). */
#define ZSWAP_PARAM "/sys/module/zswap/parameters/"
#define ZSWAP_SAVED 5
static char zswap_saved[ZSWAP_SAVED][32];
static const char *const zswap_names[ZSWAP_SAVED] = {
	ZSWAP_PARAM "enabled", ZSWAP_PARAM "compressor", ZSWAP_PARAM "max_pool_percent",
	ZSWAP_PARAM "shrinker_enabled", "/proc/sys/vm/page-cluster"};
/* Our zram device: its number, "/dev/zramN", "/sys/block/zramN". */
static char zram_id[16], zram_dev[32], zram_sys[48];

static const char *volatile current_run = "";

void ks_say(const char *s)
{
	if (write(2, s, strlen(s)) < 0)
		return;
}

/* Write s to path: open and write only (async-signal-safe). */
static void put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, s, strlen(s)) < 0)
		ks_say("");
	close(fd);
}

/* zswap as it was found (async-signal-safe): disabled first, then the rest. */
static void zswap_restore(void)
{
	if (!cl.zswap_set)
		return;
	put(zswap_names[0], zswap_saved[0]);
	put(zswap_names[1], zswap_saved[1]);
	put(zswap_names[2], zswap_saved[2]);
	put(zswap_names[3], zswap_saved[3]);
	put(zswap_names[4], zswap_saved[4]);
	cl.zswap_set = 0;
}

/* Our zram device off and gone (async-signal-safe). */
static void zram_remove(void)
{
	char path[80];

	if (cl.zram_on) {
		if (swapoff(zram_dev)) {
			ks_say(cl.tool);
			ks_say(": swapoff failed; left enabled: ");
			ks_say(zram_dev);
			ks_say(" (run: swapoff DEV, then echo 1 > /sys/block/zramN/reset)\n");
			cl.zram_on = 0;
			cl.zram_made = 0;
			return;
		}
		cl.zram_on = 0;
	}
	if (cl.zram_made) {
		memcpy(path, zram_sys, sizeof(zram_sys));
		strcat(path, "/reset");
		put(path, "1");
		put("/sys/class/zram-control/hot_remove", zram_id);
		cl.zram_made = 0;
	}
}

void ks_cleanup(void)
{
	struct timespec ms10 = {.tv_sec = 0, .tv_nsec = 10000000};
	sigset_t all, old;
	int i;

	if (getpid() != cl.main_pid)
		return; /* a child inherits the handlers, not the duty */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if (cl.child > 0) {
		kill(cl.child, SIGKILL);
		while (waitpid(cl.child, NULL, 0) < 0 && errno == EINTR)
			;
		cl.child = 0;
	}
	if (cl.cg_created) {
		/* Empty once the child is reaped; give the kernel a moment. */
		for (i = 0; i < 300 && rmdir(ks_kern.cg_path) && errno == EBUSY; i++)
			nanosleep(&ms10, NULL);
		cl.cg_created = 0;
	}
	if (cl.swap_on) {
		if (swapoff(ks_kern.swap_path)) {
			/* Unlinked, an active swap file could not be switched off by name. */
			ks_say(cl.tool);
			ks_say(": swapoff failed; left enabled: ");
			ks_say(ks_kern.swap_path);
			ks_say(" (run: swapoff FILE && rm FILE)\n");
			cl.swap_created = 0;
		}
		cl.swap_on = 0;
	}
	if (cl.swap_created) {
		unlink(ks_kern.swap_path);
		cl.swap_created = 0;
	}
	for (i = 0; i < cl.nunlink; i++)
		unlink(cl.unlink_path[i]);
	cl.nunlink = 0;
	zram_remove();
	zswap_restore();
	sigprocmask(SIG_SETMASK, &old, NULL);
}

int ks_unlink_at_cleanup(const char *path)
{
	if (cl.nunlink == KS_MAX_UNLINK || strlen(path) >= PATH_MAX)
		return -ENOSPC;
	memcpy(cl.unlink_path[cl.nunlink], path, strlen(path) + 1);
	cl.nunlink++;
	return 0;
}

static void fatal_signal(int sig)
{
	char num[4] = {(char)('0' + sig / 10 % 10), (char)('0' + sig % 10), 0, 0};

	if (getpid() == cl.main_pid) {
		ks_say(cl.tool);
		ks_say(": signal ");
		ks_say(sig < 10 ? num + 1 : num);
		ks_say(": cleaning up\n");
	}
	ks_cleanup();
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(KS_TSAN)
	/* ThreadSanitizer turns a death by a signal raised here into an exit
	 * that reports the threads not joined yet (a signal during preheat())
	 * as leaks, and exits 66: leave with the same status at once. */
	_exit(128 + sig);
#endif
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig);
}

static void watchdog_fire(int sig)
{
	const char *name = current_run;

	(void)sig;
	if (getpid() != cl.main_pid)
		_exit(3);
	ks_say(cl.tool);
	ks_say(": timed out (a fault never served? a hang?): ");
	ks_say(name);
	ks_say("\n");
	ks_cleanup();
	_exit(3);
}

void ks_init(const char *tool, bool verbose)
{
	static const int quit[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	static const int crash[] = {SIGSEGV, SIGABRT, SIGFPE, SIGILL, SIGBUS};
	struct sigaction sa;
	unsigned int i;

	cl.tool = tool;
	cl.verbose = verbose;
	cl.main_pid = getpid();
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = fatal_signal;
	/* Reset and not deferred: the raise() after cleanup kills at once. */
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	for (i = 0; i < sizeof(quit) / sizeof(quit[0]); i++)
		sigaction(quit[i], &sa, NULL);
	/* A closed pipe (lab | head) must not kill us with swap still on. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(crash) / sizeof(crash[0]); i++)
		sigaction(crash[i], &sa, NULL);
	sa.sa_flags = 0;
	sa.sa_handler = watchdog_fire;
	sigaction(SIGALRM, &sa, NULL);
	atexit(ks_cleanup);
}

void ks_watchdog(unsigned int secs, const char *what)
{
	current_run = what ? what : "";
	alarm(secs);
}

/* ---- Small file helpers ---- */

int ks_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)got + 1 < len) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	buf[got] = 0;
	close(fd);
	return 0;
}

long ks_read_long(const char *path, long dflt)
{
	char buf[64];

	if (ks_read_file(path, buf, sizeof(buf)))
		return dflt;
	return strtol(buf, NULL, 10);
}

int ks_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return 0;
}

uint64_t ks_kv_get(const char *buf, const char *name, uint64_t dflt, bool *found)
{
	size_t len = strlen(name);
	const char *p = buf;

	while (p && *p) {
		if (!strncmp(p, name, len) && p[len] == ' ') {
			if (found)
				*found = true;
			return strtoull(p + len + 1, NULL, 10);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return dflt;
}

int ks_read_vmstat(struct ks_vmstat *v)
{
	static const char *const vl[] = {"vma_lock_success", "vma_lock_abort", "vma_lock_retry",
					 "vma_lock_miss"};
	char buf[16384]; /* about 4 KiB, vma_lock_* at its end */
	unsigned int i;
	int err;

	memset(v, 0, sizeof(*v));
	err = ks_read_file("/proc/vmstat", buf, sizeof(buf));
	if (err)
		return err;
	v->pswpin = ks_kv_get(buf, "pswpin", 0, NULL);
	v->pswpout = ks_kv_get(buf, "pswpout", 0, NULL);
	v->pgmajfault = ks_kv_get(buf, "pgmajfault", 0, NULL);
	v->swap_ra = ks_kv_get(buf, "swap_ra", 0, NULL);
	v->swap_ra_hit = ks_kv_get(buf, "swap_ra_hit", 0, NULL);
	v->refault_anon = ks_kv_get(buf, "workingset_refault_anon", 0, NULL);
	for (i = 0; i < 4; i++)
		v->vma_lock[i] = ks_kv_get(buf, vl[i], 0, &v->has_vma_lock);
	return 0;
}

int ks_run_cmd(const char *const argv[])
{
	pid_t pid;
	int status, fd;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0 && !cl.verbose) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/* ---- The swap file and the cgroup ---- */

/* Write zeros over the whole swap file (when swapon refuses a fallocated one). */
static int swapfile_write_zeros(void)
{
	size_t chunk = 1UL << 20, off;
	char *buf = calloc(1, chunk);
	int fd = open(ks_kern.swap_path, O_WRONLY | O_CLOEXEC);

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	for (off = 0; off < ks_kern.swapfile; off += chunk)
		if (pwrite(fd, buf, chunk, (off_t)off) != (ssize_t)chunk)
			break;
	free(buf);
	if (off < ks_kern.swapfile || fsync(fd)) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

static int make_swapfile(const char *dir)
{
	const char *mkargv[3] = {"mkswap", ks_kern.swap_path, NULL};
	int fd, err;

	fmt(ks_kern.swap_path, sizeof(ks_kern.swap_path), "%s/faultline-%s-swap-%d", dir, cl.tool,
	    (int)getpid());
	fd = open(ks_kern.swap_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "creating %s: %s", ks_kern.swap_path,
		    strerror(errno));
		return -1;
	}
	cl.swap_created = 1;
	fchmod(fd, 0600);
	if (fallocate(fd, 0, 0, (off_t)ks_kern.swapfile)) {
		err = errno;
		close(fd);
		if (swapfile_write_zeros()) {
			fmt(ks_kern.error, sizeof(ks_kern.error), "fallocate %s: %s",
			    ks_kern.swap_path, strerror(err));
			return -1;
		}
	} else {
		close(fd);
	}
	if (ks_run_cmd(mkargv)) {
		fmt(ks_kern.error, sizeof(ks_kern.error),
		    "mkswap %s failed (is util-linux installed?)", ks_kern.swap_path);
		return -1;
	}
	/* One trial swapon: a file system may refuse a fallocated swap file. */
	if (swapon(ks_kern.swap_path, 0)) {
		err = errno;
		if (err != EINVAL || swapfile_write_zeros() || ks_run_cmd(mkargv) ||
		    swapon(ks_kern.swap_path, 0)) {
			fmt(ks_kern.error, sizeof(ks_kern.error), "swapon %s: %s",
			    ks_kern.swap_path, strerror(err));
			return -1;
		}
	}
	cl.swap_on = 1;
	swapoff(ks_kern.swap_path);
	cl.swap_on = 0;
	return 0;
}

int ks_set_budget(size_t budget)
{
	char path[PATH_MAX + 32], buf[32];
	int err;

	fmt(path, sizeof(path), "%s/memory.limit_in_bytes", ks_kern.cg_path);
	fmt(buf, sizeof(buf), "%zu", budget);
	err = ks_write_str(path, buf);
	if (!err && ks_read_long(path, -1) != (long)budget)
		err = -EINVAL;
	if (!err)
		ks_kern.budget = budget;
	return err;
}

/* The pid at the end of a name "...-PID", or 0. */
static pid_t trailing_pid(const char *name)
{
	const char *dash = strrchr(name, '-');
	char *end;
	long v;

	if (!dash || !dash[1])
		return 0;
	v = strtol(dash + 1, &end, 10);
	return *end || v <= 0 ? 0 : (pid_t)v;
}

/* Gone, or a zombie (killed, not yet reaped by its parent). */
static bool dead(pid_t pid)
{
	char path[64], buf[256], *p;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) && errno == ESRCH)
		return true;
	fmt(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (ks_read_file(path, buf, sizeof(buf)))
		return false;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

/*
 * What an earlier run killed with SIGKILL (no cleanup possible) left: swap
 * files "faultline-*-swap-PID" enabled or on disk in dir, cgroups
 * "faultline-*-PID", whose PID no longer runs.  Removed, and said.
 */
static void sweep_leftovers(const char *dir)
{
	char buf[4096], path[PATH_MAX + 300], *line, *save = NULL;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(KS_CG_ROOT))) {
		while ((de = readdir(d))) {
			char procs[4096], *q;
			int tries;

			if (strncmp(de->d_name, "faultline-", 10) ||
			    !dead(trailing_pid(de->d_name)))
				continue;
			/* Its tasks first (a child of the killed run), then the cgroup. */
			fmt(path, sizeof(path), "%s/%s/cgroup.procs", KS_CG_ROOT, de->d_name);
			if (!ks_read_file(path, procs, sizeof(procs)))
				for (q = procs; *q;
				     q = strchr(q, '\n') ? strchr(q, '\n') + 1 : q + strlen(q))
					if (atoi(q) > 0)
						kill((pid_t)atoi(q), SIGKILL);
			fmt(path, sizeof(path), "%s/%s", KS_CG_ROOT, de->d_name);
			for (tries = 0; tries < 300 && rmdir(path) && errno == EBUSY; tries++)
				usleep(10000);
			if (tries < 300 && access(path, F_OK))
				fprintf(stderr, "%s: removed the cgroup %s, left by a killed run\n",
					cl.tool, path);
		}
		closedir(d);
	}
	if (!ks_read_file("/proc/swaps", buf, sizeof(buf)))
		for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');

			if (sp)
				*sp = 0;
			if (!strstr(line, "/faultline-") || !strstr(line, "-swap-") ||
			    !dead(trailing_pid(line)))
				continue;
			if (swapoff(line)) {
				fprintf(stderr, "%s: a killed run left %s enabled; swapoff: %s\n",
					cl.tool, line, strerror(errno));
				continue;
			}
			fprintf(stderr, "%s: switched off a swap file left by a killed run: %s\n",
				cl.tool, line);
			unlink(line);
		}
	if ((d = opendir(dir))) {
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, "faultline-", 10) &&
			    strstr(de->d_name, "-swap-") && dead(trailing_pid(de->d_name))) {
				fmt(path, sizeof(path), "%s/%s", dir, de->d_name);
				if (!unlink(path))
					fprintf(stderr, "%s: removed %s, left by a killed run\n",
						cl.tool, path);
			}
		closedir(d);
	}
}

int ks_kernel_prepare(const char *dir, size_t swapfile, size_t budget, int swappiness)
{
	char path[PATH_MAX + 32], buf[4096], *p;
	int err;

	if (ks_kern.prepared || ks_kern.failed)
		return ks_kern.failed ? -1 : 0;
	ks_kern.failed = true; /* until the end of this function */
	ks_kern.swapfile = swapfile;
	if (geteuid() == 0)
		sweep_leftovers(dir);
	ks_kern.vm_swappiness = ks_read_long("/proc/sys/vm/swappiness", -1);
	ks_kern.page_cluster = ks_read_long("/proc/sys/vm/page-cluster", -1);
	if (ks_read_file("/sys/module/zswap/parameters/enabled", ks_kern.zswap,
			 sizeof(ks_kern.zswap)))
		fmt(ks_kern.zswap, sizeof(ks_kern.zswap), "absent");
	else if ((p = strchr(ks_kern.zswap, '\n')))
		*p = 0;
	if (!ks_read_file("/proc/swaps", buf, sizeof(buf))) {
		p = strchr(buf, '\n');
		if (p && p[1]) {
			fmt(ks_kern.other_swaps, sizeof(ks_kern.other_swaps), "%s", p + 1);
			if ((p = strchr(ks_kern.other_swaps, '\n')))
				*p = 0;
		}
	}
	{
		struct ks_vmstat vm;

		ks_read_vmstat(&vm);
		ks_kern.has_vma_lock_stats = vm.has_vma_lock;
	}
	if (geteuid() != 0) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "needs root (swapon, cgroups)");
		return -1;
	}
	if (access(KS_CG_ROOT "/memory.limit_in_bytes", W_OK)) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "no cgroup v1 memory controller at %s",
		    KS_CG_ROOT);
		return -1;
	}
	ks_kern.memsw = !access(KS_CG_ROOT "/memory.memsw.limit_in_bytes", F_OK);
	if (swapfile && make_swapfile(dir))
		return -1;

	/* The memory cgroup: the budget, swap allowed. */
	fmt(ks_kern.cg_path, sizeof(ks_kern.cg_path), KS_CG_ROOT "/faultline-%s-%d", cl.tool,
	    (int)getpid());
	if (mkdir(ks_kern.cg_path, 0755)) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "mkdir %s: %s", ks_kern.cg_path,
		    strerror(errno));
		ks_kern.cg_path[0] = 0;
		return -1;
	}
	cl.cg_created = 1;
	err = ks_set_budget(budget);
	if (err) {
		fmt(ks_kern.error, sizeof(ks_kern.error),
		    "cannot set the cgroup's limit to %zu (%s)", budget, strerror(-err));
		return -1;
	}
	fmt(path, sizeof(path), "%s/memory.swappiness", ks_kern.cg_path);
	if (swappiness >= 0 || ks_kern.vm_swappiness == 0) {
		/* The cgroup's own knob: vm.swappiness is left alone. */
		fmt(buf, sizeof(buf), "%d", swappiness >= 0 ? swappiness : 60);
		ks_write_str(path, buf);
	}
	ks_kern.cg_swappiness = ks_read_long(path, -1);
	if (swapfile && ks_kern.cg_swappiness == 0) {
		fmt(ks_kern.error, sizeof(ks_kern.error),
		    "the cgroup's swappiness is 0: the kernel would not swap");
		return -1;
	}
	ks_kern.failed = false;
	ks_kern.prepared = true;
	return 0;
}

int ks_swapon(void)
{
	/* The highest priority: if another swap area is on, the kernel's
	 * pages still go to ours, on the store's file system. */
	if (swapon(ks_kern.swap_path, SWAP_FLAG_PREFER | (32767 & SWAP_FLAG_PRIO_MASK)))
		return -errno;
	cl.swap_on = 1;
	return 0;
}

void ks_swapoff(void)
{
	if (!cl.swap_on)
		return;
	if (swapoff(ks_kern.swap_path)) {
		/* Keep it recorded: ks_cleanup() tries again and says so. */
		ks_say(cl.tool);
		ks_say(": swapoff failed; trying again at exit\n");
		return;
	}
	cl.swap_on = 0;
}

int ks_join_cgroup(void)
{
	char path[PATH_MAX + 32], pid[32];

	fmt(path, sizeof(path), "%s/cgroup.procs", ks_kern.cg_path);
	fmt(pid, sizeof(pid), "%d", (int)getpid());
	return ks_write_str(path, pid);
}

uint64_t ks_oom_kills(void)
{
	char buf[512], path[PATH_MAX + 32];

	if (!ks_kern.cg_path[0])
		return 0;
	fmt(path, sizeof(path), "%s/memory.oom_control", ks_kern.cg_path);
	if (ks_read_file(path, buf, sizeof(buf)))
		return 0;
	return ks_kv_get(buf, "oom_kill", 0, NULL);
}

/* ---- Children ---- */

pid_t ks_fork(void)
{
	sigset_t block, old;
	pid_t pid;

	fflush(NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid > 0)
		cl.child = pid;
	if (pid == 0) {
		/* Killed with its parent, even by SIGKILL: no orphan keeps
		 * running in the cgroup or holding the swap file. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != cl.main_pid)
			_exit(1);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

int ks_wait(pid_t pid, int *status, unsigned int timeout, const char *what)
{
	int err = 0;

	if (timeout)
		ks_watchdog(timeout, what);
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR) {
			err = -errno;
			break;
		}
	}
	alarm(0);
	cl.child = 0;
	return err;
}

/* ---- The kernel's compressed swap: zswap, zram ---- */

static int param_set(const char *path, const char *v, const char *what)
{
	char buf[64], *p;
	int err = ks_write_str(path, v);

	if (!err && !ks_read_file(path, buf, sizeof(buf))) {
		if ((p = strchr(buf, '\n')))
			*p = 0;
		/* enabled reads Y for "1"/"y"; the rest read back as written */
		if (strcmp(buf, v) && !(v[0] == 'Y' && buf[0] == 'Y'))
			err = -EINVAL;
	}
	if (err)
		fmt(ks_kern.error, sizeof(ks_kern.error), "cannot set %s to %s (%s)", what, v,
		    strerror(-err));
	return err;
}

int ks_zswap_on(const char *compressor, unsigned int pool_percent, int page_cluster)
{
	char pct[16], pc[16], *p;
	unsigned int i;

	if (!cl.zswap_set) {
		for (i = 0; i < ZSWAP_SAVED; i++) {
			if (ks_read_file(zswap_names[i], zswap_saved[i], sizeof(zswap_saved[i]))) {
				fmt(ks_kern.error, sizeof(ks_kern.error), "no zswap here (%s)",
				    zswap_names[i]);
				return -1;
			}
			if ((p = strchr(zswap_saved[i], '\n')))
				*p = 0;
		}
		cl.zswap_set = 1;
	}
	fmt(pct, sizeof(pct), "%u", pool_percent);
	fmt(pc, sizeof(pc), "%d", page_cluster);
	if (param_set(zswap_names[1], compressor, "compressor") ||
	    param_set(zswap_names[2], pct, "max_pool_percent") ||
	    param_set(zswap_names[3], "Y", "shrinker_enabled") ||
	    (page_cluster >= 0 && param_set(zswap_names[4], pc, "vm.page-cluster")) ||
	    param_set(zswap_names[0], "Y", "enabled")) {
		zswap_restore();
		return -1;
	}
	return 0;
}

void ks_zswap_off(void)
{
	sigset_t all, old;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	zswap_restore();
	sigprocmask(SIG_SETMASK, &old, NULL);
}

const char *ks_zram_dev(void)
{
	return cl.zram_on ? zram_dev : "";
}

const char *ks_zram_sys(void)
{
	return cl.zram_made ? zram_sys : "";
}

int ks_zram_on(const char *alg, size_t disksize, size_t mem_limit)
{
	const char *mkargv[3] = {"mkswap", zram_dev, NULL};
	char path[96], v[32];
	sigset_t all, old;
	long id;
	int i;

	/* A device of our own: hot_add answers its number. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	id = ks_read_long("/sys/class/zram-control/hot_add", -1);
	if (id >= 0) {
		fmt(zram_id, sizeof(zram_id), "%ld", id);
		fmt(zram_dev, sizeof(zram_dev), "/dev/zram%ld", id);
		fmt(zram_sys, sizeof(zram_sys), "/sys/block/zram%ld", id);
		cl.zram_made = 1;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (id < 0) {
		fmt(ks_kern.error, sizeof(ks_kern.error),
		    "no zram here (/sys/class/zram-control/hot_add)");
		return -1;
	}
	fmt(path, sizeof(path), "%s/comp_algorithm", zram_sys);
	if (ks_write_str(path, alg)) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "zram: no compressor %s", alg);
		goto fail;
	}
	fmt(path, sizeof(path), "%s/disksize", zram_sys);
	fmt(v, sizeof(v), "%zu", disksize);
	if (ks_write_str(path, v)) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "zram: disksize %s refused", v);
		goto fail;
	}
	fmt(path, sizeof(path), "%s/mem_limit", zram_sys);
	fmt(v, sizeof(v), "%zu", mem_limit);
	if (ks_write_str(path, v)) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "zram: mem_limit %s refused", v);
		goto fail;
	}
	/* The device node may come a moment after hot_add (udev, devtmpfs). */
	for (i = 0; i < 100 && access(zram_dev, F_OK); i++)
		usleep(10000);
	if (ks_run_cmd(mkargv)) {
		fmt(ks_kern.error, sizeof(ks_kern.error), "mkswap %s failed", zram_dev);
		goto fail;
	}
	sigprocmask(SIG_BLOCK, &all, &old);
	if (!swapon(zram_dev, SWAP_FLAG_PREFER | (32767 & SWAP_FLAG_PRIO_MASK)))
		cl.zram_on = 1;
	else
		fmt(ks_kern.error, sizeof(ks_kern.error), "swapon %s: %s", zram_dev,
		    strerror(errno));
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (!cl.zram_on)
		goto fail;
	return 0;
fail:
	ks_zram_off();
	return -1;
}

void ks_zram_off(void)
{
	sigset_t all, old;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	zram_remove();
	sigprocmask(SIG_SETMASK, &old, NULL);
}
