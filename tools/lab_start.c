// SPDX-License-Identifier: MIT
/*
 * The lab's start scenario: a real program's start, recorded with
 * `faultline run --record` (tools/run_record.c: the format), replayed under
 * each policy and under the kernel, with a cold page cache and a budget
 * below its footprint, measured as the RFC of April 2026 measured a phone
 * app's warm start (the space lock's acquisitions, waits and their
 * histogram: lab_report.c).
 *
 * The plan (the parent, once): the trace is read; every file it maps is
 * opened (one missing fails the lab, saying which); the recorded address
 * ranges are grouped in clusters, each replayed inside a reservation of its
 * own (PROT_NONE) at a constant offset from where it was recorded; the
 * first touches are given to the replay's threads (by recorded thread if
 * there are enough of them, otherwise round robin, eight at a time; a
 * page's touches on the thread of its first, in order), each
 * touch waiting for the mm calls recorded before it, each mm call waiting
 * for the touches of its range recorded before it (so that the threads
 * overlap as far as the trace allows, and no access finds a mapping that
 * is not there yet or no longer); and what every touched page must hold is
 * worked out: zeros, the file's bytes, or the pattern of the touch that
 * wrote it.
 *
 * The run (the child): one thread, the main one, performs the mm calls in
 * order (the writers of the space lock); the others perform the touches.  A
 * write touch stores first (the fault of a first write), then checks the
 * rest of the page against what it held and writes its pattern; a read
 * touch loads first, then checks the whole page.  Before a range is
 * unmapped, dropped or moved, the pages written in it are checked; after
 * the start, every touched page still mapped is checked once more.
 */
#define _GNU_SOURCE
#define TOOL "lab"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kside.h"
#include "lab_start.h"
#include "pageset.h"
#include "toolbox.h"

struct plan P;

#define GROW(arr, n, cap)                                                       \
	do {                                                                    \
		if ((n) == (cap)) {                                             \
			size_t nc_ = (cap) ? 2 * (cap) : 1024;                  \
			void *q_ = realloc((arr), nc_ * sizeof(*(arr)));        \
			if (!q_) {                                              \
				fprintf(stderr, "lab: start: out of memory\n"); \
				exit(2);                                        \
			}                                                       \
			(arr) = q_;                                             \
			(cap) = nc_;                                            \
		}                                                               \
	} while (0)

static int prot_of(const char *s)
{
	if (strlen(s) != 3)
		return -1;
	return (s[0] == 'r' ? PROT_READ : 0) | (s[1] == 'w' ? PROT_WRITE : 0) |
	       (s[2] == 'x' ? PROT_EXEC : 0);
}

static int src_of(const char *s)
{
	return !strcmp(s, "served")   ? SRC_SERVED
	       : !strcmp(s, "kernel") ? SRC_KERNEL
	       : !strcmp(s, "loader") ? SRC_LOADER
				      : -1;
}

