#!/usr/bin/env bash
# Communication against computation per meta-iteration for MPI jobs of 1, 2 and 4 ranks on
# this machine (oversubscribed beyond its cores): ES-MAML on nav2d (population 150, K = 20,
# linear policy) and es-ddpg on nav2d (64 workers). Prints, per run: ranks, seconds per
# iteration, rank 0's bytes sent per iteration and its seconds inside collectives per
# iteration (summary.json "communication").
# Usage: bash experiments/mpi/measure.sh [BIN_DIR] (a build with --features mpi)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
echo "learner,ranks,seconds_per_iteration,bytes_sent_per_iteration,comm_seconds_per_iteration"
for ranks in 1 2 4; do
  for learner in es-maml es-ddpg; do
    out="$tmp/$learner-$ranks"
    if [ "$learner" = es-maml ]; then args=(--env nav2d --iterations 5 --eval-tasks 1); else args=(--env nav2d --iterations 5 --eval-tasks 1 --workers 64); fi
    RAYON_NUM_THREADS=1 mpirun --oversubscribe -n "$ranks" "$bin/$learner" --mpi "${args[@]}" --quiet --out "$out" >/dev/null
    python3 - "$out/summary.json" "$learner" "$ranks" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
it = s["iterations"]
c = s["communication"]
print(f'{sys.argv[2]},{sys.argv[3]},{s["train"]["seconds_per_iteration"]:.3f},{c["rank0_bytes_sent"] / it:.0f},{c["rank0_seconds"] / it:.4f}')
PY
  done
done
