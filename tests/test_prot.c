// SPDX-License-Identifier: MIT
/*
 * Protection is the kernel's: a store to a PROT_READ page and any access to
 * a PROT_NONE page are SIGSEGV, as with plain mmap, whether the page was
 * touched before or not, in both deliveries; and after fl_mprotect back to
 * read-write the data is still there.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "util.h"

static sigjmp_buf jb;

static void on_segv(int sig)
{
	siglongjmp(jb, 1);
}

/* 1 if the access faulted with SIGSEGV. */
static int segv_on(volatile char *p, int write)
{
	if (sigsetjmp(jb, 1))
		return 1;
	if (write)
		*p = 1;
	else
		(void)*p;
	return 0;
}

static void run(int delivery)
{
	struct fl_space *sp = t_space_create(delivery);
	size_t pg = t_page_size();
	char *p = fl_mmap(sp, NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			  0);

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	memset(p, 0x11, 2 * pg); /* pages 0, 1 touched; the rest not */
	CHECK(fl_mprotect(sp, p, 4 * pg, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	CHECK(fl_mprotect(sp, p + 4 * pg, 4 * pg, PROT_NONE) == 0, "mprotect: %s", strerror(errno));

	CHECK(!segv_on(p, 0) && p[0] == 0x11, "read of a touched PROT_READ page");
	CHECK(!segv_on(p + 3 * pg, 0) && p[3 * pg] == 0, "read of an untouched PROT_READ page");
	CHECK(segv_on(p + pg, 1), "store to a touched PROT_READ page did not fault");
	CHECK(segv_on(p + 2 * pg, 1), "store to an untouched PROT_READ page did not fault");
	CHECK(segv_on(p + 4 * pg, 0), "load from a PROT_NONE page did not fault");
	CHECK(segv_on(p + 5 * pg, 1), "store to a PROT_NONE page did not fault");

	CHECK(fl_mprotect(sp, p, 8 * pg, PROT_READ | PROT_WRITE) == 0, "mprotect: %s",
	      strerror(errno));
	CHECK(!segv_on(p + pg, 1), "store after mprotect RW faulted");
	for (size_t i = 0; i < 2 * pg; i++)
		CHECK(p[i] == (i == pg ? 1 : 0x11), "byte %zu changed across mprotect", i);
	CHECK(!segv_on(p + 6 * pg, 1) && p[6 * pg] == 1, "store to a formerly PROT_NONE page");
	fl_space_destroy(sp);
	printf("%s: ok\n", t_delivery_name(delivery));
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_segv, .sa_flags = SA_NODEFER};

	t_seed_init(argc, argv, "test_prot");
	sigaction(SIGSEGV, &sa, NULL);
	run(FL_DELIVERY_THREAD);
	run(FL_DELIVERY_SIGBUS);
	return T_EXIT_PASS;
}
