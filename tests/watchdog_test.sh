#!/usr/bin/env bash
# Usage: watchdog_test.sh EDGEPIPE DATA_DIR MPIEXEC
# Freezes one stage rank (SIGSTOP) mid-run: rank 0's watchdog must end the job within its
# --timeout, saying which stages wait for what (each rank by its rank in the job), keep the rows
# done, write the run log of the part that ran marked incomplete, and exit non-zero.
set -u
edgepipe=$1 data=$2 mpiexec=$3
dir=$(mktemp -d)
trap 'pkill -CONT -f "$dir/out.h5" 2>/dev/null; pkill -KILL -f "$dir/out.h5" 2>/dev/null; rm -rf "$dir"' EXIT
/usr/bin/python3 "$(dirname "$0")/../tools/make_input.py" "$dir/in.h5" --count 5000 --shape 3,32,32 > /dev/null
timeout 90 "$mpiexec" --oversubscribe --allow-run-as-root -n 4 "$edgepipe" run \
  --model "$data/models/resnet18.pt" --input "$dir/in.h5:images" --output "$dir/out.h5" \
  --timeout 4 --checkpoint 0.2 --stages 3 > "$dir/log" 2>&1 &
job=$!
for _ in $(seq 300); do
  [ -f "$dir/out.h5.partial" ] && break
  sleep 0.1
done
sleep 1
for p in $(pgrep -f "$dir/out.h5"); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=2"; then
    kill -STOP "$p" && echo "froze rank 2 (pid $p)"
  fi
done
wait $job
rc=$?
cat "$dir/log" | grep edgepipe
[ $rc -ne 0 ] || { echo "FAIL: the run succeeded"; exit 1; }
[ $rc -ne 124 ] || { echo "FAIL: the run hung (killed after 90 s)"; exit 1; }
grep -q "watchdog: no batch completed for 4 s" "$dir/log" || { echo "FAIL: no watchdog message"; exit 1; }
grep -Eq "stage [0-2] \(rank 2\) did not answer" "$dir/log" || { echo "FAIL: the frozen stage is not named"; exit 1; }
grep -Eq "stage [0-2] \(rank [13]\) has waited [0-9]+ s for batch" "$dir/log" || { echo "FAIL: no status from stage 2"; exit 1; }
grep -q "rows are kept in .*--resume" "$dir/log" || { echo "FAIL: no resume hint"; exit 1; }
grep -Eq "rank 0 sent [0-9]+ batches to rank 1 and received [0-9]+ from rank 3" "$dir/log" ||
  { echo "FAIL: the watchdog does not name the first and last stages' ranks"; exit 1; }
/usr/bin/python3 - "$dir/out.log.h5" <<'PY' || { echo "FAIL: no run log marked incomplete"; exit 1; }
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    run = f["run"].attrs
    failure = run["failure"].decode()
    assert int(run["complete"]) == 0 and int(run["stopped_by_signal"]) == 0, dict(run)
    assert failure.startswith("watchdog: no batch completed for 4 s"), failure
    assert "did not answer" in failure, failure
    assert int(f["summary"].attrs["batches"]) > 0, "the log lost the batches that came back"
    print("run log of the part that ran:", f["summary"].attrs["batches"], "batches; failure:",
          failure.splitlines()[0])
PY
echo "ok: watchdog ended the run (exit $rc) and named the frozen stage"
