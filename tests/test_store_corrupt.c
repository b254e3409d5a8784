// SPDX-License-Identifier: MIT
/*
 * Real corruption of a real store file, behind faultline's back: slots
 * altered (down to one bit), zeroed, swapped with each other; a misdirected
 * read (the right contents of another slot, with its right checksum, at the
 * wrong slot); a stale slot (an older write of the same page where its
 * newest belongs: a lost write).  Exactly those pages get SIGBUS, again on
 * every access; every other page reads back intact; the statistics count
 * checksum mismatches, not I/O errors.  With and without encryption, under
 * both deliveries.
 */
#include "test_store.h"

#define NPAGES 512
#define LIMIT 128

static int store_fd = -1;
static off_t data_off;

static void *slot_buf(void)
{
	static void *b;

	if (!b)
		CHECK(posix_memalign(&b, PG, PG) == 0, "memalign");
	return b;
}

static void slot_read(long slot, void *buf)
{
	CHECK(pread(store_fd, buf, PG, data_off + slot * (off_t)PG) == (ssize_t)PG,
	      "read slot %ld: %s", slot, strerror(errno));
}

static void slot_write(long slot, const void *buf)
{
	CHECK(pwrite(store_fd, buf, PG, data_off + slot * (off_t)PG) == (ssize_t)PG,
	      "write slot %ld: %s", slot, strerror(errno));
}

/* Distinct random pages, none of them in used[]. */
static size_t pick(struct t_rng *r, bool *used)
{
	size_t p;

	do
		p = (size_t)t_below(r, NPAGES);
	while (used[p]);
	used[p] = true;
	return p;
}

