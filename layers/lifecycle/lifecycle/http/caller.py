"""Who is calling: the JWT authorizer's claims in an API Gateway v2 event, read strictly
(api.md, Input limits: the whole account id pattern, the exact group name)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lifecycle.ids import is_account_id
from lifecycle.rules.errors import Unauthorized
from lifecycle.usecases.caller import Caller

BILLING_GROUP = "billing"


def parse_groups(value: Any) -> frozenset[str]:
    """The group names of a `cognito:groups` claim, each exactly as Cognito spells it.

    The claim reaches a function in one of three shapes:

    - a list of names: Cognito's own token, a REST API authorizer, a direct invocation;
    - a JSON array in a string (`'["billing","admin"]'`): a claim copied as JSON text, e.g. by a
      pre-token-generation trigger, which can only add string claims;
    - an HTTP API JWT authorizer's rendering of an array: every claim becomes a string, and a
      list becomes its items joined by single spaces inside brackets, unquoted: `[billing admin]`.

    The last one loses the boundaries between names, and they are recovered from a rule of
    Cognito's: a group name matches `[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+` (CreateGroup, GroupName),
    so it never holds a space or any other separator or control character, while it may hold
    punctuation. A space therefore always separates two names, and nothing else does: `,`, `'`
    or `"` are part of a name (`[x,billing]` is the one group `x,billing`). Only the outermost
    bracket pair is the rendering's; brackets inside belong to the names.

    A string that parses as a JSON array of strings is read as JSON. The bracketed rendering of
    names could be valid JSON only if every name held quotes, which no group of this system has.
    Any other string is one group name. Names are compared as they are: never trimmed or
    lower-cased, so `billing `, `Billing` and `billing,` are not `billing`.
    """
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str) and item)
    if not isinstance(value, str) or not value:
        return frozenset()
    if value.startswith("[") and value.endswith("]"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
            return frozenset(item for item in parsed if item)
        return frozenset(name for name in value[1:-1].split(" ") if name)
    return frozenset({value})


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get(
        "claims"
    ) or {}
    account_id = claims.get("custom:account_id")
    sub = claims.get("sub")
    if not is_account_id(account_id) or not isinstance(sub, str) or not sub:
        raise Unauthorized("A valid bearer token for an account user is required.")
    groups = parse_groups(claims.get("cognito:groups"))
    return Caller(account_id=account_id, user_id=sub, billing_access=BILLING_GROUP in groups)
