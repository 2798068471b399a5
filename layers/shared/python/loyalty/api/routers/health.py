from __future__ import annotations

from aws_lambda_powertools.event_handler.router import Router

from loyalty import __version__
from loyalty.api.models import Health


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.get("/v1/health", summary="Liveness and version (no key needed)", tags=["health"])
    def health() -> Health:
        return Health(status="ok", version=__version__)

    return router
