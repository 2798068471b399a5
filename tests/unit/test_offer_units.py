"""Bundle prices, per-cart caps and per-unit exclusivity in the offer engine (issue 14).

Given a cart and offers, When the engine evaluates, Then bundles, capped offers and
``exclusive_units`` offers give exactly the hand-computed figures below, explain says which units
each offer took and who held the rest, and the properties hold for any cart: no unit is held by two
``exclusive_units`` offers, line discounts add up to the total, no discount exceeds its line.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from loyalty.domain.money import cents
from loyalty.domain.offers import (
    CartLine,
    CouponInput,
    Evaluation,
    Offer,
    OfferIndex,
    UnitsTaken,
    UnitsUnavailable,
    describe_effect,
    evaluate,
)
from tests.unit.test_offer_engine import context, discounts_by_line, line, offer, reason, run

D = Decimal


def bundle(value: str, size: int = 2, **effect: Any) -> dict[str, Any]:
    return {"type": "bundle_price", "value": value, "bundle": size, "categories": ["coffee"], **effect}


def coffee(line_id: str, qty: str, price: str, sku: str | None = None) -> CartLine:
    return line(line_id, sku or f"C{line_id}", "coffee", qty, price)


def explanation(result: Evaluation, offer_id: str) -> Any:
    assert result.explanations is not None
    return next(e for e in result.explanations if e.offer_id == offer_id)


# ---- bundle prices -------------------------------------------------------------------------------

BUNDLES = [
    # (id, effect, cart, {line: discount}, total discount) — worked out by hand in the comments
    pytest.param(
        bundle("5.00"),
        [coffee("1", "3", "3.00")],
        {"1": "1.00"},
        id="2 for 5.00, 3 units of 3.00: one bundle (6.00 -> 5.00), the odd unit at full price",
    ),
    pytest.param(
        bundle("5.00"),
        [coffee("1", "5", "3.00")],
        {"1": "2.00"},
        id="2 for 5.00, 5 units: two bundles save 1.00 each, the fifth unit pays 3.00",
    ),
    pytest.param(
        bundle("4.00"),
        [coffee("1", "1", "4.00"), coffee("2", "1", "3.00"), coffee("3", "1", "2.00")],
        # cheapest first: 2.00 + 3.00 = 5.00 -> 4.00 saves 1.00, split 2:3 -> 0.40 / 0.60; 4.00 alone
        {"1": "0.00", "2": "0.60", "3": "0.40"},
        id="across lines of different prices, cheapest units first",
    ),
    pytest.param(
        bundle("4.00", pick="most_expensive"),
        [coffee("1", "1", "4.00"), coffee("2", "1", "3.00"), coffee("3", "1", "2.00")],
        # 4.00 + 3.00 = 7.00 -> 4.00 saves 3.00; 3.00 x 4/7 = 1.714 -> 1.71 (remainder .43),
        # 3.00 x 3/7 = 1.286 -> 1.28 (remainder .57): the odd cent goes to the larger remainder
        {"1": "1.71", "2": "1.29", "3": "0.00"},
        id="most expensive first, the saving split by largest remainder",
    ),
    pytest.param(
        bundle("10.00", size=3),
        [coffee("1", "4", "3.99")],
        # 3 units of a 15.96 line are worth 11.97: 1.97 off; the fourth pays 3.99
        {"1": "1.97"},
        id="3 for 10.00 rounds on the units' value",
    ),
    pytest.param(
        bundle("4.00"),
        [coffee("1", "1", "2.50"), coffee("2", "1", "2.50"), coffee("3", "1", "2.50")],
        {"1": "0.50", "2": "0.50", "3": "0.00"},
        id="equal prices: the bundle takes lines in cart order",
    ),
    pytest.param(
        bundle("5.00", max_applications=1),
        [coffee("1", "6", "3.00")],
        {"1": "1.00"},
        id="at most one bundle per cart",
    ),
    pytest.param(
        bundle("3.00"),
        [coffee("1", "2.5", "2.00")],
        # 2 whole units of 2.5 kg at 2.00 are worth 4.00 -> 3.00; the half unit pays full price
        {"1": "1.00"},
        id="weighed goods: only whole units make a bundle",
    ),
    pytest.param(
        bundle("5.00"),
        [
            coffee("1", "1", "1.00"),
            coffee("2", "1", "2.00"),
            coffee("3", "1", "4.00"),
            coffee("4", "1", "4.00"),
        ],
        # cheapest first: 1.00 + 2.00 = 3.00 does not beat 5.00 -> not formed, both pay full price;
        # 4.00 + 4.00 = 8.00 -> 5.00 saves 3.00, 1.50 each
        {"1": "0.00", "2": "0.00", "3": "1.50", "4": "1.50"},
        id="a bundle that would cost more than its units is not formed",
    ),
]


@pytest.mark.parametrize(("effect", "cart", "expected"), BUNDLES)
def test_bundle_prices(effect: dict[str, Any], cart: list[CartLine], expected: dict[str, str]) -> None:
    result = run([offer(effect=effect)], cart)

    assert discounts_by_line(result) == expected
    total = sum((D(v) for v in expected.values()), D("0.00"))
    assert result.discount_total == total
    assert [(d.offer_id, d.amount) for d in result.discounts] == [("o", total)]


def test_a_bundle_that_saves_nothing_says_so() -> None:
    result = run([offer(effect=bundle("5.00"))], [coffee("1", "2", "2.00")])

    assert result.applied_offer_ids == ()
    assert reason(result) == "no bundle of 2 costs more than 5.00"
    short = run([offer(effect=bundle("5.00", size=3))], [coffee("1", "2", "3.00")])
    assert reason(short) == "bundle of 3: 2 units"


def test_bundle_near_miss_until_the_cap_is_reached() -> None:
    one = run([offer(effect=bundle("5.00"))], [coffee("1", "3", "3.00")])
    assert [m.message for m in one.near_misses] == ["add 1 more coffee to get 2 for 5.00"]

    capped = run([offer(effect=bundle("5.00", max_applications=1))], [coffee("1", "3", "3.00")])
    assert capped.near_misses == ()


# ---- caps per cart ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cap", "discount"),
    [(None, "3.00"), (1, "1.00"), (2, "2.00"), (5, "3.00")],
)
def test_buy_x_get_y_applies_at_most_max_applications_times(cap: int | None, discount: str) -> None:
    effect: dict[str, Any] = {"type": "buy_x_get_y", "buy": 1, "get": 1, "categories": ["coffee"]}
    if cap is not None:
        effect["max_applications"] = cap

    result = run([offer(effect=effect)], [coffee("1", "6", "1.00")])

    assert result.discount_total == D(discount)


def test_one_free_item_per_order_is_the_cheapest() -> None:
    effect = {"type": "buy_x_get_y", "buy": 2, "get": 1, "categories": ["coffee"], "max_applications": 1}
    cart = [coffee("1", "2", "4.00"), coffee("2", "1", "2.50"), coffee("3", "3", "3.00")]

    result = run([offer(effect=effect)], cart)

    assert discounts_by_line(result) == {"1": "0.00", "2": "2.50", "3": "0.00"}
    assert result.near_misses == ()  # the cap is reached: adding more gives nothing more


# ---- per-unit exclusivity ---------------------------------------------------------------------------


def category_offer(offer_id: str, category: str, percent: str, **fields: Any) -> Offer:
    return offer(
        offer_id,
        stacking=fields.pop("stacking", "exclusive_units"),
        effect={"type": "percent_off", "value": percent, "categories": [category]},
        **fields,
    )


CATEGORY_CART = [
    line("1", "ESP", "coffee", "2", "5.00"),
    line("2", "CAKE", "cake", "1", "4.00"),
    line("3", "TEA", "tea", "1", "3.00"),
]


def test_category_offers_each_take_their_own_units() -> None:
    offers = [
        category_offer("c", "coffee", "10"),
        category_offer("k", "cake", "25"),
        category_offer("t", "tea", "50"),
    ]

    result = run(offers, CATEGORY_CART)

    assert discounts_by_line(result) == {"1": "1.00", "2": "1.00", "3": "1.50"}
    assert set(result.applied_offer_ids) == {"c", "k", "t"}


def test_cart_level_exclusive_still_applies_alone() -> None:
    offers = [
        category_offer("c", "coffee", "10", stacking="exclusive"),
        category_offer("k", "cake", "25", stacking="exclusive"),
        category_offer("t", "tea", "50", stacking="exclusive"),
    ]

    result = run(offers, CATEGORY_CART)

    assert result.applied_offer_ids == ("t",)  # 1.50 beats 1.00 and 1.00; the others are blocked
    assert reason(result, "c") == "exclusive offer t gives more"


def test_on_the_same_units_the_higher_priority_takes_them_then_the_better_value() -> None:
    cart = [line("1", "ESP", "coffee", "2", "5.00")]
    small, big = category_offer("a", "coffee", "10", priority=5), category_offer("b", "coffee", "20")

    by_priority = run([small, big], cart)
    assert by_priority.applied_offer_ids == ("a",)
    assert by_priority.discount_total == D("1.00")

    by_value = run([category_offer("a", "coffee", "10"), big], cart)
    assert by_value.applied_offer_ids == ("b",)
    assert by_value.discount_total == D("2.00")
    b, a = explanation(by_value, "b"), explanation(by_value, "a")
    assert b.units == (UnitsTaken("1", D("2.000"), D("2.00")),)
    assert a.applied is False
    assert a.reason.startswith("no units free")
    assert "line 1 (2 held by b)" in a.reason
    assert a.unavailable == (UnitsUnavailable("1", D("2.000"), "b"),)


def test_units_left_by_a_capped_offer_go_to_the_next_one() -> None:
    cart = [line("1", "ESP", "coffee", "4", "3.00")]
    free_one = offer(
        "g",
        priority=1,
        stacking="exclusive_units",
        effect={"type": "buy_x_get_y", "buy": 2, "get": 1, "categories": ["coffee"], "max_applications": 1},
    )
    half = category_offer("h", "coffee", "50")

    result = run([free_one, half], cart)

    # g holds three units (two bought, one free: 3.00); h gets the fourth: 50% of 3.00
    assert result.applied_offer_ids == ("g", "h")
    assert result.discount_total == D("4.50")
    assert explanation(result, "g").units == (UnitsTaken("1", D("3.000"), D("3.00")),)
    assert explanation(result, "h").units == (UnitsTaken("1", D("1.000"), D("1.50")),)


def test_conditions_count_only_the_units_still_free() -> None:
    cart = [line("1", "ESP", "coffee", "3", "4.00")]
    bundled = offer("b", priority=1, stacking="exclusive_units", effect=bundle("6.00", max_applications=1))
    needs_two = category_offer("q", "coffee", "10", condition={"categories": ["coffee"], "min_quantity": 2})
    needs_one = category_offer("r", "coffee", "10", condition={"categories": ["coffee"], "min_quantity": 1})

    blocked = run([bundled, needs_two], cart)
    assert blocked.applied_offer_ids == ("b",)
    assert reason(blocked, "q") == "min_quantity 2 not reached on units still free (1)"
    assert blocked.near_misses == ()  # more coffee could go to b: no promise to make

    applied = run([bundled, needs_one], cart)
    assert applied.applied_offer_ids == ("b", "r")
    assert applied.discount_total == D("2.40")  # 8.00 -> 6.00, then 10% of the third 4.00


def test_spend_thresholds_count_free_units_at_personal_prices() -> None:
    cart = [line("1", "ESP", "coffee", "3", "10.00")]
    first = category_offer("a", "coffee", "10", priority=1)
    spend = offer(
        "s",
        stacking="exclusive_units",
        condition={"categories": ["coffee"], "min_subtotal": "5.00"},
        effect={"type": "amount_off", "value": "1.00", "categories": ["coffee"]},
    )

    result = run([first, spend], cart)

    assert reason(result, "s").startswith("no units free")
    assert result.applied_offer_ids == ("a",)


def test_stackable_offers_still_combine_with_held_units() -> None:
    cart = [line("1", "ESP", "coffee", "2", "5.00")]
    held = category_offer("a", "coffee", "10", priority=1)
    everyone = category_offer("z", "coffee", "10", stacking="stackable")

    result = run([held, everyone], cart)

    assert result.applied_offer_ids == ("a", "z")
    assert result.discount_total == D("1.90")  # 10% of 10.00, then 10% of the 9.00 left


def test_a_stackable_offer_before_leaves_the_free_units_their_value() -> None:
    cart = [line("1", "ESP", "coffee", "2", "5.00")]
    first = category_offer("z", "coffee", "10", stacking="stackable", priority=5)
    then = category_offer("a", "coffee", "50")

    result = run([first, then], cart)

    assert result.discount_total == D("5.50")  # 1.00, then 50% of the 9.00 left


def test_exclusive_units_needs_an_effect_on_units() -> None:
    with pytest.raises(ValidationError, match="exclusive_units needs an effect that discounts units"):
        offer(stacking="exclusive_units", effect={"type": "bonus_points", "value": "10"})


@pytest.mark.parametrize(
    ("effect", "message"),
    [
        ({"type": "percent_off", "value": "5", "max_applications": 1}, "max_applications belongs to"),
        ({"type": "bundle_price", "value": "5", "categories": ["c"]}, "bundle_price needs bundle"),
        ({"type": "bundle_price", "value": "5", "bundle": 2}, "bundle_price needs a target"),
        ({"type": "bundle_price", "bundle": 2, "categories": ["c"]}, "bundle_price needs a value"),
        (
            {"type": "bundle_price", "value": "5", "bundle": 1, "categories": ["c"]},
            "greater than or equal to 2",
        ),
        ({"type": "bundle_price", "value": "5.001", "bundle": 2, "categories": ["c"]}, "2 decimal places"),
        ({"type": "percent_off", "value": "5", "pick": "most_expensive"}, "bundle and pick belong to"),
        (
            {"type": "bundle_price", "value": "5", "bundle": 2, "pick": "any", "categories": ["c"]},
            "'cheapest'",
        ),
    ],
)
def test_malformed_bundles_and_caps_are_refused(effect: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        offer(effect=effect)


@pytest.mark.parametrize(
    ("effect", "words"),
    [
        (bundle("5.00"), "2 coffee for 5.00"),
        (bundle("5.00", max_applications=2), "2 coffee for 5.00 (up to 2)"),
        (
            {"type": "buy_x_get_y", "buy": 2, "get": 1, "categories": ["coffee"], "max_applications": 1},
            "buy 2 get 1 free on coffee (up to 1 times)",
        ),
    ],
)
def test_new_effects_in_words(effect: dict[str, Any], words: str) -> None:
    assert describe_effect(offer(effect=effect).effect) == words


# ---- properties ----------------------------------------------------------------------------------

SKUS = ["A", "B", "C"]
CATEGORIES = ["coffee", "cake"]
money = st.integers(min_value=0, max_value=2_000).map(lambda c: D(c) / 100)
quantities = st.sampled_from(["1", "2", "3", "5", "0.5", "2.5"]).map(D)


@st.composite
def unit_carts(draw: st.DrawFn) -> list[CartLine]:
    return [
        CartLine(
            line_id=f"L{i}",
            sku=draw(st.sampled_from(SKUS)),
            category=draw(st.sampled_from(CATEGORIES)),
            quantity=draw(quantities),
            unit_price=draw(money),
        )
        for i in range(draw(st.integers(min_value=0, max_value=6)))
    ]


@st.composite
def unit_offers(draw: st.DrawFn, offer_id: str) -> Offer:
    kind = draw(st.sampled_from(["percent_off", "amount_off", "buy_x_get_y", "bundle_price"]))
    targets = draw(
        st.sampled_from([{"categories": ["coffee"]}, {"categories": ["cake"]}, {"skus": ["A", "C"]}])
    )
    effect: dict[str, Any] = {"type": kind, **targets}
    if kind == "percent_off":
        effect["value"] = str(draw(st.integers(min_value=1, max_value=100)))
        effect["applies_to"] = draw(st.sampled_from(["lines", "basket"]))
    elif kind == "amount_off":
        effect["value"] = str(draw(st.integers(min_value=1, max_value=1_500)) / 100)
        effect["applies_to"] = draw(st.sampled_from(["lines", "basket"]))
    elif kind == "buy_x_get_y":
        effect["buy"], effect["get"] = draw(st.sampled_from([(1, 1), (2, 1), (3, 2)]))
    else:
        effect["bundle"] = draw(st.integers(min_value=2, max_value=3))
        effect["value"] = str(draw(st.integers(min_value=0, max_value=3_000)) / 100)
        effect["pick"] = draw(st.sampled_from(["cheapest", "most_expensive"]))
    if kind in ("buy_x_get_y", "bundle_price") and draw(st.booleans()):
        effect["max_applications"] = draw(st.integers(min_value=1, max_value=3))
    condition: dict[str, Any] = {}
    if draw(st.booleans()):
        condition = {**targets, "min_quantity": draw(st.integers(min_value=1, max_value=4))}
    return Offer.model_validate(
        {
            "offer_id": offer_id,
            "name": offer_id,
            "effect": effect,
            "condition": condition,
            "stacking": draw(st.sampled_from(["exclusive_units", "exclusive_units", "stackable", "best_of"])),
            "priority": draw(st.integers(min_value=0, max_value=2)),
        }
    )


@st.composite
def unit_scenarios(draw: st.DrawFn) -> tuple[list[CartLine], list[Offer]]:
    count = draw(st.integers(min_value=0, max_value=6))
    return draw(unit_carts()), [draw(unit_offers(f"o{i}")) for i in range(count)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit_scenarios())
def test_no_unit_is_held_twice_and_the_money_adds_up(scenario: tuple[list[CartLine], list[Offer]]) -> None:
    cart, offer_list = scenario
    units_only = {o.offer_id for o in offer_list if o.stacking == "exclusive_units"}

    result = evaluate(cart, context(), OfferIndex.build(offer_list), explain=True)

    assert result.explanations is not None
    held: dict[str, Decimal] = {}
    for explained in result.explanations:
        if explained.offer_id in units_only:
            for taken in explained.units:
                held[taken.line_id] = held.get(taken.line_id, D(0)) + taken.quantity
    for cart_line, out in zip(cart, result.lines, strict=True):
        assert held.get(cart_line.line_id, D(0)) <= cart_line.quantity  # no unit held twice
        assert D(0) <= out.discount <= cents(cart_line.quantity * out.price)  # never more than the line
    assert sum((r.discount for r in result.lines), D("0.00")) == result.discount_total
    assert sum((d.amount for d in result.discounts), D("0.00")) == result.discount_total
    per_offer = {d.offer_id: d.amount for d in result.discounts}
    for explained in result.explanations:
        if explained.applied and explained.offer_id in per_offer:
            assert sum((u.discount for u in explained.units), D("0.00")) == per_offer[explained.offer_id]
    assert result.total == result.personal_subtotal - result.discount_total >= 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit_scenarios())
def test_explain_changes_nothing_with_units(scenario: tuple[list[CartLine], list[Offer]]) -> None:
    cart, offer_list = scenario
    index = OfferIndex.build(offer_list)

    plain = evaluate(cart, context(), index)
    explained = evaluate(cart, context(), index, explain=True)
    reversed_index = evaluate(cart, context(), OfferIndex.build(offer_list[::-1]))

    assert plain == reversed_index
    assert plain.discounts == explained.discounts
    assert plain.lines == explained.lines
    assert plain.near_misses == explained.near_misses
    assert plain.applied_offer_ids == explained.applied_offer_ids


def test_thresholds_of_exclusive_units_offers_are_measured_before_fixed_prices_like_all_others() -> None:
    cart = [line("1", "ESP", "coffee", "2", "5.00")]
    fixed = offer("f", effect={"type": "fixed_price", "value": "1.00", "categories": ["coffee"]})
    spend = category_offer("s", "coffee", "10", condition={"categories": ["coffee"], "min_subtotal": "8.00"})
    # a stacking offer with the same condition is checked first and shares its answer per cart
    twin = category_offer(
        "t", "coffee", "5", stacking="stackable", condition={"categories": ["coffee"], "min_subtotal": "8.00"}
    )

    alone = run([fixed, spend], cart)
    together = run([fixed, spend, twin], cart)

    assert alone.applied_offer_ids == ("s", "f")
    assert alone.discount_total == D("0.20")  # 10% of the fixed 2 x 1.00, as 10.00 >= 8.00 counted
    assert together.applied_offer_ids == ("s", "f", "t")


def test_a_coupon_for_an_offer_whose_units_are_held_is_rejected_for_its_limit_whatever_explain_says() -> None:
    cart = [line("1", "ESP", "coffee", "2", "5.00")]
    first = category_offer("a", "coffee", "10", priority=1)
    gated = category_offer("g", "coffee", "20", requires_coupon=True, limits={"per_customer": 1})
    coupon = CouponInput(code="ABCD-EFGH-JKLM", offer_id="g", status="ok")

    plain = run([first, gated], cart, coupons=[coupon], allowances={"g": 0}, explain=False)
    explained = run([first, gated], cart, coupons=[coupon], allowances={"g": 0}, explain=True)

    assert plain.rejected_coupons == explained.rejected_coupons
    assert [(c.code, c.reason) for c in plain.rejected_coupons] == [("ABCD-EFGH-JKLM", "limit_reached")]
    assert reason(explained, "g") == "limit reached"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit_carts(), unit_offers("o"))
def test_the_ranking_value_is_what_the_offer_would_give(cart: list[CartLine], candidate: Offer) -> None:
    from loyalty.domain.offers.cart import _Cart
    from loyalty.domain.offers.effects import _free_value, _money_off
    from loyalty.domain.offers.index import _Prepared

    prepared = _Prepared.of(candidate)
    state = _Cart(cart, context(), [])
    state.start_units()
    targets = state.matching(prepared.effect_skus, prepared.effect_categories)

    assert _free_value(prepared, state, targets) == sum(
        _money_off(prepared, state, targets, units=True).off.values()
    )
