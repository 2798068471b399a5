from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.event_handler.router import Router
from pydantic import BaseModel

from loyalty import __version__


class Health(BaseModel):
    status: Literal["ok"]
    version: str


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.get("/v1/health", summary="Liveness and version (no key needed)", tags=["health"])
    def health() -> Health:
        return Health(status="ok", version=__version__)

    return router
