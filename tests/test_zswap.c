// SPDX-License-Identifier: MIT
/*
 * The compressed tier on its own, with LZ4 and zstd: pages of text-like
 * data come back byte for byte and compress at least 1.5 times; a
 * same-filled page keeps only its word; random data is refused, or with
 * keep_raw kept as it is (a page of the pool each), comes back byte for
 * byte and is written back as it is; past its size the tier refuses stores and gives its
 * coldest entries to write back, decompressed, until it is under the accept
 * threshold; a slot invalidated while written back stays a tombstone until
 * that write is done; an entry that does not decompress is skipped by
 * writeback, loads as lost, and its slot is freed once also when it is
 * invalidated while writeback tries it; compaction of a pool fragmented by invalidations
 * gives slabs back and every page, also those being written back and those
 * kept as they are, stays right; and threads storing, loading and
 * invalidating their own slots at once (text and random pages), while
 * another compacts the pool, never see a wrong page; loads (which take no
 * lock) of slots another thread stores and invalidates as the pool is
 * compacted never return a torn, foreign or stale page; and a zstd load that
 * finds every context busy sleeps (no CPU) until a store puts one back,
 * then returns the right page.  A small tier emptied takes pages again.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#include "zswap.h"

#define SLOTS 65536

/* Text-like: words from a small vocabulary, and a seed-dependent number. */
static void text_page(char *p, uint64_t seed)
{
	static const char *const words[] = {"page ", "fault ",	"swap ", "lock ",  "the ", "of ",
					    "vma ",  "kernel ", "read ", "write ", "\n"};
	struct t_rng r;
	size_t n = 0;

	t_rng_init(&r, seed);
	while (n < PAGE_SIZE) {
		const char *w = words[t_below(&r, 11)];
		for (size_t i = 0; w[i] && n < PAGE_SIZE; i++)
			p[n++] = w[i];
		if (t_chance(&r, 10) && n + 8 < PAGE_SIZE)
			n += (size_t)snprintf(p + n, 9, "%u", (unsigned int)t_below(&r, 100000));
	}
}

static void random_page(char *p, uint64_t seed)
{
	struct t_rng r;

	t_rng_init(&r, seed);
	for (size_t i = 0; i < PAGE_SIZE; i += 8) {
		uint64_t x = t_rand(&r);
		memcpy(p + i, &x, 8);
	}
}

/* One page in five random (kept as it is), the others text. */
static void mixed_page(char *p, uint64_t seed)
{
	if (seed % 5 == 0)
		random_page(p, seed);
	else
		text_page(p, seed);
}

static void basics(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE], back[PAGE_SIZE];

	CHECK(z && !zswap_init(z, algo, SLOTS, 64UL << 20), "zswap_init %s", name);
	for (uint32_t s = 0; s < 1000; s++) {
		text_page(page, seed + s);
		CHECK(zswap_store(z, s, page) == 0, "%s: store %u", name, s);
	}
	double ratio = 1000.0 * PAGE_SIZE / (double)z->stored_bytes;
	for (uint32_t s = 0; s < 1000; s++) {
		text_page(page, seed + s);
		CHECK(zswap_load(z, s, back) == 0 && !memcmp(page, back, PAGE_SIZE),
		      "%s: slot %u came back wrong", name, s);
	}
	CHECK(ratio >= 1.5, "%s: text compressed only %.2fx", name, ratio);
	size_t before_raw = zswap_pool_bytes(z);
	memset(page, 0xab, PAGE_SIZE);
	CHECK(zswap_store(z, 2000, page) == 0, "same-filled");
	CHECK(zswap_load(z, 2000, back) == 0 && !memcmp(page, back, PAGE_SIZE), "same-filled back");
	random_page(page, seed);
	CHECK(zswap_store(z, 2001, page) == -E2BIG, "random data kept");
	CHECK(zswap_load(z, 2001, back) == -ENOENT, "a refused page loads");
	CHECK(atomic_load(&z->st.incompressible) == 1 && z->nr_raw == 0, "refusal counted");
	/* As the kernel's zswap since 6.18: kept as it is. */
	z->keep_raw = true;
	CHECK(zswap_store(z, 2001, page) == 0, "random data refused");
	CHECK(z->nr_raw == 1 && atomic_load(&z->st.incompressible) == 2 &&
		      z->e[2001].len == PAGE_SIZE,
	      "%s: random data not kept as it is", name);
	memset(back, 0, PAGE_SIZE);
	CHECK(zswap_load(z, 2001, back) == 0 && !memcmp(page, back, PAGE_SIZE),
	      "%s: a page kept as it is came back wrong", name);
	CHECK(zswap_pool_bytes(z) - before_raw >= PAGE_SIZE, "%s: a raw page took no pool page",
	      name);
	/* Replaced by a page that compresses: no longer counted raw. */
	text_page(page, seed + 7);
	CHECK(zswap_store(z, 2001, page) == 0 && z->nr_raw == 0, "%s: raw entry replaced", name);
	random_page(page, seed + 1);
	CHECK(zswap_store(z, 2002, page) == 0, "random data refused");
	CHECK(zswap_load(z, 3000, back) == -ENOENT, "a slot never stored loads");
	CHECK(!zswap_invalidate(z, 5), "invalidate");
	CHECK(zswap_load(z, 5, back) == -ENOENT, "an invalidated slot loads");
	printf("%s: 1000 text pages at %.2fx (%.2fx of pool memory), same-filled kept as a word, "
	       "random refused, or kept as it is\n",
	       name, ratio, 999.0 * PAGE_SIZE / (double)zswap_pool_bytes(z));
	zswap_destroy(z);
	free(z);
}

