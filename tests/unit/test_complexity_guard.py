"""The size and complexity ceilings in pyproject.toml hold: a function past them fails `make test`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lint(source: str, tmp_path: Path) -> str:
    module = tmp_path / "grown.py"
    module.write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(REPO / "pyproject.toml"), str(module)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def test_a_function_that_grew_past_the_ceilings_is_refused(tmp_path: Path) -> None:
    branches = "\n".join(f"    if x == {i}:\n        y += {i}" for i in range(16))
    source = f"def grown(x: int) -> int:\n    y = 0\n{branches}\n    return y\n"
    found = lint(source, tmp_path)
    assert "C901" in found and "PLR0912" in found


def test_a_small_function_passes(tmp_path: Path) -> None:
    assert "C901" not in lint("def small(x: int) -> int:\n    return x + 1\n", tmp_path)
