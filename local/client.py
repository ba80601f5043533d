"""`make dev`'s stack driven from outside, as the end-to-end tests and `make bench-month` drive it:
`python -m local.dev` started as a child process on free ports with a fresh data folder (its own
process group, always stopped whole), a JSON client of its ports, and a tenant of it (an account
made through `/_local/accounts` and a billing user's token).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lifecycle.rules.calendar import format_instant, parse_instant
from local.processes import Child, free_port

# The environment as this module was first imported, before any test fixture changed it.
_ENVIRONMENT = dict(os.environ)
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
RENEWAL_SLOT = timedelta(minutes=15)
DELETION_SLOT = timedelta(hours=1)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


class Client:
    """JSON over HTTP to one base URL."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Response:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(  # noqa: S310 - the local stack's own ports
            f"{self.base}{path}", data=data, method=method, headers=sent
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310
                status, text, got = answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as error:
            status, text, got = error.code, error.read(), dict(error.headers)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return Response(status, parsed, got)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("PUT", path, body, **kwargs)


class LocalStack:
    """`python -m local.dev` in its own process group, with its output in `log`."""

    def __init__(self, data_dir: Path, **extra_env: str) -> None:
        self.data_dir = data_dir
        self.api_port = free_port()
        self.webhook_port = free_port()
        self.log = data_dir.parent / f"{data_dir.name}.log"
        env = {
            **_ENVIRONMENT,
            "API_PORT": str(self.api_port),
            "WEBHOOK_PORT": str(self.webhook_port),
            "DYNAMODB_PORT": str(free_port()),
            "STRIPE_PORT": str(free_port()),
            "LOCAL_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
        if env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL"):
            # A DynamoDB shared with other runs: tables of our own.
            suffix = uuid.uuid4().hex[:8]
            env.setdefault("TABLE_NAME", f"integrations-e2e-{suffix}")
            env.setdefault("IDEMPOTENCY_TABLE_NAME", f"idempotency-e2e-{suffix}")
        env.update(extra_env)
        self.env = env
        self.api = Client(f"http://127.0.0.1:{self.api_port}")
        self.webhook = Client(f"http://127.0.0.1:{self.webhook_port}")
        self.child = Child(
            "the local stack",
            [sys.executable, "-m", "local.dev"],
            self._healthy,
            env=env,
            log=self.log,
            new_session=True,  # its own process group: stopped whole
            timeout=START_TIMEOUT_SECONDS,
        )

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.child.process

    @property
    def started_in(self) -> float | None:
        return self.child.started_in

    def _healthy(self) -> bool:
        try:
            return self.api.get("/_local/health").status == 200
        except OSError:
            return False

    def start(self) -> LocalStack:
        self.child.start()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the stack, wait for it, then make sure nothing of its group is left."""
        return self.child.stop(STOP_TIMEOUT_SECONDS, sig)

    def tail(self, characters: int = 6000) -> str:
        return self.child.output(characters)


def group_members(group: int) -> list[int]:
    """Processes still in the process group `group`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == group:
                members.append(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return members


class Tenant:
    """One account of the stack and a token of a billing user of it. The account is made the
    one way there is (`POST /_local/accounts`): a sign-up through the real post-confirmation
    trigger, then the card added through the Checkout stand-in and Stripe's webhook."""

    def __init__(self, stack: LocalStack, card: str = "ok", billing: bool = True) -> None:
        self.stack = stack
        self.api = stack.api
        created = self.api.post("/_local/accounts", {"card": card})
        assert created.status == 201, created.body
        self.account_id: str = created.body["account_id"]
        self.customer_id: str = created.body["stripe_customer_id"]
        self.token = self.new_token(billing)

    def new_token(self, billing: bool = True) -> str:
        answer = self.api.post(
            "/_local/tokens", {"account_id": self.account_id, "billing_access": billing}
        )
        assert answer.status == 201, answer.body
        return str(answer.body["token"])

    def get(self, path: str) -> Response:
        return self.api.get(path, token=self.token)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.api.post(path, body, token=self.token, **kwargs)

    def create(
        self, plan: str = "standard", name: str = "Acme Supply to Shopify"
    ) -> dict[str, Any]:
        answer = self.post(
            "/v1/integrations",
            {"name": name, "supplier": "acme-supply", "channel": "shopify", "plan": plan},
        )
        assert answer.status == 201, answer.body
        return dict(answer.body)

    def integration(self, integration_id: str) -> Response:
        return self.get(f"/v1/integrations/{integration_id}")

    def charges(self) -> list[dict[str, Any]]:
        answer = self.get("/v1/account/charges?limit=100")
        assert answer.status == 200, answer.body
        return list(answer.body["items"])

    def events(self) -> list[dict[str, Any]]:
        answer = self.api.get("/_local/events")
        assert answer.status == 200, answer.body
        return [e for e in answer.body["items"] if e["detail"].get("account_id") == self.account_id]

    def swap_card(self, card: str) -> None:
        answer = self.api.put(f"/_local/accounts/{self.account_id}/card", {"card": card})
        assert answer.status == 200, answer.body


def now(stack: LocalStack) -> datetime:
    return parse_instant(stack.api.get("/_local/clock").body["now"])


def advance_to(stack: LocalStack, moment: datetime) -> dict[str, Any]:
    """Move the business clock to `moment` (at least where it is) and run what came due."""
    target = max(moment, now(stack))
    answer = stack.api.post("/_local/clock", {"to": format_instant(target)})
    assert answer.status == 200, answer.body
    return dict(answer.body)


def advance_past(stack: LocalStack, moment: str | datetime, slot: timedelta) -> dict[str, Any]:
    """Past `moment` by one schedule slot: the first run after it has happened."""
    at = parse_instant(moment) if isinstance(moment, str) else moment
    return advance_to(stack, at + slot)
