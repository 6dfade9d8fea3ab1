#!/usr/bin/env bash
# The meta-exploration paper's comparison with its own networks and the MAML repository's
# settings: MAME, MAML-VPG and MAML-TRPO (Finn et al.'s 100-100 ReLU policy, 20 tasks × 20
# trajectories), on ProMP's sparse corners (the paper's task, with the reward loophole) and on
# point-corners-fixed (without it), seeds 1–3, 200 iterations. MAML-TRPO costs about 10×
# an iteration of the others (10 conjugate-gradient steps, each a Fisher-vector product
# through the inner step, and a line search): 40 iterations, seeds 1–3 on point-corners-fixed
# and seed 1 on point-corners. A run whose summary.json exists is skipped.
# Results: runs/meta-explore-paper/<variant>-<env>-s<seed>; table: python3 experiments/meta-explore/table-paper.py
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
out=runs/meta-explore-paper
mkdir -p $out
run() { # name, command...
  local name=$1; shift
  [ -f "$out/$name/summary.json" ] && return
  rm -rf "$out/$name"
  "$@" --quiet --out "$out/$name" || echo "failed: $name"
}
for env in point-corners-fixed point-corners; do
  for s in 1 2 3; do
    run mame-paper-$env-s$s $bin/meta-explore --config experiments/meta-explore/mame-paper.toml --env $env --seed $s
    run maml-vpg-paper-$env-s$s $bin/pg-maml --config experiments/meta-explore/maml-vpg-paper.toml --env $env --seed $s
    if [ $env = point-corners-fixed ] || [ $s = 1 ]; then
      run maml-trpo-paper-$env-s$s $bin/pg-maml --config experiments/meta-explore/maml-trpo-paper.toml --env $env --iterations 40 --seed $s
    fi
  done
done
