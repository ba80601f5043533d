"""List cursors (api.md, Input limits): a cursor this API did not issue for this caller and this
list is 400 invalid_cursor, and never starts a read; the cursors it issues page to the end."""

from __future__ import annotations

import base64
import json

import pytest

from lifecycle.usecases import cursors
from local.inprocess import claims, invoke
from tests import bad_inputs
from tests.factories import add_account

pytestmark = pytest.mark.integration

LISTS = {
    "integrations": "/v1/integrations",
    "charges": "/v1/account/charges",
}
OTHER_TENANT = claims(account_id="acc_2", user_id="mallory")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def create(count: int, token_claims=None) -> list[str]:
    ids = []
    for n in range(count):
        status, body = invoke(
            "POST",
            "/v1/integrations",
            body={"name": f"Feed {n}", "supplier": "s", "channel": "c", "plan": "starter"},
            token_claims=token_claims,
        )
        assert status == 201, body
        ids.append(body["id"])
    return ids


def page(route: str, cursor: str | None = None, limit: int = 2, token_claims=None):
    query = {"limit": str(limit)}
    if cursor is not None:
        query["cursor"] = cursor
    return invoke("GET", route, query=query, token_claims=token_claims)


def every_item(route: str, token_claims=None) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        status, body = page(route, cursor, token_claims=token_claims)
        assert status == 200, body
        found += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


@pytest.fixture
def tenants(services):
    """Two accounts with five integrations (and so five charges) each."""
    add_account(services.store, "acc_1")
    add_account(services.store, "acc_2")
    return {"acc_1": create(5), "acc_2": create(5, OTHER_TENANT)}


def refused(route: str, cursor: str, label: str, token_claims=None) -> None:
    status, body = page(route, cursor, token_claims=token_claims)
    bad_inputs.record(f"cursor|GET {route}|{label}", status)
    assert (status, body["code"]) == (400, "invalid_cursor"), (label, body)
    assert "items" not in body
    assert {"status", "code", "title", "detail"} <= set(body)


@pytest.mark.parametrize("route", LISTS.values())
def test_the_cursors_this_api_issues_page_through_every_item(tenants, route):
    mine = every_item(route)
    assert len(mine) == 5
    assert len(set(mine)) == 5
    if route == LISTS["integrations"]:
        assert mine == tenants["acc_1"]  # oldest first
    theirs = every_item(route, OTHER_TENANT)
    assert not set(mine) & set(theirs)


@pytest.mark.parametrize("name", LISTS)
def test_crafted_and_damaged_cursors_are_400_invalid_cursor(tenants, name):
    route = LISTS[name]
    _, first = page(route)
    issued = first["next_cursor"]
    encoded_id, tag = issued.split(".")
    crafted = {
        "the issue's crafted key": b64(json.dumps({"sk": "ACCOUNT#INTEGRATION#\uffff"})),
        "a crafted charge key": b64(json.dumps({"sk": "CHARGE#\uffff"})),
        "a crafted key of the account item": b64(json.dumps({"sk": "ACCOUNT"})),
        "the old unsigned form": b64(json.dumps({"sk": "ACCOUNT#INTEGRATION#int_1"})),
        "base64 of text": "bm90LWEtY3Vyc29y",
        "empty": "",
        "a dot": ".",
        "two dots": f"{issued}.x",
        "no tag": encoded_id,
        "truncated by one": issued[:-1],
        "truncated by half": issued[: len(issued) // 2],
        "one more character": issued + "A",
        "upper-cased": issued.upper(),
        "padded": issued + "==",
        "spaces": f" {issued} ",
        "newline": issued + "\n",
        "percent-encoded": issued.replace("-", "%2D").replace("_", "%5F") + "%00",
        "another id under this tag": f"{b64('int_' + 'Z' * 26)}.{tag}",
        "a zero tag": f"{encoded_id}.{'A' * 22}",
        "unicode": f"{encoded_id}.é{tag[1:]}",
        "a NUL": f"{encoded_id}\x00.{tag}",
    }
    for label, cursor in crafted.items():
        if cursor != issued:
            refused(route, cursor, label)
    # Still fine after all of that:
    status, _ = page(route, issued)
    assert status == 200


def test_a_cursor_of_another_list_is_400(tenants):
    _, integrations = page(LISTS["integrations"])
    _, charges = page(LISTS["charges"])
    refused(LISTS["charges"], integrations["next_cursor"], "an integrations cursor")
    refused(LISTS["integrations"], charges["next_cursor"], "a charges cursor")


@pytest.mark.parametrize("route", LISTS.values())
def test_another_tenants_cursor_is_400_and_reads_nothing(tenants, route):
    _, theirs = page(route, token_claims=OTHER_TENANT)
    refused(route, theirs["next_cursor"], "another tenant's cursor")
    _, mine = page(route)
    refused(route, mine["next_cursor"], "my cursor, sent by another tenant", OTHER_TENANT)


def test_a_cursor_another_user_of_the_account_got_still_pages(tenants):
    """Bound to the account, not to the user: a link shared in the team keeps working."""
    _, first = page(LISTS["integrations"])
    colleague = claims(user_id="user_2", billing=False)
    status, second = page(LISTS["integrations"], first["next_cursor"], token_claims=colleague)
    assert status == 200
    assert [i["id"] for i in second["items"]] == tenants["acc_1"][2:4]


def test_a_signed_cursor_for_an_id_not_of_the_issued_form_is_400(tenants):
    """Even a cursor signed with the key cannot name a key outside the account's items."""
    for odd in ["int_\uffff", "int_1#", "int_" + "A" * 70, "ACCOUNT", "ch_1"]:
        forged = cursors.issue(cursors.INTEGRATIONS, "acc_1", odd)
        assert forged is not None
        refused(LISTS["integrations"], forged, f"signed, id {odd!r}")


def test_cursors_survive_a_key_rotation_and_die_with_the_old_key(tenants, monkeypatch):
    monkeypatch.setenv("CURSOR_SECRETS", "key-before-rotation")
    _, first = page(LISTS["integrations"])
    monkeypatch.setenv("CURSOR_SECRETS", "key-after-rotation,key-before-rotation")
    status, second = page(LISTS["integrations"], first["next_cursor"])
    assert status == 200
    assert [i["id"] for i in second["items"]] == tenants["acc_1"][2:4]
    assert second["next_cursor"] != first["next_cursor"]
    monkeypatch.setenv("CURSOR_SECRETS", "key-after-rotation")
    refused(LISTS["integrations"], first["next_cursor"], "signed with a retired key")


def test_a_cursor_over_the_documented_length_is_422(tenants):
    status, body = page(LISTS["integrations"], "A" * 1001)
    bad_inputs.record("cursor|GET /v1/integrations|1001 characters", status)
    assert (status, body["code"]) == (422, "validation_error")
