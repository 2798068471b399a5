"""Reports over the data lake, over HTTP: sales reach the lake through the stream and the reports
within 60 seconds; bad parameters are 422; an erased customer has nothing personal in the lake."""

from __future__ import annotations

import random
import time
import uuid
from datetime import date, timedelta
from typing import Any

import boto3
import duckdb
import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email
from tests.e2e.test_transactions_http import coffee, sale

FRESHNESS_SECONDS = 60


def a_day_of_our_own() -> date:
    """Old sales are taken (they earn nothing): a random past day no other test sells on."""
    return date(2001, 1, 1) + timedelta(days=random.randrange(7000))


def sell(api: Api, key: str, day: date, customer: dict[str, Any] | None, price: str) -> None:
    body = sale(customer, [coffee("1", price)], occurred_at=f"{day.isoformat()}T12:00:00Z")
    response = api.call("POST", "/v1/transactions", key, json=body)
    assert response.status_code == 201, response.text


def report(api: Api, path: str, **params: str) -> Any:
    response = api.call("GET", f"/v1/admin/reports/{path}", ADMIN_KEY, params=params)
    assert response.status_code == 200, response.text
    return response


def test_sales_of_members_non_members_and_anonymous_reach_the_reports_within_60_s(api: Api) -> None:
    day = a_day_of_our_own()
    member = api.enrol(links=[{"type": "email", "value": unique_email()}])
    guest = api.enrol(links=[{"type": "email", "value": unique_email()}], member=False)
    sell(api, POS_KEY, day, {"customer_id": member["customer_id"]}, "10.00")
    sell(api, POS_KEY, day, {"customer_id": guest["customer_id"]}, "4.00")
    sell(api, POS_KEY, day, None, "2.50")
    sell(api, WEB_KEY, day, {"customer_id": member["customer_id"]}, "20.00")
    sell(api, WEB_KEY, day, None, "1.00")
    sold_at = time.monotonic()

    expected = {
        "ams-01": {
            "transactions": 3,
            "revenue": "16.50",
            "customers": 2,
            "members": 1,
            "non_members": 1,
            "anonymous": 1,
        },
        "web-nl": {
            "transactions": 2,
            "revenue": "21.00",
            "customers": 1,
            "members": 1,
            "non_members": 0,
            "anonymous": 1,
        },
    }
    params = {"from": day.isoformat(), "to": day.isoformat(), "interval": "day", "by": "store"}
    while True:
        rows = report(api, "activity", **params).json()["rows"]
        seen = {
            r["store"]: {
                k: r[k]
                for k in ("transactions", "revenue", "customers", "members", "non_members", "anonymous")
            }
            for r in rows
        }
        if seen == expected or time.monotonic() - sold_at > FRESHNESS_SECONDS:
            break
        time.sleep(1)
    assert seen == expected
    assert all(r["period"] == day.isoformat() for r in rows)

    body = report(api, "activity", **params).json()
    assert body["as_of"] is not None and body["by"] == "store" and body["interval"] == "day"

    by_channel = report(api, "activity", **{**params, "by": "channel"}).json()["rows"]
    assert {r["channel"]: r["transactions"] for r in by_channel} == {"pos": 3, "online": 2}

    groups = report(api, "members-vs-non-members", **{"from": day.isoformat(), "to": day.isoformat()}).json()
    got = {r["group"]: (r["transactions"], r["revenue"], r["customers"]) for r in groups["rows"]}
    assert got == {"members": (2, "30.00", 1), "non_members": (1, "4.00", 1), "anonymous": (2, "3.50", 0)}
    share = {r["group"]: r["share_of_revenue"] for r in groups["rows"]}
    assert share["members"] == "0.8000"  # 30 of 37.50

    as_csv = report(api, "activity", **params, format="csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.strip().splitlines()
    assert lines[0].startswith("period,store,transactions,revenue")
    assert sorted(lines[1:]) == sorted(
        [f"{day.isoformat()},ams-01,3,16.50,2,1,1,1,0,0,0", f"{day.isoformat()},web-nl,2,21.00,1,1,0,1,0,0,0"]
    )

    cohorts = report(api, "cohorts", by="enrolment_month").json()
    assert cohorts["by"] == "enrolment_month" and cohorts["as_of"] is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"from": "2016-01-01", "to": "2026-01-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-01-31", "by": "country"}, "by"),
        ({"from": "2026-01-01", "to": "2026-01-31", "interval": "year"}, "interval"),
        ({"from": "yesterday", "to": "2026-01-31"}, "from"),
        ({"to": "2026-01-31"}, "from"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
        ({"from": "2026-01-01", "to": "9999-12-31"}, "to"),
    ],
)
def test_bad_report_parameters_are_422_naming_the_field(api: Api, params: dict[str, str], field: str) -> None:
    problem = assert_problem(
        api.call("GET", "/v1/admin/reports/activity", ADMIN_KEY, params=params), 422, "validation-failed"
    )
    assert any(field in [str(part) for part in error["loc"]] for error in problem["errors"]), problem


