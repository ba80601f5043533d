"""The emails of notifications.md rendered from their events: every value escaped (HTML) or kept
on its line (text, subject), amounts from cents with the currency, dates in UTC and saying so;
the notifier's rule matches exactly the detail-types that send an email."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle.notifications.messages import KINDS, context
from lifecycle.notifications.render import render
from local.template import resources

DASHBOARD = "https://app.example.com/"
NOTIFICATIONS_MD = Path(__file__).resolve().parents[3] / "shared" / "spec" / "notifications.md"
HOSTILE = (
    "<script>alert(1)</script><b>Acme</b> {{ 7*7 }} {% if true %}x{% endif %}\r\nBcc: a@evil.test"
)

DETAILS = {
    "ChargeSucceeded": {
        "charge_id": "ch_01",
        "amount": 4900,
        "currency": "usd",
        "receipt_number": "R-DEMO-0007",
        "description": "first month",
        "items": [
            {
                "name": HOSTILE,
                "plan": "standard",
                "fee": "monthly fee",
                "period_start": "2026-11-21T10:00:00Z",
                "period_end": "2026-12-21T10:00:00Z",
                "amount": 4900,
            }
        ],
    },
    "PaymentFailed": {
        "name": HOSTILE,
        "amount": 4900,
        "currency": "usd",
        "attempt": 1,
        "next_attempt_at": "2026-12-22T10:00:00Z",
        "suspends_at": "2026-12-28T10:00:00Z",
    },
    "IntegrationSuspended": {"name": HOSTILE, "reason": "non_payment"},
    "DeletionReminder": {"name": HOSTILE, "deletes_at": "2026-12-21T10:00:00Z"},
    "IntegrationDeleted": {"name": HOSTILE, "reason": "other"},
    "AccountDisabled": {},
    "AccountReactivated": {"amount": 5800, "currency": "usd"},
    "ChargeRefunded": {
        "charge_id": "ch_01",
        "amount": 4900,
        "currency": "usd",
        "reason": "not_applied",
    },
}


def event_detail(detail_type: str) -> dict:
    return {
        "event_id": f"int_1:3:{detail_type}",
        "account_id": "acc_1",
        "at": "2026-11-21T10:00:00Z",
        **DETAILS[detail_type],
    }


def test_every_kind_of_email_has_an_example_here():
    assert set(DETAILS) == set(KINDS)


@pytest.mark.parametrize("detail_type", sorted(KINDS))
def test_every_email_renders_in_both_forms_with_a_one_line_subject(detail_type):
    email = render(detail_type, context(event_detail(detail_type), DASHBOARD))

    assert email.subject and "\n" not in email.subject and "\r" not in email.subject
    assert email.text.strip() and email.html.lstrip().startswith("<!doctype html>")
    assert "UTC" in email.text and "UTC" in email.html
    assert DASHBOARD in email.text


@pytest.mark.parametrize("detail_type", [k for k in sorted(KINDS) if "name" in str(DETAILS[k])])
def test_an_integration_name_with_html_and_template_syntax_renders_as_text_in_both_forms(
    detail_type,
):
    email = render(detail_type, context(event_detail(detail_type), DASHBOARD))

    # HTML: escaped, never markup; the template syntax is neither evaluated nor dropped.
    assert "<script>" not in email.html and "<b>Acme</b>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;Acme&lt;/b&gt;" in email.html
    assert "{{ 7*7 }}" in email.html and "{% if true %}x{% endif %}" in email.html
    assert "49 " not in email.text.replace("49.00", "")
    # Text: the characters as they are, on their own line: no forged line, no forged header.
    assert "<b>Acme</b> {{ 7*7 }} {% if true %}x{% endif %} Bcc: a@evil.test" in email.text
    assert not any(line.startswith("Bcc:") for line in email.text.splitlines())
    assert not any(line.startswith("Bcc:") for line in email.html.splitlines())
    assert "Bcc" not in email.subject.split("Acme")[0]


def test_the_receipt_email_has_the_amount_from_cents_the_number_the_period_and_the_link():
    email = render("ChargeSucceeded", context(event_detail("ChargeSucceeded"), DASHBOARD))

    assert email.subject == "Receipt R-DEMO-0007: 49.00 USD paid"
    assert "Total paid: 49.00 USD" in email.text
    assert "21 November 2026 (UTC) to 21 December 2026 (UTC)" in email.text
    assert "Date: 21 November 2026, 10:00 UTC" in email.text
    assert f"{DASHBOARD}#receipt/ch_01" in email.text
    assert f'href="{DASHBOARD}#receipt/ch_01"' in email.html


def test_a_payment_failed_email_gives_the_next_retry_or_says_suspended_now():
    retry = render("PaymentFailed", context(event_detail("PaymentFailed"), DASHBOARD))
    last = render(
        "PaymentFailed",
        context({**event_detail("PaymentFailed"), "suspended": True, "attempt": 4}, DASHBOARD),
    )

    assert "We will try again on 22 December 2026, 10:00 UTC" in retry.text
    assert "still unpaid on 28 December 2026, 10:00 UTC" in retry.text
    assert f"{DASHBOARD}#account" in retry.text
    assert "is suspended now" in last.text and "try again" not in last.text


def test_the_notifier_rule_matches_the_emails_detail_types_exactly():
    (function,) = [
        f for k, f in resources("AWS::Serverless::Function").items() if k == "NotifierFunction"
    ]
    (rule,) = function["Properties"]["Events"].values()

    assert rule["Type"] == "EventBridgeRule"
    assert rule["Properties"]["Pattern"]["source"] == ["integrations.lifecycle"]
    assert sorted(rule["Properties"]["Pattern"]["detail-type"]) == sorted(KINDS)


@pytest.mark.skipif(not NOTIFICATIONS_MD.exists(), reason="shared/spec is beside the repository")
def test_every_email_row_of_notifications_md_has_its_kind():
    table = NOTIFICATIONS_MD.read_text(encoding="utf-8").split("## Receipts")[0]
    rows = re.findall(r"^\| (`[A-Za-z]+`(?:, `[A-Za-z]+`)*) \|([^|]*)\|([^|]*)\|", table, re.M)
    emailed = {name.strip("`") for names, _, to in rows if to.strip() for name in names.split(", ")}
    billing = {
        name.strip("`") for names, _, to in rows if "billing" in to for name in names.split(", ")
    }
    assert emailed == set(KINDS)
    assert billing == {k for k, kind in KINDS.items() if kind.billing_only}
