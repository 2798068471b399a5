"""Offers naming tiers, stores or price groups that do not exist are refused, and a new offer may
leave its id out (issue 12, item 8)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.e2e.conftest import ADMIN_KEY, Api, assert_problem


def sku() -> str:
    return "REF-" + uuid.uuid4().hex[:10]  # a SKU no sale or cart of another test names


def offer(**extra: Any) -> dict[str, Any]:
    return {"name": "5% off", "effect": {"type": "percent_off", "value": "5", "skus": [sku()]}, **extra}


def test_a_new_offer_without_an_id_gets_one(api: Api) -> None:
    made = api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer())
    assert made.status_code == 201, made.text
    offer_id = made.json()["offer_id"]
    assert re.fullmatch(r"[0-9A-Z]{26}", offer_id)
    fetched = api.call("GET", f"/v1/admin/offers/{offer_id}", ADMIN_KEY)
    assert fetched.status_code == 200 and fetched.json()["name"] == "5% off"
    another = api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer())
    assert another.status_code == 201 and another.json()["offer_id"] != offer_id

    # A PUT takes its id from the path when the body leaves it out.
    replaced = api.call("PUT", f"/v1/admin/offers/{offer_id}", ADMIN_KEY, json=offer(name="6% off"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["offer_id"] == offer_id and replaced.json()["version"] == 2


def test_unknown_tiers_stores_and_price_groups_are_refused_naming_each(api: Api) -> None:
    body = offer(
        offer_id="ref-" + uuid.uuid4().hex[:10],
        audience={"tiers": ["silver", "platinum"], "price_groups": ["no-such-group"]},
        where={"stores": ["ams-01", "nowhere"]},
    )
    problem = assert_problem(
        api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=body), 422, "validation-failed"
    )
    assert sorted(e["loc"] for e in problem["errors"]) == [
        ["body", "audience", "price_groups", 0],
        ["body", "audience", "tiers", 1],
        ["body", "where", "stores", 1],
    ]
    assert api.call("GET", "/v1/admin/offers?limit=200", ADMIN_KEY).json()["items"] is not None

    group = "pg-" + uuid.uuid4().hex[:10]
    created = api.call(
        "PUT", f"/v1/admin/price-groups/{group}", ADMIN_KEY, json={"group_id": group, "name": "G"}
    )
    assert created.status_code in (200, 201), created.text
    good = offer(
        offer_id="ref-" + uuid.uuid4().hex[:10],
        audience={"tiers": ["silver", "gold"], "price_groups": [group]},
        where={"stores": ["ams-01", "web-nl"]},
    )
    made = api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=good)
    assert made.status_code == 201, made.text

    path = f"/v1/admin/offers/{good['offer_id']}"
    stale = {**good, "audience": {"tiers": ["platin"]}}
    problem = assert_problem(api.call("PUT", path, ADMIN_KEY, json=stale), 422, "validation-failed")
    assert [e["loc"] for e in problem["errors"]] == [["body", "audience", "tiers", 0]]
    assert api.call("GET", path, ADMIN_KEY).json()["audience"]["tiers"] == ["silver", "gold"]  # unchanged
    paused = api.call("POST", f"{path}/pause", ADMIN_KEY)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
