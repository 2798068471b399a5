"""Infra tests carry an xdist_group marker; register it when pytest-xdist is not loaded.

`pytest -p no:xdist` with --strict-markers would otherwise refuse to collect them.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        config.addinivalue_line("markers", "xdist_group(name): keeps tests on one pytest-xdist worker")
