"""The dashboard page as the browser tests see it: its locators, numbered screenshots, amounts
as it shows them, and integrations made through the API for it to show."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from local.client import Tenant
from local.template import ROOT

RESULTS = ROOT / "test-results" / "browser"


def money(cents: int) -> str:
    """What the dashboard shows for an amount in US cents: 4900 is "$49.00"."""
    return f"${cents / 100:,.2f}"


class Shots:
    """Numbered screenshots of one test, in test-results/browser/<test name>/."""

    def __init__(self, test_name: str) -> None:
        self.folder = RESULTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def take(self, page: Page, label: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{label}.png"
        page.screenshot(path=path, full_page=True)
        return path


class Dashboard:
    """The dashboard page of one test, with the locators the scenarios share."""

    def __init__(self, page: Page, shots: Shots) -> None:
        self.page = page
        self.shots = shots

    def sign_in(self, account_id: str, *, billing: bool) -> Page:
        """Signed in (the local sign-in form) to `account_id` as a billing user or a member: the
        page, showing the integrations."""
        self.page.goto("/")
        self.page.get_by_label("Account id").fill(account_id)
        self.page.get_by_label("Billing user" if billing else "Member").check()
        self.page.get_by_role("button", name="Sign in").click()
        expect(
            self.page.get_by_role("heading", name="Cancel Integrations", level=1)
        ).to_be_visible()
        expect(self.page.locator("#who")).to_contain_text(account_id)
        return self.page

    def sign_up(self, email: str) -> Page:
        """A new account signed up for on the sign-in page by `email`: its first (billing) user,
        signed in."""
        self.page.goto("/")
        signup = self.page.get_by_role("form", name="New account")
        signup.get_by_label("Email address").fill(email)
        signup.get_by_role("button", name="New account").click()
        expect(self.page.locator("#who")).to_contain_text(email)
        return self.page

    def create_in_dialog(self, name: str, supplier: str, channel: str, plan: str) -> Locator:
        """The New integration dialog filled in and sent (`Create and pay`): the dialog."""
        self.page.get_by_role("button", name="New integration").click()
        dialog = self.dialog
        dialog.get_by_label("Name").fill(name)
        dialog.get_by_label("Supplier").fill(supplier)
        dialog.get_by_label("Sales channel").fill(channel)
        dialog.get_by_label("Plan").select_option(plan)
        dialog.get_by_role("button", name="Create and pay").click()
        return dialog

    def with_cognito(self, hosted_ui: str = "https://auth.example.test") -> str:
        """The page configured as deployed (`config.js`: Cognito's hosted UI at `hosted_ui`,
        the API on its own origin); the hosted UI's address."""
        settings = {
            "apiBase": "",
            "auth": "cognito",
            "cognito": {"domain": hosted_ui, "clientId": "dashboard-client", "token": "id_token"},
        }
        config = f"window.DASHBOARD_CONFIG = {json.dumps(settings)};"
        self.page.route(
            "**/config.js",
            lambda route: route.fulfill(content_type="text/javascript", body=config),
        )
        return hosted_ui

    def screenshot(self, label: str) -> Path:
        return self.shots.take(self.page, label)

    def row(self, integration_id: str) -> Locator:
        return self.page.locator(f'#integrations-body tr[data-id="{integration_id}"]')

    def badge(self, integration_id: str) -> Locator:
        return self.row(integration_id).locator(".badge[data-status]")

    def checkbox(self, integration_id: str, name: str) -> Locator:
        return self.row(integration_id).get_by_role("checkbox", name=f"Select {name}")

    def refresh_icon(self, integration_id: str, name: str) -> Locator:
        return self.row(integration_id).get_by_role("button", name=f"Reactivate {name}")

    @property
    def freeze_button(self) -> Locator:
        return self.page.locator("#freeze-selected")

    @property
    def cancel_button(self) -> Locator:
        return self.page.locator("#cancel-selected")

    @property
    def dialog(self) -> Locator:
        return self.page.locator("dialog[open]")

    def open_account_page(self) -> None:
        self.page.get_by_role("link", name="Account").click()
        expect(self.page.get_by_role("heading", name="Account", level=1)).to_be_focused()


def create_integration(tenant: Tenant, name: str, plan: str = "standard") -> dict[str, Any]:
    """POST /v1/integrations: charged up front, so it carries an Idempotency-Key (api.md)."""
    supplier, _, channel = name.lower().partition(" to ")
    answer = tenant.post(
        "/v1/integrations",
        {
            "name": name,
            "supplier": supplier.replace(" ", "-"),
            "channel": channel or "shopify",
            "plan": plan,
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert answer.status == 201, answer.body
    return dict(answer.body)
