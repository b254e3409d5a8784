/* SPDX-License-Identifier: MIT */
/*
 * A Redis Cluster client on hiredis (rcluster.c): the routing Debian's
 * hiredis 0.14 does not have.  Keys go to the master of their hash slot
 * (CRC16 of the key, or of its {hash tag}, mod 16384), learnt from CLUSTER
 * SLOTS; a MOVED reply updates the map and sends the command again, an ASK
 * reply sends it once to the node named, after ASKING; a node that does not
 * answer is dropped and the map read again from another, so that a failover
 * is followed.  Commands are pipelined: a batch is sent to each node at
 * once, and the replies of all nodes are read as they come (poll) until the
 * batch's deadline.  A node that stays silent holds up only its own
 * commands: they are not answered in that batch, and its late replies are
 * dropped when they come, before those of the next batch on the same
 * connection; silent for io_timeout_ms while replies are due, it is lost.
 *
 * One client serves one thread at a time: it has no lock.  Its caller
 * serialises (the Redis tier's I/O thread).
 */
#ifndef FL_RCLUSTER_H
#define FL_RCLUSTER_H

#include "lib.h"

#include <hiredis/hiredis.h>

#define RCL_SLOTS 16384
#define RCL_MAX_NODES 64

struct rcl_node {
	char host[256]; /* a name, as Redis 7 may announce: up to 255 bytes */
	int port;
	redisContext *ctx; /* NULL: not connected */
	/* Its connection was lost or refused since it last gave up a slot:
	 * a slot moving away from it then is a failover followed. */
	bool failed;
	/* Replies still to come on ctx for commands an earlier pass gave up
	 * waiting for (its deadline came): read and dropped before the next
	 * ones.  quiet_since: since when it has said nothing while replies
	 * were due; silent for io_timeout_ms, it is dropped. */
	unsigned int stale;
	uint64_t quiet_since;
	bool seed; /* named in the seed list: its entry is never taken over */
};

struct rcl_stats {
	uint64_t commands;    /* commands that got their answer */
	uint64_t moved;	      /* MOVED redirections followed */
	uint64_t ask;	      /* ASK redirections followed */
	uint64_t refreshes;   /* slot maps read (CLUSTER SLOTS) */
	uint64_t failovers;   /* a slot's master changed after its node failed */
	uint64_t conn_errors; /* connections lost or refused */
	uint64_t retries;     /* TRYAGAIN, CLUSTERDOWN, LOADING or a lost node: sent again */
	uint64_t timeouts;    /* commands that ran out of time */
};

/*
 * The node table holds every node the client has heard of: the seeds, and
 * the nodes slot maps and redirections named.  An entry keeps its index
 * for as long as anything holds it (the slot map, a command of the batch
 * running: rcluster.c's nodes_held()); once the table is full, an entry
 * nothing holds is taken over in place for a new node, so that nodes
 * whose address changes do not fill it.
 */
struct rcl {
	struct rcl_node node[RCL_MAX_NODES];
	int nr_nodes;
	int16_t owner[RCL_SLOTS]; /* the master of each hash slot; -1: unknown */
	/* The commands of the batch running (rcl_exec()) and the master being
	 * scanned (rcl_scan_del(); -1: none): the entries they name hold. */
	const struct rcl_cmd *batch;
	unsigned int batch_n;
	int scan_node;
	int io_timeout_ms; /* a node that does not answer in this is lost */
	/* A write counts as done when its master has it and, with
	 * wait_replicas > 0, when WAIT says that many replicas have it. */
	int wait_replicas;
	int wait_timeout_ms;
	struct rcl_stats st;
};

/*
 * One command of a batch: argv[0..argc) (binary-safe; argv[1] is the key),
 * and its reply once it has one (an error reply other than a redirection
 * is the caller's to judge; the client follows redirections itself).
 * write: a command that changes the data set (subject to wait_replicas).
 */
