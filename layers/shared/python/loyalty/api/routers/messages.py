"""Public unsubscribe links and the direct-mail print files (served by the messaging function)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router
from pydantic import BaseModel

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, page
from loyalty.bootstrap import container
from loyalty.services.confirmation import Confirmation
from loyalty.services.unsubscribe import Subscription

TAGS = ["messaging"]
HTML = "text/html; charset=utf-8"
_CHANNEL_NAMES = {"email": "emails", "sms": "text messages", "mail": "letters"}
_HTML_PAGE: dict[int, Any] = {
    200: {"description": "the page", "content": {"text/html": {}}},
    400: docs.PROBLEM,
    404: docs.PROBLEM,
}
Token = Annotated[str, Query(min_length=1, max_length=300, description="the signed token from the message")]


class PrintFileOut(BaseModel):
    key: str
    size: int
    last_modified: datetime


class PrintFileList(BaseModel):
    items: list[PrintFileOut]
    next_cursor: str | None


def _page(
    title: str,
    text: str,
    form_token: str | None = None,
    path: str = "/v1/unsubscribe",
    button: str = "Unsubscribe",
) -> Response:
    form = ""
    if form_token is not None:
        action = path + "?token=" + quote(form_token, safe="")
        form = (
            f'<form method="post" action="{escape(action)}">'
            f'<button type="submit">{escape(button)}</button></form>'
        )
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1><p>{escape(text)}</p>{form}</body></html>"
    )
    # No caching, no referrer: the token in the address is the customer's.
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
    return Response(200, HTML, body, headers=headers)


def _confirmed(found: Confirmation) -> Response:
    card = f" Your card number is {found.card}." if found.card else ""
    return _page("You are a member", "Your membership is confirmed." + card)


def _what(found: Subscription) -> str:
    return _CHANNEL_NAMES.get(found.channel.value, found.channel.value)


def add_routes(router: Router) -> None:
    """On the messaging function's one router (the route table gives each function one)."""

    @router.get(
        "/v1/unsubscribe",
        summary="The page an unsubscribe link opens: asks to confirm (no key; the token is signed)",
        tags=TAGS,
        responses=_HTML_PAGE,
    )
    def unsubscribe_page(token: Token):
        found = container().unsubscribe.look(token)
        if not found.subscribed:
            return _page("You are unsubscribed", f"You no longer receive our {_what(found)}.")
        return _page("Unsubscribe", f"Stop receiving our {_what(found)}?", form_token=token)

    @router.post(
        "/v1/unsubscribe",
        summary="Turn the link's channel off at once (also RFC 8058 one-click: List-Unsubscribe=One-Click)",
        tags=TAGS,
        responses=_HTML_PAGE,
    )
    def unsubscribe(token: Token):
        found = container().unsubscribe.unsubscribe(token)
        return _page("You are unsubscribed", f"You no longer receive our {_what(found)}.")

    @router.get(
        "/v1/confirm",
        summary="The page a confirmation link opens: asks to confirm the enrolment (no key; the token is "
        "signed and expires)",
        tags=TAGS,
        responses=_HTML_PAGE,
    )
    def confirm_page(token: Token):
        found = container().confirmation.look(token)
        if found.confirmed:
            return _confirmed(found)
        return _page(
            "Confirm your membership",
            "Confirm your email address to become a member and get your card.",
            form_token=token,
            path="/v1/confirm",
            button="Confirm",
        )

    @router.post(
        "/v1/confirm",
        summary="Confirm a web enrolment: the customer becomes a member with a card (twice is the same)",
        tags=TAGS,
        responses=_HTML_PAGE,
    )
    def confirm(token: Token):
        return _confirmed(container().confirmation.confirm(token))

    @router.get(
        "/v1/admin/print-files", summary="Direct-mail print files (CSV) for the mail house", tags=TAGS
    )
    def print_files(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> PrintFileList:
        files, next_cursor = container().print_files.list(page(limit), cursor_in(router, cursor))
        return PrintFileList(
            items=[PrintFileOut(**f) for f in files], next_cursor=cursor_out(router, next_cursor)
        )
