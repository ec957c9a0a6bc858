#!/usr/bin/env bash
# tests/cli_sweep.sh: `cm sweep` and `cm theory learned|bound|network` as a user meets them:
# outputs that exist and read back, exit codes (0 ok, 1 runtime error, 2 usage error) and
# one-line errors for malformed, NaN, negative, huge and missing values.
# Usage: CM=build/cm tests/cli_sweep.sh     Ends with "cli_sweep: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists

# --- cm sweep
expect 0 "usage: cm sweep" -- "$CM" sweep --help
expect 0 "wrote" -- "$CM" sweep --kind gaussian --vary T=50,100,200,400 --d 1,16 --out "$work/g"
check "sweep.csv has a header and 8 rows" '[ "$(wc -l < "$work/g/sweep.csv")" -eq 9 ]'
check "sweep.png is a PNG" 'head -c 4 "$work/g/sweep.png" | grep -q PNG'
check "fits.csv: slope near -0.8 (log T / T)" 'awk -F, "NR==2 && \$3 < -0.7 && \$3 > -0.95 {ok=1} END {exit !ok}" "$work/g/fits.csv"'
expect 0 "slope" -- "$CM" sweep --kind gaussian --vary d=1,4,16 --T 100 --spectrum iso,aniso --out "$work/g2"
expect 0 "wrote" -- "$CM" sweep --kind learned --vary n=100,400 --T 20 --eval 200 --out "$work/l"
check "learned sweep has eps columns" 'head -1 "$work/l/sweep.csv" | grep -q "eps,eps_F"'
expect 2 "--vary is required" -- "$CM" sweep --kind gaussian --out "$work/x"
expect 2 "--out is required" -- "$CM" sweep --kind gaussian --vary T=50,100
expect 2 "expected NAME=A,B" -- "$CM" sweep --vary T --out "$work/x"
expect 2 "malformed list" -- "$CM" sweep --vary T=50,,100 --out "$work/x"
expect 2 "malformed list" -- "$CM" sweep --vary T= --out "$work/x"
expect 2 "'nan' is not a positive finite number" -- "$CM" sweep --vary T=50,nan --out "$work/x"
expect 2 "'-5' is not a positive finite number" -- "$CM" sweep --vary T=-5,50 --out "$work/x"
expect 2 "must be an integer in" -- "$CM" sweep --vary T=50,1e12 --out "$work/x"
expect 2 "must be an integer in" -- "$CM" sweep --vary T=50.5,100 --out "$work/x"
expect 2 "must be an integer in" -- "$CM" sweep --vary T=1,100 --out "$work/x"
expect 2 "unknown parameter" -- "$CM" sweep --vary zeta=1,2 --out "$work/x"
expect 2 "--kind 'bogus'" -- "$CM" sweep --kind bogus --vary T=50,100 --out "$work/x"
expect 2 "needs --sep" -- "$CM" sweep --kind mixture1d --vary T=50,100 --out "$work/x"
expect 2 "has no effect" -- "$CM" sweep --kind gaussian --vary n=10,20 --out "$work/x"
expect 2 "--d: 'abc'" -- "$CM" sweep --vary T=50,100 --d abc --out "$work/x"
expect 2 "--var: 'nan'" -- "$CM" sweep --vary T=50,100 --var nan --out "$work/x"
expect 2 "--d needs a value" -- "$CM" sweep --vary T=50,100 --out "$work/x" --d
expect 2 "series: at most" -- "$CM" sweep --vary T=50,100 --d 1,2,3,4,5,6,7,8,9 --var 1,2 --out "$work/x"
expect 2 "--spectrum" -- "$CM" sweep --vary T=50,100 --spectrum flat --out "$work/x"
one_line_error "$CM" sweep --vary T=50,nan --out "$work/x"

# --- cm theory bound
expect 0 "C_1 = 1 \(UNKNOWN" -- "$CM" theory bound --T 1000 --d 4 --L 2 --eps 0.1
expect 0 '"rate": 4026.47199' -- "$CM" theory bound --T 1000 --d 4 --L 2 --json
expect 0 '"C1_known": false' -- "$CM" theory bound --T 100 --json
expect 0 '"required_T": 332105.108' -- "$CM" theory bound --target 1 --json
expect 2 "--T: 'nan'" -- "$CM" theory bound --T nan
expect 2 "--L: '-1'" -- "$CM" theory bound --L -1
expect 2 "--d: '0.5'" -- "$CM" theory bound --d 0.5
expect 2 "overflows" -- "$CM" theory bound --L 1e200 --d 1e10
one_line_error "$CM" theory bound --T nan

# --- cm theory learned
expect 0 '"w1_learned".*"eps_l1".*"eps_f_rms".*"lipschitz_learned".*"lipschitz_exact"' -- \
  "$CM" theory learned --data gauss:d=1,std=0.5 --T 30 --n 100 --eval 200 --json
expect 0 "eps_F" -- "$CM" theory learned --data gmm:d=1,k=2,sep=2,std=0.5 --T 20 --n 200 --eval 100 --csv "$work/steps.csv"
check "per-step CSV has T - 1 rows" '[ "$(wc -l < "$work/steps.csv")" -eq 20 ]'
expect 2 "--class: unknown function class 'cubic'" -- "$CM" theory learned --class cubic
expect 2 "--data" -- "$CM" theory learned --data moons
expect 2 "--T: '1'" -- "$CM" theory learned --T 1
expect 2 "--T 200000: at most" -- "$CM" theory learned --T 200000
expect 2 "--bandwidth: 'nan'" -- "$CM" theory learned --class rff --bandwidth nan
expect 2 "population fit" -- "$CM" theory learned --class rff --n 0 --T 10
one_line_error "$CM" theory learned --class cubic

# --- cm theory network: a small lhw model trained here (few steps: only the plumbing is tested)
expect 0 "" -- "$CM" train --data gauss:d=2,std=0.5 --method lhw --T 20 --steps 200 --width 32 --seed 1 --out "$work/m"
expect 0 '"w1".*"w1_floor".*"lipschitz_learned".*"gap_total".*"gap_exact_total"' -- \
  "$CM" theory network --model "$work/m/model.safetensors" --n 500 --csv "$work/gap.csv" --json
check "gap CSV has T - 1 rows and the exact column" '[ "$(wc -l < "$work/gap.csv")" -eq 20 ] && head -1 "$work/gap.csv" | grep -q gap_exact_map'
expect 2 "--model is required" -- "$CM" theory network
expect 1 "missing" -- "$CM" theory network --model "$work/missing.safetensors"
expect 2 "--n 20000: at most" -- "$CM" theory network --model "$work/m/model.safetensors" --n 20000

echo "cli_sweep: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
