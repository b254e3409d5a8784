// SPDX-License-Identifier: MIT
/*
 * libfaultline-run.so: what `faultline run` preloads into an unmodified
 * program.  At load time it creates one space from the FAULTLINE_*
 * variables and from then on serves, with it:
 *
 *   - the heap: malloc and its family go to jemalloc (libjemalloc2), whose
 *     arenas take their memory from the space through extent hooks
 *     (fl_mmap, fl_munmap, and fl_madvise MADV_DONTNEED for purged pages);
 *   - the program's own private anonymous mappings: mmap with
 *     MAP_PRIVATE | MAP_ANONYMOUS (not MAP_STACK, MAP_GROWSDOWN,
 *     MAP_HUGETLB, MAP_LOCKED, MAP_32BIT), and munmap, mprotect, madvise
 *     and mremap on them;
 *   - the program's own mappings of regular files, shared or private, with
 *     the flags fl_mmap() takes for a file (not MAP_POPULATE), and msync on
 *     them: a store to a shared one reaches the file through faultline's
 *     page cache and write-back.
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
 * handler of the program's own.  At exit the statistics go to FAULTLINE_RUN_STATS.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#include "faultline.h"
#include "run_record.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define EXPORT __attribute__((visibility("default")))
#define RUN_PAGE 4096UL
#define SERVED_FLAGS                                                                     \
	(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | \
	 MAP_POPULATE)
/* A file mapping's flags besides its type, as fl_mmap() takes them. */
#define SERVED_FILE_FLAGS (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE)
#define RAW_FLAGS (MALLOCX_ARENA(raw_arena) | MALLOCX_TCACHE_NONE)

/* The space, created at load; NULL before, or when faultline is not serving. */
static struct fl_space *sp;
/* The jemalloc arena of faultline's own allocations (kernel memory). */
static unsigned int raw_arena;
/*
 * The arenas of the program's allocations, with the hooks: each thread of
 * the program is bound to one (thread.arena), round robin.  Not arena 0:
 * jemalloc makes every allocation made inside a hook (faultline's, in
 * fl_mmap) from arena 0, which must not take the lock the hook's own
 * allocation holds, or call the hook again: arena 0 keeps the kernel's
 * memory.
 */
#define APP_ARENAS 4
static unsigned int app_arena[APP_ARENAS];
static _Atomic unsigned int next_arena;
/* The hooks are in place: from here the program's allocations are served. */
static bool ready;
/* > 0: this thread is inside faultline (or is one of its threads). */
static __thread int raw_depth __attribute__((tls_model("initial-exec")));

/* faultline's hidden internals, linked in from the library. */
bool space_has_addr(struct fl_space *s, unsigned long addr);

static inline bool raw(void)
{
	return raw_depth > 0 || !ready;
}

static inline void enter(void)
{
	raw_depth++;
}

