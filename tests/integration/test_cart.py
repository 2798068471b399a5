"""Offers, price groups, coupons and cart evaluation against DynamoDB Local."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.errors import CouponNotFound, Forbidden, OfferExists, ValidationFailed
from loyalty.domain.offers import Offer, PriceGroup
from loyalty.services.cart import CartCommand, CartLineInput
from loyalty.services.customers import EnrolCommand, RawLink

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)


def offer(**fields: Any) -> Offer:
    return Offer.model_validate(fields)


def cart(
    customer_id: str | None, *lines: tuple[str, str, str, str], coupons: tuple[str, ...] = ()
) -> CartCommand:
    return CartCommand(
        customer=CustomerRef(customer_id=customer_id) if customer_id else None,
        store_id=None,
        currency="EUR",
        lines=[CartLineInput(lid, sku, cat, Decimal(1), Decimal(price)) for lid, sku, cat, price in lines],
        coupons=list(coupons),
    )


def member(container: Container, email: str) -> str:
    cmd = EnrolCommand([RawLink("email", email)], Profile(), Consents(), True, None)
    return container.customers.enrol(cmd, POS).customer.customer_id


def test_channel_and_store_attribute_targeting(container: Container) -> None:
    container.offers.create_offer(
        offer(
            offer_id="coffee10",
            name="10% off coffee in coffee corners",
            where={"store_attributes": {"coffee_corner": True}},
            effect={"type": "percent_off", "value": "10", "categories": ["coffee"]},
        )
    )
    container.offers.create_offer(
        offer(
            offer_id="web5",
            name="5 off online orders over 20",
            where={"channels": ["online"]},
            condition={"min_subtotal": "20.00"},
            effect={"type": "amount_off", "value": "5", "applies_to": "basket"},
        )
    )
    lines = (("1", "ESP", "coffee", "4.00"), ("2", "CAKE", "cake", "12.00"))
    at_till = container.cart.evaluate(cart(None, *lines), POS)
    assert [d.offer_id for d in at_till.evaluation.discounts] == ["coffee10"]
    assert at_till.evaluation.discount_total == Decimal("0.40")
    assert at_till.evaluation.total == Decimal("15.60")
    online = container.cart.evaluate(cart(None, *lines), WEB)
    assert [d.offer_id for d in online.evaluation.discounts] == []
    assert [n.offer_id for n in online.evaluation.near_misses] == ["web5"]
    bigger = container.cart.evaluate(cart(None, *lines, ("3", "MUG", "mugs", "9.00")), WEB)
    assert [d.offer_id for d in bigger.evaluation.discounts] == ["web5"]
    assert (
        sum(line.discount for line in bigger.evaluation.lines)
        == bigger.evaluation.discount_total
        == Decimal("5.00")
    )


def test_members_tiers_price_groups_and_points(container: Container) -> None:
    jane = member(container, "jane@example.com")
    container.offers.put_price_group(
        PriceGroup.model_validate(
            {"group_id": "staff", "name": "Staff", "prices": [{"category": "coffee", "percent_off": "50"}]}
        )
    )
    container.offers.create_offer(
        offer(
            offer_id="double",
            name="Double points for members",
            audience={"members_only": True},
            effect={"type": "points_multiplier", "value": "2", "categories": ["cake"]},
        )
    )
    lines = (("1", "ESP", "coffee", "4.00"), ("2", "CAKE", "cake", "10.00"))
    before = container.cart.evaluate(cart(jane, *lines), POS)
    assert before.points_to_earn == 40 + 200
    assert [ln.price for ln in before.evaluation.lines] == [Decimal("4.00"), Decimal("10.00")]
    container.customers.set_price_group(jane, "staff", True)
    after = container.cart.evaluate(cart(jane, *lines), POS)
    assert [ln.price for ln in after.evaluation.lines] == [Decimal("2.00"), Decimal("10.00")]
    assert after.points_to_earn == 20 + 200
    anonymous = container.cart.evaluate(cart(None, *lines), POS)
    assert anonymous.points_to_earn == 0
    assert anonymous.points_if_member == 140


def test_coupons_issue_lookup_and_rejections(container: Container, clock: Any) -> None:
    jane = member(container, "jane@example.com")
    john = member(container, "john@example.com")
    container.offers.create_offer(
        offer(
            offer_id="cake3",
            name="3 off cake with your coupon",
            requires_coupon=True,
            effect={"type": "amount_off", "value": "3", "categories": ["cake"]},
        )
    )
    coupon = container.offers.issue_coupon(jane, "cake3", None, "api", 1)
    assert len(coupon.code) == 14
    assert container.offers.get_coupon(coupon.code.lower().replace("-", "")).code == coupon.code
    with pytest.raises(CouponNotFound):
        container.offers.get_coupon("NOPE-NOPE-NOPE")
    lines = (("1", "CAKE", "cake", "10.00"),)
    without = container.cart.evaluate(cart(jane, *lines), POS)
    assert without.evaluation.discount_total == 0
    mine = container.cart.evaluate(cart(jane, *lines, coupons=(coupon.code,)), POS)
    assert [(d.offer_id, d.coupon, d.amount) for d in mine.evaluation.discounts] == [
        ("cake3", coupon.code, Decimal("3.00"))
    ]
    theirs = container.cart.evaluate(cart(john, *lines, coupons=(coupon.code, "ZZZZ-ZZZZ-ZZZZ")), POS)
    assert [(r.code, r.reason) for r in theirs.evaluation.rejected_coupons] == [
        (coupon.code, "not_yours"),
        ("ZZZZ-ZZZZ-ZZZZ", "unknown"),
    ]
    coupons, _ = container.offers.coupons_of(jane, 50, None)
    assert [c.code for c in coupons] == [coupon.code]


def test_explain_is_admin_only_and_names_the_failed_condition(container: Container) -> None:
    container.offers.create_offer(
        offer(
            offer_id="gold",
            name="Gold only",
            audience={"tiers": ["gold"]},
            effect={"type": "percent_off", "value": "5"},
        )
    )
    with pytest.raises(Forbidden):
        container.cart.evaluate(cart(None, ("1", "X", None, "1.00")), POS, explain=True)
    command = CartCommand(
        None, "ams-01", "EUR", [CartLineInput("1", "X", None, Decimal(1), Decimal("1.00"))], []
    )
    explained = container.cart.evaluate(command, ADMIN, explain=True)
    assert explained.evaluation.explanations is not None
    reasons = {x.offer_id: x.reason for x in explained.evaluation.explanations}
    assert "gold" in reasons and "tier" in reasons["gold"]


def test_admin_offer_lifecycle(container: Container) -> None:
    created = container.offers.create_offer(
        offer(offer_id="o1", name="o1", effect={"type": "percent_off", "value": "5"})
    )
    assert created.version == 1
    with pytest.raises(OfferExists):
        container.offers.create_offer(
            offer(offer_id="o1", name="o1", effect={"type": "percent_off", "value": "5"})
        )
    assert container.offers.set_status("o1", "paused").status == "paused"
    assert container.cart.evaluate(cart(None, ("1", "X", None, "10.00")), POS).evaluation.discount_total == 0
    assert container.offers.set_status("o1", "active").version == 3
    assert container.cart.evaluate(
        cart(None, ("1", "X", None, "10.00")), POS
    ).evaluation.discount_total == Decimal("0.50")
    offers, _ = container.offers.list_offers(50, None)
    assert [o.offer_id for o in offers] == ["o1"]


def test_bad_carts(container: Container) -> None:
    with pytest.raises(ValidationFailed) as caught:
        container.cart.evaluate(
            CartCommand(None, None, "USD", [CartLineInput("1", "X", None, Decimal(1), Decimal(1))], []), POS
        )
    assert caught.value.errors[0].loc == ("body", "currency")
    with pytest.raises(ValidationFailed) as caught:
        container.cart.evaluate(cart("01NOBODY", ("1", "X", None, "1.00")), POS)
    assert caught.value.errors[0].loc == ("body", "customer", "customer_id")


def sale(
    txn: str, customer_id: str | None, price: str, coupons: tuple[str, ...] = (), discount: str = "0"
) -> Any:
    from datetime import UTC, datetime

    from loyalty.domain.sales import Line, SaleType
    from loyalty.services.transactions import RecordCommand

    return RecordCommand(
        transaction_id=txn,
        type=SaleType.SALE,
        store_id=None,
        occurred_at=datetime(2026, 11, 22, 9, tzinfo=UTC),
        customer=CustomerRef(customer_id=customer_id) if customer_id else None,
        # The till gives the discount the offer stands for: a sale records what was charged.
        lines=[Line("1", "CAKE", "cake", Decimal(1), Decimal(price), Decimal(discount))],
        currency="EUR",
        total=Decimal(price) - Decimal(discount),
        fingerprint=txn,
        coupons=list(coupons),
    )


def test_a_single_use_coupon_is_consumed_once_under_concurrency(container: Container) -> None:
    from concurrent.futures import ThreadPoolExecutor

    jane = member(container, "jane@example.com")
    container.offers.create_offer(
        offer(
            offer_id="cake3",
            name="3 off cake",
            requires_coupon=True,
            effect={"type": "amount_off", "value": "3", "categories": ["cake"]},
        )
    )
    code = container.offers.issue_coupon(jane, "cake3", None, "api", 1).code

    def buy(i: int) -> tuple[str, ...]:
        receipt = container.transactions.record(
            sale(f"S{i}", jane, "10.00", (code,), "3.00"), POS, render=render_receipt
        )
        return receipt.coupons_redeemed

    with ThreadPoolExecutor(max_workers=8) as pool:
        redeemed = list(pool.map(buy, range(8)))
    assert sorted(redeemed) == [()] * 7 + [(code,)]
    coupon = container.offers.get_coupon(code)
    assert (coupon.uses, coupon.state(datetime_now(container))) == (1, "used")
    # The sale that used it returns in full: the coupon comes back while still valid.
    winner = next(i for i, r in enumerate(redeemed) if r)
    from loyalty.domain.sales import Line, SaleType
    from loyalty.services.transactions import RecordCommand

    container.transactions.record(
        RecordCommand(
            transaction_id="R1",
            type=SaleType.RETURN,
            store_id=None,
            occurred_at=datetime_now(container),
            customer=None,
            lines=[Line("1", "CAKE", "cake", Decimal(1), Decimal("10.00"), Decimal("3.00"))],
            currency="EUR",
            total=Decimal("7.00"),
            fingerprint="R1",
            original_transaction_id=f"S{winner}",
        ),
        POS,
        render=render_receipt,
    )
    assert container.offers.get_coupon(code).uses == 0
    again = container.transactions.record(
        sale("S-again", jane, "10.00", (code,), "3.00"), POS, render=render_receipt
    )
    assert again.coupons_redeemed == (code,)
    assert [(o.offer_id, o.amount) for o in again.offers_applied] == [("cake3", Decimal("3.00"))]


def test_a_budget_is_never_overspent_under_concurrency(container: Container) -> None:
    from concurrent.futures import ThreadPoolExecutor

    container.offers.create_offer(
        offer(
            offer_id="first5",
            name="1 off for the first 5 sales",
            limits={"budget": 5},
            effect={"type": "amount_off", "value": "1", "applies_to": "basket"},
        )
    )
    customers = [member(container, f"c{i}@example.com") for i in range(4)]

    def buy(i: int) -> int:
        receipt = container.transactions.record(
            sale(f"B{i}", customers[i % 4], "10.00", (), "1.00"), POS, render=render_receipt
        )
        return len(receipt.offers_applied)

    with ThreadPoolExecutor(max_workers=10) as pool:
        applied = list(pool.map(buy, range(20)))
    assert sum(applied) == 5
    item = container.table.get("OFFERUSE#first5", "TOTAL")
    assert item is not None and int(item["uses"]) == 5
    later = container.cart.evaluate(cart(customers[0], ("1", "CAKE", "cake", "10.00")), POS)
    assert later.evaluation.discount_total == 0


def datetime_now(container: Container) -> Any:
    return container.clock.now()