/* A page kept as it is is written back as it is, coldest first as any. */
static void raw_writeback(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE], back[PAGE_SIZE];
	uint64_t token;
	long w, dead;

	CHECK(z && !zswap_init(z, algo, SLOTS, 64UL << 20), "zswap_init");
	z->keep_raw = true;
	random_page(page, seed + 11);
	CHECK(zswap_store(z, 7, page) == 0, "store raw");
	text_page(back, seed + 12);
	CHECK(zswap_store(z, 8, back) == 0, "store text");
	memset(back, 0, PAGE_SIZE);
	w = zswap_writeback_pick(z, back, &token, &dead);
	CHECK(w == 7 && !memcmp(page, back, PAGE_SIZE), "%s: raw writeback picked %ld, wrong page",
	      name, w);
	CHECK(!zswap_writeback_done(z, 7, token, true), "done");
	CHECK(zswap_load(z, 7, back) == -ENOENT && z->nr_raw == 0 && z->nr == 1,
	      "%s: a raw page written back stays", name);
	zswap_destroy(z);
	free(z);
}

static void full(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE], back[PAGE_SIZE];
	uint32_t stored = 0, s;
	uint64_t token;
	long w, dead;

	CHECK(z && !zswap_init(z, algo, SLOTS, 256 << 10), "zswap_init");
	for (s = 0; s < 4000; s++) {
		text_page(page, seed + s);
		int ret = zswap_store(z, s, page);
		if (ret == -ENOSPC)
			break;
		CHECK(!ret, "store %u: %d", s, ret);
		stored++;
	}
	CHECK(s < 4000 && zswap_needs_writeback(z), "%s: 256 KiB never filled", name);
	/* Load slot 0: it gets a second chance; the coldest is then slot 1. */
	CHECK(zswap_load(z, 0, back) == 0, "load 0");
	w = zswap_writeback_pick(z, back, &token, &dead);
	CHECK(w == 1, "%s: the coldest is slot %ld, want 1", name, w);
	CHECK(atomic_load(&z->st.rotated) == 1, "%s: %llu second chances, want 1", name,
	      (unsigned long long)atomic_load(&z->st.rotated));
	text_page(page, seed + 1);
	CHECK(!memcmp(page, back, PAGE_SIZE), "written back decompressed");
	CHECK(zswap_load(z, 1, back) == 0, "loads still find a page being written back");
	CHECK(!zswap_writeback_done(z, 1, token, true), "done");
	CHECK(zswap_load(z, 1, back) == -ENOENT, "written back: gone from the tier");
	/* Invalidated while written back: a tombstone until done. */
	w = zswap_writeback_pick(z, back, &token, &dead);
	CHECK(w == 2, "next coldest %ld", w);
	CHECK(zswap_invalidate(z, 2), "invalidate during writeback says busy");
	CHECK(zswap_load(z, 2, back) == -ENOENT, "a tombstone loads");
	CHECK(zswap_writeback_done(z, 2, token, true), "done says the slot may go now");
	unsigned int picked = 0;
	while (zswap_needs_writeback(z) &&
	       (w = zswap_writeback_pick(z, back, &token, &dead)) >= 0) {
		zswap_writeback_done(z, (uint32_t)w, token, true);
		picked++;
	}
	CHECK(!zswap_needs_writeback(z), "%s: still over the threshold after writeback", name);
	printf("%s: full at %u pages in 256 KiB; %u written back, coldest first, to get under "
	       "%d%%\n",
	       name, stored, picked + 2, ZS_ACCEPT_PCT);
	zswap_destroy(z);
	free(z);
}

