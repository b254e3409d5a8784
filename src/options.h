/* SPDX-License-Identifier: MIT */
/*
 * Options: one table (options.c) read from FAULTLINE_<NAME> variables into
 * struct fl_config, checked, and printed by `faultline info`.
 */
#ifndef FL_OPTIONS_H
#define FL_OPTIONS_H

#include <stdio.h>

#include "faultline.h"

void fl_options_defaults(struct fl_config *cfg);
void fl_options_from_env(struct fl_config *cfg);
/* Return: 0, or -EINVAL if a field is out of its range. */
int fl_options_validate(const struct fl_config *cfg);
void fl_options_print(const struct fl_config *cfg, FILE *out);

#endif /* FL_OPTIONS_H */
