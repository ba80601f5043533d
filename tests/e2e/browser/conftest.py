"""Browser fixtures: the dashboard in Debian's chromium, driven by Playwright's sync API, against
the e2e stack (`stack`, tests/e2e/conftest.py: one per session).

One browser per test module (closed after it, so no Playwright loop outlives the module), a
fresh context per test (its own sessionStorage). Every test leaves screenshots under
`test-results/browser/<test name>/`: the ones it takes, then `final.png`, or `failure.png` when
it failed. Playwright never downloads a browser here: `CHROMIUM` or the `chromium` on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from local.client import LocalStack
from tests.e2e.browser.dashboard import Dashboard, Shots

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
