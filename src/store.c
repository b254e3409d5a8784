// SPDX-License-Identifier: MIT
/*
 * The store's integrity layer (see store.h): every page written to the store
 * is sealed with a tag that names its space, address, slot and write
 * generation, and checked against it when it is read back.
 *
 * Without encryption the seal is XXH3-128 of the page, with a seed made from
 * the tag; with it, an AEAD (AES-256-GCM where the CPU has AES-NI and
 * CLMUL, XChaCha20-Poly1305 otherwise) whose nonce is the write generation,
 * which never repeats under a key (one key per space and process, a 64-bit
 * counter: a child of fork() seals its writes under a new key of its own,
 * and reads what it inherited under the parent's, store_fork_child()),
 * and whose associated data is the tag.  Its 16-byte MAC doubles as the
 * checksum.  The key is random per space, in sodium_malloc() memory (locked,
 * never swapped, excluded from core dumps, guarded), read-only once made,
 * wiped by sodium_free() at destroy: a store copied off the machine, or
 * read after the process died, is ciphertext under a key that no longer
 * exists.
 */
#include "store.h"

#include <sodium.h>
#include <sys/mman.h>
#include <xxhash.h>
#if defined(__x86_64__)
/* libxxhash picks AVX2 (or AVX-512) at run time where the CPU has it: twice
 * the speed of the SSE2 code it would run otherwise. */
#include <xxh_x86dispatch.h>
#define page_hash(p, len, seed) XXH3_128bits_withSeed_dispatch(p, len, seed)
#else
#define page_hash(p, len, seed) XXH3_128bits_withSeed(p, len, seed)
#endif

struct store_key {
	crypto_aead_aes256gcm_state aes; /* the expanded key (AES-256-GCM) */
	unsigned char key[32];
	/* fork: the key of the writes up to generation upto (inclusive),
	 * the previous process's; NULL: none.  Immutable. */
	struct store_key *prev;
	uint64_t upto;
};

/* A new random key; its previous ones prev (up to generation upto).
 * Return: the key, read-only, or NULL (no locked memory). */
static struct store_key *key_new(enum store_cipher cipher, struct store_key *prev, uint64_t upto)
{
	struct store_key *k = sodium_malloc(sizeof(*k));

	if (!k)
		return NULL;
	crypto_aead_xchacha20poly1305_ietf_keygen(k->key);
	if (cipher == STORE_AES256GCM)
		crypto_aead_aes256gcm_beforenm(&k->aes, k->key);
	k->prev = prev;
	k->upto = upto;
	/* Nothing writes the key again: a stray store faults. */
	sodium_mprotect_readonly(k);
	return k;
}

/* The key that sealed a write of generation gen: the newest whose
 * process's writes it may be (every key's writes come after its prev's
 * upto). */
static const struct store_key *key_of(const struct store *st, uint64_t gen)
{
	const struct store_key *k = st->key;

	while (k->prev && gen <= k->upto)
		k = k->prev;
	return k;
}

/*
 * The tag, as the bytes the seed or the associated data is made of: the
 * slot and the write generation.  The page's address is not in it: it is
 * kept in the slot's metadata and compared on every read
 * (store_unseal()), so that mremap can move a swapped-out page to another
 * address without rewriting it (store_slot_move()).  The checks are the
 * same: another slot's bytes fail the slot, an older write the generation,
 * a slot sealed for another page the address.
 */
struct store_tag {
	uint64_t gen;
	uint64_t slot;
};

static void make_tag(struct store_tag *t, uint32_t slot, uint64_t gen)
{
	/* Little-endian on every machine faultline runs on (x86-64, arm64):
	 * the tag never leaves memory, so byte order only has to be fixed
	 * within one process. */
	memset(t, 0, sizeof(*t));
	t->gen = gen;
	t->slot = slot;
}

static void make_nonce(unsigned char *nonce, size_t len, uint64_t gen)
{
	memset(nonce, 0, len);
	memcpy(nonce, &gen, sizeof(gen));
}

