#!/usr/bin/env python3
"""`ngrad train` against its peers: KFAC-JAX (adaptive, and with ngrad's fixed settings) and
optax Adam, on the same digits split, initial parameters and batch order as
`ngrad train --seed N` (train_peers_replica.py reproduces them bit for bit; the step-0 loss
is checked against ngrad's steps.csv before anything is timed).

Runs ngrad and the peers interleaved, seed by seed, so that a busy machine slows both alike,
and prints a Markdown table of medians over the seeds and one per seed. Seconds count the
training steps only (not the full-training-set loss evaluated after every step); the peers'
compile time is their first run's time minus the same run repeated with warm caches.

    python3.11 -m venv Benchmarks/python/.venv
    Benchmarks/python/.venv/bin/pip install -r Benchmarks/python/train_peers_requirements.txt
    swift build -c release --product ngrad
    Benchmarks/python/.venv/bin/python Benchmarks/python/train_peers.py --seeds 0,1,2

`--peers-only` skips ngrad (and so the step-0 check against it; the replica's step-0 loss is
still reported) and `--json PATH` writes every run, so another benchmark can run the peers in
this venv by subprocess:

    Benchmarks/python/.venv/bin/python Benchmarks/python/train_peers.py --peers-only --seeds 0 \
        --peers kfac-jax,kfac-jax-fixed --json peers.json

The JSON is {"threshold", "batch_size", "steps", "seeds", "versions", "runs": [...]}, one run
per seed and method: {"seed", "key" (kfac-jax, kfac-jax-fixed, optax-adam, or ngrad's method
name), "source" ("peer" or "ngrad"), "name", "step0_loss", "steps_to_threshold" and
"seconds_to_threshold" (null when not reached), "ms_per_step" (median), "compile_seconds"
(null for ngrad), "final_loss", "test_accuracy" (null for ngrad), "losses" and "step_seconds"
(per step)}.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import kfac_jax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_peers_replica import batch_order, initial_parameters, load_digits  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIZES = [64, 128, 64, 10]
OUR_METHODS = {"kfac": "our K-FAC (KFAC-JAX's rules, exact-GGN model)", "kfac-fixed": "our K-FAC, fixed settings",
               "adam": "our Adam, lr 0.03", "fisher-cg": "our exact-Fisher CG"}


def logits_of(params, x):
    h = x
    for index, layer in enumerate(params):
        z = h @ layer["w"] + layer["b"]
        h = jnp.tanh(z) if index < len(params) - 1 else z
    return h


def batch_loss(params, batch):
    x, y = batch
    logits = logits_of(params, x)
    kfac_jax.register_softmax_cross_entropy_loss(logits, y)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@jax.jit
def full_loss(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits_of(params, x), y).mean()


def jax_parameters(seed):
    # ngrad's [W | b] rows are outputs; a JAX dense layer is x @ w with w = Wᵀ.
    return [{"w": jnp.asarray(w.T), "b": jnp.asarray(b)} for w, b in initial_parameters(SIZES, seed)]


class Run:
    """One training run: per-step seconds and the full training loss after each step."""

    def __init__(self, name):
        self.name, self.seconds, self.losses, self.compile = name, [], [], None
        self.test_accuracy = None

    def steps_to(self, threshold):
        return next((i + 1 for i, loss in enumerate(self.losses) if loss <= threshold), None)

    def seconds_to(self, threshold):
        steps = self.steps_to(threshold)
        return None if steps is None else sum(self.seconds[:steps])

    def ms_per_step(self):
        return 1e3 * statistics.median(self.seconds) if self.seconds else float("nan")


@jax.jit
def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(logits_of(params, x), axis=1) == y)


def train(name, make_step, data, seed, batch_size, steps, threshold):
    """Runs `make_step()`'s (init, step) to the threshold twice: cold (compiles) and warm."""
    x, y, test_x, test_y = data
    runs = []
    init, step = make_step()
    for _ in range(2):
        run = Run(name)
        params = jax_parameters(seed)
        state = init(params, (jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])))
        for index, rows in enumerate(batch_order(len(y), batch_size, steps, seed)):
            batch = (jnp.asarray(x[rows]), jnp.asarray(y[rows]))
            start = time.perf_counter()
            params, state = step(params, state, batch, index)
            jax.block_until_ready(params)
            run.seconds.append(time.perf_counter() - start)
            run.losses.append(float(full_loss(params, x, y)))
            if run.losses[-1] <= threshold or not np.isfinite(run.losses[-1]):
                break
        run.test_accuracy = float(accuracy(params, test_x, test_y))
        runs.append(run)
    cold, warm = runs
    warm.compile = max(sum(cold.seconds) - sum(warm.seconds), 0.0)
    return warm


