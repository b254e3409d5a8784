// SPDX-License-Identifier: MIT
/*
 * The parsing of every option, as a user sets it in the environment:
 * decimal values with K/M/G suffixes, never octal, hex, signed or wrapped;
 * a bad value of an option that protects memory or data (the budget, the
 * watermark, the policy, the delivery, the store's creation and encryption)
 * makes fl_space_create() fail with -EINVAL, naming the variable, where it
 * used to run without it; a bad value of another option keeps the default;
 * each warning is printed once per process; and a setuid program ignores
 * the environment of its caller.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "util.h"

static const char *const all_vars[] = {
	"FAULTLINE_HANDLERS",	  "FAULTLINE_DELIVERY",
	"FAULTLINE_FAULT_AROUND", "FAULTLINE_FAULT_AROUND_MAX",
	"FAULTLINE_VERBOSE",	  "FAULTLINE_MEM_LIMIT",
	"FAULTLINE_SWAP",	  "FAULTLINE_POLICY",
	"FAULTLINE_SWAP_FRAMES",  "FAULTLINE_WATERMARK",
	"FAULTLINE_SWAP_DELAY",	  "FAULTLINE_SWAP_CREATE",
	"FAULTLINE_SWAP_ENCRYPT",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
		unsetenv(all_vars[i]);
}

/* stderr goes to a file while a check runs, so that warnings can be counted. */
static int saved_stderr = -1;
static char errlog[] = "/tmp/fl-test-options-XXXXXX";

