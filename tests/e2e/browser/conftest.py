"""Browser fixtures: the dashboard in Debian's chromium, driven by Playwright's sync API, against
the e2e stack (`stack`, tests/e2e/conftest.py: one per session).

One browser per test module (closed after it, so no Playwright loop outlives the module), a
fresh context per test (its own sessionStorage). Every test leaves screenshots under
`test-results/browser/<test name>/`: the ones it takes, then `final.png`, or `failure.png` when
it failed. Playwright never downloads a browser here: `CHROMIUM` or the `chromium` on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.e2e.conftest import ROOT, LocalStack, Tenant

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--disable-component-update",
    "--no-first-run",
    "--mute-audio",
]
RESULTS = ROOT / "test-results" / "browser"
# Each action is a request through the local gateway, a Lambda handler and localstripe, on a
# machine whose two cores are shared with the stack and another test worker.
expect.set_options(timeout=20_000)

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the item, so the page fixture knows if the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


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

    def sign_in(self, account_id: str, *, billing: bool) -> None:
        self.page.goto("/")
        self.page.get_by_label("Account id").fill(account_id)
        self.page.get_by_label("Billing user" if billing else "Member").check()
        self.page.get_by_role("button", name="Sign in").click()
        expect(
            self.page.get_by_role("heading", name="Cancel Integrations", level=1)
        ).to_be_visible()
        expect(self.page.locator("#who")).to_contain_text(account_id)

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `make install` installs Debian's package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def dashboard(
    browser: Browser, stack: LocalStack, request: pytest.FixtureRequest
) -> Iterator[Dashboard]:
    shots = Shots(request.node.name)
    context = browser.new_context(
        base_url=stack.api.base, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    try:
        yield Dashboard(page, shots)
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        failed = any(report.failed for report in reports.values())
        try:
            shots.take(page, "failure" if failed else "final")
        finally:
            context.close()
    assert not script_errors, f"uncaught errors in the page: {script_errors}"


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
