"""Marketers' challenges and badges, and a customer's progress on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loyalty.adapters.offers import DocumentExists, OfferRepository, StaleDocument
from loyalty.domain.errors import (
    BadgeNotFound,
    ChallengeNotFound,
    FieldError,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.gamification import Badge, Challenge, Progress, named_stores, unknown_references
from loyalty.domain.ids import is_plausible_id
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.ports import Clock

if TYPE_CHECKING:
    from loyalty.adapters.gamification import GamificationRepository
    from loyalty.domain.customers import Customer

CHALLENGE, BADGE = "CHALLENGE", "BADGE"


@dataclass(frozen=True)
class Definitions:
    """Every challenge and badge, read once per batch of activities."""

    challenges: tuple[Challenge, ...]
    badges: tuple[Badge, ...]

    @property
    def any_live(self) -> bool:
        """Whether any challenge or badge could count anything (drafts and paused ones cannot)."""
        return any(c.status == "active" for c in self.challenges) or any(
            b.status == "active" for b in self.badges
        )


@dataclass(frozen=True)
class ChallengeStanding:
    challenge: Challenge
    progress: Progress


class GamificationService:
    def __init__(
        self,
        *,
        documents: OfferRepository,
        repo: GamificationRepository,
        stores: StoreService,
        programme: ProgrammeService,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._documents = documents
        self._stores = stores
        self._programme = programme
        self._repo = repo
        self._clock = clock
        self._resolve_customer = resolve_customer

    # ---- definitions ------------------------------------------------------------------------
    def put_challenge(self, challenge: Challenge) -> tuple[Challenge, bool]:
        self._check_references(challenge)
        return challenge, self._put(CHALLENGE, challenge.challenge_id, challenge.model_dump_json())

    def _check_references(self, challenge: Challenge) -> None:
        stores = {s for s in named_stores(challenge) if self._stores.find(s) is not None}
        groups = {
            g
            for g in set(challenge.audience.price_groups)
            if is_plausible_id(g) and self._documents.get_document("PRICEGROUP", g) is not None
        }
        tiers = [tier.name for tier in self._programme.current().tiers]
        errors = unknown_references(challenge, tiers=tiers, stores=stores, price_groups=groups)
        coupon = challenge.reward.coupon
        if coupon is not None and self._documents.get_document("OFFER", coupon.offer_id) is None:
            errors.append(
                FieldError(("body", "reward", "coupon", "offer_id"), f"unknown offer {coupon.offer_id!r}")
            )
        if errors:
            raise ValidationFailed(
                "the challenge names tiers, stores, price groups or an offer that do not exist", errors=errors
            )

    def get_challenge(self, challenge_id: str) -> Challenge:
        stored = (
            self._documents.get_document(CHALLENGE, challenge_id) if is_plausible_id(challenge_id) else None
        )
        if stored is None:
            raise ChallengeNotFound(f"no challenge {challenge_id[:64]!r}")
        return Challenge.model_validate_json(stored.document)

    def list_challenges(self, limit: int, cursor: str | None) -> tuple[list[Challenge], str | None]:
        stored, next_cursor = self._documents.list_documents(CHALLENGE, limit, cursor)
        return [Challenge.model_validate_json(s.document) for s in stored], next_cursor

    def put_badge(self, badge: Badge) -> tuple[Badge, bool]:
        return badge, self._put(BADGE, badge.badge_id, badge.model_dump_json())

    def get_badge(self, badge_id: str) -> Badge:
        stored = self._documents.get_document(BADGE, badge_id) if is_plausible_id(badge_id) else None
        if stored is None:
            raise BadgeNotFound(f"no badge {badge_id[:64]!r}")
        return Badge.model_validate_json(stored.document)

    def list_badges(self, limit: int, cursor: str | None) -> tuple[list[Badge], str | None]:
        stored, next_cursor = self._documents.list_documents(BADGE, limit, cursor)
        return [Badge.model_validate_json(s.document) for s in stored], next_cursor

    def _challenges(self) -> tuple[Challenge, ...]:
        return tuple(
            Challenge.model_validate_json(s.document) for s in self._documents.all_documents(CHALLENGE)
        )

    def definitions(self) -> Definitions:
        return Definitions(
            challenges=self._challenges(),
            badges=tuple(Badge.model_validate_json(s.document) for s in self._documents.all_documents(BADGE)),
        )

    def _put(self, kind: str, key: str, document: str) -> bool:
        """Create or replace at the version read; True when created."""
        for _ in range(5):
            current = self._documents.get_document(kind, key)
            try:
                self._documents.put_document(
                    kind, key, document, self._clock.now(), current.version if current else None
                )
            except (StaleDocument, DocumentExists):
                continue
            return current is None
        raise ServiceUnavailable(f"the {kind.lower()} kept changing; retry")

    # ---- a customer's standing --------------------------------------------------------------
    def challenges_of(self, customer_id: str) -> list[ChallengeStanding]:
        """Every live challenge (with no progress yet: zero) and every one with progress."""
        customer = self._resolve_customer(customer_id)
        progress = {p.challenge_id: p for p in self._repo.progress_of(customer.customer_id)}
        now = self._clock.now()
        standings = []
        for challenge in self._challenges():
            mine = progress.get(challenge.challenge_id)
            if mine is None and not challenge.live_at(now):
                continue
            standings.append(ChallengeStanding(challenge, mine or Progress(challenge.challenge_id)))
        return standings
