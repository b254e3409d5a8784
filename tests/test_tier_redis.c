// SPDX-License-Identifier: MIT
/*
 * Far memory on a Redis Cluster (FAULTLINE_SWAP=redis-cluster://...), with
 * the compressed tier in front, on a real cluster of three masters and
 * three replicas that the test starts on local ports and removes (not a
 * benchmark):
 *
 *   - integrity torture (tests/torture.h), eight times the budget, under
 *     every policy, the deliveries in turn, writes waited for on a replica
 *     (FAULTLINE_REMOTE_REPLICAS=1): every byte comes back, no page fails
 *     its check or is poisoned, and every key of a space is deleted when
 *     the space ends;
 *   - a master killed mid-run: its replica takes over, zero mismatches,
 *     zero poisoned pages, and the statistics show the failover;
 *   - a master stopped (SIGSTOP) mid-run for less than the cluster's node
 *     timeout: faults on its keys wait, none is wrong, and all goes on
 *     once it is continued;
 *   - without replicas, a master killed: exactly the pages it held are
 *     poisoned (SIGBUS on access, counted), every other page reads back,
 *     and those read ahead fail after one timeout, not two.
 *
 * FL_SOAK=1: longer torture runs, each policy in both deliveries.
 */
#define _GNU_SOURCE
#include <setjmp.h>

#include "util.h"

#include "cluster.h"
#include "torture.h"

#define BUDGET (2UL << 20)
#define NPAGES (8 * BUDGET / PG)

static uint64_t seed;
static char url[600];
static int base;

static struct fl_space *space(int delivery, int policy, int zswap, unsigned int replicas,
			      unsigned int timeout_ms, size_t budget)
{
	struct fl_config cfg;

	CHECK(fl_config_init(&cfg) == 0, "fl_config_init");
	cfg.delivery = delivery;
	cfg.policy = policy;
	cfg.mem_limit = budget;
	cfg.zswap = zswap;
	cfg.zswap_max = budget / 4;
	cfg.swap_path = url;
	cfg.remote_replicas = replicas;
	cfg.remote_timeout_us = timeout_ms * 1000;
	return t_space_create_cfg(&cfg);
}

static void print_stats(const char *what, const struct fl_stats *st)
{
	printf("%s: major %llu, zswap stores %llu hits %llu writebacks %llu; store reads %llu "
	       "writes %llu, read p50 %llu us p99 %llu us max %llu us; remote failovers %llu "
	       "redirects %llu retries %llu lost %llu timeouts %llu errors %llu; poisoned %llu "
	       "checksum errors %llu; fault max %llu us\n",
	       what, (unsigned long long)st->faults_major, (unsigned long long)st->zswap_stores,
	       (unsigned long long)st->zswap_hits, (unsigned long long)st->zswap_writebacks,
	       (unsigned long long)st->store_reads, (unsigned long long)st->store_writes,
	       (unsigned long long)st->store_read_ns_p50 / 1000,
	       (unsigned long long)st->store_read_ns_p99 / 1000,
	       (unsigned long long)st->store_read_ns_max / 1000,
	       (unsigned long long)st->remote_failovers, (unsigned long long)st->remote_redirects,
	       (unsigned long long)st->remote_retries, (unsigned long long)st->remote_lost,
	       (unsigned long long)st->remote_timeouts, (unsigned long long)st->remote_errors,
	       (unsigned long long)st->pages_poisoned, (unsigned long long)st->checksum_errors,
	       (unsigned long long)st->fault_ns_max / 1000);
}

/* Keys in the whole cluster (nodes base .. base + n - 1), once replication
 * has settled: DBSIZE of the masters. */
static long cluster_keys(int n)
{
	long total = 0;

	for (int i = 0; i < n; i++)
		if (node_is_master(base + i))
			total += node_query(base + i, "dbsize");
	return total;
}

static void no_errors(const struct fl_stats *st)
{
	CHECK(st->pages_poisoned == 0 && st->checksum_errors == 0 && st->read_errors == 0 &&
		      st->remote_lost == 0 && st->remote_timeouts == 0 && st->remote_errors == 0,
	      "poisoned %llu checksum %llu read errors %llu lost %llu timeouts %llu errors %llu",
	      (unsigned long long)st->pages_poisoned, (unsigned long long)st->checksum_errors,
	      (unsigned long long)st->read_errors, (unsigned long long)st->remote_lost,
	      (unsigned long long)st->remote_timeouts, (unsigned long long)st->remote_errors);
}

/* The space's keys are gone with it: also those of versions written again
 * after a node failed, or whose deletion failed while it was down. */
