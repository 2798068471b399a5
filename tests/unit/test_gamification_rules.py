"""The challenge, punch-card and badge rules (pure domain, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from loyalty.domain.customers import Consents, Customer, CustomerStatus, PointsSummary, Profile, Stats
from loyalty.domain.gamification import (
    Activity,
    Badge,
    Challenge,
    Counters,
    Progress,
    Sale,
    admits,
    advance,
    count_event,
    newly_earned,
    no_longer_counting,
    sale_qualifies,
    tracked_event_types,
    unknown_references,
    withdraw,
)
from loyalty.domain.sales import Line
from loyalty.domain.stores import Channel, Store

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CORNER = Store("ams-01", Channel.POS, "flagship", attributes={"coffee_corner": True})
WEB = Store("web-nl", Channel.ONLINE)


def challenge(**fields: Any) -> Challenge:
    return Challenge.model_validate({"challenge_id": "c", "name": "c", "reward": {"points": 10}, **fields})


def customer(member: bool = True, **fields: Any) -> Customer:
    return Customer(
        customer_id="C1",
        member=member,
        status=CustomerStatus.ACTIVE,
        profile=Profile(),
        consents=Consents(),
        links=(),
        created_at=AT,
        **fields,
    )


def facts(store: Store, *lines: tuple[str, str | None, str]) -> Sale:
    return Sale(
        store,
        tuple(
            Line(str(i), sku, cat, Decimal(1), Decimal(price)) for i, (sku, cat, price) in enumerate(lines)
        ),
    )


def sale(store: Store, *lines: tuple[str, str | None, str]) -> Activity:
    return Activity(
        source=f"TXN#{store.store_id}#{len(lines)}", at=AT, store_id=store.store_id, sale=facts(store, *lines)
    )


def event(type_: str, **properties: Any) -> Activity:
    return Activity(
        source=f"EVT#web-nl#{type_}", at=AT, store_id="web-nl", event_type=type_, properties=properties
    )


class TestDefinitions:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"tasks": []}, "at least 1"),
            ({"tasks": [{"task_id": "t", "count": 1}]}, "either events"),
            ({"tasks": [{"task_id": "t", "event": {"type": "a"}, "purchase": {}}]}, "either events"),
            ({"tasks": [{"task_id": "t", "event": {"type": "a"}}] * 2}, "unique"),
            ({"tasks": [{"task_id": "t", "purchase": {"channels": ["fax"]}}]}, "unknown channel"),
            ({"tasks": [{"task_id": "t", "event": {"type": "a"}, "count": 0}]}, "greater than or equal to 1"),
            ({"tasks": [{"task_id": "t", "event": {"type": "a"}}], "reward": {}}, "either `points`"),
            (
                {"tasks": [{"task_id": "t", "event": {"type": "a"}}], "audience": {"first_purchase": True}},
                "offers",
            ),
            (
                {
                    "tasks": [{"task_id": "t", "event": {"type": "a"}}],
                    "valid_from": "2026-12-01T00:00:00Z",
                    "valid_until": "2026-11-01T00:00:00Z",
                },
                "after valid_from",
            ),
        ],
    )
    def test_bad_challenges_are_refused(self, fields: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            challenge(**fields)

    def test_unknown_tiers_stores_and_price_groups_are_named(self) -> None:
        c = challenge(
            tasks=[{"task_id": "t", "purchase": {"stores": ["ams-01", "nowhere"]}}],
            audience={"tiers": ["gold", "mithril"], "price_groups": ["staff"]},
        )
        errors = unknown_references(c, tiers=["gold"], stores={"ams-01"}, price_groups=set())
        assert [e.loc for e in errors] == [
            ("body", "audience", "tiers", 1),
            ("body", "audience", "price_groups", 0),
            ("body", "tasks", 0, "purchase", "stores", 1),
        ]

    @pytest.mark.parametrize("metric", ["visits", "events:", "events:a b", "Spend"])
    def test_unknown_badge_metrics_are_refused(self, metric: str) -> None:
        with pytest.raises(ValidationError):
            Badge.model_validate({"badge_id": "b", "name": "b", "when": {"metric": metric, "gte": 1}})


class TestPurchaseTasks:
    def test_store_attributes_channels_categories_and_min_total(self) -> None:
        task = challenge(
            tasks=[
                {
                    "task_id": "t",
                    "purchase": {
                        "categories": ["fruit"],
                        "min_total": "5.00",
                        "store_attributes": {"coffee_corner": True},
                    },
                }
            ]
        ).tasks[0]
        assert task.purchase is not None
        assert sale_qualifies(task.purchase, facts(CORNER, ("A", "fruit", "3.00"), ("B", "fruit", "2.00")))
        # Other lines do not count towards min_total; another store lacks the attribute.
        assert not sale_qualifies(
            task.purchase, facts(CORNER, ("A", "fruit", "3.00"), ("C", "bread", "9.00"))
        )
        assert not sale_qualifies(task.purchase, facts(WEB, ("A", "fruit", "9.00")))

    def test_after_a_return_only_the_purchase_tasks_the_sale_no_longer_meets_are_named(self) -> None:
        c = challenge(
            tasks=[
                {"task_id": "big", "purchase": {"min_total": "20.00"}},
                {"task_id": "any", "purchase": {}},
                {"task_id": "rev", "event": {"type": "review"}},
            ]
        )
        left = facts(CORNER, ("A", "food", "15.00"))
        assert no_longer_counting(c, ["big", "any", "rev", "gone"], left) == ["big"]

    def test_a_fully_returned_line_no_longer_counts(self) -> None:
        task = challenge(tasks=[{"task_id": "t", "purchase": {"skus": ["A"]}}]).tasks[0]
        assert task.purchase is not None
        returned = Sale(CORNER, (Line("1", "A", None, Decimal(0), Decimal("3.00")),))
        assert not sale_qualifies(task.purchase, returned)


class TestProgress:
    def test_a_challenge_completes_once_when_its_last_task_does(self) -> None:
        c = challenge(
            tasks=[
                {"task_id": "r", "event": {"type": "review", "where": {"rating": 5}}, "count": 2},
                {"task_id": "b", "purchase": {}},
            ]
        )
        p = Progress("c")
        assert advance(c, p, event("review", rating=4)) is None  # where: property must equal
        step = advance(c, p, event("review", rating=5))
        assert step is not None and step.counted == ("r",) and not step.completed
        step = advance(c, step.progress, event("review", rating=5))
        assert step is not None and step.progress.tasks == {"r": 2, "b": 0} and not step.completed
        assert advance(c, step.progress, event("review", rating=5)) is None  # full: nothing counted
        step = advance(c, step.progress, sale(WEB, ("A", None, "1.00")))
        assert step is not None and step.completed and step.progress.completions == 1
        assert step.progress.finished(c)
        assert advance(c, step.progress, sale(WEB, ("A", None, "1.00"))) is None

    def test_a_punch_card_starts_again_after_each_reward(self) -> None:
        card = challenge(
            tasks=[{"task_id": "s", "purchase": {"categories": ["coffee"]}, "count": 3}], repeatable=True
        )
        p, rewards = Progress("c"), 0
        for _ in range(7):
            step = advance(card, p, sale(CORNER, ("E", "coffee", "3.00")))
            assert step is not None
            p, rewards = step.progress, rewards + step.completed
        assert rewards == 2 and p.completions == 2 and p.tasks == {"s": 1}

    def test_a_return_takes_back_only_in_the_cycle_it_counted_in(self) -> None:
        card = challenge(tasks=[{"task_id": "s", "purchase": {}, "count": 2}], repeatable=True)
        one = advance(card, Progress("c"), sale(CORNER, ("A", None, "1.00")))
        assert one is not None
        back = withdraw(card, one.progress, ["s"], one.cycle)
        assert back is not None and back.tasks == {"s": 0}
        two = advance(card, one.progress, sale(CORNER, ("A", None, "1.00")))
        assert two is not None and two.completed
        assert withdraw(card, two.progress, ["s"], one.cycle) is None  # rewarded: nothing taken back

    def test_a_distinct_store_task_counts_each_store_once_and_a_return_frees_its_store(self) -> None:
        tour = challenge(
            tasks=[
                {
                    "task_id": "corners",
                    "purchase": {"store_attributes": {"coffee_corner": True}, "distinct_stores": True},
                    "count": 3,
                }
            ]
        )
        stores = [Store(s, Channel.POS, attributes={"coffee_corner": True}) for s in ("a", "b", "c")]
        p = Progress("c")
        for store in (stores[0], stores[0], stores[1]):
            step = advance(tour, p, sale(store, ("E", "coffee", "3.00")))
            p = step.progress if step else p
        assert p.tasks == {"corners": 2} and p.stores == {"corners": ("a", "b")}
        back = withdraw(tour, p, ["corners"], 0, "b")
        assert back is not None and back.tasks == {"corners": 1} and back.stores == {"corners": ("a",)}
        for store in (stores[1], stores[2]):
            step = advance(tour, back, sale(store, ("E", "coffee", "3.00")))
            assert step is not None
            back = step.progress
        assert step.completed and back.completions == 1

    def test_only_members_in_the_audience_and_the_window_take_part(self) -> None:
        c = challenge(
            tasks=[{"task_id": "t", "event": {"type": "a"}}],
            audience={"tiers": ["gold"]},
            valid_until="2026-11-22T10:00:00Z",
        )
        gold = customer(tier="gold")
        assert not admits(c, gold, AT)  # valid_until is exclusive
        open_ended = challenge(tasks=[{"task_id": "t", "event": {"type": "a"}}], audience={"tiers": ["gold"]})
        assert admits(open_ended, gold, AT)
        assert not admits(open_ended, customer(tier="silver"), AT)
        assert not admits(open_ended, customer(member=False, tier="gold"), AT)
        assert not admits(open_ended.model_copy(update={"status": "paused"}), gold, AT)


class TestBadges:
    def test_metrics_and_earned_once(self) -> None:
        badges = [
            Badge.model_validate(
                {"badge_id": "tenth", "name": "x", "when": {"metric": "transactions", "gte": 10}}
            ),
            Badge.model_validate(
                {"badge_id": "big", "name": "x", "when": {"metric": "spend", "gte": "1000.00"}}
            ),
            Badge.model_validate(
                {"badge_id": "five", "name": "x", "when": {"metric": "events:review", "gte": 5}}
            ),
            Badge.model_validate(
                {"badge_id": "pts", "name": "x", "when": {"metric": "lifetime_points", "gte": 100}}
            ),
            Badge.model_validate(
                {"badge_id": "three", "name": "x", "when": {"metric": "challenges_completed", "gte": 3}}
            ),
        ]
        assert tracked_event_types(badges) == {"review"}
        jane = customer(
            stats=Stats(transactions=10, spend=Decimal("999.99")), points=PointsSummary(lifetime=100)
        )
        counters = Counters(events={"review": 4}, challenges_completed=3)
        assert {b.badge_id for b in newly_earned(badges, jane, counters)} == {"tenth", "pts", "three"}
        counters = count_event(counters, "review", tracked_event_types(badges))
        counters = count_event(counters, "site_visit", tracked_event_types(badges))  # untracked: not kept
        assert counters.events == {"review": 5}
        earned = Counters(events=counters.events, badges={"tenth": AT, "pts": AT, "three": AT})
        assert [b.badge_id for b in newly_earned(badges, jane, earned)] == ["five"]
        assert newly_earned(badges, customer(member=False, stats=jane.stats), counters) == []
