"""Marketers' challenges and badges, and a customer's standing on them."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, ok, page
from loyalty.api.models.common import PathId
from loyalty.api.models.gamification import (
    BadgeList,
    ChallengeList,
    ChallengeProgressOut,
    CustomerChallengeList,
)
from loyalty.bootstrap import container
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.gamification import Badge, Challenge

TAGS = ["gamification"]
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=2048)]


def add_routes(router: Router) -> None:
    """Challenges and badges, on the offers function's router (marketers' tools, one function)."""

    @router.put(
        "/v1/admin/challenges/<challenge_id>",
        summary="Create or replace a challenge (a punch card: repeatable, one purchase task)",
        tags=TAGS,
        responses={
            201: docs.model(Challenge, "created"),
            200: docs.model(Challenge, "replaced"),
            422: docs.PROBLEM,
        },
    )
    def put_challenge(challenge_id: PathId, body: Challenge):
        if body.challenge_id != challenge_id:
            raise ValidationFailed.at(("body", "challenge_id"), "must match the path")
        challenge, created = container().gamification.put_challenge(body)
        return ok(challenge, 201 if created else 200)

    @router.get("/v1/admin/challenges", summary="List challenges", tags=TAGS)
    def list_challenges(limit: Limit = None, cursor: Cursor = None) -> ChallengeList:
        items, next_cursor = container().gamification.list_challenges(page(limit), cursor_in(router, cursor))
        return ChallengeList(items=items, next_cursor=cursor_out(router, next_cursor))

    @router.get(
        "/v1/admin/challenges/<challenge_id>",
        summary="A challenge",
        tags=TAGS,
        responses={200: docs.model(Challenge, "the challenge"), 404: docs.PROBLEM},
    )
    def get_challenge(challenge_id: PathId):
        return ok(container().gamification.get_challenge(challenge_id))

    @router.put(
        "/v1/admin/badges/<badge_id>",
        summary="Create or replace a badge (earned once, when a metric reaches `gte`)",
        tags=TAGS,
        responses={201: docs.model(Badge, "created"), 200: docs.model(Badge, "replaced"), 422: docs.PROBLEM},
    )
    def put_badge(badge_id: PathId, body: Badge):
        if body.badge_id != badge_id:
            raise ValidationFailed.at(("body", "badge_id"), "must match the path")
        badge, created = container().gamification.put_badge(body)
        return ok(badge, 201 if created else 200)

    @router.get("/v1/admin/badges", summary="List badges", tags=TAGS)
    def list_badges(limit: Limit = None, cursor: Cursor = None) -> BadgeList:
        items, next_cursor = container().gamification.list_badges(page(limit), cursor_in(router, cursor))
        return BadgeList(items=items, next_cursor=cursor_out(router, next_cursor))

    @router.get(
        "/v1/admin/badges/<badge_id>",
        summary="A badge",
        tags=TAGS,
        responses={200: docs.model(Badge, "the badge"), 404: docs.PROBLEM},
    )
    def get_badge(badge_id: PathId):
        return ok(container().gamification.get_badge(badge_id))

    @router.get(
        "/v1/customers/<customer_id>/challenges",
        summary="A customer's challenges: each task's progress, completions and the reward given",
        tags=TAGS,
        responses={200: docs.model(CustomerChallengeList, "the challenges"), 404: docs.PROBLEM},
    )
    def customer_challenges(customer_id: PathId):
        standings = container().gamification.challenges_of(customer_id)
        return ok(
            CustomerChallengeList(items=[ChallengeProgressOut.of(s.challenge, s.progress) for s in standings])
        )
