/* SPDX-License-Identifier: MIT */
/*
 * What the store tests (tests/test_store_*.c, test_swap_errors.c) share:
 * pages of a seeded pattern, evicting a region, catching SIGBUS, where a
 * page lives in the store (through the src/ headers), a scratch directory
 * removed at exit, and running `faultline mkstore`.
 */
#ifndef FL_TEST_STORE_H
#define FL_TEST_STORE_H

#define _GNU_SOURCE
#include "pgtable.h"
#include "space.h"
#include "storefmt.h"

#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util.h"

#define PG 4096UL

static uint64_t ts_seed;

static inline uint64_t ts_word(size_t page, size_t i, uint32_t ver)
{
	uint64_t x = ts_seed ^ (page << 24) ^ ((uint64_t)ver << 52) ^ i;

	return t_splitmix64(&x);
}

static inline void ts_fill(char *p, size_t pg, uint32_t ver)
{
	for (size_t i = 0; i < PG / 8; i++)
		((uint64_t *)(p + pg * PG))[i] = ts_word(pg, i, ver);
}

static inline bool ts_intact(const char *p, size_t pg, uint32_t ver)
{
	for (size_t i = 0; i < PG / 8; i++)
		if (((const uint64_t *)(p + pg * PG))[i] != ts_word(pg, i, ver))
			return false;
	return true;
}

/* ---- SIGBUS: an access that faults ------------------------------------ */

static sigjmp_buf ts_jb;

static void ts_on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	siglongjmp(ts_jb, 1);
}

/* Before any sigbus space: faultline keeps this handler and forwards a
 * poisoned page's SIGBUS to it. */
static inline void ts_catch_sigbus(void)
{
	struct sigaction sa = {.sa_sigaction = ts_on_bus, .sa_flags = SA_SIGINFO | SA_NODEFER};

	sigaction(SIGBUS, &sa, NULL);
}

/* Return: whether reading *p got SIGBUS. */
static inline int ts_faults(volatile const char *p)
{
	if (sigsetjmp(ts_jb, 1))
		return 1;
	(void)*p;
	return 0;
}

/* Page pg holds version ver: no SIGBUS (a failed check), the right bytes. */
static inline void ts_check_page(char *p, size_t pg, uint32_t ver, const char *what)
{
	CHECK(!ts_faults(p + pg * PG), "%s: page %zu got SIGBUS (poisoned: its read failed)", what,
	      pg);
	CHECK(ts_intact(p, pg, ver), "%s: page %zu does not hold version %u", what, pg, ver);
}

/* Page pg reads as zeros (a dropped page): no SIGBUS, every byte 0. */
static inline bool ts_page_zero(char *p, size_t pg)
{
	if (ts_faults(p + pg * PG))
		return false;
	for (size_t i = 0; i < PG / 8; i++)
		if (((const uint64_t *)(p + pg * PG))[i])
			return false;
	return true;
}

/* ---- the page table and the store -------------------------------------- */

static inline uint64_t ts_pte(struct fl_space *sp, const void *a)
{
	struct pt_chunk *c = pt_chunk_lookup(sp, (unsigned long)a);

	return c ? atomic_load(&c->pte[pt_index((unsigned long)a)]) : 0;
}

/* The slot of a swapped-out page, or -1. */
static inline long ts_slot(struct fl_space *sp, const void *a)
{
	uint64_t pte = ts_pte(sp, a);

	return pte_type(pte) == PTE_SWAP ? (long)pte_value(pte) : -1;
}

/* Where the store's slots start: after a faultline store header, if the file
 * has one (read from the file itself; fd may be O_DIRECT). */
static inline off_t ts_data_off(int fd)
{
	void *buf;
	bool hdr;

	CHECK(posix_memalign(&buf, PG, PG) == 0, "memalign");
	hdr = pread(fd, buf, PG, 0) == (ssize_t)PG &&
	      !memcmp(buf, STORE_MAGIC, sizeof(STORE_MAGIC));
	free(buf);
	return hdr ? (off_t)STORE_HEADER_SIZE : 0;
}

/* Evict all n pages from p and wait until their writes are done. */
static inline void ts_evict_all(struct fl_space *sp, char *p, size_t n)
{
	struct fl_stats st = {0};

	for (int pass = 0; pass < 400; pass++) {
		CHECK(fl_madvise(sp, p, n * PG, MADV_PAGEOUT) == 0, "MADV_PAGEOUT: %s",
		      strerror(errno));
		for (int i = 0; i < 500; i++) {
			fl_stats(sp, &st);
			if (!st.frames_used)
				break;
			usleep(1000);
		}
		if (!st.resident_pages)
			return;
	}
	CHECK(0, "%llu pages still resident after repeated MADV_PAGEOUT",
	      (unsigned long long)st.resident_pages);
}

/* A region of n pages in sp, page i filled with version ver of its pattern,
 * and all of them evicted.  Return: the region. */
static inline char *ts_map_evicted(struct fl_space *sp, size_t n, uint32_t ver)
{
	char *p = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < n; i++)
		ts_fill(p, i, ver);
	ts_evict_all(sp, p, n);
	return p;
}

