// SPDX-License-Identifier: MIT
/*
 * bare: the bare userfaultfd anchor (see bare.h).
 */
#define _GNU_SOURCE
#include "bare.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* The region in sigbus delivery, for the signal handler. */
static struct bare *volatile sigbus_bare;
/* The calling thread's serving context in sigbus delivery. */
static _Thread_local struct bare_ctx *my_ctx;

/* Append s to buf (len bytes, NUL-terminated), as it fits.  Async-signal-safe. */
static void cat_str(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);

	while (*s && n + 1 < len)
		buf[n++] = *s++;
	buf[n] = 0;
}

/* Append v in decimal.  Async-signal-safe. */
static void cat_u64(char *buf, size_t len, uint64_t v)
{
	char d[24], *p = d + sizeof(d) - 1;

	*p = 0;
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	cat_str(buf, len, p);
}

void bare_fatal(struct bare *b, const char *what, int err, uintptr_t addr)
{
	static atomic_flag once = ATOMIC_FLAG_INIT;
	char buf[320] = "\n";

	if (atomic_flag_test_and_set(&once))
		for (;;)
			pause();
	cat_str(buf, sizeof(buf), b->cfg.tool);
	cat_str(buf, sizeof(buf), ": BARE ANCHOR FAILED (uffd-");
	cat_str(buf, sizeof(buf), b->cfg.sigbus ? "sigbus): " : "thread): ");
	cat_str(buf, sizeof(buf), what);
	cat_str(buf, sizeof(buf), ": errno ");
	cat_u64(buf, sizeof(buf), (uint64_t)err);
	if (addr) {
		cat_str(buf, sizeof(buf), ", page ");
		cat_u64(buf, sizeof(buf), (addr - b->start) / b->page);
		cat_str(buf, sizeof(buf), " of the region");
	}
	cat_str(buf, sizeof(buf), "\n");
	cat_str(buf, sizeof(buf), b->cfg.tool);
	cat_str(buf, sizeof(buf), ": ABORTING\n");
	if (write(2, buf, strlen(buf)) < 0)
		_exit(2);
	if (b->cfg.cleanup)
		b->cfg.cleanup();
	_exit(2);
}

/* One writer per counter: a plain load and store, no locked instruction. */
static inline void count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/*
 * Serve the miss on the page at addr: its contents from the tool, copied in
 * (or the zero page).  EEXIST (the page is already there: wake whoever waits
 * for it) and EAGAIN (retry) are handled; anything else is fatal.
 * Async-signal-safe.
 */
static void serve(struct bare_ctx *c, uintptr_t addr, bool write)
{
	struct bare *b = c->b;
	const void *src = b->cfg.contents(b, addr, write, c->buf);
	/* In sigbus delivery nobody sleeps on the fault. */
	bool wake = !b->cfg.sigbus;
	int rc;

	for (;;) {
		if (src) {
			struct uffdio_copy cp = {
				.dst = addr,
				.src = (uintptr_t)src,
				.len = b->page,
				.mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE,
			};

			rc = ioctl(b->uffd, UFFDIO_COPY, &cp);
		} else {
			struct uffdio_zeropage z = {
				.range = {.start = addr, .len = b->page},
				.mode = wake ? 0 : UFFDIO_ZEROPAGE_MODE_DONTWAKE,
			};

			rc = ioctl(b->uffd, UFFDIO_ZEROPAGE, &z);
		}
		if (!rc) {
			count(&c->copies);
			return;
		}
		if (errno == EEXIST) {
			struct uffdio_range r = {.start = addr, .len = b->page};

			count(&c->exist);
			if (wake)
				ioctl(b->uffd, UFFDIO_WAKE, &r);
			return;
		}
		if (errno != EAGAIN)
			bare_fatal(b, src ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE", errno, addr);
	}
}

/* A handler thread of the thread delivery. */
static void *handler_main(void *arg)
{
	struct bare_ctx *c = arg;
	struct bare *b = c->b;
	struct uffd_msg msg;
	ssize_t n;

	if (b->cfg.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(b->cfg.cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	for (;;) {
		n = read(b->uffd, &msg, sizeof(msg));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n != (ssize_t)sizeof(msg))
			bare_fatal(b, "read of the userfaultfd", n < 0 ? errno : EIO, 0);
		if (msg.event == UFFD_EVENT_PAGEFAULT)
			serve(c, (uintptr_t)msg.arg.pagefault.address & ~(uintptr_t)(b->page - 1),
			      msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	}
	return NULL;
}

/* The sigbus delivery: the faulting thread serves its own miss. */
static void sigbus_handler(int sig, siginfo_t *si, void *ucv)
{
	struct bare *b = sigbus_bare;
	struct bare_ctx *c = my_ctx;
	uintptr_t addr = (uintptr_t)si->si_addr;
	int saved = errno;
	bool write = true; /* unknown: a private copy serves a load as well */

#if defined(__x86_64__)
	/* The page-fault error code says what the access was, as it does for
	 * a library that does not know. */
	write = ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_ERR] & 2;
#else
	(void)ucv;
#endif
	if (b && c && c->b == b && addr >= b->start && addr < b->end)
		serve(c, addr & ~(uintptr_t)(b->page - 1), write);
	else if (b) /* not ours: the action found before takes the repeat */
		sigaction(SIGBUS, &b->old_sa, NULL);
	else
		signal(SIGBUS, SIG_DFL);
	errno = saved;
}

/*
 * A new userfaultfd (O_CLOEXEC, blocking): the system call, with
 * UFFD_USER_MODE_ONLY where kernel-mode faults are refused to this user, else
 * through /dev/userfaultfd.  Return: the descriptor or -errno.
 */
static int uffd_open(void)
{
	int fd, dev;

	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC);
	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd >= 0)
		return fd;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(dev);
	return fd;
}

