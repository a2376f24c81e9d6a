#!/usr/bin/env bash
# Usage: run_plan_replicas_test.sh EDGEPIPE REPO_DIR DATA_DIR [MODEL]
# `edgepipe plan` with replicas (issue 16): by default it prints the plan with replicas beside the
# best single pipeline and the predicted speed-up, whose figure is the ratio of the two printed
# periods; on clusters where replicas pay it is above 1 and the table names several ranks for a
# stage. `--max-replicas 1` prints no replicas; a negative value is an error naming the option.
set -u
edgepipe=$1 repo=$2 data=$3 model=${4:-resnet18}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
common=(--model "$data/models/$model.pt" --input-shape 1,3,64,64 --batch 2 --no-baselines)

check_pays() {  # ARGS...: replicas are printed and predicted to pay
  timeout 300 "$edgepipe" plan "${common[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  cat "$tmp/out" "$tmp/err"
  [ $rc -eq 0 ] || fail "$*: exit $rc"
  grep -q '^plan with replicas (as many per stage as pay):' "$tmp/out" || fail "$*: no replicated plan"
  grep -q '^best single pipeline (one rank per stage):' "$tmp/out" || fail "$*: no single pipeline"
  grep -q ' (with replicas)' "$tmp/out" || fail "$*: the replicated plan has no replicas"
  line=$(grep -E '^replicas: predicted period' "$tmp/out") || fail "$*: no speed-up line"
  read -r rep single ratio < <(echo "$line" |
    sed -nE 's/^replicas: predicted period ([0-9.]+) ms against ([0-9.]+) ms for the single pipeline: ([0-9.]+)x faster$/\1 \2 \3/p')
  [ -n "${ratio:-}" ] || fail "$*: speed-up line not as expected: $line"
  # The figure is the ratio of the printed periods (3 decimals each, the ratio 2).
  awk -v r="$rep" -v s="$single" -v x="$ratio" 'BEGIN { q = s / r; exit !(x > 1 && q - x < 0.011 && x - q < 0.011) }' ||
    fail "$*: ${ratio}x is not $single / $rep or not above 1"
  # The single pipeline is the plan `run` runs: the optimal plan printed above.
  optimal=$(sed -nE 's/^optimal: [0-9]+ stages?, predicted period ([0-9.]+) ms.*/\1/p' "$tmp/out" | head -1)
  [ "$optimal" = "$single" ] || fail "$*: single pipeline $single ms, optimal plan $optimal ms"
  echo "$* -> ${ratio}x"
}

echo "== 4 ranks like this machine"
check_pays --ranks 4 --max-memory 2GiB
echo "== emulate-mixed"
check_pays --cluster "$repo/configs/emulate-mixed.ini"

echo "== --max-replicas 1"
timeout 300 "$edgepipe" plan "${common[@]}" --ranks 4 --max-memory 2GiB --max-replicas 1 \
    >"$tmp/out" 2>"$tmp/err" || fail "--max-replicas 1: exit $?"
cat "$tmp/out"
grep -q '^replicas: none (--max-replicas 1)$' "$tmp/out" || fail "--max-replicas 1: no 'replicas: none'"
! grep -q 'with replicas' "$tmp/out" || fail "--max-replicas 1: a plan with replicas"

echo "== --max-replicas -1"
timeout 60 "$edgepipe" plan "${common[@]}" --ranks 4 --max-replicas -1 >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/err"
[ $rc -ne 0 ] || fail "--max-replicas -1 accepted"
grep -q -- '--max-replicas must be' "$tmp/err" || fail "--max-replicas -1: no message naming it"
echo PASS
