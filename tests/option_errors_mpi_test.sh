#!/usr/bin/env bash
# Usage: option_errors_mpi_test.sh EDGEPIPE MPIEXEC [RUNS]
# A bad option under mpirun: every rank fails alike, and mpirun ends the job at the first exit,
# which could come before rank 0 had printed anything (an exit status 2 without a word). Each of
# RUNS (default 10) runs must name the bad option.
edgepipe=$1 mpiexec=$2 runs=${3:-10}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
silent=0
for i in $(seq "$runs"); do
  out=$(timeout 60 "$mpiexec" --oversubscribe -n 4 "$edgepipe" run --batchsize 4 2>&1)
  rc=$?
  [ $rc -ne 0 ] || { echo "FAIL: run $i succeeded"; exit 1; }
  [ $rc -ne 124 ] || { echo "FAIL: run $i hung"; exit 1; }
  if ! grep -q "unrecognised option '--batchsize'" <<< "$out"; then
    silent=$((silent + 1))
    echo "run $i: exit $rc without the message:"
    echo "$out" | tail -5
  fi
done
[ $silent = 0 ] || { echo "FAIL: $silent of $runs runs did not say what was wrong"; exit 1; }
echo "ok: $runs of $runs runs named the bad option"
