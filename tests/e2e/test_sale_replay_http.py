"""A sale's answer is rendered again from its record on replay (issue 21: the record no longer
carries the answer beside it): the replay is the first answer byte for byte, whatever happened to
the member since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import POS_KEY, Api, unique_email
from tests.e2e.test_transactions_http import coffee, sale


def test_a_member_sale_replays_its_first_answer_byte_for_byte_after_the_balance_and_tier_moved(
    api: Api,
) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    who = {"customer_id": jane["customer_id"]}
    first_body = sale(who, [coffee("2", "4.50"), coffee("1", "20.00", "2")])
    first = api.call("POST", "/v1/transactions", POS_KEY, json=first_body)
    assert first.status_code == 201, first.text
    # A big sale afterwards moves the balance and the tier the first answer showed.
    big = api.call("POST", "/v1/transactions", POS_KEY, json=sale(who, [coffee("1", "400.00")]))
    assert big.status_code == 201 and big.json()["tier_changed"] is True, big.text

    replay = api.call("POST", "/v1/transactions", POS_KEY, json=first_body)
    assert replay.status_code == 201
    assert replay.content == first.content
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["points_balance"] == 290 and replay.json()["tier"] == "bronze"


def test_sales_with_notes_and_anonymous_sales_replay_byte_for_byte(api: Api) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    old = (datetime.now(UTC) - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    backdated = sale({"customer_id": jane["customer_id"]}, [coffee()], occurred_at=old)
    anonymous = sale(None, [coffee("3")])
    for body in (backdated, anonymous):
        first = api.call("POST", "/v1/transactions", POS_KEY, json=body)
        assert first.status_code == 201, first.text
        replay = api.call("POST", "/v1/transactions", POS_KEY, json=body)
        assert replay.status_code == 201 and replay.content == first.content
    notes = api.call("POST", "/v1/transactions", POS_KEY, json=backdated).json()["notes"]
    assert notes[0]["code"] == "backdated"


def test_a_return_replays_its_first_answer_byte_for_byte(api: Api) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    who = {"customer_id": jane["customer_id"]}
    bought = sale(who, [coffee("2", "4.50"), coffee("1", "20.00", "2")])
    assert api.call("POST", "/v1/transactions", POS_KEY, json=bought).status_code == 201
    back = sale(who, [coffee("1", "4.50")], type="return", original_transaction_id=bought["transaction_id"])
    back["total"] = "4.50"
    first = api.call("POST", "/v1/transactions", POS_KEY, json=back)
    assert first.status_code == 201 and first.json()["points_earned"] == -45, first.text
    replay = api.call("POST", "/v1/transactions", POS_KEY, json=back)
    assert replay.status_code == 201 and replay.content == first.content
    assert replay.headers.get("Idempotent-Replayed") == "true"
