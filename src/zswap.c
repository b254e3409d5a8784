// SPDX-License-Identifier: MIT
/* The compressed tier (zswap.h). */
#include "zswap.h"

#include <lz4.h>
#include <lzo/lzo1x.h>
#include <sys/mman.h>
#include <zstd.h>

#define ZSTD_LEVEL 1
/* LZO1X-1's output for a page that does not compress: it takes no bound,
 * so it writes into a buffer this large and is copied out if it fits. */
#define LZO_OUT_MAX (PAGE_SIZE + PAGE_SIZE / 16 + 64 + 3)

/* Whether a decompression needs a context (zstd's DCtx); LZ4 and LZO
 * decompress without state. */
static bool needs_dctx(const struct zswap *z)
{
	return z->algo == ZS_ZSTD;
}

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
		free(c->d);
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
	if (z->algo == ZS_LZO) {
		lzo_uint n = 0;

		if (lzo1x_1_compress(page, PAGE_SIZE, c->d, &n, c->c) != LZO_E_OK || n > dst_cap)
			return 0;
		memcpy(dst, c->d, n);
		return n;
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
	if (z->algo == ZS_LZO) {
		lzo_uint n = PAGE_SIZE;

		return lzo1x_decompress_safe(src, len, page, &n, NULL) == LZO_E_OK && n == PAGE_SIZE
			       ? 0
			       : -EBADMSG;
	}
	size_t n = ZSTD_decompressDCtx(c->d, page, PAGE_SIZE, src, len);
	return !ZSTD_isError(n) && n == PAGE_SIZE ? 0 : -EBADMSG;
}

/* decompress_page() with a context if the algorithm needs one
 * (needs_dctx(): waited for if all are busy).  Return: as
 * decompress_page(). */
static int decompress_any(struct zswap *z, const void *src, size_t len, void *page)
{
	struct zs_ctx *c = needs_dctx(z) ? ctx_get_wait(z) : NULL;
	int ret = decompress_page(z, c, src, len, page);

	if (c)
		ctx_put(z, c);
	return ret;
}