static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		unsigned int c;

		if (*s == '%' && sscanf(s + 1, "%2x", &c) == 1) {
			*o++ = (char)c;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

static int file_index(const char *path, char *err, size_t errlen)
{
	struct stat st;
	unsigned int i;

	for (i = 0; i < P.nfiles; i++)
		if (!strcmp(P.files[i].path, path))
			return (int)i;
	if (P.nfiles == MAX_FILES) {
		fmt(err, errlen, "more than %u files", MAX_FILES);
		return -1;
	}
	fmt(P.files[i].path, sizeof(P.files[i].path), "%s", path);
	P.files[i].fd = open(path, O_RDONLY | O_CLOEXEC);
	if (P.files[i].fd < 0 || fstat(P.files[i].fd, &st)) {
		fmt(err, errlen,
		    "the trace maps %s, which this machine does not have (%s): install it, "
		    "or replay a trace recorded here (faultline run --record)",
		    path, strerror(errno));
		return -1;
	}
	P.files[i].size = (uint64_t)st.st_size;
	P.nfiles++;
	return (int)i;
}

/* ---- the plan: a simulation of the trace in its recorded addresses ---- */

/* Per page touched in its current lifetime: what it holds, and the last
 * touch of each of (at most) two replay threads. */
struct pstate {
	uint8_t expect;
	uint32_t tag;
	uint32_t thr[2], seq[2]; /* seq: 1 + the thread's index of the touch; 0: none */
};

static struct pstate *ps;
static size_t nps, cps;
static struct pageset pages;
static struct live *lv;
static size_t nlv, clv;
static uint32_t *seq_of_thread; /* per replay thread: touches so far */
static uint32_t *need_tmp;

static void live_cut(uint64_t s, uint64_t e)
{
	size_t n = nlv;

	for (size_t i = 0; i < n; i++) {
		struct live *l = &lv[i];

		if (l->end <= s || l->start >= e)
			continue;
		if (l->start < s && l->end > e) { /* split */
			struct live r = *l;

			r.off += (e - l->start);
			r.start = e;
			l->end = s;
			GROW(lv, nlv, clv);
			lv[nlv++] = r;
			continue;
		}
		if (l->start < s) {
			l->end = s;
		} else if (l->end > e) {
			l->off += e - l->start;
			l->start = e;
		} else {
			l->start = l->end = 0; /* gone */
		}
	}
}

static const struct live *live_at(uint64_t a)
{
	for (size_t i = 0; i < nlv; i++)
		if (a >= lv[i].start && a < lv[i].end)
			return &lv[i];
	return NULL;
}

static void need_of(uint64_t a, uint32_t *v, void *arg)
{
	const struct pstate *s = &ps[*v];

	(void)a;
	(void)arg;
	for (int k = 0; k < 2; k++)
		if (s->seq[k] && s->seq[k] > need_tmp[s->thr[k]])
			need_tmp[s->thr[k]] = s->seq[k];
}

static void check_written(uint64_t a, uint32_t *v, void *arg)
{
	(void)arg;
	if (ps[*v].expect == X_PATTERN) {
		GROW(P.vp, P.nvp, P.cvp);
		P.vp[P.nvp++] = (struct vpage){a, X_PATTERN, ps[*v].tag};
	}
}

static void check_any(uint64_t a, uint32_t *v, void *arg)
{
	(void)arg;
	GROW(P.vp, P.nvp, P.cvp);
	P.vp[P.nvp++] = (struct vpage){a, ps[*v].expect, ps[*v].tag};
}

/* What a page holds before anyone wrote it in this lifetime. */
static int default_of(uint64_t a, uint32_t *tag, char *err, size_t errlen)
{
	const struct live *l = live_at(a);
	struct file *f;
	uint64_t pg[WORDS];
	ssize_t got;
	uint64_t off;

	if (!l) {
		fmt(err, errlen, "a touch of %#" PRIx64 ", which no mapping of the trace covers",
		    a);
		return -1;
	}
	if (l->file < 0)
		return X_ZERO;
	f = &P.files[l->file];
	off = l->off + (a - l->start);
	if (off >= f->size)
		return -2; /* past the end: SIGBUS, no touch there */
	memset(pg, 0, sizeof(pg));
	got = pread(f->fd, pg, PAGE, (off_t)off);
	if (got < 0) {
		fmt(err, errlen, "reading %s: %s", f->path, strerror(errno));
		return -1;
	}
	GROW(P.fp, P.nfp, P.cfp);
	P.fp[P.nfp] = (struct fpage){pg[0], page_hash(pg)};
	*tag = (uint32_t)P.nfp++;
	return X_FILE;
}

/* Which replay thread a touch goes to. */
static unsigned int thread_of(int32_t tid, size_t n, int32_t *tids, unsigned int *ntids)
{
	unsigned int i;

	if (P.rec_threads < P.threads)
		return (unsigned int)(n / CHUNK) % P.threads;
	for (i = 0; i < *ntids; i++)
		if (tids[i] == tid)
			return i % P.threads;
	return 0;
}

static int plan_touch(int32_t tid, uint64_t a, bool w, int32_t *tids, unsigned int *ntids,
		      char *err, size_t errlen)
{
	uint32_t *v = ps_find(&pages, a), tag = 0;
	struct pstate *s;
	unsigned int k = thread_of(tid, P.nt, tids, ntids);
	struct touch *t;
	int x;

	if (!v) {
		x = default_of(a, &tag, err, errlen);
		if (x == -2)
			return 0;
		if (x < 0)
			return -1;
		v = ps_add(&pages, a);
		if (!v) {
			fmt(err, errlen, "out of memory");
			return -1;
		}
		GROW(ps, nps, cps);
		*v = (uint32_t)nps;
		ps[nps++] = (struct pstate){.expect = (uint8_t)x, .tag = tag};
		P.footprint += PAGE;
	}
	s = &ps[*v];
	/* A page's touches stay in order: on the thread of its first one. */
	if (s->seq[0])
		k = s->thr[0];
	GROW(P.t, P.nt, P.ct);
	t = &P.t[P.nt];
	*t = (struct touch){a, (uint32_t)P.nev, w, s->expect, s->tag};
	if (w) { /* after the store: its pattern */
		s->expect = X_PATTERN;
		s->tag = (uint32_t)P.nt + 1;
	}
	/* The thread's touch, for the mm calls after it. */
	seq_of_thread[k]++;
	if (s->seq[0] && s->thr[0] != k && (!s->seq[1] || s->thr[1] == k)) {
		s->thr[1] = k;
		s->seq[1] = seq_of_thread[k];
	} else {
		s->thr[0] = k;
		s->seq[0] = seq_of_thread[k];
	}
	GROW(P.order[k], P.norder[k], P.norder[P.threads + k]);
	P.order[k][P.norder[k]++] = (uint32_t)P.nt++;
	return 0;
}

/* The mm call: what it waits for, what is checked before it, and what it
 * does to the pages and the mappings. */
static int plan_mm(struct mm_ev *e, char *err, size_t errlen)
{
	uint64_t s = e->addr, end = e->addr + ((e->len + PAGE - 1) & ~(PAGE - 1));

	memset(need_tmp, 0, P.threads * sizeof(*need_tmp));
	ps_each_in(&pages, s, end, need_of, NULL);
	e->need = malloc(P.threads * sizeof(*e->need));
	if (!e->need) {
		fmt(err, errlen, "out of memory");
		return -1;
	}
	memcpy(e->need, need_tmp, P.threads * sizeof(*e->need));
	e->ends = e->op == OP_MMAP || e->op == OP_MUNMAP || e->op == OP_MREMAP ||
		  (e->op == OP_MADVISE &&
		   (e->flags == MADV_DONTNEED || e->flags == MADV_FREE || e->flags == MADV_REMOVE));
	e->v0 = (uint32_t)P.nvp;
	if (e->ends && e->op != OP_MREMAP)
		ps_each_in(&pages, s, end, check_written, NULL);
	e->nv = (uint32_t)(P.nvp - e->v0);
	if (e->op == OP_MREMAP) {
		/* The pages move with their contents: states to the new range. */
		uint64_t ns = e->addr2, nlen = (e->len2 + PAGE - 1) & ~(PAGE - 1);
		struct pageset moved;

		if (ps_init(&moved, 64)) {
			fmt(err, errlen, "out of memory");
			return -1;
		}
		for (uint64_t a = s; a < end; a += PAGE) {
			uint32_t *v = ps_find(&pages, a);

			if (v && a - s < nlen) {
				uint32_t *m = ps_add(&moved, ns + (a - s));

				if (m)
					*m = *v;
			}
		}
		ps_del_range(&pages, s, end);
		ps_del_range(&pages, ns, ns + nlen);
		for (size_t i = 0; i < moved.cap; i++)
			if (moved.key[i] > PS_TOMB) {
				uint32_t *v = ps_add(&pages, moved.key[i]);

				if (v)
					*v = moved.val[i];
			}
		ps_free(&moved);
		for (size_t i = 0; i < nlv; i++)
			if (lv[i].start == s && lv[i].end <= end) {
				uint64_t l = lv[i].end - lv[i].start;

				lv[i].end = ns + (l < nlen ? l : nlen);
				lv[i].start = ns;
			}
		return 0;
	}
	if (e->ends)
		ps_del_range(&pages, s, end);
	if (e->op == OP_MMAP || e->op == OP_MUNMAP)
		live_cut(s, end);
	if (e->op == OP_MMAP) {
		GROW(lv, nlv, clv);
		lv[nlv++] = (struct live){s, end, e->off, e->file};
	}
	return 0;
}

static void add_range(uint64_t s, uint64_t len, struct cluster *r, size_t *n, size_t cap)
{
	if (*n < cap && len)
		r[(*n)++] = (struct cluster){s, s + ((len + PAGE - 1) & ~(PAGE - 1))};
}

static int cmp_range(const void *a, const void *b)
{
	const struct cluster *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The recorded ranges, in clusters: each replayed in a reservation. */
static int make_clusters(char *err, size_t errlen)
{
	size_t n = 0, cap = 2 * P.nev + 1;
	struct cluster *r = calloc(cap, sizeof(*r));

	if (!r) {
		fmt(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < P.nev; i++) {
		add_range(P.ev[i].addr, P.ev[i].len, r, &n, cap);
		if (P.ev[i].op == OP_MREMAP)
			add_range(P.ev[i].addr2, P.ev[i].len2, r, &n, cap);
	}
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 0; i < n; i++) {
		struct cluster *c = P.ncl ? &P.cl[P.ncl - 1] : NULL;

		if (c && r[i].start < c->end + CLUSTER_GAP) {
			if (r[i].end > c->end)
				c->end = r[i].end;
			continue;
		}
		if (P.ncl == MAX_CLUSTERS) {
			free(r);
			fmt(err, errlen,
			    "the trace's mappings are spread over more than %u clusters",
			    MAX_CLUSTERS);
			return -1;
		}
		P.cl[P.ncl++] = r[i];
	}
	free(r);
	return 0;
}

/*
 * Read and plan the trace (the parent, once, before any run).  Return: 0,
 * or -1 with err saying why (a file it maps missing here, a malformed line).
 */
int lab_start_load(const struct lab_opts *opt, char *err, size_t errlen)
{
	char line[PATH_MAX + 256];
	int32_t tids[MAX_THREADS * 4];
	unsigned int ntids = 0, lineno = 1;
	size_t ntouch_lines = 0;
	FILE *in;

	if (P.loaded)
		return 0;
	fmt(P.path, sizeof(P.path), "%s", opt->trace);
	in = fopen(P.path, "re");
	if (!in) {
		fmt(err, errlen, "the trace %s: %s", P.path, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), in) || strncmp(line, "faultline-trace 1", 17)) {
		fmt(err, errlen, "%s is not a trace of faultline run --record (version 1)", P.path);
		fclose(in);
		return -1;
	}
	/* First pass: the recorded threads that touch (how to give touches out). */
	while (fgets(line, sizeof(line), in)) {
		long long tid;
		char op[16];

		if (line[0] == '#' || sscanf(line, "%*u %lld %15s", &tid, op) != 2 ||
		    strcmp(op, "touch"))
			continue;
		ntouch_lines++;
		unsigned int i;

		for (i = 0; i < ntids && tids[i] != (int32_t)tid; i++)
			;
		if (i == ntids && ntids < sizeof(tids) / sizeof(tids[0]))
			tids[ntids++] = (int32_t)tid;
	}
	P.rec_threads = ntids;
	P.threads = opt->threads ? opt->threads : scen_defs[SC_START].threads;
	P.order = calloc(P.threads, sizeof(*P.order));
	P.norder = calloc(2 * P.threads, sizeof(*P.norder));
	seq_of_thread = calloc(P.threads, sizeof(*seq_of_thread));
	need_tmp = calloc(P.threads, sizeof(*need_tmp));
	if (!P.order || !P.norder || !seq_of_thread || !need_tmp ||
	    ps_init(&pages, ntouch_lines + 64)) {
		fmt(err, errlen, "out of memory");
		fclose(in);
		return -1;
	}
	rewind(in);
	while (fgets(line, sizeof(line), in)) {
		char op[16], a[6][64], path[PATH_MAX];
		unsigned long long t;
		long long tid;
		int n, pos = 0;
		struct mm_ev e = {.file = -1};

		lineno++;
		if (lineno == 2)
			continue; /* the header */
		if (line[0] == '#') {
			if (!strncmp(line, "# command: ", 11) && !P.command[0]) {
				fmt(P.command, sizeof(P.command), "%s", line + 11);
				P.command[strcspn(P.command, "\n")] = 0;
				unescape(P.command);
			}
			continue;
		}
		if (sscanf(line, "%llu %lld %15s %n", &t, &tid, op, &pos) < 3 || !pos)
			goto bad;
		n = sscanf(line + pos, "%63s %63s %63s %63s %63s %63s %4095s", a[0], a[1], a[2],
			   a[3], a[4], a[5], path);
		if (!strcmp(op, "touch")) {
			if (n < 2 || (strcmp(a[1], "r") && strcmp(a[1], "w")))
				goto bad;
			if (n >= 3 && !strcmp(a[2], "resident"))
				P.resident_touches++;
			if (plan_touch((int32_t)tid, strtoull(a[0], NULL, 16), a[1][0] == 'w', tids,
				       &ntids, err, errlen))
				goto fail;
			continue;
		}
		if (!strcmp(op, "mmap") && n == 7) {
			e.op = OP_MMAP;
			e.prot = prot_of(a[2]);
			e.flags = (int)strtoul(a[3], NULL, 16);
			e.off = strtoull(a[4], NULL, 16);
			e.src = (uint8_t)src_of(a[5]);
			if (strcmp(path, "-")) {
				unescape(path);
				e.file = file_index(path, err, errlen);
				if (e.file < 0)
					goto fail;
			}
			if (e.prot < 0 || src_of(a[5]) < 0)
				goto bad;
		} else if (!strcmp(op, "munmap") && n == 3) {
			e.op = OP_MUNMAP;
			e.src = (uint8_t)src_of(a[2]);
		} else if (!strcmp(op, "mprotect") && n == 4) {
			e.op = OP_MPROTECT;
			e.prot = prot_of(a[2]);
			e.src = (uint8_t)src_of(a[3]);
			if (e.prot < 0)
				goto bad;
		} else if (!strcmp(op, "madvise") && n == 4) {
			e.op = OP_MADVISE;
			e.flags = atoi(a[2]);
			e.src = (uint8_t)src_of(a[3]);
		} else if (!strcmp(op, "mremap") && n == 6) {
			e.op = OP_MREMAP;
			e.addr2 = strtoull(a[2], NULL, 16);
			e.len2 = strtoull(a[3], NULL, 16);
			e.flags = (int)strtoul(a[4], NULL, 16);
			e.src = (uint8_t)src_of(a[5]);
		} else {
			goto bad;
		}
		e.addr = strtoull(a[0], NULL, 16);
		e.len = strtoull(a[1], NULL, 16);
		if ((e.addr & (PAGE - 1)) || !e.len || e.src == (uint8_t)-1)
			goto bad;
		if (plan_mm(&e, err, errlen))
			goto fail;
		GROW(P.ev, P.nev, P.cev);
		P.ev[P.nev++] = e;
	}
	fclose(in);
	/* The final checks: every touched page still mapped. */
	P.final0 = P.nvp;
	for (size_t i = 0; i < pages.cap; i++)
		if (pages.key[i] > PS_TOMB)
			check_any(pages.key[i], &pages.val[i], NULL);
	if (!P.nt) {
		fmt(err, errlen, "%s has no touches", P.path);
		return -1;
	}
	if (make_clusters(err, errlen))
		return -1;
	P.loaded = true;
	return 0;
bad:
	fmt(err, errlen, "%s line %u: not a trace line: %.80s", P.path, lineno, line);
fail:
	fclose(in);
	return -1;
}

size_t lab_start_footprint(void)
{
	return P.footprint;
}

/*
 * Before each run: the page cache dropped (written back first), so that
 * every file page the start touches comes from the disk, as on a cold
 * start.  Root only; otherwise said under the table.
 */
void lab_start_before_run(void)
{
	int fd;

	P.cache_tried = true;
	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "3", 1) != 1) {
		fmt(P.cache_error, sizeof(P.cache_error), "%s", strerror(errno));
		P.cache_dropped = false;
	} else {
		P.cache_dropped = true;
	}
	if (fd >= 0)
		close(fd);
}
