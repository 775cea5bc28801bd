"""devices(), kernels(), the docstrings, and the README's example (executed as written)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import naturalgradient as ng

README = Path(__file__).resolve().parents[1] / "README.md"


def test_devices_and_kernels(context):
    devices = ng.devices()
    assert devices and all("name" in d and "supportsFloat64" in d for d in devices)
    assert sum(d["isDefault"] for d in devices) == 1
    assert context.device["type"] == "CPU"
    rows = ng.kernels(context)
    names = {row["kernel"] for row in rows}
    assert "implicit_product_partial" in names and "cg_update" in names
    assert {row["element"] for row in rows} <= {"float", "double"}


def test_every_public_name_has_a_docstring():
    for name in ng.__all__:
        value = getattr(ng, name)
        assert inspect.getdoc(value), name
        if inspect.isclass(value):
            for member, attribute in vars(value).items():
                if not member.startswith("_") and callable(attribute):
                    assert inspect.getdoc(attribute), f"{name}.{member}"


def test_readme_example_runs():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})  # noqa: S102 - the README's own example
