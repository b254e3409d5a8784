/* SPDX-License-Identifier: MIT */
/*
 * test_diff: the four mm calls, differentially against the kernel.
 *
 * Two arenas of NPAGES pages at fixed, far-apart addresses: N holds native
 * memory (mmap, munmap, mprotect, madvise), F holds faultline memory (fl_*
 * on one space).  The same random operations go to both at the same page
 * offsets.  After every operation the return value and errno must be equal,
 * and so must the per-page protection of the two arenas as the kernel shows
 * it in /proc/self/maps (faultline's mappings are real mappings: the
 * kernel's view of F is authoritative); fl_maps() must agree with it, and
 * fl_stats() too (mapped_bytes, and vmas against the lines fl_maps()
 * printed).  The native side is raw system calls.  Every CHECK_EVERY
 * operations and at the end of a run, every readable page of N must hold the
 * same bytes as its twin in F (a random "read" operation compares one page
 * at once): an untouched F page is a fault that faultline serves with zeros.
 *
 * What faultline documents as different is not compared with the kernel:
 * shared, file, MAP_GROWSDOWN, MAP_HUGETLB, MAP_LOCKED and other flags
 * outside the list in faultline.h, and madvise advice other than
 * MADV_DONTNEED, MADV_NORMAL, MADV_WILLNEED, MADV_COLD and MADV_PAGEOUT.
 * For those, faultline must fail with EINVAL and change nothing (the next
 * state comparison checks the latter).  VMA boundaries are not compared
 * either: faultline merges adjacent VMAs more eagerly than the kernel, so
 * only per-page protection is.
 *
 * Runs alternate the delivery mode (thread, sigbus), and every other pair
 * runs without fault-around.  The master seed (argv[1] or FL_SEED) derives
 * one seed per run; FL_RUN=i repeats run i alone, FL_OPS=n sets the
 * operations per run, FL_TRACE=1 prints each operation before it runs.
 * FL_SOAK=1 does 200 runs of 3000.  A failure prints the operation, both
 * results and the last few operations; a crash or a hang (no progress for
 * WATCHDOG_S seconds) prints the operation in progress.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#include "util.h"

#define NPAGES 512
#define CHECK_EVERY 50
#define HISTORY 16
#define WATCHDOG_S 30 /* per operation and its checks, even under a sanitizer */

#define PROT_RWX (PROT_READ | PROT_WRITE | PROT_EXEC)

enum op_kind {
	OP_MMAP,
	OP_MUNMAP,
	OP_MPROTECT,
	OP_MADVISE,
	OP_WRITE,
	OP_READ,
};

/* How the length of an operation is formed on each side. */
enum len_mode {
	LEN_PLAIN, /* op->len as is */
	LEN_WRAP,  /* addr + len wraps around to one page past zero */
};

struct op {
	enum op_kind kind;
	/* A documented difference: faultline must say EINVAL, the kernel is not asked. */
	bool fl_only;
	size_t off; /* from the arena base, maybe unaligned */
	size_t len;
	enum len_mode len_mode;
	int prot;
	int flags;
	int advice;
	size_t npages; /* OP_WRITE: pages written */
};

/* An outcome: the offset a mapping landed at, or one of these. */
#define RES_FAIL (-1L)
#define RES_ELSEWHERE (-2L) /* mapped outside the arena: the hint was not taken */

struct res {
	long ret;
	int err;
};

static size_t ps;
static size_t arena_len;
static char *base_n, *base_f;
static struct fl_space *sp;

static int run_idx;
static uint64_t run_seed;
static int run_delivery;
static long op_idx;

/* Per page: the protection, or -1 if unmapped.  N and F from /proc/self/maps, L from fl_maps(). */
static int st_n[NPAGES], st_f[NPAGES], st_l[NPAGES];

/* The context of the operation in progress, for the fatal-signal handler and failure reports. */
static char op_desc[512];
static char history[HISTORY][600];
static long history_n;

static unsigned char *wbuf;
static bool trace; /* FL_TRACE=1: print every operation before it runs */

/* Outcomes per kind, to show what a run covered: [kind][0 ok, 1 failed in both, 2 fl-only]. */
static long tally[OP_READ + 1][3];

static char *maps_buf;
static size_t maps_cap;

static const char *prot_str(int prot, char *buf)
{
	if (prot < 0)
		return strcpy(buf, "unmapped");
	snprintf(buf, 16, "%c%c%c%s", prot & PROT_READ ? 'r' : '-', prot & PROT_WRITE ? 'w' : '-',
		 prot & PROT_EXEC ? 'x' : '-', prot & ~PROT_RWX ? "+bad" : "");
	return buf;
}

