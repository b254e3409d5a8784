// SPDX-License-Identifier: MIT
/*
 * Options: one table, read from FAULTLINE_<NAME> environment variables
 * (names and values case-insensitive; booleans 1/true/on/yes, 0/false/off/no;
 * sizes and counts with K/M/G suffixes; times in microseconds, or with a
 * us or ms suffix).  A bad value gets a warning on stderr
 * and the default is kept.  Fields set in struct fl_config after
 * fl_config_init() override the environment.
 */
#include "options.h"

#include <ctype.h>
#include <strings.h>

#include "lib.h"

enum opt_kind { OPT_UINT, OPT_BOOL, OPT_DELIVERY, OPT_SIZE, OPT_STRING, OPT_POLICY, OPT_USEC };

struct option_desc {
	const char *name; /* FAULTLINE_<name>, lower case here */
	enum opt_kind kind;
	size_t offset;
	unsigned long def, min, max;
	const char *help;
};

#define OPT(n, k, field, d, lo, hi, h)                                \
	{                                                             \
		n, k, offsetof(struct fl_config, field), d, lo, hi, h \
	}

static const struct option_desc options[] = {
	OPT("handlers", OPT_UINT, handlers, 2, 1, 64, "fault-handler threads (thread delivery)"),
	OPT("delivery", OPT_DELIVERY, delivery, FL_DELIVERY_THREAD, 0, 1,
	    "how faults arrive: thread or sigbus"),
	OPT("fault_around", OPT_UINT, fault_around, 16, 1, 512,
	    "pages mapped around a read fault (zero page); 1 disables"),
	OPT("fault_around_max", OPT_UINT, fault_around_max, 256, 1, 4096,
	    "largest first-touch window, reached on sequential faults"),
	OPT("verbose", OPT_BOOL, verbose, 0, 0, 1, "log to stderr"),
	OPT("mem_limit", OPT_SIZE, mem_limit, 0, 0, ULONG_MAX,
	    "resident bytes allowed (K/M/G); 0: no limit, no swap"),
	OPT("swap", OPT_STRING, swap_path, 0, 0, 0,
	    "swap file or block device; unset: a temporary file in $TMPDIR"),
	OPT("policy", OPT_POLICY, policy, FL_POLICY_DROP, 0, 4,
	    "fault wait policy: mmap, bail, drop, drop-vma, hold"),
	OPT("swap_frames", OPT_UINT, swap_frames, 1024, 16, 1u << 20,
	    "I/O buffers of one page: swap cache and writeback"),
	OPT("watermark", OPT_SIZE, watermark, 0, 0, ULONG_MAX,
	    "free bytes kept under the limit by the background reclaimer; 0: limit/32"),
	OPT("swap_delay", OPT_USEC, swap_delay_us, 0, 0, 10000000,
	    "emulated store latency: no I/O completes sooner (us, or us/ms suffix); 0: none"),
};

static const char *const policy_names[FL_POLICY_NR] = {"mmap", "bail", "drop", "drop-vma", "hold"};
static const char *const delivery_names[] = {"thread", "sigbus"};

FL_EXPORT const char *fl_policy_name(int policy)
{
	return policy >= 0 && policy < FL_POLICY_NR ? policy_names[policy] : NULL;
}

FL_EXPORT int fl_policy_by_name(const char *name)
{
	for (int i = 0; name && i < FL_POLICY_NR; i++)
		if (!strcasecmp(name, policy_names[i]))
			return i;
	return -EINVAL;
}

FL_EXPORT const char *fl_delivery_name(int delivery)
{
	return delivery >= 0 && delivery < (int)ARRAY_SIZE(delivery_names)
		       ? delivery_names[delivery]
		       : NULL;
}

FL_EXPORT int fl_delivery_by_name(const char *name)
{
	for (int i = 0; name && i < (int)ARRAY_SIZE(delivery_names); i++)
		if (!strcasecmp(name, delivery_names[i]))
			return i;
	return -EINVAL;
}

static unsigned int *uint_field(struct fl_config *cfg, const struct option_desc *o)
{
	return (unsigned int *)((char *)cfg + o->offset);
}

static int *int_field(struct fl_config *cfg, const struct option_desc *o)
{
	return (int *)((char *)cfg + o->offset);
}

static size_t *size_field(struct fl_config *cfg, const struct option_desc *o)
{
	return (size_t *)((char *)cfg + o->offset);
}

static const char **string_field(struct fl_config *cfg, const struct option_desc *o)
{
	return (const char **)((char *)cfg + o->offset);
}

static unsigned long get_field(struct fl_config *cfg, const struct option_desc *o)
{
	switch (o->kind) {
	case OPT_UINT:
	case OPT_USEC:
		return *uint_field(cfg, o);
	case OPT_SIZE:
		return *size_field(cfg, o);
	case OPT_STRING:
		return 0;
	default:
		return (unsigned long)*int_field(cfg, o);
	}
}

