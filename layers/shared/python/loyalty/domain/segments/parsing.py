"""From rule JSON to the rule tree: the shape, the limits, and every error named by its place in
the tree (loc such as ["rule", "all", 1, "purchased", "within"]), raised as one ValidationFailed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, ValidationError, WithJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError

from loyalty.domain.errors import FieldError, ValidationFailed
from loyalty.domain.segments.model import (
    KINDS,
    All,
    Any_,
    Attr,
    Birthday,
    EventCond,
    Node,
    Not,
    Purchased,
    dump_rule,
)
from loyalty.domain.segments.paths import OPS, kind_of, read_path_operand

MAX_CONDITIONS = 50
MAX_LEVELS = 5
MAX_ERRORS = 20
_LEAVES: dict[str, type[Birthday | Purchased | EventCond]] = {
    "birthday": Birthday,
    "purchased": Purchased,
    "event": EventCond,
}
Loc = tuple[str | int, ...]


class _TooBig(Exception):
    """A limit was passed: what follows is not read (a huge rule costs no more than a small one)."""


@dataclass
class _Reading:
    errors: list[FieldError] = field(default_factory=list)
    conditions: int = 0

    def fail(self, loc: Loc, msg: str, type_: str = "value_error") -> None:
        self.errors.append(FieldError(loc, msg, type_))
        if len(self.errors) >= MAX_ERRORS:  # enough to fix; a huge bad rule gets no huge answer
            raise _TooBig


def parse_rule(raw: object, *, loc: Loc = ("rule",)) -> Node:
    """The rule tree of `raw`, or ValidationFailed listing each error at its place under `loc`."""
    reading = _Reading()
    try:
        rule = _node(raw, loc, 1, reading)
    except _TooBig:
        rule = None
    if reading.errors or rule is None:
        places = ", ".join(".".join(str(part) for part in error.loc) for error in reading.errors[:5])
        raise ValidationFailed(f"invalid rule: {places}", errors=reading.errors)
    return rule


def _node(raw: object, loc: Loc, level: int, reading: _Reading) -> Node | None:
    if level > MAX_LEVELS:
        reading.fail(loc, f"a rule nests at most {MAX_LEVELS} levels", "too_deep")
        raise _TooBig
    if not isinstance(raw, dict):
        reading.fail(loc, f"a rule is a JSON object with one of {', '.join(KINDS)}", "rule_type")
        return None
    kinds = [key for key in KINDS if key in raw]
    if len(kinds) != 1:
        what = "one of" if not kinds else "only one of"
        reading.fail(loc, f"a rule has {what} {', '.join(KINDS)}", "rule_type")
        return None
    kind = kinds[0]
    if kind in ("all", "any"):
        return _group(raw, kind, loc, level, reading)
    if kind == "not":
        return _negation(raw, loc, level, reading)
    reading.conditions += 1
    if reading.conditions > MAX_CONDITIONS:
        reading.fail(loc, f"a rule holds at most {MAX_CONDITIONS} conditions", "too_many_conditions")
        raise _TooBig
    if kind == "attr":
        return _attr(raw, loc, reading)
    return _leaf(_LEAVES[kind], raw, loc, reading)


def _extra_keys(raw: dict[str, Any], allowed: set[str], loc: Loc, reading: _Reading) -> bool:
    extra = [key for key in raw if key not in allowed]
    for key in extra:
        reading.fail((*loc, key), f"unknown key beside {' and '.join(sorted(allowed))}", "extra_forbidden")
    return not extra


def _group(raw: dict[str, Any], kind: str, loc: Loc, level: int, reading: _Reading) -> Node | None:
    clean = _extra_keys(raw, {kind}, loc, reading)
    items = raw[kind]
    if not isinstance(items, list) or not items:
        reading.fail((*loc, kind), f"{kind} takes a non-empty list of rules", "list_type")
        return None
    if len(items) > MAX_CONDITIONS:  # each holds a condition at least
        reading.fail((*loc, kind), f"a rule holds at most {MAX_CONDITIONS} conditions", "too_many_conditions")
        raise _TooBig
    children = [_node(item, (*loc, kind, index), level + 1, reading) for index, item in enumerate(items)]
    if not clean or any(child is None for child in children):
        return None
    return All(all=children) if kind == "all" else Any_(any=children)


def _negation(raw: dict[str, Any], loc: Loc, level: int, reading: _Reading) -> Node | None:
    clean = _extra_keys(raw, {"not"}, loc, reading)
    child = _node(raw["not"], (*loc, "not"), level + 1, reading)
    return Not(not_=child) if clean and child is not None else None


def _attr(raw: dict[str, Any], loc: Loc, reading: _Reading) -> Attr | None:
    path = raw["attr"]
    ops = [key for key in raw if key != "attr"]
    unknown = [key for key in ops if key not in OPS]
    for key in unknown:
        reading.fail((*loc, key), f"unknown operator {key[:32]!r}: use {', '.join(OPS)}", "unknown_operator")
    if not ops:
        reading.fail(loc, f"an attribute condition needs one operator: {', '.join(OPS)}", "missing")
    elif len(ops) > 1 and not unknown:
        reading.fail((*loc, ops[1]), "one operator per condition: combine conditions with all", "extra_op")
    try:
        kind_of(path)
    except ValueError as bad:
        reading.fail((*loc, "attr"), str(bad), "unknown_path")
        return None
    if len(ops) != 1 or unknown:
        return None
    op = ops[0]
    try:
        read_path_operand(path, op, raw[op])
    except ValueError as bad:
        reading.fail((*loc, op), str(bad))
        return None
    return Attr(attr=path, op=op, value=raw[op])


def _leaf(
    model: type[Birthday | Purchased | EventCond], raw: dict[str, Any], loc: Loc, reading: _Reading
) -> Node | None:
    try:
        return model.model_validate(raw)
    except ValidationError as bad:
        for error in bad.errors(include_url=False):
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            reading.fail((*loc, *error["loc"]), message, str(error.get("type", "value_error")))
        return None


def _validated(raw: object) -> Node:
    """parse_rule inside a pydantic model: the same errors, at their places under the field."""
    try:
        return parse_rule(raw, loc=())
    except ValidationFailed as bad:
        raise ValidationError.from_exception_data(
            "rule",
            [
                InitErrorDetails(
                    type=PydanticCustomError(error.type, "{msg}", {"msg": error.msg}),
                    loc=error.loc,
                    input=raw,
                )
                for error in bad.errors
            ],
        ) from None


RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        'A segment rule: {"all": [rule, ...]}, {"any": [rule, ...]}, {"not": rule}, '
        '{"attr": path, op: value}, {"birthday": {"within_days": n}}, {"purchased": {"within", '
        '"categories", "skus", "channels", "stores", "store_attributes", "count", "spend"}} or '
        '{"event": {"type", "where", "within", "count"}}; at most 50 conditions and 5 levels.'
    ),
    "examples": [
        {
            "all": [
                {"purchased": {"within": "P30D", "categories": ["coffee"], "count": {"gte": 2}}},
                {"attr": "consents.email", "eq": True},
            ]
        }
    ],
}

SegmentRule = Annotated[
    Node,
    PlainValidator(_validated),
    PlainSerializer(dump_rule, return_type=dict[str, Any]),
    WithJsonSchema(RULE_SCHEMA),
]
"""A rule as a field of a request or document model: validated by `parse_rule` (limits, and each
error at its place under the field, so the API's 422 names it), written back as contract JSON."""
