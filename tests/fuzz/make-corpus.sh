#!/usr/bin/env bash
# tests/fuzz/make-corpus.sh: (re)create the named seeds of the fuzz targets in
# tests/fuzz/corpus/<target>/: small valid files written by cm itself and hand-made broken
# ones. Files named by a SHA-1 were added from fuzzing runs with libFuzzer's -merge=1 (inputs
# that reach new code); files named regression-* once crashed a reader. Both are left as
# they are. Usage: CM=build/cm tests/fuzz/make-corpus.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CM=${CM:-build/cm}
corpus=tests/fuzz/corpus
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for t in npy csv safetensors config model data_spec checkpoint columns; do mkdir -p "$corpus/$t"; done

# --- npy: valid float32/float64 files, then broken headers and data
"$CM" data --data moons --n 3 --seed 1 --out "$corpus/npy/moons-f4.npy"
npy() { # npy NAME MAJOR HEADER-DICT DATA-BYTES (printf escapes)
  local name=$1 major=$2 dict=$3 data=$4 len
  len=$(( ${#dict} + 1 ))
  if [ "$major" = 1 ]; then
    printf "\x93NUMPY\x01\x00\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))%s\n$data" "$dict" > "$corpus/npy/$name"
  else
    printf "\x93NUMPY\x02\x00\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))\x00\x00%s\n$data" "$dict" > "$corpus/npy/$name"
  fi
}
npy f8-1d.npy 1 "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }" '\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00\x40'
npy v2.npy 2 "{'shape': (1, 1), 'descr': '<f4', 'fortran_order': False}" '\x00\x00\x80\x3f'
npy fortran.npy 1 "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }" '\x00\x00\x80\x3f'
npy big-endian.npy 1 "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }" '\x3f\x80\x00\x00'
npy nan.npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" '\x00\x00\xc0\x7f'
npy huge-shape.npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }" ''
npy three-d.npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }" '\x00\x00\x80\x3f'
npy truncated.npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }" '\x00\x00\x80\x3f'
printf '\x93NUMPY\x01\x00\xff\xff{' > "$corpus/npy/header-too-long.npy"

# --- csv
printf 'x,y\n1,2\n3.5,-4e-3\n' > "$corpus/csv/header.csv"
printf '1,2,3\r\n4,5,6\r\n\r\n7,8,9' > "$corpus/csv/crlf.csv"
printf 'a,b\n1,2\n3\n' > "$corpus/csv/ragged.csv"
printf '1,nan\n2,inf\n' > "$corpus/csv/nonfinite.csv"
printf ' 1 , 2 \n\n 0x1p3 , 1e308 \n' > "$corpus/csv/spaces-hex.csv"
printf '1,2\n\0003,4\n' > "$corpus/csv/nul.csv"
printf ',a,b\n0,-2.50,-0.36\n1,0.5,0.25\n' > "$corpus/csv/pandas-index.csv"
printf '"x","y z"\n1,2\n' > "$corpus/csv/quoted-names.csv"

# --- columns: a header line of names, then a column list (fuzz_columns.c)
printf ',a,b\na,b' > "$corpus/columns/pandas-names"
printf ',a,b\n1-2' > "$corpus/columns/range"
printf '0,1\n0,1' > "$corpus/columns/digit-names"
printf '1,2,7' > "$corpus/columns/no-header"
printf 'x,y\nx,,y' > "$corpus/columns/empty-item"
printf 'x,y\n2-1' > "$corpus/columns/backwards"
printf 'a,a\na' > "$corpus/columns/duplicate-name"
printf 'x\n99999999999999999999' > "$corpus/columns/huge-index"
printf 'x,y\n0-18446744073709551615' > "$corpus/columns/huge-range"

# --- runs whose files seed the safetensors, model, config and checkpoint targets
small=(--width 4 --depth 1 --embed 2 --batch 8 --steps 3 --quiet)
"$CM" train --data moons --method ict "${small[@]}" --out "$work/ict"
"$CM" train --data gauss:d=3 --method ct --target-ema -1 "${small[@]}" --out "$work/ct"
"$CM" train --data rings --method lhw --teacher sequential --T 3 "${small[@]}" --out "$work/lhw"
"$CM" train --data gauss:d=2 --method cd2 --cd-levels 4 "${small[@]}" --out "$work/cd2"
printf '1,2\n3,4\n5,7\n' > "$work/points.csv"
"$CM" train --data "$work/points.csv" --method ict "${small[@]}" --out "$work/file"
for m in ict ct lhw cd2; do
  cp "$work/$m/model.safetensors" "$corpus/model/$m.safetensors"
  cp "$work/$m/checkpoint.safetensors" "$corpus/checkpoint/$m.safetensors"
  cp "$work/$m/checkpoint.safetensors" "$corpus/safetensors/checkpoint-$m.safetensors"
  sed -E 's/^\{"data": "[^"]*", "train": (.*)\}$/\1/' "$work/$m/config.json" > "$corpus/config/$m.json"
done
cp "$work/file/checkpoint.safetensors" "$corpus/checkpoint/file-data.safetensors"
st() { # st NAME JSON DATA-BYTES: a safetensors image, header padded to 8 with spaces
  local name=$1 json=$2 data=$3 n
  n=$(( (${#json} + 7) / 8 * 8 ))
  { printf "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $((n >> 8)))\x00\x00\x00\x00\x00\x00"
    printf '%-*s' "$n" "$json"; printf "$data"; } > "$corpus/safetensors/$name"
}
st tiny.safetensors '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' '\x00\x00\x40\x40'
st f64.safetensors '{"x":{"dtype":"F64","shape":[1,1],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}' '\x00\x00\x00\x00\x00\x00\xf0\x3f'
st empty.safetensors '{}' ''
st overlap.safetensors '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' '\x00\x00\x40\x40'
st bad-offsets.safetensors '{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' '\x00\x00\x40\x40'
printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' > "$corpus/safetensors/header-length-huge.safetensors"

# --- config JSON: broken ones beside the valid ones above
printf '{"method": "ict", "dim": 2, "lr": 0.1, "lr": 0.2}' > "$corpus/config/repeated-key.json"
printf '{"method": "lhw", "dim": 1, "width": 65536, "depth": 16}' > "$corpus/config/huge-network.json"
printf '{"method": "ct", "dim": 2, "batch": 1048576, "width": 65536}' > "$corpus/config/huge-batch.json"
printf '{"method": "ict", "dim": 2, "seed": 9007199254740993}' > "$corpus/config/seed-over-2-53.json"
printf '[1, 2, {"method": "ict"}]' > "$corpus/config/array.json"

# --- data spec strings
for s in moons 8gaussians swissroll checkerboard rings gauss:d=3,mean=1,std=2 \
         gmm:d=2,k=3,sep=4,std=0.3,seed=7 gmm:d=1,k=5 gauss:d=0 gmm:d=2,k=2, \
         gauss:d=2,std=nan gmm:d=100000,k=100000 gauss:d=2,mean=0x1p3 gmm:k=2,d=2,d=3; do
  printf '%s' "$s" > "$corpus/data_spec/$(printf '%s' "$s" | tr ':,=/' '____').txt"
done
echo "corpus written to $corpus"
