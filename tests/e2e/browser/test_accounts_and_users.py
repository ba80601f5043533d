"""The dashboard's accounts and users, clicked through in chromium against `make dev`'s stack:
a new account from the local picker, a card added on the Checkout stand-in, an integration
created and charged, the Users section (invite, grant and revoke billing access, the last
billing user's problem, removal), and the hosted UI's sign-up page in Cognito mode."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Route, expect

from local.client import LocalStack
from tests.e2e.browser.dashboard import Dashboard, money


def address(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def test_a_new_account_adds_a_card_on_checkout_then_creates_an_integration(
    stack: LocalStack, dashboard: Dashboard
) -> None:
    email = address("merchant")
    page = dashboard.sign_up(email)

    expect(page.get_by_role("heading", name="Cancel Integrations", level=1)).to_be_visible()
    expect(page.locator("#who")).to_contain_text("Billing user")
    expect(page.locator("#integrations-body")).to_contain_text("No integrations yet")
    expect(page.locator("#account-notice")).to_contain_text("Add a payment method")
    dashboard.screenshot("new-account")

    # Creating first: 402, and its detail comes with the way out.
    dialog = dashboard.create_in_dialog(
        "Acme Supply to Shopify", "acme-supply", "shopify", "starter"
    )
    expect(dialog.get_by_role("alert")).to_contain_text("no payment method on file")
    dashboard.screenshot("create-needs-a-card")

    dialog.get_by_role("button", name="Add payment method").click()

    expect(page.get_by_role("heading", name="Add a payment method")).to_be_visible()
    dashboard.screenshot("checkout")
    page.get_by_role("button", name="Add a test card").click()

    expect(page).to_have_url(re.compile(r"#/account$"))
    expect(page.locator("#account-payment")).to_have_text("Card on file")
    expect(page.get_by_role("button", name="Manage payment method")).to_be_visible()
    page.get_by_role("link", name="Cancel Integrations").click()
    expect(page.locator("#account-notice")).to_be_hidden()
    dashboard.create_in_dialog("Acme Supply to Shopify", "acme-supply", "shopify", "starter")

    expect(dashboard.dialog).to_have_count(0)
    row = page.locator("#integrations-body tr[data-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".badge[data-status]")).to_have_attribute("data-status", "active")
    dashboard.open_account_page()
    expect(page.locator("#charges-body")).to_contain_text(money(2900))
    expect(page.locator("#charges-body tr[data-charge-id]")).to_have_count(1)
    dashboard.screenshot("charged-once")


def test_a_billing_user_manages_the_users_and_keeps_one_billing_user(
    stack: LocalStack, dashboard: Dashboard
) -> None:
    owner = address("owner")
    page = dashboard.sign_up(owner)
    dashboard.open_account_page()
    users = page.locator("#users-body")
    expect(users).to_contain_text(owner)

    member = address("member")
    invite = page.get_by_role("form", name="Invite a user")
    invite.get_by_label("Email address").fill(member)
    invite.get_by_role("button", name="Invite user").click()

    invited = users.locator("tr", has_text=member)
    expect(invited).to_contain_text("Invited")
    expect(invited.locator("[data-billing]")).to_have_text("No")
    dashboard.screenshot("invited")

    invited.get_by_role("button", name="Grant billing access").click()
    expect(invited.locator("[data-billing]")).to_have_text("Yes")
    invited.get_by_role("button", name="Revoke billing access").click()
    expect(invited.locator("[data-billing]")).to_have_text("No")

    mine = users.locator("tr", has_text=owner)
    mine.get_by_role("button", name="Revoke billing access").click()
    expect(page.locator("#users-error")).to_contain_text(
        "An account keeps at least one user with billing access"
    )
    expect(mine.locator("[data-billing]")).to_have_text("Yes")
    dashboard.screenshot("last-billing-user")

    invited.get_by_role("button", name=f"Remove {member}").click()
    expect(dashboard.dialog).to_contain_text(member)
    dashboard.dialog.get_by_role("button", name="Remove user").click()

    expect(dashboard.dialog).to_have_count(0)
    expect(users.locator("tr")).to_have_count(1)
    expect(users).not_to_contain_text(member)


def test_a_member_sees_no_users_section_and_no_new_integration(
    stack: LocalStack, dashboard: Dashboard
) -> None:
    created = stack.api.post("/_local/signup", {"email": address("owner")}).body
    page = dashboard.sign_in(created["account_id"], billing=False)

    expect(page.get_by_role("button", name="New integration")).to_be_hidden()
    dashboard.open_account_page()
    expect(page.locator("#users-block")).to_be_hidden()
    expect(page.get_by_role("button", name="Add payment method")).to_be_hidden()


def test_with_cognito_configured_create_an_account_opens_the_hosted_ui_sign_up_page(
    stack: LocalStack, dashboard: Dashboard
) -> None:
    page = dashboard.page
    hosted_ui = dashboard.with_cognito()
    opened: list[str] = []

    def sign_up_page(route: Route) -> None:
        opened.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Sign up</h1>")

    page.route(f"{hosted_ui}/signup**", sign_up_page)
    page.goto("/")
    expect(
        page.get_by_role("form", name="New account").get_by_label("Email address")
    ).to_be_hidden()

    page.get_by_role("button", name="Create an account").click()

    expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
    (url,) = opened
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["dashboard-client"]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{stack.api.base}/"]
