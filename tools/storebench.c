// SPDX-License-Identifier: MIT
/*
 * faultline storebench: what the store's integrity layer (src/store.c) costs
 * per page, against anchors measured in the same run: a 4 KiB memcpy (what
 * eviction's copy of a page costs) and a 4 KiB O_DIRECT read of a file in
 * $TMPDIR at queue depth 1 (what a swap-in waits for anyway).  For each
 * seal: XXH3-128 (the checksum), AES-256-GCM and XChaCha20-Poly1305 (the
 * encryption), sealing a page for its write and checking (decrypting) it
 * after its read.  Rounds alternate their order; figures are medians over
 * the rounds, with their spread.  Not a test.  See BENCHMARKS.md.
 */
#define _GNU_SOURCE
#define TOOL "storebench"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "toolbox.h"

int storebench_main(int argc, char **argv);

#define MAX_ROUNDS 101

struct fig {
	const char *name;
	double v[MAX_ROUNDS];
	int n;
};

static double fig_median(struct fig *f)
{
	double s[MAX_ROUNDS];

	memcpy(s, f->v, sizeof(double) * (size_t)f->n);
	return median(s, (unsigned int)f->n);
}

static void spread(struct fig *f, double *lo, double *hi)
{
	*lo = *hi = f->v[0];
	for (int i = 1; i < f->n; i++) {
		*lo = f->v[i] < *lo ? f->v[i] : *lo;
		*hi = f->v[i] > *hi ? f->v[i] : *hi;
	}
}

static void usage(FILE *out)
{
	fprintf(out, "usage: faultline storebench [--rounds N] [--pages N] [--reads N]\n"
		     "\n"
		     "The cost per page of the store's checksum and encryption, against a 4 KiB\n"
		     "memcpy and a 4 KiB O_DIRECT read in $TMPDIR, medians over rounds.\n"
		     "  -r, --rounds N   rounds (default 15)\n"
		     "  -p, --pages N    pages sealed and checked per round (default 1024, the\n"
		     "                   default number of frames)\n"
		     "      --reads N    4 KiB reads per round for the anchor (default 2000)\n");
}

/* Seal and check every page once; ns per page into seal and open. */
static int seal_round(struct store *st, char *pages, char *bounce, char *rb, unsigned int n,
		      double *seal, double *open)
{
	uint64_t t0 = now_ns();

	for (unsigned int i = 0; i < n; i++)
		store_seal(st, i, 0x7f0000000000UL + i * 4096UL, pages + i * 4096UL,
			   bounce + i * 4096UL);
	uint64_t t1 = now_ns();
	/* What the store would hand back: the bytes written. */
	memcpy(rb, st->cipher == STORE_PLAIN ? pages : bounce, (size_t)n * 4096);
	uint64_t t2 = now_ns();
	for (unsigned int i = 0; i < n; i++)
		if (store_unseal(st, i, 0x7f0000000000UL + i * 4096UL, rb + i * 4096UL))
			return -1;
	uint64_t t3 = now_ns();
	if (memcmp(rb, pages, (size_t)n * 4096))
		return -1;
	*seal = (double)(t1 - t0) / n;
	*open = (double)(t3 - t2) / n;
	return 0;
}

enum { OPT_READS = 256 };

/* The options (parse_options()): name, key, argument, what it does. */
#define STOREBENCH_OPTIONS(X)                                                    \
	X("rounds", 'r', required_argument, rounds = (unsigned int)atoi(optarg)) \
	X("pages", 'p', required_argument, n = (unsigned int)atoi(optarg))       \
	X("reads", OPT_READS, required_argument, reads = (unsigned int)atoi(optarg))

