// SPDX-License-Identifier: MIT
/*
 * Options: one table, read from FAULTLINE_<NAME> environment variables.
 * Names and values are case-insensitive; booleans are 1/true/on/yes or
 * 0/false/off/no; sizes and counts are decimal, with an optional K, M or G
 * (binary, KiB/KB alike) suffix; times are microseconds, or end in us or ms.
 * Anything else is not a value: no octal, no hex, no sign, no overflow.
 *
 * A bad value of an option that protects memory or data (strict: the
 * budget, the watermark, the policy, the delivery, the store's creation and
 * encryption) makes fl_space_create() fail with -EINVAL, naming the
 * variable, rather than run without what it asked for; a bad value of any
 * other option gets a warning and the default.  Each warning is printed once
 * per process.  Fields set in struct fl_config after fl_config_init()
 * override the environment.
 *
 * A privileged process (setuid, setgid, or with file capabilities: the
 * kernel's AT_SECURE) ignores the environment (secure_getenv()): its caller
 * must not choose its store, budget or policy.
 */
#include "options.h"

#include "rstore.h"

#include <ctype.h>
#include <strings.h>

#include "lib.h"

enum opt_kind {
	OPT_UINT,
	OPT_BOOL,
	OPT_DELIVERY,
	OPT_SIZE,
	OPT_STRING,
	OPT_POLICY,
	OPT_USEC,
	OPT_ZSWAP,
};

struct option_desc {
	const char *name; /* FAULTLINE_<name>, lower case here */
	enum opt_kind kind;
	bool strict; /* a bad value fails fl_space_create() */
	size_t offset;
	unsigned long def, min, max;
	const char *help;
};

#define OPT(n, k, strict, field, d, lo, hi, h)                                \
	{                                                                     \
		n, k, strict, offsetof(struct fl_config, field), d, lo, hi, h \
	}

/*
 * The policy option sets two fields, policy and file_policy, held in one
 * value: the anonymous policy in bits 0-7, the file policy plus one above
 * (0: the same as the anonymous one).
 */
#define POLICY_FILE_SHIFT 8
#define POLICY_MAX ((FL_POLICY_NR - 1) | ((unsigned long)FL_POLICY_NR << POLICY_FILE_SHIFT))

/* The largest budget or watermark: 1 PiB.  ULONG_MAX marks a bad value. */
#define SIZE_OPT_MAX (1UL << 50)

