/* SPDX-License-Identifier: MIT */
/*
 * A named store on disk (storefmt.c): its header, how one is made
 * (`faultline mkstore`, or swap_create), and what faultline checks before it
 * writes a single byte to a file or a block device, as mkswap and swapon do.
 *
 * Layout: the header in the first STORE_HEADER_SIZE bytes, then slot 0,
 * slot 1, ... (4 KiB each).  The header, little-endian:
 *
 *   0   magic "faultline-store\0"   32  size (u64: bytes, header included)
 *   16  version (u32, 1)            40  uuid (16 bytes, random)
 *   20  page size (u32)             56  XXH3-64 of bytes 0..55
 *   24  data offset (u32, 4096)     64  zeros up to 4096
 *   28  flags (u32: STORE_GROWS)
 *
 * A store is used only if: it is a regular file or a block device, named
 * directly (never through a symbolic link); its header is valid; libblkid
 * finds no other signature on it (a file system or partition table made
 * over the store since); a block device opens with O_EXCL (the kernel
 * refuses while it is mounted or held); and no one else holds its lock
 * (flock, for the store's life: one store, one user).
 */
#ifndef FL_STOREFMT_H
#define FL_STOREFMT_H

#include "lib.h"

#define STORE_MAGIC "faultline-store"
#define STORE_VERSION 1
#define STORE_HEADER_SIZE 4096UL
/* A file store that grows on demand (mkstore without SIZE, swap_create);
 * without it, the store is size bytes and no more. */
#define STORE_GROWS 0x1u
/* The smallest fixed store: the header and one slot. */
#define STORE_MIN_SIZE (2 * STORE_HEADER_SIZE)

struct store_header {
	uint32_t version, page_size, data_offset, flags;
	uint64_t size;
	uint8_t uuid[16];
};

/* The header as its STORE_HEADER_SIZE bytes on disk. */
void store_header_encode(const struct store_header *h, void *buf);
/* Return: 0 and *h, or -EINVAL and *why (what is wrong with it). */
int store_header_decode(const void *buf, struct store_header *h, const char **why);
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into out (37 bytes). */
void store_uuid_str(const uint8_t uuid[16], char out[37]);

/* What libblkid finds on fd: 1 and *what ("an ext4 file system", "a dos
 * partition table"), 0 for nothing, or a negative errno. */
int store_signature(int fd, char *what, size_t len);

/* An open store, as store_claim() hands it over. */
struct store_claim {
	int fd;		/* O_RDWR, O_DIRECT (see direct), flock()ed */
	bool blockdev;	/* else a regular file */
	bool direct;	/* O_DIRECT: false only on a file system without it */
	bool created;	/* made just now (swap_create) */
	uint64_t bytes; /* the file's or the device's size */
	struct store_header hdr;
};

/*
 * Open the store at path for this space's use, with every check above; with
 * create, make and format a new one if nothing exists at path (a file, mode
 * 0600, O_EXCL|O_NOFOLLOW, growing on demand).  Refusals are logged with
 * the path, the reason and what to do.
 * Context: space creation.  Return: 0 and *c, or a negative errno: -ENOENT,
 * -ELOOP (a symbolic link), -EBUSY (in use), -EINVAL (not a store, or a
 * store with another signature on it), -EACCES, ...
 */
int store_claim(const char *path, bool create, struct store_claim *c);

#define STORE_FORCE 0x1u /* format over data or another signature */

/*
 * `faultline mkstore`: format path as a store of size bytes (0: a device's
 * size, an existing file's size, or a new or empty file that grows on
 * demand).  A new file is created 0600 with O_EXCL|O_NOFOLLOW; an existing
 * one is never shrunk; a device is opened with O_EXCL.  Without
 * STORE_FORCE it refuses a file or device that holds a signature, and a
 * non-empty file that is not a store; with it, the signatures libblkid finds
 * are wiped first (as wipefs does), so that none is left.
 * Return: 0 and *out, or a negative errno (logged, with the reason).
 */
int store_format(const char *path, uint64_t size, unsigned int flags, struct store_header *out);

#endif /* FL_STOREFMT_H */
