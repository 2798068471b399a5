"""Where the app's inputs live on disk and the deployment settings read from CDK context.

Paths are resolved from this file, never from the working directory: `make synth` runs from
infra/, `cdk synth` and the tests from the repository root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
SHARED_LAYER_DIR = REPO_ROOT / "layers" / "shared"
DEPS_LAYER_DIR = REPO_ROOT / "build" / "deps-layer"

# Never shipped in a code asset: byte-code caches would change the asset hash on every local run.
ASSET_EXCLUDES = ("**/__pycache__", "**/*.pyc", ".stamp", "requirements.txt")

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")


@dataclass(frozen=True)
class DeploySettings:
    """What may differ between deployments; everything else is fixed in the constructs."""

    stage: str = "dev"
    tracing: bool = False  # X-Ray on the functions and the API stage (cold-start cost, see design.md)
    table_cmk: bool = False  # encrypt the table with a customer-managed KMS key instead of aws/dynamodb
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    # Stage-wide defaults for every method, and the usage plan's limits.
    throttle_rate: int = 100
    throttle_burst: int = 200
    quota_per_day: int = 1_000_000

    def __post_init__(self) -> None:
        if not _STAGE.match(self.stage):
            raise ValueError(f"stage {self.stage!r} must match {_STAGE.pattern}")

    @classmethod
    def from_context(cls, node: Node) -> DeploySettings:
        """Read `-c stage=prod -c tracing=true -c tableCmk=true` (or cdk.json's context)."""
        return cls(
            stage=str(node.try_get_context("stage") or cls.stage),
            tracing=_flag(node.try_get_context("tracing")),
            table_cmk=_flag(node.try_get_context("tableCmk")),
        )


def _flag(value: Any) -> bool:
    """Context from cdk.json arrives as JSON, from `-c` as a string."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean context value, got {value!r}")