struct rcl_cmd {
	int argc;
	const char *argv[4];
	size_t argvlen[4];
	bool write;
	redisReply *reply; /* the caller frees it (freeReplyObject) */
	int err;	   /* 0, or a negative errno: -ETIMEDOUT, -EIO */
	/* The client's: the node it was last sent to, or -1, and the one an
	 * ASK sends it to next, or -1. */
	int node, ask_node;
	bool done;
};

unsigned int rcl_key_slot(const char *key, size_t len);

/*
 * Connect to a cluster through its seed nodes ("host:port,host:port,...")
 * and read its slot map.  io_timeout_ms: how long a node may stay silent.
 * Return: 0 or a negative errno (-EINVAL for a bad seed list, -ECONNREFUSED
 * if no seed answers, -EPROTO if no seed is a cluster with all its slots).
 */
int rcl_open(struct rcl *c, const char *seeds, int io_timeout_ms);
void rcl_close(struct rcl *c);

/*
 * Run cmds[0..n): each is sent to the master of its key's slot (argv[1]),
 * pipelined by node, and followed through redirections, lost nodes and
 * failovers until it has an answer or deadline_ns (fl_now_ns()) passes.
 * Return: the number of commands without an answer (their err set).
 */
unsigned int rcl_exec(struct rcl *c, struct rcl_cmd *cmds, unsigned int n, uint64_t deadline_ns);

/*
 * After rcl_exec(cmds, n): its reads answered nil (no such key) whose key
 * must exist may have asked a master that lost it, one restarted empty
 * that still claims the slot.  If there are any, read the slot map again,
 * once, from a node that did not answer nil if one gives it, and send again, within deadline_ns,
 * those whose slot has another master now (which may have the key); the others' nil stands. Return:
 * the number of those sent again that got no answer (their err set, as by
 * rcl_exec()).
 */
unsigned int rcl_retry_nil(struct rcl *c, struct rcl_cmd *cmds, unsigned int n,
			   uint64_t deadline_ns);

/*
 * Delete the keys that match pattern (SCAN's MATCH) on every master: SCAN
 * each to the end, and DEL what it finds through rcl_exec().  Within
 * deadline_ns.  Return: the keys deleted, or a negative errno: -ETIMEDOUT
 * or -EIO if a master could not be scanned to the end, or a key found
 * could not be deleted.
 */
long rcl_scan_del(struct rcl *c, const char *pattern, uint64_t deadline_ns);

/*
 * Parse a redirection's text, "MOVED 3999 127.0.0.1:6381" (or ASK): its
 * slot, and its node's host, s[*host, *host + *hlen) (empty: the node that
 * answered), and port.  Return: the port, or -EPROTO if the text is
 * malformed: no slot in 0..16383, no port in 1..65535, anything after
 * either.  (rcl_exec() takes such a reply as the command's answer.)
 */
int rcl_parse_redirect(const char *s, size_t len, unsigned int *slot, size_t *host, size_t *hlen);

/*
 * Parse one entry of a CLUSTER SLOTS reply: [lo, hi, [host, port, ...],
 * replicas...], slots lo..hi served by the master host:port; *host is the
 * reply's (an empty or null host: the node that answered).  Return: the
 * port, or -EPROTO for an entry not of that form or with slots out of
 * 0..16383 or a port out of 1..65535 (refresh_from() skips it, so that a
 * node is never made of it).
 */
int rcl_parse_slots_entry(const redisReply *e, unsigned int *lo, unsigned int *hi,
			  const char **host, size_t *hlen);

/*
 * The node table's index of host:port, an entry made for it if it is new
 * (an entry nothing holds taken over once the table is full), as a slot
 * map or a redirection naming it does.  Return: it, or -1 (the host too
 * long, or every entry held).
 */
int rcl_node_index(struct rcl *c, const char *host, int port);

#endif /* FL_RCLUSTER_H */