int storebench_main(int argc, char **argv)
{
	static const struct {
		enum store_cipher c;
		const char *name;
	} subj[] = {{STORE_PLAIN, "XXH3-128 checksum"},
		    {STORE_AES256GCM, "AES-256-GCM"},
		    {STORE_XCHACHA20POLY1305, "XChaCha20-Poly1305"}};
	unsigned int rounds = 15, n = 1024, reads = 2000;
	struct fig fseal[3] = {0}, fopen_[3] = {0}, fcopy = {.name = "memcpy"},
		   fread_ = {.name = "read"};
	struct store st[3];
	bool have[3];
	char *pages, *bounce, *rb, *io;
	int fd;

	parse_options(STOREBENCH_OPTIONS, argc, argv, usage);
	if (rounds < 1 || rounds > MAX_ROUNDS || n < 1 || n > 65536 || reads < 1) {
		fprintf(stderr, "storebench: 1..%d rounds, 1..65536 pages, 1 or more reads\n",
			MAX_ROUNDS);
		return 2;
	}
	size_t len = (size_t)n * 4096;
	pages = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bounce = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rb = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED || bounce == MAP_FAILED || rb == MAP_FAILED ||
	    posix_memalign((void **)&io, 4096, 4096))
		return 1;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		((uint64_t *)pages)[i] = x;
	}
	memset(bounce, 0, len);
	memset(rb, 0, len);
	for (int s = 0; s < 3; s++) {
		fseal[s].name = fopen_[s].name = subj[s].name;
		have[s] = !store_init_cipher(&st[s], n, subj[s].c);
	}
	/* The read anchor: a file of 64 MiB in $TMPDIR, read at random. */
	const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT, 0600);
	if (fd < 0 || fallocate(fd, 0, 0, 64 << 20)) {
		fprintf(stderr, "storebench: a direct-I/O file in %s: %s\n", dir, strerror(errno));
		return 1;
	}
	memset(io, 0x5a, 4096);
	for (off_t o = 0; o < 64 << 20; o += 4096)
		if (pwrite(fd, io, 4096, o) != 4096)
			return 1;

	for (unsigned int r = 0; r < rounds; r++) {
		for (int k = 0; k < 5; k++) {
			int j = r % 2 ? 4 - k : k; /* every other round in reverse */
			if (j < 3) {
				double a, b;
				if (!have[j])
					continue;
				if (seal_round(&st[j], pages, bounce, rb, n, &a, &b)) {
					fprintf(stderr, "storebench: %s: a page failed its check\n",
						subj[j].name);
					return 1;
				}
				fseal[j].v[fseal[j].n++] = a;
				fopen_[j].v[fopen_[j].n++] = b;
			} else if (j == 3) {
				uint64_t t0 = now_ns();
				for (unsigned int i = 0; i < n; i++)
					memcpy(rb + i * 4096UL, pages + i * 4096UL, 4096);
				fcopy.v[fcopy.n++] = (double)(now_ns() - t0) / n;
			} else {
				uint64_t t0 = now_ns();
				for (unsigned int i = 0; i < reads; i++) {
					x ^= x << 13;
					x ^= x >> 7;
					x ^= x << 17;
					if (pread(fd, io, 4096, (off_t)(x % 16384) * 4096) != 4096)
						return 1;
				}
				fread_.v[fread_.n++] = (double)(now_ns() - t0) / reads;
			}
		}
	}
	double copy = fig_median(&fcopy), rd = fig_median(&fread_), lo, hi;
	printf("faultline storebench: %u rounds of %u pages (%u reads of 4 KiB); medians, "
	       "spread min .. max\n\n",
	       rounds, n, reads);
	printf("%-22s %-8s %10s %19s %10s %10s\n", "per 4 KiB page", "step", "ns", "spread",
	       "x memcpy", "x read");
	spread(&fcopy, &lo, &hi);
	printf("%-22s %-8s %10.0f %8.0f .. %-8.0f %10.2f %10.4f\n", "memcpy (anchor)", "copy", copy,
	       lo, hi, 1.0, copy / rd);
	spread(&fread_, &lo, &hi);
	printf("%-22s %-8s %10.0f %8.0f .. %-8.0f %10.2f %10.4f\n", "O_DIRECT read (anchor)",
	       "read", rd, lo, hi, rd / copy, 1.0);
	for (int s = 0; s < 3; s++) {
		if (!have[s]) {
			printf("%-22s (not available on this CPU)\n", subj[s].name);
			continue;
		}
		double m = fig_median(&fseal[s]);
		spread(&fseal[s], &lo, &hi);
		printf("%-22s %-8s %10.0f %8.0f .. %-8.0f %10.2f %10.4f\n", subj[s].name, "seal", m,
		       lo, hi, m / copy, m / rd);
		m = fig_median(&fopen_[s]);
		spread(&fopen_[s], &lo, &hi);
		printf("%-22s %-8s %10.0f %8.0f .. %-8.0f %10.2f %10.4f\n", "", "check", m, lo, hi,
		       m / copy, m / rd);
		store_destroy(&st[s]);
	}
	close(fd);
	return 0;
}
