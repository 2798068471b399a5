"""The local gateway's console files: only files inside the built folder, GET and HEAD only, and
the same security headers and content security policy CloudFront sends (loyalty.resources.CONSOLE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty.resources import CONSOLE
from loyalty_local.console import is_console_path, serve_console


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "console"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "app.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("not the console's")
    return root


def test_the_page_and_its_bundle_carry_the_security_headers(built: Path) -> None:
    page = serve_console("GET", "/console/", built)
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.body.startswith(b"<!doctype html>")
    script = serve_console("GET", "/console/app.js", built)
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    for answer in (page, script):
        assert answer.headers["Content-Security-Policy"] == CONSOLE.content_security_policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
    # Nothing but the console's own origin: no CDN, no inline script, no framing.
    policy = dict(d.strip().split(" ", 1) for d in CONSOLE.content_security_policy.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_the_bare_path_redirects_to_the_folder(built: Path) -> None:
    answer = serve_console("GET", "/console", built)
    assert (answer.status, answer.headers["Location"]) == (301, "/console/")


@pytest.mark.parametrize(
    "path", ["/console/../secret.txt", "/console/nothing.js", "/console/%2e%2e/secret.txt"]
)
def test_nothing_outside_the_built_files(built: Path, path: str) -> None:
    answer = serve_console("GET", path, built)
    assert answer.status == 404
    assert b"not the console's" not in answer.body


def test_only_get_and_head(built: Path) -> None:
    assert serve_console("POST", "/console/", built).status == 405
    assert serve_console("HEAD", "/console/", built).status == 200


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    answer = serve_console("GET", "/console/", tmp_path / "missing")
    assert answer.status == 404
    assert b"make console" in answer.body


def test_which_paths_are_the_consoles() -> None:
    assert is_console_path("/console") and is_console_path("/console/app.js")
    assert not is_console_path("/consoles") and not is_console_path("/v1/console")
