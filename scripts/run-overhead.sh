#!/usr/bin/env bash
# faultline run's overhead without a budget (BENCHMARKS.md, "faultline run"):
# each program natively and under `faultline run`, alternating, ROUNDS rounds
# (default 5); the median wall time of each and their ratio.  A benchmark,
# not a test: run it alone, under flock /tmp/faultline-bench.lock.
set -eu
FL=${FL:-$(cd "$(dirname "$0")/.." && pwd)/build/faultline}
ROUNDS=${ROUNDS:-5}
dir=$(mktemp -d /tmp/fl-run-overhead-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
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
    f.write("import hashlib\nn = 400000\nl = [i * 7919 % 1000003 for i in range(n)]\n"
            "d = {str(i): [i, i * 2, str(i * 3)] for i in range(n // 2)}\ns = sorted(l)\n"
            "h = hashlib.sha256()\nfor k in range(0, n // 2, 7):\n"
            "    h.update(repr(d[str(k)]).encode())\nprint(len(l), len(d), h.hexdigest())\n")
with open("db.sql", "w") as f:
    f.write("PRAGMA cache_size=-65536;\nCREATE TABLE t(a INTEGER, b TEXT);\n"
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300000)\n"
            "  INSERT INTO t SELECT (x * 7919) % 1000003, printf('%08d-row-%d', x * 31 % 99991, x)"
            " FROM c;\nCREATE INDEX ta ON t(b);\nSELECT count(*), sum(a) FROM t;\n")
PY
now() { date +%s.%N; }
median() { sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p"; }
bench() {
	local name=$1 in=$2; shift 2
	local n=() f=() t0 t1 t2
	for _ in $(seq "$ROUNDS"); do
		t0=$(now); "$@" <"$in" >/dev/null; t1=$(now)
		"$FL" run -- "$@" <"$in" >/dev/null; t2=$(now)
		n+=("$(echo "$t1 - $t0" | bc)"); f+=("$(echo "$t2 - $t1" | bc)")
	done
	local mn mf
	mn=$(printf '%s\n' "${n[@]}" | median); mf=$(printf '%s\n' "${f[@]}" | median)
	printf '%-8s native %.3f s  faultline run %.3f s  ratio %.2fx\n' "$name" "$mn" "$mf" \
		"$(echo "scale=4; $mf / $mn" | bc)"
}
bench xz /dev/null xz -T1 -6 -c text
bench sort /dev/null sort -S 200M --parallel=2 lines
bench python3 /dev/null /usr/bin/python3 prog.py
bench sqlite3 db.sql sqlite3 :memory:
bench true /dev/null /bin/true
