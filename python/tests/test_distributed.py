"""naturalgradient.distributed under mpirun: K-FAC training over 2 and 3 ranks equals one
process, and a rank with bad input ends the job with its message instead of hanging.
Skipped, with the reason, where mpi4py or mpirun is missing (scripts/setup-python.sh
installs mpi4py's wheel; Open MPI comes from scripts/setup-debian.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("distributed_kfac.py")

if shutil.which("mpirun") is None:  # pragma: no cover - depends on the machine
    pytest.skip("mpirun is not on PATH (apt-get install openmpi-bin)", allow_module_level=True)
# In a child process: importing mpi4py.MPI here would initialise MPI inside pytest, whose
# environment the mpirun below would then inherit.
_probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True, text=True)
if _probe.returncode != 0:  # pragma: no cover
    _reason = (_probe.stderr.strip().splitlines() or ["?"])[-1]
    pytest.skip(f"mpi4py is not usable ({_reason}); pip install mpi4py", allow_module_level=True)


def _run(ranks: int | None, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``mpirun -np ranks python distributed_kfac.py arguments`` (or python alone), killed
    and failed past ``timeout`` seconds: a hang fails the test."""
    command = [sys.executable, str(SCRIPT), *arguments]
    if ranks is not None:
        flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
        for name in ("PYTHONPATH", "NATURALGRADIENT_LIBRARY", "POCL_MAX_PTHREAD_COUNT", "NGRAD_DEVICE"):
            if name in os.environ:
                flags += ["-x", name]
        command = ["mpirun", *flags, "-np", str(ranks), *command]
    environment = {**os.environ, "POCL_MAX_PTHREAD_COUNT": os.environ.get("POCL_MAX_PTHREAD_COUNT", "1")}
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} ran past {timeout} s (a hang)")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("one") / "run.npz"
    run = _run(None, str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    return dict(np.load(path))


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_match_one_process(ranks: int, one_process: dict, tmp_path: Path) -> None:
    # float64: every rank's optimizer gets the global batch's K-FAC statistics in the same
    # row order (bitwise one process's), and the gradient differs from one process's
    # full-batch mean only by float64 rounding (per-rank means added in rank order).
    path = tmp_path / "run.npz"
    run = _run(ranks, str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    result = np.load(path)
    assert int(result["ranks"]) == ranks
    reference = one_process["losses"]
    assert reference[-1] < 0.8 * reference[0], f"the reference did not train: {reference}"
    np.testing.assert_allclose(result["losses"], reference, rtol=1e-12, atol=0)
    np.testing.assert_allclose(result["theta"], one_process["theta"], rtol=1e-12, atol=1e-14)


def test_a_rank_with_bad_input_ends_the_job(tmp_path: Path) -> None:
    run = _run(2, str(tmp_path / "run.npz"), "--fail-on-rank", "1", timeout=120)
    assert run.returncode != 0
    assert "rank 1 of 2: gradient: 32 non-finite values on rank 1" in run.stderr, run.stderr
    assert not (tmp_path / "run.npz").exists()
