#!/usr/bin/env bash
# tests/cli.sh: the cm command line as a user meets it: exit codes (0 ok, 1 runtime error,
# 2 usage error), one-line error messages naming the problem, no crash (a signal would give
# an exit code >= 128), outputs that read back, and nothing overwritten on failure.
# Usage: CM=build/cm tests/cli.sh     Ends with "cli: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists

# --- top level
expect 2 "usage: cm <command>" -- "$CM"
expect 0 "commands:" -- "$CM" --help
expect 2 "unknown command 'frobnicate'" -- "$CM" frobnicate
for c in train sample data eval; do expect 0 "usage: cm $c" -- "$CM" "$c" --help; done

# --- cm data
expect 0 "" -- "$CM" data --data moons --n 100 --seed 1 --out "$work/moons.npy"
expect 0 "" -- "$CM" data --data moons --n 100 --seed 1 --out "$work/moons.csv"
expect 0 "" -- "$CM" data --data gmm:d=16,k=8,sep=4,std=0.3,seed=1 --n 50 --out "$work/gmm.npy"
expect 2 "unknown option '--bogus'" -- "$CM" data --data moons --bogus 1 --out "$work/x.npy"
expect 2 "--data is required" -- "$CM" data --out "$work/x.npy"
expect 2 "--n needs a value" -- "$CM" data --data moons --out "$work/x.npy" --n
expect 2 "--n: '0' is not an integer" -- "$CM" data --data moons --n 0 --out "$work/x.npy"
expect 2 "--n: '-5' is not an integer" -- "$CM" data --data moons --n -5 --out "$work/x.npy"
expect 2 "--n: 'abc' is not an integer" -- "$CM" data --data moons --n abc --out "$work/x.npy"
expect 2 "--n: '1e999' is not an integer" -- "$CM" data --data moons --n 1e999 --out "$work/x.npy"
expect 2 "--n 1099511627776: at most" -- "$CM" data --data moons --n 1099511627776 --out "$work/x.npy"
expect 2 "unknown|valid" -- "$CM" data --data nosuchset --n 10 --out "$work/x.npy"
expect 2 "gmm" -- "$CM" data --data gmm:d=0,k=2 --n 10 --out "$work/x.npy"
expect 1 "std=.nan. is not finite" -- "$CM" data --data gauss:d=2,std=nan --n 10 --out "$work/x.npy"
expect 2 "extension" -- "$CM" data --data moons --n 10 --out "$work/x.txt"
expect 1 "" -- "$CM" data --data moons --n 10 --out "$work/no/such/dir/x.npy"
one_line_error "$CM" data --data nosuchset --n 10 --out "$work/x.npy"

# --- bad data files for training and evaluation
printf 'x,y\n1,2\n3\n' > "$work/ragged.csv"
printf 'x,y\n1,2\nnan,3\n' > "$work/nan.csv"
printf '' > "$work/empty.csv"
printf '1,2\n3,4\n5,6\n7,8\n' > "$work/small.csv"
head -c 100 "$work/moons.npy" > "$work/truncated.npy"
printf 'garbage garbage garbage' > "$work/garbage.npy"
expect 1 "ragged.csv:3: 1 fields" -- "$CM" train --data "$work/ragged.csv" --steps 2 --out "$work/r"
expect 1 "nan.csv" -- "$CM" train --data "$work/nan.csv" --steps 2 --out "$work/r"
expect 1 "empty.csv" -- "$CM" train --data "$work/empty.csv" --steps 2 --out "$work/r"
expect 1 "truncated" -- "$CM" train --data "$work/truncated.npy" --steps 2 --out "$work/r"
expect 1 "garbage.npy" -- "$CM" train --data "$work/garbage.npy" --steps 2 --out "$work/r"
expect 1 "missing.csv" -- "$CM" train --data "$work/missing.csv" --steps 2 --out "$work/r"
one_line_error "$CM" train --data "$work/ragged.csv" --steps 2 --out "$work/r"

