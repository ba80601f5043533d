"""Errors to `application/problem+json`: the one place a domain code becomes an HTTP status."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from lifecycle.rules.errors import DomainError
from lifecycle.usecases.views import BulkItemResult, BulkResult, IntegrationView, ProblemView

STATUS_BY_CODE: Mapping[str, int] = {
    "bad_request": 400,
    "malformed_json": 400,
    "invalid_cursor": 400,
    "unauthorized": 401,
    "payment_failed": 402,
    "billing_access_required": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "invalid_transition": 409,
    "account_not_active": 409,
    "quote_required": 409,
    "quote_expired": 409,
    "quote_stale": 409,
    "conflict": 409,
    "last_billing_user": 409,
    "user_exists": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "idempotency_key_reused": 422,
    "payment_pending": 503,
    "service_unavailable": 503,
    "internal_error": 500,
}
TITLES: Mapping[str, str] = {
    "malformed_json": "Malformed JSON",
    "invalid_cursor": "Invalid cursor",
    "unauthorized": "Unauthorized",
    "method_not_allowed": "Method not allowed",
    "unsupported_media_type": "Unsupported media type",
    "idempotency_key_reused": "Idempotency key reused",
    "internal_error": "Internal error",
    "service_unavailable": "Service unavailable",
}
PROBLEM_CONTENT_TYPE = "application/problem+json"
# Codes whose answer must not be replayed for the same Idempotency-Key: trying again may work.
RETRYABLE_CODES = frozenset(
    {"conflict", "payment_pending", "service_unavailable", "internal_error"}
)
# DynamoDB answers that mean "not now" once botocore's own retries are spent.
_TRANSIENT_AWS_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


def problem(code: str, detail: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    status = STATUS_BY_CODE[code]
    body: dict[str, Any] = {
        "status": status,
        "code": code,
        "title": title or TITLES.get(code, code.replace("_", " ").capitalize()),
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if k not in body})
    return body


def from_domain_error(error: DomainError) -> dict[str, Any]:
    return problem(error.code, error.detail, error.title, **error.extra)


def bulk_result(outcomes: Sequence[tuple[str, IntegrationView | DomainError]]) -> BulkResult:
    """The bulk route's answer: each id's integration, or its refusal as a problem document."""
    return BulkResult(
        results=[
            BulkItemResult(id=item, ok=True, integration=outcome)
            if isinstance(outcome, IntegrationView)
            else BulkItemResult(id=item, ok=False, error=ProblemView(**from_domain_error(outcome)))
            for item, outcome in outcomes
        ]
    )


def problem_response(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A Lambda proxy response carrying a problem document."""
    return {
        "statusCode": int(body["status"]),
        "headers": {"Content-Type": PROBLEM_CONTENT_TYPE, **(headers or {})},
        "body": json.dumps(body),
    }


def transient_problem(error: Exception) -> dict[str, Any] | None:
    """A retryable 503 for an outage of a dependency (DynamoDB throttling or unreachable, the
    payment provider unreachable), or None for anything else (a bug: 500)."""
    from lifecycle.directory.port import DirectoryUnavailable  # noqa: PLC0415
    from lifecycle.payments.port import PaymentsUnavailable  # noqa: PLC0415

    if isinstance(error, PaymentsUnavailable):
        return problem(
            "payment_pending",
            "The payment provider is unreachable. Nothing was changed; retry in a moment.",
        )
    if isinstance(error, DirectoryUnavailable):
        return problem(
            "service_unavailable",
            "The user directory is busy. Retry shortly: a retry finishes what this one began.",
        )
    response = getattr(error, "response", None)
    code = ((response or {}).get("Error") or {}).get("Code") if isinstance(response, dict) else None
    reasons = {
        reason.get("Code")
        for reason in ((response or {}).get("CancellationReasons") or [])
        if isinstance(reason, dict)
    }
    transient = code in _TRANSIENT_AWS_CODES or (
        code == "TransactionCanceledException"
        and bool(reasons & {"ThrottlingError", "TransactionConflict"})
    )
    if transient or type(error).__name__ in {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
    }:
        return problem(
            "service_unavailable", "A dependency is busy. Nothing was changed; retry shortly."
        )
    return None
