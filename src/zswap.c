// SPDX-License-Identifier: MIT
/* The compressed tier (zswap.h). */
#include "zswap.h"

#include <lz4.h>
#include <sys/mman.h>
#include <zstd.h>

#define ZSTD_LEVEL 1

static struct zs_ctx *ctx_get(struct zswap *z)
{
	for (unsigned int i = 0; i < ZS_CONTEXTS; i++) {
		bool idle = false;
		if (atomic_compare_exchange_strong_explicit(&z->ctx[i].busy, &idle, true,
							    memory_order_acquire,
							    memory_order_relaxed))
			return &z->ctx[i];
	}
	return NULL;
}

/*
 * A context for a load, sleeping until one is put back if all are busy.
 * The sleeper counts itself in ctx_waiters before it looks again, and
 * ctx_put() frees before it reads ctx_waiters (all sequentially
 * consistent): either the look finds the freed context or the put sees
 * the sleeper and moves ctx_seq, which ends or prevents its futex sleep.
 * Context: any, also the SIGBUS handler (futex is async-signal-safe).
 */
static struct zs_ctx *ctx_get_wait(struct zswap *z)
{
	struct zs_ctx *c = ctx_get(z);

	if (c)
		return c;
	atomic_fetch_add_explicit(&z->st.ctx_waits, 1, memory_order_relaxed);
	for (;;) {
		atomic_fetch_add(&z->ctx_waiters, 1);
		uint32_t seq = atomic_load(&z->ctx_seq);
		c = ctx_get(z);
		if (!c)
			futex_wait(&z->ctx_seq, seq);
		atomic_fetch_sub(&z->ctx_waiters, 1);
		if (c || (c = ctx_get(z)))
			return c;
	}
}

static void ctx_put(struct zswap *z, struct zs_ctx *c)
{
	atomic_store(&c->busy, false);
	if (atomic_load(&z->ctx_waiters)) {
		atomic_fetch_add(&z->ctx_seq, 1);
		futex_wake(&z->ctx_seq, 1);
	}
}

static void ctx_free(struct zswap *z, struct zs_ctx *c)
{
	if (z->algo == ZS_ZSTD) {
		ZSTD_freeCCtx(c->c);
		ZSTD_freeDCtx(c->d);
	} else {
		free(c->c);
	}
	c->c = c->d = NULL;
}

/*
 * Compress page into dst (dst_cap bytes) with context c.  Return: the
 * compressed length, or 0 if it does not fit.
 */
static size_t compress_page(struct zswap *z, struct zs_ctx *c, const void *page, void *dst,
			    size_t dst_cap)
{
	if (z->algo == ZS_LZ4) {
		int n = LZ4_compress_fast_extState(c->c, page, dst, (int)PAGE_SIZE, (int)dst_cap,
						   1);
		return n > 0 ? (size_t)n : 0;
	}
	size_t n = ZSTD_compressCCtx(c->c, dst, dst_cap, page, PAGE_SIZE, z->level);
	return ZSTD_isError(n) ? 0 : n;
}

/* Return: 0, or -EBADMSG if src does not decompress to a whole page. */
static int decompress_page(struct zswap *z, struct zs_ctx *c, const void *src, size_t len,
			   void *page)
{
	if (z->algo == ZS_LZ4)
		return LZ4_decompress_safe(src, page, (int)len, (int)PAGE_SIZE) == (int)PAGE_SIZE
			       ? 0
			       : -EBADMSG;
	size_t n = ZSTD_decompressDCtx(c->d, page, PAGE_SIZE, src, len);
	return !ZSTD_isError(n) && n == PAGE_SIZE ? 0 : -EBADMSG;
}

/* decompress_page() with a context if the algorithm needs one (zstd's
 * DCtx, waited for if all are busy; LZ4 decompresses without state).
 * Return: as decompress_page(). */
static int decompress_any(struct zswap *z, const void *src, size_t len, void *page)
{
	struct zs_ctx *c = z->algo != ZS_LZ4 ? ctx_get_wait(z) : NULL;
	int ret = decompress_page(z, c, src, len, page);

	if (c)
		ctx_put(z, c);
	return ret;
}