static inline void leave(void)
{
	raw_depth--;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
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

/* ---- the heap: jemalloc, its memory from the space ------------------- */

/*
 * fork() and the hooks (fork(), below).  forking: the forks being prepared
 * (a count: two threads may fork at once, and faultline runs them one after
 * the other), each from before faultline quiesces the space until fork()
 * returns; hooks_in:
 * hooks running now.  A hook that starts while forking does not call
 * faultline: jemalloc may be holding one of its own locks around it (its
 * extent grow lock around the alloc hook), which its atfork handler takes
 * after faultline's, so a hook waiting for the space's mmap_lock would
 * deadlock the fork.  It takes kernel memory instead (outside the budget,
 * until jemalloc gives it back: dalloc and purge tell it apart by address),
 * or declines (dalloc, purge: jemalloc keeps the extent).
 */
static atomic_int forking;
static _Atomic int hooks_in;

static bool hook_enter(void)
{
	atomic_fetch_add(&hooks_in, 1);
	if (!atomic_load(&forking))
		return true;
	atomic_fetch_sub(&hooks_in, 1);
	return false;
}

static void hook_leave(void)
{
	atomic_fetch_sub(&hooks_in, 1);
}

/* jemalloc's metadata (its base blocks: the arena itself, its mutexes, the
 * extents' descriptors) comes through the alloc hook with huge-page
 * alignment; extents come with page alignment (retain). */
#define BASE_ALIGN (2UL << 20)

/* Kernel memory, aligned as asked. */
static void *kernel_alloc(size_t size, size_t align)
{
	size_t len = size + (align > RUN_PAGE ? align - RUN_PAGE : 0);
	char *p;

	if (len < size)
		return MAP_FAILED;
	p = fl_raw_mmap(NULL, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p != MAP_FAILED && len > size) {
		uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
		if (a > (uintptr_t)p)
			fl_raw_munmap(p, a - (uintptr_t)p);
		if ((uintptr_t)p + len > a + size)
			fl_raw_munmap((void *)(a + size), (uintptr_t)p + len - a - size);
		p = (char *)a;
	}
	return p;
}

static void *hook_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t align, bool *zero,
			bool *commit, unsigned int arena)
{
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	const int prot = PROT_READ | PROT_WRITE;
	size_t len = size;
	char *p;

	(void)h;
	(void)arena;
	if (!new_addr && align == BASE_ALIGN) {
		/* Metadata stays with the kernel: jemalloc's atfork handlers
		 * touch it while the space is quiesced for fork. */
		p = kernel_alloc(size, align);
	} else if (!hook_enter()) {
		p = new_addr ? MAP_FAILED : kernel_alloc(size, align);
	} else {
		enter();
		if (new_addr) {
			p = fl_mmap(sp, new_addr, size, prot, flags | MAP_FIXED_NOREPLACE, -1, 0);
			if (p != MAP_FAILED && p != new_addr) {
				fl_munmap(sp, p, size);
				p = MAP_FAILED;
			}
			if (rec_on && p != MAP_FAILED)
				rec_mm(REC_MMAP, REC_SERVED, p, size, prot,
				       flags | MAP_FIXED_NOREPLACE, -1, 0, NULL, 0);
		} else {
			if (align > RUN_PAGE)
				len = size + align - RUN_PAGE;
			p = len < size ? MAP_FAILED : fl_mmap(sp, NULL, len, prot, flags, -1, 0);
			if (rec_on && p != MAP_FAILED)
				rec_mm(REC_MMAP, REC_SERVED, p, len, prot, flags, -1, 0, NULL, 0);
			if (p != MAP_FAILED && len > size) {
				/* Trim to the alignment asked for. */
				uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
				if (a > (uintptr_t)p && !fl_munmap(sp, p, a - (uintptr_t)p) &&
				    rec_on)
					rec_mm(REC_MUNMAP, REC_SERVED, p, a - (uintptr_t)p, 0, 0,
					       -1, 0, NULL, 0);
				if ((uintptr_t)p + len > a + size &&
				    !fl_munmap(sp, (void *)(a + size),
					       (uintptr_t)p + len - a - size) &&
				    rec_on)
					rec_mm(REC_MUNMAP, REC_SERVED, (void *)(a + size),
					       (uintptr_t)p + len - a - size, 0, 0, -1, 0, NULL, 0);
				p = (char *)a;
			}
		}
		leave();
		hook_leave();
	}
	if (p == MAP_FAILED)
		return NULL;
	*zero = true;
	*commit = true;
	return p;
}

static bool in_space(const void *addr)
{
	return space_has_addr(sp, (unsigned long)addr);
}

static bool hook_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
			unsigned int arena)
{
	int ret;

	(void)h;
	(void)committed;
	(void)arena;
	if (!in_space(addr))
		return fl_raw_munmap(addr, size) != 0;
	if (!hook_enter())
		return true;
	enter();
	ret = fl_munmap(sp, addr, size);
	if (rec_on && !ret)
		rec_mm(REC_MUNMAP, REC_SERVED, addr, size, 0, 0, -1, 0, NULL, 0);
	leave();
	hook_leave();
	return ret != 0;
}

static void hook_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
			 unsigned int arena)
{
	hook_dalloc(h, addr, size, committed, arena);
}

static bool hook_commit(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len,
			unsigned int arena)
{
	return false; /* always committed */
}

static bool hook_decommit(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len,
			  unsigned int arena)
{
	return true; /* not done: jemalloc purges instead */
}

static bool hook_purge_lazy(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len,
			    unsigned int arena)
{
	return true; /* not done: the forced purge below */
}

/* Freed pages go back to the space: their frames and swap slots with them. */
static bool hook_purge_forced(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len,
			      unsigned int arena)
{
	int ret;

	if (!in_space(addr))
		return fl_raw_madvise((char *)addr + off, len, MADV_DONTNEED) != 0;
	if (!hook_enter())
		return true;
	enter();
	ret = fl_madvise(sp, (char *)addr + off, len, MADV_DONTNEED);
	if (rec_on && !ret)
		rec_mm(REC_MADVISE, REC_SERVED, (char *)addr + off, len, 0, MADV_DONTNEED, -1, 0,
		       NULL, 0);
	leave();
	hook_leave();
	return ret != 0;
}

static bool hook_split(extent_hooks_t *h, void *addr, size_t size, size_t a, size_t b,
		       bool committed, unsigned int arena)
{
	return false; /* any part of the space's memory unmaps on its own */
}

