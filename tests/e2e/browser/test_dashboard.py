"""The dashboard in a browser: the help-center flows clicked through the page (Cancel
Integrations, the refresh icon, quotes, the Account page) against `make dev`'s stack.

Each test makes its own account (the business clock is shared by the session's tests, so
dates and amounts are read from the API's answers, never assumed).
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Request, Route, expect

from lifecycle.rules.calendar import parse_instant
from local.client import RENEWAL_SLOT, Tenant, advance_past, advance_to
from tests.e2e.browser.dashboard import Dashboard, create_integration, money


def frozen_integration(tenant: Tenant, name: str) -> dict[str, Any]:
    """An integration whose freeze took effect at its first renewal, ten days into its second
    period (so its unfreeze is prorated)."""
    created = create_integration(tenant, name)
    assert tenant.post(f"/v1/integrations/{created['id']}/freeze").status == 200
    advance_past(tenant.stack, created["current_period_end"], RENEWAL_SLOT)
    frozen = tenant.integration(created["id"]).body
    assert frozen["status"] == "frozen", frozen
    advance_to(tenant.stack, parse_instant(frozen["current_period_start"]) + timedelta(days=10))
    return dict(frozen)


def test_freezing_two_selected_integrations_turns_both_freeze_pending(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    acme = create_integration(tenant, "Acme Supply to Shopify")
    globex = create_integration(tenant, "Globex Wholesale to Amazon", plan="starter")
    initech = create_integration(tenant, "Initech Parts to eBay", plan="premium")
    page = dashboard.sign_in(tenant.account_id, billing=False)  # freezing needs no billing access
    for item in (acme, globex, initech):
        expect(dashboard.badge(item["id"])).to_have_attribute("data-status", "active")
    expect(dashboard.freeze_button).to_have_text("Freeze 0 Integrations")
    expect(dashboard.freeze_button).to_be_disabled()
    expect(dashboard.cancel_button).to_be_disabled()

    page.get_by_label("Select all integrations").check()
    expect(dashboard.freeze_button).to_have_text("Freeze 3 Integrations")
    page.get_by_label("Select all integrations").uncheck()
    dashboard.checkbox(acme["id"], acme["name"]).check()
    expect(dashboard.freeze_button).to_have_text("Freeze 1 Integration")
    dashboard.checkbox(globex["id"], globex["name"]).check()
    expect(dashboard.freeze_button).to_have_text("Freeze 2 Integrations")
    expect(dashboard.cancel_button).to_have_text("Cancel 2 Integrations")
    expect(dashboard.freeze_button).to_be_enabled()
    dashboard.screenshot("two-selected")

    dashboard.freeze_button.click()

    for item in (acme, globex):
        expect(dashboard.badge(item["id"])).to_have_attribute("data-status", "freeze_pending")
        expect(dashboard.badge(item["id"])).to_have_text("Freeze pending")
        expect(dashboard.row(item["id"])).to_contain_text("Freezes on")
        expect(dashboard.refresh_icon(item["id"], item["name"])).to_be_visible()
    expect(dashboard.badge(initech["id"])).to_have_attribute("data-status", "active")
    expect(dashboard.freeze_button).to_have_text("Freeze 0 Integrations")
    expect(dashboard.freeze_button).to_be_disabled()
    for item in (acme, globex):
        stored = tenant.integration(item["id"]).body
        assert stored["status"] == "freeze_pending"
        assert stored["scheduled_change"]["action"] == "freeze"
        # Syncing goes on until the period ends; the next charge is the frozen fee.
        expect(dashboard.row(item["id"])).to_contain_text("Syncing")
        expect(dashboard.row(item["id"])).to_contain_text(money(stored["next_charge"]["amount"]))
    assert tenant.integration(initech["id"]).body["status"] == "active"


def test_cancel_needs_a_reason_then_the_refresh_icon_takes_it_back_for_free(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    acme = create_integration(tenant, "Acme Supply to Shopify")
    page = dashboard.sign_in(tenant.account_id, billing=False)
    sent: list[Request] = []
    page.on(
        "request",
        lambda request: sent.append(request) if request.method == "POST" else None,
    )
    dashboard.checkbox(acme["id"], acme["name"]).check()
    expect(dashboard.cancel_button).to_have_text("Cancel 1 Integration")

    # The dialog opens with focus in it; Escape closes it and focus goes back to the opener.
    dashboard.cancel_button.click()
    expect(dashboard.dialog).to_be_visible()
    expect(page.get_by_label("Why are you cancelling?")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dashboard.dialog).to_have_count(0)
    expect(dashboard.cancel_button).to_be_focused()

    dashboard.cancel_button.click()
    dialog = dashboard.dialog
    expect(dialog).to_contain_text(acme["name"])
    dialog.get_by_role("button", name="Cancel 1 Integration").click()

    expect(dialog.get_by_role("alert")).to_contain_text("Choose a reason")
    expect(dialog).to_be_visible()
    expect(page.get_by_label("Why are you cancelling?")).to_have_attribute("aria-invalid", "true")
    dashboard.screenshot("reason-required")
    assert sent == []
    unchanged = tenant.integration(acme["id"]).body
    assert (unchanged["status"], unchanged["version"]) == ("active", acme["version"])

    page.get_by_label("Why are you cancelling?").select_option(label="I no longer need it")
    page.get_by_label("Anything else we should know?").fill("Moving this feed elsewhere.")
    dialog.get_by_role("button", name="Cancel 1 Integration").click()

    expect(dashboard.dialog).to_have_count(0)
    expect(dashboard.badge(acme["id"])).to_have_attribute("data-status", "cancel_pending")
    expect(dashboard.row(acme["id"])).to_contain_text("Deleted on")
    stored = tenant.integration(acme["id"]).body
    assert stored["status"] == "cancel_pending"
    assert stored["cancellation"]["reason"] == "no_longer_needed"
    assert stored["cancellation"]["comment"] == "Moving this feed elsewhere."
    assert [r.url.rsplit("/v1", 1)[-1] for r in sent] == ["/integrations/bulk"]
    assert (sent[0].post_data_json or {}).get("action") == "cancel"
    dashboard.screenshot("cancel-pending")

    dashboard.refresh_icon(acme["id"], acme["name"]).click()

    expect(dashboard.badge(acme["id"])).to_have_attribute("data-status", "active")
    expect(dashboard.refresh_icon(acme["id"], acme["name"])).to_have_count(0)
    expect(dashboard.dialog).to_have_count(0)  # free: no quote to review
    back = tenant.integration(acme["id"]).body
    assert (back["status"], back["scheduled_change"]) == ("active", None)
    assert [c["amount"] for c in tenant.charges()] == [acme["monthly_fee"]]  # nothing charged


def test_a_frozen_integration_is_unfrozen_through_its_quote_by_a_billing_user(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    frozen = frozen_integration(tenant, "Umbrella Goods to WooCommerce")
    page = dashboard.sign_in(tenant.account_id, billing=True)
    expect(dashboard.badge(frozen["id"])).to_have_attribute("data-status", "frozen")
    expect(dashboard.row(frozen["id"])).to_contain_text("Not syncing")

    with page.expect_response(re.compile(r"/reactivation-quote$")) as answered:
        dashboard.refresh_icon(frozen["id"], frozen["name"]).click()
    quote = answered.value.json()

    dialog = dashboard.dialog
    expect(dialog).to_be_visible()
    assert quote["amount"] > 0 and quote["id"]
    # The API quotes the same amount to the same user at the same business time.
    again = tenant.get(f"/v1/integrations/{frozen['id']}/reactivation-quote").body
    assert again["amount"] == quote["amount"]
    expect(page.locator("#quote-total")).to_have_text(money(quote["amount"]))
    expect(page.locator("#quote-lines tr")).to_have_count(len(quote["lines"]))
    for line in quote["lines"]:
        expect(page.locator("#quote-lines")).to_contain_text(line["description"])
        expect(page.locator("#quote-lines")).to_contain_text(money(line["amount"]))
    expect(page.locator("#quote-lines")).to_contain_text("Prorated")
    pay = dialog.get_by_role("button", name=f"Pay {money(quote['amount'])}")
    expect(pay).to_be_focused()
    dashboard.screenshot("quote")

    with page.expect_request(re.compile(r"/reactivate$")) as paying:
        pay.click()

    assert paying.value.headers.get("idempotency-key")
    assert paying.value.post_data_json == {"quote_id": quote["id"]}
    expect(dashboard.dialog).to_have_count(0)
    expect(dashboard.badge(frozen["id"])).to_have_attribute("data-status", "active")
    expect(dashboard.row(frozen["id"])).to_contain_text("Syncing")
    back = tenant.integration(frozen["id"]).body
    assert (back["status"], back["sync_enabled"]) == ("active", True)
    paid = [c for c in tenant.charges() if c["amount"] == quote["amount"]]
    assert [c["status"] for c in paid] == ["succeeded"]


def test_a_member_sees_the_quote_without_pay_and_no_billing_controls(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    frozen = frozen_integration(tenant, "Umbrella Goods to WooCommerce")
    page = dashboard.sign_in(tenant.account_id, billing=False)

    dashboard.refresh_icon(frozen["id"], frozen["name"]).click()

    dialog = dashboard.dialog
    expect(dialog).to_be_visible()
    expect(page.locator("#quote-total")).to_have_text(re.compile(r"^\$\d+\.\d\d$"))
    expect(dialog.get_by_role("button", name=re.compile("^Pay"))).to_have_count(0)
    expect(dialog).to_contain_text("Only a user with billing access can pay")
    dashboard.screenshot("member-quote")
    dialog.get_by_role("button", name="Close").click()
    expect(dashboard.dialog).to_have_count(0)
    expect(dashboard.refresh_icon(frozen["id"], frozen["name"])).to_be_focused()
    assert tenant.integration(frozen["id"]).body["status"] == "frozen"

    dashboard.open_account_page()

    expect(page.locator("#account-status .badge")).to_have_text("Active")
    expect(page.get_by_role("heading", name="Upcoming charges, next 31 days")).to_be_visible()
    expect(
        page.get_by_text("managed by the users of your account who have billing access")
    ).to_be_visible()
    for control in ("Cancel account", "Reactivate account", "Manage payment method"):
        expect(page.get_by_role("button", name=control)).to_have_count(0)
    expect(page.get_by_role("heading", name="Charges", exact=True)).to_have_count(0)
    dashboard.screenshot("member-account")


def test_an_error_is_shown_as_its_detail_in_its_row_and_the_account_page_lists_charges(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    acme = create_integration(tenant, "Acme Supply to Shopify")
    initech = create_integration(tenant, "Initech Parts to eBay", plan="premium")
    assert (
        tenant.post(f"/v1/integrations/{initech['id']}/cancel", {"reason": "other"}).status == 200
    )
    page = dashboard.sign_in(tenant.account_id, billing=True)
    expect(dashboard.badge(initech["id"])).to_have_attribute("data-status", "cancel_pending")

    # A network failure is said in words, next to the buttons; nothing changes.
    page.route("**/v1/integrations/bulk", lambda route: route.abort())
    dashboard.checkbox(acme["id"], acme["name"]).check()
    dashboard.freeze_button.click()
    expect(page.locator("#bulk-error")).to_have_text(re.compile("Could not reach the server"))
    expect(dashboard.badge(acme["id"])).to_have_attribute("data-status", "active")
    page.unroute("**/v1/integrations/bulk")

    # One failing item: its row says why, the other item is frozen all the same.
    page.get_by_label("Select all integrations").check()
    with page.expect_response(re.compile(r"/v1/integrations/bulk$")) as answered:
        dashboard.freeze_button.click()
    results = {r["id"]: r for r in answered.value.json()["results"]}

    refused = results[initech["id"]]["error"]
    assert refused["code"] == "invalid_transition"
    expect(dashboard.row(initech["id"]).locator(".row-error")).to_have_text(refused["detail"])
    expect(dashboard.badge(initech["id"])).to_have_attribute("data-status", "cancel_pending")
    expect(dashboard.badge(acme["id"])).to_have_attribute("data-status", "freeze_pending")
    expect(dashboard.row(acme["id"]).locator(".row-error")).to_have_count(0)
    expect(page.locator("#bulk-error")).to_be_empty()
    dashboard.screenshot("row-error")

    dashboard.open_account_page()

    charges = tenant.charges()
    assert len(charges) == 2
    rows = page.locator("#charges-body tr[data-charge-id]")
    expect(rows).to_have_count(len(charges))
    for charge in charges:
        row = page.locator(f'#charges-body tr[data-charge-id="{charge["id"]}"]')
        expect(row).to_contain_text(charge["description"])
        expect(row).to_contain_text(money(charge["amount"]))
        expect(row).to_contain_text("Paid")
    upcoming = tenant.get("/v1/account/upcoming-charges?days=31").body
    expect(page.locator("#upcoming-body tr[data-integration-id]")).to_have_count(
        len(upcoming["items"])
    )
    expect(page.locator("#upcoming-total")).to_have_text(money(upcoming["total"]))
    for control in ("Cancel account", "Manage payment method"):
        expect(page.get_by_role("button", name=control)).to_be_visible()
    dashboard.screenshot("account")


def test_a_billing_user_cancels_the_account_with_a_reason_and_takes_it_back_for_free(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    acme = create_integration(tenant, "Acme Supply to Shopify")
    page = dashboard.sign_in(tenant.account_id, billing=True)
    dashboard.open_account_page()
    expect(page.locator("#account-status .badge")).to_have_text("Active")

    page.get_by_role("button", name="Cancel account").click()
    dialog = dashboard.dialog
    dialog.get_by_role("button", name="Cancel account").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Choose a reason")
    assert tenant.get("/v1/account").body["status"] == "active"
    page.get_by_label("Why are you cancelling?").select_option("switched_provider")
    dialog.get_by_role("button", name="Cancel account").click()

    expect(dashboard.dialog).to_have_count(0)
    expect(page.locator("#account-status .badge")).to_have_text("Cancel pending")
    assert tenant.get("/v1/account").body["status"] == "cancel_pending"
    expect(page.get_by_role("button", name="Cancel account")).to_have_count(0)
    dashboard.screenshot("account-cancel-pending")
    page.get_by_role("link", name="Cancel Integrations").click()
    expect(page.locator("#account-notice")).to_contain_text("Your account is cancelled")
    expect(dashboard.badge(acme["id"])).to_have_attribute("data-status", "active")
    expect(dashboard.row(acme["id"])).to_contain_text("Suspends on")

    dashboard.open_account_page()
    page.get_by_role("button", name="Reactivate account").click()

    expect(page.locator("#account-status .badge")).to_have_text("Active")
    expect(dashboard.dialog).to_have_count(0)  # free while the period lasts: no quote
    assert tenant.get("/v1/account").body["status"] == "active"
    assert [c["amount"] for c in tenant.charges()] == [acme["monthly_fee"]]


def test_with_cognito_configured_the_code_from_the_hosted_ui_is_exchanged_with_its_pkce_verifier(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    acme = create_integration(tenant, "Acme Supply to Shopify")
    page = dashboard.page
    hosted_ui = dashboard.with_cognito()
    authorized: list[dict[str, list[str]]] = []
    exchanged: list[dict[str, list[str]]] = []
    code = "code-" + tenant.account_id

    def hosted_ui_signs_in(route: Route) -> None:
        # What Cognito does after the password (and the TOTP): back to the page with a code.
        query = parse_qs(urlsplit(route.request.url).query)
        authorized.append(query)
        back = f"{query['redirect_uri'][0]}?{urlencode({'code': code, 'state': query['state'][0]})}"
        route.fulfill(status=302, headers={"Location": back})

    def token_endpoint(route: Route) -> None:
        # Cognito's /oauth2/token: the code is good only with the verifier of its challenge.
        form = parse_qs(route.request.post_data or "")
        exchanged.append(form)
        (challenge,) = authorized[0]["code_challenge"]
        verifier = form["code_verifier"][0]
        digest = hashlib.sha256(verifier.encode()).digest()
        good = (
            form["code"] == [code]
            and form["grant_type"] == ["authorization_code"]
            and base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
        )
        cors = {"Access-Control-Allow-Origin": tenant.stack.api.base}
        if not good:
            route.fulfill(status=400, json={"error": "invalid_grant"}, headers=cors)
            return
        tokens = {
            "id_token": tenant.new_token(billing=True),
            "access_token": "not-used-by-the-api",
            "refresh_token": "not-kept",
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        route.fulfill(status=200, json=tokens, headers=cors)

    page.route(f"{hosted_ui}/oauth2/authorize**", hosted_ui_signs_in)
    page.route(f"{hosted_ui}/oauth2/token", token_endpoint)
    page.goto("/")
    expect(page.get_by_label("Account id")).to_be_hidden()

    page.get_by_role("button", name="Continue to sign-in").click()

    expect(dashboard.badge(acme["id"])).to_have_attribute("data-status", "active")
    (query,) = authorized
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["dashboard-client"]
    assert query["code_challenge_method"] == ["S256"]
    (form,) = exchanged
    assert form["client_id"] == ["dashboard-client"]
    assert form["redirect_uri"] == query["redirect_uri"]
    assert len(form["code_verifier"][0]) == 43  # 32 random bytes, base64url
    assert "code=" not in page.url  # taken out of the address bar at once
    stored = page.evaluate("JSON.stringify(sessionStorage)")
    assert "not-kept" not in stored and "dashboard.oauth_verifier" not in stored
    expect(page.locator("#who")).to_contain_text(tenant.account_id)
    expect(page.locator("#who")).to_contain_text("Billing user")


def test_a_disabled_account_is_reactivated_through_its_quote_and_paid_up_front(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    acme = create_integration(tenant, "Acme Supply to Shopify")
    assert tenant.post("/v1/account/cancel", {"reason": "too_expensive"}).status == 200
    advance_past(tenant.stack, acme["current_period_end"], RENEWAL_SLOT)
    assert tenant.get("/v1/account").body["status"] == "disabled"
    page = dashboard.sign_in(tenant.account_id, billing=True)
    expect(dashboard.badge(acme["id"])).to_have_attribute("data-status", "suspended")
    expect(page.locator("#account-notice")).to_contain_text("Your account is disabled")
    dashboard.open_account_page()
    expect(page.locator("#account-status .badge")).to_have_text("Disabled")

    with page.expect_response(re.compile(r"/v1/account/reactivation-quote$")) as answered:
        page.get_by_role("button", name="Reactivate account").click()
    quote = answered.value.json()

    assert quote["amount"] == acme["monthly_fee"]
    expect(page.locator("#quote-total")).to_have_text(money(quote["amount"]))
    expect(page.locator("#quote-lines")).to_contain_text(acme["name"])
    dashboard.screenshot("account-quote")
    dashboard.dialog.get_by_role("button", name=f"Pay {money(quote['amount'])}").click()

    expect(dashboard.dialog).to_have_count(0)
    expect(page.locator("#account-status .badge")).to_have_text("Active")
    expect(page.get_by_role("button", name="Reactivate account")).to_have_count(0)
    assert tenant.integration(acme["id"]).body["status"] == "active"
    expect(page.locator("#charges-body")).to_contain_text(money(quote["amount"]))
    expect(page.locator("#charges-body tr[data-charge-id]")).to_have_count(2)


def test_manage_payment_method_opens_the_billing_portal_and_its_link_comes_back(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    """The portal is Stripe's page; locally the stack's stand-in for it (localstripe has none)
    shows the card on file and links back to the return URL the dashboard gave."""
    page = dashboard.sign_in(tenant.account_id, billing=True)
    dashboard.open_account_page()

    page.get_by_role("button", name="Manage payment method").click()

    expect(page.get_by_role("heading", name="Billing portal (local)")).to_be_visible()
    expect(page.get_by_text("Card on file: visa ending 4242.")).to_be_visible()
    expect(page.get_by_text(tenant.customer_id)).to_be_visible()
    dashboard.screenshot("portal")
    page.get_by_role("link", name="Return to the dashboard").click()
    expect(page).to_have_url(re.compile(r"#/account$"))
    expect(page.get_by_role("button", name="Manage payment method")).to_be_visible()


def test_the_charges_table_downloads_a_receipt_and_an_emails_receipt_link_opens_it(
    tenant: Tenant, dashboard: Dashboard
) -> None:
    create_integration(tenant, "Acme Supply to Shopify")
    (charge,) = tenant.charges()
    page = dashboard.sign_in(tenant.account_id, billing=True)
    dashboard.open_account_page()

    button = page.locator(f'#charges-body tr[data-charge-id="{charge["id"]}"] [data-receipt]')
    expect(button).to_have_text(charge["receipt_number"])
    with page.expect_download() as downloaded:
        button.click()
    pdf = Path(downloaded.value.path()).read_bytes()
    assert downloaded.value.suggested_filename == f"receipt-{charge['receipt_number']}.pdf"
    assert pdf.startswith(b"%PDF-")
    dashboard.screenshot("receipt-button")

    # The link of the receipt email (`<dashboard>#receipt/<id>`): the Account page, the PDF.
    with page.expect_download() as linked:
        page.goto(f"/#receipt/{charge['id']}")
    assert linked.value.suggested_filename == f"receipt-{charge['receipt_number']}.pdf"
    expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    assert page.url.endswith("#account")
