// SPDX-License-Identifier: MIT
/*
 * The page cache's lifetime (filemap.h): a file's cache made at its first
 * mapping in the space (filemap_get()), shared by every later one, written
 * back and let go when no mapping maps it any more (filemap_unmapped()) or
 * at destroy; and the few calls on a whole cache (MADV_COLD, the test-only
 * read error injection).
 *
 * Locks: files_lock (a leaf) guards the space's list; the rest is under
 * mmap_lock held for write (doc/locking.md, section 14).
 */
#include "filemap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fileio.h"
#include "mmap_lock.h"
#include "space.h"
#include "vma.h"
#include "workingset.h"
#include "writeback.h"

/* The cache of one file covers at most this many pages: a larger file is
 * refused (EFBIG), and a file that grows past it ends there. */
#define FILE_MAX_PAGES (1UL << 28) /* 1 TiB */
/* The view and the state words are reserved for at least this many pages,
 * and four times the file's size at its first mapping: room to grow. */
#define FILE_MIN_RESERVE (1UL << 18) /* 1 GiB of file */
/* The largest readahead window, in pages (the device's read_ahead_kb is
 * 128 KiB by default; the kernel's mmap readahead reads ra_pages). */
#define FILE_RA_PAGES 32

void file_get(struct fl_file *f)
{
	atomic_fetch_add(&f->refs, 1);
}

static void file_free(struct fl_file *f)
{
	/* In a child of fork() (a VMA's RCU put, carried into the child's
	 * call_rcu thread), view and state are not mapped (MADV_DONTFORK),
	 * and their addresses may be another mapping's now: only the
	 * descriptors and the struct are the child's to let go. */
	if (f->owner != getpid())
		f->view = NULL, f->state = NULL;
	if (f->state) {
		/* Its cached pages leave the budget's count with it (the
		 * space outlives every reference: its teardown waits for the
		 * VMAs' RCU puts before it frees). */
		unsigned long nr = atomic_load(&f->nr_pages);
		long cached = 0, dirty = 0;

		for (unsigned long i = 0; i < nr; i++) {
			uint32_t v = folio_state(f, i);

			cached += !!(v & PG_UPTODATE);
			dirty += !!(v & PG_DIRTY);
		}
		atomic_fetch_sub(&f->sp->file_pages, cached);
		atomic_fetch_sub(&f->sp->file_dirty, dirty);
	}
	if (f->view)
		munmap(f->view, f->max_pages * PAGE_SIZE);
	if (f->state)
		munmap((void *)f->state, f->max_pages * sizeof(*f->state));
	if (f->memfd >= 0)
		close(f->memfd);
	int fds[4] = {atomic_load(&f->fd), atomic_load(&f->dfd), f->old_fd, f->old_dfd};
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&f->ra_lock);
	pthread_mutex_destroy(&f->msync_lock);
	free(f);
}

/*
 * Drop a reference; the last one frees the cache.  The space's list holds
 * one until the file is unmapped (filemap_unmapped()), which writes it back
 * first: the last put has nothing to write.  Context: any but the SIGBUS
 * handler (an RCU callback, for a VMA's).
 */
void file_put(struct fl_file *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1)
		file_free(f);
}

/* Open the file of the caller's fd again, as faultline's own: buffered and,
 * where the file system takes it, O_DIRECT.  Return: 0 or a negative errno. */
static int reopen(int fd, bool writable, int *bfd, int *dfd)
{
	char path[64];
	int mode = writable ? O_RDWR : O_RDONLY;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	*bfd = open(path, mode | O_CLOEXEC);
	if (*bfd < 0) {
		/* /proc not mounted, or the file's permissions changed since
		 * the caller opened it: share the caller's open file (pread
		 * and pwrite do not move its offset), without O_DIRECT. */
		*bfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		*dfd = -1;
		return *bfd < 0 ? -errno : 0;
	}
	*dfd = open(path, mode | O_CLOEXEC | O_DIRECT);
	return 0;
}

/* Make the cache as long as the file is now (it may have grown).
 * Context: mmap_lock held for write. */
static int filemap_resize(struct fl_file *f, long long size)
{
	unsigned long pages = (unsigned long)((size + (long long)PAGE_SIZE - 1) >> PAGE_SHIFT);

	if (pages > f->max_pages)
		return -EFBIG;
	if (size <= atomic_load(&f->size))
		return 0;
	if (ftruncate(f->memfd, size))
		return -errno;
	atomic_store(&f->size, size);
	atomic_store(&f->nr_pages, pages);
	return 0;
}

/*
 * The page cache of the file open at fd, made if the space has none, and a
 * reference to it for the caller.  writable: the mapping may write to the
 * file (a shared mapping of a descriptor open for writing), so faultline's
 * own descriptors must be read-write.
 * Context: mmap_lock held for write.  Return: 0 or a negative errno
 * (-ENODEV: not a regular file; -EFBIG: larger than FILE_MAX_PAGES).
 */
