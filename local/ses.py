"""Amazon SES v2 on the local stack: the notifier's `SendEmail` reaches moto's SES v2 through this
capture, which keeps every email moto accepted (`GET /_local/emails`).

moto serves `SendEmail` with simple content (it checks the sender is a verified identity, the
addresses, the recipient count, and answers a `MessageId`), but keeps only one of the text and
HTML bodies and no headers. The capture forwards the request to moto unchanged, answers what
moto answered (an error included), and on success records the email as sent: recipients,
subject, both bodies, the business clock's time and the domain event it is for (its
`X-Event-Id` header). The notifier's client is the production one (`AWS_ENDPOINT_URL_SESV2`
points it here).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from lifecycle.rules.calendar import format_instant

SEND_EMAIL_PATH = "/v2/email/outbound-emails"
EVENT_HEADER = "x-event-id"
_FORWARDED_HEADERS = ("content-type", "authorization", "x-amz-date", "x-amz-target", "user-agent")


class EmailCapture:
    """The emails sent so far, oldest first, kept in `log_file` across restarts."""

    def __init__(self, moto_endpoint: str, log_file: Path, now: Callable[[], datetime]) -> None:
        self.moto_endpoint = moto_endpoint.rstrip("/")
        self.log_file = log_file
        self.now = now
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        if log_file.exists():
            with log_file.open(encoding="utf-8") as handle:
                self._items = [json.loads(line) for line in handle if line.strip()]

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def verify_sender(self, client: Any, sender: str) -> None:
        """Make `sender` a verified identity of moto's SES (`client`, SES v2 to moto itself), as
        it is in the deployed account."""
        client.create_email_identity(EmailIdentity=sender)

    def app(self, environ: Mapping[str, Any], start_response: Any) -> Iterable[bytes]:
        """The WSGI application the notifier's SES client talks to."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        path = str(environ.get("PATH_INFO") or "/")
        query = str(environ.get("QUERY_STRING") or "")
        headers = {}
        for name in _FORWARDED_HEADERS:
            key = name.upper().replace("-", "_")
            value = environ.get(key if key == "CONTENT_TYPE" else f"HTTP_{key}")
            if value is not None:
                headers[name] = str(value)
        method = str(environ.get("REQUEST_METHOD") or "GET")
        status, answer_headers, answer = self._forward(method, path, query, headers, body)
        if method == "POST" and path == SEND_EMAIL_PATH and status == 200:
            self._record(body, answer)
        start_response(f"{status} {'OK' if status < 400 else 'Error'}", list(answer_headers))
        return [answer]

    def _forward(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        url = f"{self.moto_endpoint}{path}{'?' + query if query else ''}"
        request = urllib.request.Request(  # noqa: S310 - moto on this machine
            url, data=body if body else None, method=method, headers=dict(headers)
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, _kept(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, _kept(error.headers.items()), error.read()

    def _record(self, body: bytes, answer: bytes) -> None:
        request = json.loads(body)
        simple = (request.get("Content") or {}).get("Simple") or {}
        bodies = simple.get("Body") or {}
        headers = {h.get("Name", "").lower(): h.get("Value") for h in simple.get("Headers") or []}
        destination = request.get("Destination") or {}
        item = {
            "to": list(destination.get("ToAddresses") or []),
            "subject": (simple.get("Subject") or {}).get("Data"),
            "text": (bodies.get("Text") or {}).get("Data"),
            "html": (bodies.get("Html") or {}).get("Data"),
            "sent_at": format_instant(self.now()),
            "event_id": headers.get(EVENT_HEADER),
            "from": request.get("FromEmailAddress"),
            "message_id": json.loads(answer or b"{}").get("MessageId"),
        }
        with self._lock:
            with self.log_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(item, separators=(",", ":")) + "\n")
            self._items.append(item)


def _kept(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Response headers to pass on (not the hop-by-hop ones)."""
    dropped = {"connection", "transfer-encoding", "keep-alive", "server", "date"}
    return [(name, value) for name, value in headers if name.lower() not in dropped]
