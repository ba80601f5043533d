"""Shared benchmark plumbing: a timed DynamoDB client, DynamoDB Local, results.json."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.model import Account, AccountStatus, Integration, Status
from local.dynamodb_local import running
from local.tables import create_tables

RESULTS = Path(__file__).with_name("results.json")
# The benchmarks' clock starts here.
T0 = utc(2026, 11, 21, 10)

# DynamoDB Local ignores credentials, but boto3 wants some; nothing here can reach AWS.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Integrations",
    "POWERTOOLS_SERVICE_NAME": "integrations",
    # The use cases record metrics; outside a handler nothing flushes them but the buffer.
    "POWERTOOLS_METRICS_DISABLED": "true",
    # The list cursors' signing key (lifecycle.usecases.cursors), generated for the run.
    "CURSOR_SECRETS": secrets.token_urlsafe(32),
}.items():
    os.environ.setdefault(_name, _value)


class TimedClient:
    """Wraps a boto3 DynamoDB client: counts round trips and the time spent in them."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0
        self.seconds = 0.0
        self.capacity = 0.0
        self.by_operation: Counter[str] = Counter()
        self.transaction_items = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.calls, self.seconds, self.capacity = 0, 0.0, 0.0
            self.by_operation.clear()
            self.transaction_items = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name in ("get_waiter", "get_paginator", "meta"):
            return target

        def timed(*args: Any, **kwargs: Any) -> Any:
            if name in (
                "get_item",
                "query",
                "batch_get_item",
                "transact_write_items",
                "put_item",
                "update_item",
                "delete_item",
                "batch_write_item",
                "scan",
            ):
                kwargs.setdefault("ReturnConsumedCapacity", "TOTAL")
            began = time.perf_counter()
            response: Any = None
            try:
                response = target(*args, **kwargs)
            finally:
                # Worker threads share one client: the counters are updated under a lock.
                with self._lock:
                    self.seconds += time.perf_counter() - began
                    self.calls += 1
                    self.by_operation[name] += 1
                    self.transaction_items += len(kwargs.get("TransactItems", ()))
                    consumed = (
                        response.get("ConsumedCapacity") if isinstance(response, dict) else None
                    )
                    entries = (
                        consumed if isinstance(consumed, list) else [consumed] if consumed else []
                    )
                    for entry in entries:
                        self.capacity += float(entry.get("CapacityUnits", 0))
            return response

        return timed


@contextmanager
def dynamodb(tables: dict[str, str]) -> Iterator[Any]:
    with running() as endpoint:
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32),
        )
        create_tables(client, tables)
        yield client


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def record(section: str, figures: dict[str, Any]) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[section] = figures
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    print(f"\n{title}")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)))


def card_account(account_id: str, created_at: datetime, customer_id: str) -> Account:
    """An active account with a card on file, as a sign-up and Checkout leave it (benchmark
    data)."""
    return Account(
        id=account_id,
        status=AccountStatus.ACTIVE,
        created_at=created_at,
        stripe_customer_id=customer_id,
        has_payment_method=True,
        version=1,
    )


def active_integration(integration_id: str, account_id: str, anchor: datetime) -> Integration:
    """An active standard integration in its first month from `anchor` (benchmark data)."""
    return Integration(
        id=integration_id,
        account_id=account_id,
        name=f"Feed {integration_id}",
        supplier="acme-supply",
        channel="shopify",
        plan="standard",
        status=Status.ACTIVE,
        current_period_start=anchor,
        current_period_end=add_month(anchor, 1),
        anchor=anchor,
        created_at=anchor,
        version=1,
    )
