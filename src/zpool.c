// SPDX-License-Identifier: MIT
/*
 * The pool for compressed pages (zpool.h).
 *
 * A class of size S (a multiple of ZP_ALIGN) has slabs of ZP_SLAB_SIZE
 * bytes cut into ZP_SLAB_SIZE / S objects; a free object holds the index
 * (+1) of the next free one in its first bytes.  Slabs with a free object
 * are on their class's partial list.  A slab whose last object is freed
 * goes back to the system, unless it is its class's only partial slab (so
 * that one page going in and out does not map and unmap a slab each time).
 *
 * A handle is (slab index + 1) << 8 | object index: a slab holds at most
 * ZP_SLAB_SIZE / ZP_ALIGN = 256 objects.
 */
#include "zpool.h"

#include <sys/mman.h>

_Static_assert(ZP_SLAB_SIZE / ZP_ALIGN <= 256, "object index in 8 bits");
_Static_assert((uint64_t)ZP_MAX_SLABS << 8 < (1ull << 32), "handle in 32 bits");

size_t zp_class_size(size_t len)
{
	return (len + ZP_ALIGN - 1) / ZP_ALIGN * ZP_ALIGN;
}

int zp_init(struct zpool *p)
{
	memset(p, 0, sizeof(*p));
	for (unsigned int c = 0; c < ZP_CLASSES; c++)
		pthread_mutex_init(&p->cls[c].lock, NULL);
	pthread_mutex_init(&p->slab_lock, NULL);
	p->slabs = mmap(NULL, ZP_MAX_SLABS * sizeof(*p->slabs), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->slabs == MAP_FAILED) {
		p->slabs = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Context: no object of the pool is used any more. */
void zp_destroy(struct zpool *p)
{
	if (p->slabs) {
		for (uint32_t i = 0; i < p->nr_slabs; i++)
			if (p->slabs[i].mem)
				munmap(p->slabs[i].mem, ZP_SLAB_SIZE);
		munmap(p->slabs, ZP_MAX_SLABS * sizeof(*p->slabs));
		p->slabs = NULL;
	}
	for (unsigned int c = 0; c < ZP_CLASSES; c++)
		pthread_mutex_destroy(&p->cls[c].lock);
	pthread_mutex_destroy(&p->slab_lock);
}

static void partial_add(struct zpool *p, struct zp_class *k, uint32_t si)
{
	struct zp_slab *s = &p->slabs[si];

	s->prev = 0;
	s->next = k->partial;
	if (k->partial)
		p->slabs[k->partial - 1].prev = si + 1;
	k->partial = si + 1;
}

static void partial_del(struct zpool *p, struct zp_class *k, uint32_t si)
{
	struct zp_slab *s = &p->slabs[si];

	if (s->prev)
		p->slabs[s->prev - 1].next = s->next;
	else
		k->partial = s->next;
	if (s->next)
		p->slabs[s->next - 1].prev = s->prev;
	s->next = s->prev = 0;
}

/*
 * A new slab for class c, on its partial list.  Context: the class lock
 * held; takes slab_lock.  Return: its index, or UINT32_MAX.
 */
static uint32_t slab_new(struct zpool *p, unsigned int c)
{
	size_t size = (size_t)(c + 1) * ZP_ALIGN;
	void *mem = mmap(NULL, ZP_SLAB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	struct zp_slab *s;
	uint32_t si;

	if (mem == MAP_FAILED)
		return UINT32_MAX;
	pthread_mutex_lock(&p->slab_lock);
	if (p->free_slab) {
		si = p->free_slab - 1;
		p->free_slab = p->slabs[si].next;
	} else if (p->nr_slabs < ZP_MAX_SLABS) {
		si = p->nr_slabs++;
	} else {
		pthread_mutex_unlock(&p->slab_lock);
		munmap(mem, ZP_SLAB_SIZE);
		return UINT32_MAX;
	}
	pthread_mutex_unlock(&p->slab_lock);
	s = &p->slabs[si];
	s->mem = mem;
	s->cls = (uint16_t)c;
	s->nobj = (uint16_t)(ZP_SLAB_SIZE / size);
	s->inuse = 0;
	/* The free list: object i points to i + 1. */
	for (unsigned int i = 0; i < s->nobj; i++) {
		uint32_t next = i + 1 < s->nobj ? i + 2 : 0;
		memcpy((char *)mem + i * size, &next, sizeof(next));
	}
	s->free_head = 1;
	partial_add(p, &p->cls[c], si);
	atomic_fetch_add(&p->bytes_slabs, ZP_SLAB_SIZE);
	return si;
}

/* Context: the class lock held, the slab empty and off the partial list. */
static void slab_release(struct zpool *p, uint32_t si)
{
	struct zp_slab *s = &p->slabs[si];

	munmap(s->mem, ZP_SLAB_SIZE);
	s->mem = NULL;
	atomic_fetch_sub(&p->bytes_slabs, ZP_SLAB_SIZE);
	pthread_mutex_lock(&p->slab_lock);
	s->next = p->free_slab;
	p->free_slab = si + 1;
	pthread_mutex_unlock(&p->slab_lock);
}

/*
 * An object of len bytes (1 .. PAGE_SIZE).  Context: any, also the SIGBUS
 * handler; takes the class lock.  Return: its handle, or ZP_NONE if the
 * system gives no memory.
 */
uint32_t zp_alloc(struct zpool *p, size_t len)
{
	unsigned int c;
	struct zp_class *k;
	struct zp_slab *s;
	uint32_t si, obj, next;

	if (!len || len > PAGE_SIZE)
		return ZP_NONE;
	c = (unsigned int)(zp_class_size(len) / ZP_ALIGN) - 1;
	k = &p->cls[c];
	pthread_mutex_lock(&k->lock);
	if (!k->partial && slab_new(p, c) == UINT32_MAX) {
		pthread_mutex_unlock(&k->lock);
		return ZP_NONE;
	}
	si = k->partial - 1;
	s = &p->slabs[si];
	obj = s->free_head - 1;
	memcpy(&next, (char *)s->mem + obj * (size_t)(c + 1) * ZP_ALIGN, sizeof(next));
	s->free_head = next;
	s->inuse++;
	if (!s->free_head)
		partial_del(p, k, si);
	pthread_mutex_unlock(&k->lock);
	atomic_fetch_add(&p->objects, 1);
	return (si + 1) << 8 | obj;
}

/* The object's memory.  Context: the caller holds the handle. */
void *zp_map(struct zpool *p, uint32_t handle)
{
	struct zp_slab *s = &p->slabs[(handle >> 8) - 1];

	return (char *)s->mem + (handle & 0xff) * (size_t)(s->cls + 1) * ZP_ALIGN;
}

/* Free the object of handle.  Context: any; takes the class lock. */
void zp_free(struct zpool *p, uint32_t handle)
{
	uint32_t si = (handle >> 8) - 1, obj = handle & 0xff;
	struct zp_slab *s = &p->slabs[si];
	struct zp_class *k = &p->cls[s->cls];
	bool was_full;

	FL_BUG_ON(handle == ZP_NONE || si >= ZP_MAX_SLABS || !s->mem || obj >= s->nobj);
	pthread_mutex_lock(&k->lock);
	FL_BUG_ON(!s->inuse);
	was_full = !s->free_head;
	memcpy((char *)s->mem + obj * (size_t)(s->cls + 1) * ZP_ALIGN, &s->free_head,
	       sizeof(s->free_head));
	s->free_head = obj + 1;
	s->inuse--;
	if (was_full)
		partial_add(p, k, si);
	if (!s->inuse && (s->next || s->prev || k->partial != si + 1)) {
		/* Empty, and not its class's only partial slab. */
		partial_del(p, k, si);
		slab_release(p, si);
	}
	pthread_mutex_unlock(&k->lock);
	atomic_fetch_sub(&p->objects, 1);
}
