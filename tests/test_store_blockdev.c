// SPDX-License-Identifier: MIT
/*
 * A block device as the store: a loop device this test sets up and removes
 * (also when it fails: the checks run in a child process, the parent
 * cleans up whatever the child's end).
 *   - a device of zeros, and one holding an ext4 file system (mkfs.ext4),
 *     are refused and left exactly as they were, also by mkstore without
 *     --force;
 *   - a mounted device is refused (O_EXCL), even by mkstore --force;
 *   - mkstore --force formats it and wipes the file system's signature:
 *     blkid finds nothing afterwards;
 *   - a space uses it under both deliveries, every page intact; a second
 *     space on it is refused (-EBUSY);
 *   - after destroy, the data area reads back as zeros (BLKDISCARD; a loop
 *     device punches holes in its file).
 * Needs root (loop devices, mount) and util-linux and e2fsprogs; skips,
 * saying which, without them.
 */
#include "test_store.h"

#include <sys/ioctl.h>
#include <linux/fs.h>

#define NPAGES 2048
#define LIMIT 256
#define DEV_BYTES (64UL << 20)

/* Run argv; its first line of stdout into out. */
static int run_out(char *const argv[], char *out, size_t len)
{
	int fds[2], status;
	pid_t pid;

	CHECK(pipe(fds) == 0, "pipe");
	pid = t_fork();
	if (!pid) {
		dup2(fds[1], 1);
		close(fds[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], out, len - 1);
	out[n > 0 ? n : 0] = 0;
	out[strcspn(out, "\n")] = 0;
	close(fds[0]);
	status = t_wait(pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_quiet(char *const argv[])
{
	char err[4096];
	int ret = ts_run(argv, err, sizeof(err));

	if (ret)
		fprintf(stderr, "%s: exit %d: %s", argv[0], ret, err);
	return ret;
}

static bool have_tool(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* ---- the child: the checks ------------------------------------------ */

static void use(const char *dev, int delivery)
{
	const char *name = t_delivery_name(delivery);
	struct fl_config cfg;
	struct fl_space *sp;

	ts_config(&cfg, delivery, dev, LIMIT);
	sp = t_space_create_cfg(&cfg);
	CHECK(sp->dev.is_blockdev && sp->dev.can_discard, "%s: not a block device with discard",
	      dev);
	char *p = ts_map_evicted(sp, NPAGES, 1 + (uint32_t)delivery);
	ts_create_fails(&cfg, -EBUSY, "a second space on a device in use");
	for (size_t i = 0; i < NPAGES; i++)
		ts_check_page(p, i, 1 + (uint32_t)delivery, name);
	/* Some pages written again, dropped: their slots are discarded. */
	CHECK(fl_madvise(sp, p, NPAGES / 4 * PG, MADV_DONTNEED) == 0, "dontneed");
	ts_wait_discarded(sp, NPAGES / 4);
	int fd = open(dev, O_RDONLY);
	CHECK(fd >= 0, "open %s", dev);
	CHECK(!ts_zeros(fd, (off_t)STORE_HEADER_SIZE, DEV_BYTES),
	      "the device holds nothing while pages are swapped out to it");
	fl_space_destroy(sp);
	CHECK(ts_zeros(fd, (off_t)STORE_HEADER_SIZE, DEV_BYTES),
	      "%s: after destroy the device's data area still holds data", name);
	CHECK(ts_data_off(fd) == (off_t)STORE_HEADER_SIZE, "the header went with the data");
	close(fd);
	printf("%s: %d pages through %s, a second space refused, the data area discarded at "
	       "destroy\n",
	       name, NPAGES, dev);
}

static int blk_child(const char *dev, const char *mnt)
{
	struct ts_file_state was;
	struct fl_config cfg;
	char err[4096];

	ts_catch_sigbus();
	ts_config(&cfg, FL_DELIVERY_THREAD, dev, LIMIT);

	/* Zeros: not a store. */
	was = ts_file_state(dev);
	char *log;
	int ret = ts_try_create(&cfg, &log);
	CHECK(ret == -EINVAL, "a device of zeros: fl_space_create gave %d, not -EINVAL", ret);
	CHECK(strstr(log, dev) && strstr(log, "mkstore"),
	      "the refusal does not name the device and say how to format it: %s", log);
	free(log);
	ts_file_unchanged(dev, was, "a device of zeros");

	/* A file system. */
	CHECK(run_quiet((char *[]){"mkfs.ext4", "-q", "-F", (char *)dev, NULL}) == 0, "mkfs.ext4");
	was = ts_file_state(dev);
	ret = ts_try_create(&cfg, &log);
	CHECK(ret == -EINVAL, "a device holding ext4: fl_space_create gave %d, not -EINVAL", ret);
	cfg.swap_create = 1;
	ts_create_fails(&cfg, -EINVAL, "a device holding ext4, swap_create");
	cfg.swap_create = 0;
	CHECK(strstr(log, "ext4") && strstr(log, "--force"),
	      "the refusal does not say the device holds ext4: %s", log);
	free(log);
	CHECK(ts_mkstore(dev, NULL, false, err, sizeof(err)) == 1,
	      "mkstore formatted over ext4 without --force");
	CHECK(strstr(err, "ext4"), "mkstore's refusal does not name ext4: %s", err);
	ts_file_unchanged(dev, was, "a device holding ext4");

	/* Mounted: the kernel refuses O_EXCL, whatever is asked. */
	CHECK(run_quiet((char *[]){"mount", (char *)dev, (char *)mnt, NULL}) == 0, "mount");
	ts_create_fails(&cfg, -EBUSY, "a mounted device");
	CHECK(ts_mkstore(dev, NULL, true, err, sizeof(err)) == 1,
	      "mkstore --force formatted a mounted device");
	CHECK(strstr(err, "in use"), "mkstore's refusal of a mounted device: %s", err);
	/* (Mounting changed the superblock itself: nothing to compare.) */
	CHECK(run_quiet((char *[]){"umount", (char *)mnt, NULL}) == 0, "umount");

	/* Formatted on purpose: no signature left. */
	CHECK(ts_mkstore(dev, NULL, true, err, sizeof(err)) == 0, "mkstore --force: %s", err);
	CHECK(strstr(err, "wiped"), "mkstore --force did not say what it wiped: %s", err);
	CHECK(ts_run((char *[]){"blkid", "-p", (char *)dev, NULL}, err, sizeof(err)) == 2,
	      "blkid -p still finds a signature on %s after mkstore --force", dev);

	use(dev, FL_DELIVERY_THREAD);
	use(dev, FL_DELIVERY_SIGBUS);
	return T_EXIT_PASS;
}

/* ---- the parent: the loop device ------------------------------------ */

static char loopdev[256], mntdir[300];
static pid_t child;

static void cleanup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	if (mntdir[0]) {
		ts_run((char *[]){"umount", mntdir, NULL}, NULL, 0);
		rmdir(mntdir);
	}
	if (loopdev[0] && ts_run((char *[]){"losetup", "-d", loopdev, NULL}, NULL, 0) != 0)
		fprintf(stderr, "test_store_blockdev: could not remove %s\n", loopdev);
}

static void on_term(int sig)
{
	if (child > 0)
		kill(child, SIGKILL);
	signal(sig, SIG_DFL);
	/* cleanup() runs after the child is reaped, in main(). */
}

int main(int argc, char **argv)
{
	char *file, out[256];
	int status;

	if (argc == 5 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "blk")) {
		ts_child_seed();
		snprintf(ts_bin, sizeof(ts_bin), "%s", getenv("FL_TEST_FAULTLINE"));
		return blk_child(argv[3], argv[4]);
	}
	ts_seed = t_seed_init(argc, argv, "test_store_blockdev");
	if (geteuid() != 0) {
		printf("SKIP: needs root (loop devices, mount)\n");
		return T_EXIT_SKIP;
	}
	if (access("/dev/loop-control", W_OK)) {
		printf("SKIP: no loop devices here (/dev/loop-control: %s)\n", strerror(errno));
		return T_EXIT_SKIP;
	}
	const char *tools[] = {"losetup", "blkid", "mount", "umount", "mkfs.ext4"};
	for (size_t i = 0; i < ARRAY_SIZE(tools); i++)
		if (!have_tool(tools[i])) {
			printf("SKIP: %s is not installed (util-linux, e2fsprogs)\n", tools[i]);
			return T_EXIT_SKIP;
		}
	ts_find_faultline(argv[0]);
	setenv("FL_TEST_FAULTLINE", ts_bin, 1);
	ts_scratch();
	file = ts_path("loop.img");
	snprintf(mntdir, sizeof(mntdir), "%s/mnt", ts_dir);
	CHECK(mkdir(mntdir, 0700) == 0, "mkdir");
	int fd = open(file, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && ftruncate(fd, DEV_BYTES) == 0, "backing file");
	close(fd);
	atexit(cleanup); /* registered after ts_scratch(): runs before the removal */
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	CHECK(run_out((char *[]){"losetup", "-f", "--show", file, NULL}, out, sizeof(out)) == 0 &&
		      !strncmp(out, "/dev/", 5),
	      "losetup -f --show %s: '%s'", file, out);
	snprintf(loopdev, sizeof(loopdev), "%s", out);
	printf("loop device %s over %s\n", loopdev, file);
	fflush(stdout);
	/* The checks in a child: whatever happens to it, this cleans up. */
	child = fork();
	CHECK(child >= 0, "fork");
	if (!child) {
		char seed[32];
		snprintf(seed, sizeof(seed), "%" PRIu64, ts_seed);
		setenv("FL_SEED", seed, 1);
		execv("/proc/self/exe",
		      (char *[]){"test_store_blockdev", "--child", "blk", loopdev, mntdir, NULL});
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	cleanup();
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the checks failed (status %#x)",
	      status);
	return T_EXIT_PASS;
}
