from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredResponse:
    """The first response to an idempotent request: what a replay answers again."""

    status_code: int
    body: str
    headers: dict[str, str]
