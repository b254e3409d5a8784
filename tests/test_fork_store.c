/* SPDX-License-Identifier: MIT */
/*
 * test_fork_store: an encrypted store (FAULTLINE_SWAP_ENCRYPT) given to a
 * child of fork() (cfg.fork).  The nonce of each write is its generation,
 * which parent and child both go on counting from the fork: the child must
 * seal its own writes under a key of its own.  The child checks that a
 * slot it wrote is sealed under a key other than the parent's (the store's
 * key digests, store_key_id()), that the slots it inherited still read back
 * (the parent's key), and that its own writes read back; the parent checks
 * its pages after the child's writes; the parent's key stays locked in
 * memory in the child.  A child given a store of a fixed size, smaller
 * than what it evicts, grows its copy of it.  Both deliveries.  Under
 * ThreadSanitizer the children exit at once (as test_fork_copy).
 */
#define _GNU_SOURCE
#include "space.h"
#include "store.h"
#include "storefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <faultline.h>

#include "util.h"

#if T_UNDER_TSAN
static void tsan_child_exits(void)
{
	_exit(0);
}
#endif

#define NPAGES 256

static size_t ps;

/* AddressSanitizer's and ThreadSanitizer's runtimes make mlock() a no-op
 * (it succeeds and locks nothing): that the keys are locked is checked in
 * the other builds. */
#define KEYS_LOCKED (!T_SANITIZED)

/* The Locked: kB of /proc/self/smaps for the mapping that holds p; -1 if
 * none does.  Async-signal-unsafe: for a child that runs no other thread. */
static long locked_kb(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long a = (unsigned long)p, lo, hi;
	char line[512];
	bool in = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    line[strspn(line, "0123456789abcdef")] == '-')
			in = a >= lo && a < hi;
		else if (in && !strncmp(line, "Locked:", 7))
			kb = atol(line + 7);
	}
	fclose(f);
	return kb;
}

static void run(int delivery)
{
	struct fl_config cfg;
	struct fl_space *sp;
	unsigned char *r, parent_id[16], id[16];
	pid_t pid;
	int st;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.fork = 1;
	cfg.swap_encrypt = 1;
	cfg.mem_limit = 64 * ps;
	sp = t_space_create_cfg(&cfg);
	r = fl_mmap(sp, NULL, NPAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	CHECK(r != MAP_FAILED, "fl_mmap");
	for (size_t p = 0; p < NPAGES; p++)
		memset(r + p * ps, (int)(p + 1), ps);
	CHECK(fl_madvise(sp, r, NPAGES * ps, MADV_PAGEOUT) == 0, "pageout");
	store_key_id(&sp->dev.store, atomic_load(&sp->dev.store.gen), parent_id);
	CHECK(memcmp(parent_id, (unsigned char[16]){0}, 16) != 0, "no key");
	const void *parent_key = sp->dev.store.key;
	CHECK(!KEYS_LOCKED || locked_kb(parent_key) > 0, "the key is not locked in memory");
	pid = t_fork();
	if (pid == 0) {
		uint64_t gen;

		alarm(30);
		/* The parent's key, which reads the inherited slots, locked
		 * here too (mlock is not inherited). */
		if (KEYS_LOCKED && locked_kb(parent_key) <= 0)
			_exit(8);
		/* The inherited pages, under the parent's key. */
		for (size_t p = 0; p < NPAGES / 2; p++)
			if (r[p * ps] != (unsigned char)(p + 1))
				_exit(3);
		/* The child's own writes, evicted and read back. */
		for (size_t p = 0; p < NPAGES / 2; p++)
			memset(r + p * ps, 0xc0 ^ (int)p, ps);
		if (fl_madvise(sp, r, NPAGES * ps, MADV_PAGEOUT))
			_exit(4);
		gen = atomic_load(&sp->dev.store.gen);
		store_key_id(&sp->dev.store, gen, id);
		if (!memcmp(id, parent_id, 16))
			_exit(5); /* the child sealed under the parent's key */
		store_key_id(&sp->dev.store, 1, id);
		if (memcmp(id, parent_id, 16))
			_exit(6); /* the inherited slots' key is not the parent's */
		for (size_t p = 0; p < NPAGES; p++)
			if (r[p * ps] !=
			    (p < NPAGES / 2 ? (unsigned char)(0xc0 ^ p) : (unsigned char)(p + 1)))
				_exit(7);
		_exit(0);
	}
	st = t_wait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child status %#x",
	      t_delivery_name(delivery), st);
	for (size_t p = 0; p < NPAGES; p++)
		CHECK(r[p * ps] == (unsigned char)(p + 1), "parent page %zu", p);
	store_key_id(&sp->dev.store, atomic_load(&sp->dev.store.gen), id);
	CHECK(!memcmp(id, parent_id, 16), "the parent's key changed");
	fl_space_destroy(sp);
	printf("%s: ok%s\n", t_delivery_name(delivery),
	       KEYS_LOCKED ? "" : " (keys locked: not checked, the sanitizer's mlock is a no-op)");
}

