"""The local stack's HTTP servers: the API (the gateway, `/_local/*`, Swagger UI) and the
function URL, each a threaded WSGI server on 127.0.0.1.

| path on `API_PORT` | what |
| --- | --- |
| `/v1/...` | `local.gateway.Gateway`: template.yaml's routes, the JWT authorizer, CORS |
| `/_local/...` | the local-only routes of shared/spec/local.md (never deployed) |
| `/docs`, `/openapi.json` | Swagger UI (npm `swagger-ui-dist` in `.tools/`), the OpenAPI document |
| `/`, `/<file>` | the web dashboard: `dashboard/index.html` and its files, by plain file name |

On `WEBHOOK_PORT` every request goes to the function with a `FunctionUrlConfig` (the Stripe
webhook) as a Lambda function URL event.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lifecycle.clock import Clock
from lifecycle.http import bodies
from lifecycle.ids import ACCOUNT_ID_PATTERN, is_account_id, is_issued
from lifecycle.rules.calendar import format_instant, parse_instant
from lifecycle.rules.errors import Conflict
from local.accounts import Accounts
from local.auth import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, Issuer
from local.clock import Advance
from local.gateway import FunctionUrl, Gateway, Invoke, content_length, function_url_functions
from local.openapi import document
from local.template import ROOT, evaluate, resources

Answer = tuple[int, dict[str, str], bytes]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
SWAGGER_UI_PACKAGE = "swagger-ui-dist@5.35.0"
TOOLS = ROOT / ".tools"
# The tokens' account id is the one the API accepts (api.md: the whole pattern).
_ACCOUNT_ID = rf"^{ACCOUNT_ID_PATTERN}$"
_ASSET = re.compile(r"^[A-Za-z0-9_.\-]+$")
_CARD_PATH = re.compile(r"^/_local/accounts/(?P<account_id>[^/]+)/card$")
# An address as the users directory would accept it (one @, a dot in the domain, no spaces).
_EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}$"
MAX_LOCAL_BODY_BYTES = 64 * 1024


# ---------------------------------------------------------------- servers


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # listen()'s backlog: connections the kernel holds until the accept loop takes them. The
    # default of 5 reset most of 200 simultaneous connections (a dashboard's burst, a load
    # test); the kernel caps it at net.core.somaxconn (4096 on current kernels).
    request_queue_size = 1024


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """The API logs its own lines (`_logged`)."""


class Server:
    """One threaded WSGI server, serving from a daemon thread until `stop()`."""

    def __init__(self, host: str, port: int, app: Callable[..., Iterable[bytes]]) -> None:
        self.httpd = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def start(self) -> Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serve(host: str, port: int, app: Callable[..., Iterable[bytes]]) -> Server:
    return Server(host, port, app).start()


def _respond(start_response: StartResponse, answer: Answer) -> Iterable[bytes]:
    status, headers, body = answer
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    start_response(f"{status} {reason}", [*headers.items(), ("Content-Length", str(len(body)))])
    return [body]


def _logged(
    app: Callable[[Mapping[str, Any]], Answer], say: Callable[[str], None]
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app around `app`, saying one line per request (never the headers: tokens)."""

    def wsgi(environ: Mapping[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        began = time.monotonic()
        answer = app(environ)
        took = (time.monotonic() - began) * 1000
        say(
            f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '/')} {answer[0]} {took:.0f} ms"
        )
        return _respond(start_response, answer)

    return wsgi


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


def _problem(status: int, code: str, detail: str, **extra: Any) -> Answer:
    body = {"status": status, "code": code, "title": HTTPStatus(status).phrase, "detail": detail}
    return (
        status,
        {"Content-Type": "application/problem+json"},
        json.dumps({**body, **extra}).encode(),
    )


# ---------------------------------------------------------------- the API port


