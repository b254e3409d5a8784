#!/usr/bin/env bash
# Run every test program of one or more build directories, each with a
# timeout, and print a summary: "N passed, N failed, N skipped".
# Exit codes of a test: 0 pass, 77 skip, anything else (or a timeout) fail.
#
# A skip fails the run too, unless FL_ALLOW_SKIP=1: a test skips only when
# this machine lacks what it needs (it says what on its last line), and CI,
# which has everything, must not pass while a test did not run.  A developer
# on a machine without (say) userfaultfd for their user sets FL_ALLOW_SKIP=1.
#
#   tests/run.sh [--timeout SECONDS] BUILD_DIR...
set -u
timeout_s=${FL_TEST_TIMEOUT:-300}
if [ "${1:-}" = "--timeout" ]; then
	timeout_s=$2
	shift 2
fi
[ $# -gt 0 ] || set -- build
here=$(cd "$(dirname "$0")" && pwd)
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tsan.supp ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
pass=0 fail=0 skip=0 failed=() skipped=()

# Run test $1 with its output in $2 and a timeout.  A test that hangs is
# worth its stacks: before it is killed, every thread of it (and of its
# children) is shown by gdb, so that a hang on a machine one cannot log in
# to (CI) says where it waits.  Return: the test's exit status, 124 for a
# timeout.
run_one() {
	local t=$1 log=$2 pid waited=0 p
	# Its own process group (setsid execs it: the shell's child is no group
	# leader), so that a timeout reaches whatever it started.
	setsid "$t" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$waited" -ge "$((timeout_s * 10))" ]; then
			echo "=== timeout after ${timeout_s}s: the threads of $t ===" >>"$log"
			for p in $(pgrep -g "$pid"); do
				if command -v gdb >/dev/null; then
					timeout 60 gdb -p "$p" -batch -nx -ex "set pagination off" \
						-ex "thread apply all bt" </dev/null 2>&1 |
						grep -E '^(Thread|#)' >>"$log"
				else
					echo "(no gdb: no stacks)" >>"$log"
				fi
			done
			kill -KILL -- "-$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	wait "$pid"
}
for dir in "$@"; do
	for t in "$dir"/tests/*; do
		[ -x "$t" ] || continue
		name="$dir/$(basename "$t")"
		log=$(mktemp)
		start=$(date +%s%N)
		run_one "$t" "$log"
		rc=$?
		ms=$((($(date +%s%N) - start) / 1000000))
		secs="$((ms / 1000)).$((ms % 1000 / 100))"
		case $rc in
		0) pass=$((pass + 1)); printf 'PASS  %-40s %6ss\n' "$name" "$secs" ;;
		77) skip=$((skip + 1)); why=$(tail -n1 "$log"); skipped+=("$name: ${why#SKIP: }")
			printf 'SKIP  %-40s %6ss  %s\n' "$name" "$secs" "$(tail -n1 "$log")" ;;
		124|137) fail=$((fail + 1)); failed+=("$name (timeout)")
			printf 'TIME  %-40s %6ss\n' "$name" "$secs"; tail -n 400 "$log" | sed 's/^/      /' ;;
		*) fail=$((fail + 1)); failed+=("$name (exit $rc)")
			printf 'FAIL  %-40s %6ss  exit %d\n' "$name" "$secs" "$rc"; tail -n 40 "$log" | sed 's/^/      /' ;;
		esac
		rm -f "$log"
	done
done
echo
for f in "${failed[@]+"${failed[@]}"}"; do echo "failed: $f"; done
for s in "${skipped[@]+"${skipped[@]}"}"; do echo "skipped: $s"; done
echo "$pass passed, $fail failed, $skip skipped"
if [ "$skip" -gt 0 ] && [ "${FL_ALLOW_SKIP:-0}" != 1 ]; then
	echo "FAIL: $skip test(s) skipped (above, with why): every test must run here;" \
		"FL_ALLOW_SKIP=1 allows skips on a machine that lacks what they need"
	exit 1
fi
[ "$fail" -eq 0 ] && [ $((pass + fail)) -gt 0 ]
