"""Users and billing access through the real handlers (DynamoDB Local, the in-memory directory):
billing users invite, grant, revoke and remove; members see the list; the last billing user is
kept, also against two demotions at once; another tenant's user is a 404."""

from __future__ import annotations

import copy
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from functions.post_confirmation.app import lambda_handler as post_confirmation
from lifecycle.directory.fake import FakeDirectory
from lifecycle.http.problems import STATUS_BY_CODE
from lifecycle.payments.fake import FakePayments
from lifecycle.rules.calendar import utc
from lifecycle.rules.errors import DomainError
from lifecycle.rules.model import STRIPE
from lifecycle.rules.payment_method import payment_method_changed
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.services import Services
from lifecycle.usecases.users import recipients, update_user
from local.events import LambdaContext
from local.inprocess import claims, invoke
from tests.concurrency import race
from tests.factories import NEW_INTEGRATION, add_account
from tests.store_reads import outbox_events, table_items

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "cognito"
OWNER = "owner@acme.example"


class Person:
    """A user of the directory, with the token claims Cognito would issue them now (the
    account and the groups the directory holds)."""

    def __init__(self, directory: FakeDirectory, username: str) -> None:
        self.directory = directory
        self.username = username

    @property
    def claims(self) -> dict[str, Any]:
        user = self.directory.users[self.username]
        return claims(
            user.account_id or "",
            self.username,
            billing="billing" in self.directory.groups(self.username),
        )

    def call(self, method: str, route: str, path: dict[str, str] | None = None, **kwargs: Any):
        return invoke(method, route, path, token_claims=self.claims, **kwargs)


def signed_up(services: Services, directory: FakeDirectory, email: str = OWNER) -> Person:
    """A person who signed up: the trigger opened their account."""
    username = directory.sign_up(email)
    event = json.loads((SAMPLES / "post-confirmation-sign-up.json").read_text())
    event["userName"] = username
    event["request"]["userAttributes"].update({"sub": username, "email": email})
    post_confirmation(copy.deepcopy(event), LambdaContext("post-confirmation"))
    return Person(directory, username)


def invited(owner: Person, email: str, billing: bool = False) -> tuple[Person, dict[str, Any]]:
    status, user = owner.call(
        "POST", "/v1/account/users", body={"email": email, "billing_access": billing}
    )
    assert status == 201, user
    username = next(u.username for u in owner.directory.users.values() if u.email == email.lower())
    return Person(owner.directory, username), user


def test_a_billing_user_invites_a_member_who_can_freeze_but_not_read_charges(
    services: Services, directory: FakeDirectory, payments: FakePayments
):
    owner = signed_up(services, directory)
    account_id = owner.claims["custom:account_id"]
    services.store.set_customer(account_id, "cus_owner")
    account = services.store.get_account(account_id)
    assert account is not None
    services.store.commit(
        account=_with_card(account),
    )
    _, created = owner.call(
        "POST",
        "/v1/integrations",
        body=NEW_INTEGRATION,
    )

    member, user = invited(owner, "Member@Acme.example")

    assert user["id"].startswith("usr_")
    assert (user["email"], user["billing_access"], user["status"]) == (
        "member@acme.example",
        False,
        "invited",
    )
    # Cognito has the user in the account, and sends the invitation (temporary password).
    assert directory.users[member.username].account_id == account_id
    assert directory.invitations == [member.username]
    assert "UserInvited" in [e["detail-type"] for e in outbox_events(services.store, account_id)]
    frozen, _ = member.call("POST", "/v1/integrations/{id}/freeze", {"id": created["id"]})
    charges, problem = member.call("GET", "/v1/account/charges")
    invite, refused = member.call(
        "POST", "/v1/account/users", body={"email": "x@acme.example", "billing_access": True}
    )
    listed, page = member.call("GET", "/v1/account/users")
    assert frozen == 200
    assert (charges, problem["code"]) == (403, "billing_access_required")
    assert (invite, refused["code"]) == (403, "billing_access_required")
    assert listed == 200
    assert [(u["email"], u["billing_access"]) for u in page["items"]] == [
        (OWNER, True),
        ("member@acme.example", False),
    ]


def _with_card(account: Any) -> Any:
    decision = payment_method_changed(account, "pm_card", utc(2026, 11, 21, 10), STRIPE)
    assert decision is not None
    return decision


