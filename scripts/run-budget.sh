#!/usr/bin/env bash
# faultline run under a budget against the kernel's own (BENCHMARKS.md,
# "faultline run: a budget against a cgroup"): the programs of
# tests/test_run.c (xz, sort, python3, sqlite3; same shapes and sizes of
# input, made here from a fixed seed) with a budget M of about 1/2 and 1/4
# of each one's native peak resident size, run
#   faultline:  faultline run --mem-limit M --stats (its swap_outs/swap_ins);
#   kernel:     natively in a cgroup v1 memory group with
#               memory.limit_in_bytes = M and a swap file of this script's,
#               swapped on for that run only (the kernel's pswpin/pswpout
#               are /proc/vmstat deltas: the whole machine's, the system
#               DAMON's page-outs of other processes included);
# alternating which goes first, ROUNDS rounds (default 3).  Wall and CPU
# time and the peak resident size (wait4's ru_maxrss) of each run; medians
# with min-max, and the ratio faultline/kernel of each round.  A run over
# TIMEOUT seconds (default 180) is killed and reported as such.
#
# Root and the cgroup v1 memory controller.  A benchmark, not a test: run it
# alone, under flock /tmp/faultline-bench.lock.  The swap file and the
# cgroup are removed on exit, on failure and on SIGINT/SIGTERM/SIGHUP.
set -eu
FL=${FL:-$(cd "$(dirname "$0")/.." && pwd)/build/faultline}
ROUNDS=${ROUNDS:-3}
TIMEOUT=${TIMEOUT:-180}
SWAPDIR=${SWAPDIR:-/var/tmp}
PROGS=${PROGS:-"xz sort python3 sqlite3"}
CG=/sys/fs/cgroup/memory/faultline-run-budget-$$
SWAP=$SWAPDIR/faultline-run-budget-$$.swap

[ "$(id -u)" = 0 ] || { echo "run-budget: needs root (swapon, cgroups)" >&2; exit 77; }
[ -w /sys/fs/cgroup/memory/memory.limit_in_bytes ] ||
	{ echo "run-budget: no cgroup v1 memory controller" >&2; exit 77; }
[ -x "$FL" ] || { echo "run-budget: $FL: build it first (make)" >&2; exit 2; }

dir=$(mktemp -d /tmp/fl-run-budget-XXXXXX)
cleanup() {
	set +e
	if [ -d "$CG" ]; then
		for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$p"; done
		for _ in $(seq 100); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
	fi
	grep -q "^$SWAP " /proc/swaps && swapoff "$SWAP"
	rm -f "$SWAP"
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

cd "$dir"
# The inputs of tests/test_run.c: the same programs, shapes and sizes.
/usr/bin/python3 - <<'PY'
import random
random.seed(7)
w = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
with open("text", "w") as f:
    for i in range(220000):
        f.write(random.choice(w) + ("\n" if random.random() < 0.1 else " "))
    for i in range(70000):
        f.write("%08x\n" % random.getrandbits(32))
with open("lines", "w") as f:
    for i in range(300000):
        f.write("%08x %d\n" % (random.getrandbits(32), i))
with open("prog.py", "w") as f:
    f.write("import hashlib\nn = 150000\nl = [i * 7919 % 1000003 for i in range(n)]\n"
            "d = {str(i): [i, i * 2, str(i * 3)] for i in range(n // 2)}\ns = sorted(l)\n"
            "h = hashlib.sha256()\nfor k in range(0, n // 2, 7):\n"
            "    h.update(repr(d[str(k)]).encode())\nh.update(repr(s[::1000]).encode())\n"
            "print(len(l), len(d), h.hexdigest())\n")
with open("db.sql", "w") as f:
    f.write("PRAGMA cache_size=-65536;\nPRAGMA temp_store=MEMORY;\n"
            "CREATE TABLE t(a INTEGER, b TEXT);\n"
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300000)\n"
            "  INSERT INTO t SELECT (x * 7919) % 1000003, printf('%08d-row-%d', x * 31 % 99991, x)"
            " FROM c;\nCREATE INDEX ta ON t(b);\n"
            "SELECT count(*), sum(a), min(b), max(b) FROM t;\n"
            "SELECT b FROM t ORDER BY b LIMIT 3 OFFSET 70000;\n")
PY

# One run: runone.py CGROUP|- STATS|- IN OUT -- ARGV...; prints key=value.
cat >runone.py <<'PY'
import os, re, signal, sys, time
cg, stats, fin, fout = sys.argv[1:5]
argv = sys.argv[6:]
timeout = int(os.environ.get("TIMEOUT", "180"))
def vm():
    d = {}
    for l in open("/proc/vmstat"):
        k, v = l.split()
        d[k] = int(v)
    return d
