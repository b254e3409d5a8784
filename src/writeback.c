// SPDX-License-Identifier: MIT
/*
 * Write-back of the page cache, and its eviction.
 *
 * Writing runs of dirty pages back (writeback_runs(), the kernel's
 * folio_clear_dirty_for_io() and ->writepages), up to WB_BATCH runs of up
 * to WB_RUN pages at once:
 *   1. each page locked (in index order), so no fault maps it meanwhile;
 *   2. write-protected in every shared mapping of the file
 *      (wp_mappings()), so that a store from now on traps (and waits for
 *      the page lock): the kernel's rmap walk, here a walk of the space's
 *      VMA index under RCU, write-protecting by address;
 *   3. PG_DIRTY cleared, PG_WRITEBACK set, and each run written from the
 *      view to the file as one vectored write through the file I/O ring
 *      (fileio.c), all the runs in flight together, the writer waiting for
 *      them (O_DIRECT where the file system takes it; the last page of a
 *      file that does not end on a page, buffered and only up to the end;
 *      in the writer's thread when no I/O of the pool is free);
 *   4. on an error the pages are dirty again, and the file's error
 *      sequence (wb_err_seq, the kernel's errseq_t) counts it: the next
 *      fl_msync() with MS_SYNC reports it once (EIO, ENOSPC, ...);
 *   5. unlocked.
 * A store that waited in step 3 dirties the page again after it.  A pass
 * over a range (writeback_range(): fl_msync(), munmap, destroy) then waits
 * for the pages of it that another writer has under write-back, so that
 * every page dirty when it began is in the file when it returns.
 *
 * Eviction (shrink_file_pages(), reclaim's half for file pages): a clock
 * over each file's pages (PG_REF gives a second chance); a clean victim is
 * locked and punched out of the memfd (FALLOC_FL_PUNCH_HOLE), which zaps it
 * from every mapping at once and keeps the private copies; a dirty one is
 * written back first, but only by kswapd, which gathers its dirty victims
 * in runs of consecutive pages and writes them together, then evicts those
 * still clean: a fault's direct reclaim takes clean pages and kicks the
 * flusher.
 *
 * The flusher (fl-flusher) writes every dirty page back once they exceed
 * cfg.dirty_background_ratio per cent of the budget, and all of them every
 * FLUSH_PERIOD_NS regardless; a store that would take the dirty pages past
 * cfg.dirty_ratio waits for it (balance_dirty_pages()).
 *
 * Locks: page locks in index order (the runs of a batch, held together
 * until their writes complete), under nothing or under mmap_lock
 * (fl_msync(), munmap, destroy); kswapd's by trylock.  A writer takes an
 * I/O of the pool before it locks a run, and waits for one only holding no
 * page lock.  RCU for the walk of the index.  No VMA lock, no ptl.
 */
#include "writeback.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <time.h>

#include "fileio.h"
#include "filemap.h"
#include "mmap_lock.h"
#include "space.h"
#include "stats.h"
#include "uffd.h"
#include "vma.h"

#define WB_RUN 64			    /* pages per write */
#define WB_BATCH 16			    /* writes in flight per writer */
#define FLUSH_PERIOD_NS (5 * 1000000000ULL) /* the kernel's dirty_writeback_centisecs */
#define BALANCE_WAIT_NS (1000 * 1000000ULL) /* the longest a store waits for the flusher */

_Atomic unsigned int fl_test_writeback_delay_us;

/* A run of locked, dirty pages to write back, with its I/O (NULL: none of
 * the pool was free, written in this thread) and its result. */
struct wb_run {
	unsigned long s, e;
	struct file_io *io;
	int ret;
};

/*
 * Write-protect pages [first, first + n) of f in every shared mapping of it
 * in the space.  Context: the page locks of the pages.
 */