static void flags_str(int flags, char *buf, size_t size)
{
	static const struct {
		int bit;
		const char *name;
	} names[] = {
		{MAP_SHARED, "SHARED"},
		{MAP_PRIVATE, "PRIVATE"},
		{MAP_ANONYMOUS, "ANON"},
		{MAP_FIXED, "FIXED"},
		{MAP_FIXED_NOREPLACE, "NOREPLACE"},
		{MAP_NORESERVE, "NORESERVE"},
		{MAP_POPULATE, "POPULATE"},
		{MAP_STACK, "STACK"},
		{MAP_GROWSDOWN, "GROWSDOWN"},
		{MAP_HUGETLB, "HUGETLB"},
		{MAP_LOCKED, "LOCKED"},
		{MAP_NONBLOCK, "NONBLOCK"},
		{MAP_32BIT, "32BIT"},
	};
	size_t n = 0;
	int rest = flags;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((flags & names[i].bit) == names[i].bit && names[i].bit) {
			n += snprintf(buf + n, size - n, "%s%s", n ? "|" : "", names[i].name);
			rest &= ~names[i].bit;
		}
	}
	if (rest || !n)
		snprintf(buf + n, size - n, "%s0x%x", n ? "|" : "", rest);
}

static size_t op_len(const struct op *op, const char *base)
{
	if (op->len_mode == LEN_WRAP)
		return (size_t)0 - (uintptr_t)(base + op->off) + ps;
	return op->len;
}

static void describe(const struct op *op, char *buf, size_t size)
{
	char p[16], f[160];
	int n;

	n = snprintf(buf, size, "run %d op %ld: %s", run_idx, op_idx,
		     op->fl_only ? "[fl-only] " : "");
	buf += n;
	size -= n;
	switch (op->kind) {
	case OP_MMAP:
		flags_str(op->flags, f, sizeof(f));
		snprintf(buf, size, "mmap(A+%#zx, %#zx%s, %s(%#x), %s)", op->off,
			 op->len_mode == LEN_WRAP ? op_len(op, base_n) : op->len,
			 op->len_mode == LEN_WRAP ? " (wraps)" : "", prot_str(op->prot, p),
			 op->prot, f);
		break;
	case OP_MUNMAP:
		snprintf(buf, size, "munmap(A+%#zx, %#zx%s)", op->off,
			 op->len_mode == LEN_WRAP ? op_len(op, base_n) : op->len,
			 op->len_mode == LEN_WRAP ? " (wraps)" : "");
		break;
	case OP_MPROTECT:
		snprintf(buf, size, "mprotect(A+%#zx, %#zx%s, %s(%#x))", op->off,
			 op->len_mode == LEN_WRAP ? op_len(op, base_n) : op->len,
			 op->len_mode == LEN_WRAP ? " (wraps)" : "", prot_str(op->prot, p),
			 op->prot);
		break;
	case OP_MADVISE:
		snprintf(buf, size, "madvise(A+%#zx, %#zx%s, %d)", op->off,
			 op->len_mode == LEN_WRAP ? op_len(op, base_n) : op->len,
			 op->len_mode == LEN_WRAP ? " (wraps)" : "", op->advice);
		break;
	case OP_WRITE:
		snprintf(buf, size, "write %#zx bytes at A+%#zx (%zu pages)", op->len, op->off,
			 op->npages);
		break;
	case OP_READ:
		snprintf(buf, size, "read page at A+%#zx", op->off);
		break;
	}
}

static void print_history(void)
{
	long first = history_n > HISTORY ? history_n - HISTORY : 0;

	fprintf(stderr, "  last operations:\n");
	for (long i = first; i < history_n; i++)
		fprintf(stderr, "    %s\n", history[i % HISTORY]);
}

static void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr,
		"MISMATCH: master seed %" PRIu64 ", run %d (seed %" PRIu64
		", delivery %s), op %ld\n",
		*t_seed_ptr(), run_idx, run_seed, t_delivery_name(run_delivery), op_idx);
	fprintf(stderr, "  at: %s\n  ", op_desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_history();
	fprintf(stderr, "  N arena %p, F arena %p; repeat with: FL_RUN=%d test_diff %" PRIu64 "\n",
		(void *)base_n, (void *)base_f, run_idx, *t_seed_ptr());
	exit(T_EXIT_FAIL);
}

