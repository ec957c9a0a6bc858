#!/usr/bin/env bash
# tests/cli_theory.sh: `cm theory`, `cm theory gaussian` and `cm theory mixture1d` as a user meets
# them: the exact JSON forms of docs/theory.md with their keys and a hand-computed value, one line each,
# tables and tidy CSV for lists, and exit codes (0 ok, 1 runtime error, 2 usage error) with
# one-line errors for malformed, NaN, negative, huge and missing values.
# Usage: CM=build/cm tests/cli_theory.sh     Ends with "cli_theory: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists

# --- dispatch
expect 2 "usage: cm theory <subcommand>" -- "$CM" theory
expect 0 "gaussian .*mixture1d|mixture1d" -- "$CM" theory --help
expect 2 "unknown subcommand 'bogus'" -- "$CM" theory bogus
expect 0 "usage: cm theory gaussian" -- "$CM" theory gaussian --help
expect 0 "usage: cm theory mixture1d" -- "$CM" theory mixture1d --help
expect 0 "theory" -- "$CM" --help

# --- gaussian: the exact form, keys, and T = 2 by hand (W2 = |g_2 - 1| = 0.2216331697...)
g="$CM theory gaussian --d 1 --var 1 --T 2 --c0 2 --c1 4 --json"
expect 0 '"w2_ideal":0\.22163316' -- $g
expect 0 '"w1_ideal":0\.17683768' -- $g
expect 0 '"w1_exact_map":0[,}]' -- $g
$g > "$work/g.json" 2>&1
check "gaussian --json prints one line" '[ "$(wc -l < "$work/g.json")" -eq 1 ]'
for key in w1_ideal w2_ideal w1_exact_map; do
  expect 0 "\"$key\":[0-9]" -- "$CM" theory gaussian --d 16 --var 2 --T 100 --c0 2 --c1 4 --json
done
expect 0 '"w1_ideal":null.*"w1_ideal_lower":[0-9]' -- "$CM" theory gaussian --d 16 --spectrum 'logspace(-2,2)' --T 100 --json
expect 0 '"mean":-1' -- "$CM" theory gaussian --d 4 --var 0.5 --mean -1 --T 50 --json
"$CM" theory gaussian --d 1,16 --var 1,4 --T 10,20 --csv "$work/g.csv" > "$work/g.txt" 2>&1
check "gaussian list: 8 table rows + header" '[ "$(wc -l < "$work/g.txt")" -eq 9 ]'
check "gaussian csv: header + 8 rows" '[ "$(wc -l < "$work/g.csv")" -eq 9 ] && head -1 "$work/g.csv" | grep -q "^d,var,spectrum,mean,T,c0,c1"'
"$CM" theory gaussian --d 1,16 --T 10,20 --json > "$work/g4.json" 2>&1
check "gaussian list --json: one line per row" '[ "$(wc -l < "$work/g4.json")" -eq 4 ]'

# --- gaussian: bad flags
expect 2 "--T: 1 is not an integer" -- "$CM" theory gaussian --T 1
expect 2 "--T: 2.5 is not an integer" -- "$CM" theory gaussian --T 2.5
expect 2 "--T: 1e\+12 is not an integer" -- "$CM" theory gaussian --T 1e12
expect 2 "--d: '0'" -- "$CM" theory gaussian --d 0
expect 2 "--d: 1.5 is not an integer" -- "$CM" theory gaussian --d 1.5
expect 2 "--var: 'nan'" -- "$CM" theory gaussian --var nan
expect 2 "--var: '-1'" -- "$CM" theory gaussian --var -1
expect 2 "--c0: 'inf'" -- "$CM" theory gaussian --c0 inf
expect 2 "--c1 needs a value" -- "$CM" theory gaussian --c1
expect 2 "--mean: 'nan'" -- "$CM" theory gaussian --mean nan
expect 2 "give --var or --spectrum" -- "$CM" theory gaussian --var 1 --spectrum 'logspace(-2,2)'
expect 2 "logspace\(A,B\)" -- "$CM" theory gaussian --d 4 --spectrum 'logspace(-2'
expect 2 "logspace\(A,B\)" -- "$CM" theory gaussian --d 4 --spectrum 'logspace(nan,2)'
expect 2 "unknown option '--bogus'" -- "$CM" theory gaussian --bogus 1
expect 2 "exceed" -- "$CM" theory gaussian --d 1,2,3,4,5,6,7,8 --T 2,3,4,5,6,7,8,9 --var 1,2,3,4,5,6,7,8 --c0 1,2,3,4,5,6,7,8,9
expect 1 "cannot write" -- "$CM" theory gaussian --csv "$work/no/such/dir/g.csv"
one_line_error "$CM" theory gaussian --T 1
one_line_error "$CM" theory gaussian --d 4 --spectrum 'logspace(-2'

