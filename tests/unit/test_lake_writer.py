"""The lake writer over sample stream records: every change appended as a row, the current state a
view, poison skipped alone, and nothing secret or personal in any file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from loyalty.adapters.lake import FolderLake
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.bootstrap import Container, use_container
from loyalty.jobs import write_lake
from loyalty.services.lake import LakeWriter
from loyalty.settings import Settings
from loyalty_local import events
from loyalty_local.gateway import LambdaContext

SECRETS_AND_PERSONAL = (
    "jane@example.com",  # an email (profile link, message recipient, link item)
    "Jane",
    "Doe",
    "1990-04-01",  # the birthday: the lake keeps its month and day only
    "PIN 123456",
    "Your e-card",
    "pbkdf2",  # a PIN hash
    "deadbeef",  # an API key hash
    "6280001234567890",  # a gift card number (an account's key)
    "SECRET-CODE",  # a coupon code on a sale
    "CustomerEnrolled",  # the outbox
    "Sale 12.50 EUR",  # the timeline entry
)


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Path]:
    container = Container(Settings(table_name="unit", api_key_pepper_secret="p", cursor_key_secret="c"))
    container.lake_writer = LakeWriter(files=FolderLake(root=tmp_path))
    use_container(container)
    yield tmp_path
    use_container(None)


def rows(root: Path, kind: str) -> list[dict[str, Any]]:
    found = sorted(root.glob(f"{kind}/*/*.parquet"))
    if not found:
        return []
    relation = duckdb.sql(
        f"SELECT * FROM read_parquet({[str(f) for f in found]}, hive_partitioning = true, "
        "hive_types = {'dt': VARCHAR}) ORDER BY change_seq"
    )
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def test_every_change_is_a_row_and_the_poison_record_is_skipped_alone(lake: Path) -> None:
    result = write_lake(events.sample(events.TABLE_STREAM_LAKE), LambdaContext("lake"))

    assert result["skipped"] == 1  # the sale whose total is not money; the records after it are written
    assert result["ignored"] == 2  # the key hash and the link
    customers = rows(lake, "customers")
    assert [(r["op"], r["member"], r["dt"]) for r in customers] == [
        ("INSERT", False, "2026-12-02"),
        ("MODIFY", True, "2026-12-04"),
    ]
    transactions = rows(lake, "transactions")
    assert [(r["op"], r["transaction_id"], str(r["total"])) for r in transactions] == [
        ("INSERT", "T1", "12.50"),
        ("REMOVE", "T1", "12.50"),  # a removal carries the old image
    ]
    lines = rows(lake, "transaction_lines")
    assert [(r["op"], r["line_id"], str(r["unit_price"])) for r in lines] == [
        ("INSERT", "1", "3.50"),
        ("INSERT", "2", "5.50"),
        ("REMOVE", "1", "3.50"),
        ("REMOVE", "2", "5.50"),
    ]
    messages = rows(lake, "messages")
    assert [(r["op"], r["status"]) for r in messages] == [("INSERT", "sent"), ("EXPIRE", "sent")]
    (account,) = rows(lake, "accounts")
    assert str(account["balance"]) == "25.00" and len(account["change_key"]) == 64  # a digest, not the card
    assert not list(lake.glob("api_key*")) and not list(lake.glob("link*"))

    everything = "\n".join(
        str(r)
        for kind in ("customers", "transactions", "transaction_lines", "messages", "accounts")
        for r in rows(lake, kind)
    )
    for value in SECRETS_AND_PERSONAL:
        assert value not in everything, value


def test_a_profile_carries_the_facets_segments_read_and_no_contact_data(lake: Path) -> None:
    """Consents, reachability (decided from links and the address, which stay out), the birthday's
    month-day, free attributes as JSON text; the kinds holding them are marked personal, so
    erasure rewrites their files."""
    from loyalty.services.lake import CUSTOMERS, EVENTS, KINDS

    write_lake(events.sample(events.TABLE_STREAM_LAKE), LambdaContext("lake"))
    first = rows(lake, "customers")[0]
    assert (first["consent_email"], first["consent_sms"], first["consent_mail"]) == (True, False, False)
    assert (first["reachable_email"], first["reachable_sms"], first["reachable_mail"]) == (True, False, False)
    assert first["birthday_md"] == "04-01"
    assert first["attributes"] == '{"shoe":"42"}'
    assert first["price_groups"] == [] and first["badges"] == []
    assert first["score_r"] is None
    assert {k.name for k in KINDS if k.personal} == {CUSTOMERS.name, EVENTS.name}


def test_the_types_are_the_ones_athena_reads(lake: Path) -> None:
    write_lake(events.sample(events.TABLE_STREAM_LAKE), LambdaContext("lake"))
    (path,) = lake.glob("transactions/dt=2026-12-02/*.parquet")
    schema = {
        name: (logical or "", physical or "")
        for name, logical, physical in duckdb.sql(
            f"SELECT name, logical_type::VARCHAR, type FROM parquet_schema('{path}')"
        ).fetchall()
    }
    assert "Decimal" in schema["total"][0] or "DECIMAL" in schema["total"][0].upper()
    assert "MILLIS" in schema["occurred_at"][0].upper()
    assert schema["changed_at"] == schema["occurred_at"]


def test_current_state_is_the_latest_image_per_key_and_removals_remove(lake: Path) -> None:
    write_lake(events.sample(events.TABLE_STREAM_LAKE), LambdaContext("lake"))
    queries = DuckDBQueries.over_folder(lake)
    (customer,) = queries.run("SELECT member, enrolled_at FROM customers_current")
    assert customer["member"] is True and str(customer["enrolled_at"]).startswith("2026-12-03 09:00")
    assert queries.run("SELECT * FROM transactions_current") == []
    assert queries.run("SELECT * FROM messages_current") == []  # expired by TTL
    assert queries.run("SELECT count(*) AS n FROM coupons")[0]["n"] == 0  # a kind with no file yet


def test_a_retried_batch_overwrites_its_files_and_duplicates_nothing(lake: Path) -> None:
    batch = events.sample(events.TABLE_STREAM_LAKE)
    write_lake(batch, LambdaContext("lake"))
    files = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))
    write_lake(batch, LambdaContext("lake"))
    assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet")) == files
    assert len(rows(lake, "transactions")) == 2


def test_a_record_without_its_stream_fields_is_skipped_not_fatal(lake: Path) -> None:
    batch = events.sample(events.TABLE_STREAM_LAKE)
    del batch["Records"][0]["dynamodb"]["SequenceNumber"]
    result = write_lake(batch, LambdaContext("lake"))
    assert result["skipped"] == 2
    assert [r["op"] for r in rows(lake, "customers")] == ["MODIFY"]


def test_lines_stored_under_short_names_reach_the_lake_under_their_own() -> None:
    """A sale stores its lines as {"i", "s", "c", "q", "u", "d"} (adapters.transactions): the lake
    wrote them as rows of nulls, so no purchase could be looked at by sku or category."""
    from datetime import UTC, datetime

    from loyalty.services.lake import TRANSACTION_LINES, StreamChange, change_rows

    image = {
        "pk": "TXN#ams-01#T9",
        "sk": "TXN",
        "type": "transaction",
        "store_id": "ams-01",
        "transaction_id": "T9",
        "txn_type": "sale",
        "occurred_at": "2026-12-02T10:00:00Z",
        "total": "6.50",
        "lines": [{"i": "1", "s": "ESP", "c": "coffee", "q": "2", "u": "3.50", "d": "0.50"}],
    }
    change = StreamChange(
        "INSERT", {"pk": image["pk"], "sk": "TXN"}, image, None, "7", datetime(2026, 12, 2, tzinfo=UTC)
    )
    (line,) = [row for kind, row in change_rows(change) if kind is TRANSACTION_LINES]
    assert (line["line_id"], line["sku"], line["category"]) == ("1", "ESP", "coffee")
    assert (line["quantity"], line["unit_price"], line["discount"]) == ("2.00", "3.50", "0.50")
    assert line["change_key"].endswith("|1")