/* Make slot's compressed object undecodable.  Context: no other thread. */
static void corrupt(struct zswap *z, uint32_t slot)
{
	struct zs_entry *e = &z->e[slot];

	CHECK((e->flags & (ZS_PRESENT | ZS_SAME | ZS_RAW)) == ZS_PRESENT, "slot %u compressed",
	      slot);
	memset(zp_map(&z->pool, e->handle), 0xff, e->len);
}

struct race {
	struct zswap *z;
	pthread_barrier_t go;
	uint32_t slot;
	bool busy; /* zswap_invalidate()'s answer */
};

static void *invalidator(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(&r->go);
	r->busy = zswap_invalidate(r->z, r->slot);
	return NULL;
}

/*
 * An entry that does not decompress: writeback marks it bad and goes on to
 * the next (it cannot be written below, and must not stop writeback); a load
 * of it fails; and invalidated while writeback tries it, its slot is freed
 * exactly once: by the invalidation's caller, or by writeback's (*dead).
 */
static void bad_entries(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE], back[PAGE_SIZE];
	unsigned int by_writeback = 0, rounds = 2000;
	uint64_t token;
	long w, dead;

	CHECK(z && !zswap_init(z, algo, SLOTS, 64UL << 20), "zswap_init");
	for (uint32_t s = 1; s <= 3; s++) {
		text_page(page, seed + s);
		CHECK(zswap_store(z, s, page) == 0, "store %u", s);
	}
	corrupt(z, 1); /* the coldest */
	w = zswap_writeback_pick(z, back, &token, &dead);
	text_page(page, seed + 2);
	CHECK(w == 2 && dead < 0 && !memcmp(page, back, PAGE_SIZE),
	      "%s: writeback picked %ld past a bad entry, want slot 2", name, w);
	CHECK((z->e[1].flags & ZS_BAD) && atomic_load(&z->st.decompress_errors) == 1,
	      "%s: the bad entry is marked and counted once", name);
	CHECK(!zswap_writeback_done(z, 2, token, true), "done");
	w = zswap_writeback_pick(z, back, &token, &dead);
	CHECK(w == 3 && dead < 0, "%s: then slot %ld, want 3: the bad one is skipped", name, w);
	CHECK(!zswap_writeback_done(z, 3, token, true), "done");
	w = zswap_writeback_pick(z, back, &token, &dead);
	CHECK(w == -1 && dead < 0, "%s: only a bad entry left, picked %ld", name, w);
	CHECK(zswap_load(z, 1, back) == -EBADMSG && atomic_load(&z->st.decompress_errors) == 1,
	      "%s: a bad entry loads as lost", name);
	CHECK(!zswap_invalidate(z, 1) && z->nr == 0, "%s: a bad entry is invalidated", name);

	/* The race: invalidated while writeback decompresses it. */
	for (unsigned int k = 0; k < rounds; k++) {
		struct race r = {.z = z, .slot = 10 + k % 100};
		pthread_t t;

		text_page(page, seed + k);
		CHECK(zswap_store(z, r.slot, page) == 0, "store");
		corrupt(z, r.slot);
		pthread_barrier_init(&r.go, NULL, 2);
		CHECK(!pthread_create(&t, NULL, invalidator, &r), "thread");
		pthread_barrier_wait(&r.go);
		w = zswap_writeback_pick(z, back, &token, &dead);
		pthread_join(t, NULL);
		pthread_barrier_destroy(&r.go);
		CHECK(w == -1, "%s: a bad entry picked", name);
		/* Freed once: by the invalidation's caller (not busy), or
		 * here; the entry is gone either way. */
		CHECK(r.busy == (dead == (long)r.slot), "%s: slot %u freed %s", name, r.slot,
		      r.busy ? "by nobody" : "twice");
		CHECK(dead < 0 || dead == (long)r.slot, "%s: writeback freed slot %ld", name, dead);
		CHECK(z->nr == 0 && !(z->e[r.slot].flags & ZS_PRESENT), "%s: entry left", name);
		by_writeback += dead >= 0;
	}
	printf("%s: a bad entry is skipped by writeback and loads as lost; invalidated during "
	       "its writeback %u times in %u, freed once each time\n",
	       name, by_writeback, rounds);
	zswap_destroy(z);
	free(z);
}

