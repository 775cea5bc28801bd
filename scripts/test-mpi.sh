#!/usr/bin/env bash
# The distributed (MPI) checks: builds ngrad-mpi-check and runs it under mpirun with 1, 2 and
# 3 ranks (oversubscribing this 2-core machine), runs `ngrad train --distributed` on 2, then checks that a rank with bad input and
# a killed rank end the job with a message instead of hanging. Needs Open MPI
# (scripts/setup-debian.sh). Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product ngrad-mpi-check
swift build --product ngrad
check="$(swift build --show-bin-path)/ngrad-mpi-check"
ngrad="$(swift build --show-bin-path)/ngrad"

mpirun_flags=(--oversubscribe)
if [[ "$(id -u)" -eq 0 ]]; then mpirun_flags+=(--allow-run-as-root); fi
# One PoCL thread per rank: the ranks share the cores.
export POCL_MAX_PTHREAD_COUNT="${POCL_MAX_PTHREAD_COUNT:-1}"
mpirun_flags+=(-x POCL_MAX_PTHREAD_COUNT)
if [[ -n "${NGRAD_DEVICE:-}" ]]; then mpirun_flags+=(-x NGRAD_DEVICE); fi
limit=600  # seconds: a hang fails instead of blocking CI

failures=0
for ranks in 1 2 3; do
    echo "== ngrad-mpi-check on $ranks rank(s)"
    if ! timeout "$limit" mpirun "${mpirun_flags[@]}" -np "$ranks" "$check"; then
        echo "FAIL: ngrad-mpi-check on $ranks rank(s)"
        failures=$((failures + 1))
    fi
done

echo "== ngrad train --distributed on 2 ranks (swift test compares it with one process)"
train_output="$(mktemp -d)"
if ! timeout "$limit" mpirun "${mpirun_flags[@]}" -np 2 "$ngrad" train --distributed --methods kfac --steps 5 \
    --batch-size 64 --output "$train_output"; then
    echo "FAIL: ngrad train --distributed on 2 ranks"
    failures=$((failures + 1))
fi
rm -rf "$train_output"

# expect_failure NAME EXPECTED-TEXT ARGS...: the job must fail within the limit and print the text.
expect_failure() {
    local name="$1" expected="$2"
    shift 2
    echo "== $name"
    local output status=0
    output="$(timeout "$limit" mpirun "${mpirun_flags[@]}" "$@" 2>&1)" || status=$?
    if [[ $status -eq 124 ]]; then
        echo "FAIL: $name hung (killed after ${limit}s)"
        failures=$((failures + 1))
    elif [[ $status -eq 0 ]]; then
        echo "FAIL: $name exited 0"
        failures=$((failures + 1))
    elif ! grep -qF "$expected" <<<"$output"; then
        echo "FAIL: $name did not print '$expected'; it printed:"
        echo "$output"
        failures=$((failures + 1))
    else
        echo "ok: exit status $status, message: $(grep -F "$expected" <<<"$output" | head -1)"
    fi
}
expect_failure "a rank with bad input aborts the job" \
    "ngrad: rank 1 of 3: invalid argument 'weights'" -np 3 "$check" --fail-on-rank 1
expect_failure "a killed rank ends the job" "exited on signal 9" -np 3 "$check" --kill-rank 2

if ((failures > 0)); then
    echo "test-mpi: $failures failure(s)"
    exit 1
fi
echo "test-mpi: all distributed checks passed"
