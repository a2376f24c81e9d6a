#!/usr/bin/env bash
# jobs/edgepipe-multinode.sbatch on a real multi-node Slurm: tools/slurm-local start --cluster
# runs one slurmd per emulated node (tools/emulate: 4 nodes of 0.3 cores, 1 Gbit/s, 2 ms), each
# in its node's namespaces and cgroups, under one slurmctld. The job asks for 4 nodes with one
# task each (the dispatcher and 3 stages); the test checks its end state, its log, that its 4
# ranks ran on 4 distinct hosts (node0..node3, the run log), and its output against edgepipe
# single. Slurm and the emulated cluster are stopped at the end, whatever happened.
# Usage: tests/slurm/test_multinode.sh EDGEPIPE REPO DATA_DIR     (root; ctest label slurm)
# Environment: SLURM_TEST_TIMEOUT  seconds the job may take [300]
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 EDGEPIPE REPO DATA_DIR" >&2; exit 2; }
bin=$(realpath "$1")
repo=$(realpath "$2")
data=$(realpath "$3")
job_timeout=${SLURM_TEST_TIMEOUT:-300}
[[ $job_timeout =~ ^[0-9]{1,6}$ ]] || { echo "SLURM_TEST_TIMEOUT must be a whole number of seconds, got '$job_timeout'" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
say() { echo "--- $*"; }

for v in $(compgen -e); do
  case $v in
    SLURM_TEST_*) ;;
    SLURM_* | SBATCH_* | SRUN_* | SALLOC_* | EDGEPIPE_*) unset "$v" ;;
  esac
done
work=$(mktemp -d /tmp/edgepipe-slurm-multinode.XXXXXX)
chmod 755 "$work"
# a fresh, private state dir that root owns (tools/slurm-local refuses anything else)
export SLURM_LOCAL_DIR
SLURM_LOCAL_DIR=$(mktemp -d /run/edgepipe-slurm-multinode.XXXXXX)
chmod 755 "$SLURM_LOCAL_DIR"
slurm_local=$repo/tools/slurm-local
sl() { "$slurm_local" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
    say "daemon logs"
    sl logs
    for f in "$work"/*.out; do [ -e "$f" ] && { say "job log $f"; cat "$f"; }; done
  fi
  say "stopping Slurm and the emulated cluster"
  sl stop
  if [ -n "$("$repo/tools/emulate" --list)" ]; then
    fail "an emulated cluster is still listed after stop: $("$repo/tools/emulate" --list)"
  fi
  rm -rf "$work" "$SLURM_LOCAL_DIR"
  echo "slurm multinode: $passed passed, $failed failed"
  if [ "$rc" -eq 0 ] && [ "$failed" -gt 0 ]; then rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/cluster.ini" <<'INI'
# the dispatcher and three stage nodes on one gigabit switch
[link]
bandwidth = 1Gbit/s
latency = 2ms

[dispatcher]
cpu = 0.3

[rank.1]
count = 3
cpu = 0.3
speed = 0.3
memory = 1GiB
INI

say "starting Slurm on 4 emulated nodes"
if sl start --cluster "$work/cluster.ini"; then
  pass "tools/slurm-local start --cluster: 4 nodes idle"
else
  fail "tools/slurm-local start --cluster"
  exit 1
fi
nodes=$(sl exec sinfo -h -N -o '%N' | sort -u | paste -sd, -)
[ "$nodes" = node0,node1,node2,node3 ] && pass "sinfo lists node0..node3" || fail "sinfo lists '$nodes'"

model=$data/models/resnet18.pt
input=$data/inputs.h5
"$bin" single --model "$model" --input "$input:images" --batch 2 --output "$work/reference.h5" --quiet

say "job: jobs/edgepipe-multinode.sbatch -N 4 --ntasks-per-node=1"
id=$(cd "$work" && EDGEPIPE_BIN=$bin EDGEPIPE_MODEL=$model EDGEPIPE_INPUT=$input:images EDGEPIPE_BATCH=2 \
  EDGEPIPE_TIMEOUT=120 EDGEPIPE_GRACE=20 EDGEPIPE_NET_IF=10.201.0.0/24 \
  sl exec sbatch --parsable --time=10 -N 4 --ntasks-per-node=1 --cpus-per-task=1 --mem-per-cpu=512M \
  "$repo/jobs/edgepipe-multinode.sbatch" --stages 3)
job_field() { sl exec scontrol -o show job "$1" 2>/dev/null | grep -oE "(^| )$2=[^ ]*" | head -n 1 | cut -d= -f2-; }
deadline=$((SECONDS + job_timeout))
state=""
while [ $SECONDS -lt $deadline ]; do
  state=$(job_field "$id" JobState)
  case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
  sleep 1
done
code=$(job_field "$id" ExitCode)
if [ "$state" = COMPLETED ] && [ "$code" = 0:0 ]; then
  pass "job $id: COMPLETED, exit code 0:0 on $(job_field "$id" NodeList)"
else
  fail "job $id: state ${state:-?}, exit code ${code:-?}"
fi
log=$work/edgepipe-multinode-$id.out
out=$work/edgepipe-multinode-$id.h5
grep -q "edgepipe exit status 0" "$log" 2>/dev/null && pass "job log says the run finished" || fail "job log $log lacks 'edgepipe exit status 0'"
if msg=$(/usr/bin/python3 "$repo/tools/compare_outputs.py" "$out" --reference "$work/reference.h5" 2>&1); then
  pass "output matches edgepipe single: $msg"
else
  fail "output differs from edgepipe single: $msg"
fi
if hosts=$(/usr/bin/python3 -c '
import sys, h5py
h = h5py.File(sys.argv[1], "r")["profile"].attrs["hosts"]  # one line per rank, in rank order
print((h.decode() if isinstance(h, bytes) else h).replace(chr(10), ","))' "${out%.h5}.log.h5" 2>&1) &&
  [ "${hosts%%,*}" = node0 ] && [ "$(tr , '\n' <<<"$hosts" | sort | paste -sd, -)" = node0,node1,node2,node3 ]; then
  pass "the 4 ranks ran on 4 distinct hosts, rank 0 on the batch host node0: $hosts (by rank)"
else
  fail "ranks' hosts: $hosts"
fi
[ "$failed" -eq 0 ]
