// SPDX-License-Identifier: MIT
/*
 * libfaultline-run.so: what `faultline run` preloads into an unmodified
 * program.  At load time it creates one space from the FAULTLINE_*
 * variables and from then on serves, with it:
 *
 *   - the heap: malloc and its family go to jemalloc (libjemalloc2), whose
 *     arenas take their memory from the space through extent hooks
 *     (fl_mmap, fl_munmap, and fl_madvise MADV_DONTNEED for purged pages):
 *     run_heap.c;
 *   - the program's own private anonymous mappings: mmap with
 *     MAP_PRIVATE | MAP_ANONYMOUS (not MAP_STACK, MAP_GROWSDOWN,
 *     MAP_HUGETLB, MAP_LOCKED, MAP_32BIT), and munmap, mprotect, madvise
 *     and mremap on them;
 *   - with --files (FAULTLINE_RUN_FILES=1) only, the program's own mappings
 *     of regular files, shared or private, with the flags fl_mmap() takes
 *     for a file (not MAP_POPULATE), and msync on them: a store to a shared
 *     one reaches the file through faultline's page cache and write-back.
 *     Not by default: that cache is not coherent with read(2) and write(2)
 *     of the file, nor with another process's mapping of it, and programs
 *     rely on both (LMDB reads its map and writes with pwrite(); SQLite's
 *     WAL index and POSIX shared memory are mappings other processes
 *     share).  A mapping of a file in memory (tmpfs, /dev/shm, memfd,
 *     ramfs, hugetlbfs) stays with the kernel even then: it is memory
 *     already, and a shared one is there to be shared.
 *
 * What stays with the kernel: the loader's and libc's own mappings (libc
 * calls its internal mmap, which no preload sees), thread stacks (glibc
 * maps them so), shared anonymous memory, mappings of anything but a
 * regular file, and the file mappings fl_mmap() refuses with EINVAL or
 * ENODEV (flags it does not take): those are mapped by the kernel.
 *
 * faultline's own memory never comes from the space: its code is linked in
 * with its mmap, munmap, mprotect, madvise, mremap and sigaction calls
 * renamed to raw system calls (the Makefile's objcopy), and its malloc
 * calls, and those of the libraries it uses, are told apart by a
 * thread-local depth (raw_depth): set around every call into faultline,
 * in the extent hooks, and for good in every thread created while it is
 * set (faultline's handler threads, kswapd, liburcu's call_rcu thread).
 * Those allocations go to a jemalloc arena of their own with the default
 * (kernel) hooks, without the thread cache.
 *
 * fork() gives the child the space (cfg.fork): its heap and mappings as
 * they were, served by its own copy, with its own budget (fork(), below).
 * Refused with a message, since it cannot work: in sigbus delivery a SIGBUS
 * handler of the program's own.  At exit the statistics go to FAULTLINE_RUN_STATS
 * (its name with .PID appended in every process but the one run started).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "faultline.h"
#include "run_preload.h"
#include "run_record.h"

#define SERVED_FLAGS                                                                     \
	(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | \
	 MAP_POPULATE)
/* A file mapping's flags besides its type, as fl_mmap() takes them. */
#define SERVED_FILE_FLAGS (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE)

struct fl_space *sp;
bool ready;
__thread int raw_depth __attribute__((tls_model("initial-exec")));

void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, buf, (size_t)n) < 0)
		return;
}

/* The kernel's calls, as the renamed library calls them (and the program's
 * calls that faultline does not serve). */
EXPORT void *fl_raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

EXPORT int fl_raw_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

EXPORT int fl_raw_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

EXPORT int fl_raw_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

EXPORT void *fl_raw_mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	va_list ap;

	va_start(ap, flags);
	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
		new_addr = va_arg(ap, void *);
	va_end(ap);
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

/* fl_fork()'s own fork(): libc's, with its atfork handlers. */
EXPORT pid_t fl_raw_fork(void)
{
	static pid_t (*real_fork)(void);

	if (!real_fork)
		real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
	return real_fork();
}

EXPORT int fl_raw_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!real_sigaction)
		real_sigaction = dlsym(RTLD_NEXT, "sigaction");
	return real_sigaction(sig, act, old);
}

/* ---- the program's own anonymous mappings ---------------------------- */

