// SPDX-License-Identifier: MIT
/*
 * libfaultline-run.so's heap (see run_preload.c for the whole): malloc and
 * its family go to jemalloc (libjemalloc2), whose arenas take the
 * program's memory from the space through extent hooks (fl_mmap,
 * fl_munmap, and fl_madvise MADV_DONTNEED for purged pages).  faultline's
 * own allocations, told apart by the thread's raw depth (run_preload.h),
 * go to an arena of their own with the default (kernel) hooks, without the
 * thread cache.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include <jemalloc/jemalloc.h>

#include "faultline.h"
#include "run_preload.h"
#include "run_record.h"

#define RAW_FLAGS (MALLOCX_ARENA(raw_arena) | MALLOCX_TCACHE_NONE)

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

/*
 * fork() and the hooks (fork() in run_preload.c).  forking: the forks being prepared
 * (a count: two threads may fork at once, and faultline runs them one after
 * the other), each from before faultline quiesces the space until fork()
 * returns; hooks_in:
 * hooks running now.  A hook that starts while forking does not call
 * faultline: jemalloc may be holding one of its own locks around it (its
 * extent grow lock around the alloc hook), which its atfork handler takes
 * after faultline's, so a hook waiting for the space's mmap_lock would
 * deadlock the fork.  It takes kernel memory instead (outside the budget:
 * jemalloc keeps and reuses it, and its purge tells it apart by address),
 * or declines (purge: the pages stay).
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

/*
 * No dalloc hook: jemalloc keeps every extent it was given (retain), and
 * gives its freed pages back through the forced purge below.  With one,
 * jemalloc 5.3 (Debian's libjemalloc2) dies of a NULL dereference in
 * mallocx() once threads bound to the hooked arenas come and go (about the
 * 50th thread made and joined in turn, git commit, Python threads): the
 * same options, hooks and thread.arena binding crash it with no faultline
 * in the process, and without the dalloc hook they do not.  destroy (an
 * arena destroyed: never, for these) unmaps.
 */
static void hook_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
			 unsigned int arena)
{
	(void)h;
	(void)committed;
	(void)arena;
	if (!in_space(addr)) {
		fl_raw_munmap(addr, size);
		return;
	}
	if (!hook_enter())
		return;
	enter();
	if (!fl_munmap(sp, addr, size) && rec_on)
		rec_mm(REC_MUNMAP, REC_SERVED, addr, size, 0, 0, -1, 0, NULL, 0);
	leave();
	hook_leave();
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
	.dalloc = NULL, /* hook_destroy() says why */
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
void heap_bind_thread(void)
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

void *heap_raw_alloc(size_t n)
{
	return je_alloc(n, RAW_FLAGS);
}

void heap_raw_free(void *p)
{
	je_free(p, MALLOCX_TCACHE_NONE);
}

void heap_fork_prepare(void)
{
	atomic_fetch_add(&forking, 1);
	while (atomic_load(&hooks_in))
		sched_yield();
}

void heap_fork_child(void)
{
	/* The parent's other forkers and hooks in flight are not in the
	 * child: only this fork is. */
	atomic_store(&forking, 1);
	atomic_store(&hooks_in, 0);
}

void heap_fork_done(void)
{
	atomic_fetch_sub(&forking, 1);
}

bool heap_init(void)
{
	size_t sz = sizeof(raw_arena);

	if (mallctl("arenas.create", &raw_arena, &sz, NULL, 0))
		return false;
	for (unsigned int i = 0; i < APP_ARENAS; i++) {
		extent_hooks_t *hp = &hooks;

		sz = sizeof(app_arena[i]);
		if (mallctl("arenas.create", &app_arena[i], &sz, &hp, sizeof(hp)))
			return false;
	}
	return true;
}