def optax_adam(learning_rate):
    optimizer = optax.adam(learning_rate)

    @jax.jit
    def step(params, state, batch):
        grads = jax.grad(batch_loss)(params, batch)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return lambda: (lambda params, batch: optimizer.init(params), lambda p, s, b, i: step(p, s, b))


def kfac(adaptive, seed):
    def make():
        common = dict(
            value_and_grad_func=jax.value_and_grad(batch_loss), l2_reg=0.0, multi_device=False,
            estimation_mode="fisher_gradients", curvature_ema=0.95, inverse_update_period=2,
            num_burnin_steps=0)
        if adaptive:
            optimizer = kfac_jax.Optimizer(
                use_adaptive_learning_rate=True, use_adaptive_momentum=True, use_adaptive_damping=True,
                initial_damping=1e-3, **common)
        else:
            optimizer = kfac_jax.Optimizer(
                learning_rate_schedule=lambda _: 0.3, momentum_schedule=lambda _: 0.9,
                damping_schedule=lambda _: 0.03, **common)
        key = [jax.random.PRNGKey(seed)]

        def init(params, batch):
            key[0] = jax.random.PRNGKey(seed)
            return optimizer.init(params, key[0], batch)

        def step(params, state, batch, index):
            key[0], sub = jax.random.split(key[0])
            params, state, _ = optimizer.step(params, state, sub, batch=batch, global_step_int=index)
            return params, state

        return init, step

    return make


PEERS = {
    "optax-adam": lambda seed: ("optax Adam, lr 0.03", optax_adam(0.03)),
    "kfac-jax": lambda seed: ("KFAC-JAX, adaptive (initial λ 1e-3)", kfac(True, seed)),
    "kfac-jax-fixed": lambda seed: ("KFAC-JAX, our fixed settings", kfac(False, seed)),
}


def finite(value):
    """JSON has no NaN or infinity: a diverged loss is written as null."""
    return value if value is None or np.isfinite(value) else None


def run_record(seed, key, source, run, step0, threshold):
    return {"seed": seed, "key": key, "source": source, "name": run.name, "step0_loss": step0,
            "steps_to_threshold": run.steps_to(threshold), "seconds_to_threshold": run.seconds_to(threshold),
            "ms_per_step": run.ms_per_step() if run.seconds else None, "compile_seconds": run.compile,
            "final_loss": finite(run.losses[-1]) if run.losses else None, "test_accuracy": run.test_accuracy,
            "losses": [finite(loss) for loss in run.losses], "step_seconds": run.seconds}


def ngrad_runs(binary, seed, steps, threshold, output):
    """Runs `ngrad train` once for `seed`; returns its step-0 loss and a Run per method."""
    command = [binary, "train", "--methods", ",".join(OUR_METHODS), "--seed", str(seed), "--steps", str(steps),
               "--threshold", str(threshold), "--output", output]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    runs, step0 = {}, None
    with open(os.path.join(output, "steps.csv")) as handle:
        rows = [row for row in csv.DictReader(handle) if row["best"] == "1"]
    for method, title in OUR_METHODS.items():
        records = [r for r in rows if r["method"] == method]
        run = Run(title)
        cumulative = [float(r["seconds"]) for r in records]
        run.seconds = [b - a for a, b in zip(cumulative, cumulative[1:])]
        run.losses = [float(r["train_loss"]) for r in records[1:]]
        runs[method] = run
        step0 = float(records[0]["train_loss"])
    with open(os.path.join(output, "summary.csv")) as handle:
        for row in csv.DictReader(handle):
            if row["method"] in runs:
                runs[row["method"]].test_accuracy = float(row["test_accuracy"])
    return step0, runs


def fmt(value, pattern):
    return "-" if value is None else pattern % value


