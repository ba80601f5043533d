"""The local stack's own edges: its secret files (mode 0600) and the function URL's wrapper,
which marks a Stripe event delivered only when the function read it past its signature."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from local.keyfiles import read_or_create
from local.sources import WebhookDeliveries


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_is_created_once_with_mode_0600(tmp_path: Path):
    path = tmp_path / "data" / "secret"
    made: list[str] = []

    def make() -> str:
        made.append("once")
        return "s3cret"

    assert read_or_create(path, make) == "s3cret"
    assert read_or_create(path, make) == "s3cret"
    assert made == ["once"]
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no partial file left


def test_a_secret_left_world_readable_by_an_older_version_is_narrowed(tmp_path: Path):
    path = tmp_path / "stripe-webhook-secret"
    path.write_text("whsec_old")
    path.chmod(0o644)

    assert read_or_create(path, lambda: "unused") == "whsec_old"
    assert mode(path) == 0o600


class Deliveries(WebhookDeliveries):
    """The deliveries the function URL reports, recorded (nothing asks localstripe)."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9", "sk_test_unused", ())
        self.ids: list[str] = []

    def delivered(self, event_id: str) -> None:
        self.ids.append(event_id)


@pytest.fixture
def webhooks() -> Deliveries:
    return Deliveries()


def url_event(body: str, *, encoded: bool = False) -> dict[str, Any]:
    if encoded:
        body = base64.b64encode(body.encode()).decode()
    return {"body": body, "isBase64Encoded": encoded}


@pytest.mark.parametrize(
    "body", ["[]", "null", '"evt"', "1", "true", "{}", '{"id": 7}', "{not json", "", "[" * 50_000]
)
@pytest.mark.parametrize("status", [200, 400, 500])
def test_a_body_that_is_not_an_event_object_marks_nothing_and_raises_nothing(
    webhooks, body, status
):
    webhooks.answered(url_event(body), status)
    assert webhooks.ids == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413])
def test_a_refused_delivery_marks_nothing_whatever_id_it_claims(webhooks, status):
    webhooks.answered(url_event(json.dumps({"id": "evt_pending_1"})), status)
    assert webhooks.ids == []


@pytest.mark.parametrize("status", [200, 500, 502, 503])
@pytest.mark.parametrize("encoded", [False, True])
def test_a_delivery_read_past_its_signature_is_marked(webhooks, status, encoded):
    webhooks.answered(url_event(json.dumps({"id": "evt_1"}), encoded=encoded), status)
    assert webhooks.ids == ["evt_1"]


def test_a_body_that_is_not_base64_marks_nothing(webhooks):
    webhooks.answered({"body": "%%%not base64", "isBase64Encoded": True}, 200)
    assert webhooks.ids == []
