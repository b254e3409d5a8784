// SPDX-License-Identifier: MIT
/*
 * The compressed tier in front of the disk store (FAULTLINE_ZSWAP), not a
 * benchmark:
 *
 *   - torture, under every policy and both deliveries: a region eight
 *     times the budget, whose pages are text-like (compress 2-4x), random
 *     (refused as incompressible; with FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE,
 *     in one run per delivery, kept as they are) or same-filled (kept as
 *     one word), is
 *     filled, then threads verify whole pages and write new versions of
 *     their own pages while another pages ranges out; a small pool forces
 *     writeback to the store.  Every byte must come back, the counters must
 *     show every path (stores, same-filled, refusals or pages kept as they are, hits, writebacks,
 *     store reads and writes), the pool must stay within its size and
 *     memory within the budget, and no page may fail its check;
 *   - a hit needs no I/O: with a pool large enough for every evicted page,
 *     reading everything back reads nothing from the store; without the
 *     tier the same run does;
 *   - a page whose compressed copy no longer decompresses (altered behind
 *     faultline's back) is lost as after a failed read: exactly those pages
 *     get SIGBUS, again on every access, every other page reads back
 *     right, and the tier counts the errors, not the store;
 *   - the options: a bad FAULTLINE_ZSWAP refuses the space, and so does a
 *     pool as large as the budget.
 *
 * FL_SOAK=1: 20 s of torture per run instead of 0.6 s.
 */
#define _GNU_SOURCE
#include "util.h"

#include "torture.h"

#include "options.h"
#include "pgtable.h"
#include "space.h"
#include "store.h"
#include "tier.h"

#define BUDGET (2UL << 20)
#define NPAGES (8 * BUDGET / PG) /* 8x oversubscribed */

static uint64_t seed;

static struct fl_config config(int delivery, int policy, int zswap, size_t zswap_max)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = policy;
	cfg.mem_limit = BUDGET;
	cfg.zswap = zswap;
	cfg.zswap_max = zswap_max;
	return cfg;
}

