// SPDX-License-Identifier: MIT
/*
 * Secrets do not outlive their process.  A child writes pages full of a
 * known secret, evicts them all to a named store, looks for the secret in
 * the store file itself, and kills itself with SIGKILL (no destroy, no
 * cleanup).  The parent then searches the whole store file:
 *   - with FAULTLINE_SWAP_ENCRYPT: not one copy of the secret, neither while
 *     the child ran nor after its death: only ciphertext under a key that
 *     died with it;
 *   - without: the secret is there (the documented crash case: the pages in
 *     use at the crash stay on disk until the store's next open; this also
 *     shows the search finds it), and the next open of the store discards
 *     it.
 * Both deliveries.
 */
#include "test_store.h"

#define NPAGES 512
#define LIMIT 64

/* The secret: 32 bytes, repeated over every page, made from the seed. */
static void secret(unsigned char s[32])
{
	uint64_t x = ts_seed ^ 0x5ec2e75ec2e7ULL;

	memcpy(s, "faultline-secret", 16);
	for (int i = 16; i < 32; i += 8) {
		uint64_t v = t_splitmix64(&x);
		memcpy(s + i, &v, 8);
	}
}

/* Copies of the secret's 32 bytes anywhere in the file. */
static long count_secret(const char *path)
{
	unsigned char s[32];
	int fd = open(path, O_RDONLY);
	size_t len = 1 << 20, have = 0;
	unsigned char *buf = malloc(len + 32);
	long n = 0;
	ssize_t r;

	secret(s);
	CHECK(fd >= 0 && buf, "open %s: %s", path, strerror(errno));
	/* Overlapping windows: a copy across a read boundary counts too. */
	while ((r = read(fd, buf + have, len)) > 0) {
		size_t end = have + (size_t)r;
		for (size_t i = 0; i + 32 <= end; i++)
			if (buf[i] == 'f' && !memcmp(buf + i, s, 32))
				n++;
		have = MIN(end, 31);
		memmove(buf, buf + end - have, have);
	}
	close(fd);
	free(buf);
	return n;
}

static int secret_child(const char *path, int delivery, bool encrypt)
{
	struct fl_config cfg;
	struct fl_space *sp;
	unsigned char s[32];

	secret(s);
	ts_config(&cfg, delivery, path, LIMIT);
	cfg.swap_create = 1;
	cfg.swap_encrypt = encrypt;
	sp = t_space_create_cfg(&cfg);
	char *p = fl_mmap(sp, NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "fl_mmap");
	for (size_t i = 0; i < NPAGES * PG; i += 32)
		memcpy(p + i, s, 32);
	ts_evict_all(sp, p, NPAGES);
	long n = count_secret(path);
	printf("child (%s%s): %ld copies of the secret in the store while it runs\n",
	       t_delivery_name(delivery), encrypt ? ", encrypted" : "", n);
	if (encrypt)
		CHECK(n == 0, "encrypted: the secret is in the store in the clear");
	/* Still readable through faultline, of course. */
	for (size_t i = 0; i < NPAGES * PG; i += 32 * 37)
		CHECK(!memcmp(p + i, s, 32), "the secret read back wrong at %zu", i);
	ts_evict_all(sp, p, NPAGES);
	fflush(stdout);
	kill(getpid(), SIGKILL);
	return T_EXIT_FAIL;
}

static void run(int delivery, bool encrypt)
{
	char file[64], dl[4];
	struct fl_config cfg;
	struct fl_space *sp;
	int ret;

	snprintf(file, sizeof(file), "secret-%s-%d.store", t_delivery_name(delivery), encrypt);
	char *path = ts_path(file);
	snprintf(dl, sizeof(dl), "%d", delivery);
	ret = ts_spawn_self(
		(char *[]){(char *)"secret", path, dl, encrypt ? (char *)"1" : (char *)"0", NULL});
	CHECK(ret == 128 + SIGKILL, "the child ended with %d, not SIGKILL", ret);
	long n = count_secret(path);
	printf("%s%s: %ld copies of the secret in the store after SIGKILL\n",
	       t_delivery_name(delivery), encrypt ? ", encrypted" : "", n);
	if (encrypt) {
		CHECK(n == 0, "%ld copies of the secret survived in an encrypted store", n);
		return;
	}
	CHECK(n >= NPAGES,
	      "without encryption the killed child's pages should still be in the "
	      "store (found %ld copies): is the search broken?",
	      n);
	ts_config(&cfg, delivery, path, LIMIT);
	sp = t_space_create_cfg(&cfg);
	n = count_secret(path);
	CHECK(n == 0, "the next open left %ld copies of the secret in the store", n);
	fl_space_destroy(sp);
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "secret")) {
		ts_child_seed();
		return secret_child(argv[3], atoi(argv[4]), atoi(argv[5]));
	}
	ts_seed = t_seed_init(argc, argv, "test_store_secret");
	ts_scratch();
	for (int enc = 1; enc >= 0; enc--) {
		run(FL_DELIVERY_THREAD, enc);
		run(FL_DELIVERY_SIGBUS, enc);
	}
	return T_EXIT_PASS;
}
