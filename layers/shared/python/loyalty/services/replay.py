"""The answer to a request seen before, raised at the service boundary and rendered by the API.

It carries an HTTP response (a status code, a body, headers), so it belongs neither to the domain
nor to the problem+json errors: the API's exception handler answers it as the first response was.
The idempotency store and the table's conditional write both detect replays, so the adapters raise
it too, as they raise a port's other signals."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IdempotentReplay(Exception):
    """Not an error: the request was already answered; carries the first response."""

    status_code: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
