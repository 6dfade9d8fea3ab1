#!/usr/bin/env bash
# The nav2d experiments of experiments/README.md ("ES + DDPG"): four es-ddpg variants and
# MAML-VPG with three inner steps, seeds 1-3, into experiments/es-ddpg/runs/.
# Usage: bash experiments/es-ddpg/run-nav2d.sh [BIN_DIR]   (default target/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release}"
out=experiments/es-ddpg/runs
mkdir -p "$out"
for seed in 1 2 3; do
  for v in nav2d nav2d-fixed-sigma nav2d-sigma-lr nav2d-3updates nav2d-m16; do
    "$bin/es-ddpg" --config "experiments/es-ddpg/$v.toml" --seed "$seed" --out "$out/$v-s$seed" --quiet
  done
  "$bin/pg-maml" --config experiments/pg-maml/vpg-maml-3steps.toml --seed "$seed" --out "$out/maml-vpg-3steps-s$seed" --quiet
done
