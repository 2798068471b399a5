"""The authorizer's answer, with the key service faked (no AWS, no emulator).

Given a key the service knows, when API Gateway asks, then the answer allows the whole stage,
carries the key's identity as context and names the key id as the usage-plan key; given an
unknown key, it refuses with exactly the message API Gateway turns into a 401.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from loyalty.api import authorizer
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.errors import Unauthenticated

KEY_ID = "01JD0000000000000000000000"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/dev/POST/v1/transactions"


class FakeKeys:
    def authenticate(self, secret: str | None) -> Principal:
        if secret != "good-key":
            raise Unauthenticated("unknown or revoked API key")
        return Principal(KEY_ID, KeyKind.POS, "ams-01")


@pytest.fixture(autouse=True)
def fake_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authorizer, "container", lambda: SimpleNamespace(api_keys=FakeKeys()))


def _event(key: str | None) -> dict[str, Any]:
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {"X-Api-Key": key} if key else {}}


def test_a_known_key_is_allowed_on_the_whole_stage_and_names_its_usage_plan_key() -> None:
    answer = authorizer.authorize(_event("good-key"), None)
    assert answer["principalId"] == KEY_ID
    # API key source AUTHORIZER: the usage plan meters the API key whose value is the key id.
    assert answer["usageIdentifierKey"] == KEY_ID
    assert len(answer["usageIdentifierKey"]) >= 20  # API Gateway's minimum API key length
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": "arn:aws:execute-api:eu-west-1:123456789012:abc123/dev/*/*",
    }
    assert answer["context"] == {"key_id": KEY_ID, "kind": "pos", "store_id": "ams-01"}


@pytest.mark.parametrize("key", ["bad-key", None])
def test_an_unknown_or_missing_key_is_refused_as_unauthorized(key: str | None) -> None:
    with pytest.raises(authorizer.Unauthorized, match=r"^Unauthorized$"):
        authorizer.authorize(_event(key), None)
