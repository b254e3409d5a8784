/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the tests: a seeded PRNG, CHECK, page size, the
 * exit codes and the skip rule, statistics, fork and wait.  Include after <faultline.h>, with
 * _GNU_SOURCE defined before any system header.
 *
 * The skip rule: a test skips (exit 77) only for a cause it has checked and
 * names, never for an error code alone.  fl_space_create() says -EPERM both
 * when userfaultfd is refused to this process and when io_uring (the swap
 * store) is, and a bug can return it too; so on a failure the cause is
 * looked for where the kernel decides it (t_uffd_refused(),
 * t_io_uring_refused()), and a failure without one is the test's failure.
 */
#ifndef FL_TEST_UTIL_H
#define FL_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

/* Built with ThreadSanitizer (gcc says so one way, clang another). */
#if defined(__SANITIZE_THREAD__)
#define T_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_UNDER_TSAN 1
#endif
#endif
#ifndef T_UNDER_TSAN
#define T_UNDER_TSAN 0
#endif

/* Built with AddressSanitizer or ThreadSanitizer: every step several times
 * slower; some integration tests run fewer cases there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define T_SANITIZED 1
#endif
#endif
#ifndef T_SANITIZED
#define T_SANITIZED 0
#endif

/* The seed of the run, printed by CHECK on failure. */
static inline uint64_t *t_seed_ptr(void)
{
	static uint64_t seed;

	return &seed;
}

#define CHECK(cond, ...)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK(%s) failed, seed %" PRIu64 ": ", __FILE__, \
				__LINE__, #cond, *t_seed_ptr());                                 \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
			exit(T_EXIT_FAIL);                                                       \
		}                                                                                \
	} while (0)

/* splitmix64: seeds the generator and derives per-run seeds. */
static inline uint64_t t_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* xorshift64*: never zero once seeded through splitmix. */
struct t_rng {
	uint64_t s;
};

static inline void t_rng_init(struct t_rng *r, uint64_t seed)
{
	uint64_t x = seed;

	r->s = t_splitmix64(&x);
	if (!r->s)
		r->s = 1;
}

static inline uint64_t t_rand(struct t_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t t_below(struct t_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)t_rand(r) * n) >> 64);
}

/* True with probability pct/100. */
static inline int t_chance(struct t_rng *r, unsigned int pct)
{
	return t_below(r, 100) < pct;
}

/*
 * The seed comes from argv[1], else $FL_SEED, else the clock; it is printed
 * so that any run can be repeated.  Also makes stdout line-buffered.
 */
static inline uint64_t t_seed_init(int argc, char **argv, const char *name)
{
	const char *s = argc > 1 ? argv[1] : getenv("FL_SEED");
	uint64_t seed;

	/* Whatever was printed must survive a timeout's kill. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (s && *s) {
		seed = strtoull(s, NULL, 0);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 32);
	}
	*t_seed_ptr() = seed;
	printf("%s: seed %" PRIu64 " (repeat with: %s %" PRIu64 ")\n", name, seed, argv[0], seed);
	fflush(stdout);
	return seed;
}

/* Seconds on the monotonic clock. */
static inline double t_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The mappings of [lo, hi) in /proc/self/maps: how many, and the bytes of
 * them writable (rw-p) and inaccessible (---p).
 */
static inline unsigned int t_maps_of(uintptr_t lo, uintptr_t hi, size_t *rw, size_t *none)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], perms[8];
	unsigned long a, b;
	unsigned int n = 0;

	CHECK(f, "/proc/self/maps: %s", strerror(errno));
	*rw = *none = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3 || b <= lo || a >= hi)
			continue;
		a = a > lo ? a : lo;
		b = b < hi ? b : hi;
		n++;
		if (!strcmp(perms, "rw-p"))
			*rw += b - a;
		else if (!strcmp(perms, "---p"))
			*none += b - a;
	}
	fclose(f);
	return n;
}

/* FL_SOAK=1 asks for longer runs. */
static inline int t_soak(void)
{
	const char *s = getenv("FL_SOAK");

	return s && *s && strcmp(s, "0") != 0;
}

static inline size_t t_page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

