#!/usr/bin/env bash
# The tools that run as root do not trust paths or values another user can plant (issue 18).
# Each check fails on the code before the fix:
#   - tools/slurm-local refuses a state dir that another user made first (old: mkdir -p took it
#     and wrote slurm.conf into it), and a state dir that is a symlink;
#   - it writes slurm.conf through a new file and a rename: a symlink planted at slurm.conf is
#     replaced, its target untouched (old: the write followed it);
#   - `stop` kills only a PID that is the daemon it claims to be (old: any PID in the pid file);
#   - numbers from the environment are checked before arithmetic: a value like a[$(touch F)]
#     is rejected and F is never made (tools/slurm-local, tests/slurm/test_jobs.sh, the job
#     scripts' EDGEPIPE_GRACE and EDGEPIPE_TCP_EAGER_LIMIT);
#   - tools/emulate refuses a lock file that is a symlink and a state root that is not root's.
# Usage: tests/slurm/test_security.sh REPO        (root; ctest labels slurm;security)
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 REPO" >&2; exit 2; }
repo=$(realpath "$1")
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
say() { echo "--- $*"; }
sl=$repo/tools/slurm-local
work=$(mktemp -d /tmp/edgepipe-security.XXXXXX)
chmod 755 "$work"
victim_pid=""
cleanup() {
  [ -n "$victim_pid" ] && kill "$victim_pid" 2>/dev/null
  rm -rf "$work" "${own:-}" "${root_dir:-}" "${link_dir:-}"
  echo "security: $passed passed, $failed failed"
}
trap cleanup EXIT
other=nobody
id "$other" >/dev/null 2>&1 || { echo "SKIP: no user '$other'"; exit 77; }