static void checksum(const struct store *st, const struct store_tag *t, const void *page,
		     uint8_t mac[STORE_MAC_SIZE])
{
	XXH64_hash_t seed = XXH3_64bits_withSeed(t, sizeof(*t), st->seed);
	XXH128_hash_t h = page_hash(page, PAGE_SIZE, seed);

	memcpy(mac, &h.low64, 8);
	memcpy(mac + 8, &h.high64, 8);
}

int store_init(struct store *st, unsigned long max_slots, bool encrypt)
{
	if (sodium_init() < 0)
		return -EIO;
	if (!encrypt)
		return store_init_cipher(st, max_slots, STORE_PLAIN);
	return store_init_cipher(st, max_slots,
				 crypto_aead_aes256gcm_is_available() ? STORE_AES256GCM
								      : STORE_XCHACHA20POLY1305);
}

int store_init_cipher(struct store *st, unsigned long max_slots, enum store_cipher cipher)
{
	memset(st, 0, sizeof(*st));
	if (sodium_init() < 0)
		return -EIO;
	st->max_slots = max_slots;
	st->slots = mmap(NULL, max_slots * STORE_SLOT_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (st->slots == MAP_FAILED) {
		st->slots = NULL;
		return -ENOMEM;
	}
	randombytes_buf(&st->seed, sizeof(st->seed));
	atomic_init(&st->gen, 0);
	st->cipher = STORE_PLAIN;
	st->inited = true;
	if (cipher == STORE_PLAIN)
		return 0;
	if (cipher == STORE_AES256GCM && !crypto_aead_aes256gcm_is_available()) {
		store_destroy(st);
		return -EOPNOTSUPP;
	}
	st->key = key_new(cipher, NULL, 0);
	if (!st->key) {
		store_destroy(st);
		return -ENOMEM;
	}
	st->cipher = cipher;
	return 0;
}

/*
 * The table of slots made as long as max_slots (if it is shorter), what it
 * holds kept: for a child of fork(), whose store grows (a copy of its own)
 * where the parent's had a fixed size.  Context: one thread (the child,
 * before it starts any).  Return: 0 or -ENOMEM.
 */
int store_grow_table(struct store *st, unsigned long max_slots)
{
	void *p;

	if (max_slots <= st->max_slots)
		return 0;
	p = mremap(st->slots, st->max_slots * STORE_SLOT_BYTES, max_slots * STORE_SLOT_BYTES,
		   MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return -ENOMEM;
	st->slots = p;
	st->max_slots = max_slots;
	return 0;
}

/*
 * A child of fork() writes under a key of its own: the nonce is the write
 * generation, which the child goes on counting from where the parent was,
 * as the parent does, so under one key both would seal different pages
 * with the same nonces.  The inherited slots are read with the parent's
 * key (every generation up to the fork's: key_of()).
 */
int store_fork_child(struct store *st)
{
	struct store_key *k;

	if (!st->key)
		return 0;
	/* The inherited keys read the inherited slots: locked again, as
	 * mlock() is not inherited (they would be swappable here); as
	 * sodium_malloc() does, at best (RLIMIT_MEMLOCK may refuse). */
	for (k = st->key; k; k = k->prev)
		(void)sodium_mlock(k, sizeof(*k));
	k = key_new(st->cipher, st->key, atomic_load(&st->gen));
	if (!k)
		return -ENOMEM;
	st->key = k;
	return 0;
}

void store_key_id(const struct store *st, uint64_t gen, unsigned char id[16])
{
	memset(id, 0, 16);
	if (st->key)
		crypto_generichash(id, 16, key_of(st, gen)->key, 32, NULL, 0);
}

void store_destroy(struct store *st)
{
	while (st->key) {
		struct store_key *prev = st->key->prev;

		sodium_mprotect_readwrite(st->key);
		sodium_free(st->key); /* wipes it */
		st->key = prev;
	}
	if (st->slots)
		munmap(st->slots, st->max_slots * STORE_SLOT_BYTES);
	st->slots = NULL;
	st->inited = false;
}

const void *store_seal(struct store *st, uint32_t slot, unsigned long addr, const void *page,
		       void *bounce)
{
	struct store_slot *m = &st->slots[slot];
	uint64_t gen = atomic_fetch_add_explicit(&st->gen, 1, memory_order_relaxed) + 1;
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	struct store_tag t;

	FL_BUG_ON(slot >= st->max_slots);
	make_tag(&t, slot, gen);
	if (addr != STORE_ADDR_KEEP)
		__atomic_store_n(&m->addr, addr, __ATOMIC_RELAXED);
	m->gen = gen;
	switch (st->cipher) {
	case STORE_PLAIN:
		checksum(st, &t, page, m->mac);
		return page;
	case STORE_AES256GCM:
		make_nonce(nonce, crypto_aead_aes256gcm_NPUBBYTES, gen);
		crypto_aead_aes256gcm_encrypt_detached_afternm(
			bounce, m->mac, NULL, page, PAGE_SIZE, (const void *)&t, sizeof(t), NULL,
			nonce, &st->key->aes);
		return bounce;
	case STORE_XCHACHA20POLY1305:
		make_nonce(nonce, sizeof(nonce), gen);
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
			bounce, m->mac, NULL, page, PAGE_SIZE, (const void *)&t, sizeof(t), NULL,
			nonce, st->key->key);
		return bounce;
	}
	FL_BUG_ON(1);
	return NULL;
}

int store_unseal(struct store *st, uint32_t slot, unsigned long addr, void *page)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8_t mac[STORE_MAC_SIZE];
	struct store_slot *m;
	struct store_tag t;
	int ret = -EBADMSG;

	if (slot >= st->max_slots)
		return -EBADMSG;
	m = &st->slots[slot];
	if (!m->gen)
		return -EBADMSG; /* nothing was ever sealed for this slot */
	if (__atomic_load_n(&m->addr, __ATOMIC_RELAXED) != addr)
		return -EBADMSG; /* sealed for another page */
	make_tag(&t, slot, m->gen);
	switch (st->cipher) {
	case STORE_PLAIN:
		checksum(st, &t, page, mac);
		ret = memcmp(mac, m->mac, sizeof(mac)) ? -EBADMSG : 0;
		break;
	case STORE_AES256GCM:
		make_nonce(nonce, crypto_aead_aes256gcm_NPUBBYTES, m->gen);
		if (!crypto_aead_aes256gcm_decrypt_detached_afternm(
			    page, NULL, page, PAGE_SIZE, m->mac, (const void *)&t, sizeof(t), nonce,
			    &key_of(st, m->gen)->aes))
			ret = 0;
		break;
	case STORE_XCHACHA20POLY1305:
		make_nonce(nonce, sizeof(nonce), m->gen);
		if (!crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			    page, NULL, page, PAGE_SIZE, m->mac, (const void *)&t, sizeof(t), nonce,
			    key_of(st, m->gen)->key))
			ret = 0;
		break;
	}
	return ret;
}

