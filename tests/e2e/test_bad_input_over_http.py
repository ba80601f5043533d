"""Issue 12's bad inputs against `make dev`'s stack over HTTP: each gets its 4xx, the local
server holds 200 connections at once, `/_local/*` answers only this machine's own callers,
and the stack's secrets are readable by their owner only."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import stat
import threading
import time
from typing import Any

from joserfc import jwt

from local.auth import ALGORITHM, Issuer
from local.client import LocalStack, Response, Tenant
from tests import bad_inputs
from tests.stripe_signing import stripe_signature

ID = "/v1/integrations/{}"


def sent(label: str, answer: Response) -> Response:
    bad_inputs.record(f"e2e|{label}", answer.status)
    assert answer.status < 500, (label, answer.status, answer.body)
    return answer


def token_with(stack: LocalStack, **claims: Any) -> str:
    """A token of the stack's issuer with `claims` as given (the shapes /_local/tokens never
    mints): what a misconfigured user pool or a pre-token trigger could put in a real one."""
    issuer = Issuer(stack.data_dir / "issuer-key.json")
    now = int(time.time())
    payload = {
        "sub": "user-odd",
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode({"alg": ALGORITHM, "kid": issuer.key.kid}, payload, issuer.key)


def test_the_issues_bad_inputs_are_4xx_and_change_nothing(stack: LocalStack, tenant: Tenant):
    created = tenant.create()
    path = ID.format(created["id"])
    api, token = stack.api, tenant.token

    as_text = sent(
        "text/plain settings",
        api.put(f"{path}/settings", {}, token=token, headers={"Content-Type": "text/plain"}),
    )
    assert (as_text.status, as_text.body["code"]) == (415, "unsupported_media_type")
    upper = sent(
        "APPLICATION/JSON settings",
        api.put(
            f"{path}/settings",
            {"pricing_rules": {"a": 1}},
            token=token,
            headers={"Content-Type": "APPLICATION/JSON; charset=utf-8"},
        ),
    )
    assert upper.status == 200
    long_id = sent("1100-byte id", api.get(ID.format("int_" + "A" * 1096), token=token))
    assert (long_id.status, long_id.body["code"]) == (404, "not_found")
    crafted = base64.b64encode(b'{"sk":"ACCOUNT#INTEGRATION#\\uffff"}').decode()
    cursor = sent("crafted cursor", api.get(f"/v1/integrations?cursor={crafted}", token=token))
    assert (cursor.status, cursor.body["code"]) == (400, "invalid_cursor")
    for label, text in {
        "500 levels": '{"pricing_rules": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}",
        "3,000 levels": '{"pricing_rules": ' + "[" * 3000 + "]" * 3000 + "}",
        "NaN": '{"pricing_rules": {"a": NaN}}',
        "1e400": '{"pricing_rules": {"a": 1e400}}',
    }.items():
        answer = sent(label, api.put(f"{path}/settings", raw=text.encode(), token=token))
        assert (answer.status, answer.body["code"]) == (400, "malformed_json"), label
    read = tenant.integration(created["id"])
    assert read.status == 200
    assert read.body["settings"]["pricing_rules"] == {"a": 1}


def test_claims_are_read_strictly_through_the_authorizer(stack: LocalStack, tenant: Tenant):
    for account_id in [f"{tenant.account_id}\n", f"{tenant.account_id} ", "acc-1", "acc_"]:
        answer = sent(
            f"account id {account_id!r}",
            stack.api.get(
                "/v1/account", token=token_with(stack, **{"custom:account_id": account_id})
            ),
        )
        assert (answer.status, answer.body["code"]) == (401, "unauthorized"), account_id
    # Not ["x billing"]: the authorizer renders it as two groups, and Cognito refuses such a
    # name (lifecycle.http.caller.parse_groups); tests/unit/test_caller.py has every shape.
    for groups in [["x,billing"], ["billing,"], ["Billing"], ["billing-ish"], ['"billing"', "x"]]:
        token = token_with(
            stack, **{"custom:account_id": tenant.account_id, "cognito:groups": groups}
        )
        answer = sent(
            f"groups {groups!r}",
            stack.api.post(
                "/v1/integrations",
                {"name": "n", "supplier": "s", "channel": "c", "plan": "starter"},
                token=token,
            ),
        )
        assert (answer.status, answer.body["code"]) == (403, "billing_access_required"), groups
    exact = token_with(
        stack, **{"custom:account_id": tenant.account_id, "cognito:groups": ["admin", "billing"]}
    )
    assert stack.api.get("/v1/account", token=exact).body["billing_access"] is True


def test_the_webhook_url_refuses_odd_bodies_with_a_400(stack: LocalStack):
    secret = (stack.data_dir / "stripe-webhook-secret").read_text().strip()

    long_id = json.dumps({"id": "e" * 3000, "type": "payment_intent.succeeded"}).encode()
    for label, body in {
        "[]": b"[]",
        "null": b"null",
        '"evt"': b'"evt"',
        "1": b"1",
        "{}": b"{}",
        "3,000-character id": long_id,
    }.items():
        unsigned = sent(f"webhook unsigned {label}", stack.webhook.post("/", raw=body))
        signed = sent(
            f"webhook signed {label}",
            stack.webhook.post(
                "/", raw=body, headers={"Stripe-Signature": stripe_signature(body, secret)}
            ),
        )
        assert (unsigned.status, signed.status) == (400, 400), label


def _status_line(port: int, barrier: threading.Barrier, answers: list[str]) -> None:
    try:
        barrier.wait(timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            connection.sendall(
                f"GET /v1/integrations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            answers.append(connection.recv(64).split(b"\r\n", 1)[0].decode())
    except OSError as error:
        answers.append(f"{type(error).__name__}: {error}")


def test_200_connections_at_once_each_get_an_http_answer(stack: LocalStack):
    count = 200
    barrier = threading.Barrier(count)
    answers: list[str] = []
    threads = [
        threading.Thread(target=_status_line, args=(stack.api_port, barrier, answers))
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(answers) == count
    failed = [answer for answer in answers if not answer.startswith("HTTP/1.")]
    assert failed == [], f"{len(failed)} of {count}: {sorted(set(failed))}"
    assert {answer.split()[1] for answer in answers} == {"401"}  # no token: the authorizer


def _raw(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def test_local_routes_refuse_other_origins_and_hosts(stack: LocalStack, tenant: Tenant):
    port = stack.api_port
    token_request = json.dumps({"account_id": tenant.account_id, "billing_access": True})
    clock_before = stack.api.get("/_local/clock").body["now"]
    refused = {
        "a cross-origin text/plain token": (
            "POST",
            "/_local/tokens",
            {
                "Host": f"127.0.0.1:{port}",
                "Origin": "http://evil.example",
                "Content-Type": "text/plain",
            },
            token_request,
        ),
        "a cross-origin clock move": (
            "POST",
            "/_local/clock",
            {
                "Host": f"localhost:{port}",
                "Origin": "https://evil.example",
                "Content-Type": "text/plain",
            },
            '{"advance_seconds": 86400}',
        ),
        "an opaque origin": (
            "POST",
            "/_local/tokens",
            {"Host": f"127.0.0.1:{port}", "Origin": "null"},
            token_request,
        ),
        "another port's origin": (
            "POST",
            "/_local/tokens",
            {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port + 1}"},
            token_request,
        ),
        "a rebound host name": (
            "POST",
            "/_local/tokens",
            {"Host": f"evil.example:{port}"},
            token_request,
        ),
        "another port in Host": ("GET", "/_local/events", {"Host": f"127.0.0.1:{port + 1}"}, ""),
        "no Host": ("GET", "/_local/clock", {}, ""),
    }
    for label, (method, path, headers, body) in refused.items():
        status, answer = _raw(port, method, path, headers, body.encode())
        bad_inputs.record(f"e2e|local routes|{label}", status)
        assert (status, answer["code"]) == (403, "forbidden"), label
        assert "token" not in answer
    assert stack.api.get("/_local/clock").body["now"] == clock_before

    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, answer = _raw(
            port,
            "POST",
            "/_local/tokens",
            {"Host": host, "Origin": f"http://{host.lower()}", "Content-Type": "application/json"},
            token_request.encode(),
        )
        assert status == 201, (host, answer)
        assert answer["token"]


def test_the_stacks_secrets_are_readable_by_their_owner_only(stack: LocalStack):
    for name in ("stripe-webhook-secret", "cursor-secret", "issuer-key.json"):
        mode = stat.S_IMODE((stack.data_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name}: {oct(mode)}"


def test_local_routes_and_the_gateway_refuse_odd_requests_with_a_4xx(stack: LocalStack):
    port, own = stack.api_port, {"Host": f"127.0.0.1:{stack.api_port}"}
    cases = {
        "a 3,000-level token request": ("POST", "/_local/tokens", own, b"[" * 3000 + b"]" * 3000),
        "a NaN clock move": ("POST", "/_local/clock", own, b'{"advance_seconds": NaN}'),
        "a token request that is a list": ("POST", "/_local/tokens", own, b"[]"),
        "a token for an account id with a newline": (
            "POST",
            "/_local/tokens",
            own,
            b'{"account_id": "acc_demo\\n"}',
        ),
        "a 1,100-byte account id": (
            "PUT",
            f"/_local/accounts/acc_{'a' * 1096}/card",
            own,
            b'{"card": "ok"}',
        ),
        "an account id with a NUL": (
            "PUT",
            "/_local/accounts/acc_%00/card",
            own,
            b'{"card": "ok"}',
        ),
    }
    for label, (method, path, headers, body) in cases.items():
        status, answer = _raw(port, method, path, headers, body)
        bad_inputs.record(f"e2e|local routes|{label}", status)
        assert 400 <= status < 500, (label, status, answer)
        assert {"status", "code", "title", "detail"} <= set(answer), label

    for label, target in {"API": port, "webhook URL": stack.webhook_port}.items():
        with socket.create_connection(("127.0.0.1", target), timeout=30) as connection:
            connection.sendall(
                f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{target}\r\nContent-Length: ten\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            status_line = connection.recv(64).split(b"\r\n", 1)[0].decode()
        bad_inputs.record(f"e2e|{label}|Content-Length: ten", int(status_line.split()[1]))
        assert status_line.split()[1] == "400", (label, status_line)


def test_cursors_the_stack_signs_page_to_the_end_and_only_for_their_account(stack: LocalStack):
    """The stack gives its functions the key it keeps in `.local/cursor-secret`."""
    mine, theirs = Tenant(stack), Tenant(stack)
    created = [mine.create(name=f"Feed {n}")["id"] for n in range(3)]
    first = mine.get("/v1/integrations?limit=2")
    assert first.status == 200
    cursor = first.body["next_cursor"]
    rest = mine.get(f"/v1/integrations?limit=2&cursor={cursor}")
    assert [i["id"] for i in first.body["items"] + rest.body["items"]] == created
    assert rest.body["next_cursor"] is None
    stolen = sent("another account's cursor", theirs.get(f"/v1/integrations?cursor={cursor}"))
    assert (stolen.status, stolen.body["code"]) == (400, "invalid_cursor")
