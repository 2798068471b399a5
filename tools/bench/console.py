"""The console's first paint (issue 20): each screen loaded in Debian's chromium (Playwright for
Python) against a running local API with the demo's data; p50 over a few loads.

Run on its own with ``.venv/bin/python -m tools.bench.console`` or as a section of ``make bench``.
Against LOYALTY_API (a running ``make run`` after ``make demo``) when set; otherwise it starts a
platform of its own (DynamoDB Local and moto in memory, the gateway on a free port, the workflows
``make run`` has) and loads the demo into it over HTTP first, its finished campaign included.

Per screen, BENCH_CONSOLE_LOADS loads (default 5) in a fresh tab signed in as the demo's marketer
(the key is put in the tab's sessionStorage before the page's scripts run, as signing in leaves it):
- first contentful paint: the browser's `first-contentful-paint` entry (from the navigation's start);
- ready (first meaningful paint): the frame after the screen's heading is on the page and nothing on
  it says it is still loading (its data from the API drawn: a table, a chart, a form with its
  pickers), and never before the first paint.
The target, first meaningful paint under 1 s, is printed beside; the figures are not asserted
anywhere (a browser test asserts only that the page paints). Then the bundle's size compressed,
against its 500 KB budget.
"""

from __future__ import annotations

import gzip
import logging
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from playwright.sync_api import Browser

