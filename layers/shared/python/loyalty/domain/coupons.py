"""Coupon codes as people type them."""

from __future__ import annotations


def normalise_code(code: str) -> str:
    """One spelling per code: a till may send it in lower case, without its dashes or with spaces
    where a person read it aloud; twelve characters are the platform's own XXXX-XXXX-XXXX codes."""
    raw = code.strip().upper().replace("-", "").replace(" ", "")
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == 12 else code.strip().upper()
