/* SPDX-License-Identifier: MIT */
/*
 * The page cache of mapped files (filemap.c): one struct fl_file per file a
 * space maps, keyed by (st_dev, st_ino), shared by every mapping of the file
 * in the space.
 *
 * The cache is a memfd (shmem) as long as the file, and a view: a MAP_SHARED
 * mapping of the whole memfd that no userfaultfd registers, through which
 * faultline reads the file into the cache and writes it back.  The user's
 * mappings map the memfd (MAP_SHARED for MAP_SHARED, MAP_PRIVATE for
 * MAP_PRIVATE), registered for missing, minor and write-protect faults, so
 * that the kernel maps a cache page only when faultline says so
 * (UFFDIO_CONTINUE) and every first store to a clean page traps.
 *
 * Per page of the file, one 32-bit word of state (the folio's flags):
 *
 *   PG_LOCKED     the page lock: held across every change of UPTODATE,
 *                 DIRTY and WRITEBACK, the read that fills the page (a read
 *                 through the ring holds it until its completion), the
 *                 installs that map it and its write-back and eviction.
 *                 A sleeping lock: waiters set PG_WAITERS and sleep on the
 *                 word (futex), or park (PG_PARKED); folio_unlock() wakes
 *                 them.
 *   PG_UPTODATE   the memfd holds the file's page (or the newer data
 *                 stored to it): it may be mapped
 *   PG_DIRTY      stored to since it was last written back
 *   PG_WRITEBACK  being written back
 *   PG_REF        mapped or touched since the reclaim clock last passed
 *                 (set and cleared without the lock)
 *   PG_READAHEAD  the marker of a readahead window (readahead.h)
 *   PG_RECORDED   recorded in the working set (FAULTLINE_WS_RECORD)
 *   PG_ERROR      the last read of the page failed: the next fault on it
 *                 gets SIGBUS at its address, and clears it
 *   PG_PARKED     faults are parked on the page lock, on its hashed wait
 *                 queue (cont.c); set only while the page is locked
 *
 * Invariants, under the page lock: a clean page is mapped in no shared
 * mapping without write protection, so a store to it traps (page_mkwrite);
 * a page that is not UPTODATE is mapped nowhere.
 *
 * Lifetime: the space's list of files holds one reference (files_lock);
 * every VMA of the file holds one (dropped when the VMA is freed, after a
 * grace period); reclaim and the flusher hold one while they work on it.
 * The last put frees the memfd, the view and the file descriptors.
 */
#ifndef FL_FILEMAP_H
#define FL_FILEMAP_H

#include "lib.h"

#include <sys/stat.h>

#include "readahead.h"

#define PG_UPTODATE 0x01u
#define PG_DIRTY 0x02u
#define PG_LOCKED 0x04u
#define PG_WAITERS 0x08u
#define PG_REF 0x10u
#define PG_WRITEBACK 0x20u
#define PG_READAHEAD 0x40u
#define PG_RECORDED 0x80u /* in the working set being recorded (workingset.c) */
#define PG_ERROR 0x100u	  /* the last read of the page failed (fileio.c) */
#define PG_PARKED 0x200u  /* faults are parked on the page lock (cont.c) */

struct fl_space;
struct vm_fault;
struct vma;

struct fl_file {
	struct fl_space *sp; /* immutable */
	dev_t dev;	     /* immutable: the key */
	ino_t ino;	     /* immutable */
	/* Buffered descriptor of faultline's own (reopened from the caller's
	 * through /proc/self/fd), read-write if the file was ever mapped by a
	 * descriptor open for writing, and its O_DIRECT twin (-1 where the
	 * file system refuses O_DIRECT).  Replaced by a read-write pair only
	 * under mmap_lock held for write, before a shared writable mapping of
	 * the file exists; the old pair is closed when the file is freed. */
	_Atomic int fd, dfd;
	int old_fd, old_dfd; /* mmap_lock (write): the pair replaced, closed at free */
	_Atomic bool writable;
	/* The file system took the O_DIRECT open but refused an O_DIRECT read
	 * or write: buffered from then on (dfd stays open until the free). */
	_Atomic bool direct_refused;
	int memfd;			/* immutable: the cache */
	pid_t owner;			/* immutable: the process view and state are in */
	char *view;			/* immutable: max_pages pages of the memfd */
	unsigned long max_pages;	/* immutable: the view's and state's length */
	_Atomic unsigned long nr_pages; /* the cache's length in pages */
	_Atomic long long size;		/* the file's size as the cache has it */
	_Atomic uint32_t *state;	/* max_pages words: PG_* */
	_Atomic long refs;