/* Wait (up to 10 s) until the store has discarded at least n slots. */
static inline void ts_wait_discarded(struct fl_space *sp, uint64_t n)
{
	struct fl_stats st = {0};

	for (int i = 0; i < 2000; i++) {
		fl_stats(sp, &st);
		if (st.store_discarded >= n)
			return;
		usleep(5000);
	}
	/* Not an error here: the caller checks the slots themselves. */
	fprintf(stderr, "only %llu of %llu freed slots discarded after 10 s\n",
		(unsigned long long)st.store_discarded, (unsigned long long)n);
}

/* Whether [off, off + len) of fd holds only zeros, read back. */
static inline bool ts_zeros(int fd, off_t off, off_t len)
{
	static char buf[1 << 16];

	while (len > 0) {
		size_t n = (size_t)MIN(len, (off_t)sizeof(buf));
		ssize_t r = pread(fd, buf, n, off);
		CHECK(r >= 0, "pread: %s", strerror(errno));
		if (r == 0)
			return true; /* past the end: nothing there */
		for (ssize_t i = 0; i < r; i++)
			if (buf[i])
				return false;
		off += r;
		len -= r;
	}
	return true;
}

/* ---- files ---------------------------------------------------------------- */

static char ts_dir[256];
static pid_t ts_dir_owner;

