"""Timeline attributes of an item (the design note of issue 15; the timeline branch owns this module).

Written here with the agreed signature so the gamification records carry them; at merge the
timeline branch's module replaces this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import to_iso


def timeline_fields(
    owner_pk: str,
    at: datetime,
    kind: str,
    type_: str,
    summary: str,
    ref: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """`tlpk`, `tlsk` and `tl` (the timeline item exactly as the API returns it) for gsi3."""
    unique = "#".join(str(v) for v in ref.values())
    when = to_iso(at)
    return {
        "tlpk": owner_pk,
        "tlsk": f"{when}#{kind}#{unique}",
        "tl": {
            "at": when,
            "kind": kind,
            "type": type_,
            "summary": summary,
            "ref": dict(ref),
            "data": dict(data),
        },
    }
