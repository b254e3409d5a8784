// SPDX-License-Identifier: MIT
/*
 * A Redis Cluster client (see rcluster.h): hash slots, the slot map,
 * MOVED and ASK, lost nodes and failovers, pipelined batches.
 *
 * A batch runs in rounds.  In a round every command without an answer is
 * appended to the connection of its node (the ASK target if it was asked
 * to go there, else its slot's master), then each node's replies are read
 * in order.  A redirection, a retryable error or a lost node leaves the
 * command for the next round; a lost node, or a slot with no known master,
 * makes the round begin with a fresh slot map.  A round that answers
 * nothing waits a little first (the cluster may be electing a new master).
 * The batch ends when every command has an answer or the deadline passes.
 */
#include "rcluster.h"

#include <poll.h>

#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

/* CRC16-CCITT (XMODEM), as the Redis Cluster specification computes it. */
static uint16_t crc16(const char *buf, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)buf[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

/* The key's hash slot: of its hash tag, the part between the first '{' and
 * the next '}', if that part is not empty. */
unsigned int rcl_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open) {
		const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
		if (close && close > open + 1)
			return crc16(open + 1, (size_t)(close - open - 1)) % RCL_SLOTS;
	}
	return crc16(key, len) % RCL_SLOTS;
}

static struct timeval tv_of_ms(int ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* The decimal number s[0..len), digits only, if it is at most max.
 * Return: it, or -1. */
static long parse_num(const char *s, size_t len, long max)
{
	long v = 0;

	if (!len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return -1;
	}
	return v;
}

/* "host:port" in s[0..len): the host is s[0..*hlen).  Return: the port, or
 * -1 without one in 1..65535 after the last colon. */
static int parse_addr(const char *s, size_t len, size_t *hlen)
{
	const char *colon = memrchr(s, ':', len);
	long port;

	if (!colon)
		return -1;
	port = parse_num(colon + 1, len - (size_t)(colon + 1 - s), 65535);
	if (port <= 0)
		return -1;
	*hlen = (size_t)(colon - s);
	return (int)port;
}

/* Close node i's connection: the late replies still to come on it go with it. */
static void node_close(struct rcl *c, int i)
{
	redisFree(c->node[i].ctx);
	c->node[i].ctx = NULL;
	c->node[i].stale = 0;
}

/*
 * Which entries of the node table some index is held to, so that they keep
 * their address: the slot map in force (owner[]) or the one being read
 * (map, if any) names them; a command of the batch running was sent there
 * (its node: in flight, or answered from there) or is to be (its
 * ask_node); rcl_scan_del() is scanning it; it is a seed (the way back into
 * the cluster when every node learnt is gone); late replies are still to
 * come on its connection.
 */
static void nodes_held(const struct rcl *c, const int16_t *map, bool *held)
{
	for (int i = 0; i < c->nr_nodes; i++)
		held[i] = c->node[i].seed || c->node[i].stale || i == c->scan_node;
	for (unsigned int s = 0; s < RCL_SLOTS; s++) {
		if (c->owner[s] >= 0)
			held[c->owner[s]] = true;
		if (map && map[s] >= 0)
			held[map[s]] = true;
	}
	for (unsigned int k = 0; k < c->batch_n; k++) {
		if (c->batch[k].node >= 0)
			held[c->batch[k].node] = true;
		if (c->batch[k].ask_node >= 0)
			held[c->batch[k].ask_node] = true;
	}
}

/*
 * An entry of the node table for a node new to it: the next one, or, the
 * table full, one no index is held to (nodes_held()), unconnected if one
 * is, else its idle connection closed.  Entries are taken over in place,
 * never moved, so that an index held stays the node it was.
 * Return: its index, or -1 if every entry is held.
 */
static int node_entry(struct rcl *c, const int16_t *map)
{
	bool held[RCL_MAX_NODES];
	int i = -1;

	if (c->nr_nodes < RCL_MAX_NODES)
		return c->nr_nodes++;
	nodes_held(c, map, held);
	for (int k = 0; k < c->nr_nodes; k++)
		if (!held[k] && (i < 0 || (c->node[i].ctx && !c->node[k].ctx)))
			i = k;
	if (i >= 0 && c->node[i].ctx)
		node_close(c, i);
	return i;
}

/*
 * The index of node host:port, added if new (map: as for nodes_held()).
 * Return: it, or -1 if the host is too long or the table has no entry
 * free.
 */
static int node_index(struct rcl *c, const char *host, size_t hlen, int port, const int16_t *map)
{
	struct rcl_node *nd;
	int i;

	for (i = 0; i < c->nr_nodes; i++)
		if (c->node[i].port == port && strlen(c->node[i].host) == hlen &&
		    !memcmp(c->node[i].host, host, hlen))
			return i;
	if (hlen >= sizeof(c->node[0].host))
		return -1;
	i = node_entry(c, map);
	if (i < 0)
		return -1;
	nd = &c->node[i];
	memset(nd, 0, sizeof(*nd));
	memcpy(nd->host, host, hlen);
	nd->port = port;
	return i;
}

int rcl_node_index(struct rcl *c, const char *host, int port)
{
	return node_index(c, host, strlen(host), port, NULL);
}

static void node_drop(struct rcl *c, int i)
{
	c->node[i].failed = true;
	if (c->node[i].ctx) {
		node_close(c, i);
		c->st.conn_errors++;
	}
}

static redisContext *node_conn(struct rcl *c, int i);

/*
 * Node i's connection for a command whose reply is read at once
 * (redisCommand()): one with late replies still to come (stale) is closed
 * first, since they would be taken for the answer.  Return: it, or NULL.
 */
static redisContext *node_conn_now(struct rcl *c, int i)
{
	if (c->node[i].stale && c->node[i].ctx)
		node_close(c, i);
	return node_conn(c, i);
}

/* Node i's connection, made if need be.  Return: it, or NULL. */
static redisContext *node_conn(struct rcl *c, int i)
{
	struct rcl_node *nd = &c->node[i];
	redisContext *ctx;

	if (nd->ctx)
		return nd->ctx;
	ctx = redisConnectWithTimeout(nd->host, nd->port, tv_of_ms(c->io_timeout_ms));
	if (!ctx || ctx->err) {
		if (ctx)
			redisFree(ctx);
		c->st.conn_errors++;
		nd->failed = true;
		return NULL;
	}
	if (redisSetTimeout(ctx, tv_of_ms(c->io_timeout_ms)) != REDIS_OK) {
		redisFree(ctx);
		return NULL;
	}
	nd->ctx = ctx;
	return ctx;
}

int rcl_parse_slots_entry(const redisReply *e, unsigned int *lo, unsigned int *hi,
			  const char **host, size_t *hlen)
{
	const redisReply *m;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
	    e->element[0]->type != REDIS_REPLY_INTEGER ||
	    e->element[1]->type != REDIS_REPLY_INTEGER ||
	    e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
		return -EPROTO;
	m = e->element[2];
	if (e->element[0]->integer < 0 || e->element[1]->integer >= RCL_SLOTS ||
	    e->element[0]->integer > e->element[1]->integer ||
	    (m->element[0]->type != REDIS_REPLY_STRING && m->element[0]->type != REDIS_REPLY_NIL) ||
	    m->element[1]->type != REDIS_REPLY_INTEGER || m->element[1]->integer < 1 ||
	    m->element[1]->integer > 65535)
		return -EPROTO;
	*lo = (unsigned int)e->element[0]->integer;
	*hi = (unsigned int)e->element[1]->integer;
	/* A null host (cluster-preferred-endpoint-type unknown-endpoint), as
	 * an empty one: the node that was asked. */
	*host = m->element[0]->type == REDIS_REPLY_NIL ? "" : m->element[0]->str;
	*hlen = m->element[0]->type == REDIS_REPLY_NIL ? 0 : m->element[0]->len;
	return (int)m->element[1]->integer;
}

/*
 * Read the slot map from node i (CLUSTER SLOTS).  Return: 0, or -1 if the
 * node did not answer or does not cover every slot.
 */
static int refresh_from(struct rcl *c, int i, bool count_failovers)
{
	redisContext *ctx = node_conn_now(c, i);
	char self[sizeof(c->node[0].host)]; /* entry i may be taken over as the map is read */
	int16_t owner[RCL_SLOTS];
	unsigned int covered = 0;
	bool moved_away = false;
	redisReply *r;

	if (!ctx)
		return -1;
	r = redisCommand(ctx, "CLUSTER SLOTS");
	if (!r) {
		node_drop(c, i);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return -1;
	}
	memcpy(self, c->node[i].host, sizeof(self));
	for (unsigned int s = 0; s < RCL_SLOTS; s++)
		owner[s] = -1;
	for (size_t k = 0; k < r->elements; k++) {
		unsigned int lo, hi;
		const char *host;
		size_t hlen;
		int port = rcl_parse_slots_entry(r->element[k], &lo, &hi, &host, &hlen);

		if (port < 0)
			continue;
		if (!hlen) { /* the node we asked, which does not know its address */
			host = self;
			hlen = strlen(host);
		}
		int nd = node_index(c, host, hlen, port, owner);
		if (nd < 0)
			continue;
		for (unsigned int s = lo; s <= hi; s++) {
			if (owner[s] < 0)
				covered++;
			owner[s] = (int16_t)nd;
		}
	}
	freeReplyObject(r);
	if (covered != RCL_SLOTS)
		return -1;
	for (unsigned int s = 0; s < RCL_SLOTS; s++) {
		int old = c->owner[s];
		if (count_failovers && old >= 0 && old != owner[s] &&
		    (!c->node[old].ctx || c->node[old].failed))
			moved_away = true;
		c->owner[s] = owner[s];
	}
	if (moved_away) {
		c->st.failovers++;
		for (int k = 0; k < c->nr_nodes; k++)
			c->node[k].failed = false;
	}
	c->st.refreshes++;
	return 0;
}

/* The address and port node i is connected to.  Return: false if none. */
static bool peer_of(const struct rcl *c, int i, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	return c->node[i].ctx && !getpeername(c->node[i].ctx->fd, (struct sockaddr *)ss, &len);
}

static bool same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return false;
}

