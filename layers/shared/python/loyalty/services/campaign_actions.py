"""The CampaignActor: one customer on one occasion of a campaign, decided and written exactly once.

`act` reads everything it decides on in one BatchGetItem (the profile, the send log, this
occasion's receipt and the re-entry mark; a second one for the profiles merged into the customer),
decides (domain/campaign_actions.py) and writes everything the customer is given in ONE
TransactWriteItems keyed by (campaign, occasion, customer): the receipt must not exist, so a
retried batch, a redriven run or an event delivered twice writes nothing the second time and
answers the recorded outcome (`first_time=False`). A cancelled transaction says why:

- the receipt (or a merged profile's) exists: someone acted first; read again and answer that;
- the SPENT counter's condition: the limits are reached; the counter's value says which one;
- the profile changed (a sale, a merge) or a coupon code collided: read again, decide again.

`evaluate` makes the same decisions without writing, consuming a local copy of SPENT as it goes:
the dry run (eventually consistent reads, one BatchGetItem per 25 customers).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.adapters.campaign_actions import (
    MERGED,
    PROFILE,
    RECEIPT,
    SPENT,
    ActConflict,
    CampaignActionRepository,
)
from loyalty.adapters.codec import to_iso
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.offers import CouponRecord, OfferRepository
from loyalty.adapters.stored_value import AccountMovement, StoredValueRepository
from loyalty.adapters.templates import TemplateRepository
from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import points as points_ledger
from loyalty.domain.campaign_actions import (
    Plan,
    Receipt,
    Seen,
    Spent,
    cents,
    consume,
    decide,
    limit_reason,
    limited,
)
from loyalty.domain.campaigns import ActResult, Campaign, Cost, Occasion
from loyalty.domain.coupons import valid_until as coupon_valid_until
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import CustomerNotFound, ServiceUnavailable
from loyalty.domain.ids import new_id
from loyalty.domain.ledger import LedgerReason
from loyalty.domain.stored_value import Account, AccountKind
from loyalty.domain.templates import Cause, Channel
from loyalty.services.config import ProgrammeService
from loyalty.services.messaging import MessageQueue
from loyalty.services.offers import new_coupon_code
from loyalty.services.ports import Clock

ATTEMPTS = 10
COUPON_SOURCE = "campaign"
MAX_TX_ITEMS = 100
CACHE_SECONDS = 60.0  # templates' channels and offers' end dates, per process
EVALUATE_CHUNK = 25  # customers per BatchGetItem in the dry run (4 keys each: at most 100)


@dataclass(frozen=True)
class _Built:
    ops: list[TxOp]
    given: dict[str, Any]
    cost: Cost
    control: bool = False


class CampaignActions:
    """loyalty.services.campaign_ports.CampaignActor over the single table."""

    def __init__(
        self,
        *,
        repo: CampaignActionRepository,
        transactions: TransactionRepository,
        offers: OfferRepository,
        accounts: StoredValueRepository,
        messages: MessageQueue,
        templates: TemplateRepository,
        programme: ProgrammeService,
        resolve_customer: Callable[[str], Customer],
        clock: Clock,
        new_code: Callable[[], str] = new_coupon_code,
        new_account_id: Callable[[], str] = new_id,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._txns = transactions
        self._offers = offers
        self._accounts = accounts
        self._messages = messages
        self._templates = templates
        self._programme = programme
        self._resolve_customer = resolve_customer
        self._clock = clock
        self._new_code = new_code
        self._new_account_id = new_account_id
        self._sleep = sleep
        self._monotonic = monotonic
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        # The counter of each limited campaign as its last refusal showed it: it never goes down, so
        # a customer it could not pay for then it cannot pay for now (no transaction to find out).
        self._spent: dict[tuple[str, str], Spent] = {}

    # ---- the port -------------------------------------------------------------------------
    def act(self, campaign: Campaign, occasion: Occasion, customer_id: str) -> ActResult:
        channels = self._channels(campaign)
        for attempt in range(ATTEMPTS):
            seen = self._see(campaign, occasion, customer_id, consistent=True)
            if seen is None:
                return ActResult(customer_id, "skipped", "gone")
            prepared = self._prepare(campaign, occasion, seen, channels)
            if isinstance(prepared, ActResult):
                return prepared
            done = self._commit(campaign, seen.customer.customer_id, prepared, attempt)
            if done is not None:
                return done
        raise ServiceUnavailable("the customer's records kept changing; retry")

    def _prepare(
        self, campaign: Campaign, occasion: Occasion, seen: Seen, channels: dict[str, Channel]
    ) -> ActResult | _Built:
        """The answer without a write (recorded, skipped), or what to write."""
        cid = seen.customer.customer_id
        now = self._clock.now()
        messaging = self._programme.current().messaging
        verdict = decide(campaign, occasion, seen, channels=channels, messaging=messaging, now=now)
        if verdict.kind == "recorded" and verdict.receipt is not None:
            return _recorded(verdict.receipt)
        if verdict.kind == "skip":
            return ActResult(cid, "skipped", verdict.reason)
        if verdict.kind == "control":
            return self._control(campaign, occasion, seen, now)
        assert verdict.plan is not None
        known = self._spent.get(_counter_key(campaign))
        spent_out = limit_reason(campaign, known, verdict.plan.cost) if known else None
        if spent_out is not None:  # the counter only grows: what it refused once, it refuses still
            return ActResult(cid, "skipped", spent_out, cost=verdict.plan.cost)
        return self._actioned(campaign, occasion, seen, verdict.plan, now)

    def _commit(self, campaign: Campaign, cid: str, built: _Built, attempt: int) -> ActResult | None:
        """Write; the result, or None: read again and decide again."""
        try:
            self._repo.commit(built.ops)
        except ServiceUnavailable:
            # The items stayed busy through the table adapter's own retries: a limited campaign's
            # counter, written by every actor of the campaign. Wait, decide again.
            self._backoff(attempt)
            return None
        except ActConflict as conflict:
            reason = self._limit_hit(campaign, conflict, built.cost)
            if reason is not None:
                return ActResult(cid, "skipped", reason, cost=built.cost)
            if not conflict.labels & {RECEIPT, MERGED}:  # someone else acted first: read it back
                self._backoff(attempt)  # the profile changed or a code collided: decide again
            return None
        if built.control:
            return ActResult(cid, "control")
        return ActResult(cid, "actioned", cost=built.cost, given=built.given)

    def evaluate(
        self, campaign: Campaign, occasion: Occasion, customer_ids: Sequence[str]
    ) -> list[ActResult]:
        channels = self._channels(campaign)
        messaging = self._programme.current().messaging
        spent = self._repo.spent(campaign.campaign_id) if limited(campaign) else Spent()
        results: list[ActResult] = []
        for customer_id, seen in self._see_many(campaign, occasion, customer_ids):
            if seen is None:
                results.append(ActResult(customer_id, "skipped", "gone"))
                continue
            cid = seen.customer.customer_id
            verdict = decide(
                campaign, occasion, seen, channels=channels, messaging=messaging, now=self._clock.now()
            )
            if verdict.kind == "recorded" and verdict.receipt is not None:
                results.append(_recorded(verdict.receipt))
            elif verdict.kind == "skip":
                results.append(ActResult(cid, "skipped", verdict.reason))
            elif verdict.kind == "control":
                results.append(ActResult(cid, "control"))
            else:
                assert verdict.plan is not None
                cost = verdict.plan.cost
                reason = None
                if limited(campaign):
                    spent, reason = consume(campaign, spent, cost)
                results.append(
                    ActResult(cid, "skipped", reason, cost=cost)
                    if reason
                    else ActResult(cid, "actioned", cost=cost)
                )
        return results

    # ---- reading --------------------------------------------------------------------------
    def _see(
        self, campaign: Campaign, occasion: Occasion, customer_id: str, *, consistent: bool
    ) -> Seen | None:
        """The live profile the id stands for (a merged-away id: its survivor), with this
        occasion's receipts of it and of every profile merged into it; None: gone."""
        last = campaign.limits.reentry_days is not None
        load = self._repo.load
        loaded = load(campaign.campaign_id, occasion.key, [customer_id], last=last, consistent=consistent)
        customer = loaded.profiles.get(customer_id)
        if customer is not None and customer.status is CustomerStatus.MERGED:
            try:
                customer = self._resolve_customer(customer_id)
            except CustomerNotFound:
                return None
            cid = customer.customer_id
            loaded = load(campaign.campaign_id, occasion.key, [cid], last=last, consistent=consistent)
            customer = loaded.profiles.get(cid)
        if customer is None or customer.status is not CustomerStatus.ACTIVE:
            return None
        receipts = dict(loaded.receipts)
        latest = list(loaded.last.values())
        if customer.merged_from:
            merged = load(
                campaign.campaign_id,
                occasion.key,
                list(customer.merged_from),
                profile=False,
                last=last,
                consistent=consistent,
            )
            receipts.update(merged.receipts)
            latest += merged.last.values()
        return Seen(customer, receipts, max(latest) if latest else None, loaded.sent_log)

    def _see_many(
        self, campaign: Campaign, occasion: Occasion, customer_ids: Sequence[str]
    ) -> Iterator[tuple[str, Seen | None]]:
        """`_see` for the dry run: eventually consistent, EVALUATE_CHUNK customers per BatchGetItem;
        a merged-away id or a profile others were merged into is read on its own."""
        last = campaign.limits.reentry_days is not None
        for start in range(0, len(customer_ids), EVALUATE_CHUNK):
            chunk = customer_ids[start : start + EVALUATE_CHUNK]
            loaded = self._repo.load_many(
                campaign.campaign_id, occasion.key, chunk, last=last, consistent=False
            )
            for customer_id in chunk:
                found = loaded[customer_id]
                customer = found.profiles.get(customer_id)
                if customer is not None and (
                    customer.status is CustomerStatus.MERGED or customer.merged_from
                ):
                    yield customer_id, self._see(campaign, occasion, customer_id, consistent=False)
                elif customer is None or customer.status is not CustomerStatus.ACTIVE:
                    yield customer_id, None
                else:
                    latest = max(found.last.values()) if found.last else None
                    yield customer_id, Seen(customer, found.receipts, latest, found.sent_log)

    def _channels(self, campaign: Campaign) -> dict[str, Channel]:
        from loyalty.domain.campaigns import MessageAction

        wanted = [a.template_id for a in campaign.actions if isinstance(a, MessageAction)]
        if not wanted:
            return {}
        missing = [t for t in wanted if self._cached("template", t) is None]
        if missing:
            found = self._templates.get_many(missing)
            for template_id in missing:
                template = found.get(template_id)
                self._remember("template", template_id, template.channel if template else Channel.EMAIL)
        return {t: self._cached("template", t) or Channel.EMAIL for t in wanted}

    def _offer_until(self, offer_id: str) -> datetime | None:
        from loyalty.domain.offers import Offer

        key = ("offer", offer_id)
        cached = self._cache.get(key)
        if cached is not None and self._monotonic() - cached[0] < CACHE_SECONDS:
            until: datetime | None = cached[1]
            return until
        stored = self._offers.get_document("OFFER", offer_id)
        until = Offer.model_validate_json(stored.document).valid_until if stored else None
        self._cache[key] = (self._monotonic(), until)
        return until

    def _cached(self, kind: str, key: str) -> Any:
        cached = self._cache.get((kind, key))
        if cached is None or self._monotonic() - cached[0] >= CACHE_SECONDS:
            return None
        return cached[1]

    def _remember(self, kind: str, key: str, value: Any) -> None:
        self._cache[(kind, key)] = (self._monotonic(), value)

    # ---- writing --------------------------------------------------------------------------
    def _control(self, campaign: Campaign, occasion: Occasion, seen: Seen, now: datetime) -> _Built:
        cid = seen.customer.customer_id
        receipt = Receipt(campaign.campaign_id, cid, occasion.key, "control", now, occasion.run_id)
        ops = [
            self._repo.receipt_op(receipt, ev.outbox([_event(receipt)]), campaign.name),
            *self._last(campaign, cid, now, occasion),
            self._repo.active_op(cid),
        ]
        return _Built(self._with_merged_checks(ops, campaign, occasion, seen), {}, Cost(), control=True)

    def _actioned(
        self, campaign: Campaign, occasion: Occasion, seen: Seen, plan: Plan, now: datetime
    ) -> _Built:
        customer = seen.customer
        cid = customer.customer_id
        ops: list[TxOp] = []
        given: dict[str, Any] = {}
        if plan.points:
            ops += self._points(campaign, occasion, customer, plan.points, now, given)
        else:
            ops.append(self._repo.active_op(cid))
        ops += self._coupons(campaign, plan, cid, now, given)
        ops += self._promo_cash(campaign, plan, cid, now, given)
        ops += self._queue_messages(campaign, occasion, plan, cid, given)
        receipt = Receipt(
            campaign.campaign_id, cid, occasion.key, "actioned", now, occasion.run_id, given, plan.cost
        )
        ops.insert(0, self._repo.receipt_op(receipt, ev.outbox([_event(receipt)]), campaign.name))
        ops += self._last(campaign, cid, now, occasion)
        if limited(campaign):
            ops.append(self._repo.spent_op(campaign, plan.cost))
        return _Built(self._with_merged_checks(ops, campaign, occasion, seen), given, plan.cost)

    def _last(self, campaign: Campaign, cid: str, now: datetime, occasion: Occasion) -> list[TxOp]:
        """The re-entry mark, while the campaign has reentry_days (set later, it counts from then)."""
        if campaign.limits.reentry_days is None:
            return []
        return [self._repo.last_op(campaign.campaign_id, cid, now, occasion.key)]

    def _points(
        self,
        campaign: Campaign,
        occasion: Occasion,
        customer: Customer,
        points: int,
        now: datetime,
        given: dict[str, Any],
    ) -> list[TxOp]:
        earned = points_ledger.earn(
            customer,
            self._programme.current(),
            now,
            points=points,
            line_points={},
            earned_at=now,
            transaction_id=f"{campaign.campaign_id}#{occasion.key}",
            store_id=customer.profile.favourite_store_id or "",
            reason=LedgerReason.CAMPAIGN,
            actor=f"campaign:{campaign.campaign_id}",
            available_now=True,
        )
        assert earned.entry is not None
        given.update(points=points, ledger_seq=earned.entry.seq)
        return [
            self._repo.profile_op(
                replace(earned.customer, updated_at=now), customer.version, ev.outbox(list(earned.events))
            ),
            self._txns.put_ledger_op(earned.entry, *earned.due),
        ]

    def _coupons(
        self, campaign: Campaign, plan: Plan, cid: str, now: datetime, given: dict[str, Any]
    ) -> list[TxOp]:
        ops = []
        for action in plan.coupons:
            valid_until = coupon_valid_until(now, action.valid_days, self._offer_until(action.offer_id))
            coupon = CouponRecord(
                code=self._new_code(),
                offer_id=action.offer_id,
                customer_id=cid,
                issued_at=now,
                valid_until=valid_until,
                max_uses=1,
                uses=0,
                source=COUPON_SOURCE,
                campaign_id=campaign.campaign_id,
            )
            ops.append(self._offers.new_coupon_op(coupon))
            facts = {"code": coupon.code, "offer_id": coupon.offer_id, "valid_until": to_iso(valid_until)}
            given.setdefault("coupons", []).append(facts)
            given.setdefault("coupon", {"code": coupon.code, "valid_until": to_iso(valid_until)})
        return ops

    def _promo_cash(
        self, campaign: Campaign, plan: Plan, cid: str, now: datetime, given: dict[str, Any]
    ) -> list[TxOp]:
        ops = []
        for action in plan.promo_cash:
            balance = cents(action.amount)
            account = Account(
                account_id=self._new_account_id(),
                kind=AccountKind.PROMO_CASH,
                currency=self._programme.current().currency,
                balance=balance,
                created_at=now,
                customer_id=cid,
                expires_at=now + timedelta(days=action.expires_days),
                ledger_seq=1,
            )
            movement = AccountMovement(
                account.account_id, 1, now, balance, "issue", balance, f"campaign:{campaign.campaign_id}"
            )
            ops += [self._accounts.create_op(account), self._accounts.movement_op(movement)]
            given.setdefault("promo_cash", []).append(
                {
                    "account_id": account.account_id,
                    "amount": str(action.amount),
                    "expires_at": to_iso(account.expires_at),
                }
            )
        return ops

    def _queue_messages(
        self, campaign: Campaign, occasion: Occasion, plan: Plan, cid: str, given: dict[str, Any]
    ) -> list[TxOp]:
        if not plan.messages:
            return []
        promo = sum((Decimal(p["amount"]) for p in given.get("promo_cash", [])), Decimal("0.00"))
        extras: dict[str, Any] = {
            "campaign": {
                "id": campaign.campaign_id,
                "points": int(given.get("points", 0)),
                "promo_cash": str(promo),
            }
        }
        if "coupon" in given:
            extras["coupon"] = dict(given["coupon"])
        ops = []
        sent: dict[str, str] = {}
        for n, (template_id, channel) in enumerate(plan.messages):
            # One message per (campaign, occasion, customer, channel); a second message action on
            # the same channel is keyed by its place among the actions.
            key = channel.value if channel.value not in sent else f"{channel.value}#{n}"
            cause_id = f"{campaign.campaign_id}:{occasion.key}" + ("" if key == channel.value else f":{n}")
            message_id, op = self._messages.queue_op(
                Cause.CAMPAIGN, cause_id, cid, channel, template_id, extras, campaign_id=campaign.campaign_id
            )
            sent[key] = message_id
            ops.append(op)
        given["messages"] = sent
        return ops

    def _with_merged_checks(
        self, ops: list[TxOp], campaign: Campaign, occasion: Occasion, seen: Seen
    ) -> list[TxOp]:
        """Each merged profile still has no receipt for the occasion, checked in the transaction
        (as many as fit in its 100 items: past that, what the read showed stands)."""
        room = MAX_TX_ITEMS - len(ops)
        merged = list(seen.customer.merged_from)[: max(room, 0)]
        return ops + [self._repo.no_receipt_op(campaign.campaign_id, occasion.key, m) for m in merged]

    def _limit_hit(self, campaign: Campaign, conflict: ActConflict, cost: Cost) -> Any:
        """Which limit stopped the write, when the counter's condition failed and nothing else
        did (a receipt written meanwhile wins: the retry answers it)."""
        if SPENT not in conflict.labels or conflict.labels & {RECEIPT, MERGED, PROFILE}:
            return None
        spent = conflict.spent or Spent()
        self._spent[_counter_key(campaign)] = spent
        return limit_reason(campaign, spent, cost) or "over_budget"

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(0.02 * 2**attempt, 0.5) * (0.5 + random.random()))  # noqa: S311 - jitter


def _counter_key(campaign: Campaign) -> tuple[str, str]:
    """A campaign deleted and made again under its id starts a new counter: so does the cache."""
    return campaign.campaign_id, str(campaign.created_at)


def _recorded(receipt: Receipt) -> ActResult:
    return ActResult(
        receipt.customer_id, receipt.outcome, cost=receipt.cost, given=dict(receipt.given), first_time=False
    )


def _event(receipt: Receipt) -> ev.DomainEvent:
    return ev.DomainEvent(
        ev.CAMPAIGN_ACTIONED,
        {
            "campaign_id": receipt.campaign_id,
            "occasion": receipt.occasion,
            "run_id": receipt.run_id,
            "customer_id": receipt.customer_id,
            "outcome": receipt.outcome,
            "given": dict(receipt.given),
        },
    )