static void wp_mappings(struct fl_space *sp, struct fl_file *f, unsigned long first,
			unsigned long n)
{
	struct vma_index *idx;

	rcu_read_lock();
	idx = vma_index_get(sp);
	for (size_t i = 0; i < idx->nr; i++) {
		struct vma *v = idx->v[i];
		unsigned long vs = v->pgoff, ve, s, e;

		if (v->file != f || !(v->flags & VM_SHARED))
			continue;
		ve = vs + ((v->vm_end - v->vm_start) >> PAGE_SHIFT);
		s = MAX(first, vs);
		e = MIN(first + n, ve);
		if (s < e)
			uffd_writeprotect(sp, v->vm_start + ((s - vs) << PAGE_SHIFT),
					  (e - s) << PAGE_SHIFT, true);
	}
	fl_rcu_read_unlock();
}

/* Write [buf, buf + len) to fd at off, all of it.  Return: 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, buf, len, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		buf += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

/*
 * Write pages [s, e) of the cache to the file.  Context: their page locks.
 * Return: 0 or a negative errno.
 */
static int write_pages(struct fl_file *f, unsigned long s, unsigned long e)
{
	long long size = atomic_load(&f->size);
	off_t off = (off_t)(s << PAGE_SHIFT);
	long long end = MIN((long long)(e << PAGE_SHIFT), size);
	size_t full, tail;
	int dfd = file_dfd(f), ret = 0;

	if (end <= off)
		return 0;
	full = (size_t)(end - off) & PAGE_MASK;
	tail = (size_t)(end - off) - full;
	if (full && dfd >= 0) {
		ret = write_all(dfd, f->view + off, full, off);
		if (ret == -EINVAL) {
			atomic_store(&f->direct_refused, true);
			dfd = -1;
		}
	}
	if (full && dfd < 0) {
		ret = write_all(atomic_load(&f->fd), f->view + off, full, off);
		if (!ret)
			posix_fadvise(atomic_load(&f->fd), off, (off_t)full, POSIX_FADV_DONTNEED);
	}
	if (!ret && tail)
		ret = write_all(atomic_load(&f->fd), f->view + off + full, tail, off + (off_t)full);
	return ret;
}

/* Record a write-back error in the file's sequence (errseq_set()). */
static void wb_error(struct fl_space *sp, struct fl_file *f, unsigned long idx, int err)
{
	atomic_store(&f->wb_err, -err);
	atomic_fetch_add(&f->wb_err_seq, 1);
	if (!atomic_exchange(&sp->io_error_logged, true) || sp->cfg.verbose)
		fl_log("write-back of page %lu of a mapped file failed: %s; the page stays dirty, "
		       "and the next fl_msync(MS_SYNC) of the file reports it (further errors: "
		       "see file_write_errors)",
		       idx, strerror(-err));
}

/* Whole pages of [s, e) inside the file, from s: the part written direct. */
static unsigned long full_pages(struct fl_file *f, unsigned long s, unsigned long e)
{
	long long size = atomic_load(&f->size);
	long long end = MIN((long long)(e << PAGE_SHIFT), size);

	return end <= (long long)(s << PAGE_SHIFT) ? 0 : (unsigned long)(end >> PAGE_SHIFT) - s;
}

/*
 * Write back runs[0..n) of locked, dirty pages of f, all in flight at once:
 * steps 2 to 4 at the top of this file.  The whole pages of each run go to
 * the ring as one vectored write (if the run has an I/O), the last, partial
 * page of the file after them, buffered; each run's result is in its ret.
 * Context: the page locks of every run, kept; no other I/O of the pool
 * (the ones in runs[] are the caller's, given back here).
 */
