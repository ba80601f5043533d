"""A handler for a function whose routes have not landed yet: a problem response, nothing else."""

from __future__ import annotations

import json
from typing import Any


def not_implemented(event: dict[str, Any], context: object) -> dict[str, Any]:
    body = {
        "status": 501,
        "code": "not_implemented",
        "title": "Not implemented",
        "detail": "This function is declared in template.yaml but not implemented yet.",
    }
    return {
        "statusCode": 501,
        "headers": {"Content-Type": "application/problem+json"},
        "body": json.dumps(body),
    }
