"""Numbers: the engine counts money in integer cents and quantities in thousandths, and rounds
half-up; a total is split over lines by largest remainder so the parts add up exactly."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (both non-negative, denominator above zero)."""
    return (2 * numerator + denominator) // (2 * denominator)


def _to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


_CENT = Decimal("0.01")


def _money(amount_cents: int) -> Decimal:
    return Decimal(amount_cents) * _CENT  # exact, and always two places


def _quantity(milli: int) -> str:
    return _num(Decimal(milli).scaleb(-3))


def _allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` cents pro rata to ``weights`` by largest remainder (ties: first); total ≤ Σ."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    if left:
        for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
            shares[i] += 1
    return shares


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")