# --- cm train: flags
expect 2 "unknown method 'foo'" -- "$CM" train --data moons --method foo --steps 2 --out "$work/r"
expect 2 "unknown teacher" -- "$CM" train --data moons --method lhw --teacher nope --steps 2 --out "$work/r"
expect 2 "--lr: 'nan' is not a finite number" -- "$CM" train --data moons --lr nan --steps 2 --out "$work/r"
expect 2 "lr: 0 must be > 0" -- "$CM" train --data moons --lr 0 --steps 2 --out "$work/r"
expect 2 "--steps: '0'" -- "$CM" train --data moons --steps 0 --out "$work/r"
expect 2 "--width" -- "$CM" train --data moons --width 0 --steps 2 --out "$work/r"
expect 2 "depth" -- "$CM" train --data moons --depth 99 --steps 2 --out "$work/r"
expect 2 "embed" -- "$CM" train --data moons --embed 7 --steps 2 --out "$work/r"
expect 2 "ema" -- "$CM" train --data moons --ema 1 --steps 2 --out "$work/r"
expect 2 "steps .* must be at least" -- "$CM" train --data moons --method lhw --teacher sequential --T 100 --steps 10 --out "$work/r"
expect 2 "--out is required" -- "$CM" train --data moons --steps 2
expect 2 "--steps given twice" -- "$CM" train --data moons --steps 2 --steps 3 --out "$work/r"
: > "$work/afile"
expect 1 "not a directory" -- "$CM" train --data moons --steps 2 --out "$work/afile/sub" --quiet

# --- train, sample, eval: a tiny run of each method, outputs read back
for m in ict ct lhw; do
  expect 0 "" -- "$CM" train --data moons --method "$m" --steps 20 --width 16 --depth 1 --batch 32 --out "$work/$m" --quiet
  expect 0 "" -- test -s "$work/$m/model.safetensors" -a -s "$work/$m/train.csv" -a -s "$work/$m/config.json" -a -s "$work/$m/loss.png"
  expect 0 "" -- "$CM" sample --model "$work/$m/model.safetensors" --n 64 --seed 1 --out "$work/$m/s.npy" --png "$work/$m/s.png" --quiet
  expect 0 "sliced W1" -- "$CM" eval --samples "$work/$m/s.npy" --ref moons
done
expect 0 "^step,loss,lr,elapsed" -- head -n 1 "$work/ict/train.csv"
rows=$(($(wc -l < "$work/ict/train.csv") - 1))
expect 0 "" -- test "$rows" -eq 20
expect 0 "\"method\": \"ict\"" -- cat "$work/ict/config.json"
expect 0 "" -- "$CM" sample --model "$work/ict/model.safetensors" --n 64 --sigmas 10,0.8 --out "$work/ict/s2.csv" --quiet
expect 0 "" -- "$CM" sample --model "$work/lhw/model.safetensors" --n 64 --times 100,40 --out "$work/lhw/s2.npy" --quiet
expect 0 "" -- "$CM" sample --model "$work/lhw/model.safetensors" --n 64 --sigmas 100,1 --out "$work/lhw/s3.npy" --quiet

# --- reproducibility: two runs with the same seed give bit-identical models and samples (the
# model file records the command line, so the byte comparison runs the same command, with the
# same relative --out, in two directories; runs into other directories have the same weights)
cm_abs=$(cd "$(dirname "$CM")" && pwd)/$(basename "$CM")
for run in a b; do
  mkdir -p "$work/repro-$run"
  env -C "$work/repro-$run" "$cm_abs" train --data 8gaussians --method ict --steps 30 --width 32 --depth 2 --batch 64 --seed 7 --out run --quiet
  "$CM" sample --model "$work/repro-$run/run/model.safetensors" --n 3000 --sigmas 10,0.8 --seed 9 --out "$work/repro-$run/s.npy" --quiet
done
expect 0 "" -- cmp "$work/repro-a/run/model.safetensors" "$work/repro-b/run/model.safetensors"
expect 0 "" -- cmp "$work/repro-a/s.npy" "$work/repro-b/s.npy"
"$CM" train --data 8gaussians --method ict --steps 30 --width 32 --depth 2 --batch 64 --seed 7 --out "$work/repro-d" --quiet
weights() { "$CM" info "$1" --json | sed -E 's/.*"weights_fnv1a":"([0-9a-f]+)".*/\1/'; }
check "same seed, another --out: the same weights" "[ '$(weights "$work/repro-a/run")' = '$(weights "$work/repro-d")' ]"
"$CM" train --data 8gaussians --method ict --steps 30 --width 32 --depth 2 --batch 64 --seed 8 --out "$work/repro-c" --quiet
expect 1 "differ" -- cmp "$work/repro-a/run/model.safetensors" "$work/repro-c/model.safetensors"
check "another seed: other weights" "[ '$(weights "$work/repro-a/run")' != '$(weights "$work/repro-c")' ]"

