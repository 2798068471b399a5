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
# What the CDK CLI puts into the context of every `cdk synth` / `cdk deploy` unless told otherwise
# (construct paths and asset metadata on resources, the AWS::CDK::Metadata resource; they also move
# the API deployment's logical id). app.py starts from these, so `python app.py` (`make synth`)
# writes the very template `cdk deploy` deploys; the CLI's own values take precedence when it runs.
CLI_CONTEXT_DEFAULTS: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
}
_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
# A placeholder that synthesises; deploy with `-c senderEmail=...` naming an identity verified in SES.
DEFAULT_SENDER_EMAIL = "no-reply@example.com"


@dataclass(frozen=True)
class DeploySettings:
    """What may differ between deployments; everything else is fixed in the constructs."""

    stage: str = "dev"
    tracing: bool = False  # X-Ray on the functions and the API stage (cold-start cost, see design.md)
    table_cmk: bool = False  # encrypt the table with a customer-managed KMS key instead of aws/dynamodb
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    # The address e-card emails come from (the mailer may send from it and nothing else).
    sender_email: str = DEFAULT_SENDER_EMAIL
    # Stage-wide defaults for every method, and the usage plan's limits.
    throttle_rate: int = 100
    throttle_burst: int = 200
    quota_per_day: int = 1_000_000
    # Methods with a key require the usage plan's API key, which the authorizer names by key id
    # (usageIdentifierKey): per-key throttle and quota. Only with every key id registered in the plan.
    usage_plan_keys: bool = False
    waf: bool = False  # a WAF web ACL on the stage: AWS managed rule groups and a per-IP rate limit
    waf_rate_limit: int = 10_000  # requests per client IP in any 5 minutes before WAF blocks it
    alarm_email: str | None = None  # subscribed to the alarm topic (confirm the email AWS sends)
    # Where the API answers for customers (its custom domain): unsubscribe links in messages point there.
    public_base_url: str = "https://loyalty.invalid"

    def __post_init__(self) -> None:
        if not _STAGE.match(self.stage):
            raise ValueError(f"stage {self.stage!r} must match {_STAGE.pattern}")
        if self.alarm_email is not None and not _EMAIL.match(self.alarm_email):
            raise ValueError(f"alarmEmail {self.alarm_email!r} is not an email address")
        if not 10 <= self.waf_rate_limit <= 2_000_000_000:
            raise ValueError(f"wafRateLimit {self.waf_rate_limit} must be between 10 and 2,000,000,000")
        if not _EMAIL.match(self.sender_email):
            raise ValueError(f"senderEmail {self.sender_email!r} is not an email address")
        if not self.public_base_url.startswith("https://") or self.public_base_url.endswith("/"):
            raise ValueError(f"publicBaseUrl {self.public_base_url!r} must be https:// without a trailing /")

    @property
    def sender_domain(self) -> str:
        return self.sender_email.rsplit("@", 1)[1]

    @classmethod
    def from_context(cls, node: Node) -> DeploySettings:
        """Read `-c stage=prod -c tracing=true -c tableCmk=true -c senderEmail=gifts@brand.example`
        (or cdk.json's context)."""
        return cls(
            stage=str(node.try_get_context("stage") or cls.stage),
            tracing=_flag(node.try_get_context("tracing")),
            table_cmk=_flag(node.try_get_context("tableCmk")),
            sender_email=str(node.try_get_context("senderEmail") or cls.sender_email),
            usage_plan_keys=_flag(node.try_get_context("usagePlanKeys")),
            waf=_flag(node.try_get_context("waf")),
            waf_rate_limit=int(node.try_get_context("wafRateLimit") or cls.waf_rate_limit),
            alarm_email=str(node.try_get_context("alarmEmail") or "").strip() or None,
            public_base_url=str(node.try_get_context("publicBaseUrl") or cls.public_base_url),
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
