"""The pure template rules: the sandbox, the sample context, and which template serves which trigger."""

from __future__ import annotations

import pytest

from loyalty.domain import rendering
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.templates import Cause, Channel, Purpose, Template, misfit, names_for

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
