"""Data-parallel training over MPI from Python, with an mpi4py communicator.

Each rank holds its share of the global mini-batch; these helpers turn the ranks' local
quantities into the global batch's, with **the same bits on every rank** (fixed order: rank
0, 1, ..., p-1, in float64), so every rank's optimizer takes the same step and the replicas
never drift::

    from mpi4py import MPI
    import naturalgradient as ng
    from naturalgradient import distributed as dist

    comm = MPI.COMM_WORLD
    rows = dist.share(comm, batch_size)                     # this rank's rows of the batch
    ...                                                      # forward/backward on them
    g = dist.average_gradient(comm, local_mean_gradient, samples=len(rows))
    optimizer.step(theta, g, layers=dist.gather_layers(comm, local_layers))

mpi4py (PyPI: ``pip install mpi4py``, whose wheel uses the system's Open MPI or MPICH) is
imported by the caller; this module only calls the communicator's buffer methods
(``Allgather``, ``Allgatherv``, ``Get_rank``, ``Get_size``), so any object with those works.

K-FAC: the C ABI's optimizer builds its factors from layer statistics, so
:func:`gather_layers` gives every rank the global batch's statistics (every rank's rows, in
rank order): every rank then holds the factors one process would, bit for bit. That moves
N (inputs + outputs) values per layer, against in(in+1)/2 + out(out+1)/2 for summing the
factors (what the Swift ``NaturalGradientDistributed`` does, with the inversions spread over
the ranks, KAISA's way); it is the cheaper of the two while the global batch N is smaller
than the layer widths, and the only one the Python optimizer can take today.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["share", "sum_in_rank_order", "average_gradient", "mean", "gather_layers", "require_identical"]


def _shape(comm: Any) -> tuple[int, int]:
    return int(comm.Get_rank()), int(comm.Get_size())


def share(comm: Any, count: int) -> range:
    """This rank's contiguous share ``rank*count//size : (rank+1)*count//size`` of ``count``
    samples (every rank needs at least one: ``count >= size``)."""
    rank, size = _shape(comm)
    if count < size:
        raise ValueError(f"count: {count} samples for {size} ranks; every rank needs at least one")
    return range(rank * count // size, (rank + 1) * count // size)


def sum_in_rank_order(comm: Any, values: NDArray) -> NDArray:
    """``values`` summed element-wise over the ranks: gathered (one ``Allgather``), added in
    rank order in float64 and rounded once to the input's dtype, so every rank returns the
    same bits whatever MPI's reduction algorithm. Every rank passes the same shape and dtype.
    Traffic: (p-1)·n values received per rank."""
    local = np.ascontiguousarray(values)
    if local.dtype not in (np.float32, np.float64):
        raise ValueError(f"values: dtype {local.dtype} is not float32 or float64")
    _, size = _shape(comm)
    gathered = np.empty((size,) + local.shape, dtype=local.dtype)
    comm.Allgather(local, gathered)
    total = gathered[0].astype(np.float64)
    for rank in range(1, size):
        total += gathered[rank]
    return total.astype(local.dtype)


def average_gradient(comm: Any, gradient: NDArray, samples: int) -> NDArray:
    """The global mean gradient ``sum_r N_r g_r / sum_r N_r`` from this rank's mean
    ``gradient`` over its ``samples``, the same bits on every rank. A non-finite local value
    raises ``ValueError`` before any communication."""
    if samples <= 0:
        raise ValueError(f"samples: must be positive, got {samples}")
    g = np.ascontiguousarray(gradient)
    bad = int(np.count_nonzero(~np.isfinite(g)))
    if bad:
        # Raised before the collective: the caller ends the job (comm.Abort), since the other
        # ranks already wait in it; summed, the NaN would reach every rank's parameters.
        raise ValueError(f"gradient: {bad} non-finite values on rank {_shape(comm)[0]}")
    weighted = np.append(g.astype(np.float64) * samples, float(samples))
    total = sum_in_rank_order(comm, weighted)
    return (total[:-1] / total[-1]).astype(g.dtype)


def mean(comm: Any, value: float, samples: int) -> float:
    """The global mean of a per-sample mean ``value`` over this rank's ``samples`` (a loss)."""
    total = sum_in_rank_order(comm, np.array([value * samples, samples], dtype=np.float64))
    return float(total[0] / total[1])


def gather_layers(comm: Any, layers: Sequence[tuple[NDArray, NDArray]]) -> list[tuple[NDArray, NDArray]]:
    """Every rank's K-FAC layer statistics ``[(activations (N_r, in), output_gradients
    (N_r, out)), ...]`` concatenated in rank order: the global batch's, on every rank."""
    _, size = _shape(comm)
    counts = np.empty(size, dtype=np.int64)
    comm.Allgather(np.array([layers[0][0].shape[0] if layers else 0], dtype=np.int64), counts)
    result = []
    for index, layer in enumerate(layers):
        pair = []
        for name, array in zip(("activations", "output_gradients"), layer):
            local = np.ascontiguousarray(array)
            if local.ndim != 2:
                raise ValueError(f"layers[{index}].{name}: expected (N, width), got shape {local.shape}")
            width = local.shape[1]
            gathered = np.empty((int(counts.sum()), width), dtype=local.dtype)
            comm.Allgatherv(local, [gathered, counts * width])
            pair.append(gathered)
        result.append((pair[0], pair[1]))
    return result


def require_identical(comm: Any, parameters: NDArray) -> None:
    """Raises ``RuntimeError`` on every rank unless every rank holds the same bits."""
    _, size = _shape(comm)
    # hashlib, not hash(): Python salts str/bytes hashes per process.
    raw = hashlib.blake2b(np.ascontiguousarray(parameters).tobytes(), digest_size=8).digest()
    digest = np.frombuffer(raw, dtype=np.int64).copy()
    gathered = np.empty(size, dtype=np.int64)
    comm.Allgather(digest, gathered)
    differing = [rank for rank in range(size) if gathered[rank] != gathered[0]]
    if differing:
        raise RuntimeError(f"the parameters of rank(s) {differing} differ from rank 0's")
