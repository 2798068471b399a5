"""The foundation over HTTP with the demo keys: enrol, look up, links, profiles, keys, stores."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

import loyalty
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email


def test_health_needs_no_key(api: Api) -> None:
    response = api.call("GET", "/v1/health", key=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": loyalty.__version__}


class TestAuthentication:
    def test_no_unknown_or_wrong_kind_of_key(self, api: Api) -> None:
        assert_problem(api.call("GET", "/v1/customers/x", key=None), 401, "unauthenticated")
        assert_problem(api.call("GET", "/v1/customers/x", key="not-a-key"), 401, "unauthenticated")
        assert_problem(api.call("GET", "/v1/admin/stores", key=POS_KEY), 403, "forbidden")
        assert_problem(api.call("GET", "/v1/admin/api-keys", key=WEB_KEY), 403, "forbidden")
        assert api.call("GET", "/v1/admin/stores", key=ADMIN_KEY).status_code == 200

    def test_a_till_may_not_act_for_another_store(self, api: Api) -> None:
        body = {"links": [{"type": "email", "value": unique_email()}], "store_id": "web-nl"}
        assert_problem(api.call("POST", "/v1/customers", POS_KEY, json=body), 403, "forbidden")
        assert api.call("POST", "/v1/customers", WEB_KEY, json=body).status_code == 201

    def test_issued_key_works_for_its_store_and_stops_after_revocation(self, api: Api) -> None:
        created = api.call(
            "POST",
            "/v1/admin/api-keys",
            ADMIN_KEY,
            json={"kind": "pos", "store_id": "ams-01", "name": "till 3"},
        )
        assert created.status_code == 201, created.text
        issued = created.json()
        secret = issued["api_key"]
        assert issued["kind"] == "pos" and issued["store_id"] == "ams-01"

        assert (
            api.call(
                "POST", "/v1/customers", secret, json={"links": [{"type": "email", "value": unique_email()}]}
            ).status_code
            == 201
        )
        listed = api.call("GET", "/v1/admin/api-keys?limit=200", ADMIN_KEY).json()["items"]
        mine = [k for k in listed if k["key_id"] == issued["key_id"]]
        assert len(mine) == 1 and "api_key" not in mine[0] and mine[0]["revoked_at"] is None
        assert secret not in str(listed)

        assert api.call("DELETE", f"/v1/admin/api-keys/{issued['key_id']}", ADMIN_KEY).status_code == 204
        # Revocation is seen once the authorizer's 5 s result cache expires, as on API Gateway.
        deadline = time.monotonic() + 8
        status = 200
        while time.monotonic() < deadline:
            status = api.call("GET", "/v1/customers/anything", secret).status_code
            if status == 401:
                break
            time.sleep(0.5)
        assert status == 401
        assert_problem(
            api.call("DELETE", "/v1/admin/api-keys/01UNKNOWN", ADMIN_KEY), 404, "api-key-not-found"
        )

    def test_key_creation_is_validated(self, api: Api) -> None:
        body = assert_problem(
            api.call("POST", "/v1/admin/api-keys", ADMIN_KEY, json={"kind": "pos", "name": "x"}),
            422,
            "validation-failed",
        )
        assert body["errors"][0]["loc"] == ["body", "store_id"]
        assert_problem(
            api.call(
                "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"kind": "pos", "store_id": "zz", "name": "x"}
            ),
            422,
            "validation-failed",
        )
        body = assert_problem(
            api.call("POST", "/v1/admin/api-keys", ADMIN_KEY, json={"kind": "root", "name": "x"}),
            422,
            "validation-failed",
        )
        assert ["body", "kind"] in [e["loc"] for e in body["errors"]]

    def test_a_marketer_key_is_brand_wide_and_works_on_marketing_only(self, api: Api) -> None:
        body = assert_problem(
            api.call(
                "POST",
                "/v1/admin/api-keys",
                ADMIN_KEY,
                json={"kind": "marketer", "store_id": "ams-01", "name": "x"},
            ),
            422,
            "validation-failed",
        )
        assert body["errors"][0]["loc"] == ["body", "store_id"]
        created = api.call(
            "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"kind": "marketer", "name": "console"}
        )
        assert created.status_code == 201, created.text
        issued = created.json()
        assert (issued["kind"], issued["store_id"]) == ("marketer", None)
        marketer = issued["api_key"]
        assert api.call("GET", "/v1/admin/offers", marketer).status_code == 200
        assert api.call("GET", "/v1/admin/templates", marketer).status_code == 200
        assert_problem(api.call("GET", "/v1/customers/nobody", marketer), 404, "customer-not-found")
        for method, path in (
            ("GET", "/v1/admin/api-keys"),
            ("GET", "/v1/admin/stores"),
            ("GET", "/v1/admin/programme"),
        ):
            assert_problem(api.call(method, path, marketer), 403, "forbidden")
        refused = api.call("POST", "/v1/admin/api-keys", marketer, json={"kind": "admin", "name": "escalate"})
        assert_problem(refused, 403, "forbidden")


class TestEnrolAndLookup:
    def test_enrol_then_find_by_card_email_and_id(self, api: Api) -> None:
        email = unique_email()
        created = api.call(
            "POST",
            "/v1/customers",
            POS_KEY,
            json={
                "links": [{"type": "email", "value": "  " + email.upper()}],
                "profile": {"first_name": "Jane", "birthday": "1990-04-01", "attributes": {"size": "M"}},
                "consents": {"email": True},
            },
        )
        assert created.status_code == 201
        jane = created.json()
        assert jane["member"] is True and jane["tier"] == "bronze" and jane["status"] == "active"
        assert {"type": "email", "value": email} in jane["links"]
        assert jane["points"] == {"available": 0, "pending": 0, "lifetime": 0}
        assert jane["stats"]["spend"] == "0.00" and jane["stats"]["currency"] == "EUR"
        card = jane["card"]
        assert {"type": "card", "value": card} in jane["links"]

        by_card = api.call("GET", f"/v1/customers?link_type=card&link_value={card}", POS_KEY)
        assert by_card.status_code == 200 and by_card.json() == jane
        by_email = api.call(
            "GET", "/v1/customers", WEB_KEY, params={"link_type": "email", "link_value": email.upper()}
        )
        assert by_email.json()["customer_id"] == jane["customer_id"]
        assert api.call("GET", f"/v1/customers/{jane['customer_id']}", WEB_KEY).json() == jane

    def test_second_enrolment_of_a_member_is_an_identity_conflict(self, api: Api) -> None:
        email = unique_email()
        jane = api.enrol(links=[{"type": "email", "value": email}])
        body = assert_problem(
            api.call("POST", "/v1/customers", json={"links": [{"type": "email", "value": email}]}),
            409,
            "identity-conflict",
        )
        assert body["customer_ids"] == [jane["customer_id"]]

    def test_guest_checkout_then_enrolment_keeps_the_profile(self, api: Api) -> None:
        email = unique_email()
        guest_response = api.call(
            "POST",
            "/v1/customers",
            WEB_KEY,
            json={"links": [{"type": "email", "value": email}], "member": False},
        )
        assert guest_response.status_code == 201
        guest = guest_response.json()
        assert guest["member"] is False and guest["card"] is None and guest["tier"] is None

        enrolled = api.call(
            "POST", "/v1/customers", POS_KEY, json={"links": [{"type": "email", "value": email}]}
        )
        assert enrolled.status_code == 200
        assert enrolled.json()["customer_id"] == guest["customer_id"]
        assert enrolled.json()["member"] is True and enrolled.json()["card"]
        assert enrolled.json()["created_at"] == guest["created_at"]

    def test_lookups_that_find_nothing(self, api: Api) -> None:
        assert_problem(api.call("GET", "/v1/customers/01DOESNOTEXIST"), 404, "customer-not-found")
        assert_problem(
            api.call("GET", "/v1/customers?link_type=card&link_value=2900000000000"),
            404,
            "customer-not-found",
        )
        body = assert_problem(
            api.call("GET", "/v1/customers?link_type=fax&link_value=1"), 422, "validation-failed"
        )
        assert body["errors"][0]["loc"] == ["query", "link_type"]
        body = assert_problem(api.call("GET", "/v1/customers?link_type=card"), 422, "validation-failed")
        assert ["query", "link_value"] in [e["loc"] for e in body["errors"]]

    def test_concurrent_enrolments_over_http_have_one_winner(self, api: Api) -> None:
        email = unique_email()

        def enrol(_: int) -> int:
            body = {"links": [{"type": "email", "value": email}]}
            return api.call("POST", "/v1/customers", POS_KEY, json=body).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(enrol, range(8)))
        assert statuses == [201] + [409] * 7


class TestBadInput:
    def test_malformed_json_is_a_400(self, api: Api) -> None:
        response = api.call(
            "POST", "/v1/customers", data="{not json", headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 400, "malformed-request")

    def test_every_bad_field_is_listed(self, api: Api) -> None:
        body = {
            "links": [{"type": "email", "value": "nope"}, {"type": "fax", "value": "1"}],
            "profile": {"birthday": "not-a-date"},
            "member": "maybe",
            "colour": "blue",
        }
        problem = assert_problem(api.call("POST", "/v1/customers", json=body), 422, "validation-failed")
        locations = [e["loc"] for e in problem["errors"]]
        assert ["body", "profile", "birthday"] in locations
        assert ["body", "member"] in locations
        assert ["body", "colour"] in locations
        for error in problem["errors"]:
            assert error["msg"]

    def test_link_errors_name_the_link(self, api: Api) -> None:
        body = {"links": [{"type": "email", "value": "nope"}, {"type": "fax", "value": "1"}]}
        problem = assert_problem(api.call("POST", "/v1/customers", json=body), 422, "validation-failed")
        assert [e["loc"] for e in problem["errors"]] == [
            ["body", "links", 0, "value"],
            ["body", "links", 1, "type"],
        ]
        problem = assert_problem(
            api.call("POST", "/v1/customers", json={"links": [{"type": "phone", "value": "12"}]}),
            422,
            "validation-failed",
        )
        assert problem["errors"][0]["loc"] == ["body", "links", 0, "value"]

    def test_unknown_store_and_oversized_body(self, api: Api) -> None:
        body = {"links": [{"type": "email", "value": unique_email()}], "store_id": "nowhere"}
        problem = assert_problem(
            api.call("POST", "/v1/customers", ADMIN_KEY, json=body), 422, "validation-failed"
        )
        assert problem["errors"][0]["loc"] == ["body", "store_id"]
        huge = {
            "links": [{"type": "email", "value": unique_email()}],
            "profile": {"first_name": "x" * 70_000},
        }
        assert_problem(api.call("POST", "/v1/customers", json=huge), 413, "payload-too-large")

    def test_nothing_is_written_by_a_refused_request(self, api: Api) -> None:
        email = unique_email()
        body = {"links": [{"type": "email", "value": email}, {"type": "phone", "value": "12"}]}
        assert api.call("POST", "/v1/customers", json=body).status_code == 422
        assert_problem(
            api.call("GET", "/v1/customers", params={"link_type": "email", "link_value": email}),
            404,
            "customer-not-found",
        )

    def test_absurd_ids_are_not_found_not_errors(self, api: Api) -> None:
        assert_problem(api.call("GET", "/v1/customers/" + "x" * 3000), 404, "customer-not-found")
        assert_problem(api.call("GET", "/v1/admin/stores/" + "s" * 3000, ADMIN_KEY), 404, "store-not-found")
        assert_problem(
            api.call("DELETE", "/v1/admin/api-keys/" + "k" * 3000, ADMIN_KEY), 404, "api-key-not-found"
        )
        long_link = {"link_type": "ext:crm", "link_value": "v" * 254}
        assert_problem(api.call("GET", "/v1/customers", params=long_link), 404, "customer-not-found")

    def test_unknown_route(self, api: Api) -> None:
        assert_problem(api.call("GET", "/v1/nothing-here"), 404, "not-found")


class TestIdempotencyKey:
    def test_replay_returns_the_first_response(self, api: Api) -> None:
        body = {"links": [{"type": "email", "value": unique_email()}]}
        headers = {"Idempotency-Key": "enrol-" + unique_email()}
        first = api.call("POST", "/v1/customers", json=body, headers=headers)
        again = api.call("POST", "/v1/customers", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again.headers.get("Idempotent-Replayed") == "true"

        other = {"links": [{"type": "email", "value": unique_email()}]}
        assert_problem(
            api.call("POST", "/v1/customers", json=other, headers=headers), 422, "idempotency-key-mismatch"
        )

    def test_keys_are_scoped_to_the_calling_api_key(self, api: Api) -> None:
        headers = {"Idempotency-Key": "shared-" + unique_email()}
        first = api.call(
            "POST",
            "/v1/customers",
            POS_KEY,
            json={"links": [{"type": "email", "value": unique_email()}]},
            headers=headers,
        )
        second = api.call(
            "POST",
            "/v1/customers",
            WEB_KEY,
            json={"links": [{"type": "email", "value": unique_email()}]},
            headers=headers,
        )
        assert first.status_code == second.status_code == 201
        assert first.json()["customer_id"] != second.json()["customer_id"]


class TestLinksAndProfile:
    def test_link_lifecycle(self, api: Api) -> None:
        jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
        john = api.enrol(links=[{"type": "email", "value": unique_email()}])
        phone = {"type": "phone", "value": "+31 6 1" + str(uuid.uuid4().int)[:7]}

        added = api.call("POST", f"/v1/customers/{jane['customer_id']}/links", json=phone)
        assert added.status_code == 201
        normalised = next(link for link in added.json()["links"] if link["type"] == "phone")["value"]
        assert api.call("POST", f"/v1/customers/{jane['customer_id']}/links", json=phone).status_code == 200

        body = assert_problem(
            api.call("POST", f"/v1/customers/{john['customer_id']}/links", json=phone), 409, "link-taken"
        )
        assert body["customer_id"] == jane["customer_id"]
        moved = api.call(
            "POST", f"/v1/customers/{john['customer_id']}/links", json={**phone, "on_conflict": "move"}
        )
        assert moved.status_code == 201
        found = api.call(
            "GET", "/v1/customers", params={"link_type": "phone", "link_value": normalised}
        ).json()
        assert found["customer_id"] == john["customer_id"]
        jane_now = api.call("GET", f"/v1/customers/{jane['customer_id']}").json()
        assert {"type": "phone", "value": normalised} not in jane_now["links"]

        path = f"/v1/customers/{john['customer_id']}/links/phone/{requests.utils.quote(normalised)}"
        assert api.call("DELETE", path).status_code == 204
        assert_problem(api.call("DELETE", path), 404, "link-not-found")
        assert_problem(
            api.call("GET", "/v1/customers", params={"link_type": "phone", "link_value": normalised}),
            404,
            "customer-not-found",
        )
        problem = assert_problem(
            api.call(
                "POST", f"/v1/customers/{john['customer_id']}/links", json={**phone, "on_conflict": "steal"}
            ),
            422,
            "validation-failed",
        )
        assert problem["errors"][0]["loc"] == ["body", "on_conflict"]

    def test_patch_profile_consents_and_enrolment(self, api: Api) -> None:
        guest = api.call(
            "POST",
            "/v1/customers",
            WEB_KEY,
            json={"links": [{"type": "email", "value": unique_email()}], "member": False},
        ).json()
        patched = api.call(
            "PATCH",
            f"/v1/customers/{guest['customer_id']}",
            WEB_KEY,
            json={
                "profile": {"first_name": "Ann", "attributes": {"vip": True}},
                "consents": {"sms": True},
                "member": True,
            },
        )
        assert patched.status_code == 200, patched.text
        ann = patched.json()
        assert ann["member"] is True and ann["card"] and ann["tier"] == "bronze"
        assert ann["profile"]["first_name"] == "Ann" and ann["profile"]["attributes"] == {"vip": True}
        assert ann["consents"] == {"email": False, "sms": True, "mail": False}
        problem = assert_problem(
            api.call("PATCH", f"/v1/customers/{guest['customer_id']}", json={"member": False}),
            422,
            "validation-failed",
        )
        assert problem["errors"][0]["loc"][:2] == ["body", "member"]
        assert_problem(
            api.call("PATCH", "/v1/customers/01NOBODY", json={"profile": {"first_name": "x"}}),
            404,
            "customer-not-found",
        )


class TestStores:
    def test_put_get_list_stores(self, api: Api) -> None:
        store = {
            "channel": "pos",
            "format": "outlet",
            "attributes": {"coffee_corner": False, "city": "Utrecht"},
        }
        created = api.call("PUT", "/v1/admin/stores/utr-01", ADMIN_KEY, json=store)
        assert created.status_code in (200, 201)
        assert api.call("PUT", "/v1/admin/stores/utr-01", ADMIN_KEY, json=store).status_code == 200
        fetched = api.call("GET", "/v1/admin/stores/utr-01", ADMIN_KEY).json()
        assert fetched == {"store_id": "utr-01", "name": None, **store}
        demo = api.call("GET", "/v1/admin/stores/ams-01", ADMIN_KEY).json()
        assert demo["channel"] == "pos" and demo["format"] == "flagship"
        assert demo["attributes"] == {"coffee_corner": True, "city": "Amsterdam"}
        ids = [s["store_id"] for s in api.call("GET", "/v1/admin/stores", ADMIN_KEY).json()["items"]]
        assert {"ams-01", "web-nl", "utr-01"} <= set(ids)
        assert_problem(api.call("GET", "/v1/admin/stores/none-such", ADMIN_KEY), 404, "store-not-found")
        problem = assert_problem(
            api.call("PUT", "/v1/admin/stores/bad", ADMIN_KEY, json={"channel": "fax"}),
            422,
            "validation-failed",
        )
        assert problem["errors"][0]["loc"] == ["body", "channel"]

    def test_programme_is_readable_and_validated(self, api: Api) -> None:
        programme = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
        assert programme["currency"] == "EUR" and programme["points_per_unit"] == 10
        assert [t["name"] for t in programme["tiers"]] == ["bronze", "silver", "gold"]
        bad = {**programme, "tiers": [{"name": "x", "threshold": 5, "multiplier": "1"}]}
        assert_problem(api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=bad), 422, "validation-failed")
