"""What an enrolment does, given who already owns the links (no I/O)."""

from __future__ import annotations

from loyalty.domain.customers import EnrolmentOutcome, LinkOwner, decide_enrolment
from loyalty.domain.ids import ean13_check_digit, is_valid_card_number, new_card_number
from loyalty.domain.links import Link

EMAIL = Link("email", "jane@example.com")
PHONE = Link("phone", "+31612345678")


def test_no_known_link_creates_a_profile() -> None:
    assert decide_enrolment({}, wants_member=True).outcome is EnrolmentOutcome.CREATE


def test_links_of_one_non_member_enrol_that_profile() -> None:
    decision = decide_enrolment({EMAIL: LinkOwner("C1", member=False)}, wants_member=True)
    assert decision.outcome is EnrolmentOutcome.ENROL_EXISTING
    assert decision.customer_id == "C1"


def test_a_non_member_recorded_again_returns_the_same_profile() -> None:
    decision = decide_enrolment({EMAIL: LinkOwner("C1", member=False)}, wants_member=False)
    assert decision.outcome is EnrolmentOutcome.RETURN_EXISTING
    assert decision.customer_id == "C1"


def test_an_existing_member_is_a_conflict() -> None:
    decision = decide_enrolment({EMAIL: LinkOwner("C1", member=True)}, wants_member=True)
    assert decision.outcome is EnrolmentOutcome.CONFLICT
    assert decision.conflicting_ids == ("C1",)


def test_links_of_two_customers_are_a_conflict_naming_both() -> None:
    decision = decide_enrolment(
        {EMAIL: LinkOwner("C2", member=False), PHONE: LinkOwner("C1", member=False)}, wants_member=True
    )
    assert decision.outcome is EnrolmentOutcome.CONFLICT
    assert decision.conflicting_ids == ("C1", "C2")


def test_generated_cards_are_ean13_in_the_in_store_range() -> None:
    numbers = {new_card_number() for _ in range(500)}
    assert len(numbers) == 500
    for number in numbers:
        assert number.startswith("29")
        assert is_valid_card_number(number)


def test_ean13_check_digit_matches_a_known_barcode() -> None:
    assert ean13_check_digit("400638133393") == "1"  # 4006381333931, a published example
    assert not is_valid_card_number("4006381333932")
