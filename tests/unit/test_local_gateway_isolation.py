"""The local gateway runs a function's instances as threads of one process: each powertools
resolver must still see only its own request (on Lambda, a process serves one event at a time)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.router import Router

from loyalty_local.events import api_gateway_event
from loyalty_local.gateway import own_event_per_resolver


def rest_event(path: str, query: dict[str, str]) -> dict[str, Any]:
    return api_gateway_event("GET", path, path, query={k: [v] for k, v in query.items()})


def test_a_resolver_keeps_its_own_event_while_another_instance_resolves() -> None:
    # Given two instances (as a function's pool holds) and the gateway's isolation in place
    own_event_per_resolver()
    first, second = APIGatewayRestResolver(), APIGatewayRestResolver()
    router = Router()
    seen: dict[str, Any] = {}

    @router.get("/lookup")
    def lookup() -> dict[str, Any]:
        # When another instance resolves a request meanwhile (another thread, locally)
        second.resolve(rest_event("/other", {"link_type": "email"}), None)
        seen["query"] = router.current_event.query_string_parameters
        return {}

    @second.get("/other")
    def other() -> dict[str, Any]:
        return {}

    first.include_router(router)
    answer = first.resolve(rest_event("/lookup", {"link_type": "card"}), None)

    # Then the first request still reads its own query
    assert answer["statusCode"] == 200
    assert seen["query"] == {"link_type": "card"}


def test_isolation_is_installed_once() -> None:
    own_event_per_resolver()
    patched = APIGatewayRestResolver.resolve
    own_event_per_resolver()
    assert APIGatewayRestResolver.resolve is patched
