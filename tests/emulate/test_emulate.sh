#!/usr/bin/env bash
# tools/emulate end to end, on a cluster file written as a user would (4 nodes: the dispatcher
# and 3 stage nodes of 0.3 cores each, 100 Mbit/s links with 5 ms one way):
#   1. --check-only: every link and every node's CPU share within 10% of the file
#   2. an MPI ping-pong that is not edgepipe (tests/emulate/pingpong.c) measures each link from
#      rank 0: one-way latency and bandwidth within 10%; the ranks run on distinct hosts node1..3
#   3. edgepipe run on the 3 stage nodes: outputs equal to edgepipe single's (compare_outputs.py),
#      the run log's hosts are node0..node3, and each stage rank saw its node's cgroup (0.3 cores)
#   4. the job's exit status is passed through (a job that fails with 3 gives 3)
# Usage: test_emulate.sh EDGEPIPE PINGPONG SWITCH REPO DATA_DIR        (root; ctest label emulate)
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 EDGEPIPE PINGPONG SWITCH REPO DATA_DIR" >&2; exit 2; }
edgepipe=$(realpath "$1")
pingpong=$(realpath "$2")
switch=$(realpath "$3")
repo=$(realpath "$4")
data=$(realpath "$5")
. "$repo/tests/emulate/lib.sh"
need_root
emulate_tool=$repo/tools/emulate
emulate() { "$emulate_tool" --switch "$switch" --wait-lock 900 "$@"; }  # another instance on a shared machine: wait
work=$(mktemp -d /tmp/edgepipe-emulate-test.XXXXXX)
trap 'rm -rf "$work"; echo "emulate: $passed passed, $failed failed"' EXIT

cat >"$work/cluster.ini" <<'INI'
# three small nodes and the dispatcher on one 100 Mbit/s switch
[link]
bandwidth = 100Mbit/s
latency = 5ms

[dispatcher]
cpu = 0.3

[rank.1]
count = 3
cpu = 0.3
speed = 0.3
memory = 1GiB
INI

say "cluster file errors and the CPU budget (no namespaces needed: --dry-run)"
printf '[link]\nbandwidth = 100Mbit/s\n\n[rank.1]\ncount = 2\nmemory = 512MiB\nsped = 2\n' >"$work/typo.ini"
out=$(emulate --cluster "$work/typo.ini" --dry-run -- true 2>&1) && rc=0 || rc=$?
if [ $rc -eq 1 ] && grep -q "typo.ini:7: \[rank.1\] sped: unknown key (known here: count, name, speed, block_ms, memory, bandwidth, latency, cpu, loss)" <<<"$out"; then
  pass "an unknown key is an error naming file:line, as edgepipe plan's: $out"
else
  fail "unknown key: exit $rc: $out"
fi
printf '[link]\nbandwidth = 1Gbit/s\nloss = 0.5%%\n[dispatcher]\ncpu = 0.5\n[rank.1]\ncount = 4\ncpu = 0.5\nmemory = 1GiB\n' >"$work/big.ini"
out=$(emulate --cluster "$work/big.ini" --cores 2 --dry-run -- true 2>&1) && rc=0 || rc=$?
if [ $rc -eq 1 ] && grep -q "CPU budget exceeded: .* = 2.75 cores > the 2 cores of this machine" <<<"$out"; then
  pass "a cluster that does not fit the cores is refused with the numbers"
else
  fail "CPU budget: exit $rc: $out"
fi

say "self-check"
if emulate --cluster "$work/cluster.ini" --check-only >"$work/check.log" 2>&1; then
  pass "tools/emulate --check-only: every figure within 10%"
else
  fail "tools/emulate --check-only (exit $?)"
fi
cat "$work/check.log"
n_ok=$(grep -cE '^  (latency|bandwidth|cpu) .* ok$' "$work/check.log" || true)
# 6 pairs' round trips, 4 bulk transfers (the chain), 4 nodes' CPU
if [ "$n_ok" -eq 14 ]; then pass "self-check printed 14 figures, all ok"; else fail "self-check: $n_ok of 14 figures ok"; fi

