"""Identity merges: the DynamoDB work one merge costs against the size of the merged profile, and how
many merges a second the local queue path runs.

Run on its own with ``.venv/bin/python -m tools.bench.merges`` (it starts its own DynamoDB
Local and moto), or as a section of ``make bench`` (``bench.main`` hands it the bench's runtime).

1. Size. For each size N in BENCH_MERGE_SIZES (10, 100, 1,000, 10,000) a member with N sales is
   merged into a member with one. Each sale is a transaction (TXN#) and the earn lot it opened
   (CUST# / LEDGER#, in the open-lot and due indexes), so a merge moves 2N items plus the profile's
   two links. The first of the N sales goes through ``TransactionService.record``; the others are
   copies of its two items, each with its own transaction id, ledger seq, lot and due keys, balance
   and outbox ids (mapped by the repositories' own ``transaction_to_item`` / ``ledger_to_item``),
   written with BatchWriteItem from a few threads, and the profile's counters (points, ledger seq,
   transactions, spend, months, tier) set to match. Recording 10,000 sales one by one takes several
   minutes here (about 40 ms a sale on one profile: sales of one profile cannot run in parallel,
   each checks the profile's version); the copies take about 30 s. The merge is then requested
   through ``MergeService.request`` and run by the real merger handler (``loyalty.jobs.run_merges``) from the
   runtime's FIFO queue through ``QueuePoller``, with every DynamoDB call of the handler counted by
   the bench's ``DynamoMeter``. Afterwards: the journal is done, its counts say N transactions and N
   ledger entries, and the survivor's balance equals its ledger. Reported: round trips by kind,
   capacity (WCU as DynamoDB Local reports it, and WCU* / RCU* by DynamoDB's rules: 2 per started
   KB in a transaction; every index the item leaves or joins, 2 index writes when an update moves it
   to another index key), items written, wall time, against the issue's target: round trips grow
   linearly with the records moved, at most one round trip per 25 records (a record: a sale).

2. Queue. BENCH_MERGE_QUEUE (200) distinct pairs of small members (one sale each, enrolled and sold
   through the services) are requested one after another, then the one local poller drains the queue
   through the real handler: merges per second from the first receive to the last merge done.
   On AWS the merger scales out per message group; locally one thread polls (moto hands a FIFO group
   to two consumers at once), so this is one worker's throughput.

Settings (environment): BENCH_MERGE_SIZES (comma-separated), BENCH_MERGE_QUEUE,
BENCH_MERGE_THREADS (set-up writers, default 4).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3

from loyalty import jobs
from loyalty.adapters.codec import customer_pk
from loyalty.adapters.dynamo import serialize
from loyalty.adapters.transactions import (
    TransactionRepository,
    ledger_from_item,
    ledger_sk,
    ledger_to_item,
    transaction_from_item,
    transaction_to_item,
    txn_pk,
)
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container, use_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.ids import new_id
from loyalty.domain.merges import MergeStatus
from loyalty.domain.sales import Line, SaleType, points_in_window
from loyalty.observability import logger
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.transactions import RecordCommand
from loyalty.settings import Settings
from loyalty_local.emulators import REGION
from loyalty_local.jobs import QueuePoller
from loyalty_local.runtime import LocalRuntime
from tools.bench.costs import DDB_RRU_PER_M, DDB_WRU_PER_M
from tools.bench.meter import (
    INDEXES,
    READ_OPS,
    WRITE_OPS,
    CallCost,
    DynamoMeter,
    index_copy_size,
    item_size,
)
from tools.bench.report import mark

SIZES = tuple(int(s) for s in os.environ.get("BENCH_MERGE_SIZES", "10,100,1000,10000").split(",") if s)
QUEUE_MERGES = int(os.environ.get("BENCH_MERGE_QUEUE", "200"))
THREADS = max(1, int(os.environ.get("BENCH_MERGE_THREADS", "4")))
TARGET_RECORDS_PER_RT = 25  # the issue: at most one round trip per 25-100 records moved
BATCH_WRITE = 25  # BatchWriteItem's cap
BATCH_GET = 100  # BatchGetItem's cap
STORE = "ams-01"
PRICE = Decimal("10.00")  # each sale: one line, 100 points at the demo programme's rate
POS = Principal("bench-pos", KeyKind.POS, STORE)
ADMIN = Principal("bench-admin", KeyKind.ADMIN, None)
MERGE_TIMEOUT_S = 300  # the merger function's timeout on AWS (its queue's visibility is 360 s)

Key = tuple[str, str]
Wire = dict[str, Any]


@dataclass
class SizeCase:
    sales: int  # in the merged profile
    moved: dict[str, int]  # the journal's counts
    cost: CallCost  # the merger's DynamoDB calls, request excluded
    request: CallCost  # MergeService.request: the journal and the queue message
    seconds: float  # the handler's wall time
    setup_seconds: float
    wcu_table: float = 0.0  # WCU* for the items themselves
    wcu_indexes: float = 0.0  # WCU* for their index copies
    written: Counter[str] = field(default_factory=Counter)  # "TXN/TXN Update" -> count
    written_bytes: Counter[str] = field(default_factory=Counter)  # the same, their sizes summed
    op_seconds: dict[str, float] = field(default_factory=dict)  # time in DynamoDB calls, by operation
    complaints: list[str] = field(default_factory=list)

    @property
    def items_moved(self) -> int:
        return sum(self.moved.values())

    @property
    def transact_writes(self) -> int:
        return self.cost.ops.count("TransactWriteItems")

    @property
    def other_writes(self) -> int:
        return self.cost.writes - self.transact_writes

    @property
    def per_100(self) -> float:
        return 100 * self.cost.calls / self.sales

    @property
    def met(self) -> bool:
        return self.cost.calls * TARGET_RECORDS_PER_RT <= self.sales

    @property
    def dollars(self) -> float:
        wcu = self.wcu_table + self.wcu_indexes
        return (wcu * DDB_WRU_PER_M + self.cost.rcu_estimate * DDB_RRU_PER_M) / 1e6


@dataclass
class QueueFigures:
    merges: int
    done: int
    failed: int
    seconds: float  # first receive to last merge done
    request_seconds: float  # the requests, one after another
    setup_seconds: float
    cost: CallCost  # every DynamoDB call of the handler, all merges
    batches: list[int]  # messages per delivered batch
    redelivered: int  # messages the handler reported failed (they came back)
    complaints: list[str] = field(default_factory=list)


@dataclass
class MergeFigures:
    sizes: list[SizeCase]
    queue: QueueFigures | None
    seconds: float
    leftovers: int  # messages already on the queue when the section began (run first, unmetered)


class MergeBench:
    def __init__(self, runtime: LocalRuntime) -> None:
        assert runtime.resources is not None
        self.session = boto3.session.Session(region_name=REGION)
        self.meter = DynamoMeter()
        self.container = Container(Settings.from_env(), session=self.session)
        self.meter.attach(self.container.table._client)
        self.op_seconds: dict[str, float] = {}  # while the meter runs: time per DynamoDB operation
        self._sent = 0.0
        events = self.container.table._client.meta.events
        events.register("before-parameter-build.dynamodb", self._op_begin, unique_id="bench-merges-begin")
        events.register("after-call.dynamodb", self._op_end, unique_id="bench-merges-end")
        self.raw = self.session.client("dynamodb")  # unmetered: set-up writes, images read back
        self.sqs = self.session.client("sqs")
        self.table_name = self.container.settings.table_name
        self.url = runtime.resources.queue_urls["Merges"]
        self.poller = QueuePoller(self.session, self.url, "merger", handler=self._handle)
        self.run = uuid.uuid4().hex[:8]
        self.handled = 0  # messages the handler finished (not reported failed)
        self.redelivered = 0
        self.batches: list[int] = []
        self.handler_seconds = 0.0
        self.last_done = 0.0
        self._logs = io.StringIO()

    def _op_begin(self, **_: Any) -> None:
        self._sent = time.perf_counter()

    def _op_end(self, model: Any, **_: Any) -> None:
        if self.meter.active:
            name = str(model.name)
            self.op_seconds[name] = self.op_seconds.get(name, 0.0) + time.perf_counter() - self._sent

    # ---- the worker, through the local queue --------------------------------------------------
    def _handle(self, event: dict[str, Any], context: Any) -> Any:
        started = time.perf_counter()
        with contextlib.redirect_stdout(self._logs):  # powertools' metric lines
            result = jobs.run_merges(event, context)
        self.handler_seconds += time.perf_counter() - started
        self.last_done = time.perf_counter()
        failed = len((result or {}).get("batchItemFailures", []))
        self.batches.append(len(event["Records"]))
        self.handled += len(event["Records"]) - failed
        self.redelivered += failed
        self._logs.seek(0)
        self._logs.truncate()
        return result

    def drain_until(self, handled: int, max_seconds: float) -> None:
        """Poll until the handler has finished `handled` messages in all (or time runs out)."""
        deadline = time.monotonic() + max_seconds
        while self.handled < handled and time.monotonic() < deadline:
            if not self.poller.poll_once(wait_seconds=1) and self.redelivered:
                time.sleep(0.2)  # a failed message comes back after the poller's retry delay

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    # ---- profiles -----------------------------------------------------------------------------
    def enrol(self, tag: str) -> str:
        command = EnrolCommand(
            [RawLink("email", f"merge-{self.run}-{tag}@example.com")],
            Profile(first_name="Merge", last_name=tag),
            Consents(email=True),
            True,
            None,
        )
        return self.container.customers.enrol(command, POS).customer.customer_id

    def sale(self, customer_id: str, transaction_id: str) -> None:
        self.container.transactions.record(
            RecordCommand(
                transaction_id=transaction_id,
                type=SaleType.SALE,
                store_id=STORE,
                occurred_at=self.container.clock.now(),
                customer=CustomerRef(customer_id=customer_id),
                lines=[Line("1", "SKU1", "coffee", Decimal(1), PRICE)],
                currency="EUR",
                total=PRICE,
                fingerprint=transaction_id,
            ),
            POS,
            render=render_receipt,
        )

    def member_with_sales(self, sales: int, tag: str) -> tuple[str, dict[Key, Wire]]:
        """A member with `sales` earning sales: the first recorded, the others its copies.
        Returns the id and every item its sales wrote, as written (wire format), by key."""
        customer_id = self.enrol(tag)
        first = f"bm-{self.run}-{tag}-{1:05d}"
        self.sale(customer_id, first)
        txn = self.container.table.get(txn_pk(STORE, first), "TXN")
        lot = self.container.table.get(customer_pk(customer_id), ledger_sk(1))
        assert txn is not None, "the recorded sale wrote no transaction"
        assert lot is not None, "the recorded sale wrote no lot"
        items: dict[Key, Wire] = {}
        for item in (txn, lot):
            items[(str(item["pk"]), str(item["sk"]))] = serialize(item)
        copies = [copy for k in range(2, sales + 1) for copy in _copies(txn, lot, f"bm-{self.run}-{tag}", k)]
        for copy in copies:
            items[(str(copy["pk"]), str(copy["sk"]))] = serialize(copy)
        wire = [items[(str(c["pk"]), str(c["sk"]))] for c in copies]
        with ThreadPoolExecutor(THREADS) as pool:
            list(
                pool.map(
                    self._batch_write, [wire[i : i + BATCH_WRITE] for i in range(0, len(wire), BATCH_WRITE)]
                )
            )
        if sales > 1:
            self._scale_profile(customer_id, sales)
        return customer_id, items

    def _batch_write(self, items: Sequence[Wire]) -> None:
        pending: dict[str, Any] = {self.table_name: [{"PutRequest": {"Item": i}} for i in items]}
        for attempt in range(10):
            pending = self.raw.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(0.05 * 2**attempt)
        raise RuntimeError("DynamoDB Local kept items unprocessed")

    def _scale_profile(self, customer_id: str, sales: int) -> None:
        """The profile's counters as if every one of the `sales` sales had been recorded."""
        table = self.container.table
        profile = table.get(customer_pk(customer_id), "PROFILE")
        assert profile is not None
        months = {m: int(v) * sales for m, v in (profile.get("earned_by_month") or {}).items()}
        programme = self.container.programme.current()
        tier = programme.tier_for(
            points_in_window(months, self.container.clock.now(), programme.tier_window_months)
        )
        version = int(profile["version"])
        table.transact(
            [
                table.update_op(
                    customer_pk(customer_id),
                    "PROFILE",
                    "SET #points_available = :available, #points_pending = :pending, "
                    "#points_lifetime = :lifetime, #earned_by_month = :months, #ledger_seq = :seq, "
                    "#txn_count = :count, #spend = :spend, #tier = :tier, #version = :next",
                    "#version = :expected AND #ledger_seq = :one",
                    values={
                        ":available": int(profile["points_available"]) * sales,
                        ":pending": int(profile["points_pending"]) * sales,
                        ":lifetime": int(profile["points_lifetime"]) * sales,
                        ":months": months,
                        ":seq": sales,
                        ":count": sales,
                        ":spend": str(Decimal(str(profile["spend"])) * sales),
                        ":tier": tier.name,
                        ":next": version + 1,
                        ":expected": version,
                        ":one": 1,
                    },
                )
            ]
        )

    # ---- 1. one merge per size ----------------------------------------------------------------
    def measure_size(self, sales: int) -> SizeCase:
        began = time.perf_counter()
        survivor = self.enrol(f"s{sales}")
        self.sale(survivor, f"bm-{self.run}-s{sales}-00001")
        merged, before = self.member_with_sales(sales, f"m{sales}")
        setup = time.perf_counter() - began
        expected = self.container.customers.get(merged).points.available
        kept = self.container.customers.get(survivor).points.available

        request = self.meter.start()
        record = self.container.merges.request(survivor, merged, "bench", ADMIN)
        self.meter.stop()
        handled = self.handled + 1
        seconds_before = self.handler_seconds
        self.op_seconds.clear()
        cost = self.meter.start()
        self.drain_until(handled, MERGE_TIMEOUT_S * 2)
        self.meter.stop()
        case = SizeCase(sales, {}, cost, request, self.handler_seconds - seconds_before, setup)
        case.op_seconds = dict(self.op_seconds)

        journal = self.container.merges.get(record.merge_id)
        case.moved = dict(journal.counts or {})
        if journal.status is not MergeStatus.DONE:
            case.complaints.append(f"the merge ended {journal.status.value}: {journal.error}")
        if self.handled < handled:
            case.complaints.append("the merge was not done in time")
        if (case.moved.get("transactions"), case.moved.get("ledger_entries")) != (sales, sales):
            case.complaints.append(f"moved {case.moved}, not {sales} transactions and ledger entries")
        after = self.container.customers.get(survivor)
        ledger = sum(e.points for e in TransactionRepository(self.container.table).all_ledger(survivor))
        if after.points.available + after.points.pending != ledger:
            case.complaints.append(
                f"the survivor's balance {after.points.available} is not its ledger's {ledger}"
            )
        if after.points.available != kept + expected:
            case.complaints.append(f"the survivor has {after.points.available} points, not {kept + expected}")
        if after.stats.transactions != sales + 1:
            case.complaints.append(
                f"the survivor counts {after.stats.transactions} transactions, not {sales + 1}"
            )
        self.price(case, before)
        return case

    def price(self, case: SizeCase, before: Mapping[Key, Wire]) -> None:
        """WCU* by DynamoDB's rules. An item's size is the larger of its old and new image (the old
        from set-up, the new from the request or read back now); a write costs 2 per started KB in a
        transaction, 1 outside; each index the item is in before or after costs 1 per started KB,
        2 writes when the write changes the item's key in that index (delete there, put there)."""
        updated = [_key_of(w.key) for w in case.cost.written if w.action in ("Update", "ConditionCheck")]
        after = self._images(updated)
        for w in case.cost.written:
            key = _key_of(w.key)
            old = before.get(key)
            new: Wire | None = w.image if w.action == "Put" else after.get(key)
            if w.action == "Delete":
                new = None
            elif old is None:
                old = new if w.action != "Put" else None  # an update of an item set-up did not write
            size = max(item_size(old) if old else 0, item_size(new) if new else 0)
            case.wcu_table += _kb(size) * (2 if w.transactional else 1)
            for index, pk, sk in INDEXES:
                was = old is not None and pk in old and sk in old
                now = new is not None and pk in new and sk in new
                if (
                    was
                    and now
                    and old is not None
                    and new is not None
                    and (old[pk], old[sk]) != (new[pk], new[sk])
                ):
                    case.wcu_indexes += _kb(index_copy_size(old, index)) + _kb(index_copy_size(new, index))
                elif now and new is not None:
                    case.wcu_indexes += _kb(index_copy_size(new, index))
                elif was and old is not None:
                    case.wcu_indexes += _kb(index_copy_size(old, index))
            case.written[f"{_kind(key)} {w.action}"] += 1
            case.written_bytes[f"{_kind(key)} {w.action}"] += size

    def _images(self, keys: Sequence[Key]) -> dict[Key, Wire]:
        unique = list(dict.fromkeys(keys))
        found: dict[Key, Wire] = {}
        for start in range(0, len(unique), BATCH_GET):
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        {"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in unique[start : start + BATCH_GET]
                    ],
                    "ConsistentRead": True,
                }
            }
            while pending:
                response = self.raw.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = item
                pending = response.get("UnprocessedKeys") or {}
        return found

    # ---- 2. throughput through the queue ------------------------------------------------------
    def measure_queue(self, merges: int) -> QueueFigures:
        began = time.perf_counter()

        def member(n: int) -> str:
            customer_id = self.enrol(f"q{n}")
            self.sale(customer_id, f"bm-{self.run}-q{n}")
            return customer_id

        with ThreadPoolExecutor(THREADS) as pool:
            ids = list(pool.map(member, range(2 * merges)))
        setup = time.perf_counter() - began
        complaints: list[str] = []
        started = time.perf_counter()
        merge_ids = [
            self.container.merges.request(ids[2 * n], ids[2 * n + 1], "bench", ADMIN).merge_id
            for n in range(merges)
        ]
        requested = time.perf_counter() - started
        handled, batches, redelivered = self.handled + merges, len(self.batches), self.redelivered
        cost = self.meter.start()
        started = time.perf_counter()
        self.drain_until(handled, 600)
        seconds = max(0.0, self.last_done - started)
        self.meter.stop()
        statuses = Counter(self.container.merges.get(m).status for m in merge_ids)
        if statuses[MergeStatus.DONE] != merges:
            ended = {s.value: n for s, n in statuses.items()}
            complaints.append(f"journals: {ended}")
        return QueueFigures(
            merges,
            statuses[MergeStatus.DONE],
            statuses[MergeStatus.FAILED],
            seconds,
            requested,
            setup,
            cost,
            self.batches[batches:],
            self.redelivered - redelivered,
            complaints,
        )


