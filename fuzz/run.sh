#!/usr/bin/env bash
# Run each fuzz target of build-fuzz/ for SECONDS, one after the other, from
# its checked-in seed corpus (fuzz/corpus/TARGET/), and print one line per
# target; exit 1 if any target found something (a crash, a mismatch with
# its oracle, a leak, a timeout) or did not run.  A target that skips (exit
# 77 and a "SKIP: why" line, before any input: this machine refuses it what
# it needs) fails the run too, unless FL_ALLOW_SKIP=1, as tests/run.sh does.
#
#   fuzz/run.sh [--smoke] SECONDS TARGET...
#
# What a run finds is kept in build-fuzz/artifacts/TARGET/ (crash-*, leak-*,
# timeout-*: the input, to run again with build-fuzz/fuzz/TARGET FILE); its
# log in build-fuzz/logs/TARGET.log.  The inputs a run adds to the corpus go
# to build-fuzz/corpus/TARGET/, kept from run to run, so that long runs add
# up; --smoke (the test command's short runs) starts from the seeds alone
# and keeps nothing.
set -u
cd "$(dirname "$0")/.."
smoke=0
if [ "${1:-}" = "--smoke" ]; then
	smoke=1
	shift
fi
[ $# -ge 2 ] || { echo "usage: fuzz/run.sh [--smoke] SECONDS TARGET..." >&2; exit 2; }
secs=$1
shift
here=$PWD
# A report of either sanitizer ends the run.
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
for t in "$@"; do
	bin=build-fuzz/fuzz/$t
	seeds=fuzz/corpus/$t
	art=build-fuzz/artifacts/$t
	log=build-fuzz/logs/$t.log
	if [ $smoke = 1 ]; then
		work=$tmp/$t
	else
		work=build-fuzz/corpus/$t
	fi
	mkdir -p "$work" "$art" "$(dirname "$log")"
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "FAIL  $t: no $bin or no $seeds"
		bad=1
		continue
	fi
	opts=(-max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 -error_exitcode=1
		-print_final_stats=1 -artifact_prefix="$art/")
	[ -f "fuzz/$t.dict" ] && opts+=(-dict="fuzz/$t.dict")
	# fuzz_mm: 4 bytes an operation, at most 256 of them.
	case $t in
	fuzz_mm) opts+=(-max_len=1026) ;;
	fuzz_options) opts+=(-max_len=512) ;;
	esac
	before=$(ls "$art" | wc -l)
	# The working corpus first: libFuzzer adds to the first directory only.
	timeout -k 10 $((secs + 120)) "$bin" "${opts[@]}" "$work" "$seeds" >"$log" 2>&1
	rc=$?
	after=$(ls "$art" | wc -l)
	runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
	why=$(sed -n 's/^SKIP: //p' "$log" | head -n1)
	if [ $rc -eq 77 ] && [ -n "$why" ]; then
		# The target's own check, as a test's (tests/run.sh): a skip
		# fails the run unless skips are allowed.
		printf 'SKIP  %-14s %s\n' "$t" "$why"
		[ "${FL_ALLOW_SKIP:-0}" = 1 ] ||
			{ echo "FAIL: $t skipped; FL_ALLOW_SKIP=1 allows skips"; bad=1; }
	elif [ $rc -eq 0 ] && [ "$after" -eq "$before" ] && [ -n "$runs" ]; then
		printf 'PASS  %-14s %s, %s, corpus %s inputs\n' "$t" "$runs" "${cov:-cov: ?}" \
			"$(ls "$work" | wc -l)"
	else
		bad=1
		printf 'FAIL  %-14s exit %d after %s; log %s\n' "$t" "$rc" "${runs:-?}" "$log"
		grep -E 'ERROR|MISMATCH|fuzz_options:|CHECK|runtime error|SUMMARY|Test unit written' \
			"$log" | head -n 20 | sed 's/^/      /'
		newest=$(ls -t "$art" | head -n1)
		[ -n "$newest" ] && echo "      run it again: $bin $art/$newest"
	fi
done
exit $bad