static void fatal_signal(int sig, siginfo_t *si, void *uc)
{
	char msg[128];
	int n;

	(void)uc;
	if (sig == SIGALRM)
		n = snprintf(msg, sizeof(msg), "\nHANG: no progress for %d s during: ", WATCHDOG_S);
	else
		n = snprintf(msg, sizeof(msg), "\nFATAL: signal %d at address %p during: ", sig,
			     si->si_addr);
	if (write(2, msg, n) < 0 || write(2, op_desc, strlen(op_desc)) < 0 || write(2, "\n", 1) < 0)
		_exit(T_EXIT_FAIL);
	n = snprintf(msg, sizeof(msg), "master seed %" PRIu64 " run %d\n", *t_seed_ptr(), run_idx);
	if (write(2, msg, n) < 0)
		_exit(T_EXIT_FAIL);
	_exit(T_EXIT_FAIL);
}

/* Say what follows the operation, for the fatal-signal and hang reports. */
static void set_phase(const char *what)
{
	char *p = strstr(op_desc, " [then ");

	if (p)
		*p = 0;
	strncat(op_desc, what, sizeof(op_desc) - strlen(op_desc) - 1);
}

/* ------------------------------------------------------------------ state */

static void read_proc_maps(void)
{
	size_t n = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0, "open /proc/self/maps: %s", strerror(errno));
	for (;;) {
		ssize_t r;

		if (maps_cap - n < 65536) {
			maps_cap = maps_cap ? maps_cap * 2 : 1 << 20;
			maps_buf = realloc(maps_buf, maps_cap);
			CHECK(maps_buf, "realloc");
		}
		r = read(fd, maps_buf + n, maps_cap - n - 1);
		CHECK(r >= 0, "read /proc/self/maps: %s", strerror(errno));
		if (r == 0)
			break;
		n += r;
	}
	maps_buf[n] = 0;
	close(fd);
}

