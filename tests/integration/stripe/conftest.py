"""Stripe fixtures: one localstripe per session (or `STRIPE_API_BASE`), and a stub Stripe on a
free port for what localstripe cannot do (billing portal sessions, 429 and 5xx answers)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lifecycle.payments.stripe_adapter import StripePayments
from local.localstripe import SECRET_KEY
from tests.stripe_stub import Received, StubStripe


@pytest.fixture
def payments(localstripe_base: str) -> StripePayments:
    return StripePayments(SECRET_KEY, api_base=localstripe_base)


@pytest.fixture
def stub_stripe() -> Iterator[StubStripe]:
    stub = StubStripe()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else url.query
            stub.received.append(
                Received(
                    self.command,
                    url.path,
                    dict(self.headers.items()),
                    dict(urllib.parse.parse_qsl(body)),
                )
            )
            scripted = stub.answers.get((self.command, url.path))
            if scripted:
                status, answer = scripted.pop(0) if len(scripted) > 1 else scripted[0]
            else:
                status, answer = 404, {"error": {"type": "invalid_request_error"}}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.api_base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
