/* SPDX-License-Identifier: MIT */
/*
 * The mmap and mremap flags faultline uses, where the C library is older
 * than the kernel that has them (Linux 4.17 and 5.7): for the library
 * (through lib.h) and for the tools.
 */
#ifndef FL_MMAN_COMPAT_H
#define FL_MMAN_COMPAT_H

#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#endif /* FL_MMAN_COMPAT_H */
