"""Customer service against DynamoDB Local: enrolment, identity links, profiles, idempotency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from loyalty.adapters.customers import CustomerRepository
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, Profile
from loyalty.domain.errors import (
    CustomerNotFound,
    Forbidden,
    IdempotencyKeyMismatch,
    IdentityConflict,
    LinkNotFound,
    LinkTaken,
    ValidationFailed,
)
from loyalty.domain.links import Link
from loyalty.domain.replay import StoredResponse
from loyalty.services.customers import EnrolCommand, OnConflict, ProfilePatch, RawLink
from loyalty.services.ports import IdempotencyRequest
from loyalty.services.replay import IdempotentReplay

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)


def enrol_command(*links: tuple[str, str], member: bool = True, **profile: Any) -> EnrolCommand:
    return EnrolCommand(
        links=[RawLink(t, v) for t, v in links],
        profile=Profile(**profile),
        consents=Consents(email=True),
        member=member,
        store_id=None,
    )


def table_items(container: Container) -> list[dict[str, Any]]:
    client = container.table._client
    return client.scan(TableName=container.table.name)["Items"]


def link_owner(container: Container, link: Link) -> str | None:
    return CustomerRepository(container.table).owner_of(link)


class TestEnrolment:
    def test_new_member_gets_a_card_and_normalised_links(self, container: Container) -> None:
        result = container.customers.enrol(
            enrol_command(("email", " Jane@Example.COM"), ("phone", "06 12345678"), first_name="Jane"), POS
        )

        customer = result.customer
        assert result.created
        assert customer.member and customer.tier == "bronze"
        assert customer.origin_store_id == "ams-01"
        assert Link("email", "jane@example.com") in customer.links
        assert Link("phone", "+31612345678") in customer.links
        assert customer.card is not None and customer.card.value.startswith("29")
        for link in customer.links:
            assert link_owner(container, link) == customer.customer_id
        assert container.customers.lookup("card", customer.card.value).customer_id == customer.customer_id
        assert container.customers.lookup("email", "JANE@example.com").customer_id == customer.customer_id

    def test_identified_non_member_needs_a_link_and_gets_no_card(self, container: Container) -> None:
        with pytest.raises(ValidationFailed) as caught:
            container.customers.enrol(enrol_command(member=False), WEB)
        assert caught.value.errors[0].loc == ("body", "links")

        guest = container.customers.enrol(
            enrol_command(("email", "guest@example.com"), member=False), WEB
        ).customer
        assert not guest.member and guest.card is None and guest.tier is None and guest.enrolled_at is None

    def test_enrolling_a_known_non_member_keeps_the_profile(self, container: Container, clock: Any) -> None:
        guest = container.customers.enrol(
            enrol_command(("email", "guest@example.com"), member=False, first_name="Gus"), WEB
        ).customer
        clock.advance(days=3)

        result = container.customers.enrol(
            enrol_command(("email", "guest@example.com"), ("phone", "+31 6 11112222"), last_name="Guest"), POS
        )

        assert not result.created
        enrolled = result.customer
        assert enrolled.customer_id == guest.customer_id
        assert enrolled.member and enrolled.tier == "bronze" and enrolled.card is not None
        assert enrolled.profile.first_name == "Gus" and enrolled.profile.last_name == "Guest"
        assert enrolled.created_at == guest.created_at and enrolled.enrolled_at == clock.now()
        stored = container.customers.get(guest.customer_id)
        assert stored == enrolled
        assert link_owner(container, Link("phone", "+31611112222")) == guest.customer_id

    def test_an_existing_member_is_a_conflict_and_nothing_is_written(self, container: Container) -> None:
        first = container.customers.enrol(enrol_command(("email", "jane@example.com")), POS).customer
        before = table_items(container)

        with pytest.raises(IdentityConflict) as caught:
            container.customers.enrol(
                enrol_command(("email", "jane@example.com"), ("phone", "+31611112222")), POS
            )

        assert caught.value.extra["customer_ids"] == [first.customer_id]
        assert sorted(map(str, table_items(container))) == sorted(map(str, before))

    def test_links_of_two_customers_conflict_naming_both(self, container: Container) -> None:
        a = container.customers.enrol(enrol_command(("email", "a@example.com"), member=False), WEB).customer
        b = container.customers.enrol(enrol_command(("phone", "+31611112222"), member=False), WEB).customer

        with pytest.raises(IdentityConflict) as caught:
            container.customers.enrol(
                enrol_command(("email", "a@example.com"), ("phone", "+31611112222")), POS
            )

        assert sorted(caught.value.extra["customer_ids"]) == sorted([a.customer_id, b.customer_id])

    def test_bad_links_are_all_listed_and_nothing_is_written(self, container: Container) -> None:
        before = len(table_items(container))
        with pytest.raises(ValidationFailed) as caught:
            container.customers.enrol(
                enrol_command(("email", "nope"), ("fax", "1"), ("phone", "+31612345678")), POS
            )
        assert [e.loc for e in caught.value.errors] == [
            ("body", "links", 0, "value"),
            ("body", "links", 1, "type"),
        ]
        assert len(table_items(container)) == before

    def test_a_till_cannot_enrol_for_another_store(self, container: Container) -> None:
        command = EnrolCommand([RawLink("email", "x@example.com")], Profile(), Consents(), True, "web-nl")
        with pytest.raises(Forbidden):
            container.customers.enrol(command, POS)

    def test_unknown_store_is_named(self, container: Container) -> None:
        command = EnrolCommand([RawLink("email", "x@example.com")], Profile(), Consents(), True, "nowhere")
        with pytest.raises(ValidationFailed) as caught:
            container.customers.enrol(command, ADMIN)
        assert caught.value.errors[0].loc == ("body", "store_id")

    def test_unknown_customer_is_not_found(self, container: Container) -> None:
        with pytest.raises(CustomerNotFound):
            container.customers.get("01NOPE")
        with pytest.raises(CustomerNotFound):
            container.customers.lookup("email", "nobody@example.com")


class TestConcurrency:
    def test_simultaneous_enrolments_with_one_email_have_exactly_one_winner(
        self, container: Container
    ) -> None:
        def attempt(i: int) -> str:
            try:
                command = enrol_command(("email", "race@example.com"), ("ext:pos", f"till-{i}"))
                return "won:" + container.customers.enrol(command, POS).customer.customer_id
            except IdentityConflict:
                return "conflict"

        with ThreadPoolExecutor(max_workers=16) as pool:
            outcomes = list(pool.map(attempt, range(16)))

        winners = [o for o in outcomes if o.startswith("won:")]
        assert len(winners) == 1, outcomes
        assert outcomes.count("conflict") == 15
        winner = winners[0].removeprefix("won:")
        assert link_owner(container, Link("email", "race@example.com")) == winner
        # Losers left nothing behind: exactly one profile exists.
        profiles = [i for i in table_items(container) if i["sk"]["S"] == "PROFILE"]
        assert len(profiles) == 1

    def test_concurrent_moves_of_one_link_leave_it_on_exactly_one_profile(self, container: Container) -> None:
        ids = [
            container.customers.enrol(enrol_command(("email", f"c{i}@example.com")), POS).customer.customer_id
            for i in range(6)
        ]
        container.customers.add_link(ids[0], RawLink("phone", "+31611112222"), OnConflict.REJECT)

        def move(cid: str) -> None:
            container.customers.add_link(cid, RawLink("phone", "+31611112222"), OnConflict.MOVE)

        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(move, ids[1:]))

        owner = link_owner(container, Link("phone", "+31611112222"))
        holders = [cid for cid in ids if Link("phone", "+31611112222") in container.customers.get(cid).links]
        assert holders == [owner]


class TestLinks:
    def test_reject_move_and_detach(self, container: Container) -> None:
        jane = container.customers.enrol(enrol_command(("email", "jane@example.com")), POS).customer
        john = container.customers.enrol(enrol_command(("email", "john@example.com")), POS).customer
        phone = RawLink("phone", "+31 6 22223333")

        added = container.customers.add_link(jane.customer_id, phone, OnConflict.REJECT)
        assert added.created and Link("phone", "+31622223333") in added.customer.links
        again = container.customers.add_link(jane.customer_id, phone, OnConflict.REJECT)
        assert not again.created

        with pytest.raises(LinkTaken) as taken:
            container.customers.add_link(john.customer_id, phone, OnConflict.REJECT)
        assert taken.value.extra["customer_id"] == jane.customer_id
        with pytest.raises(LinkTaken):
            container.customers.add_link(john.customer_id, phone, OnConflict.MERGE)

        moved = container.customers.add_link(john.customer_id, phone, OnConflict.MOVE).customer
        assert Link("phone", "+31622223333") in moved.links
        assert Link("phone", "+31622223333") not in container.customers.get(jane.customer_id).links
        assert link_owner(container, Link("phone", "+31622223333")) == john.customer_id

        container.customers.remove_link(john.customer_id, "phone", "+31622223333")
        assert link_owner(container, Link("phone", "+31622223333")) is None
        assert Link("phone", "+31622223333") not in container.customers.get(john.customer_id).links
        with pytest.raises(LinkNotFound):
            container.customers.remove_link(john.customer_id, "phone", "+31622223333")
        with pytest.raises(LinkNotFound):
            container.customers.remove_link(john.customer_id, "email", "jane@example.com")
        assert link_owner(container, Link("email", "jane@example.com")) == jane.customer_id


class TestProfile:
    def test_patch_merges_attributes_and_consents(self, container: Container) -> None:
        jane = container.customers.enrol(
            enrol_command(
                ("email", "jane@example.com"), first_name="Jane", attributes={"size": "M", "pet": "cat"}
            ),
            POS,
        ).customer

        patch = ProfilePatch(
            fields={"last_name": "Doe"},
            attributes={"pet": None, "shoe": 38},
            consents={"sms": True},
            member=None,
        )
        updated = container.customers.update(jane.customer_id, patch).customer

        assert updated.profile.first_name == "Jane" and updated.profile.last_name == "Doe"
        assert updated.profile.attributes == {"size": "M", "shoe": 38}
        assert updated.consents == Consents(email=True, sms=True, mail=False)
        assert container.customers.get(jane.customer_id) == updated
        assert updated.version == jane.version + 1

    def test_patch_member_true_enrols_a_non_member(self, container: Container) -> None:
        guest = container.customers.enrol(
            enrol_command(("email", "g@example.com"), member=False), WEB
        ).customer
        enrolled = container.customers.update(
            guest.customer_id, ProfilePatch(fields={}, attributes=None, consents={}, member=True)
        ).customer
        assert enrolled.member and enrolled.card is not None and enrolled.tier == "bronze"
        assert link_owner(container, enrolled.card) == guest.customer_id


class TestIdempotency:
    def request(self, key: str, fingerprint: str) -> IdempotencyRequest:
        return IdempotencyRequest(
            "key-pos", key, fingerprint, lambda result: StoredResponse(201, result.customer.customer_id, {})
        )

    def test_replay_returns_the_first_response_and_writes_nothing(self, container: Container) -> None:
        first = container.customers.enrol(
            enrol_command(("email", "i@example.com")), POS, self.request("k1", "f1")
        )
        count = len(table_items(container))

        with pytest.raises(IdempotentReplay) as replay:
            container.customers.enrol(
                enrol_command(("email", "i@example.com")), POS, self.request("k1", "f1")
            )

        assert replay.value.status_code == 201 and replay.value.body == first.customer.customer_id
        assert len(table_items(container)) == count

    def test_same_key_with_another_body_is_a_mismatch(self, container: Container) -> None:
        container.customers.enrol(enrol_command(("email", "i@example.com")), POS, self.request("k1", "f1"))
        with pytest.raises(IdempotencyKeyMismatch):
            container.customers.enrol(
                enrol_command(("email", "other@example.com")), POS, self.request("k1", "f2")
            )
        with pytest.raises(CustomerNotFound):
            container.customers.lookup("email", "other@example.com")

    def test_concurrent_replays_create_one_customer(self, container: Container) -> None:
        def attempt(_: int) -> str:
            try:
                command = enrol_command(("email", "same@example.com"))
                return container.customers.enrol(
                    command, POS, self.request("k-race", "f")
                ).customer.customer_id
            except IdentityConflict as conflict:
                return "conflict:" + conflict.extra["customer_ids"][0]
            except IdempotentReplay as replay:
                return replay.body

        with ThreadPoolExecutor(max_workers=12) as pool:
            outcomes = list(pool.map(attempt, range(12)))

        winner = link_owner(container, Link("email", "same@example.com"))
        # Every caller learns the same customer id, whether by the replay or the conflict.
        assert {o.removeprefix("conflict:") for o in outcomes} == {winner}
        assert len([i for i in table_items(container) if i["sk"]["S"] == "PROFILE"]) == 1