/* Fragment the pool by invalidating three pages in four, then compact. */
static void fragment(enum zs_algo algo, const char *name, uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	static bool live[8000];
	char page[PAGE_SIZE], back[PAGE_SIZE];
	uint64_t tok_wb, tok_dead, moved;
	size_t before, after;
	uint64_t n = 0;
	struct t_rng r;
	long wb, dead, freed;

	t_rng_init(&r, seed ^ 0xf4);
	CHECK(z && !zswap_init(z, algo, SLOTS, 64UL << 20), "zswap_init");
	z->keep_raw = true;
	for (uint32_t s = 0; s < 8000; s++) {
		mixed_page(page, seed * 3 + s);
		CHECK(zswap_store(z, s, page) == 0, "%s: store %u", name, s);
		live[s] = true;
	}
	CHECK(z->nr_raw >= 1000, "%s: %llu of 8000 pages kept as they are", name,
	      (unsigned long long)z->nr_raw);
	CHECK(!zswap_needs_compaction(z), "%s: a freshly filled pool is fragmented", name);
	for (uint32_t s = 0; s < 8000; s++)
		if (t_below(&r, 4)) {
			CHECK(!zswap_invalidate(z, s), "no writeback runs");
			live[s] = false;
		}
	/* Two entries in writeback as compaction runs: one stays, one
	 * invalidated meanwhile (a tombstone). */
	wb = zswap_writeback_pick(z, back, &tok_wb, &freed);
	dead = zswap_writeback_pick(z, back, &tok_dead, &freed);
	CHECK(wb >= 0 && dead >= 0 && live[wb] && live[dead], "writeback picks");
	CHECK(zswap_invalidate(z, (uint32_t)dead), "invalidated during writeback: busy");
	live[dead] = false;
	for (uint32_t s = 0; s < 8000; s++)
		n += live[s];
	before = zswap_pool_bytes(z);
	CHECK(zswap_needs_compaction(z), "%s: %zu pool bytes for %llu pages: not fragmented", name,
	      before, (unsigned long long)n);
	moved = zswap_compact(z);
	after = zswap_pool_bytes(z);
	CHECK(moved > 0 && after < before, "%s: compaction moved %llu, %zu -> %zu bytes", name,
	      (unsigned long long)moved, before, after);
	CHECK(!zswap_needs_compaction(z), "%s: still fragmented after compaction", name);
	CHECK(atomic_load(&z->st.compacted) == moved && atomic_load(&z->st.compactions) == 1,
	      "compaction counters");
	for (uint32_t s = 0; s < 8000; s++) {
		int ret = zswap_load(z, s, back);
		if (!live[s]) {
			CHECK(ret == -ENOENT, "%s: slot %u invalidated, loads %d", name, s, ret);
			continue;
		}
		mixed_page(page, seed * 3 + s);
		CHECK(!ret && !memcmp(page, back, PAGE_SIZE), "%s: slot %u wrong after compaction",
		      name, s);
	}
	CHECK(!zswap_writeback_done(z, (uint32_t)wb, tok_wb, false), "writeback kept");
	CHECK(zswap_writeback_done(z, (uint32_t)dead, tok_dead, true), "tombstone done");
	mixed_page(page, seed * 3 + (uint64_t)wb);
	CHECK(zswap_load(z, (uint32_t)wb, back) == 0 && !memcmp(page, back, PAGE_SIZE),
	      "the page kept after its writeback moved");
	printf("%s: %llu of 8000 pages left: compaction moved %llu, pool %zu -> %zu KiB "
	       "(%.2fx -> %.2fx), every page right\n",
	       name, (unsigned long long)n, (unsigned long long)moved, before >> 10, after >> 10,
	       (double)n * PAGE_SIZE / (double)before, (double)n * PAGE_SIZE / (double)after);
	for (uint32_t s = 0; s < 8000; s++)
		zswap_invalidate(z, s);
	CHECK(atomic_load(&z->pool.objects) == 0, "objects left");
	zswap_destroy(z);
	free(z);
}

