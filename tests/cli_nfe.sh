#!/usr/bin/env bash
# tests/cli_nfe.sh: the few-step sampling commands (docs/sampling.md) as a user meets them: cm train
# --method dsm|cd, cm sample on a dsm model (--sampler/--steps/--grid), cm nfe on models and
# --gaussian; exit codes (0 ok, 1 runtime error, 2 usage error), one-line errors, no crash,
# outputs that exist and read back. Tiny networks and few steps: seconds in all.
# Usage: CM=build/cm tests/cli_nfe.sh     Ends with "cli_nfe: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists

small="--width 16 --depth 1 --embed 8 --batch 64 --quiet"

# --- training a denoiser and distilling it
expect 0 "" -- "$CM" train --data moons --method dsm --steps 60 $small --out "$work/dsm"
exists "$work/dsm/model.safetensors"
expect 0 '"method": "dsm"' -- cat "$work/dsm/config.json"
expect 0 '"lr": 0.01' -- cat "$work/dsm/config.json"
expect 0 "" -- "$CM" train --data moons --method cd --teacher-model "$work/dsm/model.safetensors" --steps 40 --save-every 20 $small --out "$work/cd"
expect 0 '"cd_solver": "heun"' -- cat "$work/cd/config.json"
expect 0 '"target_ema": 0.9(5|49)' -- cat "$work/cd/config.json"
expect 0 "" -- "$CM" train --data gmm:d=2,k=3 --method cd --cd-solver euler --cd-levels 6 --steps 30 $small --out "$work/cdlaw"
expect 0 "already complete" -- "$CM" train --resume "$work/cd"
expect 2 "needs --teacher-model" -- "$CM" train --data moons --method cd --steps 10 $small --out "$work/cdx"
expect 2 "applies to --method cd" -- "$CM" train --data moons --method ict --teacher-model "$work/dsm/model.safetensors" --steps 10 $small --out "$work/ictx"
expect 2 "consistency function, not a denoiser" -- "$CM" train --data moons --method cd --teacher-model "$work/cd/model.safetensors" --steps 10 $small --out "$work/cdy"
expect 1 "" -- "$CM" train --data moons --method cd --teacher-model "$work/nosuch.safetensors" --steps 10 $small --out "$work/cdz"
expect 2 "unknown cd-solver 'rk4'" -- "$CM" train --data moons --method cd --cd-solver rk4 --steps 10 $small --out "$work/cdw"
expect 2 "--cd-levels: '1' is not an integer" -- "$CM" train --data moons --method cd --cd-levels 1 --steps 10 $small --out "$work/cdw"
expect 2 "--dsm-p-std: 'nan' is not a finite" -- "$CM" train --data moons --method dsm --dsm-p-std nan --steps 10 $small --out "$work/dsmw"
expect 2 "dsm-p-std: 0 must be > 0" -- "$CM" train --data moons --method dsm --dsm-p-std 0 --steps 10 $small --out "$work/dsmw"
expect 2 "edm weighting applies to dsm only" -- "$CM" train --data moons --method ict --weighting edm --steps 10 $small --out "$work/ictw"
one_line_error "$CM" train --data moons --method cd --steps 10 $small --out "$work/cdx2"

# --- sampling a denoiser
for s in ddim heun ddpm euler; do
  expect 0 "NFE" -- "$CM" sample --model "$work/dsm/model.safetensors" --sampler $s --steps 4 --n 50 --out "$work/$s.npy"
