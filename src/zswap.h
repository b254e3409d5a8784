/* SPDX-License-Identifier: MIT */
/*
 * The compressed tier (zswap.c), as the kernel's zswap: a page evicted to a
 * store slot is compressed and kept in memory under that slot's number,
 * and a fault on it decompresses it without I/O.
 *
 *   - A same-filled page (every word equal) keeps only the word.
 *   - A page that does not compress into the pool's largest object with a
 *     header (ZS_MAX_COMPRESSED) is refused: it goes to the store below, as
 *     the kernel's zswap did before 6.18.  The pool shares the budget with
 *     the resident pages, so such a page kept in it would take the memory
 *     of a resident page and add a copy to every access of it, for the same
 *     disk reads (BENCHMARKS.md, "Compressed swap": random data).  With
 *     keep_raw (FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE), as the kernel's zswap
 *     since 6.18: a page whose compressed form would take no less of the
 *     pool than the page (it does not compress, or only into an object of
 *     the largest header class) is kept as it is (ZS_RAW), in a whole page
 *     of the pool's page class; a load copies it, with no decompression,
 *     and the LRU writes it back in its turn.
 *   - Past max_bytes of pool memory a store is rejected too (it goes
 *     below), and the coldest entries are written back until the pool is
 *     under ZS_ACCEPT_PCT percent of max_bytes again, as zswap's accept
 *     threshold does.  They are written back decompressed: the store below
 *     then holds plain pages, so that a read from it needs nothing of this
 *     tier, and its integrity layer and encryption work on whole pages.
 *   - Entries stay after a load (a clean page's copy stays valid, and it
 *     can be evicted again without a write); a load sets the entry's
 *     referenced bit, and the writeback's clock gives such an entry a
 *     second chance (zswap_writeback_pick()).
 *
 * Compression contexts (LZ4 state, or a zstd context) are made at init, one
 * per possible concurrent user, and taken by compare-and-swap: nothing
 * allocates after init, as eviction also runs in the SIGBUS handler.  A
 * store that finds every context busy is rejected (the page goes to the
 * store below); a load (zstd's decompression needs a context, LZ4's does
 * not) sleeps on ctx_seq until one is put back.  A context is held only
 * around one compression or decompression, with at most z->lock taken
 * meanwhile, so the sleep ends.
 *
 * A slot invalidated while its entry is being written below must not be
 * written again until that write is over (two writes of one slot in flight
 * may land in either order): zswap_invalidate() says so, and
 * zswap_writeback_done() says when the slot may go.
 *
 * The pool fragments as entries go in random order: zswap_compact(), run by
 * the tier's worker when zswap_needs_compaction(), moves objects together
 * and re-points their entries (zpool.h).
 *
 * Locks: lock (a leaf but for zpool's class locks, which nest inside it)
 * guards the index and the LRU; every change of an entry, and of where its
 * object is (compaction moves objects under it), is made under it, inside
 * the entry's seq count (odd meanwhile).  A load takes no lock: it reads
 * the entry and copies its object between two reads of seq, and reads
 * again if seq moved (ZS_LOAD_TRIES times, then under lock), so a holder
 * of lock preempted delays no load.  Freed and moved objects stay mapped
 * memory (zp_map_racy()), so such a copy is only thrown away.
 * Compression and decompression run outside lock, on copies.
 */
#ifndef FL_ZSWAP_H
#define FL_ZSWAP_H

#include "lib.h"
#include "zpool.h"

enum zs_algo { ZS_OFF = 0, ZS_LZ4 = 1, ZS_ZSTD = 2, ZS_LZO = 3 }; /* = enum fl_zswap */

#define ZS_MAX_COMPRESSED ZP_MAX_LEN /* what does not fit is incompressible */
#define ZS_ACCEPT_PCT 95
#define ZS_CONTEXTS 16
/* A load's tries without z->lock before it takes it (a change of the entry
 * or of its object's place in each). */
#define ZS_LOAD_TRIES 4
#define ZS_GROW_BYTES (1u << 20) /* of the entry table made accessible at a time */
/* Referenced entries a writeback pick gives a second chance, at most. */
#define ZS_ROTATE_MAX 64
/* Compaction is worth a pass once it would give back this share of the
 * pool, and at least this many slabs (zp_reclaimable_bytes()). */
