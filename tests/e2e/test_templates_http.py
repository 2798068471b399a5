"""Issue 18 item 1 and the programme's messaging block: templates are checked in the sandbox when
saved, and the programme only names templates that exist and can serve its triggers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api, assert_problem

EMAIL = {
    "channel": "email",
    "subject": "Welcome, {{ first_name }}",
    "body": "Hello {{ first_name }}, you have {{ points.available }} points ({{ tier }}).\n"
    "Unsubscribe: {{ unsubscribe_url }}",
    "html": '<p>Hello {{ first_name }}</p><a href="{{ unsubscribe_url }}">unsubscribe</a>',
}


def tid(prefix: str = "tpl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def put(api: Api, template_id: str, body: dict[str, Any]) -> Any:
    return api.call("PUT", f"/v1/admin/templates/{template_id}", ADMIN_KEY, json=body)


@pytest.fixture
def programme(api: Api) -> Iterator[dict[str, Any]]:
    """The programme as it was; put back after the test, so other tests on the worker see no change."""
    before = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    yield before
    restored = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=before)
    assert restored.status_code == 200, restored.text


def with_messaging(programme: dict[str, Any], **messaging: Any) -> dict[str, Any]:
    return {**programme, "messaging": {**programme["messaging"], **messaging}}


class TestTemplates:
    def test_put_get_list_replace_and_delete(self, api: Api) -> None:
        template_id = tid()
        created = put(api, template_id, EMAIL)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["template_id"] == template_id and body["channel"] == "email"
        assert body["purpose"] == "message"
        assert body["placeholders"] == ["first_name", "points", "tier", "unsubscribe_url"]
        assert api.call("GET", f"/v1/admin/templates/{template_id}", ADMIN_KEY).json() == body

        replaced = put(api, template_id, {**EMAIL, "subject": "Hi {{ last_name }}"})
        assert replaced.status_code == 200
        assert replaced.json()["created_at"] == body["created_at"]
        assert "last_name" in replaced.json()["placeholders"]

        sms_id = tid("sms")
        sms = put(api, sms_id, {"channel": "sms", "body": "{{ first_name }}: {{ points.available }} pts"})
        assert sms.status_code == 201, sms.text

        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
            page = api.call("GET", "/v1/admin/templates", ADMIN_KEY, params=params).json()
            assert len(page["items"]) <= 1
            seen += [t["template_id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert {template_id, sms_id} <= set(seen)
        forged = api.call("GET", "/v1/admin/templates", ADMIN_KEY, params={"cursor": "bogus"})
        assert_problem(forged, 400, "invalid-cursor")

        assert api.call("DELETE", f"/v1/admin/templates/{template_id}", ADMIN_KEY).status_code == 204
        assert_problem(
            api.call("GET", f"/v1/admin/templates/{template_id}", ADMIN_KEY), 404, "template-not-found"
        )
        assert_problem(
            api.call("DELETE", f"/v1/admin/templates/{template_id}", ADMIN_KEY), 404, "template-not-found"
        )

    def test_only_admin_keys_reach_templates(self, api: Api) -> None:
        template_id = tid()
        assert_problem(
            api.call("PUT", f"/v1/admin/templates/{template_id}", POS_KEY, json=EMAIL), 403, "forbidden"
        )
        assert_problem(api.call("GET", "/v1/admin/templates", POS_KEY), 403, "forbidden")

    @pytest.mark.parametrize(
        ("change", "field", "words"),
        [
            ({"body": "Hi {{ first_name }"}, "body", "line 1"),
            ({"body": "{{ nickname }} {{ unsubscribe_url }}"}, "body", "'nickname' is undefined"),
            ({"body": "{{ points.nope }} {{ unsubscribe_url }}"}, "body", "no attribute 'nope'"),
            ({"subject": "{{ first_name|attr('upper') }}"}, "subject", "no filter named 'attr'"),
            ({"body": "{{ ''.__class__.__mro__ }} {{ unsubscribe_url }}"}, "body", "unsafe"),
            (
                {"body": "{{ first_name.__class__.__mro__[1].__subclasses__() }} {{ unsubscribe_url }}"},
                "body",
                "unsafe",
            ),
            ({"html": "{{ points.__init__.__globals__ }} {{ unsubscribe_url }}"}, "html", "unsafe"),
            ({"body": "{% import os %}{{ unsubscribe_url }}"}, "body", "line 1"),
            ({"body": "{% import 'os' as os %}{{ unsubscribe_url }}"}, "body", "import"),
            ({"body": "{% include 'x' %}{{ unsubscribe_url }}"}, "body", "include"),
            ({"body": "{% for i in range(9) %}{% endfor %}{{ unsubscribe_url }}"}, "body", "for"),
            ({"body": "{{ 'x' * 10000000 }}{{ unsubscribe_url }}"}, "body", "at most"),
            ({"body": "{{ 9 ** 9999999 }}{{ unsubscribe_url }}"}, "body", "not allowed"),
            (
                {"body": "{{ first_name.center(999999999) }}{{ unsubscribe_url }}"},
                "body",
                "no functions or methods",
            ),
            ({"body": "{% set x = first_name %}{{ x }}{{ unsubscribe_url }}"}, "body", "set"),
            (
                {"html": "{% autoescape false %}{{ first_name }}{% endautoescape %}{{ unsubscribe_url }}"},
                "html",
                "autoescape",
            ),
            ({"body": "Hello {{ first_name }}"}, "body", "unsubscribe_url"),
            ({"html": "<p>{{ first_name }}</p>"}, "html", "unsubscribe_url"),
            ({"subject": None}, "subject", "subject"),
            ({"subject": "{{ first_name }}\n{{ last_name }}"}, "subject", "one line"),
            ({"body": "{{ confirm_url }} {{ unsubscribe_url }}"}, "body", "'confirm_url' is undefined"),
            ({"channel": "fax"}, "channel", ""),
            ({"colour": "red"}, "colour", ""),
            ({"body": ""}, "body", ""),
        ],
    )
    def test_a_template_that_cannot_render_is_refused_naming_the_field(
        self, api: Api, change: dict[str, Any], field: str, words: str
    ) -> None:
        template_id = tid()
        problem = assert_problem(put(api, template_id, {**EMAIL, **change}), 422, "validation-failed")
        errors = {tuple(e["loc"]): e["msg"] for e in problem["errors"]}
        assert ("body", field) in errors, problem
        assert words.lower() in errors[("body", field)].lower(), errors
        # nothing was stored
        assert_problem(
            api.call("GET", f"/v1/admin/templates/{template_id}", ADMIN_KEY), 404, "template-not-found"
        )

    def test_sms_bodies_are_plain_text_of_at_most_1600_characters(self, api: Api) -> None:
        sms = {"channel": "sms", "body": "Hi {{ first_name }}"}
        assert put(api, tid(), sms).status_code == 201
        for change, field, words in (
            ({"html": "<p>Hi</p>"}, "html", "plain text"),
            ({"subject": "Hi"}, "subject", "no subject"),
            ({"body": "{{ first_name }} " + "x" * 1596}, "body", "1600"),
        ):
            problem = assert_problem(put(api, tid(), {**sms, **change}), 422, "validation-failed")
            errors = {tuple(e["loc"]): e["msg"] for e in problem["errors"]}
            assert words in errors[("body", field)], errors

    def test_confirmation_templates_are_emails_offered_and_needing_confirm_url(self, api: Api) -> None:
        confirmation = {
            **EMAIL,
            "purpose": "confirmation",
            "body": "Confirm: {{ confirm_url }}\n{{ unsubscribe_url }}",
        }
        made = put(api, tid("confirm"), confirmation)
        assert made.status_code == 201, made.text
        assert "confirm_url" in made.json()["placeholders"]
        problem = assert_problem(
            put(api, tid(), {**confirmation, "body": "No link {{ unsubscribe_url }}"}),
            422,
            "validation-failed",
        )
        assert ["body", "body"] in [e["loc"] for e in problem["errors"]]
        problem = assert_problem(
            put(api, tid(), {"channel": "sms", "purpose": "confirmation", "body": "{{ confirm_url }}"}),
            422,
            "validation-failed",
        )
        assert ["body", "channel"] in [e["loc"] for e in problem["errors"]]

    def test_mail_templates_may_use_the_address_and_a_coupon(self, api: Api) -> None:
        letter = {
            "channel": "mail",
            "subject": "For {{ first_name }}",
            "body": "{{ address.line1 }}\n{{ address.postal_code }} {{ address.city }}\n"
            "Your coupon {{ coupon.code }} is valid until {{ coupon.valid_until }}.",
        }
        made = put(api, tid("mail"), letter)
        assert made.status_code == 201, made.text
        assert made.json()["placeholders"] == ["address", "coupon", "first_name"]


class TestProgrammeMessaging:
    def test_the_seeded_programme_has_a_valid_messaging_block(self, api: Api) -> None:
        messaging = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()["messaging"]
        assert messaging["default_timezone"] == "Europe/Amsterdam"
        assert messaging["confirm_email"] is False
        assert messaging["welcome_template_id"] is None
        assert messaging["frequency_caps"] == {} and messaging["quiet_hours"] is None

    def test_caps_quiet_hours_and_zone_are_kept(self, api: Api, programme: dict[str, Any]) -> None:
        wanted = with_messaging(
            programme,
            frequency_caps={"email": {"max": 3, "per_days": 7}, "sms": {"max": 1, "per_days": 1}},
            quiet_hours={"start": "21:00", "end": "08:00"},
            default_timezone="Europe/Brussels",
        )
        saved = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=wanted)
        assert saved.status_code == 200, saved.text
        messaging = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()["messaging"]
        assert messaging["frequency_caps"]["email"] == {"max": 3, "per_days": 7}
        assert messaging["quiet_hours"] == {"start": "21:00", "end": "08:00"}
        assert messaging["default_timezone"] == "Europe/Brussels"

    @pytest.mark.parametrize(
        ("messaging", "loc"),
        [
            ({"frequency_caps": {"fax": {"max": 1, "per_days": 1}}}, ["body", "messaging", "frequency_caps"]),
            (
                {"frequency_caps": {"email": {"max": 0, "per_days": 7}}},
                ["body", "messaging", "frequency_caps"],
            ),
            ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, ["body", "messaging", "quiet_hours"]),
            ({"quiet_hours": {"start": "9:00", "end": "08:00"}}, ["body", "messaging", "quiet_hours"]),
            ({"quiet_hours": {"start": "08:00", "end": "08:00"}}, ["body", "messaging", "quiet_hours"]),
            ({"default_timezone": "Mars/Olympus"}, ["body", "messaging", "default_timezone"]),
            ({"confirm_email": True}, ["body", "messaging"]),
            ({"welcome_template_id": "no such template!"}, ["body", "messaging", "welcome_template_id"]),
            ({"colour": "red"}, ["body", "messaging", "colour"]),
        ],
    )
    def test_bad_settings_are_422_naming_the_field(
        self, api: Api, programme: dict[str, Any], messaging: dict[str, Any], loc: list[str]
    ) -> None:
        response = api.call(
            "PUT", "/v1/admin/programme", ADMIN_KEY, json=with_messaging(programme, **messaging)
        )
        problem = assert_problem(response, 422, "validation-failed")
        assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem
        assert api.call("GET", "/v1/admin/programme", ADMIN_KEY).json() == programme

    def test_template_ids_must_name_templates_that_serve_their_trigger(
        self, api: Api, programme: dict[str, Any]
    ) -> None:
        welcome, coupon_mail, confirm = tid("welcome"), tid("coupon"), tid("confirm")
        assert put(api, welcome, EMAIL).status_code == 201
        with_coupon = {**EMAIL, "body": "{{ coupon.code }} {{ unsubscribe_url }}"}
        assert put(api, coupon_mail, with_coupon).status_code == 201
        confirmation = {**EMAIL, "purpose": "confirmation", "body": "{{ confirm_url }} {{ unsubscribe_url }}"}
        assert put(api, confirm, confirmation).status_code == 201

        def refused(**messaging: Any) -> dict[str, str]:
            response = api.call(
                "PUT", "/v1/admin/programme", ADMIN_KEY, json=with_messaging(programme, **messaging)
            )
            problem = assert_problem(response, 422, "validation-failed")
            return {e["loc"][-1]: e["msg"] for e in problem["errors"]}

        missing = tid("missing")
        assert missing in refused(welcome_template_id=missing)["welcome_template_id"]
        assert "coupon" in refused(welcome_template_id=coupon_mail)["welcome_template_id"]
        assert "confirmation" in refused(welcome_template_id=confirm)["welcome_template_id"]
        assert "confirmation" in refused(confirmation_template_id=welcome)["confirmation_template_id"]
        both = refused(welcome_template_id=missing, earn_confirmation_template_id=coupon_mail)
        assert set(both) == {"welcome_template_id", "earn_confirmation_template_id"}

        saved = api.call(
            "PUT",
            "/v1/admin/programme",
            ADMIN_KEY,
            json=with_messaging(
                programme, welcome_template_id=welcome, confirm_email=True, confirmation_template_id=confirm
            ),
        )
        assert saved.status_code == 200, saved.text

        # In use: it cannot be deleted, nor changed into one its trigger cannot send.
        in_use = assert_problem(
            api.call("DELETE", f"/v1/admin/templates/{welcome}", ADMIN_KEY), 409, "template-in-use"
        )
        assert "welcome_template_id" in in_use["detail"]
        assert_problem(put(api, welcome, with_coupon), 409, "template-in-use")
        assert put(api, welcome, {**EMAIL, "subject": "Welcome aboard"}).status_code == 200
        assert api.call("GET", f"/v1/admin/templates/{welcome}", ADMIN_KEY).status_code == 200

        # Once the programme points elsewhere, it goes.
        released = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=programme)
        assert released.status_code == 200
        assert api.call("DELETE", f"/v1/admin/templates/{welcome}", ADMIN_KEY).status_code == 204