static void torture(int delivery, int policy, int zswap, bool encrypt, bool keep)
{
	/* The pool's size classes keep a partial slab each (zpool.c): a
	 * pool much smaller than this is mostly those. */
	struct fl_config cfg = config(delivery, policy, zswap, BUDGET / 2);
	struct torture t = {0};
	struct fl_stats st;
	struct fl_space *sp;

	cfg.swap_encrypt = encrypt;
	cfg.zswap_keep_incompressible = keep;
	sp = t_space_create_cfg(&cfg);
	tt_run(&t, sp, NPAGES, seed, t_soak() ? 20000000 : 600000, NULL, NULL, 0);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	printf("%-6s %-8s %-4s%s%s: major %llu, zswap: stores %llu same %llu incompressible %llu "
	       "full %llu hits %llu writebacks %llu compacted %llu pages %llu pool %llu KiB ratio "
	       "%llu%% "
	       "hit p50 %llu ns; store reads %llu writes %llu; resident %llu frames %llu\n",
	       t_delivery_name(delivery), tt_policy_names[policy], zswap_algo_name((int)zswap),
	       encrypt ? " (encrypted)" : "", keep ? " (keep incompressible)" : "",
	       (unsigned long long)st.faults_major, (unsigned long long)st.zswap_stores,
	       (unsigned long long)st.zswap_same_filled,
	       (unsigned long long)st.zswap_incompressible, (unsigned long long)st.zswap_full,
	       (unsigned long long)st.zswap_hits, (unsigned long long)st.zswap_writebacks,
	       (unsigned long long)st.zswap_compacted, (unsigned long long)st.zswap_pages,
	       (unsigned long long)st.zswap_pool_bytes >> 10,
	       (unsigned long long)st.zswap_ratio_pct, (unsigned long long)st.zswap_load_ns_p50,
	       (unsigned long long)st.store_reads, (unsigned long long)st.store_writes,
	       (unsigned long long)st.resident_pages, (unsigned long long)st.frames_used);
	CHECK(st.checksum_errors == 0 && st.read_errors == 0 && st.pages_poisoned == 0 &&
		      st.zswap_errors == 0,
	      "errors: checksum %llu read %llu poisoned %llu zswap %llu",
	      (unsigned long long)st.checksum_errors, (unsigned long long)st.read_errors,
	      (unsigned long long)st.pages_poisoned, (unsigned long long)st.zswap_errors);
	CHECK(st.zswap_stores > 0 && st.zswap_same_filled > 0, "the tier took no page");
	CHECK(st.zswap_incompressible > 0, "no random page was met");
	if (keep)
		CHECK(st.zswap_incompressible_pages > 0, "no random page was kept as it is");
	else
		CHECK(st.zswap_incompressible_pages == 0, "%llu random pages kept, not refused",
		      (unsigned long long)st.zswap_incompressible_pages);
	CHECK(st.zswap_hits > 0, "no fault was served by the tier");
	CHECK(st.zswap_writebacks > 0, "the full tier wrote nothing back");
	CHECK(st.store_writes > 0 && st.store_reads > 0, "the store below was not used");
	/* Compressed, the pages held take less than half their size (the
	 * pool around them may hold more: a partial slab per size class);
	 * those kept as they are, their size. */
	CHECK(st.zswap_pages > st.zswap_incompressible_pages &&
		      (st.zswap_stored_bytes - st.zswap_incompressible_pages * PG) * 2 <
			      (st.zswap_pages - st.zswap_incompressible_pages) * PG,
	      "%llu pages held (%llu as they are) in %llu bytes",
	      (unsigned long long)st.zswap_pages, (unsigned long long)st.zswap_incompressible_pages,
	      (unsigned long long)st.zswap_stored_bytes);
	CHECK(st.zswap_pool_bytes <= BUDGET / 2, "pool %llu bytes over its size",
	      (unsigned long long)st.zswap_pool_bytes);
	CHECK((st.resident_pages + st.frames_used) * PG + st.zswap_pool_bytes <= BUDGET + 64 * PG,
	      "over the budget: resident %llu, frames %llu, pool %llu bytes",
	      (unsigned long long)st.resident_pages, (unsigned long long)st.frames_used,
	      (unsigned long long)st.zswap_pool_bytes);
	tt_unmap(&t);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	CHECK(st.zswap_pages == 0 && st.store_bytes == 0,
	      "after munmap: %llu pages in the tier, %llu store bytes",
	      (unsigned long long)st.zswap_pages, (unsigned long long)st.store_bytes);
	fl_space_destroy(sp);
}

/*
 * Pages that all compress, 1.25 times the budget, a pool large enough for
 * every evicted one: after the fill, a read of everything is served
 * without reading the store.  Without the tier, the same run reads it.
 */