/* Whether node i is connected to the same server as one of the nodes in
 * mask: one server may have two entries (a seed's name and the address
 * the map gives). */
static bool same_server(const struct rcl *c, int i, uint64_t mask)
{
	struct sockaddr_storage a, b;

	if (!mask || !peer_of(c, i, &a))
		return false;
	for (int j = 0; j < c->nr_nodes; j++)
		if (mask >> j & 1 && peer_of(c, j, &b) && same_peer(&a, &b))
			return true;
	return false;
}

/*
 * A fresh slot map from any node that gives a whole one: nodes still
 * connected first (they answer without a connect); the nodes in last (a
 * node mask, or 0), and other entries of their servers, only when no
 * other server gives one.  Return: 0 or -1.
 */
static int refresh_but(struct rcl *c, uint64_t last)
{
	bool got = false;

	_Static_assert(RCL_MAX_NODES <= 64, "a node mask in a uint64_t");
	for (int pass = 0; pass < 3 && !(pass == 2 && got); pass++)
		for (int i = 0; i < c->nr_nodes; i++) {
			bool late = last >> i & 1;

			if (!(pass < 2 ? !late && !!c->node[i].ctx == !pass : late) ||
			    refresh_from(c, i, true))
				continue;
			if (pass == 2 || !same_server(c, i, last))
				return 0;
			got = true; /* another server may know better */
		}
	return got ? 0 : -1;
}

