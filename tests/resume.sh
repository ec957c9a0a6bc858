#!/usr/bin/env bash
# tests/resume.sh: a real signal to a real training process, then `cm train --resume`: the
# resumed run's final checkpoint, model and samples must be byte-identical to an uninterrupted
# run with the same seed, and train.csv the same apart from the elapsed-time column.
# Cases: SIGTERM (exit 143), SIGKILL (exit 137: the last periodic checkpoint must survive and
# load), SIGINT twice in one run (exit 130, two resumes), SIGTERM in a cd2 distillation run,
# resuming a finished run, a resume
# refused while another trainer holds the directory. Small networks; a few seconds in all.
# The model and checkpoint files record the command line that started the run (cm info), so
# each reference runs the same command, with the same relative --out, in $work/ref.
# Usage: CM=build/cm tests/resume.sh      Ends with "resume: N passed, N failed".
set -u
CM=${CM:-build/cm}
CM=$(cd "$(dirname "$CM")" && pwd)/$(basename "$CM")   # absolute: runs start in other directories
work=$(mktemp -d)
mkdir -p "$work/ref"
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
passed=0; failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "  FAIL: $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then pass; else fail "$what"; fi; }

STEPS=4000        # long enough that the signal lands mid-run, short enough to take a second
SAVE_EVERY=100
WAIT_LIMIT=3000   # polls of 10 ms: 30 s before a missing checkpoint counts as a failure
# --keep 100 keeps every numbered checkpoint, so the one a case waits for cannot be pruned
# between two polls (a fast run on a busy machine did exactly that)
net=(--width 32 --depth 2 --batch 64 --steps "$STEPS" --save-every "$SAVE_EVERY" --keep 100 --quiet)

