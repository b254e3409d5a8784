// SPDX-License-Identifier: MIT
/* Far memory on a Redis Cluster: the store backend (rstore.h). */
#include "rstore.h"

#include <poll.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

/* A node that stays silent this long is lost (the client drops it and
 * reads the slot map again). */
#define RS_NODE_TIMEOUT_MS 1000
/* WAIT's own timeout, well inside the node's: a master with fewer replicas
 * than asked for (one lost, not yet replaced) answers WAIT with a short
 * count, and the round's writes go again; were the two equal, the client's
 * read would time out first and drop a healthy master every round. */
#define RS_WAIT_TIMEOUT_MS (RS_NODE_TIMEOUT_MS / 4)

bool rstore_is_url(const char *path)
{
	return path && !strncmp(path, RSTORE_SCHEME, strlen(RSTORE_SCHEME));
}

static struct rstore *rs_of(struct swap_dev *d)
{
	return d->be_priv;
}

/*
 * The key of slot's page as the store sealed it: "fl:<id>:<slot>:<gen>",
 * the write generation in it, so that each write of a slot has a key of
 * its own.  A command that outlives its connection (sent, unanswered, the
 * connection dropped, run by the server later: a stopped node resumed)
 * then touches only the version it was meant for: a late DEL cannot delete
 * the next page written to the slot, nor a late SET overwrite it.  What
 * such a SET leaves is found by the sweep at the end (rs_close()).
 * Context: the caller owns the slot.
 */
static void key_of(struct swap_dev *d, uint32_t slot, char *buf, size_t len)
{
	snprintf(buf, len, "%s%u:%" PRIx64, rs_of(d)->prefix, slot,
		 store_slot_gen(&d->store, slot));
}

/* Queue io for the I/O thread.  Context: any, also the SIGBUS handler:
 * a mutex and a write(2). */
static void enqueue(struct rstore *rs, struct swap_io *io)
{
	uint64_t one = 1;

	io->be_next = NULL;
	io->be_done = 0;
	io->be_again = false;
	FL_BUG_ON((io->nr > 1 ? io->nr : 1) > 64); /* be_done's bits */
	pthread_mutex_lock(&rs->lock);
	if (rs->q_tail)
		rs->q_tail->be_next = io;
	else
		rs->q_head = io;
	rs->q_tail = io;
	pthread_mutex_unlock(&rs->lock);
	if (write(rs->efd, &one, sizeof(one)) < 0)
		FL_BUG_ON(errno != EAGAIN);
}

static int rs_submit(struct swap_dev *d, struct swap_io *io)
{
	struct rstore *rs = rs_of(d);

	io->sync = false;
	io->be_deadline = io->t_submit + rs->timeout_ns;
	if (io->t_end_by && io->t_end_by < io->be_deadline)
		io->be_deadline = io->t_end_by; /* one round at least: run_round() */
	enqueue(rs, io);
	return 0;
}

/* Through the I/O thread too, sleeping on a futex meanwhile: hiredis
 * allocates, which the SIGBUS handler must not. */
static int rs_read_sync(struct swap_dev *d, struct swap_io *io)
{
	struct rstore *rs = rs_of(d);

	io->sync = true;
	io->sync_res = 0;
	atomic_store_explicit(&io->sync_done, 0, memory_order_relaxed);
	io->be_deadline = fl_now_ns() + rs->timeout_ns;
	enqueue(rs, io);
	while (!atomic_load_explicit(&io->sync_done, memory_order_acquire))
		futex_wait(&io->sync_done, 0);
	return io->sync_res;
}

/* io is over: to the reaper, or to the thread sleeping in rs_read_sync(). */
static void finish(struct swap_dev *d, struct rstore *rs, struct swap_io *io, int res)
{
	if (!io->write && io->nr > 1 && (res == -ENODATA || res == -ETIMEDOUT))
		; /* each page is read again on its own (read_batch_done()) and counted then */
	else if (res == -ENODATA)
		atomic_fetch_add(&rs->lost, 1);
	else if (res == -ETIMEDOUT)
		atomic_fetch_add(&rs->timeouts, 1);
	else if (res)
		atomic_fetch_add(&rs->errors, 1);
	if (io->sync) {
		io->sync_res = res;
		atomic_store_explicit(&io->sync_done, 1, memory_order_release);
		futex_wake(&io->sync_done, 1);
	} else {
		swapdev_complete(d, io, res);
	}
}

static void *slot_buf(const struct swap_io *io, unsigned int k)
{
	return io->nr > 1 ? io->iov[k].iov_base : io->buf;
}

/* The commands of one round and what they belong to: page k of io. */
struct round {
	unsigned int n;
	struct rcl_cmd cmd[RS_ROUND_CMDS];
	char key[RS_ROUND_CMDS][64];
	struct swap_io *io[RS_ROUND_CMDS];
	uint8_t k[RS_ROUND_CMDS];
};

