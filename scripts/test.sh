#!/usr/bin/env bash
# The whole test suite: the Swift tests, the public-surface check, the C ABI's C++ test, and
# the Python package's tests (installed into a venv by scripts/setup-python.sh). The README's
# test command and .ci/run call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Formatting (swift-format lint, .swift-format)"
bash scripts/format.sh --check
echo "== Swift tests"
swift test

echo "== Public surface (a client of NaturalGradient alone)"
bash scripts/check-public-surface.sh

echo "== C ABI test"
bash scripts/test-c.sh

echo "== Python package"
bash scripts/setup-python.sh
venv="${NATURALGRADIENT_VENV:-.build/python-venv}"
# From the repository root, so `import naturalgradient` is the installed package (with its
# library), not the source tree in python/.
"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
