#!/usr/bin/env bash
# tests/cli_trust.sh: numbers a user can trust: noise levels inside a model's range (and
# warnings for samplers in a known-unstable regime), a distillation teacher trained on the run's
# data, messages that name the right model, a --out that is never overwritten silently, outputs
# checked before drawing, cm info (the recorded command reproduces the model), run directories
# wherever a model is taken, longer training through --init-from, counts as 2e6, progress on a
# terminal, --eval-every, --columns, and help text (a default printed once, every method listed,
# every file of the README made by an earlier README command). Tiny networks: seconds.
# Usage: CM=build/cm tests/cli_trust.sh     Ends with "cli_trust: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # CM, $work, counters, expect, one_line_error, check, exists
root=$(cd "$(dirname "$0")/.." && pwd)
cm_abs=$(cd "$(dirname "$CM")" && pwd)/$(basename "$CM")
python=/usr/bin/python3   # Debian's, with numpy
small=(--width 16 --depth 1 --embed 8 --batch 32 --quiet)
weights() { "$CM" info "$1" --json | sed -E 's/.*"weights_fnv1a":"([0-9a-f]+)".*/\1/'; }
snapshot() { (cd "$1" && find . -type f -exec md5sum {} + | sort); }

# --- 1. noise levels: the model's range, --extrapolate, Heun with too few steps
expect 0 "" -- "$CM" train --data moons --steps 20 "${small[@]}" --out "$work/ict"
expect 0 "" -- "$CM" train --data moons --method lhw --steps 20 "${small[@]}" --out "$work/lhw"
expect 0 "" -- "$CM" train --data moons --method dsm --steps 20 "${small[@]}" --out "$work/dsm"
expect 2 "level 80 is above the model's sigma_max = 10, the largest level it was trained on.*--extrapolate" -- \
  "$CM" sample --model "$work/ict" --sigmas 80,0.8 --n 10 --out "$work/x.npy"
one_line_error "$CM" sample --model "$work/ict" --sigmas 80,0.8 --n 10 --out "$work/x.npy"
check "a refused level writes nothing" "[ ! -e '$work/x.npy' ]"
expect 0 "warning: level 80 is above sigma_max = 10: .*extrapolated" -- \
  "$CM" sample --model "$work/ict" --sigmas 80,0.8 --extrapolate --n 10 --out "$work/x.npy" --quiet
expect 0 "" -- "$CM" sample --model "$work/ict" --sigmas 10,0.8 --n 10 --out "$work/x.npy"
check "10,0.8 (the --help example) draws without a warning" \
  "! '$CM' sample --model '$work/ict' --sigmas 10,0.8 --n 10 --out '$work/x.npy' 2>&1 | grep -q warning"
expect 2 "level 1e\\+06 is above this lhw model's largest chain level sigma_T = " -- \
  "$CM" sample --model "$work/lhw" --sigmas 1e6,1 --n 10 --out "$work/x.npy"
expect 0 "warning: level 1e\\+06 is above sigma_T" -- "$CM" sample --model "$work/lhw" --sigmas 1e6,1 --extrapolate --n 10 --out "$work/x.npy"
sigma_t=$("$CM" info "$work/lhw" --json | sed -E 's/.*"sigma_T":([0-9.e+-]+).*/\1/')
expect 0 "" -- "$CM" sample --model "$work/lhw" --sigmas "$sigma_t,1" --n 10 --out "$work/x.npy" --quiet
for steps in 2 5; do
  expect 0 "warning: heun with $steps steps on the karras grid .*use --steps 6 or more" -- \
    "$CM" sample --model "$work/dsm" --sampler heun --steps $steps --n 10 --out "$work/x.npy" --quiet
done
expect 0 "warning: heun with 4 steps on the lhw grid" -- "$CM" sample --model "$work/dsm" --sampler heun --grid lhw --steps 4 --n 10 --out "$work/x.npy"
for args in "--sampler heun --steps 6" "--sampler heun --steps 18" "--sampler ddim --steps 2" "--sampler heun --steps 6 --grid lhw"; do
  check "no warning for $args" "! '$CM' sample --model '$work/dsm' $args --n 10 --out '$work/x.npy' 2>&1 | grep -q warning"