/* io's pages not answered yet. */
static uint64_t io_left(const struct swap_io *io)
{
	unsigned int n = io->nr > 1 ? io->nr : 1;

	return (n == 64 ? ~0ULL : (1ULL << n) - 1) & ~io->be_done;
}

/*
 * What command cmd (page k of io) answered: the page marked answered (a
 * read's copied), or nothing yet.  Return: 0, or a negative errno that
 * ends io: -ENODATA (a GET found no key), -EIO (a write refused, a reply
 * of the wrong kind).
 */
static int judge(struct swap_io *io, unsigned int k, const struct rcl_cmd *cmd)
{
	redisReply *r = cmd->reply;

	if (cmd->err || !r)
		return 0; /* no answer in this round */
	if (io->write) {
		if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK"))
			return -EIO;
	} else if (r->type == REDIS_REPLY_ERROR) {
		/* -BUSY, -ERR max number of clients (a connection's first
		 * reply), ...: the GET did not run; again, until the deadline.
		 * (A write's error leaves its page in memory, so it is final
		 * at once.) */
		return 0;
	} else if (r->type == REDIS_REPLY_NIL) {
		return -ENODATA;
	} else if (r->type != REDIS_REPLY_STRING || r->len != SWAP_SLOT_SIZE) {
		return -EIO;
	} else {
		memcpy(slot_buf(io, k), r->str, SWAP_SLOT_SIZE);
	}
	io->be_done |= 1ULL << k;
	return 0;
}

/*
 * One round: pending I/Os' unanswered pages, pipelined, for RS_ROUND_MS
 * (a node that stays silent holds up only its own commands: rcluster.c).
 * I/Os tried before take at most half of a round's commands while new ones
 * wait, so that those stuck on a silent node do not keep the others out;
 * each sends only the pages not answered yet.  What is all answered is
 * finished; what is not stays pending, unless its deadline has passed.
 * Context: the I/O thread.  Return: I/Os finished.
 */
static unsigned int run_round(struct swap_dev *d, struct rstore *rs, struct swap_io **pending,
			      struct round *r)
{
	struct swap_io *io, **pp, *batch[RS_ROUND_CMDS];
	struct rcl_stats before = rs->cl.st;
	unsigned int nios = 0, finished = 0;
	int res[RS_ROUND_CMDS];

	r->n = 0;
	for (pp = pending; (io = *pp);) {
		uint64_t left = io_left(io);
		unsigned int n = (unsigned int)__builtin_popcountll(left);

		if (r->n + n > (io->be_again ? RS_ROUND_CMDS / 2 : RS_ROUND_CMDS)) {
			pp = &io->be_next; /* next round */
			continue;
		}
		*pp = io->be_next;
		res[nios] = 0;
		batch[nios++] = io;
		for (; left; left &= left - 1) {
			unsigned int k = (unsigned int)__builtin_ctzll(left);
			struct rcl_cmd *c = &r->cmd[r->n];
			char *key = r->key[r->n];

			key_of(d, io->slot + k, key, sizeof(r->key[0]));
			if (io->write)
				*c = (struct rcl_cmd){
					.argc = 3,
					.argv = {"SET", key, slot_buf(io, k)},
					.argvlen = {3, strlen(key), SWAP_SLOT_SIZE},
					.write = true,
				};
			else
				*c = (struct rcl_cmd){.argc = 2,
						      .argv = {"GET", key},
						      .argvlen = {3, strlen(key)}};
			r->io[r->n] = io;
			r->k[r->n] = (uint8_t)k;
			r->n++;
		}
	}
	uint64_t deadline = fl_now_ns() + RS_ROUND_MS * 1000000ULL;
	rcl_exec(&rs->cl, r->cmd, r->n, deadline);
	/* Every page read must exist: a GET that finds no key may have asked a
	 * master restarted empty that still claims the slot; the map read
	 * again may name the master that has it.  One map a round, not one a
	 * page; a page is lost only if it is still not found then. */
	rcl_retry_nil(&rs->cl, r->cmd, r->n, deadline);
	atomic_fetch_add(&rs->failovers, rs->cl.st.failovers - before.failovers);
	atomic_fetch_add(&rs->redirects,
			 rs->cl.st.moved - before.moved + rs->cl.st.ask - before.ask);
	atomic_fetch_add(&rs->retries, rs->cl.st.retries - before.retries);
	for (unsigned int c = 0, i = 0; c < r->n; c++) {
		while (batch[i] != r->io[c])
			i++; /* an I/O's commands are consecutive, in batch order */
		int e = judge(r->io[c], r->k[c], &r->cmd[c]);
		if (e && !res[i])
			res[i] = e;
		if (r->cmd[c].reply)
			freeReplyObject(r->cmd[c].reply);
	}
	uint64_t now = fl_now_ns();
	struct swap_io *again = NULL, **tail = &again;
	for (unsigned int i = 0; i < nios; i++) {
		io = batch[i];
		if (!res[i] && io_left(io)) {
			if (now < io->be_deadline) {
				io->be_again = true;
				*tail = io;
				tail = &io->be_next;
				continue;
			}
			res[i] = -ETIMEDOUT;
		}
		finish(d, rs, io, res[i]);
		finished++;
	}
	/* Unanswered ones first next round: they are the oldest. */
	*tail = *pending;
	*pending = again;
	return finished;
}

