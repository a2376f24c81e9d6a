#!/usr/bin/env bash
# The job scripts without Slurm, with fake launchers: a launcher that exits 0 but runs nothing
# (srun did so when a step failed to launch on a node) is tried 3 times and then must fail the
# job, not report success; one whose first launch runs nothing and whose second runs the ranks
# passes (a requeued job's first launch failed so in ctest slurm_jobs); a launcher that runs the
# ranks and leaves the output passes. No root, no daemons.
# Usage: tests/slurm/test_scripts.sh REPO        (ctest label slurm)
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 REPO" >&2; exit 2; }
repo=$(realpath "$1")
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
work=$(mktemp -d /tmp/edgepipe-scripts.XXXXXX)
trap 'rm -rf "$work"; echo "scripts: $passed passed, $failed failed"' EXIT
mkdir "$work/bin"
# fake launchers: `--mpi=list` offers pmix; otherwise run nothing (mode none) or make the output
cat >"$work/bin/srun" <<'SH'
#!/bin/sh
case "$1" in --mpi=list) echo "MPI plugin types are... pmix"; exit 0 ;; esac
[ "$FAKE_MODE" = none ] && exit 0
if [ "$FAKE_MODE" = once ] && [ ! -e "$FAKE_MARK" ]; then : >"$FAKE_MARK"; exit 0; fi
for a; do case $prev in --output) : >"$a" ;; esac; prev=$a; done
exit 0
SH
cp "$work/bin/srun" "$work/bin/mpirun"
chmod +x "$work/bin/srun" "$work/bin/mpirun"
: >"$work/model.pt"
for f in srun mpirun multinode; do
  for mode in none once output; do
    out=$work/out-$f-$mode.h5
    log=$(env -i PATH="$work/bin:/usr/bin:/bin" HOME="$work" FAKE_MODE=$mode FAKE_MARK="$work/mark-$f" SLURM_JOB_ID=7 SLURM_NTASKS=3 \
      SLURM_JOB_NODELIST=n1 SLURM_JOB_NUM_NODES=1 SLURM_SUBMIT_DIR="$work" EDGEPIPE_BIN=/bin/true \
      EDGEPIPE_MODEL="$work/model.pt" EDGEPIPE_SYNTHETIC=4 EDGEPIPE_OUTPUT="$out" \
      bash "$repo/jobs/edgepipe-$f.sbatch" 2>&1)
    rc=$?
    if [ $mode = none ]; then
      [ $rc -ne 0 ] && grep -q "exited 0 but there is no" <<<"$log" && [ "$(grep -c "launching again" <<<"$log")" = 2 ] &&
        pass "edgepipe-$f.sbatch: a launcher that ran nothing, 3 times, fails the job (exit $rc)" ||
        fail "edgepipe-$f.sbatch with a launcher that ran nothing: exit $rc: $(tail -n 2 <<<"$log")"
    elif [ $mode = once ]; then
      [ $rc -eq 0 ] && grep -q "launch 1 of 3 failed" <<<"$log" && grep -q "edgepipe exit status 0" <<<"$log" &&
        pass "edgepipe-$f.sbatch: a failed first launch is tried again, and the run passes" ||
        fail "edgepipe-$f.sbatch with a first launch that ran nothing: exit $rc: $(tail -n 2 <<<"$log")"
    else
      [ $rc -eq 0 ] && grep -q "edgepipe exit status 0" <<<"$log" && pass "edgepipe-$f.sbatch: a run that wrote its output passes" ||
        fail "edgepipe-$f.sbatch with a launcher that wrote the output: exit $rc: $(tail -n 2 <<<"$log")"
    fi
  done
done
[ "$failed" -eq 0 ]