done
check "cm sample --help suggests levels a default model was trained on" \
  "'$CM' sample --help | grep -q 'e.g. 10,0.8' && ! '$CM' sample --help | grep -q '80,0.8'"
# every `cm sample --sigmas A,...` of the README starts at most at the default sigma_max 10
check "README: every --sigmas starts inside the default range" \
  "! grep -oE 'cm sample .*--sigmas [0-9.e+]+' '$root/README.md' | sed -E 's/.*--sigmas //' | awk '\$1 > 10 {bad = 1} END {exit !bad}'"

# --- 2. a teacher trained on other data is refused (or allowed explicitly)
expect 2 "--teacher-model .*dsm/model.safetensors was trained on 'moons', this run's data is 'swissroll'.*--allow-other-teacher-data" -- \
  "$CM" train --data swissroll --method cd --teacher-model "$work/dsm" --steps 5 "${small[@]}" --out "$work/cd-other"
one_line_error "$CM" train --data swissroll --method cd --teacher-model "$work/dsm" --steps 5 "${small[@]}" --out "$work/cd-other"
expect 0 "" -- "$CM" train --data swissroll --method cd --teacher-model "$work/dsm" --allow-other-teacher-data --steps 5 "${small[@]}" --out "$work/cd-other"
expect 0 "" -- "$CM" train --data moons --method cd --teacher-model "$work/dsm" --steps 10 --save-every 5 "${small[@]}" --out "$work/cd"
expect 0 "already complete" -- "$CM" train --resume "$work/cd"
# a file teacher: the same file under another path is recognised by its transform; another file is not
printf 'x,y,z\n1,2,5\n3,4,1\n5,7,2\n-1,0,3\n2,2,2\n' > "$work/pts.csv"
cp "$work/pts.csv" "$work/pts-copy.csv"
printf 'x,y,z\n1,2,5\n3,4,1\n5,7,2\n-1,0,3\n2,2,9\n' > "$work/pts-other.csv"
expect 0 "" -- "$CM" train --data "$work/pts.csv" --method dsm --steps 5 "${small[@]}" --out "$work/dsm-file"
expect 0 "" -- "$CM" train --data "$work/pts-copy.csv" --method cd --teacher-model "$work/dsm-file/model.safetensors" --steps 5 "${small[@]}" --out "$work/cd-copy"
expect 2 "was trained on '.*pts.csv', this run's data is '.*pts-other.csv'" -- \
  "$CM" train --data "$work/pts-other.csv" --method cd --teacher-model "$work/dsm-file" --steps 5 "${small[@]}" --out "$work/cd-file-other"

# --- 3. messages that name the model in hand
expect 2 "--times applies to lhw models \\(chain indices\\); this one is ict" -- "$CM" sample --model "$work/ict" --times 10,5 --n 10 --out "$work/x.npy"
expect 2 "--times: 200 is not an integer in \\[1, T = 100\\]" -- "$CM" sample --model "$work/lhw" --times 200,40 --n 10 --out "$work/x.npy"
expect 2 "--times: 2.5 is not an integer in \\[1, T = 100\\]" -- "$CM" sample --model "$work/lhw" --times 2.5 --n 10 --out "$work/x.npy"

# --- 4. a user's work is never overwritten silently
before=$(snapshot "$work/ict")
expect 2 "holds a finished run \\(ict on moons, 20 steps\\): pass --force .*--init-from" -- \
  "$CM" train --data moons --steps 20 "${small[@]}" --out "$work/ict"
check "a refused run leaves the finished one as it was" "[ \"\$before\" = \"\$(snapshot '$work/ict')\" ]"
mkdir -p "$work/mine"; echo '{"my": "settings"}' > "$work/mine/config.json"; echo notes > "$work/mine/notes.txt"
expect 2 "holds 2 files not written by a cm run \\((config.json, notes.txt|notes.txt, config.json)\\).*--force" -- \
  "$CM" train --data moons --steps 5 "${small[@]}" --out "$work/mine"
