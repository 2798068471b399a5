"""Bad input on price groups over HTTP: refused with a problem document, nothing stored."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import ADMIN_KEY, Api, assert_problem, unique_email


def group_id() -> str:
    return "pg-" + uuid.uuid4().hex[:10]


def test_a_body_naming_another_group_than_the_path_is_refused(api: Api) -> None:
    path_id, body_id = group_id(), group_id()
    body = {"group_id": body_id, "name": "Staff", "members": {"tiers": ["gold"]}}

    problem = assert_problem(
        api.call("PUT", f"/v1/admin/price-groups/{path_id}", ADMIN_KEY, json=body), 422, "validation-failed"
    )
    (error,) = problem["errors"]
    assert error["loc"] == ["body", "group_id"]
    assert "path" in error["msg"]
    # Neither id was stored.
    for gid in (path_id, body_id):
        assert_problem(
            api.call("GET", f"/v1/admin/price-groups/{gid}", ADMIN_KEY), 404, "price-group-not-found"
        )

    # The same body under its own id is fine: it was the mismatch that was refused.
    created = api.call("PUT", f"/v1/admin/price-groups/{body_id}", ADMIN_KEY, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["group_id"] == body_id


def test_members_of_an_unknown_group_are_not_found(api: Api) -> None:
    customer_id = api.enrol(links=[{"type": "email", "value": unique_email()}])["customer_id"]
    unknown = group_id()

    for method in ("PUT", "DELETE"):
        problem = assert_problem(
            api.call(method, f"/v1/admin/price-groups/{unknown}/members/{customer_id}", ADMIN_KEY),
            404,
            "price-group-not-found",
        )
        assert unknown in problem["detail"]
    # Assigning did not create the group on the way.
    assert_problem(
        api.call("GET", f"/v1/admin/price-groups/{unknown}", ADMIN_KEY), 404, "price-group-not-found"
    )

    # A known group and an unknown customer: the customer is what is missing.
    known = group_id()
    made = api.call(
        "PUT", f"/v1/admin/price-groups/{known}", ADMIN_KEY, json={"group_id": known, "name": "VIP"}
    )
    assert made.status_code == 201, made.text
    assert_problem(
        api.call("PUT", f"/v1/admin/price-groups/{known}/members/nobody-{uuid.uuid4().hex[:8]}", ADMIN_KEY),
        404,
        "customer-not-found",
    )
    joined = api.call("PUT", f"/v1/admin/price-groups/{known}/members/{customer_id}", ADMIN_KEY)
    assert joined.status_code == 200, joined.text
    assert joined.json() == {"group_id": known, "customer_id": customer_id, "member": True}
