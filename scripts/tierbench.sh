#!/usr/bin/env bash
# The Redis Cluster store against the local disk store (not a test): the
# swap benchmark's faultline rows (the fill, random reads at 1 and 4 threads,
# the sequential pass with readahead) once with the default store (a
# temporary file, O_DIRECT, io_uring) and once with a Redis Cluster of three
# masters and three replicas on local ports, in alternating rounds (disk
# first in odd rounds, Redis first in even ones).  Prints, for each figure,
# the median of each store and the median of the per-round ratios
# redis/disk, with their range.  Run it under the benchmark lock:
#
#   flock /tmp/faultline-bench.lock scripts/tierbench.sh [ROUNDS] [SWAPBENCH ARGS...]
#
# Needs build-bench/swapbench (make B=build-bench DEBUG=0 build-bench/swapbench),
# redis-server and redis-cli.  The cluster is removed at the end, also on an
# error or Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
bin=build-bench/swapbench
args=(--region 256M --budget 64M --seconds 3 --warmup 1 --threads 1,4 --delivery thread,sigbus
	--no-kernel --no-device --no-bare "$@")
[ -x "$bin" ] || { echo "tierbench: $bin is not built (make B=build-bench DEBUG=0 $bin)" >&2; exit 2; }
dir=$(mktemp -d /tmp/fl-tierbench.XXXXXX)
trap 'scripts/redis-cluster.sh stop "$dir/cluster" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
# Ports (and bus ports, +10000) below the ephemeral range.
seeds=$(scripts/redis-cluster.sh start "$dir/cluster" 15000 3 1 2000)
echo "tierbench: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?), $rounds rounds"
echo "swapbench ${args[*]}"
echo "cluster: $seeds (3 masters, 3 replicas, local; FAULTLINE_REMOTE_REPLICAS=${FAULTLINE_REMOTE_REPLICAS:-0})"
for r in $(seq 1 "$rounds"); do
	order="disk redis"
	[ $((r % 2)) = 0 ] && order="redis disk"
	for s in $order; do
		extra=()
		[ "$s" = redis ] && extra=(--store "redis-cluster://$seeds")
		"$bin" "${args[@]}" "${extra[@]}" >"$dir/$s-$r.txt" 2>&1 || {
			tail -20 "$dir/$s-$r.txt" >&2
			echo "tierbench: swapbench failed ($s, round $r)" >&2
			exit 1
		}
		# name value p99: the fill, each read window's reads, the sequential pass.
		grep '^BENCH name=fl-' "$dir/$s-$r.txt" | grep -v '\.misses ' |
			sed -E 's/^BENCH name=([^ ]+) value=([^ ]+) unit=([^ ]+).*/\1 \2 \3/' |
			while read -r name value unit; do
				p99=$(grep "^BENCH name=$name " "$dir/$s-$r.txt" |
					sed -nE 's/.* p99_us=([^ ]+).*/\1/p')
				echo "$s $r $name $value $unit ${p99:--}"
			done >>"$dir/all"
	done
done
# The table: per figure, median disk, median redis, median ratio [min..max].
awk '
function median(a, n,   i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ v[$1, $2, $3] = $4; p[$1, $2, $3] = $6; unit[$3] = $5; if (!($3 in seen)) { seen[$3] = 1; order[++nf] = $3 } if ($2 > nr) nr = $2 }
END {
	printf "%-28s %-10s %12s %12s %9s %-13s %10s %10s\n", "figure", "unit", "disk", "redis", "x disk", "range", "p99 disk", "p99 redis"
	for (k = 1; k <= nf; k++) {
		f = order[k]; nd = nrd = nx = npd = npr = 0
		for (r = 1; r <= nr; r++) {
			if ((("disk", r, f) in v) && (("redis", r, f) in v)) {
				d[++nd] = v["disk", r, f]; e[++nrd] = v["redis", r, f]
				x[++nx] = v["redis", r, f] / v["disk", r, f]
				if (p["disk", r, f] != "-") { pd[++npd] = p["disk", r, f]; pr[++npr] = p["redis", r, f] }
			}
		}
		if (!nx) continue
		lo = hi = x[1]; for (i = 2; i <= nx; i++) { if (x[i] < lo) lo = x[i]; if (x[i] > hi) hi = x[i] }
		printf "%-28s %-10s %12.0f %12.0f %9.3f %5.3f..%-6.3f %10s %10s\n", f, unit[f], median(d, nd), median(e, nrd), median(x, nx), lo, hi,
			npd ? sprintf("%.0f us", median(pd, npd)) : "-", npr ? sprintf("%.0f us", median(pr, npr)) : "-"
	}
}' "$dir/all"