static const struct option_desc options[] = {
	OPT("handlers", OPT_UINT, false, handlers, 2, 1, 64,
	    "fault-handler threads (thread delivery)"),
	OPT("handler_spin", OPT_USEC, false, handler_spin_us, 50, 0, 1000,
	    "thread delivery: a handler polls this long for the next fault before it sleeps, "
	    "while fewer threads fault than there are CPUs (us, or us/ms suffix); 0: never"),
	OPT("handler_pin", OPT_UINT, false, handler_pin, 2, 0, 64,
	    "thread delivery: pin a handler to each CPU when the process may use at most this "
	    "many; with fewer threads faulting than CPUs a fault then wakes each, and the one "
	    "on the faulting thread's CPU serves it; 0: never"),
	OPT("delivery", OPT_DELIVERY, true, delivery, FL_DELIVERY_THREAD, 0, 1,
	    "how faults arrive: thread or sigbus"),
	OPT("fault_around", OPT_UINT, false, fault_around, 16, 1, 512,
	    "pages mapped around a read fault (zero page); 1 disables"),
	OPT("fault_around_max", OPT_UINT, false, fault_around_max, 256, 1, 4096,
	    "largest first-touch window, reached on sequential faults"),
	OPT("verbose", OPT_BOOL, false, verbose, 0, 0, 1, "log to stderr"),
	OPT("mem_limit", OPT_SIZE, true, mem_limit, 0, 0, SIZE_OPT_MAX,
	    "resident bytes allowed (K/M/G); 0: no limit, no swap"),
	OPT("swap", OPT_STRING, true, swap_path, 0, 0, 0,
	    "the store: a file or block device formatted by 'faultline mkstore'; "
	    "unset: a temporary file in $TMPDIR"),
	OPT("policy", OPT_POLICY, true, policy, FL_POLICY_DROP, 0, POLICY_MAX,
	    "fault wait policy: mmap, bail, drop, drop-vma, hold; or per kind of VMA, "
	    "anon=NAME,file=NAME"),
	OPT("swap_frames", OPT_UINT, false, swap_frames, 1024, 16, 1u << 20,
	    "I/O buffers of one page: swap cache and writeback"),
	OPT("watermark", OPT_SIZE, true, watermark, 0, 0, SIZE_OPT_MAX,
	    "free bytes kept under the limit by the background reclaimer; 0: limit/32"),
	OPT("swap_delay", OPT_USEC, false, swap_delay_us, 0, 0, 10000000,
	    "emulated store latency: no I/O completes sooner (us, or us/ms suffix); 0: none"),
	OPT("swap_create", OPT_BOOL, true, swap_create, 0, 0, 1,
	    "create and format the store named by FAULTLINE_SWAP if it does not exist"),
	OPT("swap_encrypt", OPT_BOOL, true, swap_encrypt, 0, 0, 1,
	    "encrypt every page in the store (a key per space, never stored)"),
	OPT("dirty_background_ratio", OPT_UINT, false, dirty_background_ratio, 10, 1, 100,
	    "per cent of the budget in dirty file pages at which the flusher writes back"),
	OPT("dirty_ratio", OPT_UINT, false, dirty_ratio, 20, 1, 100,
	    "per cent of the budget in dirty file pages at which stores wait for the flusher"),
	OPT("ws_record", OPT_STRING, false, ws_record, 0, 0, 0,
	    "write the order in which mapped file pages were first touched to this file"),
	OPT("ws_replay", OPT_STRING, false, ws_replay, 0, 0, 0,
	    "read mapped file pages in the order recorded in this file, in the background"),
	OPT("zswap", OPT_ZSWAP, true, zswap, FL_ZSWAP_OFF, 0, FL_ZSWAP_LZO,
	    "the compressed tier in front of the store: off, lz4, zstd, lzo"),
	OPT("zswap_max", OPT_SIZE, true, zswap_max, 0, 0, SIZE_OPT_MAX,
	    "the compressed tier's share of the budget (K/M/G); 0: a fifth of it"),
	OPT("zswap_keep_incompressible", OPT_BOOL, true, zswap_keep_incompressible, 0, 0, 1,
	    "keep a page that does not compress in the compressed tier as it is (the kernel's "
	    "zswap since 6.18); 0: write it to the store"),
	OPT("prefetch", OPT_BOOL, false, prefetch, 1, 0, 1,
	    "prefetch along strided and interleaved trends of major faults, not only sequential"),
	OPT("fork", OPT_BOOL, true, fork, 0, 0, 1,
	    "a child of fork() gets the space's anonymous regions, served by its own copy"),
	OPT("remote_replicas", OPT_UINT, true, remote_replicas, 0, 0, 16,
	    "Redis Cluster store: a write is done when this many replicas have it (WAIT)"),
	OPT("remote_timeout", OPT_USEC, false, remote_timeout_us, 30000000, 100000, 600000000,
	    "Redis Cluster store: a command unanswered after this fails (us, or us/ms suffix)"),
};

static const char *const policy_names[FL_POLICY_NR] = {"mmap", "bail", "drop",	 "drop-vma",
						       "hold", "v2",   "v2-anon"};
static const char *const delivery_names[] = {"thread", "sigbus"};
static const char *const zswap_names[] = {"off", "lz4", "zstd", "lzo"};

const char *zswap_algo_name(int algo)
{
	return algo >= 0 && algo < (int)ARRAY_SIZE(zswap_names) ? zswap_names[algo] : NULL;
}

static int zswap_by_name(const char *name)
{
	for (int i = 0; name && i < (int)ARRAY_SIZE(zswap_names); i++)
		if (!strcasecmp(name, zswap_names[i]))
			return i;
	return -EINVAL;
}

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

