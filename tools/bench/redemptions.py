"""Redemptions and stored value (issue 5): points, rewards, coupons, holds, gift cards, e-cards."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loyalty.bootstrap import container
from loyalty.domain.offers import Offer
from loyalty.domain.stored_value import luhn_check_digit
from loyalty_local.runtime import LocalRuntime
from tools.bench.config import ITERATIONS, SALE_LINES, WARMUP
from tools.bench.meter import WRITE_OPS
from tools.bench.report import (
    compress,
    labelled_ops,
    mark,
    print_call_shapes,
    print_endpoint_rows,
    print_written,
    target_met,
)
from tools.bench.scenario import REDEEM_TARGET, Call, Result, Scenario
from tools.bench.transactions import TransactionBench

# ---- redemptions and stored value (issue 5) ------------------------------------------------------

REDEEM_MEMBERS = max(1, int(os.environ.get("BENCH_REDEEM_MEMBERS", "10")))
REDEEM_LOTS = max(1, int(os.environ.get("BENCH_REDEEM_LOTS", "5")))
REDEEM_POINTS = 50  # a points redemption by amount
REWARD_POINTS = 100  # the reward's points price
REWARD_STOCK = 1_000_000  # limited: each redemption takes one in the same transaction
HOLD_POINTS = 50  # a points hold, captured in full (or released)
CARD_VALUE = "100.00"  # a physical card, sold at a till
E_CARD_VALUE = "50.00"  # an e-card, sold online
CREDIT_VALUE = "50.00"  # merchandise credit issued at a till
SPEND = "5.00"  # a stored-value, gift card or e-card redemption
RELOAD = "10.00"
CARD_HOLD = "20.00"  # an e-card hold, captured in full
CARD_RELEASE = "10.00"  # an e-card hold, released
GIFT_CARD_PREFIX = "6036"
# The calls the target applies to: spending points, a coupon or stored value.
REDEMPTION_CALLS = (
    "redeem points",
    "redeem reward",
    "redeem coupon",
    "redeem credit",
    "redeem card",
    "redeem e-card",
)


def gift_card_number() -> str:
    """A physical card's number: 16 digits, the last a Luhn check digit; random, so new every run."""
    body = GIFT_CARD_PREFIX + f"{uuid.uuid4().int % 10**11:011d}"
    return body + luhn_check_digit(body)


@dataclass
class RedemptionFigures:
    results: list[Result]
    lots: tuple[int, int]  # (lots each spender has, the fewest points a spender has)
    seconds: float  # the whole section, its set-up included


# ---- the endpoint bench --------------------------------------------------------------------------


