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

Usage: python Benchmarks/python/bridge_overhead.py [--repetitions 20] [--device cpu] [--json out.json]
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
    package = HERE / "SwiftBaseline"
    subprocess.run(["swift", "build", "-c", "release"], cwd=package, check=True)
    binary = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=package, check=True,
                            capture_output=True, text=True).stdout.strip()
    output = subprocess.run([f"{binary}/swift-baseline", str(repetitions), "--device", device], check=True,
                            capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {row["case"]: (row["median_us"], row["min_us"]) for row in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    swift = swift_cases(arguments.repetitions, arguments.device)
    python = python_cases(arguments.repetitions, ng.Context(arguments.device))
    rows = []
    print(f"{'case':40} {'Swift median':>14} {'Python median':>14} {'overhead':>10} {'abs':>10}")
    for case, (py_median, py_min) in python.items():
        sw_median, sw_min = swift[case.replace(" bare ctypes", "")]
        overhead = py_median / sw_median - 1
        rows.append(dict(case=case, swift_median_us=sw_median, python_median_us=py_median, swift_min_us=sw_min,
                         python_min_us=py_min, overhead=overhead))
        print(f"{case:40} {sw_median:12.1f}us {py_median:12.1f}us {overhead:+9.1%} {py_median - sw_median:+8.1f}us")
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
