#!/usr/bin/env bash
# Runs every cmocka test program given as an argument (TAP output), prints
# each result and a closing "N passed, N failed" line; exits non-zero on any
# failure. A program that crashes counts as one failure.
set -u
passed=0 failed=0
for t in "$@"; do
  out=$(CMOCKA_MESSAGE_OUTPUT=TAP "$t" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^(not )?ok |^# ' | sed "s|^|$(basename "$t"): |"
  p=$(printf '%s\n' "$out" | grep -cE '^ok ')
  f=$(printf '%s\n' "$out" | grep -cE '^not ok ')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "$(basename "$t"): crashed or failed (exit $rc)"; printf '%s\n' "$out" | tail -20
    f=1
  elif [ "$f" -gt 0 ]; then
    printf '%s\n' "$out" | grep -vE '^(not )?ok ' | tail -40
  fi
  passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
