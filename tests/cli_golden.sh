#!/usr/bin/env bash
# tests/cli_golden.sh: golden fixtures (tests/golden/, made by tests/golden/make-fixtures.sh with
# an earlier build) that must keep their bits through every refactoring: the format-1 models of
# cm 0.1 (tests/golden/format1/) load and sample to their recorded hashes; each method's model
# loads and samples to the recorded SHA-256 for two seeds (and two steps for ict), the same
# training command reproduces each model's weights (its samples have the recorded bits; the file's
# metadata may change with the format), and the stored half-way checkpoint resumes to the
# recorded final model (its samples, likewise). A fixture is regenerated only when bits change on purpose,
# in a commit of its own that says why (docs/architecture.md).
# Usage: CM=build/cm tests/cli_golden.sh     Ends with "cli_golden: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
golden="$(dirname "$0")/golden"
hash_of() { sha256sum < "$1" | cut -d' ' -f1; }
recorded() { awk -v k="$1" -v m="$2" -v s="${3:-}" '$1 == k && $2 == m && ($3 == s || s == "") {print $NF}' "$golden/hashes.txt"; }

common="--steps 200 --width 32 --depth 2 --embed 16 --batch 64 --seed 5 --save-every 0 --quiet"
for method in lhw ct ict dsm cd cd2; do
  case $method in cd|cd2) data=gmm:d=2,k=3 ;; *) data=moons ;; esac
  extra=""; [ "$method" = lhw ] && extra="--T 20"
  steps=""; [ "$method" = dsm ] && steps="--steps 6"
  for seed in 1 2; do
    expect 0 "" -- "$CM" sample --model "$golden/model-$method.safetensors" --n 300 --seed $seed $steps --out "$work/s-$method-$seed.npy" --quiet
    check "golden: $method samples (seed $seed) have the recorded bits" "[ '$(hash_of "$work/s-$method-$seed.npy" 2>/dev/null)' = '$(recorded sample $method $seed)' ]"
  done
  expect 0 "" -- "$CM" train --data $data --method $method $common $extra --out "$work/train-$method"
  expect 0 "" -- "$CM" sample --model "$work/train-$method/model.safetensors" --n 300 --seed 1 $steps --out "$work/t-$method.npy" --quiet
  check "golden: $method training reproduces the fixture's weights (its seed-1 samples' bits)" "[ '$(hash_of "$work/t-$method.npy" 2>/dev/null)' = '$(recorded sample $method 1)' ]"
done
for method in lhw ct ict dsm cd cd2; do
  steps=""; [ "$method" = dsm ] && steps="--steps 6"
  expect 0 "" -- "$CM" sample --model "$golden/format1/model-$method.safetensors" --n 300 --seed 1 $steps --out "$work/f1-$method.npy" --quiet
  check "golden: the format-1 $method model (cm 0.1) samples to the recorded bits" "[ '$(hash_of "$work/f1-$method.npy" 2>/dev/null)' = '$(recorded format1 $method 1)' ]"
done
expect 0 "" -- "$CM" sample --model "$golden/model-ict.safetensors" --n 300 --seed 3 --sigmas 5,0.5 --out "$work/two.npy" --quiet
check "golden: ict two-step samples have the recorded bits" "[ '$(hash_of "$work/two.npy")' = '$(recorded sample2 ict 3)' ]"
cp -a "$golden/resume-ict" "$work/resume"
expect 0 "" -- "$CM" train --resume "$work/resume" --quiet
expect 0 "" -- "$CM" sample --model "$work/resume/model.safetensors" --n 300 --seed 1 --out "$work/r.npy" --quiet
check "golden: the half-way checkpoint resumes to the recorded model (its seed-1 samples)" "[ '$(hash_of "$work/r.npy" 2>/dev/null)' = '$(recorded resume ict)' ]"
echo "cli_golden: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
