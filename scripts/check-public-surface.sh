#!/usr/bin/env bash
# Checks the library's public surface from a client's side: a file that imports only
# `NaturalGradient` must type-check with the names a user needs (public-surface/Client.swift)
# and must fail to name the host layer's internals (`Kernel`, `Program`) and the launch plans
# (`ImplicitProduct`, behind `@_spi(Benchmarks)`). Type-checks against the modules of the
# debug build in .build (built here if missing), so it takes seconds. scripts/test.sh runs it.
# To see it fail: CHECK_SURFACE_IMPORTS=$'import NaturalGradient\nimport OpenCLHost' bash scripts/check-public-surface.sh
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --target NaturalGradient > /dev/null
modules="$(swift build --show-bin-path)/Modules"
[[ -f "$modules/NaturalGradient.swiftmodule" || -d "$modules/NaturalGradient.swiftmodule" ]] || {
    echo "check-public-surface: no NaturalGradient module under $modules" >&2
    exit 2
}
# The C modules the library's interface imports (OpenCL, LAPACKE, CBLAS), as SwiftPM passes them.
flags=(-I "$modules")
for library in COpenCL CLAPACK CBLAS; do
    flags+=(-Xcc "-fmodule-map-file=$PWD/Sources/$library/module.modulemap")
done
for package in OpenCL lapacke openblas; do
    for include in $(pkg-config --cflags-only-I "$package" 2> /dev/null); do flags+=(-Xcc "$include"); done
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
typecheck() { swiftc -typecheck -swift-version 6 -module-name SurfaceClient "${flags[@]}" "$@"; }

echo "check-public-surface: a client of NaturalGradient names what a user needs"
if ! typecheck scripts/public-surface/Client.swift 2> "$scratch/client.log"; then
    cat "$scratch/client.log" >&2
    echo "check-public-surface: FAILED: the public names above do not resolve" >&2
    exit 1
fi

failures=0
for name in Kernel Program ImplicitProduct; do
    type="$name"
    [[ "$name" == ImplicitProduct ]] && type="$name<Float>"
    printf '%s\nfunc leak(_ value: %s?) {}\n' "${CHECK_SURFACE_IMPORTS:-import NaturalGradient}" "$type" > "$scratch/$name.swift"
    if typecheck "$scratch/$name.swift" 2> "$scratch/$name.log"; then
        echo "check-public-surface: FAILED: a client of NaturalGradient can name '$name'" >&2
        failures=$((failures + 1))
    elif ! grep -q "cannot find type '$name' in scope" "$scratch/$name.log"; then
        # Failing for another reason (a missing module, say) proves nothing.
        cat "$scratch/$name.log" >&2
        echo "check-public-surface: FAILED: naming '$name' failed, but not because the name is hidden" >&2
        failures=$((failures + 1))
    else
        echo "check-public-surface: '$name' is not visible (as intended)"
    fi
done
exit $((failures > 0))
