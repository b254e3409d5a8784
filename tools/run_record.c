// SPDX-License-Identifier: MIT
/*
 * faultline run --record FILE (FAULTLINE_RUN_RECORD): a trace of the
 * program's start, replayed by the lab's start scenario (tools/lab_start.c).
 *
 * What it holds, in the order of time (README, "The lab": start):
 *   - every mm call the preload serves or passes to the kernel (mmap with
 *     its length, protection, flags, and for a file its path and offset;
 *     munmap, mprotect, madvise, mremap), the heap's extent calls included,
 *     with the time and the calling thread;
 *   - the loader's file mappings, which no preload sees: those of
 *     /proc/self/maps when the recording starts (the program and its
 *     libraries; not the preload's own libraries), after each dlopen(), and
 *     at the end (libc's own mappings, a locale archive), each VMA as one
 *     mmap with the protection it has then;
 *   - the first touches of pages: of the served regions from faultline's
 *     fault path (the touch log, src/touchlog.c: every fault, of which the
 *     first read and the first write of each page in each lifetime of its
 *     mapping are kept), and of the loader's file mappings from
 *     /proc/self/pagemap at the end (the pages present then, marked
 *     `resident`, placed right after their mapping: the kernel does not say
 *     when they were touched, and its fault-around maps up to 16 pages per
 *     fault).
 *
 * The format (version 1): text; a header line "faultline-trace 1"; comment
 * lines starting with '#'; then one event a line:
 *
 *   T TID mmap ADDR LEN PROT FLAGS OFF SRC PATH
 *   T TID munmap ADDR LEN SRC
 *   T TID mprotect ADDR LEN PROT SRC
 *   T TID madvise ADDR LEN ADVICE SRC
 *   T TID mremap OLD OLDLEN NEW NEWLEN FLAGS SRC
 *   T TID touch ADDR r|w fault|resident
 *
 * T: nanoseconds since the recording began; TID: the thread; ADDR, LEN,
 * OFF, FLAGS: hex (ADDR: where the call mapped, for mmap its result);
 * PROT: r, w, x or - each; ADVICE: decimal; SRC: served (faultline served
 * it), kernel (passed to the kernel) or loader; PATH: the file (spaces,
 * '%' and control characters as %XX) or - for anonymous memory.
 *
 * The recording ends at exit, or FAULTLINE_RUN_RECORD_SECONDS after it
 * began (a start is the first seconds), whichever comes first.
 * Everything here runs at the preload's raw depth (its callers see to it):
 * its memory is the kernel's, not the space's.
 */
#define _GNU_SOURCE
#include "run_record.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "faultline.h"
#include "pageset.h"
#include "touchlog.h"

#define REC_PAGE 4096UL
#define REC_MAX (1UL << 20)	  /* mm events at most */
#define REC_TOUCH_MAX (1UL << 23) /* faults at most */
#define REC_STRINGS (8UL << 20)	  /* bytes of paths */
#define REC_LOADER_MAX 8192	  /* loader VMAs known */

/* What the preload links in from the library (hidden). */
bool space_has_addr(struct fl_space *s, unsigned long addr);
void *fl_raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int fl_raw_munmap(void *addr, size_t len);

struct rec_ev {
	uint64_t t; /* ns since the start; 0: not published yet */
	int32_t tid;
	uint8_t op, src;
	int32_t prot, flags; /* madvise: the advice */
	uint64_t addr, len, addr2, len2, off;
	uint32_t path; /* offset in strings, 0: none */
	uint32_t seq;  /* order of publication (ties of t) */
};

struct loader_vma {
	uint64_t start, end, off;
	int prot;
	uint32_t path;
};

bool rec_on;
static struct fl_space *rsp;
/* FAULTLINE_RUN_RECORD, and the file written (run_out_path()). */
static char rec_path[PATH_MAX], out_path[PATH_MAX];
static uint64_t t0;
static struct rec_ev *ev;
static _Atomic size_t nev;
static char *strings;
static _Atomic size_t nstrings = 1;
static _Atomic bool finished, finishing;
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct loader_vma loader[REC_LOADER_MAX];
static size_t nloader;
/* The address ranges of the preload and of the libraries only it needs:
 * not the program's. */