	/* Write-back errors, as the kernel's errseq_t: wb_err_seq counts the
	 * errors (wb_err the last errno); wb_err_seen is the count the last
	 * fl_msync() reported (written under the file's msync_lock). */
	_Atomic uint32_t wb_err_seq;
	_Atomic int wb_err;
	uint32_t wb_err_seen;
	pthread_mutex_t msync_lock; /* leaf: wb_err_seen */

	/* Readahead (readahead.h): its state, under ra_lock (a leaf). */
	pthread_mutex_t ra_lock;
	struct file_ra_state ra;
	_Atomic int advice; /* enum ra_advice: the last MADV_RANDOM/SEQUENTIAL/NORMAL */

	_Atomic unsigned long hand; /* the reclaim clock's position (racy hint) */
	struct fl_file *next;	    /* files_lock: the space's list */
	/* files_lock: no VMA maps the file, but its write-back failed: it
	 * stays on the list, dirty, for the flusher to try again. */
	bool orphan;
	/* Test-only error injection: a read of this page fails with EIO
	 * (-1: none); set through filemap_inject_read_error(). */
	_Atomic long fail_read_idx;
};

/* The O_DIRECT descriptor, or -1: buffered I/O. */
static inline int file_dfd(struct fl_file *f)
{
	return atomic_load(&f->direct_refused) ? -1 : atomic_load(&f->dfd);
}

/* The page lock and the page's state (filemap.c). */
void folio_lock(struct fl_file *f, unsigned long idx);
bool folio_trylock(struct fl_file *f, unsigned long idx);
void folio_unlock(struct fl_file *f, unsigned long idx);
void folio_set(struct fl_file *f, unsigned long idx, uint32_t bits);
void folio_clear(struct fl_file *f, unsigned long idx, uint32_t bits);
void folio_start_writeback(struct fl_file *f, unsigned long idx);
void folio_end_writeback(struct fl_space *sp, struct fl_file *f, unsigned long idx, bool redirty);
uint32_t folio_state(struct fl_file *f, unsigned long idx);
void folio_mark_dirty(struct fl_space *sp, struct fl_file *f, unsigned long idx);
void folio_mark_uptodate(struct fl_space *sp, struct fl_file *f, unsigned long idx);

int filemap_inject_read_error(struct fl_space *sp, const void *addr, bool on);

int filemap_init(struct fl_space *sp);
void filemap_destroy(struct fl_space *sp);
void filemap_fork_release(struct fl_space *sp);
int filemap_get(struct fl_space *sp, int fd, bool writable, struct fl_file **out);
void file_get(struct fl_file *f);
void file_put(struct fl_file *f);
bool file_has_dirty(struct fl_file *f);
void filemap_unmapped(struct fl_space *sp);
void filemap_map_pages(struct vm_fault *vmf, struct fl_file *f, unsigned long idx);
void filemap_deactivate(struct fl_file *f, unsigned long first, unsigned long last);

int do_file_fault(struct vm_fault *vmf);
int file_policy(const struct fl_space *sp);
int vma_policy(const struct fl_space *sp, const struct vma *vma);

/* The page of vma's file that address maps. */
unsigned long vma_pgoff_of(const struct vma *vma, unsigned long address);

#endif /* FL_FILEMAP_H */
