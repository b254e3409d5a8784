// SPDX-License-Identifier: MIT
/*
 * filebench: reads of a file mapping bigger than the budget, through
 * faultline.  Not a test: it prints one line of figures.
 *
 *   filebench [--file-mib N] [--budget-mib N] [--threads N] [--ops N]
 *             [--delivery thread|sigbus] [--policy P] [--madv-random]
 *             seq|rand|write
 *
 * seq: one pass over the file in page order, one load per page, split in
 * --threads contiguous parts; rand: --ops loads of pages chosen at random
 * (seeded) by each thread; write: one pass in page order storing one byte
 * per page of a shared writable mapping, then fl_msync(MS_SYNC): the
 * write-back of kswapd and the flusher.  --madv-random: MADV_RANDOM on the
 * mapping, one page read per miss (no read-around).  The file is made once in $TMPDIR (or
 * /var/tmp), written through the kernel and dropped from its cache (POSIX_FADV_DONTNEED) before the
 * run.  The line: pages per second, major faults, file pages read, parked faults.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

static size_t file_pages, ops = 100000;
static int nthreads = 1;
static bool seq, wr, madv_random;
static volatile unsigned char *map;
static volatile unsigned long sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *reader(void *arg)
{
	long t = (long)arg;
	unsigned long sum = 0;
	uint64_t x = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1);

	if (seq) {
		size_t per = file_pages / (size_t)nthreads;
		size_t s = per * (size_t)t, e = t == nthreads - 1 ? file_pages : s + per;

		for (size_t p = s; p < e; p++) {
			if (wr)
				map[p * 4096 + 9] = (unsigned char)p;
			else
				sum += map[p * 4096];
		}
	} else {
		for (size_t i = 0; i < ops; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			sum += map[(x % file_pages) * 4096 + 17];
		}
	}
	sink += sum;
	return NULL;
}

int main(int argc, char **argv)
{
	size_t file_mib = 256, budget_mib = 64;
	const char *delivery = NULL, *policy = NULL;
	struct fl_config cfg;
	struct fl_space *sp;
	struct fl_stats st;
	char path[256];
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--file-mib") && i + 1 < argc)
			file_mib = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--budget-mib") && i + 1 < argc)
			budget_mib = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--delivery") && i + 1 < argc)
			delivery = argv[++i];
		else if (!strcmp(argv[i], "--policy") && i + 1 < argc)
			policy = argv[++i];
		else if (!strcmp(argv[i], "--madv-random"))
			madv_random = true;
		else if (!strcmp(argv[i], "seq"))
			seq = true;
		else if (!strcmp(argv[i], "rand"))
			seq = false;
		else if (!strcmp(argv[i], "write"))
			seq = wr = true;
		else {
			fprintf(stderr, "usage: filebench [--file-mib N] [--budget-mib N] "
					"[--threads N] [--ops N] [--delivery D] [--policy P] "
					"seq|rand\n");
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > 64)
		nthreads = 1;
	file_pages = file_mib * 256;
	snprintf(path, sizeof(path), "%s/fl-filebench-%zu",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp", file_mib);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	if (lseek(fd, 0, SEEK_END) != (off_t)(file_pages * 4096)) {
		static char buf[1 << 20];

		if (ftruncate(fd, 0))
			return 1;
		for (size_t i = 0; i < file_mib; i++) {
			memset(buf, (int)(i * 7 + 1), sizeof(buf));
			if (pwrite(fd, buf, sizeof(buf), (off_t)(i << 20)) != (ssize_t)sizeof(buf))
				return 1;
		}
		fsync(fd);
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

	fl_config_init(&cfg);
	cfg.mem_limit = budget_mib << 20;
	if (delivery)
		cfg.delivery =
			!strcmp(delivery, "sigbus") ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
	if (policy)
		cfg.policy = cfg.file_policy = fl_policy_by_name(policy);
	if (fl_space_create(&cfg, &sp)) {
		fprintf(stderr, "fl_space_create failed\n");
		return 1;
	}
	map = fl_mmap(sp, NULL, file_pages * 4096, wr ? PROT_READ | PROT_WRITE : PROT_READ,
		      MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("fl_mmap");
		return 1;
	}
	if (madv_random)
		fl_madvise(sp, (void *)map, file_pages * 4096, MADV_RANDOM);
	pthread_t th[64];
	uint64_t t0 = now_ns();
	for (long t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, reader, (void *)t);
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	if (wr)
		fl_msync(sp, (void *)map, file_pages * 4096, MS_SYNC);
	uint64_t dt = now_ns() - t0;
	size_t n = seq ? file_pages : ops * (size_t)nthreads;
	fl_stats(sp, &st);
	printf("filebench %s%s threads=%d file=%zuMiB budget=%zuMiB delivery=%s policy=%s: "
	       "%.0f pages/s (%.3f s), major %" PRIu64 ", minor %" PRIu64 ", read %" PRIu64
	       ", parked %" PRIu64 ", retries_queued %" PRIu64 ", written back %" PRIu64 "\n",
	       wr    ? "write"
	       : seq ? "seq"
		     : "rand",
	       madv_random ? " (MADV_RANDOM)" : "", nthreads, file_mib, budget_mib,
	       fl_delivery_name(cfg.delivery),
	       fl_policy_name(cfg.file_policy >= 0 ? cfg.file_policy : cfg.policy),
	       (double)n * 1e9 / (double)dt, (double)dt / 1e9, st.file_faults_major,
	       st.file_faults_minor, st.file_reads, st.parked, st.retries_queued,
	       st.file_writebacks);
	fl_munmap(sp, (void *)map, file_pages * 4096);
	fl_space_destroy(sp);
	close(fd);
	return 0;
}
