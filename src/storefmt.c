// SPDX-License-Identifier: MIT
/*
 * A named store on disk (see storefmt.h): the header, mkstore, and the
 * checks before faultline uses a file or block device.
 *
 * The rule is the one mkswap and swapon keep: faultline never writes to
 * what it was not given.  Until this code says yes, nothing has been
 * written: a path is opened O_PATH|O_NOFOLLOW first (a symbolic link is
 * refused, not followed; a FIFO or a character device is refused without
 * being opened for I/O) and reopened through /proc/self/fd for reading and
 * writing, so that what is checked is what is used.  A block device is
 * opened with O_EXCL, which the kernel refuses while the device is mounted
 * or claimed by anyone else (LVM, md, another O_EXCL opener).  The flock()
 * taken on the open file is held until the store is closed: a second space,
 * in this process or another, and mkstore, get -EBUSY.
 */
#include "storefmt.h"

#include <blkid/blkid.h>
#include <endian.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <xxhash.h>

#define HDR_SUM_OFF 56

void store_header_encode(const struct store_header *h, void *buf)
{
	unsigned char *b = buf;
	uint32_t v32;
	uint64_t v64;

	memset(b, 0, STORE_HEADER_SIZE);
	memcpy(b, STORE_MAGIC, sizeof(STORE_MAGIC));
	v32 = htole32(h->version);
	memcpy(b + 16, &v32, 4);
	v32 = htole32(h->page_size);
	memcpy(b + 20, &v32, 4);
	v32 = htole32(h->data_offset);
	memcpy(b + 24, &v32, 4);
	v32 = htole32(h->flags);
	memcpy(b + 28, &v32, 4);
	v64 = htole64(h->size);
	memcpy(b + 32, &v64, 8);
	memcpy(b + 40, h->uuid, 16);
	v64 = htole64(XXH3_64bits(b, HDR_SUM_OFF));
	memcpy(b + HDR_SUM_OFF, &v64, 8);
}

int store_header_decode(const void *buf, struct store_header *h, const char **why)
{
	const unsigned char *b = buf;
	uint32_t v32;
	uint64_t v64;

	if (memcmp(b, STORE_MAGIC, sizeof(STORE_MAGIC))) {
		*why = "no faultline store header";
		return -EINVAL;
	}
	memcpy(&v64, b + HDR_SUM_OFF, 8);
	if (le64toh(v64) != XXH3_64bits(b, HDR_SUM_OFF)) {
		*why = "a damaged faultline store header (its checksum does not match)";
		return -EINVAL;
	}
	memcpy(&v32, b + 16, 4);
	h->version = le32toh(v32);
	memcpy(&v32, b + 20, 4);
	h->page_size = le32toh(v32);
	memcpy(&v32, b + 24, 4);
	h->data_offset = le32toh(v32);
	memcpy(&v32, b + 28, 4);
	h->flags = le32toh(v32);
	memcpy(&v64, b + 32, 8);
	h->size = le64toh(v64);
	memcpy(h->uuid, b + 40, 16);
	if (h->version != STORE_VERSION) {
		*why = "a store header of another version than this faultline's";
		return -EINVAL;
	}
	if (h->page_size != PAGE_SIZE) {
		*why = "a store formatted for another page size";
		return -EINVAL;
	}
	if (h->data_offset != STORE_HEADER_SIZE || (h->flags & ~STORE_GROWS) ||
	    h->size < STORE_HEADER_SIZE || (h->size % PAGE_SIZE)) {
		*why = "a store header with impossible values";
		return -EINVAL;
	}
	if (!(h->flags & STORE_GROWS) && h->size < STORE_MIN_SIZE) {
		*why = "a store with no room for a page";
		return -EINVAL;
	}
	return 0;
}

void store_uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static int new_uuid(uint8_t u[16])
{
	if (getrandom(u, 16, 0) != 16)
		return -EIO;
	u[6] = (u[6] & 0x0f) | 0x40; /* a version-4 (random) UUID */
	u[8] = (u[8] & 0x3f) | 0x80;
	return 0;
}

/* What a blkid hit is, for a message: "a file system (ext4)". */
static void describe(blkid_probe pr, char *out, size_t len)
{
	const char *type = NULL, *usage = NULL, *noun = "a signature";

	if (!blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL)) {
		snprintf(out, len, "a partition table (%s)", type);
		return;
	}
	blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
	blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
	if (usage && !strcmp(usage, "filesystem"))
		noun = "a file system";
	else if (usage && !strcmp(usage, "raid"))
		noun = "a RAID member";
	else if (usage && !strcmp(usage, "crypto"))
		noun = "an encrypted volume";
	snprintf(out, len, "%s (%s)", noun, type ? type : "unknown");
}

