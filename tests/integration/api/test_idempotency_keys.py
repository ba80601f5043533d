"""Idempotency keys belong to the user who sent them, and a stored answer is replayed only to a
caller who may have it (api.md, idempotency): through the real handlers and DynamoDB Local."""

from __future__ import annotations

import uuid

import pytest

from local.inprocess import claims, invoke
from tests.factories import add_account

pytestmark = pytest.mark.integration

BILLING = claims(user_id="usr_billing", billing=True)
MEMBER = claims(user_id="usr_member", billing=False)
DEMOTED = claims(user_id="usr_billing", billing=False)  # the billing user, billing since revoked


@pytest.fixture
def account(services):
    return add_account(services.store)


def _key() -> dict[str, str]:
    return {"idempotency-key": str(uuid.uuid4())}


ROUTES = {
    "billing portal": ("POST", "/v1/account/billing-portal", {"return_url": "https://x.test/"}),
    "create": (
        "POST",
        "/v1/integrations",
        {"name": "Feed", "supplier": "s", "channel": "c", "plan": "starter"},
    ),
    "account cancel": ("POST", "/v1/account/cancel", {"reason": "other"}),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_member_sending_a_billing_users_key_gets_403_not_the_stored_answer(
    account, payments, route
):
    method, path, body = ROUTES[route]
    key = _key()
    first_status, first = invoke(method, path, body=body, headers=key, token_claims=BILLING)
    assert first_status in (200, 201), first
    status, problem = invoke(method, path, body=body, headers=key, token_claims=MEMBER)
    assert (status, problem["code"]) == (403, "billing_access_required")
    assert "url" not in problem and "id" not in problem


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_user_who_lost_billing_access_replaying_their_own_key_gets_403(account, route):
    method, path, body = ROUTES[route]
    key = _key()
    assert invoke(method, path, body=body, headers=key, token_claims=BILLING)[0] in (200, 201)
    status, problem = invoke(method, path, body=body, headers=key, token_claims=DEMOTED)
    assert (status, problem["code"]) == (403, "billing_access_required")


def test_the_same_users_replay_gets_the_first_answer_without_the_internal_mark(account, payments):
    method, path, body = ROUTES["create"]
    key = _key()
    first = invoke(method, path, body=body, headers=key, token_claims=BILLING)
    again = invoke(method, path, body=body, headers=key, token_claims=BILLING)
    assert first == again and first[0] == 201
    assert len(payments.succeeded) == 1


def test_two_users_with_the_same_key_are_two_requests(account, payments):
    method, path, body = ROUTES["create"]
    key = _key()
    other = claims(user_id="usr_other_billing", billing=True)
    first = invoke(method, path, body=body, headers=key, token_claims=BILLING)
    second = invoke(method, path, body=body, headers=key, token_claims=other)
    assert first[0] == second[0] == 201
    assert first[1]["id"] != second[1]["id"]
    assert len(payments.succeeded) == 2


def test_a_free_action_replayed_by_the_same_member_is_replayed(account):
    method, path, body = ROUTES["create"]
    status, created = invoke(method, path, body=body, token_claims=BILLING)
    assert status == 201
    key = _key()
    route = "/v1/integrations/{id}/freeze"
    first = invoke("POST", route, {"id": created["id"]}, headers=key, token_claims=MEMBER)
    again = invoke("POST", route, {"id": created["id"]}, headers=key, token_claims=MEMBER)
    assert first == again and first[0] == 200
