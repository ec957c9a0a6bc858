#!/usr/bin/env bash
# tests/cli_export.sh: `cm export` end to end. Trains small models (MLP: ict, lhw, cd, cd2; U-Net:
# ict, lhw, cd, cd2 on 8x8 images), exports each, compiles the export with the C compiler alone
# (cc -std=c99 -pedantic -Werror -O2, -lm, with the driver tests/export/sample_main.c), and
# compares its samples with `cm sample` for several seeds, one step and multistep: the max
# |export - cm| / max |cm| must stay below 1e-5 and the exact W1 against one reference file
# (cm eval) must agree to 5 significant digits. Also: the static and a caller's workspace give
# the same bits, a draw's first points are a shorter draw, the plain-C kernels ($_PLAIN_C) and
# float16 / int8 weights stay close, bad levels are refused, examples/embed builds, runs and
# prints cm's samples, and the CLI's errors. Needs a C compiler (cc, or $CC) and awk only.
# Usage: CM=build/cm tests/cli_export.sh     Ends with "cli_export: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}
strict="-std=c99 -Wall -Wextra -pedantic -Werror -O2"

below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
# w1 SAMPLES REF: the exact W1 to 5 significant digits
w1() {
  "$CM" eval --samples "$1" --ref "$2" --metric w1 --floor-splits 1 --json | \
    sed -n 's/.*"w1": \([^,]*\),.*/\1/p' | awk '{ printf "%.5g\n", $1 }'
}
# difference RUN OUT N SEED REF [LEVEL...]: the driver's max relative difference to REF
difference() {
  local run=$1 out=$2 n=$3 seed=$4 ref=$5; shift 5
  "$run" "$out" "$n" "$seed" --compare "$ref" "$@" | sed -n 's/^max relative difference //p'
}

# build DIR MODEL [cm export options...]: DIR/cmx.c and DIR/run (the driver), strict C99
build() {
  local dir=$1 model=$2; shift 2
  mkdir -p "$dir"
  expect 0 "" -- "$CM" export --model "$model" --out "$dir/cmx.c" --prefix cmx --quiet "$@"
  expect 0 "" -- $cc $strict -I"$dir" -o "$dir/run" "$dir/cmx.c" "$root/tests/export/sample_main.c" -lm
}

