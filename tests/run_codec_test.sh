#!/usr/bin/env bash
# Usage: run_codec_test.sh EDGEPIPE REPO_DIR DATA_DIR MPIEXEC MODEL RANKS
# Runs MODEL as a pipeline of RANKS-1 stages with the raw codec, then with lossless codecs (one
# for all links, and a different one per link) whose outputs must equal raw's bit for bit, then
# with lossy codecs whose outputs must be close to raw's (relative L2: zfp-relacc:1e-3 within 1e-2;
# q8, with lz4 over it on link 1, within 3e-2) and whose summary must report per-link bytes and
# error.
# --optimize false: the planner's cuts follow measured times and may move between runs; without
# optimize_for_inference's graph rewrites every node computes the same whatever the cuts, so the
# comparison tests the codecs alone.
set -eu
edgepipe=$1 repo=$2 data=$3 mpiexec=$4 model=$5 ranks=$6
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() {
  local name=$1
  shift
  "$mpiexec" --oversubscribe --allow-run-as-root -n "$ranks" "$edgepipe" run \
    --model "$data/models/$model.pt" --input "$data/inputs.h5:images" --batch 2 --timeout 120 \
    --optimize false --calibrate 0 --stages $((ranks - 1)) --output "$out/$name.h5" "$@" > "$out/$name.log" 2>&1 ||
    { cat "$out/$name.log"; exit 1; }
}
compare() {
  /usr/bin/python3 "$repo/tools/compare_outputs.py" "$out/$1.h5" --reference "$out/raw.h5" --tol "$2"
}
run raw --codec raw
for codec in lz4 zfp-reversible zfp-reversible+lz4 "1=lz4,2=zfp-reversible+lz4,$ranks=raw"; do
  name=$(echo "$codec" | tr ':+,=' '____')
  run "$name" --codec "$codec"
  r=$(compare "$name" 0); echo "$codec: $r"  # an assignment, so that set -e sees a failure
done
# zfp-reversible saves a tenth of a 224x224 input batch (about 120 KB, well under a millisecond on
# shared memory, even on a loaded machine) for several milliseconds of coding, a large share of
# the period: rank 0 says that raw is faster and at what link speed the codec would pay.
"$mpiexec" --oversubscribe --allow-run-as-root -n "$ranks" "$edgepipe" run --model "$data/models/$model.pt" \
  --synthetic 4 --input-shape 2,3,224,224 --batch 2 --timeout 120 --calibrate 0 --codec zfp-reversible \
  --output "$out/advice.h5" > "$out/advice.log" 2>&1 || { cat "$out/advice.log"; exit 1; }
grep -q "warning: link 1 (rank 0 -> rank [0-9]*): zfp-reversible takes .* raw is faster here; the codec pays on links slower than" \
  "$out/advice.log" || { cat "$out/advice.log"; echo "FAIL: no advice on the codec"; exit 1; }
if grep -q "raw is faster here" "$out/raw.log"; then echo "FAIL: advice on raw links"; exit 1; fi
# --overlap on: each stage computes on a thread beside its codec work; outputs must not change.
run lz4_overlap --codec lz4 --overlap on
r=$(compare lz4_overlap 0); echo "lz4 --overlap on: $r"
grep -q "overlap: each stage computes on a thread of its own" "$out/lz4_overlap.log" ||
  { echo "FAIL: the plan does not say that stages overlap"; exit 1; }
run lossy --codec zfp-relacc:1e-3
r=$(compare lossy 1e-2); echo "zfp-relacc:1e-3: $r"
# (the planner's cuts may differ between runs, and a lossy codec's error with them: against raw)
run lossy_overlap --codec zfp-relacc:1e-3 --overlap on
r=$(compare lossy_overlap 1e-2); echo "zfp-relacc:1e-3 --overlap on: $r"
/usr/bin/python3 - "$out/lossy_overlap.log.h5" "$out/lossy.log.h5" <<'PY'
import sys, h5py
on, off = (int(h5py.File(p, "r")["plan"].attrs["overlap"]) for p in sys.argv[1:])
assert (on, off) == (1, 0), f"/plan overlap: {on} with --overlap on, {off} with off"
PY
grep -A$((ranks + 1)) "links:" "$out/lossy.log"
grep -Eq "^ +1 +0 -> 1 +zfp-relacc:0.001 .*x " "$out/lossy.log" ||
  { echo "FAIL: no per-link line for link 1 in the summary"; exit 1; }
/usr/bin/python3 - "$out/lossy.h5" "$ranks" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
ranks = int(sys.argv[2])
for i in range(1, ranks + 1):
    for k in ("codec", "bytes_raw", "bytes_encoded", "time_encode", "time_decode", "error_max_rel", "error_rel_l2"):
        assert f"link{i}_{k}" in f.attrs, f"link{i}_{k} missing from the outputs file"
    assert f.attrs[f"link{i}_bytes_encoded"] < f.attrs[f"link{i}_bytes_raw"], f"link {i} did not shrink"
codec = f.attrs["codec"]
codec = codec.decode() if isinstance(codec, bytes) else codec
assert codec == "zfp-relacc:0.001", codec
print(f"ok: per-link attributes for links 1..{ranks} in the outputs file")
PY
# q8 adds 0.5-0.8 % relative L2 error per link (a step of (max - min) / 255 per block of 4096
# values), the last link's straight onto the outputs: measured here 0.9 % with 3 ranks, 1.05 %
# with 5.
run q8 --codec "q8,1=q8+lz4"
r=$(compare q8 3e-2); echo "q8,1=q8+lz4: $r"
grep -A$((ranks + 1)) "links:" "$out/q8.log"
grep -Eq "^ +1 +0 -> 1 +q8\+lz4 .*x " "$out/q8.log" && grep -Eq "^ +2 +1 -> 2 +q8 .*x " "$out/q8.log" ||
  { echo "FAIL: no q8 lines for links 1 and 2 in the summary"; exit 1; }
/usr/bin/python3 - "$out/q8.h5" "$ranks" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
ranks = int(sys.argv[2])
for i in range(1, ranks + 1):
    a = lambda k: f.attrs[f"link{i}_{k}"]
    codec = a("codec").decode() if isinstance(a("codec"), bytes) else a("codec")
    assert codec == ("q8+lz4" if i == 1 else "q8"), f"link {i}: codec {codec}"
    ratio = a("bytes_raw") / a("bytes_encoded")
    assert ratio > 3.9, f"link {i}: q8 ratio {ratio:.2f}"
    # q8's bound: half a step of at most 2 max|x| / 255, so max rel err <= 1/255
    assert 0 < a("error_max_rel") <= 1.001 / 255, f"link {i}: max rel err {a('error_max_rel')}"
print(f"ok: q8 on links 1..{ranks}: ratio > 3.9, max rel err <= 1/255")
PY
