#!/usr/bin/env bash
# The file benchmark (BENCHMARKS.md, "Files") with the disk's readahead set
# for the run: the kernel's mmap reads read_ahead_kb around a miss (and
# ahead of a sequential reader), faultline a fixed 128 KiB, so the kernel's
# side depends on it.  As root, under the benchmark lock:
#
#   flock /tmp/faultline-bench.lock scripts/filebench.sh --ra-kb 128 [filebench options]
#
# read_ahead_kb of the disk that holds --dir (default $TMPDIR or /tmp) is
# set to N for the run and put back afterwards, also on Ctrl-C and on
# failure.  Without --ra-kb this only runs build-bench/filebench (make
# filebench builds it; FB= names another binary).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
FB=${FB:-$here/build-bench/filebench}
ra=
if [ "${1:-}" = "--ra-kb" ]; then
	ra=$2
	shift 2
fi
dir=${TMPDIR:-/tmp}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	[ "${args[i]}" = "--dir" ] && dir=${args[i + 1]}
done
if [ -n "$ra" ]; then
	knob=/sys/dev/block/$(stat -c '%Hd:%Ld' "$dir")/queue/read_ahead_kb
	[ -w "$knob" ] || { echo "filebench.sh: cannot set $knob (root? a partition?)" >&2; exit 2; }
	old=$(cat "$knob")
	trap 'echo "$old" > "$knob"' EXIT
	trap 'exit 130' INT TERM HUP
	echo "$ra" > "$knob"
	echo "filebench.sh: $knob $old -> $ra for the run" >&2
fi
"$FB" "${args[@]}"
