// SPDX-License-Identifier: MIT
/*
 * The operations of test_diff and fuzz/fuzz_mm (diff_gen_op() in
 * diff_engine.h): each choice is drawn from a struct diff_src, a seeded
 * PRNG for the test and the input for the fuzzer, so both run the same
 * kinds of operations with the same weights.  Ranges are chosen so that no
 * call can change anything outside the arena: a length that would reach
 * past it from a mapped page goes only where the kernel refuses it first.
 */
#define _GNU_SOURCE
#include "diff_engine.h"

#include <sys/mman.h>
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PROT_RWX (PROT_READ | PROT_WRITE | PROT_EXEC)

static size_t ps;

static uint64_t src_below(struct diff_src *r, uint64_t n)
{
	uint64_t v = r->below(r->ctx, n);

	CHECK(v < n, "a choice of %" PRIu64 " among %" PRIu64, v, n);
	return v;
}

static int src_chance(struct diff_src *r, unsigned int pct)
{
	return src_below(r, 100) < pct;
}

/* The advice faultline serves: compared with the kernel's. */
static int rand_advice(struct diff_src *r)
{
	static const int served[] = {MADV_DONTNEED, MADV_NORMAL,     MADV_WILLNEED,  MADV_COLD,
				     MADV_PAGEOUT,  MADV_SEQUENTIAL, MADV_RANDOM,    MADV_DONTFORK,
				     MADV_DOFORK,   MADV_WIPEONFORK, MADV_KEEPONFORK};

	return src_chance(r, 50) ? MADV_DONTNEED
				 : served[src_below(r, sizeof(served) / sizeof(served[0]))];
}

static int rand_prot(struct diff_src *r)
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

	return prots[src_below(r, sizeof(prots) / sizeof(prots[0]))];
}

/* A range inside the arena: whole pages, sometimes a length short of a page boundary. */
static void rand_range(const struct diff_arena *a, struct diff_src *r, struct op *op)
{
	size_t p = src_below(r, a->npages);
	size_t n = src_chance(r, 70) ? 1 + src_below(r, 8) : 1 + src_below(r, 64);

	if (n > a->npages - p)
		n = a->npages - p;
	op->off = p * ps;
	op->len = n * ps;
	if (src_chance(r, 10))
		op->len -= 1 + src_below(r, ps - 1);
}

static int base_map_flags(struct diff_src *r)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;

	if (src_chance(r, 20))
		flags |= MAP_NORESERVE;
	if (src_chance(r, 10))
		flags |= MAP_POPULATE;
	if (src_chance(r, 5))
		flags |= MAP_STACK;
	return flags;
}

/* MAP_FIXED, MAP_FIXED_NOREPLACE or neither, alike. */
static int rand_fixed(struct diff_src *r)
{
	static const int fixed[] = {MAP_FIXED, MAP_FIXED_NOREPLACE, 0};

	return fixed[src_below(r, 3)];
}

