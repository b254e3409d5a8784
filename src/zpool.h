/* SPDX-License-Identifier: MIT */
/*
 * A pool for compressed pages (zpool.c), in the manner of the kernel's
 * zsmalloc: objects of up to a page, in size classes 64 bytes apart, carved
 * from slabs of 4 to 16 whole pages (zp_init() sizes them for the pool: a
 * slab leaves unused the end that no object fits, on average half an
 * object, so large pools take large slabs); an object is named by a 32-bit
 * handle, not a pointer, so that its slab can be found and freed.  An
 * object of more than ZP_MAX_LEN bytes (a page kept as it is) takes a whole
 * page of its own class, ZP_PAGE_CLASS, as zsmalloc's huge class does.
 *
 * Why not malloc, or jemalloc's arenas: eviction compresses pages in the
 * SIGBUS handler too (direct reclaim in sigbus delivery), where no
 * allocator of the C library may be entered, and under `faultline run` the
 * heap is itself faultline memory, so an allocator's lock may be held by
 * the very thread that faulted.  This pool takes only its own locks and
 * carves its slabs out of one mapping reserved at zp_init() (zpool.c).
 *
 * Compaction (zp_compact_step()), as zsmalloc's zs_compact(): objects of a
 * class move from its emptiest partial slab into its fullest ones, and the
 * emptied slab goes back to the system.  An object's handle then changes,
 * so each object carries the 32-bit name of its owner (given to
 * zp_alloc()) in a header (a whole-page object, in its slab's owner[]),
 * and the pool asks the owner, through a callback, to re-point its
 * reference once the bytes are at the new place; the owner's lock, held by
 * the caller around the step, keeps frees and re-pointing out meanwhile.
 * A reader without that lock (zp_map_racy()) must check afterwards that
 * the handle it used was still the owner's (zswap: the entry's seq).
 *
 * Locks: each class has a lock (a leaf but for slab_lock, which nests
 * inside it); pool-wide counts are atomics.  An owner's lock may be held
 * around any call (zswap: z->lock; see zp_compact_step()).
 */
#ifndef FL_ZPOOL_H
#define FL_ZPOOL_H

#include "lib.h"

#define ZP_ALIGN 64
#define ZP_HDR_CLASSES (PAGE_SIZE / ZP_ALIGN) /* 64 .. 4096 bytes, header inside */
#define ZP_PAGE_CLASS ZP_HDR_CLASSES	      /* whole pages, owner in the slab */
#define ZP_CLASSES (ZP_HDR_CLASSES + 1)
#define ZP_SLAB_MIN (4 * PAGE_SIZE) /* a slab: 16 .. 64 KiB, set at zp_init() */
#define ZP_SLAB_MAX (16 * PAGE_SIZE)
#define ZP_SLAB_PAGES_MAX (ZP_SLAB_MAX / PAGE_SIZE)
#define ZP_OBJ_BITS 10			/* a handle's object index: ZP_SLAB_MAX / ZP_ALIGN */
#define ZP_MAX_SLABS (1u << 20)		/* 16 to 64 GiB of slabs */
#define ZP_GROW_BYTES (1u << 20)	/* of slabs made writable at a time */
#define ZP_NONE 0u			/* the handle of no object */
#define ZP_HDR 4u			/* an object's header: its owner */
#define ZP_MAX_LEN (PAGE_SIZE - ZP_HDR) /* the largest object with a header */

struct zp_slab {
	void *mem;			   /* the pool's slab_size bytes, or NULL: a free slot */
	uint32_t free_head;		   /* object index + 1 of the first free object; 0: none */
	uint16_t inuse, nobj;		   /* objects in use, and in the slab */
	uint16_t cls;			   /* its class */
	uint16_t kept;			   /* empty, kept as its class's partial slab */
	uint32_t next, prev;		   /* slab index + 1 in its class's partial list */
	uint32_t owner[ZP_SLAB_PAGES_MAX]; /* ZP_PAGE_CLASS: each object's owner */
};

struct zp_class {
	pthread_mutex_t lock;	  /* partial; its slabs' free lists, counts, owner[] */
	uint32_t partial;	  /* slab index + 1 of the first slab with a free object */
	_Atomic uint32_t nr_free; /* free objects in its slabs: written under lock */
};

struct zpool {
	struct zp_class cls[ZP_CLASSES];
	struct zp_slab *slabs;	   /* max_slabs, reserved up front, backed as used */
	char *base;		   /* max_slabs slabs: slab i at base + i * slab_size */
	uint32_t max_slabs;	   /* set at zp_init() */
	uint32_t slab_size;	   /* set at zp_init(): ZP_SLAB_MIN .. ZP_SLAB_MAX bytes */
	pthread_mutex_t slab_lock; /* a leaf: nr_slabs, free_slab; after a class lock */
	uint32_t nr_slabs, free_slab;
	/* Slabs of the reservation made writable (zpool.c): written under
	 * slab_lock, read without it by zp_map_racy(); only grows. */
	_Atomic uint32_t mapped_slabs;
	_Atomic uint64_t bytes_slabs; /* memory the pool holds */
	/* Empty slabs kept (slab_release_empty()), at most keep_max: a
	 * sixteenth of the pool, so that a pool emptied is not held full by
	 * them.  Written under a class lock, counted across classes. */
	_Atomic uint32_t kept_slabs;
	uint32_t keep_max;
	_Atomic uint64_t objects;
	_Atomic uint64_t bytes_objects; /* their class sizes, headers included */
};

/*
 * Compaction's question to an owner: if owner still holds the object
 * handle, re-point its reference to new_handle (unless that is ZP_NONE:
 * only the question) and return true; else (the object is not yet, or no
 * longer, the owner's) return false.  The object is at new_handle already
 * when the owner re-points to it.
 * Context: the caller of zp_compact_step() holds the owners' lock; the
 * class lock is held too: the callback must not enter the pool.
 */
typedef bool (*zp_move_fn)(void *arg, uint32_t owner, uint32_t handle, uint32_t new_handle);

struct zp_compact_result {
	uint32_t moved;	      /* objects moved */
	uint32_t slabs_freed; /* slabs given back */
};

int zp_init(struct zpool *p, size_t max_bytes);
/* zp_init() with slabs of slab_size bytes (ZP_SLAB_MIN .. ZP_SLAB_MAX, whole
 * pages), not the size it would choose: for tests. */
int zp_init_slabs(struct zpool *p, size_t max_bytes, uint32_t slab_size);
void zp_destroy(struct zpool *p);
uint32_t zp_alloc(struct zpool *p, size_t len, uint32_t owner);
void zp_free(struct zpool *p, uint32_t handle);
void *zp_map(struct zpool *p, uint32_t handle);
const void *zp_map_racy(struct zpool *p, uint32_t handle, size_t len);
unsigned int zp_class_of(size_t len);
size_t zp_class_size(size_t len);
uint64_t zp_reclaimable_bytes(struct zpool *p);
bool zp_compact_step(struct zpool *p, unsigned int c, zp_move_fn move, void *arg,
		     struct zp_compact_result *res);

#endif /* FL_ZPOOL_H */
