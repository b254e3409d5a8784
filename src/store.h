/* SPDX-License-Identifier: MIT */
/*
 * The store's integrity layer (store.c): what makes a page read back from
 * the store either the page that was written there for that address, or
 * refused.  It sits between swap.c and a backend that moves slots of bytes
 * (swapdev.c: a file or block device), and knows nothing of the backend:
 * a new backend (a compressed tier, a remote one) is one file that moves
 * slots, and gets this layer by being called between store_seal() and
 * store_unseal().
 *
 *   store_seal()     before a slot's write: a new write generation, a
 *                    checksum (XXH3-128) of the page, or with encryption an
 *                    AEAD ciphertext of it and its tag (libsodium
 *                    AES-256-GCM, else XChaCha20-Poly1305), recorded in the
 *                    slot's metadata; returns the bytes to write.
 *   store_unseal()   after the slot's read: the page checked (decrypted in
 *                    place) against that metadata and the address the reader
 *                    expects; -EBADMSG if anything differs.
 *
 * The tag of every write is (the store's random seed or key: the space;
 * the slot; the write generation).  The checksum's seed (or the AEAD's
 * nonce and associated data) is made from it, so the right bytes of another
 * slot (a misdirected read) or an older write of the same slot (a lost
 * write) fail, as does any bit changed on the way; the page's address is
 * kept beside the checksum and compared on every read, so a slot sealed for
 * another page fails too (and mremap can move a page by changing it).
 *
 * Metadata lives outside the pages, in memory only: STORE_SLOT_BYTES per
 * slot in an array reserved up front for the largest store (address space
 * only, backed as slots are used), so that sealing allocates nothing: it
 * runs in eviction and read completion, both also in the SIGBUS handler.
 *
 * Locking: none.  A slot's metadata belongs to the slot's owner (swap.h:
 * one PTE or one frame): written by store_seal() before the write is
 * submitted, read by store_unseal() after a read the owner started.  The
 * write generation is an atomic counter.  The key is immutable from
 * store_init() to store_destroy().
 */
#ifndef FL_STORE_H
#define FL_STORE_H

#include "lib.h"

#define STORE_MAC_SIZE 16

/* Per slot, in memory: what the slot's last write was sealed with. */
struct store_slot {
	uint8_t mac[STORE_MAC_SIZE]; /* XXH3-128 of the page, or the AEAD tag */
	uint64_t addr;		     /* the page it holds: checked on every read */
	uint64_t gen;		     /* its write generation; 0: never sealed */
};
#define STORE_SLOT_BYTES sizeof(struct store_slot)

enum store_cipher { STORE_PLAIN, STORE_AES256GCM, STORE_XCHACHA20POLY1305 };

struct store_key;

struct store {
	struct store_slot *slots; /* max_slots of them, reserved */
	unsigned long max_slots;
	uint64_t seed;		      /* random: this space's part of every tag */
	_Atomic uint64_t gen;	      /* the last write generation handed out */
	enum store_cipher cipher;     /* immutable */
	struct store_key *key;	      /* sodium_malloc: locked, not dumped; the
				       * parents' keys chained (fork) */
	_Atomic bool mismatch_logged; /* the first mismatch is logged, not the rest */
	bool inited;
};

/*
 * Set up for a store of up to max_slots slots; encrypt: with a fresh random
 * key that never leaves this process's locked memory.
 * Context: space creation.  Return: 0, -ENOMEM, or -EIO (no randomness).
 */
int store_init(struct store *st, unsigned long max_slots, bool encrypt);
/* The same with the cipher named (the benchmark measures each one);
 * -EOPNOTSUPP for AES-256-GCM on a CPU without AES-NI and CLMUL. */
int store_init_cipher(struct store *st, unsigned long max_slots, enum store_cipher cipher);
/* Wipe the keys, free the metadata.  Idempotent. */
void store_destroy(struct store *st);
/*
 * In a child of fork(): a new key for the child's writes, the parent's kept
 * for the slots it inherited.  Context: the child's only thread, before
 * any write.  Return: 0 or -ENOMEM.
 */
int store_fork_child(struct store *st);
int store_grow_table(struct store *st, unsigned long max_slots);
/* A digest of the key that seals (or sealed) writes of generation gen; 16
 * zero bytes without encryption (tests compare keys with it). */
void store_key_id(const struct store *st, uint64_t gen, unsigned char id[16]);

/*
 * Seal page (PAGE_SIZE bytes) for its write to slot, for the page at addr
 * (STORE_ADDR_KEEP: for the address the slot was noted or moved to, which
 * fl_mremap() may change while the seal runs: the compressed tier's
 * writeback).
 * bounce: a page the ciphertext goes to when encrypting (page itself stays
 * as it is: a fault may install it while the write is in flight); unused
 * otherwise, and may then be NULL.
 * Context: any, also the SIGBUS handler; the caller owns slot.
 * Return: the bytes to write: page, or bounce.
 */
#define STORE_ADDR_KEEP (~0UL)
const void *store_seal(struct store *st, uint32_t slot, unsigned long addr, const void *page,
		       void *bounce);

/*
 * Check page, just read from slot, for the page at addr; decrypt it in
 * place when encrypting.  Context: any, also the SIGBUS handler; the caller
 * owns slot and page.  Return: 0, or -EBADMSG (wrong, stale, misdirected or
 * altered: the page must not be used).
 */
int store_unseal(struct store *st, uint32_t slot, unsigned long addr, void *page);

/*
 * Note that slot holds the page at addr without sealing anything: the
 * compressed tier keeps the page, and seals it for this address when it
 * writes it to the store.  Until then a read of the slot fails its check.
 * Context: as store_seal().
 */
void store_note(struct store *st, uint32_t slot, unsigned long addr);

/*
 * The page the slot holds moved to addr (mremap): reads expect it there
 * from now on.  Context: the caller owns slot, and no read of it is in
 * flight.
 */
void store_slot_move(struct store *st, uint32_t slot, unsigned long addr);

/* What the slot's metadata says it holds: for a message about a mismatch. */
unsigned long store_slot_addr(const struct store *st, uint32_t slot);

/* The write generation of the slot's last seal (0: none).  Context: the
 * caller owns the slot (its write or read, or its discard). */
uint64_t store_slot_gen(const struct store *st, uint32_t slot);

/* "none", "AES-256-GCM", "XChaCha20-Poly1305". */
const char *store_cipher_name(const struct store *st);

#endif /* FL_STORE_H */
