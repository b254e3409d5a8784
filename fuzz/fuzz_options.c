// SPDX-License-Identifier: MIT
/*
 * fuzz_options: the option parser (src/options.c) against a reference
 * parser written here from the documented grammar, and against itself.
 *
 * The input: byte 0 chooses the mode, the rest is lines "name=value" (a
 * line without '=' is a name with an empty value).
 *
 *   program mode (bit 0 clear): each line goes to fl_options_set() on one
 *   configuration, starting from the defaults.  fl_options_set() must
 *   return 0, -EINVAL or -ENOENT; -ENOENT exactly for a name that is no
 *   option (in any case); 0 exactly when the reference parser reads a
 *   value and fl_options_validate() finds that value in range (tried alone
 *   in a copy of the defaults); then the field holds exactly that value (a
 *   size with a K, M or G suffix is a multiple of it), and -EINVAL changes
 *   nothing.  After every line the configuration equals a model updated
 *   from the reference; at the end fl_options_validate() accepts it
 *   unless fault_around exceeds fault_around_max, the one rule across
 *   fields; and every option, printed by fl_options_print() and parsed
 *   again from what it printed, gives the same field.
 *
 *   environment mode (bit 0 set): each line with an option's name sets
 *   FAULTLINE_<NAME> (the last one wins), then fl_config_init() reads them:
 *   a valid value is taken as fl_options_set() takes it, an empty one is
 *   no value, a bad one keeps the default, except for the options that
 *   protect memory or data (faultline.h), where fl_options_validate() must
 *   then refuse the configuration.
 *
 * The reference grammar (options.c's opening comment and the README):
 * leading spaces; sizes and counts decimal digits without sign or base
 * prefix, with an optional K, M or G, then an optional i and B, then only
 * spaces; times decimal microseconds, with an optional us or ms, then only
 * spaces; booleans exactly 1/true/on/yes or 0/false/off/no; a policy or a
 * delivery by its name; all in any case; nothing that overflows.  A policy
 * may also be given per kind of VMA: "anon=NAME", "file=NAME", or both
 * separated by a comma, each kind once; it sets two fields (policy and
 * file_policy), which this fuzzer reads and writes as one value, the
 * anonymous policy plus the file policy plus one shifted by 8 (0: as anon).
 *
 * Warnings of the parser go to stderr, muted here while a call is expected
 * to print one (FUZZ_VERBOSE=1 keeps them).
 */
#define _GNU_SOURCE
#include "options.h"

#include <ctype.h>
#include <fcntl.h>
#include <strings.h>

enum kind { K_UINT, K_SIZE, K_USEC, K_BOOL, K_POLICY, K_DELIVERY, K_ZSWAP, K_STRING };

/* The options as faultline.h documents them: FAULTLINE_<NAME> and its field. */
static const struct opt {
	const char *name;
	size_t offset;
	enum kind kind;
	bool strict; /* a bad value in the environment fails fl_space_create() */
} opts[] = {
	{"handlers", offsetof(struct fl_config, handlers), K_UINT, false},
	{"handler_spin", offsetof(struct fl_config, handler_spin_us), K_USEC, false},
	{"handler_pin", offsetof(struct fl_config, handler_pin), K_UINT, false},
	{"delivery", offsetof(struct fl_config, delivery), K_DELIVERY, true},
	{"fault_around", offsetof(struct fl_config, fault_around), K_UINT, false},
	{"fault_around_max", offsetof(struct fl_config, fault_around_max), K_UINT, false},
	{"verbose", offsetof(struct fl_config, verbose), K_BOOL, false},
	{"mem_limit", offsetof(struct fl_config, mem_limit), K_SIZE, true},
	{"swap", offsetof(struct fl_config, swap_path), K_STRING, true},
	{"policy", offsetof(struct fl_config, policy), K_POLICY, true},
	{"swap_frames", offsetof(struct fl_config, swap_frames), K_UINT, false},
	{"watermark", offsetof(struct fl_config, watermark), K_SIZE, true},
	{"swap_delay", offsetof(struct fl_config, swap_delay_us), K_USEC, false},
	{"swap_create", offsetof(struct fl_config, swap_create), K_BOOL, true},
	{"swap_encrypt", offsetof(struct fl_config, swap_encrypt), K_BOOL, true},
	{"dirty_background_ratio", offsetof(struct fl_config, dirty_background_ratio), K_UINT,
	 false},
	{"dirty_ratio", offsetof(struct fl_config, dirty_ratio), K_UINT, false},
	{"ws_record", offsetof(struct fl_config, ws_record), K_STRING, false},
	{"ws_replay", offsetof(struct fl_config, ws_replay), K_STRING, false},
	{"zswap", offsetof(struct fl_config, zswap), K_ZSWAP, true},
	{"zswap_max", offsetof(struct fl_config, zswap_max), K_SIZE, true},
	{"zswap_keep_incompressible", offsetof(struct fl_config, zswap_keep_incompressible), K_BOOL,
	 true},
	{"prefetch", offsetof(struct fl_config, prefetch), K_BOOL, false},
	{"fork", offsetof(struct fl_config, fork), K_BOOL, true},
	{"remote_replicas", offsetof(struct fl_config, remote_replicas), K_UINT, true},
	{"remote_timeout", offsetof(struct fl_config, remote_timeout_us), K_USEC, false},
};

