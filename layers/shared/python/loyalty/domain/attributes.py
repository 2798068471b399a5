"""Free-form attributes: store and profile attributes, and the rules and price groups that match them.

Their values are any JSON the table can keep exactly: DynamoDB numbers have at most 38
significant digits and a magnitude from 1e-130 to below 1e126, and map keys are never empty; and
an item nests at most 32 levels, of which attributes get 16 (they are stored inside documents).
Anything else is refused as invalid input (422), never found out by the database (a 500).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

MAX_DIGITS = 38
MIN_EXPONENT, MAX_EXPONENT = -130, 125
MAX_DEPTH = 16  # the attributes' own map is level 1


def check_storable(value: Any) -> Any:
    """The value itself, or ValueError naming what the table cannot keep."""
    _check(value, "", 1)
    return value


def _check(value: Any, path: str, depth: int) -> None:
    if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
        raise ValueError(f"{path}: attributes nest at most {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"attribute names must not be empty (in {path or 'attributes'})")
            _check(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and not _storable_number(value):
        raise ValueError(
            f"{path}: numbers must be finite, with at most {MAX_DIGITS} significant digits, "
            f"between 1e{MIN_EXPONENT} and 1e{MAX_EXPONENT + 1} in size (or 0)"
        )


def _storable_number(number: float) -> bool:
    if isinstance(number, float) and not math.isfinite(number):
        return False
    # As the table's client sees it: a float by its shortest repr, an int by every digit it has.
    exact = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    if exact.is_zero():
        return True
    return len(exact.as_tuple().digits) <= MAX_DIGITS and MIN_EXPONENT <= exact.adjusted() <= MAX_EXPONENT
