#!/usr/bin/env bash
# tests/cli_eval.sh: what `cm eval` reports is what it says. The value between two files is the
# exact W1 / W2 of the files as given (all points; or exactly --n of the samples), checked
# against an independent exact solver in another language and algorithm
# (tests/metrics/exact_ot.py: a dense Hungarian method in Python + numpy, with its own dual
# certificate) to 1e-6 relative, for n = m and n != m, in 2-D (network simplex) and 16-D
# (assignment method); the floor is a separate, labelled estimate with its range; no ratio for
# MMD^2 and energy; a pandas index column is refused with a hint and --columns selects data.
# Usage: CM=build/cm tests/cli_eval.sh     Ends with "cli_eval: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
python=/usr/bin/python3
exact="$(dirname "$0")/metrics/exact_ot.py"

# --- the value is the exact distance of the files, as an independent solver finds it
if ! "$python" -c 'import numpy' 2>/dev/null; then
  failed=$((failed + 1))
  echo "  FAIL: $python has no numpy (Debian package python3-numpy; scripts/deps installs it)"
fi
"$CM" data --data moons --n 400 --seed 1 --out "$work/m400a.npy"
"$CM" data --data moons --n 400 --seed 2 --out "$work/m400b.csv"
"$CM" data --data moons --n 300 --seed 3 --out "$work/m300.npy"
"$CM" data --data moons --n 200 --seed 4 --out "$work/m200.npy"
"$CM" data --data gmm:d=16,k=4,sep=3,std=0.5 --n 300 --seed 1 --out "$work/g300a.npy"
"$CM" data --data gmm:d=16,k=4,sep=3,std=0.5 --n 300 --seed 2 --out "$work/g300b.npy"
"$CM" data --data gmm:d=16,k=4,sep=3,std=0.5 --n 240 --seed 3 --out "$work/g240.npy"
"$CM" data --data gmm:d=16,k=4,sep=3,std=0.5 --n 160 --seed 4 --out "$work/g160.npy"
json_value() { sed -E "s/.*\"$1\": ([0-9.e+-]+).*/\1/"; }
agree() { # agree SAMPLES REF P [cm options...]: cm's value = exact_ot.py's to 1e-6 relative
  local samples=$1 ref=$2 p=$3; shift 3
  local ours theirs
  ours=$("$CM" eval --samples "$samples" --ref "$ref" --metric "w$p" --json "$@" | json_value "w$p")
  theirs=$("$python" "$exact" "$samples" "$ref" "$p" 2>&1)
  check "W$p $(basename "$samples") vs $(basename "$ref") $*: cm $ours, exact_ot.py $theirs" \
    "awk -v a='$ours' -v b='$theirs' 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 1e-6 * b) }'"
}
agree "$work/m400a.npy" "$work/m400b.csv" 1
agree "$work/m400a.npy" "$work/m400b.csv" 2
agree "$work/m300.npy" "$work/m200.npy" 1
agree "$work/m200.npy" "$work/m300.npy" 2
agree "$work/g300a.npy" "$work/g300b.npy" 1
agree "$work/g300a.npy" "$work/g300b.npy" 2
agree "$work/g240.npy" "$work/g160.npy" 1
# --n: exactly the first N rows of the samples, against the whole reference
head -n 151 "$work/m400b.csv" > "$work/m150.csv"
"$CM" data --data "$work/m150.csv" --n 150 --out "$work/unused.npy"
python_first() { "$python" -c "import numpy as np; np.save('$2', np.load('$1')[:$3])"; }
python_first "$work/m400a.npy" "$work/m400a-first250.npy" 250
ours=$("$CM" eval --samples "$work/m400a.npy" --n 250 --ref "$work/m300.npy" --metric w1 --json | json_value w1)
theirs=$("$python" "$exact" "$work/m400a-first250.npy" "$work/m300.npy" 1)
check "--n 250: cm $ours, exact_ot.py on the first 250 rows $theirs" \
  "awk -v a='$ours' -v b='$theirs' 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * b) }'"
