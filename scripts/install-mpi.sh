#!/usr/bin/env bash
# Installs what the `mpi` feature needs from Debian's packages: OpenMPI (mpirun, the
# headers and libmpi) and libclang (the `mpi` crate generates its bindings with bindgen).
# Idempotent: does nothing when mpirun, mpi.h and libclang are already there.
# Usage: bash scripts/install-mpi.sh   (as root, or with sudo available)
set -euo pipefail

have_all() {
  command -v mpirun >/dev/null 2>&1 &&
    command -v mpicc >/dev/null 2>&1 &&
    ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1
}

if have_all; then
  echo "install-mpi: already present: $(mpirun --version 2>/dev/null | head -1)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-mpi: apt-get not found; install OpenMPI (mpirun, mpicc) and libclang yourself" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
    echo "install-mpi: needs root (or sudo) to run apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || { echo "install-mpi: apt-get update failed (no network?)" >&2; exit 1; }
$sudo apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev libclang-dev >/dev/null
echo "install-mpi: installed $(mpirun --version 2>/dev/null | head -1), libopenmpi-dev, libclang-dev"
