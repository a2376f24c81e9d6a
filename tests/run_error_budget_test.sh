#!/usr/bin/env bash
# Usage: run_error_budget_test.sh EDGEPIPE REPO_DIR DIGITS_DIR MPIEXEC
# --error-budget on the digits CNN as 3 stages (docs/codecs.md, "Error budget"):
# - links made 1000x slower for the choice (EDGEPIPE_TEST_CRASH=slow_links): a lossy codec must be
#   chosen on some link, the outputs of all 359 rows (all of them the calibration rows) must be
#   within the budget of the unpartitioned model's, the run log's /plan/error_budget must hold the
#   choice, a measured error within the budget, and the links must have run the codecs it names;
# - a budget of 1e-12: no lossy codec on any link;
# - --error-budget with --codec: refused, naming both.
# --optimize false: the stages compute as the blocks the error was measured on.
set -eu
edgepipe=$1 repo=$2 digits=$3 mpiexec=$4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--model "$digits/digits_cnn.pt" --input "$digits/digits.h5:images" --batch 16
        --optimize false --timeout 120)
"$edgepipe" single "${common[@]}" --output "$out/ref.h5" > "$out/ref.log" 2>&1 ||
  { cat "$out/ref.log"; exit 1; }
run() {
  local name=$1
  shift
  "$mpiexec" --oversubscribe --allow-run-as-root -n 4 "$edgepipe" run "${common[@]}" --stages 3 \
    --calibrate 0 --output "$out/$name.h5" "$@" > "$out/$name.log" 2>&1 ||
    { cat "$out/$name.log"; echo "FAIL: run $name"; exit 1; }
}
EDGEPIPE_TEST_CRASH=slow_links run slow --error-budget 1e-2 --calibration-rows 359
cat "$out/slow.log"
grep -q "error budget 0.01: each link's codec chosen from" "$out/slow.log" ||
  { echo "FAIL: no table of the chosen codecs"; exit 1; }
r=$(/usr/bin/python3 "$repo/tools/compare_outputs.py" "$out/slow.h5" --reference "$out/ref.h5" --tol 1e-2)
echo "outputs against the whole model: $r"
/usr/bin/python3 - "$out/slow.log.h5" 1e-2 lossy <<'PY'
import sys
import h5py
log, budget, want = sys.argv[1], float(sys.argv[2]), sys.argv[3]
with h5py.File(log, "r") as f:
    g = f["plan/error_budget"]
    codecs = g.attrs["link_codecs"].decode().split(",")
    measured, bound = g.attrs["measured_error"], g.attrs["error_sum"]
    ran = [c.decode() if isinstance(c, bytes) else c for c in f["links"]["codec"][()]]
    errors = g["link_error"][()]
    recorded = g.attrs["budget"]
print("chosen:", codecs, "ran:", ran, "measured", measured, "bound", bound, "errors", list(errors))
assert abs(recorded - budget) < 1e-15, f"budget recorded as {recorded}"
assert measured <= budget, f"measured error {measured} over the budget {budget}"
assert bound <= budget * (1 + 1e-9), f"the links' errors add up to {bound}"
assert ran == codecs, f"the links ran {ran}, the choice was {codecs}"
lossy = [c for c in codecs if c.startswith(("q", "zfp-precision", "zfp-rate"))]
if want == "lossy":
    assert lossy, "no lossy codec chosen on links 1000x slower"
    assert all(e > 0 for c, e in zip(codecs, errors) if c in lossy), "a lossy link with no error"
else:
    assert not lossy, f"lossy codecs {lossy} chosen within a budget of {budget}"
PY
run tiny --error-budget 1e-12
/usr/bin/python3 - "$out/tiny.log.h5" 1e-12 lossless <<'PY' || exit 1
import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    codecs = f["plan/error_budget"].attrs["link_codecs"].decode().split(",")
    assert not [c for c in codecs if c.startswith(("q", "zfp"))], codecs
    print("budget 1e-12:", codecs)
PY
if "$mpiexec" --oversubscribe --allow-run-as-root -n 4 "$edgepipe" run "${common[@]}" \
    --output "$out/both.h5" --error-budget 1e-2 --codec lz4 > "$out/both.log" 2>&1; then
  echo "FAIL: --error-budget with --codec accepted"; exit 1
fi
grep -q "give it or --codec, not both" "$out/both.log" || { cat "$out/both.log"; exit 1; }
[ ! -e "$out/both.h5" ] || { echo "FAIL: an output file from a refused run"; exit 1; }
echo "PASS: error budget"
