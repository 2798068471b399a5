"""Uplift statistics against published and hand-computed answers."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from loyalty.domain.uplift import (
    Group,
    absolute_uplift,
    ratio,
    relative_uplift,
    revenue_difference,
    uplift,
    wilson,
)


def r4(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def test_wilson_interval_matches_newcombes_single_proportion_example() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263.
    assert tuple(round(b, 4) for b in wilson(81, 263)) == (0.2553, 0.3662)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0


# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# Statistics in Medicine 17, Table II, method 10 (the hybrid score interval): x1/n1 - x2/n2.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
]


@pytest.mark.parametrize(("cells", "interval"), NEWCOMBE_TABLE_II)
def test_absolute_uplift_is_newcombes_hybrid_score_interval(
    cells: tuple[int, int, int, int], interval: tuple[float, float]
) -> None:
    x1, n1, x2, n2 = cells
    got = absolute_uplift(Group(n1, x1), Group(n2, x2))
    assert r4(got.value) == round(x1 / n1 - x2 / n2, 4)
    assert (r4(got.ci_low), r4(got.ci_high)) == interval
    assert got.reason is None


def test_relative_uplift_is_the_log_risk_ratio_interval() -> None:
    # By hand: RR = 0.20 / 0.10 = 2; se(ln RR) = sqrt(1/20 - 1/100 + 1/10 - 1/100) = sqrt(0.13)
    # = 0.360555; 2·exp(±1.959964·0.360555) = 2·exp(±0.706675) = 0.98656 .. 4.05448; minus one.
    got = relative_uplift(Group(100, 20), Group(100, 10))
    assert (r4(got.value), r4(got.ci_low), r4(got.ci_high)) == (1.0, -0.0134, 3.0545)


def test_relative_uplift_when_the_treatment_converted_nobody_uses_haldanes_half() -> None:
    # RR = 0 (-100%); interval from 0.5/11 over 5.5/101: ln(0.834711) = -0.180670,
    # se = sqrt(1/0.5 - 1/11 + 1/5.5 - 1/101) = sqrt(2.081008) = 1.442570 -> exp(-0.18067 ± 2.827385)
    got = relative_uplift(Group(10, 0), Group(100, 5))
    assert r4(got.value) == -1.0
    assert r4(got.ci_low) == round(math.exp(-0.180670 - 2.827385) - 1, 4) == -0.9506
    assert r4(got.ci_high) == round(math.exp(-0.180670 + 2.827385) - 1, 4) == 13.1076


def test_a_control_that_converted_nobody_has_no_relative_uplift_but_an_absolute_one() -> None:
    result = uplift(Group(5, 2), Group(1, 0))
    assert result.relative.value is None and result.relative.reason == "no_control_conversions"
    assert r4(result.absolute.value) == 0.4 and result.absolute.reason is None
    low, high = result.absolute.ci_low, result.absolute.ci_high
    assert low is not None and high is not None and -1 <= low < 0.4 < high <= 1


def test_tiny_and_empty_groups_are_well_defined() -> None:
    one_each = uplift(Group(1, 1), Group(1, 0))
    assert r4(one_each.absolute.value) == 1.0
    assert one_each.absolute.ci_low is not None and one_each.absolute.ci_low > -1  # wide, but an answer
    assert one_each.revenue_per_customer.reason == "too_few_customers"
    no_control = uplift(Group(3, 1), Group(0, 0))
    for estimate in (no_control.absolute, no_control.relative, no_control.revenue_per_customer):
        assert (estimate.value, estimate.ci_low, estimate.ci_high, estimate.reason) == (
            None, None, None, "no_control",
        )  # fmt: skip
    assert uplift(Group(0, 0), Group(3, 1)).absolute.reason == "no_treatment"
    everyone = relative_uplift(Group(4, 4), Group(4, 4))  # no spread: a zero-width interval
    assert (everyone.value, everyone.ci_low, everyone.ci_high) == (0.0, 0.0, 0.0)


def test_revenue_per_customer_difference_with_a_welch_interval() -> None:
    # Treatment revenues 10, 20, 30 (mean 20, s² = 100); control 0, 10 (mean 5, s² = 50).
    # d = 15; se = sqrt(100/3 + 50/2) = sqrt(58.3333) = 7.637626; ±1.959964·se = ±14.969472
    treatment = Group(3, 3, Decimal("60.00"), Decimal("1400"))
    control = Group(2, 1, Decimal("10.00"), Decimal("100"))
    got = revenue_difference(treatment, control)
    assert (r4(got.value), r4(got.ci_low), r4(got.ci_high)) == (15.0, 0.0305, 29.9695)


def test_bad_counts_are_refused_and_rates_round_half_to_even() -> None:
    with pytest.raises(ValueError, match="converted"):
        Group(2, 3)
    assert Group(3, 1).conversion_rate == pytest.approx(1 / 3)
    assert Group(0, 0).conversion_rate is None
    assert ratio(1 / 3) == Decimal("0.3333")
    assert ratio(0.00005) == Decimal("0.0000")
    assert ratio(None) is None