static int ts_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void ts_dir_remove(void)
{
	if (ts_dir[0] && getpid() == ts_dir_owner)
		nftw(ts_dir, ts_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* A scratch directory in $TMPDIR (or /tmp), removed at exit.  Only the
 * process that made it removes it. */
static inline const char *ts_scratch(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(ts_dir, sizeof(ts_dir), "%s/fl-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(ts_dir), "mkdtemp %s: %s", ts_dir, strerror(errno));
	ts_dir_owner = getpid();
	atexit(ts_dir_remove);
	return ts_dir;
}

/* A path in the scratch directory (kept until exit). */
static inline char *ts_path(const char *name)
{
	static char paths[32][320];
	static unsigned int n;

	CHECK(n < ARRAY_SIZE(paths), "too many paths");
	snprintf(paths[n], sizeof(paths[n]), "%s/%s", ts_dir, name);
	return paths[n++];
}

/* A file of n bytes of the seeded pattern, with the given mode. */
static inline void ts_write_file(const char *path, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	char buf[PG];

	CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	for (size_t off = 0; off < n; off += PG) {
		for (size_t i = 0; i < PG / 8; i++)
			((uint64_t *)buf)[i] = ts_word(off / PG, i, 77);
		size_t len = MIN(PG, n - off);
		CHECK(write(fd, buf, len) == (ssize_t)len, "write %s", path);
	}
	CHECK(fchmod(fd, mode) == 0 && close(fd) == 0, "close %s", path);
}

/* XXH3-free and dependency-free: FNV-1a over a file's bytes. */
static inline uint64_t ts_file_hash(const char *path)
{
	int fd = open(path, O_RDONLY);
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned char buf[1 << 16];
	ssize_t n;

	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
	close(fd);
	return h;
}

/* What must not change about a file faultline refuses. */
struct ts_file_state {
	uint64_t hash;
	off_t size;
	mode_t mode;
	struct timespec mtime;
};

static inline struct ts_file_state ts_file_state(const char *path)
{
	struct ts_file_state s;
	struct stat st;

	CHECK(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	s.hash = ts_file_hash(path);
	s.size = st.st_size;
	s.mode = st.st_mode;
	s.mtime = st.st_mtim;
	return s;
}

static inline void ts_file_unchanged(const char *path, struct ts_file_state was, const char *what)
{
	struct ts_file_state now = ts_file_state(path);

	CHECK(now.size == was.size, "%s: %s changed its size: %lld -> %lld", what, path,
	      (long long)was.size, (long long)now.size);
	CHECK(now.mode == was.mode, "%s: %s changed its mode: %o -> %o", what, path, was.mode,
	      now.mode);
	CHECK(now.hash == was.hash, "%s: %s changed its contents", what, path);
	CHECK(now.mtime.tv_sec == was.mtime.tv_sec && now.mtime.tv_nsec == was.mtime.tv_nsec,
	      "%s: %s was written to (mtime changed)", what, path);
}

/* ---- spaces ------------------------------------------------------------- */

/* A configuration with swap to path (NULL: the temporary file). */
static inline void ts_config(struct fl_config *cfg, int delivery, const char *path,
			     size_t limit_pages)
{
	CHECK(fl_config_init(cfg) == 0, "fl_config_init");
	cfg->delivery = delivery;
	cfg->mem_limit = limit_pages * PG;
	cfg->swap_path = path;
}

/* fl_space_create(), which must fail with want (a negative errno). */
static inline void ts_create_fails(struct fl_config *cfg, int want, const char *what)
{
	struct fl_space *sp = NULL;
	int ret = fl_space_create(cfg, &sp);

	CHECK(ret == want && !sp, "%s: fl_space_create gave %d (%s), not %d (%s)", what, ret,
	      strerror(-ret), want, strerror(-want));
}

static inline void ts_stderr_capture(void);
static inline char *ts_stderr_text(void);

/* fl_space_create(), its messages into *log (malloc'd; echoed too); a
 * space it made anyway is destroyed.  Return: what it returned. */
static inline int ts_try_create(struct fl_config *cfg, char **log)
{
	struct fl_space *sp = NULL;
	int ret;

	ts_stderr_capture();
	ret = fl_space_create(cfg, &sp);
	*log = ts_stderr_text();
	if (sp)
		fl_space_destroy(sp);
	return ret;
}

/* ---- running faultline mkstore ------------------------------------------ */

static char ts_bin[512];

/* build/faultline, next to build/tests/<test>. */
static inline void ts_find_faultline(const char *argv0)
{
	char *copy = strdup(argv0);

	snprintf(ts_bin, sizeof(ts_bin), "%s/../faultline", dirname(copy));
	free(copy);
	CHECK(access(ts_bin, X_OK) == 0, "%s: %s (build it: make)", ts_bin, strerror(errno));
}

/*
 * Run a command (argv, NULL-terminated), its stderr into errbuf.
 * Return: its exit status, or -1 if it did not exit.
 */
static inline int ts_run(char *const argv[], char *errbuf, size_t errlen)
{
	char tmpl[] = "/tmp/fl-store-err-XXXXXX";
	int efd = mkstemp(tmpl), status;
	pid_t pid;

	CHECK(efd >= 0, "mkstemp");
	unlink(tmpl);
	pid = t_fork();
	if (!pid) {
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 1);
		dup2(efd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	status = t_wait(pid);
	if (errbuf) {
		ssize_t n = pread(efd, errbuf, errlen - 1, 0);
		errbuf[n > 0 ? n : 0] = 0;
	}
	close(efd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* faultline mkstore [--force] path [size]. */
static inline int ts_mkstore(const char *path, const char *size, bool force, char *err,
			     size_t errlen)
{
	char *argv[6];
	int n = 0;

	argv[n++] = ts_bin;
	argv[n++] = (char *)"mkstore";
	if (force)
		argv[n++] = (char *)"--force";
	argv[n++] = (char *)path;
	if (size)
		argv[n++] = (char *)size;
	argv[n] = NULL;
	return ts_run(argv, err, errlen);
}

/*
 * Run this test program again as a child: argv0 --child ARGS..., with the
 * same seed.  A fresh process, not a fork: liburcu's call_rcu thread (which
 * fl_space_destroy() waits for) does not survive fork() in a process that
 * has used a space.  Return: the child's exit status, or -1.
 */
static inline int ts_spawn_self(char *const args[])
{
	char *argv[16], seed[32];
	int n = 0, status;
	pid_t pid;

	argv[n++] = (char *)"test_store_child";
	argv[n++] = (char *)"--child";
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(seed, sizeof(seed), "%" PRIu64, ts_seed);
	pid = t_fork();
	if (!pid) {
		setenv("FL_SEED", seed, 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	status = t_wait(pid);
	return WIFEXITED(status)     ? WEXITSTATUS(status)
	       : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
				     : -1;
}

/* In a child: the seed of the parent. */
static inline void ts_child_seed(void)
{
	const char *s = getenv("FL_SEED");

	ts_seed = s ? strtoull(s, NULL, 10) : 0;
	*t_seed_ptr() = ts_seed;
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* Capture this process's stderr into a file from here on (to count the
 * library's messages); ts_stderr_text() reads it back. */
static int ts_err_fd = -1, ts_saved_err = -1;

/* A CHECK that fails while stderr is captured exits: say it anyway. */
static void ts_stderr_dump(void)
{
	if (ts_err_fd >= 0)
		free(ts_stderr_text());
}

static inline void ts_stderr_capture(void)
{
	char tmpl[] = "/tmp/fl-store-log-XXXXXX";
	static bool registered;

	if (!registered)
		atexit(ts_stderr_dump);
	registered = true;
	fflush(stderr);
	ts_err_fd = mkstemp(tmpl);
	CHECK(ts_err_fd >= 0, "mkstemp");
	unlink(tmpl);
	ts_saved_err = dup(2);
	dup2(ts_err_fd, 2);
}

/* Stop capturing; the text captured (malloc'd), echoed to the real stderr. */
static inline char *ts_stderr_text(void)
{
	off_t n = lseek(ts_err_fd, 0, SEEK_END);
	char *s = calloc(1, (size_t)n + 1);

	fflush(stderr);
	CHECK(s && pread(ts_err_fd, s, (size_t)n, 0) == n, "read the captured stderr");
	dup2(ts_saved_err, 2);
	close(ts_saved_err);
	close(ts_err_fd);
	ts_err_fd = -1;
	fputs(s, stderr);
	return s;
}

static inline int ts_count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

#endif /* FL_TEST_STORE_H */
