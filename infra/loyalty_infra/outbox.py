"""The outbox relay: the table's stream feeds every JobDef with `consumes_stream` (the publisher,
and the mailer for new messages; each job's `stream_records` picks its filter from FILTERS).

Writes carry their domain events in an `outbox` attribute on the changed item; the publisher reads
the stream and puts those events on the bus. The event source mapping:

- starts at TRIM_HORIZON, so nothing written before the mapping existed is skipped;
- takes batches of 100, one batch per shard at a time (parallelization factor 1), so events of
  one item are published in the order they were written;
- lets the function report the first failed record (ReportBatchItemFailures, which the powertools
  BatchProcessor returns) and bisects a batch on a function error, so one bad record holds back
  only itself;
- retries a record 10 times and for at most 6 hours, then sends a pointer to the failed batch
  (shard and sequence numbers, not the records) to an on-failure queue. 6 hours rather than the
  stream's 24-hour retention, so the records behind a pointer can still be read back for ~18 h;
- invokes the function only for records whose new image holds at least one outbox entry (see
  OUTBOX_FILTER). Records without events - most writes, TTL deletions, removals - never invoke
  it, which also keeps the publisher's error rate about the bus and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from loyalty.resources import JOBS, JobDef, construct_name
from loyalty.services.lake import KEY_PREFIXES
from loyalty_infra.data import DataTable
from loyalty_infra.queues import dead_letter_queue
from loyalty_infra.waivers import LIST_STREAMS_NEEDS_ANY_RESOURCE, waive

OUTBOX_ATTRIBUTE = "outbox"
BATCH_SIZE = 100
RETRY_ATTEMPTS = 10
MAX_RECORD_AGE = Duration.hours(6)
PARALLELIZATION_FACTOR = 1

# Lambda event filtering uses EventBridge's pattern rules: `exists` matches only leaf values, and
# arrays in the record are "crushed" so that a pattern on the fields of their objects matches
# when any element has them. An outbox is a list of maps ({"L": [{"M": {"id": {"S": ...}, ...}}]}),
# so the pattern names a leaf inside the entries: it matches when at least one entry has an id.
# `{"outbox": {"L": [{"exists": true}]}}` would not: the list's elements are objects, not leaves.
# An empty outbox is written as NULL ({"NULL": true}) or an empty list; neither matches.
# REMOVE records have no NewImage; the eventName clause says so explicitly.
OUTBOX_FILTER: Mapping[str, Any] = {
    "eventName": ["INSERT", "MODIFY"],
    "dynamodb": {"NewImage": {OUTBOX_ATTRIBUTE: {"L": {"M": {"id": {"S": [{"exists": True}]}}}}}},
}
# The mailer: only a new MESSAGE item (an email to send). Its own writes (claim, sent, a failed
# attempt) are MODIFY records and never invoke it again; the schedule retries what failed.
MESSAGE_FILTER: Mapping[str, Any] = {
    "eventName": ["INSERT"],
    "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "MESSAGE#"}]}}},
}
# The lake writer: every insert, modify, removal and TTL deletion of the records whose keys start as
# a business record's do (loyalty.services.lake.KEY_PREFIXES); the writer itself picks the kinds
# within them (a customer's profile, not the timeline or tier items beside it) and their columns.
LAKE_FILTER: Mapping[str, Any] = {
    "dynamodb": {"Keys": {"pk": {"S": [{"prefix": prefix} for prefix in KEY_PREFIXES]}}},
}
FILTERS: Mapping[str, Mapping[str, Any]] = {
    "outbox": OUTBOX_FILTER,
    "messages": MESSAGE_FILTER,
    "lake": LAKE_FILTER,
}


class OutboxStream(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: DataTable,
        jobs: Mapping[str, lambda_.Function],
        definitions: Sequence[JobDef] = JOBS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.failure_queues: dict[str, sqs.Queue] = {}
        for job in definitions:
            if not job.consumes_stream:
                continue
            if job.name not in jobs:
                raise ValueError(f"job {job.name!r} consumes the stream but has no function")
            if job.stream_records not in FILTERS:
                raise ValueError(f"job {job.name!r}: no stream filter named {job.stream_records!r}")
            self._subscribe(job, jobs[job.name], data)

    def _subscribe(self, job: JobDef, function: lambda_.Function, data: DataTable) -> None:
        failures = dead_letter_queue(
            self,
            f"{construct_name(job.name)}Failures",
            holds=f"pointers to stream batches the {job.name} could not process after its retries",
        )
        # Grants the function stream read (and kms:Decrypt with a customer-managed table key) and
        # sqs:SendMessage on the failure queue.
        function.add_event_source(
            sources.DynamoEventSource(
                data.table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=BATCH_SIZE,
                bisect_batch_on_error=True,
                report_batch_item_failures=True,
                retry_attempts=RETRY_ATTEMPTS,
                max_record_age=MAX_RECORD_AGE,
                parallelization_factor=PARALLELIZATION_FACTOR,
                on_failure=sources.SqsDlq(failures),
                filters=[lambda_.FilterCriteria.filter(dict(FILTERS[job.stream_records]))],
            )
        )
        assert function.role is not None
        waive(function.role.node.find_child("DefaultPolicy"), LIST_STREAMS_NEEDS_ANY_RESOURCE)
        self.failure_queues[job.name] = failures