def table(per_seed, threshold):
    names = list(per_seed[0].keys())
    lines = [f"| method | steps to loss ≤ {threshold:g} | seconds to it | ms per step | compile s |",
             "| --- | --- | --- | --- | --- |"]
    for name in names:
        runs = [seed_runs[name] for seed_runs in per_seed]
        steps = [r.steps_to(threshold) for r in runs]
        seconds = [r.seconds_to(threshold) for r in runs]
        compiles = [r.compile for r in runs if r.compile is not None]
        lines.append("| %s | %s | %s | %s | %s |" % (
            name, " / ".join(fmt(s, "%d") for s in steps), " / ".join(fmt(s, "%.2f") for s in seconds),
            " / ".join("%.1f" % r.ms_per_step() for r in runs),
            " / ".join("%.1f" % c for c in compiles) if compiles else "-"))
    return "\n".join(lines)


def medians(per_seed, threshold):
    lines = [f"| method | median steps to loss ≤ {threshold:g} | median seconds to it | median ms per step |"
             " median compile s |", "| --- | --- | --- | --- | --- |"]
    for name in per_seed[0]:
        runs = [seed_runs[name] for seed_runs in per_seed]
        steps = [r.steps_to(threshold) for r in runs]
        reached = [s for s in steps if s is not None]
        secs = [r.seconds_to(threshold) for r in runs if r.seconds_to(threshold) is not None]
        compiles = [r.compile for r in runs if r.compile is not None]
        lines.append("| %s | %s | %s | %.1f | %s |" % (
            name, "%g" % statistics.median(reached) if len(reached) == len(runs) else "%d of %d reached" % (
                len(reached), len(runs)), "%.2f" % statistics.median(secs) if secs else "-",
            statistics.median(r.ms_per_step() for r in runs), "%.1f" % statistics.median(compiles) if compiles else "-"))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threshold", type=float, default=1e-3)
    parser.add_argument("--ngrad", default=os.path.join(ROOT, ".build", "release", "ngrad"))
    parser.add_argument("--output", default=os.path.join(ROOT, "train-output", "peers"))
    parser.add_argument("--check-only", action="store_true", help="only check the step-0 loss against ngrad's")
    parser.add_argument("--peers-only", action="store_true", help="skip ngrad: run only the peers")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated, of " + ", ".join(PEERS))
    parser.add_argument("--json", metavar="PATH", help="write every run (losses and step seconds) as JSON")
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)}; known: {', '.join(PEERS)}")
    if args.peers_only and args.check_only:
        parser.error("--check-only compares against ngrad, which --peers-only skips")
    data_path = os.path.join(ROOT, "Data", "digits.csv.gz")
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed, records = [], []
    for seed in seeds:
        data = load_digits(data_path, seed)
        step0 = float(full_loss(jax_parameters(seed), data[0], data[1]))
        runs = {}
        if args.peers_only:
            print(f"seed {seed}: step-0 loss replica {step0:.8f} (ngrad skipped)", flush=True)
        else:
            output = os.path.join(args.output, f"seed{seed}")
            ours_step0, ours = ngrad_runs(args.ngrad, seed, args.steps, args.threshold, output)
            print(f"seed {seed}: step-0 loss ngrad {ours_step0:.8f}, replica {step0:.8f}, "
                  f"difference {abs(step0 - ours_step0):.1e}", flush=True)
            if abs(step0 - ours_step0) > 1e-6:
                sys.exit(f"seed {seed}: the replica's step-0 loss {step0} is not ngrad's {ours_step0}")
            if args.check_only:
                continue
            runs = dict(ours)
            records += [run_record(seed, key, "ngrad", run, ours_step0, args.threshold) for key, run in ours.items()]
        for key in peers:
            name, make_step = PEERS[key](seed)
            runs[key] = train(name, make_step, data, seed, args.batch_size, args.steps, args.threshold)
            records.append(run_record(seed, key, "peer", runs[key], step0, args.threshold))
        per_seed.append({run.name: run for run in runs.values()})
        print(table(per_seed[-1:], args.threshold), flush=True)
    if args.json:
        versions = {"jax": jax.__version__, "optax": optax.__version__,
                    "kfac_jax": getattr(kfac_jax, "__version__", None)}
        with open(args.json, "w") as handle:
            json.dump({"threshold": args.threshold, "batch_size": args.batch_size, "steps": args.steps,
                       "seeds": seeds, "versions": versions, "runs": records}, handle, indent=1)
    if per_seed:
        print(f"\nseeds {args.seeds}, per seed (a / b / c):\n")
        print(table(per_seed, args.threshold))
        print("\nmedians:\n")
        print(medians(per_seed, args.threshold))


if __name__ == "__main__":
    main()