static blkid_probe probe_new(int fd)
{
	blkid_probe pr = blkid_new_probe();

	if (!pr)
		return NULL;
	if (blkid_probe_set_device(pr, fd, 0, 0)) {
		blkid_free_probe(pr);
		return NULL;
	}
	/* Every signature wipefs would show, bad checksums included: a file
	 * system whose checksum is off is still somebody's. */
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
						      BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC | BLKID_PARTS_FORCE_GPT);
	return pr;
}

int store_signature(int fd, char *what, size_t len)
{
	blkid_probe pr = probe_new(fd);
	int ret;

	if (!pr)
		return -ENOMEM;
	ret = blkid_do_probe(pr);
	if (ret == 0)
		describe(pr, what, len);
	blkid_free_probe(pr);
	return ret == 0 ? 1 : ret == 1 ? 0 : -EIO;
}

/* Wipe every signature libblkid finds on fd (opened for buffered writing),
 * as wipefs -a does.  Return: how many, or a negative errno. */
static int wipe_signatures(const char *path, int fd)
{
	blkid_probe pr = probe_new(fd);
	int n = 0;

	if (!pr)
		return -ENOMEM;
	while (blkid_do_probe(pr) == 0) {
		const char *off = NULL;
		char what[128];

		describe(pr, what, sizeof(what));
		if (blkid_probe_lookup_value(pr, "SBMAGIC_OFFSET", &off, NULL))
			blkid_probe_lookup_value(pr, "PTMAGIC_OFFSET", &off, NULL);
		if (blkid_do_wipe(pr, 0)) {
			fl_log("mkstore: %s: cannot wipe %s at offset %s: %s", path, what,
			       off ? off : "?", strerror(errno));
			blkid_free_probe(pr);
			return -EIO;
		}
		fl_log("mkstore: %s: wiped %s at offset %s", path, what, off ? off : "?");
		n++;
	}
	blkid_free_probe(pr);
	return fsync(fd) ? -errno : n;
}

/* Open what fd (O_PATH) names again, for I/O: the same inode, whatever the
 * path names by now. */
static int reopen(int pfd, int flags)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", pfd);
	return open(p, flags | O_CLOEXEC);
}

static int lock_store(const char *path, int fd)
{
	if (!flock(fd, LOCK_EX | LOCK_NB))
		return 0;
	if (errno == EWOULDBLOCK) {
		fl_log("the swap store %s is in use by another faultline space (in this or "
		       "another process): one store has one user",
		       path);
		return -EBUSY;
	}
	fl_log("cannot lock the swap store %s: %s", path, strerror(errno));
	return -errno;
}

/*
 * Open path (not a symbolic link; a regular file or a block device) for
 * reading and writing, with O_EXCL for a device, and lock it.  direct:
 * O_DIRECT, falling back to buffered I/O (with *direct cleared) on a file
 * system without it.  who: "the swap store" or "mkstore" for messages.
 * Return: the fd, or a negative errno (logged).
 */