static inline const char *t_delivery_name(int delivery)
{
	return delivery == FL_DELIVERY_SIGBUS ? "sigbus" : "thread";
}

static inline struct fl_stats t_stats(struct fl_space *sp)
{
	struct fl_stats st;

	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	return st;
}

/*
 * A write-back held in flight: fl_msync(MS_ASYNC) of [p, p + len) in a
 * thread of its own, whose writer keeps the pages locked and under
 * write-back, its write not started, for hold_ms (fl_test_writeback_delay_us,
 * src/writeback.h).  t_held_writeback_start() returns once the pages are
 * under write-back; t_held_writeback_join() waits for the call and returns
 * its result.
 */
extern _Atomic unsigned int fl_test_writeback_delay_us;

struct t_held_writeback {
	struct fl_space *sp;
	void *p;
	size_t len;
	int ret;
	pthread_t th;
};

static inline void *t_held_writeback_main(void *arg)
{
	struct t_held_writeback *w = arg;

	w->ret = fl_msync(w->sp, w->p, w->len, MS_ASYNC);
	return NULL;
}

static inline void t_held_writeback_start(struct t_held_writeback *w, unsigned int hold_ms)
{
	atomic_store(&fl_test_writeback_delay_us, hold_ms * 1000);
	CHECK(pthread_create(&w->th, NULL, t_held_writeback_main, w) == 0, "pthread_create");
	/* The write-back takes the delay (and clears it) after it counts
	 * the pages under write-back: cleared here, it could be lost. */
	for (int i = 0; !t_stats(w->sp).file_writeback; i++) {
		CHECK(i < 10000, "the write-back never started");
		usleep(1000);
	}
}

static inline int t_held_writeback_join(struct t_held_writeback *w)
{
	CHECK(pthread_join(w->th, NULL) == 0, "pthread_join");
	atomic_store(&fl_test_writeback_delay_us, 0);
	return w->ret;
}

/* fork(), stdio flushed first: nothing buffered is written twice.  Return: 0
 * in the child, the child's pid in the parent. */
static inline pid_t t_fork(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	return pid;
}

/* Return: the wait status of child pid, once it has ended. */
static inline int t_wait(pid_t pid)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	return status;
}

/*
 * A child's output, then its end: read the pipe fd into buf (len bytes at
 * most, NUL-terminated; the rest is drained so that the child never blocks
 * on a full pipe), close it and reap pid.  Return: the child's exit status,
 * or 128 + the signal that killed it, as a shell says.
 */
static inline int t_collect(int fd, pid_t pid, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int status;

	while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	while (read(fd, (char[256]){0}, 256) > 0)
		;
	close(fd);
	status = t_wait(pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* The first line of a /proc/sys file as a number, or def if it cannot be read. */
static inline long t_sysctl(const char *path, long def)
{
	FILE *f = fopen(path, "re");
	long v = def;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = def;
		fclose(f);
	}
	return v;
}

/* Whether capability cap is in this process's effective set (/proc/self/status). */
static inline int t_has_cap(int cap)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long eff = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return (int)((eff >> cap) & 1);
}

/* A capability counts for the kernel's capable() only in the initial user namespace. */
static inline int t_in_init_userns(void)
{
	FILE *f = fopen("/proc/self/uid_map", "re");
	unsigned long inside, outside, count;
	int init = 0;

	if (f) {
		init = fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == 0 &&
		       outside == 0 && count == 4294967295UL;
		fclose(f);
	}
	return init;
}

#define T_CAP_SYS_PTRACE 19
#define T_CAP_SYS_ADMIN 21

/*
 * What the system call that makes fd for a kernel feature (call, err its
 * errno) says on its own of whether the feature is refused: not if fd is
 * one (it is closed here), nor if the call failed for another reason than
 * ENOSYS or EPERM (no cause to name); ENOSYS: the feature is not built in,
 * the cause written in buf.  Return: true with *cause the answer (NULL:
 * none), or false for EPERM, which only the kernel's rule for the feature
 * explains.
 */
