// SPDX-License-Identifier: MIT
/*
 * Freed slots are discarded; the store's data area is discarded at destroy
 * and, after a crash, at the next open.
 *   - pages dropped (MADV_DONTNEED): their slots read back as zeros, while
 *     the other pages' slots keep their data;
 *   - rounds of rewriting, evicting and dropping pages while the discard
 *     worker runs: every page reads back its last version (a discard never
 *     destroys a newer write: a slot is not reused before its discard);
 *   - after fl_space_destroy(): the whole data area reads back as zeros,
 *     the header stays;
 *   - a process killed with its pages in the store leaves them there (the
 *     documented crash case, without encryption); the next space to open
 *     the store discards them before anything else.
 * Both deliveries.
 */
#include "test_store.h"

#define NPAGES 1024
#define LIMIT 128
#define ROUNDS 12

static off_t data_off;

static off_t slot_off(long slot)
{
	return data_off + slot * (off_t)PG;
}

/* The whole data area of the store at path: a hole, all zeros. */
static void data_area_empty(const char *path, const char *what)
{
	int fd = open(path, O_RDONLY);
	struct stat st;

	CHECK(fd >= 0 && fstat(fd, &st) == 0, "open %s", path);
	CHECK(ts_zeros(fd, (off_t)STORE_HEADER_SIZE, st.st_size),
	      "%s: the data area of %s reads back non-zero", what, path);
	CHECK(ts_data_off(fd) == (off_t)STORE_HEADER_SIZE, "%s: %s lost its header", what, path);
	close(fd);
}

/* The child: pages written and evicted, then killed before destroy. */
static int crash_child(const char *path, int delivery)
{
	struct fl_config cfg;
	struct fl_space *sp;

	ts_catch_sigbus();
	ts_config(&cfg, delivery, path, LIMIT);
	sp = t_space_create_cfg(&cfg);
	ts_map_evicted(sp, NPAGES, 5);
	kill(getpid(), SIGKILL);
	return T_EXIT_FAIL;
}

static void run(int delivery, struct t_rng *rng)
{
	const char *name = t_delivery_name(delivery);
	char file[64];
	struct fl_config cfg;
	struct fl_stats st;
	struct fl_space *sp;
	uint32_t ver[NPAGES];
	long slot[NPAGES];
	int fd;

	snprintf(file, sizeof(file), "discard-%s.store", name);
	ts_config(&cfg, delivery, ts_path(file), LIMIT);
	cfg.swap_create = 1;
	sp = t_space_create_cfg(&cfg);
	char *p = ts_map_evicted(sp, NPAGES, 1);
	for (size_t i = 0; i < NPAGES; i++)
		ver[i] = 1;
	fd = open(cfg.swap_path, O_RDONLY);
	CHECK(fd >= 0, "open %s", cfg.swap_path);
	data_off = ts_data_off(fd);
	for (size_t i = 0; i < NPAGES; i++) {
		slot[i] = ts_slot(sp, p + i * PG);
		CHECK(slot[i] >= 0 && !ts_zeros(fd, slot_off(slot[i]), PG),
		      "page %zu: not in its slot %ld", i, slot[i]);
	}

	/* The first half dropped: its slots become holes, the rest stay. */
	fl_stats(sp, &st);
	uint64_t before = st.store_discarded;
	CHECK(fl_madvise(sp, p, NPAGES / 2 * PG, MADV_DONTNEED) == 0, "dontneed");
	ts_wait_discarded(sp, before + NPAGES / 2);
	/* (The discard is off the fault path: give it time in any case.) */
	for (int t = 0; t < 1000; t++) {
		size_t left = 0;
		for (size_t i = 0; i < NPAGES / 2; i++)
			left += !ts_zeros(fd, slot_off(slot[i]), PG);
		if (!left)
			break;
		usleep(10000);
	}
	for (size_t i = 0; i < NPAGES; i++) {
		bool gone = i < NPAGES / 2;
		if (gone)
			CHECK(ts_zeros(fd, slot_off(slot[i]), PG),
			      "%s: page %zu was dropped, but its slot %ld keeps its data", name, i,
			      slot[i]);
		else
			CHECK(!ts_zeros(fd, slot_off(slot[i]), PG),
			      "%s: page %zu's slot %ld was discarded while in use", name, i,
			      slot[i]);
	}
	for (size_t i = 0; i < NPAGES; i++) {
		if (i < NPAGES / 2) {
			CHECK(ts_page_zero(p, i), "dropped page %zu is not zero", i);
			ver[i] = 0;
		} else {
			ts_check_page(p, i, ver[i], name);
		}
	}

	/* Churn: slots freed and reused while the worker discards. */
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t i = 0; i < NPAGES; i++) {
			if (t_chance(rng, 40)) {
				ver[i]++;
				ts_fill(p, i, ver[i]);
			} else if (t_chance(rng, 10)) {
				CHECK(fl_madvise(sp, p + i * PG, PG, MADV_DONTNEED) == 0,
				      "dontneed");
				ver[i] = 0;
			}
		}
		ts_evict_all(sp, p, NPAGES);
		for (size_t i = 0; i < NPAGES; i++) {
			if (!ver[i]) {
				CHECK(ts_page_zero(p, i), "round %d: dropped page %zu is not zero",
				      r, i);
				continue;
			}
			ts_check_page(p, i, ver[i], name);
		}
	}
	fl_stats(sp, &st);
	CHECK(st.checksum_errors == 0 && st.read_errors == 0, "checksum errors %llu",
	      (unsigned long long)st.checksum_errors);
	printf("%s: %d rounds, %llu slots discarded, every page intact\n", name, ROUNDS,
	       (unsigned long long)st.store_discarded);
	close(fd);
	fl_space_destroy(sp);
	data_area_empty(cfg.swap_path, "after fl_space_destroy");

	/* A crash leaves the pages; the next open discards them. */
	char dl[4];
	snprintf(dl, sizeof(dl), "%d", delivery);
	int ret = ts_spawn_self((char *[]){(char *)"crash", (char *)cfg.swap_path, dl, NULL});
	CHECK(ret == 128 + SIGKILL, "the crash child ended with %d, not SIGKILL", ret);
	fd = open(cfg.swap_path, O_RDONLY);
	CHECK(fd >= 0, "open");
	CHECK(!ts_zeros(fd, (off_t)STORE_HEADER_SIZE, (off_t)NPAGES * PG),
	      "the killed process left nothing in the store: was anything written?");
	close(fd);
	cfg.swap_create = 0;
	sp = t_space_create_cfg(&cfg);
	data_area_empty(cfg.swap_path, "at the next open after a crash");
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	struct t_rng rng;

	if (argc == 5 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "crash")) {
		ts_child_seed();
		return crash_child(argv[3], atoi(argv[4]));
	}
	ts_seed = t_seed_init(argc, argv, "test_store_discard");
	t_rng_init(&rng, ts_seed);
	ts_catch_sigbus();
	ts_scratch();
	run(FL_DELIVERY_THREAD, &rng);
	run(FL_DELIVERY_SIGBUS, &rng);
	return T_EXIT_PASS;
}
