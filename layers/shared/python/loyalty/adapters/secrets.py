from __future__ import annotations

import threading
from typing import Any


class SecretValue:
    """A Secrets Manager string, fetched on first use and kept for the life of the container."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id
        self._value: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = str(self._client.get_secret_value(SecretId=self._secret_id)["SecretString"])
        return self._value
