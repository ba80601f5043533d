"""Emails end to end on `make dev`'s stack (notifications.md): the real notifier invoked by the
rule on the bus, SES v2 captured in front of moto (`GET /_local/emails`), the business clock
moved through `/_local/clock`. Every count is exact, and stays so after further clock moves."""

from __future__ import annotations

import io
import json
import re
import urllib.request
import uuid
from datetime import timedelta
from typing import Any

import pypdf
import pytest

from lifecycle.rules.calendar import parse_instant
from local.client import (
    DELETION_SLOT,
    RENEWAL_SLOT,
    LocalStack,
    Tenant,
    advance_past,
    advance_to,
    now,
)
from tests.log_scan import findings

DAY = timedelta(days=1)


class Household:
    """A tenant with two billing users and a member, each with an address of its own."""

    def __init__(self, stack: LocalStack, card: str = "ok") -> None:
        tag = uuid.uuid4().hex[:8]
        self.owner = f"owner-{tag}@merchant.example"
        self.second = f"billing-{tag}@merchant.example"
        self.member = f"member-{tag}@merchant.example"
        created = stack.api.post("/_local/accounts", {"card": card, "email": self.owner})
        assert created.status == 201, created.body
        self.tenant = Tenant.__new__(Tenant)
        self.tenant.stack, self.tenant.api = stack, stack.api
        self.tenant.account_id = created.body["account_id"]
        self.tenant.customer_id = created.body["stripe_customer_id"]
        self.tenant.token = self.tenant.new_token(True)
        for email, billing in ((self.second, True), (self.member, False)):
            # invited the production way: the users route, a billing user's token
            added = self.tenant.post(
                "/v1/account/users", {"email": email, "billing_access": billing}
            )
            assert added.status == 201, added.body
        self.stack = stack

    @property
    def billing(self) -> list[str]:
        return sorted([self.owner, self.second])

    @property
    def everyone(self) -> list[str]:
        return sorted([self.owner, self.second, self.member])

    def emails(self) -> list[dict[str, Any]]:
        answer = self.stack.api.get("/_local/emails")
        assert answer.status == 200, answer.body
        mine = set(self.everyone)
        return [e for e in answer.body["items"] if set(e["to"]) & mine]

    def counts(self, *patterns: str) -> list[int]:
        """How many of the emails so far have a subject matching each of `patterns`."""
        emails = self.emails()
        return [len(only(emails, pattern)) for pattern in patterns]

    def kinds(self) -> list[tuple[str, str]]:
        """(first word of the subject, recipient) of every email, in order."""
        return [(e["subject"].split(" ")[0], e["to"][0]) for e in self.emails()]


def only(emails: list[dict[str, Any]], pattern: str) -> list[dict[str, Any]]:
    return [e for e in emails if re.search(pattern, e["subject"])]


@pytest.fixture
def household(stack: LocalStack) -> Household:
    return Household(stack)


def test_a_create_sends_one_receipt_to_each_billing_user_with_the_amount_and_a_working_link(
    stack: LocalStack, household: Household
):
    created = household.tenant.create(plan="standard")
    (charge,) = household.tenant.charges()

    receipts = only(household.emails(), r"^Receipt ")

    assert sorted(e["to"][0] for e in receipts) == household.billing
    assert all(len(e["to"]) == 1 for e in receipts)
    for email in receipts:
        assert email["subject"] == f"Receipt {charge['receipt_number']}: 49.00 USD paid"
        assert "Total paid: 49.00 USD" in email["text"] and "49.00 USD" in email["html"]
        assert email["event_id"] == f"{charge['id']}:succeeded:0"
        assert created["name"] in email["text"]
    (link,) = set(re.findall(r"http://\S+#receipt/ch_\w+", receipts[0]["text"]))
    page, _, route = link.partition("#")
    assert page == f"http://127.0.0.1:{stack.api_port}/"
    assert route == f"receipt/{charge['id']}"
    dashboard = stack.api.get("/")
    assert dashboard.status == 200 and "<html" in str(dashboard.body).lower()
    # What the dashboard does with that link: the receipt, with the user's token.
    status, content_type, body = fetch(
        f"{stack.api.base}/v1/account/charges/{charge['id']}/receipt", household.tenant.token
    )
    assert (status, content_type) == (200, "application/pdf")
    text = pypdf.PdfReader(io.BytesIO(body)).pages[0].extract_text()
    assert f"Receipt {charge['receipt_number']}" in text and "49.00 USD" in text

    # A member may not read it; nothing more is sent after a clock move.
    member = household.tenant.new_token(False)
    denied = stack.api.get(f"/v1/account/charges/{charge['id']}/receipt", token=member)
    assert denied.status == 403
    advance_to(stack, now(stack) + timedelta(hours=2))
    assert len(only(household.emails(), r"^Receipt ")) == 2


