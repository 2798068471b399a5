from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    POS = "pos"
    ONLINE = "online"
    APP = "app"


@dataclass(frozen=True, slots=True)
class Store:
    store_id: str
    channel: Channel
    format: str | None = None
    name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
