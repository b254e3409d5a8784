// SPDX-License-Identifier: MIT
/*
 * faultline run: an unmodified program under a memory budget.  The options
 * become FAULTLINE_* variables, checked here with the library's own
 * parser; the program is checked for what cannot work (a static binary,
 * which no preload reaches; a setuid or setgid one, for which the loader
 * ignores LD_PRELOAD); then libfaultline-run.so is put in front of
 * LD_PRELOAD and the program is executed in this process, so that its exit
 * status is the command's.  The preload (run_preload.c) does the rest.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultline.h"
#include "options.h"

#define TOOL "faultline run"
#include "toolbox.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: faultline run [OPTIONS] -- PROGRAM [ARGS...]\n"
		     "\n"
		     "Run PROGRAM with its heap and its private anonymous mappings served by\n"
		     "faultline, under a memory budget.  The exit status is PROGRAM's.\n"
		     "\n"
		     "  -m, --mem-limit SIZE   resident bytes allowed (K, M, G); 0: no budget\n"
		     "  -p, --policy P         mmap, bail, drop, drop-vma or hold\n"
		     "  -s, --swap PATH        the swap store (default: a temporary file)\n"
		     "  -d, --delivery D       thread or sigbus\n"
		     "      --stats FILE|-     the statistics at exit, to FILE or stderr\n"
		     "      --json             the statistics as JSON\n"
		     "      --files            serve PROGRAM's own mappings of regular files\n"
		     "                         too (not coherent with read(2), write(2) or\n"
		     "                         other processes' mappings: only for files\n"
		     "                         nothing else uses meanwhile)\n"
		     "      --record FILE      a trace of the program's start for the lab's\n"
		     "                         start scenario: its mm calls, the loader's\n"
		     "                         mappings and the first touches of pages\n"
		     "      --record-seconds S end the recording S seconds in (default: at exit)\n"
		     "  -h, --help             this text\n"
		     "\n"
		     "Every option can also come from its FAULTLINE_* variable (README,\n"
		     "\"Configuration\").  Children that PROGRAM executes run under faultline\n"
		     "too, each with a budget of its own.\n");
}

/* Where the preload is: beside this program (the build tree), or in
 * ../lib/faultline/ (installed); FAULTLINE_RUN_PRELOAD overrides. */
static int find_preload(char *out, size_t size)
{
	const char *env = getenv("FAULTLINE_RUN_PRELOAD");
	static const char *const rel[] = {"libfaultline-run.so",
					  "../lib/faultline/libfaultline-run.so"};
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(out, size, "%s", env);
		return access(out, R_OK) ? -errno : 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -errno;
	exe[n] = 0;
	snprintf(dir, sizeof(dir), "%s", dirname(exe));
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		char path[PATH_MAX * 2];

		snprintf(path, sizeof(path), "%s/%s", dir, rel[i]);
		if (!access(path, R_OK) && realpath(path, out))
			return 0;
	}
	return -ENOENT;
}

/* PROGRAM as execvp() would find it. */
static int resolve(const char *prog, char *out, size_t size)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(prog, '/')) {
		snprintf(out, size, "%s", prog);
		return access(out, X_OK) ? -errno : 0;
	}
	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".", prog);
		if (!access(buf, X_OK)) {
			snprintf(out, size, "%s", buf);
			return 0;
		}
		path += len + (path[len] == ':');
	}
	return -ENOENT;
}

/*
 * What the loader will do with the file: 0 for a dynamically linked ELF
 * (it has a PT_INTERP), 1 for a static one, 2 for something else (a
 * script: its interpreter is checked by the kernel's exec, and preloaded
 * as any program).
 */
static int elf_kind(const char *path)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC), kind = 2;

	if (fd < 0)
		return 2;
	if (pread(fd, &eh, sizeof(eh), 0) == sizeof(eh) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64) {
		kind = 1;
		for (unsigned int i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;

			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * eh.e_phentsize)) !=
			    sizeof(ph))
				break;
			if (ph.p_type == PT_INTERP) {
				kind = 0;
				break;
			}
		}
	}
	close(fd);
	return kind;
}

/* Check value with the library's parser, then export it as FAULTLINE_<var>. */
static void set_option(const char *name, const char *var, const char *value)
{
	struct fl_config cfg;
	char env[64];

	fl_options_defaults(&cfg);
	if (fl_options_set(&cfg, name, value) || fl_options_validate(&cfg)) {
		fprintf(stderr, TOOL ": bad value '%s' for --%s\n", value, var);
		exit(2);
	}
	snprintf(env, sizeof(env), "FAULTLINE_%s", var);
	for (char *p = env; *p; p++)
		*p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	setenv(env, value, 1);
}

