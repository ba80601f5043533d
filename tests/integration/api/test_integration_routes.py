"""Every /v1/integrations route through its real lambda_handler, against DynamoDB Local."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from lifecycle.rules.model import AccountStatus
from lifecycle.rules.renewal import decide_renewal
from local.inprocess import claims, invoke
from tests.factories import T0, add_account

pytestmark = pytest.mark.integration

MEMBER = claims(billing=False)
OTHER_TENANT = claims(account_id="acc_2", user_id="mallory")
ID = "/v1/integrations/{id}"


def create(name: str = "Acme Supply to Shopify", plan: str = "standard", **kwargs):
    body = {"name": name, "supplier": "acme-supply", "channel": "shopify", "plan": plan}
    return invoke("POST", "/v1/integrations", body=body, **kwargs)


@pytest.fixture
def account(services):
    return add_account(services.store)


@pytest.fixture
def integration_id(account, services) -> str:
    status, body = create()
    assert status == 201, body
    return body["id"]


def test_create_charges_the_first_month_up_front_and_answers_201(account, services, payments):
    status, body = create(plan="premium")
    assert status == 201
    assert body["status"] == "active"
    assert body["sync_enabled"] is True
    assert (body["monthly_fee"], body["frozen_fee"], body["currency"]) == (9900, 900, "usd")
    assert body["current_period_start"] == "2026-11-21T10:00:00Z"
    assert body["current_period_end"] == "2026-12-21T10:00:00Z"
    assert body["next_charge"] == {"amount": 9900, "at": "2026-12-21T10:00:00Z"}
    assert [c.request.amount for c in payments.succeeded] == [9900]
    assert payments.succeeded[0].request.idempotency_key == f"create:{body['id']}"
    ledger = services.store.list_charges("acc_1")[0]
    assert [(c.amount, c.status.value, c.applied) for c in ledger] == [(9900, "succeeded", True)]


def test_create_with_a_declined_card_is_402_and_leaves_no_integration(account, services, payments):
    payments.cards["cus_acc_1"] = "declined"
    status, body = create()
    assert status == 402
    assert body["code"] == "payment_failed"
    assert services.store.list_integrations("acc_1").integrations == ()
    assert [c.status.value for c in services.store.list_charges("acc_1")[0]] == ["failed"]


def test_create_needs_billing_access(account, services, payments):
    status, body = create(token_claims=MEMBER)
    assert (status, body["code"]) == (403, "billing_access_required")
    assert payments.charges == []


def test_create_with_an_unknown_plan_is_422_and_charges_nothing(account, payments):
    status, body = create(plan="enterprise")
    assert (status, body["code"]) == (422, "validation_error")
    assert payments.charges == []


@pytest.mark.parametrize(
    "field",
    ["status", "monthly_fee", "frozen_fee", "current_period_end", "version", "account_id", "id"],
)
def test_server_owned_fields_are_refused_on_create(account, services, payments, field):
    body = {"name": "x", "supplier": "s", "channel": "c", "plan": "starter", field: "injected"}
    status, problem = invoke("POST", "/v1/integrations", body=body)
    assert (status, problem["code"]) == (422, "validation_error")
    assert any(field in e["loc"] for e in problem["errors"])
    assert services.store.list_integrations("acc_1").integrations == ()
    assert payments.charges == []


def test_malformed_json_is_400(account):
    status, body = invoke("POST", "/v1/integrations", raw_body="{not json")
    assert (status, body["code"]) == (400, "malformed_json")


def test_no_token_is_401(account):
    status, body = invoke("GET", "/v1/integrations", authorized=False)
    assert (status, body["code"]) == (401, "unauthorized")


def test_get_returns_the_integration_with_its_settings(integration_id):
    status, body = invoke("GET", ID, {"id": integration_id})
    assert status == 200
    assert body["settings"] == {"pricing_rules": {}, "category_mapping": {}, "catalog_rules": {}}


def test_another_tenants_integration_is_404_like_an_unknown_one(integration_id):
    other_status, other = invoke("GET", ID, {"id": integration_id}, token_claims=OTHER_TENANT)
    unknown_status, unknown = invoke(
        "GET", ID, {"id": "int_does_not_exist"}, token_claims=OTHER_TENANT
    )
    assert other_status == unknown_status == 404
    assert other["code"] == unknown["code"] == "not_found"
    assert other["title"] == unknown["title"]


def test_list_pages_with_a_cursor_and_filters_by_status(account, services):
    ids = [create(name=f"Feed {i}")[1]["id"] for i in range(3)]
    invoke("POST", f"{ID}/freeze", {"id": ids[1]})
    status, page = invoke("GET", "/v1/integrations", query={"limit": "2"})
    assert status == 200
    assert [i["id"] for i in page["items"]] == ids[:2]
    assert page["items"][0]["settings"] is None
    status, rest = invoke(
        "GET", "/v1/integrations", query={"limit": "2", "cursor": page["next_cursor"]}
    )
    assert [i["id"] for i in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None
    status, frozen = invoke("GET", "/v1/integrations", query={"status": "freeze_pending"})
    assert [i["id"] for i in frozen["items"]] == [ids[1]]


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"status": "deleted"}]
)
def test_list_query_validation_is_422(account, query):
    status, body = invoke("GET", "/v1/integrations", query=query)
    assert (status, body["code"]) == (422, "validation_error")


def test_a_forged_cursor_is_400(account):
    status, body = invoke("GET", "/v1/integrations", query={"cursor": "bm90LWEtY3Vyc29y"})
    assert (status, body["code"]) == (400, "invalid_cursor")


def test_freeze_is_pending_until_the_period_end_and_member_users_may_do_it(integration_id):
    status, body = invoke("POST", f"{ID}/freeze", {"id": integration_id}, token_claims=MEMBER)
    assert status == 200
    assert body["status"] == "freeze_pending"
    assert body["sync_enabled"] is True
    assert body["scheduled_change"] == {"action": "freeze", "effective_at": "2026-12-21T10:00:00Z"}
    assert body["next_charge"] == {"amount": 900, "at": "2026-12-21T10:00:00Z"}


def test_freeze_twice_is_a_no_op_success(integration_id):
    first = invoke("POST", f"{ID}/freeze", {"id": integration_id})[1]
    status, second = invoke("POST", f"{ID}/freeze", {"id": integration_id})
    assert status == 200
    assert second["version"] == first["version"]


def test_cancel_needs_a_reason_and_then_is_cancel_pending_with_no_next_charge(
    integration_id, services
):
    status, body = invoke("POST", f"{ID}/cancel", {"id": integration_id}, body={})
    assert (status, body["code"]) == (422, "validation_error")
    status, body = invoke("POST", f"{ID}/cancel", {"id": integration_id}, body={"reason": "bogus"})
    assert status == 422
    status, body = invoke(
        "POST",
        f"{ID}/cancel",
        {"id": integration_id},
        body={"reason": "too_expensive", "comment": "pricey"},
    )
    assert status == 200
    assert body["status"] == "cancel_pending"
    assert body["next_charge"] is None
    assert body["cancellation"]["reason"] == "too_expensive"
    assert body["scheduled_change"] == {"action": "cancel", "effective_at": "2026-12-21T10:00:00Z"}
    history = invoke("GET", f"{ID}/history", {"id": integration_id})[1]["items"]
    assert [h["type"] for h in history] == ["integration_created", "cancel_scheduled"]
    assert history[1]["actor"] == "user:user_1"


def test_uncancel_with_the_refresh_icon_is_free(integration_id, payments):
    invoke("POST", f"{ID}/cancel", {"id": integration_id}, body={"reason": "other"})
    quote = invoke("GET", f"{ID}/reactivation-quote", {"id": integration_id})[1]
    assert (quote["amount"], quote["id"]) == (0, None)
    status, body = invoke("POST", f"{ID}/reactivate", {"id": integration_id}, token_claims=MEMBER)
    assert status == 200
    assert body["status"] == "active"
    assert len(payments.charges) == 1  # the creation only


def test_reactivating_an_active_integration_is_invalid_transition(integration_id):
    status, body = invoke("POST", f"{ID}/reactivate", {"id": integration_id})
    assert (status, body["code"], body["current_status"]) == (409, "invalid_transition", "active")


def frozen_integration(services, integration_id):
    """Freeze, then let the renewal take effect (the renewals issue owns the sweep)."""
    invoke("POST", f"{ID}/freeze", {"id": integration_id})
    subject = services.store.get_integration("acc_1", integration_id)
    renewal = decide_renewal(
        subject,
        subject.current_period_end,
        account_status=AccountStatus.ACTIVE,
        catalog=services.catalog,
    )
    services.store.commit(renewal.paid)
    return renewal.paid.after


def test_paid_unfreeze_needs_a_quote_then_charges_exactly_the_prorated_quote(
    integration_id, services, payments, clock
):
    frozen = frozen_integration(services, integration_id)
    assert frozen.current_period_start == T0 + timedelta(days=30)  # 2026-12-21T10:00:00Z
    clock.set(frozen.current_period_start + timedelta(days=10, hours=12))  # 2026-12-31T22:00:00Z
    status, problem = invoke("POST", f"{ID}/reactivate", {"id": integration_id})
    assert (status, problem["code"]) == (409, "quote_required")
    quote = problem["quote"]
    # (4900 - 900) for the 20.5 of 31 days left: 4000 * 1771200 / 2678400 = 2645.16 -> 2645
    assert quote["amount"] == 2645
    assert quote["lines"][0]["period_end"] == "2027-01-21T10:00:00Z"
    status, member = invoke(
        "POST",
        f"{ID}/reactivate",
        {"id": integration_id},
        body={"quote_id": quote["id"]},
        token_claims=MEMBER,
    )
    assert (status, member["code"]) == (403, "billing_access_required")
    status, body = invoke(
        "POST", f"{ID}/reactivate", {"id": integration_id}, body={"quote_id": quote["id"]}
    )
    assert status == 200, body
    assert body["status"] == "active"
    assert [c.request.amount for c in payments.succeeded] == [4900, 2645]


def test_an_expired_quote_is_refused_and_nothing_is_charged(
    integration_id, services, payments, clock
):
    frozen_integration(services, integration_id)
    clock.set(T0 + timedelta(days=35))
    quote = invoke("GET", f"{ID}/reactivation-quote", {"id": integration_id})[1]
    clock.advance(timedelta(minutes=15))
    status, body = invoke(
        "POST", f"{ID}/reactivate", {"id": integration_id}, body={"quote_id": quote["id"]}
    )
    assert (status, body["code"]) == (409, "quote_expired")
    assert len(payments.charges) == 1


def test_a_quote_made_stale_by_a_change_is_refused(integration_id, services, payments, clock):
    frozen_integration(services, integration_id)
    clock.set(T0 + timedelta(days=35))
    quote = invoke("GET", f"{ID}/reactivation-quote", {"id": integration_id})[1]
    invoke("PUT", f"{ID}/settings", {"id": integration_id}, body={"pricing_rules": {"markup": 2}})
    status, body = invoke(
        "POST", f"{ID}/reactivate", {"id": integration_id}, body={"quote_id": quote["id"]}
    )
    assert (status, body["code"]) == (409, "quote_stale")
    assert len(payments.charges) == 1


def test_settings_are_replaced_verbatim_and_oversized_settings_are_413(integration_id):
    document = {
        "pricing_rules": {"markup": 1.35, "round": "0.99"},
        "category_mapping": {"a": ["b"]},
    }
    status, body = invoke("PUT", f"{ID}/settings", {"id": integration_id}, body=document)
    assert status == 200
    assert body["settings"]["pricing_rules"] == {"markup": 1.35, "round": "0.99"}
    huge = {"catalog_rules": {"blob": "x" * (64 * 1024)}}
    status, body = invoke("PUT", f"{ID}/settings", {"id": integration_id}, body=huge)
    assert (status, body["code"]) == (413, "too_large")
    assert (
        invoke("GET", ID, {"id": integration_id})[1]["settings"]["pricing_rules"]["markup"] == 1.35
    )


def test_settings_refuse_unknown_fields(integration_id):
    status, body = invoke(
        "PUT", f"{ID}/settings", {"id": integration_id}, body={"status": "frozen"}
    )
    assert (status, body["code"]) == (422, "validation_error")


def test_bulk_freeze_reports_each_item_and_one_failure_fails_no_other(account, services):
    ids = [create(name=f"Feed {i}")[1]["id"] for i in range(3)]
    invoke("POST", f"{ID}/cancel", {"id": ids[0]}, body={"reason": "other"})
    status, body = invoke(
        "POST",
        "/v1/integrations/bulk",
        body={"action": "freeze", "ids": [*ids, "int_unknown"]},
        token_claims=MEMBER,
    )
    assert status == 200
    results = {r["id"]: r for r in body["results"]}
    assert results[ids[0]]["ok"] is False
    assert results[ids[0]]["error"]["code"] == "invalid_transition"
    assert results[ids[1]]["integration"]["status"] == "freeze_pending"
    assert results[ids[2]]["integration"]["status"] == "freeze_pending"
    assert results["int_unknown"]["error"]["code"] == "not_found"


def test_bulk_cancel_without_a_reason_fails_each_item(integration_id):
    status, body = invoke(
        "POST", "/v1/integrations/bulk", body={"action": "cancel", "ids": [integration_id]}
    )
    assert status == 200
    assert body["results"][0]["error"]["code"] == "validation_error"


def test_bulk_over_100_ids_is_413(account):
    ids = [f"int_{i}" for i in range(101)]
    status, body = invoke("POST", "/v1/integrations/bulk", body={"action": "freeze", "ids": ids})
    assert (status, body["code"]) == (413, "too_large")


def test_same_idempotency_key_and_body_replays_the_first_answer_with_one_charge(account, payments):
    key = {"idempotency-key": str(uuid.uuid4())}
    first_status, first = create(headers=key)
    second_status, second = create(headers=key)
    assert first_status == second_status == 201
    assert second == first
    assert len(payments.succeeded) == 1


def test_same_idempotency_key_with_another_body_is_422(account, payments):
    key = {"idempotency-key": str(uuid.uuid4())}
    create(headers=key)
    status, body = create(name="Another feed", headers=key)
    assert (status, body["code"]) == (422, "idempotency_key_reused")
    assert len(payments.succeeded) == 1


def test_a_bad_idempotency_key_is_400(account):
    status, body = create(headers={"idempotency-key": "x" * 256})
    assert (status, body["code"]) == (400, "bad_request")


def test_a_declined_create_is_not_replayed_as_success_after_the_card_is_fixed(account, payments):
    key = {"idempotency-key": str(uuid.uuid4())}
    payments.cards["cus_acc_1"] = "declined"
    assert create(headers=key)[0] == 402
    payments.cards["cus_acc_1"] = "ok"
    # A 402 is a final answer for this key: the merchant retries with a new key.
    assert create(headers=key)[0] == 402
    assert create(headers={"idempotency-key": str(uuid.uuid4())})[0] == 201
