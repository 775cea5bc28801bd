"""One rank of a data-parallel K-FAC training run (softmax regression, float64) for
test_distributed.py: ``mpirun -np N python distributed_kfac.py OUT.npz`` or, for the
one-process reference, ``python distributed_kfac.py OUT.npz``. Every rank takes its share of
each global batch; rank 0 saves the per-step losses and the final parameters."""

from __future__ import annotations

import sys

import numpy as np
from mpi4py import MPI

import naturalgradient as ng
from naturalgradient import distributed as dist

STEPS, BATCH, FEATURES, CLASSES = 8, 46, 7, 4


def main(path: str, fail_rank: int | None) -> None:
    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(11)
    inputs = rng.standard_normal((STEPS, BATCH, FEATURES))
    labels = np.argmax(inputs @ rng.standard_normal((FEATURES, CLASSES)), axis=2)  # a learnable rule
    layer = (CLASSES, FEATURES + 1)  # [W | b]
    options = ng.NaturalGradientOptimizerOptions(
        curvature="kfac", layers=[layer], damping=0.05, learning_rate=0.5, momentum=0.5, curvature_decay=0.5)
    optimizer = ng.NaturalGradientOptimizer(layer[0] * layer[1], options, dtype=np.float64, context=ng.Context("cpu"))
    theta = np.zeros(layer[0] * layer[1])
    rows = dist.share(comm, BATCH)
    losses = []
    for step in range(STEPS):
        x = np.hstack([inputs[step, rows.start:rows.stop], np.ones((len(rows), 1))])
        if comm.Get_rank() == fail_rank and step == 2:
            x[0, 0] = np.nan  # bad input on one rank: its optimizer refuses it
        y = labels[step, rows.start:rows.stop]
        logits = x @ theta.reshape(layer).T
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        local_loss = float(-np.log(p[np.arange(len(rows)), y]).mean())
        dz = p.copy()
        dz[np.arange(len(rows)), y] -= 1
        gradient = (dz.T @ x).ravel() / len(rows)
        g = dist.average_gradient(comm, gradient, samples=len(rows))
        loss = dist.mean(comm, local_loss, samples=len(rows))
        optimizer.step(theta, g, layers=dist.gather_layers(comm, [(x, dz)]), loss=loss)
        dist.require_identical(comm, theta)
        losses.append(loss)
    if comm.Get_rank() == 0:
        np.savez(path, losses=np.array(losses), theta=theta, ranks=comm.Get_size())


if __name__ == "__main__":
    fail = sys.argv.index("--fail-on-rank") if "--fail-on-rank" in sys.argv else None
    try:
        main(sys.argv[1], None if fail is None else int(sys.argv[fail + 1]))
    except Exception as error:  # one rank's error must end the job, not leave the others waiting
        print(f"rank {MPI.COMM_WORLD.Get_rank()} of {MPI.COMM_WORLD.Get_size()}: {error}", file=sys.stderr, flush=True)
        MPI.COMM_WORLD.Abort(1)
