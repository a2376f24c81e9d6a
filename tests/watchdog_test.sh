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
# The run log of the part that ran, marked incomplete; the watchdog names the job's ranks of the
# first and the last stage (the planner may place the stages in any order).
/usr/bin/python3 - "$dir/out.log.h5" "$dir/log" <<'PY' || { echo "FAIL: the run log or the ranks"; exit 1; }
import re, sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    run = f["run"].attrs
    failure = run["failure"].decode()
    assert int(run["complete"]) == 0 and int(run["stopped_by_signal"]) == 0, dict(run)
    assert failure.startswith("watchdog: no batch completed for 4 s"), failure
    assert "did not answer" in failure, failure
    assert int(f["summary"].attrs["batches"]) > 0, "the log lost the batches that came back"
    ranks = [int(r) for r in f["plan/stage_rank"][()]]
    print("run log of the part that ran:", f["summary"].attrs["batches"], "batches; failure:",
          failure.splitlines()[0])
headline = re.search(r"rank 0 sent \d+ batches to rank (\d+) and received \d+ from rank (\d+)",
                     open(sys.argv[2]).read())
assert headline, "no watchdog headline"
assert [int(headline.group(1)), int(headline.group(2))] == [ranks[0], ranks[-1]], (headline.group(0), ranks)
print(f"the watchdog names stage 0's rank {ranks[0]} and the last stage's rank {ranks[-1]}")
PY
echo "ok: watchdog ended the run (exit $rc) and named the frozen stage"
