#!/usr/bin/env bash
# tests/cli_python.sh: python/cm_numpy.py against the cm binary. Trains tiny models of every
# method (ict, ct, lhw, cd on a gauss: law, cd2, dsm: model format 2), samples each with cm for
# several seeds (one of them 2^64 - 1) and multistep schedules (dsm: one-step DDIM, its
# denoiser), samples the format-1 models of cm 0.1 (tests/golden/format1/), draws data with cm
# data (normals, row indices), keeps checkpoints (law data and file data), then runs
# tests/python/test_cm_numpy.py --work, which compares everything: samples to a relative 1e-5,
# draws bit for bit, the format versions as stored (docs/python.md). Needs Debian's
# /usr/bin/python3 with python3-numpy (the python3 on PATH may lack numpy): without it, FAIL.
# Usage: CM=build/cm tests/cli_python.sh     Ends with "cli_python: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
root=$(cd "$(dirname "$0")/.." && pwd)

py=/usr/bin/python3
if ! "$py" -c 'import numpy' >/dev/null 2>&1; then
  echo "  FAIL: $py cannot import numpy: install the Debian package python3-numpy (scripts/deps)"
  echo "cli_python: 0 passed, 1 failed"
  exit 1
fi

manifest="$work/manifest.txt"
: > "$manifest"
small="--steps 60 --width 32 --depth 2 --embed 16 --batch 64 --quiet"

# --- models (ict also keeps its step-30 checkpoint; lhw uses the sequential teacher: a target)
declare -A data=([ict]=moons [ct]=moons [lhw]=moons [cd]=gauss:d=3,mean=1,std=0.5 [cd2]=gmm:d=2,k=3)
declare -A extra=([lhw]="--T 20 --teacher sequential")
for method in ict ct lhw cd cd2; do
  expect 0 "" -- "$CM" train --data "${data[$method]}" --method "$method" $small ${extra[$method]:-} \
    --save-every 30 --out "$work/$method"
  echo "checkpoint $work/$method/checkpoint.safetensors $work/$method/model.safetensors 0 60" >> "$manifest"
done
echo "checkpoint $work/ict/checkpoints/step-00000030.safetensors - 0 30" >> "$manifest"
# a run on a CSV file: its checkpoint carries the file's row count, columns and FNV-1a hash
expect 0 "" -- "$CM" data --data moons --n 200 --seed 3 --out "$work/points.csv"
expect 0 "" -- "$CM" train --data "$work/points.csv" --method ict $small --seed 4 --out "$work/file"
echo "checkpoint $work/file/checkpoint.safetensors $work/file/model.safetensors 4 60 $work/points.csv" >> "$manifest"

# --- samples: one step for three seeds (a draw larger than cm's 2048-row chunk among them), and
# multistep schedules; one CSV output
for method in ict ct lhw cd cd2; do
  for seed in 0 7 18446744073709551615; do
    n=700; [ "$seed" = 7 ] && [ "$method" = ict ] && n=4500
    out="$work/$method-$seed.npy"
    expect 0 "" -- "$CM" sample --model "$work/$method/model.safetensors" --n $n --seed $seed --out "$out" --quiet
    echo "sample $work/$method/model.safetensors $out $seed $n" >> "$manifest"
  done
done
multistep=("ict sigmas=5,0.5" "ct sigmas=10,1,0.1" "cd sigmas=10,2.81588,0.2" "cd2 sigmas=10,1,0.2"
           "lhw times=20,12,5" "lhw sigmas=3,0.4")
