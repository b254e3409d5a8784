// SPDX-License-Identifier: MIT
/*
 * The Redis Cluster client against a real cluster on local ports
 * (scripts/redis-cluster.sh): every key lands on its slot's master and reads
 * back; a slot migrated between masters is followed through ASK while it
 * moves and MOVED after; a master killed is followed to its promoted replica
 * with no key lost (writes waited for on a replica); a master stopped with
 * SIGSTOP makes commands slow, never wrong, and holds up only its own (a
 * batch's deadline comes, the others answered, its late replies dropped
 * when they come); the sweep of a key pattern deletes exactly its keys on
 * every master; masters that announce a hostname of 209 bytes are found by
 * it; masters whose addresses change more times than the client's node
 * table has entries are followed; a read answered nil by a master that
 * claims a slot it lost is sent again to the slot's master after the map
 * is read again, from another node (the claimant's map names itself); with no replicas, killing a
 * master fails exactly the commands of its slots.  Redirections are parsed strictly (no cluster
 * needed): a malformed one is refused.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util.h"

#include "cluster.h"
#include "rcluster.h"

#define VAL_LEN 4096
#define NKEYS 3000

static void make_key(char *buf, size_t len, unsigned int i)
{
	snprintf(buf, len, "fl:test:%u", i);
}

static void fill_value(char *v, unsigned int i, unsigned int gen)
{
	uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ gen;

	for (size_t k = 0; k < VAL_LEN; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(v + k, &x, 8);
	}
}

struct batch {
	char keys[NKEYS][32];
	char *vals;
	struct rcl_cmd cmd[NKEYS];
};

static void batch_set(struct batch *b, unsigned int n, unsigned int gen)
{
	for (unsigned int i = 0; i < n; i++) {
		make_key(b->keys[i], sizeof(b->keys[i]), i);
		fill_value(b->vals + (size_t)i * VAL_LEN, i, gen);
		b->cmd[i] = (struct rcl_cmd){
			.argc = 3,
			.argv = {"SET", b->keys[i], b->vals + (size_t)i * VAL_LEN},
			.argvlen = {3, strlen(b->keys[i]), VAL_LEN},
			.write = true,
		};
	}
}

static void batch_get(struct batch *b, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		make_key(b->keys[i], sizeof(b->keys[i]), i);
		b->cmd[i] = (struct rcl_cmd){
			.argc = 2,
			.argv = {"GET", b->keys[i]},
			.argvlen = {3, strlen(b->keys[i])},
		};
	}
}

static void batch_free_replies(struct batch *b, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (b->cmd[i].reply) {
			freeReplyObject(b->cmd[i].reply);
			b->cmd[i].reply = NULL;
		}
}

static uint64_t deadline_in(double s)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + (uint64_t)(s * 1e9);
}

/* Every key 0..n-1 reads back as generation gen's value. */
static void check_all(struct rcl *c, struct batch *b, unsigned int n, unsigned int gen,
		      const char *when)
{
	char want[VAL_LEN];
	unsigned int left;

	batch_get(b, n);
	left = rcl_exec(c, b->cmd, n, deadline_in(60));
	CHECK(!left, "%s: %u of %u GETs got no answer", when, left, n);
	for (unsigned int i = 0; i < n; i++) {
		redisReply *r = b->cmd[i].reply;
		fill_value(want, i, gen);
		CHECK(r && r->type == REDIS_REPLY_STRING && r->len == VAL_LEN &&
			      !memcmp(r->str, want, VAL_LEN),
		      "%s: key %u: reply type %d len %zu, not its value", when, i, r ? r->type : -1,
		      r ? r->len : 0);
	}
	batch_free_replies(b, n);
	printf("%s: %u keys read back right (moved %" PRIu64 ", ask %" PRIu64 ", refreshes %" PRIu64
	       ", failovers %" PRIu64 ", lost connections %" PRIu64 ")\n",
	       when, n, c->st.moved, c->st.ask, c->st.refreshes, c->st.failovers,
	       c->st.conn_errors);
}

static redisContext *admin(int port)
{
	redisContext *a = redisConnect("127.0.0.1", port);

	CHECK(a && !a->err, "connect to %d", port);
	return a;
}

static void node_id(int port, char *id, size_t len)
{
	redisContext *a = admin(port);
	redisReply *r = redisCommand(a, "CLUSTER MYID");

	CHECK(r && r->type == REDIS_REPLY_STRING, "CLUSTER MYID on %d", port);
	snprintf(id, len, "%s", r->str);
	freeReplyObject(r);
	redisFree(a);
}

static void admin_cmd(int port, const char *fmt, const char *a1, const char *a2)
{
	redisContext *a = admin(port);
	redisReply *r = redisCommand(a, fmt, a1, a2);

	CHECK(r && r->type != REDIS_REPLY_ERROR, "on %d: %s %s %s: %s", port, fmt, a1, a2,
	      r && r->str ? r->str : "no reply");
	freeReplyObject(r);
	redisFree(a);
}

