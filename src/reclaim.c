// SPDX-License-Identifier: MIT
/*
 * Reclaim: keep a space's memory (present pages plus frames holding a page)
 * under its budget.
 *
 * Victims: a CLOCK (second chance) over the page-table chunks.  User space
 * cannot see the accessed bits of the page table, so a page's reference bit
 * (PTE_REF) is set when a fault installs it and cleared when the hand passes;
 * a page not faulted on since the last pass is a victim.  Alone, that is
 * FIFO with one pass of grace; what user space can see is a refault: each
 * swap entry carries the eviction count when its page left, and a page that
 * comes back within fewer evictions than the budget holds was evicted too
 * early (the kernel's workingset refault distance), so it gets two more
 * passes (PTE_HOT).  tools/lrusim.c measures this against exact LRU.
 *
 * Eviction of a batch (the victims of one chunk, within one VMA):
 *   the VMA is read-locked (trylock) so that its layout cannot change, and
 *   the chunk's ptl is held throughout, so that a fault on a victim waits
 *   (the migration-entry case: briefly, holding its own lock);
 *   dirty victims are write-protected (one ioctl per run) so a store traps,
 *   copied into frames, checked for all-zero (dropped without I/O), given
 *   slots (consecutive: sequential write-out), zapped (MADV_DONTNEED, the
 *   victims of up to sixteen chunks, or 128 pages, in one process_madvise
 *   call: one TLB shootdown for them all, see struct zap_batch), and written
 *   asynchronously; clean victims (installed from a valid swap copy,
 *   write-protected since) are zapped without a write.
 * A fault that meets the page before its write finishes finds it in the
 * swap cache (its frame) and needs no I/O.
 *
 * Background: a reclaimer thread keeps wmark_high pages free, woken when the
 * free pages fall below wmark_low.  Direct: a fault that finds no room evicts
 * before it installs.  Evictors: kswapd, MADV_PAGEOUT and a direct reclaim
 * each hold reclaim_lock and evict through its batch (sp->zap); a direct
 * reclaim that finds the lock taken evicts beside the holder through a spare
 * batch of its own (zap_spare_get()), and waits for the lock only when
 * every spare is in use.  Evictors meet only at chunks, under their ptls,
 * and at the clock's hand, under clock_lock.
 */
#include "reclaim.h"

#include <sys/mman.h>
#include <sys/uio.h>

#include "pgtable.h"
#include "space.h"
#include "writeback.h"
#include "stats.h"
#include "swap.h"
#include "uffd.h"
#include "vma.h"

#define BATCH PT_CHUNK_PAGES

void reclaim_chunk_added(struct fl_space *sp, struct pt_chunk *c)
{
	pthread_mutex_lock(&sp->clock_lock);
	cds_list_add_tail(&c->lru, &sp->lru);
	pthread_mutex_unlock(&sp->clock_lock);
}

/* Context: the chunk is being freed (after a grace period). */
void reclaim_chunk_removed(struct fl_space *sp, struct pt_chunk *c)
{
	pthread_mutex_lock(&sp->clock_lock);
	if (sp->hand == &c->lru)
		sp->hand = c->lru.next;
	cds_list_del(&c->lru);
	pthread_mutex_unlock(&sp->clock_lock);
}

/*
 * Read the pages of mask (bits of the chunk at base) into their frames
 * fr[i]->buf for eviction, through /proc/self/mem, one system call per run
 * of consecutive pages.  Never a plain load: this runs under the chunk's
 * ptl, and a page the table says present may be missing in the kernel (a
 * private copy of a file page whose cache page was punched out before the
 * copy was made, a page dropped by the libc madvise): a load would fault
 * into the userfaultfd, whose handler needs that ptl.  The kernel's read of
 * /proc/self/mem cannot wait for a userfaultfd (it fails the page
 * instead), reads PROT_NONE and write-only pages too, and is ordered
 * against the application's stores by the kernel (UFFDIO_WRITEPROTECT
 * returns after the TLB flush: earlier stores are visible, later ones
 * trap).  Return: the pages that could not be read.
 */
static uint64_t read_app_pages(struct fl_space *sp, unsigned long base, uint64_t mask,
			       struct frame **fr)
{
	struct iovec iov[BATCH];
	uint64_t lost = 0;

	while (mask) {
		unsigned int i = (unsigned int)__builtin_ctzll(mask), n = 0;
		ssize_t got;

		while (i + n < BATCH && (mask & (1ULL << (i + n)))) {
			iov[n] = (struct iovec){fr[i + n]->buf, PAGE_SIZE};
			n++;
		}
		do
			got = preadv(sp->mem_fd, iov, (int)n,
				     (off_t)(base + (unsigned long)i * PAGE_SIZE));
		while (got < 0 && errno == EINTR);
		unsigned int done = got > 0 ? (unsigned int)((size_t)got / PAGE_SIZE) : 0;
		/* Pages [i, i + done) are read; the next one is not (a short
		 * read stops at the first page that fails). */
		mask &= ~((done >= 64 ? ~0ULL : (1ULL << done) - 1) << i);
		if (done < n) {
			lost |= 1ULL << (i + done);
			mask &= ~(1ULL << (i + done));
		}
	}
	return lost;
}

