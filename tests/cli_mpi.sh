#!/usr/bin/env bash
# tests/cli_mpi.sh: data-parallel training over MPI gives the bits of one process
# (docs/distributed.md), proved without the CLI by the programs of `make MPI=1 mpi`:
# - mpi_check: the communicator against the single-process tree (R = 1..4, every block count);
# - mpi_train for ict, lhw (sequential teacher), dsm and cd (exact teacher of a gauss: law),
#   6 row blocks: the same state hash with R = 1, 2 and 4 processes (4 oversubscribed on 2 cores;
#   ranges of 2, 2, 1, 1 blocks), the same as a run without MPI (--single), and the same
#   evaluation weights as `cm train` with the same settings (CM, the default build's CLI);
#   ict also with 5 blocks on 3 processes, and with 3 blocks on 2 processes of 2 threads each
#   (a lone block runs on the calling thread: OpenBLAS's thread count must not change its bits);
# - a checkpoint written by rank 0 of an R = 2 run, resumed with R = 1 and R = 4: the same final
#   state as the uninterrupted run;
# - a rank killed with SIGKILL mid-run ends the job with a non-zero status within 60 s (rank 0
#   and rank 1), and a failure on every process (too few blocks) exits non-zero with its message.
# Fails (and says so) when mpirun or the MPI programs are missing.
# Usage: CM=build/cm MPI_BUILD=build-mpi tests/cli_mpi.sh     (scripts/run-tests builds both)
# Ends with "cli_mpi: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
MPI_BUILD=${MPI_BUILD:-build-mpi}
train=$MPI_BUILD/mpi_train

if ! command -v mpirun >/dev/null 2>&1; then
  echo "  FAIL: mpirun is missing (scripts/deps installs openmpi-bin and libopenmpi-dev)"
  echo "cli_mpi: 0 passed, 1 failed"; exit 1
fi
if [ ! -x "$train" ] || [ ! -x "$MPI_BUILD/mpi_check" ]; then
  echo "  FAIL: $train or $MPI_BUILD/mpi_check is missing (make MPI=1 mpi)"
  echo "cli_mpi: 0 passed, 1 failed"; exit 1
fi
mpirun=(mpirun --oversubscribe --bind-to none)
if [ "$(id -u)" -eq 0 ]; then mpirun+=(--allow-run-as-root); fi
run() { timeout 300 "${mpirun[@]}" -np "$@"; }   # run R PROGRAM ARGS...

# state_of OUTPUT: the "state <hash>" of mpi_train's line; weights_of: the weights hash
state_of() { sed -n 's/.* state \([0-9a-f]*\) .*/\1/p' <<<"$1"; }
weights_of() { sed -n 's/.*weights \([0-9a-f]*\).*/\1/p' <<<"$1"; }

# --- the communicator alone
for R in 1 2 3 4; do
  expect 0 "mpi_check \($R processes\): [0-9]+ passed, 0 failed" -- run $R "$MPI_BUILD/mpi_check"
done

# --- training: R = 1, 2, 4 and no MPI give one state; `cm train` the same weights
small="--batch 64 --seed 3 --set width=32 --set depth=2 --set embed=8"
declare -A setting=(
  [ict]="--method ict --steps 40"
  [lhw]="--method lhw --steps 40 --set T=20 --set teacher=sequential"
  [dsm]="--method dsm --steps 40"
  [cd]="--method cd --steps 40 --set cd_levels=6"
)
declare -A cli=(
  [ict]="--method ict --steps 40"
  [lhw]="--method lhw --steps 40 --T 20 --teacher sequential"
  [dsm]="--method dsm --steps 40"
  [cd]="--method cd --steps 40 --cd-levels 6"
)
declare -A final=()   # each method's state after its 40 steps
for m in ict lhw dsm cd; do
  args="--data gauss:d=3 --blocks 6 ${setting[$m]} $small"
  single=$("$train" --single $args 2>&1)
  reference=$(state_of "$single")
  final[$m]=$reference
  check "$m: a run without MPI prints its state ($single)" '[ -n "$reference" ]'
  for R in 1 2 4; do
    output=$(run $R "$train" $args --out "$work/$m-$R.safetensors" 2>&1)
    check "$m, $R processes: state $(state_of "$output") (want $reference): $output" \
      '[ "$(state_of "$output")" = "$reference" ] && ! grep -q "processes differ" <<<"$output"'
  done
  exists "$work/$m-4.safetensors"
  check "$m: rank 0's model file of R = 4 equals R = 1's" 'cmp -s "$work/$m-1.safetensors" "$work/$m-4.safetensors"'
  if [ -x "$CM" ]; then
    "$CM" train --data gauss:d=3 --blocks 6 ${cli[$m]} --batch 64 --seed 3 --width 32 --depth 2 \
      --embed 8 --quiet --out "$work/cli-$m" >"$work/cli-$m.log" 2>&1
    theirs=$("$train" --hash-model "$work/cli-$m/model.safetensors" 2>&1)
    check "$m: cm train's weights $(weights_of "$theirs") equal mpi_train's $(weights_of "$single")" \
      '[ -n "$(weights_of "$single")" ] && [ "$(weights_of "$theirs")" = "$(weights_of "$single")" ]'
  else
    check "$m: the CLI $CM to compare with" false
  fi