class LocalApi(Protocol):
    """What the API port serves besides the gateway: the stack (`local.stack.Stack`)."""

    @property
    def issuer(self) -> Issuer: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def clock(self) -> Clock: ...

    def say(self, line: str) -> None: ...

    def health(self) -> dict[str, str]: ...

    def advance(self, target: datetime) -> Advance: ...

    def events(self) -> list[dict[str, Any]]: ...

    def emails(self) -> list[dict[str, Any]]: ...


def api_app(stack: LocalApi, port: int, invoke: Invoke) -> Callable[..., Iterable[bytes]]:
    gateway = Gateway(stack.issuer.authenticate, invoke)
    local = LocalRoutes(stack)
    cors = Cors.from_template()
    own = LocalOrigin(port)

    def route(environ: Mapping[str, Any]) -> Answer:
        path = str(environ.get("PATH_INFO") or "/")
        method = str(environ["REQUEST_METHOD"]).upper()
        if path == "/_local" or path.startswith("/_local/"):
            refused = own.refusal(environ)
            return refused if refused is not None else local.handle(method, path, environ)
        if path in ("/docs", "/docs/") or path.startswith("/docs/"):
            return docs(path)
        if path == "/openapi.json":
            return _json(200, openapi_document())
        if method == "GET":
            page = dashboard(path)
            if page is not None:
                return page
        preflight = cors.preflight(method, environ)
        if preflight is not None:
            return preflight
        status, headers, body = gateway.handle(environ)
        return status, {**headers, **cors.headers(environ)}, body

    return _logged(route, stack.say)


class Cors:
    """The HTTP API's CorsConfiguration (template.yaml), answered as API Gateway does: the
    preflight before any authorizer, the allow-origin header on every answer."""

    def __init__(
        self, origins: list[str], methods: list[str], headers: list[str], max_age: int
    ) -> None:
        self.origins = origins
        self.methods = methods
        self.allow_headers = headers
        self.max_age = max_age

    @classmethod
    def from_template(cls) -> Cors:
        for resource in resources("AWS::Serverless::HttpApi").values():
            # As deployed with the parameters' defaults (DashboardOrigin's "*").
            config = evaluate(resource["Properties"].get("CorsConfiguration"))
            if config:
                return cls(
                    [str(o) for o in config.get("AllowOrigins", [])],
                    [str(m) for m in config.get("AllowMethods", [])],
                    [str(h) for h in config.get("AllowHeaders", [])],
                    int(config.get("MaxAge", 0)),
                )
        return cls([], [], [], 0)

    def _origin(self, environ: Mapping[str, Any]) -> str | None:
        origin = environ.get("HTTP_ORIGIN")
        if not origin or not self.origins:
            return None
        return "*" if "*" in self.origins else (origin if origin in self.origins else None)

    def preflight(self, method: str, environ: Mapping[str, Any]) -> Answer | None:
        if method != "OPTIONS" or not environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return None
        origin = self._origin(environ)
        if origin is None:
            return 204, {}, b""
        return (
            204,
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ",".join(self.methods),
                "Access-Control-Allow-Headers": ",".join(self.allow_headers),
                "Access-Control-Max-Age": str(self.max_age),
            },
            b"",
        )

    def headers(self, environ: Mapping[str, Any]) -> dict[str, str]:
        origin = self._origin(environ)
        return {"Access-Control-Allow-Origin": origin} if origin else {}


# ---------------------------------------------------------------- /_local