static struct {
	uint64_t start, end;
} excluded[64];
static unsigned int nexcluded;

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int32_t tid(void)
{
	return (int32_t)syscall(SYS_gettid);
}

static uint32_t intern(const char *s)
{
	size_t n = strlen(s) + 1, at = atomic_fetch_add(&nstrings, n);

	if (at + n > REC_STRINGS)
		return 0;
	memcpy(strings + at, s, n);
	return (uint32_t)at;
}

static struct rec_ev *claim(void)
{
	size_t i;

	if (!rec_on || atomic_load(&finished))
		return NULL;
	i = atomic_fetch_add(&nev, 1);
	return i < REC_MAX ? &ev[i] : NULL;
}

static void publish(struct rec_ev *e, uint64_t t)
{
	e->seq = (uint32_t)(e - ev);
	__atomic_store_n(&e->t, t > t0 ? t - t0 : 1, __ATOMIC_RELEASE);
}

void rec_mm(enum rec_op op, enum rec_src src, const void *addr, size_t len, int prot, int flags,
	    int fd, off_t off, const void *addr2, size_t len2)
{
	struct rec_ev *e = claim();
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (!e)
		return;
	*e = (struct rec_ev){.tid = tid(),
			     .op = (uint8_t)op,
			     .src = (uint8_t)src,
			     .prot = prot,
			     .flags = flags,
			     .addr = (uintptr_t)addr,
			     .len = len,
			     .addr2 = (uintptr_t)addr2,
			     .len2 = len2,
			     .off = (uint64_t)off};
	if (op == REC_MMAP && fd >= 0) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, path, sizeof(path) - 1);
		if (n > 0) {
			path[n] = 0;
			e->path = intern(path);
		}
	}
	publish(e, now());
}

/* ---- the loader's mappings ------------------------------------------- */

static bool is_excluded(uint64_t a)
{
	for (unsigned int i = 0; i < nexcluded; i++)
		if (a >= excluded[i].start && a < excluded[i].end)
			return true;
	return false;
}

struct obj {
	uint64_t base;
	const ElfW(Phdr) * ph;
	unsigned int phnum;
	char name[256];
	bool needed;
};

static struct obj objs[128];
static unsigned int nobjs;

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct obj *o;

	(void)size;
	(void)arg;
	if (nobjs == sizeof(objs) / sizeof(objs[0]))
		return 1;
	o = &objs[nobjs++];
	o->base = info->dlpi_addr;
	o->ph = info->dlpi_phdr;
	o->phnum = info->dlpi_phnum;
	snprintf(o->name, sizeof(o->name), "%s", info->dlpi_name ? info->dlpi_name : "");
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Mark what o needs (DT_NEEDED), and what they need. */
static void mark_needed(struct obj *o)
{
	const ElfW(Dyn) *dyn = NULL;
	const char *strtab = NULL;

	if (o->needed)
		return;
	o->needed = true;
	for (unsigned int i = 0; i < o->phnum; i++)
		if (o->ph[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(o->base + o->ph[i].p_vaddr);
	if (!dyn)
		return;
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_STRTAB)
			/* glibc relocates it in place; an unrelocated one is
			 * below the object's base */
			strtab = (const char *)(d->d_un.d_ptr < o->base ? o->base + d->d_un.d_ptr
									: d->d_un.d_ptr);
	if (!strtab)
		return;
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
		if (d->d_tag != DT_NEEDED)
			continue;
		for (unsigned int j = 0; j < nobjs; j++)
			if (!strcmp(base_name(objs[j].name), strtab + d->d_un.d_val))
				mark_needed(&objs[j]);
	}
}

/*
 * The objects loaded at start that the program does not need (the preload
 * and the libraries only it needs): their address ranges are excluded.
 */
