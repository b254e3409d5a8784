// SPDX-License-Identifier: MIT
/*
 * The store never destroys what it was not given.  FAULTLINE_SWAP (the
 * configuration's swap_path) naming
 *   - a file of user data (mode 0644): refused, its contents, size, mode and
 *     mtime unchanged, also with swap_create;
 *   - a symbolic link, to user data or even to a store: refused, the target
 *     untouched; a dangling one with swap_create: nothing created;
 *   - a directory, a character device, a missing path: refused;
 *   - a store whose header is damaged: refused;
 *   - a store of a fixed size with no room for a page: refused, saying so;
 *   - an empty file: refused without swap_create, and with it unless it is
 *     ours and 0600 (someone's marker, 0644);
 * and swap_create making a new store (mode 0600, with a header) that works,
 * there or in an empty 0600 file of ours (its creator lost the race for
 * its lock, or died before writing the header).
 * `faultline mkstore`: a new file (0600, its size); user data refused
 * without --force and left alone, formatted with it but never shrunk; a
 * symbolic link refused.  A growing store is never shrunk when fallocate()
 * fails (seccomp makes it fail, in a child).  Refusals happen at creation,
 * before any fault: one delivery is enough.
 */
#include "test_store.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static void refuse(const char *path, bool create, int want, const char *what)
{
	struct fl_config cfg;

	ts_config(&cfg, FL_DELIVERY_THREAD, path, 256);
	cfg.swap_create = create;
	ts_create_fails(&cfg, want, what);
}

/* A space on the store at path: pages written, evicted, read back. */
static void use_store(const char *path, bool create, size_t npages)
{
	struct fl_config cfg;
	struct fl_space *sp;

	ts_config(&cfg, FL_DELIVERY_THREAD, path, 128);
	cfg.swap_create = create;
	sp = t_space_create_cfg(&cfg);
	char *p = ts_map_evicted(sp, npages, 3);
	for (size_t i = 0; i < npages; i++)
		CHECK(ts_intact(p, i, 3), "%s: page %zu read back wrong", path, i);
	fl_space_destroy(sp);
}

static struct store_header header_of(const char *path)
{
	struct store_header h;
	const char *why = NULL;
	char buf[STORE_HEADER_SIZE];
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf), "read %s", path);
	close(fd);
	CHECK(store_header_decode(buf, &h, &why) == 0, "%s: no valid store header: %s", path, why);
	return h;
}

static off_t size_of(const char *path)
{
	struct stat st;

	CHECK(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st.st_size;
}

/* fallocate() fails with EOPNOTSUPP in this process from here on. */
static void block_fallocate(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fallocate, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EOPNOTSUPP & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = ARRAY_SIZE(f), .filter = f};

	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs: %s", strerror(errno));
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "seccomp: %s",
	      strerror(errno));
	CHECK(fallocate(open("/dev/null", O_RDONLY), 0, 0, 1) < 0 && errno == EOPNOTSUPP,
	      "the seccomp filter does not fail fallocate");
}

/*
 * A growing store longer than its header says, and fallocate() failing (a
 * file system without it): the store grows by ftruncate() past its end,
 * never below it.  In a child, for the seccomp filter.
 */
#define GROW_START ((off_t)(STORE_HEADER_SIZE + (64UL << 20) + 2 * PG))
#define GROW_PAGES 16500 /* more slots than the file holds */

