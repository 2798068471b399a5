"""A platform hosted in a process that swaps its container (the local runtime in a test worker)
binds its own container in the threads that run its handlers; the process's stays the tests'."""

from __future__ import annotations

import threading
from typing import Any, cast

from loyalty import bootstrap
from loyalty.bootstrap import Container, bound_container, container, use_container


def test_a_bound_container_wins_in_its_thread_only() -> None:
    process, runtime = cast(Container, object()), cast(Container, object())
    seen: dict[str, Any] = {}
    swapped, answered = threading.Event(), threading.Event()

    def runtime_thread() -> None:
        with bound_container(runtime):
            swapped.wait(5)  # meanwhile a test swaps the process's container
            seen["runtime"] = container()
        seen["after"] = bootstrap._bound.get()
        answered.set()

    use_container(process)
    try:
        worker = threading.Thread(target=runtime_thread)
        worker.start()
        use_container(cast(Container, object()))  # a test installs its own
        swapped.set()
        answered.wait(5)
        worker.join(5)
        assert seen["runtime"] is runtime
        assert seen["after"] is None
        use_container(process)
        assert container() is process  # the main thread never saw the binding
    finally:
        use_container(None)