/*
 * FAULTLINE_RUN_STATS or _RECORD: the file named, made absolute, so that a
 * process that changes directory (make -C) writes its FILE.PID beside the
 * others ("-", stderr, as it is).
 */
static void set_output(const char *var, const char *path)
{
	char cwd[PATH_MAX], abs[2 * PATH_MAX];

	if (path[0] == '/' || !strcmp(path, "-") || !getcwd(cwd, sizeof(cwd)) ||
	    snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= (int)sizeof(abs)) {
		setenv(var, path, 1);
		return;
	}
	setenv(var, abs, 1);
}

int run_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mem-limit", required_argument, NULL, 'm'},
		{"policy", required_argument, NULL, 'p'},
		{"swap", required_argument, NULL, 's'},
		{"delivery", required_argument, NULL, 'd'},
		{"stats", required_argument, NULL, 'S'},
		{"json", no_argument, NULL, 'j'},
		{"files", no_argument, NULL, 'F'},
		{"record", required_argument, NULL, 'R'},
		{"record-seconds", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char prog[PATH_MAX], preload[PATH_MAX], *ld;
	struct stat st;
	int c, ret;

	while ((c = next_option(argc, argv, "+m:p:s:d:h", opts, usage)) != -1) {
		switch (c) {
		case 'm':
			set_option("mem_limit", "mem-limit", optarg);
			break;
		case 'p':
			set_option("policy", "policy", optarg);
			break;
		case 's':
			setenv("FAULTLINE_SWAP", optarg, 1);
			break;
		case 'd':
			set_option("delivery", "delivery", optarg);
			break;
		case 'S':
			set_output("FAULTLINE_RUN_STATS", optarg);
			break;
		case 'j':
			setenv("FAULTLINE_RUN_JSON", "1", 1);
			break;
		case 'F':
			setenv("FAULTLINE_RUN_FILES", "1", 1);
			break;
		case 'R':
			set_output("FAULTLINE_RUN_RECORD", optarg);
			break;
		case 'T': {
			char *end;
			double v = strtod(optarg, &end);

			if (*end || !(v > 0)) {
				fprintf(stderr, TOOL ": bad value '%s' for --record-seconds\n",
					optarg);
				exit(2);
			}
			setenv("FAULTLINE_RUN_RECORD_SECONDS", optarg, 1);
			break;
		}
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	ret = resolve(argv[optind], prog, sizeof(prog));
	if (ret) {
		fprintf(stderr, TOOL ": %s: %s\n", argv[optind], strerror(-ret));
		return 127;
	}
	if (!stat(prog, &st) && (st.st_mode & (S_ISUID | S_ISGID))) {
		fprintf(stderr,
			TOOL ": %s is setuid or setgid: the loader ignores LD_PRELOAD for it, so "
			     "faultline cannot serve it; refused\n",
			prog);
		return 126;
	}
	if (elf_kind(prog) == 1) {
		fprintf(stderr,
			TOOL ": %s is statically linked: no preloaded library reaches it, so "
			     "faultline cannot serve it; refused\n",
			prog);
		return 126;
	}
	/* Sigbus delivery cannot serve an access the kernel makes on the
	 * program's behalf: a read(2) into a heap buffer not yet touched fails
	 * with EFAULT ("Fault delivery").  Nothing can detect that before it
	 * happens, and most programs do it (stdio reads into fresh buffers):
	 * said once here, where the choice is made. */
	struct fl_config cfg;
	if (!fl_config_init(&cfg) && cfg.delivery == FL_DELIVERY_SIGBUS)
		fprintf(stderr, TOOL ": warning: in sigbus delivery a system call that writes "
				     "into memory faultline has not served yet (read(2) into a new "
				     "heap buffer) fails with EFAULT; most programs need "
				     "--delivery thread, the default\n");
	ret = find_preload(preload, sizeof(preload));
	if (ret) {
		fprintf(stderr,
			TOOL ": libfaultline-run.so not found beside this program or in "
			     "../lib/faultline (FAULTLINE_RUN_PRELOAD names it): %s\n",
			strerror(-ret));
		return 127;
	}
	ld = getenv("LD_PRELOAD");
	if (ld && *ld) {
		size_t n = strlen(preload) + strlen(ld) + 2;
		char *both = malloc(n);

		if (!both)
			return 127;
		snprintf(both, n, "%s:%s", preload, ld);
		setenv("LD_PRELOAD", both, 1);
	} else {
		setenv("LD_PRELOAD", preload, 1);
	}
	/* The program writes --stats and --record to the files named; the
	 * programs it runs and the children it forks to FILE.PID
	 * (run_out_path()).  Through exec, the pid stays the program's. */
	{
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("FAULTLINE_RUN_PID", pid, 1);
	}
	execv(prog, argv + optind);
	fprintf(stderr, TOOL ": %s: %s\n", prog, strerror(errno));
	return 127;
}
