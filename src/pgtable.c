// SPDX-License-Identifier: MIT
/*
 * The page-state table: 64-bit entries in chunks of PT_CHUNK_PAGES pages,
 * kept in a liburcu lock-free hash table keyed by address (see pgtable.h).
 *
 * Chunk lifetime: a chunk is created by the first fault that needs it and
 * freed (after a grace period) only by pt_free_unused(), with mmap_lock held
 * for write, once no VMA overlaps its range.  So a thread holding a VMA read
 * lock, or mmap_lock, on an address may use that address's chunk without
 * rcu_read_lock: nobody can free it meanwhile.
 *
 * A lookup by address goes through a directory, not the hash: two loads
 * (a slot of the top level, then the leaf's slot of the chunk), where the
 * hash's lookup follows its bucket and list nodes, a cache miss each on a
 * fault that is a miss.  The top level covers the 47-bit user address space
 * (PT_DIR_ENTRIES slots, reserved and backed only where touched); a leaf
 * (one slab) covers PT_LEAF_CHUNKS chunks.  A chunk is in the hash and, if
 * its address is below PT_DIR_LIMIT, in the directory: the hash stays for
 * the walks of the whole table and for the rare address above the limit,
 * and decides which of two racing faults makes a chunk (pt_chunk_get()).
 *
 * Chunks come from a per-space slab (mmap'd blocks), not malloc: the fault
 * path also runs inside the SIGBUS handler (sigbus delivery), where malloc is
 * not safe.  For the same reason the hash table does not resize itself (its
 * automatic resize allocates inside cds_lfht_add_unique()): a resizer thread
 * per space grows it, poked through an eventfd, which is async-signal-safe.
 */
#include "pgtable.h"

#include <sys/mman.h>

#include "mmap_lock.h"
#include "reclaim.h"
#include "space.h"
#include "swap.h"
#include "uffd.h"
#include "vma.h"
#include "worker.h"

#define SLAB_SIZE (64UL << 10)

/* The directory (see the top of this file). */
#define PT_LEAF_CHUNKS (SLAB_SIZE / sizeof(void *))
#define PT_DIR_LIMIT (1UL << 47)
#define PT_DIR_ENTRIES (PT_DIR_LIMIT / PT_CHUNK_SIZE / PT_LEAF_CHUNKS)

struct pt_leaf {
	struct pt_chunk *_Atomic c[PT_LEAF_CHUNKS];
};
_Static_assert(sizeof(struct pt_leaf) == SLAB_SIZE, "a leaf is a slab");

static unsigned long chunk_hash(unsigned long base)
{
	uint64_t x = (uint64_t)pt_chunk_nr(base) * 0x9E3779B97F4A7C15ull;

	return (unsigned long)(x ^ (x >> 29));
}

static int chunk_match(struct cds_lfht_node *node, const void *key)
{
	struct pt_chunk *c = container_of(node, struct pt_chunk, node);

	tsan_acquire(c); /* pairs with the release before cds_lfht_add_unique() */
	return c->base == *(const unsigned long *)key;
}

#define PT_INITIAL_BUCKETS 64

/* The resizer's round: keep the table at about one bucket per chunk. */
static void pt_resize_round(void *arg)
{
	struct fl_space *sp = arg;
	unsigned long want = atomic_load(&sp->pt_buckets);

	while (want < (unsigned long)atomic_load(&sp->nr_chunks))
		want *= 2;
	if (want != atomic_load(&sp->pt_buckets)) {
		cds_lfht_resize(sp->pt, want);
		atomic_store(&sp->pt_buckets, want);
	}
}

