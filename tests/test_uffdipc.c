/* SPDX-License-Identifier: MIT */
/*
 * The handler-placement benchmark's tool (BUILD/uffdipc of the same build),
 * end to end, so that it cannot rot; its figures are not checked, only that
 * it measures: a quick run exits 0 (every page read back as served: the
 * tool checks them) and has a BENCH line for both handlers (a thread of the
 * program, a supervisor process given the userfaultfd over a unix socket)
 * at each thread count and both ways of serving, the function call, both
 * round trips, and the page-out read.  Skips where userfaultfd is refused.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <linux/userfaultfd.h>
#include <limits.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "util.h"

static char out[1 << 16];

int main(int argc, char **argv)
{
	char self[PATH_MAX], tool[PATH_MAX];
	static const char *const want[] = {
		"what=faults op=copy handler=local threads=1 ",
		"what=faults op=copy handler=remote threads=1 ",
		"what=faults op=copy handler=local threads=2 ",
		"what=faults op=copy handler=remote threads=2 ",
		"what=faults op=zero handler=local threads=2 ",
		"what=faults op=zero handler=remote threads=2 ",
		"what=call ",
		"what=rtt sock=seqpacket ",
		"what=rtt sock=stream ",
		"what=pageout how=memcpy ",
		"what=remote_dontneed ",
	};
	size_t got = 0;
	ssize_t n;
	int fds[2], st, uffd;
	pid_t pid;

	t_seed_init(argc, argv, "test_uffdipc");
	uffd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (uffd < 0)
		uffd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (uffd < 0)
		t_skip("userfaultfd refused");
	close(uffd);
	CHECK(realpath(argv[0], self), "realpath %s: %s", argv[0], strerror(errno));
	/* BUILD/tests/test_uffdipc -> BUILD/uffdipc */
	snprintf(tool, sizeof(tool), "%s/uffdipc", dirname(dirname(self)));
	CHECK(!access(tool, X_OK), "%s: %s (make builds it)", tool, strerror(errno));
	CHECK(pipe(fds) == 0, "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execl(tool, tool, "--quick", "--threads", "1,2", NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "uffdipc --quick: status %d:\n%s", st, out);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char key[128];

		snprintf(key, sizeof(key), "BENCH uffdipc %s", want[i]);
		CHECK(strstr(out, key), "no \"%s\" line:\n%s", key, out);
	}
	printf("uffdipc --quick: every figure measured\n");
	return T_EXIT_PASS;
}
