"""Cart evaluation (issue 4): the offer sets, the carts, the engine clock, and their figures."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import random
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from loyalty.bootstrap import container
from loyalty.domain.offers import CartLine, CouponInput, Evaluation, Limits, Offer, PriceGroup
from loyalty.domain.stores import Channel, Store
from loyalty.services.offers import CATALOGUE_SECONDS
from loyalty_local.runtime import LocalRuntime
from tools.bench import offers as bench_offers
from tools.bench.base import BenchBase
from tools.bench.config import ITERATIONS, WARMUP
from tools.bench.meter import CallCost
from tools.bench.report import call_shape, mark, per_call
from tools.bench.scenario import Call, Result, api_event, percentile

CART_OFFERS = (10, 100, 1_000)
CART_LINES = (5, 50)
CART_MEMBERS = 10  # members the member carts rotate through, by customer_id
CART_CARTS = 50  # distinct carts per size, in turn; the same carts for every offer count
CART_SEED = 7
CART_COUPON_SHARE = 0.3  # member carts bringing one of the member's personal coupons
CART_COUPONS_EACH = 2  # personal coupons issued per member for the gated offers of each set
CART_PER_CUSTOMER = float(os.environ.get("BENCH_CART_PER_CUSTOMER", "0.10"))
CART_BUDGET = float(os.environ.get("BENCH_CART_BUDGET", "0.05"))
CART_ROUTE = "/v1/cart/evaluate"
CART_STORE = "ams-01"
ENGINE_TARGET_MS = 5.0  # p99 at 1,000 offers and 50 lines (issue 4)
BATCH_GET_KEYS = 100  # DynamoDB's cap on the keys of one BatchGetItem
CATALOGUE_CHECK = "GetItem OFFERS/VERSION"


def cart_offer_mix(count: int, run: str) -> list[Offer]:
    """bench_offers' synthetic mix (each smaller set the start of the larger), plus limits: a share
    with a per-customer limit, a share with a total budget, drawn from a generator of their own so
    the offers themselves are bench_offers' exactly."""
    rng = random.Random(CART_SEED)  # noqa: S311 - made-up data
    draws = random.Random(CART_SEED + 1)  # noqa: S311 - made-up data
    offers = []
    for n in range(count):
        offer = bench_offers.make_offer(rng, n)
        per_customer, budget = draws.random() < CART_PER_CUSTOMER, draws.random() < CART_BUDGET
        limits = Limits(
            per_customer=draws.choice((1, 2, 5)) if per_customer else None,
            budget=draws.choice((1_000, 10_000, 100_000)) if budget else None,
        )
        offers.append(
            offer.model_copy(update={"offer_id": f"bench-{run}-{offer.offer_id}", "limits": limits})
        )
    return offers


def cart_line_json(line: CartLine) -> dict[str, str | None]:
    return {
        "line_id": line.line_id,
        "sku": line.sku,
        "category": line.category,
        "quantity": str(line.quantity),
        "unit_price": f"{line.unit_price:.2f}",
    }


class EngineClock:
    """Times the pure engine (`loyalty.domain.offers.engine.evaluate`) inside the handler. The
    service imports `evaluate` from the package `loyalty.domain.offers` when it calls it, so
    replacing the package's attribute while the cart scenarios run reaches it; if that ever stops
    being so, no engine time is recorded (and none is reported)."""

    def __init__(self) -> None:
        self.ms: float | None = None
        self.applied = 0
        self.collected = -1  # the oldest generation the garbage collector went through during the call
        self._inside = False

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if self._inside and phase == "start":
            self.collected = max(self.collected, info["generation"])

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from loyalty.domain import offers
        from loyalty.domain.offers import engine

        # Where the service looks the name up (the package re-exports it), not where it is defined:
        # replacing engine.evaluate would time nothing.
        original = engine.evaluate

        def timed(*args: Any, **kwargs: Any) -> Evaluation:
            self.collected, self._inside = -1, True
            start = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.ms = (time.perf_counter() - start) * 1000
                self._inside = False
            self.applied = len(result.applied_offer_ids)
            return result

        offers.evaluate = timed
        gc.callbacks.append(self._on_gc)
        try:
            yield
        finally:
            offers.evaluate = original
            gc.callbacks.remove(self._on_gc)

    def take(self) -> tuple[float | None, int, int]:
        """The last engine call's time (None: no call since), offers applied, GC generation reached."""
        ms, self.ms = self.ms, None
        return ms, self.applied, self.collected


