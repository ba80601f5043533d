"""API Gateway HTTP API (payload 2.0) events with JWT authorizer claims, and a Lambda context."""

from __future__ import annotations

import base64
import importlib
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from local.template import resources

Json = dict[str, Any]


def route_table() -> dict[tuple[str, str], str]:
    """(METHOD, /path/{id}) -> function folder, read from template.yaml (one routing table)."""
    routes = {}
    for resource in resources("AWS::Serverless::Function").values():
        properties = resource["Properties"]
        folder = properties["CodeUri"].rstrip("/").split("/")[-1]
        for event in (properties.get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                routes[(event["Properties"]["Method"].upper(), event["Properties"]["Path"])] = (
                    folder
                )
    return routes


def claims(account_id: str = "acc_1", user_id: str = "user_1", billing: bool = True) -> Json:
    return {
        "sub": user_id,
        "custom:account_id": account_id,
        # What an HTTP API JWT authorizer hands over for a list claim.
        "cognito:groups": "[billing admin]" if billing else "[members]",
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_local",
        "token_use": "access",
    }


def http_event(
    method: str,
    route: str,
    path_params: dict[str, str] | None = None,
    *,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    token_claims: Json | None = None,
    authorized: bool = True,
) -> Json:
    path = route
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", value)
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    all_headers = {"content-type": "application/json", "user-agent": "pytest", **(headers or {})}
    context: Json = {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "local.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "local",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "pytest",
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": f"{method} {route}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "timeEpoch": int(time.time() * 1000),
    }
    if authorized:
        context["authorizer"] = {"jwt": {"claims": token_claims or claims(), "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": all_headers,
        "queryStringParameters": query or None,
        "requestContext": context,
        "pathParameters": path_params or None,
        "body": text,
        "isBase64Encoded": False,
    }


class LambdaContext:
    function_name = "local-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:local-function"
    log_group_name = "/aws/lambda/local-function"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def invoke(
    method: str, route: str, path_params: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, Json]:
    """Call the real `lambda_handler` of the function template.yaml routes this to."""
    folder = route_table()[(method, route)]
    handler = importlib.import_module(f"functions.{folder}.app").lambda_handler
    response = handler(http_event(method, route, path_params, **kwargs), LambdaContext())
    body = response.get("body") or "null"
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body)