#define NOPTS ARRAY_SIZE(opts)
#define MAX_LINES 16

static struct fl_config defaults;
static bool verbose;
static int saved_stderr = -1, devnull = -1;

#define FAIL(...)                                              \
	do {                                                   \
		quiet_end();                                   \
		fprintf(stderr, "fuzz_options: " __VA_ARGS__); \
		fputc('\n', stderr);                           \
		abort();                                       \
	} while (0)

static void quiet_begin(void)
{
	if (verbose || saved_stderr >= 0)
		return;
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(devnull, 2);
}

static void quiet_end(void)
{
	if (saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
}

static const struct opt *find_opt(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (!strcasecmp(name, opts[i].name))
			return &opts[i];
	return NULL;
}

static void *fieldp(struct fl_config *c, const struct opt *o)
{
	return (char *)c + o->offset;
}

/* The field as a number (strings: 0). */
static unsigned long get(const struct fl_config *c, const struct opt *o)
{
	const void *p = (const char *)c + o->offset;

	switch (o->kind) {
	case K_UINT:
	case K_USEC:
		return *(const unsigned int *)p;
	case K_SIZE:
		return *(const size_t *)p;
	case K_STRING:
		return 0;
	case K_POLICY:
		if (c->policy < 0 || c->file_policy < -1)
			return (unsigned long)-1;
		return (unsigned long)c->policy | ((unsigned long)(c->file_policy + 1) << 8);
	default:
		return (unsigned long)(long)*(const int *)p;
	}
}

/* Store v in the field.  Return: false if the field's type cannot hold it. */
static bool put(struct fl_config *c, const struct opt *o, unsigned long v)
{
	void *p = fieldp(c, o);

	switch (o->kind) {
	case K_UINT:
	case K_USEC:
		if (v > UINT_MAX)
			return false;
		*(unsigned int *)p = (unsigned int)v;
		return true;
	case K_SIZE:
		*(size_t *)p = v;
		return true;
	case K_STRING:
		return true;
	case K_POLICY:
		if (v > INT_MAX)
			return false;
		c->policy = (int)(v & 0xff);
		c->file_policy = (int)(v >> 8) - 1;
		return true;
	default:
		if (v > INT_MAX)
			return false;
		*(int *)p = (int)v;
		return true;
	}
}

/* ---------------------------------------------------- the reference parser */

static const char *skip_spaces(const char *s)
{
	while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		s++;
	return s;
}

static bool ref_number(const char **sp, unsigned long *v)
{
	const char *s = skip_spaces(*sp);
	unsigned long n = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(n, 10UL, &n) ||
		    __builtin_add_overflow(n, (unsigned long)(*s - '0'), &n))
			return false;
	*sp = s;
	*v = n;
	return true;
}