expect 0 "samples +.*m400a.npy: the first 250 of 400 rows" -- "$CM" eval --samples "$work/m400a.npy" --n 250 --ref "$work/m300.npy"
# a file against itself is at distance 0 (it was 0.0987 with a split reference)
expect 0 "\"w1\": 0, " -- "$CM" eval --samples "$work/m400a.npy" --ref "$work/m400a.npy" --json
expect 0 "\"w2\": 0, .*\"sw1\": 0, " -- "$CM" eval --samples "$work/g300a.npy" --ref "$work/g300a.npy" --metric w2,sw1 --json

# --- the floor: a separate estimate with its sizes, repetitions and range
expect 0 "\"ref_kind\": \"file\", \"n\": 400, \"ref_points\": 400, .*\"floor_splits\": 5, \"floor_points_a\": 200, \"floor_points_b\": 200" -- \
  "$CM" eval --samples "$work/m400a.npy" --ref "$work/m400b.csv" --json
expect 0 "\"w1_floor\": [0-9.e+-]+, \"w1_ratio\": [0-9.e+-]+, \"w1_floor_low\": [0-9.e+-]+, \"w1_floor_high\": [0-9.e+-]+, \"w1_matched\": [0-9.e+-]+, \"w1_matched_low\": " -- \
  "$CM" eval --samples "$work/m400a.npy" --ref "$work/m400b.csv" --json
expect 0 "\"n\": 100, \"ref_points\": 300, .*\"floor_points_a\": 100, \"floor_points_b\": 200" -- "$CM" eval --samples "$work/m200.npy" --n 100 --ref "$work/m300.npy" --json --floor-splits 3
expect 0 "\"floor_points_a\": 150, \"floor_points_b\": 150" -- "$CM" eval --samples "$work/m400a.npy" --ref "$work/m300.npy" --json
expect 0 "\"ref_kind\": \"law\", \"n\": 400, \"ref_points\": 400, .*\"floor_splits\": 7, \"floor_points_a\": 400, \"floor_points_b\": 400" -- \
  "$CM" eval --samples "$work/m400a.npy" --ref moons --floor-splits 7 --json
law=$("$CM" eval --samples "$work/m400a.npy" --ref moons --json)
check "a law has no matched column: $law" "! echo '$law' | grep -q matched"
expect 0 "floor: 5 random splits of the reference into disjoint A \\(200 rows\\) and B \\(200 rows\\)" -- \
  "$CM" eval --samples "$work/m400a.npy" --ref "$work/m400b.csv"
expect 0 "floor: the same metric between two independent fresh draws of 400 points each" -- \
  "$CM" eval --samples "$work/m400a.npy" --ref moons
expect 0 "value: the metric between the 400 samples and the 400 reference rows" -- \
  "$CM" eval --samples "$work/m400a.npy" --ref "$work/m400b.csv"
# the floor's range: min <= median <= max, over --floor-splits repetitions
j=$("$CM" eval --samples "$work/m400a.npy" --ref "$work/m400b.csv" --metric w1 --floor-splits 9 --json)
check "floor range ordered: $j" "awk -v l=$(echo "$j" | json_value w1_floor_low) -v m=$(echo "$j" | json_value w1_floor) -v h=$(echo "$j" | json_value w1_floor_high) 'BEGIN { exit !(l <= m && m <= h && l < h) }'"
expect 2 "--floor-splits: '0'" -- "$CM" eval --samples "$work/m400a.npy" --ref moons --floor-splits 0
expect 2 "--floor-splits 1001: at most 1000" -- "$CM" eval --samples "$work/m400a.npy" --ref moons --floor-splits 1001

# --- MMD^2 and energy: never a ratio (they can be negative), the floor's range instead
j=$("$CM" eval --samples "$work/m400a.npy" --ref "$work/m400b.csv" --metric mmd,energy --json)
check "no ratio for mmd and energy: $j" "! echo '$j' | grep -q -E 'mmd_ratio|energy_ratio'"
expect 0 "\"mmd_floor_low\": [0-9.e+-]+, \"mmd_floor_high\": " -- echo "$j"
expect 0 "^MMD\\^2 \\(Gauss\\) .* -$" -- "$CM" eval --samples "$work/m400a.npy" --ref moons --metric mmd
expect 0 "^energy distance .* -$" -- "$CM" eval --samples "$work/m400a.npy" --ref "$work/m400b.csv" --metric energy

