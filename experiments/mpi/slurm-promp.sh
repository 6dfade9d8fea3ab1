#!/usr/bin/env bash
# ProMP on half-cheetah-dir with 40 ranks under Slurm: the meta-batch of 40 tasks is cut
# into 40 task chunks (one task each), every rank samples and differentiates its chunk,
# one all-gather of chunk gradients per outer step, rank 0 writes the run directory (on a
# shared filesystem, so that --resume finds it from any node). The results equal a
# single-process run with the same seed and the same --chunks.
# Build once on the cluster: bash scripts/install-mpi.sh (or the site's OpenMPI module),
# bash scripts/install-mujoco.sh, cargo build --release --features mpi,mujoco.
#SBATCH --job-name=promp
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=20
#SBATCH --cpus-per-task=2
#SBATCH --time=12:00:00
#SBATCH --output=promp-%j.out
set -euo pipefail
export RAYON_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
srun --mpi=pmix target/release/promp --mpi --env half-cheetah-dir --chunks 40 \
  --iterations 1000 --seed 1 --out "runs/promp-half-cheetah-dir-mpi-$SLURM_JOB_ID"
# Resume (any number of ranks, same --chunks from config.toml):
# srun … target/release/promp --mpi --resume runs/promp-half-cheetah-dir-mpi-<id>