static void exclude_preload(void)
{
	nobjs = 0;
	dl_iterate_phdr(collect, NULL);
	for (unsigned int i = 0; i < nobjs; i++)
		if (i == 0 || strstr(objs[i].name, "ld-linux") || !objs[i].name[0])
			mark_needed(&objs[i]); /* the program, the loader, the vdso */
	for (unsigned int i = 0; i < nobjs; i++) {
		uint64_t lo = UINT64_MAX, hi = 0;

		if (objs[i].needed || nexcluded == sizeof(excluded) / sizeof(excluded[0]))
			continue;
		for (unsigned int j = 0; j < objs[i].phnum; j++) {
			const ElfW(Phdr) *p = &objs[i].ph[j];

			if (p->p_type != PT_LOAD)
				continue;
			if (objs[i].base + p->p_vaddr < lo)
				lo = objs[i].base + p->p_vaddr;
			if (objs[i].base + p->p_vaddr + p->p_memsz > hi)
				hi = objs[i].base + p->p_vaddr + p->p_memsz;
		}
		if (hi > lo) {
			excluded[nexcluded].start = lo & ~(REC_PAGE - 1);
			excluded[nexcluded++].end = (hi + REC_PAGE - 1) & ~(REC_PAGE - 1);
		}
	}
}

static int prot_of(const char *perms)
{
	return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
	       (perms[2] == 'x' ? PROT_EXEC : 0);
}

/*
 * /proc/self/maps: every file VMA not seen before (and not the space's, not
 * excluded) becomes a loader mmap event now.
 */
void rec_loader_scan(void)
{
	char line[PATH_MAX + 128];
	uint64_t t = now();
	FILE *f;

	if (!rec_on || atomic_load(&finished))
		return;
	pthread_mutex_lock(&scan_lock);
	f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off;
		char perms[8], *path;
		int pos = 0;
		size_t i;

		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &s, &e, perms, &off, &pos) < 4 ||
		    !pos)
			continue;
		path = line + pos;
		path[strcspn(path, "\n")] = 0;
		if (path[0] != '/' || !strncmp(path, "/memfd:", 7) || !strncmp(path, "/dev/", 5) ||
		    strstr(path, " (deleted)") || perms[3] != 'p' || is_excluded(s) ||
		    space_has_addr(rsp, (unsigned long)s))
			continue;
		for (i = 0; i < nloader; i++)
			if (loader[i].start == s && loader[i].end == e && loader[i].off == off)
				break;
		if (i < nloader || nloader == REC_LOADER_MAX)
			continue;
		loader[nloader] = (struct loader_vma){s, e, off, prot_of(perms), intern(path)};
		{
			struct rec_ev *x = claim();

			if (x) {
				*x = (struct rec_ev){.tid = tid(),
						     .op = REC_MMAP,
						     .src = REC_LOADER,
						     .prot = loader[nloader].prot,
						     .flags = MAP_PRIVATE | MAP_FIXED,
						     .addr = s,
						     .len = e - s,
						     .off = off,
						     .path = loader[nloader].path};
				publish(x, t);
			}
		}
		nloader++;
	}
	if (f)
		fclose(f);
	pthread_mutex_unlock(&scan_lock);
}

/* ---- the trace ------------------------------------------------------- */

/* One line of the trace, before sorting: an mm event or a touch. */
struct item {
	uint64_t t;
	uint32_t seq; /* mm events: their order; touches after the events of the same t */
	int32_t tid;
	bool touch, write, resident;
	uint64_t addr;
	const struct rec_ev *e;
};

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->touch != y->touch)
		return x->touch ? 1 : -1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void put_path(FILE *out, const char *p)
{
	for (; *p; p++)
		if (*p <= ' ' || *p == '%' || (unsigned char)*p >= 127)
			fprintf(out, "%%%02X", (unsigned char)*p);
		else
			fputc(*p, out);
}

static const char *prot_str(int prot, char *b)
{
	b[0] = prot & PROT_READ ? 'r' : '-';
	b[1] = prot & PROT_WRITE ? 'w' : '-';
	b[2] = prot & PROT_EXEC ? 'x' : '-';
	b[3] = 0;
	return b;
}

static const char *const src_name[] = {"served", "kernel", "loader"};

/* Whether an event ends the lifetime of the pages of a range: its touches
 * after it are first touches again.  The range: *s, *e. */
