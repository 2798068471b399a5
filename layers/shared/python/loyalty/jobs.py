"""Entry points of the functions that no HTTP route reaches (scheduled jobs, stream consumers)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from loyalty.bootstrap import container
from loyalty.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def points_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = container().sweeper.run()
    metrics.add_metric(name="PointsExpired", unit=MetricUnit.Count, value=report.expired_points)
    logger.info("points sweep done", extra=asdict(report))
    return asdict(report)
