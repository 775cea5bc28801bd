#!/usr/bin/env bash
# Installs the system packages NaturalGradient needs on Debian/Ubuntu (Swift itself must
# already be installed). Safe to run again. With --benchmarks it also installs the peers
# the benchmarks compare against (OpenBLAS, CLBlast).
set -euo pipefail

packages=(
    ocl-icd-opencl-dev   # OpenCL ICD loader and pkg-config file (COpenCL)
    opencl-headers       # CL/cl.h
    pocl-opencl-icd      # PoCL: the CPU OpenCL device, so everything runs without a GPU
    clinfo               # for checking a driver by hand
    pkg-config
    liblapacke-dev       # LAPACKE: float64 dense solves on the host (CLAPACK)
    libopenblas-dev      # the BLAS/LAPACK behind it
    zlib1g-dev           # zlib: gzipped data files and streams (CZlib)
    libopenmpi-dev       # Open MPI headers and pkg-config file (CMPI, NaturalGradientDistributed)
    openmpi-bin          # mpirun, for scripts/test-mpi.sh
)
if [[ "${1:-}" == "--benchmarks" ]]; then
    packages+=(libclblast-dev)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