static int grow_child(const char *path)
{
	struct fl_config cfg;
	struct fl_space *sp;

	block_fallocate();
	ts_config(&cfg, FL_DELIVERY_THREAD, path, 256);
	sp = t_space_create_cfg(&cfg);
	CHECK(size_of(path) >= GROW_START, "opening the store shrank it: %lld -> %lld bytes",
	      (long long)GROW_START, (long long)size_of(path));
	char *p = fl_mmap(sp, NULL, GROW_PAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap");
	for (size_t i = 0; i < GROW_PAGES; i++)
		ts_fill(p, i, 4);
	ts_evict_all(sp, p, GROW_PAGES);
	off_t grown = size_of(path);
	CHECK(grown > GROW_START, "the store did not grow past %lld bytes (%lld)",
	      (long long)GROW_START, (long long)grown);
	for (size_t i = 0; i < GROW_PAGES; i++)
		CHECK(ts_intact(p, i, 4), "page %zu read back wrong", i);
	fl_space_destroy(sp);
	CHECK(size_of(path) == grown, "closing the store changed its size: %lld -> %lld",
	      (long long)grown, (long long)size_of(path));
	printf("growth with fallocate failing: %lld -> %lld bytes, never shrunk\n",
	       (long long)GROW_START, (long long)grown);
	return T_EXIT_PASS;
}

static void never_shrink_on_growth(const char *path)
{
	char err[512];
	int ret;

	CHECK(ts_mkstore(path, NULL, false, err, sizeof(err)) == 0, "mkstore %s: %s", path, err);
	CHECK(truncate(path, GROW_START) == 0, "truncate: %s", strerror(errno));
	ret = ts_spawn_self((char *[]){(char *)"grow", (char *)path, NULL});
	CHECK(ret == 0, "the growth child failed (%d)", ret);
}

int main(int argc, char **argv)
{
	struct ts_file_state was;
	char err[2048];

	if (argc == 4 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "grow")) {
		ts_child_seed();
		return grow_child(argv[3]);
	}
	ts_seed = t_seed_init(argc, argv, "test_store_refuse");
	ts_find_faultline(argv[0]);
	ts_scratch();
	umask(0);
	char *data = ts_path("user-data"), *store = ts_path("made.store");
	char *link = ts_path("link"), *dangling = ts_path("dangling");
	char *target = ts_path("not-there"), *missing = ts_path("missing.store");

	/* User data, 0644, with or without swap_create. */
	ts_write_file(data, 1 << 20, 0644);
	was = ts_file_state(data);
	refuse(data, false, -EINVAL, "a file of user data");
	ts_file_unchanged(data, was, "FAULTLINE_SWAP=user data");
	refuse(data, true, -EINVAL, "a file of user data, swap_create");
	ts_file_unchanged(data, was, "FAULTLINE_SWAP=user data, swap_create");

	/* Links are not followed, whatever they point to. */
	CHECK(symlink(data, link) == 0, "symlink");
	refuse(link, false, -ELOOP, "a symbolic link to user data");
	refuse(link, true, -ELOOP, "a symbolic link to user data, swap_create");
	ts_file_unchanged(data, was, "FAULTLINE_SWAP=a link to user data");
	CHECK(symlink(target, dangling) == 0, "symlink");
	refuse(dangling, true, -ELOOP, "a dangling symbolic link, swap_create");
	CHECK(access(target, F_OK) != 0, "swap_create made %s through a dangling link", target);

	/* Neither a file nor a block device; or nothing at all. */
	refuse(ts_dir, true, -EINVAL, "a directory");
	refuse("/dev/null", false, -EINVAL, "a character device");
	refuse(missing, false, -ENOENT, "a missing path without swap_create");
	CHECK(access(missing, F_OK) != 0, "a refused store was created");

	/* swap_create: a new store, 0600 even with umask 0, that works. */
	use_store(missing, true, 256);
	CHECK((size_of(missing), header_of(missing).flags & STORE_GROWS), "not a growing store");
	struct stat st;
	CHECK(stat(missing, &st) == 0 && (st.st_mode & 0777) == 0600, "created with mode %o",
	      st.st_mode & 0777);
	use_store(missing, false, 256); /* and again, as an existing store */
	/* An empty file (a creator that lost the race for its lock, or died
	 * before the header): refused as it is without swap_create; with it,
	 * nothing of anyone's is there, and it is made a store. */
	{
		char *empty = ts_path("empty.store");

		ts_write_file(empty, 0, 0600);
		was = ts_file_state(empty);
		refuse(empty, false, -EINVAL, "an empty file without swap_create");
		ts_file_unchanged(empty, was, "FAULTLINE_SWAP=an empty file");
		use_store(empty, true, 256);
		CHECK(header_of(empty).flags & STORE_GROWS, "the empty file: not a growing store");
		use_store(empty, false, 256);
		/* Not one a space would have made (0600): someone's. */
		char *marker = ts_path("marker");
		ts_write_file(marker, 0, 0644);
		was = ts_file_state(marker);
		refuse(marker, true, -EINVAL, "an empty file of mode 0644, swap_create");
		ts_file_unchanged(marker, was, "FAULTLINE_SWAP=an empty 0644 file, swap_create");
	}
	/* A link to that store is still refused. */
	char *link2 = ts_path("link-to-store");
	CHECK(symlink(missing, link2) == 0, "symlink");
	refuse(link2, false, -ELOOP, "a symbolic link to a store");

	/* A damaged header. */
	{
		int fd = open(missing, O_RDWR);
		unsigned char c;
		CHECK(fd >= 0 && pread(fd, &c, 1, 33) == 1, "read header");
		c ^= 0x10;
		CHECK(pwrite(fd, &c, 1, 33) == 1, "write header");
		close(fd);
		was = ts_file_state(missing);
		struct fl_config cfg;
		char *log;
		ts_config(&cfg, FL_DELIVERY_THREAD, missing, 256);
		int ret = ts_try_create(&cfg, &log);
		CHECK(ret == -EINVAL, "a damaged header: fl_space_create gave %d", ret);
		CHECK(strstr(log, "damaged") && strstr(log, missing),
		      "the refusal does not say the header is damaged, naming the store: %s", log);
		free(log);
		ts_file_unchanged(missing, was, "a damaged header");
	}

	/* A whole header of a store of a fixed size with no room for a page
	 * (what mkstore wrote on a device of one to two pages): refused,
	 * saying so, not as an allocation failure. */
	{
		const char *tiny = ts_path("tiny.store");
		struct store_header h = {.version = STORE_VERSION,
					 .page_size = PAGE_SIZE,
					 .data_offset = STORE_HEADER_SIZE,
					 .size = STORE_HEADER_SIZE};
		static char hb[STORE_HEADER_SIZE];
		struct fl_config cfg;
		char *log;

		store_header_encode(&h, hb);
		int fd = open(tiny, O_RDWR | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0 && pwrite(fd, hb, sizeof(hb), 0) == (ssize_t)sizeof(hb), "write %s",
		      tiny);
		close(fd);
		ts_config(&cfg, FL_DELIVERY_THREAD, tiny, 256);
		int ret = ts_try_create(&cfg, &log);
		CHECK(ret == -EINVAL && strstr(log, "no room for a page"),
		      "a store with no room for a page: fl_space_create gave %d: %s", ret, log);
		free(log);
		unlink(tiny);
	}

	/* mkstore: a new file. */
	CHECK(ts_mkstore(store, "8M", false, err, sizeof(err)) == 0, "mkstore: %s", err);
	CHECK(stat(store, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 8 << 20,
	      "mkstore made mode %o, %lld bytes", st.st_mode & 0777, (long long)st.st_size);
	CHECK(header_of(store).size == 8 << 20 && !(header_of(store).flags & STORE_GROWS),
	      "header size");
	use_store(store, false, 512);
	/* mkstore over user data: refused without --force, and untouched. */
	ts_write_file(data, 3 << 20, 0644);
	was = ts_file_state(data);
	CHECK(ts_mkstore(data, NULL, false, err, sizeof(err)) == 1,
	      "mkstore formatted user data without --force");
	CHECK(strstr(err, "--force") && strstr(err, data),
	      "the refusal says nothing of --force: %s", err);
	ts_file_unchanged(data, was, "mkstore without --force");
	CHECK(ts_mkstore(link, NULL, true, err, sizeof(err)) == 1,
	      "mkstore --force formatted through a symbolic link");
	ts_file_unchanged(data, was, "mkstore --force on a link");
	CHECK(ts_mkstore(data, "12Q", true, err, sizeof(err)) == 2, "mkstore took size 12Q");
	/* With --force: a store, never shrunk. */
	CHECK(ts_mkstore(data, "1M", true, err, sizeof(err)) == 0, "mkstore --force: %s", err);
	CHECK(size_of(data) == 3 << 20, "mkstore --force 1M shrank a 3 MiB file to %lld bytes",
	      (long long)size_of(data));
	CHECK(header_of(data).size == 1 << 20, "the header's size");
	use_store(data, false, 200); /* 255 slots */

	never_shrink_on_growth(ts_path("grow.store"));
	printf("refusals: user data, links, a directory, a character device, a missing path, "
	       "a damaged header, a store with no room; mkstore and swap_create: ok\n");
	return T_EXIT_PASS;
}
