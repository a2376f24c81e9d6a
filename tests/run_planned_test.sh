#!/usr/bin/env bash
# Usage: run_planned_test.sh EDGEPIPE REPO_DIR DATA_DIR MPIEXEC
# The planner inside `edgepipe run` (issue 4): a job of 4 ranks limited to 2 stages leaves a rank
# idle and still matches the whole model; its run log holds the plan, the prediction and every
# rank's profile; a second run plans from that saved profile without measuring, and predicts
# the same period, as does `edgepipe plan --profile` on it (issue 13); a profile of another job
# (other ranks, batch, threads or codec) is refused, naming what differs (issue 18).
# A single pipeline (--max-replicas 1): with replicas allowed the idle rank would run one
# (tests/run_replicas_test.sh covers replicas).
set -eu
edgepipe=$1 repo=$2 data=$3 mpiexec=$4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
base=(--model "$data/models/resnet18.pt" --input "$data/inputs.h5:images" --timeout 120)
common=("${base[@]}" --batch 2)
mpi=("$mpiexec" --oversubscribe --allow-run-as-root)
"$edgepipe" single "${common[@]}" --optimize false --output "$out/ref.h5" --warmup 0 --quiet

"${mpi[@]}" -n 4 "$edgepipe" run "${common[@]}" --max-stages 2 --max-replicas 1 --output "$out/a.h5" > "$out/a.txt" 2>&1 ||
  { cat "$out/a.txt"; exit 1; }
cat "$out/a.txt"
grep -q "measured at start-up" "$out/a.txt"
grep -q -e "plan: 2 stages" -e "plan: 1 stages" "$out/a.txt"
grep -q "rank.* left idle" "$out/a.txt"
/usr/bin/python3 "$repo/tools/compare_outputs.py" "$out/a.h5" --reference "$out/ref.h5" --tol 1e-4

/usr/bin/python3 - "$out/a.log.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    plan, prof, summ = f["plan"], f["profile"], f["summary"]
    ranks, blocks = int(prof.attrs["ranks"]), int(prof.attrs["blocks"])
    assert ranks == 4, ranks
    bm = prof["block_ms"][()].reshape(ranks, blocks)
    assert (bm[1:] > 0).all() and (bm[0] == 0).all(), bm
    lat = prof["link_latency_s"][()].reshape(ranks, ranks)
    assert (lat[0, 1:] > 0).all(), lat
    assert prof["link_bandwidth_Bps"][()].min() > 0
    stages = int(plan.attrs["stages"])
    assert 1 <= stages <= 2, stages
    used = set(plan["stage_rank"][()].tolist())
    assert len(used) == stages and used <= {1, 2, 3}, used
    assert sorted(f["ranks"].keys(), key=int) == ["0"] + [str(r) for r in sorted(used)]
    first, end = plan["stage_first_block"][()], plan["stage_end_block"][()]
    assert first[0] == 0 and end[-1] == blocks and (first[1:] == end[:-1]).all()
    p, m = float(summ.attrs["predicted_period_s"]), float(summ.attrs["period_s"])
    assert p > 0 and m > 0, (p, m)
    assert abs(float(plan.attrs["predicted_period_s"]) - p) < 1e-12
    print(f"predicted period {p * 1e3:.2f} ms, measured {m * 1e3:.2f} ms ({m / p:.2f}x)")
PY

"${mpi[@]}" -n 4 "$edgepipe" run "${common[@]}" --max-stages 2 --max-replicas 1 --profile "$out/a.log.h5" \
  --output "$out/b.h5" > "$out/b.txt" 2>&1 || { cat "$out/b.txt"; exit 1; }
grep -q "planning from the profile in $out/a.log.h5" "$out/b.txt"
if grep -q "measured at start-up (" "$out/b.txt" || grep -q "measuring 3 stage ranks" "$out/b.txt"; then
  echo "the saved profile was not used"; exit 1
fi
/usr/bin/python3 "$repo/tools/compare_outputs.py" "$out/b.h5" --reference "$out/ref.h5" --tol 1e-4