/* A length the kernel refuses before it looks at any mapping. */
static void rand_bad_len(struct diff_src *r, struct op *op, bool allow_huge)
{
	switch (src_below(r, allow_huge ? 4 : 3)) {
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

static bool pick_page(const struct diff_arena *a, struct diff_src *r, int want, int *page);

/*
 * An mremap, mostly of a mapped range: shrink, same size or grow, in place,
 * MAYMOVE, FIXED, DONTUNMAP.  Nothing can reach outside the arena: a fixed
 * destination lies inside it, and a growth in place stops at its end.  A
 * range that must lie inside one VMA stops at the next native VMA boundary
 * between pages of the same protection (diff_engine.h).
 */
static void gen_mremap(const struct diff_arena *a, struct diff_src *r, struct op *op)
{
	size_t np = (size_t)a->npages, page, span = 1, old_pages, new_pages, need;
	unsigned int x;
	int p;

	op->kind = OP_MREMAP;
	if (src_chance(r, 85) && pick_page(a, r, 0, &p))
		op->off = (size_t)p * ps;
	page = op->off / ps;
	while (page + span < np && a->st_n[page + span] >= 0 &&
	       a->st_n[page + span] == a->st_n[page])
		span++;
	old_pages = src_chance(r, 85) ? 1 + src_below(r, span) : 1 + src_below(r, 8);
	if (old_pages > np - page)
		old_pages = np - page;
	x = (unsigned int)src_below(r, 100);
	new_pages = x < 30		      ? old_pages
		    : x < 55 && old_pages > 1 ? 1 + src_below(r, old_pages - 1)
					      : old_pages + 1 + src_below(r, 8);
	x = (unsigned int)src_below(r, 100);
	op->mflags = x < 25   ? 0
		     : x < 55 ? MREMAP_MAYMOVE
		     : x < 85 ? MREMAP_MAYMOVE | MREMAP_FIXED
		     : x < 92 ? MREMAP_MAYMOVE | MREMAP_DONTUNMAP
			      : MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
	if ((op->mflags & MREMAP_DONTUNMAP) && src_chance(r, 90))
		new_pages = old_pages;
	if (new_pages > np)
		new_pages = np;
	if (op->mflags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
		/* A destination inside the arena, mostly clear of the source. */
		for (int tries = 0; tries < 8; tries++) {
			op->new_off = src_below(r, np - new_pages + 1) * ps;
			if (op->new_off + new_pages * ps <= op->off ||
			    op->off + old_pages * ps <= op->new_off || src_chance(r, 5))
				break;
		}
	} else if (page + new_pages > np) {
		new_pages = np - page; /* a growth in place stays inside */
	}
	/* DONTUNMAP with two lengths is EINVAL before any VMA is looked at:
	 * no trim (one would make it valid, and spanning VMAs again). */
	if (!((op->mflags & MREMAP_FIXED) && new_pages == old_pages) &&
	    !((op->mflags & MREMAP_DONTUNMAP) && new_pages != old_pages)) {
		need = new_pages < old_pages ? new_pages : old_pages;
		for (size_t i = page + 1; i < page + need && i < np; i++) {
			if (a->vstart_n[i] && a->st_n[i] >= 0 && a->st_n[i] == a->st_n[i - 1]) {
				if (new_pages < old_pages)
					new_pages = i - page;
				else
					old_pages = i - page;
				if (op->mflags & MREMAP_DONTUNMAP) /* the lengths were equal */
					new_pages = old_pages;
				break;
			}
		}
	}
	/* The destination stays inside the arena (the trim above only ever
	 * shortens; this guards the choice against any later change). */
	if ((op->mflags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) &&
	    op->new_off + new_pages * ps > np * ps)
		op->new_off = (np - new_pages) * ps;
	op->len = old_pages * ps;
	op->new_len = new_pages * ps;
	if (src_chance(r, 10))
		op->len -= 1 + src_below(r, ps - 1);
	if (src_chance(r, 10))
		op->new_len -= 1 + src_below(r, ps - 1);
}

static void gen_bad(const struct diff_arena *a, struct diff_src *r, struct op *op)
{
	int page = (int)(op->off / ps);
	bool start_unmapped = a->st_n[page] < 0;

	switch (src_below(r, 17)) {
	case 14: /* mremap: an unaligned address, or flags no kernel knows */
		op->kind = OP_MREMAP;
		op->new_len = op->len;
		if (src_chance(r, 50))
			op->off += 1 + src_below(r, ps - 1);
		else
			op->mflags = src_chance(r, 50) ? 0x100 : MREMAP_FIXED;
		break;
	case 15: /* mremap: a new length of 0 or past the address space */
		op->kind = OP_MREMAP;
		op->mflags = MREMAP_MAYMOVE;
		op->new_len = src_chance(r, 50) ? 0 : (size_t)1 << 48;
		break;
	case 16: /* mremap: an old length of 0 (a private mapping: EINVAL) */
		op->kind = OP_MREMAP;
		op->len = 0;
		op->new_len = ps * (1 + src_below(r, 4));
		op->mflags = MREMAP_MAYMOVE;
		break;
	case 0: /* unaligned fixed address */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags =
			base_map_flags(r) | (src_chance(r, 50) ? MAP_FIXED : MAP_FIXED_NOREPLACE);
		op->off += 1 + src_below(r, ps - 1);
		break;
	case 1: /* len 0 */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r) | (src_chance(r, 50) ? MAP_FIXED : 0);
		op->len = 0;
		break;
	case 2: /* huge or overflowing len: ENOMEM */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r);
		op->flags |= rand_fixed(r);
		rand_bad_len(r, op, true);
		break;
	case 3: /* undefined prot bits: the kernel ignores them in mmap */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r) | (src_chance(r, 50) ? 0x100 : 0x10);
		op->flags = base_map_flags(r) | MAP_FIXED;
		break;
	case 4: /* neither private nor shared: EINVAL; or a file mapping
		 * without a file: EBADF */
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = src_chance(r, 50) ? MAP_ANONYMOUS | MAP_FIXED : MAP_PRIVATE | MAP_FIXED;
		break;
	case 5:
		op->kind = OP_MUNMAP;
		op->off += 1 + src_below(r, ps - 1);
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
		op->off += 1 + src_below(r, ps - 1);
		break;
	case 9: /* len 0 succeeds, whatever the prot */
		op->kind = OP_MPROTECT;
		op->prot = src_chance(r, 50) ? rand_prot(r) : 0x100;
		op->len = 0;
		break;
	case 10:
		op->kind = OP_MPROTECT;
		op->prot = rand_prot(r) | (src_chance(r, 50) ? 0x100 : 0x10);
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
		switch (src_below(r, 3)) {
		case 0:
			op->off += 1 + src_below(r, ps - 1);
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
		op->advice = src_chance(r, 50) ? 9999 : -1;
		break;
	}
}