static void writeback_runs(struct fl_space *sp, struct fl_file *f, struct wb_run *runs,
			   unsigned int n)
{
	struct wb_batch b = {0};

	for (unsigned int k = 0; k < n; k++) {
		struct wb_run *r = &runs[k];
		long len = (long)(r->e - r->s);
		unsigned long full = full_pages(f, r->s, r->e);

		wp_mappings(sp, f, r->s, r->e - r->s);
		for (unsigned long i = r->s; i < r->e; i++)
			folio_start_writeback(f, i);
		atomic_fetch_sub(&sp->file_dirty, len);
		atomic_fetch_add(&sp->file_writeback, len);
		r->ret = 0;
		if (!k) {
			/* Tests: the first run's pages under write-back, its
			 * write not yet started, for this long; once (a load
			 * first: no store to the shared word in use). */
			unsigned int delay = 0;

			if (atomic_load_explicit(&fl_test_writeback_delay_us, memory_order_relaxed))
				delay = atomic_exchange_explicit(&fl_test_writeback_delay_us, 0,
								 memory_order_relaxed);
			if (delay)
				usleep(delay);
		}
		if (r->io && full) {
			r->io->f = f; /* the caller's reference covers it */
			r->io->idx = r->s;
			r->io->n = full;
			fileio_write(sp, r->io, &b);
		} else if (r->io) {
			fileio_put(sp, r->io);
			r->io = NULL;
		}
	}
	wb_wait(&b);
	for (unsigned int k = 0; k < n; k++) {
		struct wb_run *r = &runs[k];
		long len = (long)(r->e - r->s);

		if (r->io) {
			r->ret = r->io->res;
			if (!r->ret && !r->io->direct)
				posix_fadvise(atomic_load(&f->fd), (off_t)(r->s << PAGE_SHIFT),
					      (off_t)(r->io->n << PAGE_SHIFT), POSIX_FADV_DONTNEED);
			if (!r->ret)
				r->ret = write_pages(f, r->s + r->io->n, r->e); /* the tail */
			fileio_put(sp, r->io);
			r->io = NULL;
		} else {
			r->ret = write_pages(f, r->s, r->e);
		}
		/* The error recorded before any page of the run is seen
		 * dirty again: an fl_msync() that waits for one of them
		 * then checks the error sequence after it. */
		if (r->ret)
			wb_error(sp, f, r->s, r->ret);
		for (unsigned long i = r->s; i < r->e; i++)
			folio_end_writeback(sp, f, i, r->ret);
		atomic_fetch_sub(&sp->file_writeback, len);
		if (r->ret)
			count_event_n(sp, file_write_errors, len);
		else
			count_event_n(sp, file_writebacks, len);
	}
}

/*
 * Wait until no page of f in [first, last) is under write-back: another
 * writer (the flusher, kswapd, a concurrent fl_msync()) holds the lock of
 * each page it writes until its write is over, so taking the lock waits
 * for it.  A page it found dirty and took is neither dirty nor under
 * write-back only once written (folio_start_writeback() is one step).
 * Context: no page lock.
 */
static void wait_on_writeback(struct fl_file *f, unsigned long first, unsigned long last)
{
	last = MIN(last, atomic_load(&f->nr_pages));
	for (unsigned long i = first; i < last; i++) {
		if (!(folio_state(f, i) & PG_WRITEBACK))
			continue;
		folio_lock(f, i);
		folio_unlock(f, i);
	}
}

/*
 * Write back the dirty pages of f in [first, last): runs of up to WB_RUN
 * consecutive dirty pages, up to WB_BATCH of them in flight at once, then
 * wait for the pages that another writer had under write-back (the
 * kernel's filemap_write_and_wait_range()): once this returns, every page
 * of the range dirty when it was called is in the file, or its error is
 * recorded.  Context: a reference on f; no page lock; not the SIGBUS
 * handler (it may sleep on I/O).  Return: 0, or the first write's negative
 * errno (the others are still tried).
 */