/*
 * A store of a fixed size (faultline mkstore PATH SIZE), smaller than the
 * region: the child's copy of it grows, and the child writes and evicts
 * more pages than the parent's store has slots: each reads back (the copy's
 * table of checksums grew with it; the child aborted before).
 */
static void run_fixed(int delivery)
{
	enum { SLOTS = 64 };
	char path[] = "/var/tmp/fl-fork-fixed-XXXXXX";
	struct fl_config cfg;
	struct fl_space *sp;
	unsigned char *r;
	pid_t pid;
	int st, fd = mkstemp(path);

	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	close(fd);
	CHECK(unlink(path) == 0, "unlink");
	CHECK(store_format(path, (uint64_t)(SLOTS + 1) * ps, 0, NULL) == 0, "store_format");
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.fork = 1;
	cfg.mem_limit = 64 * ps;
	cfg.swap_path = path;
	sp = t_space_create_cfg(&cfg);
	CHECK(!sp->dev.grows && sp->dev.nr_slots == SLOTS, "a store of %d slots: %lu, grows %d",
	      SLOTS, sp->dev.nr_slots, sp->dev.grows);
	r = fl_mmap(sp, NULL, NPAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	CHECK(r != MAP_FAILED, "fl_mmap");
	for (size_t p = 0; p < NPAGES; p++)
		memset(r + p * ps, (int)(p + 1), ps);
	fl_madvise(sp, r, NPAGES * ps, MADV_PAGEOUT); /* as far as the slots go */
	pid = t_fork();
	if (pid == 0) {
		alarm(30);
		for (size_t p = 0; p < NPAGES; p++)
			memset(r + p * ps, 0x80 ^ (int)p, ps);
		if (fl_madvise(sp, r, NPAGES * ps, MADV_PAGEOUT))
			_exit(4);
		if (sp->dev.nr_slots <= SLOTS)
			_exit(5); /* its copy did not grow */
		for (size_t p = 0; p < NPAGES; p++)
			if (r[p * ps] != (unsigned char)(0x80 ^ p) ||
			    r[p * ps + ps - 1] != (unsigned char)(0x80 ^ p))
				_exit(6);
		_exit(0);
	}
	st = t_wait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s, a store of fixed size: child status %#x",
	      t_delivery_name(delivery), st);
	for (size_t p = 0; p < NPAGES; p++)
		CHECK(r[p * ps] == (unsigned char)(p + 1), "parent page %zu", p);
	fl_space_destroy(sp);
	unlink(path);
	printf("%s, a store of fixed size: ok\n", t_delivery_name(delivery));
}

int main(int argc, char **argv)
{
	t_seed_init(argc, argv, "test_fork_store");
	ps = t_page_size();
	t_require_io_uring();
#if T_UNDER_TSAN
	CHECK(pthread_atfork(NULL, NULL, tsan_child_exits) == 0, "pthread_atfork");
#endif
	run(FL_DELIVERY_THREAD);
	run(FL_DELIVERY_SIGBUS);
	run_fixed(FL_DELIVERY_THREAD);
	run_fixed(FL_DELIVERY_SIGBUS);
	printf("test_fork_store: ok\n");
	return 0;
}