static void capture_start(void)
{
	int fd = mkstemp(errlog);

	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* The number of lines of the captured stderr that contain needle. */
static int capture_end(const char *needle)
{
	char line[1024];
	int n = 0;
	FILE *f;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	f = fopen(errlog, "r");
	CHECK(f, "fopen %s", errlog);
	while (fgets(line, sizeof(line), f)) {
		fputs(line, stdout); /* shown in the test's own output */
		if (strstr(line, needle))
			n++;
	}
	fclose(f);
	unlink(errlog);
	strcpy(errlog, "/tmp/fl-test-options-XXXXXX");
	return n;
}

/* A valid value: the field gets it, no warning, and a space can be made. */
#define GOOD(var, val, field, want)                                                           \
	do {                                                                                  \
		struct fl_config c_;                                                          \
		clear_env();                                                                  \
		setenv(var, val, 1);                                                          \
		capture_start();                                                              \
		CHECK(fl_config_init(&c_) == 0, "fl_config_init");                            \
		int warned_ = capture_end(var);                                               \
		CHECK((c_.field) == (want), "%s=%s: " #field " is %llu, want %llu", var, val, \
		      (unsigned long long)(c_.field), (unsigned long long)(want));            \
		CHECK(warned_ == 0, "%s=%s: warned about a valid value", var, val);           \
		printf("ok   %s=%-14s -> " #field " = %llu\n", var, val,                      \
		       (unsigned long long)(c_.field));                                       \
	} while (0)

/*
 * A bad value.  strict: fl_space_create() from that configuration fails with
 * -EINVAL and a message that names the variable.  Otherwise the default
 * stays and the space is made.  Either way one warning names the variable.
 */
static void bad(const char *var, const char *val, bool strict)
{
	struct fl_config def, c;
	struct fl_space *sp = NULL;
	int warned, named, ret;

	clear_env();
	CHECK(fl_config_init(&def) == 0, "fl_config_init");
	setenv(var, val, 1);
	capture_start();
	CHECK(fl_config_init(&c) == 0, "fl_config_init");
	warned = capture_end(var);
	CHECK(warned == 1, "%s=\"%s\": %d warnings naming it, want 1", var, val, warned);
	if (!strict) {
		/* The default is kept, whole. */
		CHECK(!memcmp(&c, &def, sizeof(c)), "%s=\"%s\": the configuration changed", var,
		      val);
		return;
	}
	capture_start();
	ret = fl_space_create(&c, &sp);
	named = capture_end(var);
	if (ret && ret != -EINVAL)
		t_skip_if_refused(ret, &c);
	CHECK(ret == -EINVAL && !sp, "%s=\"%s\": fl_space_create gave %d, want -EINVAL", var, val,
	      ret);
	CHECK(named >= 1, "%s=\"%s\": fl_space_create's refusal does not name the variable", var,
	      val);
	/* Set right by the program, the field is valid again. */
	printf("bad  %s=%-14s -> fl_space_create: -EINVAL\n", var, val);
}

static void test_values(void)
{
	GOOD("FAULTLINE_MEM_LIMIT", "64M", mem_limit, 64UL << 20);
	GOOD("FAULTLINE_MEM_LIMIT", "010M", mem_limit, 10UL << 20); /* not octal */
	GOOD("FAULTLINE_MEM_LIMIT", " 1G ", mem_limit, 1UL << 30);
	GOOD("FAULTLINE_MEM_LIMIT", "3KiB", mem_limit, 3UL << 10);
	GOOD("FAULTLINE_MEM_LIMIT", "3kb", mem_limit, 3UL << 10);
	GOOD("FAULTLINE_MEM_LIMIT", "4096", mem_limit, 4096);
	GOOD("FAULTLINE_MEM_LIMIT", "0", mem_limit, 0);
	bad("FAULTLINE_MEM_LIMIT", "99999999999G", true); /* wrapped before */
	bad("FAULTLINE_MEM_LIMIT", "17179869184G", true); /* 2^64: was 0, no budget */
	bad("FAULTLINE_MEM_LIMIT", "-1", true);
	bad("FAULTLINE_MEM_LIMIT", "lots", true);
	bad("FAULTLINE_MEM_LIMIT", "0x100000", true);
	bad("FAULTLINE_MEM_LIMIT", "1T", true);
	bad("FAULTLINE_MEM_LIMIT", "99999999999999999999999", true);

	GOOD("FAULTLINE_WATERMARK", "1M", watermark, 1UL << 20);
	bad("FAULTLINE_WATERMARK", "1.5M", true);

	GOOD("FAULTLINE_POLICY", "hold", policy, FL_POLICY_HOLD);
	GOOD("FAULTLINE_POLICY", "DROP-VMA", policy, FL_POLICY_DROP_VMA);
	GOOD("FAULTLINE_POLICY", "mmap", policy, FL_POLICY_MMAP);
	GOOD("FAULTLINE_POLICY", "v2", policy, FL_POLICY_V2);
	GOOD("FAULTLINE_POLICY", "V2-anon", policy, FL_POLICY_V2_ANON);
	GOOD("FAULTLINE_POLICY", "anon=v2,file=drop", file_policy, FL_POLICY_DROP);
	GOOD("FAULTLINE_POLICY", "mmap", file_policy, -1); /* files: as anonymous memory */
	/* Per kind of VMA: the LSFMM+BPF 2026 "anonymous VMAs only" option. */
	GOOD("FAULTLINE_POLICY", "anon=drop-vma,file=drop", policy, FL_POLICY_DROP_VMA);
	GOOD("FAULTLINE_POLICY", "anon=drop-vma,file=drop", file_policy, FL_POLICY_DROP);
	GOOD("FAULTLINE_POLICY", "FILE=hold,anon=bail", policy, FL_POLICY_BAIL);
	GOOD("FAULTLINE_POLICY", "FILE=hold,anon=bail", file_policy, FL_POLICY_HOLD);
	GOOD("FAULTLINE_POLICY", "file=hold", policy, FL_POLICY_DROP);
	GOOD("FAULTLINE_POLICY", "anon=hold", file_policy, -1);
	bad("FAULTLINE_POLICY", "hodl", true);
	bad("FAULTLINE_POLICY", "anon=hold,anon=drop", true);
	bad("FAULTLINE_POLICY", "anon=hold,", true);
	bad("FAULTLINE_POLICY", "swap=hold", true);
	bad("FAULTLINE_POLICY", "file=", true);

	GOOD("FAULTLINE_DELIVERY", "sigbus", delivery, FL_DELIVERY_SIGBUS);
	GOOD("FAULTLINE_DELIVERY", "Thread", delivery, FL_DELIVERY_THREAD);
	bad("FAULTLINE_DELIVERY", "signal", true);

	GOOD("FAULTLINE_SWAP_CREATE", "yes", swap_create, 1);
	GOOD("FAULTLINE_SWAP_CREATE", "off", swap_create, 0);
	bad("FAULTLINE_SWAP_CREATE", "maybe", true);
	GOOD("FAULTLINE_SWAP_ENCRYPT", "1", swap_encrypt, 1);
	GOOD("FAULTLINE_SWAP_ENCRYPT", "FALSE", swap_encrypt, 0);
	bad("FAULTLINE_SWAP_ENCRYPT", "2", true);

	GOOD("FAULTLINE_HANDLERS", "4", handlers, 4);
	bad("FAULTLINE_HANDLERS", "0", false);
	bad("FAULTLINE_HANDLERS", "four", false);
	GOOD("FAULTLINE_FAULT_AROUND", "8", fault_around, 8);
	bad("FAULTLINE_FAULT_AROUND", "513", false);
	GOOD("FAULTLINE_FAULT_AROUND_MAX", "1K", fault_around_max, 1024);
	bad("FAULTLINE_FAULT_AROUND_MAX", "8K", false);
	GOOD("FAULTLINE_VERBOSE", "on", verbose, 1);
	bad("FAULTLINE_VERBOSE", "loud", false);
	GOOD("FAULTLINE_SWAP_FRAMES", "2K", swap_frames, 2048);
	bad("FAULTLINE_SWAP_FRAMES", "8", false);
	GOOD("FAULTLINE_SWAP_DELAY", "5ms", swap_delay_us, 5000);
	GOOD("FAULTLINE_SWAP_DELAY", "250us", swap_delay_us, 250);
	GOOD("FAULTLINE_SWAP_DELAY", "250", swap_delay_us, 250);
	bad("FAULTLINE_SWAP_DELAY", "5s", false);

	{
		struct fl_config c;
		clear_env();
		setenv("FAULTLINE_SWAP", "/some/store", 1);
		CHECK(fl_config_init(&c) == 0, "fl_config_init");
		CHECK(c.swap_path && !strcmp(c.swap_path, "/some/store"), "FAULTLINE_SWAP");
	}
}

/* A bad strict value in the environment, overridden by the program: valid. */
static void test_override(void)
{
	struct fl_config c;
	struct fl_space *sp = NULL;
	int ret;

	clear_env();
	setenv("FAULTLINE_POLICY", "hodl", 1);
	capture_start();
	CHECK(fl_config_init(&c) == 0, "fl_config_init");
	capture_end("FAULTLINE_POLICY");
	c.policy = FL_POLICY_HOLD;
	ret = fl_space_create(&c, &sp);
	if (ret)
		t_skip_if_refused(ret, &c);
	CHECK(ret == 0 && sp, "a program's own policy over a bad environment: %d", ret);
	fl_space_destroy(sp);
	/* Out of range from the program: refused too. */
	clear_env();
	CHECK(fl_config_init(&c) == 0, "fl_config_init");
	c.policy = 9;
	capture_start();
	ret = fl_space_create(&c, &sp);
	CHECK(capture_end("policy") >= 1, "the refusal names the field");
	CHECK(ret == -EINVAL, "policy 9: %d", ret);
	printf("ok   a program's own value overrides a bad environment; its own bad value fails\n");
}

/* fl_config_init() and fl_space_create(NULL) read the environment: one warning. */
static void test_once(void)
{
	struct fl_config c;
	struct fl_space *sp = NULL;
	int n, ret;

	clear_env();
	setenv("FAULTLINE_HANDLERS", "many-of-them", 1);
	capture_start();
	fl_config_init(&c);
	fl_config_init(&c);
	ret = fl_space_create(NULL, &sp);
	if (!ret)
		fl_space_destroy(sp);
	ret = fl_space_create(&c, &sp);
	if (!ret)
		fl_space_destroy(sp);
	n = capture_end("many-of-them");
	CHECK(n == 1, "the same warning %d times, want once", n);
	printf("ok   a warning is printed once per process\n");
}

/*
 * A setuid-root copy of this program, run as nobody with FAULTLINE_* set by
 * its caller, must not take them (child mode: --secure-child).
 */
static int secure_child(void)
{
	struct fl_config c;

	fl_config_init(&c);
	printf("child: euid %d uid %d mem_limit %zu swap %s swap_create %d\n", (int)geteuid(),
	       (int)getuid(), c.mem_limit, c.swap_path ? c.swap_path : "(none)", c.swap_create);
	return c.mem_limit == 0 && !c.swap_path && !c.swap_create ? 0 : 3;
}

/* Why the setuid check could not run here, or NULL if it ran. */
static const char *setuid_skipped;

static void test_setuid(void)
{
	char dir[] = "/var/tmp/fl-test-setuid-XXXXXX", exe[256], cmd[64];
	struct passwd *nobody = getpwnam("nobody");
	struct statvfs vfs;
	int status, fd, in;
	pid_t pid;

	if (geteuid() != 0) {
		setuid_skipped = "not root: cannot make a setuid-root copy of this program";
		return;
	}
	CHECK(nobody, "no user 'nobody' to run the setuid copy as");
	CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	CHECK(statvfs(dir, &vfs) == 0, "statvfs");
	if (vfs.f_flag & ST_NOSUID) {
		setuid_skipped = "/var/tmp is mounted nosuid: a setuid copy cannot run there";
		rmdir(dir);
		return;
	}
	chmod(dir, 0755);
	snprintf(exe, sizeof(exe), "%s/test_options", dir);
	in = open("/proc/self/exe", O_RDONLY);
	fd = open(exe, O_WRONLY | O_CREAT | O_EXCL, 0755);
	CHECK(in >= 0 && fd >= 0, "copy of this program: %s", strerror(errno));
	for (;;) {
		char buf[65536];
		ssize_t n = read(in, buf, sizeof(buf));
		CHECK(n >= 0, "read: %s", strerror(errno));
		if (!n)
			break;
		CHECK(write(fd, buf, (size_t)n) == n, "write: %s", strerror(errno));
	}
	close(in);
	close(fd);
	CHECK(chmod(exe, 04755) == 0, "chmod u+s: %s", strerror(errno));
	snprintf(cmd, sizeof(cmd), "--secure-child");
	pid = t_fork();
	if (!pid) {
		setenv("FAULTLINE_MEM_LIMIT", "1G", 1);
		setenv("FAULTLINE_SWAP", "/root/fl-must-not-exist", 1);
		setenv("FAULTLINE_SWAP_CREATE", "1", 1);
		/* LeakSanitizer cannot trace a setuid process. */
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		if (setgid(nobody->pw_gid) || setuid(nobody->pw_uid))
			_exit(4);
		execl(exe, exe, cmd, (char *)NULL);
		_exit(5);
	}
	status = t_wait(pid);
	unlink(exe);
	rmdir(dir);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the setuid copy took its caller's environment (status %#x)", status);
	printf("ok   a setuid program ignores FAULTLINE_* of its caller\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--secure-child"))
		return secure_child();
	t_seed_init(argc, argv, "test_options");
	test_values();
	test_override();
	test_once();
	test_setuid();
	clear_env();
	if (setuid_skipped) {
		printf("SKIP: everything passed but the setuid check: %s\n", setuid_skipped);
		return T_EXIT_SKIP;
	}
	printf("test_options: PASS\n");
	return T_EXIT_PASS;
}
