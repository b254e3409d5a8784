// SPDX-License-Identifier: MIT
/*
 * The pool for compressed pages (zpool.h).
 *
 * A class of size S (a multiple of ZP_ALIGN) has slabs of the pool's
 * slab_size bytes cut into slab_size / S objects; a free object holds the
 * index (+1) of the next free one in its first bytes, an object in use the name
 * of its owner (ZP_HDR bytes).  Slabs with a free object are on their
 * class's partial list.  A slab whose last object is freed goes back to the
 * system, unless it is its class's only partial slab (so that one page
 * going in and out does not map and unmap a slab each time) and the pool
 * keeps fewer than keep_max empty slabs (slab_release_empty()).
 *
 * A handle is (slab index + 1) << ZP_OBJ_BITS | object index: a slab holds
 * at most ZP_SLAB_MAX / ZP_ALIGN = 1024 objects.
 */
#include "zpool.h"

#include <sys/mman.h>

_Static_assert(ZP_SLAB_MAX / ZP_ALIGN <= 1u << ZP_OBJ_BITS, "object index in ZP_OBJ_BITS");
_Static_assert((uint64_t)ZP_MAX_SLABS << ZP_OBJ_BITS < (1ull << 32), "handle in 32 bits");
#define OBJ_MASK ((1u << ZP_OBJ_BITS) - 1)

static uint32_t handle_slab(uint32_t handle)
{
	return (handle >> ZP_OBJ_BITS) - 1;
}

static uint32_t mk_handle(uint32_t si, uint32_t obj)
{
	return (si + 1) << ZP_OBJ_BITS | obj;
}

static size_t class_bytes(unsigned int c)
{
	return c == ZP_PAGE_CLASS ? PAGE_SIZE : (size_t)(c + 1) * ZP_ALIGN;
}

/* The class of an object of len bytes (1 .. PAGE_SIZE). */
unsigned int zp_class_of(size_t len)
{
	if (len > ZP_MAX_LEN)
		return ZP_PAGE_CLASS;
	return (unsigned int)((len + ZP_HDR + ZP_ALIGN - 1) / ZP_ALIGN) - 1;
}

/* The memory an object of len bytes takes: its class's size. */
size_t zp_class_size(size_t len)
{
	return class_bytes(zp_class_of(len));
}

/*
 * The slabs live in one mapping reserved here, max_bytes of pool memory
 * with room for fragmentation (twice as many slabs, and a few a class), at
 * most ZP_MAX_SLABS: a slab is taken from it and given back with
 * MADV_DONTNEED, never mapped or unmapped on its own, so that the pool
 * costs the process at most two mappings however its slabs come and go
 * (its count of mappings is limited, vm.max_map_count, for the
 * application's mmap()s too), and no mmap_lock held for writing but to
 * grow.  Reserved inaccessible (PROT_NONE, which no overcommit policy
 * charges), and made writable from its start in steps of ZP_GROW_BYTES as
 * the pool first reaches them (slab_new()), never inaccessible again: the
 * commit charge follows the pool's high-water mark, also under strict
 * overcommit (vm.overcommit_memory=2 ignores MAP_NORESERVE).  The slab
 * table (p->slabs, 96 bytes a slab) is reserved writable: charged in full
 * there, 1.2 % of the pool's size with 16-KiB slabs, 0.3 % with 64-KiB
 * ones.
 *
 * The slab size: the end of a slab that no object of its class fits is
 * lost, half an object on average (in 16 KiB, 5 % of the memory of pages
 * compressed to 1.7 KiB), so a pool takes slabs as large as a 1024th of
 * it, from ZP_SLAB_MIN to ZP_SLAB_MAX: large pools lose less at the ends,
 * small ones keep few slabs part empty.
 */
int zp_init(struct zpool *p, size_t max_bytes)
{
	uint32_t slab_size = ZP_SLAB_MIN;

	while (slab_size < ZP_SLAB_MAX && slab_size * 2 <= max_bytes / 1024)
		slab_size *= 2;
	return zp_init_slabs(p, max_bytes, slab_size);
}