def oom():
    if cg == "-":
        return 0
    m = re.search(r"oom_kill (\d+)", open(cg + "/memory.oom_control").read())
    return int(m.group(1)) if m else 0
if cg != "-":
    open(cg + "/memory.max_usage_in_bytes", "w").write("0")
o0, v0 = oom(), vm()
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        if cg != "-":
            with open(cg + "/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        i = os.open(fin, os.O_RDONLY)
        o = os.open(fout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(i, 0); os.dup2(o, 1)
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
killed = []
def alarm(*_):
    killed.append(1)
    os.kill(pid, signal.SIGKILL)
signal.signal(signal.SIGALRM, alarm)
signal.alarm(timeout)
_, st, ru = os.wait4(pid, 0)
signal.alarm(0)
wall = time.monotonic() - t0
v1 = vm()
outs = ins = faults = mmw = -1
if stats != "-" and os.path.exists(stats):
    s = open(stats).read()
    n = lambda k: sum(int(x) for x in re.findall(r'"%s": *(\d+)' % k, s))
    outs, ins, faults, mmw = n("swap_outs"), n("swap_ins"), n("faults"), n("mmap_write_locks")
status = ("timeout" if killed else "sig%d" % os.WTERMSIG(st) if os.WIFSIGNALED(st)
          else "exit%d" % os.WEXITSTATUS(st))
cgpeak = int(open(cg + "/memory.max_usage_in_bytes").read()) if cg != "-" else -1
print("wall=%.3f cpu=%.3f user=%.3f sys=%.3f maxrss_kib=%d pswpin=%d pswpout=%d "
      "fl_outs=%d fl_ins=%d fl_faults=%d fl_mm_writes=%d cg_peak=%d oom=%d status=%s" %
      (wall, ru.ru_utime + ru.ru_stime, ru.ru_utime, ru.ru_stime, ru.ru_maxrss,
       v1["pswpin"] - v0["pswpin"], v1["pswpout"] - v0["pswpout"], outs, ins, faults, mmw, cgpeak,
       oom() - o0, status))
PY

args_of() {
	case $1 in
	xz) echo "/dev/null xz -T1 -6 -c text" ;;
	sort) echo "/dev/null sort -S 200M --parallel=2 lines" ;;
	python3) echo "/dev/null /usr/bin/python3 prog.py" ;;
	sqlite3) echo "db.sql sqlite3 :memory:" ;;
	esac
}

# The swap file (1 GiB, zeroed: swapon refuses a fallocated file on some
# file systems) and the cgroup; the swap is on only during kernel runs.
dd if=/dev/zero of="$SWAP" bs=1M count=1024 status=none
chmod 600 "$SWAP"
mkswap "$SWAP" >/dev/null
mkdir "$CG"
echo 60 >"$CG/memory.swappiness"

export TIMEOUT
# The machine's busy and steal time over the whole run (/proc/stat, in
# USER_HZ ticks): what the runs did not use was other processes'.
cpustat() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }
stat0=$(cpustat)
start=$(date +%s.%N)
results=$dir/results
: >"$results"
echo "# $(date -u +%F) $(git -C "$(dirname "$FL")/.." rev-parse --short HEAD 2>/dev/null)" \
	"$(uname -r), ROUNDS=$ROUNDS TIMEOUT=$TIMEOUT, vm.swappiness" \
	"$(cat /proc/sys/vm/swappiness), other swaps: $(tail -n +2 /proc/swaps | wc -l)"
for prog in $PROGS; do
	# shellcheck disable=SC2046
	set -- $(args_of "$prog")
	in=$1; shift
	native=$(/usr/bin/python3 runone.py - - "$in" native.out -- "$@")
	peak=$(echo "$native" | sed 's/.*maxrss_kib=\([0-9]*\).*/\1/')
	echo "$prog native: $native"
	for frac in 2 4; do
		m=$(( (peak / frac + 1023) / 1024 ))M
		echo "$m" >"$CG/memory.limit_in_bytes" 2>/dev/null ||
			{ echo 0 >"$CG/memory.limit_in_bytes"; echo "$m" >"$CG/memory.limit_in_bytes"; }
		for r in $(seq "$ROUNDS"); do
			order="faultline kernel"
			[ $((r % 2)) = 0 ] && order="kernel faultline"
			for subj in $order; do
				if [ "$subj" = kernel ]; then
					swapon -p 32767 "$SWAP"
					line=$(/usr/bin/python3 runone.py "$CG" - "$in" out -- "$@")
					swapoff "$SWAP"
				else
					rm -f stats
					line=$(/usr/bin/python3 runone.py - stats "$in" out -- \
						"$FL" run --mem-limit "$m" --stats stats --json -- "$@")
				fi
				cmp -s out native.out || line="$line WRONG_OUTPUT"
				echo "prog=$prog frac=1/$frac budget=$m peak_native_kib=$peak round=$r subj=$subj $line" |
					tee -a "$results"
			done
		done
	done
