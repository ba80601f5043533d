"""Lambda events as AWS builds them: API Gateway HTTP API (payload 2.0) with JWT claims, the
parts a function URL's event shares with it (`local.gateway.function_url_event`), and a Lambda
context. Used by the local gateway and by the tests (one definition of the shape)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

Json = dict[str, Any]
# The account and region the local stack pretends to run in (ARNs, events' `account`).
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def query_parameters(raw_query: str) -> dict[str, str]:
    """`queryStringParameters` of a payload 2.0 event: repeated names joined with commas, as
    API Gateway and function URLs join them."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return query


def request_context(
    method: str,
    path: str,
    headers: Mapping[str, str],
    *,
    account_id: str,
    api_id: str,
    domain_name: str,
    route_key: str,
) -> Json:
    """The `requestContext` of a payload 2.0 event (HTTP API or function URL); `headers` are
    lower-cased."""
    return {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", 1)[0],
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "timeEpoch": int(time.time() * 1000),
    }


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
    query = query_parameters(raw_query)
    context = request_context(
        method,
        path,
        lowered,
        account_id=ACCOUNT_ID,
        api_id="local",
        domain_name="localhost",
        route_key=f"{method} {route}",
    )
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


def sqs_record(
    message_id: str,
    receipt_handle: str,
    body: str,
    queue_arn: str,
    *,
    attributes: Mapping[str, Any] | None = None,
    message_attributes: Mapping[str, Any] | None = None,
    md5_of_body: str = "",
) -> Json:
    """One record of Lambda's SQS event (a batch's `Records` item)."""
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": dict(attributes or {}),
        "messageAttributes": dict(message_attributes or {}),
        "md5OfBody": md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
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
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
