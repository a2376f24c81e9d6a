#!/usr/bin/env bash
# Usage: outputs_guard_test.sh EDGEPIPE DATA_DIR MPIEXEC
# Nobody in: a second job on an output that a first one streams to fails at once, naming the
# first, and the first completes intact; a partial file deleted or replaced during a run stops it
# at the next mark; --output that is the input, a directory, or on a read-only file system is
# refused before any work, with the reason; --resume on a complete file checks that it was made
# from this model, these inputs and these settings; an unreadable input chunk names its rows;
# NaN outputs are reported (refused with --strict); a directory is no config file.
edgepipe=$1 data=$2 mpiexec=$3
source "$(dirname "$0")/outputs_lib.sh"
resnet=$data/models/resnet18.pt
small=(--model "$resnet" --input-shape 1,3,32,32)
long=("${small[@]}" --synthetic 2000 --batch 1 --checkpoint 0.1)  # streams for a few seconds

# start_long NAME OUT: a long single run in the background, once it has marked rows; sets $job.
start_long() {
  start "$1" "$edgepipe" single "${long[@]}" --output "$2"
  wait_rows "$2.partial" 4
}

$py "$repo/tools/make_input.py" "$dir/in.h5" --count 6 --shape 3,32,32 > /dev/null

echo "== two jobs on one output"
start_long a "$dir/two.h5"
a=$job
t0=$(date +%s)
run_logged b "$edgepipe" single "${long[@]}" --output "$dir/two.h5" --overwrite
expect_rc b 1 "'$dir/two.h5' is being written by another edgepipe job \(pid $a on .*; lock '$dir/two.h5.lock'\)"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the second job took more than 30 s to fail"
job=$a
finish
expect_rc a 0
$py - "$dir/two.h5" << 'PY' || fail "the first job's outputs were damaged"
import sys, h5py, numpy as np
o = h5py.File(sys.argv[1], "r")["outputs"][:]
zero = int((np.abs(o).sum(axis=1) == 0).sum())
print(f"{zero} of {len(o)} rows are all zeros")
sys.exit(1 if zero else 0)
PY
[ ! -e "$dir/two.h5.lock" ] || fail "the lock file outlived its job"

for how in deleted replaced overwritten; do
  echo "== the partial file $how during the run"
  start_long "$how" "$dir/$how.h5"
  case $how in
    deleted) rm "$dir/$how.h5.partial" ;;
    replaced) cp "$dir/in.h5" "$dir/new" && mv "$dir/new" "$dir/$how.h5.partial" ;;
    overwritten) cp "$dir/in.h5" "$dir/$how.h5.partial" ;;
  esac
  finish
  expect_rc "$how" 1 "'$dir/$how.h5.partial' was (deleted or replaced|truncated or overwritten) while this run wrote it"
done
[ -e "$dir/replaced.h5.partial" ] || fail "the file that replaced the partial one was removed"

echo "== outputs that would replace inputs, or cannot be written"
sum=$(sha256sum < "$dir/in.h5")
run_logged same "$edgepipe" single "${small[@]}" --input "$dir/in.h5:images" --output "$dir/in.h5" --overwrite
expect_rc same 1 "refusing to write --output '$dir/in.h5': it is the --input file"
[ "$(sha256sum < "$dir/in.h5")" = "$sum" ] || fail "the input file was changed"
mkdir "$dir/folder.h5"
run_logged folder "$edgepipe" single "${small[@]}" --synthetic 4 --output "$dir/folder.h5" --overwrite
expect_rc folder 1 "--output '$dir/folder.h5' is a directory|output file '$dir/folder.h5' is a directory"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$dir/ro"
  mount -t tmpfs -o ro,size=1m tmpfs "$dir/ro" && mounts+=("$dir/ro")
  run_logged ro "$edgepipe" single "${small[@]}" --synthetic 4 --output "$dir/ro/out.h5"
  expect_rc ro 1 "cannot write output file '$dir/ro/out.h5': its folder '$dir/ro' is not writable \(Read-only file system\)"
  run_logged ro-run "$mpiexec" --oversubscribe -n 3 "$edgepipe" run "${small[@]}" --synthetic 4 --output "$dir/ro/out.h5"
  expect_rc ro-run 1 "\(Read-only file system\)"
  grep -q "measuring" "$dir/ro-run.out" && fail "the pipeline measured its ranks before refusing"
fi

echo "== --resume on a complete file checks where it came from"
"$edgepipe" single "${small[@]}" --synthetic 8 --output "$dir/done.h5" --quiet || fail "run failed"
run_logged same-again "$edgepipe" single "${small[@]}" --synthetic 8 --output "$dir/done.h5" --resume
expect_rc same-again 0 "is complete already: nothing to resume"
run_logged other-model "$edgepipe" single --model "$data/models/mobilenet_v2.pt" --input-shape 1,3,32,32 \
  --synthetic 8 --output "$dir/done.h5" --resume
expect_rc other-model 1 "cannot resume '$dir/done.h5': it holds the outputs of another model"
run_logged other-input "$edgepipe" single "${small[@]}" --synthetic 8 --seed 2 --output "$dir/done.h5" --resume
expect_rc other-input 1 "cannot resume '$dir/done.h5': it was made from other inputs"
run_logged other-settings "$edgepipe" single "${small[@]}" --synthetic 8 --optimize false --output "$dir/done.h5" --resume
expect_rc other-settings 1 "cannot resume '$dir/done.h5': its rows were computed with other settings"

echo "== an input chunk that cannot be read"
$py - "$dir/bad.h5" << 'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("images", data=np.random.default_rng(0).standard_normal((6, 3, 32, 32), dtype=np.float32),
                         chunks=(1, 3, 32, 32), compression="gzip")
    info = d.id.get_chunk_info(2)
with open(sys.argv[1], "r+b") as f:
    f.seek(info.byte_offset + 10)
    f.write(b"\xff" * 64)
PY
run_logged chunk "$edgepipe" single --model "$resnet" --input "$dir/bad.h5:images" --output "$dir/chunk.h5"
expect_rc chunk 1 "cannot read input rows \[2, 3\) of $dir/bad.h5:images"

echo "== NaN: inputs refused with --strict, outputs reported, and refused with --strict"
run_logged nan-in "$edgepipe" single --model "$resnet" --input "$data/nan.h5:images" --output "$dir/nan-in.h5" --strict
expect_rc nan-in 1 "input row 2 contains NaN or Inf \(--strict refuses them\)"
nan_model "$dir/nan.pt"
run_logged nan-out "$edgepipe" single --model "$dir/nan.pt" --synthetic 6 --input-shape 1,4 --output "$dir/nan-out.h5"
expect_rc nan-out 0 "warning: output row 0 contains NaN or Inf: the model computed it"
grep -q "6 output rows contained NaN or Inf" "$dir/nan-out.out" || fail "no count of the NaN rows"
run_logged nan-strict "$edgepipe" single --model "$dir/nan.pt" --synthetic 6 --input-shape 1,4 --output "$dir/nan-strict.h5" --strict
expect_rc nan-strict 1 "output row 0 contains NaN or Inf: the model computed it \(--strict refuses them\)"

echo "== a directory is no config file"
run_logged config "$edgepipe" single --config "$dir" --model x.pt --synthetic 1 --output "$dir/c.h5"
expect_rc config 2 "config file '$dir' is a directory"
echo "ok: outputs_guard"
