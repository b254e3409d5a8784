/* SPDX-License-Identifier: MIT */
/*
 * faultline: the Linux kernel's page-fault machinery in user space, on
 * userfaultfd.
 *
 * An application maps regions with fl_mmap() and uses them as ordinary
 * memory.  faultline serves every page fault in them itself, under the
 * kernel's two-level locking: one address-space lock and a lock per VMA.
 *
 * The mm calls (fl_mmap, fl_munmap, fl_mprotect, fl_madvise, fl_mremap)
 * behave as the libc calls they mirror: same return values, errno set on failure.  Every
 * other call returns 0 or a negative errno value.
 *
 * This is the only public header.
 */
#ifndef FAULTLINE_H
#define FAULTLINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FL_VERSION_MAJOR 0
#define FL_VERSION_MINOR 2
#define FL_VERSION_STRING "0.2.0"

struct fl_space;

/* How page faults reach faultline (FAULTLINE_DELIVERY). */
enum fl_delivery {
	/*
	 * Handler threads read the userfaultfd and resolve faults.  Works for
	 * every access, including one made by the kernel inside a system call
	 * (read(2) into an untouched page blocks until the page is served).
	 */
	FL_DELIVERY_THREAD = 0,
	/*
	 * UFFD_FEATURE_SIGBUS: the faulting thread resolves its own fault in a
	 * SIGBUS handler.  Faster, but an access from inside a system call
	 * fails with EFAULT instead of faulting (see README).
	 */
	FL_DELIVERY_SIGBUS = 1,
};

/*
 * What a fault does with its locks while it waits for a page under I/O
 * (FAULTLINE_POLICY); ARCHITECTURE.md section 2 and the README.
 */
enum fl_policy {
	FL_POLICY_MMAP = 0,	/* no VMA locks: mmap_lock, dropped for the wait */
	FL_POLICY_BAIL = 1,	/* under a VMA lock: retry at once, wait under mmap */
	FL_POLICY_DROP = 2,	/* drop the VMA lock, wait, retry under mmap_lock */
	FL_POLICY_DROP_VMA = 3, /* drop the VMA lock, wait, take it again */
	FL_POLICY_HOLD = 4,	/* keep the VMA read lock through the wait */
	FL_POLICY_V2 = 5,	/* Barry Song's v2 (2026): drop-vma for I/O; a page
				 * already up to date but locked is waited for
				 * keeping the VMA lock, without a retry */
	FL_POLICY_V2_ANON = 6,	/* v2 for anonymous VMAs, drop for file VMAs (the
				 * anonymous-only option of LSFMM+BPF 2026) */
};
#define FL_POLICY_NR 7

/*
 * Names of the policies ("mmap", "bail", "drop", "drop-vma", "hold") and of
 * the deliveries ("thread", "sigbus"), as FAULTLINE_POLICY and
 * FAULTLINE_DELIVERY spell them.  *_name() returns NULL for a value out of
 * range; *_by_name() takes a name in any case and returns its value, or
 * -EINVAL.
 */
const char *fl_policy_name(int policy);
int fl_policy_by_name(const char *name);
const char *fl_delivery_name(int delivery);
int fl_delivery_by_name(const char *name);

/*
 * Configuration.  fl_config_init() fills in the defaults and then applies the
 * FAULTLINE_* environment variables; fields the caller sets afterwards
 * override both.  The struct starts with its own size so that it can grow:
 * fl_config_init() sets it, and fl_space_create() reads only the fields that
 * fit in the size the caller was built with.
 */
