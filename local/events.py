"""Lambda events as AWS builds them: API Gateway HTTP API (payload 2.0) with JWT claims, and a
Lambda context. Used by the local gateway and by the tests (one definition of the shape)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

Json = dict[str, Any]


def http_api_event(
    method: str,
    route: str,
    path: str,
    *,
    path_params: Mapping[str, str] | None = None,
    raw_query: str = "",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> Json:
    """What an HTTP API hands a Lambda integration for `route` (e.g. `POST /v1/x/{id}`);
    `claims` are the JWT authorizer's, absent for an unauthenticated route."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        # API Gateway joins repeated query parameters with commas.
        query[name] = f"{query[name]},{value}" if name in query else value
    context: Json = {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "localhost",
        "domainPrefix": "localhost",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": lowered.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": f"{method} {route}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "timeEpoch": int(time.time() * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "queryStringParameters": query or None,
        "requestContext": context,
        "pathParameters": dict(path_params) if path_params else None,
        "body": body,
        "isBase64Encoded": False,
    }


class LambdaContext:
    """The attributes of the Lambda context object the handlers and Powertools read."""

    memory_limit_in_mb = 256
    function_version = "$LATEST"
    log_stream_name = "local"

    def __init__(
        self, function_name: str = "local-function", timeout_seconds: float = 30.0
    ) -> None:
        self.function_name = function_name
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
