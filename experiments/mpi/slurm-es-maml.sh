#!/usr/bin/env bash
# ES-MAML on 4 nodes × 32 ranks under Slurm: every rank evaluates its share of the
# population (round robin, one evaluation at a time), one all-gather of returns per ES estimate, rank 0
# writes the run directory (on a shared filesystem, so that --resume finds it from any
# node). The results equal a single-process run with the same seed.
# Build once on the cluster: bash scripts/install-mpi.sh (or the site's OpenMPI module)
# and cargo build --release --features mpi.
#SBATCH --job-name=es-maml
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --output=es-maml-%j.out
set -euo pipefail
export RAYON_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
srun --mpi=pmix target/release/es-maml --mpi \
  --config experiments/es-maml/nav2d-mlp.toml --seed 1 --out "runs/es-maml-nav2d-mpi-$SLURM_JOB_ID"
# Resume (any number of ranks): srun … target/release/es-maml --mpi --resume runs/es-maml-nav2d-mpi-<id>
