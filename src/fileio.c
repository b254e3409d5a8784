// SPDX-License-Identifier: MIT
/*
 * File I/O of the page cache through io_uring (fileio.h): the ring, its
 * completion thread, the pool of I/Os, and the completion of reads.
 *
 * A read: the submitter holds the page locks of [idx, idx + n), none of
 * them up to date, and hands them to the read (fileio_read()).  Its
 * completion, on fl-fileio:
 *   - a short transfer goes on from where it stopped, unless it ended at
 *     the end of the file: the rest of the pages is zeros;
 *   - O_DIRECT refused for this read (EINVAL): buffered from then on, and
 *     the read is submitted again;
 *   - an error on several pages: each page is read again on its own, so
 *     that only a bad one fails;
 *   - then each page is PG_UPTODATE (a read-ahead page without PG_REF, the
 *     window's marked page with PG_READAHEAD), or PG_ERROR, and unlocked.
 * The unlock wakes the faults waiting for those pages: those asleep on
 * them, and those parked (cont.c), which are collected as the pages are
 * unlocked and run once the I/O is finished (cont_collect_begin()), here,
 * with in_completion set: a continuation never waits for a lock there.
 *
 * A write: the writer (writeback.c) holds the page locks and waits; the
 * completion goes on after a short write, falls back to buffered I/O on
 * EINVAL, and records the result for the writer.
 */
#include "fileio.h"

#include <fcntl.h>
#include <sys/prctl.h>

#include "cont.h"
#include "filemap.h"
#include "reclaim.h"
#include "space.h"
#include "stats.h"
#include "swapdev.h"

#define FILE_RING_DEPTH 64

static inline struct file_ring *ring_of(struct fl_space *sp)
{
	return sp->fring;
}

/*
 * An I/O from the pool; with wait, sleeps until one is free (not at I/O
 * completion, nor in the SIGBUS handler).  Return: the I/O, or NULL.
 */
struct file_io *fileio_get(struct fl_space *sp, bool wait)
{
	struct file_ring *fr = ring_of(sp);
	struct file_io *io;

	FL_DEBUG_BUG_ON(wait && in_completion);
	pthread_mutex_lock(&fr->pool_lock);
	while (!(io = fr->free) && wait)
		pthread_cond_wait(&fr->freed, &fr->pool_lock);
	if (io)
		fr->free = io->next;
	pthread_mutex_unlock(&fr->pool_lock);
	return io;
}

void fileio_put(struct fl_space *sp, struct file_io *io)
{
	struct file_ring *fr = ring_of(sp);

	pthread_mutex_lock(&fr->pool_lock);
	io->next = fr->free;
	fr->free = io;
	pthread_cond_signal(&fr->freed);
	pthread_mutex_unlock(&fr->pool_lock);
}

/* The pages of io's request now: one while it is split. */
static unsigned long io_first(const struct file_io *io)
{
	return io->split ? io->idx + io->split - 1 : io->idx;
}

static size_t io_len(const struct file_io *io)
{
	return (io->split ? 1 : io->n) * PAGE_SIZE;
}

/* Whether test-only error injection fails this read. */
static bool injected(const struct file_io *io)
{
	long fail = atomic_load_explicit(&io->f->fail_read_idx, memory_order_relaxed);
	unsigned long s = io_first(io);

	return !io->write && fail >= 0 && (unsigned long)fail >= s &&
	       (unsigned long)fail < s + io_len(io) / PAGE_SIZE;
}

/*
 * Put io's request (what is left of it: from io->done) on the ring.  An
 * injected error goes as a NOP whose completion carries -EIO.
 * Context: any; sq_lock is taken inside.  Never fails: once prepared, the
 * request completes.
 */
static void submit(struct file_ring *fr, struct file_io *io)
{
	struct fl_file *f = io->f;
	unsigned long first = io_first(io);
	off_t off = (off_t)(first * PAGE_SIZE + io->done);
	struct io_uring_sqe *sqe;
	int dfd = file_dfd(f);

	io->direct = dfd >= 0;
	io->iov = (struct iovec){f->view + off, io_len(io) - io->done};
	pthread_mutex_lock(&fr->sq_lock);
	while (!(sqe = io_uring_get_sqe(&fr->ring)))
		io_uring_submit(&fr->ring);
	if (injected(io)) {
		io_uring_prep_nop(sqe);
		io->res = -EIO;
	} else if (io->write) {
		io_uring_prep_writev(sqe, io->direct ? dfd : atomic_load(&f->fd), &io->iov, 1,
				     (uint64_t)off);
		io->res = 0;
	} else {
		io_uring_prep_readv(sqe, io->direct ? dfd : atomic_load(&f->fd), &io->iov, 1,
				    (uint64_t)off);
		io->res = 0;
	}
	io_uring_sqe_set_data(sqe, io);
	tsan_release(io); /* everything the completion reads of io is set */
	for (int tries = 0; io_uring_submit(&fr->ring) < 0 && tries < 100; tries++)
		sched_yield();
	pthread_mutex_unlock(&fr->sq_lock);
}

