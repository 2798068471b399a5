"""One local platform per test worker: the real gateway, authorizer and handlers over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

from loyalty_local.emulators import REGION, DynamoDBLocal, Moto, free_port
from loyalty_local.runtime import LocalRuntime

ADMIN_KEY, POS_KEY, WEB_KEY = "local-admin-key", "local-pos-key", "local-web-key"


@dataclass
class Api:
    base: str
    session: requests.Session
    runtime: LocalRuntime | None = None

    def call(
        self, method: str, path: str, key: str | None = POS_KEY, json: Any = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["x-api-key"] = key
        return self.session.request(
            method, self.base + path, json=json, headers=headers, timeout=30, **kwargs
        )

    def enrol(self, key: str = POS_KEY, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/v1/customers", key, json=body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="session")
def api(emulators: tuple[DynamoDBLocal, Moto]) -> Iterator[Api]:
    ddb, moto = emulators
    port = free_port()
    # Workflows on: campaign runs execute the synthesised state machine, as in `make run`.
    runtime = LocalRuntime(table_name=f"e2e-{uuid.uuid4().hex[:10]}", ddb=ddb, moto=moto, workflows=True)
    runtime.start(port=port)
    yield Api(f"http://127.0.0.1:{port}", requests.Session(), runtime)
    runtime.stop()


def unique_email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.com"


def sent_email(api: Api, to: str, timeout: float = 20.0) -> dict[str, Any]:
    """The one email SES (moto) sent to `to`: where an e-card's PIN is read, as its buyer would;
    the outbox masks it."""
    assert api.runtime is not None
    deadline = time.monotonic() + timeout
    while True:
        data = requests.get(f"{api.runtime.moto.endpoint}/moto-api/data.json", timeout=10).json()
        sent = [
            m
            for m in data.get("ses", {}).get("Message", [])
            if to in m["destinations"].get("ToAddresses", [])
        ]
        if sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(sent) == 1, f"{len(sent)} emails to {to}"
    message: dict[str, Any] = sent[0]
    return message


def e_card_pin(api: Api, to: str) -> str:
    return str(sent_email(api, to)["body"].split("PIN ")[1][:6])


def assert_problem(response: requests.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug), body
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture
def archive(api: Api) -> Any:
    """Every domain event the bus receives, copied to an SQS queue (a rule, as a consumer would)."""
    assert api.runtime is not None and api.runtime.resources is not None
    session = boto3.session.Session(region_name=REGION)
    sqs, events = session.client("sqs"), session.client("events")
    name = f"archive-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = api.runtime.resources.event_bus_name
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["loyalty.platform"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "archive", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            out += [json.loads(m["Body"]) for m in got]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )

    yield read
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["archive"])
    events.delete_rule(Name=name, EventBusName=bus)
