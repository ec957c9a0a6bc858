#!/usr/bin/env bash
# bench/export.sh MODEL [N] [LEVEL...]: the speed of a model's C export (cm export, float32)
# against `cm sample --threads 1` (bench/export_cm.c: cm_sample on one thread), N samples
# (default 10000, seed 1), one step or the levels given: the export built at -O2 and at
# -O3 -march=native, with the vector kernels and with the plain C99 ones (_PLAIN_C), and with
# clang -O2 when clang is installed. Processor time, best of 5 (steadier than wall time on a
# shared machine: the load average is printed). Sizes of the source and the object file too.
# Not a test; docs/export.md shows its output. Usage: make bench-export EXPORT_MODEL=runs/moons/model.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/export.sh MODEL [N] [LEVEL...]}
n=${2:-10000}
shift $(( $# > 1 ? 2 : 1 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make -s build/cm build/bench_export_cm
echo "model: $model, $n samples${*:+, levels $*}"
build/cm export --model "$model" --out "$work/cmx.c" --prefix cmx --quiet
printf "%-34s %s\n" "cm sample --threads 1" "$(build/bench_export_cm "$model" "$n" 5 "$@")"
variant() { # variant LABEL COMPILER FLAGS...
  local label=$1 compiler=$2; shift 2
  command -v "$compiler" >/dev/null || return 0
  "$compiler" "$@" -I"$work" -o "$work/run" "$work/cmx.c" tests/export/sample_main.c -lm
  printf "%-34s %s s processor\n" "$label" "$("$work/run" "$work/out.npy" "$n" 1 --time $levels | head -1 | cut -d' ' -f1)"
}
levels="$*"
variant "export, cc -O2" cc -O2
variant "export, cc -O3 -march=native" cc -O3 -march=native
variant "export, cc -O2 -DCMX_PLAIN_C" cc -O2 -DCMX_PLAIN_C
variant "export, clang -O2" clang -O2
cc -O2 -c -o "$work/cmx.o" "$work/cmx.c"
echo "sizes: cmx.c $(stat -c %s "$work/cmx.c") bytes; cmx.o (cc -O2) $(size -B "$work/cmx.o" | awk 'NR == 2 { print $1 " text + " $2 " data bytes (+ " $3 " bss: the static workspace)" }')"
