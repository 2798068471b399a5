"""Real-time cart offers, personal prices and personal coupons: the pure offer engine.

How a cart is evaluated is the algorithm note at the top of :mod:`loyalty.domain.offers.engine`.
The documents and their validation are in ``model``, the catalogue index in ``index``, the cent
arithmetic in ``money``; ``cart``, ``conditions``, ``effects``, ``stacking`` and ``units`` are the
engine's steps. Import from here: these are the names the rest of the code uses.

Callers import ``evaluate`` from this package when they call it (so a bench can time it by
replacing this attribute).
"""

from loyalty.domain.offers.engine import evaluate
from loyalty.domain.offers.index import OfferIndex
from loyalty.domain.offers.model import (
    CartContext,
    CartLine,
    CouponInput,
    GroupPrice,
    Limits,
    Offer,
    PriceGroup,
    PriceGroupMembers,
    remaining_uses,
    unknown_references,
)
from loyalty.domain.offers.result import Evaluation, UnitsTaken, UnitsUnavailable
from loyalty.domain.offers.words import describe_effect

__all__ = [
    "CartContext",
    "CartLine",
    "CouponInput",
    "Evaluation",
    "GroupPrice",
    "Limits",
    "Offer",
    "OfferIndex",
    "PriceGroup",
    "PriceGroupMembers",
    "UnitsTaken",
    "UnitsUnavailable",
    "describe_effect",
    "evaluate",
    "remaining_uses",
    "unknown_references",
]
