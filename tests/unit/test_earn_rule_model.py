"""The programme's earn rules: sale rules (points or cashback) and event rules, side by side."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from loyalty.domain.programme import Cashback, EarnRule, EventEarnRule, Programme, default_programme


def programme_with(*rules: Any) -> Programme:
    body = default_programme().model_dump(mode="json")
    body["earn_rules"] = list(rules)
    return Programme.model_validate(body)


def errors_of(*rules: Any) -> dict[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as caught:
        programme_with(*rules)
    return {tuple(e["loc"]): e["msg"] for e in caught.value.errors()}


APP_INSTALL = {
    "rule_id": "app",
    "name": "Install the app",
    "on_event": "app_install",
    "points": 100,
    "where": {"platform": "ios"},
    "limit": {"per_customer": 1, "per": "ever"},
}
CASHBACK = {
    "rule_id": "cb",
    "name": "5% back",
    "categories": ["coffee"],
    "cashback": {"percent": "5", "expires_days": 90},
}
DOUBLE = {"rule_id": "x2", "name": "double", "multiplier": "2", "where": {"channels": ["online"]}}


class TestShapes:
    def test_both_kinds_of_rule_validate_side_by_side_and_round_trip(self) -> None:
        programme = programme_with(APP_INSTALL, CASHBACK, DOUBLE)
        event, cashback, double = programme.earn_rules
        assert isinstance(event, EventEarnRule) and event.where == {"platform": "ios"}
        assert isinstance(cashback, EarnRule) and cashback.cashback == Cashback(
            percent=Decimal(5), expires_days=90
        )
        assert isinstance(double, EarnRule) and double.where.channels == ["online"]
        assert programme.event_rules == [event] and programme.sale_rules == [cashback, double]
        assert Programme.model_validate_json(programme.model_dump_json()) == programme

    def test_a_programme_without_the_new_fields_is_still_valid(self) -> None:
        programme = programme_with({"rule_id": "b", "name": "bonus", "bonus_points": 25})
        assert programme.sale_rules[0].cashback is None and programme.event_rules == []

    def test_an_event_rules_where_is_property_equality_and_says_which_property_is_wrong(self) -> None:
        errors = errors_of({**APP_INSTALL, "where": {"platform": 1.5, "rating": {"gte": 4}}})
        assert set(errors) == {("earn_rules", 0, "where", "platform"), ("earn_rules", 0, "where", "rating")}
        assert "a whole number or a boolean" in errors["earn_rules", 0, "where", "platform"]

    def test_a_sale_rules_where_is_about_stores_and_refuses_event_properties(self) -> None:
        errors = errors_of({**DOUBLE, "where": {"platform": "ios"}})
        assert ("earn_rules", 0, "where", "platform") in errors

    def test_errors_name_the_field_without_the_other_shapes_noise(self) -> None:
        errors = errors_of({**APP_INSTALL, "points": 0}, {**CASHBACK, "cashback": {"percent": "0"}})
        assert set(errors) == {("earn_rules", 0, "points"), ("earn_rules", 1, "cashback", "percent")}

    @pytest.mark.parametrize(
        ("limit", "field"),
        [
            ({"per_customer": 0, "per": "day"}, "per_customer"),
            ({"per_customer": 1, "per": "week"}, "per"),
            ({"per_customer": "1", "per": "day"}, "per_customer"),
        ],
    )
    def test_limits(self, limit: dict[str, Any], field: str) -> None:
        assert ("earn_rules", 0, "limit", field) in errors_of({**APP_INSTALL, "limit": limit})

    def test_an_event_rule_needs_its_event_and_points(self) -> None:
        errors = errors_of({"rule_id": "e", "name": "e", "on_event": "review"})
        assert ("earn_rules", 0, "points") in errors

    def test_cashback_instead_of_points_not_beside_them(self) -> None:
        errors = errors_of({**CASHBACK, "bonus_points": 10})
        assert "instead of points" in errors["earn_rules", 0]

    @pytest.mark.parametrize("percent", ["0", "100.01", "5.123", "abc", True])
    def test_cashback_percent_bounds(self, percent: Any) -> None:
        assert ("earn_rules", 0, "cashback", "percent") in errors_of(
            {**CASHBACK, "cashback": {"percent": percent}}
        )

    def test_not_an_object(self) -> None:
        assert ("earn_rules", 0) in errors_of("app_install")

    def test_rule_ids_stay_unique_across_both_kinds(self) -> None:
        errors = errors_of(APP_INSTALL, {**CASHBACK, "rule_id": "app"})
        assert "unique" in errors["earn_rules",]


class TestEventMatching:
    AT = datetime(2026, 12, 1, tzinfo=UTC)

    def rule(self, **changes: Any) -> EventEarnRule:
        return EventEarnRule.model_validate({**APP_INSTALL, **changes})

    def test_type_and_every_property_must_match(self) -> None:
        rule = self.rule(where={"platform": "ios", "build": 3})
        assert rule.matches("app_install", {"platform": "ios", "build": 3, "other": "x"}, self.AT)
        assert rule.matches("app_install", {"platform": "ios", "build": Decimal(3)}, self.AT)  # as stored
        assert not rule.matches("app_install", {"platform": "android", "build": 3}, self.AT)
        assert not rule.matches("app_install", {"platform": "ios"}, self.AT)
        assert not rule.matches("review", {"platform": "ios", "build": 3}, self.AT)

    def test_a_boolean_is_not_a_number(self) -> None:
        rule = self.rule(where={"verified": True})
        assert rule.matches("app_install", {"verified": True}, self.AT)
        assert not rule.matches("app_install", {"verified": 1}, self.AT)

    def test_validity_window_by_when_the_event_occurred(self) -> None:
        rule = self.rule(valid_from="2026-12-01T00:00:00Z", valid_until="2027-01-01T00:00:00Z")
        assert rule.matches("app_install", {"platform": "ios"}, self.AT)
        assert not rule.matches("app_install", {"platform": "ios"}, datetime(2027, 1, 1, tzinfo=UTC))
        assert not rule.matches("app_install", {"platform": "ios"}, datetime(2026, 11, 30, tzinfo=UTC))