/* What faultline refuses by design, while the kernel would accept some of it. */
static void gen_fl_only(struct diff_src *r, struct op *op)
{
	static const int bad_flags[] = {
		MAP_SHARED | MAP_ANONYMOUS,
		MAP_SHARED_VALIDATE | MAP_ANONYMOUS,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_NONBLOCK,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
	};
	static const int advice[] = {
		MADV_FREE,   MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP,
		MADV_DODUMP, MADV_REMOVE,   MADV_FREE,
	};

	op->fl_only = true;
	if (src_chance(r, 60)) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = bad_flags[src_below(r, sizeof(bad_flags) / sizeof(bad_flags[0]))];
		op->flags |= rand_fixed(r);
	} else {
		op->kind = OP_MADVISE;
		op->advice = advice[src_below(r, sizeof(advice) / sizeof(advice[0]))];
	}
}

static bool pick_page(const struct diff_arena *a, struct diff_src *r, int want, int *page)
{
	int cand[DIFF_MAX_PAGES], n = 0;

	/* A page to touch (want != 0) must be inside the file it maps. */
	for (int i = 0; i < a->npages; i++)
		if (a->st_n[i] >= 0 && (a->st_n[i] & want) == want &&
		    (!want || diff_page_touchable(a, i)))
			cand[n++] = i;
	if (!n)
		return false;
	*page = cand[src_below(r, n)];
	return true;
}

/*
 * A mapping of the arena's file instead of anonymous memory: shared or
 * private, by the read-write or the read-only descriptor, at an offset
 * inside the file or a little past its end.  MAP_POPULATE is refused by
 * faultline for files (fl_only).
 */
static void make_file_map(const struct diff_arena *a, struct diff_src *r, struct op *op)
{
	static const int types[] = {MAP_SHARED, MAP_SHARED, MAP_PRIVATE, MAP_PRIVATE,
				    MAP_SHARED_VALIDATE};
	int fixed = op->flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);

	op->flags = types[src_below(r, 5)] | fixed | (op->flags & (MAP_NORESERVE | MAP_STACK));
	op->fd = src_chance(r, 85) ? DIFF_FD_RW : DIFF_FD_RO;
	op->foff = (long long)(src_below(r, a->file_pages + 8) * ps);
	if (src_chance(r, 3)) {
		op->fl_only = true;
		op->flags |= MAP_POPULATE;
	}
}

