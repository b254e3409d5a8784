// SPDX-License-Identifier: MIT
/*
 * The differential oracle of test_diff and fuzz/fuzz_mm (diff_engine.h says
 * what it compares).  The native side is raw system calls; faultline's side
 * the public API of one space per arena.
 */
#define _GNU_SOURCE
#include "diff_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#include <unistd.h>

#define HISTORY 16
#define PROT_RWX (PROT_READ | PROT_WRITE | PROT_EXEC)

/* An outcome: the offset a mapping landed at, or one of these. */
#define RES_FAIL (-1L)
#define RES_ELSEWHERE (-2L) /* mapped outside the arena: the hint was not taken */

struct res {
	long ret;
	int err;
};

char diff_context[256], diff_repeat[256];
char diff_op_desc[512];
long diff_op_idx;

static void exit_fail(void)
{
	exit(T_EXIT_FAIL);
}

void (*diff_on_fail)(void) = exit_fail;

static size_t ps;
static unsigned char *wbuf;
static char history[HISTORY][600];
static long history_n;
/* The arena of the operation or check in progress, for mismatch reports. */
static const struct diff_arena *cur;

static char *maps_buf;
static size_t maps_cap;

void diff_init(void)
{
	ps = t_page_size();
	if (!wbuf)
		wbuf = malloc(DIFF_WRITE_PAGES * ps);
	CHECK(wbuf, "malloc");
}

size_t diff_page_size(void)
{
	return ps;
}

static size_t arena_len(const struct diff_arena *a)
{
	return (size_t)a->npages * ps;
}

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
		{MAP_SHARED_VALIDATE, "SHARED_VALIDATE"},
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
		if ((rest & names[i].bit) == names[i].bit && names[i].bit) {
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

void diff_describe(const struct diff_arena *a, const struct op *op, const char *prefix)
{
	char p[16], f[160], *buf = diff_op_desc;
	size_t size = sizeof(diff_op_desc);
	size_t len = op->len_mode == LEN_WRAP ? op_len(op, a->base_n) : op->len;
	const char *wraps = op->len_mode == LEN_WRAP ? " (wraps)" : "";
	int n;

	n = snprintf(buf, size, "%sop %ld: %s%s", prefix, diff_op_idx, a->name,
		     op->fl_only ? "[fl-only] " : "");
	buf += n;
	size -= n;
	switch (op->kind) {
	case OP_MMAP:
		flags_str(op->flags, f, sizeof(f));
		snprintf(buf, size, "mmap(A+%#zx, %#zx%s, %s(%#x), %s, fd %s, %#llx)", op->off, len,
			 wraps, prot_str(op->prot, p), op->prot, f,
			 (const char *[]){"-1", "rw", "ro", "bad"}[op->fd], op->foff);
		break;
	case OP_MSYNC:
		snprintf(buf, size, "msync(A+%#zx, %#zx%s, %#x)", op->off, len, wraps, op->msflags);
		break;
	case OP_MUNMAP:
		snprintf(buf, size, "munmap(A+%#zx, %#zx%s)", op->off, len, wraps);
		break;
	case OP_MPROTECT:
		snprintf(buf, size, "mprotect(A+%#zx, %#zx%s, %s(%#x))", op->off, len, wraps,
			 prot_str(op->prot, p), op->prot);
		break;
	case OP_MADVISE:
		snprintf(buf, size, "madvise(A+%#zx, %#zx%s, %d)", op->off, len, wraps, op->advice);
		break;
	case OP_MREMAP:
		snprintf(buf, size, "mremap(A+%#zx, %#zx%s, %#zx, %s%s%s%s%#x, A+%#zx)", op->off,
			 len, wraps, op->new_len, op->mflags & MREMAP_MAYMOVE ? "MAYMOVE|" : "",
			 op->mflags & MREMAP_FIXED ? "FIXED|" : "",
			 op->mflags & MREMAP_DONTUNMAP ? "DONTUNMAP|" : "",
			 op->mflags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) ? "bad "
											  : "",
			 op->mflags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP),
			 op->new_off);
		break;
	case OP_WRITE:
		snprintf(buf, size, "write %#zx bytes at A+%#zx (%zu pages)", op->len, op->off,
			 op->npages);
		break;
	case OP_READ:
		snprintf(buf, size, "read page at A+%#zx", op->off);
		break;
	default:
		snprintf(buf, size, "kind %d", op->kind);
		break;
	}
}

