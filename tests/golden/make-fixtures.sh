#!/usr/bin/env bash
# tests/golden/make-fixtures.sh CM: regenerate the golden fixtures of tests/cli_golden.sh with the
# cm binary CM (default build/cm): one small trained model per method, a run stopped half-way
# (its checkpoint, to resume), the seeded samples' SHA-256 and the resumed model's SHA-256.
# Run it only when bits change on purpose, in a commit of its own that says why. The models of
# format1/ were written by cm 0.1 (model format 1) and are kept as they are: only the recorded
# hashes of their samples are recomputed here.
set -euo pipefail
cd "$(dirname "$0")"
cm=${1:-../../build/cm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--steps 200 --width 32 --depth 2 --embed 16 --batch 64 --seed 5 --save-every 0 --quiet)
declare -A data=([lhw]=moons [ct]=moons [ict]=moons [dsm]=moons [cd]=gmm:d=2,k=3 [cd2]=gmm:d=2,k=3)
: > hashes.txt
for method in lhw ct ict dsm cd cd2; do
  extra=()
  [ "$method" = lhw ] && extra=(--T 20)
  "$cm" train --data "${data[$method]}" --method "$method" "${common[@]}" "${extra[@]}" --out "$work/$method"
  cp "$work/$method/model.safetensors" "model-$method.safetensors"
  for seed in 1 2; do
    if [ "$method" = dsm ]; then
      "$cm" sample --model "model-$method.safetensors" --n 300 --seed "$seed" --steps 6 --out "$work/s.npy" --quiet
    else
      "$cm" sample --model "model-$method.safetensors" --n 300 --seed "$seed" --out "$work/s.npy" --quiet
    fi
    echo "sample $method $seed $(sha256sum < "$work/s.npy" | cut -d' ' -f1)" >> hashes.txt
  done
done
# The format-1 models of cm 0.1: they must keep loading and sampling.
for method in lhw ct ict dsm cd cd2; do
  steps=(); [ "$method" = dsm ] && steps=(--steps 6)
  "$cm" sample --model "format1/model-$method.safetensors" --n 300 --seed 1 "${steps[@]}" --out "$work/s.npy" --quiet
  echo "format1 $method 1 $(sha256sum < "$work/s.npy" | cut -d' ' -f1)" >> hashes.txt
done
# Two-step sampling of the ict model.
"$cm" sample --model model-ict.safetensors --n 300 --seed 3 --sigmas 5,0.5 --out "$work/s.npy" --quiet
echo "sample2 ict 3 $(sha256sum < "$work/s.npy" | cut -d' ' -f1)" >> hashes.txt
# A run of 200 steps with a checkpoint at step 100: its step-100 checkpoint becomes a run directory
# that --resume must finish with the same model bits as the uninterrupted run.
rm -rf resume-ict
"$cm" train --data moons --method ict --steps 200 --width 32 --depth 2 --embed 16 --batch 64 --seed 5 --save-every 100 --keep 3 --quiet --out "$work/full"
"$cm" sample --model "$work/full/model.safetensors" --n 300 --seed 1 --out "$work/s.npy" --quiet
echo "resume ict $(sha256sum < "$work/s.npy" | cut -d' ' -f1)" >> hashes.txt
mkdir -p resume-ict/checkpoints
cp "$work/full/checkpoints/step-00000100.safetensors" resume-ict/checkpoints/
ln -s checkpoints/step-00000100.safetensors resume-ict/checkpoint.safetensors
head -n 101 "$work/full/train.csv" > resume-ict/train.csv
cp "$work/full/config.json" resume-ict/config.json
echo "make-fixtures: wrote $(ls | wc -l) entries with $("$cm" --version 2>/dev/null || echo cm)"
