#!/usr/bin/env bash
# The meta-exploration paper's comparison with its own networks and the MAML repository's
# settings: MAME, MAML-VPG and MAML-TRPO (Finn et al.'s 100-100 ReLU policy, 20 tasks × 20
# trajectories), on ProMP's sparse corners (the paper's task, with the reward loophole) and on
# point-corners-fixed (without it), seeds 1–3. MAML-TRPO runs 100 iterations (about 10× the
# cost of an iteration of the others), the others 200.
# Results: runs/meta-explore-paper/<variant>-<env>-s<seed>; table: python3 experiments/meta-explore/table.py runs/meta-explore-paper
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
out=runs/meta-explore-paper
mkdir -p $out
for env in point-corners point-corners-fixed; do
  for s in 1 2 3; do
    $bin/meta-explore --config experiments/meta-explore/mame-paper.toml --env $env --seed $s --quiet --out $out/mame-paper-$env-s$s || echo "failed: mame-paper-$env-s$s"
    $bin/pg-maml --config experiments/meta-explore/maml-vpg-paper.toml --env $env --seed $s --quiet --out $out/maml-vpg-paper-$env-s$s || echo "failed: maml-vpg-paper-$env-s$s"
    $bin/pg-maml --config experiments/meta-explore/maml-trpo-paper.toml --env $env --iterations 100 --seed $s --quiet --out $out/maml-trpo-paper-$env-s$s || echo "failed: maml-trpo-paper-$env-s$s"
  done
done
