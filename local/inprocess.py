"""The API's routes called in this process the way API Gateway calls them: an HTTP API event for
a route, with a user's claims, handed to the real `lambda_handler` of the function
template.yaml routes it to (the tests, `bench.api`)."""

from __future__ import annotations

import base64
import importlib
import json
from typing import Any
from urllib.parse import urlencode

from local.events import Json, LambdaContext, http_api_event
from local.template import route_table


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
    return http_api_event(
        method,
        route,
        path,
        path_params=path_params,
        raw_query=urlencode(query or {}),
        headers={
            name: value
            for name, value in {
                "content-type": "application/json",
                "user-agent": "pytest",
                **(headers or {}),
            }.items()
            if value is not None  # None: the header is left out
        },
        body=text,
        claims=(token_claims or claims()) if authorized else None,
    )


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