static void say(char *err, size_t errlen, const char *what, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", e ? strerror(e) : "");
}

int bare_setup(struct bare *b, const struct bare_config *cfg, char *err, size_t errlen)
{
	struct uffdio_api api = {.api = UFFD_API,
				 .features = cfg->sigbus ? UFFD_FEATURE_SIGBUS : 0};
	struct uffdio_register reg;
	struct sigaction sa;
	unsigned int i;
	void *p;
	int ret;

	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->page = (size_t)sysconf(_SC_PAGESIZE);
	b->uffd = -1;
	if (!cfg->threads || cfg->threads > BARE_MAX_THREADS || !cfg->len || cfg->len % b->page) {
		say(err, errlen, "bare_setup", EINVAL);
		return -EINVAL;
	}
	if (posix_memalign((void **)&b->bufs, b->page, cfg->threads * b->page)) {
		b->bufs = NULL;
		say(err, errlen, "out of memory", 0);
		return -ENOMEM;
	}
	for (i = 0; i < cfg->threads; i++) {
		b->ctx[i].b = b;
		b->ctx[i].buf = b->bufs + i * b->page;
	}
	b->uffd = uffd_open();
	if (b->uffd < 0) {
		ret = b->uffd;
		say(err, errlen, "userfaultfd", -ret);
		goto fail;
	}
	if (ioctl(b->uffd, UFFDIO_API, &api)) {
		ret = -errno;
		say(err, errlen, cfg->sigbus ? "UFFDIO_API (UFFD_FEATURE_SIGBUS)" : "UFFDIO_API",
		    errno);
		goto fail;
	}
	/* MAP_NORESERVE: swapbench's region is 4 GiB of address space. */
	p = mmap(NULL, cfg->len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		say(err, errlen, "mmap of the bare region", errno);
		goto fail;
	}
	b->base = p;
	b->start = (uintptr_t)p;
	b->end = b->start + cfg->len;
	/* 4 KiB pages whatever the THP policy: the unit of a miss. */
	madvise(p, cfg->len, MADV_NOHUGEPAGE);
	reg = (struct uffdio_register){
		.range = {.start = b->start, .len = cfg->len},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(b->uffd, UFFDIO_REGISTER, &reg)) {
		ret = -errno;
		say(err, errlen, "UFFDIO_REGISTER", errno);
		goto fail;
	}
	if (!(reg.ioctls & (1ull << _UFFDIO_COPY)) || !(reg.ioctls & (1ull << _UFFDIO_ZEROPAGE))) {
		ret = -ENOTSUP;
		say(err, errlen, "UFFDIO_REGISTER: no UFFDIO_COPY or UFFDIO_ZEROPAGE here", 0);
		goto fail;
	}
	if (cfg->sigbus) {
		/* Borrowed until teardown; faultline's handler (if any) comes back after. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sigbus_handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		sigbus_bare = b;
		sigaction(SIGBUS, &sa, &b->old_sa);
		b->has_sa = true;
		return 0;
	}
	for (i = 0; i < cfg->threads; i++) {
		ret = pthread_create(&b->handlers[i], NULL, handler_main, &b->ctx[i]);
		if (ret) {
			say(err, errlen, "pthread_create", ret);
			ret = -ret;
			goto fail;
		}
		/* by this name a benchmark tells the handlers' CPU time */
		pthread_setname_np(b->handlers[i], "bare-handler");
		b->nhandlers++;
	}
	return 0;

fail:
	bare_teardown(b);
	return ret;
}

void bare_teardown(struct bare *b)
{
	unsigned int i;

	/* They sit in read(), a cancellation point, with nothing held. */
	for (i = 0; i < b->nhandlers; i++)
		pthread_cancel(b->handlers[i]);
	for (i = 0; i < b->nhandlers; i++)
		pthread_join(b->handlers[i], NULL);
	b->nhandlers = 0;
	if (b->has_sa) {
		sigaction(SIGBUS, &b->old_sa, NULL);
		sigbus_bare = NULL;
		b->has_sa = false;
	}
	if (b->base)
		munmap(b->base, b->cfg.len);
	b->base = NULL;
	b->start = b->end = 0;
	if (b->uffd >= 0)
		close(b->uffd);
	b->uffd = -1;
	free(b->bufs);
	b->bufs = NULL;
}

int bare_thread_enter(struct bare *b)
{
	unsigned int i;

	if (!b->cfg.sigbus)
		return 0;
	i = atomic_fetch_add(&b->nctx, 1);
	if (i >= b->cfg.threads)
		return -ENOSPC;
	my_ctx = &b->ctx[i];
	return 0;
}

void bare_thread_exit(void)
{
	my_ctx = NULL;
}

void bare_counts(struct bare *b, uint64_t *copies, uint64_t *exist)
{
	uint64_t c = 0, e = 0;
	unsigned int i;

	for (i = 0; i < b->cfg.threads; i++) {
		c += atomic_load_explicit(&b->ctx[i].copies, memory_order_relaxed);
		e += atomic_load_explicit(&b->ctx[i].exist, memory_order_relaxed);
	}
	if (copies)
		*copies = c;
	if (exist)
		*exist = e;
}