/* Whether faultline serves addr.  In a raw section: the lookup's RCU read
 * lock registers a new thread with liburcu, whose registry grows by mmap and
 * mremap, which must go to the kernel (here they came back, and the thread
 * waited for the registry lock it held). */
static bool served(const void *addr)
{
	bool ret;

	if (!sp || raw())
		return false;
	enter();
	ret = space_has_addr(sp, (unsigned long)addr);
	leave();
	return ret;
}

/* The huge page size of a hugetlb mapping (MAP_HUGETLB, or a file of
 * hugetlbfs), or 0 for any other. */
static unsigned long huge_size(int flags, int fd)
{
	struct statfs f;

	if (flags & MAP_HUGETLB) {
		int shift = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;

		return shift ? 1UL << shift : 2UL << 20; /* x86-64's default */
	}
	if (!(flags & MAP_ANONYMOUS) && !fstatfs(fd, &f) && f.f_type == HUGETLBFS_MAGIC)
		return (unsigned long)f.f_bsize;
	return 0;
}

/*
 * A MAP_FIXED mmap() that faultline does not serve, over [addr, addr + len)
 * of which it serves a part: made elsewhere first (the same call without
 * MAP_FIXED, nor MAP_32BIT, which MAP_FIXED ignores), so that what the
 * kernel refuses it for (a bad descriptor or offset, the file's own mmap's
 * ENODEV, a noexec mount) it refuses with the served memory still there,
 * as it would have kept it; then that part leaves the space and the
 * mapping moves there (mremap(MREMAP_FIXED) replaces what is left, as
 * MAP_FIXED does).  Made in place after that part has left, as before:
 * where there is no room for a second copy (ENOMEM: the address space, a
 * limit), a hugetlb mapping (its alignment checked first), a mapping the
 * kernel will not move.  Context: the program's call, not in faultline.
 */
static void *mmap_fixed_over(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	unsigned long huge = huge_size(flags, fd);
	void *probe = MAP_FAILED, *p;

	if (huge && ((uintptr_t)addr & (huge - 1))) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (!huge) {
		probe = fl_raw_mmap(NULL, len, prot, flags & ~(MAP_FIXED | MAP_32BIT), fd, off);
		if (probe == MAP_FAILED && errno != ENOMEM)
			return MAP_FAILED;
	}
	enter();
	fl_munmap(sp, addr, len);
	leave();
	if (probe != MAP_FAILED) {
		p = fl_raw_mremap(probe, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr);
		if (p != MAP_FAILED)
			return p;
		fl_raw_munmap(probe, len);
	}
	return fl_raw_mmap(addr, len, prot, flags, fd, off);
}

/* --files: the program's file mappings are served (FAULTLINE_RUN_FILES=1). */
static bool serve_files;

/* Whether fd is a file of a file system in memory, whose mappings are the
 * kernel's: nothing to page from, and its shared ones are there to share
 * memory with other processes. */
static bool in_memory(int fd)
{
	struct statfs f;

	if (fstatfs(fd, &f))
		return false;
	return f.f_type == TMPFS_MAGIC || f.f_type == RAMFS_MAGIC || f.f_type == HUGETLBFS_MAGIC;
}