say "MPI ping-pong over the emulated links"
if emulate --cluster "$work/cluster.ini" --no-check --timeout 120 -- "$pingpong" --poll-sleep-us 50 20 2097152 3 \
  >"$work/pp.log" 2>&1; then
  pass "ping-pong job exit 0"
else
  fail "ping-pong job (exit $?)"
fi
grep pingpong "$work/pp.log" || true
/usr/bin/python3 - "$work/pp.log" <<'PY' && pass "ping-pong: latency and bandwidth of every link within 10%" || fail "ping-pong figures"
import re, sys
rows = [dict(kv.split("=") for kv in l.split()[1:]) for l in open(sys.argv[1]) if l.startswith("pingpong rank=") and "latency_s" in l]
hosts = sorted(r["host"] for r in rows)
ok = len(rows) == 3 and hosts == ["node1", "node2", "node3"]
for r in rows:
    lat, bw = float(r["latency_s"]), float(r["bandwidth_Bps"])
    good = abs(lat - 5e-3) <= 0.1 * 5e-3 and abs(bw - 12.5e6) <= 0.1 * 12.5e6
    print(f"rank {r['rank']} on {r['host']}: one-way {lat * 1e3:.3f} ms (asked 5), {bw * 8 / 1e6:.1f} Mbit/s (asked 100): {'ok' if good else 'OFF'}")
    ok &= good
sys.exit(0 if ok else 1)
PY

say "edgepipe on the 3 emulated stage nodes"
"$edgepipe" single --model "$data/models/resnet18.pt" --input "$data/inputs.h5:images" --batch 2 \
  --output "$work/ref.h5" --quiet
if emulate --cluster "$work/cluster.ini" --no-check --timeout 300 -- "$edgepipe" run \
  --model "$data/models/resnet18.pt" --input "$data/inputs.h5:images" --batch 2 --stages 3 --progress 0 \
  --stage-cache "$work/stages" \
  --output "$work/out.h5" >"$work/run.log" 2>&1; then
  pass "edgepipe run under tools/emulate: exit 0"
else
  fail "edgepipe run under tools/emulate (exit $?)"
  cat "$work/run.log"
fi
if msg=$(/usr/bin/python3 "$repo/tools/compare_outputs.py" "$work/out.h5" --reference "$work/ref.h5" 2>&1); then
  pass "outputs equal edgepipe single's: $msg"
else
  fail "outputs differ from edgepipe single's: $msg"
fi
/usr/bin/python3 - "$work/out.log.h5" <<'PY' && pass "run log: rank K ran on node K, stage ranks saw 0.3 cores and 1 GiB" || fail "run log hosts / cores"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    # /ranks/<r> host: where job rank r ran (/run hosts is in pipeline order)
    hosts = [f[f"ranks/{r}"].attrs["host"] for r in range(4)]
    hosts = [h.decode() if isinstance(h, bytes) else str(h) for h in hosts]
    cores = np.asarray(f["profile/cores"])
    mem = np.asarray(f["profile/memory_limit_bytes"])
print("hosts by rank", hosts, "cores", cores.tolist(), "memory", mem.tolist())
ok = hosts == ["node0", "node1", "node2", "node3"]
ok &= all(abs(c - 0.3) < 1e-6 for c in cores[1:]) and all(m == 1 << 30 for m in mem[1:])
sys.exit(0 if ok else 1)
PY

say "exit status of the job"
set +e
emulate --cluster "$work/cluster.ini" --no-check --nodes 1 -- /bin/sh -c 'exit 3' >"$work/exit.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 3 ]; then pass "a job that exits 3 makes tools/emulate exit 3"; else fail "job exit 3 gave $rc"; cat "$work/exit.log"; fi

[ "$failed" -eq 0 ]