void diff_history_reset(void)
{
	history_n = 0;
}

static void print_history(void)
{
	long first = history_n > HISTORY ? history_n - HISTORY : 0;

	fprintf(stderr, "  last operations:\n");
	for (long i = first; i < history_n; i++)
		fprintf(stderr, "    %s\n", history[i % HISTORY]);
}

/*
 * The native arena's VMAs as the kernel listed them at the last state check
 * (offsets from its base): boundaries are not compared (diff_engine.h), so
 * a mismatch that turns on one shows here.
 */
static void print_native_vmas(const struct diff_arena *a)
{
	int n = 0;

	fprintf(stderr, "  native VMAs at the last state check:");
	for (int i = 0; i < a->npages; i++) {
		if (a->st_n[i] < 0 || (i && !a->vstart_n[i] && a->st_n[i - 1] >= 0))
			continue;
		int j = i + 1;
		while (j < a->npages && a->st_n[j] >= 0 && !a->vstart_n[j])
			j++;
		fprintf(stderr, "%s[%#lx, %#lx) %c%c%c", n++ % 4 ? "  " : "\n    ",
			(unsigned long)i * ps, (unsigned long)j * ps,
			a->st_n[i] & PROT_READ ? 'r' : '-', a->st_n[i] & PROT_WRITE ? 'w' : '-',
			a->st_n[i] & PROT_EXEC ? 'x' : '-');
	}
	fputc('\n', stderr);
}

void diff_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "MISMATCH: %s, op %ld\n", diff_context, diff_op_idx);
	fprintf(stderr, "  at: %s\n  ", diff_op_desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_history();
	if (cur)
		print_native_vmas(cur);
	if (cur)
		fprintf(stderr, "  %sN arena %p, F arena %p; ", cur->name, (void *)cur->base_n,
			(void *)cur->base_f);
	fprintf(stderr, "repeat with: %s\n", diff_repeat);
	diff_on_fail();
	abort(); /* diff_on_fail must not return */
}

void diff_set_phase(const char *what)
{
	char *p = strstr(diff_op_desc, " [then ");

	if (p)
		*p = 0;
	strncat(diff_op_desc, what, sizeof(diff_op_desc) - strlen(diff_op_desc) - 1);
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
static int parse_maps(const struct diff_arena *a, const char *text, const char *base, int *st,
		      long *pg, bool *sh, long *lines, bool *vstart)
{
	uintptr_t a0 = (uintptr_t)base, a1 = a0 + arena_len(a);
	const char *s = text;
	int outside = 0;

	for (int i = 0; i < a->npages; i++) {
		st[i] = -1;
		if (pg) {
			pg[i] = -1;
			sh[i] = false;
		}
	}
	if (vstart)
		memset(vstart, 0, a->npages * sizeof(*vstart));
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
			unsigned long long off = 0, ino = 0;
			unsigned int dmaj, dmin;

			/* perms, offset, device, inode: a file's mapping has an inode */
			CHECK(sscanf(e + 6, "%llx %x:%x %llu", &off, &dmaj, &dmin, &ino) == 4,
			      "bad maps line: %.80s", s);
			if (start < a0 || end > a1)
				outside++;
			if (vstart && start >= a0)
				vstart[(start - a0) / ps] = true;
			for (uintptr_t p = start < a0 ? a0 : start; p < end && p < a1; p += ps) {
				st[(p - a0) / ps] = prot;
				if (pg && ino) {
					pg[(p - a0) / ps] = (long)(off / ps + (p - start) / ps);
					sh[(p - a0) / ps] = e[4] == 's';
				}
			}
		}
		nl = strchr(s, '\n');
		if (!nl)
			break;
		s = nl + 1;
	}
	return outside;
}

