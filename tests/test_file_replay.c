/* SPDX-License-Identifier: MIT */
/*
 * test_file_replay: working-set record and replay, in both deliveries.
 *
 * A "snapshot" file of FILE_PAGES pages is mapped MAP_PRIVATE and a
 * working set of WS_PAGES pages touched in a random order, one read per
 * fault (MADV_RANDOM: no readahead), with FAULTLINE_WS_RECORD: the record
 * must list exactly those pages, in that order.  Then restores with
 * FAULTLINE_WS_REPLAY:
 *   - the replay is let finish first: no touch of the working set waits
 *     for a read (no major file fault), against WS_PAGES without it;
 *   - the program touches the pages at once, racing the replay: every
 *     byte is right, and no more major faults than without replay.
 * Every page is checked (its first bytes name it).
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

#define FILE_PAGES 2048
#define WS_PAGES 256

static size_t ps;
static size_t order[WS_PAGES];

static struct fl_space *space(int delivery, const char *record, const char *replay)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.ws_record = record;
	cfg.ws_replay = replay;
	return t_space_create_cfg(&cfg);
}

/* Touch the working set in order; return the major file faults it took. */
static uint64_t restore(struct fl_space *sp, int fd, bool wait_replay)
{
	unsigned char *p = fl_mmap(sp, NULL, FILE_PAGES * ps, PROT_READ, MAP_PRIVATE, fd, 0);
	struct fl_stats st;

	CHECK(p != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	CHECK(fl_madvise(sp, p, FILE_PAGES * ps, MADV_RANDOM) == 0, "MADV_RANDOM");
	for (int tries = 0; wait_replay; tries++) {
		CHECK(fl_stats(sp, &st) == 0, "fl_stats");
		if (st.ws_replayed >= WS_PAGES)
			break;
		CHECK(tries < 5000, "the replay did not finish: %" PRIu64 " pages", st.ws_replayed);
		usleep(1000);
	}
	for (size_t i = 0; i < WS_PAGES; i++) {
		uint64_t v;

		memcpy(&v, p + order[i] * ps, 8);
		CHECK(v == order[i] * 0x9E3779B97F4A7C15ULL, "page %zu: %#" PRIx64, order[i], v);
	}
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	return st.file_faults_major;
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_file_replay");
	char file[] = "/var/tmp/fl-snapshot-XXXXXX", ws[] = "/var/tmp/fl-ws-XXXXXX";
	unsigned char *buf;
	struct t_rng r;
	int fd, wfd;

	ps = t_page_size();
	t_rng_init(&r, seed);
	fd = mkstemp(file);
	wfd = mkstemp(ws);
	CHECK(fd >= 0 && wfd >= 0, "mkstemp");
	close(wfd);
	buf = calloc(1, ps);
	CHECK(buf, "calloc");
	for (size_t i = 0; i < FILE_PAGES; i++) {
		uint64_t v = i * 0x9E3779B97F4A7C15ULL;
		memcpy(buf, &v, 8);
		CHECK(pwrite(fd, buf, ps, (off_t)(i * ps)) == (ssize_t)ps, "pwrite");
	}
	/* A working set: distinct pages in a random order. */
	for (size_t i = 0; i < WS_PAGES; i++) {
		bool dup;
		do {
			order[i] = t_below(&r, FILE_PAGES);
			dup = false;
			for (size_t j = 0; j < i; j++)
				dup |= order[j] == order[i];
		} while (dup);
	}
	for (int d = 0; d < 2; d++) {
		int delivery = d ? FL_DELIVERY_SIGBUS : FL_DELIVERY_THREAD;
		struct fl_space *sp = space(delivery, ws, NULL);
		uint64_t cold = restore(sp, fd, false), warm, racing;
		char line[128];
		FILE *in;
		size_t n = 0;

		fl_space_destroy(sp);
		CHECK(cold == WS_PAGES, "recording: %" PRIu64 " major faults, want %d", cold,
		      WS_PAGES);
		in = fopen(ws, "r");
		CHECK(in && fgets(line, sizeof(line), in), "the record");
		while (fgets(line, sizeof(line), in)) {
			unsigned long long dev, ino, pg;
			CHECK(sscanf(line, "%llu %llu %llu", &dev, &ino, &pg) == 3, "a line: %s",
			      line);
			CHECK(n < WS_PAGES && pg == order[n],
			      "record line %zu: page %llu, want %zu", n, pg,
			      n < WS_PAGES ? order[n] : 0);
			n++;
		}
		fclose(in);
		CHECK(n == WS_PAGES, "%zu pages recorded, want %d", n, WS_PAGES);

		sp = space(delivery, NULL, ws);
		warm = restore(sp, fd, true);
		fl_space_destroy(sp);
		sp = space(delivery, NULL, ws);
		racing = restore(sp, fd, false);
		fl_space_destroy(sp);
		printf("  %s: major file faults without replay %" PRIu64 ", after it %" PRIu64
		       ", racing it %" PRIu64 "\n",
		       t_delivery_name(delivery), cold, warm, racing);
		CHECK(warm == 0, "after the replay: %" PRIu64 " major faults", warm);
		CHECK(racing <= cold, "racing the replay: %" PRIu64 " major faults", racing);
	}
	close(fd);
	unlink(file);
	unlink(ws);
	free(buf);
	printf("test_file_replay: ok\n");
	return T_EXIT_PASS;
}
