"""Stripe webhook signatures: the sample events of events/stripe, signed here at run time."""

import json
import time
from pathlib import Path

import pytest
import stripe

from lifecycle.payments.stripe_adapter import STRIPE_API_VERSION
from lifecycle.payments.stripe_webhooks import (
    WebhookEventInvalid,
    WebhookSignatureInvalid,
    verify_webhook,
    webhook_secrets,
)
from lifecycle.usecases.webhooks import HANDLED
from tests.parameter_store import secret_in_parameter_store
from tests.stripe_signing import stripe_signature

EVENTS = Path(__file__).resolve().parents[2] / "events" / "stripe"
SAMPLES = sorted(EVENTS.glob("*.json"))
SECRET = "whsec_test_current_5Wq3vN8rT2yL6pK9"
OLD_SECRET = "whsec_test_previous_Jx4mB7cZ1hD0sF3a"


def signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    return stripe_signature(payload, secret, at)


@pytest.fixture
def payload() -> bytes:
    return (EVENTS / "payment_intent.succeeded.json").read_bytes()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.stem)
def test_sample_event_signed_with_our_secret_verifies_into_the_event(sample: Path):
    payload = sample.read_bytes()

    event = verify_webhook(payload, signed(payload), [SECRET])

    assert event == json.loads(payload)
    assert isinstance(event, dict)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_signature_header_is_rejected(payload: bytes, header: str | None):
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(payload, header, [SECRET])


def test_tampered_signature_is_rejected(payload: bytes):
    header = signed(payload)
    timestamp, signature = header.split(",")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")

    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(payload, f"{timestamp},{flipped}", [SECRET])


def test_header_without_a_v1_signature_is_rejected(payload: bytes):
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(payload, f"t={int(time.time())}", [SECRET])


def test_signature_older_than_five_minutes_is_rejected(payload: bytes):
    six_minutes_ago = int(time.time()) - 360

    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(payload, signed(payload, at=six_minutes_ago), [SECRET])


def test_signature_four_minutes_old_still_verifies(payload: bytes):
    four_minutes_ago = int(time.time()) - 240

    assert verify_webhook(payload, signed(payload, at=four_minutes_ago), [SECRET])["id"]


def test_event_signed_with_another_secret_is_rejected(payload: bytes):
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(payload, signed(payload, secret="whsec_someone_else"), [SECRET])


def test_reserialised_body_is_rejected_even_though_it_is_the_same_json(payload: bytes):
    header = signed(payload)
    reserialised = json.dumps(json.loads(payload), separators=(",", ":")).encode()
    assert json.loads(reserialised) == json.loads(payload)

    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(reserialised, header, [SECRET])


def test_body_that_is_not_utf8_is_rejected(payload: bytes):
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(b"\xff\xfe" + payload, signed(payload), [SECRET])


@pytest.mark.parametrize(
    "payload",
    [
        b'["not", "an", "event"]',
        b"[]",
        b"null",
        b'"evt"',
        b"1",
        b"{}",
        b'{"id": "evt_1"}',  # no type
        b'{"type": "payment_intent.succeeded"}',  # no id
        b'{"id": "", "type": "payment_intent.succeeded"}',
        b'{"id": 12, "type": "payment_intent.succeeded"}',
        b'{"id": null, "type": "payment_intent.succeeded"}',
        b'{"id": ["evt_1"], "type": "payment_intent.succeeded"}',
        ('{"id": "evt_' + "x" * 252 + '", "type": "payment_intent.succeeded"}').encode(),
        ('{"id": "evt_' + "x" * 2996 + '", "type": "payment_intent.succeeded"}').encode(),
        b"[" * 100_000,
        b"{not json",
    ],
    ids=lambda payload: payload[:24].decode(errors="replace"),
)
def test_signed_body_that_is_not_an_event_with_a_short_id_is_rejected(payload: bytes):
    with pytest.raises(WebhookEventInvalid):
        verify_webhook(payload, signed(payload), [SECRET])


def test_an_event_id_of_255_characters_is_accepted():
    event_id = "evt_" + "x" * 251
    payload = json.dumps({"id": event_id, "type": "payment_intent.succeeded"}).encode()

    assert verify_webhook(payload, signed(payload), [SECRET])["id"] == event_id


@pytest.mark.parametrize("signing_secret", [SECRET, OLD_SECRET], ids=["new", "old"])
def test_during_a_secret_rotation_either_secret_verifies(payload: bytes, signing_secret: str):
    event = verify_webhook(payload, signed(payload, secret=signing_secret), [SECRET, OLD_SECRET])

    assert event["type"] == "payment_intent.succeeded"


def test_no_configured_secret_is_a_configuration_error_not_a_bad_signature(payload: bytes):
    with pytest.raises(RuntimeError):
        verify_webhook(payload, signed(payload), [])


def test_webhook_secrets_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", f"{SECRET}, {OLD_SECRET}")

    assert webhook_secrets() == [SECRET, OLD_SECRET]


def test_webhook_secrets_come_from_parameter_store_when_the_environment_has_none(
    monkeypatch: pytest.MonkeyPatch,
):
    with secret_in_parameter_store(
        monkeypatch,
        "STRIPE_WEBHOOK_SECRETS",
        "/integrations/dev/stripe/webhook-secrets",
        f"{SECRET},{OLD_SECRET}",
    ):
        secrets = webhook_secrets()

    assert secrets == [SECRET, OLD_SECRET]


def test_sample_events_are_test_mode_events_of_the_pinned_api_version():
    assert {path.stem for path in SAMPLES} == {*HANDLED, "unknown.event"}
    for path in SAMPLES:
        event = json.loads(path.read_text())
        assert event["object"] == "event"
        assert event["api_version"] == STRIPE_API_VERSION
        assert event["livemode"] is False
        assert event["data"]["object"]["livemode"] is False


def test_pinned_api_version_is_the_one_the_stripe_sdk_was_generated_for():
    # Upgrading `stripe` changes its default version: pin the new one (and the webhook
    # endpoint's) in the same change, after reading Stripe's changelog.
    assert stripe.api_version == STRIPE_API_VERSION
