"""Swagger UI, served by the API itself from the `swagger-ui-bundle` package.

A page that loads its script from a CDN is blank offline and behind most corporate proxies, so
the page, its script and its stylesheet all come from this API (the local gateway and API Gateway
alike). Every URL is relative: on AWS the page lives under the stage's prefix (`/prod/docs`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from loyalty.domain.errors import NotFound

# Only what the page needs: the standalone bundle and its stylesheet (no source maps, no presets).
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
HTML_TYPE = "text/html; charset=utf-8"
# The assets are immutable for one deployed version of the package; the page itself is not cached
# so that a new deployment's document shows at once.
ASSET_CACHE = "public, max-age=86400"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loyalty API</title>
<link rel="stylesheet" href="docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui", deepLinking: true});</script>
</body></html>"""


@cache
def asset(name: str) -> tuple[str, str]:
    """(body, content type) of one of the page's assets; anything else is a 404."""
    content_type = ASSETS.get(name)
    if content_type is None:
        raise NotFound(f"no documentation asset {name[:64]!r}")
    vendor = resources.files("swagger_ui_bundle") / "vendor"
    # The package keeps its files under vendor/swagger-ui-<version>/; take the one it ships.
    folder = next(entry for entry in vendor.iterdir() if entry.name.startswith("swagger-ui-"))
    return (folder / name).read_text(encoding="utf-8"), content_type