struct worker {
	struct zswap *z;
	uint32_t base;
	uint64_t seed;
};

static void *worker(void *arg)
{
	struct worker *wk = arg;
	char page[PAGE_SIZE], back[PAGE_SIZE];
	uint64_t gen[256] = {0};
	struct t_rng r;

	t_rng_init(&r, wk->seed);
	for (int k = 0; k < 20000; k++) {
		uint32_t i = (uint32_t)t_below(&r, 256), s = wk->base + i;
		int what = (int)t_below(&r, 10);
		if (what < 4) {
			gen[i] = t_rand(&r) | 1;
			mixed_page(page, gen[i]);
			if (zswap_store(wk->z, s, page))
				gen[i] = 0;
		} else if (what < 9) {
			int ret = zswap_load(wk->z, s, back);
			if (!gen[i]) {
				CHECK(ret == -ENOENT, "slot %u: a page that is not there", s);
				continue;
			}
			mixed_page(page, gen[i]);
			CHECK(!ret && !memcmp(page, back, PAGE_SIZE), "slot %u: wrong page (%d)", s,
			      ret);
		} else {
			CHECK(!zswap_invalidate(wk->z, s), "no writeback runs");
			gen[i] = 0;
		}
	}
	return NULL;
}

static _Atomic bool workers_done;

/* Compact the pool, over and over, while the workers run. */
static void *compactor(void *arg)
{
	struct zswap *z = arg;

	while (!atomic_load(&workers_done)) {
		zswap_compact(z);
		usleep(100);
	}
	return NULL;
}