/*
 * Migrate hash slot s from the master on port from to the one on port to,
 * as redis-cli --cluster reshard does, checking the client on the keys of
 * the slot between the steps: ASK while it moves, MOVED after.
 */
static void test_migration(struct rcl *c, struct batch *b, unsigned int gen)
{
	char from_id[64], to_id[64], slot[16];
	unsigned int s, moved_keys = 0;
	uint64_t ask0 = c->st.ask, moved0 = c->st.moved;
	int from, to = 0;

	make_key(b->keys[0], sizeof(b->keys[0]), 0);
	s = rcl_key_slot(b->keys[0], strlen(b->keys[0]));
	/* From the master of key 0's slot to another master. */
	from = c->node[c->owner[s]].port;
	for (unsigned int t = 0; t < RCL_SLOTS && !to; t++)
		if (c->owner[t] >= 0 && c->node[c->owner[t]].port != from)
			to = c->node[c->owner[t]].port;
	node_id(from, from_id, sizeof(from_id));
	node_id(to, to_id, sizeof(to_id));
	snprintf(slot, sizeof(slot), "%u", s);
	admin_cmd(to, "CLUSTER SETSLOT %s IMPORTING %s", slot, from_id);
	admin_cmd(from, "CLUSTER SETSLOT %s MIGRATING %s", slot, to_id);
	/* Move the first key of the slot only: the others still answer on
	 * the old master, the moved one with ASK. */
	{
		redisContext *a = admin(from);
		redisReply *r = redisCommand(a, "MIGRATE 127.0.0.1 %d %s 0 5000", to, b->keys[0]);
		CHECK(r && r->type != REDIS_REPLY_ERROR, "MIGRATE: %s",
		      r && r->str ? r->str : "no reply");
		freeReplyObject(r);
		redisFree(a);
		moved_keys++;
	}
	check_all(c, b, NKEYS, gen, "slot migrating");
	CHECK(c->st.ask > ask0, "a key moved to its new node was not read through ASK");
	/* The rest of the slot's keys, then the slot itself. */
	for (unsigned int i = 1; i < NKEYS; i++) {
		char k[32];
		make_key(k, sizeof(k), i);
		if (rcl_key_slot(k, strlen(k)) != s)
			continue;
		redisContext *a = admin(from);
		redisReply *r = redisCommand(a, "MIGRATE 127.0.0.1 %d %s 0 5000", to, k);
		CHECK(r && r->type != REDIS_REPLY_ERROR, "MIGRATE %s", k);
		freeReplyObject(r);
		redisFree(a);
		moved_keys++;
	}
	admin_cmd(to, "CLUSTER SETSLOT %s NODE %s", slot, to_id);
	admin_cmd(from, "CLUSTER SETSLOT %s NODE %s", slot, to_id);
	check_all(c, b, NKEYS, gen, "slot migrated");
	CHECK(c->st.moved > moved0, "the migrated slot was not followed through MOVED");
	printf("migration of slot %u (%u keys) from %d to %d: followed\n", s, moved_keys, from, to);
}

static void set_all(struct rcl *c, struct batch *b, unsigned int gen)
{
	unsigned int left;

	batch_set(b, NKEYS, gen);
	left = rcl_exec(c, b->cmd, NKEYS, deadline_in(60));
	CHECK(!left, "%u of %u SETs got no answer", left, NKEYS);
	for (unsigned int i = 0; i < NKEYS; i++)
		CHECK(b->cmd[i].reply->type == REDIS_REPLY_STATUS, "SET %u: type %d %s", i,
		      b->cmd[i].reply->type, b->cmd[i].reply->str ? b->cmd[i].reply->str : "");
	batch_free_replies(b, NKEYS);
}

/* rcl_scan_del(): every key of a pattern goes, from every master; a key
 * of another stays. */
static void sweep(struct rcl *c, struct batch *b)
{
	struct rcl_cmd other = {.argc = 3,
				.argv = {"SET", "other:key", "kept"},
				.argvlen = {3, 9, 4},
				.write = true};
	long swept;

	CHECK(!rcl_exec(c, &other, 1, deadline_in(10)), "SET other:key");
	freeReplyObject(other.reply);
	swept = rcl_scan_del(c, "fl:test:*", deadline_in(30));
	CHECK(swept == NKEYS, "the sweep deleted %ld keys, want %d", swept, NKEYS);
	batch_get(b, NKEYS);
	CHECK(!rcl_exec(c, b->cmd, NKEYS, deadline_in(30)), "GETs after the sweep");
	for (unsigned int i = 0; i < NKEYS; i++)
		CHECK(b->cmd[i].reply->type == REDIS_REPLY_NIL, "key %u left after the sweep", i);
	batch_free_replies(b, NKEYS);
	other = (struct rcl_cmd){.argc = 2, .argv = {"GET", "other:key"}, .argvlen = {3, 9}};
	CHECK(!rcl_exec(c, &other, 1, deadline_in(10)) && other.reply->type == REDIS_REPLY_STRING &&
		      other.reply->len == 4,
	      "another prefix's key swept too");
	freeReplyObject(other.reply);
	printf("the sweep of fl:test:* deleted its %ld keys from every master, and no other\n",
	       swept);
}