void diff_check_state(struct diff_arena *a)
{
	char *text = NULL;
	size_t size = 0;
	struct fl_stats stats;
	long lines;
	size_t mapped = 0;
	FILE *f;
	int ret, outside;

	cur = a;
	read_proc_maps();
	parse_maps(a, maps_buf, a->base_n, a->st_n, a->pg_n, a->sh_n, NULL, a->vstart_n);
	parse_maps(a, maps_buf, a->base_f, a->st_f, a->pg_f, a->sh_f, NULL, NULL);

	f = open_memstream(&text, &size);
	CHECK(f, "open_memstream");
	ret = fl_maps(a->sp, f);
	fclose(f);
	if (ret)
		diff_fail("fl_maps: %d", ret);
	outside = parse_maps(a, text, a->base_f, a->st_l, a->pg_l, a->sh_l, &lines, NULL);
	if (outside)
		diff_fail("fl_maps lists %d VMAs outside the F arena:\n%s", outside, text);

	for (int i = 0; i < a->npages; i++) {
		char p1[16], p2[16];

		if (a->st_n[i] != a->st_f[i])
			diff_fail("page %d (N %p, F %p): native %s, faultline %s (kernel's view)",
				  i, (void *)(a->base_n + i * ps), (void *)(a->base_f + i * ps),
				  prot_str(a->st_n[i], p1), prot_str(a->st_f[i], p2));
		if (a->st_f[i] != a->st_l[i])
			diff_fail(
				"page %d (F %p): the kernel says %s, fl_maps says %s\nfl_maps:\n%s",
				i, (void *)(a->base_f + i * ps), prot_str(a->st_f[i], p1),
				prot_str(a->st_l[i], p2), text);
		if (a->st_f[i] >= 0)
			mapped += ps;
		if (a->st_n[i] >= 0 && (a->pg_n[i] != a->pg_f[i] || a->pg_f[i] != a->pg_l[i] ||
					a->sh_n[i] != a->sh_f[i] || a->sh_f[i] != a->sh_l[i]))
			diff_fail(
				"page %d maps file page %ld%s natively, %ld%s in the kernel's view "
				"of faultline, %ld%s in fl_maps (-1: anonymous)\nfl_maps:\n%s",
				i, a->pg_n[i], a->sh_n[i] ? " shared" : "", a->pg_f[i],
				a->sh_f[i] ? " shared" : "", a->pg_l[i],
				a->sh_l[i] ? " shared" : "", text);
	}

	ret = fl_stats(a->sp, &stats);
	if (ret)
		diff_fail("fl_stats: %d", ret);
	if (stats.mapped_bytes != mapped)
		diff_fail("fl_stats: mapped_bytes %" PRIu64 ", the arena has %zu bytes mapped",
			  stats.mapped_bytes, mapped);
	if (stats.vmas != (uint64_t)lines)
		diff_fail("fl_stats: vmas %" PRIu64 ", fl_maps printed %ld\n%s", stats.vmas, lines,
			  text);
	free(text);
}

static void compare_page(const struct diff_arena *a, int i)
{
	const unsigned char *pn = (const unsigned char *)a->base_n + i * ps;
	const unsigned char *pf = (const unsigned char *)a->base_f + i * ps;

	if (memcmp(pn, pf, ps)) {
		size_t j = 0, diff = 0;

		while (pn[j] == pf[j])
			j++;
		for (size_t k = 0; k < ps; k++)
			diff += pn[k] != pf[k];
		diff_fail("page %d contents differ: first at byte %#zx (native %#x, faultline "
			  "%#x), %zu bytes differ",
			  i, j, pn[j], pf[j], diff);
	}
}

/* Every readable page, as of the last diff_check_state(). */
void diff_check_contents(struct diff_arena *a)
{
	char what[96];

	cur = a;
	for (int i = 0; i < a->npages; i++) {
		if (diff_page_touchable(a, i) && (a->st_n[i] & PROT_READ)) {
			snprintf(what, sizeof(what),
				 " [then comparing every readable page: page %d, F %p]", i,
				 (void *)(a->base_f + i * ps));
			diff_set_phase(what);
			compare_page(a, i);
		}
	}
}

