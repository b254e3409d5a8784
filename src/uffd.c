// SPDX-License-Identifier: MIT
/*
 * The userfaultfd layer: opening and registering, the install ioctls, the
 * answer to a fault faultline forbids, and the SIGBUS handler of sigbus
 * delivery.  The handler threads of thread delivery are in handler.c.
 *
 * Sigbus delivery: UFFD_FEATURE_SIGBUS turns a missing-page fault into
 * SIGBUS (BUS_ADRERR) in the faulting thread, which serves its own fault in
 * the handler below.  A SIGBUS that is not for a space's VMA goes to the
 * handler that was installed before ours.
 */
#include "uffd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "cont.h"
#include "fault.h"
#include "mmap_lock.h"
#include "space.h"
#include "touchlog.h"
#include "uffd_compat.h"

static int uffd_new(int flags)
{
	int fd = (int)syscall(SYS_userfaultfd, flags);

	if (fd >= 0)
		return fd;
	if (errno == EPERM) {
		/* vm.unprivileged_userfaultfd = 0: /dev/userfaultfd may still
		 * be open to us. */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
			close(dev);
			if (fd >= 0)
				return fd;
		}
		errno = EPERM;
	}
	return -errno;
}

static int uffd_api(int fd, uint64_t want, uint64_t *got)
{
	struct uffdio_api api = {.api = UFFD_API, .features = want};

	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	if ((api.features & want) != want)
		return -ENOTSUP;
	if (got)
		*got = api.features;
	return 0;
}

