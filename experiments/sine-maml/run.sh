#!/usr/bin/env bash
# Runs the sine-MAML grid (hessian × K × inner steps × 3 seeds) and prints the results
# table of experiments/README.md. Usage: experiments/sine-maml/run.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-runs/sine-maml-grid}"
mkdir -p "$out"
cargo build --release --bin sine-maml
bin="${CARGO_TARGET_DIR:-target}/release/sine-maml"
for cfg in experiments/sine-maml/{full,none}-k{5,10}-steps{1,5}.toml; do
  name="$(basename "$cfg" .toml)"
  for seed in 0 1 2; do
    dir="$out/$name-s$seed"
    [ -f "$dir/summary.json" ] || RAYON_NUM_THREADS=1 "$bin" --config "$cfg" --seed "$seed" --out "$dir" --quiet
  done
done
python3 experiments/sine-maml/table.py "$out"
