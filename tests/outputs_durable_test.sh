#!/usr/bin/env bash
# Usage: outputs_durable_test.sh EDGEPIPE DATA_DIR MPIEXEC
# The progress mark's order, tested by crashing between its steps (EDGEPIPE_TEST_CRASH): after
# the rows' flush, and after the mark's write, the file keeps the previous mark; after the mark's
# flush, the new one. The rows a mark covers equal an uninterrupted run's bit for bit, and
# --resume completes the file bit for bit. A disk that fails after a mark (io-error) ends the run
# with exit 1 (no crash on the way out), the mark unmoved, and a file --resume completes; in a
# pipeline too. Every mark is fsynced twice (strace, when installed).
edgepipe=$1 data=$2 mpiexec=$3
source "$(dirname "$0")/outputs_lib.sh"
args=(--model "$data/models/resnet18.pt" --synthetic 64 --input-shape 1,3,32,32 --batch 4 --quiet)
every_batch=(--checkpoint 0.000001)  # a mark after every batch of 4 rows
"$edgepipe" single "${args[@]}" --output "$dir/ref.h5" || fail "the reference run failed"

for case in after-rows-flush:3:8 after-mark-write:3:8 after-mark-flush:3:12; do
  IFS=: read -r point n want <<< "$case"
  out=$dir/$point.h5
  EDGEPIPE_TEST_CRASH=$point:$n run_logged "$point" "$edgepipe" single "${args[@]}" "${every_batch[@]}" --output "$out"
  expect_rc "$point" 86 "test crash at $point"
  got=$(attr "$out.partial" rows_done)
  [ "$got" = "$want" ] || fail "$point: the file says $got rows done, expected $want"
  same_rows "$out.partial" "$dir/ref.h5" "$want"
  run_logged "$point-resume" "$edgepipe" single "${args[@]}" --output "$out" --resume
  expect_rc "$point-resume" 0
  same_rows "$out" "$dir/ref.h5" 64
done

echo "== a disk that fails after the second mark"
EDGEPIPE_TEST_CRASH=io-error-after-mark:2 run_logged io-error "$edgepipe" single "${args[@]}" "${every_batch[@]}" --output "$dir/io.h5"
expect_rc io-error 1 "cannot write rows \[8, 12\) of outputs .*Bad file descriptor"
grep -q "8 of 64 rows are kept in $dir/io.h5.partial; run the same command with --resume" "$dir/io-error.out" \
  || fail "no note of the rows kept"
[ "$(attr "$dir/io.h5.partial" rows_done)" = 8 ] || fail "the mark moved past the failed write"
same_rows "$dir/io.h5.partial" "$dir/ref.h5" 8
run_logged io-error-resume "$edgepipe" single "${args[@]}" --output "$dir/io.h5" --resume
expect_rc io-error-resume 0
same_rows "$dir/io.h5" "$dir/ref.h5" 64

echo "== the same in a pipeline (rank 0 fails its writes, then aborts the job)"
mpi=("$mpiexec" --oversubscribe -n 3 -x EDGEPIPE_TEST_CRASH)
run_logged pipe-io-error env EDGEPIPE_TEST_CRASH=io-error-after-mark:2 "${mpi[@]}" "$edgepipe" run "${args[@]}" \
  --checkpoint 0.000001 --output "$dir/pio.h5" --progress 0
[ "$rc" != 0 ] || fail "the pipeline succeeded although its writes failed"
grep -Eq "Segmentation|signal 11|core dumped" "$dir/pipe-io-error.out" && { cat "$dir/pipe-io-error.out"; fail "rank 0 crashed"; }
expect_rc pipe-io-error "$rc" "cannot write rows .*Bad file descriptor"
done_rows=$(attr "$dir/pio.h5.partial" rows_done)
[ "$done_rows" -ge 1 ] && [ "$done_rows" -lt 64 ] || fail "pipeline: $done_rows rows marked done"
run_logged pipe-io-resume "${mpi[@]}" "$edgepipe" run "${args[@]}" --output "$dir/pio.h5" --resume --progress 0
expect_rc pipe-io-resume 0
# The pipeline's plan is not single's: equal within float rounding.
$py "$repo/tools/compare_outputs.py" "$dir/pio.h5" --reference "$dir/ref.h5" --tol 1e-4 || fail "pipeline rows differ"

if command -v strace > /dev/null; then
  echo "== every mark is fsynced twice: rows, then the mark"
  strace -f -qq -e trace=fsync -o "$dir/trace" "$edgepipe" single "${args[@]}" "${every_batch[@]}" \
    --output "$dir/traced.h5" || fail "the traced run failed"
  syncs=$(grep -c 'fsync(' "$dir/trace")
  [ "$syncs" -ge 32 ] || fail "$syncs fsync calls for 16 marks; expected at least 32"
  echo "ok: $syncs fsync calls for 16 marks"
else
  echo "(strace is not installed: fsync calls not counted)"
fi
echo "ok: outputs_durable"
