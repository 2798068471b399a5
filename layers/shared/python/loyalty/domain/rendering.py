"""Rendering message templates with Jinja2's sandbox: pure, no I/O.

Templates are written by marketers in the console, so they are untrusted input that the platform
evaluates. Jinja2's SandboxedEnvironment refuses attribute access to anything private (`__class__`,
`__globals__` ...) and to unsafe callables; on top of that this module:

- gives templates no loader (nothing to import, include or extend) and refuses those statements,
  macros, loops and variables when a template is saved (nothing in the context is a list yet; a
  loop is the one way to spend unbounded time, a variable doubled again and again the way to
  build an unbounded value);
- offers no globals (no `range`, `lipsum`, `namespace` ...), calls no methods, and offers only
  the filters in FILTERS (replace bounded, date added);
- refuses `**` and `%` on strings, and bounds `*` on strings and lists: with the above, nothing
  a template can write builds a huge value;
- renders with StrictUndefined: a name or attribute the context does not have is an error, and
  every template is rendered against a full sample context when it is saved, so a template that
  cannot render is refused then, never found out when a message is due;
- escapes HTML in `html` (autoescape) and nowhere else (subjects, text and SMS are plain text).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import do_replace
from jinja2.sandbox import SandboxedEnvironment

from loyalty.domain.customers import Customer
from loyalty.domain.errors import FieldError, ValidationFailed
from loyalty.domain.stores import Store
from loyalty.domain.templates import OFFERED, Cause, Channel, Purpose, Template, names_for

SMS_MAX_CHARS = 1600  # ten concatenated GSM-7 segments: what carriers deliver as one message
SUBJECT_MAX_CHARS = 200
MAX_VALUE_CHARS = 20_000  # the longest string or list `*` may build

FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "date",
        "default",
        "d",
        "e",
        "escape",
        "first",
        "int",
        "last",
        "length",
        "lower",
        "replace",
        "round",
        "string",
        "title",
        "trim",
        "truncate",
        "upper",
    }
)
_REFUSED_STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Include: "include",
    nodes.Extends: "extends",
    nodes.Block: "block",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.For: "for",
    nodes.Assign: "set",  # a variable doubled with ~ at each {% set %} grows without bound
    nodes.AssignBlock: "set",
    nodes.With: "with",
    nodes.ScopedEvalContextModifier: "autoescape",  # would print a customer's own text unescaped
}


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            raise SecurityError("the ** operator is not allowed in templates")
        if op == "%":
            if isinstance(left, str):  # '%0999999999d' % 1 is a gigabyte
                raise SecurityError("% formatting is not allowed in templates; use filters")
            return operator.mod(left, right)
        for value, times in ((left, right), (right, left)):
            sized = isinstance(value, str | list | tuple) and isinstance(times, int)
            if sized and len(value) * times > MAX_VALUE_CHARS:
                raise SecurityError(f"a value built with * may have at most {MAX_VALUE_CHARS} items")
        return operator.mul(left, right)

    def call(__self, __context: Any, __obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # Methods are how a short template builds a huge value (first_name.center(10**9),
        # '{:>999999999}'.format(x)); filters do everything a message needs, within bounds.
        raise SecurityError("templates call no functions or methods; use a filter such as | upper")


@pass_eval_context
def _replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
    """Jinja2's replace, refused when the result would outgrow MAX_VALUE_CHARS (checked before it
    is built: replace('', ...) inserts between every character)."""
    text, old_text, new_text = str(value), str(old), str(new)
    times = text.count(old_text) if old_text else len(text) + 1
    if count is not None:
        times = min(times, int(count))
    if len(text) + times * max(len(new_text) - len(old_text), 0) > MAX_VALUE_CHARS:
        raise SecurityError(f"replace would build more than {MAX_VALUE_CHARS} characters")
    return do_replace(eval_ctx, value, old, new, count)


def _date(value: Any, format: str = "%Y-%m-%d") -> str:
    """{{ coupon.valid_until | date('%d-%m-%Y') }}: strftime, as a filter (templates call no methods)."""
    if value is None:
        return ""
    if not isinstance(value, date):
        raise SecurityError("date formats dates only")
    if len(format) > 100:
        raise SecurityError("a date format has at most 100 characters")
    return value.strftime(format)


def _blank_none(value: Any) -> Any:
    # A field the customer never gave (line2, a birthday) prints as nothing, not as "None".
    return "" if value is None else value


@cache
def _environment(html: bool) -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=html,
        finalize=_blank_none,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.globals.clear()
    env.filters = {name: f for name, f in env.filters.items() if name in FILTERS}
    env.filters.update(replace=_replace, date=_date)
    return env


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str
    html: str | None


def _ns(kind: str, /, **values: Any) -> SimpleNamespace:
    """A namespace rather than a dict: its only attributes are the values (a dict would also offer
    .items, .keys ... to a template). Its class is named after it, so that Jinja2's errors read
    "'points object' has no attribute 'nope'"."""
    return _kind(kind)(**values)


@cache
def _kind(name: str) -> type[SimpleNamespace]:
    return type(name, (SimpleNamespace,), {"__module__": "builtins", "__slots__": ()})


def sample_context(purpose: Purpose) -> dict[str, Any]:
    """Everything a template of this purpose can be offered, with plausible values: what a template
    is rendered against when it is saved."""
    context: dict[str, Any] = {
        "customer_id": "01JSAMPLECUSTOMER0000000000",
        "first_name": "Jane",
        "last_name": "Doe",
        "birthday": date(1990, 5, 17),
        "country": "NL",
        "timezone": "Europe/Amsterdam",
        "favourite_store_id": "ams-01",
        "address": _ns(
            "address", line1="Damrak 1", line2=None, postal_code="1012 LG", city="Amsterdam", country="NL"
        ),
        "card": "2000000000008",
        "points": _ns("points", available=1250, pending=40, lifetime=5400),
        "tier": "silver",
        "store": _ns("store", store_id="ams-01", name="Amsterdam Damrak"),
        "coupon": _ns("coupon", code="WELCOME-7K2Q", valid_until=date(2026, 12, 31)),
        "campaign": _ns("campaign", id="spring-2026", points=500, promo_cash=Decimal("5.00")),
        "unsubscribe_url": "https://loyalty.example/v1/unsubscribe?token=sample",
        "confirm_url": "https://loyalty.example/v1/confirm?token=sample",
    }
    allowed = names_for(purpose)
    return {name: value for name, value in context.items() if name in allowed}


@dataclass(frozen=True)
class CouponFacts:
    code: str
    valid_until: date | datetime | None


@dataclass(frozen=True)
class CampaignFacts:
    """What a campaign gave with its message: `{{ campaign.points }}`, `{{ campaign.promo_cash }}`."""

    id: str
    points: int = 0
    promo_cash: Decimal = Decimal("0.00")


def message_context(
    customer: Customer,
    cause: Cause,
    *,
    tier: str | None,
    store: Store | None,
    unsubscribe_url: str,
    confirm_url: str | None = None,
    coupon: CouponFacts | None = None,
    campaign: CampaignFacts | None = None,
) -> dict[str, Any]:
    """What a message of this cause about this customer is rendered with: the names the cause
    offers (domain/templates.OFFERED), shaped as the sample a template was checked against. What the
    customer never gave is there, empty (an address of blanks), so `{{ address.city }}` prints
    nothing rather than failing when the message is due."""
    profile = customer.profile
    address = profile.address
    context: dict[str, Any] = {
        "customer_id": customer.customer_id,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "birthday": profile.birthday,
        "country": profile.country,
        "timezone": profile.timezone,
        "favourite_store_id": profile.favourite_store_id,
        "address": _ns(
            "address",
            line1=address.line1 if address else None,
            line2=address.line2 if address else None,
            postal_code=address.postal_code if address else None,
            city=address.city if address else None,
            country=address.country if address else None,
        ),
        "card": customer.card.value if customer.card else None,
        "points": _ns(
            "points",
            available=customer.points.available,
            pending=customer.points.pending,
            lifetime=customer.points.lifetime,
        ),
        "tier": tier,
        "store": _ns("store", store_id=store.store_id if store else None, name=store.name if store else None),
        "unsubscribe_url": unsubscribe_url,
        "confirm_url": confirm_url,
        "coupon": _ns("coupon", code=coupon.code, valid_until=coupon.valid_until) if coupon else None,
        "campaign": _ns("campaign", id=campaign.id, points=campaign.points, promo_cash=campaign.promo_cash)
        if campaign
        else None,
    }
    offered = OFFERED[cause]
    # A campaign's coupon is there when the campaign gave one (a template naming it is checked
    # against the campaign's actions when the campaign is saved; one that is not fails to render
    # and is suppressed, never sent half-filled).
    missing = [name for name in ("confirm_url",) if name in offered and context[name] is None]
    if missing:
        raise ValueError(f"a {cause.value} message needs {', '.join(missing)}")
    return {name: value for name, value in context.items() if name in offered}


def render(template: Template, context: Mapping[str, Any]) -> Rendered:
    """The message a template makes of a context (raises jinja2's errors when it cannot)."""
    subject = None
    if template.subject is not None:
        subject = _environment(False).from_string(template.subject).render(context)
    html = None
    if template.html is not None:
        html = _environment(True).from_string(template.html).render(context)
    return Rendered(subject, _environment(False).from_string(template.body).render(context), html)


def check(template: Template) -> frozenset[str]:
    """The names the template uses, or ValidationFailed naming every field that cannot render."""
    errors: list[FieldError] = []
    used: set[str] = set()
    context = sample_context(template.purpose)
    fields = {"subject": template.subject, "body": template.body, "html": template.html}
    for field, source in fields.items():
        if source is None:
            continue
        problem, names = _check_field(source, html=field == "html", context=context)
        if problem is None:
            problem = _channel_rule(template, field, source, names, context)
        if problem is not None:
            errors.append(FieldError(("body", field), problem))
        used |= names
    errors += _required(template, fields, used)
    if errors:
        raise ValidationFailed("the template cannot be used as it is", errors=errors)
    return frozenset(used)


def _check_field(source: str, *, html: bool, context: Mapping[str, Any]) -> tuple[str | None, frozenset[str]]:
    env = _environment(html)
    try:
        parsed = env.parse(source)
        names = frozenset(meta.find_undeclared_variables(parsed))  # compiles: unknown filters fail here
    except TemplateSyntaxError as bad:  # TemplateAssertionError (an unknown filter) included
        return f"line {bad.lineno}: {bad.message}", frozenset()
    for node_type, word in _REFUSED_STATEMENTS.items():
        if any(True for _ in parsed.find_all(node_type)):
            return f"{{% {word} %}} is not allowed in message templates", names
    try:
        env.from_string(parsed).render(context)
    except SecurityError as refused:
        return f"not allowed: {refused}", names
    except Exception as failed:  # any failure to render is the template's fault: a 422
        return f"does not render: {failed}", names
    return None, names


def _channel_rule(
    template: Template, field: str, source: str, names: frozenset[str], context: Mapping[str, Any]
) -> str | None:
    if template.channel is not Channel.EMAIL and field == "html":
        return f"only email templates have html; {template.channel.value} messages are plain text"
    if field == "subject":
        if template.channel in (Channel.SMS,):
            return "SMS messages have no subject"
        rendered = _environment(False).from_string(source).render(context)
        if "\n" in rendered or len(rendered) > SUBJECT_MAX_CHARS:
            return f"a subject is one line of at most {SUBJECT_MAX_CHARS} characters"
    if template.channel is Channel.EMAIL and field in ("body", "html") and "unsubscribe_url" not in names:
        return "an email template must contain {{ unsubscribe_url }}"
    if template.channel is Channel.SMS and field == "body":
        rendered = _environment(False).from_string(source).render(context)
        if len(rendered) > SMS_MAX_CHARS:
            return f"an SMS is at most {SMS_MAX_CHARS} characters; this one renders {len(rendered)}"
    return None


def _required(template: Template, fields: Mapping[str, str | None], used: set[str]) -> list[FieldError]:
    errors = []
    if template.channel is Channel.EMAIL and not fields["subject"]:
        errors.append(FieldError(("body", "subject"), "an email needs a subject"))
    if template.purpose is Purpose.CONFIRMATION:
        if template.channel is not Channel.EMAIL:
            errors.append(FieldError(("body", "channel"), "confirmations are emails"))
        if "confirm_url" not in used:
            errors.append(FieldError(("body", "body"), "a confirmation must contain {{ confirm_url }}"))
    return errors
