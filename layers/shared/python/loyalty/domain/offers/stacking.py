"""The stacking rules: which of the offers whose conditions hold go on (exclusive, best_of,
stackable; exclusive_units offers are settled in their turn, see units)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from loyalty.domain.offers.effects import _Trial
from loyalty.domain.offers.index import _Prepared

_UNCHECKED = _Trial([], money_off=True)  # an exclusive_units offer before its turn


@dataclass(slots=True)
class _UnitRun(_Trial):
    """The live exclusive_units offers of one priority, as one item in consideration order: on a
    dense catalogue that is hundreds of offers the later steps need not walk one by one."""

    priority: int = 0
    group: list[_Prepared] = field(default_factory=list)


def _decide(
    eligible: list[tuple[_Prepared, _Trial]], reasons: dict[str, str], holds: Callable[[_Prepared], bool]
) -> list[int]:
    """Positions in ``eligible`` (already in consideration order) that go on, by the stacking rules.

    exclusive_units offers go on like stackable ones here, unchecked: their conditions and which
    units each gets are decided in their turn. ``holds`` checks one when an exclusive offer needs
    to know whether an earlier offer applies."""
    applied: list[int] = []
    settled: set[int] = set()
    blocker: str | None = None
    for k, (entry, _) in enumerate(eligible):
        if k in settled:
            continue
        offer = entry.offer
        if blocker is not None:
            reasons[offer.offer_id] = f"blocked by exclusive offer {blocker}"
        elif offer.stacking == "exclusive":
            before = [j for j in applied if not eligible[j][0].units or holds(eligible[j][0])]
            if before:
                first = eligible[before[0]][0].offer.offer_id
                reasons[offer.offer_id] = f"exclusive, and offer {first} applies already"
                continue
            peers = [
                j
                for j in range(k, len(eligible))
                if eligible[j][0].offer.stacking == "exclusive"
                and eligible[j][0].offer.priority == offer.priority
            ]
            winner = max(peers, key=lambda j: eligible[j][1].key)  # the first of equals
            blocker = eligible[winner][0].offer.offer_id
            applied.append(winner)
            for j in peers:
                settled.add(j)
                if j != winner:
                    reasons[eligible[j][0].offer.offer_id] = f"exclusive offer {blocker} gives more"
        elif offer.stacking == "best_of":
            group = [j for j in range(k, len(eligible)) if eligible[j][0].offer.stacking == "best_of"]
            winner = max(group, key=lambda j: eligible[j][1].key)  # the first of equals
            applied.append(winner)
            for j in group:
                settled.add(j)
                if j != winner:
                    name = eligible[winner][0].offer.offer_id
                    reasons[eligible[j][0].offer.offer_id] = f"best_of offer {name} gives more"
        else:
            applied.append(k)
    return sorted(applied)