/* Return: the suffix's multiplier (1 without one) through *unit. */
static bool ref_size(const char *s, unsigned long *v, unsigned long *unit)
{
	unsigned long n;

	*unit = 1;
	if (!ref_number(&s, &n))
		return false;
	switch (*s | 0x20) {
	case 'k':
		*unit = 1UL << 10;
		break;
	case 'm':
		*unit = 1UL << 20;
		break;
	case 'g':
		*unit = 1UL << 30;
		break;
	}
	if (*unit > 1) {
		s++;
		if ((*s | 0x20) == 'i')
			s++;
		if ((*s | 0x20) == 'b')
			s++;
		if (__builtin_mul_overflow(n, *unit, &n))
			return false;
	}
	if (*skip_spaces(s))
		return false;
	*v = n;
	return true;
}

static bool ref_usec(const char *s, unsigned long *v)
{
	unsigned long n;

	if (!ref_number(&s, &n))
		return false;
	if (!strncasecmp(s, "ms", 2)) {
		if (__builtin_mul_overflow(n, 1000UL, &n))
			return false;
		s += 2;
	} else if (!strncasecmp(s, "us", 2)) {
		s += 2;
	}
	if (*skip_spaces(s))
		return false;
	*v = n;
	return true;
}

static bool ref_bool(const char *s, unsigned long *v)
{
	static const char *const words[] = {"0", "false", "off", "no", "1", "true", "on", "yes"};

	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		if (!strcasecmp(s, words[i])) {
			*v = i >= 4;
			return true;
		}
	}
	return false;
}

static bool ref_name(const char *s, unsigned long *v, const char *(*name)(int))
{
	for (int i = 0; name(i); i++) {
		if (!strcasecmp(s, name(i))) {
			*v = (unsigned long)i;
			return true;
		}
	}
	return false;
}

/* "anon=NAME", "file=NAME", or both with a comma: the two policies. */
static bool ref_policy(const char *s, unsigned long *v)
{
	unsigned long anon = FL_POLICY_DROP, file = 0, k;
	bool seen_anon = false, seen_file = false;

	if (!strchr(s, '='))
		return ref_name(s, v, fl_policy_name);
	for (;;) {
		const char *eq = strchr(s, '='), *comma;
		char name[64];
		size_t n;

		if (!eq)
			return false;
		comma = strchr(eq, ',');
		n = comma ? (size_t)(comma - eq - 1) : strlen(eq + 1);
		if (n >= sizeof(name))
			return false;
		memcpy(name, eq + 1, n);
		name[n] = 0;
		if (!ref_name(name, &k, fl_policy_name))
			return false;
		if ((size_t)(eq - s) == 4 && !strncasecmp(s, "anon", 4) && !seen_anon) {
			anon = k;
			seen_anon = true;
		} else if ((size_t)(eq - s) == 4 && !strncasecmp(s, "file", 4) && !seen_file) {
			file = k + 1;
			seen_file = true;
		} else {
			return false;
		}
		if (!comma)
			break;
		s = comma + 1;
	}
	*v = anon | file << 8;
	return true;
}

/* The value s of o as the grammar reads it, before any range.  *unit: a size's suffix. */
static bool ref_parse(const struct opt *o, const char *s, unsigned long *v, unsigned long *unit)
{
	*unit = 1;
	switch (o->kind) {
	case K_UINT:
	case K_SIZE:
		return ref_size(s, v, unit);
	case K_USEC:
		return ref_usec(s, v);
	case K_BOOL:
		return ref_bool(s, v);
	case K_POLICY:
		return ref_policy(s, v);
	case K_DELIVERY:
		return ref_name(s, v, fl_delivery_name);
	case K_ZSWAP:
		return ref_name(s, v, zswap_algo_name);
	case K_STRING:
		*v = 0;
		return true;
	}
	return false;
}

/* v alone, in a copy of the defaults: within the option's range? */
static bool in_range(const struct opt *o, unsigned long v)
{
	struct fl_config c = defaults;
	int ret;

	if (!put(&c, o, v))
		return false;
	/* The rule across fields is not this option's range: the other field
	 * moves to keep it. */
	if (o->offset == offsetof(struct fl_config, fault_around))
		c.fault_around_max = MAX(c.fault_around, defaults.fault_around_max);
	if (o->offset == offsetof(struct fl_config, fault_around_max))
		c.fault_around = MIN(c.fault_around_max, defaults.fault_around);
	quiet_begin();
	ret = fl_options_validate(&c);
	quiet_end();
	return ret == 0;
}

/* ------------------------------------------------------------- the modes */

/* One line of the input, split at the first '='. */
struct line {
	char name[64];
	const char *value;
};

