"""Printing the bench's figures: the endpoint table, costs, the earn path."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from tools.bench.config import PRIOR_LOTS, RT_LATENCY_MS, SALE_LINES, SALE_TARGET_USD
from tools.bench.costs import (
    APIGW_REST_PER_M,
    DDB_RRU_PER_M,
    DDB_WRU_PER_M,
    EVENTS_PER_M,
    LAMBDA_GB_SECOND,
    LAMBDA_PER_M,
    Cost,
    cost_of,
)
from tools.bench.meter import READ_OPS, WRITE_OPS, CallCost, Priced
from tools.bench.scenario import Result, percentile


def per_call(values: list[float]) -> str:
    mean = statistics.fmean(values)
    low, high = min(values), max(values)
    text = f"{mean:.2f}".rstrip("0").rstrip(".")
    if low != high:
        text += f" ({low:g}-{high:g})"
    return text


def mark(met: bool) -> str:
    return "PASS" if met else "MISS"


def target_met(result: Result) -> bool:
    """The row's target met by every measured call: the same round trips each time, the reads and
    writes the target allows, and (where it asks) only transactional writes."""
    if result.target is None or not result.costs:
        return False
    calls = [c.calls for c in result.costs]
    reads = statistics.fmean(c.reads for c in result.costs)
    writes = statistics.fmean(c.writes for c in result.costs)
    met = min(calls) == max(calls) and result.target.check(reads, writes)
    if result.target.transactional:
        met = met and all(op == "TransactWriteItems" for c in result.costs for op in c.ops if op in WRITE_OPS)
    return met


def print_endpoint_rows(results: list[Result], indent: str = "") -> None:
    header = indent + (
        f"{'endpoint':<16} {'route':<51} {'RT':>4} {'rd':>3} {'wr':>3} {'RCU':>5} {'RCU*':>5} {'WCU':>5} "
        f"{'WCU*':>5} {'ev':>2} {'1st':>3} {'p50 ms':>6} {'p99 ms':>6} {'$/M':>6}  target"
    )
    print(header)
    print(indent + "-" * (len(header) - len(indent) + 22))
    for r in results:
        if not r.costs:
            print(f"{indent}{r.name:<16} {r.route:<51} no call completed")
            continue
        reads = [float(c.reads) for c in r.costs]
        writes = [float(c.writes) for c in r.costs]
        calls = [float(c.calls) for c in r.costs]
        target = f"{mark(target_met(r))} {r.target.label}" if r.target is not None else ""
        rcu = statistics.fmean(c.rcu for c in r.costs)
        rcu_est = statistics.fmean(c.rcu_estimate for c in r.costs)
        wcu = statistics.fmean(c.wcu for c in r.costs)
        wcu_est = statistics.fmean(c.wcu_estimate for c in r.costs)
        events = statistics.fmean(len(c.events) for c in r.costs)
        route = r.route if len(r.route) <= 51 else r.route[:50] + "~"
        print(
            f"{indent}{r.name:<16} {route:<51} {per_call(calls):>4} {per_call(reads):>3} "
            f"{per_call(writes):>3} {rcu:>5.2f} {rcu_est:>5.2f} {wcu:>5.2f} {wcu_est:>5.2f} {events:>2g} "
            f"{r.first.calls:>3} {percentile(r.samples_ms, 50):>6.1f} {percentile(r.samples_ms, 99):>6.1f} "
            f"{cost_of(r).total:>6.2f}  {target}"
        )


def print_endpoints(results: list[Result]) -> None:
    print_endpoint_rows(results)
    print()
    print("RT: DynamoDB round trips per call (rd reads, wr writes; 'a (b-c)' = mean (min-max)).")
    print("RCU, WCU: capacity units per call as DynamoDB Local reports them. Its TransactWriteItems figures")
    print("  follow no published rule (36 WCU for the earn path's 3 items), and it charges nothing for a")
    print("  BatchGetItem key that finds no item (DynamoDB charges the minimum read for it).")
    print("RCU*, WCU*: the same calls priced by DynamoDB's rules from the requests and responses. Reads:")
    print("  1 unit per started 4 KB strongly consistent, 0.5 eventually (indexes); GetItem and each key of")
    print("  a BatchGetItem rounded up alone, a missing item the minimum; a Query's items summed, rounded")
    print("  once. Writes: 1 WCU per started KB of each item, 2 in a transaction, plus 1 per started KB for")
    print("  each index the item is in (both project ALL). Item sizes: attribute names plus values; a Put")
    print("  from its request, an Update by the new image read back after the call; a Delete counts 1 KB;")
    print("  index entries moved or removed by an update are not priced (no benched call does that).")
    print("ev: domain events per call (outbox entries in the items written; each one EventBridge event).")
    print("1st: round trips of the first call on a fresh container (cold store / programme caches).")
    print("p50 / p99: in-process handler time, no HTTP gateway; DynamoDB Local over localhost.")
    print("$/M: dollars per million calls, authorizer result cached (see the cost table below).")
    print()
    print("What one call sends, in order (mixes show each shape and how often it occurred):")
    print_call_shapes(results, op_names, "  ")
    print()
    print("What one call writes (mean item size; WCU* by DynamoDB's rules, + the index copies):")
    print_written(results, "  ")
    failures = [r for r in results if r.unexpected]
    if failures:
        print()
        print("Unexpected responses (the figures of these rows include failed calls):")
        for r in failures:
            print(f"  {r.name} ({r.route}): {len(r.unexpected)} x, first: {r.unexpected[0]}")


def print_call_shapes(results: list[Result], shape_of: Callable[[CallCost], str], indent: str) -> None:
    """Each row's calls by the requests they sent (`shape_of` words them), and the first call's if
    it sent others (cold caches)."""
    for r in results:
        shapes: dict[str, int] = {}
        for c in r.costs:
            shape = shape_of(c) or "(nothing)"
            shapes[shape] = shapes.get(shape, 0) + 1
        ordered = sorted(shapes.items(), key=lambda kv: -kv[1]) or [("(no call)", 0)]
        text = "; ".join(f"{ops} x{n}" if len(ordered) > 1 else ops for ops, n in ordered)
        first = shape_of(r.first) or "(nothing)"
        cold = f"  | 1st: {first}" if first != ordered[0][0] else ""
        retries = sum(c.attempts - c.calls for c in r.costs)
        extra = f"  [{retries} HTTP retries]" if retries else ""
        note = f"  ({r.note})" if r.note else ""
        print(f"{indent}{r.name:<16} {text}{extra}{note}{cold}")


def op_names(cost: CallCost) -> str:
    return " > ".join(cost.ops)


def labelled_ops(cost: CallCost) -> str:
    """The requests one call sent, each read named by what it read: `GetItem CUST/PROFILE > ...`."""
    reads = iter(cost.reads_of)
    return compress([next(reads, op) if op in READ_OPS else op for op in cost.ops])


def print_written(results: list[Result], indent: str) -> None:
    for r in results:
        if any(c.priced for c in r.costs):
            print(f"{indent}{r.name:<16} {written_items(r)}")


def written_items(result: Result) -> str:
    items: dict[tuple[str, str], list[Priced]] = {}
    for c in result.costs:
        for p in c.priced:
            items.setdefault((p.kind, p.action), []).append(p)
    n = len(result.costs)
    parts = []
    for (kind, action), priced in items.items():
        size = statistics.fmean(p.size for p in priced)
        units = sum(p.units for p in priced) / n
        index = sum(p.index_units for p in priced) / n
        extra = f" +{index:g} {'/'.join(sorted({i for p in priced for i in p.indexes}))}" if index else ""
        parts.append(f"{kind} {action} {size:,.0f} B {units:g}{extra}")
    return "; ".join(parts)


def print_prices() -> None:
    print("Prices used (AWS on-demand list prices, us-east-1):")
    print(f"  API Gateway REST API  ${APIGW_REST_PER_M:.2f} per million requests")
    print(
        f"  Lambda arm64          ${LAMBDA_GB_SECOND:.10f} per GB-second + ${LAMBDA_PER_M:.2f} per million"
        " requests, at the function's memory (routes.py), billed per started ms"
    )
    print(
        f"  DynamoDB on-demand    ${DDB_WRU_PER_M:.3f} per million write request units (WCU*),"
        f" ${DDB_RRU_PER_M:.3f} per million read request units (RCU*)"
    )
    print(f"  EventBridge           ${EVENTS_PER_M:.2f} per million custom events (one per outbox entry)")
    print(
        f"  Lambda duration = measured p50 handler time + {RT_LATENCY_MS:g} ms per DynamoDB round trip"
        " (BENCH_RT_LATENCY_MS): here DynamoDB"
    )
    print("  answers over localhost; on AWS each round trip crosses the network, and Lambda bills that wait.")


def print_costs(results: list[Result], authorizer: Cost | None) -> None:
    auth = authorizer.total if authorizer else 0.0
    print("Cost per million calls, US$ (prices above)")
    header = (
        f"  {'endpoint':<17} {'MB':>4} {'ms':>4} {'API GW':>7} {'Lambda':>7} {'DynamoDB':>8} "
        f"{'events':>6} {'EvBr':>5} {'total':>7} {'+auth miss':>10}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        if not r.costs:
            continue
        c = cost_of(r)
        missed = f"{c.total + auth:>10.2f}" if r.authorized else f"{c.total:>10.2f}"
        if not r.gateway:
            missed = f"{'-':>10}"
        print(
            f"  {r.name:<17} {c.memory_mb:>4} {c.billed_ms:>4} {c.gateway:>7.2f} {c.lambda_:>7.2f} "
            f"{c.dynamodb:>8.2f} {c.events:>6g} {c.eventbridge:>5.2f} {c.total:>7.2f} {missed}"
        )
    print(f"  ms: billed Lambda time per call (p50 + {RT_LATENCY_MS:g} ms per DynamoDB round trip).")
    print("  total: the authorizer's result cached (5 s TTL, keyed by the API key): a key calling n times")
    print("    in 5 s pays 1/n authorizer runs, ~0 for a busy till or web shop. +auth miss: plus one full")
    print(f"    authorizer run (${auth:.2f} per million, its own row) every call: a key calling less often")
    print("    than every 5 s. The authorizer row has no API Gateway charge of its own.")
    print("  Not included: the publisher function the stream invokes for the events (batched; reading the")
    print("    stream from Lambda is free), CloudWatch Logs and EMF metrics (switched off in local mode,")
    print("    so not measured), storage, backups (PITR), X-Ray, data transfer.")


def print_earn_path(result: Result, authorizer: Cost | None) -> None:
    print(
        f"Earn path (issue 3): a {SALE_LINES}-line sale by a member with {PRIOR_LOTS} earlier lots, "
        f"{len(result.costs)} sales"
    )
    if not result.costs:
        print("  no sale completed")
        return
    reads = statistics.fmean(c.reads for c in result.costs)
    writes = statistics.fmean(c.writes for c in result.costs)
    steady = len({c.calls for c in result.costs}) == 1
    met = steady and reads <= 1 and writes == 1
    shapes: dict[str, int] = {}
    for c in result.costs:
        shape = " > ".join(c.ops)
        shapes[shape] = shapes.get(shape, 0) + 1
    common = max(shapes.items(), key=lambda kv: kv[1])[0]
    print(
        f"  round trips per sale    {reads:g} read, {writes:g} write ({common})   "
        f"{mark(met)} target: 1 write round trip, at most 1 read"
    )
    rcu = statistics.fmean(c.rcu for c in result.costs)
    rcu_est = statistics.fmean(c.rcu_estimate for c in result.costs)
    wcu = statistics.fmean(c.wcu for c in result.costs)
    wcu_est = statistics.fmean(c.wcu_estimate for c in result.costs)
    print(
        f"  capacity per sale       RCU {rcu:.2f} as DynamoDB Local reports, {rcu_est:.2f} by DynamoDB's "
        f"rules (RCU*); WCU {wcu:.2f} reported, {wcu_est:.2f} by the rules (WCU*):"
    )
    items: dict[tuple[str, str], list[Priced]] = {}
    for c in result.costs:
        for p in c.priced:
            items.setdefault((p.kind, p.action), []).append(p)
    n = len(result.costs)
    for (kind, action), priced in items.items():
        size = statistics.fmean(p.size for p in priced)
        units = sum(p.units for p in priced) / n
        index_names = sorted({name for p in priced for name in p.indexes})
        index_units = sum(p.index_units for p in priced) / n
        index = f" + {index_units:g} WCU for its copy in {', '.join(index_names)}" if index_names else ""
        largest = ", ".join(f"{name} {nbytes:,} B" for name, nbytes in priced[-1].largest)
        print(f"      {kind:<14} {action:<7} {size:>6,.0f} B  {units:g} WCU{index}  (largest: {largest})")
    events: dict[str, int] = {}
    for c in result.costs:
        for name in c.events:
            events[name] = events.get(name, 0) + 1
    listed = ", ".join(f"{name} {count / n:g}" for name, count in events.items()) or "none"
    print(f"  events per sale         {sum(events.values()) / n:g} ({listed})")
    print(
        f"  handler                 p50 {percentile(result.samples_ms, 50):.1f} ms, "
        f"p99 {percentile(result.samples_ms, 99):.1f} ms (in-process, DynamoDB Local on localhost)"
    )
    cost = cost_of(result)
    auth = authorizer.total if authorizer else 0.0
    print(
        f"  cost per million sales  ${cost.total:.2f}  {mark(cost.total <= SALE_TARGET_USD)} "
        f"<= ${SALE_TARGET_USD:g}  authorizer result cached"
    )
    print(
        f"                          ${cost.total + auth:.2f}  {mark(cost.total + auth <= SALE_TARGET_USD)} "
        f"<= ${SALE_TARGET_USD:g}  authorizer cache missed on every sale"
    )
    print(
        f"      = API Gateway ${cost.gateway:.2f} + Lambda ${cost.lambda_:.2f} "
        f"({cost.memory_mb} MB x {cost.billed_ms} ms) + DynamoDB ${cost.dynamodb:.2f} "
        f"+ EventBridge ${cost.eventbridge:.2f} [+ authorizer ${auth:.2f}]"
    )
    print("  by service, $ per million sales:")
    parts = (
        ("API Gateway (REST)", cost.gateway, "per request"),
        ("Lambda", cost.lambda_, f"{cost.memory_mb} MB x {cost.billed_ms} ms + the request"),
        ("DynamoDB reads", cost.dynamodb_read, f"{rcu_est:.2f} RCU*"),
        ("DynamoDB writes", cost.dynamodb_write, f"{wcu_est:.2f} WCU*, items and index copies"),
        ("EventBridge", cost.eventbridge, f"{cost.events:g} events"),
    )
    for name, dollars, how in parts:
        share = dollars / cost.total * 100 if cost.total else 0.0
        print(f"      {name:<19} ${dollars:>6.2f}  {share:>3.0f} %  ({how})")


def compress(labels: list[str]) -> str:
    """`a > a > a > b` as `a x3 > b`."""
    parts: list[str] = []
    count = 0
    for k, label in enumerate(labels):
        count += 1
        if k + 1 == len(labels) or labels[k + 1] != label:
            parts.append(f"{label} x{count}" if count > 1 else label)
            count = 0
    return " > ".join(parts) or "(nothing)"


def call_shape(cost: CallCost) -> str:
    shape = compress(cost.reads_of)
    return shape + (f" + {cost.writes} writes" if cost.writes else "")