class RedemptionBench(TransactionBench):
    def __init__(self, runtime: LocalRuntime) -> None:
        super().__init__(runtime)
        # redemptions and stored value (issue 5): what one scenario makes for the next, by call index
        self.spenders: list[str] = []  # members with lots enough for every points redemption
        self.lots = (0, 0)  # (lots each spender has, the fewest points a spender has)
        self.holders: list[str] = []  # one member per points hold, each with one lot
        self.reward_id = f"bench-{self.run}-mug"
        self.coupon_offer = f"bench-{self.run}-coupon"
        self.credits: dict[int, tuple[str, str]] = {}  # merchandise credit: (account_id, customer_id)
        self.coupons: dict[int, tuple[str, str]] = {}  # personal coupons: (code, customer_id)
        self.cards = [gift_card_number() for _ in range(WARMUP + ITERATIONS)]  # physical, sold at a till
        self.ecards: dict[int, str] = {}  # e-cards sold online
        self.pins: dict[str, str] = {}  # e-card number -> PIN, read from its email

    # ---- redemptions and stored value (issue 5) ---------------------------------------------------
    def enrol_member(self, email: str, last_name: str) -> tuple[str | None, list[str]]:
        """A member enrolled at a till: (customer_id or None, complaints)."""
        body = {
            "links": [{"type": "email", "value": email}],
            "profile": {"first_name": "Bench", "last_name": last_name},
            "consents": {"email": True},
        }
        status, member = self.call("POST", "/v1/customers", Call("local-pos-key", body=body))
        if status != 201:
            return None, [f"enrolling a member: {status} {json.dumps(member)[:200]}"]
        return str(member["customer_id"]), []

    def earlier_sale(self, customer_id: str, transaction_id: str) -> tuple[int, list[str]]:
        """One earning sale at ams-01 (a lot): (points earned, complaints)."""
        body = self.sale_body(transaction_id, {"customer_id": customer_id})
        status, receipt = self.call("POST", "/v1/transactions", Call("local-pos-key", body=body))
        earned = int(receipt.get("points_earned") or 0) if status == 201 else 0
        if earned <= 0:
            return 0, [f"an earlier sale: {status} {json.dumps(receipt)[:200]}"]
        return earned, []

    def prepare_spenders(self) -> list[str]:
        """REDEEM_MEMBERS members with lots enough for every points redemption to come (REDEEM_LOTS
        sales each, more if those would not cover them), a reward with stock, and an offer the
        personal coupons to be redeemed are issued for."""
        admin, complaints = "local-admin-key", []
        per_member = math.ceil((WARMUP + ITERATIONS) / REDEEM_MEMBERS)
        needed = per_member * (REDEEM_POINTS + REWARD_POINTS)
        for m in range(REDEEM_MEMBERS):
            customer_id, problems = self.enrol_member(f"spender-{self.run}-{m}@example.com", f"Spender {m}")
            complaints += problems
            if customer_id is None:
                continue
            earned, problems = self.earlier_sale(customer_id, f"bench-{self.run}-spend-{m}-0")
            complaints += problems
            if earned <= 0:
                continue
            lots = max(REDEEM_LOTS, math.ceil(needed / earned))
            for k in range(1, lots):
                more, problems = self.earlier_sale(customer_id, f"bench-{self.run}-spend-{m}-{k}")
                complaints += problems
                earned += more
            self.lots = (lots, min(earned, self.lots[1]) if self.spenders else earned)
            self.spenders.append(customer_id)
        reward = {
            "reward_id": self.reward_id,
            "name": "Bench mug",
            "points": REWARD_POINTS,
            "stock": REWARD_STOCK,
        }
        status, answer = self.call("POST", "/v1/admin/rewards", Call(admin, body=reward))
        if status != 201:
            complaints.append(f"adding the reward: {status} {json.dumps(answer)[:200]}")
        offer = {
            "offer_id": self.coupon_offer,
            "name": "Bench coupon: 5.00 off",
            "valid_from": "2026-01-01T00:00:00Z",
            "effect": {"type": "amount_off", "value": "5.00", "applies_to": "basket"},
            "requires_coupon": True,
        }
        container().offers.create_offer(Offer.model_validate(offer))
        return complaints

    def prepare_holders(self) -> list[str]:
        """One member per points hold to come, each with one earlier sale (one lot): a profile carries
        its live points holds, so each member has one at a time, as a web shopper would."""
        complaints: list[str] = []
        for i in range(WARMUP + ITERATIONS):
            customer_id, problems = self.enrol_member(f"holder-{self.run}-{i}@example.com", f"Holder {i}")
            complaints += problems
            if customer_id is None:
                continue
            earned, problems = self.earlier_sale(customer_id, f"bench-{self.run}-hold-{i}")
            complaints += problems
            if earned > 0:
                self.holders.append(customer_id)
        return complaints

    def collect_pins(self) -> list[str]:
        """Each e-card's PIN, from its email as stored for the mailer (newest first): the outbox
        over HTTP masks it, and the bench runs no mailer to send it anywhere."""
        wanted = {f"ecard-{self.run}-{i}@example.com": number for i, number in self.ecards.items()}
        cursor: str | None = None
        while wanted:
            messages, cursor = container().stored_value.messages(200, cursor)
            for message in messages:
                number = wanted.pop(message.to, None)
                found = re.search(r"PIN (\d+)", message.body)
                if number is not None and found:
                    self.pins[number] = found.group(1)
            if not cursor:
                break
        return [f"{len(wanted)} e-cards without a PIN in their email"] if wanted else []

    def prepare_point_releases(self) -> list[str]:
        """A points hold per call to come, on the holders (whose earlier holds were captured)."""
        complaints = []
        for i, customer_id in enumerate(self.holders):
            body = {"hold_id": f"bench-{self.run}-phr-{i}", "points": HOLD_POINTS}
            status, held = self.call(
                "POST",
                "/v1/customers/{customer_id}/holds",
                Call("local-web-key", {"customer_id": customer_id}, body=body),
            )
            if status != 201:
                complaints.append(f"holding points: {status} {json.dumps(held)[:200]}")
        return complaints

    def prepare_card_releases(self) -> list[str]:
        """An e-card hold per call to come."""
        complaints = []
        for i, number in self.ecards.items():
            body = {"hold_id": f"bench-{self.run}-ghr-{i}", "amount": CARD_RELEASE}
            pin = {"x-gift-card-pin": self.pins[number]}
            status, held = self.call(
                "POST",
                "/v1/gift-cards/{card_number}/holds",
                Call("local-web-key", {"card_number": number}, body=body, headers=pin),
            )
            if status != 201:
                complaints.append(f"holding an e-card: {status} {json.dumps(held)[:200]}")
        return complaints

    def redemption_scenarios(self) -> list[Scenario]:
        """Issue 5's calls, each on fresh ids and enough balance; a failed call is left out."""
        pos, web, admin, run = "local-pos-key", "local-web-key", "local-admin-key", self.run
        calls = WARMUP + ITERATIONS
        per_member = math.ceil(calls / REDEEM_MEMBERS)

        def spender(i: int) -> dict[str, str]:
            return {"customer_id": self.spenders[i % len(self.spenders)]}

        def pin(number: str) -> dict[str, str]:
            return {"x-gift-card-pin": self.pins[number]}

        def expect(body: dict[str, Any], what: str, met: bool) -> str | None:
            return None if met else f"not {what}: {json.dumps(body)[:200]}"

        def credited(i: int, body: dict[str, Any]) -> str | None:
            self.credits[i] = (str(body["account_id"]), str(body["customer_id"]))
            return expect(body, "merchandise credit", body.get("balance") == CREDIT_VALUE)

        def coupon(i: int, body: dict[str, Any]) -> str | None:
            self.coupons[i] = (str(body["code"]), str(body["customer_id"]))
            return None

        def e_card(i: int, body: dict[str, Any]) -> str | None:
            self.ecards[i] = str(body["card_number"])
            return expect(body, "an e-card", body.get("e_card") is True)

        def redeemed(kind: str, points: int) -> Callable[[int, dict[str, Any]], str | None]:
            def check(i: int, body: dict[str, Any]) -> str | None:
                met = (
                    body.get("kind") == kind and body.get("status") == "done" and body.get("points") == points
                )
                return expect(body, f"a {kind} redemption", met)

            return check

        def spent(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, f"{SPEND} spent", body.get("amount") == SPEND)

        def status(wanted: str) -> Callable[[int, dict[str, Any]], str | None]:
            return lambda i, body: expect(body, wanted, body.get("status") == wanted)

        redeem, gift_card, hold = "/v1/redemptions", "/v1/gift-cards/{card_number}", "/v1/holds/{hold_id}"
        return [
            Scenario(
                "issue credit",
                "POST",
                "/v1/customers/{customer_id}/accounts",
                201,
                lambda i: Call(
                    pos,
                    spender(i),
                    body={"kind": "merchandise_credit", "amount": CREDIT_VALUE, "currency": "EUR"},
                ),
                note=f"merchandise credit {CREDIT_VALUE} at a till",
                after=credited,
                setup=self.prepare_spenders,
                drop_failed=True,
            ),
            Scenario(
                "issue coupon",
                "POST",
                "/v1/customers/{customer_id}/coupons",
                201,
                lambda i: Call(pos, spender(i), body={"offer_id": self.coupon_offer}),
                note="single use, for a coupon-gated offer",
                after=coupon,
                drop_failed=True,
            ),
            Scenario(
                "sell card",
                "POST",
                "/v1/gift-cards",
                201,
                lambda i: Call(
                    pos, body={"amount": CARD_VALUE, "currency": "EUR", "card_number": self.cards[i]}
                ),
                note=f"a physical card activated at a till, {CARD_VALUE}",
                after=lambda i, body: expect(body, "a physical card", body.get("e_card") is False),
                drop_failed=True,
            ),
            Scenario(
                "sell e-card",
                "POST",
                "/v1/gift-cards",
                201,
                lambda i: Call(
                    web,
                    body={
                        "amount": E_CARD_VALUE,
                        "currency": "EUR",
                        "delivery": {"email": f"ecard-{run}-{i}@example.com", "name": "Bench"},
                    },
                ),
                note=f"web key, {E_CARD_VALUE}; number and PIN by email (the outbox)",
                after=e_card,
                drop_failed=True,
            ),
            Scenario(
                "outbox",
                "GET",
                "/v1/admin/outbox",
                200,
                lambda i: Call(admin),
                note="first page (50)",
                setup=self.collect_pins,
                drop_failed=True,
            ),
            Scenario(
                "card balance",
                "GET",
                gift_card,
                200,
                lambda i: Call(pos, {"card_number": self.cards[i]}),
                note="physical card, till key",
                drop_failed=True,
            ),
            Scenario(
                "e-card balance",
                "GET",
                gift_card,
                200,
                lambda i: Call(web, {"card_number": self.ecards[i]}, headers=pin(self.ecards[i])),
                note="web key + x-gift-card-pin",
                drop_failed=True,
            ),
            Scenario(
                "redeem points",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-pts-{i}",
                        "customer": spender(i),
                        "kind": "points",
                        "points": REDEEM_POINTS,
                    },
                ),
                REDEEM_TARGET,
                f"{REDEEM_POINTS} points by customer_id; {REDEEM_MEMBERS} members in turn",
                after=redeemed("points", REDEEM_POINTS),
                drop_failed=True,
            ),
            Scenario(
                "redeem reward",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-rwd-{i}",
                        "customer": spender(i),
                        "kind": "points",
                        "reward_id": self.reward_id,
                    },
                ),
                REDEEM_TARGET,
                f"a reward at {REWARD_POINTS} points, stock {REWARD_STOCK:,}",
                after=redeemed("points", REWARD_POINTS),
                drop_failed=True,
            ),
            Scenario(
                "redeem coupon",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-cpn-{i}",
                        "customer": {"customer_id": self.coupons[i][1]},
                        "kind": "coupon",
                        "coupon": self.coupons[i][0],
                    },
                ),
                REDEEM_TARGET,
                "the member's own single-use coupon",
                after=redeemed("coupon", 0),
                drop_failed=True,
            ),
            Scenario(
                "redeem credit",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-sv-{i}",
                        "customer": {"customer_id": self.credits[i][1]},
                        "kind": "stored_value",
                        "account_id": self.credits[i][0],
                        "amount": SPEND,
                    },
                ),
                REDEEM_TARGET,
                f"kind stored_value: {SPEND} of merchandise credit",
                after=redeemed("stored_value", 0),
                drop_failed=True,
            ),
            Scenario(
                "redeem card",
                "POST",
                f"{gift_card}/redeem",
                201,
                lambda i: Call(
                    pos,
                    {"card_number": self.cards[i]},
                    body={"redemption_id": f"bench-{run}-gc-{i}", "amount": SPEND},
                ),
                REDEEM_TARGET,
                f"{SPEND} of a physical card, till key",
                after=spent,
                drop_failed=True,
            ),
            Scenario(
                "redeem e-card",
                "POST",
                f"{gift_card}/redeem",
                201,
                lambda i: Call(
                    web,
                    {"card_number": self.ecards[i]},
                    body={"redemption_id": f"bench-{run}-ec-{i}", "amount": SPEND},
                    headers=pin(self.ecards[i]),
                ),
                REDEEM_TARGET,
                f"{SPEND} of an e-card, web key + x-gift-card-pin",
                after=spent,
                drop_failed=True,
            ),
            Scenario(
                "get redemption",
                "GET",
                "/v1/redemptions/{redemption_id}",
                200,
                lambda i: Call(pos, {"redemption_id": f"bench-{run}-pts-{i}"}),
                note="a points redemption",
                drop_failed=True,
            ),
            Scenario(
                "reverse points",
                "POST",
                "/v1/redemptions/{redemption_id}/reverse",
                200,
                lambda i: Call(pos, {"redemption_id": f"bench-{run}-pts-{i}"}),
                note="each 'redeem points' redemption, once",
                after=status("reversed"),
                drop_failed=True,
            ),
            Scenario(
                "reload card",
                "POST",
                f"{gift_card}/reload",
                200,
                lambda i: Call(pos, {"card_number": self.cards[i]}, body={"amount": RELOAD}),
                note=f"{RELOAD} onto a physical card, till key",
                drop_failed=True,
            ),
            Scenario(
                "hold points",
                "POST",
                "/v1/customers/{customer_id}/holds",
                201,
                lambda i: Call(
                    web,
                    {"customer_id": self.holders[i]},
                    body={"hold_id": f"bench-{run}-ph-{i}", "points": HOLD_POINTS},
                ),
                note=f"{HOLD_POINTS} points, web key; a member per hold, 1 lot each",
                after=status("held"),
                setup=self.prepare_holders,
                drop_failed=True,
            ),
            Scenario(
                "capture points",
                "POST",
                f"{hold}/capture",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-ph-{i}"}, body={"points": HOLD_POINTS}),
                note="each 'hold points' hold, in full",
                after=status("captured"),
                drop_failed=True,
            ),
            Scenario(
                "release points",
                "POST",
                f"{hold}/release",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-phr-{i}"}),
                note=f"a {HOLD_POINTS}-point hold per holder, made beforehand",
                after=status("released"),
                setup=self.prepare_point_releases,
                drop_failed=True,
            ),
            Scenario(
                "hold e-card",
                "POST",
                f"{gift_card}/holds",
                201,
                lambda i: Call(
                    web,
                    {"card_number": self.ecards[i]},
                    body={"hold_id": f"bench-{run}-gh-{i}", "amount": CARD_HOLD},
                    headers=pin(self.ecards[i]),  # online, an e-card's holds need its PIN
                ),
                note=f"{CARD_HOLD} of an e-card, web key + x-gift-card-pin",
                after=status("held"),
                drop_failed=True,
            ),
            Scenario(
                "capture e-card",
                "POST",
                f"{hold}/capture",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-gh-{i}"}, body={"amount": CARD_HOLD}),
                note="each 'hold e-card' hold, in full",
                after=status("captured"),
                drop_failed=True,
            ),
            Scenario(
                "release e-card",
                "POST",
                f"{hold}/release",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-ghr-{i}"}),
                note=f"a {CARD_RELEASE} hold per e-card, made beforehand",
                after=status("released"),
                setup=self.prepare_card_releases,
                drop_failed=True,
            ),
            Scenario(
                "accounts",
                "GET",
                "/v1/customers/{customer_id}/accounts",
                200,
                lambda i: Call(pos, spender(i)),
                note=f"a member with {per_member} merchandise credits",
                drop_failed=True,
            ),
            Scenario(
                "account ledger",
                "GET",
                "/v1/accounts/{account_id}/ledger",
                200,
                lambda i: Call(pos, {"account_id": self.cards[i]}),
                note="a physical card: activate, redeem, reload",
                drop_failed=True,
            ),
        ]

    def measure_redemptions(self) -> RedemptionFigures:
        began = time.monotonic()
        results = [self.measure(scenario) for scenario in self.redemption_scenarios()]
        return RedemptionFigures(results, self.lots, time.monotonic() - began)


