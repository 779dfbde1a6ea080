#!/usr/bin/env bash
# The issue-3 acceptance run on the embedded default model (hours on 2 CPU cores): real data, both-order judging.
#   bash bench/run_eval_acceptance.sh [OUT]      (resumable: rerun to continue)
set -euo pipefail
OUT=${1:-runs/acceptance}
DATA=${PREFSCRIBE_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
M=${MODEL:-embedded}
run() { echo "== $(date -u +%H:%M:%S) $*"; /usr/bin/time -f "wall %e s, peak RSS %M KiB" prefscribe eval --model "$M" "$@"; }
run --benchmark psoups --data "$DATA/psoups/student_phd.json" --settings none,raw,gold,full,streaming --limit 100 --out "$OUT/psoups"
run --benchmark movielens --data "$DATA/movielens" --settings none,raw,full,streaming --limit 50 --loader-option max_history=30 --out "$OUT/movielens"
run --benchmark mind --data "$DATA/mind/sample400by_ratio.csv" --settings none,raw,full,streaming --limit 50 --out "$OUT/mind"
run --benchmark amazon --data "$DATA/amazon_games" --settings none,raw,full,streaming --limit 50 --loader-option max_history=30 --out "$OUT/amazon"
run --benchmark psoups --data "$DATA/psoups/student_phd.json" --settings none,gold --limit 100 --order random --out "$OUT/psoups-random-order"
prefscribe report "$OUT/psoups" "$OUT/movielens" "$OUT/mind" "$OUT/amazon" "$OUT/psoups-random-order" --out "$OUT/report"
echo "== $(date -u +%H:%M:%S) done"