static void run(int delivery, bool encrypt, struct t_rng *rng)
{
	const char *name = t_delivery_name(delivery);
	char file[64];
	struct fl_config cfg;
	struct fl_stats st;
	struct fl_space *sp;
	bool used[NPAGES] = {0}, bad[NPAGES] = {0};
	long slot[NPAGES];
	size_t nbad = 0;
	char *old, *tmp;

	snprintf(file, sizeof(file), "corrupt-%s-%d.store", name, encrypt);
	ts_config(&cfg, delivery, ts_path(file), LIMIT);
	cfg.swap_create = 1;
	cfg.swap_encrypt = encrypt;
	sp = t_space_create_cfg(&cfg);
	char *p = ts_map_evicted(sp, NPAGES, 1);

	store_fd = open(cfg.swap_path, O_RDWR | O_DIRECT);
	CHECK(store_fd >= 0, "open %s: %s", cfg.swap_path, strerror(errno));
	data_off = ts_data_off(store_fd);
	old = malloc(PG);
	CHECK(posix_memalign((void **)&tmp, PG, PG) == 0 && old, "memalign");

	/* Stale: keep what page w's slot holds now, write the page again (a
	 * new slot), and put the old bytes where the new ones went. */
	size_t w = pick(rng, used);
	long s_old = ts_slot(sp, p + w * PG);
	CHECK(s_old >= 0, "page %zu is not swapped out", w);
	slot_read(s_old, slot_buf());
	memcpy(old, slot_buf(), PG);
	ts_check_page(p, w, 1, "before it was made stale");
	ts_fill(p, w, 2);
	ts_evict_all(sp, p, NPAGES);
	long s_new = ts_slot(sp, p + w * PG);
	CHECK(s_new >= 0 && s_new != s_old, "page %zu rewritten: slot %ld, was %ld", w, s_new,
	      s_old);
	memcpy(slot_buf(), old, PG);
	slot_write(s_new, slot_buf());
	bad[w] = true;

	for (size_t i = 0; i < NPAGES; i++) {
		slot[i] = ts_slot(sp, p + i * PG);
		CHECK(slot[i] >= 0, "page %zu is not swapped out", i);
	}
	/* Altered: one bit; a few bytes; a whole word at the end. */
	for (int k = 0; k < 4; k++) {
		size_t a = pick(rng, used);
		unsigned char *b = slot_buf();
		slot_read(slot[a], b);
		if (k == 0) {
			b[t_below(rng, PG)] ^= (unsigned char)(1u << t_below(rng, 8));
		} else if (k == 3) {
			((uint64_t *)b)[PG / 8 - 1] ^= t_rand(rng) | 1;
		} else {
			for (int j = 0; j < 5; j++)
				b[t_below(rng, PG)] ^= (unsigned char)(1 + t_below(rng, 255));
		}
		slot_write(slot[a], b);
		bad[a] = true;
	}
	/* Zeroed. */
	for (int k = 0; k < 3; k++) {
		size_t z = pick(rng, used);
		memset(slot_buf(), 0, PG);
		slot_write(slot[z], slot_buf());
		bad[z] = true;
	}
	/* Two slots swapped. */
	size_t a = pick(rng, used), b = pick(rng, used);
	slot_read(slot[a], tmp);
	slot_read(slot[b], slot_buf());
	slot_write(slot[a], slot_buf());
	slot_write(slot[b], tmp);
	bad[a] = bad[b] = true;
	/* Misdirected: x's bytes, intact and with their right checksum, at
	 * y's slot; x itself stays good. */
	size_t x = pick(rng, used), y = pick(rng, used);
	slot_read(slot[x], slot_buf());
	slot_write(slot[y], slot_buf());
	bad[y] = true;
	for (size_t i = 0; i < NPAGES; i++)
		nbad += bad[i];

	/* In address order (readahead reads the bad pages with the good
	 * ones), then the bad ones again. */
	for (size_t i = 0; i < NPAGES; i++) {
		if (bad[i]) {
			CHECK(ts_faults(p + i * PG),
			      "%s%s: page %zu (slot %ld) was corrupted on the store but read back "
			      "without SIGBUS",
			      name, encrypt ? " encrypted" : "", i, slot[i]);
			continue;
		}
		ts_check_page(p, i, 1,
			      encrypt ? "encrypted, a page not corrupted" : "a page not corrupted");
	}
	for (size_t i = 0; i < NPAGES; i++)
		if (bad[i])
			CHECK(ts_faults(p + i * PG + 64), "page %zu faulted only once", i);
	fl_stats(sp, &st);
	printf("%s%s: %zu pages corrupted (stale %zu, swapped %zu/%zu, misdirected %zu->%zu); "
	       "checksum errors %llu, read errors %llu, poisoned %llu\n",
	       name, encrypt ? " encrypted" : "", nbad, w, a, b, x, y,
	       (unsigned long long)st.checksum_errors, (unsigned long long)st.read_errors,
	       (unsigned long long)st.pages_poisoned);
	/* One poisoned page per corrupted one, exactly; checksum_errors counts
	 * reads, and a bad page that readahead read and reclaim dropped before
	 * its fault came (reads_wasted) is read, and counted, again. */
	CHECK(st.checksum_errors >= nbad && st.pages_poisoned == nbad && st.read_errors == 0,
	      "counters: checksum_errors %llu, pages_poisoned %llu, read_errors %llu; %zu "
	      "pages were corrupted",
	      (unsigned long long)st.checksum_errors, (unsigned long long)st.pages_poisoned,
	      (unsigned long long)st.read_errors, nbad);
	/* The bad pages come back as fresh zero pages; the good ones stay. */
	for (size_t i = 0; i < NPAGES; i++)
		if (bad[i])
			CHECK(fl_madvise(sp, p + i * PG, PG, MADV_DONTNEED) == 0, "dontneed");
	for (size_t i = 0; i < NPAGES; i++)
		if (bad[i])
			CHECK(ts_page_zero(p, i), "page %zu: the poison survived DONTNEED", i);
		else
			ts_check_page(p, i, 1, "after the poisoned pages were dropped");
	close(store_fd);
	free(old);
	free(tmp);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	struct t_rng rng;

	ts_seed = t_seed_init(argc, argv, "test_store_corrupt");
	t_rng_init(&rng, ts_seed);
	ts_catch_sigbus();
	ts_scratch();
	for (int enc = 0; enc < 2; enc++) {
		run(FL_DELIVERY_THREAD, enc, &rng);
		run(FL_DELIVERY_SIGBUS, enc, &rng);
	}
	return T_EXIT_PASS;
}
