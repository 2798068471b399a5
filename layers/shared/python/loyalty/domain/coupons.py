"""Coupon codes as people type them."""

from __future__ import annotations

from datetime import datetime, timedelta


def normalise_code(code: str) -> str:
    """One spelling per code: a till may send it in lower case, without its dashes or with spaces
    where a person read it aloud; twelve characters are the platform's own XXXX-XXXX-XXXX codes."""
    raw = code.strip().upper().replace("-", "").replace(" ", "")
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == 12 else code.strip().upper()


def valid_until(issued_at: datetime, valid_days: int, offer_until: datetime | None) -> datetime:
    """When a coupon given for `valid_days` expires: never later than its offer ends."""
    until = issued_at + timedelta(days=valid_days)
    return until if offer_until is None else min(until, offer_until)
