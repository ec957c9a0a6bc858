#!/usr/bin/env bash
# bench/quality.sh: the quality table of docs/training.md. For every built-in 2-D set, method
# and step count: train with the defaults (seed 1), draw 5000 one-step and two-step samples
# (seed 2; two steps = the model's largest level, then 0.8), and measure sliced W1 against
# fresh data beside the noise floor (seed 3). Runs JOBS trainings at once (1 BLAS thread each).
# Usage: bench/quality.sh [OUT_DIR] [STEPS...]    e.g. bench/quality.sh runs/quality 4000 16000
# Prints a markdown table; raw rows go to OUT_DIR/quality.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/quality}; shift || true
steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=(16000)
jobs=${JOBS:-2}
cm=build/cm
make -s build/cm
mkdir -p "$out"
one() { # data method steps
  local data=$1 method=$2 n=$3 dir="$out/$1-$2-$3" first=10
  local start=$(date +%s.%N)
  $cm train --data "$data" --method "$method" --steps "$n" --seed 1 --out "$dir" --quiet --force
  # lhw: the chain's last level sigma_T (cm sample refuses levels above a model's range)
  [ "$method" = lhw ] && first=$($cm info "$dir" --json | sed -E 's/.*"sigma_T":([0-9.e+-]+).*/\1/')
  local seconds; seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  $cm sample --model "$dir/model.safetensors" --n 5000 --seed 2 --out "$dir/s1.npy" --quiet
  $cm sample --model "$dir/model.safetensors" --n 5000 --seed 2 --sigmas "$first,0.8" --out "$dir/s2.npy" --quiet
  local r1 r2
  r1=$($cm eval --samples "$dir/s1.npy" --ref "$data" --seed 3 --json)
  r2=$($cm eval --samples "$dir/s2.npy" --ref "$data" --seed 3 --json)
  get() { echo "$1" | sed -E "s/.*\"$2\": ([0-9.e+-]+).*/\1/"; }
  echo "$data,$method,$n,$(get "$r1" sw1),$(get "$r2" sw1),$(get "$r1" sw1_floor),$(get "$r1" sw1_ratio),$(get "$r2" sw1_ratio),$seconds" > "$dir/row.csv"
}
export -f one
tasks=()
for n in "${steps[@]}"; do
  for data in 8gaussians moons swissroll checkerboard rings; do
    for method in ict ct lhw; do tasks+=("$data $method $n"); done
  done
done
printf '%s\n' "${tasks[@]}" | xargs -P "$jobs" -L 1 bash -c 'out='"$out"' cm='"$cm"'; one "$0" "$1" "$2"'
echo "data,method,steps,sw1_1step,sw1_2step,floor,ratio_1step,ratio_2step,train_seconds" > "$out/quality.csv"
for t in "${tasks[@]}"; do set -- $t; cat "$out/$1-$2-$3/row.csv" >> "$out/quality.csv"; done
echo "| data | method | steps | SW1 1-step | SW1 2-step | floor | 1-step / floor | 2-step / floor | train s |"
echo "|---|---|---|---|---|---|---|---|---|"
tail -n +2 "$out/quality.csv" | awk -F, '{printf "| %s | %s | %s | %.4f | %.4f | %.4f | %.2f | %.2f | %.0f |\n", $1,$2,$3,$4,$5,$6,$7,$8,$9}'
