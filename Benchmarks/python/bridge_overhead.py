"""Overhead of the Python bridge against the Swift API, on the same operations and sizes.

Cases (float32, CPU device by default), each timed as a caller with host arrays sees it
(upload the vector, run, read the result back), median of N runs after 3 warm-ups:
  - implicit product y = (F + lI) x at (M, P) = (1024, 65536), and at (7, 33) (tiny: the
    fixed cost per call);
  - Woodbury solve at (256, 65536);
  - K-FAC apply over layers 256x513, 128x257, 10x129.

The Swift side is SwiftBaseline/ (built here with `swift build -c release`); the Python side
is the installed `naturalgradient` package (or $NATURALGRADIENT_LIBRARY). Run on a quiet
machine: both sides are timed in one run, but a busy machine spreads both.

With --rounds R (default 5) the two sides alternate R times (Swift, Python, Swift, ...), and
the overhead quoted is the median over the rounds of each round's Python / Swift - 1: a
shared VM's throughput drifts by 10-20% over a minute, which a single Swift-then-Python
pair reads as overhead of either sign.

Usage: python Benchmarks/python/bridge_overhead.py [--repetitions 20] [--rounds 5] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

import naturalgradient as ng

HERE = Path(__file__).resolve().parent


def timed(repetitions: int, body: Callable[[], object]) -> tuple[float, float]:
    """Median and minimum wall time of ``body`` in microseconds, after 3 warm-ups."""
    for _ in range(3):
        body()
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        body()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples), min(samples)


def python_cases(repetitions: int, context: ng.Context) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(0)
    results = {}
    for m, p in ((1024, 65536), (7, 33)):
        F = ng.ImplicitCurvature(rng.uniform(-1, 1, (m, p)).astype(np.float32), context=context)
        x = rng.uniform(-1, 1, p).astype(np.float32)
        results[f"implicit-product ({m}, {p})"] = timed(repetitions, lambda: F.matvec(x, 1e-3))
    # The tiny case once more without the Python layer: the bare ctypes call with
    # precomputed pointers, so (matvec - raw) is what the NumPy checks cost per call.
    from naturalgradient import _library

    lib = _library.lib()
    x_tiny = rng.uniform(-1, 1, 33).astype(np.float32)
    y_tiny = np.empty_like(x_tiny)
    tiny = F  # the (7, 33) operator from the loop above
    handle, xp, yp = tiny.handle, x_tiny.ctypes.data, y_tiny.ctypes.data
    results["implicit-product (7, 33) bare ctypes"] = timed(
        repetitions, lambda: lib.ng_curvature_apply(handle, 1, xp, 33, 1, 1e-3, yp))
    m, p = 256, 65536
    W = ng.ImplicitCurvature(rng.uniform(-1, 1, (m, p)).astype(np.float32), context=context)
    g = rng.uniform(-1, 1, p).astype(np.float32)
    results[f"woodbury-solve ({m}, {p})"] = timed(repetitions, lambda: ng.solve(W, g, 1e-3, method="woodbury"))
    n = 512
    shapes = [(256, 513), (128, 257), (10, 129)]
    layers = [(rng.uniform(-1, 1, (n, i)).astype(np.float32), rng.uniform(-1, 1, (n, o)).astype(np.float32))
              for o, i in shapes]
    K = ng.KroneckerCurvature(layers, context=context)
    v = rng.uniform(-1, 1, K.shape[0]).astype(np.float32)
    results["kfac-apply 256x513,128x257,10x129"] = timed(repetitions, lambda: K.matvec(v, 1e-3))
    return results


def swift_cases(repetitions: int, device: str) -> dict[str, tuple[float, float]]:
    output = subprocess.run([f"{swift_binary()}/swift-baseline", str(repetitions), "--device", device], check=True,
                            capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {row["case"]: (row["median_us"], row["min_us"]) for row in rows}


def swift_binary() -> str:
    """The release build folder of SwiftBaseline/, built on first use."""
    global _swift_binary
    if _swift_binary is None:
        package = HERE / "SwiftBaseline"
        subprocess.run(["swift", "build", "-c", "release"], cwd=package, check=True)
        _swift_binary = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=package,
                                       check=True, capture_output=True, text=True).stdout.strip()
    return _swift_binary


_swift_binary: str | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    if arguments.repetitions < 1 or arguments.rounds < 1:
        parser.error(f"--repetitions {arguments.repetitions} and --rounds {arguments.rounds} must be at least 1")
    context = ng.Context(arguments.device)
    rounds = []
    for _ in range(arguments.rounds):
        swift = swift_cases(arguments.repetitions, arguments.device)
        python = python_cases(arguments.repetitions, context)
        rounds.append({case: (swift[case.replace(" bare ctypes", "")][0], median) for case, (median, _) in python.items()})
    rows = []
    print(f"{'case':40} {'Swift median':>14} {'Python median':>14} {'overhead':>10} {'range over rounds':>20}")
    for case in rounds[0]:
        sw = statistics.median(r[case][0] for r in rounds)
        py = statistics.median(r[case][1] for r in rounds)
        overheads = sorted(r[case][1] / r[case][0] - 1 for r in rounds)
        overhead = statistics.median(overheads)
        rows.append(dict(case=case, swift_median_us=sw, python_median_us=py, overhead=overhead,
                         overhead_per_round=overheads, rounds=arguments.rounds, repetitions=arguments.repetitions))
        print(f"{case:40} {sw:12.1f}us {py:12.1f}us {overhead:+9.1%} {overheads[0]:+9.1%} to {overheads[-1]:+.1%}")
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
