"""The /v1/account routes through their real handlers, against DynamoDB Local."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lifecycle.rules.account import settle
from lifecycle.rules.model import SYSTEM, AccountStatus
from lifecycle.rules.renewal import decide_renewal
from local.inprocess import claims, invoke
from tests.factories import T0, add_account

pytestmark = pytest.mark.integration

MEMBER = claims(billing=False)


def create(plan: str = "standard", name: str = "Feed"):
    status, body = invoke(
        "POST",
        "/v1/integrations",
        body={"name": name, "supplier": "s", "channel": "c", "plan": plan},
    )
    assert status == 201, body
    return body


@pytest.fixture
def account(services):
    return add_account(services.store)


def test_account_page_counts_statuses_and_shows_the_next_renewal(account):
    a = create()
    create(plan="starter")
    invoke("POST", "/v1/integrations/{id}/freeze", {"id": a["id"]})
    status, body = invoke("GET", "/v1/account", token_claims=MEMBER)
    assert status == 200
    assert body["status"] == "active"
    assert body["billing_access"] is False
    assert body["counts"]["active"] == 1
    assert body["counts"]["freeze_pending"] == 1
    assert body["next_renewal_at"] == "2026-12-21T10:00:00Z"
    assert body["has_payment_method"] is True


def test_a_user_of_an_account_not_yet_stored_sees_a_free_active_account(services):
    status, body = invoke("GET", "/v1/account", token_claims=claims(account_id="acc_new"))
    assert status == 200
    assert (body["status"], body["counts"]["active"], body["has_payment_method"]) == (
        "active",
        0,
        False,
    )


def test_upcoming_charges_for_31_days_and_for_62(account):
    a = create()
    create(plan="premium")
    invoke("POST", "/v1/integrations/{id}/freeze", {"id": a["id"]})
    status, body = invoke("GET", "/v1/account/upcoming-charges")
    assert status == 200
    assert [(i["at"], i["amount"]) for i in body["items"]] == [
        ("2026-12-21T10:00:00Z", 900),
        ("2026-12-21T10:00:00Z", 9900),
    ]
    assert body["total"] == 10800
    status, body = invoke("GET", "/v1/account/upcoming-charges", query={"days": "62"})
    assert body["total"] == 2 * 10800
    assert invoke("GET", "/v1/account/upcoming-charges", query={"days": "63"})[0] == 422


def test_account_cancel_needs_billing_access_and_a_reason(account):
    create()
    assert (
        invoke("POST", "/v1/account/cancel", body={"reason": "other"}, token_claims=MEMBER)[0]
        == 403
    )
    assert invoke("POST", "/v1/account/cancel", body={})[0] == 422


def test_account_cancel_then_free_reactivation_while_cancel_pending(account, services):
    create()
    status, body = invoke("POST", "/v1/account/cancel", body={"reason": "switched_provider"})
    assert (status, body["status"], body["next_renewal_at"]) == (200, "cancel_pending", None)
    listed = invoke("GET", "/v1/integrations")[1]["items"][0]
    assert listed["scheduled_change"] == {
        "action": "suspend",
        "effective_at": "2026-12-21T10:00:00Z",
    }
    assert listed["next_charge"] is None
    assert invoke("GET", "/v1/account/upcoming-charges")[1]["total"] == 0
    quote = invoke("GET", "/v1/account/reactivation-quote")[1]
    assert quote["amount"] == 0
    status, body = invoke("POST", "/v1/account/reactivate")
    assert (status, body["status"]) == (200, "active")


def test_account_with_nothing_billable_is_disabled_at_once_and_reactivates_for_free(account):
    assert (
        invoke("POST", "/v1/account/cancel", body={"reason": "no_longer_needed"})[1]["status"]
        == "disabled"
    )
    activity = invoke("GET", "/v1/account/activity")[1]["items"]
    assert [a["type"] for a in activity] == ["account_cancel_scheduled", "account_disabled"]
    assert invoke("POST", "/v1/account/reactivate")[1]["status"] == "active"


def test_disabled_account_reactivation_charges_each_suspended_integration_against_a_quote(
    account, services, payments, clock
):
    kept = create()
    frozen = create(plan="premium", name="Frozen feed")
    invoke("POST", "/v1/integrations/{id}/freeze", {"id": frozen["id"]})
    invoke("POST", "/v1/account/cancel", body={"reason": "too_expensive"})
    # At the period end both integrations of the cancelled account are suspended.
    end = T0 + timedelta(days=30)
    for integration_id in (kept["id"], frozen["id"]):
        subject = services.store.get_integration("acc_1", integration_id)
        account_now = services.store.get_account("acc_1")
        renewal = decide_renewal(
            subject, end, account_status=account_now.status, catalog=services.catalog
        )
        others = [
            i
            for i in services.store.all_integrations("acc_1")
            if i.id != integration_id and i.billable
        ]
        services.store.commit(renewal.paid, account=settle(account_now, len(others), end, SYSTEM))
    assert services.store.get_account("acc_1").status is AccountStatus.DISABLED
    clock.set(end + timedelta(days=3))
    status, problem = invoke("POST", "/v1/account/reactivate")
    assert (status, problem["code"]) == (409, "quote_required")
    quote = problem["quote"]
    assert sorted(line["amount"] for line in quote["lines"]) == [900, 4900]
    assert quote["amount"] == 5800
    status, body = invoke("POST", "/v1/account/reactivate", body={"quote_id": quote["id"]})
    assert (status, body["status"]) == (200, "active")
    assert payments.succeeded[-1].request.amount == 5800
    back = {i["id"]: i for i in invoke("GET", "/v1/integrations")[1]["items"]}
    assert back[kept["id"]]["status"] == "active"
    assert back[frozen["id"]]["status"] == "frozen"
    assert back[kept["id"]]["current_period_start"] == "2026-12-24T10:00:00Z"
    assert back[kept["id"]]["current_period_end"] == "2027-01-24T10:00:00Z"


def test_charges_list_is_for_billing_users_newest_first(account):
    create(plan="starter")
    create(plan="premium")
    assert invoke("GET", "/v1/account/charges", token_claims=MEMBER)[0] == 403
    status, body = invoke("GET", "/v1/account/charges")
    assert status == 200
    assert [(c["amount"], c["status"]) for c in body["items"]] == [
        (9900, "succeeded"),
        (2900, "succeeded"),
    ]
    assert all(c["stripe_payment_intent"].startswith("pi_") for c in body["items"])


def test_billing_portal_returns_the_providers_url(account):
    status, body = invoke(
        "POST", "/v1/account/billing-portal", body={"return_url": "https://app.example.com/billing"}
    )
    assert status == 200
    assert body["url"].startswith("https://")
    assert (
        invoke("POST", "/v1/account/billing-portal", body={"return_url": "javascript:alert(1)"})[0]
        == 422
    )