static int refresh(struct rcl *c)
{
	return refresh_but(c, 0);
}

int rcl_open(struct rcl *c, const char *seeds, int io_timeout_ms)
{
	const char *p = seeds;

	memset(c, 0, sizeof(*c));
	c->scan_node = -1;
	for (unsigned int s = 0; s < RCL_SLOTS; s++)
		c->owner[s] = -1;
	c->io_timeout_ms = io_timeout_ms > 0 ? io_timeout_ms : 1000;
	if (!seeds || !*seeds)
		return -EINVAL;
	while (*p) {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
		size_t hlen;
		int port = parse_addr(p, (size_t)(end - p), &hlen);
		int i = port < 0 || !hlen ? -1 : node_index(c, p, hlen, port, NULL);

		if (i < 0)
			return -EINVAL;
		c->node[i].seed = true;
		p = comma ? comma + 1 : end;
	}
	if (!refresh(c))
		return 0;
	for (int i = 0; i < c->nr_nodes; i++)
		if (c->node[i].ctx) {
			rcl_close(c);
			return -EPROTO; /* it answered, but not with a whole map */
		}
	rcl_close(c);
	return -ECONNREFUSED;
}

void rcl_close(struct rcl *c)
{
	for (int i = 0; i < c->nr_nodes; i++)
		if (c->node[i].ctx)
			node_close(c, i);
}

