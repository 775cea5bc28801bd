#!/usr/bin/env bash
# Installs the Python package `naturalgradient` (python/) into a virtual environment with
# NumPy, SciPy and pytest, for scripts/test.sh. Safe to run again.
#
#   bash scripts/setup-python.sh            # venv at .build/python-venv (git-ignored)
#   NATURALGRADIENT_VENV=DIR bash scripts/setup-python.sh
#
# `pip install ./python` builds libNaturalGradientC in release mode
# (`swift build -c release --product NaturalGradientC`) and puts it inside the package;
# set NATURALGRADIENT_LIBRARY to a built library to skip that build.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${NATURALGRADIENT_VENV:-.build/python-venv}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "setup-python.sh: $python is missing or older than 3.10" >&2
    exit 1
fi
# Debian's python3 ships venv/ensurepip separately.
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends python3-venv python3-pip
fi
if [[ ! -x "$venv/bin/python" ]]; then
    # System site packages: a NumPy/SciPy/pytest already installed is used, not downloaded.
    "$python" -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "numpy>=1.26" "scipy>=1.12" "pytest>=7" setuptools wheel
# mpi4py for naturalgradient.distributed and python/tests/test_distributed.py: a 1.3 MB wheel
# that loads the system's Open MPI at import. Not fatal: without it that test skips.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "mpi4py>=4" \
    || echo "setup-python.sh: mpi4py not installed; python/tests/test_distributed.py will skip" >&2
# No build isolation: setuptools is in the venv, so nothing more is fetched to build.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall \
    --no-deps ./python
"$venv/bin/python" -c 'import naturalgradient as ng; print("naturalgradient", ng.__version__, "on", ng.version())'
