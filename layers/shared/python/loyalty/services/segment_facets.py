"""Free-form values as the segment SQL compares them: read once, in Python, by the rule
language's own readers (loyalty.domain.segments.paths), and stored in the lake already typed.

SQL engines disagree on JSON: what a number is, whether "42" equals 42, how a path names a key with
a quote in it. So the lake writer does not leave that to them. A profile's free attributes become
`attribute_facts`: for every path a rule can name (`profile.attributes.a.b`), keyed by a digest of
the path (`path_key`: a plain identifier, safe in any JSON path), the value in each form the rule
language may compare it as:

    x  present (any value but null)          b  a boolean
    n  a number (a JSON number or a decimal string), as plain decimal text
    t  a string, as is                        i  an RFC 3339 instant, as UTC text of fixed width
    d  a date, as YYYY-MM-DD                  k  a list's elements as equality keys (`contains`)

Instants and dates compare as text (fixed width, so text order is time order); numbers as
DECIMAL(38, 18) (a number beyond that - more than 20 integer or 18 decimal digits - is not
comparable in SQL). Store attributes and event properties, which rules only test for equality,
become `canonical` text per key: equal canonical text is equality as the evaluator has it (JSON
numbers by value, so 2 equals 2.0; strings, booleans and null by kind).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from loyalty.domain.segments.paths import calendar_date, instant, number

_NUMERIC_TEXT = frozenset("0123456789.-")
MAX_DEPTH = 8
MAX_NAME = 64


def path_key(path: str) -> str:
    """The JSON key a path's facts are stored under (a digest: any attribute name is safe)."""
    return "h" + hashlib.sha256(path.encode()).hexdigest()[:20]


def decimal_text(value: Decimal) -> str:
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def instant_text(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def as_number(value: Any) -> Decimal | None:
    """A number as the evaluator reads a free-form value: a JSON number, or a decimal string."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and not set(value) <= _NUMERIC_TEXT:
        return None
    if not isinstance(value, str | int | float | Decimal):
        return None
    try:
        return number(value)
    except ValueError:
        return None


def equality_key(value: Any) -> str | None:
    """The one key under which a rule's operand equals a value (see `value_keys`)."""
    if isinstance(value, bool):
        return f"b:{'true' if value else 'false'}"
    found = as_number(value)
    if found is not None:
        return f"n:{decimal_text(found)}"
    if not isinstance(value, str):
        return None
    moment = instant(value)
    if moment is not None:
        return f"i:{instant_text(moment)}"
    day = calendar_date(value)
    if day is not None:
        return f"d:{day.isoformat()}"
    return f"t:{value}"


def value_keys(value: Any) -> list[str]:
    """Every key an operand equal to this value can have: a string is its text, and also its
    number, instant or date when it reads as one."""
    if isinstance(value, bool):
        return [f"b:{'true' if value else 'false'}"]
    if isinstance(value, int | float | Decimal):
        found = as_number(value)
        return [f"n:{decimal_text(found)}"] if found is not None else []
    if not isinstance(value, str):
        return []
    keys = [f"t:{value}"]
    found = as_number(value)
    if found is not None:
        keys.append(f"n:{decimal_text(found)}")
    moment = instant(value)
    if moment is not None:
        keys.append(f"i:{instant_text(moment)}")
    day = calendar_date(value)
    if day is not None:
        keys.append(f"d:{day.isoformat()}")
    return keys


def typed(value: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"x": 1}
    if isinstance(value, bool):
        facts["b"] = value
        return facts
    found = as_number(value)
    if found is not None:
        facts["n"] = decimal_text(found)
    if isinstance(value, str):
        facts["t"] = value
        moment = instant(value)
        if moment is not None:
            facts["i"] = instant_text(moment)
        day = calendar_date(value)
        if day is not None:
            facts["d"] = day.isoformat()
    if isinstance(value, list):
        facts["k"] = "".join(
            json.dumps(key, ensure_ascii=False) for item in value for key in value_keys(item)
        )
    return facts


def _walk(node: Mapping[str, Any], prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
    for name, value in node.items():
        # A name with a dot or a space is one no path can reach (dots walk into maps).
        if not isinstance(name, str) or "." in name or any(c.isspace() for c in name):
            continue
        if not 0 < len(name) <= MAX_NAME:
            continue
        path = f"{prefix}{name}"
        if value is not None:
            yield path, value
        if isinstance(value, Mapping) and depth < MAX_DEPTH:
            yield from _walk(value, f"{path}.", depth + 1)


def attribute_facts(attributes: Mapping[str, Any]) -> str:
    facts = {path_key(path): typed(value) for path, value in _walk(attributes, "", 1)}
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:  # noqa: PLR0911 - one return per JSON kind
    """Text equal for values the evaluator finds equal (numbers by value, the rest by kind)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        found = as_number(value)
        return f"n:{decimal_text(found)}" if found is not None else f"n:{value}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, Mapping):
        inner = ",".join(
            f"{json.dumps(str(k), ensure_ascii=False)}:{canonical(v)}" for k, v in sorted(value.items())
        )
        return "{" + inner + "}"
    return json.dumps(str(value), ensure_ascii=False)


def equality_facts(values: Mapping[str, Any]) -> str:
    """Top-level keys' canonical text (store attributes, event properties)."""
    facts = {path_key(str(name)): canonical(value) for name, value in values.items()}
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
