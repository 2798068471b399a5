"""`make help` lists every target of the Makefile, each with its one-line description."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
# A rule's first line: `name: prerequisites`, not `NAME := value` and not a pattern or file rule
# whose name is a variable ($(STAMP): ...) or a special target (.PHONY).
TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]*):(?!=)")


def targets() -> list[str]:
    return [m.group(1) for line in MAKEFILE.read_text().splitlines() if (m := TARGET.match(line))]


def test_make_help_lists_every_target_with_a_description() -> None:
    make = shutil.which("make")
    assert make is not None, "make is needed to build and run the project"
    listed = subprocess.run(
        [make, "-s", "--no-print-directory", "-f", str(MAKEFILE), "help"],
        cwd=MAKEFILE.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    described = {}
    for line in listed.splitlines():
        name, _, description = line.strip().partition(" ")
        described[name] = description.strip()

    expected = targets()
    assert {"run", "test", "demo", "help"} <= set(expected)
    assert sorted(described) == sorted(expected)
    assert all(described[name] for name in expected), described
    # Each target once: a second rule for a name would be a second description.
    assert len(expected) == len(set(expected))
