"""Recorded transactions and ledger entries, as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from loyalty.domain.money import ZERO
from loyalty.domain.sales import BONUS_LINE, Line, OrderStatus, SaleType, paid_for, takeback


class LedgerReason(StrEnum):
    EARN = "earn"
    RETRO_CREDIT = "retro_credit"
    RETURN = "return"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REDEEM = "redeem"
    REVERSE = "reverse"
    ADJUST = "adjust"
    EVENT = "event"  # an event earn rule's points: the entry names the rule and the event
    CHALLENGE = "challenge"  # a challenge's reward (gamification)
    CAMPAIGN = "campaign"  # a campaign's points action: the entry's actor is campaign:<id>


@dataclass(frozen=True, slots=True)
class RecordedLine:
    line: Line
    points: int = 0
    returned_quantity: Decimal = ZERO
    cashback: int = 0  # cents of promotional cash the line gave

    @property
    def returnable(self) -> Decimal:
        return self.line.quantity - self.returned_quantity


@dataclass(frozen=True, slots=True)
class AppliedOffer:
    offer_id: str
    amount: Decimal  # money the offer took off this sale (0 for points effects)


@dataclass(frozen=True)
class TransactionRecord:
    store_id: str
    transaction_id: str
    type: SaleType
    channel: str
    occurred_at: datetime
    recorded_at: datetime
    customer_id: str | None
    member: bool
    currency: str
    total: Decimal
    lines: tuple[RecordedLine, ...]
    bonus_points: int = 0
    points_earned: int = 0  # signed: negative on a return
    points_if_member: int = 0
    points_reversed: int = 0  # taken back so far by returns and cancellations
    lot_seq: int | None = None  # the ledger entry (lot) of the earn
    original_store_id: str | None = None
    original_transaction_id: str | None = None
    order_status: OrderStatus | None = None
    coupons: tuple[str, ...] = ()
    offers_applied: tuple[AppliedOffer, ...] = ()
    coupons_redeemed: tuple[str, ...] = ()
    retro_credited: bool = False
    # Cashback (cents): on a sale what it credited to `cashback_account_id` (expiring then) and
    # what returns have claimed back so far; on a return what it took back (negative) and what it
    # could not take because the cash was spent already (`cashback_shortfall`).
    cashback: int = 0
    cashback_if_member: int = 0
    cashback_account_id: str | None = None
    cashback_expires_at: datetime | None = None
    cashback_reversed: int = 0
    cashback_shortfall: int = 0
    version: int = 1

    def line(self, line_id: str) -> RecordedLine | None:
        return next((rl for rl in self.lines if rl.line.line_id == line_id), None)

    def with_returned(
        self, returned: dict[str, Decimal], points_back: int, cashback_back: int = 0, shortfall: int = 0
    ) -> TransactionRecord:
        lines = tuple(
            replace(rl, returned_quantity=rl.returned_quantity + returned.get(rl.line.line_id, ZERO))
            for rl in self.lines
        )
        return replace(
            self,
            lines=lines,
            points_reversed=self.points_reversed + points_back,
            cashback_reversed=self.cashback_reversed + cashback_back,
            cashback_shortfall=self.cashback_shortfall + shortfall,
            version=self.version + 1,
        )

    @property
    def returnable_quantities(self) -> dict[str, Decimal]:
        """Every unit still with the customer: what cancelling or returning a whole order brings back."""
        return {rl.line.line_id: rl.returnable for rl in self.lines if rl.returnable > 0}

    def returned_in_full_by(self, returned: dict[str, Decimal]) -> bool:
        """Whether returning these quantities brings every line back."""
        return all(
            rl.returned_quantity + returned.get(rl.line.line_id, ZERO) >= rl.line.quantity
            for rl in self.lines
        )

    def points_back(self, returned: dict[str, Decimal]) -> int:
        """The points a return of these quantities takes back: each line's share of what it earned,
        and the sale's bonus once the last of it comes back."""
        points = 0
        for line_id, quantity in returned.items():
            recorded = self.line(line_id)
            assert recorded is not None
            points += takeback(recorded.points, recorded.line.quantity, recorded.returned_quantity, quantity)
        if self.bonus_points and self.returned_in_full_by(returned):
            points += self.bonus_points
        return points

    def cashback_back(self, returned: dict[str, Decimal]) -> int:
        """The cashback (cents) a return of these quantities claims back: each line's share of
        what it gave, with the same cumulative rounding as points."""
        back = 0
        for line_id, quantity in returned.items():
            recorded = self.line(line_id)
            assert recorded is not None
            back += takeback(recorded.cashback, recorded.line.quantity, recorded.returned_quantity, quantity)
        return back

    def paid_back(self, returned: dict[str, Decimal]) -> Decimal:
        """What was paid for these quantities, net of the sale's discounts (a cancelled order
        gives back what is left of what was paid)."""
        return sum(
            (
                paid_for(rl.line, rl.returned_quantity, returned.get(rl.line.line_id, ZERO))
                for rl in self.lines
            ),
            ZERO,
        )

    @property
    def fully_returned(self) -> bool:
        return all(rl.returnable <= 0 for rl in self.lines)

    @property
    def earned_points(self) -> dict[str, int]:
        points = {rl.line.line_id: rl.points for rl in self.lines}
        if self.bonus_points:
            points[BONUS_LINE] = self.bonus_points
        return points


@dataclass(frozen=True)
class LedgerEntry:
    customer_id: str
    seq: int
    at: datetime
    points: int
    reason: LedgerReason
    balance_after: int
    transaction_id: str | None = None
    store_id: str | None = None
    redemption_id: str | None = None
    # A return's entry names the return (transaction_id) and the sale whose points it takes back.
    original_transaction_id: str | None = None
    original_store_id: str | None = None
    # An earn is also a lot: what is left of it, and when it matures and expires.
    remaining: int | None = None
    pending_until: datetime | None = None
    expires_at: datetime | None = None
    line_points: dict[str, int] = field(default_factory=dict)
    earn_month: str | None = None
    due_kind: str | None = None  # what the sweep does next with this lot: mature, tier, expire
    actor: str = "system"  # the API key that caused the movement, or the job that did
    rule_id: str | None = None  # an event earn: the rule it earned by
    event_id: str | None = None  # an event earn: the event (unique in store_id)

    @property
    def entry_id(self) -> str:
        return f"{self.customer_id}-{self.seq}"

    @property
    def is_lot(self) -> bool:
        return self.remaining is not None
