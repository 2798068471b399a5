"""Stores and the programme, cached in the function with a bounded staleness.

Both are read on nearly every call and change rarely; a warm function answers from memory.
A change made through the admin API is seen by every function within CACHE_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loyalty.adapters.dynamo import TransactionCancelled
from loyalty.adapters.programme import ProgrammeRepository
from loyalty.adapters.stores import StoreRepository
from loyalty.domain.access import Principal
from loyalty.domain.errors import FieldError, StoreNotFound, ValidationFailed
from loyalty.domain.ids import is_plausible_id
from loyalty.domain.stores import Store
from loyalty.services.ports import Clock

if TYPE_CHECKING:
    from loyalty.adapters.templates import TemplateRepository
    from loyalty.domain.programme import Programme

CACHE_SECONDS = 60.0


class _TtlCache:
    MAX_ENTRIES = 2048  # misses are cached too, so unknown ids must not grow it without bound

    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        hit = self._entries.get(key)
        now = self._monotonic()
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        value = load()
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (now, value)
        return value

    def put(self, key: str, value: Any) -> None:
        self._entries[key] = (self._monotonic(), value)


class StoreService:
    def __init__(self, *, repo: StoreRepository, clock: Clock, ttl: float = CACHE_SECONDS) -> None:
        self._repo = repo
        self._clock = clock
        self._cache = _TtlCache(ttl)

    def find(self, store_id: str) -> Store | None:
        if not is_plausible_id(store_id):
            return None
        store: Store | None = self._cache.get(store_id, lambda: self._repo.get(store_id))
        return store

    def require(self, store_id: str) -> Store:
        store = self.find(store_id)
        if store is None:
            raise StoreNotFound(f"store {store_id!r} is not known", store_id=store_id)
        return store

    def for_request(self, principal: Principal, store_id: str | None) -> Store:
        """The store a request acts in: the key's own store for a till or web shop (a body naming
        another is 403), a known store named in the body for an admin (422 at body.store_id)."""
        resolved = principal.ensure_store(store_id)
        if resolved is None:
            raise ValidationFailed.at(("body", "store_id"), "name the store")
        try:
            return self.require(resolved)
        except StoreNotFound:
            raise ValidationFailed.at(("body", "store_id"), f"unknown store {resolved!r}") from None

    def put(self, store: Store) -> tuple[Store, bool]:
        created = self._repo.put(store, self._clock.now())
        self._cache.put(store.store_id, store)
        return store, created

    def list(self, limit: int, cursor: str | None) -> tuple[list[Store], str | None]:
        return self._repo.list(limit, cursor)


class ProgrammeService:
    def __init__(
        self,
        *,
        repo: ProgrammeRepository,
        clock: Clock,
        ttl: float = CACHE_SECONDS,
        templates: TemplateRepository | None = None,
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._cache = _TtlCache(ttl)
        self._templates = templates  # checks the templates the messaging block names (replace)

    def current(self) -> Programme:
        from loyalty.domain.programme import default_programme

        programme: Programme = self._cache.get("programme", lambda: self._repo.get() or default_programme())
        return programme

    def replace(self, programme: Programme) -> Programme:
        """Store the programme; a template it names that does not exist, or cannot serve its trigger,
        is a 422 naming the field (messaging.welcome_template_id ...)."""
        refs = programme.messaging.template_refs()
        self._check_templates(refs)
        try:
            self._repo.put(programme, self._clock.now(), template_ids=sorted(set(refs.values())))
        except TransactionCancelled as cancelled:  # a template deleted since the check
            gone = {label.removeprefix("template:") for label in cancelled.failed_labels()}
            raise _template_errors({f: f"no template {t!r}" for f, t in refs.items() if t in gone}) from None
        self._cache.put("programme", programme)
        return programme

    def _check_templates(self, refs: dict[str, str]) -> None:
        if not refs or self._templates is None:
            return
        from loyalty.domain.templates import TRIGGERS, misfit

        found = self._templates.get_many(refs.values())
        problems: dict[str, str] = {}
        for field, template_id in refs.items():
            template = found.get(template_id)
            reason = f"no template {template_id!r}" if template is None else misfit(template, TRIGGERS[field])
            if reason is not None:
                problems[field] = reason
        if problems:
            raise _template_errors(problems)


def _template_errors(problems: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(
        "the messaging block names templates that cannot serve it",
        errors=[FieldError(("body", "messaging", field), msg) for field, msg in problems.items()],
    )
