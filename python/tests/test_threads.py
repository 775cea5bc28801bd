"""Two threads, each with its own objects, in parallel (ctypes releases the GIL)."""

from __future__ import annotations

import threading

import numpy as np
from conftest import fisher, relative_error

import naturalgradient as ng


def test_two_threads_with_their_own_objects(context):
    results: dict[int, list[float]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            rng = np.random.default_rng(index)
            u = rng.standard_normal((33 + index, 257))
            f = fisher(u) + 0.1 * np.eye(257)
            own = ng.Context("cpu") if index == 0 else context  # a private and a shared context
            curvature = ng.ImplicitCurvature(u, context=own)
            dense = ng.DenseCurvature(u, context=own)
            residuals = []
            for _ in range(10):
                x = rng.standard_normal(257)
                residuals.append(relative_error(curvature.matvec(x, 0.1), f @ x))
                solution, _ = ng.solve(dense, x, 0.1)
                residuals.append(relative_error(f @ solution, x))
                try:
                    curvature.matvec(x, -1.0)
                except ValueError as error:
                    assert "damping" in str(error)  # this thread's own message
            results[index] = residuals
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(results) == [0, 1]
    assert max(max(r) for r in results.values()) < 1e-10