static inline bool t_refusal_settled(int fd, int err, const char *feature, const char *call,
				     char *buf, size_t size, const char **cause)
{
	*cause = NULL;
	if (fd >= 0) {
		close(fd);
		return true;
	}
	if (err == ENOSYS) {
		snprintf(buf, size, "this kernel has no %s (%s: ENOSYS)", feature, call);
		*cause = buf;
		return true;
	}
	return err != EPERM;
}

/*
 * Why this process cannot have a userfaultfd, checked the way the kernel and
 * faultline decide it: the system call refused (ENOSYS: not built in; EPERM:
 * vm.unprivileged_userfaultfd = 0 and no CAP_SYS_PTRACE in the initial user
 * namespace) and, for EPERM, /dev/userfaultfd refused as well.  Return: the
 * cause, written in buf; NULL if userfaultfd is available or refused for no
 * cause named here (which is then not a reason to skip).
 */
static inline const char *t_uffd_refused(char *buf, size_t size)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), dev_err;
	const char *cause;
	long unpriv;

	if (t_refusal_settled(fd, errno, "userfaultfd", "userfaultfd(2)", buf, size, &cause))
		return cause;
	unpriv = t_sysctl("/proc/sys/vm/unprivileged_userfaultfd", -1);
	if (unpriv != 0 || (t_has_cap(T_CAP_SYS_PTRACE) && t_in_init_userns()))
		return NULL; /* the kernel's rule allows it: EPERM is something else */
	fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		int ufd = ioctl(fd, _IO(0xAA, 0x00) /* USERFAULTFD_IOC_NEW */,
				O_CLOEXEC | O_NONBLOCK);

		close(fd);
		if (ufd >= 0)
			close(ufd);
		return NULL; /* the device is open to us: faultline uses it */
	}
	dev_err = errno;
	snprintf(buf, size,
		 "userfaultfd refused to uid %d: vm.unprivileged_userfaultfd = 0 and no "
		 "CAP_SYS_PTRACE%s; /dev/userfaultfd: %s",
		 (int)geteuid(),
		 t_has_cap(T_CAP_SYS_PTRACE) ? " in the initial user namespace" : "",
		 strerror(dev_err));
	return buf;
}

/* Whether gid is this process's effective or a supplementary group. */
static inline int t_in_group(long gid)
{
	gid_t groups[256];
	int n = getgroups(256, groups);

	if ((long)getegid() == gid)
		return 1;
	for (int i = 0; i < n; i++)
		if ((long)groups[i] == gid)
			return 1;
	return 0;
}

/*
 * Why this process cannot use io_uring (the swap store's I/O), checked the
 * way the kernel decides it: io_uring_setup() refused with ENOSYS (not built
 * in) or with EPERM because kernel.io_uring_disabled is 2, or is 1 and the
 * process is neither in kernel.io_uring_group nor has CAP_SYS_ADMIN.
 * Return: the cause, written in buf; NULL if io_uring is available or
 * refused for no cause named here.
 */
static inline const char *t_io_uring_refused(char *buf, size_t size)
{
	/* struct io_uring_params: 120 bytes, all zero for the defaults. */
	uint32_t params[30] = {0};
	int fd = (int)syscall(SYS_io_uring_setup, 1, params);
	const char *cause;
	long disabled, group;

	if (t_refusal_settled(fd, errno, "io_uring", "io_uring_setup(2)", buf, size, &cause))
		return cause;
	disabled = t_sysctl("/proc/sys/kernel/io_uring_disabled", 0);
	group = t_sysctl("/proc/sys/kernel/io_uring_group", -1);
	if (disabled == 2) {
		snprintf(buf, size, "io_uring is disabled: kernel.io_uring_disabled = 2");
		return buf;
	}
	if (disabled == 1 && !(group >= 0 && t_in_group(group)) &&
	    !(t_has_cap(T_CAP_SYS_ADMIN) && t_in_init_userns())) {
		snprintf(buf, size,
			 "io_uring refused to uid %d: kernel.io_uring_disabled = 1, not in "
			 "kernel.io_uring_group (%ld) and no CAP_SYS_ADMIN",
			 (int)geteuid(), group);
		return buf;
	}
	return NULL;
}

