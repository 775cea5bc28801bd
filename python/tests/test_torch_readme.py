"""The torch examples of README.md and python/README.md run as written (a torch user's
first contact), and their training loop lowers the loss."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (scripts/setup-python.sh installs it; pip install './python[torch]')")

ROOT = Path(__file__).resolve().parents[2]


def torch_examples(path: Path) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    return [block for block in blocks if "naturalgradient.torch" in block]


@pytest.mark.parametrize("readme", ["README.md", "python/README.md"])
def test_readme_torch_example_runs_and_trains(readme, capsys):
    examples = torch_examples(ROOT / readme)
    assert len(examples) == 1, f"{readme}: expected one torch example, found {len(examples)}"
    namespace: dict = {}
    exec(compile(examples[0], f"{readme} (torch example)", "exec"), namespace)  # noqa: S102
    model, x, y = namespace["model"], namespace["x"], namespace["y"]
    with torch.no_grad():
        final = float(torch.nn.functional.cross_entropy(model(x), y))
    assert final < 0.6  # from ln 2 = 0.69 at the start; the labels are random, so K-FAC memorises
    assert "loss" in capsys.readouterr().out