int zswap_init(struct zswap *z, enum zs_algo algo, unsigned long max_slots, size_t max_bytes)
{
	char page[PAGE_SIZE], out[PAGE_SIZE];

	memset(z, 0, sizeof(*z));
	if (algo != ZS_LZ4 && algo != ZS_ZSTD && algo != ZS_LZO)
		return -EINVAL;
	if (algo == ZS_LZO && lzo_init() != LZO_E_OK)
		return -EIO;
	z->algo = algo;
	z->level = ZSTD_LEVEL;
	z->max_bytes = max_bytes;
	z->max_slots = max_slots;
	pthread_mutex_init(&z->lock, NULL);
	if (zp_init(&z->pool, max_bytes))
		return -ENOMEM;
	/* Inaccessible, which no overcommit policy charges, and made
	 * accessible from its start as slots are stored (entries_grow()), as
	 * the pool's reservation is (zpool.c). */
	z->e = mmap(NULL, max_slots * sizeof(*z->e), PROT_NONE,
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
		} else if (algo == ZS_LZO) {
			c->c = malloc(LZO1X_1_MEM_COMPRESS);
			c->d = malloc(LZO_OUT_MAX);
		} else {
			c->c = ZSTD_createCCtx();
			c->d = ZSTD_createDCtx();
		}
		if (!c->c || (algo != ZS_LZ4 && !c->d)) {
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

/*
 * e's fields (but the LRU's) are about to change, and an object it names
 * may be freed: a load reading without z->lock (load_unlocked()) that
 * overlaps the change sees seq move, and reads again.  The release fence
 * orders the odd count before every write that follows, the object's
 * reuse by another thread included.  Context: z->lock held.
 */
static void entry_change_begin(struct zs_entry *e)
{
	uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);

	FL_BUG_ON(seq & 1);
	atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

/* The change is over: seq even again.  Context: z->lock held. */
static void entry_change_end(struct zs_entry *e)
{
	uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);

	FL_BUG_ON(!(seq & 1));
	atomic_store_explicit(&e->seq, seq + 1, memory_order_release);
}

/* Set and clear flags of e's.  Context: z->lock held. */
static void entry_flags(struct zs_entry *e, uint16_t set, uint16_t clear)
{
	entry_change_begin(e);
	e->flags = (uint16_t)((e->flags & ~clear) | set);
	entry_change_end(e);
}

/* Drop slot's entry, if any (a tombstone too).  Context: z->lock held. */
static void entry_drop(struct zswap *z, uint32_t slot)
{
	struct zs_entry *e = &z->e[slot];

	if (slot >= atomic_load_explicit(&z->e_mapped, memory_order_relaxed) ||
	    !(e->flags & ZS_PRESENT))
		return;
	lru_del(z, slot);
	entry_change_begin(e);
	if (!(e->flags & ZS_SAME)) {
		zp_free(&z->pool, e->handle);
		z->stored_bytes -= e->len;
	}
	if (e->flags & ZS_RAW)
		z->nr_raw--;
	e->flags = 0;
	entry_change_end(e);
	z->nr--;
}

/*
 * Forget slot's entry.  Context: z->lock held.  Return: true if it is being
 * written below: it stays as a tombstone until that write is over.
 */
static bool entry_invalidate(struct zswap *z, uint32_t slot)
{
	struct zs_entry *e = &z->e[slot];

	if (slot >= atomic_load_explicit(&z->e_mapped, memory_order_relaxed))
		return false; /* never stored */
	if ((e->flags & (ZS_PRESENT | ZS_WRITEBACK)) == (ZS_PRESENT | ZS_WRITEBACK)) {
		entry_flags(e, ZS_DEAD, 0);
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

/*
 * Make e[] accessible up to slot (ZS_GROW_BYTES more at a time), if it is
 * not yet.  Context: z->lock held.  Return: 0, or -ENOMEM if the system
 * will not commit the memory.
 */
static int entries_grow(struct zswap *z, uint32_t slot)
{
	size_t total = z->max_slots * sizeof(*z->e), to;

	if (slot < atomic_load_explicit(&z->e_mapped, memory_order_relaxed))
		return 0;
	to = MAX((size_t)(slot + 1) * sizeof(*z->e), z->e_bytes + ZS_GROW_BYTES);
	to = MIN((to + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1), total);
	if (mprotect((char *)z->e + z->e_bytes, to - z->e_bytes, PROT_READ | PROT_WRITE))
		return -ENOMEM;
	z->e_bytes = to;
	/* After the mprotect: loads read e[] below it without the lock. */
	atomic_store_explicit(&z->e_mapped, to / sizeof(*z->e), memory_order_release);
	return 0;
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
	if (entries_grow(z, slot)) {
		pthread_mutex_unlock(&z->lock);
		if (handle != ZP_NONE)
			zp_free(&z->pool, handle);
		return -ENOMEM;
	}
	e = &z->e[slot];
	/* The caller waits for a written-back slot to be done (see above). */
	FL_BUG_ON(e->flags & ZS_WRITEBACK);
	entry_drop(z, slot);
	entry_change_begin(e);
	e->flags = ZS_PRESENT | (same ? ZS_SAME : 0) | (raw ? ZS_RAW : 0);
	e->fill = fill;
	e->handle = handle;
	e->len = (uint16_t)len;
	e->token = ++z->next_token;
	entry_change_end(e);
	atomic_store_explicit(&e->ref, 0, memory_order_relaxed);
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
 * Copy n bytes of an object that may change or go meanwhile (the caller
 * checks seq afterwards).  TSan builds copy with volatile word reads, in a
 * function TSan does not instrument, so that the reads the check makes
 * harmless are not reported (up to 3 bytes past n: still the object's
 * class, and dst has a page).
 */
static FL_NO_TSAN void copy_racy(void *dst, const void *src, size_t n)
{
#ifdef FL_TSAN
	for (size_t i = 0; i < (n + 3) / 4; i++)
		((uint32_t *)dst)[i] = ((const volatile uint32_t *)src)[i];
#else
	memcpy(dst, src, n);
#endif
}

/*
 * One read of slot's entry without z->lock: the entry's fields, then its
 * object, between two reads of its seq.  A handle read as the entry
 * changes may be stale or torn; zp_map_racy() makes any handle's address
 * one inside the pool's reservation, so the copy reads memory that is
 * always mapped (an object freed or moved, or a slab given back and read
 * as zeros), and the second read of seq throws the copy away.
 * Return: -ENOENT or -EBADMSG as zswap_load(); 0 if page holds the page
 * (same-filled, or kept as it is); len + 1 if buf holds its len compressed
 * bytes; -EAGAIN if the entry changed meanwhile (read again).
 */
static FL_NO_TSAN int load_unlocked(struct zswap *z, struct zs_entry *e, void *page, char *buf)
{
	uint32_t seq = atomic_load_explicit(&e->seq, memory_order_acquire), handle;
	uint16_t flags, len;
	uint64_t fill;
	const void *src;
	int ret = 0;

	if (seq & 1)
		return -EAGAIN;
	flags = *(volatile uint16_t *)&e->flags;
	len = *(volatile uint16_t *)&e->len;
	handle = *(volatile uint32_t *)&e->handle;
	fill = *(volatile uint64_t *)&e->fill;
	if ((flags & (ZS_PRESENT | ZS_DEAD)) != ZS_PRESENT)
		ret = -ENOENT;
	else if (flags & ZS_SAME)
		ret = 0;
	else if (flags & ZS_BAD)
		ret = -EBADMSG;
	else if (!len || len > PAGE_SIZE || !(src = zp_map_racy(&z->pool, handle, len)))
		return -EAGAIN;
	else
		copy_racy(flags & ZS_RAW ? page : buf, src, len);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq)
		return -EAGAIN;
	if (ret)
		return ret;
	if (flags & ZS_SAME) {
		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			((uint64_t *)page)[i] = fill;
		return 0;
	}
	return flags & ZS_RAW ? 0 : (int)len + 1;
}

/*
 * Slot's entry under z->lock, for a load whose tries without it kept
 * finding the entry changing.  Context: z->lock held.  Return: as
 * load_unlocked(), never -EAGAIN.
 */
static int load_locked(struct zswap *z, struct zs_entry *e, void *page, char *buf)
{
	if ((e->flags & (ZS_PRESENT | ZS_DEAD)) != ZS_PRESENT)
		return -ENOENT;
	if (e->flags & ZS_BAD)
		return -EBADMSG;
	if (e->flags & ZS_SAME) {
		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			((uint64_t *)page)[i] = e->fill;
		return 0;
	}
	memcpy(e->flags & ZS_RAW ? page : buf, zp_map(&z->pool, e->handle), e->len);
	return e->flags & ZS_RAW ? 0 : (int)e->len + 1;
}

/*
 * Slot's page, decompressed into page.  Without z->lock: the entry and its
 * object are read between two reads of the entry's seq (load_unlocked()),
 * up to ZS_LOAD_TRIES times, then under the lock; a holder of z->lock
 * preempted (a store, a writeback pick, a compaction step) then delays no
 * load.  A hit sets the entry's referenced bit for the writeback's clock
 * rather than moving it in the LRU.  Context: any, as zswap_store().
 * Return: 0 (a hit), -ENOENT (not in the tier: read it below), -EBADMSG
 * (it does not decompress: treat as a read error).  May sleep for a
 * context (ctx_get_wait()).
 */
int zswap_load(struct zswap *z, uint32_t slot, void *page)
{
	char buf[PAGE_SIZE];
	struct zs_entry *e = &z->e[slot];
	int ret = -EAGAIN;

	FL_BUG_ON(slot >= z->max_slots);
	/* Beyond what was ever stored, e[] may be inaccessible. */
	if (slot >= atomic_load_explicit(&z->e_mapped, memory_order_acquire))
		ret = -ENOENT;
	for (unsigned int i = 0; i < ZS_LOAD_TRIES && ret == -EAGAIN; i++) {
		if (i)
			atomic_fetch_add_explicit(&z->st.load_retries, 1, memory_order_relaxed);
		ret = load_unlocked(z, e, page, buf);
	}
	if (ret == -EAGAIN) {
		atomic_fetch_add_explicit(&z->st.load_locked, 1, memory_order_relaxed);
		pthread_mutex_lock(&z->lock);
		ret = load_locked(z, e, page, buf);
		pthread_mutex_unlock(&z->lock);
	}
	if (ret == -ENOENT) {
		atomic_fetch_add_explicit(&z->st.misses, 1, memory_order_relaxed);
		return ret;
	}
	if (ret == -EBADMSG) /* found not to decompress (counted then): lost */
		return ret;
	if (!atomic_load_explicit(&e->ref, memory_order_relaxed))
		atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
	if (ret > 0)
		ret = decompress_any(z, buf, (size_t)ret - 1, page);
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
 * The coldest entry not already being written back (by the clock: one
 * loaded since the last pick passed it goes to the hot end instead, its
 * referenced bit cleared, as the kernel's zswap shrinker gives a second
 * chance), decompressed into page, for the caller to write to the store
 * below; it stays in the tier (loads still find it) until
 * zswap_writeback_done().  An entry that does not decompress cannot be
 * written below: it becomes ZS_BAD (a load of it fails, so its page is
 * poisoned as after a failed read), moves to the hot end, and the next
 * coldest is picked; if it was invalidated meanwhile, it goes, and its
 * slot is the caller's to free (*dead).
 * Return: its slot, and in *token which store of it this is; -1 if none
 * (or with *dead >= 0: the slot to free first; then pick again).
 */
long zswap_writeback_pick(struct zswap *z, void *page, uint64_t *token, long *dead)
{
	char buf[PAGE_SIZE];
	struct zs_ctx *c = NULL;
	struct zs_entry *e;
	uint32_t s, rotated;
	size_t len;
	bool same, raw;
	uint64_t fill;

	*dead = -1;
	if (needs_dctx(z) && !(c = ctx_get(z)))
		return -1;
again:
	pthread_mutex_lock(&z->lock);
	/* The clock: an entry loaded since it was last passed goes to the hot
	 * end (up to ZS_ROTATE_MAX a pick, then the coldest is taken). */
	for (s = z->tail, rotated = 0; s;) {
		uint32_t prev = z->e[s - 1].prev;

		e = &z->e[s - 1];
		if (!(e->flags & (ZS_WRITEBACK | ZS_DEAD | ZS_BAD))) {
			if (!atomic_exchange_explicit(&e->ref, 0, memory_order_relaxed) ||
			    rotated == ZS_ROTATE_MAX)
				break;
			lru_del(z, s - 1);
			lru_add(z, s - 1);
			rotated++;
		}
		s = prev;
	}
	atomic_fetch_add_explicit(&z->st.rotated, rotated, memory_order_relaxed);
	if (!s) {
		pthread_mutex_unlock(&z->lock);
		if (c)
			ctx_put(z, c);
		return -1;
	}
	e = &z->e[s - 1];
	entry_flags(e, ZS_WRITEBACK, 0);
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
		if (e->flags & ZS_DEAD) {
			entry_flags(e, 0, ZS_WRITEBACK);
			entry_drop(z, s - 1);
			*dead = (long)(s - 1);
		} else {
			entry_flags(e, ZS_BAD, ZS_WRITEBACK);
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
	entry_flags(e, 0, ZS_WRITEBACK);
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

	return gain >= ZS_COMPACT_MIN_SLABS * (uint64_t)z->pool.slab_size &&
	       gain > zswap_pool_bytes(z) / 100 * ZS_COMPACT_GAIN_PCT;
}

/* zp_move_fn: re-point slot owner's entry if it holds handle.
 * Context: z->lock held (zswap_compact()), and a class lock. */
static bool entry_move(void *arg, uint32_t owner, uint32_t handle, uint32_t new_handle)
{
	struct zswap *z = arg;
	struct zs_entry *e;

	if (owner >= atomic_load_explicit(&z->e_mapped, memory_order_relaxed))
		return false;
	e = &z->e[owner];
	/* A store's object is the entry's only once published under
	 * z->lock; until then (or after its entry went) it is not. */
	if ((e->flags & (ZS_PRESENT | ZS_SAME)) != ZS_PRESENT || e->handle != handle)
		return false;
	if (new_handle == ZP_NONE)
		return true;
	/* The object is at new_handle already; a load that read the old
	 * handle reads again (its object goes after this). */
	entry_change_begin(e);
	e->handle = new_handle;
	entry_change_end(e);
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
