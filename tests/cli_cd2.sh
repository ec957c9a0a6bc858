#!/usr/bin/env bash
# tests/cli_cd2.sh: the two-time consistency model (cm train --method cd2) as a user meets it:
# training with an exact or a dsm teacher, its stored configuration, one-step and multistep
# sampling, bit-identical reruns, and the errors of wrong teachers and flags (exit 2 usage,
# 1 runtime, one-line messages, no crash). Tiny networks: seconds in all.
# Usage: CM=build/cm tests/cli_cd2.sh     Ends with "cli_cd2: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists

small="--width 16 --depth 1 --embed 8 --batch 64 --quiet"
gauss="gauss:d=2,mean=1,std=0.5"

# --- training: exact teacher (gauss:/gmm:) and a dsm teacher
expect 0 "" -- "$CM" train --data "$gauss" --method cd2 --steps 60 --save-every 30 $small --out "$work/a"
exists "$work/a/model.safetensors"
expect 0 '"method": "cd2"' -- cat "$work/a/config.json"
expect 0 '"cd_solver": "heun"' -- cat "$work/a/config.json"
expect 0 "already complete" -- "$CM" train --resume "$work/a"
expect 0 "" -- "$CM" train --data "$gauss" --method cd2 --steps 60 --save-every 30 $small --out "$work/b"
weights() { "$CM" info "$1" --json | sed -E 's/.*"weights_fnv1a":"([0-9a-f]+)".*/\1/'; }   # the files differ in --out
check "cd2: same seed, different model" "[ '$(weights "$work/a")' = '$(weights "$work/b")' ]"
expect 0 "" -- "$CM" train --data "$gauss" --method cd2 --seed 1 --steps 60 $small --out "$work/c"
check "cd2: the seed is ignored" "[ '$(weights "$work/a")' != '$(weights "$work/c")' ]"
expect 0 "" -- "$CM" train --data gmm:d=2,k=3 --method cd2 --cd-solver euler --cd-levels 6 --steps 30 $small --out "$work/gmm"
expect 0 "" -- "$CM" train --data moons --method dsm --steps 40 $small --out "$work/dsm"
expect 0 "" -- "$CM" train --data moons --method cd2 --teacher-model "$work/dsm/model.safetensors" --steps 30 $small --out "$work/moons"

# --- sampling: one step g(x, sigma_max, sigma_min), [CM] Algorithm 1 on levels
expect 0 "cd2, 1 step" -- "$CM" sample --model "$work/a/model.safetensors" --n 500 --out "$work/one.npy"
expect 0 "warning: level 1 is not one of the 18 levels this cd2 model was distilled on \\(nearest: 0.9" -- "$CM" sample --model "$work/a/model.safetensors" --sigmas 10,1 --n 10 --out "$work/w.npy"
check "cd2: a grid level warned about" "! '$CM' sample --model '$work/a/model.safetensors' --sigmas 10,2.81588,0.91128 --n 10 --out '$work/w.npy' 2>&1 | grep -q warning"
expect 0 "cd2, 3 steps" -- "$CM" sample --model "$work/a/model.safetensors" --sigmas 10,1,0.2 --n 500 --out "$work/three.csv"
expect 0 "W1" -- "$CM" eval --samples "$work/one.npy" --ref "$gauss" --metric w1
expect 0 "" -- "$CM" sample --model "$work/a/model.safetensors" --n 500 --seed 4 --out "$work/r1.npy" --quiet
expect 0 "" -- "$CM" sample --model "$work/a/model.safetensors" --n 500 --seed 4 --out "$work/r2.npy" --quiet
check "cd2: samples with one seed differ" "cmp -s '$work/r1.npy' '$work/r2.npy'"
expect 2 "--sampler applies to dsm models; a cd2 model" -- "$CM" sample --model "$work/a/model.safetensors" --sampler heun --n 10 --out "$work/x.npy"

# --- errors
expect 2 "cd2 on moons needs --teacher-model" -- "$CM" train --data moons --method cd2 --steps 10 $small --out "$work/e1"
one_line_error "$CM" train --data moons --method cd2 --steps 10 $small --out "$work/e2"
expect 2 "consistency function, not a denoiser" -- "$CM" train --data moons --method cd2 --teacher-model "$work/moons/model.safetensors" --steps 10 $small --out "$work/e3"
expect 1 "" -- "$CM" train --data moons --method cd2 --teacher-model "$work/nosuch.safetensors" --steps 10 $small --out "$work/e4"
expect 2 "applies to --method cd and cd2" -- "$CM" train --data moons --method ict --teacher-model "$work/dsm/model.safetensors" --steps 10 $small --out "$work/e5"
expect 2 "cd2 needs a fixed target EMA" -- "$CM" train --data "$gauss" --method cd2 --target-ema -1 --steps 10 $small --out "$work/e6"
expect 2 "unknown method 'cd3'" -- "$CM" train --data "$gauss" --method cd3 --steps 10 $small --out "$work/e7"
expect 2 "was trained on 'moons', this run's data is 'gauss:d=3,mean=0,std=1'" -- "$CM" train --data gauss:d=3 --method cd2 --teacher-model "$work/dsm/model.safetensors" --steps 10 $small --out "$work/e8"
expect 1 "teacher of dimension 2, the data has 3" -- "$CM" train --data gauss:d=3 --method cd2 --teacher-model "$work/dsm/model.safetensors" --allow-other-teacher-data --steps 10 $small --out "$work/e9"
# a model file whose config says cd2 but whose first layer has the one-time shape is refused
LC_ALL=C sed 's/\\"method\\": \\"cd2\\"/\\"method\\": \\"cd\\"  /' "$work/a/model.safetensors" > "$work/bad.safetensors"
if [ -s "$work/bad.safetensors" ] && ! cmp -s "$work/a/model.safetensors" "$work/bad.safetensors"; then
  expect 1 "shape|parameters|mlp.0" -- "$CM" sample --model "$work/bad.safetensors" --n 10 --out "$work/x.npy"
else
  failed=$((failed + 1)); echo "  FAIL: could not build the mislabelled model file"
fi

echo "cli_cd2: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