static int split_lines(char *text, struct line *lines)
{
	int n = 0;

	for (char *s = text; s && *s && n < MAX_LINES; n++) {
		char *nl = strchr(s, '\n'), *eq;

		if (nl)
			*nl = 0;
		eq = strchr(s, '=');
		if (eq)
			*eq = 0;
		snprintf(lines[n].name, sizeof(lines[n].name), "%s", s);
		lines[n].value = eq ? eq + 1 : "";
		s = nl ? nl + 1 : NULL;
	}
	return n;
}

/* Every option printed by fl_options_print() and parsed back gives the same field. */
static void check_print_round_trip(const struct fl_config *cfg)
{
	char *text = NULL, *save = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	size_t seen = 0;

	if (!f)
		FAIL("open_memstream");
	fl_options_print(cfg, f);
	fclose(f);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char var[64], val[64];
		const struct opt *o;
		struct fl_config c = defaults;
		int ret;

		if (sscanf(l, " FAULTLINE_%63s %63s", var, val) != 2)
			FAIL("fl_options_print printed \"%s\"", l);
		o = find_opt(var);
		if (!o)
			FAIL("fl_options_print printed FAULTLINE_%s, which is no option here: a "
			     "new "
			     "option needs its line in fuzz_options.c",
			     var);
		seen++;
		if (o->kind == K_STRING)
			continue;
		ret = fl_options_set(&c, var, val);
		if (ret || get(&c, o) != get(cfg, o))
			FAIL("%s printed as \"%s\" (field %lu) parses back to %d, field %lu",
			     o->name, val, get(cfg, o), ret, get(&c, o));
	}
	free(text);
	if (seen != NOPTS)
		FAIL("fl_options_print printed %zu options, this fuzzer knows %zu", seen, NOPTS);
}

static void program_mode(struct line *lines, int n)
{
	struct fl_config cfg = defaults, model = defaults;
	int ret;

	for (int i = 0; i < n; i++) {
		const struct opt *o = find_opt(lines[i].name);
		unsigned long v = 0, unit = 1;
		bool want;

		ret = fl_options_set(&cfg, lines[i].name, lines[i].value);
		if (ret != 0 && ret != -EINVAL && ret != -ENOENT)
			FAIL("fl_options_set(\"%s\", \"%s\") returned %d", lines[i].name,
			     lines[i].value, ret);
		if (!o) {
			if (ret != -ENOENT)
				FAIL("fl_options_set(\"%s\") of no option returned %d",
				     lines[i].name, ret);
			continue;
		}
		if (ret == -ENOENT)
			FAIL("fl_options_set(\"%s\"): -ENOENT for the option %s", lines[i].name,
			     o->name);
		want = ref_parse(o, lines[i].value, &v, &unit) && in_range(o, v);
		if (want != (ret == 0))
			FAIL("%s=\"%s\": fl_options_set returned %d; the reference %s", o->name,
			     lines[i].value, ret,
			     want ? "reads it as a value in range"
			     : ref_parse(o, lines[i].value, &v, &unit)
				     ? "reads it as a value out of range"
				     : "reads no value");
		if (ret == 0) {
			if (o->kind == K_STRING) {
				*(const char **)fieldp(&model, o) = lines[i].value;
			} else {
				put(&model, o, v);
				if (get(&cfg, o) != v)
					FAIL("%s=\"%s\": field %lu, the reference reads %lu",
					     o->name, lines[i].value, get(&cfg, o), v);
				if (get(&cfg, o) % unit)
					FAIL("%s=\"%s\": %lu is no multiple of its suffix's %lu",
					     o->name, lines[i].value, get(&cfg, o), unit);
			}
		}
		if (memcmp(&cfg, &model, sizeof(cfg)))
			FAIL("after %s=\"%s\" (returned %d) the configuration differs from the "
			     "model: another field changed",
			     o->name, lines[i].value, ret);
	}
	quiet_begin();
	ret = fl_options_validate(&cfg);
	quiet_end();
	if ((ret == 0) != (cfg.fault_around <= cfg.fault_around_max))
		FAIL("fl_options_validate: %d for fault_around %u, fault_around_max %u, every "
		     "field set in range",
		     ret, cfg.fault_around, cfg.fault_around_max);
	check_print_round_trip(&cfg);
}