def _copies(txn: dict[str, Any], lot: dict[str, Any], prefix: str, k: int) -> list[dict[str, Any]]:
    """Sale k of a profile whose first sale wrote `txn` and `lot`: the same sale, its own ids."""
    transaction_id = f"{prefix}-{k:05d}"
    points = int(lot["points"])
    record = replace(transaction_from_item(txn), transaction_id=transaction_id, lot_seq=k)
    ids: dict[str, str] = {}
    outbox = []
    for entry in txn.get("outbox") or []:
        event_id = new_id()
        ids[str(entry["id"])] = event_id
        detail = json.loads(str(entry["detail"]))
        detail |= {"event_id": event_id, "transaction_id": transaction_id}
        if "balance" in detail:
            detail["balance"] = points * k
        outbox.append({**entry, "id": event_id, "detail": json.dumps(detail, sort_keys=True)})
    body = json.loads(str(txn["body"]))
    body |= {"transaction_id": transaction_id, "points_balance": points * k}
    copy = transaction_to_item(record) | {
        "fingerprint": transaction_id,
        "status_code": txn["status_code"],
        "body": json.dumps(body, separators=(",", ":")),
        "outbox": outbox or None,
    }
    entry = replace(ledger_from_item(lot), seq=k, transaction_id=transaction_id, balance_after=points * k)
    due_at = datetime.fromisoformat(str(lot["gsi2sk"]).split("#", 1)[0]) if lot.get("gsi2sk") else None
    return [copy, ledger_to_item(entry, due_at, lot.get("due_kind"))]