# The same measurements give the same predicted period: the run that measured, a run planning
# from its log, and `edgepipe plan` planning from it (no MPI, no model needed).
"$edgepipe" plan --profile "$out/a.log.h5" > "$out/p.txt" 2>&1 || { cat "$out/p.txt"; exit 1; }
cat "$out/p.txt"
predicted() { grep -E "^predicted: [0-9.]+ ms per batch" "$1" || { echo "no prediction in $1"; exit 1; }; }
pa=$(predicted "$out/a.txt")
pb=$(predicted "$out/b.txt")
pp=$(predicted "$out/p.txt")
echo "run: $pa | run --profile: $pb | plan --profile: $pp"
[ "$pa" = "$pb" ] && [ "$pa" = "$pp" ] || { echo "FAIL: the predictions differ"; exit 1; }
/usr/bin/python3 - "$out/a.log.h5" "$out/b.log.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    pa, pb = (float(f["plan"].attrs["predicted_period_s"]) for f in (a, b))
    assert pa == pb, (pa, pb)
    assert (a["plan/stage_rank"][()] == b["plan/stage_rank"][()]).all()
    assert b["profile"].attrs["source"].decode().startswith("from "), b["profile"].attrs["source"]
    # Calibration times every plan it predicts, a 1-stage plan too (the whole model).
    assert len(a["profile/calibration_stages"][()]) > 0, "the run timed no stages"
    print(f"both logs predict {pa * 1e3:.6f} ms per batch")
PY
"$edgepipe" plan --profile "$out/a.log.h5" --model "$data/models/resnet18.pt" > /dev/null ||
  { echo "FAIL: plan --profile refused the model the log was made with"; exit 1; }
if "$edgepipe" plan --profile "$out/a.log.h5" --model "$data/models/mobilenet_v2.pt" \
    > "$out/pm.txt" 2>&1; then
  echo "FAIL: plan --profile accepted another model"; exit 1
fi
grep -q "was measured for another model" "$out/pm.txt" || { cat "$out/pm.txt"; exit 1; }

# A profile of the same counts but another batch, thread count or codec is refused.
refused() {  # refused WHAT REGEX RUN-OPTIONS...
  local what=$1 regex=$2
  shift 2
  if "${mpi[@]}" -n 4 "$edgepipe" run "$@" --max-stages 2 --max-replicas 1 --profile "$out/a.log.h5" \
      --output "$out/r.h5" > "$out/r.txt" 2>&1; then
    echo "FAIL: a profile of $what was accepted"; exit 1
  fi
  grep -Eq "$regex" "$out/r.txt" || { cat "$out/r.txt"; exit 1; }
  test ! -e "$out/r.h5" && test ! -e "$out/r.h5.partial"
}
refused "batch 2" "measured for another job: batch 2 \(this run 4\)" "${base[@]}" --batch 4
refused "1 thread" "measured for another job: threads 1 \(this run 2\)" "${common[@]}" --threads 2
refused "raw links" "measured for another job: codec raw \(this run lz4\)" "${common[@]}" --codec lz4

if "${mpi[@]}" -n 3 "$edgepipe" run "${common[@]}" --profile "$out/a.log.h5" --output "$out/c.h5" \
    > "$out/c.txt" 2>&1; then
  echo "a profile of 4 ranks was accepted by a job of 3"; exit 1
fi
grep -q "was measured with 4 ranks but this job has 3" "$out/c.txt" || { cat "$out/c.txt"; exit 1; }
test ! -e "$out/c.h5" && test ! -e "$out/c.h5.partial"
echo "planned runs ok"

# Two hosts (EDGEPIPE_HOST, as if ranks 0, 2 and 1, 3 ran on two nodes): one pair of ranks per
# pair of hosts measures the link, the other pairs get its figures; the run still matches.
"${mpi[@]}" -n 4 sh -c 'EDGEPIPE_HOST=node$((OMPI_COMM_WORLD_RANK % 2)) exec "$0" "$@"' \
  "$edgepipe" run "${common[@]}" --max-stages 2 --max-replicas 1 --output "$out/d.h5" > "$out/d.txt" 2>&1 ||
  { cat "$out/d.txt"; exit 1; }
grep -q "measured 3 links (one pair of ranks per pair of hosts) for the 6 pairs of ranks" \
  "$out/d.txt" || { cat "$out/d.txt"; exit 1; }
/usr/bin/python3 "$repo/tools/compare_outputs.py" "$out/d.h5" --reference "$out/ref.h5" --tol 1e-4
/usr/bin/python3 - "$out/d.log.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    prof = f["profile"]
    assert list(prof["ranks_on_host"][()]) == [2, 2, 2, 2], prof["ranks_on_host"][()]
    for name in ("link_latency_s", "link_bandwidth_Bps"):
        v = prof[name][()].reshape(4, 4)
        assert (v == v.T).all(), (name, v)
        cross = {v[0, 1], v[0, 3], v[1, 2], v[2, 3]}  # node0 - node1
        assert len(cross) == 1 and v[0, 2] > 0 and v[1, 3] > 0, (name, v)
PY
