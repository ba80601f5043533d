"""The local API Gateway: a WSGI app that routes as template.yaml says, authenticates the bearer
token, builds the HTTP API event and calls the real `lambda_handler` of the function; and the
function URL, which hands every request to its one function.

The routing table is read from template.yaml (HttpApi events of each function,
`local.template.routes`): there is no second one. Authentication is a callable (headers -> JWT
claims or None) so that `make dev` can verify real JWTs and tests can plug a fixed caller; how
functions run is another (`Invoke`: the stack's execution environments, or in-process).
"""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from local.events import http_api_event, query_parameters, request_context
from local.template import find_route, functions

Authenticate = Callable[[Mapping[str, str]], Mapping[str, Any] | None]
# Runs a function's real `lambda_handler` on an event (`local.runtime`: in this process, or in
# an execution environment of the function).
Invoke = Callable[[str, dict[str, Any]], Any]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_FUNCTION_URL_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _problem(status: int, code: str, detail: str) -> tuple[int, dict[str, str], bytes]:
    body = {
        "status": status,
        "code": code,
        "title": _REASONS.get(status, "Error"),
        "detail": detail,
    }
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()


def content_length(environ: Mapping[str, Any]) -> int:
    """The request's `Content-Length` (0 without one); ValueError when it is not a number of
    bytes (wsgiref hands the header over as it came)."""
    text = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not text.isdigit():
        raise ValueError(f"Content-Length {text[:20]!r} is not a number of bytes")
    return int(text)


def _request(environ: Mapping[str, Any], limit: int) -> tuple[dict[str, str], bytes | None]:
    """The request's headers (lower-case names) and body; no body when it is over `limit`
    (ValueError: `content_length`)."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    length = content_length(environ)
    if length > limit:
        return headers, None
    return headers, environ["wsgi.input"].read(length) if length else b""


class _Wsgi:
    """WSGI on top of `handle(environ) -> (status, headers, body)`."""

    def handle(self, environ: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def __call__(
        self, environ: Mapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        status, headers, body = self.handle(environ)
        start_response(
            f"{status} {_REASONS.get(status, 'Status')}",
            [*headers.items(), ("Content-Length", str(len(body)))],
        )
        return [body]


class Gateway(_Wsgi):
    """WSGI application serving every HttpApi route of template.yaml."""

    def __init__(self, authenticate: Authenticate, invoke: Invoke) -> None:
        self.authenticate = authenticate
        self.invoke = invoke

    def handle(self, environ: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
        method = str(environ["REQUEST_METHOD"]).upper()
        path = str(environ.get("PATH_INFO") or "/")
        try:
            headers, raw = _request(environ, MAX_BODY_BYTES)
        except ValueError as error:
            return _problem(400, "bad_request", str(error))
        if raw is None:
            return _problem(413, "too_large", "The request body is over 10 MB.")
        found = find_route(method, path)
        if found is None:
            return _problem(404, "not_found", "There is no such route.")
        route, params = found
        claims = self.authenticate(headers)
        if claims is None:
            # API Gateway's JWT authorizer answers before any function runs.
            return _problem(401, "unauthorized", "A valid bearer token is required.")
        try:
            text = raw.decode("utf-8") if raw else None
        except UnicodeDecodeError:
            return _problem(400, "malformed_json", "The request body is not UTF-8 JSON.")
        event = http_api_event(
            method,
            route.path,
            path,
            path_params=params,
            raw_query=str(environ.get("QUERY_STRING") or ""),
            headers=headers,
            body=text,
            claims=claims,
        )
        try:
            response = self.invoke(route.function, event)
        except Exception:
            # API Gateway answers 500 when the integration fails; the traceback is for the log.
            traceback.print_exc()
            return _problem(500, "internal_error", f"{route.function} raised: see the stack's log.")
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        out_headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        return int(response.get("statusCode", 200)), out_headers, data


# ---------------------------------------------------------------- function URLs

_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded")


def function_url_functions() -> list[str]:
    """Logical ids of the functions with a `FunctionUrlConfig`, in template order."""
    return [
        logical_id
        for logical_id, function in functions().items()
        if function.properties.get("FunctionUrlConfig")
    ]


def function_url_event(
    method: str, path: str, raw_query: str, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """What a Lambda function URL hands its function (payload 2.0): the raw body, as text when
    its content type is textual and base64 otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").lower()
    textual = any(kind in content_type for kind in _TEXT_TYPES)
    text: str | None = None
    if body:
        try:
            text = body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            text = None
    encoded = bool(body) and text is None
    query = query_parameters(raw_query)
    url_id = "local"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "requestContext": request_context(
            method,
            path,
            lowered,
            account_id="anonymous",
            api_id=url_id,
            domain_name=f"{url_id}.lambda-url.us-east-1.on.aws",
            route_key="$default",
        ),
        "body": base64.b64encode(body).decode() if encoded else text,
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = query
    return event


def function_url_response(response: Any) -> tuple[int, dict[str, str], bytes]:
    """A function's answer as its URL returns it: a dict with `statusCode` is the response, and
    anything else is a 200 JSON body (Lambda's payload 2.0 inference)."""
    if not isinstance(response, dict) or "statusCode" not in response:
        return 200, {"Content-Type": "application/json"}, json.dumps(response).encode()
    payload = response.get("body") or ""
    data = base64.b64decode(payload) if response.get("isBase64Encoded") else str(payload).encode()
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    return int(response["statusCode"]), headers, data


class FunctionUrl(_Wsgi):
    """WSGI application serving one function's URL (AuthType NONE): every method and path goes
    to the function with the raw body. `observe(event, status)` sees each invocation done."""

    def __init__(
        self,
        logical_id: str,
        invoke: Invoke,
        observe: Callable[[dict[str, Any], int], None] | None = None,
    ) -> None:
        self.logical_id = logical_id
        self.invoke = invoke
        self.observe = observe

    def handle(self, environ: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
        try:
            headers, raw = _request(environ, MAX_FUNCTION_URL_BODY_BYTES)
        except ValueError:
            return 400, {"Content-Type": "application/json"}, b'{"message":"Bad Request"}'
        if raw is None:
            return 413, {"Content-Type": "application/json"}, b'{"message":"Request too large"}'
        event = function_url_event(
            str(environ["REQUEST_METHOD"]).upper(),
            str(environ.get("PATH_INFO") or "/"),
            str(environ.get("QUERY_STRING") or ""),
            headers,
            raw,
        )
        try:
            answer = function_url_response(self.invoke(self.logical_id, event))
        except Exception:
            traceback.print_exc()
            answer = (
                502,
                {"Content-Type": "application/json"},
                b'{"message":"Internal Server Error"}',
            )
        if self.observe is not None:
            self.observe(event, answer[0])
        return answer
