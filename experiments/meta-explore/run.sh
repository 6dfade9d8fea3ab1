#!/usr/bin/env bash
# Meta-exploration on sparse four corners: MAME and its four ablations, MAESN, and ProMP on
# the same budget, seeds 1–3, two runs at a time. Results: runs/meta-explore/<name>-s<seed>.
# Table: python3 experiments/meta-explore/table.py
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --bins
bin=${CARGO_TARGET_DIR:-target}/release
mkdir -p runs/meta-explore
jobs=()
for s in 1 2 3; do
  for a in none vpg reward dice emaml; do
    jobs+=("$bin/meta-explore --config experiments/meta-explore/mame.toml --ablation $a --seed $s --quiet --out runs/meta-explore/mame-$a-s$s")
  done
  jobs+=("$bin/meta-explore --config experiments/meta-explore/maesn.toml --seed $s --quiet --out runs/meta-explore/maesn-s$s")
  jobs+=("$bin/promp --config experiments/promp/point-corners.toml --seed $s --quiet --out runs/meta-explore/promp-s$s")
done
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} sh -c '{} || true'

# Also recorded in experiments/README.md (run by hand this session):
#   five outer steps:    meta-explore --config experiments/meta-explore/mame-5steps.toml --seed 1
#   no reward loophole:  meta-explore --config experiments/meta-explore/{mame,maesn}.toml --env point-corners-fixed --seed S
#                        promp --config experiments/promp/point-corners.toml --env point-corners-fixed --seed S
#                        es-maml --config experiments/es-maml/corners-hill-climb.toml --env point-corners-fixed --seed 1
