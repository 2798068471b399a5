"""API models: saved segments, their background evaluation and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from loyalty.api.models.common import Strict
from loyalty.domain.models import Model
from loyalty.domain.segment_definitions import PassStatus
from loyalty.domain.segments import SegmentRule

RULE = (
    'A JSON tree: {"all": [...]}, {"any": [...]}, {"not": rule} and conditions - '
    '{"attr": path, op: value}, {"birthday": {"within_days": n}}, {"purchased": {...}}, '
    '{"event": {...}} (see the API guide, "Segments and customer scores"). At most 50 conditions '
    "and 5 levels; a bad rule is a 422 whose errors name the place, e.g. "
    '["body", "rule", "all", 1, "purchased", "within"].'
)


class SegmentPut(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    rule: SegmentRule = Field(
        description=RULE,
        examples=[
            {
                "all": [
                    {"purchased": {"within": "P30D", "categories": ["coffee"], "count": {"gte": 2}}},
                    {"attr": "consents.email", "eq": True},
                ]
            }
        ],
    )


class EvaluationOut(Model):
    """The background evaluation of the current rule over every customer that existed when it was
    saved (customers who change afterwards are evaluated in real time anyway)."""

    status: PassStatus = Field(description="pending (waiting for the lake) | running | done | failed")
    rule_version: int = Field(description="the version whose rule is being (or was) evaluated")
    evaluated: int
    total: int | None = Field(description="customers to evaluate; null until the pass starts")
    started_at: datetime | None
    finished_at: datetime | None


class SegmentOut(Model):
    segment_id: str
    name: str
    description: str
    rule: dict[str, Any]
    version: int = Field(description="1 when created, +1 on every PUT")
    size: int = Field(description="members now (exact: counted as customers enter and leave)")
    size_as_of: datetime
    evaluation: EvaluationOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: Any) -> SegmentOut:
        d, e = view.definition, view.definition.evaluation
        return cls(
            segment_id=d.segment_id,
            name=d.name,
            description=d.description,
            rule=d.rule,
            version=d.version,
            size=view.size,
            size_as_of=view.size_as_of,
            evaluation=EvaluationOut(
                status=e.status,
                rule_version=e.rule_version,
                evaluated=e.evaluated,
                total=e.total,
                started_at=e.started_at,
                finished_at=e.finished_at,
            ),
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class SegmentList(Model):
    items: list[SegmentOut]
    next_cursor: str | None


class SegmentMemberOut(Model):
    customer_id: str
    member: bool = Field(description="whether the customer is a member of the programme (else identified)")
    entered_at: datetime | None = Field(description="when the customer entered the segment")


class SegmentMemberList(Model):
    items: list[SegmentMemberOut]
    next_cursor: str | None