FL_EXPORT int fl_uffd_features(uint64_t *features)
{
	int fd, ret;

	if (!features)
		return -EINVAL;
	fd = uffd_new(O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fd == -ENOSYS ? -ENOSYS : fd;
	ret = uffd_api(fd, 0, features);
	close(fd);
	return ret;
}

/*
 * Context: space creation.  Return: 0 or a negative errno.
 */
int uffd_open(struct fl_space *sp)
{
	uint64_t want = 0, avail = 0;
	int fd, ret;

	if (sp->cfg.delivery == FL_DELIVERY_SIGBUS)
		want |= UFFD_FEATURE_SIGBUS;
	else
		want |= UFFD_FEATURE_THREAD_ID; /* segv_verdict(): whom to tell */
	if (sp->cfg.mem_limit)
		want |= UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_POISON;
	/* File mappings, where this kernel has what they need: minor faults
	 * and write protection on shmem (5.13, 5.19), and poison (6.6).
	 * fl_mremap() moves pages with UFFDIO_MOVE where the kernel has it,
	 * and copies them where it has not. */
	if (!fl_uffd_features(&avail)) {
		if ((avail & UFFD_FEATURES_FILE) == UFFD_FEATURES_FILE)
			want |= UFFD_FEATURES_FILE;
		want |= avail & UFFD_FEATURE_MOVE;
	}
	fd = uffd_new(O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fd;
	ret = uffd_api(fd, want, &sp->uffd_features);
	if (ret) {
		close(fd);
		return ret;
	}
	sp->uffd = fd;
	return 0;
}

/* Whether this space can map files (uffd_open() got the features). */
bool uffd_files_ok(struct fl_space *sp)
{
	return (sp->uffd_features & UFFD_FEATURES_FILE) == UFFD_FEATURES_FILE;
}

/*
 * Context: mmap_lock held for write; the range was just mapped.  file: a
 * mapping of a file's cache (a memfd): missing, minor and write-protect
 * faults, served with UFFDIO_CONTINUE and UFFDIO_COPY.
 */
int uffd_register(struct fl_space *sp, unsigned long start, unsigned long len, bool file)
{
	struct uffdio_register reg = {
		.range = {.start = start, .len = len},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	uint64_t need =
		(1ULL << _UFFDIO_COPY) | (1ULL << _UFFDIO_ZEROPAGE) | (1ULL << _UFFDIO_WAKE);

	if (file) {
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP;
		need = (1ULL << _UFFDIO_COPY) | (1ULL << _UFFDIO_WAKE) |
		       (1ULL << _UFFDIO_CONTINUE) | (1ULL << _UFFDIO_WRITEPROTECT);
	} else if (sp->swap_on) {
		/* With swap, write-protect too: eviction and dirty tracking. */
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
		need |= 1ULL << _UFFDIO_WRITEPROTECT;
	}
	mmap_assert_write_locked(sp);
	if (ioctl(sp->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	if ((reg.ioctls & need) != need)
		return -ENOTSUP;
	return 0;
}

int uffd_wake(struct fl_space *sp, unsigned long start, unsigned long len)
{
	struct uffdio_range r = {.start = start, .len = len};

	return ioctl(sp->uffd, UFFDIO_WAKE, &r) ? -errno : 0;
}

/*
 * UFFDIO_ZEROPAGE over [start, start + len).
 * Return: the bytes mapped from start (all of len, or the part before the
 * page that stopped it); *err is 0, or the errno of that stop.
 */
unsigned long uffd_zeropage(struct fl_space *sp, unsigned long start, unsigned long len, int *err)
{
	struct uffdio_zeropage z = {.range = {.start = start, .len = len}};

	*err = 0;
	if (ioctl(sp->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return len;
	*err = z.zeropage < 0 ? (int)-z.zeropage : errno;
	return z.zeropage > 0 ? (unsigned long)z.zeropage : 0;
}

/* UFFDIO_COPY from src, write-protected with wp; as uffd_zeropage(). */
unsigned long uffd_copy(struct fl_space *sp, unsigned long dst, const void *src, unsigned long len,
			bool wp, int *err)
{
	struct uffdio_copy c = {.dst = dst,
				.src = (unsigned long)src,
				.len = len,
				.mode = wp ? UFFDIO_COPY_MODE_WP : 0};

	*err = 0;
	if (ioctl(sp->uffd, UFFDIO_COPY, &c) == 0)
		return len;
	*err = c.copy < 0 ? (int)-c.copy : errno;
	return c.copy > 0 ? (unsigned long)c.copy : 0;
}

/* UFFDIO_CONTINUE: map the pages the memfd has at [dst, dst + len), write-
 * protected with wp; as uffd_zeropage(). */
unsigned long uffd_continue(struct fl_space *sp, unsigned long dst, unsigned long len, bool wp,
			    int *err)
{
	struct uffdio_continue c = {.range = {.start = dst, .len = len},
				    .mode = wp ? UFFDIO_CONTINUE_MODE_WP : 0};

	*err = 0;
	if (ioctl(sp->uffd, UFFDIO_CONTINUE, &c) == 0)
		return len;
	*err = c.mapped < 0 ? (int)-c.mapped : errno;
	return c.mapped > 0 ? (unsigned long)c.mapped : 0;
}

/*
 * UFFDIO_MOVE of [src, src + len) to dst: the pages themselves change
 * place, no copy (a page the kernel does not have at src is skipped).  The
 * kernel refuses a read-only or PROT_NONE range (EINVAL), a range that
 * spans two of its VMAs (EINVAL), a page shared with another process, such
 * as a child of fork() (EBUSY), and a kernel without it (EINVAL); the
 * caller copies what was not moved.  A moved page is writable at dst, its
 * write protection gone.  Return and *err: as uffd_copy().
 */
unsigned long uffd_move(struct fl_space *sp, unsigned long dst, unsigned long src,
			unsigned long len, int *err)
{
	struct uffdio_move m = {
		.dst = dst, .src = src, .len = len, .mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES};

	*err = 0;
	if (!(sp->uffd_features & UFFD_FEATURE_MOVE)) {
		*err = EINVAL;
		return 0;
	}
	if (ioctl(sp->uffd, UFFDIO_MOVE, &m) == 0)
		return len;
	*err = m.move < 0 ? (int)-m.move : errno;
	return m.move > 0 ? (unsigned long)m.move : 0;
}

/* Write-protect [start, start + len), or lift it (which wakes waiters). */
int uffd_writeprotect(struct fl_space *sp, unsigned long start, unsigned long len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = {.start = start, .len = len},
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(sp->uffd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

/* UFFDIO_POISON: accesses to the range get SIGBUS until it is zapped. */
int uffd_poison(struct fl_space *sp, unsigned long start, unsigned long len)
{
	struct uffdio_poison p = {.range = {.start = start, .len = len}};

	return ioctl(sp->uffd, UFFDIO_POISON, &p) ? -errno : 0;
}

/* ---- is a range still a registered mapping? -------------------------- */

/*
 * Whether [start, start + len) lies inside one VMA that a userfaultfd of
 * this process has registered.  UFFDIO_CONTINUE is the probe, because it
 * changes nothing on such a VMA: on a private anonymous one it fails with
 * EINVAL (it is for shared memory), and with ENOENT if the range is not
 * inside one registered VMA (unmapped, a plain mapping, or several VMAs).
 * Any other answer counts as registered: in doubt, nothing is declared
 * lost.  (A kernel before 5.13, without UFFDIO_CONTINUE, says EINVAL to
 * everything: there only the failures of the calls themselves, such as a
 * zap's ENOMEM, find a lost region.)
 */
static bool uffd_registered(struct fl_space *sp, unsigned long start, unsigned long len)
{
	struct uffdio_continue c = {.range = {.start = start, .len = len},
				    .mode = UFFDIO_CONTINUE_MODE_DONTWAKE};

	return ioctl(sp->uffd, UFFDIO_CONTINUE, &c) == 0 || errno != ENOENT;
}

struct unreg_walk {
	void (*fn)(unsigned long start, unsigned long end, void *arg);
	void *arg;
	unsigned long start, end; /* the run found and not yet reported */
	unsigned long bytes;
};

static void unreg_page(struct unreg_walk *w, unsigned long a)
{
	w->bytes += PAGE_SIZE;
	if (w->end == a) {
		w->end += PAGE_SIZE;
		return;
	}
	if (w->end && w->fn)
		w->fn(w->start, w->end, w->arg);
	w->start = a;
	w->end = a + PAGE_SIZE;
}

/* Halve [s, e) until each part lies inside one registered VMA (the kernel
 * keeps apart VMAs that faultline merges) or is one page that is not. */
static void unreg_split(struct fl_space *sp, struct unreg_walk *w, unsigned long s, unsigned long e)
{
	unsigned long mid;

	if (uffd_registered(sp, s, e - s))
		return;
	if (e - s == PAGE_SIZE) {
		unreg_page(w, s);
		return;
	}
	mid = s + ((e - s) / PAGE_SIZE / 2) * PAGE_SIZE;
	unreg_split(sp, w, s, mid);
	unreg_split(sp, w, mid, e);
}

/*
 * The runs of [start, end) that no userfaultfd of this process has
 * registered any more: a region of the space unmapped, or mapped again by
 * someone else, behind faultline's back.  Each maximal run goes to fn (if
 * not NULL), in address order.  One ioctl when the whole range is one
 * registered kernel VMA; O(k log n) for k boundaries in n pages otherwise.
 * Context: any, the SIGBUS handler too.  Return: the bytes in those runs.
 */
unsigned long uffd_for_each_unregistered(struct fl_space *sp, unsigned long start,
					 unsigned long end,
					 void (*fn)(unsigned long, unsigned long, void *),
					 void *arg)
{
	struct unreg_walk w = {.fn = fn, .arg = arg};

	if (start < end)
		unreg_split(sp, &w, start, end);
	if (w.end && fn)
		fn(w.start, w.end, arg);
	return w.bytes;
}

unsigned long uffd_unregistered_bytes(struct fl_space *sp, unsigned long start, unsigned long end)
{
	return uffd_for_each_unregistered(sp, start, end, NULL, NULL);
}

/* ---- a fault the kernel allows and faultline does not ---------------- */

/*
 * A fault that faultline answers with SIGSEGV (no VMA there, or one that
 * forbids the access) is normally a race with a layout change that the
 * kernel's VMA has already made: the access is retried and the kernel
 * itself gives the SIGSEGV.  If the same thread faults at the same address
 * again with the same answer, the kernel's VMA allows what faultline's does
 * not (the libc mprotect of a region, unsupported): a retry would fault for
 * ever, so the thread gets SIGSEGV from faultline (si_code SI_TKILL, not the
 * kernel's SEGV_ACCERR).  Logged once.  Thread delivery keeps the last
 * answer per thread in the space (segv_verdict(), handler.c), sigbus
 * delivery in segv_addr (sigbus_handler()).  Both answers must come
 * from the same layout (mm_lock_seq unchanged between them): a remembered
 * answer from before an fl_mprotect or fl_munmap says nothing of the new
 * layout, and a thread that met a race there long ago, at the same address,
 * must not be killed for meeting another.
 */
void uffd_segv_log(struct fl_space *sp, pid_t tid, unsigned long addr)
{
	if (!atomic_exchange(&sp->segv_logged, true))
		fl_log("space %p: the kernel lets thread %d access %#lx, which faultline's VMA "
		       "forbids (the libc mprotect of a region?): SIGSEGV (logged once)",
		       (void *)sp, (int)tid, addr);
}

/* ---- sigbus delivery ------------------------------------------------- */

/* The action in place before ours: written once under sigbus_lock, then read
 * by the handler without a lock. */
static struct sigaction old_sigbus;
/* old_sigbus has SA_RESETHAND and has been delivered once: from now on the
 * application's action is the default, as the kernel would have made it. */
static _Atomic bool old_sigbus_spent;
static pthread_mutex_t sigbus_lock = PTHREAD_MUTEX_INITIALIZER;
static bool sigbus_installed, sigbus_debug;
/*
 * The address of this thread's last SIGBUS that no space claimed.  Such a
 * SIGBUS can be ours after all (a fault that raced with a layout change):
 * the access is re-executed once, and forwarded only if it faults again at
 * the same address.
 */
static FL_TLS unsigned long unclaimed_addr;
/* The address of this thread's last fault that faultline answered with
 * SIGSEGV (segv_verdict(), for sigbus delivery). */
static FL_TLS unsigned long segv_addr;
static FL_TLS unsigned int segv_seq; /* mm_lock_seq at that answer */

/*
 * Deliver a SIGBUS that is not ours to the action that was installed before
 * ours, as the kernel would have: a handler runs with the mask of the
 * interrupted code plus its sa_mask, plus SIGBUS unless SA_NODEFER; with
 * SA_RESETHAND the action becomes the default as it is delivered.  What is
 * not emulated: the old handler runs on the stack ours runs on (the
 * alternate signal stack if the thread has one and ours asks for it).
 * Context: the SIGBUS handler.
 */
static void forward_sigbus(int sig, siginfo_t *si, void *ucv)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	struct sigaction act = old_sigbus;
	ucontext_t *uc = ucv;
	sigset_t mask, saved;

	if (act.sa_handler == SIG_DFL || act.sa_handler == SIG_IGN) {
		/* What they are, whatever the flags say. */
		act.sa_flags &= ~SA_SIGINFO;
	} else if ((act.sa_flags & SA_RESETHAND) &&
		   atomic_exchange_explicit(&old_sigbus_spent, true, memory_order_relaxed)) {
		/* Delivered once already: the default action now. */
		act.sa_flags &= ~SA_SIGINFO;
		act.sa_handler = SIG_DFL;
	}
	if (!(act.sa_flags & SA_SIGINFO)) {
		if (act.sa_handler == SIG_IGN && si->si_code <= 0)
			return; /* sent by a process, and ignored before us */
		if (act.sa_handler == SIG_DFL || act.sa_handler == SIG_IGN) {
			/*
			 * Die as we would have without faultline: a fault
			 * re-executes and meets the default action; a signal
			 * sent by a process is sent again (it stays pending
			 * until we return).
			 */
			sigaction(SIGBUS, &dfl, NULL);
			if (si->si_code <= 0)
				raise(SIGBUS);
			return;
		}
	}
	mask = uc->uc_sigmask;
	sigorset(&mask, &mask, &act.sa_mask);
	if (act.sa_flags & SA_NODEFER)
		sigdelset(&mask, sig);
	else
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_SETMASK, &mask, &saved);
	if (act.sa_flags & SA_SIGINFO)
		act.sa_sigaction(sig, si, uc);
	else
		act.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

/* Faults this thread served itself in its SIGBUS handler (fl_thread_faults). */
static FL_TLS uint64_t thread_faults;

FL_EXPORT uint64_t fl_thread_faults(void)
{
	return __atomic_load_n(&thread_faults, __ATOMIC_RELAXED);
}

/*
 * The SIGBUS handler: a userfaultfd fault (BUS_ADRERR) in a space's region
 * is served here, in the faulting thread, holding the space
 * (fault_space_get()) for the whole fault; anything else is forwarded.
 */
static void sigbus_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved_errno = errno;
	unsigned long addr = (unsigned long)si->si_addr;
	struct fl_space *sp;

	if (si->si_code == BUS_ADRERR) {
		unsigned int flags = FAULT_FLAG_SIGBUS;
		bool segv = false;
		unsigned int seq;
		int ret;
#if defined(__x86_64__)
		ucontext_t *uc = ucv;
		/* The page-fault error code: bit 1 set for a write; bit 0 for
		 * a page that is present (write-protected: not a missing page). */
		if (uc->uc_mcontext.gregs[REG_ERR] & 2)
			flags |= FAULT_FLAG_WRITE;
		if (uc->uc_mcontext.gregs[REG_ERR] & 1)
			flags |= FAULT_FLAG_WRITE | FAULT_FLAG_WP;
#endif
		sp = fault_space_get(addr);
		if (sp) {
			unclaimed_addr = 0;
			__atomic_store_n(&thread_faults, thread_faults + 1, __ATOMIC_RELAXED);
			ret = fl_handle_fault(sp, addr, flags);
			seq = atomic_load_explicit(&sp->mmap_lock.mm_lock_seq,
						   memory_order_acquire);
			if (!(ret & VM_FAULT_SIGSEGV)) {
				segv_addr = 0;
			} else if (segv_addr != (addr & PAGE_MASK) || segv_seq != seq) {
				/* a race: retry once in this layout */
				segv_addr = addr & PAGE_MASK;
				segv_seq = seq;
			} else {
				segv_addr = 0;
				segv = true;
				uffd_segv_log(sp, fl_gettid(), addr);
			}
			fault_space_put(sp);
			/* A poisoned page (a failed swap read): the access gets
			 * SIGBUS, as it does without faultline. */
			if (ret & (VM_FAULT_HWPOISON | VM_FAULT_SIGBUS))
				goto forward;
			errno = saved_errno;
			if (segv) {
				/* Sent with nothing held: its handler may not
				 * return.  Not blocked once this one returns, as
				 * the kernel's forced SIGSEGV. */
				sigdelset(&((ucontext_t *)ucv)->uc_sigmask, SIGSEGV);
				syscall(SYS_tgkill, getpid(), fl_gettid(), SIGSEGV);
			}
			return;
		}
		if (fl_handle_foreign_sigbus_slow(addr, flags) == 0) {
			unclaimed_addr = 0;
			errno = saved_errno;
			return;
		}
		if (unclaimed_addr != addr) {
			unclaimed_addr = addr;
			errno = saved_errno;
			return;
		}
		unclaimed_addr = 0;
	}
forward:
	if (sigbus_debug)
		fl_log("SIGBUS not ours: addr %p code %d", si->si_addr, si->si_code);
	errno = saved_errno;
	forward_sigbus(sig, si, ucv);
}

/* fork(): sigbus_lock held across it (fork_prepare(), space.c), made fresh
 * in the child, whose one thread is not its holder's. */
void sigbus_fork_lock(void)
{
	pthread_mutex_lock(&sigbus_lock);
}

void sigbus_fork_unlock(bool child)
{
	fl_mutex_after_fork(&sigbus_lock, child);
}

/*
 * Install the process-wide SIGBUS handler, once; the one in place before is
 * kept and called for SIGBUS that is not ours.
 */
int sigbus_install(void)
{
	struct sigaction sa = {.sa_sigaction = sigbus_handler,
			       .sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK};
	int ret = 0;

	sigemptyset(&sa.sa_mask);
	pthread_mutex_lock(&sigbus_lock);
	if (!sigbus_installed) {
		sigbus_debug = getenv("FAULTLINE_DEBUG_SIGBUS") != NULL;
		if (sigaction(SIGBUS, &sa, &old_sigbus))
			ret = -errno;
		else
			sigbus_installed = true;
	}
	pthread_mutex_unlock(&sigbus_lock);
	return ret;
}