/* msync of a range, mostly inside the mappings; some flags the kernel refuses. */
static void gen_msync(const struct diff_arena *a, struct diff_src *r, struct op *op)
{
	static const int flags[] = {MS_SYNC,
				    MS_SYNC,
				    MS_SYNC,
				    MS_ASYNC,
				    MS_INVALIDATE,
				    MS_SYNC | MS_INVALIDATE,
				    MS_ASYNC | MS_INVALIDATE,
				    MS_SYNC | MS_ASYNC,
				    0x10,
				    0};
	int page;

	op->kind = OP_MSYNC;
	op->msflags = flags[src_below(r, sizeof(flags) / sizeof(flags[0]))];
	if (src_chance(r, 70) && pick_page(a, r, 0, &page)) {
		int span = 1;

		while (page + span < a->npages && a->st_n[page + span] >= 0)
			span++;
		op->off = page * ps;
		op->len = ps * (1 + src_below(r, span));
	}
	if (src_chance(r, 4))
		op->off += 1 + src_below(r, ps - 1);
}

void diff_gen_op(const struct diff_arena *a, struct diff_src *r, struct op *op)
{
	unsigned int x = src_below(r, 100);

	ps = diff_page_size();
	memset(op, 0, sizeof(*op));
	rand_range(a, r, op);
	/* File mode: msync now and then (an extra choice only there). */
	if (a->file_pages && src_chance(r, 8)) {
		gen_msync(a, r, op);
		return;
	}
	if (x < 12) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r) | MAP_FIXED;
	} else if (x < 18) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r) | MAP_FIXED_NOREPLACE;
		if (src_chance(r, 10))
			op->flags |= MAP_FIXED;
	} else if (x < 24) {
		op->kind = OP_MMAP;
		op->prot = rand_prot(r);
		op->flags = base_map_flags(r);
		if (src_chance(r, 15)) /* an unaligned hint is rounded, not refused */
			op->off += 1 + src_below(r, ps - 1);
	}
	if (x < 24) {
		if (a->file_pages && src_chance(r, 60))
			make_file_map(a, r, op);
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
		if (src_chance(r, 60) && pick_page(a, r, 0, &page)) {
			int span = 1;

			while (page + span < a->npages && a->st_n[page + span] >= 0)
				span++;
			op->off = page * ps;
			op->len = ps * (1 + src_below(r, span));
		}
	} else if (x < 63) {
		gen_mremap(a, r, op);
	} else if (x < 78) {
		int page;

		if (!pick_page(a, r, PROT_WRITE, &page)) {
			op->kind = OP_MMAP;
			op->prot = PROT_READ | PROT_WRITE;
			op->flags = base_map_flags(r) | MAP_FIXED;
			return;
		}
		op->kind = OP_WRITE;
		op->npages = 1;
		while (op->npages < 3 && page + op->npages < (size_t)a->npages &&
		       diff_page_touchable(a, (int)(page + op->npages)) &&
		       (a->st_n[page + op->npages] & PROT_WRITE) && src_chance(r, 30))
			op->npages++;
		op->off = page * ps + src_below(r, ps);
		op->len = 1 + src_below(r, (page + op->npages) * ps - op->off);
		if (src_chance(r, 20)) {
			op->off = page * ps;
			op->len = op->npages * ps;
		}
	} else if (x < 84) {
		int page;

		if (!pick_page(a, r, PROT_READ, &page)) {
			op->kind = OP_MUNMAP;
			return;
		}
		op->kind = OP_READ;
		op->off = page * ps;
	} else if (x < 96) {
		gen_bad(a, r, op);
	} else {
		gen_fl_only(r, op);
	}
}