/* FAULTLINE_<NAME> of option o. */
static void env_name(const struct opt *o, char *buf, size_t size)
{
	snprintf(buf, size, "FAULTLINE_%s", o->name);
	for (char *p = buf; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

/*
 * The environment of one input, set with putenv() from strings of our own
 * and freed once unset: setenv() keeps every string it was ever given
 * (glibc never frees them), which over millions of inputs grows the
 * fuzzer's memory without end.
 */
static char *env_strings[NOPTS];

static void env_clear(void)
{
	char var[80];

	for (size_t i = 0; i < NOPTS; i++) {
		env_name(&opts[i], var, sizeof(var));
		unsetenv(var);
		free(env_strings[i]);
		env_strings[i] = NULL;
	}
}

static void env_mode(struct line *lines, int n)
{
	const char *value[NOPTS] = {0};
	struct fl_config cfg, c;
	bool bad_strict = false;
	char var[80];
	int ret;

	for (int i = 0; i < n; i++) {
		const struct opt *o = find_opt(lines[i].name);

		if (o)
			value[o - opts] = lines[i].value;
	}
	for (size_t i = 0; i < NOPTS; i++) {
		if (!value[i])
			continue;
		env_name(&opts[i], var, sizeof(var));
		if (asprintf(&env_strings[i], "%s=%s", var, value[i]) < 0)
			FAIL("asprintf");
		putenv(env_strings[i]);
	}
	quiet_begin();
	ret = fl_config_init(&cfg);
	quiet_end();
	if (ret)
		FAIL("fl_config_init: %d", ret);
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];

		c = defaults;
		if (!value[i] || !*value[i]) {
			if (o->kind == K_STRING ? *(const char **)fieldp(&cfg, o) != NULL
						: get(&cfg, o) != get(&defaults, o))
				FAIL("FAULTLINE_%s unset or empty: field %lu, default %lu", o->name,
				     get(&cfg, o), get(&defaults, o));
		} else if (!fl_options_set(&c, o->name, value[i])) {
			if (o->kind == K_STRING
				    ? strcmp(*(const char **)fieldp(&cfg, o), value[i]) != 0
				    : get(&cfg, o) != get(&c, o))
				FAIL("FAULTLINE_%s=\"%s\": field %lu, fl_options_set gives %lu",
				     o->name, value[i], get(&cfg, o), get(&c, o));
		} else if (o->strict) {
			bad_strict = true;
		} else if (get(&cfg, o) != get(&defaults, o)) {
			FAIL("FAULTLINE_%s=\"%s\" is bad and not strict: field %lu, default %lu",
			     o->name, value[i], get(&cfg, o), get(&defaults, o));
		}
		if (o->kind == K_STRING)
			continue;
		if (!value[i] || !*value[i] || !fl_options_set(&c, o->name, value[i]) || !o->strict)
			continue;
		/* A bad strict value: this field, and only it, refuses validation. */
		c = defaults;
		memcpy(fieldp(&c, o), fieldp(&cfg, o),
		       o->kind == K_SIZE ? sizeof(size_t) : sizeof(int));
		quiet_begin();
		ret = fl_options_validate(&c);
		quiet_end();
		if (ret != -EINVAL)
			FAIL("FAULTLINE_%s=\"%s\" is bad and strict, yet the field (%lu) "
			     "validates: %d",
			     o->name, value[i], get(&cfg, o), ret);
	}
	if (bad_strict) {
		quiet_begin();
		ret = fl_options_validate(&cfg);
		quiet_end();
		if (ret != -EINVAL)
			FAIL("a bad value of a strict option, yet the configuration validates");
	}
	env_clear();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("FUZZ_VERBOSE") && atoi(getenv("FUZZ_VERBOSE"));
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	env_clear();
	fl_options_defaults(&defaults);
	if (fl_options_validate(&defaults))
		FAIL("the defaults do not validate");
	check_print_round_trip(&defaults);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct line lines[MAX_LINES];
	char *text;
	int n;

	if (!size)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	n = split_lines(text, lines);
	if (data[0] & 1)
		env_mode(lines, n);
	else
		program_mode(lines, n);
	free(text);
	return 0;
}
