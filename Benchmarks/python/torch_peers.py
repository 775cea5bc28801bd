#!/usr/bin/env python3
"""naturalgradient.torch against curvlinops on curvlinops' benchmark problem, and a training
comparison of our torch KFAC with torch's Adam and KFAC-JAX (by subprocess in its venv).

Curvature (``--curvature``): the MLP 784-1024-512-256-128-64-10 (ReLU) on MNIST-shaped
synthetic data (x ~ N(0, 1), 10 random labels), batch 512, float32, CrossEntropyLoss(mean).
Per operation, the median of ``--repetitions`` runs after one warm-up, ours and curvlinops'
interleaved so a busy machine slows both alike:

- gradient: forward + backward (torch for both; "ours" with the KFAC hooks installed).
- GGN mat-vec: curvlinops' matrix-free ``GGNLinearOperator @ v`` (a forward and two
  backward passes per product) against our implicit operator's product, whose input (the
  per-sample Jacobians, N x 10 x P) is timed separately. At batch 512 those rows are
  30.7 GB, so this operation runs on ``--ggn-batch`` samples (both sides the same).
- K-FAC factors: curvlinops' ``compute_kronecker_factors()`` (forward, backward, factors)
  against ours: forward + backward with hooks and the rows (input), then the library's
  factor accumulation (``KroneckerCurvature``).
- K-FAC mat-vec: ``KFACLinearOperator @ v`` against ``KroneckerCurvature.apply``.
- K-FAC inverse: ``KFACInverseLinearOperator(use_heuristic_damping=True)`` built and applied
  (factor inversion + product) against ``ng.solve(method="kfac")`` (the same factored damping).

Training (``--train``): the digits MLP 64-128-64-10 (tanh) of ``ngrad train``, with the same
split, Glorot initial parameters and batch order (train_peers_replica.py), batch 512: our
``KFAC`` (damping 0.03, factor EMA 0.95, inverse every 2 steps) with torch SGD (lr 0.3,
momentum 0.9), torch Adam (lr 0.03), and KFAC-JAX's optimizer, adaptive and with our fixed
settings: train_peers.py (``--peers-only --json``) run by subprocess in the JAX venv
(``--jax-python``), seed by seed between ours and Adam, on the same replica. Steps and
seconds to the full-training-set loss threshold, ms per step, KFAC-JAX's compile seconds
(its first run minus a warm repeat), final loss, test accuracy; ``--svg`` writes the loss
curves.

Threads: ``--threads T`` sets torch's intra-op threads, OpenBLAS's and PoCL's CPU device
(POCL_CPU_MAX_CU_COUNT / POCL_MAX_PTHREAD_COUNT) before the library loads.

    bash scripts/setup-python.sh
    .build/python-venv/bin/python Benchmarks/python/torch_peers.py --curvature --train --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def configure_threads(threads: int) -> None:
    for name in ("POCL_CPU_MAX_CU_COUNT", "POCL_MAX_PTHREAD_COUNT", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(threads)


_HERE = os.path.dirname(os.path.abspath(__file__))
_VENV_PYTHON = os.path.join(_HERE, ".venv", "bin", "python")
DEFAULT_JAX_PYTHON = _VENV_PYTHON if os.path.exists(_VENV_PYTHON) else ""
# train_peers.py's keys for the KFAC-JAX runs, and ours for them in the table.
JAX_PEERS = {"kfac-jax": "kfac-jax-adaptive", "kfac-jax-fixed": "kfac-jax-fixed"}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curvature", action="store_true", help="the curvlinops operations")
    parser.add_argument("--train", action="store_true", help="the training comparison")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--ggn-batch", type=int, default=8)
    parser.add_argument("--jacobian-chunk", type=int, default=None,
                        help="samples per Jacobian chunk (default: the GGN class's, chunks of at most 64 MiB)")
    parser.add_argument("--sizes", default="784,1024,512,256,128,64,10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threshold", type=float, default=1e-3)
    parser.add_argument("--jax-python", default=DEFAULT_JAX_PYTHON,
                        help="the JAX venv's interpreter for KFAC-JAX (train_peers.py); empty: skip KFAC-JAX "
                             "(default: Benchmarks/python/.venv/bin/python when it exists)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--svg", help="write the training loss curves here")
    args = parser.parse_args()
    if not (args.curvature or args.train):
        parser.error("choose --curvature and/or --train")
    return args


ARGS = parse()
configure_threads(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import naturalgradient as ng  # noqa: E402
import naturalgradient.torch as ngt  # noqa: E402

torch.set_num_threads(ARGS.threads)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def median_seconds(function, repetitions: int) -> float:
    function()  # warm-up (kernel compilation, allocator)
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(cases: dict, repetitions: int) -> dict:
    """Median seconds per case, the cases run round-robin."""
    for function in cases.values():
        function()
    times = {name: [] for name in cases}
    for _ in range(repetitions):
        for name, function in cases.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def curvature_benchmark(context: ng.Context) -> dict:
    import curvlinops

    sizes = [int(s) for s in ARGS.sizes.split(",")]
    torch.manual_seed(0)
    model = mlp(sizes)
    params = list(model.parameters())
    dimension = sum(p.numel() for p in params)
    x = torch.randn(ARGS.batch, sizes[0])
    y = torch.randint(0, sizes[-1], (ARGS.batch,))
    loss_function = nn.CrossEntropyLoss()
    damping = 1e-2
    v = torch.randn(dimension)
    results: dict = {"problem": {"sizes": sizes, "batch": ARGS.batch, "parameters": dimension,
                                 "ggn_batch": ARGS.ggn_batch, "threads": ARGS.threads,
                                 "torch": torch.__version__, "naturalgradient": ng.version(),
                                 "curvlinops": getattr(curvlinops, "__version__", "3.x")}}

    def plain_gradient():
        model.zero_grad()
        loss_function(model(x), y).backward()

    kfac = ngt.KFAC(model, context=context)

    def hooked_gradient():
        model.zero_grad()
        kfac.backward(model(x), y)

    kfac.remove()
    reference = curvlinops.KFACLinearOperator(model, loss_function, params, [(x, y)], fisher_type="empirical",
                                              separate_weight_and_bias=False, check_deterministic=False)
    kfac = ngt.KFAC(model, context=context)
    hooked_gradient()

    def curvlinops_factors():
        # compute_kronecker_factors adds to the cached factors; start from none, as a new
        # operator would.
        reference._input_covariances, reference._gradient_covariances = {}, {}
        reference.compute_kronecker_factors()

    def our_inputs():
        hooked_gradient()
        return kfac.statistics()

    stats = our_inputs()

    def our_factors():
        ng.KroneckerCurvature(stats, context=context).close()

    timings = interleaved({
        "gradient (torch)": plain_gradient,
        "gradient (torch + our hooks)": hooked_gradient,
        "K-FAC factors: curvlinops": curvlinops_factors,
        "K-FAC factors: ours, input (forward, backward, rows)": our_inputs,
        "K-FAC factors: ours, library": our_factors,
    }, ARGS.repetitions)
    curvature = ng.KroneckerCurvature(stats, context=context)
    v_ours = np.ascontiguousarray(v.numpy())
    g_ours = v_ours.copy()
    inverse_reference = curvlinops.KFACInverseLinearOperator(reference, damping=damping, use_heuristic_damping=True,
                                                             cache=False)

    def curvlinops_inverse():
        inverse_reference @ v

    timings.update(interleaved({
        "K-FAC mat-vec: curvlinops": lambda: reference @ v,
        "K-FAC mat-vec: ours": lambda: curvature.apply(v_ours),
        "K-FAC inverse: curvlinops": curvlinops_inverse,
        "K-FAC inverse: ours": lambda: ng.solve(curvature, g_ours, damping, method="kfac"),
    }, ARGS.repetitions))
    # GGN on a sub-batch (the Jacobian rows of the full batch do not fit in memory).
    xs, ys = x[:ARGS.ggn_batch], y[:ARGS.ggn_batch]
    ggn_reference = curvlinops.GGNLinearOperator(model, loss_function, params, [(xs, ys)], check_deterministic=False)
    natural = ngt.GGN(model, loss_function, chunk_size=ARGS.jacobian_chunk, context=context)
    timings["GGN mat-vec: ours, input (Jacobians)"] = median_seconds(lambda: natural.jacobians(xs),
                                                                      max(1, ARGS.repetitions // 2))
    ggn = natural.curvature(xs)
    timings.update(interleaved({
        "GGN mat-vec: curvlinops": lambda: ggn_reference @ v,
        "GGN mat-vec: ours": lambda: ggn.matvec(v_ours),
    }, ARGS.repetitions))
    # EKFAC: curvlinops builds it lazily (factors pass, eigendecompositions, eigenvalue
    # correction pass), so a fresh operator's build is timed; ours: one hooked pass for
    # the rows, then the library's factors, eigenbases and corrected eigenvalues.
    kfac.remove()
    ekfac = ngt.EKFAC(model, context=context)

    def curvlinops_ekfac():
        operator = curvlinops.EKFACLinearOperator(model, loss_function, params, [(x, y)], fisher_type="empirical",
                                                  separate_weight_and_bias=False, check_deterministic=False)
        operator._maybe_compute_ekfac()
        return operator

    def our_ekfac_inputs():
        model.zero_grad()
        ekfac.backward(model(x), y)
        return ekfac.grouped_statistics()

    [(_, ekfac_layers)] = our_ekfac_inputs()  # an MLP: one row-count group
    timings.update(interleaved({
        "EKFAC build: curvlinops": curvlinops_ekfac,
        "EKFAC build: ours, input (forward, backward, rows)": our_ekfac_inputs,
        "EKFAC build: ours, library": lambda: ng.EKFACCurvature(ekfac_layers, context=context).close(),
    }, max(1, ARGS.repetitions // 2)))
    ekfac.remove()
    ekfac_reference = curvlinops_ekfac() @ v
    with ng.EKFACCurvature(ekfac_layers, context=context) as ekfac_curvature:
        ekfac_ours = ekfac_curvature.apply(kfac_order(kfac, v_ours))
    # Agreement, so the timings compare the same numbers.
    agreement = {
        "K-FAC mat-vec": float(np.linalg.norm(kfac_order(kfac, (reference @ v).numpy()) - curvature.apply(
            kfac_order(kfac, v_ours))) / np.linalg.norm((reference @ v).numpy())),
        "EKFAC mat-vec": float(np.linalg.norm(kfac_order(kfac, ekfac_reference.numpy()) - ekfac_ours)
                               / np.linalg.norm(ekfac_reference.numpy())),
        "GGN mat-vec": float(np.linalg.norm((ggn_reference @ v).numpy() - ggn.matvec(v_ours))
                             / np.linalg.norm((ggn_reference @ v).numpy())),
    }
    results["seconds"] = timings
    results["relative_difference"] = agreement
    return results


def kfac_order(kfac: "ngt.KFAC", vector: np.ndarray) -> np.ndarray:
    """A torch-order vector in our [W | b] layout."""
    tensors, start = [], 0
    t = torch.from_numpy(np.ascontiguousarray(vector))
    for layer in kfac.layers:
        for p in layer.parameters:
            tensors.append(t[start:start + p.numel()].view(p.shape))
            start += p.numel()
        if layer.module.bias is None:
            tensors.append(None)
    return kfac.flat(tensors).numpy()


def curvature_table(results: dict) -> str:
    s = results["seconds"]
    problem = results["problem"]
    rows = [
        ("gradient (torch; ours: with the K-FAC hooks)", s["gradient (torch)"], s["gradient (torch + our hooks)"],
         None),
        ("K-FAC factors", s["K-FAC factors: curvlinops"], s["K-FAC factors: ours, library"],
         s["K-FAC factors: ours, input (forward, backward, rows)"]),
        ("K-FAC mat-vec", s["K-FAC mat-vec: curvlinops"], s["K-FAC mat-vec: ours"], None),
        ("K-FAC inverse (invert + apply)", s["K-FAC inverse: curvlinops"], s["K-FAC inverse: ours"], None),
        ("EKFAC build (factors, eigenbases, eigenvalues)", s["EKFAC build: curvlinops"],
         s["EKFAC build: ours, library"], s["EKFAC build: ours, input (forward, backward, rows)"]),
        (f"GGN mat-vec (batch {problem['ggn_batch']})", s["GGN mat-vec: curvlinops"], s["GGN mat-vec: ours"],
         s["GGN mat-vec: ours, input (Jacobians)"]),
    ]
    lines = ["| operation | curvlinops ms | ours ms | ours: input ms | ours + input ms | curvlinops / (ours + input) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, theirs, ours, inputs in rows:
        total = ours + (inputs or 0.0)
        lines.append(f"| {name} | {theirs * 1e3:.2f} | {ours * 1e3:.2f} | "
                     f"{'-' if inputs is None else f'{inputs * 1e3:.2f}'} | {total * 1e3:.2f} | {theirs / total:.2f} |")
    return "\n".join(lines)


# Training --------------------------------------------------------------------------------

SIZES = [64, 128, 64, 10]


def digits_model(seed: int) -> nn.Module:
    sys.path.insert(0, HERE)
    from train_peers_replica import initial_parameters

    layers: list[nn.Module] = []
    for index, (w, b) in enumerate(initial_parameters(SIZES, seed)):
        linear = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if index < len(SIZES) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def train_torch(name: str, seed: int, context: ng.Context) -> dict:
    sys.path.insert(0, HERE)
    from train_peers_replica import batch_order, load_digits

    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in load_digits(
        os.path.join(ROOT, "Data", "digits.csv.gz"), seed))
    y_train, y_test = y_train.long(), y_test.long()
    model = digits_model(seed)
    loss_function = nn.CrossEntropyLoss()
    kfac = None
    if name == "ours-kfac":
        kfac = ngt.KFAC(model, damping=0.03, factor_decay=0.95, inverse_update_period=2, context=context)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    seconds, losses, phases = [], [], []
    for rows in batch_order(len(y_train), min(ARGS.batch, len(y_train)), ARGS.steps, seed):
        index = torch.tensor(rows)
        start = time.perf_counter()
        optimizer.zero_grad()
        if kfac is not None:
            kfac.backward(model(x_train[index]), y_train[index])
            backward = time.perf_counter()
            report = kfac.step()
        else:
            loss_function(model(x_train[index]), y_train[index]).backward()
            backward = time.perf_counter()
        preconditioned = time.perf_counter()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
        # Where the step's time goes (the breakdown table).
        phase = {"forward + backward": backward - start, "torch optimizer step": start + seconds[-1] - preconditioned}
        if kfac is not None:
            timings = kfac.last_timings
            library = "library, inverse refreshed" if report.refreshed_inverse else "library, cached inverse"
            phase.update({"layout (.grad, parameters)": timings["layout"], "rows to NumPy": timings["rows"],
                          library: timings["library"], "write .grad": timings["write"],
                          "KFAC.step rest": preconditioned - backward - sum(timings.values())})
        phases.append(phase)
        with torch.no_grad():
            losses.append(float(loss_function(model(x_train), y_train)))
        if losses[-1] <= ARGS.threshold or not np.isfinite(losses[-1]):
            break
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(dim=1) == y_test).float().mean())
    return {"seconds": seconds, "losses": losses, "test_accuracy": accuracy, "phases": phases}


def breakdown_table(runs: dict) -> str:
    """Median ms per phase of our K-FAC and torch Adam steps (per seed), and K-FAC / Adam."""
    names = ["forward + backward", "layout (.grad, parameters)", "rows to NumPy", "library, cached inverse",
             "library, inverse refreshed", "write .grad", "KFAC.step rest", "torch optimizer step"]
    keys = [key for key in runs if key[0] in ("ours-kfac", "torch-adam") and runs[key].get("phases")]
    lines = ["| phase | " + " | ".join(f"{name} seed {seed}" for name, seed in keys) + " |",
             "| --- |" + " --- |" * len(keys)]
    for phase in names + ["whole step"]:
        cells = []
        for key in keys:
            if phase == "whole step":
                values = runs[key]["seconds"]
            else:
                values = [p[phase] for p in runs[key]["phases"] if phase in p]
            cells.append(f"{1e3 * statistics.median(values):.3f}" if values else "-")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_kfac_jax(seed: int) -> dict:
    """KFAC-JAX (adaptive, and with our fixed settings) on ``seed`` by train_peers.py in the
    JAX venv: ``{table name: run}``, empty (with a printed reason) when it cannot run."""
    if not ARGS.jax_python:
        print("KFAC-JAX skipped: no --jax-python (create Benchmarks/python/.venv, see train_peers.py)", flush=True)
        return {}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "peers.json")
        command = [ARGS.jax_python, os.path.join(HERE, "train_peers.py"), "--peers-only", "--seeds", str(seed),
                   "--peers", ",".join(JAX_PEERS), "--steps", str(ARGS.steps), "--threshold", str(ARGS.threshold),
                   "--batch-size", str(ARGS.batch), "--json", path]
        # The same CPU threads as ours: the thread variables are inherited, and XLA's CPU
        # thread pool is as large as the process's CPU affinity, so that is limited to T CPUs.
        cpus = sorted(os.sched_getaffinity(0))[:ARGS.threads]
        result = subprocess.run(command, cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True,
                                text=True, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        if result.returncode != 0:
            print(f"KFAC-JAX failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}", flush=True)
            return {}
        with open(path) as handle:
            report = json.load(handle)
    runs = {}
    for record in report["runs"]:
        runs[JAX_PEERS[record["key"]]] = {
            "seconds": record["step_seconds"],
            "losses": [float("nan") if loss is None else loss for loss in record["losses"]],
            "test_accuracy": record["test_accuracy"], "compile_seconds": record["compile_seconds"],
            "versions": report.get("versions")}
    return runs


def training_table(runs: dict) -> str:
    lines = [f"| method | seed | steps to loss <= {ARGS.threshold:g} | seconds to it | ms per step | compile s | "
             "final loss | test accuracy |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (name, seed), run in runs.items():
        reached = next((i + 1 for i, loss in enumerate(run["losses"]) if loss <= ARGS.threshold), None)
        seconds = None if reached is None else sum(run["seconds"][:reached])
        accuracy, compile_seconds = run["test_accuracy"], run.get("compile_seconds")
        lines.append(f"| {name} | {seed} | {reached if reached else 'not reached'} | "
                     f"{'-' if seconds is None else f'{seconds:.2f}'} | "
                     f"{1e3 * statistics.median(run['seconds']):.2f} | "
                     f"{'-' if compile_seconds is None else f'{compile_seconds:.1f}'} | {run['losses'][-1]:.3g} | "
                     f"{'-' if accuracy is None else f'{accuracy:.3f}'} |")
    return "\n".join(lines)


def svg(runs: dict, path: str) -> None:
    """Full-training-set loss against step, log scale, one polyline per run."""
    width, height, margin = 640, 400, 50
    colors = {"ours-kfac": "#1f77b4", "torch-adam": "#ff7f0e", "kfac-jax-adaptive": "#2ca02c",
              "kfac-jax-fixed": "#9467bd"}
    steps = max(len(run["losses"]) for run in runs.values())
    values = [v for run in runs.values() for v in run["losses"] if v > 0 and np.isfinite(v)]
    low, high = np.log10(min(values)), np.log10(max(values))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle">digits MLP: training loss (log10) per step</text>']
    for (name, seed), run in runs.items():
        points = []
        for step, loss in enumerate(run["losses"]):
            if loss <= 0 or not np.isfinite(loss):
                continue
            px = margin + (width - 2 * margin) * step / max(1, steps - 1)
            py = height - margin - (height - 2 * margin) * (np.log10(loss) - low) / max(1e-12, high - low)
            points.append(f"{px:.1f},{py:.1f}")
        parts.append(f'<polyline fill="none" stroke="{colors.get(name, "#555")}" stroke-width="1.5" '
                     f'points="{" ".join(points)}"><title>{name} seed {seed}</title></polyline>')
    for index, name in enumerate(sorted({name for name, _ in runs})):
        parts.append(f'<text x="{width - margin - 120}" y="{margin + 16 * index}" fill="{colors.get(name, "#555")}">'
                     f'{name}</text>')
    parts.append(f'<text x="{margin}" y="{height - 15}">step 0 … {steps}; loss {10 ** low:.1e} … {10 ** high:.1e}'
                 '</text></svg>')
    with open(path, "w") as handle:
        handle.write("\n".join(parts))


def main() -> None:
    context = ng.Context("cpu")
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(f"torch {torch.__version__}, naturalgradient {ng.version()}, {ARGS.threads} threads, "
          f"device {context!r}", flush=True)
    if ARGS.curvature:
        curvature = curvature_benchmark(context)
        results["curvature"] = curvature
        print(curvature_table(curvature), flush=True)
        print("relative differences (ours vs curvlinops):", curvature["relative_difference"], flush=True)
    if ARGS.train:
        runs = {}
        for seed in (int(s) for s in ARGS.seeds.split(",")):
            runs[("ours-kfac", seed)] = train_torch("ours-kfac", seed, context)
            runs[("torch-adam", seed)] = train_torch("torch-adam", seed, context)
            for name, run in train_kfac_jax(seed).items():
                runs[(name, seed)] = run
        print(training_table(runs), flush=True)
        print("\nmedian ms per phase of a step:\n" + breakdown_table(runs), flush=True)
        results["training"] = {f"{name} seed {seed}": run for (name, seed), run in runs.items()}
        results["training_problem"] = {"batch": ARGS.batch, "steps": ARGS.steps, "threshold": ARGS.threshold,
                                       "threads": ARGS.threads, "jax_python": ARGS.jax_python}
        if ARGS.svg:
            svg(runs, ARGS.svg)
    if ARGS.json:
        with open(ARGS.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
