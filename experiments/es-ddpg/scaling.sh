#!/usr/bin/env bash
# Worker-count scaling of es-ddpg (the paper's 16 vs 64 workers): seconds per meta-iteration
# (the step's phases, `workers_seconds + update_seconds` of progress.csv) for M = 16 and 64
# on 1 and 2 threads, nav2d, K = 20, one DDPG update. Each setting runs 6 iterations; the
# first is dropped (start-up) and the median of the other 5 is printed. The four settings
# alternate, ROUNDS times (default 2), so that drift on the machine hits all of them alike.
# Usage: bash experiments/es-ddpg/scaling.sh [BIN_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release}"
rounds="${2:-2}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "round,workers,threads,median_seconds_per_iteration,env_steps_per_second"
for round in $(seq 1 "$rounds"); do
  for m in 16 64; do
    for t in 1 2; do
      out="$tmp/m$m-t$t-r$round"
      RAYON_NUM_THREADS=$t "$bin/es-ddpg" --env nav2d --workers "$m" --iterations 6 \
        --eval-tasks 1 --out "$out" --quiet >/dev/null
      python3 - "$out/progress.csv" "$round" "$m" "$t" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))[1:]
secs = [float(r["workers_seconds"]) + float(r["update_seconds"]) for r in rows]
steps = [float(r["env_steps"]) for r in rows]
med = statistics.median(secs)
print(f"{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{med:.4f},{statistics.median(s / x for s, x in zip(steps, secs)):.0f}")
PY
    done
  done
done
