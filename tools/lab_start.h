/* SPDX-License-Identifier: MIT */
/*
 * The lab's start scenario (lab_start.c: the plan of a recorded start;
 * lab_start_run.c: its replay in a run's child, and the report): what the
 * two share.
 */
#ifndef FL_TOOLS_LAB_START_H
#define FL_TOOLS_LAB_START_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "lab.h"
#include "mman_compat.h"

#define CLUSTER_GAP (64 * MiB) /* recorded ranges closer than this: one cluster */
#define MAX_CLUSTERS 64
#define MAX_FILES 1024
#define CHUNK 8 /* touches given to a thread at a time (round robin) */

enum op { OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MADVISE, OP_MREMAP };
enum src { SRC_SERVED, SRC_KERNEL, SRC_LOADER };
enum expect { X_ZERO, X_FILE, X_PATTERN };

struct mm_ev {
	uint8_t op, src;
	int prot, flags; /* madvise: the advice */
	uint64_t addr, len, addr2, len2, off;
	int file;	 /* mmap: index in files[], -1: anonymous */
	uint32_t *need;	 /* per replay thread: its touches done before this call */
	uint32_t v0, nv; /* the pages to check before it: vpages[v0, v0 + nv) */
	bool ends;	 /* it ends the lifetime of its range's pages */
};

struct touch {
	uint64_t addr; /* recorded */
	uint32_t dep;  /* mm calls done before it */
	uint8_t write, expect;
	uint32_t tag; /* X_FILE: index in fpages; X_PATTERN: the writer's tag */
};

/* A page to check: where (recorded), and what it must hold. */
struct vpage {
	uint64_t addr;
	uint8_t expect;
	uint32_t tag;
};

/* A touched page of a file: its first word and a hash of the others. */
struct fpage {
	uint64_t w0, h;
};

struct file {
	char path[PATH_MAX];
	int fd;
	uint64_t size;
};

struct cluster {
	uint64_t start, end; /* recorded */
};

/* The live recorded mappings during the plan: a page's default content. */
struct live {
	uint64_t start, end, off;
	int file;
};

struct plan {
	char path[PATH_MAX];
	char command[512];
	struct mm_ev *ev;
	size_t nev, cev;
	struct touch *t;
	size_t nt, ct;
	unsigned int threads;
	uint32_t **order; /* per replay thread: its touches, in order */
	uint32_t *norder;
	struct vpage *vp; /* checks before mm calls, then the final ones */
	size_t nvp, cvp, final0;
	struct fpage *fp;
	size_t nfp, cfp;
	struct file files[MAX_FILES];
	unsigned int nfiles;
	struct cluster cl[MAX_CLUSTERS];
	unsigned int ncl;
	uint64_t footprint; /* distinct pages touched, bytes */
	unsigned int resident_touches, rec_threads;
	bool loaded, cache_dropped, cache_tried;
	char cache_error[128];
};

extern struct plan P;

static inline uint64_t page_hash(const uint64_t *w)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned int i = 1; i < WORDS; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

#endif