# compare NAME MODEL REF SEEDS N [LEVEL-OPTION VALUES]: the export's samples against cm sample's
compare() {
  local name=$1 model=$2 ref=$3 seeds=$4 n=$5 option=${6:-} values=${7:-} seed d
  for seed in $seeds; do
    local ours="$work/$name-$seed.npy" theirs="$work/$name-$seed-cm.npy"
    if [ -n "$option" ]; then
      expect 0 "" -- "$CM" sample --model "$model" --n "$n" --seed "$seed" --"$option" "$values" --out "$theirs" --quiet
      d=$(difference "$work/$name/run" "$ours" "$n" "$seed" "$theirs" ${values//,/ })
    else
      expect 0 "" -- "$CM" sample --model "$model" --n "$n" --seed "$seed" --out "$theirs" --quiet
      d=$(difference "$work/$name/run" "$ours" "$n" "$seed" "$theirs")
    fi
    check "$name seed $seed ${option:+--$option $values}: max relative difference ${d:-?} < 1e-5" "below '${d:-1}' 1e-5"
    local a b; a=$(w1 "$ours" "$ref"); b=$(w1 "$theirs" "$ref")
    check "$name seed $seed: exact W1 $a (export) = $b (cm sample)" "[ -n '$a' ] && [ '$a' = '$b' ]"
  done
}

# --- models
small="--steps 200 --width 32 --depth 2 --embed 16 --batch 64 --quiet"
expect 0 "" -- "$CM" train --data moons --method ict $small --out "$work/m-ict"
expect 0 "" -- "$CM" train --data moons --method lhw --T 20 $small --out "$work/m-lhw"
expect 0 "" -- "$CM" train --data gauss:d=3,mean=1,std=0.5 --method cd $small --out "$work/m-cd"
expect 0 "" -- "$CM" train --data gmm:d=2,k=3 --method cd2 $small --out "$work/m-cd2"
unet="--network unet --data shapes:size=8 --base-channels 8 --levels 2 --groups 2 --res-blocks 1 --embed 8 --batch 16 --quiet"
expect 0 "" -- "$CM" train $unet --method ict --steps 60 --out "$work/u-ict"
expect 0 "" -- "$CM" train $unet --method lhw --T 20 --steps 60 --out "$work/u-lhw"
expect 0 "" -- "$CM" train $unet --method dsm --steps 60 --out "$work/u-dsm"
expect 0 "" -- "$CM" train $unet --method cd2 --steps 60 --teacher-model "$work/u-dsm/model.safetensors" --out "$work/u-cd2"
expect 0 "" -- "$CM" train $unet --method cd --steps 60 --teacher-model "$work/u-dsm/model.safetensors" --out "$work/u-cd"
expect 0 "" -- "$CM" data --data moons --n 1000 --seed 9 --out "$work/ref-moons.npy"
expect 0 "" -- "$CM" data --data gauss:d=3,mean=1,std=0.5 --n 1000 --seed 9 --out "$work/ref-gauss.npy"
expect 0 "" -- "$CM" data --data gmm:d=2,k=3 --n 1000 --seed 9 --out "$work/ref-gmm.npy"
expect 0 "" -- "$CM" data --data shapes:size=8 --n 200 --seed 9 --out "$work/ref-shapes.npy"

# --- every method and network: the export draws cm sample's samples
seeds="0 7 18446744073709551615"
build "$work/m-ict" "$work/m-ict/model.safetensors"
compare m-ict "$work/m-ict/model.safetensors" "$work/ref-moons.npy" "$seeds" 1000
compare m-ict "$work/m-ict/model.safetensors" "$work/ref-moons.npy" 3 1000 sigmas 5,0.5
build "$work/m-lhw" "$work/m-lhw/model.safetensors"
compare m-lhw "$work/m-lhw/model.safetensors" "$work/ref-moons.npy" "$seeds" 1000
compare m-lhw "$work/m-lhw/model.safetensors" "$work/ref-moons.npy" 3 1000 times 20,12,5
build "$work/m-cd" "$work/m-cd/model.safetensors"
compare m-cd "$work/m-cd/model.safetensors" "$work/ref-gauss.npy" "$seeds" 1000
build "$work/m-cd2" "$work/m-cd2/model.safetensors"
compare m-cd2 "$work/m-cd2/model.safetensors" "$work/ref-gmm.npy" "$seeds" 1000
compare m-cd2 "$work/m-cd2/model.safetensors" "$work/ref-gmm.npy" 3 1000 sigmas 10,1,0.2
build "$work/u-ict" "$work/u-ict/model.safetensors"
compare u-ict "$work/u-ict/model.safetensors" "$work/ref-shapes.npy" "0 18446744073709551615" 100
compare u-ict "$work/u-ict/model.safetensors" "$work/ref-shapes.npy" 3 100 sigmas 10,1
build "$work/u-lhw" "$work/u-lhw/model.safetensors"
compare u-lhw "$work/u-lhw/model.safetensors" "$work/ref-shapes.npy" 5 100 times 20,9
build "$work/u-cd2" "$work/u-cd2/model.safetensors"
compare u-cd2 "$work/u-cd2/model.safetensors" "$work/ref-shapes.npy" 5 100
build "$work/u-cd" "$work/u-cd/model.safetensors"
compare u-cd "$work/u-cd/model.safetensors" "$work/ref-shapes.npy" 5 100

# --- the workspace, prefixes of a draw, the plain loops, bad levels
run="$work/m-ict/run"
expect 0 "" -- "$run" "$work/static.npy" 1000 0 --static
check "the static workspace gives the caller's workspace's bits" "cmp -s '$work/static.npy' '$work/m-ict-0.npy'"
expect 0 "" -- "$run" "$work/first.npy" 77 0
check "the first 77 points of 1000 are a draw of 77, bit for bit (after the 128-byte headers)" \
  "cmp -s -n $((77 * 2 * 4)) -i 128:128 '$work/first.npy' '$work/m-ict-0.npy'"
mkdir -p "$work/plain"
expect 0 "" -- $cc $strict -DCMX_PLAIN_C -I"$work/m-ict" -o "$work/plain/run" "$work/m-ict/cmx.c" "$root/tests/export/sample_main.c" -lm
d=$(difference "$work/plain/run" "$work/plain.npy" 1000 0 "$work/m-ict-0.npy")
check "the plain C99 kernels (CMX_PLAIN_C) draw the same samples (${d:-?})" "below '${d:-1}' 1e-6"
expect 1 "returned -2" -- "$run" "$work/bad.npy" 10 0 1 5
expect 1 "returned -2" -- "$run" "$work/bad.npy" 10 0 0.001
expect 1 "returned -2" -- "$work/m-lhw/run" "$work/bad.npy" 10 0 12.5
expect 1 "returned -2" -- "$work/m-lhw/run" "$work/bad.npy" 10 0 20 1
expect 1 "returned -2" -- "$work/m-lhw/run" "$work/bad.npy" 10 0 21
expect 1 "returned -1" -- "$run" "$work/bad.npy" 10 0 $(seq 65 -1 1)

# --- float16 and int8 weights: smaller, close to the float32 export
for dtype in f16 int8; do
  build "$work/m-ict-$dtype" "$work/m-ict/model.safetensors" --dtype "$dtype"
  d=$(difference "$work/m-ict-$dtype/run" "$work/$dtype.npy" 1000 0 "$work/m-ict-0.npy")
  check "$dtype weights: samples within 5e-2 of float32's (${d:-?})" "below '${d:-1}' 5e-2"
  check "$dtype weights: not float32's bits" "! cmp -s '$work/$dtype.npy' '$work/m-ict-0.npy'"
  size32=$(stat -c %s "$work/m-ict/cmx.c"); size=$(stat -c %s "$work/m-ict-$dtype/cmx.c")
  check "$dtype source smaller ($size bytes) than float32's ($size32)" "[ $size -lt $size32 ]"
done
build "$work/u-ict-int8" "$work/u-ict/model.safetensors" --dtype int8
d=$(difference "$work/u-ict-int8/run" "$work/u-int8.npy" 100 0 "$work/u-ict-0.npy")
check "U-Net int8 weights: samples within 5e-2 of float32's (${d:-?})" "below '${d:-1}' 5e-2"

# --- examples/embed: two prefixes in one program, cm sample's samples
expect 0 "" -- "$CM" train --data rings --method ict $small --seed 3 --out "$work/m-rings"
mkdir -p "$work/embed"
expect 0 "moons.c and" -- "$CM" export --model "$work/m-ict/model.safetensors" --out "$work/embed/moons.c"
expect 0 "" -- "$CM" export --model "$work/m-rings/model.safetensors" --out "$work/embed/rings.c" --quiet
expect 0 "" -- $cc -O2 -I"$work/embed" -o "$work/embed/embed" "$root/examples/embed/main.c" "$work/embed/moons.c" "$work/embed/rings.c" -lm
expect 0 "" -- sh -c "'$work/embed/embed' > '$work/embed/samples.csv'"
expect 0 "" -- "$CM" sample --model "$work/m-ict/model.safetensors" --n 1000 --seed 1 --out "$work/embed/moons.csv" --quiet
expect 0 "" -- "$CM" sample --model "$work/m-rings/model.safetensors" --n 1000 --seed 2 --sigmas 10,0.8 --out "$work/embed/rings.csv" --quiet
# max |embed - cm| / max |cm| over both models (cm writes x,y rows)
d=$( { sed -n 's/^moons,//p; s/^rings,//p' "$work/embed/samples.csv" | paste -d, - <(cat "$work/embed/moons.csv" "$work/embed/rings.csv"); } |
     awk -F, '{ for (i = 1; i <= 2; i++) { e = $i - $(i + 2); if (e < 0) e = -e; r = $(i + 2); if (r < 0) r = -r;
                if (e > worst) worst = e; if (r > top) top = r } n++ }
              END { if (n == 2000 && top > 0) printf "%.3g\n", worst / top }')
check "examples/embed prints cm sample's samples of both models (${d:-?})" "below '${d:-1}' 1e-5"

# --- the command line
expect 2 "ending in .c" -- "$CM" export --model "$work/m-ict/model.safetensors" --out "$work/x.txt"
expect 2 "give --prefix" -- "$CM" export --model "$work/m-ict/model.safetensors" --out "$work/my-model.c"
expect 2 "C identifier" -- "$CM" export --model "$work/m-ict/model.safetensors" --out "$work/x.c" --prefix 9x
expect 2 "dtype" -- "$CM" export --model "$work/m-ict/model.safetensors" --out "$work/x.c" --dtype f64
expect 2 "denoiser" -- "$CM" export --model "$work/u-dsm/model.safetensors" --out "$work/x.c"
expect 1 "" -- "$CM" export --model "$work/missing.safetensors" --out "$work/x.c"
one_line_error "$CM" export --model "$work/u-dsm/model.safetensors" --out "$work/x.c"
expect 0 "usage: cm export" -- "$CM" export --help
check "no file left by a refused export" "[ ! -e '$work/x.c' ] && [ ! -e '$work/x.h' ]"

echo "cli_export: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
