#!/usr/bin/env bash
# Usage: outputs_full_disk_test.sh EDGEPIPE DATA_DIR MPIEXEC   (as root: it mounts tmpfs)
# Outputs on a small tmpfs that fills up. Too small from the start: refused before any row, naming
# what the outputs need and what is free, nothing left behind. Filled during `single`: the rows'
# blocks were reserved when the datasets were made, so the run completes with every row intact.
# Filled during a pipeline, which is then stopped (SIGTERM: exit 143, no crash on the way out),
# resumed on the full disk and killed (SIGKILL to rank 0), then resumed once space is freed: the
# file completes and every row equals an uninterrupted run's.
edgepipe=$1 data=$2 mpiexec=$3
[ "$(id -u)" = 0 ] || { echo "skipped: needs root to mount tmpfs"; exit 77; }
source "$(dirname "$0")/outputs_lib.sh"
model=(--model "$data/models/resnet18.pt" --input-shape 1,3,32,32 --quiet)

# fill FOLDER: writes a file there until the file system is full.
fill() {
  dd if=/dev/zero of="$1/filler" bs=64k > /dev/null 2>&1
  [ "$(df --output=avail "$1" | tail -1)" -lt 64 ] || fail "$1 is not full"
}

echo "== too small from the start"
new_tmpfs small 4m
run_logged small "$edgepipe" single "${model[@]}" --synthetic 2000 --output "$dir/small/out.h5"
expect_rc small 1 "not enough space for '$dir/small/out.h5.partial': the outputs \(2000 rows of 4000 bytes.*\) need 9.6 MiB, and the file system of '$dir/small' has [0-9.]+ [KM]iB free"
[ -z "$(ls -A "$dir/small")" ] || fail "files left behind: $(ls "$dir/small")"

echo "== the disk fills during single"
"$edgepipe" single "${model[@]}" --synthetic 3000 --output "$dir/ref.h5" || fail "the reference run failed"
new_tmpfs single 16m
start single "$edgepipe" single "${model[@]}" --synthetic 3000 --output "$dir/single/out.h5" --checkpoint 0.05
wait_rows "$dir/single/out.h5.partial" 8
fill "$dir/single"
finish
expect_rc single 0
same_rows "$dir/single/out.h5" "$dir/ref.h5" 3000

echo "== the disk fills during a pipeline: SIGTERM, SIGKILL, resume"
new_tmpfs pipe 16m
out=$dir/pipe/out.h5
pipeline=("$mpiexec" --oversubscribe -n 3 "$edgepipe" run "${model[@]}" --synthetic 3000 --output "$out"
          --batch 8 --checkpoint 0.05 --progress 0)
start term "${pipeline[@]}" --log "$dir/term.log.h5"
wait_rows "$out.partial" 8
fill "$dir/pipe"
before=$(attr "$out.partial" rows_done)
wait_rows "$out.partial" $((before + 100))  # streaming goes on into the reserved blocks
kill -TERM "$(rank_pid $job 0)"
finish
grep -Eq "Segmentation|signal 11|core dumped" "$dir/term.out" && { cat "$dir/term.out"; fail "a rank crashed"; }
expect_rc term 143 "SIGTERM stopped the run: [0-9]+ of 3000 rows are in $out.partial"
# The next attempts plan from the first one's measurements (its run log): quicker.
again=(--resume --profile "$dir/term.log.h5" --calibrate 0)
start kill "${pipeline[@]}" "${again[@]}" --log "$dir/kill.log.h5"
wait_rows "$out.partial" $(($(attr "$out.partial" rows_done) + 100))
kill -KILL "$(rank_pid $job 0)"
finish
rm "$dir/pipe/filler"
run_logged resume "${pipeline[@]}" "${again[@]}" --log "$dir/resume.log.h5"
expect_rc resume 0
# The pipeline's plan is not single's: equal within float rounding.
$py "$repo/tools/compare_outputs.py" "$out" --reference "$dir/ref.h5" --tol 1e-4 || fail "rows differ"
echo "ok: outputs_full_disk"
