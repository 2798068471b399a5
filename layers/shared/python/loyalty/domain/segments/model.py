"""The rule tree as pydantic models: `all`, `any`, `not` and the conditions `attr`, `birthday`,
`purchased` and `event`, in exactly the JSON of the contract. `parse_rule` (parsing.py) is the door
from JSON: it adds the limits and names each error's place in the tree."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    Tag,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

from loyalty.domain.attributes import check_storable
from loyalty.domain.models import Model
from loyalty.domain.segments.paths import MAX_LISTED, OPS, AttrOp, read_path_operand
from loyalty.domain.segments.windows import Duration, parse_duration
from loyalty.domain.values import MoneySchema, MoneyText

MAX_COUNT = 1_000_000
MAX_MONEY = Decimal("10000000")

Name = Annotated[str, Field(min_length=1, max_length=64)]
ChannelName: TypeAlias = Literal["pos", "online", "app"]
DurationText = Annotated[
    Duration,
    PlainValidator(parse_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "ISO 8601 duration", "examples": ["P90D", "PT2M"]}),
]
CountBound = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
MoneyBound = Annotated[Decimal, MoneyText, Field(ge=-MAX_MONEY, le=MAX_MONEY, decimal_places=2), MoneySchema]


class _Strict(Model):
    # A typo in a rule must not pass silently as a condition that restricts nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True, validate_by_name=True)


class CountRange(_Strict):
    """Bounds on a count; every bound given must hold, at least one is given."""

    eq: CountBound | None = None
    gt: CountBound | None = None
    gte: CountBound | None = None
    lt: CountBound | None = None
    lte: CountBound | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> CountRange:
        if all(getattr(self, name) is None for name in _BOUNDS):
            raise ValueError("give at least one of eq, gt, gte, lt, lte")
        return self


class MoneyRange(_Strict):
    """Bounds on an amount, as decimal strings ("50.00"); every bound given must hold."""

    eq: MoneyBound | None = None
    gt: MoneyBound | None = None
    gte: MoneyBound | None = None
    lt: MoneyBound | None = None
    lte: MoneyBound | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> MoneyRange:
        if all(getattr(self, name) is None for name in _BOUNDS):
            raise ValueError("give at least one of eq, gt, gte, lt, lte")
        return self


_BOUNDS = ("eq", "gt", "gte", "lt", "lte")


class BirthdayWindow(_Strict):
    within_days: Annotated[int, Field(strict=True, ge=0, le=366)] = Field(
        description="the next birthday falls in today..today+N"
    )


class PurchasedSpec(_Strict):
    within: DurationText
    categories: list[Name] = Field(default_factory=list, max_length=MAX_LISTED)
    skus: list[Name] = Field(default_factory=list, max_length=MAX_LISTED)
    channels: list[ChannelName] = Field(default_factory=list, max_length=3)
    stores: list[Name] = Field(default_factory=list, max_length=MAX_LISTED)
    store_attributes: dict[str, Any] = Field(default_factory=dict, max_length=20)
    count: CountRange | None = None
    spend: MoneyRange | None = None

    _storable = field_validator("store_attributes")(check_storable)


class EventSpec(_Strict):
    type: Name
    where: dict[Name, Any] = Field(default_factory=dict, max_length=20)
    within: DurationText
    count: CountRange | None = None

    @field_validator("where")
    @classmethod
    def _scalars(cls, where: dict[str, Any]) -> dict[str, Any]:
        for name, value in where.items():
            if value is not None and not isinstance(value, str | int | float | bool | Decimal):
                raise ValueError(f"{name}: where compares with a string, a number, true/false or null")
        return check_storable(where)


class _Node(_Strict):
    kind: ClassVar[str]


class All(_Node):
    kind: ClassVar[str] = "all"
    all: list[Rule] = Field(min_length=1)


class Any_(_Node):  # `Any` is typing's; the JSON key is "any"
    kind: ClassVar[str] = "any"
    any: list[Rule] = Field(min_length=1)


class Not(_Node):
    kind: ClassVar[str] = "not"
    not_: Rule = Field(alias="not")


class Attr(_Node):
    """`{"attr": path, op: value}`: one operator per condition. `value` is kept as written; the
    operand evaluation uses is read from it once, at validation."""

    kind: ClassVar[str] = "attr"
    attr: str
    op: AttrOp
    value: Any
    _operand: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_contract(cls, data: Any) -> Any:
        if isinstance(data, dict) and "op" not in data:
            ops = [key for key in data if key != "attr"]
            if len(ops) != 1 or ops[0] not in OPS:
                raise ValueError(f"one operator besides attr: {', '.join(OPS)}")
            return {"attr": data.get("attr"), "op": ops[0], "value": data[ops[0]]}
        return data

    @model_validator(mode="after")
    def _operand_read(self) -> Attr:
        self._operand = read_path_operand(self.attr, self.op, self.value)
        return self

    @property
    def operand(self) -> Any:
        return self._operand

    @model_serializer(mode="plain")
    def _to_contract(self) -> dict[str, Any]:
        return {"attr": self.attr, self.op: self.value}


class Birthday(_Node):
    kind: ClassVar[str] = "birthday"
    birthday: BirthdayWindow


class Purchased(_Node):
    kind: ClassVar[str] = "purchased"
    purchased: PurchasedSpec


class EventCond(_Node):
    kind: ClassVar[str] = "event"
    event: EventSpec


KINDS = ("all", "any", "not", "attr", "birthday", "purchased", "event")


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [key for key in KINDS if key in value]
        return found[0] if len(found) == 1 else None
    return getattr(value, "kind", None)


Rule = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Attr, Tag("attr")]
    | Annotated[Birthday, Tag("birthday")]
    | Annotated[Purchased, Tag("purchased")]
    | Annotated[EventCond, Tag("event")],
    Discriminator(_kind),
]
"""A rule tree node. Validate JSON with `parse_rule`, which also enforces the limits."""

Node: TypeAlias = All | Any_ | Not | Attr | Birthday | Purchased | EventCond


def dump_rule(rule: Node) -> dict[str, Any]:
    """The rule as contract JSON (what was given, less defaults)."""
    dumped: dict[str, Any] = rule.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    return dumped
