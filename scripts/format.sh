#!/usr/bin/env bash
# Formats the Swift sources with swift-format (part of the Swift toolchain) under the
# repository's .swift-format configuration.
#   bash scripts/format.sh           rewrite the files in place
#   bash scripts/format.sh --check   only report what differs (exit 1 when anything does)
#   bash scripts/format.sh [--check] PATH...   the same for the given files or folders
set -euo pipefail
cd "$(dirname "$0")/.."

mode=format
if [[ "${1:-}" == "--check" ]]; then
    mode=check
    shift
fi
if ! command -v swift-format > /dev/null; then
    echo "format.sh: swift-format not found (it ships with the Swift toolchain since 6.0)" >&2
    exit 2
fi
paths=("$@")
if [[ ${#paths[@]} -eq 0 ]]; then
    paths=(Package.swift Sources Tests Plugins Kernels Benchmarks/Package.swift Benchmarks/Sources)
fi

if [[ "$mode" == check ]]; then
    # --strict turns the warnings into a failing exit status.
    swift-format lint --configuration .swift-format --recursive --parallel --strict "${paths[@]}"
else
    swift-format format --configuration .swift-format --recursive --parallel --in-place "${paths[@]}"
fi
