"""The profile's summary of a member's open lots: the first lots a redemption spends, so that a
redemption by amount finds them in the profile it reads anyway instead of querying the open-lot
index afterwards.

A summary is exact for one ledger number: every movement that changes a lot also writes a ledger
entry, which advances the profile's `ledger_seq`. A writer that keeps the summary up to date
stamps it with the new number; any writer that does not (an older code path, a merge, an undo)
leaves the old stamp behind, and a summary whose stamp is not the profile's `ledger_seq` is
ignored. So a stale summary can cost the Query it saves, never a wrong spend.

It names at most LIMIT lots, the first in spending order (the open-lot index's order: expiry, then
age), and says whether more exist beyond them; a redemption they do not cover queries the index.
Lots past the named ones are not tracked, which bounds the profile item whatever a member holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# 8 lots cover a redemption for a member who earns weekly and spends within two months; each costs
# about 25-45 bytes of the profile item, which every profile write pays for.
LIMIT = 8


class SpendableLot(Protocol):
    """What spending needs of a lot, from its ledger item or from the profile's summary."""

    @property
    def customer_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def remaining(self) -> int | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def pending_until(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class OpenLot:
    customer_id: str
    seq: int
    remaining: int | None
    expires_at: datetime | None
    pending_until: datetime | None


def spending_order(lot: SpendableLot) -> tuple[str, int]:
    """The open-lot index's sort key (its `LOT#<expiry>#<seq>` string), so that the summary and a
    Query of the index spend in the very same order."""
    expiry = lot.expires_at.isoformat().replace("+00:00", "Z") if lot.expires_at else "9999"
    return expiry, lot.seq


@dataclass(frozen=True, slots=True)
class LotSummary:
    seq: int  # the profile's ledger_seq this summary is exact for
    lots: tuple[OpenLot, ...]  # the first open lots in spending order
    more: bool  # other open lots exist after these

    def covers(self, points: int, now: datetime) -> bool:
        """Whether the named lots alone hold `points` spendable now."""
        spendable = sum(
            lot.remaining or 0
            for lot in self.lots
            if not (lot.pending_until and now < lot.pending_until)
            and not (lot.expires_at and now >= lot.expires_at)
        )
        return spendable >= points


EMPTY = LotSummary(0, (), False)


def current(summary: LotSummary | None, ledger_seq: int) -> LotSummary | None:
    """The summary if it is exact for this ledger number; a profile with no ledger has no lots."""
    if summary is not None and summary.seq == ledger_seq:
        return summary
    return EMPTY if ledger_seq == 0 else None


def advance(
    summary: LotSummary | None,
    before_seq: int,
    after_seq: int,
    changed: Iterable[SpendableLot] = (),
) -> LotSummary | None:
    """The summary after a movement that took the ledger from `before_seq` to `after_seq` and left
    the `changed` lots as given (a lot with nothing left closes). None when the summary was not
    exact before: the next redemption queries the index and writes a fresh one."""
    known = current(summary, before_seq)
    if known is None:
        return None
    by_seq = {lot.seq: lot for lot in known.lots}
    # Every open lot not named sorts after the last named one, so a lot sorting before it belongs.
    boundary = spending_order(known.lots[-1]) if known.lots else None
    more = known.more
    for lot in changed:
        if (lot.remaining or 0) <= 0:
            by_seq.pop(lot.seq, None)
        elif lot.seq in by_seq or not more or (boundary is not None and spending_order(lot) < boundary):
            by_seq[lot.seq] = _open(lot)
    return trimmed(after_seq, by_seq.values(), more)


def of_open_lots(ledger_seq: int, lots: Iterable[SpendableLot]) -> LotSummary:
    """A fresh summary from every open lot (an index Query), as they are after a movement."""
    return trimmed(ledger_seq, (_open(lot) for lot in lots if (lot.remaining or 0) > 0), False)


def trimmed(ledger_seq: int, lots: Iterable[OpenLot], more: bool) -> LotSummary:
    ordered = sorted(lots, key=spending_order)
    if len(ordered) > LIMIT:
        return LotSummary(ledger_seq, tuple(ordered[:LIMIT]), True)
    return LotSummary(ledger_seq, tuple(ordered), more)


def _open(lot: SpendableLot) -> OpenLot:
    return OpenLot(lot.customer_id, lot.seq, lot.remaining, lot.expires_at, lot.pending_until)
