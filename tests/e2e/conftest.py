"""End-to-end fixtures: the local stack of `make dev` (`python -m local.dev`, the same entry point)
started as a subprocess on free ports with a fresh data folder (`local.client.LocalStack`),
driven over HTTP, always stopped.

The stack is shared by the tests of a session. Its business clock is too, so every test creates
its own account and reads dates from the answers instead of assuming them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.client import LocalStack, Tenant


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is marked `e2e` (`-m "not e2e"` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(tmp_path_factory.mktemp("e2e") / "local")
    try:
        running.start()
        print(f"\nlocal stack healthy {running.started_in:.1f} s after start")
        yield running
    finally:
        running.stop()


@pytest.fixture
def tenant(stack: LocalStack) -> Tenant:
    return Tenant(stack)
