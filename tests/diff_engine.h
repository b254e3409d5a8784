/* SPDX-License-Identifier: MIT */
/*
 * The differential oracle of test_diff and fuzz/fuzz_mm: the five mm calls
 * and page accesses, run on faultline memory and, at the same page offsets,
 * on native memory, with the kernel as the reference (diff_engine.c), and
 * the generator of those operations (diff_gen.c).
 *
 * An arena pair: N holds native memory (raw mmap, munmap, mprotect,
 * madvise system calls), F holds faultline memory (fl_* on one space); both
 * at fixed, far-apart addresses, npages pages each.  diff_exec() runs one
 * operation on both and requires the same return value and errno;
 * diff_check_state() requires the same per-page protection of N and F as
 * the kernel shows it in /proc/self/maps (faultline's mappings are real
 * mappings: the kernel's view of F is authoritative), fl_maps() to agree
 * with it and list nothing outside F, and fl_stats() too (mapped_bytes, and
 * vmas against the lines fl_maps() printed); diff_check_contents() requires
 * every readable page of N to hold the same bytes as its twin in F (an
 * untouched F page is a fault that faultline serves with zeros).
 *
 * What faultline documents as different is not compared with the kernel
 * (op->fl_only): shared, file, MAP_GROWSDOWN, MAP_HUGETLB, MAP_LOCKED and
 * other flags outside the list in faultline.h, and madvise advice other than
 * MADV_DONTNEED, MADV_NORMAL, MADV_WILLNEED, MADV_COLD, MADV_PAGEOUT,
 * MADV_SEQUENTIAL, MADV_RANDOM and the fork advice (MADV_DONTFORK,
 * MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK).
 * For those, faultline must fail with EINVAL and change nothing (the next
 * state check sees the latter).  VMA boundaries are not compared either:
 * faultline merges adjacent VMAs more eagerly than the kernel, so only
 * per-page protection is, and an mremap whose range must lie inside one VMA
 * (a growth or a move, not a fixed move of the same length, which may span
 * several) is generated to stop at the next native VMA boundary between
 * pages of the same protection (where the kernel, keeping apart anonymous
 * VMAs that faulted separately, says EFAULT and faultline does not).  An
 * mremap that moves the mapping out of the arena (MREMAP_MAYMOVE, the
 * kernel's choice of address) must do so on both sides, with the same
 * bytes there; both copies are then unmapped.
 *
 * A mismatch prints the operation, both results, the last operations and
 * the driver's context (diff_context, diff_repeat), then calls diff_on_fail
 * (default: exit with the test's failure code).
 */
#ifndef FL_DIFF_ENGINE_H
#define FL_DIFF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <faultline.h>

#include "util.h"

#define DIFF_MAX_PAGES 512
#define DIFF_WRITE_PAGES 3 /* the most pages one OP_WRITE spans */

enum op_kind {
	OP_MMAP,
	OP_MUNMAP,
	OP_MPROTECT,
	OP_MADVISE,
	OP_MREMAP,
	OP_WRITE,
	OP_READ,
	OP_MSYNC,
	OP_NKINDS,
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
	/* OP_MMAP of a file (arena in file mode): which descriptor, DIFF_FD_*,
	 * and the offset; OP_MSYNC: flags in msflags. */
	int fd;
	long long foff;
	int msflags;
	/* OP_MREMAP: the new length, the flags, the new address (from the
	 * arena base; passed only with MREMAP_FIXED or MREMAP_DONTUNMAP). */
	size_t new_len;
	int mflags;
	size_t new_off;
};

/* The descriptor of an OP_MMAP: none (anonymous, -1), the arena's file
 * read-write or read-only, or a bad one. */
enum { DIFF_FD_NONE, DIFF_FD_RW, DIFF_FD_RO, DIFF_FD_BAD };