static int open_checked(const char *path, bool *direct, struct stat *st, const char *who)
{
	int pfd, fd, ret;
	struct stat st2;

	pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return -errno; /* the caller says what ENOENT means */
	if (fstat(pfd, st)) {
		ret = -errno;
		close(pfd);
		return ret;
	}
	if (S_ISLNK(st->st_mode)) {
		fl_log("%s %s is a symbolic link: faultline does not follow links to a store "
		       "(name the store itself)",
		       who, path);
		close(pfd);
		return -ELOOP;
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		fl_log("%s %s is neither a regular file nor a block device", who, path);
		close(pfd);
		return -EINVAL;
	}
	int flags = O_RDWR | (S_ISBLK(st->st_mode) ? O_EXCL : 0);
	fd = reopen(pfd, flags | (*direct ? O_DIRECT : 0));
	if (fd < 0 && errno == EINVAL && *direct && S_ISREG(st->st_mode)) {
		fl_log("warning: the file system of %s does not take O_DIRECT: the store goes "
		       "through the page cache",
		       path);
		*direct = false;
		fd = reopen(pfd, flags);
	}
	ret = -errno;
	close(pfd);
	if (fd < 0) {
		if (ret == -EBUSY)
			fl_log("%s %s is in use: mounted, or held by another program (the kernel "
			       "refuses to open it exclusively); faultline does not write to it",
			       who, path);
		else
			fl_log("%s %s: cannot open it for reading and writing: %s", who, path,
			       strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st2) || st2.st_ino != st->st_ino || st2.st_dev != st->st_dev) {
		close(fd);
		return -ESTALE;
	}
	*st = st2;
	ret = lock_store(path, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int size_of(int fd, const struct stat *st, uint64_t *bytes)
{
	if (S_ISBLK(st->st_mode))
		return ioctl(fd, BLKGETSIZE64, bytes) ? -errno : 0;
	*bytes = (uint64_t)st->st_size;
	return 0;
}

/* What the first page of fd holds, read with a buffer O_DIRECT accepts.
 * Return: bytes read (0 to STORE_HEADER_SIZE), or a negative errno. */
static ssize_t read_first(int fd, void *buf)
{
	ssize_t n = pread(fd, buf, STORE_HEADER_SIZE, 0);

	return n < 0 ? -errno : n;
}

static bool all_zero(const void *buf, size_t len)
{
	const unsigned char *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* A signature on the store (through a buffered descriptor: libblkid's reads
 * are not aligned for O_DIRECT).  Return: as store_signature(). */
static int signature_of(int fd, char *what, size_t len)
{
	int bfd = reopen(fd, O_RDONLY), ret;

	if (bfd < 0)
		return -errno;
	ret = store_signature(bfd, what, len);
	close(bfd);
	return ret;
}

/*
 * The header of a new growing store, in c->hdr and written to fd (locked,
 * empty: nothing of anyone's is in it), synced.  buf: a page O_DIRECT
 * takes.  Return: 0, or a negative errno.
 */
static int header_new(int fd, struct store_claim *c, void *buf)
{
	int ret;

	c->hdr = (struct store_header){.version = STORE_VERSION,
				       .page_size = PAGE_SIZE,
				       .data_offset = STORE_HEADER_SIZE,
				       .flags = STORE_GROWS,
				       .size = STORE_HEADER_SIZE};
	ret = new_uuid(c->hdr.uuid);
	if (ret)
		return ret;
	store_header_encode(&c->hdr, buf);
	errno = 0;
	if (pwrite(fd, buf, STORE_HEADER_SIZE, 0) != (ssize_t)STORE_HEADER_SIZE || fdatasync(fd))
		return errno ? -errno : -EIO;
	return 0;
}

/* Make a new store file at path: created here, so nothing of anyone's is in
 * it.  Return: the fd (O_DIRECT if the file system takes it, locked, the
 * header written), or a negative errno. */
static int create_store(const char *path, struct store_claim *c, void *buf)
{
	int cfd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int fd, ret;

	if (cfd < 0)
		return -errno;
	/* The same inode again, with O_DIRECT if it takes it. */
	fd = reopen(cfd, O_RDWR | O_DIRECT);
	c->direct = fd >= 0;
	if (fd < 0)
		fd = reopen(cfd, O_RDWR);
	ret = fd < 0 ? -errno : 0;
	close(cfd);
	if (ret)
		goto fail;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		/* Someone opened it in the instant since it was made. */
		ret = -EBUSY;
		close(fd);
		fl_log("the swap store %s was just created, and is in use by another "
		       "faultline space already",
		       path);
		return ret;
	}
	ret = header_new(fd, c, buf);
	if (ret) {
		close(fd);
		goto fail;
	}
	return fd;
fail:
	fl_log("cannot create the swap store %s: %s", path, strerror(-ret));
	unlink(path);
	return ret;
}

int store_claim(const char *path, bool create, struct store_claim *c)
{
	char what[160];
	struct stat st;
	const char *why = NULL;
	void *buf = NULL;
	ssize_t n;
	int fd, ret;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (posix_memalign(&buf, PAGE_SIZE, STORE_HEADER_SIZE))
		return -ENOMEM;
	c->direct = true;
	fd = open_checked(path, &c->direct, &st, "the swap store");
	if (fd == -ENOENT && create) {
		fd = create_store(path, c, buf);
		if (fd >= 0) {
			c->fd = fd;
			c->created = true;
			c->bytes = STORE_HEADER_SIZE;
			free(buf);
			return 0;
		}
		if (fd != -EEXIST)
			goto out;
		/* Made by someone else just now: check it as any other. */
		c->direct = true;
		fd = open_checked(path, &c->direct, &st, "the swap store");
	}
	if (fd == -ENOENT) {
		fl_log("the swap store %s does not exist: make one with 'faultline mkstore %s "
		       "[SIZE]', or let the program create it (FAULTLINE_SWAP_CREATE=1, or "
		       "swap_create)",
		       path, path);
		goto out;
	}
	if (fd < 0)
		goto out;
	c->fd = fd;
	c->blockdev = S_ISBLK(st.st_mode);
	ret = size_of(fd, &st, &c->bytes);
	if (ret)
		goto fail;
	int sector = 0;
	if (c->blockdev && !ioctl(fd, BLKSSZGET, &sector) && sector > (int)PAGE_SIZE) {
		/* O_DIRECT I/O of one slot would be refused. */
		ret = -EINVAL;
		fl_log("the swap store %s has %d-byte sectors, more than a %lu-byte slot: not "
		       "used",
		       path, sector, PAGE_SIZE);
		goto fail;
	}
	n = read_first(fd, buf);
	if (n < 0) {
		ret = (int)n;
		fl_log("cannot read the header of the swap store %s: %s", path, strerror(-ret));
		goto fail;
	}
	if (n == 0 && create && !c->blockdev && c->bytes == 0 && st.st_uid == geteuid() &&
	    !(st.st_mode & 077)) {
		/* An empty file where the program may create a store, ours
		 * and for our eyes only, as create_store() makes it: one whose
		 * creator lost the race for its lock to us, or died before
		 * writing the header.  Nothing of anyone's is in it (another
		 * empty file, a marker someone made, is refused as before). */
		ret = header_new(fd, c, buf);
		if (ret) {
			fl_log("cannot make the empty file %s a swap store: %s", path,
			       strerror(-ret));
			goto fail;
		}
		c->created = true;
		c->bytes = STORE_HEADER_SIZE;
		free(buf);
		return 0;
	}
	if (n < (ssize_t)STORE_HEADER_SIZE)
		memset((char *)buf + n, 0, STORE_HEADER_SIZE - (size_t)n);
	int sig = signature_of(fd, what, sizeof(what));
	if (store_header_decode(buf, &c->hdr, &why)) {
		ret = -EINVAL;
		if (sig > 0)
			fl_log("the swap store %s is not a faultline store: it holds %s. faultline "
			       "writes only to a store made by 'faultline mkstore'; to make this "
			       "one (destroying what it holds): faultline mkstore --force %s",
			       path, what, path);
		else if (n == 0 || all_zero(buf, STORE_HEADER_SIZE))
			fl_log("the swap store %s is not a faultline store: it is %s. Format it "
			       "with: faultline mkstore %s [SIZE]",
			       path, n == 0 ? "empty" : "zeros where a store header belongs", path);
		else
			fl_log("the swap store %s is not a faultline store: it has %s. faultline "
			       "writes only to a store made by 'faultline mkstore'; to make this "
			       "one (destroying what it holds): faultline mkstore --force %s",
			       path, why, path);
		goto fail;
	}
	if (sig < 0) {
		ret = sig;
		fl_log("cannot check what the swap store %s holds (libblkid: %s): not used", path,
		       strerror(-ret));
		goto fail;
	}
	if (sig > 0) {
		/* A file system or partition table made over the store since
		 * it was formatted: it is somebody's now. */
		ret = -EINVAL;
		fl_log("the swap store %s has a faultline store header but also holds %s, made "
		       "over it since: faultline does not write to it ('faultline mkstore "
		       "--force %s' makes it a store again, destroying that)",
		       path, what, path);
		goto fail;
	}
	if (c->blockdev && c->hdr.size > c->bytes) {
		ret = -EINVAL;
		fl_log("the swap store %s is a device of %llu bytes, but its header says %llu: "
		       "not used (format it again with faultline mkstore)",
		       path, (unsigned long long)c->bytes, (unsigned long long)c->hdr.size);
		goto fail;
	}
	if (!c->blockdev && c->bytes < c->hdr.size) {
		/* Cut short behind our back: grow it back (never shrink). */
		if (ftruncate(fd, (off_t)c->hdr.size)) {
			ret = -errno;
			fl_log("the swap store %s is shorter than its header says and cannot be "
			       "extended: %s",
			       path, strerror(-ret));
			goto fail;
		}
		c->bytes = c->hdr.size;
	}
	free(buf);
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	fd = ret;
out:
	free(buf);
	return fd < 0 ? fd : -EIO;
}

int store_format(const char *path, uint64_t size, unsigned int flags, struct store_header *out)
{
	struct store_header h = {
		.version = STORE_VERSION, .page_size = PAGE_SIZE, .data_offset = STORE_HEADER_SIZE};
	bool force = flags & STORE_FORCE, direct = false, created = false;
	char what[160], *buf = NULL;
	struct stat st;
	uint64_t bytes;
	const char *why;
	ssize_t n;
	int fd, ret;

	if (size && size < STORE_MIN_SIZE) {
		fl_log("mkstore: %s: a store needs at least %lu bytes", path, STORE_MIN_SIZE);
		return -EINVAL;
	}
	size -= size % PAGE_SIZE;
	buf = aligned_alloc(PAGE_SIZE, STORE_HEADER_SIZE);
	if (!buf)
		return -ENOMEM;
	fd = open_checked(path, &direct, &st, "mkstore:");
	if (fd == -ENOENT) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) || fstat(fd, &st)) {
			ret = -errno;
			fl_log("mkstore: cannot create %s: %s", path, strerror(errno));
			goto out;
		}
		created = true;
	} else if (fd < 0) {
		ret = fd;
		if (fd != -ELOOP && fd != -EINVAL && fd != -EBUSY)
			fl_log("mkstore: %s: %s", path, strerror(-fd));
		fd = -1;
		goto out;
	}
	ret = size_of(fd, &st, &bytes);
	if (ret)
		goto out;
	if (S_ISBLK(st.st_mode) && size > bytes) {
		ret = -ENOSPC;
		fl_log("mkstore: %s: the device has %llu bytes, fewer than the %llu asked for",
		       path, (unsigned long long)bytes, (unsigned long long)size);
		goto out;
	}
	n = read_first(fd, buf);
	if (n < 0) {
		ret = (int)n;
		goto out;
	}
	if (n < (ssize_t)STORE_HEADER_SIZE)
		memset(buf + n, 0, STORE_HEADER_SIZE - (size_t)n);
	bool ours = !store_header_decode(buf, &h, &why);
	int sig = store_signature(fd, what, sizeof(what));
	if (sig > 0 && !force) {
		ret = -EEXIST;
		fl_log("mkstore: %s holds %s: not formatted. To destroy it and make a store: "
		       "faultline mkstore --force %s",
		       path, what, path);
		goto out;
	}
	if (!ours && !force && S_ISREG(st.st_mode) && bytes > 0) {
		ret = -EEXIST;
		fl_log("mkstore: %s is a file of %llu bytes that is not a faultline store: not "
		       "formatted. To destroy its contents and make a store: faultline "
		       "mkstore --force %s",
		       path, (unsigned long long)bytes, path);
		goto out;
	}
	if (sig > 0) {
		ret = wipe_signatures(path, fd);
		if (ret < 0)
			goto out;
	}
	/* The size: as asked; else a device's, an existing file's, or, for a
	 * new or empty file, growing on demand.  A file is never shrunk. */
	h.version = STORE_VERSION;
	h.page_size = PAGE_SIZE;
	h.data_offset = STORE_HEADER_SIZE;
	h.flags = 0;
	if (size) {
		h.size = size;
	} else if (S_ISBLK(st.st_mode) && bytes < STORE_MIN_SIZE) {
		ret = -ENOSPC;
		fl_log("mkstore: %s: the device has %llu bytes: a store needs at least %lu", path,
		       (unsigned long long)bytes, STORE_MIN_SIZE);
		goto out;
	} else if (S_ISBLK(st.st_mode) || bytes >= STORE_MIN_SIZE) {
		h.size = bytes - bytes % PAGE_SIZE;
	} else {
		h.size = STORE_HEADER_SIZE;
		h.flags = STORE_GROWS;
	}
	if (S_ISREG(st.st_mode) && bytes < MAX(h.size, STORE_HEADER_SIZE) &&
	    ftruncate(fd, (off_t)MAX(h.size, STORE_HEADER_SIZE))) {
		ret = -errno;
		fl_log("mkstore: %s: cannot extend it to %llu bytes: %s", path,
		       (unsigned long long)h.size, strerror(errno));
		goto out;
	}
	ret = new_uuid(h.uuid);
	if (ret)
		goto out;
	store_header_encode(&h, buf);
	if (pwrite(fd, buf, STORE_HEADER_SIZE, 0) != (ssize_t)STORE_HEADER_SIZE || fsync(fd)) {
		ret = errno ? -errno : -EIO;
		fl_log("mkstore: %s: cannot write the header: %s", path, strerror(-ret));
		goto out;
	}
	if (out)
		*out = h;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret && created)
		unlink(path);
	free(buf);
	return ret;
}