check "the user's config.json is untouched" "grep -q '\"my\"' '$work/mine/config.json'"
expect 0 "" -- "$CM" train --data moons --steps 5 "${small[@]}" --force --out "$work/mine"
check "--force: the run wrote its config.json, the other file is kept" \
  "grep -q '\"train\"' '$work/mine/config.json' && [ -s '$work/mine/notes.txt' ]"
expect 0 "" -- "$CM" train --data moons --steps 5 "${small[@]}" --overwrite --out "$work/ict"
mkdir -p "$work/leftover"; printf 'step,loss,lr,elapsed,grad_norm,levels,sw1,sw1_floor\n1,0.5,0.001,0.1,1,2,,\n' > "$work/leftover/train.csv"
expect 0 "" -- "$CM" train --data moons --steps 5 "${small[@]}" --out "$work/leftover"
# outputs are checked before anything is drawn or written
rm -f "$work/o.npy" "$work/o.png"
expect 2 "--png .*o.jpg: the extension must be one of: png" -- "$CM" sample --model "$work/ict" --n 10 --out "$work/o.npy" --png "$work/o.jpg"
check "a refused --png writes no NPY either" "[ ! -e '$work/o.npy' ]"
expect 1 "--out .*: no directory .*nosuchdir" -- "$CM" sample --model "$work/ict" --n 10 --out "$work/nosuchdir/o.npy" --png "$work/o.png"
check "a refused --out writes no PNG either" "[ ! -e '$work/o.png' ]"
# 1-D data: the PNG is a histogram (over the exact density for a law, the data alone for a file)
expect 0 "" -- "$CM" train --data gauss:d=1,mean=1,std=0.5 --steps 10 "${small[@]}" --out "$work/g1"
expect 0 "-> .*g1.npy -> .*g1.png" -- "$CM" sample --model "$work/g1" --n 500 --out "$work/g1.npy" --png "$work/g1.png"
exists "$work/g1.png"
printf 'v\n0.1\n0.4\n0.35\n0.8\n-0.2\n' > "$work/one.csv"
expect 0 "" -- "$CM" train --data "$work/one.csv" --steps 10 "${small[@]}" --out "$work/f1"
expect 0 "" -- "$CM" sample --model "$work/f1" --n 300 --png "$work/f1.png" --quiet
exists "$work/f1.png"

# --- 5. cm info; run directories as --model
expect 0 "method +ict: \\[iCT\\]" -- "$CM" info "$work/lhw/../ict"
info=$("$CM" info "$work/ict")
for field in "file .*ict/model.safetensors \\(model, format 2\\)" "network +mlp \\(width 16, depth 1, embed 8, .*\\), [0-9]+ parameters" \
             "data +moons \\(D = 2\\)" "steps +5 of 5 \\(batch 32" "noise +sigma_min 0.002 to sigma_max 10" \
             "transform +x_model = \\(x - shift\\) / scale; shift" "command +cm train --data moons --steps 5 .*--overwrite --out .*ict" \
             "weights +FNV-1a 64 [0-9a-f]{16}"; do
  check "cm info shows: $field" "echo \"\$info\" | grep -qE -- \"$field\""
