"""AWS clients the way every function builds them: on first use (never at import time), with
standard-mode retries and short timeouts, so that a dependency outage is a quick retryable
error rather than a Lambda timeout. boto3 honours `AWS_ENDPOINT_URL_<SERVICE>` (local stack)."""

from __future__ import annotations

from typing import Any


def client(service: str) -> Any:
    """A boto3 client for `service` (callers cache it: one per execution environment)."""
    import boto3  # noqa: PLC0415 - deferred: importing boto3 is a cold-start cost
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        service,
        config=Config(
            # Standard mode retries a throttled or failed call as a whole.
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=2,
            read_timeout=5,
            tcp_keepalive=True,
        ),
    )
