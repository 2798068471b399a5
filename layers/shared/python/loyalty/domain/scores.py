"""Customer scores: RFM quintiles over the programme's customers, recomputed from the lake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Scores:
    """Recency, frequency and monetary quintiles, 1..5 each (5 = most recent, most frequent,
    highest spend), as of `computed_at`."""

    r: int
    f: int
    m: int
    computed_at: datetime

    def __post_init__(self) -> None:
        for name, value in (("r", self.r), ("f", self.f), ("m", self.m)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                raise ValueError(f"score {name} is a quintile 1..5, not {value!r}")

    @property
    def rfm(self) -> str:
        return f"{self.r}{self.f}{self.m}"
