#!/usr/bin/env bash
# Checks an OpenCL device (a GPU machine) in one step from binaries built elsewhere.
#
#   scripts/device-check.sh --prepare [--bundle DIR] [--debug] [--skip-benchmarks]
#       Here (the build machine): builds static release binaries of ngrad and of the
#       benchmark package (swift build -c release --static-swift-stdlib; slow: tens of
#       minutes on two cores) and bundles them into DIR (default device-check-bundle) with
#       this script and the shared libraries they load that are not glibc's: OpenBLAS,
#       LAPACKE, zlib, CLBlast in lib/, and in lib/optional/ the OpenCL ICD loader
#       (libOpenCL.so.1) and the C++ runtime, used on the target only where it lacks them.
#       Binaries and libraries are stripped of symbols, and the bundle is also written as
#       DIR.tar.xz (about a seventh of its size: what travels to a device machine whose
#       copy limit is 64 MiB; unpack it there with tar xJf).
#       --debug bundles the debug builds instead and --skip-benchmarks leaves the benchmark
#       binary out (both to test this script quickly, not for a device).
#
#   DIR/device-check.sh [--device D] [--sizes quick|tiny] [--out DIR] [--budget SECONDS]
#       There (the target): runs, each under its own timeout and all within the budget
#       (default 450 s, under 8 minutes with the start-up):
#         ngrad devices --json, ngrad kernels --json, ngrad bench --json, ngrad tune --json
#         (its cache written into the output folder, never the user's), and the benchmark
#         package's suite (quick; tiny with --sizes tiny) against CLBlast and OpenBLAS,
#       writing every JSON, the stderr of every step, the machine's description and
#       summary.json / summary.txt (each step: passed, failed or timed out; its seconds)
#       under --out (default $OUT, else ./device-check-output). --device defaults to
#       $NGRAD_DEVICE, else gpu. Exit status 0 when every step passed, 1 otherwise.
#
# Tested on PoCL (the CPU device, --sizes tiny); see README, "Checking a GPU machine".
set -u

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 64; }

script_path=$(readlink -f "$0")
script_dir=$(dirname "$script_path")
mode=run
bundle=
debug=0
skip_benchmarks=0
device=${NGRAD_DEVICE:-gpu}
sizes=quick
out=${OUT:-}
budget=450
while [ $# -gt 0 ]; do
    case $1 in
        --prepare) mode=prepare ;;
        --bundle) bundle=$2; shift ;;
        --debug) debug=1 ;;
        --skip-benchmarks) skip_benchmarks=1 ;;
        --device) device=$2; shift ;;
        --sizes) sizes=$2; shift ;;
        --out) out=$2; shift ;;
        --budget) budget=$2; shift ;;
        -h | --help) usage ;;
        *) echo "device-check: unknown argument '$1'" >&2; usage ;;
    esac
    shift
done
case $sizes in quick | tiny) ;; *) echo "device-check: --sizes must be quick or tiny, not '$sizes'" >&2; exit 64 ;; esac
case $budget in '' | *[!0-9]*) echo "device-check: --budget must be whole seconds, not '$budget'" >&2; exit 64 ;; esac

# ---------------------------------------------------------------------------- prepare
# The libraries a binary loads, by path, less glibc's own (every Linux has those).
libraries_of() {
    ldd "$1" | awk '/=> \// { print $3 }' | grep -Ev '/(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux[^/]*)\.so' || true
}

