"""Running things at the same moment in tests: real threads released together by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from lifecycle.rules.errors import DomainError


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Each call's result, or the DomainError it raised, the calls started at the same moment."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except DomainError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