done
expect 0 "VP chain T = 100 .*sigma_T = " -- "$CM" info "$work/lhw/model.safetensors"
expect 0 "command +not recorded" -- "$CM" info "$root/tests/golden/format1/model-ict.safetensors"
expect 0 "\\(model, format 1\\)" -- "$CM" info "$root/tests/golden/format1/model-ict.safetensors"
expect 0 "\"method\":\"dsm\".*\"sigma_max\":10" -- "$CM" info --model "$work/dsm" --json
check "cm info --json is one JSON object" "'$CM' info '$work/ict' --json | $python -c 'import json, sys; json.load(sys.stdin)'"
expect 2 "give a model file or run directory" -- "$CM" info
expect 1 "is a directory without model.safetensors" -- "$CM" info "$work/mine/.."
expect 1 "nosuch" -- "$CM" info "$work/nosuch.safetensors"
# the recorded command, pasted into a shell, makes the same weights (a path with a space and a quote)
mkdir -p "$work/odd dir"; cp "$work/pts.csv" "$work/odd dir/it's.csv"
expect 0 "" -- "$CM" train --data "$work/odd dir/it's.csv" --columns x,z --steps 5 "${small[@]}" --out "$work/odd dir/run"
recorded=$("$CM" info "$work/odd dir/run" --json | $python -c 'import json, sys; print(json.load(sys.stdin)["command"])')
first_weights=$(weights "$work/odd dir/run")
rm -rf "$work/odd dir/run"
expect 0 "" -- bash -c "${recorded/#cm /$(printf '%q' "$cm_abs") }"
check "the recorded command, run again, makes the same weights" "[ -n '$first_weights' ] && [ '$first_weights' = '$(weights "$work/odd dir/run")' ]"
# an unfinished run: info reads its checkpoint; sample names the problem
expect 130 "" -- bash -c "'$cm_abs' train --data moons --steps 100000 ${small[*]} --save-every 50 --out '$work/busy' & pid=\$!; while [ ! -e '$work/busy/checkpoint.safetensors' ]; do sleep 0.05; done; kill -INT \$pid; wait \$pid"
expect 0 "\\(checkpoint, format 2\\)" -- "$CM" info "$work/busy"
expect 0 "steps +[0-9]+ of 100000, unfinished" -- "$CM" info "$work/busy"
expect 1 "busy holds no model.safetensors: its run is unfinished .*--resume" -- "$CM" sample --model "$work/busy" --n 10 --out "$work/x.npy"
expect 0 "" -- "$CM" sample --model "$work/busy/checkpoint.safetensors" --n 10 --out "$work/x.npy" --quiet

# --- 6. longer training: a finished run keeps its K; --init-from starts a new run from its weights
"$CM" train --data moons --steps 40 --save-every 20 "${small[@]}" --out "$work/k40"
before=$(snapshot "$work/k40")
expect 2 "--steps 80, but the run has 40 steps \\(40 done\\): its curricula .* cosine learning rate are functions of k / K.*--init-from .*k40 --steps 80 --out NEW" -- \
  "$CM" train --resume "$work/k40" --steps 80
check "the refused resume changed nothing" "[ \"\$before\" = \"\$(snapshot '$work/k40')\" ]"
expect 0 "ict on moons .* from .*k40" -- "$CM" train --init-from "$work/k40" --steps 30 --width 16 --depth 1 --embed 8 --batch 32 --out "$work/k40-more"
expect 0 "steps +30 of 30" -- "$CM" info "$work/k40-more"
expect 0 "--init-from .*k40 --steps 30" -- "$CM" info "$work/k40-more"
# the weights start at the model's: with a vanishing learning rate the samples stay the model's
expect 0 "" -- "$CM" train --init-from "$work/k40" --steps 2 --lr 1e-30 --ema 0 --out "$work/k40-same" --quiet
"$CM" sample --model "$work/k40" --n 200 --seed 3 --out "$work/k40.npy" --quiet
"$CM" sample --model "$work/k40-same" --n 200 --seed 3 --out "$work/k40-same.npy" --quiet
"$CM" train --data moons --steps 2 --lr 1e-30 --ema 0 --seed 1 "${small[@]}" --out "$work/k-fresh"
"$CM" sample --model "$work/k-fresh" --n 200 --seed 3 --out "$work/k-fresh.npy" --quiet
close() { $python -c "import numpy as n, sys; a, b = n.load(sys.argv[1]), n.load(sys.argv[2]); sys.exit(0 if abs(a - b).max() $3 else 1)" "$1" "$2"; }
check "--init-from: the run starts at the model's weights" "close '$work/k40.npy' '$work/k40-same.npy' '< 1e-5'"
check "(a fresh run at the same settings is elsewhere)" "close '$work/k40.npy' '$work/k-fresh.npy' '> 1e-2'"
expect 2 "--init-from .*k40: \"width\" is 32" -- "$CM" train --init-from "$work/k40" --width 32 --steps 5 --quiet --out "$work/k-wide"
expect 2 "--init-from .*k40: the model was trained on 'moons', --data is 'rings'" -- "$CM" train --init-from "$work/k40" --data rings --steps 5 --quiet --out "$work/k-rings"
expect 2 "--init-from starts a new run; --resume continues one" -- "$CM" train --resume "$work/k40" --init-from "$work/k40"
expect 0 "" -- "$CM" train --data moons --method cd --teacher-model "$work/dsm" --init-from "$work/dsm" --steps 5 --quiet --out "$work/cd-init"

