/* SPDX-License-Identifier: MIT */
/*
 * A real Redis Cluster on local ports for a test (scripts/redis-cluster.sh):
 * started by the test, stopped and removed at its exit, also on a failed
 * CHECK, SIGINT and SIGTERM.  One cluster at a time.  Include after
 * util.h.
 */
#ifndef FL_TEST_CLUSTER_H
#define FL_TEST_CLUSTER_H

#include <signal.h>
#include <sys/wait.h>

static char cluster_dir[64];
static char cluster_script[512];

static inline void cluster_stop(void)
{
	char cmd[700];

	if (!cluster_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "%s stop %s", cluster_script, cluster_dir);
	if (system(cmd))
		fprintf(stderr, "stopping the cluster in %s failed\n", cluster_dir);
	cluster_dir[0] = 0;
}

static inline void cluster_on_signal(int sig)
{
	cluster_stop();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Find the script beside the test's build directory, stop the cluster at
 * exit; skip, naming why, without redis-server and redis-cli.
 */
static inline void cluster_setup(void)
{
	char exe[512];
	ssize_t n;

	if (system("command -v redis-server >/dev/null && command -v redis-cli >/dev/null"))
		t_skip("redis-server and redis-cli are not installed (Debian: redis-server "
		       "redis-tools)");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(n > 0, "readlink");
	exe[n] = 0;
	/* build.../tests/NAME -> scripts/redis-cluster.sh */
	snprintf(cluster_script, sizeof(cluster_script), "%.*s/../../scripts/redis-cluster.sh",
		 (int)(strrchr(exe, '/') - exe), exe);
	atexit(cluster_stop);
	signal(SIGTERM, cluster_on_signal);
	signal(SIGINT, cluster_on_signal);
}

/* Start a cluster (its node timeout 1000 ms); return its seed list (static).
 * Choose base so that base + 10000 (the cluster bus ports) and up stay below
 * the ephemeral ports (32768): a connection's local port may take a bus
 * port there, and the node then fails to start. */
static inline const char *cluster_start(int base, int masters, int replicas)
{
	static char seeds[512];
	char cmd[700];
	FILE *p;

	snprintf(cluster_dir, sizeof(cluster_dir), "/tmp/fl-rcluster-%d-%d", (int)getpid(), base);
	snprintf(cmd, sizeof(cmd), "%s start %s %d %d %d 1000", cluster_script, cluster_dir, base,
		 masters, replicas);
	p = popen(cmd, "r");
	CHECK(p, "popen: %s", strerror(errno));
	if (!fgets(seeds, sizeof(seeds), p))
		seeds[0] = 0;
	int st = pclose(p);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && seeds[0], "starting the cluster: status %#x",
	      st);
	seeds[strcspn(seeds, "\n")] = 0;
	printf("cluster: %d masters, %d replicas each: %s\n", masters, replicas, seeds);
	return seeds;
}

/* Start the node of port again (it rejoins, as a replica if it lost its slots). */
static inline void cluster_restart(int port)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "%s restart %s %d", cluster_script, cluster_dir, port);
	CHECK(system(cmd) == 0, "%s", cmd);
}

static inline pid_t node_pid(int port)
{
	char path[128];
	FILE *f;
	int pid = -1;

	snprintf(path, sizeof(path), "%s/%d.pid", cluster_dir, port);
	f = fopen(path, "r");
	CHECK(f, "%s", path);
	CHECK(fscanf(f, "%d", &pid) == 1, "pid of %d", port);
	fclose(f);
	return (pid_t)pid;
}

/* The first line redis-cli prints for args on the node of port, as a number
 * (-1 if none). */
static inline long node_query(int port, const char *args)
{
	char cmd[256], line[128];
	long v = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "redis-cli -p %d %s 2>/dev/null", port, args);
	p = popen(cmd, "r");
	CHECK(p, "popen: %s", strerror(errno));
	if (fgets(line, sizeof(line), p))
		v = strtol(line, NULL, 10);
	pclose(p);
	return v;
}

/* Whether the node of port is a master now. */
static inline bool node_is_master(int port)
{
	char cmd[256], line[128] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "redis-cli -p %d role 2>/dev/null", port);
	p = popen(cmd, "r");
	CHECK(p, "popen: %s", strerror(errno));
	if (!fgets(line, sizeof(line), p))
		line[0] = 0;
	pclose(p);
	return !strncmp(line, "master", 6);
}

/*
 * Wait (up to 30 s) until the cluster, as node other sees it, has failed
 * over the killed node of port: it is marked failed and owns no slots.
 * Restarting it sooner loses its slots' data (no persistence: it would
 * come back an empty master).
 */
static inline void cluster_wait_failover(int port, int other)
{
	char cmd[256], line[1024];
	bool over = false;

	snprintf(cmd, sizeof(cmd), "redis-cli -p %d cluster nodes 2>/dev/null", other);
	for (int t = 0; t < 600 && !over; t++) {
		FILE *p = popen(cmd, "r");
		char addr[32];

		CHECK(p, "popen: %s", strerror(errno));
		snprintf(addr, sizeof(addr), ":%d@", port);
		while (fgets(line, sizeof(line), p)) {
			char flags[128];
			int fields = 0;
			if (!strstr(line, addr))
				continue;
			for (char *q = strtok(line, " \n"); q; q = strtok(NULL, " \n"))
				if (++fields == 3)
					snprintf(flags, sizeof(flags), "%s", q);
			over = fields == 8 && strstr(flags, "fail") && !strstr(flags, "fail?");
		}
		pclose(p);
		if (!over)
			usleep(50000);
	}
	CHECK(over, "node %d was not failed over in 30 s (as node %d sees it)", port, other);
}

#endif /* FL_TEST_CLUSTER_H */
