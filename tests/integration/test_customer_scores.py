"""The RFM scores job over a small lake with hand-computed quintiles, writing to DynamoDB Local.

Now is 2026-11-22 10:00 UTC. Ten customers with sales (P1..P10) and one (Z) whose scores are stale
(no sale at all any more). Recency in calendar days since the last sale, frequency = sales in the
last 365 days, monetary = sales less returns in those days:

    customer  recency  frequency  monetary
    P1        1        5          50 (5 x 10)
    P2        2        1          200
    P3        2        1          5
    P4        10       3          50 (3 x 20, less a return of 10)
    P5        30       2          30
    P6        60       1          80
    P7        100      1          30
    P8        200      1          1
    P9        300      1          100
    P10       500      0          0 (its one sale, 999.00, is older than a year)

NTILE(5) over ten customers puts two in each tile, ordered by the measure and then the id; equal
measures then share the lowest tile any of them got:
- r (fewest days highest): P10 P9 -> 1, P8 P7 -> 2, P6 P5 -> 3, P4 P2 -> 4, P3 P1 -> 5; P3 ties
  with P2 (2 days) -> 4.
- f: P10 P2 -> 1, P3 P6 -> 2, P7 P8 -> 3, P9 P5 -> 4, P4 P1 -> 5; the six with one sale share 1.
- m: P10 P8 -> 1, P3 P5 -> 2, P7 P1 -> 3, P4 P6 -> 4, P9 P2 -> 5; P7 ties with P5 (30) -> 2, P4
  with P1 (50) -> 3.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loyalty.adapters.codec import customer_to_item, scores_to_map
from loyalty.adapters.customers import CustomerRepository
from loyalty.adapters.lake import FolderLake
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.bootstrap import Container
from loyalty.domain.customers import Consents, Customer, CustomerStatus, Profile
from loyalty.domain.events import SCORES_UPDATED
from loyalty.domain.scores import Scores
from loyalty.services.customer_scores import CustomerScores
from loyalty.services.lake import LakeWriter, StreamChange

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SALES: dict[str, list[tuple[int, str, str]]] = {  # customer -> (days ago, type, total)
    "P1": [(1, "sale", "10.00"), (20, "sale", "10.00"), (40, "sale", "10.00"), (80, "sale", "10.00"),
           (160, "sale", "10.00")],
    "P2": [(2, "sale", "200.00")],
    "P3": [(2, "sale", "5.00")],
    "P4": [(10, "sale", "20.00"), (11, "sale", "20.00"), (12, "sale", "20.00"), (5, "return", "10.00")],
    "P5": [(30, "sale", "15.00"), (31, "sale", "15.00")],
    "P6": [(60, "sale", "80.00")],
    "P7": [(100, "sale", "30.00")],
    "P8": [(200, "sale", "1.00")],
    "P9": [(300, "sale", "100.00")],
    "P10": [(500, "sale", "999.00")],
}  # fmt: skip
EXPECTED = {
    "P1": (5, 5, 3),
    "P2": (4, 1, 5),
    "P3": (4, 1, 2),
    "P4": (4, 5, 3),
    "P5": (3, 4, 2),
    "P6": (3, 1, 4),
    "P7": (2, 1, 2),
    "P8": (2, 1, 1),
    "P9": (1, 1, 5),
    "P10": (1, 1, 1),
}


def customer(customer_id: str, scores: Scores | None = None) -> Customer:
    return Customer(
        customer_id=customer_id,
        member=True,
        status=CustomerStatus.ACTIVE,
        profile=Profile(),
        consents=Consents(),
        links=(),
        created_at=NOW - timedelta(days=900),
        scores=scores,
    )


def txn(customer_id: str, n: int, days: int, kind: str, total: str) -> dict[str, Any]:
    when = (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")
    return {
        "pk": f"TXN#ams-01#{customer_id}-{n}",
        "sk": "TXN",
        "type": "transaction",
        "store_id": "ams-01",
        "transaction_id": f"{customer_id}-{n}",
        "txn_type": kind,
        "channel": "pos",
        "occurred_at": when,
        "customer_id": customer_id,
        "member": True,
        "total": total,
        "lines": [],
    }


def lake_of(root: Path, profiles: list[Customer]) -> DuckDBQueries:
    changes: list[StreamChange] = []

    def put(item: dict[str, Any]) -> None:
        seq = str(len(changes) + 1)
        changes.append(StreamChange("INSERT", {"pk": item["pk"], "sk": item["sk"]}, item, None, seq, NOW))

    for profile in profiles:
        put(customer_to_item(profile))
    for customer_id, sales in SALES.items():
        for n, (days, kind, total) in enumerate(sales):
            put(txn(customer_id, n, days, kind, total))
    LakeWriter(files=FolderLake(root=root)).write(changes)
    return DuckDBQueries.over_folder(root)


def test_quintiles_are_written_onto_the_changed_profiles_once(container: Container, tmp_path: Path) -> None:
    repo = CustomerRepository(container.table)
    stale = Scores(3, 3, 3, NOW - timedelta(days=1))
    unchanged = Scores(5, 5, 3, NOW - timedelta(days=1))
    profiles = [customer(c) for c in SALES if c != "P1"]
    profiles += [customer("P1", unchanged), customer("Z", stale)]
    for profile in profiles:
        repo.create(profile)
    queries = lake_of(tmp_path / "lake", profiles)
    job = CustomerScores(queries=queries, store=repo, clock=container.clock)

    run = job.run()

    assert (run.answered, run.written, run.cleared, run.skipped) == (10, 10, 1, 0)  # P1 already right
    for customer_id, (r, f, m) in EXPECTED.items():
        item = container.table.get(f"CUST#{customer_id}", "PROFILE")
        assert item is not None
        assert (int(item["scores"]["r"]), int(item["scores"]["f"]), int(item["scores"]["m"])) == (r, f, m), (
            customer_id
        )
        if customer_id != "P1":
            (event,) = item["outbox"]
            assert event["detail_type"] == SCORES_UPDATED
            assert json.loads(event["detail"])["customer_id"] == customer_id
            assert int(item["version"]) == 2  # a concurrent read-modify-write retries, keeping them
    p1 = container.table.get("CUST#P1", "PROFILE")
    assert p1 is not None and p1["scores"] == scores_to_map(unchanged) and int(p1["version"]) == 1
    z = container.table.get("CUST#Z", "PROFILE")
    assert z is not None and "scores" not in z  # no sale left: no scores
    assert repo.get("P2") is not None and repo.get("P2").scores == Scores(4, 1, 5, container.clock.now())  # type: ignore[union-attr]

    # The lake still shows the old profiles (it lags the table): the same customers come back,
    # and the conditional writes find nothing to change.
    again = job.run()
    assert (again.answered, again.written, again.skipped) == (10, 0, 10)


def test_a_profile_gone_is_never_written(container: Container) -> None:
    repo = CustomerRepository(container.table)
    scores = Scores(1, 2, 3, NOW)
    erased = customer("GONE")
    repo.create(erased)
    container.table.transact(
        [
            container.table.update_op(
                "CUST#GONE", "PROFILE", "SET #status = :erased", values={":erased": "erased"}
            )
        ]
    )

    assert repo.set_scores("GONE", scores, []) is False
    assert repo.set_scores("NEVER", scores, []) is False  # no item: the update creates none
    assert container.table.get("CUST#NEVER", "PROFILE") is None
    item = container.table.get("CUST#GONE", "PROFILE")
    assert item is not None and "scores" not in item