struct fl_config {
	size_t size;		       /* sizeof(struct fl_config), set by init */
	unsigned int handlers;	       /* FAULTLINE_HANDLERS: handler threads */
	unsigned int handler_spin_us;  /* FAULTLINE_HANDLER_SPIN: after serving a
					* fault, a handler polls this long for the
					* next one before it sleeps, while fewer
					* threads fault than there are CPUs; 0: never */
	int delivery;		       /* FAULTLINE_DELIVERY: enum fl_delivery */
	unsigned int fault_around;     /* FAULTLINE_FAULT_AROUND: first-touch
					* window in pages (1 disables it) */
	unsigned int fault_around_max; /* FAULTLINE_FAULT_AROUND_MAX: the
					* window grows up to this on
					* sequential first touch */
	int verbose;		       /* FAULTLINE_VERBOSE: log to stderr */
	/* Swap. */
	size_t mem_limit;		/* FAULTLINE_MEM_LIMIT: resident bytes; 0 = none */
	const char *swap_path;		/* FAULTLINE_SWAP: a store formatted by
					 * `faultline mkstore` (a file or block device,
					 * never through a symbolic link, used by one
					 * space at a time: else fl_space_create() fails
					 * with -EINVAL, -ELOOP or -EBUSY), or a Redis
					 * Cluster: "redis-cluster://HOST:PORT[,...]";
					 * NULL = an unlinked temporary file in $TMPDIR */
	int policy;			/* FAULTLINE_POLICY: enum fl_policy */
	unsigned int swap_frames;	/* FAULTLINE_SWAP_FRAMES: I/O buffers (pages) */
	size_t watermark;		/* FAULTLINE_WATERMARK: free bytes the background
					 * reclaimer keeps under the limit; 0 = limit/32 */
	unsigned int swap_delay_us;	/* FAULTLINE_SWAP_DELAY: emulated extra latency per
					 * store I/O, microseconds (0 = none): each I/O
					 * still goes to the store, and completes no
					 * earlier than this after its submission */
	int swap_create;		/* FAULTLINE_SWAP_CREATE: create and format the
					 * store at swap_path if nothing is there (a new
					 * file, mode 0600); an existing file or device
					 * must be a faultline store */
	int swap_encrypt;		/* FAULTLINE_SWAP_ENCRYPT: encrypt and authenticate
					 * every page written to the store, with a key
					 * that lives only in this space's memory.
					 * Without it every page still carries a
					 * checksum, checked on every read */
	int zswap;			/* FAULTLINE_ZSWAP: the compressed tier in front of
					 * the store, enum fl_zswap: pages evicted are
					 * kept compressed in memory first */
	size_t zswap_max;		/* FAULTLINE_ZSWAP_MAX: the tier's share of
					 * mem_limit, in bytes (its pool counts against
					 * the budget); 0 = a fifth of mem_limit */
	int zswap_keep_incompressible;	/* FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE: keep a
					 * page that does not compress in the tier as
					 * it is, as the kernel's zswap does since
					 * 6.18; 0 (the default): write it to the store,
					 * as it leaves the budget to resident pages */
	unsigned int remote_replicas;	/* FAULTLINE_REMOTE_REPLICAS: with a Redis
					 * Cluster store, a write is done when this
					 * many replicas have it (WAIT) */
	unsigned int remote_timeout_us; /* FAULTLINE_REMOTE_TIMEOUT: a Redis command
					 * still unanswered after this fails (a
					 * read poisons its page) */
	int prefetch;			/* FAULTLINE_PREFETCH: prefetch along the trends of
					 * major faults (strides, interleaved streams)
					 * besides sequential readahead; on by default */
	/* Files (0.2). */
	unsigned int dirty_background_ratio; /* FAULTLINE_DIRTY_BACKGROUND_RATIO: the
					      * flusher writes dirty file pages back
					      * once they exceed this per cent of the
					      * budget (default 10) */
	unsigned int dirty_ratio;	     /* FAULTLINE_DIRTY_RATIO: a store that
					      * would dirty a page beyond this per
					      * cent of the budget waits for the
					      * flusher (default 20) */
	int file_policy; /* the policy of faults on file mappings (FAULTLINE_POLICY=
			  * anon=NAME,file=NAME sets both kinds); -1: the same as
			  * policy, which is then every fault's */
	/* Working sets of mapped files (snapshot restore). */
	const char *ws_record; /* FAULTLINE_WS_RECORD: at destroy, write to this file
				* the pages of mapped files in the order faults
				* first touched them */
	const char *ws_replay; /* FAULTLINE_WS_REPLAY: a file written so: read its
				* pages into the page cache in that order, in the
				* background, as their files are mapped */
	/* fork() (0.3). */
	int fork; /* FAULTLINE_FORK: a child of fork() gets the space, its
		   * anonymous regions as they were at the fork (resident or
		   * swapped out), its own writes private, served by its own
		   * copy of the space with its own budget (README "fork()");
		   * 0: regions are not inherited (MADV_DONTFORK) */
	/* Fault delivery (0.3). */
	unsigned int handler_pin; /* FAULTLINE_HANDLER_PIN: thread delivery, when
				   * the process may use at most this many CPUs,
				   * a handler thread is pinned to each, and
				   * while fewer threads fault than there are
				   * CPUs a fault wakes each, so that the one on
				   * the faulting thread's CPU serves it (README
				   * "Fault delivery"); 0: never */
};

