"""The console's static files, served by the local gateway at /console (CloudFront and S3 on AWS).

Only GET and HEAD, only files inside the built folder, with the same security headers and
content security policy CloudFront adds (loyalty.resources.CONSOLE)."""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

from loyalty.resources import CONSOLE

REPO = Path(__file__).resolve().parents[2]
# `make console` builds here; LOYALTY_CONSOLE_DIR points elsewhere (a test's own build).
DEFAULT_DIR = REPO / "build" / "console"
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain"}


@dataclass(frozen=True)
class StaticAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def console_dir() -> Path:
    return Path(os.environ.get("LOYALTY_CONSOLE_DIR") or DEFAULT_DIR)


def is_console_path(path: str) -> bool:
    return path == CONSOLE.path or path.startswith(CONSOLE.path + "/")


def serve_console(method: str, path: str, root: Path | None = None) -> StaticAnswer:
    root = (root or console_dir()).resolve()
    headers = CONSOLE.response_headers()
    if method not in ("GET", "HEAD"):
        return _text(405, "the console is static: GET only", {**headers, "Allow": "GET, HEAD"})
    if path == CONSOLE.path:
        return StaticAnswer(301, {**headers, "Location": CONSOLE.path + "/"}, b"")
    relative = path[len(CONSOLE.path) + 1 :] or CONSOLE.index
    if not root.is_dir():
        return _text(404, "the console is not built: run `make console`", headers)
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return _text(404, "no such file in the console", headers)
    content_type = (
        TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    )
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    # index.html names the bundle by a fixed name: revalidate every time, nothing goes stale.
    return StaticAnswer(
        200, {**headers, "Content-Type": content_type, "Cache-Control": "no-cache"}, target.read_bytes()
    )


def _text(status: int, text: str, headers: dict[str, str]) -> StaticAnswer:
    return StaticAnswer(status, {**headers, "Content-Type": "text/plain; charset=utf-8"}, text.encode())