say "a state dir that another user made first"
own=$(mktemp -u /tmp/edgepipe-slurm-planted.XXXXXX)
mkdir -m 0777 "$own"
chown "$other" "$own"
out=$(SLURM_LOCAL_DIR=$own SLURM_LOCAL_LINK_ETC=0 "$sl" conf 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "owned by uid" <<<"$out" && [ -z "$(ls -A "$own")" ]; then
  pass "refused, nothing written: $out"
else
  fail "state dir of user $other: exit $rc, contents '$(ls -A "$own")': $out"
fi
out=$(SLURM_LOCAL_DIR=$own SLURM_LOCAL_LINK_ETC=0 "$sl" start 2>&1)
rc=$?
[ $rc -ne 0 ] && [ -z "$(ls -A "$own")" ] && pass "start refused it too" || fail "start in a state dir of user $other: exit $rc: $out"

say "a state dir that is a symlink"
link_dir=$(mktemp -u /tmp/edgepipe-slurm-link.XXXXXX)
ln -s "$work" "$link_dir"
out=$(SLURM_LOCAL_DIR=$link_dir SLURM_LOCAL_LINK_ETC=0 "$sl" conf 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q symlink <<<"$out" && [ ! -e "$work/slurm.conf" ] && pass "refused: $out" || fail "symlinked state dir: exit $rc: $out"

say "a symlink planted at slurm.conf"
root_dir=$(mktemp -d /run/edgepipe-security.XXXXXX)
chmod 755 "$root_dir"
echo "precious" >"$work/victim"
ln -s "$work/victim" "$root_dir/slurm.conf"
out=$(SLURM_LOCAL_DIR=$root_dir SLURM_LOCAL_LINK_ETC=0 "$sl" conf 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$work/victim")" = precious ] && [ ! -L "$root_dir/slurm.conf" ] &&
  grep -q '^ClusterName=local' "$root_dir/slurm.conf"; then
  pass "the link was replaced by the new file, its target untouched"
else
  fail "symlinked slurm.conf: exit $rc, victim now '$(head -c 60 "$work/victim")': $out"
fi

say "stop kills only the daemons it verifies"
sleep 300 &
victim_pid=$!
echo "$victim_pid" >"$root_dir/slurmctld.pid"
echo "$victim_pid" >"$root_dir/slurmd.pid"
SLURM_LOCAL_DIR=$root_dir SLURM_LOCAL_LINK_ETC=0 SLURM_LOCAL_TIMEOUT=5 "$sl" stop >"$work/stop.log" 2>&1
if kill -0 "$victim_pid" 2>/dev/null; then
  pass "an unrelated process named by the pid files is alive after stop"
else
  fail "stop killed pid $victim_pid, which is not a Slurm daemon: $(cat "$work/stop.log")"
fi

say "numbers from the environment: no commands run"
marker=$work/marker
# Two forms: a[...] (the issue's example; under `set -u` bash stops at the unset name a before
# the subscript, so scripts with set -u need a set name to fall for it) and PATH[...], which
# runs the command in any script that puts the value in $(( )).
injects=("a[\$(touch $marker)]" "PATH[\$(touch $marker)]")
check_inject() { # check_inject WHAT VAR COMMAND...: COMMAND with VAR=each injection must fail and not create the marker
  local what=$1 var=$2 out rc inject
  shift 2
  for inject in "${injects[@]}"; do
    rm -f "$marker"
    out=$(env "$var=$inject" "$@" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && [ ! -e "$marker" ]; then
      pass "$what=${inject%%[*}[...]: rejected ($(tail -n 1 <<<"$out" | head -c 150))"
    else
      fail "$what=${inject%%[*}[...]: exit $rc, marker $([ -e "$marker" ] && echo MADE || echo absent): $(tail -n 2 <<<"$out")"
    fi
  done
}
# `start`: the old code evaluated both in arithmetic before (port) or while (timeout) starting
check_inject "SLURM_LOCAL_PORT" SLURM_LOCAL_PORT env SLURM_LOCAL_DIR="$root_dir" SLURM_LOCAL_LINK_ETC=0 "$sl" start
check_inject "SLURM_LOCAL_TIMEOUT" SLURM_LOCAL_TIMEOUT env SLURM_LOCAL_DIR="$root_dir" SLURM_LOCAL_LINK_ETC=0 SLURM_LOCAL_PORT=6857 "$sl" start
check_inject "SLURM_TEST_TIMEOUT (test_jobs.sh)" SLURM_TEST_TIMEOUT "$repo/tests/slurm/test_jobs.sh" /bin/true "$repo"
check_inject "SLURM_TEST_PORT (test_jobs.sh)" SLURM_TEST_PORT "$repo/tests/slurm/test_jobs.sh" /bin/true "$repo"
# the job scripts, outside Slurm but with what they read of it; a fake srun that offers pmix
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "MPI plugin types are... pmix"\n' >"$work/bin/srun"
chmod +x "$work/bin/srun"
: >"$work/model.pt"
job_env=(env PATH="$work/bin:$PATH" SLURM_JOB_ID=1 SLURM_SUBMIT_DIR="$work" EDGEPIPE_BIN=/bin/true
  EDGEPIPE_MODEL="$work/model.pt" EDGEPIPE_SYNTHETIC=1 EDGEPIPE_OUTDIR="$work")
check_inject "EDGEPIPE_TCP_EAGER_LIMIT (edgepipe-multinode.sbatch)" EDGEPIPE_TCP_EAGER_LIMIT \
  "${job_env[@]}" bash "$repo/jobs/edgepipe-multinode.sbatch"
for f in srun mpirun multinode; do
  check_inject "EDGEPIPE_GRACE (edgepipe-$f.sbatch)" EDGEPIPE_GRACE "${job_env[@]}" bash "$repo/jobs/edgepipe-$f.sbatch"
done
check_inject "SLURM_RESTART_COUNT (edgepipe-srun.sbatch)" SLURM_RESTART_COUNT "${job_env[@]}" bash "$repo/jobs/edgepipe-srun.sbatch"

say "tools/emulate: its lock and state root"
if [ -e /run/edgepipe-emulate.lock ] && ! flock -n /run/edgepipe-emulate.lock true; then
  echo "(an emulator runs: lock checks skipped)"
else
  saved=""
  if [ -e /run/edgepipe-emulate.lock ]; then saved=$work/lock.saved; mv /run/edgepipe-emulate.lock "$saved"; fi
  ln -s "$work/planted-lock" /run/edgepipe-emulate.lock
  out=$("$repo/tools/emulate" --cleanup 2>&1)
  rc=$?
  rm -f /run/edgepipe-emulate.lock
  [ -n "$saved" ] && mv "$saved" /run/edgepipe-emulate.lock
  [ $rc -ne 0 ] && grep -q refusing <<<"$out" && [ ! -e "$work/planted-lock" ] && pass "a symlinked lock file is refused: $out" ||
    fail "symlinked lock: exit $rc: $out"
  if [ ! -e /run/edgepipe-emulate ] || rmdir /run/edgepipe-emulate 2>/dev/null; then
    mkdir -m 0777 /run/edgepipe-emulate
    chown "$other" /run/edgepipe-emulate
    printf '[link]\nbandwidth = 1Gbit/s\n[rank.1]\ncpu = 0.2\nmemory = 256MiB\n' >"$work/c.ini"
    out=$("$repo/tools/emulate" --cluster "$work/c.ini" --no-check -- /bin/true 2>&1)
    rc=$?
    contents=$(ls -A /run/edgepipe-emulate)
    rmdir /run/edgepipe-emulate
    [ $rc -ne 0 ] && grep -q "refusing" <<<"$out" && [ -z "$contents" ] && pass "a state root owned by $other is refused: $(tail -n 1 <<<"$out")" ||
      fail "state root of $other: exit $rc, contents '$contents': $out"
  else
    echo "(/run/edgepipe-emulate holds an instance: state root check skipped)"
  fi
fi

[ "$failed" -eq 0 ]
