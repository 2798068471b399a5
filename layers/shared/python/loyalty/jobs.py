"""Entry points of the functions that no HTTP route reaches (scheduled jobs, stream consumers)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from loyalty.bootstrap import container
from loyalty.domain.events import CORRELATION_ID
from loyalty.observability import logger, metrics

if TYPE_CHECKING:
    from loyalty.services.gamification import Definitions


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def points_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = container().sweeper.run()
    lapsed = container().customers.lapse_confirmations()
    if lapsed:
        logger.info("unconfirmed enrolments lapsed", extra={"lapsed": lapsed})
    metrics.add_metric(name="PointsExpired", unit=MetricUnit.Count, value=report.expired_points)
    logger.info("points sweep done", extra=asdict(report))
    return asdict(report)


_stream_processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _publish(record: DynamoDBRecord) -> None:
    logger.append_keys(stream_sequence=record.dynamodb.sequence_number if record.dynamodb else None)
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


_mail_processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _mail(record: DynamoDBRecord) -> None:
    from loyalty.services.mailer import message_id_of  # only the mailer loads the mail code

    message_id = message_id_of(record.raw_event)
    if message_id is not None:
        outcome = container().mailer.send(message_id)
        # Ids and outcomes only: a message's body holds an e-card's PIN and never reaches a log.
        logger.info("message handled", extra={"message_id": message_id, "outcome": outcome})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def send_messages(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Two triggers, one job: stream records of new MESSAGE items (sent within seconds), and the
    schedule, which sends whatever is due again (failed attempts, lapsed claims)."""
    if "Records" in event:
        response = process_partial_response(
            event=event, record_handler=_mail, processor=_mail_processor, context=context
        )
        return dict(response)
    report = container().mailer.send_due()
    metrics.add_metric(name="MessagesSent", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(
        name="MessageAttemptsFailed", unit=MetricUnit.Count, value=report.retrying + report.given_up
    )
    logger.info("due messages sent", extra=asdict(report))
    return asdict(report)


# After a failure it returns the rest of that message group: merges of one group keep their order.
_queue_processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def _merge(record: SQSRecord) -> None:
    body = json.loads(record.body)
    merge_id = str(body["merge_id"])  # a message without one is poison: to the dead-letter queue
    # The request that asked for the merge: its id follows into these logs and the merge's events.
    correlation_id = body.get("correlation_id") or record.message_id
    logger.set_correlation_id(correlation_id)
    CORRELATION_ID.set(correlation_id)
    done = container().merge_worker.process(merge_id)
    logger.info("merge processed", extra={"merge_id": merge_id, "status": done.status.value})
    if done.status.value == "failed":
        metrics.add_metric(name="MergesFailed", unit=MetricUnit.Count, value=1)
    elif done.status.value in ("done", "undone"):
        metrics.add_metric(
            name="MergesDone" if done.status.value == "done" else "MergesUndone",
            unit=MetricUnit.Count,
            value=1,
        )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def run_merges(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Merge requests in, merges done. A merge that cannot run now (a profile locked by another
    merge, a throttled table) is reported as a batch item failure and comes back after the
    visibility timeout; after five deliveries it waits in the dead-letter queue. On a FIFO queue
    the batch stops at the first failure, so later merges of the same group keep their order.

    Invoked by the schedule instead (no Records), it is the janitor: merges still open after five
    minutes get their message sent again (a send that failed, a message in the dead-letter queue)."""
    if "Records" not in event:
        resent = container().merge_requests.requeue_stale()
        logger.info("stale merges re-sent", extra={"resent": resent})
        return {"resent": resent}
    response = process_partial_response(
        event=event, record_handler=_merge, processor=_queue_processor, context=context
    )
    return dict(response)


# A standard queue: order does not matter (every effect is keyed and conditional), so a failed
# message holds up nothing else and comes back alone.
_activity_processor = BatchProcessor(event_type=EventType.SQS)


def _activity(record: SQSRecord, definitions: Definitions) -> None:
    envelope = json.loads(record.body)  # an EventBridge event, as the bus rule delivers it
    correlation_id = (envelope.get("detail") or {}).get("correlation_id") or record.message_id
    logger.set_correlation_id(correlation_id)
    done = container().activity_worker.handle(str(envelope["detail-type"]), envelope["detail"], definitions)
    if done.completed:
        metrics.add_metric(name="ChallengesCompleted", unit=MetricUnit.Count, value=len(done.completed))
    if done.badges:
        metrics.add_metric(name="BadgesEarned", unit=MetricUnit.Count, value=len(done.badges))
    logger.info(
        "activity applied",
        extra={"outcome": done.outcome, "completed": list(done.completed), "badges": list(done.badges)},
    )


_trigger_processor = BatchProcessor(event_type=EventType.SQS)
_feedback_processor = BatchProcessor(event_type=EventType.SQS)


def _feedback(record: SQSRecord) -> None:
    from loyalty.services.email_feedback import ses_event

    done = container().email_feedback.handle(ses_event(record.body))
    if done.outcome == "suppressed":
        metrics.add_metric(name="EmailSuppressed", unit=MetricUnit.Count, value=1)
    # Outcome and count only: the addresses are personal data.
    logger.info("email feedback", extra={"outcome": done.outcome, "recipients": len(done.addresses)})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def apply_email_feedback(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SES bounces and complaints (through the configuration set's SNS topic and its queue): a
    permanent bounce or a complaint turns the owner's email consent off."""
    response = process_partial_response(
        event=event, record_handler=_feedback, processor=_feedback_processor, context=context
    )
    return dict(response)


def _trigger(record: SQSRecord) -> None:
    envelope = json.loads(record.body)  # an EventBridge event, as the bus rule delivers it
    logger.set_correlation_id((envelope.get("detail") or {}).get("correlation_id") or record.message_id)
    done = container().message_triggers.handle(str(envelope["detail-type"]), envelope["detail"])
    if done.outcome == "queued":
        metrics.add_metric(name="MessagesQueued", unit=MetricUnit.Count, value=1)
    logger.info("message trigger", extra={"outcome": done.outcome, "message_id": done.message_id})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def queue_triggered_messages(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Enrolments and sales' earns from the bus, turned into welcome and earn-confirmation messages
    (each once: the message's key is its cause). The mailer sends them from the table's stream."""
    response = process_partial_response(
        event=event, record_handler=_trigger, processor=_trigger_processor, context=context
    )
    return dict(response)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def apply_activity(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Customer events and transactions from the bus, applied to challenges, punch cards and
    badges. The challenges and badges are read once per batch; a message that fails (a record
    that kept changing, a throttled table) is a batch item failure and comes back after the
    visibility timeout, to the dead-letter queue after five deliveries."""
    definitions = container().gamification.definitions()
    response = process_partial_response(
        event=event,
        record_handler=lambda record: _activity(record, definitions),
        processor=_activity_processor,
        context=context,
    )
    return dict(response)


# Standard queue: an evaluation reads the customer as they are now, so order and duplicates do not
# matter; a failed message comes back alone.
_segment_processor = BatchProcessor(event_type=EventType.SQS)


def _segments(record: SQSRecord) -> None:
    message = json.loads(record.body)  # a bus event, or a background job (services/segment_jobs.py)
    correlation_id = (message.get("detail") or {}).get("correlation_id") or record.message_id
    logger.set_correlation_id(correlation_id)
    done = container().segment_worker.handle(message)
    entered = sum(len(c.entered) for c in done.changes)
    exited = sum(len(c.exited) for c in done.changes)
    if entered:
        metrics.add_metric(name="SegmentsEntered", unit=MetricUnit.Count, value=entered)
    if exited:
        metrics.add_metric(name="SegmentsExited", unit=MetricUnit.Count, value=exited)
    # Ids and counts only: which segments a person is in is personal data.
    logger.info(
        "segments message handled",
        extra={"kind": done.kind, "customers": len(done.changes), "entered": entered, "exited": exited},
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def keep_segments(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Two triggers, one job. From the segments queue: the customers a change names, evaluated from
    scratch (a failed message is a batch item failure, back after the visibility timeout, to the
    dead-letter queue after five deliveries). From the schedule (every minute): the clock sweep,
    evaluating every customer whose rules' answers fall due with the passage of time."""
    if "Records" in event:
        response = process_partial_response(
            event=event, record_handler=_segments, processor=_segment_processor, context=context
        )
        return dict(response)
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 60.0
    passes = container().segment_passes.resume_stalled()  # background passes that lost a message
    if any(passes.values()):
        logger.warning("segment passes resumed or failed", extra=passes)
    report = container().segment_membership.sweep(budget_s=max(1.0, remaining - 10.0))
    metrics.add_metric(name="SegmentSweepEvaluated", unit=MetricUnit.Count, value=report.evaluated)
    # Every minute on AWS (10 s locally): an idle sweep is a metric, not a log line.
    if report.evaluated or report.queued:
        logger.info("segment sweep done", extra=asdict(report))
    return asdict(report)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def attribute_identified(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every 5 minutes: identified visitors whose second pass is due get the rest of their
    anonymous events moved onto their customer (services/attribution.py)."""
    report = container().attribution.run_due()
    metrics.add_metric(name="EventsAttributed", unit=MetricUnit.Count, value=report.moved)
    logger.info("identifications attributed", extra=asdict(report))
    return asdict(report)


def _stream_change(raw: dict[str, Any]) -> Any:
    from loyalty.services.lake import StreamChange

    record = DynamoDBRecord(raw)
    ddb = record.dynamodb
    assert ddb is not None
    identity = raw.get("userIdentity") or {}
    created = raw["dynamodb"].get("ApproximateCreationDateTime")
    return StreamChange(
        event_name=str(raw.get("eventName")),
        keys=ddb.keys or {},
        new_image=ddb.new_image or None,
        old_image=ddb.old_image or None,
        sequence_number=str(raw["dynamodb"]["SequenceNumber"]),  # the order of changes: required
        approximate_creation=_creation_time(created),
        # DynamoDB's TTL service removes expired items as this principal (the Streams docs).
        ttl_deletion=identity.get("type") == "Service"
        and identity.get("principalId") == "dynamodb.amazonaws.com",
    )


def _creation_time(value: Any) -> Any:
    """Epoch seconds on Lambda; the local poller passes boto3's parsed datetime through."""
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC) if value else datetime.now(UTC)


def _lake_poison(sequence_number: str, exc: Exception) -> None:
    # The sequence number and the error type only: an image may hold what logs must not.
    logger.error(
        "lake record skipped", extra={"stream_sequence": sequence_number, "error": type(exc).__name__}
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def write_lake(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Stream records in, Parquet files out: the whole batch at once (one file per kind and day).

    A record that cannot be read is skipped and counted (LakeRecordsSkipped), never retried: its
    failure is deterministic and would hold back its shard. A file that cannot be stored fails the
    invocation, so the batch is retried; its files are named by its sequence numbers, so a retry
    overwrites them and duplicates nothing."""
    changes = []
    skipped = 0
    for raw in event.get("Records", []):
        try:
            changes.append(_stream_change(raw))
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            skipped += 1
            _lake_poison(str((raw.get("dynamodb") or {}).get("SequenceNumber")), exc)
    batch = container().lake_writer.write(changes)
    skipped += len(batch.poisoned)
    metrics.add_metric(name="LakeRowsWritten", unit=MetricUnit.Count, value=batch.row_count)
    if skipped:
        metrics.add_metric(name="LakeRecordsSkipped", unit=MetricUnit.Count, value=skipped)
    return {"rows": batch.row_count, "skipped": skipped, "ignored": batch.ignored}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def score_customers(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Daily: RFM quintiles from the lake onto the profiles whose scores changed
    (services/customer_scores.py)."""
    report = container().customer_scores.run()
    metrics.add_metric(name="CustomerScoresWritten", unit=MetricUnit.Count, value=report.written)
    logger.info("customer scores computed", extra=asdict(report))
    return asdict(report)


_erasure_processor = BatchProcessor(event_type=EventType.SQS)


def _erase_from_lake(record: SQSRecord) -> None:
    envelope = json.loads(record.body)  # CustomerErased, as the bus rule delivers it
    detail = envelope["detail"]
    logger.set_correlation_id(detail.get("correlation_id") or record.message_id)
    # The erased profile and every profile merged into it: one event names them all.
    ids = [str(detail["customer_id"]), *(str(i) for i in detail.get("merged_ids") or ())]
    done = container().lake_compactor.erase(ids)
    metrics.add_metric(name="LakeFilesScrubbed", unit=MetricUnit.Count, value=done.files_rewritten)
    # Counts only: the ids are pseudonymous, but an erasure log needs none of them.
    logger.info("erased from the lake", extra=asdict(done))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def compact_lake(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Hourly (the schedule): closed days of the lake as one file per kind and day, and a new
    snapshot generation of every kind's current state (loyalty.services.compaction).

    Fed by the erasure queue instead (Records): each CustomerErased rewrites every file of the
    personal kinds that holds rows of the erased customers without them; a failure comes back
    after the visibility timeout, to the dead-letter queue after five deliveries."""
    if "Records" in event:
        response = process_partial_response(
            event=event, record_handler=_erase_from_lake, processor=_erasure_processor, context=context
        )
        return dict(response)
    report = container().lake_compactor.compact()
    metrics.add_metric(name="LakeRowsCompacted", unit=MetricUnit.Count, value=report.rows_read)
    logger.info("lake compacted", extra={k: v for k, v in asdict(report).items() if k != "newest"})
    return {
        "outcome": report.outcome,
        "generation": report.generation,
        "closed_through": report.closed_through,
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def act_on_campaign_trigger(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One bus event (EventBridge invokes the function asynchronously, one event at a time), acted
    on for every active triggered campaign it starts (loyalty.services.campaign_triggers). A
    failure raises: Lambda retries the event twice, then sends it to the trigger's dead-letter
    queue; whatever an earlier attempt wrote is keyed by (campaign, occasion, customer)."""
    logger.set_correlation_id((event.get("detail") or {}).get("correlation_id") or event.get("id"))
    done = container().campaign_triggers.handle(event)
    outcomes: dict[str, int] = {}
    for triggered in done:
        result = triggered.result
        outcome = "no_occasion" if result is None else result.outcome if result.first_time else "repeated"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if outcomes.get("actioned"):
        metrics.add_metric(name="CampaignTriggersActioned", unit=MetricUnit.Count, value=outcomes["actioned"])
    # Ids and outcomes only: who was actioned by which campaign is in the receipts, not the logs.
    logger.info(
        "campaign trigger handled",
        extra={"detail_type": event.get("detail-type"), "campaigns": len(done), "outcomes": outcomes},
    )
    return {"campaigns": len(done), "outcomes": outcomes}
