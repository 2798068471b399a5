"""Gift cards, merchandise credit and promotional cash: sell, check, redeem, reload, hold, capture.

Every balance movement is one transaction of the account (guarded by its version) and its ledger
entry; a redemption adds its record (keyed by redemption_id: once, for ever). Holds only make part
of the balance unavailable, so an expired hold gives its value back by itself (the hourly sweep
then marks it `expired`; releasing it after its expiry changes nothing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.redemptions import RedemptionRecord, RedemptionRepository
from loyalty.adapters.stored_value import (
    AccountMovement,
    AlreadyExists,
    HoldRecord,
    Message,
    StaleAccount,
    StoredValueRepository,
    account_from_item,
    account_pk,
)
from loyalty.domain import events as ev
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Customer
from loyalty.domain.errors import (
    AccountNotFound,
    AccountNotUsable,
    CardExists,
    CardLocked,
    Forbidden,
    HoldNotCapturable,
    HoldNotFound,
    IdempotencyKeyMismatch,
    InsufficientBalance,
    InvalidPin,
    NotAGiftCard,
    PinRequired,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_caller_id, is_plausible_id, new_id
from loyalty.domain.stored_value import (
    PIN_ATTEMPTS,
    Account,
    AccountKind,
    Hold,
    from_cents,
    hash_pin,
    is_valid_card_number,
    new_gift_card_number,
    new_pin,
    pin_matches,
    reserve_pin_attempt,
    to_cents,
)
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.ports import (
    Clock,
    Idempotency,
    backoff,
    idempotency_ops,
    record_unchanged,
    replay_caller_owned,
    replay_if_recorded,
)

_ATTEMPTS = 12
_T = TypeVar("_T")
GIFT_CARD_VALIDITY_DAYS = 3 * 365
MAX_HOLD_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Sold:
    account: Account
    pin: str | None  # only for the e-card's own email; never stored or shown again


@dataclass(frozen=True)
class Spent:
    record: RedemptionRecord
    account: Account
    amount: int


class StoredValueService:
    def __init__(
        self,
        accounts: StoredValueRepository,
        redemptions: RedemptionRepository,
        stores: StoreService,
        programme: ProgrammeService,
        pepper: Callable[[], str],
        clock: Clock,
        render_spent: Callable[[Spent], str],
        idempotency: IdempotencyStore,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._idempotency = idempotency
        self._resolve_customer = resolve_customer
        self._accounts = accounts
        self._redemptions = redemptions
        self._stores = stores
        self._programme = programme
        self._pepper = pepper
        self._clock = clock
        self._render_spent = render_spent

    # ---- gift cards -------------------------------------------------------------------------
    def sell_gift_card(
        self,
        amount: Decimal,
        currency: str,
        store_id: str | None,
        principal: Principal,
        card_number: str | None = None,
        email: str | None = None,
        name: str | None = None,
        message: str | None = None,
        idempotency: Idempotency = None,
    ) -> Sold:
        store = self._stores.for_request(principal, store_id).store_id
        replay_if_recorded(self._idempotency, idempotency)
        self._currency(currency)
        now = self._clock.now()
        pin = None
        if card_number is not None:
            number = card_number.replace(" ", "")
            if not is_valid_card_number(number):
                raise ValidationFailed.at(
                    ("body", "card_number"), "not a card number (12-19 digits, check digit)"
                )
        else:
            number, pin = new_gift_card_number(), new_pin()
        account = Account(
            account_id=number,
            kind=AccountKind.GIFT_CARD,
            currency=currency,
            balance=to_cents(amount),
            created_at=now,
            store_id=store,
            expires_at=now + timedelta(days=GIFT_CARD_VALIDITY_DAYS),
            pin_hash=hash_pin(pin, number, self._pepper()) if pin else None,
            ledger_seq=1,
        )
        ops: list[TxOp] = [
            self._accounts.create_op(
                account,
                ev.outbox(
                    [
                        ev.DomainEvent(
                            ev.GIFT_CARD_SOLD,
                            {
                                "card": _masked(number),
                                "amount": str(amount),
                                "currency": currency,
                                "store_id": store,
                                "kind": "physical" if pin is None else "e-card",
                            },
                        )
                    ]
                ),
            ),
            self._accounts.movement_op(
                AccountMovement(
                    number, 1, now, account.balance, "activate", account.balance, principal.key_id, store
                )
            ),
        ]
        if pin is not None and email:
            ops.append(
                self._accounts.message_op(
                    Message(
                        message_id=new_id(),
                        to=email,
                        subject="Your gift card",
                        body=_gift_card_email(
                            number, pin, from_cents(account.balance), currency, name, message
                        ),
                        created_at=now,
                        # The outbox shows what was sent, never what spends the card.
                        shown_body=_gift_card_email(
                            _masked(number),
                            "*" * len(pin),
                            from_cents(account.balance),
                            currency,
                            name,
                            message,
                        ),
                    )
                )
            )
        sold = Sold(account, pin)
        ops += idempotency_ops(self._idempotency, idempotency, sold, now)
        try:
            self._accounts.commit(ops)
        except AlreadyExists:
            raise CardExists(f"card {_masked(number)} is already active") from None
        return sold

    def balance(self, number: str, principal: Principal, pin: str | None) -> Account:
        """A till's key may check any card; online, an e-card's balance needs its PIN."""
        account = self._account(number)
        self._require_pin(account, principal, pin)
        return account

    def reload(
        self, number: str, amount: Decimal, principal: Principal, idempotency: Idempotency = None
    ) -> Account:
        replay_if_recorded(self._idempotency, idempotency)
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            account = self._account(number)
            now = self._clock.now()
            if account.kind is not AccountKind.GIFT_CARD:
                raise NotAGiftCard(
                    f"{account.kind.value} changes only by its own issue and refund paths, not a reload"
                )
            if account.is_expired(now) or account.status != "active":
                raise AccountNotUsable("an expired or closed card cannot be reloaded")
            cents = to_cents(amount)
            after = account.moved(cents, now)
            try:
                self._accounts.commit(
                    [
                        self._accounts.update_op(after, account.version),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                cents,
                                "reload",
                                after.balance,
                                principal.key_id,
                                principal.store_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, after, now),
                    ]
                )
                return after
            except StaleAccount:
                continue
        raise ServiceUnavailable("the card kept changing; retry")

    # ---- customer accounts ------------------------------------------------------------------
    def issue_account(
        self,
        customer_id: str,
        kind: AccountKind,
        amount: Decimal,
        currency: str,
        expires_at: datetime | None,
        principal: Principal,
        idempotency: Idempotency = None,
    ) -> Account:
        if kind is AccountKind.PROMO_CASH and not principal.is_admin:
            raise Forbidden("promotional cash is issued by admins (and campaigns)")
        if kind is AccountKind.GIFT_CARD:
            raise ValidationFailed.at(("body", "kind"), "gift cards are sold with POST /v1/gift-cards")
        replay_if_recorded(self._idempotency, idempotency)
        # After the replay check: a customer erased or merged away since still gets the first answer.
        customer_id = self._resolve_customer(customer_id).customer_id
        self._currency(currency)
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise ValidationFailed.at(("body", "expires_at"), "lies in the past")
        if kind is AccountKind.PROMO_CASH and expires_at is None:
            expires_at = now + timedelta(days=90)  # promotional cash always expires
        account = Account(
            account_id=new_id(),
            kind=kind,
            currency=currency,
            balance=to_cents(amount),
            created_at=now,
            customer_id=customer_id,
            store_id=principal.store_id,
            expires_at=expires_at,
            ledger_seq=1,
        )
        self._accounts.commit(
            [
                self._accounts.create_op(account),
                self._accounts.movement_op(
                    AccountMovement(
                        account.account_id,
                        1,
                        now,
                        account.balance,
                        "issue",
                        account.balance,
                        principal.key_id,
                        principal.store_id,
                    )
                ),
                *idempotency_ops(self._idempotency, idempotency, account, now),
            ]
        )
        return account

    def accounts_of(self, customer_id: str) -> list[Account]:
        return self._accounts.accounts_of(customer_id)

    # ---- spending ---------------------------------------------------------------------------
    def redeem(
        self,
        number: str,
        redemption_id: str,
        amount: Decimal,
        store_id: str | None,
        principal: Principal,
        fingerprint: str,
        pin: str | None = None,
        customer_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> Spent:
        replay_if_recorded(self._idempotency, idempotency)
        return self.spend(
            number, redemption_id, amount, store_id, principal, fingerprint, pin, customer_id, idempotency
        )

    def spend(
        self,
        number: str,
        redemption_id: str,
        amount: Decimal,
        store_id: str | None,
        principal: Principal,
        fingerprint: str,
        pin: str | None = None,
        customer_id: str | None = None,
        idempotency: Idempotency = None,
        render: Callable[[Spent], str] | None = None,
    ) -> Spent:
        """`redeem` once its caller has answered a replayed Idempotency-Key (RedemptionService).
        `render`: the body a replayed redemption_id answers, as the route that spent it answered."""
        store = self._stores.for_request(principal, store_id).store_id
        cents = to_cents(amount)
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            # One round trip: the record (a replay) and the account.
            key = (account_pk(number), "ACCOUNT")
            existing, items = self._redemptions.load(
                store, redemption_id, [key] if is_plausible_id(number) else []
            )
            if existing is not None:
                replay_caller_owned(existing, fingerprint, "redemption")
            if key not in items:
                raise AccountNotFound("no such gift card or account")
            account = account_from_item(items[key])
            account.ensure_spent_for(customer_id)
            self._require_pin(account, principal, pin)
            now = self._clock.now()
            if account.is_expired(now) or account.status != "active":
                raise AccountNotUsable("the account is expired or closed", available="0.00")
            available = account.available(now)
            if available < cents:
                raise InsufficientBalance(
                    f"{from_cents(available)} available, {from_cents(cents)} asked",
                    available=str(from_cents(available)),
                    currency=account.currency,
                )
            after = account.moved(-cents, now)
            record = RedemptionRecord(
                redemption_id=redemption_id,
                kind="stored_value",
                store_id=store,
                customer_id=account.customer_id,
                created_at=now,
                actor=principal.key_id,
                points=0,
                account_id=account.account_id,
                amount=cents,
            )
            spent = Spent(record, after, cents)
            events = [_redeemed_event(account, after, cents, store, redemption_id=redemption_id)]
            try:
                self._accounts.commit(
                    [
                        self._redemptions.put_op(
                            record, (render or self._render_spent)(spent), fingerprint, ev.outbox(events)
                        ),
                        self._accounts.update_op(after, account.version),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                -cents,
                                "redeem",
                                after.balance,
                                principal.key_id,
                                store,
                                redemption_id=redemption_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, spent, now),
                    ]
                )
                return spent
            except StaleAccount:
                continue
        raise ServiceUnavailable("the account kept changing; retry")

    def reverse(
        self, record: RedemptionRecord, principal: Principal, idempotency: Idempotency = None
    ) -> Spent:
        """Put a stored-value redemption back on its account; reversing twice changes nothing.
        The caller (RedemptionService.reverse) has answered a replayed Idempotency-Key already."""
        assert record.account_id is not None
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            account = self._account(record.account_id)
            if record.status == "reversed":
                return self._unchanged(Spent(record, account, record.amount or 0), idempotency)
            now = self._clock.now()
            cents = record.amount or 0
            after = account.moved(cents, now)
            reversed_record = record.reversed(now)
            spent = Spent(reversed_record, after, cents)
            try:
                self._accounts.commit(
                    [
                        self._redemptions.reverse_op(reversed_record, []),
                        self._accounts.update_op(after, account.version),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                cents,
                                "reverse",
                                after.balance,
                                principal.key_id,
                                record.store_id,
                                redemption_id=record.redemption_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, spent, now),
                    ]
                )
                return spent
            except StaleAccount:
                found = self._redemptions.get(record.store_id, record.redemption_id)
                record = found[0] if found else record
                continue
        raise ServiceUnavailable("the account kept changing; retry")

    # ---- holds ------------------------------------------------------------------------------
    def hold(
        self,
        number: str,
        hold_id: str,
        amount: Decimal,
        expires_in_seconds: int,
        principal: Principal,
        pin: str | None = None,
        customer_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> HoldRecord:
        replay_if_recorded(self._idempotency, idempotency)
        cents = to_cents(amount)
        if not 0 < expires_in_seconds <= MAX_HOLD_SECONDS:
            raise ValidationFailed.at(("body", "expires_in_seconds"), f"between 1 and {MAX_HOLD_SECONDS}")
        store = principal.store_id  # the placing key's store's hold (None: an admin key's)
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            existing = self._accounts.find_hold(store, hold_id) if is_caller_id(hold_id) else None
            if existing is not None:
                same = existing.kind == "stored_value" and existing.account_id == number
                if not same or existing.amount != cents:
                    raise IdempotencyKeyMismatch("this hold_id was already used for another hold")
                return self._unchanged(existing, idempotency)
            account = self._account(number)
            account.ensure_spent_for(customer_id)  # a capture spends what the hold reserves
            self._require_pin(account, principal, pin)
            now = self._clock.now()
            if account.is_expired(now) or account.status != "active":
                raise AccountNotUsable("the account is expired or closed")
            available = account.available(now)
            if available < cents:
                raise InsufficientBalance(
                    f"{from_cents(available)} available",
                    available=str(from_cents(available)),
                    currency=account.currency,
                )
            record = HoldRecord(
                hold_id,
                account.account_id,
                cents,
                now + timedelta(seconds=expires_in_seconds),
                now,
                store,
            )
            after = replace(
                account,
                holds={**account.live_holds(now), record.ref: Hold(record.ref, cents, record.expires_at)},
                version=account.version + 1,
            )
            try:
                self._accounts.commit(
                    [
                        self._accounts.hold_put_op(record),
                        self._accounts.update_op(after, account.version),
                        *idempotency_ops(self._idempotency, idempotency, record, now),
                    ]
                )
                return record
            except (StaleAccount, AlreadyExists):
                continue
        raise ServiceUnavailable("the account kept changing; retry")

    def capture(
        self,
        hold_id: str,
        amount: Decimal,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account]:
        replay_if_recorded(self._idempotency, idempotency)
        cents = to_cents(amount)
        ref = self.find_hold(hold_id, principal, store_id).ref
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            hold = self._hold(ref)
            principal.ensure_store(hold.store_id)  # a hold belongs to the store that placed it
            account = self._account(hold.account_id)
            if hold.status == "captured" and hold.captured == cents:
                return self._unchanged((hold, account), idempotency)  # a retried capture
            now = self._clock.now()
            if hold.status != "held":
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            if now >= hold.expires_at:
                raise HoldNotCapturable("the hold expired and its value went back", hold_status="expired")
            if cents > hold.amount:
                raise ValidationFailed.at(("body", "amount"), f"more than held ({from_cents(hold.amount)})")
            captured = replace(hold, status="captured", captured=cents, version=hold.version + 1)
            after = account.moved(-cents, now)
            after = replace(after, holds={k: h for k, h in after.holds.items() if k != ref})
            try:
                events = [_redeemed_event(account, after, cents, hold.store_id, hold_id=hold_id)]
                self._accounts.commit(
                    [
                        self._accounts.hold_update_op(captured),
                        self._accounts.update_op(after, account.version, ev.outbox(events)),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                -cents,
                                "capture",
                                after.balance,
                                principal.key_id,
                                hold.store_id,
                                hold_id=hold_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, (captured, after), now),
                    ]
                )
                return captured, after
            except StaleAccount:
                continue
        raise ServiceUnavailable("the hold kept changing; retry")

    def release(
        self,
        hold_id: str,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account]:
        replay_if_recorded(self._idempotency, idempotency)
        ref = self.find_hold(hold_id, principal, store_id).ref
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            hold = self._hold(ref)
            principal.ensure_store(hold.store_id)  # a hold belongs to the store that placed it
            account = self._account(hold.account_id)
            if hold.status in ("released", "expired"):
                return self._unchanged((hold, account), idempotency)
            if hold.status != "held":
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            now = self._clock.now()
            if now >= hold.expires_at:
                # Its value is available already; the hourly sweep settles the record.
                return self._unchanged((hold, account), idempotency)
            released = replace(hold, status="released", version=hold.version + 1)
            after = replace(
                account,
                holds={k: h for k, h in account.holds.items() if k != ref},
                version=account.version + 1,
            )
            try:
                self._accounts.commit(
                    [
                        self._accounts.hold_update_op(released),
                        self._accounts.update_op(after, account.version),
                        *idempotency_ops(self._idempotency, idempotency, (released, after), now),
                    ]
                )
                return released, after
            except StaleAccount:
                continue
        raise ServiceUnavailable("the hold kept changing; retry")

    def find_hold(self, hold_id: str, principal: Principal, store_id: str | None = None) -> HoldRecord:
        """The caller's hold: a hold_id is unique per store, so a till's key finds its own store's
        hold (naming another store is 403) and an admin key names the store in `store_id` (none:
        the holds admin keys placed). Another store's hold with the same id never answers."""
        scope = principal.ensure_store(store_id)
        hold = self._accounts.find_hold(scope, hold_id) if is_caller_id(hold_id) else None
        if hold is None:
            raise HoldNotFound(f"no hold {hold_id[:64]!r}")
        return hold

    def messages(self, limit: int, cursor: str | None) -> tuple[list[Message], str | None]:
        return self._accounts.messages(limit, cursor)

    def ledger(
        self, number: str, limit: int, cursor: str | None, principal: Principal, pin: str | None = None
    ) -> tuple[list[AccountMovement], str | None]:
        """An e-card's movements show its balance: online they need its PIN, as the balance does."""
        self._require_pin(self._account(number), principal, pin)
        return self._accounts.ledger(number, limit, cursor)

    def _require_pin(self, account: Account, principal: Principal, pin: str | None) -> None:
        if account.pin_hash is not None and principal.kind is KeyKind.WEB:
            self._check_pin(account, pin)

    # ---- helpers ----------------------------------------------------------------------------
    def _unchanged(self, result: _T, idempotency: Idempotency) -> _T:
        record_unchanged(self._idempotency, idempotency, result, self._clock.now(), self._accounts.commit)
        return result

    def _account(self, number: str) -> Account:
        account = self._accounts.get(number) if is_plausible_id(number) else None
        if account is None:
            raise AccountNotFound("no such gift card or account")
        return account

    def _hold(self, ref: str) -> HoldRecord:
        hold = self._accounts.get_hold(ref)
        if hold is None:
            raise HoldNotFound("the hold is gone")
        return hold

    def _check_pin(self, account: Account, pin: str | None) -> None:
        """A missing PIN is refused without counting. Otherwise the attempt is counted as wrong
        before the PIN is looked at (reserve_pin_attempt), so concurrent guesses cannot outrun the
        lock; a right PIN then clears the count, unless another attempt was counted meanwhile."""
        if not pin:
            raise PinRequired("send the card's PIN in the x-gift-card-pin header")
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            if attempt:
                account = self._account(account.account_id)
            reserved = reserve_pin_attempt(account, self._clock.now())
            try:
                self._accounts.commit(
                    [
                        self._accounts.pin_op(
                            account.account_id, reserved.failures, reserved.locked_until, account.pin_version
                        )
                    ]
                )
                break
            except StaleAccount:
                continue  # another attempt was counted first: count this one after it
        else:
            raise ServiceUnavailable("the card is busy; retry")
        if pin_matches(account, pin, self._pepper()):
            # Only if nothing was counted since ours: a concurrent wrong guess keeps its count.
            with contextlib.suppress(StaleAccount):
                self._accounts.commit(
                    [self._accounts.pin_op(account.account_id, 0, None, account.pin_version + 1)]
                )
            return
        if reserved.locked_until is not None:
            raise CardLocked(
                "too many wrong PINs; the card is locked", locked_until=reserved.locked_until.isoformat()
            )
        raise InvalidPin("wrong PIN", attempts_left=PIN_ATTEMPTS - reserved.failures)

    def _currency(self, currency: str) -> None:
        expected = self._programme.current().currency
        if currency != expected:
            raise ValidationFailed.at(("body", "currency"), f"the programme runs in {expected}")


def _gift_card_email(
    number: str, pin: str, amount: Decimal, currency: str, name: str | None, message: str | None
) -> str:
    greeting = f"Dear {name}, here" if name else "Here"
    body = f"{greeting} is your gift card: {number}, PIN {pin}, worth {amount} {currency}."
    return body + (f"\n\n{message}" if message else "")


def _redeemed_event(
    account: Account, after: Account, cents: int, store_id: str | None, **ref: str
) -> ev.DomainEvent:
    """StoredValueRedeemed: a redemption or a captured hold took `cents` from the account."""
    return ev.DomainEvent(
        ev.STORED_VALUE_REDEEMED,
        {
            "account": _masked(account.account_id),
            "kind": account.kind.value,
            "amount": str(from_cents(cents)),
            "currency": account.currency,
            "balance": str(from_cents(after.balance)),
            "store_id": store_id,
            "customer_id": account.customer_id,
            **ref,
        },
    )


def _masked(number: str) -> str:
    return "*" * max(0, len(number) - 4) + number[-4:]
