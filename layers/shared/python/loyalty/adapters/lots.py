"""The profile's `lots` attribute: its summary of the first open lots (domain/lots.py), as one
compact string, since every profile write pays for the item's size.

    "<ledger_seq>|<more: 0 or 1>|<seq>:<remaining>:<expires>:<pending_until>|..."

Instants are seconds since the epoch, with microseconds only when there are any; a lot no longer
pending when written drops its pending time (it is only ever compared with a later now).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loyalty.domain.lots import LotSummary, OpenLot

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def summary_to_attr(summary: LotSummary | None, now: datetime | None) -> str | None:
    if summary is None:
        return None
    parts = [str(summary.seq), "1" if summary.more else "0"]
    for lot in summary.lots:
        pending = lot.pending_until
        if pending is not None and now is not None and now >= pending:
            pending = None
        parts.append(f"{lot.seq}:{lot.remaining or 0}:{_instant(lot.expires_at)}:{_instant(pending)}")
    return "|".join(parts)


def summary_from_attr(customer_id: str, value: object) -> LotSummary | None:
    if not isinstance(value, str) or not value:
        return None
    stamp, more, *lots = value.split("|")
    return LotSummary(
        int(stamp),
        tuple(_lot(customer_id, raw) for raw in lots),
        more == "1",
    )


def _lot(customer_id: str, raw: str) -> OpenLot:
    seq, remaining, expires, pending = raw.split(":")
    return OpenLot(customer_id, int(seq), int(remaining), _from_instant(expires), _from_instant(pending))


def _instant(value: datetime | None) -> str:
    if value is None:
        return ""
    delta = value - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return f"{seconds}.{delta.microseconds:06d}" if delta.microseconds else str(seconds)


def _from_instant(raw: str) -> datetime | None:
    if not raw:
        return None
    seconds, _, micros = raw.partition(".")
    return _EPOCH + timedelta(seconds=int(seconds), microseconds=int(micros or 0))
