"""Stored value: gift cards, merchandise credit and promotional cash. Pure rules, no I/O.

Amounts are integer cents. The balance is what the account's ledger adds up to; holds do not
move the balance, they make part of it unavailable until captured, released or expired — so an
expired hold gives its value back by itself, with no write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from loyalty.domain.errors import CardLocked, Forbidden, ValidationFailed
from loyalty.domain.ids import luhn_check_digit

GIFT_CARD_PREFIX = "6036"  # our issuer range: a scanned number is recognisably a gift card
PIN_ATTEMPTS = 5  # wrong PINs in a row before the card locks
PIN_LOCK_MINUTES = 15


class AccountKind(StrEnum):
    GIFT_CARD = "gift_card"
    MERCHANDISE_CREDIT = "merchandise_credit"
    PROMO_CASH = "promo_cash"


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: str
    amount: int  # cents
    expires_at: datetime


@dataclass(frozen=True)
class Account:
    account_id: str  # a gift card's number, or a generated id
    kind: AccountKind
    currency: str
    balance: int  # cents; Σ of the account's ledger
    created_at: datetime
    customer_id: str | None = None
    store_id: str | None = None
    expires_at: datetime | None = None
    pin_hash: str | None = None  # e-cards: checking a balance online needs the PIN
    pin_failures: int = 0  # PIN attempts counted as wrong in a row (each counted before it is checked)
    locked_until: datetime | None = None
    pin_version: int = 0  # guards the two fields above; balance writes never touch them
    holds: dict[str, Hold] = field(default_factory=dict)
    ledger_seq: int = 0
    status: str = "active"  # active | closed
    version: int = 1

    def held(self, now: datetime) -> int:
        return sum(h.amount for h in self.holds.values() if now < h.expires_at)

    def available(self, now: datetime) -> int:
        if self.is_expired(now) or self.status != "active":
            return 0
        return max(0, self.balance - self.held(now))

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def live_holds(self, now: datetime) -> dict[str, Hold]:
        return {k: h for k, h in self.holds.items() if now < h.expires_at}

    def ensure_spent_for(self, customer_id: str | None) -> None:
        """A customer's own account (merchandise credit, promotional cash, a registered card) is
        spent only for its owner, whichever route asks; an unregistered gift card is bearer value."""
        if self.customer_id is None or self.customer_id == customer_id:
            return
        if customer_id is None:
            raise ValidationFailed.at(
                ("body", "customer"), "this account belongs to a customer: name the customer it is spent for"
            )
        raise Forbidden("this account belongs to another customer")

    def moved(self, delta: int, now: datetime) -> Account:
        """The account after a ledger movement of `delta` cents (expired holds are dropped)."""
        return replace(
            self,
            balance=self.balance + delta,
            ledger_seq=self.ledger_seq + 1,
            holds=self.live_holds(now),
            version=self.version + 1,
        )


@dataclass(frozen=True, slots=True)
class PinAttempt:
    """An attempt at a card's PIN, counted as wrong before the PIN is checked: `failures` counts
    it, and `locked_until` is set when it is the last one allowed (a right PIN lifts both)."""

    failures: int
    locked_until: datetime | None


def reserve_pin_attempt(account: Account, now: datetime) -> PinAttempt:
    """Take one of the window's PIN_ATTEMPTS before a PIN is looked at. Stored with a compare-and-
    set, this bounds the guesses ever evaluated in a window to PIN_ATTEMPTS, however many race:
    the last one locks the card at once (a right PIN unlocks it), so the rest find it locked."""
    if account.locked_until is not None and now < account.locked_until:
        raise CardLocked(
            "too many wrong PINs; try again later", locked_until=account.locked_until.isoformat()
        )
    # A lock that has run out starts a new window.
    failures = (0 if account.locked_until is not None else account.pin_failures) + 1
    locked = now + timedelta(minutes=PIN_LOCK_MINUTES) if failures >= PIN_ATTEMPTS else None
    return PinAttempt(failures, locked)


def to_cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def new_gift_card_number() -> str:
    body = GIFT_CARD_PREFIX + "".join(secrets.choice("0123456789") for _ in range(11))  # 10^11: not guessable
    return body + luhn_check_digit(body)


def is_valid_card_number(number: str) -> bool:
    return 12 <= len(number) <= 19 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(6))


def hash_pin(pin: str, card_number: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), f"{card_number}:{pin}".encode(), hashlib.sha256).hexdigest()


def pin_matches(account: Account, pin: str, pepper: str) -> bool:
    if account.pin_hash is None:
        return True
    return hmac.compare_digest(account.pin_hash, hash_pin(pin, account.account_id, pepper))


def cashback_account(
    account_id: str,
    customer_id: str,
    currency: str,
    cents: int,
    store_id: str,
    now: datetime,
    expires_days: int,
) -> Account:
    """A sale's cashback: promotional cash of the customer's, expiring `expires_days` after it is
    credited (an account of its own, so each sale's cash keeps its own expiry)."""
    return Account(
        account_id=account_id,
        kind=AccountKind.PROMO_CASH,
        currency=currency,
        balance=cents,
        created_at=now,
        customer_id=customer_id,
        store_id=store_id,
        expires_at=now + timedelta(days=expires_days),
        ledger_seq=1,
    )


def cash_to_take_back(account: Account | None, wanted: int, now: datetime) -> tuple[int, int]:
    """What a return takes back of a sale's cashback (cents), and what it cannot: the account never
    goes below zero, nor below what live holds have reserved of it. (taken, shortfall)"""
    if account is None or wanted <= 0:
        return 0, max(wanted, 0)
    left = max(0, account.balance - account.held(now))
    taken = min(wanted, left)
    return taken, wanted - taken
