"""The fault injector itself: each kind of fault reaches the product code as AWS would send it, and
the table adapter turns every one into a 503-shaped ServiceUnavailable."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.config import Config

from loyalty.adapters.dynamo import DynamoTable
from loyalty.bootstrap import Container
from loyalty.domain.errors import ServiceUnavailable
from loyalty_local.emulators import REGION
from loyalty_local.faults import FaultInjector, from_environment

NO_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1})


def faulty_table(container: Container, injector: FaultInjector) -> DynamoTable:
    session = boto3.session.Session(region_name=REGION)
    injector.install(session)
    return DynamoTable(session.client("dynamodb", config=NO_RETRIES), container.settings.table_name)


@pytest.mark.parametrize("kind", ["throttle", "server", "timeout"])
def test_a_fault_before_the_call_writes_nothing_and_answers_503(container: Container, kind: str) -> None:
    injector = FaultInjector(1.0, kinds=[kind], services=["dynamodb"])
    table = faulty_table(container, injector)
    key = f"FAULT#{uuid.uuid4().hex}"
    with pytest.raises(ServiceUnavailable):
        table.transact([table.put_op({"pk": key, "sk": "X"}), table.put_op({"pk": key, "sk": "Y"})])
    assert container.table.get(key, "X") is None
    assert sum(injector.injected.values()) >= 1
    assert next(iter(injector.injected)).startswith("dynamodb.TransactWriteItems")


def test_a_lost_answer_means_the_write_happened_but_the_caller_sees_503(container: Container) -> None:
    injector = FaultInjector(1.0, kinds=["lost"], services=["dynamodb"])
    table = faulty_table(container, injector)
    key = f"FAULT#{uuid.uuid4().hex}"
    with pytest.raises(ServiceUnavailable):
        table.transact([table.put_op({"pk": key, "sk": "X"}), table.put_op({"pk": key, "sk": "Y"})])
    assert container.table.get(key, "X") is not None  # it happened: only a safe retry may follow


def test_rate_zero_injects_nothing_and_other_services_are_left_alone(container: Container) -> None:
    injector = FaultInjector(0.0)
    table = faulty_table(container, injector)
    table.transact([table.put_op({"pk": "FAULT#ok", "sk": "X"}), table.put_op({"pk": "FAULT#ok", "sk": "Y"})])
    with injector.active(1.0):
        sqs = boto3.session.Session(region_name=REGION)
        FaultInjector(1.0, services=["eventbridge"]).install(sqs)
        assert sqs.client("sqs").list_queues() is not None  # SQS not chosen: untouched
    assert not injector.injected


def test_the_environment_switch() -> None:
    injector = from_environment(
        {"LOYALTY_FAULT_RATE": "0.25", "LOYALTY_FAULT_SEED": "3", "LOYALTY_FAULT_KINDS": "lost"}
    )
    assert injector.rate == 0.25 and injector.kinds == ("lost",) and injector.operations is None
    assert from_environment({}).rate == 0
    narrowed = from_environment({"LOYALTY_FAULT_OPERATIONS": "TransactWriteItems, PutItem"})
    assert narrowed.operations == ("TransactWriteItems", "PutItem")
    with pytest.raises(ValueError):
        from_environment({"LOYALTY_FAULT_RATE": "2"})
    with pytest.raises(ValueError):
        FaultInjector(0.1, kinds=["meteor"])


def test_faults_can_be_narrowed_to_some_operations(container: Container) -> None:
    injector = FaultInjector(0.0, kinds=["lost"], services=["dynamodb"])
    table = faulty_table(container, injector)
    key = f"FAULT#{uuid.uuid4().hex}"
    with injector.active(1.0, operations=["PutItem"]):
        assert table.get(key, "X") is None  # a read: not chosen, untouched
        with pytest.raises(ServiceUnavailable):
            table.transact([table.put_op({"pk": key, "sk": "X"})])  # one item: a PutItem
    assert container.table.get(key, "X") is not None  # it happened; its answer was lost
    assert injector.operations is None  # back to every operation
    assert set(injector.injected) == {"dynamodb.PutItem:lost"}
