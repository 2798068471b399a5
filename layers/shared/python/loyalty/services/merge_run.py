"""What the merge request, the worker and the undo share: the journal read, the paging of one
run (records read ahead for several steps, the frozen tombstone) and the page sizes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loyalty.adapters.dynamo import Item
from loyalty.adapters.merges import MergeRepository
from loyalty.domain.customers import Customer
from loyalty.domain.errors import MergeNotFound, ServiceUnavailable
from loyalty.domain.ids import is_plausible_id
from loyalty.domain.links import Link
from loyalty.domain.merges import MergeRecord, MergeStatus, over_merge_limit
from loyalty.domain.programme import Programme
from loyalty.services.ports import Clock

STEP_ATTEMPTS = 5
LEDGER_PAGE = 49  # two writes each (copy, delete) + the journal: 99 of TransactWriteItems' 100
RECORD_PAGE = 99  # one write each + the journal
TIMELINE_PAGE = 98  # one write each + the list of their keys + the journal
# One read feeds several steps (the profiles are locked, so what was read stays true): a Query
# returns up to 1 MB anyway, and every round trip saved shortens the lock.
READ_PAGES = 5
MERGE_ACTOR = "merge"


class MergeBusy(ServiceUnavailable):
    """One of the profiles is locked by another merge: the message goes back on the queue."""


def journal(merges: MergeRepository, merge_id: str) -> MergeRecord:
    record = merges.get(merge_id) if is_plausible_id(merge_id) else None
    if record is None:
        raise MergeNotFound(f"no merge {merge_id[:64]!r}")
    return record


def flag_if_over_limit(
    merges: MergeRepository, survivor: Customer, merged: Customer, programme: Programme, clock: Clock
) -> None:
    if over_merge_limit(survivor, merged, programme):
        why = f"more than {programme.max_merges_per_profile} merges: check it is one person"
        merges.flag_for_review(survivor.customer_id, why, clock.now())


@dataclass
class Page:
    """Records read ahead for the steps of one phase of one merge."""

    key: tuple[str, str, int]  # merge id, phase, the step it is good for
    items: list[Item]
    next_cursor: str | None  # where the read that filled it stopped (None: nothing more)


class RunCache:
    """What one worker remembers between the steps of a run: the page read ahead and the merged
    profile (frozen while the merge or its undo runs, so read once per run)."""

    def __init__(self) -> None:
        self._page: Page | None = None
        self._frozen: tuple[tuple[str, MergeStatus], Customer] | None = None

    def new_run(self) -> None:
        self._frozen = None

    def drop_page(self) -> None:
        self._page = None

    def read_ahead(self, record: MergeRecord, read: Callable[[], tuple[list[Item], str | None]]) -> Page:
        """This step's page: what an earlier step of the phase read ahead, or a fresh read."""
        key = (record.merge_id, record.phase, record.step)
        if self._page is None or self._page.key != key or not self._page.items:
            items, next_cursor = read()
            self._page = Page(key, items, next_cursor)
        return self._page

    @staticmethod
    def take(record: MergeRecord, page: Page, size: int) -> list[Item]:
        """The first `size` items of the page; the rest wait for the next step."""
        taken, page.items = page.items[:size], page.items[size:]
        page.key = (record.merge_id, record.phase, record.step + 1)
        return taken

    @staticmethod
    def position(
        merges: MergeRepository, page: Page, taken: list[Item], cursor: str | None
    ) -> tuple[str | None, bool]:
        """Where the journal says to list on from after this step, and whether more may follow. A
        crash between steps re-reads from just after the last record this step moved."""
        if page.items:
            return (merges.cursor_after(taken[-1]) if taken else cursor), True
        return page.next_cursor, page.next_cursor is not None

    def tombstone(self, merges: MergeRepository, record: MergeRecord) -> Customer:
        """The merged profile, frozen while the merge or its undo runs: read once per run."""
        if self._frozen is not None and self._frozen[0] == (record.merge_id, record.status):
            return self._frozen[1]
        merged = merges.profiles(record.merged_id).get(record.merged_id)
        if merged is None:
            raise MergeNotFound(f"the merged profile {record.merged_id} is gone")
        self._frozen = ((record.merge_id, record.status), merged)
        return merged


def count_records(counts: dict[str, int], items: list[Item]) -> None:
    names = {
        "transaction": "transactions",
        "coupon": "coupons",
        "redemption": "redemptions",
        "account": "accounts",
    }
    for item in items:
        name = names.get(str(item.get("type")), "other")
        counts[name] = counts.get(name, 0) + 1


def link_of(key: str) -> Link:
    link_type, value = key.split("#", 1)
    return Link(link_type, value)
