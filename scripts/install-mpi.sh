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
# shellcheck source=scripts/apt-install.sh
source "$(dirname "$0")/apt-install.sh"
apt_install install-mpi openmpi-bin libopenmpi-dev libclang-dev
echo "install-mpi: installed $(mpirun --version 2>/dev/null | head -1), libopenmpi-dev, libclang-dev"
