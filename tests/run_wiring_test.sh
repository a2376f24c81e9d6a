#!/usr/bin/env bash
# Usage: run_wiring_test.sh EDGEPIPE DATA_DIR MPIEXEC
# The checks of issue 18 that `edgepipe run` makes, rank 0 (src/pipeline/dispatcher.cpp) calling
# the io/ functions that `single` calls: every path checked before any work, the output locked
# for the run, the identity with the codec, the complete file checked on --resume, NaN outputs
# reported, a stop during profiling giving 143.
edgepipe=$1 data=$2 mpiexec=$3
source "$(dirname "$0")/outputs_lib.sh"
args=(run --model "$data/models/resnet18.pt" --input-shape 1,3,32,32 --progress 0)
run=("$mpiexec" --oversubscribe -n 3 "$edgepipe" "${args[@]}")
$py "$repo/tools/make_input.py" "$dir/in.h5" --count 6 --shape 3,32,32 > /dev/null

echo "== paths, before any measuring"
touch "$dir/taken.log.h5"
for case in "log-is-output|--output $dir/a.h5 --log $dir/a.h5|--log '$dir/a.h5' is the same file as --output" \
            "output-is-input|--output $dir/in.h5 --overwrite|it is the --input file" \
            "log-exists|--output $dir/b.h5 --log $dir/taken.log.h5|run log '$dir/taken.log.h5' exists; pass --overwrite" \
            "log-folder|--output $dir/c.h5 --log $dir/none/x.log.h5|the folder of run log '$dir/none/x.log.h5' does not exist"; do
  IFS='|' read -r name flags regex <<< "$case"
  # shellcheck disable=SC2086
  run_logged "$name" "${run[@]}" --input "$dir/in.h5:images" $flags
  expect_rc "$name" 1 "$regex"
  grep -q "measuring" "$dir/$name.out" && fail "$name: refused only after measuring the ranks"
done

echo "== a second job fails at once"
start a "${run[@]}" --synthetic 20000 --output "$dir/two.h5" --checkpoint 0.2
for _ in $(seq 600); do [ -e "$dir/two.h5.lock" ] && break; sleep 0.1; done
run_logged b "${run[@]}" --synthetic 20000 --output "$dir/two.h5" --overwrite
expect_rc b 1 "'$dir/two.h5' is being written by another edgepipe job"
grep -q "measuring" "$dir/b.out" && fail "the second job measured its ranks before refusing"
kill -TERM "$(rank_pid $job 0)"
finish

echo "== identity: codecs, a complete file"
run_logged crash env EDGEPIPE_TEST_CRASH=after-mark-flush:2 "$mpiexec" --oversubscribe -x EDGEPIPE_TEST_CRASH \
  -n 3 "$edgepipe" "${args[@]}" --synthetic 64 --batch 4 --checkpoint 0.000001 --output "$dir/mix.h5"
[ "$(attr "$dir/mix.h5.partial" rows_done)" = 8 ] || fail "the crashed run did not leave 8 rows"
run_logged mix "${run[@]}" --synthetic 64 --batch 4 --output "$dir/mix.h5" --resume --codec zfp-rate:4
expect_rc mix 1 "its rows were computed with other settings"
run_logged done "${run[@]}" --synthetic 64 --batch 4 --output "$dir/mix.h5" --resume
expect_rc done 0
run_logged seed "${run[@]}" --synthetic 64 --seed 5 --output "$dir/mix.h5" --resume
expect_rc seed 1 "it was made from other inputs"

echo "== NaN outputs, a stop while profiling"
nan_model "$dir/nan.pt"
run_logged nan "$mpiexec" --oversubscribe -n 2 "$edgepipe" run --model "$dir/nan.pt" --input-shape 1,4 \
  --synthetic 6 --output "$dir/nan.h5" --strict
expect_rc nan 1 "output row 0 contains NaN or Inf"
start stop "${run[@]/1,3,32,32/32,3,224,224}" --synthetic 64 --output "$dir/stop.h5"
for _ in $(seq 600); do
  grep -q "measuring" "$dir/stop.out" && break
  sleep 0.1
done
kill -TERM "$(rank_pid $job 0)"
finish
expect_rc stop 143 "SIGTERM arrived while"
echo "ok: run wiring"
