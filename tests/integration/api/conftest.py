"""API tests: the real handlers against DynamoDB Local, with the payments fake and a fixed clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from lifecycle.clock import FixedClock
from lifecycle.directory.fake import FakeDirectory
from lifecycle.payments.fake import FakePayments
from lifecycle.rules.calendar import utc
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.model import Account, AccountStatus
from lifecycle.settings import settings
from lifecycle.store.repository import Store
from lifecycle.usecases.services import Services, use_services
from local.tables import create_tables

T0 = utc(2026, 11, 21, 10)


@pytest.fixture(scope="session")
def idempotency_table(dynamodb_client) -> str:
    """One idempotency table per test process: Powertools keeps its persistence layer."""
    name = f"idempotency-session-{os.getpid()}"
    create_tables(dynamodb_client, {"IdempotencyTable": name})
    os.environ["IDEMPOTENCY_TABLE_NAME"] = name
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Integrations")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "integrations")
    settings.cache_clear()
    return name


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments()


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def services(
    store: Store,
    payments: FakePayments,
    clock: FixedClock,
    directory: FakeDirectory,
    idempotency_table: str,
) -> Iterator[Services]:
    injected = Services(
        store=store, payments=payments, clock=clock, catalog=DEFAULT_CATALOG, directory=directory
    )
    use_services(injected)
    yield injected
    use_services(None)


def add_account(
    store: Store, account_id: str = "acc_1", *, card: bool = True, **changes
) -> Account:
    account = Account(
        id=account_id,
        status=changes.pop("status", AccountStatus.ACTIVE),
        created_at=T0,
        stripe_customer_id=f"cus_{account_id}" if card else None,
        has_payment_method=card,
        version=1,
        **changes,
    )
    store.create_account(account)
    return account


def table_items(store: Store) -> list[dict[str, Any]]:
    """Every item of the store's table, in key order: compared before and after a request that
    must change nothing."""
    found: list[dict[str, Any]] = []
    query: dict[str, Any] = {"TableName": store.table_name, "ConsistentRead": True}
    while True:
        page = store.client.scan(**query)
        found.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(found, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
