from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, no_content, ok, page
from loyalty.api.models.admin import (
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyList,
    ApiKeyOut,
    StoreList,
    StoreOut,
    StorePut,
)
from loyalty.api.models.common import PathId, StoreId
from loyalty.bootstrap import container
from loyalty.domain.errors import StoreNotFound
from loyalty.domain.programme import Programme  # a route's body and answer: needed at runtime

if TYPE_CHECKING:
    from loyalty.adapters.api_keys import ApiKeyRecord


def _key_out(record: ApiKeyRecord) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=record.key_id,
        kind=record.kind,
        store_id=record.store_id,
        name=record.name,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.post(
        "/v1/admin/api-keys",
        summary="Issue an API key (the secret is shown once)",
        tags=["admin"],
        responses={201: docs.model(ApiKeyIssued, "the new key"), 422: docs.PROBLEM},
    )
    def create_api_key(body: ApiKeyCreate):
        # Not replayable through Idempotency-Key on purpose: replaying would mean storing the secret.
        issued = container().api_keys.issue(body.kind, body.store_id, body.name)
        return ok(ApiKeyIssued(**_key_out(issued.record).model_dump(), api_key=issued.secret), 201)

    @router.get("/v1/admin/api-keys", summary="List API keys (never their secrets)", tags=["admin"])
    def list_api_keys(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> ApiKeyList:
        records, next_cursor = container().api_keys.list(page(limit), cursor_in(router, cursor))
        return ApiKeyList(items=[_key_out(r) for r in records], next_cursor=cursor_out(router, next_cursor))

    @router.delete(
        "/v1/admin/api-keys/<key_id>",
        summary="Revoke an API key (it stops working within the authorizer cache time)",
        tags=["admin"],
        responses={204: docs.empty("revoked"), 404: docs.PROBLEM},
    )
    def revoke_api_key(key_id: PathId):
        container().api_keys.revoke(key_id)
        return no_content()

    @router.get("/v1/admin/stores", summary="List stores", tags=["admin"])
    def list_stores(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> StoreList:
        stores, next_cursor = container().stores.list(page(limit), cursor_in(router, cursor))
        return StoreList(items=[StoreOut.of(s) for s in stores], next_cursor=cursor_out(router, next_cursor))

    @router.get(
        "/v1/admin/stores/<store_id>",
        summary="A store",
        tags=["admin"],
        responses={200: docs.model(StoreOut, "the store"), 404: docs.PROBLEM},
    )
    def get_store(store_id: PathId):
        store = container().stores.find(store_id)
        if store is None:
            raise StoreNotFound(f"store {store_id!r} is not known")
        return ok(StoreOut.of(store))

    @router.put(
        "/v1/admin/stores/<store_id>",
        summary="Create or replace a store: channel, format and free attributes",
        tags=["admin"],
        responses={
            201: docs.model(StoreOut, "created"),
            200: docs.model(StoreOut, "replaced"),
            422: docs.PROBLEM,
        },
    )
    def put_store(store_id: StoreId, body: StorePut):
        store, created = container().stores.put(body.to_domain(store_id))
        return ok(StoreOut.of(store), 201 if created else 200)

    @router.get("/v1/admin/programme", summary="The programme configuration", tags=["admin"])
    def get_programme() -> Programme:
        return container().programme.current()

    @router.put(
        "/v1/admin/programme",
        summary="Replace the programme configuration (functions see it within 60 s)",
        tags=["admin"],
    )
    def put_programme(body: Programme) -> Programme:
        return container().programme.replace(body)

    return router
