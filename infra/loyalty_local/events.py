"""The events AWS hands the functions, built from the canonical samples in the top-level `events/`.

Each sample is one real-shaped event (what API Gateway, the table's stream, SQS, Scheduler and
EventBridge send); the builders here load one and fill in the fields of the call at hand, so the
local gateway, the pollers, the benches and the tests all send the same shape, and a field AWS adds
is added in one place. `make invoke FN=<function> EVENT=events/<file>.json` sends a sample as is.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from loyalty_local.emulators import REPO

EVENTS_DIR = REPO / "events"
API_GATEWAY = "api-gateway-rest"  # a REST proxy event, with the authorizer's context
TABLE_STREAM = "table-stream-insert"  # a stream batch: one INSERT whose new image carries an outbox
SQS_MERGE = "sqs-merge"  # a FIFO merge-queue batch
SCHEDULER = "scheduler"  # what each job's schedule sends (loyalty_infra.schedules)
DOMAIN_EVENT = "eventbridge-domain-event"  # a domain event as the bus delivers it to a consumer
# What the lake writer reads: inserts, modifies, removals, a TTL deletion, records the lake leaves
# out (a key hash, a link) and a poison record, in one stream batch.
TABLE_STREAM_LAKE = "table-stream-lake"


@cache
def _read(name: str) -> str:
    return (EVENTS_DIR / f"{name}.json").read_text()


def sample(name: str) -> dict[str, Any]:
    """A fresh copy of a sample (by file name without `.json`), the caller's to fill in."""
    loaded: dict[str, Any] = json.loads(_read(name))
    return loaded


def load_file(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def api_gateway_event(
    method: str,
    resource: str,
    path: str,
    *,
    headers: Mapping[str, list[str]] | None = None,
    query: Mapping[str, list[str]] | None = None,
    path_params: Mapping[str, str] | None = None,
    body: str | None = None,
    base64_encoded: bool = False,
    source_ip: str = "127.0.0.1",
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The REST proxy event for one request; without `authorizer`, the event before the authorizer
    ran (a public route's, or the one the gateway hands the authorizer)."""
    event = sample(API_GATEWAY)
    multi_headers = {k: list(v) for k, v in (headers or {}).items()}
    multi_query = {k: list(v) for k, v in (query or {}).items()}
    context = event["requestContext"]
    context.pop("authorizer")
    context.update(
        resourcePath=resource,
        httpMethod=method,
        path=f"/{context['stage']}{path}",
        requestId=str(uuid.uuid4()),
        requestTimeEpoch=int(time.time() * 1000),
    )
    context["identity"] = {"sourceIp": source_ip, "userAgent": multi_headers.get("User-Agent", [""])[-1]}
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    event.update(
        resource=resource,
        path=path,
        httpMethod=method,
        headers={k: v[-1] for k, v in multi_headers.items()},
        multiValueHeaders=multi_headers,
        queryStringParameters={k: v[-1] for k, v in multi_query.items()} or None,
        multiValueQueryStringParameters=multi_query or None,
        pathParameters=dict(path_params) if path_params else None,
        body=body,
        isBase64Encoded=base64_encoded,
    )
    return event


def authorizer_request(event: Mapping[str, Any], method_arn: str) -> dict[str, Any]:
    """The REQUEST authorizer's event for a proxy event: its request fields and the method ARN."""
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
        **{k: event[k] for k in ("queryStringParameters", "pathParameters", "requestContext")},
    }


def stream_record(event_name: str, change: Mapping[str, Any]) -> dict[str, Any]:
    """One stream record: the sample's envelope, this event name and this `dynamodb` change."""
    (record,) = sample(TABLE_STREAM)["Records"]
    record.update(eventName=event_name, dynamodb=dict(change))
    return dict(record)


def stream_event(records: Iterable[Mapping[str, Any]], arn: str) -> dict[str, Any]:
    """A batch of records read from a stream, as the event source mapping hands them over."""
    (envelope,) = sample(TABLE_STREAM)["Records"]
    envelope.pop("dynamodb")
    return {"Records": [{**envelope, **record, "eventSourceARN": arn} for record in records]}


def sqs_event(messages: Iterable[Mapping[str, Any]], arn: str, region: str) -> dict[str, Any]:
    """A batch of received SQS messages (ReceiveMessage's shape), as Lambda's SQS source sends it."""
    (template,) = sample(SQS_MERGE)["Records"]
    return {
        "Records": [
            {
                **template,
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def scheduler_event(job: str, at: datetime | None = None) -> dict[str, Any]:
    """What a job's schedule sends it: its name, the scheduled time and a fresh execution id."""
    event = sample(SCHEDULER)
    event.update(
        job=job,
        scheduled_time=(at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        execution_id=str(uuid.uuid4()),
    )
    return event