static void keys_gone(const char *name)
{
	long keys = -1;

	for (int i = 0; i < 50 && keys; i++) {
		keys = cluster_keys(6);
		if (keys)
			usleep(100000);
	}
	CHECK(keys == 0, "%s: %ld keys left in the cluster after the space ended", name, keys);
}

static void torture(int delivery, int policy, void (*mid)(void *), void *arg, const char *what)
{
	struct fl_space *sp = space(delivery, policy, FL_ZSWAP_LZ4, 1, 30000, BUDGET);
	struct torture t = {0};
	struct fl_stats st;
	char name[128];

	tt_run(&t, sp, NPAGES, seed,
	       mid	  ? 4000000
	       : t_soak() ? 10000000
			  : 400000,
	       mid, arg, 300000);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	snprintf(name, sizeof(name), "%s %s%s%s", t_delivery_name(delivery),
		 tt_policy_names[policy], what ? ", " : "", what ? what : "");
	print_stats(name, &st);
	no_errors(&st);
	CHECK(st.store_writes > 0 && st.store_reads > 0, "the cluster was not used");
	CHECK(st.zswap_stores > 0 && st.zswap_hits > 0, "the compressed tier was not used");
	if (mid == NULL)
		CHECK(st.remote_failovers == 0, "a failover with no node failed");
	tt_unmap(&t);
	fl_space_destroy(sp);
	keys_gone(name);
}

/*
 * Kill a master; once its replica has taken over (writes then wait for a
 * replica the new master does not have yet), start it again: it rejoins
 * as the new master's replica.  Not before the cluster has failed it over:
 * without persistence, a master restarted sooner comes back empty, its
 * replica syncs from it, and their pages are lost (SIGBUS, rightly).
 */
static void kill_master(void *arg)
{
	int port = *(int *)arg;

	CHECK(node_is_master(port), "node %d is not a master", port);
	printf("killing the master on port %d\n", port);
	CHECK(kill(node_pid(port), SIGKILL) == 0, "kill: %s", strerror(errno));
	usleep(2500000);
	cluster_wait_failover(port, port == base ? base + 1 : base);
	cluster_restart(port);
	printf("restarted the node on port %d\n", port);
}

