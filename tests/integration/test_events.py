"""The outbox reaches the bus: stream records of committed writes become EventBridge events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3

from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.sales import Line, SaleType
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.publisher import events_of
from loyalty.services.transactions import RecordCommand
from loyalty_local.events import stream_record
from loyalty_local.jobs import StreamPoller

POS = Principal("key-pos", KeyKind.POS, "ams-01")


def capture_bus(session: boto3.session.Session, bus: str) -> str:
    """An SQS queue that receives every event of the bus (moto delivers rule targets to SQS)."""
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"capture-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = session.client("events")
    rule = f"all-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["loyalty.platform"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return queue_url


def drain(session: boto3.session.Session, queue_url: str) -> list[dict[str, Any]]:
    sqs = session.client("sqs")
    received: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return received
        received.extend(json.loads(m["Body"]) for m in messages)
        for m in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_a_sale_publishes_its_events_once(container: Container, aws_session: boto3.session.Session) -> None:
    queue = capture_bus(aws_session, container.settings.event_bus_name)
    poller = StreamPoller(aws_session, container.settings.table_name, handler=_publisher(container))
    poller.poll_once()
    drain(aws_session, queue)  # whatever the seed wrote

    jane = container.customers.enrol(
        EnrolCommand([RawLink("email", "e@example.com")], Profile(), Consents(), True, None), POS
    ).customer
    container.transactions.record(
        RecordCommand(
            transaction_id="S1",
            type=SaleType.SALE,
            store_id=None,
            occurred_at=datetime(2026, 11, 22, 9, tzinfo=UTC),
            customer=CustomerRef(customer_id=jane.customer_id),
            lines=[Line("1", "SKU", None, Decimal(1), Decimal("300.00"))],
            currency="EUR",
            total=Decimal("300.00"),
            fingerprint="f",
        ),
        POS,
        render=render_receipt,
    )
    poller.poll_once()
    poller.poll_once()  # polling again publishes nothing twice
    events = drain(aws_session, queue)

    types = sorted(e["detail-type"] for e in events)
    # One event per sale: the earn rides on TransactionRecorded, no PointsEarned for a sale.
    assert types == ["CustomerEnrolled", "TierChanged", "TransactionRecorded"]
    by_type = {e["detail-type"]: e["detail"] for e in events}
    recorded = by_type["TransactionRecorded"]
    assert recorded["points_earned"] == 3000 and recorded["customer_id"] == jane.customer_id
    assert recorded["earn"]["points"] == 3000 and recorded["earn"]["balance"] == 3000
    assert recorded["earn"]["expires_at"] and recorded["earn"]["pending_until"]
    assert by_type["TierChanged"]["from"] == "bronze"
    assert by_type["TierChanged"]["to"] == "silver"
    assert by_type["TransactionRecorded"]["total"] == "300.00"
    assert all(e["source"] == "loyalty.platform" and e["detail"]["event_id"] for e in events)
    assert len({e["detail"]["event_id"] for e in events}) == 3
    assert poller.failures == 0


def test_only_new_outbox_entries_are_published() -> None:
    old = {"outbox": {"L": [{"M": {"id": {"S": "1"}, "detail_type": {"S": "A"}, "detail": {"S": "{}"}}}]}}
    new = {"outbox": {"L": [{"M": {"id": {"S": "2"}, "detail_type": {"S": "B"}, "detail": {"S": "{}"}}}]}}
    assert [e.event_id for e in events_of(stream_record("MODIFY", {"OldImage": old, "NewImage": new}))] == [
        "2"
    ]
    assert events_of(stream_record("MODIFY", {"OldImage": new, "NewImage": new})) == []
    assert events_of(stream_record("REMOVE", {"OldImage": new})) == []
    assert events_of(stream_record("INSERT", {"NewImage": {"pk": {"S": "x"}}})) == []


def _publisher(container: Container):  # type: ignore[no-untyped-def]
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        container.outbox.publish_records(event["Records"])
        return {"batchItemFailures": []}

    return handle