static bool ends_lifetime(const struct rec_ev *e, uint64_t *s, uint64_t *end)
{
	*s = e->addr;
	*end = e->addr + ((e->len + REC_PAGE - 1) & ~(REC_PAGE - 1));
	switch (e->op) {
	case REC_MMAP:
	case REC_MUNMAP:
	case REC_MREMAP: /* the old range; the new one is a new mapping */
		return true;
	case REC_MADVISE:
		return e->flags == MADV_DONTNEED || e->flags == MADV_FREE ||
		       e->flags == MADV_REMOVE;
	default:
		return false;
	}
}

static void write_trace(void)
{
	size_t n = atomic_load(&nev), nt = 0, dropped = 0, ni = 0, kept = 0, calls = 0;
	const struct touch_ent *te = NULL;
	struct item *it;
	struct pageset seen;
	FILE *out;
	char pb[4];

	if (n > REC_MAX)
		n = REC_MAX;
	touch_log_stop(rsp);
	nt = touch_log_entries(rsp, &te, &dropped);
	/* The loader's pages present now: touched, at their mapping's time. */
	size_t nres = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	for (size_t i = 0; i < n; i++)
		if (ev[i].t && ev[i].src == REC_LOADER)
			nres += ev[i].len / REC_PAGE;
	it = calloc(n + nt + nres + 1, sizeof(*it));
	run_out_path(out_path, sizeof(out_path), rec_path); /* a fork child's own */
	out = fopen(out_path, "we");
	if (!it || !out || ps_init(&seen, nt + nres + 1024)) {
		fprintf(stderr, "faultline run: cannot write the trace %s: %s\n", out_path,
			strerror(errno ? errno : ENOMEM));
		if (out)
			fclose(out);
		free(it);
		if (pm >= 0)
			close(pm);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rec_ev *e = &ev[i];
		uint64_t t = __atomic_load_n(&e->t, __ATOMIC_ACQUIRE);

		if (!t)
			continue;
		it[ni++] = (struct item){.t = t, .seq = e->seq, .tid = e->tid, .e = e};
		if (e->src != REC_LOADER || pm < 0)
			continue;
		for (uint64_t a = e->addr; a < e->addr + e->len; a += REC_PAGE) {
			uint64_t ent;

			if (pread(pm, &ent, sizeof(ent), (off_t)(a / REC_PAGE * 8)) !=
				    sizeof(ent) ||
			    !(ent >> 63 & 1))
				continue;
			it[ni++] = (struct item){.t = t,
						 .seq = e->seq,
						 .tid = e->tid,
						 .touch = true,
						 .resident = true,
						 .addr = a};
		}
	}
	for (size_t i = 0; i < nt; i++) {
		uint64_t t = __atomic_load_n(&te[i].t_ns, __ATOMIC_ACQUIRE);

		if (!t)
			continue;
		it[ni++] = (struct item){.t = t > t0 ? t - t0 : 1,
					 .seq = (uint32_t)i,
					 .tid = te[i].tid,
					 .touch = true,
					 .write = te[i].page & 1,
					 .addr = te[i].page & ~(REC_PAGE - 1)};
	}
	if (pm >= 0)
		close(pm);
	qsort(it, ni, sizeof(*it), cmp_item);
	fprintf(out, "faultline-trace 1\n");
	fprintf(out, "# recorded by faultline run --record (tools/run_record.c): pid %d\n",
		(int)getpid());
	{
		char cmd[4096];
		int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
		ssize_t m = fd >= 0 ? read(fd, cmd, sizeof(cmd) - 1) : -1;

		if (fd >= 0)
			close(fd);
		if (m > 0) {
			fprintf(out, "# command:");
			for (ssize_t k = 0; k < m; k += (ssize_t)strlen(cmd + k) + 1) {
				cmd[m] = 0;
				fputc(' ', out);
				put_path(out, cmd + k);
			}
			fputc('\n', out);
		}
	}
	if (dropped || atomic_load(&nev) > REC_MAX)
		fprintf(out, "# INCOMPLETE: %zu faults and %zu mm calls did not fit\n", dropped,
			atomic_load(&nev) > REC_MAX ? atomic_load(&nev) - REC_MAX : 0);
	for (size_t i = 0; i < ni; i++) {
		const struct item *x = &it[i];
		const struct rec_ev *e = x->e;
		uint64_t s, end;

		if (x->touch) {
			uint32_t *v = ps_add(&seen, x->addr);
			unsigned int bit = x->write ? 2 : 1;

			if (!v || (*v & bit) || (bit == 1 && (*v & 2)))
				continue; /* not a first touch in this lifetime */
			*v |= bit;
			kept++;
			fprintf(out, "%" PRIu64 " %d touch %" PRIx64 " %c %s\n", x->t, x->tid,
				x->addr, x->write ? 'w' : 'r', x->resident ? "resident" : "fault");
			continue;
		}
		if (ends_lifetime(e, &s, &end))
			ps_del_range(&seen, s, end);
		calls++;
		fprintf(out, "%" PRIu64 " %d ", x->t, x->tid);
		switch (e->op) {
		case REC_MMAP:
			fprintf(out, "mmap %" PRIx64 " %" PRIx64 " %s %x %" PRIx64 " %s ", e->addr,
				e->len, prot_str(e->prot, pb), (unsigned int)e->flags, e->off,
				src_name[e->src]);
			if (e->path)
				put_path(out, strings + e->path);
			else
				fputc('-', out);
			break;
		case REC_MUNMAP:
			fprintf(out, "munmap %" PRIx64 " %" PRIx64 " %s", e->addr, e->len,
				src_name[e->src]);
			break;
		case REC_MPROTECT:
			fprintf(out, "mprotect %" PRIx64 " %" PRIx64 " %s %s", e->addr, e->len,
				prot_str(e->prot, pb), src_name[e->src]);
			break;
		case REC_MADVISE:
			fprintf(out, "madvise %" PRIx64 " %" PRIx64 " %d %s", e->addr, e->len,
				e->flags, src_name[e->src]);
			break;
		case REC_MREMAP:
			fprintf(out, "mremap %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64 " %x %s",
				e->addr, e->len, e->addr2, e->len2, (unsigned int)e->flags,
				src_name[e->src]);
			break;
		}
		fputc('\n', out);
	}
	if (fclose(out))
		fprintf(stderr, "faultline run: writing the trace %s: %s\n", out_path,
			strerror(errno));
	else
		fprintf(stderr,
			"faultline run: a trace of %zu mm calls and %zu first touches in %s\n",
			calls, kept, out_path);
	ps_free(&seen);
	free(it);
}

