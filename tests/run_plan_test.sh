#!/usr/bin/env bash
# Usage: run_plan_test.sh EDGEPIPE REPO_DIR DATA_DIR [MODEL]
# `edgepipe plan` on MODEL (default resnet18) with the shipped cluster descriptions: the optimal
# plan's table appears, its predicted period is positive, and no baseline has a smaller period.
# Then a cluster where the model does not fit: exit 1 and one error line saying how much memory
# is missing (no stack trace), both from a cluster file and from --ranks with --max-memory.
set -u
edgepipe=$1 repo=$2 data=$3 model=${4:-resnet18}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# Small images keep the profile short; the planner does not care about the resolution.
common=(--model "$data/models/$model.pt" --input-shape 1,3,64,64 --batch 2)

for cluster in cluster-8-small cluster-mixed cluster-too-small; do
  echo "== $cluster"
  timeout 300 "$edgepipe" plan "${common[@]}" --cluster "$repo/configs/$cluster.ini" \
      >"$tmp/out" 2>"$tmp/err"
  rc=$?
  cat "$tmp/out" "$tmp/err"
  [ $rc -eq 0 ] || fail "$cluster: exit $rc"
  grep -Eq '^stage +rank +blocks +compute_ms' "$tmp/out" || fail "$cluster: no plan table"
  grep -q "speeds are relative to this machine" "$tmp/out" || fail "$cluster: no note on speeds"
  grep -Eq '^throughput: [0-9.]+ samples/s' "$tmp/out" || fail "$cluster: no throughput line"
  optimal=$(sed -nE 's/^optimal: [0-9]+ stages?, predicted period ([0-9.]+) ms.*/\1/p' "$tmp/out")
  [ -n "$optimal" ] || fail "$cluster: no predicted period"
  awk -v p="$optimal" 'BEGIN { exit !(p > 0) }' || fail "$cluster: period $optimal is not positive"
  for baseline in random greedy equal-blocks pipeedge; do
    row=$(grep -E "^  $baseline +" "$tmp/out") || fail "$cluster: no line for $baseline"
    period=$(echo "$row" | sed -nE 's/.* period +([0-9.]+) ms.*/\1/p')
    if [ -z "$period" ]; then
      echo "$row" | grep -q "no plan: " || fail "$cluster: $baseline: neither a period nor why not"
      continue
    fi
    # Periods are printed to 3 decimals: allow for the rounding.
    awk -v o="$optimal" -v b="$period" 'BEGIN { exit !(o <= b + 0.0015) }' ||
      fail "$cluster: $baseline ($period ms) beats the optimum ($optimal ms)"
  done
  [ ! -s "$tmp/err" ] || fail "$cluster: unexpected output on stderr"
done

# The model does not fit: a cluster file with two 16 MiB nodes, and --ranks with --max-memory.
cat >"$tmp/tiny.ini" <<'EOF'
[link]
bandwidth = 100Mbit/s
[rank.1]
count = 2
memory = 16MiB
EOF
expect_no_fit() {
  timeout 300 "$edgepipe" plan "${common[@]}" "$@" --no-baselines >"$tmp/out" 2>"$tmp/err"
  rc=$?
  cat "$tmp/err"
  [ $rc -eq 1 ] || fail "$*: exit $rc, expected 1"
  grep -Eq "does not fit in memory.*(missing|more on every rank)" "$tmp/err" || fail "$*: no message on missing memory"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$*: more than one line on stderr"
  ! grep -Eqi "terminate called|exception raised from|frame #" "$tmp/err" || fail "$*: stack junk"
}
echo "== tiny.ini (does not fit)"
expect_no_fit --cluster "$tmp/tiny.ini"
grep -q "tiny.ini" "$tmp/err" || fail "the error does not name the cluster file"
echo "== --ranks 2 --max-memory 16MiB (does not fit)"
expect_no_fit --ranks 2 --max-memory 16MiB
echo "ok"
