"""Money safety over HTTP against the whole local stack (the gateway, each function in its own
processes, DynamoDB Local, localstripe and its webhooks): two browsers paying two quotes for one
unfreeze, and a payment racing a member's cancel. Counted in localstripe and in the API."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from lifecycle.rules.calendar import parse_instant
from local.client import LocalStack, Tenant, advance_to
from local.localstripe import payment_intents, refunds
from tests.concurrency import race

pytestmark = pytest.mark.e2e

TRIALS = 6


def _frozen(tenant: Tenant, count: int) -> list[dict[str, Any]]:
    """`count` integrations whose freeze took effect; the clock 10 days into their period."""
    created = [tenant.create(name=f"Feed {n}") for n in range(count)]
    for item in created:
        assert tenant.post(f"/v1/integrations/{item['id']}/freeze").status == 200
    end = max(parse_instant(item["current_period_end"]) for item in created)
    advance_to(tenant.stack, end + timedelta(days=10))
    frozen = [tenant.integration(item["id"]).body for item in created]
    assert {item["status"] for item in frozen} == {"frozen"}
    return frozen


def _stripe(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.env['STRIPE_PORT']}"


def _money(stack: LocalStack, tenant: Tenant, integration_id: str) -> tuple[int, int, int]:
    """(succeeded PaymentIntents, refunds, kept cents) at localstripe for one integration."""
    intents = [
        i
        for i in payment_intents(_stripe(stack), tenant.customer_id)
        if i["status"] == "succeeded"
        and integration_id in (i.get("metadata") or {}).get("integration_ids", "")
    ]
    returned = [r for i in intents for r in refunds(_stripe(stack), i["id"])]
    kept = sum(int(i["amount"]) for i in intents) - sum(int(r["amount"]) for r in returned)
    return len(intents), len(returned), kept


def _since(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[int, int, int]:
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def test_two_quotes_for_one_unfreeze_paid_at_once_over_http_charge_once(stack: LocalStack):
    tenant = Tenant(stack)
    for subject in _frozen(tenant, TRIALS):
        path = f"/v1/integrations/{subject['id']}"
        quotes = [tenant.get(f"{path}/reactivation-quote").body for _ in range(2)]
        before = _money(stack, tenant, subject["id"])
        assert quotes[0]["id"] != quotes[1]["id"] and quotes[0]["amount"] > 0
        answers = race(
            *(partial(tenant.post, f"{path}/reactivate", {"quote_id": q["id"]}) for q in quotes)
        )
        statuses = sorted(a.status for a in answers)
        assert statuses in ([200, 409], [409, 409]), [a.body for a in answers]
        for answer in answers:
            if answer.status == 409:
                assert answer.body["code"] in ("conflict", "quote_stale")
        charged, refunded, kept = _since(before, _money(stack, tenant, subject["id"]))
        assert charged - refunded == (1 if 200 in statuses else 0)
        assert kept == (quotes[0]["amount"] if 200 in statuses else 0)
        after = tenant.integration(subject["id"]).body
        assert after["status"] == ("active" if 200 in statuses else "frozen")
        mine = [c for c in tenant.charges() if subject["id"] in c["integration_ids"]]
        assert [c["status"] for c in mine if c["status"] in ("pending",)] == []


def test_paying_while_a_member_cancels_over_http_never_keeps_money_without_the_service(
    stack: LocalStack,
):
    tenant = Tenant(stack)
    member = tenant.new_token(billing=False)
    for subject in _frozen(tenant, TRIALS):
        path = f"/v1/integrations/{subject['id']}"
        quote = tenant.get(f"{path}/reactivation-quote").body
        before = _money(stack, tenant, subject["id"])
        paid, cancelled = race(
            partial(tenant.post, f"{path}/reactivate", {"quote_id": quote["id"]}),
            partial(stack.api.post, f"{path}/cancel", {"reason": "other"}, token=member),
        )
        after = tenant.integration(subject["id"]).body
        charged, refunded, kept = _since(before, _money(stack, tenant, subject["id"]))
        if cancelled.status == 409:  # lost the race to the unfreeze's commit: retryable
            assert cancelled.body["code"] == "conflict"
            assert (after["status"], paid.status, kept) == ("active", 200, quote["amount"])
            continue
        assert cancelled.status == 200, cancelled.body
        assert after["status"] == "cancel_pending"
        if paid.status == 200:
            assert kept == quote["amount"] and charged - refunded == 1
        else:
            assert paid.body["code"] == "quote_stale", paid.body
            assert kept == 0
            if refunded:
                assert paid.body.get("refunded") is True