@dataclass
class CartCase:
    offers: int  # offers written for this case (the live count read back is `live`)
    lines: int
    anonymous: bool
    result: Result
    live: int
    engine_ms: list[float]
    engine_gc: list[int]  # per engine call: the oldest GC generation collected during it, -1 none
    applied: list[int]
    candidates: float  # offers the index hands the engine, mean over the distinct carts
    first_ms: float
    seconds: float  # wall time from the first (cold) call to the last


@dataclass
class CartFigures:
    cases: list[CartCase]
    limited: tuple[int, int]  # offers with a per-customer limit, with a budget (of the largest set)
    gated: int  # coupon-gated offers (of the largest set)
    written_s: dict[int, float]  # seconds to write each set's new offers
    complaints: list[str]


class CartBench(BenchBase):
    def __init__(self, runtime: LocalRuntime) -> None:
        super().__init__(runtime)
        self.engine = EngineClock()
        self.cart_members: list[str] = []  # members the cart scenarios rotate through
        self.cart_coupons: dict[str, list[tuple[str, str]]] = {}  # member -> [(code, offer_id)]

    # ---- cart evaluation (issue 4) ----------------------------------------------------------------
    def prepare_cart_members(self) -> list[str]:
        """CART_MEMBERS members, all in one price group (a category 5% off, one SKU at 0.99)."""
        pos, admin, complaints = "local-pos-key", "local-admin-key", []
        group_id = f"bench-{self.run}-app-users"
        container().offers.put_price_group(
            PriceGroup.model_validate(
                {
                    "group_id": group_id,
                    "name": "App users",
                    "prices": [
                        {"category": "cat007", "percent_off": "5"},
                        {"sku": "SKU00042", "price": "0.99"},
                    ],
                }
            )
        )
        for m in range(CART_MEMBERS):
            body = {
                "links": [{"type": "email", "value": f"cart-{self.run}-{m}@example.com"}],
                "profile": {"first_name": "Cart", "last_name": f"Member {m}"},
                "consents": {"email": True},
            }
            status, member = self.call("POST", "/v1/customers", Call(pos, body=body))
            if status != 201:
                complaints.append(f"enrolling a member: {status} {json.dumps(member)[:200]}")
                continue
            customer_id = str(member["customer_id"])
            status, answer = self.call(
                "PUT",
                "/v1/admin/price-groups/{group_id}/members/{customer_id}",
                Call(admin, {"group_id": group_id, "customer_id": customer_id}),
            )
            if status != 200:
                complaints.append(f"joining the price group: {status} {json.dumps(answer)[:200]}")
            self.cart_members.append(customer_id)
        return complaints

    def issue_cart_coupons(self, offers: list[Offer]) -> list[str]:
        """CART_COUPONS_EACH personal coupons per member, for gated offers of this set, by the API."""
        gated = [o.offer_id for o in offers if o.requires_coupon]
        rng = random.Random(CART_SEED + len(offers))  # noqa: S311 - made-up data
        complaints: list[str] = []
        for customer_id in self.cart_members:
            issued: list[tuple[str, str]] = []
            for offer_id in rng.sample(gated, min(CART_COUPONS_EACH, len(gated))):
                status, coupon = self.call(
                    "POST",
                    "/v1/customers/{customer_id}/coupons",
                    Call("local-pos-key", {"customer_id": customer_id}, body={"offer_id": offer_id}),
                )
                if status != 201:
                    complaints.append(f"issuing a coupon: {status} {json.dumps(coupon)[:200]}")
                    continue
                issued.append((str(coupon["code"]), offer_id))
            self.cart_coupons[customer_id] = issued
        return complaints

    def cart_requests(
        self, lines: int, anonymous: bool
    ) -> list[tuple[dict[str, Any], list[CartLine], list[str]]]:
        """CART_CARTS carts of `lines` lines: (body, lines, offer ids of the coupons it brings)."""
        rng = random.Random(CART_SEED * 7 + lines)  # noqa: S311 - the same carts for every offer count
        coupon_rng = random.Random(CART_SEED + lines)  # noqa: S311 - made-up data
        carts = []
        for n in range(CART_CARTS):
            cart = bench_offers.make_cart(rng, lines)
            body: dict[str, Any] = {
                "store_id": CART_STORE,
                "currency": "EUR",
                "lines": [cart_line_json(line) for line in cart],
            }
            coupon_offers: list[str] = []
            if not anonymous and self.cart_members:
                member = self.cart_members[n % len(self.cart_members)]
                body["customer"] = {"customer_id": member}
                mine = self.cart_coupons.get(member, [])
                if mine and coupon_rng.random() < CART_COUPON_SHARE:
                    code, offer_id = coupon_rng.choice(mine)
                    body["coupons"] = [code]
                    coupon_offers.append(offer_id)
            carts.append((body, cart, coupon_offers))
        return carts

    def measure_cart(self, offers: int, lines: int, anonymous: bool) -> CartCase:
        pos = "local-pos-key"
        carts = self.cart_requests(lines, anonymous)
        engine_ms: list[float] = []
        engine_gc: list[int] = []
        applied: list[int] = []

        def make_event(i: int) -> dict[str, Any]:
            return api_event(
                "POST", CART_ROUTE, Call(pos, body=carts[i % len(carts)][0]), self.authorize(pos)
            )

        def check(i: int, response: Any) -> str | None:
            ms, offers_applied, collected = self.engine.take()
            body, cart, _ = carts[i % len(carts)]
            if i >= WARMUP and ms is not None:
                engine_ms.append(ms)
                engine_gc.append(collected)
                applied.append(offers_applied)
            if isinstance(response, Exception):
                return repr(response)
            status, text = int(response.get("statusCode", 0)), response.get("body") or ""
            if status != 200:
                return f"{status} {text[:300]}"
            answer = json.loads(text)
            who = body.get("customer", {}).get("customer_id")
            if answer.get("customer_id") != who or len(answer.get("lines", [])) != len(cart):
                return f"not the cart asked about: {text[:200]}"
            wrong = [c for c in answer.get("rejected_coupons", []) if c["reason"] not in ("not_applicable",)]
            return f"a member's own coupon rejected: {wrong}" if wrong else None

        began = time.monotonic()
        samples, costs, first, unexpected = self._loop("cart", make_event, check)
        seconds = time.monotonic() - began
        # Off the clock: how many offers the index handed the engine for these carts.
        catalogue = container().offers.catalogue()
        store = container().stores.require(CART_STORE)
        candidates = statistics.fmean(
            len(
                catalogue.index.candidates(
                    cart,
                    store,
                    [CouponInput(code=f"C{k}", offer_id=o, status="ok") for k, o in enumerate(ids)],
                )
            )
            for _, cart, ids in carts
        )
        who = "anonymous" if anonymous else "member"
        result = Result(
            f"cart {offers}x{lines}{' anon' if anonymous else ''}",
            f"POST {CART_ROUTE}",
            "cart",
            samples,
            costs,
            first,
            unexpected,
            None,
            f"{offers} offers, {lines} lines, {who}",
        )
        return CartCase(
            offers,
            lines,
            anonymous,
            result,
            catalogue.index.live_count,
            engine_ms,
            engine_gc,
            applied,
            candidates,
            self.first_ms,
            seconds,
        )

    def measure_carts(self) -> CartFigures:
        """Each offer set written straight through OfferService (as the admin API does, one
        TransactWriteItems per offer), then every cart size measured on a fresh container."""
        complaints = self.prepare_cart_members()
        mix = cart_offer_mix(max(CART_OFFERS), self.run)
        # The offers name bench_offers' made-up stores, and an offer naming an unknown store is
        # refused: they exist before the offers are written (and before the clock starts).
        for n in range(bench_offers.STORES):
            container().stores.put(Store(f"store-{n:02d}", Channel.POS))
        written: dict[int, float] = {}
        cases: list[CartCase] = []
        done = 0
        with self.engine.installed():
            for count in CART_OFFERS:
                began = time.monotonic()
                for offer in mix[done:count]:
                    container().offers.create_offer(offer)
                written[count] = time.monotonic() - began
                done = count
                complaints += self.issue_cart_coupons(mix[:count])
                for lines in CART_LINES:
                    cases.append(self.measure_cart(count, lines, anonymous=False))
            cases.append(self.measure_cart(max(CART_OFFERS), max(CART_LINES), anonymous=True))
        limited = (
            sum(1 for o in mix if o.limits.per_customer is not None),
            sum(1 for o in mix if o.limits.budget is not None),
        )
        gated = sum(1 for o in mix if o.requires_coupon)
        return CartFigures(cases, limited, gated, written, [f"setup: {c}" for c in complaints])


