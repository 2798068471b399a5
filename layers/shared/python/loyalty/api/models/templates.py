"""API models: message templates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from loyalty.api.models.common import Strict
from loyalty.domain.models import Model
from loyalty.domain.templates import Channel, Purpose, Template

TemplateText = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]

PLACEHOLDERS = (
    "Jinja2 syntax in a sandbox: {{ first_name }}, {{ last_name }}, {{ birthday }}, {{ country }}, "
    "{{ timezone }}, {{ favourite_store_id }}, {{ address.line1 }} (line2, postal_code, city, country), "
    "{{ card }}, {{ points.available }} (pending, lifetime), {{ tier }}, {{ store.name }} (store_id), "
    "{{ coupon.code }}, {{ coupon.valid_until }} (campaigns), {{ unsubscribe_url }}, and {{ confirm_url }} "
    "in confirmation templates; {% if %} and the filters upper, lower, title, capitalize, trim, "
    "truncate, replace, default, round, int, abs, first, last, length, string, escape, "
    "date('%d-%m-%Y'); no methods, loops, variables, imports or macros"
)


class TemplatePut(Strict):
    channel: Channel
    purpose: Purpose = Field(
        default=Purpose.MESSAGE,
        description="confirmation: the double opt-in email, the only kind offered {{ confirm_url }}",
    )
    subject: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        default=None, description="email (required) and mail; rendered, one line of at most 200 characters"
    )
    body: TemplateText = Field(
        description=f"plain text (an SMS renders to at most 1,600 characters). {PLACEHOLDERS}"
    )
    html: Annotated[str, StringConstraints(min_length=1, max_length=60_000)] | None = Field(
        default=None, description="email only; values are HTML-escaped"
    )

    def to_domain(self, template_id: str) -> Template:
        return Template(
            template_id=template_id,
            channel=self.channel,
            purpose=self.purpose,
            subject=self.subject,
            body=self.body,
            html=self.html,
        )


class TemplateOut(Model):
    template_id: str
    channel: Channel
    purpose: Purpose
    subject: str | None
    body: str
    html: str | None
    placeholders: list[str] = Field(description="the names the template uses")
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, t: Template) -> TemplateOut:
        return cls(
            template_id=t.template_id,
            channel=t.channel,
            purpose=t.purpose,
            subject=t.subject,
            body=t.body,
            html=t.html,
            placeholders=sorted(t.placeholders),
            created_at=t.created_at,
            updated_at=t.updated_at,
        )


class TemplateList(Model):
    items: list[TemplateOut]
    next_cursor: str | None