def test_cohorts_refuse_another_grouping(api: Api) -> None:
    problem = assert_problem(
        api.call("GET", "/v1/admin/reports/cohorts", ADMIN_KEY, params={"by": "store"}),
        422,
        "validation-failed",
    )
    assert any("by" in error["loc"] for error in problem["errors"])


def test_an_erased_customer_has_nothing_personal_in_the_lake(api: Api) -> None:
    assert api.runtime is not None and api.runtime.resources is not None
    email, name, phone = unique_email(), f"Zelda{uuid.uuid4().hex[:8]}", "+31612345678"
    # A free attribute reaches the lake (segments read it): a value of hers alone to look for.
    marker = f"zz{uuid.uuid4().hex[:12]}"
    jane = api.enrol(
        links=[{"type": "email", "value": email}, {"type": "phone", "value": phone}],
        profile={
            "first_name": name,
            "last_name": "Lakeside",
            "birthday": "1990-04-01",
            "attributes": {"nickname": marker},
        },
    )
    sell(api, POS_KEY, a_day_of_our_own(), {"customer_id": jane["customer_id"]}, "5.00")
    bucket = api.runtime.resources.lake_bucket
    s3 = boto3.session.Session().client("s3")

    def lake_text() -> dict[str, str]:
        return {
            item["Key"]: dump(s3, bucket, item["Key"], item["ETag"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])
            if item["Key"].endswith(".parquet")
        }

    # Her profile (with the sale's counters) and her sale reach the lake first, so the erasure has
    # rows of hers to rewrite. A stream record older than the erasure that reaches the lake only
    # after the rewrite waits for the compaction of its day (docs/design.md says so).
    deadline = time.monotonic() + FRESHNESS_SECONDS
    while time.monotonic() < deadline:
        files = lake_text()
        profile_rows = [
            line
            for k, text in files.items()
            if k.startswith("customers/")
            for line in text.splitlines()
            if marker in line
        ]
        sale_arrived = any(jane["customer_id"] in files[k] for k in files if k.startswith("transactions/"))
        if sale_arrived and any(" 5.00 " in f" {line} " for line in profile_rows):
            break
        time.sleep(1)
    else:
        pytest.fail("her profile and sale did not reach the lake within 60 s")
    erased = api.call("DELETE", f"/v1/customers/{jane['customer_id']}", ADMIN_KEY)
    assert erased.status_code in (200, 202, 204), erased.text

    # The erasure reached the lake: the compactor recorded it, and no file (change files and
    # snapshots) holds her personal values any more.
    deadline = time.monotonic() + FRESHNESS_SECONDS
    while time.monotonic() < deadline:
        files = lake_text()
        recorded = s3.list_objects_v2(Bucket=bucket, Prefix=f"_lake/erased/{jane['customer_id']}")
        if recorded.get("KeyCount") and not any(marker in text for text in files.values()):
            break
        time.sleep(1)
    else:
        pytest.fail("the erasure did not reach the lake's customers and events within 60 s")
    everything = "\n".join(files.values())
    assert jane["customer_id"] in everything  # the pseudonymous id and the sale are there
    for personal in (marker, email, name, "Lakeside", "1990-04-01", phone, phone.lstrip("+"), jane["card"]):
        assert personal not in everything, personal


def dump(s3: Any, bucket: str, key: str, etag: str, _cache: dict[tuple[str, str], str] = {}) -> str:  # noqa: B006
    """Every value of a Parquet file as text (cached by key and version: an erasure rewrites files)."""
    if (key, etag) not in _cache:
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
            s3.download_fileobj(bucket, key, f)
            f.flush()
            rows = duckdb.sql(f"SELECT * FROM read_parquet('{f.name}', hive_partitioning = false)").fetchall()
        _cache[key, etag] = "\n".join(" ".join("" if v is None else str(v) for v in row) for row in rows)
    return _cache[key, etag]
