"""Shared fixtures: one DynamoDB Local and one moto server per test worker, a table per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from loyalty.bootstrap import Container
from loyalty.resources import TABLE
from loyalty.settings import Settings
from loyalty_local.emulators import REGION, DynamoDBLocal, Moto, aws_environment
from loyalty_local.provision import provision
from loyalty_local.seed import seed
from loyalty_local.stepfunctions import (
    LocalStateMachines,
    enable,
    provision_state_machines,
    synthesised_template,
    unregister_functions,
)


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture(scope="session")
def emulators() -> Iterator[tuple[DynamoDBLocal, Moto]]:
    ddb = DynamoDBLocal().start()
    moto = Moto().start()
    os.environ.update(aws_environment(ddb.endpoint, moto.endpoint))
    yield ddb, moto
    moto.stop()
    ddb.stop()


@pytest.fixture(scope="session")
def aws_session(emulators: tuple[DynamoDBLocal, Moto]) -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))


@pytest.fixture
def make_container(aws_session: boto3.session.Session) -> Iterator[Callable[..., Container]]:
    """A Container on a fresh, seeded table; the table is dropped after the test."""
    tables: list[str] = []

    def make(clock: FixedClock | None = None) -> Container:
        resources = provision(aws_session, table_name=f"test-{uuid.uuid4().hex[:12]}")
        tables.append(resources.table_name)
        # These tables run on the test's clock (2026-11-22), but DynamoDB Local deletes TTL items by
        # the real one: a message (7 days) or an Idempotency-Key (32 days) written "today" on the
        # test clock is already past its expiry in real time and vanished mid-test, at random.
        # What expires in these tests, the test clock decides.
        aws_session.client("dynamodb").update_time_to_live(
            TableName=resources.table_name,
            TimeToLiveSpecification={"Enabled": False, "AttributeName": TABLE.ttl_attribute},
        )
        settings = Settings(
            table_name=resources.table_name,
            api_key_pepper_secret=resources.pepper_secret,
            cursor_key_secret=resources.cursor_key_secret,
            merge_queue_url=resources.queue_urls["Merges"],
            campaign_runs_bucket=resources.campaign_runs_bucket,
            campaign_run_state_machine_arn=resources.campaign_run_arn,
            campaign_schedule_group=resources.campaign_schedule_group,
            campaign_schedule_target_arn=resources.campaign_schedule_target_arn,
            campaign_scheduler_role_arn=resources.campaign_scheduler_role_arn,
        )
        container = Container(settings, session=aws_session, clock=clock)
        container.local_resources = resources  # type: ignore[attr-defined]  # tests read queue urls
        seed(container)
        return container

    yield make
    client = aws_session.client("dynamodb")
    for name in tables:
        client.delete_table(TableName=name)


@pytest.fixture
def container(make_container: Callable[..., Container], clock: FixedClock) -> Container:
    return make_container(clock)


@pytest.fixture(scope="session")
def cdk_template() -> dict[str, Any]:
    """The stack's template as `make synth` writes it (synthesised once, cached under .local/cdk)."""
    return synthesised_template()


@pytest.fixture
def make_state_machines(
    emulators: tuple[DynamoDBLocal, Moto], aws_session: boto3.session.Session, cdk_template: dict[str, Any]
) -> Iterator[Callable[[Container], LocalStateMachines]]:
    """The synthesised state machines in moto for a container made by `make_container`: their
    Lambda tasks run the real handlers in-process, bound to that container."""
    made: list[LocalStateMachines] = []

    def make(container: Container) -> LocalStateMachines:
        resources = container.local_resources  # type: ignore[attr-defined]
        enable(emulators[1].endpoint)
        machines = provision_state_machines(
            aws_session,
            cdk_template,
            buckets=resources.buckets,
            prefix=f"{resources.table_name}-",
            container=container,
        )
        made.append(machines)
        return machines

    yield make
    for machines in made:
        unregister_functions(list(machines.functions.values()))
