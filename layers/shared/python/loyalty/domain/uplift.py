"""Treatment against control: conversion, uplift and its 95% confidence intervals. No I/O.

A campaign's customers are split at random into a treatment group (actioned) and a control group
(held out, loyalty.domain.campaigns.in_control). Each group has `customers`, `converted` (bought
within the window after their receipt) and `revenue` (net of returns, summed over its customers,
with the sum of squares of each customer's revenue for the spread). From them:

- **absolute uplift**: the difference of the conversion rates, p_t - p_c, with Newcombe's hybrid
  score interval (Newcombe 1998, "Interval estimation for the difference between independent
  proportions", method 10): each rate's Wilson score interval, combined. Chosen over Wald's
  `d ± z·se` because it stays inside [-1, 1], has close to nominal coverage with small groups and
  rates near 0 or 1, and is defined when a group converted nobody (or everybody), where Wald's
  interval collapses to a point.
- **relative uplift**: p_t / p_c - 1, with the interval of the log risk ratio (Katz et al. 1978):
  ln(RR) ± z·sqrt(1/x_t - 1/n_t + 1/x_c - 1/n_c), back-transformed, minus one. When the treatment
  converted nobody (and the control someone), 0.5 is added to each of the four cells for the
  interval only (Haldane-Anscombe); when the control converted nobody the ratio is unbounded and
  the answer is null, with that reason.
- **revenue per customer**: the difference of the means, with a normal (Welch) interval
  d ± z·sqrt(s_t²/n_t + s_c²/n_c); it needs two customers in each group for a variance.

No minimum audience: any group sizes give an answer, and small groups give wide intervals, which
is the honest answer. Where a figure is undefined (an empty group, a zero denominator) it is null
with a `reason`, never an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal, TypeAlias

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal
RATIO = Decimal("0.0001")
CENT = Decimal("0.01")

Reason: TypeAlias = Literal[
    "no_treatment",  # nobody was actioned
    "no_control",  # nobody was held out (no control group, or it is empty)
    "no_control_conversions",  # the control converted nobody: a ratio to zero is unbounded
    "too_few_customers",  # fewer than two customers in a group: no spread to estimate
]


@dataclass(frozen=True)
class Group:
    customers: int
    converted: int
    revenue: Decimal = Decimal("0.00")  # summed over the group's customers (net of returns)
    revenue_squares: Decimal = Decimal("0")  # the sum over customers of (their revenue)²

    def __post_init__(self) -> None:
        if self.customers < 0 or not 0 <= self.converted <= self.customers:
            raise ValueError(f"0 <= converted <= customers: {self.converted} of {self.customers}")

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.customers if self.customers else None

    @property
    def revenue_per_customer(self) -> float | None:
        return float(self.revenue) / self.customers if self.customers else None


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval; all None, with a reason, when it is undefined."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: Reason | None = None


@dataclass(frozen=True)
class Uplift:
    absolute: Estimate
    relative: Estimate
    revenue_per_customer: Estimate


def wilson(converted: int, customers: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (customers > 0)."""
    p = converted / customers
    z2 = z * z
    denominator = 1 + z2 / customers
    centre = (p + z2 / (2 * customers)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / customers + z2 / (4 * customers * customers))
    # At 0 and at every customer the bound is exactly 0 (or 1): said so, not left to rounding.
    low = 0.0 if converted == 0 else max(0.0, centre - half)
    high = 1.0 if converted == customers else min(1.0, centre + half)
    return low, high


def _missing(treatment: Group, control: Group) -> Reason | None:
    if treatment.customers == 0:
        return "no_treatment"
    if control.customers == 0:
        return "no_control"
    return None


def absolute_uplift(treatment: Group, control: Group, z: float = Z_95) -> Estimate:
    """p_t - p_c with Newcombe's hybrid score interval."""
    reason = _missing(treatment, control)
    if reason is not None:
        return Estimate(None, reason=reason)
    p1, p2 = treatment.converted / treatment.customers, control.converted / control.customers
    l1, u1 = wilson(treatment.converted, treatment.customers, z)
    l2, u2 = wilson(control.converted, control.customers, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Estimate(d, max(-1.0, low), min(1.0, high))


def relative_uplift(treatment: Group, control: Group, z: float = Z_95) -> Estimate:
    """p_t / p_c - 1 with the log risk ratio's interval."""
    reason = _missing(treatment, control)
    if reason is not None:
        return Estimate(None, reason=reason)
    if control.converted == 0:
        return Estimate(None, reason="no_control_conversions")
    x1, n1 = float(treatment.converted), float(treatment.customers)
    x2, n2 = float(control.converted), float(control.customers)
    ratio = (x1 / n1) / (x2 / n2)
    if x1 == 0:  # RR = 0: ln(0) has no interval; Haldane-Anscombe's half added to each cell for it
        x1, n1, x2, n2 = x1 + 0.5, n1 + 1, x2 + 0.5, n2 + 1
    log_ratio = math.log((x1 / n1) / (x2 / n2))
    se = math.sqrt(max(0.0, 1 / x1 - 1 / n1 + 1 / x2 - 1 / n2))
    return Estimate(ratio - 1, math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)


def _variance(group: Group) -> float:
    """The sample variance of one customer's revenue in the group (customers >= 2)."""
    n = group.customers
    mean = float(group.revenue) / n
    return max(0.0, (float(group.revenue_squares) - n * mean * mean) / (n - 1))


def revenue_difference(treatment: Group, control: Group, z: float = Z_95) -> Estimate:
    """Revenue per customer, treatment minus control, with a normal (Welch) interval."""
    reason = _missing(treatment, control)
    if reason is not None:
        return Estimate(None, reason=reason)
    d = float(treatment.revenue) / treatment.customers - float(control.revenue) / control.customers
    if treatment.customers < 2 or control.customers < 2:
        return Estimate(d, reason="too_few_customers")
    se = math.sqrt(_variance(treatment) / treatment.customers + _variance(control) / control.customers)
    return Estimate(d, d - z * se, d + z * se)


def uplift(treatment: Group, control: Group) -> Uplift:
    return Uplift(
        absolute=absolute_uplift(treatment, control),
        relative=relative_uplift(treatment, control),
        revenue_per_customer=revenue_difference(treatment, control),
    )


def ratio(value: float | None) -> Decimal | None:
    """A rate or uplift as the report shows it: four decimals, rounded half to even."""
    return None if value is None else Decimal(repr(value)).quantize(RATIO, rounding=ROUND_HALF_EVEN)


def money(value: float | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)