/*
 * A master stopped: a batch with a short deadline comes back by it (and a
 * little quiet), with exactly that master's keys unanswered and every
 * other key right, and without giving up on the master's connection, which
 * then owes late replies; a second batch meanwhile does not send it more.
 * Once it resumes, the late replies are dropped and the next batch's are
 * taken as its own: every key right again.
 */
static void silent_master(struct rcl *c, struct batch *b, int port, unsigned int gen)
{
	char want[VAL_LEN];
	uint64_t lost0 = c->st.conn_errors;
	unsigned int on_it = 0, left;
	pid_t pid = node_pid(port);
	int nd = -1;

	for (int i = 0; i < c->nr_nodes; i++)
		if (c->node[i].port == port)
			nd = i;
	CHECK(nd >= 0, "node %d unknown to the client", port);
	for (unsigned int i = 0; i < NKEYS; i++) {
		make_key(b->keys[i], sizeof(b->keys[i]), i);
		on_it += c->owner[rcl_key_slot(b->keys[i], strlen(b->keys[i]))] == nd;
	}
	CHECK(on_it > 0, "no key on node %d", port);
	CHECK(kill(pid, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
	for (int round = 0; round < 2; round++) {
		batch_get(b, NKEYS);
		left = rcl_exec(c, b->cmd, NKEYS, deadline_in(0.05));
		for (unsigned int i = 0; i < NKEYS; i++) {
			redisReply *r = b->cmd[i].reply;
			bool mine = c->owner[rcl_key_slot(b->keys[i], strlen(b->keys[i]))] == nd;
			fill_value(want, i, gen);
			CHECK(mine ? !r && b->cmd[i].err == -ETIMEDOUT
				   : r && r->type == REDIS_REPLY_STRING && r->len == VAL_LEN &&
					      !memcmp(r->str, want, VAL_LEN),
			      "stopped master, batch %d: key %u (%s) err %d reply %d", round, i,
			      mine ? "its" : "another's", b->cmd[i].err, r ? r->type : -1);
		}
		batch_free_replies(b, NKEYS);
		CHECK(left == on_it, "batch %d: %u unanswered, the stopped master has %u", round,
		      left, on_it);
	}
	CHECK(c->st.conn_errors == lost0 && c->node[nd].ctx && c->node[nd].stale == on_it,
	      "the stopped master's connection: lost %" PRIu64 ", %u late replies owed (want %u)",
	      c->st.conn_errors - lost0, c->node[nd].stale, on_it);
	CHECK(kill(pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	check_all(c, b, NKEYS, gen, "the stopped master resumed, its late replies dropped");
	CHECK(c->node[nd].stale == 0, "%u late replies still owed", c->node[nd].stale);
	printf("a stopped master: batches came back without its %u keys, the others right, its "
	       "connection kept\n",
	       on_it);
}

static void with_replicas(int base, struct batch *b)
{
	const char *seeds = cluster_start(base, 3, 1);
	struct rcl c;
	pid_t victim;

	CHECK(rcl_open(&c, seeds, 500) == 0, "rcl_open %s", seeds);
	c.wait_replicas = 1;
	c.wait_timeout_ms = 1000;
	set_all(&c, b, 1);
	check_all(&c, b, NKEYS, 1, "written, replicated");
	test_migration(&c, b, 1);
	silent_master(&c, b, base + 1, 1);

	/* A master stopped for less than the node timeout: slow, not wrong. */
	victim = node_pid(base + 2);
	kill(victim, SIGSTOP);
	pid_t cont = fork();
	CHECK(cont >= 0, "fork");
	if (!cont) {
		usleep(700 * 1000);
		kill(victim, SIGCONT);
		_exit(0);
	}
	check_all(&c, b, NKEYS, 1, "a master stopped for 0.7 s");
	waitpid(cont, NULL, 0);

	/* A master killed: its replica takes over, nothing is lost. */
	uint64_t f0 = c.st.failovers;
	victim = node_pid(base);
	CHECK(kill(victim, SIGKILL) == 0, "kill %d", (int)victim);
	check_all(&c, b, NKEYS, 1, "a master killed");
	CHECK(c.st.failovers > f0, "no failover seen");
	/* The old master comes back as the new one's replica, and writes go
	 * on, waited for on it. */
	cluster_wait_failover(base, base + 1);
	cluster_restart(base);
	set_all(&c, b, 2);
	check_all(&c, b, NKEYS, 2, "rewritten after the failover");
	sweep(&c, b);
	rcl_close(&c);
	cluster_stop();
}

/* Whether CLUSTER SLOTS on the node of port names every master by host. */
static bool slots_name(int port, const char *host)
{
	redisContext *a = admin(port);
	redisReply *r = redisCommand(a, "CLUSTER SLOTS");
	bool all = r && r->type == REDIS_REPLY_ARRAY && r->elements;

	for (size_t k = 0; all && k < r->elements; k++) {
		redisReply *e = r->element[k];
		all = e->type == REDIS_REPLY_ARRAY && e->elements >= 3 &&
		      e->element[2]->type == REDIS_REPLY_ARRAY && e->element[2]->elements >= 2 &&
		      e->element[2]->element[0]->type == REDIS_REPLY_STRING &&
		      !strcmp(e->element[2]->element[0]->str, host);
	}
	freeReplyObject(r);
	redisFree(a);
	return all;
}

/* Wait (up to 10 s) until every node of ports base.. base + n - 1 names
 * every master by host. */
static void wait_slots_name(int base, int n, const char *host)
{
	for (int t = 0, p = base; p < base + n; t++) {
		CHECK(t < 1000, "the cluster does not name its masters %s", host);
		if (slots_name(p, host))
			p++;
		else
			usleep(10000);
	}
}

/*
 * Nodes that announce a hostname (Redis 7: cluster-announce-hostname) are
 * named by it in the slot map, and a hostname may be 255 bytes long: a
 * client opened then reads the map, with every master by that name, and
 * reads every key back through it.  The host here is a 209-byte spelling
 * of 127.0.0.1 (inet_aton() takes leading zeros), so that it resolves
 * without a name server.
 */
static void long_hostnames(const char *seeds, int base, int n, struct batch *b, unsigned int gen)
{
	char host[256] = "127.0.0.";
	struct rcl c;
	int ret;

	memset(host + 8, '0', 200);
	strcpy(host + 208, "1");
	for (int p = base; p < base + n; p++) {
		admin_cmd(p, "CONFIG SET %s %s", "cluster-announce-hostname", host);
		admin_cmd(p, "CONFIG SET %s %s", "cluster-preferred-endpoint-type", "hostname");
	}
	wait_slots_name(base, n, host);
	ret = rcl_open(&c, seeds, 300);
	CHECK(ret == 0, "rcl_open, the masters named by a %zu-byte host: %d", strlen(host), ret);
	for (unsigned int s = 0; s < RCL_SLOTS; s++)
		CHECK(!strcmp(c.node[c.owner[s]].host, host), "slot %u: its master is \"%s\"", s,
		      c.node[c.owner[s]].host);
	check_all(&c, b, NKEYS, gen, "the masters named by a long host");
	rcl_close(&c);
	for (int p = base; p < base + n; p++)
		admin_cmd(p, "CONFIG SET %s %s", "cluster-preferred-endpoint-type", "ip");
}

/*
 * Masters whose address changes again and again are followed: each time,
 * every master announces a new one (cluster-announce-ip: a new spelling of
 * 127.0.0.1, leading zeros, so that it still connects) and the client's
 * connections are closed (CLIENT KILL), so that the client reads the map
 * again, with every master at its new address.  There are more changes
 * than its node table has entries: those of the old addresses, which no
 * map names any more, are taken over, and the table never fills.
 */
static void address_changes(struct rcl *c, int base, int n, struct batch *b, unsigned int gen)
{
	const int changes = RCL_MAX_NODES / n + 2;
	uint64_t refreshes0 = c->st.refreshes;
	char ip[46];

	for (int k = 1; k <= changes; k++) {
		snprintf(ip, sizeof(ip), "127.0.0.%0*d", k + 1, 1);
		for (int p = base; p < base + n; p++)
			admin_cmd(p, "CONFIG SET %s %s", "cluster-announce-ip", ip);
		wait_slots_name(base, n, ip);
		for (int p = base; p < base + n; p++)
			admin_cmd(p, "CLIENT KILL %s %s", "TYPE", "normal");
		check_all(c, b, NKEYS / 10, gen, ip);
		for (unsigned int s = 0; s < RCL_SLOTS; s++)
			CHECK(c->owner[s] >= 0 && !strcmp(c->node[c->owner[s]].host, ip),
			      "change %d: slot %u: its master is \"%s\", not at %s", k, s,
			      c->owner[s] >= 0 ? c->node[c->owner[s]].host : "", ip);
	}
	printf("%d address changes of %d masters followed (%" PRIu64 " maps read), %d entries in "
	       "the node table\n",
	       changes, n, c->st.refreshes - refreshes0, c->nr_nodes);
}

/* The port of slot s's master as CLUSTER SLOTS on the node of port says;
 * -1 if none. */
static int slot_master_port(int port, unsigned int s)
{
	redisContext *a = admin(port);
	redisReply *r = redisCommand(a, "CLUSTER SLOTS");
	int master = -1;

	for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
		redisReply *e = r->element[k];
		if (e->type == REDIS_REPLY_ARRAY && e->elements >= 3 &&
		    (long long)s >= e->element[0]->integer &&
		    (long long)s <= e->element[1]->integer &&
		    e->element[2]->type == REDIS_REPLY_ARRAY && e->element[2]->elements >= 2)
			master = (int)e->element[2]->element[1]->integer;
	}
	freeReplyObject(r);
	redisFree(a);
	return master;
}

/* Move slot s and its keys (of 0..NKEYS-1) from the master of port from
 * to the one of port to, behind the client's back. */
static void move_slot(unsigned int s, int from, int to)
{
	char from_id[64], to_id[64], slot[16];

	node_id(from, from_id, sizeof(from_id));
	node_id(to, to_id, sizeof(to_id));
	snprintf(slot, sizeof(slot), "%u", s);
	admin_cmd(to, "CLUSTER SETSLOT %s IMPORTING %s", slot, from_id);
	admin_cmd(from, "CLUSTER SETSLOT %s MIGRATING %s", slot, to_id);
	for (unsigned int i = 0; i < NKEYS; i++) {
		char k[32], port[16];
		make_key(k, sizeof(k), i);
		if (rcl_key_slot(k, strlen(k)) != s)
			continue;
		snprintf(port, sizeof(port), "%d", to);
		admin_cmd(from, "MIGRATE 127.0.0.1 %s %s 0 5000", port, k);
	}
	admin_cmd(to, "CLUSTER SETSLOT %s NODE %s", slot, to_id);
	admin_cmd(from, "CLUSTER SETSLOT %s NODE %s", slot, to_id);
}

/*
 * Key i's slot, whose master is the node of port from, moves to the node of
 * port to (with its keys) behind the client's back, and from claims it
 * again (CLUSTER SETSLOT NODE), as a master restarted empty does until it
 * hears that it lost the slot; the cluster undoes the claim at the next
 * gossip.  If the GET still finds the claim (a nil), rcl_retry_nil() must
 * find the key on to.  Return: whether the GET saw the claim.
 */
static bool stale_claim(struct rcl *c, unsigned int gen, unsigned int i, int from, int to)
{
	char want[VAL_LEN], k[32], slot[16], id[64];
	struct rcl_cmd get;
	unsigned int s, left;
	bool seen = false;

	make_key(k, sizeof(k), i);
	s = rcl_key_slot(k, strlen(k));
	move_slot(s, from, to);
	/* The rest of the cluster hears of it first, as of a failover. */
	for (unsigned int x = 0; x < RCL_SLOTS; x++) {
		int port = c->node[c->owner[x]].port;

		for (int t = 0; slot_master_port(port, s) != to; t++) {
			CHECK(t < 1000, "the master of port %d does not hear that slot %u moved",
			      port, s);
			usleep(10000);
		}
		while (x + 1 < RCL_SLOTS && c->owner[x + 1] == c->owner[x])
			x++;
	}
	node_id(from, id, sizeof(id));
	snprintf(slot, sizeof(slot), "%u", s);
	admin_cmd(from, "CLUSTER SETSLOT %s NODE %s", slot, id);
	get = (struct rcl_cmd){.argc = 2, .argv = {"GET", k}, .argvlen = {3, strlen(k)}};
	left = rcl_exec(c, &get, 1, deadline_in(10));
	CHECK(!left, "GET %s: no answer", k);
	if (get.reply->type == REDIS_REPLY_NIL) {
		seen = true;
		left = rcl_retry_nil(c, &get, 1, deadline_in(10));
		fill_value(want, i, gen);
		CHECK(!left && get.reply && get.reply->type == REDIS_REPLY_STRING &&
			      get.reply->len == VAL_LEN && !memcmp(get.reply->str, want, VAL_LEN),
		      "key %u, nil from the master of port %d that claims its slot: not "
		      "found again on %d (reply %d)",
		      i, from, to, get.reply ? get.reply->type : -1);
	}
	freeReplyObject(get.reply);
	/* The cluster undoes the claim: wait for it. */
	for (int t = 0; slot_master_port(from, s) != to; t++) {
		CHECK(t < 1000, "the master of port %d keeps claiming slot %u", from, s);
		usleep(10000);
	}
	return seen;
}

/*
 * A master that answers nil for a key it does not have because it claims
 * a slot the cluster gave another (stale_claim()): rcl_retry_nil() reads
 * the map again and finds the key on the slot's master, whether the slot
 * went to the node the client would read the map from first (the first
 * connected), or away from it (then the map must come from another node:
 * the claimant's own map names itself).  A few slots may be tried, as the
 * cluster may undo a claim before the GET.  A key that is nowhere stays
 * nil, after one map from another server (two if the first came from the
 * answering server under another name: the seed's and the map's).
 */
static void nil_from_stale_master(struct rcl *c, unsigned int gen)
{
	int first = -1;

	for (int i = 0; i < c->nr_nodes && first < 0; i++)
		if (c->node[i].ctx)
			first = c->node[i].port;
	CHECK(first > 0 && node_is_master(first), "no master connected");
	for (int away = 0; away < 2; away++) {
		bool seen = false;

		for (unsigned int i = 0; i < NKEYS && !seen; i++) {
			char k[32];
			int owner, to = -1;

			make_key(k, sizeof(k), i);
			owner = c->node[c->owner[rcl_key_slot(k, strlen(k))]].port;
			if ((owner == first) != away)
				continue;
			if (away) /* to another master: the owner of a key not on first */
				for (unsigned int j = 0; j < NKEYS && to < 0; j++) {
					int o;

					make_key(k, sizeof(k), j);
					o = c->node[c->owner[rcl_key_slot(k, strlen(k))]].port;
					if (o != first)
						to = o;
				}
			seen = stale_claim(c, gen, i, owner, away ? to : first);
			if (seen)
				printf("a nil from a master claiming a slot it lost (%s the node "
				       "asked first): read again on the slot's master\n",
				       away ? "it is" : "moved to");
		}
		CHECK(seen, "no master answered nil for a slot it claimed (%s)",
		      away ? "away from the first connected" : "to the first connected");
	}

	uint64_t refreshes0 = c->st.refreshes;
	struct rcl_cmd none = {.argc = 2, .argv = {"GET", "fl:none"}, .argvlen = {3, 7}};
	CHECK(!rcl_exec(c, &none, 1, deadline_in(10)) && none.reply->type == REDIS_REPLY_NIL,
	      "GET of a key that is nowhere");
	CHECK(!rcl_retry_nil(c, &none, 1, deadline_in(10)) && none.reply &&
		      none.reply->type == REDIS_REPLY_NIL && c->st.refreshes - refreshes0 >= 1 &&
		      c->st.refreshes - refreshes0 <= 2,
	      "a key that is nowhere: reply %d after %" PRIu64 " maps read",
	      none.reply ? none.reply->type : -1, c->st.refreshes - refreshes0);
	freeReplyObject(none.reply);
}

static void without_replicas(int base, struct batch *b)
{
	const char *seeds = cluster_start(base, 3, 0);
	unsigned int lost = 0, dead = 0;
	int16_t owner_of_key[NKEYS];
	struct rcl c;
	int dead_node;

	CHECK(rcl_open(&c, seeds, 300) == 0, "rcl_open %s", seeds);
	set_all(&c, b, 3);
	long_hostnames(seeds, base, 3, b, 3);
	address_changes(&c, base, 3, b, 3);
	nil_from_stale_master(&c, 3);
	check_all(&c, b, NKEYS, 3, "a slot claimed back and given up");
	for (unsigned int i = 0; i < NKEYS; i++) {
		char k[32];
		make_key(k, sizeof(k), i);
		owner_of_key[i] = c.owner[rcl_key_slot(k, strlen(k))];
	}
	dead_node = owner_of_key[0];
	CHECK(kill(node_pid(c.node[dead_node].port), SIGKILL) == 0, "kill");
	batch_get(b, NKEYS);
	rcl_exec(&c, b->cmd, NKEYS, deadline_in(4));
	for (unsigned int i = 0; i < NKEYS; i++) {
		char want[VAL_LEN];
		bool on_dead = owner_of_key[i] == dead_node;
		redisReply *r = b->cmd[i].reply;

		dead += on_dead;
		if (on_dead) {
			/* No replica has it: no answer, or the cluster says so. */
			CHECK(b->cmd[i].err || (r && r->type == REDIS_REPLY_ERROR),
			      "key %u of the dead master answered", i);
			lost++;
			continue;
		}
		fill_value(want, i, 3);
		CHECK(!b->cmd[i].err && r && r->type == REDIS_REPLY_STRING && r->len == VAL_LEN &&
			      !memcmp(r->str, want, VAL_LEN),
		      "key %u of a live master: err %d", i, b->cmd[i].err);
	}
	batch_free_replies(b, NKEYS);
	CHECK(lost == dead && dead > 0, "lost %u, on the dead master %u", lost, dead);
	printf("no replicas, a master killed: exactly its %u keys fail, the other %u read back\n",
	       dead, NKEYS - dead);
	rcl_close(&c);
	cluster_stop();
}

/*
 * Redirections are parsed strictly: a reply naming no slot in 0..16383 or
 * no port in 1..65535, or with anything after either, is not followed (the
 * command gets it as its answer), so that a node is never made of it.
 */
static void redirect_parse(void)
{
	static const struct {
		const char *s;
		int port; /* -EPROTO: malformed */
		unsigned int slot;
		const char *host;
	} t[] = {
		{"MOVED 3999 127.0.0.1:6381", 6381, 3999, "127.0.0.1"},
		{"ASK 0 :7000", 7000, 0, ""},
		{"MOVED 16383 a.long.host.name:65535", 65535, 16383, "a.long.host.name"},
		{"MOVED 1 ::1:6379", 6379, 1, "::1"},
		{"MOVED 3999 127.0.0.1:0", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1:65536", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1:-1", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1:+6379", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1: 6379", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1:6381x", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1:6381 ", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1:99999999999999999999", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1:", -EPROTO, 0, ""},
		{"MOVED 3999 127.0.0.1", -EPROTO, 0, ""},
		{"MOVED 3999", -EPROTO, 0, ""},
		{"MOVED", -EPROTO, 0, ""},
		{"MOVED 16384 127.0.0.1:6381", -EPROTO, 0, ""},
		{"MOVED -1 127.0.0.1:6381", -EPROTO, 0, ""},
		{"MOVED 12a 127.0.0.1:6381", -EPROTO, 0, ""},
		{"MOVED  3999 127.0.0.1:6381", -EPROTO, 0, ""},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned int slot = ~0u;
		size_t host = 0, hlen = 0;
		int port = rcl_parse_redirect(t[i].s, strlen(t[i].s), &slot, &host, &hlen);

		CHECK(port == t[i].port, "\"%s\": port %d, want %d", t[i].s, port, t[i].port);
		if (port < 0)
			continue;
		CHECK(slot == t[i].slot && hlen == strlen(t[i].host) &&
			      !memcmp(t[i].s + host, t[i].host, hlen),
		      "\"%s\": slot %u host \"%.*s\"", t[i].s, slot, (int)hlen, t[i].s + host);
	}
	/* Within its length only: what follows is not the port's. */
	CHECK(rcl_parse_redirect("ASK 7 h:6379junk", 12, &(unsigned int){0}, &(size_t){0},
				 &(size_t){0}) == 6379,
	      "a redirection read past its length");
	printf("redirections: %zu parsed, the malformed ones refused\n", sizeof(t) / sizeof(t[0]));
}

/* Replies of CLUSTER SLOTS, made by hand: an integer, a string, an array. */
#define R_INT(v) (&(redisReply){.type = REDIS_REPLY_INTEGER, .integer = (v)})
#define R_STR(s) (&(redisReply){.type = REDIS_REPLY_STRING, .str = (char *)(s), .len = strlen(s)})
#define R_ARR(...)                                               \
	(&(redisReply){.type = REDIS_REPLY_ARRAY,                \
		       .element = (redisReply *[]){__VA_ARGS__}, \
		       .elements = sizeof((redisReply *[]){__VA_ARGS__}) / sizeof(redisReply *)})
#define R_MASTER(h, p) R_ARR(R_STR(h), (p), R_STR("0123456789abcdef"))

/*
 * Slot maps are parsed strictly too: an entry naming slots out of
 * 0..16383, a port out of 1..65535 or a reply of another shape is skipped,
 * so that no node is made of it (the map is then incomplete, and not
 * taken, unless another entry covers those slots).
 */
static void slots_parse(void)
{
	const struct {
		redisReply *e;
		int port; /* -EPROTO: skipped */
		unsigned int lo, hi;
		const char *host;
	} t[] = {
		{R_ARR(R_INT(0), R_INT(5460), R_MASTER("127.0.0.1", R_INT(7000))), 7000, 0, 5460,
		 "127.0.0.1"},
		{R_ARR(R_INT(16383), R_INT(16383), R_MASTER("", R_INT(65535)),
		       R_MASTER("replica", R_INT(7004))),
		 65535, 16383, 16383, ""},
		{R_ARR(R_INT(7), R_INT(9), R_ARR(R_STR("h"), R_INT(1))), 1, 7, 9, "h"},
		/* cluster-preferred-endpoint-type unknown-endpoint: a null host */
		{R_ARR(R_INT(0), R_INT(5460),
		       R_ARR(&(redisReply){.type = REDIS_REPLY_NIL}, R_INT(7000))),
		 7000, 0, 5460, ""},
		{R_ARR(R_INT(0), R_INT(5460), R_MASTER("127.0.0.1", R_INT(0))), -EPROTO, 0, 0, ""},
		{R_ARR(R_INT(0), R_INT(5460), R_MASTER("127.0.0.1", R_INT(65536))), -EPROTO, 0, 0,
		 ""},
		{R_ARR(R_INT(0), R_INT(5460), R_MASTER("127.0.0.1", R_INT(-7000))), -EPROTO, 0, 0,
		 ""},
		{R_ARR(R_INT(0), R_INT(5460), R_MASTER("127.0.0.1", R_INT(4294974296LL))), -EPROTO,
		 0, 0, ""},
		{R_ARR(R_INT(0), R_INT(5460), R_MASTER("127.0.0.1", R_STR("7000"))), -EPROTO, 0, 0,
		 ""},
		{R_ARR(R_INT(0), R_INT(16384), R_MASTER("127.0.0.1", R_INT(7000))), -EPROTO, 0, 0,
		 ""},
		{R_ARR(R_INT(-1), R_INT(5460), R_MASTER("127.0.0.1", R_INT(7000))), -EPROTO, 0, 0,
		 ""},
		{R_ARR(R_INT(9), R_INT(7), R_MASTER("127.0.0.1", R_INT(7000))), -EPROTO, 0, 0, ""},
		{R_ARR(R_STR("0"), R_INT(5460), R_MASTER("127.0.0.1", R_INT(7000))), -EPROTO, 0, 0,
		 ""},
		{R_ARR(R_INT(0), R_INT(5460), R_ARR(R_INT(1), R_INT(7000))), -EPROTO, 0, 0, ""},
		{R_ARR(R_INT(0), R_INT(5460), R_ARR(R_STR("127.0.0.1"))), -EPROTO, 0, 0, ""},
		{R_ARR(R_INT(0), R_INT(5460), R_STR("127.0.0.1:7000")), -EPROTO, 0, 0, ""},
		{R_ARR(R_INT(0), R_INT(5460)), -EPROTO, 0, 0, ""},
		{R_STR("0 5460 127.0.0.1 7000"), -EPROTO, 0, 0, ""},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned int lo = ~0u, hi = ~0u;
		const char *host = NULL;
		size_t hlen = ~(size_t)0;
		int port = rcl_parse_slots_entry(t[i].e, &lo, &hi, &host, &hlen);

		CHECK(port == t[i].port, "slot map entry %zu: port %d, want %d", i, port,
		      t[i].port);
		if (port < 0)
			continue;
		CHECK(lo == t[i].lo && hi == t[i].hi && hlen == strlen(t[i].host) &&
			      !memcmp(host, t[i].host, hlen),
		      "slot map entry %zu: slots %u..%u host \"%.*s\"", i, lo, hi, (int)hlen, host);
	}
	printf("slot maps: %zu entries parsed, the malformed ones skipped\n",
	       sizeof(t) / sizeof(t[0]));
}

/*
 * A full node table takes over only entries nothing holds: not the slot
 * map's masters, a seed, one with late replies due, the master being
 * scanned, nor the node a command of the batch running was sent to or is
 * to be sent to next (ASK).  Entries 0-7 are held each by one of those;
 * new nodes go to entry 8, again and again, until a hold is let go.
 */
static void node_table_holds(void)
{
	struct rcl *c = calloc(1, sizeof(*c));
	struct rcl_cmd cmd[2] = {{.node = 6, .ask_node = -1}, {.node = -1, .ask_node = 7}};
	char host[32];
	int i;

	CHECK(c, "calloc");
	c->scan_node = -1;
	for (unsigned int s = 0; s < RCL_SLOTS; s++)
		c->owner[s] = -1;
	for (int k = 0; k < RCL_MAX_NODES; k++) {
		snprintf(host, sizeof(host), "node%d", k);
		CHECK(rcl_node_index(c, host, 7000) == k, "node %d: not entry %d", k, k);
	}
	for (unsigned int s = 0; s < RCL_SLOTS; s++)
		c->owner[s] = (int16_t)(s < 5000 ? 0 : s < 10000 ? 4 : 5);
	c->node[1].seed = true;
	c->node[2].stale = 1;
	c->scan_node = 3;
	c->batch = cmd;
	c->batch_n = 2;
	for (int k = 0; k < 2 * RCL_MAX_NODES; k++) {
		snprintf(host, sizeof(host), "new%d", k);
		i = rcl_node_index(c, host, 7000);
		CHECK(i == 8, "a new node took entry %d, not 8 (held: 0-7)", i);
	}
	for (int k = 0; k < 8; k++) {
		snprintf(host, sizeof(host), "node%d", k);
		CHECK(!strcmp(c->node[k].host, host) && c->node[k].port == 7000,
		      "entry %d, held, became %s:%d", k, c->node[k].host, c->node[k].port);
		CHECK(rcl_node_index(c, host, 7000) == k, "%s is not found at entry %d", host, k);
	}
	/* The batch is over: its two entries are taken over like any. */
	c->batch = NULL;
	c->batch_n = 0;
	i = rcl_node_index(c, "after-batch", 7000);
	CHECK(i == 6, "after the batch a new node took entry %d, not 6", i);
	c->node[6].seed = true;
	i = rcl_node_index(c, "after-batch2", 7000);
	CHECK(i == 7, "after the batch a new node took entry %d, not 7", i);
	/* Every entry held: no entry for a new node, and no harm. */
	for (int k = 0; k < RCL_MAX_NODES; k++)
		c->node[k].seed = true;
	CHECK(rcl_node_index(c, "one-too-many", 7000) == -1,
	      "a node found an entry in a held table");
	CHECK(rcl_node_index(c, "node4", 7000) == 4, "a known node is not found in a full table");
	free(c);
	printf("node table: held entries kept, the others taken over\n");
}

int main(int argc, char **argv)
{
	uint64_t seed = t_seed_init(argc, argv, "test_rcluster");
	struct batch *b;
	int base;

	redirect_parse();
	slots_parse();
	node_table_holds();
	cluster_setup();
	b = calloc(1, sizeof(*b));
	CHECK(b, "calloc");
	b->vals = malloc((size_t)NKEYS * VAL_LEN);
	CHECK(b->vals, "malloc");
	/* Bus ports (+10000) below the ephemeral range: cluster_start(). */
	base = 19000 + (int)(seed % 150) * 20;
	with_replicas(base, b);
	without_replicas(base + 10, b);
	free(b->vals);
	free(b);
	printf("test_rcluster: PASS\n");
	return T_EXIT_PASS;
}