# wait_for FILE PID: until FILE exists (0), or PID ended or the time ran out (1)
wait_for() {
  local i
  for ((i = 0; i < WAIT_LIMIT; i++)); do
    [ -e "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { [ -e "$1" ]; return; }
    sleep 0.01
  done
  return 1
}
step_file() { printf '%s/checkpoints/step-%08d.safetensors' "$1" "$2"; }

# reference NAME ARGS...: the uninterrupted run and its samples
reference() {
  local name=$1; shift
  env -C "$work/ref" "$CM" train "$@" "${net[@]}" --out "$name" || fail "$name: reference run"
  "$CM" sample --model "$work/ref/$name/model.safetensors" --n 2000 --sigmas 10,0.911283 --seed 9 \
    --out "$work/ref/$name/s.npy" --quiet || fail "$name: reference samples"
}

# interrupt NAME SIGNAL AT_STEP EXPECTED_STATUS CMD...: run CMD in the background, send SIGNAL
# once the checkpoint of AT_STEP exists, and check the exit status
interrupt() {
  local name=$1 sig=$2 at=$3 want=$4; shift 4
  "$@" 2>"$work/$name.err" & local pid=$!; pids+=("$pid")
  if ! wait_for "$(step_file "$work/$name" "$at")" "$pid"; then
    fail "$name: no checkpoint of step $at appeared"; wait "$pid" 2>/dev/null; return
  fi
  kill "-$sig" "$pid"
  wait "$pid" 2>/dev/null; local status=$?
  if [ "$status" -eq "$want" ]; then pass; else fail "$name: SIG$sig gave exit $status, want $want"; fi
  if [ "$sig" != KILL ]; then
    check "$name: no 'stopped by SIG$sig ... --resume' message" \
      grep -qE "^cm train: stopped by SIG$sig after step [0-9]+ of $STEPS; saved .*; continue with: cm train --resume " "$work/$name.err"
  fi
}

# compare NAME: the resumed run against its reference, byte for byte
compare() {
  local name=$1 run=$work/$1 ref=$work/ref/$1
  "$CM" sample --model "$run/model.safetensors" --n 2000 --sigmas 10,0.911283 --seed 9 \
    --out "$run/s.npy" --quiet || fail "$name: samples of the resumed run"
  check "$name: final checkpoint differs" cmp "$ref/checkpoint.safetensors" "$run/checkpoint.safetensors"
  check "$name: model differs" cmp "$ref/model.safetensors" "$run/model.safetensors"
  check "$name: samples differ" cmp "$ref/s.npy" "$run/s.npy"
  check "$name: train.csv differs (apart from elapsed)" \
    diff <(cut -d, -f1-3,5,6 "$ref/train.csv") <(cut -d, -f1-3,5,6 "$run/train.csv")
  check "$name: config.json differs" cmp "$ref/config.json" "$run/config.json"
}

# --- SIGTERM: saved at the step it arrived, exit 143, resumed to the same bytes
term=(--data 8gaussians --method ict --seed 3)
reference term "${term[@]}"
interrupt term TERM 200 143 env -C "$work" "$CM" train "${term[@]}" "${net[@]}" --out term
check "term: checkpoint.safetensors missing after SIGTERM" test -e "$work/term/checkpoint.safetensors"
check "term: the stopped run's checkpoint does not load as a model" \
  "$CM" sample --model "$work/term/checkpoint.safetensors" --n 10 --out "$work/term-partial.npy" --quiet
check "term: resume failed" "$CM" train --resume "$work/term" --quiet
compare term

# --- SIGKILL: no handler runs; the last periodic checkpoint must survive and load
kill_args=(--data moons --method ct --target-ema -1 --seed 4)
reference kill "${kill_args[@]}"
interrupt kill KILL 300 137 env -C "$work" "$CM" train "${kill_args[@]}" "${net[@]}" --out kill
check "kill: the last periodic checkpoint does not load" \
  "$CM" sample --model "$work/kill/checkpoint.safetensors" --n 10 --out "$work/kill-partial.npy" --quiet
check "kill: resume failed" "$CM" train --resume "$work/kill" --quiet
compare kill

# --- SIGINT twice (the sequential [LHW] teacher: stage and frozen snapshot), two resumes
int_args=(--data rings --method lhw --teacher sequential --T 20 --seed 5)
reference int "${int_args[@]}"
interrupt int INT 200 130 env -C "$work" "$CM" train "${int_args[@]}" "${net[@]}" --out int
interrupt int INT 1500 130 "$CM" train --resume "$work/int" --quiet
check "int: second resume failed" "$CM" train --resume "$work/int" --quiet
compare int
rows=$(cut -d, -f1 "$work/int/train.csv" | sed 1d | sort -n | uniq | wc -l)
check "int: train.csv does not hold each step once" test "$rows" -eq "$STEPS"

# --- SIGTERM during two-time distillation (cd2, exact-law teacher: the target EMA and the
# teacher rebuilt on resume)
cd2_args=(--data gauss:d=2,mean=1,std=0.5 --method cd2 --seed 6)
reference cd2 "${cd2_args[@]}"
interrupt cd2 TERM 300 143 env -C "$work" "$CM" train "${cd2_args[@]}" "${net[@]}" --out cd2
check "cd2: resume failed" "$CM" train --resume "$work/cd2" --quiet
compare cd2

# --- a finished run resumes to itself; a locked directory is refused
before=$(md5sum < "$work/term/model.safetensors")
check "finished: resuming a finished run failed" "$CM" train --resume "$work/term" --quiet
check "finished: the model changed" test "$before" = "$(md5sum < "$work/term/model.safetensors")"
"$CM" train --data 8gaussians --steps 200000 --width 32 --depth 2 --batch 64 --quiet \
  --out "$work/busy" 2>/dev/null & busy=$!; pids+=("$busy")
if wait_for "$work/busy/train.csv" "$busy"; then
  out=$("$CM" train --resume "$work/busy" 2>&1); status=$?
  if [ "$status" -eq 1 ] && echo "$out" | grep -q "another cm train is writing"; then pass
  else fail "busy: a second trainer was not refused (exit $status: $out)"; fi
else
  fail "busy: the trainer did not start"
fi
kill -TERM "$busy" 2>/dev/null; wait "$busy" 2>/dev/null

echo "resume: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
