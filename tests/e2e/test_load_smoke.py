"""`make load` in miniature: a 5-second mixed run of 2 users against a platform of its own (its own
DynamoDB Local, moto and gateway, in a subprocess), with no errors and every invariant holding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("load")


def test_a_short_mixed_load_has_no_errors_and_keeps_every_invariant(tmp_path: Path) -> None:
    report_file = tmp_path / "load.json"
    command = [sys.executable, "-m", "tools.load", "--seconds", "5", "--users", "2"]
    command += ["--members", "20", "--json", str(report_file), "--log", str(tmp_path / "functions.log")]
    # From the repository's root: `tools` is a top-level package there, not an installed one.
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, cwd=ROOT)

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads(report_file.read_text())
    assert report["passed"] and report["errors"] == 0
    names = {row["name"] for row in report["stats"]["endpoints"]}
    assert {
        "GET /v1/customers/{id}",
        "GET /v1/customers?link_type=card",
        "POST /v1/cart/evaluate",
        "POST /v1/transactions",
    } <= names
    assert all(not check["broken"] and check["checked"] > 0 for check in report["invariants"]), report
    assert "PASS" in done.stdout