struct diff_arena {
	const char *name; /* in reports: "" for one arena, "A " and "B " for two */
	struct fl_space *sp;
	char *base_n, *base_f;
	int npages;
	/* Per page: the protection, or -1 if unmapped.  N and F from
	 * /proc/self/maps, L from fl_maps(); as of the last diff_check_state(). */
	int st_n[DIFF_MAX_PAGES], st_f[DIFF_MAX_PAGES], st_l[DIFF_MAX_PAGES];
	/*
	 * File mode (file_pages > 0): N maps one file, F another of the same
	 * contents; the kernel's mmap of the first is the reference for
	 * faultline's of the second.  Per page as of the last state check: the
	 * page of the file it maps (-1: none) and whether shared, N's and F's
	 * from /proc/self/maps, L's from fl_maps().
	 */
	size_t file_pages;
	int fd_n, fd_f, fd_n_ro, fd_f_ro;
	long pg_n[DIFF_MAX_PAGES], pg_f[DIFF_MAX_PAGES], pg_l[DIFF_MAX_PAGES];
	bool sh_n[DIFF_MAX_PAGES], sh_f[DIFF_MAX_PAGES], sh_l[DIFF_MAX_PAGES];
	/* Per page: a native VMA starts there (the kernel's VMA boundaries,
	 * which faultline may not keep: the generator's mremap ranges stop
	 * at them). */
	bool vstart_n[DIFF_MAX_PAGES];
	/* Outcomes per kind: [kind][0 ok, 1 failed in both, 2 refused by faultline alone]. */
	long tally[OP_NKINDS][3];
};

/*
 * Where the generator's choices come from: test_diff's seeded PRNG, or the
 * fuzzer's input, so that both run the same operations.
 */
struct diff_src {
	uint64_t (*below)(void *ctx, uint64_t n); /* a choice in [0, n), n > 0 */
	void *ctx;
};

/* Set by the driver: who is running, and how to repeat it (in reports). */
extern char diff_context[256], diff_repeat[256];
/* The operation in progress and what follows it, for crash and hang reports. */
extern char diff_op_desc[512];
extern long diff_op_idx;
/* Called after a mismatch is reported; must not return. */
extern void (*diff_on_fail)(void);

/* Page size and buffers; once, before anything else. */
void diff_init(void);
size_t diff_page_size(void);
/* n free, far-apart arenas of len bytes each, at fixed addresses, into bases[]. */
void diff_reserve(char **bases, int n, size_t len);

/* A run on arena a starts with sp: both halves must be empty. */
void diff_start(struct diff_arena *a, struct fl_space *sp);
/* Destroy the space; F must then be empty; unmap N. */
void diff_end(struct diff_arena *a);
/* Forget the operations of the last run (the history printed on a mismatch). */
void diff_history_reset(void);

/*
 * The next operation on arena a, as of its last diff_check_state(): mostly
 * valid calls on and around its mappings, reads and writes of its pages,
 * some arguments the kernel refuses and some faultline documents as refused.
 */
void diff_gen_op(const struct diff_arena *a, struct diff_src *src, struct op *op);
/* Describe op (with prefix, e.g. "run 3 ") in diff_op_desc. */
void diff_describe(const struct diff_arena *a, const struct op *op, const char *prefix);
/* Say what follows the operation, for the fatal-signal and hang reports. */
void diff_set_phase(const char *what);
/* Run op on both halves and compare the outcomes; OP_WRITE's bytes come from r. */
void diff_exec(struct diff_arena *a, struct t_rng *r, const struct op *op);
void diff_check_state(struct diff_arena *a);
void diff_check_contents(struct diff_arena *a);
void diff_print_tally(struct diff_arena *a);

/* File mode: make both files (pages of the same random bytes from seed),
 * before diff_start(); compare them whole (after diff_end()); remove them. */
void diff_files_create(struct diff_arena *a, size_t pages, uint64_t seed);
void diff_files_compare(struct diff_arena *a, size_t first, size_t last);
void diff_files_remove(struct diff_arena *a);
/* Whether page i of the arena (as of the last state check) may be touched:
 * mapped and, if it maps a file, inside the file. */
bool diff_page_touchable(const struct diff_arena *a, int i);

/* Raw system calls: the kernel itself, not libc and not a sanitizer's interceptor. */
void *k_mmap(void *addr, size_t len, int prot, int flags);
void *k_mmap_fd(void *addr, size_t len, int prot, int flags, int fd, long long off);
int k_munmap(void *addr, size_t len);

void __attribute__((format(printf, 1, 2), noreturn)) diff_fail(const char *fmt, ...);

#endif /* FL_DIFF_ENGINE_H */