# --- cm sample: bad input
expect 2 "--model is required" -- "$CM" sample --n 10 --out "$work/s.npy"
expect 2 "give --out and/or --png" -- "$CM" sample --model "$work/ict/model.safetensors"
expect 1 "missing.safetensors" -- "$CM" sample --model "$work/missing.safetensors" --n 10 --out "$work/s.npy"
expect 1 "moons.npy" -- "$CM" sample --model "$work/moons.npy" --n 10 --out "$work/s.npy"
head -c 200 "$work/ict/model.safetensors" > "$work/trunc.safetensors"
expect 1 "trunc.safetensors" -- "$CM" sample --model "$work/trunc.safetensors" --n 10 --out "$work/s.npy"
expect 2 "must decrease" -- "$CM" sample --model "$work/ict/model.safetensors" --sigmas 0.8,80 --out "$work/s.npy"
expect 2 "--sigmas" -- "$CM" sample --model "$work/ict/model.safetensors" --sigmas 80,nan --out "$work/s.npy"
expect 2 "--sigmas" -- "$CM" sample --model "$work/ict/model.safetensors" --sigmas 80,,1 --out "$work/s.npy"
expect 2 "must be finite and >" -- "$CM" sample --model "$work/ict/model.safetensors" --sigmas 10,0.001 --out "$work/s.npy"
expect 2 "--times applies to lhw" -- "$CM" sample --model "$work/ict/model.safetensors" --times 10,5 --out "$work/s.npy"
expect 2 "--times: 1000 is not an integer in" -- "$CM" sample --model "$work/lhw/model.safetensors" --times 1000 --out "$work/s.npy"
# a failed run leaves an existing output untouched
cp "$work/ict/s.npy" "$work/keep.npy"; before=$(md5sum < "$work/keep.npy")
expect 2 "" -- "$CM" sample --model "$work/ict/model.safetensors" --sigmas 0.8,80 --out "$work/keep.npy"
expect 0 "" -- test "$before" = "$(md5sum < "$work/keep.npy")"

# --- cm eval: bad input
expect 1 "dimension" -- "$CM" eval --samples "$work/gmm.npy" --ref moons
expect 1 "nan.csv" -- "$CM" eval --samples "$work/nan.csv" --ref moons
expect 1 "missing.npy" -- "$CM" eval --samples "$work/missing.npy" --ref moons
expect 2 "--ref is required" -- "$CM" eval --samples "$work/moons.npy"
expect 0 "\"sw1\": " -- "$CM" eval --samples "$work/moons.npy" --ref moons --json
expect 0 "small.csv: all 4 rows of the file" -- "$CM" eval --samples "$work/moons.npy" --ref "$work/small.csv"
"$CM" data --data gauss:d=1 --n 200 --out "$work/g1.npy"
expect 0 "W1 \\(exact, 1-D\\)" -- "$CM" eval --samples "$work/g1.npy" --ref gauss:d=1
one_line_error "$CM" eval --samples "$work/gmm.npy" --ref moons

