# tests/expect.sh: what every CLI test script (tests/cli*.sh) shares; sourced, not run.
# Sets CM (default build/cm), a scratch directory $work removed on exit, the counters
# passed/failed, and the checks:
#   expect CODE PATTERN -- command...   exit code CODE and stdout+stderr matching PATTERN (grep -E)
#   one_line_error command...           the command's error is exactly one line on stderr
#   check NAME CONDITION                a shell condition on outputs (eval'ed)
#   exists FILE                         FILE exists and is not empty
# A failing check prints "FAIL: ..." with what was seen; each script ends by printing
# "<name>: N passed, N failed".
set -u
CM=${CM:-build/cm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0

expect() {
  local code=$1 pattern=$2; shift 3
  local output status
  output=$("$@" 2>&1); status=$?
  if [ "$status" -eq "$code" ] && echo "$output" | grep -qE -- "$pattern"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "  FAIL: $* -> exit $status (want $code), output:"; echo "$output" | head -5 | sed 's/^/      /'
  fi
}
one_line_error() {
  local lines; lines=$("$@" 2>&1 >/dev/null | wc -l)
  if [ "$lines" -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "  FAIL: $* printed $lines error lines"; fi
}
check() {
  if eval "$2"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "  FAIL: $1"; fi
}
exists() {
  if [ -s "$1" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "  FAIL: $1 missing or empty"; fi
}
