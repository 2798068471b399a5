"""The membership worker's small pure parts: whom a bus event names, what it already says happened,
what CustomerUpdated names, and how a diff treats new, kept, re-versioned and gone segments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from loyalty.adapters.segments import Membership, StoredMemberships
from loyalty.domain.customers import Consents, Customer, CustomerStatus, Profile
from loyalty.domain.segments import parse_rule
from loyalty.services.customers import changed_fields
from loyalty.services.segment_membership import SavedRule, _diff, customers_named, seen_in

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_merges_name_both_profiles_and_erasures_every_profile_erased() -> None:
    assert customers_named("CustomersMerged", {"survivor_id": "A", "merged_id": "B"}) == ["B", "A"]
    assert customers_named("MergeUndone", {"survivor_id": "A", "restored_id": "B"}) == ["A", "B"]
    assert customers_named("CustomerErased", {"customer_id": "A", "merged_ids": ["B", "C"]}) == [
        "A",
        "B",
        "C",
    ]
    assert customers_named("TransactionRecorded", {"customer_id": None}) == []  # anonymous: nobody
    assert customers_named("CustomerEventRecorded", {"customer_id": "A"}) == ["A"]


def test_a_bus_event_carries_the_fact_that_caused_it() -> None:
    sale = seen_in("TransactionRecorded", {"store_id": "s", "transaction_id": "t", "customer_id": "A"})
    assert sale.transactions == (("s", "t"),)
    detail = {
        "store_id": "web",
        "event_id": "e1",
        "type": "product_view",
        "occurred_at": "2026-11-22T09:59:00Z",
        "properties": {"sku": "X"},
    }
    ((key, event),) = seen_in("CustomerEventRecorded", detail).events
    assert key == ("web", "e1") and event.type == "product_view" and event.properties == {"sku": "X"}
    assert seen_in("TierChanged", {"customer_id": "A"}).transactions == ()


def test_customer_updated_names_the_changed_fields_by_their_rule_paths() -> None:
    before = Customer(
        "C", True, CustomerStatus.ACTIVE, Profile(attributes={"a": 1, "b": 2}), Consents(), (), AT
    )
    after = replace(
        before,
        profile=Profile(first_name="Jo", attributes={"a": 1, "c": 3}),
        consents=Consents(sms=True),
    )
    assert changed_fields(before, after) == [
        "profile.first_name",
        "profile.attributes.b",
        "profile.attributes.c",
        "consents.sms",
    ]
    assert changed_fields(before, before) == []


def test_a_diff_enters_new_segments_keeps_entry_times_moves_rule_versions_and_drops_gone_ones() -> None:
    rule = parse_rule({"attr": "member", "eq": True})
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    stored = StoredMemberships(
        "C",
        {"kept": Membership(earlier, 1), "gone": Membership(earlier, 1), "bumped": Membership(earlier, 1)},
        version=3,
    )
    matches = {
        "kept": SavedRule("kept", 1, rule),
        "bumped": SavedRule("bumped", 2, rule),
        "new": SavedRule("new", 5, rule),
    }
    diff = _diff(stored, matches, set(stored.segments), AT)
    assert diff.entered == {"new": Membership(AT, 5)}
    assert diff.exited == ["gone"]
    assert diff.segments == {
        "kept": Membership(earlier, 1),
        "bumped": Membership(earlier, 2),  # still a member under the new rule: no event, same entry
        "new": Membership(AT, 5),
    }
    # Only one segment in scope: the others are left as they are.
    only = _diff(stored, {}, {"gone"}, AT)
    assert only.exited == ["gone"] and set(only.segments) == {"kept", "bumped"}
