"""The canonical sample events in events/ are what the platform's code reads: each one parses the
way its consumer parses it, so a sample cannot drift from the code (or the code from AWS's shape)
without a test saying so."""

from __future__ import annotations

import json

from loyalty.api.authorizer import api_key_of
from loyalty.api.http import principal_from_event
from loyalty.api.routes import route_for
from loyalty.domain.access import KeyKind
from loyalty.domain.events import SOURCE
from loyalty.resources import JOBS, MERGE_QUEUE
from loyalty.services.publisher import events_of
from loyalty_local import events
from loyalty_local.emulators import REGION


def test_every_sample_is_one_of_the_six_and_loads_as_a_fresh_copy() -> None:
    names = {path.stem for path in events.EVENTS_DIR.glob("*.json")}
    assert names == {
        events.API_GATEWAY,
        events.TABLE_STREAM,
        events.SQS_MERGE,
        events.SCHEDULER,
        events.DOMAIN_EVENT,
        events.TABLE_STREAM_LAKE,
    }
    first = events.sample(events.API_GATEWAY)
    first["requestContext"]["authorizer"]["kind"] = "admin"
    assert events.sample(events.API_GATEWAY)["requestContext"]["authorizer"]["kind"] == "pos"


def test_the_api_gateway_sample_is_a_routed_request_with_the_authorizers_context() -> None:
    event = events.sample(events.API_GATEWAY)
    assert route_for(event["httpMethod"], event["resource"]) is not None
    assert api_key_of(event) == "local-pos-key"
    caller = principal_from_event(event)
    assert caller is not None and caller.kind is KeyKind.POS and caller.store_id == "ams-01"


def test_a_built_api_gateway_event_fills_the_request_in_and_has_no_verdict_until_given_one() -> None:
    headers = {"x-api-key": ["k"], "User-Agent": ["ua"]}
    query = {"link_type": ["card", "email"]}
    event = events.api_gateway_event("GET", "/v1/customers", "/v1/customers", headers=headers, query=query)
    assert event["queryStringParameters"] == {"link_type": "email"}
    assert event["multiValueQueryStringParameters"] == query
    assert event["pathParameters"] is None
    assert event["requestContext"]["path"] == "/local/v1/customers"
    assert event["requestContext"]["identity"]["userAgent"] == "ua"
    assert "authorizer" not in event["requestContext"]
    given = events.api_gateway_event("GET", "/v1/health", "/v1/health", authorizer={"key_id": "k"})
    assert given["requestContext"]["authorizer"] == {"key_id": "k"}
    request = events.authorizer_request(event, "arn:x")
    assert request["type"] == "REQUEST" and request["methodArn"] == "arn:x"
    assert request["headers"] == {"x-api-key": "k", "User-Agent": "ua"}


def test_the_stream_sample_is_an_insert_whose_outbox_the_publisher_publishes() -> None:
    (record,) = events.sample(events.TABLE_STREAM)["Records"]
    (published,) = events_of(record)
    assert published.detail_type == "CustomerEnrolled"
    assert json.loads(published.detail)["event_id"] == published.event_id
    batch = events.stream_event([{"eventName": "REMOVE", "dynamodb": {}}], "arn:stream")
    (built,) = batch["Records"]
    assert built["eventName"] == "REMOVE" and built["eventSourceARN"] == "arn:stream"
    assert built["eventSource"] == "aws:dynamodb" and built["dynamodb"] == {}


def test_the_sqs_sample_is_a_fifo_merge_message_the_merger_reads() -> None:
    (record,) = events.sample(events.SQS_MERGE)["Records"]
    assert record["eventSourceARN"].endswith(":" + MERGE_QUEUE.local_name)
    assert record["attributes"]["MessageGroupId"]
    assert json.loads(record["body"])["merge_id"]
    message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}
    (built,) = events.sqs_event([message], "arn:q", REGION)["Records"]
    assert built["messageId"] == "m1" and built["receiptHandle"] == "r1" and built["body"] == "{}"
    assert built["eventSource"] == "aws:sqs" and built["eventSourceARN"] == "arn:q"
    assert built["attributes"] == {} and built["awsRegion"] == REGION


def test_the_scheduler_sample_names_a_scheduled_job_and_carries_no_records() -> None:
    event = events.sample(events.SCHEDULER)
    assert event["job"] in {job.name for job in JOBS if job.schedule}
    assert "Records" not in event  # how the merger and the mailer tell a schedule from a batch
    built = events.scheduler_event("mailer")
    assert built["job"] == "mailer" and built["execution_id"] != event["execution_id"]


def test_the_domain_event_sample_comes_from_the_platforms_bus_source() -> None:
    event = events.sample(events.DOMAIN_EVENT)
    assert event["source"] == SOURCE
    assert event["detail"]["event_id"] and event["detail-type"] == "PointsEarned"
