"""Fault injection at the store's boundary: a DynamoDB client that fails on cue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError


def throttled(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}},
        operation,
    )


def transaction_conflict() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )


def timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="http://dynamodb")


class FaultyClient:
    """Delegates to a real client; `fail(op, error, after=False)` makes the next call of `op`
    raise `error`, before the call reaches DynamoDB or (after=True) once it has succeeded
    there (the answer is lost, as in a crash or a timeout)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._faults: dict[str, list[tuple[Exception, bool]]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)

    def fail(
        self, operation: str, error: Exception, *, after: bool = False, times: int = 1
    ) -> None:
        self._faults[operation].extend([(error, after)] * times)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if self._faults[name]:
                error, after = self._faults[name].pop(0)
                if after:
                    target(*args, **kwargs)
                raise error
            return target(*args, **kwargs)

        return call


def install(store: Any) -> FaultyClient:
    faulty = FaultyClient(store.client)
    store._client = faulty
    return faulty


Hook = Callable[[], None]
