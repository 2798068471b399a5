"""Bench scenarios for sales, returns, order status and history."""

from __future__ import annotations

import json
from typing import Any

from tools.bench.base import BenchBase
from tools.bench.config import CATEGORIES, EARN_MEMBERS, EARN_PATH, ITERATIONS, PRIOR_LOTS, SALE_LINES, WARMUP
from tools.bench.scenario import EARN_TARGET, Call, Scenario


class TransactionBench(BenchBase):
    # ---- transactions: sales, returns, order status, history ------------------------------------
    def sale_body(
        self, transaction_id: str, customer: dict[str, Any] | None, store_id: str = "ams-01"
    ) -> dict[str, Any]:
        """A SALE_LINES-line sale: 2 x 12.50 a line, no discounts."""
        lines = [
            {
                "line_id": str(n),
                "sku": f"SKU{n}",
                "category": CATEGORIES[(n - 1) % len(CATEGORIES)],
                "quantity": "2",
                "unit_price": "12.50",
                "discount": "0.00",
            }
            for n in range(1, SALE_LINES + 1)
        ]
        body: dict[str, Any] = {
            "transaction_id": transaction_id,
            "type": "sale",
            "store_id": store_id,
            "occurred_at": self.occurred_at,
            "lines": lines,
            "currency": "EUR",
            "total": f"{25 * SALE_LINES:.2f}",
        }
        if customer is not None:
            body["customer"] = customer
        return body

    def return_body(self, transaction_id: str, original: tuple[str, str]) -> dict[str, Any]:
        """One of the two items of line 1 of a sale comes back (the member names themselves)."""
        line = {
            "line_id": "1",
            "sku": "SKU1",
            "category": CATEGORIES[0],
            "quantity": "1",
            "unit_price": "12.50",
            "discount": "0.00",
        }
        return {
            "transaction_id": transaction_id,
            "type": "return",
            "store_id": "ams-01",
            "occurred_at": self.occurred_at,
            "customer": {"customer_id": original[1]},
            "original_transaction_id": original[0],
            "lines": [line],
            "currency": "EUR",
            "total": "12.50",
        }

    def prepare_earners(self) -> list[str]:
        """EARN_MEMBERS members with PRIOR_LOTS earlier sales (each earning, so each a lot)."""
        pos, complaints = "local-pos-key", []
        for m in range(EARN_MEMBERS):
            status, member = self.call(
                "POST",
                "/v1/customers",
                Call(
                    pos,
                    body={
                        "links": [{"type": "email", "value": f"earner-{self.run}-{m}@example.com"}],
                        "profile": {"first_name": "Earner", "last_name": f"Member {m}"},
                        "consents": {"email": True},
                    },
                ),
            )
            if status != 201:
                complaints.append(f"enrolling a member: {status} {json.dumps(member)[:200]}")
                continue
            customer_id = str(member["customer_id"])
            for k in range(PRIOR_LOTS):
                txn = f"bench-{self.run}-prior-{m}-{k}"
                body = self.sale_body(txn, {"customer_id": customer_id})
                status, receipt = self.call("POST", "/v1/transactions", Call(pos, body=body))
                if status != 201 or int(receipt.get("points_earned") or 0) <= 0:
                    complaints.append(f"an earlier sale: {status} {json.dumps(receipt)[:200]}")
            query = {"limit": str(min(200, max(1, PRIOR_LOTS)))}
            _, ledger = self.call(
                "GET", "/v1/customers/{customer_id}/ledger", Call(pos, {"customer_id": customer_id}, query)
            )
            lots = sum(1 for e in ledger.get("items", []) if e.get("reason") == "earn")
            if lots != min(200, PRIOR_LOTS):
                complaints.append(f"member {customer_id} has {lots} lots, not {PRIOR_LOTS}")
            self.earners.append(customer_id)
        return complaints

    def prepare_orders(self) -> list[str]:
        """One placed online order at web-nl per call to come, each by a member."""
        web, complaints = "local-web-key", []
        for i in range(WARMUP + ITERATIONS):
            txn = f"bench-{self.run}-order-{i}"
            customer = self.customers[i % len(self.customers)] if self.customers else None
            who = {"customer_id": str(customer["customer_id"])} if customer else None
            status, receipt = self.call(
                "POST", "/v1/transactions", Call(web, body=self.sale_body(txn, who, "web-nl"))
            )
            if status != 201 or receipt.get("order_status") != "placed":
                complaints.append(f"placing an order: {status} {json.dumps(receipt)[:200]}")
                continue
            self.orders.append(txn)
        return complaints

    def transaction_scenarios(self) -> list[Scenario]:
        pos, web, run = "local-pos-key", "local-web-key", self.run
        calls = WARMUP + ITERATIONS
        most_lots = PRIOR_LOTS + (calls - 1) // EARN_MEMBERS

        def expect(body: dict[str, Any], what: str, met: bool) -> str | None:
            return None if met else f"not {what}: {json.dumps(body)[:200]}"

        def earned(i: int, body: dict[str, Any]) -> str | None:
            self.earn_sales.append((str(body.get("transaction_id")), str(body.get("customer_id"))))
            return expect(body, "a member earning", bool(body.get("member")) and body["points_earned"] > 0)

        def by_card(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "a member earning", bool(body.get("member")) and body["points_earned"] > 0)

        def guest(i: int, body: dict[str, Any]) -> str | None:
            if body.get("customer_id"):
                self.guests.append(str(body["customer_id"]))
            met = not body.get("member") and bool(body.get("customer_id")) and body["points_if_member"] > 0
            return expect(body, "an identified non-member", met)

        def non_member(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "a non-member", not body.get("member") and bool(body.get("customer_id")))

        def anonymous(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "anonymous", body.get("customer_id") is None)

        def returned(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "points taken back", body.get("points_earned", 0) < 0)

        def shipped(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "shipped", body.get("order_status") == "shipped")

        def earner(i: int) -> dict[str, str]:
            return {"customer_id": self.earners[i % len(self.earners)]}

        def card(i: int) -> dict[str, Any]:
            return {"link": {"type": "card", "value": str(self.customers[i % len(self.customers)]["card"])}}

        sale = "/v1/transactions"
        return [
            Scenario(
                EARN_PATH,
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.sale_body(f"bench-{run}-earn-{i}", earner(i))),
                EARN_TARGET,
                f"{SALE_LINES} lines by customer_id; {EARN_MEMBERS} members in turn, "
                f"{PRIOR_LOTS}-{most_lots} lots each",
                after=earned,
                setup=self.prepare_earners,
            ),
            Scenario(
                "sale (card)",
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.sale_body(f"bench-{run}-card-{i}", card(i))),
                target=EARN_TARGET,
                note="member named by card link",
                after=by_card,
            ),
            Scenario(
                "sale (guest)",
                "POST",
                sale,
                201,
                lambda i: Call(
                    pos,
                    body=self.sale_body(
                        f"bench-{run}-guest-{i}",
                        {"link": {"type": "email", "value": f"guest-{run}-{i}@example.com"}},
                    ),
                ),
                target=EARN_TARGET,
                note="new email link: creates an identified non-member",
                after=guest,
            ),
            Scenario(
                "sale (non-mem)",
                "POST",
                sale,
                201,
                lambda i: Call(
                    pos,
                    body=self.sale_body(f"bench-{run}-nonmember-{i}", {"customer_id": self.guests[i]}),
                ),
                target=EARN_TARGET,
                note="identified non-member by customer_id",
                after=non_member,
            ),
            Scenario(
                "sale (anonymous)",
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.sale_body(f"bench-{run}-anon-{i}", None)),
                target=EARN_TARGET,
                after=anonymous,
            ),
            Scenario(
                "partial return",
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.return_body(f"bench-{run}-return-{i}", self.earn_sales[i])),
                note="1 of 2 items of one line of an earn-path sale",
                after=returned,
            ),
            Scenario(
                "get transaction",
                "GET",
                "/v1/transactions/{store_id}/{transaction_id}",
                200,
                lambda i: Call(pos, {"store_id": "ams-01", "transaction_id": self.earn_sales[i][0]}),
                note="an earn-path sale",
            ),
            Scenario(
                "history",
                "GET",
                "/v1/customers/{customer_id}/transactions",
                200,
                lambda i: Call(pos, earner(i)),
                note=f"first page (50) of an earn-path member's {PRIOR_LOTS}+ sales",
            ),
            Scenario(
                "ledger",
                "GET",
                "/v1/customers/{customer_id}/ledger",
                200,
                lambda i: Call(pos, earner(i)),
                note=f"first page (50) of an earn-path member's {PRIOR_LOTS}+ entries",
            ),
            Scenario(
                "timeline",
                "GET",
                "/v1/customers/{customer_id}/timeline",
                200,
                lambda i: Call(pos, earner(i)),
                note="first page (50) of an earn-path member's timeline: one Query of gsi3",
            ),
            Scenario(
                "order shipped",
                "PATCH",
                "/v1/transactions/{store_id}/{transaction_id}",
                200,
                lambda i: Call(
                    web,
                    {"store_id": "web-nl", "transaction_id": self.orders[i]},
                    body={"order_status": "shipped"},
                ),
                note="placed -> shipped, web key",
                after=shipped,
                setup=self.prepare_orders,
            ),
        ]
