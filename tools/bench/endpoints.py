"""The endpoint scenarios, in an order where each one's data comes from an earlier one."""

from __future__ import annotations

from typing import Any

from tools.bench.carts import CartBench
from tools.bench.events import EventBench
from tools.bench.redemptions import RedemptionBench
from tools.bench.scenario import ENROL_TARGET, LOOKUP_TARGET, Call, Scenario


class EndpointBench(CartBench, RedemptionBench, EventBench):
    """Every scenario family of the bench on one warm set of functions."""

    # ---- the scenarios, in an order where each one's data comes from an earlier one -------------
    def scenarios(self) -> list[Scenario]:
        pos, admin = "local-pos-key", "local-admin-key"
        run = self.run

        def enrolled(i: int, body: dict[str, Any]) -> None:
            self.customers.append(body)

        def issued(i: int, body: dict[str, Any]) -> None:
            self.key_ids.append(str(body["key_id"]))

        def programme(i: int, body: dict[str, Any]) -> None:
            self.programme = body

        def cust(i: int) -> dict[str, Any]:
            return self.customers[i % len(self.customers)]

        def cid(i: int) -> dict[str, str]:
            return {"customer_id": str(cust(i)["customer_id"])}

        alt = "alt-{run}-{i}@example.com"
        return [
            Scenario("health", "GET", "/v1/health", 200, lambda i: Call("")),
            Scenario(
                "enroll",
                "POST",
                "/v1/customers",
                201,
                lambda i: Call(
                    pos,
                    body={
                        "links": [{"type": "email", "value": f"Bench-{run}-{i}@Example.com"}],
                        "profile": {"first_name": "Bench", "last_name": f"Customer {i}"},
                        "consents": {"email": True},
                    },
                ),
                ENROL_TARGET,
                "member, email link + generated card",
                after=enrolled,
            ),
            Scenario("get customer", "GET", "/v1/customers/{customer_id}", 200, lambda i: Call(pos, cid(i))),
            Scenario(
                "lookup (card)",
                "GET",
                "/v1/customers",
                200,
                lambda i: Call(pos, query={"link_type": "card", "link_value": str(cust(i)["card"])}),
                LOOKUP_TARGET,
            ),
            Scenario(
                "lookup (email)",
                "GET",
                "/v1/customers",
                200,
                lambda i: Call(
                    pos, query={"link_type": "email", "link_value": f"bench-{run}-{i}@example.com"}
                ),
                LOOKUP_TARGET,
            ),
            Scenario(
                "patch customer",
                "PATCH",
                "/v1/customers/{customer_id}",
                200,
                lambda i: Call(
                    pos, cid(i), body={"profile": {"first_name": f"Renamed {i}"}, "consents": {"sms": True}}
                ),
            ),
            Scenario(
                "add link",
                "POST",
                "/v1/customers/{customer_id}/links",
                201,
                lambda i: Call(pos, cid(i), body={"type": "email", "value": alt.format(run=run, i=i)}),
                note="on_conflict=reject, link free",
            ),
            Scenario(
                "remove link",
                "DELETE",
                "/v1/customers/{customer_id}/links/{type}/{value}",
                204,
                lambda i: Call(pos, {**cid(i), "type": "email", "value": alt.format(run=run, i=i)}),
            ),
            *self.transaction_scenarios(),
            # Drafts and paused badges: they must not change what the activity section measures.
            Scenario(
                "put challenge",
                "PUT",
                "/v1/admin/challenges/{challenge_id}",
                201,
                lambda i: Call(
                    admin,
                    {"challenge_id": f"bench-{run}-{i}"},
                    body={
                        "challenge_id": f"bench-{run}-{i}",
                        "name": f"Bench {i}",
                        "status": "draft",
                        "tasks": [{"task_id": "t", "purchase": {"categories": ["coffee"]}, "count": 9}],
                        "reward": {"points": 100},
                        "repeatable": True,
                    },
                ),
                note="new draft punch card each call",
            ),
            Scenario(
                "get challenge",
                "GET",
                "/v1/admin/challenges/{challenge_id}",
                200,
                lambda i: Call(admin, {"challenge_id": f"bench-{run}-{i}"}),
            ),
            Scenario(
                "list challenges",
                "GET",
                "/v1/admin/challenges",
                200,
                lambda i: Call(admin),
                note="first page",
            ),
            Scenario(
                "put badge",
                "PUT",
                "/v1/admin/badges/{badge_id}",
                201,
                lambda i: Call(
                    admin,
                    {"badge_id": f"bench-{run}-{i}"},
                    body={
                        "badge_id": f"bench-{run}-{i}",
                        "name": f"Bench {i}",
                        "status": "paused",
                        "when": {"metric": "transactions", "gte": 10},
                    },
                ),
                note="new paused badge each call",
            ),
            Scenario(
                "get badge",
                "GET",
                "/v1/admin/badges/{badge_id}",
                200,
                lambda i: Call(admin, {"badge_id": f"bench-{run}-{i}"}),
            ),
            Scenario("list badges", "GET", "/v1/admin/badges", 200, lambda i: Call(admin), note="first page"),
            Scenario(
                "customer challenges",
                "GET",
                "/v1/customers/{customer_id}/challenges",
                200,
                lambda i: Call(pos, cid(i)),
                note="the customer, every challenge document, the customer's progress",
            ),
            *self.event_scenarios(),
            Scenario(
                "put store",
                "PUT",
                "/v1/admin/stores/{store_id}",
                201,
                lambda i: Call(
                    admin,
                    {"store_id": f"bench-{run}-{i}"},
                    body={"channel": "pos", "format": "kiosk", "name": f"Bench {i}", "attributes": {"n": i}},
                ),
                note="new store each call",
            ),
            Scenario(
                "get store",
                "GET",
                "/v1/admin/stores/{store_id}",
                200,
                lambda i: Call(admin, {"store_id": f"bench-{run}-{i}"}),
                note="a different store each call: misses the 60 s cache",
            ),
            Scenario(
                "list stores", "GET", "/v1/admin/stores", 200, lambda i: Call(admin), note="first page (50)"
            ),
            Scenario(
                "issue api key",
                "POST",
                "/v1/admin/api-keys",
                201,
                lambda i: Call(admin, body={"kind": "pos", "store_id": "ams-01", "name": f"bench till {i}"}),
                after=issued,
            ),
            Scenario(
                "list api keys",
                "GET",
                "/v1/admin/api-keys",
                200,
                lambda i: Call(admin),
                note="first page (50)",
            ),
            Scenario(
                "revoke api key",
                "DELETE",
                "/v1/admin/api-keys/{key_id}",
                204,
                lambda i: Call(admin, {"key_id": self.key_ids[i]}),
            ),
            Scenario(
                "get programme",
                "GET",
                "/v1/admin/programme",
                200,
                lambda i: Call(admin),
                note="served from the 60 s cache",
                after=programme,
            ),
            Scenario(
                "put programme",
                "PUT",
                "/v1/admin/programme",
                200,
                lambda i: Call(admin, body=self.programme),
                note="same document each call",
            ),
        ]