/*
 * Read pages [io->idx, io->idx + io->n) of io->f into the cache: io's
 * fields f, idx, n, mark and keep_ref set, a reference held on f for the
 * read, and the page lock of each page held by the caller, handed to the
 * read here.  Context: any (the SIGBUS handler too); never waits for I/O.
 */
void fileio_read(struct fl_space *sp, struct file_io *io)
{
	struct file_ring *fr = ring_of(sp);

	io->write = false;
	io->split = 0;
	io->done = 0;
	io->batch = NULL;
	atomic_fetch_add(&fr->inflight, 1);
	submit(fr, io);
}

/*
 * Write pages [io->idx, io->idx + io->n) of io->f (locked, whole pages
 * inside the file) to the file; the result goes to io->res, and b counts
 * it until it is there.  Context: the page locks; not the SIGBUS handler.
 */
void fileio_write(struct fl_space *sp, struct file_io *io, struct wb_batch *b)
{
	struct file_ring *fr = ring_of(sp);

	io->write = true;
	io->split = 0;
	io->done = 0;
	io->batch = b;
	atomic_fetch_add_explicit(&b->pending, 1, memory_order_relaxed);
	atomic_fetch_add(&fr->inflight, 1);
	submit(fr, io);
}

/* Wait until every write counted in b has completed.  Context: no page
 * lock the writes need (they hold none), not at I/O completion. */
void wb_wait(struct wb_batch *b)
{
	uint32_t v;

	/* Pairs with the RELEASE of the completion's decrement. */
	while ((v = atomic_load_explicit(&b->pending, memory_order_acquire)))
		futex_wait(&b->pending, v);
}

/* The pages [first, first + n) of a read are in, or failed with err.
 * Context: the completion thread; their page locks, released here. */
static void read_pages_done(struct fl_space *sp, struct file_io *io, unsigned long first,
			    unsigned long n, int err)
{
	struct fl_file *f = io->f;

	/* Counted before the unlocks: a fault that waited for these pages
	 * may end, and its thread read the counters, at once. */
	if (!err) {
		count_event_n(sp, file_reads, n);
	} else {
		count_event_n(sp, file_read_errors, n);
		if (!atomic_exchange(&sp->io_error_logged, true) || sp->cfg.verbose)
			fl_log("read of page %lu of a mapped file failed: %s; the next access to "
			       "it gets SIGBUS (further errors: see file_read_errors)",
			       first, strerror(-err));
	}
	for (unsigned long i = first; i < first + n; i++) {
		if (!err) {
			folio_mark_uptodate(sp, f, i);
			folio_clear(f, i, PG_ERROR);
			if (i != io->keep_ref)
				folio_clear(f, i, PG_REF); /* not touched yet */
			/* The faulting page never carries the mark: its own
			 * fault would start the next window at once. */
			if (i == io->mark && i != io->keep_ref)
				folio_set(f, i, PG_READAHEAD);
		} else {
			folio_set(f, i, PG_ERROR);
		}
		folio_unlock(f, i);
	}
}

/* Whether a short read at io->done stopped before the end of the file (and
 * so goes on). */
static bool read_goes_on(const struct file_io *io)
{
	long long off = (long long)(io_first(io) * PAGE_SIZE + io->done);

	/* A short direct read that is not block-aligned ended at EOF. */
	if (io->direct && io->done % 512)
		return false;
	return off < atomic_load(&io->f->size);
}

/* A read's completion with res (bytes, or a negative errno).  Context: the
 * completion thread. */