/* Exit with the skip code, naming the cause (run.sh shows the last line). */
static inline void __attribute__((noreturn)) t_skip(const char *cause)
{
	printf("SKIP: %s\n", cause);
	exit(T_EXIT_SKIP);
}

/* For a test of the store itself: skip if io_uring is refused (t_io_uring_refused()). */
static inline void t_require_io_uring(void)
{
	char why[256];

	if (t_io_uring_refused(why, sizeof(why)))
		t_skip(why);
}

/*
 * fl_space_create() with cfg failed with ret: exit with the skip code if the
 * cause is one the kernel gives for this machine or process (userfaultfd
 * refused; for a space with a budget, io_uring refused), saying which.  Any
 * other failure returns, for the caller to fail the test.
 */
static inline void t_skip_if_refused(int ret, const struct fl_config *cfg)
{
	bool swap = cfg && cfg->mem_limit;
	char why[256];

	if (ret != -EPERM && ret != -ENOSYS)
		return;
	if (t_uffd_refused(why, sizeof(why)) || (swap && t_io_uring_refused(why, sizeof(why))))
		t_skip(why);
	fprintf(stderr,
		"fl_space_create: %s, yet the kernel's settings refuse this process neither "
		"userfaultfd (vm.unprivileged_userfaultfd, CAP_SYS_PTRACE)%s: a failure, not a "
		"skip\n",
		strerror(-ret), swap ? " nor io_uring (kernel.io_uring_disabled)" : "");
}

/*
 * A space with the given delivery mode and otherwise the defaults.  Exits
 * with the skip code only when this kernel or this process is refused what
 * the space needs (t_skip_if_refused()); any other failure fails the test.
 */
static inline struct fl_space *t_space_create_cfg(struct fl_config *cfg)
{
	struct fl_space *sp = NULL;
	int ret = fl_space_create(cfg, &sp);

	if (ret)
		t_skip_if_refused(ret, cfg);
	CHECK(ret == 0 && sp, "fl_space_create(delivery %s): %d (%s)",
	      t_delivery_name(cfg->delivery), ret, ret < 0 ? strerror(-ret) : "no space");
	return sp;
}

static inline struct fl_space *t_space_create(int delivery)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	return t_space_create_cfg(&cfg);
}

/*
 * An access that is expected to get SIGBUS (past the end of a mapped file, a
 * poisoned page): t_sigbus_install() installs the handler (before any space
 * with sigbus delivery, which then forwards what is not its own to it), and
 * t_load_sigbus() loads a byte and says whether that gave SIGBUS.
 */
static sigjmp_buf t_sigbus_jb;
static volatile sig_atomic_t t_sigbus_got;

static inline void t_sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	t_sigbus_got = 1;
	siglongjmp(t_sigbus_jb, 1);
}

static inline void t_sigbus_install(void)
{
	struct sigaction sa = {.sa_sigaction = t_sigbus_handler,
			       .sa_flags = SA_SIGINFO | SA_NODEFER};

	CHECK(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
}

static inline bool t_load_sigbus(const volatile unsigned char *p, unsigned char *v)
{
	t_sigbus_got = 0;
	if (!sigsetjmp(t_sigbus_jb, 1))
		*v = *p;
	return t_sigbus_got;
}

/* A thread's share of a fresh region: pages pages of 4 KiB at base. */
struct t_toucher {
	char *base;
	size_t pages;
	uint64_t tag;
};

/*
 * A thread body (arg: a struct t_toucher): check that every page of a fresh
 * region reads zero at both ends, write tag ^ index into it, then check
 * that every page kept what was written.
 */
static inline void *t_touch_new(void *arg)
{
	struct t_toucher *t = arg;

	for (size_t i = 0; i < t->pages; i++) {
		uint64_t *w = (uint64_t *)(t->base + i * 4096);
		CHECK(w[0] == 0 && w[4096 / 8 - 1] == 0, "page %zu of a new region is not zero", i);
		w[1] = t->tag ^ i;
	}
	for (size_t i = 0; i < t->pages; i++)
		CHECK(((uint64_t *)(t->base + i * 4096))[1] == (t->tag ^ i),
		      "page %zu lost its write", i);
	return NULL;
}

#endif /* FL_TEST_UTIL_H */
