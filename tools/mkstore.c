// SPDX-License-Identifier: MIT
/*
 * faultline mkstore [--force] PATH [SIZE]: format a file or block device as
 * a faultline swap store, as mkswap does for the kernel's swap.  faultline
 * uses nothing else as a named store (FAULTLINE_SWAP): it refuses a file or
 * device without the header written here.  The checks and the format are
 * the library's (src/storefmt.c: store_format()).
 */
#define _GNU_SOURCE
#define TOOL "faultline mkstore"
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "storefmt.h"
#include "toolbox.h"

int mkstore_main(int argc, char **argv);

static void usage(FILE *out)
{
	fprintf(out, "usage: faultline mkstore [--force] PATH [SIZE]\n"
		     "\n"
		     "Format PATH, a regular file or a block device, as a faultline swap store\n"
		     "(for FAULTLINE_SWAP=PATH).  SIZE (bytes; K, M, G or T suffix) fixes the\n"
		     "store's size; without it a device is used whole, an existing file keeps\n"
		     "its size, and a new or empty file grows on demand.  A new file is made\n"
		     "with mode 0600; a file is never shrunk.\n"
		     "\n"
		     "It refuses, unless --force is given, a file or device that holds a file\n"
		     "system, a partition table or another known signature, and a non-empty\n"
		     "file that is not a faultline store.  With --force those signatures are\n"
		     "wiped (as wipefs -a does) and what PATH held is lost.  A device that is\n"
		     "mounted or in use, and a store in use by faultline, are always refused.\n"
		     "\n"
		     "  -f, --force   format over what PATH holds\n"
		     "  -h, --help    this text\n");
}

/* The options (parse_options()): name, key, argument, what it does. */
#define MKSTORE_OPTIONS(X) X("force", 'f', no_argument, flags |= STORE_FORCE)

int mkstore_main(int argc, char **argv)
{
	struct store_header h;
	unsigned int flags = 0;
	unsigned long size = 0;
	char uuid[37];
	int ret;

	parse_options(MKSTORE_OPTIONS, argc, argv, usage);
	if (optind >= argc || argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	if (argc - optind == 2 && !fl_parse_size(argv[optind + 1], 40, &size)) {
		fprintf(stderr, "faultline mkstore: '%s' is not a size (bytes, or K/M/G/T)\n",
			argv[optind + 1]);
		return 2;
	}
	ret = store_format(argv[optind], size, flags, &h);
	if (ret) {
		/* The reason is logged above it. */
		fprintf(stderr, "faultline mkstore: %s: not formatted\n", argv[optind]);
		return 1;
	}
	store_uuid_str(h.uuid, uuid);
	if (h.flags & STORE_GROWS)
		printf("%s: a faultline store that grows on demand, id %s\n", argv[optind], uuid);
	else
		printf("%s: a faultline store of %llu bytes (%llu slots of %u bytes), id %s\n",
		       argv[optind], (unsigned long long)h.size,
		       (unsigned long long)((h.size - h.data_offset) / h.page_size), h.page_size,
		       uuid);
	return 0;
}
