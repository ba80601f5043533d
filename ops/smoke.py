"""A read-only smoke test of a deployed stack (`make smoke`; docs/operations.md#smoke-test).

It changes nothing: the account is read with a user's token, the same read without a token must
be refused by the authorizer, and a webhook without a valid Stripe signature must be refused
before anything is parsed. `make test` runs it against the local stack (tests/e2e/test_smoke.py).

    SMOKE_TOKEN=<a user's ID token> python -m ops.smoke --api-url URL --webhook-url URL

Standard library only: it runs with any Python 3.13, without the project's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

# Longer than the HTTP API's own 30 s, so a slow answer is reported as the API's, not ours.
TIMEOUT_SECONDS = 35.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


def request(
    method: str, url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None
) -> Answer:
    sent = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 - the operator's URL
    try:
        with urllib.request.urlopen(sent, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = text.decode(errors="replace")[:200]
    return Answer(status, body)


def checks(api_url: str, token: str, webhook_url: str) -> list[tuple[str, bool, str]]:
    """(what, passed, what was seen) for each check, in order."""
    api = api_url.rstrip("/")
    results = []

    account = request("GET", f"{api}/v1/account", headers={"Authorization": f"Bearer {token}"})
    fields = isinstance(account.body, dict) and {"id", "status"} <= set(account.body)
    seen = f"{account.status} {account.body.get('status') if fields else account.body}"
    results.append(
        (
            "GET /v1/account with the token: 200 and the account",
            account.status == 200 and fields,
            seen,
        )
    )

    anonymous = request("GET", f"{api}/v1/account")
    results.append(
        ("GET /v1/account without a token: 401", anonymous.status == 401, str(anonymous.status))
    )

    listed = request(
        "GET", f"{api}/v1/integrations?limit=1", headers={"Authorization": f"Bearer {token}"}
    )
    results.append(("GET /v1/integrations?limit=1: 200", listed.status == 200, str(listed.status)))

    # A plausible event, signed with nothing: refused, and nothing changes.
    unsigned = request(
        "POST",
        webhook_url,
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=0,v1=smoke"},
        data=json.dumps({"id": "evt_smoke", "type": "payment_intent.succeeded"}).encode(),
    )
    results.append(("POST webhook, unsigned: 400", unsigned.status == 400, str(unsigned.status)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True, help="the stack's ApiUrl output")
    parser.add_argument("--webhook-url", required=True, help="the stack's StripeWebhookUrl output")
    arguments = parser.parse_args(argv)
    # From the environment, not the command line: process lists and make's echo show arguments.
    token = os.environ.get("SMOKE_TOKEN", "")
    if not token:
        parser.error("set SMOKE_TOKEN to a user's ID token")
    results = checks(arguments.api_url, token, arguments.webhook_url)
    for what, passed, seen in results:
        print(f"{'ok  ' if passed else 'FAIL'} {what} (got {seen})")
    failed = [what for what, passed, _ in results if not passed]
    print("smoke test passed" if not failed else f"smoke test FAILED: {len(failed)} check(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