static void read_done(struct fl_space *sp, struct file_io *io, int res)
{
	struct file_ring *fr = ring_of(sp);
	struct fl_file *f = io->f;
	unsigned long first = io_first(io);
	size_t len = io_len(io);

	if (io->res)
		res = io->res; /* injected */
	if (res == -EINTR || res == -EAGAIN || (res == -EINVAL && io->direct)) {
		/* EINVAL: the file system takes O_DIRECT opens but not this
		 * read: buffered from now on. */
		if (res == -EINVAL)
			atomic_store(&f->direct_refused, true);
		submit(fr, io);
		return;
	}
	if (res > 0) {
		io->done += (size_t)res;
		if (io->done < len && read_goes_on(io)) {
			submit(fr, io);
			return;
		}
		res = 0;
	}
	if (!res) {
		if (io->done < len) /* past the end of the file: zeros */
			memset(f->view + first * PAGE_SIZE + io->done, 0, len - io->done);
		if (!io->direct)
			posix_fadvise(atomic_load(&f->fd), (off_t)(first * PAGE_SIZE), (off_t)len,
				      POSIX_FADV_DONTNEED);
	} else if (!io->split && io->n > 1) {
		/* A bad page is not its neighbours' error: one at a time. */
		io->split = 1;
		io->done = 0;
		submit(fr, io);
		return;
	}
	read_pages_done(sp, io, first, len / PAGE_SIZE, res);
	if (io->split && io->split < io->n) {
		io->split++;
		io->done = 0;
		submit(fr, io);
		return;
	}
	atomic_fetch_sub(&fr->inflight, 1);
	file_put(f);
	fileio_put(sp, io);
}

/* A write's completion with res.  Context: the completion thread. */
static void write_done(struct fl_space *sp, struct file_io *io, int res)
{
	struct file_ring *fr = ring_of(sp);
	struct wb_batch *b = io->batch;

	if (res == -EINTR || res == -EAGAIN || (res == -EINVAL && io->direct)) {
		if (res == -EINVAL)
			atomic_store(&io->f->direct_refused, true);
		submit(fr, io);
		return;
	}
	if (res > 0) {
		io->done += (size_t)res;
		if (io->done < io_len(io)) {
			submit(fr, io);
			return;
		}
		res = 0;
	} else if (!res) {
		res = -EIO; /* wrote nothing */
	}
	io->res = res;
	atomic_fetch_sub(&fr->inflight, 1);
	/* The writer owns io again once pending drops: nothing after. */
	if (atomic_fetch_sub_explicit(&b->pending, 1, memory_order_release) == 1)
		futex_wake(&b->pending, INT_MAX);
}

/* The user data of fileio_handoff()'s NOP. */
static char handoff_marker;

/*
 * Give w, a fault parked on a page lock that keeps its VMA's read lock
 * (CONT_INSTALL: hold, v2) and was woken outside I/O completion, to the
 * completion thread, which runs it at once (in_completion: it waits for no
 * lock).  Queued to the handler threads instead, it could wait behind them
 * while both wait for mmap_lock behind a writer (an mprotect) that waits in
 * vma_start_write() for the very VMA lock it holds: a deadlock that
 * test_file_torture met under hold in thread delivery.
 * Context: any (folio_unlock()'s page_wake()); handoff_lock and sq_lock,
 * leaves, are taken here.  Return: false if no ring runs (w is the
 * caller's).
 */
bool fileio_handoff(struct fl_space *sp, struct waiter *w)
{
	struct file_ring *fr = ring_of(sp);
	struct io_uring_sqe *sqe;
	bool post;

	if (!fr || !fr->started)
		return false;
	pthread_mutex_lock(&fr->handoff_lock);
	w->next = fr->handoff;
	fr->handoff = w;
	post = !fr->handoff_posted;
	fr->handoff_posted = true;
	pthread_mutex_unlock(&fr->handoff_lock);
	if (post) {
		atomic_fetch_add(&fr->inflight, 1); /* a fork's quiesce waits for it */
		pthread_mutex_lock(&fr->sq_lock);
		while (!(sqe = io_uring_get_sqe(&fr->ring)))
			io_uring_submit(&fr->ring);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, &handoff_marker);
		io_uring_submit(&fr->ring);
		pthread_mutex_unlock(&fr->sq_lock);
	}
	return true;
}

/* The completion thread's part of fileio_handoff(). */
static void run_handoff(struct file_ring *fr)
{
	struct waiter *w;

	pthread_mutex_lock(&fr->handoff_lock);
	w = fr->handoff;
	fr->handoff = NULL;
	fr->handoff_posted = false;
	pthread_mutex_unlock(&fr->handoff_lock);
	cont_collect_begin();
	cont_run_list(w);
	cont_collect_run();
	atomic_fetch_sub(&fr->inflight, 1);
}

