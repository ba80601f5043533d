"""Renewal throughput and the due-versus-total sweep ratio, against DynamoDB Local (payments fake).

Goals (renewals issue): at least 200 renewals/s on this 2-core machine; the sweep for 1,000 due
among 100,000 integrations takes at most 1.2x the sweep for 1,000 due among 1,000.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from bench.harness import TimedClient, dynamodb, median, record, table
from lifecycle.clock import FixedClock
from lifecycle.payments.fake import FakePayments
from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.model import Account, AccountStatus, Integration, Status
from lifecycle.rules.renewal import DueKind
from lifecycle.store.repository import Store
from lifecycle.usecases import renewals
from lifecycle.usecases.services import Services

T0 = utc(2026, 11, 21, 10)
DUE = int(os.environ.get("BENCH_DUE", "1000"))
TOTAL = int(os.environ.get("BENCH_TOTAL", "100000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))
REPEATS = int(os.environ.get("BENCH_SWEEP_REPEATS", "5"))


def _integration(n: int, anchor) -> Integration:
    return Integration(
        id=f"int_{n:07d}",
        account_id=f"acc_{n % 500:03d}",
        name=f"Feed {n}",
        supplier="s",
        channel="c",
        plan="standard",
        status=Status.ACTIVE,
        current_period_start=anchor,
        current_period_end=add_month(anchor, 1),
        anchor=anchor,
        created_at=anchor,
        version=1,
    )


def _load(store: Store, integrations: list[Integration]) -> None:
    chunks = [integrations[i : i + 500] for i in range(0, len(integrations), 500)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(store.load_integrations, chunks))


def _accounts(store: Store) -> None:
    for n in range(500):
        store.create_account(
            Account(
                id=f"acc_{n:03d}",
                status=AccountStatus.ACTIVE,
                created_at=T0,
                stripe_customer_id=f"cus_{n}",
                has_payment_method=True,
                version=1,
            )
        )


def _sweep_query_seconds(stores: dict[str, Store], now) -> dict[str, tuple[float, int]]:
    """Median time for each store to read everything due (the sweep's own work), measured
    alternately after a warm-up so that neither side gets the cold JVM; and index items read."""
    times: dict[str, list[float]] = {name: [] for name in stores}
    read: dict[str, int] = {}
    for round_ in range(REPEATS + 1):
        for name, store in stores.items():
            store.counter.items_read = 0
            began = time.perf_counter()
            found = sum(1 for _ in store.due(DueKind.RENEWAL, now))
            if round_:  # the first round warms up
                times[name].append(time.perf_counter() - began)
            read[name] = store.counter.items_read
            assert found == DUE, found
    return {name: (median(times[name]), read[name]) for name in stores}


def main() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    end = add_month(T0, 1)
    not_due_anchor = T0 + timedelta(days=10)
    with dynamodb({"IntegrationsTable": "bench-renew-small"}) as raw:
        small = Store("bench-renew-small", client=raw)
        _load(small, [_integration(n, T0) for n in range(DUE)])

        big_client = TimedClient(raw)
        from local.tables import create_tables  # noqa: PLC0415

        create_tables(raw, {"IntegrationsTable": "bench-renew-big"})
        big = Store("bench-renew-big", client=big_client)
        began = time.perf_counter()
        _load(
            big,
            [_integration(n, T0) for n in range(DUE)]
            + [_integration(n, not_due_anchor) for n in range(DUE, TOTAL)],
        )
        load_seconds = time.perf_counter() - began
        measured = _sweep_query_seconds(
            {"small": small, "big": Store("bench-renew-big", client=raw)}, end
        )
        (small_seconds, small_read), (big_seconds, big_read) = measured["small"], measured["big"]

        # Renew every due integration, workers in parallel as the SQS consumers would be.
        _accounts(big)
        payments = FakePayments()
        services = Services(
            store=big, payments=payments, clock=FixedClock(end), catalog=DEFAULT_CATALOG
        )
        keys = list(renewals.due(services, DueKind.RENEWAL))
        big_client.reset()
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = list(
                pool.map(
                    lambda k: renewals.renew(services, k.account_id, k.integration_id).result, keys
                )
            )
        renew_seconds = time.perf_counter() - began
        assert outcomes.count("renewed") == DUE, outcomes[:5]
        assert len(payments.succeeded) == DUE
        assert not list(renewals.due(services, DueKind.RENEWAL))
        trips = big_client.calls / DUE
        capacity = big_client.capacity / DUE

    figures = {
        "due": DUE,
        "total": TOTAL,
        "renewals_per_second": round(DUE / renew_seconds, 1),
        "workers": WORKERS,
        "dynamodb_round_trips_per_renewal": round(trips, 2),
        "capacity_units_per_renewal": round(capacity, 2),
        "sweep_query_seconds_due_of_1000": round(small_seconds, 4),
        "sweep_query_seconds_due_of_total": round(big_seconds, 4),
        "sweep_ratio_total_vs_due_only": round(big_seconds / small_seconds, 3),
        "index_items_read_small": small_read,
        "index_items_read_big": big_read,
        "load_seconds": round(load_seconds, 1),
    }
    table(
        f"Renewals against DynamoDB Local ({DUE} due; {WORKERS} workers; payments fake)",
        ["figure", "value", "goal"],
        [
            ["renewals per second", figures["renewals_per_second"], ">= 200"],
            ["DynamoDB round trips per renewal", figures["dynamodb_round_trips_per_renewal"], ""],
            ["capacity units per renewal", figures["capacity_units_per_renewal"], ""],
            [f"sweep read, {DUE} due of {DUE} (s)", figures["sweep_query_seconds_due_of_1000"], ""],
            [
                f"sweep read, {DUE} due of {TOTAL} (s)",
                figures["sweep_query_seconds_due_of_total"],
                "",
            ],
            ["ratio", figures["sweep_ratio_total_vs_due_only"], "<= 1.2"],
            ["index items read (both)", f"{small_read} / {big_read}", "= due"],
        ],
    )
    record("renewals", figures)
    return figures


if __name__ == "__main__":
    main()