LOADS = int(os.environ.get("BENCH_CONSOLE_LOADS", "5"))
CHROMIUM = os.environ.get("LOYALTY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
MARKETER_KEY = "local-marketer-key"
TARGET_MS = 1000.0
BUNDLE_BUDGET = 500 * 1024
READY_TIMEOUT_MS = 30_000
# (screen, the hash it is reached by); the customer's 360° view is the demo's Anna, found by email.
SCREENS: tuple[tuple[str, str], ...] = (
    ("sign-in", ""),
    ("customers", "#/customers"),
    ("customer 360", "#/customers/{anna}"),
    ("segments", "#/segments"),
    ("campaigns", "#/campaigns"),
    ("campaign", "#/campaigns/demo-thank-you"),  # its dry run, runs, report charts and backtest
    ("offers", "#/offers"),
    ("templates", "#/templates"),
    ("reports", "#/reports"),
)
# Before the page's own scripts: the key as signing in leaves it, and a watcher noting the moment
# the screen is ready (its heading there, no loading indicator left).
INIT = """
(() => {
  if (%(signed_in)s) {
    sessionStorage.setItem('loyalty-console.key', %(key)r);
    sessionStorage.setItem('loyalty-console.kind', 'marketer');
  }
  const check = () => {
    if (window.__ready !== undefined) return;
    if (window.__seen || !document.getElementById('page-title') || document.querySelector('.loading')) return;
    window.__seen = true;
    // The frame that shows it: after the next animation frame has been painted.
    requestAnimationFrame(() => setTimeout(() => { window.__ready = performance.now(); }, 0));
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""
FCP = """() => new Promise((resolve) => {
  new PerformanceObserver((list) => {
    const fcp = list.getEntriesByName('first-contentful-paint')[0];
    if (fcp) resolve(fcp.startTime);
  }).observe({ type: 'paint', buffered: true });
})"""


@dataclass
class ScreenFigure:
    screen: str
    fcp_ms: list[float] = field(default_factory=list)
    ready_ms: list[float] = field(default_factory=list)

    @property
    def fcp_p50(self) -> float:
        return statistics.median(self.fcp_ms)

    @property
    def ready_p50(self) -> float:
        return statistics.median(self.ready_ms)


@dataclass
class ConsoleFigures:
    against: str
    loads: int
    screens: list[ScreenFigure]
    bundle_gzip: dict[str, int]
    note: str = ""


@contextmanager
def platform() -> Iterator[str]:
    """LOYALTY_API when it answers, else a platform of its own with the demo's data."""
    running = os.environ.get("LOYALTY_API")
    if running:
        yield running.rstrip("/")
        return
    from loyalty_local.emulators import free_port
    from loyalty_local.runtime import LocalRuntime
    from tools.demo import Client, Demo

    port = free_port()
    table = f"bench-console-{uuid.uuid4().hex[:8]}"
    runtime = LocalRuntime(table_name=table, workflows=True).start(port=port)
    try:
        base = f"http://127.0.0.1:{port}"
        # Its finished campaign too; no catalogue wait: nothing has read the new platform's catalogue.
        Demo(Client(base), campaigns=True).run(settle=False)
        yield base
    finally:
        runtime.stop()


def anna(base: str) -> str:
    found = requests.get(
        f"{base}/v1/customers",
        params={"link_type": "email", "link_value": "anna.devries@demo.example"},
        headers={"x-api-key": "local-admin-key"},
        timeout=30,
    )
    found.raise_for_status()
    return str(found.json()["customer_id"])


def bundle_sizes() -> dict[str, int]:
    from loyalty_local.console import console_dir

    return {
        p.name: len(gzip.compress(p.read_bytes(), 9))
        for p in sorted(console_dir().iterdir())
        if p.is_file() and p.name != "LICENSES.txt"
    }


def measure(loads: int = LOADS) -> ConsoleFigures | None:
    """None when there is no chromium or no built console to load (printed as such)."""
    from playwright.sync_api import sync_playwright

    from loyalty_local.console import console_dir

    if not Path(CHROMIUM).is_file() or not (console_dir() / "index.html").is_file():
        return None
    with platform() as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            customer = anna(base)
            figures = [
                _screen(browser, base, name, path.format(anna=customer), loads) for name, path in SCREENS
            ]
        finally:
            browser.close()
    against = os.environ.get("LOYALTY_API") or "a platform of its own with the demo's data"
    return ConsoleFigures(against, loads, figures, bundle_sizes())


def _screen(browser: Browser, base: str, name: str, path: str, loads: int) -> ScreenFigure:
    figure = ScreenFigure(name)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(INIT % {"signed_in": "true" if path else "false", "key": MARKETER_KEY})
    page = context.new_page()
    try:
        url = f"{base}/console/{path}"
        page.goto(url)  # a first load warms the platform's functions: not counted
        page.wait_for_function("() => window.__ready !== undefined", timeout=READY_TIMEOUT_MS)
        for _ in range(loads):
            page.goto("about:blank")
            page.goto(url)
            page.wait_for_function("() => window.__ready !== undefined", timeout=READY_TIMEOUT_MS)
            fcp = float(page.evaluate(FCP))
            figure.fcp_ms.append(fcp)
            figure.ready_ms.append(max(fcp, float(page.evaluate("() => window.__ready"))))
    finally:
        context.close()
    return figure


def print_figures(f: ConsoleFigures | None) -> None:
    print("Console first paint (issue 20): each screen in chromium, signed in as a marketer")
    if f is None:
        print(f"  not measured: no chromium at {CHROMIUM} (make browser) or no built console (make console)")
        return
    print(f"  against {f.against}; p50 of {f.loads} loads each, from the navigation's start")
    target = f"target: first meaningful paint < {TARGET_MS:.0f} ms"
    print(f"  {'screen':<14} {'first paint':>12} {'ready':>9}   {target}")
    for s in f.screens:
        verdict = "met" if s.ready_p50 < TARGET_MS else "MISSED"
        print(f"  {s.screen:<14} {s.fcp_p50:>9.0f} ms {s.ready_p50:>6.0f} ms   {verdict}")
    total = sum(f.bundle_gzip.values())
    parts = ", ".join(f"{name} {size / 1024:.1f} KB" for name, size in f.bundle_gzip.items())
    print(
        f"  bundle: {total / 1024:.1f} KB compressed (gzip -9: {parts}) against {BUNDLE_BUDGET // 1024} KB"
        f" ({'met' if total < BUNDLE_BUDGET else 'MISSED'})"
    )


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    began = time.monotonic()
    print_figures(measure())
    print(f"\nconsole bench took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
