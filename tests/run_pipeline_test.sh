#!/usr/bin/env bash
# Usage: run_pipeline_test.sh EDGEPIPE REPO_DIR DATA_DIR MPIEXEC MODEL RANKS
# Runs MODEL as a pipeline of RANKS-1 stages and as one unoptimised process, and checks that
# every output row matches: relative L2 error below 1e-4.
set -eu
edgepipe=$1 repo=$2 data=$3 mpiexec=$4 model=$5 ranks=$6
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--model "$data/models/$model.pt" --input "$data/inputs.h5:images" --batch 2 --timeout 120)
"$edgepipe" single "${common[@]}" --optimize false --output "$out/ref.h5" --warmup 0
"$mpiexec" --oversubscribe --allow-run-as-root -n "$ranks" "$edgepipe" run "${common[@]}" --stages $((ranks - 1)) --output "$out/pipe.h5"
/usr/bin/python3 "$repo/tools/compare_outputs.py" "$out/pipe.h5" --reference "$out/ref.h5" --tol 1e-4