# ---- cold imports ---------------------------------------------------------------------------------


def print_redemptions(figures: RedemptionFigures) -> None:
    results = figures.results
    lots, points = figures.lots
    calls = WARMUP + ITERATIONS
    print(
        f"Redemptions and stored value (issue 5): {ITERATIONS} calls a row after {WARMUP} warm-up calls"
        " (BENCH_ITERATIONS, BENCH_WARMUP), each row on a fresh container;"
    )
    print(
        f"  the section took {figures.seconds:.0f} s, its set-up (unmetered, through the handlers) included."
    )
    print(
        f"  points: {REDEEM_MEMBERS} members (BENCH_REDEEM_MEMBERS), each with {lots} lots,"
        f" {points:,}+ points (earlier {SALE_LINES}-line sales at ams-01; at least"
    )
    print(
        f"    BENCH_REDEEM_LOTS {REDEEM_LOTS}, more if the redemptions to come need them), redeeming at"
        f" ams-01 (pos key); the reward costs {REWARD_POINTS} points, limited stock."
    )
    print(
        f"    Points holds: {calls} more members, one lot each, one live hold each at a time (the profile"
        " carries its live holds), web key."
    )
    print(
        f"  stored value: physical cards of {CARD_VALUE} sold at a till (pos key), e-cards of {E_CARD_VALUE}"
        f" sold online (web key; PINs read from the stored email),"
    )
    print(
        f"    merchandise credit of {CREDIT_VALUE} issued at a till; one card / credit per call; spends of"
        f" {SPEND}, reloads of {RELOAD}, e-card holds of {CARD_HOLD}."
    )
    print(
        "  Every writing call has its own redemption_id / hold_id and enough balance. A call that fails is"
        " counted and left out:"
    )
    print("  a row's figures are its successful calls only.")
    print()
    print_endpoint_rows(results, "  ")
    print()
    print("  Columns as in the endpoint table (RCU*, WCU*: DynamoDB's rules; $/M: the cost table's total).")
    print()
    print("  What one call sends, in order, each read named by its key (mixes: each shape and how often):")
    print_call_shapes(results, labelled_ops, "    ")
    print()
    print("  What one call writes (mean item size; WCU* by DynamoDB's rules, + the index copies):")
    print_written(results, "    ")
    print()
    targeted = [r for r in results if r.name in REDEMPTION_CALLS]
    print("  Target (issue 5): one transactional write round trip per redemption, plus at most one read:")
    for r in targeted:
        if not r.costs:
            print(f"    MISS {r.name:<14} no call completed")
            continue
        reads = statistics.fmean(c.reads for c in r.costs)
        writes = statistics.fmean(c.writes for c in r.costs)
        kinds = sorted({op for c in r.costs for op in c.ops if op in WRITE_OPS})
        shapes: dict[tuple[str, ...], int] = {}
        for c in r.costs:
            shapes[tuple(c.reads_of)] = shapes.get(tuple(c.reads_of), 0) + 1
        common = max(shapes.items(), key=lambda kv: kv[1])[0]
        print(
            f"    {mark(target_met(r))} {r.name:<14} {reads:g} read{'s' if reads != 1 else ''} +"
            f" {writes:g} write ({'/'.join(kinds) or 'none'}); reads: {compress(list(common))}"
        )
    met = sum(1 for r in targeted if target_met(r))
    print(f"    {met} of {len(targeted)} redemption calls meet it.")
    failed = [r for r in results if r.unexpected]
    print()
    if failed:
        print(
            "  Failed calls (left out of the figures; counting warm-up calls and requests that could not"
            " be built):"
        )
        for r in failed:
            print(
                f"    {r.name} ({r.route}): {len(r.unexpected)} x, {r.failed} of them measured calls;"
                f" first: {r.unexpected[0]}"
            )
    else:
        print(f"  No call failed: {len(results) * calls:,} calls, {len(results)} rows.")
