"""A person's timeline: everything that happened to them, newest first, in one stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loyalty.adapters.timeline import TimelineRepository, customer_owner
from loyalty.domain.customers import Customer
from loyalty.domain.timeline import parse_kinds


class TimelineService:
    def __init__(self, *, timeline: TimelineRepository, resolve_customer: Callable[[str], Customer]) -> None:
        self._timeline = timeline
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound

    def page(
        self, customer_id: str, types: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        kinds = parse_kinds(types)
        customer = self._resolve_customer(customer_id)
        return self._timeline.page(customer_owner(customer.customer_id), kinds, limit, cursor)
