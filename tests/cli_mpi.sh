#!/usr/bin/env bash
# tests/cli_mpi.sh: `mpirun -np R cm train|sweep|nfe` gives the bytes of one process
# (docs/distributed.md). With the MPI build (MPI_BUILD/cm, `make MPI=1 mpi`) against the plain
# build (CM):
# - the communicator alone (mpi_check, R = 1..4, every block count) and the library program
#   mpi_train (R = 2 against --single);
# - cm train, MLP: every method (ict, ct, lhw with the sequential teacher, dsm, cd and cd2 with
#   the exact teacher of a gauss: law, cd with a dsm --teacher-model) with R = 1, 2 and 4
#   (4 oversubscribed on 2 cores; 6 blocks: ranges 2, 2, 1, 1): model.safetensors and the
#   checkpoint byte-identical to the plain build's run (the same relative --out, so the same
#   recorded command line); 5 blocks on 3 processes; 3 blocks on 2 processes of 2 threads; the
#   MPI build started without mpirun equals the plain build;
# - cm train, U-Net (tiny: shapes:size=8, base_channels 4, res_blocks 1): ict with R = 1, 2, 4,
#   dsm, and cd distilling that dsm (--teacher-model read by every process), byte-identical;
# - stopping: SIGTERM to rank 1 alone stops every process after the same step, rank 0 saves and
#   the job exits 143; SIGKILL of rank 1, then of rank 0, ends the job non-zero within 60 s with
#   no rank left; each run resumes with another process count (4, 1, 3) and ends byte-identical
#   to the uninterrupted run;
# - refusals: --blocks below R (exit 2, said once), a resume with more processes than blocks, a
#   command that runs as one process (cm sample); a loss that is not finite ends every process;
# - cm sweep and cm nfe: R = 2 and 3 write the serial run's CSV, figure and stdout byte for byte.
# Fails (and says so) when mpirun or the programs are missing; never skips.
# Usage: CM=build/cm MPI_BUILD=build-mpi tests/cli_mpi.sh     (scripts/run-tests builds both)
# Ends with "cli_mpi: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
MPI_BUILD=${MPI_BUILD:-build-mpi}
CM=$(realpath "$CM" 2>/dev/null || echo "$CM")
MCM=$(realpath "$MPI_BUILD/cm" 2>/dev/null || echo "$MPI_BUILD/cm")

if ! command -v mpirun >/dev/null 2>&1; then
  echo "  FAIL: mpirun is missing (scripts/deps installs openmpi-bin and libopenmpi-dev)"
  echo "cli_mpi: 0 passed, 1 failed"; exit 1
fi
for program in "$MCM" "$MPI_BUILD/mpi_check" "$MPI_BUILD/mpi_train" "$CM"; do
  if [ ! -x "$program" ]; then
    echo "  FAIL: $program is missing (make build/cm; make MPI=1 mpi)"
    echo "cli_mpi: 0 passed, 1 failed"; exit 1
  fi