int writeback_range(struct fl_space *sp, struct fl_file *f, unsigned long first, unsigned long last)
{
	struct wb_run runs[WB_BATCH];
	unsigned int n = 0;
	int ret = 0;

	last = MIN(last, atomic_load(&f->nr_pages));
	for (unsigned long i = first; i < last || n;) {
		struct file_io *io = NULL;
		unsigned long s;

		while (i < last && !(folio_state(f, i) & PG_DIRTY))
			i++;
		if (i < last && n < WB_BATCH) {
			/* An I/O for the run before its pages are locked: a
			 * writer never waits for the pool holding a page
			 * lock it has not submitted. */
			io = fileio_get(sp, false);
			if (!io && !n)
				io = fileio_get(sp, true);
		}
		if (!io) {
			/* The batch is full, the pool empty, or the range done:
			 * write what is locked, then go on. */
			writeback_runs(sp, f, runs, n);
			for (unsigned int k = 0; k < n; k++) {
				if (runs[k].ret && !ret)
					ret = runs[k].ret;
				for (unsigned long x = runs[k].s; x < runs[k].e; x++)
					folio_unlock(f, x);
			}
			n = 0;
			continue;
		}
		/* A run of dirty pages, locked in index order. */
		s = i;
		while (i < last && i - s < WB_RUN && (folio_state(f, i) & PG_DIRTY)) {
			folio_lock(f, i);
			if (!(folio_state(f, i) & PG_DIRTY)) {
				folio_unlock(f, i);
				break;
			}
			i++;
		}
		if (i == s) {
			fileio_put(sp, io);
			i++;
			continue;
		}
		runs[n++] = (struct wb_run){.s = s, .e = i, .io = io};
	}
	wait_on_writeback(f, first, last);
	return ret;
}

/*
 * A file no mapping maps any more: everything dirty goes back to it.  Also
 * the pages another writer had under write-back: if its write failed, they
 * are dirty again.  Context: no page lock.  Return: 0 once no page is dirty
 * or under write-back (with no mapping, none can be again), else the first
 * write's negative errno, or the file's last write-back error.
 */
int file_release(struct fl_space *sp, struct fl_file *f)
{
	int ret = writeback_range(sp, f, 0, atomic_load(&f->nr_pages));

	if (!ret && file_has_dirty(f))
		ret = atomic_load(&f->wb_err) ? -atomic_load(&f->wb_err) : -EIO;
	return ret;
}

/*
 * Punch the locked, clean pages [s, e) out of the cache: the kernel zaps
 * them from every mapping (private copies stay).  Context: their page locks.
 */
static void evict_run(struct fl_space *sp, struct fl_file *f, unsigned long s, unsigned long e)
{
	if (fallocate(f->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(s << PAGE_SHIFT), (off_t)((e - s) << PAGE_SHIFT))) {
		fl_dbg(sp, "punching pages %lu-%lu out of a file's cache: %s", s, e,
		       strerror(errno));
		return;
	}
	for (unsigned long i = s; i < e; i++)
		folio_clear(f, i, PG_UPTODATE | PG_REF | PG_READAHEAD);
	atomic_fetch_sub(&sp->file_pages, (long)(e - s));
	count_event_n(sp, file_evictions, e - s);
}

/* MS_INVALIDATE: the clean cached pages of [first, last) go, so that the
 * next access reads the file as it is now.  Context: no page lock. */
static void invalidate_range(struct fl_space *sp, struct fl_file *f, unsigned long first,
			     unsigned long last)
{
	last = MIN(last, atomic_load(&f->nr_pages));
	for (unsigned long i = first; i < last; i++) {
		if (!(folio_state(f, i) & PG_UPTODATE))
			continue;
		folio_lock(f, i);
		if ((folio_state(f, i) & (PG_UPTODATE | PG_DIRTY)) == PG_UPTODATE)
			evict_run(sp, f, i, i + 1);
		folio_unlock(f, i);
	}
}

/*
 * fl_msync() of pages [first, last) of f, mapped shared: MS_ASYNC and
 * MS_SYNC write the dirty ones back, MS_SYNC also fsync()s the file and
 * reports a write-back error not reported before (errseq_check_and_advance():
 * once per error, whichever fl_msync() of the file comes first);
 * MS_INVALIDATE drops the clean ones.
 * Context: a reference on f; no mmap_lock (the I/O would stall every fault
 * behind a writer queued for it), no page lock.  Return: 0 or a negative
 * errno.
 */
