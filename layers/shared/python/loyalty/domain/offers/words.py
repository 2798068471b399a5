"""Offers and reasons in words: what an offer gives ("10% off coffee") and the fixed reasons
the explanations use."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from loyalty.domain.offers.model import Effect
from loyalty.domain.offers.money import _num

APPLIED = "applied"
LIMIT_REACHED = "limit reached"
UNITS_TAKEN = "no units free: every target unit is held by another exclusive_units offer"


def _listed(values: Iterable[str]) -> str:
    return "[" + ", ".join(values) + "]"  # in the offer's own order


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _products(skus: Sequence[str], categories: Sequence[str]) -> str:
    return ", ".join([*categories, *skus])


def _which(skus: Sequence[str], categories: Sequence[str]) -> str:
    parts = []
    if skus:
        parts.append(f"skus {_listed(skus)}")
    if categories:
        parts.append(f"categories {_listed(categories)}")
    return " or ".join(parts)


def describe_effect(effect: Effect) -> str:  # noqa: PLR0911 - one sentence per effect
    """What the offer gives, in words for a customer ("10% off coffee")."""
    named = _products(effect.skus, effect.categories)
    target = named or ("your basket" if effect.applies_to == "basket" else "every item")
    value = effect.value if effect.value is not None else Decimal(0)
    match effect.type:
        case "percent_off":
            return f"{_num(value)}% off {target}"
        case "amount_off":
            each = "each " if effect.applies_to == "lines" and named else ""
            return f"{value} off {each}{target}"
        case "fixed_price":
            return f"{named} at {value}"
        case "bonus_points":
            return f"{int(value)} bonus points" + (f" with {named}" if named else "")
        case "points_multiplier":
            return f"{_num(value)}x points on {target}"
        case "bundle_price":
            cap = f" (up to {effect.max_applications})" if effect.max_applications is not None else ""
            return f"{effect.bundle} {named} for {value}{cap}"
        case _:
            cap = f" (up to {effect.max_applications} times)" if effect.max_applications is not None else ""
            return f"buy {effect.buy} get {effect.get} free on {named}{cap}"