static int perms_prot(const char *p)
{
	return (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
	       (p[2] == 'x' ? PROT_EXEC : 0);
}

/*
 * Fill st[] for the arena at base from maps-format text.  Return: the number
 * of lines that lie at least partly outside the arena; *lines (if not NULL)
 * counts all lines.
 */
static int parse_maps(const char *text, const char *base, int *st, long *lines)
{
	uintptr_t a0 = (uintptr_t)base, a1 = a0 + arena_len;
	const char *s = text;
	int outside = 0;

	for (int i = 0; i < NPAGES; i++)
		st[i] = -1;
	if (lines)
		*lines = 0;
	while (*s) {
		char *e;
		uintptr_t start = strtoull(s, &e, 16), end;
		const char *nl;

		CHECK(*e == '-', "bad maps line: %.80s", s);
		end = strtoull(e + 1, &e, 16);
		CHECK(*e == ' ', "bad maps line: %.80s", s);
		CHECK(start < end && !(start % ps) && !(end % ps), "bad maps range: %.80s", s);
		if (lines)
			(*lines)++;
		if (end <= a0 || start >= a1) {
			outside++;
		} else {
			int prot = perms_prot(e + 1);

			if (start < a0 || end > a1)
				outside++;
			for (uintptr_t a = start < a0 ? a0 : start; a < end && a < a1; a += ps)
				st[(a - a0) / ps] = prot;
		}
		nl = strchr(s, '\n');
		if (!nl)
			break;
		s = nl + 1;
	}
	return outside;
}

/* The kernel's view of both arenas, and faultline's own of F; they must agree. */
static void check_state(void)
{
	char *text = NULL;
	size_t size = 0;
	struct fl_stats stats;
	long lines;
	size_t mapped = 0;
	FILE *f;
	int ret, outside;

	read_proc_maps();
	parse_maps(maps_buf, base_n, st_n, NULL);
	parse_maps(maps_buf, base_f, st_f, NULL);

	f = open_memstream(&text, &size);
	CHECK(f, "open_memstream");
	ret = fl_maps(sp, f);
	fclose(f);
	if (ret)
		fail("fl_maps: %d", ret);
	outside = parse_maps(text, base_f, st_l, &lines);
	if (outside)
		fail("fl_maps lists %d VMAs outside the F arena:\n%s", outside, text);

	for (int i = 0; i < NPAGES; i++) {
		char p1[16], p2[16];

		if (st_n[i] != st_f[i])
			fail("page %d (N %p, F %p): native %s, faultline %s (kernel's view)", i,
			     (void *)(base_n + i * ps), (void *)(base_f + i * ps),
			     prot_str(st_n[i], p1), prot_str(st_f[i], p2));
		if (st_f[i] != st_l[i])
			fail("page %d (F %p): the kernel says %s, fl_maps says %s\nfl_maps:\n%s", i,
			     (void *)(base_f + i * ps), prot_str(st_f[i], p1),
			     prot_str(st_l[i], p2), text);
		if (st_f[i] >= 0)
			mapped += ps;
	}

	ret = fl_stats(sp, &stats);
	if (ret)
		fail("fl_stats: %d", ret);
	if (stats.mapped_bytes != mapped)
		fail("fl_stats: mapped_bytes %" PRIu64 ", the arena has %zu bytes mapped",
		     stats.mapped_bytes, mapped);
	if (stats.vmas != (uint64_t)lines)
		fail("fl_stats: vmas %" PRIu64 ", fl_maps printed %ld\n%s", stats.vmas, lines,
		     text);
	free(text);
}

static void compare_page(int i)
{
	const unsigned char *pn = (const unsigned char *)base_n + i * ps;
	const unsigned char *pf = (const unsigned char *)base_f + i * ps;

	if (memcmp(pn, pf, ps)) {
		size_t j = 0, diff = 0;

		while (pn[j] == pf[j])
			j++;
		for (size_t k = 0; k < ps; k++)
			diff += pn[k] != pf[k];
		fail("page %d contents differ: first at byte %#zx (native %#x, faultline %#x), %zu "
		     "bytes differ",
		     i, j, pn[j], pf[j], diff);
	}
}

/* Every readable page, as of the last check_state(). */
static void check_contents(void)
{
	char what[96];

	for (int i = 0; i < NPAGES; i++) {
		if (st_n[i] >= 0 && (st_n[i] & PROT_READ)) {
			snprintf(what, sizeof(what),
				 " [then comparing every readable page: page %d, F %p]", i,
				 (void *)(base_f + i * ps));
			set_phase(what);
			compare_page(i);
		}
	}
}

/* ------------------------------------------------------------- generator */

/* The advice faultline serves: compared with the kernel's. */
static int rand_advice(struct t_rng *r)
{
	static const int served[] = {MADV_DONTNEED, MADV_NORMAL, MADV_WILLNEED, MADV_COLD,
				     MADV_PAGEOUT};

	return t_chance(r, 50) ? MADV_DONTNEED : served[t_below(r, 5)];
}

static int rand_prot(struct t_rng *r)
{
	static const int prots[] = {
		PROT_READ | PROT_WRITE,
		PROT_READ | PROT_WRITE,
		PROT_READ | PROT_WRITE,
		PROT_READ,
		PROT_READ,
		PROT_NONE,
		PROT_RWX,
	};

	return prots[t_below(r, sizeof(prots) / sizeof(prots[0]))];
}

/* A range inside the arena: whole pages, sometimes a length short of a page boundary. */
static void rand_range(struct t_rng *r, struct op *op)
{
	size_t p = t_below(r, NPAGES);
	size_t n = t_chance(r, 70) ? 1 + t_below(r, 8) : 1 + t_below(r, 64);

	if (n > NPAGES - p)
		n = NPAGES - p;
	op->off = p * ps;
	op->len = n * ps;
	if (t_chance(r, 10))
		op->len -= 1 + t_below(r, ps - 1);
}

static int base_map_flags(struct t_rng *r)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;

	if (t_chance(r, 20))
		flags |= MAP_NORESERVE;
	if (t_chance(r, 10))
		flags |= MAP_POPULATE;
	if (t_chance(r, 5))
		flags |= MAP_STACK;
	return flags;
}

/* A length the kernel refuses before it looks at any mapping. */
static void rand_bad_len(struct t_rng *r, struct op *op, bool allow_huge)
{
	switch (t_below(r, allow_huge ? 4 : 3)) {
	case 0:
		op->len = SIZE_MAX;
		break;
	case 1:
		op->len = SIZE_MAX - 2 * ps + 1;
		break;
	case 2:
		op->len_mode = LEN_WRAP;
		break;
	default:
		op->len = (size_t)1 << 60;
		break;
	}
}

