"""The pure template rules: the sandbox, the sample context, and which template serves which trigger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from jinja2.exceptions import UndefinedError

from loyalty.domain import rendering
from loyalty.domain.customers import Address, Consents, Customer, CustomerStatus, PointsSummary, Profile
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.links import Link
from loyalty.domain.stores import Channel as StoreChannel
from loyalty.domain.stores import Store
from loyalty.domain.templates import OFFERED, Cause, Channel, Purpose, Template, misfit, names_for

UNSUBSCRIBE = "{{ unsubscribe_url }}"


def email(
    body: str,
    html: str | None = None,
    purpose: Purpose = Purpose.MESSAGE,
    placeholders: frozenset[str] = frozenset(),
) -> Template:
    return Template(
        "t", Channel.EMAIL, body, purpose, subject="Hi {{ first_name }}", html=html, placeholders=placeholders
    )


def refusal(template: Template) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        rendering.check(template)
    return {str(e.loc[-1]): e.msg for e in refused.value.errors}


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ points.__init__.__globals__ }}",
        "{{ points.__dict__ }}",
        "{{ first_name.__class__.__base__ }}",
        "{{ self.__init__.__globals__ }}",
        "{% import 'os' as os %}",
        "{% from 'os' import system %}",
        "{% extends 'base' %}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{{ range(10) }}",
        "{{ first_name|attr('__class__') }}",
        "{{ 'a' * 100000 }}",
        "{{ 2 ** 64 }}",
        "{{ first_name.center(1000000000) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ first_name|replace('', 'x' * 20000)|replace('x', 'x' * 20000) }}",
        "{% set a = first_name %}{{ a ~ a }}",
        "{% with a = first_name %}{{ a }}{% endwith %}",
        "{{ first_name|date('%Y') }}",
    ],
)
def test_no_way_out_of_the_sandbox(escape: str) -> None:
    assert "body" in refusal(email(escape + UNSUBSCRIBE))


def test_html_is_escaped_and_text_is_not() -> None:
    template = email("Hi {{ first_name }} " + UNSUBSCRIBE, html="<p>{{ first_name }}</p>" + UNSUBSCRIBE)
    context = {**rendering.sample_context(Purpose.MESSAGE), "first_name": "<script>x</script>"}
    out = rendering.render(template, context)
    assert out.subject == "Hi <script>x</script>"
    assert out.body.startswith("Hi <script>x</script>")
    assert out.html is not None and out.html.startswith("<p>&lt;script&gt;x&lt;/script&gt;</p>")


def test_absent_values_print_as_nothing() -> None:
    template = email("[{{ address.line2 }}] " + UNSUBSCRIBE)
    context = rendering.sample_context(Purpose.MESSAGE)
    assert rendering.render(template, context).body.startswith("[] ")


def test_the_names_a_template_uses_are_kept() -> None:
    names = rendering.check(
        email("{{ points.available }} {% if tier %}{{ tier|upper }}{% endif %}" + UNSUBSCRIBE)
    )
    assert names == {"first_name", "points", "tier", "unsubscribe_url"}


def test_confirm_url_belongs_to_confirmation_templates_only() -> None:
    assert "confirm_url" not in names_for(Purpose.MESSAGE)
    assert "confirm_url" in names_for(Purpose.CONFIRMATION)
    assert "undefined" in refusal(email("{{ confirm_url }}" + UNSUBSCRIBE))["body"]
    assert rendering.check(email("{{ confirm_url }}" + UNSUBSCRIBE, purpose=Purpose.CONFIRMATION))


def test_a_trigger_takes_only_templates_that_render_with_what_it_offers() -> None:
    plain = email(UNSUBSCRIBE, placeholders=frozenset({"first_name", "unsubscribe_url"}))
    with_coupon = email(UNSUBSCRIBE, placeholders=frozenset({"coupon", "unsubscribe_url"}))
    confirmation = email(UNSUBSCRIBE, purpose=Purpose.CONFIRMATION, placeholders=frozenset({"confirm_url"}))
    assert misfit(plain, Cause.WELCOME) is None
    assert misfit(plain, Cause.EARN_CONFIRMATION) is None
    assert "coupon" in str(misfit(with_coupon, Cause.WELCOME))
    assert misfit(with_coupon, Cause.CAMPAIGN) is None
    assert misfit(confirmation, Cause.CONFIRMATION) is None
    assert misfit(confirmation, Cause.WELCOME) is not None
    assert misfit(plain, Cause.CONFIRMATION) is not None


def _customer(**profile: object) -> Customer:
    return Customer(
        customer_id="01CUSTOMER",
        member=True,
        status=CustomerStatus.ACTIVE,
        profile=Profile(**profile),  # type: ignore[arg-type]  # the test passes Profile's own fields
        consents=Consents(email=True),
        links=(Link("card", "2000000000008"),),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        points=PointsSummary(available=10, pending=2, lifetime=30),
    )


@pytest.mark.parametrize("cause", list(Cause))
def test_a_real_context_offers_exactly_what_its_cause_promises(cause: Cause) -> None:
    context = rendering.message_context(
        _customer(),
        cause,
        tier="bronze",
        store=None,
        unsubscribe_url="https://x/u",
        confirm_url="https://x/c",
        coupon=rendering.CouponFacts("C-1", date(2027, 1, 1)),
    )
    assert set(context) == OFFERED[cause]
    # ... and the sample a template is checked against has every one of those names.
    purpose = Purpose.CONFIRMATION if cause is Cause.CONFIRMATION else Purpose.MESSAGE
    assert set(context) <= set(rendering.sample_context(purpose))


def test_a_template_that_passed_its_checks_renders_for_a_customer_who_gave_nothing() -> None:
    body = (
        "{{ first_name }} {{ last_name }} {{ birthday }} {{ country }} {{ timezone }}"
        " {{ favourite_store_id }} {{ address.line1 }} {{ address.line2 }}"
        " {{ address.postal_code }} {{ address.city }}"
        " {{ address.country }} {{ card }} {{ points.available }} {{ points.pending }} {{ points.lifetime }}"
        " {{ tier }} {{ store.name }} {{ store.store_id }} " + UNSUBSCRIBE
    )
    template = email(body)
    template = Template(
        template.template_id,
        template.channel,
        template.body,
        subject=template.subject,
        placeholders=rendering.check(template),
    )
    assert misfit(template, Cause.WELCOME) is None
    context = rendering.message_context(
        _customer(), Cause.WELCOME, tier=None, store=None, unsubscribe_url="https://x/u"
    )
    out = rendering.render(template, context)
    assert "None" not in out.body and "10 2 30" in out.body and out.subject == "Hi "
    home = Address(line1="Damrak 1", city="Amsterdam", country="NL")
    rich = rendering.message_context(
        _customer(first_name="Jane", address=home),
        Cause.WELCOME,
        tier="gold",
        store=Store("ams-01", StoreChannel.POS, name="Damrak"),
        unsubscribe_url="https://x/u",
    )
    assert (
        "Jane" in rendering.render(template, rich).body
        and "Damrak 1" in rendering.render(template, rich).body
    )


def test_a_cause_that_offers_a_link_must_be_given_it() -> None:
    with pytest.raises(ValueError, match="confirm_url"):
        rendering.message_context(
            _customer(), Cause.CONFIRMATION, tier=None, store=None, unsubscribe_url="https://x/u"
        )


def test_a_campaign_message_renders_what_the_campaign_gave_and_fails_on_what_it_did_not() -> None:
    template = Template(
        "t",
        Channel.SMS,
        "{{ coupon.code }} until {{ coupon.valid_until|date('%d-%m') }}, {{ campaign.points }} points, "
        "{{ campaign.promo_cash }} to spend ({{ campaign.id }})",
    )
    assert rendering.check(template) == {"coupon", "campaign"}
    gave = rendering.message_context(
        _customer(),
        Cause.CAMPAIGN,
        tier=None,
        store=None,
        unsubscribe_url="https://x/u",
        coupon=rendering.CouponFacts("SPRING-7K2Q", date(2026, 12, 31)),
        campaign=rendering.CampaignFacts("spring", 500, Decimal("5.00")),
    )
    assert (
        rendering.render(template, gave).body == "SPRING-7K2Q until 31-12, 500 points, 5.00 to spend (spring)"
    )
    # No coupon given (a campaign with only a message): a template naming one cannot render.
    bare = rendering.message_context(
        _customer(), Cause.CAMPAIGN, tier=None, store=None, unsubscribe_url="https://x/u"
    )
    assert bare["coupon"] is None
    with pytest.raises(UndefinedError):
        rendering.render(template, bare)


def test_filters_do_what_methods_would() -> None:
    body = "{{ coupon.valid_until|date('%d-%m-%Y') }} {{ tier|upper }} {{ first_name|replace('a', 'e') }} "
    template = Template("t", Channel.MAIL, body, subject=None)
    assert rendering.check(template) == {"coupon", "tier", "first_name"}
    out = rendering.render(template, rendering.sample_context(Purpose.MESSAGE))
    assert out.body == "31-12-2026 SILVER Jene "
