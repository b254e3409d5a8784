/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the tools: the monotonic clock, sleeps, a seeded
 * generator, medians, the preheat, option parsing (numbers, lists), and what
 * the reports say of the machine.  Header-only (static inline).
 *
 * Define TOOL, the program's name in its messages ("bench"), and
 * _GNU_SOURCE before any include.
 */
#ifndef FL_TOOLBOX_H
#define FL_TOOLBOX_H

#ifndef TOOL
#error "define TOOL, the name the messages start with, before including toolbox.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <faultline.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Other processes' CPU use, as a fraction of one CPU, above which we warn. */
#define QUIET 0.1

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Until t on CLOCK_MONOTONIC (now_ns()'s clock). */
static inline void sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull),
			      .tv_nsec = (long)(t % 1000000000ull)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* splitmix64: a fast, well-mixed sequence from any seed. */
static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) from a random 64-bit r. */
static inline uint64_t below(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

/* For qsort(): ascending doubles. */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of v[0..n), which it sorts; NAN when n is 0. */
static inline double median(double *v, unsigned int n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- Preheat ---- */

/*
 * Populate and free len bytes, untimed, once on every CPU we may run on.  On
 * a virtual machine with free page reporting (virtio-balloon), memory that
 * stayed free for a couple of seconds has been handed back to the host, and
 * the guest's next touch of it takes a host fault as well: several
 * microseconds a page, which would land on whichever run came first after a
 * long one.  Freed pages stay on the freeing CPU's lists for a while, and
 * which CPU a run allocates on (the application thread's, or a handler
 * thread's for UFFDIO_COPY) is not ours to know.  See BENCHMARKS.md,
 * "Preheat".
 */
static inline void *preheat_main(void *arg)
{
	size_t len = *(size_t *)arg, off;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	if (madvise(p, len, MADV_POPULATE_WRITE))
		for (off = 0; off < len; off += 4096)
			p[off] = 1;
	munmap(p, len);
	return NULL;
}

static inline void preheat(size_t len)
{
	pthread_t tid[64];
	pthread_attr_t attr;
	cpu_set_t allowed, one;
	unsigned int n = 0, i;
	int cpu;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE && n < 64; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		if (!pthread_create(&tid[n], &attr, preheat_main, &len))
			n++;
		pthread_attr_destroy(&attr);
	}
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
}

/* ---- Options ---- */

/*
 * getopt_long() with -h and the errors handled: -h prints usage on stdout
 * and exits 0; an unknown option or a missing argument (getopt has said
 * which) prints it on stderr and exits 2.  Return: the next option, or -1.
 */
static inline int next_option(int argc, char **argv, const char *shortopts,
			      const struct option *longopts, void (*usage)(FILE *))
{
	int c = getopt_long(argc, argv, shortopts, longopts, NULL);

	if (c == 'h') {
		usage(stdout);
		exit(0);
	}
	if (c == '?') {
		usage(stderr);
		exit(2);
	}
	return c;
}

/*
 * getopt_long()'s short options for longopts: every option whose value is a
 * letter, followed by ':' if it takes an argument.  buf holds 3 bytes an
 * option.  Return: buf.
 */
static inline const char *shortopts_of(const struct option *longopts, char *buf)
{
	char *p = buf;

	for (; longopts->name; longopts++) {
		if (longopts->flag || longopts->val <= 0 || longopts->val > 127 ||
		    !isalpha(longopts->val))
			continue;
		*p++ = (char)longopts->val;
		if (longopts->has_arg == required_argument)
			*p++ = ':';
	}
	*p = 0;
	return buf;
}

/*
 * A tool's options as one list, an X-macro: X(name, key, has_arg, action)
 * for each, where key is its letter, which is also its short option, or a
 * value above 255 for a long-only one, and action a statement that takes
 * optarg.  parse_options() makes getopt_long()'s tables of the list (with
 * --help and -h) and runs the action of each option given, in order; -h,
 * an unknown option or a missing argument are next_option()'s.
 */
#define OPTION_LONG(name, key, has_arg, action) {name, has_arg, NULL, key},
#define OPTION_CASE(name, key, has_arg, action) \
	case key:                               \
		action;                         \
		break;

#define parse_options(LIST, argc, argv, usage)                                                  \
	do {                                                                                    \
		static const struct option lo_[] = {                                            \
			LIST(OPTION_LONG){"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}}; \
		char so_[3 * ARRAY_SIZE(lo_)];                                                  \
		int c_;                                                                         \
                                                                                                \
		shortopts_of(lo_, so_);                                                         \
		while ((c_ = next_option(argc, argv, so_, lo_, usage)) != -1) {                 \
			switch (c_) {                                                           \
				LIST(OPTION_CASE)                                               \
			}                                                                       \
		}                                                                               \
	} while (0)

/* After the options, for a tool that takes no operands: one is an error (exit 2). */
static inline void no_operands(int argc, char **argv)
{
	if (optind < argc) {
		fprintf(stderr, TOOL ": unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
}

/* A decimal number in [lo, hi], else a message and exit 2. */
static inline unsigned long parse_num(const char *s, const char *what, unsigned long lo,
				      unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, TOOL ": bad %s '%s' (%lu..%lu)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

/* A number in [lo, hi] (strtod()'s syntax), else a message and exit 2. */
static inline double parse_real(const char *s, const char *what, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, TOOL ": bad %s '%s' (%g to %g)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

/*
 * A comma-separated list of at most max words into out[], each through
 * word(): its value, or a negative one for a word it does not take (a
 * word() may also say what is wrong and exit 2 itself).  unique: a repeated
 * value counts once.  A bad word, too many or none: a message and exit 2.
 * Return: how many.
 */
static inline unsigned int parse_list(const char *s, const char *what, int *out, unsigned int max,
				      int (*word)(const char *), bool unique)
{
	char buf[256], *tok, *save = NULL;
	unsigned int n = 0, i;
	int v;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		v = word(tok);
		if (v < 0) {
			fprintf(stderr, TOOL ": bad %s '%s'\n", what, tok);
			exit(2);
		}
		for (i = 0; unique && i < n && out[i] != v; i++)
			;
		if (unique && i < n)
			continue;
		if (n == max) {
			fprintf(stderr, TOOL ": too many %s\n", what);
			exit(2);
		}
		out[n++] = v;
	}
	if (!n) {
		fprintf(stderr, TOOL ": empty %s\n", what);
		exit(2);
	}
	return n;
}

/* ---- The machine, for the reports ---- */

/* What a report's first line says of the machine. */
struct host_info {
	char date[32]; /* of the start, UTC */
	char kernel[65];
	char thp[64]; /* transparent_hugepage/enabled: the one in brackets */
	long cpus;
};

static inline void read_thp(char *buf, size_t len)
{
	FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128], *l, *r;

	snprintf(buf, len, "unknown");
	if (!fp)
		return;
	if (fgets(line, sizeof(line), fp)) {
		l = strchr(line, '[');
		r = l ? strchr(l, ']') : NULL;
		if (l && r) {
			*r = 0;
			snprintf(buf, len, "%s", l + 1);
		}
	}
	fclose(fp);
}

static inline void read_host(struct host_info *h)
{
	struct utsname u;
	time_t t = time(NULL);
	struct tm tm;

	memset(h, 0, sizeof(*h));
	gmtime_r(&t, &tm);
	strftime(h->date, sizeof(h->date), "%Y-%m-%d %H:%M UTC", &tm);
	if (!uname(&u))
		snprintf(h->kernel, sizeof(h->kernel), "%s", u.release);
	read_thp(h->thp, sizeof(h->thp));
	h->cpus = sysconf(_SC_NPROCESSORS_ONLN);
}

/* A report's first line: "faultline bench 0.1.0: DATE, kernel ..., N CPUs, THP ...". */
static inline void print_host(const char *report, const struct host_info *h)
{
	printf("faultline %s %s: %s, kernel %s, %ld CPUs, THP %s\n", report, FL_VERSION_STRING,
	       h->date, h->kernel, h->cpus, h->thp);
}

/* A JSON report's opening: the benchmark, the version and the machine. */
static inline void json_host(const char *bench, const struct host_info *h)
{
	printf("{\n  \"bench\": \"%s\", \"version\": \"%s\", \"date\": \"%s\",\n", bench,
	       FL_VERSION_STRING, h->date);
	printf("  \"kernel\": \"%s\", \"cpus\": %ld, \"thp\": \"%s\",\n", h->kernel, h->cpus,
	       h->thp);
}

/*
 * The machine's busy and stolen CPU time so far (/proc/stat), and this
 * process's own (with its waited-for children's if children), in seconds:
 * their differences over a run say how quiet the machine was.
 */
struct cpu_times {
	double busy, steal, self;
};

static inline double rusage_secs(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
	       (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

static inline void read_cpu_times(struct cpu_times *ct, bool children)
{
	unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
			   steal = 0;
	double hz = (double)sysconf(_SC_CLK_TCK);
	struct rusage ru;
	FILE *fp;

	memset(ct, 0, sizeof(*ct));
	fp = fopen("/proc/stat", "r");
	if (fp) {
		if (fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys,
			   &idle, &iowait, &irq, &softirq, &steal) == 8) {
			ct->busy = (double)(user + nice + sys + irq + softirq) / hz;
			ct->steal = (double)steal / hz;
		}
		fclose(fp);
	}
	if (!getrusage(RUSAGE_SELF, &ru))
		ct->self = rusage_secs(&ru);
	if (children && !getrusage(RUSAGE_CHILDREN, &ru))
		ct->self += rusage_secs(&ru);
}

/*
 * The report's line on how long the measurement took and how busy the rest
 * of the machine was meanwhile (CPU seconds), and a warning above QUIET.
 */
static inline void print_quiet(double elapsed, double foreign, double steal)
{
	printf("measured in %.1f s; meanwhile other processes used %.1f CPU-s (%.0f%% of one "
	       "CPU), hypervisor steal %.1f CPU-s\n",
	       elapsed, foreign, 100 * foreign / elapsed, steal);
	if (foreign > QUIET * elapsed)
		printf("WARNING: the machine was not quiet; these figures are noisier than "
		       "usual\n");
}

/* "key": v and sep; JSON has no NaN or infinity: null. */
static inline void json_num(const char *key, double v, const char *sep)
{
	if (isnan(v) || isinf(v))
		printf("\"%s\": null%s", key, sep);
	else
		printf("\"%s\": %.6g%s", key, v, sep);
}

#endif
