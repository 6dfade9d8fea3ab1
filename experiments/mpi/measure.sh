#!/usr/bin/env bash
# Communication against computation per meta-iteration for MPI jobs of 1, 2 and 4 ranks on
# this machine (oversubscribed beyond its cores), RAYON_NUM_THREADS=1 per rank:
# - nav2d: ES-MAML (population 150, K = 20, linear policy), es-ddpg (64 workers) and ProMP
#   (40 tasks × 20 rollouts, 4 task chunks);
# - with MUJOCO=1 (a build with --features mpi,mujoco): ES-MAML and ProMP on
#   half-cheetah-dir (same settings, 2 iterations).
# Prints, per run: learner, env, ranks, seconds per iteration, rank 0's bytes sent per
# iteration and its seconds inside collectives per iteration (summary.json
# "communication").
# Usage: [MUJOCO=1] bash experiments/mpi/measure.sh [BIN_DIR] (a build with --features mpi)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

args_for() { # learner env → its flags
  case "$1" in
    es-maml) echo "--env $2" ;;
    es-ddpg) echo "--env $2 --workers 64" ;;
    promp) echo "--env $2 --chunks 4" ;;
  esac
}

runs=("es-maml nav2d 5" "es-ddpg nav2d 5" "promp nav2d 5")
if [ "${MUJOCO:-0}" = 1 ]; then
  runs+=("es-maml half-cheetah-dir 2" "promp half-cheetah-dir 2")
fi

echo "learner,env,ranks,seconds_per_iteration,bytes_sent_per_iteration,comm_seconds_per_iteration"
for ranks in 1 2 4; do
  for run in "${runs[@]}"; do
    read -r learner env iterations <<<"$run"
    out="$tmp/$learner-$env-$ranks"
    # shellcheck disable=SC2046
    RAYON_NUM_THREADS=1 mpirun --oversubscribe -n "$ranks" "$bin/$learner" --mpi $(args_for "$learner" "$env") \
      --iterations "$iterations" --eval-tasks 1 --quiet --out "$out" >/dev/null
    python3 - "$out/summary.json" "$learner" "$env" "$ranks" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
it = s["iterations"]
c = s["communication"]
print(f'{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{s["train"]["seconds_per_iteration"]:.3f},{c["rank0_bytes_sent"] / it:.0f},{c["rank0_seconds"] / it:.4f}')
PY
  done
done
