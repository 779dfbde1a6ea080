#!/usr/bin/env bash
# The issue-3 acceptance run on an embedded model: real data, both-order judging, at the issue's sizes
# (100 P-Soups users, 50 each of MovieLens, MIND, Amazon). Hours on 2 CPU cores, so it goes in phases that each
# cover every benchmark: the settings with no profile to write first (none, raw, gold, the --order random run),
# then `full`, then `streaming`. A stop leaves every benchmark with the same settings done, and a rerun skips
# the items already judged.
#   MODEL=embedded:0.5b [JUDGE=embedded:1.5b] bash bench/run_eval_acceptance.sh [OUT]
set -euo pipefail
OUT=${1:-runs/acceptance}
DATA=${PREFSCRIBE_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
M=${MODEL:-embedded}
J=${JUDGE:-$M}   # a different judge reuses the writer's cached profiles: cross-model transfer
P=${PSOUPS_USERS:-100}
R=${REC_USERS:-50}
run() { echo "== $(date -u +%H:%M:%S) $*"; /usr/bin/time -f "wall %e s, peak RSS %M KiB" prefscribe eval --model "$M" --judge "$J" "$@"; }
psoups() { run --benchmark psoups --data "$DATA/psoups/student_phd.json" --limit "$P" --out "$OUT/psoups" --settings "$@"; }
movielens() { run --benchmark movielens --data "$DATA/movielens" --limit "$R" --loader-option max_history=30 \
                  --out "$OUT/movielens" --settings "$@"; }
mind() { run --benchmark mind --data "$DATA/mind/sample400by_ratio.csv" --limit "$R" --out "$OUT/mind" --settings "$@"; }
amazon() { run --benchmark amazon --data "$DATA/amazon_games" --limit "$R" --loader-option max_history=30 \
               --out "$OUT/amazon" --settings "$@"; }
report() { prefscribe report "$OUT"/psoups "$OUT"/movielens "$OUT"/mind "$OUT"/amazon "$OUT"/psoups-random-order \
               --out "$OUT/report" || true; }

start=$(date +%s)
psoups none,raw,gold
run --benchmark psoups --data "$DATA/psoups/student_phd.json" --limit "$P" --order random --settings none,gold \
    --out "$OUT/psoups-random-order"
for b in movielens mind amazon; do $b none,raw; done
report
for setting in full streaming; do
  for b in psoups movielens mind amazon; do $b $setting; done
  report
done
echo "== $(date -u +%H:%M:%S) done in $(( $(date +%s) - start )) s"
