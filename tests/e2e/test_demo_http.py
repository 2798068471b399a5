"""`make demo` over HTTP: the loader fills the platform through the public API, and a second run
creates nothing and moves no balance."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from loyalty_local.emulators import DynamoDBLocal, Moto, free_port
from loyalty_local.runtime import LocalRuntime
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api
from tools.demo import GUEST, RETURNS, SALES, Client, Demo


@pytest.fixture(scope="module")
def api(emulators: tuple[DynamoDBLocal, Moto]) -> Iterator[Api]:
    """A platform of its own: the demo adds site-wide offers (10% off coffee in coffee-corner stores,
    5.00 off a 50.00 basket) that would change the carts and receipts of every later test sharing
    the worker's platform."""
    ddb, moto = emulators
    port = free_port()
    runtime = LocalRuntime(table_name=f"demo-{uuid.uuid4().hex[:10]}", ddb=ddb, moto=moto)
    runtime.start(port=port)
    yield Api(f"http://127.0.0.1:{port}", requests.Session(), runtime)
    runtime.stop()


def history_sizes() -> Counter[str]:
    """How many transactions the demo records for each person (sales, and returns of their sales)."""
    sizes: Counter[str] = Counter(s.customer for s in SALES if s.customer)
    sizes.update(r.original.customer for r in RETURNS if r.original.customer)
    return sizes


def test_the_demo_loads_a_living_programme_and_a_second_run_changes_nothing(api: Api) -> None:
    first = Demo(Client(api.base)).run()

    assert first.created > 0
    assert len(first.customers) == 12
    members = {slug for slug, c in first.customers.items() if c["member"]}
    assert len(members) == 9  # and 3 identified non-members, one of them a web-shop guest
    assert GUEST[0] not in members
    assert len(first.sales) == len(SALES) == 20
    assert len(first.returns) == len(RETURNS) == 3
    assert len(first.stores) == 5
    assert len(first.offers) == 5
    assert len(first.coupons) == 2

    # What the loader reports is what a client reads back.
    sizes = history_sizes()
    for slug, reported in first.customers.items():
        customer_id = reported["customer_id"]
        view = api.call("GET", f"/v1/customers/{customer_id}", POS_KEY).json()
        assert view["points"] == reported["points"], slug
        assert view["tier"] == reported["tier"], slug
        assert view["stats"]["transactions"] == reported["transactions"], slug
        history = api.call("GET", f"/v1/customers/{customer_id}/transactions", POS_KEY, params={"limit": 200})
        assert len(history.json()["items"]) == sizes[slug], slug
        if slug in members:
            # Recent enough to earn: every member with a purchase has points.
            assert view["points"]["lifetime"] > 0, slug
        else:
            assert view["points"] == {"available": 0, "pending": 0, "lifetime": 0}, slug
    assert first.customers["anna"]["tier"] == "gold"

    balances = {n: card["balance"] for n, card in first.gift_cards.items()}
    assert sorted(balances.values()) == ["25.00", "37.50"]  # an e-card, and a physical card partly spent
    eva = first.customers["eva"]["customer_id"]
    accounts = api.call("GET", f"/v1/customers/{eva}/accounts", POS_KEY).json()["items"]
    assert [(a["kind"], a["balance"]) for a in accounts] == [("merchandise_credit", "15.00")]

    second = Demo(Client(api.base)).run()

    assert second.created == 0
    assert second.customers == first.customers
    assert second.gift_cards == first.gift_cards
    assert second.coupons == first.coupons
    assert second.merchandise_credit == first.merchandise_credit
    accounts_again = api.call("GET", f"/v1/customers/{eva}/accounts", POS_KEY).json()["items"]
    assert accounts_again == accounts
    offers = api.call("GET", "/v1/admin/offers", ADMIN_KEY, params={"limit": 200}).json()["items"]
    assert sum(1 for o in offers if o["offer_id"].startswith("demo-")) == 5