static void *mmap_(void *addr, size_t len, int prot, int flags, int fd, off_t off, bool *kernel)
{
	void *p;

	if (sp && !raw() && (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	    !(flags & ~SERVED_FLAGS)) {
		enter();
		p = fl_mmap(sp, addr, len, prot, flags, -1, 0);
		leave();
		return p;
	}
	if (sp && !raw() && serve_files && !(flags & MAP_ANONYMOUS) && fd >= 0 &&
	    ((flags & MAP_TYPE) == MAP_SHARED || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE ||
	     (flags & MAP_TYPE) == MAP_PRIVATE) &&
	    !(flags & ~(MAP_TYPE | SERVED_FILE_FLAGS)) && !in_memory(fd)) {
		/* A file: faultline's if fl_mmap() takes it.  EINVAL and
		 * ENODEV are what it says of a mapping it does not serve (not
		 * a regular file, flags it lacks): the kernel maps that. */
		int err;

		enter();
		p = fl_mmap(sp, addr, len, prot, flags, fd, off);
		err = errno;
		leave();
		if (p != MAP_FAILED || (err != EINVAL && err != ENODEV)) {
			errno = err;
			return p;
		}
	}
	*kernel = true;
	if (sp && !raw() && (flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE)) {
		unsigned long start = (unsigned long)addr, end, e;
		bool in;

		end = start + ((len + RUN_PAGE - 1) & ~(RUN_PAGE - 1));
		if (!(start & (RUN_PAGE - 1)) && end > start) {
			enter(); /* the lookup's RCU registration: served() */
			e = space_run_end(sp, start, end, &in);
			leave();
			if (in || e != end)
				return mmap_fixed_over(addr, end - start, prot, flags, fd, off);
		}
	}
	return fl_raw_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	bool kernel = false, program = sp && !raw();
	void *p = mmap_(addr, len, prot, flags, fd, off, &kernel);

	if (rec_on && program && p != MAP_FAILED) {
		int err = errno;

		enter();
		rec_mm(REC_MMAP, kernel ? REC_KERNEL : REC_SERVED, p, len, prot, flags,
		       flags & MAP_ANONYMOUS ? -1 : fd, off, NULL, 0);
		leave();
		errno = err;
	}
	return p;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

/* The runs of [start, end) that are not the space's go to the kernel. */
static int munmap_foreign(unsigned long start, unsigned long end)
{
	unsigned long a = start;

	while (a < end) {
		unsigned long b = a;

		while (b < end && !space_has_addr(sp, b))
			b += RUN_PAGE;
		if (b > a && fl_raw_munmap((void *)a, b - a))
			return -1;
		while (b < end && space_has_addr(sp, b))
			b += RUN_PAGE;
		a = b;
	}
	return 0;
}

EXPORT int munmap(void *addr, size_t len)
{
	unsigned long start = (unsigned long)addr,
		      end = start + ((len + RUN_PAGE - 1) & ~(RUN_PAGE - 1));
	int ret;

	if (!sp || raw() || (start & (RUN_PAGE - 1)) || !len || end < start)
		return fl_raw_munmap(addr, len);
	enter();
	if (rec_on)
		rec_mm(REC_MUNMAP, space_has_addr(sp, start) ? REC_SERVED : REC_KERNEL, addr, len,
		       0, 0, -1, 0, NULL, 0);
	/* A large range of which faultline has nothing: one call. */
	if (end - start > (64UL << 20) && !space_has_addr(sp, start)) {
		ret = fl_munmap(sp, addr, len);
		leave();
		return ret ? ret : fl_raw_munmap(addr, len);
	}
	ret = munmap_foreign(start, end);
	if (!ret)
		ret = fl_munmap(sp, addr, len);
	leave();
	return ret;
}

/*
 * The page-aligned range [addr, addr + len) that mprotect(), madvise() and msync()
 * split into runs of memory faultline serves and the kernel's, or false
 * (not aligned, empty, wrapping, or no space: the caller's first
 * address decides, as before).
 */
static bool split_range(const void *addr, size_t len, unsigned long *start, unsigned long *end)
{
	*start = (unsigned long)addr;
	*end = *start + ((len + RUN_PAGE - 1) & ~(RUN_PAGE - 1));
	return sp && !raw() && !(*start & (RUN_PAGE - 1)) && len && *end > *start;
}

/*
 * Each run of the range to faultline or the kernel, in address order, as
 * the kernel walks its VMAs: the first error ends it (ENOMEM for a hole
 * included, after what came before it was changed).
 */
EXPORT int mprotect(void *addr, size_t len, int prot)
{
	unsigned long start, end;
	int ret = 0;

	if (!split_range(addr, len, &start, &end)) {
		if (!served(addr))
			return fl_raw_mprotect(addr, len, prot);
		enter();
		ret = fl_mprotect(sp, addr, len, prot);
		leave();
		return ret;
	}
	enter();
	for (unsigned long a = start, b; a < end && !ret; a = b) {
		bool in;

		b = space_run_end(sp, a, end, &in);
		ret = in ? fl_mprotect(sp, (void *)a, b - a, prot)
			 : fl_raw_mprotect((void *)a, b - a, prot);
		if (rec_on && !ret)
			rec_mm(REC_MPROTECT, in ? REC_SERVED : REC_KERNEL, (void *)a, b - a, prot,
			       0, -1, 0, NULL, 0);
	}
	leave();
	return ret;
}

/* madvise() of a run faultline serves.  Context: in a raw section. */
static int madvise_served(void *addr, size_t len, int advice)
{
	if (rec_on)
		rec_mm(REC_MADVISE, REC_SERVED, addr, len, 0, advice, -1, 0, NULL, 0);
	switch (advice) {
	case MADV_FREE: /* reading zeros afterwards is one of its outcomes */
		/* The kernel frees anonymous memory only. */
		if (space_range_has_file(sp, (unsigned long)addr, (unsigned long)addr + len)) {
			errno = EINVAL;
			return -1;
		}
		advice = MADV_DONTNEED;
		break;
	case MADV_HUGEPAGE:
	case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP:
	case MADV_DODUMP:
	case MADV_MERGEABLE:
	case MADV_UNMERGEABLE:
	case 22:	  /* MADV_POPULATE_READ */
	case 23:	  /* MADV_POPULATE_WRITE */
		return 0; /* hints that do not change what the memory holds */
	}
	return fl_madvise(sp, addr, len, advice);
}

/*
 * Each run of the range to faultline or the kernel, in address order: a
 * hole (ENOMEM) does not stop the rest, as the kernel's madvise() goes on
 * past one and says so at the end; another error does.
 */
EXPORT int madvise(void *addr, size_t len, int advice)
{
	unsigned long start, end;
	int ret = 0, hole = 0;

	if (!split_range(addr, len, &start, &end)) {
		if (!served(addr))
			return fl_raw_madvise(addr, len, advice);
		enter();
		ret = madvise_served(addr, len, advice);
		leave();
		return ret;
	}
	enter();
	for (unsigned long a = start, b; a < end; a = b) {
		bool in;

		b = space_run_end(sp, a, end, &in);
		if (in) {
			ret = madvise_served((void *)a, b - a, advice);
		} else {
			ret = fl_raw_madvise((void *)a, b - a, advice);
			if (rec_on && !ret)
				rec_mm(REC_MADVISE, REC_KERNEL, (void *)a, b - a, 0, advice, -1, 0,
				       NULL, 0);
		}
		if (ret && errno != ENOMEM)
			break;
		hole |= ret;
		ret = 0;
	}
	leave();
	if (!ret && hole) {
		errno = ENOMEM;
		ret = -1;
	}
	return ret;
}

/*
 * Each run of the range to faultline or the kernel, in address order, as
 * mm/msync.c walks its VMAs: a hole (ENOMEM) ends MS_ASYNC at once and
 * anything else at the end, after the rest was written; another error (a
 * write-back's, with MS_SYNC) ends it.  Sent whole by its first page, a
 * served shared file mapping behind kernel memory was not written back,
 * and MS_SYNC said 0.
 */
EXPORT int msync(void *addr, size_t len, int flags)
{
	unsigned long start, end;
	int ret = 0, hole = 0;

	if (!split_range(addr, len, &start, &end)) {
		if (!served(addr))
			return (int)syscall(SYS_msync, addr, len, flags);
		enter();
		ret = fl_msync(sp, addr, len, flags);
		leave();
		return ret;
	}
	enter();
	for (unsigned long a = start, b; a < end; a = b) {
		bool in;

		b = space_run_end(sp, a, end, &in);
		ret = in ? fl_msync(sp, (void *)a, b - a, flags)
			 : (int)syscall(SYS_msync, (void *)a, b - a, flags);
		if (ret && (errno != ENOMEM || flags == MS_ASYNC))
			break;
		hole |= ret;
		ret = 0;
	}
	leave();
	if (!ret && hole) {
		errno = ENOMEM;
		ret = -1;
	}
	return ret;
}

/*
 * The errors the kernel gives mremap(MREMAP_FIXED) before it changes
 * anything that can be told beforehand: unaligned addresses, an empty new
 * length, MREMAP_FIXED without MREMAP_MAYMOVE, overlapping ranges,
 * MREMAP_DONTUNMAP with a new length (EINVAL); nothing mapped at the old
 * address (EFAULT).  Return: the errno, or 0.
 */
static int remap_fixed_refused(const void *old, size_t old_len, size_t new_len, int flags,
			       const void *new_addr)
{
	unsigned long o = (unsigned long)old, n = (unsigned long)new_addr, mask = RUN_PAGE - 1;
	unsigned long ol = (old_len + mask) & ~mask, nl = (new_len + mask) & ~mask;
	unsigned char v;

	if ((o & mask) || (n & mask) || !nl || !(flags & MREMAP_MAYMOVE) ||
	    (n < o + ol && o < n + nl) || ((flags & MREMAP_DONTUNMAP) && ol != nl))
		return EINVAL;
	if (mincore((void *)o, RUN_PAGE, &v) && errno == ENOMEM)
		return EFAULT;
	return 0;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL, *p;
	va_list ap;

	va_start(ap, flags);
	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
		new_addr = va_arg(ap, void *);
	va_end(ap);
	if (!served(old)) {
		unsigned long n = (unsigned long)new_addr,
			      e = n + ((new_len + RUN_PAGE - 1) & ~(RUN_PAGE - 1)), r;
		bool in;

		if ((flags & MREMAP_FIXED) && sp && !raw() && !(n & (RUN_PAGE - 1)) && e > n) {
			enter(); /* the lookup's RCU registration: served() */
			r = space_run_end(sp, n, e, &in);
			leave();
			if (in || r != e) {
				/* The kernel's mapping moves onto memory faultline
				 * serves: that part leaves the space first, unless
				 * the kernel is sure to refuse the move.  (A refusal
				 * only the kernel can tell, a limit's, comes after:
				 * the kernel's own mremap has unmapped the target by
				 * then for most of them.) */
				int err =
					remap_fixed_refused(old, old_len, new_len, flags, new_addr);

				if (err) {
					errno = err;
					return MAP_FAILED;
				}
				enter();
				fl_munmap(sp, new_addr, new_len);
				leave();
			}
		}
		p = fl_raw_mremap(old, old_len, new_len, flags, new_addr);
		if (rec_on && p != MAP_FAILED && sp && !raw()) {
			enter();
			rec_mm(REC_MREMAP, REC_KERNEL, old, old_len, 0, flags, -1, 0, p, new_len);
			leave();
		}
		return p;
	}
	enter();
	p = fl_mremap(sp, old, old_len, new_len, flags, new_addr);
	if (rec_on && p != MAP_FAILED)
		rec_mm(REC_MREMAP, REC_SERVED, old, old_len, 0, flags, -1, 0, p, new_len);
	leave();
	return p;
}

/* The loader's mappings of a library loaded now: for the recording. */
EXPORT void *dlopen(const char *file, int mode)
{
	static void *(*real)(const char *, int);
	void *h;

	if (!real)
		real = dlsym(RTLD_NEXT, "dlopen");
	h = real(file, mode);
	if (rec_on && h) {
		int err = errno;

		enter();
		rec_loader_scan();
		leave();
		errno = err;
	}
	return h;
}

/* ---- threads, fork, signals ------------------------------------------ */

struct start {
	void *(*fn)(void *);
	void *arg;
	int depth;
};

static void *thread_start(void *v)
{
	struct start s = *(struct start *)v;

	raw_depth = s.depth;
	heap_raw_free(v);
	if (!s.depth && ready)
		heap_bind_thread();
	return s.fn(s.arg);
}

/*
 * A thread created from inside faultline is faultline's: raw for good.  A
 * thread of the program gets its hooked arena.
 */
EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	struct start *s;
	int ret;

	if (!real)
		real = dlsym(RTLD_NEXT, "pthread_create");
	s = heap_raw_alloc(sizeof(*s));
	if (!s)
		return EAGAIN;
	*s = (struct start){fn, arg, raw_depth ? 1 : 0};
	ret = real(t, attr, thread_start, s);
	if (ret)
		heap_raw_free(s);
	return ret;
}

/*
 * fork(): the child gets the space (cfg.fork, set at load), the program's
 * heap and mappings as they were, served by its own copy with its own
 * budget.  The hooks are kept out of the space first (heap_fork_prepare()), and those
 * in flight waited for, holding nothing; then fl_fork(), which fails with
 * errno where the space cannot be given to the child (a file mapping, a
 * store that cannot be copied) rather than give it a child without its
 * heap.  A child that could not set the space up (fl_fork_child's log says
 * why) exits with 125 before the program goes on in it.
 */
EXPORT pid_t fork(void)
{
	struct fl_stats st;
	pid_t pid;
	int err;

	if (!sp)
		return (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	heap_fork_prepare();
	enter();
	pid = fl_fork();
	err = errno;
	if (pid == 0) {
		if (fl_stats(sp, &st)) {
			say("faultline run: the child of fork() could not be given the program's "
			    "memory (see the message above); it exits with 125");
			_exit(125);
		}
		heap_fork_child();
	}
	leave();
	heap_fork_done();
	errno = err;
	return pid;
}

static bool sigbus_delivery;
/* A copy of stderr taken at load, for --stats -: the program may close its
 * stderr before exit (coreutils' close_stdout() does). */
static int stats_fd = -1;

static void refuse_sigbus(void)
{
	say("faultline run: the program installs its own SIGBUS handler, which cannot share "
	    "SIGBUS with faultline's sigbus delivery; run it with --delivery thread");
	_exit(125);
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sp && sigbus_delivery && sig == SIGBUS && act && act->sa_handler != SIG_DFL &&
	    act->sa_handler != SIG_IGN)
		refuse_sigbus();
	return fl_raw_sigaction(sig, act, old);
}

EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa = {.sa_handler = handler, .sa_flags = SA_RESTART}, old;

	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old))
		return SIG_ERR;
	return old.sa_handler;
}