int rcl_parse_redirect(const char *s, size_t len, unsigned int *slot, size_t *host, size_t *hlen)
{
	const char *sp = memchr(s, ' ', len), *sp2;
	long v;

	if (!sp)
		return -EPROTO;
	sp2 = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s));
	if (!sp2)
		return -EPROTO;
	v = parse_num(sp + 1, (size_t)(sp2 - (sp + 1)), RCL_SLOTS - 1);
	if (v < 0)
		return -EPROTO;
	*slot = (unsigned int)v;
	*host = (size_t)(sp2 + 1 - s);
	v = parse_addr(sp2 + 1, len - *host, hlen);
	return v < 0 ? -EPROTO : (int)v;
}

/* A redirection from node nd: the slot and the node it names.  An empty
 * host is nd's own, as in a slot map. */
static bool parse_redirect(struct rcl *c, int nd, const char *s, size_t len, unsigned int *slot,
			   int *node)
{
	size_t host, hlen;
	int port = rcl_parse_redirect(s, len, slot, &host, &hlen);

	if (port < 0)
		return false;
	if (hlen)
		*node = node_index(c, s + host, hlen, port, NULL);
	else
		*node = node_index(c, c->node[nd].host, strlen(c->node[nd].host), port, NULL);
	return *node >= 0;
}

static bool error_is(const redisReply *r, const char *what)
{
	size_t n = strlen(what);

	return r->len >= n && !strncmp(r->str, what, n) && (r->len == n || r->str[n] == ' ');
}

/* What a pass sent to one node, in order (-1 entries are ASKING), and how
 * far its replies have been read. */
struct round_node {
	unsigned int nr, writes;
	bool waited;
	unsigned int k; /* replies read, of nr */
	bool wait_read; /* WAIT's too */
};

/*
 * The answered writes among a round's entries order[0..nr) (as in
 * take_reply()) go again: their replies are dropped and they are not
 * done.  Return: how many.
 */
static unsigned int writes_again(const int *order, unsigned int nr, struct rcl_cmd *cmds)
{
	unsigned int n = 0;

	for (unsigned int k = 0; k < nr; k++) {
		struct rcl_cmd *cmd = order[k] >= 0 ? &cmds[order[k]] : NULL;
		if (cmd && cmd->done && cmd->write) {
			freeReplyObject(cmd->reply);
			cmd->reply = NULL;
			cmd->done = false;
			n++;
		}
	}
	return n;
}

/*
 * Take r as node nd's next reply of this pass: its entry order[rn->k] (a
 * command index, or -1 for an ASKING before it), or WAIT's once all of
 * them are read.  Return: the change in commands answered (negative when
 * WAIT's short count sends the answered writes again).
 */
static int take_reply(struct rcl *c, int nd, struct round_node *rn, const int *order,
		      struct rcl_cmd *cmds, redisReply *r, bool *remap)
{
	struct rcl_cmd *cmd;
	unsigned int slot;
	int to;

