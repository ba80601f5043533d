"""Lambda SnapStart runtime hooks of the API functions (template parameter `ApiSnapStart`).

With SnapStart, Lambda runs a function's initialisation once, when a version is published, and
starts later execution environments from a snapshot of it. Before the snapshot: everything a
first request would otherwise pay for, the imports (done by then), the resolver's handling of a
request, the DynamoDB client with its models and serialisers loaded, and the idempotency layer.
After a restore: what must be unique to each environment or fresh is made so again, the
`random` module's state (copied into every environment restored from one snapshot), and the AWS
clients' connection pools (their sockets belong to the publishing moment: new ones are opened
on first use; the credentials of a SnapStart function come from Lambda's container credentials
endpoint, which botocore refreshes itself). Identifiers (`lifecycle.ids`) and secret tokens
read `os.urandom`, which stays unique. Secrets (the cursor keys, Stripe's) are read from SSM on
first use after the restore, never kept in the snapshot.

Outside Lambda's managed runtime (tests, the local stack, a function without SnapStart) the
hooks' library is absent and `register` does nothing; the hooks run only if Lambda calls them.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

_WARM_PATH = "/_snapstart/warm"
# Every warm-up registered in this process (bench.first_request runs them as Lambda would).
registered: list[Callable[[], None]] = []


def register(warm: Callable[[], None]) -> bool:
    """Register `warm` (plus the clients' warm-up) before the snapshot and `refresh` after
    each restore; False when SnapStart's runtime hooks are not available here."""
    registered.append(warm)
    try:
        from snapshot_restore_py import (  # noqa: PLC0415 - only in Lambda's runtime
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(lambda: before_snapshot(warm))
    register_after_restore(refresh)
    return True


def before_snapshot(warm: Callable[[], None]) -> None:
    """What a first request would pay for, paid once at publish time. A warm-up that fails
    (the table unreachable from the publishing environment, say) only costs its share later."""
    from lifecycle.settings import settings  # noqa: PLC0415
    from lifecycle.store.repository import default_client  # noqa: PLC0415
    from lifecycle.usecases.services import services  # noqa: PLC0415

    services()
    with contextlib.suppress(Exception):
        # Loads the operation model and serialisers and opens a connection (refreshed later).
        default_client().get_item(
            TableName=settings().table_name,
            Key={"PK": {"S": "SNAPSTART"}, "SK": {"S": "WARM"}},
        )
    with contextlib.suppress(Exception):
        warm()


def refresh() -> None:
    """After a restore: fresh randomness, and no socket of the snapshot reused."""
    from lifecycle.store import table  # noqa: PLC0415
    from lifecycle.usecases import publishing  # noqa: PLC0415

    random.seed()
    for build in (table.default_client, publishing.default_client):
        if build.cache_info().currsize:
            with contextlib.suppress(Exception):
                build()._endpoint.http_session.close()  # botocore: the pool


def warm_request(app: Any) -> None:
    """One request through the resolver (no token: answered before any DynamoDB call), which
    loads what resolving, validating and answering a request use."""
    app.resolve(
        {
            "version": "2.0",
            "routeKey": f"GET {_WARM_PATH}",
            "rawPath": _WARM_PATH,
            "rawQueryString": "",
            "headers": {},
            "requestContext": {"http": {"method": "GET", "path": _WARM_PATH}},
            "isBase64Encoded": False,
        },
        _Context(),
    )


class _Context:
    function_name = "snapstart-warm-up"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:snapstart-warm-up"
    aws_request_id = "snapstart-warm-up"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
