"""The dashboard API's Lambda entry point around a Powertools resolver: problems, the caller,
logs with the correlation id, metrics, and `Idempotency-Key` replay for POST and PUT."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths

from lifecycle.http import bodies, snapstart
from lifecycle.http.caller import caller_from_event
from lifecycle.http.problems import (
    PROBLEM_CONTENT_TYPE,
    RETRYABLE_CODES,
    from_domain_error,
    problem,
    problem_response,
    transient_problem,
)
from lifecycle.ids import is_issued
from lifecycle.observability import logger, metrics
from lifecycle.rules.errors import DomainError
from lifecycle.settings import settings
from lifecycle.usecases.caller import Caller, billing_used

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
IDEMPOTENCY_HEADER = "idempotency-key"
# Keyed by the account, the user and the key (a key belongs to the user who sent it); none (so
# no replay) without the header or for a GET.
_KEY_PATH = (
    'headers."idempotency-key" && requestContext.http.method != `"GET"` && '
    '[requestContext.authorizer.jwt.claims."custom:account_id", '
    "requestContext.authorizer.jwt.claims.sub, "
    'headers."idempotency-key"]'
)
# Marks a stored answer that was produced with billing access (stripped before it leaves).
_BILLING_MARK = "x-answered-with-billing-access"
# The same key with another path or body is a reuse, refused with 422.
_PAYLOAD_PATH = "[requestContext.http.method, rawPath, body]"


def resolver() -> APIGatewayHttpResolver:
    """A resolver whose every error is a problem document, and whose bodies are parsed with the
    API's limits (`bodies.loads`; `_body_problem` has already refused what breaks them)."""
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=bodies.loads)

    @app.exception_handler(DomainError)
    def domain_error(error: DomainError) -> Response[Any]:
        return _problem(from_domain_error(error))

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_media_type(_: RequestUnsupportedContentType) -> Response[Any]:
        # Not a RequestValidationError: without this, the handler for Exception would take it.
        return _problem(_UNSUPPORTED_MEDIA_TYPE)

    @app.exception_handler(RequestValidationError)
    def validation_error(error: RequestValidationError) -> Response[Any]:
        errors = list(error.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _problem(_MALFORMED_JSON)
        if any(e.get("type") == "unsupported_content_type" for e in errors):
            return _problem(_UNSUPPORTED_MEDIA_TYPE)
        fields = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in errors
        ]
        return _problem(
            problem(
                "validation_error",
                "The request does not match the schema: see `errors` for each field.",
                errors=fields,
            )
        )

    @app.not_found
    def not_found(_: Exception) -> Response[Any]:
        return _problem(problem("not_found", "There is no such route."))

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[Any]:
        transient = transient_problem(error)
        if transient is not None:
            logger.warning("dependency unavailable", extra={"error": type(error).__name__})
            return _problem(transient, retry_after=2)
        logger.exception("unexpected error")
        return _problem(problem("internal_error", "Something went wrong on our side. Retry later."))

    return app


_MALFORMED_JSON = problem(
    "malformed_json",
    "The request body is not JSON the API accepts: valid JSON, at most"
    f" {bodies.MAX_DEPTH} levels of nesting, no NaN or Infinity, numbers within a double's range.",
)
_UNSUPPORTED_MEDIA_TYPE = problem(
    "unsupported_media_type", "Send the body as application/json (Content-Type header)."
)
# The largest body any route takes is a settings document (64 KiB, compact): a body 16 times
# that is refused unread, so that parsing and validation stay far inside the function's timeout.
MAX_BODY_BYTES = 1024 * 1024


def _problem(body: dict[str, Any], retry_after: int | None = None) -> Response[Any]:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Response(
        status_code=int(body["status"]),
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body),
        headers=headers,
    )


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    return caller_from_event(app.current_event.raw_event)


def idempotency_key(app: APIGatewayHttpResolver) -> str | None:
    return app.current_event.headers.get(IDEMPOTENCY_HEADER)


class _Unreplayable(Exception):
    """Raised inside the idempotent call so that a retryable answer is not stored."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("retryable response")
        self.response = response


def _header_problem(event: dict[str, Any]) -> dict[str, Any] | None:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        return problem(
            "bad_request",
            "Idempotency-Key must be 1 to 255 printable characters.",
            field="Idempotency-Key",
        )
    event["headers"] = {**(event.get("headers") or {}), IDEMPOTENCY_HEADER: key}
    return None


def _path_problem(event: dict[str, Any]) -> dict[str, Any] | None:
    """Every path parameter is an id (`{id}`), and one not of a form the system issues is
    unknown (api.md, Input limits): 404 before anything runs. Read from API Gateway's
    `pathParameters`, the segment as sent: Powertools' route pattern ends in `$`, which would
    match `int_1` in a path ending `int_1\\n`. The use case checks the id's own prefix."""
    for value in (event.get("pathParameters") or {}).values():
        if not is_issued(value):
            return problem("not_found", "There is no such resource in this account.")
    return None


