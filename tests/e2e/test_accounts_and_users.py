"""Accounts that real people open, on `make dev`'s stack over HTTP: sign-up through the real
post-confirmation trigger (the Cognito stand-in), a card added on the Checkout stand-in and
confirmed by Stripe's signed webhook, then the users of the account and their billing access,
with tokens whose claims come from the user pool."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid
from functools import partial
from typing import Any

import boto3

from local.client import LocalStack, Response
from local.localstripe import SECRET_KEY, payment_intents
from tests.log_scan import findings

CREATE = {
    "name": "Acme Supply to Shopify",
    "supplier": "acme",
    "channel": "shopify",
    "plan": "starter",
}


def address(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


class Person:
    """Someone with a user of the stack's pool: tokens with the pool's claims, as they are
    now (a new token after a change of their billing access, as after a new sign-in)."""

    def __init__(self, stack: LocalStack, user_id: str) -> None:
        self.stack = stack
        self.user_id = user_id

    @property
    def token(self) -> str:
        answer = self.stack.api.post("/_local/tokens", {"user_id": self.user_id})
        assert answer.status == 201, answer.body
        return str(answer.body["token"])

    def claims(self) -> dict[str, Any]:
        return dict(self.stack.api.post("/_local/tokens", {"user_id": self.user_id}).body["claims"])

    def call(self, method: str, path: str, body: Any = None) -> Response:
        return self.stack.api.request(method, path, body, token=self.token)


def signed_up(stack: LocalStack, label: str = "owner") -> tuple[Person, str]:
    answer = stack.api.post("/_local/signup", {"email": address(label)})
    assert answer.status == 201, answer.body
    assert answer.body["user_id"].startswith("usr_")
    return Person(stack, answer.body["user_id"]), str(answer.body["account_id"])


def stripe_base(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.env['STRIPE_PORT']}"


def customer_of(stack: LocalStack, account_id: str) -> str:
    """The account's Stripe customer, found in localstripe by the metadata sign-up's customer
    carries (only a test does this: the system reconciles by the id it stores)."""
    request = urllib.request.Request(
        f"{stripe_base(stack)}/v1/customers?limit=100",
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        customers = json.load(answer)["data"]
    (found,) = [
        c["id"] for c in customers if (c.get("metadata") or {}).get("account_id") == account_id
    ]
    return str(found)


def add_card_on_checkout(owner: Person, card: str) -> str:
    """What a billing user does: Add payment method, then a card on Stripe's page. The page
    answers once Stripe's webhook was handled; returns the page's HTML."""
    session = owner.call(
        "POST", "/v1/account/payment-method", {"return_url": f"{owner.stack.api.base}/#/account"}
    )
    assert session.status == 200, session.body
    url = session.body["url"]
    with urllib.request.urlopen(url, timeout=30) as page:
        html = page.read().decode()
    request = urllib.request.Request(
        f"{url}/complete",
        data=urllib.parse.urlencode({"card": card}).encode(),
        method="POST",
        headers={"Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as done:
        assert done.status == 200
    return html


def test_sign_up_add_a_card_on_checkout_then_create_is_charged_once(stack: LocalStack):
    owner, account_id = signed_up(stack)

    account = owner.call("GET", "/v1/account")
    empty = owner.call("GET", "/v1/integrations")
    refused = owner.call("POST", "/v1/integrations", CREATE)
    page = add_card_on_checkout(owner, "ok")
    with_card = owner.call("GET", "/v1/account")
    created = owner.call("POST", "/v1/integrations", CREATE)

    assert account.body["id"] == account_id
    assert (account.body["status"], account.body["has_payment_method"]) == ("active", False)
    assert sum(account.body["counts"].values()) == 0
    assert empty.body["items"] == []
    assert (refused.status, refused.body["code"]) == (402, "payment_failed")
    assert refused.body["payment_method_required"] is True
    assert "Add payment method" in refused.body["detail"]
    assert "Add a test card" in page and "Add a declining card" in page
    assert with_card.body["has_payment_method"] is True
    assert created.status == 201, created.body
    intents = payment_intents(stripe_base(stack), customer_of(stack, account_id))
    assert [(i["status"], i["amount"]) for i in intents] == [("succeeded", 2900)]
    claims = owner.claims()
    assert claims["custom:account_id"] == account_id and claims["cognito:groups"] == ["billing"]


def test_a_declining_card_added_instead_gives_402_at_create_with_nothing_created(
    stack: LocalStack,
):
    owner, account_id = signed_up(stack)
    add_card_on_checkout(owner, "declined")

    refused = owner.call("POST", "/v1/integrations", CREATE)

    assert owner.call("GET", "/v1/account").body["has_payment_method"] is True
    assert (refused.status, refused.body["code"]) == (402, "payment_failed")
    assert owner.call("GET", "/v1/integrations").body["items"] == []
    intents = payment_intents(stripe_base(stack), customer_of(stack, account_id))
    assert [i["status"] for i in intents] != ["succeeded"]
    assert all(i["status"] != "succeeded" for i in intents)


def test_the_card_route_works_on_a_signed_up_account_and_detaching_the_card_clears_it(
    stack: LocalStack,
):
    owner, account_id = signed_up(stack)

    swapped = stack.api.put(f"/_local/accounts/{account_id}/card", {"card": "ok"})
    customer = customer_of(stack, account_id)
    default = _default_card(stack, customer)
    _stripe(stack, "POST", f"/v1/payment_methods/{default}/detach")
    cleared = _eventually(
        lambda: owner.call("GET", "/v1/account").body["has_payment_method"] is False
    )

    assert swapped.status == 200
    assert default.startswith("pm_")
    assert cleared
    assert owner.call("POST", "/v1/integrations", CREATE).status == 402


def _stripe(stack: LocalStack, method: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{stripe_base(stack)}{path}",
        data=b"" if method == "POST" else None,
        method=method,
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        found: dict[str, Any] = json.load(answer)
        return found


def _default_card(stack: LocalStack, customer: str) -> str:
    return str(
        _stripe(stack, "GET", f"/v1/customers/{customer}")["invoice_settings"][
            "default_payment_method"
        ]
    )


def _eventually(check: Any, timeout: float = 20.0) -> bool:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_a_member_freezes_but_needs_billing_access_for_charges_until_granted(stack: LocalStack):
    owner, account_id = signed_up(stack)
    stack.api.put(f"/_local/accounts/{account_id}/card", {"card": "ok"})
    created = owner.call("POST", "/v1/integrations", CREATE).body

    invited = owner.call(
        "POST", "/v1/account/users", {"email": address("member"), "billing_access": False}
    )
    member = Person(stack, invited.body["id"])
    frozen = member.call("POST", f"/v1/integrations/{created['id']}/freeze")
    refused = member.call("GET", "/v1/account/charges")
    granted = owner.call("PUT", f"/v1/account/users/{member.user_id}", {"billing_access": True})
    reads = member.call("GET", "/v1/account/charges")
    revoked = owner.call("PUT", f"/v1/account/users/{member.user_id}", {"billing_access": False})
    refused_again = member.call("GET", "/v1/account/charges")
    removed = owner.call("DELETE", f"/v1/account/users/{member.user_id}")
    token_after = stack.api.post("/_local/tokens", {"user_id": member.user_id})
    listed = owner.call("GET", "/v1/account/users")

    assert invited.status == 201, invited.body
    assert invited.body["status"] == "invited"
    assert frozen.status == 200 and frozen.body["status"] == "freeze_pending"
    assert (refused.status, refused.body["code"]) == (403, "billing_access_required")
    assert (granted.status, granted.body["billing_access"]) == (200, True)
    assert reads.status == 200 and len(reads.body["items"]) == 1
    assert revoked.status == 200
    assert refused_again.status == 403
    assert removed.status == 204
    assert token_after.status == 404  # disabled in the pool: no new sign-in
    assert [u["id"] for u in listed.body["items"]] == [owner.user_id]
    assert "UserInvited" in [
        e["detail-type"]
        for e in stack.api.get("/_local/events").body["items"]
        if e["detail"].get("account_id") == account_id
    ]


def test_the_last_billing_user_stays_even_when_two_demote_each_other_at_once(stack: LocalStack):
    owner, _ = signed_up(stack)
    mine = owner.call("PUT", f"/v1/account/users/{owner.user_id}", {"billing_access": False})
    alone = owner.call("DELETE", f"/v1/account/users/{owner.user_id}")
    partner_id = owner.call(
        "POST", "/v1/account/users", {"email": address("partner"), "billing_access": True}
    ).body["id"]
    partner = Person(stack, partner_id)
    tokens = {owner.user_id: owner.token, partner_id: partner.token}

    start = threading.Barrier(2)
    answers: list[int] = []

    def demote(who: str, whom: str) -> None:
        start.wait()
        answers.append(
            stack.api.put(
                f"/v1/account/users/{whom}", {"billing_access": False}, token=tokens[who]
            ).status
        )

    threads = [
        threading.Thread(target=partial(demote, owner.user_id, partner_id)),
        threading.Thread(target=partial(demote, partner_id, owner.user_id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (mine.status, mine.body["code"]) == (409, "last_billing_user")
    assert (alone.status, alone.body["code"]) == (409, "last_billing_user")
    assert sorted(answers) == [200, 409], answers
    users = owner.call("GET", "/v1/account/users").body["items"]
    assert sum(u["billing_access"] for u in users) == 1


def test_another_tenants_user_id_is_404(stack: LocalStack):
    owner, _ = signed_up(stack)
    stranger, _ = signed_up(stack, "stranger")

    for method, body in (("PUT", {"billing_access": False}), ("DELETE", None)):
        answer = owner.call(method, f"/v1/account/users/{stranger.user_id}", body)
        assert (answer.status, answer.body["code"]) == (404, "not_found")
    assert stranger.claims()["cognito:groups"] == ["billing"]


def test_signing_up_an_address_twice_and_inviting_a_users_address_are_refused(
    stack: LocalStack,
):
    email = address("twice")
    first = stack.api.post("/_local/signup", {"email": email})
    again = stack.api.post("/_local/signup", {"email": email})
    other, _ = signed_up(stack, "other")
    invited = other.call("POST", "/v1/account/users", {"email": email, "billing_access": False})

    assert first.status == 201
    assert again.status == 409
    assert (invited.status, invited.body["code"]) == (409, "user_exists")


def test_the_functions_log_no_email_address_nor_card_number(stack: LocalStack):
    """Sign-ups, invitations and cards were made above: the functions' log (CloudWatch's, here)
    holds ids and outcomes, never an address or a card number."""
    log = stack.data_dir / "functions.log"
    lines = log.read_text(errors="replace").splitlines()

    found = [f for f in findings(lines) if f[0] in ("email address", "card number")]

    assert lines
    assert found == []


def test_the_user_pool_holds_what_the_tokens_say(stack: LocalStack):
    owner, account_id = signed_up(stack)
    cognito = boto3.client(
        "cognito-idp",
        endpoint_url=_moto_endpoint(stack),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    (pool,) = cognito.list_user_pools(MaxResults=60)["UserPools"]
    username = owner.claims()["sub"]

    user = cognito.admin_get_user(UserPoolId=pool["Id"], Username=username)
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool["Id"], Username=username)

    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["custom:account_id"] == account_id
    assert [g["GroupName"] for g in groups["Groups"]] == ["billing"]


def _moto_endpoint(stack: LocalStack) -> str:
    # The banner, near the start of the stack's whole log.
    found = re.search(r"(http://\S+) \(moto\)", stack.log.read_text(errors="replace"))
    assert found, stack.tail()
    return found.group(1)
