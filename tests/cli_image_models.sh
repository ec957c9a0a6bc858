#!/usr/bin/env bash
# tests/cli_image_models.sh: image models through the command line (docs/images.md): cm train's
# preview grids, cm sample's NPY [N, H, W] in [0, 1] and --png / --nearest grids, cm eval's image
# report (without a classifier on shapes; with the committed classifier on Fashion-MNIST, checked
# against test images (near the floor) and noise (far above)), a seeded short training run on
# shapes held to a quality bound from measurement, cm theory network on an image model, and the
# errors of each.
# Usage: CM=build/cm tests/cli_image_models.sh     Ends with "cli_image_models: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists

png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}'; }
has_shape() { head -c 128 "$1" | tr -d '\000-\011\013-\037\177-\377' | grep -qF "'shape': $2"; }
# the value of a JSON key's number (or of "key":{"value":x}) in a one-line JSON file
json_value() { grep -oE "\"$2\":(\{\"value\":)?[-0-9.e+]+" "$1" | head -1 | grep -oE '[-0-9.e+]+$'; }
json_floor() { grep -oE "\"$2\":\{\"value\":[^}]*\"floor\":[-0-9.e+]+" "$1" | grep -oE '[-0-9.e+]+$'; }
holds() { awk "BEGIN { exit !($1) }"; }

unet="--network unet --data shapes:size=8 --base-channels 8 --levels 2 --groups 2 --res-blocks 1 --embed 8 --batch 16 --quiet"

# --- cm train: a grid of the first 64 one-step samples at every --eval-every
expect 0 "" -- "$CM" train $unet --method ict --steps 20 --eval-every 10 --out "$work/run"
check "previews at steps 10 and 20" 'exists "$work/run/previews/step-00000010.png" && exists "$work/run/previews/step-00000020.png"'
check "a preview is 8 x 8 images of 8 with 2 pixels of padding (82 x 82)" '[ "$(png_size "$work/run/previews/step-00000010.png")" = 82x82 ]'
check "the model moved between the previews" '! cmp -s "$work/run/previews/step-00000010.png" "$work/run/previews/step-00000020.png"'
expect 0 "" -- "$CM" train $unet --method ict --steps 20 --eval-every 10 --out "$work/run2"
check "same seed, same previews (fixed noise)" 'cmp -s "$work/run/previews/step-00000020.png" "$work/run2/previews/step-00000020.png"'
expect 0 "" -- "$CM" train $unet --method ict --steps 20 --out "$work/run3"
check "no --eval-every, no previews" '[ ! -e "$work/run3/previews" ]'
mkdir -p "$work/run4/previews" && echo mine > "$work/run4/previews/notes.txt"
expect 2 "not written by a cm run" -- "$CM" train $unet --method ict --steps 20 --eval-every 10 --out "$work/run4"
check "the user's file in previews/ is kept" '[ "$(cat "$work/run4/previews/notes.txt")" = mine ]'

# --- cm sample: NPY [N, H, W] in [0, 1], grids
expect 0 "" -- "$CM" sample --model "$work/run" --n 100 --out "$work/s.npy" --png "$work/s.png" --quiet
check "s.npy is [100, 8, 8]" 'has_shape "$work/s.npy" "(100, 8, 8)"'
check "a grid of 100 images: 10 x 10 of 8 (102 x 102)" '[ "$(png_size "$work/s.png")" = 102x102 ]'
expect 0 "outside \[0, 1\] and were clipped" -- "$CM" sample --model "$work/run" --n 100 --out "$work/s2.npy"
check "same seed, same samples" 'cmp -s "$work/s.npy" "$work/s2.npy"'
expect 0 "" -- "$CM" data --data "$work/s.npy" --n 100 --out "$work/s3.npy"
check "the samples read back as an image set of values in [0, 1]" 'has_shape "$work/s3.npy" "(100, 8, 8)"'
expect 0 "nearest of 10000 training images" -- "$CM" sample --model "$work/run" --n 100 --png "$work/near.png" --nearest
check "--nearest: each sample beside its match: 20 x 10 images of 8 (202 x 102)" '[ "$(png_size "$work/near.png")" = 202x102 ]'
expect 2 "applies to the --png figure" -- "$CM" sample --model "$work/run" --n 10 --out "$work/z.npy" --nearest
expect 0 "" -- "$CM" train --data moons --steps 5 --batch 32 --quiet --out "$work/moons"
expect 2 "--nearest applies to image models" -- "$CM" sample --model "$work/moons" --n 10 --png "$work/z.png" --nearest
check "nothing written on refusal" '[ ! -e "$work/z.png" ] && [ ! -e "$work/z.npy" ]'