static void *reaper_main(void *arg)
{
	struct file_ring *fr = arg;
	struct fl_space *sp = fr->sp;

	in_completion = true; /* never block here: see mem_reserve() */
	for (;;) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(&fr->ring, &cqe);

		if (ret == -EINTR)
			continue;
		FL_BUG_ON(ret < 0);
		struct file_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&fr->ring, cqe);
		if (!io)
			break; /* the stop sentinel: nothing is in flight */
		if ((void *)io == &handoff_marker) {
			run_handoff(fr);
			continue;
		}
		tsan_acquire(io); /* pairs with the release in submit() */
		cont_collect_begin();
		if (io->write)
			write_done(sp, io, res);
		else
			read_done(sp, io, res);
		cont_collect_run();
	}
	return NULL;
}

/* ---- reading into the cache ---------------------------------------------- */

/*
 * Read pages [idx, idx + n) of the file into the cache in the calling
 * thread, as one read into the view (zero copy: with O_DIRECT the kernel's
 * direct I/O fills the memfd's pages).  Past the end of the file the pages
 * are zeros.  A file system that refuses O_DIRECT for this read makes the
 * file buffered from then on (and the kernel's own copy is dropped after
 * each read).  The faulting thread's own read in sigbus delivery, and the
 * fallback when no I/O of the pool is free.
 * Context: the page lock of each page.  Return: 0 or a negative errno.
 * Async-signal-safe.
 */
int filemap_read_pages(struct fl_file *f, unsigned long idx, unsigned long n)
{
	size_t len = n * PAGE_SIZE, done = 0;
	off_t off = (off_t)(idx * PAGE_SIZE);
	char *dst = f->view + idx * PAGE_SIZE;
	long fail = atomic_load_explicit(&f->fail_read_idx, memory_order_relaxed);

	if (unlikely(fail >= 0) && (unsigned long)fail >= idx && (unsigned long)fail < idx + n)
		return -EIO; /* injected (a test) */

	while (done < len) {
		int dfd = file_dfd(f);
		int fd = dfd >= 0 ? dfd : atomic_load(&f->fd);
		ssize_t r = pread(fd, dst + done, len - done, off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EINVAL && dfd >= 0) {
			/* This file system takes O_DIRECT opens but not this
			 * read: buffered from now on. */
			atomic_store(&f->direct_refused, true);
			continue;
		}
		if (r < 0)
			return -errno;
		if (r == 0)
			break; /* the end of the file */
		done += (size_t)r;
		if (dfd >= 0 && done % 512)
			break; /* a short direct read ends at EOF */
	}
	if (done < len)
		memset(dst + done, 0, len - done);
	if (file_dfd(f) < 0)
		posix_fadvise(atomic_load(&f->fd), off, (off_t)len, POSIX_FADV_DONTNEED);
	return 0;
}

/*
 * The run of pages around idx inside [ws, we) that are neither cached nor
 * locked, each locked here (trylock: the caller holds idx's lock): up from
 * idx, then down.  Return: the run [*s, *e), which contains idx.
 */
static void lock_run(struct fl_file *f, unsigned long idx, unsigned long ws, unsigned long we,
		     unsigned long *s, unsigned long *e)
{
	unsigned long a = idx, b = idx + 1;

	while (b < we && !(folio_state(f, b) & PG_UPTODATE) && folio_trylock(f, b)) {
		if (folio_state(f, b) & PG_UPTODATE) {
			folio_unlock(f, b);
			break;
		}
		b++;
	}
	while (a > ws && !(folio_state(f, a - 1) & PG_UPTODATE) && folio_trylock(f, a - 1)) {
		if (folio_state(f, a - 1) & PG_UPTODATE) {
			folio_unlock(f, a - 1);
			break;
		}
		a--;
	}
	*s = a;
	*e = b;
}

/* The readahead window of a fault at idx, clamped to the file, with idx. */
static void window_bounds(struct fl_file *f, unsigned long idx, const struct ra_window *w,
			  unsigned long *ws, unsigned long *we)
{
	*ws = MIN(w->start, idx);
	*we = MIN(MAX(w->start + w->nr, idx + 1), atomic_load(&f->nr_pages));
}

