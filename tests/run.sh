#!/usr/bin/env bash
# Runs every cmocka test program given as an argument (TAP output) and prints
# what failed, with the program's last lines, then a closing "N passed, N
# failed" line; exits non-zero on any failure. A program that crashes counts
# as one failure. VERBOSE=1 prints every test's result and notes too.
set -u
passed=0 failed=0
for t in "$@"; do
  name=$(basename "$t")
  out=$(CMOCKA_MESSAGE_OUTPUT=TAP "$t" 2>&1); rc=$?
  [ "${VERBOSE:-0}" = 1 ] && printf '%s\n' "$out" | grep -E '^(not )?ok |^# ' | sed "s|^|$name: |"
  p=$(printf '%s\n' "$out" | grep -cE '^ok ')
  f=$(printf '%s\n' "$out" | grep -cE '^not ok ')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "$name: crashed or failed (exit $rc)"; printf '%s\n' "$out" | tail -20
    f=1
  elif [ "$f" -gt 0 ]; then
    printf '%s\n' "$out" | grep -E '^not ok ' | sed "s|^|$name: |"
    printf '%s\n' "$out" | grep -vE '^(not )?ok ' | tail -40
  fi
  passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
