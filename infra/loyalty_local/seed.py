"""The demo programme, stores and keys that `make run` prints: fixed values, created once."""

from __future__ import annotations

import contextlib

from loyalty.adapters.dynamo import TransactionCancelled
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind
from loyalty.domain.programme import default_programme
from loyalty.domain.stores import Channel, Store

DEMO_STORES = (
    Store(
        "ams-01",
        Channel.POS,
        format="flagship",
        name="Amsterdam flagship",
        attributes={"coffee_corner": True, "city": "Amsterdam"},
    ),
    Store("web-nl", Channel.ONLINE, name="Web shop NL"),
)

# (secret, kind, store, name): the spec fixes these values for local mode only.
DEMO_KEYS = (
    ("local-admin-key", KeyKind.ADMIN, None, "demo admin"),
    ("local-pos-key", KeyKind.POS, "ams-01", "demo till ams-01"),
    ("local-web-key", KeyKind.WEB, "web-nl", "demo web shop"),
    # For the console: what a marketer may do, and may not (no keys, stores or programme).
    ("local-marketer-key", KeyKind.MARKETER, None, "demo marketer"),
)


def seed(container: Container) -> None:
    from loyalty.adapters.programme import ProgrammeRepository

    programmes = ProgrammeRepository(container.table)
    if programmes.get() is None:
        programmes.put(default_programme(), container.clock.now())
    for store in DEMO_STORES:
        if container.stores.find(store.store_id) is None:
            container.stores.put(store)
    for secret, kind, store_id, name in DEMO_KEYS:
        # Seeded before (or revoked on purpose): leave it as it is.
        with contextlib.suppress(TransactionCancelled):
            container.api_keys.issue(kind, store_id, name, secret=secret)