static void *field(struct fl_config *cfg, const struct option_desc *o)
{
	return (char *)cfg + o->offset;
}

static unsigned long get_field(struct fl_config *cfg, const struct option_desc *o)
{
	switch (o->kind) {
	case OPT_POLICY:
		if (cfg->policy < 0 || cfg->file_policy < -1)
			return (unsigned long)-1;
		return (unsigned long)cfg->policy |
		       ((unsigned long)(cfg->file_policy + 1) << POLICY_FILE_SHIFT);
	case OPT_UINT:
	case OPT_USEC:
		return *(unsigned int *)field(cfg, o);
	case OPT_SIZE:
		return *(size_t *)field(cfg, o);
	case OPT_STRING:
		return 0;
	default:
		return (unsigned long)(long)*(int *)field(cfg, o);
	}
}

static void set_field(struct fl_config *cfg, const struct option_desc *o, unsigned long v)
{
	switch (o->kind) {
	case OPT_POLICY:
		if (v > POLICY_MAX) {
			cfg->policy = cfg->file_policy = -1; /* a bad value */
		} else {
			cfg->policy = (int)(v & ((1UL << POLICY_FILE_SHIFT) - 1));
			cfg->file_policy = (int)(v >> POLICY_FILE_SHIFT) - 1;
		}
		break;
	case OPT_UINT:
	case OPT_USEC:
		*(unsigned int *)field(cfg, o) = v > UINT_MAX ? UINT_MAX : (unsigned int)v;
		break;
	case OPT_SIZE:
		*(size_t *)field(cfg, o) = v;
		break;
	case OPT_STRING:
		break;
	default:
		*(int *)field(cfg, o) = v > INT_MAX ? -1 : (int)v;
	}
}

/* The value that marks a bad strict option: out of every range. */
static unsigned long bad_value(const struct option_desc *o)
{
	return o->kind == OPT_SIZE			    ? ULONG_MAX
	       : o->kind == OPT_UINT || o->kind == OPT_USEC ? UINT_MAX
							    : (unsigned long)-1;
}

/*
 * A decimal number at the start of s (after spaces): digits only, no sign,
 * no base prefix.  *end is set after it.  Return: false if none, or if it
 * does not fit an unsigned long.
 */
