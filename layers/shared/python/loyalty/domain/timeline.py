"""The timeline's vocabulary: the kinds of thing that happen to a person, and the `types` filter.

Pure: the adapter (loyalty.adapters.timeline) turns an item of one of these kinds into the index
attributes; the API answers the kinds a caller may filter by.
"""

from __future__ import annotations

from loyalty.domain.errors import ValidationFailed

TRANSACTION = "transaction"
EVENT = "event"
POINTS = "points"
REDEMPTION = "redemption"
TIER = "tier"
COUPON = "coupon"
MESSAGE = "message"
BADGE = "badge"
CHALLENGE = "challenge"
MERGE = "merge"
CAMPAIGN = "campaign"  # a campaign actioned the customer (what it gave, under the campaign's id)

KINDS: tuple[str, ...] = (
    TRANSACTION,
    EVENT,
    POINTS,
    REDEMPTION,
    TIER,
    COUPON,
    MESSAGE,
    BADGE,
    CHALLENGE,
    MERGE,
    CAMPAIGN,
)


def parse_kinds(raw: str | None) -> frozenset[str]:
    """`types=transaction,points` → those kinds; absent or empty → every kind (the empty set).

    An unknown kind is the caller's error, named by the query parameter, so a typo never reads as
    "nothing happened".
    """
    if raw is None or not raw.strip():
        return frozenset()
    wanted = [part.strip() for part in raw.split(",")]
    unknown = [part for part in wanted if part not in KINDS]
    if unknown:
        shown = ", ".join(repr(part) for part in unknown)
        raise ValidationFailed.at(
            ("query", "types"), f"unknown kind {shown}; a comma-separated list of {', '.join(KINDS)}"
        )
    return frozenset(wanted)