int filemap_get(struct fl_space *sp, int fd, bool writable, struct fl_file **out)
{
	struct fl_file *f;
	struct stat st;
	int ret, bfd, dfd;

	mmap_assert_write_locked(sp);
	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	pthread_mutex_lock(&sp->files_lock);
	for (f = sp->files; f; f = f->next)
		if (f->dev == st.st_dev && f->ino == st.st_ino)
			break;
	if (f) {
		file_get(f);
		f->orphan = false;
	}
	pthread_mutex_unlock(&sp->files_lock);
	if (f) {
		ret = filemap_resize(f, st.st_size);
		if (!ret && writable && !atomic_load(&f->writable)) {
			/* The first writable shared mapping: read-write
			 * descriptors.  The read-only ones stay open until the
			 * file is freed (a fault may be using one). */
			ret = reopen(fd, true, &bfd, &dfd);
			if (!ret) {
				f->old_fd = atomic_exchange(&f->fd, bfd);
				f->old_dfd = atomic_exchange(&f->dfd, dfd);
				atomic_store(&f->writable, true);
			}
		}
		if (ret) {
			file_put(f);
			return ret;
		}
		*out = f;
		return 0;
	}

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->sp = sp;
	f->owner = getpid();
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->memfd = -1;
	f->old_fd = f->old_dfd = -1;
	atomic_init(&f->fd, -1);
	atomic_init(&f->dfd, -1);
	atomic_init(&f->refs, 2); /* the list's and the caller's */
	atomic_init(&f->fail_read_idx, -1);
	pthread_mutex_init(&f->ra_lock, NULL);
	pthread_mutex_init(&f->msync_lock, NULL);
	file_ra_state_init(&f->ra, FILE_RA_PAGES);
	unsigned long pages = (unsigned long)((st.st_size + (off_t)PAGE_SIZE - 1) >> PAGE_SHIFT);
	if (pages > FILE_MAX_PAGES) {
		ret = -EFBIG;
		goto fail;
	}
	f->max_pages = MIN(MAX(4 * pages, FILE_MIN_RESERVE), FILE_MAX_PAGES);
	ret = reopen(fd, writable, &bfd, &dfd);
	if (ret)
		goto fail;
	atomic_store(&f->fd, bfd);
	atomic_store(&f->dfd, dfd);
	atomic_store(&f->writable, writable);
	f->memfd = memfd_create("faultline-cache", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, st.st_size)) {
		ret = -errno;
		goto fail;
	}
	atomic_store(&f->size, st.st_size);
	atomic_store(&f->nr_pages, pages);
	f->view = mmap(NULL, f->max_pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, f->memfd, 0);
	f->state = mmap(NULL, f->max_pages * sizeof(*f->state), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (f->view == MAP_FAILED || f->state == MAP_FAILED) {
		ret = -ENOMEM;
		if (f->view == MAP_FAILED)
			f->view = NULL;
		if (f->state == MAP_FAILED)
			f->state = NULL;
		goto fail;
	}
	/* Not in a child of fork(): it has no space to serve them. */
	madvise(f->view, f->max_pages * PAGE_SIZE, MADV_DONTFORK);
	madvise((void *)f->state, f->max_pages * sizeof(*f->state), MADV_DONTFORK);
	pthread_mutex_lock(&sp->files_lock);
	f->next = sp->files;
	sp->files = f;
	pthread_mutex_unlock(&sp->files_lock);
	atomic_fetch_add(&sp->nr_files, 1);
	ws_file_mapped(sp);
	if (file_dfd(f) < 0 && !atomic_exchange(&sp->buffered_logged, true))
		fl_dbg(sp, "a mapped file's file system refuses O_DIRECT: buffered reads, "
			   "with the kernel's copy dropped after each");
	*out = f;
	return 0;
fail:
	file_free(f);
	return ret;
}

/*
 * Whether a page of f is dirty or under write-back (whose write may fail
 * and leave it dirty again).  A racy look, exact once no mapping can store
 * to f and no writer has a page of it.  Context: a reference on f.
 */
bool file_has_dirty(struct fl_file *f)
{
	unsigned long nr = atomic_load(&f->nr_pages);

	for (unsigned long i = 0; i < nr; i++)
		if (folio_state(f, i) & (PG_DIRTY | PG_WRITEBACK))
			return true;
	return false;
}

/* Whether a VMA of the space's index maps f.  Context: mmap_lock held. */
static bool file_mapped(struct fl_space *sp, struct fl_file *f)
{
	struct vma_index *idx = vma_index_get(sp);

	for (size_t i = 0; i < idx->nr; i++)
		if (idx->v[i]->file == f)
			return true;
	return false;
}

/*
 * After a write section that unmapped file mappings: a file no VMA maps any
 * more is written back and leaves the list (its cache goes with the last
 * reference).  Context: mmap_lock held for write.
 */
