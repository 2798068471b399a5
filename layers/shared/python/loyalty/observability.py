"""One logger, one metrics object; the tracer only when tracing is switched on.

powertools' Tracer imports the X-Ray SDK (about 400 ms here), so it stays off the cold path
unless TRACING_ENABLED=true.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# Most requests record no business metric; an empty flush is normal, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "loyalty"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Loyalty"))


def tracer() -> Any | None:
    if os.environ.get("TRACING_ENABLED", "false").lower() != "true":
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()


def count(name: str, value: int = 1) -> None:
    """A business metric (embedded metric format, flushed at the end of the invocation)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