/* Two extents merge only if both are the space's or both the kernel's. */
static bool hook_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b, size_t size_b,
		       bool committed, unsigned int arena)
{
	return in_space(addr_a) != in_space(addr_b);
}

static extent_hooks_t hooks = {
	.alloc = hook_alloc,
	.dalloc = hook_dalloc,
	.destroy = hook_destroy,
	.commit = hook_commit,
	.decommit = hook_decommit,
	.purge_lazy = hook_purge_lazy,
	.purge_forced = hook_purge_forced,
	.split = hook_split,
	.merge = hook_merge,
};

/*
 * jemalloc's options: a few arenas (each gets the hooks), virtual memory
 * retained (grown geometrically, few fl_mmap calls), freed pages given
 * back to the space within 200 ms (forced purge: MADV_DONTNEED), so that
 * the budget is not spent, nor the store written, on freed memory.
 */
EXPORT const char *malloc_conf = "retain:true,background_thread:false,"
				 "dirty_decay_ms:200,muzzy_decay_ms:0";

/* Bind the calling thread of the program to one of the hooked arenas. */
static void bind_arena(void)
{
	unsigned int i = app_arena[atomic_fetch_add(&next_arena, 1) % APP_ARENAS];

	enter();
	mallctl("thread.arena", NULL, NULL, &i, sizeof(i));
	leave();
}

static size_t nz(size_t n)
{
	return n ? n : 1;
}

/*
 * Every call into jemalloc runs at a raw depth: what jemalloc maps, unmaps
 * or purges for itself (arena 0, the raw arena, its metadata) goes to the
 * kernel through the interposed calls below, never to the space.  The
 * program's memory comes to it through the hooks only.
 */
static void *je_alloc(size_t n, int flags)
{
	void *p;

	enter();
	p = mallocx(nz(n), flags);
	leave();
	return p;
}

static void je_free(void *p, int flags)
{
	enter();
	dallocx(p, flags);
	leave();
}

EXPORT void *malloc(size_t n)
{
	return je_alloc(n, raw() ? RAW_FLAGS : 0);
}

EXPORT void free(void *p)
{
	if (p)
		je_free(p, raw() ? MALLOCX_TCACHE_NONE : 0);
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return je_alloc(total, MALLOCX_ZERO | (raw() ? RAW_FLAGS : 0));
}