done
# yield_when_idle: the machine's cores are shared, and a rank that busy-polls for a message
# holds the core its peer needs (a scheduler quantum per message); a cluster node would poll
mpirun=(mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
if [ "$(id -u)" -eq 0 ]; then mpirun+=(--allow-run-as-root); fi
run() { timeout 300 "${mpirun[@]}" -np "$@"; }   # run R PROGRAM ARGS...

# same_run NAME DIR_A DIR_B: DIR_A/run and DIR_B/run hold byte-identical models and checkpoints
same_run() {
  local a=$2 b=$3
  check "$1: model.safetensors equal ($a, $b)" 'cmp -s "$a/run/model.safetensors" "$b/run/model.safetensors"'
  check "$1: checkpoint equal ($a, $b)" 'cmp -s "$a/run/checkpoint.safetensors" "$b/run/checkpoint.safetensors"'
}
# train_in DIR R ARGS...: cm train ARGS --out run inside DIR (R = 0: the plain build, no mpirun)
train_in() {
  local dir=$1 processes=$2 code; shift 2
  mkdir -p "$dir"
  if [ "$processes" -eq 0 ]; then (cd "$dir" && "$CM" train "$@" --quiet --out run) >"$dir.log" 2>&1
  else (cd "$dir" && run "$processes" "$MCM" train "$@" --quiet --out run) >"$dir.log" 2>&1; fi
  code=$?
  check "$dir: cm train exits 0, not $code ($(tail -n 3 "$dir.log" | tr '\n' ' '))" '[ "$code" -eq 0 ]'
}

# --- the communicator alone, and the library program
for R in 1 2 3 4; do
  expect 0 "mpi_check \($R processes\): [0-9]+ passed, 0 failed" -- run $R "$MPI_BUILD/mpi_check"
done
state_of() { sed -n 's/.* state \([0-9a-f]*\) .*/\1/p' <<<"$1"; }
args="--data gauss:d=3 --blocks 4 --method ict --steps 20 --batch 64 --set width=32"
single=$(state_of "$("$MPI_BUILD/mpi_train" --single $args 2>&1)")
check "mpi_train: 2 processes give the state of one ($single)" \
  '[ -n "$single" ] && [ "$(state_of "$(run 2 "$MPI_BUILD/mpi_train" $args 2>&1)")" = "$single" ]'

# --- cm train, MLP: every method, R = 1, 2, 4 against the plain build
small="--batch 64 --blocks 6 --seed 3 --width 32 --depth 2 --embed 8 --steps 30 --save-every 10"
declare -A method=(
  [ict]="--data gauss:d=3 --method ict"
  [ct]="--data gauss:d=3 --method ct"
  [lhw]="--data gauss:d=3 --method lhw --T 20 --teacher sequential"
  [dsm]="--data moons --method dsm"
  [cd]="--data gmm:d=2,k=3 --method cd --cd-levels 6"
  [cd2]="--data gmm:d=2,k=3 --method cd2 --cd-levels 6"
)
for m in ict ct lhw dsm cd cd2; do
  train_in "$work/$m-plain" 0 ${method[$m]} $small
  for R in 1 2 4; do
    train_in "$work/$m-$R" "$R" ${method[$m]} $small
    same_run "mlp $m, $R processes" "$work/$m-plain" "$work/$m-$R"
  done
done
teacher="--data moons --method cd --cd-levels 6 --teacher-model $work/dsm-plain/run"
train_in "$work/cdt-plain" 0 $teacher $small
train_in "$work/cdt-4" 4 $teacher $small
same_run "mlp cd with a dsm teacher model, 4 processes" "$work/cdt-plain" "$work/cdt-4"
odd="--data gauss:d=3 --method ict --batch 60 --blocks 5 --steps 20 --width 32"
train_in "$work/odd-plain" 0 $odd
train_in "$work/odd-3" 3 $odd
same_run "5 blocks on 3 processes" "$work/odd-plain" "$work/odd-3"
# products large enough for OpenBLAS's threads; the process with one block runs it on its
# calling thread and must get the bits it gets among others
wide="--data gauss:d=64 --method ict --batch 192 --blocks 3 --steps 2 --width 512 --threads 2"
train_in "$work/wide-plain" 0 $wide
train_in "$work/wide-2" 2 $wide
same_run "3 blocks on 2 processes of 2 threads" "$work/wide-plain" "$work/wide-2"
expect 0 "communication, rank 0 of 2: reduction .* received [0-9.e-]+[1-9][0-9.e-]* MB/step" -- \
  run 2 "$MCM" train ${method[ict]} $small --out "$work/talk"
mkdir -p "$work/alone" && (cd "$work/alone" && "$MCM" train ${method[ict]} $small --quiet --out run) >/dev/null 2>&1
same_run "the MPI build started without mpirun" "$work/ict-plain" "$work/alone"

# --- cm train, U-Net
unet="--data shapes:size=8 --network unet --base-channels 4 --res-blocks 1 --groups 2 --embed 8 --batch 16 --blocks 4 --seed 2 --steps 6 --save-every 3"
train_in "$work/unet-plain" 0 $unet --method ict
for R in 1 2 4; do
  train_in "$work/unet-$R" "$R" $unet --method ict
  same_run "unet ict, $R processes" "$work/unet-plain" "$work/unet-$R"
done
train_in "$work/unet-dsm-plain" 0 $unet --method dsm
train_in "$work/unet-dsm-2" 2 $unet --method dsm
same_run "unet dsm, 2 processes" "$work/unet-dsm-plain" "$work/unet-dsm-2"
distil="$unet --method cd --cd-levels 6 --teacher-model $work/unet-dsm-plain/run"
train_in "$work/unet-cd-plain" 0 $distil
train_in "$work/unet-cd-4" 4 $distil
same_run "unet cd with a dsm teacher model, 4 processes" "$work/unet-cd-plain" "$work/unet-cd-4"

# --- stopping and resuming with another process count
long="--data gauss:d=8 --method ict --batch 128 --blocks 4 --seed 5 --width 64 --steps 4000 --save-every 500 --quiet"
mkdir -p "$work/full" && (cd "$work/full" && "$CM" train $long --out run) >/dev/null 2>&1
exists "$work/full/run/model.safetensors"
# interrupt NAME SIGNAL RANK: start an R = 2 run in $work/NAME, wait for its first checkpoint,
# send SIGNAL to RANK alone; the job must end non-zero within 60 s with no rank left running.
# Sets $status (the job's exit code).
interrupt() {
  local name=$1 signal=$2 victim=$3 launcher ranks pid target="" i start
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec "${mpirun[@]}" -np 2 "$MCM" train $long --out run) >"$work/$name.log" 2>&1 &
  launcher=$!
  for i in $(seq 1 600); do   # the ranks are mpirun's children; the checkpoint at step 500
    ranks=$(ps -o pid= --ppid "$launcher" | tr -d ' ')
    [ "$(wc -w <<<"$ranks")" -ge 2 ] && [ -e "$work/$name/run/checkpoint.safetensors" ] && break
    sleep 0.1
  done
  for pid in $ranks; do   # Open MPI gives each rank its number in the environment
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$victim"; then target=$pid; fi
  done
  check "$name: rank $victim found among mpirun's children ($ranks)" '[ -n "$target" ]'
  [ -n "$target" ] && kill "-$signal" "$target"
  start=$SECONDS
  while kill -0 "$launcher" 2>/dev/null && [ $((SECONDS - start)) -lt 60 ]; do sleep 0.2; done
  if kill -0 "$launcher" 2>/dev/null; then
    check "$name: the job still runs 60 s after SIG$signal to rank $victim" false
    for pid in $ranks; do kill -9 "$pid" 2>/dev/null; done; kill -9 "$launcher" 2>/dev/null
  fi
  wait "$launcher"; status=$?
  check "$name: SIG$signal to rank $victim ends the job ($status) in $((SECONDS - start)) s" '[ "$status" -ne 0 ]'
  check "$name: no rank is left running" \
    '! ps -o stat= -p "$(tr "\n" , <<<"$ranks" | sed "s/,$//")" | grep -qv "^Z"'
}
# resume_and_compare NAME R: resume $work/NAME/run with R processes (0: the plain build)
resume_and_compare() {
  local name=$1 processes=$2
  if [ "$processes" -eq 0 ]; then (cd "$work/$name" && "$CM" train --resume run --quiet) >>"$work/$name.log" 2>&1
  else (cd "$work/$name" && run "$processes" "$MCM" train --resume run --quiet) >>"$work/$name.log" 2>&1; fi
  check "$name: resumed with $processes processes: the uninterrupted run's model" \
    'cmp -s "$work/$name/run/model.safetensors" "$work/full/run/model.safetensors"'
}
interrupt term TERM 1
check "term: every process stops, rank 0 saves, exit 143 ($status)" \
  '[ "$status" -eq 143 ] && grep -q "stopped by SIGTERM after step" "$work/term.log"'
