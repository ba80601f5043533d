"""Renewal throughput and the due-versus-total sweep ratio, against DynamoDB Local (payments fake).

Goals (renewals issue): at least 200 renewals/s on this 2-core machine; the sweep for 1,000 due
among 100,000 integrations takes at most 1.2x the sweep for 1,000 due among 1,000.

DynamoDB Local, not the design, sets the throughput here: its transactions serialise. So the
same run measures the emulator's own ceiling beside the figure: the renewal's DynamoDB requests
replayed raw (no lifecycle code), on the same table, with the same workers: one BatchGetItem of
the account, its receipt counter (the receipt's number is taken in the settle transaction,
conditionally on this read), the integration and its settings; the ledger line as one
conditional PutItem (its own guard); one TransactWriteItems of as many items as a renewal's
commit writes. The shape before issue 17 (the line and a guard item in a two-item transaction
instead of the PutItem) is replayed in the same run for comparison, and the figures measured
with it then are kept in results.json (`before_issue_17`).

DynamoDB Local drifts over a bench (as its table and stream grow, the same replay runs up to a
third slower or faster), so the two are measured side by side: the first renewal alone gives
the requests to replay, a warm-up replay follows, then ROUNDS rounds each renew a slice of the
due integrations and replay as many renewals in each shape, the order turned round every round.
Each figure is the median of its rounds; the share of the ceiling is the median of the rounds'
own shares.

It also times the sweep's leases: the 1,000 due entries leased and handed out by
`renewals.sweep_batches` (a conditional UpdateItem each, ten side by side), per second.

The large table is loaded fast: BatchWriteItem from several threads (a client without botocore's
parameter validation, the loader's own CPU cost on two cores), the stream switched on only once
loaded (DynamoDB Local writes a stream record per item, which makes loading 2.5x slower; the
renewals then run with the stream on, as deployed), and the integrations that are not due
written as their keys and due-index entry only: the sweep reads the index (keys only), never
those items, so the index holds as many entries as the table has integrations.

The load has a time budget (LOAD_BUDGET_SECONDS, 60 s): 100,000 integrations take about 55 s
on an idle 2-core machine. On a busier one the load stops at the budget, in steps of 10,000,
and `total` in results.json is what was loaded (with `total_target` and `load_stopped_at_budget`
beside it), so the sweep ratio is always measured against the largest table that fitted.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from bench.harness import (
    T0,
    TimedClient,
    active_integration,
    card_account,
    dynamodb,
    median,
    record,
    table,
)
from lifecycle.clock import FixedClock
from lifecycle.payments.fake import FakePayments
from lifecycle.rules.calendar import add_month
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.model import Integration
from lifecycle.rules.renewal import DueKind
from lifecycle.store.repository import Store
from lifecycle.usecases import renewals
from lifecycle.usecases.services import Services
from local.tables import table_definitions

DUE = int(os.environ.get("BENCH_DUE", "1000"))
TOTAL = int(os.environ.get("BENCH_TOTAL", "100000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))
LOAD_THREADS = int(os.environ.get("BENCH_LOAD_THREADS", "8"))
LOAD_BUDGET_SECONDS = float(os.environ.get("BENCH_LOAD_BUDGET_SECONDS", "60"))
LOAD_STEP = 10_000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))  # renewals and replays, alternately
# What `make bench` measured with the two-transaction write path (bench/results.json as of the
# merge before issue 17; the issue quotes 65.9 renewals/s, 70%, from a quieter run).
BEFORE_ISSUE_17 = {
    "renewals_per_second": 44.8,
    "renewals_per_second_ceiling": 71.5,
    "renewals_share_of_ceiling": 0.63,
    "transactions_per_renewal": 2.0,
    "capacity_units_per_renewal": 12.0,
    "dynamodb_round_trips_per_renewal": 3.02,
}
REPEATS = int(os.environ.get("BENCH_SWEEP_REPEATS", "5"))
ACCOUNTS = 500
BATCH = 25  # BatchWriteItem's limit
# What the sweep's query and its index need of an integration that is not due.
INDEX_ONLY = ("PK", "SK", "GSI1PK", "GSI1SK")


def _integration(n: int, anchor: datetime) -> Integration:
    return active_integration(f"int_{n:07d}", f"acc_{n % ACCOUNTS:03d}", anchor)


def _item(store: Store, integration: Integration) -> dict[str, Any]:
    """The item the store writes for an integration (its one definition)."""
    return store._integration_item(integration)


def _in_parallel[T](work: Callable[[T], object], inputs: Sequence[T], threads: int) -> None:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, inputs))


def _write(client: Any, table_name: str, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem, 25 items a call from LOAD_THREADS threads, unprocessed items retried."""

    def put(chunk: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {table_name: [{"PutRequest": {"Item": i}} for i in chunk]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    _in_parallel(put, [items[i : i + BATCH] for i in range(0, len(items), BATCH)], LOAD_THREADS)


def _create_table(client: Any, table_name: str, *, stream: bool) -> None:
    definition = copy.deepcopy(table_definitions()["IntegrationsTable"]["create"])
    if not stream:
        definition.pop("StreamSpecification", None)
    client.create_table(TableName=table_name, **definition)
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )


def _stream_on(client: Any, table_name: str) -> None:
    """The stream of template.yaml, switched on once the table is loaded."""
    specification = table_definitions()["IntegrationsTable"]["create"]["StreamSpecification"]
    client.update_table(TableName=table_name, StreamSpecification=specification)


def _accounts(store: Store) -> None:
    def create(n: int) -> None:
        store.create_account(card_account(f"acc_{n:03d}", T0, f"cus_{n}"))

    _in_parallel(create, range(ACCOUNTS), LOAD_THREADS)


def _sweep_query_seconds(stores: dict[str, Store], now: datetime) -> dict[str, tuple[float, int]]:
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


class _Recorder:
    """A DynamoDB client that passes every call on and keeps what was asked, and what its reads
    found: the requests of one real renewal, to replay."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.found: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name in ("get_waiter", "get_paginator"):
            return target

        def recorded(**kwargs: Any) -> Any:
            self.requests.append((name, copy.deepcopy(kwargs)))
            response = target(**kwargs)
            if name == "batch_get_item":
                self.found += [i for items in response["Responses"].values() for i in items]
            return response

        return recorded


def _moved(value: Any, prefix: str) -> Any:
    """`value` (a request, an item) with every partition key moved under `prefix`: the same
    request on a partition of its own."""
    if isinstance(value, list):
        return [_moved(v, prefix) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: {"S": prefix + v["S"]} if k == "PK" else _moved(v, prefix) for k, v in value.items()}


@dataclass(frozen=True)
class Replay:
    """One real renewal's DynamoDB requests as it made them, and the items they found."""

    table_name: str
    requests: list[tuple[str, dict[str, Any]]]
    found: list[dict[str, Any]]

    @property
    def commit_items(self) -> int:
        return max(
            len(kwargs["TransactItems"])
            for name, kwargs in self.requests
            if name == "transact_write_items"
        )


def _replayed_renewals_per_second(
    client: Any, replay: Replay, *, shape: str, label: str, count: int
) -> float:
    """DynamoDB Local's ceiling for a renewal's requests: `count` copies of one real renewal's
    requests, each on a partition of its own holding what that renewal found there (written
    first, not timed), replayed from WORKERS threads with no lifecycle code. `shape` "new":
    as made; "before": the ledger line's PutItem made a two-item TransactWriteItems with a
    guard item, the write path before issue 17."""
    prefixes = [f"CEILING#{shape}#{label}#{n}#" for n in range(count)]
    _write(client, replay.table_name, [_moved(i, p) for p in prefixes for i in replay.found])

    def renewal(prefix: str) -> None:
        for made, kwargs in replay.requests:
            name, request = made, _moved(kwargs, prefix)
            if name == "put_item" and shape == "before":
                guard = {"PK": request["Item"]["PK"], "SK": {"S": "GUARD"}}
                new = {"ConditionExpression": "attribute_not_exists(PK)"}
                request = {
                    "TransactItems": [
                        {"Put": {"TableName": replay.table_name, "Item": guard, **new}},
                        {"Put": request},
                    ]
                }
                name = "transact_write_items"
            getattr(client, name)(**request)

    began = time.perf_counter()
    _in_parallel(renewal, prefixes, WORKERS)
    return count / (time.perf_counter() - began)


def _renewals_per_second(services: Services, keys: Sequence[Any]) -> float:
    """Renew `keys`, WORKERS side by side as the SQS consumers would: renewals a second."""
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(
            pool.map(
                lambda k: renewals.renew(services, k.account_id, k.integration_id).result, keys
            )
        )
    seconds = time.perf_counter() - began
    assert outcomes.count("renewed") == len(keys), outcomes[:5]
    return len(keys) / seconds


def _sweep_leases_per_second(store: Store, now: datetime) -> float:
    """The sweep over the small table's due entries: each leased and handed out."""
    services = Services(
        store=store, payments=FakePayments(), clock=FixedClock(now), catalog=DEFAULT_CATALOG
    )
    began = time.perf_counter()
    sent = sum(len(batch) for batch in renewals.sweep_batches(services))
    seconds = time.perf_counter() - began
    assert sent == DUE, sent
    return sent / seconds


def _rounds(
    services: Services, raw: Any, replay: Replay, due: Sequence[Any]
) -> tuple[list[float], dict[str, list[float]]]:
    """ROUNDS rounds, each renewing a slice of `due` and replaying as many renewals in each
    shape, the order turned round every round: renewals a second per round, and replays a second
    per round and shape."""
    size = len(due) // ROUNDS
    # The replays through the same wrapper as the renewals' store (it asks for the consumed
    # capacity and counts under a lock): the two sides differ in the lifecycle code only.
    replaying = TimedClient(raw)
    renew_runs: list[float] = []
    runs: dict[str, list[float]] = {"new": [], "before": []}
    for run in range(ROUNDS):
        chunk = due[run * size : (run + 1) * size if run < ROUNDS - 1 else len(due)]
        parts = ("renew", "new", "before")
        for part in parts if run % 2 == 0 else reversed(parts):
            if part == "renew":
                renew_runs.append(_renewals_per_second(services, chunk))
                continue
            runs[part].append(
                _replayed_renewals_per_second(
                    replaying, replay, shape=part, label=str(run), count=len(chunk)
                )
            )
    return renew_runs, runs


def _recorded_renewal(services: Services, raw: Any, key: Any) -> Replay:
    """Renew `key` through a recording client: its requests, and the items its read found (the
    account, its receipt counter, the integration and its settings, as they were before)."""
    recorder = _Recorder(raw)
    recording = replace(services, store=Store(services.store.table_name, client=recorder))
    assert renewals.renew(recording, key.account_id, key.integration_id).result == "renewed"
    return Replay(services.store.table_name, recorder.requests, recorder.found)


def main() -> dict[str, Any]:
    end = add_month(T0, 1)
    not_due_anchor = T0 + timedelta(days=10)
    with dynamodb({"IntegrationsTable": "bench-renew-small"}) as raw:
        small = Store("bench-renew-small", client=raw)
        _write(raw, small.table_name, [_item(small, _integration(n, T0)) for n in range(DUE)])

        big_client = TimedClient(raw)
        big = Store("bench-renew-big", client=big_client)
        _create_table(raw, big.table_name, stream=False)
        due_items = [_item(big, _integration(n, T0)) for n in range(DUE)]
        loader = boto3.client(
            "dynamodb",
            endpoint_url=raw.meta.endpoint_url,
            region_name="us-east-1",
            config=Config(max_pool_connections=32, parameter_validation=False),
        )
        began = time.perf_counter()
        _write(loader, big.table_name, due_items)
        total = DUE
        while total < TOTAL and time.perf_counter() - began < LOAD_BUDGET_SECONDS:
            step = range(total, min(TOTAL, total + LOAD_STEP))
            _write(
                loader,
                big.table_name,
                [
                    {
                        k: v
                        for k, v in _item(big, _integration(n, not_due_anchor)).items()
                        if k in INDEX_ONLY
                    }
                    for n in step
                ],
            )
            total = step.stop
        _stream_on(raw, big.table_name)
        load_seconds = time.perf_counter() - began
        measured = _sweep_query_seconds(
            {"small": small, "big": Store("bench-renew-big", client=raw)}, end
        )
        (small_seconds, small_read), (big_seconds, big_read) = measured["small"], measured["big"]
        leases_per_second = _sweep_leases_per_second(small, end)

        # Renew every due integration, workers in parallel as the SQS consumers would be.
        _accounts(big)
        payments = FakePayments()
        services = Services(
            store=big, payments=payments, clock=FixedClock(end), catalog=DEFAULT_CATALOG
        )
        keys = list(renewals.due(services, DueKind.RENEWAL))
        # The same table through the uncounted client: the bench's own checks.
        unseen = replace(services, store=Store(big.table_name, client=raw))
        # The first renewal alone: what the ceiling replays is taken from it (its keys, its
        # line, its transaction's size), and a warm-up replay follows, so that DynamoDB Local's
        # JVM has compiled the transaction path before anything is measured.
        first, rest = keys[0], keys[1:]
        replay = _recorded_renewal(services, raw, first)
        _replayed_renewals_per_second(raw, replay, shape="new", label="warm-up", count=100)
        big_client.reset()
        # Then ROUNDS rounds, each renewing a slice of the due integrations and replaying as
        # many renewals in each shape, the order turned round every round. DynamoDB Local
        # drifts as its table and stream grow (runs of the same thing differ by up to a third
        # over a bench), so each round compares neighbours, and the figures are medians.
        renew_runs, runs = _rounds(services, raw, replay, rest)
        # Each renewed: its period moved on (the due index now also holds the replays' copies).
        for key in keys:
            renewed = unseen.store.get_integration(key.account_id, key.integration_id)
            assert renewed is not None and renewed.current_period_start == end, key
        renewed_count = len(rest)
        trips = big_client.calls / renewed_count
        capacity = big_client.capacity / renewed_count
        operations = {
            k: round(v / renewed_count, 2) for k, v in sorted(big_client.by_operation.items())
        }
        transactions = big_client.by_operation["transact_write_items"]
        commit_items = replay.commit_items
        assert len(payments.succeeded) == DUE

    renewals_per_second = median(renew_runs)
    ceiling = median(runs["new"])
    before_ceiling = median(runs["before"])
    # Each round's renewals against the replay of the same round, then the median of those.
    share = median([r / c for r, c in zip(renew_runs, runs["new"], strict=True)])
    figures: dict[str, Any] = {
        "due": DUE,
        "total": total,
        "total_target": TOTAL,
        "load_stopped_at_budget": total < TOTAL,
        "renewals_per_second": round(renewals_per_second, 1),
        "renewals_per_second_runs": [round(r, 1) for r in renew_runs],
        "workers": WORKERS,
        "dynamodb_round_trips_per_renewal": round(trips, 2),
        "dynamodb_calls_per_renewal_by_operation": operations,
        "capacity_units_per_renewal": round(capacity, 2),
        "transactions_per_renewal": round(transactions / renewed_count, 2),
        "rounds": ROUNDS,
        "commit_items_per_transaction": commit_items,
        "dynamodb_local_ceiling": {
            "measure": f"median of {ROUNDS} rounds, each replaying as many renewals' DynamoDB "
            f"requests raw as the round renewed (BatchGetItem of 4 keys, the ledger line as one "
            f"conditional PutItem, one TransactWriteItems of {commit_items} items), "
            f"{WORKERS} threads, same DynamoDB Local and table; the share is the median of "
            "the rounds' renewals over their replay",
            "renewals_per_second_ceiling": round(ceiling, 1),
            "renewals_per_second_ceiling_runs": [round(r, 1) for r in runs["new"]],
            "renewals_share_of_ceiling_runs": [
                round(r / c, 2) for r, c in zip(renew_runs, runs["new"], strict=True)
            ],
            "renewals_share_of_ceiling": round(share, 2),
        },
        "before_issue_17_shape_replayed": {
            "measure": "the same replay with the ledger line and its guard as a two-item "
            "TransactWriteItems instead of the PutItem (the write path before issue 17)",
            "renewals_per_second_ceiling": round(before_ceiling, 1),
            "renewals_per_second_ceiling_runs": [round(r, 1) for r in runs["before"]],
            "new_over_before": round(ceiling / before_ceiling, 2),
        },
        "before_issue_17": BEFORE_ISSUE_17,
        "sweep_leases_per_second": round(leases_per_second, 1),
        "sweep_query_seconds_due_of_1000": round(small_seconds, 4),
        "sweep_query_seconds_due_of_total": round(big_seconds, 4),
        "sweep_ratio_total_vs_due_only": round(big_seconds / small_seconds, 3),
        "index_items_read_small": small_read,
        "index_items_read_big": big_read,
        "load_seconds": round(load_seconds, 1),
        "load_budget_seconds": LOAD_BUDGET_SECONDS,
        "load_items_per_second": round(total / load_seconds),
    }
    table(
        f"Renewals against DynamoDB Local ({DUE} due; {WORKERS} workers; payments fake)",
        ["figure", "value", "goal"],
        [
            [
                f"renewals per second (median of {ROUNDS} rounds: "
                + ", ".join(f"{r:.1f}" for r in renew_runs)
                + ")",
                figures["renewals_per_second"],
                ">= 200",
            ],
            [
                "  DynamoDB Local's ceiling for this shape (requests replayed raw, same run)",
                f"{ceiling:.1f} (measured {share:.0%} of it; rounds "
                + ", ".join(f"{r / c:.0%}" for r, c in zip(renew_runs, runs["new"], strict=True))
                + ")",
                ">= 90%",
            ],
            [
                "  the shape before issue 17 (line + guard transaction), replayed, same run",
                f"{before_ceiling:.1f} (new/before {ceiling / before_ceiling:.2f})",
                "",
            ],
            [
                "  measured before issue 17 (results.json then)",
                f"{BEFORE_ISSUE_17['renewals_per_second']} renewals/s, "
                f"{BEFORE_ISSUE_17['renewals_share_of_ceiling']:.0%} of its ceiling "
                f"{BEFORE_ISSUE_17['renewals_per_second_ceiling']}",
                "",
            ],
            ["sweep: due entries leased and handed out per second", round(leases_per_second), ""],
            ["DynamoDB round trips per renewal", figures["dynamodb_round_trips_per_renewal"], ""],
            ["  by operation", ", ".join(f"{k} {v}" for k, v in operations.items()), ""],
            ["capacity units per renewal", figures["capacity_units_per_renewal"], ""],
            [f"sweep read, {DUE} due of {DUE} (s)", figures["sweep_query_seconds_due_of_1000"], ""],
            [
                f"sweep read, {DUE} due of {total} (s)",
                figures["sweep_query_seconds_due_of_total"],
                "",
            ],
            ["ratio", figures["sweep_ratio_total_vs_due_only"], "<= 1.2"],
            ["index items read (both)", f"{small_read} / {big_read}", "= due"],
            [
                f"load of {total} integrations (s)",
                figures["load_seconds"],
                f"<= {LOAD_BUDGET_SECONDS:.0f}"
                + (f" (stopped there: {TOTAL} wanted)" if total < TOTAL else ""),
            ],
        ],
    )
    record("renewals", figures)
    return figures


if __name__ == "__main__":
    main()
