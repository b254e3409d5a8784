// SPDX-License-Identifier: MIT
/*
 * test_log_format: fl_log() formats with faultline's own async-signal-safe
 * printf (lib.c), not vsnprintf(), because it runs in the SIGBUS handler.
 *   - seeded random conversions (flags, widths, precisions, lengths; d i u o
 *     x X c s p %, and %f) give exactly what snprintf() gives, also cut short
 *     by a small buffer;
 *   - every format string that src/ hands to fl_log() or fl_dbg() uses only
 *     what that formatter knows (read from the sources next to the build);
 *   - fl_strerror() is the C locale's strerror() for every errno, and
 *     strerror() in faultline's sources is fl_strerror().
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <locale.h>
#include <sys/stat.h>

#include "lib.h"

#include "util.h"

static int checked;

static void same(const char *want, size_t want_n, const char *got, size_t got_n, const char *fmt)
{
	CHECK(want_n == got_n && strcmp(want, got) == 0,
	      "format \"%s\": snprintf gives \"%s\" (%zu), fl_snprintf \"%s\" (%zu)", fmt, want,
	      want_n, got, got_n);
	checked++;
}

/* Both formatters, whole and into a buffer of cut bytes; each argument is
 * evaluated more than once. */
#define COMPARE(cut, fmt, ...)                                                               \
	do {                                                                                 \
		char w_[256], g_[256];                                                       \
		int wn_ = snprintf(w_, sizeof(w_), fmt, __VA_ARGS__);                        \
		size_t gn_ = fl_snprintf(g_, sizeof(g_), fmt, __VA_ARGS__);                  \
		same(w_, (size_t)wn_, g_, gn_, fmt);                                         \
		wn_ = snprintf(w_, (size_t)(cut), fmt, __VA_ARGS__);                         \
		gn_ = fl_snprintf(g_, (size_t)(cut), fmt, __VA_ARGS__);                      \
		if ((cut) == 0)                                                              \
			CHECK(wn_ >= 0 && (size_t)wn_ == gn_, "cut 0: %d vs %zu", wn_, gn_); \
		else                                                                         \
			same(w_, (size_t)wn_, g_, gn_, fmt);                                 \
	} while (0)

