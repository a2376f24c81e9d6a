#!/usr/bin/env bash
# Usage: expect_failure.sh REGEX COMMAND...
# Passes when COMMAND exits non-zero within 100 s and its output matches REGEX (grep -E).
set -u
regex=$1
shift
out=$(timeout 100 "$@" 2>&1)
rc=$?
echo "$out" | tail -20
if [ $rc -eq 0 ]; then echo "FAIL: the command succeeded; expected an error"; exit 1; fi
if [ $rc -eq 124 ]; then echo "FAIL: the command hung (killed after 100 s)"; exit 1; fi
if ! echo "$out" | grep -Eq -e "$regex"; then echo "FAIL: exit $rc, but no line matches: $regex"; exit 1; fi
echo "ok: exit $rc with the expected message"