done

# The tables: medians (min-max) of each subject; the ratio of each round.
/usr/bin/python3 - "$results" "$stat0" "$(cpustat)" "$start" "$(date +%s.%N)" \
	"$(getconf CLK_TCK)" <<'PY'
import sys, statistics as S
rows = [dict(kv.split("=", 1) for kv in l.split() if "=" in kv) for l in open(sys.argv[1])]
b0, s0 = map(float, sys.argv[2].split())
b1, s1 = map(float, sys.argv[3].split())
hz, elapsed = float(sys.argv[6]), float(sys.argv[5]) - float(sys.argv[4])
own = sum(float(r["cpu"]) for r in rows)
print("# %.0f s; the machine busy %.0f CPU-s, the runs %.0f CPU-s: others %.0f %% of one CPU;"
      " steal %.0f CPU-s" % (elapsed, (b1 - b0) / hz, own,
                            100 * ((b1 - b0) / hz - own) / elapsed, (s1 - s0) / hz))
def f(v, fmt="%.2f"):
    return "%s (%s-%s)" % (fmt % S.median(v), fmt % min(v), fmt % max(v))
keys = []
for r in rows:
    k = (r["prog"], r["frac"], r["budget"], r["peak_native_kib"])
    if k not in keys:
        keys.append(k)
print()
print("| program | budget (native peak) | subject | wall s | CPU s | swapped out | swapped in"
      " | kernel pswpout | kernel pswpin | peak RSS MiB | runs ok |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k in keys:
    for subj in ("faultline", "kernel"):
        rs = [r for r in rows if (r["prog"], r["frac"], r["budget"], r["peak_native_kib"]) == k
              and r["subj"] == subj]
        ok = [r for r in rs if r["status"] == "exit0"]
        if not ok:
            print("| %s | %s = 1/%s (%d MiB) | %s | - | - | - | - | - | - | - | 0/%d (%s) |" % (
                k[0], k[2], k[1][2:], int(k[3]) // 1024, subj, len(rs),
                ",".join(r["status"] for r in rs)))
            continue
        g = lambda n: [float(r[n]) for r in ok]
        outs = f(g("fl_outs"), "%.0f") if subj == "faultline" else "-"
        ins = f(g("fl_ins"), "%.0f") if subj == "faultline" else "-"
        print("| %s | %s = 1/%s (%d MiB) | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d%s |" % (
            k[0], k[2], k[1][2:], int(k[3]) // 1024, subj, f(g("wall")), f(g("cpu")), outs, ins,
            f(g("pswpout"), "%.0f"), f(g("pswpin"), "%.0f"),
            f([x / 1024 for x in g("maxrss_kib")], "%.0f"), len(ok), len(rs),
            "" if len(ok) == len(rs) else " (" + ",".join(r["status"] for r in rs) + ")"))
print()
print("| program | budget | wall faultline/kernel per round | median | CPU faultline/kernel per round | median |")
print("|---|---|---|---|---|---|")
for k in keys:
    wr, cr = [], []
    for rnd in sorted({r["round"] for r in rows}):
        a = [r for r in rows if (r["prog"], r["frac"], r["budget"], r["peak_native_kib"]) == k
             and r["round"] == rnd and r["status"] == "exit0"]
        fl = [r for r in a if r["subj"] == "faultline"]
        ke = [r for r in a if r["subj"] == "kernel"]
        if fl and ke:
            wr.append(float(fl[0]["wall"]) / float(ke[0]["wall"]))
            cr.append(float(fl[0]["cpu"]) / float(ke[0]["cpu"]))
    if wr:
        print("| %s | %s = 1/%s | %s | %.2fx | %s | %.2fx |" % (
            k[0], k[2], k[1][2:], " ".join("%.2f" % x for x in wr), S.median(wr),
            " ".join("%.2f" % x for x in cr), S.median(cr)))
    else:
        print("| %s | %s = 1/%s | - | - | - | - |" % (k[0], k[2], k[1][2:]))
PY
