/* SPDX-License-Identifier: MIT */
/*
 * The page-state table (pgtable.c): per page, a 64-bit entry.  Kept in chunks
 * of PT_CHUNK_PAGES pages (256 KiB of address space) in an RCU lock-free
 * hash table keyed by address, so that metadata grows with the pages
 * touched, not the size mapped.
 *
 * Each chunk has its own lock (the split PTL): every change of an entry, and
 * the userfaultfd ioctl or madvise that makes the kernel agree with it,
 * happens under it.  Invariant: the kernel has a page (or a poison marker)
 * at an address only if its entry says PRESENT (or NONE|POISON).
 */
#ifndef FL_PGTABLE_H
#define FL_PGTABLE_H

#include "lib.h"

#define PT_CHUNK_PAGES 64
#define PT_CHUNK_SHIFT (PAGE_SHIFT + 6) /* log2(PT_CHUNK_PAGES * PAGE_SIZE) */
#define PT_CHUNK_SIZE (1UL << PT_CHUNK_SHIFT)
#define PT_CHUNK_MASK (~(PT_CHUNK_SIZE - 1))
_Static_assert(PT_CHUNK_SIZE == PT_CHUNK_PAGES * PAGE_SIZE, "chunk shift");

/* The number of the chunk that holds addr: chunks of a range are consecutive. */
static inline unsigned long pt_chunk_nr(unsigned long addr)
{
	return addr >> PT_CHUNK_SHIFT;
}

/* The entry's place in its chunk. */
static inline unsigned int pt_index(unsigned long addr)
{
	return (addr >> PAGE_SHIFT) & (PT_CHUNK_PAGES - 1);
}

/*
 * An entry: bits 0-1 its type, bits 2-31 flags, bits 32-63 a value (a swap
 * slot, or a frame index).
 *
 *   NONE                 never touched, or dropped: the next touch is a
 *                        demand-zero fault (with POISON: a poison marker is
 *                        installed, every access gets SIGBUS until zapped)
 *   PRESENT              the kernel has the page.  ZEROPAGE: mapped as the
 *                        zero page (it may have been copied on write behind
 *                        our back: never trusted to be zero).  WP: installed
 *                        write-protected from a valid swap copy, value = that
 *                        slot: clean.  REF: touched since the clock passed.
 *                        HOT: extra passes of the clock hand.
 *   SWAP                 only in the store, value = slot; STAMP: the
 *                        space's eviction count when the page left
 *   FRAME                in a frame, value = frame index: being read, in the
 *                        swap cache, or being written back
 */
enum pte_type { PTE_NONE = 0, PTE_PRESENT = 1, PTE_SWAP = 2, PTE_FRAME = 3 };
#define PTE_TYPE_MASK 0x3ull
#define PTE_ZEROPAGE 0x4ull
#define PTE_WP 0x8ull
#define PTE_REF 0x10ull
#define PTE_POISON 0x20ull
/* PRESENT: extra passes of the clock hand, given to a page that refaulted
 * within fewer evictions than the budget (evicted too early). */
#define PTE_HOT_SHIFT 6
#define PTE_HOT_MASK 0xc0ull
/* SWAP: the space's eviction count when the page left, mod 2^24. */
#define PTE_STAMP_SHIFT 8
#define PTE_STAMP_MASK 0xffffff00ull
#define pte_stamp(p) ((uint32_t)(((p)&PTE_STAMP_MASK) >> PTE_STAMP_SHIFT))
#define mk_stamp(n) (((uint64_t)(n) << PTE_STAMP_SHIFT) & PTE_STAMP_MASK)
#define pte_type(p) ((unsigned int)((p)&PTE_TYPE_MASK))
#define pte_value(p) ((uint32_t)((p) >> 32))
#define mk_pte(type, flags, value) (((uint64_t)(value) << 32) | (flags) | (type))

struct pt_chunk {
	struct cds_lfht_node node;
	unsigned long base; /* immutable: chunk-aligned address */
	/* ptl: nests inside a VMA lock or mmap_lock, and reclaim_lock; several
	 * only in address order, or by trylock (reclaim's zap batch). */
	pthread_mutex_t ptl;
	unsigned int nr_present;	      /* ptl */
	_Atomic uint64_t pte[PT_CHUNK_PAGES]; /* written under ptl; read under it
					       * or racily as a hint */
	struct cds_list_head lru;	      /* clock_lock: the reclaim clock's ring */
	struct rcu_head rcu;
	struct pt_chunk *free_next; /* chunk_alloc_lock; the space while in RCU */
};

struct fl_space;

int pt_init(struct fl_space *sp);
void pt_destroy(struct fl_space *sp);
struct pt_chunk *pt_chunk_lookup(struct fl_space *sp, unsigned long addr);
struct pt_chunk *pt_chunk_get(struct fl_space *sp, unsigned long addr);
void pt_lock(struct pt_chunk *c);
bool pt_trylock(struct pt_chunk *c);
void pt_unlock(struct pt_chunk *c);
bool pt_zap_range(struct fl_space *sp, unsigned long start, unsigned long end, bool madvise);
void pt_free_unused(struct fl_space *sp, unsigned long start, unsigned long end);
void pt_walk_all(struct fl_space *sp, void (*fn)(struct fl_space *, struct pt_chunk *, void *),
		 void *arg);

#endif /* FL_PGTABLE_H */
