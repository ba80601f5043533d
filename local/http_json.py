"""JSON over HTTP to the local stack's own servers (its API, localstripe): one request, its
answer's JSON object, an error status raised with what was asked."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any


def request_json(
    url: str,
    *,
    method: str,
    data: bytes | None,
    headers: Mapping[str, str],
    timeout: float,
    what: str,
) -> dict[str, Any]:
    """The JSON object `url` answers; an error status raises a RuntimeError that starts with
    `what` and gives the status and the body."""
    request = urllib.request.Request(  # noqa: S310 - local http only
        url, data=data, method=method, headers=dict(headers)
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{what}: {error.code} {error.read()!r}") from error