resume_and_compare term 4
interrupt kill1 KILL 1
resume_and_compare kill1 0
interrupt kill0 KILL 0
resume_and_compare kill0 3

# --- refusals and failures
expect 2 "--blocks 2: 4 processes need at least 4 row blocks" -- run 4 "$MCM" train --data moons --blocks 2 --out "$work/few"
check "--blocks below R: said once" '[ "$(run 4 "$MCM" train --data moons --blocks 2 --out "$work/few" 2>&1 | grep -c "need at least")" -eq 1 ]'
expect 2 "the run has 4 row blocks, too few for 5 processes" -- run 5 "$MCM" train --resume "$work/full/run"
expect 2 "cm sample runs as one process, not 2" -- run 2 "$MCM" sample --model "$work/full/run" --out "$work/s.npy"
expect 1 "error \(rank 1 of 2\): input/output error: $work/nosuch.csv" -- run 2 "$MCM" train --data "$work/nosuch.csv" --out "$work/nosuch"
expect 1 "loss -?nan" -- run 2 "$MCM" train --data gauss:d=2 --lr 1e12 --steps 50 --batch 64 --width 16 --out "$work/nan"

# --- cm sweep and cm nfe: the serial run's files
sweep="sweep --kind width --vary width=8,16,32 --T 20 --steps 60 --d 1,2"
(cd "$work" && "$CM" $sweep --out sweep-plain >sweep-plain.out 2>&1)
for R in 2 3; do
  (cd "$work" && run $R "$MCM" $sweep --out sweep-$R >sweep-$R.out 2>&1)
  check "sweep, $R processes: sweep.csv, fits.csv and sweep.png equal the serial run's" \
    'cmp -s "$work/sweep-plain/sweep.csv" "$work/sweep-$R/sweep.csv" && cmp -s "$work/sweep-plain/fits.csv" "$work/sweep-$R/fits.csv" && cmp -s "$work/sweep-plain/sweep.png" "$work/sweep-$R/sweep.png"'
  check "sweep, $R processes: stdout equals the serial run's" \
    'diff <(sed "s/sweep-plain/X/g" "$work/sweep-plain.out") <(sed "s/sweep-$R/X/g" "$work/sweep-$R.out") >/dev/null'
done
models="$work/cd-plain/run,$work/cd2-plain/run"
nfe="nfe --model $models --nfe 1,2,4 --n 100 --search-n 60 --iterations 2 --seeds 3 --langevin 1,2 --langevin-step 0.01 --delta 0,end --exact-map --quiet"
(cd "$work" && "$CM" $nfe --csv nfe-plain.csv --png nfe-plain.png >nfe-plain.out 2>&1)
exists "$work/nfe-plain.csv"
for R in 2 3; do
  (cd "$work" && run $R "$MCM" $nfe --csv nfe-$R.csv --png nfe-$R.png >nfe-$R.out 2>&1)
  check "nfe, $R processes: the CSV, figure and table equal the serial run's" \
    'cmp -s "$work/nfe-plain.csv" "$work/nfe-$R.csv" && cmp -s "$work/nfe-plain.png" "$work/nfe-$R.png" && cmp -s "$work/nfe-plain.out" "$work/nfe-$R.out"'
done

echo "cli_mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