	if (rn->k == rn->nr) {
		bool enough = r->type == REDIS_REPLY_INTEGER && r->integer >= c->wait_replicas;

		freeReplyObject(r);
		rn->wait_read = true;
		if (enough)
			return 0;
		/* Not on enough replicas yet: the writes go again (they are
		 * idempotent), and WAIT with them. */
		c->st.retries++;
		return -(int)writes_again(order, rn->nr, cmds);
	}
	cmd = order[rn->k] >= 0 ? &cmds[order[rn->k]] : NULL;
	rn->k++;
	if (!cmd) { /* ASKING: +OK */
		freeReplyObject(r);
		return 0;
	}
	cmd->ask_node = -1;
	if (r->type == REDIS_REPLY_ERROR) {
		if (error_is(r, "MOVED") && parse_redirect(c, nd, r->str, r->len, &slot, &to)) {
			int old = c->owner[slot];
			/* Learnt from a redirection rather than the map: a slot
			 * leaving a node that failed is a failover. */
			if (old >= 0 && old != to && c->node[old].failed) {
				c->st.failovers++;
				c->node[old].failed = false;
			}
			c->owner[slot] = (int16_t)to;
			c->st.moved++;
			*remap = true; /* a slot moved: others may have too */
			freeReplyObject(r);
			return 0;
		}
		if (error_is(r, "ASK") && parse_redirect(c, nd, r->str, r->len, &slot, &to)) {
			cmd->ask_node = to;
			c->st.ask++;
			freeReplyObject(r);
			return 0;
		}
		if (error_is(r, "TRYAGAIN") || error_is(r, "CLUSTERDOWN") ||
		    error_is(r, "LOADING") || error_is(r, "MASTERDOWN")) {
			c->st.retries++;
			*remap = true;
			freeReplyObject(r);
			return 0;
		}
	}
	cmd->reply = r;
	cmd->done = true;
	return 1;
}

/* Whether node nd still owes replies of this pass. */
static bool owes(const struct rcl *c, int nd, const struct round_node *rn)
{
	return rn->nr && c->node[nd].ctx && (rn->k < rn->nr || (rn->waited && !rn->wait_read));
}

/* Node nd is lost in the middle of a pass (*lost): what it answered
 * stands, but not its writes if WAIT's reply did not come.  Return: as
 * take_reply(). */
static int lost_midway(struct rcl *c, int nd, struct round_node *rn, const int *order,
		       struct rcl_cmd *cmds, bool *lost)
{
	int delta = 0;

	if (rn->waited && !rn->wait_read)
		delta = -(int)writes_again(order, rn->nr, cmds);
	node_drop(c, nd);
	c->st.retries++;
	*lost = true;
	return delta;
}

/*
 * Drop the late replies node nd has sent since (stale), without waiting:
 * a node that answered them is not silent.  Return: 0, or -1 if its
 * connection failed.
 */
static int drain_stale(struct rcl *c, int nd)
{
	struct rcl_node *node = &c->node[nd];
	struct pollfd pfd = {.fd = node->ctx->fd, .events = POLLIN};
	redisReply *r;

	while (node->stale) {
		if (redisGetReplyFromReader(node->ctx, (void **)&r) != REDIS_OK)
			return -1;
		if (r) {
			freeReplyObject(r);
			node->stale--;
			node->quiet_since = fl_now_ns();
			continue;
		}
		if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLERR | POLLHUP)))
			return 0;
		if (redisBufferRead(node->ctx) != REDIS_OK)
			return -1;
	}
	return 0;
}

/*
 * Whether node nd may be sent commands in this pass: not while late
 * replies of an earlier one are still to come (they would only pile up
 * behind them, and fill its socket); silent that long, it is lost
 * (*lost), and the next pass connects to it again.
 */
static bool send_ok(struct rcl *c, int nd, bool *lost)
{
	struct rcl_node *node = &c->node[nd];

	int err;

	if (!node->ctx || !node->stale)
		return true;
	err = drain_stale(c, nd);
	if (!err && !node->stale)
		return true;
	if (!err && fl_now_ns() - node->quiet_since < (uint64_t)c->io_timeout_ms * 1000000)
		return false;
	node_drop(c, nd); /* its connection failed, or it stayed silent */
	c->st.retries++;
	*lost = true;
	return false;
}

/* Past the pass's deadline, a node still owing replies is waited for while
 * it keeps sending them: given up only once it has been quiet this long,
 * so that a busy node answering a long pipeline is not sent it twice. */
#define RCL_QUIET_GRACE_NS (20 * 1000000ULL)

/*
 * Read the replies of every node of a pass as they come, until all have
 * answered or deadline_ns (and RCL_QUIET_GRACE_NS of quiet).  A node
 * silent for io_timeout_ms while replies are due is lost (*lost); one
 * still owing replies when given up keeps its connection, and what it owes
 * becomes stale (dropped when it comes): its commands, not answered, go
 * again.  Return: commands answered.
 */