static void threads(enum zs_algo algo, const char *name, uint64_t seed, bool keep_raw)
{
	struct zswap *z = calloc(1, sizeof(*z));
	struct worker wk[4];
	pthread_t t[4], ct;

	CHECK(z && !zswap_init(z, algo, SLOTS, 64UL << 20), "zswap_init");
	z->keep_raw = keep_raw;
	atomic_store(&workers_done, false);
	CHECK(!pthread_create(&ct, NULL, compactor, z), "pthread_create");
	for (int i = 0; i < 4; i++) {
		wk[i] = (struct worker){z, (uint32_t)i * 1000, seed + (uint64_t)i};
		CHECK(!pthread_create(&t[i], NULL, worker, &wk[i]), "pthread_create");
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	atomic_store(&workers_done, true);
	pthread_join(ct, NULL);
	printf("%s: 4 threads x 20000 stores, loads and invalidations (random pages %s), %llu "
	       "pages moved by %llu compactions meanwhile: every page right\n",
	       name, keep_raw ? "kept" : "refused",
	       (unsigned long long)atomic_load(&z->st.compacted),
	       (unsigned long long)atomic_load(&z->st.compactions));
	CHECK(atomic_load(&z->st.compacted) > 0, "%s: compaction moved nothing", name);
	zswap_destroy(z);
	free(z);
}

/*
 * Loads of slots another thread stores and invalidates meanwhile, with
 * compaction moving objects: a load takes no lock (zswap.h), so it must
 * never return a torn page, another slot's, or one older than a store that
 * returned before the load began.  Each page says which slot and which
 * store (gen) it is in its first word, one in ten is same-filled with that
 * word, two in ten random (kept as they are, or refused), the rest text.
 */
#define SH_SLOTS 256
#define SH_STORES 30000
#define SH_READERS 3

struct shared {
	struct zswap *z;
	_Atomic uint64_t floor[SH_SLOTS];  /* the gen of the last store that returned 0 */
	_Atomic uint64_t issued[SH_SLOTS]; /* the highest gen a store was begun with */
	_Atomic bool done;
	uint64_t seed;
	_Atomic uint64_t loads, hits;
};

static void shared_page(char *p, uint32_t slot, uint64_t gen, uint64_t seed)
{
	uint64_t w = (uint64_t)slot << 40 | gen;

	if (gen % 10 == 0) {
		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			memcpy(p + i * 8, &w, 8);
		return;
	}
	if (gen % 10 < 3)
		random_page(p, seed ^ w);
	else
		text_page(p, seed ^ w);
	memcpy(p, &w, 8);
}

static void *shared_writer(void *arg)
{
	struct shared *sh = arg;
	char page[PAGE_SIZE];
	struct t_rng r;

	t_rng_init(&r, sh->seed);
	for (int k = 0; k < SH_STORES; k++) {
		uint32_t slot = (uint32_t)t_below(&r, SH_SLOTS);
		if (t_chance(&r, 4)) {
			CHECK(!zswap_invalidate(sh->z, slot), "no writeback runs");
			continue;
		}
		uint64_t gen = atomic_load(&sh->issued[slot]) + 1;
		atomic_store(&sh->issued[slot], gen);
		shared_page(page, slot, gen, sh->seed);
		if (!zswap_store(sh->z, slot, page))
			atomic_store(&sh->floor[slot], gen);
	}
	atomic_store(&sh->done, true);
	return NULL;
}

static void *shared_reader(void *arg)
{
	struct shared *sh = arg;
	char back[PAGE_SIZE], want[PAGE_SIZE];
	struct t_rng r;
	uint64_t loads = 0, hits = 0;

	t_rng_init(&r, sh->seed + (uint64_t)pthread_self());
	while (!atomic_load(&sh->done)) {
		uint32_t slot = (uint32_t)t_below(&r, SH_SLOTS);
		uint64_t floor = atomic_load(&sh->floor[slot]), w, gen;
		int ret = zswap_load(sh->z, slot, back);

		loads++;
		if (ret == -ENOENT)
			continue; /* invalidated, or its last store refused */
		CHECK(!ret, "slot %u: load %d", slot, ret);
		memcpy(&w, back, 8);
		gen = w & ((1ULL << 40) - 1);
		CHECK(w >> 40 == slot, "slot %u: a page of slot %llu", slot,
		      (unsigned long long)(w >> 40));
		CHECK(gen >= floor && gen <= atomic_load(&sh->issued[slot]),
		      "slot %u: store %llu, when %llu had returned", slot, (unsigned long long)gen,
		      (unsigned long long)floor);
		shared_page(want, slot, gen, sh->seed);
		CHECK(!memcmp(want, back, PAGE_SIZE), "slot %u: store %llu came back torn", slot,
		      (unsigned long long)gen);
		hits++;
	}
	atomic_fetch_add(&sh->loads, loads);
	atomic_fetch_add(&sh->hits, hits);
	return NULL;
}

static void shared_slots(enum zs_algo algo, const char *name, uint64_t seed, bool keep_raw)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	pthread_t w, rd[SH_READERS], ct;

	CHECK(sh && (sh->z = calloc(1, sizeof(*sh->z))) &&
		      !zswap_init(sh->z, algo, SLOTS, 64UL << 20),
	      "zswap_init");
	sh->z->keep_raw = keep_raw;
	sh->seed = seed;
	atomic_store(&workers_done, false);
	CHECK(!pthread_create(&ct, NULL, compactor, sh->z), "pthread_create");
	for (int i = 0; i < SH_READERS; i++)
		CHECK(!pthread_create(&rd[i], NULL, shared_reader, sh), "pthread_create");
	CHECK(!pthread_create(&w, NULL, shared_writer, sh), "pthread_create");
	pthread_join(w, NULL);
	for (int i = 0; i < SH_READERS; i++)
		pthread_join(rd[i], NULL);
	atomic_store(&workers_done, true);
	pthread_join(ct, NULL);
	printf("%s: %d loads (%d hits) of slots stored and invalidated meanwhile, %llu pages "
	       "moved by compaction: none torn, foreign or stale; %llu read again, %llu under "
	       "the lock\n",
	       name, (int)atomic_load(&sh->loads), (int)atomic_load(&sh->hits),
	       (unsigned long long)atomic_load(&sh->z->st.compacted),
	       (unsigned long long)atomic_load(&sh->z->st.load_retries),
	       (unsigned long long)atomic_load(&sh->z->st.load_locked));
	CHECK(atomic_load(&sh->hits) > 1000, "%s: only %llu hits", name,
	      (unsigned long long)atomic_load(&sh->hits));
	zswap_destroy(sh->z);
	free(sh->z);
	free(sh);
}

struct ctx_loader {
	struct zswap *z;
	char back[PAGE_SIZE];
	int ret;
	clockid_t clock;
	_Atomic bool started, done;
};

