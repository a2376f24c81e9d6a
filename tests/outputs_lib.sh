# Shared by the outputs-file tests (outputs_*_test.sh, signals_test.sh): a private scratch
# folder and tmpfs mounts, removed on every exit; checks that name what went wrong.
# Source it after setting: edgepipe (binary), data (test data folder).
set -u
py=/usr/bin/python3
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(mktemp -d /tmp/edgepipe-test.XXXXXX)
mounts=()
jobs_started=()
cleanup() {
  for p in "${jobs_started[@]}"; do kill -KILL "$p" 2> /dev/null; done
  wait 2> /dev/null
  for m in "${mounts[@]}"; do umount -l "$m" 2> /dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

fail() {
  echo "FAIL: $*"
  exit 1
}

# new_tmpfs NAME SIZE: a tmpfs of SIZE (e.g. 6m) on $dir/NAME; prints its path. Needs root.
new_tmpfs() {
  mkdir -p "$dir/$1"
  mount -t tmpfs -o "size=$2" tmpfs "$dir/$1" || fail "cannot mount a tmpfs (needs root)"
  mounts+=("$dir/$1")
}

# run_logged NAME CMD...: runs CMD with its output in $dir/NAME.out; prints nothing, sets $rc.
run_logged() {
  local name=$1
  shift
  timeout 120 "$@" > "$dir/$name.out" 2>&1
  rc=$?
  grep -h edgepipe "$dir/$name.out" | tail -5
}

# start NAME CMD...: runs CMD in the background, its output in $dir/NAME.out; sets $job.
start() {
  local name=$1
  shift
  "$@" > "$dir/$name.out" 2>&1 &
  job=$!
  jobs_started+=("$job")
}

# finish: waits for the job start began; sets $rc.
finish() {
  wait "$job"
  rc=$?
}

# nan_model PATH: a TorchScript model (one tensor of 4 in and out) whose outputs are all NaN.
nan_model() {
  $py - "$1" << 'PY'
import sys, torch
class Nan(torch.nn.Module):
    def forward(self, x):
        return torch.log(-torch.relu(x) - 1.0)
torch.jit.save(torch.jit.trace(Nan(), torch.randn(1, 4)), sys.argv[1])
PY
}

# expect_rc NAME WANT [REGEX]: the last run_logged NAME exited with WANT (and said REGEX).
expect_rc() {
  [ "$rc" = "$2" ] || { cat "$dir/$1.out"; fail "$1: exit $rc, expected $2"; }
  [ $# -lt 3 ] || grep -Eq -e "$3" "$dir/$1.out" || { cat "$dir/$1.out"; fail "$1: no line matches: $3"; }
  echo "ok: $1 (exit $rc)"
}

# attr FILE NAME: a root attribute of an HDF5 file (HDF5's lock off: the file may be open).
attr() {
  HDF5_USE_FILE_LOCKING=FALSE $py -c "import h5py,sys; v=h5py.File(sys.argv[1],'r').attrs[sys.argv[2]]; print(v[0] if hasattr(v,'__len__') and not isinstance(v,bytes) else v.decode() if isinstance(v,bytes) else v)" "$1" "$2" 2> /dev/null
}

# same_rows OUT REF N: rows [0, N) of OUT's /outputs equal REF's bit for bit.
same_rows() {
  $py - "$1" "$2" "$3" << 'PY' || fail "rows [0, $3) of $1 differ from $2"
import sys, h5py, numpy as np
out, ref, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = h5py.File(out, "r")["outputs"][:n]
b = h5py.File(ref, "r")["outputs"][:n]
bad = np.flatnonzero((a != b).any(axis=1))
if len(bad):
    print(f"{len(bad)} of {n} rows differ, the first: row {bad[0]}")
    sys.exit(1)
PY
}

# wait_rows FILE N: waits (at most 60 s) until FILE's progress mark covers N rows.
wait_rows() {
  for _ in $(seq 600); do
    [ "$(attr "$1" rows_done)" -ge "$2" ] 2> /dev/null && return 0
    sleep 0.1
  done
  fail "$1 never reached $2 rows done"
}

# rank_pid JOB RANK: the pid of that rank among the processes under mpirun's pid JOB.
rank_pid() {
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"
      return
    fi
  done
}
