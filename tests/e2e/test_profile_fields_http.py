"""Issue 18 item 9: the profile's address, country, time zone and favourite store, over HTTP."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from loyalty_local.emulators import REGION
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email

ADDRESS = {
    "line1": "Damrak 1",
    "line2": "3rd floor",
    "postal_code": "1012 LG",
    "city": "Amsterdam",
    "country": "NL",
}


def _enrol_body(**profile: Any) -> dict[str, Any]:
    return {"links": [{"type": "email", "value": unique_email()}], "profile": profile}


def _error_locs(problem: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in problem["errors"]]


def test_enrolment_takes_every_new_field_and_the_360_view_and_export_show_them(api: Api) -> None:
    created = api.call(
        "POST",
        "/v1/customers",
        POS_KEY,
        json=_enrol_body(
            first_name="Jane",
            country="nl",
            timezone="Europe/Amsterdam",
            favourite_store_id="ams-01",
            address={**ADDRESS, "country": "nl"},
        ),
    )
    assert created.status_code == 201, created.text
    profile = created.json()["profile"]
    assert profile["country"] == "NL"  # ISO codes are upper-cased
    assert profile["timezone"] == "Europe/Amsterdam"
    assert profile["favourite_store_id"] == "ams-01"
    assert profile["address"] == ADDRESS
    cid = created.json()["customer_id"]
    assert api.call("GET", f"/v1/customers/{cid}").json()["profile"] == profile
    export = api.call("GET", f"/v1/customers/{cid}/export", ADMIN_KEY)
    assert export.status_code == 200 and export.json()["customer"]["profile"] == profile


def test_a_profile_without_the_new_fields_shows_them_empty(api: Api) -> None:
    profile = api.enrol(**_enrol_body())["profile"]
    assert profile["country"] is None and profile["timezone"] is None
    assert profile["favourite_store_id"] is None and profile["address"] is None


def test_patch_sets_replaces_and_clears_each_field(api: Api) -> None:
    cid = api.enrol(**_enrol_body(first_name="Ann"))["customer_id"]
    patched = api.call(
        "PATCH",
        f"/v1/customers/{cid}",
        WEB_KEY,
        json={
            "profile": {
                "country": "BE",
                "timezone": "Europe/Brussels",
                "favourite_store_id": "web-nl",
                "address": {"line1": "Grote Markt 1", "city": "Brussel", "country": "BE"},
            }
        },
    )
    assert patched.status_code == 200, patched.text
    profile = patched.json()["profile"]
    assert profile["first_name"] == "Ann"  # untouched
    assert (profile["country"], profile["timezone"], profile["favourite_store_id"]) == (
        "BE",
        "Europe/Brussels",
        "web-nl",
    )
    assert profile["address"] == {
        "line1": "Grote Markt 1",
        "line2": None,
        "postal_code": None,
        "city": "Brussel",
        "country": "BE",
    }
    # The address is replaced whole: no line of the old one survives in the new one.
    replaced = api.call("PATCH", f"/v1/customers/{cid}", json={"profile": {"address": ADDRESS}}).json()
    assert replaced["profile"]["address"] == ADDRESS and replaced["profile"]["country"] == "BE"
    cleared = api.call(
        "PATCH",
        f"/v1/customers/{cid}",
        json={"profile": {"address": None, "timezone": None, "favourite_store_id": None, "country": None}},
    ).json()["profile"]
    assert cleared["address"] is None and cleared["timezone"] is None
    assert cleared["favourite_store_id"] is None and cleared["country"] is None
    assert cleared["first_name"] == "Ann"


@pytest.mark.parametrize(
    ("profile", "loc", "words"),
    [
        ({"country": "XX"}, ["body", "profile", "country"], "ISO 3166-1"),
        ({"country": "NLD"}, ["body", "profile", "country"], "ISO 3166-1"),
        ({"country": 31}, ["body", "profile", "country"], "string"),
        ({"timezone": "Mars/Olympus"}, ["body", "profile", "timezone"], "IANA"),
        ({"timezone": "../../etc/passwd"}, ["body", "profile", "timezone"], "IANA"),
        ({"timezone": "localtime"}, ["body", "profile", "timezone"], "IANA"),
        ({"favourite_store_id": "no such store!"}, ["body", "profile", "favourite_store_id"], "match"),
        (
            {"address": {**ADDRESS, "country": "ZZ"}},
            ["body", "profile", "address", "country"],
            "ISO 3166-1",
        ),
        ({"address": {"line1": "Damrak 1", "country": "NL"}}, ["body", "profile", "address", "city"], ""),
        ({"address": {**ADDRESS, "line1": ""}}, ["body", "profile", "address", "line1"], ""),
        ({"address": {**ADDRESS, "floor": 3}}, ["body", "profile", "address", "floor"], ""),
        (
            {"address": {**ADDRESS, "postal_code": "x" * 17}},
            ["body", "profile", "address", "postal_code"],
            "",
        ),
    ],
)
def test_bad_values_are_422_naming_the_field_on_post_and_patch(
    api: Api, profile: dict[str, Any], loc: list[Any], words: str
) -> None:
    email = unique_email()
    body = {"links": [{"type": "email", "value": email}], "profile": profile}
    problem = assert_problem(api.call("POST", "/v1/customers", json=body), 422, "validation-failed")
    assert loc in _error_locs(problem), problem
    assert words.lower() in " ".join(e["msg"] for e in problem["errors"]).lower()
    # nothing was written
    lookup = api.call("GET", "/v1/customers", params={"link_type": "email", "link_value": email})
    assert_problem(lookup, 404, "customer-not-found")

    cid = api.enrol(**_enrol_body())["customer_id"]
    problem = assert_problem(
        api.call("PATCH", f"/v1/customers/{cid}", json={"profile": profile}), 422, "validation-failed"
    )
    assert loc in _error_locs(problem), problem


def test_an_unknown_favourite_store_is_422_naming_the_field(api: Api) -> None:
    email = unique_email()
    body = {"links": [{"type": "email", "value": email}], "profile": {"favourite_store_id": "nowhere-01"}}
    problem = assert_problem(api.call("POST", "/v1/customers", json=body), 422, "validation-failed")
    assert _error_locs(problem) == [["body", "profile", "favourite_store_id"]]
    assert "nowhere-01" in problem["errors"][0]["msg"]
    lookup = api.call("GET", "/v1/customers", params={"link_type": "email", "link_value": email})
    assert_problem(lookup, 404, "customer-not-found")

    customer = api.enrol(**_enrol_body(favourite_store_id="ams-01"))
    problem = assert_problem(
        api.call(
            "PATCH",
            f"/v1/customers/{customer['customer_id']}",
            json={"profile": {"favourite_store_id": "nowhere-01", "first_name": "Changed"}},
        ),
        422,
        "validation-failed",
    )
    assert _error_locs(problem) == [["body", "profile", "favourite_store_id"]]
    unchanged = api.call("GET", f"/v1/customers/{customer['customer_id']}").json()["profile"]
    assert unchanged["favourite_store_id"] == "ams-01" and unchanged["first_name"] is None


def test_erasure_clears_the_address_and_every_new_field(api: Api) -> None:
    customer = api.enrol(
        **_enrol_body(
            first_name="Erin",
            country="NL",
            timezone="Europe/Amsterdam",
            favourite_store_id="ams-01",
            address=ADDRESS,
        )
    )
    cid = customer["customer_id"]
    assert api.call("DELETE", f"/v1/customers/{cid}", ADMIN_KEY).status_code == 204
    assert_problem(api.call("GET", f"/v1/customers/{cid}"), 404, "customer-not-found")
    # What is left in the table is a bare tombstone: no address line, city, zone or store.
    assert api.runtime is not None and api.runtime.resources is not None
    item = (
        boto3.session.Session(region_name=REGION)
        .client("dynamodb")
        .get_item(
            TableName=api.runtime.resources.table_name,
            Key={"pk": {"S": f"CUST#{cid}"}, "sk": {"S": "PROFILE"}},
            ConsistentRead=True,
        )["Item"]
    )
    assert item["status"]["S"] == "erased"
    assert "profile" not in item
    text = str(item)
    for value in ("Damrak", "Amsterdam", "1012 LG", "Erin", "ams-01"):
        assert value not in text