static void *ctx_loader(void *arg)
{
	struct ctx_loader *l = arg;

	pthread_getcpuclockid(pthread_self(), &l->clock);
	atomic_store(&l->started, true);
	l->ret = zswap_load(l->z, 1, l->back);
	atomic_store(&l->done, true);
	return NULL;
}

/* Nanoseconds of CPU of the thread whose clock is c. */
static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Every zstd context busy (marked so here, as if 16 threads were
 * compressing): a load sleeps, without spinning, until a store takes one
 * context and puts it back, and then returns its page.
 */
static void ctx_wait(uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	struct ctx_loader *l = calloc(1, sizeof(*l));
	char page[PAGE_SIZE];
	pthread_t t;

	CHECK(z && l && !zswap_init(z, ZS_ZSTD, SLOTS, 64UL << 20), "zswap_init");
	text_page(page, seed);
	CHECK(zswap_store(z, 1, page) == 0, "store");
	for (unsigned int i = 0; i < ZS_CONTEXTS; i++)
		atomic_store(&z->ctx[i].busy, true);
	l->z = z;
	CHECK(!pthread_create(&t, NULL, ctx_loader, l), "pthread_create");
	while (!atomic_load(&l->started))
		usleep(1000);
	usleep(100 * 1000);
	uint64_t t0 = cpu_ns(l->clock);
	usleep(100 * 1000);
	uint64_t spent = cpu_ns(l->clock) - t0;
	CHECK(!atomic_load(&l->done), "a load with every context busy returned (%d)", l->ret);
	CHECK(atomic_load(&z->st.ctx_waits) == 1, "ctx_waits %llu, not 1",
	      (unsigned long long)atomic_load(&z->st.ctx_waits));
	CHECK(spent < 10 * 1000000ULL, "the waiting load spent %.1f ms of CPU in 100 ms",
	      (double)spent / 1e6);
	/* One context free again; a store takes it and puts it back. */
	atomic_store(&z->ctx[ZS_CONTEXTS - 1].busy, false);
	text_page(page, seed + 1);
	CHECK(zswap_store(z, 2, page) == 0, "store with one context");
	pthread_join(t, NULL);
	text_page(page, seed);
	CHECK(l->ret == 0 && !memcmp(l->back, page, PAGE_SIZE), "the woken load: %d or wrong",
	      l->ret);
	printf("zstd: a load with every context busy slept (%.2f ms of CPU in 100 ms) until a "
	       "store put one back, then read its page right\n",
	       (double)spent / 1e6);
	for (unsigned int i = 0; i < ZS_CONTEXTS; i++)
		atomic_store(&z->ctx[i].busy, false);
	zswap_destroy(z);
	free(z);
	free(l);
}

/*
 * The entry table is inaccessible until slots are stored, so that no
 * overcommit policy charges it in full (strict overcommit ignores
 * MAP_NORESERVE): writable from its start as far as the highest slot
 * stored, in steps of ZS_GROW_BYTES.  A load or an invalidation of a slot
 * beyond is a miss, not a fault.
 */
static void entries_follow_use(uint64_t seed)
{
	enum { BIG = 1 << 20 }; /* 40 MiB of entries */
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE], back[PAGE_SIZE];
	uintptr_t lo, hi;
	size_t rw, none;
	unsigned int n;

	CHECK(z && !zswap_init(z, ZS_LZ4, BIG, 64UL << 20), "zswap_init");
	lo = (uintptr_t)z->e;
	hi = lo + ((BIG * sizeof(*z->e) + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1));
	n = t_maps_of(lo, hi, &rw, &none);
	CHECK(n == 1 && rw == 0 && none == hi - lo,
	      "a new tier: %u mappings of its entries, %zu bytes writable, %zu inaccessible", n, rw,
	      none);
	CHECK(zswap_load(z, BIG - 1, back) == -ENOENT && !zswap_invalidate(z, BIG - 1),
	      "a slot beyond the entries made accessible");
	text_page(page, seed);
	CHECK(zswap_store(z, 5, page) == 0, "store of slot 5");
	n = t_maps_of(lo, hi, &rw, &none);
	CHECK(n == 2 && rw == ZS_GROW_BYTES && rw + none == hi - lo,
	      "slot 5 stored: %u mappings, %zu bytes writable, %zu inaccessible", n, rw, none);
	CHECK(zswap_load(z, BIG - 1, back) == -ENOENT, "slot %d, never stored", BIG - 1);
	text_page(page, seed + 1);
	CHECK(zswap_store(z, BIG - 1, page) == 0, "store of the last slot");
	n = t_maps_of(lo, hi, &rw, &none);
	CHECK(n == 1 && rw == hi - lo, "the last slot stored: %u mappings, %zu bytes writable", n,
	      rw);
	CHECK(zswap_load(z, BIG - 1, back) == 0 && !memcmp(back, page, PAGE_SIZE),
	      "the last slot read back");
	text_page(page, seed);
	CHECK(zswap_load(z, 5, back) == 0 && !memcmp(back, page, PAGE_SIZE), "slot 5 read back");
	printf("entries: none accessible in a new tier, %u KiB once slot 5 is stored, all once the "
	       "last is\n",
	       ZS_GROW_BYTES >> 10);
	zswap_destroy(z);
	free(z);
}