static void no_io(int delivery, int zswap)
{
	struct fl_config cfg = config(delivery, FL_POLICY_DROP, zswap, BUDGET / 2);
	size_t n = BUDGET * 5 / 4 / PG;
	struct torture t = {.npages = n, .seed = seed};
	struct fl_space *sp;
	struct fl_stats st;

	sp = t_space_create_cfg(&cfg);
	t.versions = calloc(n, sizeof(*t.versions));
	t.region = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	CHECK(t.versions && t.region != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	/* Only text-like versions: find one per page. */
	for (size_t i = 0; i < n; i++) {
		uint32_t v = 1;
		while (tt_kind(&t, i, v))
			v++;
		tt_write(&t, i, v);
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++)
			tt_verify(&t, i, t.versions[i], "no-I/O read");
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	printf("no I/O, %s, zswap %s: major %llu, zswap hits %llu stores %llu, store reads %llu "
	       "writes %llu\n",
	       t_delivery_name(delivery), zswap ? "on" : "off", (unsigned long long)st.faults_major,
	       (unsigned long long)st.zswap_hits, (unsigned long long)st.zswap_stores,
	       (unsigned long long)st.store_reads, (unsigned long long)st.store_writes);
	CHECK(st.faults_major > 0, "nothing was swapped in");
	if (zswap) {
		CHECK(st.zswap_hits > 0 && st.zswap_writebacks == 0, "hits %llu writebacks %llu",
		      (unsigned long long)st.zswap_hits, (unsigned long long)st.zswap_writebacks);
		CHECK(st.store_reads == 0 && st.store_writes == 0,
		      "the tier had every page, yet the store read %llu and wrote %llu",
		      (unsigned long long)st.store_reads, (unsigned long long)st.store_writes);
	} else {
		CHECK(st.store_reads > 0, "without the tier nothing was read from the store");
	}
	free(t.versions);
	fl_space_destroy(sp);
}

/* Page a's entry in sp's page table (0 if it has no chunk). */
static uint64_t entry_of(struct fl_space *sp, unsigned long a)
{
	struct pt_chunk *c = pt_chunk_lookup(sp, a);

	return c ? atomic_load(&c->pte[pt_index(a)]) : 0;
}

/* Alter up to max compressed copies in sp's tier so that they no longer
 * decompress; their pages' indexes in region go to bad[].  Only pages
 * swapped out: a page whose eviction the completion thread has not yet
 * finished is still in its frame, which a fault takes first.  Return: how
 * many. */
static size_t corrupt_tier(struct fl_space *sp, const char *region, size_t n, bool *bad, size_t max)
{
	struct zswap *z = &sp->tier->z;
	size_t got = 0;

	pthread_mutex_lock(&z->lock); /* compaction moves objects under it */
	for (uint32_t s = 0; s < z->max_slots && got < max; s++) {
		struct zs_entry *e = &z->e[s];
		unsigned long a = store_slot_addr(&sp->dev.store, s);

		if ((e->flags & (ZS_PRESENT | ZS_SAME | ZS_RAW | ZS_WRITEBACK)) != ZS_PRESENT ||
		    a < (unsigned long)region || a >= (unsigned long)region + n * PG ||
		    pte_type(entry_of(sp, a)) != PTE_SWAP)
			continue;
		memset(zp_map(&z->pool, e->handle), 0xff, e->len);
		bad[(a - (unsigned long)region) / PG] = true;
		got++;
	}
	pthread_mutex_unlock(&z->lock);
	return got;
}

static void corrupt(int delivery, int zswap)
{
	struct fl_config cfg = config(delivery, FL_POLICY_DROP, zswap, BUDGET / 2);
	size_t n = BUDGET * 5 / 4 / PG, nbad, hit = 0;
	struct torture t = {.npages = n, .seed = seed};
	struct fl_space *sp;
	struct fl_stats st;
	bool *bad = calloc(n, sizeof(*bad));
	unsigned char v;

	sp = t_space_create_cfg(&cfg);
	t.versions = calloc(n, sizeof(*t.versions));
	t.region = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	CHECK(bad && t.versions && t.region != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t i = 0; i < n; i++) {
		uint32_t ver = 1;
		while (tt_kind(&t, i, ver))
			ver++;
		tt_write(&t, i, ver);
	}
	nbad = corrupt_tier(sp, t.region, n, bad, 8);
	CHECK(nbad == 8, "only %zu pages compressed in the tier", nbad);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			if (!bad[i]) {
				tt_verify(&t, i, t.versions[i], "a page beside lost ones");
				continue;
			}
			CHECK(t_load_sigbus((unsigned char *)t.region + i * PG, &v),
			      "%s, pass %d: page %zu read, its copy altered",
			      t_delivery_name(delivery), pass, i);
			hit++;
		}
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	printf("altered tier copies, %s, %s: %zu pages lost (SIGBUS %zu times in two passes), the "
	       "others right; zswap_errors %llu, read_errors %llu, poisoned %llu\n",
	       t_delivery_name(delivery), zswap_algo_name((int)zswap), nbad, hit,
	       (unsigned long long)st.zswap_errors, (unsigned long long)st.read_errors,
	       (unsigned long long)st.pages_poisoned);
	CHECK(st.pages_poisoned == nbad && st.zswap_errors >= nbad && st.read_errors == 0 &&
		      st.checksum_errors == 0,
	      "counters: poisoned %llu zswap_errors %llu read_errors %llu checksum_errors %llu",
	      (unsigned long long)st.pages_poisoned, (unsigned long long)st.zswap_errors,
	      (unsigned long long)st.read_errors, (unsigned long long)st.checksum_errors);
	free(t.versions);
	free(bad);
	fl_space_destroy(sp);
}