class LocalOrigin:
    """Who may call `/_local/*`: programs on this machine and the stack's own pages.

    The routes need no token (they mint tokens and move the clock), so listening on 127.0.0.1
    is not enough: any web page the developer opens can send a "simple" cross-origin POST
    (`text/plain`, no preflight) to 127.0.0.1, and a DNS-rebound name reaches it with its own
    `Host`. A browser always names the page's origin in `Origin` on such a POST and the name
    it dialled in `Host`, so a request is refused (403) when its `Host` is not this server's
    (127.0.0.1 or localhost, with its port) or when it carries an `Origin` that is not the
    server's own. curl and the tests send no `Origin`: they are served.
    """

    def __init__(self, port: int) -> None:
        hosts = [f"127.0.0.1:{port}", f"localhost:{port}"]
        self.hosts = frozenset(hosts)
        self.origins = frozenset(f"http://{host}" for host in hosts)

    def refusal(self, environ: Mapping[str, Any]) -> Answer | None:
        host = str(environ.get("HTTP_HOST") or "").lower()
        if host not in self.hosts:
            return _problem(
                403,
                "forbidden",
                "The local routes answer only requests addressed to 127.0.0.1 or localhost"
                " with this server's port.",
            )
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and str(origin).lower() not in self.origins:
            return _problem(
                403,
                "forbidden",
                "The local routes refuse cross-origin requests: call them from a shell, a test"
                " or the dashboard served by this stack.",
            )
        return None


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str | None = Field(default=None, pattern=_ACCOUNT_ID)
    email: str | None = Field(default=None, max_length=254, pattern=_EMAIL)
    card: Literal["ok", "declined"]


class CardSwap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: Literal["ok", "declined"]


class TokenRequest(BaseModel):
    """`{"account_id", "user_id"?, "billing_access"?}`: claims as given; or `{"user_id"}` alone,
    an issued user id (`usr_...`): the claims the user pool would put in that user's token."""

    model_config = ConfigDict(extra="forbid")
    account_id: str | None = Field(default=None, pattern=_ACCOUNT_ID)
    user_id: str | None = Field(default=None, min_length=1, max_length=128)
    billing_access: bool | None = None
    expires_in: int = Field(default=DEFAULT_TTL_SECONDS, ge=1, le=MAX_TTL_SECONDS)

    @model_validator(mode="after")
    def account_or_user(self) -> TokenRequest:
        if self.account_id is None:
            if self.user_id is None or not is_issued(self.user_id, "usr"):
                raise ValueError("give account_id, or user_id alone (an issued usr_ id)")
            if self.billing_access is not None:
                raise ValueError("billing_access comes from the user pool for a user_id alone")
        return self


class SignUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class ClockMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    advance_seconds: int | None = Field(default=None, ge=0, le=10 * 366 * 86_400)
    to: str | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> ClockMove:
        if (self.advance_seconds is None) == (self.to is None):
            raise ValueError("give exactly one of advance_seconds and to")
        if self.to is not None:
            parse_instant(self.to)  # ValueError: not RFC 3339
        return self


