// SPDX-License-Identifier: MIT
/*
 * The compressed tier of a space (see tier.h): zswap.c's pages, offered
 * every eviction, asked on every read, and written back to the store by a
 * worker when the pool fills.
 */
#include "tier.h"

#include <sys/mman.h>

#include "options.h"
#include "space.h"
#include "stats.h"
#include "store.h"

/* The worker writes back while the pool is over this share of its size;
 * zswap_store() refuses pages over ZS_ACCEPT_PCT (95 %).  Late, as the
 * kernel's zswap writes back only when its pool is full (or under memory
 * pressure): every page written back is a disk read when it comes back. */
#define WB_LOW_PCT 90
/* And it is kicked when a store finds the pool over this share. */
#define WB_KICK_PCT 93
#define WB_PERIOD_MS 50

static bool over_pct(struct tier *t, unsigned int pct)
{
	return zswap_pool_bytes(&t->z) > t->max_bytes / 100 * pct;
}

/* Pages of memory the pool holds: counted against the budget. */
long tier_pages(struct fl_space *sp)
{
	return sp->tier ? (long)((zswap_pool_bytes(&sp->tier->z) + PAGE_SIZE - 1) >> PAGE_SHIFT)
			: 0;
}

/*
 * Keep page, evicted to slot, compressed (or as it is, zswap.h).  Return:
 * true if the tier took it (the slot's store bytes stay unused), false if
 * it goes to the store.
 * Context: any, also the SIGBUS handler (direct reclaim); no ptl held.
 */
bool tier_store(struct fl_space *sp, uint32_t slot, const void *page)
{
	struct tier *t = sp->tier;
	int ret;

	if (!t)
		return false;
	ret = zswap_store(&t->z, slot, page);
	if (over_pct(t, WB_KICK_PCT))
		worker_kick(&t->wb_worker);
	return !ret;
}

/*
 * The page of slot, if the tier has it, decompressed (or copied) into
 * page: no I/O.
 * Return: 0 (a hit), -ENOENT (read it from the store), -EBADMSG (it does
 * not decompress: the page is lost, as for a failed read).
 * Context: any, also the SIGBUS handler.
 */
int tier_load(struct fl_space *sp, uint32_t slot, void *page)
{
	struct tier *t = sp->tier;
	uint64_t t0;
	int ret;

	if (!t)
		return -ENOENT;
	t0 = fl_now_ns();
	ret = zswap_load(&t->z, slot, page);
	if (!ret)
		fl_hist_record(&t->load_ns, fl_now_ns() - t0);
	return ret;
}

/* swap_dev.slot_freeing: the slot's compressed copy goes; true if it is
 * being written back (the slot is freed when that write is over). */
static bool tier_slot_freeing(void *arg, uint32_t slot)
{
	struct tier *t = arg;

	return zswap_invalidate(&t->z, slot);
}

static struct tier_wb *wb_get(struct tier *t)
{
	struct tier_wb *w;

	pthread_mutex_lock(&t->wb_lock);
	w = t->wb_free;
	if (w) {
		t->wb_free = w->next_free;
		t->wb_out++;
	}
	pthread_mutex_unlock(&t->wb_lock);
	return w;
}

static void wb_put(struct tier *t, struct tier_wb *w)
{
	pthread_mutex_lock(&t->wb_lock);
	w->next_free = t->wb_free;
	t->wb_free = w;
	t->wb_out--;
	pthread_mutex_unlock(&t->wb_lock);
}

/*
 * A writeback's write is over: written, the compressed copy goes (the
 * store has the page now); failed, it stays, and the worker stops for this
 * round.  A slot freed meanwhile is freed now.  Context: the completion
 * thread.
 */
static void wb_done(struct swap_io *io, int res)
{
	struct tier_wb *w = (struct tier_wb *)io;
	struct tier *t = w->t;
	struct fl_space *sp = t->sp;

	if (res) {
		atomic_fetch_add(&t->wb_errors, 1);
		if (sp->cfg.verbose)
			fl_log("zswap writeback of slot %u failed: %s; the page stays compressed",
			       w->slot, strerror(-res));
	}
	if (zswap_writeback_done(&t->z, w->slot, w->token, !res))
		swap_slot_free_now(&sp->dev, w->slot);
	wb_put(t, w);
	if (!res && over_pct(t, WB_LOW_PCT))
		worker_kick(&t->wb_worker);
}

/*
 * The worker's writeback (fl-zswap, kicked by stores and every WB_PERIOD_MS):
 * write back the coldest pages while the pool is over WB_LOW_PCT, at most
 * TIER_WB_BUFS in flight.  Each is decompressed by zswap_writeback_pick(),
 * then sealed for its slot and the address it was noted for at eviction
 * (or moved to by fl_mremap() since), and written.  A failed write ends the round (a failing store
 * is not hammered: the next round tries again).
 */
