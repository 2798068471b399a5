"""What redemptions, their reversals and points holds share: the command and the answer, who a
request's customer is, spending points from the lots, and finding a store's redemption."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from loyalty.adapters.customers import CustomerRepository
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.redemptions import RedemptionRecord, RedemptionRepository
from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain import links as link_rules
from loyalty.domain import lots as lot_summary
from loyalty.domain import points as points_ledger
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer, CustomerRef, CustomerStatus
from loyalty.domain.errors import CustomerNotFound, RedemptionNotFound, ValidationFailed
from loyalty.domain.ids import is_caller_id
from loyalty.services.config import ProgrammeService

if TYPE_CHECKING:
    from loyalty.services.stored_value import Spent


@dataclass(frozen=True)
class RedeemCommand:
    redemption_id: str
    kind: str  # points | coupon | stored_value
    store_id: str | None
    customer: CustomerRef
    fingerprint: str
    points: int | None = None
    coupon: str | None = None
    order_ref: str | None = None
    reward_id: str | None = None
    account_id: str | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class Redemption:
    record: RedemptionRecord
    balance_after: int | None
    available: int | None


def of_spent(spent: Spent) -> Redemption:
    """A stored-value redemption as /v1/redemptions answers it."""
    return Redemption(spent.record, None, None)


@dataclass(frozen=True)
class PointsSpend:
    spent: points_ledger.Spent
    ops: list[TxOp]  # the lots' updates and the ledger entry


def spend_points(
    txns: TransactionRepository,
    customer: Customer,
    points: int,
    now: datetime,
    *,
    consistent: bool,
    store_id: str | None,
    redemption_id: str,
    actor: str,
) -> PointsSpend | None:
    """The ledger's spend from the lots as read, and the writes it makes (the lots' updates, then
    the ledger entry). None when the lots read do not cover it (the open-lot index lags).

    The lots come from the profile's summary when it is exact and covers the spend (no read of
    its own); otherwise from the open-lot index, and the profile then gets a fresh summary when
    what was read is surely complete (read consistently, or the index has settled)."""
    summary = lot_summary.current(customer.lots, customer.ledger_seq)
    if summary is not None and not consistent and summary.covers(points, now):
        spent = points_ledger.spend(
            customer, summary.lots, points, now, store_id=store_id, redemption_id=redemption_id, actor=actor
        )
    else:
        lots = txns.open_lots(customer.customer_id, consistent)
        spent = points_ledger.spend(
            customer, lots, points, now, store_id=store_id, redemption_id=redemption_id, actor=actor
        )
        if spent is not None and (consistent or _index_settled(customer, now)):
            kept = {lot.seq: remaining for lot, remaining in spent.lots}
            fresh = lot_summary.of_open_lots(
                spent.customer.ledger_seq,
                (replace(lot, remaining=kept.get(lot.seq, lot.remaining)) for lot in lots),
            )
            spent = replace(spent, customer=replace(spent.customer, lots=fresh))
    if spent is None:
        return None
    ops = [txns.update_lot_op(lot, remaining) for lot, remaining in spent.lots]
    ops.append(txns.put_ledger_op(spent.entry))
    return PointsSpend(spent, ops)


# The open-lot index is eventually consistent (a global secondary index lags its table by well
# under a second). Every change to a lot also writes the profile, so a profile unchanged for this
# long means the index holds every open lot as it is, and a summary may be written from it.
INDEX_SETTLED = timedelta(seconds=10)


def _index_settled(customer: Customer, now: datetime) -> bool:
    return customer.updated_at is not None and now - customer.updated_at >= INDEX_SETTLED


def store_redemption(
    redemptions: RedemptionRepository, redemption_id: str, principal: Principal, store_id: str | None
) -> RedemptionRecord:
    """A store's redemption: a redemption_id is unique per store, so a till's key finds its own
    store's (naming another store is 403) and an admin key names the store. Another store's
    redemption with the same id never answers."""
    scope = principal.ensure_store(store_id)
    if scope is None:
        raise ValidationFailed.at(("query", "store_id"), "an admin key names the store of the redemption")
    found = redemptions.get(scope, redemption_id) if is_caller_id(redemption_id) else None
    if found is None:
        raise RedemptionNotFound(f"no redemption {redemption_id[:64]!r} in store {scope!r}")
    return found[0]


class ActiveCustomers:
    """The active customer a redemption or a hold is for (422 naming the field otherwise)."""

    def __init__(
        self,
        *,
        customers: CustomerRepository,
        programme: ProgrammeService,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._customers = customers
        self._programme = programme
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound

    def customer_id_of(self, ref: CustomerRef) -> str:
        """The customer a ref names: its id as given, or the owner of its link (422 if none)."""
        if ref.link_type is None:
            return ref.customer_id or ""
        try:
            identity = self._programme.current().identify(ref.link_type, ref.link_value or "")
        except link_rules.LinkInvalid as bad:
            raise ValidationFailed.at(("body", "customer", "link", bad.field), bad.msg) from None
        if not identity.usable:
            raise ValidationFailed.at(
                ("body", "customer", "link", "value"),
                "a placeholder value identifies nobody",
                link_rules.PLACEHOLDER,
            )
        owner = self._customers.owner_of(identity.link)
        if owner is None:
            raise ValidationFailed.at(("body", "customer", "link"), "no customer has this link")
        return owner

    def resolve(self, customer_id: str) -> Customer:
        try:
            customer = self._resolve_customer(customer_id)
        except CustomerNotFound:
            raise ValidationFailed.at(
                ("body", "customer", "customer_id"), f"no customer {customer_id[:64]}"
            ) from None
        if customer.status is not CustomerStatus.ACTIVE:
            raise ValidationFailed.at(("body", "customer", "customer_id"), "the customer is not active")
        return customer
