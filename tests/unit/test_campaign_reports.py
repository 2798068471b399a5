"""The campaign report over a small lake built from table items, with hand-computed answers, on the
three layouts the reports keep (change rows only, partly compacted, compacted); each statement
parsed as Trino (Athena's dialect) and run by DuckDB.

The campaign `spring` (created 1 Jan 2026), receipts on 10 January 10:00 unless said:
- c1 actioned: a coupon (SPRING-1, redeemed since), 50 points, an email; buys 20.00 on the 12th;
- c2 actioned: 5.00 promotional cash, an SMS; buys 10.00 on 20 February (41 days later);
- c3 actioned: a coupon (SPRING-3, unused), an email; buys 30.00 on the 11th and returns 10.00 on
  the 15th; actioned again on the 20th (a second run: 50 points), counted once, from the first;
- c4 control: buys 8.00 on the 13th; c5 control: buys nothing (an `other` campaign actioned her);
- c6 control: bought 9.00 on the 9th, before her receipt.
Over 30 days: treatment 3 customers, 2 converted, revenue 40.00; control 3, 1, 8.00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlglot

from loyalty.adapters.lake import FolderLake
from loyalty.adapters.lake_compaction import DuckDBParquetWork
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.domain.campaigns import Campaign
from loyalty.domain.errors import CampaignNotFound, ValidationFailed
from loyalty.domain.programme import default_programme
from loyalty.domain.segments import parse_rule
from loyalty.domain.uplift import Group, absolute_uplift, relative_uplift, revenue_difference
from loyalty.services import campaign_report_sql, segment_sql
from loyalty.services.campaign_reports import CampaignReports
from loyalty.services.compaction import LakeCompactor
from loyalty.services.lake import CAMPAIGN_ACTIONS, LakeWriter, kind_of
from tests.unit.test_report_sql import Stream, at, customer, txn

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def campaign(campaign_id: str = "spring", **changes: Any) -> Campaign:
    body: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": "Spring",
        "trigger": {"type": "manual"},
        "audience": {"segment_id": "regulars"},
        "actions": [{"type": "points", "points": 50}],
        "control_group": {"percent": 30},
        "status": "active",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        **changes,
    }
    return Campaign.model_validate(body)


@dataclass
class Catalogue:
    campaigns: dict[str, Campaign]

    def get(self, campaign_id: str) -> Campaign:
        if campaign_id not in self.campaigns:
            raise CampaignNotFound(f"no campaign {campaign_id!r}")
        return self.campaigns[campaign_id]

    def triggered(self) -> list[Campaign]:
        return []


@dataclass
class Rules:
    rules: dict[str, Any]

    def rule(self, segment_id: str) -> Any | None:
        return self.rules.get(segment_id)


@dataclass
class Clock:
    moment: datetime = NOW

    def now(self) -> datetime:
        return self.moment


def receipt(
    customer_id: str, outcome: str, when: str, occasion: str = "run:r1", **given: Any
) -> dict[str, Any]:
    campaign_id = given.pop("campaign_id", "spring")
    return {
        "pk": f"CAMPACT#{campaign_id}#{customer_id}",
        "sk": f"OCC#{occasion}",
        "type": "campaign_action",
        "campaign_id": campaign_id,
        "customer_id": customer_id,
        "occasion": occasion,
        "run_id": occasion.removeprefix("run:"),
        "outcome": outcome,
        "at": when,
        **given,
    }


def coupon(code: str, customer_id: str, uses: int) -> dict[str, Any]:
    return {
        "pk": f"COUPON#{code}", "sk": "COUPON", "type": "coupon", "code": code, "offer_id": "spring-10",
        "customer_id": customer_id, "issued_at": "2026-01-10T10:00:00Z",
        "valid_until": "2026-02-10T10:00:00Z",
        "max_uses": 1, "uses": uses, "source": "campaign:spring", "status": "active", "version": 1 + uses,
    }  # fmt: skip


LAYOUTS = {
    "changes": None,
    "compacted through 12 Jan": "2026-01-14T00:00:00",
    "compacted": "2026-03-10T00:00:00",
}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def reports(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> CampaignReports:
    root = tmp_path_factory.mktemp("lake")
    s = Stream()
    for cid in ("c1", "c2", "c3", "c4", "c5", "c6"):
        s.put("2026-01-02T09:00:00", customer(cid, True, "2026-01-02T09:00:00Z", "ams-01", 1))
    s.put(
        "2026-01-09T12:00:00", txn("ams-01", "T6", "sale", "2026-01-09T12:00:00Z", "c6", True, "9.00", "pos")
    )
    s.put("2026-01-10T10:00:00", receipt("c1", "actioned", "2026-01-10T10:00:00Z", coupon_code="SPRING-1",
                                        points=50, messages={"email": "m1"}))  # fmt: skip
    s.put("2026-01-10T10:00:00", coupon("SPRING-1", "c1", 0))
    s.put("2026-01-10T10:00:00", receipt("c2", "actioned", "2026-01-10T10:00:00Z", amount="5.00",
                                        messages={"sms": "m2"}))  # fmt: skip
    s.put("2026-01-10T10:00:00", receipt("c3", "actioned", "2026-01-10T10:00:00Z", coupon_code="SPRING-3",
                                        messages={"email": "m3"}))  # fmt: skip
    s.put("2026-01-10T10:00:00", coupon("SPRING-3", "c3", 0))
    for cid in ("c4", "c5", "c6"):
        s.put("2026-01-10T10:00:00", receipt(cid, "control", "2026-01-10T10:00:00Z"))
    s.put("2026-01-10T10:00:00", receipt("c5", "actioned", "2026-01-10T10:00:00Z", campaign_id="other",
                                        points=999))  # fmt: skip
    s.put("2026-01-10T10:00:00", {"pk": "CAMPACT#spring#c1", "sk": "LAST", "at": "2026-01-10T10:00:00Z"})
    s.put(
        "2026-01-11T12:00:00", txn("ams-01", "T3", "sale", "2026-01-11T12:00:00Z", "c3", True, "30.00", "pos")
    )
    s.put(
        "2026-01-12T12:00:00", txn("ams-01", "T1", "sale", "2026-01-12T12:00:00Z", "c1", True, "20.00", "pos")
    )
    s.put("2026-01-12T12:30:00", coupon("SPRING-1", "c1", 1), "MODIFY")
    s.put(
        "2026-01-13T12:00:00", txn("ams-01", "T4", "sale", "2026-01-13T12:00:00Z", "c4", True, "8.00", "pos")
    )
    s.put(
        "2026-01-15T12:00:00",
        txn("ams-01", "T3R", "return", "2026-01-15T12:00:00Z", "c3", True, "10.00", "pos"),
    )
    s.put("2026-01-20T10:00:00", receipt("c3", "actioned", "2026-01-20T10:00:00Z", "run:r2", points=50))
    s.put(
        "2026-02-20T12:00:00", txn("ams-01", "T2", "sale", "2026-02-20T12:00:00Z", "c2", True, "10.00", "pos")
    )
    LakeWriter(files=FolderLake(root=root)).write(s.changes)
    compacted_at = LAYOUTS[request.param]
    if compacted_at is not None:
        done = LakeCompactor(
            objects=FolderLake(root=root), parquet=DuckDBParquetWork(), now=lambda: at(compacted_at)
        ).compact()
        assert done.outcome == "compacted"
    return CampaignReports(
        queries=DuckDBQueries.over_folder(root),
        campaigns=Catalogue({"spring": campaign(), "other": campaign("other")}),
        segments=Rules({"regulars": {"attr": "member", "eq": True}}),
        programme=default_programme,
        clock=Clock(),
    )


def test_receipts_are_their_own_kind_and_the_latest_marker_is_left_out() -> None:
    assert kind_of("CAMPACT#spring#c1", "OCC#run:r1", {}) is CAMPAIGN_ACTIONS
    assert kind_of("CAMPACT#spring#c1", "LAST", {"at": "x"}) is None


def test_treatment_against_control_over_30_days(reports: CampaignReports) -> None:
    got = reports.report("spring", 30)
    assert (got.treatment.customers, got.treatment.converted) == (3, 2)
    assert (got.control.customers, got.control.converted) == (3, 1)
    assert (got.treatment.conversion_rate, got.control.conversion_rate) == (
        Decimal("0.6667"),
        Decimal("0.3333"),
    )
    assert (got.treatment.revenue, got.control.revenue) == (Decimal("40.00"), Decimal("8.00"))
    assert (got.treatment.revenue_per_customer, got.control.revenue_per_customer) == (
        Decimal("13.33"), Decimal("2.67"),
    )  # fmt: skip
    treatment = Group(3, 2, Decimal("40.00"), Decimal("800"))  # 20² + 0² + 20²
    control = Group(3, 1, Decimal("8.00"), Decimal("64"))
    assert got.uplift.absolute == absolute_uplift(treatment, control)
    assert round(got.uplift.absolute.value or 0, 4) == 0.3333
    assert got.uplift.relative == relative_uplift(treatment, control)
    assert got.uplift.revenue_per_customer == revenue_difference(treatment, control)
    cost = got.cost
    assert (cost.points, cost.amount, cost.coupons_issued, cost.coupons_redeemed) == (
        100,
        Decimal("5.00"),
        2,
        1,
    )
    assert cost.messages == {"email": 2, "sms": 1, "mail": 0, "api": 0}
    assert got.as_of == datetime(2026, 2, 20, 12, tzinfo=UTC)


def test_a_longer_window_counts_the_later_sale(reports: CampaignReports) -> None:
    got = reports.report("spring", 60)
    assert (got.treatment.converted, got.treatment.revenue) == (3, Decimal("50.00"))
    assert (got.control.converted, got.control.revenue) == (1, Decimal("8.00"))


def test_a_campaign_without_control_receipts_has_null_uplift_with_a_reason(reports: CampaignReports) -> None:
    got = reports.report("other", 30)
    assert (got.treatment.customers, got.control.customers) == (1, 0)
    assert got.control.conversion_rate is None and got.control.revenue_per_customer is None
    assert got.uplift.absolute.value is None and got.uplift.absolute.reason == "no_control"
    assert got.cost.points == 999


def test_unknown_campaigns_and_bad_windows_are_refused(reports: CampaignReports) -> None:
    with pytest.raises(CampaignNotFound):
        reports.report("nope", 30)
    for bad in (0, 366):
        with pytest.raises(ValidationFailed) as refused:
            reports.report("spring", bad)
        assert refused.value.errors[0].loc == ("query", "window_days")


def test_the_statements_parse_as_trino_and_run_in_duckdb(reports: CampaignReports) -> None:
    manifest = reports.queries.manifest()
    report = campaign_report_sql.report("spring", 30, date(2026, 1, 1), manifest)
    backtest = campaign_report_sql.backtest(
        parse_rule({"purchased": {"within": "P30D"}}),
        datetime(2026, 1, 20, tzinfo=UTC), 30, default_programme(),
        campaign_id="spring", control_percent=30, members_only=True, manifest=manifest,
    )  # fmt: skip
    for statement in (report, backtest):
        assert sqlglot.parse_one(statement, read="trino") is not None
        trino = segment_sql.render(statement, "trino")
        assert "control_bucket" not in trino.lower()
        sqlglot.parse_one(trino, read="trino")
        reports.queries.run(segment_sql.render(statement, "duckdb"))