class LocalRoutes:
    """`/_local/*`: the stack's own routes (shared/spec/local.md). No token needed: the stack
    listens on 127.0.0.1 only, never in AWS, and `LocalOrigin` turns away browsers' requests
    from other pages."""

    def __init__(self, stack: LocalApi) -> None:
        self.stack = stack

    def handle(self, method: str, path: str, environ: Mapping[str, Any]) -> Answer:
        routes: dict[tuple[str, str], Callable[[Mapping[str, Any]], Answer]] = {
            ("GET", "/_local/health"): self.health,
            ("POST", "/_local/accounts"): self.create_account,
            ("POST", "/_local/signup"): self.sign_up,
            ("POST", "/_local/tokens"): self.token,
            ("GET", "/_local/clock"): self.clock,
            ("POST", "/_local/clock"): self.move_clock,
            ("GET", "/_local/events"): self.events,
            ("GET", "/_local/emails"): self.emails,
            ("GET", "/_local/.well-known/jwks.json"): self.jwks,
        }
        handler = routes.get((method, path))
        if handler is not None:
            return handler(environ)
        card = _CARD_PATH.match(path)
        if card and method == "PUT":
            return self.swap_card(environ, card.group("account_id"))
        known = {p for _, p in routes} | ({path} if card else set())
        if path in known:
            return _problem(405, "method_not_allowed", f"{method} is not served on {path}.")
        return _problem(404, "not_found", "There is no such local route.")

    def health(self, environ: Mapping[str, Any]) -> Answer:
        parts = self.stack.health()
        healthy = all(state == "ok" for state in parts.values())
        body = {"status": "ok" if healthy else "unavailable", "parts": parts}
        return _json(200 if healthy else 503, body)

    def create_account(self, environ: Mapping[str, Any]) -> Answer:
        body = _body(environ, NewAccount)
        if not isinstance(body, NewAccount):
            return body
        try:
            account = self.stack.accounts.create_account(body.account_id, body.email, body.card)
        except Conflict as error:
            return _problem(409, "conflict", str(error))
        return _json(
            201,
            {
                "account_id": account.account_id,
                "stripe_customer_id": account.stripe_customer_id,
                "card": body.card,
                "user_id": account.user_id,
                "token": account.token,
            },
        )

    def sign_up(self, environ: Mapping[str, Any]) -> Answer:
        body = _body(environ, SignUpRequest)
        if not isinstance(body, SignUpRequest):
            return body
        try:
            done = self.stack.accounts.sign_up(body.email.strip())
        except Conflict as error:
            return _problem(409, "conflict", str(error))
        return _json(
            201, {"account_id": done.account_id, "user_id": done.user_id, "token": done.token}
        )

    def swap_card(self, environ: Mapping[str, Any], account_id: str) -> Answer:
        body = _body(environ, CardSwap)
        if not isinstance(body, CardSwap):
            return body
        # An id of another form is no account, and never a key (DynamoDB's limits).
        if not is_account_id(account_id) or not self.stack.accounts.swap_card(
            account_id, body.card
        ):
            return _problem(404, "not_found", f"No account {account_id[:80]!r}.")
        return _json(200, {"account_id": account_id, "card": body.card})

    def emails(self, environ: Mapping[str, Any]) -> Answer:
        return _json(200, {"items": self.stack.emails()})

    def token(self, environ: Mapping[str, Any]) -> Answer:
        body = _body(environ, TokenRequest)
        if not isinstance(body, TokenRequest):
            return body
        if body.account_id is None:
            assert body.user_id is not None
            minted = self.stack.accounts.token_for_user(body.user_id, body.expires_in)
            if minted is None:
                return _problem(
                    404,
                    "not_found",
                    "No user with that id who can sign in (unknown, or removed).",
                )
            token, claims = minted
        else:
            token, claims = self.stack.issuer.mint(
                body.account_id,
                user_id=body.user_id,
                billing_access=bool(body.billing_access),
                expires_in=body.expires_in,
            )
        return _json(
            201,
            {
                "token": token,
                "token_type": "Bearer",
                "expires_in": body.expires_in,
                "claims": claims,
            },
        )

    def clock(self, environ: Mapping[str, Any]) -> Answer:
        return _json(200, {"now": format_instant(self.stack.clock.now())})

    def move_clock(self, environ: Mapping[str, Any]) -> Answer:
        body = _body(environ, ClockMove)
        if not isinstance(body, ClockMove):
            return body
        now = self.stack.clock.now()
        if body.to is not None:
            target = parse_instant(body.to)
        else:
            target = now + timedelta(seconds=body.advance_seconds or 0)
        if target < now:
            return _problem(
                400,
                "bad_request",
                f"The business clock only moves forward: it is {format_instant(now)}.",
            )
        try:
            advance = self.stack.advance(target)
        except ValueError as error:  # moved on meanwhile by another request
            return _problem(400, "bad_request", str(error))
        return _json(200, advance.view())

    def events(self, environ: Mapping[str, Any]) -> Answer:
        return _json(200, {"items": self.stack.events()})

    def jwks(self, environ: Mapping[str, Any]) -> Answer:
        return _json(200, self.stack.issuer.jwks())


