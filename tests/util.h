/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the tests: a seeded PRNG, CHECK, page size, the
 * exit codes and the skip rule.  Include after <faultline.h>, with
 * _GNU_SOURCE defined before any system header.
 */
#ifndef FL_TEST_UTIL_H
#define FL_TEST_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

/* The seed of the run, printed by CHECK on failure. */
static inline uint64_t *t_seed_ptr(void)
{
	static uint64_t seed;

	return &seed;
}

#define CHECK(cond, ...)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK(%s) failed, seed %" PRIu64 ": ", __FILE__, \
				__LINE__, #cond, *t_seed_ptr());                                 \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
			exit(T_EXIT_FAIL);                                                       \
		}                                                                                \
	} while (0)

/* splitmix64: seeds the generator and derives per-run seeds. */
static inline uint64_t t_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* xorshift64*: never zero once seeded through splitmix. */
struct t_rng {
	uint64_t s;
};

static inline void t_rng_init(struct t_rng *r, uint64_t seed)
{
	uint64_t x = seed;

	r->s = t_splitmix64(&x);
	if (!r->s)
		r->s = 1;
}

static inline uint64_t t_rand(struct t_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t t_below(struct t_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)t_rand(r) * n) >> 64);
}

/* True with probability pct/100. */
static inline int t_chance(struct t_rng *r, unsigned int pct)
{
	return t_below(r, 100) < pct;
}

/*
 * The seed comes from argv[1], else $FL_SEED, else the clock; it is printed
 * so that any run can be repeated.  Also makes stdout line-buffered.
 */
static inline uint64_t t_seed_init(int argc, char **argv, const char *name)
{
	const char *s = argc > 1 ? argv[1] : getenv("FL_SEED");
	uint64_t seed;

	/* Whatever was printed must survive a timeout's kill. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (s && *s) {
		seed = strtoull(s, NULL, 0);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 32);
	}
	*t_seed_ptr() = seed;
	printf("%s: seed %" PRIu64 " (repeat with: %s %" PRIu64 ")\n", name, seed, argv[0], seed);
	fflush(stdout);
	return seed;
}

/* FL_SOAK=1 asks for longer runs. */
static inline int t_soak(void)
{
	const char *s = getenv("FL_SOAK");

	return s && *s && strcmp(s, "0") != 0;
}

static inline size_t t_page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

static inline const char *t_delivery_name(int delivery)
{
	return delivery == FL_DELIVERY_SIGBUS ? "sigbus" : "thread";
}

/*
 * A space with the given delivery mode and otherwise the defaults.  Exits
 * with the skip code when this kernel or this process cannot use
 * userfaultfd at all.
 */
static inline struct fl_space *t_space_create_cfg(struct fl_config *cfg)
{
	struct fl_space *sp = NULL;
	int ret = fl_space_create(cfg, &sp);

	if (ret == -ENOSYS || ret == -EPERM) {
		printf("SKIP: userfaultfd unavailable (%s)\n", strerror(-ret));
		exit(T_EXIT_SKIP);
	}
	CHECK(ret == 0 && sp, "fl_space_create(delivery %s): %d (%s)",
	      t_delivery_name(cfg->delivery), ret, ret < 0 ? strerror(-ret) : "no space");
	return sp;
}

static inline struct fl_space *t_space_create(int delivery)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	return t_space_create_cfg(&cfg);
}

#endif /* FL_TEST_UTIL_H */