def fetch(url: str, token: str) -> tuple[int, str, bytes]:
    """A GET whose body is kept as bytes (the JSON client decodes it as text)."""
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/pdf"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read()


def test_a_declined_renewal_mails_each_retry_then_the_suspension(
    stack: LocalStack, household: Household
):
    tenant = household.tenant
    created = tenant.create(plan="standard")
    end = parse_instant(created["current_period_end"])
    tenant.swap_card("declined")

    expected_retries = [end + DAY, end + 3 * DAY, end + 7 * DAY]
    for attempt, moment in enumerate([end, *expected_retries], start=1):
        advance_past(stack, moment, RENEWAL_SLOT)
        failed = only(household.emails(), r"^Payment failed")
        assert len(failed) == 2 * attempt, [e["subject"] for e in failed]
        latest = failed[-2:]
        assert sorted(e["to"][0] for e in latest) == household.billing
        assert all("49.00 USD" in e["subject"] for e in latest)
        if attempt < 4:
            retry = expected_retries[attempt - 1]
            assert f"We will try again on {retry:%d %B %Y, %H:%M} UTC" in latest[0]["text"]
            assert f"still unpaid on {end + 7 * DAY:%d %B %Y, %H:%M} UTC" in latest[0]["text"]
        else:
            assert "is suspended now" in latest[0]["text"]

    suspended = only(household.emails(), r" is suspended$")
    assert sorted(e["to"][0] for e in suspended) == household.billing
    assert "renewal stayed unpaid for 7 days" in suspended[0]["text"]

    advance_to(stack, now(stack) + 10 * DAY)
    assert household.counts(r"^Payment failed", r" is suspended$") == [8, 2]
    assert household.member not in {e["to"][0] for e in household.emails()}


def test_a_cancel_reminds_every_user_once_three_days_before_and_the_deletion_is_mailed(
    stack: LocalStack, household: Household
):
    tenant = household.tenant
    created = tenant.create(plan="starter")
    integration_id = created["id"]
    end = parse_instant(created["current_period_end"])
    assert (
        tenant.post(f"/v1/integrations/{integration_id}/cancel", {"reason": "other"}).status == 200
    )

    advance_to(stack, end - 3 * DAY - timedelta(hours=1))
    assert only(household.emails(), r"will be deleted") == []
    advance_past(stack, end - 3 * DAY, RENEWAL_SLOT)
    reminders = only(household.emails(), r"will be deleted on")
    assert sorted(e["to"][0] for e in reminders) == household.everyone
    assert f"on {end:%d %B %Y, %H:%M} UTC" in reminders[0]["text"]
    assert "free of charge" in reminders[0]["text"]

    # Taken back and cancelled again in the same period: no second reminder.
    assert tenant.post(f"/v1/integrations/{integration_id}/reactivate", {}).status == 200
    assert (
        tenant.post(f"/v1/integrations/{integration_id}/cancel", {"reason": "other"}).status == 200
    )
    advance_to(stack, end - DAY)
    assert len(only(household.emails(), r"will be deleted on")) == 3

    advance_past(stack, end, DELETION_SLOT)
    assert tenant.integration(integration_id).status == 404
    deleted = only(household.emails(), r" was deleted$")
    assert sorted(e["to"][0] for e in deleted) == household.everyone
    assert "untouched" in deleted[0]["text"]

    advance_to(stack, now(stack) + 5 * DAY)
    assert household.counts(r"will be deleted on", r" was deleted$") == [3, 3]


def test_the_functions_log_holds_no_address_and_no_card(stack: LocalStack, household: Household):
    household.tenant.create()
    household.emails()

    lines = (stack.data_dir / "functions.log").read_text(encoding="utf-8").splitlines()
    notifier = [line for line in lines if '"function_name":"NotifierFunction"' in line]

    assert any('"message":"email sent"' in line for line in notifier)
    assert any('"domain":"merchant.example"' in line for line in notifier)
    assert findings(notifier) == []
    assert findings(lines) == [], json.dumps(findings(lines)[:3])