static unsigned int receive(struct rcl *c, struct round_node *rn, const int *start,
			    const int *order, struct rcl_cmd *cmds, uint64_t deadline_ns,
			    bool *lost, bool *remap)
{
	const uint64_t quiet_max = (uint64_t)c->io_timeout_ms * 1000000;
	int answered = 0;

	/* Out with what the pass queued: a node that cannot take it is lost. */
	for (int nd = 0; nd < c->nr_nodes; nd++) {
		int done = 0;

		if (!owes(c, nd, &rn[nd]))
			continue;
		c->node[nd].quiet_since = fl_now_ns(); /* nothing stale: send_ok() */
		while (!done)
			if (redisBufferWrite(c->node[nd].ctx, &done) != REDIS_OK) {
				answered +=
					lost_midway(c, nd, &rn[nd], order + start[nd], cmds, lost);
				break;
			}
	}
	for (;;) {
		struct pollfd pfd[RCL_MAX_NODES];
		int who[RCL_MAX_NODES], np = 0;
		uint64_t now = fl_now_ns(), wake = UINT64_MAX;

		for (int nd = 0; nd < c->nr_nodes; nd++) {
			struct rcl_node *node = &c->node[nd];
			uint64_t give_up = MAX(deadline_ns, node->quiet_since + RCL_QUIET_GRACE_NS);

			if (!owes(c, nd, &rn[nd]))
				continue;
			if (now - node->quiet_since >= quiet_max) {
				answered +=
					lost_midway(c, nd, &rn[nd], order + start[nd], cmds, lost);
				continue;
			}
			if (now >= give_up)
				continue; /* stale from here (below) */
			wake = MIN(wake, MIN(give_up, node->quiet_since + quiet_max));
			pfd[np] = (struct pollfd){.fd = node->ctx->fd, .events = POLLIN};
			who[np++] = nd;
		}
		if (!np)
			break;
		if (poll(pfd, (nfds_t)np, (int)((wake - now + 999999) / 1000000)) < 0 &&
		    errno != EINTR)
			break;
		now = fl_now_ns();
		for (int p = 0; p < np; p++) {
			int nd = who[p];
			struct rcl_node *node = &c->node[nd];
			redisReply *r;

			if (!(pfd[p].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			if (redisBufferRead(node->ctx) != REDIS_OK) {
				answered +=
					lost_midway(c, nd, &rn[nd], order + start[nd], cmds, lost);
				continue;
			}
			node->quiet_since = now;
			while (owes(c, nd, &rn[nd])) {
				r = NULL;
				if (redisGetReplyFromReader(node->ctx, (void **)&r) != REDIS_OK) {
					answered += lost_midway(c, nd, &rn[nd], order + start[nd],
								cmds, lost);
					break;
				}
				if (!r)
					break; /* the rest of it has not come yet */
				/* Nothing stale comes first: send_ok(). */
				answered += take_reply(c, nd, &rn[nd], order + start[nd], cmds, r,
						       remap);
			}
		}
	}
	/* Given up: what a node still owes comes later, and is dropped
	 * then; its unanswered commands go again, and its answered writes too
	 * if WAIT's reply is among what it owes. */
	for (int nd = 0; nd < c->nr_nodes; nd++) {
		if (!owes(c, nd, &rn[nd]))
			continue;
		c->node[nd].stale += rn[nd].nr - rn[nd].k + (rn[nd].waited && !rn[nd].wait_read);
		if (rn[nd].waited && !rn[nd].wait_read)
			answered -= (int)writes_again(order + start[nd], rn[nd].nr, cmds);
	}
	return (unsigned int)answered;
}

unsigned int rcl_exec(struct rcl *c, struct rcl_cmd *cmds, unsigned int n, uint64_t deadline_ns)
{
	struct round_node rn[RCL_MAX_NODES];
	unsigned int left = n, i;
	bool remap = false;
	int *order;

	order = malloc(sizeof(*order) * 2 * (n ? n : 1));
	if (!order) {
		for (i = 0; i < n; i++)
			cmds[i].err = -ENOMEM;
		return n;
	}
	for (i = 0; i < n; i++) {
		cmds[i].done = false;
		cmds[i].err = 0;
		cmds[i].reply = NULL;
		cmds[i].node = -1;
		cmds[i].ask_node = -1;
	}
	c->batch = cmds;
	c->batch_n = n;
	while (left) {
		unsigned int answered = 0, pos = 0;
		int start[RCL_MAX_NODES];
		bool lost = false;

		if (fl_now_ns() >= deadline_ns)
			break;
		if (remap)
			refresh(c);
		remap = false;
		memset(rn, 0, sizeof(rn));
		/* Send: per node, its commands in batch order. */
		for (int nd = 0; nd < c->nr_nodes; nd++) {
			start[nd] = (int)pos;
			if (!send_ok(c, nd, &lost))
				continue;
			for (i = 0; i < n; i++) {
				struct rcl_cmd *cmd = &cmds[i];
				int to = cmd->ask_node >= 0
						 ? cmd->ask_node
						 : c->owner[rcl_key_slot(cmd->argv[1],
									 cmd->argvlen[1])];
				if (cmd->done || to != nd)
					continue;
				redisContext *ctx = node_conn(c, nd);
				if (!ctx) {
					remap = true;
					break;
				}
				/* A command that cannot be queued (no memory) would
				 * shift every later reply of the node onto the wrong
				 * command: the node is dropped instead, and what was
				 * queued for it goes again next round. */
				if (cmd->ask_node >= 0) {
					if (redisAppendCommand(ctx, "ASKING") != REDIS_OK)
						goto append_failed;
					order[pos++] = -1;
					rn[nd].nr++;
				}
				if (redisAppendCommandArgv(ctx, cmd->argc, cmd->argv,
							   cmd->argvlen) != REDIS_OK)
					goto append_failed;
				cmd->node = nd;
				order[pos++] = (int)i;
				rn[nd].nr++;
				rn[nd].writes += cmd->write;
				continue;
			append_failed:
				node_drop(c, nd);
				remap = true;
				break;
			}
			if (rn[nd].writes && c->wait_replicas > 0 && c->node[nd].ctx) {
				if (redisAppendCommand(c->node[nd].ctx, "WAIT %d %d",
						       c->wait_replicas,
						       c->wait_timeout_ms) == REDIS_OK)
					rn[nd].waited = true;
				else
					node_drop(c, nd);
			}
		}
		for (i = 0; i < n; i++)
			if (!cmds[i].done && cmds[i].ask_node < 0 &&
			    c->owner[rcl_key_slot(cmds[i].argv[1], cmds[i].argvlen[1])] < 0)
				remap = true;
		for (int nd = 0; nd < c->nr_nodes; nd++)
			if (rn[nd].nr && !c->node[nd].ctx)
				lost = true;
		answered = receive(c, rn, start, order, cmds, deadline_ns, &lost, &remap);
		left -= answered;
		c->st.commands += answered;
		if (lost)
			remap = true;
		if (!answered && left) {
			/* Nothing moved: the cluster may be electing a master. */
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	free(order);
	c->batch = NULL;
	c->batch_n = 0;
	for (i = 0; i < n; i++)
		if (!cmds[i].done) {
			cmds[i].err = -ETIMEDOUT;
			c->st.timeouts++;
		}
	return left;
}

/* Whether cmd is a read answered with nil: its key was not found. */
static bool found_nil(const struct rcl_cmd *cmd)
{
	return cmd->done && !cmd->write && cmd->reply && cmd->reply->type == REDIS_REPLY_NIL;
}

unsigned int rcl_retry_nil(struct rcl *c, struct rcl_cmd *cmds, unsigned int n,
			   uint64_t deadline_ns)
{
	unsigned int i, m = 0, left = 0, *from;
	struct rcl_cmd *again;
	uint64_t answered_nil = 0;
	int ret;

	for (i = 0; i < n && !found_nil(&cmds[i]); i++)
		;
	if (i == n)
		return 0;
	for (unsigned int k = i; k < n; k++)
		if (found_nil(&cmds[k]) && cmds[k].node >= 0)
			answered_nil |= 1ull << cmds[k].node;
	/* Their nodes hold while the map is read: a node that answered nil
	 * keeps its index, to be told from the slot's master now.  The map
	 * comes from another node if one gives it: a master that claims a
	 * slot it lost says in its own map that the slot is its own. */
	c->batch = cmds;
	c->batch_n = n;
	ret = refresh_but(c, answered_nil);
	c->batch = NULL;
	c->batch_n = 0;
	if (ret)
		return 0;
	again = malloc((n - i) * (sizeof(*again) + sizeof(*from)));
	if (!again)
		return 0;
	from = (unsigned int *)(again + (n - i));
	for (; i < n; i++) {
		struct rcl_cmd *cmd = &cmds[i];

		if (!found_nil(cmd) ||
		    c->owner[rcl_key_slot(cmd->argv[1], cmd->argvlen[1])] == cmd->node)
			continue;
		freeReplyObject(cmd->reply);
		cmd->reply = NULL;
		from[m] = i;
		again[m++] = *cmd;
	}
	if (m)
		left = rcl_exec(c, again, m, deadline_ns);
	for (unsigned int k = 0; k < m; k++)
		cmds[from[k]] = again[k];
	free(again);
	return left;
}

/* DEL the n keys of a SCAN reply's array (el).  Return: 0, or -ETIMEDOUT. */
static int del_found(struct rcl *c, redisReply **el, size_t n, uint64_t deadline_ns)
{
	struct rcl_cmd *cmd = calloc(n ? n : 1, sizeof(*cmd));
	int ret = 0;

	if (!cmd)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		cmd[i] = (struct rcl_cmd){.argc = 2,
					  .argv = {"DEL", el[i]->str},
					  .argvlen = {3, el[i]->len},
					  .write = true};
	if (rcl_exec(c, cmd, (unsigned int)n, deadline_ns))
		ret = -ETIMEDOUT;
	for (size_t i = 0; i < n; i++)
		if (cmd[i].reply)
			freeReplyObject(cmd[i].reply);
	free(cmd);
	return ret;
}

long rcl_scan_del(struct rcl *c, const char *pattern, uint64_t deadline_ns)
{
	bool master[RCL_MAX_NODES] = {false};
	long deleted = 0;
	int err = 0;

	for (unsigned int s = 0; s < RCL_SLOTS; s++)
		if (c->owner[s] >= 0)
			master[c->owner[s]] = true;
	/* A master that cannot be scanned does not keep the others from it. */
	for (int nd = 0; nd < c->nr_nodes; nd++) {
		char cursor[24] = "0";
		int ret = 0;

		if (!master[nd])
			continue;
		c->scan_node = nd; /* its cursor is its own: nd keeps its address */
		do {
			redisContext *ctx = node_conn_now(c, nd);
			redisReply *r;

			if (fl_now_ns() >= deadline_ns) {
				ret = -ETIMEDOUT;
				break;
			}
			r = ctx ? redisCommand(ctx, "SCAN %s MATCH %s COUNT 1000", cursor, pattern)
				: NULL;
			if (!r) {
				if (ctx)
					node_drop(c, nd);
				ret = -EIO;
				break;
			}
			if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			    r->element[0]->type != REDIS_REPLY_STRING ||
			    r->element[0]->len >= sizeof(cursor) ||
			    r->element[1]->type != REDIS_REPLY_ARRAY) {
				freeReplyObject(r);
				ret = -EIO;
				break;
			}
			redisReply *keys = r->element[1];
			for (size_t i = 0; i < keys->elements; i++)
				if (keys->element[i]->type != REDIS_REPLY_STRING)
					ret = -EIO;
			if (!ret && keys->elements) {
				ret = del_found(c, keys->element, keys->elements, deadline_ns);
				if (!ret)
					deleted += (long)keys->elements;
			}
			memcpy(cursor, r->element[0]->str, r->element[0]->len);
			cursor[r->element[0]->len] = 0;
			freeReplyObject(r);
		} while (!ret && strcmp(cursor, "0"));
		if (ret && !err)
			err = ret;
	}
	c->scan_node = -1;
	return err ? err : deleted;
}
