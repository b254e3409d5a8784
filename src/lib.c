// SPDX-License-Identifier: MIT
/*
 * The library's base (lib.h): logging, assertions, the clock, thread ids.
 *
 * fl_log() runs inside the SIGBUS handler (sigbus delivery: a store error is
 * logged by the faulting thread's own swap-in), so it must be
 * async-signal-safe: glibc's vsnprintf() may allocate (wide strings,
 * floating point, positional arguments) and strerror() translates through
 * the locale.  It formats with fl_vformat() below, a small printf of its
 * own, into a stack buffer, and writes with write(2).
 */
#include "lib.h"

#include <stdarg.h>
#include <time.h>

#ifdef FL_TSAN
char fl_rcu_tsan_token;
#endif

/* The untranslated message of err (glibc's table: no locale, no buffer). */
char *fl_strerror(int err)
{
	const char *s = strerrordesc_np(err);

	return (char *)(s ? s : "Unknown error");
}

/* An output buffer that truncates silently: a log line is never worth a
 * failure. */
struct fmt_out {
	char *p;
	size_t len, cap; /* cap: bytes usable, the terminating NUL excluded */
};

static void out_char(struct fmt_out *o, char c)
{
	if (o->len < o->cap)
		o->p[o->len] = c;
	o->len++;
}

static void out_pad(struct fmt_out *o, char c, int n)
{
	while (n-- > 0)
		out_char(o, c);
}

/* The conversion spec being printed: flags, width, precision. */
struct fmt_spec {
	bool left, zero, alt, plus, space;
	int width, prec; /* prec < 0: none */
};

static void out_str(struct fmt_out *o, const struct fmt_spec *f, const char *s, size_t n)
{
	if (!f->left)
		out_pad(o, ' ', f->width - (int)n);
	for (size_t i = 0; i < n; i++)
		out_char(o, s[i]);
	if (f->left)
		out_pad(o, ' ', f->width - (int)n);
}

/* An integer: its digits in base (8, 10, 16), a sign or 0x prefix, padded. */
static void out_num(struct fmt_out *o, const struct fmt_spec *f, unsigned long long v, bool neg,
		    unsigned int base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24], prefix[3];
	int n = 0, np = 0, zeros, nd;

	while (v) {
		tmp[n++] = digits[v % base];
		v /= base;
	}
	if (!n && f->prec != 0)
		tmp[n++] = '0';
	if (neg)
		prefix[np++] = '-';
	else if (f->plus)
		prefix[np++] = '+';
	else if (f->space)
		prefix[np++] = ' ';
	zeros = f->prec > n ? f->prec - n : 0;
	if (f->alt && base == 16 && n && !(n == 1 && tmp[0] == '0')) {
		prefix[np++] = '0';
		prefix[np++] = upper ? 'X' : 'x';
	} else if (f->alt && base == 8 && !zeros && (!n || tmp[n - 1] != '0')) {
		zeros = 1; /* # raises the precision until the first digit is 0 */
	}
	if (f->zero && !f->left && f->prec < 0)
		zeros = MAX(zeros, f->width - np - n);
	nd = np + zeros + n;
	if (!f->left)
		out_pad(o, ' ', f->width - nd);
	for (int i = 0; i < np; i++)
		out_char(o, prefix[i]);
	out_pad(o, '0', zeros);
	while (n)
		out_char(o, tmp[--n]);
	if (f->left)
		out_pad(o, ' ', f->width - nd);
}

/*
 * A double in fixed notation (%f, and also for %e, %g, %a: a log line needs
 * the value, not the exact notation), without the C library's conversion.
 */
static void out_double(struct fmt_out *o, const struct fmt_spec *f, double d)
{
	struct fmt_spec ip = {.prec = -1, .plus = f->plus, .space = f->space};
	struct fmt_spec fp = {.prec = f->prec < 0 ? 6 : MIN(f->prec, 18)};
	unsigned long long whole, frac, scale = 1;
	char tmp[48];
	struct fmt_out t = {.p = tmp, .cap = sizeof(tmp)};
	bool neg = d < 0;
	size_t sign;

	if (d != d) {
		out_str(o, f, "nan", 3);
		return;
	}
	if (neg)
		d = -d;
	if (d >= 1.8e19) {
		out_str(o, f, neg ? "-inf" : "inf", neg ? 4 : 3);
		return;
	}
	for (int i = 0; i < fp.prec; i++)
		scale *= 10;
	whole = (unsigned long long)d;
	frac = (unsigned long long)((d - (double)whole) * (double)scale + 0.5);
	if (frac >= scale) {
		whole++;
		frac -= scale;
	}
	out_num(&t, &ip, whole, neg, 10, false);
	if (fp.prec || f->alt)
		out_char(&t, '.');
	if (fp.prec)
		out_num(&t, &fp, frac, false, 10, false);
	sign = tmp[0] == '-' || tmp[0] == '+' || tmp[0] == ' ';
	if (f->zero && !f->left) {
		/* Zeros go between the sign and the digits. */
		for (size_t i = 0; i < sign; i++)
			out_char(o, tmp[i]);
		out_pad(o, '0', f->width - (int)t.len);
		for (size_t i = sign; i < t.len; i++)
			out_char(o, tmp[i]);
		return;
	}
	ip = (struct fmt_spec){.left = f->left, .width = f->width, .prec = -1};
	out_str(o, &ip, tmp, t.len);
}

