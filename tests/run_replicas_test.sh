#!/usr/bin/env bash
# Usage: run_replicas_test.sh EDGEPIPE DATA_DIR MPIEXEC
# Replicated stages (issue 16): batches routed to the replicas of each stage and back in input
# order. 5 ranks as 2 stages x 2 replicas, and 3 ranks as 2 whole replicas, on 23 inputs in
# batches of 2 (the last one short): every output row matches the whole model (relative L2
# < 1e-4), every batch was computed exactly once per stage (the replicas' counts in the run log
# add up to the batches, and each replica took some), and `edgepipe report` shows each replica.
# The planner's choice between a single pipeline and replicas is printed with both calibrated
# periods, and `plan --profile` replays it. Then a run stopped by SIGTERM part-way and resumed
# with --resume matches the whole model too.
edgepipe=$1 data=$2 mpiexec=$3
source "$(dirname "$0")/outputs_lib.sh"
mpi=("$mpiexec" --oversubscribe --allow-run-as-root)
common=(--model "$data/models/resnet18.pt" --synthetic 23 --input-shape 1,3,64,64 --batch 2
        --timeout 120)
"$edgepipe" single "${common[@]}" --optimize false --output "$dir/ref.h5" --warmup 0 --quiet ||
  fail "single"

# check_counts LOG STAGES REPLICAS BATCHES: per stage, REPLICAS ranks whose batches add up to
# BATCHES, none of them idle; the plan records the replicas.
check_counts() {
  $py - "$@" << 'PY' || fail "batch counts in $1"
import sys, h5py
path, stages, replicas, batches = sys.argv[1], *map(int, sys.argv[2:])
with h5py.File(path, "r") as f:
    per = {}
    for r, g in f["ranks"].items():
        s = int(g.attrs["stage"])
        if s < 0:
            continue
        n = float(g["totals"].attrs["batches"])
        assert n > 0, f"rank {r} of stage {s} computed no batch"
        per.setdefault(s, []).append(n)
    assert sorted(per) == list(range(stages)), per
    for s, ns in per.items():
        assert len(ns) == replicas, (s, ns)
        assert sum(ns) == batches, f"stage {s}: {ns} add up to {sum(ns)}, not {batches}"
    print("batches per replica:", {s: ns for s, ns in sorted(per.items())})
PY
}

run_logged two_by_two "${mpi[@]}" -n 5 "$edgepipe" run "${common[@]}" --stages 2 --replicas 2 \
  --group-tolerance 0.9 --output "$dir/a.h5"
expect_rc two_by_two 0 "plan: 2 stages"
$py "$repo/tools/compare_outputs.py" "$dir/a.h5" --reference "$dir/ref.h5" --tol 1e-4 ||
  fail "2 x 2 replicas: outputs differ from the whole model"
check_counts "$dir/a.log.h5" 2 2 12
"$edgepipe" report "$dir/a.log.h5" > "$dir/report.txt" 2>&1 || { cat "$dir/report.txt"; fail "report"; }
grep -Eq "replica" "$dir/report.txt" || { cat "$dir/report.txt"; fail "report shows no replicas"; }

run_logged whole "${mpi[@]}" -n 3 "$edgepipe" run "${common[@]}" --replicas 2 \
  --group-tolerance 0.9 --output "$dir/b.h5"
expect_rc whole 0 "plan: 1 stages"
$py "$repo/tools/compare_outputs.py" "$dir/b.h5" --reference "$dir/ref.h5" --tol 1e-4 ||
  fail "2 whole replicas: outputs differ from the whole model"
check_counts "$dir/b.log.h5" 1 2 12

# The planner's choice (--max-replicas 0, the default): the best single pipeline and the best
# plan with replicas, each calibrated with its own stages' timings, the faster taken; `plan
# --profile` on the run's log replays those timings and prints the same two periods and plan.
run_logged choice "${mpi[@]}" -n 3 "$edgepipe" run "${common[@]}" --output "$dir/e.h5"
expect_rc choice 0 "^edgepipe \(0\): replicas \(both calibrated\): "
$py "$repo/tools/compare_outputs.py" "$dir/e.h5" --reference "$dir/ref.h5" --tol 1e-4 ||
  fail "the planner's choice: outputs differ from the whole model"
line=$(sed -n 's/^edgepipe (0): \(replicas (both calibrated): .*\)$/\1/p' "$dir/choice.out")
predicted=$(grep -m1 -E "^predicted: " "$dir/choice.out") || fail "the planner's choice: no prediction"
"$edgepipe" plan --profile "$dir/e.log.h5" > "$dir/replay.txt" 2>&1 ||
  { cat "$dir/replay.txt"; fail "plan --profile"; }
grep -qxF "$line" "$dir/replay.txt" || { cat "$dir/replay.txt"; fail "plan --profile: not '$line'"; }
grep -qxF "$predicted" "$dir/replay.txt" ||
  { cat "$dir/replay.txt"; fail "plan --profile: not '$predicted'"; }
echo "ok: run and plan --profile: $line"

# Stopped part-way (SIGTERM to the job: the batches in flight drain), then resumed.
many=(--model "$data/models/resnet18.pt" --synthetic 601 --input-shape 1,3,32,32 --batch 2
      --timeout 120)
"$edgepipe" single "${many[@]}" --optimize false --output "$dir/ref_many.h5" --warmup 0 --quiet ||
  fail "single"
start stopped "${mpi[@]}" -n 5 "$edgepipe" run "${many[@]}" --stages 2 --replicas 2 \
  --group-tolerance 0.9 --checkpoint 0.1 --output "$dir/c.h5"
for _ in $(seq 1200); do
  done_rows=$(attr "$dir/c.h5.partial" rows_done)
  [ -n "$done_rows" ] && [ "$done_rows" -ge 20 ] && break
  kill -0 $job 2> /dev/null || break
  sleep 0.1
done
kill -TERM "$(rank_pid $job 0)"  # rank 0: it stops feeding and drains the batches in flight
finish
expect_rc stopped 143 "run the same command with --resume"
kept=$(attr "$dir/c.h5.partial" rows_done)
[ -n "$kept" ] && [ "$kept" -gt 0 ] && [ "$kept" -lt 601 ] || fail "the stop kept '$kept' rows of 601"
run_logged resumed "${mpi[@]}" -n 5 "$edgepipe" run "${many[@]}" --stages 2 --replicas 2 \
  --group-tolerance 0.9 --output "$dir/c.h5" --resume --log "$dir/c2.log.h5"
expect_rc resumed 0 "resuming"
$py "$repo/tools/compare_outputs.py" "$dir/c.h5" --reference "$dir/ref_many.h5" --tol 1e-4 ||
  fail "stopped and resumed with replicas: outputs differ from the whole model"
check_counts "$dir/c2.log.h5" 2 2 $(((601 - kept + 1) / 2))
echo "ok: replicas"
