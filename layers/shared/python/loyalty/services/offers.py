"""Marketers' offers and price groups, personal coupons, and the cached offer catalogue."""

from __future__ import annotations

import gc
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from loyalty.adapters.offers import CouponRecord, DocumentExists, OfferRepository, StaleDocument
from loyalty.domain.coupons import normalise_code
from loyalty.domain.errors import (
    CouponNotFound,
    OfferExists,
    OfferNotFound,
    PriceGroupNotFound,
    RewardExists,
    RewardNotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_plausible_id
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.ports import Clock, Idempotency, idempotency_ops, replay_if_recorded

if TYPE_CHECKING:
    from loyalty.adapters.idempotency import IdempotencyStore
    from loyalty.domain.customers import Customer
    from loyalty.domain.offers import Offer, OfferIndex, PriceGroup
    from loyalty.domain.rewards import Reward

# A warm function re-reads the catalogue at most this often (one small GetItem of its version):
# a marketer's change reaches every till within this many seconds.
CATALOGUE_SECONDS = 10.0
_COUPON_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: read aloud at a till


def new_coupon_code() -> str:
    raw = "".join(secrets.choice(_COUPON_ALPHABET) for _ in range(12))  # 60 bits: not guessable
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


@dataclass(frozen=True)
class Catalogue:
    version: int
    offers: dict[str, Offer]
    price_groups: dict[str, PriceGroup]
    index: OfferIndex
    rewards: dict[str, Reward]

    @property
    def uses_segments(self) -> bool:
        """Whether some offer is for segments: only then does a cart read the memberships."""
        return any(o.audience.segments for o in self.offers.values())


class OfferService:
    def __init__(
        self,
        *,
        repo: OfferRepository,
        clock: Clock,
        stores: StoreService,
        programme: ProgrammeService,
        idempotency: IdempotencyStore,
        monotonic: Callable[[], float] = time.monotonic,
        new_code: Callable[[], str] = new_coupon_code,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._idempotency = idempotency
        self._resolve_customer = resolve_customer
        self._repo = repo
        self._stores = stores
        self._programme = programme
        self._clock = clock
        self._monotonic = monotonic
        self._new_code = new_code
        self._catalogue: Catalogue | None = None
        self._checked_at = float("-inf")

    # ---- offers ---------------------------------------------------------------------------
    def create_offer(self, offer: Offer, idempotency: Idempotency = None) -> Offer:
        replay_if_recorded(self._idempotency, idempotency)
        self._check_references(offer)
        now = self._clock.now()
        try:
            version = self._repo.put_document(
                "OFFER",
                offer.offer_id,
                offer.model_dump_json(),
                now,
                None,
                idempotency_ops(self._idempotency, idempotency, offer.model_copy(update={"version": 1}), now),
            )
        except DocumentExists:
            raise OfferExists(
                f"offer {offer.offer_id!r} exists; PUT it to change it", offer_id=offer.offer_id
            ) from None
        self._checked_at = float("-inf")
        return offer.model_copy(update={"version": version})

    def replace_offer(self, offer: Offer) -> Offer:
        self._check_references(offer)
        return self._replace(offer)

    def _replace(self, offer: Offer, idempotency: Idempotency = None) -> Offer:
        for _ in range(5):
            current = self._repo.get_document("OFFER", offer.offer_id)
            if current is None:
                raise OfferNotFound(f"no offer {offer.offer_id!r}")
            now = self._clock.now()
            answer = offer.model_copy(update={"version": current.version + 1})
            try:
                version = self._repo.put_document(
                    "OFFER",
                    offer.offer_id,
                    offer.model_dump_json(),
                    now,
                    current.version,
                    idempotency_ops(self._idempotency, idempotency, answer, now),
                )
            except StaleDocument:
                continue
            self._checked_at = float("-inf")
            return offer.model_copy(update={"version": version})
        raise ServiceUnavailable("the offer kept changing; retry")

    def set_status(self, offer_id: str, status: str, idempotency: Idempotency = None) -> Offer:
        replay_if_recorded(self._idempotency, idempotency)
        # Pausing must work even when a tier or store the offer names has gone since.
        return self._replace(self.get_offer(offer_id).model_copy(update={"status": status}), idempotency)

    def _check_references(self, offer: Offer) -> None:
        from loyalty.domain.offers import unknown_references

        stores = {s for s in set(offer.where.stores) if self._stores.find(s) is not None}
        groups = {
            g
            for g in set(offer.audience.price_groups)
            if is_plausible_id(g) and self._repo.get_document("PRICEGROUP", g) is not None
        }
        tiers = [tier.name for tier in self._programme.current().tiers]
        errors = unknown_references(offer, tiers=tiers, stores=stores, price_groups=groups)
        if errors:
            raise ValidationFailed(
                "the offer names tiers, stores or price groups that do not exist", errors=errors
            )

    def get_offer(self, offer_id: str) -> Offer:
        from loyalty.domain.offers import Offer

        stored = self._repo.get_document("OFFER", offer_id) if is_plausible_id(offer_id) else None
        if stored is None:
            raise OfferNotFound(f"no offer {offer_id[:64]!r}")
        return Offer.model_validate_json(stored.document).model_copy(update={"version": stored.version})

    def list_offers(self, limit: int, cursor: str | None) -> tuple[list[Offer], str | None]:
        from loyalty.domain.offers import Offer

        stored, next_cursor = self._repo.list_documents("OFFER", limit, cursor)
        return [
            Offer.model_validate_json(s.document).model_copy(update={"version": s.version}) for s in stored
        ], (next_cursor)

    # ---- rewards ----------------------------------------------------------------------------
    def put_reward(self, reward: Reward, create: bool, idempotency: Idempotency = None) -> Reward:
        replay_if_recorded(self._idempotency, idempotency)
        for _ in range(5):
            current = self._repo.get_document("REWARD", reward.reward_id)
            if create and current is not None:
                raise RewardExists(f"reward {reward.reward_id!r} exists; PUT it to change it")
            if not create and current is None:
                raise RewardNotFound(f"no reward {reward.reward_id!r}")
            try:
                self._repo.put_document(
                    "REWARD",
                    reward.reward_id,
                    reward.model_dump_json(),
                    self._clock.now(),
                    current.version if current else None,
                    idempotency_ops(self._idempotency, idempotency, reward, self._clock.now()),
                )
                self._checked_at = float("-inf")
                return reward
            except (StaleDocument, DocumentExists):
                continue
        raise ServiceUnavailable("the reward kept changing; retry")

    def get_reward(self, reward_id: str) -> Reward:
        from loyalty.domain.rewards import Reward

        stored = self._repo.get_document("REWARD", reward_id) if is_plausible_id(reward_id) else None
        if stored is None:
            raise RewardNotFound(f"no reward {reward_id[:64]!r}")
        return Reward.model_validate_json(stored.document)

    def list_rewards(self, limit: int, cursor: str | None) -> tuple[list[Reward], str | None]:
        from loyalty.domain.rewards import Reward

        stored, next_cursor = self._repo.list_documents("REWARD", limit, cursor)
        return [Reward.model_validate_json(s.document) for s in stored], next_cursor

    def reward_stock_left(self, reward: Reward) -> int | None:
        return (
            None if reward.stock is None else max(0, reward.stock - self._repo.reward_uses(reward.reward_id))
        )

    def rewards_left(self, rewards: list[Reward]) -> dict[str, int | None]:
        """What remains of each reward's stock (None: unlimited), read together."""
        used = self._repo.rewards_uses([r.reward_id for r in rewards if r.stock is not None])
        return {
            r.reward_id: None if r.stock is None else max(0, r.stock - used[r.reward_id]) for r in rewards
        }

    # ---- price groups -----------------------------------------------------------------------
    def put_price_group(self, group: PriceGroup) -> tuple[PriceGroup, bool]:
        for _ in range(5):
            current = self._repo.get_document("PRICEGROUP", group.group_id)
            try:
                self._repo.put_document(
                    "PRICEGROUP",
                    group.group_id,
                    group.model_dump_json(),
                    self._clock.now(),
                    current.version if current else None,
                )
            except (StaleDocument, DocumentExists):
                continue
            self._checked_at = float("-inf")
            return group, current is None
        raise ServiceUnavailable("the price group kept changing; retry")

    def get_price_group(self, group_id: str) -> PriceGroup:
        from loyalty.domain.offers import PriceGroup

        stored = self._repo.get_document("PRICEGROUP", group_id) if is_plausible_id(group_id) else None
        if stored is None:
            raise PriceGroupNotFound(f"no price group {group_id[:64]!r}")
        return PriceGroup.model_validate_json(stored.document)

    def list_price_groups(self, limit: int, cursor: str | None) -> tuple[list[PriceGroup], str | None]:
        from loyalty.domain.offers import PriceGroup

        stored, next_cursor = self._repo.list_documents("PRICEGROUP", limit, cursor)
        return [PriceGroup.model_validate_json(s.document) for s in stored], next_cursor

    # ---- the catalogue every cart evaluation uses ---------------------------------------------
    def catalogue(self) -> Catalogue:
        """All offers and price groups, indexed; re-read only when their version moved on."""
        now = self._monotonic()
        if self._catalogue is not None and now - self._checked_at < CATALOGUE_SECONDS:
            return self._catalogue
        version = self._repo.catalogue_version()
        self._checked_at = now
        if self._catalogue is not None and self._catalogue.version == version:
            return self._catalogue
        from loyalty.domain.offers import Offer, OfferIndex, PriceGroup

        offers = {
            o.offer_id: o
            for o in (
                Offer.model_validate_json(s.document).model_copy(update={"version": s.version})
                for s in self._repo.all_documents("OFFER")
            )
        }
        groups = {
            g.group_id: g
            for g in (
                PriceGroup.model_validate_json(s.document) for s in self._repo.all_documents("PRICEGROUP")
            )
        }
        from loyalty.domain.rewards import Reward

        rewards = {
            r.reward_id: r
            for r in (Reward.model_validate_json(s.document) for s in self._repo.all_documents("REWARD"))
        }
        self._catalogue = Catalogue(version, offers, groups, OfferIndex.build(list(offers.values())), rewards)
        # A large catalogue is tens of thousands of long-lived objects that every full garbage
        # collection would walk again (about 50 ms at 1,000 offers, every few dozen carts): move
        # everything alive now out of the collector's sight. Reference counting still frees an
        # old catalogue when it is replaced; only a cycle made before this point would be kept.
        gc.freeze()
        return self._catalogue

    # ---- coupons ---------------------------------------------------------------------------
    def issue_coupon(
        self,
        customer_id: str,
        offer_id: str,
        valid_until: datetime | None,
        source: str,
        max_uses: int,
        idempotency: Idempotency = None,
    ) -> CouponRecord:
        replay_if_recorded(self._idempotency, idempotency)
        # After the replay check: a customer erased or merged away since still gets the first answer.
        customer_id = self._resolve_customer(customer_id).customer_id
        offer = self.get_offer(offer_id)
        now = self._clock.now()
        if valid_until is not None and valid_until <= now:
            raise ValidationFailed.at(("body", "valid_until"), "lies in the past")
        if offer.valid_until is not None and (valid_until is None or valid_until > offer.valid_until):
            valid_until = offer.valid_until  # a coupon never outlives its offer
        for _ in range(5):
            coupon = CouponRecord(
                code=self._new_code(),
                offer_id=offer_id,
                customer_id=customer_id,
                issued_at=now,
                valid_until=valid_until,
                max_uses=max_uses,
                uses=0,
                source=source,
            )
            try:
                self._repo.put_coupon(coupon, idempotency_ops(self._idempotency, idempotency, coupon, now))
                return coupon
            except DocumentExists:
                continue
        raise ServiceUnavailable("could not draw a free coupon code; retry")

    def get_coupon(self, code: str) -> CouponRecord:
        normalised = normalise_code(code)
        coupon = self._repo.get_coupon(normalised) if 0 < len(normalised) <= 32 else None
        if coupon is None:
            raise CouponNotFound("no such coupon")
        return coupon

    def coupons_of(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[CouponRecord], str | None]:
        return self._repo.coupons_of(customer_id, limit, cursor)
