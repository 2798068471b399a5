"""Customer scores: RFM quintiles from the lake, written onto the profiles whose scores changed.

One statement (loyalty.services.segment_sql.rfm, where the quintiles and their ties are defined)
answers only the customers whose new scores differ from the lake's copy of the profile, so a run
writes what changed and nothing else, and a run cut short (a Lambda timeout, a throttled table) is
simply resumed by the next one. Each write is one conditional UpdateItem: it never touches a profile
that is gone (erased or merged away) or being merged, nor one whose stored scores already are the new
ones (the lake lags the table by up to a minute, so a profile written moments ago may be answered
again). Each write carries `ScoresUpdated` {customer_id} in the profile's outbox, so the real-time
segment membership re-evaluates the customer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from loyalty.domain import events as ev
from loyalty.domain.scores import Scores
from loyalty.services import segment_sql
from loyalty.services.ports import Clock
from loyalty.services.reports import ReportQueries


class ScoresStore(Protocol):
    def set_scores(self, customer_id: str, scores: Scores | None, outbox: list[dict[str, str]]) -> bool:
        """True when written; False when the profile is gone, locked by a merge or unchanged."""
        ...


@dataclass(frozen=True)
class ScoresRun:
    answered: int  # customers whose scores the lake says changed
    written: int
    cleared: int  # customers with no sale left: scores removed
    skipped: int  # gone, being merged or already up to date in the table


@dataclass
class CustomerScores:
    queries: ReportQueries
    store: ScoresStore
    clock: Clock
    workers: int = 16  # concurrent UpdateItems: a first run over 100,000 customers writes them all

    def run(self) -> ScoresRun:
        now = self.clock.now()
        statement = segment_sql.rfm(now, self.queries.manifest())
        rows = self.queries.run(segment_sql.render(statement, self.queries.dialect))

        def write(row: dict[str, Any]) -> tuple[bool, bool]:
            customer_id = str(row["customer_id"])
            scores = None
            if row["r"] is not None:
                scores = Scores(r=int(row["r"]), f=int(row["f"]), m=int(row["m"]), computed_at=now)
            event = ev.DomainEvent(ev.SCORES_UPDATED, {"customer_id": customer_id})
            return self.store.set_scores(customer_id, scores, ev.outbox([event])), scores is None

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            results = list(pool.map(write, rows))
        written = sum(1 for done, _ in results if done)
        cleared = sum(1 for done, removed in results if done and removed)
        return ScoresRun(answered=len(rows), written=written, cleared=cleared, skipped=len(rows) - written)