static void *io_main(void *arg)
{
	struct swap_dev *d = arg;
	struct rstore *rs = rs_of(d);
	struct round *r = malloc(sizeof(*r));
	struct swap_io *pending = NULL, **ptail;

	FL_BUG_ON(!r);
	for (;;) {
		struct pollfd pfd = {.fd = rs->efd, .events = POLLIN};
		uint64_t v;

		if (!pending) {
			if (atomic_load(&rs->stop))
				break;
			poll(&pfd, 1, 100);
		}
		if (read(rs->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			FL_BUG_ON(1);
		pthread_mutex_lock(&rs->lock);
		for (ptail = &pending; *ptail; ptail = &(*ptail)->be_next)
			;
		*ptail = rs->q_head;
		rs->q_head = rs->q_tail = NULL;
		pthread_mutex_unlock(&rs->lock);
		/* A round that finished nothing (a node silent, no new I/O):
		 * wait a moment for new I/O before the next. */
		if (pending && !run_round(d, rs, &pending, r))
			poll(&pfd, 1, 20);
	}
	free(r);
	return NULL;
}

/* The discard worker's client, connected on first use. */
static struct rcl *dcl_get(struct rstore *rs)
{
	if (!rs->dcl_open) {
		if (rcl_open(&rs->dcl, rs->seeds, RS_NODE_TIMEOUT_MS))
			return NULL;
		rs->dcl_open = true;
	}
	return &rs->dcl;
}

/*
 * DEL the keys of n slots from slot, pipelined, within deadline_ns.
 * Return: 0, or -ETIMEDOUT if some were not deleted.
 */
static int del_slots(struct swap_dev *d, struct rcl *c, unsigned long slot, unsigned long n,
		     uint64_t deadline_ns)
{
	struct rcl_cmd *cmd = calloc(MIN(n, (unsigned long)RS_ROUND_CMDS), sizeof(*cmd));
	char(*key)[64] = calloc(MIN(n, (unsigned long)RS_ROUND_CMDS), sizeof(*key));
	int ret = 0;

	if (!cmd || !key) {
		free(cmd);
		free(key);
		return -ENOMEM;
	}
	while (n) {
		unsigned int k = (unsigned int)MIN(n, (unsigned long)RS_ROUND_CMDS);
		for (unsigned int i = 0; i < k; i++) {
			key_of(d, (uint32_t)(slot + i), key[i], sizeof(key[i]));
			cmd[i] = (struct rcl_cmd){.argc = 2,
						  .argv = {"DEL", key[i]},
						  .argvlen = {3, strlen(key[i])},
						  .write = true};
		}
		if (rcl_exec(c, cmd, k, deadline_ns))
			ret = -ETIMEDOUT;
		for (unsigned int i = 0; i < k; i++)
			if (cmd[i].reply)
				freeReplyObject(cmd[i].reply);
		slot += k;
		n -= k;
	}
	free(cmd);
	free(key);
	return ret;
}

/*
 * The discard worker's: DEL the keys of freed slots.  A node that does not
 * answer (dead with no replica, or stopped) makes the discards fail fast
 * for RS_DISCARD_BACKOFF_NS, so that the worker, and the destroy that
 * stops it, never wait out a deadline per run; what is not deleted stays
 * until the slot is written again, or the space ends.
 */
#define RS_DISCARD_BACKOFF_NS (1000 * 1000000ULL)
#define RS_DISCARD_DEADLINE_NS (500 * 1000000ULL)

static int rs_discard(struct swap_dev *d, unsigned long slot, unsigned long n)
{
	struct rstore *rs = rs_of(d);
	struct rcl *c;
	int ret;

	if (fl_now_ns() < rs->discard_backoff)
		return -EHOSTDOWN;
	c = dcl_get(rs);
	if (!c)
		return -ECONNREFUSED;
	ret = del_slots(d, c, slot, n, fl_now_ns() + RS_DISCARD_DEADLINE_NS);
	if (ret)
		rs->discard_backoff = fl_now_ns() + RS_DISCARD_BACKOFF_NS;
	return ret;
}

/*
 * Stop the I/O thread (nothing is in flight: swapdev_close() waited) and,
 * when the space ends, delete every key it still has: the slots in use or
 * waiting for their discard, then any other key of its prefix (a sweep of
 * every master).  Context: the device's threads stopped.
 */
static void rs_close(struct swap_dev *d, bool clear)
{
	struct rstore *rs = rs_of(d);
	uint64_t one = 1;

	if (!rs)
		return;
	if (rs->started) {
		atomic_store(&rs->stop, true);
		if (write(rs->efd, &one, sizeof(one)) < 0)
			FL_BUG_ON(errno != EAGAIN);
		pthread_join(rs->thread, NULL);
		rs->started = false;
	}
	if (clear && d->map && (rs->dcl_open || dcl_get(rs))) {
		/* One deadline for all: a node that does not answer costs it
		 * once, not once per run. */
		uint64_t deadline = fl_now_ns() + MIN(rs->timeout_ns, 5000 * 1000000ULL);
		int failed = 0;

		for (unsigned long w = 0; w * 64 < d->nr_slots; w++) {
			uint64_t bits = d->map[w];
			unsigned int s, n;

			for_each_bit_run(bits, s, n)
			{
				if (del_slots(d, &rs->dcl, w * 64 + s, n, deadline))
					failed++;
			}
		}
		/* Then whatever else has the space's prefix: a version whose
		 * DEL failed, or that a late SET wrote again (key_of()). */
		char pattern[sizeof(rs->prefix) + 1];
		snprintf(pattern, sizeof(pattern), "%s*", rs->prefix);
		if (rcl_scan_del(&rs->dcl, pattern, deadline) < 0)
			failed++;
		if (failed)
			fl_log("warning: some keys of %s* were not deleted from the Redis Cluster "
			       "(a node did not answer): they stay there",
			       rs->prefix);
	}
	rcl_close(&rs->cl);
	if (rs->dcl_open)
		rcl_close(&rs->dcl);
	if (rs->efd >= 0)
		close(rs->efd);
	pthread_mutex_destroy(&rs->lock);
	free(rs);
	d->be_priv = NULL;
}

static const struct swap_backend redis_backend;

struct rstore *rstore_of(struct swap_dev *d)
{
	return d->be == &redis_backend ? d->be_priv : NULL;
}

static const struct swap_backend redis_backend = {
	.name = "redis-cluster",
	.submit = rs_submit,
	.read_sync = rs_read_sync,
	.discard = rs_discard,
	.close = rs_close,
	.discard_frees = true,
};

/*
 * Open the cluster named by url (RSTORE_SCHEME and its seed list) as d's
 * backend: connect, read the slot map, draw the space's id, start the I/O
 * thread.  Context: swapdev_open_flags().  Return: 0 or a negative errno
 * (logged, with the reason).
 */
int rstore_open(struct swap_dev *d, const char *url, int replicas, uint64_t timeout_ns)
{
	const char *seeds = url + strlen(RSTORE_SCHEME);
	unsigned char id[16];
	struct rstore *rs;
	int ret;

	if (sodium_init() < 0)
		return -EIO;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	rs->efd = -1;
	pthread_mutex_init(&rs->lock, NULL);
	d->be = &redis_backend;
	d->be_priv = rs;
	rs->timeout_ns = timeout_ns;
	if (strlen(seeds) >= sizeof(rs->seeds)) {
		fl_log("the Redis Cluster seed list is too long (%zu bytes)", strlen(seeds));
		return -EINVAL;
	}
	snprintf(rs->seeds, sizeof(rs->seeds), "%s", seeds);
	randombytes_buf(id, sizeof(id));
	snprintf(rs->prefix, sizeof(rs->prefix), "fl:");
	for (unsigned int i = 0; i < sizeof(id); i++)
		snprintf(rs->prefix + 3 + 2 * i, 3, "%02x", id[i]);
	strcat(rs->prefix, ":");
	ret = rcl_open(&rs->cl, seeds, RS_NODE_TIMEOUT_MS);
	if (ret) {
		fl_log("cannot use the Redis Cluster at %s: %s", seeds,
		       ret == -EINVAL	? "a seed is not HOST:PORT"
		       : ret == -EPROTO ? "no seed answers with a whole slot map"
					: strerror(-ret));
		return ret;
	}
	rs->cl.wait_replicas = replicas;
	rs->cl.wait_timeout_ms = RS_WAIT_TIMEOUT_MS;
	rs->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rs->efd < 0)
		return -errno;
	ret = -pthread_create(&rs->thread, NULL, io_main, d);
	if (ret)
		return ret;
	pthread_setname_np(rs->thread, "fl-redis");
	rs->started = true;
	return 0;
}
