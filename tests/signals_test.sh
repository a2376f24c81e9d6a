#!/usr/bin/env bash
# Usage: signals_test.sh EDGEPIPE DATA_DIR MPIEXEC
# Every phase stops promptly on SIGINT or SIGTERM with exit status 128 + the signal and a message
# saying where: inspect's and plan's profiling, single's warm-up and its loop over the rows (whose
# progress is kept: the mark covers the rows it names), and run's calibration and the stage ranks'
# warm-up, with the signal sent to a stage rank only (a stage rank passes it on to rank 0, which
# ends the run). Before, the handlers made these phases ignore the signals: Ctrl-C did nothing
# until the phase ended, and a stage rank's SIGTERM waited for the stream.
edgepipe=$1 data=$2 mpiexec=$3
source "$(dirname "$0")/outputs_lib.sh"
resnet=$data/models/resnet18.pt

# stop_after NAME SIGNAL WHEN WANT_RC REGEX CMD...: starts CMD, sends SIGNAL after WHEN seconds,
# or once the file WHEN exists and a second more; CMD must end within 20 s of it with WANT_RC,
# saying REGEX.
stop_after() {
  local name=$1 sig=$2 when=$3 want=$4 regex=$5
  shift 5
  start "$name" "$@"
  if [[ $when == /* ]]; then
    for _ in $(seq 1200); do
      [ -e "$when" ] && break
      sleep 0.1
    done
    sleep 1
  else
    sleep "$when"
  fi
  kill -0 $job 2> /dev/null || { cat "$dir/$name.out"; fail "$name ended before the signal"; }
  kill -"$sig" $job
  local t0=$SECONDS
  finish
  [ $((SECONDS - t0)) -le 20 ] || fail "$name took $((SECONDS - t0)) s to stop"
  expect_rc "$name" "$want" "$regex"
}

profiling="SIGINT arrived while (loading the model|profiling the model|timing the|preparing the blocks).*: stopped"
stop_after inspect INT 4 130 "$profiling" \
  "$edgepipe" inspect "$resnet" --input-shape 16,3,224,224
stop_after plan INT 4 130 "$profiling" \
  "$edgepipe" plan --model "$resnet" --ranks 2 --input-shape 1,3,224,224 --batch 16 --no-baselines
# The outputs file is made just before the warm-up.
stop_after warmup TERM "$dir/warmup.h5.partial" 143 "SIGTERM arrived during the warm-up: stopped; no row was written yet" \
  "$edgepipe" single --model "$resnet" --synthetic 4 --input-shape 1,3,224,224 --warmup 100000 \
  --output "$dir/warmup.h5"
[ ! -e "$dir/warmup.h5.partial" ] || fail "an empty partial file was left behind"

start loop "$edgepipe" single --model "$resnet" --synthetic 100000 --input-shape 1,3,32,32 \
  --warmup 0 --checkpoint 0.1 --output "$dir/loop.h5"
wait_rows "$dir/loop.h5.partial" 4
kill -TERM $job
finish
expect_rc loop 143 "SIGTERM arrived while computing the rows: stopped; [0-9]+ of 100000 rows are kept in $dir/loop.h5.partial; run the same command with --resume"
said=$(grep -Eo "[0-9]+ of 100000 rows are kept" "$dir/loop.out" | cut -d' ' -f1)
[ "$(attr "$dir/loop.h5.partial" rows_done)" = "$said" ] || fail "the file's mark is not the $said rows said"
# run: EDGEPIPE_TEST_CRASH makes the phase last (base/test_hooks.h); SIGTERM goes to the stage
# ranks only (pids under mpirun), once rank 0 has said the phase began.
stop_stage_ranks() {
  local name=$1 when=$2 regex=$3 hook=$4
  shift 4
  start "$name" env EDGEPIPE_TEST_CRASH="$hook" "$mpiexec" --oversubscribe -x EDGEPIPE_TEST_CRASH -n 3 \
    "$edgepipe" run --model "$resnet" --input-shape 1,3,32,32 --synthetic 8 --progress 0 \
    --output "$dir/$name.h5" "$@"
  for _ in $(seq 1200); do
    grep -Eq "$when" "$dir/$name.out" && break
    sleep 0.1
  done
  sleep 2
  kill -0 $job 2> /dev/null || { cat "$dir/$name.out"; fail "$name ended before the signal"; }
  for r in 1 2; do
    p=$(rank_pid $job $r)
    [ -z "$p" ] || kill -TERM "$p"
  done
  local t0=$SECONDS
  for _ in $(seq 300); do
    kill -0 $job 2> /dev/null || break
    sleep 0.1
  done
  kill -0 $job 2> /dev/null && { cat "$dir/$name.out"; fail "$name still runs 30 s after the signal"; }
  finish
  [ $((SECONDS - t0)) -le 20 ] || fail "$name took $((SECONDS - t0)) s to stop"
  expect_rc "$name" 143 "$regex"
}
# A 1-stage plan is calibrated too (the whole model timed as one module; before, it skipped
# calibration and a run that planned one stage ended before the signal).
stop_stage_ranks calibration "measured [0-9]+ link" \
  "SIGTERM arrived at a stage rank while calibrating the plan: stopped" slow_calibration --stages 1
stop_stage_ranks stage-warmup "^plan: " \
  "SIGTERM arrived at rank [12] while it warmed up stage [01]: stopped" slow_warmup --stages 2
echo "ok: signals"
