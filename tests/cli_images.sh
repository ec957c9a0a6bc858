#!/usr/bin/env bash
# tests/cli_images.sh: image data through the command line: `cm data` on the generated shapes
# set, NPY image arrays, PNG folders (with and without class sub-folders) and Fashion-MNIST
# (when dataset-fashion-mnist is installed): NPY [N, H, W] outputs, PNG grids of the right size,
# labels, reproducibility, and one-line errors with exit codes 1 (bad input) or 2 (usage).
# Usage: CM=build/cm tests/cli_images.sh     Ends with "cli_images: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists

# width and height of a PNG (big-endian uint32 at bytes 16 and 20)
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}'; }
# the shape in an NPY header: has_shape FILE "(64, 16, 16)"
has_shape() { head -c 128 "$1" | tr -d '\000-\011\013-\037\177-\377' | grep -qF "'shape': $2"; }

# --- shapes: NPY [N, H, W] float32, a square grid, labels, the same draws for the same seed
expect 0 "" -- "$CM" data --data shapes:size=16 --n 64 --out "$work/x.npy" --png "$work/grid.png" --labels "$work/labels.csv"
check "x.npy is [64, 16, 16] float32" 'has_shape "$work/x.npy" "(64, 16, 16)"'
check "x.npy holds 64 x 256 floats" '[ "$(wc -c < "$work/x.npy")" -eq $((128 + 64 * 256 * 4)) ]'
check "grid.png is a PNG" 'head -c 8 "$work/grid.png" | grep -q PNG'
check "grid.png is 8 x 8 images of 16 with 2 pixels of padding (146 x 146)" '[ "$(png_size "$work/grid.png")" = 146x146 ]'
check "64 labels in 0..2" '[ "$(grep -cE "^[012]$" "$work/labels.csv")" -eq 64 ]'
check "all three classes drawn" '[ "$(sort -u "$work/labels.csv" | wc -l)" -eq 3 ]'
expect 0 "" -- "$CM" data --data shapes:size=16 --n 64 --out "$work/x2.npy"
check "same seed, same images" 'cmp -s "$work/x.npy" "$work/x2.npy"'
expect 0 "" -- "$CM" data --data shapes:size=16 --n 64 --seed 1 --out "$work/x3.npy"
check "another seed, other images" '! cmp -s "$work/x.npy" "$work/x3.npy"'
expect 0 "" -- "$CM" data --data shapes:size=16,seed=1 --n 64 --out "$work/x4.npy"
check "another spec seed, other images" '! cmp -s "$work/x.npy" "$work/x4.npy"'
expect 0 "" -- "$CM" data --data shapes:size=8 --n 10 --grid-columns 4 --png "$work/g4.png"
check "4 columns of 8-pixel images, 3 rows (42 x 32)" '[ "$(png_size "$work/g4.png")" = 42x32 ]'
expect 0 "" -- "$CM" data --data shapes:size=8 --n 3 --out "$work/x.csv"
check "CSV: one flattened image a row" '[ "$(wc -l < "$work/x.csv")" -eq 3 ] && [ "$(head -1 "$work/x.csv" | tr , "\n" | wc -l)" -eq 64 ]'
expect 0 "" -- "$CM" eval --samples "$work/x.npy" --ref shapes:size=16 --metric sw1
expect 0 "usage: cm data" -- "$CM" data --help

# --- NPY image arrays as a source: cm's own output reads back as an image set
expect 0 "" -- "$CM" data --data "$work/x.npy" --n 10 --out "$work/y.npy" --png "$work/y.png"
check "y.npy is [10, 16, 16]" 'has_shape "$work/y.npy" "(10, 16, 16)"'
printf "\x93NUMPY\x01\x00\x3f\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }\n\x00\x00\x00\x00\x00\x00\x00\x40" > "$work/two.npy"
expect 1 "outside \[0, 1\]" -- "$CM" data --data "$work/two.npy" --n 1 --out "$work/z.npy"
printf "\x93NUMPY\x01\x00\x42\x00{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2, 5), }\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" > "$work/rgbx.npy"
expect 0 "" -- "$CM" data --data "$work/rgbx.npy" --n 3 --out "$work/rgbx-out.npy"
check "a 2-channel array is [N, C, H, W]" 'has_shape "$work/rgbx-out.npy" "(3, 2, 2, 5)"'
expect 2 "--png: images of 2 channels" -- "$CM" data --data "$work/rgbx.npy" --n 3 --png "$work/rgbx.png"