# --- an index column is not a data dimension; --columns selects the data
"$python" - "$work" <<'EOF'
import sys
import numpy as np
work = sys.argv[1]
x = np.load(work + "/m400a.npy").astype(np.float64)
with open(work + "/pandas.csv", "w") as f:           # pandas' default to_csv
    f.write(",a,b\n")
    for i, (a, b) in enumerate(x):
        f.write(f"{i},{a!r},{b!r}\n")
with open(work + "/id.csv", "w") as f:               # an id column counting from 1
    f.write("id,a,b\n")
    for i, (a, b) in enumerate(x):
        f.write(f"{i + 1},{a!r},{b!r}\n")
with open(work + "/bare.csv", "w") as f:             # no header, a leading row number
    for i, (a, b) in enumerate(x):
        f.write(f"{i},{a!r},{b!r}\n")
EOF
expect 1 "pandas.csv': column 0 \\(unnamed in the header\\) holds the integers 0..399 in order: a row index, not a data dimension.*pandas.csv:columns=a,b" -- \
  "$CM" eval --samples "$work/m400a.npy" --ref "$work/pandas.csv"
expect 1 "id.csv': column 0 \\(id\\) holds the integers 1..400" -- "$CM" eval --samples "$work/m400a.npy" --ref "$work/id.csv"
expect 1 "bare.csv': column 0 \\(no header\\).*columns=1-2.*columns=0-2 keeps it" -- "$CM" data --data "$work/bare.csv" --n 5 --out "$work/x.npy"
expect 1 "a row index" -- "$CM" eval --samples "$work/pandas.csv" --ref moons
one_line_error "$CM" eval --samples "$work/m400a.npy" --ref "$work/pandas.csv"
expect 0 "\"ref\": \"[^\"]*pandas.csv:columns=a,b\", .*\"w1\": 0, " -- "$CM" eval --samples "$work/m400a.npy" --ref "$work/pandas.csv" --columns a,b --json
expect 0 "\"w1\": 0, " -- "$CM" eval --samples "$work/m400a.npy" --ref "$work/id.csv:columns=1-2" --json
expect 0 "\"w1\": 0, " -- "$CM" eval --samples "$work/pandas.csv" --sample-columns b,a --ref "$work/id.csv" --columns b,a --json
expect 0 "\"samples\": \"[^\"]*bare.csv:columns=1,2\", .*\"w1\": 0, " -- "$CM" eval --samples "$work/bare.csv:columns=1,2" --ref "$work/m400a.npy" --json
expect 2 "columns: 'c' is neither a column name nor a 0-based index or range A-B \\(the header has '', 'a', 'b'\\)" -- \
  "$CM" eval --samples "$work/m400a.npy" --ref "$work/pandas.csv" --columns a,c
expect 2 "columns: '1' selects column 1 a second time" -- "$CM" data --data "$work/pandas.csv" --columns a,1 --n 5 --out "$work/x.npy"
expect 2 "index 3, but the file has 3 columns" -- "$CM" data --data "$work/pandas.csv" --columns 3 --n 5 --out "$work/x.npy"
expect 2 "selects columns, and columns 'a' are given too" -- "$CM" data --data "$work/pandas.csv:columns=a" --columns a --n 5 --out "$work/x.npy"
expect 2 "columns apply to .csv and .npy files only" -- "$CM" data --data moons --columns 0 --n 5 --out "$work/x.npy"
expect 0 "" -- "$CM" data --data "$work/pandas.csv" --columns b --n 50 --out "$work/b.npy"
expect 0 "dimension 1" -- "$CM" eval --samples "$work/b.npy" --ref "$work/pandas.csv" --columns 2

echo "cli_eval: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
