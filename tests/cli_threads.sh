#!/usr/bin/env bash
# tests/cli_threads.sh: results do not depend on the thread count. Each run trains with
# --threads 1 and with --threads 2 and compares the model files' and the final checkpoints'
# tensors byte for byte (their headers record the command line), then samples each
# model with 1 and 2 threads and compares the sample files byte for byte: methods whose target is
# the current network (ict, lhw), an EMA copy (ct), the data (dsm, sampled by Heun steps) and a
# teacher model (cd); a batch of 101 rows (row blocks of 51 and 50: the smaller block runs padded
# to the larger one's shape, mlp_template.h), 3 row blocks, and d = 16; 5000 samples (the last
# chunk padded), two-step sampling.
# Usage: CM=build/cm tests/cli_threads.sh     Ends with "cli_threads: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
same() { cmp -s "$1" "$2"; }
# Two safetensors files hold the same tensor bytes (the JSON header may differ: a model records
# the command line that made it, --threads included).
tensor_bytes() { local n; n=$(od -An -t u8 -N 8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1"; }
same_tensors() { cmp -s <(tensor_bytes "$1") <(tensor_bytes "$2") && [ -s "$1" ]; }

small="--steps 40 --width 48 --depth 2 --embed 16 --save-every 0 --quiet"
# name | data | method and options
runs=(
  "ict|moons|--method ict --batch 128"
  "ict-odd-batch|moons|--method ict --batch 101"
  "ict-3-blocks|moons|--method ict --batch 96 --blocks 3"
  "lhw|moons|--method lhw --T 20 --batch 64"
  "ct|gmm:d=16,k=3|--method ct --batch 64"
  "dsm|moons|--method dsm --batch 101"
)
for run in "${runs[@]}"; do
  IFS='|' read -r name data options <<< "$run"
  for threads in 1 2; do
    expect 0 "" -- "$CM" train --data "$data" $options $small --seed 3 --threads $threads --out "$work/$name-$threads"
  done
  check "$name: model weights with 1 and 2 threads are identical" \
    "same_tensors '$work/$name-1/model.safetensors' '$work/$name-2/model.safetensors'"
  check "$name: final checkpoints (weights, Adam, target) with 1 and 2 threads are identical" \
    "same_tensors '$work/$name-1/checkpoint.safetensors' '$work/$name-2/checkpoint.safetensors'"
  sampling="--n 5000"; [ "$name" = dsm ] && sampling="--n 5000 --steps 4"
  for threads in 1 2; do
    expect 0 "" -- "$CM" sample --model "$work/$name-1/model.safetensors" $sampling --seed 4 --threads $threads --out "$work/$name-s$threads.npy" --quiet
  done
  check "$name: samples with 1 and 2 threads are identical" "same '$work/$name-s1.npy' '$work/$name-s2.npy'"
done

# two-step sampling of the ict model; distillation from the dsm model
for threads in 1 2; do
  expect 0 "" -- "$CM" sample --model "$work/ict-1/model.safetensors" --n 3000 --sigmas 10,0.5 --seed 5 --threads $threads --out "$work/two-$threads.npy" --quiet
  expect 0 "" -- "$CM" train --data moons --method cd --teacher-model "$work/dsm-1/model.safetensors" --batch 64 $small --seed 6 --threads $threads --out "$work/cd-$threads"
done
check "two-step samples with 1 and 2 threads are identical" "same '$work/two-1.npy' '$work/two-2.npy'"
check "cd: model weights with 1 and 2 threads are identical" \
  "same_tensors '$work/cd-1/model.safetensors' '$work/cd-2/model.safetensors'"
echo "cli_threads: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