/* The compressed tier's compressor (FAULTLINE_ZSWAP: off, lz4, zstd, lzo).
 * LZO is LZO1X-1, the format of the kernel's "lzo" (zswap's default). */
enum fl_zswap {
	FL_ZSWAP_OFF = 0,
	FL_ZSWAP_LZ4 = 1,
	FL_ZSWAP_ZSTD = 2,
	FL_ZSWAP_LZO = 3,
};

/*
 * Defaults, then the environment (ignored in a setuid, setgid or otherwise
 * privileged process).  A bad value of an option that protects memory or data
 * (FAULTLINE_MEM_LIMIT, _WATERMARK, _POLICY, _DELIVERY, _SWAP_CREATE,
 * _SWAP_ENCRYPT) is marked invalid, and fl_space_create() fails with -EINVAL
 * until the field is set right; a bad value of another option keeps its
 * default.  Either is reported once on stderr.
 * Return: 0 or -EINVAL (cfg NULL).
 */
int fl_config_init(struct fl_config *cfg);

/*
 * Create an address space.  cfg NULL means defaults plus environment.
 * Return: 0 and *out set, or a negative errno (-ENOSYS without userfaultfd,
 * -EINVAL for a bad configuration, -ENOMEM, -ENOTSUP in a child of fork()
 * of a process that had spaces, none made with cfg.fork, ...).
 */
int fl_space_create(const struct fl_config *cfg, struct fl_space **out);

/*
 * fork(2), for a process with spaces made with cfg.fork (FAULTLINE_FORK):
 * the child gets each such space as it was at the fork, served by its own
 * copy (README "fork()").  A plain fork() does the same through faultline's
 * atfork handlers; fl_fork() differs where a space cannot be given to the
 * child (its swap store could not be copied; a space with file mappings,
 * the compressed tier or a working-set record or replay): it fails with -1
 * and errno (ENOSPC, EIO, EOPNOTSUPP, ...), where fork() gives the child
 * that space's regions unmapped.  What can be seen before the fork is
 * checked before fork() is called (no child is made); the spaces are
 * quiesced and their stores copied in faultline's atfork prepare handler,
 * after the program's own (which may touch the spaces' regions), and a
 * failure found there ends the child at once, in faultline's atfork child
 * handler (status 127; it is reaped before fl_fork() returns).
 * Return: as fork(2).
 */
pid_t fl_fork(void);

/*
 * Handles.  Every call that takes a struct fl_space * first looks the
 * handle up among the live spaces, by its value: a handle that is not one
 * (destroyed, or never created) fails with EINVAL (the mm calls, in errno)
 * or -EINVAL, and nothing is read through it.  What cannot be detected: a
 * handle whose memory a newer space happens to reuse names that space.
 */

/*
 * Destroy the space: new calls on it fail with EINVAL from now on; wait for
 * the calls in flight; unmap everything it mapped (an access to a region
 * after that is SIGSEGV, as after munmap); wait for the faults in flight;
 * stop and join its threads; free it.  A handle that is not a live space
 * (destroyed already, or being destroyed by another thread) is logged, and
 * nothing is done.
 */