done
expect 0 "NFE 7" -- "$CM" sample --model "$work/dsm/model.safetensors" --sampler heun --steps 4 --grid lhw --n 50 --out "$work/h.csv"
expect 0 "" -- "$CM" eval --samples "$work/h.csv" --ref moons --metric sw1
expect 0 "" -- "$CM" sample --model "$work/dsm/model.safetensors" --n 50 --png "$work/dsm.png"
exists "$work/dsm.png"
expect 2 "unknown sampler 'rk4'" -- "$CM" sample --model "$work/dsm/model.safetensors" --sampler rk4 --n 10 --out "$work/x.npy"
expect 2 "unknown grid 'linear'" -- "$CM" sample --model "$work/dsm/model.safetensors" --grid linear --n 10 --out "$work/x.npy"
expect 2 "--steps: '0' is not an integer" -- "$CM" sample --model "$work/dsm/model.safetensors" --steps 0 --n 10 --out "$work/x.npy"
expect 2 "--steps 100000: at most" -- "$CM" sample --model "$work/dsm/model.safetensors" --steps 100000 --n 10 --out "$work/x.npy"
expect 2 "a dsm model takes --sampler" -- "$CM" sample --model "$work/dsm/model.safetensors" --sigmas 10,1 --n 10 --out "$work/x.npy"
expect 0 "cd, 2 steps" -- "$CM" sample --model "$work/cd/model.safetensors" --sigmas 10,0.5 --n 50 --out "$work/cd.npy"

