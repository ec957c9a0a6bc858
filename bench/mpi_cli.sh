#!/usr/bin/env bash
# bench/mpi_cli.sh: `cm train` in 1 process x 1 thread (the plain build) against
# `mpirun -np 2 cm train` in 2 processes x 1 thread (the MPI build), on a compute-heavy workload,
# each run in a session of its own with autogroup nice -10 (docs/performance.md, "Machine").
# Prints each run's step time (the loop's, without start-up) and rank 0's communication costs
# (the communicator's statistics, printed by cm train), then the speedup. A benchmark, not a
# test: the numbers depend on the machine's load (say it with them; docs/distributed.md).
#   unet: the U-Net (defaults: base_channels 32, 2 levels, 2 res blocks) on fashion-mnist,
#         batch 128 in 4 blocks;
#   mlp:  ict on gauss:d=784, width 512, depth 3, batch 512 in 4 blocks.
# Usage: bench/mpi_cli.sh unet|mlp [STEPS] [REPEATS]   (needs build/cm and build-mpi/cm;
#        MPI_ARGS adds mpirun options, e.g. "--mca mpi_yield_when_idle 1" on a loaded machine)
set -uo pipefail
cd "$(dirname "$0")/.."
workload=${1:-unet}; steps=${2:-}; repeats=${3:-1}
case $workload in
  unet) args="--data fashion-mnist --network unet --method ict --batch 128 --blocks 4"; steps=${steps:-8} ;;
  mlp)  args="--data gauss:d=784 --method ict --width 512 --depth 3 --batch 512 --blocks 4"; steps=${steps:-100} ;;
  *) echo "usage: bench/mpi_cli.sh unet|mlp [STEPS] [REPEATS]" >&2; exit 2 ;;
esac
mpirun=(mpirun ${MPI_ARGS:-})
if [ "$(id -u)" -eq 0 ]; then mpirun+=(--allow-run-as-root); fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# session COMMAND...: run in a new session whose autogroup has nice -10
session() { setsid bash -c 'echo -10 > /proc/self/autogroup 2>/dev/null; exec "$@"' session "$@"; }
# seconds_per_step LOG: from "cm train: N steps in X s"
seconds_per_step() { sed -n 's/^cm train: \([0-9]*\) steps in \([0-9.]*\) s.*/\2 \1/p' "$1" | awk '{printf "%.4f", $1 / $2}'; }

echo "workload $workload: $args, $steps steps; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
root=$PWD
for r in $(seq 1 "$repeats"); do
  mkdir -p "$scratch/one-$r" "$scratch/two-$r"   # the same relative --out: the same model bytes
  (cd "$scratch/one-$r" && session "$root/build/cm" train $args --steps "$steps" --save-every 0 \
    --out run >log 2>&1)
  (cd "$scratch/two-$r" && session "${mpirun[@]}" -np 2 "$root/build-mpi/cm" train $args \
    --steps "$steps" --save-every 0 --out run >log 2>&1)
  one=$(seconds_per_step "$scratch/one-$r/log"); two=$(seconds_per_step "$scratch/two-$r/log")
  same=$(cmp -s "$scratch/one-$r/run/model.safetensors" "$scratch/two-$r/run/model.safetensors" && echo "same model bytes" || echo "MODELS DIFFER")
  echo "run $r: 1 process x 1 thread $one s/step; 2 processes x 1 thread $two s/step; speedup $(awk -v a="$one" -v b="$two" 'BEGIN {printf "%.2f", a / b}')x; $same"
  grep "communication" "$scratch/two-$r/log" | sed 's/^/  /'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
