#!/usr/bin/env bash
# A real Redis Cluster on 127.0.0.1, for the tests and the benchmarks of the
# Redis Cluster tier: N masters with R replicas each, persistence off,
# maxmemory-policy noeviction (a page written is never dropped by the
# server), replicas synced at once (no diskless-sync delay: by default a
# master waits 5 s for more replicas before it sends one a copy, at start
# and when a killed node rejoins), a short node timeout so that a failover
# takes seconds, and the slots of live masters served while another master
# is down.
#
#   scripts/redis-cluster.sh start DIR BASEPORT [MASTERS [REPLICAS [NODE_TIMEOUT_MS]]]
#       prints the seed list "127.0.0.1:P1,127.0.0.1:P2,..." when the
#       cluster is ready (every node sees cluster_state:ok)
#   scripts/redis-cluster.sh restart DIR PORT
#       starts the node of PORT again (after a test killed it): with its
#       nodes file it rejoins the cluster, as a replica if it lost its slots
#   scripts/redis-cluster.sh stop DIR
#       kills every node started in DIR and removes DIR
#
# Needs redis-server and redis-cli (Debian: redis-server, redis-tools).
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR ..." >&2; exit 2; }

stop() {
	[ -d "$dir" ] || return 0
	for pf in "$dir"/*.pid; do
		[ -f "$pf" ] || continue
		pid=$(cat "$pf" 2>/dev/null || true)
		# A node stopped with SIGSTOP by a test must be continued to die.
		[ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$dir"
}

# Start the node of port $1 in $dir, node timeout $2 (ms).
node_start() {
	redis-server --port "$1" --bind 127.0.0.1 --protected-mode no \
		--cluster-enabled yes --cluster-config-file "$dir/nodes-$1.conf" \
		--cluster-node-timeout "$2" --cluster-replica-validity-factor 0 \
		--cluster-require-full-coverage no \
		--dir "$dir" --save "" --appendonly no \
		--maxmemory-policy noeviction --repl-diskless-sync-delay 0 \
		--daemonize yes --pidfile "$dir/$1.pid" --logfile "$dir/$1.log" >/dev/null
	echo "$2" >"$dir/$1.timeout"
}

case $cmd in
restart)
	port=${3:?PORT}
	node_start "$port" "$(cat "$dir/$port.timeout")"
	for ((t = 0; t < 100; t++)); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && break
		sleep 0.05
	done
	;;
stop)
	stop
	;;
start)
	base=${3:?BASEPORT}
	masters=${4:-3}
	replicas=${5:-1}
	timeout=${6:-2000}
	n=$((masters * (replicas + 1)))
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
		echo "redis-cluster: redis-server and redis-cli are needed (Debian: redis-server redis-tools)" >&2
		exit 3
	}
	stop
	mkdir -p "$dir"
	addrs=()
	for ((i = 0; i < n; i++)); do
		p=$((base + i))
		node_start "$p" "$timeout"
		addrs+=("127.0.0.1:$p")
	done
	for ((i = 0; i < n; i++)); do
		p=$((base + i))
		for ((t = 0; t < 100; t++)); do
			redis-cli -p "$p" ping >/dev/null 2>&1 && break
			sleep 0.05
		done
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" \
		--cluster-yes >"$dir/create.log" 2>&1 || {
		cat "$dir/create.log" >&2
		stop
		exit 1
	}
	for ((t = 0; t < 200; t++)); do
		ok=0
		for ((i = 0; i < n; i++)); do
			redis-cli -p $((base + i)) cluster info 2>/dev/null | grep -q 'cluster_state:ok' &&
				ok=$((ok + 1))
		done
		[ "$ok" -eq "$n" ] && break
		sleep 0.1
	done
	[ "$ok" -eq "$n" ] || { echo "redis-cluster: not every node reached cluster_state:ok" >&2; stop; exit 1; }
	# Replicas attached: wait until each master reports its replicas online.
	if [ "$replicas" -gt 0 ]; then
		for ((t = 0; t < 200; t++)); do
			online=$(for ((i = 0; i < n; i++)); do
				redis-cli -p $((base + i)) info replication 2>/dev/null |
					grep -c 'state=online' || true
			done | awk '{s += $1} END {print s + 0}')
			[ "$online" -ge $((masters * replicas)) ] && break
			sleep 0.1
		done
	fi
	(IFS=,; echo "${addrs[*]}")
	;;
*)
	echo "usage: $0 start|restart|stop DIR ..." >&2
	exit 2
	;;
esac
