"""An erased customer's segment facets leave the lake: the profile's consents, reachability,
birthday, free attributes and typed facts, scores, and the properties of their events are in no
file after the erasure rewrite (loyalty.services.compaction), snapshots included, and a preview no
longer counts them; another customer's facets stay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from loyalty.adapters.codec import customer_to_item
from loyalty.adapters.customer_events import event_to_item
from loyalty.adapters.lake import FolderLake
from loyalty.adapters.lake_compaction import DuckDBParquetWork
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.domain.customer_events import CustomerEvent
from loyalty.domain.customers import Consents, Customer, CustomerStatus, Profile
from loyalty.domain.links import Link
from loyalty.domain.programme import default_programme
from loyalty.domain.scores import Scores
from loyalty.domain.segments import parse_rule
from loyalty.services import segment_sql
from loyalty.services.compaction import LakeCompactor
from loyalty.services.lake import CUSTOMERS, EVENTS, LakeWriter, StreamChange

START = datetime(2026, 1, 1, 9, tzinfo=UTC)
EVE_SECRET, FINN_SECRET = "eve-private-7f3a", "finn-private-19bc"


def person(customer_id: str, secret: str, born: date) -> Customer:
    return Customer(
        customer_id=customer_id,
        member=True,
        status=CustomerStatus.ACTIVE,
        profile=Profile(birthday=born, attributes={"note": secret}, country="NL", timezone="Europe/Oslo"),
        consents=Consents(email=True, sms=True),
        links=(Link("email", f"{customer_id}@example.com"),),
        created_at=START,
        scores=Scores(5, 4, 3, START),
    )


def lake(root: Path) -> None:
    """Five days: each customer's profile rewritten daily, and an event of each a day."""
    changes: list[StreamChange] = []

    def put(item: dict[str, Any], at: datetime) -> None:
        keys = {"pk": item["pk"], "sk": item["sk"]}
        changes.append(StreamChange("MODIFY", keys, item, None, str(len(changes) + 1), at))

    for day in range(5):
        at = START + timedelta(days=day)
        for customer_id, secret, born in (
            ("eve", EVE_SECRET, date(1991, 3, 17)),
            ("finn", FINN_SECRET, date(1988, 8, 2)),
        ):
            put(customer_to_item(person(customer_id, secret, born)), at)
            event = CustomerEvent(f"{customer_id}-{day}", "web-nl", "online", "view", at, at,
                                  {"page": f"{secret}-page"}, customer_id=customer_id)  # fmt: skip
            put(event_to_item(event), at)
    writer = LakeWriter(files=FolderLake(root=root))
    for day in range(5):
        writer.write(
            [c for c in changes if c.approximate_creation.date() == (START + timedelta(days=day)).date()]
        )


def everything(root: Path, kind: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.parquet")):
        if f"/{kind}/" not in f"/{path.relative_to(root)}":
            continue
        relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
        rows += [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
    return rows


def count(root: Path, raw: dict[str, Any]) -> int:
    now = START + timedelta(days=5)
    statement = segment_sql.members(parse_rule(raw), now, default_programme())
    return len(DuckDBQueries.over_folder(root).run(segment_sql.render(statement, "duckdb")))


def test_an_erased_customers_facets_are_in_no_file_and_no_preview(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    lake(root)
    compactor = LakeCompactor(
        objects=FolderLake(root=root), parquet=DuckDBParquetWork(), now=lambda: START + timedelta(days=4)
    )
    compactor.compact()  # closed days compacted and a snapshot: erasure must reach those too
    eve_rule = {"attr": "profile.attributes.note", "eq": EVE_SECRET}
    finn_rule = {"attr": "profile.attributes.note", "eq": FINN_SECRET}
    assert (count(root, eve_rule), count(root, finn_rule)) == (1, 1)
    before = everything(root, CUSTOMERS.name)
    assert any(
        r["customer_id"] == "eve" and r["birthday_md"] == "03-17" and r["reachable_email"] for r in before
    )

    compactor.erase(["eve"])

    for kind in (CUSTOMERS.name, EVENTS.name):
        rows = everything(root, kind)
        assert rows and not [r for r in rows if r["customer_id"] == "eve"], kind
        text = "\n".join(str(r) for r in rows)
        assert EVE_SECRET not in text and "03-17" not in text, kind
        assert FINN_SECRET in text, kind  # the other customer keeps every facet
    assert (count(root, eve_rule), count(root, finn_rule)) == (0, 1)
    assert (
        count(root, {"event": {"type": "view", "within": "P30D", "where": {"page": f"{EVE_SECRET}-page"}}})
        == 0
    )
