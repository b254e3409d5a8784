// SPDX-License-Identifier: MIT
/* The library's base (lib.h): logging, assertions, the clock, thread ids. */
#include "lib.h"

#include <stdarg.h>
#include <time.h>

#ifdef FL_TSAN
char fl_rcu_tsan_token;
#endif

void fl_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "faultline: ");

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	size_t len = strlen(buf);
	if (len && buf[len - 1] != '\n' && len + 1 < sizeof(buf)) {
		buf[len++] = '\n';
		buf[len] = 0;
	}
	/* write(2): usable from the SIGBUS handler too. */
	ssize_t r = write(2, buf, len);
	(void)r;
}

void fl_bug(const char *file, int line, const char *cond)
{
	fl_log("BUG at %s:%d: %s", file, line, cond);
	abort();
}

uint64_t fl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

pid_t fl_gettid(void)
{
	static FL_TLS pid_t tid;

	if (!tid)
		tid = (pid_t)syscall(SYS_gettid);
	return tid;
}