prepare() {
    local root
    root=$(cd "$script_dir/.." && pwd)
    bundle=${bundle:-$PWD/device-check-bundle}
    local configuration=(-c release --static-swift-stdlib) products=.build/release
    if [ "$debug" = 1 ]; then configuration=(); products=.build/debug; fi
    echo "device-check: building ngrad (${configuration[*]:-debug})" >&2
    (cd "$root" && swift build "${configuration[@]}" --product ngrad) || exit 1
    if [ "$skip_benchmarks" = 0 ]; then
        echo "device-check: building ngrad-benchmarks (${configuration[*]:-debug})" >&2
        (cd "$root/Benchmarks" && swift build "${configuration[@]}" --product ngrad-benchmarks) || exit 1
    fi
    rm -rf "$bundle"
    mkdir -p "$bundle/bin" "$bundle/lib/optional"
    cp "$root/$products/ngrad" "$bundle/bin/"
    [ "$skip_benchmarks" = 0 ] && cp "$root/Benchmarks/$products/ngrad-benchmarks" "$bundle/bin/"
    cp "$script_path" "$bundle/device-check.sh"
    local library
    for library in $(for binary in "$bundle"/bin/*; do libraries_of "$binary"; done | sort -u); do
        case $(basename "$library") in
            # The ICD loader and the C++ runtime: only where the target has none, since a
            # GPU driver brings (and may need) its own.
            libOpenCL.so* | libstdc++.so* | libgcc_s.so*) cp -L -n "$library" "$bundle/lib/optional/" ;;
            *) cp -L -n "$library" "$bundle/lib/" ;;
        esac
    done
    # The debug build links the Swift runtime dynamically; the release build is static.
    # Symbols are most of a static Swift binary (the ICU data is the rest); a failure
    # report needs no local symbols, and the dynamic symbol tables stay for ldd and dlopen.
    chmod u+w "$bundle"/bin/* "$bundle"/lib/*.so* "$bundle"/lib/optional/*.so* 2>/dev/null
    if command -v strip >/dev/null; then
        strip --strip-all "$bundle"/bin/* || exit 1
        strip --strip-unneeded "$bundle"/lib/*.so* "$bundle"/lib/optional/*.so* 2>/dev/null
    else
        echo "device-check: no strip here: the bundle keeps its symbols" >&2
    fi
    ls "$bundle/lib" "$bundle/lib/optional" >&2
    du -sh "$bundle" >&2
    local archive="$bundle.tar.xz"
    tar -C "$(dirname "$bundle")" -cf - "$(basename "$bundle")" | xz -6 -T0 > "$archive" || exit 1
    du -sh "$archive" >&2
    echo "device-check: bundle in $bundle (and $archive); copy it to the target and run" \
        "$(basename "$bundle")/device-check.sh there" >&2
}

if [ "$mode" = prepare ]; then
    prepare
    exit 0
fi

# -------------------------------------------------------------------------------- run
bundle=${bundle:-$script_dir}
if [ ! -x "$bundle/bin/ngrad" ]; then
    echo "device-check: no bin/ngrad in $bundle (run --prepare first, or pass --bundle DIR)" >&2
    exit 64
fi
out=${out:-$PWD/device-check-output}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)

# The bundle's libraries, plus its optional ones where the target lacks any of them.
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
binaries=("$bundle/bin/ngrad")
[ -x "$bundle/bin/ngrad-benchmarks" ] && binaries+=("$bundle/bin/ngrad-benchmarks")
if ldd "${binaries[@]}" 2>/dev/null | grep -q 'not found'; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$bundle/lib/optional"
    echo "device-check: using the bundled ICD loader / C++ runtime (lib/optional)" >&2
fi
ldd "${binaries[@]}" >"$out/ldd.txt" 2>&1
export NGRAD_DEVICE=$device
export NGRAD_TUNING_CACHE="$out/tuning-cache.json"
# The steps share the machine with nothing else they start: one BLAS thread would
# understate OpenBLAS, so leave OpenBLAS's own default.

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -a)"
    echo "device selector: $device"
    echo "LD_LIBRARY_PATH: $LD_LIBRARY_PATH"
    echo "ICD vendors: $(ls /etc/OpenCL/vendors 2>/dev/null | tr '\n' ' ')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    command -v rocm-smi >/dev/null && rocm-smi --showproductname 2>&1
} >"$out/machine.txt"
command -v clinfo >/dev/null && timeout 30 clinfo >"$out/clinfo.txt" 2>&1

start=$(date +%s)
steps_json=
summary_text=
failures=0

# step NAME TIMEOUT OUTPUT COMMAND...: runs COMMAND with stdout to OUTPUT (under $out) and
# stderr to NAME.stderr, within TIMEOUT and what is left of the budget.
step() {
    local name=$1 limit=$2 output=$3
    shift 3
    local left=$((budget - ($(date +%s) - start)))
    [ "$limit" -gt "$left" ] && limit=$left
    local status rc seconds began
    began=$(date +%s.%N)
    if [ "$limit" -lt 5 ]; then
        status=skipped rc=-1
        echo "device-check: $name skipped: the budget of $budget s is spent" >"$out/$name.stderr"
    else
        echo "device-check: $name (at most $limit s)" >&2
        timeout --kill-after=10 "$limit" "$@" >"$out/$output" 2>"$out/$name.stderr"
        rc=$?
        case $rc in
            0) status=passed ;;
            124 | 137) status="timed out" ;;
            *) status=failed ;;
        esac
        # A JSON step passes only with JSON that parses (where python3 can tell).
        if [ "$status" = passed ] && [ "${output##*.}" = json ] && command -v python3 >/dev/null; then
            python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$out/$output" 2>>"$out/$name.stderr" ||
                status="failed (not JSON)"
        fi
    fi
    seconds=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    [ "$status" = passed ] || failures=$((failures + 1))
    echo "device-check: $name $status (${seconds} s)" >&2
    steps_json="$steps_json${steps_json:+,}
    {\"step\": \"$name\", \"status\": \"$status\", \"exit_status\": $rc, \"seconds\": $seconds, \"output\": \"$output\"}"
    summary_text="$summary_text$(printf '%-12s %-18s %7s s  %s' "$name" "$status" "$seconds" "$output")
"
}

ngrad=$bundle/bin/ngrad
if [ "$sizes" = tiny ]; then
    bench_size=(--size tiny --repetitions 2 --warmup 1)
    tune_size=(--size tiny --repetitions 2 --warmup 1)
    suite=tiny
else
    bench_size=(--size quick)
    tune_size=(--size standard)
    suite=quick
fi
step devices 30 devices.json "$ngrad" devices --json
step kernels 90 kernels.json "$ngrad" kernels --json
step bench 90 bench.json "$ngrad" bench --json "${bench_size[@]}"
step tune 120 tune.json "$ngrad" tune --json "${tune_size[@]}"
if [ -x "$bundle/bin/ngrad-benchmarks" ]; then
    step benchmarks 180 benchmarks.stdout "$bundle/bin/ngrad-benchmarks" --suite "$suite" --json "$out/benchmarks.json"
else
    failures=$((failures + 1))
    steps_json="$steps_json,
    {\"step\": \"benchmarks\", \"status\": \"not bundled\", \"exit_status\": -1, \"seconds\": 0, \"output\": \"\"}"
    summary_text="$summary_text$(printf '%-12s %-18s %7s s' benchmarks "not bundled" 0)
"
fi

total=$(($(date +%s) - start))
cat >"$out/summary.json" <<EOF
{
  "device": "$device",
  "sizes": "$sizes",
  "budget_seconds": $budget,
  "seconds": $total,
  "failures": $failures,
  "steps": [$steps_json
  ]
}
EOF
{
    echo "device-check on '$device' ($sizes sizes): $failures of 5 steps did not pass, $total s"
    printf '%s' "$summary_text"
} | tee "$out/summary.txt"
echo "device-check: everything is in $out" >&2
[ "$failures" -eq 0 ]
