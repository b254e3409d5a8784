/* SPDX-License-Identifier: MIT */
/*
 * kside: what the benchmark tools (swapbench, the lab) need to run the real
 * kernel side by side, and to leave the machine as they found it.
 *
 *   - a swap file in a given directory (mkswap; enabled only while a kernel
 *     run is in progress), a cgroup v1 memory cgroup with the budget;
 *   - the kernel's counters (/proc/vmstat);
 *   - children forked for the runs, killed on interruption;
 *   - cleanup of all of it from atexit, from the signal handlers (SIGINT,
 *     SIGTERM, SIGHUP, SIGQUIT and the crashes) and from the watchdog
 *     (SIGALRM), with async-signal-safe system calls only.
 *
 * Single-threaded use from the tool's main thread; children call only
 * ks_join_cgroup().
 */
#ifndef FL_KSIDE_H
#define FL_KSIDE_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define KS_CG_ROOT "/sys/fs/cgroup/memory"

/* snprintf, out of reach of -Wformat-truncation: truncation is acceptable here. */
__attribute__((format(printf, 3, 4))) static inline int fmt(char *buf, size_t len, const char *f,
							    ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	return n;
}

/* Small file helpers.  Return: 0 or -errno (read_long: dflt on failure). */
int ks_read_file(const char *path, char *buf, size_t len);
long ks_read_long(const char *path, long dflt);
int ks_write_str(const char *path, const char *s);
/* "name value" lines (vmstat, memory.stat): the value of name, or dflt. */
uint64_t ks_kv_get(const char *buf, const char *name, uint64_t dflt, bool *found);
/* The kernel's swap and fault counters in /proc/vmstat: the whole machine's. */
struct ks_vmstat {
	uint64_t pswpin, pswpout, pgmajfault, swap_ra, swap_ra_hit, refault_anon;
	uint64_t vma_lock[4]; /* vma_lock_success, _abort, _retry, _miss */
	bool has_vma_lock;    /* they are there (CONFIG_PER_VMA_LOCK_STATS) */
};
/* Return: 0, or -errno with *v zeroed. */
int ks_read_vmstat(struct ks_vmstat *v);
/* Run a command, its output to /dev/null unless verbose.  Return: 0 if it exited 0. */
int ks_run_cmd(const char *const argv[]);
/* write(2) to stderr: async-signal-safe. */
void ks_say(const char *s);

/*
 * Record the main process, install the signal handlers and atexit(ks_cleanup).
 * Call before creating any faultline space: in sigbus delivery faultline
 * keeps the SIGBUS handler found for the SIGBUS that are not its own.
 */
void ks_init(const char *tool, bool verbose);
/* Undo everything: kill the child, remove the cgroup, swapoff, unlink. */
void ks_cleanup(void);
/* Have ks_cleanup() unlink path too (at most KS_MAX_UNLINK).  Return: 0 or -ENOSPC. */
#define KS_MAX_UNLINK 4
int ks_unlink_at_cleanup(const char *path);

/* The watchdog: after secs seconds, say what was running, clean up, exit 3. */
void ks_watchdog(unsigned int secs, const char *what);

/* The kernel side, as prepared. */
struct ks_kernel {
	bool prepared, failed;
	char error[200];
	long vm_swappiness, cg_swappiness, page_cluster;
	bool memsw;
	char zswap[16];
	char other_swaps[256];
	char swap_path[PATH_MAX];
	char cg_path[PATH_MAX];
	size_t swapfile, budget;
	bool has_vma_lock_stats; /* /proc/vmstat has vma_lock_* */
};
extern struct ks_kernel ks_kern;

/*
 * Create the swap file (swapfile bytes, in dir; mkswap; one trial swapon;
 * none if swapfile is 0: the kernel side then has no swap) and
 * the memory cgroup limited to budget.  swappiness < 0 leaves the cgroup's
 * own.  Return: 0, or -1 with ks_kern.error set (and ks_kern.failed: later
 * calls fail at once).
 */
int ks_kernel_prepare(const char *dir, size_t swapfile, size_t budget, int swappiness);
/* Change the cgroup's limit (between runs, the cgroup empty).  Return: 0 or -errno. */
int ks_set_budget(size_t budget);
/* Enable / disable the swap file around a kernel run.  Return: 0 or -errno. */
int ks_swapon(void);
void ks_swapoff(void);
/*
 * The kernel's compressed swap, around a kernel run (root).  zswap: its
 * parameters (enabled, compressor, max_pool_percent, shrinker_enabled) and
 * vm.page-cluster (page_cluster; -1 leaves it) saved, set, and put back by
 * ks_zswap_off() or ks_cleanup(); its shrinker on (shrinker_enabled):
 * memory pressure writes the pool back to the swap file.  Swap readahead
 * (vm.page-cluster) reads the neighbours of every miss out of the pool into
 * the swap cache: with 8 pages a miss, random reads filled a small v1 group
 * with them and its OOM killer killed the child in every run (page-cluster 0
 * did not).  zram: a device of our own
 * (hot_add), comp_algorithm, disksize, mem_limit (0: none), mkswap, swapon
 * at the highest priority; ks_zram_off() or ks_cleanup() switch it off,
 * reset it and hot_remove it.  Return: 0 or -1 with ks_kern.error set.
 */
int ks_zswap_on(const char *compressor, unsigned int pool_percent, int page_cluster);
void ks_zswap_off(void);
int ks_zram_on(const char *alg, size_t disksize, size_t mem_limit);
void ks_zram_off(void);
/* The zram device while on ("/dev/zramN", its sysfs directory), or "". */
const char *ks_zram_dev(void);
const char *ks_zram_sys(void);
/* In a child: move this process into the cgroup.  Return: 0 or -errno. */
int ks_join_cgroup(void);
/* The cgroup's OOM kills so far. */
uint64_t ks_oom_kills(void);

/*
 * fork() with the quit signals blocked until the child is recorded for
 * ks_cleanup().  Return: as fork().
 */
pid_t ks_fork(void);
/*
 * Wait for the child from ks_fork(), under the watchdog (timeout seconds, 0 =
 * none).  Return: 0 and *status, or -errno.
 */
int ks_wait(pid_t pid, int *status, unsigned int timeout, const char *what);

#endif
