#!/usr/bin/env bash
# Builds the C ABI's shared library (debug) and the C++ test against it, then runs the test.
# Usage: bash scripts/test-c.sh   (from anywhere; part of scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product NaturalGradientC
library_dir="$(swift build --show-bin-path)"
binary="$library_dir/test_capi"
# Strict flags: the header must compile warning-free as C++ (and the C shim compiles it as C).
c++ -std=c++17 -O1 -Wall -Wextra -Werror -pthread -I Sources/CNaturalGradient/include \
    Tests/CTests/test_capi.cpp -L "$library_dir" -lNaturalGradientC -Wl,-rpath,"$library_dir" -o "$binary"
"$binary"