def batch_keys(cost: CallCost) -> int:
    return sum(int(m) for label in cost.reads_of for m in re.findall(r"BatchGetItem\((\d+) keys\)", label))


def cart_round_trips(cost: CallCost) -> int:
    """Round trips but the catalogue version check (at most one per CATALOGUE_SECONDS)."""
    return cost.calls - cost.reads_of.count(CATALOGUE_CHECK)


def print_carts(figures: CartFigures) -> None:  # noqa: C901, PLR0912, PLR0915 - a report, printed top to bottom
    cases = figures.cases
    biggest, most_lines = max(CART_OFFERS), max(CART_LINES)
    per_customer, budget = figures.limited
    print(
        f"Cart evaluation (issue 4): POST {CART_ROUTE} at {CART_STORE} (pos key), {ITERATIONS} calls a case"
        f" after {WARMUP} warm-up calls,"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        "  each case on a fresh container (its first call loads the catalogue, as a cold Lambda does);"
        f" 1-min load average {load:.2f} on {os.cpu_count()} CPUs at the end."
    )
    print("  offers: bench_offers' mix (75% on 1-3 SKUs, 10% a category, 10% coupon-gated, 2% a store,")
    print(
        f"    1.5% a channel, 1.5% every cart; every effect type) over {bench_offers.SKUS:,} SKUs in"
        f" {bench_offers.CATEGORIES} categories;"
    )
    print(
        f"    of the {biggest:,}: {figures.gated} coupon-gated, {per_customer} with a per-customer limit,"
        f" {budget} with a budget (BENCH_CART_PER_CUSTOMER"
    )
    print(
        f"    {CART_PER_CUSTOMER:g}, BENCH_CART_BUDGET {CART_BUDGET:g}); each set holds the smaller ones,"
        " written through OfferService.create_offer"
    )
    steps, before = [], 0
    for count, seconds in figures.written_s.items():
        steps.append(f"{count - before:,} in {seconds:.1f} s")
        before = count
    print(f"    (one transaction each): {', then '.join(steps)}.")
    print(
        f"  carts: {CART_CARTS} distinct a size, SKUs drawn uniformly, the same carts for every offer count;"
        f" member carts by customer_id,"
    )
    print(
        f"    {CART_MEMBERS} members in turn, all in one price group; {CART_COUPON_SHARE:.0%} bring one of"
        f" the member's {CART_COUPONS_EACH} personal coupons."
    )
    print()
    header = (
        f"  {'offers':>6} {'lines':>5} {'cart':<6} {'live':>5} {'RT':>10} {'keys':>6} {'RCU':>5} {'RCU*':>6} "
        f"{'cand':>5} {'appl':>5} {'p50 ms':>6} {'p99 ms':>6} {'eng p50':>7} {'eng p99':>7} {'eng%':>4} "
        f"{'ddb%':>4}  target"
    )
    print(header)
    print("  " + "-" * (len(header) + 8))
    for case in cases:
        r = case.result
        who = "anon" if case.anonymous else "member"
        if not r.costs:
            print(f"  {case.offers:>6} {case.lines:>5} {who:<6} no call completed")
            continue
        calls = [float(c.calls) for c in r.costs]
        handler = statistics.fmean(r.samples_ms)
        dynamo = statistics.fmean(c.dynamo_ms for c in r.costs) / handler * 100
        if case.engine_ms:
            share = statistics.fmean(case.engine_ms) / handler * 100
            engine = (
                f"{percentile(case.engine_ms, 50):>7.2f} {percentile(case.engine_ms, 99):>7.2f} {share:>4.0f}"
            )
            applied = f"{statistics.fmean(case.applied):>5.1f}"
        else:
            engine, applied = f"{'-':>7} {'-':>7} {'-':>4}", f"{'-':>5}"
        keys = statistics.fmean(batch_keys(c) for c in r.costs)
        rcu = statistics.fmean(c.rcu for c in r.costs)
        rcu_est = statistics.fmean(c.rcu_estimate for c in r.costs)
        met = max(cart_round_trips(c) for c in r.costs) <= 1
        print(
            f"  {case.offers:>6,} {case.lines:>5} {who:<6} {case.live:>5,} {per_call(calls):>10} "
            f"{keys:>6.1f} {rcu:>5.2f} {rcu_est:>6.2f} {case.candidates:>5.1f} {applied} "
            f"{percentile(r.samples_ms, 50):>6.1f} {percentile(r.samples_ms, 99):>6.1f} {engine} "
            f"{dynamo:>4.0f}  {mark(met)} <= 1 RT"
        )
    print()
    print(
        "  live: offers in the catalogue the function loaded. RT: DynamoDB round trips per warm call"
        " ('a (b-c)':"
    )
    print("    mean (min-max)); keys: BatchGetItem keys per call; RCU, RCU*: as in the endpoint table.")
    print("    cand: offers the index hands the engine, mean over the carts; appl: offers applied per call.")
    print("    p50 / p99: handler time, in-process. eng p50 / p99: the engine alone (loyalty.domain.offers")
    print(
        "    .engine.evaluate, timed inside the handler); eng%, ddb%: its share and that of the DynamoDB"
        " calls (botocore"
    )
    print(
        "    validation and (de)serialisation included; DynamoDB Local on localhost) in the mean handler"
        " time."
    )
    print("    The rest: request validation, store / programme / catalogue from the caches, points for the")
    print("    member's and the base tier, the response's serialisation.")
    print(
        f"    target: each warm call <= 1 round trip, the catalogue version GetItem (at most one per"
        f" {CATALOGUE_SECONDS:g} s) aside."
    )
    print()
    print("  What a warm call reads (mixes show each shape and how often it occurred):")
    for case in cases:
        shapes: dict[str, int] = {}
        for c in case.result.costs:
            shapes[call_shape(c)] = shapes.get(call_shape(c), 0) + 1
        ordered = sorted(shapes.items(), key=lambda kv: -kv[1])
        text = "; ".join(f"{s} x{n}" if len(ordered) > 1 else s for s, n in ordered) or "(no call)"
        print(f"    {case.result.name:<18} {text}")
    print()
    print(
        "  The first (cold) call on a fresh container: store, programme, catalogue version, all offer pages:"
    )
    for case in cases:
        first = case.result.first
        print(
            f"    {case.result.name:<18} {first.calls:>2} RT  RCU* {first.rcu_estimate:>6.2f}"
            f"  {case.first_ms:>6.1f} ms  {call_shape(first)}"
        )
    print()
    checks = sum(c.reads_of.count(CATALOGUE_CHECK) for case in cases for c in case.result.costs)
    warm = sum(len(case.result.costs) for case in cases)
    spans = [case.seconds for case in cases]
    rates = [(len(c.result.costs) + WARMUP) / c.seconds for c in cases if c.seconds > 0]
    print(
        f"  Catalogue version GetItem: {checks} in {warm:,} warm calls. Each case ran {min(spans):.1f}-"
        f"{max(spans):.1f} s from its cold call; a warm"
    )
    print(
        f"    container checks at most once per {CATALOGUE_SECONDS:g} s, so an offer change reaches every"
        f" warm function within {CATALOGUE_SECONDS:g} s"
    )
    if rates:
        print(
            f"    (here, at {min(rates):.0f}+ calls/s a container, at most one call in"
            f" {min(rates) * CATALOGUE_SECONDS:,.0f} pays that GetItem)."
        )
    print()
    with_costs = [case for case in cases if case.result.costs]
    over = [case for case in with_costs if max(cart_round_trips(c) for c in case.result.costs) > 1]
    passed = len(with_costs) - len(over)
    listed = ", ".join(
        f"{case.result.name} ({max(cart_round_trips(c) for c in case.result.costs)})" for case in over
    )
    print(
        f"  {mark(bool(with_costs) and not over)} target: a warm evaluation needs at most 1 DynamoDB round"
        f" trip: {passed} of {len(with_costs)} cases" + (f"; more in {listed}" if over else "")
    )
    if over:
        print(
            "    The BatchGetItem names the use counter of every limited offer in the catalogue, whatever the"
        )
        print(
            f"    cart: 1 profile + {per_customer} per-customer + {budget} budget counters + the coupons at"
            f" {biggest:,} offers; DynamoDB takes at most"
        )
        print(
            f"    {BATCH_GET_KEYS} keys a BatchGetItem, so the adapter sends one more, in turn, per started"
            f" {BATCH_GET_KEYS} keys (RCU* grows with them)."
        )
    worst = next((c for c in cases if (c.offers, c.lines, c.anonymous) == (biggest, most_lines, False)), None)
    if worst is not None and worst.engine_ms:
        p99 = percentile(worst.engine_ms, 99)
        print(
            f"  {mark(p99 < ENGINE_TARGET_MS)} target: engine p99 < {ENGINE_TARGET_MS:g} ms at {biggest:,}"
            f" offers and {most_lines} lines: {p99:.2f} ms (p50 {percentile(worst.engine_ms, 50):.2f} ms,"
            f" {len(worst.engine_ms)} calls in the handler)"
        )
        slow = sum(1 for ms in worst.engine_ms if ms >= ENGINE_TARGET_MS)
        print(
            f"    p95 {percentile(worst.engine_ms, 95):.2f} ms, slowest {max(worst.engine_ms):.2f} ms;"
            f" {slow} of {len(worst.engine_ms)} calls took {ENGINE_TARGET_MS:g} ms or more"
        )
        full = [ms for ms, gen in zip(worst.engine_ms, worst.engine_gc, strict=True) if gen == 2]
        some = sum(1 for gen in worst.engine_gc if gen >= 0)
        clean = [ms for ms, gen in zip(worst.engine_ms, worst.engine_gc, strict=True) if gen < 0]
        if some:
            slowest = f" (the slowest {max(full):.2f} ms)" if full else ""
            without = f"; without them p99 {percentile(clean, 99):.2f} ms" if clean else ""
            print(
                f"    {some} of those calls ran the garbage collector, {len(full)} a full collection"
                f"{slowest}{without}"
            )
        else:
            print("    none of those calls ran the garbage collector: the slow ones are not its doing")
    elif worst is not None:
        print("  target: engine p99 not measured (the engine was not reached through loyalty.domain.offers)")
    low = min(CART_OFFERS)
    for lines in CART_LINES:
        a = next((c for c in cases if (c.offers, c.lines, c.anonymous) == (low, lines, False)), None)
        b = next((c for c in cases if (c.offers, c.lines, c.anonymous) == (biggest, lines, False)), None)
        if a is None or b is None or not a.engine_ms or not b.engine_ms:
            continue
        growth = percentile(b.engine_ms, 50) / percentile(a.engine_ms, 50)
        exponent = math.log(growth) / math.log(biggest / low)
        handler = percentile(b.result.samples_ms, 50) / percentile(a.result.samples_ms, 50)
        print(
            f"  {lines}-line carts, {biggest // low}x the offers: engine p50 x{growth:.1f} (time ~"
            f" offers^{exponent:.2f}; linear: x{biggest // low}), handler p50 x{handler:.1f}"
        )
    unexpected = figures.complaints + [
        f"{case.result.name}: {len(case.result.unexpected)} x, first: {case.result.unexpected[0]}"
        for case in cases
        if case.result.unexpected
    ]
    if unexpected:
        print("  Unexpected (the figures include these calls):")
        for line in unexpected:
            print(f"    {line}")
