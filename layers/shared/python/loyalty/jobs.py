"""Entry points of the functions that no HTTP route reaches (scheduled jobs, stream consumers)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from loyalty.bootstrap import container
from loyalty.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def points_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = container().sweeper.run()
    metrics.add_metric(name="PointsExpired", unit=MetricUnit.Count, value=report.expired_points)
    logger.info("points sweep done", extra=asdict(report))
    return asdict(report)


_stream_processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _publish(record: DynamoDBRecord) -> None:
    published = container().outbox.publish_record(record.raw_event)
    if published:
        metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=published)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def publish_events(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Stream records in, events out. A record whose events the bus refused is reported as a
    batch item failure, so Lambda retries from it (and later records) instead of losing it."""
    response = process_partial_response(
        event=event, record_handler=_publish, processor=_stream_processor, context=context
    )
    return dict(response)
