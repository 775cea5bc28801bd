#!/usr/bin/env bash
# Installs the Python package `naturalgradient` (python/) into a virtual environment with
# NumPy, SciPy and pytest, for scripts/test.sh, and the optional torch integration's
# dependencies (torch, curvlinops for the fidelity tests). Safe to run again.
#
#   bash scripts/setup-python.sh            # venv at .build/python-venv (git-ignored)
#   NATURALGRADIENT_VENV=DIR bash scripts/setup-python.sh
#
# `pip install ./python` builds libNaturalGradientC in release mode
# (`swift build -c release --product NaturalGradientC`) and puts it inside the package;
# set NATURALGRADIENT_LIBRARY to a built library to skip that build.
#
# torch (naturalgradient.torch, `pip install ./python[torch]`): a CPU wheel of the machine
# image (/opt/wheels/torch-*+cpu*-cpXY-*.whl for this interpreter) when there is one, else
# PyTorch's CPU index, else PyPI's default torch. NATURALGRADIENT_TORCH=0 skips torch; when
# no torch installs, the torch tests skip with the reason. curvlinops-for-pytorch (the
# fidelity tests' reference) is installed against that torch, never replacing it.
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
install_torch() {
    local pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
    if [[ "${NATURALGRADIENT_TORCH:-1}" == "0" ]]; then
        echo "setup-python.sh: NATURALGRADIENT_TORCH=0, torch not installed (the torch tests skip)" >&2
        return 0
    fi
    if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
        local tag wheel
        tag="$("$venv/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
        wheel="$(ls /opt/wheels/torch-*+cpu*-"$tag"-"$tag"-*"$(uname -m)".whl 2>/dev/null | sort | tail -n 1 || true)"
        if [[ -n "$wheel" ]]; then
            echo "setup-python.sh: torch from $wheel" >&2
            "${pip[@]}" "$wheel" || echo "setup-python.sh: installing $wheel failed" >&2
        fi
        if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
            "${pip[@]}" --timeout 20 --retries 0 --index-url https://download.pytorch.org/whl/cpu torch 2>/dev/null \
                || "${pip[@]}" torch \
                || echo "setup-python.sh: torch could not be installed; the torch tests will skip" >&2
        fi
    fi
    if "$venv/bin/python" -c 'import torch' 2>/dev/null; then
        local version
        version="$("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
        # Pinning the installed torch keeps pip from replacing it with PyPI's (CUDA) build.
        "${pip[@]}" "curvlinops-for-pytorch" "torch==$version" \
            || echo "setup-python.sh: curvlinops-for-pytorch could not be installed; the fidelity tests will skip" >&2
    fi
}
install_torch

# mpi4py for naturalgradient.distributed and python/tests/test_distributed.py: a 1.3 MB wheel
# that loads the system's Open MPI at import. Not fatal: without it that test skips.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "mpi4py>=4" \
    || echo "setup-python.sh: mpi4py not installed; python/tests/test_distributed.py will skip" >&2
# No build isolation: setuptools is in the venv, so nothing more is fetched to build.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall \
    --no-deps ./python
"$venv/bin/python" -c 'import naturalgradient as ng; print("naturalgradient", ng.__version__, "on", ng.version())'
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo "torch: not installed"
