#!/usr/bin/env bash
# The job scripts in jobs/ under a real Slurm: starts a private single-node cluster with
# tools/slurm-local, submits each job with sbatch (a small resnet18 at 64x64 px, 12 inputs),
# waits for it, checks its end state (scontrol: there is no accounting, so no sacct) and its
# log, and compares its output with `edgepipe single` (relative L2 error per row below 1e-4).
# Also: a job stopped mid-run by its time-limit signal (USR1) is requeued, resumes its partial
# file (--resume, never --overwrite) and ends with the output of an uninterrupted job. Slurm is stopped at the end, whatever happened; on failure the daemon logs and the
# job logs are printed.
#
# Usage: tests/slurm/test_jobs.sh EDGEPIPE_BINARY REPO_ROOT
# Needs root or sudo (slurmd), slurm-wlm and munge (tools/bootstrap), /usr/bin/python3 with
# torch, torchvision and h5py.
# Environment:
#   SLURM_TEST_TIMEOUT   seconds each job may take, queueing included [300]
#   SLURM_TEST_PORT      slurmctld's port of the private cluster (slurmd: the next) [6837]
#   SLURM_TEST_MODELS    where the exported test model is kept [REPO_ROOT/models/slurm-test]
# The private cluster's state is in /run/edgepipe-slurm-test (root's alone: a directory of that
# name that someone else owns, or a symlink, is refused; what a killed earlier run left there is
# stopped first, through tools/slurm-local, which kills only the daemons it verifies).
#   SLURM_TEST_KEEP=1    keep the work dir (jobs, outputs, Slurm state) even on success
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 EDGEPIPE_BINARY REPO_ROOT" >&2
  exit 2
fi
bin=$(realpath "$1")
repo=$(realpath "$2")
job_timeout=${SLURM_TEST_TIMEOUT:-300}
test_port=${SLURM_TEST_PORT:-6837}
# Checked before any arithmetic: bash runs commands hidden in an expression like a[$(cmd)].
[[ $job_timeout =~ ^[0-9]{1,6}$ ]] || { echo "SLURM_TEST_TIMEOUT must be a whole number of seconds, got '$job_timeout'" >&2; exit 2; }
[[ $test_port =~ ^[0-9]{1,5}$ ]] && [ "$test_port" -ge 1 ] && [ "$test_port" -le 65534 ] ||
  { echo "SLURM_TEST_PORT must be a port number, got '$test_port'" >&2; exit 2; }
python=/usr/bin/python3
models=${SLURM_TEST_MODELS:-$repo/models/slurm-test}

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
say() { echo "--- $*"; }

[ -x "$bin" ] || { echo "FAIL: edgepipe binary '$bin' is not executable"; exit 1; }

# Nothing from the caller's environment may steer the jobs: no job variables, no EDGEPIPE_*.
for v in $(compgen -e); do
  case $v in
    SLURM_TEST_*) ;;
    SLURM_* | SBATCH_* | SRUN_* | SALLOC_* | EDGEPIPE_*) unset "$v" ;;
  esac
done

work=$(mktemp -d /tmp/edgepipe-slurm-test.XXXXXX)
chmod 755 "$work"
# A private cluster: its own state dir and ports, so that a tools/slurm-local cluster that the
# user runs is left alone; /etc/slurm is not touched, the client commands use SLURM_CONF.
# The state dir has a fixed name, root's alone under /run, so that daemons left over by a killed
# run get stopped.
export SLURM_LOCAL_DIR=/run/edgepipe-slurm-test
export SLURM_LOCAL_PORT=$test_port
export SLURM_LOCAL_LINK_ETC=0
export SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf
slurm_local=$repo/tools/slurm-local

