"""The campaign report and the backtest over HTTP, with a marketer's key: receipts and sales reach
the lake through the stream, and the report counts them within 60 seconds.

The campaign's definition and its receipts are written to the table as the campaign service and
the campaign actor keep them (`CAMPAIGN#<id>` / `DEF`; `CAMPACT#<campaign>#<customer>` /
`OCC#<occasion>`): this test reads what they write, whoever writes it.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from loyalty.adapters.dynamo import serialize
from loyalty_local.emulators import REGION
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api, assert_problem, unique_email
from tests.e2e.test_transactions_http import coffee, sale

FRESHNESS_SECONDS = 60


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def put(api: Api, item: dict[str, Any]) -> None:
    assert api.runtime is not None and api.runtime.resources is not None
    dynamodb = boto3.session.Session(region_name=REGION).client("dynamodb")
    dynamodb.put_item(TableName=api.runtime.resources.table_name, Item=serialize(item))


def save_campaign(api: Api, campaign_id: str, created: datetime, **changes: Any) -> None:
    definition = {
        "campaign_id": campaign_id,
        "name": "Report e2e",
        "trigger": {"type": "manual"},
        "actions": [{"type": "points", "points": 25}],
        "control_group": {"percent": 50},
        "status": "active",
        "version": 1,
        "created_at": iso(created),
        "updated_at": iso(created),
        **changes,
    }
    put(api, {"pk": f"CAMPAIGN#{campaign_id}", "sk": "DEF", "type": "campaign", **definition})


def save_receipt(
    api: Api, campaign_id: str, customer_id: str, outcome: str, at: datetime, **given: Any
) -> None:
    put(
        api,
        {
            "pk": f"CAMPACT#{campaign_id}#{customer_id}",
            "sk": "OCC#run:r1",
            "type": "campaign_action",
            "campaign_id": campaign_id,
            "customer_id": customer_id,
            "occasion": "run:r1",
            "run_id": "r1",
            "outcome": outcome,
            "at": iso(at),
            **given,
        },
    )


@pytest.fixture(scope="module")
def marketer(api: Api) -> str:
    body = {"kind": "marketer", "name": "campaign report e2e"}
    response = api.call("POST", "/v1/admin/api-keys", ADMIN_KEY, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


def test_a_marketer_reads_treatment_against_control_and_its_cost(api: Api, marketer: str) -> None:
    campaign_id = f"rep-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    save_campaign(api, campaign_id, now - timedelta(days=1))
    people = [api.enrol(links=[{"type": "email", "value": unique_email()}])["customer_id"] for _ in range(5)]
    acted = now - timedelta(hours=3)
    # Treatment: three actioned, two of whom buy; control: two held out, one of whom buys.
    for n, customer_id in enumerate(people[:3]):
        save_receipt(api, campaign_id, customer_id, "actioned", acted, points=25,
                     messages={"email": f"m{n}"})  # fmt: skip
    for customer_id in people[3:]:
        save_receipt(api, campaign_id, customer_id, "control", acted)
    for customer_id, price in ((people[0], "10.00"), (people[1], "6.00"), (people[3], "4.00")):
        response = api.call(
            "POST", "/v1/transactions", POS_KEY, json=sale({"customer_id": customer_id}, [coffee("1", price)])
        )
        assert response.status_code == 201, response.text
    written = time.monotonic()

    path = f"/v1/admin/reports/campaigns/{campaign_id}"
    expected = ((3, 2, "16.00"), (2, 1, "4.00"))
    while True:
        response = api.call("GET", path, marketer, params={"window_days": "30"})
        assert response.status_code == 200, response.text
        body = response.json()
        got = tuple(
            (body[g]["customers"], body[g]["converted"], body[g]["revenue"]) for g in ("treatment", "control")
        )
        if got == expected or time.monotonic() - written > FRESHNESS_SECONDS:
            break
        time.sleep(1)
    assert got == expected
    assert (body["treatment"]["conversion_rate"], body["control"]["conversion_rate"]) == ("0.6667", "0.5000")
    assert (body["treatment"]["revenue_per_customer"], body["control"]["revenue_per_customer"]) == (
        "5.33",
        "2.00",
    )
    absolute = body["uplift"]["absolute"]
    assert absolute["value"] == "0.1667" and absolute["reason"] is None
    assert float(absolute["ci_low"]) < 0.1667 < float(absolute["ci_high"])  # two and three customers: wide
    assert body["uplift"]["relative"]["value"] == "0.3333"
    assert body["cost"] == {
        "points": 75,
        "amount": "0.00",
        "coupons": {"issued": 0, "redeemed": 0},
        "messages": {"email": 3, "sms": 0, "mail": 0, "api": 0},
    }
    assert body["as_of"] is not None and body["window_days"] == 30

    as_csv = api.call("GET", path, marketer, params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.strip().splitlines() == [
        "group,customers,converted,conversion_rate,revenue,revenue_per_customer",
        "treatment,3,2,0.6667,16.00,5.33",
        "control,2,1,0.5000,4.00,2.00",
    ]


def test_the_report_refuses_an_unknown_campaign_and_a_bad_window(api: Api, marketer: str) -> None:
    assert_problem(
        api.call("GET", "/v1/admin/reports/campaigns/nope-none", marketer), 404, "campaign-not-found"
    )
    campaign_id = f"rep-{uuid.uuid4().hex[:10]}"
    save_campaign(api, campaign_id, datetime.now(UTC))
    for bad in ("0", "366", "soon"):
        problem = assert_problem(
            api.call(
                "GET", f"/v1/admin/reports/campaigns/{campaign_id}", marketer, params={"window_days": bad}
            ),
            422,
            "validation-failed",
        )
        assert [e["loc"] for e in problem["errors"]] == [["query", "window_days"]], problem


def test_a_marketer_backtests_a_campaign_over_the_lake(api: Api, marketer: str) -> None:
    campaign_id = f"bt-{uuid.uuid4().hex[:10]}"
    save_campaign(api, campaign_id, datetime.now(UTC), audience={"segment_id": None, "members_only": True})
    path = f"/v1/admin/campaigns/{campaign_id}/backtest"
    as_of = datetime.now(UTC) - timedelta(days=40)
    response = api.call("POST", path, marketer, json={"as_of": iso(as_of), "window_days": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["campaign_id"] == campaign_id and body["segment_id"] is None and body["window_days"] == 30
    # Everything in this platform was written in the last hours: nobody was a customer 40 days ago.
    assert body["audience"] == 0 == body["treatment"]["customers"] + body["control"]["customers"]
    assert body["treatment"]["conversion_rate"] is None

    as_csv = api.call("POST", path, marketer, json={"as_of": iso(as_of)}, params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.strip().splitlines() == [
        "group,customers,converted,conversion_rate,revenue,revenue_per_customer",
        "treatment,0,0,,0.00,",
        "control,0,0,,0.00,",
    ]

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    for request, field in (
        ({"as_of": iso(tomorrow), "window_days": 1}, "as_of"),
        ({"as_of": iso(datetime.now(UTC) - timedelta(days=3)), "window_days": 7}, "window_days"),
        ({"as_of": iso(as_of), "window_days": 0}, "window_days"),
        ({"window_days": 7}, "as_of"),
    ):
        problem = assert_problem(api.call("POST", path, marketer, json=request), 422, "validation-failed")
        assert [e["loc"] for e in problem["errors"]] == [["body", field]], problem
    assert_problem(
        api.call("POST", "/v1/admin/campaigns/nope-none/backtest", marketer, json={"as_of": iso(as_of)}),
        404,
        "campaign-not-found",
    )
