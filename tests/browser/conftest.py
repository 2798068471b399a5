"""The console in a real browser: Debian's chromium driven by Playwright for Python, against a
platform of its own (the real gateway, handlers and emulators) loaded with `make demo`'s data.

`make test` builds the console (`make console`) and installs chromium (`make browser`) first; a
missing build or browser fails here rather than skipping. Screenshots of every screen go to
build/console-screenshots/ (LOYALTY_SCREENSHOTS elsewhere) for a reviewer to look at.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from loyalty_local.console import console_dir
from loyalty_local.emulators import DynamoDBLocal, Moto, free_port
from loyalty_local.runtime import LocalRuntime
from tests.e2e.conftest import ADMIN_KEY, Api
from tools.demo import Client, Demo, Report

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LOYALTY_CHROMIUM", "/usr/bin/chromium")
AXE = REPO / "console" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or REPO / "build" / "console-screenshots")
MARKETER_KEY = "local-marketer-key"
# As the machine notes advise for a closed network: no background connections, no first-run work.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
def api(emulators: tuple[DynamoDBLocal, Moto]) -> Iterator[Api]:
    """One platform for the browser tests (one xdist group, one worker; torn down with the package,
    so no other test shares the machine with its pollers): the demo's offers would change other
    tests' carts. With the workflows `make run` has, so campaign runs execute the
    synthesised state machine."""
    built = console_dir()
    assert (built / "index.html").is_file(), f"the console is not built in {built}: make console"
    ddb, moto = emulators
    port = free_port()
    runtime = LocalRuntime(table_name=f"console-{uuid.uuid4().hex[:10]}", ddb=ddb, moto=moto, workflows=True)
    runtime.start(port=port)
    try:
        yield Api(f"http://127.0.0.1:{port}", requests.Session(), runtime)
    finally:
        runtime.stop()


@pytest.fixture(scope="package")
def demo(api: Api) -> Report:
    """`make demo`'s data, loaded over HTTP as `make demo` does, its finished campaign included.
    Without the demo's wait for warm functions to see its new offers: on a platform that has just
    started no function has read the catalogue yet (the first sale reads it, after the offers)."""
    return Demo(Client(api.base), campaigns=True).run(settle=False)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), f"no chromium at {CHROMIUM}: make browser"
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab at a laptop's width; CSP is left on, as a marketer's browser has it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: violations.append(f"page error: {e}"))
    yield page
    context.close()
    assert violations == [], violations


def sign_in(page: Page, api: Api, key: str) -> None:
    page.goto(f"{api.base}/console/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for()


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def axe(page: Page, screen: str) -> None:
    """No serious or critical accessibility violation on the screen (axe-core, every rule)."""
    assert AXE.is_file(), f"no axe-core at {AXE}: make console installs it"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{screen}: {json.dumps(bad, indent=1)}"


def check_screen(page: Page, name: str) -> None:
    shoot(page, name)
    axe(page, name)


def activity_has_rows(api: Api, timeout: float = 75.0) -> None:
    """The demo's sales reach the lake within 60 s (spec "Reports"): wait for them, bounded."""
    today = datetime.now(UTC).date()
    params = {"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat(), "by": "channel"}
    deadline = time.monotonic() + timeout
    while True:
        rows = api.call("GET", "/v1/admin/reports/activity", ADMIN_KEY, params=params).json()["rows"]
        if rows or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert rows, "the demo's sales never reached the lake"
