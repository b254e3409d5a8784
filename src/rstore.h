/* SPDX-License-Identifier: MIT */
/*
 * Far memory on a Redis Cluster (rstore.c): a store backend (swapdev.h)
 * whose slots are keys, FAULTLINE_SWAP=redis-cluster://HOST:PORT[,...].
 *
 * Keys: "fl:<id>:<slot>:<gen>", where <id> is 128 random bits drawn when
 * the space opens its store, so that spaces of several processes and
 * machines share one cluster without meeting, and <gen> the write
 * generation the store sealed the page with (store.h), so that a command
 * the server runs late (sent on a connection dropped since) touches only
 * the version it was meant for (rstore.c, key_of()); the keys spread over the cluster's
 * hash slots (no hash tag), so a batch goes to every master at once.  The
 * cluster should run with maxmemory-policy noeviction, so that a page
 * written is never dropped by the server (scripts/redis-cluster.sh does).
 *
 * I/O: one thread (fl-redis) takes the reads and writes queued by
 * submit() and read_sync(), and runs them in rounds on rcluster.c's client:
 * each round pipelines up to RS_ROUND_CMDS commands to their masters
 * (SET and GET; a readahead or an eviction batch is one round), follows
 * redirections and failovers, and, with FAULTLINE_REMOTE_REPLICAS=N, ends
 * each node's writes with WAIT N: a write counts as done when N replicas
 * have it.  A round lasts RS_ROUND_MS at most (more for a node that is
 * still sending its replies): rcluster.c reads every node's replies as
 * they come, so a node that stays silent (stopped, or dead and not yet
 * failed over) holds up only its own commands; its connection is kept,
 * owing late replies (dropped when they come), and it gets no more
 * commands until it has answered them, or is dropped after
 * RS_NODE_TIMEOUT_MS of silence.  Each I/O sends again only its pages not
 * answered yet, and I/Os tried before take at most half of a round while
 * new ones wait: those stuck on a silent node do not keep the others out.
 * A command
 * still unanswered after FAULTLINE_REMOTE_TIMEOUT fails: a read with
 * -ETIMEDOUT, which poisons its page (SIGBUS on access), a write with it
 * too, which keeps its page resident.  A GET answered with an error (-BUSY,
 * a full server's refusal) goes again until then; a write's error is final
 * (its page stays resident).  A GET that finds no key may have asked a
 * master restarted empty that still claims the slot: the round reads the
 * slot map again, once, and sends it again if the map names another
 * master (rcl_retry_nil()).  Still not found (the master died with no
 * replica that had it), it fails with -ENODATA: that page is lost and
 * poisoned, counted in remote_lost; nothing else is affected.  WAIT's own
 * timeout is a quarter of a node's, so a master short of replicas answers
 * it (the writes go again) before the client would drop it as silent.
 *
 * What comes back is checked as every page from every store (store.h):
 * a page that is not the one written there for that address (an older
 * write that a replica kept, another slot's page) fails its check.
 *
 * Discard: freed slots are deleted (DEL) by the device's discard worker,
 * on a client of its own, also with encryption (discard_frees: a key holds
 * the cluster's memory); when the space ends, every key it still has, then
 * a sweep of every master for any other key of its prefix (rcl_scan_del():
 * a version whose DEL failed, or that a late SET wrote again).
 *
 * Locks: lock (a leaf) guards the queue; each client belongs to one thread
 * (the I/O thread's, the discard worker's).  read_sync() sleeps on a futex
 * in the calling thread, also in the SIGBUS handler: nothing there
 * allocates.
 */
#ifndef FL_RSTORE_H
#define FL_RSTORE_H

#include "lib.h"

#include "rcluster.h"
#include "swapdev.h"

#define RSTORE_SCHEME "redis-cluster://"
#define RS_ROUND_CMDS 512
#define RS_ROUND_MS 200

struct rstore {
	struct rcl cl;		  /* the I/O thread's */
	struct rcl dcl;		  /* the discard worker's */
	bool dcl_open;		  /* dcl connected (lazily, by the discard worker) */
	uint64_t discard_backoff; /* the discard worker's: fail fast until then */
	char seeds[512];	  /* the seed list, for dcl */
	char prefix[48];	  /* "fl:<id>:" */
	uint64_t timeout_ns;	  /* FAULTLINE_REMOTE_TIMEOUT: a command's deadline */
	pthread_t thread;
	bool started;
	int efd;			 /* eventfd: work queued, or stop */
	pthread_mutex_t lock;		 /* a leaf: the queue */
	struct swap_io *q_head, *q_tail; /* lock */
	_Atomic bool stop;
	/* Counters (fl_stats). */
	_Atomic uint64_t failovers, redirects, retries, lost, timeouts, errors;
};

bool rstore_is_url(const char *path);
int rstore_open(struct swap_dev *d, const char *url, int replicas, uint64_t timeout_ns);
/* The backend's counters, if d is a Redis Cluster store (else NULL). */
struct rstore *rstore_of(struct swap_dev *d);

#endif /* FL_RSTORE_H */
