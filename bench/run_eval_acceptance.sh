#!/usr/bin/env bash
# The issue-3 acceptance run on the embedded default model: real data, both-order judging. Hours on 2 CPU cores,
# so it runs in two stages: a smaller sample of every benchmark first, then the full sizes (100 P-Soups users,
# 50 each of MovieLens, MIND, Amazon). Items already judged are skipped, so a rerun continues where it stopped.
#   bash bench/run_eval_acceptance.sh [OUT]
set -euo pipefail
OUT=${1:-runs/acceptance}
DATA=${PREFSCRIBE_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
M=${MODEL:-embedded}
run() { echo "== $(date -u +%H:%M:%S) $*"; /usr/bin/time -f "wall %e s, peak RSS %M KiB" prefscribe eval --model "$M" "$@"; }
report() { prefscribe report "$OUT"/psoups "$OUT"/movielens "$OUT"/mind "$OUT"/amazon "$OUT"/psoups-random-order --out "$OUT/report" || true; }
for stage in small full; do
  if [ $stage = small ]; then P=40; R=20; else P=100; R=50; fi
  run --benchmark psoups --data "$DATA/psoups/student_phd.json" --settings none,raw,gold,full,streaming --limit $P --out "$OUT/psoups"
  run --benchmark psoups --data "$DATA/psoups/student_phd.json" --settings none,gold --limit $P --order random --out "$OUT/psoups-random-order"
  run --benchmark movielens --data "$DATA/movielens" --settings none,raw,full,streaming --limit $R --loader-option max_history=30 --out "$OUT/movielens"
  run --benchmark mind --data "$DATA/mind/sample400by_ratio.csv" --settings none,raw,full,streaming --limit $R --out "$OUT/mind"
  run --benchmark amazon --data "$DATA/amazon_games" --settings none,raw,full,streaming --limit $R --loader-option max_history=30 --out "$OUT/amazon"
  report
done
echo "== $(date -u +%H:%M:%S) done"