# --- 7. counts in scientific notation; progress on a terminal, silenced by --quiet
expect 0 "2000 samples" -- "$CM" sample --model "$work/ict" --n 2e3 --out "$work/n.npy"
check "--n 2e3 drew 2000 rows" "$python -c 'import numpy, sys; sys.exit(numpy.load(\"$work/n.npy\").shape[0] != 2000)'"
expect 0 "" -- "$CM" sample --model "$work/ict" --n 2.5e3 --out "$work/n.npy" --quiet
expect 2 "--n: '2.5' is not an integer in \\[1, 2\\^40\\]" -- "$CM" sample --model "$work/ict" --n 2.5 --out "$work/n.npy"
expect 2 "--n: '1e-3' is not an integer" -- "$CM" sample --model "$work/ict" --n 1e-3 --out "$work/n.npy"
expect 2 "--n: '0x10' is not an integer" -- "$CM" sample --model "$work/ict" --n 0x10 --out "$work/n.npy"
expect 2 "--save-every: '1.55e1' is not an integer" -- "$CM" train --data moons --save-every 1.55e1 --steps 5 --out "$work/r"
expect 0 "" -- "$CM" train --data moons --save-every 1e1 --steps 2e1 "${small[@]}" --out "$work/sci"
expect 0 "steps +20 of 20" -- "$CM" info "$work/sci"
if command -v script >/dev/null; then
  tty_out=$(script -qec "'$cm_abs' sample --model '$work/ict' --n 4e6 --out '$work/big.npy'" /dev/null | tr '\r' '\n')
  check "progress bar on a terminal" "echo \"\$tty_out\" | grep -qE '^cm sample: \\[#*'"
  tty_out=$(script -qec "'$cm_abs' sample --model '$work/ict' --n 4e6 --out '$work/big.npy' --quiet" /dev/null | tr '\r' '\n')
  check "--quiet silences the progress bar" "[ -z \"\$tty_out\" ]"
  rm -f "$work/big.npy"
fi

# --- 8. --eval-every: sliced W1 with its floor in train.csv; the model's bits are unchanged
expect 0 "" -- "$CM" train --data moons --steps 30 --eval-every 10 "${small[@]}" --out "$work/ev"
expect 0 "^step,loss,lr,elapsed,grad_norm,levels,sw1,sw1_floor$" -- head -n 1 "$work/ev/train.csv"
check "evaluated rows: 10, 20, 30" "[ \"\$(awk -F, 'NR > 1 && \$7 != \"\" {print \$1}' '$work/ev/train.csv' | tr '\n' ' ')\" = '10 20 30 ' ]"
check "each evaluation has a positive value and floor" "awk -F, 'NR > 1 && \$7 != \"\" && !(\$7 > 0 && \$8 > 0) {bad = 1} END {exit bad}' '$work/ev/train.csv'"
"$CM" train --data moons --steps 30 "${small[@]}" --out "$work/ev-off"
check "evaluating changes no weight" "[ '$(weights "$work/ev")' = '$(weights "$work/ev-off")' ]"
expect 0 "step 30/30 .*sw1 [0-9.e+-]+ \\([0-9.e+-]+x floor\\)" -- \
  "$CM" train --data moons --steps 30 --eval-every 15 --width 16 --depth 1 --embed 8 --batch 32 --out "$work/ev-print"