static void wb_writeback(struct tier *t)
{
	struct fl_space *sp = t->sp;
	uint64_t errors = atomic_load(&t->wb_errors);

	while (over_pct(t, WB_LOW_PCT) && !atomic_load(&t->wb_worker.stop) &&
	       atomic_load(&t->wb_errors) == errors) {
		struct tier_wb *w = wb_get(t);
		long slot, dead;

		if (!w)
			return; /* completions kick the worker again */
		slot = zswap_writeback_pick(&t->z, w->page, &w->token, &dead);
		if (slot < 0) {
			wb_put(t, w);
			if (dead < 0)
				return;
			/* A page that did not decompress, freed meanwhile. */
			swap_slot_free_now(&sp->dev, (uint32_t)dead);
			continue;
		}
		w->slot = (uint32_t)slot;
		w->io = (struct swap_io){
			.slot = w->slot,
			.write = true,
			.buf = (void *)store_seal(&sp->dev.store, w->slot, STORE_ADDR_KEEP, w->page,
						  w->bounce),
			.done = wb_done,
		};
		int ret = swap_submit(&sp->dev, &w->io);
		if (ret)
			wb_done(&w->io, ret);
	}
}

/*
 * The worker's round: first compact the pool if it is fragmented (what
 * compaction gives back need not be written back), then write back.
 */
static void wb_round(void *arg)
{
	struct tier *t = arg;

	if (zswap_needs_compaction(&t->z))
		zswap_compact(&t->z);
	wb_writeback(t);
}

_Static_assert(ZS_LZ4 == (int)FL_ZSWAP_LZ4 && ZS_ZSTD == (int)FL_ZSWAP_ZSTD &&
		       ZS_LZO == (int)FL_ZSWAP_LZO,
	       "FAULTLINE_ZSWAP's values are the tier's algorithms");

/* Context: space creation, after swap_init().  Return: 0 or a negative
 * errno (-EINVAL: zswap_max not below mem_limit). */
int tier_init(struct fl_space *sp)
{
	size_t max = sp->cfg.zswap_max ? sp->cfg.zswap_max : sp->cfg.mem_limit / 5;
	size_t bufs = (size_t)TIER_WB_BUFS * PAGE_SIZE * 2;
	struct tier *t;
	int ret;

	if (!sp->swap_on || sp->cfg.zswap == FL_ZSWAP_OFF)
		return 0;
	if (max >= sp->cfg.mem_limit || max < 16 * ZP_SLAB_MIN) {
		fl_log("FAULTLINE_ZSWAP_MAX (%zu bytes) must be at least %lu bytes and below "
		       "FAULTLINE_MEM_LIMIT (%zu bytes): the space is not created",
		       max, 16 * ZP_SLAB_MIN, sp->cfg.mem_limit);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->sp = sp;
	t->max_bytes = max;
	pthread_mutex_init(&t->wb_lock, NULL);
	t->wb_worker.fd = -1;
	sp->tier = t;
	ret = zswap_init(&t->z, (enum zs_algo)sp->cfg.zswap, swapdev_max_slots(&sp->dev), max);
	t->z.keep_raw = sp->cfg.zswap_keep_incompressible;
	if (ret) {
		t->z.e = NULL;
		fl_log("cannot set up the compressed tier (%s): %s",
		       zswap_algo_name((int)sp->cfg.zswap), strerror(-ret));
		return ret;
	}
	t->wb_mem = mmap(NULL, bufs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->wb_mem == MAP_FAILED) {
		t->wb_mem = NULL;
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < TIER_WB_BUFS; i++) {
		struct tier_wb *w = &t->wb[i];
		w->t = t;
		w->page = (char *)t->wb_mem + (size_t)i * 2 * PAGE_SIZE;
		w->bounce = (char *)w->page + PAGE_SIZE;
		w->next_free = t->wb_free;
		t->wb_free = w;
	}
	/* Set before any slot is freed: from now on a free asks the tier. */
	sp->dev.slot_freeing_arg = t;
	sp->dev.slot_freeing = tier_slot_freeing;
	fl_dbg(sp, "compressed tier: %s, up to %zu bytes of the budget",
	       zswap_algo_name((int)sp->cfg.zswap), max);
	return worker_start(&t->wb_worker, "fl-zswap", wb_round, t, WB_PERIOD_MS);
}

/* Stop writing back.  Context: before the store closes (which waits for the
 * writebacks in flight).  Idempotent. */
void tier_stop(struct fl_space *sp)
{
	if (sp->tier)
		worker_halt(&sp->tier->wb_worker);
}

/* Context: the store is closed: no I/O in flight, no slot freed any more. */
void tier_destroy(struct fl_space *sp)
{
	struct tier *t = sp->tier;

	if (!t)
		return;
	FL_BUG_ON(t->wb_out);
	/* Now that no writeback completes any more (wb_done() kicks it). */
	worker_stop(&t->wb_worker);
	if (t->z.e)
		zswap_destroy(&t->z);
	if (t->wb_mem)
		munmap(t->wb_mem, (size_t)TIER_WB_BUFS * PAGE_SIZE * 2);
	pthread_mutex_destroy(&t->wb_lock);
	free(t);
	sp->tier = NULL;
}