static void release_clean_orphans(struct fl_space *sp);

void filemap_unmapped(struct fl_space *sp)
{
	struct fl_file **pp, *f;
	bool clean;

	mmap_assert_write_locked(sp);
	for (;;) {
		pthread_mutex_lock(&sp->files_lock);
		for (pp = &sp->files; (f = *pp); pp = &f->next)
			if (!f->orphan && !file_mapped(sp, f))
				break;
		if (f)
			file_get(f);
		pthread_mutex_unlock(&sp->files_lock);
		if (!f)
			break;
		/* A write-back that fails keeps the file, dirty, as an orphan
		 * (nothing is lost at munmap): the flusher tries again, and the
		 * next unmap releases it once it is clean. */
		clean = !file_release(sp, f);
		pthread_mutex_lock(&sp->files_lock);
		for (pp = &sp->files; *pp && *pp != f; pp = &(*pp)->next)
			;
		if (clean && *pp) {
			*pp = f->next;
			atomic_fetch_sub(&sp->nr_files, 1);
		} else {
			f->orphan = true;
			clean = false;
		}
		pthread_mutex_unlock(&sp->files_lock);
		if (clean)
			file_put(f); /* the list's */
		file_put(f);
	}
	release_clean_orphans(sp);
}

/* Release the orphans that are clean now (the flusher wrote them back).
 * Context: mmap_lock held for write. */
static void release_clean_orphans(struct fl_space *sp)
{
	struct fl_file **pp, *f;

	for (;;) {
		pthread_mutex_lock(&sp->files_lock);
		for (pp = &sp->files; (f = *pp); pp = &f->next)
			if (f->orphan && !file_mapped(sp, f) && !file_has_dirty(f))
				break;
		if (f) {
			*pp = f->next;
			atomic_fetch_sub(&sp->nr_files, 1);
		}
		pthread_mutex_unlock(&sp->files_lock);
		if (!f)
			return;
		file_put(f);
	}
}

/*
 * Test-only error injection: reads of the file page that addr maps fail
 * with EIO while on.  Return: 0, or -EINVAL if addr is in no file mapping.
 */
int filemap_inject_read_error(struct fl_space *sp, const void *addr, bool on)
{
	struct vma *vma;
	int ret = -EINVAL;

	mmap_read_lock(sp);
	vma = vma_lookup(sp, (unsigned long)addr);
	if (vma && vma->file) {
		atomic_store(&vma->file->fail_read_idx,
			     on ? (long)vma_pgoff_of(vma, (unsigned long)addr) : -1);
		ret = 0;
	}
	mmap_read_unlock(sp);
	return ret;
}

/* Context: space creation.  Return: 0 or a negative errno. */
int filemap_init(struct fl_space *sp)
{
	pthread_mutex_init(&sp->files_lock, NULL);
	sp->files_inited = true;
	int ret = fileio_init(sp);
	return ret ? ret : flusher_start(sp);
}

/*
 * In a child of fork(), a space it does not get (fork_space_release()): its
 * cached files' descriptors go, set to -1 so that a last put (file_free())
 * does not close them again.  Context: the child's one thread.
 */
void filemap_fork_release(struct fl_space *sp)
{
	if (!sp->files_inited)
		return;
	for (struct fl_file *f = sp->files; f; f = f->next) {
		int fds[5] = {atomic_exchange(&f->fd, -1), atomic_exchange(&f->dfd, -1), f->old_fd,
			      f->old_dfd, f->memfd};

		for (int i = 0; i < 5; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		f->old_fd = f->old_dfd = f->memfd = -1;
	}
}

/*
 * Context: space teardown: every VMA is gone, no fault runs.  Every file is
 * written back and let go.
 */
void filemap_destroy(struct fl_space *sp)
{
	struct fl_file *f;

	if (!sp->files_inited)
		return;
	worker_stop(&sp->flusher);
	for (;;) {
		pthread_mutex_lock(&sp->files_lock);
		f = sp->files;
		if (f)
			sp->files = f->next;
		pthread_mutex_unlock(&sp->files_lock);
		if (!f)
			break;
		atomic_fetch_sub(&sp->nr_files, 1);
		if (file_release(sp, f))
			fl_log("space %p: dirty pages of a mapped file could not be written back "
			       "at "
			       "destroy: their stores are lost (file_write_errors)",
			       (void *)sp);
		file_put(f);
	}
	/* The readahead still in flight completes; then the ring goes. */
	fileio_destroy(sp);
	pthread_mutex_destroy(&sp->files_lock);
	sp->files_inited = false;
}

/* MADV_COLD: the cached pages [first, last) lose their reference bits, so
 * that the clock takes them first.  Context: a reference on f. */
void filemap_deactivate(struct fl_file *f, unsigned long first, unsigned long last)
{
	last = MIN(last, atomic_load(&f->nr_pages));
	for (unsigned long i = first; i < last; i++)
		folio_clear(f, i, PG_REF);
}