def _body_problem(event: dict[str, Any]) -> dict[str, Any] | None:
    """A body is JSON within api.md's limits, or the request is refused before anything runs
    (and before its Idempotency-Key is recorded): 413 over MAX_BODY_BYTES, 415 when its media
    type is not application/json, 400 when it is not JSON the API accepts. A JSON media type in
    another spelling (`APPLICATION/JSON; charset=utf-8`) is handed on as `application/json`,
    the spelling Powertools' body parser expects."""
    body = event.get("body")
    if not body:
        return None
    headers = event.get("headers") or {}
    names = [name for name in headers if name.lower() == "content-type"]
    if len(names) != 1 or not bodies.is_json_media_type(headers[names[0]]):
        return _UNSUPPORTED_MEDIA_TYPE
    raw: str | bytes = body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _MALFORMED_JSON
    if len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw) > MAX_BODY_BYTES:
        return problem(
            "too_large",
            f"The request body is over {MAX_BODY_BYTES // 1024} KiB.",
            limit_bytes=MAX_BODY_BYTES,
        )
    try:
        bodies.loads(raw)
    except ValueError:  # json.JSONDecodeError and bodies.MalformedJson among them
        return _MALFORMED_JSON
    del headers[names[0]]
    headers["content-type"] = bodies.JSON_MEDIA_TYPE
    return None


@functools.cache
def _persistence() -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # noqa: PLC0415

    from lifecycle.store.repository import default_client  # noqa: PLC0415

    return DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table_name, boto3_client=default_client()
    )


def api(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The `lambda_handler` of an API function. The idempotency utility (and the DynamoDB
    client under it) is loaded by the first request that carries an `Idempotency-Key`, not at
    import: GETs and keyless requests never pay for it on a cold start."""

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = app.resolve(event, context)
        return response

    @functools.cache
    def replayable() -> tuple[Any, Callable[..., dict[str, Any]]]:
        from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
            IdempotencyConfig,
            idempotent_function,
        )

        config = IdempotencyConfig(
            event_key_jmespath=_KEY_PATH,
            payload_validation_jmespath=_PAYLOAD_PATH,
            raise_on_no_idempotency_key=False,
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        )

        @idempotent_function(
            data_keyword_argument="event", config=config, persistence_store=_persistence()
        )
        def run(*, event: dict[str, Any], context: Any) -> dict[str, Any]:
            billing_used.set(False)
            response = resolve(event, context)
            if _is_retryable(response):
                raise _Unreplayable(response)
            if billing_used.get():
                response = {
                    **response,
                    "headers": {**(response.get("headers") or {}), _BILLING_MARK: "true"},
                }
            return response

        return config, run

    def warm() -> None:
        snapstart.warm_request(app)
        replayable()

    # With SnapStart (ApiSnapStart), the snapshot holds the resolver warmed and the clients.
    snapstart.register(warm)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        bad_request = _header_problem(event) or _path_problem(event) or _body_problem(event)
        if bad_request is not None:
            return problem_response(bad_request)
        method = (event.get("requestContext", {}).get("http", {}) or {}).get("method", "GET")
        if method == "GET" or IDEMPOTENCY_HEADER not in event.get("headers", {}):
            return resolve(event, context)
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        config, run = replayable()
        config.register_lambda_context(context)
        try:
            return _authorized_replay(run(event=event, context=context), event)
        except _Unreplayable as unreplayable:
            return unreplayable.response
        except IdempotencyValidationError:
            return problem_response(
                problem(
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with another request. Use a new key.",
                )
            )
        except IdempotencyAlreadyInProgressError:
            return problem_response(
                problem("conflict", "A request with this Idempotency-Key is still in progress."),
                headers={"Retry-After": "1"},
            )

    return lambda_handler


def _authorized_replay(response: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The answer without its billing mark; a 403 instead when it was produced with billing
    access and the caller (replaying their own key) no longer has it."""
    headers = dict(response.get("headers") or {})
    if headers.pop(_BILLING_MARK, None) is None:
        return response
    try:
        caller = caller_from_event(event)
        caller.require_billing()
    except DomainError as error:
        return problem_response(from_domain_error(error))
    return {**response, "headers": headers}


def _is_retryable(response: dict[str, Any]) -> bool:
    status = int(response.get("statusCode", 200))
    if status >= 500:
        return True
    if status == 409:
        try:
            return json.loads(response.get("body") or "{}").get("code") in RETRYABLE_CODES
        except ValueError:
            return False
    return False