/* ------------------------------------------------------------- execution */

/*
 * The native side is the kernel itself, by raw system calls: not libc, and
 * not a sanitizer's interceptor (TSan refuses some fixed addresses with an
 * error of its own).
 */
void *k_mmap(void *addr, size_t len, int prot, int flags)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, -1, 0);
}

void *k_mmap_fd(void *addr, size_t len, int prot, int flags, int fd, long long off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int k_msync(void *addr, size_t len, int flags)
{
	return (int)syscall(SYS_msync, addr, len, flags);
}

bool diff_page_touchable(const struct diff_arena *a, int i)
{
	return a->st_n[i] >= 0 && (a->pg_n[i] < 0 || (size_t)a->pg_n[i] < a->file_pages);
}

static int fd_of(const struct diff_arena *a, const struct op *op, bool native)
{
	switch (op->fd) {
	case DIFF_FD_RW:
		return native ? a->fd_n : a->fd_f;
	case DIFF_FD_RO:
		return native ? a->fd_n_ro : a->fd_f_ro;
	case DIFF_FD_BAD:
		return 1023; /* not open */
	}
	return -1;
}

static char file_path[2][64];

void diff_files_create(struct diff_arena *a, size_t pages, uint64_t seed)
{
	unsigned char *buf = malloc(pages * ps);
	struct t_rng r;

	CHECK(buf, "malloc");
	t_rng_init(&r, seed);
	for (size_t i = 0; i < pages * ps; i += 8) {
		uint64_t v = t_rand(&r);
		memcpy(buf + i, &v, 8);
	}
	for (int k = 0; k < 2; k++) {
		snprintf(file_path[k], sizeof(file_path[k]), "/var/tmp/fl-diff-%c-XXXXXX",
			 k ? 'F' : 'N');
		int fd = mkstemp(file_path[k]);
		CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
		CHECK(pwrite(fd, buf, pages * ps, 0) == (ssize_t)(pages * ps), "pwrite");
		int ro = open(file_path[k], O_RDONLY | O_CLOEXEC);
		CHECK(ro >= 0, "open: %s", strerror(errno));
		if (k) {
			a->fd_f = fd;
			a->fd_f_ro = ro;
		} else {
			a->fd_n = fd;
			a->fd_n_ro = ro;
		}
	}
	a->file_pages = pages;
	free(buf);
}

/* The files' pages [first, last): the same bytes. */
void diff_files_compare(struct diff_arena *a, size_t first, size_t last)
{
	unsigned char *bn = malloc(ps), *bf = malloc(ps);

	CHECK(bn && bf, "malloc");
	for (size_t i = first; i < last && i < a->file_pages; i++) {
		CHECK(pread(a->fd_n, bn, ps, (off_t)(i * ps)) == (ssize_t)ps, "pread N");
		CHECK(pread(a->fd_f, bf, ps, (off_t)(i * ps)) == (ssize_t)ps, "pread F");
		if (memcmp(bn, bf, ps)) {
			size_t j = 0;

			while (bn[j] == bf[j])
				j++;
			diff_fail("the files differ at page %zu, byte %#zx: native %#x, faultline "
				  "%#x",
				  i, j, bn[j], bf[j]);
		}
	}
	free(bn);
	free(bf);
}

void diff_files_remove(struct diff_arena *a)
{
	if (!a->file_pages)
		return;
	close(a->fd_n);
	close(a->fd_f);
	close(a->fd_n_ro);
	close(a->fd_f_ro);
	unlink(file_path[0]);
	unlink(file_path[1]);
	a->file_pages = 0;
}

int k_munmap(void *addr, size_t len)
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

static void *k_mremap(void *addr, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	return (void *)syscall(SYS_mremap, addr, old_len, new_len, flags, new_addr);
}

static long classify(const struct diff_arena *a, void *p, const char *base)
{
	if (p == MAP_FAILED)
		return RES_FAIL;
	if ((char *)p >= base && (char *)p < base + arena_len(a))
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
		diff_fail("native returned %s, faultline returned %s", res_str(rn, b1, sizeof(b1)),
			  res_str(rf, b2, sizeof(b2)));
	if (op->kind == OP_MREMAP && rn->ret >= 0 && (op->mflags & MREMAP_FIXED) &&
	    (size_t)rn->ret != op->new_off)
		diff_fail("a fixed mremap to %#zx landed at %#lx in both", op->new_off, rn->ret);
	if (op->kind == OP_MMAP && rn->ret >= 0 &&
	    (op->flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && (size_t)rn->ret != op->off)
		diff_fail("a fixed mapping at %#zx landed at %#lx in both", op->off, rn->ret);
}

static int fd_of(const struct diff_arena *a, const struct op *op, bool native);

static void do_fl_only(const struct diff_arena *a, const struct op *op)
{
	void *addr = a->base_f + op->off;
	int ret = 0;

	errno = 0;
	if (op->kind == OP_MMAP) {
		void *p = fl_mmap(a->sp, addr, op->len, op->prot, op->flags, fd_of(a, op, false),
				  op->foff);

		if (p != MAP_FAILED)
			diff_fail("faultline accepted a mapping it documents as refused: %p", p);
		ret = -1;
	} else {
		ret = fl_madvise(a->sp, addr, op->len, op->advice);
	}
	if (ret != -1 || errno != EINVAL)
		diff_fail("faultline must refuse with EINVAL, got %d errno %d (%s)", ret, errno,
			  strerror(errno));
}

static void do_mmap(const struct diff_arena *a, const struct op *op, struct res *rn, struct res *rf)
{
	void *pn, *pf;
	size_t len_n = op_len(op, a->base_n), len_f = op_len(op, a->base_f);

	errno = 0;
	pn = k_mmap_fd(a->base_n + op->off, len_n, op->prot, op->flags, fd_of(a, op, true),
		       op->foff);
	rn->err = errno;
	rn->ret = classify(a, pn, a->base_n);
	errno = 0;
	pf = fl_mmap(a->sp, a->base_f + op->off, len_f, op->prot, op->flags, fd_of(a, op, false),
		     op->foff);
	rf->err = errno;
	rf->ret = classify(a, pf, a->base_f);

	/* A hint not taken in both: the addresses mean nothing, give the memory back. */
	if (rn->ret == RES_ELSEWHERE)
		CHECK(k_munmap(pn, len_n) == 0, "munmap(%p): %s", pn, strerror(errno));
	if (rf->ret == RES_ELSEWHERE) {
		int ret = fl_munmap(a->sp, pf, len_f);

		if (ret)
			diff_fail("fl_munmap(%p, %#zx) of a mapping outside the arena: %d errno %d",
				  pf, len_f, ret, errno);
	}
}

/*
 * mremap on both sides.  A mapping moved out of the arena (the kernel chose
 * the address, on both sides) must hold the same bytes on both sides, if
 * its source was readable; then both are unmapped.
 */
static void do_mremap(const struct diff_arena *a, const struct op *op, struct res *rn,
		      struct res *rf)
{
	size_t len_n = op_len(op, a->base_n), len_f = op_len(op, a->base_f);
	void *pn, *pf;

	errno = 0;
	pn = k_mremap(a->base_n + op->off, len_n, op->new_len, op->mflags, a->base_n + op->new_off);
	rn->err = errno;
	rn->ret = classify(a, pn, a->base_n);
	errno = 0;
	pf = fl_mremap(a->sp, a->base_f + op->off, len_f, op->new_len, op->mflags,
		       a->base_f + op->new_off);
	rf->err = errno;
	rf->ret = classify(a, pf, a->base_f);
	if (rn->ret == RES_ELSEWHERE && rf->ret == RES_ELSEWHERE) {
		int page = (int)(op->off / ps);
		size_t n = (op->new_len + ps - 1) / ps * ps;

		size_t cmp = len_n < n ? (len_n + ps - 1) / ps * ps : n;

		/* Page by page, as the old range's pages were (a page of a
		 * file past its end is not read: SIGBUS in both). */
		for (size_t o = 0; o < cmp && page + (int)(o / ps) < a->npages; o += ps) {
			int i = page + (int)(o / ps);

			if (a->st_n[i] >= 0 && (a->st_n[i] & PROT_READ) &&
			    diff_page_touchable(a, i) && memcmp((char *)pn + o, (char *)pf + o, ps))
				diff_fail("the mapping moved out of the arena differs at +%#zx: "
					  "native %p, faultline %p",
					  o, pn, pf);
		}
	}
	if (rn->ret == RES_ELSEWHERE)
		CHECK(k_munmap(pn, op->new_len) == 0, "munmap(%p): %s", pn, strerror(errno));
	if (rf->ret == RES_ELSEWHERE && fl_munmap(a->sp, pf, op->new_len))
		diff_fail("fl_munmap(%p, %#zx) of a mapping moved out of the arena: errno %d", pf,
			  op->new_len, errno);
}

static void do_call(const struct diff_arena *a, const struct op *op, struct res *res, bool native)
{
	char *base = native ? a->base_n : a->base_f;
	void *addr = base + op->off;
	size_t len = op_len(op, base);
	int ret = 0;

	errno = 0;
	switch (op->kind) {
	case OP_MUNMAP:
		ret = native ? k_munmap(addr, len) : fl_munmap(a->sp, addr, len);
		break;
	case OP_MPROTECT:
		ret = native ? k_mprotect(addr, len, op->prot)
			     : fl_mprotect(a->sp, addr, len, op->prot);
		break;
	case OP_MADVISE:
		ret = native ? k_madvise(addr, len, op->advice)
			     : fl_madvise(a->sp, addr, len, op->advice);
		break;
	case OP_MSYNC:
		ret = native ? k_msync(addr, len, op->msflags)
			     : fl_msync(a->sp, addr, len, op->msflags);
		break;
	default:
		CHECK(0, "bad op kind %d", op->kind);
	}
	res->err = errno;
	if (ret != 0 && ret != -1)
		diff_fail("%s returned %d", native ? "native" : "faultline", ret);
	res->ret = ret;
}

static void do_write(const struct diff_arena *a, struct t_rng *r, const struct op *op)
{
	CHECK(op->len <= DIFF_WRITE_PAGES * ps, "write of %#zx bytes", op->len);
	for (size_t i = 0; i < op->len; i += 8) {
		uint64_t v = t_rand(r);

		memcpy(wbuf + i, &v, op->len - i < 8 ? op->len - i : 8);
	}
	memcpy(a->base_n + op->off, wbuf, op->len);
	memcpy(a->base_f + op->off, wbuf, op->len);
}

void diff_exec(struct diff_arena *a, struct t_rng *r, const struct op *op)
{
	struct res rn = {0, 0}, rf = {0, 0};
	char b1[96], b2[96];

	cur = a;
	if (op->fl_only) {
		do_fl_only(a, op);
		a->tally[op->kind][2]++;
		snprintf(history[history_n++ % HISTORY], sizeof(history[0]), "%s -> EINVAL",
			 diff_op_desc);
		return;
	}
	switch (op->kind) {
	case OP_MMAP:
		do_mmap(a, op, &rn, &rf);
		break;
	case OP_MUNMAP:
	case OP_MPROTECT:
	case OP_MADVISE:
	case OP_MSYNC:
		do_call(a, op, &rn, true);
		do_call(a, op, &rf, false);
		break;
	case OP_MREMAP:
		do_mremap(a, op, &rn, &rf);
		break;
	case OP_WRITE:
		do_write(a, r, op);
		break;
	case OP_READ:
		compare_page(a, (int)(op->off / ps));
		break;
	default:
		CHECK(0, "bad op kind %d", op->kind);
	}
	snprintf(history[history_n++ % HISTORY], sizeof(history[0]), "%s -> N %s, F %s",
		 diff_op_desc, res_str(&rn, b1, sizeof(b1)), res_str(&rf, b2, sizeof(b2)));
	compare_res(op, &rn, &rf);
	a->tally[op->kind][rn.ret == RES_FAIL]++;
	/* After MS_SYNC (which goes on past a hole), the file pages that the
	 * range's shared mappings map are in both files. */
	if (op->kind == OP_MSYNC && (op->msflags & MS_SYNC) && (rn.ret == 0 || rn.err == ENOMEM) &&
	    op->len_mode == LEN_PLAIN) {
		size_t first = op->off / ps, last = (op->off + op->len + ps - 1) / ps;

		for (size_t i = first; i < last && i < (size_t)a->npages; i++)
			if (a->st_n[i] >= 0 && a->sh_n[i] && a->pg_n[i] >= 0)
				diff_files_compare(a, (size_t)a->pg_n[i], (size_t)a->pg_n[i] + 1);
	}
}

void diff_print_tally(struct diff_arena *a)
{
	long(*t)[3] = a->tally;

	printf("  %smmap %ld ok %ld failed %ld refused, munmap %ld/%ld, mprotect %ld/%ld, "
	       "madvise %ld/%ld/%ld, msync %ld/%ld, mremap %ld/%ld, write %ld, read %ld\n",
	       a->name, t[OP_MMAP][0], t[OP_MMAP][1], t[OP_MMAP][2], t[OP_MUNMAP][0],
	       t[OP_MUNMAP][1], t[OP_MPROTECT][0], t[OP_MPROTECT][1], t[OP_MADVISE][0],
	       t[OP_MADVISE][1], t[OP_MADVISE][2], t[OP_MSYNC][0], t[OP_MSYNC][1], t[OP_MREMAP][0],
	       t[OP_MREMAP][1], t[OP_WRITE][0], t[OP_READ][0]);
	memset(a->tally, 0, sizeof(a->tally));
}

/* ------------------------------------------------------------------ runs */

void diff_start(struct diff_arena *a, struct fl_space *sp)
{
	CHECK(a->npages > 0 && a->npages <= DIFF_MAX_PAGES, "arena of %d pages", a->npages);
	a->sp = sp;
	diff_check_state(a);
	for (int i = 0; i < a->npages; i++)
		CHECK(a->st_n[i] < 0 && a->st_f[i] < 0, "%s: %sarena page %d mapped at start",
		      diff_context, a->name, i);
}

void diff_end(struct diff_arena *a)
{
	fl_space_destroy(a->sp);
	a->sp = NULL;
	read_proc_maps();
	parse_maps(a, maps_buf, a->base_f, a->st_f, NULL, NULL, NULL, NULL);
	for (int i = 0; i < a->npages; i++)
		CHECK(a->st_f[i] < 0, "%s: %sF page %d still mapped after fl_space_destroy",
		      diff_context, a->name, i);
	CHECK(k_munmap(a->base_n, arena_len(a)) == 0, "munmap N arena: %s", strerror(errno));
}

/*
 * Free, far-apart arenas.  A candidate must be free (a raw
 * MAP_FIXED_NOREPLACE, which no interceptor sees, proves it) and usable
 * through libc's mmap with MAP_FIXED (which a sanitizer refuses outside the
 * application memory of its layout; faultline's own mmap calls go through
 * libc).
 */
void diff_reserve(char **bases, int n, size_t len)
{
	static const uintptr_t cand[] = {
		0x200000000000UL, 0x300000000000UL, 0x580000000000UL, 0x590000000000UL,
		0x7000000000UL,	  0x7800000000UL,   0x10000000000UL,  0x18000000000UL,
		0x400000000000UL, 0x480000000000UL, 0x7a0000000000UL, 0x7a8000000000UL,
		0x560000000000UL, 0x568000000000UL,
	};
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	int got = 0;

	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]) && got < n; i++) {
		void *want = (void *)cand[i];
		void *p = k_mmap(want, len, PROT_NONE, flags | MAP_FIXED_NOREPLACE);

		if (p == MAP_FAILED)
			continue;
		CHECK(k_munmap(p, len) == 0, "munmap: %s", strerror(errno));
		if (p != want) /* a kernel without MAP_FIXED_NOREPLACE */
			continue;
		p = mmap(want, len, PROT_NONE, flags | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			continue;
		CHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
		if (p == want)
			bases[got++] = p;
	}
	CHECK(got == n, "no %d free arenas among the candidate addresses", n);
}
