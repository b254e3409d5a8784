// SPDX-License-Identifier: MIT
/*
 * test_sigbus_log: in sigbus delivery a store read error is logged by the
 * faulting thread, inside faultline's SIGBUS handler (its own swap-in), so
 * that log line must be made with async-signal-safe calls only.  This
 * program defines strerror, vsnprintf, snprintf, vfprintf and fprintf
 * itself (the static library's calls bind to them) and counts the calls the
 * faulting thread makes while its access is being served: there must be
 * none.  The line must still be written, whole (stderr is read back).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "pgtable.h"
#include "space.h"
#include "swapdev.h"

#include "util.h"

#define PG 4096UL
#define NPAGES 256

/* Set while the watched thread's access is in flight. */
static _Thread_local volatile int watching;
static volatile int unsafe_calls;
static const char *volatile unsafe_name;

static void unsafe(const char *name)
{
	if (watching) {
		unsafe_calls++;
		unsafe_name = name;
	}
}

#define NEXT(type, name) ((type)dlsym(RTLD_NEXT, name))

char *(strerror)(int err)
{
	unsafe("strerror");
	return NEXT(char *(*)(int), "strerror")(err);
}

int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	unsafe("vsnprintf");
	return NEXT(int (*)(char *, size_t, const char *, va_list), "vsnprintf")(buf, n, fmt, ap);
}

int snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	unsafe("snprintf");
	va_start(ap, fmt);
	r = NEXT(int (*)(char *, size_t, const char *, va_list), "vsnprintf")(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

int vfprintf(FILE *f, const char *fmt, va_list ap)
{
	unsafe("vfprintf");
	return NEXT(int (*)(FILE *, const char *, va_list), "vfprintf")(f, fmt, ap);
}

int fprintf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	int r;

	unsafe("fprintf");
	va_start(ap, fmt);
	r = NEXT(int (*)(FILE *, const char *, va_list), "vfprintf")(f, fmt, ap);
	va_end(ap);
	return r;
}

static sigjmp_buf jb;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	siglongjmp(jb, 1);
}

static uint64_t pte_at(struct fl_space *sp, const void *a)
{
	struct pt_chunk *c = pt_chunk_lookup(sp, (unsigned long)a);

	return c ? atomic_load(&c->pte[pt_index((unsigned long)a)]) : 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_sigaction = on_bus, .sa_flags = SA_SIGINFO | SA_NODEFER};
	char log[8192], want[128];
	struct fl_config cfg;
	struct fl_stats st;
	struct fl_space *sp;
	int pfd[2], saved_err;
	size_t victim = 77;
	uint64_t pte;
	ssize_t n;
	char *p;

	t_seed_init(argc, argv, "test_sigbus_log");
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction"); /* before the space */
	fl_config_init(&cfg);
	cfg.delivery = FL_DELIVERY_SIGBUS;
	cfg.mem_limit = 64 * PG;
	cfg.verbose = 0;
	sp = t_space_create_cfg(&cfg);
	p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < NPAGES; i++)
		memset(p + i * PG, (int)(i + 1), PG);
	for (int pass = 0; pass < 200; pass++) {
		CHECK(fl_madvise(sp, p, NPAGES * PG, MADV_PAGEOUT) == 0, "pageout");
		CHECK(fl_stats(sp, &st) == 0, "fl_stats");
		if (pte_type(pte_at(sp, p + victim * PG)) == PTE_SWAP)
			break;
		usleep(2000);
	}
	pte = pte_at(sp, p + victim * PG);
	CHECK(pte_type(pte) == PTE_SWAP, "page %zu is not swapped out", victim);
	CHECK(swapdev_inject_error(&sp->dev, pte_value(pte), false, true) == 0, "inject");

	/* stderr into a pipe while the access runs: the log line is read back. */
	CHECK(pipe(pfd) == 0, "pipe");
	fflush(stderr);
	saved_err = dup(2);
	CHECK(saved_err >= 0 && dup2(pfd[1], 2) == 2, "dup2");
	watching = 1;
	if (sigsetjmp(jb, 1) == 0)
		(void)*(volatile char *)(p + victim * PG);
	watching = 0;
	dup2(saved_err, 2);
	close(saved_err);
	close(pfd[1]);
	n = read(pfd[0], log, sizeof(log) - 1);
	close(pfd[0]);
	log[n > 0 ? n : 0] = 0;

	CHECK(unsafe_calls == 0,
	      "the SIGBUS handler called %s (and %d unsafe calls in all) while serving the "
	      "faulting access",
	      unsafe_name, unsafe_calls);
	(snprintf)(want, sizeof(want),
		   "swap read of slot %u of the temporary store failed: %s; the page is "
		   "poisoned",
		   pte_value(pte), strerrordesc_np(EIO));
	CHECK(strstr(log, want), "the log line \"%s\" is not in what was written: \"%s\"", want,
	      log);
	CHECK(fl_stats(sp, &st) == 0 && st.read_errors == 1, "read_errors %llu",
	      (unsigned long long)st.read_errors);
	CHECK(swapdev_inject_error(&sp->dev, pte_value(pte), false, false) == 0, "clear");
	fl_space_destroy(sp);
	printf("test_sigbus_log: the read error was logged from the SIGBUS handler with no "
	       "unsafe call: ok\n");
	return T_EXIT_PASS;
}
