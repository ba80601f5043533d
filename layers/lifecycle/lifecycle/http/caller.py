"""Who is calling: the JWT authorizer's claims in an API Gateway v2 event, parsed robustly."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from lifecycle.rules.errors import BillingAccessRequired, DomainError
from lifecycle.rules.model import Actor, user

BILLING_GROUP = "billing"
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


# Set when an answer was produced with billing access: a stored answer is replayed only to a
# caller who has it still (api.md, idempotency).
billing_used: ContextVar[bool] = ContextVar("billing_used", default=False)


class Unauthorized(DomainError):
    code = "unauthorized"
    title = "Unauthorized"


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    user_id: str
    billing_access: bool

    @property
    def actor(self) -> Actor:
        return user(self.user_id)

    def require_billing(self) -> None:
        if not self.billing_access:
            raise BillingAccessRequired(
                "This action moves money or changes the subscription: ask a user with billing"
                " access."
            )
        billing_used.set(True)


def parse_groups(value: Any) -> frozenset[str]:
    """`cognito:groups` as a list, a JSON list string, or API Gateway's `[billing admin]`."""
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple):
        return frozenset(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return frozenset(str(v).strip() for v in parsed if str(v).strip())
        text = text[1:-1]
    return frozenset(
        part.strip().strip("'\"") for part in re.split(r"[,\s]+", text) if part.strip().strip("'\"")
    )


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get(
        "claims"
    ) or {}
    account_id = claims.get("custom:account_id")
    sub = claims.get("sub")
    if not isinstance(account_id, str) or not _ACCOUNT_ID.match(account_id) or not sub:
        raise Unauthorized("A valid bearer token for an account user is required.")
    groups = parse_groups(claims.get("cognito:groups"))
    return Caller(account_id=account_id, user_id=str(sub), billing_access=BILLING_GROUP in groups)