void fl_space_destroy(struct fl_space *sp);

/*
 * The mm calls, with mmap(2)'s arguments (the API of 0.1 had no fd and no
 * offset: version 0.2 changed it).
 *
 * Anonymous memory: MAP_PRIVATE | MAP_ANONYMOUS, fd -1 (ignored), offset 0
 * (a multiple of the page size), plus any of MAP_FIXED, MAP_FIXED_NOREPLACE,
 * MAP_NORESERVE, MAP_POPULATE and MAP_STACK.
 *
 * A file: MAP_SHARED (or MAP_SHARED_VALIDATE) or MAP_PRIVATE of a regular
 * file open for reading, at a page-aligned offset, with the same optional
 * flags (MAP_POPULATE excepted).  The pages come from faultline's page cache
 * of the file (one per space, shared by every mapping of the file in it):
 * stores to a MAP_SHARED mapping reach the file (fl_msync(), the background
 * flusher, fl_munmap() and fl_space_destroy() write them back); the first
 * store to a page of a MAP_PRIVATE mapping copies it, and the copy is
 * anonymous memory.  An access past the end of the file gets SIGBUS, as
 * with mmap(2).  The errors are mmap(2)'s: EBADF, EACCES (the file's open
 * mode), ENODEV (not a regular file), EINVAL, EOVERFLOW.
 *
 * Anything else (shared anonymous memory, MAP_GROWSDOWN, MAP_HUGETLB,
 * MAP_LOCKED, ...) is refused with EINVAL.
 *
 * fl_mmap() with MAP_FIXED over a range that another space of the process
 * maps (or is mapping at that moment) fails with EEXIST, as
 * MAP_FIXED_NOREPLACE does over a range in use: two spaces serving one range
 * would lose each other's data.
 *
 * fl_munmap() and fl_mprotect() act only on the space's own VMAs: a range
 * the space does not manage is treated as unmapped and left untouched.  So is
 * a region unmapped behind faultline's back (the libc munmap, unsupported):
 * faultline drops it from the space without touching those addresses, which
 * may be someone else's by then (counted in stale_drops).
 *
 * fl_madvise() supports MADV_DONTNEED (anonymous pages read as zeros again,
 * their swap copies are freed; a shared file mapping's pages read back from
 * the page cache, a private one's copies are discarded), MADV_NORMAL,
 * MADV_RANDOM and MADV_SEQUENTIAL (file readahead), and MADV_PAGEOUT (evict
 * now), MADV_WILLNEED (start reading swapped pages, or a file's pages) and
 * MADV_COLD (the pages lose their reference bits); other advice values fail
 * with EINVAL.  Without a memory limit the swap advices succeed and do
 * nothing for anonymous memory, as the kernel's do without swap.
 *
 * fl_msync() is msync(2): MS_ASYNC writes the dirty pages of the range's
 * shared file mappings back, MS_SYNC too and then fsync()s the file, and
 * MS_INVALIDATE drops the clean cached pages of the range, so that the next
 * access reads what the file holds now.  EINVAL for bad flags or an
 * unaligned address, ENOMEM for a range with unmapped parts, EIO (or the
 * write's errno, e.g. ENOSPC) when a write-back of the file failed since the
 * last fl_msync() of it reported one: the page stays dirty.
 */
void *fl_mmap(struct fl_space *sp, void *addr, size_t len, int prot, int flags, int fd,
	      off_t offset);
int fl_munmap(struct fl_space *sp, void *addr, size_t len);
int fl_mprotect(struct fl_space *sp, void *addr, size_t len, int prot);
int fl_madvise(struct fl_space *sp, void *addr, size_t len, int advice);
int fl_msync(struct fl_space *sp, void *addr, size_t len, int flags);