/*
 * vsnprintf() for what faultline's log lines use: flags - 0 # + space, a
 * width and a precision (numbers or *), the lengths hh h l ll z j t, and the
 * conversions d i u o x X c s p m % (and e f g a as fixed point).  Anything
 * else is copied as it stands.  Async-signal-safe: no allocation, no locale,
 * no lock.  Return: the length the whole output would have.
 */
static size_t fl_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct fmt_out o = {.p = buf, .cap = size ? size - 1 : 0};

	while (*fmt) {
		const char *spec = fmt;
		struct fmt_spec f = {.prec = -1};
		unsigned long long v = 0;
		int len = 0; /* 'H' hh, 'h', 'l', 'L' ll / j / z / t */
		bool neg = false;

		if (*fmt != '%') {
			out_char(&o, *fmt++);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '-')
				f.left = true;
			else if (*fmt == '0')
				f.zero = true;
			else if (*fmt == '#')
				f.alt = true;
			else if (*fmt == '+')
				f.plus = true;
			else if (*fmt == ' ')
				f.space = true;
			else
				break;
		}
		if (*fmt == '*') {
			f.width = va_arg(ap, int);
			if (f.width < 0) {
				f.left = true;
				f.width = -f.width;
			}
			fmt++;
		} else {
			for (; *fmt >= '0' && *fmt <= '9'; fmt++)
				f.width = MIN(f.width * 10 + (*fmt - '0'), 4096);
		}
		if (*fmt == '.') {
			fmt++;
			f.prec = 0;
			if (*fmt == '*') {
				f.prec = va_arg(ap, int);
				fmt++;
			} else {
				for (; *fmt >= '0' && *fmt <= '9'; fmt++)
					f.prec = MIN(f.prec * 10 + (*fmt - '0'), 4096);
			}
		}
		if (*fmt == 'h') {
			len = *++fmt == 'h' ? 'H' : 'h';
			fmt += len == 'H';
		} else if (*fmt == 'l') {
			len = *++fmt == 'l' ? 'L' : 'l';
			fmt += len == 'L';
		} else if (*fmt == 'j' || *fmt == 'z' || *fmt == 't' || *fmt == 'q') {
			len = 'L'; /* 64-bit on every target faultline builds for */
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			long long s = len == 'L'   ? va_arg(ap, long long)
				      : len == 'l' ? va_arg(ap, long)
						   : va_arg(ap, int);
			if (len == 'h')
				s = (short)s;
			else if (len == 'H')
				s = (signed char)s;
			neg = s < 0;
			v = neg ? 0ULL - (unsigned long long)s : (unsigned long long)s;
			out_num(&o, &f, v, neg, 10, false);
			break;
		}
		case 'u':
		case 'o':
		case 'x':
		case 'X':
			v = len == 'L'	 ? va_arg(ap, unsigned long long)
			    : len == 'l' ? va_arg(ap, unsigned long)
					 : va_arg(ap, unsigned int);
			if (len == 'h')
				v = (unsigned short)v;
			else if (len == 'H')
				v = (unsigned char)v;
			out_num(&o, &f, v, false,
				*fmt == 'u'   ? 10
				: *fmt == 'o' ? 8
					      : 16,
				*fmt == 'X');
			break;
		case 'p': {
			void *p = va_arg(ap, void *);
			if (!p) {
				out_str(&o, &f, "(nil)", 5);
				break;
			}
			f.alt = true;
			out_num(&o, &f, (unsigned long)p, false, 16, false);
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			out_str(&o, &f, &c, 1);
			break;
		}
		case 's':
		case 'm': {
			const char *s = *fmt == 'm' ? fl_strerror(errno) : va_arg(ap, const char *);
			size_t n = 0;
			if (!s)
				s = "(null)";
			while (s[n] && (f.prec < 0 || n < (size_t)f.prec))
				n++;
			out_str(&o, &f, s, n);
			break;
		}
		case 'e':
		case 'E':
		case 'f':
		case 'F':
		case 'g':
		case 'G':
		case 'a':
		case 'A':
			out_double(&o, &f, va_arg(ap, double));
			break;
		case '%':
			out_char(&o, '%');
			break;
		default:
			/* Not a conversion we know: show it as it was written. */
			while (spec < fmt + (*fmt != 0))
				out_char(&o, *spec++);
			if (!*fmt)
				continue;
			break;
		}
		fmt++;
	}
	if (size)
		buf[MIN(o.len, o.cap)] = 0;
	return o.len;
}

size_t fl_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = fl_vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void fl_log(const char *fmt, ...)
{
	static const char prefix[] = "faultline: ";
	char buf[1024];
	va_list ap;
	size_t len = sizeof(prefix) - 1;

	memcpy(buf, prefix, len);
	va_start(ap, fmt);
	len += fl_vformat(buf + len, sizeof(buf) - len - 1, fmt, ap);
	va_end(ap);
	len = MIN(len, sizeof(buf) - 2); /* what was kept, and room for \n */
	if (len && buf[len - 1] != '\n')
		buf[len++] = '\n';
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

static FL_TLS pid_t tid;

/* In the child of fork(): the thread has a new id. */
void fl_gettid_reset(void)
{
	tid = 0;
}

/*
 * After fork(), a mutex its prepare handler took: let go in the parent;
 * made fresh in the child, whose one thread is not the holder glibc names.
 */
void fl_mutex_after_fork(pthread_mutex_t *m, bool child)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	if (child)
		memcpy(m, &fresh, sizeof(fresh));
	else
		pthread_mutex_unlock(m);
}

pid_t fl_gettid(void)
{
	if (!tid)
		tid = (pid_t)syscall(SYS_gettid);
	return tid;
}
