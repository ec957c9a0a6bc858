#!/usr/bin/env bash
# tests/fuzz/make-corpus.sh: (re)create the named seeds of the fuzz targets in
# tests/fuzz/corpus/<target>/: small valid files written by cm itself and hand-made broken
# ones. Files named by a SHA-1 were added from fuzzing runs with libFuzzer's -merge=1 (inputs
# that reach new code); files named regression-* once crashed a reader. Both are left as
# they are. The PNG variants that cm does not write (gray + alpha, palette, 1-bit, interlaced,
# 16-bit) are assembled with python3's zlib and struct modules; gzip -n makes the IDX members.
# Usage: CM=build/cm tests/fuzz/make-corpus.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CM=${CM:-build/cm}
corpus=tests/fuzz/corpus
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for t in npy csv safetensors config model data_spec checkpoint columns idx png classifier; do mkdir -p "$corpus/$t"; done

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
# image arrays: uint8 [N, H, W], float32 [N, C, H, W], a pixel outside [0, 1], channels-last
npy images-u1.npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }" '\x00\x40\x80\xff\x01\x02\x03\x04'
npy images-f4-nchw.npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 1, 1), }" '\x00\x00\x00\x00\x00\x00\x00\x3f\x00\x00\x80\x3f'
npy images-above-one.npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }" '\x00\x00\x00\x40'
npy images-channels-last.npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 5), }" '\x01\x02\x03\x04\x05'

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

# --- idx: two 2 x 3 images and their labels, plain and gzip (one and two members), then broken
idx=$corpus/idx
images='\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x03\x00\x01\x02\x03\x04\x05\xfa\xfb\xfc\xfd\xfe\xff'
printf "$images" > "$idx/images.idx"
printf "$images" | gzip -n -9 > "$idx/images.idx.gz"
{ printf "$images" | head -c 21 | gzip -n; printf "$images" | tail -c 7 | gzip -n; } > "$idx/two-members.idx.gz"
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x09\x00\x04' > "$idx/labels.idx"
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x09\x00\x04' | gzip -n > "$idx/labels.idx.gz"
printf '\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x80\x3f' > "$idx/float-type.idx"
printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x03' > "$idx/zero-dimension.idx"
printf '\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' > "$idx/huge-dimensions.idx"
printf "$images" | head -c 20 > "$idx/truncated.idx"
{ printf "$images"; printf '\x00'; } > "$idx/trailing.idx"
{ printf "$images" | gzip -n; printf 'junk'; } > "$idx/gzip-then-junk.idx.gz"
printf "$images" | gzip -n | head -c 30 > "$idx/gzip-truncated.idx.gz"

# --- png: grids written by cm (gray and RGB), then variants assembled by hand
"$CM" data --data shapes:size=8 --n 1 --seed 1 --png "$corpus/png/shapes-gray.png"
npy rgb.npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3, 2, 2), }" '\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xff'
mv "$corpus/npy/rgb.npy" "$work/rgb.npy"
"$CM" data --data "$work/rgb.npy" --n 2 --columns 2 --png "$corpus/png/grid-rgb.png"
python3 - "$corpus/png" <<'PY'
import struct, sys, zlib
out = sys.argv[1]
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
def png(name, width, height, depth, colour, raw, interlace=0, extra=b'', cut=None, flip=None):
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, depth, colour, 0, 0, interlace))
    data += extra + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
    if flip is not None: data = data[:flip] + bytes([data[flip] ^ 1]) + data[flip + 1:]
    open(out + '/' + name, 'wb').write(data[:cut])
png('gray-alpha.png', 2, 1, 8, 4, b'\x00\x64\x07\xc8\x09')
png('rgba-up-filter.png', 1, 2, 8, 6, b'\x00\x01\x02\x03\x04\x02\x01\x01\x01\x01')
png('palette-trns.png', 2, 1, 8, 3, b'\x00\x01\x00', extra=chunk(b'PLTE', b'\xff\x00\x00\x00\x00\xff') + chunk(b'tRNS', b'\x80'))
png('gray-1bit.png', 8, 1, 1, 0, b'\x00\xa0')
png('gray-adam7.png', 2, 2, 8, 0, b'\x00\x0b\x00\x16\x00\x21\x2c', interlace=1)
png('gray-16bit.png', 1, 1, 16, 0, b'\x00\x01\x02')
png('huge-width.png', 100000, 1, 8, 0, b'\x00\x01')
png('huge-promise.png', 16000, 16000, 8, 2, b'\x00' * 10)
png('truncated.png', 3, 2, 8, 0, b'\x00\x0a\x14\x1e\x00\x28\x32\x3c', cut=40)
png('bad-crc.png', 3, 2, 8, 0, b'\x00\x0a\x14\x1e\x00\x28\x32\x3c', flip=19)
png('short-data.png', 3, 2, 8, 0, b'\x00\x0a\x14\x1e')
PY

# --- data spec strings
for s in moons 8gaussians swissroll checkerboard rings gauss:d=3,mean=1,std=2 \
         gmm:d=2,k=3,sep=4,std=0.3,seed=7 gmm:d=1,k=5 gauss:d=0 gmm:d=2,k=2, \
         gauss:d=2,std=nan gmm:d=100000,k=100000 gauss:d=2,mean=0x1p3 gmm:k=2,d=2,d=3 \
         shapes shapes:size=8,seed=3 shapes:size=7 shapes:seed=1,size=256 fashion-mnist:test; do
  printf '%s' "$s" > "$corpus/data_spec/$(printf '%s' "$s" | tr ':,=/' '____').txt"
done
echo "corpus written to $corpus"

# --- classifier: a tiny classifier of 8 x 8 shapes written by cm, then edited copies (another
# format, a negative group count, a configuration that disagrees with the tensors, a NaN weight)
"$CM" classifier train --data shapes:size=8 --test shapes:size=8 --test-draws 10 --steps 2 \
  --batch 4 --warmup 1 --width1 4 --width2 4 --features 4 --groups 2 \
  --out "$corpus/classifier/tiny.safetensors" > /dev/null
python3 - "$corpus/classifier" <<'PY'
import json, struct, sys
folder = sys.argv[1]
raw = open(folder + "/tiny.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
def write(name, edit_header=None, edit_data=None):
    h = json.loads(json.dumps(header))
    d = bytearray(data)
    if edit_header: edit_header(h)
    if edit_data: edit_data(h, d)
    text = json.dumps(h).encode()
    text += b" " * (-len(text) % 8)
    open(folder + "/" + name, "wb").write(struct.pack("<Q", len(text)) + text + bytes(d))
write("other-format.safetensors", lambda h: h["__metadata__"].update(format="cm-model-2"))
write("negative-groups.safetensors", lambda h: h["__metadata__"].update(groups="-2"))
write("wider-than-tensors.safetensors", lambda h: h["__metadata__"].update(width1="8"))
write("huge-image.safetensors", lambda h: h["__metadata__"].update(height="4096", width="4096"))
def nan_weight(h, d):
    begin = h["classifier.conv1.weight"]["data_offsets"][0]
    d[begin:begin + 4] = struct.pack("<f", float("nan"))
write("nan-weight.safetensors", edit_data=nan_weight)
PY