/*
 * The synchronous readahead window of a fault at idx, read in this thread:
 * the run of pages around idx that w asks for and that are neither cached
 * nor locked, as one read.  If it fails, idx is read again alone (a bad
 * neighbour is not its error); the neighbours stay uncached.
 * Context: idx's page lock; the fault's lock.  Return: 0 or the read's
 * negative errno (idx is not up to date then).
 */
int filemap_read_window_sync(struct fl_space *sp, struct fl_file *f, unsigned long idx,
			     const struct ra_window *w)
{
	unsigned long s, e, ws, we;
	bool window_ok;
	int ret;

	window_bounds(f, idx, w, &ws, &we);
	lock_run(f, idx, ws, we, &s, &e);
	mem_reserve(sp, e - s - 1);
	ret = filemap_read_pages(f, s, e - s);
	window_ok = !ret;
	if (ret && e - s > 1)
		ret = filemap_read_pages(f, idx, 1);
	for (unsigned long i = s; i < e; i++) {
		if (i == idx)
			continue;
		if (window_ok) {
			folio_mark_uptodate(sp, f, i);
			folio_clear(f, i, PG_REF); /* not touched yet */
			if (i == w->mark)
				folio_set(f, i, PG_READAHEAD);
		}
		folio_unlock(f, i);
	}
	if (!ret) {
		folio_mark_uptodate(sp, f, idx);
		count_event_n(sp, file_reads, window_ok ? e - s : 1);
	}
	return ret;
}

/*
 * Start the read of a fault's synchronous readahead window, through the
 * ring: the run of pages around idx that w asks for and that are neither
 * cached nor locked, with idx's lock handed to the read.  The fault then
 * waits for the page like any other (its page lock).
 * Context: idx's page lock; the fault's lock.  Return: 0 (idx's lock is
 * the read's now), or -EAGAIN: no I/O free, nothing done (idx still locked).
 */
int filemap_read_start(struct fl_space *sp, struct fl_file *f, unsigned long idx,
		       const struct ra_window *w)
{
	struct file_io *io = fileio_get(sp, false);
	unsigned long s, e, ws, we;

	if (!io)
		return -EAGAIN;
	window_bounds(f, idx, w, &ws, &we);
	lock_run(f, idx, ws, we, &s, &e);
	mem_reserve(sp, e - s - 1);
	file_get(f);
	io->f = f;
	io->idx = s;
	io->n = e - s;
	io->mark = w->mark;
	io->keep_ref = idx;
	fileio_read(sp, io);
	return 0;
}

/*
 * Start reading pages [start, end) of f into the cache, with no fault
 * waiting for them: the asynchronous readahead window, MADV_WILLNEED and
 * the working-set replay.  Pages cached or locked are passed by; each run
 * of the others is one read, all in flight together.  The page mark
 * (ULONG_MAX: none) gets PG_READAHEAD.  wait: wait for a free I/O (else
 * the rest is not read).
 * Context: a reference on f; no page lock; wait only where a thread may
 * sleep (not at I/O completion, nor in the SIGBUS handler).
 */
void filemap_readahead(struct fl_space *sp, struct fl_file *f, unsigned long start,
		       unsigned long end, unsigned long mark, bool wait)
{
	end = MIN(end, atomic_load(&f->nr_pages));
	for (unsigned long i = start; i < end;) {
		unsigned long s, e;
		struct file_io *io;

		if ((folio_state(f, i) & PG_UPTODATE) || !folio_trylock(f, i)) {
			i++;
			continue;
		}
		if (folio_state(f, i) & PG_UPTODATE) {
			folio_unlock(f, i);
			i++;
			continue;
		}
		io = fileio_get(sp, false);
		if (!io && wait) {
			/* Not with a page locked: others may be waiting. */
			folio_unlock(f, i);
			io = fileio_get(sp, true);
			if (!folio_trylock(f, i)) {
				fileio_put(sp, io);
				i++;
				continue;
			}
			if (folio_state(f, i) & PG_UPTODATE) {
				folio_unlock(f, i);
				fileio_put(sp, io);
				i++;
				continue;
			}
		}
		if (!io) {
			folio_unlock(f, i);
			return;
		}
		lock_run(f, i, i, MIN(end, i + FILE_IO_MAX_PAGES), &s, &e);
		mem_reserve(sp, e - s);
		file_get(f);
		io->f = f;
		io->idx = s;
		io->n = e - s;
		io->mark = mark;
		io->keep_ref = ULONG_MAX;
		fileio_read(sp, io);
		i = e;
	}
}

