"""Tenant isolation and mass assignment, generated from docs/openapi.json."""

from __future__ import annotations

import json
import re

import pytest

from local.inprocess import claims, invoke
from local.openapi import OUTPUT
from tests.factories import add_account

pytestmark = pytest.mark.integration

DOCUMENT = json.loads(OUTPUT.read_text(encoding="utf-8"))
ID_ROUTES = [
    (method.upper(), re.sub(r"\{[^}]+\}", "{id}", path))
    for path, operations in DOCUMENT["paths"].items()
    for method in operations
    if "{" in path
]
BODIES = {
    "/v1/integrations/{id}/cancel": {"reason": "other"},
    "/v1/integrations/{id}/settings": {"pricing_rules": {"stolen": True}},
    "/v1/integrations/{id}/reactivate": {},
    "/v1/account/users/{id}": {"billing_access": True},
}
SERVER_OWNED = [
    "status",
    "monthly_fee",
    "frozen_fee",
    "current_period_start",
    "current_period_end",
    "version",
    "account_id",
    "billing_state",
    "sync_enabled",
    "id",
    "currency",
]


def _body_routes():
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                yield method.upper(), re.sub(r"\{[^}]+\}", "{id}", path)


@pytest.fixture
def victim(services):
    add_account(services.store, "acc_1")
    add_account(services.store, "acc_2")
    status, body = invoke(
        "POST",
        "/v1/integrations",
        body={"name": "Victim feed", "supplier": "s", "channel": "c", "plan": "starter"},
    )
    assert status == 201
    return body


def test_the_matrix_covers_every_route_with_an_id():
    assert len(ID_ROUTES) == 10


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
def test_another_tenants_id_answers_404_and_changes_nothing(services, victim, method, route):
    # The victim's user on the users routes (a member of acc_1), its integration elsewhere.
    status, member = invoke("POST", "/v1/account/users", body={"email": "member@victim.example"})
    assert status == 201, member
    target = member["id"] if route.startswith("/v1/account/users/") else victim["id"]
    before = services.store.load("acc_1", victim["id"])
    history_before = services.store.history("acc_1", victim["id"])
    users_before = services.store.list_users("acc_1")
    status, body = invoke(
        method,
        route,
        {"id": target},
        body=BODIES.get(route),
        token_claims=claims(account_id="acc_2"),
    )
    assert (status, body["code"]) == (404, "not_found")
    assert services.store.load("acc_1", victim["id"]) == before
    assert services.store.history("acc_1", victim["id"]) == history_before
    assert services.store.list_users("acc_1") == users_before


@pytest.mark.parametrize(("method", "route"), list(_body_routes()))
@pytest.mark.parametrize("field", SERVER_OWNED)
def test_server_owned_fields_in_any_body_are_refused_and_never_persisted(
    services, victim, method, route, field
):
    valid = {
        "/v1/integrations": {"name": "n", "supplier": "s", "channel": "c", "plan": "starter"},
        "/v1/integrations/bulk": {"action": "freeze", "ids": [victim["id"]]},
        "/v1/account/cancel": {"reason": "other"},
        "/v1/account/billing-portal": {"return_url": "https://app.example.com/"},
        "/v1/account/payment-method": {"return_url": "https://app.example.com/"},
        "/v1/account/users": {"email": "new@victim.example", "billing_access": False},
    }.get(route, BODIES.get(route, {}))
    before = services.store.load("acc_1", victim["id"])
    status, body = invoke(method, route, {"id": victim["id"]}, body={**valid, field: "injected"})
    assert (status, body["code"]) == (422, "validation_error"), (route, field)
    assert services.store.load("acc_1", victim["id"]) == before