static bool leading_number(const char *s, unsigned long *v, const char **end)
{
	unsigned long n = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');
		if (n > (ULONG_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	*end = s;
	return true;
}

/* Only spaces left. */
static bool only_spaces(const char *end)
{
	while (isspace((unsigned char)*end))
		end++;
	return !*end;
}

bool fl_parse_size(const char *s, unsigned int max_shift, unsigned long *out)
{
	static const char suffixes[] = "kmgt"; /* shifts 10, 20, 30, 40 */
	const char *end, *suffix;
	unsigned int shift = 0;
	unsigned long v;

	if (!leading_number(s, &v, &end))
		return false;
	suffix = *end ? strchr(suffixes, tolower((unsigned char)*end)) : NULL;
	if (suffix)
		shift = 10 * (unsigned int)(suffix - suffixes + 1);
	if (shift > max_shift)
		return false;
	if (shift) {
		end++;
		if (tolower((unsigned char)*end) == 'i')
			end++;
		if (tolower((unsigned char)*end) == 'b')
			end++;
		if (v > ULONG_MAX >> shift)
			return false; /* it would wrap */
		v <<= shift;
	}
	if (!only_spaces(end))
		return false;
	*out = v;
	return true;
}

/* Microseconds: a decimal number, optionally with "us" or "ms". */
static bool parse_usec(const char *s, unsigned long *out)
{
	const char *end;
	unsigned long v;

	if (!leading_number(s, &v, &end))
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

/* Whether v, a policy option's value, names policies that exist. */
static bool policy_valid(unsigned long v)
{
	return v <= POLICY_MAX && (v & ((1UL << POLICY_FILE_SHIFT) - 1)) < FL_POLICY_NR;
}

/*
 * A policy: a name, for every fault; or per kind of VMA, "anon=NAME",
 * "file=NAME" or both, comma-separated, each kind once (a kind not named:
 * anon takes the default, drop; file the same as anon).
 */
static bool parse_policy(const char *s, unsigned long *out)
{
	int anon = -2, file = -2;
	char buf[64], *save = NULL;

	if (!strchr(s, '=')) {
		int k = fl_policy_by_name(s);
		*out = (unsigned long)k;
		return k >= 0;
	}
	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	if (!buf[0] || buf[0] == ',' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,"))
		return false;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int *kind, k;

		if (!eq)
			return false;
		*eq = 0;
		if (!strcasecmp(item, "anon"))
			kind = &anon;
		else if (!strcasecmp(item, "file"))
			kind = &file;
		else
			return false;
		k = fl_policy_by_name(eq + 1);
		if (k < 0 || *kind != -2)
			return false;
		*kind = k;
	}
	if (anon == -2)
		anon = FL_POLICY_DROP;
	*out = (unsigned long)anon |
	       ((unsigned long)(file == -2 ? 0 : file + 1) << POLICY_FILE_SHIFT);
	return true;
}

/* The value s of option o, checked against its range.  Return: whether it is one. */
static bool parse_value(const struct option_desc *o, const char *s, unsigned long *v)
{
	int k;

	switch (o->kind) {
	case OPT_UINT:
	case OPT_SIZE:
		return fl_parse_size(s, 30, v) && *v >= o->min && *v <= o->max;
	case OPT_USEC:
		return parse_usec(s, v) && *v >= o->min && *v <= o->max;
	case OPT_BOOL:
		return parse_bool(s, v);
	case OPT_POLICY:
		return parse_policy(s, v);
	case OPT_DELIVERY:
	case OPT_ZSWAP:
		k = o->kind == OPT_DELIVERY ? fl_delivery_by_name(s) : zswap_by_name(s);
		*v = (unsigned long)k;
		return k >= 0;
	case OPT_STRING:
		return true;
	}
	return false;
}

static void env_name(const struct option_desc *o, char *buf, size_t len)
{
	snprintf(buf, len, "FAULTLINE_%s", o->name);
	for (char *p = buf; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

/* The warnings given (warn_once()): seen and nseen. */
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seen[64];
static unsigned int nseen;

/* fork(): warn_lock held across it (fork_prepare(), space.c), so that the
 * child inherits seen whole; made fresh in the child, whose one thread is
 * not its holder's. */
void options_fork_lock(void)
{
	pthread_mutex_lock(&warn_lock);
}

void options_fork_unlock(bool child)
{
	fl_mutex_after_fork(&warn_lock, child);
}

/*
 * Print a warning once per process for the same option and value: the
 * environment is read by fl_config_init() and, for a NULL configuration,
 * by fl_space_create() too.
 */
static void warn_once(const struct option_desc *o, const char *s, const char *what)
{
	uint64_t h = (uint64_t)(o - options) * 0x9E3779B97F4A7C15ull;
	char name[64];
	bool first = true;

	for (const char *p = s; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	pthread_mutex_lock(&warn_lock);
	for (unsigned int i = 0; i < nseen && first; i++)
		first = seen[i] != h;
	if (first && nseen < ARRAY_SIZE(seen))
		seen[nseen++] = h;
	pthread_mutex_unlock(&warn_lock);
	if (!first)
		return;
	env_name(o, name, sizeof(name));
	if (o->kind == OPT_BOOL || o->kind == OPT_POLICY || o->kind == OPT_DELIVERY ||
	    o->kind == OPT_ZSWAP)
		fl_log("%s=\"%s\" is not valid (%s); %s", name, s, o->help, what);
	else
		fl_log("%s=\"%s\" is not valid (%s; decimal, %lu to %lu); %s", name, s, o->help,
		       o->min, o->max, what);
}

void fl_options_defaults(struct fl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		set_field(cfg, &options[i], options[i].def);
}

int fl_options_set(struct fl_config *cfg, const char *name, const char *value)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		unsigned long v;

		if (strcasecmp(name, o->name))
			continue;
		if (o->kind == OPT_STRING) {
			*(const char **)field(cfg, o) = value;
			return 0;
		}
		if (!parse_value(o, value, &v))
			return -EINVAL;
		set_field(cfg, o, v);
		return 0;
	}
	return -ENOENT;
}

void fl_options_from_env(struct fl_config *cfg, size_t from)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		char name[64];

		if (o->offset < from)
			continue;
		env_name(o, name, sizeof(name));
		const char *s = secure_getenv(name);
		if (!s || !*s)
			continue;
		if (!fl_options_set(cfg, o->name, s))
			continue;
		if (o->strict) {
			/* Out of every range: fl_space_create() refuses it. */
			set_field(cfg, o, bad_value(o));
			warn_once(o, s, "fl_space_create() will fail until it is set right");
		} else {
			warn_once(o, s, "keeping the default");
		}
	}
}

int fl_options_validate(const struct fl_config *cfg)
{
	struct fl_config c = *cfg;

	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		unsigned long v = get_field(&c, o);
		char name[64];

		if (o->kind == OPT_STRING ||
		    (o->kind == OPT_POLICY ? policy_valid(v) : v >= o->min && v <= o->max))
			continue;
		env_name(o, name, sizeof(name));
		if (v == bad_value(o))
			fl_log("%s has no valid value: the space is not created", name);
		else
			fl_log("the configuration's %s (%s) is %lu, out of %lu..%lu: the space is "
			       "not "
			       "created",
			       o->name, name, v, o->min, o->max);
		return -EINVAL;
	}
	if (cfg->fault_around > cfg->fault_around_max) {
		fl_log("fault_around (%u) is above fault_around_max (%u): the space is not created",
		       cfg->fault_around, cfg->fault_around_max);
		return -EINVAL;
	}
	if (cfg->fork && cfg->swap_path && rstore_is_url(cfg->swap_path)) {
		fl_log("FAULTLINE_FORK with a Redis Cluster store is not supported (a child would "
		       "need a copy of every key): the space is not created");
		return -EINVAL;
	}
	return 0;
}

void fl_options_print(const struct fl_config *cfg, FILE *out)
{
	struct fl_config c = *cfg;

	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		unsigned long v = get_field(&c, o);
		char name[64], val[64];
		const char *s;

		env_name(o, name, sizeof(name));
		if (o->kind != OPT_STRING && v == bad_value(o)) {
			snprintf(val, sizeof(val), "(invalid)");
		} else {
			switch (o->kind) {
			case OPT_DELIVERY:
				snprintf(val, sizeof(val), "%s", fl_delivery_name((int)v) ?: "?");
				break;
			case OPT_POLICY:
				if (c.file_policy < 0)
					snprintf(val, sizeof(val), "%s",
						 fl_policy_name(c.policy) ?: "?");
				else
					snprintf(val, sizeof(val), "anon=%s,file=%s",
						 fl_policy_name(c.policy) ?: "?",
						 fl_policy_name(c.file_policy) ?: "?");
				break;
			case OPT_ZSWAP:
				snprintf(val, sizeof(val), "%s", zswap_algo_name((int)v) ?: "?");
				break;
			case OPT_BOOL:
				snprintf(val, sizeof(val), "%s", v ? "on" : "off");
				break;
			case OPT_STRING:
				s = *(const char **)field(&c, o);
				snprintf(val, sizeof(val), "%s", s ? s : "(default)");
				break;
			case OPT_USEC:
				snprintf(val, sizeof(val), "%luus", v);
				break;
			default:
				snprintf(val, sizeof(val), "%lu", v);
				break;
			}
		}
		fprintf(out, "  %-28s %-10s %s\n", name, val, o->help);
	}
}

FL_EXPORT int fl_config_init(struct fl_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	fl_options_defaults(cfg);
	fl_options_from_env(cfg, 0);
	return 0;
}