int filemap_msync(struct fl_space *sp, struct fl_file *f, unsigned long first, unsigned long last,
		  int flags)
{
	int ret = 0;

	mmap_assert_unlocked(sp);
	/* MS_SYNC reports its own write's error too, as the kernel's
	 * file_write_and_wait_range() does, whichever fl_msync() of the file
	 * takes the error sequence's report. */
	if (flags & (MS_ASYNC | MS_SYNC))
		ret = writeback_range(sp, f, first, last);
	if (!(flags & MS_SYNC))
		ret = 0;
	if (flags & MS_SYNC) {
		if (fdatasync(atomic_load(&f->fd)) && !ret)
			ret = -errno;
		pthread_mutex_lock(&f->msync_lock);
		uint32_t seq = atomic_load(&f->wb_err_seq);
		if (seq != f->wb_err_seen) {
			f->wb_err_seen = seq;
			if (!ret)
				ret = -atomic_load(&f->wb_err);
		}
		pthread_mutex_unlock(&f->msync_lock);
	}
	if (flags & MS_INVALIDATE)
		invalidate_range(sp, f, first, last);
	return ret;
}

/*
 * References on up to max files of the space's list, from its start-th
 * (modulo its length) on, round to its head: each file once.  Context:
 * takes files_lock (also in the SIGBUS handler: no malloc).  Return: how
 * many.
 */
static unsigned int files_get(struct fl_space *sp, unsigned long start, struct fl_file **files,
			      unsigned int max)
{
	unsigned long len = 0;
	unsigned int n = 0;
	struct fl_file *f;

	pthread_mutex_lock(&sp->files_lock);
	for (f = sp->files; f; f = f->next)
		len++;
	f = sp->files;
	for (unsigned long i = 0; len && i < start % len; i++)
		f = f->next;
	while (n < max && n < len) {
		file_get(f);
		files[n++] = f;
		f = f->next ? f->next : sp->files;
	}
	pthread_mutex_unlock(&sp->files_lock);
	return n;
}

/*
 * Reclaim's half for the page cache: free about want pages by the clock
 * over the files' pages.  direct (a fault's reclaim, or the completion
 * thread): clean pages only, and the flusher is kicked for the dirty ones.
 * Context: no page lock; may be the SIGBUS handler (direct: no I/O, no
 * malloc).  Return: pages freed.
 */
long shrink_file_pages(struct fl_space *sp, long want, bool direct)
{
	struct fl_file *files[64];
	unsigned int nf = 0, k;
	bool dirty_seen = false;
	long freed = 0;

	if (!atomic_load(&sp->file_pages))
		return 0;
	/* Each call starts one file further on, over the whole list. */
	nf = files_get(sp, atomic_fetch_add(&sp->file_hand, 1), files, ARRAY_SIZE(files));
	for (k = 0; k < nf && freed < want; k++) {
		struct fl_file *f = files[k];
		unsigned long nr = atomic_load(&f->nr_pages), hand = atomic_load(&f->hand);
		unsigned long scan = MIN(nr, 2 * (unsigned long)want + 64);
		unsigned long rs = 0, re = 0;  /* a run of locked clean victims */
		struct wb_run dirty[WB_BATCH]; /* kswapd: runs of locked dirty victims */
		unsigned int nd = 0;

		for (unsigned long j = 0; j < scan && nr && freed < want; j++) {
			unsigned long i = (hand + j) % nr;
			uint32_t st = folio_state(f, i);
			bool victim = false;

			if (!(st & PG_UPTODATE) || (st & PG_LOCKED)) {
				/* not cached, or busy */
			} else if (st & PG_REF) {
				folio_clear(f, i, PG_REF); /* second chance */
			} else if ((st & PG_DIRTY) && direct) {
				dirty_seen = true;
			} else if (folio_trylock(f, i)) {
				st = folio_state(f, i);
				victim = (st & (PG_UPTODATE | PG_DIRTY | PG_REF)) == PG_UPTODATE;
				if (!victim && (st & (PG_UPTODATE | PG_DIRTY | PG_REF)) ==
						       (PG_UPTODATE | PG_DIRTY)) {
					/* kswapd writes it back with its neighbours,
					 * then evicts it (below). */
					if (nd && dirty[nd - 1].e == i &&
					    i - dirty[nd - 1].s < WB_RUN) {
						dirty[nd - 1].e++;
					} else if (nd < WB_BATCH) {
						dirty[nd++] = (struct wb_run){
							.s = i,
							.e = i + 1,
							.io = fileio_get(sp, false)};
					} else {
						folio_unlock(f, i);
					}
				} else if (!victim) {
					folio_unlock(f, i);
				}
			}
			if (victim && re == i && i) {
				re++;
			} else if (victim) {
				if (re > rs)
					evict_run(sp, f, rs, re);
				for (unsigned long x = rs; x < re; x++)
					folio_unlock(f, x);
				freed += (long)(re - rs);
				rs = i;
				re = i + 1;
			}
		}
		if (re > rs)
			evict_run(sp, f, rs, re);
		for (unsigned long x = rs; x < re; x++)
			folio_unlock(f, x);
		freed += (long)(re - rs);
		if (nd) {
			/* Written back together, then evicted if still clean
			 * (a failed write leaves them dirty). */
			writeback_runs(sp, f, dirty, nd);
			for (unsigned int d = 0; d < nd; d++) {
				unsigned long x = dirty[d].s, y;

				while (x < dirty[d].e) {
					for (y = x; y < dirty[d].e &&
						    (folio_state(f, y) & (PG_UPTODATE | PG_DIRTY |
									  PG_REF)) == PG_UPTODATE;
					     y++)
						;
					if (y > x) {
						evict_run(sp, f, x, y);
						freed += (long)(y - x);
					} else {
						y++;
					}
					x = y;
				}
				for (x = dirty[d].s; x < dirty[d].e; x++)
					folio_unlock(f, x);
			}
		}
		if (nr)
			atomic_store(&f->hand, (hand + scan) % nr);
	}
	for (k = 0; k < nf; k++)
		file_put(files[k]);
	if (dirty_seen)
		worker_kick(&sp->flusher);
	return freed;
}

