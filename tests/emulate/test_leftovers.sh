#!/usr/bin/env bash
# tools/emulate leaves nothing behind: after a normal run, a failing job, a SIGTERM'd emulator
# (its own cleanup) and a SIGKILL'd one (then tools/emulate --cleanup), no network namespace,
# nsfs mount, link, cgroup, state dir or process of the emulator remains. Also: a second
# instance refuses to run beside a first, and over a dead one's leftovers.
# Usage: test_leftovers.sh PINGPONG SWITCH REPO        (root; ctest label emulate)
set -uo pipefail
[ $# -eq 3 ] || { echo "usage: $0 PINGPONG SWITCH REPO" >&2; exit 2; }
pingpong=$(realpath "$1")
switch=$(realpath "$2")
repo=$(realpath "$3")
. "$repo/tests/emulate/lib.sh"
need_root
emulate=$repo/tools/emulate
work=$(mktemp -d /tmp/edgepipe-emulate-leftovers.XXXXXX)
bg=""
finish() {
  [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null
  "$emulate" --cleanup >/dev/null 2>&1
  rm -rf "$work"
  echo "emulate leftovers: $passed passed, $failed failed"
}
trap finish EXIT

cat >"$work/cluster.ini" <<'INI'
[link]
bandwidth = 1Gbit/s
latency = 2ms
[dispatcher]
cpu = 0.2
[rank.1]
count = 2
cpu = 0.2
memory = 512MiB
INI
E=("$emulate" --switch "$switch" --cluster "$work/cluster.ini" --no-check)
# another instance on a shared machine: wait for it before the first run (not in the checks
# below, where a second instance must be refused at once)
"$emulate" --cleanup --wait-lock 900 >/dev/null 2>&1

wait_for_line() { # wait_for_line FILE REGEX SECONDS
  local deadline=$((SECONDS + $3))
  until grep -qE "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

snapshot >"$work/before"

say "a normal run"
"${E[@]}" -- "$pingpong" --poll-sleep-us 50 5 65536 1 >"$work/1.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "normal run: exit 0" || { fail "normal run: exit $rc"; cat "$work/1.log"; }
snapshot >"$work/after1"
compare_snapshot "$work/before" "$work/after1" "after a normal run"

say "a failing job"
"${E[@]}" -- "$pingpong" 0 >"$work/2.log" 2>&1
rc=$?
[ $rc -ne 0 ] && pass "failing job: tools/emulate exit $rc" || fail "failing job: exit 0"
snapshot >"$work/after2"
compare_snapshot "$work/before" "$work/after2" "after a failing job"

say "SIGTERM to the emulator while the job runs"
"${E[@]}" -- sleep 60 >"$work/3.log" 2>&1 &
bg=$!
if wait_for_line "$work/3.log" '^emulate: job:' 30; then
  sleep 1
  kill -TERM "$bg"
  wait "$bg"
  rc=$?
  bg=""
  [ $rc -eq 143 ] && pass "SIGTERM: exit 143" || { fail "SIGTERM: exit $rc"; cat "$work/3.log"; }
else
  fail "SIGTERM: the job did not start"; cat "$work/3.log"
fi
snapshot >"$work/after3"
compare_snapshot "$work/before" "$work/after3" "after SIGTERM"

say "a second instance beside a running one"
"${E[@]}" --hold >"$work/4.log" 2>&1 &
bg=$!
if wait_for_line "$work/4.log" 'holding the cluster up' 30; then
  "${E[@]}" -- true >"$work/4b.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && grep -q "another tools/emulate is running" "$work/4b.log"; then
    pass "second instance refused: $(grep -o 'another tools/emulate is running.*' "$work/4b.log" | head -c 120)"
  else
    fail "second instance: exit $rc"; cat "$work/4b.log"
  fi
  kill -INT "$bg"
  wait "$bg"
  rc=$?
  bg=""
  [ $rc -eq 130 ] && pass "SIGINT to --hold: exit 130" || fail "SIGINT to --hold: exit $rc"
else
  fail "--hold did not come up"; cat "$work/4.log"
fi
snapshot >"$work/after4"
compare_snapshot "$work/before" "$work/after4" "after --hold and SIGINT"

say "SIGKILL to the emulator while the job runs, then --cleanup"
"${E[@]}" -- sleep 60 >"$work/5.log" 2>&1 &
bg=$!
if wait_for_line "$work/5.log" '^emulate: job:' 30; then
  sleep 1
  kill -KILL "$bg"
  wait "$bg" 2>/dev/null
  bg=""
  sleep 0.5
  snapshot >"$work/killed"
  if [ -n "$(comm -13 <(sort "$work/before") <(sort "$work/killed") | grep -E '^(netns|cgroup|state|process) ')" ]; then
    pass "after SIGKILL the leftovers are there (the snapshot sees them): $(comm -13 <(sort "$work/before") <(sort "$work/killed") | grep -cE '^(netns|cgroup|state|process) ') items"
  else
    fail "after SIGKILL the snapshot sees nothing: it could not see leftovers"
  fi
  "${E[@]}" -- true >"$work/5b.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && grep -q "leftovers of an earlier instance" "$work/5b.log"; then
    pass "a new instance refuses to run over the leftovers"
  else
    fail "new instance over leftovers: exit $rc"; cat "$work/5b.log"
  fi
  "$emulate" --cleanup >"$work/5c.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && pass "tools/emulate --cleanup: exit 0 ($(head -n 1 "$work/5c.log"))" || { fail "--cleanup: exit $rc"; cat "$work/5c.log"; }
else
  fail "SIGKILL: the job did not start"; cat "$work/5.log"
fi
snapshot >"$work/after5"
compare_snapshot "$work/before" "$work/after5" "after SIGKILL and --cleanup"

[ "$failed" -eq 0 ]