int zswap_init(struct zswap *z, enum zs_algo algo, unsigned long max_slots, size_t max_bytes)
{
	char page[PAGE_SIZE], out[PAGE_SIZE];

	memset(z, 0, sizeof(*z));
	if (algo != ZS_LZ4 && algo != ZS_ZSTD)
		return -EINVAL;
	z->algo = algo;
	z->level = ZSTD_LEVEL;
	z->max_bytes = max_bytes;
	z->max_slots = max_slots;
	pthread_mutex_init(&z->lock, NULL);
	if (zp_init(&z->pool, max_bytes))
		return -ENOMEM;
	z->e = mmap(NULL, max_slots * sizeof(*z->e), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (z->e == MAP_FAILED) {
		z->e = NULL;
		zswap_destroy(z);
		return -ENOMEM;
	}
	/* A page that compresses, to size each context's workspace now: a
	 * later compression of a page allocates nothing. */
	for (size_t i = 0; i < PAGE_SIZE; i++)
		page[i] = (char)(i % 251 < 64 ? 'a' + i % 13 : i * 7);
	for (unsigned int i = 0; i < ZS_CONTEXTS; i++) {
		struct zs_ctx *c = &z->ctx[i];
		if (algo == ZS_LZ4) {
			c->c = malloc((size_t)LZ4_sizeofState());
		} else {
			c->c = ZSTD_createCCtx();
			c->d = ZSTD_createDCtx();
		}
		if (!c->c || (algo == ZS_ZSTD && !c->d)) {
			zswap_destroy(z);
			return -ENOMEM;
		}
		size_t n = compress_page(z, c, page, out, sizeof(out));
		char back[PAGE_SIZE];
		if (!n || decompress_page(z, c, out, n, back) || memcmp(back, page, PAGE_SIZE)) {
			zswap_destroy(z);
			return -EIO;
		}
		atomic_init(&c->busy, false);
	}
	return 0;
}

/* Context: no other call runs or follows.  Idempotent. */
void zswap_destroy(struct zswap *z)
{
	for (unsigned int i = 0; i < ZS_CONTEXTS; i++)
		if (z->ctx[i].c || z->ctx[i].d)
			ctx_free(z, &z->ctx[i]);
	if (z->e)
		munmap(z->e, z->max_slots * sizeof(*z->e));
	z->e = NULL;
	if (z->pool.slabs)
		zp_destroy(&z->pool);
	pthread_mutex_destroy(&z->lock);
}

/* Context: z->lock held. */
static void lru_del(struct zswap *z, uint32_t slot)
{
	struct zs_entry *e = &z->e[slot];

	if (e->prev)
		z->e[e->prev - 1].next = e->next;
	else
		z->head = e->next;
	if (e->next)
		z->e[e->next - 1].prev = e->prev;
	else
		z->tail = e->prev;
	e->prev = e->next = 0;
}

/* At the hot end.  Context: z->lock held. */
static void lru_add(struct zswap *z, uint32_t slot)
{
	struct zs_entry *e = &z->e[slot];

	e->prev = 0;
	e->next = z->head;
	if (z->head)
		z->e[z->head - 1].prev = slot + 1;
	else
		z->tail = slot + 1;
	z->head = slot + 1;
}

/* Drop slot's entry, if any (a tombstone too).  Context: z->lock held. */
static void entry_drop(struct zswap *z, uint32_t slot)
{
	struct zs_entry *e = &z->e[slot];

	if (!(e->flags & ZS_PRESENT))
		return;
	lru_del(z, slot);
	if (!(e->flags & ZS_SAME)) {
		zp_free(&z->pool, e->handle);
		z->stored_bytes -= e->len;
	}
	if (e->flags & ZS_RAW)
		z->nr_raw--;
	e->flags = 0;
	z->nr--;
}

/*
 * Forget slot's entry.  Context: z->lock held.  Return: true if it is being
 * written below: it stays as a tombstone until that write is over.
 */
static bool entry_invalidate(struct zswap *z, uint32_t slot)
{
	struct zs_entry *e = &z->e[slot];

	if ((e->flags & (ZS_PRESENT | ZS_WRITEBACK)) == (ZS_PRESENT | ZS_WRITEBACK)) {
		e->flags |= ZS_DEAD;
		return true;
	}
	entry_drop(z, slot);
	return false;
}

size_t zswap_pool_bytes(struct zswap *z)
{
	return (size_t)atomic_load_explicit(&z->pool.bytes_slabs, memory_order_relaxed);
}

/* Over the accept threshold: stores go below, and writeback should run. */
bool zswap_needs_writeback(struct zswap *z)
{
	return zswap_pool_bytes(z) > z->max_bytes / 100 * ZS_ACCEPT_PCT;
}

static bool same_filled(const void *page, uint64_t *fill)
{
	const uint64_t *w = page;

	for (size_t i = 1; i < PAGE_SIZE / 8; i++)
		if (w[i] != w[0])
			return false;
	*fill = w[0];
	return true;
}

/* A store that goes below: whatever the tier had for the slot goes.  A slot
 * still being written back is not the caller's to write (zswap.h). */
static void drop_old(struct zswap *z, uint32_t slot)
{
	bool busy = zswap_invalidate(z, slot);

	FL_BUG_ON(busy);
}

/*
 * Keep page as slot's contents (replacing what the tier had for it):
 * compressed, or with keep_raw as it is if compressing would not save a
 * pool class (zswap.h).  Context: any, also the SIGBUS handler; no tier
 * lock held.  Return: 0 if kept; -E2BIG (incompressible, without
 * keep_raw), -ENOSPC (the pool is full), -EBUSY (no context free) or
 * -ENOMEM if not: the caller writes the page to the store below.
 */
int zswap_store(struct zswap *z, uint32_t slot, const void *page)
{
	char buf[PAGE_SIZE];
	struct zs_entry *e;
	struct zs_ctx *c;
	uint32_t handle = ZP_NONE;
	uint64_t fill = 0;
	size_t len = 0;
	bool same, raw = false;

	FL_BUG_ON(slot >= z->max_slots);
	same = same_filled(page, &fill);
	if (!same) {
		if (zswap_needs_writeback(z)) {
			atomic_fetch_add_explicit(&z->st.rejected_full, 1, memory_order_relaxed);
			drop_old(z, slot);
			return -ENOSPC;
		}
		c = ctx_get(z);
		if (!c) {
			atomic_fetch_add_explicit(&z->st.rejected_busy, 1, memory_order_relaxed);
			drop_old(z, slot);
			return -EBUSY;
		}
		len = compress_page(z, c, page, buf, ZS_MAX_COMPRESSED);
		ctx_put(z, c);
		if (!len && !z->keep_raw) {
			atomic_fetch_add_explicit(&z->st.incompressible, 1, memory_order_relaxed);
			drop_old(z, slot);
			return -E2BIG;
		}
		/* No smaller than the page in the pool: kept as it is, and a
		 * load is a copy. */
		raw = z->keep_raw && (!len || zp_class_size(len) >= PAGE_SIZE);
		if (raw)
			len = PAGE_SIZE;
		handle = zp_alloc(&z->pool, len, slot);
		if (handle == ZP_NONE) {
			drop_old(z, slot);
			return -ENOMEM;
		}
		/* Not yet the slot's entry's: compaction leaves it alone. */
		memcpy(zp_map(&z->pool, handle), raw ? page : buf, len);
	}
	pthread_mutex_lock(&z->lock);
	e = &z->e[slot];
	/* The caller waits for a written-back slot to be done (see above). */
	FL_BUG_ON(e->flags & ZS_WRITEBACK);
	entry_drop(z, slot);
	e->flags = ZS_PRESENT | (same ? ZS_SAME : 0) | (raw ? ZS_RAW : 0);
	e->fill = fill;
	e->handle = handle;
	e->len = (uint16_t)len;
	e->token = ++z->next_token;
	z->stored_bytes += len;
	z->nr++;
	z->nr_raw += raw;
	lru_add(z, slot);
	pthread_mutex_unlock(&z->lock);
	atomic_fetch_add_explicit(same	? &z->st.same_filled
				  : raw ? &z->st.incompressible
					: &z->st.stores,
				  1, memory_order_relaxed);
	return 0;
}

/*
 * Slot's page, decompressed into page.  Context: any, as zswap_store().
 * Return: 0 (a hit), -ENOENT (not in the tier: read it below), -EBADMSG
 * (it does not decompress: treat as a read error).  May sleep for a
 * context (ctx_get_wait()).
 */
int zswap_load(struct zswap *z, uint32_t slot, void *page)
{
	char buf[PAGE_SIZE];
	struct zs_entry *e = &z->e[slot];
	size_t len;
	bool raw;
	int ret;

	FL_BUG_ON(slot >= z->max_slots);
	pthread_mutex_lock(&z->lock);
	if ((e->flags & (ZS_PRESENT | ZS_DEAD)) != ZS_PRESENT) {
		pthread_mutex_unlock(&z->lock);
		atomic_fetch_add_explicit(&z->st.misses, 1, memory_order_relaxed);
		return -ENOENT;
	}
	if (e->flags & ZS_SAME) {
		uint64_t fill = e->fill;
		pthread_mutex_unlock(&z->lock);
		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			((uint64_t *)page)[i] = fill;
		atomic_fetch_add_explicit(&z->st.hits, 1, memory_order_relaxed);
		return 0;
	}
	if (e->flags & ZS_BAD) {
		/* Found not to decompress (counted then): lost, as a failed read. */
		pthread_mutex_unlock(&z->lock);
		return -EBADMSG;
	}
	len = e->len;
	raw = e->flags & ZS_RAW;
	/* Read under the lock: compaction may move the object after it. */
	memcpy(raw ? page : buf, zp_map(&z->pool, e->handle), len);
	if (!(e->flags & ZS_WRITEBACK)) {
		lru_del(z, slot);
		lru_add(z, slot);
	}
	pthread_mutex_unlock(&z->lock);
	if (raw) {
		atomic_fetch_add_explicit(&z->st.hits, 1, memory_order_relaxed);
		return 0;
	}
	ret = decompress_any(z, buf, len, page);
	atomic_fetch_add_explicit(ret ? &z->st.decompress_errors : &z->st.hits, 1,
				  memory_order_relaxed);
	return ret;
}

/*
 * Forget slot (freed, or about to be written below directly).
 * Context: any, as zswap_store().  Return: true if the slot's entry is
 * being written below: the slot must not be written or reused until
 * zswap_writeback_done() returns true for it.
 */
bool zswap_invalidate(struct zswap *z, uint32_t slot)
{
	bool busy;

	FL_BUG_ON(slot >= z->max_slots);
	pthread_mutex_lock(&z->lock);
	busy = entry_invalidate(z, slot);
	pthread_mutex_unlock(&z->lock);
	return busy;
}

/*
 * The coldest entry not already being written back, decompressed into
 * page, for the caller to write to the store below; it stays in the tier
 * (loads still find it) until zswap_writeback_done().  An entry that does
 * not decompress cannot be written below: it becomes ZS_BAD (a load of it
 * fails, so its page is poisoned as after a failed read), moves to the hot
 * end, and the next coldest is picked; if it was invalidated meanwhile, it
 * goes, and its slot is the caller's to free (*dead).
 * Return: its slot, and in *token which store of it this is; -1 if none
 * (or with *dead >= 0: the slot to free first; then pick again).
 */
long zswap_writeback_pick(struct zswap *z, void *page, uint64_t *token, long *dead)
{
	char buf[PAGE_SIZE];
	struct zs_ctx *c = NULL;
	struct zs_entry *e;
	uint32_t s;
	size_t len;
	bool same, raw;
	uint64_t fill;

	*dead = -1;
	if (z->algo != ZS_LZ4 && !(c = ctx_get(z)))
		return -1;
again:
	pthread_mutex_lock(&z->lock);
	for (s = z->tail; s && (z->e[s - 1].flags & (ZS_WRITEBACK | ZS_DEAD | ZS_BAD));
	     s = z->e[s - 1].prev)
		;
	if (!s) {
		pthread_mutex_unlock(&z->lock);
		if (c)
			ctx_put(z, c);
		return -1;
	}
	e = &z->e[s - 1];
	e->flags |= ZS_WRITEBACK;
	*token = e->token;
	same = e->flags & ZS_SAME;
	raw = e->flags & ZS_RAW;
	fill = e->fill;
	len = e->len;
	if (!same)
		memcpy(raw ? page : buf, zp_map(&z->pool, e->handle), len);
	pthread_mutex_unlock(&z->lock);
	if (raw) {
		/* Already the page. */
	} else if (same) {
		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			((uint64_t *)page)[i] = fill;
	} else if (decompress_page(z, c, buf, len, page)) {
		atomic_fetch_add_explicit(&z->st.decompress_errors, 1, memory_order_relaxed);
		pthread_mutex_lock(&z->lock);
		FL_BUG_ON(!(e->flags & ZS_WRITEBACK) || e->token != *token);
		e->flags &= (uint16_t)~ZS_WRITEBACK;
		if (e->flags & ZS_DEAD) {
			entry_drop(z, s - 1);
			*dead = (long)(s - 1);
		} else {
			e->flags |= ZS_BAD;
			lru_del(z, s - 1);
			lru_add(z, s - 1);
		}
		pthread_mutex_unlock(&z->lock);
		if (*dead < 0)
			goto again;
		if (c)
			ctx_put(z, c);
		return -1;
	}
	if (c)
		ctx_put(z, c);
	return (long)(s - 1);
}

/*
 * The writeback of slot (picked with token) is over: written, the entry
 * goes; not written, it stays.  Return: true if the slot was invalidated
 * meanwhile: the caller may now reuse (or free) it.
 */
bool zswap_writeback_done(struct zswap *z, uint32_t slot, uint64_t token, bool written)
{
	struct zs_entry *e = &z->e[slot];
	bool dead = false;

	pthread_mutex_lock(&z->lock);
	FL_BUG_ON(!(e->flags & ZS_WRITEBACK) || e->token != token);
	dead = e->flags & ZS_DEAD;
	e->flags &= (uint16_t)~ZS_WRITEBACK;
	if (written || dead)
		entry_drop(z, slot);
	if (written)
		atomic_fetch_add_explicit(&z->st.writebacks, 1, memory_order_relaxed);
	pthread_mutex_unlock(&z->lock);
	return dead;
}

/* Compaction would give back enough of the pool to be worth a pass. */
bool zswap_needs_compaction(struct zswap *z)
{
	uint64_t gain = zp_reclaimable_bytes(&z->pool);

	return gain >= ZS_COMPACT_MIN_SLABS * ZP_SLAB_SIZE &&
	       gain > zswap_pool_bytes(z) / 100 * ZS_COMPACT_GAIN_PCT;
}

/* zp_move_fn: re-point slot owner's entry if it holds handle.
 * Context: z->lock held (zswap_compact()), and a class lock. */
static bool entry_move(void *arg, uint32_t owner, uint32_t handle, uint32_t new_handle)
{
	struct zswap *z = arg;
	struct zs_entry *e;

	if (owner >= z->max_slots)
		return false;
	e = &z->e[owner];
	/* A store's object is the entry's only once published under
	 * z->lock; until then (or after its entry went) it is not. */
	if ((e->flags & (ZS_PRESENT | ZS_SAME)) != ZS_PRESENT || e->handle != handle)
		return false;
	e->handle = new_handle;
	return true;
}

/*
 * Compact the pool (zpool.h): in each class, objects move from sparse
 * slabs into full ones and the emptied slabs go back to the system.  Each
 * step (one source slab) runs under z->lock, so a load, a writeback's
 * pick, an invalidation or a store's publication sees an entry's handle
 * either before its object moved or after, never in between; the lock is
 * dropped between steps.
 * Context: not the SIGBUS handler (compaction gives slabs back); no tier lock held.
 * Return: objects moved.
 */
uint64_t zswap_compact(struct zswap *z)
{
	struct zp_compact_result res = {0, 0};

	for (unsigned int c = 0; c < ZP_CLASSES; c++) {
		for (unsigned int step = 0; step < ZS_COMPACT_MAX_STEPS; step++) {
			bool more;

			pthread_mutex_lock(&z->lock);
			more = zp_compact_step(&z->pool, c, entry_move, z, &res);
			pthread_mutex_unlock(&z->lock);
			if (!more)
				break;
		}
	}
	atomic_fetch_add_explicit(&z->st.compactions, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&z->st.compacted, res.moved, memory_order_relaxed);
	atomic_fetch_add_explicit(&z->st.compact_slabs_freed, res.slabs_freed,
				  memory_order_relaxed);
	return res.moved;
}