expect 0 "sliced W1 of 2000 one-step samples at step 30: [0-9.e+-]+, floor [0-9.e+-]+" -- \
  "$CM" train --data moons --steps 30 --eval-every 15 --width 16 --depth 1 --embed 8 --batch 32 --out "$work/ev-print2"
expect 0 "" -- "$CM" train --data moons --method dsm --steps 4 --eval-every 2 "${small[@]}" --out "$work/ev-dsm"
check "dsm: evaluated with its sampler" "awk -F, 'NR == 3 && \$7 > 0 {ok = 1} END {exit !ok}' '$work/ev-dsm/train.csv'"
# a train.csv of an earlier cm (six columns) is read on resume and continued in the new form
cp -a "$root/tests/golden/resume-ict" "$work/old-log"
expect 0 "^step,loss,lr,elapsed,grad_norm,levels$" -- head -n 1 "$work/old-log/train.csv"
expect 0 "" -- "$CM" train --resume "$work/old-log" --eval-every 100 --quiet
expect 0 "^step,loss,lr,elapsed,grad_norm,levels,sw1,sw1_floor$" -- head -n 1 "$work/old-log/train.csv"
check "old rows kept (with two empty columns), new rows appended" \
  "[ \$(wc -l < '$work/old-log/train.csv') -eq 201 ] && sed -n 2p '$work/old-log/train.csv' | grep -qE '^1,.*,,$' && awk -F, 'NR == 201 && \$1 == 200 && \$7 > 0 {ok = 1} END {exit !ok}' '$work/old-log/train.csv'"

# --- 9. --columns in cm train and cm sample; help text; the README's files
expect 0 "data +.*odd dir/it's.csv:columns=x,z \\(D = 2\\)" -- "$CM" info "$work/odd dir/run"
expect 0 "" -- "$CM" train --data "$work/pts.csv" --columns 0,2 --steps 5 "${small[@]}" --out "$work/cols"
expect 0 "data +.*pts.csv:columns=0,2 \\(D = 2\\)" -- "$CM" info "$work/cols"
expect 0 "" -- "$CM" sample --model "$work/cols" --n 50 --png "$work/cols.png" --ref "$work/pts.csv" --columns y,z --quiet
exists "$work/cols.png"
expect 2 "--columns applies to the --png figure; give --png too" -- "$CM" sample --model "$work/cols" --n 5 --out "$work/x.npy" --columns y,z
expect 2 "columns: 'w' is neither a column name nor a 0-based index" -- "$CM" train --data "$work/pts.csv" --columns x,w --steps 5 "${small[@]}" --out "$work/cols2"
for c in train "train --method dsm" "train --method cd" "train --method lhw" sample data eval nfe info sweep "theory gaussian" "theory learned"; do
  check "cm $c --help: each default printed once" "! '$CM' $c --help 2>&1 | grep -qiE 'default.*default'"
done
for m in lhw ct ict dsm cd cd2; do
  check "cm --help lists method $m with its line" "'$CM' --help | grep -qE '^  $m +[^ ]'"
done
# every input a README command uses (--model, --samples, --teacher-model, --resume, --init-from) is
# made by an earlier README command (--out, or a run directory's model.safetensors)
cat > "$work/readme_check.py" <<'EOF'
import re, sys
made, bad = set(), []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith('build/cm ') and not line.startswith('scripts/'):
        continue
    for flag, value in re.findall(r'--(model|samples|teacher-model|resume|init-from|score-model) (\S+)', line):
        for path in value.split(','):
            if path not in made and path.rsplit('/model.safetensors', 1)[0] not in made:
                bad.append(path)
    made.update(re.findall(r'--out (\S+)', line))
if bad:
    print('README uses files no earlier command makes:', bad)
sys.exit(1 if bad else 0)
EOF
check "README: every file a command uses is made by an earlier one" "$python '$work/readme_check.py' '$root/README.md'"

echo "cli_trust: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
