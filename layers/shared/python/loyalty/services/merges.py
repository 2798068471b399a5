"""Identity merges, one handle on their use cases: the requests (services/merge_requests.py), the
worker that runs them and their undo (services/merge_worker.py, services/merge_undo.py) and privacy
(services/privacy.py). The routers and jobs use the use-case services; this handle keeps the
merge's whole lifecycle reachable in one place for the tests and the benches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loyalty.adapters.merges import MergeRepository
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.links import Link
from loyalty.domain.merges import MergeRecord
from loyalty.services.merge_requests import STALE_AFTER, MergeRequests
from loyalty.services.merge_worker import MergeWorker
from loyalty.services.ports import IdempotencyRequest
from loyalty.services.privacy import Erasure, PrivacyService


class MergeService:
    def __init__(self, *, requests: MergeRequests, worker: MergeWorker, privacy: PrivacyService) -> None:
        self._requests = requests
        self._worker = worker
        self._privacy = privacy

    @property
    def _merges(self) -> MergeRepository:
        """The repository the worker runs on (the crash tests swap it for one on a failing table)."""
        return self._worker.repository

    @_merges.setter
    def _merges(self, merges: MergeRepository) -> None:
        self._worker.use_repository(merges)

    # ---- requests -------------------------------------------------------------------------
    def request(
        self,
        survivor_id: str,
        merged_id: str,
        reason: str | None,
        principal: Principal,
        link: Link | None = None,
        idempotency: IdempotencyRequest | None = None,
    ) -> MergeRecord:
        return self._requests.request(survivor_id, merged_id, reason, principal, link, idempotency)

    def get(self, merge_id: str) -> MergeRecord:
        return self._requests.get(merge_id)

    def request_undo(
        self, merge_id: str, principal: Principal, idempotency: IdempotencyRequest | None = None
    ) -> MergeRecord:
        return self._requests.request_undo(merge_id, principal, idempotency)

    def requeue_stale(self, older_than: timedelta = STALE_AFTER) -> int:
        return self._requests.requeue_stale(older_than)

    def clear_review(self, customer_id: str) -> Customer:
        return self._requests.clear_review(customer_id)

    # ---- the worker -----------------------------------------------------------------------
    def process(self, merge_id: str) -> MergeRecord:
        return self._worker.process(merge_id)

    def _lock_for_merge(self, record: MergeRecord) -> MergeRecord:
        return self._worker.lock_for_merge(record)

    # ---- privacy --------------------------------------------------------------------------
    def export(self, customer: Customer) -> dict[str, Any]:
        return self._privacy.export(customer)

    def erase(self, customer_id: str, principal: Principal) -> Erasure:
        return self._privacy.erase(customer_id, principal)


__all__ = ["MergeService"]