static void gen_bad(struct t_rng *r, struct op *op)
{
	int page = (int)(op->off / ps);
	bool start_unmapped = st_n[page] < 0;

	switch (t_below(r, 14)) {
	case 0: /* unaligned fixed address */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r) | (t_chance(r, 50) ? MAP_FIXED : MAP_FIXED_NOREPLACE);
		op->off += 1 + t_below(r, ps - 1);
		break;
	case 1: /* len 0 */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r) | (t_chance(r, 50) ? MAP_FIXED : 0);
		op->len = 0;
		break;
	case 2: /* huge or overflowing len: ENOMEM */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r);
		switch (t_below(r, 3)) {
		case 0:
			op->flags |= MAP_FIXED;
			break;
		case 1:
			op->flags |= MAP_FIXED_NOREPLACE;
			break;
		}
		rand_bad_len(r, op, true);
		break;
	case 3: /* undefined prot bits: the kernel ignores them in mmap */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r) | (t_chance(r, 50) ? 0x100 : 0x10);
		op->flags = base_map_flags(r) | MAP_FIXED;
		break;
	case 4: /* neither private nor shared: EINVAL */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = MAP_ANONYMOUS | MAP_FIXED;
		break;
	case 5:
		op->kind = OP_MUNMAP;
		op->off += 1 + t_below(r, ps - 1);
		break;
	case 6:
		op->kind = OP_MUNMAP;
		op->len = 0;
		break;
	case 7:
		op->kind = OP_MUNMAP;
		rand_bad_len(r, op, true);
		break;
	case 8:
		op->kind = OP_MPROTECT;
		op->prot = rand_prot(r);
		op->off += 1 + t_below(r, ps - 1);
		break;
	case 9: /* len 0 succeeds, whatever the prot */
		op->kind = OP_MPROTECT;
		op->prot = t_chance(r, 50) ? rand_prot(r) : 0x100;
		op->len = 0;
		break;
	case 10:
		op->kind = OP_MPROTECT;
		op->prot = rand_prot(r) | (t_chance(r, 50) ? 0x100 : 0x10);
		break;
	case 11:
		/* 1 << 60 from a mapped page would reach far outside the arena */
		op->kind = OP_MPROTECT;
		op->prot = rand_prot(r);
		rand_bad_len(r, op, start_unmapped);
		break;
	case 12:
		op->kind = OP_MADVISE;
		op->advice = rand_advice(r);
		switch (t_below(r, 3)) {
		case 0:
			op->off += 1 + t_below(r, ps - 1);
			break;
		case 1:
			op->len = 0;
			break;
		default:
			rand_bad_len(r, op, false);
			break;
		}
		break;
	default: /* advice no kernel knows */
		op->kind = OP_MADVISE;
		op->advice = t_chance(r, 50) ? 9999 : -1;
		break;
	}
}

/* What faultline refuses by design, while the kernel would accept some of it. */
static void gen_fl_only(struct t_rng *r, struct op *op)
{
	static const int bad_flags[] = {
		MAP_SHARED | MAP_ANONYMOUS,
		MAP_SHARED_VALIDATE | MAP_ANONYMOUS,
		MAP_PRIVATE, /* a file mapping without a file */
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_NONBLOCK,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
	};
	static const int advice[] = {
		MADV_RANDOM, MADV_SEQUENTIAL, MADV_FREE,       MADV_DONTFORK,
		MADV_DOFORK, MADV_HUGEPAGE,   MADV_NOHUGEPAGE, MADV_DONTDUMP,
		MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_REMOVE,
	};

	op->fl_only = true;
	if (t_chance(r, 60)) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = bad_flags[t_below(r, sizeof(bad_flags) / sizeof(bad_flags[0]))];
		switch (t_below(r, 3)) {
		case 0:
			op->flags |= MAP_FIXED;
			break;
		case 1:
			op->flags |= MAP_FIXED_NOREPLACE;
			break;
		}
	} else {
		op->kind = OP_MADVISE;
		op->advice = advice[t_below(r, sizeof(advice) / sizeof(advice[0]))];
	}
}

static bool pick_page(struct t_rng *r, int want, int *page)
{
	int cand[NPAGES], n = 0;

	for (int i = 0; i < NPAGES; i++)
		if (st_n[i] >= 0 && (st_n[i] & want) == want)
			cand[n++] = i;
	if (!n)
		return false;
	*page = cand[t_below(r, n)];
	return true;
}