int zp_init_slabs(struct zpool *p, size_t max_bytes, uint32_t slab_size)
{
	uint64_t slabs;

	if (slab_size < ZP_SLAB_MIN || slab_size > ZP_SLAB_MAX || slab_size % PAGE_SIZE)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->slab_size = slab_size;
	p->keep_max = (uint32_t)MIN(max_bytes / 16 / slab_size, (size_t)ZP_CLASSES);
	slabs = 2 * (max_bytes / p->slab_size + 1) + 4 * ZP_CLASSES;
	p->max_slabs = (uint32_t)MIN(slabs, (uint64_t)ZP_MAX_SLABS);
	for (unsigned int c = 0; c < ZP_CLASSES; c++)
		pthread_mutex_init(&p->cls[c].lock, NULL);
	pthread_mutex_init(&p->slab_lock, NULL);
	p->slabs = mmap(NULL, p->max_slabs * sizeof(*p->slabs), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->slabs == MAP_FAILED) {
		p->slabs = NULL;
		return -ENOMEM;
	}
	p->base = mmap(NULL, (size_t)p->max_slabs * p->slab_size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->base == MAP_FAILED) {
		p->base = NULL;
		zp_destroy(p);
		return -ENOMEM;
	}
	return 0;
}

/* Context: no object of the pool is used any more. */
void zp_destroy(struct zpool *p)
{
	if (p->base)
		munmap(p->base, (size_t)p->max_slabs * p->slab_size);
	p->base = NULL;
	if (p->slabs)
		munmap(p->slabs, p->max_slabs * sizeof(*p->slabs));
	p->slabs = NULL;
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
 * Make the reservation writable up to at least need slabs (ZP_GROW_BYTES
 * more at a time), if it is not yet.  Context: slab_lock held.  Return: 0,
 * or -ENOMEM if the system will not commit the memory.
 */
static int grow(struct zpool *p, uint32_t need)
{
	uint32_t mapped = atomic_load_explicit(&p->mapped_slabs, memory_order_relaxed), to;

	if (need <= mapped)
		return 0;
	to = MIN(MAX(need, mapped + ZP_GROW_BYTES / p->slab_size), p->max_slabs);
	if (mprotect(p->base + (size_t)mapped * p->slab_size, (size_t)(to - mapped) * p->slab_size,
		     PROT_READ | PROT_WRITE))
		return -ENOMEM;
	/* After the mprotect: zp_map_racy() reads below it. */
	atomic_store_explicit(&p->mapped_slabs, to, memory_order_release);
	return 0;
}

/*
 * A new slab for class c, on its partial list.  Context: the class lock
 * held; takes slab_lock.  Return: its index, or UINT32_MAX.
 */
static uint32_t slab_new(struct zpool *p, unsigned int c)
{
	size_t size = class_bytes(c);
	struct zp_slab *s;
	char *mem;
	uint32_t si;

	pthread_mutex_lock(&p->slab_lock);
	if (p->free_slab) {
		si = p->free_slab - 1;
		p->free_slab = p->slabs[si].next;
	} else if (p->nr_slabs < p->max_slabs && !grow(p, p->nr_slabs + 1)) {
		si = p->nr_slabs++;
	} else {
		pthread_mutex_unlock(&p->slab_lock);
		return UINT32_MAX;
	}
	pthread_mutex_unlock(&p->slab_lock);
	/* Zero-filled: never used, or given back with MADV_DONTNEED. */
	mem = p->base + (size_t)si * p->slab_size;
	s = &p->slabs[si];
	s->mem = mem;
	s->cls = (uint16_t)c;
	s->nobj = (uint16_t)(p->slab_size / size);
	s->inuse = 0;
	s->kept = 0;
	/* The free list: object i points to i + 1. */
	for (unsigned int i = 0; i < s->nobj; i++) {
		uint32_t next = i + 1 < s->nobj ? i + 2 : 0;
		memcpy((char *)mem + i * size, &next, sizeof(next));
	}
	s->free_head = 1;
	partial_add(p, &p->cls[c], si);
	atomic_fetch_add(&p->bytes_slabs, p->slab_size);
	atomic_fetch_add_explicit(&p->cls[c].nr_free, s->nobj, memory_order_relaxed);
	return si;
}

/* Context: the class lock held, the slab empty and off the partial list. */
static void slab_release(struct zpool *p, uint32_t si)
{
	struct zp_slab *s = &p->slabs[si];

	/* Its memory back to the system; the range stays reserved. */
	madvise(s->mem, p->slab_size, MADV_DONTNEED);
	s->mem = NULL;
	atomic_fetch_sub(&p->bytes_slabs, p->slab_size);
	atomic_fetch_sub_explicit(&p->cls[s->cls].nr_free, s->nobj, memory_order_relaxed);
	pthread_mutex_lock(&p->slab_lock);
	s->next = p->free_slab;
	p->free_slab = si + 1;
	pthread_mutex_unlock(&p->slab_lock);
}

static char *obj_mem(struct zpool *p, uint32_t si, uint32_t obj)
{
	struct zp_slab *s = &p->slabs[si];

	return (char *)s->mem + obj * class_bytes(s->cls);
}

/* Object obj's header (its owner's name): in the object, or in the slab. */
static uint32_t obj_owner(struct zpool *p, uint32_t si, uint32_t obj)
{
	struct zp_slab *s = &p->slabs[si];
	uint32_t owner;

	if (s->cls == ZP_PAGE_CLASS)
		return s->owner[obj];
	memcpy(&owner, obj_mem(p, si, obj), sizeof(owner));
	return owner;
}

/*
 * Take slab si's first free object for owner, and take the slab off the
 * partial list if that was its last.  Context: the class lock held, the
 * slab partial.  Return: the object's index.
 */
static uint32_t obj_take(struct zpool *p, struct zp_class *k, uint32_t si, uint32_t owner)
{
	struct zp_slab *s = &p->slabs[si];
	uint32_t obj = s->free_head - 1, next;
	char *m = obj_mem(p, si, obj);

	memcpy(&next, m, sizeof(next));
	if (s->kept) {
		s->kept = 0;
		atomic_fetch_sub(&p->kept_slabs, 1);
	}
	if (s->cls == ZP_PAGE_CLASS)
		s->owner[obj] = owner;
	else
		memcpy(m, &owner, sizeof(owner));
	s->free_head = next;
	s->inuse++;
	atomic_fetch_sub_explicit(&k->nr_free, 1, memory_order_relaxed);
	if (!s->free_head)
		partial_del(p, k, si);
	return obj;
}

/* Put object obj back on slab si's free list, and the slab on the partial
 * list if it was full.  Context: the class lock held. */
static void obj_put(struct zpool *p, struct zp_class *k, uint32_t si, uint32_t obj)
{
	struct zp_slab *s = &p->slabs[si];
	bool was_full = !s->free_head;

	FL_BUG_ON(!s->inuse);
	memcpy(obj_mem(p, si, obj), &s->free_head, sizeof(s->free_head));
	s->free_head = obj + 1;
	s->inuse--;
	atomic_fetch_add_explicit(&k->nr_free, 1, memory_order_relaxed);
	if (was_full)
		partial_add(p, k, si);
}

/*
 * A slab left empty goes, unless it is its class's only partial slab (so
 * that one page going in and out does not map and unmap a slab each time)
 * and the pool keeps fewer than keep_max such slabs: sixty-five classes
 * keeping one each would otherwise hold a small pool full with nothing in
 * it.  Context: the class lock held.  Return: true if it went.
 */
static bool slab_release_empty(struct zpool *p, struct zp_class *k, uint32_t si)
{
	struct zp_slab *s = &p->slabs[si];

	if (s->inuse)
		return false;
	if (!s->next && !s->prev && k->partial == si + 1) {
		if (s->kept)
			return false;
		if (atomic_fetch_add(&p->kept_slabs, 1) < p->keep_max) {
			s->kept = 1;
			return false;
		}
		atomic_fetch_sub(&p->kept_slabs, 1);
	}
	if (s->kept) {
		s->kept = 0;
		atomic_fetch_sub(&p->kept_slabs, 1);
	}
	partial_del(p, k, si);
	slab_release(p, si);
	return true;
}

/*
 * An object of len bytes (1 .. PAGE_SIZE; more than ZP_MAX_LEN takes a
 * whole page), owned by owner (compaction asks it, see zp_move_fn).
 * Context: any, also the SIGBUS handler; takes the class lock.  Return:
 * its handle, or ZP_NONE if the system gives no memory.
 */
uint32_t zp_alloc(struct zpool *p, size_t len, uint32_t owner)
{
	unsigned int c;
	struct zp_class *k;
	uint32_t si, obj;

	if (!len || len > PAGE_SIZE)
		return ZP_NONE;
	c = zp_class_of(len);
	k = &p->cls[c];
	pthread_mutex_lock(&k->lock);
	if (!k->partial && slab_new(p, c) == UINT32_MAX) {
		pthread_mutex_unlock(&k->lock);
		return ZP_NONE;
	}
	si = k->partial - 1;
	obj = obj_take(p, k, si, owner);
	pthread_mutex_unlock(&k->lock);
	atomic_fetch_add(&p->objects, 1);
	atomic_fetch_add(&p->bytes_objects, class_bytes(c));
	return mk_handle(si, obj);
}

/*
 * The object's memory (after its header, if it has one).  Context: the
 * caller holds the handle, and, if compaction may run, the owners' lock
 * (zp_compact_step()), or the object is not yet its owner's (zp_move_fn).
 */
void *zp_map(struct zpool *p, uint32_t handle)
{
	uint32_t si = handle_slab(handle);

	return obj_mem(p, si, handle & OBJ_MASK) + (p->slabs[si].cls == ZP_PAGE_CLASS ? 0 : ZP_HDR);
}

/*
 * Where handle's object would be, for a reader without the owners' lock
 * that checks afterwards whether the handle was still the owner's (zswap's
 * seq): handle may be stale, or read as it changed.  The address is
 * computed from the reservation's writable part, never from a slab's mem
 * (NULL once given back), so that len bytes from it are always readable
 * memory, if only zeros.  Context: any.
 * Return: that address, or NULL if no object of len bytes can have that
 * handle.
 */
FL_NO_TSAN const void *zp_map_racy(struct zpool *p, uint32_t handle, size_t len)
{
	uint32_t si = handle_slab(handle), obj = handle & OBJ_MASK;
	uint16_t cls;
	size_t off;

	if (handle == ZP_NONE || si >= atomic_load_explicit(&p->mapped_slabs, memory_order_acquire))
		return NULL;
	cls = *(volatile uint16_t *)&p->slabs[si].cls;
	if (cls >= ZP_CLASSES)
		return NULL;
	off = obj * class_bytes(cls) + (cls == ZP_PAGE_CLASS ? 0 : ZP_HDR);
	if (off + ((len + 3) & ~(size_t)3) > p->slab_size)
		return NULL;
	return p->base + (size_t)si * p->slab_size + off;
}

/* Free the object of handle.  Context: any; takes the class lock. */
void zp_free(struct zpool *p, uint32_t handle)
{
	uint32_t si = handle_slab(handle), obj = handle & OBJ_MASK;
	struct zp_slab *s = &p->slabs[si];
	unsigned int c = s->cls;
	struct zp_class *k = &p->cls[c];

	FL_BUG_ON(handle == ZP_NONE || si >= p->max_slabs || !s->mem || obj >= s->nobj);
	pthread_mutex_lock(&k->lock);
	obj_put(p, k, si, obj);
	slab_release_empty(p, k, si);
	pthread_mutex_unlock(&k->lock);
	atomic_fetch_sub(&p->objects, 1);
	atomic_fetch_sub(&p->bytes_objects, class_bytes(c));
}

/*
 * Memory compaction would surely give back: in each class, the slabs its
 * free objects would fill, but one (a class may keep a partial slab,
 * even empty).  After a compaction that nothing refused, 0.  Context: any; a
 * snapshot.
 */
uint64_t zp_reclaimable_bytes(struct zpool *p)
{
	uint64_t slabs = 0;

	for (unsigned int c = 0; c < ZP_CLASSES; c++) {
		uint32_t per = (uint32_t)(p->slab_size / class_bytes(c));
		uint32_t nr_free = atomic_load_explicit(&p->cls[c].nr_free, memory_order_relaxed);

		if (nr_free >= 2 * per)
			slabs += nr_free / per - 1;
	}
	return slabs * p->slab_size;
}

/* The partial slab of class k with the fewest objects in use (fewest) or
 * the most (!fewest), other than slab index skip - 1.  Context: the class
 * lock held.  Return: its index + 1, or 0. */
static uint32_t partial_pick(struct zpool *p, struct zp_class *k, bool fewest, uint32_t skip)
{
	uint32_t best = 0;

	for (uint32_t i = k->partial; i; i = p->slabs[i - 1].next) {
		struct zp_slab *s = &p->slabs[i - 1];
		if (i == skip)
			continue;
		if (!best || (fewest ? s->inuse < p->slabs[best - 1].inuse
				     : s->inuse > p->slabs[best - 1].inuse))
			best = i;
	}
	return best;
}

/*
 * One step of class c's compaction: the objects of its emptiest partial
 * slab (the source) move into its fullest partial slabs, if these have
 * room for all of them, and the source, emptied, is given back.  For each
 * object its owner holds (move() with ZP_NONE says), the pool takes a new
 * one, copies the bytes (header included), has move() re-point the
 * owner's reference, and frees the old object; an object its owner does
 * not hold (allocated but not yet published, as zswap_store() does, and
 * being filled meanwhile) stays, unread.  res counts what was done.
 *
 * Context: not the SIGBUS handler (it may give a slab back); the caller
 * holds the lock of every owner of the pool's objects, so that no free,
 * re-pointing or locked read (zp_map()) of an object runs during the step
 * (zswap: z->lock, under which every zp_free() and zp_map() of a published
 * object run; its loads without the lock use zp_map_racy() and check the
 * entry's seq); takes the class lock, and slab_lock to give a slab back.
 * Return: true if the step moved or freed something: call again for
 * more; false if the class has nothing more to give.
 */
bool zp_compact_step(struct zpool *p, unsigned int c, zp_move_fn move, void *arg,
		     struct zp_compact_result *res)
{
	struct zp_class *k = &p->cls[c];
	uint8_t is_free[ZP_SLAB_MAX / ZP_ALIGN];
	uint32_t src, dst = 0, room = 0, moved = 0;
	struct zp_slab *s;
	bool freed, repointed;

	FL_BUG_ON(c >= ZP_CLASSES);
	pthread_mutex_lock(&k->lock);
	src = partial_pick(p, k, true, 0);
	if (!src) {
		pthread_mutex_unlock(&k->lock);
		return false;
	}
	s = &p->slabs[src - 1];
	for (uint32_t i = k->partial; i; i = p->slabs[i - 1].next)
		if (i != src)
			room += p->slabs[i - 1].nobj - p->slabs[i - 1].inuse;
	if (room < s->inuse || (!s->inuse && room == 0)) {
		/* The others cannot take all its objects: moving some would
		 * give nothing back.  (An empty only partial slab stays.) */
		pthread_mutex_unlock(&k->lock);
		return false;
	}
	memset(is_free, 0, sizeof(is_free));
	for (uint32_t f = s->free_head; f; memcpy(&f, obj_mem(p, src - 1, f - 1), sizeof(f)))
		is_free[f - 1] = 1;
	for (uint32_t obj = 0; obj < s->nobj && s->inuse; obj++) {
		uint32_t owner, nobj, handle = mk_handle(src - 1, obj), new_handle;

		if (is_free[obj])
			continue;
		if (!dst || !p->slabs[dst - 1].free_head)
			dst = partial_pick(p, k, false, src);
		if (!dst)
			break;
		owner = obj_owner(p, src - 1, obj);
		if (!move(arg, owner, handle, ZP_NONE))
			continue;
		nobj = obj_take(p, k, dst - 1, owner);
		new_handle = mk_handle(dst - 1, nobj);
		/* Copied before the owner re-points to it: a reader without
		 * the owners' lock (zp_map_racy()) may read it at once. */
		memcpy(obj_mem(p, dst - 1, nobj), obj_mem(p, src - 1, obj), class_bytes(c));
		repointed = move(arg, owner, handle, new_handle);
		FL_BUG_ON(!repointed); /* the owners' lock held since it said yes */
		obj_put(p, k, src - 1, obj);
		moved++;
	}
	freed = slab_release_empty(p, k, src - 1);
	pthread_mutex_unlock(&k->lock);
	res->moved += moved;
	res->slabs_freed += freed;
	return moved || freed;
}
