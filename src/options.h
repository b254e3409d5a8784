/* SPDX-License-Identifier: MIT */
/*
 * Options: one table (options.c) read from FAULTLINE_<NAME> variables into
 * struct fl_config, checked, and printed by `faultline info`.
 */
#ifndef FL_OPTIONS_H
#define FL_OPTIONS_H

#include "lib.h"

void fl_options_defaults(struct fl_config *cfg);
void options_fork_lock(void);
void options_fork_unlock(bool child);
/* The FAULTLINE_* variables of the fields at offset from and after. */
void fl_options_from_env(struct fl_config *cfg, size_t from);
/* Set option name (the table's lower-case name) from the string value.
 * Return: 0, -EINVAL for a value that is not one, -ENOENT for no such
 * option.  A string option keeps the pointer. */
int fl_options_set(struct fl_config *cfg, const char *name, const char *value);
/* Return: 0, or -EINVAL if a field is out of its range. */
int fl_options_validate(const struct fl_config *cfg);
void fl_options_print(const struct fl_config *cfg, FILE *out);
/* "off", "lz4", "zstd", "lzo" (FAULTLINE_ZSWAP), or NULL out of range. */
const char *zswap_algo_name(int algo);
/*
 * A count or a size, as the options take them and `faultline mkstore` too:
 * a decimal number and an optional binary suffix, K, M or G, and T if
 * max_shift is 40 (KiB and KB alike); spaces around it.  No octal, no hex,
 * no sign, no overflow.  Return: whether s is one, its value in *out.
 */
bool fl_parse_size(const char *s, unsigned int max_shift, unsigned long *out);

#endif /* FL_OPTIONS_H */