/*
 * mremap(2) on the space's memory, with the kernel's semantics and errno:
 * MREMAP_MAYMOVE, MREMAP_FIXED and MREMAP_DONTUNMAP (new_address, the
 * sixth argument, is read when flags has one of the last two); shrinking
 * in place, growing in place when the range after the VMA is free, moving
 * otherwise; a fixed move of the same length may span several VMAs.
 * Resident pages move without a copy where the kernel allows (UFFDIO_MOVE:
 * a writable VMA, a page not shared with a child of fork()), swapped-out
 * pages and pages in the swap cache without any I/O.  A destination that
 * another space maps fails with EEXIST, as fl_mmap() does.
 */
void *fl_mremap(struct fl_space *sp, void *old_address, size_t old_size, size_t new_size, int flags,
		...);

/* The space's VMAs, in /proc/pid/maps format.  Return: 0 or -errno. */
int fl_maps(struct fl_space *sp, FILE *out);

/*
 * Statistics.  One list, FL_STATS_FIELDS, generates the struct, the text
 * printer and the JSON printer, so they cannot drift apart.
 *
 * X(name, kind, description): kind is FL_COUNTER (monotonic), FL_GAUGE
 * (current value) or FL_NSEC (nanoseconds).
 */
#define FL_STATS_FIELDS(X)                                                                        \
	X(faults, FL_COUNTER, "page faults served")                                               \
	X(faults_read, FL_COUNTER, "faults on a read access")                                     \
	X(faults_write, FL_COUNTER, "faults on a write access")                                   \
	X(faults_spurious, FL_COUNTER, "faults on a page already present")                        \
	X(faults_bad, FL_COUNTER, "faults outside any VMA or against its protection")             \
	X(faults_repaired, FL_COUNTER, "present pages the kernel did not have: served again")     \
	X(stale_drops, FL_COUNTER, "ranges unmapped behind faultline's back, dropped")            \
	X(remap_moved, FL_COUNTER, "resident pages mremap moved without a copy")                  \
	X(remap_copied, FL_COUNTER, "resident pages mremap copied (read-only, shared)")           \
	X(pages_zero_mapped, FL_COUNTER, "pages mapped to the zero page")                         \
	X(pages_zero_filled, FL_COUNTER, "private zero-filled pages installed")                   \
	X(fault_around_pages, FL_COUNTER, "pages installed beyond the faulting one")              \
	X(uffd_eagain, FL_COUNTER, "userfaultfd ioctls that returned EAGAIN")                     \
	X(vma_lock_success, FL_COUNTER, "faults handled under a VMA lock")                        \
	X(vma_lock_abort, FL_COUNTER, "VMA lock not taken: fell back to the space lock")          \
	X(vma_lock_retry, FL_COUNTER, "faults retried under the space lock")                      \
	X(vma_lock_miss, FL_COUNTER, "VMA found detached after locking: looked again")            \
	X(file_vma_lock_success, FL_COUNTER, "of vma_lock_success, faults on file VMAs")          \
	X(file_vma_lock_abort, FL_COUNTER, "of vma_lock_abort, faults on file VMAs")              \
	X(file_vma_lock_retry, FL_COUNTER, "of vma_lock_retry, faults on file VMAs")              \
	X(mmap_read_locks, FL_COUNTER, "space-lock read acquisitions")                            \
	X(mmap_read_wait_ns, FL_NSEC, "total time waited for the space lock, read")               \
	X(mmap_write_locks, FL_COUNTER, "space-lock write acquisitions")                          \
	X(mmap_write_wait_ns, FL_NSEC, "total time waited for the space lock, write")             \
	X(mmap_read_wait_1us, FL_COUNTER, "space-lock reads that waited < 1 us, or none")         \
	X(mmap_read_wait_10us, FL_COUNTER, "space-lock reads that waited 1-10 us")                \
	X(mmap_read_wait_100us, FL_COUNTER, "space-lock reads that waited 10-100 us")             \
	X(mmap_read_wait_1ms, FL_COUNTER, "space-lock reads that waited 100 us-1 ms")             \
	X(mmap_read_wait_10ms, FL_COUNTER, "space-lock reads that waited 1-10 ms")                \
	X(mmap_read_wait_100ms, FL_COUNTER, "space-lock reads that waited 10-100 ms")             \
	X(mmap_read_wait_long, FL_COUNTER, "space-lock reads that waited 100 ms or more")         \
	X(mmap_write_wait_1us, FL_COUNTER, "space-lock writes that waited < 1 us, or none")       \
	X(mmap_write_wait_10us, FL_COUNTER, "space-lock writes that waited 1-10 us")              \
	X(mmap_write_wait_100us, FL_COUNTER, "space-lock writes that waited 10-100 us")           \
	X(mmap_write_wait_1ms, FL_COUNTER, "space-lock writes that waited 100 us-1 ms")           \
	X(mmap_write_wait_10ms, FL_COUNTER, "space-lock writes that waited 1-10 ms")              \
	X(mmap_write_wait_100ms, FL_COUNTER, "space-lock writes that waited 10-100 ms")           \
	X(mmap_write_wait_long, FL_COUNTER, "space-lock writes that waited 100 ms or more")       \
	X(vma_write_wait_ns, FL_NSEC, "total time writers waited for VMA locks")                  \
	X(faults_major, FL_COUNTER, "faults that needed a read (store or compressed tier)")       \
	X(faults_minor, FL_COUNTER, "faults served from the swap cache, no I/O")                  \
	X(faults_wp, FL_COUNTER, "first writes to clean pages (write-protect faults)")            \
	X(faults_polled, FL_COUNTER, "fault messages a polling handler found: no wake-up needed") \
	X(faults_stale, FL_COUNTER,                                                               \
	  "fault messages whose page was paged out after they were read: not served")             \
	X(handler_wakeups_empty, FL_COUNTER, "handler wake-ups that found no fault message")      \
	X(handler_msgs_one, FL_COUNTER,                                                           \
	  "fault messages pinned handlers read one at a time (tier or no store)")                 \
	X(swap_ins, FL_COUNTER, "pages swapped in (from the store or the compressed tier)")       \
	X(swap_outs, FL_COUNTER, "pages written to the store")                                    \
	X(reads_wasted, FL_COUNTER, "pages read, then reclaimed before any fault used them")      \
	X(prefetch_used, FL_COUNTER, "pages read ahead (stream or trend) that a fault used")      \
	X(prefetch_wasted, FL_COUNTER, "pages read ahead, then reclaimed unused")                 \
	X(prefetch_window, FL_GAUGE, "the most pages one readahead may read now (adaptive)")      \
	X(clean_drops, FL_COUNTER, "pages evicted without a write: their copy was valid")         \
	X(zero_drops, FL_COUNTER, "pages evicted as all-zero: no write, no slot")                 \
	X(read_errors, FL_COUNTER, "store reads that failed (the page is poisoned)")              \
	X(write_errors, FL_COUNTER, "store writes that failed (the page stays resident)")         \
	X(pages_poisoned, FL_COUNTER, "pages poisoned after a read error")                        \
	X(checksum_errors, FL_COUNTER, "store reads that failed their checksum (poisoned)")       \
	X(store_full, FL_COUNTER, "times the store filled up: dirty pages stayed resident")       \
	X(store_discarded, FL_COUNTER, "freed store slots discarded (zeroed, BLKDISCARD)")        \
	X(reclaim_direct, FL_COUNTER, "pages evicted by faults (direct reclaim)")                 \
	X(reclaim_beside, FL_COUNTER, "of those, evicted beside another evictor, not waiting")    \
	X(reclaim_background, FL_COUNTER, "pages evicted by the background reclaimer")            \
	X(parked, FL_COUNTER, "faults parked on a page under I/O")                                \
	X(parked_ns, FL_NSEC, "total time faults spent parked")                                   \
	X(lock_waits_kept, FL_COUNTER,                                                            \
	  "waits for the lock of a page already up to date, the VMA lock kept (hold, v2)")        \
	X(retries_completion, FL_COUNTER, "retries run at I/O completion: space lock free")       \
	X(retries_queued, FL_COUNTER, "retries left to a handler: the space lock was taken")      \
	X(store_reads, FL_COUNTER, "pages read from the store (I/O; not the compressed tier)")    \
	X(store_writes, FL_COUNTER, "pages written to the store (I/O; writebacks included)")      \
	X(zswap_stores, FL_COUNTER, "pages the compressed tier took, compressed")                 \
	X(zswap_same_filled, FL_COUNTER, "pages the compressed tier took as one repeated word")   \
	X(zswap_incompressible, FL_COUNTER,                                                       \
	  "pages that did not compress: to the store, or kept as they are (KEEP_INCOMPRESSIBLE)") \
	X(zswap_full, FL_COUNTER, "pages refused while the compressed tier was full")             \
	X(zswap_busy, FL_COUNTER, "pages refused while every compression context was in use")     \
	X(zswap_ctx_waits, FL_COUNTER, "tier loads that slept for a free decompression context")  \
	X(zswap_hits, FL_COUNTER, "swap-ins served by the compressed tier, without I/O")          \
	X(zswap_load_retries, FL_COUNTER,                                                         \
	  "tier loads that read again: their entry or its object changed meanwhile")              \
	X(zswap_load_locked, FL_COUNTER, "tier loads that took the tier's lock after retries")    \
	X(zswap_second_chances, FL_COUNTER,                                                       \
	  "tier pages passed over by writeback: loaded since it last looked")                     \
	X(zswap_writebacks, FL_COUNTER, "pages written back from the compressed tier")            \
	X(zswap_compactions, FL_COUNTER, "compaction passes over the compressed tier's pool")     \
	X(zswap_compacted, FL_COUNTER, "compressed pages moved by compaction")                    \
	X(zswap_errors, FL_COUNTER, "tier pages that did not decompress, writebacks refused")     \
	X(zswap_pages, FL_GAUGE, "pages the compressed tier holds")                               \
	X(zswap_incompressible_pages, FL_GAUGE, "of them, pages held as they are")                \
	X(zswap_stored_bytes, FL_GAUGE, "compressed bytes the tier holds")                        \
	X(zswap_pool_bytes, FL_GAUGE, "memory of the tier's pool (counts against the budget)")    \
	X(zswap_ratio_pct, FL_GAUGE, "compression ratio x100: bytes of pages held per pool byte") \
	X(zswap_load_ns_p50, FL_NSEC, "compressed-tier hit (decompression), median")              \
	X(zswap_load_ns_p99, FL_NSEC, "compressed-tier hit (decompression), 99th percentile")     \
	X(zswap_load_ns_max, FL_NSEC, "compressed-tier hit (decompression), maximum")             \
	X(store_read_ns_p50, FL_NSEC, "store read, submission to completion, median")             \
	X(store_read_ns_p99, FL_NSEC, "store read, 99th percentile")                              \
	X(store_read_ns_max, FL_NSEC, "store read, maximum")                                      \
	X(store_write_ns_p50, FL_NSEC, "store write, submission to completion, median")           \
	X(store_write_ns_p99, FL_NSEC, "store write, 99th percentile")                            \
	X(store_write_ns_max, FL_NSEC, "store write, maximum")                                    \
	X(remote_failovers, FL_COUNTER, "Redis Cluster: masters replaced after a failure")        \
	X(remote_redirects, FL_COUNTER, "Redis Cluster: MOVED and ASK redirections followed")     \
	X(remote_retries, FL_COUNTER, "Redis Cluster: commands sent again (lost node, ...)")      \
	X(remote_lost, FL_COUNTER, "Redis Cluster: pages no node had (poisoned)")                 \
	X(remote_timeouts, FL_COUNTER, "Redis Cluster: I/Os unanswered in time (failed)")         \
	X(remote_errors, FL_COUNTER, "Redis Cluster: I/Os refused by the server")                 \
	X(io_inflight_max, FL_GAUGE, "most store I/Os in flight at once")                         \
	X(io_inflight_mean, FL_GAUGE, "mean store I/Os in flight, at submission")                 \
	X(store_bytes, FL_GAUGE, "bytes of the store in use")                                     \
	X(frames_used, FL_GAUGE, "I/O frames holding a page (swap cache, writeback)")             \
	X(resident_pages, FL_GAUGE, "pages present in the space")                                 \
	X(file_faults_major, FL_COUNTER, "file faults that read the file")                        \
	X(file_faults_minor, FL_COUNTER, "file faults served from the page cache")                \
	X(file_faults_wp, FL_COUNTER, "first writes to clean shared file pages")                  \
	X(file_faults_cow, FL_COUNTER, "first writes to private file pages (copied)")             \
	X(file_reads, FL_COUNTER, "pages read from files into the page cache")                    \
	X(file_writebacks, FL_COUNTER, "pages written back to their files")                       \
	X(file_read_errors, FL_COUNTER, "file reads that failed (the page is poisoned)")          \
	X(file_write_errors, FL_COUNTER, "file write-backs that failed (the page stays dirty)")   \
	X(file_evictions, FL_COUNTER, "page-cache pages evicted")                                 \
	X(file_pages, FL_GAUGE, "pages in the page cache")                                        \
	X(file_dirty, FL_GAUGE, "dirty pages in the page cache")                                  \
	X(file_writeback, FL_GAUGE, "page-cache pages under write-back")                          \
	X(files, FL_GAUGE, "files with a page cache in the space")                                \
	X(ws_recorded, FL_COUNTER, "pages recorded in the working set (FAULTLINE_WS_RECORD)")     \
	X(ws_replayed, FL_COUNTER, "pages of a recorded working set read ahead by replay")        \
	X(vmas, FL_GAUGE, "VMAs in the space")                                                    \
	X(mapped_bytes, FL_GAUGE, "bytes mapped in the space")                                    \
	X(pgtable_bytes, FL_GAUGE, "bytes of page-state metadata")                                \
	X(fault_ns_p50, FL_NSEC, "fault service time, median")                                    \
	X(fault_ns_p90, FL_NSEC, "fault service time, 90th percentile")                           \
	X(fault_ns_p99, FL_NSEC, "fault service time, 99th percentile")                           \
	X(fault_ns_p999, FL_NSEC, "fault service time, 99.9th percentile")                        \
	X(fault_ns_max, FL_NSEC, "fault service time, maximum")                                   \
	X(fault_ns_mean, FL_NSEC, "fault service time, mean")