# --- mixture1d: the exact form and its keys
m="$CM theory mixture1d --means -2,2 --std 0.5 --T 20 --c0 2 --c1 4 --json"
$m > "$work/m.json" 2>&1
check "mixture1d --json prints one line" '[ "$(wc -l < "$work/m.json")" -eq 1 ]'
for key in w1_ideal w1_ddim lipschitz w1_exact_map refinement_change; do
  check "mixture1d key $key" 'grep -qE "\"$key\":[0-9]" "$work/m.json"'
done
expect 0 '"means":\[-3,0\.5,4\]' -- "$CM" theory mixture1d --means=-3,0.5,4 --std 1 --T 10 --grid 64 --no-refine --json
expect 0 '"refinement_change":null' -- "$CM" theory mixture1d --means 0 --std 1 --T 10 --grid 64 --no-refine --json
"$CM" theory mixture1d --means -1,1 --std 0.5,1 --T 10,20 --grid 64 --no-refine --csv "$work/m.csv" > "$work/m.txt" 2>&1
check "mixture1d list: 4 table rows + header" '[ "$(wc -l < "$work/m.txt")" -eq 5 ]'
check "mixture1d csv: header + 4 rows" '[ "$(wc -l < "$work/m.csv")" -eq 5 ] && head -1 "$work/m.csv" | grep -q "^means,std,T"'
expect 0 "w1_ideal" -- "$CM" theory mixture1d --means -1,1 --weights 1,3 --T 10 --grid 64 --no-refine

# --- mixture1d: bad flags
expect 2 "--means is required" -- "$CM" theory mixture1d --std 1
expect 2 "--means needs a non-empty value" -- "$CM" theory mixture1d --means ''
expect 2 "--means: '1,,2' is not a comma-separated list" -- "$CM" theory mixture1d --means 1,,2
expect 2 "--means: '1,' is not a comma-separated list" -- "$CM" theory mixture1d --means 1,
expect 2 "--means: 'nan' is not a finite number" -- "$CM" theory mixture1d --means 1,nan
expect 2 "--means: 'abc' is not a finite number" -- "$CM" theory mixture1d --means abc
expect 2 "--means: '1e999' is not a finite number" -- "$CM" theory mixture1d --means 1e999
expect 2 "--means: 1e\+300 is out of" -- "$CM" theory mixture1d --means 0,1e300
expect 2 "--means: '2x' is not a finite number" -- "$CM" theory mixture1d --means 1,2x
expect 2 "--means: ' 1' is not a finite number" -- "$CM" theory mixture1d --means ' 1'
expect 2 "--weights has 1 values for 2 means" -- "$CM" theory mixture1d --means 1,2 --weights 1
expect 2 "--std: '-1'" -- "$CM" theory mixture1d --means 1,2 --std -1
expect 2 "--std: 'nan'" -- "$CM" theory mixture1d --means 1,2 --std nan
expect 2 "--grid: '2'" -- "$CM" theory mixture1d --means 1,2 --grid 2
expect 2 "grid_points 99999999999 not in|exceeds" -- "$CM" theory mixture1d --means 1,2 --grid 99999999999
expect 2 "exceeds 3e\+11 steps" -- "$CM" theory mixture1d --means 1,2 --T 10000000 --grid 100000
expect 2 "exceeds 3e\+11 steps" -- "$CM" theory gaussian --d 100000 --spectrum 'logspace(-1,1)' --T 10000000
expect 2 "--nodes: '0'" -- "$CM" theory mixture1d --means 1,2 --nodes 0
expect 2 "hermite_nodes 100000 not in" -- "$CM" theory mixture1d --means 1,2 --T 10 --nodes 100000
expect 2 "--halfwidth: '0.5'" -- "$CM" theory mixture1d --means 1,2 --halfwidth 0.5
expect 2 "halfwidth_stds 1e\+06 not in" -- "$CM" theory mixture1d --means 1,2 --halfwidth 1e6
expect 2 "--T: 1 is not an integer" -- "$CM" theory mixture1d --means 1,2 --T 1
expect 2 "--c0: '0'" -- "$CM" theory mixture1d --means 1,2 --c0 0
expect 1 "cannot write" -- "$CM" theory mixture1d --means 1,2 --T 10 --grid 16 --no-refine --csv "$work/no/such/dir/m.csv"
one_line_error "$CM" theory mixture1d --means 1,nan
one_line_error "$CM" theory mixture1d --means 1,2 --grid 99999999999

echo "cli_theory: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