static void gen_op(struct t_rng *r, struct op *op)
{
	unsigned int x = t_below(r, 100);

	memset(op, 0, sizeof(*op));
	rand_range(r, op);
	if (x < 12) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r) | MAP_FIXED;
	} else if (x < 18) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r) | MAP_FIXED_NOREPLACE;
		if (t_chance(r, 10))
			op->flags |= MAP_FIXED;
	} else if (x < 24) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r);
		if (t_chance(r, 15)) /* an unaligned hint is rounded, not refused */
			op->off += 1 + t_below(r, ps - 1);
	} else if (x < 56) {
		int page;

		if (x < 33) {
			op->kind = OP_MUNMAP;
		} else if (x < 46) {
			op->kind = OP_MPROTECT;
			op->prot = rand_prot(r);
		} else {
			op->kind = OP_MADVISE;
			op->advice = x < 54 ? MADV_DONTNEED : rand_advice(r);
		}
		/*
		 * Mostly a range inside the mappings, so that not every one
		 * meets a hole; the rest is random.
		 */
		if (t_chance(r, 60) && pick_page(r, 0, &page)) {
			int span = 1;

			while (page + span < NPAGES && st_n[page + span] >= 0)
				span++;
			op->off = page * ps;
			op->len = ps * (1 + t_below(r, span));
		}
	} else if (x < 78) {
		int page;

		if (!pick_page(r, PROT_WRITE, &page)) {
			op->kind = OP_MMAP;
			op->prot = PROT_READ | PROT_WRITE;
			op->flags = base_map_flags(r) | MAP_FIXED;
			return;
		}
		op->kind = OP_WRITE;
		op->npages = 1;
		while (op->npages < 3 && page + op->npages < NPAGES &&
		       st_n[page + op->npages] >= 0 && (st_n[page + op->npages] & PROT_WRITE) &&
		       t_chance(r, 30))
			op->npages++;
		op->off = page * ps + t_below(r, ps);
		op->len = 1 + t_below(r, (page + op->npages) * ps - op->off);
		if (t_chance(r, 20)) {
			op->off = page * ps;
			op->len = op->npages * ps;
		}
	} else if (x < 84) {
		int page;

		if (!pick_page(r, PROT_READ, &page)) {
			op->kind = OP_MUNMAP;
			return;
		}
		op->kind = OP_READ;
		op->off = page * ps;
	} else if (x < 96) {
		gen_bad(r, op);
	} else {
		gen_fl_only(r, op);
	}
}

/* ------------------------------------------------------------- execution */

/*
 * The native side is the kernel itself, by raw system calls: not libc, and
 * not a sanitizer's interceptor (TSan refuses some fixed addresses with an
 * error of its own).
 */
static void *k_mmap(void *addr, size_t len, int prot, int flags)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, -1, 0);
}

static int k_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static int k_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

static int k_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

static long classify(void *p, const char *base)
{
	if (p == MAP_FAILED)
		return RES_FAIL;
	if ((char *)p >= base && (char *)p < base + arena_len)
		return (char *)p - base;
	return RES_ELSEWHERE;
}

static const char *res_str(const struct res *r, char *buf, size_t size)
{
	if (r->ret == RES_ELSEWHERE)
		snprintf(buf, size, "mapped outside the arena");
	else if (r->ret < 0)
		snprintf(buf, size, "-1, errno %d (%s)", r->err, strerror(r->err));
	else
		snprintf(buf, size, "%#lx", r->ret);
	return buf;
}