static void set_field(struct fl_config *cfg, const struct option_desc *o, unsigned long v)
{
	switch (o->kind) {
	case OPT_UINT:
	case OPT_USEC:
		*uint_field(cfg, o) = (unsigned int)v;
		break;
	case OPT_SIZE:
		*size_field(cfg, o) = v;
		break;
	case OPT_STRING:
		break;
	default:
		*int_field(cfg, o) = (int)v;
	}
}

/* The number s starts with (spaces first), in base; *end after it. */
static bool leading_number(const char *s, int base, unsigned long *v, char **end)
{
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoul(s, end, base);
	return !errno;
}

/* Only spaces left after a number. */
static bool only_spaces(const char *end)
{
	while (isspace((unsigned char)*end))
		end++;
	return !*end;
}

static bool parse_uint(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!leading_number(s, 0, &v, &end))
		return false;
	switch (tolower((unsigned char)*end)) {
	case 'g':
		v <<= 10;
		/* fallthrough */
	case 'm':
		v <<= 10;
		/* fallthrough */
	case 'k':
		v <<= 10;
		end++;
		if (tolower((unsigned char)*end) == 'i')
			end++;
		if (tolower((unsigned char)*end) == 'b')
			end++;
		break;
	}
	if (!only_spaces(end))
		return false;
	*out = v;
	return true;
}

/* Microseconds: a decimal number, optionally with "us" or "ms". */
static bool parse_usec(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!leading_number(s, 10, &v, &end))
		return false;
	if (!strncasecmp(end, "ms", 2)) {
		if (v > ULONG_MAX / 1000)
			return false;
		v *= 1000;
		end += 2;
	} else if (!strncasecmp(end, "us", 2)) {
		end += 2;
	}
	if (!only_spaces(end))
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, unsigned long *out)
{
	static const char *yes[] = {"1", "true", "on", "yes"};
	static const char *no[] = {"0", "false", "off", "no"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return true;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return true;
		}
	}
	return false;
}

void fl_options_defaults(struct fl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		set_field(cfg, &options[i], options[i].def);
}

void fl_options_from_env(struct fl_config *cfg)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		char name[64];
		unsigned long v;
		bool ok;

		snprintf(name, sizeof(name), "FAULTLINE_%s", o->name);
		for (char *p = name; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		const char *s = getenv(name);
		if (!s || !*s)
			continue;
		switch (o->kind) {
		case OPT_UINT:
		case OPT_SIZE:
			ok = parse_uint(s, &v) && v >= o->min && v <= o->max;
			break;
		case OPT_USEC:
			ok = parse_usec(s, &v) && v >= o->min && v <= o->max;
			break;
		case OPT_STRING:
			*string_field(cfg, o) = s;
			continue;
		case OPT_POLICY:
		case OPT_DELIVERY: {
			int k = o->kind == OPT_POLICY ? fl_policy_by_name(s)
						      : fl_delivery_by_name(s);
			ok = k >= 0;
			v = (unsigned long)k;
			break;
		}
		case OPT_BOOL:
			ok = parse_bool(s, &v);
			break;
		default:
			ok = false;
		}
		if (!ok) {
			fl_log("warning: %s=\"%s\" is not valid (%s; range %lu..%lu), "
			       "keeping the default",
			       name, s, o->help, o->min, o->max);
			continue;
		}
		set_field(cfg, o, v);
	}
}

int fl_options_validate(const struct fl_config *cfg)
{
	struct fl_config c = *cfg;

	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		unsigned long v = get_field(&c, o);
		if (o->kind != OPT_STRING && (v < o->min || v > o->max))
			return -EINVAL;
	}
	if (cfg->fault_around > cfg->fault_around_max)
		return -EINVAL;
	return 0;
}

void fl_options_print(const struct fl_config *cfg, FILE *out)
{
	struct fl_config c = *cfg;

	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		char name[64], val[64];
		const char *s;

		snprintf(name, sizeof(name), "FAULTLINE_%s", o->name);
		for (char *p = name; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		switch (o->kind) {
		case OPT_DELIVERY:
			snprintf(val, sizeof(val), "%s", fl_delivery_name(*int_field(&c, o)));
			break;
		case OPT_POLICY:
			snprintf(val, sizeof(val), "%s", fl_policy_name(*int_field(&c, o)));
			break;
		case OPT_BOOL:
			snprintf(val, sizeof(val), "%s", *int_field(&c, o) ? "on" : "off");
			break;
		case OPT_STRING:
			s = *string_field(&c, o);
			snprintf(val, sizeof(val), "%s", s ? s : "(default)");
			break;
		case OPT_SIZE:
			snprintf(val, sizeof(val), "%zu", *size_field(&c, o));
			break;
		case OPT_USEC:
			snprintf(val, sizeof(val), "%uus", *uint_field(&c, o));
			break;
		default:
			snprintf(val, sizeof(val), "%u", *uint_field(&c, o));
			break;
		}
		fprintf(out, "  %-28s %-10s %s\n", name, val, o->help);
	}
}

FL_EXPORT int fl_config_init(struct fl_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	fl_options_defaults(cfg);
	fl_options_from_env(cfg);
	return 0;
}
