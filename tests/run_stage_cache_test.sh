#!/usr/bin/env bash
# Usage: run_stage_cache_test.sh EDGEPIPE REPO_DIR DATA_DIR MPIEXEC
# The stage cache (run --stage-cache DIR, issue 15): a first run into a fresh folder sends every
# stage and keeps it (DIR/<sha256>.pt, the folder created 0700, no temporary file left); a second
# run takes every stage from the cache and receives less than 1% of the first run's set-up bytes;
# a corrupted entry is found (a warning), not used, sent again and replaced; a folder that is a
# symlink or writable by its group is not used (a warning says why); --stage-cache off writes
# nothing, and the default folder is $SLURM_TMPDIR/edgepipe-stages-<uid> (set for every run here:
# Open MPI keeps its own files in $TMPDIR). Every run's outputs match
# `edgepipe single`. Runs after the first plan from its log (--profile): the same stages.
set -euo pipefail
edgepipe=$1 repo=$2 data=$3 mpiexec=$4
unset EDGEPIPE_STAGE_CACHE  # ctest sets it for every test (tests/CMakeLists.txt); here: each case's
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cache=$out/cache  # does not exist yet: the first run creates it
mkdir "$out/tmp"   # $SLURM_TMPDIR of every run
common=(--model "$data/models/resnet18.pt" --input "$data/inputs.h5:images" --timeout 120 --batch 2)
plan=(--stages 2 --max-replicas 1)
mpi=("$mpiexec" --oversubscribe --allow-run-as-root)
py=/usr/bin/python3
"$edgepipe" single "${common[@]}" --optimize false --output "$out/ref.h5" --warmup 0 --quiet

run() {  # run NAME OPTIONS...: a 3-rank job (2 stages), its outputs checked against single's
  local name=$1
  shift
  SLURM_TMPDIR="$out/tmp" "${mpi[@]}" -n 3 "$edgepipe" run "${common[@]}" \
    "${plan[@]}" --output "$out/$name.h5" "$@" > "$out/$name.txt" 2>&1 ||
    { cat "$out/$name.txt"; echo "FAIL: run $name failed"; exit 1; }
  grep "^.*stages: [0-9]* from the nodes' caches" "$out/$name.txt" ||
    { cat "$out/$name.txt"; echo "FAIL: run $name: no stage cache line"; exit 1; }
  "$py" "$repo/tools/compare_outputs.py" "$out/$name.h5" --reference "$out/ref.h5" --tol 1e-4
}
expect_line() {  # expect_line NAME REGEX
  grep -Eq "$2" "$out/$1.txt" || { cat "$out/$1.txt"; echo "FAIL: run $1 does not say: $2"; exit 1; }
}
# check_log NAME HITS [MAX_SETUP_BYTES]: the log's per-rank hits (e.g. "0 0"), echoes the total
# set-up bytes.
check_log() {
  "$py" - "$out/$1.log.h5" "$2" "${3:-}" <<'PY'
import sys, h5py
path, hits, most = sys.argv[1], [int(h) for h in sys.argv[2].split()], sys.argv[3]
with h5py.File(path, "r") as f:
    ranks = sorted((int(r), g) for r, g in f["ranks"].items() if r != "0")
    got = [int(g.attrs["stage_cache_hit"]) for _, g in ranks]
    sizes = [int(g.attrs["setup_bytes"]) for _, g in ranks]
assert got == hits, f"{path}: stage_cache_hit per stage rank {got}, expected {hits}"
assert all(s > 0 for s in sizes), sizes
for h, s in zip(got, sizes):  # a stage of resnet18 is megabytes; a set-up without it is not
    assert (s < 100000) == (h == 1), f"{path}: setup_bytes {sizes} for hits {got}"
if most:
    assert sum(sizes) < int(most), f"{path}: {sum(sizes)} set-up bytes, expected < {most}"
print(sum(sizes))
PY
}
check_entries() {  # check_entries DIR COUNT: COUNT entries, each named by its SHA-256, 0700
  "$py" - "$1" "$2" <<'PY'
import hashlib, os, stat, sys
d, n = sys.argv[1], int(sys.argv[2])
st = os.lstat(d)
assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
names = sorted(os.listdir(d))
assert len(names) == n and all(x.endswith(".pt") for x in names), names
for x in names:
    with open(os.path.join(d, x), "rb") as e:
        assert hashlib.sha256(e.read()).hexdigest() + ".pt" == x, f"{x} does not hold its bytes"
PY
}

# Run 1: a fresh folder: every stage sent, and kept.
run first --stage-cache "$cache"
expect_line first "stages: 0 from the nodes' caches, 2 sent"
first=$(check_log first "0 0" | tail -1)
check_entries "$cache" 2

# Run 2: the same stages (planned from run 1's log): every one from the cache.
again=(--profile "$out/first.log.h5")
run second --stage-cache "$cache" "${again[@]}"
expect_line second "stages: 2 from the nodes' caches, 0 sent"
second=$(check_log second "1 1" $((first / 100)) | tail -1)
echo "set-up bytes: run 1 $first, run 2 $second"
check_entries "$cache" 2

# Run 3: one entry corrupted (a byte flipped): found, not used, sent again and replaced.
victim=$(ls "$cache" | head -1)
"$py" - "$cache/$victim" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000)
    b = f.read(1)
    f.seek(1000)
    f.write(bytes([b[0] ^ 0xFF]))
PY
run third --stage-cache "$cache" "${again[@]}"
expect_line third "stage cache entry $cache/$victim is corrupt"
expect_line third "stages: 1 from the nodes' caches, 1 sent"
"$py" - "$out/third.log.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    hits = sorted(int(g.attrs["stage_cache_hit"]) for r, g in f["ranks"].items() if r != "0")
assert hits == [0, 1], hits
PY
check_entries "$cache" 2  # the victim holds its bytes again

# A folder that is a symlink, or writable by its group: not used, with a warning; nothing written.
ln -s "$cache" "$out/link"
run link --stage-cache "$out/link" "${again[@]}"
expect_line link "stage cache $out/link: it is a symbolic link \(refused\); this rank runs without"
expect_line link "stages: 0 from the nodes' caches, 2 sent"
check_log link "0 0" > /dev/null
mkdir -m 0770 "$out/shared"
chmod 0770 "$out/shared"
run shared --stage-cache "$out/shared" "${again[@]}"
expect_line shared "stage cache $out/shared: it is writable by its group \(mode 0770; refused"
expect_line shared "stages: 0 from the nodes' caches, 2 sent"
test -z "$(ls -A "$out/shared")" || { ls -la "$out/shared"; echo "FAIL: wrote into $out/shared"; exit 1; }

# --stage-cache off: nothing written, not even in the default folder; the default is
# $SLURM_TMPDIR/edgepipe-stages-<uid>, created 0700.
run off --stage-cache off "${again[@]}"
expect_line off "stages: 0 from the nodes' caches, 2 sent"
test -z "$(ls -A "$out/tmp")" || { ls -laR "$out/tmp"; echo "FAIL: --stage-cache off wrote"; exit 1; }
run default "${again[@]}"
check_entries "$out/tmp/edgepipe-stages-$(id -u)" 2
# $EDGEPIPE_STAGE_CACHE, a site's default, comes before $SLURM_TMPDIR; the option before it.
EDGEPIPE_STAGE_CACHE="$out/site" run site "${again[@]}"
check_entries "$out/site" 2
EDGEPIPE_STAGE_CACHE=off run site_off "${again[@]}"
expect_line site_off "stages: 0 from the nodes' caches, 2 sent"
echo "stage cache ok: set-up bytes run 1 $first, run 2 $second"