static void compare_res(const struct op *op, const struct res *rn, const struct res *rf)
{
	char b1[96], b2[96];

	if (rn->ret != rf->ret || (rn->ret == RES_FAIL && rn->err != rf->err))
		fail("native returned %s, faultline returned %s", res_str(rn, b1, sizeof(b1)),
		     res_str(rf, b2, sizeof(b2)));
	if (op->kind == OP_MMAP && rn->ret >= 0 &&
	    (op->flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && (size_t)rn->ret != op->off)
		fail("a fixed mapping at %#zx landed at %#lx in both", op->off, rn->ret);
}

static void do_fl_only(const struct op *op)
{
	void *addr = base_f + op->off;
	int ret = 0;

	errno = 0;
	if (op->kind == OP_MMAP) {
		void *p = fl_mmap(sp, addr, op->len, op->prot, op->flags);

		if (p != MAP_FAILED)
			fail("faultline accepted a mapping it documents as refused: %p", p);
		ret = -1;
	} else {
		ret = fl_madvise(sp, addr, op->len, op->advice);
	}
	if (ret != -1 || errno != EINVAL)
		fail("faultline must refuse with EINVAL, got %d errno %d (%s)", ret, errno,
		     strerror(errno));
}

static void do_mmap(const struct op *op, struct res *rn, struct res *rf)
{
	void *pn, *pf;
	size_t len_n = op_len(op, base_n), len_f = op_len(op, base_f);

	errno = 0;
	pn = k_mmap(base_n + op->off, len_n, op->prot, op->flags);
	rn->err = errno;
	rn->ret = classify(pn, base_n);
	errno = 0;
	pf = fl_mmap(sp, base_f + op->off, len_f, op->prot, op->flags);
	rf->err = errno;
	rf->ret = classify(pf, base_f);

	/* A hint not taken in both: the addresses mean nothing, give the memory back. */
	if (rn->ret == RES_ELSEWHERE)
		CHECK(k_munmap(pn, len_n) == 0, "munmap(%p): %s", pn, strerror(errno));
	if (rf->ret == RES_ELSEWHERE) {
		int ret = fl_munmap(sp, pf, len_f);

		if (ret)
			fail("fl_munmap(%p, %#zx) of a mapping outside the arena: %d errno %d", pf,
			     len_f, ret, errno);
	}
}

static void do_call(const struct op *op, char *base, struct res *res, bool native)
{
	void *addr = base + op->off;
	size_t len = op_len(op, base);
	int ret = 0;

	errno = 0;
	switch (op->kind) {
	case OP_MUNMAP:
		ret = native ? k_munmap(addr, len) : fl_munmap(sp, addr, len);
		break;
	case OP_MPROTECT:
		ret = native ? k_mprotect(addr, len, op->prot)
			     : fl_mprotect(sp, addr, len, op->prot);
		break;
	case OP_MADVISE:
		ret = native ? k_madvise(addr, len, op->advice)
			     : fl_madvise(sp, addr, len, op->advice);
		break;
	default:
		CHECK(0, "bad op kind %d", op->kind);
	}
	res->err = errno;
	if (ret != 0 && ret != -1)
		fail("%s returned %d", native ? "native" : "faultline", ret);
	res->ret = ret;
}

static void do_write(struct t_rng *r, const struct op *op)
{
	for (size_t i = 0; i < op->len; i += 8) {
		uint64_t v = t_rand(r);

		memcpy(wbuf + i, &v, op->len - i < 8 ? op->len - i : 8);
	}
	memcpy(base_n + op->off, wbuf, op->len);
	memcpy(base_f + op->off, wbuf, op->len);
}

static void exec_op(struct t_rng *r, const struct op *op)
{
	struct res rn = {0, 0}, rf = {0, 0};
	char b1[96], b2[96];

	if (op->fl_only) {
		do_fl_only(op);
		tally[op->kind][2]++;
		snprintf(history[history_n++ % HISTORY], sizeof(history[0]), "%s -> EINVAL",
			 op_desc);
		return;
	}
	switch (op->kind) {
	case OP_MMAP:
		do_mmap(op, &rn, &rf);
		break;
	case OP_MUNMAP:
	case OP_MPROTECT:
	case OP_MADVISE:
		do_call(op, base_n, &rn, true);
		do_call(op, base_f, &rf, false);
		break;
	case OP_WRITE:
		do_write(r, op);
		break;
	case OP_READ:
		compare_page((int)(op->off / ps));
		break;
	}
	snprintf(history[history_n++ % HISTORY], sizeof(history[0]), "%s -> N %s, F %s", op_desc,
		 res_str(&rn, b1, sizeof(b1)), res_str(&rf, b2, sizeof(b2)));
	compare_res(op, &rn, &rf);
	tally[op->kind][rn.ret == RES_FAIL]++;
}

/* ------------------------------------------------------------------ runs */

static void run(int idx, uint64_t seed, int delivery, bool no_fault_around, long nops)
{
	struct fl_config cfg;
	struct t_rng rng;
	struct op op;

	run_idx = idx;
	run_seed = seed;
	run_delivery = delivery;
	history_n = 0;
	op_idx = -1;
	snprintf(op_desc, sizeof(op_desc), "run %d: creating the space", idx);
	t_rng_init(&rng, seed);
	alarm(WATCHDOG_S);
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	if (no_fault_around) {
		cfg.fault_around = 1;
		cfg.fault_around_max = 1;
	}
	sp = t_space_create_cfg(&cfg);

	check_state();
	for (int i = 0; i < NPAGES; i++)
		CHECK(st_n[i] < 0 && st_f[i] < 0, "run %d: arena page %d mapped at start", idx, i);

	for (op_idx = 0; op_idx < nops; op_idx++) {
		gen_op(&rng, &op);
		describe(&op, op_desc, sizeof(op_desc));
		alarm(WATCHDOG_S);
		if (trace) {
			fprintf(stderr, "%s\n", op_desc);
			fflush(stderr);
		}
		exec_op(&rng, &op);
		set_phase(" [then checking the layout]");
		check_state();
		if (op_idx % CHECK_EVERY == CHECK_EVERY - 1) {
			check_contents();
		}
	}
	snprintf(op_desc, sizeof(op_desc), "run %d: final check", idx);
	alarm(WATCHDOG_S);
	check_state();
	check_contents();
	printf("  mmap %ld ok %ld failed %ld refused, munmap %ld/%ld, mprotect %ld/%ld, "
	       "madvise %ld/%ld/%ld, write %ld, read %ld\n",
	       tally[OP_MMAP][0], tally[OP_MMAP][1], tally[OP_MMAP][2], tally[OP_MUNMAP][0],
	       tally[OP_MUNMAP][1], tally[OP_MPROTECT][0], tally[OP_MPROTECT][1],
	       tally[OP_MADVISE][0], tally[OP_MADVISE][1], tally[OP_MADVISE][2], tally[OP_WRITE][0],
	       tally[OP_READ][0]);
	memset(tally, 0, sizeof(tally));

	snprintf(op_desc, sizeof(op_desc), "run %d: fl_space_destroy", idx);
	alarm(WATCHDOG_S);
	fl_space_destroy(sp);
	alarm(0);
	sp = NULL;
	read_proc_maps();
	parse_maps(maps_buf, base_f, st_f, NULL);
	for (int i = 0; i < NPAGES; i++)
		CHECK(st_f[i] < 0, "run %d: F page %d still mapped after fl_space_destroy", idx, i);
	CHECK(k_munmap(base_n, arena_len) == 0, "munmap N arena: %s", strerror(errno));
}

/*
 * Two free, far-apart arenas.  A candidate must be free (a raw
 * MAP_FIXED_NOREPLACE, which no interceptor sees, proves it) and usable
 * through libc's mmap with MAP_FIXED (which a sanitizer refuses outside the
 * application memory of its layout; faultline's own mmap calls go through
 * libc).
 */
static void reserve_arenas(void)
{
	static const uintptr_t cand[] = {
		0x200000000000UL, 0x300000000000UL, 0x580000000000UL, 0x590000000000UL,
		0x7000000000UL,	  0x7800000000UL,   0x10000000000UL,  0x18000000000UL,
		0x400000000000UL, 0x480000000000UL, 0x7a0000000000UL, 0x7a8000000000UL,
		0x560000000000UL, 0x568000000000UL,
	};
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	char *got[2];
	int n = 0;

	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]) && n < 2; i++) {
		void *want = (void *)cand[i];
		void *p = k_mmap(want, arena_len, PROT_NONE, flags | MAP_FIXED_NOREPLACE);

		if (p == MAP_FAILED)
			continue;
		CHECK(k_munmap(p, arena_len) == 0, "munmap: %s", strerror(errno));
		if (p != want) /* a kernel without MAP_FIXED_NOREPLACE */
			continue;
		p = mmap(want, arena_len, PROT_NONE, flags | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			continue;
		CHECK(munmap(p, arena_len) == 0, "munmap: %s", strerror(errno));
		if (p == want)
			got[n++] = p;
	}
	CHECK(n == 2, "no two free arenas among the candidate addresses");
	base_n = got[0];
	base_f = got[1];
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_diff");
	int runs = t_soak() ? 200 : 20;
	long nops = t_soak() ? 3000 : 600;
	const char *only = getenv("FL_RUN");
	struct sigaction sa;
	struct timespec t0, t1;
	long total = 0;

	ps = t_page_size();
	arena_len = NPAGES * ps;
	wbuf = malloc(3 * ps);
	CHECK(wbuf, "malloc");
	if (getenv("FL_OPS"))
		nops = atol(getenv("FL_OPS"));

	/* Before any space: a sigbus space chains signals it does not own to this. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fatal_signal;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	trace = getenv("FL_TRACE") && atoi(getenv("FL_TRACE"));

	reserve_arenas();
	printf("arenas: N %p, F %p, %d pages each; %d runs x %ld ops\n", (void *)base_n,
	       (void *)base_f, NPAGES, only ? 1 : runs, nops);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < runs; i++) {
		uint64_t x = seed + (uint64_t)i;
		uint64_t rs = t_splitmix64(&x);
		int delivery = i % 2 ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
		/* Runs 2, 3, 6, 7, ... without fault-around: only the faulting page comes in. */
		bool nfa = i & 2;

		if (only && atoi(only) != i)
			continue;
		printf("run %d: seed %" PRIu64 ", delivery %s%s\n", i, rs,
		       t_delivery_name(delivery), nfa ? ", no fault-around" : "");
		run(i, rs, delivery, nfa, nops);
		total += nops;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("test_diff: %ld operations compared, %.1f s\n", total,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	free(maps_buf);
	free(wbuf);
	return T_EXIT_PASS;
}
