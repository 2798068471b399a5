"""The composition root: the one place that picks adapters and wires services.

Functions ask for `container()` on their first request; tests build a Container with their own
clients and install it with `use_container`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from loyalty.adapters.dynamo import DynamoTable
from loyalty.adapters.events import EventBridgePublisher
from loyalty.adapters.repositories import (
    ApiKeyRepository,
    CustomerRepository,
    IdempotencyStore,
    ProgrammeRepository,
    StoreRepository,
)
from loyalty.adapters.secrets import SecretValue
from loyalty.adapters.transactions import TransactionRepository
from loyalty.services.api_keys import ApiKeyService
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.customers import CustomerService
from loyalty.services.ports import Clock, SystemClock
from loyalty.services.publisher import OutboxPublisher
from loyalty.services.sweeper import PointsSweeper
from loyalty.services.transactions import TransactionService
from loyalty.settings import Settings

# Fail fast inside the API Gateway 29 s budget; the standard retry mode handles throttling.
_BOTO_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=50,
)


class Container:
    def __init__(
        self,
        settings: Settings,
        session: Any | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._session = session or boto3.session.Session()
        self.clock = clock or SystemClock()

    def client(self, service: str) -> Any:
        return self._session.client(service, config=_BOTO_CONFIG)

    @cached_property
    def table(self) -> DynamoTable:
        return DynamoTable(self.client("dynamodb"), self.settings.table_name)

    @cached_property
    def pepper(self) -> SecretValue:
        return SecretValue(self.client("secretsmanager"), self.settings.api_key_pepper_secret)

    @cached_property
    def stores(self) -> StoreService:
        return StoreService(StoreRepository(self.table), self.clock)

    @cached_property
    def programme(self) -> ProgrammeService:
        return ProgrammeService(ProgrammeRepository(self.table), self.clock)

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        return IdempotencyStore(self.table)

    @cached_property
    def customers(self) -> CustomerService:
        return CustomerService(
            CustomerRepository(self.table),
            self.stores,
            self.programme,
            self.idempotency,
            self.clock,
            # Late-bound: the transaction service itself resolves customers through this one.
            retro_credit=lambda customer, now: self.transactions.retro_credit(customer, now),  # noqa: PLW0108
        )

    @cached_property
    def transactions(self) -> TransactionService:
        from loyalty.api.models import render_receipt

        return TransactionService(
            TransactionRepository(self.table),
            CustomerRepository(self.table),
            self.stores,
            self.programme,
            self.idempotency,
            self.clock,
            render=render_receipt,
            resolve_customer=self.customers.get,
        )

    @cached_property
    def sweeper(self) -> PointsSweeper:
        return PointsSweeper(
            TransactionRepository(self.table), CustomerRepository(self.table), self.programme, self.clock
        )

    @cached_property
    def outbox(self) -> OutboxPublisher:
        return OutboxPublisher(EventBridgePublisher(self.client("events"), self.settings.event_bus_name))

    @cached_property
    def api_keys(self) -> ApiKeyService:
        return ApiKeyService(ApiKeyRepository(self.table), self.stores, self.pepper, self.clock)


_container: Container | None = None


def container() -> Container:
    global _container  # noqa: PLW0603 - the per-process composition root, built once per cold start
    if _container is None:
        _container = Container(Settings.from_env())
    return _container


def use_container(replacement: Container | None) -> None:
    global _container  # noqa: PLW0603
    _container = replacement