/* The ring and its reaper thread.  Return: 0 or a negative errno. */
static int ring_start(struct file_ring *fr)
{
	struct io_uring_params params = {.flags = IORING_SETUP_CQSIZE, .cq_entries = 4 * FILE_IOS};
	int ret = io_uring_queue_init_params(FILE_RING_DEPTH, &fr->ring, &params);

	if (ret)
		return ret;
	ret = -pthread_create(&fr->reaper, NULL, reaper_main, fr);
	if (ret) {
		io_uring_queue_exit(&fr->ring);
		return ret;
	}
	pthread_setname_np(fr->reaper, "fl-fileio");
	fr->started = true;
	return 0;
}

/* Context: space creation.  Return: 0 or a negative errno. */
int fileio_init(struct fl_space *sp)
{
	struct file_ring *fr = calloc(1, sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	fr->sp = sp;
	fr->ios = calloc(FILE_IOS, sizeof(*fr->ios));
	if (!fr->ios) {
		free(fr);
		return -ENOMEM;
	}
	for (int i = FILE_IOS; i-- > 0;) {
		fr->ios[i].next = fr->free;
		fr->free = &fr->ios[i];
	}
	pthread_mutex_init(&fr->sq_lock, NULL);
	pthread_mutex_init(&fr->handoff_lock, NULL);
	pthread_mutex_init(&fr->pool_lock, NULL);
	pthread_cond_init(&fr->freed, NULL);
	sp->fring = fr;
	return ring_start(fr);
}

/*
 * Before fork(): wait until the ring has nothing in flight.  A space given
 * to a child maps no file (fork_unsupported()), so only the write-back of a
 * file let go just before can still be running.  Context: fork_space_prepare().
 */
void fileio_fork_quiesce(struct fl_space *sp)
{
	while (sp->fring && atomic_load(&sp->fring->inflight) > 0)
		usleep(50);
}

/*
 * The child of fork(): a ring and a reaper thread of its own.  The parent's
 * ring stays the parent's (the child only lets go of its copy of the
 * mapping and the descriptor); nothing was in flight at the fork
 * (fileio_fork_quiesce()), so the pool is whole.
 * Context: fork_space_child(), the only thread.  Return: 0 or a negative
 * errno.
 */
int fileio_fork_child(struct fl_space *sp)
{
	struct file_ring *fr = sp->fring;

	if (!fr)
		return 0;
	pthread_mutex_init(&fr->sq_lock, NULL);
	pthread_mutex_init(&fr->handoff_lock, NULL);
	pthread_mutex_init(&fr->pool_lock, NULL);
	pthread_cond_init(&fr->freed, NULL);
	FL_BUG_ON(atomic_load(&fr->inflight));
	fr->handoff = NULL; /* empty: its NOP counted in inflight */
	fr->handoff_posted = false;
	if (fr->started)
		io_uring_queue_exit(&fr->ring);
	fr->started = false;
	return ring_start(fr);
}

/*
 * In the child of fork(), for a space the child does not get: its copy of
 * the ring's mapping and its descriptor go (the reaper is not there).
 * Context: fork_space_release(), the child's one thread.
 */
void fileio_fork_release(struct fl_space *sp)
{
	struct file_ring *fr = sp->fring;

	if (fr && fr->started) {
		io_uring_queue_exit(&fr->ring);
		fr->started = false;
	}
}

/* Context: space teardown, no I/O submitted any more; the I/O in flight
 * completes first. */
void fileio_destroy(struct fl_space *sp)
{
	struct file_ring *fr = sp->fring;

	if (!fr)
		return;
	if (fr->started) {
		while (atomic_load(&fr->inflight) > 0)
			usleep(100);
		pthread_mutex_lock(&fr->sq_lock);
		struct io_uring_sqe *sqe;
		while (!(sqe = io_uring_get_sqe(&fr->ring)))
			io_uring_submit(&fr->ring);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		io_uring_submit(&fr->ring);
		pthread_mutex_unlock(&fr->sq_lock);
		pthread_join(fr->reaper, NULL);
		io_uring_queue_exit(&fr->ring);
	}
	pthread_cond_destroy(&fr->freed);
	pthread_mutex_destroy(&fr->pool_lock);
	pthread_mutex_destroy(&fr->sq_lock);
	pthread_mutex_destroy(&fr->handoff_lock);
	free(fr->ios);
	free(fr);
	sp->fring = NULL;
}