def test_granting_billing_lets_the_member_read_charges_then_revoking_takes_it_away(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    member, user = invited(owner, "member@acme.example")

    granted, view = owner.call(
        "PUT", "/v1/account/users/{id}", {"id": user["id"]}, body={"billing_access": True}
    )
    can_read, _ = member.call("GET", "/v1/account/charges")
    revoked, _ = owner.call(
        "PUT", "/v1/account/users/{id}", {"id": user["id"]}, body={"billing_access": False}
    )
    cannot, _ = member.call("GET", "/v1/account/charges")

    assert (granted, view["billing_access"]) == (200, True)
    assert can_read == 200  # a new token after the grant carries the billing group
    assert revoked == 200
    assert cannot == 403
    assert services.store.billing_users(owner.claims["custom:account_id"]) == 1


def test_a_removed_user_is_disabled_signed_out_and_no_longer_listed(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    member, user = invited(owner, "member@acme.example", billing=True)

    removed, body = owner.call("DELETE", "/v1/account/users/{id}", {"id": user["id"]})
    again, _ = owner.call("DELETE", "/v1/account/users/{id}", {"id": user["id"]})
    _, page = owner.call("GET", "/v1/account/users")
    changed, problem = owner.call(
        "PUT", "/v1/account/users/{id}", {"id": user["id"]}, body={"billing_access": True}
    )

    assert (removed, body) == (204, None)
    assert again == 204  # a retry finishes (and changes) nothing more
    assert directory.users[member.username].enabled is False
    assert member.username in directory.signed_out
    assert directory.groups(member.username) == frozenset()
    assert [u["email"] for u in page["items"]] == [OWNER]
    assert (changed, problem["code"]) == (404, "not_found")
    account_id = owner.claims["custom:account_id"]
    assert services.store.billing_users(account_id) == 1
    assert recipients(services, account_id, billing_only=False) == [
        (owner_id(services, owner), OWNER)
    ]


def owner_id(services: Services, person: Person) -> str:
    found = services.store.login(person.username)
    assert found is not None
    return found[1]


def test_the_last_billing_user_can_be_neither_demoted_nor_removed(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    me = owner_id(services, owner)
    before = table_items(services.store)

    demoted, problem = owner.call(
        "PUT", "/v1/account/users/{id}", {"id": me}, body={"billing_access": False}
    )
    removed, refused = owner.call("DELETE", "/v1/account/users/{id}", {"id": me})

    for status, body in ((demoted, problem), (removed, refused)):
        assert (status, body["code"]) == (409, "last_billing_user")
        assert "at least one user with billing access" in body["detail"]
    assert table_items(services.store) == before
    assert directory.groups(owner.username) == {"billing"}


def demote(services: Services, account_id: str, who: Person, whom: str) -> int:
    """`who` revokes `whom`'s billing access through the use case itself: a resolver's current
    event is one per process (one per execution environment on Lambda, where these would be
    two invocations). The HTTP status it answers."""
    caller = Caller(account_id, who.username, billing_access=True)
    try:
        update_user(services, caller, whom, billing_access=False)
    except DomainError as error:
        return STATUS_BY_CODE[error.code]
    return 200


def test_two_billing_users_demoting_each_other_at_once_never_leave_the_account_without_one(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    account_id = owner.claims["custom:account_id"]
    for trial in range(6):
        partner, user = invited(owner, f"partner-{trial}@acme.example", billing=True)
        answers = race(
            partial(demote, services, account_id, owner, user["id"]),
            partial(demote, services, account_id, partner, owner_id(services, owner)),
        )

        billing = [u for u in services.store.list_users(account_id) if u.billing_access]
        assert len(billing) == services.store.billing_users(account_id) == 1, answers
        assert sorted(answers) == [200, 409], answers
        # Back to one billing user, the owner, for the next trial.
        if billing[0].username != owner.username:
            status, _ = Person(directory, billing[0].username).call(
                "PUT",
                "/v1/account/users/{id}",
                {"id": owner_id(services, owner)},
                body={"billing_access": True},
            )
            assert status == 200
            status, _ = owner.call("DELETE", "/v1/account/users/{id}", {"id": billing[0].id})
            assert status == 204
        else:
            assert owner.call("DELETE", "/v1/account/users/{id}", {"id": user["id"]})[0] == 204


def test_another_tenants_user_and_ids_of_another_form_are_404(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    stranger = signed_up(services, directory, "someone@else.example")
    _, theirs = invited(stranger, "their.member@else.example")
    before = table_items(services.store)

    for user_id in (theirs["id"], "usr_unknown", "int_01ABC", "usr_1\n", "x" * 80):
        put, problem = owner.call(
            "PUT", "/v1/account/users/{id}", {"id": user_id}, body={"billing_access": True}
        )
        deleted, _ = owner.call("DELETE", "/v1/account/users/{id}", {"id": user_id})
        assert (put, problem["code"], deleted) == (404, "not_found", 404), user_id
    assert table_items(services.store) == before


def test_an_email_of_a_user_of_any_account_cannot_be_invited(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    signed_up(services, directory, "taken@else.example")
    invited(owner, "member@acme.example")
    before = table_items(services.store)

    elsewhere, problem = owner.call(
        "POST", "/v1/account/users", body={"email": "Taken@else.example", "billing_access": False}
    )
    here, again = owner.call(
        "POST", "/v1/account/users", body={"email": "member@acme.example", "billing_access": True}
    )
    myself, mine = owner.call(
        "POST", "/v1/account/users", body={"email": OWNER, "billing_access": False}
    )

    assert (elsewhere, problem["code"]) == (409, "user_exists")
    assert "another account" in problem["detail"]
    assert (here, again["code"], myself, mine["code"]) == (409, "user_exists", 409, "user_exists")
    assert table_items(services.store) == before


def test_an_invitation_that_died_after_the_directory_is_finished_by_inviting_again(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    account_id = owner.claims["custom:account_id"]
    # The directory created the user, then the request died before the table was written.
    username = directory.create_user(email="late@acme.example", account_id=account_id)

    status, user = owner.call(
        "POST", "/v1/account/users", body={"email": "late@acme.example", "billing_access": True}
    )

    assert status == 201
    assert services.store.login(username) == (account_id, user["id"])
    assert directory.groups(username) == {"billing"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-address", "billing_access": False},
        {"email": "a@b", "billing_access": False},
        {"email": "a b@example.com"},
        {"email": "x@example.com", "billing_access": "sometimes"},
        {"email": "x@example.com", "account_id": "acc_other"},
        {},
    ],
)
def test_an_invitation_that_is_not_an_address_is_422_and_changes_nothing(
    services: Services, directory: FakeDirectory, body: dict[str, Any]
):
    owner = signed_up(services, directory)
    before = table_items(services.store)

    status, problem = owner.call("POST", "/v1/account/users", body=body)

    assert (status, problem["code"]) == (422, "validation_error")
    assert table_items(services.store) == before
    assert directory.invitations == []


def test_the_directory_down_is_a_retryable_503_and_the_retry_finishes_the_change(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    _, user = invited(owner, "member@acme.example")
    directory.unavailable = True

    status, problem = owner.call(
        "PUT", "/v1/account/users/{id}", {"id": user["id"]}, body={"billing_access": True}
    )
    directory.unavailable = False
    retried, _ = owner.call(
        "PUT", "/v1/account/users/{id}", {"id": user["id"]}, body={"billing_access": True}
    )

    assert (status, problem["code"]) == (503, "service_unavailable")
    assert retried == 200
    member = next(u for u in directory.users.values() if u.email == "member@acme.example")
    assert directory.groups(member.username) == {"billing"}


def test_recipients_are_the_billing_users_or_every_user_with_their_addresses(
    services: Services, directory: FakeDirectory
):
    owner = signed_up(services, directory)
    invited(owner, "member@acme.example")
    _, biller = invited(owner, "biller@acme.example", billing=True)
    account_id = owner.claims["custom:account_id"]

    assert recipients(services, account_id, billing_only=True) == [
        (owner_id(services, owner), OWNER),
        (biller["id"], "biller@acme.example"),
    ]
    assert [r[1] for r in recipients(services, account_id, billing_only=False)] == [
        OWNER,
        "member@acme.example",
        "biller@acme.example",
    ]
    assert recipients(services, "acc_nobody", billing_only=False) == []


def test_an_account_made_without_users_has_no_billing_user_to_lose(services: Services):
    add_account(services.store, "acc_1")
    status, page = invoke("GET", "/v1/account/users")
    assert (status, page) == (200, {"items": []})
