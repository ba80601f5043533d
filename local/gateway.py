"""The local API Gateway: a WSGI app that routes as template.yaml says, authenticates the bearer
token, builds the HTTP API event and calls the real `lambda_handler` of the function.

The routing table is read from template.yaml (HttpApi events of each function): there is no
second one. Authentication is a callable (headers -> JWT claims or None) so that `make dev` can
verify real JWTs and tests can plug a fixed caller.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from local.events import LambdaContext, http_api_event
from local.template import resources

Authenticate = Callable[[Mapping[str, str]], Mapping[str, Any] | None]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
_REASONS = {
    200: "OK",
    201: "Created",
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
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # template form: /v1/integrations/{id}/freeze
    function: str  # logical id
    folder: str  # functions/<folder>/app.py
    pattern: re.Pattern[str]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(regex)


@functools.cache
def routes() -> tuple[Route, ...]:
    found = []
    for logical_id, resource in resources("AWS::Serverless::Function").items():
        properties = resource["Properties"]
        folder = properties["CodeUri"].rstrip("/").split("/")[-1]
        for event in (properties.get("Events") or {}).values():
            if event["Type"] != "HttpApi":
                continue
            method, path = event["Properties"]["Method"].upper(), event["Properties"]["Path"]
            found.append(Route(method, path, logical_id, folder, _pattern(path)))
    # Literal segments win over parameters (API Gateway's most-specific match).
    found.sort(key=lambda r: (r.path.count("{"), -len(r.path)))
    return tuple(found)


def route_table() -> dict[tuple[str, str], str]:
    """(METHOD, /path/{id}) -> function folder."""
    return {(r.method, r.path): r.folder for r in routes()}


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes():
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None


def _handler(folder: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    module = importlib.import_module(f"functions.{folder}.app")
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = module.lambda_handler
    return handler


def _problem(status: int, code: str, detail: str) -> tuple[int, dict[str, str], bytes]:
    body = {
        "status": status,
        "code": code,
        "title": _REASONS.get(status, "Error"),
        "detail": detail,
    }
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()


class Gateway:
    """WSGI application serving every HttpApi route of template.yaml."""

    def __init__(self, authenticate: Authenticate) -> None:
        self.authenticate = authenticate

    def __call__(
        self, environ: Mapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        status, headers, body = self.handle(environ)
        start_response(
            f"{status} {_REASONS.get(status, 'Status')}",
            [*headers.items(), ("Content-Length", str(len(body)))],
        )
        return [body]

    def handle(self, environ: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
        method = str(environ["REQUEST_METHOD"]).upper()
        path = str(environ.get("PATH_INFO") or "/")
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            return _problem(413, "too_large", "The request body is over 10 MB.")
        raw = environ["wsgi.input"].read(length) if length else b""
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
        response = _handler(route.folder)(event, LambdaContext(route.function))
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        out_headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        return int(response.get("statusCode", 200)), out_headers, data
