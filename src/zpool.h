/* SPDX-License-Identifier: MIT */
/*
 * A pool for compressed pages (zpool.c), in the manner of the kernel's
 * zsmalloc: objects of up to a page, in size classes 64 bytes apart, carved
 * from slabs of whole pages; an object is named by a 32-bit handle, not a
 * pointer, so that its slab can be found and freed.
 *
 * Why not malloc, or jemalloc's arenas: eviction compresses pages in the
 * SIGBUS handler too (direct reclaim in sigbus delivery), where no
 * allocator of the C library may be entered, and under `faultline run` the
 * heap is itself faultline memory, so an allocator's lock may be held by
 * the very thread that faulted.  This pool takes only its own locks and
 * gets its slabs with mmap.
 *
 * Locks: each class has a lock (a leaf); pool-wide counts are atomics.
 */
#ifndef FL_ZPOOL_H
#define FL_ZPOOL_H

#include "lib.h"

#define ZP_ALIGN 64
#define ZP_CLASSES (PAGE_SIZE / ZP_ALIGN) /* 64 .. 4096 bytes */
#define ZP_SLAB_PAGES 4
#define ZP_SLAB_SIZE (ZP_SLAB_PAGES * PAGE_SIZE)
#define ZP_MAX_SLABS (1u << 20) /* 16 GiB of slabs */
#define ZP_NONE 0u		/* the handle of no object */

struct zp_slab {
	void *mem;	      /* ZP_SLAB_SIZE bytes, or NULL: a free slot */
	uint32_t free_head;   /* object index + 1 of the first free object; 0: none */
	uint16_t inuse, nobj; /* objects in use, and in the slab */
	uint16_t cls;	      /* its class */
	uint32_t next, prev;  /* slab index + 1 in its class's partial list */
};

struct zp_class {
	pthread_mutex_t lock;
	uint32_t partial; /* slab index + 1 of the first slab with a free object */
};

struct zpool {
	struct zp_class cls[ZP_CLASSES];
	struct zp_slab *slabs;	   /* ZP_MAX_SLABS, reserved up front, backed as used */
	pthread_mutex_t slab_lock; /* a leaf: nr_slabs, free_slab; after a class lock */
	uint32_t nr_slabs, free_slab;
	_Atomic uint64_t bytes_slabs; /* memory the pool holds */
	_Atomic uint64_t objects;
};

int zp_init(struct zpool *p);
void zp_destroy(struct zpool *p);
uint32_t zp_alloc(struct zpool *p, size_t len);
void zp_free(struct zpool *p, uint32_t handle);
void *zp_map(struct zpool *p, uint32_t handle);
size_t zp_class_size(size_t len);

#endif /* FL_ZPOOL_H */