/* ---- load and exit --------------------------------------------------- */

static void die(const char *what, int err)
{
	say("faultline run: %s: %s", what, strerror(err));
	_exit(125);
}

static unsigned long peak_rss_kib(void)
{
	char buf[4096], *p;
	unsigned long kib = 0;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strstr(buf, "VmHWM:");
	if (p)
		kib = strtoul(p + 6, NULL, 10);
	return kib;
}

void run_out_path(char *buf, size_t n, const char *path)
{
	const char *top = getenv("FAULTLINE_RUN_PID");

	if (top && *top && strtol(top, NULL, 10) != (long)getpid())
		snprintf(buf, n, "%s.%d", path, (int)getpid());
	else
		snprintf(buf, n, "%s", path);
}

__attribute__((destructor)) static void run_exit(void)
{
	const char *path = getenv("FAULTLINE_RUN_STATS");
	bool json = getenv("FAULTLINE_RUN_JSON") && !strcmp(getenv("FAULTLINE_RUN_JSON"), "1");
	char file[PATH_MAX];
	FILE *out;

	if (rec_on) {
		enter();
		rec_finish();
		leave();
	}
	if (!sp || !path || !*path)
		return;
	enter();
	run_out_path(file, sizeof(file), path);
	out = strcmp(path, "-") ? fopen(file, "w") : stats_fd >= 0 ? fdopen(stats_fd, "w") : NULL;
	if (!out) {
		say("faultline run: cannot write the statistics to %s: %s", file, strerror(errno));
		leave();
		return;
	}
	if (json) {
		fprintf(out,
			"{\"pid\": %d, \"peak_rss_bytes\": %lu, \"faultline\": ", (int)getpid(),
			peak_rss_kib() * 1024);
		fflush(out);
		fl_stats_print(sp, out, FL_STATS_JSON);
		fprintf(out, "}\n");
	} else {
		fprintf(out, "faultline run: pid %d, peak resident size %lu KiB\n", (int)getpid(),
			peak_rss_kib());
		fl_stats_print(sp, out, 0);
	}
	fclose(out);
	leave();
}

__attribute__((constructor(101))) static void run_init(void)
{
	struct fl_config cfg;
	int ret;

	enter();
	if (fl_config_init(&cfg))
		die("configuration", EINVAL);
	sigbus_delivery = cfg.delivery == FL_DELIVERY_SIGBUS;
	serve_files = getenv("FAULTLINE_RUN_FILES") && !strcmp(getenv("FAULTLINE_RUN_FILES"), "1");
	cfg.fork = 1; /* a child of fork() gets the heap (fork(), above) */
	stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	ret = fl_space_create(&cfg, &sp);
	if (ret) {
		sp = NULL;
		die("creating the space (see the message above, and FAULTLINE_* in the README)",
		    -ret);
	}
	/* The programs this one runs make spaces of their own: on a
	 * temporary store each, not on this one's (which is locked). */
	unsetenv("FAULTLINE_SWAP");
	unsetenv("FAULTLINE_SWAP_CREATE");
	rec_init(sp); /* faultline run --record: from the first extent on */
	if (!heap_init())
		die("jemalloc: the arenas (faultline's own, and the program's with the extent "
		    "hooks)",
		    ENOMEM);
	ready = true;
	heap_bind_thread(); /* the main thread's */
	leave();
}