static void options(void)
{
	struct fl_config cfg = config(FL_DELIVERY_THREAD, FL_POLICY_DROP, FL_ZSWAP_LZ4, BUDGET);
	struct fl_space *s = NULL;

	/* A pool as large as the budget leaves nothing for the pages. */
	CHECK(fl_space_create(&cfg, &s) == -EINVAL && !s, "zswap_max = mem_limit accepted");
	setenv("FAULTLINE_ZSWAP", "lz5", 1);
	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.mem_limit = BUDGET;
	CHECK(fl_space_create(&cfg, &s) == -EINVAL && !s, "FAULTLINE_ZSWAP=lz5 accepted");
	setenv("FAULTLINE_ZSWAP", "ZSTD", 1);
	CHECK(fl_config_init(&cfg) == 0 && cfg.zswap == FL_ZSWAP_ZSTD, "FAULTLINE_ZSWAP=ZSTD: %d",
	      cfg.zswap);
	setenv("FAULTLINE_ZSWAP", "lzo", 1);
	CHECK(fl_config_init(&cfg) == 0 && cfg.zswap == FL_ZSWAP_LZO, "FAULTLINE_ZSWAP=lzo: %d",
	      cfg.zswap);
	unsetenv("FAULTLINE_ZSWAP");
	setenv("FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE", "1", 1);
	CHECK(fl_config_init(&cfg) == 0 && cfg.zswap_keep_incompressible == 1,
	      "FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE=1: %d", cfg.zswap_keep_incompressible);
	unsetenv("FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE");
	CHECK(fl_config_init(&cfg) == 0 && cfg.zswap_keep_incompressible == 0,
	      "FAULTLINE_ZSWAP_KEEP_INCOMPRESSIBLE: on by default");
}

int main(int argc, char **argv)
{
	seed = t_seed_init(argc, argv, "test_tier_zswap");
	if (T_SANITIZED)
		printf("a sanitizer build: the torture under drop and hold only\n");
	options();
	t_sigbus_install(); /* before a space of sigbus delivery: corrupt() */
	for (int d = 0; d < 2; d++) {
		corrupt(d, d ? FL_ZSWAP_ZSTD : FL_ZSWAP_LZ4);
		corrupt(d, FL_ZSWAP_LZO);
		no_io(d, FL_ZSWAP_LZ4);
		no_io(d, FL_ZSWAP_OFF);
		for (int pol = 0; pol < 5; pol++)
			if (tt_policy_runs(pol))
				torture(d, pol, (pol + d) % 2 ? FL_ZSWAP_ZSTD : FL_ZSWAP_LZ4, false,
					false);
		torture(d, d ? FL_POLICY_HOLD : FL_POLICY_DROP, d ? FL_ZSWAP_ZSTD : FL_ZSWAP_LZ4,
			false, true);
	}
	torture(FL_DELIVERY_THREAD, FL_POLICY_DROP, FL_ZSWAP_LZ4, true, false);
	torture(FL_DELIVERY_SIGBUS, FL_POLICY_DROP, FL_ZSWAP_LZO, false, false);
	return T_EXIT_PASS;
}
