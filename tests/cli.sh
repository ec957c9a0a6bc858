#!/usr/bin/env bash
# tests/cli.sh: the cm command line as a user meets it: exit codes (0 ok, 1 runtime error,
# 2 usage error), one-line error messages naming the problem, no crash (a signal would give
# an exit code >= 128), outputs that read back, and nothing overwritten on failure.
# Usage: CM=build/cm tests/cli.sh     Ends with "cli: N passed, N failed".
set -u
CM=${CM:-build/cm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0

# expect CODE PATTERN -- command...: exit code CODE, stderr+stdout matching PATTERN (grep -E)
expect() {
  local code=$1 pattern=$2; shift 3
  local output status
  output=$("$@" 2>&1); status=$?
  if [ "$status" -eq "$code" ] && echo "$output" | grep -qE -- "$pattern"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "  FAIL: $* -> exit $status (want $code), output:"; echo "$output" | head -5 | sed 's/^/      /'
  fi
}
# errors must be a single line on stderr
one_line_error() {
  local lines; lines=$("$@" 2>&1 >/dev/null | wc -l)
  if [ "$lines" -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "  FAIL: $* printed $lines error lines"; fi
}

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
expect 2 "learning rate 0 must be > 0" -- "$CM" train --data moons --lr 0 --steps 2 --out "$work/r"
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
expect 0 "" -- "$CM" sample --model "$work/ict/model.safetensors" --n 64 --sigmas 80,0.8 --out "$work/ict/s2.csv" --quiet
expect 0 "" -- "$CM" sample --model "$work/lhw/model.safetensors" --n 64 --times 100,40 --out "$work/lhw/s2.npy" --quiet
expect 0 "" -- "$CM" sample --model "$work/lhw/model.safetensors" --n 64 --sigmas 100,1 --out "$work/lhw/s3.npy" --quiet

# --- reproducibility: two runs with the same seed give bit-identical models and samples
for run in a b; do
  "$CM" train --data 8gaussians --method ict --steps 30 --width 32 --depth 2 --batch 64 --seed 7 --out "$work/repro-$run" --quiet
  "$CM" sample --model "$work/repro-$run/model.safetensors" --n 3000 --sigmas 80,0.8 --seed 9 --out "$work/repro-$run/s.npy" --quiet
done
expect 0 "" -- cmp "$work/repro-a/model.safetensors" "$work/repro-b/model.safetensors"
expect 0 "" -- cmp "$work/repro-a/s.npy" "$work/repro-b/s.npy"
"$CM" train --data 8gaussians --method ict --steps 30 --width 32 --depth 2 --batch 64 --seed 8 --out "$work/repro-c" --quiet
expect 1 "differ" -- cmp "$work/repro-a/model.safetensors" "$work/repro-c/model.safetensors"

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
expect 2 "must be finite and >" -- "$CM" sample --model "$work/ict/model.safetensors" --sigmas 80,0.001 --out "$work/s.npy"
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
expect 0 "used of" -- "$CM" eval --samples "$work/moons.npy" --ref "$work/small.csv"
"$CM" data --data gauss:d=1 --n 200 --out "$work/g1.npy"
expect 0 "W1 \\(exact, 1-D\\)" -- "$CM" eval --samples "$work/g1.npy" --ref gauss:d=1
one_line_error "$CM" eval --samples "$work/gmm.npy" --ref moons

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