/* The dirty pages past which the flusher writes back, and stores wait. */
static long dirty_thresh(struct fl_space *sp, unsigned int ratio)
{
	return sp->limit_pages ? MAX(sp->limit_pages * (long)ratio / 100, 16) : LONG_MAX;
}

/*
 * balance_dirty_pages(): a store about to dirty a page while the dirty
 * pages exceed cfg.dirty_ratio of the budget waits (at most
 * BALANCE_WAIT_NS) for the flusher to bring them down.
 * Context: the fault's lock, no page lock (the flusher takes them).
 */
void balance_dirty_pages(struct fl_space *sp)
{
	long limit = dirty_thresh(sp, sp->cfg.dirty_ratio);
	uint64_t t0 = 0;

	while (atomic_load(&sp->file_dirty) >= limit) {
		struct timespec ts = {0, 1000000};

		if (!t0)
			t0 = fl_now_ns();
		else if (fl_now_ns() - t0 > BALANCE_WAIT_NS)
			break;
		worker_kick(&sp->flusher);
		nanosleep(&ts, NULL);
	}
}

/* The flusher's round: every second, and when kicked. */
static void flusher_round(void *arg)
{
	static FL_TLS uint64_t last_all;
	struct fl_space *sp = arg;
	struct fl_file **files;
	unsigned int nf, cap;
	uint64_t now = fl_now_ns();

	if (!atomic_load(&sp->file_dirty))
		return;
	if (atomic_load(&sp->file_dirty) < dirty_thresh(sp, sp->cfg.dirty_background_ratio) &&
	    now - last_all < FLUSH_PERIOD_NS)
		return;
	/* Every file of the list (those added meanwhile: the next round). */
	cap = (unsigned int)atomic_load(&sp->nr_files) + 16;
	files = malloc(cap * sizeof(*files));
	if (!files)
		return; /* the next round */
	last_all = now;
	nf = files_get(sp, 0, files, cap);
	for (unsigned int k = 0; k < nf; k++) {
		writeback_range(sp, files[k], 0, atomic_load(&files[k]->nr_pages));
		file_put(files[k]);
	}
	free(files);
	atomic_fetch_add(&sp->flush_gen, 1);
}

/* Context: space creation.  Return: 0 or a negative errno. */
int flusher_start(struct fl_space *sp)
{
	return worker_start(&sp->flusher, "fl-flusher", flusher_round, sp, 1000);
}