static void random_conversions(struct t_rng *r)
{
	volatile size_t small = 5; /* not a constant: the compiler may not see the cut */
	static const char *const flags[] = {"", "-", "0", "#", "+", " ", "-#", "0#", "+0", "- "};
	static const char *const words[] = {"", "a", "hello", "faultline: swap"};
	int rounds = t_soak() ? 200000 : 20000;

	for (int i = 0; i < rounds; i++) {
		char fmt[64];
		const char *fl = flags[t_below(r, ARRAY_SIZE(flags))];
		int width = t_chance(r, 50) ? (int)t_below(r, 24) : -1;
		int prec = t_chance(r, 40) ? (int)t_below(r, 20) : -1;
		char w[16] = "", p[16] = "";
		size_t cut = t_below(r, 40);
		uint64_t v = t_rand(r) >> t_below(r, 64);

		if (width >= 0)
			snprintf(w, sizeof(w), "%d", width);
		if (prec >= 0)
			snprintf(p, sizeof(p), ".%d", prec);
		switch (t_below(r, 9)) {
		case 0: /* signed: # is undefined for d, so none */
			snprintf(fmt, sizeof(fmt), "<%%%s%s%s%s>", strchr(fl, '#') ? "-" : fl, w, p,
				 t_chance(r, 50) ? "lld" : "d");
			if (strstr(fmt, "lld")) {
				long long sv = (long long)(t_chance(r, 50) ? v : 0 - v);
				COMPARE(cut, fmt, sv);
			} else
				COMPARE(cut, fmt, (int)v);
			break;
		case 1:
			snprintf(fmt, sizeof(fmt), "<%%%s%s%sld>", strchr(fl, '#') ? "" : fl, w, p);
			COMPARE(cut, fmt, (long)v);
			break;
		case 2: /* unsigned: + and space are for signed conversions */
			snprintf(fmt, sizeof(fmt), "<%%%s%s%slu>", strpbrk(fl, "+ #") ? "0" : fl, w,
				 p);
			COMPARE(cut, fmt, (unsigned long)v);
			break;
		case 3:
			snprintf(fmt, sizeof(fmt), "<%%%s%s%s%s>", strpbrk(fl, "+ ") ? "#" : fl, w,
				 p, t_chance(r, 50) ? "lx" : "lX");
			COMPARE(cut, fmt, (unsigned long)v);
			break;
		case 4:
			snprintf(fmt, sizeof(fmt), "<%%%s%s%so>", strpbrk(fl, "+ ") ? "#" : fl, w,
				 p);
			COMPARE(cut, fmt, (unsigned int)v);
			break;
		case 5:
			snprintf(fmt, sizeof(fmt), "<%%%s%s%szu %%hhu %%hd>",
				 strpbrk(fl, "+ #") ? "" : fl, w, p);
			COMPARE(cut, fmt, (size_t)v, (unsigned char)v, (short)v);
			break;
		case 6: {
			const char *word = words[t_below(r, ARRAY_SIZE(words))];
			char c = (char)('a' + t_below(r, 26));
			snprintf(fmt, sizeof(fmt), "<%%%s%s%ss|%%%%|%%c>",
				 strpbrk(fl, "+ #0") ? "-" : fl, w, p);
			COMPARE(cut, fmt, word, c);
			break;
		}
		case 7: {
			void *ptr = (void *)(uintptr_t)(t_chance(r, 10) ? 0 : v);
			snprintf(fmt, sizeof(fmt), "<%%%s%sp>", strpbrk(fl, "+ #0") ? "-" : fl, w);
			COMPARE(cut, fmt, ptr);
			break;
		}
		case 8: { /* fixed point, away from halves (binary rounding differs) */
			static const double d[] = {0,	    1,	       -2.75,	 93.4,
						   1.23456, 12345.678, 1e6 + 0.1};
			double x = d[t_below(r, ARRAY_SIZE(d))];
			snprintf(fmt, sizeof(fmt), "<%%%s%s.%df>", strchr(fl, '#') ? "" : fl, w,
				 (int)t_below(r, 4));
			COMPARE(cut, fmt, x);
			break;
		}
		}
	}
	/* What the sources use, with their kind of arguments. */
	COMPARE(small + 7, "registering %#lx-%#lx failed: %s", 0x7f0000001000UL, 0x7f0000002000UL,
		"Cannot allocate memory");
	COMPARE(small + 4, "space %p: delivery %s, %u handler(s)", (void *)0x55aa00, "sigbus", 2u);
	COMPARE(small + 25, "UFFDIO_WRITEPROTECT %#lx+%u pages: %s", 0x1000UL, 3u, "x");
	COMPARE(small, "%s=\"%s\" is not valid (%s; decimal, %lu to %lu); %s", "FAULTLINE_X",
		"010M", "bytes", 0UL, ULONG_MAX, "the default is kept");
	COMPARE(small + 2, "SIGBUS not ours: addr %p code %d", (void *)0, -6);
	COMPARE(small - 2, "%d%%", INT_MIN);
	COMPARE(small - 2, "%lld %llu", LLONG_MIN, ULLONG_MAX);
}

/* The conversions fl_vformat() knows; anything else is printed raw. */
static const char *spec_problem(const char *s)
{
	s++; /* the % */
	if (*s == '%')
		return NULL;
	while (*s && strchr("-0#+ ", *s))
		s++;
	while (*s && (isdigit((unsigned char)*s) || *s == '*'))
		s++;
	if (*s == '$')
		return "a positional argument";
	if (*s == '.')
		for (s++; *s && (isdigit((unsigned char)*s) || *s == '*'); s++)
			;
	while (*s && strchr("hljztq", *s))
		s++;
	if (*s == 'L')
		return "long double";
	if (!*s || !strchr("diuoxXcspmeEfFgGaA", *s))
		return "an unknown conversion";
	if (s[-1] == 'l' && (*s == 'c' || *s == 's'))
		return "a wide character";
	return NULL;
}

