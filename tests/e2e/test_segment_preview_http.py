"""Segment previews and customer scores over HTTP: exact counts of members, non-members and the
customers each channel can reach, from the lake within 60 seconds; bad rules are 422 naming their
place; the scores job's RFM scores appear in the 360° view."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api, assert_problem, unique_email
from tests.e2e.test_transactions_http import coffee, sale

FRESHNESS_SECONDS = 60
PREVIEW = "/v1/admin/segments/preview"


def mobile() -> str:
    return f"+3161{random.randrange(10**7):07d}"  # 06-1...: a valid Dutch mobile number


def preview(api: Api, rule: dict[str, Any]) -> dict[str, Any]:
    response = api.call("POST", PREVIEW, ADMIN_KEY, json={"rule": rule})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def until(api: Api, rule: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The preview once the lake has caught up with what the test wrote (at most 60 s)."""
    deadline = time.monotonic() + FRESHNESS_SECONDS
    while True:
        body = preview(api, rule)
        seen = {k: body[k] for k in expected}
        if seen == expected or time.monotonic() > deadline:
            return body
        time.sleep(1)


def test_a_preview_counts_members_non_members_and_who_each_channel_reaches(api: Api) -> None:
    tag = uuid.uuid4().hex
    address = {"line1": "Oudegracht 1", "city": "Utrecht", "country": "NL"}
    # Reachable by email, SMS and mail: consent, an address for each, a member.
    anna = api.enrol(
        links=[{"type": "email", "value": unique_email()}, {"type": "phone", "value": mobile()}],
        profile={"attributes": {"cohort": tag}, "address": address},
        consents={"email": True, "sms": True, "mail": True},
    )
    # A member who said no to everything: counted, reachable nowhere.
    bert = api.enrol(
        links=[{"type": "email", "value": unique_email()}], profile={"attributes": {"cohort": tag}}
    )
    # An identified non-member with email consent but no phone: reachable by email only.
    cora = api.enrol(
        links=[{"type": "email", "value": unique_email()}],
        profile={"attributes": {"cohort": tag}},
        consents={"email": True, "sms": True},
        member=False,
    )
    # Consent to mail, but no postal address: not reachable by mail.
    dirk = api.enrol(
        links=[{"type": "email", "value": unique_email()}],
        profile={"attributes": {"cohort": f"not-{tag}"}},
        consents={"mail": True},
    )
    sold = api.call(
        "POST", "/v1/transactions", POS_KEY, json=sale({"customer_id": anna["customer_id"]}, [coffee()])
    )
    assert sold.status_code == 201, sold.text

    cohort = {"attr": "profile.attributes.cohort", "eq": tag}
    body = until(api, cohort, {"count": 3})
    assert (body["count"], body["members"], body["non_members"]) == (3, 2, 1)
    assert body["reachable"] == {"email": 2, "sms": 1, "mail": 1}
    assert sorted(body["sample"]) == sorted([anna["customer_id"], bert["customer_id"], cora["customer_id"]])
    assert body["as_of"] is not None

    coffee_buyers = {"all": [cohort, {"purchased": {"within": "P1D", "categories": ["coffee"]}}]}
    body = until(api, coffee_buyers, {"count": 1})
    assert (body["count"], body["members"], body["non_members"], body["sample"]) == (
        1,
        1,
        0,
        [anna["customer_id"]],
    )

    mail_consenters = {
        "all": [{"attr": "profile.attributes.cohort", "contains": tag}, {"attr": "consents.mail", "eq": True}]
    }
    body = until(api, mail_consenters, {"count": 2})
    assert (body["count"], body["reachable"]["mail"]) == (2, 1)  # anna (an address) and dirk (none)
    assert dirk["customer_id"] in body["sample"]

    others = preview(api, {"all": [{"attr": "profile.attributes.cohort", "contains": tag}, {"not": cohort}]})
    assert (others["count"], others["sample"]) == (1, [dirk["customer_id"]])


def test_the_scores_job_puts_rfm_scores_in_the_360_view(api: Api) -> None:
    assert api.runtime is not None and api.runtime.container is not None
    tag = uuid.uuid4().hex
    erin = api.enrol(
        links=[{"type": "email", "value": unique_email()}], profile={"attributes": {"cohort": tag}}
    )
    sold = api.call(
        "POST", "/v1/transactions", POS_KEY, json=sale({"customer_id": erin["customer_id"]}, [coffee()])
    )
    assert sold.status_code == 201, sold.text
    # The sale itself in the lake (the scores read transactions), not only the profile's counter:
    # the two stream records may reach the lake in different batches.
    buyers = {"all": [{"attr": "profile.attributes.cohort", "eq": tag}, {"purchased": {"within": "P1D"}}]}
    assert until(api, buyers, {"count": 1})["count"] == 1

    api.runtime.container.customer_scores.run()  # what the daily schedule (locally the ticker) runs

    view = api.call("GET", f"/v1/customers/{erin['customer_id']}", POS_KEY).json()
    scores = view["scores"]
    assert scores is not None, view
    assert all(1 <= scores[k] <= 5 for k in ("r", "f", "m"))
    assert scores["rfm"] == f"{scores['r']}{scores['f']}{scores['m']}"
    scored = {
        "all": [{"attr": "profile.attributes.cohort", "eq": tag}, {"attr": "scores.rfm", "eq": scores["rfm"]}]
    }
    assert until(api, scored, {"count": 1})["count"] == 1  # usable in rules, from the lake too


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"rule": {"attr": "shoe_size", "eq": 42}}, ["body", "rule", "attr"]),
        ({"rule": {"all": [{"attr": "member", "eq": True}, {"purchased": {"within": "P90X"}}]}},
         ["body", "rule", "all", 1, "purchased", "within"]),
        ({"rule": {"any": []}}, ["body", "rule", "any"]),
        ({"rule": {"attr": "points.available", "contains": 3}}, ["body", "rule"]),
        ({"rule": {"event": {"type": "view", "within": "P1D", "count": {"between": 2}}}},
         ["body", "rule", "event", "count"]),
        ({"rule": {"attr": "profile.birthday", "before": "P18Y"}}, ["body", "rule", "before"]),
        ({"rule": "everyone"}, ["body", "rule"]),
        ({}, ["body", "rule"]),
    ],
)  # fmt: skip
def test_a_bad_rule_is_422_naming_its_place(api: Api, body: dict[str, Any], loc: list[Any]) -> None:
    problem = assert_problem(api.call("POST", PREVIEW, ADMIN_KEY, json=body), 422, "validation-failed")
    assert any(error["loc"][: len(loc)] == loc for error in problem["errors"]), problem


def test_a_rule_of_more_than_50_conditions_is_refused(api: Api) -> None:
    rule = {"any": [{"attr": "member", "eq": True}] * 51}
    assert_problem(api.call("POST", PREVIEW, ADMIN_KEY, json={"rule": rule}), 422, "validation-failed")


def test_previews_are_for_admin_keys(api: Api) -> None:
    body = {"rule": {"attr": "member", "eq": True}}
    assert_problem(api.call("POST", PREVIEW, POS_KEY, json=body), 403, "forbidden")