#define ZS_COMPACT_GAIN_PCT 5
#define ZS_COMPACT_MIN_SLABS 4
#define ZS_COMPACT_MAX_STEPS 4096 /* source slabs per class and pass */

struct zs_entry {
	uint64_t fill;	     /* ZS_SAME: the word the page is made of */
	uint64_t token;	     /* which store of the slot this is */
	uint32_t handle;     /* in the pool, if not ZS_SAME */
	uint16_t len;	     /* compressed bytes (ZS_RAW: PAGE_SIZE) */
	uint16_t flags;	     /* ZS_PRESENT, ZS_SAME, ZS_RAW, ZS_WRITEBACK, ZS_DEAD, ZS_BAD */
	uint32_t prev, next; /* the LRU: slot + 1; 0 none.  Hot end: head. */
	/* Odd while the fields above (but the LRU's) change, under z->lock:
	 * a load reads them without the lock and retries if it moved. */
	_Atomic uint32_t seq;
	/* Loaded since the writeback's clock last passed: a second chance.
	 * Set by loads without the lock, cleared by zswap_writeback_pick(). */
	_Atomic uint8_t ref;
};
#define ZS_PRESENT 0x1
#define ZS_SAME 0x2
#define ZS_WRITEBACK 0x4 /* being written below: not picked twice */
#define ZS_DEAD 0x8	 /* invalidated while written below: a tombstone */
#define ZS_RAW 0x10	 /* kept as it is: it did not compress */
#define ZS_BAD 0x20	 /* does not decompress: a load fails, writeback skips it */

struct zs_ctx {
	_Atomic bool busy;
	void *c; /* LZ4 state, LZO1X-1's work memory or ZSTD_CCtx */
	void *d; /* ZSTD_DCtx, or LZO's output (LZO_OUT_MAX bytes) */
};

struct zswap_stats {
	_Atomic uint64_t stores, same_filled, incompressible, rejected_full, rejected_busy, hits,
		misses, writebacks, decompress_errors, ctx_waits, load_retries, load_locked,
		rotated;
	_Atomic uint64_t compactions, compacted, compact_slabs_freed; /* zswap_compact() */
};

struct zswap {
	enum zs_algo algo;
	int level;	  /* zstd's */
	size_t max_bytes; /* pool memory allowed */
	unsigned long max_slots;
	struct zs_entry *e;   /* max_slots, reserved inaccessible, opened as used */
	pthread_mutex_t lock; /* e[], e_bytes, head, tail, nr, nr_raw, stored_bytes, next_token */
	/* The start of e[] made accessible (entries_grow()): e_bytes bytes,
	 * whole entries e_mapped; both only grow, under z->lock; e_mapped is
	 * read without it by loads, before e[slot]. */
	size_t e_bytes;
	_Atomic unsigned long e_mapped;
	uint32_t head, tail; /* slot + 1 */
	uint64_t nr, nr_raw, stored_bytes, next_token;
	bool keep_raw; /* set before the first store: see ZS_RAW above */
	struct zpool pool;
	struct zs_ctx ctx[ZS_CONTEXTS];
	/* Loads asleep for a context, and the futex word they sleep on (bumped
	 * by a put that sees a sleeper); no lock. */
	_Atomic uint32_t ctx_waiters, ctx_seq;
	struct zswap_stats st;
};

int zswap_init(struct zswap *z, enum zs_algo algo, unsigned long max_slots, size_t max_bytes);
void zswap_destroy(struct zswap *z);
int zswap_store(struct zswap *z, uint32_t slot, const void *page);
int zswap_load(struct zswap *z, uint32_t slot, void *page);
bool zswap_invalidate(struct zswap *z, uint32_t slot);
bool zswap_needs_writeback(struct zswap *z);
long zswap_writeback_pick(struct zswap *z, void *page, uint64_t *token, long *dead);
bool zswap_writeback_done(struct zswap *z, uint32_t slot, uint64_t token, bool written);
size_t zswap_pool_bytes(struct zswap *z);
bool zswap_needs_compaction(struct zswap *z);
uint64_t zswap_compact(struct zswap *z);

#endif /* FL_ZSWAP_H */
