"""Build step of `pip install ./python`: puts libNaturalGradientC inside the package.

The library comes from, in order: $NATURALGRADIENT_LIBRARY (a built libNaturalGradientC.so,
copied as is), or `swift build -c release --product NaturalGradientC` run in the Swift
package this directory belongs to (found as the parent directory holding Package.swift).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
NAME = "libNaturalGradientC.dylib" if sys.platform == "darwin" else "libNaturalGradientC.so"


def built_library() -> Path:
    """The shared library to bundle, building it when no override is given."""
    override = os.environ.get("NATURALGRADIENT_LIBRARY")
    if override:
        path = Path(override)
        if not path.is_file():
            raise SystemExit(f"NATURALGRADIENT_LIBRARY={override} is not a file")
        return path
    root = HERE.parent
    if not (root / "Package.swift").is_file():
        raise SystemExit(
            f"cannot find the Swift package above {HERE} (no Package.swift in {root}); build "
            "libNaturalGradientC with `swift build -c release --product NaturalGradientC` and set "
            "NATURALGRADIENT_LIBRARY to it"
        )
    command = ["swift", "build", "-c", "release", "--product", "NaturalGradientC"]
    print("naturalgradient: " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, cwd=root, check=True)
    bin_path = subprocess.run(
        ["swift", "build", "-c", "release", "--show-bin-path"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(bin_path) / NAME


class BuildWithLibrary(build_py):
    """build_py that also copies the native library into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "naturalgradient" / NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built_library(), target)


class BinaryDistribution(Distribution):
    """The wheel holds a native library, so it is platform-specific."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