for entry in "${multistep[@]}"; do
  read -r method option <<< "$entry"
  key=${option%%=*}; values=${option#*=}
  out="$work/$method-$key-$values.npy"
  expect 0 "" -- "$CM" sample --model "$work/$method/model.safetensors" --n 600 --seed 3 --"$key" "$values" --out "$out" --quiet
  echo "sample $work/$method/model.safetensors $out 3 600 $option" >> "$manifest"
done
expect 0 "" -- "$CM" sample --model "$work/ict/model.safetensors" --n 300 --seed 5 --out "$work/ict.csv" --quiet
echo "sample $work/ict/model.safetensors $work/ict.csv 5 300" >> "$manifest"

# --- a dsm model: its denoiser through one-step DDIM draws (x = sigma_max z, then D(x, sigma_max))
expect 0 "" -- "$CM" train --data moons --method dsm $small --out "$work/dsm"
for seed in 0 5; do
  expect 0 "" -- "$CM" sample --model "$work/dsm/model.safetensors" --sampler ddim --steps 1 --n 300 --seed $seed --out "$work/dsm-$seed.npy" --quiet
  echo "denoise $work/dsm/model.safetensors $work/dsm-$seed.npy $seed 300" >> "$manifest"
done
for method in ict ct lhw cd cd2 dsm; do echo "format $work/$method/model.safetensors 2" >> "$manifest"; done

# --- the format-1 models of cm 0.1 (tests/golden/format1/, flat configuration): one step, a
# multistep schedule, the dsm denoiser
format1="$root/tests/golden/format1"
for method in lhw ct ict cd cd2; do
  expect 0 "" -- "$CM" sample --model "$format1/model-$method.safetensors" --n 400 --seed 2 --out "$work/f1-$method.npy" --quiet
  echo "sample $format1/model-$method.safetensors $work/f1-$method.npy 2 400" >> "$manifest"
  echo "format $format1/model-$method.safetensors 1" >> "$manifest"
done
expect 0 "" -- "$CM" sample --model "$format1/model-ict.safetensors" --n 400 --seed 4 --sigmas 5,0.5 --out "$work/f1-ict-2.npy" --quiet
echo "sample $format1/model-ict.safetensors $work/f1-ict-2.npy 4 400 sigmas=5,0.5" >> "$manifest"
expect 0 "" -- "$CM" sample --model "$format1/model-lhw.safetensors" --n 400 --seed 4 --times 20,9 --out "$work/f1-lhw-2.npy" --quiet
echo "sample $format1/model-lhw.safetensors $work/f1-lhw-2.npy 4 400 times=20,9" >> "$manifest"
expect 0 "" -- "$CM" sample --model "$format1/model-dsm.safetensors" --sampler ddim --steps 1 --n 300 --seed 6 --out "$work/f1-dsm.npy" --quiet
echo "denoise $format1/model-dsm.safetensors $work/f1-dsm.npy 6 300" >> "$manifest"
echo "format $format1/model-dsm.safetensors 1" >> "$manifest"

# --- raw draws: normals of gauss: points (odd and even dimensions), row indices of a file source
for spec in "5 11 3000" "2 9223372036854775808 100"; do
  read -r d seed n <<< "$spec"
  expect 0 "" -- "$CM" data --data "gauss:d=$d" --n "$n" --seed "$seed" --out "$work/gauss-$d.npy"
  echo "gauss $work/gauss-$d.npy $seed $n $d" >> "$manifest"
done
seq 0 10 > "$work/rows.csv"
expect 0 "" -- "$CM" data --data "$work/rows.csv" --n 1000 --seed 5 --out "$work/rows-drawn.csv"
echo "rows $work/rows-drawn.csv 5 1000 11" >> "$manifest"

# --- the example of docs/python.md, run where its paths exist (the ict run as runs/moons)
example="$work/example"
mkdir -p "$example/runs"
ln -s "$root/python" "$example/python"
cp -r "$work/ict" "$example/runs/moons"
expect 0 "" -- "$CM" sample --model "$example/runs/moons/model.safetensors" --n 5000 --seed 1 --out "$example/s1.npy" --quiet
sed -n '/^```python$/,/^```$/p' "$root/docs/python.md" | sed '1d;$d' > "$example/example.py"
check "docs/python.md has a 10-line example" "[ \$(wc -l < '$example/example.py') -eq 10 ]"
expect 0 "^ict 2 moons" -- sh -c "cd '$example' && '$py' example.py"
difference=$(cd "$example" && "$py" example.py 2>/dev/null | sed -n 2p)
check "the example's sample matches cm's ($difference)" "$py -c 'import sys; sys.exit(not float(\"$difference\") < 1e-5)'"

# --- the Python side
output=$("$py" "$root/tests/python/test_cm_numpy.py" --work "$work" 2>&1)
status=$?
echo "$output" | sed 's/^/  /'
line=$(echo "$output" | grep -E '^python: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
if [ -n "$line" ]; then
  passed=$((passed + $(echo "$line" | sed -E 's/python: ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')))
fi
if [ -z "$line" ] || { [ "$status" -ne 0 ] && [ "$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')" = 0 ]; }; then
  failed=$((failed + 1)); echo "  FAIL: tests/python/test_cm_numpy.py exited $status without a summary of failures"
fi

echo "cli_python: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
