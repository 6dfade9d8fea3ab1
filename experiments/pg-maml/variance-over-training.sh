#!/usr/bin/env bash
# ProMP Fig. 4 over training: the relative standard deviation of the MAML-VPG meta-gradient
# for the DiCE, LVC and MAML inner estimators at checkpoints of one ProMP nav2d run.
# Trains seed 1 in segments of STEP iterations (a resumed run continues exactly), keeps
# each checkpoint, and runs examples/meta_gradient_variance.rs on it (30 meta-batches of
# 20 tasks × 20 rollouts). Writes OUT/variance.csv (iteration, dice, lvc, maml, dice/lvc).
# Usage: experiments/pg-maml/variance-over-training.sh [OUT] [LAST] [STEP]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/variance-over-training}
LAST=${2:-100}
STEP=${3:-20}
cargo build --release --bin promp --example meta_gradient_variance
T=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$OUT"
echo "iteration,dice,lvc,maml,dice_over_lvc" > "$OUT/variance.csv"
measure() {
  local it=$1 ck=$2
  local text
  text=$("$T/examples/meta_gradient_variance" nav2d 30 20 20 ${ck:+"$ck"})
  echo "$text" | sed -n 's/^\(Dice\|Lvc\|Maml\): .* \([0-9.]*\)$/\2/p' | paste -sd, - \
    | awk -v it="$it" -F, '{printf "%s,%s,%s,%s,%.3f\n", it, $1, $2, $3, $1/$2}' >> "$OUT/variance.csv"
  tail -1 "$OUT/variance.csv"
}
RUN="$OUT/promp-nav2d-s1"
for ((it = STEP; it <= LAST; it += STEP)); do
  if [[ $it -eq $STEP ]]; then
    rm -rf "$RUN"
    "$T/promp" --env nav2d --seed 1 --iterations "$it" --out "$RUN" --quiet
  else
    "$T/promp" --resume "$RUN" --iterations "$it" --quiet
  fi
  rm -rf "$OUT/at-$it" && mkdir -p "$OUT/at-$it" && cp -r "$RUN/checkpoint" "$OUT/at-$it/"
done
measure 0 ""
for ((it = STEP; it <= LAST; it += STEP)); do measure "$it" "$OUT/at-$it"; done