# --- cm eval: the image report without a classifier (shapes)
"$CM" data --data shapes:size=8 --n 400 --seed 7 --out "$work/real.npy"
check "the report of draws of the law as one JSON line" '"$CM" eval --samples "$work/real.npy" --ref shapes:size=8 --n 300 --json > "$work/real.json" && [ "$(wc -l < "$work/real.json")" -eq 1 ]'
check "the report of the model's samples" '"$CM" eval --samples "$work/s.npy" --ref shapes:size=8 --json > "$work/model.json"'
check "no classifier for 8 x 8 images: FD is null" 'grep -q "\"fd\":{\"value\":null" "$work/real.json"'
check "draws of the law: pixel W1 within 1.25x its floor" 'holds "$(json_value "$work/real.json" w1_pixels) < 1.25 * $(json_floor "$work/real.json" w1_pixels)"'
check "a 20-step model: pixel W1 above 1.5x its floor" 'holds "$(json_value "$work/model.json" w1_pixels) > 1.5 * $(json_floor "$work/model.json" w1_pixels)"'
expect 0 "no classifier for these images" -- "$CM" eval --samples "$work/s.npy" --ref shapes:size=8
expect 2 "does not hold images of 64 pixels" -- "$CM" eval --samples "$work/s.npy" --ref shapes:size=8 --train shapes:size=16
expect 2 "applies to images against images" -- "$CM" eval --samples "$work/s.npy" --ref shapes:size=8 --metric sw1 --train shapes:size=8
expect 0 "" -- "$CM" eval --samples "$work/s.npy" --ref shapes:size=8 --metric sw1
expect 1 "" -- "$CM" eval --samples "$work/s.npy" --ref shapes:size=8 --classifier "$work/none.safetensors"
one_line_error "$CM" eval --samples "$work/s.npy" --ref shapes:size=8 --classifier "$work/none.safetensors"

# --- quality: a seeded iCT run of a small U-Net on shapes:size=8 (3000 steps of 32, about 15 s)
# reaches a pixel W1 of its one-step samples within 2.5x the floor: measured 2.06x, 1.85x and
# 1.98x for seeds 0, 1 and 2 (400 steps: 4.3x; the 20-step model above: above 1.5x)
expect 0 "" -- "$CM" train --network unet --data shapes:size=8 --base-channels 8 --levels 2 --groups 2 --res-blocks 1 --embed 16 --quiet --method ict --steps 3000 --batch 32 --lr 2e-3 --sigma-max 20 --p-mean -1.1 --threads 2 --out "$work/quality"
"$CM" sample --model "$work/quality" --n 500 --out "$work/quality.npy" --quiet
"$CM" eval --samples "$work/quality.npy" --ref shapes:size=8 --json > "$work/quality.json"
echo "  quality run (seed 0): pixel W1 $(json_value "$work/quality.json" w1_pixels), floor $(json_floor "$work/quality.json" w1_pixels)"
check "3000 iCT steps on shapes: pixel W1 within 2.5x its floor" 'holds "$(json_value "$work/quality.json" w1_pixels) < 2.5 * $(json_floor "$work/quality.json" w1_pixels)"'

# --- cm theory network on an image model: the consistency gap by level
expect 0 "no exact law for shapes" -- "$CM" theory network --model "$work/run" --n 100 --levels 6 --csv "$work/gap.csv"
check "gap.csv: 5 level pairs" '[ "$(tail -n +2 "$work/gap.csv" | wc -l)" -eq 5 ]'
check "gaps are finite and positive" '[ "$(tail -n +2 "$work/gap.csv" | awk -F, "\$3 > 0 && \$3 < 1e6" | wc -l)" -eq 5 ]'
expect 0 "" -- "$CM" train $unet --method dsm --steps 5 --out "$work/dsm"
expect 2 "a denoiser" -- "$CM" theory network --model "$work/dsm"

# --- Fashion-MNIST with the committed classifier (Debian package dataset-fashion-mnist)
if [ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  "$CM" data --data fashion-mnist --n 2000 --seed 5 --out "$work/train2000.npy"
  "$CM" eval --samples fashion-mnist:test --ref fashion-mnist:test --train "$work/train2000.npy" --n 300 --w1-points 300 --json > "$work/test.json"
  header="{'descr': '|u1', 'fortran_order': False, 'shape': (300, 28, 28), }"
  pad=$(( 63 - (10 + ${#header}) % 64 ))   # the header, spaces and a newline end on 64 bytes
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( ${#header} + pad + 1 )))\\x00"
    printf '%s%*s\n' "$header" "$pad" ''
    head -c $((300 * 784)) /dev/urandom; } > "$work/noise.npy"
  "$CM" eval --samples "$work/noise.npy" --ref fashion-mnist:test --train "$work/train2000.npy" --w1-points 300 --json > "$work/noise.json"
  check "test images: FD within 1.5x its floor" 'holds "$(json_value "$work/test.json" fd) < 1.5 * $(json_floor "$work/test.json" fd)"'
  check "test images: confidence above 0.9" 'holds "$(json_value "$work/test.json" confidence) > 0.9"'
  check "noise: FD above 10x its floor" 'holds "$(json_value "$work/noise.json" fd) > 10 * $(json_floor "$work/noise.json" fd)"'
  check "noise: pixel W1 above 2x its floor" 'holds "$(json_value "$work/noise.json" w1_pixels) > 2 * $(json_floor "$work/noise.json" w1_pixels)"'
  "$CM" data --data fashion-mnist:test --n 50 --out "$work/flat.csv"
  expect 0 "FD .classifier features" -- "$CM" classifier metrics --model models/classifier-fashion-mnist.safetensors --samples "$work/flat.csv" --train "$work/train2000.npy" --w1-points 0 --memorisation-train 0
  expect 2 "not a file of images" -- "$CM" classifier metrics --model models/classifier-fashion-mnist.safetensors --samples moons
  expect 2 "reads images of 1 x 28 x 28" -- "$CM" eval --samples "$work/s.npy" --ref shapes:size=8 --classifier models/classifier-fashion-mnist.safetensors
else
  echo "  skipped: dataset-fashion-mnist is not installed"
fi

echo "cli_image_models: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