def _key_of(key: Mapping[str, Any]) -> Key:
    return str(key["pk"]["S"]), str(key["sk"]["S"])


def _kind(key: Key) -> str:
    return f"{key[0].split('#', 1)[0]}/{key[1].split('#', 1)[0]}"


def _kb(size: int) -> int:
    return max(1, math.ceil(size / 1024))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The merger logs a line per merge; the bench prints figures."""
    level = logger.log_level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def measure(runtime: LocalRuntime) -> MergeFigures:
    began = time.perf_counter()
    bench = MergeBench(runtime)
    use_container(bench.container)  # what the merger's container() answers
    with quiet():
        leftovers = bench.queued()
        if leftovers:  # merges an earlier section asked for: run them first, unmetered
            bench.drain_until(leftovers, 120)
            bench.handled = bench.redelivered = 0
            bench.batches.clear()
        sizes = [bench.measure_size(n) for n in SIZES]
        queue = bench.measure_queue(QUEUE_MERGES) if QUEUE_MERGES > 0 else None
    return MergeFigures(sizes, queue, time.perf_counter() - began, leftovers)


# ---- printing --------------------------------------------------------------------------------------


def ops_histogram(cost: CallCost) -> str:
    reads = iter(cost.reads_of)
    labels = [next(reads, op) if op in READ_OPS else op for op in cost.ops]
    return ", ".join(f"{label} x{n}" for label, n in Counter(labels).most_common())


def print_figures(figures: MergeFigures, indent: str = "") -> None:
    p = indent
    print(
        f"{p}Identity merges: one merge per size of the merged profile, run by the merger's real handler from"
        f" the local FIFO queue; the section took {figures.seconds:.0f} s, set-up included."
    )
    print(
        f"{p}  A record is a sale: its transaction (TXN#) and its earn lot (LEDGER#, in gsi1 and gsi2), so"
        " a merge moves 2 items a record, plus the 2 links of the merged member."
    )
    print(
        f"{p}  The merged member's first sale is recorded by TransactionService, the rest are copies of its"
        " two items (own ids, seqs, keys), written with BatchWriteItem;"
    )
    print(f"{p}  the survivor is a member with one sale.")
    if figures.leftovers:
        print(f"{p}  {figures.leftovers} merge messages were on the queue already: run first, not counted.")
    print()
    print(
        f"{p}  {'records':>8} {'items moved':>11} {'reads':>6} {'TWI':>5} {'other w':>7} {'RTs':>5}"
        f" {'RT/100 rec':>10} {'rec/RT':>6} {'items/RT':>8} {'items/TWI':>9} {'WCU(L)':>7} {'WCU*':>8}"
        f" {'RCU*':>7} {'written':>7} {'wall s':>7} {'$/merge':>8}  target"
    )
    for c in figures.sizes:
        twi = c.transact_writes
        in_twi = sum(1 for w in c.cost.written if w.transactional)
        print(
            f"{p}  {c.sales:>8,} {c.items_moved:>11,} {c.cost.reads:>6} {twi:>5} {c.other_writes:>7}"
            f" {c.cost.calls:>5} {c.per_100:>10.1f} {c.sales / c.cost.calls:>6.1f}"
            f" {c.items_moved / c.cost.calls:>8.1f} {in_twi / max(twi, 1):>9.1f} {c.cost.wcu:>7,.0f}"
            f" {c.wcu_table + c.wcu_indexes:>8,.0f} {c.cost.rcu_estimate:>7,.0f} {len(c.cost.written):>7,}"
            f" {c.seconds:>7.2f} {c.dollars:>8.4f}  {'PASS' if c.met else 'MISS'} <= 1 RT per"
            f" {TARGET_RECORDS_PER_RT} records"
        )
    print()
    print(
        f"{p}  reads / TWI / other w: the worker's DynamoDB round trips (GetItem, BatchGetItem, Query /"
        " TransactWriteItems / PutItem, UpdateItem: a step with nothing to move writes only the journal);"
    )
    if figures.sizes:
        print(
            f"{p}  the request (MergeService.request, the API's part) adds {_shape(figures.sizes[0].request)}"
            " and one SQS SendMessage, not counted above."
        )
    print(
        f"{p}  WCU(L): as DynamoDB Local reports it; WCU*, RCU*: DynamoDB's rules (2 per started KB in a"
        " transaction, + every index the item joins or leaves, twice where its index key changes);"
    )
    print(
        f"{p}  $: DynamoDB on-demand for WCU* + RCU*; items/TWI: items per TransactWriteItems (cap 100, one"
        " of them the journal); wall: the handler call."
    )
    setups = ", ".join(f"{c.sales:,} records {c.setup_seconds:.1f} s" for c in figures.sizes)
    print(f"{p}  set-up (unmetered): {setups}")
    print()
    print(f"{p}  What each merge sent, by request (reads named by what they read), and its time in DynamoDB:")
    for c in figures.sizes:
        print(f"{p}    {c.sales:>6,}: {ops_histogram(c.cost)}")
        spent = sorted(c.op_seconds.items(), key=lambda kv: -kv[1])
        ops = Counter(c.cost.ops)
        timing = ", ".join(
            f"{op} {sec:.2f} s ({1000 * sec / ops[op]:.0f} ms each)" for op, sec in spent if ops[op]
        )
        print(f"{p}    {'':>6}  {timing}")
    print(f"{p}  What each merge wrote, by item and action (mean size; a delete: the item it removed):")
    for c in figures.sizes:
        text = ", ".join(
            f"{kind} x{n:,} ({c.written_bytes[kind] / n / 1024:.1f} KB)"
            for kind, n in c.written.most_common()
        )
        print(f"{p}    {c.sales:>6,}: {text}")
    for c in figures.sizes:
        for complaint in c.complaints:
            print(f"{p}  ! {c.sales:,} records: {complaint}")
    if len(figures.sizes) >= 2:
        print_size_targets(figures.sizes, p)
    if figures.queue is not None:
        print()
        print_queue(figures.queue, p)


def print_size_targets(sizes: list[SizeCase], p: str) -> None:
    small, large = sizes[-2], sizes[-1]
    slope = (large.cost.calls - small.cost.calls) / (large.sales - small.sales)
    write_slope = (large.transact_writes - small.transact_writes) / (large.sales - small.sales)
    fixed = small.cost.calls - slope * small.sales
    print()
    print(
        f"{p}  Target (issue): round trips grow linearly with the records moved, batched to the limits"
        f" (at most 1 round trip per {TARGET_RECORDS_PER_RT}-100 records):"
    )
    print(
        f"{p}    linear: {large.sales // small.sales}x the records ({small.sales:,} -> {large.sales:,}) ->"
        f" x{large.cost.calls / small.cost.calls:.2f} the round trips; {100 * slope:.2f} round trips per"
        f" further 100 records, plus about {fixed:.0f} per merge whatever its size (lock, links, empty"
        " steps, finish)."
    )
    met = [f"{c.sales:,}" for c in sizes if c.met]
    missed = [f"{c.sales:,}" for c in sizes if not c.met]
    print(
        f"{p}    <= 1 round trip per {TARGET_RECORDS_PER_RT} records: {mark(not missed)}"
        + (f" (met at {', '.join(met)}; " if met else " (")
        + f"missed at {', '.join(missed) or 'none'} records): at the margin 1 per {1 / slope:.1f} records"
        f" = 1 per {2 / slope:.1f} items moved;"
    )
    print(
        f"{p}      writes alone 1 TransactWriteItems per {1 / write_slope:.1f} records. A ledger entry moves"
        " by key (a put and a delete: 49 a step), a transaction by one update (99 a step), and every"
    )
    print(
        f"{p}      step reads its page first (ledger: one Query; transactions: a gsi1 Query and a consistent"
        " BatchGetItem of the same keys); small merges pay the fixed steps."
    )
    slowest = max(sizes, key=lambda c: c.seconds)
    twi = slowest.op_seconds.get("TransactWriteItems", 0.0)
    print(
        f"{p}    wall: the {slowest.sales:,}-record merge ran {slowest.seconds:.1f} s in one handler call,"
        f" {twi:.1f} s of it in TransactWriteItems (the merger's timeout on AWS: {MERGE_TIMEOUT_S} s;"
        " both profiles answer 503 meanwhile)."
    )


def print_queue(queue: QueueFigures, p: str) -> None:
    rate = queue.done / queue.seconds if queue.seconds > 0 else 0.0
    batches = queue.batches or [0]
    print(
        f"{p}Merge throughput through the local queue: {queue.merges} merges of distinct pairs of small"
        " members (one sale each), all requested first,"
    )
    print(
        f"{p}  then drained by the one QueuePoller through the merger's real handler (receive, handler,"
        " delete, as Lambda's event source does):"
    )
    print(
        f"{p}  {queue.done} done, {queue.failed} failed in {queue.seconds:.1f} s: {rate:.1f} merges/s"
        f" ({1000 * queue.seconds / max(queue.done, 1):.0f} ms a merge, queue and poller included);"
    )
    print(
        f"{p}  {len(queue.batches)} batches of {min(batches)}-{max(batches)} messages"
        f" (mean {sum(batches) / len(batches):.1f}); {queue.redelivered} messages reported failed and"
        " delivered again;"
    )
    merges = max(queue.merges, 1)
    print(
        f"{p}  per merge: {queue.cost.calls / merges:.1f} DynamoDB round trips"
        f" ({queue.cost.reads / merges:.1f} reads, {queue.cost.writes / merges:.1f} writes);"
        f" requesting them took {queue.request_seconds:.1f} s"
        f" ({queue.merges / max(queue.request_seconds, 1e-9):.0f} requests/s, one after another);"
    )
    print(
        f"{p}  set-up {queue.setup_seconds:.0f} s ({2 * queue.merges} members enrolled, one sale each,"
        f" {THREADS} threads). On AWS the merger runs a Lambda per batch and message groups (survivors)"
    )
    print(f"{p}  in parallel: this is one worker's rate, on 2 cores shared with DynamoDB Local and moto.")
    for complaint in queue.complaints:
        print(f"{p}  ! queue: {complaint}")


def _shape(cost: CallCost) -> str:
    reads = ", ".join(cost.reads_of) or "no read"
    writes = [op for op in cost.ops if op in WRITE_OPS]
    return f"{reads} + {', '.join(writes) or 'no write'}"


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        figures = measure(runtime)
    finally:
        runtime.stop()
    print_figures(figures)


__all__ = ["MergeFigures", "main", "measure", "print_figures"]


if __name__ == "__main__":
    main()
