// SPDX-License-Identifier: MIT
/*
 * One store, one user.  While a space uses a store: a second space of the
 * same process, and a space of another process, are refused with -EBUSY and
 * a message that names the store; so is mkstore, even with --force; and the
 * first space's pages are untouched by the attempts.  Once it is destroyed,
 * the store can be used again, by either.
 */
#include "test_store.h"

#define NPAGES 1024
#define LIMIT 128

/* The other process: a space on path must get want (0 or -EBUSY). */
static int open_child(const char *path, int want)
{
	struct fl_config cfg;
	struct fl_space *sp = NULL;
	int ret;

	ts_config(&cfg, FL_DELIVERY_THREAD, path, LIMIT);
	ret = fl_space_create(&cfg, &sp);
	CHECK(ret == want,
	      "another process: fl_space_create on a store in use gave %d (%s), "
	      "not %d",
	      ret, strerror(-ret), want);
	if (sp) {
		char *p = ts_map_evicted(sp, NPAGES, 9);
		for (size_t i = 0; i < NPAGES; i++)
			CHECK(ts_intact(p, i, 9), "another process: page %zu", i);
		fl_space_destroy(sp);
	}
	return T_EXIT_PASS;
}

int main(int argc, char **argv)
{
	struct fl_config cfg;
	struct fl_space *a, *b = NULL;
	char err[2048];
	int ret;

	if (argc == 5 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "open")) {
		ts_child_seed();
		return open_child(argv[3], atoi(argv[4]));
	}
	ts_seed = t_seed_init(argc, argv, "test_store_users");
	ts_find_faultline(argv[0]);
	ts_scratch();
	char *path = ts_path("shared.store");
	CHECK(ts_mkstore(path, "32M", false, err, sizeof(err)) == 0, "mkstore: %s", err);

	ts_config(&cfg, FL_DELIVERY_THREAD, path, LIMIT);
	a = t_space_create_cfg(&cfg);
	char *p = ts_map_evicted(a, NPAGES, 1);

	/* A second space of this process, with or without swap_create. */
	char *log, *log2;
	ret = ts_try_create(&cfg, &log);
	cfg.swap_create = 1;
	int ret2 = ts_try_create(&cfg, &log2);
	cfg.swap_create = 0;
	free(log2);
	CHECK(ret == -EBUSY && ret2 == -EBUSY,
	      "a second space on a store in use: %d, with swap_create %d (want -EBUSY)", ret, ret2);
	CHECK(strstr(log, path) && strstr(log, "in use"),
	      "the refusal does not name the store and say it is in use: %s", log);
	free(log);

	/* Another process. */
	ret = ts_spawn_self((char *[]){(char *)"open", path, (char *)"-16", NULL});
	CHECK(ret == 0, "the other process's check failed (%d)", ret);

	/* mkstore, even forced. */
	CHECK(ts_mkstore(path, NULL, true, err, sizeof(err)) == 1,
	      "mkstore --force formatted a store in use");
	CHECK(strstr(err, "in use"), "mkstore's refusal: %s", err);

	/* Nothing of that touched the first space's pages. */
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(ts_intact(p, i, 1), "page %zu after the refused users", i);
	fl_space_destroy(a);

	/* Free again: another process, then this one. */
	ret = ts_spawn_self((char *[]){(char *)"open", path, (char *)"0", NULL});
	CHECK(ret == 0, "another process could not use the store once it was free (%d)", ret);
	b = t_space_create_cfg(&cfg);
	fl_space_destroy(b);
	printf("one store, one user: a second space and another process refused (-EBUSY), "
	       "mkstore refused, the store usable once free\n");
	return T_EXIT_PASS;
}