done
args="--data gauss:d=3 --blocks 5 --method ict --steps 30 $small"
reference=$(state_of "$("$train" --single $args 2>&1)")
output=$(run 3 "$train" $args 2>&1)
check "ict, 5 blocks on 3 processes: $output (want $reference)" '[ -n "$reference" ] && [ "$(state_of "$output")" = "$reference" ]'

# 2 threads per process, products large enough for OpenBLAS's threads, 3 blocks on 2 processes:
# the process with one block runs it alone on its calling thread, and gets the same bits
args="--data gauss:d=64 --blocks 3 --method ict --steps 2 --batch 192 --set width=512 --threads 2"
reference=$(state_of "$("$train" --single $args 2>&1)")
output=$(run 2 "$train" $args 2>&1)
check "ict, 3 blocks on 2 processes of 2 threads: $output (want $reference)" '[ -n "$reference" ] && [ "$(state_of "$output")" = "$reference" ]'

# --- checkpoint of an R = 2 run, resumed with R = 1 and R = 4
for m in ict lhw dsm cd; do
  args="--data gauss:d=3 --blocks 6 ${setting[$m]} $small"
  reference=${final[$m]}
  output=$(run 2 "$train" $args --stop-at 17 --checkpoint "$work/$m-ck.safetensors" 2>&1)
  check "$m: a checkpoint at step 17 ($output)" 'grep -q "steps 17 " <<<"$output" && [ -s "$work/$m-ck.safetensors" ]'
  for R in 1 4; do
    output=$(run $R "$train" --resume "$work/$m-ck.safetensors" 2>&1)
    check "$m: resumed with $R processes: $output (want $reference)" \
      '[ -n "$reference" ] && [ "$(state_of "$output")" = "$reference" ] && grep -q "steps 40 " <<<"$output"'
  done
done

# --- failures end the job
expect 1 "every process needs a block" -- run 4 "$train" --data gauss:d=3 --blocks 2 --method ict $small
# kill_rank RANK: SIGKILL one rank of a long run; the job must end non-zero within 60 s
kill_rank() {
  local victim=$1 launcher ranks pid target="" i start status
  "${mpirun[@]}" -np 2 "$train" --data gauss:d=16 --blocks 4 --method ict --steps 1000000 \
    --batch 256 --set width=128 >"$work/kill-$victim.log" 2>&1 &
  launcher=$!
  for i in $(seq 1 300); do   # the ranks are mpirun's children
    ranks=$(ps -o pid= --ppid "$launcher" | tr -d ' ')
    [ "$(wc -w <<<"$ranks")" -ge 2 ] && break
    sleep 0.1
  done
  for pid in $ranks; do   # Open MPI gives each rank its number in the environment
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$victim"; then target=$pid; fi
  done
  check "rank $victim of the run to kill found among mpirun's children ($ranks)" '[ -n "$target" ]'
  sleep 2   # into the training steps
  [ -n "$target" ] && kill -9 "$target"
  start=$SECONDS
  while kill -0 "$launcher" 2>/dev/null && [ $((SECONDS - start)) -lt 60 ]; do sleep 0.2; done
  if kill -0 "$launcher" 2>/dev/null; then
    check "rank $victim killed: the job still runs after 60 s" false
    for i in $ranks; do kill -9 "$i" 2>/dev/null; done; kill -9 "$launcher" 2>/dev/null
  fi
  wait "$launcher"; status=$?
  check "rank $victim killed: the job ends with a non-zero status ($status) in $((SECONDS - start)) s" '[ "$status" -ne 0 ]'
  check "rank $victim killed: no rank is left running" \
    '! ps -o stat= -p "$(tr "\n" , <<<"$ranks" | sed "s/,$//")" | grep -qv "^Z"'
}
kill_rank 1
kill_rank 0

echo "cli_mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