int pt_init(struct fl_space *sp)
{
	pthread_mutex_init(&sp->chunk_alloc_lock, NULL);
	atomic_init(&sp->pt_buckets, PT_INITIAL_BUCKETS);
	sp->pt = cds_lfht_new(PT_INITIAL_BUCKETS, PT_INITIAL_BUCKETS, 0, 0, NULL);
	if (!sp->pt)
		return -ENOMEM;
	void *dir = mmap(NULL, PT_DIR_ENTRIES * sizeof(void *), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (dir == MAP_FAILED)
		return -ENOMEM;
	sp->pt_dir = dir;
	return worker_start(&sp->resizer, "fl-resizer", pt_resize_round, sp, -1);
}

/* Context: any, including the SIGBUS handler. */
static void pt_maybe_resize(struct fl_space *sp, long nr)
{
	if ((unsigned long)nr > 2 * atomic_load(&sp->pt_buckets))
		worker_kick(&sp->resizer);
}

/*
 * A new slab (SLAB_SIZE bytes, zeroed), on the list that pt_destroy() frees.
 * Context: chunk_alloc_lock held.  Return: the slab, or NULL.
 */
static void *slab_new_locked(struct fl_space *sp)
{
	void *slab =
		mmap(NULL, SLAB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (slab == MAP_FAILED)
		return NULL;
	if (sp->nr_chunk_slabs == sp->cap_chunk_slabs) {
		/* The slab list grows by mmap too (no malloc here). */
		size_t cap = sp->cap_chunk_slabs ? sp->cap_chunk_slabs * 2 : 512;
		void **n = mmap(NULL, cap * sizeof(void *), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (n == MAP_FAILED) {
			munmap(slab, SLAB_SIZE);
			return NULL;
		}
		if (sp->chunk_slabs) {
			memcpy(n, sp->chunk_slabs, sp->nr_chunk_slabs * sizeof(void *));
			munmap(sp->chunk_slabs, sp->cap_chunk_slabs * sizeof(void *));
		}
		sp->chunk_slabs = n;
		sp->cap_chunk_slabs = cap;
	}
	sp->chunk_slabs[sp->nr_chunk_slabs++] = slab;
	return slab;
}

/* Context: chunk_alloc_lock not held. */
static struct pt_chunk *chunk_alloc(struct fl_space *sp, unsigned long base)
{
	struct pt_chunk *c;

	pthread_mutex_lock(&sp->chunk_alloc_lock);
	if (!sp->chunk_free) {
		void *slab = slab_new_locked(sp);
		if (!slab)
			goto fail;
		for (size_t off = 0; off + sizeof(*c) <= SLAB_SIZE; off += sizeof(*c)) {
			c = (struct pt_chunk *)((char *)slab + off);
			c->free_next = sp->chunk_free;
			sp->chunk_free = c;
		}
	}
	c = sp->chunk_free;
	sp->chunk_free = c->free_next;
	pthread_mutex_unlock(&sp->chunk_alloc_lock);

	memset(c, 0, sizeof(*c));
	c->base = base;
	pthread_mutex_init(&c->ptl, NULL);
	cds_lfht_node_init(&c->node);
	return c;
fail:
	pthread_mutex_unlock(&sp->chunk_alloc_lock);
	return NULL;
}

/*
 * The directory slot of base, its leaf created if create says so.
 * Context: any, including the SIGBUS handler; takes chunk_alloc_lock to
 * create a leaf.  Return: the slot, or NULL (above the directory's limit, no
 * leaf and not create, or memory ran out).
 */
static struct pt_chunk *_Atomic *dir_slot(struct fl_space *sp, unsigned long base, bool create)
{
	unsigned long nr = pt_chunk_nr(base);
	struct pt_leaf *_Atomic *top, *leaf;

	if (base >= PT_DIR_LIMIT)
		return NULL;
	top = &sp->pt_dir[nr / PT_LEAF_CHUNKS];
	leaf = atomic_load_explicit(top, memory_order_acquire);
	if (unlikely(!leaf)) {
		if (!create)
			return NULL;
		pthread_mutex_lock(&sp->chunk_alloc_lock);
		leaf = atomic_load_explicit(top, memory_order_relaxed);
		if (!leaf) {
			leaf = slab_new_locked(sp);
			if (leaf)
				atomic_store_explicit(top, leaf, memory_order_release);
		}
		pthread_mutex_unlock(&sp->chunk_alloc_lock);
		if (!leaf)
			return NULL;
	}
	return &leaf->c[nr % PT_LEAF_CHUNKS];
}

static void chunk_release(struct fl_space *sp, struct pt_chunk *c)
{
	pthread_mutex_destroy(&c->ptl);
	pthread_mutex_lock(&sp->chunk_alloc_lock);
	c->free_next = sp->chunk_free;
	sp->chunk_free = c;
	pthread_mutex_unlock(&sp->chunk_alloc_lock);
}

static void chunk_free_cb(struct rcu_head *head)
{
	struct pt_chunk *c = container_of(head, struct pt_chunk, rcu);

	fl_rcu_callback_enter(head);
	/* The space pointer rides in free_next until the callback. */
	chunk_release((struct fl_space *)c->free_next, c);
	fl_rcu_callback_exit();
}

/* The hash's chunk of base, or NULL.  Context: as pt_chunk_lookup(). */
static struct pt_chunk *hash_lookup(struct fl_space *sp, unsigned long base)
{
	struct cds_lfht_iter iter;
	struct cds_lfht_node *node;

	rcu_read_lock();
	cds_lfht_lookup(sp->pt, chunk_hash(base), chunk_match, &base, &iter);
	node = cds_lfht_iter_get_node(&iter);
	fl_rcu_read_unlock();
	if (!node)
		return NULL;
	tsan_acquire(container_of(node, struct pt_chunk, node));
	return container_of(node, struct pt_chunk, node);
}

/*
 * Context: the caller keeps the chunk alive (see the top of this file), or
 * holds rcu_read_lock.  Return: the chunk of addr, or NULL.
 */
struct pt_chunk *pt_chunk_lookup(struct fl_space *sp, unsigned long addr)
{
	unsigned long base = addr & PT_CHUNK_MASK;
	struct pt_chunk *_Atomic *slot = dir_slot(sp, base, false);

	if (likely(slot))
		return atomic_load_explicit(slot, memory_order_acquire);
	/* No leaf: no chunk below the limit; above it, the hash. */
	return base >= PT_DIR_LIMIT ? hash_lookup(sp, base) : NULL;
}

/*
 * The chunk of addr, created if need be.  The hash decides which chunk is
 * made (cds_lfht_add_unique()), and every fault that gets a chunk here
 * publishes it in the directory before it returns, so that a chunk is in
 * the hash (where the walks of a range find it) before a lookup by address
 * can find it, and in the directory before any page of it is installed.
 * Context: the VMA of addr read-locked, or mmap_lock held (so the chunk
 * cannot be freed meanwhile: see the top of this file).
 * Return: the chunk, or NULL if memory ran out.
 */
struct pt_chunk *pt_chunk_get(struct fl_space *sp, unsigned long addr)
{
	unsigned long base = addr & PT_CHUNK_MASK;
	struct pt_chunk *_Atomic *slot = dir_slot(sp, base, true);
	struct pt_chunk *c, *n, *was = NULL;
	struct cds_lfht_node *node;

	if (likely(slot)) {
		c = atomic_load_explicit(slot, memory_order_acquire);
		if (likely(c))
			return c;
	} else if (base < PT_DIR_LIMIT) {
		return NULL; /* no memory for the leaf */
	}
	/* Made by another fault that has not published it yet? */
	c = hash_lookup(sp, base);
	if (c)
		goto publish;
	n = chunk_alloc(sp, base);
	if (!n)
		return NULL;
	tsan_release(n);
	rcu_read_lock();
	node = cds_lfht_add_unique(sp->pt, chunk_hash(base), chunk_match, &base, &n->node);
	fl_rcu_read_unlock();
	if (node != &n->node) {
		/* Another fault created it first; ours was never visible. */
		chunk_release(sp, n);
		c = container_of(node, struct pt_chunk, node);
		tsan_acquire(c);
		goto publish;
	}
	c = n;
	pt_maybe_resize(sp, atomic_fetch_add(&sp->nr_chunks, 1) + 1);
	if (sp->swap_on)
		reclaim_chunk_added(sp, c);
publish:
	if (slot && !atomic_compare_exchange_strong_explicit(slot, &was, c, memory_order_acq_rel,
							     memory_order_acquire))
		FL_BUG_ON(was != c); /* another fault published the same one */
	return c;
}

void pt_lock(struct pt_chunk *c)
{
	pthread_mutex_lock(&c->ptl);
}

/* Return: true with the ptl held; false if someone (the caller too) holds it. */
bool pt_trylock(struct pt_chunk *c)
{
	return pthread_mutex_trylock(&c->ptl) == 0;
}

void pt_unlock(struct pt_chunk *c)
{
	pthread_mutex_unlock(&c->ptl);
}

/*
 * A walk of the whole table: the chunk at the iterator, or NULL at the end.
 * (liburcu's cds_lfht_for_each_entry() takes container_of() of the NULL
 * node that ends the walk, which is undefined: only a node is converted
 * here.)  Context: rcu_read_lock held.
 */
static struct pt_chunk *chunk_at(struct cds_lfht_iter *iter)
{
	struct cds_lfht_node *node = cds_lfht_iter_get_node(iter);
	struct pt_chunk *c;

	if (!node)
		return NULL;
	c = container_of(node, struct pt_chunk, node);
	tsan_acquire(c); /* pairs with the release before cds_lfht_add_unique() */
	return c;
}

static struct pt_chunk *chunk_first(struct fl_space *sp, struct cds_lfht_iter *iter)
{
	cds_lfht_first(sp->pt, iter);
	return chunk_at(iter);
}

static struct pt_chunk *chunk_next(struct fl_space *sp, struct cds_lfht_iter *iter)
{
	cds_lfht_next(sp->pt, iter);
	return chunk_at(iter);
}

/*
 * Call fn on every chunk that overlaps [start, end): by lookups when the
 * range is small compared with the table, by a walk of the table otherwise.
 * Context: rcu_read_lock not held (taken here); fn may sleep on a ptl.
 */
static void for_each_chunk(struct fl_space *sp, unsigned long start, unsigned long end,
			   void (*fn)(struct fl_space *, struct pt_chunk *, unsigned long,
				      unsigned long, void *),
			   void *arg)
{
	unsigned long slots = pt_chunk_nr(end - 1) - pt_chunk_nr(start) + 1;
	long nr = atomic_load(&sp->nr_chunks);

	if (slots <= (unsigned long)nr * 4 + 64) {
		for (unsigned long b = start & PT_CHUNK_MASK; b < end; b += PT_CHUNK_SIZE) {
			struct pt_chunk *c = pt_chunk_lookup(sp, b);
			if (c)
				fn(sp, c, MAX(start, b), MIN(end, b + PT_CHUNK_SIZE), arg);
			if (b + PT_CHUNK_SIZE < b)
				break;
		}
		return;
	}
	struct cds_lfht_iter iter;

	rcu_read_lock();
	for (struct pt_chunk *c = chunk_first(sp, &iter); c; c = chunk_next(sp, &iter)) {
		if (c->base + PT_CHUNK_SIZE <= start || c->base >= end)
			continue;
		fn(sp, c, MAX(start, c->base), MIN(end, c->base + PT_CHUNK_SIZE), arg);
	}
	fl_rcu_read_unlock();
}

/*
 * Call fn on every chunk of the table, in no order.  Context: nothing else
 * walks or changes the table (the child of fork(), fork.c); rcu_read_lock
 * taken here, so fn must not sleep.
 */
void pt_walk_all(struct fl_space *sp, void (*fn)(struct fl_space *, struct pt_chunk *, void *),
		 void *arg)
{
	struct cds_lfht_iter iter;

	rcu_read_lock();
	for (struct pt_chunk *c = chunk_first(sp, &iter); c; c = chunk_next(sp, &iter))
		fn(sp, c, arg);
	fl_rcu_read_unlock();
}

/* Unregistered runs inside one chunk: at most every other page. */
struct unreg_runs {
	unsigned int n;
	struct {
		unsigned long start, end;
	} r[PT_CHUNK_PAGES / 2 + 1];
};

static void unreg_runs_add(unsigned long start, unsigned long end, void *arg)
{
	struct unreg_runs *u = arg;

	if (u->n < ARRAY_SIZE(u->r)) {
		u->r[u->n].start = start;
		u->r[u->n].end = end;
		u->n++;
	}
}

/*
 * MADV_DONTNEED of [s, e) inside one chunk, but only where it is still a
 * mapping that a userfaultfd registered: a part unmapped, or mapped again by
 * someone else, behind faultline's back (the libc munmap of a region) is
 * left alone (its pages may be someone else's now) and marked stale.
 * Context: the chunk's ptl held.  Return: whether a part was stale.
 */
static bool zap_registered(struct fl_space *sp, unsigned long s, unsigned long e)
{
	struct unreg_runs u = {0};
	unsigned long a = s;

	uffd_for_each_unregistered(sp, s, e, unreg_runs_add, &u);
	for (unsigned int i = 0; i <= u.n; i++) {
		unsigned long pe = i < u.n ? u.r[i].start : e;

		if (pe > a && madvise((void *)a, pe - a, MADV_DONTNEED)) {
			/* Unmapped since the probe (the libc munmap raced with
			 * us): page by page, what is still registered. */
			for (unsigned long p = a; p < pe; p += PAGE_SIZE)
				if (uffd_unregistered_bytes(sp, p, p + PAGE_SIZE))
					space_mark_stale(sp, p, p + PAGE_SIZE);
				else
					madvise((void *)p, PAGE_SIZE, MADV_DONTNEED);
		}
		if (i < u.n) {
			space_mark_stale(sp, u.r[i].start, u.r[i].end);
			a = u.r[i].end;
		}
	}
	return u.n > 0;
}

static void zap_chunk(struct fl_space *sp, struct pt_chunk *c, unsigned long s, unsigned long e,
		      void *arg)
{
	bool *stale = arg; /* NULL: forget the entries only */
	unsigned long first = 0, last = 0;
	long n = 0;

	pt_lock(c);
	for (unsigned long a = s; a < e; a += PAGE_SIZE) {
		unsigned int i = pt_index(a);
		uint64_t pte = READ_ONCE(c->pte[i]);
		if (pte == PTE_NONE)
			continue;
		/* What the kernel maps (a page, or a poison marker) must be zapped
		 * under the ptl: the range from the first to the last of them. */
		if (pte_type(pte) == PTE_PRESENT || (pte & PTE_POISON)) {
			if (!first)
				first = a;
			last = a + PAGE_SIZE;
		}
		if (pte_type(pte) == PTE_PRESENT)
			n++;
		if (sp->swap_on)
			pte_release(sp, c, a);
		else
			WRITE_ONCE(c->pte[i], PTE_NONE);
	}
	if (first && stale && zap_registered(sp, first, last))
		*stale = true;
	if (n) {
		c->nr_present -= (unsigned int)n;
		atomic_fetch_sub(&sp->resident_pages, n);
	}
	pt_unlock(c);
}

/*
 * Forget the pages in [start, end); with madvise, also drop them from the
 * kernel (MADV_DONTNEED), under each chunk's ptl, where the range is still
 * the space's registered mapping (zap_registered()).
 * Context: mmap_lock held; for munmap (madvise false) the VMAs of the range
 * are write-locked, so no fault runs there.  Return: whether part of the
 * range was found stale (not the space's mapping any more; left alone).
 */
bool pt_zap_range(struct fl_space *sp, unsigned long start, unsigned long end, bool madvise)
{
	bool stale = false;

	mmap_assert_locked(sp);
	for_each_chunk(sp, start, end, zap_chunk, madvise ? &stale : NULL);
	return stale;
}

static void free_chunk_if_unused(struct fl_space *sp, struct pt_chunk *c, unsigned long s,
				 unsigned long e, void *arg)
{
	struct vma_index *idx = vma_index_get(sp);
	size_t i = vma_index_first(idx, c->base);

	if (i < idx->nr && idx->v[i]->vm_start < c->base + PT_CHUNK_SIZE)
		return; /* a VMA still overlaps it */
	FL_BUG_ON(c->nr_present);
	struct pt_chunk *_Atomic *slot = dir_slot(sp, c->base, false), *was = c;
	if (slot) /* lookups find it no more; those that did keep it a grace period */
		atomic_compare_exchange_strong(slot, &was, NULL);
	if (cds_lfht_del(sp->pt, &c->node) == 0) {
		if (sp->swap_on)
			reclaim_chunk_removed(sp, c);
		atomic_fetch_sub(&sp->nr_chunks, 1);
		c->free_next = (struct pt_chunk *)sp;
		fl_call_rcu(&c->rcu, chunk_free_cb);
	}
}

/*
 * Free the chunks overlapping [start, end) that no VMA overlaps any more.
 * Context: mmap_lock held for write, after the index was updated.
 */
void pt_free_unused(struct fl_space *sp, unsigned long start, unsigned long end)
{
	mmap_assert_write_locked(sp);
	for_each_chunk(sp, start, end, free_chunk_if_unused, NULL);
}

/*
 * Context: the space is being destroyed: no fault, no other call; every VMA
 * is gone.  Waits for pending RCU callbacks, then frees the slabs.
 */
void pt_destroy(struct fl_space *sp)
{
	struct cds_lfht_iter iter;

	worker_stop(&sp->resizer);
	if (sp->pt) {
		rcu_read_lock();
		for (struct pt_chunk *c = chunk_first(sp, &iter); c; c = chunk_next(sp, &iter))
			cds_lfht_del(sp->pt, &c->node);
		fl_rcu_read_unlock();
		fl_rcu_barrier();
		cds_lfht_destroy(sp->pt, NULL);
		sp->pt = NULL;
	}
	for (size_t i = 0; i < sp->nr_chunk_slabs; i++)
		munmap(sp->chunk_slabs[i], SLAB_SIZE);
	if (sp->chunk_slabs)
		munmap(sp->chunk_slabs, sp->cap_chunk_slabs * sizeof(void *));
	sp->chunk_slabs = NULL;
	sp->nr_chunk_slabs = sp->cap_chunk_slabs = 0;
	if (sp->pt_dir)
		munmap((void *)sp->pt_dir, PT_DIR_ENTRIES * sizeof(void *));
	sp->pt_dir = NULL;
	pthread_mutex_destroy(&sp->chunk_alloc_lock);
}