void store_note(struct store *st, uint32_t slot, unsigned long addr)
{
	FL_BUG_ON(slot >= st->max_slots);
	__atomic_store_n(&st->slots[slot].addr, addr, __ATOMIC_RELAXED);
	st->slots[slot].gen = 0; /* nothing sealed: unseal refuses it */
}

void store_slot_move(struct store *st, uint32_t slot, unsigned long addr)
{
	/* A noted slot (gen 0, its page in the compressed tier) moves too:
	 * the tier seals it for this address when it writes it back. */
	if (slot < st->max_slots)
		__atomic_store_n(&st->slots[slot].addr, addr, __ATOMIC_RELAXED);
}

unsigned long store_slot_addr(const struct store *st, uint32_t slot)
{
	return slot < st->max_slots ? __atomic_load_n(&st->slots[slot].addr, __ATOMIC_RELAXED) : 0;
}

uint64_t store_slot_gen(const struct store *st, uint32_t slot)
{
	return slot < st->max_slots ? st->slots[slot].gen : 0;
}

const char *store_cipher_name(const struct store *st)
{
	switch (st->cipher) {
	case STORE_AES256GCM:
		return "AES-256-GCM";
	case STORE_XCHACHA20POLY1305:
		return "XChaCha20-Poly1305";
	default:
		return "none";
	}
}