# --- checkpoints, resume and bad input
ck=(--width 16 --depth 1 --batch 32 --quiet)
expect 0 "" -- "$CM" train --data moons --steps 20 --save-every 5 --keep 2 "${ck[@]}" --out "$work/ck"
expect 0 "" -- test -L "$work/ck/checkpoint.safetensors" -a -s "$work/ck/checkpoints/step-00000020.safetensors"
expect 0 "^2$" -- sh -c "ls '$work/ck/checkpoints' | wc -l"
expect 0 "" -- "$CM" sample --model "$work/ck/checkpoint.safetensors" --n 16 --out "$work/ck-s.npy" --quiet
expect 0 "already complete" -- "$CM" train --resume "$work/ck"
expect 0 "already complete" -- "$CM" train --resume "$work/ck" --steps 20 --lr 0.001 --data moons --out "$work/ck"
snapshot() { (cd "$1" && md5sum train.csv model.safetensors checkpoints/* 2>/dev/null; ls -la checkpoints | sed 1d | awk '{print $5, $9}'); }
before=$(snapshot "$work/ck")
expect 2 "--steps 30, but the run has 20 steps \(20 done\).*cosine.*--init-from" -- "$CM" train --resume "$work/ck" --steps 30
expect 2 "\"lr\" is 0.01, the stored run has 0.001" -- "$CM" train --resume "$work/ck" --lr 0.01
expect 2 "\"method\" is \"ct\"" -- "$CM" train --resume "$work/ck" --method ct
expect 2 "\"width\" is 17" -- "$CM" train --resume "$work/ck" --width 17
expect 2 "data 'rings' is not the run's data 'moons'" -- "$CM" train --resume "$work/ck" --data rings
expect 2 "is not the resumed directory" -- "$CM" train --resume "$work/ck" --out "$work/elsewhere"
expect 2 "contradict" -- "$CM" train --resume "$work/ck" --overwrite
expect 2 "--keep: '0' is not an integer" -- "$CM" train --resume "$work/ck" --keep 0
expect 2 "--save-every: '-1' is not an integer" -- "$CM" train --resume "$work/ck" --save-every -1
expect 2 "--threads 65: at most 64" -- "$CM" train --resume "$work/ck" --threads 65
expect 2 "unknown option '--bogus'" -- "$CM" train --resume "$work/ck" --bogus 1
expect 2 "--resume needs a value" -- "$CM" train --resume
expect 1 "no such run directory" -- "$CM" train --resume "$work/no-such-run"
mkdir -p "$work/empty-run"
expect 1 "no checkpoint to resume from" -- "$CM" train --resume "$work/empty-run"
expect 0 "" -- test "$before" = "$(snapshot "$work/ck")"
one_line_error "$CM" train --resume "$work/ck" --steps 30
# damaged checkpoints: refused with the file named, nothing overwritten
cp -r "$work/ck" "$work/ck-bad"; target=$(readlink -f "$work/ck-bad/checkpoint.safetensors")
damaged() { # damaged LABEL PATTERN: the resume of ck-bad fails with exit 1 naming the file
  before=$(snapshot "$work/ck-bad")
  expect 1 "$2" -- "$CM" train --resume "$work/ck-bad"
  expect 0 "" -- test "$before" = "$(snapshot "$work/ck-bad")"
}
head -c 300 "$work/ck/checkpoints/step-00000020.safetensors" > "$target"; damaged truncated "checkpoint.safetensors: header length"
: > "$target"; damaged empty "checkpoint.safetensors: truncated: 0 bytes"
cp "$work/moons.npy" "$target"; damaged wrong-format "checkpoint.safetensors: header length"
cp "$work/ck/model.safetensors" "$target"; damaged model-not-checkpoint "not a checkpoint"
sed 's/"cm.checkpoint.step":"20"/"cm.checkpoint.step":"99"/' "$work/ck/checkpoints/step-00000020.safetensors" > "$target"
damaged step-out-of-range "cm.checkpoint.step = '99' is not an integer in \\[0, 20\\]"
sed 's/"cm.checkpoint.version":"2"/"cm.checkpoint.version":"7"/' "$work/ck/checkpoints/step-00000020.safetensors" > "$target"
damaged future-version "checkpoint version '7'"
ln -sf checkpoints/step-99999999.safetensors "$work/ck-bad/checkpoint.safetensors"; damaged dangling-link "cannot open"
one_line_error "$CM" train --resume "$work/ck-bad"
# a checkpoint whose curriculum does not match its step (edited) is refused
"$CM" train --data moons --steps 40 --save-every 10 "${ck[@]}" --out "$work/ck-edited" >/dev/null 2>&1
sed 's/"cm.checkpoint.step":"40"/"cm.checkpoint.step":"30"/' "$work/ck-edited/checkpoints/step-00000040.safetensors" > "$work/ck-edited/checkpoints/step-00000030.safetensors"
ln -sf checkpoints/step-00000030.safetensors "$work/ck-edited/checkpoint.safetensors"
expect 1 "stored curriculum \(N = 1281, mu = 0\) differs from this build's \(N = 641, mu = 0\) at step 30" -- "$CM" train --resume "$work/ck-edited" --quiet
expect 2 "holds a checkpoint that cannot be read.*--force" -- "$CM" train --data moons --steps 40 "${ck[@]}" --out "$work/ck-edited"
expect 0 "" -- "$CM" train --data moons --steps 40 --overwrite "${ck[@]}" --out "$work/ck-edited"
expect 0 "^1$" -- sh -c "ls '$work/ck-edited/checkpoints' | wc -l"
# file data: a changed file is refused on resume; the same file under another path is accepted
printf 'x,y\n1,2\n3,4\n5,7\n-1,0\n' > "$work/pts.csv"
expect 0 "" -- "$CM" train --data "$work/pts.csv" --steps 10 "${ck[@]}" --out "$work/ck-file"
cp "$work/pts.csv" "$work/pts-copy.csv"
expect 0 "already complete" -- "$CM" train --resume "$work/ck-file" --data "$work/pts-copy.csv"
printf 'x,y\n1,2\n3,4\n5,7.5\n-1,0\n' > "$work/pts.csv"
expect 2 "pts.csv' \\(4 x 2, FNV-1a [0-9a-f]+\\) differs from the run's" -- "$CM" train --resume "$work/ck-file"
# a non-finite loss stops the run naming the step and keeps the last good checkpoint, which
# resumes (and fails again at the same step); a new run does not replace the unfinished one
expect 1 "non-finite value: step [0-9]+: loss .*the last good checkpoint is .*checkpoint.safetensors \\(step [0-9]+\\)" -- \
  "$CM" train --data moons --lr 1e30 --steps 100 --save-every 1 "${ck[@]}" --out "$work/ck-nan"
failed_at=$(sed -n '$s/,.*//p' "$work/ck-nan/train.csv")
expect 1 "non-finite value: step $((failed_at + 1)): " -- "$CM" train --resume "$work/ck-nan"
expect 2 "holds an unfinished run \\(ict on moons, step $failed_at of 100\\).*--resume" -- "$CM" train --data moons --steps 100 "${ck[@]}" --out "$work/ck-nan"
one_line_error "$CM" train --resume "$work/ck-nan" --quiet
# bad inputs for every reader: empty, NaN-filled, wrong dimension, oversized (a sparse 5 GiB file)
: > "$work/empty.npy"; : > "$work/empty.safetensors"
cp "$work/moons.npy" "$work/nan.npy"; printf '\x00\x00\xc0\x7f' | dd of="$work/nan.npy" bs=1 seek=140 conv=notrunc 2>/dev/null
truncate -s 5G "$work/big.npy"; truncate -s 5G "$work/big.safetensors"; truncate -s 5G "$work/big.csv"
expect 1 "empty.npy: not an NPY file" -- "$CM" train --data "$work/empty.npy" --steps 2 --out "$work/r"
expect 1 "nan.npy: non-finite value at row 1, column 1" -- "$CM" train --data "$work/nan.npy" --steps 2 --out "$work/r"
expect 1 "big.npy: file is 5368709120 bytes, over the limit" -- "$CM" train --data "$work/big.npy" --steps 2 --out "$work/r"
expect 1 "big.csv: file is 5368709120 bytes, over the limit" -- "$CM" train --data "$work/big.csv" --steps 2 --out "$work/r"
expect 1 "empty.safetensors: truncated: 0 bytes" -- "$CM" sample --model "$work/empty.safetensors" --n 4 --out "$work/s.npy"
expect 1 "big.safetensors: file is 5368709120 bytes, over the limit" -- "$CM" sample --model "$work/big.safetensors" --n 4 --out "$work/s.npy"
expect 1 "nan.npy: non-finite" -- "$CM" eval --samples "$work/nan.npy" --ref moons
expect 1 "empty.npy" -- "$CM" eval --samples "$work/empty.npy" --ref moons
expect 1 "big.npy: file is 5368709120 bytes" -- "$CM" eval --samples "$work/big.npy" --ref moons
expect 1 "dimension" -- "$CM" eval --samples "$work/pts.csv" --ref gauss:d=3
expect 2 "d=1000000 is out of range" -- "$CM" train --data gauss:d=1000000 --steps 2 --out "$work/r"
expect 2 "the network has [0-9]+ parameters, more than" -- "$CM" train --data moons --width 65536 --depth 16 --steps 2 --out "$work/r"
expect 2 "one forward pass of the batch takes .* FLOPs" -- "$CM" train --data moons --batch 1048576 --width 65536 --depth 1 --steps 2 --out "$work/r"
one_line_error "$CM" sample --model "$work/big.safetensors" --n 4 --out "$work/s.npy"
rm -f "$work/big.npy" "$work/big.safetensors" "$work/big.csv"

# --- cm eval: exact distances
"$CM" data --data moons --n 400 --seed 1 --out "$work/ot-a.npy"
"$CM" data --data moons --n 400 --seed 2 --out "$work/ot-b.npy"
"$CM" data --data gauss:d=3,mean=0.5 --n 300 --seed 1 --out "$work/ot-g3.npy"
expect 0 "W1 \(exact OT\) +[0-9.e+-]+ +[0-9.e+-]+" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons
expect 0 "\"w1\": [0-9.e+-]+, \"w1_floor\": [0-9.e+-]+, \"w1_ratio\": .*\"sw1\": .*\"sw1_floor\": .*\"sw1_ratio\": " -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --json
expect 0 "\"w2\": .*\"sw2\": .*\"msw1\": .*\"mmd\": .*\"energy\": .*\"mmd_bandwidth\": " -- "$CM" eval --samples "$work/ot-a.npy" --ref "$work/ot-b.npy" --metric w2,sw2,msw1,mmd,energy --json
expect 0 "\"w1_ci_low\": [0-9.e+-]+, \"w1_ci_high\": " -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --metric w1 --bootstrap 8 --json
expect 0 "95% bootstrap interval" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --metric sw1 --bootstrap 4
expect 0 "W2 Gaussian fit \(closed form\)" -- "$CM" eval --samples "$work/ot-g3.npy" --ref gauss:d=3,mean=0.5
expect 0 "\"gauss_fit_w2\": [0-9.e+-]+, \"gauss_fit_w2_floor\": " -- "$CM" eval --samples "$work/ot-g3.npy" --ref gauss:d=3,mean=0.5 --json
expect 0 "\"n\": 100, " -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --n 100 --json
expect 0 "w1: 400 x 400 points is above the exact-OT limit: the value is the mean of 3 exact solves on random subsamples of at most 150 points" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --ot-max 150 --ot-repeats 3
expect 0 "\"w1_subsample\": 150, \"w1_repeats\": 2" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --ot-max 150 --ot-repeats 2 --json
a1=$("$CM" eval --samples "$work/ot-a.npy" --ref "$work/ot-b.npy" --metric w1,w2,mmd --seed 4 --json)
a2=$("$CM" eval --samples "$work/ot-a.npy" --ref "$work/ot-b.npy" --metric w1,w2,mmd --seed 4 --json)
expect 0 "" -- test "$a1" = "$a2"
expect 2 "unknown metric 'w3'" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --metric w1,w3
expect 2 "--n 500: .* has only 400 rows" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --n 500
expect 2 "--bootstrap 1" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --bootstrap 1
expect 2 "--ot-max: '1'" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --ot-max 1
expect 2 "--bandwidth" -- "$CM" eval --samples "$work/ot-a.npy" --ref moons --metric mmd --bandwidth -1
expect 1 "dimension mismatch: samples have dimension 3, the reference moons has 2" -- "$CM" eval --samples "$work/ot-g3.npy" --ref moons --metric w1
expect 1 "dimension" -- "$CM" eval --samples "$work/ot-a.npy" --ref "$work/ot-g3.npy"
expect 1 "empty.csv" -- "$CM" eval --samples "$work/empty.csv" --ref moons
expect 1 "nan.csv" -- "$CM" eval --samples "$work/ot-a.npy" --ref "$work/nan.csv"
expect 1 "garbage.npy" -- "$CM" eval --samples "$work/garbage.npy" --ref moons --metric w2
expect 1 "missing.npy" -- "$CM" eval --samples "$work/ot-a.npy" --ref "$work/missing.npy"
one_line_error "$CM" eval --samples "$work/ot-g3.npy" --ref moons --metric w1,w2
one_line_error "$CM" eval --samples "$work/ot-a.npy" --ref moons --metric bogus

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