# --- PNG folders: files sorted by name; sub-folders as classes
mkdir -p "$work/pngs" "$work/classes/boots" "$work/classes/bags" "$work/empty" "$work/broken"
for s in 1 2 3; do
  "$CM" data --data shapes:size=8 --n 1 --seed $s --png "$work/pngs/$s.png"
  "$CM" data --data shapes:size=8 --n 1 --seed $s --png "$work/classes/boots/$s.png"
done
"$CM" data --data shapes:size=8 --n 1 --seed 9 --png "$work/classes/bags/9.png"
expect 0 "" -- "$CM" data --data "$work/pngs/" --n 5 --out "$work/p.npy"
check "folder of 12 x 12 PNGs (8 + 2 x 2 padding) gives [5, 12, 12]" 'has_shape "$work/p.npy" "(5, 12, 12)"'
expect 0 "" -- "$CM" data --data "$work/classes/" --n 40 --labels "$work/cl.csv"
check "labels 0 (bags) and 1 (boots)" '[ "$(sort -u "$work/cl.csv" | tr "\n" ,)" = "0,1," ]'
expect 2 "labels: .* has no labels" -- "$CM" data --data "$work/pngs/" --n 5 --labels "$work/nl.csv"
expect 1 "no PNG files" -- "$CM" data --data "$work/empty/" --n 5 --out "$work/z.npy"
printf 'not a png' > "$work/broken/a.png"
expect 1 "a.png: not a PNG file" -- "$CM" data --data "$work/broken/" --n 5 --out "$work/z.npy"
cp "$work/grid.png" "$work/pngs/4.png"
expect 1 "all images of a folder must agree" -- "$CM" data --data "$work/pngs/" --n 5 --out "$work/z.npy"
cm_absolute="$(cd "$(dirname "$CM")" && pwd)/$(basename "$CM")"
expect 2 "named with a '/'" -- sh -c 'cd "$1" && "$2" data --data pngs --n 5 --out z.npy' sh "$work" "$cm_absolute"

# --- usage and spec errors
expect 2 "--png: 'moons' is not an image source" -- "$CM" data --data moons --n 5 --png "$work/m.png"
expect 2 "--labels: 'moons' has no labels" -- "$CM" data --data moons --n 5 --labels "$work/m.csv"
expect 2 "--out is required" -- "$CM" data --data shapes --n 5
expect 2 "size=7 must be within 8..256" -- "$CM" data --data shapes:size=7 --n 5 --out "$work/z.npy"
expect 2 "unknown key 'colour'" -- "$CM" data --data shapes:colour=1 --n 5 --out "$work/z.npy"
expect 1 "" -- "$CM" data --data shapes --n 5 --png "$work/no/such/dir/g.png"
check "no grid left behind" '[ ! -e "$work/no" ]'
one_line_error "$CM" data --data shapes:size=7 --n 5 --out "$work/z.npy"
one_line_error "$CM" data --data "$work/broken/" --n 5 --out "$work/z.npy"
one_line_error "$CM" data --data "$work/two.npy" --n 1 --out "$work/z.npy"

# --- Fashion-MNIST (Debian package dataset-fashion-mnist)
if [ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  expect 0 "" -- "$CM" data --data fashion-mnist:test --n 16 --out "$work/f.npy" --png "$work/f.png" --labels "$work/f.csv"
  check "f.npy is [16, 28, 28]" 'has_shape "$work/f.npy" "(16, 28, 28)"'
  check "f.png is 4 x 4 images of 28 (122 x 122)" '[ "$(png_size "$work/f.png")" = 122x122 ]'
  check "labels in 0..9" '[ "$(grep -cE "^[0-9]$" "$work/f.csv")" -eq 16 ]'
  expect 0 "" -- "$CM" data --data fashion-mnist --n 4 --out "$work/ft.npy"
else
  echo "  skipped: dataset-fashion-mnist is not installed"
fi

echo "cli_images: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