#define FL_COUNTER 0
#define FL_GAUGE 1
#define FL_NSEC 2

struct fl_stats {
#define FL_STATS_MEMBER_(name, kind, desc) uint64_t name;
	FL_STATS_FIELDS(FL_STATS_MEMBER_)
#undef FL_STATS_MEMBER_
};

/* Return: 0 or -EINVAL. */
int fl_stats(struct fl_space *sp, struct fl_stats *out);

#define FL_STATS_JSON 0x1 /* one JSON object instead of text */

/* Return: 0 or a negative errno. */
int fl_stats_print(struct fl_space *sp, FILE *out, int flags);

/* Print an already-taken snapshot (same formats). */
int fl_stats_print_snapshot(const struct fl_stats *st, FILE *out, int flags);

/*
 * What this kernel's userfaultfd offers, as UFFD_FEATURE_* bits (the
 * UFFDIO_API answer).  Return: 0 or a negative errno (-ENOSYS, -EPERM).
 */
int fl_uffd_features(uint64_t *features);

/*
 * How many faults of the calling thread faultline has served in that thread
 * (sigbus delivery: its SIGBUS handler), for any space, since the thread
 * started.  In thread delivery handler threads serve the faults and this stays
 * 0; the kernel then counts each served fault in the faulting thread's
 * getrusage(RUSAGE_THREAD) ru_majflt, because the access is retried.
 * Async-signal-safe.
 */
uint64_t fl_thread_faults(void);

#ifdef __cplusplus
}
#endif

#endif /* FAULTLINE_H */