cleanup() {
  local rc=$?
  set +e
  if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
    say "daemon logs"
    "$slurm_local" logs
    for f in "$work"/*.out; do
      [ -e "$f" ] || continue
      say "job log $f"
      cat "$f"
    done
  fi
  say "stopping Slurm"
  "$slurm_local" stop
  if [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ] && [ "${SLURM_TEST_KEEP:-0}" != 1 ]; then
    rm -rf "$work" "$SLURM_LOCAL_DIR"
  else
    echo "kept: work dir $work, Slurm state and logs $SLURM_LOCAL_DIR"
  fi
  echo "slurm: $passed passed, $failed failed"
  if [ "$rc" -eq 0 ] && [ "$failed" -gt 0 ]; then rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- static checks: the three scripts share their settings and requeue logic ---------------
section() { # section FILE FROM TO: the lines from FROM up to (not including) TO; TO="" = end
  awk -v a="$2" -v b="$3" 'index($0, a) == 1 {on = 1} b != "" && index($0, b) == 1 {on = 0} on' "$1"
}
for f in "$repo"/jobs/edgepipe-{srun,mpirun,multinode}.sbatch; do
  bash -n "$f" || fail "bash -n $f"
done
for f in "$repo"/jobs/edgepipe-{mpirun,multinode}.sbatch; do
  for s in "# ---- settings|# ---- launch" "# ---- run, requeue-safe|"; do
    if diff <(section "$repo/jobs/edgepipe-srun.sbatch" "${s%%|*}" "${s#*|}") \
      <(section "$f" "${s%%|*}" "${s#*|}") >/dev/null; then
      pass "$(basename "$f"): section '${s%%|*}' is the same as in edgepipe-srun.sbatch"
    else
      fail "$(basename "$f"): section '${s%%|*}' differs from edgepipe-srun.sbatch"
    fi
  done
done

# ---- the cluster ------------------------------------------------------------------------------
if [ -e "$SLURM_LOCAL_DIR" ] || [ -L "$SLURM_LOCAL_DIR" ]; then
  if [ -L "$SLURM_LOCAL_DIR" ] || [ ! -d "$SLURM_LOCAL_DIR" ] || [ "$(stat -c %u "$SLURM_LOCAL_DIR")" != 0 ]; then
    fail "$SLURM_LOCAL_DIR exists and is not a directory of root's: not touching it"
    exit 1
  fi
  say "stopping what a previous run left in $SLURM_LOCAL_DIR"
  "$slurm_local" stop || true
  rm -rf "$SLURM_LOCAL_DIR"
fi
say "starting Slurm (state in $SLURM_LOCAL_DIR)"
if ! "$slurm_local" start; then
  fail "tools/slurm-local start"
  exit 1
fi
pass "tools/slurm-local start: node idle"
if sbatch --help >/dev/null 2>&1 && srun --mpi=list 2>&1 | grep -qw pmix; then
  pass "srun --mpi=list offers pmix"
else
  fail "srun --mpi=list does not offer pmix: $(srun --mpi=list 2>&1 | tr '\n' ' ')"
fi

# ---- model, input, reference ---------------------------------------------------------------------
model=$models/resnet18.pt
if [ ! -s "$model" ]; then
  say "exporting resnet18 (64x64) to $models"
  "$python" "$repo/tools/export_models.py" --out "$models" --image-size 64 resnet18
fi
input=$work/images.h5
if [ -f "$repo/tools/make_input.py" ]; then
  "$python" "$repo/tools/make_input.py" "$input" --count 12 --shape 3,64,64
else
  "$python" - "$input" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["images"] = np.random.default_rng(0).standard_normal((12, 3, 64, 64), dtype=np.float32)
EOF
fi
reference=$work/reference.h5
OPENBLAS_NUM_THREADS=1 "$bin" single --model "$model" --input "$input:/images" \
  --output "$reference" --batch 4 --threads 1

compare() { # compare OUT.h5: rows, shapes and relative L2 error per row against the reference
  "$python" - "$1" "$reference" <<'EOF'
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as f:
    out = np.asarray(f["outputs"], dtype=np.float64)
with h5py.File(sys.argv[2], "r") as f:
    ref = np.asarray(f["outputs"], dtype=np.float64)
if out.shape != ref.shape:
    sys.exit(f"shape {out.shape}, reference {ref.shape}")
if not np.all(np.isfinite(out)):
    sys.exit("non-finite values in the output")
err = np.linalg.norm(out - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-30)
print(f"{out.shape[0]} rows x {out.shape[1]}, worst relative L2 error {err.max():.2e}")
sys.exit(0 if err.max() < 1e-4 else f"relative L2 error {err.max():.2e} >= 1e-4")
EOF
}

# ---- jobs -------------------------------------------------------------------------------------
job_field() { scontrol -o show job "$1" 2>/dev/null | grep -oE "(^| )$2=[^ ]*" | head -n 1 | cut -d= -f2-; }

wait_job() { # wait_job ID: until the job has ended; prints its final state
  local id=$1 deadline=$((SECONDS + job_timeout)) state
  while [ $SECONDS -lt $deadline ]; do
    state=$(job_field "$id" JobState)
    case $state in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
        echo "$state"
        return 0
        ;;
    esac
    sleep 1
  done
  echo "TIMEOUT_IN_TEST(${state:-unknown})"
  scancel "$id" 2>/dev/null || true
  return 1
}

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}

submit() { # submit SBATCH-OPTIONS... SCRIPT: prints the job id
  (cd "$work" && EDGEPIPE_BIN=${job_bin:-$bin} EDGEPIPE_MODEL=$model \
    EDGEPIPE_INPUT=$input:/images EDGEPIPE_BATCH=4 EDGEPIPE_TIMEOUT=120 EDGEPIPE_GRACE=20 \
    sbatch --parsable --time=10 "$@")
}

check_job() { # check_job NAME ID [RESTARTS]: end state, exit code, log and output of a job
  local name=$1 id=$2 restarts=${3:-0} state code log out
  state=$(wait_job "$id") || true
  code=$(job_field "$id" ExitCode)
  log=$work/$name-$id.out
  out=$work/$name-$id.h5
  if [ "$state" = COMPLETED ] && [ "$code" = 0:0 ]; then
    pass "$name job $id: COMPLETED, exit code 0:0"
  else
    fail "$name job $id: state $state, exit code ${code:-?}"
    scontrol show job "$id" 2>&1 || true
    return 0
  fi
  if [ "$(job_field "$id" Restarts)" = "$restarts" ]; then
    pass "$name job $id: $restarts restart(s)"
  else
    fail "$name job $id: $(job_field "$id" Restarts) restarts, expected $restarts"
  fi
  if grep -q "edgepipe exit status 0" "$log" 2>/dev/null; then
    pass "$name job $id: log $(basename "$log") says the run finished"
  else
    fail "$name job $id: log $log lacks 'edgepipe exit status 0'"
  fi
  local msg
  if [ ! -s "$out" ]; then
    fail "$name job $id: no output $out"
  elif msg=$(compare "$out" 2>&1); then
    pass "$name job $id: output matches edgepipe single: $msg"
  else
    fail "$name job $id: output differs from edgepipe single: $msg"
  fi
}

say "job: jobs/edgepipe-srun.sbatch (srun --mpi=pmix, 3 ranks on 2 cores)"
id=$(submit -N 1 -n 3 --overcommit "$repo/jobs/edgepipe-srun.sbatch")
check_job edgepipe-srun "$id"

say "job: jobs/edgepipe-mpirun.sbatch (mpirun in the allocation, 3 ranks on 2 cores)"
id=$(submit -N 1 -n 3 --overcommit "$repo/jobs/edgepipe-mpirun.sbatch")
check_job edgepipe-mpirun "$id"

# The multi-node script on the one node there is: 2 ranks (--ntasks-per-node cannot exceed
# the node's CPUs, even with --overcommit).
say "job: jobs/edgepipe-multinode.sbatch on 1 node (--ntasks-per-node=2)"
id=$(submit -N 1 --ntasks-per-node=2 --cpus-per-task=1 "$repo/jobs/edgepipe-multinode.sbatch")
check_job edgepipe-multinode "$id"

# Requeue: a run stopped mid-way by USR1 (what --signal sends before the time limit) must be
# requeued and resumed from its partial file (--resume, never --overwrite: the job is submitted
# with --overwrite, which the script must drop on the requeue), and its output must equal an
# uninterrupted job's bit for bit: both plan from the uninterrupted job's run log (--profile).
rows=1200
big_input=$work/images-$rows.h5
"$python" "$repo/tools/make_input.py" "$big_input" --count $rows --shape 3,64,64 >/dev/null
h5_rows_done() { # the progress mark of a partial file (open for writing: HDF5's lock off), or -1
  HDF5_USE_FILE_LOCKING=FALSE "$python" -c "import h5py,sys; print(int(h5py.File(sys.argv[1],'r').attrs['rows_done'][0]))" "$1" 2>/dev/null || echo -1
}
submit_big() { (input=$big_input; submit -N 1 -n 3 --overcommit "$repo/jobs/edgepipe-srun.sbatch" "$@"); }
check_equal() { # check_equal A.h5 B.h5: bit for bit
  "$python" - "$1" "$2" <<'EOF2'
import sys, h5py, numpy as np
a = np.asarray(h5py.File(sys.argv[1], "r")["outputs"])
b = np.asarray(h5py.File(sys.argv[2], "r")["outputs"])
print(f"{a.shape[0]} rows, bit-equal" if a.shape == b.shape and np.array_equal(a, b) else
      f"differ: shapes {a.shape} {b.shape}")
sys.exit(0 if a.shape == b.shape and np.array_equal(a, b) else 1)
EOF2
}
say "job: jobs/edgepipe-srun.sbatch uninterrupted on $rows rows (the requeue test's reference)"
ref_id=$(submit_big --quiet)
ref_state=$(wait_job "$ref_id") || true
ref_out=$work/edgepipe-srun-$ref_id.h5
ref_log=$work/edgepipe-srun-$ref_id.log.h5
if [ "$ref_state" = COMPLETED ] && [ -s "$ref_out" ] && [ -s "$ref_log" ]; then
  pass "edgepipe-srun job $ref_id: uninterrupted reference COMPLETED"
else
  fail "edgepipe-srun job $ref_id: uninterrupted reference $ref_state (output $ref_out, log $ref_log)"
fi

say "job: jobs/edgepipe-srun.sbatch stopped by USR1 mid-run, requeued, resumed"
id=$(submit_big --progress 0 --profile "$ref_log" --calibrate 0 --checkpoint 0.5 --overwrite)
out=$work/edgepipe-srun-$id.h5
log=$work/edgepipe-srun-$id.out
marked() { [ "$(h5_rows_done "$out.partial")" -gt 0 ] || ! [[ $(job_field "$id" JobState) =~ ^(PENDING|RUNNING|CONFIGURING)$ ]]; }
wait_for "$job_timeout" marked || true
mark=$(h5_rows_done "$out.partial")
if [ "$mark" -gt 0 ] && [ "$mark" -lt $rows ] && [ ! -e "$out" ]; then
  pass "edgepipe-srun job $id: first attempt has a progress mark at row $mark of $rows"
  scancel --signal=USR1 --batch "$id"
  # Slurm holds a requeued job back for 2 minutes (BeginTime); it is let go once checked.
  requeued() { [ "$(job_field "$id" Restarts)" = 1 ] && [ "$(job_field "$id" JobState)" = PENDING ]; }
  if wait_for 60 requeued; then
    stopped_at=$(h5_rows_done "$out.partial")
    if [ ! -e "$out" ] && [ "$stopped_at" -ge "$mark" ] && [ "$stopped_at" -lt $rows ]; then
      pass "edgepipe-srun job $id: requeued after USR1 with a partial file (rows_done $stopped_at of $rows)"
    else
      fail "edgepipe-srun job $id: requeued, but the first attempt was not left partial (rows_done $stopped_at, output $([ -e "$out" ] && echo complete || echo absent))"
    fi
    scontrol update JobId="$id" StartTime=now
  else
    fail "edgepipe-srun job $id: not requeued after USR1 (state $(job_field "$id" JobState))"
  fi
  state=$(wait_job "$id") || true
  code=$(job_field "$id" ExitCode)
  if [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] && [ "$(job_field "$id" Restarts)" = 1 ]; then
    pass "edgepipe-srun job $id: COMPLETED on its second attempt, exit code 0:0"
  else
    fail "edgepipe-srun job $id: state $state, exit code ${code:-?}, $(job_field "$id" Restarts) restarts"
  fi
  second=$(grep "srun --mpi" "$log" | sed -n 2p)
  if grep -q "requeueing" "$log" && grep -q "attempt 2: resuming" "$log" &&
    grep -q -- " --resume" <<<"$second" && ! grep -q -- "--overwrite" <<<"$second"; then
    pass "edgepipe-srun job $id: second attempt passed --resume and not --overwrite"
  else
    fail "edgepipe-srun job $id: the second attempt's command is not --resume without --overwrite: ${second:-no second attempt}"
  fi
  # Where the second attempt began: its message, and its run log's row count (rows it computed).
  computed=$("$python" -c "import h5py,sys; print(int(h5py.File(sys.argv[1],'r')['summary'].attrs['images']))" "${out%.h5}.log.h5" 2>/dev/null || echo -1)
  if grep -q "resuming $out.partial at row $stopped_at of $rows" "$log" && [ $((stopped_at + computed)) = $rows ]; then
    pass "edgepipe-srun job $id: second attempt resumed at row $stopped_at and computed the other $computed rows"
  else
    fail "edgepipe-srun job $id: second attempt did not resume at row $stopped_at (computed $computed rows; log: $(grep resuming "$log" | tail -n 1))"
  fi
  if [ -s "$out" ] && msg=$(check_equal "$out" "$ref_out" 2>&1); then
    pass "edgepipe-srun job $id: output equals the uninterrupted job's: $msg"
  else
    fail "edgepipe-srun job $id: output differs from the uninterrupted job's: ${msg:-no output}"
  fi
else
  fail "edgepipe-srun job $id: no progress mark while the first attempt ran (rows_done $mark, state $(job_field "$id" JobState)): the run is too short to stop mid-way"
  scancel "$id" 2>/dev/null || true
fi

[ "$failed" -eq 0 ]