def _body[M: BaseModel](environ: Mapping[str, Any], model: type[M]) -> M | Answer:
    """The request's JSON body as `model`, read with the API's limits (lifecycle.http.bodies:
    nesting, numbers, Unicode), or the problem answer. No media type is required: curl's `-d`
    sends its form type, and the README's examples use it."""
    try:
        length = content_length(environ)
    except ValueError as error:
        return _problem(400, "bad_request", str(error))
    if length > MAX_LOCAL_BODY_BYTES:
        return _problem(413, "too_large", "A local route's body is at most 64 KiB.")
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        data = bodies.loads(raw or b"{}")
    except ValueError:  # json.JSONDecodeError and the limits' MalformedJson
        return _problem(400, "malformed_json", "The request body is not valid JSON.")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        fields = [
            {"loc": [str(part) for part in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]
        return _problem(
            422,
            "validation_error",
            "The request does not match the schema: see `errors` for each field.",
            errors=fields,
        )


# ---------------------------------------------------------------- /docs


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, built on its first request (it imports every API function)."""
    found = document()
    found["info"]["description"] = (
        "The local stack. Get a token with `POST /_local/tokens`"
        ' (`{"account_id": "acc_demo", "billing_access": true}`), then Authorize.'
    )
    return found


def swagger_ui_dir(tools: Path = TOOLS) -> Path | None:
    """The swagger-ui-dist assets, installing the npm package into `.tools` if missing; None
    when they cannot be had (no npm)."""
    found = tools / "node_modules" / "swagger-ui-dist"
    if (found / "swagger-ui-bundle.js").exists():
        return found
    npm = shutil.which("npm")
    if npm is None:
        return None
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(tools), SWAGGER_UI_PACKAGE],
        env={**os.environ, "SCARF_ANALYTICS": "false"},  # its @scarf/scarf reports installs
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr.decode(errors="replace"))
        return None
    return found if (found / "swagger-ui-bundle.js").exists() else None


_DOCS_PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Integration lifecycle and billing API (local)</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      persistAuthorization: true,
    });
  </script>
</body>
</html>
"""


@functools.cache
def _assets() -> Path | None:
    return swagger_ui_dir()


def docs(path: str) -> Answer:
    if path in ("/docs", "/docs/", "/docs/index.html"):
        return 200, {"Content-Type": "text/html; charset=utf-8"}, _DOCS_PAGE
    name = path.removeprefix("/docs/")
    assets = _assets()
    if assets is None:
        return _problem(503, "unavailable", "Swagger UI needs npm (package swagger-ui-dist).")
    file = assets / name
    if not _ASSET.match(name) or not file.is_file():
        return _problem(404, "not_found", "There is no such file.")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return 200, {"Content-Type": content_type, "Cache-Control": "max-age=3600"}, file.read_bytes()


# ---------------------------------------------------------------- the dashboard

DASHBOARD = ROOT / "dashboard"
# Plain file names only (no folder, no leading dot): nothing outside dashboard/ can be named.
_DASHBOARD_FILE = re.compile(r"^/(?P<name>[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)$")
_DASHBOARD_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# The page talks to the API (its own origin locally; config.js may name another) and loads
# nothing from anywhere else.
_DASHBOARD_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' https: http://127.0.0.1:* http://localhost:*;"
        " img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none';"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def dashboard(path: str, root: Path = DASHBOARD) -> Answer | None:
    """`/` is the dashboard's index.html, `/<name>.<ext>` one of its files of a known type;
    None for anything else (the caller's other routes, then the gateway's 404)."""
    if path == "/":
        path = "/index.html"
    found = _DASHBOARD_FILE.match(path)
    if found is None:
        return None
    name = found.group("name")
    content_type = _DASHBOARD_TYPES.get(Path(name).suffix)
    file = root / name
    if content_type is None or not file.is_file():
        return None
    return 200, {"Content-Type": content_type, **_DASHBOARD_HEADERS}, file.read_bytes()


# ---------------------------------------------------------------- the function URL port


def webhook_app(
    invoke: Invoke,
    observe: Callable[[dict[str, Any], int], None],
    say: Callable[[str], None],
) -> Callable[..., Iterable[bytes]]:
    """The function URL: every request to the one function with a `FunctionUrlConfig`;
    `observe(event, status)` sees each invocation done."""
    found = function_url_functions()
    if len(found) != 1:
        raise RuntimeError(f"WEBHOOK_PORT serves one function URL; template.yaml has {found}")
    (logical_id,) = found
    url = FunctionUrl(logical_id, invoke, observe=observe)
    return _logged(url.handle, say)
