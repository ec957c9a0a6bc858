#!/usr/bin/env bash
# bench/export_dtypes.sh SET=MODEL ...: what float16 and int8 weights cost (cm export --dtype):
# for each model, the source and object sizes of its f32, f16 and int8 exports, and the exact W1
# of N = 5000 one-step samples (seed 1) against 5000 fresh points of SET (cm data, seed 99),
# with the change against the f32 export and the W1 between the dtype's samples and the f32
# export's (the same noise: how far the weights moved the map). Not a test; docs/export.md
# shows its table. Example:
#   bench/export_dtypes.sh moons=runs/moons/model.safetensors rings=runs/rings/model.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/export_dtypes.sh SET=MODEL ..."; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make -s build/cm
n=5000
w1() { build/cm eval --samples "$1" --ref "$2" --metric w1 --floor-splits 1 --json | sed -n 's/.*"w1": \([^,]*\),.*/\1/p'; }
echo "| set | dtype | source bytes | object bytes (text + data) | W1 to the data | change against f32 | W1 to the f32 samples |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for pair in "$@"; do
  set_name=${pair%%=*}; model=${pair#*=}
  build/cm data --data "$set_name" --n "$n" --seed 99 --out "$work/ref.npy"
  base=""
  for dtype in f32 f16 int8; do
    build/cm export --model "$model" --out "$work/cmx.c" --prefix cmx --dtype "$dtype" --quiet
    cc -O2 -I"$work" -o "$work/run" "$work/cmx.c" tests/export/sample_main.c -lm
    cc -O2 -c -o "$work/cmx.o" "$work/cmx.c"
    "$work/run" "$work/$dtype.npy" "$n" 1
    value=$(w1 "$work/$dtype.npy" "$work/ref.npy")
    [ "$dtype" = f32 ] && base=$value
    change=$(awk -v a="$value" -v b="$base" 'BEGIN { printf "%+.2e", a - b }')
    moved=$([ "$dtype" = f32 ] && echo 0 || printf "%.2e" "$(w1 "$work/$dtype.npy" "$work/f32.npy")")
    printf "| %s | %s | %s | %s | %.5f | %s | %s |\n" "$set_name" "$dtype" "$(stat -c %s "$work/cmx.c")" \
      "$(size -B "$work/cmx.o" | awk 'NR == 2 { print $1 + $2 }')" "$value" "$change" "$moved"
  done
done
