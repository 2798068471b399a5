"""Merges through the real queue path: moto's SQS FIFO queue, the merger's handler (powertools
partial batch failures), DynamoDB Local. A storm of overlapping merges, a poison message, a crash
in the middle of a large merge."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from loyalty import jobs
from loyalty.adapters.merges import MergeRepository
from loyalty.adapters.transactions import TransactionRepository
from loyalty.bootstrap import Container, use_container
from loyalty.domain.customers import CustomerStatus
from loyalty.domain.errors import MergeRefused
from loyalty.domain.merges import MergeStatus
from loyalty_local.jobs import QueuePoller
from tests.integration.test_merges import ADMIN, balanced, email, enrol, ledger_sum, sale

pytestmark = pytest.mark.xdist_group("merge-queue")


@pytest.fixture
def merging(
    container: Container, aws_session: boto3.session.Session
) -> Iterator[tuple[Container, QueuePoller]]:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    use_container(container)  # what the merger's container() answers, as on a cold start
    poller = QueuePoller(
        aws_session, str(container.settings.merge_queue_url), "merger", handler=jobs.run_merges
    )
    yield container, poller
    use_container(None)


def live_ids(container: Container, ids: list[str]) -> set[str]:
    return {container.customers.get(cid).customer_id for cid in ids}


def test_a_storm_of_overlapping_merges_ends_with_every_invariant(
    merging: tuple[Container, QueuePoller],
) -> None:
    container, poller = merging
    rng = random.Random(7)
    ids = [enrol(container, email()) for _ in range(20)]
    for cid in ids:
        sale(container, cid, f"{rng.randint(1, 40)}.00")
    total_before = sum(container.customers.get(cid).points.available for cid in ids)
    links_before = {link: cid for cid in ids for link in container.customers.get(cid).links}
    pairs = [tuple(rng.sample(ids, 2)) for _ in range(200)]

    def ask(pair: tuple[str, str]) -> str:
        try:
            return container.merges.request(pair[0], pair[1], "storm", ADMIN).merge_id
        except MergeRefused:
            return ""  # one of them is already a tombstone: refused at the door, nothing queued

    with ThreadPoolExecutor(16) as pool:
        merge_ids = [m for m in pool.map(ask, pairs) if m]
    assert merge_ids
    poller.drain(idle_rounds=5, max_seconds=240)

    journals = [container.merges.get(m) for m in merge_ids]
    assert all(j.status in (MergeStatus.DONE, MergeStatus.FAILED) for j in journals), [
        j.status for j in journals
    ]
    assert any(j.status is MergeStatus.DONE for j in journals)
    live = live_ids(container, ids)
    for cid in live:
        balanced(container, cid)
    assert sum(container.customers.get(cid).points.available for cid in live) == total_before
    for link, owner in links_before.items():
        found = container.customers.lookup(link.type, link.value)
        assert found.status is CustomerStatus.ACTIVE
        assert found.customer_id == container.customers.get(owner).customer_id
    repo = TransactionRepository(container.table)
    for cid in set(ids) - live:
        assert repo.all_ledger(cid) == []  # a tombstone holds no ledger
    assert sum(c.stats.transactions for c in (container.customers.get(cid) for cid in live)) == len(ids)


def test_a_merge_of_a_into_b_while_b_merges_into_c_ends_in_one_live_profile(
    merging: tuple[Container, QueuePoller],
) -> None:
    container, poller = merging
    a, b, c = (enrol(container, email()) for _ in range(3))
    for cid in (a, b, c):
        sale(container, cid, "10.00")
    container.merges.request(c, b, None, ADMIN)
    container.merges.request(b, a, None, ADMIN)
    poller.drain()
    assert live_ids(container, [a, b, c]) == {c}
    survivor = balanced(container, c)
    assert survivor.points.available == 300 and survivor.stats.transactions == 3


def test_a_poison_message_goes_to_the_dead_letter_queue_and_loses_nothing(
    merging: tuple[Container, QueuePoller],
) -> None:
    container, poller = merging
    sqs = container.client("sqs")
    url = str(container.settings.merge_queue_url)
    sqs.send_message(
        QueueUrl=url, MessageBody="not json", MessageGroupId="poison", MessageDeduplicationId="p1"
    )
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"merge_id": "01ZZZZZZZZZZZZZZZZZZZZZZZZ"}),
        MessageGroupId="poison",
        MessageDeduplicationId="p2",
    )
    a, b = enrol(container, email()), enrol(container, email())
    sale(container, b, "10.00")
    good = container.merges.request(a, b, None, ADMIN)
    poller.drain(idle_rounds=8, max_seconds=60)
    assert container.merges.get(good.merge_id).status is MergeStatus.DONE
    assert balanced(container, a).points.available == 100
    dlq = container.local_resources.dead_letter_urls["Merges"]  # type: ignore[attr-defined]
    bodies = [
        m["Body"]
        for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    ]
    assert "not json" in bodies
    assert any("01ZZZZZZZZZZZZZZZZZZZZZZZZ" in body for body in bodies)


class CrashingTable:
    """Lets `allowed` transactions through, then fails the next one as a crashed worker would."""

    def __init__(self, real: Any, allowed: int) -> None:
        self._real = real
        self.left = allowed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact(self, ops: Any, *args: Any, **kwargs: Any) -> None:
        if self.left <= 0:
            raise ConnectionError("the worker died here")
        self.left -= 1
        self._real.transact(ops, *args, **kwargs)


def test_a_large_merge_resumes_after_a_crash_without_losing_or_doubling(container: Container) -> None:
    a, b = enrol(container, email()), enrol(container, email())
    for i in range(120):
        sale(container, b, "1.00", tid=f"B{i:04d}")
    before = balanced(container, b)
    record = container.merges.request(a, b, None, ADMIN)
    real = container.merges._merges
    container.merges._merges = MergeRepository(CrashingTable(container.table, allowed=4))  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        container.merges.process(record.merge_id)
    container.merges._merges = real
    middle = container.merges.get(record.merge_id)
    assert middle.status is MergeStatus.RUNNING and middle.step == 4
    done = container.merges.process(record.merge_id)
    assert done.status is MergeStatus.DONE
    assert done.counts and done.counts["ledger_entries"] == 120 and done.counts["transactions"] == 120
    survivor = balanced(container, a)
    assert survivor.points.available == before.points.available
    assert ledger_sum(container, a) == before.points.available
    assert TransactionRepository(container.table).all_ledger(b) == []
    # a replayed step after the end changes nothing
    assert container.merges.process(record.merge_id).step == done.step