/*
 * A small tier emptied is not full: pages that compress into sixty-four
 * different classes, all invalidated, leave at most a sixteenth of the
 * pool in empty slabs, and the tier takes pages again.
 */
static void emptied_small(uint64_t seed)
{
	struct zswap *z = calloc(1, sizeof(*z));
	char page[PAGE_SIZE];
	struct t_rng r;
	unsigned int stored = 0;
	size_t left;

	CHECK(z && !zswap_init(z, ZS_LZ4, 4096, 1u << 20), "zswap_init");
	t_rng_init(&r, seed ^ 0xe5);
	for (uint32_t slot = 0; slot < 64; slot++) {
		/* slot * 60 random bytes, then zeros: about that much compressed. */
		memset(page, 0, sizeof(page));
		for (size_t i = 0; i < (size_t)slot * 60; i += 8) {
			uint64_t x = t_rand(&r);
			memcpy(page + i, &x, sizeof(x));
		}
		page[PAGE_SIZE - 1] = 1; /* not same-filled */
		stored += !zswap_store(z, slot, page);
	}
	for (uint32_t slot = 0; slot < 64; slot++)
		zswap_invalidate(z, slot);
	CHECK(stored >= 48, "only %u of 64 pages stored in an empty tier of 1 MiB", stored);
	left = zswap_pool_bytes(z);
	CHECK(!zswap_needs_writeback(z) && left <= (1u << 20) / 16,
	      "a tier of 1 MiB emptied holds %zu bytes (needs writeback: %d)", left,
	      zswap_needs_writeback(z));
	text_page(page, seed);
	CHECK(zswap_store(z, 100, page) == 0, "an emptied tier of 1 MiB refuses a page");
	printf("emptied: %u pages of 64 classes stored and invalidated, %zu KiB left in the "
	       "pool\n",
	       stored, left >> 10);
	zswap_destroy(z);
	free(z);
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_zswap");

	basics(ZS_LZ4, "lz4", seed);
	basics(ZS_ZSTD, "zstd", seed);
	basics(ZS_LZO, "lzo", seed);
	raw_writeback(ZS_LZ4, "lz4", seed);
	raw_writeback(ZS_ZSTD, "zstd", seed);
	raw_writeback(ZS_LZO, "lzo", seed);
	full(ZS_LZ4, "lz4", seed);
	full(ZS_ZSTD, "zstd", seed);
	full(ZS_LZO, "lzo", seed);
	bad_entries(ZS_LZ4, "lz4", seed);
	bad_entries(ZS_ZSTD, "zstd", seed);
	bad_entries(ZS_LZO, "lzo", seed);
	fragment(ZS_LZ4, "lz4", seed);
	fragment(ZS_ZSTD, "zstd", seed);
	fragment(ZS_LZO, "lzo", seed);
	threads(ZS_LZ4, "lz4", seed, true);
	threads(ZS_ZSTD, "zstd", seed, false);
	threads(ZS_LZO, "lzo", seed, true);
	shared_slots(ZS_LZ4, "lz4", seed, true);
	shared_slots(ZS_ZSTD, "zstd", seed, false);
	shared_slots(ZS_LZO, "lzo", seed, false);
	ctx_wait(seed);
	entries_follow_use(seed);
	emptied_small(seed);
	printf("test_zswap: PASS\n");
	return T_EXIT_PASS;
}