EXPORT void *realloc(void *p, size_t n)
{
	void *q;

	if (!p)
		return malloc(n);
	if (!n) {
		free(p);
		return NULL;
	}
	int flags = raw() ? RAW_FLAGS : 0;

	enter();
	q = rallocx(p, n, flags);
	leave();
	if (!q)
		errno = ENOMEM;
	return q;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

static void *aligned(size_t align, size_t n)
{
	void *p = je_alloc(n, MALLOCX_ALIGN(align) | (raw() ? RAW_FLAGS : 0));

	if (!p)
		errno = ENOMEM;
	return p;
}

static bool pow2(size_t a)
{
	return a && !(a & (a - 1));
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (!pow2(align) || align % sizeof(void *))
		return EINVAL;
	p = aligned(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
	size_t a = 1;

	while (a < align) /* glibc rounds an alignment up to a power of two */
		a <<= 1;
	return aligned(a, n);
}

EXPORT void *valloc(size_t n)
{
	return aligned(RUN_PAGE, n);
}

EXPORT void *pvalloc(size_t n)
{
	return aligned(RUN_PAGE, (n + RUN_PAGE - 1) & ~(RUN_PAGE - 1));
}

EXPORT size_t malloc_usable_size(void *p)
{
	size_t n;

	if (!p)
		return 0;
	enter();
	n = sallocx(p, 0);
	leave();
	return n;
}

/* ---- the program's own anonymous mappings ---------------------------- */

static bool served(const void *addr)
{
	return sp && !raw() && space_has_addr(sp, (unsigned long)addr);
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
	if (sp && !raw() && !(flags & MAP_ANONYMOUS) && fd >= 0 &&
	    ((flags & MAP_TYPE) == MAP_SHARED || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE ||
	     (flags & MAP_TYPE) == MAP_PRIVATE) &&
	    !(flags & ~(MAP_TYPE | SERVED_FILE_FLAGS))) {
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
	if (sp && !raw() && (flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE)) {
		/* A mapping faultline does not serve replaces part of one it
		 * does: that part leaves the space first. */
		enter();
		fl_munmap(sp, addr, len);
		leave();
	}
	*kernel = true;
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

EXPORT int mprotect(void *addr, size_t len, int prot)
{
	int ret;

	if (!served(addr)) {
		ret = fl_raw_mprotect(addr, len, prot);
		if (rec_on && !ret && sp && !raw()) {
			enter();
			rec_mm(REC_MPROTECT, REC_KERNEL, addr, len, prot, 0, -1, 0, NULL, 0);
			leave();
		}
		return ret;
	}
	enter();
	ret = fl_mprotect(sp, addr, len, prot);
	if (rec_on && !ret)
		rec_mm(REC_MPROTECT, REC_SERVED, addr, len, prot, 0, -1, 0, NULL, 0);
	leave();
	return ret;
}

EXPORT int madvise(void *addr, size_t len, int advice)
{
	int ret;

	if (!served(addr)) {
		ret = fl_raw_madvise(addr, len, advice);
		if (rec_on && !ret && sp && !raw()) {
			enter();
			rec_mm(REC_MADVISE, REC_KERNEL, addr, len, 0, advice, -1, 0, NULL, 0);
			leave();
		}
		return ret;
	}
	if (rec_on) {
		enter();
		rec_mm(REC_MADVISE, REC_SERVED, addr, len, 0, advice, -1, 0, NULL, 0);
		leave();
	}
	switch (advice) {
	case MADV_FREE: /* reading zeros afterwards is one of its outcomes */
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
	enter();
	ret = fl_madvise(sp, addr, len, advice);
	leave();
	return ret;
}

EXPORT int msync(void *addr, size_t len, int flags)
{
	int ret;

	if (!served(addr))
		return (int)syscall(SYS_msync, addr, len, flags);
	enter();
	ret = fl_msync(sp, addr, len, flags);
	leave();
	return ret;
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
	je_free(v, MALLOCX_TCACHE_NONE);
	if (!s.depth && ready)
		bind_arena();
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
	s = je_alloc(sizeof(*s), RAW_FLAGS);
	if (!s)
		return EAGAIN;
	*s = (struct start){fn, arg, raw_depth ? 1 : 0};
	ret = real(t, attr, thread_start, s);
	if (ret)
		je_free(s, MALLOCX_TCACHE_NONE);
	return ret;
}

/*
 * fork(): the child gets the space (cfg.fork, set at load), the program's
 * heap and mappings as they were, served by its own copy with its own
 * budget.  The hooks are kept out of the space first (forking), and those
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
	atomic_fetch_add(&forking, 1);
	while (atomic_load(&hooks_in))
		sched_yield();
	enter();
	pid = fl_fork();
	err = errno;
	if (pid == 0) {
		if (fl_stats(sp, &st)) {
			say("faultline run: the child of fork() could not be given the program's "
			    "memory (see the message above); it exits with 125");
			_exit(125);
		}
		/* The parent's other forkers and hooks in flight are not in the
		 * child: only this fork is. */
		atomic_store(&forking, 1);
		atomic_store(&hooks_in, 0);
	}
	leave();
	atomic_fetch_sub(&forking, 1);
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

__attribute__((destructor)) static void run_exit(void)
{
	const char *path = getenv("FAULTLINE_RUN_STATS");
	bool json = getenv("FAULTLINE_RUN_JSON") && !strcmp(getenv("FAULTLINE_RUN_JSON"), "1");
	FILE *out;

	if (rec_on) {
		enter();
		rec_finish();
		leave();
	}
	if (!sp || !path || !*path)
		return;
	enter();
	out = strcmp(path, "-") ? fopen(path, "w") : stats_fd >= 0 ? fdopen(stats_fd, "w") : NULL;
	if (!out) {
		say("faultline run: cannot write the statistics to %s: %s", path, strerror(errno));
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
	size_t sz;
	int ret;

	enter();
	if (fl_config_init(&cfg))
		die("configuration", EINVAL);
	sigbus_delivery = cfg.delivery == FL_DELIVERY_SIGBUS;
	cfg.fork = 1; /* a child of fork() gets the heap (fork(), above) */
	stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	ret = fl_space_create(&cfg, &sp);
	if (ret) {
		sp = NULL;
		die("creating the space (see the message above, and FAULTLINE_* in the README)",
		    -ret);
	}
	rec_init(sp); /* faultline run --record: from the first extent on */
	sz = sizeof(raw_arena);
	if (mallctl("arenas.create", &raw_arena, &sz, NULL, 0))
		die("jemalloc: arenas.create", ENOMEM);
	for (unsigned int i = 0; i < APP_ARENAS; i++) {
		extent_hooks_t *hp = &hooks;

		sz = sizeof(app_arena[i]);
		if (mallctl("arenas.create", &app_arena[i], &sz, &hp, sizeof(hp)))
			die("jemalloc: an arena with the extent hooks", ENOMEM);
	}
	ready = true;
	bind_arena(); /* the main thread's */
	leave();
}