/* The end of the recording: at exit, or after FAULTLINE_RUN_RECORD_SECONDS. */
void rec_finish(void)
{
	if (!rec_on || atomic_exchange(&finishing, true))
		return;
	rec_loader_scan(); /* libc's own mappings meanwhile */
	atomic_store(&finished, true);
	write_trace();
}

static void *timer_main(void *arg)
{
	double secs = *(double *)arg;
	struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	rec_finish();
	return NULL;
}

/*
 * Context: the preload's constructor, at raw depth, the space made.  A
 * failure is said and the program runs unrecorded.
 */
void rec_init(struct fl_space *sp)
{
	const char *path = getenv("FAULTLINE_RUN_RECORD"),
		   *secs = getenv("FAULTLINE_RUN_RECORD_SECONDS");
	static double seconds;
	pthread_t th;
	int ret;

	if (!path || !*path)
		return;
	rsp = sp;
	snprintf(rec_path, sizeof(rec_path), "%s", path);
	t0 = now();
	ev = fl_raw_mmap(NULL, REC_MAX * sizeof(*ev), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	strings = fl_raw_mmap(NULL, REC_STRINGS, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ret = ev == MAP_FAILED || strings == MAP_FAILED ? -ENOMEM
							: touch_log_start(sp, REC_TOUCH_MAX);
	if (ret) {
		fprintf(stderr, "faultline run: cannot record: %s\n", strerror(-ret));
		return;
	}
	exclude_preload();
	rec_on = true;
	rec_loader_scan();
	if (secs && *secs) {
		seconds = strtod(secs, NULL);
		if (seconds > 0 && pthread_create(&th, NULL, timer_main, &seconds) == 0)
			pthread_detach(th);
	}
}
