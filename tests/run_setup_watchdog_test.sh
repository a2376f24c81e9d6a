#!/usr/bin/env bash
# Usage: run_setup_watchdog_test.sh EDGEPIPE DATA_DIR MPIEXEC
# Freezes a stage rank (SIGSTOP) during set-up, before it has answered rank 0: rank 0's wait for
# it must end after --timeout naming the frozen rank, and the whole job must end then (non-zero
# exit within a few seconds more), never wait for the frozen rank at exit (issue 18).
set -u
edgepipe=$1 data=$2 mpiexec=$3
dir=$(mktemp -d)
ours() { pgrep -f "$dir/out.h5"; }  # the processes of this test's job (its own temp folder)
cleanup() {
  for p in $(ours); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
timeout=10
timeout 90 "$mpiexec" --oversubscribe --allow-run-as-root -n 3 "$edgepipe" run \
  --model "$data/models/resnet18.pt" --input "$data/inputs.h5:images" --output "$dir/out.h5" \
  --timeout $timeout > "$dir/log" 2>&1 &
job=$!
# Rank 0 logs the model once MPI is up on every rank; the stage ranks then wait for its request.
for _ in $(seq 600); do
  grep -q "edgepipe (0): model " "$dir/log" && break
  sleep 0.1
done
frozen=""
for p in $(ours); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=2"; then
    kill -STOP "$p" && frozen=$p
  fi
done
[ -n "$frozen" ] || { echo "FAIL: rank 2 not found"; cat "$dir/log"; exit 1; }
t_stop=$(date +%s)
echo "froze rank 2 (pid $frozen) during set-up"
wait $job
rc=$?
elapsed=$(( $(date +%s) - t_stop ))
grep edgepipe "$dir/log"
[ $rc -ne 124 ] || { echo "FAIL: the job hung (killed after 90 s)"; exit 1; }
[ $rc -ne 0 ] || { echo "FAIL: the run succeeded"; exit 1; }
! grep -q "^predicted: " "$dir/log" || { echo "FAIL: the plan was made: rank 2 was frozen too late"; exit 1; }
grep -Eq "edgepipe \(0\): error: timed out after $timeout s waiting for .*rank 2\b" "$dir/log" ||
  { echo "FAIL: rank 0 does not name the frozen rank 2"; exit 1; }
# The wait times out $timeout s after rank 0 begins waiting (it first profiles the model).
[ $elapsed -le $((timeout + 30)) ] || { echo "FAIL: the job ended $elapsed s after the freeze"; exit 1; }
echo "ok: the job ended $elapsed s after the freeze (--timeout $timeout), exit $rc"