static void stop_master(void *arg)
{
	int port = *(int *)arg;
	pid_t pid = node_pid(port);

	CHECK(node_is_master(port), "node %d is not a master", port);
	printf("stopping the master on port %d for 0.6 s\n", port);
	CHECK(kill(pid, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
	usleep(600000);
	CHECK(kill(pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
}

/* The first node that is a master now. */
static int first_master(void)
{
	for (int i = 0; i < 6; i++)
		if (node_is_master(base + i))
			return base + i;
	CHECK(0, "no master in the cluster");
	return -1;
}

/* The torture with mid() doing something to a master after 0.3 s. */
static void failure_run(int delivery, int policy, void (*mid)(void *), unsigned long usec,
			const char *what)
{
	struct fl_space *sp = space(delivery, policy, FL_ZSWAP_LZ4, 1, 30000, BUDGET);
	struct torture t = {0};
	struct fl_stats st;
	int victim = first_master();
	char name[128];

	tt_run(&t, sp, NPAGES, seed + (uint64_t)usec, usec, mid, &victim, 300000);
	CHECK(fl_stats(sp, &st) == 0, "fl_stats");
	snprintf(name, sizeof(name), "%s %s, %s", t_delivery_name(delivery),
		 tt_policy_names[policy], what);
	print_stats(name, &st);
	no_errors(&st);
	if (mid == kill_master)
		CHECK(st.remote_failovers > 0, "no failover in the statistics");
	tt_unmap(&t);
	fl_space_destroy(sp);
	keys_gone(name);
}

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_hits;

static void on_sigbus(int sig)
{
	bus_hits++;
	siglongjmp(bus_jmp, 1);
}

/*
 * No replicas: every page is written to the cluster (MADV_PAGEOUT of the
 * whole region, the compressed tier off), one master is killed, and every
 * page is read: exactly as many fail (SIGBUS) as that master held keys.
 */
static void without_replicas(void)
{
	const size_t n = 512;
	struct fl_space *sp;
	struct fl_stats st;
	struct torture t = {.npages = n, .seed = seed};
	long held;
	int victim = base + 20;
	static volatile size_t bad, i;

	cluster_stop();
	snprintf(url, sizeof(url), "redis-cluster://%s", cluster_start(base + 20, 3, 0));
	/* A budget with frames for every page: their reads go out together. */
	sp = space(FL_DELIVERY_THREAD, FL_POLICY_DROP, FL_ZSWAP_OFF, 0, 2000, 16UL << 20);
	t.versions = calloc(n, sizeof(*t.versions));
	t.region = fl_mmap(sp, NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	CHECK(t.versions && t.region != MAP_FAILED, "fl_mmap: %s", strerror(errno));
	for (size_t k = 0; k < n; k++)
		tt_write(&t, k, 1);
	CHECK(fl_madvise(sp, t.region, n * PG, MADV_PAGEOUT) == 0, "pageout: %s", strerror(errno));
	for (int k = 0; k < 500; k++) {
		CHECK(fl_stats(sp, &st) == 0, "fl_stats");
		if (st.swap_outs + st.zero_drops >= n)
			break;
		usleep(10000);
	}
	CHECK(st.resident_pages == 0 && st.store_writes == n,
	      "resident %llu, written %llu; write errors %llu, remote errors %llu timeouts %llu "
	      "retries %llu",
	      (unsigned long long)st.resident_pages, (unsigned long long)st.store_writes,
	      (unsigned long long)st.write_errors, (unsigned long long)st.remote_errors,
	      (unsigned long long)st.remote_timeouts, (unsigned long long)st.remote_retries);
	held = node_query(victim, "dbsize");
	CHECK(held > 0 && held < (long)n, "the victim holds %ld keys", held);
	CHECK(kill(node_pid(victim), SIGKILL) == 0, "kill");
	double t0 = t_now_s();
	CHECK(fl_madvise(sp, t.region, n * PG, MADV_WILLNEED) == 0, "willneed");
	signal(SIGBUS, on_sigbus);
	for (i = 0; i < n; i++) {
		if (sigsetjmp(bus_jmp, 1)) {
			bad++;
			continue;
		}
		tt_verify(&t, i, 1, "without replicas");
	}
	signal(SIGBUS, SIG_DFL);
	double secs = t_now_s() - t0;
	/* The handler thread counts a poisoning after the install that woke
	 * the reader: the last count may come a moment after its SIGBUS. */
	for (int k = 0; k < 100; k++) {
		CHECK(fl_stats(sp, &st) == 0, "fl_stats");
		if (st.pages_poisoned >= bad)
			break;
		usleep(10000);
	}
	print_stats("no replicas, a master killed", &st);
	printf("the killed master held %ld of %zu pages: %zu poisoned (SIGBUS), %zu read back, "
	       "in %.2f s (timeout 2 s)\n",
	       held, n, bad, n - bad, secs);
	/* Each lost page counted once: a nil from a node (lost), or no node
	 * answering for it until its deadline (timeouts). */
	CHECK(bad == (size_t)held && st.pages_poisoned == (uint64_t)held &&
		      st.remote_lost + st.remote_timeouts == (uint64_t)held,
	      "%zu pages got SIGBUS, %llu poisoned, %llu lost + %llu timed out; the master held "
	      "%ld",
	      bad, (unsigned long long)st.pages_poisoned, (unsigned long long)st.remote_lost,
	      (unsigned long long)st.remote_timeouts, held);
	CHECK(st.checksum_errors == 0, "checksum errors");
	/* The lost pages were read ahead in batches that timed out after the
	 * 2-s timeout; each of their pages gets one more try, not another 2 s
	 * (which took 4.05 s here before read_batch_done() said so; 2.46 s
	 * after). */
	CHECK(secs < 3.5, "the lost pages took %.2f s to fail with a 2-s timeout", secs);
	CHECK(fl_munmap(sp, t.region, n * PG) == 0, "munmap");
	free(t.versions);
	fl_space_destroy(sp);
	cluster_stop();
}

int main(int argc, char **argv)
{
	seed = t_seed_init(argc, argv, "test_tier_redis");
	if (T_SANITIZED)
		printf("a sanitizer build: the torture under drop and hold only\n");
	cluster_setup();
	/* Ports and cluster bus ports (+10000) below the ephemeral range
	 * (32768 and up), so that no connection's local port takes one. */
	base = 11000 + (int)(seed % 200) * 40;
	snprintf(url, sizeof(url), "redis-cluster://%s", cluster_start(base, 3, 1));
	/* Each policy once, the deliveries in turn (the store's client sees
	 * the faults of both); FL_SOAK=1: each policy in both deliveries. */
	for (int pol = 0, k = 0; pol < 5; pol++) {
		if (!tt_policy_runs(pol))
			continue;
		for (int d = 0; d < 2; d++)
			if (t_soak() || d == k % 2)
				torture(d, pol, NULL, NULL, NULL);
		k++;
	}
	failure_run(FL_DELIVERY_THREAD, FL_POLICY_DROP, kill_master, 4000000, "a master killed");
	failure_run(FL_DELIVERY_SIGBUS, FL_POLICY_HOLD, stop_master, 2000000,
		    "a master stopped 0.6 s");
	without_replicas();
	return T_EXIT_PASS;
}