/* The format strings of fl_log( and fl_dbg(sp, calls in one source file:
 * each call's adjacent string literals joined. */
static int scan_file(const char *path)
{
	FILE *f = fopen(path, "r");
	static char text[1 << 20];
	size_t n;
	int found = 0;

	CHECK(f, "fopen(%s): %s", path, strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	for (char *p = text; (p = strstr(p, "fl_")); p++) {
		char fmt[1024];
		size_t fn = 0;
		char *q;

		if (strncmp(p, "fl_log(", 7) == 0)
			q = p + 7;
		else if (strncmp(p, "fl_dbg(", 7) == 0 && (q = strchr(p, ',')))
			q++;
		else
			continue;
		if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		/* Adjacent literals, with whitespace between them. */
		for (;;) {
			while (isspace((unsigned char)*q))
				q++;
			if (*q != '"')
				break;
			for (q++; *q && *q != '"'; q++) {
				if (*q == '\\' && q[1])
					q++;
				if (fn + 1 < sizeof(fmt))
					fmt[fn++] = *q;
			}
			if (*q)
				q++;
		}
		fmt[fn] = 0;
		if (!fn)
			continue; /* the definition, or a format that is not a literal */
		found++;
		for (char *s = strchr(fmt, '%'); s; s = strchr(s + 1 + (s[1] == '%'), '%')) {
			const char *why = spec_problem(s);
			CHECK(!why, "%s: \"%s\" uses %s, which fl_log's formatter does not know",
			      path, fmt, why);
		}
	}
	return found;
}

/* src/ of this tree: next to the build directory of this program, or of
 * its source. */
static bool find_src(char *dir, size_t size)
{
	char exe[PATH_MAX], file[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;

	if (n > 0) {
		exe[n] = 0;
		snprintf(dir, size, "%s/../../src", dirname(exe));
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return true;
	}
	snprintf(file, sizeof(file), "%s", __FILE__);
	snprintf(dir, size, "%s/../src", dirname(file));
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void scan_sources(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	int calls = 0, files = 0;
	DIR *d;

	CHECK(find_src(dir, sizeof(dir)), "src/ not found next to %s", __FILE__);
	d = opendir(dir);
	CHECK(d, "opendir(%s): %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 3 || strcmp(de->d_name + l - 2, ".c"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		calls += scan_file(path);
		files++;
	}
	closedir(d);
	CHECK(calls >= 10, "only %d fl_log/fl_dbg format strings found in %d files of %s", calls,
	      files, dir);
	printf("  %d fl_log/fl_dbg format strings in %d files: every conversion known\n", calls,
	       files);
}

int main(int argc, char **argv)
{
	struct t_rng r;

	t_rng_init(&r, t_seed_init(argc, argv, "test_log_format"));
	setlocale(LC_ALL, "C");
	random_conversions(&r);
	printf("  %d formats compared with snprintf\n", checked);
	for (int e = 0; e < 134; e++)
		CHECK(strcmp(fl_strerror(e), (strerror)(e)) == 0 ||
			      strncmp((strerror)(e), "Unknown", 7) == 0,
		      "errno %d: fl_strerror \"%s\", strerror \"%s\"", e, fl_strerror(e),
		      (strerror)(e));
	CHECK(strerror(EIO) == fl_strerror(EIO), "strerror is not fl_strerror in src/");
	CHECK(strcmp(fl_strerror(-5), "Unknown error") == 0, "fl_strerror(-5): %s",
	      fl_strerror(-5));
	scan_sources();
	printf("test_log_format: ok\n");
	return T_EXIT_PASS;
}
