"""The dashboard API's commands against DynamoDB Local: round trips and handler overhead.

Goals (issue: dashboard API): at most 2 DynamoDB round trips for a single-integration command
and 1 for a list page; the handler adds at most 50% on top of the time its DynamoDB calls took.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench.harness import T0, TimedClient, card_account, dynamodb, median, record, table
from lifecycle.clock import FixedClock
from lifecycle.payments.fake import FakePayments
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.model import AccountStatus
from lifecycle.rules.renewal import decide_renewal
from lifecycle.store.repository import Store
from lifecycle.usecases.services import Services, use_services
from local.inprocess import invoke

REPEATS = int(os.environ.get("BENCH_REPEATS", "30"))
ID = "/v1/integrations/{id}"


TOKEN = {"sub": "bench", "custom:account_id": "acc_bench", "cognito:groups": "[billing]"}


def _create(n: int) -> str:
    status, body = invoke(
        "POST",
        "/v1/integrations",
        token_claims=TOKEN,
        body={"name": f"Feed {n}", "supplier": "s", "channel": "c", "plan": "standard"},
    )
    assert status == 201, body
    return str(body["id"])


def _frozen(store: Store, integration_id: str) -> None:
    invoke("POST", f"{ID}/freeze", {"id": integration_id}, token_claims=TOKEN)
    subject = store.get_integration("acc_bench", integration_id)
    assert subject is not None
    renewal = decide_renewal(
        subject,
        subject.current_period_end,
        account_status=AccountStatus.ACTIVE,
        catalog=DEFAULT_CATALOG,
    )
    assert renewal is not None
    store.commit(renewal.paid)


def main() -> dict[str, Any]:
    with dynamodb(
        {"IntegrationsTable": "bench-integrations", "IdempotencyTable": "bench-idempotency"}
    ) as raw:
        os.environ["IDEMPOTENCY_TABLE_NAME"] = "bench-idempotency"
        client = TimedClient(raw)
        store = Store("bench-integrations", client=client)
        clock = FixedClock(T0)
        use_services(
            Services(store=store, payments=FakePayments(), clock=clock, catalog=DEFAULT_CATALOG)
        )
        store.create_account(card_account("acc_bench", T0, "cus_bench"))
        token = TOKEN
        ids = [_create(n) for n in range(REPEATS * 3)]
        frozen = ids[REPEATS * 2 :]
        for integration_id in frozen:
            _frozen(store, integration_id)
        clock.set(T0 + timedelta(days=40))
        quotes = {}
        for integration_id in frozen:
            status, quote = invoke(
                "GET", f"{ID}/reactivation-quote", {"id": integration_id}, token_claims=token
            )
            quotes[integration_id] = quote["id"]

        commands: dict[str, Callable[[int], tuple[int, Any]]] = {
            "freeze": lambda i: invoke("POST", f"{ID}/freeze", {"id": ids[i]}, token_claims=token),
            "cancel": lambda i: invoke(
                "POST",
                f"{ID}/cancel",
                {"id": ids[REPEATS + i]},
                body={"reason": "other"},
                token_claims=token,
            ),
            "free reactivate": lambda i: invoke(
                "POST", f"{ID}/reactivate", {"id": ids[i]}, token_claims=token
            ),
            "paid reactivate": lambda i: invoke(
                "POST",
                f"{ID}/reactivate",
                {"id": frozen[i]},
                body={"quote_id": quotes[frozen[i]]},
                token_claims=token,
            ),
            "list (50)": lambda i: invoke("GET", "/v1/integrations", token_claims=token),
        }
        rows, figures = [], {}
        for name, command in commands.items():
            trips, ratios, totals, capacity = [], [], [], []
            for i in range(REPEATS):
                client.reset()
                began = time.perf_counter()
                status, body = command(i)
                elapsed = time.perf_counter() - began
                assert status == 200, (name, body)
                if i == 0:
                    continue  # the first call pays imports and connection set-up
                trips.append(client.calls)
                capacity.append(client.capacity)
                totals.append(elapsed * 1000)
                ratios.append((elapsed - client.seconds) / client.seconds)
            figures[name] = {
                "dynamodb_round_trips": median(trips),
                "handler_overhead_ratio": round(median(ratios), 3),
                "median_ms": round(median(totals), 2),
                "consumed_capacity_units": round(median(capacity), 2),
            }
            rows.append(
                [
                    name,
                    median(trips),
                    f"{median(ratios):.0%}",
                    f"{median(totals):.1f}",
                    f"{median(capacity):.1f}",
                ]
            )
        use_services(None)
    table(
        "Dashboard API against DynamoDB Local (medians)",
        ["command", "round trips", "handler overhead / DynamoDB time", "ms", "capacity units"],
        rows,
    )
    record("api", figures)
    return figures


if __name__ == "__main__":
    main()
