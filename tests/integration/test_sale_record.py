"""What a member's sale writes (issue 21: a sale's cost is its items' sizes): the record carries
no stored answer and compact lines, one event, and stays within 2 KB for a 5-line sale."""

from __future__ import annotations

import json
from typing import Any

from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.sales import SaleType
from loyalty.services.publisher import events_of
from tests.integration.test_transactions import POS, by_id, command, line, member
from tools.bench.meter import item_size


def raw_item(container: Container, pk: str, sk: str) -> dict[str, Any]:
    client = container.table._client
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    item: dict[str, Any] = client.get_item(TableName=container.table.name, Key=key)["Item"]
    return item


def five_lines() -> list[Any]:
    return [line(str(n), "2", "12.50", sku=f"SKU{n}", category="coffee") for n in range(1, 6)]


def test_a_five_line_member_sale_record_is_compact_and_carries_one_event(container: Container) -> None:
    jane = member(container)
    txn = "bench-0123abcd-earn-123"
    sale = command(txn, five_lines(), by_id(jane))
    receipt = container.transactions.record(sale, POS, render=render_receipt)
    assert receipt.points_earned == 1250

    item = raw_item(container, f"TXN#ams-01#{txn}", "TXN")
    assert "body" not in item and "status_code" not in item  # the answer is rendered on replay
    assert item_size(item) <= 2048, item_size(item)
    assert [e["M"]["detail_type"]["S"] for e in item["outbox"]["L"]] == ["TransactionRecorded"]
    entry = item["outbox"]["L"][0]["M"]
    stored_detail = json.loads(entry["detail"]["S"])
    assert entry["record"]["S"] == "transaction" and "total" not in stored_detail  # not stored twice
    published = events_of({"eventName": "INSERT", "dynamodb": {"NewImage": item}})
    detail = json.loads(published[0].detail)
    assert published[0].detail_type == "TransactionRecorded" and detail["total"] == "125.00"
    assert detail["earn"]["points"] == 1250 and detail["earn"]["balance"] == 1250
    assert detail["customer_id"] == jane.customer_id and detail["lines"] == 5
    line_one = item["lines"]["L"][0]["M"]
    assert set(line_one) == {"i", "s", "c", "q", "u", "p"}  # no zero discount, returns or cashback

    # Read back as before: lines, points, the answer on replay.
    record = container.transactions.get("ams-01", txn)
    assert record is not None and [rl.points for rl in record.lines] == [250] * 5
    assert record.lines[0].line.sku == "SKU1" and record.lines[0].returned_quantity == 0


def test_a_return_reads_a_compact_sale_and_takes_back_pro_rata(container: Container) -> None:
    jane = member(container)
    container.transactions.record(command("S1", five_lines(), by_id(jane)), POS, render=render_receipt)
    back = container.transactions.record(
        command(
            "R1",
            [line("1", "1", "12.50", sku="SKU1", category="coffee")],
            by_id(jane),
            kind=SaleType.RETURN,
            original="S1",
        ),
        POS,
        render=render_receipt,
    )
    assert back.points_earned == -125
    assert "body" not in raw_item(container, "TXN#ams-01#R1", "TXN")  # a return's answer too
    original = container.transactions.get("ams-01", "S1")
    assert original is not None and original.lines[0].returned_quantity == 1
    exported = container.privacy.export(container.customers.get(jane.customer_id))
    sale = next(t for t in exported["transactions"] if t["transaction_id"] == "S1")
    assert sale["lines"][0]["sku"] == "SKU1" and sale["lines"][0]["returned_quantity"] == "1"
    assert "receipt" not in sale and "body" not in sale
    assert json.dumps(exported, default=str)