static bool all_zero(const void *buf)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Write-protect the runs of pages of mask (bit i: base + i pages), or lift
 * the protection.  Return: 0 or the first negative errno. */
static int writeprotect_runs(struct fl_space *sp, unsigned long base, uint64_t mask, bool wp)
{
	unsigned int s, n;

	for_each_bit_run(mask, s, n)
	{
		unsigned long a = base + (unsigned long)s * PAGE_SIZE;
		int ret = uffd_writeprotect(sp, a, (unsigned long)n * PAGE_SIZE, wp);
		if (ret) {
			fl_dbg(sp, "UFFDIO_WRITEPROTECT %#lx+%u pages: %s", a, n, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int zap_one(unsigned long s, size_t len)
{
	return madvise((void *)s, len, MADV_DONTNEED) ? -errno : 0;
}

#ifndef PIDFD_SELF
#define PIDFD_SELF -10000 /* Linux 6.15: the calling thread group */
#endif

/* process_madvise(PIDFD_SELF, .., MADV_DONTNEED) works here: 1 yes, -1 no,
 * 0 not tried yet.  (Linux 6.13 allows every advice on oneself; 6.16
 * flushes the TLB once per call instead of once per range.) */
static _Atomic int pm_dontneed;

/* Append the runs of set bits of mask (pages from base) to iov[*nr..]. */
static void add_runs(struct iovec *iov, size_t *nr, size_t *total, uint64_t mask,
		     unsigned long base)
{
	unsigned int s, n;

	for_each_bit_run(mask, s, n)
	{
		iov[(*nr)++] = (struct iovec){(void *)(base + (unsigned long)s * PAGE_SIZE),
					      (size_t)n * PAGE_SIZE};
		*total += (size_t)n * PAGE_SIZE;
	}
}

/*
 * Zap the ranges iov[0..nr) (total bytes), MADV_DONTNEED: all in one
 * process_madvise() call where the kernel takes it, so that the TLB
 * shootdown (an IPI to every other CPU running the space's threads) is paid
 * once per batch, not once per run; one madvise() per range otherwise.
 * Return: 0 or a negative errno.  Async-signal-safe (direct reclaim).
 */
static int zap_iov(struct fl_space *sp, const struct iovec *iov, size_t nr, size_t total)
{
	if (atomic_load_explicit(&pm_dontneed, memory_order_relaxed) < 0) {
		for (size_t i = 0; i < nr; i++) {
			int ret = zap_one((unsigned long)iov[i].iov_base, iov[i].iov_len);
			if (ret)
				return ret;
		}
		return 0;
	}
	if (nr == 1)
		return zap_one((unsigned long)iov[0].iov_base, iov[0].iov_len);
	long done = syscall(SYS_process_madvise, PIDFD_SELF, iov, nr, MADV_DONTNEED, 0);
	if (done == (long)total) {
		atomic_store_explicit(&pm_dontneed, 1, memory_order_relaxed);
		return 0;
	}
	if (done < 0 && atomic_load_explicit(&pm_dontneed, memory_order_relaxed) == 0 &&
	    (errno == EINVAL || errno == EBADF || errno == ENOSYS || errno == EPERM ||
	     errno == ESRCH))
		atomic_store_explicit(&pm_dontneed, -1, memory_order_relaxed); /* not here */
	/* Not taken, or partly: the runs it did not finish, one by one
	 * (MADV_DONTNEED again on a zapped range is harmless). */
	size_t off = done > 0 ? (size_t)done : 0;
	for (size_t i = 0; i < nr; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		off = 0;
		int ret = zap_one((unsigned long)iov[i].iov_base, iov[i].iov_len);
		if (ret)
			return ret;
	}
	return 0;
}

static void batch_done(struct swap_io *io, int res)
{
	struct io_batch *b = (struct io_batch *)io;
	struct fl_space *sp = b->sp;

	for (unsigned int k = 0; k < b->n; k++)
		swap_write_done(&b->f[k]->io, res);
	batch_put(sp, b);
}

/*
 * Write out the frames of an eviction: each page is offered to the
 * compressed tier first (swap_tier_write(): swap_writepage() trying
 * zswap_store()), and what it takes is done (posted to the reaper in one
 * submission); each run of consecutive slots of the rest as one vectored
 * write to the store (eviction allots consecutive slots), one page at a
 * time when no batch is free.  Each of those is sealed first
 * (swap_seal_write()): what is written is f->io.buf.
 * Context: no ptl held (compression takes a while); the evictor's, after
 * its batch's zap.
 */
static void submit_writes(struct fl_space *sp, struct frame **fr, uint64_t dirty)
{
	struct swap_posts posts = {0};

	for (unsigned int i = 0; i < BATCH; i++)
		if (fr[i] && (dirty & (1ULL << i)) && swap_tier_write(sp, fr[i], &posts))
			dirty &= ~(1ULL << i);
	swapdev_post_flush(&sp->dev, &posts);
	for (unsigned int i = 0; i < BATCH; i++)
		if (fr[i] && (dirty & (1ULL << i)))
			swap_seal_write(sp, fr[i]);
	for (unsigned int i = 0; i < BATCH;) {
		if (!fr[i] || !(dirty & (1ULL << i))) {
			i++;
			continue;
		}
		unsigned int j = i + 1;
		while (j < BATCH && fr[j] && (dirty & (1ULL << j)) &&
		       fr[j]->slot == fr[j - 1]->slot + 1)
			j++;
		struct io_batch *b = j - i > 1 ? batch_get(sp) : NULL;
		if (b) {
			b->n = j - i;
			for (unsigned int k = 0; k < b->n; k++) {
				b->f[k] = fr[i + k];
				b->iov[k] = (struct iovec){fr[i + k]->io.buf, PAGE_SIZE};
			}
			b->io = (struct swap_io){.slot = fr[i]->slot,
						 .write = true,
						 .iov = b->iov,
						 .nr = b->n,
						 .done = batch_done};
			swap_submit(&sp->dev, &b->io);
		} else {
			for (unsigned int k = i; k < j; k++)
				swap_submit(&sp->dev, &fr[k]->io);
		}
		i = j;
	}
}

/*
 * Evictions waiting for their zap: one batch per evictor (sp->zap under
 * reclaim_lock, or a spare its direct reclaim claimed), touched by no one
 * else.  The victims of up to ZAP_CHUNKS chunks, or 2 * BATCH pages,
 * are zapped in one call, so one TLB shootdown serves them all (under
 * random access a chunk has few victims; with four chunks a batch the IPIs
 * of the shootdowns cost random swap-in about 2 us of CPU a miss more on
 * two vCPUs, with 32 chunks no less than with 16).  Each entry keeps what
 * evict_chunk() holds for it until its zap is done: its chunk's ptl (a
 * fault on a victim waits, as for one chunk), its VMA's read lock (the
 * layout cannot change) and an RCU read-side section (the chunk stays).
 * The first ptl of a batch is taken with pt_lock(), the others only with a
 * trylock: a chunk whose ptl is taken flushes the batch first.  So no ptl
 * is ever waited for with another held, whatever the other evictors hold.
 */
#define ZAP_CHUNKS RECLAIM_ZAP_CHUNKS

/* The victims of a chunk, by kind (bit i: page c->base + i). */
struct victims {
	uint64_t clean, dirty, zero;
};

struct zap_entry {
	struct pt_chunk *c;
	struct vma *vma;
	struct victims v;
	struct frame *fr[BATCH]; /* dirty: the copies to write */
};

struct zap_batch {
	unsigned int n, pages;
	/* An eviction found no free frame for a dirty victim: it left it
	 * resident (MADV_PAGEOUT waits for frames and goes again).  Only
	 * evict_range() reads it, on sp->zap, and clears it before each
	 * chunk; on the other batches it is set and never read. */
	bool out_of_frames;
	struct zap_entry e[ZAP_CHUNKS];
	struct iovec iov[ZAP_CHUNKS * (BATCH / 2 + 1)]; /* the runs, for the zap */
};

/* The victims of every kind. */
static uint64_t victims_all(const struct victims *v)
{
	return v->clean | v->dirty | v->zero;
}

/*
 * The end of an eviction, after its zap: swap entries (clean), nothing
 * (zero) or frames under write-back (dirty) where the pages were; the ptl
 * is released.  The writes go out later, once the batch holds no ptl
 * (zap_flush()).
 * Context: e's ptl held (released here); e is in the caller's batch.
 */
static void evict_finish(struct fl_space *sp, struct zap_entry *e)
{
	struct pt_chunk *c = e->c;
	unsigned long base = c->base;
	uint64_t zap = victims_all(&e->v);

	for (unsigned int i = 0; i < BATCH; i++) {
		uint64_t bit = 1ULL << i;
		if (!(zap & bit))
			continue;
		uint64_t pte = READ_ONCE(c->pte[i]);
		uint64_t stamp = mk_stamp(atomic_fetch_add(&sp->evictions, 1));
		if (e->v.clean & bit) {
			WRITE_ONCE(c->pte[i], mk_pte(PTE_SWAP, stamp, pte_value(pte)));
			count_event(sp, clean_drops);
		} else if (e->v.zero & bit) {
			WRITE_ONCE(c->pte[i], PTE_NONE);
			count_event(sp, zero_drops);
		} else {
			struct frame *f = e->fr[i];
			f->addr = base + (unsigned long)i * PAGE_SIZE;
			f->chunk = c;
			f->flags = FRAME_UPTODATE | FRAME_WRITEBACK;
			f->stamp = pte_stamp(stamp);
			f->owns_slot = true;
			f->io = (struct swap_io){.slot = f->slot,
						 .write = true,
						 .buf = f->buf,
						 .done = swap_write_done};
			WRITE_ONCE(c->pte[i], mk_pte(PTE_FRAME, 0, frame_index(sp, f)));
		}
	}
	long n = __builtin_popcountll(zap);
	c->nr_present -= (unsigned int)n;
	atomic_fetch_sub(&sp->resident_pages, n);
	pt_unlock(c);
}

/*
 * Take victim i of e out of its eviction: its page stays as the entry says
 * (present), its copy and slot go.  Context: e's ptl held.
 */
static void evict_cancel(struct fl_space *sp, struct zap_entry *e, unsigned int i)
{
	uint64_t bit = 1ULL << i;

	if (e->fr[i]) {
		e->fr[i]->owns_slot = true; /* its slot goes with it */
		frame_free(sp, e->fr[i]);
		e->fr[i] = NULL;
	}
	e->v.clean &= ~bit;
	e->v.dirty &= ~bit;
	e->v.zero &= ~bit;
}

/*
 * The slow zap of one entry's victims, when the batch's zap failed: each
 * page on its own.  A page that is no longer a registered mapping (the libc
 * munmap of its region, racing with this eviction) is not evicted, and its
 * range is marked stale; nothing is zapped there.
 * Context: e's ptl held; e is in the caller's batch.
 */
static void zap_entry_pages(struct fl_space *sp, struct zap_entry *e)
{
	uint64_t mask = victims_all(&e->v);
	unsigned int i, n;

	for_each_bit_run(mask, i, n)
	{
		for (unsigned int j = i; j < i + n; j++) {
			unsigned long a = e->c->base + (unsigned long)j * PAGE_SIZE;

			if (!e->vma->file && uffd_unregistered_bytes(sp, a, a + PAGE_SIZE)) {
				space_mark_stale(sp, a, a + PAGE_SIZE);
				evict_cancel(sp, e, j);
			} else if (zap_one(a, PAGE_SIZE)) {
				evict_cancel(sp, e, j);
			}
		}
	}
}

/*
 * Zap every victim of batch zb in one call, then finish each eviction and
 * let go of what it held.  Context: the batch is the caller's (see struct
 * zap_batch); the entries' locks, released here.
 */
static void zap_flush(struct fl_space *sp, struct zap_batch *zb)
{
	size_t nr = 0, total = 0;

	if (!zb->n)
		return;
	for (unsigned int k = 0; k < zb->n; k++)
		add_runs(zb->iov, &nr, &total, victims_all(&zb->e[k].v), zb->e[k].c->base);
	if (zap_iov(sp, zb->iov, nr, total)) {
		/* A run is not mapped any more: unmapped behind faultline's
		 * back since evict_chunk() probed it.  Page by page, then. */
		for (unsigned int k = 0; k < zb->n; k++)
			zap_entry_pages(sp, &zb->e[k]);
	}
	for (unsigned int k = 0; k < zb->n; k++) {
		evict_finish(sp, &zb->e[k]);
		vma_end_read(zb->e[k].vma);
		fl_rcu_read_unlock();
	}
	/* The frames under writeback stay bound and are not freed before
	 * their writes complete: they need none of the locks let go above. */
	for (unsigned int k = 0; k < zb->n; k++)
		submit_writes(sp, zb->e[k].fr, zb->e[k].v.dirty);
	zb->n = zb->pages = 0;
}

/*
 * Queue the victims v of chunk c in vma on batch zb, in the entry whose
 * frames evict_chunk() has filled (zb->e[zb->n]); a full batch is zapped
 * now.  The batch keeps c's ptl, vma's read lock and an RCU read-side
 * section (c stays) until its zap.
 * Context: as evict_chunk(), with c's ptl held.  Return: how many victims.
 */
static long zap_batch_add(struct fl_space *sp, struct zap_batch *zb, struct vma *vma,
			  struct pt_chunk *c, struct victims v)
{
	struct zap_entry *e = &zb->e[zb->n++];
	long n = __builtin_popcountll(victims_all(&v));

	e->c = c;
	e->vma = vma;
	e->v = v;
	rcu_read_lock(); /* c stays until the flush */
	zb->pages += (unsigned int)n;
	if (zb->n == ZAP_CHUNKS || zb->pages >= 2 * BATCH)
		zap_flush(sp, zb);
	return n;
}

/* The pages of a chunk (bit i: base + i pages) in unregistered runs, each
 * run marked stale. */
struct stale_pages {
	struct fl_space *sp;
	unsigned long base;
	uint64_t mask;
};

static void stale_pages_add(unsigned long start, unsigned long end, void *arg)
{
	struct stale_pages *p = arg;

	space_mark_stale(p->sp, start, end);
	for (unsigned long a = start; a < end; a += PAGE_SIZE)
		p->mask |= 1ULL << ((a - p->base) >> PAGE_SHIFT);
}

static void stale_range_add(unsigned long start, unsigned long end, void *arg)
{
	space_mark_stale(arg, start, end);
}

/*
 * Evict the victims (bit i: page base + i) of chunk c inside vma: chosen,
 * copied and given slots now, zapped with batch zb (zap_flush()).
 * Context: vma read-locked; no ptl held, except those of the batch's
 * entries; the batch is the caller's (see struct zap_batch).  Return: pages
 * freed or to be freed by the batch's zap (present pages zapped,
 * swap-cache frames dropped); *kept: the batch took over vma's read lock
 * (the caller must not release it).
 */
static long evict_chunk(struct fl_space *sp, struct zap_batch *zb, struct vma *vma,
			struct pt_chunk *c, uint64_t want, bool force, bool *kept)
{
	struct zap_entry *e;
	struct frame **fr;
	uint32_t slots[BATCH];
	uint64_t clean = 0, dirty = 0, zero = 0, drop = 0, zeropage = 0;
	unsigned long base = c->base;
	unsigned int nslots = 0, ndirty = 0, k;
	long freed = 0;

	*kept = false;
	if (!zb->n || !pt_trylock(c)) {
		zap_flush(sp, zb); /* no ptl waited for with another held */
		pt_lock(c);
	}
	e = &zb->e[zb->n];
	fr = e->fr;
	memset(fr, 0, sizeof(e->fr));
	for (unsigned int i = 0; i < BATCH; i++) {
		if (!(want & (1ULL << i)))
			continue;
		uint64_t pte = READ_ONCE(c->pte[i]);
		if (pte_type(pte) == PTE_PRESENT && (force || !(pte & PTE_REF))) {
			if (pte & PTE_WP)
				clean |= 1ULL << i;
			else
				dirty |= 1ULL << i;
			if (pte & PTE_ZEROPAGE)
				zeropage |= 1ULL << i;
		} else if (pte_type(pte) == PTE_FRAME) {
			struct frame *f = frame_of(sp, pte);
			pthread_mutex_lock(&f->lock);
			if ((f->flags & FRAME_UPTODATE) &&
			    !(f->flags & (FRAME_LOCKED | FRAME_WRITEBACK | FRAME_WERROR)) &&
			    !f->pins && !f->waiters && f->slot != SWAP_NO_SLOT) {
				/* A swap-cache page: its copy is valid; let it go. */
				if ((f->flags & (FRAME_FROM_READ | FRAME_USED)) == FRAME_FROM_READ)
					count_event(sp, reads_wasted);
				if ((f->flags & (FRAME_PREFETCH | FRAME_USED)) == FRAME_PREFETCH)
					swap_prefetch_wasted(sp, f);
				WRITE_ONCE(c->pte[i],
					   mk_pte(PTE_SWAP,
						  mk_stamp(atomic_fetch_add(&sp->evictions, 1)),
						  f->slot));
				f->owns_slot = false;
				drop |= 1ULL << i;
			}
			pthread_mutex_unlock(&f->lock);
			if (drop & (1ULL << i)) {
				frame_detach(sp, f);
				freed++;
			}
		}
	}
	/*
	 * A full store takes no write: until a slot is freed, dirty pages stay
	 * (over the budget) instead of being write-protected, copied and put
	 * back on every pass.  Clean pages and swap-cache frames still go, and
	 * pages mapped as the zero page, which may prove to be zero still.
	 */
	if (dirty && swap_store_full(&sp->dev))
		dirty &= zeropage;
	/*
	 * What is still the space's registered mapping: a region unmapped
	 * behind faultline's back (the libc munmap), and the addresses
	 * perhaps someone else's now, must be neither copied (a fault in
	 * faultline) nor zapped (someone else's data).  One ioctl normally.
	 */
	/* (A file mapping is not probed: the probe, UFFDIO_CONTINUE, would
	 * map its cache pages.  Stale file regions are not detected.) */
	if ((clean | dirty) && !vma->file) {
		uint64_t v = clean | dirty;
		unsigned long first = base + (unsigned long)__builtin_ctzll(v) * PAGE_SIZE;
		unsigned long last = base + (64UL - (unsigned long)__builtin_clzll(v)) * PAGE_SIZE;
		struct stale_pages lost = {.sp = sp, .base = base};

		if (uffd_for_each_unregistered(sp, first, last, stale_pages_add, &lost)) {
			clean &= ~lost.mask;
			dirty &= ~lost.mask;
			/* The rest of the VMA too, in one note: a region is
			 * usually unmapped whole. */
			uffd_for_each_unregistered(sp, vma->vm_start, vma->vm_end, stale_range_add,
						   sp);
		}
	}
	/* Dirty pages: stores must trap while we copy. */
	if (dirty && (vma->prot & PROT_WRITE) && writeprotect_runs(sp, base, dirty, true))
		dirty = 0;
	for (unsigned int i = 0; i < BATCH && dirty; i++) {
		if (!(dirty & (1ULL << i)))
			continue;
		struct frame *f = frame_alloc(sp);
		if (!f) {
			/* Out of frames: the rest stays, writable again. */
			uint64_t rest = dirty & ~((1ULL << i) - 1);
			zb->out_of_frames = true;
			if (vma->prot & PROT_WRITE)
				writeprotect_runs(sp, base, rest, false);
			dirty &= ~rest;
			break;
		}
		fr[i] = f;
	}
	uint64_t lost = read_app_pages(sp, base, dirty, fr);
	for (unsigned int i = 0; i < BATCH && dirty; i++) {
		unsigned long page = base + (unsigned long)i * PAGE_SIZE;

		if (!(dirty & (1ULL << i)))
			continue;
		if (lost & (1ULL << i)) {
			/* Unmapped since the probe, or dropped by the kernel:
			 * it stays as it is (a later access finds out). */
			frame_free(sp, fr[i]);
			fr[i] = NULL;
			dirty &= ~(1ULL << i);
			if (!vma->file && uffd_unregistered_bytes(sp, page, page + PAGE_SIZE))
				space_mark_stale(sp, page, page + PAGE_SIZE);
			else if (vma->prot & PROT_WRITE)
				uffd_writeprotect(sp, page, PAGE_SIZE, false);
			continue;
		}
		/* A private copy of a file page is not what an empty entry
		 * reads back (that is the file's page): it is written. */
		if (!vma->file && all_zero(fr[i]->buf)) {
			frame_free(sp, fr[i]);
			fr[i] = NULL;
			dirty &= ~(1ULL << i);
			zero |= 1ULL << i;
			continue;
		}
		ndirty++;
	}
	if (ndirty) {
		nslots = swap_slots_alloc(&sp->dev, ndirty, slots);
		if (nslots < ndirty)
			fl_dbg(sp, "the swap store is full: %u pages stay resident",
			       ndirty - nslots);
	}
	/* Those without a slot stay: lift their protection, free frames. */
	k = 0;
	for (unsigned int i = 0; i < BATCH; i++) {
		if (!fr[i])
			continue;
		if (k < nslots) {
			fr[i]->slot = slots[k++];
			continue;
		}
		dirty &= ~(1ULL << i);
		frame_free(sp, fr[i]);
		fr[i] = NULL;
		if (vma->prot & PROT_WRITE)
			uffd_writeprotect(sp, base + (unsigned long)i * PAGE_SIZE, PAGE_SIZE,
					  false);
	}
	if (!(clean | dirty | zero)) {
		pt_unlock(c);
		return freed;
	}
	struct victims v = {.clean = clean, .dirty = dirty, .zero = zero};
	*kept = true;
	return freed + zap_batch_add(sp, zb, vma, c, v);
}

/*
 * Look at one chunk under the hand: give referenced pages their second
 * chance, evict the others (or, with force, all present pages in range)
 * through batch zb.  Context: rcu_read_lock held (keeps c); no ptl but
 * those of zb's entries; the batch is the caller's.  With force it takes
 * c's ptl for its scan, after flushing zb if the trylock fails.
 */
static long shrink_chunk(struct fl_space *sp, struct zap_batch *zb, struct pt_chunk *c,
			 unsigned long start, unsigned long end, bool force)
{
	uint64_t cand = 0;
	long freed = 0;

	/* Not the space's mapping any more: left alone until it is dropped. */
	if (unlikely(space_stale_overlaps(sp, c->base, c->base + PT_CHUNK_SIZE)))
		return 0;
	/*
	 * MADV_PAGEOUT looks under the ptl.  In thread delivery the handler's
	 * install (UFFDIO_COPY, UFFDIO_ZEROPAGE) wakes the faulting thread
	 * before the handler writes the entry, its ptl held throughout: a
	 * program that touches a page and then pages it out could find it
	 * not present yet here and keep it.  Reclaim's scan stays unlocked: a
	 * page it misses waits for the next pass.
	 */
	if (force && (!zb->n || !pt_trylock(c))) {
		zap_flush(sp, zb); /* no ptl waited for with another held */
		pt_lock(c);
	}
	for (unsigned int i = 0; i < BATCH; i++) {
		unsigned long a = c->base + (unsigned long)i * PAGE_SIZE;
		if (a < start || a >= end)
			continue;
		uint64_t pte = READ_ONCE(c->pte[i]);
		if (pte_type(pte) == PTE_PRESENT) {
			if ((pte & PTE_REF) && !force) {
				/* Second chance.  A racing install may set it
				 * again: that only keeps a page longer. */
				atomic_fetch_and(&c->pte[i], ~PTE_REF);
				continue;
			}
			if ((pte & PTE_HOT_MASK) && !force) {
				/* A page that refaulted early: another pass. */
				uint64_t n = pte - (1ULL << PTE_HOT_SHIFT);
				atomic_compare_exchange_strong(&c->pte[i], &pte, n);
				continue;
			}
			cand |= 1ULL << i;
		} else if (pte_type(pte) == PTE_FRAME) {
			cand |= 1ULL << i;
		}
	}
	if (force)
		pt_unlock(c);
	while (cand) {
		unsigned long a = c->base + (unsigned long)__builtin_ctzll(cand) * PAGE_SIZE;
		struct vma *vma = vma_trylock_at(sp, a);
		uint64_t in = 0;
		for (unsigned int i = 0; i < BATCH; i++) {
			unsigned long p = c->base + (unsigned long)i * PAGE_SIZE;
			if ((cand & (1ULL << i)) &&
			    (!vma || (p >= vma->vm_start && p < vma->vm_end)))
				in |= 1ULL << i;
		}
		if (!in)
			in = cand & -cand;
		cand &= ~in;
		if (!vma)
			continue; /* its layout is changing: not now */
		bool kept;
		freed += evict_chunk(sp, zb, vma, c, in, force, &kept);
		if (!kept)
			vma_end_read(vma);
	}
	return freed;
}

/*
 * A spare batch for a direct reclaim that found reclaim_lock taken, so
 * that it evicts beside the holder instead of waiting for it (a holder
 * preempted on a busy CPU kept every fault over the budget waiting: up to
 * 44 ms at 8 threads on 2 vCPUs).  Async-signal-safe (the SIGBUS handler's
 * direct reclaim).  Return: it, or NULL if every spare is in use.
 */
static struct zap_batch *zap_spare_get(struct fl_space *sp)
{
	for (unsigned int i = 0; i < RECLAIM_ZAP_SPARES; i++)
		if (!atomic_exchange_explicit(&sp->zap_spare_busy[i], true, memory_order_acquire))
			return &sp->zap[1 + i];
	return NULL;
}

/* Context: zb came from zap_spare_get() and is flushed (empty). */
static void zap_spare_put(struct fl_space *sp, struct zap_batch *zb)
{
	FL_DEBUG_BUG_ON(zb->n);
	atomic_store_explicit(&sp->zap_spare_busy[zb - sp->zap - 1], false, memory_order_release);
}

/*
 * Free about want pages.  Context: no ptl, no VMA lock of the space except
 * the caller's own fault lock (direct reclaim), which is only ever read-held
 * here too.  Never sleeps on I/O.  Return: pages freed.
 */
long reclaim_pages(struct fl_space *sp, long want, bool direct)
{
	long freed = 0, scanned = 0, limit = 2 * atomic_load(&sp->nr_chunks) + 2;
	struct zap_batch *zb;
	bool beside = false;
	long fp, ap;

	if (!sp->swap_on)
		return 0;
	/*
	 * One budget for anonymous pages and the page cache: each gives its
	 * share of the pages wanted (the kernel balances its anon and file
	 * LRUs by their sizes too), and the cache gives what the anonymous
	 * clock could not.
	 */
	fp = atomic_load(&sp->file_pages);
	ap = atomic_load(&sp->resident_pages);
	if (fp > 0)
		freed += shrink_file_pages(sp, (want * fp + fp + ap) / (fp + ap + 1), direct);
	if (!direct) {
		pthread_mutex_lock(&sp->reclaim_lock);
		zb = sp->zap;
	} else if (!pthread_mutex_trylock(&sp->reclaim_lock)) {
		zb = sp->zap;
	} else if ((zb = zap_spare_get(sp))) {
		beside = true;
	} else {
		/* kswapd lets a waiting fault in between its batches (below),
		 * and what it freed meanwhile is not wanted again. */
		long free0 = sp->limit_pages - mem_used(sp), meanwhile;

		atomic_fetch_add(&sp->reclaim_waiters, 1);
		pthread_mutex_lock(&sp->reclaim_lock);
		atomic_fetch_sub(&sp->reclaim_waiters, 1);
		zb = sp->zap;
		meanwhile = sp->limit_pages - mem_used(sp) - free0;
		if (meanwhile > 0)
			want -= meanwhile;
	}
	long freed0 = freed;
	while (freed < want && scanned++ < limit) {
		struct pt_chunk *c = NULL;

		rcu_read_lock();
		pthread_mutex_lock(&sp->clock_lock);
		if (!cds_list_empty(&sp->lru)) {
			if (sp->hand == &sp->lru || !sp->hand)
				sp->hand = sp->lru.next;
			c = cds_list_entry(sp->hand, struct pt_chunk, lru);
			sp->hand = sp->hand->next;
		}
		pthread_mutex_unlock(&sp->clock_lock);
		if (c)
			freed += shrink_chunk(sp, zb, c, 0, ULONG_MAX, false);
		fl_rcu_read_unlock();
		if (!c)
			break;
		/* A fault waits to reclaim for itself: kswapd's round (up to
		 * the high mark: thousands of pages, each compressed when the
		 * tier takes it) would keep it waiting for all of them. */
		if (!direct && atomic_load_explicit(&sp->reclaim_waiters, memory_order_relaxed))
			break;
	}
	zap_flush(sp, zb);
	if (beside) {
		zap_spare_put(sp, zb);
		count_event_n(sp, reclaim_beside, freed - freed0);
	} else {
		pthread_mutex_unlock(&sp->reclaim_lock);
	}
	if (freed < want && atomic_load(&sp->file_pages))
		freed += shrink_file_pages(sp, want - freed, direct);
	if (direct)
		count_event_n(sp, reclaim_direct, freed);
	else
		count_event_n(sp, reclaim_background, freed);
	return freed;
}

/* MADV_PAGEOUT waits this long at most for a frame to come back. */
#define PAGEOUT_FRAME_WAIT_NS (10 * 1000000000ULL)

/*
 * Wait until a frame is free: the writes in flight complete (their frames
 * go back) without any lock of ours.  Context: no lock held.
 * Return: false if none came back in PAGEOUT_FRAME_WAIT_NS, or none will:
 * no I/O has been in flight for a while (the frames hold swap-cache pages
 * elsewhere; an I/O leaves the count just before its completion frees its
 * frame, hence the while).
 */
static bool wait_for_frame(struct fl_space *sp)
{
	uint64_t t0 = fl_now_ns(), idle_since = 0;

	while (atomic_load(&sp->frames_used) >= (long)sp->nr_frames) {
		uint64_t now = fl_now_ns();

		if (atomic_load(&sp->dev.inflight))
			idle_since = 0;
		else if (!idle_since)
			idle_since = now;
		if ((idle_since && now - idle_since > 5000000) || now - t0 > PAGEOUT_FRAME_WAIT_NS)
			return false;
		usleep(100);
	}
	return true;
}

/*
 * MADV_PAGEOUT: evict the present pages of [start, end) now, all of them,
 * as the kernel's does: a chunk whose dirty pages found no free frame (the
 * frames are all under writeback) is done again once its writes have given
 * frames back, with reclaim_lock let go meanwhile (kswapd and direct
 * reclaim go on).  Pages that cannot go stay, and nothing is said: those
 * of a full store, a VMA being changed, a page being faulted in.
 * Context: mmap_lock held for read.
 */
int evict_range(struct fl_space *sp, unsigned long start, unsigned long end)
{
	if (!sp->swap_on)
		return 0;
	pthread_mutex_lock(&sp->reclaim_lock);
	for (unsigned long b = start & PT_CHUNK_MASK; b < end; b += PT_CHUNK_SIZE) {
		rcu_read_lock();
		struct pt_chunk *c = pt_chunk_lookup(sp, b);
		sp->zap->out_of_frames = false;
		if (c)
			shrink_chunk(sp, sp->zap, c, start, end, true);
		fl_rcu_read_unlock();
		if (sp->zap->out_of_frames) {
			zap_flush(sp, sp->zap); /* its writes out: their frames come back */
			pthread_mutex_unlock(&sp->reclaim_lock);
			bool more = wait_for_frame(sp);
			pthread_mutex_lock(&sp->reclaim_lock);
			if (more)
				b -= PT_CHUNK_SIZE; /* this chunk again */
		}
	}
	zap_flush(sp, sp->zap);
	pthread_mutex_unlock(&sp->reclaim_lock);
	return 0;
}

static void kick_kswapd(struct fl_space *sp)
{
	worker_kick(&sp->kswapd);
}

void mem_reserve(struct fl_space *sp, unsigned long n)
{
	long used;

	if (!sp->swap_on)
		return;
	used = mem_used(sp) + (long)n;
	if (used > sp->limit_pages - sp->wmark_low)
		kick_kswapd(sp);
	/* The completion thread leaves it to kswapd: it must not block.  So
	 * does a fault while the store is full: the scan would find little to
	 * free and cost every fault its length (kswapd still takes the clean
	 * pages, backing off as below). */
	if (used > sp->limit_pages && !in_completion && !swap_store_full(&sp->dev))
		reclaim_pages(sp, used - sp->limit_pages + 16, true);
}

/* While the store is full, kswapd scans at most once per this: every fault
 * over the budget kicks it, and each scan would find nothing but clean
 * pages, so it would spin on a CPU the faults need. */
#define FULL_SCAN_NS (100 * 1000000ULL)

/* kswapd's round, when kicked and every 100 ms: up to the high mark. */
static void kswapd_round(void *arg)
{
	/* kswapd's own: one thread per space runs this. */
	static FL_TLS uint64_t full_scan_ns;
	struct fl_space *sp = arg;

	/* Ranges found stale by a fault or an eviction: out of the index, so
	 * that their pages stop counting against the budget. */
	if (unlikely(atomic_load_explicit(&sp->stale, memory_order_relaxed)))
		mm_drop_stale(sp);
	if (swap_store_full(&sp->dev)) {
		uint64_t now = fl_now_ns();
		if (now - full_scan_ns < FULL_SCAN_NS)
			return;
		full_scan_ns = now;
	}
	for (int rounds = 0; rounds < 64 && !atomic_load(&sp->kswapd.stop); rounds++) {
		long free_pages = sp->limit_pages - mem_used(sp);
		if (free_pages >= sp->wmark_high)
			break;
		if (!reclaim_pages(sp, sp->wmark_high - free_pages, false))
			break;
		/* It stopped for a waiting fault: the fault goes first (kswapd
		 * is kicked again by the next fault over the low mark). */
		if (atomic_load(&sp->reclaim_waiters))
			break;
	}
}

int reclaim_init(struct fl_space *sp)
{
	pthread_mutex_init(&sp->clock_lock, NULL);
	pthread_mutex_init(&sp->reclaim_lock, NULL);
	CDS_INIT_LIST_HEAD(&sp->lru);
	sp->hand = &sp->lru;
	if (!sp->swap_on)
		return 0;
	/* sp->zap[0]: the lock holder's; then the spares. */
	sp->zap = calloc(1 + RECLAIM_ZAP_SPARES, sizeof(*sp->zap));
	if (!sp->zap)
		return -ENOMEM;
	return worker_start(&sp->kswapd, "fl-kswapd", kswapd_round, sp, 100);
}

void reclaim_destroy(struct fl_space *sp)
{
	worker_stop(&sp->kswapd);
	free(sp->zap);
	sp->zap = NULL;
}