# --- cm nfe
expect 0 "usage: cm nfe" -- "$CM" nfe --help
expect 0 "onestep.*multistep|multistep" -- "$CM" nfe --model "$work/cd/model.safetensors,$work/dsm/model.safetensors" --data moons --nfe 1,2,4 --n 200 --search-n 100 --iterations 4 --seeds 2 --csv "$work/nfe.csv" --png "$work/nfe.png" --quiet
exists "$work/nfe.csv"
exists "$work/nfe.png"
expect 0 "^model,method,sampler,data,nfe,steps,langevin_steps,langevin_step,delta,seed,w1,w1_floor,levels$" -- head -1 "$work/nfe.csv"
# one row per (model, sampler, NFE, seed), 2 seeds: cd 3 (one/multistep) + 2 (chain, NFE >= 2)
# + dsm ddim 3, heun 2 (budgets 1 and 2 are both N = 1), ddpm 3 = 13 cells, 26 rows + header
expect 0 "^27$" -- bash -c "wc -l < '$work/nfe.csv' | tr -d ' '"
expect 0 "^4$" -- grep -c heun "$work/nfe.csv"
expect 0 "^13$" -- bash -c "grep -c ',0,[0-9.e+-]*,[0-9.e+-]*,[^,]*$' '$work/nfe.csv'"
expect 0 "^13$" -- bash -c "grep -c ',1,[0-9.e+-]*,[0-9.e+-]*,[^,]*$' '$work/nfe.csv'"
expect 0 "mean over 2 sample seeds" -- "$CM" nfe --model "$work/cd/model.safetensors" --data moons --nfe 1 --n 100 --search-n 50 --iterations 2 --seeds 2 --quiet
# [LFC] with the exact score (gmm) and [JHMZ] overshoots: cells onestep, multistep 2,
# onestep+lfc x 2, multistep+lfc x 2, chain x 3 deltas = 9 cells, 2 seeds: 18 rows + header
expect 0 "chain-end" -- "$CM" nfe --model "$work/cdlaw/model.safetensors" --data gmm:d=2,k=3 --nfe 1,2 --n 100 --search-n 50 --iterations 2 --seeds 2 --langevin 1,3 --langevin-step 0.01 --delta 0,0.3,end --csv "$work/lfc.csv" --quiet
expect 0 "^19$" -- bash -c "wc -l < '$work/lfc.csv' | tr -d ' '"
expect 0 "^4$" -- grep -c "onestep+lfc" "$work/lfc.csv"
expect 0 "^4$" -- grep -c "multistep+lfc" "$work/lfc.csv"
expect 0 "^2$" -- grep -c "chain-d0.3,\"gmm:[^\"]*\",2,2,0,,0.3,[01],.*delta 0.3$" "$work/lfc.csv"
expect 0 "^2$" -- grep -c "onestep+lfc,\"gmm:[^\"]*\",4,1,3,0.01,,[01],.*lfc 3 x h 0.01 exact score$" "$work/lfc.csv"
# a cd model is searched on its 6-level grid: at most 5 levels above sigma_min, so the budget 8
# has no multistep row (and no error)
expect 0 "multistep +5 " -- "$CM" nfe --model "$work/cdlaw/model.safetensors" --data gmm:d=2,k=3 --nfe 1,5,8 --n 50 --search-n 50 --iterations 2 --seeds 1 --quiet
check "cd: a multistep row beyond its grid" "! '$CM' nfe --model '$work/cdlaw/model.safetensors' --data gmm:d=2,k=3 --nfe 1,5,8 --n 50 --search-n 50 --iterations 2 --seeds 1 --quiet | grep -q 'multistep  *8 '"
# --exact-map: the [JHMZ] sampler over the law's exact flow map. Chaining an exact map is exact,
# so with delta 0 every budget gives the same samples (the prior's error only): equal W1.
expect 0 "exact-map +law +chain-end" -- "$CM" nfe --exact-map --data gauss:d=2,mean=1,std=0.5 --nfe 1,2,4 --n 200 --seeds 1 --delta 0,end --csv "$work/exact.csv" --quiet
expect 0 "^5$" -- bash -c "grep -c '^exact-map,law,' '$work/exact.csv'"
# (the quoted data field holds commas: dropped before cutting out w1, field 11)
check "exact map: chaining changed W1 with the budget" "[ \$(grep '^exact-map,law,chain,' '$work/exact.csv' | sed 's/\"[^\"]*\"//' | cut -d, -f11 | sort -u | wc -l) -eq 1 ] && [ \$(grep '^exact-map,law,chain,' '$work/exact.csv' | sed 's/\"[^\"]*\"//' | cut -d, -f11 | head -1) != 0 ]"
expect 0 "exact-map" -- "$CM" nfe --exact-map --model "$work/cdlaw/model.safetensors" --data gmm:d=2,k=3 --nfe 1,2 --n 50 --search-n 50 --iterations 2 --seeds 1 --quiet
expect 2 "--exact-map needs a gauss: or gmm: source" -- "$CM" nfe --exact-map --data moons
expect 2 "applies to models, not --gaussian" -- "$CM" nfe --gaussian --exact-map
# more (model, sampler) series than the figure holds: the first 15 are drawn, a note says so
expect 0 "shows the first 15 series" -- "$CM" nfe --model "$work/cdlaw/model.safetensors" --data gmm:d=2,k=3 --nfe 1,2 --n 50 --search-n 50 --iterations 2 --seeds 1 --langevin 1 --delta 0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1,1.1,1.2,1.3,end --png "$work/many.png" --quiet
exists "$work/many.png"
# a two-time (cd2) model: one/multistep and chain rows like cd, [LFC] rows with the exact score:
# cells onestep, multistep 2, 4, onestep+lfc, multistep+lfc, chain x 2 budgets x 2 deltas = 9
expect 0 "" -- "$CM" train --data gmm:d=2,k=3 --method cd2 --steps 30 $small --out "$work/cd2"
expect 0 "cd2 +chain-d0.5 +4 " -- "$CM" nfe --model "$work/cd2/model.safetensors" --data gmm:d=2,k=3 --nfe 1,2,4 --n 100 --search-n 50 --iterations 2 --seeds 1 --langevin 2 --delta 0,0.5 --csv "$work/cd2.csv" --quiet
expect 0 "^10$" -- bash -c "wc -l < '$work/cd2.csv' | tr -d ' '"
expect 0 "^4$" -- grep -c "^cd2,cd2,chain" "$work/cd2.csv"
# a dsm score: the cd student adopted its teacher's transform; an ict run with the dsm's seed
# fits the same one; another seed does not
expect 0 "" -- "$CM" train --data moons --method ict --steps 20 $small --out "$work/ict"
expect 0 "" -- "$CM" train --data moons --method ict --steps 20 --seed 5 $small --out "$work/ict5"
expect 0 "onestep\+lfc +3 .*dsm score" -- "$CM" nfe --model "$work/cd/model.safetensors,$work/ict/model.safetensors" --data moons --nfe 1 --n 100 --search-n 50 --iterations 2 --seeds 1 --langevin 2 --score-model "$work/dsm/model.safetensors" --quiet
# a diverging correction (h far too large) is a row with W1 = inf, not a failure
expect 0 "onestep\+lfc +51 +inf" -- "$CM" nfe --model "$work/ict/model.safetensors" --data moons --nfe 1 --n 100 --search-n 50 --iterations 2 --seeds 1 --langevin 50 --langevin-step 10 --score-model "$work/dsm/model.safetensors" --png "$work/inf.png" --quiet
expect 2 "same data with the same seed" -- "$CM" nfe --model "$work/ict5/model.safetensors" --data moons --nfe 1 --n 100 --langevin 2 --score-model "$work/dsm/model.safetensors" --quiet
expect 2 "is a cd model, not a dsm denoiser" -- "$CM" nfe --model "$work/ict/model.safetensors" --data moons --nfe 1 --n 100 --langevin 2 --score-model "$work/cd/model.safetensors"
expect 1 "" -- "$CM" nfe --model "$work/ict/model.safetensors" --data moons --nfe 1 --n 100 --langevin 2 --score-model "$work/nosuch.safetensors"
expect 2 "--langevin needs a score" -- "$CM" nfe --model "$work/ict/model.safetensors" --data moons --nfe 1 --n 100 --langevin 2
expect 2 "need --langevin" -- "$CM" nfe --model "$work/ict/model.safetensors" --data moons --langevin-step 0.1
expect 2 "need --langevin" -- "$CM" nfe --model "$work/ict/model.safetensors" --data moons --score-model "$work/dsm/model.safetensors"
one_line_error "$CM" nfe --model "$work/ict5/model.safetensors" --data moons --nfe 1 --n 100 --langevin 2 --score-model "$work/dsm/model.safetensors" --quiet
one_line_error "$CM" nfe --model "$work/ict/model.safetensors" --data moons --nfe 1 --n 100 --langevin 2
one_line_error "$CM" nfe --model "$work/ict/model.safetensors" --data moons --nfe 1 --n 100 --langevin 2 --score-model "$work/nosuch.safetensors"
# bad values of the new flags
m="--model $work/ict/model.safetensors --data gmm:d=2,k=3"
expect 2 "--seeds: '0' is not an integer" -- "$CM" nfe $m --seeds 0
expect 2 "--seeds: 'nan' is not an integer" -- "$CM" nfe $m --seeds nan
expect 2 "--seeds 1000: at most 100" -- "$CM" nfe $m --seeds 1000
expect 2 "--seeds needs a value" -- "$CM" nfe $m --seeds
expect 2 "--langevin: '-1' is not" -- "$CM" nfe $m --langevin -1
expect 2 "--langevin: 'x' is not" -- "$CM" nfe $m --langevin x
expect 2 "--langevin: 'nan' is not" -- "$CM" nfe $m --langevin nan
expect 2 "--langevin: 1.5 is not an integer" -- "$CM" nfe $m --langevin 1.5
expect 2 "--langevin: 100000 is not an integer" -- "$CM" nfe $m --langevin 100000
expect 2 "--langevin-step: '0' is not" -- "$CM" nfe $m --langevin 1 --langevin-step 0
expect 2 "--langevin-step: 'nan' is not" -- "$CM" nfe $m --langevin 1 --langevin-step nan
expect 2 "--langevin-step: '-1' is not" -- "$CM" nfe $m --langevin 1 --langevin-step -1
expect 2 "--langevin-step 1e\+06: at most 10" -- "$CM" nfe $m --langevin 1 --langevin-step 1e6
expect 2 "--delta: 'nan' is not a number" -- "$CM" nfe $m --delta nan
expect 2 "--delta: '-1' is not a number" -- "$CM" nfe $m --delta -1
expect 2 "--delta: 'x' is not a number" -- "$CM" nfe $m --delta 0,x
expect 2 "--delta: '1e9' is not a number" -- "$CM" nfe $m --delta 1e9
expect 2 "--delta: no value" -- "$CM" nfe $m --delta ,
expect 2 "--seeds applies to models" -- "$CM" nfe --gaussian --seeds 2
expect 2 "--delta applies to models" -- "$CM" nfe --gaussian --delta 0.5
one_line_error "$CM" nfe $m --delta -1
one_line_error "$CM" nfe $m --seeds 1000
expect 0 "C. \[LFC\]" -- "$CM" nfe --gaussian --dims 1,4 --max-steps 8 --csv "$work/g.csv" --png "$work/g.png"
expect 0 "1 KL value\(s\) below 1e-14 .* are not drawn; the table and CSV hold them" -- "$CM" nfe --gaussian --dims 1 --max-steps 32 --png "$work/g32.png"
exists "$work/g.png"
expect 0 "kl_vs_steps" -- head -3 "$work/g.csv"
# --dims 1 alone: part C is in d = 2 and must not read past buffers sized for d = 1 (the
# sanitizer tier catches it)
expect 0 "linear-propto +0.2 " -- "$CM" nfe --gaussian --dims 1 --max-steps 2
expect 2 "give --model \(or --exact-map with --data\), or --gaussian" -- "$CM" nfe --data moons
expect 2 "--nfe: 1.5 is not an integer" -- "$CM" nfe --model "$work/cd/model.safetensors" --data moons --nfe 1.5
expect 2 "--nfe: 'nan'" -- "$CM" nfe --model "$work/cd/model.safetensors" --data moons --nfe nan
expect 2 "--nfe: '-1'" -- "$CM" nfe --model "$work/cd/model.safetensors" --data moons --nfe -1
expect 2 "--dims: 100000 is not an integer" -- "$CM" nfe --gaussian --dims 100000
expect 2 "--gaussian takes no --model" -- "$CM" nfe --gaussian --model "$work/cd/model.safetensors"
expect 2 "--eta: '0' is not a finite number" -- "$CM" nfe --gaussian --eta 0
expect 2 "--iterations 1000: at most" -- "$CM" nfe --model "$work/cd/model.safetensors" --data moons --iterations 1000
expect 2 "--n needs a value" -- "$CM" nfe --model "$work/cd/model.safetensors" --data moons --n
expect 1 "dimension" -- "$CM" nfe --model "$work/cd/model.safetensors" --data gauss:d=3 --nfe 1 --n 50 --quiet
expect 1 "" -- "$CM" nfe --model "$work/nosuch.safetensors" --data moons --nfe 1
expect 2 "at most 8 models" -- "$CM" nfe --model a,b,c,d,e,f,g,h,i --data moons
one_line_error "$CM" nfe --model "$work/nosuch.safetensors" --data moons --nfe 1

# --data defaults to the model's own data; other data are refused unless asked for; a run
# directory is a model
expect 0 "onestep" -- "$CM" nfe --model "$work/cd" --nfe 1 --seeds 1 --n 100 --quiet
expect 2 "trained on moons, not on --data swissroll" -- "$CM" nfe --model "$work/cd/model.safetensors" --data swissroll --nfe 1 --seeds 1 --n 100 --quiet
one_line_error "$CM" nfe --model "$work/cd/model.safetensors" --data swissroll --nfe 1 --seeds 1 --n 100 --quiet
expect 0 "onestep" -- "$CM" nfe --model "$work/cd/model.safetensors" --data swissroll --allow-other-data --nfe 1 --seeds 1 --n 100 --quiet
expect 2 "takes no --model or --data|applies to models" -- "$CM" nfe --gaussian --allow-other-data
echo "cli_nfe: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
